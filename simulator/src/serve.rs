//! The serving loop: accept connections, serve each with hyper (HTTP/1.1), shut down
//! gracefully — with the limits a server facing hostile clients needs.
//!
//! Our own accept loop (hyper-util) rather than `axum::serve`, for two reasons:
//!
//! * transport faults need the TCP connection: every request carries (in one
//!   `sim::Attached` with the node, the router and the peer address) a [`ConnKill`]
//!   that cuts its connection (RST or FIN-without-reply);
//! * while the node is "down" (process-exit fault) the listener is closed and every
//!   connection dropped, so clients get connection refused; the same address is bound
//!   again when the node returns.
//!
//! Limits ([`ServeLimits`]), as in mini-redis's `server.rs`: a connection cap (a permit per
//! connection, taken *before* `accept`, sized from the process's file-descriptor limit), a
//! header-read timeout (slowloris), a header buffer cap (memory per connection), and
//! exponential back-off on accept errors (out of file descriptors must not become a busy
//! loop), logged at most once a second. Half-closed connections (the client shuts its
//! write side after a complete request) still get their answer, as HTTP/1.1 requires.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::node::Node;
use crate::port::Port;
use crate::sim::{ServeLimits, Sim, SimOptions};
use crate::transport::{ConnKill, Cut};

/// Serve a node with default options (see [`serve_sim`]).
pub async fn serve(
    listener: TcpListener,
    node: Arc<Node>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    serve_sim(listener, Sim::new(node, SimOptions::default()), shutdown).await
}

/// Serve `sim` on `listener` until `shutdown` resolves, then drain connections
/// (at most 2 s).
pub async fn serve_sim(
    listener: TcpListener,
    sim: Arc<Sim>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    serve_sim_ports(listener, None, sim, shutdown).await
}

/// Serve `sim` on its PoC port and, when given, its inference port, until `shutdown`.
/// One ticker serves both.
pub async fn serve_sim_ports(
    poc: TcpListener,
    inference: Option<TcpListener>,
    sim: Arc<Sim>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    sim.set_addresses(
        poc.local_addr()?,
        inference
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?,
    );
    let ticker = tokio::spawn(sim.clone().run_ticker());
    let (stop_tx, stop_rx) = watch::channel(false);
    let side = inference.map(|l| {
        tokio::spawn(accept_loop(
            l,
            sim.clone(),
            Port::Inference,
            stop_rx.clone(),
        ))
    });
    let main = accept_loop(poc, sim.clone(), Port::Poc, stop_rx);
    let mut main = std::pin::pin!(main);
    let result = tokio::select! {
        r = &mut main => r,
        _ = shutdown => {
            let _ = stop_tx.send(true);
            main.await
        }
    };
    let _ = stop_tx.send(true);
    if let Some(h) = side {
        match h.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "inference port loop failed"),
            Err(e) => tracing::warn!(error = %e, "inference port loop panicked"),
            Ok(Ok(())) => {}
        }
    }
    ticker.abort();
    result
}

/// One port's accept loop: until `stop`, then drain (2 s at most). While the node is
/// "down" the listener is closed and bound again when it returns.
async fn accept_loop(
    listener: TcpListener,
    sim: Arc<Sim>,
    port: Port,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let limits = sim.options.limits.unwrap_or_default();
    let addr = listener.local_addr()?;
    let mut down = sim.down_watch();
    let mut listener = Some(listener);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut backoff = Backoff::new(limits.accept_backoff);
    let router = match port {
        Port::Poc => crate::app::shared(),
        Port::Inference => crate::app::shared_inference(),
    };
    // The compat server runs only while a replica is healthy: without one, the
    // inference port refuses (closest: an immediate RST).
    let refuse = || port == Port::Inference && sim.node().inference_target().is_none();
    loop {
        let l = match listener.take() {
            Some(l) => l,
            None => TcpListener::bind(addr).await?,
        };
        let ended = accept_until(
            &l,
            &router,
            &Behind::Node(sim.clone()),
            refuse,
            &permits,
            &mut backoff,
            limits,
            async {
                let _ = stop.wait_for(|s| *s).await;
            },
            async {
                let _ = down.wait_for(|d| *d).await;
            },
        )
        .await;
        if ended == Ended::Stop {
            return Ok(());
        }
        if port == Port::Poc {
            tracing::warn!(
                "simulated MLNode process exited (watcher os._exit); refusing connections"
            );
        }
        drop(l);
        tokio::select! {
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return Ok(()),
            _ = async { let _ = down.wait_for(|d| !*d).await; } => {
                if port == Port::Poc {
                    tracing::info!("simulated MLNode restarted");
                }
            }
        }
    }
}

/// Why [`accept_until`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Shut down: connections were drained (2 s at most).
    Stop,
    /// The node went "down": connections were dropped.
    Down,
}

