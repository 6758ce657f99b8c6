//! A handler waits in `call` for its own client's answer while that client sends a burst of
//! events, then the answer. With handlers run one at a time (`async_handlers(false)`) the burst
//! waits behind the calling handler, past the backlog at which the client's reads pause (256
//! events on threads, 1,024 on tokio and smol), and the answer came after it: unread, the call
//! timed out and every event of the client waited until then. While a call waits for its
//! client, the backlog may grow four times as far (`sockio_core::api::backlog_allows_reading`),
//! so the answer is read. So it is when the call starts after the client's reading was held
//! back (from outside the handlers, which all wait): the call wakes the held reader.

#[path = "support/in_process.rs"]
mod in_process;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use in_process::{join_over_websocket, serve_async, serve_threads};
use serde_json::Value;
use sockio_server::{Runtime, Server, Socket};
use sockio_testkit::socket_queues;
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

/// How long the server's receive queue must stay the same before the test takes the server's
/// reading of the burst as held back at the backlog limit (`socket_queues`). A reader starved
/// of CPU that long looks held too: the call then starts while the reader still runs, and the
/// test passes without the wake it is about (weaker, never flaky).
const READING_STOPPED_FOR: Duration = Duration::from_millis(200);

/// Sends `hold` (whose handler waits until `open`) and a burst of `burst` events, so the
/// server's reading of this client is held back; then the test calls the client from outside
/// the handlers (`call`, given the client's sid) and the client answers behind its burst. The
/// call must get the answer: it wakes the held reader.
fn call_a_held_reader(
    addr: SocketAddr,
    burst: usize,
    sids: &Receiver<String>,
    call: impl FnOnce(String) -> Result<String, String> + Send + 'static,
    open: &AtomicBool,
) {
    let mut ws = join_over_websocket(addr, WAIT);
    ws.send(Message::text(r#"42["hold",{}]"#)).expect("hold");
    let sid = sids.recv_timeout(WAIT).expect("the holding handler runs");
    let noise = format!(r#"42["noise","{}"]"#, "x".repeat(300));
    for _ in 0..burst {
        ws.write(Message::text(noise.as_str())).expect("noise");
    }
    ws.flush().expect("the burst");
    let tungstenite::stream::MaybeTlsStream::Plain(stream) = ws.get_ref() else {
        panic!("a plain TCP stream");
    };
    // Not asserted: where /proc/net/tcp cannot be read, or the machine is too slow, the test
    // goes on unheld (see READING_STOPPED_FOR).
    let _ = socket_queues::wait_until_server_stops_reading(stream, READING_STOPPED_FOR, WAIT);
    let (answers, answered) = channel();
    std::thread::spawn(move || {
        let _ = answers.send(call(sid));
    });
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
    let answer = answered.recv_timeout(WAIT);
    open.store(true, Ordering::SeqCst);
    assert_eq!(answer, Ok(Ok("yes".to_owned())), "the call's answer");
}

/// `hold` sends its socket's sid and waits until `open`; `noise` does nothing.
fn holding_server<Rt: Runtime>(sids: Sender<String>, open: Arc<AtomicBool>) -> Server<Rt> {
    let io = Server::<Rt>::builder().async_handlers(false).build();
    io.on("hold", move |socket: Socket<Rt>, _: Value| {
        let (sids, open) = (sids.clone(), open.clone());
        async move {
            let _ = sids.send(socket.sid().to_string());
            while !open.load(Ordering::SeqCst) {
                Rt::default()
                    .sleep_until(std::time::Instant::now() + Duration::from_millis(10))
                    .await;
            }
        }
    });
    io.on("noise", |_socket: Socket<Rt>, _: Value| async {});
    io
}

/// Calls the client `sid` of `io` from outside its handlers.
async fn ask<Rt: Runtime>(io: Server<Rt>, sid: String) -> Result<String, String> {
    io.call("question", &1)
        .to(sid)
        .timeout(CALL_TIMEOUT)
        .answer::<String>()
        .await
        .map_err(|error| error.to_string())
}

#[test]
fn a_call_wakes_a_held_reader_on_tokio() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let _entered = runtime.enter();
    let (tx, sids) = channel();
    let open = Arc::new(AtomicBool::new(false));
    let io = holding_server::<sockio_tokio::Tokio>(tx, open.clone());
    let handle = runtime.handle().clone();
    let addr = serve_async(&io);
    let call = move |sid: String| handle.block_on(ask(io, sid));
    call_a_held_reader(addr, ASYNC_BURST, &sids, call, &open);
}

#[test]
fn a_call_wakes_a_held_reader_on_smol() {
    let (tx, sids) = channel();
    let open = Arc::new(AtomicBool::new(false));
    let io = holding_server::<sockio_smol::Smol>(tx, open.clone());
    let addr = serve_async(&io);
    let call = move |sid: String| smol::block_on(ask(io, sid));
    call_a_held_reader(addr, ASYNC_BURST, &sids, call, &open);
}

/// The threads runtime passes with or without the wake: its held reader looks at the backlog
/// again when it polls (a bounded wait), so this one checks that the call is answered, not how.
#[test]
fn a_call_to_a_held_reader_is_answered_on_threads() {
    let (tx, sids) = channel();
    let open = Arc::new(AtomicBool::new(false));
    let io = sockio_threads::Server::builder()
        .async_handlers(false)
        .build();
    let holding = open.clone();
    io.on("hold", move |socket: sockio_threads::Socket, _: Value| {
        let _ = tx.send(socket.sid().to_string());
        while !holding.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    io.on("noise", |_socket: sockio_threads::Socket, _: Value| {});
    let addr = serve_threads(&io);
    let call = move |sid: String| {
        io.call("question", &1)
            .to(sid)
            .timeout(CALL_TIMEOUT)
            .answer::<String>()
            .map_err(|error| error.to_string())
    };
    call_a_held_reader(addr, THREADS_BURST, &sids, call, &open);
}
