//! Where gateprobe's own servers (mock backends, the reference gateway) live: a tokio
//! runtime on threads of its own, so the client side cannot starve them, and servers
//! that bind `127.0.0.1:0`, set `TCP_NODELAY`, stop when their guard is dropped, and
//! speak plain HTTP or, for TLS mocks, HTTPS.

use std::net::SocketAddr;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::sync::oneshot;

/// Serves `router` on `listener`, on `handle`'s runtime, until the returned sender
/// fires or is dropped.
fn serve_until_stopped<L>(handle: &tokio::runtime::Handle, listener: L, router: Router) -> oneshot::Sender<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let (tx, rx) = oneshot::channel::<()>();
    handle.spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    tx
}

/// A runtime hosting servers. Dropping it stops every server on it.
pub struct ServerHost {
    rt: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for ServerHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerHost")
    }
}

impl ServerHost {
    /// A host with `workers` threads.
    pub fn new(workers: usize) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name("gateprobe-server")
            .enable_all()
            .build()?;
        Ok(ServerHost { rt: Some(rt) })
    }

    /// A handle for spawning work (such as upstream calls) onto the host.
    pub fn handle(&self) -> tokio::runtime::Handle {
        self.rt
            .as_ref()
            .map(|r| r.handle().clone())
            .unwrap_or_else(tokio::runtime::Handle::current)
    }

    /// Binds `addr` on the host's runtime: the listener, its address and the runtime.
    fn bind(&self, addr: SocketAddr) -> std::io::Result<(tokio::net::TcpListener, SocketAddr, tokio::runtime::Handle)> {
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let local = std_listener.local_addr()?;
        let handle = self.handle();
        let _enter = handle.enter();
        let listener = tokio::net::TcpListener::from_std(std_listener)?;
        Ok((listener, local, handle))
    }

    /// Binds `addr` (use port 0 for any) and serves `router` until the returned guard
    /// is dropped or the host stops.
    pub fn serve(&self, addr: SocketAddr, router: Router) -> std::io::Result<Server> {
        let (listener, local, handle) = self.bind(addr)?;
        let listener = listener.tap_io(|tcp| {
            // Token streams are many small writes; Nagle would batch them.
            let _ = tcp.set_nodelay(true);
        });
        Ok(Server {
            addr: local,
            stop: Some(serve_until_stopped(&handle, listener, router)),
            tls: false,
        })
    }

    /// Like [`ServerHost::serve`], over TLS with `config`. Handshakes run concurrently
    /// (each bounded by [`HANDSHAKE_TIMEOUT`]) outside the accept loop, so a client that
    /// stalls or refuses the certificate holds up nobody; only completed handshakes
    /// reach the HTTP server.
    pub fn serve_tls(
        &self,
        addr: SocketAddr,
        router: Router,
        config: std::sync::Arc<rustls::ServerConfig>,
    ) -> std::io::Result<Server> {
        let (listener, local, handle) = self.bind(addr)?;
        let (conns, incoming) = tokio::sync::mpsc::channel(64);
        handle.spawn(accept_tls(listener, tokio_rustls::TlsAcceptor::from(config), conns));
        let listener = TlsListener { incoming, local };
        Ok(Server {
            addr: local,
            stop: Some(serve_until_stopped(&handle, listener, router)),
            tls: true,
        })
    }
}

/// How long a TLS client may take to complete its handshake.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

type TlsStream = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

/// Accepts TCP connections and hands each completed handshake to the HTTP server, until
/// the server is gone. Handshakes in flight are aborted with the loop.
async fn accept_tls(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    conns: tokio::sync::mpsc::Sender<(TlsStream, SocketAddr)>,
) {
    let mut handshakes = tokio::task::JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            () = conns.closed() => return,
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                // Out of descriptors and the like: wait rather than spin.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        // Token streams are many small writes; Nagle would batch them.
        let _ = tcp.set_nodelay(true);
        let (acceptor, conns) = (acceptor.clone(), conns.clone());
        handshakes.spawn(async move {
            // A client that refuses the certificate (or has none to offer an mTLS
            // mock) ends the handshake: nothing reaches the HTTP server.
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp).into_fallible()).await {
                Ok(Ok(tls)) => {
                    let _ = conns.send((tls, peer)).await;
                }
                Ok(Err((_, tcp))) => close_after_alert(tcp).await,
                Err(_) => {}
            }
        });
        while handshakes.try_join_next().is_some() {}
    }
}

/// Closes a connection whose handshake failed once its alert is out, without a reset.
/// A TLS 1.3 client sends its request as soon as its side of the handshake is done,
/// before the mock has judged its certificate (mTLS): closing with that request unread
/// would make the kernel answer with a reset, which can reach the client before the
/// alert and lose it ("connection reset" instead of "certificate required"). So: end
/// the writing side, read what the client sent until it closes (at most a second),
/// then close.
async fn close_after_alert(mut tcp: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tcp.shutdown().await;
    let mut sink = [0u8; 4096];
    let drain = async { while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {} };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), drain).await;
}

/// The HTTP server's side of [`accept_tls`]: connections whose handshake completed.
struct TlsListener {
    incoming: tokio::sync::mpsc::Receiver<(TlsStream, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(c) => c,
            // The accept loop ended: no connection will come again.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

impl Drop for ServerHost {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// A running server; dropping it begins a graceful shutdown.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    tls: bool,
}

impl Server {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr`, or `https://addr` over TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
