//! A Duo Self-Hosted setup in gateprobe's terms, from either side of a drift check:
//! the instance's [`Snapshot`] (what gateprobe cannot represent is left out, with a
//! [`Note`] saying why) or a committed scenario. The scenario writer and the drift
//! check both start from it, so a scenario just imported has no drift.

use crate::feature::{self, COMPLETION_FAMILIES, FAMILIES, FEATURES, Feature};
use crate::identifier::{Identifier, IdentifierError, Provider};
use crate::scenario::{Scenario, Target};

use super::{Readout, RemoteModel, Snapshot};

/// Something the import left out, or a fact worth knowing about what it wrote.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Note {
    /// What it is about: `model "Claude 4"`, `feature duo_agent_platform`, `gateway`.
    pub item: String,
    /// What happened, and why.
    pub text: String,
    /// The item is left out of the scenario (an error with `--strict`).
    pub skipped: bool,
}

impl Note {
    fn skipped(item: impl Into<String>, text: impl Into<String>) -> Note {
        Note {
            item: item.into(),
            text: text.into(),
            skipped: true,
        }
    }

    fn info(item: impl Into<String>, text: impl Into<String>) -> Note {
        Note {
            item: item.into(),
            text: text.into(),
            skipped: false,
        }
    }
}

/// An endpoint split the way the import uses it: the server becomes a mock backend,
/// the path is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Endpoint {
    /// `http` or `https` (empty for a scenario's mock endpoint).
    pub scheme: String,
    /// `host[:port]`, without user info (empty for a scenario's mock endpoint).
    pub authority: String,
    /// The path as stored, without query or fragment (`/v1`, `/v1/`, ``).
    pub path: String,
    /// The stored endpoint had a query, which is left out (it may carry a key).
    pub query: bool,
}

impl Endpoint {
    /// Splits `scheme://[user@]host[:port]/path?query`; `None` when it is not an
    /// http(s) URL with a host.
    pub(super) fn parse(url: &str) -> Option<Endpoint> {
        let url = url.trim();
        let (scheme, rest) = url.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = rest[..end].rsplit_once('@').map_or(&rest[..end], |(_, host)| host);
        if authority.is_empty() || authority.starts_with(':') {
            return None;
        }
        let tail = &rest[end..];
        let path_end = tail.find(['?', '#']).unwrap_or(tail.len());
        Some(Endpoint {
            scheme,
            authority: authority.to_ascii_lowercase(),
            path: tail[..path_end].to_owned(),
            query: tail[path_end..].starts_with('?'),
        })
    }

    /// The path as the AI gateway uses it (one trailing slash removed), for comparing.
    pub(super) fn normalized_path(&self) -> &str {
        crate::wire::endpoint::normalize(&self.path)
    }

    /// `scheme://authority/path`, for comments: no user info, no query.
    pub(super) fn display(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority, self.path)
    }
}

/// A self-hosted model.
#[derive(Clone, Debug)]
pub(super) struct Model {
    /// The name in GitLab.
    pub name: String,
    /// The name in the scenario (scenario side only).
    pub scenario_name: Option<String>,
    /// `name` is GitLab's: on the instance side, or read from the scenario's comment.
    pub named: bool,
    /// GitLab's global id (instance side only).
    pub id: Option<String>,
    /// Family.
    pub family: String,
    /// Identifier.
    pub identifier: Identifier,
    /// Endpoint; `None` for Bedrock models, which have none that matters.
    pub endpoint: Option<Endpoint>,
    /// A key is stored.
    pub has_key: bool,
}

/// What a feature is set to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Setting {
    /// A self-hosted model, by its name in GitLab.
    Model(String),
    /// Disabled.
    Disabled,
    /// Served by GitLab with its own models.
    Vendored,
    /// Nothing saved (`unassigned`): a Chat sub-feature falls back to `duo_chat`'s model.
    Unset,
}

impl Setting {
    pub(super) fn describe(&self) -> String {
        match self {
            Setting::Model(m) => format!("model {}", quoted(m)),
            Setting::Disabled => "disabled".into(),
            Setting::Vendored => "vendored".into(),
            Setting::Unset => "unset".into(),
        }
    }
}

/// A name as notes and changes show it: JSON-quoted, so any text is one line.
pub(super) fn quoted(name: &str) -> String {
    serde_json::to_string(name).unwrap_or_default()
}

