//! The client side of Engine.IO v4 / Socket.IO v5: TCP connections from spread source addresses,
//! the WebSocket handshake and the few packet shapes the scenarios use.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Errors of the load generator: every failure on peer input is one of these, never a panic.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, Error>;

/// A WebSocket client connection.
pub type Ws = WebSocketStream<TcpStream>;

/// How many client connections share one source address (127.0.0.x) before the next one is used.
pub const PER_SOURCE_ADDRESS: u64 = 10_000;

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(0);

/// The source address of the next client connection: 127.0.0.1 for the first 10,000, 127.0.0.2
/// for the next, and so on (then 127.0.1.x). Connections are closed with a reset (zero linger), so
/// no TIME_WAIT state holds source ports between scenarios.
pub fn next_source_address() -> Ipv4Addr {
    let n = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed) / PER_SOURCE_ADDRESS;
    let n = n % (254 * 254);
    Ipv4Addr::new(127, 0, (n / 254) as u8, (n % 254 + 1) as u8)
}

/// How many client connections were opened so far.
pub fn connections_opened() -> u64 {
    NEXT_CONNECTION.load(Ordering::Relaxed)
}

/// How many distinct source addresses the connections numbered `from..to` used.
pub fn source_addresses_between(from: u64, to: u64) -> u64 {
    if to <= from {
        return 0;
    }
    (to - 1) / PER_SOURCE_ADDRESS - from / PER_SOURCE_ADDRESS + 1
}

/// Opens a TCP connection to `server` from the next source address.
pub async fn tcp_connect(server: SocketAddr) -> Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.set_zero_linger()?;
    socket.set_nodelay(true)?;
    socket.bind(SocketAddr::new(next_source_address().into(), 0))?;
    Ok(socket.connect(server).await?)
}

fn ws_config() -> WebSocketConfig {
    // Small buffers: 15,000 connections in one process. Frames wait in the write buffer until a
    // flush (`send` flushes at once), so a client can write several frames in one system call.
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(4096)
}

/// Connects a WebSocket-only Engine.IO client and the Socket.IO namespace `/`.
pub async fn ws_connect(server: SocketAddr) -> Result<Ws> {
    let stream = tcp_connect(server).await?;
    let url = format!("ws://{server}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(url, stream, Some(ws_config())).await?;
    let open = next_text(&mut ws).await?;
    if !open.starts_with('0') {
        return Err(format!("expected an Engine.IO open packet, got {open:?}").into());
    }
    ws.send(Message::text("40")).await?;
    loop {
        let text = next_text(&mut ws).await?;
        if text.starts_with("40") {
            return Ok(ws);
        }
        if text == "2" {
            ws.send(Message::text("3")).await?;
        } else if text.starts_with("44") {
            return Err(format!("namespace connect refused: {text}").into());
        }
    }
}

/// The next text frame (answering nothing), or an error when the connection ends.
pub async fn next_text(ws: &mut Ws) -> Result<String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_owned()),
            Some(Ok(Message::Close(_))) | None => return Err("connection closed".into()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

/// `42<id>["event",<args>]` with `args` already JSON (comma-separated, may be empty).
pub fn event_with_ack(id: u64, event: &str, args: &str) -> String {
    if args.is_empty() {
        format!("42{id}[\"{event}\"]")
    } else {
        format!("42{id}[\"{event}\",{args}]")
    }
}

/// The ack id of a `43<id>[...]` packet.
pub fn ack_id(text: &str) -> Option<u64> {
    let rest = text.strip_prefix("43")?;
    let end = rest.find('[')?;
    rest[..end].parse().ok()
}

/// Whether a text frame is the `bcast` event.
pub fn is_bcast(text: &str) -> bool {
    text.starts_with("42[\"bcast\"")
}

/// Waits at most `d` for `f`; an error if it took longer.
pub async fn within<T>(d: Duration, f: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(d, f)
        .await
        .map_err(|_| Error::from(format!("timed out after {d:?}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ack_ids() {
        assert_eq!(ack_id("4312[\"x\"]"), Some(12));
        assert_eq!(ack_id("430[]"), Some(0));
        assert_eq!(ack_id("42[\"bcast\"]"), None);
        assert_eq!(ack_id("43x["), None);
        assert!(is_bcast("42[\"bcast\",\"p\"]"));
        assert_eq!(event_with_ack(3, "echo", "\"a\""), "423[\"echo\",\"a\"]");
    }
}
