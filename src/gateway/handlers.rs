//! The AI gateway endpoints: auth, request parsing, and the reply shapes the GitLab
//! instance expects (JSON, raw-text event streams, ndjson chat events).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State as AxState};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use futures_util::stream;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::State;
use super::fault::Fault;
use super::upstream::{Delta, ModelMeta, Upstream, UpstreamError};
use crate::feature::COMPLETION_FAMILIES;
use crate::scenario::BuiltinAuth;

const MAX_REQUEST: usize = 4 * 1024 * 1024;

pub(super) async fn handle(AxState(state): AxState<Arc<State>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    if path == "/monitoring/healthz" && parts.method == Method::GET {
        return json_response(StatusCode::OK, &json!({}));
    }
    if let Err(msg) = authenticate(&state, &parts.headers) {
        return json_response(StatusCode::UNAUTHORIZED, &json!({"error": msg}));
    }
    if parts.method != Method::POST {
        return json_response(StatusCode::METHOD_NOT_ALLOWED, &json!({"detail": "Method Not Allowed"}));
    }
    let Ok(bytes) = to_bytes(body, MAX_REQUEST).await else {
        return json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &json!({"detail": "request body too large"}),
        );
    };
    let Ok(body) = serde_json::from_slice::<Value>(&bytes) else {
        return unprocessable("request body is not valid JSON");
    };
    match path.as_str() {
        "/v2/code/completions" => code(&state, &body, false).await,
        "/v2/code/generations" => code(&state, &body, true).await,
        "/v3/code/completions" => code_v3(&state, &body).await,
        "/v2/chat/agent" => chat(&state, &body).await,
        p => match p.strip_prefix("/v1/prompts/") {
            Some(id) if !id.is_empty() => prompt(&state, &body).await,
            _ => json_response(StatusCode::NOT_FOUND, &json!({"detail": "Not Found"})),
        },
    }
}

/// The AI gateway's client auth, with its exact 401 messages.
fn authenticate(state: &State, headers: &HeaderMap) -> Result<(), &'static str> {
    let s = &state.settings;
    let faults = &s.faults;
    match s.auth {
        BuiltinAuth::Bypass => return Ok(()),
        BuiltinAuth::BypassWithHeader if header_is(headers, "bypass-auth", "true") => return Ok(()),
        _ => {}
    }
    let Some(auth) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return if faults.contains(&Fault::AcceptMissingAuth) {
            Ok(())
        } else {
            Err("No authorization header presented")
        };
    };
    let Some(token) = auth.strip_prefix("Bearer ").filter(|t| !t.is_empty()) else {
        return Err("Invalid authorization header");
    };
    if !header_is(headers, "x-gitlab-authentication-type", "oidc") {
        return Err("Invalid authentication token type - only OIDC is supported");
    }
    if let Some(expected) = &s.token
        && !crate::wire::secret_eq(token.as_bytes(), expected.as_bytes())
        && !faults.contains(&Fault::AcceptAnyToken)
    {
        return Err("Forbidden by auth provider");
    }
    match headers.get("x-gitlab-realm").and_then(|v| v.to_str().ok()) {
        Some("self-managed" | "saas") => Ok(()),
        _ => Err("Header mismatch 'X-Gitlab-Realm'"),
    }
}

fn header_is(headers: &HeaderMap, name: &str, want: &str) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(want))
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

/// `/v2/code/completions` and `/v2/code/generations`.
async fn code(state: &State, body: &Value, generation: bool) -> Response {
    if let Err(r) = valid_endpoint(body.get("model_endpoint"), "model_endpoint") {
        return r;
    }
    let meta = ModelMeta {
        family: str_at(body, "/model_name").to_owned(),
        endpoint: str_at(body, "/model_endpoint").to_owned(),
        api_key: body
            .get("model_api_key")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .map(str::to_owned),
        identifier: str_at(body, "/model_identifier").to_owned(),
    };
    if body.get("current_file").is_none() {
        return unprocessable("field required: current_file");
    }
    if !generation && !COMPLETION_FAMILIES.contains(&meta.family.as_str()) {
        return unprocessable(&format!("model_name `{}` is not a code completion model", meta.family));
    }
    let above = str_at(body, "/current_file/content_above_cursor");
    let below = str_at(body, "/current_file/content_below_cursor");
    let prompt = if generation {
        format!("{}\n\n{above}", str_at(body, "/prompt"))
    } else if matches!(meta.family.as_str(), "mistral" | "mixtral" | "codestral") {
        format!("<s>[SUFFIX]{below}[PREFIX]{above}")
    } else {
        format!("{above}<|fim_middle|>{below}")
    };
    let messages = [json!({"role": "user", "content": prompt})];
    let stream = body.get("stream").and_then(Value::as_bool) == Some(true);
    let lang = str_at(body, "/current_file/language_identifier").to_owned();
    suggest(state, &meta, &messages, stream, |model, text| {
        completion_body(model, &lang, text)
    })
    .await
}

