//! The vLLM mock speaks vLLM's wire format (REFERENCE §5), checked with a plain HTTP
//! client and our SSE parser.

use std::sync::Arc;
use std::time::Instant;

use gateprobe::mock::journal::Journal;
use gateprobe::mock::openai::OpenAiMock;
use gateprobe::scenario::{BackendConfig, BackendProvider};
use gateprobe::server::{Server, ServerHost};
use serde_json::{Value, json};

struct Fixture {
    _host: ServerHost,
    server: Server,
    journal: Arc<Journal>,
    http: reqwest::Client,
}

fn start(key: Option<&str>) -> Fixture {
    let host = ServerHost::new(1).expect("host");
    let journal = Arc::new(Journal::new(Instant::now(), 100));
    let cfg = BackendConfig {
        name: "vllm".into(),
        provider: BackendProvider::Openai,
        models: vec!["Mixtral-8x7B".into()],
        api_key: key.map(str::to_owned),
        aws: None,
        timing: Default::default(),
        faults: vec![],
        port: None,
        personality: Default::default(),
        profile_only: vec![],
        api_versions: vec![],
        tls: None,
    };
    let mock = OpenAiMock::new(&cfg, Arc::clone(&journal));
    let server = host.serve(([127, 0, 0, 1], 0).into(), mock.router()).expect("serve");
    Fixture {
        _host: host,
        server,
        journal,
        http: reqwest::Client::builder().no_proxy().build().expect("client"),
    }
}

impl Fixture {
    async fn post(&self, path: &str, key: Option<&str>, body: Value) -> (u16, String, Option<String>) {
        let mut b = self.http.post(format!("{}{path}", self.server.url())).json(&body);
        if let Some(k) = key {
            b = b.bearer_auth(k);
        }
        let r = b.send().await.expect("send");
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().expect("ascii").to_owned());
        (r.status().as_u16(), r.text().await.expect("body"), ct)
    }
}

fn chat(stream: bool, usage: bool) -> Value {
    let mut b = json!({"model": "Mixtral-8x7B", "messages": [{"role": "user", "content": "hi [gp-0123abcd-7]"}], "stream": stream});
    if usage {
        b["stream_options"] = json!({"include_usage": true});
    }
    b
}

#[tokio::test]
async fn paths_outside_v1_are_fastapi_404s_and_health_is_open() {
    let f = start(Some("k"));
    let (s, body, _) = f.post("/chat/completions", Some("k"), chat(false, false)).await;
    assert_eq!((s, body.as_str()), (404, r#"{"detail":"Not Found"}"#));
    let r = f
        .http
        .get(format!("{}/health", f.server.url()))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("body"), "");
}

#[tokio::test]
async fn api_key_is_required_on_every_v1_path() {
    let f = start(Some("sk-1"));
    for key in [None, Some("wrong")] {
        let (s, body, _) = f.post("/v1/chat/completions", key, chat(false, false)).await;
        assert_eq!((s, body.as_str()), (401, r#"{"error":"Unauthorized"}"#));
    }
    let r = f
        .http
        .get(format!("{}/v1/models", f.server.url()))
        .bearer_auth("sk-1")
        .send()
        .await
        .expect("send");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], "Mixtral-8x7B");
    assert_eq!(v["data"][0]["owned_by"], "vllm");
}

#[tokio::test]
async fn unknown_models_get_vllm_not_found() {
    let f = start(None);
    let mut b = chat(false, false);
    b["model"] = json!("nope");
    let (s, body, _) = f.post("/v1/chat/completions", None, b).await;
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(s, 404);
    assert_eq!(v["error"]["type"], "NotFoundError");
    assert_eq!(v["error"]["message"], "The model `nope` does not exist.");
    assert_eq!(v["error"]["code"], 404);
}

#[tokio::test]
async fn chat_completion_shape() {
    let f = start(None);
    let (s, body, _) = f.post("/v1/chat/completions", None, chat(false, false)).await;
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(s, 200);
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().expect("id").starts_with("chatcmpl-"));
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert!(
        !v["choices"][0]["message"]["content"]
            .as_str()
            .expect("content")
            .is_empty()
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let u = &v["usage"];
    assert_eq!(
        u["total_tokens"],
        u["prompt_tokens"].as_u64().expect("p") + u["completion_tokens"].as_u64().expect("c")
    );
}

#[tokio::test]
async fn streams_are_exact_sse_with_usage_chunk_and_done() {
    let f = start(None);
    let (s, body, ct) = f.post("/v1/chat/completions", None, chat(true, true)).await;
    assert_eq!(s, 200);
    assert!(ct.expect("ct").starts_with("text/event-stream"));
    // Frames are exactly `data: <json>\n\n`.
    for frame in body.split_terminator("\n\n") {
        assert!(frame.starts_with("data: ") && !frame.contains('\n'), "{frame:?}");
    }
    let mut p = gateprobe::wire::sse::Parser::default();
    let mut events = Vec::new();
    p.feed(body.as_bytes(), &mut events);
    assert!(p.finish().is_empty());
    assert_eq!(events.last().expect("done").data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(&e.data).expect("json"))
        .collect();
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert!(
        chunks.iter().all(|c| c.get("usage").is_some()),
        "with include_usage every chunk has usage"
    );
    let usage = chunks.last().expect("usage chunk");
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["completion_tokens"].as_u64().expect("n") > 0);
    let last_content = &chunks[chunks.len() - 2];
    assert_eq!(last_content["choices"][0]["finish_reason"], "stop");
    // Without include_usage: no usage field and no usage chunk.
    let (_, body, _) = f.post("/v1/chat/completions", None, chat(true, false)).await;
    assert!(!body.contains("\"usage\""));
}

