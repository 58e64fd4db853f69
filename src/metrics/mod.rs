//! Latency and throughput recording for load runs, built on HdrHistogram.
//!
//! Each load worker owns a [`Recorder`] and writes to it without locks or shared state;
//! when the run ends the recorders are merged with [`Recorder::add`], which adds the
//! histograms bucket by bucket, so the merged percentiles are exact (never averages of
//! per-worker percentiles). Histograms grow with the *range* of values seen, not with
//! the number of requests, so memory stays constant however long a run is.
//!
//! All histograms count microseconds. Four are kept per recorder:
//! - `latency`: end to end, measured from the request's *intended* send time, so a
//!   stalled server cannot hide behind the requests it prevented (coordinated omission);
//! - `service`: from the actual send to the end of the response body;
//! - `ttfb`: from the actual send to the first response byte (the response head);
//! - `lag`: actual send minus intended send, the generator's own lateness.
//!
//! [`Snapshot`] is the serialisable form (base64 V2-deflate histograms plus precomputed
//! percentiles), [`Recorder::from_snapshot`] its exact inverse, and [`hlog`] writes
//! interval logs that HistogramLogAnalyzer reads.

pub mod hlog;
mod snapshot;

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

pub use snapshot::{
    DecodeBudget, DecodeError, HistogramSummary, MAX_SLOTS, MERGE_SLOTS, Snapshot, decode_histogram,
    decode_histogram_within, encode_histogram, histogram_slots,
};

/// Significant decimal digits kept by every histogram: 0.1% relative precision.
pub const SIGFIG: u8 = 3;

/// Values above this are clamped (one hour, in microseconds); nothing a load run
/// measures is meaningful beyond it, and the clamp bounds each histogram's size.
pub const MAX_MICROS: u64 = 3_600_000_000;

/// Why a request did not produce a successful response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorClass {
    /// The connection could not be opened (refused, unreachable, reset during connect).
    Connect,
    /// No complete response within the request timeout.
    Timeout,
    /// A response arrived with a status that is not 2xx or 3xx.
    Status(u16),
    /// The response broke the protocol (malformed, truncated, connection closed mid-body).
    Protocol,
    /// A success status whose reply carried no content (an LLM answer with no text, or
    /// an in-band error event).
    Empty,
}

impl ErrorClass {
    /// The stable name used in reports: `connect`, `timeout`, `status_<code>`, `protocol`.
    pub fn name(self) -> String {
        match self {
            ErrorClass::Connect => "connect".into(),
            ErrorClass::Timeout => "timeout".into(),
            ErrorClass::Status(code) => format!("status_{code}"),
            ErrorClass::Protocol => "protocol".into(),
            ErrorClass::Empty => "empty_content".into(),
        }
    }

    /// Whether a response (head) was received, so that its latency means something.
    pub fn has_response(self) -> bool {
        matches!(self, ErrorClass::Status(_) | ErrorClass::Empty)
    }

    /// The class of a response's status, `None` for a success: 2xx, or 3xx (a
    /// redirect is an answer; load clients do not follow it). An informational status
    /// (`101 Switching Protocols`: the server left HTTP) is no success.
    pub fn of_status(status: u16) -> Option<ErrorClass> {
        (!(200..400).contains(&status)).then_some(ErrorClass::Status(status))
    }
}

/// Error counters. The fixed classes are plain fields and status codes a small map,
/// so the hot path never allocates a string and the size is bounded (status codes are
/// three digits).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorCounts {
    connect: u64,
    timeout: u64,
    protocol: u64,
    empty: u64,
    status: BTreeMap<u16, u64>,
}

impl ErrorCounts {
    fn count(&mut self, class: ErrorClass) {
        match class {
            ErrorClass::Connect => self.connect += 1,
            ErrorClass::Timeout => self.timeout += 1,
            ErrorClass::Protocol => self.protocol += 1,
            ErrorClass::Empty => self.empty += 1,
            ErrorClass::Status(code) => *self.status.entry(code).or_insert(0) += 1,
        }
    }

