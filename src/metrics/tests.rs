//! Merging, serialisation and interval logs.

use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

use super::hlog::IntervalLog;
use super::*;

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

/// A deterministic spread of values over five orders of magnitude.
fn values() -> impl Iterator<Item = (u64, u64)> {
    (1..=20_000u64).map(|i| {
        let x = i.wrapping_mul(2_654_435_761) % 1_000_003;
        (x % 50_000 + 1, x % 7_000_000 + 1)
    })
}

fn record(rec: &mut Recorder, i: u64, service: u64, latency: u64) {
    let error = match i % 97 {
        0 => Some(ErrorClass::Status(503)),
        1 => Some(ErrorClass::Status(429)),
        _ => None,
    };
    if i.is_multiple_of(89) {
        rec.record_error(ErrorClass::Timeout, 0);
        return;
    }
    rec.record_response(us(latency.max(service)), us(service), Some(us(service / 2)), 300, error);
    rec.record_lag(us(latency % 900));
}

#[test]
fn merging_four_recorders_equals_recording_into_one() {
    let mut one = Recorder::new();
    let mut four: Vec<Recorder> = (0..4).map(|_| Recorder::new()).collect();
    for (i, (service, latency)) in values().enumerate() {
        let i = i as u64;
        record(&mut one, i, service, latency);
        record(&mut four[(i % 4) as usize], i, service, latency);
    }
    let mut merged = Recorder::new();
    for r in &four {
        merged.add(r);
    }
    assert_eq!(merged.requests(), one.requests());
    assert_eq!(merged.errors(), one.errors());
    for (a, b) in [
        (merged.latency(), one.latency()),
        (merged.service(), one.service()),
        (merged.ttfb(), one.ttfb()),
        (merged.lag(), one.lag()),
    ] {
        assert_eq!(a.len(), b.len());
        for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(a.value_at_quantile(q), b.value_at_quantile(q), "quantile {q}");
        }
        assert_eq!(a.max(), b.max());
        assert_eq!(a.min(), b.min());
        // Bucket by bucket, not just at a few quantiles.
        assert_eq!(a, b);
    }
    // The precomputed summaries agree too. The encodings may differ in their header
    // (each histogram's auto-resized range) but decode to the same counts.
    let (mut a, mut b) = (merged.snapshot(), one.snapshot());
    for (x, y) in [
        (&mut a.latency, &mut b.latency),
        (&mut a.service, &mut b.service),
        (&mut a.ttfb, &mut b.ttfb),
        (&mut a.lag, &mut b.lag),
    ] {
        let (hx, hy) = (std::mem::take(&mut x.histogram), std::mem::take(&mut y.histogram));
        assert_eq!(
            decode_histogram(&hx).expect("decode"),
            decode_histogram(&hy).expect("decode")
        );
    }
    assert_eq!(a, b);
}

#[test]
fn snapshot_round_trips_through_json() {
    let mut rec = Recorder::new();
    for (i, (service, latency)) in values().enumerate() {
        record(&mut rec, i as u64, service, latency);
    }
    rec.record_dropped();
    rec.record_late();
    let snap = rec.snapshot();
    assert_eq!(snap.errors["status_503"], rec.errors().by_name()["status_503"]);
    let json = serde_json::to_string(&snap).expect("serialise");
    let back: Snapshot = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(back, snap);
    let rebuilt = Recorder::from_snapshot(&back).expect("decode");
    assert_eq!(rebuilt.latency(), rec.latency());
    assert_eq!(rebuilt.service(), rec.service());
    assert_eq!(rebuilt.ttfb(), rec.ttfb());
    assert_eq!(rebuilt.lag(), rec.lag());
    assert_eq!(rebuilt.snapshot(), snap);
    // Decoded histograms still merge with live ones.
    let mut sum = rebuilt.clone();
    sum.add(&rec);
    assert_eq!(sum.latency().len(), 2 * rec.latency().len());
}

#[test]
fn percentiles_are_in_milliseconds() {
    let mut rec = Recorder::new();
    for v in 1..=1000u64 {
        rec.record_response(us(v * 1000), us(v), None, 0, None);
    }
    let s = rec.snapshot();
    assert_eq!(s.requests, 1000);
    assert!((s.latency.p50 - 500.0).abs() < 1.0, "{}", s.latency.p50);
    assert!((s.latency.max - 1000.0).abs() < 1.0, "{}", s.latency.max);
    assert!((s.service.p99 - 0.99).abs() < 0.01, "{}", s.service.p99);
    assert_eq!(s.ttfb.count, 0);
    assert_eq!(s.ttfb.p99, 0.0);
}

#[test]
fn values_beyond_range_are_clamped_not_lost() {
    let mut rec = Recorder::new();
    rec.record_response(Duration::from_secs(7200), us(5), None, 0, None);
    assert_eq!(rec.latency().len(), 1);
    assert!(rec.latency().max() >= MAX_MICROS * 999 / 1000);
}

#[test]
fn bad_snapshots_are_rejected() {
    let mut snap = Recorder::new().snapshot();
    snap.latency.histogram = "not base64!".into();
    assert!(matches!(Recorder::from_snapshot(&snap), Err(DecodeError::Base64(_))));
    let mut snap = Recorder::new().snapshot();
    snap.errors.insert("gremlins".into(), 1);
    assert!(matches!(
        Recorder::from_snapshot(&snap),
        Err(DecodeError::UnknownErrorClass(_))
    ));
    let mut snap = Recorder::new().snapshot();
    snap.requests = 5;
    assert!(matches!(
        Recorder::from_snapshot(&snap),
        Err(DecodeError::Inconsistent(_))
    ));
}

#[test]
fn interval_log_is_readable_back() {
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut log = IntervalLog::new(Vec::new(), start).expect("header");
    let mut hists = Vec::new();
    for k in 0..3u64 {
        let mut rec = Recorder::new();
        for v in 1..=100 * (k + 1) {
            rec.record_response(us(v * 10), us(v), None, 0, None);
        }
        log.write(
            Some("latency"),
            Duration::from_secs(k),
            Duration::from_secs(1),
            rec.latency(),
        )
        .expect("write");
        hists.push(rec.latency().clone());
    }
    let bytes = log.finish().expect("finish");
    let text = String::from_utf8(bytes.clone()).expect("utf8");
    assert!(text.contains("#[Histogram log format version 1.3]"), "{text}");
    assert!(text.contains("#[BaseTime: 1700000000.000"), "{text}");
    let mut read = Vec::new();
    for entry in IntervalLogIterator::new(&bytes) {
        if let LogEntry::Interval(h) = entry.expect("parse") {
            assert_eq!(h.tag().map(|t| t.as_str().to_owned()), Some("latency".to_owned()));
            assert_eq!(h.duration(), Duration::from_secs(1));
            read.push((
                h.start_timestamp(),
                decode_histogram(h.encoded_histogram()).expect("decode"),
            ));
        }
    }
    assert_eq!(read.len(), 3);
    for (k, (at, h)) in read.iter().enumerate() {
        assert_eq!(*at, Duration::from_secs(k as u64));
        assert_eq!(h, &hists[k]);
    }
}

#[test]
fn error_class_names_are_stable() {
    assert_eq!(ErrorClass::Connect.name(), "connect");
    assert_eq!(ErrorClass::Timeout.name(), "timeout");
    assert_eq!(ErrorClass::Protocol.name(), "protocol");
    assert_eq!(ErrorClass::Status(502).name(), "status_502");
}
