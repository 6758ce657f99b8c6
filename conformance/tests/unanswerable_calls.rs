//! Questions no client can answer fail at once, on every runtime: an emit with a callback that
//! reaches no client (no client manager) calls the callback once with an error, and a `call` to
//! a socket still connecting (from its own connect handler, whose end the CONNECT reply waits
//! for) is refused with `StillConnecting` instead of timing out and holding up the connect.

#[path = "support/in_process.rs"]
mod in_process;

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use in_process::{join_over_websocket, serve_async, serve_threads};
use serde_json::Value;
use sockio_server::{CallError, Runtime, Server, Socket};

const WAIT: Duration = Duration::from_secs(20);
/// Long enough that a call held until its timeout fails the test by the wait above.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// What a runtime's callback or call got, as text: the error types are each runtime's own.
type Outcome = Result<Value, String>;

/// The callback must have been called once, with `NotConnected`.
fn assert_told_once(outcomes: &Receiver<Outcome>) {
    let outcome = outcomes.recv_timeout(WAIT).expect("the callback");
    assert_eq!(
        outcome,
        Err("the client is not connected to namespace /".to_owned())
    );
    assert_eq!(
        outcomes.recv_timeout(WAIT),
        Err(RecvTimeoutError::Disconnected),
        "called once, then dropped"
    );
}

fn assert_refused_as_still_connecting(outcomes: &Receiver<Outcome>) {
    let outcome = outcomes.recv_timeout(WAIT).expect("the call's outcome");
    let error = outcome.expect_err("refused");
    assert!(
        error.starts_with("the client is still connecting to namespace /"),
        "{error}"
    );
}

fn connect_calling<Rt: Runtime>(outcomes: Sender<Outcome>) -> Server<Rt> {
    let io = Server::<Rt>::builder().build();
    io.on_connect(
        move |socket: Socket<Rt>, _handshake, _auth: Option<Value>| {
            let outcomes = outcomes.clone();
            async move {
                let answer = socket
                    .call("question", &1)
                    .timeout(CALL_TIMEOUT)
                    .answer::<Value>()
                    .await;
                let _ = outcomes.send(answer.map_err(|error: CallError| error.to_string()));
                Ok(())
            }
        },
    );
    io
}

async fn emit_to_nobody<Rt: Runtime>(io: &Server<Rt>, outcomes: Sender<Outcome>) {
    io.emit("question", &1)
        .to("no-such-sid")
        .callback(
            Some(CALL_TIMEOUT),
            move |outcome: Result<Value, CallError>| {
                let _ = outcomes.send(outcome.map_err(|error| error.to_string()));
            },
        )
        .await
        .expect("the emit");
}

#[test]
fn questions_nobody_can_answer_fail_at_once_on_tokio() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let _entered = runtime.enter();
    let (tx, outcomes) = channel();
    let io = Server::<sockio_tokio::Tokio>::builder().build();
    runtime.block_on(emit_to_nobody(&io, tx));
    assert_told_once(&outcomes);

    let (tx, outcomes) = channel();
    let io = connect_calling::<sockio_tokio::Tokio>(tx);
    let _client = join_over_websocket(serve_async(&io), WAIT);
    assert_refused_as_still_connecting(&outcomes);
}

#[test]
fn questions_nobody_can_answer_fail_at_once_on_smol() {
    let (tx, outcomes) = channel();
    let io = Server::<sockio_smol::Smol>::builder().build();
    smol::block_on(emit_to_nobody(&io, tx));
    assert_told_once(&outcomes);

    let (tx, outcomes) = channel();
    let io = connect_calling::<sockio_smol::Smol>(tx);
    let _client = join_over_websocket(serve_async(&io), WAIT);
    assert_refused_as_still_connecting(&outcomes);
}

#[test]
fn questions_nobody_can_answer_fail_at_once_on_threads() {
    let (tx, outcomes) = channel::<Outcome>();
    let io = sockio_threads::Server::builder().build();
    io.emit("question", &1)
        .to("no-such-sid")
        .callback(
            Some(CALL_TIMEOUT),
            move |outcome: Result<Value, sockio_threads::CallError>| {
                let _ = tx.send(outcome.map_err(|error| error.to_string()));
            },
        )
        .send()
        .expect("the emit");
    assert_told_once(&outcomes);

    let (tx, outcomes) = channel::<Outcome>();
    let io = sockio_threads::Server::builder().build();
    io.on_connect(
        move |socket: sockio_threads::Socket, _handshake, _auth: Option<Value>| {
            let answer = socket
                .call("question", &1)
                .timeout(CALL_TIMEOUT)
                .answer::<Value>();
            let _ = tx.send(answer.map_err(|error| error.to_string()));
            Ok(())
        },
    );
    let _client = join_over_websocket(serve_threads(&io), WAIT);
    assert_refused_as_still_connecting(&outcomes);
}
