//! `gateprobe bench`: an ad-hoc HTTP load run against one URL, like oha or wrk, on the
//! load engine ([`crate::load`]) with the lean HTTP client ([`crate::load::http`]).
//! The CLI builds a [`BenchConfig`]; [`run`] returns a [`BenchReport`] (plain data),
//! which [`render_text`] prints for people and serde writes as JSON.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::load::http::{ClientKind, HttpFactory, HttpRequestSpec, HttpTarget, TargetError};
use crate::load::{self, LagCheck, LoadError, Mode, RunConfig};
use crate::metrics::hlog::IntervalLog;
use crate::metrics::{DecodeError, HistogramSummary, Recorder, Snapshot};

/// Version of the JSON report's shape.
pub const SCHEMA_VERSION: u32 = 1;

/// A validated bench run.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// What to send.
    pub request: HttpRequestSpec,
    /// Which HTTP client.
    pub client: ClientKind,
    /// Open loop (`-q`) or closed loop (`-c` clients).
    pub mode: Mode,
    /// Per-request timeout.
    pub timeout: Option<Duration>,
    /// In-flight requests may finish for this long once the run is over or cancelled.
    pub stop_grace: Duration,
    /// Open loop: schedule lag p99 above this marks the run invalid.
    pub max_lag: Duration,
}

/// A bench run that could not happen.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The target is unusable.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The engine refused the settings or failed.
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// The result of a bench run. `requests`, `rps` and `latency_ms` (`p50`, `p90`,
/// `p99`, `max`) are a contract for scripts; the snapshot's fields are flattened in,
/// so the report also parses as a [`Snapshot`] for merging.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct BenchReport {
    /// Shape version of this report.
    pub schema_version: u32,
    /// The URL.
    pub url: String,
    /// The method.
    pub method: String,
    /// `open` or `closed`.
    pub mode: &'static str,
    /// Connections (workers).
    pub connections: usize,
    /// Open loop: the requested rate.
    pub target_rps: Option<f64>,
    /// Seconds from start to the last response.
    pub elapsed_s: f64,
    /// Responses per second: requests that got an HTTP response, a success or not.
    /// Requests that got none (a refused connection, a timeout) are counted in
    /// `requests` and `errors`, never as a rate.
    pub rps: f64,
    /// Requests that got an HTTP response.
    pub responses: u64,
    /// Open loop: instants the schedule yielded.
    pub scheduled: Option<u64>,
    /// Open loop: due instants still waiting when the run stopped, never sent.
    pub unsent: u64,
    /// Requests in flight when the run was stopped, not counted.
    pub abandoned: u64,
    /// Stopped by Ctrl-C or SIGTERM.
    pub interrupted: bool,
    /// Open loop: whether the generator kept its schedule.
    pub schedule_check: Option<LagCheck>,
    /// `false` when the schedule check failed.
    pub valid: bool,
    /// Counters and histograms.
    #[serde(flatten)]
    pub snapshot: Snapshot,
}

/// Runs the bench until its bound or `cancel`.
pub async fn run(cfg: &BenchConfig, cancel: &CancellationToken) -> Result<BenchReport, BenchError> {
    let target = HttpTarget::resolve(&cfg.request).await?;
    let factory = HttpFactory::new(target, cfg.client)?;
    let run_cfg = RunConfig {
        mode: cfg.mode.clone(),
        timeout: cfg.timeout,
        stop_grace: cfg.stop_grace,
    };
    let result = load::run(&run_cfg, &factory, cancel).await?;
    let (mode, connections, target_rps) = match &cfg.mode {
        Mode::Open(o) => ("open", o.workers, constant_rate(&o.schedule.profile)),
        Mode::Closed(c) => ("closed", c.clients, None),
    };
    let check = matches!(cfg.mode, Mode::Open(_)).then(|| LagCheck::judge(&result.recorder, cfg.max_lag));
    let snapshot = result.recorder.snapshot();
    let responses = result.recorder.responses();
    let secs = result.elapsed.as_secs_f64();
    Ok(BenchReport {
        schema_version: SCHEMA_VERSION,
        url: crate::redact::display_url(&cfg.request.url.to_string()),
        method: cfg.request.method.to_string(),
        mode,
        connections,
        target_rps,
        elapsed_s: secs,
        rps: if secs > 0.0 { responses as f64 / secs } else { 0.0 },
        responses,
        scheduled: result.scheduled,
        unsent: result.unsent,
        abandoned: result.abandoned,
        interrupted: result.interrupted,
        valid: check.is_none_or(|c| c.valid),
        schedule_check: check,
        snapshot,
    })
}

