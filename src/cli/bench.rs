//! `gateprobe bench`: its clap arguments, their conversion into a typed
//! [`BenchConfig`], and running it with a runtime sized for load generation.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use http::header::{HeaderName, HeaderValue};

use super::commands::{interrupt_token, say};
use super::exit;
use crate::bench::{self, BenchConfig};
use crate::load::http::{ClientKind, HttpRequestSpec};
use crate::load::{Arrivals, ClosedLoop, DEFAULT_MAX_LAG, Mode, OpenLoop, ScheduleSpec};

/// The largest request body read from `--body`.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Duration when neither `-z` nor `-n` is given: a bench always ends by itself.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub(super) struct BenchArgs {
    /// Target URL (http:// only).
    #[arg(value_name = "URL")]
    url: String,
    /// Connections: concurrent clients (closed loop) or the in-flight cap (open loop).
    #[arg(short = 'c', long = "connections", value_name = "N", default_value_t = 50)]
    connections: usize,
    /// Run for this long, e.g. 10s, 1m (default 10s when -n is not given).
    #[arg(short = 'z', long = "duration", value_name = "DURATION", value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Send this many requests in total.
    #[arg(short = 'n', long = "requests", value_name = "N")]
    requests: Option<u64>,
    /// Open loop at this many requests per second; latency is measured from each
    /// request's intended send time. Without it: closed loop.
    #[arg(short = 'q', long = "rate", value_name = "RPS")]
    rate: Option<f64>,
    /// HTTP method.
    #[arg(short = 'm', long = "method", value_name = "METHOD", default_value = "GET")]
    method: String,
    /// Extra header `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    headers: Vec<String>,
    /// Request body from a file.
    #[arg(long, value_name = "FILE")]
    body: Option<PathBuf>,
    /// Print one JSON object instead of the summary.
    #[arg(long)]
    json: bool,
    /// Also write the histograms as an HdrHistogram interval log (.hlog) to FILE.
    #[arg(long, value_name = "FILE")]
    hlog: Option<PathBuf>,
    /// Per-request timeout.
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = parse_duration)]
    timeout: Duration,
    /// Open loop: arrival process.
    #[arg(long, value_enum, default_value_t = ArrivalArg::Uniform)]
    arrivals: ArrivalArg,
    /// Open loop, gamma arrivals: shape of the gap distribution (1 = Poisson, < 1 burstier).
    #[arg(long, value_name = "B", default_value_t = 1.0)]
    burstiness: f64,
    /// Open loop, random arrivals: PRNG seed.
    #[arg(long, value_name = "N", default_value_t = 1)]
    seed: u64,
    /// Open loop: requests due while every connection is busy wait in a backlog of
    /// this many (default: one second of schedule), then are dropped.
    #[arg(long, value_name = "N")]
    backlog: Option<usize>,
    /// Open loop: a schedule-lag p99 above this marks the run invalid (exit 3).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    max_lag: Option<Duration>,
    /// Closed loop: pause between a response and the client's next request.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    think: Option<Duration>,
    /// Runtime threads for the clients (the open-loop pacer has a thread of its own).
    #[arg(short = 't', long = "threads", value_name = "N", default_value_t = 1)]
    threads: usize,
    /// HTTP client implementation, for comparisons.
    #[arg(long, value_enum, default_value_t = ClientArg::Wire, hide = true)]
    client: ClientArg,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ArrivalArg {
    /// Evenly spaced.
    Uniform,
    /// Poisson process.
    Poisson,
    /// Gamma-distributed gaps (see --burstiness).
    Gamma,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ClientArg {
    Wire,
    Lean,
    Reqwest,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration like 10s or 1m: {e}"))
}

struct Settings {
    config: BenchConfig,
    json: bool,
    hlog: Option<PathBuf>,
    threads: usize,
}

impl BenchArgs {
    fn into_settings(self) -> Result<Settings, String> {
        let url: http::Uri = self
            .url
            .parse()
            .map_err(|e| format!("invalid URL `{}`: {e}", crate::redact::display_url(&self.url)))?;
        if url.scheme_str() != Some("http") || url.authority().is_none() {
            return Err(format!(
                "`{}`: only http://host[:port]/path URLs are supported",
                crate::redact::display_url(&self.url)
            ));
        }
        let method: http::Method = self
            .method
            .parse()
            .map_err(|_| format!("invalid method `{}`", self.method))?;
        let mut headers = Vec::with_capacity(self.headers.len());
        // Header values are often credentials: errors name the header, never its value.
        for (i, h) in self.headers.iter().enumerate() {
            let (name, value) = h
                .split_once(':')
                .ok_or_else(|| format!("-H #{}: a header is `Name: value` (no colon found)", i + 1))?;
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| format!("-H #{}: invalid header name", i + 1))?;
            let mut value = HeaderValue::from_str(value.trim())
                .map_err(|_| format!("-H #{}: invalid value for `{name}`", i + 1))?;
            value.set_sensitive(true);
            headers.push((name, value));
        }
        let body = match &self.body {
            Some(p) => crate::files::read_bounded(p, MAX_BODY_BYTES, crate::files::Accept::Any)
                .map_err(|e| format!("cannot read body file {}: {e}", p.display()))?
                .into(),
            None => bytes::Bytes::new(),
        };
        if self.connections == 0 {
            return Err("-c must be at least 1".into());
        }
        if self.threads == 0 {
            return Err("-t must be at least 1".into());
        }
        if self.requests == Some(0) {
            return Err("-n must be at least 1".into());
        }
        let duration = match (self.duration, self.requests) {
            (None, None) => Some(DEFAULT_DURATION),
            (d, _) => d,
        };
        let mode = match self.rate {
            Some(rate) => {
                if !(rate.is_finite() && rate > 0.0) {
                    return Err(format!("-q must be a positive rate, got {rate}"));
                }
                let arrivals = match self.arrivals {
                    ArrivalArg::Uniform => Arrivals::Uniform,
                    ArrivalArg::Poisson => Arrivals::Poisson { seed: self.seed },
                    ArrivalArg::Gamma => Arrivals::Gamma {
                        burstiness: self.burstiness,
                        seed: self.seed,
                    },
                };
                let schedule = ScheduleSpec {
                    duration,
                    requests: self.requests,
                    ..ScheduleSpec::constant(rate).with_arrivals(arrivals)
                };
                schedule.build().map_err(|e| e.to_string())?;
                Mode::Open(OpenLoop {
                    schedule,
                    workers: self.connections,
                    backlog: self.backlog.unwrap_or((rate.ceil() as usize).clamp(1_000, 1_000_000)),
                })
            }
            None => Mode::Closed(ClosedLoop {
                clients: self.connections,
                think: self.think.unwrap_or_default(),
                duration,
                requests: self.requests,
            }),
        };
        Ok(Settings {
            config: BenchConfig {
                request: HttpRequestSpec {
                    url,
                    method,
                    headers,
                    body,
                },
                client: match self.client {
                    ClientArg::Wire => ClientKind::Wire,
                    ClientArg::Lean => ClientKind::Lean,
                    ClientArg::Reqwest => ClientKind::Reqwest,
                },
                mode,
                timeout: Some(self.timeout),
                // Ctrl-C must stop within 2 s: a second of grace for in-flight requests.
                stop_grace: self.timeout.min(Duration::from_secs(1)),
                max_lag: self.max_lag.unwrap_or(DEFAULT_MAX_LAG),
            },
            json: self.json,
            hlog: self.hlog,
            threads: self.threads,
        })
    }
}

fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    // One thread: a current-thread runtime, no work-stealing overhead; the target
    // usually shares the machine and needs the other cores.
    if threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}

pub(super) fn bench_cmd(a: BenchArgs) -> u8 {
    let s = match a.into_settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let rt = match runtime(s.threads) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::HARNESS;
        }
    };
    let result = rt.block_on(async {
        let cancel = interrupt_token();
        bench::run(&s.config, &cancel).await
    });
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::HARNESS;
        }
    };
    if let Some(path) = &s.hlog {
        let written = std::fs::File::create(path)
            .and_then(|f| bench::write_hlog(&report, std::time::SystemTime::now(), std::io::BufWriter::new(f)));
        if let Err(e) = written {
            eprintln!("error: cannot write {}: {e}", path.display());
            return exit::HARNESS;
        }
    }
    if s.json {
        say(serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        say(bench::render_text(&report).trim_end());
    }
    if report.snapshot.requests > 0 && report.snapshot.ok == 0 {
        eprintln!("error: no request succeeded");
        return exit::HARNESS;
    }
    if !report.valid {
        return exit::HARNESS;
    }
    exit::OK
}
