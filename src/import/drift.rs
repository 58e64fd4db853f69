//! `gateprobe import gitlab --check`: compares what the instance runs with a committed
//! scenario and names each difference: the model set (by GitLab name), each model's
//! family, identifier, provider, endpoint path and key presence, each feature's
//! setting, and the gateway URL. Ids, timestamps, titles and release states are not
//! compared, nor anything gateprobe leaves out of an import (each left-out item is a
//! note instead).

use std::fmt;

use super::setup::{Model, Note, Setting, Setup, quoted};

/// What differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A model the instance has and the scenario does not.
    ModelAdded,
    /// A model the scenario has and the instance no longer does.
    ModelRemoved,
    /// A model's family.
    Family,
    /// A model's identifier.
    Identifier,
    /// A model's provider (`custom_openai`, `bedrock`, `azure`).
    Provider,
    /// A model's endpoint path (`/v1` or not; one trailing slash aside).
    EndpointPath,
    /// Whether a model has a key.
    ApiKey,
    /// A feature's model, `disabled`, `vendored` or unset.
    Feature,
    /// The AI gateway URL.
    GatewayUrl,
}

impl ChangeKind {
    fn words(self) -> &'static str {
        match self {
            ChangeKind::ModelAdded => "added on the instance",
            ChangeKind::ModelRemoved => "removed from the instance",
            ChangeKind::Family => "family",
            ChangeKind::Identifier => "identifier",
            ChangeKind::Provider => "provider",
            ChangeKind::EndpointPath => "endpoint path",
            ChangeKind::ApiKey => "API key",
            ChangeKind::Feature => "setting",
            ChangeKind::GatewayUrl => "URL",
        }
    }
}

/// One difference.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// What differs.
    pub kind: ChangeKind,
    /// Which item: `model "Mixtral 8x7B"`, `feature duo_chat`, `gateway`.
    pub item: String,
    /// The scenario's value (`absent` for a model it lacks).
    pub scenario: String,
    /// The instance's value (`absent` for a model it lacks).
    pub instance: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ChangeKind::ModelAdded => write!(f, "{}: added on the instance ({})", self.item, self.instance),
            ChangeKind::ModelRemoved => write!(
                f,
                "{}: removed from the instance ({} in the scenario)",
                self.item, self.scenario
            ),
            k => write!(
                f,
                "{}: {} is {} in the scenario, {} on the instance",
                self.item,
                k.words(),
                self.scenario,
                self.instance
            ),
        }
    }
}

/// The outcome of a check.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Drift {
    /// Every difference, models first.
    pub changes: Vec<Change>,
    /// What was not compared, and why.
    pub notes: Vec<Note>,
    /// Models compared (on the instance).
    pub models: usize,
    /// Features compared.
    pub features: usize,
    /// Whether the gateway URL was compared.
    pub gateway_compared: bool,
}

fn describe(m: &Model) -> String {
    let path = m
        .endpoint
        .as_ref()
        .map_or_else(|| "none".to_owned(), |e| format!("`{}`", e.normalized_path()));
    format!(
        "family {}, identifier `{}`, endpoint path {path}, {}",
        m.family,
        m.identifier,
        if m.has_key { "with a key" } else { "no key" }
    )
}

fn yes_no(b: bool) -> String {
    if b { "set".into() } else { "not set".into() }
}