fn constant_rate(p: &load::Profile) -> Option<f64> {
    match p {
        load::Profile::Constant { rate } => Some(*rate),
        _ => None,
    }
}

fn hist_line(out: &mut String, name: &str, h: &HistogramSummary) {
    if h.count == 0 {
        return;
    }
    let _ = writeln!(
        out,
        "  {name:<11} p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  mean {:.3} ms",
        h.p50, h.p90, h.p99, h.p99_9, h.max, h.mean
    );
}

/// Groups digits by thousands: 1234567 -> "1,234,567".
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The human summary.
pub fn render_text(r: &BenchReport) -> String {
    let s = &r.snapshot;
    let mut out = String::new();
    let how = match r.target_rps {
        Some(q) => format!("open loop at {} req/s", thousands(q.round() as u64)),
        None if r.mode == "open" => "open loop".to_owned(),
        None => "closed loop".to_owned(),
    };
    let _ = writeln!(
        out,
        "gateprobe bench {} {} · {how}, {} connections{}",
        r.method,
        r.url,
        r.connections,
        if r.interrupted { " · interrupted" } else { "" }
    );
    let unanswered = s.requests.saturating_sub(r.responses);
    let _ = writeln!(
        out,
        "  requests    {} in {:.2}s, {} req/s answered, {} ok, {:.1} MB read{}",
        thousands(s.requests),
        r.elapsed_s,
        thousands(r.rps.round() as u64),
        thousands(s.ok),
        s.bytes as f64 / 1e6,
        if unanswered > 0 {
            format!(", {} got no response", thousands(unanswered))
        } else {
            String::new()
        }
    );
    let corrected = if r.mode == "open" {
        " (from intended send time)"
    } else {
        ""
    };
    let _ = writeln!(out, "  latency{corrected}:");
    hist_line(&mut out, "end-to-end", &s.latency);
    hist_line(&mut out, "service", &s.service);
    hist_line(&mut out, "first byte", &s.ttfb);
    if s.errors.is_empty() {
        let _ = writeln!(out, "  errors      none");
    } else {
        let list: Vec<String> = s.errors.iter().map(|(k, v)| format!("{k} {}", thousands(*v))).collect();
        let _ = writeln!(out, "  errors      {}", list.join(", "));
    }
    if let Some(check) = &r.schedule_check {
        let _ = writeln!(
            out,
            "  schedule    {} scheduled, {} late (waited for a free connection), {} dropped, {} unsent",
            thousands(r.scheduled.unwrap_or(0)),
            thousands(s.late),
            thousands(s.dropped),
            thousands(r.unsent)
        );
        hist_line(&mut out, "lag", &s.lag);
        if check.valid {
            let _ = writeln!(
                out,
                "  generator   kept its schedule (lag p99 {:.3} ms <= {:.3} ms)",
                check.p99_ms, check.threshold_ms
            );
        } else {
            let _ = writeln!(
                out,
                "  INVALID     the generator fell behind its schedule: lag p99 {:.3} ms > {:.3} ms; latencies include its own delay",
                check.p99_ms, check.threshold_ms
            );
        }
    }
    if r.abandoned > 0 {
        let _ = writeln!(
            out,
            "  abandoned   {} requests in flight at the stop",
            thousands(r.abandoned)
        );
    }
    out
}

/// Writes the run's histograms as an HdrHistogram interval log (one interval covering
/// the whole run, tagged `latency`, `service`, `ttfb` and, open loop, `lag`) for
/// HistogramLogAnalyzer. `end` is when the run finished.
pub fn write_hlog<W: std::io::Write>(r: &BenchReport, end: std::time::SystemTime, out: W) -> std::io::Result<W> {
    let rec = Recorder::from_snapshot(&r.snapshot).map_err(|e: DecodeError| std::io::Error::other(e.to_string()))?;
    let length = Duration::try_from_secs_f64(r.elapsed_s).unwrap_or_default();
    let start = end.checked_sub(length).unwrap_or(end);
    let mut log = IntervalLog::new(out, start)?;
    for (tag, h) in [
        ("latency", rec.latency()),
        ("service", rec.service()),
        ("ttfb", rec.ttfb()),
        ("lag", rec.lag()),
    ] {
        if !h.is_empty() {
            log.write(Some(tag), Duration::ZERO, length, h)?;
        }
    }
    log.finish()
}
