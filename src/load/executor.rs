//! Executors: run a [`ClientFactory`]'s clients open loop (requests at the schedule's
//! intended instants) or closed loop (each client sends its next request when the
//! previous one ends), and merge the workers' recorders.
//!
//! Both modes share one shape: one task per worker in a [`JoinSet`], each owning its
//! client and recording into one of a few shared [`Recorder`]s, each stoppable through
//! a oneshot of its own (cheap to poll, unlike a shared token, which matters at 100k
//! requests per second). A run ends when its bound is reached (duration, request
//! count, end of schedule); in-flight requests then get `stop_grace` to finish before
//! they are abandoned, and the same happens at once when the cancellation token fires,
//! so Ctrl-C returns within the grace period and still yields everything recorded so
//! far.
//!
//! Open loop separates two delays that peer tools mix up. The *pacer*, an OS thread of
//! its own (tokio's timer has 1 ms granularity, too coarse for 25k req/s), wakes at
//! each intended instant and hands it to an idle worker. Its own lateness is the
//! schedule lag. If no worker is idle (every connection busy: the target is slow), the
//! instant waits in a bounded backlog and is counted `late`, or is `dropped` when the
//! backlog is full; either way the wait shows in the corrected latency, measured from
//! the intended instant, and not in the lag, which stays the generator's own.

use std::collections::VecDeque;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::schedule::{ScheduleError, ScheduleSpec};
use super::{Client, ClientFactory, Outcome};
use crate::metrics::{ErrorClass, Recorder};

/// How requests are issued.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    /// By schedule.
    Open(OpenLoop),
    /// By a fixed number of clients.
    Closed(ClosedLoop),
}

/// Open loop: requests at the schedule's instants, whatever the target's speed.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenLoop {
    /// The intended instants.
    pub schedule: ScheduleSpec,
    /// Workers, each with one request in flight at most: the in-flight cap.
    pub workers: usize,
    /// Instants due while every worker is busy wait here (counted `late`); beyond
    /// this many they are `dropped`. 0 drops at once.
    pub backlog: usize,
}

/// Closed loop: `clients` clients, each sending its next request when its previous
/// one has ended (plus `think`).
#[derive(Clone, Debug, PartialEq)]
pub struct ClosedLoop {
    /// Concurrent clients.
    pub clients: usize,
    /// Pause between a response and the client's next request.
    pub think: Duration,
    /// Send no request after this long.
    pub duration: Option<Duration>,
    /// Send at most this many requests in total.
    pub requests: Option<u64>,
}

/// A run's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct RunConfig {
    /// Open or closed loop.
    pub mode: Mode,
    /// A request taking longer is abandoned and counted as `timeout`.
    pub timeout: Option<Duration>,
    /// Once the run is cancelled, how long in-flight requests may finish. At its
    /// natural end they get the request `timeout` (or this grace, if longer): a run
    /// never cuts off its slowest requests.
    pub stop_grace: Duration,
}

/// A run that could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The schedule is invalid.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// No workers or clients.
    #[error("at least one worker is needed")]
    NoWorkers,
    /// A closed loop with neither a duration nor a request count.
    #[error("a closed-loop run needs a duration or a request count")]
    Unbounded,
    /// The pacer thread could not be started.
    #[error("cannot start the pacer thread: {0}")]
    Pacer(std::io::Error),
    /// A worker task panicked.
    #[error("a load worker failed: {0}")]
    Worker(String),
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// All workers' measurements, merged.
    pub recorder: Recorder,
    /// From the start to the last worker's end.
    pub elapsed: Duration,
    /// Open loop: instants the schedule yielded before the run ended.
    pub scheduled: Option<u64>,
    /// Open loop: instants still in the backlog when the run was stopped, never sent.
    pub unsent: u64,
    /// Requests in flight when the run was stopped, not recorded.
    pub abandoned: u64,
    /// The cancellation token fired.
    pub interrupted: bool,
}

