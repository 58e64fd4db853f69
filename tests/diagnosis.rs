//! Diagnosis and setup mistakes: one root cause is one problem line naming the checks
//! it explains; a rule about a model's keys holds for every request of the model, in
//! whatever order they go; a setup mistake is found before the checks run and
//! reported once, the run aborted (exit 3), instead of failing every check.

mod faults;

use std::process::Command;

use faults::{ids, run_with, shipped};
use gateprobe::gateway::{self, Fault, GatewaySettings};
use gateprobe::report::{RunReport, Status};
use gateprobe::run::{self, RunOptions};
use gateprobe::scenario::{BuiltinAuth, Scenario};
use tokio_util::sync::CancellationToken;

fn quickstart() -> Scenario {
    shipped("scenarios/quickstart.yaml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_root_cause_is_one_problem() {
    let r = run_with(&quickstart(), vec![Fault::ForwardClientToken]).await;
    let failed = ids(&r, Status::Failed);
    assert!(failed.len() >= 20, "{failed:?}");
    assert_eq!(r.diagnosis.len(), 1, "{:#?}", r.diagnosis);
    let p = &r.diagnosis[0];
    assert!(p.sentence.contains("the instance's token"), "{}", p.sentence);
    assert!(!p.setup);
    let mut explained: Vec<&str> = p.checks.iter().map(String::as_str).collect();
    explained.sort_unstable();
    let mut failed = failed;
    failed.sort_unstable();
    assert_eq!(explained, failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setup_mistake_is_a_setup_problem() {
    let text = std::fs::read_to_string("scenarios/quickstart.yaml").expect("read");
    let text = text.replacen(
        "endpoint: \"{{ backends.vllm-a.url }}/v1\"",
        "endpoint: \"{{ backends.vllm-a.url }}\"",
        1,
    );
    let path = std::path::Path::new("scenarios/quickstart.yaml");
    let s = gateprobe::scenario::load_str(path, &text, &|_| None).expect("valid");
    let r = run_with(&s, vec![]).await;
    let p = r.diagnosis.first().expect("a problem");
    assert!(p.setup, "{p:?}");
    assert!(
        p.sentence.contains("`mixtral-chat`'s endpoint has no /v1"),
        "{}",
        p.sentence
    );
    assert!(p.checks.iter().any(|c| c == "endpoint.mixtral-chat.v1_suffix"));
    assert!(
        p.checks.iter().any(|c| c == "feature_mapping.duo_chat.mapped"),
        "{:?}",
        p.checks
    );
}

/// Runs with the probes in the order `seed` shuffles them into.
async fn run_seeded(s: &Scenario, faults: Vec<Fault>, seed: u64) -> RunReport {
    let opts = RunOptions {
        faults,
        seed: Some(seed),
        ..RunOptions::default()
    };
    run::run(s, &opts, &CancellationToken::new()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_key_on_a_later_request_is_caught_in_either_order() {
    // The fault sends a keyless model the last key it saw: the keyless model's first
    // request may come before any keyed one, and get nothing.
    let text = std::fs::read_to_string("scenarios/quickstart.yaml").expect("read");
    let i = text.find("  - name: codegemma").expect("codegemma");
    let j = text.find("  - name: gpt-azure").expect("gpt-azure");
    let k = text.find("self_hosted_models:\n").expect("models") + "self_hosted_models:\n".len();
    // The keyless model first, then the others as shipped.
    let reordered = format!("{}{}{}{}", &text[..k], &text[i..j], &text[k..i], &text[j..]);
    let path = std::path::Path::new("scenarios/quickstart.yaml");
    let first = gateprobe::scenario::load_str(path, &reordered, &|_| None).expect("valid");
    assert_eq!(first.models[0].name, "codegemma");
    for s in [quickstart(), first] {
        for seed in 1..=4 {
            let r = run_seeded(&s, vec![Fault::SendForeignKey], seed).await;
            let c = r
                .checks
                .iter()
                .find(|c| c.id == "auth.codegemma.no_foreign_key")
                .expect("check");
            assert_eq!(c.status, Status::Failed, "seed {seed}: {}", c.actual);
            assert!(c.actual.contains("the key of model"), "{}", c.actual);
        }
        // And the order does not change a correct gateway's verdicts.
        let r = run_seeded(&s, vec![], 9).await;
        assert_eq!(ids(&r, Status::Failed), Vec::<&str>::new());
    }
}

/// A built-in gateway served on its own, as an external gateway at a URL.
fn external(auth: BuiltinAuth, token: &str) -> (gateprobe::server::ServerHost, gateprobe::server::Server) {
    let router = gateway::router(GatewaySettings::new(
        auth,
        Some(token.into()),
        std::time::Duration::from_secs(5),
    ))
    .expect("router");
    let host = gateprobe::server::ServerHost::new(1).expect("host");
    let server = host.serve(([127, 0, 0, 1], 0).into(), router).expect("serve");
    (host, server)
}

/// The quickstart without its Bedrock models, whose runtime an external gateway
/// would need to be told about.
fn without_bedrock() -> Scenario {
    let mut s = quickstart();
    for entry in [
        "!*.mixtral-bedrock.*",
        "!*.claude-apac.*",
        "!*.duo_chat_write_tests.*",
        "!*.summarize_review.*",
        "!streaming.duo_chat_write_tests",
    ] {
        s.select(entry).expect("pattern");
    }
    s
}

async fn run_at(s: &Scenario, url: Option<String>, faults: Vec<Fault>) -> RunReport {
    let opts = RunOptions {
        gateway_url: url,
        faults,
        ..RunOptions::default()
    };
    run::run(s, &opts, &CancellationToken::new()).await
}

fn aborted_once(r: &RunReport, says: &str) {
    let why = r.aborted.as_deref().unwrap_or_default();
    assert!(why.contains(says), "{why}");
    assert_eq!(
        r.summary.failed,
        0,
        "a setup mistake fails no rule: {:?}",
        r.checks
            .iter()
            .filter(|c| c.status == Status::Failed)
            .map(|c| (&c.id, &c.actual))
            .collect::<Vec<_>>()
    );
    assert!(
        r.checks
            .iter()
            .all(|c| c.status != Status::Passed || c.id.ends_with(".v1_suffix"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_mistakes_are_found_before_the_checks_and_reported_once() {
    // Nothing listens at the gateway's address.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let r = run_at(&without_bedrock(), Some(format!("http://127.0.0.1:{port}")), vec![]).await;
    aborted_once(&r, "nothing answers at the gateway's address");
    // The gateway refuses the scenario's token.
    let (_h, gw) = external(BuiltinAuth::Enforce, "another-token-7e1b");
    let r = run_at(&without_bedrock(), Some(gw.url()), vec![]).await;
    aborted_once(&r, "refuses the scenario's client token (401");
    // An external gateway cannot know a Bedrock backend's port chosen at run time.
    let r = run_at(&quickstart(), Some(gw.url()), vec![]).await;
    aborted_once(&r, "listens on a port chosen at run time");
    // A built-in fault asked of an external gateway, or of a front it does not touch.
    let r = run_at(&without_bedrock(), Some(gw.url()), vec![Fault::DropApiKey]).await;
    aborted_once(&r, "breaks the built-in gateway");
    let r = run_at(&quickstart(), None, vec![Fault::NoChatFallback]).await;
    aborted_once(&r, "would change nothing");
}

#[test]
fn a_setup_mistake_exits_3_with_one_message() {
    let dir = tempfile::tempdir().expect("tmp");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_gateprobe"))
        .args(["run", "scenarios/aigw.yaml", "--report-dir"])
        .arg(dir.path())
        .arg("--gateway-url")
        .arg(format!("http://127.0.0.1:{port}"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("run aborted:").count(), 1, "{stdout}");
    assert!(stdout.contains("nothing answers at the gateway's address"), "{stdout}");
    // The checks that could not run are one line, not one block each.
    assert!(stdout.lines().filter(|l| l.contains("ERROR")).count() <= 2, "{stdout}");
}
