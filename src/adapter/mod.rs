//! Adapters turn "feature F for model M" into the HTTP request a client of a given
//! gateway kind sends (`aigw`: the GitLab instance; `proxy`: an OpenAI client of a
//! proxy alias; `openai`: the AI gateway calling a model endpoint), and parse the reply
//! (JSON, raw-text streams, SSE, ndjson events) into one [`Reply`]. Adapters never
//! judge: that is the checks' job.

pub mod aigw;
pub mod front;
pub mod model;
pub mod openai;
pub mod proxy;
pub mod timed;

use std::time::Duration;

pub use crate::instance::ModelFields;

pub use crate::plan::ClientAuth;
pub use front::Adapter;

/// A request as it went out (for transcripts): method, path, headers, JSON body.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sent {
    /// HTTP method.
    pub method: String,
    /// Path under the gateway's base URL.
    pub path: String,
    /// Headers, in sending order (besides those the HTTP client adds itself).
    pub headers: Vec<(String, String)>,
    /// JSON body.
    pub body: serde_json::Value,
}

/// What came back, parsed for the checks.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The body as text (lossy, truncated to [`MAX_REPLY`]).
    pub body: String,
    /// Whether the body was cut at [`MAX_REPLY`].
    pub truncated: bool,
    /// The model's text extracted from the reply.
    pub content: String,
    /// For event streams: what the stream looked like.
    pub events: Option<EventSummary>,
    /// An error the gateway surfaced (non-2xx status or an error event), or what was
    /// wrong with the reply itself (see `broken`).
    pub error: Option<String>,
    /// The reply itself was broken (not UTF-8, not the JSON it claimed, an encoding
    /// nobody asked for, too large): `error` says how. A broken reply is not a refusal.
    #[serde(skip)]
    pub broken: bool,
    /// The body ended abnormally (the connection closed or broke before its end):
    /// how, and after how many bytes. The rest of the reply is what arrived before.
    pub aborted: Option<String>,
    /// What came over the wire besides the body, for a transcript of the exchange.
    #[serde(skip)]
    pub wire: Wire,
    /// Time from send to the end of the body.
    #[serde(serialize_with = "ser_ms")]
    pub elapsed: Duration,
}

impl Reply {
    /// Whether the status is one a client reads as an answer at all: not an
    /// informational status (`101 Switching Protocols`: the server left HTTP) and not
    /// a redirect (which gateprobe never follows). Such a reply is neither a success
    /// nor an error.
    pub fn is_final_answer(&self) -> bool {
        (200..300).contains(&self.status) || (400..600).contains(&self.status)
    }

    /// What kind of status a reply that is not a final answer has, in words.
    pub fn non_answer(&self) -> Option<&'static str> {
        match self.status {
            100..=199 => Some("an informational status"),
            300..=399 => Some("a redirect"),
            _ if !self.is_final_answer() => Some("a status outside HTTP's classes"),
            _ => None,
        }
    }
}

/// The parts of a reply a transcript keeps to rebuild it: its head and how its body
/// ended (the body itself is [`Reply::body`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Wire {
    /// A `Content-Encoding` other than `identity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// Why the body broke off, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut: Option<TransportError>,
    /// Whose upstream credentials the reply held, in any encoding, in its headers or
    /// anywhere in its body (also past the part kept): found while it was read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leaks: Vec<String>,
    /// The body went on past [`SCAN_LIMIT`]: gateprobe stopped reading, and what
    /// followed was never looked at.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unscanned: bool,
}

/// Largest reply body kept.
pub const MAX_REPLY: usize = 1024 * 1024;

/// Largest reply body read (past [`MAX_REPLY`] only searched for credentials, never
/// kept), when the client watches for credentials.
pub const SCAN_LIMIT: usize = 8 * 1024 * 1024;

/// The shape of an event stream (ndjson chat events).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct EventSummary {
    /// Events seen.
    pub events: usize,
    /// Lines that were not well-formed events (first few).
    pub malformed: Vec<String>,
    /// Messages of error events.
    pub errors: Vec<String>,
    /// Whether a usage event arrived.
    pub usage: bool,
    /// Whether a final event (finish reason) arrived.
    pub finished: bool,
    /// SSE: whether the `data: [DONE]` terminator arrived.
    pub done: bool,
    /// The distinct event types seen, in order of first appearance (at most 16).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
}

