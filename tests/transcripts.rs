//! Golden transcripts: runs recorded against GitLab's real AI gateway (two versions)
//! are judged again from their exchanges, and must reach the verdicts of the live run;
//! the reference gateway must answer the recorded requests in the shapes the real
//! gateway did. A recording made here of the reference gateway round-trips too.
//!
//! Each directory under `tests/fixtures/transcripts/` holds the `scenario.yaml` it was
//! recorded with and its `transcript.json` (`gateprobe run scenario.yaml --record`);
//! its README says how each was made.

mod faults;

use std::path::{Path, PathBuf};

use gateprobe::report::{CheckResult, Status};
use gateprobe::run::{self, RunOptions};
use gateprobe::scenario::{self, Scenario};
use gateprobe::transcript::{self, Transcript};
use tokio_util::sync::CancellationToken;

fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir("tests/fixtures/transcripts")
        .expect("transcripts dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("transcript.json").is_file())
        .collect();
    v.sort();
    v
}

fn load(dir: &Path) -> (Scenario, Transcript) {
    let path = dir.join("scenario.yaml");
    let text = std::fs::read_to_string(&path).expect("scenario");
    // No environment: the scenario's defaults are the values it was recorded with.
    let s = scenario::load_str(&path, &text, &|_| None).expect("valid scenario");
    let t = transcript::parse(&std::fs::read_to_string(dir.join("transcript.json")).expect("transcript"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    (s, t)
}

fn differences(live: &[transcript::Verdict], again: &[CheckResult]) -> Vec<String> {
    let mut out = Vec::new();
    for v in live {
        match again.iter().find(|c| c.id == v.id) {
            None => out.push(format!("{}: recorded {:?}, not planned now", v.id, v.status)),
            Some(c) if c.status != v.status => out.push(format!(
                "{}: recorded {:?}, judged {:?} now: {}",
                v.id, v.status, c.status, c.actual
            )),
            Some(_) => {}
        }
    }
    for c in again {
        if !live.iter().any(|v| v.id == c.id) {
            out.push(format!("{}: not recorded, judged {:?} now", c.id, c.status));
        }
    }
    out
}

#[test]
fn recorded_real_gateways_get_their_live_verdicts_again() {
    let dirs = fixtures();
    assert!(dirs.len() >= 4, "transcripts missing: {dirs:?}");
    let mut bad = Vec::new();
    for dir in dirs {
        let (s, t) = load(&dir);
        let again = transcript::replay(&t, &s).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for d in differences(&t.verdicts, &again) {
            bad.push(format!("{}: {d}", dir.display()));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn recordings_keep_no_secret() {
    for dir in fixtures() {
        let (s, _) = load(&dir);
        let text = std::fs::read_to_string(dir.join("transcript.json")).expect("transcript");
        for (label, secret) in &s.secrets {
            assert!(!text.contains(secret.as_str()), "{}: {label} in clear", dir.display());
        }
    }
}

/// The shape of a reply, as far as a client tells replies apart.
fn shape(r: &transcript::RecordedReply) -> String {
    let ct = r.content_type.as_deref().unwrap_or("none");
    let ct = ct.split(';').next().unwrap_or_default().trim().to_owned();
    let body = if ct == "application/x-ndjson" {
        let mut types: Vec<String> = r
            .body
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
            // Usage comes from the real gateway only: it carries no answer.
            .filter(|t| t != "usage")
            .collect();
        types.dedup();
        format!("events {}", types.join(","))
    } else if r.body.is_empty() {
        "empty".into()
    } else {
        match serde_json::from_str::<serde_json::Value>(&r.body) {
            Ok(serde_json::Value::String(_)) => "a JSON string".into(),
            Ok(v) if v.get("choices").is_some() => "choices".into(),
            Ok(v) if v.get("detail").is_some() => "detail".into(),
            Ok(v) if v.get("error").is_some() => "error".into(),
            Ok(_) => "JSON".into(),
            Err(_) => "text".into(),
        }
    };
    format!("{} {ct} {body}", r.status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_gateway_answers_in_the_recorded_shapes() {
    // The recordings of GitLab 18.9 requests against a correct setup.
    for name in ["aigw-474164f4"] {
        let dir = Path::new("tests/fixtures/transcripts").join(name);
        let (mut s, t) = load(&dir);
        // Requests whose checks warned: what the real gateway does there is a weakness
        // its profile names, which the reference gateway does not copy. (A cut end
        // after an error event is not part of a shape.)
        let plan = gateprobe::check::compile(&s);
        let tolerated: Vec<usize> = plan
            .checks
            .iter()
            .filter(|c| !c.id.to_string().ends_with(".error_end"))
            .filter(|c| {
                t.verdicts
                    .iter()
                    .any(|v| v.id == c.id.to_string() && v.status == Status::Warning)
            })
            .flat_map(|c| c.probes.iter().copied())
            .collect();
        s.gateway.kind = gateprobe::scenario::GatewayKind::Builtin;
        s.gateway.url = None;
        let (_, mine) = run::run_recorded(&s, &RunOptions::default(), &CancellationToken::new()).await;
        let mine = mine.expect("a transcript");
        let mut bad = Vec::new();
        let keys: Vec<transcript::ProbeKey> = t.exchanges.iter().map(|e| e.probe.clone()).collect();
        assert_eq!(keys.len(), mine.exchanges.len(), "{name}: the plans differ");
        for (i, p) in plan.probes.iter().enumerate() {
            let key = |e: &&transcript::Exchange| {
                e.probe.feature == p.feature.name
                    && e.probe.model == s.models[p.model].name
                    && e.probe.stream == p.stream
                    && e.probe.identifier == p.identifier
                    && e.probe.variant == transcript::variant_name(p.variant)
                    && e.probe.auth == transcript::auth_name(p.auth)
            };
            let (Some(real), Some(own)) = (t.exchanges.iter().find(key), mine.exchanges.iter().find(key)) else {
                panic!("{name}: probe {i} is missing from a recording");
            };
            let (Some(a), Some(b)) = (&real.reply, &own.reply) else {
                continue;
            };
            if tolerated.contains(&i) {
                continue;
            }
            let (a, b) = (shape(a), shape(b));
            if a != b {
                bad.push(format!("{:?}: real {a}, reference {b}", real.probe));
            }
        }
        assert!(bad.is_empty(), "{name}:\n{}", bad.join("\n"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_of_the_reference_gateway_round_trips() {
    let s = faults::shipped("scenarios/quickstart.yaml");
    for fault in [None, Some(gateprobe::gateway::Fault::SendForeignKey)] {
        let opts = RunOptions {
            faults: fault.into_iter().collect(),
            ..RunOptions::default()
        };
        let (report, t) = run::run_recorded(&s, &opts, &CancellationToken::new()).await;
        let t = t.expect("a transcript");
        let text = serde_json::to_string(&t).expect("json");
        for (label, secret) in &s.secrets {
            assert!(!text.contains(secret.as_str()), "{label} in clear");
        }
        let again = transcript::replay(&transcript::parse(&text).expect("parse"), &s).expect("replay");
        let live: Vec<transcript::Verdict> = report
            .checks
            .iter()
            .map(|c| transcript::Verdict {
                id: c.id.clone(),
                status: c.status,
            })
            .collect();
        assert_eq!(differences(&live, &again), Vec::<String>::new());
        if fault.is_some() {
            assert!(again.iter().any(|c| c.status == Status::Failed));
        }
    }
}

#[test]
fn a_changed_plan_is_refused() {
    let s = faults::shipped("scenarios/quickstart.yaml");
    let dir = Path::new("tests/fixtures/transcripts/aigw-474164f4");
    let (_, t) = load(dir);
    let e = transcript::replay(&t, &s).expect_err("another scenario");
    assert!(e.to_string().contains("record it again"), "{e}");
}

/// The verdicts of a recording, by status.
fn with_status(t: &Transcript, status: Status) -> Vec<&str> {
    t.verdicts
        .iter()
        .filter(|v| v.status == status)
        .map(|v| v.id.as_str())
        .collect()
}

#[test]
fn the_real_gateways_fail_exactly_what_is_broken() {
    let at = |name: &str| load(&Path::new("tests/fixtures/transcripts").join(name)).1;
    // A correct setup passes (warnings name the gateway's tolerated weaknesses).
    for name in ["aigw-474164f4", "aigw-474164f4-auth-bypassed"] {
        let t = at(name);
        assert_eq!(with_status(&t, Status::Failed), Vec::<&str>::new(), "{name}");
        assert_eq!(with_status(&t, Status::Error), Vec::<&str>::new(), "{name}");
    }
    // Each misconfiguration fails the check of its rule, and only checks of what it
    // touches (the other models pass).
    for (name, rule, touched) in [
        (
            "aigw-474164f4-no-v1",
            "endpoint.mixtral-chat.v1_suffix",
            &["mixtral-chat", "duo_chat", "generate_commit_message"][..],
        ),
        (
            "aigw-474164f4-wrong-key",
            "auth.mixtral-chat.key_forwarded",
            &["mixtral-chat", "duo_chat", "generate_commit_message"][..],
        ),
        (
            "aigw-474164f4-swapped",
            "routing.mixtral-chat.model",
            &[
                "mixtral-chat",
                "mistral-hf",
                "duo_chat",
                "code_generations",
                "generate_commit_message",
                "glab_ask_git_command",
            ][..],
        ),
        (
            "aigw-474164f4-wrong-region",
            "auth.claude-apac.signed",
            &["bedrock", "claude-apac", "write_tests", "summarize_review"][..],
        ),
    ] {
        let t = at(name);
        let failed = with_status(&t, Status::Failed);
        assert!(failed.contains(&rule), "{name}: {failed:?}");
        for f in &failed {
            assert!(
                touched.iter().any(|t| f.contains(t)),
                "{name}: {f} is not a consequence"
            );
        }
        assert_eq!(with_status(&t, Status::Error), Vec::<&str>::new(), "{name}");
    }
    // The gateway of 17.7 fails only its own bugs; what it does not serve is skipped.
    let t = at("aigw-2025-01-14");
    assert_eq!(
        with_status(&t, Status::Failed),
        ["auth.codegemma.no_foreign_key", "routing.empty_identifier"]
    );
    for name in ["aigw-2025-01-14-features-azure", "aigw-2025-01-14-features-vllm"] {
        let t = at(name);
        assert_eq!(with_status(&t, Status::Failed), Vec::<&str>::new(), "{name}");
        assert!(!with_status(&t, Status::Skipped).is_empty(), "{name}");
    }
}
