//! Running a scenario's load phases against a gateway: each phase's feature request
//! (shape and routing from the conformance model) driven by the open- or closed-loop
//! executor, with LLM metrics (TTFT, ITL, time per output token, tokens) and the
//! gateway's overhead per request, read from the mocks' journal by correlation id.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::llm::LlmRecorder;
use super::route::Route;
use super::sweep::{ReplySpan, achieved_rps, slo_info};
use super::timeline::Timeline;
use super::{Arrivals, ClosedLoop, LagCheck, Mode, OpenLoop, Outcome, Profile, RunConfig, ScheduleSpec, Step};
use crate::metrics::{HistogramSummary, Recorder, histogram};
use crate::mock::journal::Journal;
use crate::report::load::{PhaseReport, StepPercentiles, SweepStep, TimelinePoint};
use crate::scenario::load::{ArrivalKind, LoadMode, LoadPhase, RateProfile};

/// Intended instants that may wait for a free worker before being dropped. Large on
/// purpose: a request that waits is measured from its intended time (that is the
/// coordinated-omission correction), one that is dropped is only counted; an instant
/// costs a few bytes, so this bounds memory without hiding a stall.
const BACKLOG: usize = 100_000;
/// How late a phase's sends may be (schedule-lag p99) before the phase is marked
/// invalid: 5% of its median latency, at least 1 ms and at most 10 ms. Latency counts
/// from the intended send, so lag never hides in the results; the limit says when it
/// is large enough to distort them (2 ms on an 80 ms chat request is not; 2 ms on a
/// 0.5 ms request is).
fn lag_limit(transport: &Recorder) -> Duration {
    let p50 = match transport.latency() {
        h if h.is_empty() => 0,
        h => h.value_at_quantile(0.5),
    };
    Duration::from_micros(p50 / 20).clamp(super::DEFAULT_MAX_LAG, 10 * super::DEFAULT_MAX_LAG)
}

/// LLM-level recorders per leg (shared by workers round-robin).
const LLM_SHARDS: usize = 8;
/// Timeline buckets kept at most (one per second).
const MAX_BUCKETS: usize = 3_600;

/// What a phase needs from the run around it.
#[derive(Clone, Debug)]
pub struct PhaseEnv {
    /// Where its requests go.
    pub route: Route,
    /// `compare_direct`: the direct route every other request takes.
    pub paired: Option<Route>,
    /// The run's correlation ids.
    pub ids: Arc<crate::plan::CorrelationIds>,
    /// The mocks' journal (for gateway overhead), when the backend is one of ours.
    pub journal: Option<Arc<Journal>>,
    /// `(index, total)`, 1-based, when this run is one shard of several.
    pub shard: Option<(u32, u32)>,
}

/// A phase's client: its requests, and every one's end on the leg's shared timeline,
/// timeouts included, latency counted from the intended send.
struct Timelined<R> {
    request: R,
    timeline: Arc<Mutex<Timeline>>,
    origin: Instant,
}

impl<R, F> super::Client for Timelined<R>
where
    R: FnMut() -> F + Send + 'static,
    F: std::future::Future<Output = Outcome> + Send,
{
    fn call(&mut self) -> impl std::future::Future<Output = Outcome> + Send {
        (self.request)()
    }

    fn finished(&mut self, intended: Instant, end: Instant, error: Option<crate::metrics::ErrorClass>) {
        let bucket = (end.saturating_duration_since(self.origin).as_secs() as usize).min(MAX_BUCKETS - 1);
        self.timeline.lock().unwrap_or_else(|p| p.into_inner()).record(
            bucket,
            error.is_some(),
            end.saturating_duration_since(intended),
        );
    }
}

/// The result of one executor run (one phase, or one sweep step).
struct Leg {
    transport: Recorder,
    /// The gateway (or only) route's recording, and the paired direct route's.
    llm: [LlmRecorder; 2],
    timeline: Timeline,
    elapsed: Duration,
    interrupted: bool,
    /// When the first and the last reply came back, from the leg's start.
    replies: Option<(Duration, Duration)>,
}

