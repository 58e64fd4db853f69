//! A vLLM-compatible OpenAI API mock: `/v1/models`, `/v1/chat/completions`,
//! `/v1/completions` (plain and SSE streaming, with the usage chunk), `/health`, and
//! vLLM's error bodies, byte for byte where gateways parse them. Replies follow the
//! backend's timing model and scripted faults.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::behavior::{
    Admission, Behavior, answer_tokens, asks_for_final_answer, paced_body, reply_text, reply_tokens,
};
use super::journal::{Entry, Journal};
use super::openai_sse::SseCodec;
use super::personality::{Ask, MessageIn, StopSpec, ToolSpec};
use crate::scenario::behavior::FaultAction;
use crate::scenario::{BackendConfig, BackendProvider};

/// Largest request body the mock reads.
const MAX_REQUEST: usize = 4 * 1024 * 1024;

/// Which server an OpenAI-style mock imitates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// vLLM's OpenAI-compatible server.
    Vllm,
    /// Azure OpenAI (deployments, `api-key`, `api-version`, content filter results).
    Azure,
}

/// Configuration and state of one OpenAI-style mock.
#[derive(Debug)]
pub struct OpenAiMock {
    pub(super) dialect: Dialect,
    pub(super) name: String,
    pub(super) models: Vec<String>,
    pub(super) api_key: Option<String>,
    personality: crate::scenario::behavior::Personality,
    /// Azure: the `api-version`s the resource serves (see `azure.rs`).
    pub(super) api_versions: Vec<String>,
    journal: Arc<Journal>,
    behavior: Behavior,
    ids: AtomicU64,
}

impl OpenAiMock {
    /// A mock for a scenario backend.
    pub fn new(cfg: &BackendConfig, journal: Arc<Journal>) -> Arc<Self> {
        let dialect = match cfg.provider {
            BackendProvider::Azure => Dialect::Azure,
            _ => Dialect::Vllm,
        };
        Arc::new(OpenAiMock {
            dialect,
            name: cfg.name.clone(),
            models: cfg.models.clone(),
            api_key: cfg.api_key.clone(),
            personality: cfg.personality.clone(),
            api_versions: cfg.api_versions.clone(),
            journal,
            behavior: Behavior::new(cfg.timing.clone(), cfg.faults.clone()),
            ids: AtomicU64::new(1),
        })
    }

    /// The axum router serving this mock.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().fallback(handle).with_state(Arc::clone(self))
    }
}

async fn handle(State(mock): State<Arc<OpenAiMock>>, req: Request) -> Response {
    let received = Instant::now();
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_REQUEST).await;
    let headers = &parts.headers;
    let entry = Entry::from_request(
        &mock.name,
        &parts,
        bytes.as_deref().unwrap_or_default(),
        mock.journal.is_light(),
    );
    let arrival = mock.journal.arrived(&entry, received);
    let response = match &bytes {
        Ok(b) => match mock.dialect {
            Dialect::Vllm => route(&mock, &parts.method, &entry.path, headers, b, received).await,
            Dialect::Azure => {
                super::azure::route(
                    &mock,
                    (&parts.method, &entry.path, entry.query.as_deref()),
                    headers,
                    b,
                    received,
                )
                .await
            }
        },
        Err(_) => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
            "BadRequestError",
        ),
    };
    mock.journal.answered(arrival, entry, &response, received);
    response
}

async fn route(
    mock: &OpenAiMock,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
    arrival: Instant,
) -> Response {
    if path == "/health" {
        return Response::new(Body::empty());
    }
    if path != "/v1" && !path.starts_with("/v1/") {
        return detail(StatusCode::NOT_FOUND, "Not Found");
    }
    if let Some(key) = &mock.api_key {
        let ok = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|got| crate::wire::secret_eq(got.as_bytes(), key.as_bytes()));
        if !ok {
            return super::journal::with_reason(
                json_response(StatusCode::UNAUTHORIZED, &json!({"error": "Unauthorized"})),
                "the key is not this server's",
            );
        }
    }
    match (path, method) {
        ("/v1/models", &Method::GET) => models(mock),
        ("/v1/chat/completions", &Method::POST) => completion(mock, body, Kind::Chat, None, arrival).await,
        ("/v1/completions", &Method::POST) => completion(mock, body, Kind::Text, None, arrival).await,
        ("/v1/models" | "/v1/chat/completions" | "/v1/completions", _) => {
            detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
        }
        _ => detail(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// A non-streaming reply, vLLM's shape.
#[derive(serde::Serialize)]
struct WholeReply<'a> {
    id: &'a str,
    object: &'a str,
    created: u64,
    model: &'a str,
    choices: Vec<WholeChoice<'a>>,
    usage: WholeUsage,
}

#[derive(serde::Serialize)]
struct WholeChoice<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<WholeMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    logprobs: Option<()>,
    finish_reason: &'a str,
    stop_reason: Option<()>,
}

