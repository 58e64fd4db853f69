//! Where gateprobe's own servers (mock backends, the reference gateway) live: a tokio
//! runtime on threads of its own, so the client side cannot starve them, and servers
//! that bind `127.0.0.1:0`, set `TCP_NODELAY`, and stop when their guard is dropped.

use std::net::SocketAddr;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::sync::oneshot;

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

    /// Binds `addr` (use port 0 for any) and serves `router` until the returned guard
    /// is dropped or the host stops.
    pub fn serve(&self, addr: SocketAddr, router: Router) -> std::io::Result<Server> {
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let local = std_listener.local_addr()?;
        let handle = self.handle();
        let _enter = handle.enter();
        let listener = tokio::net::TcpListener::from_std(std_listener)?;
        let (tx, rx) = oneshot::channel::<()>();
        let listener = listener.tap_io(|tcp| {
            // Token streams are many small writes; Nagle would batch them.
            let _ = tcp.set_nodelay(true);
        });
        handle.spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Server {
            addr: local,
            stop: Some(tx),
        })
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
}

impl Server {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
