//! The `aigw` adapter: gateprobe plays the GitLab instance and sends each feature's
//! request to the AI gateway API exactly as the instance would.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::timed::Framing;
use super::{ClientAuth, EventSummary, ModelFields, Reply, TransportError};
use crate::feature::{Endpoint, Feature};

/// A client of one AI gateway.
#[derive(Clone, Debug)]
pub struct AigwClient {
    base: String,
    client: reqwest::Client,
    token: Option<String>,
    headers: Vec<(String, String)>,
    timeout: Duration,
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

impl AigwClient {
    /// A client of the gateway at `base` (no trailing slash needed).
    pub fn new(
        base: &str,
        token: Option<String>,
        headers: Vec<(String, String)>,
        timeout: Duration,
        tls: &super::Tls,
    ) -> reqwest::Result<Self> {
        let client = super::http_client(timeout, tls)?;
        Ok(AigwClient {
            base: base.trim_end_matches('/').to_owned(),
            client,
            token,
            headers,
            timeout,
        })
    }

    /// The path a feature's request goes to.
    pub fn path(feature: &Feature) -> String {
        match feature.endpoint {
            Endpoint::CodeCompletions => "/v2/code/completions".into(),
            Endpoint::CodeGenerations => "/v2/code/generations".into(),
            Endpoint::ChatAgent => "/v2/chat/agent".into(),
            Endpoint::Prompt => format!("/v1/prompts/{}", feature.prompt_id.unwrap_or(feature.name)),
        }
    }

    /// The JSON body the instance sends for a feature.
    pub fn body(req: &FeatureRequest<'_>) -> Value {
        let m = req.model;
        let id = req.correlation_id;
        let code_base = || {
            json!({
                "current_file": {"file_name": "main.py", "language_identifier": "python",
                                 "content_above_cursor": format!("# request {id}\ndef add(a, b):\n"),
                                 "content_below_cursor": ""},
                "model_provider": "litellm", "prompt_version": 2, "prompt": null,
                "model_endpoint": m.endpoint, "model_name": m.family,
                "model_api_key": m.api_key.clone().unwrap_or_default(),
                "model_identifier": m.identifier, "stream": req.stream,
                "telemetry": [], "context": []
            })
        };
        let metadata = json!({"provider": if m.identifier.starts_with("bedrock/") { "bedrock" } else { "api" }, "name": m.family, "endpoint": m.endpoint,
                              "api_key": m.api_key.clone().unwrap_or_default(), "identifier": m.identifier});
        match req.feature.endpoint {
            Endpoint::CodeCompletions => code_base(),
            Endpoint::CodeGenerations => {
                let mut b = code_base();
                b["prompt_id"] = json!("code_suggestions/generations");
                b["prompt"] = json!(format!("Write a function that adds two numbers. [{id}]"));
                b
            }
            Endpoint::ChatAgent => json!({
                "messages": [{"role": "user", "content": format!("What does this code do? [{id}]"),
                              "context": null, "current_file": null, "additional_context": []}],
                "options": null,
                "model_metadata": metadata,
            }),
            Endpoint::Prompt => json!({
                "inputs": {"content": format!("def add(a, b): return a + b  # [{id}]"),
                           "language": "python", "file_name": "main.py"},
                "prompt_version": "^1.0.0",
                "stream": req.stream,
                "model_metadata": metadata,
            }),
        }
    }

    /// Sends one feature request and parses the reply.
    pub async fn send(&self, req: &FeatureRequest<'_>) -> Result<Reply, TransportError> {
        super::fetch(self.request(req), |r, _| parse(req.feature.endpoint, r)).await
    }

