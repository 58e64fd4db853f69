//! Load phases and thresholds, typed: what the load runner executes and the CI gates
//! it judges. Parsed from a scenario's `load:` block.

use std::fmt;
use std::time::Duration;

use crate::feature::Feature;

/// How arrivals spread around the rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ArrivalKind {
    /// Evenly spaced.
    Uniform,
    /// Poisson with a seed.
    Poisson { seed: u64 },
    /// Gamma gaps with a burstiness (shape) and a seed.
    Gamma { burstiness: f64, seed: u64 },
}

/// The target rate over time.
#[derive(Clone, Debug, PartialEq)]
pub enum RateProfile {
    /// Constant.
    Constant(f64),
    /// Linear from, to, over.
    Ramp { from: f64, to: f64, over: Duration },
    /// Constant steps.
    Steps(Vec<(f64, Duration)>),
}

/// What drives a phase.
#[derive(Clone, Debug, PartialEq)]
pub enum LoadMode {
    /// Open loop.
    Open {
        profile: RateProfile,
        arrivals: ArrivalKind,
    },
    /// Closed loop.
    Closed { clients: usize, think: Duration },
    /// Rising constant rates until `slo` breaks.
    Sweep {
        rates: Vec<f64>,
        step: Duration,
        slo: Threshold,
        arrivals: ArrivalKind,
    },
}

/// One load phase.
#[derive(Clone, Debug)]
pub struct LoadPhase {
    /// Name.
    pub name: String,
    /// Feature whose requests are sent.
    pub feature: &'static Feature,
    /// Index of the model serving the feature.
    pub model: usize,
    /// Streamed replies.
    pub stream: bool,
    /// Schedule or clients.
    pub mode: LoadMode,
    /// Send for at most this long.
    pub duration: Option<Duration>,
    /// Send at most this many.
    pub requests: Option<u64>,
    /// Discarded lead-in.
    pub warmup: Duration,
    /// Open loop: in-flight cap.
    pub max_in_flight: usize,
    /// Per-request timeout.
    pub timeout: Duration,
    /// CI gates.
    pub thresholds: Vec<Threshold>,
    /// What the requests carry; `None`: one small canned request.
    pub workload: Option<std::sync::Arc<super::workload::Workload>>,
    /// Through a gateway: every other request goes straight to the model's endpoint,
    /// and the two are compared per percentile.
    pub compare_direct: bool,
}

/// A metric a threshold reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// A latency histogram (`latency`, `service`, `ttfb`, `ttft`, `itl`, `tpot`,
    /// `gateway_overhead`, `overhead_request`, `overhead_response`, `schedule_lag`) at a statistic.
    Histogram { name: &'static str, stat: Stat },
    /// Requests per second.
    Rps,
    /// Failed / all, as a fraction.
    ErrorRate,
    /// Output tokens per second.
    TokensPerSecond,
    /// Requests completed.
    Requests,
}

/// A histogram statistic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    /// Percentiles.
    P50,
    /// 90th.
    P90,
    /// 95th.
    P95,
    /// 99th.
    P99,
    /// 99.9th.
    P999,
    /// Largest.
    Max,
    /// Mean.
    Mean,
}

/// A comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Op {
    /// Whether `value op limit` holds.
    pub fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            Op::Lt => value < limit,
            Op::Le => value <= limit,
            Op::Gt => value > limit,
            Op::Ge => value >= limit,
        }
    }
}

/// A gate: `metric op limit`. Histogram limits are in milliseconds, error rates are
/// fractions. Stored in reports as written, and parsed when a report is read back.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Threshold {
    /// As written.
    pub text: String,
    /// What it reads.
    pub metric: Metric,
    /// The comparison.
    pub op: Op,
    /// The limit (ms for histograms, fraction for error_rate).
    pub limit: f64,
}

/// Histogram metric names, as written in thresholds and stored in reports.
pub const HISTOGRAMS: [&str; 10] = [
    "latency",
    "service",
    "ttfb",
    "ttft",
    "itl",
    "tpot",
    "gateway_overhead",
    "overhead_request",
    "overhead_response",
    "schedule_lag",
];

/// Metrics of a phase with `compare_direct`: a percentile of the gateway's requests
/// minus the same percentile of the direct ones (`latency_overhead` compares each
/// route's time from its actual send to the end of the reply).
pub const PAIRED: [&str; 4] = ["ttft_overhead", "itl_overhead", "tpot_overhead", "latency_overhead"];

impl Metric {
    /// Short id for check ids (`ttft_p99`, `rps`).
    pub fn id(self) -> String {
        match self {
            Metric::Histogram { name, stat } => format!("{name}_{}", stat.name().replace('.', "_")),
            Metric::Rps => "rps".into(),
            Metric::ErrorRate => "error_rate".into(),
            Metric::TokensPerSecond => "output_tokens_per_s".into(),
            Metric::Requests => "requests".into(),
        }
    }
}

