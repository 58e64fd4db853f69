//! The Bedrock runtime mock, talked to by independent AWS code: requests signed with
//! the AWS SDK's SigV4 signer, streams decoded (CRCs verified) by the AWS SDK's
//! event-stream decoder.

use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use aws_smithy_eventstream::frame::read_message_from;
use base64::Engine;
use gateprobe::mock::journal::Journal;
use gateprobe::server::ServerHost;
use serde_json::{Value, json};

const KEY_ID: &str = "AKIDMOCKTEST000001";
const SECRET: &str = "mockSecretKeyForTests000000000000000000000";

fn scenario(faults: &str) -> String {
    format!(
        "gateway: {{kind: builtin}}\nbackends:\n  br:\n    provider: bedrock\n    models: [mistral.mixtral-8x7b-instruct-v0:1, anthropic.claude-3-5-sonnet-20241022-v2:0]\n    access_key_id: {KEY_ID}\n    secret_access_key: {SECRET}\n    region: eu-central-1\n{faults}"
    )
}

struct Mock {
    _host: ServerHost,
    _mocks: Vec<gateprobe::mock::RunningMock>,
    base: String,
    journal: Arc<Journal>,
}

fn start(faults: &str) -> Mock {
    let s = gateprobe::scenario::load_str(Path::new("b.yaml"), &scenario(faults), &|_| None).expect("valid");
    let host = ServerHost::new(1).expect("host");
    let journal = Arc::new(Journal::new(Instant::now(), 100));
    let mocks = gateprobe::mock::start_all(&host, &s.backends, &journal).expect("start");
    let base = mocks[0].server.url();
    Mock {
        _host: host,
        _mocks: mocks,
        base,
        journal,
    }
}

/// Signs with the AWS SDK's signer, as a Bedrock client would.
fn aws_signed(url: &str, body: &[u8], region: &str, secret: &str) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let identity = aws_credential_types::Credentials::new(KEY_ID, secret, None, None, "test").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("bedrock")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("params")
        .into();
    let host = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("host")
        .to_owned();
    let headers = [("content-type", "application/json"), ("host", host.as_str())];
    let req = SignableRequest::new("POST", url, headers.iter().copied(), SignableBody::Bytes(body)).expect("signable");
    let (instructions, _) = sign(req, &params).expect("sign").into_parts();
    instructions
        .headers()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

async fn call(url: &str, body: &Value, region: &str, secret: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let bytes = body.to_string().into_bytes();
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("c")
        .post(url)
        .header("content-type", "application/json");
    for (k, v) in aws_signed(url, &bytes, region, secret) {
        b = b.header(k, v);
    }
    let r = b.body(bytes).send().await.expect("send");
    let h = r.headers().clone();
    (r.status().as_u16(), h, r.bytes().await.expect("body").to_vec())
}

fn converse() -> Value {
    json!({"messages": [{"role": "user", "content": [{"text": "hi [gp-0000beef-3]"}]}], "inferenceConfig": {"maxTokens": 8}})
}

/// Decodes a whole event stream with the AWS SDK's decoder (which verifies both CRCs).
fn their_decode(mut bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let m = read_message_from(&mut bytes).map_err(|e| e.to_string())?;
        let event = m
            .headers()
            .iter()
            .find(|h| h.name().as_str() == ":event-type")
            .and_then(|h| h.value().as_string().ok().map(|s| s.as_str().to_owned()))
            .unwrap_or_default();
        out.push((event, m.payload().to_vec()));
    }
    Ok(out)
}

#[tokio::test]
async fn converse_stream_signed_by_the_sdk_decodes_with_the_sdk() {
    let m = start("");
    let url = format!(
        "{}/model/apac.anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse-stream",
        m.base
    );
    let (s, h, body) = call(&url, &converse(), "eu-central-1", SECRET).await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(h["content-type"], "application/vnd.amazon.eventstream");
    let events = their_decode(&body).expect("valid frames");
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names.first(), Some(&"messageStart"));
    assert_eq!(
        &names[names.len() - 3..],
        ["contentBlockStop", "messageStop", "metadata"]
    );
    let text: String = events
        .iter()
        .filter(|(e, _)| e == "contentBlockDelta")
        .map(|(_, p)| {
            serde_json::from_slice::<Value>(p).expect("json")["delta"]["text"]
                .as_str()
                .expect("text")
                .to_owned()
        })
        .collect();
    assert!(!text.is_empty());
    // The journal keeps the raw path and ties the request to its correlation id.
    let e = m.journal.for_correlation("gp-0000beef-3");
    assert!(e[0].path.contains("%3A0/converse-stream"));
}

#[tokio::test]
async fn signatures_verify_in_load_mode_too() {
    // Load phases and `gateprobe mock` journal without headers; the signature is
    // checked on the request itself, so signed calls still succeed.
    let m = start("");
    m.journal.set_light(true);
    let url = format!("{}/model/anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse", m.base);
    let (s, _, body) = call(&url, &converse(), "eu-central-1", SECRET).await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    let (s, _, _) = call(&url, &converse(), "eu-central-1", "wrong-secret").await;
    assert_eq!(s, 403);
}

