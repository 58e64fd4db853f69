//! Load phases end to end against the built-in gateway and mocks: thresholds gate the
//! exit code, coordinated omission is corrected, shards add up.

use std::path::Path;

use gateprobe::report::{RunReport, Status};
use gateprobe::run::{self, RunOptions};
use tokio_util::sync::CancellationToken;

fn scenario(backend_extra: &str, load: &str) -> String {
    format!(
        r#"
gateway: {{kind: builtin, timeout: 10s}}
backends:
  vllm:
    provider: openai
    models: [m]
{backend_extra}
self_hosted_models:
  - {{name: m, family: mistral, endpoint: "{{{{ backends.vllm.url }}}}/v1", identifier: custom_openai/m}}
features:
  duo_chat: m
  code_generations: m
checks: []
load:
{load}
"#
    )
}

async fn run_text(text: &str, shard: Option<(u32, u32)>) -> RunReport {
    let s = gateprobe::scenario::load_str(Path::new("load.yaml"), text, &|_| None).expect("valid scenario");
    run::run(
        &s,
        &RunOptions {
            gateway_url: None,
            faults: vec![],
            shard,
            ..RunOptions::default()
        },
        &CancellationToken::new(),
    )
    .await
}

fn status(r: &RunReport, id: &str) -> Status {
    r.checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id}: {:#?}", r.checks))
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_pass_and_fail_as_written() {
    let load = r#"
  - name: chat
    feature: duo_chat
    open: {rate: 40}
    requests: 40
    thresholds:
      - ttft.p99 < 30s
      - error_rate < 1%
      - requests >= 40
      - ttft.p50 < 1us
      - rps >= 100000
  - name: gen
    feature: code_generations
    closed: {clients: 1}
    requests: 3
    thresholds: [schedule_lag.p99 < 1ms]
"#;
    let r = run_text(&scenario("", load), None).await;
    // A closed loop has no schedule, so no lag: nothing to judge.
    assert_eq!(status(&r, "threshold.gen.schedule_lag_p99"), Status::Error);
    assert_eq!(status(&r, "threshold.chat.ttft_p99"), Status::Passed);
    assert_eq!(status(&r, "threshold.chat.error_rate"), Status::Passed);
    assert_eq!(status(&r, "threshold.chat.requests"), Status::Passed);
    assert_eq!(status(&r, "threshold.chat.ttft_p50"), Status::Failed);
    assert_eq!(status(&r, "threshold.chat.rps"), Status::Failed);
    let p = &r.load[0];
    assert_eq!(p.transport.requests, 40);
    assert_eq!(p.error_rate, 0.0);
    assert!(p.llm.output_tokens >= 40, "every chat reply streams tokens");
    for h in ["ttft", "gateway_overhead", "overhead_request", "overhead_response"] {
        assert_eq!(p.llm.histograms[h].count, 40, "{h} recorded for every request");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_classified_and_breach_the_error_rate() {
    let faults = "    faults:\n      - when: {every: 4}\n        do: error\n        status: 503\n";
    let load = "  - name: gen\n    feature: code_generations\n    closed: {clients: 2}\n    requests: 40\n    thresholds: [error_rate < 1%]\n";
    let r = run_text(&scenario(faults, load), None).await;
    assert_eq!(status(&r, "threshold.gen.error_rate"), Status::Failed);
    let p = &r.load[0];
    // Like the AI gateway, the reference gateway answers an upstream 503 on a streamed
    // code generation with a 200 whose body breaks off: a protocol error.
    assert_eq!(
        p.transport.errors.get("protocol").copied(),
        Some(10),
        "{:?}",
        p.transport.errors
    );
    assert!((p.error_rate - 0.25).abs() < 1e-9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_backend_shows_in_the_corrected_p99_not_only_in_max() {
    // One request stalls 1 s at a constant 100 req/s. With one request in flight at
    // most, the requests due during the stall wait for it: corrected latency (from the
    // intended send) sees that wait, service time (from the actual send) does not.
    let backend = "    faults:\n      - when: {first: 1}\n        do: slow_first_byte\n        for: 1s\n";
    let load = "  - name: co\n    feature: code_generations\n    stream: false\n    open: {rate: 100}\n    duration: 3s\n    max_in_flight: 1\n";
    let r = run_text(&scenario(backend, load), None).await;
    let t = &r.load[0].transport;
    assert!(
        t.latency.p99 >= 500.0,
        "corrected p99 {} ms must show the 1 s stall",
        t.latency.p99
    );
    assert!(t.latency.p90 >= 100.0, "many requests waited: p90 {} ms", t.latency.p90);
    assert!(
        t.service.p50 < t.latency.p90 / 4.0,
        "service p50 {} ms stays small",
        t.service.p50
    );
    assert!(t.late > 10, "requests waited past their intended time: {}", t.late);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_send_their_slice_and_add_up() {
    let load = "  - name: chat\n    feature: duo_chat\n    closed: {clients: 4}\n    requests: 101\n    thresholds: [error_rate < 1%]\n";
    let text = scenario("", load);
    let mut total = 0;
    for i in 1..=4 {
        let r = run_text(&text, Some((i, 4))).await;
        assert_eq!(r.load[0].shard.as_deref(), Some(format!("{i}/4").as_str()));
        assert!(r.checks.is_empty(), "thresholds are judged after merging shards");
        total += r.load[0].transport.requests;
    }
    assert_eq!(total, 101);
    // Fewer clients than shards: the first two shards share clients and requests.
    let text = scenario("", &load.replace("clients: 4", "clients: 2"));
    let mut sent = Vec::new();
    for i in 1..=4 {
        sent.push(run_text(&text, Some((i, 4))).await.load[0].transport.requests);
    }
    assert_eq!(sent, [51, 50, 0, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweeps_steps_follow_each_other_on_its_timeline() {
    let load = "  - name: s\n    feature: duo_chat\n    sweep: {rates: [10, 40], step: 2s, slo: error_rate < 50%}\n";
    let r = run_text(&scenario("", load), None).await;
    let p = &r.load[0];
    assert_eq!(p.sweep.len(), 2, "{:?}", p.sweep);
    let per_second: Vec<u64> = p.timeline.iter().map(|t| t.requests).collect();
    assert_eq!(per_second.iter().sum::<u64>(), p.transport.requests, "{per_second:?}");
    // Two 2 s steps take four seconds, not two seconds holding both.
    assert!((4..=6).contains(&per_second.len()), "{per_second:?}");
    let (first, second) = (per_second[..2].iter().sum::<u64>(), per_second[2..].iter().sum::<u64>());
    // Step 2's first requests may complete within the first step's last second.
    assert!(first <= 35 && second >= 55, "10/s then 40/s: {per_second:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_load_blocks_are_refused_with_positions() {
    let cases = [
        (
            "  - name: x\n    feature: duo_chat\n    open: {rate: 5}\n",
            "must end by itself",
        ),
        (
            "  - name: x\n    feature: duo_chat\n    open: {rate: 5}\n    closed: {clients: 1}\n    duration: 1s\n",
            "exactly one of",
        ),
        (
            "  - name: x\n    feature: duo_chatt\n    closed: {clients: 1}\n    requests: 1\n",
            "did you mean `duo_chat`?",
        ),
        (
            "  - name: x\n    feature: review_merge_request\n    closed: {clients: 1}\n    requests: 1\n",
            "is not mapped to a model",
        ),
        (
            "  - name: x\n    feature: duo_chat\n    closed: {clients: 1}\n    requests: 1\n    thresholds: [ttft < 1s]\n",
            "needs a statistic",
        ),
        (
            "  - name: x\n    feature: duo_chat\n    sweep: {rates: [5, 2], step: 1s, slo: ttft.p99 < 1s}\n",
            "positive and rising",
        ),
        (
            "  - name: x\n    feature: duo_chat\n    closed: {clients: 1}\n    requests: 1\n    thresholds: [ttft.p99 < -5ms]\n",
            "is not a duration",
        ),
        (
            "  - name: x\n    feature: duo_chat\n    closed: {clients: 1}\n    requests: 1\n    thresholds: [ttft.p99 < 1e300ms]\n",
            "is not a duration",
        ),
    ];
    for (load, want) in cases {
        let e = gateprobe::scenario::load_str(Path::new("l.yaml"), &scenario("", load), &|_| None).expect_err(want);
        let text = e.to_string();
        assert!(text.contains(want), "{want}: {text}");
        assert!(text.contains("--> l.yaml:"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_shards_are_judged_by_the_thresholds() {
    let load = "  - name: chat\n    feature: duo_chat\n    closed: {clients: 4}\n    requests: 40\n    thresholds: [requests >= 40, rps >= 1000000]\n";
    let text = scenario("", load);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut inputs = Vec::new();
    for i in 1..=2 {
        let r = run_text(&text, Some((i, 2))).await;
        let path = dir.path().join(format!("shard{i}.json"));
        std::fs::write(&path, serde_json::to_vec(&r).expect("json")).expect("write");
        inputs.push(path);
    }
    let out = dir.path().join("merged");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_gateprobe"))
        .arg("merge")
        .args(&inputs)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("merge runs");
    assert_eq!(
        status.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
    let merged: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("gateprobe.json")).expect("merged")).expect("json");
    assert_eq!(merged["load"][0]["transport"]["requests"], 40);
    let checks = merged["checks"].as_array().expect("checks");
    let status_of = |id: &str| checks.iter().find(|c| c["id"] == id).map(|c| c["status"].clone());
    assert_eq!(status_of("threshold.chat.requests"), Some("passed".into()));
    assert_eq!(status_of("threshold.chat.rps"), Some("failed".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_through_an_openai_compatible_front() {
    // The reference gateway's OpenAI front stands in for LiteLLM (which .ci/run drives
    // with scenarios/litellm-capacity.yaml when it is installed).
    let base = std::fs::read_to_string("scenarios/openai-front.yaml").expect("scenario");
    let text = format!(
        "{base}\nload:\n  - name: chat\n    feature: duo_chat\n    open: {{rate: 50}}\n    requests: 30\n    thresholds: [error_rate < 1%]\n"
    );
    let s = gateprobe::scenario::load_str(Path::new("front.yaml"), &text, &|_| None).expect("valid");
    let r = run::run(&s, &RunOptions::default(), &CancellationToken::new()).await;
    let p = &r.load[0];
    assert_eq!(p.transport.requests, 30, "{:?}", r.aborted);
    assert_eq!(p.error_rate, 0.0, "{:?}", p.transport.errors);
    assert!(
        p.llm.output_tokens > 30,
        "streamed chat completions carry several tokens each"
    );
    assert_eq!(p.llm.histograms["gateway_overhead"].count, 30);
    assert_eq!(status(&r, "threshold.chat.error_rate"), Status::Passed);
}
