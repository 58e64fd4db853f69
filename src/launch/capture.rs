//! A launched gateway's stdout and stderr, copied line by line through the redactor
//! into a log file, bounded whatever the gateway prints: a line longer than
//! [`MAX_LINE`] is cut (and marked) and the rest of it read and dropped, and past
//! [`MAX_LOG`] bytes the output is still read (so the gateway never blocks on a full
//! pipe) but no longer written.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};

use crate::redact::Redactor;

/// The longest line written as it is (bytes).
pub const MAX_LINE: usize = 64 * 1024;
/// The most bytes written to one log file.
pub const MAX_LOG: u64 = 16 * 1024 * 1024;

/// Copies `stream` into `file` until it ends.
pub fn copy(stream: impl Read, mut file: File, redactor: &Redactor) {
    let mut log = Log {
        file: &mut file,
        redactor,
        written: 0,
        full: false,
    };
    let mut reader = BufReader::with_capacity(MAX_LINE, stream);
    let mut line: Vec<u8> = Vec::new();
    // Inside a line that was cut: drop until its end.
    let mut dropping = false;
    loop {
        let buf = match reader.fill_buf() {
            Ok([]) => break,
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let (piece, ends) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let consumed = piece.len();
        if dropping {
            dropping = !ends;
        } else if line.len() + piece.len() > MAX_LINE {
            line.extend_from_slice(&piece[..MAX_LINE - line.len()]);
            log.cut(&line);
            line.clear();
            dropping = !ends;
        } else {
            line.extend_from_slice(piece);
            if ends {
                log.line(&line);
                line.clear();
            }
        }
        reader.consume(consumed);
    }
    if !line.is_empty() {
        log.line(&line);
    }
    let _ = file.flush();
}

struct Log<'a> {
    file: &'a mut File,
    redactor: &'a Redactor,
    written: u64,
    full: bool,
}

impl Log<'_> {
    fn write(&mut self, text: &str) {
        if self.full {
            return;
        }
        if self.written + text.len() as u64 > MAX_LOG {
            self.full = true;
            let _ = writeln!(
                self.file,
                "[gateprobe: this log reached {} MiB; the rest of the output was read and dropped]",
                MAX_LOG >> 20
            );
            return;
        }
        self.written += text.len() as u64;
        let _ = self.file.write_all(text.as_bytes());
    }

    fn line(&mut self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let redacted = self.redactor.redact(&text).into_owned();
        self.write(&redacted);
    }

    /// A line cut at [`MAX_LINE`]: marked with `…` before redaction, so the start of a
    /// secret cut there is redacted too.
    fn cut(&mut self, bytes: &[u8]) {
        let text = format!("{}…", String::from_utf8_lossy(bytes));
        let redacted = self.redactor.redact(&text).into_owned();
        self.write(&format!("{redacted} [gateprobe: line cut at {} KiB]\n", MAX_LINE >> 10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copied(input: &[u8], redactor: &Redactor) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        copy(input, File::create(&path).unwrap(), redactor);
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn lines_are_redacted_and_long_ones_cut() {
        let r = Redactor::new([("k".to_owned(), "sk-capture-0123456789".to_owned())]);
        assert_eq!(copied(b"a sk-capture-0123456789\nb", &r), "a [redacted:k]\nb");
        let mut long = vec![b'x'; MAX_LINE - 6];
        long.extend_from_slice(b"sk-capture-0123456789 and more\nnext\n");
        let out = copied(&long, &r);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{}", &out[out.len() - 200..]);
        assert!(
            lines[0].ends_with("[redacted:k]… [gateprobe: line cut at 64 KiB]"),
            "{}",
            &lines[0][MAX_LINE - 20..]
        );
        assert_eq!(lines[1], "next");
    }

    #[test]
    fn an_endless_line_costs_one_line_of_memory_and_the_log_is_capped() {
        // 8 MiB without a newline, then lines past the log's cap.
        struct Endless(u64);
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Ok(0);
                }
                let n = (buf.len() as u64).min(self.0) as usize;
                buf[..n].fill(b'y');
                self.0 -= n as u64;
                Ok(n)
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        copy(Endless(8 << 20), File::create(&path).unwrap(), &Redactor::default());
        assert!(std::fs::metadata(&path).unwrap().len() < (MAX_LINE as u64) * 2);
        let many = b"0123456789abcdef\n".repeat((MAX_LOG as usize / 17) + 1000);
        copy(&many[..], File::create(&path).unwrap(), &Redactor::default());
        let len = std::fs::metadata(&path).unwrap().len();
        assert!(len <= MAX_LOG + 200, "{len}");
        assert!(std::fs::read_to_string(&path).unwrap().ends_with("read and dropped]\n"));
    }
}
