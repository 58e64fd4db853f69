//! Synthetic load reports for the writer, merge and compare tests: requests drawn from
//! a seeded generator, recorded into real `Recorder`s and histograms the way the load
//! runner does, so every encoded histogram, percentile and timeline point is genuine.

#![allow(dead_code)]

pub mod quickstart;

use std::collections::BTreeMap;
use std::time::Duration;

use gateprobe::metrics::{ErrorClass, HistogramSummary, Recorder};
use gateprobe::report::load::{LlmMetrics, PhaseReport, SweepStep, TimelinePoint};
use gateprobe::report::{
    CheckResult, GatewayInfo, JournalInfo, RunReport, SCHEMA_VERSION, ScenarioInfo, Status, Summary, Tool,
};
use hdrhistogram::Histogram;

/// A small deterministic generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in (0, 1).
    pub fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Log-normal with the given median and shape.
    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        let (u, v) = (self.unit(), self.unit());
        let z = (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
        median * (sigma * z).exp()
    }
}

/// One request as the runner would have measured it (microseconds).
#[derive(Clone, Debug)]
pub struct Event {
    pub t_ms: u64,
    pub latency_us: u64,
    pub ttfb_us: u64,
    pub ttft_us: u64,
    pub itl_us: Vec<u64>,
    pub overhead_us: u64,
    pub lag_us: u64,
    pub error: Option<ErrorClass>,
}

/// `n` requests spread over `seconds`, with a slow patch in the middle and a few
/// errors of several classes.
pub fn events(seed: u64, n: usize, seconds: u64) -> Vec<Event> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let t_ms = (i as u64 * seconds * 1000) / n as u64;
            let slow = if (seconds * 400..seconds * 600).contains(&t_ms) {
                1.8
            } else {
                1.0
            };
            let ttft = rng.lognormal(180_000.0 * slow, 0.35);
            let tokens = 8 + rng.next() % 24;
            let itl: Vec<u64> = (1..tokens).map(|_| rng.lognormal(22_000.0, 0.2) as u64).collect();
            let latency = ttft as u64 + itl.iter().sum::<u64>();
            let r = rng.next() % 1000;
            let error = match r {
                0..=11 => Some(ErrorClass::Status(429)),
                12..=16 => Some(ErrorClass::Status(503)),
                17..=18 => Some(ErrorClass::Timeout),
                19 => Some(ErrorClass::Connect),
                _ => None,
            };
            Event {
                t_ms,
                latency_us: latency,
                ttfb_us: (ttft * 0.1) as u64 + 800,
                ttft_us: ttft as u64,
                itl_us: itl,
                overhead_us: rng.lognormal(2_500.0, 0.5) as u64 + 200,
                lag_us: rng.lognormal(120.0, 0.6) as u64,
                error,
            }
        })
        .collect()
}

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

fn record(rec: &mut Recorder, e: &Event) {
    rec.record_lag(us(e.lag_us));
    match e.error {
        Some(c @ (ErrorClass::Timeout | ErrorClass::Connect | ErrorClass::Protocol)) => rec.record_error(c, 0),
        other => rec.record_response(us(e.latency_us), us(e.latency_us), Some(us(e.ttfb_us)), 900, other),
    }
}

fn hist() -> Histogram<u64> {
    Histogram::new(3).expect("histogram")
}

/// A phase recorded from `events`, with its timeline per second over `seconds`.
pub fn phase(name: &str, stream: bool, events: &[Event], seconds: u64, shard: Option<&str>) -> PhaseReport {
    let mut transport = Recorder::new();
    let mut ttft = hist();
    let mut itl = hist();
    let mut overhead = hist();
    let mut tokens = 0u64;
    let mut buckets: BTreeMap<u64, Recorder> = (0..seconds).map(|s| (s, Recorder::new())).collect();
    for e in events {
        record(&mut transport, e);
        record(buckets.entry(e.t_ms / 1000).or_default(), e);
        if e.error.is_none() {
            if stream {
                ttft.record(e.ttft_us).expect("record");
                for g in &e.itl_us {
                    itl.record(*g).expect("record");
                }
            }
            overhead.record(e.overhead_us).expect("record");
            tokens += e.itl_us.len() as u64 + 1;
        }
    }
    let snap = transport.snapshot();
    let elapsed_ms = seconds as f64 * 1000.0;
    let per_s = |n: u64| if seconds > 0 { n as f64 / seconds as f64 } else { 0.0 };
    let mut histograms = BTreeMap::new();
    if stream {
        histograms.insert("ttft".to_owned(), HistogramSummary::of(&ttft));
        histograms.insert("itl".to_owned(), HistogramSummary::of(&itl));
    }
    histograms.insert("gateway_overhead".to_owned(), HistogramSummary::of(&overhead));
    PhaseReport {
        thresholds: Vec::new(),
        name: name.into(),
        feature: if stream { "duo_chat" } else { "code_completions" }.into(),
        model: "mixtral-chat".into(),
        stream,
        mode: "open".into(),
        schedule: format!("poisson {}/s for {seconds}s", events.len() as u64 / seconds.max(1)),
        shard: shard.map(str::to_owned),
        elapsed_ms,
        rps: per_s(snap.requests),
        error_rate: if snap.requests > 0 {
            (snap.requests - snap.ok) as f64 / snap.requests as f64
        } else {
            0.0
        },
        output_tokens_per_s: per_s(tokens),
        valid: true,
        timeline: buckets
            .into_iter()
            .map(|(s, r)| TimelinePoint {
                t_s: s as f64,
                requests: r.requests(),
                errors: r.requests() - r.ok(),
                latency: HistogramSummary::of(r.latency()),
            })
            .collect(),
        transport: snap,
        llm: LlmMetrics {
            output_tokens: tokens,
            empty_content: 0,
            histograms,
            tokens: Default::default(),
            token_counting: None,
        },
        sweep: Vec::new(),
        capacity_rps: None,
        slo: None,
        route: "gateway".into(),
        workload: None,
        capacity_lower_bound: false,
    }
}

