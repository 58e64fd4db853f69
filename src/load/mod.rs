//! The load engine: arrival [`schedule`]s (intended send instants), the [`executor`]
//! that drives requests open loop (by schedule) or closed loop (N clients), and the
//! check that tells whether the generator kept its schedule.
//!
//! The engine does not know what a request is. A caller implements [`Client`] (one
//! per worker, owning whatever per-worker state it needs, e.g. a connection) and a
//! [`ClientFactory`] that makes them; both are implemented for closures, so
//! `|worker| move || async { ... }` is a factory. The same executor thus drives plain
//! HTTP requests for `gateprobe bench` ([`http`]) and gateway feature requests later.

pub mod executor;
pub mod http;
pub mod llm;
pub mod phase;
pub mod route;
pub mod schedule;
mod sweep;
pub mod timeline;
pub mod wire;
pub mod workload;

use std::future::Future;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::metrics::{ErrorClass, Recorder};

pub use crate::rng::Rng;
pub use executor::{ClosedLoop, LoadError, Mode, OpenLoop, RunConfig, RunResult, run};
pub use schedule::{Arrivals, Profile, Schedule, ScheduleError, ScheduleSpec, Step};

/// What one request produced, as reported by a [`Client`]. The executor takes the
/// send and end times itself; the client only knows when the first byte came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// `None` for a success; otherwise why not.
    pub error: Option<ErrorClass>,
    /// When the first byte of the response (its head) arrived, if it did.
    pub first_byte: Option<Instant>,
    /// Response body bytes received.
    pub bytes: u64,
}

impl Outcome {
    /// A success with `bytes` of body.
    pub fn ok(bytes: u64) -> Self {
        Outcome {
            error: None,
            first_byte: None,
            bytes,
        }
    }

    /// A failure of class `class`.
    pub fn error(class: ErrorClass) -> Self {
        Outcome {
            error: Some(class),
            first_byte: None,
            bytes: 0,
        }
    }

    /// The same outcome with a first-byte time.
    pub fn first_byte_at(mut self, at: Instant) -> Self {
        self.first_byte = Some(at);
        self
    }
}

/// One worker's way of performing a request. A worker calls it once per request and
/// never concurrently, so an implementation can keep a connection in `self`.
///
/// If the returned future is dropped before it completes (timeout, stop), the next
/// call must not reuse state that the dropped call left half-used.
pub trait Client: Send + 'static {
    /// Performs one request.
    fn call(&mut self) -> impl Future<Output = Outcome> + Send;

    /// Told of every request once it is over, however it ended (a timeout included,
    /// whose `call` future was dropped): when it should have been sent, when it ended,
    /// and its error class. For per-request records beside the executor's own.
    fn finished(&mut self, _intended: Instant, _end: Instant, _error: Option<ErrorClass>) {}
}

impl<F, Fut> Client for F
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    fn call(&mut self) -> impl Future<Output = Outcome> + Send {
        self()
    }
}

/// Makes one [`Client`] per worker.
pub trait ClientFactory {
    /// The per-worker client.
    type Client: Client;
    /// The client of worker number `worker` (0-based).
    fn client(&self, worker: usize) -> Self::Client;
}

impl<F, C> ClientFactory for F
where
    F: Fn(usize) -> C,
    C: Client,
{
    type Client = C;
    fn client(&self, worker: usize) -> C {
        self(worker)
    }
}

/// Whether the generator kept its schedule, judged on the schedule lag's p99.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct LagCheck {
    /// The threshold, in milliseconds.
    pub threshold_ms: f64,
    /// The measured 99th percentile of schedule lag, in milliseconds.
    pub p99_ms: f64,
    /// `false` when the lag p99 exceeded the threshold: the latencies then describe
    /// the generator as much as the target, and the achieved rate may be short.
    pub valid: bool,
}

/// Default lag threshold: 1 ms. Linux wakes a sleeping thread within ~50-100 µs
/// (timer slack), so a generator that is keeping up sends well inside it; a p99 past
/// 1 ms means it is starved of CPU or saturated, and its own delay is then as large
/// as a loopback service time, which would be reported as the target's latency.
pub const DEFAULT_MAX_LAG: Duration = Duration::from_millis(1);

impl LagCheck {
    /// Judges `rec`'s lag histogram against `threshold`. An empty lag histogram
    /// (closed loop) is valid: there was no schedule to keep.
    pub fn judge(rec: &Recorder, threshold: Duration) -> Self {
        let lag = rec.lag();
        let p99_us = if lag.is_empty() { 0 } else { lag.value_at_quantile(0.99) };
        LagCheck {
            threshold_ms: threshold.as_secs_f64() * 1000.0,
            p99_ms: p99_us as f64 / 1000.0,
            valid: u128::from(p99_us) <= threshold.as_micros(),
        }
    }
}
