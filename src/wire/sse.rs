//! An incremental Server-Sent Events parser that is lenient like a browser (any of
//! `\n`, `\r\n`, `\r` ends a line; comments ignored) and also reports what a strict
//! OpenAI-compatible stream must not contain, so conformance can flag framing faults.

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// A framing anomaly: something a strict OpenAI-style stream does not send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Anomaly {
    /// A line with an unknown field name.
    UnknownField(String),
    /// An event larger than the parser's limit; the event was dropped.
    Oversized,
    /// Bytes that were not UTF-8 (replaced).
    InvalidUtf8,
    /// The stream ended inside an event (no blank line after it).
    Truncated,
}

/// Anomalies a parser keeps at most.
pub const MAX_ANOMALIES: usize = 16;

/// Incremental parser: feed bytes as they arrive, take events out.
#[derive(Debug)]
pub struct Parser {
    buf: Vec<u8>,
    data: String,
    event: Option<String>,
    has_data: bool,
    max_event: usize,
    skip_lf: bool,
    /// Inside a line that grew past `max_event`: its bytes are dropped until it ends.
    discarding: bool,
    anomalies: Vec<Anomaly>,
}

impl Default for Parser {
    fn default() -> Self {
        Parser::new(1024 * 1024)
    }
}

impl Parser {
    /// A parser that drops events larger than `max_event` bytes.
    pub fn new(max_event: usize) -> Self {
        Parser {
            buf: Vec::new(),
            data: String::new(),
            event: None,
            has_data: false,
            max_event,
            skip_lf: false,
            discarding: false,
            anomalies: Vec::new(),
        }
    }

