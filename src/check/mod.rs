//! Conformance checks, one family per file, each a [`Rule`] that plans its probes for
//! a scenario and judges its checks from the evidence: the client's reply plus every
//! backend request tied to it by correlation id. A check that ran and found the
//! gateway wrong is a failure; a check the harness could not complete is an error;
//! failures are grouped by root cause ([`diagnosis`]).
//!
//! ```text
//! routing          each model's requests reach its backend under its name
//! endpoint         /v1: configured, kept, never silently fixed, on every surface
//! auth             client credentials; each model's key, and only its own
//! feature_mapping  each feature lands on its model (or duo_chat's)
//! streaming        streams are well-formed and end properly
//! resilience       a failing backend fails the client as the profile predicts
//! vendor           a model endpoint itself (`kind: direct`)
//! readiness        a model server set up for what each Duo feature asks (`kind: direct`)
//! live             each feature end to end to a model that is not a mock
//! threshold        the service levels of a load phase
//! ```

pub mod auth;
pub mod diagnosis;
pub mod endpoint;
pub mod feature_mapping;
pub mod live;
pub mod outcome;
pub mod planner;
pub mod readiness;
pub mod resilience;
pub mod routing;
pub mod streaming;
pub mod threshold;
pub mod vendor;
pub mod verdict;

use crate::adapter::{ModelFields, Reply, TransportError};
use crate::mock::journal::Entry;
use crate::plan::{Judge, Plan, PlannedCheck, Probe};
use crate::report::{BackendHit, CheckResult, Evidence, RequestInfo, ResponseInfo, Status};
use crate::scenario::profile::Profile;
use crate::scenario::{CheckFamily, Scenario};
use crate::text::trunc;
pub use verdict::Verdict;

pub use vendor::DirectOutcome;

/// One family of checks: which checks it plans for a scenario, and how it judges them.
///
/// A family plans in terms of a model's *address* ([`planner::Planner::reach`],
/// [`planner::Planner::on_surface`], ...), so one rule serves every gateway front, and
/// judges only its own checks, from a [`Ctx`] holding every request's outcome.
pub trait Rule: Sync {
    /// The family it is.
    fn family(&self) -> CheckFamily;
    /// Adds its probes and checks to the plan.
    fn plan(&self, p: &mut planner::Planner<'_>);
    /// Judges one of its checks.
    fn judge(&self, check: &PlannedCheck, cx: &Ctx<'_>) -> Verdict;
}

/// Every family with a rule, in report order.
pub const RULES: [&dyn Rule; 9] = [
    &routing::Routing,
    &endpoint::Endpoint,
    &auth::Auth,
    &feature_mapping::FeatureMapping,
    &streaming::Streaming,
    &vendor::Vendor,
    &readiness::Readiness,
    &live::Live,
    &resilience::Resilience,
];

fn rule_of(family: CheckFamily) -> Option<&'static dyn Rule> {
    RULES.iter().copied().find(|r| r.family() == family)
}

/// The plan of a scenario: every selected family's probes and checks, each per-model
/// rule reading every request of its model, then the scenario's `checks:` patterns.
pub fn compile(s: &Scenario) -> Plan {
    let mut p = planner::Planner::new(s);
    for rule in RULES {
        if p.wants(rule.family()) {
            rule.plan(&mut p);
        }
    }
    streaming::plan_error_end(&mut p);
    every_request_is_evidence(&mut p);
    // Any credential the gateway holds for the backends can leak: a model's or a
    // backend's key, an AWS secret or session token.
    if p.wants(CheckFamily::Auth) && !s.upstream_credentials().is_empty() && !p.plan.probes.is_empty() {
        let all = (0..p.plan.probes.len()).collect();
        p.check(
            crate::plan::CheckId::bare(CheckFamily::Auth, "key_not_leaked"),
            "no configured credential (API key, AWS secret or session token) appears in any gateway response",
            Judge::KeyNotLeaked,
            all,
        );
    }
    crate::plan::select(p.plan, &s.selection)
}

/// A rule about a model's keys, upstream name, backend or signature holds for every
/// request the run sends that model, not only the one it was planned with: each such
/// check reads them all.
fn every_request_is_evidence(p: &mut planner::Planner<'_>) {
    for c in 0..p.plan.checks.len() {
        let model = match p.plan.checks[c].judge {
            Judge::Backend { model }
            | Judge::ModelName { model }
            | Judge::KeyForwarded { model }
            | Judge::NoForeignKey { model }
            | Judge::Signed { model }
            | Judge::ApiVersion { model } => model,
            _ => continue,
        };
        if p.plan.checks[c].skip.is_some() {
            continue;
        }
        let more = p.requests_of(model);
        let probes = &mut p.plan.checks[c].probes;
        for k in more {
            if !probes.contains(&k) {
                probes.push(k);
            }
        }
    }
}

/// What happened to one probe.
#[derive(Clone, Debug)]
pub struct ProbeOutcome {
    /// Correlation id it carried.
    pub correlation_id: String,
    /// Gateway path it was sent to.
    pub path: String,
    /// The model fields it sent.
    pub fields: ModelFields,
    /// The request as it went out (for transcripts); `None` when it never ran.
    pub sent: Option<crate::adapter::Sent>,
    /// The reply, or why there was none; `None` when it never ran.
    pub result: Option<Result<Reply, TransportError>>,
    /// Backend requests tied to it.
    pub hits: Vec<Entry>,
}

/// Everything a judge may read.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The scenario.
    pub scenario: &'a Scenario,
    /// The plan's probes.
    pub probes: &'a [Probe],
    /// Their outcomes, same order.
    pub outcomes: &'a [ProbeOutcome],
    /// Expectations of the gateway kind.
    pub profile: &'a Profile,
    /// Why unrun probes did not run (interrupt, gateway gone).
    pub not_run: Option<&'a str>,
    /// The plan's direct probes (`kind: direct`).
    pub plan_direct: &'a [crate::plan::DirectProbe],
    /// Their outcomes, same order.
    pub direct: &'a [DirectOutcome],
}

