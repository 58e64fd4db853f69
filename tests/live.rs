//! Models whose endpoints are not gateprobe mocks (real model servers, here mocks
//! started apart from the run, which the run cannot see into): every check a run on
//! mocks plans is listed, run or skipped with the reason, and each mapped feature is
//! judged end to end by a `live` check: a non-empty answer, no error, within the
//! instance's AI gateway timeout.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use gateprobe::mock::journal::Journal;
use gateprobe::report::{RunReport, Status};
use gateprobe::run::{self, RunOptions};
use gateprobe::server::ServerHost;
use tokio_util::sync::CancellationToken;

const QUICKSTART: &str = "scenarios/quickstart.yaml";

async fn run_text(text: &str) -> RunReport {
    let s = gateprobe::scenario::load_str(Path::new("live.yaml"), text, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    run::run(&s, &RunOptions::default(), &CancellationToken::new()).await
}

/// The quickstart with its OpenAI-compatible and Azure models pointed at mocks the run
/// did not start (`backend_extra` added to each of those backends), and its scenario
/// text before the rewrite.
fn real_endpoints(
    host: &ServerHost,
    backend_extra: &str,
    instance: &str,
) -> (String, Vec<gateprobe::mock::RunningMock>) {
    let mut text = std::fs::read_to_string(QUICKSTART).expect("quickstart");
    // Give each served backend the extra lines (a timing model, a fault), in a copy that
    // is started here, apart from the run.
    let mut apart = text.clone();
    for b in ["vllm-a", "vllm-b", "vllm-c", "azure"] {
        let head = format!("  {b}:\n");
        apart = apart.replacen(&head, &format!("{head}{backend_extra}"), 1);
    }
    let s = gateprobe::scenario::load_str(Path::new("apart.yaml"), &apart, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let mocks = gateprobe::mock::start_all(host, &s.backends, &Arc::new(Journal::new(Instant::now(), 1000)))
        .expect("start the mocks apart");
    for m in &mocks {
        text = text.replace(&format!("{{{{ backends.{}.url }}}}", m.name), &m.server.url());
    }
    (text.replacen("gateway:\n", &format!("{instance}gateway:\n"), 1), mocks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_is_listed_and_each_feature_is_judged_end_to_end() {
    let on_mocks = run_text(&std::fs::read_to_string(QUICKSTART).expect("read")).await;
    assert!(
        on_mocks.checks.iter().all(|c| c.family != "live"),
        "no live check on mocks"
    );

    let host = ServerHost::new(1).expect("host");
    let (text, _mocks) = real_endpoints(&host, "", "");
    let r = run_text(&text).await;
    for c in &on_mocks.checks {
        let there = r.checks.iter().find(|x| x.id == c.id);
        assert!(
            there.is_some(),
            "{} is missing from the report of a run on real endpoints",
            c.id
        );
    }
    // What the backend received cannot be seen: skipped, saying so.
    for id in [
        "routing.mixtral-chat.backend",
        "auth.mixtral-chat.key_forwarded",
        "endpoint.mixtral-chat.v1_path",
        "feature_mapping.duo_chat.mapped",
    ] {
        let c = r.checks.iter().find(|c| c.id == id).expect(id);
        assert_eq!(c.status, Status::Skipped, "{id}");
        assert!(c.actual.contains("not a gateprobe mock"), "{id}: {}", c.actual);
    }
    // What the client gets is judged: streams, and every mapped feature end to end.
    let live: Vec<_> = r.checks.iter().filter(|c| c.family == "live").collect();
    assert_eq!(live.len(), 11, "{:#?}", live.iter().map(|c| &c.id).collect::<Vec<_>>());
    assert!(live.iter().all(|c| c.status == Status::Passed), "{live:#?}");
    assert!(
        r.checks
            .iter()
            .any(|c| c.id == "streaming.duo_chat" && c.status == Status::Passed)
    );
    assert_eq!(r.summary.failed + r.summary.errors, 0, "{:#?}", r.checks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_model_fails_against_the_instance_timeout() {
    let host = ServerHost::new(1).expect("host");
    // One check, one request: the model takes 1.5 s for each.
    let only = "checks: [live.code_generations]\n";
    let (text, _mocks) = real_endpoints(
        &host,
        "    timing: {ttft: 1500ms}\n",
        &format!("{only}instance: {{gateway_timeout: 1s}}\n"),
    );
    let r = run_text(&text).await;
    let c = r
        .checks
        .iter()
        .find(|c| c.id == "live.code_generations")
        .expect("live check");
    assert_eq!(c.status, Status::Failed, "{}", c.actual);
    assert!(
        c.actual.contains("answered after") && c.actual.contains("gives up at 1s"),
        "{}",
        c.actual
    );
    // The same models within GitLab's default 60 s.
    let (text, _more) = real_endpoints(&host, "    timing: {ttft: 1500ms}\n", only);
    let r = run_text(&text).await;
    let c = r
        .checks
        .iter()
        .find(|c| c.id == "live.code_generations")
        .expect("live check");
    assert_eq!(c.status, Status::Passed, "{}", c.actual);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_answer_fails_end_to_end() {
    let host = ServerHost::new(1).expect("host");
    let (text, _mocks) = real_endpoints(&host, "    faults: [{do: empty_200}]\n", "");
    let r = run_text(&text).await;
    let failed: Vec<&str> = r
        .checks
        .iter()
        .filter(|c| c.family == "live" && c.status == Status::Failed)
        .map(|c| c.id.as_str())
        .collect();
    assert!(failed.contains(&"live.code_generations"), "{failed:?}");
    assert!(failed.contains(&"live.duo_chat"), "{failed:?}");
}

#[test]
fn the_instance_timeout_is_validated() {
    let text = std::fs::read_to_string(QUICKSTART).expect("read").replacen(
        "gateway:\n",
        "instance: {gateway_timeout: 0s}\ngateway:\n",
        1,
    );
    let e = gateprobe::scenario::load_str(Path::new("q.yaml"), &text, &|_| None)
        .expect_err("refused")
        .to_string();
    assert!(e.contains("instance.gateway_timeout") && e.contains("60s"), "{e}");
}