impl Leg {
    fn empty() -> Leg {
        Leg {
            transport: Recorder::new(),
            llm: Default::default(),
            timeline: Timeline::default(),
            elapsed: Duration::ZERO,
            interrupted: false,
            replies: None,
        }
    }

    /// Adds a later leg of the same phase (a sweep's next step; its timeline counts
    /// from the same origin).
    fn add(&mut self, o: &Leg) {
        self.transport.add(&o.transport);
        self.llm[0].add(&o.llm[0]);
        self.llm[1].add(&o.llm[1]);
        self.timeline.add(&o.timeline);
        self.elapsed += o.elapsed;
        self.interrupted |= o.interrupted;
        // Spans of different legs count from different starts: a sum of legs has none.
        self.replies = None;
    }
}

async fn leg(
    env: &PhaseEnv,
    phase: &LoadPhase,
    mode: Mode,
    origin: Option<Instant>,
    cancel: &CancellationToken,
) -> Result<Leg, String> {
    // LLM-level recorders (a gateway and a direct one) are shared by workers modulo
    // LLM_SHARDS (each is locked only to record one reply), so their memory does not
    // grow with the peak concurrency.
    type Pair = Arc<Mutex<[LlmRecorder; 2]>>;
    let recorders: Arc<Mutex<Vec<Pair>>> = Arc::default();
    // One timeline for the leg: a second's bucket is shared by every worker.
    let timeline: Arc<Mutex<Timeline>> = Arc::default();
    let started = Instant::now();
    // Second 0 of the timeline: the leg's start, or the phase's for a sweep's steps.
    let origin = origin.unwrap_or(started);
    let env = Arc::new(env.clone());
    let span = Arc::new(ReplySpan::new());
    // Request `i` of the leg draws workload sample `i` (and, paired, goes direct when odd).
    let draws = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let workload = phase.workload.clone();
    let feature = phase.feature;
    let factory = {
        let recorders = Arc::clone(&recorders);
        let timeline = Arc::clone(&timeline);
        let env = Arc::clone(&env);
        let span = Arc::clone(&span);
        move |worker: usize| {
            let mine = {
                let mut all = recorders.lock().unwrap_or_else(|p| p.into_inner());
                if all.len() < LLM_SHARDS {
                    all.push(Arc::default());
                }
                Arc::clone(&all[worker % all.len()])
            };
            let (env, span) = (Arc::clone(&env), Arc::clone(&span));
            let (draws, workload) = (Arc::clone(&draws), workload.clone());
            let request = move || {
                let (env, mine, draws, workload) = (
                    Arc::clone(&env),
                    Arc::clone(&mine),
                    Arc::clone(&draws),
                    workload.clone(),
                );
                let span = Arc::clone(&span);
                async move {
                    let index = draws.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let cid = env.ids.next();
                    let drawn = workload
                        .as_deref()
                        .map(|w| super::workload::draw(w, feature, index, &cid));
                    let (route, slot) = match &env.paired {
                        Some(direct) if index % 2 == 1 => (direct, 1),
                        _ => (&env.route, 0),
                    };
                    let mut gaps: Vec<Duration> = Vec::new();
                    let t = route.send(&cid, drawn.as_ref(), &mut |g| gaps.push(g)).await;
                    let end = Instant::now();
                    span.record(end - started);
                    let timing = env.journal.as_ref().and_then(|j| j.take_timing(&cid));
                    // The direct route has no gateway in between: no overhead to read.
                    let timing = timing.filter(|_| slot == 0 && matches!(route, Route::Gateway { .. }));
                    mine.lock().unwrap_or_else(|p| p.into_inner())[slot].record(
                        &t,
                        end,
                        &gaps,
                        timing,
                        drawn.as_ref().map(|d| d.prompt_tokens),
                    );
                    let out = match t.error {
                        Some(e) => Outcome::error(e),
                        None => Outcome::ok(t.bytes),
                    };
                    match t.first_byte {
                        Some(fb) => out.first_byte_at(fb),
                        None => out,
                    }
                }
            };
            Timelined {
                request,
                timeline: Arc::clone(&timeline),
                origin,
            }
        }
    };
    let cfg = RunConfig {
        mode,
        timeout: Some(phase.timeout),
        stop_grace: Duration::from_secs(2),
    };
    let done = CancellationToken::new();
    let progress = tokio::spawn(progress(
        phase.name.clone(),
        Arc::clone(&timeline),
        (origin, started),
        done.clone(),
    ));
    let result = super::run(&cfg, &factory, cancel).await.map_err(|e| e.to_string());
    done.cancel();
    let _ = progress.await;
    let result = result?;
    let mut llm: [LlmRecorder; 2] = Default::default();
    for r in recorders.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let r = r.lock().unwrap_or_else(|p| p.into_inner());
        llm[0].add(&r[0]);
        llm[1].add(&r[1]);
    }
    let timeline = std::mem::take(&mut *timeline.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(Leg {
        transport: result.recorder,
        llm,
        timeline,
        elapsed: result.elapsed,
        interrupted: result.interrupted,
        replies: span.get(),
    })
}

