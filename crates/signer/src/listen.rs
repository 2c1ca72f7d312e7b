//! The listener: every accepted connection counts its flushes for the signer, and every
//! request read from it carries that count, so that an answer that breaks mid-stream reaches
//! the client whole up to the break ([`crate::delivery`]).
//!
//! `App::serve` (feature `server`) is the only way to serve an `App`, so the wiring cannot be
//! left out: the listener wraps each connection in [`DeliveryIo`] and hands its
//! [`crate::delivery::Delivery`] to each request as an extension, where the signing layer
//! looks. Each request also carries the client's address as axum's
//! `ConnectInfo<SocketAddr>`. `provenance lookup serve` runs its API on the same listener.
//!
//! A client cannot hold the server's resources for free ([`Limits`]): at most
//! `max_connections` connections are open at once (more wait in the kernel's accept queue),
//! a connection that has not sent a whole request head within `header_timeout` is closed
//! (this is also how long an idle keep-alive connection stays open), and a request body that
//! is not whole within `body_timeout` of its head fails.

use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http::Request;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::time::Sleep;
use tower::ServiceExt;

use crate::delivery::DeliveryIo;

/// What one client may hold of the server; see the module. Every field states its default.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once. 1,024 by default.
    pub max_connections: usize,
    /// Time to send a whole request head, and the longest a keep-alive connection stays idle.
    /// 30 s by default.
    pub header_timeout: Duration,
    /// Time to send a whole request body, from its head. 60 s by default.
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
        }
    }
}

/// Serves `app` on `listener` until `shutdown`, then lets open connections finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(slots));
    let (stop, stopped) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (tcp, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors (or a connection reset before it was accepted): wait
                    // a moment instead of spinning, as axum's listener does.
                    if !is_connection_error(&e) {
                        eprintln!("provenance: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let io = DeliveryIo::new(tcp);
        let delivery = io.delivery();
        let app = app.clone();
        let body_timeout = limits.body_timeout;
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let mut request = request.map(|body| Body::new(Deadline::new(body, body_timeout)));
            request.extensions_mut().insert(delivery.clone());
            request.extensions_mut().insert(ConnectInfo(client));
            app.clone().oneshot(request)
        });
        let mut stopped = stopped.clone();
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout);
        tokio::spawn(async move {
            let connection = builder
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades();
            let mut connection = pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = async { let _ = stopped.wait_for(|stop| *stop).await; } => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a permit until it ends.
    let _ = permits.acquire_many(slots as u32).await;
    Ok(())
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// A request body that fails when it is not whole by a deadline.
struct Deadline {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
    limit: Duration,
}

impl Deadline {
    fn new(inner: Incoming, limit: Duration) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep(limit)),
            limit,
        }
    }
}

/// The request body was not whole in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not whole within {0:?}")]
struct BodyTimeout(Duration);

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(BodyTimeout(self.limit).into())));
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
