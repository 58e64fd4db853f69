//! The plan for an OpenAI-compatible proxy (`kind: openai`): features and models are
//! aliases, client auth is a bearer key, and the endpoint variants (without `/v1`, with
//! a trailing slash) are aliases of their own that the proxy's config declares.
//!
//! A model whose backend scripts a fault for it (`faults: [{when: {model: M}, ...}]`)
//! is a *fault model*: it gets only `resilience` checks, which expect the outcome the
//! gateway profile predicts for that fault.

use super::{Judge, Plan, Probe, Variant};
use crate::adapter::ClientAuth;
use crate::check::profile::fault_key;
use crate::feature::{Endpoint, Feature};
use crate::identifier::{Provider, has_v1_suffix};
use crate::scenario::behavior::{FaultAction, Match};
use crate::scenario::{CheckFamily, FeaturesBy, ModelConfig, Scenario, Target};

/// Alias suffix of the endpoint without `/v1`.
pub const NO_V1_SUFFIX: &str = "--no-v1";
/// Alias suffix of the endpoint with a trailing slash.
pub const SLASH_SUFFIX: &str = "--slash";

/// The scripted fault a model's backend plays for it, if it is a fault model.
pub fn model_fault<'a>(s: &'a Scenario, m: &ModelConfig) -> Option<&'a FaultAction> {
    let b = &s.backends[m.backend?];
    b.faults
        .iter()
        .find(|r| matches!(&r.when, Match::Model(x) if *x == m.identifier.model))
        .map(|r| &r.action)
}

fn chat() -> &'static Feature {
    super::chat()
}

