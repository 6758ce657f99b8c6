//! The floor: a raw tokio-tungstenite WebSocket server that answers the echo scenario's frames
//! with the frames a Socket.IO server would send, without any Socket.IO machinery.

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::net::Result;

const OPEN: &str = r#"0{"sid":"floor","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;

/// `42<id>["echo",<args>]` → `43<id>[<args>]`; `40` → `40{"sid":...}`.
pub fn answer(text: &str) -> Option<String> {
    if text == "40" {
        return Some(r#"40{"sid":"floor"}"#.to_owned());
    }
    let rest = text.strip_prefix("42")?;
    let open = rest.find('[')?;
    let id = &rest[..open];
    let body = &rest[open + 1..];
    let args = match body.find(',') {
        Some(comma) => &body[comma + 1..],
        None => "]",
    };
    Some(format!("43{id}[{args}"))
}

/// Serves on 127.0.0.1:`port` until killed (tokio, 2 worker threads like the other servers).
pub fn serve(port: u16) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        // Bound as sockio's runtimes bind, with their backlog (`listen::ACCEPT_BACKLOG`): tokio's
        // `bind` asks for less, and a connect storm would then measure the floor's accept queue
        // overflowing (clients retransmitting after a second) rather than its work.
        let listener = sockio_net::listen::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(
                    stream,
                    Some(
                        WebSocketConfig::default()
                            .read_buffer_size(4096)
                            .write_buffer_size(64 * 1024),
                    ),
                )
                .await
                else {
                    return;
                };
                if ws.send(Message::text(OPEN)).await.is_err() {
                    return;
                }
                // Answer every frame already received, then write them in one flush: the same
                // batching a server does when it drains a connection's queue.
                while let Some(Ok(m)) = ws.next().await {
                    if feed_answer(&mut ws, m).await.is_err() {
                        return;
                    }
                    loop {
                        match ws.next().now_or_never() {
                            Some(Some(Ok(m))) => {
                                if feed_answer(&mut ws, m).await.is_err() {
                                    return;
                                }
                            }
                            Some(_) => return,
                            None => break,
                        }
                    }
                    if ws.flush().await.is_err() {
                        return;
                    }
                }
            });
        }
    })
}

async fn feed_answer(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    m: Message,
) -> Result<()> {
    if let Message::Text(t) = m
        && let Some(reply) = answer(t.as_str())
    {
        ws.feed(Message::text(reply)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn answers_like_socket_io() {
        assert_eq!(
            super::answer("421[\"echo\",\"a\",2]").as_deref(),
            Some("431[\"a\",2]")
        );
        assert_eq!(super::answer("421[\"echo\"]").as_deref(), Some("431[]"));
        assert_eq!(super::answer("3"), None);
    }
}
