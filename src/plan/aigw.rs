//! The plan for the AI gateway API (`kind: aigw` and the built-in gateway): gateprobe
//! plays the GitLab instance of the scenario's version, so every probe is a feature
//! request in that version's shape ([`crate::instance`]), and a feature that version
//! does not serve for a model's family is skipped, saying why.
//!
//! Each model is probed for routing, endpoint and key handling through one feature its
//! family is served on (Duo Chat where it can, else code completions, ...). Error paths
//! (an endpoint without `/v1`, scripted backend faults) are probed on every surface a
//! served feature reaches: the chat agent's ndjson, code suggestions plain and
//! streamed, prompts plain and streamed. A model whose backend scripts a fault for it
//! is a *fault model* and gets only `resilience` checks.

use super::proxy::model_fault;
use super::{Judge, Plan, Probe, Variant};
use crate::adapter::ClientAuth;
use crate::check::profile::{Profile, fault_key};
use crate::feature::{self, Endpoint, FEATURES, Feature};
use crate::identifier::{Provider, has_v1_suffix};
use crate::instance::{Shapes, Surface, served, surface};
use crate::scenario::{BuiltinAuth, CheckFamily, GatewayKind, ModelConfig, Scenario, Target};

/// The features a model is probed through, most telling first: Duo Chat (the agent
/// reads the whole reply), code completions, code generations, then the prompts.
fn preference() -> impl Iterator<Item = &'static Feature> {
    let first = ["duo_chat", "code_completions", "code_generations"];
    first
        .into_iter()
        .filter_map(feature::by_name)
        .chain(FEATURES.iter().filter(move |f| !first.contains(&f.name)))
}

/// The feature a model is probed through for routing, endpoint and keys, or why there
/// is none.
pub fn routing_feature(shapes: Shapes, m: &ModelConfig) -> Result<&'static Feature, String> {
    preference()
        .find(|f| served(shapes, f, &m.family).is_ok())
        .ok_or_else(|| {
            format!(
                "GitLab {} serves no feature gateprobe probes with family `{}`",
                shapes.name(),
                m.family
            )
        })
}

/// A served feature of `m` whose request reaches `surface`, with the `stream` flag
/// that gets it there.
fn feature_on(shapes: Shapes, m: &ModelConfig, surf: Surface) -> Option<(&'static Feature, bool)> {
    preference().find_map(|f| {
        if served(shapes, f, &m.family).is_err() {
            return None;
        }
        [false, true]
            .into_iter()
            .find(|&stream| surface(shapes, f, stream) == surf)
            .map(|stream| (f, stream))
    })
}

/// The stream flag a probe of `f` asks with for routing: the chat agent always
/// streams; code suggestions are asked plain.
fn natural_stream(f: &Feature) -> bool {
    f.endpoint == Endpoint::ChatAgent
}

/// Whether a model's endpoint ends in `/v1` as configured.
fn v1(m: &ModelConfig) -> bool {
    m.endpoint
        .as_ref()
        .is_some_and(|e| has_v1_suffix(&e.render(|_| Some(String::new()))))
}