    /// Feeds a chunk, pushing complete events into `out`. The result does not depend on
    /// how the stream is cut into chunks: a line longer than `max_event` is dropped with
    /// one [`Anomaly::Oversized`] (and the event it belongs to with it) whether it arrives
    /// whole or in pieces, and only `max_event` bytes of an unfinished line are held.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<Event>) {
        // An empty chunk between `\r` and `\n` must not end the CRLF.
        if chunk.is_empty() {
            return;
        }
        if self.skip_lf && chunk.first() == Some(&b'\n') {
            chunk = &chunk[1..];
        }
        self.skip_lf = false;
        let mut start = 0;
        let mut i = 0;
        while i < chunk.len() {
            let b = chunk[i];
            if b == b'\n' || b == b'\r' {
                let line_end = i;
                if b == b'\r' {
                    if chunk.get(i + 1) == Some(&b'\n') {
                        i += 1;
                    } else if i + 1 == chunk.len() {
                        self.skip_lf = true;
                    }
                }
                if self.discarding {
                    // The end of a line already dropped as oversized.
                    self.discarding = false;
                } else if self.buf.is_empty() {
                    self.line(&chunk[start..line_end], out);
                } else {
                    self.buf.extend_from_slice(&chunk[start..line_end]);
                    let line = std::mem::take(&mut self.buf);
                    self.line(&line, out);
                }
                start = i + 1;
            }
            i += 1;
        }
        let rest = &chunk[start..];
        if self.discarding {
            // Still inside the oversized line.
        } else if self.buf.len() + rest.len() > self.max_event {
            self.buf.clear();
            self.oversized();
            self.discarding = true;
        } else {
            self.buf.extend_from_slice(rest);
        }
    }

    /// Ends the stream; returns what was wrong with its framing overall.
    pub fn finish(mut self) -> Vec<Anomaly> {
        if !self.buf.is_empty() || self.has_data {
            // Always kept, past the cap: how the stream ended matters most.
            self.anomalies.push(Anomaly::Truncated);
        }
        self.anomalies
    }

    /// Records an anomaly; only the first [`MAX_ANOMALIES`] are kept, so a hostile
    /// stream cannot grow the list without bound.
    fn note(&mut self, a: Anomaly) {
        if self.anomalies.len() < MAX_ANOMALIES {
            self.anomalies.push(a);
        }
    }

    /// Anomalies seen so far (the first [`MAX_ANOMALIES`]).
    pub fn anomalies(&self) -> &[Anomaly] {
        &self.anomalies
    }

    fn reset(&mut self) {
        self.data.clear();
        self.event = None;
        self.has_data = false;
    }

    /// Drops the event being built, reporting it.
    fn oversized(&mut self) {
        self.reset();
        self.note(Anomaly::Oversized);
    }

    fn line(&mut self, raw: &[u8], out: &mut Vec<Event>) {
        if raw.len() > self.max_event {
            self.oversized();
            return;
        }
        if raw.is_empty() {
            if self.has_data {
                out.push(Event {
                    event: self.event.take(),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.reset();
            return;
        }
        let line = match std::str::from_utf8(raw) {
            Ok(s) => std::borrow::Cow::Borrowed(s),
            Err(_) => {
                self.note(Anomaly::InvalidUtf8);
                String::from_utf8_lossy(raw)
            }
        };
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                if self.data.len() + value.len() > self.max_event {
                    self.oversized();
                    return;
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            "id" | "retry" => {}
            other => {
                let mut name: String = other.chars().take(40).collect();
                if name.len() < other.len() {
                    name.push('…');
                }
                self.note(Anomaly::UnknownField(name));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> (Vec<Event>, Vec<Anomaly>) {
        let mut p = Parser::default();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, &mut out);
        }
        (out, p.finish())
    }

    #[test]
    fn openai_frames_split_anywhere() {
        let s = b"data: {\"a\":1}\n\ndata: [DONE]\n\n";
        for cut in 0..s.len() {
            let (ev, an) = parse_all(&[&s[..cut], &s[cut..]]);
            assert_eq!(ev.len(), 2, "cut at {cut}");
            assert_eq!(ev[0].data, "{\"a\":1}");
            assert_eq!(ev[1].data, "[DONE]");
            assert!(an.is_empty());
        }
    }

    #[test]
    fn crlf_cr_comments_and_events() {
        let (ev, an) = parse_all(&[b": ping\r\nevent: x\r\ndata: a\r\ndata: b\r\n\r\ndata:c\r", b"\r"]);
        assert_eq!(
            ev,
            vec![
                Event {
                    event: Some("x".into()),
                    data: "a\nb".into()
                },
                Event {
                    event: None,
                    data: "c".into()
                },
            ]
        );
        assert!(an.is_empty());
    }

    #[test]
    fn broken_framing_is_reported() {
        let (ev, an) = parse_all(&[b"{\"not\":\"sse\"}\n\ndata: x"]);
        assert!(ev.is_empty());
        assert!(matches!(an[0], Anomaly::UnknownField(_)));
        assert_eq!(an.last(), Some(&Anomaly::Truncated));
    }

    #[test]
    fn oversized_lines_count_once_however_split() {
        // Found by tests/properties.rs: an overflowing partial line used to be dropped and
        // its tail parsed as a new line, once per chunk.
        let s = b"event: retry: 5\ndata: ok\n\nevent: 0123456789\n";
        let whole = {
            let mut p = Parser::new(8);
            let mut out = Vec::new();
            p.feed(s, &mut out);
            (out, p.finish())
        };
        assert_eq!(whole.0.len(), 1);
        assert_eq!(whole.1, vec![Anomaly::Oversized, Anomaly::Oversized]);
        let mut p = Parser::new(8);
        let mut out = Vec::new();
        for b in s.chunks(1) {
            p.feed(b, &mut out);
        }
        assert_eq!((out, p.finish()), whole);
    }

    #[test]
    fn an_empty_chunk_does_not_split_a_crlf() {
        let (ev, an) = parse_all(&[b"data: a\r", b"", b"\ndata: b\r\n\r\n"]);
        assert_eq!(
            ev,
            vec![Event {
                event: None,
                data: "a\nb".into()
            }]
        );
        assert!(an.is_empty());
    }

    #[test]
    fn oversized_events_are_dropped() {
        let mut p = Parser::new(8);
        let mut out = Vec::new();
        p.feed(b"data: 0123456789\n\ndata: ok\n\n", &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(p.finish(), vec![Anomaly::Oversized]);
    }
}