/// A stream stops where the whole reply stops: the same text before the stop sequence,
/// `finish_reason: stop`, and usage counting the tokens streamed.
#[tokio::test]
async fn stop_sequences_end_streams_where_they_end_whole_replies() {
    let f = start(None);
    let (_, whole, _) = f.post("/v1/chat/completions", None, chat(false, false)).await;
    let whole: Value = serde_json::from_str(&whole).expect("json");
    let text = whole["choices"][0]["message"]["content"].as_str().expect("content");
    // A stop sequence inside the reply's third word.
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    assert!(words.len() > 4, "{text}");
    let stop = &words[2][1..];
    let expected = &text[..text.find(stop).expect("in the text")];
    let ask = |stream: bool| {
        let mut b = chat(stream, stream);
        b["stop"] = json!(["never-in-a-reply", stop]);
        b
    };
    let (s, body, _) = f.post("/v1/chat/completions", None, ask(false)).await;
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        (s, v["choices"][0]["message"]["content"].as_str()),
        (200, Some(expected))
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");

    let (s, body, _) = f.post("/v1/chat/completions", None, ask(true)).await;
    assert_eq!(s, 200);
    let mut p = gateprobe::wire::sse::Parser::default();
    let mut events = Vec::new();
    p.feed(body.as_bytes(), &mut events);
    let chunks: Vec<Value> = events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| serde_json::from_str(&e.data).expect("json"))
        .collect();
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(streamed, expected);
    let finishes: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, [&json!("stop")]);
    let content_chunks = chunks
        .iter()
        .filter(|c| c["choices"][0]["delta"]["content"].is_string())
        .count();
    // The role chunk has `content: ""` too.
    let usage = &chunks.last().expect("usage chunk")["usage"];
    assert_eq!(usage["completion_tokens"].as_u64(), Some(content_chunks as u64 - 1));
}

#[tokio::test]
async fn legacy_completions_and_suffix() {
    let f = start(None);
    let (s, body, _) = f
        .post(
            "/v1/completions",
            None,
            json!({"model": "Mixtral-8x7B", "prompt": "def f():", "max_tokens": 3}),
        )
        .await;
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!((s, v["object"].as_str()), (200, Some("text_completion")));
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 3);
    let (s, _, _) = f
        .post(
            "/v1/completions",
            None,
            json!({"model": "Mixtral-8x7B", "prompt": "a", "suffix": "b"}),
        )
        .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn journal_records_raw_path_headers_and_correlation() {
    let f = start(None);
    f.post("/v1//chat/completions", None, chat(false, false)).await;
    f.post("/v1/chat/completions", None, chat(false, false)).await;
    let e = f.journal.for_correlation("gp-0123abcd-7");
    assert_eq!(e.len(), 2);
    assert_eq!((e[0].path.as_str(), e[0].status), ("/v1//chat/completions", 404));
    assert_eq!((e[1].path.as_str(), e[1].status), ("/v1/chat/completions", 200));
    assert_eq!(e[1].backend, "vllm");
    assert!(e[1].header("content-type").is_some());
    assert!(e[0].at <= e[1].at);
}
