//! Accepting connections: a cap on how many are open at once, a timeout on reading a
//! request's headers (and the body's timeout in `front.rs`), `TCP_NODELAY`, the client's
//! address for rate limits, and a graceful stop that lets requests in progress finish.
//!
//! Why not `axum::serve`: it has no header timeout and no connection cap, so 520 clients that
//! send half a request could hold the server (issue 7). Here a client that sends nothing for
//! [`HEADER_READ_TIMEOUT`] is cut off, and past [`CONNECTIONS_MAX`] new connections wait in the
//! kernel's backlog instead of taking memory; requests that are read whole still need one of
//! the in-flight permits, which a slow client never holds.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Connections open at once, by default ([`ServeOptions::connections_max`]). Each costs a
/// socket and a few KiB until its request is read; past this, new ones wait in the listen
/// backlog.
pub const CONNECTIONS_MAX: usize = 4096;
/// How long a client may take to send a request's headers (also how long an idle
/// keep-alive connection is kept).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stop waits for requests in progress.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Limits of the listener.
#[derive(Clone, Copy, Debug)]
pub struct ServeOptions {
    /// Connections open at once ([`CONNECTIONS_MAX`]); tests make it small.
    pub connections_max: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions { connections_max: CONNECTIONS_MAX }
    }
}

/// The client's address, as an extension of every request.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// Serves HTTP on `listener` until `shutdown` completes, then lets requests in progress finish
/// (up to [`SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: TcpListener,
    state: crate::AppState,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    assert!(options.connections_max > 0, "a listener that takes no connection");
    let router: Router = crate::router(state);
    let connections = Arc::new(Semaphore::new(options.connections_max));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT).keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: wait a moment rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Answers go out at once: Nagle's algorithm would hold a small response back waiting
        // for an ACK that the client delays.
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = tower::service_fn(move |mut request: axum::http::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(Peer(peer));
            router.clone().oneshot(request.map(axum::body::Body::new))
        });
        let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Errors here are a client's (a reset, a timeout): nothing to do but close.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still running after the grace period; stopping without them");
    }
    Ok(())
}
