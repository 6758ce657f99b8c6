//! The order in which a socket's disconnect handler runs: without `async_handlers`, after the
//! client's event handler that called `disconnect` (one client's handlers run one after the
//! other); and after the acknowledgement callbacks its departure cancelled when the client left
//! on its own (here: it stopped answering pings, a close the timer thread makes).

mod support;

use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use sockio_testkit::raw_polling::{connected_between_polls, post_after_joining};
use sockio_threads::{CallError, Server, Socket};
use support::serve;

/// What the handlers and callbacks did, in order, and a signal for each entry.
#[derive(Clone)]
struct Log {
    entries: Arc<Mutex<Vec<String>>>,
    added: Arc<Mutex<std::sync::mpsc::Sender<()>>>,
}

impl Log {
    fn new() -> (Log, Receiver<()>) {
        let (tx, rx) = channel();
        let log = Log {
            entries: Arc::default(),
            added: Arc::new(Mutex::new(tx)),
        };
        (log, rx)
    }

    fn add(&self, entry: impl Into<String>) {
        self.entries.lock().unwrap().push(entry.into());
        let _ = self.added.lock().unwrap().send(());
    }

    /// The entries once there are `count` of them.
    fn wait_for(&self, added: &Receiver<()>, count: usize) -> Vec<String> {
        for _ in 0..count {
            added
                .recv_timeout(Duration::from_secs(15))
                .unwrap_or_else(|_| panic!("{count} entries: {:?}", self.entries.lock()));
        }
        self.entries.lock().unwrap().clone()
    }
}

/// Logs each disconnect handler's run as `disconnect (<reason>)`.
fn log_disconnects(io: &Server, log: &Log) {
    let log = log.clone();
    io.on_disconnect(move |_socket: Socket, reason| {
        log.add(format!("disconnect ({reason})"));
    });
}