/// Runs `cfg` with clients from `factory` until its bound or `cancel`.
pub async fn run<F: ClientFactory>(
    cfg: &RunConfig,
    factory: &F,
    cancel: &CancellationToken,
) -> Result<RunResult, LoadError> {
    match &cfg.mode {
        Mode::Closed(c) => closed(c, cfg, factory, cancel).await,
        Mode::Open(o) => open(o, cfg, factory, cancel).await,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking worker is reported through the JoinSet; its half-updated queue
    // state is still consistent (single pushes and pops), so keep going.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A worker's request timeout without a timer per request. Registering and removing
/// a timer for every request costs ~5-8% of the generator's CPU at 100k req/s, so the
/// worker keeps one timer armed at an *earlier* request's deadline: when it fires, the
/// current request is checked against its own deadline and the timer re-armed. A
/// request never times out early or late, and the timer is re-armed about once per
/// timeout period instead of once per request.
struct Watchdog {
    timeout: Option<Duration>,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl Watchdog {
    fn new(timeout: Option<Duration>) -> Self {
        let first = Instant::now() + timeout.unwrap_or(Duration::from_secs(86_400));
        Watchdog {
            timeout,
            timer: Box::pin(tokio::time::sleep_until(first.into())),
        }
    }

    async fn call<C: Client>(&mut self, client: &mut C, sent: Instant) -> Outcome {
        let Some(timeout) = self.timeout else {
            return client.call().await;
        };
        let deadline = sent + timeout;
        let mut call = pin!(client.call());
        loop {
            tokio::select! {
                biased;
                outcome = &mut call => return outcome,
                () = &mut self.timer => {
                    if Instant::now() >= deadline {
                        self.timer.as_mut().reset((Instant::now() + timeout).into());
                        return Outcome::error(ErrorClass::Timeout);
                    }
                    self.timer.as_mut().reset(deadline.into());
                }
            }
        }
    }
}

/// Recorders the workers share modulo [`SHARDS`], each locked only to record a request
/// that has ended. One per worker made memory grow with the concurrency: a recorder's
/// histograms take ~100 KiB apiece once they have seen latencies of seconds, which was
/// 300 KiB a stream, 1.5 GiB at 5,000 closed-loop clients.
struct Shards(Vec<Mutex<Recorder>>);

/// More shards than runtime threads, so workers on different threads rarely meet.
const SHARDS: usize = 16;

impl Shards {
    fn new(workers: usize) -> Arc<Self> {
        Arc::new(Shards(
            (0..workers.clamp(1, SHARDS))
                .map(|_| Mutex::new(Recorder::new()))
                .collect(),
        ))
    }

    fn of(&self, worker: usize) -> &Mutex<Recorder> {
        &self.0[worker % self.0.len()]
    }

    fn merged(&self) -> Recorder {
        let mut all = Recorder::new();
        for shard in &self.0 {
            all.add(&lock(shard));
        }
        all
    }
}

/// Performs one request and records it. `intended` is when it should have been sent.
async fn measure<C: Client>(client: &mut C, watchdog: &mut Watchdog, intended: Instant, rec: &Mutex<Recorder>) {
    let sent = Instant::now();
    let outcome = watchdog.call(client, sent).await;
    let end = Instant::now();
    client.finished(intended, end, outcome.error);
    let mut rec = lock(rec);
    match outcome.error {
        Some(ErrorClass::Timeout) => {
            // What a timed-out request cost is at least this: it counts in the
            // latency (a stall longer than the timeout still shows in the p99).
            rec.record_timeout(end.saturating_duration_since(intended));
        }
        Some(class) if !class.has_response() => rec.record_error(class, outcome.bytes),
        error => rec.record_response(
            end.saturating_duration_since(intended),
            end.saturating_duration_since(sent),
            outcome.first_byte.map(|f| f.saturating_duration_since(sent)),
            outcome.bytes,
            error,
        ),
    }
}

/// What a worker task returns: whether it was stopped mid-request.
type WorkerEnd = bool;

/// Waits for the workers, stopping them `grace` after `cancel` fires or `hard_stop`
/// passes, and merges their recorders.
async fn collect(
    set: &mut JoinSet<WorkerEnd>,
    shards: &Shards,
    mut stops: Vec<oneshot::Sender<()>>,
    cancel: &CancellationToken,
    mut hard_stop: Option<Instant>,
    grace: Duration,
    on_cancel: &dyn Fn(),
) -> Result<(Recorder, u64, bool), LoadError> {
    let mut abandoned = 0;
    let mut interrupted = false;
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    loop {
        tokio::select! {
            joined = set.join_next() => match joined {
                None => break,
                Some(Ok(in_flight)) => abandoned += u64::from(in_flight),
                Some(Err(e)) => {
                    stops.clear();
                    set.abort_all();
                    return Err(LoadError::Worker(e.to_string()));
                }
            },
            () = cancel.cancelled(), if !interrupted => {
                interrupted = true;
                on_cancel();
                let by = Instant::now() + grace;
                hard_stop = Some(hard_stop.map_or(by, |h| h.min(by)));
            }
            () = tokio::time::sleep_until(hard_stop.unwrap_or(far).into()), if hard_stop.is_some() => {
                // Dropping a worker's sender completes its stop receiver.
                stops.clear();
                hard_stop = None;
            }
        }
    }
    Ok((shards.merged(), abandoned, interrupted))
}

struct ClosedShared {
    issued: AtomicU64,
    limit: Option<u64>,
    deadline: Option<Instant>,
    stopping: AtomicBool,
    think: Duration,
    timeout: Option<Duration>,
}

async fn closed<F: ClientFactory>(
    c: &ClosedLoop,
    cfg: &RunConfig,
    factory: &F,
    cancel: &CancellationToken,
) -> Result<RunResult, LoadError> {
    if c.clients == 0 {
        return Err(LoadError::NoWorkers);
    }
    if c.duration.is_none() && c.requests.is_none() {
        return Err(LoadError::Unbounded);
    }
    let start = Instant::now();
    let deadline = c.duration.map(|d| start + d);
    let shared = Arc::new(ClosedShared {
        issued: AtomicU64::new(0),
        limit: c.requests,
        deadline,
        stopping: AtomicBool::new(false),
        think: c.think,
        timeout: cfg.timeout,
    });
    let mut set = JoinSet::new();
    let shards = Shards::new(c.clients);
    let mut stops = Vec::with_capacity(c.clients);
    for w in 0..c.clients {
        let (tx, rx) = oneshot::channel();
        stops.push(tx);
        set.spawn(closed_worker(
            w,
            factory.client(w),
            Arc::clone(&shared),
            Arc::clone(&shards),
            rx,
        ));
    }
    let hard_stop = deadline.map(|d| d + drain(cfg));
    let on_cancel = || shared.stopping.store(true, Ordering::Relaxed);
    let (mut recorder, abandoned, interrupted) =
        collect(&mut set, &shards, stops, cancel, hard_stop, cfg.stop_grace, &on_cancel).await?;
    if !interrupted {
        // Still running after the drain, which outlasts the request timeout.
        recorder.record_abandoned(abandoned);
    }
    Ok(RunResult {
        recorder,
        elapsed: start.elapsed(),
        scheduled: None,
        unsent: 0,
        abandoned,
        interrupted,
    })
}

async fn closed_worker<C: Client>(
    id: usize,
    mut client: C,
    shared: Arc<ClosedShared>,
    shards: Arc<Shards>,
    mut stop: oneshot::Receiver<()>,
) -> WorkerEnd {
    let rec = shards.of(id);
    let mut watchdog = Watchdog::new(shared.timeout);
    let mut in_flight = false;
    {
        let work = async {
            loop {
                if shared.stopping.load(Ordering::Relaxed) {
                    break;
                }
                if let Some(n) = shared.limit
                    && shared.issued.fetch_add(1, Ordering::Relaxed) >= n
                {
                    break;
                }
                let now = Instant::now();
                if shared.deadline.is_some_and(|d| now >= d) {
                    break;
                }
                in_flight = true;
                // Closed loop: the request is meant to go now, so intended = sent.
                measure(&mut client, &mut watchdog, now, rec).await;
                in_flight = false;
                if !shared.think.is_zero() {
                    tokio::time::sleep(shared.think).await;
                }
            }
        };
        tokio::select! {
            biased;
            _ = &mut stop => {}
            () = work => {}
        }
    }
    in_flight
}

/// Who is idle and what waits, shared by the pacer and the open-loop workers. One
/// short lock per dispatch and one per completion; never held across an await.
struct OpenState {
    idle: Vec<usize>,
    backlog: VecDeque<Instant>,
}

struct OpenShared {
    state: Mutex<OpenState>,
    timeout: Option<Duration>,
}

/// What the pacer did.
#[derive(Default)]
struct PacerEnd {
    scheduled: u64,
    dropped: u64,
}

async fn open<F: ClientFactory>(
    o: &OpenLoop,
    cfg: &RunConfig,
    factory: &F,
    cancel: &CancellationToken,
) -> Result<RunResult, LoadError> {
    if o.workers == 0 {
        return Err(LoadError::NoWorkers);
    }
    let schedule = o.schedule.build()?;
    let shared = Arc::new(OpenShared {
        // Every worker starts idle, so the first instants go straight to a worker.
        state: Mutex::new(OpenState {
            idle: (0..o.workers).rev().collect(),
            backlog: VecDeque::with_capacity(o.backlog.min(65_536)),
        }),
        timeout: cfg.timeout,
    });
    let mut set = JoinSet::new();
    let shards = Shards::new(o.workers);
    let mut stops = Vec::with_capacity(o.workers);
    let mut tickets = Vec::with_capacity(o.workers);
    for w in 0..o.workers {
        let (tx, rx) = oneshot::channel();
        stops.push(tx);
        // Capacity 1: a worker is handed an instant only while it is idle.
        let (ttx, trx) = mpsc::channel(1);
        tickets.push(ttx);
        set.spawn(open_worker(
            w,
            factory.client(w),
            Arc::clone(&shared),
            Arc::clone(&shards),
            trx,
            rx,
        ));
    }
    let (pacer_stop, pacer_stop_rx) = std::sync::mpsc::channel::<()>();
    let (done_tx, mut done_rx) = oneshot::channel::<PacerEnd>();
    let start = Instant::now();
    let pacer_shared = Arc::clone(&shared);
    let backlog = o.backlog;
    let pacer = std::thread::Builder::new()
        .name("gateprobe-pacer".into())
        .spawn(move || {
            let end = pace(schedule, start, &pacer_shared, tickets, &pacer_stop_rx, backlog);
            let _ = done_tx.send(end);
        })
        .map_err(LoadError::Pacer)?;

    // The run's bound is the schedule's: wait for the pacer, then give the workers
    // the grace period; a cancellation stops the pacer at once.
    let mut pacer_end = None;
    let mut interrupted = false;
    tokio::select! {
        end = &mut done_rx => pacer_end = end.ok(),
        () = cancel.cancelled() => {
            interrupted = true;
            let _ = pacer_stop.send(());
        }
    }
    if pacer_end.is_none() {
        pacer_end = (&mut done_rx).await.ok();
    }
    // The thread has sent its result, so it is at its last instruction; without a
    // result it ended in a panic, and the run has no schedule to report on.
    if pacer.join().is_err() || pacer_end.is_none() {
        stops.clear();
        set.abort_all();
        return Err(LoadError::Worker("the pacer thread failed".into()));
    }
    let pacer_end = pacer_end.unwrap_or_default();
    let grace = if interrupted { cfg.stop_grace } else { drain(cfg) };
    let hard_stop = Some(Instant::now() + grace);
    let (mut recorder, abandoned, cancelled_late) =
        collect(&mut set, &shards, stops, cancel, hard_stop, cfg.stop_grace, &|| ()).await?;
    let elapsed = start.elapsed();
    let unsent = lock(&shared.state).backlog.len() as u64;
    let natural_end = !(interrupted || cancelled_late);
    // At a natural end, instants the schedule yielded that no worker got to before
    // the drain ended were never sent, like those dropped for a full backlog; requests
    // still running then had outlasted the timeout budget.
    let dropped = pacer_end.dropped + if natural_end { unsent } else { 0 };
    for _ in 0..dropped {
        recorder.record_dropped();
    }
    if natural_end {
        recorder.record_abandoned(abandoned);
    }
    Ok(RunResult {
        recorder,
        elapsed,
        scheduled: Some(pacer_end.scheduled),
        unsent,
        abandoned,
        interrupted: interrupted || cancelled_late,
    })
}

/// How long in-flight requests may finish after the schedule's natural end: their
/// timeout, and a little, so the watchdog ends them rather than the hard stop.
fn drain(cfg: &RunConfig) -> Duration {
    cfg.timeout
        .map_or(cfg.stop_grace, |t| t + Duration::from_millis(200))
        .max(cfg.stop_grace)
}

/// Shortest time between two pacer wake-ups. Below it (above ~5k req/s) the pacer
/// dispatches every instant that has come due in one go instead of waking for each:
/// one wake-up of the pacer and of the runtime per batch rather than per request,
/// which more than halves the generator's CPU at 25k req/s. The price is a schedule
/// lag of up to this quantum, well inside the 1 ms validity threshold; at lower rates
/// the gaps are longer than the quantum and every instant gets its own wake-up.
pub const PACER_QUANTUM: Duration = Duration::from_micros(200);

/// The pacer loop, on its own thread: sleep until instants come due, then dispatch
/// them to idle workers (or the backlog).
fn pace(
    mut schedule: super::Schedule,
    start: Instant,
    shared: &OpenShared,
    tickets: Vec<mpsc::Sender<Instant>>,
    stop: &std::sync::mpsc::Receiver<()>,
    backlog: usize,
) -> PacerEnd {
    let mut end = PacerEnd::default();
    let mut next = schedule.next().map(|o| start + o);
    let mut last_wake = start;
    while let Some(first) = next {
        let wake_at = first.max(last_wake + PACER_QUANTUM);
        let now = Instant::now();
        if wake_at > now {
            // A timed wait on the stop channel is the sleep: precise to the kernel's
            // timer slack, and a stop wakes it at once however far the next instant.
            match stop.recv_timeout(wake_at - now) {
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                _ => return end,
            }
        } else if let Ok(()) | Err(std::sync::mpsc::TryRecvError::Disconnected) = stop.try_recv() {
            // Behind schedule (catching up without sleeping): still honour a stop.
            return end;
        }
        let now = Instant::now();
        last_wake = now;
        let mut st = lock(&shared.state);
        // Everything due by now, oldest first; a long catch-up is cut into slices so
        // the workers' completions are not locked out.
        let mut batch = 0;
        while let Some(due) = next.filter(|d| *d <= now && batch < 1024) {
            batch += 1;
            end.scheduled += 1;
            if let Some(w) = st.idle.pop() {
                if tickets[w].try_send(due).is_err() {
                    end.dropped += 1;
                }
            } else if st.backlog.len() < backlog {
                st.backlog.push_back(due);
            } else {
                end.dropped += 1;
            }
            next = schedule.next().map(|o| start + o);
        }
    }
    // Dropping the senders (on return) lets idle workers see the end of the run.
    end
}

async fn open_worker<C: Client>(
    id: usize,
    mut client: C,
    shared: Arc<OpenShared>,
    shards: Arc<Shards>,
    mut tickets: mpsc::Receiver<Instant>,
    mut stop: oneshot::Receiver<()>,
) -> WorkerEnd {
    let rec = shards.of(id);
    let mut watchdog = Watchdog::new(shared.timeout);
    let mut in_flight = false;
    {
        let work = async {
            // (intended instant, when this worker could first have sent it)
            let mut next: Option<(Instant, Instant)> = None;
            loop {
                let (due, eligible) = match next.take() {
                    Some(x) => x,
                    None => match tickets.recv().await {
                        Some(due) => (due, due),
                        None => break,
                    },
                };
                let now = Instant::now();
                // The lag is the generator's lateness only: for a backlog instant it
                // starts when this worker became free, not at the intended time.
                lock(rec).record_lag(now.saturating_duration_since(due.max(eligible)));
                in_flight = true;
                measure(&mut client, &mut watchdog, due, rec).await;
                in_flight = false;
                let mut st = lock(&shared.state);
                if let Some(d) = st.backlog.pop_front() {
                    drop(st);
                    lock(rec).record_late();
                    next = Some((d, Instant::now()));
                } else {
                    st.idle.push(id);
                }
            }
        };
        tokio::select! {
            biased;
            _ = &mut stop => {}
            () = work => {}
        }
    }
    in_flight
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{Arrivals, Profile};

    fn open_loop(rate: f64, requests: u64) -> Mode {
        Mode::Open(OpenLoop {
            schedule: ScheduleSpec {
                profile: Profile::Constant { rate },
                arrivals: Arrivals::Uniform,
                duration: None,
                requests: Some(requests),
            },
            workers: 16,
            backlog: 64,
        })
    }

    /// Request `slow` (0-based, in send order) takes `long`; the others 1 ms.
    fn sleeper(
        slow: u64,
        long: Duration,
    ) -> impl Fn(usize) -> Box<dyn FnMut() -> futures_util::future::BoxFuture<'static, Outcome> + Send> {
        let n = Arc::new(AtomicU64::new(0));
        move |_| {
            let n = Arc::clone(&n);
            Box::new(move || {
                let i = n.fetch_add(1, Ordering::Relaxed);
                Box::pin(async move {
                    tokio::time::sleep(if i == slow { long } else { Duration::from_millis(1) }).await;
                    Outcome::ok(1)
                })
            })
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_slowest_request_at_the_end_is_waited_for_not_cut_off() {
        // The last request outlasts the stop grace but not its timeout: it is measured.
        let cfg = RunConfig {
            mode: open_loop(100.0, 10),
            timeout: Some(Duration::from_secs(5)),
            stop_grace: Duration::from_millis(300),
        };
        let r = run(
            &cfg,
            &sleeper(9, Duration::from_millis(1_500)),
            &CancellationToken::new(),
        )
        .await
        .expect("runs");
        let s = r.recorder.snapshot();
        assert_eq!((s.requests, s.ok, r.abandoned, r.unsent), (10, 10, 0, 0));
        assert!(s.latency.max >= 1_500.0, "{}", s.latency.max);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn timeouts_count_as_errors_with_their_latency_and_reach_the_client() {
        struct Stuck(Arc<Mutex<Vec<Option<ErrorClass>>>>);
        impl Client for Stuck {
            async fn call(&mut self) -> Outcome {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Outcome::ok(1)
            }
            fn finished(&mut self, intended: Instant, end: Instant, error: Option<ErrorClass>) {
                assert!(end >= intended);
                lock(&self.0).push(error);
            }
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let factory = {
            let seen = Arc::clone(&seen);
            move |_| Stuck(Arc::clone(&seen))
        };
        let cfg = RunConfig {
            mode: Mode::Closed(ClosedLoop {
                clients: 1,
                think: Duration::ZERO,
                duration: None,
                requests: Some(3),
            }),
            timeout: Some(Duration::from_millis(200)),
            stop_grace: Duration::from_millis(100),
        };
        let r = run(&cfg, &factory, &CancellationToken::new()).await.expect("runs");
        let s = r.recorder.snapshot();
        assert_eq!(s.errors.get("timeout"), Some(&3), "{:?}", s.errors);
        assert_eq!(s.latency.count, 3);
        assert!((200.0..400.0).contains(&s.latency.p50), "{}", s.latency.p50);
        assert_eq!(*lock(&seen), [Some(ErrorClass::Timeout); 3]);
    }
}
