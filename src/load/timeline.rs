//! A load phase's timeline: one bucket per second of the run (requests completed,
//! errors, and their latency histogram), for the rate-over-time charts, the live
//! progress line and the `.hlog` interval log.
//!
//! A second's histogram is only written to while requests of that second complete, so
//! each bucket stays an open [`Histogram`] for [`OPEN`] seconds past its end and is
//! then sealed: compressed to its V2-deflate encoding (a few hundred bytes instead of
//! tens of kilobytes). Memory therefore grows by bytes, not kilobytes, per second of a
//! long run. A late request for a sealed second still counts (decoded, added,
//! re-encoded), so nothing is lost.

use std::time::Duration;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

use crate::metrics::{histogram, put};

/// Seconds behind the newest bucket that stay uncompressed.
pub const OPEN: usize = 2;

/// Per-second buckets.
#[derive(Debug, Default)]
pub struct Timeline {
    buckets: Vec<Bucket>,
}

#[derive(Debug, Default)]
struct Bucket {
    requests: u64,
    errors: u64,
    hist: Hist,
}

#[derive(Debug, Default)]
enum Hist {
    #[default]
    Empty,
    Open(Histogram<u64>),
    Sealed(Vec<u8>),
}

impl Hist {
    fn open(&mut self) -> &mut Histogram<u64> {
        let h = match std::mem::take(self) {
            Hist::Empty => histogram(),
            Hist::Open(h) => h,
            Hist::Sealed(bytes) => decode(&bytes),
        };
        *self = Hist::Open(h);
        match self {
            Hist::Open(h) => h,
            // Just set above.
            _ => unreachable!("the bucket was opened"),
        }
    }

    fn seal(&mut self) {
        if let Hist::Open(h) = self {
            let mut bytes = Vec::new();
            // Serialising into a Vec cannot fail for a valid histogram.
            let _ = V2DeflateSerializer::new().serialize(h, &mut bytes);
            *self = Hist::Sealed(bytes);
        }
    }

    fn histogram(&self) -> Histogram<u64> {
        match self {
            Hist::Empty => histogram(),
            Hist::Open(h) => h.clone(),
            Hist::Sealed(bytes) => decode(bytes),
        }
    }
}

fn decode(bytes: &[u8]) -> Histogram<u64> {
    match Deserializer::new().deserialize::<u64, _>(&mut &bytes[..]) {
        Ok(mut h) => {
            h.auto(true);
            h
        }
        // Only this module encodes these bytes.
        Err(_) => histogram(),
    }
}

impl Timeline {
    /// Records a request that completed in second `bucket`.
    pub fn record(&mut self, bucket: usize, error: bool, latency: Duration) {
        if self.buckets.len() <= bucket {
            self.buckets.resize_with(bucket + 1, Bucket::default);
            let newest = self.buckets.len() - 1;
            for b in &mut self.buckets[..newest.saturating_sub(OPEN)] {
                b.hist.seal();
            }
        }
        let newest = self.buckets.len() - 1;
        let b = &mut self.buckets[bucket];
        b.requests += 1;
        b.errors += u64::from(error);
        put(b.hist.open(), latency);
        if bucket + OPEN < newest {
            // A late request reopened a sealed second.
            b.hist.seal();
        }
    }

    /// Adds another timeline of the same seconds, bucket by bucket. Seconds older than
    /// the newest [`OPEN`] stay sealed.
    pub fn add(&mut self, o: &Timeline) {
        if self.buckets.len() < o.buckets.len() {
            self.buckets.resize_with(o.buckets.len(), Bucket::default);
        }
        let newest = self.buckets.len().saturating_sub(1);
        for (i, (a, b)) in self.buckets.iter_mut().zip(&o.buckets).enumerate() {
            a.requests += b.requests;
            a.errors += b.errors;
            if !matches!(b.hist, Hist::Empty) {
                let _ = a.hist.open().add(b.hist.histogram());
                if i + OPEN < newest {
                    a.hist.seal();
                }
            }
        }
    }

    /// Seconds covered.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Requests and errors over all seconds.
    pub fn totals(&self) -> (u64, u64) {
        self.buckets
            .iter()
            .fold((0, 0), |(r, e), b| (r + b.requests, e + b.errors))
    }

    /// Second `i`: requests, errors and the latency histogram.
    pub fn point(&self, i: usize) -> Option<(u64, u64, Histogram<u64>)> {
        self.buckets.get(i).map(|b| (b.requests, b.errors, b.hist.histogram()))
    }

    /// Bytes held by the buckets' histograms (open ones at their counts array's size).
    pub fn footprint(&self) -> usize {
        self.buckets
            .iter()
            .map(|b| match &b.hist {
                Hist::Empty => 0,
                Hist::Open(h) => h.distinct_values() * 8,
                Hist::Sealed(bytes) => bytes.len(),
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn sealed_seconds_keep_every_value_and_late_requests() {
        let mut t = Timeline::default();
        for s in 0..100 {
            for k in 0..50 {
                t.record(s, k == 0, ms(10 + k));
            }
        }
        // A straggler for an old, sealed second.
        t.record(3, false, ms(900));
        assert_eq!(t.totals(), (5001, 100));
        let (r, e, h) = t.point(3).expect("second 3");
        assert_eq!((r, e, h.len()), (51, 1, 51));
        assert!(h.max() >= 899_000, "{}", h.max());
        let (_, _, h) = t.point(99).expect("last second");
        assert_eq!(h.len(), 50);
        assert!(matches!(t.buckets[3].hist, Hist::Sealed(_)));
        assert!(matches!(t.buckets[99].hist, Hist::Open(_)));
        // 100 seconds in far less than one open histogram per second would take.
        let one_open = histogram_with(&[ms(10), ms(59)]).distinct_values() * 8;
        assert!(t.footprint() < 10 * one_open, "{} vs {one_open}", t.footprint());
    }

    fn histogram_with(v: &[Duration]) -> Histogram<u64> {
        let mut h = histogram();
        for d in v {
            put(&mut h, *d);
        }
        h
    }

    #[test]
    fn timelines_add_bucket_by_bucket() {
        let (mut a, mut b) = (Timeline::default(), Timeline::default());
        for s in 0..10 {
            a.record(s, false, ms(5));
            b.record(s * 2, true, ms(7));
        }
        a.add(&b);
        assert!(matches!(a.buckets[4].hist, Hist::Sealed(_)));
        assert!(matches!(a.buckets[18].hist, Hist::Open(_)));
        assert_eq!(a.len(), 19);
        assert_eq!(a.totals(), (20, 10));
        let (r, e, h) = a.point(4).expect("second 4");
        assert_eq!((r, e, h.len()), (2, 1, 2));
        assert_eq!(a.point(5).map(|p| p.0), Some(1));
    }
}
