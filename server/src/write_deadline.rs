//! A connection's writes that may wait for the client only so long: hyper has no write timeout,
//! so a client that asks for a polling answer (up to the whole outbound queue) and never reads it
//! would keep the connection's task, the unsent answer and the socket forever, even after its
//! session closed. Every connection the async servers serve goes through [`WriteDeadline`]: a
//! write (or flush, or shutdown) that makes no progress for the timeout fails, and hyper drops
//! the connection. As on the threads runtime, where every socket has a send timeout.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::runtime::Runtime;

/// `S`, whose writes fail after waiting `timeout` without progress.
pub(crate) struct WriteDeadline<S, Rt> {
    inner: S,
    /// Boxed, so that this is `Unpin` whatever the runtime type (its runtimes are zero-sized:
    /// no allocation).
    runtime: Box<Rt>,
    timeout: Duration,
    /// Running while a write waits; a write that goes through stops it. Created only when a
    /// write has to wait: most do not.
    waiting: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl<S, Rt: Runtime> WriteDeadline<S, Rt> {
    pub fn new(inner: S, runtime: Rt, timeout: Duration) -> Self {
        WriteDeadline {
            inner,
            runtime: Box::new(runtime),
            timeout,
            waiting: None,
        }
    }

    /// What a write that made progress or failed returns; what one that waits does.
    fn settle<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.waiting = None;
            return polled;
        }
        let waiting = match &mut self.waiting {
            Some(waiting) => waiting,
            waiting => {
                // A timeout too long for the clock means no limit, as the core reads such
                // durations.
                let Some(deadline) = Instant::now().checked_add(self.timeout) else {
                    return Poll::Pending;
                };
                waiting.insert(Box::pin(self.runtime.sleep_until(deadline)))
            }
        };
        match waiting.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.waiting = None;
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client took nothing for the write timeout",
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: hyper::rt::Read + Unpin, Rt> hyper::rt::Read for WriteDeadline<S, Rt> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: hyper::rt::Write + Unpin, Rt: Runtime> hyper::rt::Write for WriteDeadline<S, Rt> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.settle(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.settle(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.settle(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.settle(cx, polled)
    }
}