/// Accept on `l` and serve each connection with `router` (and `sim` attached), within
/// the limits, until `stop` or `down` resolves; a connection for which `refuse()` holds
/// is reset at once. The one accept loop of both servers below.
#[allow(clippy::too_many_arguments)]
async fn accept_until(
    l: &TcpListener,
    router: &axum::Router,
    behind: &Behind,
    refuse: impl Fn() -> bool,
    permits: &Arc<Semaphore>,
    backoff: &mut Backoff,
    limits: ServeLimits,
    stop: impl Future<Output = ()>,
    down: impl Future<Output = ()>,
) -> Ended {
    let (close_tx, close_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut stop = std::pin::pin!(stop);
    let mut down = std::pin::pin!(down);
    let ended = loop {
        // A permit first: at the cap, new clients wait in the backlog, not in memory.
        let accept = async {
            let permit = permits.clone().acquire_owned().await;
            (permit, l.accept().await)
        };
        tokio::select! {
            _ = &mut stop => break Ended::Stop,
            _ = &mut down => break Ended::Down,
            (permit, accepted) = accept => match (permit, accepted) {
                (Ok(permit), Ok((stream, _))) => {
                    backoff.reset();
                    if refuse() {
                        let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                        continue;
                    }
                    conns.spawn(connection(stream, router.clone(), behind.clone(), close_rx.clone(), limits, permit));
                }
                (_, Err(e)) => backoff.failed(&e).await,
                (Err(_), _) => unreachable_closed(),
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    };
    match ended {
        Ended::Stop => {
            let _ = close_tx.send(true);
            let drain = async { while conns.join_next().await.is_some() {} };
            if tokio::time::timeout(Duration::from_secs(2), drain)
                .await
                .is_err()
            {
                conns.abort_all();
            }
        }
        Ended::Down => conns.abort_all(),
    }
    ended
}

/// Serve any `router` on `listener` with the same limits (connection cap, header timeout,
/// header buffer, accept back-off) until `shutdown`: the record proxy and the replaying
/// node, which have no simulated node behind them.
pub async fn serve_router(
    listener: TcpListener,
    router: axum::Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    serve_until(&listener, &router, &Behind::Nothing, limits, shutdown).await;
    Ok(())
}

/// [`accept_until`] on a listener that is never closed by a node going down (no
/// process-exit fault) and refuses no connection: the record/replay servers and the
/// Host-keyed fleet.
async fn serve_until(
    listener: &TcpListener,
    router: &axum::Router,
    behind: &Behind,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut backoff = Backoff::new(limits.accept_backoff);
    accept_until(
        listener,
        router,
        behind,
        || false,
        &permits,
        &mut backoff,
        limits,
        shutdown,
        std::future::pending(),
    )
    .await;
}

/// The semaphore is never closed; say so instead of panicking if that ever changes.
fn unreachable_closed() {
    tracing::error!("connection semaphore closed; no new connections are accepted");
}

/// Exponential back-off after accept errors, with the log rate-limited to once a second
/// (the count of suppressed errors is reported with the next line).
struct Backoff {
    range: (Duration, Duration),
    next: Duration,
    last_log: Option<Instant>,
    suppressed: u64,
}

impl Backoff {
    fn new(range: (Duration, Duration)) -> Self {
        Backoff {
            range,
            next: range.0,
            last_log: None,
            suppressed: 0,
        }
    }

    fn reset(&mut self) {
        self.next = self.range.0;
    }

    async fn failed(&mut self, e: &std::io::Error) {
        let now = Instant::now();
        if self
            .last_log
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            tracing::warn!(error = %e, suppressed = self.suppressed, pause_ms = self.next.as_millis() as u64,
                "accept failed; backing off");
            self.last_log = Some(now);
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(self.range.1);
    }
}

/// What a connection's requests are served by.
#[derive(Clone)]
enum Behind {
    /// A router with no simulated node (record/replay).
    Nothing,
    /// One node per listener.
    Node(Arc<Sim>),
    /// Many nodes on one listener, chosen per request by the `Host` header's host name.
    ByHost(Arc<std::collections::HashMap<String, Arc<Sim>>>),
}

/// Serve the nodes of `nodes` (id → node) on one listener: each request goes to the node
/// whose id is the host name of its `Host` header (`Host: node-0007:8080`), as the
/// network's test mock keys its nodes; an unknown host name is a 404 that lists a few of
/// the ids served. Every node keeps its own ticker, journal, faults and state. The
/// process-exit fault (which closes a node's listener) does not apply here: the
/// listener is shared.
pub async fn serve_by_host(
    listener: TcpListener,
    nodes: std::collections::HashMap<String, Arc<Sim>>,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let tickers: Vec<_> = nodes
        .values()
        .map(|sim| {
            sim.set_addresses(addr, None);
            tokio::spawn(sim.clone().run_ticker())
        })
        .collect();
    serve_until(
        &listener,
        &crate::app::shared(),
        &Behind::ByHost(Arc::new(nodes)),
        limits,
        shutdown,
    )
    .await;
    for t in tickers {
        t.abort();
    }
    Ok(())
}

/// The node a request's `Host` names, or the 404 that says which ones exist.
fn by_host(
    nodes: &std::collections::HashMap<String, Arc<Sim>>,
    headers: &axum::http::HeaderMap,
) -> Result<Arc<Sim>, crate::error::ApiError> {
    let host = crate::gateway::host_name(headers).unwrap_or_default();
    nodes.get(&host).cloned().ok_or_else(|| {
        let mut some: Vec<&str> = nodes.keys().map(String::as_str).collect();
        some.sort_unstable();
        some.truncate(5);
        crate::error::ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            format!(
                "no node '{host}' on this listener: the Host header names the node ({} served, e.g. {})",
                nodes.len(),
                some.join(", ")
            ),
        )
    })
}

/// Serve one connection; honour a [`ConnKill`] and graceful close. The permit is held
/// until the connection ends. With TLS configured on the node the handshake comes first,
/// bounded by the header-read timeout (a client that never finishes it holds no slot).
async fn connection(
    stream: tokio::net::TcpStream,
    router: axum::Router,
    behind: Behind,
    close: watch::Receiver<bool>,
    limits: ServeLimits,
    _permit: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    // A second handle on the socket, to cut it (RST via SO_LINGER 0, or FIN) on demand.
    let handle = stream
        .into_std()
        .and_then(|s| s.try_clone().map(|d| (s, d)));
    let Ok((std_stream, dup)) = handle else {
        return;
    };
    let Ok(stream) = tokio::net::TcpStream::from_std(std_stream) else {
        return;
    };
    let (kill, kill_rx) = ConnKill::new();
    let (sim, nodes) = match behind {
        Behind::Nothing => (None, None),
        Behind::Node(s) => (Some(s), None),
        Behind::ByHost(n) => (None, Some(n)),
    };
    let tls = sim.as_ref().and_then(|s| s.options.tls.clone());
    let attached = Arc::new(crate::sim::Attached {
        sim,
        router: router.clone(),
        kill: Some(kill),
        peer: stream.peer_addr().ok(),
    });
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        let this = match &nodes {
            None => Ok(attached.clone()),
            // One attachment per request: the node changes with the Host header.
            Some(n) => by_host(n, req.headers()).map(|sim| {
                Arc::new(crate::sim::Attached {
                    sim: Some(sim),
                    ..(*attached).clone()
                })
            }),
        };
        let router = router.clone();
        async move {
            match this {
                Ok(a) => {
                    req.extensions_mut().insert(a);
                    crate::gateway::dispatch(router, req.map(axum::body::Body::new)).await
                }
                Err(e) => Ok(axum::response::IntoResponse::into_response(e)),
            }
        }
    });
    let io = match tls {
        None => Io::Plain(stream),
        Some(acceptor) => {
            match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => Io::Tls(Box::new(tls)),
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "TLS handshake refused");
                    return;
                }
                Err(_) => return,
            }
        }
    };
    match io {
        Io::Plain(s) => serve_io(s, svc, dup, kill_rx, close, limits).await,
        Io::Tls(s) => serve_io(*s, svc, dup, kill_rx, close, limits).await,
    }
}

/// The plain or TLS stream of a connection.
enum Io {
    Plain(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>),
}

/// Serve HTTP/1.1 on `io` until it ends, a fault cuts it or the server closes.
async fn serve_io<I, S>(
    io: I,
    svc: S,
    dup: std::net::TcpStream,
    kill_rx: tokio::sync::oneshot::Receiver<Cut>,
    mut close: watch::Receiver<bool>,
    limits: ServeLimits,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .half_close(true)
        .serve_connection(TokioIo::new(io), svc);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        cut = kill_rx => {
            let sock = socket2::SockRef::from(&dup);
            match cut {
                Ok(Cut::Reset) => { let _ = sock.set_linger(Some(Duration::ZERO)); }
                _ => { let _ = dup.shutdown(std::net::Shutdown::Both); }
            }
        }
        _ = async { let _ = close.wait_for(|c| *c).await; } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn connection_cap_follows_the_fd_limit() {
        use crate::sim::{connections_for_fd_limit, fd_limit};
        assert_eq!(connections_for_fd_limit(1024), 720);
        assert_eq!(connections_for_fd_limit(10), 16);
        assert_eq!(connections_for_fd_limit(u64::MAX), 65_536);
        assert!(fd_limit() > 0);
    }
}
