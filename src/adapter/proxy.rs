//! The `proxy` adapter: gateprobe is an OpenAI client of an OpenAI-compatible proxy
//! (LiteLLM, the reference gateway's `/v1` front, Envoy AI Gateway, ...). A feature's
//! request is a chat completion (or, for code completions, a legacy completion)
//! addressed to a proxy alias, with a bearer client key, plain or streamed.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::timed::Framing;
use super::{ClientAuth, EventSummary, Reply, TransportError};
use crate::wire::prompt::{Generation, Prompt};
use crate::wire::sse;

/// Which OpenAI API a request uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// `POST /v1/chat/completions`.
    Chat,
    /// `POST /v1/completions` (legacy; code completion).
    Completions,
}

impl Api {
    /// The path under the proxy's base URL.
    pub fn path(self) -> &'static str {
        match self {
            Api::Chat => "/v1/chat/completions",
            Api::Completions => "/v1/completions",
        }
    }
}

/// A client of one proxy.
#[derive(Clone, Debug)]
pub struct ProxyClient {
    base: String,
    client: reqwest::Client,
    key: Option<String>,
    timeout: Duration,
    tls: super::Tls,
    /// The upstream credentials no reply may hold (see [`super::fetch`]).
    watch: crate::redact::Redactor,
}

/// One request to an alias.
#[derive(Clone, Debug)]
pub struct ProxyRequest<'a> {
    /// The alias (`model` of the request).
    pub alias: &'a str,
    /// Chat or legacy completions.
    pub api: Api,
    /// Ask for SSE.
    pub stream: bool,
    /// Which key to present.
    pub auth: ClientAuth,
    /// Correlation id planted in the prompt and `X-Request-ID`.
    pub correlation_id: &'a str,
    /// A workload's prompt and output length, instead of the canned request; with the
    /// model's family (the fill-in-the-middle tokens of a completion).
    pub prompt: Option<(&'a Prompt, Generation, &'a str)>,
}

/// The wrong key probes present.
pub const WRONG_KEY: &str = "sk-gateprobe-wrong-key";

impl ProxyClient {
    /// A client of the proxy at `base` (with or without a trailing `/v1`).
    pub fn new(base: &str, key: Option<String>, timeout: Duration, tls: &super::Tls) -> reqwest::Result<Self> {
        let base = base.trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base).to_owned();
        Ok(ProxyClient {
            base,
            client: super::http_client(timeout, tls, false)?,
            key,
            timeout,
            tls: tls.clone(),
            watch: crate::redact::Redactor::default(),
        })
    }

    /// The same client, searching every reply for these credentials.
    pub fn watching(self, watch: crate::redact::Redactor) -> Self {
        ProxyClient { watch, ..self }
    }

    /// The same client with connection reuse, for load phases (see
    /// [`super::aigw::AigwClient::pooled`]).
    pub fn pooled(&self) -> reqwest::Result<Self> {
        Ok(ProxyClient {
            client: super::http_client(self.timeout, &self.tls, true)?,
            ..self.clone()
        })
    }

    /// The request body.
    pub fn body(req: &ProxyRequest<'_>) -> Value {
        let id = req.correlation_id;
        if let Some((p, g, family)) = req.prompt {
            return match req.api {
                Api::Chat => crate::wire::prompt::openai_chat(req.alias, p, g, req.stream),
                Api::Completions => crate::wire::prompt::openai_completion(req.alias, family, p, g, req.stream),
            };
        }
        match req.api {
            Api::Chat => json!({
                "model": req.alias,
                "messages": [{"role": "user", "content": format!("Write a Python function that adds two numbers. [{id}]")}],
                "max_tokens": 32,
                "temperature": 0,
                "stream": req.stream,
            }),
            Api::Completions => json!({
                "model": req.alias,
                "prompt": format!("# request {id}\ndef add(a, b):\n"),
                "max_tokens": 32,
                "temperature": 0,
                "stream": req.stream,
            }),
        }
    }

    /// Sends one request as a load run does: only when the first byte and each token
    /// event (an SSE chunk with content) arrived are kept; `gap` receives each
    /// inter-token gap.
    pub async fn send_timed(&self, req: &ProxyRequest<'_>, gap: &mut impl FnMut(Duration)) -> super::aigw::Timed {
        let sent = Instant::now();
        let response = self.request(req).send().await;
        let framing = |sse: bool| match req.stream {
            // A stream was asked for: anything but an event stream is refused.
            true => sse.then_some(Framing::Sse),
            false => Some(Framing::Whole(&parse)),
        };
        super::timed::receive(sent, response, framing, gap).await
    }

    /// The request as it goes out: method, path, headers and body.
    pub fn describe(&self, req: &ProxyRequest<'_>) -> super::Sent {
        let mut headers = vec![("X-Request-ID".to_owned(), req.correlation_id.to_owned())];
        let key = match (req.auth, &self.key) {
            (ClientAuth::Valid, Some(k)) => Some(k.as_str()),
            (ClientAuth::Valid, None) | (ClientAuth::Missing, _) => None,
            (ClientAuth::WrongToken, _) => Some(WRONG_KEY),
        };
        if let Some(k) = key {
            headers.push(("Authorization".into(), format!("Bearer {k}")));
        }
        super::Sent {
            method: "POST".into(),
            path: req.api.path().to_owned(),
            headers,
            body: Self::body(req),
        }
    }

    fn request(&self, req: &ProxyRequest<'_>) -> reqwest::RequestBuilder {
        let sent = self.describe(req);
        let url = format!("{}{}", self.base, sent.path);
        let mut b = self.client.post(url).timeout(self.timeout).json(&sent.body);
        for (k, v) in &sent.headers {
            b = b.header(k, v);
        }
        b
    }

    /// Sends one request and parses the reply.
    pub async fn send(&self, req: &ProxyRequest<'_>) -> Result<Reply, TransportError> {
        super::fetch(self.request(req), &self.watch, parse).await
    }
}

