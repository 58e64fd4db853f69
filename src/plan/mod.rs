//! Compiling a scenario into a plan: the probes (client requests) to send, in order,
//! and the checks that judge them. Executors only execute plans. What a gateway kind
//! must answer comes from the scenario's gateway profile; a check whose outcome the
//! profile does not pin is planned as skipped, saying so.

pub mod proxy;

use crate::adapter::ClientAuth;
use crate::feature::{self, Endpoint, Feature};
use crate::identifier::{Provider, has_v1_suffix};
use crate::scenario::{BuiltinAuth, CheckFamily, GatewayKind, Scenario, Target};

/// How a probe bends the model's endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// As the admin configured it.
    AsConfigured,
    /// With one trailing slash added.
    TrailingSlash,
    /// With its `/v1` suffix removed (the classic misconfiguration).
    WithoutV1,
}

/// One client request to send.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Probe {
    /// The feature whose request is sent.
    pub feature: &'static Feature,
    /// Index of the self-hosted model whose fields go with it.
    pub model: usize,
    /// Endpoint variant.
    pub variant: Variant,
    /// Client credentials.
    pub auth: ClientAuth,
    /// Request a stream.
    pub stream: bool,
    /// Send this identifier instead of the model's.
    pub identifier: Option<String>,
    /// `openai` gateways: the proxy alias to call (`model` of the request).
    pub alias: Option<String>,
}

/// How a check judges its probes' evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Judge {
    /// Every backend request lands on the model's backend, and at least one does.
    Backend { model: usize },
    /// The upstream `model` is the identifier's model part.
    ModelName { model: usize },
    /// No upstream call, and an error to the client.
    EmptyIdentifier,
    /// The backend sees the provider's path under the endpoint (`/v1/chat/completions`,
    /// `/openai/deployments/D/chat/completions`) and the client gets content.
    UpstreamPath { model: usize },
    /// Azure calls carry `api-version`.
    ApiVersion { model: usize },
    /// Bedrock calls are SigV4-signed with the gateway's credentials for its region,
    /// and the runtime accepted the signature.
    Signed { model: usize },
    /// Bedrock chat uses `invoke-with-response-stream` for Mistral ids and
    /// `converse-stream` for the others.
    BedrockOperation { model: usize },
    /// Upstream sees `/chat/completions` (404) and the client gets the profile's outcome
    /// for `key` (`missing_v1.<surface>`).
    MissingV1 { model: usize, key: &'static str },
    /// Rejected with the profile's outcome (`client_auth.missing|wrong`) and no backend
    /// traffic.
    ClientRejected { auth: ClientAuth },
    /// The client gets the profile's outcome for `key`; `reached` says whether the backend
    /// must have been called (a scripted backend fault) or must not (a disabled feature).
    Profiled { key: String, reached: bool },
    /// An OpenAI-style SSE stream: `data:` JSON frames, content, a finish reason, `[DONE]`.
    SseStream,
    /// The backend gets `Authorization: Bearer <key>`.
    KeyForwarded { model: usize },
    /// The backend gets no other model's key.
    NoForeignKey { model: usize },
    /// No configured key appears in any gateway response.
    KeyNotLeaked,
    /// The feature lands on its model (explicitly or by fallback) with content.
    FeatureRouted { model: usize },
    /// The feature is disabled (instance-side for `aigw`, never judged there).
    FeatureDisabled,
    /// The reply stream is well-formed with non-empty content.
    Stream { endpoint: Endpoint },
    /// `kind: direct`: a check of a model endpoint itself.
    Vendor(VendorRule),
}

/// What a `vendor` check asserts about a model endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VendorRule {
    /// The endpoint ends in `/v1` (what the AI gateway needs).
    V1Suffix,
    /// `GET {endpoint}/models` lists the identifier's model.
    Models,
    /// A non-streaming chat completion is well-formed.
    Chat,
    /// A streaming chat completion is well-formed SSE with usage and `[DONE]`.
    Stream,
    /// A wrong key gets 401 with a parseable error body.
    WrongKey,
    /// An unknown model gets 404 with a parseable error body.
    UnknownModel,
}

/// A request straight to a model endpoint (`kind: direct`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DirectOp {
    /// `GET {endpoint}/models`.
    Models,
    /// `GET {endpoint without /v1}/models`.
    ModelsWithoutV1,
    /// Chat completion with the model's key.
    Chat { stream: bool },
    /// Chat completion with a wrong key.
    WrongKey,
    /// Chat completion for a model that does not exist.
    UnknownModel,
}

/// One direct request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DirectProbe {
    /// Index of the self-hosted model.
    pub model: usize,
    /// What to send.
    pub op: DirectOp,
}

