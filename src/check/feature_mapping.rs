//! `feature_mapping`: each Duo feature lands on the model it is mapped to, a Chat
//! sub-feature without a model on duo_chat's, with an answer; a disabled feature is
//! refused without backend traffic where the gateway owns the mapping (a proxy with
//! one alias per feature); with the AI gateway API the instance enforces it.

use super::planner::{Front, Planner, UNSEEN};
use super::routing::{backend_name, mismatch};
use super::verdict::{Verdict, describe, fail, pass, seen, skipped};
use super::{Ctx, Rule};
use crate::instance::served;
use crate::plan::{CheckId, Judge, PlannedCheck};
use crate::scenario::{CheckFamily, FeatureSetting, FeaturesBy, Target};

/// The `feature_mapping` family.
pub struct FeatureMapping;

/// The id and rule of the check that a mapped (or falling-back) feature lands on its
/// model.
fn routed_id(fs: &FeatureSetting) -> (CheckId, &'static str) {
    let name = fs.feature.name;
    if matches!(fs.target, Target::Fallback(_)) {
        (
            CheckId::of(CheckFamily::FeatureMapping, name, "fallback"),
            "a Chat sub-feature without a model lands on duo_chat's model",
        )
    } else {
        (
            CheckId::of(CheckFamily::FeatureMapping, name, "mapped"),
            "the feature lands on the model it is mapped to",
        )
    }
}

impl Rule for FeatureMapping {
    fn family(&self) -> CheckFamily {
        CheckFamily::FeatureMapping
    }

    fn plan(&self, p: &mut Planner<'_>) {
        let front = p.front();
        if front == Front::Direct {
            return;
        }
        for fs in &p.s.features {
            let f = fs.feature;
            match fs.target {
                Target::Model(i) | Target::Fallback(i) => {
                    let (id, rule) = routed_id(fs);
                    let judge = Judge::FeatureRouted { model: i };
                    let m = &p.s.models[i];
                    let served = match front {
                        Front::AiGateway => served(p.shapes(), f, &m.family),
                        _ => Ok(()),
                    };
                    if let Err(why) = served {
                        p.skip(id, rule, judge, &why);
                    } else if m.backend.is_none() {
                        // `live.<feature>` judges it end to end instead.
                        p.skip(id, rule, judge, UNSEEN);
                    } else if p.fault(i).is_none() {
                        let k = p.probe(p.feature_probe(f, i, false));
                        p.check(id, rule, judge, vec![k]);
                    }
                }
                Target::Disabled => disabled(p, fs),
                Target::Vendored => p.skip(
                    CheckId::of(CheckFamily::FeatureMapping, f.name, "vendored"),
                    "a vendored feature causes no self-hosted traffic",
                    Judge::FeatureDisabled,
                    "GitLab serves it with its own models; nothing self-hosted to check",
                ),
            }
        }
    }

    fn judge(&self, check: &PlannedCheck, cx: &Ctx<'_>) -> Verdict {
        match &check.judge {
            Judge::FeatureDisabled => skipped("not judged"),
            Judge::Profiled { .. } => super::resilience::profiled(check, cx),
            Judge::FeatureRouted { model } => routed(check, cx, *model),
            _ => super::misfiled(check),
        }
    }
}

fn disabled(p: &mut Planner<'_>, fs: &FeatureSetting) {
    let f = fs.feature;
    let id = CheckId::of(CheckFamily::FeatureMapping, f.name, "disabled");
    if p.front() == Front::AiGateway {
        p.skip(
            id,
            "a disabled feature causes no backend traffic",
            Judge::FeatureDisabled,
            "with the AI gateway API the GitLab instance enforces Disabled and never calls the gateway; \
             nothing on the gateway side can be observed",
        );
        return;
    }
    let rule = "a disabled feature is refused and causes no backend traffic";
    let key = "feature.disabled";
    let judge = Judge::Profiled {
        key: key.into(),
        reached: false,
    };
    let g = &p.s.gateway;
    match (g.features_by, g.profile.get(key), p.first_observed()) {
        (FeaturesBy::Model, _, _) => p.skip(
            id,
            rule,
            judge,
            "with one alias per model the client enforces Disabled; nothing on the proxy side can be observed",
        ),
        (FeaturesBy::Feature, Some(_), Some(m)) => {
            let k = p.probe(p.feature_probe(f, m, false));
            p.check(id, rule, judge, vec![k]);
        }
        (FeaturesBy::Feature, None, _) => {
            let why = format!("profile `{}` predicts no outcome for `{key}`", g.profile.name);
            p.skip(id, rule, judge, &why);
        }
        (FeaturesBy::Feature, Some(_), None) => {}
    }
}

fn routed(check: &PlannedCheck, cx: &Ctx<'_>, model: usize) -> Verdict {
    let seen = match seen(check, cx) {
        Ok(x) => x,
        Err(v) => return v,
    };
    let s = cx.scenario;
    let m = &s.models[model];
    let want = backend_name(s, model);
    let expected = format!(
        "model `{}` (backend `{want}`, upstream model `{}`) and content",
        m.name, m.identifier.model
    );
    let reply = seen.reply;
    if seen.hits.is_empty() {
        return fail(
            expected,
            format!("no backend request; the client got {}", describe(reply)),
        );
    }
    if let Some(h) = seen.hits.iter().find(|h| h.backend != want) {
        return fail(expected, format!("backend `{}` received it", h.backend));
    }
    if let Some((_, actual)) = mismatch(&seen.hits, m) {
        return fail(expected, actual);
    }
    match (&reply.error, reply.content.is_empty(), &reply.aborted) {
        (Some(e), _, _) => fail(expected, format!("routed right, but the client got {e}")),
        (None, true, _) => fail(expected, "routed right, but empty content"),
        (None, false, Some(a)) => fail(expected, format!("routed right, but the reply broke off: {a}")),
        (None, false, None) => pass(
            expected,
            format!("backend `{want}`, upstream model `{}`", m.identifier.model),
        ),
    }
}
