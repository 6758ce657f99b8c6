//! The per-client cap on handlers in flight: a client flooding events whose handlers block holds
//! at most its cap of the handler pool's workers, another client is served meanwhile, and once
//! the handlers are released every flooded event is handled and acknowledged (none dropped).

mod support;

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::channel;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde_json::json;
use sockio_threads::{Server, Socket};
use support::{Node, STEP};

/// More than the dispatch backlog (256) after which the flooding client's reads pause.
const FLOOD: usize = 600;
const POOL: usize = 4;
const CAP: usize = 2;

/// Holds handlers until opened.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cond: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cond.wait(open).unwrap();
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cond.notify_all();
    }
}

const FLOODER: &str = r#"
const socket = io(URL, { transports: [process.env.T], reconnection: false });
await connected(socket);
out("connected");
const acks = [];
for (let i = 0; i < Number(process.env.FLOOD); i++) {
  acks.push(socket.timeout(50000).emitWithAck("block", i));
}
out("sent");
const answers = await Promise.all(acks);
out("acked", answers.every((answer, i) => answer === i) ? answers.length : answers);
socket.close();
"#;

const OTHER: &str = r#"
const socket = io(URL, { transports: ["websocket"], reconnection: false });
await connected(socket);
out("pong", await socket.timeout(10000).emitWithAck("ping", "x"));
socket.close();
"#;

fn flood(transport: &str) {
    let io = Server::builder()
        .handler_threads(POOL)
        .handlers_per_client(CAP)
        .build();
    let gate = Arc::new(Gate::default());
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let handled = Arc::new(AtomicUsize::new(0));
    let (started_tx, started) = channel();
    {
        let (gate, running, most, handled) =
            (gate.clone(), running.clone(), most.clone(), handled.clone());
        io.on("block", move |_socket: Socket, n: u64| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            let _ = started_tx.send(n);
            gate.wait();
            running.fetch_sub(1, Ordering::SeqCst);
            handled.fetch_add(1, Ordering::SeqCst);
            n
        });
    }
    io.on("ping", |_socket: Socket, text: String| {
        format!("pong:{text}")
    });
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let serving = io.clone();
    std::thread::spawn(move || serving.serve_std(listener));

    let mut flooder = Node::spawn(
        &url,
        &format!("process.env.T = {transport:?}; process.env.FLOOD = \"{FLOOD}\";\n{FLOODER}"),
    );
    flooder.expect("connected");
    flooder.expect("sent");
    // The cap's worth of handlers start (the first events; workers may start them in either
    // order) and block.
    let mut first: Vec<u64> = (0..CAP)
        .map(|_| started.recv_timeout(STEP).expect("a handler start"))
        .collect();
    first.sort_unstable();
    assert_eq!(first, (0..CAP as u64).collect::<Vec<_>>());

    // With the flooder's handlers stuck, another client still connects and is answered.
    let mut other = Node::spawn(&url, OTHER);
    assert_eq!(other.expect("pong"), json!("pong:x"));
    other.finish();
    assert_eq!(running.load(Ordering::SeqCst), CAP);
    assert!(
        started.try_recv().is_err(),
        "a handler past the cap started"
    );

    gate.open();
    assert_eq!(flooder.expect("acked"), json!(FLOOD), "over {transport}");
    flooder.finish();
    assert_eq!(handled.load(Ordering::SeqCst), FLOOD);
    assert_eq!(most.load(Ordering::SeqCst), CAP, "over {transport}");
    io.shutdown(Duration::from_secs(5));
}

#[test]
fn a_flooding_websocket_client_holds_at_most_its_cap_of_workers() {
    flood("websocket");
}

#[test]
fn a_flooding_polling_client_holds_at_most_its_cap_of_workers() {
    flood("polling");
}

/// While the server has stopped reading from a client far ahead of its handlers, the client's
/// pongs wait unread behind its events: the heartbeat must not count that against it. The first
/// handler holds the backlog full for twice the ping interval plus timeout; the client, which
/// answers every ping, stays connected, and every event is then handled and acknowledged.
#[test]
fn a_paused_client_is_not_timed_out_for_the_pongs_it_sent() {
    const EVENTS: usize = 800;
    let io = Server::builder()
        .async_handlers(false)
        .ping_interval(Duration::from_secs(1))
        .ping_timeout(Duration::from_secs(2))
        .build();
    let gate = Arc::new(Gate::default());
    let (started_tx, started) = channel();
    {
        let gate = gate.clone();
        io.on("work", move |_socket: Socket, k: u64| {
            if k == 0 {
                let _ = started_tx.send(());
                gate.wait();
            }
            k
        });
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let serving = io.clone();
    std::thread::spawn(move || serving.serve_std(listener));

    let mut client = Node::spawn(
        &url,
        &sockio_testkit::handler_scripts::flood_of_acked_work(EVENTS as u64),
    );
    started
        .recv_timeout(STEP)
        .expect("the first handler started");
    // Held for twice the ping interval plus timeout: pings go out, the pongs wait unread. The
    // script's first line is its acks, or `disconnect` if it was disconnected meanwhile.
    std::thread::sleep(Duration::from_secs(6));
    gate.open();
    assert_eq!(
        client.expect("acks"),
        json!((0..EVENTS as u64).collect::<Vec<_>>())
    );
    client.finish();
    io.abort();
}
