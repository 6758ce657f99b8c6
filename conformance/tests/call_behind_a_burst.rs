//! A handler waits in `call` for its own client's answer while that client sends a burst of
//! events, then the answer. With handlers run one at a time (`async_handlers(false)`) the burst
//! waits behind the calling handler, past the backlog at which the client's reads pause (256
//! events on threads, 1,024 on tokio and smol), and the answer came after it: unread, the call
//! timed out and every event of the client waited until then. While a call waits for its
//! client, the backlog may grow four times as far (`sockio_core::api::backlog_allows_reading`),
//! so the answer is read.

#[path = "support/in_process.rs"]
mod in_process;

use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use in_process::{join_over_websocket, serve_async, serve_threads};
use serde_json::Value;
use sockio_server::{Runtime, Server, Socket};
use tungstenite::Message;

/// Past the async runtimes' backlog limit (1,024), within four times it; with their padding,
/// more than one read turn (256 KiB) of the async runtimes, which check the backlog per turn.
const ASYNC_BURST: usize = 2_000;
/// Past the threads runtime's backlog limit (256), within four times it.
const THREADS_BURST: usize = 600;
/// Long enough that a call left unanswered fails the test by the wait below, not by its own
/// timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
const WAIT: Duration = Duration::from_secs(30);

fn server<Rt: Runtime>(answers: Sender<Result<String, String>>) -> Server<Rt> {
    let io = Server::<Rt>::builder().async_handlers(false).build();
    io.on("ask", move |socket: Socket<Rt>, _: Value| {
        let answers = answers.clone();
        async move {
            let answer = socket
                .call("question", &1)
                .timeout(CALL_TIMEOUT)
                .answer::<String>()
                .await;
            let _ = answers.send(answer.map_err(|error| error.to_string()));
        }
    });
    io.on("noise", |_socket: Socket<Rt>, _: Value| async {});
    io
}

/// Asks, sends a burst of `burst` events, then answers the question; the handler's call must
/// get that answer.
fn ask_behind_a_burst(addr: SocketAddr, burst: usize, answers: &Receiver<Result<String, String>>) {
    let mut ws = join_over_websocket(addr, WAIT);
    ws.send(Message::text(r#"42["ask",{}]"#)).expect("ask");
    let noise = format!(r#"42["noise","{}"]"#, "x".repeat(300));
    for _ in 0..burst {
        ws.write(Message::text(noise.as_str())).expect("noise");
    }
    ws.flush().expect("the burst");
    let ack_id = loop {
        match ws.read().expect("the question") {
            Message::Text(text) if text.as_str() == "2" => {
                ws.send(Message::text("3")).expect("pong");
            }
            Message::Text(text) => {
                let Some(rest) = text.strip_prefix("42") else {
                    continue;
                };
                let id: String = rest.chars().take_while(char::is_ascii_digit).collect();
                assert!(rest[id.len()..].starts_with(r#"["question""#), "{text}");
                break id;
            }
            _ => {}
        }
    };
    ws.send(Message::text(format!(r#"43{ack_id}["yes"]"#)))
        .expect("the answer");
    let answer = answers
        .recv_timeout(WAIT)
        .expect("the call's answer, read behind the burst");
    assert_eq!(answer, Ok("yes".to_owned()));
}

#[test]
fn a_call_is_answered_behind_a_burst_on_tokio() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let _entered = runtime.enter();
    let (tx, answers) = channel();
    let io = server::<sockio_tokio::Tokio>(tx);
    ask_behind_a_burst(serve_async(&io), ASYNC_BURST, &answers);
}

#[test]
fn a_call_is_answered_behind_a_burst_on_smol() {
    let (tx, answers) = channel();
    let io = server::<sockio_smol::Smol>(tx);
    ask_behind_a_burst(serve_async(&io), ASYNC_BURST, &answers);
}

#[test]
fn a_call_is_answered_behind_a_burst_on_threads() {
    let (tx, answers) = channel();
    let io = sockio_threads::Server::builder()
        .async_handlers(false)
        .build();
    io.on("ask", move |socket: sockio_threads::Socket, _: Value| {
        let answer = socket
            .call("question", &1)
            .timeout(CALL_TIMEOUT)
            .answer::<String>();
        let _ = tx.send(answer.map_err(|error| error.to_string()));
    });
    io.on("noise", |_socket: sockio_threads::Socket, _: Value| {});
    ask_behind_a_burst(serve_threads(&io), THREADS_BURST, &answers);
}
