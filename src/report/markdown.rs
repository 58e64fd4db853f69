//! `summary.md`: a short Markdown summary that fits a GitLab merge-request comment
//! (post it with the API or a bot): conformance totals and the checks that failed,
//! then per load phase one table of requests, rate, error rate and the p50/p90/p99 of
//! latency, TTFT, ITL and gateway overhead, the sweep capacity, thresholds met or
//! breached, and whether the generator kept its schedule. Written for every run,
//! conformance-only ones included; the details live in `report.html` and the JSON.

use std::fmt::Write;

use super::load::PhaseReport;
use super::text::{self, count, ms, percent, rate};
use super::{CheckResult, RunReport, Status, Summary};

/// Check family of load thresholds (`threshold.<phase>.<metric>`).
pub const THRESHOLD_FAMILY: &str = "threshold";

/// Failed checks listed before the rest are summarised as "and N more": a comment
/// should stay readable when a broken gateway fails every check.
const MAX_LISTED: usize = 20;

/// Longest cell text before it is cut with an ellipsis.
const MAX_CELL: usize = 160;

/// Renders the summary.
pub fn render(r: &RunReport) -> String {
    let mut out = String::new();
    let conformance: Vec<&CheckResult> = r.checks.iter().filter(|c| c.family != THRESHOLD_FAMILY).collect();
    let thresholds: Vec<&CheckResult> = r.checks.iter().filter(|c| c.family == THRESHOLD_FAMILY).collect();
    let s = Summary::of(conformance.iter().copied());
    let ok = r.verdict() == super::Verdict::Passed;
    let _ = writeln!(
        out,
        "## {} gateprobe · {}\n",
        if ok { "✅" } else { "❌" },
        inline(&r.scenario.name)
    );
    let mut gw = format!("Gateway {}", code_span(&r.gateway.kind));
    if let Some(url) = &r.gateway.url {
        let _ = write!(gw, " at {}", code_span(url));
    }
    if !r.gateway.faults.is_empty() {
        let _ = write!(gw, " with fault {}", code_span(&r.gateway.faults.join(", ")));
    }
    let _ = writeln!(
        out,
        "{gw} · started {} · {:.1} s · gateprobe {}\n",
        inline(&r.started_at),
        r.duration_ms / 1000.0,
        inline(&r.tool.version)
    );
    if let Some(a) = &r.aborted {
        let _ = writeln!(out, "> ⚠️ **Run aborted:** {}\n", inline(a));
    }
    if !r.diagnosis.is_empty() {
        out.push_str("**Problems found:**\n\n");
        for p in &r.diagnosis {
            let _ = writeln!(
                out,
                "- {}{}: {} check(s): {}",
                if p.setup { "(setup) " } else { "" },
                inline(&p.sentence),
                p.checks.len(),
                p.checks.iter().map(|c| code_span(c)).collect::<Vec<_>>().join(", ")
            );
        }
        out.push('\n');
    }
    if r.interrupted {
        let _ = writeln!(out, "> ⚠️ **Run interrupted:** results so far are reported.\n");
    }
    conformance_section(&mut out, &s, &conformance);
    for p in &r.load {
        phase_section(&mut out, p, &thresholds);
    }
    let orphans: Vec<&CheckResult> = thresholds
        .iter()
        .copied()
        .filter(|c| !r.load.iter().any(|p| belongs_to(c, p)))
        .collect();
    if !orphans.is_empty() {
        out.push_str("### Thresholds\n\n");
        threshold_lines(&mut out, &orphans);
        out.push('\n');
    }
    out
}

fn conformance_section(out: &mut String, s: &Summary, checks: &[&CheckResult]) {
    if s.total == 0 {
        out.push_str("**Conformance:** no checks ran.\n\n");
        return;
    }
    let mut parts = vec![format!("{} passed", s.passed)];
    parts.push(if s.failed > 0 {
        format!("**{} failed**", s.failed)
    } else {
        "0 failed".into()
    });
    parts.push(if s.errors > 0 {
        format!("**{} errors**", s.errors)
    } else {
        "0 errors".into()
    });
    parts.push(format!("{} skipped", s.skipped));
    if s.warnings > 0 {
        parts.push(format!("{} warnings", s.warnings));
    }
    let _ = writeln!(out, "**Conformance:** {} checks: {}\n", s.total, parts.join(", "));
    let bad: Vec<&&CheckResult> = checks
        .iter()
        .filter(|c| matches!(c.status, Status::Failed | Status::Error | Status::Warning))
        .collect();
    if bad.is_empty() {
        return;
    }
    out.push_str("| | check | expected | actual |\n|---|---|---|---|\n");
    for c in bad.iter().take(MAX_LISTED) {
        let tag = match c.status {
            Status::Failed => "FAIL",
            Status::Warning => "WARN",
            _ => "ERROR",
        };
        let _ = writeln!(
            out,
            "| {tag} | {} | {} | {} |",
            code_span(&c.id),
            cell(&c.expected),
            cell(&c.actual)
        );
    }
    if bad.len() > MAX_LISTED {
        let _ = writeln!(
            out,
            "\n… and {} more; see `gateprobe.json` or `junit.xml`.",
            bad.len() - MAX_LISTED
        );
    }
    out.push('\n');
}

