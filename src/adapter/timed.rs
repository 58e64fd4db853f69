//! The load path's reply reader, shared by the `aigw` and `proxy` adapters: one
//! request's timings (first byte, each token event) and its error class. Every framing
//! refuses an unrequested `Content-Encoding`; an ndjson line, an SSE event or a whole
//! body over [`MAX_REPLY`] stops the read; a whole body must be UTF-8 before it is
//! parsed; an OpenAI stream must end in `[DONE]` with intact framing. A raw text
//! stream is only counted, chunk by chunk, bounded by the request timeout.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;

use super::{MAX_REPLY, Reply};
use crate::metrics::ErrorClass;
use crate::wire::aws::eventstream;
use crate::wire::sse;

/// What a load run keeps of one request.
#[derive(Clone, Copy, Debug)]
pub struct Timed {
    /// When it was sent.
    pub sent: Instant,
    /// HTTP status (0 without a response).
    pub status: u16,
    /// When the response head arrived.
    pub first_byte: Option<Instant>,
    /// When the first token event arrived.
    pub first_token: Option<Instant>,
    /// When the last token event arrived.
    pub last_token: Option<Instant>,
    /// Token events (ndjson text deltas, stream chunks; 1 for a whole reply).
    pub tokens: u64,
    /// Body bytes.
    pub bytes: u64,
    /// Why it failed, if it did.
    pub error: Option<ErrorClass>,
    /// Prompt tokens as the server counted them (its `usage`), when it said.
    pub prompt_tokens: Option<u64>,
    /// Output tokens as the server counted them, when it said.
    pub completion_tokens: Option<u64>,
}

impl Timed {
    /// Records a token event arriving at `at`, reporting the gap since the last one.
    pub fn token(&mut self, at: Instant, gap: &mut impl FnMut(Duration)) {
        if let Some(prev) = self.last_token {
            gap(at.saturating_duration_since(prev));
        }
        self.first_token.get_or_insert(at);
        self.last_token = Some(at);
        self.tokens += 1;
    }

    /// The error class of a request that got no (complete) response.
    pub fn class_of(e: &reqwest::Error) -> ErrorClass {
        match super::transport_class(e) {
            "timeout" => ErrorClass::Timeout,
            "connect" => ErrorClass::Connect,
            _ => ErrorClass::Protocol,
        }
    }
}

impl Default for Timed {
    fn default() -> Self {
        Timed {
            sent: Instant::now(),
            status: 0,
            first_byte: None,
            first_token: None,
            last_token: None,
            tokens: 0,
            bytes: 0,
            error: None,
            prompt_tokens: None,
            completion_tokens: None,
        }
    }
}

impl Timed {
    /// Takes the token counts of a `usage` object: OpenAI's `prompt_tokens` and
    /// `completion_tokens`, Converse's `inputTokens` and `outputTokens`, Anthropic's
    /// `input_tokens` and `output_tokens`, Bedrock `invoke`'s invocation metrics.
    fn usage(&mut self, u: &Value) {
        let first = |keys: &[&str]| keys.iter().find_map(|k| u.get(*k).and_then(Value::as_u64));
        if let Some(p) = first(&["prompt_tokens", "inputTokens", "input_tokens", "inputTokenCount"]) {
            self.prompt_tokens = Some(p);
        }
        if let Some(c) = first(&["completion_tokens", "outputTokens", "output_tokens", "outputTokenCount"]) {
            self.completion_tokens = Some(c);
        }
    }
}

/// How a successful reply's body carries its tokens.
pub enum Framing<'a> {
    /// Duo Chat's ndjson events: each non-empty `final_answer_delta` is a token.
    Ndjson,
    /// A stream passed through as raw text (code suggestions): each chunk is a token.
    Chunks,
    /// OpenAI server-sent events, ending in `data: [DONE]`.
    Sse,
    /// Bedrock's AWS event stream (`invoke-with-response-stream`, `converse-stream`):
    /// each text delta is a token.
    EventStream,
    /// One reply, judged whole by the adapter's parser (`content` set: one token).
    Whole(&'a (dyn Fn(&mut Reply, &[u8]) + Sync)),
}

