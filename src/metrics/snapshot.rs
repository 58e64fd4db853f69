//! The serialisable form of a [`Recorder`](super::Recorder): each histogram as a
//! base64 string of HdrHistogram's V2 compressed (deflate) encoding, which any
//! HdrHistogram implementation decodes, next to precomputed percentiles in
//! milliseconds so that JSON consumers need not decode anything.
//!
//! Encoded histograms come from report files, which anyone can write: the decoder
//! checks what an encoding claims (its compressed and inflated lengths, its value
//! range and precision, hence the size of its counts array, and the sum of its
//! counts) before anything is allocated for it, and a [`DecodeBudget`] bounds what a
//! whole merge may decode.

use std::collections::BTreeMap;
use std::io::Read as _;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use base64::Engine as _;

/// The longest base64 histogram decoded (characters).
pub const MAX_ENCODED: usize = 1 << 20;
/// The most bytes an encoded histogram may inflate to.
const MAX_INFLATED: usize = 1 << 20;
/// The largest counts array a decoded histogram may have (1 MiB of counts). Every
/// histogram gateprobe writes (3 significant digits, values up to an hour in
/// microseconds) needs under 24,000.
pub const MAX_SLOTS: u64 = 1 << 17;
/// The counts a whole merge may decode, over all its histograms (1 GiB of counts).
pub const MERGE_SLOTS: u64 = 1 << 27;

/// HdrHistogram's V2 cookies (with the 0x10 word-size bits its Rust version writes).
const V2_COOKIE: u32 = 0x1c84_9303 | 0x10;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9304 | 0x10;
/// Bytes of a V2 header: cookie, payload length, normalizing offset, digits, lowest,
/// highest, integer-to-double ratio.
const V2_HEADER: usize = 40;

/// How many counts array entries decoding may still allocate.
#[derive(Clone, Copy, Debug)]
pub struct DecodeBudget {
    slots: u64,
}

impl DecodeBudget {
    /// A budget of `slots` counts array entries.
    pub fn new(slots: u64) -> Self {
        DecodeBudget { slots }
    }

    /// Takes `slots` from the budget, or says it ran out.
    pub fn charge(&mut self, slots: u64) -> Result<(), DecodeError> {
        self.slots = self.slots.checked_sub(slots).ok_or_else(|| {
            DecodeError::TooLarge(format!(
                "the histograms together need more than {MERGE_SLOTS} counts, more than any run gateprobe writes"
            ))
        })?;
        Ok(())
    }
}

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
    /// An encoding that claims more than the decoder takes on.
    #[error("histogram is too large: {0}")]
    TooLarge(String),
    /// An encoding that contradicts itself.
    #[error("histogram is not a valid HdrHistogram encoding: {0}")]
    Malformed(String),
    /// Counts whose sum does not fit in 64 bits.
    #[error("counts overflow: {0}")]
    Overflow(String),
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
    decode_histogram_within(s, &mut DecodeBudget::new(MAX_SLOTS))
}

/// [`decode_histogram`], charging its counts array to `budget`; every claim of the
/// encoding is checked before anything is allocated for it.
pub fn decode_histogram_within(s: &str, budget: &mut DecodeBudget) -> Result<Histogram<u64>, DecodeError> {
    let v2 = inflate_checked(s)?;
    budget.charge(check_v2(&v2)?)?;
    let mut h: Histogram<u64> = Deserializer::new().deserialize(&mut v2.as_slice())?;
    h.auto(true);
    Ok(h)
}

/// The counts array an encoded histogram would need once decoded, found without
/// decoding it (nothing is allocated for the array): for a merge to see what its
/// inputs would cost before it starts.
pub fn histogram_slots(s: &str) -> Result<u64, DecodeError> {
    check_v2(&inflate_checked(s)?)
}

