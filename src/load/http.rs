//! Plain HTTP/1.1 requests as a [`Client`]: what `gateprobe bench` drives.
//!
//! The default client is lean on purpose: one keep-alive connection per worker on
//! hyper's low-level `conn::http1`, with the connection future polled *in the
//! worker's own task* next to the request instead of on a spawned task, so a request
//! costs no cross-task wake-up and there is no detached task to lose. The response
//! body is counted, never buffered. A reqwest-based client is kept for comparison
//! (`--client reqwest`); on this project's 2-core measurements it sustained about half
//! the requests per CPU-second of the lean client (see the README).

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_util::future::{Either, select};
use http::header::{CONNECTION, HOST, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::wire::WireClient;
use super::{Client, ClientFactory, Outcome};
use crate::metrics::ErrorClass;

/// Which HTTP client implementation to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ClientKind {
    /// One connection per worker, the request written and the response read directly
    /// on the socket ([`super::wire`]).
    #[default]
    Wire,
    /// One hyper `conn::http1` connection per worker, polled in the worker's task.
    Lean,
    /// A shared `reqwest::Client` (pooled hyper-util client).
    Reqwest,
}

/// The request every worker sends, resolved once.
#[derive(Clone, Debug)]
pub struct HttpRequestSpec {
    /// `http://host[:port]/path?query`.
    pub url: Uri,
    /// Method.
    pub method: Method,
    /// Extra headers, in order; a `Host` here overrides the URL's.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Request body (empty for none).
    pub body: Bytes,
}

/// A target that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// Not `http://` (TLS is not supported by the bench client).
    #[error("only http:// URLs are supported, got `{0}`")]
    Scheme(String),
    /// No host in the URL.
    #[error("the URL has no host")]
    NoHost,
    /// The host did not resolve.
    #[error("cannot resolve `{0}`: {1}")]
    Resolve(String, std::io::Error),
    /// The reqwest client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// A resolved target: address, origin-form request line and headers, ready to clone.
#[derive(Debug)]
pub struct HttpTarget {
    addr: SocketAddr,
    method: Method,
    path: Uri,
    url: String,
    headers: HeaderMap,
    body: Bytes,
    /// The whole request as it goes on the wire.
    wire: Vec<u8>,
}

impl HttpTarget {
    /// Whether sending the request twice has the effect of sending it once (RFC 9110
    /// §9.2.2), so a request lost to a stale connection may be retried.
    pub fn idempotent(&self) -> bool {
        matches!(
            self.method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
        )
    }

    /// Resolves the host (once: every connection goes to the same address).
    pub async fn resolve(spec: &HttpRequestSpec) -> Result<Self, TargetError> {
        if spec.url.scheme_str() != Some("http") {
            return Err(TargetError::Scheme(spec.url.to_string()));
        }
        let authority = spec.url.authority().ok_or(TargetError::NoHost)?;
        let port = authority.port_u16().unwrap_or(80);
        let host = authority.host().trim_start_matches('[').trim_end_matches(']');
        let addr = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| TargetError::Resolve(host.to_owned(), e))?
            .next()
            .ok_or_else(|| TargetError::Resolve(host.to_owned(), std::io::ErrorKind::NotFound.into()))?;
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(authority.as_str()) {
            headers.insert(HOST, v);
        }
        for (k, v) in &spec.headers {
            if k == HOST {
                headers.insert(k.clone(), v.clone());
            } else {
                headers.append(k.clone(), v.clone());
            }
        }
        if !spec.body.is_empty() && !headers.contains_key(http::header::CONTENT_LENGTH) {
            headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(spec.body.len()));
        }
        let path = spec
            .url
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .parse()
            .unwrap_or_else(|_| Uri::from_static("/"));
        let mut wire = format!("{} {} HTTP/1.1\r\n", spec.method, path).into_bytes();
        for (k, v) in &headers {
            wire.extend_from_slice(k.as_str().as_bytes());
            wire.extend_from_slice(b": ");
            wire.extend_from_slice(v.as_bytes());
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"\r\n");
        wire.extend_from_slice(&spec.body);
        Ok(HttpTarget {
            addr,
            method: spec.method.clone(),
            path,
            url: spec.url.to_string(),
            headers,
            body: spec.body.clone(),
            wire,
        })
    }

    /// The serialised request: request line, headers, blank line, body.
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// Whether the method is HEAD (the response has no body).
    pub fn is_head(&self) -> bool {
        self.method == Method::HEAD
    }

    /// The address connections go to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn request(&self) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.path.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }
}

