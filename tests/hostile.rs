//! The hostile-gateway catalogue: gateprobe pointed at gateways that break HTTP itself
//! (see `gateway::hostile`). For every behaviour, through the AI gateway API (`aigw`)
//! and as an OpenAI client (`openai`), the `gateprobe run` process must finish within
//! its timeouts, exit with the right code, name the failure's class on the right check
//! and in the load phase's error counts, pass nothing, keep its memory bounded, and
//! write every report.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gateprobe::gateway::hostile::{Hostile, HostileGateway};
use gateprobe::server::ServerHost;
use serde_json::Value;

/// The per-request timeout the scenarios set; every hang must end with it.
const TIMEOUT: &str = "1s";

/// What one behaviour must come to.
struct Expect {
    /// Exit code: 3 when no reply came (harness error), 4 when a broken one did (or one
    /// whose body broke off).
    exit: i32,
    /// The check that shows it, and what its `actual` must say: (aigw, openai).
    check: &'static str,
    says: (&'static str, &'static str),
    /// Error class counted by the load phase; `None` when the run gave up on a gateway
    /// that stopped answering before any load was sent.
    load: Option<&'static str>,
    /// Why the run was aborted, when it was.
    aborted: &'static str,
}

fn expect(mode: Hostile) -> Expect {
    const MAPPED: &str = "feature_mapping.duo_chat.mapped";
    let gone = |says: &'static str| Expect {
        exit: 3,
        // The run gives up after three silent requests: the first checks carry the class.
        check: "",
        says: (says, says),
        load: None,
        aborted: "stopped answering",
    };
    let broken = |exit, says: &'static str, load| Expect {
        exit,
        check: MAPPED,
        says: (says, says),
        load: Some(load),
        aborted: "",
    };
    match mode {
        // Nothing listens: found before the first probe, and no check is judged.
        Hostile::Refuse => Expect {
            aborted: "nothing answers at the gateway's address",
            ..gone("not run")
        },
        Hostile::Silent | Hostile::StallAfterHeaders | Hostile::Slowloris | Hostile::EndlessStream => {
            gone("no reply (timeout:")
        }
        Hostile::HugeBody => broken(4, "reply body is larger than 1 MiB", "protocol"),
        Hostile::InvalidUtf8 => broken(4, "reply is not valid UTF-8", "protocol"),
        Hostile::InvalidJson => Expect {
            says: ("reply is not ndjson events", "reply is not JSON: EOF while parsing"),
            ..broken(4, "", "protocol")
        },
        Hostile::BrokenSse => Expect {
            check: "streaming.duo_chat",
            says: ("reply is not ndjson events", "malformed frame(s)"),
            ..broken(4, "", "protocol")
        },
        // A body that breaks off after the status line is a reply judged on what
        // arrived, its broken end a finding about the gateway (exit 4), not a harness
        // error.
        Hostile::ChunkedError => broken(4, "the body breaking off (protocol:", "protocol"),
        Hostile::ResetMidStream => broken(4, "the body breaking off (reset:", "protocol"),
        Hostile::NoStatusLine => broken(3, "no reply (closed:", "protocol"),
        Hostile::RedirectLoop => broken(4, "HTTP 307", "status_307"),
        Hostile::WrongContentType => broken(4, "Content-Type `text/html", "protocol"),
        Hostile::GzipBomb => broken(4, "Content-Encoding `gzip`", "protocol"),
        // No success and no error either: the server left HTTP.
        Hostile::SwitchingProtocols => broken(4, "HTTP 101", "status_101"),
    }
}

