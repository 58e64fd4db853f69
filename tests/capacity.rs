//! Capacity planning for model servers: load phases straight at each provider's mock
//! (`kind: direct`) with their thresholds judged, Duo-shaped workloads whose token
//! counts follow the configured distributions as the server counted them, datasets
//! sampled reproducibly by seed, mocks that answer the workload (prefill, output
//! length), and gateway requests paired with direct ones (`compare_direct`).

use std::path::Path;

use gateprobe::report::{RunReport, Status};
use gateprobe::run::{self, RunOptions};
use tokio_util::sync::CancellationToken;

async fn run_text(text: &str) -> RunReport {
    run_at(Path::new("capacity.yaml"), text).await
}

async fn run_at(path: &Path, text: &str) -> RunReport {
    let s = gateprobe::scenario::load_str(path, text, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    run::run(&s, &RunOptions::default(), &CancellationToken::new()).await
}

fn status(r: &RunReport, id: &str) -> Status {
    r.checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id}: {:#?}", r.checks))
        .status
}

fn phase<'a>(r: &'a RunReport, name: &str) -> &'a gateprobe::report::load::PhaseReport {
    r.load
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no phase {name}: aborted {:?}", r.aborted))
}

const PROVIDERS: &str = r#"
gateway: {kind: direct, timeout: 5s}
backends:
  vllm:
    provider: openai
    models: [Mixtral-8x7B-Instruct-v0.1]
    api_key: sk-cap-1
    timing: {tokens: max_tokens, itl: 1ms}
  broken:
    provider: openai
    models: [Mixtral-8x7B-Instruct-v0.1]
    faults: [{when: {every: 2}, do: error, status: 503}]
  az:
    provider: azure
    models: [gpt-4o-duo]
    api_key: az-cap-1
    timing: {tokens: max_tokens, itl: 1ms}
  br:
    provider: bedrock
    models: [anthropic.claude-3-5-sonnet-20241022-v2:0, mistral.mixtral-8x7b-instruct-v0:1]
    access_key_id: AKIDCAPACITYTEST1
    secret_access_key: capacitySecret0000000000000000000000000
    region: eu-west-3
    timing: {tokens: max_tokens, itl: 1ms}
self_hosted_models:
  - {name: vllm, family: mixtral, endpoint: "{{ backends.vllm.url }}/v1", api_key: sk-cap-1, identifier: custom_openai/Mixtral-8x7B-Instruct-v0.1}
  - {name: broken, family: mixtral, endpoint: "{{ backends.broken.url }}/v1", identifier: custom_openai/Mixtral-8x7B-Instruct-v0.1}
  - {name: az, family: gpt, endpoint: "{{ backends.az.url }}", api_key: az-cap-1, identifier: azure/gpt-4o-duo}
  - {name: claude, family: claude_3, identifier: bedrock/eu.anthropic.claude-3-5-sonnet-20241022-v2:0}
  - {name: mistral, family: mixtral, identifier: bedrock/mistral.mixtral-8x7b-instruct-v0:1}
checks: []
load:
PHASES
"#;

