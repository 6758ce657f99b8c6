//! A TCP stream for hyper on async-io that does not ask the kernel for data it can tell is not
//! there.
//!
//! async-io's `Async<TcpStream>` reads until the socket answers "would block" before it waits,
//! so every wait for the next request costs a failed `recv` (and then async-io re-arms its
//! one-shot epoll registration). `strace -c -f` of the smol server in the polling benchmark
//! counted 1.6 failed `recv`s and 1.5 `epoll_ctl`s per response; tokio's server no failed `recv`
//! (tokio takes a short read as "drained"). This stream does the same for the first poll after a
//! short read: it waits for readiness instead of reading (1.6 → 0.85 failed `recv`s, 1.5 → 0.6
//! `epoll_ctl`s per response). Readiness is level-triggered (async-io re-arms with
//! `EPOLL_CTL_MOD`, which reports data that arrived in between), so nothing is missed.
//!
//! A readiness async-io recorded before the short read (the one that woke the task for it) is
//! not trusted either: that poll registers again rather than reading. In the 100-client echo this
//! took smol's `recv`s from 1.39 to 0.94 per ack (`perf stat -e 'syscalls:sys_enter_*'`,
//! bench/ANALYSIS.md).

use std::io::{self, IoSlice, Read};
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use smol::Async;
use smol::io::{AsyncRead, AsyncWrite};

/// A connected TCP stream on smol's reactor.
#[derive(Debug)]
pub struct TcpStream {
    inner: Async<std::net::TcpStream>,
    /// The last read returned less than was asked for: the socket is most likely empty.
    drained: bool,
}

impl TcpStream {
    pub(crate) fn new(inner: Async<std::net::TcpStream>) -> TcpStream {
        TcpStream {
            inner,
            drained: false,
        }
    }

    /// Connects to `addr`.
    pub(crate) async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        Ok(TcpStream::new(
            Async::<std::net::TcpStream>::connect(addr).await?,
        ))
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().peer_addr()
    }

    /// Completes once the socket has something to read.
    pub async fn readable(&self) -> io::Result<()> {
        self.inner.readable().await
    }

    /// Sets `TCP_NODELAY`.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.get_ref().set_nodelay(nodelay)
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let inner = &this.inner;
        poll_read_gated(
            &mut this.drained,
            buf,
            || inner.poll_readable(cx),
            |buf| inner.get_ref().read(buf),
        )
    }
}

