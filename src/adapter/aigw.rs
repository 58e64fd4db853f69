//! The `aigw` adapter: gateprobe plays the GitLab instance and sends each feature's
//! request to the AI gateway API exactly as the instance would: the shapes of the
//! scenario's instance version come from [`crate::instance`]; replies are read the way
//! the instance reads them.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::timed::Framing;
use super::{ClientAuth, EventSummary, ModelFields, Reply, TransportError};
use crate::feature::Feature;
use crate::instance::{Shapes, Surface};
use crate::wire::prompt::Prompt;

/// A client of one AI gateway.
#[derive(Clone, Debug)]
pub struct AigwClient {
    base: String,
    client: reqwest::Client,
    token: Option<String>,
    headers: Vec<(String, String)>,
    timeout: Duration,
    shapes: Shapes,
    tls: super::Tls,
    /// The upstream credentials no reply may hold (see [`super::fetch`]).
    watch: crate::redact::Redactor,
}

/// One feature request.
#[derive(Clone, Debug)]
pub struct FeatureRequest<'a> {
    /// The feature.
    pub feature: &'a Feature,
    /// Model fields, or `None` to send none (not used by the instance today).
    pub model: &'a ModelFields,
    /// Ask for a streamed reply where the endpoint offers one.
    pub stream: bool,
    /// Which credentials to present.
    pub auth: ClientAuth,
    /// Correlation id planted in the prompt and `X-Request-ID`.
    pub correlation_id: &'a str,
}

impl FeatureRequest<'_> {
    /// The gateway call this request is, in the instance version's shapes.
    pub fn call(&self, shapes: Shapes) -> crate::instance::Call {
        crate::instance::call(shapes, self.feature, self.model, self.stream, self.correlation_id)
    }
}

impl AigwClient {
    /// A client of the gateway at `base` (no trailing slash needed), sending the
    /// requests of an instance with the given shapes. Every request goes out on a new
    /// connection, as the instance's HTTP client does: a gateway that closes a
    /// kept-alive connection after an error (uvicorn after a bare 500) cannot make the
    /// next probe fail, and no request is ever sent twice. [`AigwClient::pooled`] gives
    /// the client load phases use.
    pub fn new(
        base: &str,
        token: Option<String>,
        headers: Vec<(String, String)>,
        timeout: Duration,
        tls: &super::Tls,
        shapes: Shapes,
    ) -> reqwest::Result<Self> {
        let client = super::http_client(timeout, tls, false)?;
        Ok(AigwClient {
            base: base.trim_end_matches('/').to_owned(),
            client,
            token,
            headers,
            timeout,
            shapes,
            tls: tls.clone(),
            watch: crate::redact::Redactor::default(),
        })
    }

    /// The same client, searching every reply for these credentials.
    pub fn watching(self, watch: crate::redact::Redactor) -> Self {
        AigwClient { watch, ..self }
    }

    /// The same client with connection reuse, for load phases: a new connection per
    /// request would measure connection set-up and, at high rates, run out of ports.
    pub fn pooled(&self) -> reqwest::Result<Self> {
        Ok(AigwClient {
            client: super::http_client(self.timeout, &self.tls, true)?,
            ..self.clone()
        })
    }

    /// The request shapes it sends.
    pub fn shapes(&self) -> Shapes {
        self.shapes
    }

    /// Sends one feature request and parses the reply.
    pub async fn send(&self, req: &FeatureRequest<'_>) -> Result<Reply, TransportError> {
        let call = req.call(self.shapes);
        let surface = call.surface;
        super::fetch(self.request(req, call), &self.watch, |r, _| parse(surface, r)).await
    }

    /// Sends one feature request as a load run does: the body is not kept, only when
    /// its first byte and each token event arrived. `gap` receives each inter-token gap.
    /// With `prompt`, the request carries a workload's prompt (see [`fill`]).
    pub async fn send_timed(
        &self,
        req: &FeatureRequest<'_>,
        prompt: Option<&Prompt>,
        gap: &mut impl FnMut(Duration),
    ) -> Timed {
        let mut call = req.call(self.shapes);
        if let Some(p) = prompt {
            fill(&mut call, p, req.correlation_id);
        }
        let surface = call.surface;
        let sent = Instant::now();
        let response = self.request(req, call).send().await;
        let whole = move |r: &mut Reply, _: &[u8]| parse(surface, r);
        let framing = |sse| {
            Some(if surface == Surface::ChatAgent {
                Framing::Ndjson
            } else if sse {
                // Code suggestions streamed: raw text chunks.
                Framing::Chunks
            } else {
                Framing::Whole(&whole)
            })
        };
        super::timed::receive(sent, response, framing, gap).await
    }