impl Stat {
    /// As written (`p99`, `p99.9`, `max`, `mean`).
    pub fn name(self) -> &'static str {
        match self {
            Stat::P50 => "p50",
            Stat::P90 => "p90",
            Stat::P95 => "p95",
            Stat::P99 => "p99",
            Stat::P999 => "p99.9",
            Stat::Max => "max",
            Stat::Mean => "mean",
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl TryFrom<String> for Threshold {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        parse_threshold(&text).map_err(|e| format!("threshold `{text}`: {e}"))
    }
}

impl From<Threshold> for String {
    fn from(t: Threshold) -> String {
        t.text
    }
}

impl Threshold {
    /// Whether the comparison points the way the metric gets worse: a ceiling (`<`,
    /// `<=`) on times, errors and counts of failures, a floor (`>`, `>=`) on rates and
    /// counts of requests. An SLO pointing the other way is met only by a gateway that
    /// is slow or failing.
    pub fn bounds_the_bad_side(&self) -> bool {
        let ceiling = matches!(self.op, Op::Lt | Op::Le);
        match self.metric {
            Metric::Histogram { .. } | Metric::ErrorRate => ceiling,
            Metric::Rps | Metric::TokensPerSecond | Metric::Requests => !ceiling,
        }
    }
}

/// Parses `metric[.stat] op value`. Errors say what was expected.
pub fn parse_threshold(text: &str) -> Result<Threshold, String> {
    let t = text.trim();
    let (lhs, op, rhs) = ["<=", ">=", "<", ">"]
        .iter()
        .find_map(|o| t.split_once(o).map(|(l, r)| (l.trim(), *o, r.trim())))
        .ok_or("no comparison: write `metric op value`, e.g. `ttft.p99 < 500ms`")?;
    let op = match op {
        "<=" => Op::Le,
        ">=" => Op::Ge,
        "<" => Op::Lt,
        _ => Op::Gt,
    };
    let (name, stat) = match lhs.split_once('.') {
        Some((n, s)) => (n, Some(s)),
        None => (lhs, None),
    };
    let metric = match (name, stat) {
        ("rps", None) => Metric::Rps,
        ("error_rate", None) => Metric::ErrorRate,
        ("output_tokens_per_s", None) => Metric::TokensPerSecond,
        ("requests", None) => Metric::Requests,
        (n, Some(s)) if HISTOGRAMS.contains(&n) || PAIRED.contains(&n) => {
            let stat = match s {
                "p50" | "median" => Stat::P50,
                "p90" => Stat::P90,
                "p95" => Stat::P95,
                "p99" => Stat::P99,
                "p99.9" | "p999" => Stat::P999,
                "max" => Stat::Max,
                "mean" | "avg" => Stat::Mean,
                other => {
                    const STATS: [&str; 7] = ["p50", "p90", "p95", "p99", "p99.9", "max", "mean"];
                    let close = super::error::did_you_mean(other, STATS)
                        .map(|h| format!(" ({h})"))
                        .unwrap_or_default();
                    return Err(format!(
                        "unknown statistic `{other}`{close}: use p50, p90, p95, p99, p99.9, max or mean"
                    ));
                }
            };
            let name = HISTOGRAMS
                .iter()
                .chain(&PAIRED)
                .find(|h| **h == n)
                .copied()
                .unwrap_or("latency");
            Metric::Histogram { name, stat }
        }
        (n, None) if HISTOGRAMS.contains(&n) || PAIRED.contains(&n) => {
            return Err(format!("`{n}` needs a statistic, e.g. `{n}.p99`"));
        }
        (n, _) => {
            const PLAIN: [&str; 4] = ["rps", "error_rate", "output_tokens_per_s", "requests"];
            let close = super::error::did_you_mean(n, HISTOGRAMS.iter().chain(&PAIRED).chain(&PLAIN).copied())
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            return Err(format!(
                "unknown metric `{n}`{close}: use {}, {}, rps, error_rate, output_tokens_per_s or requests",
                HISTOGRAMS.join(", "),
                PAIRED.join(", ")
            ));
        }
    };
    let limit = match metric {
        Metric::Histogram { .. } => {
            let d = humantime::parse_duration(rhs)
                .ok()
                .or_else(|| {
                    rhs.strip_suffix("ms")
                        .and_then(|v| v.trim().parse::<f64>().ok())
                        .and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok())
                })
                .ok_or_else(|| format!("`{rhs}` is not a duration: write e.g. `500ms` or `1.5s`"))?;
            d.as_secs_f64() * 1000.0
        }
        Metric::ErrorRate => match rhs.strip_suffix('%') {
            Some(p) => p
                .trim()
                .parse::<f64>()
                .map(|v| v / 100.0)
                .map_err(|_| format!("`{rhs}` is not a percentage"))?,
            None => rhs
                .parse::<f64>()
                .map_err(|_| format!("`{rhs}` is not a rate: write e.g. `0.5%` or `0.005`"))?,
        },
        _ => rhs.parse::<f64>().map_err(|_| format!("`{rhs}` is not a number"))?,
    };
    if !limit.is_finite() {
        return Err("the limit must be a finite number".into());
    }
    Ok(Threshold {
        text: t.to_owned(),
        metric,
        op,
        limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse_with_units() {
        let t = parse_threshold("ttft.p99 < 500ms").unwrap();
        assert_eq!(
            t.metric,
            Metric::Histogram {
                name: "ttft",
                stat: Stat::P99
            }
        );
        assert_eq!((t.op, t.limit), (Op::Lt, 500.0));
        assert_eq!(parse_threshold("error_rate < 0.5%").unwrap().limit, 0.005);
        assert_eq!(parse_threshold("rps >= 40").unwrap().op, Op::Ge);
        assert_eq!(parse_threshold("gateway_overhead.p99 <= 1.5s").unwrap().limit, 1500.0);
        assert_eq!(parse_threshold("itl.p50 < 0.5ms").unwrap().limit, 0.5);
        assert!(parse_threshold("ttft < 5ms").unwrap_err().contains("needs a statistic"));
        assert!(parse_threshold("tft.p99 < 5ms").unwrap_err().contains("unknown metric"));
        assert!(
            parse_threshold("ttft.p98 < 5ms")
                .unwrap_err()
                .contains("unknown statistic")
        );
        assert!(parse_threshold("rps = 3").unwrap_err().contains("no comparison"));
        assert!(Op::Lt.holds(1.0, 2.0) && !Op::Ge.holds(1.0, 2.0));
    }
}
