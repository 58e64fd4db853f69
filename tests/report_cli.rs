//! `gateprobe merge` and `gateprobe compare` as CI calls them: files in, files and a
//! table out, and the exit codes (0 fine, 1 usage, 2 unreadable or mismatched inputs,
//! 4 checks failed or a tolerance exceeded).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gateprobe::report::RunReport;

fn gateprobe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gateprobe"))
        .args(args)
        .output()
        .expect("gateprobe runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn save(dir: &Path, name: &str, r: &RunReport) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec(r).expect("json")).expect("write");
    p
}

/// Four shard reports of one chat phase, all checks passing.
fn shard_files(dir: &Path) -> Vec<PathBuf> {
    let all = common::events(3, 2000, 10);
    (0..4)
        .map(|k| {
            let mine: Vec<common::Event> = all.iter().skip(k).step_by(4).cloned().collect();
            let p = common::phase("chat", true, &mine, 10, Some(&format!("{}/4", k + 1)));
            let checks = vec![common::check(
                "routing.a.backend",
                "routing",
                gateprobe::report::Status::Passed,
            )];
            save(dir, &format!("shard-{}.json", k + 1), &common::report(vec![p], checks))
        })
        .collect()
}

#[test]
fn merge_writes_every_format_of_the_whole_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = shard_files(dir.path());
    let out_dir = dir.path().join("merged");
    let mut args = vec!["merge"];
    args.extend(files.iter().map(|p| p.to_str().expect("utf8")));
    args.extend(["-o", out_dir.to_str().expect("utf8")]);
    let out = gateprobe(&args);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("merged 4 reports: 1 load phase, 2000 requests"));
    for f in [
        "gateprobe.json",
        "junit.xml",
        "summary.md",
        "report.html",
        "load-performance.json",
        "chat.hlog",
    ] {
        assert!(out_dir.join(f).is_file(), "{f} written");
    }
    let merged: RunReport =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("gateprobe.json")).expect("read")).expect("parse");
    assert_eq!(merged.load[0].transport.requests, 2000);
    // The routing check once (deduplicated), and the phase's implicit threshold:
    // it got successful responses (judged on the merged numbers).
    let ids: Vec<&str> = merged.checks.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["routing.a.backend", "threshold.chat.successes"]);
    let k6: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("load-performance.json")).expect("read"))
            .expect("parse");
    assert_eq!(k6["metrics"]["http_reqs"]["count"], 2000);
}

#[test]
fn merge_refuses_overlapping_shards_and_unreadable_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = shard_files(dir.path());
    let out_dir = dir.path().join("merged");
    let o = out_dir.to_str().expect("utf8");
    let f: Vec<&str> = files.iter().map(|p| p.to_str().expect("utf8")).collect();
    let out = gateprobe(&["merge", f[0], f[1], f[0], f[3], "-o", o]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("error: cannot merge: phase `chat`: reports 1 and 3 are both shard 1/4"),
        "{err}"
    );
    let out = gateprobe(&["merge", f[0], f[1], f[2], "-o", o]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("shard 4 of 4 missing"),
        "{}",
        text(&out.stderr)
    );
    assert!(!out_dir.exists(), "nothing written for a refused merge");

    let missing = dir.path().join("nope.json");
    let out = gateprobe(&["merge", f[0], missing.to_str().expect("utf8"), "-o", o]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read"), "{}", text(&out.stderr));
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{\"schema_version\": 1}").expect("write");
    let out = gateprobe(&["merge", junk.to_str().expect("utf8"), "-o", o]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("is not a gateprobe report"));

    // A threshold a report carries is read as a threshold: a garbled one is named.
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&files[0]).expect("read")).expect("json");
    doc["load"][0]["thresholds"] = serde_json::json!(["ttft.p99 500ms"]);
    let bad = dir.path().join("bad-threshold.json");
    std::fs::write(&bad, doc.to_string()).expect("write");
    let out = gateprobe(&["merge", bad.to_str().expect("utf8"), "-o", o]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("is not a gateprobe report") && err.contains("threshold `ttft.p99 500ms`: no comparison"),
        "{err}"
    );
}

#[test]
fn merge_exits_4_when_the_merged_checks_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = common::sample();
    let a = save(dir.path(), "a.json", &r);
    let o = dir.path().join("out");
    let out = gateprobe(&["merge", a.to_str().expect("utf8"), "-o", o.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("FAIL  auth.mixtral-chat.key_forwarded"));
}

fn compare(base: &RunReport, new: &RunReport, extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = save(dir.path(), "base.json", base);
    let n = save(dir.path(), "new.json", new);
    let mut args = vec!["compare", b.to_str().expect("utf8"), n.to_str().expect("utf8")];
    args.extend(extra);
    gateprobe(&args)
}