fn classify(status: StatusCode) -> Option<ErrorClass> {
    ErrorClass::of_status(status.as_u16())
}

/// Makes one HTTP client per worker.
#[derive(Debug, Clone)]
pub struct HttpFactory {
    target: Arc<HttpTarget>,
    kind: ClientKind,
    reqwest: Option<reqwest::Client>,
}

impl HttpFactory {
    /// A factory for `kind` clients of `target`.
    pub fn new(target: HttpTarget, kind: ClientKind) -> Result<Self, TargetError> {
        let reqwest = match kind {
            ClientKind::Wire | ClientKind::Lean => None,
            // Like every client of gateprobe's: no proxy from the environment (the
            // target is the URL given, not HTTP_PROXY's), and no redirects followed (a
            // redirect is the answer measured).
            ClientKind::Reqwest => Some(
                reqwest::Client::builder()
                    .no_proxy()
                    .redirect(reqwest::redirect::Policy::none())
                    .tcp_nodelay(true)
                    .http1_only()
                    .build()
                    .map_err(|e| TargetError::Client(e.to_string()))?,
            ),
        };
        Ok(HttpFactory {
            target: Arc::new(target),
            kind,
            reqwest,
        })
    }
}

impl ClientFactory for HttpFactory {
    type Client = HttpClient;
    fn client(&self, _worker: usize) -> HttpClient {
        match (&self.reqwest, self.kind) {
            (Some(c), _) => HttpClient::Reqwest(c.clone(), Arc::clone(&self.target)),
            (None, ClientKind::Lean) => HttpClient::Lean(LeanClient {
                target: Arc::clone(&self.target),
                conn: None,
            }),
            (None, _) => HttpClient::Wire(WireClient::new(Arc::clone(&self.target))),
        }
    }
}

/// One worker's HTTP client.
#[derive(Debug)]
pub enum HttpClient {
    /// The wire client.
    Wire(WireClient),
    /// The lean hyper client.
    Lean(LeanClient),
    /// reqwest, for comparison.
    Reqwest(reqwest::Client, Arc<HttpTarget>),
}

impl Client for HttpClient {
    async fn call(&mut self) -> Outcome {
        match self {
            HttpClient::Wire(c) => c.call().await,
            HttpClient::Lean(c) => c.call().await,
            HttpClient::Reqwest(c, t) => reqwest_call(c, t).await,
        }
    }
}

type Connection = http1::Connection<TokioIo<TcpStream>, Full<Bytes>>;

/// A connection and its request handle; boxed because hyper's connection state is a
/// few hundred bytes and lives as long as the connection, not per request.
type Conn = Box<(http1::SendRequest<Full<Bytes>>, Connection)>;

/// A keep-alive HTTP/1.1 connection, opened on first use and after any failure.
pub struct LeanClient {
    target: Arc<HttpTarget>,
    conn: Option<Conn>,
}

impl std::fmt::Debug for LeanClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeanClient")
            .field("addr", &self.target.addr)
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

async fn connect(addr: SocketAddr) -> Option<Conn> {
    let tcp = TcpStream::connect(addr).await.ok()?;
    // Requests are small writes awaiting a reply: never let Nagle hold them.
    let _ = tcp.set_nodelay(true);
    http1::handshake(TokioIo::new(tcp)).await.ok().map(Box::new)
}

