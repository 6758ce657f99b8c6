//! A full handler queue does not hold back what a handler waits for. A connection thread that
//! finds the queue full waits for room (backpressure on its client); the outcomes of calls its
//! input settled must reach their callers first, or a handler blocked in `call` on the only
//! worker waits for a connection thread that waits for that worker.

mod support;

use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use sockio_testkit::raw_polling::{open, request, session_uri};
use sockio_threads::{CallError, Server, Socket};
use support::posts::joined;
use support::{STEP, recv};

#[test]
fn a_call_ended_by_its_client_leaving_returns_while_the_queue_is_full() {
    // One worker and room for one job.
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
    let (outcome_tx, outcome) = channel();
    {
        let callee = callee.clone();
        io.on("ask", move |socket: Socket, _: Option<Value>| {
            let sid = callee.lock().unwrap().clone().expect("a registered callee");
            let result = socket
                .server()
                .call("question", &"q")
                .to(&sid)
                .timeout(Duration::from_secs(120))
                .send();
            let _ = outcome_tx.send(result);
        });
    }
    let addr = support::serve(&io);

    // The callee, which never answers.
    let callee_uri = joined(addr);
    assert_eq!(
        request(addr, "POST", &callee_uri, br#"42["register"]"#).body,
        "ok"
    );
    recv(&registered, "the callee's registration");
    // The asker's handler takes the only worker and waits in `call`; the question reaching the
    // callee shows it is waiting.
    let asker_uri = joined(addr);
    assert_eq!(
        request(addr, "POST", &asker_uri, br#"42["ask"]"#).body,
        "ok"
    );
    let question = request(addr, "GET", &callee_uri, b"").body;
    assert!(question.contains(r#"["question","q"]"#), "{question}");
    // A third client's connect fills the queue: its POST is answered once its job is queued.
    let third_uri = session_uri("/socket.io/", &open(addr, "/socket.io/"));
    assert_eq!(request(addr, "POST", &third_uri, b"40").body, "ok");

    // The callee leaves its namespace: its connection thread settles the call (cancelled) and
    // needs the full queue for the disconnect.
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
