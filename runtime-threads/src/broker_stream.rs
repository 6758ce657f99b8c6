//! A blocking connection to a message broker: TCP, TCP with TLS (`rediss://`, `amqps://`) or a
//! Unix-domain socket. Each is used by one thread; timeouts are set on the socket underneath.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
#[cfg(feature = "redis")]
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
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
    /// of its reads and writes bounded by the time left then. The name lookup, which the system
    /// resolver gives no timeout, is bounded by the same deadline ([`finish_by`]), as the async
    /// runtimes bound theirs.
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
        let addrs = resolve(host, port, deadline)?;
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

    /// Connects to a Unix-domain socket by `deadline`: std's connect has no timeout, and Linux
    /// blocks it while the listener's accept queue is full (a Redis that stopped accepting).
    #[cfg(feature = "redis")]
    pub(crate) fn connect_unix(path: &str, deadline: Instant) -> io::Result<BrokerStream> {
        let path = path.to_owned();
        finish_by(deadline, move || UnixStream::connect(path)).map(BrokerStream::Unix)
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

/// `host`'s addresses, looked up by `deadline` (an IP address is taken as it is, with no
/// thread).
fn resolve(host: &str, port: u16, deadline: Instant) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let host = host.to_owned();
    finish_by(deadline, move || {
        (host.as_str(), port)
            .to_socket_addrs()
            .map(Iterator::collect)
    })
}

/// Blocking calls that outlived their caller's deadline and still run ([`finish_by`]).
static LEFT_RUNNING: AtomicUsize = AtomicUsize::new(0);

/// At most this many calls left running at once: past it a connect fails at once instead of
/// leaving one more thread behind (a broker that stays unreachable is retried with backoff).
const MAX_LEFT_RUNNING: usize = 8;

/// Whether a [`finish_by`] call ended, and whether its caller stopped waiting for it first.
#[derive(Default)]
struct Outcome {
    ended: bool,
    abandoned: bool,
}

/// Marks its call ended when dropped, a panic included: a call its caller abandoned then no
/// longer counts in [`LEFT_RUNNING`].
struct Ending(Arc<Mutex<Outcome>>);

impl Drop for Ending {
    fn drop(&mut self) {
        let mut outcome = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        outcome.ended = true;
        if outcome.abandoned {
            LEFT_RUNNING.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Runs `work`, a blocking call std gives no timeout, on a thread of its own and waits for it
/// until `deadline`: then the caller gets `TimedOut`, and the thread is left to finish (its result
/// dropped), counted in [`LEFT_RUNNING`] until it does.
fn finish_by<T: Send + 'static>(
    deadline: Instant,
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    if LEFT_RUNNING.load(Ordering::Relaxed) >= MAX_LEFT_RUNNING {
        return Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "earlier connects to the broker are still blocked in the system",
        ));
    }
    let (done, result) = sync_channel(1);
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let ending = Ending(outcome.clone());
    std::thread::Builder::new()
        .name("sockio-broker-connect".to_owned())
        .spawn(move || {
            let _ending = ending;
            let _ = done.send(work());
        })?;
    let left = deadline.saturating_duration_since(Instant::now());
    match result.recv_timeout(left) {
        Ok(answer) => answer,
        Err(RecvTimeoutError::Timeout) => {
            let mut outcome = outcome.lock().unwrap_or_else(PoisonError::into_inner);
            if !outcome.ended {
                outcome.abandoned = true;
                LEFT_RUNNING.fetch_add(1, Ordering::Relaxed);
            }
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connecting timed out",
            ))
        }
        Err(RecvTimeoutError::Disconnected) => {
            Err(io::Error::other("the connecting thread panicked"))
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

    /// A blocking call std gives no timeout (a name lookup, a Unix-socket connect to a
    /// listener whose queue is full) ends for its caller at the deadline: it held the emits
    /// waiting for the publisher for as long as the system took.
    #[test]
    fn a_call_with_no_timeout_of_its_own_ends_at_the_deadline() {
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        let deadline = Instant::now() + Duration::from_millis(100);
        let result = finish_by(deadline, move || {
            let _ = blocked.recv();
            Ok(())
        });
        assert_eq!(
            result.map_err(|error| error.kind()),
            Err(io::ErrorKind::TimedOut)
        );
        assert!(Instant::now() >= deadline);
        drop(release);
        let answered = finish_by(Instant::now() + CONNECT, || Ok(7));
        assert_eq!(answered.map_err(|error| error.kind()), Ok(7));
    }

    /// A Redis on a Unix socket that stopped accepting (its accept queue full) fails the connect
    /// at its deadline; std's connect waited until the listener took it, holding every emit.
    // Elsewhere a full queue refuses the connect at once.
    #[cfg(all(feature = "redis", target_os = "linux"))]
    #[test]
    fn a_unix_socket_whose_accept_queue_is_full_fails_the_connect_at_the_deadline() {
        let dir = std::env::temp_dir().join(format!("sockio-unix-full-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let path = dir.join("redis.sock");
        // A queue of no connection at all beyond the one being taken: two connects fill it.
        let listener = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)
            .expect("a Unix socket");
        listener
            .bind(&socket2::SockAddr::unix(&path).expect("a socket address"))
            .expect("bind");
        listener.listen(0).expect("listen");
        let path = path.to_str().expect("a UTF-8 path").to_owned();
        let (done_tx, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Connections nobody accepts, until the queue is full.
            let mut queued = Vec::new();
            let outcome: Result<(), io::ErrorKind> = loop {
                let deadline = Instant::now() + Duration::from_millis(300);
                match BrokerStream::connect_unix(&path, deadline) {
                    Ok(stream) if queued.len() < 100 => queued.push(stream),
                    Ok(_) => break Err(io::ErrorKind::Other),
                    Err(error) => break Err(error.kind()),
                }
            };
            let _ = done_tx.send((outcome, queued.len()));
        });
        let (outcome, queued) = done
            .recv_timeout(Duration::from_secs(60))
            .expect("the connect to a full queue ends (it waited for an accept)");
        assert_eq!(
            outcome,
            Err(io::ErrorKind::TimedOut),
            "after {queued} queued"
        );
        drop(listener);
        let _ = std::fs::remove_dir_all(&dir);
    }

    const CONNECT: Duration = Duration::from_secs(5);
}
