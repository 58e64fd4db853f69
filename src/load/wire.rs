//! The wire client: HTTP/1.1 keep-alive requests written and read directly on a
//! `TcpStream`, for `gateprobe bench`, where the generator's own cost per request
//! decides whether it or the server is measured.
//!
//! The request is serialised once per run ([`HttpTarget::wire`]) and written with one
//! call; the response head is parsed in place with `httparse` from a buffer the
//! connection keeps; the body is counted and dropped as it arrives (Content-Length,
//! chunked, or until close), never collected. One connection per worker; a reused
//! connection the server closed while idle is reopened and the request sent again
//! once, as HTTP clients do for idempotent retries on stale keep-alives.

use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Outcome;
use super::http::HttpTarget;
use crate::metrics::ErrorClass;

/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Read buffer size.
const BUF: usize = 16 * 1024;

/// One worker's connection and read buffer.
#[derive(Debug)]
pub struct WireClient {
    target: std::sync::Arc<HttpTarget>,
    conn: Option<Conn>,
}

#[derive(Debug)]
struct Conn {
    tcp: TcpStream,
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
}

/// Why an exchange failed.
enum Fail {
    /// The request could not be written: on a reused connection, a stale keep-alive
    /// the server had closed; it read nothing.
    NotSent,
    /// The connection was closed or reset before any byte of the response: on a
    /// reused connection, most likely a stale keep-alive, but the server may have
    /// acted on the request.
    ClosedEarly,
    /// Anything else.
    Broken,
}

/// How the body is delimited.
#[derive(Clone, Copy)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

impl Conn {
    async fn open(target: &HttpTarget) -> Option<Conn> {
        let tcp = TcpStream::connect(target.addr()).await.ok()?;
        // Requests are small writes awaiting a reply: never let Nagle hold them.
        let _ = tcp.set_nodelay(true);
        Some(Conn {
            tcp,
            buf: vec![0; BUF],
            start: 0,
            end: 0,
        })
    }

    /// Reads more bytes after `end`, first moving unconsumed bytes to the front, and
    /// growing the buffer up to [`MAX_HEAD`] when it is full. `Ok(0)` at EOF.
    async fn fill(&mut self) -> std::io::Result<usize> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            if self.buf.len() >= MAX_HEAD {
                return Err(std::io::ErrorKind::InvalidData.into());
            }
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = self.tcp.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// One request and its response: status, when the head arrived, body bytes and
    /// whether the connection can carry another request.
    async fn exchange(&mut self, t: &HttpTarget) -> Result<(u16, Instant, u64, bool), Fail> {
        self.tcp.write_all(t.wire()).await.map_err(|_| Fail::NotSent)?;
        let mut seen = false;
        loop {
            let (status, head_len, framing, close) = loop {
                if self.end > self.start {
                    seen = true;
                    let mut headers = [httparse::EMPTY_HEADER; 64];
                    let mut resp = httparse::Response::new(&mut headers);
                    match resp.parse(&self.buf[self.start..self.end]) {
                        Ok(httparse::Status::Complete(n)) => {
                            let status = resp.code.unwrap_or(0);
                            let (framing, close) = framing(t.is_head(), status, resp.version, resp.headers)?;
                            break (status, n, framing, close);
                        }
                        Ok(httparse::Status::Partial) => {}
                        Err(_) => return Err(Fail::Broken),
                    }
                }
                match self.fill().await {
                    // Closed or reset before any byte of the response: a stale keep-alive
                    // when the connection was reused (the server may have read nothing).
                    Ok(0) | Err(_) if !seen => return Err(Fail::ClosedEarly),
                    Ok(0) | Err(_) => return Err(Fail::Broken),
                    Ok(_) => {}
                }
            };
            let first = Instant::now();
            self.start += head_len;
            // Interim responses (100 Continue) precede the real one.
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            let (bytes, reusable) = self.body(framing).await?;
            return Ok((status, first, bytes, reusable && !close));
        }
    }

