//! `async_handlers(false)` handles one client's events strictly in arrival order; `true` (the
//! default) runs them concurrently.

#![cfg(feature = "tokio")]

mod api_support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_support::{Node, serve};
use serde_json::Value;
use sockio::{Server, Socket};

const EVENTS: u64 = 20;

#[derive(Default)]
struct Observed {
    started: Mutex<Vec<u64>>,
    finished: Mutex<Vec<u64>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// Emits `event` with `0..count` and acks from the official client over `transport`, all at
/// once, and returns the acknowledgements in emit order.
async fn acks_of_all_at_once(io: &Server, transport: &str, event: &str, count: u64) -> Value {
    let running = serve(io).await;
    let mut client = Node::spawn(
        &running.url,
        &format!(
            r#"
const socket = io(URL, {{ transports: [{transport:?}], reconnection: false }});
await connected(socket);
const acks = [];
for (let k = 0; k < {count}; k++) acks.push(emitWithAck(socket, {event:?}, k));
out("acks", (await Promise.all(acks)).map((a) => a[0]));
process.exit(0);
"#
        ),
    );
    let acks = client.expect("acks").await;
    client.finish().await;
    acks
}

/// While the server has stopped reading from a client far ahead of its handlers, it still writes
/// to it: the first handler waits (300 ms) until the flood has filled the backlog and paused the
/// reader, emits `tick`, and then waits for the client to confirm it over a second connection.
/// A pump that stopped writing while paused would hold `tick` back until the handler returned,
/// so the handler would give up after 10 s instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_client_still_receives_what_the_server_sends() {
    const FLOOD: u64 = 3000;
    let io = Server::builder().async_handlers(false).build();
    let confirmed = Arc::new(tokio::sync::Notify::new());
    let tick_seen_in_time = Arc::new(AtomicBool::new(false));
    let notify = confirmed.clone();
    io.on("got-tick", move |_socket: Socket, _: u64| {
        let notify = notify.clone();
        async move { notify.notify_one() }
    });
    let (wait, seen) = (confirmed.clone(), tick_seen_in_time.clone());
    io.on("work", move |socket: Socket, k: u64| {
        let (wait, seen) = (wait.clone(), seen.clone());
        async move {
            if k == 0 {
                tokio::time::sleep(Duration::from_millis(300)).await;
                socket.emit("tick", &()).await.expect("emit tick");
                let in_time = tokio::time::timeout(Duration::from_secs(10), wait.notified()).await;
                seen.store(in_time.is_ok(), Ordering::SeqCst);
            }
            k
        }
    });
    let running = serve(&io).await;
    let mut client = Node::spawn(
        &running.url,
        &format!(
            r#"
const options = {{ transports: ["websocket"], reconnection: false, forceNew: true }};
const flooding = io(URL, options);
const witness = io(URL, options);
await connected(flooding);
await connected(witness);
flooding.on("tick", () => witness.emit("got-tick", 1));
const acks = [];
for (let k = 0; k < {FLOOD}; k++) acks.push(emitWithAck(flooding, "work", k));
out("acks", (await Promise.all(acks)).map((a) => a[0]));
process.exit(0);
"#
        ),
    );
    let acks = client.expect("acks").await;
    client.finish().await;
    assert_eq!(acks, serde_json::json!((0..FLOOD).collect::<Vec<_>>()));
    assert!(
        tick_seen_in_time.load(Ordering::SeqCst),
        "the client got `tick` while the server was not reading from it"
    );
}

