//! `streaming`: streamed replies are well-formed and carry an answer: the AI
//! gateway's ndjson chat events and raw-text code suggestion and Chat-tool streams,
//! ending properly (even after an error event); and the exact OpenAI-style SSE an
//! OpenAI-compatible proxy owes its clients.

use super::planner::{Front, Planner, UNSEEN};
use super::verdict::{Verdict, describe, fail, pass, seen, skipped};
use super::{Ctx, Rule, tolerated};
use crate::adapter::{EventSummary, Reply};
use crate::feature::Endpoint;
use crate::instance::{Surface, served, surface};
use crate::plan::{CheckId, Judge, PlannedCheck};
use crate::scenario::{CheckFamily, Target};
use crate::text::trunc;

/// The `streaming` family.
pub struct Streaming;

impl Rule for Streaming {
    fn family(&self) -> CheckFamily {
        CheckFamily::Streaming
    }

    fn plan(&self, p: &mut Planner<'_>) {
        let front = p.front();
        if front == Front::Direct {
            return;
        }
        for fs in &p.s.features {
            let (Target::Model(i) | Target::Fallback(i)) = fs.target else {
                continue;
            };
            let f = fs.feature;
            // Judged on the reply alone: a real model's stream too, not a fault model's.
            if p.fault(i).is_some() {
                continue;
            }
            let id = CheckId::bare(CheckFamily::Streaming, f.name);
            if front == Front::Proxy {
                if matches!(
                    f.endpoint,
                    Endpoint::ChatAgent | Endpoint::CodeCompletions | Endpoint::CodeGenerations
                ) {
                    let k = p.probe(p.feature_probe(f, i, true));
                    p.check(
                        id,
                        "a streamed reply is exact SSE: JSON data frames, content, a finish reason, then [DONE]",
                        Judge::SseStream,
                        vec![k],
                    );
                }
                continue;
            }
            let surf = surface(p.shapes(), f, true);
            if !surf.streams() {
                continue;
            }
            let rule = "a streamed reply is well-formed, carries non-empty content and ends properly";
            let judge = Judge::Stream { surface: surf };
            match served(p.shapes(), f, &p.s.models[i].family) {
                Err(why) => p.skip(id, rule, judge, &why),
                Ok(()) => {
                    let k = p.probe(p.feature_probe(f, i, true));
                    p.check(id, rule, judge, vec![k]);
                }
            }
        }
    }

    fn judge(&self, check: &PlannedCheck, cx: &Ctx<'_>) -> Verdict {
        if check.judge == Judge::ErrorEnd {
            return tolerated(cx, "stream_end.after_error", error_end(check, cx));
        }
        let seen = match seen(check, cx) {
            Ok(x) => x,
            Err(v) => return v,
        };
        match &check.judge {
            Judge::Stream { surface } => ndjson_or_text(*surface, seen.reply),
            Judge::SseStream => sse(seen.reply),
            _ => super::misfiled(check),
        }
    }
}

/// `streaming.chat_agent.error_end`: every chat stream that carried an error event
/// (the error-path probes the other families planned) ends properly. Planned after
/// every family.
pub fn plan_error_end(p: &mut Planner<'_>) {
    if p.front() != Front::AiGateway || !p.wants(CheckFamily::Streaming) || p.s.models.is_empty() {
        return;
    }
    let chat = crate::scenario::profile::Profile::missing_v1_key(Surface::ChatAgent);
    let probes: Vec<usize> = p
        .plan
        .checks
        .iter()
        .filter(|c| c.skip.is_none())
        .filter(|c| match &c.judge {
            Judge::MissingV1 { key, .. } => *key == chat,
            Judge::Profiled { key, .. } => key.ends_with(".chat_agent"),
            _ => false,
        })
        .flat_map(|c| c.probes.iter().copied())
        .collect();
    let id = CheckId::of(CheckFamily::Streaming, "chat_agent", "error_end");
    let rule = "a chat stream that carries an error event is still terminated properly (the chunked body ends), so a client tells a reported error from a broken connection";
    if probes.is_empty() {
        let unseen = p
            .plan
            .checks
            .iter()
            .any(|c| matches!(c.judge, Judge::MissingV1 { .. }) && c.skip.as_deref() == Some(UNSEEN));
        if !unseen {
            // The scenario asked for no error path.
            return;
        }
        p.skip(
            id,
            rule,
            Judge::ErrorEnd,
            "the error paths go to models whose endpoints are not gateprobe mocks: no chat request could be made to fail upstream",
        );
        return;
    }
    p.check(id, rule, Judge::ErrorEnd, probes);
}