    /// The request as it goes out: method, path, headers and body.
    pub fn describe(&self, req: &FeatureRequest<'_>) -> super::Sent {
        let call = req.call(self.shapes);
        self.sent(req, call)
    }

    fn sent(&self, req: &FeatureRequest<'_>, call: crate::instance::Call) -> super::Sent {
        let mut headers: Vec<(String, String)> = crate::instance::headers(self.shapes)
            .into_iter()
            .filter(|(k, _)| !self.headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(k)))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        headers.extend(self.headers.iter().cloned());
        headers.push(("X-Request-ID".into(), req.correlation_id.to_owned()));
        let token = match (req.auth, &self.token) {
            (ClientAuth::Valid, Some(t)) => Some(t.as_str()),
            // Without a configured token, present a placeholder: a gateway that checks
            // tokens will say so in the auth checks; one that bypasses auth serves it.
            (ClientAuth::Valid, None) => Some(PLACEHOLDER_TOKEN),
            (ClientAuth::Missing, _) => None,
            (ClientAuth::WrongToken, _) => Some("gateprobe-wrong-token"),
        };
        if let Some(t) = token {
            headers.push(("Authorization".into(), format!("Bearer {t}")));
        }
        super::Sent {
            method: "POST".into(),
            path: call.path,
            headers,
            body: call.body,
        }
    }

    fn request(&self, req: &FeatureRequest<'_>, call: crate::instance::Call) -> reqwest::RequestBuilder {
        let sent = self.sent(req, call);
        let url = format!("{}{}", self.base, sent.path);
        let mut b = self.client.post(url).timeout(self.timeout).json(&sent.body);
        for (k, v) in &sent.headers {
            b = b.header(k, v);
        }
        b
    }
}

pub use super::timed::Timed;

/// Puts a workload's prompt where the instance's request carries the user's text and
/// code: the file around the cursor for code suggestions (and the instruction of a
/// generation), the chat history and question for Duo Chat, and the prompt input that
/// holds the correlation id for the other prompts. Instructions are not sent: the
/// gateway's own prompt template adds them.
pub fn fill(call: &mut crate::instance::Call, p: &Prompt, marker: &str) {
    use serde_json::json;
    let b = &mut call.body;
    if b.get("current_file").is_some() {
        b["current_file"]["content_above_cursor"] = json!(p.above);
        b["current_file"]["content_below_cursor"] = json!(p.below);
        if b.get("prompt").is_some_and(|x| !x.is_null()) {
            b["prompt"] = json!(p.user);
        }
    } else if let Some(payload) = b.pointer_mut("/prompt_components/0/payload") {
        for (k, v) in [("content_above_cursor", &p.above), ("content_below_cursor", &p.below)] {
            payload[k] = json!(v);
            payload["prompt_enhancer"][format!("trimmed_{k}")] = json!(v);
        }
        payload["prompt_enhancer"]["user_instruction"] = json!(p.user);
    } else if b.get("messages").is_some() {
        let mut messages: Vec<Value> = p
            .history
            .iter()
            .map(|(role, text)| {
                json!({"role": role.name(), "content": text, "context": null, "current_file": null,
                       "additional_context": []})
            })
            .collect();
        messages.push(json!({"role": "user", "content": p.user_turn(), "context": null,
                             "current_file": null, "additional_context": []}));
        b["messages"] = Value::Array(messages);
    } else if let Some(Value::Object(inputs)) = b.get_mut("inputs") {
        let key = inputs
            .iter()
            .find(|(_, v)| v.as_str().is_some_and(|s| s.contains(marker)))
            .map(|(k, _)| k.clone());
        if let Some(k) = key {
            inputs.insert(k, json!(p.user_turn()));
        }
    }
}

/// The bearer token presented when the scenario configures none.
pub const PLACEHOLDER_TOKEN: &str = "gateprobe-instance-token";

