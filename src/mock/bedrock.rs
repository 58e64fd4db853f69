//! An AWS Bedrock runtime mock: `/model/{id}/invoke`, `/invoke-with-response-stream`,
//! `/converse` and `/converse-stream`, with SigV4 verification against the backend's
//! credentials (or an API key as Bearer), Mistral and Anthropic invoke bodies, Converse
//! bodies, streams in the AWS event-stream framing, and Bedrock's error types.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use serde_json::{Value, json};

use super::behavior::{Admission, Behavior, Codec, final_answer, paced_body, reply_tokens};
use super::journal::{Entry, Journal};
use crate::scenario::BackendConfig;
use crate::scenario::behavior::FaultAction;
use crate::wire::aws::{eventstream, sigv4};
use crate::wire::bedrock::base_model;

const MAX_REQUEST: usize = 4 * 1024 * 1024;

/// One Bedrock runtime mock.
#[derive(Debug)]
pub struct BedrockMock {
    name: String,
    models: Vec<String>,
    /// Models served only through an inference profile.
    profile_only: Vec<String>,
    /// Verified with their session token, when they have one.
    credentials: sigv4::Credentials,
    region: String,
    api_key: Option<String>,
    journal: Arc<Journal>,
    behavior: Behavior,
    ids: AtomicU64,
}

/// The four runtime operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Invoke,
    InvokeStream,
    Converse,
    ConverseStream,
}

impl BedrockMock {
    /// A mock for a scenario backend (`provider: bedrock`).
    pub fn new(cfg: &BackendConfig, journal: Arc<Journal>) -> Arc<Self> {
        let aws = cfg.aws.clone().unwrap_or_else(|| crate::scenario::AwsConfig {
            access_key_id: String::new(),
            secret_access_key: String::new(),
            region: "us-east-1".into(),
            session_token: None,
        });
        Arc::new(BedrockMock {
            name: cfg.name.clone(),
            models: cfg.models.clone(),
            profile_only: cfg.profile_only.clone(),
            credentials: aws.credentials(),
            region: aws.region,
            api_key: cfg.api_key.clone(),
            journal,
            behavior: Behavior::new(cfg.timing.clone(), cfg.faults.clone()),
            ids: AtomicU64::new(1),
        })
    }

    /// The axum router serving this mock.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().fallback(handle).with_state(Arc::clone(self))
    }

    fn enabled(&self, id: &str) -> bool {
        serves(&self.models, id)
    }
}

pub use crate::wire::bedrock::serves;

async fn handle(State(mock): State<Arc<BedrockMock>>, req: Request) -> Response {
    let received = Instant::now();
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_REQUEST).await.unwrap_or_default();
    let entry = Entry::from_request(&mock.name, &parts, &bytes, mock.journal.is_light());
    let arrival = mock.journal.arrived(&entry, received);
    let response = route(&mock, &parts.method, &entry, &parts.headers, &bytes, received).await;
    mock.journal.answered(arrival, entry, &response, received);
    response
}

async fn route(
    mock: &BedrockMock,
    method: &Method,
    entry: &Entry,
    headers: &HeaderMap,
    body: &Bytes,
    arrival: Instant,
) -> Response {
    let path = entry.path.as_str();
    let Some(rest) = path.strip_prefix("/model/") else {
        return error(StatusCode::NOT_FOUND, "UnknownOperationException", "Unknown operation");
    };
    let Some((raw_id, op)) = rest.rsplit_once('/') else {
        return error(StatusCode::NOT_FOUND, "UnknownOperationException", "Unknown operation");
    };
    let op = match op {
        "invoke" => Op::Invoke,
        "invoke-with-response-stream" => Op::InvokeStream,
        "converse" => Op::Converse,
        "converse-stream" => Op::ConverseStream,
        _ => return error(StatusCode::NOT_FOUND, "UnknownOperationException", "Unknown operation"),
    };
    if method != Method::POST {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UnknownOperationException",
            "Unknown operation",
        );
    }
    if let Err(r) = authenticate(mock, entry, headers, body) {
        return r;
    }
    // Routing uses the decoded id; the signature was checked on the raw path.
    let id = crate::wire::bedrock::decode_id(raw_id);
    if !mock.enabled(&id) {
        return error(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
        );
    }
    if crate::wire::bedrock::needs_profile(&mock.profile_only, &id) {
        return error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            &crate::wire::bedrock::on_demand_unsupported(&id),
        );
    }
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "Malformed input request, please reformat your input and try again.",
        );
    };
    let react = super::behavior::asks_for_final_answer(body);
    serve(mock, op, &id, &req, react, arrival).await
}

