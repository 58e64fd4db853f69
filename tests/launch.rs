//! Launched gateways without LiteLLM: gateprobe launches its own reference gateway as
//! a separate process (`gateprobe gateway`), waits for it, runs, and stops it by
//! process group; a gateway that dies early aborts the run with its captured output
//! (redacted); SIGTERM to gateprobe stops the launched process too.

use std::path::Path;
use std::time::{Duration, Instant};

use gateprobe::report::Status;
use gateprobe::run::{self, RunOptions};
use gateprobe::scenario;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio_util::sync::CancellationToken;

const SCENARIO: &str = r#"version: 1
name: launched
gateway:
  kind: aigw
  auth:
    token: tok-launched-51c2
  timeout: 10s
  launch:
    command: ["${env:GATEPROBE_BIN:-gateprobe}", gateway, "${env:SELF:-launched.yaml}", --listen, "127.0.0.1:{{ launch.port }}"]
    ready: "http://127.0.0.1:{{ launch.port }}/monitoring/healthz"
    timeout: 30s
backends:
  vllm-a: {provider: openai, models: [Mixtral-8x7B-Instruct-v0.1], api_key: sk-launched-a-77}
  vllm-c: {provider: openai, models: [codegemma-7b]}
self_hosted_models:
  - {name: mixtral, family: mixtral, endpoint: "{{ backends.vllm-a.url }}/v1", api_key: sk-launched-a-77, identifier: custom_openai/Mixtral-8x7B-Instruct-v0.1}
  - {name: codegemma, family: codegemma, endpoint: "{{ backends.vllm-c.url }}/v1", identifier: codegemma-7b}
features:
  code_completions: codegemma
  duo_chat: mixtral
"#;

fn alive(pid: u32) -> bool {
    kill(Pid::from_raw(pid as i32), None).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launched_gateway_is_started_checked_and_stopped() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("launched.yaml");
    std::fs::write(&path, SCENARIO).expect("write");
    let self_path = path.display().to_string();
    let env = |n: &str| match n {
        "GATEPROBE_BIN" => Some(env!("CARGO_BIN_EXE_gateprobe").to_owned()),
        "SELF" => Some(self_path.clone()),
        _ => None,
    };
    let s = scenario::load_str(&path, SCENARIO, &env).expect("valid");
    let reports = dir.path().join("reports");
    let opts = RunOptions {
        work_dir: Some(reports.clone()),
        ..RunOptions::default()
    };
    let r = run::run(&s, &opts, &CancellationToken::new()).await;
    let bad: Vec<_> = r
        .checks
        .iter()
        .filter(|c| matches!(c.status, Status::Failed | Status::Error))
        .map(|c| format!("{} {}", c.id, c.actual))
        .collect();
    assert!(bad.is_empty(), "{bad:?} (aborted: {:?})", r.aborted);
    assert!(r.summary.passed >= 8, "{:?}", r.summary);
    let l = r.gateway.launched.expect("launch info");
    assert!(
        l.exit.as_deref().unwrap_or("").starts_with("stopped by gateprobe"),
        "{:?}",
        l.exit
    );
    assert!(l.ready_ms.is_some());
    assert!(!alive(l.pid.expect("pid")), "the launched gateway outlived the run");
    assert_eq!(l.logs, vec!["gateway.stdout.log", "gateway.stderr.log"]);
    let out = std::fs::read_to_string(reports.join("gateway.stdout.log")).expect("stdout log");
    assert!(
        out.contains("reference gateway listening on http://127.0.0.1:"),
        "{out}"
    );
}

fn dying(dir: &Path, script: &str) -> gateprobe::scenario::Scenario {
    let text = format!(
        "version: 1\ngateway:\n  kind: openai\n  auth: {{token: tok-x}}\n  launch:\n    command: [sh, -c, '{script}']\n    env: {{SECRET_TOKEN: sk-planted-launch-9d1e}}\n    ready: \"http://127.0.0.1:{{{{ launch.port }}}}/health\"\n    timeout: 60s\nbackends:\n  v: {{provider: openai, models: [M]}}\nself_hosted_models:\n  - {{name: m, family: mixtral, endpoint: \"{{{{ backends.v.url }}}}/v1\", identifier: custom_openai/M}}\n"
    );
    let path = dir.join("dying.yaml");
    scenario::load_str(&path, &text, &|_| None).expect("valid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_dies_early_aborts_the_run_with_its_redacted_output() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = dying(
        dir.path(),
        "echo \"starting with $SECRET_TOKEN\"; echo broken config >&2; exit 3",
    );
    let opts = RunOptions {
        work_dir: Some(dir.path().to_owned()),
        ..RunOptions::default()
    };
    let started = Instant::now();
    let r = run::run(&s, &opts, &CancellationToken::new()).await;
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "waited out the ready timeout"
    );
    let why = r.aborted.expect("aborted");
    assert!(why.contains("exited before it was ready"), "{why}");
    assert!(r.checks.iter().all(|c| c.status == Status::Error));
    let out = std::fs::read_to_string(dir.path().join("gateway.stdout.log")).expect("log");
    assert!(out.contains("starting with [redacted:"), "{out}");
    assert!(!out.contains("sk-planted-launch-9d1e"));
    let err = std::fs::read_to_string(dir.path().join("gateway.stderr.log")).expect("log");
    assert_eq!(err, "broken config\n");
}