/// Waits until `sender` can take a request, polling the connection meanwhile.
/// `false` if the connection ended first (a server closing an idle keep-alive).
async fn ready(sender: &mut http1::SendRequest<Full<Bytes>>, conn: &mut Connection) -> bool {
    match select(pin!(sender.ready()), conn).await {
        Either::Left((r, _)) => r.is_ok(),
        Either::Right(_) => false,
    }
}

impl LeanClient {
    async fn call(&mut self) -> Outcome {
        // Taken out for the duration of the call: if this future is dropped midway
        // (timeout, stop), the half-used connection goes with it.
        let reused = self.conn.is_some();
        let mut c = match self.conn.take() {
            Some(c) => c,
            None => match connect(self.target.addr).await {
                Some(c) => c,
                None => return Outcome::error(ErrorClass::Connect),
            },
        };
        // Usually ready already: skip the select (and a poll of the connection).
        if !c.0.is_ready() && !ready(&mut c.0, &mut c.1).await {
            if !reused {
                return Outcome::error(ErrorClass::Protocol);
            }
            // A stale keep-alive connection is not the request's failure: reconnect.
            c = match connect(self.target.addr).await {
                Some(c) => c,
                None => return Outcome::error(ErrorClass::Connect),
            };
            if !ready(&mut c.0, &mut c.1).await {
                return Outcome::error(ErrorClass::Protocol);
            }
        }
        let req = self.target.request();
        let (result, conn_alive) = {
            let (sender, conn) = &mut *c;
            let exchange = pin!(async {
                let resp = sender.send_request(req).await.ok()?;
                let first = Instant::now();
                let status = resp.status();
                let close = resp
                    .headers()
                    .get(CONNECTION)
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
                let mut body = resp.into_body();
                let mut bytes = 0u64;
                while let Some(frame) = body.frame().await {
                    match frame {
                        Ok(f) => bytes += f.data_ref().map_or(0, |d| d.len() as u64),
                        Err(_) => return Some((status, first, bytes, close, false)),
                    }
                }
                Some((status, first, bytes, close, true))
            });
            match select(exchange, &mut *conn).await {
                Either::Left((r, _)) => (r, true),
                // The connection ended; what it delivered before may still complete the
                // response (a `Connection: close` reply), so finish reading it.
                Either::Right((_, exchange)) => (exchange.await, false),
            }
        };
        match result {
            Some((status, first, bytes, close, complete)) => {
                if conn_alive && complete && !close {
                    self.conn = Some(c);
                }
                let outcome = if complete {
                    Outcome {
                        error: classify(status),
                        first_byte: None,
                        bytes,
                    }
                } else {
                    Outcome {
                        error: Some(ErrorClass::Protocol),
                        first_byte: None,
                        bytes,
                    }
                };
                outcome.first_byte_at(first)
            }
            None => Outcome::error(ErrorClass::Protocol),
        }
    }
}

async fn reqwest_call(client: &reqwest::Client, t: &HttpTarget) -> Outcome {
    let classify_err = |e: &reqwest::Error| {
        if e.is_connect() {
            ErrorClass::Connect
        } else if e.is_timeout() {
            ErrorClass::Timeout
        } else {
            ErrorClass::Protocol
        }
    };
    let mut headers = t.headers.clone();
    headers.remove(HOST);
    let resp = match client
        .request(t.method.clone(), &t.url)
        .headers(headers)
        .body(t.body.clone())
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return Outcome::error(classify_err(&e)),
    };
    let first = Instant::now();
    let status = resp.status();
    let mut resp = resp;
    let mut bytes = 0u64;
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => bytes += c.len() as u64,
            Ok(None) => break,
            Err(_) => {
                return Outcome {
                    error: Some(ErrorClass::Protocol),
                    first_byte: Some(first),
                    bytes,
                };
            }
        }
    }
    Outcome {
        error: classify(status),
        first_byte: Some(first),
        bytes,
    }
}