/// Handler `k` sleeps `(20 - k)` ms, so later events finish first unless handled one at a time;
/// every third one (`k` divisible by 3) finishes without waiting, so over WebSocket it is handled
/// on the reading task while an earlier, waiting handler still holds the dispatcher's role.
async fn run(concurrent: bool, transport: &str) -> Arc<Observed> {
    let io = Server::builder().async_handlers(concurrent).build();
    let observed = Arc::new(Observed::default());
    let seen = observed.clone();
    io.on("work", move |_socket: Socket, k: u64| {
        let seen = seen.clone();
        async move {
            seen.started.lock().expect("started").push(k);
            let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            seen.max_in_flight.fetch_max(now, Ordering::SeqCst);
            if !k.is_multiple_of(3) {
                tokio::time::sleep(Duration::from_millis(EVENTS - k)).await;
            }
            seen.in_flight.fetch_sub(1, Ordering::SeqCst);
            seen.finished.lock().expect("finished").push(k);
            k
        }
    });
    let acks = acks_of_all_at_once(&io, transport, "work", EVENTS).await;
    let expected: Vec<u64> = (0..EVENTS).collect();
    assert_eq!(
        acks,
        serde_json::json!(expected),
        "every event is acknowledged"
    );
    observed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_handlers_run_one_at_a_time_in_arrival_order() {
    for transport in ["polling", "websocket"] {
        let observed = run(false, transport).await;
        let in_order: Vec<u64> = (0..EVENTS).collect();
        assert_eq!(*observed.started.lock().unwrap(), in_order, "{transport}");
        assert_eq!(*observed.finished.lock().unwrap(), in_order, "{transport}");
        assert_eq!(
            observed.max_in_flight.load(Ordering::SeqCst),
            1,
            "{transport}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_handlers_overlap() {
    for transport in ["polling", "websocket"] {
        let observed = run(true, transport).await;
        let max = observed.max_in_flight.load(Ordering::SeqCst);
        assert!(
            max > 1,
            "{transport}: handlers never overlapped (max in flight {max})"
        );
        let mut finished = observed.finished.lock().unwrap().clone();
        assert_eq!(finished.len(), EVENTS as usize);
        finished.sort_unstable();
        assert_eq!(finished, (0..EVENTS).collect::<Vec<_>>(), "{transport}");
    }
}

/// `handlers_per_client` caps one client's handlers running at once; its other events wait, in
/// order, and are all handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_per_client_caps_a_clients_concurrent_handlers() {
    const CAP: usize = 3;
    let io = Server::builder().handlers_per_client(CAP).build();
    let observed = Arc::new(Observed::default());
    let seen = observed.clone();
    io.on("work", move |_socket: Socket, k: u64| {
        let seen = seen.clone();
        async move {
            let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            seen.max_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            seen.in_flight.fetch_sub(1, Ordering::SeqCst);
            k
        }
    });
    for transport in ["polling", "websocket"] {
        observed.max_in_flight.store(0, Ordering::SeqCst);
        let acks = acks_of_all_at_once(&io, transport, "work", EVENTS).await;
        let expected: Vec<u64> = (0..EVENTS).collect();
        assert_eq!(acks, serde_json::json!(expected), "{transport}");
        let max = observed.max_in_flight.load(Ordering::SeqCst);
        assert!(
            (2..=CAP).contains(&max),
            "{transport}: {max} handlers ran at once, the cap is {CAP}"
        );
    }
}

/// With `async_handlers`, a handler that finishes without waiting runs on the task that read its
/// event; one that ran long (here 30 ms of work without an await) sends the next events to tasks
/// of their own, so long handlers still use every worker thread instead of queueing on one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_handlers_that_never_wait_still_run_side_by_side() {
    const LONG_EVENTS: u64 = 6;
    let io = Server::builder().async_handlers(true).build();
    let observed = Arc::new(Observed::default());
    let seen = observed.clone();
    io.on("busy", move |_socket: Socket, k: u64| {
        let seen = seen.clone();
        async move {
            let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            seen.max_in_flight.fetch_max(now, Ordering::SeqCst);
            let started = std::time::Instant::now();
            // 30 ms of work; the handlers after the first (which runs on the reading task, so
            // nothing can start beside it) go on until two have overlapped, so the second
            // worker thread gets its turn however busy the machine is (bounded: the overlap may
            // never come, and then the assertion below fails).
            let long = |elapsed: Duration| {
                elapsed < Duration::from_millis(30)
                    || (k > 0
                        && seen.max_in_flight.load(Ordering::SeqCst) < 2
                        && elapsed < Duration::from_secs(5))
            };
            while long(started.elapsed()) {
                std::hint::spin_loop();
            }
            seen.in_flight.fetch_sub(1, Ordering::SeqCst);
            k
        }
    });
    let acks = acks_of_all_at_once(&io, "websocket", "busy", LONG_EVENTS).await;
    assert_eq!(
        acks,
        serde_json::json!((0..LONG_EVENTS).collect::<Vec<_>>())
    );
    let max = observed.max_in_flight.load(Ordering::SeqCst);
    assert!(
        max > 1,
        "long handlers never overlapped (max in flight {max})"
    );
}

/// A client that sends far more than the dispatch backlog (1,024 events) while its first handler
/// waits: the server stops reading from it, and reads again once the backlog drains, so every event
/// is handled, in order, and acknowledged (a lost wake-up of the paused reader hangs this test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_far_ahead_of_its_handlers_is_paused_and_resumed() {
    const FLOOD: u64 = 3000;
    let io = Server::builder().async_handlers(false).build();
    let handled = Arc::new(Mutex::new(Vec::new()));
    let seen = handled.clone();
    io.on("work", move |_socket: Socket, k: u64| {
        let seen = seen.clone();
        async move {
            if k == 0 {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            seen.lock().expect("handled").push(k);
            k
        }
    });
    let acks = acks_of_all_at_once(&io, "websocket", "work", FLOOD).await;
    assert_eq!(acks, serde_json::json!((0..FLOOD).collect::<Vec<_>>()));
    let handled = handled.lock().expect("handled").clone();
    assert_eq!(handled, (0..FLOOD).collect::<Vec<_>>());
}

/// While the server has stopped reading from a client far ahead of its handlers, the client's
/// pongs wait unread behind its events: the heartbeat must not count that against it. The first
/// handler holds the backlog full for twice the ping interval plus timeout; the client, which
/// answers every ping, stays connected, and every event is then handled and acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_client_is_not_timed_out_for_the_pongs_it_sent() {
    const FLOOD: u64 = 1500;
    let io = Server::builder()
        .async_handlers(false)
        .ping_interval(Duration::from_secs(1))
        .ping_timeout(Duration::from_secs(2))
        .build();
    let release = Arc::new(tokio::sync::Notify::new());
    let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
    let held = release.clone();
    io.on("work", move |_socket: Socket, k: u64| {
        let (held, started_tx) = (held.clone(), started_tx.clone());
        async move {
            if k == 0 {
                let _ = started_tx.send(());
                held.notified().await;
            }
            k
        }
    });
    let running = serve(&io).await;
    let mut client = Node::spawn(
        &running.url,
        &sockio_testkit::handler_scripts::flood_of_acked_work(FLOOD),
    );
    tokio::time::timeout(Duration::from_secs(20), started.recv())
        .await
        .expect("the first handler started");
    // Held for twice the ping interval plus timeout: pings go out, the pongs wait unread. The
    // script prints nothing before its acks unless it is disconnected.
    if let Ok(line) = tokio::time::timeout(Duration::from_secs(6), client.next()).await {
        panic!("disconnected while its reading was paused: {line:?}");
    }
    release.notify_one();
    let acks = client.expect("acks").await;
    assert_eq!(acks, serde_json::json!((0..FLOOD).collect::<Vec<_>>()));
    client.finish().await;
}