/// A read poll given the socket's readiness (`poll_readable`, which also registers the waker)
/// and its non-blocking `read`; `drained` is [`TcpStream::drained`]. Apart from the socket so
/// that what it asks of each, in which order, can be tested step by step.
fn poll_read_gated(
    drained: &mut bool,
    buf: &mut [u8],
    mut poll_readable: impl FnMut() -> Poll<io::Result<()>>,
    mut read: impl FnMut(&mut [u8]) -> io::Result<usize>,
) -> Poll<io::Result<usize>> {
    if buf.is_empty() {
        return Poll::Ready(Ok(0));
    }
    // Only the first poll after a short read trusts it: a task polled again before the
    // reactor reported anything was woken for something else, and reading then picks up
    // what arrived meanwhile without waiting for the reactor's turn (a broadcast sender's
    // events; waiting for the reactor there cost 10-20% of the smol broadcast rate).
    if std::mem::take(drained) {
        // A readiness already recorded is most likely the one that led to the short read
        // (the reactor has not run since): reading now would fail. Register again instead;
        // the re-arm reports data that did arrive meanwhile at once.
        if poll_readable()?.is_ready() {
            ready!(poll_readable())?;
        } else {
            return Poll::Pending;
        }
    }
    loop {
        match read(buf) {
            Ok(n) => {
                *drained = n > 0 && n < buf.len();
                return Poll::Ready(Ok(n));
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                ready!(poll_readable())?;
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Poll::Ready(Err(error)),
        }
    }
}

impl AsyncWrite for TcpStream {
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
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.inner.get_ref().shutdown(Shutdown::Write))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smol::io::{AsyncReadExt, AsyncWriteExt};

    /// A pair of connected streams: (ours, the std peer).
    fn pair() -> (TcpStream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let peer =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (ours, _) = listener.accept().expect("accept");
        (TcpStream::new(Async::new(ours).expect("async")), peer)
    }

    /// Runs one [`poll_read_gated`] against scripted answers: `readiness` in order (Pending
    /// once it runs out) and `reads` in order; returns the poll's result and how many times
    /// each was asked.
    fn gated(
        drained: &mut bool,
        readiness: &[Poll<()>],
        reads: &[io::Result<usize>],
    ) -> (Poll<io::Result<usize>>, usize, usize) {
        let (mut asked_ready, mut asked_read) = (0, 0);
        let mut buf = [0u8; 8];
        let result = poll_read_gated(
            drained,
            &mut buf,
            || {
                asked_ready += 1;
                readiness
                    .get(asked_ready - 1)
                    .copied()
                    .unwrap_or(Poll::Pending)
                    .map(Ok)
            },
            |_| {
                asked_read += 1;
                match reads.get(asked_read - 1) {
                    Some(Ok(n)) => Ok(*n),
                    Some(Err(error)) => Err(io::Error::from(error.kind())),
                    None => panic!("read more often than scripted"),
                }
            },
        );
        (result, asked_ready, asked_read)
    }

    #[test]
    fn after_a_short_read_a_recorded_readiness_registers_again_instead_of_reading() {
        let mut drained = true;
        let (result, asked_ready, asked_read) = gated(&mut drained, &[Poll::Ready(())], &[]);
        assert!(result.is_pending());
        assert_eq!((asked_ready, asked_read), (2, 0));
        assert!(
            !drained,
            "only the first poll after the short read is held back"
        );
    }

    #[test]
    fn after_a_short_read_data_reported_on_registering_again_is_read() {
        let mut drained = true;
        let ready = [Poll::Ready(()), Poll::Ready(())];
        let (result, asked_ready, asked_read) = gated(&mut drained, &ready, &[Ok(3)]);
        assert!(matches!(result, Poll::Ready(Ok(3))));
        assert_eq!((asked_ready, asked_read), (2, 1));
        assert!(drained, "3 of 8 bytes is a short read");
    }

    #[test]
    fn after_a_short_read_the_first_poll_waits_for_the_reactor() {
        let mut drained = true;
        let (result, asked_ready, asked_read) = gated(&mut drained, &[], &[]);
        assert!(result.is_pending());
        assert_eq!((asked_ready, asked_read), (1, 0));
    }

    #[test]
    fn without_a_short_read_the_poll_reads_first_and_waits_only_on_would_block() {
        let mut drained = false;
        let (result, asked_ready, asked_read) = gated(&mut drained, &[], &[Ok(8)]);
        assert!(matches!(result, Poll::Ready(Ok(8))));
        assert_eq!((asked_ready, asked_read), (0, 1));
        assert!(!drained, "a full buffer may leave more in the socket");

        let would_block = [Err(io::ErrorKind::WouldBlock.into())];
        let (result, asked_ready, asked_read) = gated(&mut drained, &[], &would_block);
        assert!(result.is_pending());
        assert_eq!((asked_ready, asked_read), (1, 1));
    }

    #[test]
    fn data_sent_after_a_short_read_still_arrives() {
        smol::block_on(async {
            let (mut ours, mut peer) = pair();
            let mut buf = [0u8; 64];
            std::io::Write::write_all(&mut peer, b"first").expect("write");
            let n = ours.read(&mut buf).await.expect("read");
            assert_eq!(&buf[..n], b"first");
            assert!(ours.drained);
            // Sent while nobody waits: the wait after the short read must still see it.
            std::io::Write::write_all(&mut peer, b"second").expect("write");
            let n = ours.read(&mut buf).await.expect("read");
            assert_eq!(&buf[..n], b"second");
        });
    }

    #[test]
    fn only_the_first_poll_after_a_short_read_waits_for_the_reactor() {
        let (mut ours, mut peer) = pair();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut buf = [0u8; 64];
        std::io::Write::write_all(&mut peer, b"first").expect("write");
        let first = loop {
            // Until the reactor (async-io's own thread here) has seen the data.
            if let Poll::Ready(n) = Pin::new(&mut ours).poll_read(&mut cx, &mut buf) {
                break n.expect("read");
            }
            std::thread::yield_now();
        };
        assert_eq!(&buf[..first], b"first");
        std::io::Write::write_all(&mut peer, b"second").expect("write");
        // Until the kernel holds it for us (a non-blocking peek).
        while ours.inner.get_ref().peek(&mut [0u8; 1]).is_err() {
            std::thread::yield_now();
        }
        // The first poll may wait for the reactor (or find it has reported the data already);
        // the one after it reads, whatever the reactor did.
        let n = match Pin::new(&mut ours).poll_read(&mut cx, &mut buf) {
            Poll::Ready(n) => n.expect("read"),
            Poll::Pending => match Pin::new(&mut ours).poll_read(&mut cx, &mut buf) {
                Poll::Ready(n) => n.expect("read"),
                Poll::Pending => panic!("the second poll did not read the waiting data"),
            },
        };
        assert_eq!(&buf[..n], b"second");
    }

    #[test]
    fn a_read_that_fills_the_buffer_reads_on_and_the_end_is_seen() {
        smol::block_on(async {
            let (mut ours, mut peer) = pair();
            std::io::Write::write_all(&mut peer, b"abcdefgh").expect("write");
            let mut buf = [0u8; 4];
            ours.read_exact(&mut buf).await.expect("read");
            assert_eq!(&buf, b"abcd");
            assert!(!ours.drained);
            ours.read_exact(&mut buf).await.expect("read");
            assert_eq!(&buf, b"efgh");
            drop(peer);
            assert_eq!(ours.read(&mut buf).await.expect("eof"), 0);
        });
    }

    #[test]
    fn writes_and_close_reach_the_peer() {
        smol::block_on(async {
            let (mut ours, mut peer) = pair();
            ours.write_all(b"hello").await.expect("write");
            ours.close().await.expect("close");
            let mut got = Vec::new();
            std::io::Read::read_to_end(&mut peer, &mut got).expect("read");
            assert_eq!(got, b"hello");
        });
    }
}