/// A 12-request phase of `feature` on `model`, 3 clients, with a small workload.
fn direct_phase(name: &str, model: &str, feature: &str, stream: bool, thresholds: &str) -> String {
    format!(
        "  - {{name: {name}, model: {model}, feature: {feature}, stream: {stream}, closed: {{clients: 3}}, requests: 12,\n     \
         workload: {{prompt_tokens: 300, output_tokens: 8}}, thresholds: [{thresholds}]}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_phases_load_each_providers_mock_and_judge_their_thresholds() {
    let ok = "'error_rate < 1%', 'ttft.p99 < 4s', 'requests >= 12'";
    let mut phases = String::new();
    // (name, model, feature, stream): chat and completions, plain and streamed; Azure;
    // Bedrock Converse (Anthropic ids) and invoke (Mistral ids), plain and streamed.
    let cases = [
        ("vllm-chat", "vllm", "duo_chat", false),
        ("vllm-chat-stream", "vllm", "duo_chat", true),
        ("vllm-completions", "vllm", "code_completions", false),
        ("vllm-completions-stream", "vllm", "code_completions", true),
        ("az-chat", "az", "code_generations", false),
        ("az-chat-stream", "az", "code_generations", true),
        ("converse", "claude", "duo_chat", false),
        ("converse-stream", "claude", "duo_chat", true),
        ("invoke", "mistral", "duo_chat_explain_code", false),
        ("invoke-stream", "mistral", "duo_chat_explain_code", true),
    ];
    for (name, model, feature, stream) in cases {
        phases.push_str(&direct_phase(name, model, feature, stream, ok));
    }
    phases.push_str(&direct_phase(
        "impossible",
        "vllm",
        "duo_chat",
        true,
        "'ttft.p50 < 1us', 'rps >= 100000'",
    ));
    phases.push_str(&direct_phase("broken", "broken", "duo_chat", true, "'error_rate < 1%'"));
    let r = run_text(&PROVIDERS.replace("PHASES", &phases)).await;
    assert_eq!(r.aborted, None);
    for (name, _, _, stream) in cases {
        let p = phase(&r, name);
        assert_eq!((p.route.as_str(), p.transport.requests), ("direct", 12), "{name}");
        assert_eq!(p.error_rate, 0.0, "{name}: {:?}", p.transport.errors);
        assert_eq!(p.llm.histograms["ttft"].count, 12, "{name}");
        // Every reply is 8 tokens (the mock follows max_tokens): 8 stream events.
        let events = if stream { 12 * 8 } else { 12 };
        assert_eq!(p.llm.output_tokens, events, "{name}");
        if stream {
            assert_eq!(p.llm.histograms["itl"].count, 12 * 7, "{name}: 7 gaps per reply");
        }
        assert_eq!(p.llm.tokens["prompt_sent"].count, 12, "{name}");
        // Mistral invoke's plain reply has no usage; every other one reports it.
        if name != "invoke" {
            assert_eq!(p.llm.tokens["output_usage"].p50, 8.0, "{name}");
            assert_eq!(p.llm.tokens["prompt_usage"].count, 12, "{name}");
        }
        for t in ["error_rate", "ttft_p99", "requests"] {
            assert_eq!(
                status(&r, &format!("threshold.{name}.{t}")),
                Status::Passed,
                "{name} {t}"
            );
        }
    }
    assert_eq!(status(&r, "threshold.impossible.ttft_p50"), Status::Failed);
    assert_eq!(status(&r, "threshold.impossible.rps"), Status::Failed);
    assert_eq!(status(&r, "threshold.broken.error_rate"), Status::Failed);
    let b = phase(&r, "broken");
    assert_eq!(
        b.transport.errors.get("status_503").copied(),
        Some(6),
        "{:?}",
        b.transport.errors
    );
    assert_eq!(
        phase(&r, "vllm-chat").llm.token_counting.as_deref(),
        Some("4 characters per token")
    );
}

/// Mean and an estimate of the spread of a normal from its p50 and p90.
fn normal_fit(h: &gateprobe::metrics::HistogramSummary) -> (f64, f64) {
    (h.mean, (h.p90 - h.p50) / 1.2816)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_counts_sent_follow_the_configured_distributions() {
    // 600 requests per phase. Tolerances: the mean within 3%, the median within 4%,
    // the spread within 15% (a percentile estimate from 600 draws), HdrHistogram's
    // 0.1% buckets aside; the counts are the server's own `usage`.
    let text = r#"
gateway: {kind: direct, timeout: 5s}
backends:
  vllm:
    provider: openai
    models: [m]
    timing: {tokens: max_tokens}
self_hosted_models:
  - {name: m, family: mixtral, endpoint: "{{ backends.vllm.url }}/v1", identifier: custom_openai/m}
checks: []
load:
  - name: normal
    feature: code_generations
    stream: false
    closed: {clients: 8}
    requests: 600
    workload:
      prompt_tokens: {dist: normal, mean: 800, stddev: 120}
      output_tokens: {dist: uniform, min: 20, max: 60}
      seed: 11
  - name: lognormal
    feature: duo_chat
    stream: true
    closed: {clients: 8}
    requests: 600
    workload:
      prompt_tokens: {dist: lognormal, median: 1500, sigma: 0.5, min: 64, max: 16000}
      output_tokens: {dist: normal, mean: 100, stddev: 20}
      seed: 12
"#;
    let r = run_text(text).await;
    let n = phase(&r, "normal");
    let (mean, sd) = normal_fit(&n.llm.tokens["prompt_usage"]);
    assert!((mean - 800.0).abs() < 24.0, "prompt mean {mean}");
    assert!((sd - 120.0).abs() < 18.0, "prompt spread {sd}");
    let out = &n.llm.tokens["output_usage"];
    assert!((out.mean - 40.0).abs() < 1.2 && out.max <= 60.0, "output {out:?}");
    // What the client counted and what the server counted agree.
    let sent = &n.llm.tokens["prompt_sent"];
    assert!(
        (sent.mean - mean).abs() / mean < 0.01,
        "sent {} usage {mean}",
        sent.mean
    );
    let l = phase(&r, "lognormal");
    let p = &l.llm.tokens["prompt_usage"];
    assert!((p.p50 - 1500.0).abs() < 60.0, "lognormal median {}", p.p50);
    // exp(0.5 * 1.2816) = 1.898: the p90 of a lognormal over its median.
    let ratio = p.p90 / p.p50;
    assert!((ratio - 1.898).abs() < 0.15, "lognormal p90/p50 {ratio}");
    let (mean, sd) = normal_fit(&l.llm.tokens["output_usage"]);
    assert!(
        (mean - 100.0).abs() < 3.0 && (sd - 20.0).abs() < 3.0,
        "output {mean} {sd}"
    );
    // Streamed: one event per output token the server counted.
    let counted = l.llm.tokens["output_usage"].mean * 600.0;
    assert!(
        (l.llm.output_tokens as f64 - counted).abs() / counted < 0.01,
        "{} events",
        l.llm.output_tokens
    );
}

const DATASET_SCENARIO: &str = r#"
gateway: {kind: direct, timeout: 5s}
backends:
  vllm:
    provider: openai
    models: [m]
    timing: {tokens: max_tokens}
self_hosted_models:
  - {name: m, family: mixtral, endpoint: "{{ backends.vllm.url }}/v1", identifier: custom_openai/m}
checks: []
load:
  - name: sharegpt
    feature: duo_chat
    closed: {clients: 1}
    requests: 60
    workload: {dataset: conversations.jsonl, seed: SEED}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dataset_is_sampled_with_its_seed_reproducibly() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 40 ShareGPT conversations: question i of 40*i characters, answer of 4*(i+1).
    let mut lines = String::new();
    for i in 1..=40 {
        lines.push_str(
            &serde_json::json!({"conversations": [
                {"from": "system", "value": "ignored"},
                {"from": "human", "value": "q".repeat(40 * i)},
                {"from": "gpt", "value": "a".repeat(4 * (i + 1))},
            ]})
            .to_string(),
        );
        lines.push('\n');
    }
    std::fs::write(dir.path().join("conversations.jsonl"), lines).expect("write");
    let path = dir.path().join("capacity.yaml");
    let text = |seed: u64| DATASET_SCENARIO.replace("SEED", &seed.to_string());
    let (a, b, c) = (
        run_at(&path, &text(7)).await,
        run_at(&path, &text(7)).await,
        run_at(&path, &text(8)).await,
    );
    let tokens = |r: &RunReport| phase(r, "sharegpt").llm.tokens.clone();
    let (ta, tb, tc) = (tokens(&a), tokens(&b), tokens(&c));
    for k in ["prompt_usage", "output_usage"] {
        assert_eq!(ta[k].count, 60, "{k}");
        assert_eq!(
            ta[k].histogram, tb[k].histogram,
            "{k}: the same seed draws the same records"
        );
        assert_ne!(ta[k].histogram, tc[k].histogram, "{k}: another seed draws others");
    }
    // Answers are the recorded ones: 2 to 41 tokens, asked as max_tokens.
    let out = &ta["output_usage"];
    assert!(out.max <= 41.0 && out.p50 >= 2.0, "{out:?}");
    assert!(
        phase(&a, "sharegpt")
            .workload
            .as_deref()
            .unwrap_or_default()
            .contains("40 records")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mock_answers_the_workload_prefill_grows_ttft_and_length_follows_the_request() {
    let text = r#"
gateway: {kind: direct, timeout: 5s}
backends:
  vllm:
    provider: openai
    models: [m]
    timing: {ttft: 5ms, prefill_rate: 5000}
self_hosted_models:
  - {name: m, family: mixtral, endpoint: "{{ backends.vllm.url }}/v1", identifier: custom_openai/m}
checks: []
load:
  - {name: short, feature: duo_chat, closed: {clients: 2}, requests: 6, workload: {prompt_tokens: 100, output_tokens: 40}}
  - {name: long, feature: duo_chat, closed: {clients: 2}, requests: 6, workload: {prompt_tokens: 2000, output_tokens: 40}}
  - {name: unforced, feature: duo_chat, closed: {clients: 2}, requests: 6, workload: {prompt_tokens: 100, output_tokens: 40, force_output: false}}
  - {name: capped, feature: duo_chat, closed: {clients: 2}, requests: 6, workload: {prompt_tokens: 100, output_tokens: 4}}
"#;
    let r = run_text(text).await;
    // 2000 tokens at 5000/s is 400 ms of prefill; 100 tokens 20 ms.
    let (short, long) = (phase(&r, "short"), phase(&r, "long"));
    assert!(
        long.llm.histograms["ttft"].p50 > short.llm.histograms["ttft"].p50 + 300.0,
        "{} vs {}",
        long.llm.histograms["ttft"].p50,
        short.llm.histograms["ttft"].p50
    );
    assert_eq!(long.llm.tokens["prompt_usage"].p50, 2000.0);
    // The default model answers up to 16 tokens: ignore_eos/min_tokens make it 40,
    // without them it stops at 16, and max_tokens caps it.
    assert_eq!(short.llm.tokens["output_usage"].p50, 40.0);
    assert_eq!(phase(&r, "unforced").llm.tokens["output_usage"].p50, 16.0);
    assert_eq!(phase(&r, "capped").llm.tokens["output_usage"].p50, 4.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_direct_interleaves_gateway_and_direct_requests_and_compares_percentiles() {
    for (kind, feature) in [("builtin", "duo_chat"), ("openai", "code_completions")] {
        let text = format!(
            r#"
gateway: {{kind: {kind}, timeout: 5s, auth: {{token: cap-token-1}}}}
backends:
  vllm:
    provider: openai
    models: [m]
    timing: {{ttft: 10ms, itl: 1ms, tokens: 8}}
self_hosted_models:
  - {{name: m, family: mixtral, endpoint: "{{{{ backends.vllm.url }}}}/v1", identifier: custom_openai/m}}
features:
  {feature}: m
checks: []
load:
  - name: paired
    feature: {feature}
    stream: true
    closed: {{clients: 4}}
    requests: 40
    compare_direct: true
    workload: {{prompt_tokens: 200, output_tokens: 8}}
    thresholds: ['ttft_overhead.p50 < 2s', 'latency_overhead.p99 < 2s', 'ttft_overhead.p50 > 2s']
"#
        );
        let r = run_text(&text).await;
        let p = phase(&r, "paired");
        assert_eq!(p.route, "gateway+direct", "{kind}");
        assert_eq!(p.error_rate, 0.0, "{kind}: {:?}", p.transport.errors);
        let h = &p.llm.histograms;
        assert_eq!(
            (h["ttft"].count, h["direct_ttft"].count),
            (20, 20),
            "{kind}: interleaved"
        );
        assert_eq!(
            (h["gateway_latency"].count, h["direct_latency"].count),
            (20, 20),
            "{kind}"
        );
        // The journal's overhead is read for the gateway's requests only.
        assert_eq!(h["gateway_overhead"].count, 20, "{kind}");
        assert_eq!(
            status(&r, "threshold.paired.ttft_overhead_p50"),
            Status::Passed,
            "{kind}"
        );
        assert_eq!(
            status(&r, "threshold.paired.latency_overhead_p99"),
            Status::Passed,
            "{kind}"
        );
        let failing = r.checks.iter().filter(|c| c.status == Status::Failed).count();
        assert_eq!(failing, 1, "{kind}: `ttft_overhead.p50 > 2s` fails: {:#?}", r.checks);
    }
}

#[test]
fn misplaced_capacity_options_are_refused_with_their_place() {
    let direct = PROVIDERS.replace(
        "PHASES",
        "  - {name: x, model: vllm, feature: duo_chat, requests: 1, closed: {clients: 1}, compare_direct: true}\n",
    );
    let e = gateprobe::scenario::load_str(Path::new("c.yaml"), &direct, &|_| None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("already direct") && e.contains("c.yaml:"), "{e}");
    let bad = PROVIDERS.replace(
        "PHASES",
        "  - {name: x, model: vllm, feature: duo_chat, requests: 1, closed: {clients: 1},\n     workload: {prompt_tokens: {dist: lognormal, median: 10}}}\n",
    );
    let e = gateprobe::scenario::load_str(Path::new("c.yaml"), &bad, &|_| None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("sigma"), "{e}");
    let missing = PROVIDERS.replace(
        "PHASES",
        "  - {name: x, model: vllm, feature: duo_chat, requests: 1, closed: {clients: 1}, workload: {dataset: nope.jsonl}}\n",
    );
    let e = gateprobe::scenario::load_str(Path::new("c.yaml"), &missing, &|_| None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope.jsonl") && e.contains("cannot read"), "{e}");
    let unknown = PROVIDERS.replace(
        "PHASES",
        "  - {name: x, feature: duo_chat, requests: 1, closed: {clients: 1}}\n",
    );
    let e = gateprobe::scenario::load_str(Path::new("c.yaml"), &unknown, &|_| None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`model:`"), "{e}");
}

#[test]
fn the_shipped_capacity_scenario_is_valid() {
    let path = Path::new("scenarios/vendor-capacity.yaml");
    let text = std::fs::read_to_string(path).expect("read");
    let s = gateprobe::scenario::load_str(path, &text, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.gateway.kind, gateprobe::scenario::GatewayKind::Direct);
    assert_eq!(s.load.len(), 2);
    assert!(s.load.iter().all(|p| p.workload.is_some()));
}
