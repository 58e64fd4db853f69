//! `gateprobe mock`: a scenario's mock backends on their own, for a gateway configured
//! by hand. On a terminal they serve in the foreground until Ctrl-C; where stdout is
//! not a terminal (`eval "$(gateprobe mock …)"`, a pipe) they serve in the background,
//! as ssh-agent does, so the command returns once they listen and the shell gets
//! `GATEPROBE_MOCK_PID` to stop them with.

use std::io::{BufRead, BufReader, IsTerminal};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use clap::Args;

use super::commands::{finish_serving, open_scenario, say};
use super::exit;
use crate::scenario::Scenario;
use crate::server::ServerHost;

/// The line a background mock prints once every backend listens; the parent reads up
/// to it and passes on the rest.
const READY: &str = "# gateprobe mock: ready";

/// How long the parent waits for a background mock to listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Args)]
pub(super) struct MockArgs {
    /// Scenario or mock profile file, or a built-in one (`gateprobe init --list`).
    #[arg(value_name = "SCENARIO|PROFILE")]
    scenario: PathBuf,
    /// Threads serving the mocks.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: u16,
    /// Serve in the foreground until Ctrl-C or SIGTERM, even when stdout is not a
    /// terminal (a container, a process supervisor).
    #[arg(long, conflicts_with_all = ["background", "env_only"])]
    foreground: bool,
    /// Serve in the background and return once the mocks listen, printing their
    /// settings and `GATEPROBE_MOCK_PID`; the default when stdout is not a terminal.
    #[arg(long, conflicts_with = "env_only")]
    background: bool,
    /// Stop serving after this long (e.g. `30m`); default: until stopped.
    #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
    serve_for: Option<Duration>,
    /// Print the settings of the backends that have a fixed `port:` and exit, starting
    /// nothing (what a gateway configured before the run needs).
    #[arg(long)]
    env_only: bool,
    /// Internal: the background process itself, with the log its stderr goes to.
    #[arg(long, hide = true, value_name = "LOG")]
    serve_detached: Option<PathBuf>,
}

pub(super) fn mock_cmd(a: MockArgs) -> u8 {
    if a.serve_detached.is_some() {
        close_inherited_fds();
    }
    let s = match open_scenario(&a.scenario) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if s.backends.is_empty() {
        eprintln!(
            "error: {} has no `backends:`, so there is no mock to start\n  = help: mock profiles list backends only, e.g. `gateprobe mock three-providers`",
            s.path.display()
        );
        return exit::INVALID_SCENARIO;
    }
    if a.env_only {
        return env_only(&s);
    }
    if let Some(log) = &a.serve_detached {
        let code = serve(&s, usize::from(a.threads), a.serve_for, true);
        // A clean stop leaves no empty log behind.
        if std::fs::metadata(log).is_ok_and(|m| m.len() == 0) {
            let _ = std::fs::remove_file(log);
        }
        return code;
    }
    if a.background || (!a.foreground && !std::io::stdout().is_terminal()) {
        return start_in_background(&a);
    }
    serve(&s, usize::from(a.threads), a.serve_for, false)
}

/// The settings of the backends with a fixed port, nothing started.
fn env_only(s: &Scenario) -> u8 {
    let mut printed = false;
    for b in &s.backends {
        match b.fixed_url() {
            Some(url) => {
                for line in crate::mock::env_lines(b, &url) {
                    say(line);
                }
                printed = true;
            }
            None => say(format_args!(
                "# {}: no fixed port, its address is known once it listens (`gateprobe mock` without --env-only)",
                b.name
            )),
        }
    }
    if printed {
        exit::OK
    } else {
        eprintln!(
            "error: no backend of {} has a fixed `port:`\n  = help: start the mocks to learn their addresses: eval \"$(gateprobe mock {})\"",
            s.path.display(),
            s.path.display()
        );
        exit::INVALID_SCENARIO
    }
}

