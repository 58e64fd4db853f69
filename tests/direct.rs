//! `kind: direct` (vendor endpoint validation) against our own mocks: passes as
//! shipped, and a mock with a fault script fails exactly the checks the fault breaks.

use std::path::Path;

use gateprobe::report::{RunReport, Status};
use gateprobe::run::{self, RunOptions};
use tokio_util::sync::CancellationToken;

const BASE: &str = r#"
gateway: {kind: direct, timeout: 5s}
checks: [vendor]
backends:
  vllm:
    provider: openai
    models: [Mixtral-8x7B-Instruct-v0.1]
    api_key: sk-direct-1
FAULTS
self_hosted_models:
  - name: m
    family: mixtral
    endpoint: "ENDPOINT"
    api_key: sk-direct-1
    identifier: custom_openai/Mixtral-8x7B-Instruct-v0.1
"#;

async fn run_text(text: &str, gateway_url: Option<String>) -> RunReport {
    let s = gateprobe::scenario::load_str(Path::new("direct.yaml"), text, &|_| None).expect("valid");
    run::run(
        &s,
        &RunOptions {
            shard: None,
            gateway_url,
            ..RunOptions::default()
        },
        &CancellationToken::new(),
    )
    .await
}

fn scenario(faults: &str, endpoint: &str) -> String {
    BASE.replace("FAULTS", faults).replace("ENDPOINT", endpoint)
}

fn failed(r: &RunReport) -> Vec<String> {
    let mut v: Vec<String> = r
        .checks
        .iter()
        .filter(|c| c.status != Status::Passed)
        .map(|c| c.id.trim_start_matches("vendor.m.").to_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_vendor_scenario_passes_on_the_mock() {
    let path = Path::new("scenarios/vendor-endpoint.yaml");
    let s =
        gateprobe::scenario::load_str(path, &std::fs::read_to_string(path).expect("read"), &|_| None).expect("valid");
    let r = run::run(&s, &RunOptions::default(), &CancellationToken::new()).await;
    let vendor = r.checks.iter().filter(|c| c.family == "vendor");
    assert_eq!(
        vendor.filter(|c| c.status == Status::Passed).count(),
        6,
        "{:#?}",
        r.checks
    );
    // The shipped scenario checks readiness too (every feature the family serves).
    assert_eq!(r.summary.passed, r.checks.len(), "{:#?}", r.checks);
    assert_eq!(r.gateway.kind, "direct");
    // Evidence ties the direct requests to what the mock received.
    let chat = r.checks.iter().find(|c| c.id.ends_with(".chat")).expect("chat");
    assert_eq!(chat.evidence[0].backend[0].path, "/v1/chat/completions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_script_fails_exactly_its_checks() {
    let cases: &[(&str, &[&str])] = &[
        ("", &[]),
        ("    faults: [{do: non_sse}]", &["stream"]),
        ("    faults: [{do: malformed_sse}]", &["stream"]),
        ("    faults: [{do: malformed_json}]", &["chat", "stream"]),
        ("    faults: [{do: empty_200}]", &["chat", "stream"]),
        ("    faults: [{do: error, status: 500}]", &["chat", "stream"]),
        ("    faults: [{do: cut, after_tokens: 1}]", &["chat", "stream"]),
    ];
    for (faults, want) in cases {
        let r = run_text(&scenario(faults, "{{ backends.vllm.url }}/v1"), None).await;
        assert_eq!(failed(&r), want.to_vec(), "faults {faults:?}: {:#?}", r.checks);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_without_v1_fails_the_suffix_and_the_calls() {
    let r = run_text(&scenario("", "{{ backends.vllm.url }}"), None).await;
    assert_eq!(failed(&r), vec!["chat", "models", "stream", "v1_suffix", "wrong_key"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_ignores_keys_fails_wrong_key() {
    let text = scenario("", "{{ backends.vllm.url }}/v1").replacen("    api_key: sk-direct-1\n", "", 1);
    let r = run_text(&text, None).await;
    assert_eq!(failed(&r), vec!["wrong_key"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_url_points_the_checks_at_another_endpoint() {
    // A second, independent mock plays "the vendor's server".
    let other = gateprobe::scenario::load_str(
        Path::new("o.yaml"),
        &scenario("", "{{ backends.vllm.url }}/v1"),
        &|_| None,
    )
    .expect("valid");
    let host = gateprobe::server::ServerHost::new(1).expect("host");
    let journal = std::sync::Arc::new(gateprobe::mock::journal::Journal::new(std::time::Instant::now(), 100));
    let mocks = gateprobe::mock::start_all(&host, &other.backends, &journal).expect("start");
    let url = format!("{}/v1", mocks[0].server.url());
    let r = run_text(
        &scenario("    faults: [{do: error, status: 500}]", "{{ backends.vllm.url }}/v1"),
        Some(url.clone()),
    )
    .await;
    // The scenario's own (faulty) mock is not used: the healthy endpoint passes.
    assert_eq!(failed(&r), Vec::<String>::new());
    assert_eq!(r.gateway.url.as_deref(), Some(url.as_str()));
    assert!(journal.next_seq() >= 6, "the requests went to the endpoint given");
}

const AZURE_BEDROCK: &str = r#"
gateway: {kind: direct, timeout: 5s}
checks: [vendor]
backends:
  az:
    provider: azure
    models: [gpt-4o-duo]
    api_key: az-direct-1
AZ_FAULTS
  br:
    provider: bedrock
    models: [anthropic.claude-3-5-sonnet-20241022-v2:0]
    access_key_id: AKIDDIRECTTEST01
    secret_access_key: directSecret000000000000000000000000000
    region: eu-west-3
BR_FAULTS
self_hosted_models:
  - name: az
    family: gpt
    endpoint: "{{ backends.az.url }}"
    api_key: az-direct-1
    identifier: azure/gpt-4o-duo
  - name: br
    family: claude_3
    identifier: bedrock/eu.anthropic.claude-3-5-sonnet-20241022-v2:0
"#;

fn failed_all(r: &RunReport) -> Vec<String> {
    let mut v: Vec<String> = r
        .checks
        .iter()
        .filter(|c| c.status != Status::Passed)
        .map(|c| c.id.trim_start_matches("vendor.").to_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_and_bedrock_endpoints_validate_directly_and_fail_on_their_faults() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("", "", &[]),
        ("    faults: [{do: malformed_sse}]", "", &["az.stream"]),
        ("", "    faults: [{do: corrupt_crc}]", &["br.stream"]),
        ("", "    faults: [{do: error, status: 429}]", &["br.chat", "br.stream"]),
        (
            "    faults: [{do: empty_200}]",
            "    faults: [{do: cut, after_tokens: 2}]",
            &["az.chat", "az.stream", "br.chat", "br.stream"],
        ),
    ];
    for (az, br, want) in cases {
        let text = AZURE_BEDROCK.replace("AZ_FAULTS", az).replace("BR_FAULTS", br);
        let r = run_text(&text, None).await;
        assert_eq!(failed_all(&r), want.to_vec(), "{az:?} {br:?}: {:#?}", r.checks);
        if want.is_empty() {
            assert_eq!(r.summary.passed, 8, "chat, stream, wrong_key, unknown_model for each");
        }
    }
}