    /// Sends one feature request as a load run does: the body is not kept, only when
    /// its first byte and each token event arrived. `gap` receives each inter-token gap.
    pub async fn send_timed(&self, req: &FeatureRequest<'_>, gap: &mut impl FnMut(Duration)) -> Timed {
        let sent = Instant::now();
        let response = self.request(req).send().await;
        let endpoint = req.feature.endpoint;
        let whole = move |r: &mut Reply, _: &[u8]| parse(endpoint, r);
        let framing = |sse| {
            Some(if endpoint == Endpoint::ChatAgent {
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

    fn request(&self, req: &FeatureRequest<'_>) -> reqwest::RequestBuilder {
        let url = format!("{}{}", self.base, Self::path(req.feature));
        let mut b = self.client.post(url).timeout(self.timeout).json(&Self::body(req));
        for (k, v) in default_headers() {
            if !self.headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(k)) {
                b = b.header(k, v);
            }
        }
        for (k, v) in &self.headers {
            b = b.header(k, v);
        }
        b = b.header("X-Request-ID", req.correlation_id);
        b = match (req.auth, &self.token) {
            (ClientAuth::Valid, Some(t)) => b.bearer_auth(t),
            // Without a configured token, present a placeholder: a gateway that checks
            // tokens will say so in the auth checks; one that bypasses auth serves it.
            (ClientAuth::Valid, None) => b.bearer_auth(PLACEHOLDER_TOKEN),
            (ClientAuth::Missing, _) => b,
            (ClientAuth::WrongToken, _) => b.bearer_auth("gateprobe-wrong-token"),
        };
        b
    }
}

pub use super::timed::Timed;

/// The bearer token presented when the scenario configures none.
pub const PLACEHOLDER_TOKEN: &str = "gateprobe-instance-token";

/// Headers the instance always sends.
fn default_headers() -> [(&'static str, &'static str); 6] {
    [
        ("X-Gitlab-Authentication-Type", "oidc"),
        ("X-Gitlab-Instance-Id", "gateprobe-instance"),
        ("X-Gitlab-Global-User-Id", "gateprobe-user"),
        ("X-Gitlab-Realm", "self-managed"),
        ("X-Gitlab-Host-Name", "gitlab.example.test"),
        ("X-Gitlab-Version", "18.6.0"),
    ]
}

/// Fills `content`, `events` and `error` from the raw reply.
pub fn parse(endpoint: Endpoint, r: &mut Reply) {
    let is_stream = r
        .content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("text/event-stream"));
    let is_ndjson = r
        .content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("application/x-ndjson"));
    if !(200..300).contains(&r.status) {
        r.error = Some(format!("HTTP {}: {}", r.status, crate::check::trunc(&r.body, 200)));
        return;
    }
    if endpoint == Endpoint::ChatAgent || is_ndjson {
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
                crate::check::trunc(ct, 60),
                crate::check::trunc(first, 80)
            ));
        }
        r.events = Some(summary);
        return;
    }
    if is_stream {
        // Code suggestions stream raw text chunks without SSE framing.
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

/// Parses the chat agent's ndjson events.
pub fn parse_ndjson(body: &str) -> (String, EventSummary) {
    let mut s = EventSummary::default();
    let mut content = String::new();
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        let ev: Value = match serde_json::from_str(line) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                if s.malformed.len() < 5 {
                    s.malformed.push(crate::check::trunc(line, 120));
                }
                continue;
            }
        };
        s.events += 1;
        match ev.get("type").and_then(Value::as_str) {
            Some("final_answer_delta") => {
                content.push_str(ev.pointer("/data/text").and_then(Value::as_str).unwrap_or_default());
                if ev.pointer("/data/finish_reason").is_some_and(|f| !f.is_null()) {
                    s.finished = true;
                }
            }
            // The first few, each cut: a stream of error events stays small.
            Some("error") if s.errors.len() < 16 => s.errors.push(crate::check::trunc(
                ev.pointer("/data/message")
                    .and_then(Value::as_str)
                    .unwrap_or("error event without message"),
                500,
            )),
            Some("error") => {}
            Some("usage") => s.usage = true,
            Some("action" | "unknown") => {}
            _ => {
                if s.malformed.len() < 5 {
                    s.malformed.push(crate::check::trunc(line, 120));
                }
            }
        }
    }
    (content, s)
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
}