/// A check to judge.
#[derive(Clone, Debug)]
pub struct PlannedCheck {
    /// Stable id.
    pub id: String,
    /// Family.
    pub family: CheckFamily,
    /// The rule in words.
    pub rule: String,
    /// How to judge.
    pub judge: Judge,
    /// Probes (indices into [`Plan::probes`]) whose evidence it reads; `KeyNotLeaked`
    /// reads all of them.
    pub probes: Vec<usize>,
    /// Why it does not apply, when it does not.
    pub skip: Option<String>,
}

/// The compiled run.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Requests through the gateway, in sending order.
    pub probes: Vec<Probe>,
    /// Requests straight to model endpoints (`kind: direct`); `Judge::Vendor` checks
    /// index into these.
    pub direct: Vec<DirectProbe>,
    /// Checks, in report order.
    pub checks: Vec<PlannedCheck>,
}

impl Plan {
    fn probe(&mut self, p: Probe) -> usize {
        if let Some(i) = self.probes.iter().position(|q| *q == p) {
            return i;
        }
        self.probes.push(p);
        self.probes.len() - 1
    }

    fn check(&mut self, family: CheckFamily, id: String, rule: &str, judge: Judge, probes: Vec<usize>) {
        self.checks.push(PlannedCheck {
            id,
            family,
            rule: rule.to_owned(),
            judge,
            probes,
            skip: None,
        });
    }

    /// The check that a mapped (or falling-back) feature lands on model `model`.
    pub(crate) fn feature_routed(&mut self, fs: &crate::scenario::FeatureSetting, model: usize, probe: usize) {
        let name = fs.feature.name;
        let (id, rule) = if matches!(fs.target, Target::Fallback(_)) {
            (
                format!("feature_mapping.{name}.fallback"),
                "a Chat sub-feature without a model lands on duo_chat's model",
            )
        } else {
            (
                format!("feature_mapping.{name}.mapped"),
                "the feature lands on the model it is mapped to",
            )
        };
        self.check(
            CheckFamily::FeatureMapping,
            id,
            rule,
            Judge::FeatureRouted { model },
            vec![probe],
        );
    }

    fn skipped(&mut self, family: CheckFamily, id: String, rule: &str, judge: Judge, why: &str) {
        self.checks.push(PlannedCheck {
            id,
            family,
            rule: rule.to_owned(),
            judge,
            probes: vec![],
            skip: Some(why.to_owned()),
        });
    }
}

fn chat() -> &'static Feature {
    feature::by_name(feature::DUO_CHAT).unwrap_or(&feature::FEATURES[2])
}

fn generations() -> &'static Feature {
    feature::by_name("code_generations").unwrap_or(&feature::FEATURES[1])
}