/// The inflated V2 bytes of a base64 V2-deflate histogram, each length it claims
/// checked and bounded.
fn inflate_checked(s: &str) -> Result<Vec<u8>, DecodeError> {
    if s.len() > MAX_ENCODED {
        return Err(DecodeError::TooLarge(format!(
            "{} base64 characters, over the {MAX_ENCODED} limit",
            s.len()
        )));
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(s)?;
    let malformed = |m: &str| DecodeError::Malformed(m.to_owned());
    let (cookie, rest) = split_u32(&bytes).ok_or_else(|| malformed("shorter than its header"))?;
    if cookie != V2_COMPRESSED_COOKIE {
        return Err(malformed("not a V2 compressed (deflate) histogram"));
    }
    let (len, deflated) = split_u32(rest).ok_or_else(|| malformed("shorter than its header"))?;
    let deflated = deflated
        .get(..len as usize)
        .ok_or_else(|| malformed(&format!("claims {len} compressed bytes and has {}", deflated.len())))?;
    let mut v2 = Vec::new();
    flate2::read::ZlibDecoder::new(deflated)
        .take(MAX_INFLATED as u64 + 1)
        .read_to_end(&mut v2)
        .map_err(|e| malformed(&format!("does not inflate: {e}")))?;
    if v2.len() > MAX_INFLATED {
        return Err(DecodeError::TooLarge(format!("inflates past {MAX_INFLATED} bytes")));
    }
    Ok(v2)
}

fn split_u32(b: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = b.split_at_checked(4)?;
    Some((u32::from_be_bytes(head.try_into().ok()?), rest))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

/// Checks an inflated V2 encoding: its header (payload length, value range and
/// precision, and the counts array they need) and its payload (every count inside
/// that array, their sum within 64 bits). Returns the counts array's length.
fn check_v2(v2: &[u8]) -> Result<u64, DecodeError> {
    let malformed = |m: String| DecodeError::Malformed(m);
    if v2.len() < V2_HEADER {
        return Err(malformed("shorter than its header".into()));
    }
    let word = |at: usize| u32::from_be_bytes([v2[at], v2[at + 1], v2[at + 2], v2[at + 3]]);
    if word(0) != V2_COOKIE {
        return Err(malformed("not a V2 histogram inside the deflate stream".into()));
    }
    let payload = &v2[V2_HEADER..];
    if word(4) as usize != payload.len() {
        return Err(malformed(format!(
            "claims a {}-byte payload and has {}",
            word(4),
            payload.len()
        )));
    }
    let (digits, low, high) = (word(12), u64_at(v2, 16), u64_at(v2, 24));
    let slots = counts_len(low, high, digits)
        .ok_or_else(|| malformed(format!("range {low}..{high} at {digits} digits is not a histogram's")))?;
    if slots > MAX_SLOTS {
        return Err(DecodeError::TooLarge(format!(
            "range {low}..{high} at {digits} digits needs {slots} counts, over the {MAX_SLOTS} limit"
        )));
    }
    // The payload: zig-zag LEB128 numbers, a count or (negative) a run of zeros.
    let (mut index, mut total, mut at) = (0u64, 0u64, 0usize);
    while at < payload.len() {
        let mut value = 0u64;
        let mut shift = 0;
        loop {
            let b = *payload
                .get(at)
                .ok_or_else(|| malformed("payload ends inside a number".into()))?;
            at += 1;
            if shift == 56 {
                value |= u64::from(b) << 56;
                break;
            }
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let n = (value >> 1) as i64 ^ -((value & 1) as i64);
        if n < 0 {
            index = index.saturating_add(n.unsigned_abs());
        } else {
            if n > 0 && index >= slots {
                return Err(malformed(format!("a count past the {slots} its range has")));
            }
            total = total
                .checked_add(n as u64)
                .ok_or_else(|| DecodeError::Overflow("the histogram's counts add up past 2^64".into()))?;
            index += 1;
        }
    }
    Ok(slots)
}

/// The counts array HdrHistogram allocates for a range and precision (its own
/// arithmetic), `None` for parameters it refuses.
fn counts_len(low: u64, high: u64, digits: u32) -> Option<u64> {
    if !(1..=u64::MAX / 2).contains(&low) || high < 2 * low || digits > 5 {
        return None;
    }
    let largest = 2 * 10u64.pow(digits);
    let unit = (low as f64).log2().floor() as u32;
    let sub_magnitude = (largest as f64).log2().ceil() as u32;
    if unit + sub_magnitude > 63 {
        return None;
    }
    let sub_count = 1u64 << sub_magnitude;
    let mut smallest_untrackable = sub_count << unit;
    let mut buckets = 1u64;
    while smallest_untrackable <= high {
        if smallest_untrackable > u64::MAX / 2 {
            buckets += 1;
            break;
        }
        smallest_untrackable <<= 1;
        buckets += 1;
    }
    Some((buckets + 1) * (sub_count / 2))
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
