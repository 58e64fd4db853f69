//! The mocks through the providers' own SDKs, independent decoders of what the mocks
//! send: the Anthropic SDK's `AnthropicBedrock` client streams from the Bedrock mock
//! with `messages.stream()` (which folds the whole Messages event sequence and raises
//! on a broken one) and reads the stop reason of a reply cut at `max_tokens`; the
//! OpenAI SDK asks the vLLM mock for `n` choices, plain and streamed; the AzureOpenAI
//! client lists the Azure mock's models.
//!
//! Needs Python with `anthropic[bedrock]` and `openai`: `$GATEPROBE_SDK_PYTHON`, default
//! `~/.cache/gateprobe/sdk-venv/bin/python` (`.ci/run` makes it). `#[ignore]`d with
//! that reason in a plain `cargo test`; `--include-ignored` runs it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use gateprobe::mock::journal::Journal;
use gateprobe::server::ServerHost;
use serde_json::Value;

const SCENARIO: &str = "\
backends:
  bedrock:
    provider: bedrock
    models: [anthropic.claude-3-5-sonnet-20241022-v2:0]
    access_key_id: AKIDSDKCLIENTTEST01
    secret_access_key: sdkClientSecret0000000000000000000000000
    region: eu-west-3
  vllm:
    provider: openai
    models: [Mistral-7B-Instruct-v0.3]
    api_key: sk-sdk-vllm-key
  azure:
    provider: azure
    models: [gpt-4o-duo, gpt-4o-mini-duo]
    api_key: azure-sdk-key
";

fn python() -> PathBuf {
    std::env::var_os("GATEPROBE_SDK_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/gateprobe/sdk-venv/bin/python")
        })
}

#[test]
#[ignore = "needs Python with anthropic[bedrock] and openai (GATEPROBE_SDK_PYTHON): cargo test -- --include-ignored (.ci/run does)"]
fn the_providers_sdks_accept_the_mocks() {
    let python = python();
    assert!(
        python.exists(),
        "{} not found: python3 -m venv ~/.cache/gateprobe/sdk-venv && ~/.cache/gateprobe/sdk-venv/bin/pip install 'anthropic[bedrock]' openai, or set GATEPROBE_SDK_PYTHON",
        python.display()
    );
    let s = gateprobe::scenario::load_str(Path::new("sdk.yaml"), SCENARIO, &|_| None).expect("valid");
    let host = ServerHost::new(2).expect("host");
    let journal = Arc::new(Journal::new(Instant::now(), 1000));
    let mocks = gateprobe::mock::start_all(&host, &s.backends, &journal).expect("start");
    let url = |i: usize| mocks[i].server.url();
    let out = Command::new(&python)
        .arg("tests/sdk/clients.py")
        .env("BEDROCK_URL", url(0))
        .env("AWS_ACCESS_KEY_ID", "AKIDSDKCLIENTTEST01")
        .env("AWS_SECRET_ACCESS_KEY", "sdkClientSecret0000000000000000000000000")
        .env("AWS_REGION", "eu-west-3")
        .env("VLLM_URL", url(1))
        .env("VLLM_KEY", "sk-sdk-vllm-key")
        .env("AZURE_URL", url(2))
        .env("AZURE_KEY", "azure-sdk-key")
        .env("AZURE_API_VERSION", gateprobe::wire::azure::API_VERSION)
        // Loopback only, whatever proxy the environment names.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .output()
        .expect("python runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the SDKs refused the mocks:\n{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");

    // Anthropic: the streamed text is the folded message's text; a reply that used up
    // max_tokens says so, one that did not ends its turn.
    let cut = &v["stream_cut"];
    assert_eq!(cut["stop_reason"], "max_tokens", "{v:#}");
    assert_eq!(cut["output_tokens"], 5);
    assert!(!cut["text"].as_str().unwrap_or("").is_empty());
    assert_eq!(cut["text"], cut["final_text"]);
    assert!(cut["id"].as_str().unwrap_or("").starts_with("msg_bdrk_"));
    let whole = &v["stream_whole"];
    assert_eq!(whole["stop_reason"], "end_turn", "{v:#}");
    assert_eq!(whole["text"], whole["final_text"]);
    assert_eq!(v["create_cut"]["stop_reason"], "max_tokens");

    // OpenAI: n choices, each finished, usage for all of them.
    assert_eq!(v["n_whole"]["indexes"], serde_json::json!([0, 1, 2]), "{v:#}");
    assert_eq!(
        v["n_whole"]["finish"],
        serde_json::json!(["length", "length", "length"])
    );
    assert_eq!(v["n_whole"]["completion_tokens"], 12);
    let texts = v["n_stream"]["texts"].as_object().expect("texts");
    assert_eq!(texts.len(), 2, "{v:#}");
    assert!(texts.values().all(|t| !t.as_str().unwrap_or("").is_empty()));
    assert_eq!(v["n_stream"]["finish"].as_object().map(|f| f.len()), Some(2));

    // Azure: the models list.
    assert_eq!(v["azure_models"], serde_json::json!(["gpt-4o-duo", "gpt-4o-mini-duo"]));
}