impl EventSummary {
    /// Notes an event type.
    pub fn saw(&mut self, kind: &str) {
        if self.types.len() < 16 && !self.types.iter().any(|t| t == kind) {
            self.types.push(crate::text::trunc(kind, 40));
        }
    }
}

/// A request that produced no HTTP reply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("{kind}: {message}")]
pub struct TransportError {
    /// `connect`, `tls`, `timeout`, `reset`, `closed`, `protocol`, `body` or `request`
    /// (see [`transport_class`]).
    pub kind: std::borrow::Cow<'static, str>,
    /// Details.
    pub message: String,
}

impl TransportError {
    /// Classifies a reqwest error; the message leaves out the request's URL, which
    /// may carry credentials (`user:token@host`, a key in the query).
    pub fn from_reqwest(e: reqwest::Error) -> Self {
        let kind = transport_class(&e);
        TransportError {
            kind: kind.into(),
            message: crate::text::error_chain(&e.without_url()),
        }
    }
}

/// Whether a TLS failure (handshake, certificate, or an alert the peer sent after the
/// handshake, such as an mTLS server's "certificate required") is among the error's
/// causes.
fn is_tls(e: &reqwest::Error) -> bool {
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if s.downcast_ref::<native_tls::Error>().is_some() || is_openssl(s) {
            return true;
        }
        src = s.source();
    }
    false
}

/// An OpenSSL error carried by an I/O error (native-tls does not wrap those).
#[cfg(not(any(target_os = "macos", target_os = "ios", target_os = "windows")))]
fn is_openssl(e: &(dyn std::error::Error + 'static)) -> bool {
    e.downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
        .is_some_and(|inner| inner.is::<openssl::ssl::Error>())
        || e.downcast_ref::<openssl::error::ErrorStack>().is_some()
}

#[cfg(any(target_os = "macos", target_os = "ios", target_os = "windows"))]
fn is_openssl(_: &(dyn std::error::Error + 'static)) -> bool {
    false
}

/// What went wrong below HTTP, from the error and its causes: `timeout`, `tls` (the
/// handshake failed, e.g. an untrusted certificate), `connect`
/// (refused, unreachable), `reset` (the peer reset or aborted the connection),
/// `closed` (closed before a complete message, e.g. without a status line),
/// `protocol` (malformed HTTP: status line, headers, chunked framing), `body` (other
/// failures reading the body) or `request`.
pub fn transport_class(e: &reqwest::Error) -> &'static str {
    use std::io::ErrorKind;
    if e.is_timeout() {
        return "timeout";
    }
    if is_tls(e) {
        return "tls";
    }
    if e.is_connect() {
        return "connect";
    }
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            if h.is_timeout() {
                return "timeout";
            }
            if h.is_incomplete_message() {
                return "closed";
            }
            if h.is_parse() || h.is_parse_status() {
                return "protocol";
            }
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            match io.kind() {
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe => return "reset",
                ErrorKind::UnexpectedEof => return "closed",
                ErrorKind::InvalidData | ErrorKind::InvalidInput => return "protocol",
                ErrorKind::TimedOut => return "timeout",
                _ => {}
            }
        }
        src = s.source();
    }
    if e.is_body() || e.is_decode() {
        "body"
    } else {
        "request"
    }
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

pub use crate::scenario::Tls;

/// The HTTP client every adapter uses: no system proxy (traffic stays on the addresses
/// the scenario names), no redirects (a redirect is an answer to judge, not to follow),
/// `TCP_NODELAY`, a connect timeout bounded by the request timeout, and TLS as `tls`
/// says. Without `reuse`, every request opens a connection of its own: conformance
/// probes never meet a kept-alive connection the server has meanwhile closed (which
/// would fail a request that was never acted on) and are never sent twice. With it,
/// idle connections are dropped after 4 s, before the 5 s keep-alive of uvicorn (the
/// AI gateway's server) and Node.js closes them under the client.
pub(crate) fn http_client(timeout: Duration, tls: &Tls, reuse: bool) -> reqwest::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none());
    b = if reuse {
        b.pool_idle_timeout(Duration::from_secs(4))
    } else {
        b.pool_max_idle_per_host(0)
    };
    tls.apply(b)?.build()
}