#[tokio::test]
async fn invoke_stream_chunks_are_base64_json_with_metrics_last() {
    let m = start("");
    let url = format!(
        "{}/model/mistral.mixtral-8x7b-instruct-v0:1/invoke-with-response-stream",
        m.base
    );
    let body = json!({"prompt": "<s>[INST] hi [/INST]", "max_tokens": 5, "stop": [], "temperature": 0.1});
    let (s, _, bytes) = call(&url, &body, "eu-central-1", SECRET).await;
    assert_eq!(s, 200);
    let events = their_decode(&bytes).expect("valid frames");
    let chunks: Vec<Value> = events
        .iter()
        .map(|(e, p)| {
            assert_eq!(e, "chunk");
            let b64 = serde_json::from_slice::<Value>(p).expect("json")["bytes"]
                .as_str()
                .expect("bytes")
                .to_owned();
            serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(b64).expect("b64")).expect("inner")
        })
        .collect();
    assert_eq!(chunks.len(), 5);
    assert!(chunks.last().expect("last")["amazon-bedrock-invocationMetrics"]["outputTokenCount"].is_number());
    // Five tokens of a max_tokens of 5: cut there, as Mistral says it.
    assert_eq!(chunks.last().expect("last")["outputs"][0]["stop_reason"], "length");
    // Non-streaming invoke answers {"outputs": [...]}.
    let url = format!("{}/model/mistral.mixtral-8x7b-instruct-v0:1/invoke", m.base);
    let (s, _, bytes) = call(&url, &body, "eu-central-1", SECRET).await;
    let v: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(s, 200);
    assert!(v["outputs"][0]["text"].is_string());
}

/// The inner JSON of each `chunk` event of an invoke stream, decoded by the AWS SDK.
fn invoke_chunks(bytes: &[u8]) -> Vec<Value> {
    their_decode(bytes)
        .expect("valid frames")
        .iter()
        .map(|(e, p)| {
            assert_eq!(e, "chunk");
            let b64 = serde_json::from_slice::<Value>(p).expect("json")["bytes"]
                .as_str()
                .expect("bytes")
                .to_owned();
            serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(b64).expect("b64")).expect("inner")
        })
        .collect()
}

#[tokio::test]
async fn anthropic_invoke_streams_carry_the_whole_messages_event_sequence() {
    let m = start("");
    let url = format!(
        "{}/model/anthropic.claude-3-5-sonnet-20241022-v2:0/invoke-with-response-stream",
        m.base
    );
    for (max_tokens, stop) in [(3, "max_tokens"), (1000, "end_turn")] {
        let body = json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": max_tokens,
                          "messages": [{"role": "user", "content": "hi"}]});
        let (s, _, bytes) = call(&url, &body, "eu-central-1", SECRET).await;
        assert_eq!(s, 200);
        let chunks = invoke_chunks(&bytes);
        let types: Vec<&str> = chunks.iter().map(|c| c["type"].as_str().unwrap_or("?")).collect();
        let deltas = types.iter().filter(|t| **t == "content_block_delta").count();
        assert!(deltas >= 1);
        let mut expected = vec!["message_start", "content_block_start"];
        expected.extend(std::iter::repeat_n("content_block_delta", deltas));
        expected.extend(["content_block_stop", "message_delta", "message_stop"]);
        assert_eq!(types, expected);
        assert_eq!(chunks[0]["message"]["role"], "assistant");
        assert!(
            chunks[0]["message"]["id"]
                .as_str()
                .unwrap_or("")
                .starts_with("msg_bdrk_")
        );
        let delta = &chunks[chunks.len() - 2];
        assert_eq!(delta["delta"]["stop_reason"], stop, "max_tokens {max_tokens}");
        assert_eq!(delta["usage"]["output_tokens"], deltas);
        assert!(chunks.last().expect("last")["amazon-bedrock-invocationMetrics"]["outputTokenCount"].is_number());
    }
    // Converse says the same in its words.
    let url = format!("{}/model/anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse", m.base);
    let mut body = converse();
    body["inferenceConfig"] = json!({"maxTokens": 2});
    let (s, _, bytes) = call(&url, &body, "eu-central-1", SECRET).await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(v["stopReason"], "max_tokens");
}

#[tokio::test]
async fn bad_signatures_and_models_get_bedrock_errors() {
    let m = start("");
    let url = format!("{}/model/anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse", m.base);
    let (s, h, body) = call(&url, &converse(), "eu-central-1", "wrong-secret").await;
    assert_eq!(s, 403);
    assert!(
        h["x-amzn-errortype"]
            .to_str()
            .expect("h")
            .starts_with("InvalidSignatureException")
    );
    assert!(String::from_utf8_lossy(&body).contains("The request signature we calculated does not match"));
    let (s, _, body) = call(&url, &converse(), "us-east-1", SECRET).await;
    assert_eq!(
        s,
        403,
        "a signature for another region is refused: {}",
        String::from_utf8_lossy(&body)
    );
    let other = format!("{}/model/meta.llama3-70b-instruct-v1%3A0/converse", m.base);
    let (s, h, _) = call(&other, &converse(), "eu-central-1", SECRET).await;
    assert_eq!(s, 403);
    assert!(
        h["x-amzn-errortype"]
            .to_str()
            .expect("h")
            .starts_with("AccessDeniedException")
    );
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("c")
        .post(&url)
        .json(&converse())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 403, "unsigned requests are refused");
}

#[tokio::test]
async fn corrupt_crc_fault_is_caught_by_the_sdk_decoder() {
    let m = start("    faults: [{do: corrupt_crc}]\n");
    let url = format!(
        "{}/model/anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse-stream",
        m.base
    );
    let (s, _, bytes) = call(&url, &converse(), "eu-central-1", SECRET).await;
    assert_eq!(s, 200);
    let err = their_decode(&bytes).expect_err("a corrupt frame");
    assert!(err.contains("checksum"), "{err}");
    assert!(gateprobe::wire::aws::eventstream::decode_all(&bytes).is_err());
}