/// Fills `content`, `events` and `error` from an OpenAI-style reply.
pub fn parse(r: &mut Reply, bytes: &[u8]) {
    if !(200..300).contains(&r.status) {
        let msg = crate::wire::openai::error_message(&r.body).unwrap_or_else(|| crate::text::trunc(&r.body, 200));
        r.error = Some(format!("HTTP {}: {msg}", r.status));
        return;
    }
    let sse = r
        .content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("text/event-stream"));
    if !sse {
        match serde_json::from_str::<Value>(&r.body) {
            Ok(v) => {
                r.content = v
                    .pointer("/choices/0/message/content")
                    .or_else(|| v.pointer("/choices/0/text"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if let Some(e) = v.get("error") {
                    r.error = Some(format!("error body: {}", crate::text::trunc(&e.to_string(), 200)));
                }
            }
            Err(e) => super::not_json(r, &e),
        }
        return;
    }
    let (content, summary) = parse_sse(bytes);
    r.content = content;
    if let Some(e) = summary.errors.first() {
        r.error = Some(format!("error event: {e}"));
    }
    r.events = Some(summary);
}

/// Parses an OpenAI-style SSE body: content deltas (chat) or text (completions), the
/// finish reason, usage, in-band `{"error": ...}` events, and `[DONE]`.
pub fn parse_sse(bytes: &[u8]) -> (String, EventSummary) {
    let mut parser = sse::Parser::default();
    let mut events = Vec::new();
    parser.feed(bytes, &mut events);
    let anomalies = parser.finish();
    let mut s = EventSummary::default();
    let mut content = String::new();
    let malformed = |s: &mut EventSummary, what: String| {
        if s.malformed.len() < 5 {
            s.malformed.push(crate::text::trunc(&what, 120));
        }
    };
    for a in anomalies {
        malformed(&mut s, format!("framing: {a:?}"));
    }
    for ev in events {
        if s.done {
            malformed(&mut s, format!("data after [DONE]: {}", ev.data));
            continue;
        }
        if ev.data == "[DONE]" {
            s.done = true;
            continue;
        }
        s.events += 1;
        let v: Value = match serde_json::from_str(&ev.data) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                malformed(&mut s, ev.data);
                continue;
            }
        };
        if let Some(e) = v.get("error") {
            let msg = e
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| e.to_string(), str::to_owned);
            s.errors.push(msg);
            continue;
        }
        if let Some(t) = v
            .pointer("/choices/0/delta/content")
            .or_else(|| v.pointer("/choices/0/text"))
            .and_then(Value::as_str)
        {
            content.push_str(t);
        }
        if v.pointer("/choices/0/finish_reason").is_some_and(|f| !f.is_null()) {
            s.finished = true;
        }
        if v.get("usage").is_some_and(|u| !u.is_null()) {
            s.usage = true;
        }
    }
    (content, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_streams_are_summarised() {
        let body = b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"},\"finish_reason\":null}]}\n\n\
data: {\"choices\":[{\"delta\":{\"content\":\"b\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
        let (c, s) = parse_sse(body);
        assert_eq!(c, "ab");
        assert!(s.finished && s.done && s.malformed.is_empty() && s.errors.is_empty());
        let (_, s) = parse_sse(b"data: {\"error\": {\"message\": \"boom\"}}\n\n");
        assert_eq!(s.errors, vec!["boom".to_owned()]);
        assert!(!s.done);
        let (_, s) = parse_sse(b"data: {\"choices\": [\n\n");
        assert_eq!(s.malformed.len(), 1);
    }
}
