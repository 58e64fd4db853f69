//! Comparing two reports of the same scenario (a baseline and a new run), phase by
//! phase and metric by metric, and judging the changes against tolerances, for
//! `gateprobe compare` in CI.
//!
//! A tolerance reads `[PHASE:]METRIC=±N%` (relative to the baseline) or
//! `[PHASE:]METRIC=±N` (absolute, in the metric's unit; percentage points for
//! `error_rate`). The sign says which way is worse: `latency.p99=+10%` fails when p99
//! latency grows by more than 10%, `rps=-5%` when throughput drops by more than 5%.
//! Without a sign, worse is up for times and error rates and down for rates. `METRIC`
//! is a metric name (`rps`, `error_rate`, `output_tokens_per_s`, `capacity_rps`, or
//! `HISTOGRAM.PERCENTILE` like `latency.p99`, `ttft.p90`) or a histogram name alone,
//! which covers all its percentiles. The most specific tolerance wins: with a phase
//! over without, an exact metric over a histogram name, and those given on the command
//! line over the [`DEFAULT_TOLERANCES`].
//!
//! A comparison cannot pass by accident: a phase found in one report only is a
//! mismatch, and a capacity that is only a lower bound (`>= 30 req/s`: the sweep's SLO
//! never broke) is judged as a bound, never as a value: it passes when the bound
//! itself is within tolerance, and otherwise cannot tell, which fails the comparison
//! as a regression does.

use std::fmt::Write;
use std::str::FromStr;

use super::RunReport;
use super::load::PhaseReport;
use super::text::{self, ms, rate};
use crate::metrics::HistogramSummary;

/// Tolerances applied unless `--no-default-tolerances`: a 10% slower p99 (latency and
/// TTFT), 5% less throughput or capacity, half a percentage point more errors.
pub const DEFAULT_TOLERANCES: &[&str] = &[
    "latency.p99=+10%",
    "ttft.p99=+10%",
    "rps=-5%",
    "capacity_rps=-5%",
    "error_rate=+0.5",
];

/// Histograms compared, by report key.
const HISTOGRAMS: &[&str] = &["latency", "ttfb", "ttft", "itl", "tpot", "gateway_overhead"];

/// Percentiles compared for each histogram.
const PERCENTILES: &[&str] = &["p50", "p90", "p99"];

/// Which direction of change is a regression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Worse {
    /// Larger is worse (times, error rates).
    Up,
    /// Smaller is worse (throughput, capacity).
    Down,
}

/// How far a metric may move in its worse direction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Limit {
    /// Percent of the baseline value.
    Relative(f64),
    /// In the metric's unit (milliseconds, requests per second, percentage points).
    Absolute(f64),
}

/// One `--tolerance`.
#[derive(Clone, Debug, PartialEq)]
pub struct Tolerance {
    /// Only this phase, when given.
    pub phase: Option<String>,
    /// Metric name, or a histogram name covering its percentiles.
    pub metric: String,
    /// The worse direction; `None` takes the metric's natural one.
    pub worse: Option<Worse>,
    /// How far.
    pub limit: Limit,
    /// As written.
    pub spec: String,
}

/// A tolerance that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("tolerance `{spec}`: {why} (expected [PHASE:]METRIC=±N% or [PHASE:]METRIC=±N, e.g. latency.p99=+10%)")]
pub struct ToleranceError {
    spec: String,
    why: String,
}

impl FromStr for Tolerance {
    type Err = ToleranceError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let err = |why: &str| ToleranceError {
            spec: spec.to_owned(),
            why: why.to_owned(),
        };
        let (key, value) = spec.split_once('=').ok_or_else(|| err("no `=`"))?;
        let (phase, metric) = match key.rsplit_once(':') {
            Some((p, m)) => (Some(p.trim().to_owned()), m.trim()),
            None => (None, key.trim()),
        };
        if metric.is_empty() || phase.as_deref() == Some("") {
            return Err(err("empty metric or phase"));
        }
        if !is_known(metric) {
            return Err(err(&format!(
                "unknown metric `{metric}` (one of rps, error_rate, output_tokens_per_s, capacity_rps, or {}[.p50|.p90|.p99])",
                HISTOGRAMS.join("|")
            )));
        }
        let value = value.trim();
        let (worse, rest) = match value.as_bytes().first() {
            Some(b'+') => (Some(Worse::Up), &value[1..]),
            Some(b'-') => (Some(Worse::Down), &value[1..]),
            _ => (None, value),
        };
        let (number, relative) = match rest.strip_suffix('%') {
            Some(n) => (n, true),
            None => (rest, false),
        };
        let n: f64 = number.trim().parse().map_err(|_| err("not a number"))?;
        if !(n.is_finite() && n >= 0.0) {
            return Err(err("must be a finite, non-negative amount"));
        }
        Ok(Tolerance {
            phase,
            metric: metric.to_owned(),
            worse,
            limit: if relative {
                Limit::Relative(n)
            } else {
                Limit::Absolute(n)
            },
            spec: spec.trim().to_owned(),
        })
    }
}