fn scenario(kind: &str, url: &str) -> String {
    let (gateway, stream) = match kind {
        "aigw" => (format!("{{kind: aigw, url: \"{url}\", timeout: {TIMEOUT}}}"), false),
        _ => (
            format!("{{kind: openai, url: \"{url}\", timeout: {TIMEOUT}, auth: {{token: sk-hostile-client-5e1f}}}}"),
            true,
        ),
    };
    format!(
        r#"version: 1
name: hostile-{kind}
gateway: {gateway}
backends:
  vllm: {{provider: openai, models: [m]}}
self_hosted_models:
  - {{name: m, family: mistral, endpoint: "{{{{ backends.vllm.url }}}}/v1", identifier: custom_openai/m}}
features:
  code_completions: m
  duo_chat: m
load:
  - {{name: chat, feature: duo_chat, stream: {stream}, open: {{rate: 40}}, requests: 8}}
"#
    )
}

/// Runs the binary against `url` and waits at most `limit` for it.
fn run(kind: &str, url: &str, dir: &Path, limit: Duration) -> (i32, Duration) {
    let file = dir.join(format!("{kind}.yaml"));
    std::fs::write(&file, scenario(kind, url)).expect("write scenario");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gateprobe"))
        .arg("run")
        .arg(&file)
        .arg("--report-dir")
        .arg(dir.join(kind))
        .env("CI", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn gateprobe");
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return (status.code().unwrap_or(-1), started.elapsed());
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("gateprobe run against a hostile gateway ({kind}) hung past {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn catalogue_entry(mode: Hostile) {
    let host = ServerHost::new(1).expect("host");
    let gw = HostileGateway::start(mode, ([127, 0, 0, 1], 0).into(), &host.handle()).expect("hostile gateway");
    let want = expect(mode);
    let tmp = tempfile::tempdir().expect("tempdir");
    // Both clients at once: the behaviours answer every connection alike.
    let runs = std::thread::scope(|s| {
        let kinds = ["aigw", "openai"].map(|k| {
            let (url, dir) = (gw.url(), tmp.path());
            // Three timed-out requests and the reports, with room for a loaded machine.
            s.spawn(move || (k, run(k, &url, dir, Duration::from_secs(60))))
        });
        kinds.map(|h| h.join().expect("runner"))
    });
    for (kind, (code, took)) in runs {
        let ctx = format!("{} via {kind}", mode.name());
        assert_eq!(code, want.exit, "{ctx}: exit code");
        // Each hang costs at most one timeout, and the run stops after three of them.
        assert!(took < Duration::from_secs(30), "{ctx}: took {took:?}");
        let dir = tmp.path().join(kind);
        for f in ["gateprobe.json", "junit.xml", "summary.md"] {
            assert!(dir.join(f).is_file(), "{ctx}: {f} was not written");
        }
        let r: Value = serde_json::from_slice(&std::fs::read(dir.join("gateprobe.json")).expect("report"))
            .unwrap_or_else(|e| panic!("{ctx}: report is not JSON: {e}"));
        // Only the checks of what the scenario configures (an endpoint's /v1) pass
        // without a gateway.
        let passed: Vec<&str> = r["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["status"] == "passed")
            .filter_map(|c| c["id"].as_str())
            .filter(|id| !id.ends_with(".v1_suffix"))
            .collect();
        assert!(passed.is_empty(), "{ctx}: a hostile gateway passed {passed:?}");
        let says = if kind == "aigw" { want.says.0 } else { want.says.1 };
        let checks = r["checks"].as_array().expect("checks");
        let actual = |c: &Value| c["actual"].as_str().unwrap_or_default().to_owned();
        if want.check.is_empty() {
            assert!(
                r["aborted"].as_str().is_some_and(|a| a.contains(want.aborted)),
                "{ctx}: {}",
                r["aborted"]
            );
            assert!(
                checks
                    .iter()
                    .any(|c| c["status"] == "error" && actual(c).contains(says)),
                "{ctx}: no check says `{says}`"
            );
        } else {
            let c = checks
                .iter()
                .find(|c| c["id"] == want.check)
                .unwrap_or_else(|| panic!("{ctx}: no check {}", want.check));
            let status = if want.exit == 3 { "error" } else { "failed" };
            assert_eq!(c["status"], status, "{ctx}: {}", actual(c));
            assert!(actual(c).contains(says), "{ctx}: {} says {:?}", want.check, actual(c));
        }
        let load = r["load"].as_array().map(Vec::as_slice).unwrap_or_default();
        match want.load {
            None => assert!(load.is_empty(), "{ctx}: load ran against a gateway that was gone"),
            Some(class) => {
                let errors = &load[0]["transport"]["errors"];
                assert_eq!(errors[class], 8, "{ctx}: load errors {errors}");
                for f in ["load-performance.json", "report.html", "chat.hlog"] {
                    assert!(dir.join(f).is_file(), "{ctx}: {f} was not written");
                }
            }
        }
    }
    // Bodies are read with limits: a 1 GiB body or a gzip bomb leaves no trace in memory.
    let peak = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage")
        .max_rss();
    assert!(peak < 256 * 1024, "a gateprobe run peaked at {} MiB", peak / 1024);
}

macro_rules! catalogue {
    ($($name:ident => $mode:expr,)*) => {$(
        #[test]
        fn $name() {
            catalogue_entry($mode);
        }
    )*};
}

catalogue! {
    refuses_connections => Hostile::Refuse,
    never_answers => Hostile::Silent,
    stalls_after_headers => Hostile::StallAfterHeaders,
    dribbles_one_byte_a_second => Hostile::Slowloris,
    streams_forever => Hostile::EndlessStream,
    sends_a_gibibyte => Hostile::HugeBody,
    sends_invalid_utf8 => Hostile::InvalidUtf8,
    sends_invalid_json => Hostile::InvalidJson,
    breaks_sse_framing => Hostile::BrokenSse,
    breaks_chunked_encoding => Hostile::ChunkedError,
    resets_mid_stream => Hostile::ResetMidStream,
    closes_without_a_status_line => Hostile::NoStatusLine,
    redirects_to_itself => Hostile::RedirectLoop,
    answers_html => Hostile::WrongContentType,
    sends_a_gzip_bomb => Hostile::GzipBomb,
    switches_protocols => Hostile::SwitchingProtocols,
}

#[test]
fn the_catalogue_covers_every_behaviour_and_lists_them() {
    let out = Command::new(env!("CARGO_BIN_EXE_gateprobe"))
        .args(["gateway", "--list-hostile"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let listed = String::from_utf8_lossy(&out.stdout);
    let source = std::fs::read_to_string(file!()).expect("own source");
    for h in Hostile::ALL {
        assert!(
            listed.lines().any(|l| l.split_whitespace().next() == Some(h.name())),
            "{} not listed",
            h.name()
        );
        assert!(
            source.contains(&format!("=> Hostile::{h:?},")),
            "{} has no catalogue test",
            h.name()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_validation_names_broken_bodies() {
    use gateprobe::run::{RunOptions, run};
    let path = Path::new("scenarios/vendor-endpoint.yaml");
    let text = std::fs::read_to_string(path)
        .expect("read")
        .replace("timeout: 60s", "timeout: 1s");
    let s = gateprobe::scenario::load_str(path, &text, &|_| None).expect("valid");
    let host = ServerHost::new(1).expect("host");
    for (mode, says) in [
        (Hostile::InvalidUtf8, "not valid UTF-8"),
        (Hostile::GzipBomb, "Content-Encoding `gzip`"),
        (Hostile::HugeBody, "larger than 1 MiB"),
    ] {
        let gw = HostileGateway::start(mode, ([127, 0, 0, 1], 0).into(), &host.handle()).expect("start");
        let opts = RunOptions {
            gateway_url: Some(format!("{}/v1", gw.url())),
            ..RunOptions::default()
        };
        let r = run(&s, &opts, &tokio_util::sync::CancellationToken::new()).await;
        let chat = r.checks.iter().find(|c| c.id.ends_with(".chat")).expect("a chat check");
        assert_eq!(chat.status, gateprobe::report::Status::Failed, "{}", mode.name());
        assert!(chat.actual.contains(says), "{}: {}", mode.name(), chat.actual);
    }
}
