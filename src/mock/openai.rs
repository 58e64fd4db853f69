//! A vLLM-compatible OpenAI API mock: `/v1/models`, `/v1/chat/completions`,
//! `/v1/completions` (plain and SSE streaming, with the usage chunk), `/health`, and
//! vLLM's error bodies, byte for byte where gateways parse them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::journal::{Entry, Journal, MAX_BODY, find_correlation_id};

/// Largest request body the mock reads.
const MAX_REQUEST: usize = 4 * 1024 * 1024;

/// Configuration and state of one OpenAI-compatible mock.
#[derive(Debug)]
pub struct OpenAiMock {
    name: String,
    models: Vec<String>,
    api_key: Option<String>,
    journal: Arc<Journal>,
    ids: AtomicU64,
}

impl OpenAiMock {
    /// A mock called `name` serving `models`, requiring `api_key` if set.
    pub fn new(name: &str, models: Vec<String>, api_key: Option<String>, journal: Arc<Journal>) -> Arc<Self> {
        Arc::new(OpenAiMock {
            name: name.to_owned(),
            models,
            api_key,
            journal,
            ids: AtomicU64::new(1),
        })
    }

    /// The axum router serving this mock.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().fallback(handle).with_state(Arc::clone(self))
    }

    fn reply_tokens(&self, model: &str, max_tokens: Option<u64>) -> Vec<String> {
        let text = format!(
            "Mock reply from {} serving {model}: def add(a, b): return a + b",
            self.name
        );
        let mut tokens: Vec<String> = text.split_inclusive(' ').map(str::to_owned).collect();
        if let Some(max) = max_tokens.filter(|m| *m > 0) {
            tokens.truncate(usize::try_from(max).unwrap_or(usize::MAX));
        }
        tokens
    }
}

async fn handle(State(mock): State<Arc<OpenAiMock>>, req: Request) -> Response {
    let received = Instant::now();
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_REQUEST).await;
    let path = parts.uri.path().to_owned();
    let headers = &parts.headers;
    let response = match &bytes {
        Ok(b) => route(&mock, &parts.method, &path, headers, b),
        Err(_) => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
            "BadRequestError",
        ),
    };
    let body = bytes.unwrap_or_default();
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX_BODY)]).into_owned();
    let correlation_id = find_correlation_id(&text).map(str::to_owned).or_else(|| {
        headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .and_then(find_correlation_id)
            .map(str::to_owned)
    });
    mock.journal.record(
        Entry {
            seq: 0,
            at: Default::default(),
            backend: mock.name.clone(),
            method: parts.method.to_string(),
            path,
            query: parts.uri.query().map(str::to_owned),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: text,
            correlation_id,
            status: response.status().as_u16(),
        },
        received,
    );
    response
}

fn route(mock: &OpenAiMock, method: &Method, path: &str, headers: &HeaderMap, body: &[u8]) -> Response {
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
            .is_some_and(|got| constant_time_eq(got.as_bytes(), key.as_bytes()));
        if !ok {
            return json_response(StatusCode::UNAUTHORIZED, &json!({"error": "Unauthorized"}));
        }
    }
    match (path, method) {
        ("/v1/models", &Method::GET) => models(mock),
        ("/v1/chat/completions", &Method::POST) => completion(mock, body, Kind::Chat),
        ("/v1/completions", &Method::POST) => completion(mock, body, Kind::Text),
        ("/v1/models" | "/v1/chat/completions" | "/v1/completions", _) => {
            detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
        }
        _ => detail(StatusCode::NOT_FOUND, "Not Found"),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
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
                   "root": m, "parent": null, "max_model_len": 32768})
        })
        .collect();
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}