/// Serves a code suggestion: streamed raw text, or one JSON reply `reply(model, text)`
/// builds; upstream failures as a bare 500 (streamed: a body that breaks off).
async fn suggest(
    state: &State,
    meta: &ModelMeta,
    messages: &[Value],
    stream: bool,
    reply: impl Fn(&str, &str) -> Value,
) -> Response {
    let up = match state.resolve(meta) {
        Ok(u) => u,
        Err(e) => return plain_error(state, &e, None),
    };
    if stream {
        return match state.stream(&up, messages, 64).await {
            Ok(rx) => text_stream(rx),
            Err(e) => broken_text_stream(&error_text(state, &e, Some(&up))),
        };
    }
    match state.complete(&up, messages, 64).await {
        Ok((text, _)) => json_response(StatusCode::OK, &reply(&up.model, &text)),
        Err(_) if state.settings.faults.contains(&Fault::SwallowUpstreamError) => {
            json_response(StatusCode::OK, &reply(&up.model, ""))
        }
        Err(e) => plain_error(state, &e, Some(&up)),
    }
}

/// `/v3/code/completions`: one `code_editor_generation` prompt component and the
/// self-hosted model in a top-level `model_metadata` (code generations of 18.x).
async fn code_v3(state: &State, body: &Value) -> Response {
    let meta = match metadata(state, body) {
        Ok(Some(m)) => m,
        Ok(None) => return unprocessable("model_metadata is required by the reference gateway"),
        Err(r) => return r,
    };
    let Some(payload) = body
        .pointer("/prompt_components/0")
        .filter(|c| c.get("type").and_then(Value::as_str) == Some("code_editor_generation"))
        .and_then(|c| c.get("payload"))
    else {
        return unprocessable("prompt_components: one code_editor_generation component is required");
    };
    let above = str_at(payload, "/content_above_cursor");
    let instruction = str_at(payload, "/prompt_enhancer/user_instruction");
    let messages = [json!({"role": "user", "content": format!("{instruction}\n\n{above}")})];
    let stream = payload.get("stream").and_then(Value::as_bool) == Some(true);
    suggest(state, &meta, &messages, stream, |model, text| {
        json!({"choices": [{"text": text, "index": 0, "finish_reason": "length"}],
               "metadata": {"model": {"engine": "agent", "name": model, "lang": "python"}},
               "model": {"engine": "agent", "name": model, "lang": "python"}})
    })
    .await
}

fn completion_body(model: &str, lang: &str, text: &str) -> Value {
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    json!({"id": "id", "model": {"engine": "litellm", "name": model, "lang": lang},
           "experiments": [], "object": "text_completion", "created": created,
           "choices": [{"text": text, "index": 0, "finish_reason": "length"}]})
}

/// `/v2/chat/agent`: always streams ndjson events.
async fn chat(state: &State, body: &Value) -> Response {
    let meta = match metadata(state, body) {
        Ok(Some(m)) => m,
        Ok(None) => return unprocessable("model_metadata is required by the reference gateway"),
        Err(r) => return r,
    };
    let messages: Vec<Value> = body
        .get("messages")
        .and_then(Value::as_array)
        .map(|ms| {
            ms.iter()
                .map(|m| json!({"role": str_at(m, "/role"), "content": str_at(m, "/content")}))
                .collect()
        })
        .unwrap_or_default();
    if messages.is_empty() {
        return unprocessable("field required: messages");
    }
    let faults = &state.settings.faults;
    let cut = faults.contains(&Fault::CutStreamAfterError);
    let up = match state.resolve(&meta) {
        Ok(u) => u,
        Err(e) => return ndjson_error(error_event(state, &e, None), cut),
    };
    match state.stream(&up, &messages, 2048).await {
        Ok(rx) => ndjson_stream(rx, faults.contains(&Fault::BrokenStreamFraming), cut),
        Err(_) if faults.contains(&Fault::SwallowUpstreamError) => ndjson(vec![
            json!({"type": "final_answer_delta", "data": {"text": "", "finish_reason": "stop"}}).to_string(),
        ]),
        Err(e) => ndjson_error(error_event(state, &e, Some(&up)), cut),
    }
}