#[test]
fn compare_passes_identical_runs_and_prints_the_table() {
    let r = common::sample();
    let out = compare(&r, &r, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let table = text(&out.stdout);
    assert!(table.starts_with("phase"), "{table}");
    assert!(table.contains("latency.p99"), "{table}");
    assert!(table.contains("ok (latency.p99=+10%)"), "{table}");
    assert!(table.contains("ttft.p90"), "{table}");
    assert!(table.trim_end().ends_with("no regression beyond tolerance"));
}

#[test]
fn compare_refuses_a_tolerance_for_a_phase_neither_report_has() {
    let r = common::sample();
    let out = compare(&r, &r, &["--tolerance", "chta:ttft.p90=+50"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains("no phase `chta`"), "{err}");
    assert!(err.contains("did you mean `chat`?"), "{err}");
}

#[test]
fn compare_exits_4_beyond_a_tolerance() {
    let base = common::sample();

    let mut slower = base.clone();
    slower.load[0].transport.latency.p99 *= 1.2;
    let out = compare(&base, &slower, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stdout));
    let table = text(&out.stdout);
    assert!(table.contains("+20.0%"), "{table}");
    assert!(table.contains("REGRESSION (latency.p99=+10%)"), "{table}");
    assert!(table.contains("1 regression beyond tolerance"), "{table}");
    // A looser tolerance for that metric overrides the default.
    let out = compare(&base, &slower, &["--tolerance", "latency.p99=+25%"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    let mut fewer = base.clone();
    fewer.load[1].rps *= 0.9;
    let out = compare(&base, &fewer, &[]);
    assert_eq!(out.status.code(), Some(4));
    assert!(text(&out.stdout).contains("REGRESSION (rps=-5%)"));
    let out = compare(&base, &fewer, &["--tolerance", "code <sweep>:rps=-15%"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    let mut errors = base.clone();
    errors.load[0].error_rate += 0.006;
    let out = compare(&base, &errors, &[]);
    assert_eq!(out.status.code(), Some(4));
    assert!(text(&out.stdout).contains("REGRESSION (error_rate=+0.5)"));
    let out = compare(&base, &errors, &["--no-default-tolerances"]);
    assert_eq!(out.status.code(), Some(0), "no tolerance, no verdict");

    let mut ttft = base.clone();
    ttft.load[0].llm.histograms.get_mut("ttft").expect("ttft").p90 += 60.0;
    let out = compare(&base, &ttft, &["--tolerance", "chat:ttft.p90=+50"]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "absolute milliseconds: {}",
        text(&out.stdout)
    );
}

#[test]
fn compare_rejects_unreadable_reports_and_bad_tolerances() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = save(dir.path(), "base.json", &common::sample());
    let b = b.to_str().expect("utf8");
    let out = gateprobe(&["compare", b, "/nonexistent/new.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read /nonexistent/new.json"));
    let out = gateprobe(&["compare", b, b, "--tolerance", "latency.p99=lots"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("tolerance `latency.p99=lots`: not a number"));
}

#[test]
fn compare_fails_when_the_phases_differ() {
    let base = common::sample();
    let mut missing = base.clone();
    missing.load.remove(1);
    let out = compare(&base, &missing, &[]);
    let table = text(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{table}");
    assert!(
        table.contains("MISMATCH: phase `code <sweep>` is only in the baseline"),
        "{table}"
    );
    assert!(table.contains("1 phase in one report only"), "{table}");
    let out = compare(&missing, &base, &["--no-default-tolerances"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("only in the new report"));
}

#[test]
fn compare_judges_a_capacity_that_is_a_lower_bound_as_a_bound() {
    let base = common::sample();
    // The new sweep never broke its SLO: >= 30 says nothing about 40.
    let mut bound = base.clone();
    bound.load[1].capacity_rps = Some(30.0);
    bound.load[1].capacity_lower_bound = true;
    let out = compare(&base, &bound, &[]);
    let table = text(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{table}");
    assert!(table.contains(">= 30.0"), "{table}");
    assert!(table.contains("CANNOT TELL (capacity_rps=-5%)"), "{table}");
    // A bound at the baseline's value is within tolerance, whatever lies above it.
    bound.load[1].capacity_rps = Some(40.0);
    let out = compare(&base, &bound, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    // And the report says it is a bound.
    let dir = tempfile::tempdir().expect("tempdir");
    let f = save(dir.path(), "bound.json", &bound);
    let o = dir.path().join("out");
    let out = gateprobe(&["merge", f.to_str().expect("utf8"), "-o", o.to_str().expect("utf8")]);
    let printed = text(&out.stdout);
    assert!(printed.contains("capacity: >= 40.0 req/s (a lower bound"), "{printed}");
    let md = std::fs::read_to_string(o.join("summary.md")).expect("summary");
    assert!(md.contains("**≥ 40.0 req/s** (a lower bound"), "{md}");
}