/// A live progress line on stderr: rewritten in place on a terminal, a plain line every
/// ten seconds otherwise (and whenever `CI` is set), so CI logs stay readable.
/// `origin` is second 0 of the timeline's buckets (a sweep's start), `started` the
/// leg's own start.
async fn progress(
    name: String,
    timeline: Arc<Mutex<Timeline>>,
    (origin, started): (Instant, Instant),
    done: CancellationToken,
) {
    use std::io::{IsTerminal, Write};
    let tty = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
    let every = if tty {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(10)
    };
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = done.cancelled() => break,
        }
        let secs = origin.elapsed().as_secs() as usize;
        let ((requests, errors), last) = {
            let t = timeline.lock().unwrap_or_else(|p| p.into_inner());
            let last = secs.checked_sub(1).and_then(|i| t.point(i)).map(|(_, _, h)| h);
            (t.totals(), last.unwrap_or_else(histogram))
        };
        let t = started.elapsed().as_secs_f64();
        let p99 = if last.is_empty() {
            0.0
        } else {
            last.value_at_quantile(0.99) as f64 / 1000.0
        };
        let line = format!(
            "  {name}: {t:5.0}s  {requests} requests  {:.1} req/s  p99 {p99:.1} ms (last second)  {errors} errors",
            requests as f64 / t.max(1e-9)
        );
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }
    if tty {
        let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
    }
}

/// The arrivals of a phase, or of one shard of it: each shard draws its own random
/// gaps (the seed mixed with the shard index), so N shards add up to N independent
/// processes, not one process sent N times.
fn arrivals(a: ArrivalKind, shard: Option<(u32, u32)>) -> Arrivals {
    let seed = |s: u64| match shard {
        Some((i, total)) if total > 1 => s ^ u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        _ => s,
    };
    match a {
        ArrivalKind::Uniform => Arrivals::Uniform,
        ArrivalKind::Poisson { seed: s } => Arrivals::Poisson { seed: seed(s) },
        ArrivalKind::Gamma { burstiness, seed: s } => Arrivals::Gamma {
            burstiness,
            seed: seed(s),
        },
    }
}

/// This shard's part of `n` (the first `n % total` shards take one more).
fn shard_part(n: u64, shard: Option<(u32, u32)>) -> u64 {
    match shard {
        Some((i, total)) if total > 1 => n / u64::from(total) + u64::from(u64::from(i) <= n % u64::from(total)),
        _ => n,
    }
}

fn scale(rate: f64, shard: Option<(u32, u32)>) -> f64 {
    shard.map_or(rate, |(_, total)| rate / f64::from(total.max(1)))
}

