//! The reference gateway's OpenAI-compatible front: what a proxy such as LiteLLM
//! serves, with the feature map owned by the gateway. `model` names an alias: a
//! self-hosted model (and its endpoint variants), or a feature, which resolves to its
//! mapped model, to `duo_chat`'s model for a Chat sub-feature without one, or to a
//! refusal when the feature is disabled. Errors are OpenAI-style; an upstream error
//! status passes through, a broken upstream reply is a 502, and a stream that breaks
//! after it started ends with an in-band `data: {"error": ...}` and no `[DONE]`.

use std::sync::Arc;

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State as AxState};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use futures_util::stream;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::State;
use super::fault::Fault;
use super::handlers::{error_text, json_response};
use super::upstream::{Delta, ModelMeta, UpstreamError};
use crate::feature;
use crate::scenario::BuiltinAuth;

const MAX_REQUEST: usize = 4 * 1024 * 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    Chat,
    Text,
}

pub(super) async fn chat(state: AxState<Arc<State>>, req: Request) -> Response {
    serve(state, req, Api::Chat).await
}

pub(super) async fn completions(state: AxState<Arc<State>>, req: Request) -> Response {
    serve(state, req, Api::Text).await
}

pub(super) async fn models(AxState(state): AxState<Arc<State>>, req: Request) -> Response {
    if let Err(r) = authenticate(&state, req.headers()) {
        return r;
    }
    let f = &state.settings.features;
    let data: Vec<Value> = f
        .models
        .iter()
        .map(|(a, _)| a)
        .chain(f.features.iter().filter(|(_, m)| m.is_some()).map(|(a, _)| a))
        .map(|a| json!({"id": a, "object": "model", "owned_by": "gateprobe"}))
        .collect();
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}

fn error(status: StatusCode, message: &str, kind: &str) -> Response {
    json_response(
        status,
        &json!({"error": {"message": message, "type": kind, "param": null, "code": status.as_u16().to_string()}}),
    )
}

/// Bearer client keys, like a proxy's master key.
fn authenticate(state: &State, headers: &HeaderMap) -> Result<(), Response> {
    let s = &state.settings;
    if s.auth == BuiltinAuth::Bypass {
        return Ok(());
    }
    let Some(auth) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        if s.faults.contains(&Fault::AcceptMissingAuth) {
            return Ok(());
        }
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "No API key provided: send Authorization: Bearer <key>",
            "authentication_error",
        ));
    };
    let key = auth.strip_prefix("Bearer ").unwrap_or_default();
    match &s.token {
        Some(t)
            if !crate::wire::secret_eq(key.as_bytes(), t.as_bytes()) && !s.faults.contains(&Fault::AcceptAnyToken) =>
        {
            Err(error(
                StatusCode::UNAUTHORIZED,
                "Invalid API key",
                "authentication_error",
            ))
        }
        _ => Ok(()),
    }
}

enum Resolved {
    Model(ModelMeta),
    Disabled,
    Unknown,
}

/// Alias -> model: self-hosted models first, then features (explicit, fallback, disabled).
fn resolve(state: &State, alias: &str) -> Resolved {
    let f = &state.settings.features;
    let faults = &state.settings.faults;
    if let Some((_, m)) = f.models.iter().find(|(a, _)| a == alias) {
        return Resolved::Model(m.clone());
    }
    let chat_model = || {
        f.features
            .iter()
            .find(|(a, _)| a == feature::DUO_CHAT)
            .and_then(|(_, m)| m.clone())
    };
    match f.features.iter().find(|(a, _)| a == alias) {
        Some((_, Some(m))) => return Resolved::Model(m.clone()),
        Some((_, None)) if faults.contains(&Fault::ServeDisabledFeature) => {
            return chat_model()
                .or_else(|| f.models.first().map(|(_, m)| m.clone()))
                .map_or(Resolved::Unknown, Resolved::Model);
        }
        Some((_, None)) => return Resolved::Disabled,
        None => {}
    }
    let sub = feature::by_name(alias).is_some_and(|ft| ft.chat_subfeature);
    if sub && !faults.contains(&Fault::NoChatFallback) && !f.features.is_empty() {
        return chat_model().map_or(Resolved::Unknown, Resolved::Model);
    }
    Resolved::Unknown
}

