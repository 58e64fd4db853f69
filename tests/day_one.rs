//! A new user's first commands, run as written: mocks started with `eval "$(gateprobe
//! mock ...)"` return and serve, built-in scenarios run from any directory, `init`
//! writes a scenario an editor understands, completions and the man page come from the
//! CLI definition, and the messages of the first mistakes say what to do.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn gateprobe() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gateprobe"));
    for (k, _) in std::env::vars() {
        if k.starts_with("GATEPROBE_") {
            c.env_remove(k);
        }
    }
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `cmd`, killing it after `limit`: a command that should return must not hang
/// the suite.
fn output_within(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("did not return within {limit:?}: {}", text(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// `GET path` on 127.0.0.1 with a Bearer key; the status line and body.
fn get(url: &str, path: &str, key: &str) -> String {
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    resp
}

fn alive(pid: &str) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

#[test]
fn eval_of_gateprobe_mock_returns_and_the_mocks_serve() {
    // Exactly the README's form, in a POSIX shell; --for bounds the mock should this
    // test fail before it stops it.
    // The shell holds a descriptor of its own open (fd 7), as a CI runner's shell holds
    // pipes and locks: the background mock must not keep it.
    let held = tempfile::NamedTempFile::new().expect("tempfile");
    let script = format!(
        "exec 7>'{}'; eval \"$('{}' mock three-providers --for 120s)\" && printf '%s %s %s' \"$GATEPROBE_BACKEND_VLLM_URL\" \"$GATEPROBE_BACKEND_VLLM_API_KEY\" \"$GATEPROBE_MOCK_PID\"",
        held.path().display(),
        env!("CARGO_BIN_EXE_gateprobe")
    );
    let mut sh = Command::new("sh");
    sh.args(["-c", &script]);
    let out = output_within(sh, Duration::from_secs(30));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    let parts: Vec<&str> = printed.split(' ').collect();
    assert_eq!(parts.len(), 3, "{printed}");
    let (url, key, pid) = (parts[0], parts[1], parts[2]);
    assert!(url.starts_with("http://127.0.0.1:"), "{printed}");
    assert_eq!(key, "sk-profile-vllm-0a1b2c");
    assert!(text(&out.stderr).contains("kill $GATEPROBE_MOCK_PID"));
    // The mock outlived the command that started it, and serves with that key.
    let resp = get(url, "/v1/models", key);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("Mixtral-8x7B-Instruct-v0.1"), "{resp}");
    assert!(get(url, "/v1/models", "wrong").starts_with("HTTP/1.1 401"));
    let inherited: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fds")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target == held.path())
        .collect();
    assert!(
        inherited.is_empty(),
        "the mock kept the shell's descriptor: {inherited:?}"
    );
    // And stops when told to.
    assert!(Command::new("kill").arg(pid).status().expect("kill").success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(Instant::now() < deadline, "pid {pid} still runs");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_background_mock_that_cannot_start_says_why() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("m.yaml");
    std::fs::write(
        &file,
        format!("backends:\n  vllm:\n    provider: openai\n    port: {port}\n    models: [m]\n"),
    )
    .expect("write");
    let mut cmd = gateprobe();
    cmd.args(["mock", "--background"]).arg(&file);
    let out = output_within(cmd, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("in use"),
        "{err}"
    );
    assert!(!text(&out.stdout).contains("GATEPROBE_MOCK_PID"));
}

#[test]
fn env_only_prints_fixed_port_settings_and_starts_nothing() {
    let mut cmd = gateprobe();
    cmd.args(["mock", "scenarios/aigw.yaml", "--env-only"]);
    let out = output_within(cmd, Duration::from_secs(10));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    assert!(
        o.contains("export AWS_BEDROCK_RUNTIME_ENDPOINT=http://127.0.0.1:18090"),
        "{o}"
    );
    assert!(o.contains("export AWS_REGION_NAME=ap-southeast-1"), "{o}");
    assert!(!o.contains("GATEPROBE_MOCK_PID"));
}

#[test]
fn built_in_scenarios_run_from_any_directory() {
    let dir = tempfile::tempdir().expect("tmp");
    for name in ["quickstart", "scenarios/quickstart.yaml", "vendor-endpoint"] {
        let mut cmd = gateprobe();
        cmd.current_dir(dir.path()).args(["run", name, "--report-dir", "r"]);
        let out = output_within(cmd, Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stdout));
        assert!(dir.path().join("r/junit.xml").exists());
    }
    // The README's path names the built-in copy where no such file exists, saying so.
    let mut cmd = gateprobe();
    cmd.current_dir(dir.path())
        .args(["validate", "scenarios/quickstart.yaml"]);
    let out = output_within(cmd, Duration::from_secs(10));
    assert!(text(&out.stderr).contains("using the copy built into gateprobe"));
    // A name that is neither gets the list.
    let mut cmd = gateprobe();
    cmd.current_dir(dir.path()).args(["run", "quickstrat"]);
    let out = output_within(cmd, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("name a built-in one: quickstart, aigw"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn direct_runs_say_there_is_no_gateway() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut cmd = gateprobe();
    cmd.args(["run", "vendor-endpoint", "--report-dir"]).arg(dir.path());
    let out = output_within(cmd, Duration::from_secs(60));
    let first = text(&out.stdout).lines().next().unwrap_or_default().to_owned();
    assert!(first.contains("· no gateway (model endpoints directly) ·"), "{first}");
    assert!(!first.contains(" at -"), "{first}");
}

#[test]
fn init_writes_a_template_and_its_schema() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = gateprobe().arg("init").arg("--list").output().expect("run");
    let list = text(&out.stdout);
    for t in ["aigw", "litellm", "endpoint", "quickstart", "three-providers"] {
        assert!(list.contains(&format!("  {t} ")), "{list}");
    }
    for t in ["aigw", "litellm", "endpoint"] {
        let file = dir.path().join(format!("{t}/my.yaml"));
        let out = gateprobe().args(["init", t, "-o"]).arg(&file).output().expect("run");
        assert!(out.status.success(), "{}", text(&out.stderr));
        let written = std::fs::read_to_string(&file).expect("scenario");
        assert!(written.starts_with("# yaml-language-server: $schema=scenario.schema.json\n"));
        let schema = std::fs::read_to_string(dir.path().join(format!("{t}/scenario.schema.json"))).expect("schema");
        assert!(schema.contains("urn:gateprobe:schema:scenario:1"));
        let v = gateprobe().arg("validate").arg(&file).output().expect("run");
        assert!(v.status.success(), "{t}: {}", text(&v.stderr));
        // Never over a file the user has.
        let again = gateprobe().args(["init", t, "-o"]).arg(&file).output().expect("run");
        assert_eq!(again.status.code(), Some(1));
        assert!(text(&again.stderr).contains("--force"));
    }
    // The endpoint template runs as written, against its own mock.
    let mut cmd = gateprobe();
    cmd.args(["run"])
        .arg(dir.path().join("endpoint/my.yaml"))
        .arg("--report-dir")
        .arg(dir.path().join("r"));
    let out = output_within(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = gateprobe().args(["init", "aigx"]).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("did you mean `aigw`?"));
}

#[test]
fn completions_and_man_pages_come_from_the_cli_definition() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = gateprobe().args(["completions", shell]).output().expect("run");
        assert!(out.status.success(), "{shell}");
        let script = text(&out.stdout);
        // Every subcommand and a flag of `run` are offered.
        for word in ["import", "compare", "init", "report-dir"] {
            assert!(script.contains(word), "{shell} lacks {word}");
        }
    }
    let out = gateprobe().arg("man").output().expect("run");
    let page = text(&out.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH gateprobe 1"),
        "{}",
        &page[..200.min(page.len())]
    );
    assert!(
        page.contains("gateprobe\\-run(1)") || page.contains("gateprobe\\-run"),
        "subcommands listed"
    );
    let dir = tempfile::tempdir().expect("tmp");
    let out = gateprobe()
        .args(["man", "--dir"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    for page in [
        "gateprobe.1",
        "gateprobe-run.1",
        "gateprobe-mock.1",
        "gateprobe-import-gitlab.1",
    ] {
        assert!(dir.path().join(page).exists(), "{page}");
    }
    let run = std::fs::read_to_string(dir.path().join("gateprobe-run.1")).expect("page");
    assert!(run.contains("report\\-dir"), "{run}");
}

#[test]
fn gateway_usage_shows_the_scenario_as_required() {
    let out = gateprobe().args(["gateway", "--help"]).output().expect("run");
    let help = text(&out.stdout);
    assert!(help.contains("Usage: gateprobe gateway <SCENARIO>"), "{help}");
    let out = gateprobe().arg("gateway").output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("<SCENARIO>"));
}