#[test]
fn without_async_handlers_a_disconnect_handler_runs_after_the_handler_that_called_it() {
    let io = Server::builder().async_handlers(false).build();
    let (log, added) = Log::new();
    let in_quit = log.clone();
    io.on("quit", move |socket: Socket, _: Option<Value>| {
        in_quit.add("quit");
        socket.disconnect().expect("disconnect");
        // Still the socket's handler: it goes on with the socket.
        std::thread::sleep(Duration::from_millis(100));
        let joined = socket.enter_room("after");
        in_quit.add(format!("quit returns, enter_room {joined:?}"));
    });
    let in_disconnect = log.clone();
    io.on_disconnect(move |socket: Socket, reason| {
        in_disconnect.add(format!(
            "disconnect ({reason}), rooms {}",
            socket.rooms().len()
        ));
    });
    let addr = serve(&io);
    post_after_joining(addr, br#"42["quit"]"#);
    assert_eq!(
        log.wait_for(&added, 3),
        [
            "quit",
            "quit returns, enter_room Ok(())",
            // Its own room and the one joined last.
            "disconnect (server namespace disconnect), rooms 2",
        ]
    );
    io.abort();
}

/// Without `async_handlers`, the events a client sent behind the one whose handler disconnects
/// its socket are dropped unhandled (python-socketio drops an event whose socket is no longer
/// connected at its turn), and the disconnect handler runs next. Both events come in one POST,
/// so the second waits in the queue while the first's handler runs.
#[test]
fn events_queued_behind_a_server_side_disconnect_are_dropped() {
    let io = Server::builder().async_handlers(false).build();
    let (log, added) = Log::new();
    let in_quit = log.clone();
    io.on("quit", move |socket: Socket, _: Option<Value>| {
        socket.disconnect().expect("disconnect");
        in_quit.add("quit");
    });
    let in_later = log.clone();
    io.on("later", move |_socket: Socket, _: Option<Value>| {
        in_later.add("later");
    });
    log_disconnects(&io, &log);
    let addr = serve(&io);
    post_after_joining(addr, b"42[\"quit\"]\x1e42[\"later\"]");
    assert_eq!(
        log.wait_for(&added, 2),
        ["quit", "disconnect (server namespace disconnect)"]
    );
    io.abort();
    assert_eq!(log.entries.lock().unwrap().len(), 2);
}

#[test]
fn callbacks_cancelled_by_a_ping_timeout_run_before_the_disconnect_handler() {
    // The heartbeat ends the client about 2 s after its handshake: long enough for both
    // questions to be queued first on a loaded machine (at 100 ms each, a stall let the close
    // come first, and the callbacks then ran without a connection to cancel them).
    let io = Server::builder()
        .ping_interval(Duration::from_secs(1))
        .ping_timeout(Duration::from_secs(1))
        .build();
    let (log, added) = Log::new();
    let (sid_tx, sids) = channel();
    io.on_connect(move |socket: Socket, _handshake, _auth: Option<Value>| {
        let _ = sid_tx.send(socket.sid().to_string());
        Ok(())
    });
    log_disconnects(&io, &log);
    let addr = serve(&io);
    // The client joins, then never polls again: it answers no ping.
    connected_between_polls(addr);
    let sid = sids
        .recv_timeout(Duration::from_secs(15))
        .expect("the client connected");
    for n in 0..2 {
        let in_callback = log.clone();
        io.emit("question", &n)
            .to(&sid)
            .callback(
                Some(Duration::from_secs(60)),
                move |answer: Result<Value, CallError>| {
                    in_callback.add(format!("callback {n}: {}", answer.is_err()));
                },
            )
            .send()
            .expect("the question is queued");
    }
    assert_eq!(
        log.wait_for(&added, 3),
        [
            "callback 0: true",
            "callback 1: true",
            "disconnect (ping timeout)"
        ]
    );
    io.abort();
}

/// The callbacks a handler's own `disconnect` cancelled run before the socket's disconnect
/// handler, though the connection's dispatcher is at work (it runs that very handler) and would
/// take the disconnect as soon as the handler returns. Several rounds: the order was a race.
#[test]
fn callbacks_cancelled_by_a_disconnect_from_a_handler_run_before_the_disconnect_handler() {
    for round in 0..5 {
        emit_and_disconnect_in_a_handler(EmitAt::BeforeDisconnect, round);
    }
}

/// When a handler emits to its own socket, asking for an answer, against its `disconnect`.
#[derive(Clone, Copy)]
enum EmitAt {
    /// Queued, then cancelled by the disconnect.
    BeforeDisconnect,
    /// Not sent: the socket has left.
    AfterDisconnect,
}

/// A polling client sends `quit`, whose handler (without `async_handlers`) emits to its socket
/// with a callback and disconnects it, in the order `at` says: the callback, told the emit
/// failed, runs before the disconnect handler. It takes 20 ms, well under the relief's 100 ms (a
/// loaded machine's stall must not let the relief run the steps behind it), so the order holds by
/// the dispatch's hold, not by the relief.
fn emit_and_disconnect_in_a_handler(at: EmitAt, round: usize) {
    let io = Server::builder().async_handlers(false).build();
    let (log, added) = Log::new();
    let in_quit = log.clone();
    io.on("quit", move |socket: Socket, _: Option<Value>| {
        if let EmitAt::AfterDisconnect = at {
            socket.disconnect().expect("disconnect");
        }
        let in_callback = in_quit.clone();
        let emitted = socket
            .emit("question", &1)
            .callback(None, move |outcome: Result<Value, CallError>| {
                std::thread::sleep(Duration::from_millis(20));
                in_callback.add(format!("callback ({})", outcome.is_err()));
            })
            .send();
        if let EmitAt::BeforeDisconnect = at {
            emitted.expect("the question is queued");
            socket.disconnect().expect("disconnect");
        }
    });
    log_disconnects(&io, &log);
    let addr = serve(&io);
    post_after_joining(addr, br#"42["quit"]"#);
    assert_eq!(
        log.wait_for(&added, 2),
        [
            "callback (true)",
            "disconnect (server namespace disconnect)"
        ],
        "round {round}"
    );
    io.abort();
}

/// A socket whose connect handler still runs when its connection closes leaves once the handler
/// accepts it: the callbacks of what that handler emitted to it, cancelled at the close, run
/// before its disconnect handler too (the close's drive holds the dispatch without a departure
/// of its own: the `Disconnect` comes with the verdict). The callback waits (20 ms) for the
/// disconnect handler: in the right order it waits in vain, and logs first. (Not longer: a
/// callback run apart that is still running at the relief's second look, 100 to 200 ms after it
/// started (`callback_batch::RELIEF_AFTER`), lets the steps behind it go on, the hold's release
/// among them.) The tokio test of the same name is in
/// tests/handler_order.rs.
#[test]
fn callbacks_cancelled_while_a_connect_is_pending_run_before_the_disconnect_handler() {
    use sockio_testkit::raw_polling::{connecting, request, session_uri};
    let io = Server::builder().build();
    let (log, added) = Log::new();
    let (connecting_tx, connect_started) = channel::<()>();
    let (go_tx, go) = channel::<()>();
    let go = Mutex::new(go);
    // The disconnect handler tells the callback that it ran.
    let (ran_tx, ran) = channel::<()>();
    let ran = Arc::new(Mutex::new(ran));
    let in_callback = log.clone();
    io.on_connect(move |socket: Socket, _handshake, _auth: Option<Value>| {
        let log = in_callback.clone();
        let ran = ran.clone();
        socket
            .emit("question", &1)
            .callback(None, move |_answer: Result<Value, CallError>| {
                let _ = ran.lock().unwrap().recv_timeout(Duration::from_millis(20));
                log.add("callback");
            })
            .send()
            .expect("the question is queued");
        let _ = connecting_tx.send(());
        // Accepted once the connection has closed.
        go.lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(15))
            .expect("go");
        Ok(())
    });
    let in_disconnect = log.clone();
    let ran_tx = Mutex::new(ran_tx);
    io.on_disconnect(move |_socket: Socket, reason| {
        in_disconnect.add(format!("disconnect ({reason})"));
        let _ = ran_tx.lock().unwrap().send(());
    });
    let addr = serve(&io);
    let uri = session_uri("/socket.io/", &connecting(addr));
    connect_started
        .recv_timeout(Duration::from_secs(15))
        .expect("the connect handler's emit");
    let shutting = io.clone();
    let shutdown = std::thread::spawn(move || shutting.shutdown(Duration::from_secs(10)));
    // The poll returns once the shutdown has closed the connection.
    request(addr, "GET", &uri, b"");
    go_tx.send(()).expect("the connect handler waits");
    assert_eq!(
        log.wait_for(&added, 2),
        ["callback", "disconnect (server shutting down)"]
    );
    shutdown.join().expect("the shutdown");
}

/// An emit that overflows its client's outbound queue closes the connection: its own callback,
/// told that the emit was not sent, runs before the socket's disconnect handler, as the
/// callbacks that departure cancelled do. The client (over polling) never polls, so the queue
/// fills. Only the overflowing emit's callback is slow here (20 ms, under the relief's 100 ms):
/// run on its own, it would log after the disconnect handler. The tokio test of the same name is
/// in tests/handler_order.rs.
#[test]
fn the_callback_of_an_emit_that_overflowed_runs_before_the_disconnect_handler() {
    for round in 0..3 {
        let io = Server::builder().max_buffered(8, 1 << 20).build();
        let (log, added) = Log::new();
        let in_go = log.clone();
        io.on("go", move |socket: Socket, _: Option<Value>| {
            // Past half the queue (4 of 8 packets) an emit waits a second for the client's
            // writer and then marks it stuck: later emits are queued at once.
            for n in 0..6 {
                socket.emit("warm-up", &n).send().expect("queued");
            }
            for n in 0..20 {
                let log = in_go.clone();
                let _ = socket
                    .emit("update", &n)
                    .callback(None, move |outcome: Result<Value, CallError>| {
                        if let Err(CallError::Command(error)) = &outcome
                            && error.is_overflow()
                        {
                            std::thread::sleep(Duration::from_millis(20));
                            log.add("the overflowing emit's callback");
                        }
                    })
                    .send();
            }
        });
        log_disconnects(&io, &log);
        let addr = serve(&io);
        post_after_joining(addr, br#"42["go"]"#);
        assert_eq!(
            log.wait_for(&added, 2),
            [
                "the overflowing emit's callback",
                "disconnect (outbound queue full)"
            ],
            "round {round}"
        );
        io.abort();
    }
}

/// A handler (without `async_handlers`) disconnects its socket, then emits to it asking for an
/// answer: the emit is not sent, and its callback, told so, runs before the socket's disconnect
/// handler, which an earlier drive (the disconnect's) queued. The callback takes 20 ms (under the
/// relief's 100 ms): run apart without holding the dispatch, it would log after the disconnect
/// handler. The tokio and smol test of the same name is in tests/handler_order.rs.
#[test]
fn the_callback_of_an_emit_to_a_socket_that_left_runs_before_the_disconnect_handler() {
    for round in 0..3 {
        emit_and_disconnect_in_a_handler(EmitAt::AfterDisconnect, round);
    }
}

/// A signal the `/` `ping` handler gives (after logging `ping`), for a handler of `/admin` that
/// waits for it: up to 30 s, past the 15 s [`Log::wait_for`] gives the test.
#[derive(Clone)]
struct Pinged(Arc<Mutex<Receiver<()>>>);

impl Pinged {
    /// Registers the `ping` handler of `/`.
    fn on_ping(io: &Server, log: &Log) -> Pinged {
        let (tx, rx) = channel();
        let tx = Mutex::new(tx);
        let log = log.clone();
        io.on("ping", move |_socket: Socket, _: Option<Value>| {
            log.add("ping");
            let _ = tx.lock().unwrap().send(());
        });
        Pinged(Arc::new(Mutex::new(rx)))
    }

    fn wait(&self) {
        let _ = self.0.lock().unwrap().recv_timeout(Duration::from_secs(30));
    }
}

/// With async handlers (the default), a connect handler that waits holds up only its own
/// namespace: the client's events on its other namespaces are handled meanwhile, as by
/// python-socketio and the Node.js server. Here the `/admin` connect handler waits for a `/`
/// event the client sends after the CONNECT, in the same POST (before, it waited in vain: the
/// event was queued behind it). tests/handler_order.rs has the same test for the async runtimes.
#[test]
fn a_waiting_connect_handler_holds_up_only_its_own_namespace() {
    let io = Server::builder().build();
    let (log, added) = Log::new();
    let pinged = Pinged::on_ping(&io, &log);
    let in_connect = log.clone();
    io.of("/admin")
        .on_connect(move |_socket: Socket, _handshake, _auth: Option<Value>| {
            pinged.wait();
            in_connect.add("admin connect");
            Ok(())
        });
    let addr = serve(&io);
    post_after_joining(addr, b"40/admin,\x1e42[\"ping\"]");
    assert_eq!(log.wait_for(&added, 2), ["ping", "admin connect"]);
    io.abort();
}

/// The same for a disconnect handler; and the namespace's next event, the client joining it
/// again, waits for that handler: one namespace's connects and disconnects stay in order.
#[test]
fn a_waiting_disconnect_handler_holds_up_only_its_own_namespace() {
    let io = Server::builder().build();
    let (log, added) = Log::new();
    let pinged = Pinged::on_ping(&io, &log);
    let in_connect = log.clone();
    let in_disconnect = log.clone();
    io.of("/admin")
        .on_connect(move |_socket: Socket, _handshake, _auth: Option<Value>| {
            in_connect.add("admin connect");
            Ok(())
        })
        .on_disconnect(move |_socket: Socket, reason| {
            pinged.wait();
            in_disconnect.add(format!("admin disconnect ({reason})"));
        });
    let addr = serve(&io);
    let sid = post_after_joining(addr, b"40/admin,");
    assert_eq!(log.wait_for(&added, 1), ["admin connect"]);
    let uri = sockio_testkit::raw_polling::session_uri("/socket.io/", &sid);
    let body = b"41/admin,\x1e42[\"ping\"]\x1e40/admin,";
    let posted = sockio_testkit::raw_polling::request(addr, "POST", &uri, body);
    assert_eq!(posted.status, 200, "{posted:?}");
    assert_eq!(
        log.wait_for(&added, 3),
        [
            "admin connect",
            "ping",
            "admin disconnect (client namespace disconnect)",
            "admin connect"
        ]
    );
    io.abort();
}
