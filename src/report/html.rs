//! `report.html`: one self-contained page for a load run, to open from a CI artifact or
//! a laptop with no network: the conformance summary, then per phase the key numbers,
//! a percentile table, latency-by-percentile curves per metric, throughput and latency
//! over time, the error breakdown, the sweep curve with its capacity, and thresholds.
//!
//! Everything is inline: CSS in a `<style>`, charts as SVG drawn by the `charts` module,
//! system fonts, no script at all. A Content-Security-Policy forbids the page from
//! loading anything, so a stray reference could not phone home either. Every piece of
//! report text is escaped.

use std::fmt::Write;

use super::charts;
use super::junit::esc;
use super::load::PhaseReport;
use super::markdown::{THRESHOLD_FAMILY, belongs_to};
use super::svg::PALETTE;
use super::text::{self, count, ms, percent, rate};
use super::{CheckResult, RunReport, Status};

const STYLE: &str = r#"
:root{--fg:#0f172a;--muted:#64748b;--line:#e2e8f0;--bg:#f6f7f9;--card:#fff;--red:#dc2626;--green:#16a34a;--amber:#b45309}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1200px;margin:0 auto;padding:28px 28px 56px}
h1{font-size:24px;margin:0 0 4px;letter-spacing:-.01em}
h2{font-size:19px;margin:36px 0 6px;padding-top:18px;border-top:1px solid var(--line)}
h3{font-size:14px;margin:22px 0 8px;color:#334155;text-transform:uppercase;letter-spacing:.05em}
h4{margin:0 0 6px;font-size:13px;color:#334155}
p{margin:6px 0}
.sub,.muted{color:var(--muted)}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px;background:#eef2f6;padding:1px 5px;border-radius:4px}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:12px;margin:14px 0}
.tile{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:10px 14px}
.tile b{display:block;font-size:22px;line-height:1.3;font-variant-numeric:tabular-nums}
.tile span{color:var(--muted);font-size:11.5px;text-transform:uppercase;letter-spacing:.05em}
.tile.bad b{color:var(--red)}.tile.good b{color:var(--green)}.tile.warn b{color:var(--amber)}
table{border-collapse:separate;border-spacing:0;background:var(--card);border:1px solid var(--line);border-radius:10px;width:100%;font-variant-numeric:tabular-nums;overflow:hidden}
th,td{padding:6px 12px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
tr:last-child td{border-bottom:0}
th{background:#f8fafc;font-weight:600;color:#334155;font-size:12.5px}
.n{text-align:right;white-space:nowrap}
.grid2{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:14px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 14px}
svg.chart{width:100%;height:auto;display:block;margin:4px 0}
svg .grid{stroke:#eef0f3}svg .axis{stroke:#a3adba}
svg text{font-size:11px;fill:#52606f;font-family:inherit}svg .axis-title{fill:#7b8794}
svg .bar-label{font-size:12px;fill:#334155}svg .bar-value{font-size:12px;fill:#52606f}svg .marker{font-size:12px;fill:#15803d;font-weight:600}
.caption{color:var(--muted);font-size:12px;margin:2px 0 0}.caption b{color:var(--fg);font-weight:600}
.legend{font-size:12px;color:#52606f}.legend span{margin-right:16px}.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:-1px}
.note{border-radius:10px;padding:9px 14px;margin:10px 0;border:1px solid}
.note.warn{background:#fffbeb;border-color:#fcd34d}.note.bad{background:#fef2f2;border-color:#fca5a5}
.st{display:inline-block;min-width:52px;text-align:center;font-size:11px;font-weight:700;border-radius:4px;padding:1px 6px;letter-spacing:.03em}
.st.passed{background:#dcfce7;color:#166534}.st.failed{background:#fee2e2;color:#991b1b}.st.error{background:#fef3c7;color:#92400e}.st.skipped{background:#f1f5f9;color:#475569}
details{margin:10px 0}summary{cursor:pointer;color:#334155}
footer{margin-top:40px;color:var(--muted);font-size:12px}
@media (max-width:900px){.grid2{grid-template-columns:1fr}main{padding:18px 14px 40px}}
@media print{body{background:#fff}.card,.tile,table{break-inside:avoid}}
"#;

/// Renders the page.
pub fn render(r: &RunReport) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let title = format!("gateprobe · {}", r.scenario.name);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        esc(&title)
    );
    header(&mut out, r);
    conformance(&mut out, r);
    for (i, p) in r.load.iter().enumerate() {
        phase(&mut out, r, i, p);
    }
    let orphans: Vec<&CheckResult> = r
        .checks
        .iter()
        .filter(|c| c.family == THRESHOLD_FAMILY && !r.load.iter().any(|p| belongs_to(c, p)))
        .collect();
    if !orphans.is_empty() {
        out.push_str("<h2>Thresholds</h2>\n");
        thresholds_table(&mut out, &orphans);
    }
    let _ = write!(
        out,
        "<footer>Written by gateprobe {} from <code>gateprobe.json</code> (schema version {}). Latencies are measured from each request's intended send time.</footer>\n</main>\n</body>\n</html>\n",
        esc(&r.tool.version),
        r.schema_version
    );
    out
}

fn header(out: &mut String, r: &RunReport) {
    let _ = write!(out, "<header><h1>{}</h1>", esc(&r.scenario.name));
    let mut sub = format!("Gateway <code>{}</code>", esc(&r.gateway.kind));
    if let Some(u) = &r.gateway.url {
        let _ = write!(sub, " at <code>{}</code>", esc(u));
    }
    if !r.gateway.faults.is_empty() {
        let _ = write!(sub, " with fault <code>{}</code>", esc(&r.gateway.faults.join(", ")));
    }
    let _ = writeln!(
        out,
        "<p class=\"sub\">{sub} · started {} · {:.1} s · {} load phase{}</p></header>",
        esc(&r.started_at),
        r.duration_ms / 1000.0,
        r.load.len(),
        if r.load.len() == 1 { "" } else { "s" }
    );
    if let Some(a) = &r.aborted {
        let _ = write!(out, "<div class=\"note bad\"><b>Run aborted:</b> {}</div>", esc(a));
    }
    if r.interrupted {
        out.push_str("<div class=\"note warn\"><b>Run interrupted:</b> results so far are reported.</div>");
    }
}

fn tile(out: &mut String, value: &str, label: &str, class: &str) {
    let _ = write!(
        out,
        "<div class=\"tile {class}\"><b>{}</b><span>{}</span></div>",
        esc(value),
        esc(label)
    );
}

fn status_badge(s: Status) -> &'static str {
    match s {
        Status::Passed => "<span class=\"st passed\">PASS</span>",
        Status::Failed => "<span class=\"st failed\">FAIL</span>",
        Status::Error => "<span class=\"st error\">ERROR</span>",
        Status::Skipped => "<span class=\"st skipped\">SKIP</span>",
        Status::Warning => "<span class=\"st error\">WARN</span>",
    }
}

fn conformance(out: &mut String, r: &RunReport) {
    let checks: Vec<&CheckResult> = r.checks.iter().filter(|c| c.family != THRESHOLD_FAMILY).collect();
    out.push_str("<h2>Conformance</h2>\n");
    if checks.is_empty() {
        out.push_str("<p class=\"muted\">No conformance checks ran.</p>\n");
        return;
    }
    let n = |s: Status| checks.iter().filter(|c| c.status == s).count();
    out.push_str("<div class=\"tiles\">");
    tile(out, &checks.len().to_string(), "checks", "");
    tile(out, &n(Status::Passed).to_string(), "passed", "good");
    let failed = n(Status::Failed);
    tile(out, &failed.to_string(), "failed", if failed > 0 { "bad" } else { "" });
    let errors = n(Status::Error);
    tile(out, &errors.to_string(), "errors", if errors > 0 { "warn" } else { "" });
    tile(out, &n(Status::Skipped).to_string(), "skipped", "");
    let warnings = n(Status::Warning);
    if warnings > 0 {
        tile(out, &warnings.to_string(), "warnings", "warn");
    }
    out.push_str("</div>\n");
    let bad: Vec<&&CheckResult> = checks
        .iter()
        .filter(|c| matches!(c.status, Status::Failed | Status::Error | Status::Warning))
        .collect();
    if !bad.is_empty() {
        out.push_str("<table><tr><th></th><th>check</th><th>expected</th><th>actual</th></tr>");
        for c in bad {
            let _ = write!(
                out,
                "<tr><td>{}</td><td><code>{}</code><br><span class=\"muted\">{}</span></td><td>{}</td><td>{}</td></tr>",
                status_badge(c.status),
                esc(&c.id),
                esc(&c.rule),
                esc(&c.expected),
                esc(&c.actual)
            );
        }
        out.push_str("</table>\n");
    }
    let _ = write!(
        out,
        "<details><summary>All {} checks</summary><table><tr><th></th><th>check</th><th>rule</th></tr>",
        checks.len()
    );
    for c in &checks {
        let _ = write!(
            out,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            status_badge(c.status),
            esc(&c.id),
            esc(&c.rule)
        );
    }
    out.push_str("</table></details>\n");
}

fn phase(out: &mut String, r: &RunReport, index: usize, p: &PhaseReport) {
    let _ = write!(
        out,
        "<section id=\"phase-{index}\">\n<h2>Load phase <code>{}</code></h2>",
        esc(&p.name)
    );
    let mut sub = format!(
        "<code>{}</code> → <code>{}</code> · {} · {} loop · {} · {:.1} s measured",
        esc(&p.feature),
        esc(&p.model),
        if p.stream { "streamed" } else { "not streamed" },
        esc(&p.mode),
        esc(&p.schedule),
        p.elapsed_ms / 1000.0
    );
    if let Some(s) = &p.shard {
        let _ = write!(sub, " · shard {}", esc(s));
    }
    let _ = writeln!(out, "<p class=\"sub\">{sub}</p>");
    let t = &p.transport;
    out.push_str("<div class=\"tiles\">");
    match p.headline_step() {
        // A sweep's totals pool every step, the overloaded one included: the headline
        // is the highest rate that met the SLO.
        Some(step) => {
            let at = if step.met {
                format!("at {} req/s offered", rate(step.rate))
            } else {
                format!("at {} req/s (SLO missed)", rate(step.rate))
            };
            match text::capacity(p, true) {
                Some(c) if p.capacity_lower_bound => {
                    tile(out, &c, "capacity (lower bound: the SLO never broke)", "good");
                }
                Some(c) => tile(out, &c, "capacity", "good"),
                None => tile(out, "none", "capacity: no rate met the SLO", "bad"),
            }
            tile(out, &rate(step.rps), &format!("achieved req/s {at}"), "");
            tile(
                out,
                &percent(step.error_rate),
                &format!("error rate {at}"),
                if step.error_rate > 0.0 { "bad" } else { "good" },
            );
            if let Some(l) = step.latency_ms {
                tile(out, &format!("{} ms", ms(l.p99)), &format!("latency p99 {at}"), "");
            }
            if let Some(f) = step.ttft_ms {
                tile(out, &format!("{} ms", ms(f.p99)), &format!("TTFT p99 {at}"), "");
            }
        }
        None => {
            tile(out, &count(t.requests), "requests", "");
            tile(out, &rate(p.rps), "requests / s", "");
            tile(
                out,
                &percent(p.error_rate),
                "error rate",
                if p.error_rate > 0.0 { "bad" } else { "good" },
            );
            tile(out, &format!("{} ms", ms(t.latency.p99)), "latency p99", "");
            if let Some(h) = p.llm.histograms.get("ttft").filter(|h| h.count > 0) {
                tile(out, &format!("{} ms", ms(h.p99)), "TTFT p99", "");
            }
            if p.llm.output_tokens > 0 {
                tile(out, &rate(p.output_tokens_per_s), "tokens / s", "");
            }
        }
    }
    out.push_str("</div>\n");
    for w in text::phase_warnings(t, p.valid) {
        let lead = w.lead.map(|l| format!("<b>{l}</b> ")).unwrap_or_default();
        let _ = write!(out, "<div class=\"note warn\">{lead}{}</div>", esc(&w.text));
    }

    let hists = text::phase_histograms(p);
    out.push_str("<h3>Percentiles (ms)</h3>\n<table><tr><th>metric</th><th class=\"n\">count</th><th class=\"n\">mean</th><th class=\"n\">p50</th><th class=\"n\">p90</th><th class=\"n\">p95</th><th class=\"n\">p99</th><th class=\"n\">p99.9</th><th class=\"n\">max</th></tr>");
    for (_, label, h) in &hists {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(label),
            count(h.count),
            ms(h.mean),
            ms(h.p50),
            ms(h.p90),
            ms(h.p95),
            ms(h.p99),
            ms(h.p99_9),
            ms(h.max)
        );
    }
    out.push_str("</table>\n");

    out.push_str("<h3>Latency by percentile</h3>\n<div class=\"grid2\">");
    // The generator's own lateness is a health signal, not a latency of the gateway.
    for (i, (_, label, h)) in hists.iter().filter(|(k, _, _)| *k != "lag").enumerate() {
        out.push_str(&charts::percentile_curve(label, h, PALETTE[i % PALETTE.len()]));
    }
    out.push_str("</div>\n<h3>Over time</h3>\n");
    out.push_str(&charts::timeline(p));
    out.push_str("\n<h3>Errors</h3>\n");
    out.push_str(&charts::errors(p));
    if !p.sweep.is_empty() {
        out.push_str("\n<h3>Capacity sweep</h3>\n");
        out.push_str(&charts::sweep(p));
        sweep_table(out, p);
    }
    let thresholds: Vec<&CheckResult> = r
        .checks
        .iter()
        .filter(|c| c.family == THRESHOLD_FAMILY && belongs_to(c, p))
        .collect();
    if !thresholds.is_empty() {
        out.push_str("\n<h3>Thresholds</h3>\n");
        thresholds_table(out, &thresholds);
    }
    out.push_str("</section>\n");
}

/// One row per sweep step: offered and achieved rates, errors, the SLO's metric, and
/// latency and TTFT percentiles at that rate.
fn sweep_table(out: &mut String, p: &PhaseReport) {
    let metric = p.slo.as_ref().map_or_else(|| "SLO metric".to_owned(), |s| s.label());
    let pct = |v: Option<crate::report::load::StepPercentiles>| match v {
        Some(q) => format!(
            "<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
            ms(q.p50),
            ms(q.p90),
            ms(q.p99)
        ),
        None => "<td class=\"n\">–</td><td class=\"n\">–</td><td class=\"n\">–</td>".to_owned(),
    };
    let ttft = p.sweep.iter().any(|s| s.ttft_ms.is_some());
    let _ = write!(
        out,
        "<table style=\"margin-top:12px\"><tr><th class=\"n\">offered req/s</th><th class=\"n\">achieved req/s</th><th class=\"n\">error rate</th><th class=\"n\">{}</th><th class=\"n\">latency p50 ms</th><th class=\"n\">p90</th><th class=\"n\">p99</th>{}<th>SLO {}</th></tr>",
        esc(&metric),
        if ttft {
            "<th class=\"n\">TTFT p50 ms</th><th class=\"n\">p90</th><th class=\"n\">p99</th>"
        } else {
            ""
        },
        esc(p.slo.as_ref().map_or("", |s| s.text.as_str()))
    );
    for s in &p.sweep {
        let value = p
            .slo
            .as_ref()
            .map_or_else(|| ms(s.slo_value), |slo| slo.show(s.slo_value));
        let _ = write!(
            out,
            "<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>{}{}<td>{}</td></tr>",
            rate(s.rate),
            rate(s.rps),
            percent(s.error_rate),
            esc(&value),
            pct(s.latency_ms),
            if ttft { pct(s.ttft_ms) } else { String::new() },
            if s.met {
                status_badge(Status::Passed)
            } else {
                status_badge(Status::Failed)
            }
        );
    }
    out.push_str("</table>\n");
    if p.headline_step().is_some() {
        out.push_str("<p class=\"sub\">The percentile tables and charts above pool every step of the sweep, the overloaded ones included; the tiles and this table describe each rate on its own.</p>\n");
    }
}

fn thresholds_table(out: &mut String, checks: &[&CheckResult]) {
    out.push_str("<table><tr><th></th><th>threshold</th><th>expected</th><th>actual</th></tr>");
    for c in checks {
        let _ = write!(
            out,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            status_badge(c.status),
            esc(&c.id),
            esc(&c.expected),
            esc(&c.actual)
        );
    }
    out.push_str("</table>\n");
}
