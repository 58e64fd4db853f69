//! What the mock backends received: a bounded, shared journal.
//!
//! Every request a mock serves is recorded with its arrival time on the harness's
//! monotonic clock and the correlation id the harness planted in the prompt, so a
//! backend request can be tied to the client request that caused it under any
//! concurrency. The journal keeps the newest entries up to a fixed count and counts
//! what it had to drop.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bodies longer than this are kept truncated.
pub const MAX_BODY: usize = 16 * 1024;

/// One request a backend received.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// Order of arrival across all backends.
    pub seq: u64,
    /// Arrival, relative to the journal's epoch.
    #[serde(serialize_with = "ser_micros", deserialize_with = "de_micros")]
    pub at: Duration,
    /// Name of the backend.
    pub backend: String,
    /// HTTP method.
    pub method: String,
    /// Path exactly as it came over the wire.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// Request headers, lower-cased names.
    pub headers: Vec<(String, String)>,
    /// Body (lossy UTF-8, truncated to [`MAX_BODY`]).
    pub body: String,
    /// The body's top-level `model`, read from the whole body (not kept in load mode).
    pub model: Option<String>,
    /// The correlation id found in the body or `X-Request-ID`.
    pub correlation_id: Option<String>,
    /// Status the mock answered (0: not yet, or never: its client left first).
    pub status: u16,
    /// Why the mock refused the request, in its own words (`Signature expired`, the
    /// model it does not serve), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the mock sends (or sent) its first token, relative to the epoch.
    #[serde(serialize_with = "ser_opt_micros", deserialize_with = "de_opt_micros", default)]
    pub first_token_at: Option<Duration>,
}

fn ser_opt_micros<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ser_micros(d, s),
        None => s.serialize_none(),
    }
}

fn de_micros<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    Ok(Duration::from_micros(serde::Deserialize::deserialize(d)?))
}

fn de_opt_micros<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let v: Option<u64> = serde::Deserialize::deserialize(d)?;
    Ok(v.map(Duration::from_micros))
}

/// The instant a mock's first token is due, attached to its response so the journal
/// can record it (the gateway-overhead measurement needs it).
#[derive(Clone, Copy, Debug)]
pub struct FirstToken(pub Instant);

/// Why a mock refused a request, attached to its error reply for the journal.
#[derive(Clone, Debug)]
pub struct Reason(pub String);

/// Attaches a mock's reason to an error reply.
pub fn with_reason(mut r: axum::response::Response, reason: &str) -> axum::response::Response {
    // Long enough for Bedrock's messages that quote an inference-profile ARN.
    r.extensions_mut().insert(Reason(crate::text::trunc(reason, 320)));
    r
}

/// When a request reached a backend and when the backend's first token went out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Arrival at the backend.
    pub arrived: Instant,
    /// The backend's first token, if the reply had one.
    pub first_token: Option<Instant>,
}

