//! LLM-level recording of a load phase, beside the executor's transport recorder:
//! time to first token, inter-token latency, time per output token, the gateway's
//! overhead from the mocks' journal, token counts (sent, and as the server's `usage`
//! counted them), and, when a phase pairs gateway and direct requests, the direct
//! requests' own histograms. Also: reading a threshold's metric from a phase report.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::adapter::timed::Timed;
use crate::metrics::{HistogramSummary, histogram, put as rec};
use crate::mock::journal::Timing;
use crate::report::load::{LlmMetrics, PhaseReport};
use crate::scenario::load::{Metric, Stat, Threshold};

/// One route's recording.
#[derive(Debug)]
pub struct LlmRecorder {
    ttft: Histogram<u64>,
    itl: Histogram<u64>,
    tpot: Histogram<u64>,
    overhead_request: Histogram<u64>,
    overhead_response: Histogram<u64>,
    overhead: Histogram<u64>,
    /// Send to end of the reply, per route (only kept for paired phases).
    latency: Histogram<u64>,
    prompt_sent: Histogram<u64>,
    prompt_usage: Histogram<u64>,
    output_usage: Histogram<u64>,
    tokens: u64,
    empty: u64,
}

/// Records a token count (exact below 2048, within 0.1% above).
fn tokens(h: &mut Histogram<u64>, n: u64) {
    let _ = h.record(n);
}

impl Default for LlmRecorder {
    fn default() -> Self {
        LlmRecorder {
            ttft: histogram(),
            itl: histogram(),
            tpot: histogram(),
            overhead_request: histogram(),
            overhead_response: histogram(),
            overhead: histogram(),
            latency: histogram(),
            prompt_sent: histogram(),
            prompt_usage: histogram(),
            output_usage: histogram(),
            tokens: 0,
            empty: 0,
        }
    }
}

impl LlmRecorder {
    /// Records one request's timings, its gaps, the journal's view of it (`timing`,
    /// for gateway overhead), and its token counts (`sent`: the prompt's tokens as the
    /// workload counted them).
    pub fn record(&mut self, t: &Timed, end: Instant, gaps: &[Duration], timing: Option<Timing>, sent: Option<u64>) {
        for g in gaps {
            rec(&mut self.itl, *g);
        }
        if let Some(first) = t.first_token {
            rec(&mut self.ttft, first.saturating_duration_since(t.sent));
            if let (Some(last), true) = (t.last_token, t.tokens > 1) {
                rec(
                    &mut self.tpot,
                    last.saturating_duration_since(first) / (t.tokens as u32 - 1).max(1),
                );
            }
        }
        if t.error.is_none() {
            rec(&mut self.latency, end.saturating_duration_since(t.sent));
        }
        self.tokens += t.tokens;
        if t.error == Some(crate::metrics::ErrorClass::Empty) {
            self.empty += 1;
        }
        if let Some(n) = sent {
            tokens(&mut self.prompt_sent, n);
        }
        if let Some(n) = t.prompt_tokens {
            tokens(&mut self.prompt_usage, n);
        }
        if let Some(n) = t.completion_tokens {
            tokens(&mut self.output_usage, n);
        }
        if let Some(tm) = timing {
            let req_oh = tm.arrived.saturating_duration_since(t.sent);
            rec(&mut self.overhead_request, req_oh);
            let resp_oh = match (tm.first_token, t.first_token) {
                (Some(b), Some(c)) => Some(c.saturating_duration_since(b)),
                _ => None,
            };
            if let Some(d) = resp_oh {
                rec(&mut self.overhead_response, d);
            }
            rec(&mut self.overhead, req_oh + resp_oh.unwrap_or_default());
        }
    }

    /// Adds another recorder's values.
    pub fn add(&mut self, o: &LlmRecorder) {
        for (a, b) in [
            (&mut self.ttft, &o.ttft),
            (&mut self.itl, &o.itl),
            (&mut self.tpot, &o.tpot),
            (&mut self.overhead_request, &o.overhead_request),
            (&mut self.overhead_response, &o.overhead_response),
            (&mut self.overhead, &o.overhead),
            (&mut self.latency, &o.latency),
            (&mut self.prompt_sent, &o.prompt_sent),
            (&mut self.prompt_usage, &o.prompt_usage),
            (&mut self.output_usage, &o.output_usage),
        ] {
            let _ = a.add(b);
        }
        self.tokens += o.tokens;
        self.empty += o.empty;
    }