/// `/v1/prompts/{prompt_id}`.
async fn prompt(state: &State, body: &Value) -> Response {
    let mut meta = match metadata(state, body) {
        Ok(Some(m)) => m,
        Ok(None) => return unprocessable("model_metadata is required by the reference gateway"),
        Err(r) => return r,
    };
    if state.settings.faults.contains(&Fault::PromptsIgnoreModelMetadata) {
        let mut sticky = state.sticky.lock().unwrap_or_else(|p| p.into_inner());
        meta = sticky.first_prompt_model.get_or_insert(meta).clone();
    }
    let inputs = body
        .get("inputs")
        .and_then(Value::as_object)
        .map(|o| {
            o.values()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    let messages = [json!({"role": "user", "content": inputs})];
    let up = match state.resolve(&meta) {
        Ok(u) => u,
        Err(e) => return prompt_error(state, &e, None),
    };
    let v2 = str_at(body, "/prompt_version").starts_with("^2") || str_at(body, "/prompt_version").starts_with('2');
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        return match state.stream(&up, &messages, 2048).await {
            Ok(rx) => text_stream(rx),
            Err(e) => broken_text_stream(&error_text(state, &e, Some(&up))),
        };
    }
    match state.complete(&up, &messages, 2048).await {
        Ok((text, usage)) if v2 => json_response(StatusCode::OK, &json!({"content": text, "usage": usage})),
        Ok((text, _)) => json_response(StatusCode::OK, &Value::String(text)),
        Err(_) if state.settings.faults.contains(&Fault::SwallowUpstreamError) => {
            json_response(StatusCode::OK, &Value::String(String::new()))
        }
        Err(e) => prompt_error(state, &e, Some(&up)),
    }
}

/// The self-hosted model of a request's `model_metadata`: `None` without one, a 422
/// for one the gateway cannot use (an endpoint that is not a URL) rather than serving
/// the request with some other model.
fn metadata(state: &State, body: &Value) -> Result<Option<ModelMeta>, Response> {
    let Some(m) = body.get("model_metadata").filter(|m| m.is_object()) else {
        return Ok(None);
    };
    let mut sticky = state.sticky.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(refused) = valid_endpoint(m.get("endpoint"), "model_metadata.endpoint") {
        return match (
            &sticky.last_model,
            state.settings.faults.contains(&Fault::FallbackOnInvalidMetadata),
        ) {
            (Some(other), true) => Ok(Some(other.clone())),
            _ => Err(refused),
        };
    }
    let meta = ModelMeta {
        family: str_at(m, "/name").to_owned(),
        endpoint: str_at(m, "/endpoint").to_owned(),
        api_key: m
            .get("api_key")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .map(str::to_owned),
        identifier: str_at(m, "/identifier").to_owned(),
    };
    if !meta.identifier.is_empty() {
        sticky.last_model = Some(meta.clone());
    }
    Ok(Some(meta))
}

/// An endpoint field is absent, `null`, or an http(s) URL: anything else gets the 422
/// of a failed validation.
fn valid_endpoint(v: Option<&Value>, field: &str) -> Result<(), Response> {
    let Some(e) = v.filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let ok = e
        .as_str()
        .and_then(|s| reqwest::Url::parse(s).ok())
        .is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
    if ok {
        Ok(())
    } else {
        Err(json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({"detail": [{"type": "url_parsing", "loc": ["body", field],
                                "msg": "Input should be a valid URL", "input": e}]}),
        ))
    }
}

/// The error text, with the key in it when the leak fault is on.
pub(super) fn error_text(state: &State, e: &UpstreamError, up: Option<&Upstream>) -> String {
    let msg = e.message();
    match up.and_then(|u| u.configured_key.as_deref()) {
        Some(k) if state.settings.faults.contains(&Fault::LeakApiKeyInError) => {
            format!(
                "{msg} (calling {} with api_key={k})",
                up.map(|u| u.url.as_str()).unwrap_or_default()
            )
        }
        _ => msg,
    }
}

/// Code suggestions answer upstream failures with a plain-text 500.
fn plain_error(state: &State, e: &UpstreamError, up: Option<&Upstream>) -> Response {
    let text = if up.is_some() && state.settings.faults.contains(&Fault::LeakApiKeyInError) {
        error_text(state, e, up)
    } else {
        "Internal Server Error".to_owned()
    };
    Response::builder()
        .status(StatusCode::INTERNAL_SERVER_ERROR)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from(text))
        .unwrap_or_default()
}

