//! The model adapter: the requests a gateway sends a model server for a Duo feature,
//! sent straight to the model's endpoint by a load phase (`kind: direct`, and the
//! direct half of `compare_direct`). vLLM and OpenAI-compatible servers get chat
//! completions, or legacy completions with the family's fill-in-the-middle prompt for
//! code completions; Azure OpenAI deployments chat with `api-key`; the Bedrock runtime
//! gets Converse, or `invoke` in Mistral's format for Mistral ids (as the AI gateway
//! calls them), SigV4-signed. Replies are timed like any load reply, with the server's
//! `usage`.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::timed::{Framing, Timed};
use super::{Reply, TransportError};
use crate::feature::{Endpoint, Feature};
use crate::identifier::Provider;
use crate::wire::aws::sigv4::Credentials;
use crate::wire::bedrock::Operation;
use crate::wire::prompt::{self, Generation, Prompt};

/// One model endpoint and how to call it.
#[derive(Clone, Debug)]
pub struct ModelTarget {
    /// The provider's wire.
    pub provider: Provider,
    /// The endpoint (OpenAI-compatible: ending in `/v1`; Azure: the resource; Bedrock:
    /// the runtime), without a trailing slash.
    pub base: String,
    /// Bearer key (OpenAI-compatible), `api-key` (Azure).
    pub key: Option<String>,
    /// Bedrock: credentials and region that sign.
    pub aws: Option<(Credentials, String)>,
    /// Served model name, deployment or Bedrock model id.
    pub model: String,
    /// Model family (picks the fill-in-the-middle tokens).
    pub family: String,
}

/// A pooled client of model endpoints.
#[derive(Clone, Debug)]
pub struct ModelClient {
    client: reqwest::Client,
    timeout: Duration,
}

impl ModelClient {
    /// A client with connection reuse and a per-request timeout.
    pub fn new(timeout: Duration, tls: &super::Tls) -> reqwest::Result<Self> {
        Ok(ModelClient {
            client: super::http_client(timeout, tls, true)?,
            timeout,
        })
    }

    /// Sends `feature`'s model request for prompt `p` to `t`, timed as a load run
    /// times it; `gap` receives each inter-token gap.
    pub async fn send_timed(
        &self,
        t: &ModelTarget,
        feature: &Feature,
        (p, g): (&Prompt, Generation),
        stream: bool,
        cid: &str,
        gap: &mut impl FnMut(Duration),
    ) -> Timed {
        let sent = Instant::now();
        let request = match self.request(t, feature, (p, g), stream, cid) {
            Ok(r) => r,
            Err(_) => {
                return Timed {
                    sent,
                    error: Some(crate::metrics::ErrorClass::Connect),
                    ..Timed::default()
                };
            }
        };
        let response = request.send().await;
        let bedrock = t.provider == Provider::Bedrock;
        let framing = |sse: bool| match (stream, bedrock) {
            (true, true) => Some(Framing::EventStream),
            (true, false) => sse.then_some(Framing::Sse),
            (false, true) => Some(Framing::Whole(&parse_bedrock)),
            (false, false) => Some(Framing::Whole(&super::proxy::parse)),
        };
        super::timed::receive(sent, response, framing, gap).await
    }

    fn request(
        &self,
        t: &ModelTarget,
        feature: &Feature,
        (p, g): (&Prompt, Generation),
        stream: bool,
        cid: &str,
    ) -> Result<reqwest::RequestBuilder, TransportError> {
        let b = match t.provider {
            Provider::CustomOpenai => {
                let (path, body) = if feature.endpoint == Endpoint::CodeCompletions {
                    (
                        "completions",
                        prompt::openai_completion(&t.model, &t.family, p, g, stream),
                    )
                } else {
                    ("chat/completions", prompt::openai_chat(&t.model, p, g, stream))
                };
                let b = self.client.post(format!("{}/{path}", t.base)).json(&body);
                match &t.key {
                    Some(k) => b.bearer_auth(k),
                    None => b,
                }
            }
            Provider::Azure => {
                let url = format!(
                    "{}{}?api-version={}",
                    t.base,
                    crate::wire::azure::chat_path("", &t.model),
                    crate::wire::azure::API_VERSION
                );
                // Azure refuses vLLM's sampling extensions: only `max_tokens` goes.
                let body = prompt::openai_chat(&t.model, p, Generation { force: false, ..g }, stream);
                let b = self.client.post(url).json(&body);
                match &t.key {
                    Some(k) => b.header("api-key", k),
                    None => b,
                }
            }
            Provider::Bedrock => {
                let op = Operation::for_model(&t.model, stream);
                let body = match op {
                    Operation::Invoke | Operation::InvokeStream => prompt::mistral_invoke(p, g),
                    _ => prompt::converse(p, g),
                };
                let url = format!("{}{}", t.base, crate::wire::bedrock::path(&t.model, op));
                let body = body.to_string().into_bytes();
                let creds = t.aws.as_ref().map(|(c, r)| (c, r.as_str()));
                signed(self.client.post(&url), &url, body, creds)?
            }
        };
        Ok(b.header("X-Request-ID", cid).timeout(self.timeout))
    }
}

/// A Bedrock request with its JSON body, SigV4-signed with `signer` when given.
pub(crate) fn signed(
    b: reqwest::RequestBuilder,
    url: &str,
    body: Vec<u8>,
    signer: Option<(&Credentials, &str)>,
) -> Result<reqwest::RequestBuilder, TransportError> {
    let mut b = b.header("content-type", "application/json");
    if let Some((creds, region)) = signer {
        let request_error = |message: String| TransportError {
            kind: "request".into(),
            message,
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| request_error(e.to_string()))?;
        let host = match parsed.port() {
            Some(p) => format!("{}:{p}", parsed.host_str().unwrap_or_default()),
            None => parsed.host_str().unwrap_or_default().to_owned(),
        };
        let headers = [("content-type", "application/json"), ("host", host.as_str())];
        let parts = crate::wire::aws::sigv4::RequestParts {
            method: "POST",
            raw_path: parsed.path(),
            raw_query: parsed.query().unwrap_or(""),
            headers: &headers,
            body: &body,
        };
        let signed = crate::wire::aws::sigv4::sign(&parts, creds, region, std::time::SystemTime::now())
            .map_err(|e| request_error(e.to_string()))?;
        for (k, v) in signed.iter() {
            b = b.header(k, v);
        }
    }
    Ok(b.body(body))
}

/// Fills `content` and `error` from a Bedrock JSON reply: Converse's message, Mistral
/// `invoke`'s outputs or Anthropic `invoke`'s content.
pub fn parse_bedrock(r: &mut Reply, _: &[u8]) {
    if !(200..300).contains(&r.status) {
        let msg = serde_json::from_str::<Value>(&r.body)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| crate::text::trunc(&r.body, 200));
        r.error = Some(format!("HTTP {}: {msg}", r.status));
        return;
    }
    match serde_json::from_str::<Value>(&r.body) {
        Ok(v) => {
            r.content = v
                .pointer("/output/message/content/0/text")
                .or_else(|| v.pointer("/outputs/0/text"))
                .or_else(|| v.pointer("/content/0/text"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
        }
        Err(e) => super::not_json(r, &e),
    }
}