/// Reads the reply to a load request sent at `sent`. `framing` is told whether the
/// reply is an event stream (`Content-Type: text/event-stream`) and picks how its
/// body is read, or refuses it (`None`: a protocol error, e.g. a plain body where a
/// stream was asked for).
pub async fn receive<'a>(
    sent: Instant,
    response: Result<reqwest::Response, reqwest::Error>,
    framing: impl FnOnce(bool) -> Option<Framing<'a>>,
    gap: &mut impl FnMut(Duration),
) -> Timed {
    let mut t = Timed {
        sent,
        ..Timed::default()
    };
    let resp = match response {
        Ok(r) => r,
        Err(e) => {
            t.error = Some(Timed::class_of(&e));
            return t;
        }
    };
    t.first_byte = Some(Instant::now());
    t.status = resp.status().as_u16();
    let ok = (200..300).contains(&t.status);
    let sse = resp
        .headers()
        .get("content-type")
        .is_some_and(|c| c.as_bytes().starts_with(b"text/event-stream"));
    // gateprobe asks for no encoding and inflates none.
    if ok && super::encoding(&resp).is_some() {
        t.error = Some(ErrorClass::Protocol);
        return t;
    }
    let mut reader = match (framing(sse), ok) {
        (Some(f), _) => Reader::new(f),
        (None, true) => {
            t.error = Some(ErrorClass::Protocol);
            return t;
        }
        // An error reply is only counted; its framing does not matter.
        (None, false) => Reader::Chunks,
    };
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                t.error = Some(Timed::class_of(&e));
                return t;
            }
        };
        t.bytes += chunk.len() as u64;
        if !ok {
            if t.bytes > MAX_REPLY as u64 {
                break;
            }
            continue;
        }
        if reader.feed(&mut t, &chunk, Instant::now(), gap).is_err() {
            // An event or a reply too large to be an answer: stop reading it.
            t.error = Some(ErrorClass::Protocol);
            return t;
        }
    }
    if !ok {
        t.error = Some(ErrorClass::Status(t.status));
        return t;
    }
    reader.finish(&mut t, gap);
    if t.error.is_none() && t.tokens == 0 {
        t.error = Some(ErrorClass::Empty);
    }
    t
}

/// The body reader of one framing.
enum Reader<'a> {
    Ndjson {
        line: Vec<u8>,
    },
    Chunks,
    Sse {
        parser: sse::Parser,
        events: Vec<sse::Event>,
        done: bool,
    },
    Whole {
        body: Vec<u8>,
        parse: &'a (dyn Fn(&mut Reply, &[u8]) + Sync),
    },
    EventStream {
        decoder: eventstream::Decoder,
        messages: Vec<eventstream::Message>,
        stopped: bool,
    },
}

/// The chunk made the reply too large to read on.
struct TooLarge;

impl<'a> Reader<'a> {
    fn new(f: Framing<'a>) -> Self {
        match f {
            Framing::Ndjson => Reader::Ndjson { line: Vec::new() },
            Framing::Chunks => Reader::Chunks,
            Framing::Sse => Reader::Sse {
                parser: sse::Parser::default(),
                events: Vec::new(),
                done: false,
            },
            Framing::Whole(parse) => Reader::Whole {
                body: Vec::new(),
                parse,
            },
            Framing::EventStream => Reader::EventStream {
                decoder: eventstream::Decoder::new(),
                messages: Vec::new(),
                stopped: false,
            },
        }
    }

    fn feed(
        &mut self,
        t: &mut Timed,
        chunk: &[u8],
        at: Instant,
        gap: &mut impl FnMut(Duration),
    ) -> Result<(), TooLarge> {
        match self {
            Reader::Ndjson { line } => {
                for &b in chunk {
                    if b != b'\n' {
                        if line.len() == MAX_REPLY {
                            return Err(TooLarge);
                        }
                        line.push(b);
                        continue;
                    }
                    ndjson_event(t, line, at, gap);
                    line.clear();
                }
            }
            Reader::Chunks => {
                if !chunk.is_empty() {
                    t.token(at, gap);
                }
            }
            Reader::Sse { parser, events, done } => {
                parser.feed(chunk, events);
                if parser.anomalies().contains(&sse::Anomaly::Oversized) {
                    return Err(TooLarge);
                }
                for e in events.drain(..) {
                    sse_event(t, &e.data, done, at, gap);
                }
            }
            Reader::Whole { body, .. } => {
                if body.len() + chunk.len() > MAX_REPLY {
                    return Err(TooLarge);
                }
                body.extend_from_slice(chunk);
            }
            Reader::EventStream {
                decoder,
                messages,
                stopped,
            } => {
                // A broken frame (length, CRC) is as fatal as an oversized one.
                decoder.feed(chunk, messages).map_err(|_| TooLarge)?;
                for m in messages.drain(..) {
                    bedrock_event(t, &m, stopped, at, gap);
                }
            }
        }
        Ok(())
    }

