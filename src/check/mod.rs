//! Conformance checks: judging each planned check from the evidence of its probes
//! (the client's reply plus the journal entries tied to it by correlation id).
//! A check that ran and found the gateway wrong is a failure; a check the harness
//! could not complete is an error.

pub mod direct;
pub mod outcome;
mod stream;

use crate::adapter::{ModelFields, Reply, TransportError};
use crate::identifier::Provider;
use crate::mock::journal::Entry;
use crate::plan::{Judge, PlannedCheck, Probe};
use crate::report::{BackendHit, CheckResult, Evidence, RequestInfo, ResponseInfo, Status};
use crate::scenario::profile::Profile;
use crate::scenario::{ModelConfig, Scenario};
use outcome::Matches as _;

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
    pub direct: &'a [direct::DirectOutcome],
}

pub(crate) type Verdict = (Status, String, String);

pub(crate) fn pass(expected: impl Into<String>, actual: impl Into<String>) -> Verdict {
    (Status::Passed, expected.into(), actual.into())
}

pub(crate) fn fail(expected: impl Into<String>, actual: impl Into<String>) -> Verdict {
    (Status::Failed, expected.into(), actual.into())
}

/// Judges one check.
pub fn judge(check: &PlannedCheck, cx: &Ctx<'_>) -> CheckResult {
    let (status, expected, actual) = match &check.skip {
        Some(why) => (Status::Skipped, String::new(), why.clone()),
        None => verdict(check, cx),
    };
    let evidence = if let Judge::Vendor(_) = check.judge {
        check.probes.iter().map(|&p| direct::evidence(cx, p)).collect()
    } else if check.judge == Judge::KeyNotLeaked {
        check
            .probes
            .iter()
            .filter(|&&p| leaked(cx, p).is_some())
            .take(3)
            .map(|&p| evidence(cx, p))
            .collect()
    } else {
        check.probes.iter().map(|&p| evidence(cx, p)).collect()
    };
    let profiled = matches!(
        check.judge,
        Judge::MissingV1 { .. } | Judge::ClientRejected { .. } | Judge::Profiled { .. }
    ) || status == Status::Warning;
    CheckResult {
        id: check.id.clone(),
        family: check.family.name().to_owned(),
        rule: check.rule.clone(),
        profile: profiled.then(|| cx.profile.name.clone()),
        status,
        expected,
        actual,
        evidence,
    }
}

/// Whether the gateway under test is the reference gateway, which is held to every
/// rule: what a profile tolerates of a real gateway, or names as its weakness, fails it.
fn strict(cx: &Ctx<'_>) -> bool {
    cx.scenario.gateway.kind == crate::scenario::GatewayKind::Builtin
}

/// A failure of a rule the profile tolerates becomes a warning that says why.
fn tolerated(cx: &Ctx<'_>, rule: &str, v: Verdict) -> Verdict {
    if strict(cx) {
        return v;
    }
    match (v.0, cx.profile.tolerates(rule)) {
        (Status::Failed, Some(why)) => (
            Status::Warning,
            v.1,
            format!("{} (tolerated by profile {}: {why})", v.2, cx.profile.name),
        ),
        _ => v,
    }
}