fn completion(mock: &OpenAiMock, body: &[u8], kind: Kind) -> Response {
    let req: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) | Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "The request body is not a JSON object.",
                "BadRequestError",
            );
        }
    };
    let Some(model) = req.get("model").and_then(Value::as_str) else {
        return error(StatusCode::BAD_REQUEST, "Field required: model", "BadRequestError");
    };
    if !mock.models.iter().any(|m| m == model) {
        return error(
            StatusCode::NOT_FOUND,
            &format!("The model `{model}` does not exist."),
            "NotFoundError",
        );
    }
    let prompt_len = match kind {
        Kind::Chat => match req.get("messages").and_then(Value::as_array) {
            Some(m) if !m.is_empty() => m.iter().map(|m| m.to_string().len()).sum::<usize>(),
            _ => return error(StatusCode::BAD_REQUEST, "Field required: messages", "BadRequestError"),
        },
        Kind::Text => {
            if req.get("suffix").is_some_and(|s| !s.is_null()) {
                return error(
                    StatusCode::BAD_REQUEST,
                    "suffix is not currently supported",
                    "BadRequestError",
                );
            }
            match req.get("prompt") {
                Some(Value::String(s)) => s.len(),
                Some(Value::Array(a)) if !a.is_empty() => a.iter().map(|p| p.to_string().len()).sum(),
                _ => return error(StatusCode::BAD_REQUEST, "Field required: prompt", "BadRequestError"),
            }
        }
    };
    let max_tokens = req
        .get("max_tokens")
        .or_else(|| req.get("max_completion_tokens"))
        .and_then(Value::as_u64);
    let tokens = mock.reply_tokens(model, max_tokens);
    let finish = if max_tokens.is_some_and(|m| (m as usize) <= tokens.len()) {
        "length"
    } else {
        "stop"
    };
    let usage = json!({"prompt_tokens": prompt_len.div_ceil(4), "completion_tokens": tokens.len(),
                       "total_tokens": prompt_len.div_ceil(4) + tokens.len()});
    let n = mock.ids.fetch_add(1, Ordering::Relaxed);
    let (id, object) = match kind {
        Kind::Chat => (format!("chatcmpl-{n:016x}"), "chat.completion"),
        Kind::Text => (format!("cmpl-{n:016x}"), "text_completion"),
    };
    let created = unix_now();
    if req.get("stream").and_then(Value::as_bool) == Some(true) {
        let include_usage = req.pointer("/stream_options/include_usage").and_then(Value::as_bool) == Some(true);
        return stream(
            &id,
            created,
            model,
            kind,
            &tokens,
            finish,
            include_usage.then_some(usage),
        );
    }
    let text: String = tokens.concat();
    let choice = match kind {
        Kind::Chat => json!({"index": 0, "message": {"role": "assistant", "content": text, "tool_calls": []},
                             "logprobs": null, "finish_reason": finish, "stop_reason": null}),
        Kind::Text => json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish, "stop_reason": null}),
    };
    json_response(
        StatusCode::OK,
        &json!({"id": id, "object": object, "created": created, "model": model,
                "choices": [choice], "usage": usage}),
    )
}

fn stream(
    id: &str,
    created: u64,
    model: &str,
    kind: Kind,
    tokens: &[String],
    finish: &str,
    usage: Option<Value>,
) -> Response {
    let object = if kind == Kind::Chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    let usage_field = if usage.is_some() { Some(Value::Null) } else { None };
    let chunk = |choice: Value| {
        let mut c = json!({"id": id, "object": object, "created": created, "model": model, "choices": [choice]});
        if let Some(u) = &usage_field {
            c["usage"] = u.clone();
        }
        frame(&c)
    };
    let mut frames = Vec::with_capacity(tokens.len() + 4);
    if kind == Kind::Chat {
        frames.push(chunk(
            json!({"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}),
        ));
    }
    for (i, t) in tokens.iter().enumerate() {
        let fin = if i + 1 == tokens.len() {
            Value::from(finish)
        } else {
            Value::Null
        };
        frames.push(match kind {
            Kind::Chat => chunk(json!({"index": 0, "delta": {"content": t}, "logprobs": null, "finish_reason": fin})),
            Kind::Text => chunk(json!({"index": 0, "text": t, "logprobs": null, "finish_reason": fin})),
        });
    }
    if let Some(u) = usage {
        frames.push(frame(
            &json!({"id": id, "object": object, "created": created, "model": model, "choices": [], "usage": u}),
        ));
    }
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    let body = Body::from_stream(futures_util::stream::iter(
        frames.into_iter().map(Ok::<_, std::io::Error>),
    ));
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .unwrap_or_default()
}

fn frame(v: &Value) -> Bytes {
    let mut s = String::with_capacity(256);
    s.push_str("data: ");
    s.push_str(&v.to_string());
    s.push_str("\n\n");
    Bytes::from(s)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn json_response(status: StatusCode, v: &Value) -> Response {
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
    json_response(
        status,
        &json!({"error": {"message": message, "type": kind, "param": null, "code": status.as_u16()}}),
    )
}

/// Compares secrets without an early exit on the first differing byte.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
