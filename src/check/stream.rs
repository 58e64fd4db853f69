//! Judging streamed replies: the AI gateway's ndjson chat events and raw-text code
//! suggestion streams, and the exact OpenAI-style SSE an OpenAI-compatible proxy owes
//! its clients.

use super::{Ctx, Verdict, describe, fail, pass, trunc};
use crate::adapter::Reply;
use crate::instance::Surface;
use crate::plan::PlannedCheck;

/// AI gateway streams: ndjson chat events, raw-text code suggestions and prompts.
pub(super) fn ndjson_or_text(surface: Surface, reply: &Reply) -> Verdict {
    if surface == Surface::ChatAgent {
        let expected = "200 application/x-ndjson: well-formed events, an answer (final answer deltas, or an unknown event the instance shows as the answer), a proper end".to_owned();
        if reply.status != 200 {
            return fail(expected, describe(reply));
        }
        if let (true, Some(e)) = (reply.broken, &reply.error) {
            // Not UTF-8, an encoding nobody asked for, over the size cap.
            return fail(expected, e.clone());
        }
        let Some(ev) = &reply.events else {
            return fail(expected, "no event stream");
        };
        if let Some(bad) = ev.malformed.first() {
            return fail(
                expected,
                format!("{} malformed line(s), first: {}", ev.malformed.len(), trunc(bad, 80)),
            );
        }
        if let Some(e) = ev.errors.first() {
            return fail(expected, format!("error event: {e}"));
        }
        if reply.content.is_empty() {
            return fail(expected, format!("{} events but no text", ev.events));
        }
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
pub(super) fn error_end(check: &PlannedCheck, cx: &Ctx<'_>) -> Verdict {
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
        0 => (
            crate::report::Status::Skipped,
            expected,
            "no chat stream carried an error event".into(),
        ),
        n => pass(
            expected,
            format!("{n} stream(s) with an error event, each ended properly"),
        ),
    }
}

/// OpenAI-style SSE from a proxy.
pub(super) fn sse(reply: &Reply) -> Verdict {
    let expected = "200 text/event-stream: JSON data frames, non-empty content, a finish reason, [DONE]".to_owned();
    let ct = reply.content_type.as_deref().unwrap_or("");
    if reply.status != 200 || !ct.starts_with("text/event-stream") {
        return fail(expected, format!("{} {}", describe(reply), ct));
    }
    if let (true, Some(e)) = (reply.broken, &reply.error) {
        return fail(expected, e.clone());
    }
    let Some(ev) = &reply.events else {
        return fail(expected, "no event stream");
    };
    if let Some(bad) = ev.malformed.first() {
        return fail(
            expected,
            format!("{} malformed frame(s), first: {}", ev.malformed.len(), trunc(bad, 80)),
        );
    }
    if let Some(e) = ev.errors.first() {
        return fail(expected, format!("error event: {e}"));
    }
    if reply.content.is_empty() {
        return fail(expected, format!("{} events but no content", ev.events));
    }
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
        let (status, _, actual) = ndjson_or_text(Surface::ChatAgent, &broken("application/x-ndjson", false));
        assert_eq!(status, Status::Failed, "{actual}");
        assert!(actual.contains("not valid UTF-8"), "{actual}");
        let (status, _, actual) = sse(&broken("text/event-stream", true));
        assert_eq!(status, Status::Failed, "{actual}");
        let mut whole = broken("text/event-stream", true);
        (whole.broken, whole.error) = (false, None);
        assert_eq!(sse(&whole).0, Status::Passed, "{}", sse(&whole).2);
        let mut whole = broken("application/x-ndjson", false);
        (whole.broken, whole.error) = (false, None);
        assert_eq!(ndjson_or_text(Surface::ChatAgent, &whole).0, Status::Passed);
    }
}
