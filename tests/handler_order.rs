//! Without `async_handlers`, a socket's disconnect handler runs after the client's event handler
//! that called `disconnect`, even when that handler waits after the call: one client's handlers
//! run one after the other. (With `async_handlers`, the default, they run side by side, and a
//! handler that goes on after `disconnect` may find its socket gone, as in python-socketio,
//! whose `disconnect` runs the disconnect handler before it returns.) The threads runtime has
//! the same test (runtime-threads/tests/handler_order.rs).
//!
//! Every test is generic over the runtime: the server, its handlers and its listener run on tokio
//! or on smol (smol's executor beside the test's tokio runtime, which only drives the clients).
//! On smol, give the executor two threads, as `scripts/test.sh` does: on its default one, tasks
//! never run side by side, and the order tests pass with or without what they check.
//!
//! ```text
//! cargo test -p sockio --test handler_order                                                # tokio
//! SMOL_THREADS=2 cargo test -p sockio --no-default-features --features smol --test handler_order
//! ```

#![cfg(any(feature = "tokio", feature = "smol"))]

mod api_support;

use std::time::Duration;

use api_support::recv;
#[cfg(feature = "smol")]
use api_support::runtimes::on_smol;
#[cfg(feature = "tokio")]
use api_support::runtimes::on_tokio;
use api_support::runtimes::{Spawn, serve};
use serde_json::Value;
use sockio::server::{Runtime, Server, Socket};
use sockio_testkit::raw_polling::post_after_joining;
use tokio::sync::mpsc;

/// The first `count` entries of `log`.
async fn entries(log: &mut mpsc::UnboundedReceiver<String>, count: usize) -> Vec<String> {
    let mut entries = Vec::new();
    for _ in 0..count {
        entries.push(recv(log, &format!("{count} entries, after {entries:?}")).await);
    }
    entries
}

/// Logs each disconnect handler's run as `disconnect (<reason>)`.
fn log_disconnects<Rt: Runtime>(io: &Server<Rt>, log: mpsc::UnboundedSender<String>) {
    io.on_disconnect(move |_socket: Socket<Rt>, reason| {
        let _ = log.send(format!("disconnect ({reason})"));
        async {}
    });
}

/// A client joins `/` over polling and sends `packets` in one POST (off the runtime's threads).
async fn joins_and_posts(addr: std::net::SocketAddr, packets: &'static [u8]) {
    tokio::task::spawn_blocking(move || post_after_joining(addr, packets))
        .await
        .expect("the client");
}

async fn without_async_handlers_a_disconnect_handler_runs_after_the_handler_that_called_it<
    Rt: Runtime,