fn verdict(check: &PlannedCheck, cx: &Ctx<'_>) -> Verdict {
    match &check.judge {
        Judge::KeyNotLeaked => return key_not_leaked(check, cx),
        Judge::ConfiguredV1 { model } => return configured_v1(cx, *model),
        Judge::ErrorEnd => return tolerated(cx, "stream_end.after_error", stream::error_end(check, cx)),
        _ => {}
    }
    if let (Judge::Vendor(rule), Some(&p)) = (&check.judge, check.probes.first()) {
        return direct::verdict(*rule, p, cx);
    }
    let Some(&p) = check.probes.first() else {
        return (Status::Error, String::new(), "the check has no request to judge".into());
    };
    let o = &cx.outcomes[p];
    let reply = match &o.result {
        None => {
            let why = cx.not_run.unwrap_or("the run stopped first");
            return (Status::Error, String::new(), format!("not run: {why}"));
        }
        Some(Err(e)) => {
            return (
                Status::Error,
                "a reply from the gateway".into(),
                format!("no reply ({e})"),
            );
        }
        Some(Ok(r)) => r,
    };
    let s = cx.scenario;
    match &check.judge {
        Judge::InvalidMetadata => tolerated(cx, "invalid_metadata.refused", invalid_metadata(o, reply)),
        Judge::Backend { model } => {
            let want = backend_name(s, *model);
            let expected = format!("received by backend `{want}` only");
            if o.hits.is_empty() {
                return fail(
                    expected,
                    format!("no backend received it; the client got {}", describe(reply)),
                );
            }
            match o.hits.iter().find(|h| h.backend != want) {
                Some(h) => fail(expected, format!("backend `{}` received it at {}", h.backend, h.path)),
                None => pass(expected, format!("backend `{want}` received it at {}", o.hits[0].path)),
            }
        }
        Judge::ModelName { model } => {
            let m = &s.models[*model];
            let want = &m.identifier.model;
            let expected = match m.identifier.provider {
                Provider::Azure => format!("upstream deployment `{want}` in the path"),
                Provider::Bedrock => format!("upstream model id `{want}` in the path"),
                _ => format!("upstream model `{want}`"),
            };
            if let Some(actual) = model_mismatch(o, m) {
                return fail(expected, actual);
            }
            match unserved(s, o, want) {
                Some(actual) => fail(format!("{expected}, served there"), actual),
                None => pass(expected, format!("upstream model `{want}`")),
            }
        }
        Judge::EmptyIdentifier => {
            let expected = "an error to the client and no upstream call".to_owned();
            if let Some(h) = o.hits.first() {
                return fail(
                    expected,
                    format!("the gateway called backend `{}` at {}", h.backend, h.path),
                );
            }
            match &reply.error {
                Some(e) if reply.broken => fail(expected, format!("no upstream call, but a broken reply: {e}")),
                Some(e) if (300..400).contains(&reply.status) => fail(
                    expected,
                    format!("no upstream call, but a redirect instead of an error: {e}"),
                ),
                Some(e) => pass(expected, format!("no upstream call; {e}")),
                None => fail(
                    expected,
                    format!(
                        "no upstream call, but the client got {} without an error",
                        describe(reply)
                    ),
                ),
            }
        }
        Judge::Signed { model } => {
            let m = &s.models[*model];
            let aws = m.backend.and_then(|b| s.backends[b].aws.as_ref());
            let (akid, region) = aws.map_or(("?", "?"), |a| (a.access_key_id.as_str(), a.region.as_str()));
            let expected = format!(
                "AWS4-HMAC-SHA256 with Credential={akid}/<date>/{region}/bedrock/aws4_request, accepted by the runtime"
            );
            if o.hits.is_empty() {
                return fail(
                    expected,
                    format!("no backend request; the client got {}", describe(reply)),
                );
            }
            for h in &o.hits {
                let auth = h.header("authorization").unwrap_or("");
                let Some(scope) = auth
                    .strip_prefix("AWS4-HMAC-SHA256")
                    .and_then(|r| r.split("Credential=").nth(1))
                    .and_then(|r| r.split([',', ' ']).next())
                else {
                    return fail(
                        expected,
                        if auth.is_empty() {
                            "the request was not signed (no Authorization)".to_owned()
                        } else {
                            "the Authorization header is not SigV4".to_owned()
                        },
                    );
                };
                let parts: Vec<&str> = scope.split('/').collect();
                if parts.len() != 5 || parts[0] != akid || parts[2] != region || parts[3] != "bedrock" {
                    return fail(
                        expected,
                        format!("signed with scope {}", scope.replacen(parts[0], "<key id>", 1)),
                    );
                }
                if h.status == 403 {
                    // A 403 is also the runtime's answer for a model it does not serve:
                    // name the model the gateway asked for (`/model/<id>/...`).
                    let id = h
                        .path
                        .strip_prefix("/model/")
                        .and_then(|r| r.split('/').next())
                        .map(crate::wire::bedrock::decode_id)
                        .unwrap_or_default();
                    let served = m
                        .backend
                        .is_none_or(|b| crate::wire::bedrock::serves(&s.backends[b].models, &id));
                    return fail(
                        expected,
                        if served {
                            "the runtime rejected the signature (403)".to_owned()
                        } else {
                            format!("the runtime refused access to model `{id}` (403): its backend does not serve it")
                        },
                    );
                }
            }
            pass(expected, format!("signed for {region}/bedrock and accepted"))
        }
        Judge::BedrockOperation { model } => {
            let m = &s.models[*model];
            let op = if crate::wire::bedrock::uses_invoke(&m.identifier.model) {
                "invoke-with-response-stream"
            } else {
                "converse-stream"
            };
            let expected = format!("POST /model/<id>/{op}");
            if o.hits.is_empty() {
                return fail(
                    expected,
                    format!("no backend request; the client got {}", describe(reply)),
                );
            }
            match o.hits.iter().find(|h| !h.path.ends_with(&format!("/{op}"))) {
                Some(h) => fail(expected, format!("{} {}", h.method, h.path)),
                None => pass(expected, format!("{} {}", o.hits[0].method, o.hits[0].path)),
            }
        }
        Judge::ApiVersion { .. } => {
            let expected = "an `api-version` query parameter on the Azure call".to_owned();
            if o.hits.is_empty() {
                return fail(
                    expected,
                    format!("no backend request; the client got {}", describe(reply)),
                );
            }
            match o.hits.iter().find(|h| {
                !h.query
                    .as_deref()
                    .unwrap_or("")
                    .split('&')
                    .any(|kv| kv.starts_with("api-version=") && kv.len() > 12)
            }) {
                Some(h) => fail(
                    expected,
                    format!(
                        "the backend got {}{} (answered {})",
                        h.path,
                        h.query.as_deref().map(|q| format!("?{q}")).unwrap_or_default(),
                        h.status
                    ),
                ),
                None => pass(expected, format!("?{}", o.hits[0].query.as_deref().unwrap_or_default())),
            }
        }
        Judge::UpstreamPath { model } => {
            let want = expected_path(&s.models[*model], &o.fields.endpoint);
            let expected = format!("backend request at {want} and content to the client");
            if o.hits.is_empty() {
                return fail(
                    expected,
                    format!("no backend request; the client got {}", describe(reply)),
                );
            }
            if let Some(h) = o.hits.iter().find(|h| h.path != want) {
                return fail(
                    expected,
                    format!("backend request at {} (answered {})", h.path, h.status),
                );
            }
            match (&reply.error, reply.content.is_empty(), &reply.aborted) {
                (Some(e), _, _) => fail(expected, format!("backend request at {want}, but the client got {e}")),
                (None, true, _) => fail(expected, format!("backend request at {want}, but empty content")),
                (None, false, Some(a)) => fail(
                    expected,
                    format!("backend request at {want}, but the reply broke off: {a}"),
                ),
                (None, false, None) => pass(expected, format!("backend request at {want}; content returned")),
            }
        }
        Judge::MissingV1 { key, .. } => {
            let want_path = crate::wire::endpoint::chat_completions_path(&o.fields.endpoint);
            let Some(outcome) = cx.profile.get(key) else {
                return (
                    Status::Skipped,
                    String::new(),
                    format!("profile predicts nothing for `{key}`"),
                );
            };
            let expected = format!("no /v1 added (upstream {want_path} -> 404) and {}", outcome.describe());
            if let Some(h) = o.hits.iter().find(|h| h.path != want_path) {
                return fail(
                    expected,
                    format!("the gateway changed the path to {} (answered {})", h.path, h.status),
                );
            }
            if o.hits.is_empty() {
                // Without the call there is no backend 404 to relay: whatever the
                // client got was made up by the gateway.
                return fail(
                    expected,
                    format!("no backend request at {want_path}; the client got {}", describe(reply)),
                );
            }
            match outcome.matches(reply) {
                Ok(actual) => pass(expected, actual),
                Err(actual) => fail(expected, actual),
            }
        }
        Judge::ClientRejected { auth } => {
            let key = match auth {
                crate::adapter::ClientAuth::WrongToken => "client_auth.wrong",
                _ => "client_auth.missing",
            };
            let Some(outcome) = cx.profile.get(key) else {
                return (
                    Status::Skipped,
                    String::new(),
                    format!("profile predicts nothing for `{key}`"),
                );
            };
            let expected = format!("{} and no backend traffic", outcome.describe());
            if let Some(h) = o.hits.first() {
                return fail(
                    expected,
                    format!("{} and backend `{}` received the request", reply.status, h.backend),
                );
            }
            match outcome.matches(reply) {
                Ok(actual) => pass(expected, actual),
                Err(actual) => fail(expected, actual),
            }
        }
        Judge::Profiled { key, reached } => {
            let Some(outcome) = cx.profile.get(key) else {
                return (
                    Status::Skipped,
                    String::new(),
                    format!("profile predicts nothing for `{key}`"),
                );
            };
            let expected = format!(
                "{}{}",
                outcome.describe(),
                if *reached {
                    ", after the backend was called"
                } else {
                    ", and no backend traffic"
                }
            );
            match (reached, o.hits.first()) {
                (true, None) => {
                    return fail(
                        expected,
                        format!("no backend request; the client got {}", describe(reply)),
                    );
                }
                (false, Some(h)) => {
                    return fail(
                        expected,
                        format!(
                            "backend `{}` received it at {}; the client got {}",
                            h.backend,
                            h.path,
                            describe(reply)
                        ),
                    );
                }
                _ => {}
            }
            if let (true, Some(why)) = (strict(cx), &outcome.weakness) {
                // What the profile names as a real gateway's weakness is not what the
                // reference gateway may do: any error the client can see will do.
                let expected = format!(
                    "an error the client sees, not what profile {} names as a weakness: {why}",
                    cx.profile.name
                );
                return if reply.error.is_some() || reply.aborted.is_some() || reply.status >= 400 {
                    pass(expected, describe(reply))
                } else {
                    fail(expected, describe(reply))
                };
            }
            match (outcome.matches(reply), &outcome.weakness) {
                (Ok(actual), Some(why)) => (
                    Status::Warning,
                    expected,
                    format!(
                        "{actual} (a weakness of this gateway, per profile {}: {why})",
                        cx.profile.name
                    ),
                ),
                (Ok(actual), None) => pass(expected, actual),
                (Err(actual), _) => fail(expected, actual),
            }
        }
        Judge::SseStream => stream::sse(reply),
        Judge::KeyForwarded { model } => {
            let m = &s.models[*model];
            let key = m.api_key.as_deref().unwrap_or_default();
            let (header_name, want, expected) = match m.identifier.provider {
                Provider::Azure => (
                    "api-key",
                    key.to_owned(),
                    "`api-key: <the model's key>` at the backend".to_owned(),
                ),
                _ => (
                    "authorization",
                    format!("Bearer {key}"),
                    "`Authorization: Bearer <the model's key>` at the backend".to_owned(),
                ),
            };
            if o.hits.is_empty() {
                return fail(
                    expected,
                    format!("no backend request; the client got {}", describe(reply)),
                );
            }
            if let Some(h) = o
                .hits
                .iter()
                .find(|h| h.header(header_name) == Some(want.as_str()) && matches!(h.status, 401 | 403))
            {
                return fail(
                    expected,
                    format!(
                        "the backend got the model's key and refused it ({}): the key configured for model `{}` is not the one backend `{}` accepts",
                        h.status, m.name, h.backend
                    ),
                );
            }
            match o.hits.iter().find(|h| h.header(header_name) != Some(want.as_str())) {
                Some(h) => fail(
                    expected,
                    format!(
                        "the backend got {header_name} {}{}",
                        h.header(header_name).map_or("(none)".into(), |a| format!("`{a}`")),
                        h.header("authorization")
                            .filter(|_| header_name != "authorization")
                            .map(|a| format!(" and Authorization `{a}`"))
                            .unwrap_or_default()
                    ),
                ),
                None => pass(expected, "the backend got the model's key and accepted it"),
            }
        }
        Judge::NoForeignKey { .. } => {
            let expected = "no other model's key, and no stringified null, at the backend".to_owned();
            if o.hits.is_empty() {
                return fail(
                    expected,
                    format!("no backend request; the client got {}", describe(reply)),
                );
            }
            let keys: Vec<(String, String)> = s
                .models
                .iter()
                .filter_map(|m| Some((m.api_key.clone()?, format!("the key of model `{}`", m.name))))
                .chain(
                    s.backends
                        .iter()
                        .filter_map(|b| Some((b.api_key.clone()?, format!("the key of backend `{}`", b.name)))),
                )
                .filter(|(k, _)| !k.is_empty())
                .collect();
            for h in &o.hits {
                let auth = format!(
                    "{} {}",
                    h.header("authorization").unwrap_or_default(),
                    h.header("api-key").unwrap_or_default()
                );
                if let Some(whose) = keys
                    .iter()
                    .find(|(k, _)| auth.contains(k.as_str()))
                    .map(|(_, whose)| whose)
                {
                    return fail(expected, format!("the backend got {whose}"));
                }
                let bogus = [h.header("authorization"), h.header("api-key")]
                    .into_iter()
                    .flatten()
                    .map(|v| v.trim())
                    .find(|v| {
                        let token = v.strip_prefix("Bearer").map_or(*v, str::trim);
                        matches!(token, "" | "None" | "null" | "undefined" | "nil")
                    });
                if let Some(v) = bogus {
                    return fail(
                        expected,
                        format!("the backend got `{v}`: the gateway turned the missing key into text"),
                    );
                }
            }
            let auth = o.hits[0]
                .header("authorization")
                .map_or("(none)".to_owned(), |a| format!("`{a}`"));
            pass(expected, format!("the backend got Authorization {auth}"))
        }
        Judge::FeatureRouted { model } => {
            let m = &s.models[*model];
            let want = backend_name(s, *model);
            let expected = format!(
                "model `{}` (backend `{want}`, upstream model `{}`) and content",
                m.name, m.identifier.model
            );
            if o.hits.is_empty() {
                return fail(
                    expected,
                    format!("no backend request; the client got {}", describe(reply)),
                );
            }
            if let Some(h) = o.hits.iter().find(|h| h.backend != want) {
                return fail(expected, format!("backend `{}` received it", h.backend));
            }
            if let Some(actual) = model_mismatch(o, m) {
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
        Judge::FeatureDisabled => (Status::Skipped, String::new(), "not judged".into()),
        Judge::Stream { surface } => stream::ndjson_or_text(*surface, reply),
        Judge::KeyNotLeaked | Judge::Vendor(_) | Judge::ConfiguredV1 { .. } | Judge::ErrorEnd => unreachable_verdict(),
    }
}

fn unreachable_verdict() -> Verdict {
    (Status::Error, String::new(), "internal: judged elsewhere".into())
}

fn key_not_leaked(check: &PlannedCheck, cx: &Ctx<'_>) -> Verdict {
    let expected = "no upstream credential (model or backend API key, AWS secret) in any response body".to_owned();
    let mut seen = 0;
    for &p in &check.probes {
        if let Some(whose) = leaked(cx, p) {
            let o = &cx.outcomes[p];
            return fail(
                expected,
                format!("the response to {} ({}) contains {whose}", o.correlation_id, o.path),
            );
        }
        if matches!(cx.outcomes[p].result, Some(Ok(_))) {
            seen += 1;
        }
    }
    if seen == 0 {
        return (Status::Error, expected, "no response to inspect".into());
    }
    pass(expected, format!("{seen} responses inspected, none contains a key"))
}

/// Whose upstream credential probe `p`'s response contains: a model's API key, a
/// backend's, or a Bedrock backend's AWS secret (the client's own token is not one).
fn leaked(cx: &Ctx<'_>, p: usize) -> Option<String> {
    let Some(Ok(r)) = &cx.outcomes[p].result else {
        return None;
    };
    let s = cx.scenario;
    let models = s
        .models
        .iter()
        .filter_map(|m| Some((m.api_key.as_deref()?, format!("the API key of model `{}`", m.name))));
    let backends = s.backends.iter().flat_map(|b| {
        let key = b
            .api_key
            .as_deref()
            .map(|k| (k, format!("the API key of backend `{}`", b.name)));
        let aws = b.aws.as_ref().map(|a| {
            (
                a.secret_access_key.as_str(),
                format!("the AWS secret of backend `{}`", b.name),
            )
        });
        key.into_iter().chain(aws)
    });
    models
        .chain(backends)
        .find(|(k, _)| !k.is_empty() && r.body.contains(k))
        .map(|(_, whose)| whose)
}

/// `endpoint.<model>.v1_suffix`, from the scenario alone.
fn configured_v1(cx: &Ctx<'_>, model: usize) -> Verdict {
    let m = &cx.scenario.models[model];
    let shown = m
        .endpoint
        .as_ref()
        .map(|e| e.render(|b| Some(format!("{{{{ backends.{b}.url }}}}"))))
        .unwrap_or_default();
    let expected = "an endpoint ending in /v1".to_owned();
    if m.endpoint
        .as_ref()
        .is_some_and(|e| crate::wire::endpoint::has_v1_suffix(&e.render(|_| Some(String::new()))))
    {
        pass(expected, format!("`{shown}`"))
    } else {
        fail(
            expected,
            format!(
                "`{shown}` has no /v1: the gateway will call {}/chat/completions, which vLLM answers with 404; add /v1 to the model's endpoint in GitLab",
                shown.trim_end_matches('/')
            ),
        )
    }
}

/// Providers and models a gateway may fall back to, as their names show in errors.
const OTHER_MODELS: [&str; 6] = ["vertex", "anthropic", "gemini", "fireworks", "bedrock", "azure"];

/// `routing.invalid_metadata`: refused with an error, no backend call, and nothing
/// in the reply shows another model serving it.
fn invalid_metadata(o: &ProbeOutcome, reply: &Reply) -> Verdict {
    let expected = "an error to the client, no backend call, and no other model serving the request".to_owned();
    if let Some(h) = o.hits.first() {
        return fail(
            expected,
            format!(
                "backend `{}` was called at {} with the invalid metadata",
                h.backend, h.path
            ),
        );
    }
    if let (true, Some(e)) = (reply.broken, &reply.error) {
        return fail(expected, format!("no backend call, but a broken reply: {e}"));
    }
    if (300..400).contains(&reply.status) {
        return fail(
            expected,
            format!(
                "no backend call, but a redirect instead of an error: {}",
                describe(reply)
            ),
        );
    }
    let Some(e) = reply.error.as_deref().or(reply.aborted.as_deref()) else {
        return fail(
            expected,
            format!("the client got {}: another model served the request", describe(reply)),
        );
    };
    let lower = e.to_lowercase();
    if let Some(other) = OTHER_MODELS.iter().find(|p| lower.contains(*p)) {
        return fail(
            expected,
            format!(
                "the gateway dropped the metadata and sent the request to another model: its error names `{other}`: {}",
                trunc(e, 200)
            ),
        );
    }
    pass(expected, format!("refused: {}", trunc(e, 200)))
}

/// Whether a backend the request reached does not serve `want` (the model's endpoint
/// points at another server): what it answered, for the check's actual.
fn unserved(s: &Scenario, o: &ProbeOutcome, want: &str) -> Option<String> {
    o.hits.iter().find_map(|h| {
        let b = s.backends.iter().find(|b| b.name == h.backend)?;
        let serves = match b.provider {
            crate::scenario::BackendProvider::Bedrock => crate::wire::bedrock::serves(&b.models, want),
            _ => b.models.iter().any(|m| m == want),
        };
        (!serves).then(|| {
            let elsewhere: Vec<&str> = s
                .backends
                .iter()
                .filter(|o| o.models.iter().any(|m| m == want))
                .map(|o| o.name.as_str())
                .collect();
            let hint = match elsewhere.as_slice() {
                [] => String::new(),
                names => format!("; `{want}` is served by {}", names.join(", ")),
            };
            format!(
                "backend `{}` does not serve `{want}` (it answered {}; it serves {}): the model's endpoint points at another server{hint}",
                h.backend,
                h.status,
                b.models.join(", ")
            )
        })
    })
}

fn model_mismatch(o: &ProbeOutcome, m: &ModelConfig) -> Option<String> {
    let want = m.identifier.model.as_str();
    if o.hits.is_empty() {
        return Some("no upstream request".into());
    }
    if m.identifier.provider == Provider::Bedrock {
        // Bedrock takes the model id from the path, raw or percent-encoded.
        return o.hits.iter().find_map(|h| {
            let id = h
                .path
                .strip_prefix("/model/")
                .and_then(|r| r.rsplit_once('/'))
                .map(|(id, _)| crate::wire::bedrock::decode_id(id));
            match id {
                Some(d) if d == want => None,
                Some(d) => Some(format!("upstream model id `{d}` (answered {})", h.status)),
                None => Some(format!("the upstream path {} names no model", h.path)),
            }
        });
    }
    if m.identifier.provider == Provider::Azure {
        // Azure takes the deployment from the path; the body's `model` is ignored.
        return o.hits.iter().find_map(|h| {
            let dep = h
                .path
                .split_once("/openai/deployments/")
                .and_then(|(_, r)| r.split('/').next());
            match dep {
                Some(d) if d == want => None,
                Some(d) => Some(format!("upstream deployment `{d}` (answered {})", h.status)),
                None => Some(format!("the upstream path {} names no deployment", h.path)),
            }
        });
    }
    o.hits.iter().find_map(|h| match h.model.clone() {
        Some(g) if g == want => None,
        Some(g) => Some(format!("upstream model `{g}` (answered {})", h.status)),
        None => Some("the upstream request has no `model`".into()),
    })
}

fn backend_name(s: &Scenario, model: usize) -> &str {
    s.models[model]
        .backend
        .map(|b| s.backends[b].name.as_str())
        .unwrap_or("?")
}

/// The path the backend should see for a model called at `endpoint`.
pub fn expected_path(m: &ModelConfig, endpoint: &str) -> String {
    match m.identifier.provider {
        Provider::Azure => {
            let base = crate::wire::endpoint::chat_completions_path(endpoint);
            let base = base.trim_end_matches("/chat/completions");
            format!("{base}/openai/deployments/{}/chat/completions", m.identifier.model)
        }
        _ => crate::wire::endpoint::chat_completions_path(endpoint),
    }
}

fn describe(r: &Reply) -> String {
    let end = match &r.aborted {
        Some(a) => format!(", the body breaking off ({a})"),
        None => String::new(),
    };
    match &r.error {
        Some(e) => format!("{e}{end}"),
        None if r.content.is_empty() => format!("{} with empty content{end}", r.status),
        None => format!("{} with content{end}", r.status),
    }
}

pub(crate) use crate::text::trunc;

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
