//! smol's (futures-io) streams as hyper's I/O, without zeroing hyper's read buffer before each
//! read.
//!
//! hyper hands a read its free buffer uninitialised (8 KiB and more for HTTP, the WebSocket
//! pump's 16 KiB chunk), and a futures-io read needs an initialised one. smol-hyper's adapter,
//! which sockio used before, zeroes that whole buffer first, on every read, even one that finds
//! the socket empty: `memset` was 3.5% of the smol server's samples in the 100-client echo
//! (bench/ANALYSIS.md). Here a read goes into a buffer of its thread, zeroed once when the thread
//! first reads, and what arrived is copied out: as many bytes copied as were received, and none
//! for a read that waits. No `unsafe`: this crate forbids it.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::rt::ReadBufCursor;
use smol::io::{AsyncRead, AsyncWrite};

/// The most one read asks for: the largest buffer hyper hands a read for the WebSocket pump
/// (16 KiB) and for most HTTP reads; a larger free buffer is filled over several reads.
const SCRATCH_LEN: usize = 64 * 1024;

thread_local! {
    /// The buffer reads on this thread go through (zeroed once, when the thread first reads).
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_LEN].into_boxed_slice());
}

/// hyper's I/O traits over a futures-io stream: wrap an accepted stream in it to serve your own
/// hyper application on smol, with [`SocketIoLayer`](crate::SocketIoLayer) in front
/// (`examples/smol_hyper.rs`). The stream must be `Unpin` (smol's sockets, and futures-rustls's
/// streams over them, are).
#[derive(Debug, Default, Clone, Copy)]
pub struct FuturesIo<T> {
    inner: T,
}

impl<T> FuturesIo<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Self {
        FuturesIo { inner }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The wrapped stream.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Unwraps the stream.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T> From<T> for FuturesIo<T> {
    fn from(inner: T) -> Self {
        FuturesIo::new(inner)
    }
}

impl<T: AsyncRead + Unpin> hyper::rt::Read for FuturesIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let inner = &mut self.get_mut().inner;
        let wanted = buf.remaining().min(SCRATCH_LEN);
        let mut read = |scratch: &mut [u8]| {
            let polled = Pin::new(&mut *inner).poll_read(cx, &mut scratch[..wanted]);
            if let Poll::Ready(Ok(n)) = polled {
                // A reader that claims more than it was given is broken: take what fits.
                buf.put_slice(&scratch[..n.min(wanted)]);
            }
            polled.map_ok(|_| ())
        };
        // The thread's buffer is taken for the read only, so it is free unless the wrapped
        // stream's own read reads through another of these on this thread; then (and while
        // the thread's locals are torn down) a fresh buffer serves.
        SCRATCH
            .try_with(|scratch| match scratch.try_borrow_mut() {
                Ok(mut scratch) => Some(read(&mut scratch)),
                Err(_) => None,
            })
            .ok()
            .flatten()
            .unwrap_or_else(|| read(&mut vec![0; wanted]))
    }
}

