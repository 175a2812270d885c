use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::routing::future::RouteFuture;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tower::util::{MapFuture, MapRequest, MapRequestLayer};

use super::fast_lane::{App, FastLane, LaneFirst};
use super::limits;

/// How the server treats slow clients and shutdown.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// A client that has not sent its request headers by then is dropped;
    /// so is a connection that sends nothing at all for that long, and one
    /// (HTTP/1 or HTTP/2) that has had no request in flight for that long.
    pub header_read_timeout: Duration,
    /// A request body must have arrived whole this long after its headers;
    /// otherwise reading it fails (the handler answers 400) and the
    /// connection is closed.
    pub body_read_timeout: Duration,
    /// After the shutdown signal, in-flight requests get this long to finish.
    pub shutdown_grace: Duration,
    /// Connections held at once. At the cap no more are accepted: new ones
    /// wait in the listen queue until one closes (idle ones close after
    /// `header_read_timeout`), instead of taking the files the requests in
    /// flight need.
    pub max_connections: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            max_connections: limits::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl ServeOptions {
    /// The defaults, after raising this process's open-file limit to its
    /// hard limit (logged), with `configured` connections at most, or, when
    /// not configured, a cap derived from that limit.
    pub fn for_this_process(configured: Option<usize>) -> Self {
        let soft_limit = limits::raise_open_file_limit();
        Self {
            max_connections: configured.unwrap_or_else(|| limits::connection_cap(soft_limit)),
            ..Self::default()
        }
    }
}

/// Listens on all interfaces at `port` (0: any free port), as Cloud Run expects.
pub async fn bind(port: u16) -> std::io::Result<TcpListener> {
    bind_to(SocketAddr::from(([0, 0, 0, 0], port))).await
}