    /// Judges what the end of a successful reply left.
    fn finish(self, t: &mut Timed, gap: &mut impl FnMut(Duration)) {
        match self {
            Reader::Ndjson { line } => {
                if !line.is_empty() {
                    // The last event without its newline.
                    ndjson_event(t, &line, Instant::now(), gap);
                }
            }
            Reader::Chunks => {}
            Reader::Sse { parser, done, .. } => {
                if !done || !parser.finish().is_empty() {
                    // A stream without its terminator, or with broken framing, was cut
                    // or mangled.
                    t.error.get_or_insert(ErrorClass::Protocol);
                }
            }
            Reader::Whole { body, parse } => {
                let Ok(text) = std::str::from_utf8(&body) else {
                    t.error = Some(ErrorClass::Protocol);
                    return;
                };
                let mut r = Reply {
                    status: t.status,
                    body: text.to_owned(),
                    ..Reply::default()
                };
                parse(&mut r, &body);
                if let Some(u) = serde_json::from_str::<Value>(text)
                    .ok()
                    .and_then(|mut v| v.get_mut("usage").map(Value::take))
                {
                    t.usage(&u);
                }
                if r.error.is_some() {
                    t.error = Some(ErrorClass::Protocol);
                } else if !r.content.is_empty() {
                    t.token(Instant::now(), gap);
                }
            }
            Reader::EventStream { decoder, stopped, .. } => {
                if !stopped || decoder.finish().is_err() {
                    t.error.get_or_insert(ErrorClass::Protocol);
                }
            }
        }
    }
}