/// The executor mode of a (non-sweep) phase for `duration`/`requests` bounds.
fn mode_of(phase: &LoadPhase, shard: Option<(u32, u32)>, duration: Option<Duration>, requests: Option<u64>) -> Mode {
    match &phase.mode {
        LoadMode::Closed { clients, think } => {
            // With fewer clients than shards the first `clients` shards share the
            // phase (clients and requests); the others send nothing for it.
            let part = |n: u64| match shard {
                Some((i, total)) => {
                    let active = total.min(u32::try_from(*clients).unwrap_or(u32::MAX).max(1));
                    if i > active {
                        0
                    } else {
                        shard_part(n, Some((i, active)))
                    }
                }
                None => n,
            };
            Mode::Closed(ClosedLoop {
                clients: part(*clients as u64) as usize,
                think: *think,
                duration,
                requests: requests.map(part),
            })
        }
        LoadMode::Open { profile, arrivals: a } => {
            let profile = match profile {
                RateProfile::Constant(r) => Profile::Constant { rate: scale(*r, shard) },
                RateProfile::Ramp { from, to, over } => Profile::Ramp {
                    from: scale(*from, shard),
                    to: scale(*to, shard),
                    over: *over,
                },
                RateProfile::Steps(s) => Profile::Steps(
                    s.iter()
                        .map(|(r, d)| Step {
                            rate: scale(*r, shard),
                            duration: *d,
                        })
                        .collect(),
                ),
            };
            let schedule = ScheduleSpec {
                profile,
                arrivals: arrivals(*a, shard),
                duration,
                requests: requests.map(|n| shard_part(n, shard)),
            };
            Mode::Open(OpenLoop {
                schedule,
                workers: phase.max_in_flight,
                backlog: BACKLOG,
            })
        }
        LoadMode::Sweep { .. } => Mode::Closed(ClosedLoop {
            clients: 1,
            think: Duration::ZERO,
            duration,
            requests: requests.map(|n| shard_part(n, shard)),
        }),
    }
}