/// First start: a Python parent holds the port while the real gateway tries to bind
/// it (a real EADDRINUSE); every later start: the gateway alone.
const TAKEN_ONCE: &str = r#"port=$1; bin=$2; self=$3; mark=$4
if [ -e "$mark" ]; then exec "$bin" gateway "$self" --listen "127.0.0.1:$port"; fi
echo "$port" > "$mark"
exec python3 -c 'import socket, subprocess, sys
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
sys.exit(subprocess.call(sys.argv[2:]))' "$port" "$bin" gateway "$self" --listen "127.0.0.1:$port""#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_whose_port_was_taken_is_started_again_on_another() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("launched.yaml");
    let mark = dir.path().join("first-port");
    let command = format!(
        "    command: [sh, -c, {}, sh, \"{{{{ launch.port }}}}\", \"${{env:GATEPROBE_BIN:-gateprobe}}\", \"${{env:SELF:-launched.yaml}}\", \"{}\"]\n",
        serde_json::to_string(TAKEN_ONCE).expect("json"),
        mark.display()
    );
    let text = SCENARIO.replace(
        SCENARIO
            .lines()
            .find(|l| l.trim_start().starts_with("command:"))
            .expect("command line"),
        command.trim_end(),
    );
    std::fs::write(&path, &text).expect("write");
    let self_path = path.display().to_string();
    let env = |n: &str| match n {
        "GATEPROBE_BIN" => Some(env!("CARGO_BIN_EXE_gateprobe").to_owned()),
        "SELF" => Some(self_path.clone()),
        _ => None,
    };
    let s = scenario::load_str(&path, &text, &env).expect("valid");
    let opts = RunOptions {
        work_dir: Some(dir.path().join("reports")),
        ..RunOptions::default()
    };
    let r = run::run(&s, &opts, &CancellationToken::new()).await;
    let log = |n: &str| std::fs::read_to_string(dir.path().join("reports").join(n)).unwrap_or_default();
    assert_eq!(
        r.aborted,
        None,
        "{}{}",
        log("gateway.stdout.log"),
        log("gateway.stderr.log")
    );
    assert_eq!(r.summary.failed + r.summary.errors, 0, "{:?}", r.summary);
    let l = r.gateway.launched.expect("launch info");
    assert_eq!(l.port_retries, 1);
    assert_eq!(
        l.logs,
        [
            "gateway.stdout.1.log",
            "gateway.stderr.1.log",
            "gateway.stdout.log",
            "gateway.stderr.log"
        ]
    );
    assert!(log("gateway.stderr.1.log").contains("Address already in use"));
    let first = std::fs::read_to_string(&mark).expect("the first start ran");
    let url = r.gateway.url.expect("url");
    assert!(!url.ends_with(&format!(":{}", first.trim())), "{url} is the taken port");
}