/// A whole setup.
#[derive(Clone, Debug, Default)]
pub(super) struct Setup {
    /// The GitLab version (`18.9.1-ee`).
    pub version: Option<String>,
    /// The AI gateway URL, when known.
    pub gateway_url: Option<String>,
    /// Models gateprobe can represent.
    pub models: Vec<Model>,
    /// Features the instance lists and gateprobe knows, in catalogue order.
    pub features: Vec<(&'static Feature, Setting)>,
    /// Features gateprobe knows that the instance does not list (unknown, not unset).
    pub unseen: Vec<&'static Feature>,
    /// Features gateprobe knows whose setting is left out (a note says why).
    pub left_out: Vec<&'static Feature>,
    /// What was left out, and facts worth knowing.
    pub notes: Vec<Note>,
}

/// `(major, minor)` of a GitLab version such as `18.9.1-ee`.
pub(super) fn major_minor(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.trim().split(['-', '+']).next()?.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// A name as a scenario can hold it: lower case letters, digits, `-`, `_` and `.`,
/// other characters runs of `-`.
pub(super) fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches(['-', '.']).to_owned()
}

fn same(a: &RemoteModel, b: &RemoteModel) -> bool {
    match (&a.id, &b.id) {
        (Some(x), Some(y)) => x == y,
        _ => a.name == b.name,
    }
}

fn label(r: &RemoteModel) -> String {
    let name = quoted(r.name.as_deref().unwrap_or(""));
    match &r.id {
        Some(id) => format!("model {name} ({id})"),
        None => format!("model {name}"),
    }
}

/// The model as gateprobe represents it, or why it cannot.
fn model(r: &RemoteModel) -> Result<Model, String> {
    let name = r.name.as_deref().map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return Err("it has no name".into());
    }
    let family = r.family.as_deref().unwrap_or_default().trim().to_ascii_lowercase();
    if !FAMILIES.contains(&family.as_str()) {
        return Err(format!(
            "family `{family}` is unknown to gateprobe (it knows {})",
            FAMILIES.join(", ")
        ));
    }
    let provider = r.provider.as_deref().map(str::to_ascii_lowercase);
    match provider.as_deref() {
        None | Some("api" | "bedrock") => {}
        Some("vertex_ai") => return Err("provider VERTEX_AI: gateprobe has no Vertex AI mock".into()),
        Some(other) => return Err(format!("provider `{other}` is unknown to gateprobe")),
    }
    let raw = r.identifier.as_deref().unwrap_or_default();
    let identifier = Identifier::parse(raw).map_err(|e| match e {
        IdentifierError::Empty => "its identifier is empty: GitLab then sends the family as the model name, and \
                                   gateprobe does not guess which model the endpoint serves"
            .to_owned(),
        IdentifierError::UnknownProvider(p) => format!(
            "identifier `{raw}`: the prefix `{p}/` is unknown to gateprobe (it knows custom_openai/, bedrock/, azure/)"
        ),
        other => format!("identifier `{raw}`: {other}"),
    })?;
    if provider.as_deref() == Some("bedrock") && identifier.provider != Provider::Bedrock {
        return Err(format!(
            "provider BEDROCK with identifier `{raw}`, which has no `bedrock/` prefix"
        ));
    }
    // Bedrock models have no endpoint gateprobe uses (18.x stores a dummy one): the
    // gateway finds the Bedrock runtime through its own environment.
    let endpoint = if identifier.provider == Provider::Bedrock {
        None
    } else {
        let stored = r.endpoint.as_deref().unwrap_or_default();
        Some(Endpoint::parse(stored).ok_or_else(|| {
            format!(
                "endpoint `{}` is not an http(s) URL",
                crate::redact::display_url(stored)
            )
        })?)
    };
    Ok(Model {
        name: name.to_owned(),
        scenario_name: None,
        named: true,
        id: r.id.clone(),
        family,
        identifier,
        endpoint,
        has_key: r.has_api_token,
    })
}

impl Setup {
    /// The instance's setup; `gateway_url` (from `--gateway-url`) replaces its
    /// `aiGatewayUrl`.
    pub(super) fn from_snapshot(snap: &Snapshot, gateway_url: Option<&str>) -> Setup {
        let mut s = Setup {
            version: snap.version.clone(),
            ..Setup::default()
        };
        s.gateway(snap, gateway_url);
        // The model list hides models that are not GA unless the instance accepted the
        // testing agreement; the feature settings show the model they use anyway.
        let mut remote: Vec<&RemoteModel> = snap.models.iter().collect();
        if let Readout::Read(list) = &snap.features {
            for m in list.iter().filter_map(|f| f.model.as_ref()) {
                if !remote.iter().any(|r| same(r, m)) {
                    remote.push(m);
                }
            }
        }
        // Each remote model's imported name, or why it is left out.
        let mut imported: Vec<(&RemoteModel, Result<String, String>)> = Vec::new();
        for r in remote {
            let result = model(r).and_then(|m| {
                if s.models.iter().any(|o| o.name == m.name) {
                    Err("another model has the same name".into())
                } else {
                    Ok(m)
                }
            });
            match result {
                Ok(m) => {
                    imported.push((r, Ok(m.name.clone())));
                    s.models.push(m);
                }
                Err(why) => {
                    s.notes.push(Note::skipped(label(r), why.clone()));
                    imported.push((r, Err(why)));
                }
            }
        }
        match &snap.features {
            Readout::Read(list) => s.features(snap, list, &imported),
            Readout::Missing => s.notes.push(Note::skipped(
                "features",
                "this GitLab has no `aiFeatureSettings` (GitLab 17.5 and later): no feature is imported",
            )),
            Readout::Hidden => s.notes.push(Note::skipped(
                "features",
                "`aiFeatureSettings` answered null: this token cannot read them, and no feature is imported",
            )),
        }
        s
    }