fn authenticate(mock: &BedrockMock, entry: &Entry, headers: &HeaderMap, body: &[u8]) -> Result<(), Response> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let (Some(key), Some(bearer)) = (&mock.api_key, auth.strip_prefix("Bearer ")) {
        return if crate::wire::secret_eq(bearer.as_bytes(), key.as_bytes()) {
            Ok(())
        } else {
            Err(error(
                StatusCode::FORBIDDEN,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ))
        };
    }
    // From the request itself: the journal keeps no headers in load mode.
    let values: Vec<(&str, std::borrow::Cow<'_, str>)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), String::from_utf8_lossy(v.as_bytes())))
        .collect();
    let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_ref())).collect();
    let parts = sigv4::RequestParts {
        method: "POST",
        raw_path: &entry.path,
        raw_query: entry.query.as_deref().unwrap_or(""),
        headers: &pairs,
        body,
    };
    sigv4::verify(
        &parts,
        &mock.credentials,
        &mock.region,
        SystemTime::now(),
        sigv4::DEFAULT_MAX_SKEW,
    )
    .map_err(|e| {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::FORBIDDEN);
        let mut r = super::journal::with_reason(json_response(status, e.body_json()), &e.to_string());
        if let Ok(v) = header::HeaderValue::from_str(&e.x_amzn_error_type()) {
            r.headers_mut().insert("x-amzn-errortype", v);
        }
        r
    })
}

/// Serves one operation; `react` when the prompt asks for a ReAct final answer.
async fn serve(mock: &BedrockMock, op: Op, id: &str, req: &Value, react: bool, arrival: Instant) -> Response {
    let mistral = base_model(id).starts_with("mistral.");
    let anthropic = base_model(id).starts_with("anthropic.");
    let counter = mock.behavior.counter();
    let (prompt_tokens, max_tokens) = match op {
        Op::Invoke | Op::InvokeStream if mistral || !anthropic => {
            let Some(p) = req.get("prompt").and_then(Value::as_str) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "ValidationException",
                    "Malformed input request: #: required key [prompt] not found, please reformat your input and try again.",
                );
            };
            (counter.count(p), req.get("max_tokens").and_then(Value::as_u64))
        }
        Op::Invoke | Op::InvokeStream => {
            let Some(m) = req.get("messages").and_then(Value::as_array) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "ValidationException",
                    "Malformed input request: #: required key [messages] not found, please reformat your input and try again.",
                );
            };
            (
                m.iter()
                    .map(|x| super::prompt::text_tokens(counter, x.get("content")))
                    .sum(),
                req.get("max_tokens").and_then(Value::as_u64),
            )
        }
        Op::Converse | Op::ConverseStream => {
            let Some(m) = req.get("messages").and_then(Value::as_array).filter(|m| !m.is_empty()) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "ValidationException",
                    "The messages field is required.",
                );
            };
            (
                m.iter()
                    .map(|x| super::prompt::text_tokens(counter, x.get("content")))
                    .sum::<u64>()
                    + super::prompt::text_tokens(counter, req.get("system")),
                req.pointer("/inferenceConfig/maxTokens").and_then(Value::as_u64),
            )
        }
    };
    let ask = super::behavior::Ask {
        max_tokens,
        prompt_tokens,
        ..super::behavior::Ask::default()
    };
    let adm = mock.behavior.admit_ask(id, ask, arrival).await;
    match &adm.fault {
        Some(FaultAction::Error { status, retry_after }) => {
            adm.wait_first().await;
            return scripted_error(*status, *retry_after);
        }
        Some(FaultAction::Empty200) => {
            adm.wait_first().await;
            return Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::empty())
                .unwrap_or_default();
        }
        _ => {}
    }
    // A reply that used up `max_tokens` was cut there, and says so in each wire's words.
    let truncated = max_tokens.is_some_and(|m| m as usize <= adm.tokens());
    let mut tokens = reply_tokens(&mock.name, id, adm.tokens());
    if react {
        tokens = final_answer(tokens);
    }
    let n = mock.ids.fetch_add(1, Ordering::Relaxed);
    let usage = (prompt_tokens as usize, tokens.len());
    let streaming = matches!(op, Op::InvokeStream | Op::ConverseStream) && adm.fault != Some(FaultAction::NonSse);
    if streaming {
        let codec = EventCodec {
            op,
            mistral: mistral || !anthropic,
            usage,
            started: Instant::now(),
            truncated,
            message_id: format!("msg_bdrk_{n:016x}"),
            model: id.to_owned(),
        };
        let first = super::journal::FirstToken(adm.first_token_out().into_std());
        let mut r = Response::builder()
            .header(header::CONTENT_TYPE, "application/vnd.amazon.eventstream")
            .header("x-amzn-bedrock-content-type", "application/json")
            .body(paced_body(adm, tokens, codec))
            .unwrap_or_default();
        r.extensions_mut().insert(first);
        return r;
    }
    let text: String = tokens.concat();
    let body = match op {
        Op::Converse | Op::ConverseStream => json!({
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": stop_reason(truncated, Wire::Converse),
            "usage": {"inputTokens": usage.0, "outputTokens": usage.1, "totalTokens": usage.0 + usage.1},
            "metrics": {"latencyMs": 1}
        }),
        _ if mistral || !anthropic => {
            json!({"outputs": [{"text": text, "stop_reason": stop_reason(truncated, Wire::Mistral)}]})
        }
        _ => json!({"id": format!("msg_bdrk_{n:016x}"), "type": "message", "role": "assistant", "model": id,
                     "content": [{"type": "text", "text": text}], "stop_reason": stop_reason(truncated, Wire::Anthropic), "stop_sequence": null,
                     "usage": {"input_tokens": usage.0, "output_tokens": usage.1}}),
    };
    let first = super::journal::FirstToken(adm.whole_out().into_std());
    let mut r = whole(adm, body.to_string()).await;
    r.extensions_mut().insert(first);
    r
}