/// Sends a request, reads its reply (body capped at [`MAX_REPLY`]) and has `parse`
/// fill the [`Reply`] from it the adapter's way. A body the gateway breaks off after
/// the status line (closing or resetting the connection, bad chunked framing) is
/// judged on what arrived, and the abnormal end is noted in [`Reply::aborted`]. A
/// request that got no status line, or whose body gateprobe stopped waiting for (a
/// timeout: whether the gateway would have finished cannot be told), is a
/// [`TransportError`].
///
/// `watch` knows the upstream credentials the gateway must never give back: the
/// headers and the whole body (up to [`SCAN_LIMIT`]) are searched for them in every
/// encoding while the reply is read ([`Wire::leaks`]).
pub(crate) async fn fetch(
    b: reqwest::RequestBuilder,
    watch: &crate::redact::Redactor,
    parse: impl FnOnce(&mut Reply, &[u8]),
) -> Result<Reply, TransportError> {
    let start = std::time::Instant::now();
    let resp = b.send().await.map_err(TransportError::from_reqwest)?;
    let head = Head::of(&resp, watch);
    let body = read_body_watched(resp, MAX_REPLY, watch).await;
    if let Some(e) = body.cut.as_ref().filter(|e| e.kind == "timeout") {
        return Err(e.clone());
    }
    Ok(assemble(head, body, start.elapsed(), parse))
}

/// The parts of a reply's head the parsers read.
#[derive(Clone, Debug, Default)]
pub(crate) struct Head {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// A `Content-Encoding` other than `identity`.
    pub encoding: Option<String>,
    /// Whose credentials the headers held (see [`Wire::leaks`]).
    pub leaks: Vec<String>,
}

impl Head {
    fn of(resp: &reqwest::Response, watch: &crate::redact::Redactor) -> Head {
        let mut headers = Vec::new();
        if !watch.is_empty() {
            for (k, v) in resp.headers() {
                headers.extend_from_slice(k.as_str().as_bytes());
                headers.extend_from_slice(b": ");
                headers.extend_from_slice(v.as_bytes());
                headers.push(b'\n');
            }
        }
        Head {
            status: resp.status().as_u16(),
            content_type: resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            encoding: encoding(resp),
            leaks: watch.labels_in(&headers),
        }
    }
}

/// Builds the [`Reply`] of a head and a body as far as it arrived (live, or from a
/// recorded transcript). Defects of the reply itself (an encoding gateprobe did not
/// ask for, bytes that are not UTF-8, a body over the cap) become its error, ahead of
/// whatever the parser made of the damaged body.
pub(crate) fn assemble(head: Head, body: Body, elapsed: Duration, parse: impl FnOnce(&mut Reply, &[u8])) -> Reply {
    let mut reply = Reply {
        status: head.status,
        content_type: head.content_type,
        body: String::from_utf8_lossy(&body.bytes).into_owned(),
        truncated: body.truncated,
        aborted: body
            .cut
            .as_ref()
            .map(|e| format!("{e} (after {} bytes)", body.bytes.len())),
        wire: Wire {
            encoding: head.encoding.clone(),
            cut: body.cut,
            leaks: {
                let mut l = head.leaks;
                for b in body.leaks {
                    if !l.contains(&b) {
                        l.push(b);
                    }
                }
                l
            },
            unscanned: body.unscanned,
        },
        elapsed,
        ..Reply::default()
    };
    parse(&mut reply, &body.bytes);
    if let Some(defect) = defect(head.encoding.as_deref(), &body.bytes, body.truncated) {
        reply.broken = true;
        reply.error = Some(match reply.error.take() {
            Some(e) if !(200..300).contains(&reply.status) => format!("{e} ({defect})"),
            Some(e) => format!("{defect} ({e})"),
            None => defect,
        });
    }
    reply
}