/// Sweep steps whose SLO metric (TTFT p90) bends upwards past 40 req/s.
pub fn sweep_steps() -> Vec<SweepStep> {
    [5.0, 10.0, 20.0, 40.0, 60.0, 80.0]
        .iter()
        .map(|&rate: &f64| {
            let slo = 180.0 + 0.02 * rate * rate + if rate > 50.0 { (rate - 50.0) * 14.0 } else { 0.0 };
            SweepStep {
                rate,
                rps: rate * if rate > 50.0 { 0.93 } else { 0.998 },
                error_rate: if rate > 50.0 { 0.02 } else { 0.0 },
                slo_value: slo,
                met: slo <= 300.0,
                latency_ms: Some(gateprobe::report::load::StepPercentiles {
                    p50: slo * 0.8,
                    p90: slo * 1.1,
                    p99: slo * 1.4,
                }),
                ttft_ms: Some(gateprobe::report::load::StepPercentiles {
                    p50: slo * 0.5,
                    p90: slo,
                    p99: slo * 1.2,
                }),
            }
        })
        .collect()
}

pub fn check(id: &str, family: &str, status: Status) -> CheckResult {
    CheckResult {
        id: id.into(),
        family: family.into(),
        rule: format!("rule of {id}"),
        status,
        expected: "the rule kept".into(),
        actual: match status {
            Status::Passed => "kept".into(),
            _ => "broken <b>here</b> | there".into(),
        },
        evidence: Vec::new(),
        profile: None,
    }
}

/// A report around `load` and `checks`.
pub fn report(load: Vec<PhaseReport>, checks: Vec<CheckResult>) -> RunReport {
    RunReport {
        shard: None,
        seed: None,
        diagnosis: Vec::new(),
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "gateprobe".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        scenario: ScenarioInfo {
            name: "load-sample".into(),
            path: "scenarios/load-sample.yaml".into(),
            digest: Some("0123456789abcdef".into()),
        },
        gateway: GatewayInfo {
            kind: "builtin".into(),
            url: Some("http://127.0.0.1:5052".into()),
            faults: Vec::new(),
            profile: "aigw".into(),
            profile_source: "builtin".into(),
            launched: None,
            tls_unverified: false,
        },
        started_at: "2026-01-15T10:00:00Z".into(),
        duration_ms: 65_000.0,
        interrupted: false,
        aborted: None,
        summary: Summary::of(&checks),
        checks,
        journal: JournalInfo::default(),
        load,
    }
}

/// The two-phase report the writer tests use: a streamed chat phase with thresholds
/// (one met, one breached), and a code-completion sweep with a capacity.
pub fn sample() -> RunReport {
    let chat = phase("chat", true, &events(1, 1500, 30), 30, None);
    let mut sweep = phase("code <sweep>", false, &events(2, 900, 30), 30, None);
    sweep.sweep = sweep_steps();
    sweep.capacity_rps = Some(40.0);
    sweep.slo = Some(gateprobe::report::load::Slo {
        text: "ttft.p90 <= 300ms".into(),
        metric: "ttft.p90".into(),
        unit: "ms".into(),
        op: "<=".into(),
        limit: 300.0,
    });
    let checks = vec![
        check("routing.mixtral-chat.backend", "routing", Status::Passed),
        check("auth.mixtral-chat.key_forwarded", "auth", Status::Failed),
        check("endpoint.codegemma.missing_v1", "endpoint", Status::Passed),
        check("streaming.duo_chat", "streaming", Status::Skipped),
        check("threshold.chat.ttft_p90", "threshold", Status::Passed),
        check("threshold.chat.error_rate", "threshold", Status::Failed),
    ];
    report(vec![chat, sweep], checks)
}