/// Compiles the scenario. `raw_endpoint(i)` says whether model `i`'s endpoint is one
/// of our mocks (only then can backend-side evidence be judged).
pub fn compile(s: &Scenario) -> Plan {
    if s.gateway.kind == GatewayKind::Direct {
        return compile_direct(s);
    }
    if s.gateway.kind == GatewayKind::Openai {
        return proxy::compile(s);
    }
    let mut plan = Plan::default();
    let wants = |f: CheckFamily| s.checks.contains(&f);
    let base = |model: usize, variant: Variant| Probe {
        feature: chat(),
        model,
        variant,
        auth: ClientAuth::Valid,
        stream: true,
        identifier: None,
        alias: None,
    };

    for (i, m) in s.models.iter().enumerate() {
        let observed = m.backend.is_some();
        let why = "the endpoint is not a gateprobe mock, so what the backend received cannot be seen";
        if wants(CheckFamily::Routing) {
            let rule_b = "the request reaches the backend of the model's endpoint, and no other backend";
            let rule_m = "the upstream `model` is the identifier without its provider prefix";
            let (id_b, id_m) = (
                format!("routing.{}.backend", m.name),
                format!("routing.{}.model", m.name),
            );
            if observed {
                let p = plan.probe(base(i, Variant::AsConfigured));
                plan.check(CheckFamily::Routing, id_b, rule_b, Judge::Backend { model: i }, vec![p]);
                plan.check(
                    CheckFamily::Routing,
                    id_m,
                    rule_m,
                    Judge::ModelName { model: i },
                    vec![p],
                );
            } else {
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
                let p = plan.probe(base(i, Variant::AsConfigured));
                plan.check(
                    CheckFamily::Endpoint,
                    format!("endpoint.{}.v1_path", m.name),
                    "an endpoint ending in /v1 is called at /v1/chat/completions, nothing added or removed",
                    Judge::UpstreamPath { model: i },
                    vec![p],
                );
            }
            if v1 || azure {
                let p = plan.probe(base(i, Variant::TrailingSlash));
                plan.check(
                    CheckFamily::Endpoint,
                    format!("endpoint.{}.trailing_slash", m.name),
                    "a trailing slash on the endpoint does not double the slash",
                    Judge::UpstreamPath { model: i },
                    vec![p],
                );
            }
            if azure {
                let p = plan.probe(base(i, Variant::AsConfigured));
                plan.check(
                    CheckFamily::Endpoint,
                    format!("endpoint.{}.api_version", m.name),
                    "Azure deployments are called with an api-version (without one Azure answers 404)",
                    Judge::ApiVersion { model: i },
                    vec![p],
                );
            }
            if v1 && !azure {
                let p = plan.probe(base(i, Variant::WithoutV1));
                plan.check(
                    CheckFamily::Endpoint,
                    format!("endpoint.{}.missing_v1", m.name),
                    "an endpoint without /v1 is not silently fixed: the backend's 404 surfaces as an error, never as an empty 200",
                    Judge::MissingV1 {
                        model: i,
                        key: crate::check::profile::Profile::missing_v1_key(Endpoint::ChatAgent),
                    },
                    vec![p],
                );
            }
        }
        if wants(CheckFamily::Auth) {
            let p = observed.then(|| plan.probe(base(i, Variant::AsConfigured)));
            let bedrock = m.identifier.provider == Provider::Bedrock;
            match (&m.api_key, p) {
                (_, Some(p)) if bedrock => plan.check(
                    CheckFamily::Auth,
                    format!("auth.{}.signed", m.name),
                    "Bedrock calls are SigV4-signed with the gateway's credentials, for its region, and accepted",
                    Judge::Signed { model: i },
                    vec![p],
                ),
                (Some(_), Some(p)) => plan.check(
                    CheckFamily::Auth,
                    format!("auth.{}.key_forwarded", m.name),
                    "the model's API key reaches the backend as `Authorization: Bearer <key>`",
                    Judge::KeyForwarded { model: i },
                    vec![p],
                ),
                (None, Some(p)) => plan.check(
                    CheckFamily::Auth,
                    format!("auth.{}.no_foreign_key", m.name),
                    "a model without an API key is not sent another model's key",
                    Judge::NoForeignKey { model: i },
                    vec![p],
                ),
                _ => {}
            }
        }
    }

    // "No upstream call" can only be seen on a gateprobe mock: these probes go to the
    // first model served by one (model 0 otherwise, for what the reply alone shows).
    let observed = s.models.iter().position(|m| m.backend.is_some());
    if wants(CheckFamily::Routing) && !s.models.is_empty() {
        let (id, rule) = (
            "routing.empty_identifier".to_owned(),
            "an empty model identifier is an error and causes no upstream call",
        );
        match observed {
            Some(model) => {
                let p = plan.probe(Probe {
                    feature: generations(),
                    model,
                    variant: Variant::AsConfigured,
                    auth: ClientAuth::Valid,
                    stream: false,
                    identifier: Some(String::new()),
                    alias: None,
                });
                plan.check(CheckFamily::Routing, id, rule, Judge::EmptyIdentifier, vec![p]);
            }
            None => plan.skipped(
                CheckFamily::Routing,
                id,
                rule,
                Judge::EmptyIdentifier,
                "no model's endpoint is a gateprobe mock, so an upstream call could not be seen",
            ),
        }
    }

    if wants(CheckFamily::Auth) && !s.models.is_empty() {
        let enforced = s.gateway.kind == GatewayKind::Aigw || s.gateway.builtin_auth == BuiltinAuth::Enforce;
        let probe = |auth| Probe {
            feature: generations(),
            model: observed.unwrap_or(0),
            variant: Variant::AsConfigured,
            auth,
            stream: false,
            identifier: None,
            alias: None,
        };
        let rule = "a request without client credentials gets 401 and touches no backend";
        let id = "auth.client.missing_token".to_owned();
        let judge = Judge::ClientRejected {
            auth: ClientAuth::Missing,
        };
        if enforced {
            let p = plan.probe(probe(ClientAuth::Missing));
            plan.check(CheckFamily::Auth, id, rule, judge, vec![p]);
        } else {
            plan.skipped(
                CheckFamily::Auth,
                id,
                rule,
                judge,
                "the built-in gateway runs with auth bypassed",
            );
        }
        let rule = "a request with a wrong token gets 401 and touches no backend";
        let id = "auth.client.wrong_token".to_owned();
        let judge = Judge::ClientRejected {
            auth: ClientAuth::WrongToken,
        };
        if enforced && s.gateway.token.is_some() {
            let p = plan.probe(probe(ClientAuth::WrongToken));
            plan.check(CheckFamily::Auth, id, rule, judge, vec![p]);
        } else {
            plan.skipped(
                CheckFamily::Auth,
                id,
                rule,
                judge,
                "no client token is configured, so no token is wrong",
            );
        }
    }

    if wants(CheckFamily::FeatureMapping) {
        for fs in &s.features {
            let f = fs.feature;
            match fs.target {
                Target::Model(i) | Target::Fallback(i) if s.models[i].backend.is_some() => {
                    let p = plan.probe(Probe {
                        feature: f,
                        model: i,
                        variant: Variant::AsConfigured,
                        auth: ClientAuth::Valid,
                        stream: false,
                        identifier: None,
                        alias: None,
                    });
                    plan.feature_routed(fs, i, p);
                }
                Target::Model(_) | Target::Fallback(_) => {}
                Target::Disabled => plan.skipped(
                    CheckFamily::FeatureMapping,
                    format!("feature_mapping.{}.disabled", f.name),
                    "a disabled feature causes no backend traffic",
                    Judge::FeatureDisabled,
                    "with the AI gateway API the GitLab instance enforces Disabled and never calls the gateway; \
                     nothing on the gateway side can be observed",
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
            if !matches!(
                f.endpoint,
                Endpoint::ChatAgent | Endpoint::CodeCompletions | Endpoint::CodeGenerations
            ) || s.models[i].backend.is_none()
            {
                continue;
            }
            let p = plan.probe(Probe {
                feature: f,
                model: i,
                variant: Variant::AsConfigured,
                auth: ClientAuth::Valid,
                stream: true,
                identifier: None,
                alias: None,
            });
            plan.check(
                CheckFamily::Streaming,
                format!("streaming.{}", f.name),
                "a streamed reply is well-formed and carries non-empty content",
                Judge::Stream { endpoint: f.endpoint },
                vec![p],
            );
        }
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

/// `kind: direct`: the vendor checks of every model endpoint.
fn compile_direct(s: &Scenario) -> Plan {
    let mut plan = Plan::default();
    if !s.checks.contains(&CheckFamily::Vendor) {
        return plan;
    }
    let mut probe = |model: usize, op: DirectOp| {
        let p = DirectProbe { model, op };
        match plan.direct.iter().position(|q| *q == p) {
            Some(i) => i,
            None => {
                plan.direct.push(p);
                plan.direct.len() - 1
            }
        }
    };
    let mut checks = Vec::new();
    for (i, m) in s.models.iter().enumerate() {
        let provider = m.identifier.provider;
        let mut add = |rule: VendorRule, text: &str, probes: Vec<usize>| {
            let name = match rule {
                VendorRule::V1Suffix => "v1_suffix",
                VendorRule::Models => "models",
                VendorRule::Chat => "chat",
                VendorRule::Stream => "stream",
                VendorRule::WrongKey => "wrong_key",
                VendorRule::UnknownModel => "unknown_model",
            };
            checks.push(PlannedCheck {
                id: format!("vendor.{}.{name}", m.name),
                family: CheckFamily::Vendor,
                rule: text.to_owned(),
                judge: Judge::Vendor(rule),
                probes,
                skip: None,
            });
        };
        if provider == Provider::CustomOpenai {
            add(
                VendorRule::V1Suffix,
                "the endpoint ends in /v1 (the gateway never adds it); without it the server answers 404",
                vec![probe(i, DirectOp::ModelsWithoutV1)],
            );
            add(
                VendorRule::Models,
                "GET {endpoint}/models lists the identifier's model",
                vec![probe(i, DirectOp::Models)],
            );
        }
        let (chat, stream, wrong, unknown) = match provider {
            Provider::Bedrock => (
                "a Converse reply is well-formed: output.message.content text, stopReason, usage",
                "a converse-stream reply is valid AWS event-stream (CRCs), messageStart, text deltas, messageStop, metadata",
                "a wrong signature gets 403 with Bedrock's error type and a parseable message",
                "a model the account does not enable gets 403/404 with a parseable message",
            ),
            _ => (
                "a chat completion is well-formed: object, choices[0].message.content, finish_reason, usage",
                "a streamed chat completion is exact SSE: data frames of JSON, role first, content, finish_reason, a usage chunk, [DONE]",
                "a wrong API key gets 401 with a parseable error body",
                "an unknown model (or deployment) gets 404 with a parseable error body",
            ),
        };
        add(VendorRule::Chat, chat, vec![probe(i, DirectOp::Chat { stream: false })]);
        add(
            VendorRule::Stream,
            stream,
            vec![probe(i, DirectOp::Chat { stream: true })],
        );
        if m.api_key.is_some() || provider == Provider::Bedrock {
            add(VendorRule::WrongKey, wrong, vec![probe(i, DirectOp::WrongKey)]);
        }
        add(
            VendorRule::UnknownModel,
            unknown,
            vec![probe(i, DirectOp::UnknownModel)],
        );
    }
    plan.checks = checks;
    plan
}
