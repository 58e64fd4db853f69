//! `gateprobe merge` and `gateprobe compare`: commands that work on written reports
//! (`gateprobe.json`) rather than on a gateway. Reading the files and mapping outcomes
//! to exit codes happens here; merging and comparing are in the library
//! ([`crate::report::merge`], [`crate::report::compare`]).

use std::path::{Path, PathBuf};

use clap::Args;

use super::commands::say;
use super::exit;
use crate::report::compare::{self, DEFAULT_TOLERANCES, Tolerance};
use crate::report::{self, RunReport, console, merge};

#[derive(Debug, Args)]
pub(super) struct MergeArgs {
    /// Shard reports (`gateprobe.json` of each generator).
    #[arg(required = true, value_name = "REPORT")]
    reports: Vec<PathBuf>,
    /// Directory for the merged report and every output format.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    output: PathBuf,
    /// List passed checks too.
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Debug, Args)]
pub(super) struct CompareArgs {
    /// The baseline report (e.g. from the target branch).
    #[arg(value_name = "BASE")]
    base: PathBuf,
    /// The report to judge.
    #[arg(value_name = "NEW")]
    new: PathBuf,
    /// `[PHASE:]METRIC=±N%` (relative) or `[PHASE:]METRIC=±N` (absolute; percentage
    /// points for error_rate); the sign is the worse direction (repeatable).
    #[arg(long = "tolerance", value_name = "SPEC", value_parser = parse_tolerance)]
    tolerances: Vec<Tolerance>,
    /// Judge only the --tolerance given, not the defaults.
    #[arg(long)]
    no_default_tolerances: bool,
}

fn parse_tolerance(s: &str) -> Result<Tolerance, String> {
    s.parse().map_err(|e: compare::ToleranceError| e.to_string())
}

/// The largest report read (a 10-minute load run writes about 2 MiB).
const MAX_REPORT_BYTES: usize = 64 * 1024 * 1024;

/// Reads one `gateprobe.json`, bounded (anyone can write one).
fn read_report(path: &Path) -> Result<RunReport, String> {
    let bytes = crate::files::read_bounded(path, MAX_REPORT_BYTES, crate::files::Accept::Any)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{} is not a gateprobe report: {e}", path.display()))
}

fn read_all(paths: &[PathBuf]) -> Result<Vec<RunReport>, u8> {
    let mut out = Vec::with_capacity(paths.len());
    let mut bad = false;
    for p in paths {
        match read_report(p) {
            Ok(r) => out.push(r),
            Err(e) => {
                eprintln!("error: {e}");
                bad = true;
            }
        }
    }
    if bad { Err(exit::INVALID_INPUT) } else { Ok(out) }
}

pub(super) fn merge_cmd(a: MergeArgs) -> u8 {
    let reports = match read_all(&a.reports) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut merged = match merge::merge(&reports) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: cannot merge: {e}");
            if let Some(path) = e.input().and_then(|i| a.reports.get(i - 1)) {
                eprintln!("  = note: report {} is {}", e.input().unwrap_or(0), path.display());
            }
            return exit::INVALID_INPUT;
        }
    };
    // Shards skip their thresholds: they gate the whole run, judged here.
    crate::check::threshold::rejudge(&mut merged);
    let written = report::write_all(&merged, &a.output);
    say(console::render(&merged, a.verbose).trim_end());
    let requests: u64 = merged.load.iter().map(|p| p.transport.requests).sum();
    say(format_args!(
        "merged {} report{}: {} load phase{}, {} requests",
        reports.len(),
        if reports.len() == 1 { "" } else { "s" },
        merged.load.len(),
        if merged.load.len() == 1 { "" } else { "s" },
        requests
    ));
    match written {
        Ok(paths) => {
            let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            say(format_args!("reports: {}", names.join(", ")));
        }
        Err(e) => {
            eprintln!("error: cannot write reports to {}: {e}", a.output.display());
            return exit::HARNESS;
        }
    }
    // The merged run's verdict, as `gateprobe run` would give it.
    exit::of(merged.verdict())
}

pub(super) fn compare_cmd(a: CompareArgs) -> u8 {
    let reports = match read_all(&[a.base.clone(), a.new.clone()]) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let (base, new) = (&reports[0], &reports[1]);
    if base.schema_version != new.schema_version {
        eprintln!(
            "error: {} has schema_version {}, {} has {}",
            a.base.display(),
            base.schema_version,
            a.new.display(),
            new.schema_version
        );
        return exit::INVALID_INPUT;
    }
    // A tolerance for a phase neither report has would silently judge nothing.
    for t in &a.tolerances {
        if let Some(phase) = &t.phase
            && !base.load.iter().chain(&new.load).any(|p| &p.name == phase)
        {
            let names: Vec<&str> = base.load.iter().chain(&new.load).map(|p| p.name.as_str()).collect();
            let mut known = names.clone();
            known.dedup();
            let close = crate::scenario::error::did_you_mean(phase, known.iter().copied())
                .map(|h| format!("{h} "))
                .unwrap_or_default();
            let list = if known.is_empty() {
                "the reports have no load phases".to_owned()
            } else {
                format!("phases: {}", known.join(", "))
            };
            eprintln!(
                "error: --tolerance {}: no phase `{phase}` in either report\n  = help: {close}{list}; without `PHASE:` a tolerance covers every phase",
                t.spec
            );
            return exit::USAGE;
        }
    }
    let mut tolerances = a.tolerances;
    if !a.no_default_tolerances {
        // Defaults are valid by construction (a unit test parses them).
        tolerances.extend(DEFAULT_TOLERANCES.iter().filter_map(|s| s.parse().ok()));
    }
    let c = compare::compare(base, new, &tolerances);
    say(compare::render(&c).trim_end());
    if c.failures() > 0 {
        exit::CHECKS_FAILED
    } else {
        exit::OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tolerances_parse() {
        for s in DEFAULT_TOLERANCES {
            assert!(parse_tolerance(s).is_ok(), "{s}");
        }
    }
}