/// Compares the instance's setup with the scenario's.
pub(super) fn compare(inst: &Setup, scen: &Setup) -> Drift {
    let mut d = Drift {
        notes: inst.notes.clone(),
        models: inst.models.len(),
        ..Drift::default()
    };
    // Models by GitLab name where the scenario knows it (from its comments), then by
    // the name the import gives each instance model, then by the same name.
    let assigned = super::scenario::model_names(&inst.models);
    let mut pair_of: Vec<Option<usize>> = vec![None; inst.models.len()];
    let mut taken = vec![false; scen.models.len()];
    for rule in 0..3 {
        let matches = |i: usize, s: &Model| match rule {
            0 => s.named && s.name == inst.models[i].name,
            1 => !s.named && s.scenario_name.as_deref() == Some(assigned[i].as_str()),
            _ => s.name == inst.models[i].name,
        };
        for (i, pair) in pair_of.iter_mut().enumerate() {
            if pair.is_some() {
                continue;
            }
            if let Some(j) = (0..scen.models.len()).find(|&j| !taken[j] && matches(i, &scen.models[j])) {
                *pair = Some(j);
                taken[j] = true;
            }
        }
    }
    for (i, m) in inst.models.iter().enumerate() {
        let item = format!("model {}", quoted(&m.name));
        let Some(j) = pair_of[i] else {
            d.changes.push(Change {
                kind: ChangeKind::ModelAdded,
                item,
                scenario: "absent".into(),
                instance: describe(m),
            });
            continue;
        };
        let s = &scen.models[j];
        let mut diff = |kind, scenario: String, instance: String| {
            if scenario != instance {
                d.changes.push(Change {
                    kind,
                    item: item.clone(),
                    scenario,
                    instance,
                });
            }
        };
        diff(ChangeKind::Family, s.family.clone(), m.family.clone());
        diff(
            ChangeKind::Identifier,
            format!("`{}`", s.identifier),
            format!("`{}`", m.identifier),
        );
        diff(
            ChangeKind::Provider,
            s.identifier.provider.prefix().into(),
            m.identifier.provider.prefix().into(),
        );
        if let (Some(se), Some(me)) = (&s.endpoint, &m.endpoint) {
            diff(
                ChangeKind::EndpointPath,
                format!("`{}`", se.normalized_path()),
                format!("`{}`", me.normalized_path()),
            );
        }
        diff(ChangeKind::ApiKey, yes_no(s.has_key), yes_no(m.has_key));
    }
    for (j, s) in scen.models.iter().enumerate() {
        if !taken[j] {
            d.changes.push(Change {
                kind: ChangeKind::ModelRemoved,
                item: format!("model {}", quoted(&s.name)),
                scenario: describe(s),
                instance: "absent".into(),
            });
        }
    }

    // The scenario's models under the instance's names, for features.
    let instance_name = |name: &str| -> String {
        pair_of
            .iter()
            .enumerate()
            .find(|(_, j)| j.is_some_and(|j| scen.models[j].name == name))
            .map_or_else(|| name.to_owned(), |(i, _)| inst.models[i].name.clone())
    };
    let mut not_compared = Vec::new();
    for (f, setting) in &scen.features {
        let scen_setting = match setting {
            Setting::Model(n) => Setting::Model(instance_name(n)),
            other => other.clone(),
        };
        match inst.features.iter().find(|(x, _)| x.name == f.name) {
            Some((_, inst_setting)) => {
                d.features += 1;
                if &scen_setting != inst_setting {
                    d.changes.push(Change {
                        kind: ChangeKind::Feature,
                        item: format!("feature {}", f.name),
                        scenario: scen_setting.describe(),
                        instance: inst_setting.describe(),
                    });
                }
            }
            None if scen_setting != Setting::Unset => not_compared.push(f.name),
            None => {}
        }
    }
    if !not_compared.is_empty() {
        d.notes.push(Note {
            item: "features".into(),
            text: format!(
                "set in the scenario but not shown or not imported from the instance, so not compared: {}",
                not_compared.join(", ")
            ),
            skipped: false,
        });
    }

    if let Some(url) = &inst.gateway_url {
        d.gateway_compared = true;
        let norm = |u: &str| u.trim().trim_end_matches('/').to_owned();
        let scen_url = scen.gateway_url.as_deref().map_or_else(|| "none".to_owned(), norm);
        if scen_url != norm(url) {
            d.changes.push(Change {
                kind: ChangeKind::GatewayUrl,
                item: "gateway".into(),
                scenario: format!("`{}`", crate::redact::display_url(&scen_url)),
                instance: format!("`{}`", crate::redact::display_url(&norm(url))),
            });
        }
    }
    d
}