fn is_known(metric: &str) -> bool {
    matches!(metric, "rps" | "error_rate" | "output_tokens_per_s" | "capacity_rps")
        || HISTOGRAMS.iter().any(|h| {
            metric == *h
                || metric
                    .strip_prefix(h)
                    .and_then(|r| r.strip_prefix('.'))
                    .is_some_and(|p| PERCENTILES.contains(&p))
        })
}

/// The natural worse direction of a metric.
fn natural(metric: &str) -> Worse {
    match metric {
        "rps" | "output_tokens_per_s" | "capacity_rps" => Worse::Down,
        _ => Worse::Up,
    }
}

impl Tolerance {
    /// How specifically this tolerance names `(phase, metric)`, `None` if it does not.
    fn matches(&self, phase: &str, metric: &str) -> Option<u8> {
        if self.phase.as_deref().is_some_and(|p| p != phase) {
            return None;
        }
        let exact = self.metric == metric;
        let covers = exact
            || metric
                .strip_prefix(self.metric.as_str())
                .is_some_and(|r| r.starts_with('.'));
        covers.then_some(u8::from(self.phase.is_some()) * 2 + u8::from(exact))
    }
}

/// The verdict on one metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within tolerance.
    Ok,
    /// Worse by more than the tolerance.
    Regression,
    /// Better by more than the tolerance.
    Better,
    /// No tolerance applies, or it cannot be judged (missing value, zero baseline).
    Info,
    /// A tolerance applies but a bound cannot show whether it holds (a capacity that
    /// is only a lower bound, below the limit): fails the comparison.
    CannotTell,
}

/// One line of the comparison.
#[derive(Clone, Debug)]
pub struct Row {
    /// Phase name.
    pub phase: String,
    /// Metric name.
    pub metric: String,
    /// Baseline value.
    pub base: Option<f64>,
    /// New value.
    pub new: Option<f64>,
    /// Verdict.
    pub verdict: Verdict,
    /// The tolerance that judged it.
    pub tolerance: Option<String>,
    /// Whether the baseline's and the new value are only lower bounds (a capacity
    /// whose sweep never saw its SLO break).
    pub at_least: (bool, bool),
}

impl Row {
    /// Change relative to the baseline, percent.
    pub fn delta_pct(&self) -> Option<f64> {
        match (self.base, self.new) {
            (Some(b), Some(n)) if b != 0.0 => Some((n - b) / b.abs() * 100.0),
            _ => None,
        }
    }
}

/// A whole comparison.
#[derive(Clone, Debug, Default)]
pub struct Comparison {
    /// Every metric of every phase found in both reports.
    pub rows: Vec<Row>,
    /// Phases found in only one report: the runs did not do the same thing.
    pub mismatches: Vec<String>,
}

impl Comparison {
    /// Rows worse than their tolerance.
    pub fn regressions(&self) -> usize {
        self.rows.iter().filter(|r| r.verdict == Verdict::Regression).count()
    }

    /// Rows a tolerance covers but a bound cannot judge.
    pub fn cannot_tell(&self) -> usize {
        self.rows.iter().filter(|r| r.verdict == Verdict::CannotTell).count()
    }

    /// What fails the comparison: regressions, rows it cannot tell, and phases found
    /// in one report only.
    pub fn failures(&self) -> usize {
        self.regressions() + self.cannot_tell() + self.mismatches.len()
    }
}

