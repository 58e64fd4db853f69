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
    /// (backend first token -> client first token).
    pub histograms: BTreeMap<String, HistogramSummary>,
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
    /// Achieved rate.
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
}

/// JSON has no NaN: serde_json writes it as `null`, and this reads `null` back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

impl PhaseReport {
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
