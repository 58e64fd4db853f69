//! The plan of a run, as data: the probes (client requests) to send and the checks
//! that judge them, each check with a typed [`CheckId`] and the [`Judge`] case its
//! family's rule decides. Which probes and checks a scenario gets is the check
//! families' business ([`crate::check::compile`]); executors only execute plans. This
//! module also applies the scenario's `checks:` selection and allocates correlation
//! ids.

use std::fmt;

use crate::feature::Feature;
use crate::instance::Surface;
use crate::scenario::CheckFamily;

/// Which client credentials a probe presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// The configured token and headers.
    Valid,
    /// No `Authorization` header at all.
    Missing,
    /// A token that cannot be right.
    WrongToken,
}

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

impl Variant {
    /// The endpoint a probe of this variant sends for an endpoint configured as
    /// `endpoint`: the one place endpoint variants are made.
    pub fn apply(self, endpoint: &str) -> String {
        use crate::wire::endpoint::{normalize, without_v1};
        match self {
            Variant::AsConfigured => endpoint.to_owned(),
            Variant::TrailingSlash => format!("{}/", normalize(endpoint)),
            Variant::WithoutV1 => without_v1(endpoint),
            Variant::Empty => String::new(),
        }
    }
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
    /// `kind: direct`: a model server set up for what the Duo features ask of it.
    Readiness(ReadyRule),
    /// A feature answers end to end, through the gateway to a model that is not a mock.
    Live { model: usize },
}

impl Judge {
    /// Whether the check reads requests sent straight to model endpoints
    /// (`Plan::direct`) rather than gateway probes.
    pub fn is_direct(&self) -> bool {
        matches!(self, Judge::Vendor(_) | Judge::Readiness(_))
    }
}

/// What a `readiness` check asserts about a model server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadyRule {
    /// Its chat template takes the message roles the Duo prompts send.
    Roles,
    /// Its context window holds the largest request of the features it serves.
    Context,
    /// Automatic tool choice gives parseable tool calls.
    Tools,
    /// The answer is in `content` within the smallest output budget.
    Answer,
    /// `stop` sequences and `max_tokens` are honoured.
    Limits,
    /// It answers under the identifier's model name.
    ServedName,
    /// It takes the requests the gateway sent for a feature (`replay:`).
    Replay,
}

impl ReadyRule {
    /// The rule part of its check id.
    pub fn name(self) -> &'static str {
        match self {
            ReadyRule::Roles => "roles",
            ReadyRule::Context => "context",
            ReadyRule::Tools => "tools",
            ReadyRule::Answer => "answer",
            ReadyRule::Limits => "limits",
            ReadyRule::ServedName => "served_name",
            ReadyRule::Replay => "replay",
        }
    }
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

impl VendorRule {
    /// The rule part of its check id.
    pub fn name(self) -> &'static str {
        match self {
            VendorRule::V1Suffix => "v1_suffix",
            VendorRule::Models => "models",
            VendorRule::Chat => "chat",
            VendorRule::Stream => "stream",
            VendorRule::WrongKey => "wrong_key",
            VendorRule::UnknownModel => "unknown_model",
        }
    }
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
    /// A model-readiness request: what a Duo feature asks of the server.
    Ready(ReadyOp),
}

/// What a model-readiness request asks (`readiness` checks), as the AI gateway would.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadyOp {
    /// A prompt with these message roles, in order.
    Roles(&'static [crate::instance::requests::Role]),
    /// A streamed prompt of this many tokens asking for this many: read only until the
    /// server starts answering.
    Context { prompt_tokens: u32, max_tokens: u32 },
    /// A question with one tool offered and the choice left to the model.
    Tools,
    /// A question with this output budget (a reasoning model may spend it thinking).
    Budget { max_tokens: u32 },
    /// A question the model answers with a comma right away, `,` a stop sequence.
    Stop,
    /// A question with a long answer and a small `max_tokens`.
    Length,
    /// The gateway's own request number `n` of the scenario's `replay:` transcript.
    Replay(usize),
}

/// One direct request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DirectProbe {
    /// Index of the self-hosted model.
    pub model: usize,
    /// What to send.
    pub op: DirectOp,
}

/// A check's stable id: `family.subject.rule` (`routing.mixtral.backend`), or
/// `family.rule` for a rule about the gateway as a whole (`routing.empty_identifier`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CheckId {
    /// The family.
    pub family: CheckFamily,
    /// What it is about: a model, a feature, a phase.
    pub subject: Option<String>,
    /// The rule.
    pub rule: String,
}

impl CheckId {
    /// `family.subject.rule`.
    pub fn of(family: CheckFamily, subject: &str, rule: impl Into<String>) -> Self {
        CheckId {
            family,
            subject: Some(subject.to_owned()),
            rule: rule.into(),
        }
    }

    /// `family.rule`.
    pub fn bare(family: CheckFamily, rule: impl Into<String>) -> Self {
        CheckId {
            family,
            subject: None,
            rule: rule.into(),
        }
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.subject {
            Some(s) => write!(f, "{}.{s}.{}", self.family.name(), self.rule),
            None => write!(f, "{}.{}", self.family.name(), self.rule),
        }
    }
}

/// Correlation ids of one run, `gp-<run>-<n>`, numbered in one sequence for every
/// request the run sends (probes, direct requests, load).
#[derive(Debug)]
pub struct CorrelationIds {
    run: String,
    next: std::sync::atomic::AtomicU64,
}

impl CorrelationIds {
    /// The ids of a run, starting at 0.
    pub fn new(run: &str) -> Self {
        CorrelationIds {
            run: run.to_owned(),
            next: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The next id.
    pub fn next(&self) -> String {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("gp-{}-{n}", self.run)
    }

    /// The run's id.
    pub fn run(&self) -> &str {
        &self.run
    }
}

/// A check to judge.
#[derive(Clone, Debug)]
pub struct PlannedCheck {
    /// Stable id.
    pub id: CheckId,
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
    /// Adds a probe (once: an equal one is shared) and returns its index.
    pub fn probe(&mut self, p: Probe) -> usize {
        if let Some(i) = self.probes.iter().position(|q| *q == p) {
            return i;
        }
        self.probes.push(p);
        self.probes.len() - 1
    }

    /// Adds a check that reads `probes`.
    pub fn check(&mut self, id: CheckId, rule: &str, judge: Judge, probes: Vec<usize>) {
        self.checks.push(PlannedCheck {
            family: id.family,
            id,
            rule: rule.to_owned(),
            judge,
            probes,
            skip: None,
        });
    }

    /// Adds a check that does not apply, saying why.
    pub fn skipped(&mut self, id: CheckId, rule: &str, judge: Judge, why: &str) {
        self.checks.push(PlannedCheck {
            family: id.family,
            id,
            rule: rule.to_owned(),
            judge,
            probes: vec![],
            skip: Some(why.to_owned()),
        });
    }
}

/// Applies the scenario's `checks:` patterns: checks not selected leave the plan,
/// excluded ones become skipped, and requests no remaining check reads are not sent.
pub fn select(mut plan: Plan, sel: &crate::scenario::selection::Selection) -> Plan {
    use crate::scenario::selection::Choice;
    plan.checks
        .retain_mut(|c| match sel.choose(c.family, &c.id.to_string()) {
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
    let direct = Judge::is_direct;
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
