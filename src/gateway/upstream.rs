//! How the reference gateway resolves model metadata to an upstream call and talks to
//! an OpenAI-compatible backend, following the AI gateway's observed routing rules.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::State;
use super::fault::Fault;
use crate::identifier::{Identifier, Provider};
use crate::wire::endpoint::normalize as normalize_endpoint;
use crate::wire::sse;

/// Largest upstream body the gateway reads.
const MAX_UPSTREAM_BODY: usize = 8 * 1024 * 1024;

/// The model fields a request carries (`model_*` or `model_metadata`).
#[derive(Clone, Debug, Default)]
pub struct ModelMeta {
    /// Family (`model_name` / `name`).
    pub family: String,
    /// Endpoint URL.
    pub endpoint: String,
    /// API key, if any.
    pub api_key: Option<String>,
    /// Model identifier.
    pub identifier: String,
}

/// A resolved upstream call.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// Full URL of the chat completions endpoint.
    pub url: String,
    /// The credential and the header it goes in.
    pub auth: UpstreamAuth,
    /// Upstream `model` (Bedrock: the model id in the path).
    pub model: String,
    /// Wire format.
    pub wire: Wire,
    /// The key as configured (for the leak fault's error text).
    pub configured_key: Option<String>,
}

/// The wire format of the upstream call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// OpenAI chat completions (vLLM, Azure).
    OpenAi,
    /// Bedrock `invoke` with Mistral's prompt format.
    BedrockInvoke,
    /// Bedrock Converse.
    BedrockConverse,
}

/// How the upstream call authenticates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpstreamAuth {
    /// `Authorization: Bearer <key>` (OpenAI-compatible servers).
    Bearer(String),
    /// `api-key: <key>` (Azure OpenAI).
    ApiKey(String),
    /// SigV4 with the gateway's AWS credentials (Bedrock).
    SigV4,
}

/// Why no upstream call is made, or why it failed.
#[derive(Debug)]
pub enum UpstreamError {
    /// The identifier is empty.
    EmptyIdentifier,
    /// The identifier does not parse or names an unsupported provider.
    BadIdentifier(String),
    /// Connection-level failure.
    Transport(String),
    /// The upstream answered an error status.
    Status { status: u16, body: String },
}

/// The LiteLLM exception an upstream status becomes, as the AI gateway names it in
/// its errors.
fn exception_name(status: u16) -> &'static str {
    match status {
        400 => "BadRequestError",
        401 => "AuthenticationError",
        403 => "PermissionDeniedError",
        404 => "NotFoundError",
        408 => "Timeout",
        422 => "UnprocessableEntityError",
        429 => "RateLimitError",
        503 => "ServiceUnavailableError",
        500..=599 => "InternalServerError",
        _ => "APIError",
    }
}

impl UpstreamError {
    /// A message like the AI gateway's (a litellm exception text).
    pub fn message(&self) -> String {
        match self {
            UpstreamError::EmptyIdentifier => "model identifier is empty".into(),
            UpstreamError::BadIdentifier(e) => format!("bad model identifier: {e}"),
            UpstreamError::Transport(e) => format!("APIConnectionError: {e}"),
            UpstreamError::Status { status, body } => {
                let mut b: String = body.chars().take(300).collect();
                if b.len() < body.len() {
                    b.push('…');
                }
                format!("litellm.{}: Error code: {status} - {b}", exception_name(*status))
            }
        }
    }

