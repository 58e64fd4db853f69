//! Launched gateways: gateprobe starts the gateway process itself (after its mocks, so
//! the command can name their addresses and the config written for them), waits for
//! its health URL, and stops it when the run ends, however it ends: the process runs
//! in a process group of its own, and dropping the [`Launched`] guard sends SIGTERM to
//! the group and to every other process the gateway started ([`tree`]: also those
//! that left the group), then SIGKILL after a grace period. Its stdout and stderr are
//! captured, line by line through the redactor and bounded ([`capture`]), into files
//! in the report directory.

mod capture;
mod tree;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio_util::sync::CancellationToken;

use crate::redact::Redactor;
pub use capture::{MAX_LINE, MAX_LOG};
pub use tree::MARKER;

/// How long a stopped gateway gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

/// Why a launch failed.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The program could not be started.
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        /// Program name.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Files for the launch could not be written.
    #[error("cannot prepare the launch: {0}")]
    Io(#[from] std::io::Error),
    /// The process ended before it was ready.
    #[error("the gateway exited before it was ready ({status}); its output is in {logs}")]
    Exited {
        /// Exit status.
        status: String,
        /// Where its output is.
        logs: String,
    },
    /// The ready URL did not answer 2xx in time.
    #[error("the gateway was not ready after {secs}s ({url} last answered: {last}); its output is in {logs}")]
    NotReady {
        /// Deadline in seconds.
        secs: u64,
        /// Ready URL.
        url: String,
        /// Last status or error.
        last: String,
        /// Where its output is.
        logs: String,
    },
    /// The run was interrupted while waiting.
    #[error("interrupted while waiting for the gateway")]
    Interrupted,
}

/// What to start.
#[derive(Clone, Debug)]
pub struct LaunchSpec {
    /// Program and arguments, rendered.
    pub command: Vec<String>,
    /// Added environment, rendered.
    pub env: Vec<(String, String)>,
    /// Where stdout/stderr go.
    pub dir: PathBuf,
}

/// A running gateway process; dropping it stops the process group.
#[derive(Debug)]
pub struct Launched {
    child: Option<Child>,
    pid: u32,
    /// The value of [`MARKER`] in its environment.
    marker: String,
    /// Files with its captured output.
    pub logs: Vec<PathBuf>,
    capture_done: Vec<mpsc::Receiver<()>>,
    exit: Option<String>,
}

/// Starts `spec` in a new process group, output captured through `redactor`.
pub fn start(spec: &LaunchSpec, redactor: &Redactor) -> Result<Launched, LaunchError> {
    let Some((program, args)) = spec.command.split_first() else {
        return Err(LaunchError::Spawn {
            program: String::new(),
            source: std::io::Error::other("empty command"),
        });
    };
    std::fs::create_dir_all(&spec.dir)?;
    // Orphans of what the gateway starts come to gateprobe, which reaps them.
    tree::become_subreaper();
    let marker = tree::marker_value();
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .env(MARKER, &marker)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: Ctrl-C in the terminal reaches gateprobe only, and gateprobe
        // can stop the gateway together with every process it started.
        .process_group(0);
    let mut child = cmd.spawn().map_err(|source| LaunchError::Spawn {
        program: program.clone(),
        source,
    })?;
    let pid = child.id();
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    // The guard first: should a log file or a capture thread fail below, dropping it
    // stops the process group instead of leaving the gateway running unwatched.
    let mut launched = Launched {
        child: Some(child),
        pid,
        marker,
        logs: Vec::new(),
        capture_done: Vec::new(),
        exit: None,
    };
    let streams: [(&str, Option<Box<dyn Read + Send>>); 2] = [
        (
            "gateway.stdout.log",
            stdout.map(|s| Box::new(s) as Box<dyn Read + Send>),
        ),
        (
            "gateway.stderr.log",
            stderr.map(|s| Box::new(s) as Box<dyn Read + Send>),
        ),
    ];
    for (name, stream) in streams {
        let Some(stream) = stream else { continue };
        let path = spec.dir.join(name);
        // Never through a link planted at the name.
        let file = crate::files::create_log(&path)?;
        let (tx, rx) = mpsc::channel();
        let redactor = redactor.clone();
        std::thread::Builder::new()
            .name(format!("gateprobe-{name}"))
            .spawn(move || {
                capture::copy(stream, file, &redactor);
                let _ = tx.send(());
            })?;
        launched.logs.push(path);
        launched.capture_done.push(rx);
    }
    Ok(launched)
}

