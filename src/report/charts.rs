//! The charts of `report.html`, each an inline SVG drawn from the report's data:
//! - percentile curves of one histogram on the "1 - 1/x" axis HdrHistogram plots use
//!   (50%, 90%, 99%, 99.9% evenly spaced), decoded from the stored histogram so the
//!   whole tail is shown, not only the precomputed percentiles;
//! - throughput (successes and errors per second) and latency percentiles over time,
//!   from the timeline;
//! - the error breakdown as bars;
//! - the sweep's SLO metric against the offered rate, with the capacity marked.

use std::fmt::Write;

use super::hlog::bucket_width;
use super::junit::esc;
use super::load::PhaseReport;
use super::svg::{Frame, GREEN, PALETTE, RED, legend, nice_ticks, tick_label};
use super::text::{self, count, ms, rate};
use crate::metrics::{HistogramSummary, decode_histogram};

const WIDTH: f64 = 560.0;

/// Points sampled along a percentile curve: smooth at any tail length, and a few
/// kilobytes of SVG per curve.
const CURVE_POINTS: usize = 160;

/// A percentile curve of one histogram in a card, or a note when it cannot be drawn.
pub fn percentile_curve(title: &str, h: &HistogramSummary, color: &str) -> String {
    let mut out = format!(r#"<div class="card"><h4>{}</h4>"#, esc(title));
    let hist = match decode_histogram(&h.histogram) {
        Ok(d) if !d.is_empty() => d,
        Ok(_) => {
            out.push_str(r#"<p class="muted">No values recorded.</p></div>"#);
            return out;
        }
        Err(e) => {
            let _ = write!(
                out,
                r#"<p class="muted">Histogram unreadable: {}</p></div>"#,
                esc(&e.to_string())
            );
            return out;
        }
    };
    // Resolution ends where one request is the whole tail: 1/count.
    let nines = (hist.len() as f64).log10().ceil().clamp(2.0, 6.0);
    let value = |x: f64| hist.value_at_quantile((1.0 - 10f64.powf(-x)).clamp(0.0, 1.0)) as f64 / 1000.0;
    let mut points: Vec<(f64, f64)> = (0..CURVE_POINTS)
        .map(|i| {
            let x = nines * i as f64 / (CURVE_POINTS - 1) as f64;
            (x, value(x))
        })
        .collect();
    points.push((nines, hist.max() as f64 / 1000.0));
    let top_value = points.iter().map(|p| p.1).fold(0.0, f64::max);
    let (yt, top) = nice_ticks(top_value, 4);
    let mut f = Frame::new(WIDTH, 230.0, (0.0, nines), (0.0, top));
    // Room for the last label ("99.999%") centred on the right edge.
    f.right = 30.0;
    f.open(&mut out, &format!("{title}: latency by percentile"));
    f.y_grid(&mut out, &labelled(&yt));
    let xt: Vec<(f64, String)> = (0..=nines as usize).map(|k| (k as f64, nines_label(k))).collect();
    f.x_ticks(&mut out, &xt);
    f.titles(&mut out, "percentile", "ms");
    // Fill under the curve, lightly, so the shape reads at a glance.
    let mut area = points.clone();
    area.push((nines, 0.0));
    area.insert(0, (0.0, 0.0));
    let mut d = String::new();
    for (i, (x, y)) in area.iter().enumerate() {
        let _ = write!(d, "{}{:.1},{:.1}", if i == 0 { "M" } else { "L" }, f.px(*x), f.py(*y));
    }
    let _ = write!(
        out,
        r#"<path d="{d}Z" fill="{color}" fill-opacity="0.08" stroke="none"/>"#
    );
    f.line(&mut out, &points, color, false);
    for (q, name) in [(0.5, "p50"), (0.9, "p90"), (0.99, "p99"), (0.999, "p99.9")] {
        let x = -(1.0f64 - q).log10();
        if x <= nines {
            let v = hist.value_at_quantile(q) as f64 / 1000.0;
            f.dot(&mut out, x, v, color, &format!("{name}: {} ms", ms(v)));
        }
    }
    Frame::close(&mut out);
    let _ = write!(
        out,
        r#"<p class="caption">p50 <b>{}</b> · p90 <b>{}</b> · p99 <b>{}</b> · p99.9 <b>{}</b> · max <b>{}</b> ms · {} values</p></div>"#,
        ms(h.p50),
        ms(h.p90),
        ms(h.p99),
        ms(h.p99_9),
        ms(h.max),
        count(h.count)
    );
    out
}

fn nines_label(k: usize) -> String {
    match k {
        0 => "0%".into(),
        1 => "90%".into(),
        n => format!("99.{}%", "9".repeat(n - 2)).replace(".%", "%"),
    }
}

fn labelled(ticks: &[f64]) -> Vec<(f64, String)> {
    ticks.iter().map(|t| (*t, tick_label(*t))).collect()
}

/// A line of the latency-over-time chart: name, which percentile, colour.
type Series = (&'static str, fn(&HistogramSummary) -> f64, &'static str);

/// Throughput and latency over the phase's timeline: two charts on one time axis.
pub fn timeline(p: &PhaseReport) -> String {
    if p.timeline.is_empty() {
        return r#"<p class="muted">No timeline recorded.</p>"#.into();
    }
    let width = bucket_width(p);
    let end = p
        .timeline
        .iter()
        .map(|t| t.t_s + width)
        .fold(p.elapsed_ms / 1000.0, f64::max);
    let (xt, x_top) = nice_ticks(end, 8);
    let xt = labelled(&xt);
    let mut out = String::from(r#"<div class="grid2">"#);

    // Requests per second, errors stacked on top in red.
    let peak = p.timeline.iter().map(|t| t.requests as f64 / width).fold(0.0, f64::max);
    let (yt, top) = nice_ticks(peak, 4);
    let f = Frame::new(WIDTH, 230.0, (0.0, x_top), (0.0, top));
    out.push_str(r#"<div class="card"><h4>Throughput</h4>"#);
    f.open(&mut out, "requests per second over time");
    f.y_grid(&mut out, &labelled(&yt));
    f.x_ticks(&mut out, &xt);
    f.titles(&mut out, "seconds", "req/s");
    let gap = width * 0.12;
    for t in &p.timeline {
        let ok = t.requests.saturating_sub(t.errors) as f64 / width;
        let err = t.errors.min(t.requests) as f64 / width;
        let tip = format!(
            "{}–{} s: {} req/s, {} errors",
            tick_label(t.t_s),
            tick_label(t.t_s + width),
            rate(t.requests as f64 / width),
            count(t.errors)
        );
        f.rect(
            &mut out,
            (t.t_s + gap / 2.0, 0.0),
            (t.t_s + width - gap / 2.0, ok),
            PALETTE[0],
            &tip,
        );
        if err > 0.0 {
            f.rect(
                &mut out,
                (t.t_s + gap / 2.0, ok),
                (t.t_s + width - gap / 2.0, ok + err),
                RED,
                &tip,
            );
        }
    }
    Frame::close(&mut out);
    out.push_str(&legend(&[(PALETTE[0], "succeeded".into()), (RED, "failed".into())]));
    out.push_str("</div>");

    // Latency percentiles of each bucket.
    let series: [Series; 3] = [
        ("p50", |h| h.p50, PALETTE[0]),
        ("p90", |h| h.p90, PALETTE[1]),
        ("p99", |h| h.p99, PALETTE[4]),
    ];
    let peak = p
        .timeline
        .iter()
        .filter(|t| t.latency.count > 0)
        .map(|t| t.latency.p99)
        .fold(0.0, f64::max);
    let (yt, top) = nice_ticks(peak, 4);
    let f = Frame::new(WIDTH, 230.0, (0.0, x_top), (0.0, top));
    out.push_str(r#"<div class="card"><h4>Latency over time</h4>"#);
    f.open(&mut out, "latency percentiles over time");
    f.y_grid(&mut out, &labelled(&yt));
    f.x_ticks(&mut out, &xt);
    f.titles(&mut out, "seconds", "ms");
    for (name, get, color) in series {
        let pts: Vec<(f64, f64)> = p
            .timeline
            .iter()
            .filter(|t| t.latency.count > 0)
            .map(|t| (t.t_s + width / 2.0, get(&t.latency)))
            .collect();
        f.line(&mut out, &pts, color, false);
        if pts.len() == 1 {
            f.dot(
                &mut out,
                pts[0].0,
                pts[0].1,
                color,
                &format!("{name}: {} ms", ms(pts[0].1)),
            );
        }
    }
    Frame::close(&mut out);
    out.push_str(&legend(
        &series.iter().map(|(n, _, c)| (*c, (*n).to_owned())).collect::<Vec<_>>(),
    ));
    out.push_str("</div></div>");
    out
}

/// Colour of an error class: server errors red, client errors (429s) amber, the
/// transport's own failures in cooler colours.
fn error_color(class: &str) -> &'static str {
    match class {
        c if c.starts_with("status_5") => RED,
        c if c.starts_with("status_") => "#d97706",
        "timeout" => "#7c3aed",
        "connect" => "#475569",
        "protocol" => "#db2777",
        _ => "#ca8a04",
    }
}

/// Errors by class as horizontal bars, with their share of all requests.
pub fn errors(p: &PhaseReport) -> String {
    let classes = text::error_breakdown(p);
    if classes.is_empty() {
        return r#"<p class="muted">No errors.</p>"#.into();
    }
    let most = classes[0].1 as f64;
    let (xt, top) = nice_ticks(most, 5);
    let height = 50.0 + 30.0 * classes.len() as f64;
    let mut f = Frame::new(WIDTH * 2.0, height, (0.0, top), (0.0, classes.len() as f64));
    f.left = 150.0;
    f.right = 150.0;
    let mut out = String::from(r#"<div class="card">"#);
    f.open(&mut out, "errors by class");
    let grid: Vec<(f64, String)> = labelled(&xt);
    for (v, _) in &grid {
        let x = f.px(*v);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}"/>"#,
            f.top,
            height - f.bottom
        );
    }
    f.x_ticks(&mut out, &grid);
    let requests = p.transport.requests.max(1) as f64;
    for (i, (class, n)) in classes.iter().enumerate() {
        // First class on top.
        let row = (classes.len() - 1 - i) as f64;
        let share = text::percent(*n as f64 / requests);
        let tip = format!("{class}: {} ({share} of requests)", count(*n));
        f.rect(
            &mut out,
            (0.0, row + 0.2),
            (*n as f64, row + 0.8),
            error_color(class),
            &tip,
        );
        let y = f.py(row + 0.5) + 4.0;
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{y:.1}" text-anchor="end" class="bar-label">{}</text><text x="{:.1}" y="{y:.1}" class="bar-value">{} · {}</text>"#,
            f.left - 8.0,
            esc(class),
            f.px(*n as f64) + 6.0,
            count(*n),
            esc(&share)
        );
    }
    Frame::close(&mut out);
    out.push_str("</div>");
    out
}

/// The sweep: the SLO's metric (named, with its unit) against offered rate, met steps
/// green, missed red, the SLO's limit as a dashed horizontal line and the capacity as
/// a dashed vertical one. Error rates are drawn in percent.
pub fn sweep(p: &PhaseReport) -> String {
    if p.sweep.is_empty() {
        return String::new();
    }
    // Reports written before the SLO was recorded name no metric.
    let slo = p.slo.as_ref();
    let scale = if slo.is_some_and(|s| s.unit == "ratio") {
        100.0
    } else {
        1.0
    };
    let label = slo.map_or_else(|| "SLO metric".to_owned(), |s| s.label());
    let show = |v: f64| slo.map_or_else(|| ms(v), |s| s.show(v));
    let limit = slo.map(|s| s.limit * scale).filter(|l| l.is_finite());
    let max_rate = p.sweep.iter().map(|s| s.rate).fold(0.0, f64::max);
    let max_slo = p
        .sweep
        .iter()
        .map(|s| s.slo_value * scale)
        .filter(|v| v.is_finite())
        .fold(limit.unwrap_or(0.0), f64::max);
    let (xt, x_top) = nice_ticks(max_rate * 1.05, 8);
    let (yt, y_top) = nice_ticks(max_slo * 1.1, 4);
    let f = Frame::new(WIDTH * 2.0, 280.0, (0.0, x_top), (0.0, y_top));
    let title = match slo {
        Some(s) => format!("{label} by offered rate · SLO {}", s.text),
        None => "SLO metric by offered rate".to_owned(),
    };
    let mut out = format!(r#"<div class="card"><h4>{}</h4>"#, esc(&title));
    f.open(&mut out, &format!("sweep: {title}"));
    f.y_grid(&mut out, &labelled(&yt));
    f.x_ticks(&mut out, &labelled(&xt));
    f.titles(&mut out, "offered rate (req/s)", &label);
    if let (Some(s), Some(l)) = (slo, limit) {
        let y = f.py(l);
        let _ = write!(
            out,
            r#"<line x1="{:.1}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="{RED}" stroke-width="1.5" stroke-dasharray="4 4"/><text x="{:.1}" y="{:.1}" class="marker" text-anchor="end">SLO {} {}</text>"#,
            f.left,
            f.width - f.right,
            f.width - f.right - 4.0,
            y - 5.0,
            esc(&s.op),
            esc(&s.show(s.limit))
        );
    }
    // A step without a value for the SLO metric (NaN) is left off the chart.
    let mut steps: Vec<_> = p.sweep.iter().filter(|s| s.slo_value.is_finite()).cloned().collect();
    steps.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    let pts: Vec<(f64, f64)> = steps.iter().map(|s| (s.rate, s.slo_value * scale)).collect();
    f.line(&mut out, &pts, PALETTE[0], false);
    if let Some(cap) = p.capacity_rps {
        let x = f.px(cap);
        let _ = write!(
            out,
            r#"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="{GREEN}" stroke-width="2" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" class="marker" text-anchor="{}">capacity {}</text>"#,
            f.top,
            f.height - f.bottom,
            x + if cap > x_top * 0.7 { -6.0 } else { 6.0 },
            f.top + 12.0,
            if cap > x_top * 0.7 { "end" } else { "start" },
            super::text::capacity(p, true).unwrap_or_default()
        );
    }
    let metric = slo.map_or("SLO metric", |s| s.metric.as_str());
    for s in &steps {
        let tip = format!(
            "offered {} req/s: achieved {} req/s, {} errors, {metric} {} ({})",
            rate(s.rate),
            rate(s.rps),
            text::percent(s.error_rate),
            show(s.slo_value),
            if s.met { "met" } else { "missed" }
        );
        f.dot(
            &mut out,
            s.rate,
            s.slo_value * scale,
            if s.met { GREEN } else { RED },
            &tip,
        );
    }
    Frame::close(&mut out);
    let mut keys = vec![(GREEN, "SLO met".to_owned()), (RED, "SLO missed".to_owned())];
    if let Some(s) = slo {
        keys.push((RED, format!("- - limit: {}", s.text)));
    }
    out.push_str(&legend(&keys));
    out.push_str("</div>");
    out
}

#[cfg(test)]
mod tests {
    use super::nines_label;

    #[test]
    fn percentile_axis_labels() {
        let l: Vec<String> = (0..5).map(nines_label).collect();
        assert_eq!(l, ["0%", "90%", "99%", "99.9%", "99.99%"]);
    }
}