#[derive(serde::Serialize)]
struct WholeMessage<'a> {
    role: &'a str,
    content: &'a str,
    tool_calls: [(); 0],
}

#[derive(serde::Serialize)]
struct WholeUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

/// The fields of a completion request the mock reads.
#[derive(serde::Deserialize)]
struct CompletionRequest<'a> {
    #[serde(borrow, default)]
    model: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    messages: Option<Vec<MessageIn<'a>>>,
    #[serde(default, borrow)]
    prompt: Option<super::prompt::PromptIn<'a>>,
    #[serde(default)]
    min_tokens: Option<u64>,
    #[serde(default)]
    tools: Option<Vec<ToolSpec>>,
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    stop: Option<StopSpec>,
    #[serde(default)]
    ignore_eos: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    suffix: Option<()>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    /// How many choices to generate (default 1).
    #[serde(default)]
    n: Option<u64>,
}

/// Most choices one request may ask for.
const MAX_CHOICES: u64 = 16;

#[derive(serde::Deserialize, Clone, Copy)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// `Some(())` for any non-null value (vLLM refuses a `suffix` whatever it holds).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<()>, D::Error> {
    let v: Option<serde::de::IgnoredAny> = serde::Deserialize::deserialize(d)?;
    Ok(v.map(|_| ()))
}

/// Chat or legacy text completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Chat,
    Text,
}

fn models(mock: &OpenAiMock) -> Response {
    let created = unix_now();
    let data: Vec<Value> = mock
        .models
        .iter()
        .map(|m| {
            json!({"id": m, "object": "model", "created": created, "owned_by": "vllm",
                   "root": m, "parent": null, "max_model_len": mock.personality.max_model_len})
        })
        .collect();
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}