impl<T: AsyncWrite + Unpin> hyper::rt::Write for FuturesIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    /// hyper writes a response's head and body with one vectored write when this is true; when
    /// false (hyper's default) it copies the body into the head's buffer first, and that buffer
    /// keeps the size of the largest response for the life of the connection (a 1 MiB polling
    /// answer left 1 MiB per kept-alive connection). smol's sockets write vectored for real; for
    /// a stream that does not, futures-io writes the first buffer, and hyper goes on with the rest.
    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use hyper::rt::{Read, ReadBuf};
    use smol::io::{AsyncRead, Cursor};

    use super::{FuturesIo, SCRATCH_LEN};

    /// One `poll_read` of `io` into a buffer of `len` bytes: what it returned and what it filled.
    fn read_once<T: AsyncRead + Unpin>(
        io: &mut FuturesIo<T>,
        len: usize,
    ) -> (Poll<io::Result<()>>, Vec<u8>) {
        let mut storage = vec![0; len];
        let mut buf = ReadBuf::new(&mut storage);
        let mut cx = Context::from_waker(Waker::noop());
        let polled = Pin::new(io).poll_read(&mut cx, buf.unfilled());
        (polled, buf.filled().to_vec())
    }

    #[test]
    fn what_the_stream_has_lands_in_hypers_buffer() {
        let mut io = FuturesIo::new(Cursor::new(b"hello".to_vec()));
        let (polled, filled) = read_once(&mut io, 100);
        assert!(matches!(polled, Poll::Ready(Ok(()))));
        assert_eq!(filled, b"hello");
        // The end of the stream: ready, nothing filled.
        let (polled, filled) = read_once(&mut io, 100);
        assert!(matches!(polled, Poll::Ready(Ok(()))));
        assert!(filled.is_empty());
    }

    #[test]
    fn a_read_asks_for_no_more_than_hyper_has_room_for() {
        let mut io = FuturesIo::new(Cursor::new(vec![7; 10]));
        let (_, filled) = read_once(&mut io, 4);
        assert_eq!(filled, [7; 4]);
        let (_, filled) = read_once(&mut io, 100);
        assert_eq!(filled, [7; 6]);
    }

    #[test]
    fn a_larger_buffer_is_filled_over_several_reads() {
        let data: Vec<u8> = (0..SCRATCH_LEN + 1000).map(|i| i as u8).collect();
        let mut io = FuturesIo::new(Cursor::new(data.clone()));
        let (_, first) = read_once(&mut io, 2 * SCRATCH_LEN);
        assert_eq!(first.len(), SCRATCH_LEN);
        let (_, rest) = read_once(&mut io, 2 * SCRATCH_LEN);
        assert_eq!([first, rest].concat(), data);
    }

    /// A stream that has nothing yet.
    struct Empty;

    impl AsyncRead for Empty {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
    }

    #[test]
    fn a_read_that_waits_fills_nothing() {
        let (polled, filled) = read_once(&mut FuturesIo::new(Empty), 100);
        assert!(polled.is_pending());
        assert!(filled.is_empty());
    }

    /// A stream whose reads go through another `FuturesIo` (a TLS stream over one, say), so that
    /// the thread's buffer is taken when its own read runs.
    struct Nested(FuturesIo<Cursor<Vec<u8>>>);

    impl AsyncRead for Nested {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            out: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            let mut buf = ReadBuf::new(out);
            let polled = Pin::new(&mut self.get_mut().0).poll_read(cx, buf.unfilled());
            polled.map_ok(|()| buf.filled().len())
        }
    }

    #[test]
    fn a_read_through_another_adapter_on_the_thread_still_reads() {
        let inner = FuturesIo::new(Cursor::new(b"nested".to_vec()));
        let (polled, filled) = read_once(&mut FuturesIo::new(Nested(inner)), 100);
        assert!(matches!(polled, Poll::Ready(Ok(()))));
        assert_eq!(filled, b"nested");
    }

    /// A broken stream that says it read more than it was given.
    struct Overclaiming;

    impl AsyncRead for Overclaiming {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            out: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            out.fill(1);
            Poll::Ready(Ok(out.len() + 10))
        }
    }

    #[test]
    fn a_stream_that_claims_too_much_fills_only_what_it_was_given() {
        let (_, filled) = read_once(&mut FuturesIo::new(Overclaiming), 8);
        assert_eq!(filled, [1; 8]);
    }

    /// A connection whose reads give one request and then wait, and whose writes record how
    /// many buffers each held.
    struct Recorder {
        request: Cursor<Vec<u8>>,
        buffers_per_write: std::sync::Arc<std::sync::Mutex<Vec<usize>>>,
        written: std::sync::Arc<std::sync::Mutex<usize>>,
    }

    impl AsyncRead for Recorder {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            match Pin::new(&mut self.request).poll_read(cx, buf) {
                // The client waits for its answer: no end of stream.
                Poll::Ready(Ok(0)) => Poll::Pending,
                other => other,
            }
        }
    }

    impl smol::io::AsyncWrite for Recorder {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.buffers_per_write.lock().unwrap().push(1);
            *self.written.lock().unwrap() += buf.len();
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let lengths: Vec<usize> = bufs.iter().map(|b| b.len()).filter(|&n| n > 0).collect();
            self.buffers_per_write.lock().unwrap().push(lengths.len());
            let total = lengths.iter().sum();
            *self.written.lock().unwrap() += total;
            Poll::Ready(Ok(total))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// hyper writes a response's head and its body together in one vectored write, rather than
    /// copying the body into its head buffer (which then keeps that size for the connection's
    /// life): a 1 MiB polling answer is not copied, nor held after it is sent.
    #[test]
    fn hyper_writes_the_body_apart_from_the_head() {
        const BODY: usize = 256 * 1024;
        let buffers_per_write = std::sync::Arc::default();
        let written = std::sync::Arc::default();
        let io = FuturesIo::new(Recorder {
            request: Cursor::new(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
            buffers_per_write: std::sync::Arc::clone(&buffers_per_write),
            written: std::sync::Arc::clone(&written),
        });
        let service = hyper::service::service_fn(|_request| async {
            let body = http_body_util::Full::new(bytes::Bytes::from(vec![7u8; BODY]));
            Ok::<_, std::convert::Infallible>(http::Response::new(body))
        });
        let serving = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
        let answered = async {
            while *written.lock().unwrap() < BODY {
                smol::Timer::after(std::time::Duration::from_millis(1)).await;
            }
        };
        smol::block_on(smol::future::or(
            async {
                let _ = serving.await;
            },
            answered,
        ));
        assert!(*written.lock().unwrap() > BODY);
        let most = buffers_per_write.lock().unwrap().iter().copied().max();
        assert!(most >= Some(2), "{:?}", buffers_per_write.lock().unwrap());
    }
}
