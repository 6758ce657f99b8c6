//! A blocking connection to a message broker: TCP, TCP with TLS (`rediss://`, `amqps://`) or a
//! Unix-domain socket. Each is used by one thread; timeouts are set on the socket underneath.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
#[cfg(feature = "redis")]
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use sockio_core::pubsub::TlsOptions;
use sockio_net::tls::rustls::{ClientConnection, StreamOwned};

pub(crate) enum BrokerStream {
    Tcp(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    // Only Redis is reached over a Unix socket (`unix://`).
    #[cfg(feature = "redis")]
    Unix(UnixStream),
}

impl BrokerStream {
    /// Connects to the first address of `host` that answers by `deadline`, each address given
    /// an equal share of the time left, then runs the TLS handshake when `tls` asks for it, each
    /// of its reads and writes bounded by the time left then (the name lookup itself is the
    /// system resolver's, which has no timeout to give).
    pub(crate) fn connect_tcp(
        host: &str,
        port: u16,
        tls: Option<&TlsOptions>,
        deadline: Instant,
    ) -> io::Result<BrokerStream> {
        let client = tls
            .map(sockio_net::tls::TlsClient::new)
            .transpose()
            .map_err(io::Error::other)?;
        let left = || {
            Some(deadline.saturating_duration_since(Instant::now())).filter(|left| !left.is_zero())
        };
        let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "connecting timed out");
        let mut last = io::Error::other("the host name resolves to no address");
        let addrs: Vec<_> = (host, port).to_socket_addrs()?.collect();
        for (tried, addr) in addrs.iter().enumerate() {
            let Some(timeout) =
                sockio_net::connect_share(deadline, Instant::now(), addrs.len() - tried)
            else {
                return Err(timed_out());
            };
            let stream = match TcpStream::connect_timeout(addr, timeout) {
                Ok(stream) => stream,
                Err(error) => {
                    last = error;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            return match &client {
                None => Ok(BrokerStream::Tcp(stream)),
                Some(client) => {
                    // Each exchange of the handshake gets what is left of the deadline.
                    let time_left = |stream: &mut TcpStream| {
                        let Some(timeout) = left() else {
                            return Ok(None);
                        };
                        stream.set_read_timeout(Some(timeout))?;
                        stream.set_write_timeout(Some(timeout))?;
                        Ok(Some(timeout))
                    };
                    Ok(BrokerStream::Tls(Box::new(
                        client.connect_blocking(stream, time_left)?,
                    )))
                }
            };
        }
        Err(last)
    }

    #[cfg(feature = "redis")]
    pub(crate) fn connect_unix(path: &str) -> io::Result<BrokerStream> {
        UnixStream::connect(path).map(BrokerStream::Unix)
    }

    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            BrokerStream::Tcp(s) => s.set_read_timeout(timeout),
            BrokerStream::Tls(s) => s.sock.set_read_timeout(timeout),
            #[cfg(feature = "redis")]
            BrokerStream::Unix(s) => s.set_read_timeout(timeout),
        }
    }

    pub(crate) fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            BrokerStream::Tcp(s) => s.set_write_timeout(timeout),
            BrokerStream::Tls(s) => s.sock.set_write_timeout(timeout),
            #[cfg(feature = "redis")]
            BrokerStream::Unix(s) => s.set_write_timeout(timeout),
        }
    }

    // The AMQP client polls for a broker's frames between its own writes.
    #[cfg(feature = "amqp")]
    pub(crate) fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        match self {
            BrokerStream::Tcp(s) => s.set_nonblocking(nonblocking),
            BrokerStream::Tls(s) => s.sock.set_nonblocking(nonblocking),
            #[cfg(feature = "redis")]
            BrokerStream::Unix(s) => s.set_nonblocking(nonblocking),
        }
    }
}

impl Read for BrokerStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            BrokerStream::Tcp(s) => s.read(buf),
            BrokerStream::Tls(s) => s.read(buf),
            #[cfg(feature = "redis")]
            BrokerStream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for BrokerStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            BrokerStream::Tcp(s) => s.write(buf),
            BrokerStream::Tls(s) => s.write(buf),
            #[cfg(feature = "redis")]
            BrokerStream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            BrokerStream::Tcp(s) => s.flush(),
            BrokerStream::Tls(s) => s.flush(),
            #[cfg(feature = "redis")]
            BrokerStream::Unix(s) => s.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The deadline is the whole connect's: one already spent tries no address, however many
    /// the name has, rather than giving each its own timeout.
    #[test]
    fn a_spent_deadline_tries_no_address() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let spent = Instant::now();
        let result = BrokerStream::connect_tcp("127.0.0.1", port, None, spent);
        assert!(
            matches!(&result, Err(error) if error.kind() == io::ErrorKind::TimedOut),
            "{:?}",
            result.err()
        );
        let open = BrokerStream::connect_tcp("127.0.0.1", port, None, spent + CONNECT);
        assert!(open.is_ok(), "{:?}", open.err());
    }

    /// A broker that answers the TLS handshake a byte at a time, each well within a read's
    /// timeout, cannot stretch the connect past its deadline: every exchange of the handshake
    /// gets what is left of it. (Each read had the whole timeout, and this went on for as long
    /// as the bytes kept coming: the record announced is 16 KiB.)
    #[test]
    fn a_tls_handshake_answered_a_byte_at_a_time_ends_at_the_deadline() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        std::thread::spawn(move || {
            let Ok((mut peer, _)) = listener.accept() else {
                return;
            };
            // A handshake record of 16 KiB, announced, then sent a byte every 50 ms.
            if peer.write_all(&[0x16, 0x03, 0x03, 0x40, 0x00]).is_err() {
                return;
            }
            for _ in 0..16_384 {
                std::thread::sleep(Duration::from_millis(50));
                if peer.write_all(&[0x02]).is_err() {
                    return;
                }
            }
        });
        let tls = TlsOptions {
            server_name: "localhost".to_owned(),
            ca_file: None,
            client_identity: None,
            verify_server: false,
            check_server_name: true,
        };
        let (done_tx, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_millis(500);
            let result = BrokerStream::connect_tcp("127.0.0.1", port, Some(&tls), deadline);
            let _ = done_tx.send(result.map(|_| ()).map_err(|error| error.kind()));
        });
        let result = done
            .recv_timeout(Duration::from_secs(30))
            .expect("the connect ends (it ran on while bytes came)");
        assert_eq!(result, Err(io::ErrorKind::TimedOut));
    }

    const CONNECT: Duration = Duration::from_secs(5);
}
