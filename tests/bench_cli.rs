//! `gateprobe bench` as scripts use it: the JSON contract, exit codes, and Ctrl-C.
//! Targets are local servers on 127.0.0.1 only.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use gateprobe::server::{Server, ServerHost};

fn serve(host: &ServerHost) -> Server {
    let router = Router::new()
        .route("/", get(|| async { "{\"ok\":true}" }))
        .route("/fail", get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "busy") }));
    host.serve("127.0.0.1:0".parse().expect("addr"), router).expect("serve")
}

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gateprobe"))
        .arg("bench")
        .args(args)
        .output()
        .expect("gateprobe runs")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn contract(v: &serde_json::Value) {
    assert!(v["requests"].is_u64(), "{v}");
    assert!(v["rps"].is_number(), "{v}");
    for k in ["p50", "p90", "p99", "max"] {
        assert!(v["latency_ms"][k].is_number(), "latency_ms.{k} in {v}");
    }
}

#[test]
fn closed_loop_json_has_the_contract_keys() {
    let host = ServerHost::new(1).expect("host");
    let server = serve(&host);
    let dir = tempfile::tempdir().expect("tempdir");
    let hlog = dir.path().join("run.hlog");
    let hlog_arg = hlog.to_str().expect("utf8");
    let out = bench(&[&server.url(), "-c", "4", "-n", "300", "--json", "--hlog", hlog_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json(&out);
    contract(&v);
    assert_eq!(v["requests"], 300);
    assert_eq!(v["ok"], 300);
    assert_eq!(v["mode"], "closed");
    assert_eq!(v["schema_version"], 1);
    assert!(v["schedule_check"].is_null());
    assert!(
        v["latency_ms"]["histogram"]
            .as_str()
            .is_some_and(|s| s.starts_with("HISTF"))
    );
    assert!(v["service_ms"]["p99"].is_number());
    // The report parses back as a metrics snapshot (what a merge will read).
    let snap: gateprobe::metrics::Snapshot = serde_json::from_value(v).expect("snapshot");
    let rec = gateprobe::metrics::Recorder::from_snapshot(&snap).expect("decode");
    assert_eq!(rec.latency().len(), 300);
    // The interval log holds the same latency histogram.
    let text = std::fs::read(&hlog).expect("hlog written");
    let mut tags = Vec::new();
    for entry in hdrhistogram::serialization::interval_log::IntervalLogIterator::new(&text) {
        if let hdrhistogram::serialization::interval_log::LogEntry::Interval(h) = entry.expect("parse") {
            let tag = h.tag().map(|t| t.as_str().to_owned()).unwrap_or_default();
            if tag == "latency" {
                let decoded = gateprobe::metrics::decode_histogram(h.encoded_histogram()).expect("decode");
                assert_eq!(&decoded, rec.latency());
            }
            tags.push(tag);
        }
    }
    assert_eq!(tags, ["latency", "service", "ttfb"]);
}

#[test]
fn credentials_in_the_url_are_not_printed() {
    let host = ServerHost::new(1).expect("host");
    let server = serve(&host);
    let url = format!("{}?api-key=bench-url-key-2718", server.url());
    for json_out in [false, true] {
        let mut args = vec![url.as_str(), "-n", "5"];
        if json_out {
            args.push("--json");
        }
        let out = bench(&args);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains("bench-url-key-2718"), "{all}");
        assert!(all.contains("api-key=[redacted:URL api-key]"), "{all}");
    }
    let out = bench(&["http://u:bench-url-pass-31@[::1", "-n", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("bench-url-pass-31"));
}

#[test]
fn open_loop_json_reports_the_schedule_and_lag() {
    let host = ServerHost::new(1).expect("host");
    let server = serve(&host);
    // A generous lag threshold: this test checks the shape, not the machine's speed.
    let out = bench(&[
        &server.url(),
        "-q",
        "200",
        "-z",
        "1s",
        "-c",
        "4",
        "--json",
        "--max-lag",
        "500ms",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json(&out);
    contract(&v);
    assert_eq!(v["mode"], "open");
    assert_eq!(v["target_rps"], 200.0);
    assert_eq!(v["scheduled"], 200);
    assert_eq!(v["requests"], 200);
    assert_eq!(v["schedule_lag_ms"]["count"], 200);
    assert_eq!(v["schedule_check"]["valid"], true);
    assert_eq!(v["valid"], true);
}

#[test]
fn human_summary_lists_errors_by_class() {
    let host = ServerHost::new(1).expect("host");
    let server = serve(&host);
    let out = bench(&[&format!("{}/fail", server.url()), "-c", "2", "-n", "20"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("status_503 20"), "{text}");
    // Not a single success: the target is broken, an infrastructure error.
    assert_eq!(out.status.code(), Some(3), "{text}");
}

#[test]
fn usage_errors_exit_1_and_unreachable_targets_exit_3() {
    for args in [
        vec!["https://127.0.0.1:1/"],
        vec!["http://127.0.0.1:1/", "-H", "no colon"],
        vec!["http://127.0.0.1:1/", "-q", "0"],
        vec!["http://127.0.0.1:1/", "-z", "soon"],
        vec!["http://127.0.0.1:1/", "--body", "/nonexistent/body.json"],
    ] {
        let out = bench(&args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Port 1 (tcpmux) is privileged and unused on loopback: connections are refused.
    let out = bench(&["http://127.0.0.1:1/", "-n", "5", "-c", "1", "--json"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(json(&out)["errors"]["connect"], 5);
}

#[cfg(target_os = "linux")]
#[test]
fn sigint_stops_the_run_and_still_prints_results() {
    let host = ServerHost::new(1).expect("host");
    let server = serve(&host);
    let child = Command::new(env!("CARGO_BIN_EXE_gateprobe"))
        .args(["bench", &server.url(), "-c", "2", "-z", "10m", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Wait until the process catches SIGINT (else the default action would kill it
    // silently), then give it a moment to send requests.
    let status_file = format!("/proc/{}/status", child.id());
    for _ in 0..200 {
        let caught = std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("SigCgt:"))?.to_owned();
                u64::from_str_radix(line.trim_start_matches("SigCgt:").trim(), 16).ok()
            })
            .is_some_and(|mask| mask & (1 << (2 - 1)) != 0);
        if caught {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    // Without the stop this would run for ten minutes; wait_with_output just blocks.
    let out = child.wait_with_output().expect("wait");
    let v = json(&out);
    contract(&v);
    assert_eq!(v["interrupted"], true);
    assert!(v["requests"].as_u64().is_some_and(|n| n > 0), "{v}");
}

#[test]
fn a_dead_target_has_no_rate_and_switching_protocols_is_no_success() {
    // Refused connections are errors, never a request rate (this reported ~40k "req/s").
    let out = bench(&["http://127.0.0.1:1/", "-z", "300ms", "-c", "2", "--json"]);
    assert_eq!(out.status.code(), Some(3));
    let v = json(&out);
    assert!(v["requests"].as_u64().unwrap_or(0) > 0, "{v}");
    assert_eq!(v["rps"], 0.0, "{v}");
    assert_eq!(v["responses"], 0, "{v}");
    let out = bench(&["http://127.0.0.1:1/", "-n", "3", "-c", "1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("0 req/s answered") && text.contains("3 got no response"),
        "{text}"
    );

    // `101 Switching Protocols` left HTTP: no success, with every client.
    use gateprobe::gateway::hostile::{Hostile, HostileGateway};
    let host = ServerHost::new(1).expect("host");
    let gw = HostileGateway::start(Hostile::SwitchingProtocols, ([127, 0, 0, 1], 0).into(), &host.handle())
        .expect("hostile");
    for client in ["wire", "lean", "reqwest"] {
        let out = bench(&[&gw.url(), "-n", "4", "-c", "1", "--json", "--client", client]);
        let v = json(&out);
        assert_eq!(out.status.code(), Some(3), "{client}: {v}");
        assert_eq!(v["ok"], 0, "{client}: {v}");
    }
}

#[test]
fn the_reqwest_client_follows_no_redirect_and_no_proxy() {
    use gateprobe::gateway::hostile::{Hostile, HostileGateway};
    let host = ServerHost::new(1).expect("host");
    let gw = HostileGateway::start(Hostile::RedirectLoop, ([127, 0, 0, 1], 0).into(), &host.handle()).expect("hostile");
    // A proxy that is not there: honoured, every request would fail to connect.
    let out = Command::new(env!("CARGO_BIN_EXE_gateprobe"))
        .args([
            "bench",
            &gw.url(),
            "-n",
            "5",
            "-c",
            "1",
            "--json",
            "--client",
            "reqwest",
        ])
        .env("HTTP_PROXY", "http://127.0.0.1:1")
        .env("http_proxy", "http://127.0.0.1:1")
        .env("ALL_PROXY", "http://127.0.0.1:1")
        .output()
        .expect("runs");
    let v = json(&out);
    // The 307 itself is the answer measured: five of them, no loop, no connect error.
    assert_eq!(v["requests"], 5, "{v}");
    assert_eq!(v["ok"], 5, "{v}");
    assert!(v["errors"].as_object().is_none_or(|e| e.is_empty()), "{v}");
}
