//! A CI gate that cannot pass by accident: a load-only run whose requests all failed,
//! against a gateway that answers nothing useful, must not exit 0, and its reports
//! must say so (the JUnit file has a failing testcase, the summary is not green).

use std::process::Command;

use gateprobe::gateway::hostile::{Hostile, HostileGateway};
use gateprobe::server::ServerHost;

fn load_only(url: &str) -> String {
    format!(
        r#"version: 1
name: load-only
gateway: {{kind: aigw, url: "{url}", timeout: 1s}}
backends:
  v: {{provider: openai, models: [m]}}
self_hosted_models:
  - {{name: m, family: mistral, endpoint: "{{{{ backends.v.url }}}}/v1", identifier: custom_openai/m}}
features: {{duo_chat: m}}
checks: []
load:
  - {{name: chat, feature: duo_chat, open: {{rate: 100}}, requests: 30}}
"#
    )
}

/// Runs a load-only scenario against a hostile gateway: exit code, junit, summary.
fn run_against(mode: Hostile) -> (Option<i32>, String, String, String) {
    let host = ServerHost::new(1).expect("host");
    let gw = HostileGateway::start(mode, ([127, 0, 0, 1], 0).into(), &host.handle()).expect("gateway");
    let dir = tempfile::tempdir().expect("tempdir");
    let s = dir.path().join("s.yaml");
    std::fs::write(&s, load_only(&gw.url())).expect("write");
    let reports = dir.path().join("r");
    let out = Command::new(env!("CARGO_BIN_EXE_gateprobe"))
        .arg("run")
        .arg(&s)
        .arg("--report-dir")
        .arg(&reports)
        .output()
        .expect("runs");
    let read = |f: &str| std::fs::read_to_string(reports.join(f)).unwrap_or_default();
    (
        out.status.code(),
        read("junit.xml"),
        read("summary.md"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_load_run_that_got_no_reply_is_not_a_pass() {
    // Every connection closed without a status line: 30 of 30 requests failed below
    // HTTP. This used to exit 0 with a green summary and a JUnit file of 0 tests.
    let (code, junit, summary, stdout) = run_against(Hostile::NoStatusLine);
    assert_eq!(code, Some(3), "{stdout}");
    assert!(
        junit.contains("threshold.chat.successes") && junit.contains("<error"),
        "{junit}"
    );
    assert!(summary.starts_with("## ❌"), "{summary}");
    assert!(stdout.contains("none of 30 requests got a reply"), "{stdout}");
}

#[test]
fn a_load_run_whose_every_reply_was_an_error_fails() {
    // Replies came, none a success (307 to itself): the gateway failed, exit 4.
    let (code, junit, summary, stdout) = run_against(Hostile::RedirectLoop);
    assert_eq!(code, Some(4), "{stdout}");
    assert!(junit.contains("<failure"), "{junit}");
    assert!(summary.starts_with("## ❌"), "{summary}");
    assert!(
        stdout.contains("none of 30 requests succeeded (status_307=30)"),
        "{stdout}"
    );
}
