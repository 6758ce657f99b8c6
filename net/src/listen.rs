//! Listening sockets for every runtime's `serve`.

use std::io;
use std::net::{TcpListener, ToSocketAddrs};

use socket2::{Domain, Socket, Type};

/// The accept backlog asked of the kernel, which caps it at `net.core.somaxconn` (4096 on
/// current Linux). std's and smol's listeners ask for 128: during a burst of connections (a
/// connect flood, or every client reconnecting after a restart) that queue overflows, the kernel
/// drops SYNs, and every client whose SYN was dropped waits for its retransmission, a full second.
pub const ACCEPT_BACKLOG: i32 = 4096;

/// Whether a failed `accept` concerns only the connection it would have given (a client that
/// reset or went unreachable while it waited in the backlog; `accept(2)` says to retry those as
/// at once), rather than the listener or the process (out of file descriptors), after which an
/// accept loop pauses before it tries again.
pub fn accept_error_is_the_clients(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::NetworkDown
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::HostUnreachable
    )
}

/// Binds a TCP listener to the first address of `addr` that binds, with [`ACCEPT_BACKLOG`] and,
/// as std does, `SO_REUSEADDR` (a restarted server gets its port back while connections of the
/// previous one are in TIME_WAIT). The listener is blocking, as std's.
pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
    let mut last = io::Error::new(
        io::ErrorKind::InvalidInput,
        "the address resolves to nothing",
    );
    for addr in addr.to_socket_addrs()? {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        match socket
            .bind(&addr.into())
            .and_then(|()| socket.listen(ACCEPT_BACKLOG))
        {
            Ok(()) => return Ok(socket.into()),
            Err(error) => last = error,
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gone_from_the_backlog_is_not_the_listeners_error() {
        let clients = [
            io::ErrorKind::ConnectionAborted,
            io::ErrorKind::ConnectionReset,
        ];
        for kind in clients {
            assert!(
                accept_error_is_the_clients(&io::Error::from(kind)),
                "{kind:?}"
            );
        }
        // EMFILE: the process is out of file descriptors.
        assert!(!accept_error_is_the_clients(&io::Error::from_raw_os_error(
            24
        )));
    }

    #[test]
    fn binds_and_accepts() {
        let listener = bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let _client = std::net::TcpStream::connect(addr).expect("connect");
        assert!(listener.accept().is_ok());
    }

    #[test]
    fn a_taken_port_is_an_error() {
        let first = bind("127.0.0.1:0").expect("bind");
        let taken = first.local_addr().expect("address");
        assert_eq!(
            bind(taken).map(|_| ()).unwrap_err().kind(),
            io::ErrorKind::AddrInUse
        );
    }

    #[test]
    fn the_backlog_is_deep() {
        // ss shows a listener's backlog in Send-Q.
        let listener = bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        // Installed when missing (Debian's iproute2), so that the check is never skipped.
        let ss =
            sockio_testkit::debian::ensure_program(std::path::Path::new("/bin/ss"), "iproute2")
                .expect("ss");
        let out = std::process::Command::new(ss)
            .args(["-ltnH", &format!("sport = :{port}")])
            .output()
            .expect("ss runs");
        let listing = String::from_utf8_lossy(&out.stdout);
        let backlog: i64 = listing
            .split_whitespace()
            .nth(2)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("ss printed {listing:?}"));
        let somaxconn: i64 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(128);
        assert_eq!(backlog, somaxconn.min(i64::from(ACCEPT_BACKLOG)));
    }
}
