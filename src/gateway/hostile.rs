//! Hostile gateways: servers that break HTTP itself rather than a gateway rule. Each
//! [`Hostile`] behaviour answers every request the same broken way (refuses the
//! connection, never answers, stalls, dribbles, streams forever, sends a 1 GiB body,
//! invalid UTF-8 or JSON, broken SSE framing, a bad chunk, a reset, no status line, a
//! redirect to itself, an HTML page, a gzip bomb, `101 Switching Protocols`), so that
//! gateprobe can be shown to finish within its timeouts, classify the failure on the
//! right check, keep memory bounded and write every report. `gateprobe gateway --hostile NAME` serves one.
//!
//! The servers speak raw HTTP/1.1 over tokio sockets: most of these replies cannot be
//! produced through a well-behaved HTTP server library.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

/// One way of breaking HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hostile {
    /// The port refuses connections (bound, never listening).
    Refuse,
    /// Accepts, reads the request, never answers.
    Silent,
    /// Sends a status line and headers, then nothing more.
    StallAfterHeaders,
    /// Sends a valid reply one byte per second.
    Slowloris,
    /// A 200 event stream whose events never stop.
    EndlessStream,
    /// A 200 JSON reply announcing and sending 1 GiB.
    HugeBody,
    /// A 200 JSON reply whose strings are not UTF-8.
    InvalidUtf8,
    /// A 200 JSON reply cut in the middle of an object.
    InvalidJson,
    /// A 200 event stream with broken framing and no terminator.
    BrokenSse,
    /// A chunked body with an invalid chunk-size line.
    ChunkedError,
    /// A streamed reply cut by a TCP reset.
    ResetMidStream,
    /// Reads the request and closes without a status line.
    NoStatusLine,
    /// `307` to the same URL, forever.
    RedirectLoop,
    /// A 200 HTML page where JSON belongs.
    WrongContentType,
    /// A `Content-Encoding: gzip` body that inflates to 1 GiB.
    GzipBomb,
    /// `101 Switching Protocols` to every request, then nothing HTTP.
    SwitchingProtocols,
}

impl Hostile {
    /// Every behaviour.
    pub const ALL: [Hostile; 16] = [
        Hostile::Refuse,
        Hostile::Silent,
        Hostile::StallAfterHeaders,
        Hostile::Slowloris,
        Hostile::EndlessStream,
        Hostile::HugeBody,
        Hostile::InvalidUtf8,
        Hostile::InvalidJson,
        Hostile::BrokenSse,
        Hostile::ChunkedError,
        Hostile::ResetMidStream,
        Hostile::NoStatusLine,
        Hostile::RedirectLoop,
        Hostile::WrongContentType,
        Hostile::GzipBomb,
        Hostile::SwitchingProtocols,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Hostile::Refuse => "refuse",
            Hostile::Silent => "silent",
            Hostile::StallAfterHeaders => "stall-after-headers",
            Hostile::Slowloris => "slowloris",
            Hostile::EndlessStream => "endless-stream",
            Hostile::HugeBody => "huge-body",
            Hostile::InvalidUtf8 => "invalid-utf8",
            Hostile::InvalidJson => "invalid-json",
            Hostile::BrokenSse => "broken-sse",
            Hostile::ChunkedError => "chunked-error",
            Hostile::ResetMidStream => "reset-mid-stream",
            Hostile::NoStatusLine => "no-status-line",
            Hostile::RedirectLoop => "redirect-loop",
            Hostile::WrongContentType => "wrong-content-type",
            Hostile::GzipBomb => "gzip-bomb",
            Hostile::SwitchingProtocols => "switching-protocols",
        }
    }

    /// What it does, in words.
    pub fn does(self) -> &'static str {
        match self {
            Hostile::Refuse => "refuses every connection",
            Hostile::Silent => "accepts, reads the request, never answers",
            Hostile::StallAfterHeaders => "sends the status line and headers, then stalls",
            Hostile::Slowloris => "sends a valid reply one byte per second",
            Hostile::EndlessStream => "streams SSE token events forever",
            Hostile::HugeBody => "sends a 1 GiB JSON body",
            Hostile::InvalidUtf8 => "sends JSON whose strings are not UTF-8",
            Hostile::InvalidJson => "sends JSON cut in the middle of an object",
            Hostile::BrokenSse => "sends an event stream with broken framing and no [DONE]",
            Hostile::ChunkedError => "sends a chunked body with an invalid chunk-size line",
            Hostile::ResetMidStream => "starts a stream, then resets the connection",
            Hostile::NoStatusLine => "reads the request and closes without answering",
            Hostile::RedirectLoop => "redirects (307) every request to itself",
            Hostile::WrongContentType => "answers 200 with an HTML page",
            Hostile::GzipBomb => "sends a gzip-encoded body that inflates to 1 GiB",
            Hostile::SwitchingProtocols => "answers 101 Switching Protocols, then closes",
        }
    }

    /// The behaviour called `name`.
    pub fn from_name(name: &str) -> Option<Hostile> {
        Hostile::ALL.into_iter().find(|h| h.name() == name)
    }
}

