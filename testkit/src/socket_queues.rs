//! What the kernel holds in a server's socket to a loopback client, read from `/proc/net/tcp`
//! (Linux, IPv4): lets a test wait for a condition on the server's reading or writing instead of
//! a fixed sleep.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::time::{Duration, Instant};

/// How often [`wait_until_server_stops_reading`] looks at the queue.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// The send and receive queues (bytes) of the server's end of the loopback connection whose
/// client end is `client`: what the server's socket holds unacknowledged (the client's window is
/// full) and unread (the server's reader has not taken it yet). `None` when the table has no
/// such connection (not Linux, not IPv4, or the connection is gone).
pub fn server_queues(client: &TcpStream) -> Option<(u64, u64)> {
    let (SocketAddr::V4(server), SocketAddr::V4(client)) =
        (client.peer_addr().ok()?, client.local_addr().ok()?)
    else {
        return None;
    };
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // A row left in TIME_WAIT by an earlier connection between the same ports is not this
        // one: its queues are empty, and reading them would end a wait too early.
        let mine = table_address(fields.get(1)?)? == server
            && table_address(fields.get(2)?)? == client
            && *fields.get(3)? != TIME_WAIT;
        let (tx, rx) = fields.get(4)?.split_once(':')?;
        mine.then(|| {
            let queue = |hex| u64::from_str_radix(hex, 16).unwrap_or(0);
            (queue(tx), queue(rx))
        })
    })
}

/// The state column of a connection in TIME_WAIT (the kernel's `TCP_TIME_WAIT`).
const TIME_WAIT: &str = "06";

/// An address of `/proc/net/tcp`: the IPv4 address as the hex of its 32 bits in the machine's
/// byte order, a colon, the port in hex.
fn table_address(field: &str) -> Option<SocketAddrV4> {
    let (ip, port) = field.split_once(':')?;
    let ip = u32::from_str_radix(ip, 16).ok()?;
    let port = u16::from_str_radix(port, 16).ok()?;
    Some(SocketAddrV4::new(Ipv4Addr::from(ip.to_ne_bytes()), port))
}

/// Waits until the server has stopped taking what `client` sent from its socket: the server's
/// receive queue stayed the same for `steady` (it has read everything, or its reading is held
/// back with the rest left unread). Returns whether it saw that within `bound`; `false` too when
/// the queue cannot be read. A reader starved of CPU for `steady` looks stopped, so a test may
/// only rely on this being the usual case, not on it always.
pub fn wait_until_server_stops_reading(
    client: &TcpStream,
    steady: Duration,
    bound: Duration,
) -> bool {
    let deadline = Instant::now() + bound;
    let Some((_, mut unread)) = server_queues(client) else {
        return false;
    };
    let mut since = Instant::now();
    while Instant::now() < deadline {
        std::thread::sleep(SAMPLE_EVERY);
        let Some((_, now_unread)) = server_queues(client) else {
            return false;
        };
        if now_unread != unread {
            unread = now_unread;
            since = Instant::now();
        } else if since.elapsed() >= steady {
            return true;
        }
    }
    false
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    const BOUND: Duration = Duration::from_secs(30);

    #[test]
    fn table_addresses_read_as_the_kernel_writes_them() {
        // 127.0.0.1:8080 as /proc/net/tcp shows it on a little-endian machine.
        if cfg!(target_endian = "little") {
            assert_eq!(
                table_address("0100007F:1F90"),
                Some(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 8080))
            );
        }
        assert_eq!(table_address("0100007F"), None);
    }

    #[test]
    fn a_server_that_does_not_read_holds_what_its_client_sent() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (mut server, _) = listener.accept().expect("accept");
        client.write_all(&[7; 10_000]).expect("write");
        let steady = Duration::from_millis(50);
        assert!(wait_until_server_stops_reading(&client, steady, BOUND));
        assert_eq!(server_queues(&client), Some((0, 10_000)));
        // Once the server reads it all, the queue is empty (and steady again).
        let mut read = vec![0; 10_000];
        server.read_exact(&mut read).expect("read");
        assert!(wait_until_server_stops_reading(&client, steady, BOUND));
        assert_eq!(server_queues(&client), Some((0, 0)));
    }
}