/// The error for a reply body that should have been JSON and is not, naming the
/// content type when that is not JSON either (an HTML error page, say).
pub(crate) fn not_json(r: &mut Reply, e: &serde_json::Error) {
    r.broken = true;
    r.error = Some(match r.content_type.as_deref() {
        Some(ct) if !ct.contains("json") => {
            format!("reply is not JSON (Content-Type `{}`): {e}", crate::text::trunc(ct, 60))
        }
        None => format!("reply is not JSON (no Content-Type): {e}"),
        Some(_) => format!("reply is not JSON: {e}"),
    });
}

/// A reply's `Content-Encoding` other than `identity`: one gateprobe never asked for
/// (it sends no `Accept-Encoding` and never inflates, so a gzip bomb stays small).
pub(crate) fn encoding(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get("content-encoding")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .filter(|v| !v.trim().eq_ignore_ascii_case("identity"))
}

/// What is wrong with a reply body before anyone parses it.
pub(crate) fn defect(encoding: Option<&str>, bytes: &[u8], truncated: bool) -> Option<String> {
    if let Some(enc) = encoding {
        return Some(format!(
            "reply has Content-Encoding `{}`, which gateprobe did not ask for (it sends no Accept-Encoding and never inflates bodies)",
            crate::text::trunc(enc, 40)
        ));
    }
    if truncated {
        return Some(format!(
            "reply body is larger than {} MiB; gateprobe stopped reading there",
            MAX_REPLY >> 20
        ));
    }
    std::str::from_utf8(bytes).err().map(|e| {
        format!(
            "reply is not valid UTF-8 (first invalid byte at offset {})",
            e.valid_up_to()
        )
    })
}

/// A body as far as it arrived.
#[derive(Clone, Debug, Default)]
pub(crate) struct Body {
    /// The bytes read.
    pub bytes: Vec<u8>,
    /// Whether reading stopped at the limit.
    pub truncated: bool,
    /// Why the body ended before its end, if it did (the connection closed or broke
    /// mid-body, a timeout).
    pub cut: Option<TransportError>,
    /// Whose credentials it held (see [`Wire::leaks`]).
    pub leaks: Vec<String>,
    /// It went on past [`SCAN_LIMIT`] (see [`Wire::unscanned`]).
    pub unscanned: bool,
}

/// Reads a body up to `limit` bytes, keeping what arrived when it breaks off.
/// The start of a streamed body: up to the end of its first event (a blank line), at
/// most `limit` bytes. Dropping the response then closes the connection, which stops
/// the server's generation.
pub(crate) async fn read_head(resp: reqwest::Response, limit: usize) -> Body {
    use futures_util::StreamExt;
    let mut stream = resp.bytes_stream();
    let mut body = Body::default();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => body.bytes.extend_from_slice(&c),
            Err(e) => {
                body.cut = Some(TransportError::from_reqwest(e));
                return body;
            }
        }
        if body.bytes.windows(2).any(|w| w == b"\n\n") || body.bytes.len() >= limit {
            body.bytes.truncate(limit);
            return body;
        }
    }
    body
}

pub(crate) async fn read_body(resp: reqwest::Response, limit: usize) -> Body {
    read_body_watched(resp, limit, &crate::redact::Redactor::default()).await
}

/// [`read_body`], also searching for `watch`'s credentials: then reading goes on past
/// `limit` (what follows is searched, not kept) up to [`SCAN_LIMIT`].
pub(crate) async fn read_body_watched(resp: reqwest::Response, limit: usize, watch: &crate::redact::Redactor) -> Body {
    use futures_util::StreamExt;
    let scan_limit = if watch.is_empty() { limit } else { SCAN_LIMIT.max(limit) };
    let mut stream = resp.bytes_stream();
    let mut body = Body::default();
    let mut scanner = watch.scanner();
    let mut read = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                body.cut = Some(TransportError::from_reqwest(e));
                break;
            }
        };
        let fits = chunk.len().min(scan_limit - read);
        scanner.feed(&chunk[..fits]);
        let room = limit.saturating_sub(body.bytes.len());
        body.bytes.extend_from_slice(&chunk[..fits.min(room)]);
        body.truncated |= fits > room;
        read += fits;
        if fits < chunk.len() {
            // Past what is read: whatever follows is neither kept nor searched.
            body.truncated = true;
            body.unscanned = !watch.is_empty();
            break;
        }
    }
    body.leaks = scanner.finish();
    body
}
