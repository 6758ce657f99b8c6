//! Adapts the broker connections (plain, TLS or Unix socket; hyper's own I/O traits, which every
//! runtime's streams implement) to futures-io, which the broker clients read and write.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::AsyncWriteExt;

use crate::runtime::until;

/// A hyper I/O object seen through futures-io.
pub(crate) struct HyperIo<T>(pub T);

impl<T: hyper::rt::Read + Unpin> futures_util::AsyncRead for HyperIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut read = hyper::rt::ReadBuf::new(buf);
        match Pin::new(&mut self.0).poll_read(cx, read.unfilled()) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(read.filled().len())),
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: hyper::rt::Write + Unpin> futures_util::AsyncWrite for HyperIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    /// Forwarded: rustls writes a TLS broker connection's records with vectored writes.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// A connection to a message broker: TCP, TCP with TLS, or a Unix-domain socket, through
/// futures-io.
pub(crate) enum BrokerIo<Rt: crate::runtime::Runtime> {
    Tcp(HyperIo<Rt::Stream>),
    Tls(Box<futures_rustls::client::TlsStream<HyperIo<Rt::Stream>>>),
    // Only Redis is reached over a Unix socket (`unix://`).
    #[cfg(feature = "redis")]
    Unix(HyperIo<Rt::UnixStream>),
}

impl<Rt: crate::runtime::Runtime> BrokerIo<Rt> {
    /// Connects over TCP by `deadline`, with the TLS handshake done when `tls` asks for it: a
    /// certificate the broker's name does not match fails here, as a connection failure. The
    /// host's addresses are tried in turn, each with its share of the time left
    /// ([`sockio_net::connect_share`]), as the threads runtime does.
    pub(crate) async fn connect_tcp(
        runtime: &Rt,
        host: &str,
        port: u16,
        tls: Option<&sockio_core::pubsub::TlsOptions>,
        deadline: Instant,
    ) -> io::Result<Self> {
        let client = tls
            .map(sockio_net::tls::TlsClient::new)
            .transpose()
            .map_err(io::Error::other)?;
        let stream = until(
            runtime,
            deadline,
            connect_any(runtime, host, port, deadline),
        )
        .await
        .ok_or_else(connect_timed_out)??;
        let Some(client) = client else {
            return Ok(BrokerIo::Tcp(HyperIo(stream)));
        };
        let connector = futures_rustls::TlsConnector::from(client.config);
        let tls = until(
            runtime,
            deadline,
            connector.connect(client.server_name, HyperIo(stream)),
        )
        .await
        .ok_or_else(connect_timed_out)??;
        Ok(BrokerIo::Tls(Box::new(tls)))
    }

    /// Writes every chunk `chunks` yields, then flushes; `None` when one write (or the flush)
    /// waited `stall` without the broker taking a byte. A broker (or a network path) that stopped
    /// reading must not hold the writer until TCP gives up, minutes later, while a slow path that
    /// keeps taking data is not cut however long a large message takes (as the threads runtime's
    /// socket send timeout). After `None` part of a frame may have been written: the connection
    /// must be dropped.
    pub(crate) async fn write_waiting(
        &mut self,
        runtime: &Rt,
        mut chunks: impl FnMut() -> Option<Vec<u8>>,
        stall: Duration,
    ) -> Option<io::Result<()>> {
        while let Some(bytes) = chunks() {
            let mut written = 0;
            while written < bytes.len() {
                match until(
                    runtime,
                    Instant::now() + stall,
                    self.write(&bytes[written..]),
                )
                .await?
                {
                    Ok(0) => return Some(Err(io::ErrorKind::WriteZero.into())),
                    Ok(wrote) => written += wrote,
                    Err(error) => return Some(Err(error)),
                }
            }
        }
        until(runtime, Instant::now() + stall, self.flush()).await
    }
}

impl<Rt: crate::runtime::Runtime> futures_util::AsyncRead for BrokerIo<Rt> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            BrokerIo::Tcp(io) => Pin::new(io).poll_read(cx, buf),
            BrokerIo::Tls(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
            #[cfg(feature = "redis")]
            BrokerIo::Unix(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl<Rt: crate::runtime::Runtime> futures_util::AsyncWrite for BrokerIo<Rt> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            BrokerIo::Tcp(io) => Pin::new(io).poll_write(cx, buf),
            BrokerIo::Tls(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
            #[cfg(feature = "redis")]
            BrokerIo::Unix(io) => Pin::new(io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            BrokerIo::Tcp(io) => Pin::new(io).poll_flush(cx),
            BrokerIo::Tls(io) => Pin::new(io.as_mut()).poll_flush(cx),
            #[cfg(feature = "redis")]
            BrokerIo::Unix(io) => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            BrokerIo::Tcp(io) => Pin::new(io).poll_close(cx),
            BrokerIo::Tls(io) => Pin::new(io.as_mut()).poll_close(cx),
            #[cfg(feature = "redis")]
            BrokerIo::Unix(io) => Pin::new(io).poll_close(cx),
        }
    }
}

fn connect_timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connecting timed out")
}

/// Connects to the first address of `host:port` that answers, each tried for its share of the
/// time left before `deadline`.
async fn connect_any<Rt: crate::runtime::Runtime>(
    runtime: &Rt,
    host: &str,
    port: u16,
    deadline: Instant,
) -> io::Result<Rt::Stream> {
    let addrs = runtime.resolve(host, port).await?;
    let mut last = io::Error::new(
        io::ErrorKind::NotFound,
        format!("{host}:{port} resolves to no address"),
    );
    for (tried, addr) in addrs.iter().enumerate() {
        let Some(share) = sockio_net::connect_share(deadline, Instant::now(), addrs.len() - tried)
        else {
            return Err(connect_timed_out());
        };
        match until(runtime, Instant::now() + share, runtime.connect(*addr)).await {
            Some(Ok(stream)) => return Ok(stream),
            Some(Err(error)) => last = error,
            None => {
                last = io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connecting to {addr} timed out"),
                )
            }
        }
    }
    Err(last)
}
