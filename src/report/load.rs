//! Load-phase results as plain data: what each phase sent, the histograms it recorded
//! (serialised, so shard reports merge exactly), its timeline and, for sweeps, the
//! capacity curve. Thresholds are judged into ordinary [`super::CheckResult`]s.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::metrics::{HistogramSummary, Snapshot};

/// One load phase.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PhaseReport {
    /// Phase name from the scenario.
    pub name: String,
    /// Duo feature whose request is sent.
    pub feature: String,
    /// Self-hosted model it goes to.
    pub model: String,
    /// Whether replies are streamed.
    pub stream: bool,
    /// `open` or `closed`.
    pub mode: String,
    /// The schedule in words (`poisson 50/s for 20s`).
    pub schedule: String,
    /// `I/N` when this report holds one shard's slice.
    pub shard: Option<String>,
    /// Measured wall time (warm-up excluded), milliseconds.
    pub elapsed_ms: f64,
    /// Requests per second over `elapsed_ms`.
    pub rps: f64,
    /// Failed requests / all requests.
    pub error_rate: f64,
    /// Output tokens per second (stream events for chat, chunks for code streams).
    pub output_tokens_per_s: f64,
    /// Whether the generator kept its schedule: schedule-lag p99 under 5% of the
    /// latency p50, at least 1 ms and at most 10 ms.
    pub valid: bool,
    /// Transport-level recording: requests, errors by class, latency from the
    /// intended send (`latency_ms`), service time, first byte, schedule lag.
    pub transport: Snapshot,
    /// LLM-level recording.
    pub llm: LlmMetrics,
    /// Per-second points.
    pub timeline: Vec<TimelinePoint>,
    /// Sweep steps, when the phase is a sweep.
    pub sweep: Vec<SweepStep>,
    /// Highest swept rate that met the SLO.
    pub capacity_rps: Option<f64>,
    /// The sweep never saw its SLO break (it met it at every rate it ran, or it was
    /// interrupted): the capacity is at least `capacity_rps`, not that value (and,
    /// with no `capacity_rps`, unknown).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub capacity_lower_bound: bool,
    /// The phase's thresholds (as written), so merged shard reports can be judged again.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub thresholds: Vec<crate::scenario::load::Threshold>,
    /// A sweep's SLO: what each step's `slo_value` is, in which unit, and its limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<Slo>,
    /// Where requests went: `gateway`, `direct` (straight to the model endpoint), or
    /// `gateway+direct` (`compare_direct`: every other request direct).
    #[serde(default = "gateway")]
    pub route: String,
    /// The workload in words (preset, distributions or dataset and seed), when the
    /// phase has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
}

fn gateway() -> String {
    "gateway".into()
}

/// A sweep's service-level objective, spelled out for readers of the charts.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// As written in the scenario: `ttft.p99 < 400ms`.
    pub text: String,
    /// The metric: `ttft.p99`, `error_rate`, `rps`.
    pub metric: String,
    /// The unit of `limit` and of each step's `slo_value`: `ms`, `ratio` (an error
    /// rate as a fraction: 0.005 is 0.5%), `req/s`, `tokens/s` or `requests`.
    pub unit: String,
    /// The comparison: `<`, `<=`, `>` or `>=`.
    pub op: String,
    /// The limit, in `unit`.
    pub limit: f64,
}

/// p50, p90 and p99 of one metric at one sweep step, in milliseconds.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StepPercentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl StepPercentiles {
    /// The percentiles of a summary that holds values.
    pub fn of(h: &HistogramSummary) -> Option<Self> {
        (h.count > 0).then_some(StepPercentiles {
            p50: h.p50,
            p90: h.p90,
            p99: h.p99,
        })
    }
}

/// Token-level and gateway-overhead metrics.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LlmMetrics {
    /// Output tokens received.
    pub output_tokens: u64,
    /// Successful replies whose content was empty (counted as errors too).
    pub empty_content: u64,
    /// Histograms by metric: `ttft`, `itl`, `tpot`, `gateway_overhead`,
    /// `overhead_request` (client send -> backend receipt), `overhead_response`
    /// (backend first token -> client first token); with `compare_direct`, the direct
    /// requests' `direct_ttft`, `direct_itl`, `direct_tpot`, `direct_latency` and the
    /// gateway requests' `gateway_latency` (send to end of reply).
    pub histograms: BTreeMap<String, HistogramSummary>,
    /// Token counts per request, when known: `prompt_sent` (the workload's prompt as
    /// it counts tokens), `prompt_usage` and `output_usage` (the server's `usage`).
    /// Values are token counts, not milliseconds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tokens: BTreeMap<String, HistogramSummary>,
    /// How the workload counted tokens (`4 characters per token`, `tokenizer PATH`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_counting: Option<String>,
}