async fn whole(adm: Admission, full: String) -> Response {
    adm.wait_full().await;
    let half = super::behavior::first_half(&full);
    let full = Bytes::from(full);
    if let Some(FaultAction::Cut { .. }) = adm.fault {
        return super::behavior::cut_reply(half);
    }
    let body = match adm.fault {
        Some(FaultAction::MalformedJson) => half,
        _ => full,
    };
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap_or_default()
}

/// The body formats a Bedrock reply comes in.
#[derive(Clone, Copy)]
enum Wire {
    Converse,
    Mistral,
    Anthropic,
}

/// Why generation stopped: the end of the answer, or `max_tokens`, in each wire's words.
fn stop_reason(truncated: bool, wire: Wire) -> &'static str {
    match (wire, truncated) {
        (Wire::Converse, false) | (Wire::Anthropic, false) => "end_turn",
        (Wire::Converse, true) | (Wire::Anthropic, true) => "max_tokens",
        (Wire::Mistral, false) => "stop",
        (Wire::Mistral, true) => "length",
    }
}

/// Bedrock's stream framing: `chunk` events for invoke, Converse events otherwise.
/// An Anthropic invoke stream carries the Messages API's whole event sequence
/// (`message_start`, `content_block_start`, deltas, `content_block_stop`,
/// `message_delta` with the stop reason and usage, `message_stop`), as the Anthropic
/// SDK's `messages.stream()` needs it.
struct EventCodec {
    op: Op,
    mistral: bool,
    usage: (usize, usize),
    started: Instant,
    truncated: bool,
    message_id: String,
    model: String,
}

fn frame(event_type: &str, payload: &Value) -> Bytes {
    let msg = eventstream::event(event_type, payload.to_string().into_bytes());
    Bytes::from(eventstream::encode(&msg).unwrap_or_default())
}

impl EventCodec {
    fn chunk(&self, inner: &Value) -> Bytes {
        let b64 = base64::engine::general_purpose::STANDARD.encode(inner.to_string());
        frame("chunk", &json!({"bytes": b64}))
    }
}