/// Whether a threshold check (`threshold.<phase>.<metric>`) is about phase `p`.
pub(super) fn belongs_to(c: &CheckResult, p: &PhaseReport) -> bool {
    c.id.strip_prefix("threshold.")
        .and_then(|rest| rest.strip_prefix(p.name.as_str()))
        .is_some_and(|rest| rest.starts_with('.'))
}

fn phase_section(out: &mut String, p: &PhaseReport, thresholds: &[&CheckResult]) {
    let _ = writeln!(out, "### Load phase {}\n", code_span(&p.name));
    let mut what = format!(
        "{} → {} · {} · {} loop · {}",
        code_span(&p.feature),
        code_span(&p.model),
        if p.stream { "streamed" } else { "not streamed" },
        inline(&p.mode),
        inline(&p.schedule)
    );
    if let Some(s) = &p.shard {
        let _ = write!(what, " · shard {}", inline(s));
    }
    let _ = writeln!(
        out,
        "{what} · {:.1} s measured · {} output tokens/s\n",
        p.elapsed_ms / 1000.0,
        rate(p.output_tokens_per_s)
    );
    out.push_str("| requests | req/s | error rate | metric | p50 | p90 | p99 |\n");
    out.push_str("|--:|--:|--:|---|--:|--:|--:|\n");
    let t = &p.transport;
    // Latency always (an empty one shows as dashes); the LLM metrics when recorded, so
    // a phase that does not stream has no TTFT or ITL rows.
    let mut rows: Vec<(String, &crate::metrics::HistogramSummary)> = vec![("latency".into(), &t.latency)];
    for key in ["ttft", "itl", "gateway_overhead"] {
        if let Some(h) = p.llm.histograms.get(key).filter(|h| h.count > 0) {
            rows.push((text::label(key), h));
        }
    }
    for (i, (name, h)) in rows.iter().enumerate() {
        let lead = if i == 0 {
            format!("| {} | {} | {} ", count(t.requests), rate(p.rps), percent(p.error_rate))
        } else {
            "| | | ".into()
        };
        let vals = if h.count > 0 {
            format!("{} ms | {} ms | {} ms", ms(h.p50), ms(h.p90), ms(h.p99))
        } else {
            "– | – | –".into()
        };
        let _ = writeln!(out, "{lead}| {name} | {vals} |");
    }
    out.push('\n');
    let paired = p.paired_rows();
    if !paired.is_empty() {
        out.push_str("Through the gateway vs straight to the model (`compare_direct`, interleaved):\n\n");
        out.push_str("| metric | gateway p50 | direct p50 | gateway p90 | direct p90 | gateway p99 | direct p99 | overhead p99 |\n");
        out.push_str("|---|--:|--:|--:|--:|--:|--:|--:|\n");
        for r in &paired {
            let _ = writeln!(
                out,
                "| {} | {} ms | {} ms | {} ms | {} ms | {} ms | {} ms | {} ms |",
                text::label(r.metric),
                ms(r.gateway[0]),
                ms(r.direct[0]),
                ms(r.gateway[1]),
                ms(r.direct[1]),
                ms(r.gateway[2]),
                ms(r.direct[2]),
                ms(r.gateway[2] - r.direct[2])
            );
        }
        out.push('\n');
    }
    if let Some(w) = &p.workload {
        let how = p.llm.token_counting.as_deref().unwrap_or("4 characters per token");
        let _ = writeln!(out, "- Workload: {} (tokens counted as {})", inline(w), inline(how));
        for (k, label) in [
            ("prompt_sent", "prompt tokens sent"),
            ("prompt_usage", "prompt tokens (server usage)"),
            ("output_usage", "output tokens (server usage)"),
        ] {
            if let Some(h) = p.llm.tokens.get(k) {
                let _ = writeln!(
                    out,
                    "- {label}: mean {:.1}, p50 {:.0}, p90 {:.0}, p99 {:.0}",
                    h.mean, h.p50, h.p90, h.p99
                );
            }
        }
    }
    let errors = text::error_breakdown(p);
    if !errors.is_empty() {
        let list: Vec<String> = errors
            .iter()
            .map(|(k, n)| format!("{} {}", code_span(k), count(*n)))
            .collect();
        let _ = writeln!(out, "- Errors: {}", list.join(", "));
    }
    if !p.sweep.is_empty() {
        let cap = match text::capacity(p, true) {
            Some(c) if p.capacity_lower_bound => format!("**{c}** (a lower bound: the SLO never broke)"),
            Some(c) => format!("**{c}**"),
            None if p.capacity_lower_bound => "**unknown**: the sweep was interrupted in its first step".into(),
            None => "**none**: no swept rate met the SLO".into(),
        };
        let slo = p.slo.as_ref();
        let _ = writeln!(
            out,
            "- Capacity: {cap}{} · each step on its own (the table above pools them all, the overloaded ones included):\n",
            slo.map(|s| format!(" at SLO {}", code_span(&s.text)))
                .unwrap_or_default()
        );
        let metric = slo.map_or_else(|| "SLO metric".to_owned(), |s| s.label());
        let ttft = p.sweep.iter().any(|s| s.ttft_ms.is_some());
        let _ = writeln!(
            out,
            "| offered req/s | achieved req/s | error rate | {} | latency p50 / p90 / p99 ms |{} SLO |",
            inline(&metric),
            if ttft { " TTFT p50 / p90 / p99 ms |" } else { "" }
        );
        let _ = writeln!(out, "|--:|--:|--:|--:|--:|{}:-:|", if ttft { "--:|" } else { "" });
        let pct = |q: Option<crate::report::load::StepPercentiles>| match q {
            Some(q) => format!("{} / {} / {}", ms(q.p50), ms(q.p90), ms(q.p99)),
            None => "–".into(),
        };
        for s in &p.sweep {
            let value = slo.map_or_else(|| ms(s.slo_value), |x| x.show(s.slo_value));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |{} {} |",
                rate(s.rate),
                rate(s.rps),
                percent(s.error_rate),
                value,
                pct(s.latency_ms),
                if ttft {
                    format!(" {} |", pct(s.ttft_ms))
                } else {
                    String::new()
                },
                if s.met { "✓" } else { "✗" }
            );
        }
        out.push('\n');
    }
    let mine: Vec<&CheckResult> = thresholds.iter().copied().filter(|c| belongs_to(c, p)).collect();
    if !mine.is_empty() {
        threshold_lines(out, &mine);
    }
    for w in text::phase_warnings(t, p.valid) {
        let lead = w.lead.map(|l| format!("**{l}** ")).unwrap_or_default();
        let _ = writeln!(out, "- ⚠️ {lead}{}", w.text);
    }
    out.push('\n');
}

