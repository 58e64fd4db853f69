//! The binary as CI uses it: exit codes, report files, and what it prints.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn gateprobe() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gateprobe"));
    // The scenarios read these; make runs independent of the caller's shell.
    for (k, _) in std::env::vars() {
        if k.starts_with("GATEPROBE_") {
            c.env_remove(k);
        }
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
    // Port 1 (tcpmux) is privileged and unused on loopback: connections are refused.
    // The credentials in the URL must not reach any output.
    let url = "http://gp-user:url-pass-4711@127.0.0.1:1/?api-key=url-key-0815".to_owned();
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
            .contains("nothing answers at the gateway's address")
    );
    assert_eq!(report["summary"]["failed"], 0);
    assert!(report["summary"]["errors"].as_u64().expect("errors") > 0);
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).expect("junit");
    assert!(junit.contains("<error message="));
    for secret in ["url-pass-4711", "url-key-0815"] {
        assert!(!text(&out.stdout).contains(secret) && !text(&out.stderr).contains(secret));
        for f in std::fs::read_dir(dir.path()).expect("reports") {
            let path = f.expect("entry").path();
            let body = String::from_utf8_lossy(&std::fs::read(&path).expect("read")).into_owned();
            assert!(!body.contains(secret), "{secret} in {}", path.display());
        }
    }
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
        ("GATEPROBE_AZURE_KEY", "az-PLANTED-5e1f09c2"),
        ("GATEPROBE_AWS_SECRET_ACCESS_KEY", "awsPLANTEDsecret2c9e4b7d1a"),
    ];
    for fault in [
        None,
        Some("leak-api-key-in-error"),
        Some("drop-api-key"),
        Some("azure-bearer-instead-of-api-key"),
        Some("bedrock-wrong-region"),
    ] {
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

const PLANTED: [(&str, &str); 5] = [
    ("GATEPROBE_GATEWAY_TOKEN", "tok-PLANTED-help-6a0e1f"),
    ("GATEPROBE_VLLM_A_KEY", "sk-PLANTED-help-a-29c4d8"),
    ("GATEPROBE_VLLM_B_KEY", "sk-PLANTED-help-b-b71e05"),
    ("GATEPROBE_AZURE_KEY", "az-PLANTED-help-0d93c6"),
    ("GATEPROBE_AWS_SECRET_ACCESS_KEY", "awsPLANTEDhelp8f2b6e4c"),
];

fn assert_no_planted(where_: &str, out: &Output) {
    for (_, secret) in PLANTED {
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(!text(bytes).contains(secret), "{secret} in the {stream} of {where_}");
        }
    }
}

#[test]
fn help_texts_show_no_secret_from_the_environment() {
    let top = gateprobe().arg("--help").envs(PLANTED).output().expect("runs");
    assert_no_planted("gateprobe --help", &top);
    let listing = text(&top.stdout);
    let commands: Vec<&str> = listing
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() >= 8, "{commands:?}");
    for c in commands {
        let out = gateprobe().args([c, "--help"]).envs(PLANTED).output().expect("runs");
        assert!(out.status.success(), "{c} --help");
        assert_no_planted(&format!("gateprobe {c} --help"), &out);
    }
}

#[test]
fn a_panic_message_has_the_scenario_secrets_redacted() {
    // Debug builds panic on purpose after loading when GATEPROBE_DEBUG_PANIC is set,
    // with a message quoting every secret of the scenario.
    let out = gateprobe()
        .args(["run", "scenarios/quickstart.yaml", "--report-dir"])
        .arg(tempfile::tempdir().expect("tempdir").path())
        .envs(PLANTED)
        .env("GATEPROBE_DEBUG_PANIC", "1")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(101), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("gateprobe: internal error at src/") && err.contains("[redacted:"),
        "{err}"
    );
    assert_no_planted("a panic", &out);
}