    /// The upstream status, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            UpstreamError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl State {
    /// Applies the routing rules (and the active faults) to a request's model fields.
    pub fn resolve(&self, meta: &ModelMeta) -> Result<Upstream, UpstreamError> {
        let has = |f| self.settings.faults.contains(&f);
        if meta.identifier.trim().is_empty() && !has(Fault::RouteEmptyIdentifier) {
            return Err(UpstreamError::EmptyIdentifier);
        }
        let (model, provider) = match Identifier::parse(&meta.identifier) {
            Ok(id) => (id.model, id.provider),
            // Only the empty identifier is routed anyway: the fault breaks that rule alone.
            Err(_) if has(Fault::RouteEmptyIdentifier) && meta.identifier.trim().is_empty() => {
                (String::new(), Provider::CustomOpenai)
            }
            Err(e) => return Err(UpstreamError::BadIdentifier(e.to_string())),
        };
        if provider == Provider::Bedrock && self.settings.aws.is_none() {
            return Err(UpstreamError::BadIdentifier(
                "`bedrock/` needs AWS_BEDROCK_RUNTIME_ENDPOINT and credentials, and the gateway has none".into(),
            ));
        }
        let model = if has(Fault::WrongModelName) {
            meta.family.clone()
        } else if has(Fault::IgnoreIdentifierPrefix) {
            meta.identifier.clone()
        } else {
            model
        };
        let mut endpoint = meta.endpoint.clone();
        let mut key = meta.api_key.clone();
        {
            let mut sticky = self.sticky.lock().unwrap_or_else(|p| p.into_inner());
            if has(Fault::ReuseFirstEndpoint) {
                let cached = sticky
                    .by_family
                    .entry(meta.family.clone())
                    .or_insert_with(|| (endpoint.clone(), key.clone()));
                (endpoint, key) = cached.clone();
            }
            if key.is_some() {
                sticky.last_key.clone_from(&key);
            } else if has(Fault::SendForeignKey) {
                key.clone_from(&sticky.last_key);
            }
        }
        let base = if has(Fault::KeepTrailingSlash) {
            endpoint.as_str()
        } else {
            normalize_endpoint(&endpoint)
        };
        let base = if has(Fault::AppendV1) {
            format!("{}/v1", normalize_endpoint(base))
        } else {
            base.to_owned()
        };
        let key = if has(Fault::DropApiKey) {
            None
        } else if has(Fault::ForwardClientToken) {
            self.settings.token.clone()
        } else {
            key
        };
        if has(Fault::FakeUpstream404)
            && !matches!(provider, Provider::Bedrock | Provider::Azure)
            && !crate::wire::endpoint::has_v1_suffix(&endpoint)
        {
            // What vLLM would have answered, without asking it.
            return Err(UpstreamError::Status {
                status: 404,
                body: r#"{"detail":"Not Found"}"#.into(),
            });
        }
        let (url, auth) = match provider {
            Provider::Bedrock => {
                let url = self
                    .settings
                    .aws
                    .as_ref()
                    .map(|a| a.runtime_endpoint.clone())
                    .unwrap_or_default();
                (url, UpstreamAuth::SigV4)
            }
            Provider::Azure => {
                let version = if has(Fault::AzureDropApiVersion) {
                    String::new()
                } else {
                    format!("?api-version={}", crate::wire::azure::API_VERSION)
                };
                let url = format!("{base}/openai/deployments/{model}/chat/completions{version}");
                let key = key.unwrap_or_default();
                let auth = if has(Fault::AzureBearerInsteadOfApiKey) {
                    UpstreamAuth::Bearer(key)
                } else {
                    UpstreamAuth::ApiKey(key)
                };
                (url, auth)
            }
            _ => {
                let missing = if has(Fault::StringifyMissingKey) {
                    "None"
                } else {
                    "dummy_key"
                };
                (
                    format!("{base}/chat/completions"),
                    UpstreamAuth::Bearer(key.unwrap_or_else(|| missing.into())),
                )
            }
        };
        if provider != Provider::Bedrock && !self.settings.may_call(&url) {
            return Err(UpstreamError::Transport(format!(
                "{} is not one of the gateway's backends; it calls no other host (start it with --allow-any-upstream to call any)",
                origin(&url).unwrap_or_else(|| "the endpoint".into())
            )));
        }
        let invoke = crate::wire::bedrock::uses_invoke(&model) != has(Fault::BedrockWrongOperation);
        let wire = match provider {
            Provider::Bedrock if invoke => Wire::BedrockInvoke,
            Provider::Bedrock => Wire::BedrockConverse,
            _ => Wire::OpenAi,
        };
        Ok(Upstream {
            url,
            auth,
            model,
            wire,
            configured_key: meta.api_key.clone(),
        })
    }

    fn request(&self, up: &Upstream, messages: &[Value], max_tokens: u32, stream: bool) -> reqwest::RequestBuilder {
        if let (Wire::BedrockInvoke | Wire::BedrockConverse, Some(aws)) = (up.wire, &self.settings.aws) {
            return super::bedrock::request(self, aws, up, messages, max_tokens, stream);
        }
        let mut body = json!({"model": up.model, "messages": messages, "max_tokens": max_tokens,
                              "temperature": 0.1, "stream": stream});
        if stream {
            body["stream_options"] = json!({"include_usage": true});
        }
        let b = self
            .client
            .post(&up.url)
            .timeout(self.settings.upstream_timeout)
            .json(&body);
        match &up.auth {
            UpstreamAuth::Bearer(k) => b.bearer_auth(k),
            UpstreamAuth::ApiKey(k) => b.header("api-key", k),
            UpstreamAuth::SigV4 => b,
        }
    }