/// Whether the gateway under test is the reference gateway, which is held to every
/// rule: what a profile tolerates of a real gateway, or names as its weakness, fails it.
pub(crate) fn strict(cx: &Ctx<'_>) -> bool {
    cx.scenario.gateway.kind == crate::scenario::GatewayKind::Builtin
}

/// A failure of a rule the profile tolerates becomes a warning that says why.
pub(crate) fn tolerated(cx: &Ctx<'_>, rule: &str, v: Verdict) -> Verdict {
    if strict(cx) || v.status != Status::Failed {
        return v;
    }
    match cx.profile.tolerates(rule) {
        Some(why) => verdict::warning(
            v.expected,
            format!("{} (tolerated by profile {}: {why})", v.actual, cx.profile.name),
        ),
        None => v,
    }
}

/// The verdict of a check handed to a family it does not belong to (a planning bug).
pub(crate) fn misfiled(check: &PlannedCheck) -> Verdict {
    verdict::error("", format!("internal: {} is not judged by its family", check.id))
}

/// Judges one check.
pub fn judge(check: &PlannedCheck, cx: &Ctx<'_>) -> CheckResult {
    judged(check, cx).0
}

/// Judges one check, with the cause its judge named (for the diagnosis).
pub fn judged(check: &PlannedCheck, cx: &Ctx<'_>) -> (CheckResult, Option<diagnosis::Cause>) {
    let never_ran = !check.probes.is_empty()
        && !check.judge.is_direct()
        && check.probes.iter().all(|&p| cx.outcomes[p].result.is_none());
    let v = match (&check.skip, rule_of(check.family)) {
        (Some(why), _) => verdict::skipped(why.clone()),
        (None, _) if never_ran => verdict::error(
            "",
            format!("not run: {}", cx.not_run.unwrap_or("the run stopped first")),
        ),
        (None, Some(rule)) => rule.judge(check, cx),
        (None, None) => misfiled(check),
    };
    let evidence: Vec<Evidence> = if check.judge.is_direct() {
        check.probes.iter().map(|&p| vendor::evidence(cx, p)).collect()
    } else if check.judge == Judge::KeyNotLeaked {
        let watch = auth::leak_watch(cx);
        check
            .probes
            .iter()
            .filter(|&&p| auth::leaked_with(&watch, cx, p).is_some())
            .take(3)
            .map(|&p| evidence(cx, p))
            .collect()
    } else {
        // The first request, and the one that broke the rule when it was another.
        let culprit = v
            .culprit
            .as_deref()
            .and_then(|id| check.probes.iter().find(|&&p| cx.outcomes[p].correlation_id == id));
        check
            .probes
            .first()
            .into_iter()
            .chain(culprit.filter(|&&p| Some(&p) != check.probes.first()))
            .map(|&p| evidence(cx, p))
            .collect()
    };
    let profiled = matches!(
        check.judge,
        Judge::MissingV1 { .. } | Judge::ClientRejected { .. } | Judge::Profiled { .. }
    ) || v.status == Status::Warning;
    (
        CheckResult {
            id: check.id.to_string(),
            family: check.family.name().to_owned(),
            rule: check.rule.clone(),
            profile: profiled.then(|| cx.profile.name.clone()),
            status: v.status,
            expected: v.expected,
            actual: v.actual,
            evidence,
        },
        v.cause,
    )
}