    fn add(&mut self, other: &ErrorCounts) {
        self.connect += other.connect;
        self.timeout += other.timeout;
        self.protocol += other.protocol;
        self.empty += other.empty;
        for (code, n) in &other.status {
            *self.status.entry(*code).or_insert(0) += n;
        }
    }

    /// Total errors of every class.
    pub fn total(&self) -> u64 {
        self.connect + self.timeout + self.protocol + self.empty + self.status.values().sum::<u64>()
    }

    /// Counts by stable class name, zero counts left out.
    pub fn by_name(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (class, n) in [
            (ErrorClass::Connect, self.connect),
            (ErrorClass::Timeout, self.timeout),
            (ErrorClass::Protocol, self.protocol),
            (ErrorClass::Empty, self.empty),
        ] {
            if n > 0 {
                out.insert(class.name(), n);
            }
        }
        for (code, n) in &self.status {
            out.insert(ErrorClass::Status(*code).name(), *n);
        }
        out
    }

    fn from_names(map: &BTreeMap<String, u64>) -> Result<Self, DecodeError> {
        let mut out = ErrorCounts::default();
        for (name, &n) in map {
            let slot = match name.as_str() {
                "connect" => &mut out.connect,
                "timeout" => &mut out.timeout,
                "protocol" => &mut out.protocol,
                "empty_content" => &mut out.empty,
                other => {
                    let code = other
                        .strip_prefix("status_")
                        .and_then(|c| c.parse::<u16>().ok())
                        .ok_or_else(|| DecodeError::UnknownErrorClass(other.to_owned()))?;
                    out.status.entry(code).or_insert(0)
                }
            };
            *slot = checked(*slot, n, name)?;
        }
        Ok(out)
    }

    /// [`ErrorCounts::add`] for counts read from a file: an overflow is an error.
    fn checked_add(&mut self, other: &ErrorCounts) -> Result<(), DecodeError> {
        self.connect = checked(self.connect, other.connect, "connect")?;
        self.timeout = checked(self.timeout, other.timeout, "timeout")?;
        self.protocol = checked(self.protocol, other.protocol, "protocol")?;
        self.empty = checked(self.empty, other.empty, "empty_content")?;
        for (code, n) in &other.status {
            let slot = self.status.entry(*code).or_insert(0);
            *slot = checked(*slot, *n, "status")?;
        }
        Ok(())
    }

    /// The total, `None` when it does not fit in 64 bits (counts read from a file).
    fn checked_total(&self) -> Option<u64> {
        [self.connect, self.timeout, self.protocol, self.empty]
            .into_iter()
            .chain(self.status.values().copied())
            .try_fold(0u64, u64::checked_add)
    }
}

/// `a + b`, or an error naming what overflowed.
pub fn checked(a: u64, b: u64, what: &str) -> Result<u64, DecodeError> {
    a.checked_add(b)
        .ok_or_else(|| DecodeError::Overflow(format!("{what} adds up past 2^64")))
}

