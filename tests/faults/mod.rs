//! Shared by the fault tests of the AI gateway API (`tests/conformance.rs`) and the
//! OpenAI front (`tests/proxy.rs`): a scenario run against the reference gateway with
//! faults, and the judgement that a fault fails its rule's checks and, for the precise
//! ones, nothing else.

#![allow(dead_code)]

use std::path::Path;

use gateprobe::gateway::Fault;
use gateprobe::report::{RunReport, Status};
use gateprobe::run::{self, RunOptions};
use gateprobe::scenario::{self, Scenario};
use tokio_util::sync::CancellationToken;

/// A shipped scenario, which must be valid.
pub fn shipped(path: &str) -> Scenario {
    let path = Path::new(path);
    scenario::load_str(path, &std::fs::read_to_string(path).expect("read"), &|_| None).expect("valid")
}

/// Runs `s` against the built-in reference gateway with `faults`.
pub async fn run_with(s: &Scenario, faults: Vec<Fault>) -> RunReport {
    let opts = RunOptions {
        faults,
        ..RunOptions::default()
    };
    run::run(s, &opts, &CancellationToken::new()).await
}

/// The ids of the checks with `status`.
pub fn ids(r: &RunReport, status: Status) -> Vec<&str> {
    r.checks
        .iter()
        .filter(|c| c.status == status)
        .map(|c| c.id.as_str())
        .collect()
}

/// Asserts that the run under `fault` has no harness errors, fails every check
/// `expected` names for the fault, and, when `precise` names the fault, fails only
/// checks under the id prefix given there.
pub fn assert_fails_its_rule(fault: Fault, r: &RunReport, expected: &[(&str, &[&str])], precise: &[(&str, &str)]) {
    let name = fault.name();
    let (_, want) = expected
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("fault {name} has no expectation in this test"));
    let failed = ids(r, Status::Failed);
    assert_eq!(ids(r, Status::Error), Vec::<&str>::new(), "{name}: harness errors");
    for id in *want {
        assert!(failed.contains(id), "{name}: {id} did not fail; failed: {failed:?}");
    }
    if let Some((_, prefix)) = precise.iter().find(|(n, _)| *n == name) {
        assert!(
            failed.iter().all(|f| f.starts_with(prefix)),
            "{name}: unrelated failures {failed:?}"
        );
    }
}