#[test]
fn bench_errors_name_a_header_never_its_value() {
    let secret = PLANTED[0].1;
    for bad in [
        format!("Authorization Bearer {secret}"),
        format!("Authorization: Bearer {secret}\u{7}"),
    ] {
        let out = gateprobe()
            .args(["bench", "http://127.0.0.1:1/", "-n", "1", "-H", &bad])
            .output()
            .expect("runs");
        assert!(!out.status.success());
        assert!(text(&out.stderr).contains("-H #1"), "{}", text(&out.stderr));
        assert_no_planted("a bench header error", &out);
    }
}

#[test]
fn mock_prints_shell_evaluable_urls_and_serves() {
    let mut child = gateprobe()
        .args(["mock", "scenarios/quickstart.yaml", "--foreground"])
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

#[test]
fn mock_profiles_start_and_export_gateway_settings() {
    for profile in [
        "mocks/vllm.yaml",
        "mocks/three-providers.yaml",
        "mocks/flaky-vllm.yaml",
        "mocks/cloud-realism.yaml",
    ] {
        let v = run(&["validate", profile]);
        assert_eq!(v.status.code(), Some(0), "{profile}");
        // Valid for `mock`, and validate says `run` refuses it.
        assert!(text(&v.stdout).contains("is a mock profile"), "{}", text(&v.stdout));
        assert_eq!(
            run(&["run", profile]).status.code(),
            Some(2),
            "a profile has nothing to run: {profile}"
        );
    }
    let mut child = gateprobe()
        .args(["mock", "mocks/three-providers.yaml", "--foreground"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut lines: Vec<String> = Vec::new();
    for l in BufReader::new(child.stdout.take().expect("stdout")).lines() {
        let l = l.expect("utf8");
        let last = l.starts_with("export AWS_SECRET_ACCESS_KEY=");
        lines.push(l);
        if last {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let comments: Vec<&String> = lines.iter().filter(|l| l.starts_with("# ")).collect();
    assert_eq!(comments.len(), 3, "{lines:#?}");
    assert!(comments[2].starts_with("# bedrock bedrock http://127.0.0.1:"));
    for var in [
        "AWS_BEDROCK_RUNTIME_ENDPOINT=http://127.0.0.1:",
        "AWS_REGION_NAME=us-east-1",
        "AWS_ACCESS_KEY_ID=",
        "AZURE_API_BASE=http://127.0.0.1:",
        // The vLLM key too: a client of the mock needs it.
        "GATEPROBE_BACKEND_VLLM_API_KEY=",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("export {var}"))),
            "{var} missing: {lines:#?}"
        );
    }
}

#[test]
fn export_litellm_writes_a_config_without_secrets() {
    let out = gateprobe()
        .args([
            "export",
            "litellm",
            "scenarios/litellm.yaml",
            "--backend",
            "vllm-a=http://127.0.0.1:8001",
            "--backend",
            "vllm-b=http://127.0.0.1:8002",
            "--backend",
            "vllm-c=http://127.0.0.1:8003",
            "--backend",
            "azure=http://127.0.0.1:8004",
            "--backend",
            "bedrock=http://127.0.0.1:8005",
        ])
        .env("GATEPROBE_BACKEND_FAULTY_URL", "http://127.0.0.1:8006")
        .output()
        .expect("runs");
    let yaml = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for want in [
        "model_name: \"mixtral-chat\"",
        "api_base: \"http://127.0.0.1:8001/v1\"",
        "model_name: \"mixtral-chat--no-v1\"",
        "model: \"azure/gpt-4o-duo\"",
        "api_version: \"2025-02-01-preview\"",
        "aws_bedrock_runtime_endpoint: \"http://127.0.0.1:8005\"",
        "aws_region_name: \"eu-central-1\"",
        "model_name: \"duo_chat_fix_code\"",
        "api_base: \"http://127.0.0.1:8006/v1\"",
        "num_retries: 0",
        "master_key: \"os.environ/",
    ] {
        assert!(yaml.contains(want), "missing {want}:\n{yaml}");
    }
    assert!(
        !yaml.contains("summarize_new_merge_request"),
        "a disabled feature got an alias"
    );
    assert!(!yaml.contains("sk-litellm-a-2c7e91") && !yaml.contains("gpLitellmSecret"));
    assert!(text(&out.stderr).contains("GATEPROBE_LITELLM_SECRET_0: api_key of model mixtral-chat"));

    let kept = gateprobe()
        .args([
            "export",
            "litellm",
            "scenarios/litellm.yaml",
            "--keep-defaults",
            "--inline-secrets",
        ])
        .args([
            "--backend",
            "vllm-a=http://a",
            "--backend",
            "vllm-b=http://b",
            "--backend",
            "vllm-c=http://c",
        ])
        .args([
            "--backend",
            "azure=http://d",
            "--backend",
            "bedrock=http://e",
            "--backend",
            "faulty=http://f",
        ])
        .output()
        .expect("runs");
    let yaml = text(&kept.stdout);
    assert!(
        !yaml.contains("num_retries") && yaml.contains("sk-litellm-a-2c7e91"),
        "{yaml}"
    );

    let missing = run(&["export", "litellm", "scenarios/litellm.yaml"]);
    assert_eq!(missing.status.code(), Some(2));
    let err = text(&missing.stderr);
    assert!(
        err.contains("has no address") && err.contains("gateprobe mock"),
        "{err}"
    );
}

/// A proxy configured before the run (here the reference gateway as its own process)
/// reaches the run's mocks through their fixed ports: the backend-side checks see its
/// traffic.
#[test]
fn a_proxy_configured_ahead_reaches_mocks_on_fixed_ports() {
    // Ports below the kernel's ephemeral range (32768+ on Linux): a port probed free
    // here cannot be handed to another test's `:0` bind before the run takes it.
    let start = 20_000 + (std::process::id() % 5_000) as u16 * 2;
    let mut free = (start..32_000).filter(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok());
    let (backend, proxy) = (free.next().expect("a free port"), free.next().expect("a free port"));
    let dir = tempfile::tempdir().expect("tmp");
    let scenario = dir.path().join("ahead.yaml");
    std::fs::write(
        &scenario,
        format!(
            "version: 1\ngateway:\n  kind: openai\n  url: http://127.0.0.1:{proxy}\n  features_by: feature\n  auth: {{token: sk-ahead-1}}\nbackends:\n  vllm: {{provider: openai, models: [M], api_key: sk-ahead-backend, port: {backend}}}\nself_hosted_models:\n  - {{name: m, family: mixtral, endpoint: \"{{{{ backends.vllm.url }}}}/v1\", api_key: sk-ahead-backend, identifier: custom_openai/M}}\nfeatures:\n  duo_chat: m\n  generate_commit_message: disabled\n"
        ),
    )
    .expect("write");
    let s = scenario.to_str().expect("utf8");
    let mut gw = gateprobe()
        .args(["gateway", s, "--listen", &format!("127.0.0.1:{proxy}")])
        .stdout(Stdio::piped())
        .spawn()
        .expect("gateway");
    let mut line = String::new();
    BufReader::new(gw.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("line");
    assert!(line.contains("listening"), "{line}");
    let reports = dir.path().join("r");
    let out = run(&["run", s, "--report-dir", reports.to_str().expect("utf8")]);
    let _ = gw.kill();
    let _ = gw.wait();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("gateprobe.json")).expect("json")).expect("parse");
    let routed = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["id"] == "feature_mapping.duo_chat_fix_code.fallback")
        .expect("fallback check");
    assert_eq!(routed["status"], "passed");
    assert_eq!(routed["evidence"][0]["backend"][0]["backend"], "vllm");
}

#[test]
fn every_shipped_scenario_and_profile_validates() {
    let mut files = Vec::new();
    for dir in ["scenarios", "mocks"] {
        for e in std::fs::read_dir(dir).expect("dir") {
            let p = e.expect("entry").path();
            if p.extension().is_some_and(|x| x == "yaml") {
                files.push(p);
            }
        }
    }
    assert!(files.len() >= 8, "{files:?}");
    for f in files {
        let out = gateprobe().arg("validate").arg(&f).output().expect("runs");
        assert_eq!(out.status.code(), Some(0), "{}: {}", f.display(), text(&out.stderr));
    }
}
