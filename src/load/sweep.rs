//! What a capacity sweep reports beyond a phase's totals: the rate each step achieved
//! (from the span its replies came back in) and the SLO in the report's words.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::report::load::Slo;
use crate::scenario::load::{Metric, Op, Threshold};

/// The first and last reply times of a leg, shared by its workers (nanoseconds from
/// the leg's start; `u64::MAX` / 0 until a reply comes back).
#[derive(Debug)]
pub(super) struct ReplySpan {
    first: AtomicU64,
    last: AtomicU64,
}

impl ReplySpan {
    pub(super) fn new() -> Self {
        ReplySpan {
            first: AtomicU64::new(u64::MAX),
            last: AtomicU64::new(0),
        }
    }

    pub(super) fn record(&self, since_start: Duration) {
        let ns = u64::try_from(since_start.as_nanos()).unwrap_or(u64::MAX - 1);
        self.first.fetch_min(ns, Ordering::Relaxed);
        self.last.fetch_max(ns, Ordering::Relaxed);
    }

    pub(super) fn get(&self) -> Option<(Duration, Duration)> {
        let first = self.first.load(Ordering::Relaxed);
        (first != u64::MAX).then(|| {
            (
                Duration::from_nanos(first),
                Duration::from_nanos(self.last.load(Ordering::Relaxed)),
            )
        })
    }
}

/// The rate a sweep step achieved: replies per second while they came back. The
/// requests over the wall time would count the last replies' latency as idle time (an
/// idle gateway at an offered 5/s for 3 s "achieved" 4.9/s); `n - 1` replies between
/// the first and the last one is the rate they arrived at.
pub(super) fn achieved_rps(requests: u64, replies: Option<(Duration, Duration)>, elapsed: Duration) -> f64 {
    match replies {
        Some((first, last)) if requests >= 2 && last > first => (requests - 1) as f64 / (last - first).as_secs_f64(),
        _ => requests as f64 / elapsed.as_secs_f64().max(1e-9),
    }
}

/// A sweep's SLO in the report's words: metric, unit and limit (an error rate stays a
/// fraction, as `slo_value` is).
pub(super) fn slo_info(t: &Threshold) -> Slo {
    let unit = match t.metric {
        Metric::Histogram { .. } => "ms",
        Metric::ErrorRate => "ratio",
        Metric::Rps => "req/s",
        Metric::TokensPerSecond => "tokens/s",
        Metric::Requests => "requests",
    };
    let metric = match t.metric {
        Metric::Histogram { name, stat } => format!("{name}.{}", stat.name()),
        Metric::Rps => "rps".into(),
        Metric::ErrorRate => "error_rate".into(),
        Metric::TokensPerSecond => "output_tokens_per_s".into(),
        Metric::Requests => "requests".into(),
    };
    let op = match t.op {
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        Op::Ge => ">=",
    };
    Slo {
        text: t.text.clone(),
        metric,
        unit: unit.into(),
        op: op.into(),
        limit: t.limit,
    }
}

#[cfg(test)]
mod tests {
    use super::{Duration, achieved_rps};

    #[test]
    fn achieved_rate_does_not_count_the_last_replies_latency_as_idle() {
        // 15 requests at 5/s (sent 0.0 .. 2.8 s), each answered 0.27 s later: the wall
        // time is 3.07 s, but the replies came at 5/s.
        let ms = Duration::from_millis;
        let got = achieved_rps(15, Some((ms(270), ms(3070))), ms(3070));
        assert!((got - 5.0).abs() < 1e-9, "{got}");
        assert!(
            (15.0_f64 / 3.07 - 4.886).abs() < 1e-3,
            "the biased estimate it replaces"
        );
        // An overloaded gateway: replies spread out, the rate drops.
        let got = achieved_rps(120, Some((ms(300), ms(6300))), ms(6300));
        assert!((got - 119.0 / 6.0).abs() < 1e-9);
        // Fewer than two replies: requests over the wall time.
        assert_eq!(achieved_rps(1, Some((ms(10), ms(10))), ms(2000)), 0.5);
        assert_eq!(achieved_rps(0, None, ms(2000)), 0.0);
    }
}