fn ser_micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl Entry {
    /// The entry for a request as it came over the wire (status filled in later):
    /// raw path and query, every header, the body truncated to [`MAX_BODY`], and the
    /// correlation id and `model` read from the whole body (a gateway may put a long
    /// system prompt before the user's message, which holds the id), the id else from
    /// `X-Request-ID`.
    pub fn from_request(backend: &str, parts: &axum::http::request::Parts, body: &[u8], light: bool) -> Entry {
        let whole = String::from_utf8_lossy(body);
        // Counting characters only when there may be more than MAX_BODY of them (and
        // not at all in load mode, which keeps no body): the hot path stays cheap.
        let text = if light || whole.len() <= MAX_BODY {
            &whole[..]
        } else {
            whole
                .char_indices()
                .nth(MAX_BODY)
                .map_or(&whole[..], |(cut, _)| &whole[..cut])
        };
        let model = if light {
            None
        } else {
            serde_json::from_str::<serde_json::Value>(&whole)
                .ok()
                .and_then(|v| v.get("model").and_then(|m| m.as_str()).map(str::to_owned))
        };
        let correlation_id = find_correlation_id(&whole).map(str::to_owned).or_else(|| {
            parts
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .and_then(find_correlation_id)
                .map(str::to_owned)
        });
        Entry {
            seq: 0,
            at: Duration::ZERO,
            backend: backend.to_owned(),
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            // Load mode keeps neither headers nor bodies: no copies on the hot path.
            headers: if light {
                Vec::new()
            } else {
                parts
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_owned(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect()
            },
            body: if light { String::new() } else { text.to_owned() },
            model,
            correlation_id,
            status: 0,
            reason: None,
            first_token_at: None,
        }
    }

    /// A header's value by (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What [`Journal::arrived`] did with a request.
#[derive(Clone, Copy, Debug)]
pub enum Arrival {
    /// Recorded with this sequence number; the reply fills in its status.
    Recorded(u64),
    /// Load mode: recorded with its reply.
    Pending,
}

/// Entries kept in load mode (the most recent ones).
pub const LIGHT_ENTRIES: usize = 4096;

/// A bounded journal shared by all mocks of a run.
#[derive(Debug)]
pub struct Journal {
    epoch: Instant,
    capacity: usize,
    light: std::sync::atomic::AtomicBool,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next_seq: u64,
    dropped: u64,
    entries: VecDeque<Entry>,
    /// Timings by correlation id, for load runs: taken once read, bounded by capacity.
    timings: std::collections::HashMap<String, Timing>,
    timing_order: VecDeque<String>,
}

impl Journal {
    /// A journal that keeps at most `capacity` entries, timed from `epoch`.
    pub fn new(epoch: Instant, capacity: usize) -> Self {
        Journal {
            epoch,
            capacity: capacity.max(1),
            light: std::sync::atomic::AtomicBool::new(false),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The clock origin entries are timed from.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// Load mode: keep headers and bodies out of the entries (memory stays small at
    /// thousands of requests per second) and index timings by correlation id.
    pub fn set_light(&self, light: bool) {
        self.light.store(light, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the journal is in load mode.
    pub fn is_light(&self) -> bool {
        self.light.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records an entry; `seq` and `at` are filled in here. Returns its `seq`.
    pub fn record(&self, mut entry: Entry, received: Instant) -> u64 {
        entry.at = received.saturating_duration_since(self.epoch);
        let light = self.light.load(std::sync::atomic::Ordering::Relaxed);
        if light {
            entry.headers = Vec::new();
            entry.body = String::new();
        }
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if light && let Some(id) = &entry.correlation_id {
            let t = Timing {
                arrived: received,
                first_token: entry.first_token_at.map(|d| self.epoch + d),
            };
            if g.timings.insert(id.clone(), t).is_none() {
                g.timing_order.push_back(id.clone());
            }
            while g.timings.len() > self.capacity {
                if let Some(old) = g.timing_order.pop_front() {
                    g.timings.remove(&old);
                }
            }
            // Timings taken by the load runner leave their ids behind in the order:
            // drop those once they outnumber the live ones, so the order stays as
            // small as the requests in flight.
            if g.timing_order.len() > 2 * g.timings.len() + 1024 {
                let Inner {
                    timings, timing_order, ..
                } = &mut *g;
                timing_order.retain(|id| timings.contains_key(id));
            }
        }
        entry.seq = g.next_seq;
        g.next_seq += 1;
        // Load runs judge nothing from entries: a short tail is enough to look at.
        let cap = if light {
            self.capacity.min(LIGHT_ENTRIES)
        } else {
            self.capacity
        };
        while g.entries.len() >= cap {
            g.entries.pop_front();
            g.dropped += 1;
        }
        let seq = entry.seq;
        g.entries.push_back(entry);
        seq
    }

    /// Records a served request with what its reply says: the status, and the first
    /// token's instant a mock attached to it.
    fn record_reply(&self, mut entry: Entry, reply: &axum::response::Response, received: Instant) {
        (entry.status, entry.first_token_at) = self.reply_facts(reply);
        entry.reason = reply.extensions().get::<Reason>().map(|r| r.0.clone());
        self.record(entry, received);
    }

    /// What a reply tells the journal: its status, and the first token's instant a
    /// mock attached to it.
    fn reply_facts(&self, reply: &axum::response::Response) -> (u16, Option<Duration>) {
        let first_token_at = reply
            .extensions()
            .get::<FirstToken>()
            .map(|f| f.0.saturating_duration_since(self.epoch));
        (reply.status().as_u16(), first_token_at)
    }

    /// Records a request as it arrives, status 0 until [`Journal::answered`]: a check
    /// sees it even while the mock still works on it (a scripted stall) or after its
    /// client gave up and left. Load mode records once, at the reply (one lock per
    /// request on the hot path).
    pub fn arrived(&self, entry: &Entry, received: Instant) -> Arrival {
        if self.is_light() {
            return Arrival::Pending;
        }
        let pending = Entry {
            status: 0,
            first_token_at: None,
            ..entry.clone()
        };
        Arrival::Recorded(self.record(pending, received))
    }

    /// Completes what [`Journal::arrived`] began, with the reply.
    pub fn answered(&self, arrival: Arrival, entry: Entry, reply: &axum::response::Response, received: Instant) {
        let Arrival::Recorded(seq) = arrival else {
            return self.record_reply(entry, reply, received);
        };
        let facts = self.reply_facts(reply);
        let reason = reply.extensions().get::<Reason>().map(|r| r.0.clone());
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = g.entries.iter_mut().rev().find(|e| e.seq == seq) {
            (e.status, e.first_token_at) = facts;
            e.reason = reason;
        }
    }

    /// Takes the timing recorded for a correlation id (load mode), if any.
    pub fn take_timing(&self, id: &str) -> Option<Timing> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.timings.remove(id)
    }

    /// Entries tied to a correlation id, in arrival order.
    pub fn for_correlation(&self, id: &str) -> Vec<Entry> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.entries
            .iter()
            .filter(|e| e.correlation_id.as_deref() == Some(id))
            .cloned()
            .collect()
    }

    /// Every entry recorded at or after sequence number `from`.
    pub fn since(&self, from: u64) -> Vec<Entry> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.entries.iter().filter(|e| e.seq >= from).cloned().collect()
    }

    /// The sequence number the next entry will get.
    pub fn next_seq(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).next_seq
    }

    /// How many entries were dropped to stay within capacity.
    pub fn dropped(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).dropped
    }
}

/// Finds a harness correlation id (`gp-<8 hex>-<digits>`) in text.
pub fn find_correlation_id(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(i) = text[from..].find("gp-") {
        let start = from + i;
        let run = &bytes[start + 3..];
        if run.len() >= 10
            && run[..8]
                .iter()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            && run[8] == b'-'
            && run[9].is_ascii_digit()
        {
            let digits = run[9..].iter().take_while(|b| b.is_ascii_digit()).count();
            return Some(&text[start..start + 3 + 9 + digits]);
        }
        from = start + 3;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> Entry {
        Entry {
            seq: 0,
            at: Duration::ZERO,
            backend: "b".into(),
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            query: None,
            headers: vec![],
            body: String::new(),
            model: None,
            correlation_id: Some(id.into()),
            status: 200,
            reason: None,
            first_token_at: None,
        }
    }

    #[test]
    fn the_id_and_model_are_read_past_the_kept_part_of_a_long_body() {
        // A long system prompt first (as a gateway's chat agent sends), the user's
        // message with the id after it, `model` last.
        let body = serde_json::json!({
            "messages": [
                {"role": "system", "content": "x".repeat(3 * MAX_BODY)},
                {"role": "user", "content": "hello gp-0123abcd-42"},
            ],
            "model": "Mixtral-8x7B",
        })
        .to_string();
        let (parts, ()) = axum::http::Request::builder()
            .uri("/v1/chat/completions")
            .body(())
            .expect("request")
            .into_parts();
        let e = Entry::from_request("b", &parts, body.as_bytes(), false);
        assert_eq!(e.correlation_id.as_deref(), Some("gp-0123abcd-42"));
        assert_eq!(e.model.as_deref(), Some("Mixtral-8x7B"));
        assert_eq!(e.body.chars().count(), MAX_BODY);
        let light = Entry::from_request("b", &parts, body.as_bytes(), true);
        assert_eq!(light.correlation_id.as_deref(), Some("gp-0123abcd-42"));
        assert!(light.body.is_empty() && light.model.is_none());
    }

    #[test]
    fn a_request_is_seen_on_arrival_and_its_reply_fills_in_the_status() {
        let j = Journal::new(Instant::now(), 100);
        let e = entry("gp-0123abcd-1");
        let arrival = j.arrived(&e, Instant::now());
        // A check looking now (the mock still stalls, or its client left) sees it.
        let seen = j.for_correlation("gp-0123abcd-1");
        assert_eq!((seen.len(), seen[0].status), (1, 0));
        let reply = axum::response::Response::builder()
            .status(503)
            .body(axum::body::Body::empty())
            .expect("reply");
        j.answered(arrival, e, &reply, Instant::now());
        let seen = j.for_correlation("gp-0123abcd-1");
        assert_eq!((seen.len(), seen[0].status), (1, 503));
        // Load mode: one record, with the reply.
        j.set_light(true);
        let e = entry("gp-0123abcd-2");
        let arrival = j.arrived(&e, Instant::now());
        assert!(j.for_correlation("gp-0123abcd-2").is_empty());
        j.answered(arrival, e, &reply, Instant::now());
        assert_eq!(j.for_correlation("gp-0123abcd-2")[0].status, 503);
    }

    #[test]
    fn load_mode_stays_as_small_as_the_requests_in_flight() {
        let j = Journal::new(Instant::now(), 100_000);
        j.set_light(true);
        for i in 0..50_000 {
            let id = format!("gp-0a1b2c3d-{i}");
            j.record(entry(&id), Instant::now());
            // The load runner takes each timing when its reply arrives; ten stay in flight.
            if i >= 10 {
                assert!(j.take_timing(&format!("gp-0a1b2c3d-{}", i - 10)).is_some());
            }
        }
        let g = j.inner.lock().expect("lock");
        assert_eq!(g.entries.len(), LIGHT_ENTRIES);
        assert_eq!(g.timings.len(), 10);
        assert!(g.timing_order.len() <= 2 * 10 + 1024 + 1, "{}", g.timing_order.len());
        assert_eq!(g.next_seq, 50_000);
    }

    #[test]
    fn finds_ids_inside_prompts() {
        assert_eq!(find_correlation_id("x [gp-0a1b2c3d-17] y"), Some("gp-0a1b2c3d-17"));
        assert_eq!(
            find_correlation_id("gp-nothex00-1 gp-deadbeef-2"),
            Some("gp-deadbeef-2")
        );
        assert_eq!(find_correlation_id("gp-deadbeef-"), None);
        assert_eq!(find_correlation_id("no id"), None);
    }

    #[test]
    fn journal_is_bounded_and_counts_drops() {
        let j = Journal::new(Instant::now(), 2);
        for id in ["a", "b", "c"] {
            j.record(entry(id), Instant::now());
        }
        assert_eq!(j.dropped(), 1);
        assert!(j.for_correlation("a").is_empty());
        assert_eq!(j.for_correlation("c").len(), 1);
        assert_eq!(j.since(1).len(), 2);
    }
}