/// Serves the mocks in this process until a signal (or `serve_for`).
fn serve(s: &Scenario, threads: usize, serve_for: Option<Duration>, detached: bool) -> u8 {
    let result = (|| -> Result<(), String> {
        let host = ServerHost::new(threads).map_err(|e| e.to_string())?;
        let journal = std::sync::Arc::new(crate::mock::journal::Journal::new(std::time::Instant::now(), 10_000));
        // Nobody reads a standalone mock's journal: keep it in load mode (no copies).
        journal.set_light(true);
        let mocks = crate::mock::start_all(&host, &s.backends, &journal).map_err(|e| e.to_string())?;
        for (m, b) in mocks.iter().zip(&s.backends) {
            for line in crate::mock::env_lines(b, &m.server.url()) {
                say(line);
            }
        }
        if let Some(pki) = crate::mock::pki(&mocks) {
            for line in pki.env_lines(crate::mock::shell_quote) {
                say(line);
            }
        }
        if detached {
            say(READY);
        } else {
            eprintln!("gateprobe mock: serving until Ctrl-C");
        }
        let rt = super::commands::runtime().ok_or("no runtime")?;
        rt.block_on(async {
            match serve_for {
                Some(d) => {
                    tokio::select! {
                        () = super::commands::wait_for_signal() => {}
                        () = tokio::time::sleep(d) => {}
                    }
                }
                None => super::commands::wait_for_signal().await,
            }
        });
        drop(mocks);
        Ok(())
    })();
    finish_serving(result)
}

/// Closes every descriptor above stderr that the background server inherited: it
/// outlives the shell that started it, and must not hold that shell's pipes, locks or
/// sockets open (a CI job waiting for its output pipe to close would wait for it).
fn close_inherited_fds() {
    #[cfg(target_os = "linux")]
    {
        let fds: Vec<std::os::fd::RawFd> = std::fs::read_dir("/proc/self/fd")
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .filter(|&fd| fd > 2)
                    .collect()
            })
            .unwrap_or_default();
        // The directory's own descriptor is among them, already closed: EBADF.
        for fd in fds {
            let _ = nix::unistd::close(fd);
        }
    }
}

/// Starts this program again as a background mock server, passes on what it prints
/// once it listens, and returns.
fn start_in_background(a: &MockArgs) -> u8 {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!(
                "error: cannot find the gateprobe executable to start in the background: {e}\n  = help: run it in the foreground with --foreground"
            );
            return exit::HARNESS;
        }
    };
    let log = log_path();
    let log_file = match std::fs::File::create(&log) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: cannot create the background mock's log {}: {e}", log.display());
            return exit::HARNESS;
        }
    };
    let mut cmd = Command::new(exe);
    cmd.arg("mock")
        .arg(&a.scenario)
        .arg("--threads")
        .arg(a.threads.to_string())
        .arg("--serve-detached")
        .arg(&log);
    if let Some(d) = a.serve_for {
        cmd.arg("--for").arg(humantime::format_duration(d).to_string());
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log_file);
    // Its own process group: a later Ctrl-C in the shell does not reach it.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot start the background mock: {e}");
            return exit::HARNESS;
        }
    };
    let Some(stdout) = child.stdout.take() else {
        return exit::HARNESS;
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let ready = line == READY;
            if tx.send(line).is_err() || ready {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + START_TIMEOUT;
    let mut lines = Vec::new();
    let ready = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l == READY => break true,
            Ok(l) => lines.push(l),
            Err(_) => break false,
        }
    };
    if !ready {
        // It failed to start (or took too long): stop it and show why.
        let _ = child.kill();
        let status = child.wait().ok();
        let why = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        eprint!("{why}");
        if why.is_empty() {
            eprintln!(
                "error: the background mock did not start within {}s",
                START_TIMEOUT.as_secs()
            );
        }
        return status
            .and_then(|s| s.code())
            .and_then(|c| u8::try_from(c).ok())
            .filter(|&c| c != exit::OK)
            .unwrap_or(exit::HARNESS);
    }
    for l in lines {
        say(l);
    }
    let pid = child.id();
    say(format_args!("export GATEPROBE_MOCK_PID={pid}"));
    eprintln!(
        "gateprobe mock: serving in the background as pid {pid} (log: {}); stop it with: kill $GATEPROBE_MOCK_PID",
        log.display()
    );
    exit::OK
}

/// A log file for a background mock's stderr, unique to this start.
fn log_path() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("gateprobe-mock-{}-{nanos:x}.log", std::process::id()))
}