    /// A non-streaming chat completion; returns the content and the usage object.
    pub async fn complete(
        &self,
        up: &Upstream,
        messages: &[Value],
        max_tokens: u32,
    ) -> Result<(String, Value), UpstreamError> {
        let resp = self
            .request(up, messages, max_tokens, false)
            .send()
            .await
            .map_err(|e| UpstreamError::Transport(crate::text::error_chain(&e.without_url())))?;
        let status = resp.status().as_u16();
        let body = read_limited(resp).await?;
        if !(200..300).contains(&status) {
            return Err(UpstreamError::Status { status, body });
        }
        let v: Value = serde_json::from_str(&body)
            .map_err(|e| UpstreamError::Transport(format!("invalid JSON from upstream: {e}")))?;
        if up.wire != Wire::OpenAi {
            return Ok(super::bedrock::parse_reply(up.wire, &v));
        }
        let content = v
            .pointer("/choices/0/message/content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Ok((content, v.get("usage").cloned().unwrap_or(Value::Null)))
    }

    /// A streaming chat completion: returns once the upstream answered with a success
    /// status, then sends text deltas (and finally the usage) into `tx`.
    pub async fn stream(
        &self,
        up: &Upstream,
        messages: &[Value],
        max_tokens: u32,
    ) -> Result<mpsc::Receiver<Delta>, UpstreamError> {
        let resp = self
            .request(up, messages, max_tokens, true)
            .send()
            .await
            .map_err(|e| UpstreamError::Transport(crate::text::error_chain(&e.without_url())))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let body = read_limited(resp).await?;
            return Err(UpstreamError::Status { status, body });
        }
        let sse = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/event-stream"));
        if up.wire == Wire::OpenAi && !sse {
            // An empty or plain JSON 200 to a stream request is a broken upstream, not
            // an empty answer.
            let _ = read_limited(resp).await;
            return Err(UpstreamError::Transport(
                "upstream answered a stream request without an event stream".into(),
            ));
        }
        let (tx, rx) = mpsc::channel(64);
        let idle = self.settings.upstream_timeout;
        if up.wire == Wire::OpenAi {
            tokio::spawn(pump(resp, tx, idle));
        } else {
            tokio::spawn(super::bedrock::pump(resp, tx, idle));
        }
        Ok(rx)
    }
}

/// One piece of a streamed reply.
#[derive(Debug)]
pub enum Delta {
    /// Content text.
    Text(String),
    /// The usage chunk.
    Usage(Value),
    /// The stream broke.
    Error(String),
}

async fn pump(resp: reqwest::Response, tx: mpsc::Sender<Delta>, idle: Duration) {
    let mut body = resp.bytes_stream();
    let mut parser = sse::Parser::default();
    let mut events = Vec::new();
    loop {
        let next = match tokio::time::timeout(idle, body.next()).await {
            Ok(n) => n,
            Err(_) => {
                let _ = tx.send(Delta::Error("upstream stream timed out".into())).await;
                return;
            }
        };
        let chunk = match next {
            None => break,
            Some(Ok(c)) => c,
            Some(Err(e)) => {
                let _ = tx
                    .send(Delta::Error(format!(
                        "APIConnectionError: upstream stream broke: {}",
                        e.without_url()
                    )))
                    .await;
                return;
            }
        };
        parser.feed(&chunk, &mut events);
        for ev in events.drain(..) {
            if ev.data == "[DONE]" {
                return;
            }
            let Ok(v) = serde_json::from_str::<Value>(&ev.data) else {
                let _ = tx
                    .send(Delta::Error(
                        "APIConnectionError: upstream sent a malformed event".into(),
                    ))
                    .await;
                return;
            };
            if let Some(err) = v.get("error") {
                let _ = tx.send(Delta::Error(format!("upstream error: {err}"))).await;
                return;
            }
            if let Some(t) = v.pointer("/choices/0/delta/content").and_then(Value::as_str)
                && !t.is_empty()
                && tx.send(Delta::Text(t.to_owned())).await.is_err()
            {
                return;
            }
            if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
                let _ = tx.send(Delta::Usage(u.clone())).await;
            }
        }
    }
}

async fn read_limited(resp: reqwest::Response) -> Result<String, UpstreamError> {
    let mut body = resp.bytes_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| UpstreamError::Transport(crate::text::error_chain(&e.without_url())))?;
        if buf.len() + chunk.len() > MAX_UPSTREAM_BODY {
            return Err(UpstreamError::Transport("upstream body too large".into()));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The scheme, host and port of a URL (`http://127.0.0.1:8000`), or `None` when it is
/// not one.
pub(super) fn origin(url: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    u.has_host().then(|| u.origin().ascii_serialization())
}
