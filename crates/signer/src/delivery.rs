//! Knowing when the bytes of a broken answer have left the server.
//!
//! When the upstream fails mid-stream, the signer signs a truncated event over the bytes it
//! has passed on, then passes the error on so that the client sees the stream break. An HTTP
//! server that gets an error from a response body gives up the connection at once: hyper's
//! HTTP/1 server drops what it still holds in its write buffer, so the last bytes the event
//! covers may never reach the client, which then holds an answer that does not match its
//! event. To prevent that, the body waits, before it passes the error on, until the
//! connection has been flushed: everything handed to the server before the break has then
//! been written to the socket.
//!
//! A body cannot see the connection, so the server tells it: wrap each accepted connection in
//! [`DeliveryIo`] and put its [`Delivery`] in the extensions of every request read from it.
//!
//! ```
//! use provenance_signer::delivery::DeliveryIo;
//!
//! # async fn accept(listener: tokio::net::TcpListener) -> std::io::Result<()> {
//! let (tcp, _) = listener.accept().await?;
//! let io = DeliveryIo::new(tcp);
//! let delivery = io.delivery();
//! // Serve `io` with hyper; in the service, before the signing layer:
//! // `request.extensions_mut().insert(delivery.clone());`
//! # let _ = delivery;
//! # Ok(())
//! # }
//! ```
//!
//! Without a [`Delivery`], the body yields to the server once before the error, which lets
//! hyper flush when the socket takes the bytes at once (a client that keeps reading), but not
//! when a slow client has let the socket fill up. Requests over HTTP/2 get that one yield
//! too, [`Delivery`] or not: hyper's HTTP/2 server flushes only when it has frames to write,
//! so the next flush may never come; bytes still queued on the stream are dropped with the
//! stream's reset.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// One connection's count of completed flushes, shared with the bodies of the responses it
/// carries. Cheap to clone. Only [`DeliveryIo::delivery`] makes one: a count that no
/// connection advances would hold a broken answer's error back for good.
#[derive(Clone)]
pub struct Delivery {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// Completed flushes.
    flushes: AtomicU64,
    /// How many wakers wait (the length of `wakers`), read without the lock on each flush.
    waiting: AtomicUsize,
    /// Bodies waiting for the next flush; one per task.
    wakers: Mutex<Vec<Waker>>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("flushes", &self.flushes())
            .finish()
    }
}

impl Delivery {
    /// The flushes completed so far.
    pub fn flushes(&self) -> u64 {
        self.shared.flushes.load(Ordering::SeqCst)
    }

    /// Ready once a flush has completed after `flushes()` returned `since`.
    pub fn poll_flushed_since(&self, since: u64, cx: &mut Context<'_>) -> Poll<()> {
        if self.flushes() > since {
            return Poll::Ready(());
        }
        {
            let mut wakers = self.shared.wakers.lock().unwrap_or_else(|e| e.into_inner());
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
            self.shared.waiting.store(wakers.len(), Ordering::SeqCst);
        }
        // A flush between the first check and the registration saw no waiter: look again.
        if self.flushes() > since {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    fn flushed(&self) {
        let shared = &self.shared;
        shared.flushes.fetch_add(1, Ordering::SeqCst);
        if shared.waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        let wakers = {
            let mut wakers = shared.wakers.lock().unwrap_or_else(|e| e.into_inner());
            shared.waiting.store(0, Ordering::SeqCst);
            std::mem::take(&mut *wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// A connection that counts its completed flushes in its [`Delivery`]; reads and writes pass
/// through unchanged.
#[derive(Debug)]
pub struct DeliveryIo<T> {
    io: T,
    delivery: Delivery,
}

impl<T> DeliveryIo<T> {
    /// Wraps an accepted connection.
    pub fn new(io: T) -> Self {
        Self {
            io,
            delivery: Delivery {
                shared: Arc::default(),
            },
        }
    }

    /// The handle to put in the extensions of the requests read from this connection.
    pub fn delivery(&self) -> Delivery {
        self.delivery.clone()
    }

    /// The connection.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// The connection, mutably (socket options).
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.io
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for DeliveryIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for DeliveryIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    /// Servers flush once their write buffer is empty (hyper writes it all, then flushes), so
    /// a completed flush means every byte handed over before it is on the socket.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.io).poll_flush(cx);
        if let Poll::Ready(Ok(())) = flushed {
            self.delivery.flushed();
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::task::Wake;

    use tokio::io::AsyncWriteExt;

    use super::*;

    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_waiting_body_is_woken_by_the_next_flush_and_only_then_ready() {
        let (a, _b) = tokio::io::duplex(64);
        let mut io = DeliveryIo::new(a);
        let delivery = io.delivery();
        let since = delivery.flushes();
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(delivery.poll_flushed_since(since, &mut cx).is_pending());
        // Polled again by the same task: still one waker.
        assert!(delivery.poll_flushed_since(since, &mut cx).is_pending());
        assert_eq!(delivery.shared.wakers.lock().unwrap().len(), 1);
        // A write is not a flush.
        io.write_all(b"abc").await.unwrap();
        assert!(!flag.0.load(Ordering::SeqCst));
        io.flush().await.unwrap();
        assert!(flag.0.load(Ordering::SeqCst), "the flush wakes the body");
        assert!(delivery.poll_flushed_since(since, &mut cx).is_ready());
        assert_eq!(delivery.shared.wakers.lock().unwrap().len(), 0);
        assert_eq!(delivery.shared.waiting.load(Ordering::SeqCst), 0);
    }
}