    /// Consumes the body; returns its size and whether the connection is still usable.
    async fn body(&mut self, framing: Framing) -> Result<(u64, bool), Fail> {
        match framing {
            Framing::None => Ok((0, true)),
            Framing::Length(n) => Ok((self.skip(n).await?, true)),
            Framing::UntilClose => {
                let mut total = (self.end - self.start) as u64;
                self.start = self.end;
                loop {
                    match self.fill().await {
                        Ok(0) => return Ok((total, false)),
                        Ok(n) => {
                            total += n as u64;
                            self.start = self.end;
                        }
                        Err(_) => return Err(Fail::Broken),
                    }
                }
            }
            Framing::Chunked => {
                let mut total = 0u64;
                loop {
                    let line = self.line().await?;
                    let size = parse_chunk_size(&self.buf[line.0..line.1]).ok_or(Fail::Broken)?;
                    if size == 0 {
                        // Trailers, up to the empty line.
                        loop {
                            let (a, b) = self.line().await?;
                            if a == b {
                                return Ok((total, true));
                            }
                        }
                    }
                    total += self.skip(size).await?;
                    let (a, b) = self.line().await?;
                    if a != b {
                        return Err(Fail::Broken);
                    }
                }
            }
        }
    }

    /// Skips `n` body bytes.
    async fn skip(&mut self, n: u64) -> Result<u64, Fail> {
        let mut left = n;
        loop {
            let have = (self.end - self.start) as u64;
            let take = have.min(left);
            self.start += take as usize;
            left -= take;
            if left == 0 {
                return Ok(n);
            }
            self.start = self.end;
            match self.fill().await {
                Ok(0) | Err(_) => return Err(Fail::Broken),
                Ok(_) => {}
            }
        }
    }

    /// The next CRLF-terminated line, as a range of `buf` (without the CRLF), consumed.
    async fn line(&mut self) -> Result<(usize, usize), Fail> {
        let mut from = self.start;
        loop {
            if let Some(i) = self.buf[from..self.end].iter().position(|&b| b == b'\n') {
                let nl = from + i;
                let line = (
                    self.start,
                    if nl > self.start && self.buf[nl - 1] == b'\r' {
                        nl - 1
                    } else {
                        nl
                    },
                );
                self.start = nl + 1;
                return Ok(line);
            }
            if self.end - self.start > 4096 {
                return Err(Fail::Broken);
            }
            let scanned = self.end - self.start;
            match self.fill().await {
                Ok(0) | Err(_) => return Err(Fail::Broken),
                Ok(_) => from = self.start + scanned,
            }
        }
    }
}

/// The body's framing and whether the server closes after it (RFC 9112 §6.3).
fn framing(
    head: bool,
    status: u16,
    version: Option<u8>,
    headers: &[httparse::Header<'_>],
) -> Result<(Framing, bool), Fail> {
    let mut length = None;
    let mut chunked = false;
    let mut close = version == Some(0);
    for h in headers {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or(Fail::Broken)?;
            if length.is_some_and(|l| l != n) {
                return Err(Fail::Broken);
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h
                .value
                .split(|&b| b == b',')
                .next_back()
                .is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && version == Some(0) {
                    close = false;
                }
            }
        }
    }
    let framing = if head || status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::None
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    Ok((framing, close))
}

/// A chunk-size line: hex digits, optionally followed by `;extensions`.
fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.split(|&b| b == b';').next()?.trim_ascii();
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

impl WireClient {
    /// A client of `target`; it connects on first use.
    pub fn new(target: std::sync::Arc<HttpTarget>) -> Self {
        WireClient { target, conn: None }
    }

