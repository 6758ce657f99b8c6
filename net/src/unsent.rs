//! How much a client connection's socket may hold unsent.

/// Unsent bytes the kernel may hold for one client connection before the socket stops taking
/// writes (Linux's `TCP_NOTSENT_LOWAT`). Without a limit it takes up to its send buffer (up to
/// `tcp_wmem`'s maximum, 4 MiB here) for a client that reads slowly, and those bytes are out of
/// the core's reach: the heartbeat's ping, which goes ahead of what the core still holds, waited
/// behind them (about 14 s for a client reading 300 KB/s), and the socket took writes again only
/// once about half of them had gone, so the writer of a client reading 200 KB/s took nothing for
/// seconds, emits stopped waiting for it, and its queue overflowed (`outbound queue full`;
/// `testkit/clients/node/slow-readers.js`). The limit is on what waits in the kernel, not on
/// what is in flight: 400 messages of 500 KB to a client reading as fast as it can took 1.9-2.3 s
/// with it and 2.0-2.3 s before (`testkit/clients/node/room-burst.js`, README "Defaults").
pub const UNSENT_LIMIT: u32 = 128 * 1024;

/// Applies [`UNSENT_LIMIT`] to an accepted client connection; where the system has no such
/// option (only Linux and Android do here), nothing. Failure is ignored as for `TCP_NODELAY`:
/// the connection works without it.
pub fn limit_unsent<'s, S>(stream: &'s S)
where
    socket2::SockRef<'s>: From<&'s S>,
{
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let _ = socket2::SockRef::from(stream).set_tcp_notsent_lowat(UNSENT_LIMIT);
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = stream;
    }
}

/// Gives a client connection accepted outside sockio what sockio's own listeners give theirs:
/// `TCP_NODELAY` (Socket.IO packets are small and wait for an answer) and [`UNSENT_LIMIT`].
/// Failures are ignored: the connection works without either.
pub fn tune_client_connection<S: std::os::fd::AsFd>(stream: &S) {
    let _ = socket2::SockRef::from(stream).set_tcp_nodelay(true);
    limit_unsent(stream);
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;

    #[test]
    fn an_accepted_connection_holds_at_most_the_limit_unsent() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bound");
        let _client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connected");
        let (accepted, _) = listener.accept().expect("accepted");
        limit_unsent(&accepted);
        assert_eq!(
            socket2::SockRef::from(&accepted)
                .tcp_notsent_lowat()
                .expect("read back"),
            UNSENT_LIMIT
        );
    }

    #[test]
    fn a_tuned_connection_sends_at_once_and_holds_at_most_the_limit_unsent() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bound");
        let _client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connected");
        let (accepted, _) = listener.accept().expect("accepted");
        assert!(!accepted.nodelay().expect("read back"));
        tune_client_connection(&accepted);
        let socket = socket2::SockRef::from(&accepted);
        assert!(socket.tcp_nodelay().expect("read back"));
        assert_eq!(socket.tcp_notsent_lowat().expect("read back"), UNSENT_LIMIT);
    }
}
