//! `auth.key_not_leaked` against gateways that give a model's key back in the forms a
//! plain substring search misses: in a response header, base64-encoded, cut short
//! with `...`, past the first MiB of a body; and a body too large to read whole,
//! which cannot be vouched for. A gateway that gives nothing back passes.

use std::process::Command;

use serde_json::Value;
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk-leaktest-9f3c2a71b0d4";

fn scenario(url: &str) -> String {
    format!(
        r#"version: 1
name: leaks
gateway: {{kind: aigw, url: "{url}", timeout: 5s}}
backends:
  vllm: {{provider: openai, models: [m]}}
self_hosted_models:
  - {{name: m, family: mistral, endpoint: "{{{{ backends.vllm.url }}}}/v1", identifier: custom_openai/m, api_key: {KEY}}}
features:
  code_completions: m
  duo_chat: m
"#
    )
}

/// Runs a scenario against a gateway answering every request with `reply`; the
/// `auth.key_not_leaked` check's status and `actual`, and the report's text.
async fn key_check(reply: ResponseTemplate) -> (String, String, String) {
    key_check_in(reply, scenario).await
}

/// [`key_check`] with the scenario `make` writes for the gateway's URL.
async fn key_check_in(reply: ResponseTemplate, make: fn(&str) -> String) -> (String, String, String) {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(reply)
        .mount(&server)
        .await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("leaks.yaml");
    std::fs::write(&file, make(&server.uri())).expect("scenario");
    let dir = tmp.path().join("reports");
    let out = tokio::task::spawn_blocking({
        let (file, dir) = (file.clone(), dir.clone());
        move || {
            Command::new(env!("CARGO_BIN_EXE_gateprobe"))
                .arg("run")
                .arg(&file)
                .arg("--report-dir")
                .arg(&dir)
                .env("CI", "1")
                .output()
                .expect("runs")
        }
    })
    .await
    .expect("joined");
    let text = std::fs::read_to_string(dir.join("gateprobe.json")).expect("report written");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains(KEY) && !stdout.contains(KEY), "the key was written raw");
    let r: Value = serde_json::from_str(&text).expect("report is JSON");
    let c = r["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["id"] == "auth.key_not_leaked")
        .unwrap_or_else(|| panic!("no key_not_leaked check: {text}"))
        .clone();
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    (s(&c["status"]), s(&c["actual"]), text)
}

fn json(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.into_bytes(), "application/json")
}

fn base64(s: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..=c.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_in_a_header_fails() {
    let reply = json("{}".into()).insert_header("x-upstream-auth", format!("Bearer {KEY}"));
    let (status, actual, _) = key_check(reply).await;
    assert_eq!(status, "failed", "{actual}");
    assert!(actual.contains("the API key of model `m`"), "{actual}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base64_key_fails() {
    let (status, actual, _) = key_check(json(format!(r#"{{"debug": "{}"}}"#, base64(&format!("key={KEY}"))))).await;
    assert_eq!(status, "failed", "{actual}");
    assert!(actual.contains("the API key of model `m`"), "{actual}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_cut_short_fails() {
    let (status, actual, _) = key_check(json(format!(r#"{{"detail": "bad key {}..."}}"#, &KEY[..12]))).await;
    assert_eq!(status, "failed", "{actual}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_past_the_first_mebibyte_fails() {
    let pad = " ".repeat(3 * 1024 * 1024 / 2);
    let (status, actual, _) = key_check(json(format!(r#"{{"pad": "{pad}", "key": "{KEY}"}}"#))).await;
    assert_eq!(status, "failed", "{actual}");
    assert!(actual.contains("the API key of model `m`"), "{actual}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_too_large_to_read_cannot_pass() {
    let pad = " ".repeat(9 * 1024 * 1024);
    let (status, actual, _) = key_check(json(format!(r#"{{"pad": "{pad}"}}"#))).await;
    assert_eq!(status, "failed", "{actual}");
    assert!(actual.contains("cannot tell whether the rest holds a key"), "{actual}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_gives_no_key_back_passes() {
    let reply = json(r#"{"detail": "no"}"#.into()).insert_header("x-request-id", "req-5c1e");
    let (status, actual, _) = key_check(reply).await;
    assert_eq!(status, "passed", "{actual}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_key_is_watched_when_no_model_has_one() {
    // The key only on the backend: the gateway holds it all the same.
    let backend_only = |url: &str| {
        scenario(url)
            .replace(", api_key: sk-leaktest-9f3c2a71b0d4}", "}")
            .replace("models: [m]}", "models: [m], api_key: sk-leaktest-9f3c2a71b0d4}")
    };
    assert!(!backend_only("u").contains(&format!("identifier: custom_openai/m, api_key: {KEY}")));
    let (status, actual, _) = key_check_in(json(format!("{{\"echo\": \"{KEY}\"}}")), backend_only).await;
    assert_eq!(status, "failed", "{actual}");
    assert!(actual.contains("the API key of backend `vllm`"), "{actual}");
}
