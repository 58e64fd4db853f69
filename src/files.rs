//! Files gateprobe reads because someone named them (a scenario, a file a scenario
//! names, a report to merge) and files it writes (reports, logs, configs), handled the
//! same careful way everywhere:
//!
//! - reads are bounded before anything is allocated, and a file a scenario names must
//!   be a regular file (a named pipe would hang the read, `/dev/zero` never ends);
//! - writes never follow a symbolic link planted at the name: reports and configs go
//!   through a temporary file created exclusively (`O_CREAT | O_EXCL`) and renamed,
//!   logs are opened with `O_NOFOLLOW`, and a temporary file is removed when writing
//!   it fails (a full disk);
//! - file names made from names in a scenario or report are reduced to safe ones:
//!   no directory part, no `..`, no hidden file, and two names never collide.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::libc;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening or reading failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Not a regular file (a named pipe, a device, a directory, a socket).
    #[error("it is {0}, not a regular file")]
    NotRegular(&'static str),
    /// Larger than the limit.
    #[error("{}", too_large(*size, *limit))]
    TooLarge {
        /// Its size, when the file has one to tell (a regular file).
        size: Option<u64>,
        /// The limit in bytes.
        limit: usize,
    },
}

fn too_large(size: Option<u64>, limit: usize) -> String {
    let mib = |n: usize| {
        if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
            format!("{} MiB ({n}-byte)", n >> 20)
        } else {
            format!("{n}-byte")
        }
    };
    match size {
        Some(s) => format!("it is {s} bytes, over the {} limit", mib(limit)),
        None => format!("it is over the {} limit", mib(limit)),
    }
}

/// What kind of file a read accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accept {
    /// Only a regular file: anything a scenario or a report names. Checked before
    /// reading, without blocking on a named pipe.
    Regular,
    /// Also a pipe or device (a path given on the command line: `/dev/stdin`).
    Any,
}

/// What a non-regular file is, in words.
fn kind_of(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a named pipe"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Reads at most `limit` bytes of `path`, refusing a longer file without reading past
/// the limit (nor allocating for it).
pub fn read_bounded(path: &Path, limit: usize, accept: Accept) -> Result<Vec<u8>, ReadError> {
    let mut opts = OpenOptions::new();
    opts.read(true);
    if accept == Accept::Regular {
        // Opening a named pipe for reading blocks until a writer comes; with
        // O_NONBLOCK it returns at once, and the type check below refuses it.
        opts.custom_flags(libc::O_NONBLOCK);
    }
    let file = opts.open(path)?;
    let meta = file.metadata()?;
    if accept == Accept::Regular && !meta.is_file() {
        return Err(ReadError::NotRegular(kind_of(meta.file_type())));
    }
    let size = meta.is_file().then_some(meta.len());
    if size.is_some_and(|s| s > limit as u64) {
        return Err(ReadError::TooLarge { size, limit });
    }
    let mut bytes = Vec::with_capacity(size.map_or(8192, |s| s as usize).min(limit));
    file.take(limit as u64 + 1).read_to_end(&mut bytes)?;
    if bytes.len() > limit {
        return Err(ReadError::TooLarge { size, limit });
    }
    Ok(bytes)
}

/// Writes `bytes` to `path` via a temporary file in the same directory and a rename,
/// so a killed run never leaves a half-written file behind, and a symbolic link
/// planted at `path` or at the temporary name is replaced, never followed. The
/// temporary file is removed when writing fails.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(
        ".{name}.{}.{nanos:x}{:x}.tmp",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        // create_new: O_CREAT | O_EXCL, which fails on any existing name, a symbolic
        // link included, instead of following it.
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        // rename(2) replaces whatever is at `path`, a link included, without
        // following it.
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(path.to_owned())
}

/// Creates (or truncates) a log file, refusing to write through a symbolic link at
/// its name.
pub fn create_log(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                std::io::Error::other(format!(
                    "{} is a symbolic link; gateprobe does not write through one",
                    path.display()
                ))
            } else {
                e
            }
        })
}