impl Launched {
    /// Process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// How it ended, once it has.
    pub fn exit(&self) -> Option<&str> {
        self.exit.as_deref()
    }

    fn logs_text(&self) -> String {
        self.logs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" and ")
    }

    /// Whether it exited on its own, and how.
    fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                // What it started and left behind goes too (a wrapper shell's
                // children, say); stop() no longer sees a child to stop.
                self.kill_the_rest(std::collections::BTreeSet::new());
                let s = status.to_string();
                self.exit = Some(format!("exited on its own: {s}"));
                Some(s)
            }
            _ => None,
        }
    }

    /// SIGKILL to every process the launch left, until none is left (a process may
    /// start another while it is being stopped), then reaps them.
    /// `signalled`: processes stopped earlier, to reap as well.
    fn kill_the_rest(&self, mut signalled: std::collections::BTreeSet<i32>) {
        for _ in 0..10 {
            let left = tree::members(self.pid, &self.marker);
            tree::signal(self.pid, &left, Signal::SIGKILL);
            if left.is_empty() {
                break;
            }
            signalled.extend(left);
            std::thread::sleep(Duration::from_millis(20));
        }
        tree::reap(signalled, Instant::now() + Duration::from_secs(1));
    }

    /// Whether it exited because its port was taken: the free port gateprobe picked
    /// was bound by another process between the pick and the gateway's own bind. Reads
    /// the captured output once the capture has finished.
    pub fn lost_its_port(&mut self) -> bool {
        self.stop();
        self.logs.iter().any(|p| {
            crate::files::read_bounded(p, MAX_LOG as usize + 4096, crate::files::Accept::Regular).is_ok_and(|t| {
                let t = String::from_utf8_lossy(&t);
                let t = t.to_ascii_lowercase();
                t.contains("address already in use") || t.contains("eaddrinuse")
            })
        })
    }

    /// Polls `url` until it answers 2xx, the process exits, `timeout` passes, or the
    /// run is cancelled. Returns the time it took.
    pub async fn wait_ready(
        &mut self,
        url: &str,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<Duration, LaunchError> {
        let start = Instant::now();
        let client = crate::adapter::http_client(Duration::from_secs(2), &crate::adapter::Tls::default(), false)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut last = "no answer yet".to_owned();
        loop {
            if let Some(status) = self.exited() {
                return Err(LaunchError::Exited {
                    status,
                    logs: self.logs_text(),
                });
            }
            if start.elapsed() >= timeout {
                return Err(LaunchError::NotReady {
                    secs: timeout.as_secs(),
                    url: url.to_owned(),
                    last,
                    logs: self.logs_text(),
                });
            }
            match client.get(url).timeout(Duration::from_secs(2)).send().await {
                Ok(r) if r.status().is_success() => return Ok(start.elapsed()),
                Ok(r) => last = r.status().to_string(),
                Err(e) => last = crate::adapter::TransportError::from_reqwest(e).kind.into_owned(),
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
                () = cancel.cancelled() => return Err(LaunchError::Interrupted),
            }
        }
    }

    /// Stops the gateway and everything it started: SIGTERM, then SIGKILL after the
    /// grace period (or once the gateway itself is gone). Waits (bounded) for the
    /// output capture to finish.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let first = tree::members(self.pid, &self.marker);
            tree::signal(self.pid, &first, Signal::SIGTERM);
            let deadline = Instant::now() + GRACE;
            let status = loop {
                match child.try_wait() {
                    Ok(Some(s)) => break Some(s),
                    Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                    _ => break None,
                }
            };
            // Whatever it left behind goes too, in its group or not.
            self.kill_the_rest(first);
            let status = status.or_else(|| child.wait().ok());
            self.exit = Some(match status {
                Some(s) => format!("stopped by gateprobe ({s})"),
                None => "stopped by gateprobe (SIGKILL)".into(),
            });
        }
        for rx in self.capture_done.drain(..) {
            let _ = rx.recv_timeout(Duration::from_secs(2));
        }
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A free TCP port on 127.0.0.1 for the gateway to listen on.
pub fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(l.local_addr()?.port())
}

/// `path` relative to `base` when it is inside it, for reports.
pub fn relative(path: &Path, base: &Path) -> String {
    path.strip_prefix(base).unwrap_or(path).display().to_string()
}
