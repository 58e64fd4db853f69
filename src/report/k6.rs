//! `load-performance.json`: the run in the shape of k6's `--summary-export` file, which
//! is what GitLab's Load Performance merge-request widget reads (`artifacts: reports:
//! load_performance`). The widget looks at four numbers: `metrics.checks.passes` and
//! `.fails` (the checks pass rate), `metrics.http_req_waiting["p(90)"]` and `["p(95)"]`
//! (TTFB), and `metrics.http_reqs.rate` (RPS); the rest of the file follows k6 so
//! other k6 tooling reads it too.
//!
//! The mapping, over all load phases together (phases run one after the other):
//! - `checks`: the run's check results, thresholds included (`passes` = passed,
//!   `fails` = failed + errors; skipped checks are not counted), each also listed in
//!   `root_group.checks` as k6 lists its checks;
//! - `http_reqs`: requests completed, and that count over the sum of the phases'
//!   measured time;
//! - `http_req_duration`: end-to-end latency from the intended send time;
//! - `http_req_waiting`: time to the first *useful* byte: TTFT for streamed phases
//!   (a gateway sends the response head of a stream before the model has produced
//!   anything, so the head's arrival says little), the response head (TTFB) otherwise;
//! - `http_req_failed`: k6's rate metric of failed requests (`passes` counts failures,
//!   as in k6);
//! - `gateprobe_ttft`, `gateprobe_itl`, ...: the LLM histograms as custom trends;
//! - per phase, the same trends as k6 tagged sub-metrics, e.g.
//!   `http_req_duration{phase:chat}`.
//!
//! Percentiles come from the histograms added bucket by bucket, so they are exact over
//! all phases, never averages of per-phase percentiles. Times are milliseconds.

use hdrhistogram::Histogram;
use serde_json::{Map, Value, json};

use super::load::PhaseReport;
use super::{RunReport, Status};
use crate::metrics::{HistogramSummary, decode_histogram};

/// k6's id of the root group: the MD5 of its empty path.
const ROOT_GROUP_ID: &str = "d41d8cd98f00b204e9800998ecf8427e";

/// Renders the k6 summary export.
pub fn render(r: &RunReport) -> String {
    let mut metrics = Map::new();
    let (mut passes, mut fails) = (0u64, 0u64);
    let mut checks = Map::new();
    for c in &r.checks {
        let (p, f) = match c.status {
            Status::Passed | Status::Warning => (1, 0),
            Status::Failed | Status::Error => (0, 1),
            Status::Skipped => continue,
        };
        passes += p;
        fails += f;
        checks.insert(
            c.id.clone(),
            json!({"name": c.id, "path": format!("::{}", c.id), "id": c.id, "passes": p, "fails": f}),
        );
    }
    // k6 emits no `checks` metric when a test has none; a zero pass rate would read as
    // "every check failed" in the widget.
    if passes + fails > 0 {
        metrics.insert(
            "checks".into(),
            json!({"passes": passes, "fails": fails, "value": passes as f64 / (passes + fails) as f64}),
        );
    }

    let requests: u64 = r.load.iter().map(|p| p.transport.requests).sum();
    let failed: u64 = r.load.iter().map(failed_requests).sum();
    let seconds: f64 = r.load.iter().map(|p| p.elapsed_ms / 1000.0).sum();
    metrics.insert("http_reqs".into(), counter(requests, seconds));
    if requests > 0 {
        metrics.insert(
            "http_req_failed".into(),
            json!({"passes": failed, "fails": requests - failed.min(requests), "value": failed as f64 / requests as f64}),
        );
    }
    let tokens: u64 = r.load.iter().map(|p| p.llm.output_tokens).sum();
    if tokens > 0 {
        metrics.insert("gateprobe_output_tokens".into(), counter(tokens, seconds));
    }

    let all = |pick: &dyn Fn(&PhaseReport) -> Option<&HistogramSummary>| -> Vec<&HistogramSummary> {
        r.load.iter().filter_map(pick).collect()
    };
    let mut trends: Vec<(String, Vec<&HistogramSummary>)> = vec![
        ("http_req_duration".into(), all(&|p| Some(&p.transport.latency))),
        ("http_req_waiting".into(), all(&|p| Some(waiting(p)))),
    ];
    let mut llm_keys: Vec<&String> = r.load.iter().flat_map(|p| p.llm.histograms.keys()).collect();
    llm_keys.sort();
    llm_keys.dedup();
    for key in llm_keys {
        trends.push((
            format!("gateprobe_{key}"),
            all(&|p: &PhaseReport| p.llm.histograms.get(key.as_str())),
        ));
    }
    for (name, hs) in trends {
        if let Some(t) = trend(&hs) {
            metrics.insert(name, t);
        }
    }
    for p in &r.load {
        let tag = format!("{{phase:{}}}", p.name);
        metrics.insert(
            format!("http_reqs{tag}"),
            counter(p.transport.requests, p.elapsed_ms / 1000.0),
        );
        for (name, h) in [
            ("http_req_duration", &p.transport.latency),
            ("http_req_waiting", waiting(p)),
        ] {
            if let Some(t) = trend(&[h]) {
                metrics.insert(format!("{name}{tag}"), t);
            }
        }
    }

    let doc = json!({
        "root_group": {
            "name": "",
            "path": "",
            "id": ROOT_GROUP_ID,
            "groups": {},
            "checks": checks,
        },
        "metrics": metrics,
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

/// The histogram behind `http_req_waiting` for one phase.
fn waiting(p: &PhaseReport) -> &HistogramSummary {
    match p.llm.histograms.get("ttft") {
        Some(h) if p.stream && h.count > 0 => h,
        _ => &p.transport.ttfb,
    }
}

/// Failed requests of a phase, from its error rate, which also counts replies the
/// LLM layer rejected (empty content) that the transport recorded as successes.
pub(super) fn failed_requests(p: &PhaseReport) -> u64 {
    let from_rate = (p.error_rate * p.transport.requests as f64).round();
    if from_rate.is_finite() && from_rate >= 0.0 {
        (from_rate as u64).min(p.transport.requests)
    } else {
        p.transport.requests - p.transport.ok.min(p.transport.requests)
    }
}

fn counter(count: u64, seconds: f64) -> Value {
    let rate = if seconds > 0.0 { count as f64 / seconds } else { 0.0 };
    json!({"count": count, "rate": rate})
}

/// A k6 trend (`avg`, `min`, `med`, `max`, `p(90)`, `p(95)`, `p(99)`, milliseconds)
/// of the histograms added together; `None` when they hold no values.
fn trend(hs: &[&HistogramSummary]) -> Option<Value> {
    let mut sum: Option<Histogram<u64>> = None;
    for h in hs.iter().filter(|h| h.count > 0) {
        let Ok(d) = decode_histogram(&h.histogram) else {
            continue;
        };
        match &mut sum {
            None => sum = Some(d),
            Some(s) => {
                // Decoded histograms auto-resize, so adding cannot overflow their range.
                let _ = s.add(&d);
            }
        }
    }
    let h = sum.filter(|h| !h.is_empty())?;
    let ms = |us: u64| us as f64 / 1000.0;
    Some(json!({
        "avg": h.mean() / 1000.0,
        "min": ms(h.min()),
        "med": ms(h.value_at_quantile(0.5)),
        "max": ms(h.max()),
        "p(90)": ms(h.value_at_quantile(0.9)),
        "p(95)": ms(h.value_at_quantile(0.95)),
        "p(99)": ms(h.value_at_quantile(0.99)),
    }))
}
