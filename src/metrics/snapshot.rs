//! The serialisable form of a [`Recorder`](super::Recorder): each histogram as a
//! base64 string of HdrHistogram's V2 compressed (deflate) encoding, which any
//! HdrHistogram implementation decodes, next to precomputed percentiles in
//! milliseconds so that JSON consumers need not decode anything.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use base64::Engine as _;

/// A histogram that could not be decoded, or a snapshot that contradicts itself.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The string is not base64.
    #[error("histogram is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// The bytes are not an HdrHistogram V2 (deflate) encoding.
    #[error("histogram is not a valid HdrHistogram encoding: {0}")]
    Histogram(#[from] hdrhistogram::serialization::DeserializeError),
    /// An error counter name that is not one of the known classes.
    #[error("unknown error class `{0}`")]
    UnknownErrorClass(String),
    /// Counters that do not add up.
    #[error("inconsistent snapshot: {0}")]
    Inconsistent(String),
}

/// Encodes a histogram as base64 of its V2 deflate serialisation (the format of
/// HdrHistogram interval logs).
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    // Serialising into a Vec cannot fail for a valid histogram.
    let _ = V2DeflateSerializer::new().serialize(h, &mut buf);
    base64::engine::general_purpose::STANDARD.encode(buf)
}

/// Decodes what [`encode_histogram`] produced. The result auto-resizes, so it can be
/// added to any other histogram.
pub fn decode_histogram(s: &str) -> Result<Histogram<u64>, DecodeError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s)?;
    let mut h: Histogram<u64> = Deserializer::new().deserialize(&mut bytes.as_slice())?;
    h.auto(true);
    Ok(h)
}

/// Percentiles of one histogram in milliseconds, and the histogram itself (microsecond
/// units) for exact merging.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HistogramSummary {
    /// Number of recorded values.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p99_9: f64,
    /// Largest value.
    pub max: f64,
    /// Base64 of the HdrHistogram V2 deflate encoding; values in microseconds.
    pub histogram: String,
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

impl HistogramSummary {
    /// Summarises `h` (microsecond values) in milliseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        Self::scaled(h, ms)
    }

    /// Summarises `h` as plain counts (token counts per request), unscaled.
    pub fn counts(h: &Histogram<u64>) -> Self {
        let mut s = Self::scaled(h, |v| v as f64);
        s.mean = if h.is_empty() {
            0.0
        } else {
            (h.mean() * 1000.0).round() / 1000.0
        };
        s
    }

    fn scaled(h: &Histogram<u64>, ms: impl Fn(u64) -> f64) -> Self {
        let at = |q: f64| if h.is_empty() { 0.0 } else { ms(h.value_at_quantile(q)) };
        HistogramSummary {
            count: h.len(),
            mean: if h.is_empty() { 0.0 } else { h.mean().round() / 1000.0 },
            p50: at(0.5),
            p90: at(0.9),
            p95: at(0.95),
            p99: at(0.99),
            p99_9: at(0.999),
            max: if h.is_empty() { 0.0 } else { ms(h.max()) },
            histogram: encode_histogram(h),
        }
    }
}

/// Everything a recorder holds, as plain data. Field names carry their unit in JSON
/// (`latency_ms`, ...), so a `gateprobe bench --json` report parses as a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Snapshot {
    /// Requests completed, successfully or not.
    pub requests: u64,
    /// Requests with a success (2xx/3xx) response.
    pub ok: u64,
    /// Response body bytes received.
    pub bytes: u64,
    /// Errors by class: `connect`, `timeout`, `protocol`, `status_<code>`.
    pub errors: BTreeMap<String, u64>,
    /// Open loop: requests not sent because every worker was busy and the backlog full.
    pub dropped: u64,
    /// Open loop: requests that waited for a free worker past their intended time.
    pub late: u64,
    /// End-to-end latency from the intended send time.
    #[serde(rename = "latency_ms")]
    pub latency: HistogramSummary,
    /// Service time from the actual send.
    #[serde(rename = "service_ms")]
    pub service: HistogramSummary,
    /// Time to first byte from the actual send.
    #[serde(rename = "ttfb_ms")]
    pub ttfb: HistogramSummary,
    /// Schedule lag: actual send minus intended send.
    #[serde(rename = "schedule_lag_ms")]
    pub lag: HistogramSummary,
}