fn describe(phase: &LoadPhase) -> (String, String) {
    let bound = match (phase.duration, phase.requests) {
        (Some(d), Some(n)) => format!(" for {} or {n} requests", humantime::format_duration(d)),
        (Some(d), None) => format!(" for {}", humantime::format_duration(d)),
        (None, Some(n)) => format!(" for {n} requests"),
        (None, None) => String::new(),
    };
    let arr = |a: &ArrivalKind| match a {
        ArrivalKind::Uniform => "uniform",
        ArrivalKind::Poisson { .. } => "poisson",
        ArrivalKind::Gamma { .. } => "gamma",
    };
    match &phase.mode {
        LoadMode::Closed { clients, think } => (
            "closed".into(),
            format!("{clients} clients, think {}{bound}", humantime::format_duration(*think)),
        ),
        LoadMode::Open { profile, arrivals: a } => {
            let p = match profile {
                RateProfile::Constant(r) => format!("{r}/s"),
                RateProfile::Ramp { from, to, over } => {
                    format!("ramp {from}->{to}/s over {}", humantime::format_duration(*over))
                }
                RateProfile::Steps(s) => format!(
                    "steps {}",
                    s.iter()
                        .map(|(r, d)| format!("{r}/s {}", humantime::format_duration(*d)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            ("open".into(), format!("{} {p}{bound}", arr(a)))
        }
        LoadMode::Sweep {
            rates,
            step,
            slo,
            arrivals: a,
        } => (
            "open".into(),
            format!(
                "sweep {} {:?}/s, {} each, SLO {slo}",
                arr(a),
                rates,
                humantime::format_duration(*step)
            ),
        ),
    }
}

pub use super::llm::{judge, metric_value};

/// A workload in words, for the report.
fn describe_workload(w: &crate::scenario::workload::Workload) -> String {
    let mut parts = Vec::new();
    if let Some(p) = w.preset {
        parts.push(format!("preset {p}"));
    }
    match &w.dataset {
        Some(d) => parts.push(format!("dataset {} ({} records)", d.path, d.records.len())),
        None => parts.push(format!("prompt tokens {}", w.prompt_tokens.describe())),
    }
    match &w.output_tokens {
        Some(o) => parts.push(format!("output tokens {}", o.describe())),
        None => parts.push("output tokens from the dataset".into()),
    }
    parts.push(format!("seed {}", w.seed));
    if w.force_output {
        parts.push("output length forced".into());
    }
    parts.join(", ")
}

fn report(phase: &LoadPhase, (model, route): (&str, &str), shard: Option<(u32, u32)>, leg: &Leg) -> PhaseReport {
    let Leg {
        transport,
        llm,
        timeline,
        elapsed,
        ..
    } = leg;
    let elapsed = *elapsed;
    let secs = elapsed.as_secs_f64().max(1e-9);
    let snap = transport.snapshot();
    let requests = snap.requests.max(1) as f64;
    let (mode, schedule) = describe(phase);
    let lag = LagCheck::judge(transport, lag_limit(transport));
    let paired = phase.compare_direct.then_some(&llm[1]);
    let workload = phase.workload.as_deref();
    PhaseReport {
        route: match (phase.compare_direct, route) {
            (true, _) => "gateway+direct".into(),
            (false, r) => r.to_owned(),
        },
        workload: workload.map(describe_workload),
        name: phase.name.clone(),
        feature: phase.feature.name.to_owned(),
        model: model.to_owned(),
        stream: phase.stream,
        mode,
        schedule,
        shard: shard.map(|(i, n)| format!("{i}/{n}")),
        elapsed_ms: elapsed.as_secs_f64() * 1000.0,
        rps: snap.requests as f64 / secs,
        error_rate: transport.errors().total() as f64 / requests,
        output_tokens_per_s: (llm[0].output_tokens() + llm[1].output_tokens()) as f64 / secs,
        valid: lag.valid,
        transport: snap,
        llm: llm[0].metrics(paired, workload.map(|w| w.counter.describe())),
        timeline: (0..timeline.len())
            .filter_map(|i| timeline.point(i).map(|p| (i, p)))
            .map(|(i, (r, e, h))| TimelinePoint {
                t_s: i as f64,
                requests: r,
                errors: e,
                latency: HistogramSummary::of(&h),
            })
            .collect(),
        sweep: Vec::new(),
        capacity_rps: None,
        capacity_lower_bound: false,
        thresholds: phase.thresholds.clone(),
        slo: None,
    }
}

/// Runs one phase: warm-up (discarded), then the measured part; a sweep runs its
/// rates in turn until the SLO breaks.
pub async fn run_phase(
    env: &PhaseEnv,
    phase: &LoadPhase,
    model: &str,
    cancel: &CancellationToken,
) -> Result<(PhaseReport, bool), String> {
    let measured = mode_of(phase, env.shard, phase.duration, phase.requests);
    if let Mode::Closed(ClosedLoop { clients: 0, .. }) = measured {
        // Fewer clients than shards: the other shards run them all, this one reports
        // an empty slice, so the merge still adds up to the configured clients.
        return Ok((
            report(phase, (model, env.route.name()), env.shard, &Leg::empty()),
            false,
        ));
    }
    if !phase.warmup.is_zero() {
        let mode = match &phase.mode {
            LoadMode::Sweep { rates, arrivals: a, .. } => Mode::Open(OpenLoop {
                schedule: ScheduleSpec {
                    profile: Profile::Constant { rate: rates[0] },
                    arrivals: arrivals(*a, None),
                    duration: Some(phase.warmup),
                    requests: None,
                },
                workers: phase.max_in_flight,
                backlog: BACKLOG,
            }),
            _ => mode_of(phase, env.shard, Some(phase.warmup), None),
        };
        leg(env, phase, mode, None, cancel).await?;
    }
    if let LoadMode::Sweep {
        rates,
        step,
        slo,
        arrivals: a,
    } = &phase.mode
    {
        let mut total = Leg::empty();
        let mut steps = Vec::new();
        let mut capacity = None;
        // Whether a step broke the SLO: without one, the capacity is only a lower
        // bound (every rate swept was met, or the sweep was interrupted).
        let mut broke = false;
        // Every step's timeline counts seconds from the first step's start.
        let origin = Instant::now();
        for rate in rates {
            let mode = Mode::Open(OpenLoop {
                schedule: ScheduleSpec {
                    profile: Profile::Constant { rate: *rate },
                    arrivals: arrivals(*a, None),
                    duration: Some(*step),
                    requests: None,
                },
                workers: phase.max_in_flight,
                backlog: BACKLOG,
            });
            let l = leg(env, phase, mode, Some(origin), cancel).await?;
            let mut r = report(phase, (model, env.route.name()), None, &l);
            // An SLO on throughput is judged on the rate achieved, as the table shows it.
            r.rps = achieved_rps(r.transport.requests, l.replies, l.elapsed);
            let (met, value) = judge(&r, slo);
            steps.push(SweepStep {
                rate: *rate,
                rps: r.rps,
                error_rate: r.error_rate,
                slo_value: value.unwrap_or(f64::NAN),
                met,
                latency_ms: StepPercentiles::of(&r.transport.latency),
                ttft_ms: r.llm.histograms.get("ttft").and_then(StepPercentiles::of),
            });
            total.add(&l);
            if l.interrupted {
                // A step cut short says nothing about its rate.
                break;
            }
            if !met {
                broke = true;
                break;
            }
            capacity = Some(*rate);
        }
        let mut r = report(phase, (model, env.route.name()), None, &total);
        r.sweep = steps;
        r.capacity_rps = capacity;
        r.slo = Some(slo_info(slo));
        r.capacity_lower_bound = !broke;
        return Ok((r, total.interrupted));
    }
    let l = leg(env, phase, measured, None, cancel).await?;
    Ok((report(phase, (model, env.route.name()), env.shard, &l), l.interrupted))
}

#[cfg(test)]
mod tests {
    use super::{ArrivalKind, Arrivals, Duration, Recorder, arrivals, lag_limit, shard_part};

    #[test]
    fn the_lag_limit_is_five_percent_of_the_median_between_1_and_10_ms() {
        let with = |ms: u64| {
            let mut r = Recorder::new();
            for _ in 0..10 {
                let d = Duration::from_millis(ms);
                r.record_response(d, d, None, 0, None);
            }
            lag_limit(&r)
        };
        assert_eq!(lag_limit(&Recorder::new()), Duration::from_millis(1));
        assert_eq!(with(2), Duration::from_millis(1));
        let l = with(80);
        assert!(
            l >= Duration::from_micros(3_990) && l <= Duration::from_micros(4_010),
            "{l:?}"
        );
        assert_eq!(with(5_000), Duration::from_millis(10));
    }

    #[test]
    fn shards_draw_their_own_random_gaps() {
        let seed = |a: Arrivals| match a {
            Arrivals::Poisson { seed } => seed,
            other => panic!("{other:?}"),
        };
        let p = ArrivalKind::Poisson { seed: 7 };
        assert_eq!(seed(arrivals(p, None)), 7);
        assert_eq!(seed(arrivals(p, Some((1, 1)))), 7);
        let shards: Vec<u64> = (1..=4).map(|i| seed(arrivals(p, Some((i, 4))))).collect();
        let mut distinct = shards.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 4, "{shards:?}");
        assert_eq!(
            shards,
            (1..=4).map(|i| seed(arrivals(p, Some((i, 4))))).collect::<Vec<_>>()
        );
    }

    #[test]
    fn shards_split_counts_exactly() {
        let total: u64 = (1..=4).map(|i| shard_part(1001, Some((i, 4)))).sum();
        assert_eq!(total, 1001);
        assert_eq!(shard_part(1001, Some((1, 4))), 251);
        assert_eq!(shard_part(1001, Some((4, 4))), 250);
        assert_eq!(shard_part(7, None), 7);
    }
}