pub(super) fn compile(s: &Scenario) -> Plan {
    let mut plan = Plan::default();
    let g = &s.gateway;
    let profile = &g.profile;
    let wants = |f: CheckFamily| s.checks.contains(&f);
    let probe = |model: usize, alias: String, feature: &'static Feature, stream: bool, auth| Probe {
        feature,
        model,
        variant: Variant::AsConfigured,
        auth,
        stream,
        identifier: None,
        alias: Some(alias),
    };
    let unpinned = |key: &str| format!("profile `{}` predicts no outcome for `{key}`", profile.name);
    let mut first_plain = None;

    for (i, m) in s.models.iter().enumerate() {
        let alias = g.alias(&m.name);
        if let Some(action) = model_fault(s, m) {
            if wants(CheckFamily::Resilience) {
                let fk = fault_key(action);
                for (api, stream) in [("chat", false), ("chat_stream", true)] {
                    let key = format!("backend.{fk}.{api}");
                    let id = format!("resilience.{}.{api}", m.name);
                    let rule = format!(
                        "a backend `{fk}` on a {} request reaches the client as the profile predicts",
                        if stream { "streaming" } else { "plain" }
                    );
                    let judge = Judge::Profiled {
                        key: key.clone(),
                        reached: true,
                    };
                    if profile.get(&key).is_some() {
                        let p = plan.probe(probe(i, alias.clone(), chat(), stream, ClientAuth::Valid));
                        plan.check(CheckFamily::Resilience, id, &rule, judge, vec![p]);
                    } else {
                        plan.skipped(CheckFamily::Resilience, id, &rule, judge, &unpinned(&key));
                    }
                }
            }
            continue;
        }
        let observed = m.backend.is_some();
        let base = probe(i, alias.clone(), chat(), false, ClientAuth::Valid);
        if observed && first_plain.is_none() {
            first_plain = Some(i);
        }
        if wants(CheckFamily::Routing) {
            let rule_b = "the request reaches the backend of the alias's model, and no other backend";
            let rule_m = "the upstream `model` is the identifier without its provider prefix";
            let (id_b, id_m) = (
                format!("routing.{}.backend", m.name),
                format!("routing.{}.model", m.name),
            );
            if observed {
                let p = plan.probe(base.clone());
                plan.check(CheckFamily::Routing, id_b, rule_b, Judge::Backend { model: i }, vec![p]);
                plan.check(
                    CheckFamily::Routing,
                    id_m,
                    rule_m,
                    Judge::ModelName { model: i },
                    vec![p],
                );
            } else {
                let why = "the endpoint is not a gateprobe mock, so what the backend received cannot be seen";
                plan.skipped(CheckFamily::Routing, id_b, rule_b, Judge::Backend { model: i }, why);
                plan.skipped(CheckFamily::Routing, id_m, rule_m, Judge::ModelName { model: i }, why);
            }
        }
        if wants(CheckFamily::Endpoint) && observed {
            let azure = m.identifier.provider == Provider::Azure;
            let v1 = m
                .endpoint
                .as_ref()
                .is_some_and(|e| has_v1_suffix(&e.render(|_| Some(String::new()))));
            if v1 && !azure {
                let p = plan.probe(base.clone());
                plan.check(
                    CheckFamily::Endpoint,
                    format!("endpoint.{}.v1_path", m.name),
                    "an api_base ending in /v1 is called at /v1/chat/completions, nothing added or removed",
                    Judge::UpstreamPath { model: i },
                    vec![p],
                );
            }
            if azure {
                let p = plan.probe(base.clone());
                plan.check(
                    CheckFamily::Endpoint,
                    format!("endpoint.{}.api_version", m.name),
                    "Azure deployments are called with an api-version (without one Azure answers 404)",
                    Judge::ApiVersion { model: i },
                    vec![p],
                );
            }
            if g.endpoint_variants && (v1 || azure) {
                let mut q = probe(i, format!("{alias}{SLASH_SUFFIX}"), chat(), false, ClientAuth::Valid);
                q.variant = Variant::TrailingSlash;
                let p = plan.probe(q);
                plan.check(
                    CheckFamily::Endpoint,
                    format!("endpoint.{}.trailing_slash", m.name),
                    "a trailing slash on the api_base does not double the slash",
                    Judge::UpstreamPath { model: i },
                    vec![p],
                );
            }
            if g.endpoint_variants && v1 && !azure {
                let key = "missing_v1.chat";
                let id = format!("endpoint.{}.missing_v1", m.name);
                let rule = "an api_base without /v1 is not silently fixed: the backend's 404 reaches the client as the profile predicts";
                let judge = Judge::MissingV1 { model: i, key };
                if profile.get(key).is_some() {
                    let mut q = probe(i, format!("{alias}{NO_V1_SUFFIX}"), chat(), false, ClientAuth::Valid);
                    q.variant = Variant::WithoutV1;
                    let p = plan.probe(q);
                    plan.check(CheckFamily::Endpoint, id, rule, judge, vec![p]);
                } else {
                    plan.skipped(CheckFamily::Endpoint, id, rule, judge, &unpinned(key));
                }
            }
        }
        if wants(CheckFamily::Auth) && observed {
            let p = plan.probe(base.clone());
            match (&m.api_key, m.identifier.provider) {
                (_, Provider::Bedrock) => plan.check(
                    CheckFamily::Auth,
                    format!("auth.{}.signed", m.name),
                    "Bedrock calls are SigV4-signed with the proxy's credentials, for its region, and accepted",
                    Judge::Signed { model: i },
                    vec![p],
                ),
                (Some(_), _) => plan.check(
                    CheckFamily::Auth,
                    format!("auth.{}.key_forwarded", m.name),
                    "the model's API key reaches the backend (`Authorization: Bearer`, Azure `api-key`)",
                    Judge::KeyForwarded { model: i },
                    vec![p],
                ),
                (None, _) => plan.check(
                    CheckFamily::Auth,
                    format!("auth.{}.no_foreign_key", m.name),
                    "a model without an API key is not sent another model's key",
                    Judge::NoForeignKey { model: i },
                    vec![p],
                ),
            }
        }
    }

    if wants(CheckFamily::Auth)
        && let Some(i) = first_plain
    {
        let alias = g.alias(&s.models[i].name);
        for (auth, key, name, rule) in [
            (
                ClientAuth::Missing,
                "client_auth.missing",
                "missing_token",
                "a request without a client key is refused and touches no backend",
            ),
            (
                ClientAuth::WrongToken,
                "client_auth.wrong",
                "wrong_token",
                "a request with a wrong client key is refused and touches no backend",
            ),
        ] {
            let id = format!("auth.client.{name}");
            let judge = Judge::ClientRejected { auth };
            if g.token.is_none() {
                plan.skipped(CheckFamily::Auth, id, rule, judge, "no client key is configured");
            } else if profile.get(key).is_none() {
                plan.skipped(CheckFamily::Auth, id, rule, judge, &unpinned(key));
            } else {
                let p = plan.probe(probe(i, alias.clone(), chat(), false, auth));
                plan.check(CheckFamily::Auth, id, rule, judge, vec![p]);
            }
        }
    }

    let usable = |i: usize| s.models[i].backend.is_some() && model_fault(s, &s.models[i]).is_none();
    let feature_alias = |f: &Feature, i: usize| match g.features_by {
        FeaturesBy::Feature => g.alias(f.name),
        FeaturesBy::Model => g.alias(&s.models[i].name),
    };
    if wants(CheckFamily::FeatureMapping) {
        for fs in &s.features {
            let f = fs.feature;
            match fs.target {
                Target::Model(i) | Target::Fallback(i) if usable(i) => {
                    let p = plan.probe(probe(i, feature_alias(f, i), f, false, ClientAuth::Valid));
                    plan.feature_routed(fs, i, p);
                }
                Target::Model(_) | Target::Fallback(_) => {}
                Target::Vendored => plan.skipped(
                    CheckFamily::FeatureMapping,
                    format!("feature_mapping.{}.vendored", f.name),
                    "a vendored feature causes no self-hosted traffic",
                    Judge::FeatureDisabled,
                    super::VENDORED_SKIP,
                ),
                Target::Disabled => {
                    let id = format!("feature_mapping.{}.disabled", f.name);
                    let rule = "a disabled feature is refused and causes no backend traffic";
                    let key = "feature.disabled";
                    let judge = Judge::Profiled {
                        key: key.into(),
                        reached: false,
                    };
                    match (g.features_by, profile.get(key), first_plain) {
                        (FeaturesBy::Model, _, _) => plan.skipped(
                            CheckFamily::FeatureMapping,
                            id,
                            rule,
                            judge,
                            "with one alias per model the client enforces Disabled; nothing on the proxy side can be observed",
                        ),
                        (FeaturesBy::Feature, Some(_), Some(m)) => {
                            let p = plan.probe(probe(m, g.alias(f.name), f, false, ClientAuth::Valid));
                            plan.check(CheckFamily::FeatureMapping, id, rule, judge, vec![p]);
                        }
                        (FeaturesBy::Feature, None, _) => {
                            plan.skipped(CheckFamily::FeatureMapping, id, rule, judge, &unpinned(key));
                        }
                        (FeaturesBy::Feature, Some(_), None) => {}
                    }
                }
            }
        }
    }

    if wants(CheckFamily::Streaming) {
        for fs in &s.features {
            let (Target::Model(i) | Target::Fallback(i)) = fs.target else {
                continue;
            };
            let f = fs.feature;
            if !matches!(
                f.endpoint,
                Endpoint::ChatAgent | Endpoint::CodeCompletions | Endpoint::CodeGenerations
            ) || !usable(i)
            {
                continue;
            }
            let p = plan.probe(probe(i, feature_alias(f, i), f, true, ClientAuth::Valid));
            plan.check(
                CheckFamily::Streaming,
                format!("streaming.{}", f.name),
                "a streamed reply is exact SSE: JSON data frames, content, a finish reason, then [DONE]",
                Judge::SseStream,
                vec![p],
            );
        }
    }

    if wants(CheckFamily::Auth) && s.models.iter().any(|m| m.api_key.is_some()) && !plan.probes.is_empty() {
        plan.check(
            CheckFamily::Auth,
            "auth.key_not_leaked".into(),
            "no configured API key appears in any gateway response",
            Judge::KeyNotLeaked,
            (0..plan.probes.len()).collect(),
        );
    }
    plan
}
