//! Judging streamed replies: the AI gateway's ndjson chat events and raw-text code
//! suggestion streams, and the exact OpenAI-style SSE an OpenAI-compatible proxy owes
//! its clients.

use super::{Verdict, describe, fail, pass, trunc};
use crate::adapter::Reply;
use crate::feature::Endpoint;

/// AI gateway streams: ndjson chat events, raw-text code suggestions.
pub(super) fn ndjson_or_text(endpoint: Endpoint, reply: &Reply) -> Verdict {
    if endpoint == Endpoint::ChatAgent {
        let expected = "200 application/x-ndjson: well-formed events, non-empty text, a final event".to_owned();
        if reply.status != 200 {
            return fail(expected, describe(reply));
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
        if !ev.finished {
            return fail(expected, "the stream ended without a final event");
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

/// OpenAI-style SSE from a proxy.
pub(super) fn sse(reply: &Reply) -> Verdict {
    let expected = "200 text/event-stream: JSON data frames, non-empty content, a finish reason, [DONE]".to_owned();
    let ct = reply.content_type.as_deref().unwrap_or("");
    if reply.status != 200 || !ct.starts_with("text/event-stream") {
        return fail(expected, format!("{} {}", describe(reply), ct));
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