    /// The report's metrics; `direct`: the paired direct route's recording, kept as
    /// `direct_*` histograms beside `gateway_latency`.
    pub fn metrics(&self, direct: Option<&LlmRecorder>, token_counting: Option<String>) -> LlmMetrics {
        let mut histograms = BTreeMap::new();
        for (k, h) in [
            ("ttft", &self.ttft),
            ("itl", &self.itl),
            ("tpot", &self.tpot),
            ("gateway_overhead", &self.overhead),
            ("overhead_request", &self.overhead_request),
            ("overhead_response", &self.overhead_response),
        ] {
            histograms.insert(k.to_owned(), HistogramSummary::of(h));
        }
        let mut tokens = BTreeMap::new();
        for (k, h) in [
            ("prompt_sent", &self.prompt_sent),
            ("prompt_usage", &self.prompt_usage),
            ("output_usage", &self.output_usage),
        ] {
            if !h.is_empty() {
                tokens.insert(k.to_owned(), HistogramSummary::counts(h));
            }
        }
        if let Some(d) = direct {
            histograms.insert("gateway_latency".into(), HistogramSummary::of(&self.latency));
            for (k, h) in [
                ("direct_ttft", &d.ttft),
                ("direct_itl", &d.itl),
                ("direct_tpot", &d.tpot),
                ("direct_latency", &d.latency),
            ] {
                histograms.insert(k.to_owned(), HistogramSummary::of(h));
            }
        }
        LlmMetrics {
            output_tokens: self.tokens,
            empty_content: self.empty,
            histograms,
            tokens,
            token_counting,
        }
    }

    /// Output token events recorded.
    pub fn output_tokens(&self) -> u64 {
        self.tokens
    }
}

/// The gateway-side and direct histograms a paired metric compares:
/// `ttft_overhead` is `ttft` against `direct_ttft`, and so on.
pub fn paired(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        "ttft_overhead" => ("ttft", "direct_ttft"),
        "itl_overhead" => ("itl", "direct_itl"),
        "tpot_overhead" => ("tpot", "direct_tpot"),
        "latency_overhead" => ("gateway_latency", "direct_latency"),
        _ => return None,
    })
}

fn stat(h: &HistogramSummary, s: Stat) -> f64 {
    match s {
        Stat::P50 => h.p50,
        Stat::P90 => h.p90,
        Stat::P95 => h.p95,
        Stat::P99 => h.p99,
        Stat::P999 => h.p99_9,
        Stat::Max => h.max,
        Stat::Mean => h.mean,
    }
}

/// The value a threshold reads from a phase report (ms for histograms).
pub fn metric_value(r: &PhaseReport, m: Metric) -> Option<f64> {
    let hist = |name: &str| {
        match name {
            "latency" => Some(&r.transport.latency),
            "service" => Some(&r.transport.service),
            "ttfb" => Some(&r.transport.ttfb),
            "schedule_lag" => Some(&r.transport.lag),
            other => r.llm.histograms.get(other),
        }
        .filter(|h| h.count > 0)
    };
    match m {
        Metric::Rps => Some(r.rps),
        // No request, no rate: nothing to judge (not a perfect 0%).
        Metric::ErrorRate => (r.transport.requests > 0).then_some(r.error_rate),
        Metric::TokensPerSecond => Some(r.output_tokens_per_s),
        Metric::Requests => Some(r.transport.requests as f64),
        Metric::Histogram { name, stat: s } => {
            if let Some((gateway, direct)) = paired(name) {
                return Some(stat(hist(gateway)?, s) - stat(hist(direct)?, s));
            }
            hist(name).map(|h| stat(h, s))
        }
    }
}

/// Whether a threshold holds on a phase report, with the value it read (`None`: the
/// phase recorded no value to judge).
pub fn judge(r: &PhaseReport, t: &Threshold) -> (bool, Option<f64>) {
    match metric_value(r, t.metric) {
        Some(v) => (t.op.holds(v, t.limit), Some(v)),
        None => (false, None),
    }
}