/// The metrics of a phase, by name, in display order.
fn metrics(p: &PhaseReport) -> Vec<(String, f64)> {
    let mut out = vec![
        ("rps".to_owned(), p.rps),
        ("error_rate".to_owned(), p.error_rate * 100.0),
    ];
    if p.llm.output_tokens > 0 {
        out.push(("output_tokens_per_s".into(), p.output_tokens_per_s));
    }
    if let Some(c) = p.capacity_rps {
        out.push(("capacity_rps".into(), c));
    }
    for key in HISTOGRAMS {
        let h: Option<&HistogramSummary> = match *key {
            "latency" => Some(&p.transport.latency),
            "ttfb" => Some(&p.transport.ttfb),
            k => p.llm.histograms.get(k),
        };
        let Some(h) = h.filter(|h| h.count > 0) else { continue };
        for (name, v) in [("p50", h.p50), ("p90", h.p90), ("p99", h.p99)] {
            out.push((format!("{key}.{name}"), v));
        }
    }
    out
}

/// Compares `new` against `base` under `tolerances` (most specific wins; earlier ones
/// win ties, so put the command line's before the defaults).
pub fn compare(base: &RunReport, new: &RunReport, tolerances: &[Tolerance]) -> Comparison {
    let mut c = Comparison::default();
    for bp in &base.load {
        let Some(np) = new.load.iter().find(|p| p.name == bp.name) else {
            c.mismatches.push(format!(
                "phase `{}` is only in the baseline: the new run did not run it",
                bp.name
            ));
            continue;
        };
        let (bm, nm) = (metrics(bp), metrics(np));
        let mut names: Vec<&String> = bm.iter().map(|(k, _)| k).collect();
        for (k, _) in &nm {
            if !names.contains(&k) {
                names.push(k);
            }
        }
        for metric in names {
            let get = |m: &[(String, f64)]| m.iter().find(|(k, _)| k == metric).map(|(_, v)| *v);
            let (b, n) = (get(&bm), get(&nm));
            let tol = tolerances
                .iter()
                .filter_map(|t| t.matches(&bp.name, metric).map(|s| (s, t)))
                .fold(None, |best: Option<(u8, &Tolerance)>, (s, t)| match best {
                    Some((bs, _)) if bs >= s => best,
                    _ => Some((s, t)),
                })
                .map(|(_, t)| t);
            let at_least = if metric == "capacity_rps" {
                (bp.capacity_lower_bound, np.capacity_lower_bound)
            } else {
                (false, false)
            };
            c.rows.push(Row {
                phase: bp.name.clone(),
                metric: metric.clone(),
                base: b,
                new: n,
                verdict: bounded(judge(metric, b, n, tol), metric, tol, at_least),
                tolerance: tol.map(|t| t.spec.clone()),
                at_least,
            });
        }
    }
    for np in &new.load {
        if !base.load.iter().any(|p| p.name == np.name) {
            c.mismatches.push(format!(
                "phase `{}` is only in the new report: the baseline has nothing to judge it by",
                np.name
            ));
        }
    }
    c
}

/// The verdict on values of which one or both are only lower bounds (`at_least`:
/// baseline, new): what the bounds prove, or [`Verdict::CannotTell`].
fn bounded(plain: Verdict, metric: &str, tol: Option<&Tolerance>, (base_lb, new_lb): (bool, bool)) -> Verdict {
    let Some(t) = tol else { return plain };
    if !(base_lb || new_lb) || !matches!(plain, Verdict::Ok | Verdict::Better | Verdict::Regression) {
        return plain;
    }
    match (t.worse.unwrap_or_else(|| natural(metric)), plain) {
        // Lower is worse. Below the limit: a value is (the baseline's real value can
        // only raise the limit), a bound cannot tell. At or above it: within, but
        // better only than an exact baseline.
        (Worse::Down, Verdict::Regression) if new_lb => Verdict::CannotTell,
        (Worse::Down, Verdict::Better) if base_lb => Verdict::Ok,
        // Higher is worse: a new bound may hide any higher value, and a baseline bound
        // any higher limit.
        (Worse::Up, Verdict::Regression) if base_lb => Verdict::CannotTell,
        (Worse::Up, Verdict::Ok | Verdict::Better) if new_lb => Verdict::CannotTell,
        (_, v) => v,
    }
}

