//! The reference gateway's Bedrock leg: the request the AI gateway sends to the Bedrock
//! runtime (invoke with Mistral's prompt format for Mistral-family ids, Converse
//! otherwise), SigV4-signed with the gateway's AWS credentials and region, and the
//! parsing of replies and event-stream streams.

use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::State;
use super::fault::Fault;
use super::upstream::{Delta, Upstream, Wire};
use crate::wire::aws::{eventstream, sigv4};

/// The gateway's AWS settings (`AWS_BEDROCK_RUNTIME_ENDPOINT`, `AWS_REGION_NAME`,
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, and `AWS_SESSION_TOKEN` for temporary
/// credentials).
#[derive(Clone, Debug)]
pub struct AwsSettings {
    /// Base URL of the Bedrock runtime.
    pub runtime_endpoint: String,
    /// Region to sign for.
    pub region: String,
    /// Credentials to sign with.
    pub credentials: sigv4::Credentials,
}

impl AwsSettings {
    /// The settings the AI gateway reads from its environment, when all are set.
    pub fn from_env() -> Option<Self> {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        Some(AwsSettings {
            runtime_endpoint: var("AWS_BEDROCK_RUNTIME_ENDPOINT")?,
            region: var("AWS_REGION_NAME").or_else(|| var("AWS_REGION"))?,
            credentials: {
                let c = sigv4::Credentials::new(var("AWS_ACCESS_KEY_ID")?, var("AWS_SECRET_ACCESS_KEY")?);
                match var("AWS_SESSION_TOKEN") {
                    Some(t) => c.with_session_token(t),
                    None => c,
                }
            },
        })
    }
}