    /// Sends the target's request once and reads the whole response.
    pub async fn call(&mut self) -> Outcome {
        // Taken out for the duration of the call: if this future is dropped midway
        // (timeout, stop), the half-used connection goes with it.
        let (mut conn, mut reused) = match self.conn.take() {
            Some(c) => (c, true),
            None => match Conn::open(&self.target).await {
                Some(c) => (c, false),
                None => return Outcome::error(ErrorClass::Connect),
            },
        };
        loop {
            match conn.exchange(&self.target).await {
                Ok((status, first, bytes, reusable)) => {
                    if reusable && conn.start == conn.end {
                        self.conn = Some(conn);
                    }
                    let error = ErrorClass::of_status(status);
                    return Outcome {
                        error,
                        first_byte: None,
                        bytes,
                    }
                    .first_byte_at(first);
                }
                // A keep-alive connection the server closed while idle: not this
                // request's failure. Reconnect and send it again, once; after the
                // request went out, only if sending it twice is harmless (not a POST).
                Err(Fail::NotSent) if reused => {
                    reused = false;
                    conn = match Conn::open(&self.target).await {
                        Some(c) => c,
                        None => return Outcome::error(ErrorClass::Connect),
                    };
                }
                Err(Fail::ClosedEarly) if reused && self.target.idempotent() => {
                    reused = false;
                    conn = match Conn::open(&self.target).await {
                        Some(c) => c,
                        None => return Outcome::error(ErrorClass::Connect),
                    };
                }
                Err(_) => return Outcome::error(ErrorClass::Protocol),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::http::HttpRequestSpec;

    /// A server that answers the n-th request on a connection with `replies[n]` and
    /// closes after the last; the test sees what it received.
    async fn server(replies: Vec<&'static [u8]>) -> (std::net::SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let h = tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut replies = replies.into_iter();
            while let Some(first) = replies.next() {
                let (mut s, _) = l.accept().await.expect("accept");
                let mut next = Some(first);
                while let Some(reply) = next {
                    let mut buf = [0u8; 4096];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    seen.extend_from_slice(&buf[..n]);
                    s.write_all(reply).await.expect("write");
                    // An empty reply marks "close this connection now".
                    next = replies.next().filter(|r| !r.is_empty());
                }
            }
            seen
        });
        (addr, h)
    }

    async fn client(addr: std::net::SocketAddr, method: &str) -> WireClient {
        let spec = HttpRequestSpec {
            url: format!("http://{addr}/x").parse().expect("url"),
            method: method.parse().expect("method"),
            headers: vec![],
            body: bytes::Bytes::new(),
        };
        WireClient::new(std::sync::Arc::new(HttpTarget::resolve(&spec).await.expect("target")))
    }

    #[tokio::test]
    async fn lengths_chunks_interim_replies_and_closes_are_read_exactly() {
        let (addr, h) = server(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer: t\r\n\r\n",
            b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.0 200 OK\r\n\r\nuntil close",
        ])
        .await;
        let mut c = client(addr, "GET").await;
        let o = c.call().await;
        assert_eq!((o.error, o.bytes), (None, 5));
        assert!(o.first_byte.is_some());
        let o = c.call().await;
        assert_eq!((o.error, o.bytes), (None, 19));
        let o = c.call().await;
        assert_eq!((o.error, o.bytes), (Some(ErrorClass::Status(503)), 0));
        let o = c.call().await;
        assert_eq!((o.error, o.bytes), (None, 11));
        assert!(
            c.conn.is_none(),
            "an HTTP/1.0 reply without keep-alive ends the connection"
        );
        let seen = String::from_utf8(h.await.expect("server")).expect("utf8");
        assert_eq!(seen.matches("GET /x HTTP/1.1\r\n").count(), 4, "{seen}");
        assert!(seen.contains(&format!("host: {addr}\r\n")), "{seen}");
    }

    #[tokio::test]
    async fn a_stale_keep_alive_is_reopened_once_and_broken_replies_are_protocol_errors() {
        let (addr, _h) = server(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            b"",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ])
        .await;
        let mut c = client(addr, "GET").await;
        assert_eq!(c.call().await.error, None);
        // The server closed the idle connection: the request goes out again on a new one.
        assert_eq!(c.call().await.error, None);
        assert_eq!(c.call().await.error, Some(ErrorClass::Protocol));
        assert!(c.conn.is_none());
    }

    #[tokio::test]
    async fn a_post_the_server_may_have_read_is_not_sent_twice() {
        let (addr, h) = server(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            b"",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ])
        .await;
        let mut c = client(addr, "POST").await;
        assert_eq!(c.call().await.error, None);
        // Sent, then the connection closed without an answer: the server may have
        // acted on it, so it is an error, not a retry (which would take the next
        // connection's reply).
        assert_eq!(c.call().await.error, Some(ErrorClass::Protocol));
        assert_eq!(c.call().await.error, None);
        drop(c);
        let seen = String::from_utf8(h.await.expect("server")).expect("utf8");
        assert_eq!(seen.matches("POST /x HTTP/1.1\r\n").count(), 2, "{seen}");
    }

    #[tokio::test]
    async fn head_replies_have_no_body_and_a_refused_port_is_a_connect_error() {
        let (addr, _h) = server(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"]).await;
        let mut c = client(addr, "HEAD").await;
        let o = c.call().await;
        assert_eq!((o.error, o.bytes), (None, 0));
        let mut c = client("127.0.0.1:1".parse().expect("addr"), "GET").await;
        assert_eq!(c.call().await.error, Some(ErrorClass::Connect));
    }

    #[test]
    fn chunk_sizes_parse_with_extensions_and_refuse_junk() {
        assert_eq!(parse_chunk_size(b"1a"), Some(26));
        assert_eq!(parse_chunk_size(b"0;name=value"), Some(0));
        assert_eq!(parse_chunk_size(b" 10 "), Some(16));
        assert_eq!(parse_chunk_size(b""), None);
        assert_eq!(parse_chunk_size(b"zz"), None);
        assert_eq!(parse_chunk_size(b"ffffffffffffffff"), None);
    }
}