/// Judges every check of a plan and groups the failures by root cause.
pub fn judge_all(plan: &Plan, cx: &Ctx<'_>) -> (Vec<CheckResult>, Vec<crate::report::Problem>) {
    let judged: Vec<(CheckResult, Option<diagnosis::Cause>)> = plan.checks.iter().map(|c| judged(c, cx)).collect();
    let failures: Vec<diagnosis::Failure<'_>> = plan
        .checks
        .iter()
        .zip(&judged)
        .map(|(c, (r, cause))| diagnosis::Failure {
            check: r,
            model: c
                .probes
                .first()
                .filter(|_| !c.judge.is_direct() && !matches!(c.judge, Judge::KeyNotLeaked | Judge::ErrorEnd))
                .and_then(|&p| cx.probes.get(p))
                .and_then(|p| cx.scenario.models.get(p.model))
                .or_else(|| match c.judge {
                    Judge::ConfiguredV1 { model } => cx.scenario.models.get(model),
                    _ => None,
                })
                .map(|m| m.name.as_str()),
            cause: cause.clone(),
        })
        .collect();
    let problems = diagnosis::diagnose(&failures);
    (judged.into_iter().map(|(r, _)| r).collect(), problems)
}

fn evidence(cx: &Ctx<'_>, p: usize) -> Evidence {
    let probe = &cx.probes[p];
    let o = &cx.outcomes[p];
    let (response, transport_error) = match &o.result {
        Some(Ok(r)) => (
            Some(ResponseInfo {
                status: r.status,
                content_type: r.content_type.clone(),
                content: trunc(&r.content, 200),
                body: trunc(&r.body, 500),
                error: r.error.clone(),
                aborted: r.aborted.clone(),
                elapsed_ms: r.elapsed.as_secs_f64() * 1000.0,
            }),
            None,
        ),
        Some(Err(e)) => (None, Some(e.to_string())),
        None => (None, Some("not run".into())),
    };
    Evidence {
        correlation_id: o.correlation_id.clone(),
        request: RequestInfo {
            path: o.path.clone(),
            feature: probe.feature.name.to_owned(),
            model: cx
                .scenario
                .models
                .get(probe.model)
                .map(|m| m.name.clone())
                .unwrap_or_default(),
            endpoint: o.fields.endpoint.clone(),
            identifier: o.fields.identifier.clone(),
            stream: probe.stream,
            auth: serde_json::to_value(probe.auth)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        },
        response,
        transport_error,
        backend: o.hits.iter().map(BackendHit::from).collect(),
    }
}

impl From<&Entry> for BackendHit {
    fn from(h: &Entry) -> Self {
        BackendHit {
            backend: h.backend.clone(),
            method: h.method.clone(),
            path: h.path.clone(),
            model: h.model.clone(),
            authorization: h.header("authorization").map(str::to_owned),
            status: h.status,
            at_ms: h.at.as_secs_f64() * 1000.0,
        }
    }
}
