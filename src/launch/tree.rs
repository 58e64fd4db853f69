//! Every process a launched gateway started, wherever it went: a child that leaves
//! the process group (`setsid`, a daemonising double fork) is not reached by
//! `killpg`. Each launch plants a marker in the gateway's environment
//! (`GATEPROBE_LAUNCH=<id>`), which every descendant inherits; stopping the gateway
//! signals every process that carries it (found in `/proc/<pid>/environ`), and every
//! process below the gateway in the parent tree, until none is left. gateprobe is the
//! child subreaper of what it launched (`PR_SET_CHILD_SUBREAPER`), so an orphaned
//! descendant is re-parented to it rather than to init, and is reaped after it stops.
//!
//! A `kill -9` of gateprobe itself leaves no chance to run any of this; the marker
//! still names what is left behind (`grep -l GATEPROBE_LAUNCH= /proc/*/environ`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

/// The environment variable that marks a launch's processes.
pub const MARKER: &str = "GATEPROBE_LAUNCH";

/// The most bytes of one process's environment read.
const MAX_ENVIRON: usize = 4 * 1024 * 1024;

/// A fresh marker value, unique to this launch.
pub fn marker_value() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{nanos:x}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Makes this process the subreaper of its descendants (Linux; elsewhere a no-op).
pub fn become_subreaper() {
    let _ = nix::sys::prctl::set_child_subreaper(true);
}

/// The processes of a launch: those carrying `NAME=value` in their environment and
/// those below `root` in the parent tree; gateprobe itself excluded.
pub fn members(root: u32, value: &str) -> BTreeSet<i32> {
    let me = i32::try_from(std::process::id()).unwrap_or(0);
    let mark = format!("{MARKER}={value}");
    let mut parent: BTreeMap<i32, i32> = BTreeMap::new();
    let mut out = BTreeSet::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Some(ppid) = ppid(&e.path()) {
            parent.insert(pid, ppid);
        }
        let environ = crate::files::read_bounded(&e.path().join("environ"), MAX_ENVIRON, crate::files::Accept::Any);
        if environ.is_ok_and(|env| env.split(|&b| b == 0).any(|kv| kv == mark.as_bytes())) {
            out.insert(pid);
        }
    }
    let root = i32::try_from(root).unwrap_or(0);
    // Below the root, to any depth (a descendant that cleared its environment).
    let mut grew = true;
    while grew {
        grew = false;
        for (&pid, &pp) in &parent {
            if (pp == root || out.contains(&pp)) && pid != root && pid != me && out.insert(pid) {
                grew = true;
            }
        }
    }
    out.remove(&root);
    out
}

/// The parent pid from `/proc/<pid>/stat` (the field after the parenthesised name,
/// which may itself hold spaces and parentheses).
fn ppid(proc_dir: &Path) -> Option<i32> {
    let stat = crate::files::read_bounded(&proc_dir.join("stat"), 64 * 1024, crate::files::Accept::Any).ok()?;
    let stat = String::from_utf8_lossy(&stat);
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Sends `signal` to the group `pgid` and to each of `pids`.
pub fn signal(pgid: u32, pids: &BTreeSet<i32>, sig: Signal) {
    let _ = killpg(Pid::from_raw(i32::try_from(pgid).unwrap_or(i32::MAX)), sig);
    for &p in pids {
        let _ = kill(Pid::from_raw(p), sig);
    }
}

/// Reaps those of `pids` that are gateprobe's children by now (re-parented orphans),
/// waiting until `deadline` for the ones still dying, so none stays a zombie. The
/// others (not gateprobe's children) are their parents' to reap.
pub fn reap(mut pids: BTreeSet<i32>, deadline: std::time::Instant) {
    use nix::sys::wait::WaitStatus;
    loop {
        pids.retain(|&p| {
            matches!(
                waitpid(Pid::from_raw(p), Some(WaitPidFlag::WNOHANG)),
                Ok(WaitStatus::StillAlive)
            )
        });
        if pids.is_empty() || std::time::Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parent_pids_are_read_past_odd_names() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stat"), "42 (a) b (c)) S 7 42 42 0 -1").unwrap();
        assert_eq!(super::ppid(dir.path()), Some(7));
    }
}