/// A running hostile gateway; dropping it stops it.
#[derive(Debug)]
pub struct HostileGateway {
    addr: SocketAddr,
    cancel: CancellationToken,
    // `refuse` keeps its port bound (so nobody else takes it) without listening.
    _bound: Option<TcpSocket>,
}

impl HostileGateway {
    /// Binds `addr` (port 0 for any) and serves `mode` on the runtime of `rt`.
    pub fn start(mode: Hostile, addr: SocketAddr, rt: &tokio::runtime::Handle) -> std::io::Result<Self> {
        let _enter = rt.enter();
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        let addr = socket.local_addr()?;
        let cancel = CancellationToken::new();
        if mode == Hostile::Refuse {
            // A bound socket that never listens: the kernel answers SYN with RST.
            return Ok(HostileGateway {
                addr,
                cancel,
                _bound: Some(socket),
            });
        }
        let listener = socket.listen(1024)?;
        let bomb = (mode == Hostile::GzipBomb).then(gzip_bomb);
        rt.spawn(accept_loop(mode, listener, cancel.clone(), bomb));
        Ok(HostileGateway {
            addr,
            cancel,
            _bound: None,
        })
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for HostileGateway {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn accept_loop(mode: Hostile, listener: TcpListener, cancel: CancellationToken, bomb: Option<Vec<u8>>) {
    let bomb: std::sync::Arc<[u8]> = bomb.unwrap_or_default().into();
    loop {
        let stream = tokio::select! {
            () = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(_) => continue,
            },
        };
        let (cancel, bomb) = (cancel.clone(), bomb.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                _ = answer(mode, stream, &bomb) => {}
            }
        });
    }
}

/// The request line's target, after the head and body were read.
async fn read_request(s: &mut TcpStream) -> std::io::Result<String> {
    const MAX_HEAD: usize = 64 * 1024;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(std::io::Error::other("request head too large"));
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    // Read (and drop) the body, so closing the socket does not reset it early.
    let mut left = length.saturating_sub(buf.len() - head_end).min(8 * 1024 * 1024);
    while left > 0 {
        let n = s.read(&mut chunk[..left.min(4096)]).await?;
        if n == 0 {
            break;
        }
        left -= n;
    }
    Ok(head.split_whitespace().nth(1).unwrap_or("/").to_owned())
}

/// A reply whose content every adapter can read: an OpenAI chat and text completion
/// and the AI gateway's `content`.
const GOOD_JSON: &str = r#"{"id":"hostile","object":"chat.completion","choices":[{"index":0,"text":"ok","message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"content":"ok"}"#;

const SSE_EVENT: &str =
    "data: {\"id\":\"hostile\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok \"},\"text\":\"tok \"}]}\n\n";

fn head(status: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut h = format!("HTTP/1.1 {status}\r\nconnection: close\r\n");
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    h.into_bytes()
}

fn whole(status: &str, content_type: &str, extra: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let len = body.len().to_string();
    let mut headers = vec![("content-type", content_type), ("content-length", len.as_str())];
    headers.extend_from_slice(extra);
    let mut out = head(status, &headers);
    out.extend_from_slice(body);
    out
}

fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

const STREAM_HEAD: [(&str, &str); 2] = [("content-type", "text/event-stream"), ("transfer-encoding", "chunked")];

