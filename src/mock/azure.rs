//! Azure OpenAI on top of the OpenAI-style core: deployment paths, the required
//! `api-version` (one the resource serves: the backend's `api_versions`, by default
//! [`crate::wire::azure::API_VERSIONS`]), `api-key` (or Bearer) auth, content-filter
//! results, and Azure's error bodies (`{"error": {"code": "<string>", "message"}}`).

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::openai::{Kind, OpenAiMock, completion, json_response};

/// Routes an Azure OpenAI request.
pub(super) async fn route(
    mock: &OpenAiMock,
    (method, path, query): (&Method, &str, Option<&str>),
    headers: &HeaderMap,
    body: &[u8],
    arrival: Instant,
) -> Response {
    if path == "/health" {
        return Response::new(Body::empty());
    }
    let version = crate::wire::azure::api_version_of(query);
    if path == "/openai/models" || path == "/openai/v1/models" {
        // The GA v1 surface needs no api-version; the dated one does.
        if path == "/openai/models" && version.is_none() {
            return not_found_because("Resource not found: the request has no api-version");
        }
        if let Err(r) = admit(mock, method, Method::GET, headers) {
            return r;
        }
        return models(mock);
    }
    // The GA v1 surface takes the deployment from the body and needs no api-version;
    // `preview` opts into preview features, a dated version is refused.
    let (deployment, kind) = if path == "/openai/v1/chat/completions" {
        if let Some(v) = version.filter(|v| !matches!(*v, "preview" | "latest")) {
            return super::journal::with_reason(
                json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"error": {"code": "BadRequest", "message": "API version not supported"}}),
                ),
                &format!("API version not supported: the v1 surface takes no dated api-version (got `{v}`)"),
            );
        }
        (None, Kind::Chat)
    } else {
        let Some(rest) = path.strip_prefix("/openai/deployments/") else {
            return not_found();
        };
        let Some((dep, op)) = rest.split_once('/') else {
            return not_found();
        };
        let kind = match op {
            "chat/completions" => Kind::Chat,
            "completions" => Kind::Text,
            _ => return not_found(),
        };
        // Without an api-version, or with one the resource does not serve, Azure
        // answers a 404, not a 400: the same body as for a wrong path.
        match version {
            None => return not_found_because("Resource not found: the request has no api-version"),
            Some(v) if !mock.api_versions.iter().any(|a| a == v) => {
                return not_found_because(&format!(
                    "Resource not found: api-version `{v}` is not one this resource serves"
                ));
            }
            Some(_) => {}
        }
        (Some(dep), kind)
    };
    if let Err(r) = admit(mock, method, Method::POST, headers) {
        return r;
    }
    completion(mock, body, kind, deployment, arrival).await
}

/// The method an operation takes, then the key: Azure answers a wrong method with 405
/// before it looks at the key.
fn admit(mock: &OpenAiMock, method: &Method, want: Method, headers: &HeaderMap) -> Result<(), Response> {
    if *method != want {
        return Err(error(
            StatusCode::METHOD_NOT_ALLOWED,
            "405",
            "The requested method is not allowed.",
        ));
    }
    authorize(mock, headers)
}

/// The `api-key` (or Bearer) check every Azure operation makes.
fn authorize(mock: &OpenAiMock, headers: &HeaderMap) -> Result<(), Response> {
    let Some(key) = &mock.api_key else { return Ok(()) };
    let api_key = headers.get("api-key").and_then(|v| v.to_str().ok());
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let ok = api_key
        .or(bearer)
        .is_some_and(|got| crate::wire::secret_eq(got.as_bytes(), key.as_bytes()));
    if ok {
        Ok(())
    } else {
        Err(error(
            StatusCode::UNAUTHORIZED,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
        ))
    }
}

/// `GET /openai/models`: the resource's models, in Azure's shape (the deployments are
/// named after them here).
fn models(mock: &OpenAiMock) -> Response {
    let created = super::openai::unix_now();
    let data: Vec<Value> = mock
        .models
        .iter()
        .map(|m| {
            json!({"id": m, "object": "model", "created_at": created, "status": "succeeded",
                   "lifecycle_status": "generally-available",
                   "capabilities": {"chat_completion": true, "completion": true, "embeddings": false,
                                    "fine_tune": false, "inference": true},
                   "deprecation": {"inference": created + 365 * 86_400}})
        })
        .collect();
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    super::journal::with_reason(
        json_response(status, &json!({"error": {"code": code, "message": message}})),
        message,
    )
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "404", "Resource not found")
}

/// Azure's 404, with the mock's reason for the journal.
fn not_found_because(reason: &str) -> Response {
    super::journal::with_reason(not_found(), reason)
}

/// A deployment that does not exist.
pub(super) fn deployment_not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "DeploymentNotFound",
        "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.",
    )
}

/// A scripted error with Azure's body (and `Retry-After` for throttling).
pub(super) fn scripted_error(status: u16, retry_after: Option<Duration>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let secs = retry_after.map_or(1, |d| d.as_secs().max(1));
    let mut r = match status {
        401 => error(
            code,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint.",
        ),
        403 => error(
            code,
            "403",
            "Public access is disabled. Please configure private endpoint.",
        ),
        404 => deployment_not_found(),
        429 => error(
            code,
            "429",
            &format!(
                "Requests to the ChatCompletions_Create Operation under Azure OpenAI API have exceeded token rate limit of your current tier. Please retry after {secs} seconds."
            ),
        ),
        503 => error(
            code,
            "ServiceUnavailable",
            "The service is temporarily unable to process your request. Please try again later.",
        ),
        s if s >= 500 => error(
            code,
            "InternalServerError",
            "The server had an error processing your request.",
        ),
        s => error(code, &s.to_string(), code.canonical_reason().unwrap_or("Error")),
    };
    if retry_after.is_some()
        && let Ok(v) = header::HeaderValue::from_str(&secs.to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

fn filtered() -> Value {
    json!({"filtered": false, "severity": "safe"})
}

/// `content_filter_results` of a choice.
pub(super) fn content_filter_results() -> Value {
    json!({"hate": filtered(), "self_harm": filtered(), "sexual": filtered(), "violence": filtered()})
}

/// `prompt_filter_results` of a reply.
pub(super) fn prompt_filter_results() -> Value {
    json!([{"prompt_index": 0, "content_filter_results": content_filter_results()}])
}