/// Serves a completion. `deployment` (Azure) names the model instead of the body's
/// `model`, which Azure ignores.
pub(super) async fn completion(
    mock: &OpenAiMock,
    body: &[u8],
    kind: Kind,
    deployment: Option<&str>,
    arrival: Instant,
) -> Response {
    // Typed and borrowed: the request path must stay cheap under load, and unknown
    // fields are accepted (as vLLM does).
    let req: CompletionRequest<'_> = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "The request body is not a valid completion request.",
                "BadRequestError",
            );
        }
    };
    let Some(model) = deployment.or(req.model.as_deref()) else {
        return error(StatusCode::BAD_REQUEST, "Field required: model", "BadRequestError");
    };
    if mock.dialect == Dialect::Azure && !mock.models.iter().any(|m| m == model) {
        return super::azure::deployment_not_found();
    }
    if !mock.models.iter().any(|m| m == model) {
        return error(
            StatusCode::NOT_FOUND,
            &format!("The model `{model}` does not exist."),
            "NotFoundError",
        );
    }
    match kind {
        Kind::Chat if req.messages.as_ref().is_none_or(Vec::is_empty) => {
            return error(StatusCode::BAD_REQUEST, "Field required: messages", "BadRequestError");
        }
        Kind::Text if req.suffix.is_some() => {
            return error(
                StatusCode::BAD_REQUEST,
                "suffix is not currently supported",
                "BadRequestError",
            );
        }
        Kind::Text if req.prompt.is_none() => {
            return error(StatusCode::BAD_REQUEST, "Field required: prompt", "BadRequestError");
        }
        _ => {}
    }
    // The prompt's text, counted as this backend counts tokens (prefill cost, usage).
    let counter = mock.behavior.counter();
    let prompt_tokens = match kind {
        Kind::Chat => req
            .messages
            .iter()
            .flatten()
            .filter_map(|m| m.content.as_ref())
            .map(|c| c.tokens(counter))
            .sum(),
        Kind::Text => req.prompt.as_ref().map_or(0, |p| p.tokens(counter)),
    };
    let asked_max = req.max_tokens.or(req.max_completion_tokens);
    let shape = Ask {
        kind,
        prompt_tokens,
        messages: req.messages.as_deref(),
        tools: req.tools.as_deref(),
        tool_choice: req.tool_choice.as_ref(),
        max_tokens: asked_max,
    };
    if mock.dialect == Dialect::Vllm
        && let Some(refused) = super::personality::refuse(&mock.personality, &shape)
    {
        return refused;
    }
    let limits = !mock.personality.ignore_limits;
    let choices = req.n.unwrap_or(1);
    if !(1..=MAX_CHOICES).contains(&choices) {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("n must be between 1 and {MAX_CHOICES}, got {choices}."),
            "BadRequestError",
        );
    }
    let choices = choices as usize;
    let max_tokens = asked_max.filter(|_| limits);
    let stream = req.stream == Some(true);
    let ask = super::behavior::Ask {
        max_tokens,
        min_tokens: req.min_tokens,
        ignore_eos: req.ignore_eos == Some(true),
        prompt_tokens,
    };
    let adm = mock.behavior.admit_ask(model, ask, arrival).await;
    match &adm.fault {
        Some(FaultAction::Error { status, retry_after }) => {
            adm.wait_first().await;
            return match mock.dialect {
                Dialect::Vllm => scripted_error(*status, *retry_after),
                Dialect::Azure => super::azure::scripted_error(*status, *retry_after),
            };
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
    let mut n_tokens = adm.tokens();
    let mut finish = if max_tokens.is_some_and(|m| m as usize <= n_tokens) {
        "length"
    } else {
        "stop"
    };
    let prompt_tokens = prompt_tokens as usize;
    let special = match kind {
        Kind::Chat => super::personality::tool_call(&shape).or_else(|| {
            mock.personality
                .reasoning
                .then(|| super::personality::reasoning(max_tokens, |n| reply_text(&mock.name, model, n), n_tokens))
        }),
        Kind::Text => None,
    };
    if let Some(special) = special {
        adm.wait_full().await;
        let n = mock.ids.fetch_add(1, Ordering::Relaxed);
        let id = format!("chatcmpl-{n:016x}");
        return super::personality::special_reply(&special, &id, model, stream, prompt_tokens, max_tokens);
    }
    // Every choice is generated: usage counts them all.
    let usage = |n: usize| {
        json!({"prompt_tokens": prompt_tokens, "completion_tokens": n * choices,
               "total_tokens": prompt_tokens + n * choices})
    };
    let n = mock.ids.fetch_add(1, Ordering::Relaxed);
    let id = match kind {
        Kind::Chat => format!("chatcmpl-{n:016x}"),
        Kind::Text => format!("cmpl-{n:016x}"),
    };
    if stream && adm.fault != Some(FaultAction::NonSse) {
        let mut tokens = reply_tokens(&mock.name, model, n_tokens);
        if limits && super::personality::apply_stop_tokens(&mut tokens, req.stop.as_ref()) {
            finish = "stop";
            n_tokens = tokens.len();
        }
        let include_usage = req.stream_options.and_then(|o| o.include_usage) == Some(true);
        let codec = SseCodec {
            dialect: mock.dialect,
            id,
            created: unix_now(),
            model: model.to_owned(),
            kind,
            finish,
            usage: include_usage.then(|| usage(n_tokens)),
            choices,
            templates: None,
        };
        let first = super::journal::FirstToken(adm.first_token_out().into_std());
        let mut r = Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")
            .header(header::CACHE_CONTROL, "no-cache")
            .body(paced_body(adm, answer_tokens(body, tokens), codec))
            .unwrap_or_default();
        r.extensions_mut().insert(first);
        return r;
    }
    let mut text = reply_text(&mock.name, model, n_tokens);
    if limits && super::personality::apply_stop(&mut text, req.stop.as_ref()) {
        finish = "stop";
        n_tokens = text.split_whitespace().count();
    }
    if kind == Kind::Chat && asks_for_final_answer(body) {
        text.insert_str(0, &super::behavior::REACT_PREFIX.concat());
    }
    let object = if kind == Kind::Chat {
        "chat.completion"
    } else {
        "text_completion"
    };
    let body = if mock.dialect == Dialect::Azure {
        let choice = match kind {
            Kind::Chat => json!({"index": 0, "message": {"role": "assistant", "content": text, "tool_calls": []},
                                 "logprobs": null, "finish_reason": finish, "stop_reason": null}),
            Kind::Text => {
                json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish, "stop_reason": null})
            }
        };
        let all: Vec<Value> = (0..choices)
            .map(|i| {
                let mut c = choice.clone();
                c["index"] = Value::from(i);
                c["content_filter_results"] = super::azure::content_filter_results();
                c
            })
            .collect();
        let mut full = json!({"id": id, "object": object, "created": unix_now(), "model": model,
                              "choices": all, "usage": usage(n_tokens)});
        full["prompt_filter_results"] = super::azure::prompt_filter_results();
        full.to_string()
    } else {
        // Typed serialisation: the non-streaming reply is the mock's hottest path.
        let reply = WholeReply {
            id: &id,
            object,
            created: unix_now(),
            model,
            choices: (0..choices)
                .map(|i| WholeChoice {
                    index: i as u32,
                    message: (kind == Kind::Chat).then_some(WholeMessage {
                        role: "assistant",
                        content: &text,
                        tool_calls: [],
                    }),
                    text: (kind == Kind::Text).then_some(text.as_str()),
                    logprobs: None,
                    finish_reason: finish,
                    stop_reason: None,
                })
                .collect(),
            usage: WholeUsage {
                prompt_tokens: prompt_tokens as u64,
                completion_tokens: (n_tokens * choices) as u64,
                total_tokens: (prompt_tokens + n_tokens * choices) as u64,
            },
        };
        // Sized once: growing the string by doubling costs several reallocations.
        let mut out = Vec::with_capacity(384 + choices * text.len());
        // Writing into a Vec cannot fail, and serde_json writes only UTF-8.
        let _ = serde_json::to_writer(&mut out, &reply);
        String::from_utf8(out).unwrap_or_default()
    };
    let first = super::journal::FirstToken(adm.whole_out().into_std());
    let mut r = whole_reply(adm, body).await;
    r.extensions_mut().insert(first);
    r
}

