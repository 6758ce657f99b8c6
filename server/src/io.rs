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
    /// Connects over TCP, with the TLS handshake done when `tls` asks for it: a certificate the
    /// broker's name does not match fails here, as a connection failure.
    pub(crate) async fn connect_tcp(
        runtime: &Rt,
        host: &str,
        port: u16,
        tls: Option<&sockio_core::pubsub::TlsOptions>,
    ) -> io::Result<Self> {
        let Some(options) = tls else {
            return Ok(BrokerIo::Tcp(HyperIo(runtime.connect(host, port).await?)));
        };
        let client = sockio_net::tls::TlsClient::new(options).map_err(io::Error::other)?;
        let stream = runtime.connect(host, port).await?;
        let connector = futures_rustls::TlsConnector::from(client.config);
        let tls = connector
            .connect(client.server_name, HyperIo(stream))
            .await?;
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
