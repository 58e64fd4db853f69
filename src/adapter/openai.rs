//! The `direct` adapter: gateprobe talks straight to a model endpoint the way the AI
//! gateway will: OpenAI-compatible servers (`GET {endpoint}/models`, `POST
//! {endpoint}/chat/completions`), Azure deployments, and the Bedrock runtime's
//! Converse operations, plain and streaming.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{MAX_REPLY, TransportError, read_body};

/// A raw HTTP exchange, for the checks to judge.
#[derive(Clone, Debug, Default)]
pub struct Exchange {
    /// Method and URL path, for evidence.
    pub path: String,
    /// Status.
    pub status: u16,
    /// Content type.
    pub content_type: Option<String>,
    /// Body text (lossy, truncated to [`MAX_REPLY`]).
    pub body: String,
    /// The body's bytes (event streams are binary).
    pub bytes: Vec<u8>,
    /// Time to the end of the body.
    pub elapsed: Duration,
    /// What was wrong with the body itself (an unrequested encoding, bytes that are not
    /// UTF-8, more than [`MAX_REPLY`]), if anything.
    pub defect: Option<String>,
}

/// What [`OpenAiClient::post`] sends.
#[derive(Clone, Copy, Debug)]
pub struct Post<'a> {
    /// Under the endpoint: `chat/completions` or `completions`.
    pub path: &'a str,
    /// The model's key.
    pub key: Option<&'a str>,
    /// An Azure deployment to call instead of `{base}/{path}`.
    pub deployment: Option<&'a str>,
    /// The body.
    pub body: &'a Value,
    /// Read a successful reply only to its first event.
    pub head: bool,
}

/// A client of one OpenAI-compatible endpoint.
#[derive(Clone, Debug)]
pub struct OpenAiClient {
    client: reqwest::Client,
    timeout: Duration,
}

impl OpenAiClient {
    /// A client with a per-request timeout.
    pub fn new(timeout: Duration, tls: &super::Tls) -> reqwest::Result<Self> {
        let client = super::http_client(timeout, tls, false)?;
        Ok(OpenAiClient { client, timeout })
    }

    async fn send(&self, b: reqwest::RequestBuilder, key: Option<&str>) -> Result<Exchange, TransportError> {
        self.send_read(b, key, false).await
    }

    /// Sends; with `head`, reads a successful reply only to its first event.
    async fn send_read(
        &self,
        b: reqwest::RequestBuilder,
        key: Option<&str>,
        head: bool,
    ) -> Result<Exchange, TransportError> {
        let b = match key {
            Some(k) => b.bearer_auth(k),
            None => b,
        };
        let start = Instant::now();
        let resp = b
            .timeout(self.timeout)
            .send()
            .await
            .map_err(TransportError::from_reqwest)?;
        let path = resp.url().path().to_owned();
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let encoding = super::encoding(&resp);
        let body = if head && status == 200 {
            super::read_head(resp, 64 * 1024).await
        } else {
            read_body(resp, MAX_REPLY).await
        };
        if let Some(e) = body.cut {
            return Err(e);
        }
        let (bytes, truncated) = (body.bytes, body.truncated);
        // Event streams are binary; only text bodies must be UTF-8.
        let text = !content_type.as_deref().is_some_and(|c| c.contains("eventstream"));
        let defect = super::defect(encoding.as_deref(), if text { &bytes } else { b"" }, truncated);
        Ok(Exchange {
            defect,
            path,
            status,
            content_type,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
            elapsed: start.elapsed(),
        })
    }

    /// `GET {base}/models`.
    pub async fn models(
        &self,
        base: &str,
        key: Option<&str>,
        correlation_id: &str,
    ) -> Result<Exchange, TransportError> {
        self.send(
            self.client
                .get(format!("{base}/models"))
                .header("X-Request-ID", correlation_id),
            key,
        )
        .await
    }

    /// `POST {base}/chat/completions` with a prompt carrying `correlation_id`.
    pub async fn chat(
        &self,
        base: &str,
        key: Option<&str>,
        model: &str,
        stream: bool,
        correlation_id: &str,
    ) -> Result<Exchange, TransportError> {
        let b = self
            .client
            .post(format!("{base}/chat/completions"))
            .header("X-Request-ID", correlation_id)
            .json(&chat_body(model, stream, correlation_id));
        self.send(b, key).await
    }
}

impl OpenAiClient {
    /// A `POST` of a JSON body to an OpenAI-compatible server: `{base}/{path}` with a
    /// bearer key, or, for an Azure deployment, its deployment path with `api-key`.
    /// With `head`, a successful (streamed) reply is read only to its first event: enough
    /// to know the server took the request, without waiting for a long answer.
    pub async fn post(&self, base: &str, p: Post<'_>, correlation_id: &str) -> Result<Exchange, TransportError> {
        let Post {
            path,
            key,
            deployment,
            body,
            head,
        } = p;
        let b = match deployment {
            None => self.client.post(format!("{base}/{path}")),
            Some(d) => {
                let b = self.client.post(format!(
                    "{base}/openai/deployments/{d}/{path}?api-version={}",
                    crate::wire::azure::API_VERSION
                ));
                match key {
                    Some(k) => b.header("api-key", k),
                    None => b,
                }
            }
        };
        let b = b.header("X-Request-ID", correlation_id).json(body);
        let bearer = if deployment.is_none() { key } else { None };
        self.send_read(b, bearer, head).await
    }

    /// Azure: `POST {base}/openai/deployments/{deployment}/chat/completions?api-version=…`
    /// with `api-key`.
    pub async fn azure_chat(
        &self,
        base: &str,
        key: Option<&str>,
        deployment: &str,
        stream: bool,
        correlation_id: &str,
    ) -> Result<Exchange, TransportError> {
        let url = format!(
            "{base}/openai/deployments/{deployment}/chat/completions?api-version={}",
            crate::wire::azure::API_VERSION
        );
        let mut b = self
            .client
            .post(url)
            .header("X-Request-ID", correlation_id)
            .json(&chat_body(deployment, stream, correlation_id));
        if let Some(k) = key {
            b = b.header("api-key", k);
        }
        self.send(b, None).await
    }

    /// Bedrock: `POST {base}/model/{id}/converse[-stream]`, SigV4-signed.
    pub async fn bedrock_converse(
        &self,
        base: &str,
        signer: Option<(&crate::wire::aws::sigv4::Credentials, &str)>,
        model: &str,
        stream: bool,
        correlation_id: &str,
    ) -> Result<Exchange, TransportError> {
        let id = model.replace(':', "%3A").replace('/', "%2F");
        let op = if stream { "converse-stream" } else { "converse" };
        let url = format!("{base}/model/{id}/{op}");
        let body = json!({"messages": [{"role": "user", "content": [{"text": format!("Write a Python function that adds two numbers. [{correlation_id}]")}]}],
                          "inferenceConfig": {"maxTokens": 32, "temperature": 0}})
        .to_string()
        .into_bytes();
        let b = super::model::signed(self.client.post(&url), &url, body, signer)?;
        self.send(b, None).await
    }
}

fn chat_body(model: &str, stream: bool, correlation_id: &str) -> Value {
    let mut body = json!({
        "model": model,
        "messages": [{"role": "user", "content": format!("Write a Python function that adds two numbers. [{correlation_id}]")}],
        "max_tokens": 32,
        "temperature": 0,
        "stream": stream,
    });
    if stream {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}