fn judge(metric: &str, base: Option<f64>, new: Option<f64>, tol: Option<&Tolerance>) -> Verdict {
    let (t, b, n) = match (tol, base, new) {
        (Some(t), Some(b), Some(n)) => (t, b, n),
        // The baseline had it and the new run has none: no capacity any more, no
        // tokens, not one response to measure a latency on. Worse than any change.
        (Some(_), Some(_), None) => return Verdict::Regression,
        _ => return Verdict::Info,
    };
    // Positive = moved in the worse direction.
    let worse_by = match t.worse.unwrap_or_else(|| natural(metric)) {
        Worse::Up => n - b,
        Worse::Down => b - n,
    };
    let allowed = match t.limit {
        Limit::Absolute(a) => a,
        Limit::Relative(pct) => {
            if b == 0.0 {
                // Any move away from zero is an unbounded relative change (an error
                // rate of 0 that became 0.1%); slack around zero needs an absolute
                // tolerance.
                return match worse_by.partial_cmp(&0.0) {
                    Some(std::cmp::Ordering::Greater) => Verdict::Regression,
                    Some(std::cmp::Ordering::Less) => Verdict::Better,
                    _ => Verdict::Ok,
                };
            }
            b.abs() * pct / 100.0
        }
    };
    if worse_by > allowed {
        Verdict::Regression
    } else if -worse_by > allowed && allowed > 0.0 {
        Verdict::Better
    } else {
        Verdict::Ok
    }
}

fn show(metric: &str, v: Option<f64>, at_least: bool) -> String {
    match v {
        None => "–".into(),
        Some(v) if at_least => format!(">= {}", rate(v)),
        Some(v) if metric == "error_rate" => text::percent(v / 100.0),
        Some(v) if metric.contains('.') => format!("{} ms", ms(v)),
        Some(v) => rate(v),
    }
}