pub(super) fn compile(s: &Scenario) -> Plan {
    let mut plan = Plan::default();
    let shapes = s.instance.shapes;
    let profile = &s.gateway.profile;
    let wants = |f: CheckFamily| s.checks.contains(&f);
    let probe = |feature: &'static Feature, model: usize, stream: bool| Probe {
        feature,
        model,
        variant: Variant::AsConfigured,
        auth: ClientAuth::Valid,
        stream,
        identifier: None,
        alias: None,
    };
    let unseen = "the endpoint is not a gateprobe mock, so what the backend received cannot be seen";
    // Surfaces whose error path an endpoint without /v1 has been probed on.
    let mut missing_v1_done: Vec<Surface> = Vec::new();

    for (i, m) in s.models.iter().enumerate() {
        if let Some(action) = model_fault(s, m) {
            if wants(CheckFamily::Resilience) {
                resilience(&mut plan, s, i, &fault_key(action));
            }
            continue;
        }
        let observed = m.backend.is_some();
        let routed = routing_feature(shapes, m);
        if wants(CheckFamily::Endpoint) {
            configured_v1(&mut plan, i, m);
        }
        let f = match (routed, observed) {
            (Ok(f), true) => f,
            (routed, _) => {
                let why = routed.err().unwrap_or_else(|| unseen.to_owned());
                if wants(CheckFamily::Routing) {
                    plan.skipped(
                        CheckFamily::Routing,
                        format!("routing.{}.backend", m.name),
                        RULE_BACKEND,
                        Judge::Backend { model: i },
                        &why,
                    );
                    plan.skipped(
                        CheckFamily::Routing,
                        format!("routing.{}.model", m.name),
                        RULE_MODEL,
                        Judge::ModelName { model: i },
                        &why,
                    );
                }
                continue;
            }
        };
        let base = probe(f, i, natural_stream(f));
        let surf = surface(shapes, f, base.stream);
        if wants(CheckFamily::Routing) {
            let p = plan.probe(base.clone());
            plan.check(
                CheckFamily::Routing,
                format!("routing.{}.backend", m.name),
                RULE_BACKEND,
                Judge::Backend { model: i },
                vec![p],
            );
            plan.check(
                CheckFamily::Routing,
                format!("routing.{}.model", m.name),
                RULE_MODEL,
                Judge::ModelName { model: i },
                vec![p],
            );
            if m.identifier.provider == Provider::Bedrock && natural_stream(f) {
                plan.check(
                    CheckFamily::Routing,
                    format!("routing.{}.operation", m.name),
                    "Bedrock chat streams through invoke-with-response-stream (Mistral ids) or converse-stream",
                    Judge::BedrockOperation { model: i },
                    vec![p],
                );
            }
        }
        if wants(CheckFamily::Endpoint) {
            let azure = m.identifier.provider == Provider::Azure;
            let v1 = v1(m);
            if v1 && !azure {
                let p = plan.probe(base.clone());
                plan.check(
                    CheckFamily::Endpoint,
                    format!("endpoint.{}.v1_path", m.name),
                    "an endpoint ending in /v1 is called at /v1/chat/completions, nothing added or removed",
                    Judge::UpstreamPath { model: i },
                    vec![p],
                );
            }
            if v1 || azure {
                let mut q = base.clone();
                q.variant = Variant::TrailingSlash;
                let p = plan.probe(q);
                plan.check(
                    CheckFamily::Endpoint,
                    format!("endpoint.{}.trailing_slash", m.name),
                    "a trailing slash on the endpoint does not double the slash",
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
            if v1 && !azure && m.identifier.provider == Provider::CustomOpenai {
                missing_v1(
                    &mut plan,
                    profile,
                    i,
                    format!("endpoint.{}.missing_v1", m.name),
                    base.clone(),
                    surf,
                );
                missing_v1_done.push(surf);
            }
        }
        if wants(CheckFamily::Auth) {
            let p = plan.probe(base.clone());
            let (name, rule, judge) = match (&m.api_key, m.identifier.provider) {
                (_, Provider::Bedrock) => (
                    "signed",
                    "Bedrock calls are SigV4-signed with the gateway's credentials, for its region, and accepted",
                    Judge::Signed { model: i },
                ),
                (Some(_), Provider::Azure) => (
                    "key_forwarded",
                    "the model's API key reaches the backend as `api-key: <key>`, and the backend accepts it",
                    Judge::KeyForwarded { model: i },
                ),
                (Some(_), _) => (
                    "key_forwarded",
                    "the model's API key reaches the backend as `Authorization: Bearer <key>`, and the backend accepts it",
                    Judge::KeyForwarded { model: i },
                ),
                (None, _) => (
                    "no_foreign_key",
                    "a model without an API key is sent no other model's key, and no stringified null (`Bearer None`)",
                    Judge::NoForeignKey { model: i },
                ),
            };
            plan.check(
                CheckFamily::Auth,
                format!("auth.{}.{name}", m.name),
                rule,
                judge,
                vec![p],
            );
        }
    }

    // The error path of an endpoint without /v1 on every other surface a served
    // feature of an OpenAI-compatible model reaches.
    if wants(CheckFamily::Endpoint) {
        for surf in Surface::ALL {
            if missing_v1_done.contains(&surf) {
                continue;
            }
            let found = s.models.iter().enumerate().find_map(|(i, m)| {
                let usable = m.backend.is_some()
                    && model_fault(s, m).is_none()
                    && m.identifier.provider == Provider::CustomOpenai
                    && v1(m);
                usable
                    .then(|| feature_on(shapes, m, surf))
                    .flatten()
                    .map(|(f, stream)| (i, probe(f, i, stream)))
            });
            if let Some((i, q)) = found {
                let id = format!("endpoint.{}.missing_v1_{}", s.models[i].name, surf.name());
                missing_v1(&mut plan, profile, i, id, q, surf);
            }
        }
    }

    let observed = s
        .models
        .iter()
        .position(|m| m.backend.is_some() && model_fault(s, m).is_none());
    if wants(CheckFamily::Routing) && !s.models.is_empty() {
        empty_identifier(&mut plan, s, observed);
        invalid_metadata(&mut plan, s);
    }
    if wants(CheckFamily::Auth) && !s.models.is_empty() {
        client_auth(&mut plan, s, observed);
    }

    if wants(CheckFamily::FeatureMapping) {
        for fs in &s.features {
            let f = fs.feature;
            match fs.target {
                Target::Model(i) | Target::Fallback(i) => {
                    let m = &s.models[i];
                    let (id, rule) = super::routed_id(fs);
                    let judge = Judge::FeatureRouted { model: i };
                    if let Err(why) = served(shapes, f, &m.family) {
                        plan.skipped(CheckFamily::FeatureMapping, id, rule, judge, &why);
                    } else if m.backend.is_none() {
                        plan.skipped(CheckFamily::FeatureMapping, id, rule, judge, unseen);
                    } else if model_fault(s, m).is_none() {
                        let p = plan.probe(probe(f, i, false));
                        plan.check(CheckFamily::FeatureMapping, id, rule, judge, vec![p]);
                    }
                }
                Target::Disabled => plan.skipped(
                    CheckFamily::FeatureMapping,
                    format!("feature_mapping.{}.disabled", f.name),
                    "a disabled feature causes no backend traffic",
                    Judge::FeatureDisabled,
                    "with the AI gateway API the GitLab instance enforces Disabled and never calls the gateway; \
                     nothing on the gateway side can be observed",
                ),
                Target::Vendored => plan.skipped(
                    CheckFamily::FeatureMapping,
                    format!("feature_mapping.{}.vendored", f.name),
                    "a vendored feature causes no self-hosted traffic",
                    Judge::FeatureDisabled,
                    super::VENDORED_SKIP,
                ),
            }
        }
    }

    if wants(CheckFamily::Streaming) {
        for fs in &s.features {
            let (Target::Model(i) | Target::Fallback(i)) = fs.target else {
                continue;
            };
            let f = fs.feature;
            let m = &s.models[i];
            if !surface(shapes, f, true).streams() || m.backend.is_none() || model_fault(s, m).is_some() {
                continue;
            }
            let id = format!("streaming.{}", f.name);
            let rule = "a streamed reply is well-formed, carries non-empty content and ends properly";
            let judge = Judge::Stream {
                surface: surface(shapes, f, true),
            };
            if let Err(why) = served(shapes, f, &m.family) {
                plan.skipped(CheckFamily::Streaming, id, rule, judge, &why);
                continue;
            }
            let p = plan.probe(probe(f, i, true));
            plan.check(CheckFamily::Streaming, id, rule, judge, vec![p]);
        }
        error_end(&mut plan);
    }

    if wants(CheckFamily::Auth) && s.models.iter().any(|m| m.api_key.is_some()) {
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

const RULE_BACKEND: &str = "the request reaches the backend of the model's endpoint, and no other backend";
const RULE_MODEL: &str =
    "the upstream `model` is the identifier without its provider prefix, and the backend serves it";

/// `endpoint.<model>.v1_suffix`: what the admin configured, judged before any request.
fn configured_v1(plan: &mut Plan, i: usize, m: &ModelConfig) {
    if m.identifier.provider != Provider::CustomOpenai || m.endpoint.is_none() {
        return;
    }
    plan.check(
        CheckFamily::Endpoint,
        format!("endpoint.{}.v1_suffix", m.name),
        "an OpenAI-compatible endpoint is configured with its /v1 (the gateway never adds it; without it vLLM answers 404)",
        Judge::ConfiguredV1 { model: i },
        vec![],
    );
}

fn missing_v1(plan: &mut Plan, profile: &Profile, model: usize, id: String, mut q: Probe, surf: Surface) {
    let key = Profile::missing_v1_key(surf);
    let rule = "an endpoint without /v1 is not silently fixed: the backend's 404 surfaces as the profile predicts, never as an empty 200";
    let judge = Judge::MissingV1 { model, key };
    if profile.get(key).is_none() {
        plan.skipped(
            CheckFamily::Endpoint,
            id,
            rule,
            judge,
            &format!("profile `{}` predicts no outcome for `{key}`", profile.name),
        );
        return;
    }
    q.variant = Variant::WithoutV1;
    let p = plan.probe(q);
    plan.check(CheckFamily::Endpoint, id, rule, judge, vec![p]);
}

/// `resilience.<model>.<surface>`: a fault model's scripted fault on every surface its
/// family is served on.
fn resilience(plan: &mut Plan, s: &Scenario, i: usize, fk: &str) {
    let m = &s.models[i];
    let profile = &s.gateway.profile;
    for surf in Surface::ALL {
        let key = format!("backend.{fk}.{}", surf.name());
        let id = format!("resilience.{}.{}", m.name, surf.name());
        let rule = format!(
            "a backend `{fk}` reaches the client on the {} surface as the profile predicts",
            surf.name()
        );
        let judge = Judge::Profiled {
            key: key.clone(),
            reached: true,
        };
        let Some((f, stream)) = feature_on(s.instance.shapes, m, surf) else {
            plan.skipped(
                CheckFamily::Resilience,
                id,
                &rule,
                judge,
                &format!(
                    "GitLab {} serves no feature whose reply is `{}` with family `{}`",
                    s.instance.shapes.name(),
                    surf.name(),
                    m.family
                ),
            );
            continue;
        };
        if profile.get(&key).is_some() {
            let mut q = Probe {
                feature: f,
                model: i,
                variant: Variant::AsConfigured,
                auth: ClientAuth::Valid,
                stream,
                identifier: None,
                alias: None,
            };
            q.stream = stream;
            let p = plan.probe(q);
            plan.check(CheckFamily::Resilience, id, &rule, judge, vec![p]);
        } else {
            plan.skipped(
                CheckFamily::Resilience,
                id,
                &rule,
                judge,
                &format!("profile `{}` predicts no outcome for `{key}`", profile.name),
            );
        }
    }
}

/// `routing.empty_identifier`. "No upstream call" can only be seen on a gateprobe
/// mock: the probe goes to the first model served by one, through code generations
/// when its family is served there.
fn empty_identifier(plan: &mut Plan, s: &Scenario, observed: Option<usize>) {
    let (id, rule) = (
        "routing.empty_identifier".to_owned(),
        "an empty model identifier is an error and causes no upstream call",
    );
    let Some(model) = observed else {
        plan.skipped(
            CheckFamily::Routing,
            id,
            rule,
            Judge::EmptyIdentifier,
            "no model's endpoint is a gateprobe mock, so an upstream call could not be seen",
        );
        return;
    };
    let m = &s.models[model];
    let shapes = s.instance.shapes;
    let f = ["code_generations", "code_completions"]
        .into_iter()
        .filter_map(feature::by_name)
        .find(|f| served(shapes, f, &m.family).is_ok())
        .or_else(|| routing_feature(shapes, m).ok());
    let Some(f) = f else {
        plan.skipped(
            CheckFamily::Routing,
            id,
            rule,
            Judge::EmptyIdentifier,
            &format!("GitLab {} serves no feature with family `{}`", shapes.name(), m.family),
        );
        return;
    };
    let p = plan.probe(Probe {
        feature: f,
        model,
        variant: Variant::AsConfigured,
        auth: ClientAuth::Valid,
        stream: natural_stream(f),
        identifier: Some(String::new()),
        alias: None,
    });
    plan.check(CheckFamily::Routing, id, rule, Judge::EmptyIdentifier, vec![p]);
}

/// `routing.invalid_metadata`: model metadata the gateway cannot accept (an empty
/// endpoint for an OpenAI-compatible model) is refused with an error, and neither the
/// model's backend nor another model serves the request.
fn invalid_metadata(plan: &mut Plan, s: &Scenario) {
    let id = "routing.invalid_metadata".to_owned();
    let rule = "invalid self-hosted model metadata (an empty endpoint) is refused with an error, never served by another model";
    let found = s.models.iter().enumerate().find_map(|(i, m)| {
        (m.backend.is_some() && model_fault(s, m).is_none() && m.identifier.provider == Provider::CustomOpenai)
            .then(|| routing_feature(s.instance.shapes, m).ok())
            .flatten()
            .map(|f| (i, f))
    });
    let Some((model, f)) = found else {
        plan.skipped(
            CheckFamily::Routing,
            id,
            rule,
            Judge::InvalidMetadata,
            "no OpenAI-compatible model's endpoint is a gateprobe mock, so a call to it could not be seen",
        );
        return;
    };
    let p = plan.probe(Probe {
        feature: f,
        model,
        variant: Variant::Empty,
        auth: ClientAuth::Valid,
        stream: natural_stream(f),
        identifier: None,
        alias: None,
    });
    plan.check(CheckFamily::Routing, id, rule, Judge::InvalidMetadata, vec![p]);
}

fn client_auth(plan: &mut Plan, s: &Scenario, observed: Option<usize>) {
    let enforced = s.gateway.kind == GatewayKind::Aigw || s.gateway.builtin_auth == BuiltinAuth::Enforce;
    let model = observed.unwrap_or(0);
    let f = routing_feature(s.instance.shapes, &s.models[model]).unwrap_or(&FEATURES[0]);
    let probe = |auth| Probe {
        feature: f,
        model,
        variant: Variant::AsConfigured,
        auth,
        stream: natural_stream(f),
        identifier: None,
        alias: None,
    };
    for (auth, name, rule, unplanned) in [
        (
            ClientAuth::Missing,
            "missing_token",
            "a request without client credentials gets 401 and touches no backend",
            (!enforced).then_some("the built-in gateway runs with auth bypassed"),
        ),
        (
            ClientAuth::WrongToken,
            "wrong_token",
            "a request with a wrong token gets 401 and touches no backend",
            (!enforced || s.gateway.token.is_none()).then_some("no client token is configured, so no token is wrong"),
        ),
    ] {
        let (id, judge) = (format!("auth.client.{name}"), Judge::ClientRejected { auth });
        match unplanned {
            Some(why) => plan.skipped(CheckFamily::Auth, id, rule, judge, why),
            None => {
                let p = plan.probe(probe(auth));
                plan.check(CheckFamily::Auth, id, rule, judge, vec![p]);
            }
        }
    }
}

/// `streaming.chat_agent.error_end`: every chat stream that carried an error event
/// (the error-path probes planned so far) ends properly.
fn error_end(plan: &mut Plan) {
    let probes: Vec<usize> = plan
        .checks
        .iter()
        .filter(|c| c.skip.is_none())
        .filter(|c| match &c.judge {
            Judge::MissingV1 { key, .. } => *key == Profile::missing_v1_key(Surface::ChatAgent),
            Judge::Profiled { key, .. } => key.ends_with(".chat_agent"),
            _ => false,
        })
        .flat_map(|c| c.probes.iter().copied())
        .collect();
    if probes.is_empty() {
        return;
    }
    plan.check(
        CheckFamily::Streaming,
        "streaming.chat_agent.error_end".into(),
        "a chat stream that carries an error event is still terminated properly (the chunked body ends), so a client tells a reported error from a broken connection",
        Judge::ErrorEnd,
        probes,
    );
}
