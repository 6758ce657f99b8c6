//! A handler that emits far more than the outbound queue holds (`max_buffered_packets`, 10,000)
//! in a loop that never waits on anything else, to a client that reads as fast as it can: every
//! message arrives, on the async runtimes. The handler runs on the task that read its event,
//! which also writes to that client; the loop kept that task from writing, so the queue filled
//! to its limit and the client was closed ("outbound queue full") having read nothing (an audit
//! saw it with 10,000 emits). Emits now let the writer run once a queue is half full
//! (`Session::is_crowded`). On threads the writer pool writes while the handler runs.

#[path = "support/in_process.rs"]
mod in_process;

use std::net::SocketAddr;
use std::time::Duration;

use in_process::{join_over_websocket, serve_async, serve_threads};
use serde_json::Value;
use sockio_server::{Runtime, Server, Socket};
use tungstenite::Message;

/// Three times the default `max_buffered_packets`.
const MESSAGES: u64 = 30_000;

fn server<Rt: Runtime>() -> Server<Rt> {
    let io = Server::<Rt>::builder().build();
    io.on("burst", |socket: Socket<Rt>, _: Value| async move {
        for n in 0..MESSAGES {
            socket.emit("n", &n).await.expect("emit");
        }
    });
    io
}

/// Joins `/`, asks for the burst and counts what arrives until the last message or the end.
fn read_burst(addr: SocketAddr) -> u64 {
    let mut ws = join_over_websocket(addr, Duration::from_secs(20));
    ws.send(Message::text(r#"42["burst",{}]"#)).expect("burst");
    let mut received = 0;
    while received < MESSAGES {
        match ws.read() {
            Ok(Message::Text(text)) if text.starts_with(r#"42["n","#) => received += 1,
            Ok(Message::Text(text)) if text.as_str() == "2" => {
                let _ = ws.send(Message::text("3"));
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    received
}

#[test]
fn a_burst_of_emits_from_a_handler_arrives_whole_on_tokio() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let _entered = runtime.enter();
    let io = server::<sockio_tokio::Tokio>();
    assert_eq!(read_burst(serve_async(&io)), MESSAGES);
}

#[test]
fn a_burst_of_emits_from_a_handler_arrives_whole_on_smol() {
    let io = server::<sockio_smol::Smol>();
    assert_eq!(read_burst(serve_async(&io)), MESSAGES);
}

#[test]
fn a_burst_of_emits_from_a_handler_arrives_whole_on_threads() {
    let io = sockio_threads::Server::builder().build();
    io.on("burst", |socket: sockio_threads::Socket, _: Value| {
        for n in 0..MESSAGES {
            socket.emit("n", &n).send().expect("emit");
        }
    });
    assert_eq!(read_burst(serve_threads(&io)), MESSAGES);
}
