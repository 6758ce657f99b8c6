//! A TCP relay between a server under test and a real broker, which can stop carrying either
//! direction of the connections open at the time: a broker that stops reading (requests held),
//! or one that takes commands but whose answers do not come back in time (replies held), as a
//! stalled broker or a failing network path would, while a new connection works. It can also
//! carry the requests at a set rate, as a slow path. Both ends are real; only the path between
//! them is disturbed. Replies can also be held from a connection's first byte, and the relay
//! tells how many held reply bytes wait, so a test can wait for the broker to have answered
//! instead of sleeping.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often a held direction looks whether it may carry again.
const POLL: Duration = Duration::from_millis(10);
/// The relay's receive buffer for what the server sends: small, so that a rate limit on the
/// requests is felt by the server's writes rather than absorbed by the relay's socket (Linux
/// grows a receive buffer to tens of MB otherwise).
const REQUEST_BUFFER: usize = 64 * 1024;

/// Ends `stream` with a reset (RST) instead of a FIN, as a client whose machine or network
/// dropped the connection would: a zero linger time makes the kernel reset on close.
pub fn reset(stream: TcpStream) -> std::io::Result<()> {
    socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO))?;
    drop(stream);
    Ok(())
}

/// The relay; it stops accepting and carrying when dropped.
pub struct FaultyLink {
    addr: SocketAddr,
    /// Each relayed connection's holds: requests, replies.
    connections: Arc<Mutex<Vec<Holds>>>,
    /// Whether connections accepted from now on start with their replies held.
    hold_new_replies: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
}

#[derive(Clone, Default)]
struct Holds {
    requests: Arc<AtomicBool>,
    replies: Arc<AtomicBool>,
    /// Bytes per second the requests are carried at; 0 for as fast as they come.
    request_rate: Arc<AtomicU64>,
    /// Reply bytes waiting in the relay's socket while the replies are held.
    held_reply_bytes: Arc<AtomicUsize>,
    /// Set once either side closed the connection (the relay then closes the other).
    ended: Arc<AtomicBool>,
}

impl FaultyLink {
    /// Relays every connection made to [`addr`](Self::addr) to `upstream` (`host:port`).
    pub fn start(upstream: &str) -> std::io::Result<FaultyLink> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        // Accepted connections inherit it.
        socket2::SockRef::from(&listener).set_recv_buffer_size(REQUEST_BUFFER)?;
        let link = FaultyLink {
            addr,
            connections: Arc::default(),
            hold_new_replies: Arc::default(),
            stopped: Arc::new(AtomicBool::new(false)),
        };
        let (connections, stopped) = (link.connections.clone(), link.stopped.clone());
        let hold_new_replies = link.hold_new_replies.clone();
        let upstream = upstream.to_owned();
        listener.set_nonblocking(true)?;
        std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let Ok(server) = TcpStream::connect(&upstream) else {
                            continue;
                        };
                        let _ = client.set_nonblocking(false);
                        let holds = Holds::default();
                        holds
                            .replies
                            .store(hold_new_replies.load(Ordering::SeqCst), Ordering::SeqCst);
                        // Listed before anything is carried, so that a hold or release made once
                        // the broker has seen the connection reaches it.
                        if let Ok(mut connections) = connections.lock() {
                            connections.push(holds.clone());
                        }
                        carry(
                            &client,
                            &server,
                            holds.requests.clone(),
                            holds.request_rate.clone(),
                            Arc::default(),
                            holds.ended.clone(),
                            stopped.clone(),
                        );
                        carry(
                            &server,
                            &client,
                            holds.replies.clone(),
                            Arc::default(),
                            holds.held_reply_bytes.clone(),
                            holds.ended.clone(),
                            stopped.clone(),
                        );
                    }
                    Err(error) if error.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL),
                    Err(_) => return,
                }
            }
        });
        Ok(link)
    }

    /// Where the server under test connects instead of the broker.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// On the connections open now, stops (`true`) or resumes reading what the server sends:
    /// it then fills the socket buffers and its writes block, as with a broker that stopped
    /// reading.
    pub fn hold_requests(&self, hold: bool) {
        self.each_open(|holds| holds.requests.store(hold, Ordering::SeqCst));
    }

    /// On the connections open now, stops (`true`) or resumes passing the broker's answers on:
    /// the broker acts on what it is sent, but the server hears nothing.
    pub fn hold_replies(&self, hold: bool) {
        self.each_open(|holds| holds.replies.store(hold, Ordering::SeqCst));
    }

    /// On the connections accepted from now on, holds (`true`) the broker's answers from the
    /// first byte, as [`hold_replies`](Self::hold_replies) does on the open ones: a connection's
    /// set-up is then answered but the server does not know it yet.
    pub fn hold_new_replies(&self, hold: bool) {
        self.hold_new_replies.store(hold, Ordering::SeqCst);
    }

    /// How many bytes of the broker's held answers wait in the relay's sockets, over every
    /// connection (up to 64 KiB each, as last seen within a poll of the relay: a test waits
    /// until it reaches what it expects). Bytes a read had already taken when
    /// [`hold_replies`](Self::hold_replies) came are held too but not counted.
    pub fn held_reply_bytes(&self) -> usize {
        self.connections.lock().map_or(0, |connections| {
            connections
                .iter()
                .map(|holds| holds.held_reply_bytes.load(Ordering::SeqCst))
                .sum()
        })
    }

    /// Waits until [`held_reply_bytes`](Self::held_reply_bytes) reaches `bytes`; panics after
    /// `within`.
    pub fn wait_for_held_replies(&self, bytes: usize, within: Duration) {
        let deadline = std::time::Instant::now() + within;
        while self.held_reply_bytes() < bytes {
            assert!(
                std::time::Instant::now() < deadline,
                "{} of {bytes} reply bytes held after {within:?}",
                self.held_reply_bytes()
            );
            std::thread::sleep(POLL);
        }
    }

    /// On the connections open now, carries what the server sends at `bytes_per_second` (0: as
    /// fast as it comes), as a slow network path that keeps taking data.
    pub fn throttle_requests(&self, bytes_per_second: u64) {
        self.each_open(|holds| holds.request_rate.store(bytes_per_second, Ordering::SeqCst));
    }

    /// How many connections the relay has carried.
    pub fn connections(&self) -> usize {
        self.connections
            .lock()
            .map_or(0, |connections| connections.len())
    }

    /// How many of the relayed connections neither side has closed yet.
    pub fn open_connections(&self) -> usize {
        self.connections.lock().map_or(0, |connections| {
            connections
                .iter()
                .filter(|holds| !holds.ended.load(Ordering::SeqCst))
                .count()
        })
    }

    fn each_open(&self, f: impl Fn(&Holds)) {
        if let Ok(connections) = self.connections.lock() {
            connections.iter().for_each(f);
        }
    }
}

