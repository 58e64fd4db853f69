//! Hot paths of the load engine: recording into a worker's histograms, merging and
//! encoding them at the end of a run, and generating schedule instants. Each of these
//! runs once per request (or per run), so at 100k req/s they must cost well under a
//! microsecond.
//!
//! Run: `cargo bench --bench load`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gateprobe::load::{Arrivals, Profile, ScheduleSpec};
use gateprobe::metrics::{Recorder, decode_histogram, encode_histogram};

/// Plausible latencies: mostly sub-millisecond with a tail to 100 ms, in a fixed order.
fn latencies(n: usize) -> Vec<Duration> {
    (0..n as u64)
        .map(|i| {
            let x = i.wrapping_mul(2_654_435_761) % 10_000;
            Duration::from_micros(if x < 9_900 { 200 + x / 20 } else { 1_000 + x * 10 })
        })
        .collect()
}

fn recording(c: &mut Criterion) {
    let values = latencies(4096);
    let mut g = c.benchmark_group("recorder");
    g.throughput(Throughput::Elements(values.len() as u64));
    g.bench_function("record_response_4096", |b| {
        let mut rec = Recorder::new();
        b.iter(|| {
            for d in &values {
                rec.record_response(*d, *d, Some(*d / 2), 300, None);
                rec.record_lag(*d / 100);
            }
            black_box(rec.requests())
        })
    });
    g.finish();

    let mut full = Recorder::new();
    for d in latencies(100_000) {
        full.record_response(d, d, Some(d / 2), 300, None);
    }
    c.bench_function("recorder_add_50_workers", |b| {
        b.iter(|| {
            let mut merged = Recorder::new();
            for _ in 0..50 {
                merged.add(black_box(&full));
            }
            black_box(merged.requests())
        })
    });
    c.bench_function("recorder_snapshot", |b| b.iter(|| black_box(full.snapshot())));
    let encoded = encode_histogram(full.latency());
    c.bench_function("histogram_decode", |b| {
        b.iter(|| black_box(decode_histogram(black_box(&encoded)).map(|h| h.len())))
    });
}

fn schedules(c: &mut Criterion) {
    const N: u64 = 100_000;
    let ramp = ScheduleSpec {
        profile: Profile::Ramp {
            from: 1_000.0,
            to: 50_000.0,
            over: Duration::from_secs(10),
        },
        ..ScheduleSpec::constant(1.0)
    };
    let cases = [
        ("constant", ScheduleSpec::constant(25_000.0).for_requests(N)),
        (
            "poisson",
            ScheduleSpec::constant(25_000.0)
                .for_requests(N)
                .with_arrivals(Arrivals::Poisson { seed: 1 }),
        ),
        (
            "gamma_0.5",
            ScheduleSpec::constant(25_000.0)
                .for_requests(N)
                .with_arrivals(Arrivals::Gamma {
                    burstiness: 0.5,
                    seed: 1,
                }),
        ),
        ("ramp", ramp.for_requests(N)),
    ];
    let mut g = c.benchmark_group("schedule");
    g.throughput(Throughput::Elements(N));
    for (name, spec) in cases {
        g.bench_function(format!("{name}_100k_instants"), |b| {
            b.iter(|| {
                let s = spec.build().expect("valid");
                black_box(s.fold(Duration::ZERO, |_, t| t))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, recording, schedules);
criterion_main!(benches);