>(
    spawn: Spawn<Rt>,
) {
    let io = Server::<Rt>::builder().async_handlers(false).build();
    let (tx, mut log) = mpsc::unbounded_channel::<String>();
    let in_quit = tx.clone();
    io.on("quit", move |socket: Socket<Rt>, _: Option<Value>| {
        let log = in_quit.clone();
        async move {
            let _ = log.send("quit".into());
            socket.disconnect().await.expect("disconnect");
            // Still the socket's handler: it goes on with the socket.
            socket.server().sleep(Duration::from_millis(100)).await;
            let joined = socket.enter_room("after");
            let _ = log.send(format!("quit returns, enter_room {joined:?}"));
        }
    });
    io.on_disconnect(move |socket: Socket<Rt>, reason| {
        let _ = tx.send(format!(
            "disconnect ({reason}), rooms {}",
            socket.rooms().len()
        ));
        async {}
    });
    let (addr, _serving) = serve(&io, spawn);
    joins_and_posts(addr, br#"42["quit"]"#).await;
    let entries = entries(&mut log, 3).await;
    assert_eq!(
        entries,
        [
            "quit",
            "quit returns, enter_room Ok(())",
            // Its own room and the one joined last.
            "disconnect (server namespace disconnect), rooms 2",
        ]
    );
}

/// Without `async_handlers`, the events a client sent behind the one whose handler disconnects
/// its socket are dropped unhandled (python-socketio drops an event whose socket is no longer
/// connected at its turn), and the disconnect handler runs next. Both events come in one POST,
/// so the second waits in the queue while the first's handler runs.
async fn events_queued_behind_a_server_side_disconnect_are_dropped<Rt: Runtime>(spawn: Spawn<Rt>) {
    let io = Server::<Rt>::builder().async_handlers(false).build();
    let (tx, mut log) = mpsc::unbounded_channel::<String>();
    let in_quit = tx.clone();
    io.on("quit", move |socket: Socket<Rt>, _: Option<Value>| {
        let log = in_quit.clone();
        async move {
            socket.disconnect().await.expect("disconnect");
            let _ = log.send("quit".into());
        }
    });
    let in_later = tx.clone();
    io.on("later", move |_socket: Socket<Rt>, _: Option<Value>| {
        let _ = in_later.send("later".into());
        async {}
    });
    log_disconnects(&io, tx);
    let (addr, _serving) = serve(&io, spawn);
    joins_and_posts(addr, b"42[\"quit\"]\x1e42[\"later\"]").await;
    let entries = entries(&mut log, 2).await;
    assert_eq!(
        entries,
        ["quit", "disconnect (server namespace disconnect)"]
    );
    assert!(log.try_recv().is_err(), "{:?}", log.try_recv());
}

/// The callbacks a handler's own `disconnect` cancelled run before the socket's disconnect
/// handler, with or without `async_handlers`: the connection's task would take the disconnect
/// as soon as it is queued (or as soon as the handler returns) while the callbacks run on a task
/// of their own. Several rounds: the order was a race. The threads runtime has the same test.
async fn callbacks_cancelled_by_a_disconnect_from_a_handler_run_before_the_disconnect_handler<
    Rt: Runtime,
>(
    spawn: Spawn<Rt>,
) {
    for async_handlers in [false, true] {
        for round in 0..5 {
            let what = format!("async_handlers {async_handlers}, round {round}");
            emit_and_disconnect_in_a_handler(
                spawn,
                async_handlers,
                EmitAt::BeforeDisconnect,
                &what,
            )
            .await;
        }
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

/// A polling client sends `quit`, whose handler emits to its socket with a callback (taking
/// 50 ms) and disconnects it, in the order `at` says: the callback, told the emit failed, runs
/// before the disconnect handler.
async fn emit_and_disconnect_in_a_handler<Rt: Runtime>(
    spawn: Spawn<Rt>,
    async_handlers: bool,
    at: EmitAt,
    what: &str,
) {
    let io = Server::<Rt>::builder()
        .async_handlers(async_handlers)
        .build();
    let (tx, mut log) = mpsc::unbounded_channel::<String>();
    let in_quit = tx.clone();
    io.on("quit", move |socket: Socket<Rt>, _: Option<Value>| {
        let log = in_quit.clone();
        async move {
            if let EmitAt::AfterDisconnect = at {
                socket.disconnect().await.expect("disconnect");
            }
            let emitted = socket.emit("question", &1).callback(
                None,
                move |outcome: Result<Value, sockio::CallError>| {
                    // A callback that takes its time: the disconnect handler must wait.
                    std::thread::sleep(Duration::from_millis(50));
                    let _ = log.send(format!("callback ({})", outcome.is_err()));
                },
            );
            let emitted = emitted.await;
            if let EmitAt::BeforeDisconnect = at {
                emitted.expect("the question is queued");
                socket.disconnect().await.expect("disconnect");
            }
        }
    });
    log_disconnects(&io, tx);
    let (addr, _serving) = serve(&io, spawn);
    joins_and_posts(addr, br#"42["quit"]"#).await;
    assert_eq!(
        entries(&mut log, 2).await,
        [
            "callback (true)",
            "disconnect (server namespace disconnect)"
        ],
        "{what}"
    );
}

/// The same order for a disconnect made from outside any handler, by the server, and for a client
/// that closes its connection. (On tokio the second passed with `callbacks_hold_dispatch` forced
/// off too, where the first failed; on smol with two threads both failed.)
async fn callbacks_cancelled_by_the_servers_disconnect_run_before_the_disconnect_handler<
    Rt: Runtime,
>(
    spawn: Spawn<Rt>,
) {
    callbacks_cancelled_by_a_departure_run_before_the_disconnect_handler(
        spawn,
        Departure::ServerDisconnects,
    )
    .await;
}

async fn callbacks_cancelled_by_the_client_closing_run_before_the_disconnect_handler<
    Rt: Runtime,
>(
    spawn: Spawn<Rt>,
) {
    callbacks_cancelled_by_a_departure_run_before_the_disconnect_handler(
        spawn,
        Departure::ClientCloses,
    )
    .await;
}

/// How the socket leaves while an emit to it waits for its answer.
enum Departure {
    /// `Server::disconnect`.
    ServerDisconnects,
    /// The client sends Engine.IO's close packet.
    ClientCloses,
}

/// A polling client joins `/`; the server emits to it asking for an answer, then the socket
/// leaves as `departure` says: the emit's callback, cancelled by that departure, runs (slowly)
/// before the disconnect handler, five rounds.
async fn callbacks_cancelled_by_a_departure_run_before_the_disconnect_handler<Rt: Runtime>(
    spawn: Spawn<Rt>,
    departure: Departure,
) {
    for round in 0..5 {
        let io = Server::<Rt>::builder().build();
        let (tx, mut log) = mpsc::unbounded_channel::<String>();
        let (sid_tx, mut sids) = mpsc::unbounded_channel::<String>();
        io.on_connect(
            move |socket: Socket<Rt>, _handshake, _auth: Option<Value>| {
                let _ = sid_tx.send(socket.sid().to_string());
                async { Ok(()) }
            },
        );
        log_disconnects(&io, tx.clone());
        let (addr, _serving) = serve(&io, spawn);
        let engine_sid = tokio::task::spawn_blocking(move || {
            sockio_testkit::raw_polling::connected_between_polls(addr)
        })
        .await
        .expect("the polling client");
        let sid = recv(&mut sids, "the client's socket").await;
        let in_callback = tx.clone();
        io.emit("question", &1)
            .to(&sid)
            .callback(None, move |_answer: Result<Value, sockio::CallError>| {
                std::thread::sleep(Duration::from_millis(20));
                let _ = in_callback.send("callback".into());
            })
            .await
            .expect("the question is queued");
        let reason = match departure {
            Departure::ServerDisconnects => {
                io.disconnect(&sid).await.expect("disconnect");
                "server namespace disconnect"
            }
            Departure::ClientCloses => {
                tokio::task::spawn_blocking(move || {
                    let uri = sockio_testkit::raw_polling::session_uri("/socket.io/", &engine_sid);
                    sockio_testkit::raw_polling::request(addr, "POST", &uri, b"1")
                })
                .await
                .expect("the close packet");
                "transport close"
            }
        };
        let entries = entries(&mut log, 2).await;
        assert_eq!(
            entries,
            ["callback".to_owned(), format!("disconnect ({reason})")],
            "round {round}"
        );
    }
}

/// A socket whose connect handler is still running when its connection closes leaves once the
/// handler accepts it (its disconnect handler then runs): the acknowledgement callbacks of what
/// the connect handler emitted to it, which that departure cancels, run before its disconnect
/// handler too. Here the close is the server's shutdown, whose callbacks ran on a task of their
/// own while the disconnect handler could already run. The callback waits (up to a second) for
/// the disconnect handler: in the right order it waits in vain, and logs first.
async fn callbacks_cancelled_while_a_connect_is_pending_run_before_the_disconnect_handler<
    Rt: Runtime,
>(
    spawn: Spawn<Rt>,
) {
    let io = Server::<Rt>::builder().build();
    let (tx, mut log) = mpsc::unbounded_channel::<String>();
    let (connecting_tx, mut connecting) = mpsc::unbounded_channel::<()>();
    let (go_tx, go) = tokio::sync::oneshot::channel::<()>();
    let go = std::sync::Arc::new(std::sync::Mutex::new(Some(go)));
    // The disconnect handler tells the callback that it ran.
    let (ran_tx, ran) = std::sync::mpsc::channel::<()>();
    let ran = std::sync::Arc::new(std::sync::Mutex::new(Some(ran)));
    let in_callback = tx.clone();
    io.on_connect(
        move |socket: Socket<Rt>, _handshake, _auth: Option<Value>| {
            let log = in_callback.clone();
            let connecting = connecting_tx.clone();
            let go = go.lock().expect("go").take().expect("one connect");
            let ran = std::sync::Mutex::new(ran.lock().expect("ran").take().expect("one connect"));
            async move {
                socket
                    .emit("question", &1)
                    .callback(None, move |_answer: Result<Value, sockio::CallError>| {
                        let _ = ran
                            .lock()
                            .expect("ran")
                            .recv_timeout(Duration::from_secs(1));
                        let _ = log.send("callback".into());
                    })
                    .await
                    .expect("the question is queued");
                let _ = connecting.send(());
                // Accepted once the connection has closed.
                // Any executor's: tokio's channels need no tokio runtime.
                let _ = go.await;
                Ok(())
            }
        },
    );
    io.on_disconnect(move |_socket: Socket<Rt>, reason| {
        let _ = tx.send(format!("disconnect ({reason})"));
        let _ = ran_tx.send(());
        async {}
    });
    let (addr, _serving) = serve(&io, spawn);
    let sid = tokio::task::spawn_blocking(move || sockio_testkit::raw_polling::connecting(addr))
        .await
        .expect("the polling client");
    recv(&mut connecting, "the connect handler's emit").await;
    let shutting = io.clone();
    let shutdown = tokio::spawn(async move { shutting.shutdown(Duration::from_secs(10)).await });
    // The poll returns once the shutdown has closed the connection.
    tokio::task::spawn_blocking(move || {
        sockio_testkit::raw_polling::request(
            addr,
            "GET",
            &sockio_testkit::raw_polling::session_uri("/socket.io/", &sid),
            b"",
        )
    })
    .await
    .expect("the poll");
    go_tx.send(()).expect("the connect handler waits");
    assert_eq!(
        entries(&mut log, 2).await,
        ["callback", "disconnect (server shutting down)"]
    );
    shutdown.await.expect("the shutdown");
}

/// An emit that overflows its client's outbound queue closes the connection: its own callback,
/// told that the emit was not sent, runs before the socket's disconnect handler, as the
/// callbacks that departure cancelled do. The client (over polling) never polls, so the queue
/// fills. Only the overflowing emit's callback is slow here: run on its own, it would log after
/// the disconnect handler.
async fn the_callback_of_an_emit_that_overflowed_runs_before_the_disconnect_handler<Rt: Runtime>(
    spawn: Spawn<Rt>,
) {
    for round in 0..3 {
        let io = Server::<Rt>::builder().max_buffered(8, 1 << 20).build();
        let (tx, mut log) = mpsc::unbounded_channel::<String>();
        let in_callback = tx.clone();
        io.on("go", move |socket: Socket<Rt>, _: Option<Value>| {
            let log = in_callback.clone();
            async move {
                // Past half the queue (4 of 8 packets) an emit waits a second for the client's
                // writer and then marks it stuck: later emits are queued at once.
                for n in 0..6 {
                    socket.emit("warm-up", &n).await.expect("queued");
                }
                for n in 0..20 {
                    let log = log.clone();
                    let emitted = socket.emit("update", &n).callback(
                        None,
                        move |outcome: Result<Value, sockio::CallError>| {
                            if let Err(sockio::CallError::Command(error)) = &outcome
                                && error.is_overflow()
                            {
                                std::thread::sleep(Duration::from_millis(50));
                                let _ = log.send("the overflowing emit's callback".into());
                            }
                        },
                    );
                    let _ = emitted.await;
                }
            }
        });
        log_disconnects(&io, tx);
        let (addr, _serving) = serve(&io, spawn);
        joins_and_posts(addr, br#"42["go"]"#).await;
        assert_eq!(
            entries(&mut log, 2).await,
            [
                "the overflowing emit's callback",
                "disconnect (outbound queue full)"
            ],
            "round {round}"
        );
    }
}

/// A handler (without `async_handlers`) disconnects its socket, then emits to it asking for an
/// answer: the emit is not sent, and its callback, told so, runs before the socket's disconnect
/// handler, which an earlier drive (the disconnect's) queued. The threads runtime has the same
/// test.
async fn the_callback_of_an_emit_to_a_socket_that_left_runs_before_the_disconnect_handler<
    Rt: Runtime,
>(
    spawn: Spawn<Rt>,
) {
    for round in 0..3 {
        let what = format!("round {round}");
        emit_and_disconnect_in_a_handler(spawn, false, EmitAt::AfterDisconnect, &what).await;
    }
}

/// With async handlers (the default), a connect handler that waits holds up only its own
/// namespace: the client's events on its other namespaces are handled meanwhile, as by
/// python-socketio and the Node.js server. Here the `/admin` connect handler waits for a `/`
/// event the client sends after the CONNECT, in the same POST (before, it waited in vain: the
/// event was queued behind it). The threads runtime has the same test.
async fn a_waiting_connect_handler_holds_up_only_its_own_namespace<Rt: Runtime>(spawn: Spawn<Rt>) {
    let io = Server::<Rt>::builder().build();
    let (tx, mut log) = mpsc::unbounded_channel::<String>();
    let pinged = std::sync::Arc::new(tokio::sync::Notify::new());
    log_pings(&io, &tx, &pinged);
    io.of("/admin").on_connect(
        move |_socket: Socket<Rt>, _handshake, _auth: Option<Value>| {
            let log = tx.clone();
            let pinged = pinged.clone();
            // Any executor's: tokio's `Notify` needs no tokio runtime.
            async move {
                pinged.notified().await;
                let _ = log.send("admin connect".into());
                Ok(())
            }
        },
    );
    let (addr, _serving) = serve(&io, spawn);
    joins_and_posts(addr, b"40/admin,\x1e42[\"ping\"]").await;
    assert_eq!(entries(&mut log, 2).await, ["ping", "admin connect"]);
}

/// The same for a disconnect handler; and the namespace's next event, the client joining it
/// again, waits for that handler: one namespace's connects and disconnects stay in order.
async fn a_waiting_disconnect_handler_holds_up_only_its_own_namespace<Rt: Runtime>(
    spawn: Spawn<Rt>,
) {
    let io = Server::<Rt>::builder().build();
    let (tx, mut log) = mpsc::unbounded_channel::<String>();
    let pinged = std::sync::Arc::new(tokio::sync::Notify::new());
    log_pings(&io, &tx, &pinged);
    let in_connect = tx.clone();
    io.of("/admin")
        .on_connect(
            move |_socket: Socket<Rt>, _handshake, _auth: Option<Value>| {
                let _ = in_connect.send("admin connect".into());
                async { Ok(()) }
            },
        )
        .on_disconnect(move |_socket: Socket<Rt>, reason| {
            let log = tx.clone();
            let pinged = pinged.clone();
            async move {
                pinged.notified().await;
                let _ = log.send(format!("admin disconnect ({reason})"));
            }
        });
    let (addr, _serving) = serve(&io, spawn);
    let sid = tokio::task::spawn_blocking(move || post_after_joining(addr, b"40/admin,"))
        .await
        .expect("the client");
    assert_eq!(entries(&mut log, 1).await, ["admin connect"]);
    tokio::task::spawn_blocking(move || {
        let uri = sockio_testkit::raw_polling::session_uri("/socket.io/", &sid);
        let body = b"41/admin,\x1e42[\"ping\"]\x1e40/admin,";
        let posted = sockio_testkit::raw_polling::request(addr, "POST", &uri, body);
        assert_eq!(posted.status, 200, "{posted:?}");
    })
    .await
    .expect("the client");
    assert_eq!(
        entries(&mut log, 3).await,
        [
            "ping",
            "admin disconnect (client namespace disconnect)",
            "admin connect"
        ]
    );
}

/// Logs each `ping` event on `/` and tells `pinged`.
fn log_pings<Rt: Runtime>(
    io: &Server<Rt>,
    log: &mpsc::UnboundedSender<String>,
    pinged: &std::sync::Arc<tokio::sync::Notify>,
) {
    let log = log.clone();
    let pinged = pinged.clone();
    io.on("ping", move |_socket: Socket<Rt>, _: Option<Value>| {
        let _ = log.send("ping".into());
        pinged.notify_one();
        async {}
    });
}

/// Each test above, on each runtime the crate is built with: the server, its handlers and its
/// listener on tokio, or on smol's executor beside the test's tokio runtime.
macro_rules! on_every_runtime {
    ($($test:ident),* $(,)?) => {
        #[cfg(feature = "tokio")]
        mod tokio_runtime {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::on_tokio).await;
                }
            )*
        }

        #[cfg(feature = "smol")]
        mod smol_runtime {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::on_smol).await;
                }
            )*
        }
    };
}

on_every_runtime!(
    without_async_handlers_a_disconnect_handler_runs_after_the_handler_that_called_it,
    events_queued_behind_a_server_side_disconnect_are_dropped,
    callbacks_cancelled_by_a_disconnect_from_a_handler_run_before_the_disconnect_handler,
    callbacks_cancelled_by_the_servers_disconnect_run_before_the_disconnect_handler,
    callbacks_cancelled_by_the_client_closing_run_before_the_disconnect_handler,
    callbacks_cancelled_while_a_connect_is_pending_run_before_the_disconnect_handler,
    the_callback_of_an_emit_that_overflowed_runs_before_the_disconnect_handler,
    the_callback_of_an_emit_to_a_socket_that_left_runs_before_the_disconnect_handler,
    a_waiting_connect_handler_holds_up_only_its_own_namespace,
    a_waiting_disconnect_handler_holds_up_only_its_own_namespace,
);