/// AI gateway streams: ndjson chat events, raw-text code suggestions and prompts.
fn ndjson_or_text(surface: Surface, reply: &Reply) -> Verdict {
    if surface == Surface::ChatAgent {
        let expected = "200 application/x-ndjson: well-formed events, an answer (final answer deltas, or an unknown event the instance shows as the answer), a proper end".to_owned();
        if reply.status != 200 {
            return fail(expected, describe(reply));
        }
        let ev = match well_formed(reply, "line", "text") {
            Ok(ev) => ev,
            Err(why) => return fail(expected, why),
        };
        if let Some(a) = &reply.aborted {
            return fail(expected, format!("the stream broke off: {a}"));
        }
        return pass(
            expected,
            format!("{} events, {} characters of text", ev.events, reply.content.len()),
        );
    }
    let expected = "200 text/event-stream with non-empty text".to_owned();
    let ct = reply.content_type.as_deref().unwrap_or("");
    if reply.status != 200 || !ct.starts_with("text/event-stream") {
        return fail(expected, format!("{} {ct}", reply.status));
    }
    let sse_line = reply
        .content
        .lines()
        .find(|l| l.starts_with("data: {") || l.starts_with("data:{") || l.trim() == "data: [DONE]");
    match (&reply.error, reply.content.is_empty()) {
        (Some(e), _) => fail(expected, e.clone()),
        (None, _) if reply.aborted.is_some() => fail(
            expected,
            format!(
                "the stream broke off after {} characters: {}",
                reply.content.len(),
                reply.aborted.as_deref().unwrap_or_default()
            ),
        ),
        (None, true) => fail(expected, "an empty stream"),
        // Upstream SSE passed through verbatim: the client would show the framing as code.
        (None, false) if sse_line.is_some() => fail(
            expected,
            format!(
                "the text carries SSE framing, e.g. `{}`: the upstream stream was passed through instead of its text",
                trunc(sse_line.unwrap_or_default(), 60)
            ),
        ),
        (None, false) => pass(expected, format!("{} characters of text", reply.content.len())),
    }
}

/// `streaming.chat_agent.error_end`: every chat stream among the check's probes that
/// carried an error event ends properly.
fn error_end(check: &PlannedCheck, cx: &Ctx<'_>) -> Verdict {
    let expected = "every chat stream that carried an error event ends properly".to_owned();
    let mut seen = 0;
    for &p in &check.probes {
        let o = &cx.outcomes[p];
        let Some(Ok(r)) = &o.result else {
            continue;
        };
        if r.events.as_ref().is_none_or(|e| e.errors.is_empty()) {
            continue;
        }
        seen += 1;
        if let Some(a) = &r.aborted {
            return fail(
                expected,
                format!(
                    "the stream of {} ({}) broke off after its error event: {a}",
                    o.correlation_id, o.path
                ),
            );
        }
    }
    match seen {
        0 => skipped("no chat stream carried an error event"),
        n => pass(
            expected,
            format!("{n} stream(s) with an error event, each ended properly"),
        ),
    }
}

/// The events of a stream that was read whole, parsed, free of error events and
/// carried some `what`; otherwise what was wrong (`unit`: what one event is on the
/// wire).
fn well_formed<'r>(reply: &'r Reply, unit: &str, what: &str) -> Result<&'r EventSummary, String> {
    if let (true, Some(e)) = (reply.broken, &reply.error) {
        // Not UTF-8, an encoding nobody asked for, over the size cap.
        return Err(e.clone());
    }
    let ev = reply.events.as_ref().ok_or("no event stream")?;
    if let Some(bad) = ev.malformed.first() {
        return Err(format!(
            "{} malformed {unit}(s), first: {}",
            ev.malformed.len(),
            trunc(bad, 80)
        ));
    }
    if let Some(e) = ev.errors.first() {
        return Err(format!("error event: {e}"));
    }
    if reply.content.is_empty() {
        return Err(format!("{} events but no {what}", ev.events));
    }
    Ok(ev)
}

/// OpenAI-style SSE from a proxy.
fn sse(reply: &Reply) -> Verdict {
    let expected = "200 text/event-stream: JSON data frames, non-empty content, a finish reason, [DONE]".to_owned();
    let ct = reply.content_type.as_deref().unwrap_or("");
    if reply.status != 200 || !ct.starts_with("text/event-stream") {
        return fail(expected, format!("{} {}", describe(reply), ct));
    }
    let ev = match well_formed(reply, "frame", "content") {
        Ok(ev) => ev,
        Err(why) => return fail(expected, why),
    };
    if !ev.finished {
        return fail(expected, "no chunk carried a finish_reason");
    }
    if !ev.done {
        return fail(expected, "the stream ended without data: [DONE]");
    }
    pass(
        expected,
        format!(
            "{} events, {} characters of content, [DONE]",
            ev.events,
            reply.content.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::EventSummary;
    use crate::report::Status;

    /// A stream whose events all parse, but whose bytes were not all UTF-8 (the
    /// parser saw them replaced).
    fn broken(content_type: &str, done: bool) -> Reply {
        Reply {
            status: 200,
            content_type: Some(content_type.into()),
            content: "hello".into(),
            events: Some(EventSummary {
                events: 3,
                usage: true,
                finished: true,
                done,
                ..EventSummary::default()
            }),
            error: Some("reply is not valid UTF-8 (first invalid byte at offset 12)".into()),
            broken: true,
            ..Reply::default()
        }
    }

    #[test]
    fn a_broken_stream_fails_even_when_its_events_parse() {
        let v = ndjson_or_text(Surface::ChatAgent, &broken("application/x-ndjson", false));
        assert_eq!(v.status, Status::Failed, "{}", v.actual);
        assert!(v.actual.contains("not valid UTF-8"), "{}", v.actual);
        let v = sse(&broken("text/event-stream", true));
        assert_eq!(v.status, Status::Failed, "{}", v.actual);
        let mut whole = broken("text/event-stream", true);
        (whole.broken, whole.error) = (false, None);
        assert_eq!(sse(&whole).status, Status::Passed, "{}", sse(&whole).actual);
        let mut whole = broken("application/x-ndjson", false);
        (whole.broken, whole.error) = (false, None);
        assert_eq!(ndjson_or_text(Surface::ChatAgent, &whole).status, Status::Passed);
    }
}
