//! `vendor`: a model endpoint itself (`kind: direct`), checked for what the AI gateway
//! relies on when it calls `{endpoint}/models` and `{endpoint}/chat/completions` (or
//! Azure's deployments, or Bedrock's Converse).

use serde_json::Value;

use super::planner::{Front, Planner};
use super::verdict::{Verdict, error, fail, pass};
use super::{Ctx, Rule};
use crate::adapter::TransportError;
use crate::adapter::openai::Exchange;
use crate::identifier::Provider;
use crate::mock::journal::Entry;
use crate::plan::{CheckId, DirectOp, Judge, PlannedCheck};
use crate::plan::{DirectProbe, VendorRule};
use crate::report::{BackendHit, Evidence, RequestInfo, ResponseInfo};
use crate::scenario::CheckFamily;
use crate::text::trunc;
use crate::wire::endpoint::has_v1_suffix;
use crate::wire::openai::error_message;
use crate::wire::sse;

/// What happened to one direct request.
#[derive(Clone, Debug, Default)]
pub struct DirectOutcome {
    /// Correlation id in the prompt (chat requests).
    pub correlation_id: String,
    /// The endpoint it was sent to.
    pub endpoint: String,
    /// The exchange; `None` when it never ran.
    pub result: Option<Result<Exchange, TransportError>>,
    /// What our mock received for it, when the endpoint is one.
    pub hits: Vec<Entry>,
}

/// The `vendor` family.
pub struct Vendor;

impl Rule for Vendor {
    fn family(&self) -> CheckFamily {
        CheckFamily::Vendor
    }