/// One Bedrock stream message: a Converse `contentBlockDelta` or an `invoke` `chunk`
/// with text is a token; `metadata` and the last chunk's invocation metrics carry the
/// usage; `messageStop` (or a chunk with a stop reason) ends the answer; an exception
/// is an error.
fn bedrock_event(
    t: &mut Timed,
    m: &eventstream::Message,
    stopped: &mut bool,
    at: Instant,
    gap: &mut impl FnMut(Duration),
) {
    if m.message_type() != Some("event") {
        t.error = Some(ErrorClass::Empty);
        return;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&m.payload) else {
        t.error = Some(ErrorClass::Protocol);
        return;
    };
    let text_of = |v: &Value| {
        v.pointer("/delta/text")
            .or_else(|| v.pointer("/outputs/0/text"))
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    match m.event_type() {
        Some("contentBlockDelta") if text_of(&v) => t.token(at, gap),
        Some("messageStop") => *stopped = true,
        Some("metadata") => {
            if let Some(u) = v.get("usage") {
                t.usage(u);
            }
        }
        Some("chunk") => {
            let Some(inner) = crate::wire::bedrock::chunk_json(&v) else {
                t.error = Some(ErrorClass::Protocol);
                return;
            };
            if text_of(&inner) {
                t.token(at, gap);
            }
            if let Some(u) = inner.get("amazon-bedrock-invocationMetrics") {
                t.usage(u);
            }
            let mistral_stop = inner.pointer("/outputs/0/stop_reason").is_some_and(|s| !s.is_null());
            if mistral_stop || inner.get("type").and_then(Value::as_str) == Some("message_stop") {
                *stopped = true;
            }
        }
        _ => {}
    }
}

/// One Duo Chat ndjson line.
fn ndjson_event(t: &mut Timed, line: &[u8], at: Instant, gap: &mut impl FnMut(Duration)) {
    match serde_json::from_slice::<Value>(line) {
        Ok(ev) if ev.get("type").and_then(Value::as_str) == Some("final_answer_delta") => {
            if ev
                .pointer("/data/text")
                .and_then(Value::as_str)
                .is_some_and(|x| !x.is_empty())
            {
                t.token(at, gap);
            }
        }
        Ok(ev) if ev.get("type").and_then(Value::as_str) == Some("error") => t.error = Some(ErrorClass::Empty),
        Ok(_) => {}
        Err(_) if line.iter().all(u8::is_ascii_whitespace) => {}
        Err(_) => t.error = Some(ErrorClass::Protocol),
    }
}

/// One OpenAI stream event's data.
fn sse_event(t: &mut Timed, data: &str, done: &mut bool, at: Instant, gap: &mut impl FnMut(Duration)) {
    if data == "[DONE]" {
        *done = true;
        return;
    }
    let Some(c) = crate::wire::openai::chunk_summary(data) else {
        t.error = Some(ErrorClass::Protocol);
        return;
    };
    if c.error {
        t.error = Some(ErrorClass::Empty);
    }
    if let Some(u) = &c.usage {
        t.usage(u);
    }
    if c.token {
        t.token(at, gap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::any;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    async fn timed(reply: ResponseTemplate, framing: impl FnOnce(bool) -> Option<Framing<'static>>) -> Timed {
        let server = MockServer::start().await;
        Mock::given(any()).respond_with(reply).mount(&server).await;
        let response = reqwest::Client::new().get(server.uri()).send().await;
        let mut gaps = 0;
        let t = receive(Instant::now(), response, framing, &mut |_| gaps += 1).await;
        assert_eq!(gaps, t.tokens.saturating_sub(1), "one gap between each two tokens");
        t
    }

    fn sse(body: &str) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_raw(body.as_bytes().to_vec(), "text/event-stream")
    }

    const DELTA: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n";

    fn whole(r: &mut Reply, _: &[u8]) {
        r.content = r.body.clone();
    }

    #[tokio::test]
    async fn each_framing_counts_its_tokens_and_judges_its_end() {
        let t = timed(sse(&format!("{DELTA}{DELTA}data: [DONE]\n\n")), |_| Some(Framing::Sse)).await;
        assert_eq!((t.tokens, t.error, t.status), (2, None, 200));
        // Cut before `[DONE]`.
        let t = timed(sse(&format!("{DELTA}{DELTA}")), |_| Some(Framing::Sse)).await;
        assert_eq!((t.tokens, t.error), (2, Some(ErrorClass::Protocol)));
        let ndjson = "{\"type\":\"final_answer_delta\",\"data\":{\"text\":\"a\"}}\n{\"type\":\"final_answer_delta\",\"data\":{\"text\":\"b\"}}";
        let t = timed(ResponseTemplate::new(200).set_body_string(ndjson), |_| {
            Some(Framing::Ndjson)
        })
        .await;
        assert_eq!(
            (t.tokens, t.error),
            (2, None),
            "the last line counts without its newline"
        );
        let t = timed(ResponseTemplate::new(200).set_body_string("x"), |_| {
            Some(Framing::Whole(&whole))
        })
        .await;
        assert_eq!((t.tokens, t.error), (1, None));
        let t = timed(ResponseTemplate::new(200).set_body_string(""), |_| {
            Some(Framing::Whole(&whole))
        })
        .await;
        assert_eq!((t.tokens, t.error), (0, Some(ErrorClass::Empty)));
    }

    #[tokio::test]
    async fn broken_replies_are_protocol_errors_and_error_statuses_are_statuses() {
        let plain = ResponseTemplate::new(200).set_body_string("{}");
        let t = timed(plain, |sse| sse.then_some(Framing::Sse)).await;
        assert_eq!(
            t.error,
            Some(ErrorClass::Protocol),
            "a plain body where a stream was asked"
        );
        let gzip = ResponseTemplate::new(200)
            .insert_header("content-encoding", "gzip")
            .set_body_string("x");
        let t = timed(gzip, |_| Some(Framing::Whole(&whole))).await;
        assert_eq!(t.error, Some(ErrorClass::Protocol), "an encoding nobody asked for");
        let big = ResponseTemplate::new(200).set_body_raw(vec![b'a'; MAX_REPLY + 1], "application/json");
        let t = timed(big.clone(), |_| Some(Framing::Whole(&whole))).await;
        assert_eq!(t.error, Some(ErrorClass::Protocol), "a body over the cap");
        let t = timed(big, |_| Some(Framing::Ndjson)).await;
        assert_eq!(t.error, Some(ErrorClass::Protocol), "a line over the cap");
        let t = timed(
            ResponseTemplate::new(200).set_body_raw(vec![0xff, 0xfe], "application/json"),
            |_| Some(Framing::Whole(&whole)),
        )
        .await;
        assert_eq!(t.error, Some(ErrorClass::Protocol), "not UTF-8");
        let t = timed(ResponseTemplate::new(503).set_body_string("busy"), |_| None).await;
        assert_eq!((t.error, t.bytes), (Some(ErrorClass::Status(503)), 4));
    }
}
