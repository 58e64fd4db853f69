//! The console summary: one line per check, then the totals.

use super::text::one_line as line;
use std::fmt::Write;

use super::{RunReport, Status};

/// Renders the summary; `verbose` also lists passed checks.
pub fn render(r: &RunReport, verbose: bool) -> String {
    let mut out = String::new();
    let faults = if r.gateway.faults.is_empty() {
        String::new()
    } else {
        format!(" with fault {}", r.gateway.faults.join(","))
    };
    // No gateway in between (`kind: direct`): the run talks to the model endpoints.
    let gateway = match (r.gateway.kind.as_str(), r.gateway.url.as_deref()) {
        ("direct", None) => "no gateway (model endpoints directly)".to_owned(),
        ("direct", Some(url)) => format!("no gateway (model endpoint {url})"),
        (kind, Some(url)) => format!("gateway {kind} at {url}"),
        (kind, None) => format!("gateway {kind}"),
    };
    let _ = writeln!(
        out,
        "gateprobe {} · scenario {} · {gateway}{faults} · profile {}{}",
        r.tool.version,
        r.scenario.name,
        r.gateway.profile,
        r.seed.map(|s| format!(" · seed {s}")).unwrap_or_default()
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
    if let Some(a) = &r.aborted {
        let _ = writeln!(out, "  run aborted: {}", line(a));
    }
    for p in &r.diagnosis {
        let n = p.checks.len();
        let _ = writeln!(
            out,
            "  PROBLEM {}{}: {n} check{} ({})",
            if p.setup { "(setup) " } else { "" },
            line(&p.sentence),
            if n == 1 { "" } else { "s" },
            line(&p.checks.join(", "))
        );
    }
    // Checks that never ran for one reason (the run stopped) are one line, not one
    // block each.
    let mut not_run: Vec<(&str, usize)> = Vec::new();
    for c in &r.checks {
        if c.status == Status::Error && c.actual.starts_with("not run: ") {
            match not_run.iter_mut().find(|(why, _)| *why == c.actual) {
                Some((_, n)) => *n += 1,
                None => not_run.push((&c.actual, 1)),
            }
            continue;
        }
        let tag = match c.status {
            Status::Passed if !verbose => continue,
            Status::Passed => "pass ",
            Status::Failed => "FAIL ",
            Status::Error => "ERROR",
            Status::Skipped => "skip ",
            Status::Warning => "WARN ",
        };
        let _ = writeln!(out, "  {tag} {}", line(&c.id));
        if matches!(c.status, Status::Failed | Status::Error | Status::Warning) {
            let _ = writeln!(out, "         rule:     {}", line(&c.rule));
            match &c.profile {
                Some(p) => {
                    let _ = writeln!(out, "         expected: {} (profile {})", line(&c.expected), line(p));
                }
                None => {
                    let _ = writeln!(out, "         expected: {}", line(&c.expected));
                }
            }
            let _ = writeln!(out, "         actual:   {}", line(&c.actual));
        } else if c.status == Status::Skipped {
            let _ = writeln!(out, "         {}", line(&c.actual));
        }
    }
    for (why, n) in &not_run {
        let _ = writeln!(out, "  ERROR {n} check{} {}", if *n == 1 { "" } else { "s" }, line(why));
    }
    for p in &r.load {
        let h = |k: &str| p.llm.histograms.get(k).map_or((0.0, 0.0), |h| (h.p50, h.p99));
        let _ = writeln!(
            out,
            "  load {} · {} {}{} · {}",
            p.name,
            p.feature,
            if p.stream { "(stream)" } else { "" },
            if p.route == "direct" {
                " straight to the model"
            } else {
                ""
            },
            p.schedule
        );
        let _ = writeln!(
            out,
            "       {} requests, {:.1} req/s, {:.2}% errors, {:.1} tokens/s{}",
            p.transport.requests,
            p.rps,
            p.error_rate * 100.0,
            p.output_tokens_per_s,
            p.shard.as_deref().map(|s| format!(", shard {s}")).unwrap_or_default()
        );
        let (t50, t99) = h("ttft");
        let (i50, i99) = h("itl");
        let (o50, o99) = h("gateway_overhead");
        // Only a gateway in front of gateprobe's own mocks has an overhead to show.
        let overhead = if p.llm.histograms.get("gateway_overhead").is_some_and(|h| h.count > 0) {
            format!(" · gateway overhead p50 {o50:.1} p99 {o99:.1}")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "       latency p50 {:.1} p99 {:.1} ms · ttft p50 {t50:.1} p99 {t99:.1} · itl p50 {i50:.1} p99 {i99:.1}{overhead}",
            p.transport.latency.p50, p.transport.latency.p99
        );
        let paired = p.paired_rows();
        if !paired.is_empty() {
            let cells: Vec<String> = paired
                .iter()
                .map(|r| {
                    let d = |i: usize| r.gateway[i] - r.direct[i];
                    format!("{} {:+.1}/{:+.1}/{:+.1}", r.metric, d(0), d(1), d(2))
                })
                .collect();
            let _ = writeln!(
                out,
                "       gateway minus direct, p50/p90/p99 ms: {}",
                cells.join(" · ")
            );
        }
        if let (Some(sent), Some(how)) = (p.llm.tokens.get("prompt_sent"), &p.llm.token_counting) {
            let out_tokens = p
                .llm
                .tokens
                .get("output_usage")
                .map(|o| format!(" · output p50 {:.0} p99 {:.0} (server usage)", o.p50, o.p99))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "       prompt tokens p50 {:.0} p99 {:.0} ({how}){out_tokens}",
                sent.p50, sent.p99
            );
        }
        match super::text::capacity(p, false) {
            Some(c) if p.capacity_lower_bound => {
                let _ = writeln!(
                    out,
                    "       capacity: {c} (a lower bound: the SLO never broke up to the last rate swept)"
                );
            }
            Some(c) => {
                let _ = writeln!(out, "       capacity: {c} (highest swept rate that met the SLO)");
            }
            None if p.capacity_lower_bound => {
                let _ = writeln!(
                    out,
                    "       capacity: unknown (the sweep was interrupted in its first step)"
                );
            }
            None if !p.sweep.is_empty() => {
                let _ = writeln!(out, "       capacity: below the lowest swept rate");
            }
            None => {}
        }
        // The totals above pool every step; each rate on its own.
        for s in &p.sweep {
            let q = |v: Option<super::load::StepPercentiles>| {
                v.map_or_else(
                    || "-".to_owned(),
                    |q| format!("p50 {:.1} p90 {:.1} p99 {:.1}", q.p50, q.p90, q.p99),
                )
            };
            let value = p.slo.as_ref().map_or_else(
                || format!("{:.1}", s.slo_value),
                |slo| format!("{} {}", slo.metric, slo.show(s.slo_value)),
            );
            let _ = writeln!(
                out,
                "       step {:>6.1}/s: achieved {:.1}/s, {:.2}% errors, {value} {} · latency {} · ttft {}",
                s.rate,
                s.rps,
                s.error_rate * 100.0,
                if s.met { "met" } else { "MISSED" },
                q(s.latency_ms),
                q(s.ttft_ms)
            );
        }
        if !p.errors_line().is_empty() {
            let _ = writeln!(out, "       errors: {}", p.errors_line());
        }
        if !p.valid {
            let _ = writeln!(
                out,
                "       warning: gateprobe could not keep its schedule (lag p99 {:.1} ms): latencies include its own delay",
                p.transport.lag.p99
            );
        }
    }
    if r.interrupted {
        let _ = writeln!(out, "  run interrupted: results so far are reported");
    }
    let s = &r.summary;
    let _ = writeln!(
        out,
        "{} checks: {} passed, {} failed, {} errors, {} skipped{} in {:.2}s",
        s.total,
        s.passed,
        s.failed,
        s.errors,
        s.skipped,
        if s.warnings > 0 {
            format!(", {} warnings", s.warnings)
        } else {
            String::new()
        },
        r.duration_ms / 1000.0
    );
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn reply_text_cannot_forge_lines_or_drive_the_terminal() {
        let out = super::line("bad\n  PASS routing.x.backend\r\x1b[2Jgone\tz");
        assert_eq!(out, "bad   PASS routing.x.backend \u{FFFD}[2Jgone z");
        assert!(matches!(super::line("plain"), std::borrow::Cow::Borrowed("plain")));
    }
}
