//! The binary as CI uses it: exit codes, report files, and what it prints.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn gateprobe() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gateprobe"));
    // The scenarios read these; make runs independent of the caller's shell.
    for v in [
        "GATEPROBE_GATEWAY_TOKEN",
        "GATEPROBE_VLLM_A_KEY",
        "GATEPROBE_VLLM_B_KEY",
    ] {
        c.env_remove(v);
    }
    c
}

fn run(args: &[&str]) -> Output {
    gateprobe().args(args).output().expect("gateprobe runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn quickstart_exits_0_and_writes_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf8");
    let out = run(&["run", "scenarios/quickstart.yaml", "--report-dir", d]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).expect("junit");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("gateprobe.json")).expect("json"))
            .expect("parse");
    let total = report["summary"]["total"].as_u64().expect("total");
    assert_eq!(junit.matches("<testcase ").count() as u64, total);
    assert!(!junit.contains("<failure"));
    assert!(text(&out.stdout).contains("0 failed, 0 errors"));
}

#[test]
fn a_fault_exits_4_with_junit_failures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf8");
    let out = run(&[
        "run",
        "scenarios/quickstart.yaml",
        "--report-dir",
        d,
        "--builtin-fault",
        "drop-api-key",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stdout));
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).expect("junit");
    assert!(
        junit.contains("name=\"auth.mixtral-chat.key_forwarded\">\n      <failure"),
        "{junit}"
    );
    assert!(text(&out.stdout).contains("FAIL  auth.mixtral-chat.key_forwarded"));
}

#[test]
fn an_unreachable_gateway_exits_3_and_still_reports() {
    // Bind then drop a listener: the port is (almost certainly) closed afterwards.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf8");
    let out = run(&[
        "run",
        "scenarios/quickstart.yaml",
        "--report-dir",
        d,
        "--gateway-url",
        &url,
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("gateprobe.json")).expect("json"))
            .expect("parse");
    assert!(
        report["aborted"]
            .as_str()
            .expect("aborted")
            .contains("stopped answering")
    );
    assert_eq!(report["summary"]["failed"], 0);
    assert!(report["summary"]["errors"].as_u64().expect("errors") > 0);
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).expect("junit");
    assert!(junit.contains("<error message="));
}

#[test]
fn invalid_scenarios_exit_2_with_position_and_hint() {
    let out = run(&["validate", "tests/fixtures/bad/unknown_feature.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("tests/fixtures/bad/unknown_feature.yaml:17:3"), "{err}");
    assert!(err.contains("did you mean `code_completions`?"), "{err}");
    let out = run(&["run", "tests/fixtures/bad/missing_env.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["validate", "scenarios/quickstart.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn usage_errors_exit_1() {
    assert_eq!(run(&["run"]).status.code(), Some(1));
    assert_eq!(
        run(&["run", "x.yaml", "--builtin-fault", "no-such-fault"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(run(&["frobnicate"]).status.code(), Some(1));
    assert_eq!(run(&["--help"]).status.code(), Some(0));
}

#[test]
fn list_faults_prints_name_then_rule() {
    let out = run(&["gateway", "--list-faults"]);
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), gateprobe::gateway::Fault::ALL.len());
    for (line, f) in lines.iter().zip(gateprobe::gateway::Fault::ALL) {
        assert!(line.starts_with(&format!("{} ", f.name())), "{line}");
        assert!(line.len() > f.name().len() + 10);
    }
}

#[test]
fn schema_prints_json() {
    let out = run(&["schema"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(v["properties"]["self_hosted_models"].is_object());
}

#[test]
fn planted_secrets_appear_nowhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secrets = [
        ("GATEPROBE_GATEWAY_TOKEN", "tok-PLANTED-9f3b2c71d0"),
        ("GATEPROBE_VLLM_A_KEY", "sk-PLANTED-a-41e8d2b6"),
        ("GATEPROBE_VLLM_B_KEY", "sk-PLANTED-b-7c05aa93"),
    ];
    for fault in [None, Some("leak-api-key-in-error"), Some("drop-api-key")] {
        let mut cmd = gateprobe();
        cmd.args(["run", "scenarios/quickstart.yaml", "-v", "--report-dir"])
            .arg(dir.path());
        if let Some(f) = fault {
            cmd.args(["--builtin-fault", f]);
        }
        for (k, v) in secrets {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("runs");
        let mut haystack = vec![
            ("stdout".to_owned(), text(&out.stdout)),
            ("stderr".to_owned(), text(&out.stderr)),
        ];
        for e in std::fs::read_dir(dir.path()).expect("dir") {
            let p = e.expect("entry").path();
            haystack.push((p.display().to_string(), std::fs::read_to_string(&p).expect("read")));
        }
        assert!(haystack.len() >= 4);
        for (where_, content) in &haystack {
            for (_, secret) in secrets {
                assert!(
                    !content.contains(secret),
                    "{secret} found in {where_} (fault {fault:?})"
                );
            }
        }
    }
}

#[test]
fn mock_prints_shell_evaluable_urls_and_serves() {
    let mut child = gateprobe()
        .args(["mock", "scenarios/quickstart.yaml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("line").expect("utf8");
    let second = lines.next().expect("line").expect("utf8");
    let _ = child.kill();
    let _ = child.wait();
    let parts: Vec<&str> = first.split(' ').collect();
    assert_eq!(parts[..3], ["#", "vllm-a", "openai"], "{first}");
    assert!(parts[3].starts_with("http://127.0.0.1:"));
    assert_eq!(second, format!("export GATEPROBE_BACKEND_VLLM_A_URL={}", parts[3]));
}

#[test]
fn gateway_subcommand_serves_health() {
    let mut child = gateprobe()
        .args(["gateway", "scenarios/quickstart.yaml", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let line = BufReader::new(child.stdout.take().expect("stdout"))
        .lines()
        .next()
        .expect("line")
        .expect("utf8");
    let url = line.rsplit(' ').next().expect("url").to_owned();
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    use std::io::{Read, Write};
    s.write_all(b"GET /monitoring/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    let _ = child.kill();
    let _ = child.wait();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.ends_with("{}"), "{resp}");
    assert!(Path::new(env!("CARGO_BIN_EXE_gateprobe")).exists());
}

#[test]
fn a_closed_stdout_does_not_cost_the_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = gateprobe()
        .args([
            "run",
            "scenarios/quickstart.yaml",
            "-v",
            "--builtin-fault",
            "append-v1",
            "--report-dir",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("panicked"));
    assert!(dir.path().join("gateprobe.json").exists());
}