#[test]
fn sigterm_to_gateprobe_stops_the_launched_gateway() {
    let dir = tempfile::tempdir().expect("tmp");
    let scenario = dir.path().join("hang.yaml");
    let text = "version: 1\ngateway:\n  kind: openai\n  auth: {token: tok-x}\n  launch:\n    command: [sh, -c, 'echo $$ > {{ launch.report_dir }}/child.pid; exec sleep 300']\n    ready: \"http://127.0.0.1:{{ launch.port }}/health\"\n    timeout: 120s\nbackends:\n  v: {provider: openai, models: [M]}\nself_hosted_models:\n  - {name: m, family: mixtral, endpoint: \"{{ backends.v.url }}/v1\", identifier: custom_openai/M}\n";
    std::fs::write(&scenario, text).expect("write");
    let reports = dir.path().join("r");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gateprobe"))
        .args([
            "run",
            scenario.to_str().expect("utf8"),
            "--report-dir",
            reports.to_str().expect("utf8"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("gateprobe runs");
    let pid_file = reports.join("child.pid");
    let deadline = Instant::now() + Duration::from_secs(20);
    let launched: u32 = loop {
        if let Some(p) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            break p;
        }
        assert!(Instant::now() < deadline, "the gateway was never launched");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(alive(launched));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("signal");
    let status = child.wait().expect("exit");
    assert_eq!(status.code(), Some(3), "interrupted runs exit 3");
    assert!(!alive(launched), "the launched gateway outlived gateprobe");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("gateprobe.json")).expect("report")).expect("json");
    assert_eq!(report["interrupted"], true);
}

#[test]
fn a_launch_that_fails_after_spawning_leaves_no_process_behind() {
    // The log file cannot be created (a directory has its name): start fails after the
    // process was spawned, and the process must not outlive that failure.
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir(dir.path().join("gateway.stdout.log")).expect("mkdir");
    let pidfile = dir.path().join("pid");
    let spec = gateprobe::launch::LaunchSpec {
        command: vec![
            "sh".into(),
            "-c".into(),
            format!("echo $$ > {}; exec sleep 30", pidfile.display()),
        ],
        env: vec![],
        dir: dir.path().to_owned(),
    };
    let e = gateprobe::launch::start(&spec, &gateprobe::redact::Redactor::default()).expect_err("no log file");
    assert!(e.to_string().contains("cannot prepare the launch"), "{e}");
    // A shell left running writes its pid at once; one stopped first never does.
    let wait_pid = Instant::now() + Duration::from_secs(2);
    let pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        {
            break pid;
        }
        if Instant::now() > wait_pid {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(pid), "the spawned process outlived the failed launch");
}

/// A gateway whose child leaves the process group (`setsid`) and whose grandchild
/// leaves its parent: every one of them is stopped with the gateway.
#[test]
fn every_descendant_of_a_launched_gateway_is_stopped_even_in_another_session() {
    let dir = tempfile::tempdir().expect("tmp");
    let script = format!(
        "setsid sh -c 'echo $$ > {d}/session.pid; exec sleep 300' & \
         (sh -c 'echo $$ > {d}/orphan.pid; exec sleep 300' &) ; \
         echo $$ > {d}/gateway.pid; exec sleep 300",
        d = dir.path().display()
    );
    let spec = gateprobe::launch::LaunchSpec {
        command: vec!["sh".into(), "-c".into(), script],
        env: vec![],
        dir: dir.path().to_owned(),
    };
    let launched = gateprobe::launch::start(&spec, &gateprobe::redact::Redactor::default()).expect("started");
    let read = |n: &str| -> Option<u32> {
        std::fs::read_to_string(dir.path().join(n))
            .ok()
            .and_then(|t| t.trim().parse().ok())
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let pids: Vec<u32> = loop {
        let all: Vec<u32> = ["gateway.pid", "session.pid", "orphan.pid"]
            .iter()
            .filter_map(|n| read(n))
            .collect();
        if all.len() == 3 {
            break all;
        }
        assert!(Instant::now() < deadline, "the processes never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(pids.iter().all(|&p| alive(p)));
    drop(launched);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&p| alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
    assert!(left.is_empty(), "{left:?} outlived the launch");
}

/// SIGHUP (a closed terminal) and SIGQUIT end a run as SIGTERM does: reports written,
/// the launched gateway and its session-leaving child stopped.
#[test]
fn sighup_and_sigquit_stop_the_run_and_its_gateway_like_sigterm() {
    for sig in [Signal::SIGHUP, Signal::SIGQUIT] {
        let dir = tempfile::tempdir().expect("tmp");
        let scenario = dir.path().join("hang.yaml");
        let text = "version: 1\ngateway:\n  kind: openai\n  auth: {token: tok-x}\n  launch:\n    command: [sh, -c, 'setsid sh -c \"echo \\$\\$ > {{ launch.report_dir }}/session.pid; exec sleep 300\" & echo $$ > {{ launch.report_dir }}/child.pid; exec sleep 300']\n    ready: \"http://127.0.0.1:{{ launch.port }}/health\"\n    timeout: 120s\nbackends:\n  v: {provider: openai, models: [M]}\nself_hosted_models:\n  - {name: m, family: mixtral, endpoint: \"{{ backends.v.url }}/v1\", identifier: custom_openai/M}\n";
        std::fs::write(&scenario, text).expect("write");
        let reports = dir.path().join("r");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gateprobe"))
            .args([
                "run",
                scenario.to_str().expect("utf8"),
                "--report-dir",
                reports.to_str().expect("utf8"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("gateprobe runs");
        let deadline = Instant::now() + Duration::from_secs(20);
        let read = |n: &str| -> Option<u32> {
            std::fs::read_to_string(reports.join(n))
                .ok()
                .and_then(|t| t.trim().parse().ok())
        };
        let pids: Vec<u32> = loop {
            if let (Some(a), Some(b)) = (read("child.pid"), read("session.pid")) {
                break vec![a, b];
            }
            assert!(Instant::now() < deadline, "the gateway was never launched");
            std::thread::sleep(Duration::from_millis(50));
        };
        kill(Pid::from_raw(child.id() as i32), sig).expect("signal");
        let status = child.wait().expect("exit");
        assert_eq!(status.code(), Some(3), "{sig}: interrupted runs exit 3");
        let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        assert!(left.is_empty(), "{sig}: {left:?} outlived gateprobe");
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(reports.join("gateprobe.json")).expect("report"))
                .expect("json");
        assert_eq!(report["interrupted"], true, "{sig}");
    }
}
