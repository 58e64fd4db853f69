//! Ctrl-C (SIGINT) or SIGTERM during a run: gateprobe stops within two seconds and
//! writes complete reports marked `interrupted`.

#![cfg(unix)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SLOW: &str = r#"
gateway: {kind: builtin}
backends:
  slow:
    provider: openai
    models: [m]
    timing: {ttft: 3s}
self_hosted_models:
  - {name: slow, family: mistral, endpoint: "{{ backends.slow.url }}/v1", identifier: custom_openai/m}
features:
  duo_chat: slow
  code_generations: slow
"#;

fn interrupt_with(signal: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = dir.path().join("slow.yaml");
    std::fs::write(&scenario, SLOW).expect("write");
    let reports = dir.path().join("reports");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gateprobe"))
        .arg("run")
        .arg(&scenario)
        .arg("--report-dir")
        .arg(&reports)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Let it start its servers and get stuck on the slow backend.
    std::thread::sleep(Duration::from_millis(1500));
    let sent = Instant::now();
    let ok = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
    let status = child.wait().expect("wait");
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(2), "took {took:?} to stop after {signal}");
    assert_eq!(status.code(), Some(3), "an interrupted run is not a pass");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("gateprobe.json")).expect("report")).expect("json");
    assert_eq!(report["interrupted"], true);
    let not_run = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["actual"].as_str().is_some_and(|a| a.starts_with("not run")))
        .count();
    assert!(not_run > 0, "checks not reached are reported as not run");
    assert!(
        std::fs::read_to_string(reports.join("junit.xml"))
            .expect("junit")
            .ends_with("</testsuites>\n")
    );
    // No temp files are left behind next to the reports.
    let leftovers: Vec<_> = std::fs::read_dir(&reports)
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn sigint_stops_quickly_with_complete_reports() {
    interrupt_with("-INT");
}

#[test]
fn sigterm_stops_quickly_with_complete_reports() {
    interrupt_with("-TERM");
}
