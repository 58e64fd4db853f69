//! The console summary: one line per check, then the totals.

use std::fmt::Write;

use super::{RunReport, Status};

/// Renders the summary; `verbose` also lists passed checks.
pub fn render(r: &RunReport, verbose: bool) -> String {
    let mut out = String::new();
    let url = r.gateway.url.as_deref().unwrap_or("-");
    let faults = if r.gateway.faults.is_empty() {
        String::new()
    } else {
        format!(" with fault {}", r.gateway.faults.join(","))
    };
    let _ = writeln!(
        out,
        "gateprobe {} · scenario {} · gateway {} at {url}{faults} · profile {}",
        r.tool.version, r.scenario.name, r.gateway.kind, r.gateway.profile
    );
    if let Some(l) = &r.gateway.launched {
        let ready = l
            .ready_ms
            .map_or_else(|| "not ready".to_owned(), |ms| format!("ready in {:.1}s", ms / 1000.0));
        let _ = writeln!(
            out,
            "  launched pid {} ({ready}; output: {})",
            l.pid.map_or_else(|| "?".to_owned(), |p| p.to_string()),
            l.logs.join(", ")
        );
    }
    for c in &r.checks {
        let tag = match c.status {
            Status::Passed if !verbose => continue,
            Status::Passed => "pass ",
            Status::Failed => "FAIL ",
            Status::Error => "ERROR",
            Status::Skipped => "skip ",
        };
        let _ = writeln!(out, "  {tag} {}", c.id);
        if matches!(c.status, Status::Failed | Status::Error) {
            let _ = writeln!(out, "         rule:     {}", c.rule);
            match &c.profile {
                Some(p) => {
                    let _ = writeln!(out, "         expected: {} (profile {p})", c.expected);
                }
                None => {
                    let _ = writeln!(out, "         expected: {}", c.expected);
                }
            }
            let _ = writeln!(out, "         actual:   {}", c.actual);
        } else if c.status == Status::Skipped {
            let _ = writeln!(out, "         {}", c.actual);
        }
    }
    if let Some(a) = &r.aborted {
        let _ = writeln!(out, "  run aborted: {a}");
    }
    if r.interrupted {
        let _ = writeln!(out, "  run interrupted: results so far are reported");
    }
    let s = &r.summary;
    let _ = writeln!(
        out,
        "{} checks: {} passed, {} failed, {} errors, {} skipped in {:.2}s",
        s.total,
        s.passed,
        s.failed,
        s.errors,
        s.skipped,
        r.duration_ms / 1000.0
    );
    out
}