/// Fills `content`, `events` and `error` from the raw reply to a call of `surface`.
pub fn parse(surface: Surface, r: &mut Reply) {
    let is_stream = r
        .content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("text/event-stream"));
    let is_ndjson = r
        .content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("application/x-ndjson"));
    if !(200..300).contains(&r.status) {
        r.error = Some(format!("HTTP {}: {}", r.status, crate::text::trunc(&r.body, 200)));
        return;
    }
    if surface == Surface::ChatAgent || is_ndjson {
        let (content, summary) = parse_ndjson(&r.body);
        r.content = content;
        if let Some(e) = summary.errors.first() {
            r.error = Some(format!("error event: {e}"));
        } else if summary.events == 0
            && let Some(first) = summary.malformed.first()
        {
            r.broken = true;
            let ct = r.content_type.as_deref().unwrap_or("none");
            r.error = Some(format!(
                "reply is not ndjson events (Content-Type `{}`); first line: {}",
                crate::text::trunc(ct, 60),
                crate::text::trunc(first, 80)
            ));
        }
        r.events = Some(summary);
        return;
    }
    if is_stream {
        // Code suggestions and prompts stream raw text chunks without SSE framing.
        r.content = r.body.clone();
        return;
    }
    match serde_json::from_str::<Value>(&r.body) {
        Ok(Value::String(s)) => r.content = s,
        Ok(v) => {
            r.content = v
                .pointer("/choices/0/text")
                .or_else(|| v.get("content"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
        }
        Err(e) => super::not_json(r, &e),
    }
}

/// Parses the chat agent's ndjson events into the answer the GitLab instance shows:
/// the text of its `final_answer_delta` events, or, when there are none, the text of
/// its `unknown` events (a reply the agent could not parse as an answer or a tool call,
/// which the instance shows as the final answer).
pub fn parse_ndjson(body: &str) -> (String, EventSummary) {
    let mut s = EventSummary::default();
    let mut answer = String::new();
    let mut unknown = String::new();
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        let ev: Value = match serde_json::from_str(line) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                if s.malformed.len() < 5 {
                    s.malformed.push(crate::text::trunc(line, 120));
                }
                continue;
            }
        };
        s.events += 1;
        let kind = ev.get("type").and_then(Value::as_str);
        if let Some(k) = kind {
            s.saw(k);
        }
        let text = || ev.pointer("/data/text").and_then(Value::as_str).unwrap_or_default();
        match kind {
            Some("final_answer_delta") => {
                answer.push_str(text());
                if ev.pointer("/data/finish_reason").is_some_and(|f| !f.is_null()) {
                    s.finished = true;
                }
            }
            Some("unknown") => {
                unknown.push_str(text());
                s.finished = true;
            }
            // The first few, each cut: a stream of error events stays small.
            Some("error") if s.errors.len() < 16 => s.errors.push(crate::text::trunc(
                ev.pointer("/data/message")
                    .and_then(Value::as_str)
                    .unwrap_or("error event without message"),
                500,
            )),
            Some("error") => {}
            Some("usage") => s.usage = true,
            Some("action") => {}
            _ => {
                if s.malformed.len() < 5 {
                    s.malformed.push(crate::text::trunc(line, 120));
                }
            }
        }
    }
    (if answer.is_empty() { unknown } else { answer }, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_events_are_summarised() {
        let body = "{\"type\":\"final_answer_delta\",\"data\":{\"text\":\"a\"}}\n{\"type\":\"final_answer_delta\",\"data\":{\"text\":\"b\",\"finish_reason\":\"stop\"}}\n{\"type\":\"usage\",\"data\":{}}\n";
        let (c, s) = parse_ndjson(body);
        assert_eq!(c, "ab");
        assert!(s.usage && s.finished && s.malformed.is_empty());
        let (_, s) = parse_ndjson("{\"type\":\"final_answer_delta\",\"data\":{\"text\":\n");
        assert_eq!(s.malformed.len(), 1);
    }

    #[test]
    fn an_unknown_event_is_the_answer_the_instance_shows() {
        // The chat agent could not parse the model's text as a ReAct answer: the
        // instance shows the `unknown` event's text as the final answer.
        let body = "{\"type\": \"unknown\", \"data\": {\"text\": \"It adds.\"}}\n{\"type\": \"usage\", \"data\": {}}\n";
        let (c, s) = parse_ndjson(body);
        assert_eq!(c, "It adds.");
        assert!(s.finished && s.malformed.is_empty());
        assert_eq!(s.types, ["unknown", "usage"]);
        // Deltas of a final answer win over an unknown event.
        let body = "{\"type\":\"unknown\",\"data\":{\"text\":\"x\"}}\n{\"type\":\"final_answer_delta\",\"data\":{\"text\":\"y\"}}\n";
        assert_eq!(parse_ndjson(body).0, "y");
    }
}
