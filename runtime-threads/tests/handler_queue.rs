//! A full handler queue does not hold back what a handler waits for. A handler blocked in `call`
//! on the only worker waits for its answer; whatever settles the call (the callee leaving, or
//! its answer, perhaps read right after an event of its own) must reach the caller without the
//! connection thread that reads it waiting for room in the queue, which only that worker makes.

mod support;

use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sockio_testkit::raw_polling::{open, request, session_uri};
use sockio_threads::{CallError, Server, Socket};
use support::posts::joined;
use support::{STEP, recv};
use tungstenite::Message;

/// What the asker's call ended with: the answer's arguments, or the error.
type Outcome = Result<Vec<Value>, CallError>;

/// A server with one worker and room for one job, whose `ask` handler calls the client that
/// sent `register` (`question`, "q", waiting up to 120 s) and reports the outcome.
fn server() -> (Server, SocketAddr, Receiver<()>, Receiver<Outcome>) {
    let io = Server::builder()
        .handler_threads(1)
        .handler_queue(1)
        .build();
    let callee: Arc<Mutex<Option<String>>> = Arc::default();
    let (registered_tx, registered) = channel();
    {
        let callee = callee.clone();
        io.on("register", move |socket: Socket, _: Option<Value>| {
            *callee.lock().unwrap() = Some(socket.sid().to_string());
            let _ = registered_tx.send(());
        });
    }
    io.on("other", |_socket: Socket, _: Option<Value>| {});
    let (outcome_tx, outcome) = channel();
    io.on("ask", move |socket: Socket, _: Option<Value>| {
        let sid = callee.lock().unwrap().clone().expect("a registered callee");
        let result = socket
            .server()
            .call("question", &"q")
            .to(&sid)
            .timeout(Duration::from_secs(120))
            .send();
        let _ = outcome_tx.send(result.map(|args| args.values));
    });
    let addr = support::serve(&io);
    (io, addr, registered, outcome)
}

/// The asker's handler takes the only worker and waits in `call`. Returns the session URI of a
/// third client, opened, whose connect (`POST 40`, answered once its job is queued) is to fill
/// the queue.
fn ask_and_open_a_third(addr: SocketAddr) -> String {
    let asker_uri = joined(addr);
    assert_eq!(
        request(addr, "POST", &asker_uri, br#"42["ask"]"#).body,
        "ok"
    );
    session_uri("/socket.io/", &open(addr, "/socket.io/"))
}

type Client = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

/// The next text message on `ws`, answering Engine.IO pings on the way.
fn next_text(ws: &mut Client) -> String {
    loop {
        match ws.read().expect("a message") {
            Message::Text(text) if text.as_str() == "2" => {
                ws.send(Message::text("3")).expect("pong");
            }
            Message::Text(text) => return text.as_str().to_owned(),
            _ => {}
        }
    }
}

#[test]
fn a_call_ended_by_its_client_leaving_returns_while_the_queue_is_full() {
    let (io, addr, registered, outcome) = server();
    // The callee, over polling, never answers.
    let callee_uri = joined(addr);
    assert_eq!(
        request(addr, "POST", &callee_uri, br#"42["register"]"#).body,
        "ok"
    );
    recv(&registered, "the callee's registration");
    let third_uri = ask_and_open_a_third(addr);
    let question = request(addr, "GET", &callee_uri, b"").body;
    assert!(question.contains(r#"["question","q"]"#), "{question}");
    assert_eq!(request(addr, "POST", &third_uri, b"40").body, "ok");

    // The callee leaves its namespace: its connection thread settles the call (cancelled) and
    // has the disconnect to hand to the full queue.
    let leaving = std::thread::spawn(move || request(addr, "POST", &callee_uri, b"41").body);
    let result = outcome
        .recv_timeout(STEP)
        .expect("the call's outcome while the queue was full");
    assert!(matches!(result, Err(CallError::Disconnected)), "{result:?}");
    // The worker is free again: the queued connect, then the disconnect, are handled.
    assert_eq!(leaving.join().expect("the leaving POST"), "ok");
    assert!(
        request(addr, "GET", &third_uri, b"").body.starts_with("40"),
        "the third client's connect answered"
    );
    io.abort();
}

/// The callee's answer comes right after an event of its own, in separate WebSocket messages:
/// its reader hands the event to the full queue, then reads the answer.
#[test]
fn an_answer_read_after_an_event_reaches_the_call_while_the_queue_is_full() {
    let (io, addr, registered, outcome) = server();
    let (mut callee, _) =
        tungstenite::connect(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket"))
            .expect("WebSocket handshake");
    assert!(next_text(&mut callee).starts_with("0{"));
    callee.send(Message::text("40")).expect("connect");
    let connected = next_text(&mut callee);
    assert!(connected.starts_with("40{"), "{connected}");
    callee
        .send(Message::text(r#"42["register"]"#))
        .expect("register");
    recv(&registered, "the callee's registration");
    let third_uri = ask_and_open_a_third(addr);
    let question = next_text(&mut callee);
    let id: String = question
        .strip_prefix("42")
        .expect("an event")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert!(question.ends_with(r#"["question","q"]"#), "{question}");
    assert_eq!(request(addr, "POST", &third_uri, b"40").body, "ok");

    callee
        .send(Message::text(r#"42["other"]"#))
        .expect("an event");
    callee
        .send(Message::text(format!(r#"43{id}["a"]"#)))
        .expect("the answer");
    let result = outcome
        .recv_timeout(STEP)
        .expect("the call's answer while the queue was full");
    assert_eq!(result.expect("answered"), vec![json!("a")]);
    assert!(
        request(addr, "GET", &third_uri, b"").body.starts_with("40"),
        "the third client's connect answered"
    );
    io.abort();
}