impl Codec for EventCodec {
    fn head(&mut self) -> Vec<Bytes> {
        match self.op {
            Op::ConverseStream => vec![frame("messageStart", &json!({"role": "assistant"}))],
            _ if !self.mistral => vec![
                self.chunk(&json!({"type": "message_start", "message": {
                    "id": self.message_id, "type": "message", "role": "assistant", "model": self.model,
                    "content": [], "stop_reason": null, "stop_sequence": null,
                    "usage": {"input_tokens": self.usage.0, "output_tokens": 1}}})),
                self.chunk(&json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "text", "text": ""}})),
            ],
            _ => Vec::new(),
        }
    }

    fn token(&mut self, text: &str, last: bool) -> Bytes {
        match self.op {
            Op::ConverseStream => frame(
                "contentBlockDelta",
                &json!({"contentBlockIndex": 0, "delta": {"text": text}}),
            ),
            _ if self.mistral => {
                let stop = if last {
                    Value::from(stop_reason(self.truncated, Wire::Mistral))
                } else {
                    Value::Null
                };
                let mut v = json!({"outputs": [{"text": text, "stop_reason": stop}]});
                if last {
                    let ms = self.started.elapsed().as_millis() as u64;
                    v["amazon-bedrock-invocationMetrics"] = json!({"inputTokenCount": self.usage.0,
                        "outputTokenCount": self.usage.1, "invocationLatency": ms, "firstByteLatency": ms});
                }
                self.chunk(&v)
            }
            _ => self.chunk(
                &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
            ),
        }
    }

    fn tail(&mut self, _completion_tokens: usize) -> Vec<Bytes> {
        let (i, o) = self.usage;
        match self.op {
            Op::ConverseStream => vec![
                frame("contentBlockStop", &json!({"contentBlockIndex": 0})),
                frame(
                    "messageStop",
                    &json!({"stopReason": stop_reason(self.truncated, Wire::Converse)}),
                ),
                frame(
                    "metadata",
                    &json!({"usage": {"inputTokens": i, "outputTokens": o, "totalTokens": i + o},
                                          "metrics": {"latencyMs": self.started.elapsed().as_millis() as u64}}),
                ),
            ],
            _ if self.mistral => Vec::new(),
            _ => {
                let ms = self.started.elapsed().as_millis() as u64;
                vec![
                    self.chunk(&json!({"type": "content_block_stop", "index": 0})),
                    self.chunk(&json!({"type": "message_delta",
                        "delta": {"stop_reason": stop_reason(self.truncated, Wire::Anthropic), "stop_sequence": null},
                        "usage": {"output_tokens": o}})),
                    self.chunk(&json!({"type": "message_stop", "amazon-bedrock-invocationMetrics": {
                        "inputTokenCount": i, "outputTokenCount": o, "invocationLatency": ms, "firstByteLatency": ms}})),
                ]
            }
        }
    }

    fn malformed_json(&mut self) -> Bytes {
        let msg = eventstream::event("contentBlockDelta", b"{\"contentBlockIndex\": 0, \"delta\": ".to_vec());
        Bytes::from(eventstream::encode(&msg).unwrap_or_default())
    }

    fn malformed_frame(&mut self) -> Bytes {
        Bytes::from_static(b"data: this is not an event-stream frame\n\n")
    }

    fn corrupt(&mut self, frame: Bytes) -> Bytes {
        // Flip a payload byte: both lengths and the prelude CRC stay valid, the message
        // CRC no longer matches.
        let mut v = frame.to_vec();
        if v.len() > 16 {
            let i = v.len() - 5;
            v[i] ^= 0x5a;
        }
        Bytes::from(v)
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap_or_default()
}

/// A Bedrock error: status, `x-amzn-ErrorType` and `{"message"}`.
fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let mut r = super::journal::with_reason(json_response(status, json!({"message": message}).to_string()), message);
    if let Ok(v) =
        header::HeaderValue::from_str(&format!("{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"))
    {
        r.headers_mut().insert("x-amzn-errortype", v);
    }
    r
}

fn scripted_error(status: u16, retry_after: Option<Duration>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (kind, msg) = match status {
        400 => (
            "ValidationException",
            "Malformed input request, please reformat your input and try again.",
        ),
        401 | 403 => (
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
        ),
        404 => (
            "ResourceNotFoundException",
            "Could not resolve the foundation model from the provided model identifier.",
        ),
        408 => (
            "ModelTimeoutException",
            "Model has timed out in processing the request.",
        ),
        424 => ("ModelErrorException", "The model produced an error."),
        429 => (
            "ThrottlingException",
            "Too many requests, please wait before trying again.",
        ),
        503 => (
            "ServiceUnavailableException",
            "Bedrock is unable to process your request.",
        ),
        _ => (
            "InternalServerException",
            "The server encountered an internal error while processing the request.",
        ),
    };
    let mut r = error(code, kind, msg);
    if let Some(d) = retry_after
        && let Ok(v) = header::HeaderValue::from_str(&d.as_secs().max(1).to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}
