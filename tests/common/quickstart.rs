//! The quickstart scenario, edited, run against the built-in gateway, and its checks
//! looked up: the set-up of the tests that show one rule on the embedded default.

use std::path::Path;

use gateprobe::report::{CheckResult, RunReport};
use gateprobe::run::{self, RunOptions};
use gateprobe::scenario::Scenario;
use tokio_util::sync::CancellationToken;

/// The quickstart with edits (each `from` must occur; the first occurrence changes).
pub fn quickstart_with(edits: &[(&str, &str)]) -> Scenario {
    let path = Path::new("scenarios/quickstart.yaml");
    let mut text = std::fs::read_to_string(path).expect("read");
    for (from, to) in edits {
        assert!(text.contains(from), "{from}");
        text = text.replacen(from, to, 1);
    }
    gateprobe::scenario::load_str(path, &text, &|_| None).expect("valid")
}

/// Runs `s` with the default options.
pub async fn run_default(s: &Scenario) -> RunReport {
    run::run(s, &RunOptions::default(), &CancellationToken::new()).await
}

/// The check `id` of `r` (panics with the ids there are).
pub fn check<'a>(r: &'a RunReport, id: &str) -> &'a CheckResult {
    r.checks.iter().find(|c| c.id == id).unwrap_or_else(|| {
        panic!(
            "no check {id}: {:?}",
            r.checks.iter().map(|c| &c.id).collect::<Vec<_>>()
        )
    })
}