    fn gateway(&mut self, snap: &Snapshot, flag: Option<&str>) {
        let (url, why) = match (flag, &snap.gateway_url) {
            (Some(u), _) => (Some(u.trim().to_owned()), ""),
            (None, Readout::Read(Some(u))) if !u.trim().is_empty() => (Some(u.trim().to_owned()), ""),
            (None, Readout::Read(_)) => (
                None,
                "the instance has no AI gateway URL in its settings: it takes it from its AI_GATEWAY_URL \
                 environment variable; pass --gateway-url",
            ),
            (None, Readout::Missing) => (
                None,
                "this GitLab has no `duoSettings { aiGatewayUrl }` (GitLab 17.9 and later); pass --gateway-url",
            ),
            (None, Readout::Hidden) => (
                None,
                "`duoSettings` answered null: this token cannot read the AI gateway URL; pass --gateway-url",
            ),
        };
        match url {
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => self.gateway_url = Some(u),
            Some(u) => self.notes.push(Note::info(
                "gateway",
                format!(
                    "the AI gateway URL `{}` is not an http(s) URL; pass --gateway-url",
                    crate::redact::display_url(&u)
                ),
            )),
            None => self.notes.push(Note::info("gateway", why)),
        }
    }

    fn features(
        &mut self,
        snap: &Snapshot,
        list: &[super::RemoteFeature],
        imported: &[(&RemoteModel, Result<String, String>)],
    ) {
        // GitLab 17.x shows a feature never saved as `vendored`; 18.x as `unassigned`.
        let before_18 = snap
            .version
            .as_deref()
            .and_then(major_minor)
            .is_some_and(|(m, _)| m < 18);
        let (mut unknown_unset, mut taken_as_unset) = (Vec::new(), Vec::new());
        for rf in list {
            let name = rf.feature.trim().to_ascii_lowercase();
            let provider = rf.provider.trim().to_ascii_lowercase();
            let item = format!("feature {name}");
            let Some(feat) = feature::by_name(&name) else {
                let saved =
                    matches!(provider.as_str(), "self_hosted" | "disabled") || (provider == "vendored" && !before_18);
                if saved {
                    self.notes.push(Note::skipped(
                        item,
                        format!("set to `{provider}` on the instance, and unknown to gateprobe"),
                    ));
                } else {
                    unknown_unset.push(name);
                }
                continue;
            };
            if self.features.iter().any(|(f, _)| f.name == feat.name) {
                continue;
            }
            let setting = match provider.as_str() {
                "self_hosted" => {
                    let Some(m) = &rf.model else {
                        self.notes.push(Note::skipped(
                            item,
                            "set to a self-hosted model the instance does not show",
                        ));
                        self.left_out.push(feat);
                        continue;
                    };
                    match imported.iter().find(|(r, _)| same(r, m)).map(|(_, i)| i) {
                        Some(Ok(n)) => Setting::Model(n.clone()),
                        _ => {
                            self.notes
                                .push(Note::skipped(item, format!("uses {}, which is not imported", label(m))));
                            self.left_out.push(feat);
                            continue;
                        }
                    }
                }
                "disabled" => Setting::Disabled,
                "vendored" if before_18 && feat.chat_subfeature => {
                    taken_as_unset.push(feat.name);
                    Setting::Unset
                }
                "vendored" => Setting::Vendored,
                "unassigned" => Setting::Unset,
                other => {
                    self.notes.push(Note::skipped(
                        item,
                        format!("set to `{other}`, which gateprobe does not know"),
                    ));
                    self.left_out.push(feat);
                    continue;
                }
            };
            if let Setting::Model(m) = &setting
                && feat.endpoint == feature::Endpoint::CodeCompletions
                && let Some(model) = self.models.iter().find(|x| &x.name == m)
                && !COMPLETION_FAMILIES.contains(&model.family.as_str())
            {
                self.notes.push(Note::skipped(
                    item,
                    format!(
                        "uses model {} of family `{}`, which the AI gateway does not serve code completions for",
                        quoted(m),
                        model.family
                    ),
                ));
                self.left_out.push(feat);
                continue;
            }
            self.features.push((feat, setting));
        }
        let order = |f: &Feature| FEATURES.iter().position(|x| x.name == f.name);
        self.features.sort_by_key(|(f, _)| order(f));
        let listed: Vec<String> = list.iter().map(|f| f.feature.trim().to_ascii_lowercase()).collect();
        self.unseen = FEATURES
            .iter()
            .filter(|f| !listed.iter().any(|l| l == f.name))
            .collect();
        self.left_out.sort_by_key(|f| order(f));
        if !unknown_unset.is_empty() {
            self.notes.push(Note::info(
                "features",
                format!(
                    "unknown to gateprobe and not set on the instance: {}",
                    unknown_unset.join(", ")
                ),
            ));
        }
        if !taken_as_unset.is_empty() {
            self.notes.push(Note::info(
                "features",
                format!(
                    "GitLab 17.x shows a feature never saved as `vendored`: the Chat sub-features {} are taken as \
                     never saved, so they fall back to duo_chat's model as in GitLab",
                    taken_as_unset.join(", ")
                ),
            ));
        }
    }

