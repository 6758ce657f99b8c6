//! What the kernel saw of a server's listening socket during a connect storm: its backlog, and
//! how often its accept queue was full. A full queue makes the kernel drop the client's SYN or
//! the handshake's last ACK, and the SYN or the SYN-ACK is sent again a second or more later, so
//! a storm's time can be the backlog's, not the server's work (the official Node.js server listens
//! with 511, sockio with 4,096).

use std::net::SocketAddr;
use std::process::Command;

/// TCP counters of the whole machine (`/proc/net/netstat`, `TcpExt`), read before and after a
/// storm; the benchmark runs one server at a time, so the difference is that server's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpCounters {
    /// `ListenOverflows`: a SYN or a completed handshake dropped because the accept queue was full.
    pub listen_overflows: u64,
    /// `TCPSynRetrans`: SYNs and SYN-ACKs sent again (the clients' and the server's, one side of
    /// the loopback each).
    pub syn_retransmits: u64,
}

impl TcpCounters {
    /// The counters now, or `None` where `/proc/net/netstat` is missing or has no such fields.
    pub fn read() -> Option<Self> {
        Self::parse(&std::fs::read_to_string("/proc/net/netstat").ok()?)
    }

    /// Parses the `TcpExt:` header line and the value line after it.
    fn parse(netstat: &str) -> Option<Self> {
        let mut lines = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
        let names = lines.next()?.split_whitespace().skip(1);
        let values = lines.next()?.split_whitespace().skip(1);
        let mut counters = (None, None);
        for (name, value) in names.zip(values) {
            match name {
                "ListenOverflows" => counters.0 = value.parse().ok(),
                "TCPSynRetrans" => counters.1 = value.parse().ok(),
                _ => {}
            }
        }
        Some(Self {
            listen_overflows: counters.0?,
            syn_retransmits: counters.1?,
        })
    }

    /// How much each counter grew since `earlier`.
    pub fn since(self, earlier: Self) -> Self {
        Self {
            listen_overflows: self
                .listen_overflows
                .saturating_sub(earlier.listen_overflows),
            syn_retransmits: self.syn_retransmits.saturating_sub(earlier.syn_retransmits),
        }
    }
}

/// The backlog the server listens with at `addr` (the Send-Q `ss -ltn` shows for a listening
/// socket), or `None` where `ss` (iproute2) is missing or finds no such socket.
pub fn backlog(addr: SocketAddr) -> Option<u32> {
    let out = Command::new("ss")
        .args(["-ltnH", &format!("sport = :{}", addr.port())])
        .output()
        .ok()?;
    parse_backlog(&String::from_utf8_lossy(&out.stdout), addr)
}

/// Reads the Send-Q of the line whose local address is `addr` in `ss -ltnH` output
/// (`State Recv-Q Send-Q Local Peer`).
fn parse_backlog(ss: &str, addr: SocketAddr) -> Option<u32> {
    let wanted = addr.to_string();
    ss.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [_, _, send_q, local, ..] if *local == wanted => send_q.parse().ok(),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_tcpext_counters_by_name() {
        let netstat = "TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPSynRetrans\n\
                       TcpExt: 6324 38739 38739 16476\n\
                       IpExt: InNoRoutes\nIpExt: 0\n";
        assert_eq!(
            TcpCounters::parse(netstat),
            Some(TcpCounters {
                listen_overflows: 38739,
                syn_retransmits: 16476
            })
        );
        assert_eq!(TcpCounters::parse("IpExt: InNoRoutes\nIpExt: 0\n"), None);
    }

    #[test]
    fn a_difference_never_goes_below_zero() {
        let before = TcpCounters {
            listen_overflows: 10,
            syn_retransmits: 5,
        };
        let after = TcpCounters {
            listen_overflows: 25,
            syn_retransmits: 4,
        };
        assert_eq!(
            after.since(before),
            TcpCounters {
                listen_overflows: 15,
                syn_retransmits: 0
            }
        );
    }

    #[test]
    fn finds_the_backlog_of_the_listening_address() {
        let ss = "LISTEN 0      511    127.0.0.1:6379 0.0.0.0:*\n\
                  LISTEN 0      4096   127.0.0.1:4000 0.0.0.0:*\n\
                  LISTEN 0      511        [::1]:6379    [::]:*\n";
        let addr: SocketAddr = "127.0.0.1:4000".parse().expect("address");
        assert_eq!(parse_backlog(ss, addr), Some(4096));
        let other: SocketAddr = "127.0.0.1:4001".parse().expect("address");
        assert_eq!(parse_backlog(ss, other), None);
    }
}