fn threshold_lines(out: &mut String, checks: &[&CheckResult]) {
    let breached: Vec<&&CheckResult> = checks.iter().filter(|c| c.status != Status::Passed).collect();
    let _ = writeln!(
        out,
        "- Thresholds: {} met, {} breached",
        checks.len() - breached.len(),
        breached.len()
    );
    for c in breached {
        let tag = match c.status {
            Status::Failed => "❌",
            Status::Error => "⚠️",
            _ => "➖",
        };
        let _ = writeln!(
            out,
            "  - {tag} {}: expected {}, got {}",
            code_span(&c.id),
            inline(&c.expected),
            inline(&c.actual)
        );
    }
}

/// Text safe inside a Markdown paragraph or list item: characters that start markup,
/// inline HTML or links are backslash-escaped and line breaks become spaces.
pub fn inline(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '!' | '~' => {
                o.push('\\');
                o.push(ch);
            }
            '&' => o.push_str("&amp;"),
            // A zero-width space after `@`: text from a reply can't mention
            // (`@all`) anyone in the merge request the summary is posted to.
            '@' => o.push_str("@\u{200B}"),
            '\r' | '\n' | '\t' => o.push(' '),
            c if c.is_control() => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

fn cut(s: &str) -> String {
    if s.chars().count() <= MAX_CELL {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(MAX_CELL - 1).collect();
        t.push('…');
        t
    }
}

fn cell(s: &str) -> String {
    inline(&cut(s))
}

/// The inside of a code span: no line breaks, and a `|` escaped so a table keeps its
/// columns (GitLab and GitHub both unescape it inside code).
fn code(s: &str) -> String {
    text::one_line(s).replace('|', "\\|")
}

/// A code span that survives backticks in its text.
fn code_span(s: &str) -> String {
    let body = code(&cut(s));
    let mut ticks = 1;
    while body.contains(&"`".repeat(ticks)) {
        ticks += 1;
    }
    let fence = "`".repeat(ticks);
    if ticks > 1 || body.starts_with('`') || body.ends_with('`') {
        format!("{fence} {body} {fence}")
    } else {
        format!("{fence}{body}{fence}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(inline("a|b <i>*x*</i>\nz"), "a\\|b \\<i\\>\\*x\\*\\</i\\> z");
        assert_eq!(inline("ping @all"), "ping @\u{200B}all");
        assert_eq!(code_span("a`b"), "`` a`b ``");
        assert_eq!(code_span("x|y"), "`x\\|y`");
    }
}
