//! Timing model and scripted faults of the mocks, configured through a scenario as a
//! user would, observed with a plain HTTP client. Only lower bounds on time are
//! asserted (a loaded machine is slower, never faster).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use gateprobe::mock::journal::Journal;
use gateprobe::server::ServerHost;
use serde_json::{Value, json};

const SCENARIO: &str = r#"
gateway: {kind: builtin}
backends:
  slow:
    provider: openai
    models: [m]
    timing:
      ttft: 80ms
      itl: {dist: uniform, min: 5ms, max: 10ms}
      tokens: 6
      seed: 3
  faulty:
    provider: openai
    models: [m, other]
    faults:
      - when: {first: 1}
        do: error
        status: 429
        retry_after: 2s
      - when: {model: other}
        do: error
        status: 503
      - when: {every: 7}
        do: empty_200
      - when: {every: 2}
        do: cut
        after_tokens: 2
      - when: {every: 3}
        do: malformed_sse
      - when: {every: 5}
        do: non_sse
"#;

struct Mocks {
    _host: ServerHost,
    urls: Vec<String>,
    _servers: Vec<gateprobe::mock::RunningMock>,
}

fn start() -> Mocks {
    let s = gateprobe::scenario::load_str(Path::new("inline.yaml"), SCENARIO, &|_| None).expect("valid");
    let host = ServerHost::new(2).expect("host");
    let journal = Arc::new(Journal::new(Instant::now(), 1000));
    let servers = gateprobe::mock::start_all(&host, &s.backends, &journal).expect("start");
    let urls = servers.iter().map(|m| m.server.url()).collect();
    Mocks {
        _host: host,
        urls,
        _servers: servers,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().expect("client")
}

fn body(model: &str, stream: bool) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream, "max_tokens": 100})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timing_model_paces_the_stream() {
    let m = start();
    let sent = Instant::now();
    let r = client()
        .post(format!("{}/v1/chat/completions", m.urls[0]))
        .json(&body("m", true))
        .send()
        .await
        .expect("send");
    let mut s = r.bytes_stream();
    let mut arrivals = Vec::new();
    let mut text = Vec::new();
    while let Some(c) = s.next().await {
        arrivals.push(sent.elapsed());
        text.extend_from_slice(&c.expect("chunk"));
    }
    assert!(
        arrivals[0] >= Duration::from_millis(80),
        "first chunk after {:?}",
        arrivals[0]
    );
    // 6 tokens: 5 gaps of at least 5 ms after the first token.
    assert!(*arrivals.last().expect("last") >= Duration::from_millis(80 + 25));
    let content_frames = String::from_utf8(text).expect("utf8").matches("\"content\":\"").count();
    assert_eq!(content_frames, 7, "role chunk + 6 tokens");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_faults_apply_in_order_and_deterministically() {
    let m = start();
    let c = client();
    let url = format!("{}/v1/chat/completions", m.urls[1]);
    // Request 0: first-1 rule -> 429 with Retry-After and the provider's error body.
    let r = c.post(&url).json(&body("m", false)).send().await.expect("send");
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "2");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["type"], "RateLimitError");
    // Request 1 (model other): 503.
    let r = c.post(&url).json(&body("other", false)).send().await.expect("send");
    assert_eq!(r.status(), 503);
    // Request 2 (index 2, every-3 -> malformed_sse): a frame without `data:`.
    let r = c.post(&url).json(&body("m", true)).send().await.expect("send");
    let text = r.text().await.expect("body");
    let mut p = gateprobe::wire::sse::Parser::default();
    let mut ev = Vec::new();
    p.feed(text.as_bytes(), &mut ev);
    assert!(
        matches!(p.finish()[..], [gateprobe::wire::sse::Anomaly::UnknownField(_)]),
        "{text}"
    );
    // Request 3 (index 3, every-2 -> cut after 2 tokens): the body breaks.
    let r = c.post(&url).json(&body("m", true)).send().await.expect("send");
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.is_err(), "a cut stream must not end cleanly");
    // Request 4 (index 4): no rule -> a normal reply.
    let r = c.post(&url).json(&body("m", false)).send().await.expect("send");
    assert_eq!(r.status(), 200);
    assert!(r.json::<Value>().await.is_ok());
    // Request 5 (index 5, every-2 takes precedence over every-5? 6 % 2 == 0 -> cut), a plain reply is cut half-way.
    let r = c.post(&url).json(&body("m", false)).send().await.expect("send");
    assert!(r.bytes().await.is_err());
    // Request 6 (index 6, every-7 -> empty 200).
    let r = c.post(&url).json(&body("m", true)).send().await.expect("send");
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.expect("body").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_sse_reply_to_a_stream_request() {
    let m = start();
    let c = client();
    let url = format!("{}/v1/chat/completions", m.urls[1]);
    // Indices 0..=3 are taken by other rules; index 4 (every-5) answers JSON to a stream request.
    for _ in 0..4 {
        let _ = c
            .post(&url)
            .json(&body("m", false))
            .send()
            .await
            .expect("send")
            .bytes()
            .await;
    }
    let r = c.post(&url).json(&body("m", true)).send().await.expect("send");
    assert!(
        r.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("application/json")
    );
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["object"], "chat.completion");
}

#[test]
fn bad_fault_blocks_are_refused_with_hints() {
    let bad = SCENARIO.replace("do: cut", "do: cutt");
    let e = gateprobe::scenario::load_str(Path::new("inline.yaml"), &bad, &|_| None).expect_err("refused");
    assert!(e.to_string().contains("did you mean `cut`?"), "{e}");
    let bad = SCENARIO.replace("when: {every: 3}", "when: {every: 3, first: 1}");
    let e = gateprobe::scenario::load_str(Path::new("inline.yaml"), &bad, &|_| None).expect_err("refused");
    assert!(e.to_string().contains("exactly one of"), "{e}");
    let bad = SCENARIO.replace("ttft: 80ms", "ttft: {dist: gauss, mean: 1ms}");
    let e = gateprobe::scenario::load_str(Path::new("inline.yaml"), &bad, &|_| None).expect_err("refused");
    assert!(e.to_string().contains("unknown distribution `gauss`"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_error_answers_at_the_first_token_not_after_a_generation() {
    // 50 ms to the first token, then 9 gaps of 200 ms: a whole reply takes ~1.85 s.
    let text = "gateway: {kind: builtin}\nbackends:\n  v:\n    provider: openai\n    models: [m]\n    timing: {ttft: 50ms, itl: 200ms, tokens: 10}\n    faults:\n      - when: {first: 1}\n        do: error\n        status: 429\n";
    let s = gateprobe::scenario::load_str(Path::new("e.yaml"), text, &|_| None).expect("valid");
    let host = ServerHost::new(1).expect("host");
    let journal = Arc::new(Journal::new(Instant::now(), 100));
    let servers = gateprobe::mock::start_all(&host, &s.backends, &journal).expect("start");
    let url = format!("{}/v1/chat/completions", servers[0].server.url());
    let t = Instant::now();
    let r = client().post(&url).json(&body("m", false)).send().await.expect("reply");
    let took = t.elapsed();
    assert_eq!(r.status(), 429);
    assert!(took >= Duration::from_millis(50), "{took:?}");
    assert!(
        took < Duration::from_millis(1_200),
        "answered after the whole generation: {took:?}"
    );
}