/// One second of a phase.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimelinePoint {
    /// Seconds since the phase's measured start (the bucket's start).
    pub t_s: f64,
    /// Requests completed in the bucket.
    pub requests: u64,
    /// Of which failed.
    pub errors: u64,
    /// Latency (from intended send) of the bucket's requests.
    pub latency: HistogramSummary,
}

/// One step of a capacity sweep.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SweepStep {
    /// Offered rate, requests per second.
    pub rate: f64,
    /// Achieved rate: completions per second while the step's replies came back (from
    /// the first reply to the last, so the last requests' latency does not count as
    /// idle time); the step's requests over its wall time when fewer than two replies
    /// came back.
    pub rps: f64,
    /// Error rate at this rate.
    pub error_rate: f64,
    /// The SLO metric's value at this rate (milliseconds, or the metric's unit); `null`
    /// when the step had none (e.g. no request got a first token).
    #[serde(deserialize_with = "nan_if_null")]
    #[schemars(with = "Option<f64>")]
    pub slo_value: f64,
    /// Whether the SLO was met.
    pub met: bool,
    /// End-to-end latency (from the intended send) at this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<StepPercentiles>,
    /// Time to first token at this step (streamed phases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<StepPercentiles>,
}

/// JSON has no NaN: serde_json writes it as `null`, and this reads `null` back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// One metric of a `compare_direct` phase: the gateway's and the direct requests'
/// p50, p90 and p99, in milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct PairedRow {
    /// `ttft`, `itl`, `tpot` or `latency` (send to end of reply).
    pub metric: &'static str,
    /// Through the gateway.
    pub gateway: [f64; 3],
    /// Straight to the model.
    pub direct: [f64; 3],
}

impl Slo {
    /// A value of the SLO's metric with its unit, as readers expect it (`412 ms`,
    /// `0.50%`, `38.2 req/s`).
    pub fn show(&self, v: f64) -> String {
        if !v.is_finite() {
            return "–".into();
        }
        match self.unit.as_str() {
            "ms" => format!("{} ms", super::text::ms(v)),
            "ratio" => super::text::percent(v),
            unit => format!("{} {unit}", super::text::rate(v)),
        }
    }

    /// The metric and its unit, for axis titles: `ttft.p99 (ms)`.
    pub fn label(&self) -> String {
        let unit = if self.unit == "ratio" { "%" } else { self.unit.as_str() };
        format!("{} ({unit})", self.metric)
    }
}

impl PhaseReport {
    /// The sweep step the headline numbers describe: the highest that met the SLO
    /// (the capacity), or the first when none did. A sweep's totals pool every step,
    /// the overloaded one included, and describe no rate the gateway can sustain.
    pub fn headline_step(&self) -> Option<&SweepStep> {
        self.sweep
            .iter()
            .filter(|s| s.met)
            .max_by(|a, b| a.rate.total_cmp(&b.rate))
            .or_else(|| self.sweep.first())
    }

    /// The per-percentile comparison of a `compare_direct` phase (empty otherwise).
    pub fn paired_rows(&self) -> Vec<PairedRow> {
        let h = &self.llm.histograms;
        let p = |x: &crate::metrics::HistogramSummary| [x.p50, x.p90, x.p99];
        [
            ("ttft", "ttft", "direct_ttft"),
            ("itl", "itl", "direct_itl"),
            ("tpot", "tpot", "direct_tpot"),
            ("latency", "gateway_latency", "direct_latency"),
        ]
        .into_iter()
        .filter_map(|(metric, g, d)| {
            let (g, d) = (h.get(g)?, h.get(d)?);
            (g.count > 0 && d.count > 0).then(|| PairedRow {
                metric,
                gateway: p(g),
                direct: p(d),
            })
        })
        .collect()
    }

    /// Errors by class as `name=count`, for one-line summaries.
    pub fn errors_line(&self) -> String {
        self.transport
            .errors
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}