    fn plan(&self, p: &mut Planner<'_>) {
        if p.front() != Front::Direct {
            return;
        }
        for (i, m) in p.s.models.iter().enumerate() {
            let provider = m.identifier.provider;
            let add = |p: &mut Planner<'_>, rule: VendorRule, text: &str, op: DirectOp| {
                let k = direct_probe(p, i, op);
                p.check(
                    CheckId::of(CheckFamily::Vendor, &m.name, rule.name()),
                    text,
                    Judge::Vendor(rule),
                    vec![k],
                );
            };
            if provider == Provider::CustomOpenai {
                add(
                    p,
                    VendorRule::V1Suffix,
                    "the endpoint ends in /v1 (the gateway never adds it); without it the server answers 404",
                    DirectOp::ModelsWithoutV1,
                );
                add(
                    p,
                    VendorRule::Models,
                    "GET {endpoint}/models lists the identifier's model",
                    DirectOp::Models,
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
            add(p, VendorRule::Chat, chat, DirectOp::Chat { stream: false });
            add(p, VendorRule::Stream, stream, DirectOp::Chat { stream: true });
            if m.api_key.is_some() || provider == Provider::Bedrock {
                add(p, VendorRule::WrongKey, wrong, DirectOp::WrongKey);
            }
            add(p, VendorRule::UnknownModel, unknown, DirectOp::UnknownModel);
        }
    }

    fn judge(&self, check: &PlannedCheck, cx: &Ctx<'_>) -> Verdict {
        match (&check.judge, check.probes.first()) {
            (Judge::Vendor(rule), Some(&p)) => verdict(*rule, p, cx),
            _ => super::misfiled(check),
        }
    }
}

/// A direct request (shared when equal to one planned), its index in `plan.direct`.
pub(super) fn direct_probe(p: &mut Planner<'_>, model: usize, op: DirectOp) -> usize {
    let d = DirectProbe { model, op };
    match p.plan.direct.iter().position(|q| *q == d) {
        Some(i) => i,
        None => {
            p.plan.direct.push(d);
            p.plan.direct.len() - 1
        }
    }
}

fn verdict(rule: VendorRule, probe: usize, cx: &Ctx<'_>) -> Verdict {
    let o = &cx.direct[probe];
    let p = &cx.plan_direct[probe];
    let model = &cx.scenario.models[p.model];
    let x = match &o.result {
        None => {
            return error(
                "",
                format!("not run: {}", cx.not_run.unwrap_or("the run stopped first")),
            );
        }
        // A certificate the client refuses, or a client certificate the endpoint wants
        // and did not get, is the endpoint's TLS setup failing the gateway: a failure.
        Some(Err(e)) if e.kind == "tls" => {
            return fail(
                "a TLS connection the gateway's client accepts (certificate trusted, host matching, client certificate if required)",
                format!("no reply ({e})"),
            );
        }
        Some(Err(e)) => return error("a reply from the endpoint", format!("no reply ({e})")),
        Some(Ok(x)) => x,
    };
    if let Some(d) = &x.defect
        && rule != VendorRule::V1Suffix
    {
        return fail("a well-formed reply", format!("{} {}", x.status, d));
    }
    let want_model = &model.identifier.model;
    let bedrock = model.identifier.provider == Provider::Bedrock;
    match rule {
        VendorRule::V1Suffix => {
            let expected = "the configured endpoint ends in /v1".to_owned();
            let without = format!("without /v1 the server answered {}", x.status);
            if has_v1_suffix(&o.endpoint) {
                pass(expected, format!("it does; {without}"))
            } else {
                fail(
                    expected,
                    format!(
                        "`{}` does not end in /v1; the AI gateway would call {}/chat/completions",
                        o.endpoint,
                        o.endpoint.trim_end_matches('/')
                    ),
                )
            }
        }
        VendorRule::Models => {
            let expected = format!("200 JSON list whose data[].id includes `{want_model}`");
            if x.status != 200 {
                return fail(expected, status_line(x));
            }
            let Ok(v) = serde_json::from_str::<Value>(&x.body) else {
                return fail(expected, "the body is not JSON");
            };
            let ids: Vec<&str> = v
                .get("data")
                .and_then(Value::as_array)
                .map(|d| d.iter().filter_map(|m| m.get("id").and_then(Value::as_str)).collect())
                .unwrap_or_default();
            if ids.contains(&want_model.as_str()) {
                pass(expected, format!("listed among {} model(s)", ids.len()))
            } else {
                fail(
                    expected,
                    format!(
                        "models listed: {}",
                        if ids.is_empty() { "none".into() } else { ids.join(", ") }
                    ),
                )
            }
        }
        VendorRule::Chat if bedrock => converse_verdict(x),
        VendorRule::Stream if bedrock => converse_stream_verdict(x),
        VendorRule::WrongKey if bedrock => error_verdict(x, &[403]),
        VendorRule::UnknownModel if bedrock => error_verdict(x, &[403, 404]),
        VendorRule::Chat => chat_verdict(x),
        VendorRule::Stream => stream_verdict(x),
        VendorRule::WrongKey => error_verdict(x, &[401]),
        VendorRule::UnknownModel => error_verdict(x, &[404]),
    }
}

fn status_line(x: &Exchange) -> String {
    format!("{} {}", x.status, trunc(&x.body, 120))
}

fn chat_verdict(x: &Exchange) -> Verdict {
    let expected = "200 chat.completion with content, finish_reason and usage".to_owned();
    if x.status != 200 {
        return fail(expected, status_line(x));
    }
    let Ok(v) = serde_json::from_str::<Value>(&x.body) else {
        return fail(expected, format!("the body is not JSON: {}", trunc(&x.body, 80)));
    };
    let content = v
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let problems: Vec<&str> = [
        (
            v.get("object").and_then(Value::as_str) != Some("chat.completion"),
            "object is not chat.completion",
        ),
        (content.is_empty(), "no content"),
        (
            v.pointer("/choices/0/finish_reason").and_then(Value::as_str).is_none(),
            "no finish_reason",
        ),
        (
            v.pointer("/usage/completion_tokens").and_then(Value::as_u64).is_none(),
            "no usage",
        ),
    ]
    .into_iter()
    .filter_map(|(bad, what)| bad.then_some(what))
    .collect();
    if problems.is_empty() {
        pass(expected, format!("{} characters of content", content.len()))
    } else {
        fail(expected, problems.join(", "))
    }
}

fn stream_verdict(x: &Exchange) -> Verdict {
    let expected =
        "200 text/event-stream: JSON data frames, role, content, finish_reason, usage chunk, [DONE]".to_owned();
    let ct = x.content_type.as_deref().unwrap_or("");
    if x.status != 200 || !ct.starts_with("text/event-stream") {
        return fail(expected, format!("{} {ct}", x.status));
    }
    let mut parser = sse::Parser::default();
    let mut events = Vec::new();
    parser.feed(x.body.as_bytes(), &mut events);
    let anomalies = parser.finish();
    if let Some(a) = anomalies.first() {
        return fail(expected, format!("broken SSE framing: {a:?}"));
    }
    let mut problems = Vec::new();
    if events.last().map(|e| e.data.as_str()) != Some("[DONE]") {
        problems.push("no [DONE] at the end".to_owned());
    }
    let (mut role, mut content, mut finish, mut usage) = (false, String::new(), false, false);
    for e in events.iter().filter(|e| e.data != "[DONE]") {
        let Ok(v) = serde_json::from_str::<Value>(&e.data) else {
            problems.push(format!("a data frame is not JSON: {}", trunc(&e.data, 60)));
            break;
        };
        if v.get("error").is_some() {
            problems.push(format!("an in-band error: {}", trunc(&e.data, 80)));
        }
        role |= v.pointer("/choices/0/delta/role").is_some();
        content.push_str(
            v.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        );
        finish |= v.pointer("/choices/0/finish_reason").is_some_and(|f| !f.is_null());
        usage |= v.pointer("/usage/completion_tokens").is_some();
    }
    for (ok, what) in [
        (role, "no role delta"),
        (!content.is_empty(), "no content"),
        (finish, "no finish_reason"),
        (usage, "no usage chunk"),
    ] {
        if !ok {
            problems.push(what.to_owned());
        }
    }
    if problems.is_empty() {
        pass(
            expected,
            format!("{} events, {} characters of content", events.len(), content.len()),
        )
    } else {
        fail(expected, problems.join(", "))
    }
}

fn error_verdict(x: &Exchange, want: &[u16]) -> Verdict {
    let statuses = want.iter().map(u16::to_string).collect::<Vec<_>>().join(" or ");
    let expected = format!("{statuses} with a JSON error body");
    if !want.contains(&x.status) {
        return fail(expected, status_line(x));
    }
    match error_message(&x.body) {
        Some(m) => pass(expected, format!("{}: {}", x.status, trunc(&m, 100))),
        None => fail(
            expected,
            format!("{} with an unparseable body: {}", x.status, trunc(&x.body, 80)),
        ),
    }
}

fn converse_verdict(x: &Exchange) -> Verdict {
    let expected = "200 Converse reply with output text, stopReason and usage".to_owned();
    if x.status != 200 {
        return fail(expected, status_line(x));
    }
    let Ok(v) = serde_json::from_str::<Value>(&x.body) else {
        return fail(expected, format!("the body is not JSON: {}", trunc(&x.body, 80)));
    };
    let text = v
        .pointer("/output/message/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let problems: Vec<&str> = [
        (text.is_empty(), "no output text"),
        (v.get("stopReason").and_then(Value::as_str).is_none(), "no stopReason"),
        (
            v.pointer("/usage/outputTokens").and_then(Value::as_u64).is_none(),
            "no usage",
        ),
    ]
    .into_iter()
    .filter_map(|(bad, what)| bad.then_some(what))
    .collect();
    if problems.is_empty() {
        pass(expected, format!("{} characters of text", text.len()))
    } else {
        fail(expected, problems.join(", "))
    }
}

fn converse_stream_verdict(x: &Exchange) -> Verdict {
    let expected =
        "200 application/vnd.amazon.eventstream: valid frames, messageStart, text deltas, messageStop, metadata"
            .to_owned();
    let ct = x.content_type.as_deref().unwrap_or("");
    if x.status != 200 || !ct.starts_with("application/vnd.amazon.eventstream") {
        return fail(expected, format!("{} {ct}", x.status));
    }
    let messages = match crate::wire::aws::eventstream::decode_all(&x.bytes) {
        Ok(m) => m,
        Err(e) => return fail(expected, format!("broken event stream: {e}")),
    };
    let mut text = String::new();
    let mut seen: Vec<String> = Vec::new();
    for m in &messages {
        if m.message_type() == Some("exception") {
            return fail(
                expected,
                format!("an exception event: {}", m.exception_type().unwrap_or("?")),
            );
        }
        let ev = m.event_type().unwrap_or("").to_owned();
        if ev == "contentBlockDelta" {
            match serde_json::from_slice::<Value>(&m.payload) {
                Ok(v) => text.push_str(v.pointer("/delta/text").and_then(Value::as_str).unwrap_or_default()),
                Err(_) => return fail(expected, "a contentBlockDelta payload is not JSON"),
            }
        }
        seen.push(ev);
    }
    let missing: Vec<&str> = ["messageStart", "messageStop", "metadata"]
        .into_iter()
        .filter(|e| !seen.iter().any(|s| s == e))
        .collect();
    match (missing.is_empty(), text.is_empty()) {
        (_, true) => fail(expected, "no text deltas"),
        (false, _) => fail(expected, format!("missing {}", missing.join(", "))),
        (true, false) => pass(
            expected,
            format!("{} events, {} characters of text", messages.len(), text.len()),
        ),
    }
}

pub(super) fn evidence(cx: &Ctx<'_>, probe: usize) -> Evidence {
    let o = &cx.direct[probe];
    let p: &DirectProbe = &cx.plan_direct[probe];
    let m = &cx.scenario.models[p.model];
    let (response, transport_error) = match &o.result {
        Some(Ok(x)) => (
            Some(ResponseInfo {
                aborted: None,
                status: x.status,
                content_type: x.content_type.clone(),
                content: String::new(),
                body: trunc(&x.body, 500),
                error: None,
                elapsed_ms: x.elapsed.as_secs_f64() * 1000.0,
            }),
            None,
        ),
        Some(Err(e)) => (None, Some(e.to_string())),
        None => (None, Some("not run".into())),
    };
    let path = match &o.result {
        Some(Ok(x)) => x.path.clone(),
        _ => String::new(),
    };
    Evidence {
        correlation_id: o.correlation_id.clone(),
        request: RequestInfo {
            path,
            feature: "direct".into(),
            model: m.name.clone(),
            endpoint: o.endpoint.clone(),
            identifier: m.identifier.to_string(),
            stream: matches!(
                p.op,
                crate::plan::DirectOp::Chat { stream: true }
                    | crate::plan::DirectOp::Ready(crate::plan::ReadyOp::Context { .. })
            ),
            auth: if p.op == crate::plan::DirectOp::WrongKey {
                "wrong_key".into()
            } else {
                "valid".into()
            },
        },
        response,
        transport_error,
        backend: o.hits.iter().map(BackendHit::from).collect(),
    }
}
