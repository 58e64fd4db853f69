//! Hostile and careless files: what a scenario names (a gateway profile, a CA file),
//! where reports go (names that climb out of `--report-dir`, two scenarios of one
//! name, a report directory that is a file, links planted at a report's or a log's
//! name), and terminal escapes in a scenario. Nothing outside its place is read
//! whole, shown, followed or overwritten.

use std::path::Path;
use std::process::{Command, Output};
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

fn validate(path: &Path, env: &[(&str, &str)]) -> Output {
    let mut c = gateprobe();
    c.arg("validate").arg(path);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("gateprobe runs")
}

const PROXY: &str = "version: 1\ngateway:\n  kind: openai\n  url: http://127.0.0.1:4000\n";

#[test]
fn a_profile_naming_a_foreign_file_never_shows_its_content() {
    let dir = tempfile::tempdir().expect("tempdir");
    let planted = "sk-planted-environ-7f3a9c";
    // The process's own environment, as the issue found it printed.
    let s = dir.path().join("environ.yaml");
    std::fs::write(&s, format!("{PROXY}  profile: /proc/self/environ\n")).expect("write");
    if Path::new("/proc/self/environ").exists() {
        let out = validate(&s, &[("GATEPROBE_PLANTED_SECRET", planted)]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("/proc/self/environ"), "{err}");
        assert!(!err.contains(planted) && !err.contains("GATEPROBE_PLANTED"), "{err}");
    }
    // Any file: each way a profile can be wrong quotes nothing of it.
    for (i, body) in [
        format!("{planted}\n"),
        format!("name: x\nexpect:\n  {planted}: {{status: 404}}\n"),
        format!("name: x\nexpect:\n  missing_v1.chat: {{status: {planted}}}\n"),
        format!("name: x\nextends: {planted}\n"),
        format!("name: x\ntolerate: {{{planted}: why}}\n"),
        format!("name: [unclosed {planted}\n"),
    ]
    .iter()
    .enumerate()
    {
        let key = dir.path().join(format!("key-{i}.pem"));
        std::fs::write(&key, body).expect("write");
        let s = dir.path().join(format!("s{i}.yaml"));
        std::fs::write(&s, format!("{PROXY}  profile: key-{i}.pem\n")).expect("write");
        let out = validate(&s, &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{body}: {err}");
        assert!(err.contains(&format!("key-{i}.pem")), "{err}");
        assert!(!err.contains("planted"), "{body} shown: {err}");
    }
}

#[test]
fn a_ca_file_that_never_ends_or_never_opens_is_refused_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("ca.pipe");
    let has_fifo = Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success());
    for (ca, says) in [("/dev/zero", "it is a device"), ("ca.pipe", "it is a named pipe")] {
        if (ca == "ca.pipe" && !has_fifo) || !Path::new("/dev/zero").exists() {
            continue;
        }
        let s = dir.path().join("s.yaml");
        std::fs::write(
            &s,
            format!("version: 1\ngateway:\n  kind: aigw\n  url: https://127.0.0.1:5052\n  tls: {{ca: {ca}}}\n"),
        )
        .expect("write");
        let started = Instant::now();
        let out = validate(&s, &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
    }
}

/// A small scenario that runs in well under a second against the built-in gateway.
fn tiny(name: &str) -> String {
    format!(
        "version: 1\nname: {}\ngateway: {{kind: builtin}}\nbackends:\n  v: {{provider: openai, models: [M]}}\nself_hosted_models:\n  - {{name: m, family: mixtral, endpoint: \"{{{{ backends.v.url }}}}/v1\", identifier: custom_openai/M}}\nfeatures:\n  duo_chat: m\nchecks: [routing]\n",
        serde_json::to_string(name).expect("json")
    )
}

#[test]
fn scenario_names_cannot_climb_out_of_the_report_dir_or_share_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = dir.path().join("outside");
    let names = ["../../outside", "/tmp/gateprobe-absolute-name", "same", "same"];
    let files: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let p = dir.path().join(format!("s{i}.yaml"));
            std::fs::write(&p, tiny(n)).expect("write");
            p.display().to_string()
        })
        .collect();
    let reports = dir.path().join("a").join("b").join("reports");
    let out = gateprobe()
        .arg("run")
        .args(&files)
        .arg("--report-dir")
        .arg(&reports)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    let mut made: Vec<String> = std::fs::read_dir(&reports)
        .expect("report dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    made.sort();
    assert_eq!(
        made,
        ["_.._.._outside", "_tmp_gateprobe-absolute-name", "same", "same-2"]
    );
    for d in &made {
        assert!(reports.join(d).join("gateprobe.json").is_file(), "{d}");
    }
    assert!(!outside.exists() && !Path::new("/tmp/gateprobe-absolute-name").exists());
}

#[test]
fn a_report_dir_that_is_a_file_is_refused_before_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = dir.path().join("s.yaml");
    std::fs::write(&s, tiny("t")).expect("write");
    let file = dir.path().join("reports");
    std::fs::write(&file, "not a directory").expect("write");
    let out = gateprobe()
        .arg("run")
        .arg(&s)
        .arg("--report-dir")
        .arg(&file)
        .output()
        .expect("runs");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("cannot write reports to"), "{err}");
    assert!(
        !text(&out.stdout).contains("checks:"),
        "the run went ahead: {}",
        text(&out.stdout)
    );
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "not a directory");
}

#[test]
fn a_link_planted_at_a_log_name_is_not_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "keep me").expect("write");
    let logs = dir.path().join("r");
    std::fs::create_dir(&logs).expect("mkdir");
    std::os::unix::fs::symlink(&victim, logs.join("gateway.stdout.log")).expect("link");
    let spec = gateprobe::launch::LaunchSpec {
        command: vec!["sh".into(), "-c".into(), "echo overwritten; sleep 30".into()],
        env: vec![],
        dir: logs.clone(),
    };
    let e = gateprobe::launch::start(&spec, &gateprobe::redact::Redactor::default()).expect_err("refused");
    assert!(e.to_string().contains("is a symbolic link"), "{e}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(std::fs::read_to_string(&victim).expect("read"), "keep me");
}