/// Builds and signs the Bedrock request.
pub(super) fn request(
    state: &State,
    aws: &AwsSettings,
    up: &Upstream,
    messages: &[Value],
    max_tokens: u32,
    stream: bool,
) -> reqwest::RequestBuilder {
    let text: String = messages
        .iter()
        .filter_map(|m| m.get("content").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("\n");
    use crate::wire::bedrock::Operation;
    // The wire was chosen with the model (and a fault may have swapped it).
    let invoke = up.wire == Wire::BedrockInvoke;
    let op = match (invoke, stream) {
        (true, true) => Operation::InvokeStream,
        (true, false) => Operation::Invoke,
        (false, true) => Operation::ConverseStream,
        (false, false) => Operation::Converse,
    };
    let body = if invoke {
        json!({"prompt": format!("<s>[INST] {text} [/INST]"), "max_tokens": max_tokens,
               "stop": ["[INST]"], "temperature": 0.1})
    } else {
        json!({"messages": [{"role": "user", "content": [{"text": text}]}],
               "inferenceConfig": {"maxTokens": max_tokens, "temperature": 0.1}})
    };
    let base = aws.runtime_endpoint.trim_end_matches('/');
    let url = format!("{base}{}", crate::wire::bedrock::path(&up.model, op));
    let body = body.to_string().into_bytes();
    let mut b = state
        .client
        .post(&url)
        .timeout(state.settings.upstream_timeout)
        .header("content-type", "application/json")
        .header(
            "accept",
            if stream {
                "application/vnd.amazon.eventstream"
            } else {
                "application/json"
            },
        );
    let has = |f| state.settings.faults.contains(&f);
    if !has(Fault::UnsignedBedrock) {
        let host = reqwest::Url::parse(&url)
            .ok()
            .and_then(|u| {
                u.host_str().map(|h| match u.port() {
                    Some(p) => format!("{h}:{p}"),
                    None => h.to_owned(),
                })
            })
            .unwrap_or_default();
        let path = url
            .split_once("://")
            .and_then(|(_, r)| r.find('/').map(|i| r[i..].to_owned()))
            .unwrap_or_default();
        let headers = [("content-type", "application/json"), ("host", host.as_str())];
        let region = if has(Fault::BedrockWrongRegion) {
            if aws.region == "us-west-2" {
                "eu-west-1".to_owned()
            } else {
                "us-west-2".to_owned()
            }
        } else {
            aws.region.clone()
        };
        let parts = sigv4::RequestParts {
            method: "POST",
            raw_path: &path,
            raw_query: "",
            headers: &headers,
            body: &body,
        };
        if let Ok(signed) = sigv4::sign(&parts, &aws.credentials, &region, SystemTime::now()) {
            for (k, v) in signed.iter() {
                b = b.header(k, v);
            }
        }
    }
    b.body(body)
}

/// The text and usage of a non-streaming Bedrock reply.
pub(super) fn parse_reply(wire: Wire, v: &Value) -> (String, Value) {
    match wire {
        Wire::BedrockInvoke => {
            let text = v
                .pointer("/outputs/0/text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            (text, Value::Null)
        }
        _ => {
            let text = v
                .pointer("/output/message/content/0/text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            (text, v.get("usage").map_or(Value::Null, openai_usage))
        }
    }
}

/// Converse usage (`inputTokens`, `outputTokens`, `totalTokens`) in the OpenAI shape
/// the gateway's clients read (`prompt_tokens`, `completion_tokens`, `total_tokens`).
fn openai_usage(u: &Value) -> Value {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    serde_json::json!({
        "prompt_tokens": n("inputTokens"),
        "completion_tokens": n("outputTokens"),
        "total_tokens": n("totalTokens"),
    })
}

/// Reads an event-stream reply, sending text deltas into `tx`.
pub(super) async fn pump(resp: reqwest::Response, tx: mpsc::Sender<Delta>, idle: Duration) {
    let mut body = resp.bytes_stream();
    let mut decoder = eventstream::Decoder::new();
    let mut messages = Vec::new();
    loop {
        let chunk = match tokio::time::timeout(idle, body.next()).await {
            Err(_) => return send(&tx, Delta::Error("upstream stream timed out".into())).await,
            Ok(None) => {
                if let Err(e) = decoder.finish() {
                    send(&tx, Delta::Error(format!("upstream event stream broke: {e}"))).await;
                }
                return;
            }
            Ok(Some(Err(e))) => {
                return send(
                    &tx,
                    Delta::Error(format!(
                        "APIConnectionError: upstream stream broke: {}",
                        e.without_url()
                    )),
                )
                .await;
            }
            Ok(Some(Ok(c))) => c,
        };
        if let Err(e) = decoder.feed(&chunk, &mut messages) {
            return send(&tx, Delta::Error(format!("upstream event stream broke: {e}"))).await;
        }
        for m in messages.drain(..) {
            if m.message_type() == Some("exception") {
                let kind = m.exception_type().unwrap_or("exception").to_owned();
                return send(
                    &tx,
                    Delta::Error(format!("upstream {kind}: {}", String::from_utf8_lossy(&m.payload))),
                )
                .await;
            }
            let Ok(v) = serde_json::from_slice::<Value>(&m.payload) else {
                return send(
                    &tx,
                    Delta::Error("APIConnectionError: upstream sent a malformed event".into()),
                )
                .await;
            };
            let delta = match m.event_type() {
                Some("chunk") => {
                    let Some(inner) = crate::wire::bedrock::chunk_json(&v) else {
                        return send(&tx, Delta::Error("upstream chunk is not base64 JSON".into())).await;
                    };
                    inner
                        .pointer("/outputs/0/text")
                        .or_else(|| inner.pointer("/delta/text"))
                        .and_then(Value::as_str)
                        .map(|t| Delta::Text(t.to_owned()))
                }
                Some("contentBlockDelta") => v
                    .pointer("/delta/text")
                    .and_then(Value::as_str)
                    .map(|t| Delta::Text(t.to_owned())),
                Some("metadata") => v.get("usage").map(|u| Delta::Usage(openai_usage(u))),
                _ => None,
            };
            if let Some(d) = delta.filter(|d| !matches!(d, Delta::Text(t) if t.is_empty()))
                && tx.send(d).await.is_err()
            {
                return;
            }
        }
    }
}

async fn send(tx: &mpsc::Sender<Delta>, d: Delta) {
    let _ = tx.send(d).await;
}

#[cfg(test)]
mod tests {
    use super::{Wire, parse_reply};

    #[test]
    fn converse_usage_is_passed_on_in_the_openai_shape() {
        let reply = serde_json::json!({
            "output": {"message": {"content": [{"text": "hi"}]}},
            "usage": {"inputTokens": 7, "outputTokens": 3, "totalTokens": 10},
        });
        let (text, usage) = parse_reply(Wire::BedrockConverse, &reply);
        assert_eq!(text, "hi");
        assert_eq!(
            usage,
            serde_json::json!({"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10})
        );
    }
}