/// A non-streaming reply under the admission's timing and fault.
async fn whole_reply(adm: Admission, full: String) -> Response {
    match adm.fault {
        Some(FaultAction::Cut { .. }) => {
            // Send half the body, then break the connection.
            if adm.first_at > tokio::time::Instant::now() {
                tokio::time::sleep_until(adm.first_at).await;
            }
            return super::behavior::cut_reply(super::behavior::first_half(&full));
        }
        // Framing faults (malformed SSE, corrupt CRC) only exist in streams.
        Some(FaultAction::MalformedJson) => {
            adm.wait_full().await;
            let broken = super::behavior::first_half(&full);
            return Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(broken))
                .unwrap_or_default();
        }
        _ => {}
    }
    adm.wait_full().await;
    drop(adm);
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(full))
        .unwrap_or_default()
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(super) fn json_response(status: StatusCode, v: &Value) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(v.to_string()))
        .unwrap_or_default()
}

/// FastAPI's `{"detail": ...}` (paths outside the API, wrong methods).
fn detail(status: StatusCode, msg: &str) -> Response {
    json_response(status, &json!({"detail": msg}))
}

/// vLLM's OpenAI-style error body.
fn error(status: StatusCode, message: &str, kind: &str) -> Response {
    super::journal::with_reason(
        json_response(
            status,
            &json!({"error": {"message": message, "type": kind, "param": null, "code": status.as_u16()}}),
        ),
        message,
    )
}

/// A scripted error with the body vLLM (or the proxy in front of it) sends.
fn scripted_error(status: u16, retry_after: Option<Duration>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = match status {
        401 => json_response(code, &json!({"error": "Unauthorized"})),
        404 => detail(code, "Not Found"),
        429 => error(
            code,
            "Too many requests: the server is overloaded, retry later.",
            "RateLimitError",
        ),
        503 => error(
            code,
            "The server is not ready to serve requests.",
            "ServiceUnavailableError",
        ),
        s if s >= 500 => error(code, "Internal server error.", "InternalServerError"),
        _ => error(code, code.canonical_reason().unwrap_or("Error"), "BadRequestError"),
    };
    if let Some(d) = retry_after
        && let Ok(v) = header::HeaderValue::from_str(&d.as_secs().max(1).to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}
