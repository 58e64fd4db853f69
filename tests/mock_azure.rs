//! The Azure OpenAI mock speaks Azure's wire format (REFERENCE §5).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use gateprobe::mock::journal::Journal;
use gateprobe::server::ServerHost;
use serde_json::{Value, json};

const SCENARIO: &str = r#"
gateway: {kind: builtin}
backends:
  az:
    provider: azure
    models: [gpt-4o-duo]
    api_key: az-key-1
"#;

async fn start() -> (ServerHost, Vec<gateprobe::mock::RunningMock>, String) {
    let s = gateprobe::scenario::load_str(Path::new("a.yaml"), SCENARIO, &|_| None).expect("valid");
    let host = ServerHost::new(1).expect("host");
    let mocks =
        gateprobe::mock::start_all(&host, &s.backends, &Arc::new(Journal::new(Instant::now(), 100))).expect("start");
    let url = mocks[0].server.url();
    (host, mocks, url)
}

async fn post(url: &str, headers: &[(&str, &str)], body: Value) -> (u16, reqwest::header::HeaderMap, String) {
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("c")
        .post(url)
        .json(&body);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let r = b.send().await.expect("send");
    let h = r.headers().clone();
    (r.status().as_u16(), h, r.text().await.expect("body"))
}

fn chat(stream: bool) -> Value {
    json!({"messages": [{"role": "user", "content": "hi"}], "stream": stream, "model": "ignored"})
}

#[tokio::test]
async fn deployments_need_api_version_and_a_key() {
    let (_h, _m, base) = start().await;
    let dep = format!("{base}/openai/deployments/gpt-4o-duo/chat/completions");
    let (s, _, b) = post(&dep, &[("api-key", "az-key-1")], chat(false)).await;
    assert_eq!(
        (s, b.as_str()),
        (404, r#"{"error":{"code":"404","message":"Resource not found"}}"#)
    );
    let versioned = format!("{dep}?api-version=2025-02-01-preview");
    let (s, _, b) = post(&versioned, &[("api-key", "wrong")], chat(false)).await;
    assert_eq!(s, 401);
    assert_eq!(serde_json::from_str::<Value>(&b).expect("json")["error"]["code"], "401");
    for auth in [("api-key", "az-key-1"), ("authorization", "Bearer az-key-1")] {
        let (s, _, b) = post(&versioned, &[auth], chat(false)).await;
        assert_eq!(s, 200, "{b}");
        let v: Value = serde_json::from_str(&b).expect("json");
        assert_eq!(v["model"], "gpt-4o-duo", "the deployment, not the body's model");
        assert!(v["prompt_filter_results"].is_array());
        assert!(v["choices"][0]["content_filter_results"].is_object());
    }
}

#[tokio::test]
async fn unknown_deployments_and_the_v1_surface() {
    let (_h, _m, base) = start().await;
    let (s, _, b) = post(
        &format!("{base}/openai/deployments/nope/chat/completions?api-version=2024-10-21"),
        &[("api-key", "az-key-1")],
        chat(false),
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(
        serde_json::from_str::<Value>(&b).expect("json")["error"]["code"],
        "DeploymentNotFound"
    );
    let mut body = chat(false);
    body["model"] = json!("gpt-4o-duo");
    let (s, _, _) = post(
        &format!("{base}/openai/v1/chat/completions"),
        &[("api-key", "az-key-1")],
        body,
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn streams_start_with_prompt_filter_results() {
    let (_h, _m, base) = start().await;
    let url = format!("{base}/openai/deployments/gpt-4o-duo/chat/completions?api-version=2025-02-01-preview");
    let (s, h, body) = post(&url, &[("api-key", "az-key-1")], chat(true)).await;
    assert_eq!(s, 200);
    assert!(h["content-type"].to_str().expect("ct").starts_with("text/event-stream"));
    let mut p = gateprobe::wire::sse::Parser::default();
    let mut ev = Vec::new();
    p.feed(body.as_bytes(), &mut ev);
    assert!(p.finish().is_empty());
    let first: Value = serde_json::from_str(&ev[0].data).expect("json");
    assert_eq!(first["choices"], json!([]));
    assert!(first["prompt_filter_results"].is_array());
    assert_eq!(ev.last().expect("done").data, "[DONE]");
}

#[tokio::test]
async fn scripted_429_has_azure_body_and_retry_after() {
    let text = SCENARIO.to_owned() + "    faults: [{do: error, status: 429, retry_after: 3s}]\n";
    let s = gateprobe::scenario::load_str(Path::new("a.yaml"), &text, &|_| None).expect("valid");
    let host = ServerHost::new(1).expect("host");
    let mocks =
        gateprobe::mock::start_all(&host, &s.backends, &Arc::new(Journal::new(Instant::now(), 10))).expect("start");
    let url = format!(
        "{}/openai/deployments/gpt-4o-duo/chat/completions?api-version=2024-10-21",
        mocks[0].server.url()
    );
    let (s, h, b) = post(&url, &[("api-key", "az-key-1")], chat(false)).await;
    assert_eq!(s, 429);
    assert_eq!(h["retry-after"], "3");
    let v: Value = serde_json::from_str(&b).expect("json");
    assert_eq!(v["error"]["code"], "429");
    assert!(
        v["error"]["message"]
            .as_str()
            .expect("m")
            .contains("retry after 3 seconds")
    );
}