impl Drop for FaultyLink {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` on a thread of its own, not reading while `hold` is set (and counting
/// in `held` the bytes that wait meanwhile) and at most `rate` bytes per second when it is not
/// 0; both are cut, and `ended` set, when either side ends.
fn carry(
    from: &TcpStream,
    to: &TcpStream,
    hold: Arc<AtomicBool>,
    rate: Arc<AtomicU64>,
    held: Arc<AtomicUsize>,
    ended: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = from.set_read_timeout(Some(POLL));
        let mut buffer = vec![0u8; 64 * 1024];
        while !stopped.load(Ordering::SeqCst) {
            if hold.load(Ordering::SeqCst) {
                // The peek waits up to the read timeout when nothing is there; the bytes stay in
                // the socket.
                held.store(from.peek(&mut buffer).unwrap_or(0), Ordering::SeqCst);
                std::thread::sleep(POLL);
                continue;
            }
            held.store(0, Ordering::SeqCst);
            // A tenth of a second's worth per read at most, then the rest of that tenth waited
            // out: the rate holds within a tenth of a second.
            let per_second = rate.load(Ordering::SeqCst);
            let (chunk, started) = match per_second {
                0 => (buffer.len(), None),
                limited => (
                    usize::try_from(limited / 10)
                        .map_or(buffer.len(), |c| c.clamp(1, buffer.len())),
                    Some(std::time::Instant::now()),
                ),
            };
            match from.read(&mut buffer[..chunk]) {
                Ok(0) => break,
                Ok(read) => {
                    if let Some(started) = started {
                        let due = Duration::from_secs_f64(read as f64 / per_second as f64);
                        std::thread::sleep(due.saturating_sub(started.elapsed()));
                    }
                    // Held while this read waited: what it got is held too.
                    while hold.load(Ordering::SeqCst) && !stopped.load(Ordering::SeqCst) {
                        std::thread::sleep(POLL);
                    }
                    if to.write_all(&buffer[..read]).is_err() {
                        break;
                    }
                }
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
        ended.store(true, Ordering::SeqCst);
    });
}