/// One worker's measurements. Not shared: a worker records into its own, and the
/// executor merges them when the run ends.
#[derive(Clone, Debug)]
pub struct Recorder {
    latency: Histogram<u64>,
    service: Histogram<u64>,
    ttfb: Histogram<u64>,
    lag: Histogram<u64>,
    /// Requests that completed with a success response.
    ok: u64,
    /// Response body bytes received.
    bytes: u64,
    errors: ErrorCounts,
    /// Open loop: requests not sent because every worker was busy and the backlog full.
    dropped: u64,
    /// Open loop: requests that waited for a free worker past their intended time.
    late: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

/// An empty histogram with the recorders' bounds and precision.
pub fn histogram() -> Histogram<u64> {
    // Auto-resizing from a tiny initial range: a histogram only grows to the largest
    // value it has seen (logarithmically), which keeps idle ones (lag in closed loop)
    // at a few kilobytes.
    Histogram::new(SIGFIG).expect("3 significant figures is a valid histogram precision")
}

/// Adds `src` to `dst` (auto-resizing, so the range always fits), refusing counts that
/// would pass 2^64 (HdrHistogram saturates them silently).
pub fn add_histogram(dst: &mut Histogram<u64>, src: &Histogram<u64>, what: &str) -> Result<(), DecodeError> {
    checked(dst.len(), src.len(), what)?;
    dst.add(src)
        .map_err(|e| DecodeError::Malformed(format!("{what}: {e:?}")))
}

/// Records `d` in microseconds. `record` (not `saturating_record`, which clamps to
/// the *current* range instead of growing) resizes the histogram as needed; the clamp
/// to [`MAX_MICROS`] bounds that growth, and the value is then always recordable.
/// Records a duration (clamped to the histogram's range).
pub fn put(h: &mut Histogram<u64>, d: Duration) {
    let _ = h.record(micros(d));
}

/// Microseconds in `d`, clamped to [`MAX_MICROS`].
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).min(MAX_MICROS)
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Recorder {
            latency: histogram(),
            service: histogram(),
            ttfb: histogram(),
            lag: histogram(),
            ok: 0,
            bytes: 0,
            errors: ErrorCounts::default(),
            dropped: 0,
            late: 0,
        }
    }

    /// Records a request that received a response: its corrected end-to-end latency,
    /// its service time and, when known, its time to first byte. `error` is set for
    /// a response with a failure status.
    pub fn record_response(
        &mut self,
        latency: Duration,
        service: Duration,
        ttfb: Option<Duration>,
        bytes: u64,
        error: Option<ErrorClass>,
    ) {
        put(&mut self.latency, latency);
        put(&mut self.service, service);
        if let Some(t) = ttfb {
            put(&mut self.ttfb, t);
        }
        self.bytes += bytes;
        match error {
            None => self.ok += 1,
            Some(class) => self.errors.count(class),
        }
    }

    /// Records a request that got no usable response (connect error, timeout, protocol).
    pub fn record_error(&mut self, class: ErrorClass, bytes: u64) {
        self.bytes += bytes;
        self.errors.count(class);
    }

    /// Records a request that timed out `latency` after its intended send: a timeout
    /// error, and its latency so far (a lower bound) in the latency histogram.
    pub fn record_timeout(&mut self, latency: Duration) {
        put(&mut self.latency, latency);
        self.errors.count(ErrorClass::Timeout);
    }

    /// Counts `n` requests still in flight when a run's drain ended: they had used up
    /// their timeout budget, so they count as timeouts.
    pub fn record_abandoned(&mut self, n: u64) {
        self.errors.timeout += n;
    }

    /// Records how late the request was sent relative to when it should have been.
    pub fn record_lag(&mut self, lag: Duration) {
        put(&mut self.lag, lag);
    }

    /// Counts an open-loop request dropped because no worker was free.
    pub fn record_dropped(&mut self) {
        self.dropped += 1;
    }

    /// Counts an open-loop request that had to wait for a free worker.
    pub fn record_late(&mut self) {
        self.late += 1;
    }

    /// Adds another recorder's measurements to this one, exactly.
    pub fn add(&mut self, other: &Recorder) {
        // Auto-resizing histograms grow to fit, so `add` cannot fail here.
        for (dst, src) in [
            (&mut self.latency, &other.latency),
            (&mut self.service, &other.service),
            (&mut self.ttfb, &other.ttfb),
            (&mut self.lag, &other.lag),
        ] {
            dst.add(src).expect("auto-resizing histograms accept any values");
        }
        self.ok += other.ok;
        self.bytes += other.bytes;
        self.errors.add(&other.errors);
        self.dropped += other.dropped;
        self.late += other.late;
    }

    /// Requests that completed, successfully or not (dropped ones are not requests).
    pub fn requests(&self) -> u64 {
        self.ok + self.errors.total()
    }

    /// Requests with a success response.
    pub fn ok(&self) -> u64 {
        self.ok
    }

    /// Requests that got a response, a success or not (a refused connection or a
    /// timeout got none).
    pub fn responses(&self) -> u64 {
        self.ok + self.errors.empty + self.errors.status.values().sum::<u64>()
    }

    /// Response body bytes received.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Error counters.
    pub fn errors(&self) -> &ErrorCounts {
        &self.errors
    }

    /// Open-loop requests dropped for want of a free worker.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Open-loop requests that waited for a free worker.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// End-to-end latency from the intended send time, in microseconds.
    pub fn latency(&self) -> &Histogram<u64> {
        &self.latency
    }

    /// Service time from the actual send, in microseconds.
    pub fn service(&self) -> &Histogram<u64> {
        &self.service
    }

    /// Time to first byte from the actual send, in microseconds.
    pub fn ttfb(&self) -> &Histogram<u64> {
        &self.ttfb
    }

    /// Schedule lag (actual minus intended send), in microseconds.
    pub fn lag(&self) -> &Histogram<u64> {
        &self.lag
    }

    /// The serialisable form, with histograms encoded and percentiles precomputed.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            requests: self.requests(),
            ok: self.ok,
            bytes: self.bytes,
            errors: self.errors.by_name(),
            dropped: self.dropped,
            late: self.late,
            latency: HistogramSummary::of(&self.latency),
            service: HistogramSummary::of(&self.service),
            ttfb: HistogramSummary::of(&self.ttfb),
            lag: HistogramSummary::of(&self.lag),
        }
    }

    /// Rebuilds a recorder from a snapshot (for merging reports of separate runs).
    pub fn from_snapshot(s: &Snapshot) -> Result<Recorder, DecodeError> {
        Recorder::from_snapshot_within(s, &mut DecodeBudget::new(4 * MAX_SLOTS))
    }

    /// [`Recorder::from_snapshot`], its histograms charged to `budget`; counters that
    /// contradict each other or overflow are errors, never wrapped.
    pub fn from_snapshot_within(s: &Snapshot, budget: &mut DecodeBudget) -> Result<Recorder, DecodeError> {
        let errors = ErrorCounts::from_names(&s.errors)?;
        let total = errors
            .checked_total()
            .and_then(|e| e.checked_add(s.ok))
            .ok_or_else(|| DecodeError::Overflow("ok + errors adds up past 2^64".into()))?;
        if total != s.requests {
            return Err(DecodeError::Inconsistent(format!(
                "requests {} but ok + errors = {total}",
                s.requests
            )));
        }
        Ok(Recorder {
            latency: decode_histogram_within(&s.latency.histogram, budget)?,
            service: decode_histogram_within(&s.service.histogram, budget)?,
            ttfb: decode_histogram_within(&s.ttfb.histogram, budget)?,
            lag: decode_histogram_within(&s.lag.histogram, budget)?,
            ok: s.ok,
            bytes: s.bytes,
            errors,
            dropped: s.dropped,
            late: s.late,
        })
    }

    /// [`Recorder::add`] for recorders read from files: a counter that would overflow
    /// is an error (never wrapped), and so is a histogram whose counts would.
    pub fn try_add(&mut self, other: &Recorder) -> Result<(), DecodeError> {
        for (what, dst, src) in [
            ("latency", &mut self.latency, &other.latency),
            ("service", &mut self.service, &other.service),
            ("ttfb", &mut self.ttfb, &other.ttfb),
            ("lag", &mut self.lag, &other.lag),
        ] {
            add_histogram(dst, src, what)?;
        }
        self.ok = checked(self.ok, other.ok, "ok")?;
        self.bytes = checked(self.bytes, other.bytes, "bytes")?;
        self.errors.checked_add(&other.errors)?;
        self.dropped = checked(self.dropped, other.dropped, "dropped")?;
        self.late = checked(self.late, other.late, "late")?;
        self.errors
            .checked_total()
            .and_then(|e| e.checked_add(self.ok))
            .ok_or_else(|| DecodeError::Overflow("requests add up past 2^64".into()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