async fn serve(AxState(state): AxState<Arc<State>>, req: Request, api: Api) -> Response {
    let (parts, body) = req.into_parts();
    if let Err(r) = authenticate(&state, &parts.headers) {
        return r;
    }
    if parts.method != Method::POST {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method Not Allowed",
            "invalid_request_error",
        );
    }
    let Ok(bytes) = to_bytes(body, MAX_REQUEST).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
            "invalid_request_error",
        );
    };
    let Ok(body) = serde_json::from_slice::<Value>(&bytes) else {
        return error(
            StatusCode::BAD_REQUEST,
            "request body is not valid JSON",
            "invalid_request_error",
        );
    };
    let alias = body.get("model").and_then(Value::as_str).unwrap_or_default().to_owned();
    let meta = match resolve(&state, &alias) {
        Resolved::Model(m) => m,
        Resolved::Disabled => {
            return error(
                StatusCode::FORBIDDEN,
                &format!("feature `{alias}` is disabled"),
                "permission_error",
            );
        }
        Resolved::Unknown => {
            return error(
                StatusCode::NOT_FOUND,
                &format!("The model `{alias}` does not exist."),
                "invalid_request_error",
            );
        }
    };
    let messages: Vec<Value> = match api {
        Api::Chat => body
            .get("messages")
            .and_then(Value::as_array)
            .map(|ms| {
                ms.iter()
                    .map(|m| json!({"role": m.get("role").cloned().unwrap_or(json!("user")), "content": m.get("content").cloned().unwrap_or(json!(""))}))
                    .collect()
            })
            .unwrap_or_default(),
        Api::Text => match body.get("prompt").and_then(Value::as_str) {
            Some(p) => vec![json!({"role": "user", "content": p})],
            None => vec![],
        },
    };
    if messages.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "messages (or prompt) are required",
            "invalid_request_error",
        );
    }
    let max_tokens = body
        .get("max_tokens")
        .and_then(Value::as_u64)
        .and_then(|m| u32::try_from(m).ok())
        .unwrap_or(256);
    let up = match state.resolve(&meta) {
        Ok(u) => u,
        Err(e) => return upstream_error(&state, &e, None),
    };
    let swallow = state.settings.faults.contains(&Fault::SwallowUpstreamError);
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        return match state.stream(&up, &messages, max_tokens).await {
            Ok(rx) => sse(
                rx,
                api,
                &alias,
                (swallow, state.settings.faults.contains(&Fault::BrokenStreamFraming)),
            ),
            Err(_) if swallow => sse_empty(api, &alias),
            Err(e) => upstream_error(&state, &e, Some(&up)),
        };
    }
    match state.complete(&up, &messages, max_tokens).await {
        Ok((text, usage)) => json_response(StatusCode::OK, &whole(api, &alias, &text, usage)),
        Err(_) if swallow => json_response(StatusCode::OK, &whole(api, &alias, "", Value::Null)),
        Err(e) => upstream_error(&state, &e, Some(&up)),
    }
}

/// The upstream's status passes through; anything else is a bad gateway.
fn upstream_error(state: &State, e: &UpstreamError, up: Option<&super::upstream::Upstream>) -> Response {
    let status = e
        .status()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(match e {
            UpstreamError::EmptyIdentifier | UpstreamError::BadIdentifier(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_GATEWAY,
        });
    error(status, &error_text(state, e, up), "upstream_error")
}

fn whole(api: Api, alias: &str, text: &str, usage: Value) -> Value {
    match api {
        Api::Chat => json!({"id": "chatcmpl-gateprobe", "object": "chat.completion", "created": 0, "model": alias,
                            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                            "usage": usage}),
        Api::Text => json!({"id": "cmpl-gateprobe", "object": "text_completion", "created": 0, "model": alias,
                            "choices": [{"index": 0, "text": text, "finish_reason": "stop"}], "usage": usage}),
    }
}

fn chunk(api: Api, alias: &str, text: Option<&str>, finish: Option<&str>) -> Bytes {
    let choice = match api {
        Api::Chat => {
            json!({"index": 0, "delta": text.map_or(json!({}), |t| json!({"content": t})), "finish_reason": finish})
        }
        Api::Text => json!({"index": 0, "text": text.unwrap_or_default(), "finish_reason": finish}),
    };
    let object = if api == Api::Chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    let v = json!({"id": "gateprobe", "object": object, "created": 0, "model": alias, "choices": [choice]});
    Bytes::from(format!("data: {v}\n\n"))
}

fn sse_response(body: Body) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .unwrap_or_default()
}

fn sse_empty(api: Api, alias: &str) -> Response {
    let mut body = chunk(api, alias, Some(""), Some("stop")).to_vec();
    body.extend_from_slice(b"data: [DONE]\n\n");
    sse_response(Body::from(body))
}

/// Deltas as SSE; a broken upstream ends in an in-band error event without `[DONE]`
/// (or, with the swallow fault, in a normal end).
/// `broken` (the framing fault) sends a truncated JSON frame second.
fn sse(rx: mpsc::Receiver<Delta>, api: Api, alias: &str, (swallow, broken): (bool, bool)) -> Response {
    let alias = alias.to_owned();
    let s = stream::unfold((rx, false, 0usize), move |(mut rx, done, n)| {
        let alias = alias.clone();
        async move {
            if done {
                return None;
            }
            loop {
                let out = match rx.recv().await {
                    Some(Delta::Text(_)) if broken && n == 1 => {
                        (Bytes::from_static(b"data: {\"choices\": [{\"delta\": \n\n"), false)
                    }
                    Some(Delta::Text(t)) => (chunk(api, &alias, Some(&t), None), false),
                    Some(Delta::Usage(_)) => continue,
                    Some(Delta::Error(_)) if swallow => {
                        let mut b = chunk(api, &alias, None, Some("stop")).to_vec();
                        b.extend_from_slice(b"data: [DONE]\n\n");
                        (Bytes::from(b), true)
                    }
                    Some(Delta::Error(e)) => {
                        let v = json!({"error": {"message": e, "type": "upstream_error", "code": "502"}});
                        (Bytes::from(format!("data: {v}\n\n")), true)
                    }
                    None => {
                        let mut b = chunk(api, &alias, None, Some("stop")).to_vec();
                        b.extend_from_slice(b"data: [DONE]\n\n");
                        (Bytes::from(b), true)
                    }
                };
                return Some((Ok::<_, std::io::Error>(out.0), (rx, out.1, n + 1)));
            }
        }
    });
    sse_response(Body::from_stream(s))
}