/// The comparison as a text table, one line per metric, then the verdict.
pub fn render(c: &Comparison) -> String {
    let mut lines: Vec<[String; 6]> = vec![[
        "phase".into(),
        "metric".into(),
        "base".into(),
        "new".into(),
        "delta".into(),
        "verdict".into(),
    ]];
    for r in &c.rows {
        let verdict = match (r.verdict, &r.tolerance) {
            (Verdict::Regression, Some(t)) => format!("REGRESSION ({t})"),
            (Verdict::Better, Some(t)) => format!("better ({t})"),
            (Verdict::Ok, Some(t)) => format!("ok ({t})"),
            (Verdict::Info, Some(_)) => "n/a".into(),
            (Verdict::CannotTell, Some(t)) => format!("CANNOT TELL ({t}): only a lower bound"),
            _ => String::new(),
        };
        lines.push([
            r.phase.clone(),
            r.metric.clone(),
            show(&r.metric, r.base, r.at_least.0),
            show(&r.metric, r.new, r.at_least.1),
            r.delta_pct().map(|d| format!("{d:+.1}%")).unwrap_or_else(|| "–".into()),
            verdict,
        ]);
    }
    let mut widths = [0usize; 6];
    for l in &lines {
        for (w, cell) in widths.iter_mut().zip(l) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for l in &lines {
        let mut line = String::new();
        for (i, cell) in l.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            // Numbers right-aligned, words left-aligned.
            if (2..=4).contains(&i) {
                let _ = write!(line, "{}{cell}  ", " ".repeat(pad));
            } else {
                let _ = write!(line, "{cell}{}  ", " ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    for m in &c.mismatches {
        let _ = writeln!(out, "MISMATCH: {m}");
    }
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut verdict = Vec::new();
    if c.regressions() > 0 {
        verdict.push(plural(c.regressions(), "regression", "regressions") + " beyond tolerance");
    }
    if c.cannot_tell() > 0 {
        verdict.push(plural(c.cannot_tell(), "metric", "metrics") + " a bound cannot judge");
    }
    if !c.mismatches.is_empty() {
        verdict.push(plural(c.mismatches.len(), "phase", "phases") + " in one report only");
    }
    if verdict.is_empty() {
        out.push_str("no regression beyond tolerance\n");
    } else {
        let _ = writeln!(out, "{}", verdict.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerances_parse() {
        let t: Tolerance = "latency.p99=+10%".parse().expect("parse");
        assert_eq!(t.metric, "latency.p99");
        assert_eq!(t.worse, Some(Worse::Up));
        assert_eq!(t.limit, Limit::Relative(10.0));
        let t: Tolerance = "chat:rps=-5%".parse().expect("parse");
        assert_eq!(t.phase.as_deref(), Some("chat"));
        assert_eq!(t.worse, Some(Worse::Down));
        let t: Tolerance = "error_rate=+0.5".parse().expect("parse");
        assert_eq!(t.limit, Limit::Absolute(0.5));
        let t: Tolerance = "ttft=20%".parse().expect("parse");
        assert_eq!(t.worse, None);
        for bad in [
            "latency.p99",
            "latncy.p99=+10%",
            "rps=-x%",
            "rps=+inf",
            "latency.p42=+1%",
            ":rps=1",
        ] {
            assert!(bad.parse::<Tolerance>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_most_specific_tolerance_wins() {
        let a: Tolerance = "latency=+50%".parse().expect("parse");
        let b: Tolerance = "latency.p99=+10%".parse().expect("parse");
        let c: Tolerance = "chat:latency=+1%".parse().expect("parse");
        assert_eq!(a.matches("chat", "latency.p99"), Some(0));
        assert_eq!(b.matches("chat", "latency.p99"), Some(1));
        assert_eq!(c.matches("chat", "latency.p99"), Some(2));
        assert_eq!(c.matches("code", "latency.p99"), None);
        assert_eq!(b.matches("chat", "latency.p90"), None);
        assert_eq!(a.matches("chat", "latencyx.p90"), None);
    }

    #[test]
    fn judging() {
        let up: Tolerance = "latency.p99=+10%".parse().expect("parse");
        assert_eq!(judge("latency.p99", Some(100.0), Some(110.0), Some(&up)), Verdict::Ok);
        assert_eq!(
            judge("latency.p99", Some(100.0), Some(110.5), Some(&up)),
            Verdict::Regression
        );
        assert_eq!(
            judge("latency.p99", Some(100.0), Some(80.0), Some(&up)),
            Verdict::Better
        );
        let down: Tolerance = "rps=-5%".parse().expect("parse");
        assert_eq!(judge("rps", Some(100.0), Some(94.0), Some(&down)), Verdict::Regression);
        assert_eq!(judge("rps", Some(100.0), Some(96.0), Some(&down)), Verdict::Ok);
        let pp: Tolerance = "error_rate=+0.5".parse().expect("parse");
        assert_eq!(judge("error_rate", Some(0.0), Some(0.4), Some(&pp)), Verdict::Ok);
        assert_eq!(
            judge("error_rate", Some(0.0), Some(0.6), Some(&pp)),
            Verdict::Regression
        );
        assert_eq!(judge("rps", Some(0.0), Some(5.0), Some(&down)), Verdict::Better);
        assert_eq!(judge("rps", Some(0.0), Some(0.0), Some(&down)), Verdict::Ok);
        let rel: Tolerance = "error_rate=+10%".parse().expect("parse");
        assert_eq!(
            judge("error_rate", Some(0.0), Some(0.1), Some(&rel)),
            Verdict::Regression
        );
        // Gone from the new run: a regression; new in it: nothing to compare.
        assert_eq!(judge("rps", Some(1.0), None, Some(&down)), Verdict::Regression);
        assert_eq!(judge("capacity_rps", None, Some(40.0), Some(&down)), Verdict::Info);
        assert_eq!(judge("rps", Some(1.0), None, None), Verdict::Info);
    }

    #[test]
    fn a_lower_bound_is_judged_as_a_bound() {
        let cap: Tolerance = "capacity_rps=-5%".parse().expect("parse");
        let v = |b: f64, n: f64, at_least| {
            bounded(
                judge("capacity_rps", Some(b), Some(n), Some(&cap)),
                "capacity_rps",
                Some(&cap),
                at_least,
            )
        };
        // The new sweep never broke its SLO: >= 30 against 40 cannot tell, >= 40 is within.
        assert_eq!(v(40.0, 30.0, (false, true)), Verdict::CannotTell);
        assert_eq!(v(40.0, 40.0, (false, true)), Verdict::Ok);
        assert_eq!(v(40.0, 60.0, (false, true)), Verdict::Better);
        // Against a baseline bound: a lower value is a regression, a higher one only ok.
        assert_eq!(v(40.0, 30.0, (true, false)), Verdict::Regression);
        assert_eq!(v(40.0, 60.0, (true, false)), Verdict::Ok);
        assert_eq!(v(40.0, 40.0, (true, true)), Verdict::Ok);
        // Exact values as before.
        assert_eq!(v(40.0, 30.0, (false, false)), Verdict::Regression);
    }
}