async fn answer(mode: Hostile, mut s: TcpStream, bomb: &[u8]) -> std::io::Result<()> {
    let _ = s.set_nodelay(true);
    let target = read_request(&mut s).await?;
    let forever = std::future::pending::<()>;
    match mode {
        Hostile::Refuse => {}
        Hostile::Silent => forever().await,
        Hostile::StallAfterHeaders => {
            s.write_all(&head(
                "200 OK",
                &[("content-type", "application/json"), ("content-length", "4096")],
            ))
            .await?;
            s.write_all(b"{\"choices\":").await?;
            forever().await;
        }
        Hostile::Slowloris => {
            for b in whole("200 OK", "application/json", &[], GOOD_JSON.as_bytes()) {
                s.write_all(&[b]).await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Hostile::EndlessStream => {
            s.write_all(&head("200 OK", &STREAM_HEAD)).await?;
            let event = chunk(SSE_EVENT.as_bytes());
            loop {
                s.write_all(&event).await?;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        Hostile::HugeBody => {
            const GIB: usize = 1 << 30;
            s.write_all(&head(
                "200 OK",
                &[
                    ("content-type", "application/json"),
                    ("content-length", &GIB.to_string()),
                ],
            ))
            .await?;
            let prefix = b"{\"choices\":[{\"text\":\"";
            s.write_all(prefix).await?;
            let block = vec![b'a'; 64 * 1024];
            let mut left = GIB - prefix.len();
            while left > 0 {
                let n = left.min(block.len());
                s.write_all(&block[..n]).await?;
                left -= n;
            }
        }
        Hostile::InvalidUtf8 => {
            let body = b"{\"choices\":[{\"index\":0,\"text\":\"caf\xe9 \xff\xfe\",\"message\":{\"role\":\"assistant\",\"content\":\"caf\xe9 \xff\xfe\"}}],\"content\":\"caf\xe9 \xff\xfe\"}";
            s.write_all(&whole("200 OK", "application/json", &[], body)).await?;
        }
        Hostile::InvalidJson => {
            let body = br#"{"choices":[{"index":0,"text":"ok","message":{"role":"assistant","content":"o"#;
            s.write_all(&whole("200 OK", "application/json", &[], body)).await?;
        }
        Hostile::BrokenSse => {
            let body = format!(
                "{SSE_EVENT}data {{\"choices\": [\r\ndata: {{\"choices\":[{{\"delta\":{{\"content\":\"half\"\n\0\n: comment\ndata: {{\"choices\":[{{\"delta\":{{\"content\":\"tail\"}}}}]}}"
            );
            s.write_all(&whole("200 OK", "text/event-stream", &[], body.as_bytes()))
                .await?;
        }
        Hostile::ChunkedError => {
            s.write_all(&head(
                "200 OK",
                &[("content-type", "application/json"), ("transfer-encoding", "chunked")],
            ))
            .await?;
            s.write_all(&chunk(&GOOD_JSON.as_bytes()[..20])).await?;
            s.write_all(b"zz-not-hex\r\n").await?;
            s.flush().await?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Hostile::ResetMidStream => {
            s.write_all(&head("200 OK", &STREAM_HEAD)).await?;
            s.write_all(&chunk(SSE_EVENT.as_bytes())).await?;
            s.write_all(&chunk(SSE_EVENT.as_bytes())).await?;
            s.flush().await?;
            tokio::time::sleep(Duration::from_millis(20)).await;
            // Linger zero: close sends RST instead of FIN.
            s.set_zero_linger()?;
            drop(s);
        }
        Hostile::NoStatusLine => drop(s),
        Hostile::RedirectLoop => {
            s.write_all(&head(
                "307 Temporary Redirect",
                &[("location", &target), ("content-length", "0")],
            ))
            .await?;
        }
        Hostile::WrongContentType => {
            let page =
                b"<!doctype html><html><head><title>Service</title></head><body><h1>It works!</h1></body></html>";
            s.write_all(&whole("200 OK", "text/html; charset=utf-8", &[], page))
                .await?;
        }
        Hostile::SwitchingProtocols => {
            s.write_all(&head(
                "101 Switching Protocols",
                &[("upgrade", "websocket"), ("connection", "upgrade")],
            ))
            .await?;
            s.flush().await?;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Hostile::GzipBomb => {
            s.write_all(&whole(
                "200 OK",
                "application/json",
                &[("content-encoding", "gzip")],
                bomb,
            ))
            .await?;
        }
    }
    Ok(())
}

/// A gzip body inflating to 1 GiB of zeros: 1024 concatenated members of 1 MiB each
/// (about 1 KiB compressed per member).
fn gzip_bomb() -> Vec<u8> {
    gzip_member().repeat(1024)
}

/// One gzip member of 1 MiB of zeros.
fn gzip_member() -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(&vec![0u8; 1 << 20]);
    enc.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for h in Hostile::ALL {
            assert_eq!(Hostile::from_name(h.name()), Some(h));
            assert!(!h.does().is_empty());
        }
        assert_eq!(Hostile::from_name("nope"), None);
    }

    #[test]
    fn the_gzip_bomb_inflates_to_a_gibibyte() {
        use std::io::Read as _;
        let member = gzip_member();
        let mut inflated = Vec::new();
        flate2::read::GzDecoder::new(&member[..])
            .read_to_end(&mut inflated)
            .expect("inflate");
        assert_eq!(inflated.len(), 1 << 20);
        let bomb = gzip_bomb();
        assert_eq!(bomb.len(), member.len() * 1024);
        assert!(bomb.len() < 2 << 20, "{} bytes", bomb.len());
    }
}
