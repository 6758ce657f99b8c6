//! Where emit callbacks run: never inside the application's own call that settled them (an
//! emit that overflowed a queue and closed the connection), and never on the timer thread,
//! where a callback that blocks (a `call` made in it) would stop every connection's timers, its
//! own call's timeout among them. And a callback settled by a client's answer, which runs on
//! the thread reading that client, cannot make a blocking `call` to that client, nor one that
//! would close a cycle of reading threads waiting on each other's clients: it is refused at
//! once, where it would wait out its whole timeout.

mod support;

use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use serde_json::Value;
use sockio_testkit::raw_polling::request;
use sockio_threads::{CallError, Server, Socket};
use support::posts::joined;
use support::{recv, serve};
use tungstenite::Message;

/// A handler emits with a callback, then, holding its own lock, emits until the client's queue
/// (a polling client that does not poll) overflows, which closes the connection and cancels the
/// callback's acknowledgement. The callback must not run on the emitting thread, inside the
/// emit, where the lock it may need is held (a plain lock there would deadlock for good).
#[test]
fn a_callback_cancelled_by_an_overflowing_emit_runs_apart_from_it() {
    let io = Server::builder().max_buffered(8, 1 << 20).build();
    let state = Arc::new(Mutex::new(0u32));
    let (tx, called) = channel::<(ThreadId, u32)>();
    let (emitted_on, emitter) = channel::<ThreadId>();
    io.on("go", move |socket: Socket, _: Option<Value>| {
        let (in_callback, tx) = (state.clone(), Mutex::new(tx.clone()));
        socket
            .emit("question", &())
            .callback(None, move |outcome: Result<Value, CallError>| {
                assert!(outcome.is_err(), "{outcome:?}");
                // Waits for the emitting handler to let go of its lock.
                let value = *in_callback.lock().unwrap();
                let _ = tx
                    .lock()
                    .unwrap()
                    .send((std::thread::current().id(), value));
            })
            .send()
            .expect("the emit asking for an answer");
        let mut guard = state.lock().unwrap();
        for n in 0..20 {
            let _ = socket.emit("update", &n).send();
        }
        *guard = 1;
        let _ = emitted_on.send(std::thread::current().id());
    });
    let addr = serve(&io);
    let uri = joined(addr);
    assert_eq!(request(addr, "POST", &uri, br#"42["go"]"#).body, "ok");
    let emitting_thread = recv(&emitter, "the handler's emits");
    let (callback_thread, seen) = recv(&called, "the cancelled callback");
    assert_ne!(
        callback_thread, emitting_thread,
        "the callback ran inside the emit"
    );
    assert_eq!(
        seen, 1,
        "the callback ran before the handler let go of its lock"
    );
    io.abort();
}

/// An emit's acknowledgement times out; its callback then makes a `call` with a 1 s timeout to
/// a client that does not answer. The callback does not run on the timer thread, so the timer
/// thread times that call out after its 1 s; run there, it could not, and the call would only
/// end by its own bound (its timeout plus 5 s).
#[test]
fn a_call_in_a_timed_out_callback_is_timed_out() {
    let io = Server::builder().build();
    let (tx, outcomes) = channel::<(Result<Value, CallError>, Duration)>();
    io.on("go", move |socket: Socket, _: Option<Value>| {
        let server = socket.server().clone();
        let sid = socket.sid().to_string();
        let tx = Mutex::new(tx.clone());
        socket
            .emit("never-answered", &())
            .callback(
                Some(Duration::from_millis(100)),
                move |outcome: Result<Value, CallError>| {
                    assert!(matches!(outcome, Err(CallError::Timeout)), "{outcome:?}");
                    let asked = Instant::now();
                    let answer = server
                        .call("also-never-answered", &())
                        .to(&sid)
                        .timeout(Duration::from_secs(1))
                        .answer::<Value>();
                    let _ = tx.lock().unwrap().send((answer, asked.elapsed()));
                },
            )
            .send()
            .expect("the emit asking for an answer");
    });
    let addr = serve(&io);
    let uri = joined(addr);
    assert_eq!(request(addr, "POST", &uri, br#"42["go"]"#).body, "ok");
    let (answer, took) = recv(&outcomes, "the call made in the callback");
    assert!(matches!(answer, Err(CallError::Timeout)), "{answer:?}");
    // 1 s when the timer thread times it out; 6 s (its own bound) when it is stuck in the
    // callback.
    assert!(took < Duration::from_secs(4), "the call took {took:?}");
    io.abort();
}

/// What the callback's own `call` ended with, and how long it took.
type CallInCallback = (Result<Value, CallError>, Duration);

/// A server whose `go` handler asks its client `question` with a callback that, once the
/// client answers, calls that same client (`second`, up to 30 s) and reports the outcome.
fn calling_back_to_the_answering_client() -> (Server, std::sync::mpsc::Receiver<CallInCallback>) {
    let io = Server::builder().build();
    let (tx, outcomes) = channel::<CallInCallback>();
    io.on("go", move |socket: Socket, _: Option<Value>| {
        let again = socket.clone();
        let tx = Mutex::new(tx.clone());
        socket
            .emit("question", &())
            .callback(None, move |outcome: Result<Value, CallError>| {
                assert!(outcome.is_ok(), "{outcome:?}");
                let asked = Instant::now();
                let answer = again
                    .call("second", &())
                    .timeout(Duration::from_secs(30))
                    .answer::<Value>();
                let _ = tx.lock().unwrap().send((answer, asked.elapsed()));
            })
            .send()
            .expect("the emit asking for an answer");
    });
    (io, outcomes)
}

/// The ack id of an event packet `42<id>[...]`.
fn ack_id(packet: &str) -> String {
    packet
        .strip_prefix("42")
        .expect("an event")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect()
}

fn assert_refused_at_once((answer, took): CallInCallback) {
    assert!(
        matches!(answer, Err(CallError::OnItsReadingThread)),
        "{answer:?}"
    );
    assert!(took < Duration::from_secs(5), "the call took {took:?}");
}

/// Over polling the answer's callback runs on the thread of the POST that carried it, whose
/// response (and so the client's next POST) waits for it.
#[test]
fn a_call_to_the_client_whose_answer_ran_the_callback_is_refused_over_polling() {
    let (io, outcomes) = calling_back_to_the_answering_client();
    let addr = serve(&io);
    let uri = joined(addr);
    assert_eq!(request(addr, "POST", &uri, br#"42["go"]"#).body, "ok");
    let question = request(addr, "GET", &uri, b"").body;
    assert!(question.ends_with(r#"["question"]"#), "{question}");
    let answer = format!("43{}[]", ack_id(&question));
    assert_eq!(request(addr, "POST", &uri, answer.as_bytes()).body, "ok");
    assert_refused_at_once(recv(&outcomes, "the call made in the callback"));
    // The client is still served.
    assert_eq!(request(addr, "POST", &uri, br#"42["go"]"#).body, "ok");
    let question = request(addr, "GET", &uri, b"").body;
    assert!(question.ends_with(r#"["question"]"#), "{question}");
    io.abort();
}

/// Over WebSocket the answer's callback runs on the connection's reading thread.
#[test]
fn a_call_to_the_client_whose_answer_ran_the_callback_is_refused_over_websocket() {
    let (io, outcomes) = calling_back_to_the_answering_client();
    let addr = serve(&io);
    let (mut client, _) =
        tungstenite::connect(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket"))
            .expect("WebSocket handshake");
    let next_text = |client: &mut tungstenite::WebSocket<_>| loop {
        if let Message::Text(text) = client.read().expect("a message") {
            return text.as_str().to_owned();
        }
    };
    assert!(next_text(&mut client).starts_with("0{"));
    client.send(Message::text("40")).expect("connect");
    assert!(next_text(&mut client).starts_with("40{"));
    client.send(Message::text(r#"42["go"]"#)).expect("go");
    let question = next_text(&mut client);
    assert!(question.ends_with(r#"["question"]"#), "{question}");
    client
        .send(Message::text(format!("43{}[]", ack_id(&question))))
        .expect("the answer");
    assert_refused_at_once(recv(&outcomes, "the call made in the callback"));
    // The client is still served.
    client.send(Message::text(r#"42["go"]"#)).expect("go");
    let question = next_text(&mut client);
    assert!(question.ends_with(r#"["question"]"#), "{question}");
    io.abort();
}

/// Callbacks settled together (here cancelled together by an overflowing emit; the timer
/// thread's passes make such batches too) run apart from their settler, in order; one that
/// blocks does not hold up the others, which go on on a relief thread.
#[test]
fn a_blocking_callback_does_not_hold_up_the_rest_of_its_batch() {
    let io = Server::builder().max_buffered(8, 1 << 20).build();
    let (release_tx, release) = channel::<()>();
    let release = Arc::new(Mutex::new(release));
    let (tx, second) = channel::<()>();
    io.on("go", move |socket: Socket, _: Option<Value>| {
        let release = release.clone();
        socket
            .emit("first", &())
            .callback(None, move |_outcome: Result<Value, CallError>| {
                // Blocks until the test ends.
                let _ = release
                    .lock()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(60));
            })
            .send()
            .expect("the first emit asking for an answer");
        let tx = Mutex::new(tx.clone());
        socket
            .emit("second", &())
            .callback(None, move |_outcome: Result<Value, CallError>| {
                let _ = tx.lock().unwrap().send(());
            })
            .send()
            .expect("the second emit asking for an answer");
        for n in 0..20 {
            let _ = socket.emit("update", &n).send();
        }
    });
    let addr = serve(&io);
    let uri = joined(addr);
    assert_eq!(request(addr, "POST", &uri, br#"42["go"]"#).body, "ok");
    let waited = Instant::now();
    recv(&second, "the second callback, behind the blocked first");
    assert!(
        waited.elapsed() < Duration::from_secs(5),
        "{:?}",
        waited.elapsed()
    );
    let _ = release_tx.send(());
    io.abort();
}

/// A server whose `go` handler (with the other client's sid) asks its client `question`, with
/// a callback that, once the client answers, calls the other client (`second`, up to 3 s) from
/// the thread reading the first, and reports who called and how it went.
fn calling_the_peer_from_the_callback()
-> (Server, std::sync::mpsc::Receiver<(String, CallInCallback)>) {
    calling_the_peer_from_the_callback_on(Server::builder().build())
}

/// [`calling_the_peer_from_the_callback`] on `io`.
fn calling_the_peer_from_the_callback_on(
    io: Server,
) -> (Server, std::sync::mpsc::Receiver<(String, CallInCallback)>) {
    let (tx, outcomes) = channel::<(String, CallInCallback)>();
    io.on("go", move |socket: Socket, peer: String| {
        let server = socket.server().clone();
        let me = socket.sid().to_string();
        let tx = Mutex::new(tx.clone());
        socket
            .emit("question", &())
            .callback(None, move |outcome: Result<Value, CallError>| {
                assert!(outcome.is_ok(), "{outcome:?}");
                let asked = Instant::now();
                let answer = server
                    .call("second", &())
                    .to(&peer)
                    .timeout(Duration::from_secs(3))
                    .answer::<Value>();
                let _ = tx
                    .lock()
                    .unwrap()
                    .send((me.clone(), (answer, asked.elapsed())));
            })
            .send()
            .expect("the emit asking for an answer");
    });
    (io, outcomes)
}

type Ws = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

fn next_text(client: &mut Ws) -> String {
    loop {
        if let Message::Text(text) = client.read().expect("a message") {
            return text.as_str().to_owned();
        }
    }
}

/// Two WebSocket clients connected to `/`, each told to `go` with the other's sid, each with
/// the `question` that asks (client, sid, question).
fn two_clients_asked(addr: std::net::SocketAddr) -> [(Ws, String, String); 2] {
    let connect = || {
        let (mut client, _) =
            tungstenite::connect(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket"))
                .expect("WebSocket handshake");
        assert!(next_text(&mut client).starts_with("0{"));
        client.send(Message::text("40")).expect("connect");
        let connected = next_text(&mut client);
        let sid: Value = serde_json::from_str(&connected[2..]).expect("CONNECT's JSON");
        (client, sid["sid"].as_str().expect("a sid").to_owned())
    };
    let (mut a, sid_a) = connect();
    let (mut b, sid_b) = connect();
    for (client, peer) in [(&mut a, &sid_b), (&mut b, &sid_a)] {
        client
            .send(Message::text(format!(r#"42["go",{peer:?}]"#)))
            .expect("go");
    }
    let question_a = next_text(&mut a);
    let question_b = next_text(&mut b);
    [(a, sid_a, question_a), (b, sid_b, question_b)]
}

/// Two clients' callbacks, each on the thread reading its client, calling the other client: the
/// second call would close a cycle (each reading thread waiting for an answer only the other
/// could read) and is refused at once; the first is then answered. Without the refusal both
/// waited out their timeouts.
#[test]
fn callbacks_calling_each_others_clients_do_not_wait_on_each_other() {
    let (io, outcomes) = calling_the_peer_from_the_callback();
    let addr = serve(&io);
    let [(mut a, sid_a, question_a), (mut b, sid_b, question_b)] = two_clients_asked(addr);
    // A answers: A's reading thread calls B, and waits.
    a.send(Message::text(format!("43{}[]", ack_id(&question_a))))
        .expect("A's answer");
    let second_to_b = next_text(&mut b);
    assert!(second_to_b.ends_with(r#"["second"]"#), "{second_to_b}");
    // B answers its question: B's reading thread would call A, whose answer only A's blocked
    // reading thread could read.
    b.send(Message::text(format!("43{}[]", ack_id(&question_b))))
        .expect("B's answer");
    let (who, refused) = recv(&outcomes, "the call that would close the cycle");
    assert_eq!(who, sid_b);
    assert!(
        matches!(refused.0, Err(CallError::WaitCycle)),
        "{refused:?}"
    );
    assert!(refused.1 < Duration::from_secs(2), "took {:?}", refused.1);
    // B's reading thread is free again: it reads B's answer to A's call.
    b.send(Message::text(format!(
        "43{}[\"from b\"]",
        ack_id(&second_to_b)
    )))
    .expect("B's answer to A's call");
    let (who, answered) = recv(&outcomes, "A's call");
    assert_eq!(who, sid_a);
    assert_eq!(answered.0.expect("answered"), Value::from("from b"));
    io.abort();
}

/// Answers the server's pings on `client` (and reads what else comes) until `until`.
fn answer_pings(mut client: Ws, until: Instant) -> Ws {
    while Instant::now() < until {
        if next_text(&mut client) == "2" {
            client.send(Message::text("3")).expect("a pong");
        }
    }
    client
}

/// While a callback on the thread reading client A waits for another client's answer, nothing
/// reads A's pongs: A's heartbeat must not count that against it, the server being the one not
/// reading (as for a backlog). A was closed with `ping timeout` once the wait passed the ping
/// timeout.
#[test]
fn a_callback_waiting_on_its_readers_thread_does_not_time_its_client_out() {
    let io = Server::builder()
        .ping_interval(Duration::from_secs(1))
        .ping_timeout(Duration::from_secs(1))
        .build();
    let (gone, disconnects) = channel();
    io.on_disconnect(move |socket: Socket, reason| {
        let _ = gone.send((socket.sid().to_string(), reason.as_str().to_owned()));
    });
    let (io, outcomes) = calling_the_peer_from_the_callback_on(io);
    let addr = serve(&io);
    let [(mut a, sid_a, question_a), (b, _, _)] = two_clients_asked(addr);
    // A answers: A's reading thread calls B, which never answers, for 3 s.
    a.send(Message::text(format!("43{}[]", ack_id(&question_a))))
        .expect("A's answer");
    let until = Instant::now() + Duration::from_secs(4);
    let b = std::thread::spawn(move || answer_pings(b, until));
    let a = answer_pings(a, until);
    let (who, (answer, _)) = recv(&outcomes, "A's call");
    assert_eq!(who, sid_a);
    assert!(matches!(answer, Err(CallError::Timeout)), "{answer:?}");
    assert_eq!(
        disconnects.try_recv().ok(),
        None,
        "no client left while the callback waited"
    );
    drop((a, b.join().expect("B's pings")));
    io.abort();
}

/// No cycle once the first call is answered: B answers A's call and, right after it, its own
/// question, whose callback calls A from B's reading thread. A's reading thread may not have
/// woken yet, but it waits for nothing any more, so B's call goes through (the wait was
/// recorded until A's thread woke, and B's call was refused in 2 of 6 runs).
#[test]
fn a_call_after_the_answer_that_ended_the_other_wait_goes_through() {
    let (io, outcomes) = calling_the_peer_from_the_callback();
    let addr = serve(&io);
    let [(mut a, sid_a, question_a), (mut b, sid_b, question_b)] = two_clients_asked(addr);
    a.send(Message::text(format!("43{}[]", ack_id(&question_a))))
        .expect("A's answer");
    let second_to_b = next_text(&mut b);
    // Both answers in one write, read by B's thread one after the other.
    b.write(Message::text(format!(
        "43{}[\"from b\"]",
        ack_id(&second_to_b)
    )))
    .expect("B's answer to A's call");
    b.write(Message::text(format!("43{}[]", ack_id(&question_b))))
        .expect("B's answer");
    b.flush().expect("flush");
    let second_to_a = next_text(&mut a);
    assert!(second_to_a.ends_with(r#"["second"]"#), "{second_to_a}");
    a.send(Message::text(format!(
        "43{}[\"from a\"]",
        ack_id(&second_to_a)
    )))
    .expect("A's answer to B's call");
    let mut outcomes = [
        recv(&outcomes, "one call's outcome"),
        recv(&outcomes, "the other call's outcome"),
    ];
    outcomes.sort_by(|x, y| x.0.cmp(&y.0));
    let mut expected = [(sid_a, "from b"), (sid_b, "from a")];
    expected.sort();
    for ((who, (answer, _)), (caller, answered)) in outcomes.into_iter().zip(expected) {
        assert_eq!(who, caller);
        assert_eq!(answer.expect("answered"), Value::from(answered));
    }
    io.abort();
}