/// Listens on one address (local mode: loopback unless told otherwise).
pub async fn bind_to(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Resolves on SIGTERM (what Cloud Run sends) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Serves `app` (a router, or a router with a fast lane in front of it)
/// until `shutdown` resolves; then stops accepting (new connections are
/// refused), lets in-flight requests finish within the grace period, and
/// returns.
pub async fn serve(
    listener: TcpListener,
    app: impl Into<App>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) {
    let App { router, fast_lane } = app.into();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    let body_read_timeout = options.body_read_timeout;
    let router = router.layer(MapRequestLayer::new(move |request: Request<Body>| {
        request.map(|body| with_deadline(body, body_read_timeout))
    }));
    let idle_timeout = options.header_read_timeout;
    // Tells connections to finish what is in flight and close. Each
    // connection holds a receiver, so the sender knows when all are gone.
    let (stopping, stop_signal) = tokio::sync::watch::channel(false);
    let slots = Arc::new(tokio::sync::Semaphore::new(options.max_connections.max(1)));
    tracing::info!(max_connections = options.max_connections, "serving");
    tokio::pin!(shutdown);
    loop {
        // A free slot first: at the cap, connections wait in the listen queue.
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let builder = builder.clone();
                let router = router.clone();
                let fast_lane = fast_lane.clone();
                let stop_signal = stop_signal.clone();
                tokio::spawn(async move {
                    let app = (router, fast_lane);
                    serve_connection(stream, peer, builder, app, idle_timeout, stop_signal).await;
                    drop(slot);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    drop(stop_signal);
    let _ = stopping.send(true);
    tracing::info!("shutting down: finishing in-flight requests");
    tokio::select! {
        () = stopping.closed() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(options.shutdown_grace) => {
            tracing::warn!("grace period over; closing the remaining connections");
        }
    }
}

/// Serves one connection until the client closes it, the server stops, or
/// it has had no request in flight for `idle_timeout`.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    builder: auto::Builder<TokioExecutor>,
    (router, fast_lane): (Router, Option<Arc<dyn FastLane>>),
    idle_timeout: Duration,
    mut stop_signal: tokio::sync::watch::Receiver<bool>,
) {
    tokio::select! {
        started = request_starts_within(&stream, idle_timeout) => {
            if !started {
                tracing::debug!("dropped a connection that sent no request");
                return;
            }
        }
        _ = stop_signal.wait_for(|stopping| *stopping) => return,
    }
    let activity = Arc::new(Activity::new());
    let service = {
        let activity = Arc::clone(&activity);
        // Handlers that care who is calling (local mode's loopback-only
        // routes) read the peer as axum's `ConnectInfo`.
        let router = MapRequest::new(router, move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let routed = {
            let activity = Arc::clone(&activity);
            TowerToHyperService::new(MapFuture::new(
                router,
                move |answer: RouteFuture<Infallible>| {
                    let in_flight = Activity::start(&activity);
                    async move {
                        let answer = answer.await;
                        drop(in_flight);
                        answer
                    }
                },
            ))
        };
        LaneFirst {
            lane: fast_lane,
            routed,
            // An answer from the lane is over as soon as it is made; it
            // still counts as activity on the connection.
            on_lane_answer: Box::new(move || activity.update(|_| {})),
        }
    };
    let connection = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), service)
        .into_owned();
    tokio::pin!(connection);
    let idle = tokio::select! {
        ended = connection.as_mut() => {
            if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            return;
        }
        _ = stop_signal.wait_for(|stopping| *stopping) => false,
        () = activity.idle_for(idle_timeout) => true,
    };
    // No new requests; those in flight finish (HTTP/2: GOAWAY).
    connection.as_mut().graceful_shutdown();
    if !idle {
        // The server is stopping: its grace period bounds the wait.
        let _ = connection.await;
        return;
    }
    // Nothing was in flight; a client that does not even acknowledge the
    // GOAWAY (a silent HTTP/2 peer never answers its PING) is cut off.
    if tokio::time::timeout(idle_timeout, connection)
        .await
        .is_err()
    {
        tracing::debug!("dropped an idle connection that did not close");
    }
}

/// The requests in flight on one connection, and since when there are none.
///
/// HTTP/1 has hyper's header timeout between requests; HTTP/2 has nothing
/// like it, so a client that completes the preface and then says nothing
/// (or only answers PINGs) would keep its connection, and a file
/// descriptor, forever. Both protocols close a connection that has had no
/// request in flight for as long as a client may take to send its headers.
struct Activity {
    /// (requests in flight, when the count last changed)
    state: Mutex<(usize, Instant)>,
}

/// Counts one request as in flight while it lives.
struct InFlight(Arc<Activity>);

impl Activity {
    fn new() -> Self {
        Self {
            state: Mutex::new((0, Instant::now())),
        }
    }

    fn start(activity: &Arc<Activity>) -> InFlight {
        activity.update(|count| *count += 1);
        InFlight(Arc::clone(activity))
    }

    fn update(&self, change: impl FnOnce(&mut usize)) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut state.0);
        state.1 = Instant::now();
    }

    /// Resolves once no request has been in flight for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let (in_flight, since) = *self.state.lock().unwrap_or_else(|e| e.into_inner());
            if in_flight == 0 && since.elapsed() >= idle {
                return;
            }
            // Busy: look again in a while. Idle: when it will have been long enough.
            let next = if in_flight == 0 {
                since + idle
            } else {
                Instant::now() + idle
            };
            tokio::time::sleep_until(next.into()).await;
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.update(|count| *count = count.saturating_sub(1));
    }
}

/// The first bytes of an HTTP/2 connection without TLS (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Waits until the client has sent enough to tell HTTP/1 from HTTP/2.
///
/// hyper-util's version sniffing has no timeout of its own, and hyper's
/// header timeout only starts after it: a client that connects and sends
/// nothing (or a piece of the HTTP/2 preface) would keep its connection, and
/// a file descriptor, forever. False when it did not within `within`.
async fn request_starts_within(stream: &TcpStream, within: Duration) -> bool {
    let sniffed = async {
        let mut buf = [0u8; 24];
        loop {
            let n = stream.peek(&mut buf).await?;
            // Closed, a whole preface, or clearly HTTP/1: hyper takes over.
            if n == 0 || n >= H2_PREFACE.len() || buf[..n] != H2_PREFACE[..n] {
                return Ok::<(), std::io::Error>(());
            }
            // Part of the preface so far: peek again once more has arrived.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    matches!(tokio::time::timeout(within, sniffed).await, Ok(Ok(())))
}

fn with_deadline(body: Body, within: Duration) -> Body {
    if body.is_end_stream() {
        return body;
    }
    Body::new(DeadlineBody {
        inner: body,
        deadline: Box::pin(tokio::time::sleep(within)),
        within,
    })
}

/// A request body that has to arrive whole before a deadline. tower-http's
/// body timeout restarts with every chunk, so a client dripping one byte at a
/// time would hold a connection and a handler until the request timeout.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    within: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
struct BodyTooSlow(Duration);

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(axum::Error::new(BodyTooSlow(this.within)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