    /// A committed scenario's setup; `source` is its text, whose comments name each
    /// model as GitLab does (`# GitLab: "Mixtral 8x7B" ...`).
    pub(super) fn from_scenario(sc: &Scenario, source: &str) -> Setup {
        let originals = super::scenario::comment_names(source);
        let models: Vec<Model> = sc
            .models
            .iter()
            .map(|m| {
                let original = originals.iter().find(|(slug, _)| slug == &m.name).map(|(_, n)| n);
                Model {
                    name: original.map_or_else(|| m.name.clone(), Clone::clone),
                    scenario_name: Some(m.name.clone()),
                    named: original.is_some(),
                    id: None,
                    family: m.family.clone(),
                    identifier: m.identifier.clone(),
                    endpoint: match m.identifier.provider {
                        Provider::Bedrock => None,
                        _ => m.endpoint.as_ref().map(|t| {
                            // A mock's address is the server gateprobe stands in for: only
                            // the path is the instance's.
                            let text = t.render(|_| Some(String::new()));
                            Endpoint::parse(&text).unwrap_or_else(|| {
                                let path_end = text.find(['?', '#']).unwrap_or(text.len());
                                Endpoint {
                                    scheme: String::new(),
                                    authority: String::new(),
                                    path: text[..path_end].to_owned(),
                                    query: path_end < text.len(),
                                }
                            })
                        }),
                    },
                    has_key: m.api_key.is_some(),
                }
            })
            .collect();
        let features = FEATURES
            .iter()
            .map(|f| {
                let setting = match sc.features.iter().find(|x| x.feature.name == f.name).map(|x| x.target) {
                    Some(Target::Model(i)) => Setting::Model(models[i].name.clone()),
                    Some(Target::Disabled) => Setting::Disabled,
                    Some(Target::Vendored) => Setting::Vendored,
                    Some(Target::Fallback(_)) | None => Setting::Unset,
                };
                (f, setting)
            })
            .collect();
        Setup {
            version: Some(sc.instance.version.clone()),
            gateway_url: sc.gateway.url.clone(),
            models,
            features,
            unseen: Vec::new(),
            left_out: Vec::new(),
            notes: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_keep_their_path_and_drop_credentials_and_query() {
        let e = Endpoint::parse("http://user:pw@VLLM.internal:8000/v1/?api-key=secret#x").expect("url");
        assert_eq!(e.authority, "vllm.internal:8000");
        assert_eq!(e.path, "/v1/");
        assert!(e.query);
        assert_eq!(e.normalized_path(), "/v1");
        assert_eq!(e.display(), "http://vllm.internal:8000/v1/");
        assert_eq!(Endpoint::parse("https://h").map(|e| e.path), Some(String::new()));
        assert!(Endpoint::parse("vllm:8000/v1").is_none() && Endpoint::parse("ftp://h/").is_none());
        assert!(Endpoint::parse("http:///v1").is_none());
    }

    #[test]
    fn slugs_and_versions() {
        assert_eq!(slug("Mixtral 8x7B (prod)"), "mixtral-8x7b-prod");
        assert_eq!(
            slug("  --Ünïcode--  "),
            "n-code",
            "letters outside ASCII are separators"
        );
        assert_eq!(slug("a.b_c"), "a.b_c");
        assert_eq!(major_minor("18.9.1-ee"), Some((18, 9)));
        assert_eq!(major_minor("17.11.0-pre"), Some((17, 11)));
        assert_eq!(major_minor("x"), None);
    }
}