/// Longest name kept by [`safe_names`] (characters, before a suffix).
const MAX_NAME: usize = 100;

/// Names safe as file or directory names, one per given name, in order: characters
/// other than ASCII letters, digits, `-`, `_` and `.` become `_`, a name that is empty
/// or starts with `.` (hidden, `..`) gets a leading `_`, long names are cut, and a
/// name already taken (case aside, and `reserved` too) gets `-2`, `-3`, ... so two
/// scenarios (or phases) never write to the same place.
pub fn safe_names<'a>(names: impl IntoIterator<Item = &'a str>, suffix: &str, reserved: &[&str]) -> Vec<String> {
    let mut taken: BTreeSet<String> = reserved.iter().map(|r| r.to_ascii_lowercase()).collect();
    names
        .into_iter()
        .map(|n| {
            let mut base: String = n
                .chars()
                .take(MAX_NAME)
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            if base.is_empty() || base.starts_with('.') {
                base.insert(0, '_');
            }
            let mut name = format!("{base}{suffix}");
            let mut k = 2;
            while !taken.insert(name.to_ascii_lowercase()) {
                name = format!("{base}-{k}{suffix}");
                k += 1;
            }
            name
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_and_apart() {
        let got = safe_names(["../../x", "/etc/passwd", "a", "A", ".hidden", "", "a"], "", &[]);
        assert_eq!(got, ["_.._.._x", "_etc_passwd", "a", "A-2", "_.hidden", "_", "a-3"]);
        assert_eq!(safe_names(["chat"], ".hlog", &["chat.hlog"]), ["chat-2.hlog"]);
    }

    #[test]
    fn reads_are_bounded_and_regular_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"0123456789").unwrap();
        assert_eq!(read_bounded(&f, 10, Accept::Regular).unwrap(), b"0123456789");
        let e = read_bounded(&f, 9, Accept::Regular).unwrap_err();
        assert_eq!(e.to_string(), "it is 10 bytes, over the 9-byte limit");
        let e = read_bounded(dir.path(), 9, Accept::Regular).unwrap_err();
        assert_eq!(e.to_string(), "it is a directory, not a regular file");
        if Path::new("/dev/zero").exists() {
            let e = read_bounded(Path::new("/dev/zero"), 1 << 20, Accept::Regular).unwrap_err();
            assert_eq!(e.to_string(), "it is a device, not a regular file");
            let e = read_bounded(Path::new("/dev/zero"), 1 << 20, Accept::Any).unwrap_err();
            assert_eq!(e.to_string(), "it is over the 1 MiB (1048576-byte) limit");
        }
    }

    #[test]
    fn a_named_pipe_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            return;
        }
        let e = read_bounded(&fifo, 1024, Accept::Regular).unwrap_err();
        assert_eq!(e.to_string(), "it is a named pipe, not a regular file");
    }

    #[test]
    fn writes_replace_planted_links_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"keep").unwrap();
        let report = dir.path().join("report.json");
        std::os::unix::fs::symlink(&target, &report).unwrap();
        write_atomic(&report, b"new").unwrap();
        assert_eq!(
            std::fs::read(&target).unwrap(),
            b"keep",
            "the link's target is untouched"
        );
        assert_eq!(std::fs::read(&report).unwrap(), b"new");
        assert!(!std::fs::symlink_metadata(&report).unwrap().file_type().is_symlink());

        let log = dir.path().join("gateway.stdout.log");
        std::os::unix::fs::symlink(&target, &log).unwrap();
        let e = create_log(&log).unwrap_err();
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");

        // A write that fails after the temporary file was written (here the rename,
        // onto a directory; a full disk fails the same way) leaves nothing behind.
        let occupied = dir.path().join("occupied");
        std::fs::create_dir(&occupied).unwrap();
        std::fs::write(occupied.join("x"), b"x").unwrap();
        assert!(write_atomic(&occupied, b"x").is_err());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(left.is_empty());
    }
}
