//! Compiling a scenario into a plan: the probes (client requests) to send, in order,
//! and the checks that judge them. Executors only execute plans. What a gateway kind
//! must answer comes from the scenario's gateway profile; a check whose outcome the
//! profile does not pin is planned as skipped, saying so.

pub mod aigw;
pub mod proxy;

use crate::adapter::ClientAuth;
use crate::feature::{self, Feature};
use crate::identifier::Provider;
use crate::instance::Surface;
use crate::scenario::{CheckFamily, GatewayKind, Scenario, Target};

/// How a probe bends the model's endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// As the admin configured it.
    AsConfigured,
    /// With one trailing slash added.
    TrailingSlash,
    /// With its `/v1` suffix removed (the classic misconfiguration).
    WithoutV1,
    /// Empty: model metadata the gateway cannot accept.
    Empty,
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
    /// The configured endpoint of an OpenAI-compatible model ends in `/v1` (judged from
    /// the scenario, before any request).
    ConfiguredV1 { model: usize },
    /// Invalid model metadata is refused with an error, and no backend (of this model or
    /// another) serves the request.
    InvalidMetadata,
    /// Every chat stream among the probes that carried an error event ends properly.
    ErrorEnd,
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
    Stream { surface: Surface },
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
        let (id, rule) = routed_id(fs);
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

/// Why a feature set to `vendored` has nothing to check.
pub(crate) const VENDORED_SKIP: &str = "GitLab serves it with its own models; nothing self-hosted to check";

/// The id and rule of the check that a mapped (or falling-back) feature lands on its
/// model.
pub(crate) fn routed_id(fs: &crate::scenario::FeatureSetting) -> (String, &'static str) {
    let name = fs.feature.name;
    if matches!(fs.target, Target::Fallback(_)) {
        (
            format!("feature_mapping.{name}.fallback"),
            "a Chat sub-feature without a model lands on duo_chat's model",
        )
    } else {
        (
            format!("feature_mapping.{name}.mapped"),
            "the feature lands on the model it is mapped to",
        )
    }
}

fn chat() -> &'static Feature {
    feature::by_name(feature::DUO_CHAT).unwrap_or(&feature::FEATURES[2])
}

/// Compiles the scenario.
pub fn compile(s: &Scenario) -> Plan {
    let plan = match s.gateway.kind {
        GatewayKind::Direct => compile_direct(s),
        GatewayKind::Openai => proxy::compile(s),
        GatewayKind::Builtin | GatewayKind::Aigw => aigw::compile(s),
    };
    select(plan, &s.selection)
}

/// Applies the scenario's `checks:` patterns: checks not selected leave the plan,
/// excluded ones become skipped, and requests no remaining check reads are not sent.
fn select(mut plan: Plan, sel: &crate::scenario::selection::Selection) -> Plan {
    use crate::scenario::selection::Choice;
    plan.checks.retain_mut(|c| match sel.choose(c.family, &c.id) {
        Choice::Run => true,
        Choice::Drop => false,
        Choice::Excluded(entry) => {
            if c.skip.is_none() {
                c.skip = Some(format!("left out by the scenario's checks: `{entry}`"));
            }
            c.probes.clear();
            true
        }
    });
    // Checks that read every request (or a set of others' requests) keep none alive;
    // vendor checks read the direct requests, which are not pruned.
    let aggregate = |j: &Judge| matches!(j, Judge::KeyNotLeaked | Judge::ErrorEnd);
    let direct = |j: &Judge| matches!(j, Judge::Vendor(_));
    let mut used = vec![false; plan.probes.len()];
    for c in plan.checks.iter().filter(|c| !aggregate(&c.judge) && !direct(&c.judge)) {
        for &p in &c.probes {
            used[p] = true;
        }
    }
    if used.iter().all(|&u| u) {
        return plan;
    }
    let mut map = vec![None; plan.probes.len()];
    let mut probes = Vec::new();
    for (i, p) in plan.probes.into_iter().enumerate() {
        if used[i] {
            map[i] = Some(probes.len());
            probes.push(p);
        }
    }
    plan.probes = probes;
    let all = plan.probes.len();
    plan.checks.retain_mut(|c| {
        if c.judge == Judge::KeyNotLeaked && c.skip.is_none() {
            c.probes = (0..all).collect();
            return all > 0;
        }
        if direct(&c.judge) {
            return true;
        }
        let had = !c.probes.is_empty();
        c.probes = c.probes.iter().filter_map(|&p| map[p]).collect();
        // An aggregate whose requests all left has nothing to judge.
        !(aggregate(&c.judge) && had && c.probes.is_empty())
    });
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
