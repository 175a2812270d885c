use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::Request;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tower::util::MapRequestLayer;

/// How the server treats slow clients and shutdown.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// A client that has not sent its request headers by then is dropped;
    /// so is a connection that sends nothing at all for that long.
    pub header_read_timeout: Duration,
    /// A request body must have arrived whole this long after its headers;
    /// otherwise reading it fails (the handler answers 400) and the
    /// connection is closed.
    pub body_read_timeout: Duration,
    /// After the shutdown signal, in-flight requests get this long to finish.
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Listens on all interfaces at `port` (0: any free port), as Cloud Run expects.
pub async fn bind(port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))).await
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

/// Serves `router` until `shutdown` resolves; then stops accepting (new
/// connections are refused), lets in-flight requests finish within the
/// grace period, and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    let body_read_timeout = options.body_read_timeout;
    let router = router.layer(MapRequestLayer::new(move |request: Request<Body>| {
        request.map(|body| with_deadline(body, body_read_timeout))
    }));
    let first_byte_timeout = options.header_read_timeout;
    let graceful = GracefulShutdown::new();
    // Tells connections still waiting for their first bytes to give up.
    let (stopping, stop_signal) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(router.clone());
                let builder = builder.clone();
                let watcher = graceful.watcher();
                let mut stop_signal = stop_signal.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        started = request_starts_within(&stream, first_byte_timeout) => {
                            if !started {
                                tracing::debug!("dropped a connection that sent no request");
                                return;
                            }
                        }
                        _ = stop_signal.wait_for(|stopping| *stopping) => return,
                    }
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    if let Err(e) = watcher.watch(connection).await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = stopping.send(true);
    tracing::info!("shutting down: finishing in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(options.shutdown_grace) => {
            tracing::warn!("grace period over; closing the remaining connections");
        }
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
