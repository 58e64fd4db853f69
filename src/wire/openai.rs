//! OpenAI-compatible servers (vLLM) and the gateways in front of them: error bodies.

use serde_json::Value;

/// The message of an error body: an OpenAI-style `error.message`, an `error` string
/// (vLLM's 401, the AI gateway's auth errors), FastAPI's `detail`, or a `message`.
pub fn error_message(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    match (v.get("error"), v.get("detail")) {
        (Some(Value::String(s)), _) => Some(s.clone()),
        (Some(e @ Value::Object(_)), _) => e.get("message").and_then(Value::as_str).map(str::to_owned),
        (_, Some(Value::String(d))) => Some(d.clone()),
        _ => v.get("message").and_then(Value::as_str).map(str::to_owned),
    }
}