/// Prompts answer upstream failures with 421 and the upstream status in `detail`; a
/// call that broke without a status counts as a 500, as LiteLLM's connection errors do.
fn prompt_error(state: &State, e: &UpstreamError, up: Option<&Upstream>) -> Response {
    let status = match e {
        UpstreamError::Transport(_) => Some(500),
        _ => e.status(),
    };
    match status {
        Some(s) => {
            let reason = StatusCode::from_u16(s)
                .ok()
                .and_then(|c| c.canonical_reason())
                .unwrap_or("Error");
            let mut detail = format!("{s}: {reason}");
            if state.settings.faults.contains(&Fault::LeakApiKeyInError) {
                detail = format!("{detail} ({})", error_text(state, e, up));
            }
            json_response(StatusCode::MISDIRECTED_REQUEST, &json!({"detail": detail}))
        }
        None => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"detail": error_text(state, e, up)}),
        ),
    }
}

fn error_event(state: &State, e: &UpstreamError, up: Option<&Upstream>) -> String {
    json!({"type": "error", "data": {"message": error_text(state, e, up), "retryable": false}}).to_string()
}

fn unprocessable(msg: &str) -> Response {
    json_response(StatusCode::UNPROCESSABLE_ENTITY, &json!({"detail": msg}))
}

pub(super) fn json_response(status: StatusCode, v: &Value) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(v.to_string()))
        .unwrap_or_default()
}

fn ndjson(lines: Vec<String>) -> Response {
    let body: String = lines.into_iter().map(|l| l + "\n").collect();
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from(body))
        .unwrap_or_default()
}

/// One error event; with `cut`, the body breaks off after it (no terminating chunk).
fn ndjson_error(event: String, cut: bool) -> Response {
    use futures_util::StreamExt;
    if !cut {
        return ndjson(vec![event]);
    }
    let s = stream::iter([
        Ok(Bytes::from(event + "\n")),
        Err(std::io::Error::other("cut after the error event")),
    ])
    .then(|item| async move {
        if item.is_err() {
            // Let the event reach the client before the connection breaks.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        item
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(s))
        .unwrap_or_default()
}

/// Raw text chunks as `text/event-stream` (no `data:` framing), like code suggestions.
fn text_stream(rx: mpsc::Receiver<Delta>) -> Response {
    let s = stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await? {
                Delta::Text(t) => return Some((Ok::<_, std::io::Error>(Bytes::from(t)), rx)),
                Delta::Usage(_) => continue,
                Delta::Error(e) => return Some((Err(std::io::Error::other(e)), rx)),
            }
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(s))
        .unwrap_or_default()
}

/// A raw-text stream whose upstream failed before its first token: the AI gateway has
/// already answered 200 `text/event-stream` by then, and a raw-text stream has no way
/// to carry an error, so the body breaks off (no terminating chunk) without a byte.
fn broken_text_stream(why: &str) -> Response {
    let why = why.to_owned();
    let s = stream::once(async move {
        // Let the head reach the client first, as it has from the real gateway.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        Err::<Bytes, _>(std::io::Error::other(why))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(s))
        .unwrap_or_default()
}

/// Chat deltas as ndjson events; the finish marker and the `usage` event come last.
fn ndjson_stream(rx: mpsc::Receiver<Delta>, broken: bool, cut: bool) -> Response {
    struct St {
        rx: mpsc::Receiver<Delta>,
        n: usize,
        usage: Option<Value>,
        done: bool,
        cut: bool,
    }
    let st = St {
        rx,
        n: 0,
        usage: None,
        done: false,
        cut: false,
    };
    let s = stream::unfold(st, move |mut st| async move {
        loop {
            if st.cut {
                st.cut = false;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                return Some((Err(std::io::Error::other("cut after the error event")), st));
            }
            if st.done {
                return None;
            }
            let line = match st.rx.recv().await {
                Some(Delta::Text(t)) if broken && st.n == 1 => {
                    format!(
                        "{{\"type\": \"final_answer_delta\", \"data\": {{\"text\": {}\n",
                        Value::String(t)
                    )
                }
                Some(Delta::Text(t)) => {
                    json!({"type": "final_answer_delta", "data": {"text": t, "finish_reason": null}}).to_string() + "\n"
                }
                Some(Delta::Usage(u)) => {
                    st.usage = Some(u);
                    continue;
                }
                Some(Delta::Error(e)) => {
                    st.done = true;
                    st.cut = cut;
                    json!({"type": "error", "data": {"message": e, "retryable": false}}).to_string() + "\n"
                }
                None => {
                    st.done = true;
                    let mut end = json!({"type": "final_answer_delta", "data": {"text": "", "finish_reason": "stop"}})
                        .to_string()
                        + "\n";
                    if let Some(u) = st.usage.take() {
                        end += &(json!({"type": "usage", "data": u}).to_string() + "\n");
                    }
                    end
                }
            };
            st.n += 1;
            return Some((Ok::<_, std::io::Error>(Bytes::from(line)), st));
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(s))
        .unwrap_or_default()
}
