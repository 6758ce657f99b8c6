//! The server's own close of a WebSocket, while the client is still sending: a graceful shutdown
//! right after a burst of emits. Every message emitted before the shutdown reaches the client,
//! and then the close frame, on every runtime.
//!
//! The servers dropped the socket right after writing their close frame. With the client's
//! bytes still arriving (or not yet read), the kernel then resets the connection, and the reset
//! discards what the client had not read yet: the close frame and the last messages before it
//! (an audit saw 1,088 of 3,000 arrive, with close code 1006). The reference server (`ws`) does
//! the closing handshake: it reads on until the client's close frame. So does sockio now
//! (`sockio_core::websocket::CLOSE_LINGER`).

#[path = "support/in_process.rs"]
mod in_process;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use in_process::{join_over_websocket, serve_async, serve_threads};
use serde_json::Value;
use sockio_core::websocket::client_frame;
use sockio_server::{Runtime, Server};
use tungstenite::Message;
use tungstenite::stream::MaybeTlsStream;

/// Messages the server emits before it shuts down.
const MESSAGES: usize = 3000;
/// Their payload: 6 MB in all, so the client is still reading when the server closes.
const PAYLOAD: usize = 2000;
/// The client pauses for [`PAUSE`] after every this many messages, as a client busy elsewhere.
const PAUSE_EVERY: usize = 100;
const PAUSE: Duration = Duration::from_millis(10);
/// The shutdown's grace.
const GRACE: Duration = Duration::from_secs(10);
/// A bound on every read of the client: a server that stops answering fails the test.
const STEP: Duration = Duration::from_secs(20);

/// An async server whose `flood` handler emits [`MESSAGES`] messages, then starts a graceful
/// shutdown.
fn async_server<Rt: Runtime>() -> Server<Rt> {
    let io = Server::<Rt>::builder().build();
    io.on(
        "flood",
        |socket: sockio_server::Socket<Rt>, _: Value| async move {
            let payload = "x".repeat(PAYLOAD);
            for n in 0..MESSAGES {
                socket.emit("m", &(n, &payload)).await.expect("emit");
            }
            let server = socket.server().clone();
            let task = socket
                .server()
                .start_background_task(async move { server.shutdown(GRACE).await });
            drop(task); // runs on without being awaited
        },
    );
    io
}

/// The threads runtime's server, the same application.
fn threads_server() -> SocketAddr {
    let io = sockio_threads::Server::builder().build();
    io.on("flood", |socket: sockio_threads::Socket, _: Value| {
        let payload = "x".repeat(PAYLOAD);
        for n in 0..MESSAGES {
            socket.emit("m", &(n, &payload)).send().expect("emit");
        }
        let server = socket.server().clone();
        drop(
            socket
                .server()
                .start_background_task(move || server.shutdown(GRACE)),
        );
    });
    serve_threads(&io)
}

/// What the client saw: the messages it read, and whether the server's close frame came.
#[derive(Debug, PartialEq)]
struct Seen {
    messages: usize,
    close_frame: bool,
}

/// Joins `/`, asks for the flood and reads until the connection ends, while a second thread
/// keeps sending events on the same connection (as a client that is busy when the server goes
/// away).
fn flood_while_sending(addr: SocketAddr) -> Seen {
    let mut ws = join_over_websocket(addr, STEP);
    let MaybeTlsStream::Plain(stream) = ws.get_ref() else {
        panic!("a plain TCP stream");
    };
    let noise = stream.try_clone().expect("a second handle on the stream");
    ws.send(Message::text(r#"42["flood",{}]"#)).expect("flood");

    let stop = Arc::new(AtomicBool::new(false));
    let sender = std::thread::spawn({
        let stop = stop.clone();
        move || send_noise(noise, &stop)
    });
    let mut seen = Seen {
        messages: 0,
        close_frame: false,
    };
    loop {
        match ws.read() {
            Ok(Message::Text(text)) if text.starts_with(r#"42["m","#) => {
                seen.messages += 1;
                if seen.messages.is_multiple_of(PAUSE_EVERY) {
                    std::thread::sleep(PAUSE);
                }
            }
            Ok(Message::Text(text)) if text.as_str() == "2" => {
                let _ = ws.send(Message::text("3"));
            }
            Ok(Message::Close(_)) => seen.close_frame = true,
            Ok(_) => {}
            // The end: after the close, the server's end of stream (or a reset once the client
            // read everything); before it, the reset that lost the rest.
            Err(_) => break,
        }
    }
    stop.store(true, Ordering::SeqCst);
    sender.join().expect("the sending thread");
    seen
}

/// Writes events (each a whole frame, so they never split the other thread's frames) until the
/// server stops taking them or `stop`.
fn send_noise(mut stream: TcpStream, stop: &AtomicBool) {
    let mut batch = Vec::new();
    for _ in 0..50 {
        batch.extend(client_frame(0x81, br#"42["noise"]"#, [1, 2, 3, 4]));
    }
    while !stop.load(Ordering::SeqCst) {
        if stream.write_all(&batch).is_err() {
            return;
        }
        // Paced, so the server's reading keeps up and the client stays busy all along.
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn expect_everything(runtime: &str, addr: SocketAddr) {
    let seen = flood_while_sending(addr);
    assert_eq!(
        seen,
        Seen {
            messages: MESSAGES,
            close_frame: true
        },
        "{runtime}: what the client read before the connection ended"
    );
}

#[test]
fn a_shutdown_while_the_client_sends_delivers_everything_on_tokio() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let _entered = runtime.enter();
    let io = async_server::<sockio_tokio::Tokio>();
    expect_everything("tokio", serve_async(&io));
}

#[test]
fn a_shutdown_while_the_client_sends_delivers_everything_on_smol() {
    let io = async_server::<sockio_smol::Smol>();
    expect_everything("smol", serve_async(&io));
}

#[test]
fn a_shutdown_while_the_client_sends_delivers_everything_on_threads() {
    expect_everything("threads", threads_server());
}
