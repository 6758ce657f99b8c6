//! One connection's cost per drive while it awaits many acknowledgements: the deadline the
//! runtime asks for after every input or command (`poll_timeout`), an emit asking for an answer
//! and the client's answer to it. And a server's remote callbacks (emits with callbacks to
//! clients of other servers): what its expiry timer pays at each wake while many wait.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::json;
use sockio_core::engineio::{RequestId, SequentialSids, WsMessage};
use sockio_core::pubsub::callbacks::{Expect, PendingCallbacks};
use sockio_core::socketio::{Connection, Endpoint, Routing, SocketConfig, SocketEvent};

const ID: RequestId = RequestId(1);

fn connected(now: Instant) -> Box<Connection> {
    let endpoint = Endpoint::new(SocketConfig::default(), SequentialSids::default());
    let request =
        sockio_testkit::requests::websocket_upgrade("/socket.io/?EIO=4&transport=websocket");
    let Routing::Created { mut connection, .. } =
        endpoint.handle_request(now, ID, &request, |_| false)
    else {
        panic!("handshake refused");
    };
    drain(&mut connection);
    connection.handle_ws_message(now, ID, WsMessage::Text("40".into()));
    let Some(SocketEvent::Connect { .. }) = connection.poll_event() else {
        panic!("no connect");
    };
    connection.accept_connect(now, "/").expect("pending");
    drain(&mut connection);
    connection
}

fn drain(connection: &mut Connection) {
    while connection.poll_output().is_some() {}
    while connection.poll_ws(ID).is_some() {}
    while connection.poll_event().is_some() {}
}

/// An emit asking for an answer within `timeout`, its frame written.
fn ask(connection: &mut Connection, now: Instant, timeout: Duration) -> u64 {
    let id = connection
        .emit(now, "/", "ask", vec![json!(1)], vec![], Some(Some(timeout)))
        .expect("emit")
        .expect("an ack id");
    drain(connection);
    id
}

fn acks(c: &mut Criterion) {
    let mut group = c.benchmark_group("acks/awaited");
    for awaited in [0usize, 1_000, 9_999] {
        let now = sockio_testkit::clock::start();
        let mut connection = connected(now);
        for _ in 0..awaited {
            ask(&mut connection, now, Duration::from_secs(60));
        }
        group.bench_function(BenchmarkId::new("poll_timeout", awaited), |b| {
            b.iter(|| black_box(connection.poll_timeout()))
        });
        // One call answered at once, beside the others still awaited: the emit, the answer,
        // and the deadline asked for after each.
        group.bench_function(BenchmarkId::new("call_answered", awaited), |b| {
            b.iter(|| {
                let id = ask(&mut connection, now, Duration::from_secs(5));
                black_box(connection.poll_timeout());
                connection.handle_ws_message(now, ID, WsMessage::Text(format!("43{id}[]").into()));
                drain(&mut connection);
                black_box(connection.poll_timeout());
            })
        });
    }
    group.finish();
}

fn remote_callbacks(c: &mut Criterion) {
    let mut group = c.benchmark_group("acks/remote_callbacks");
    for waiting in [0usize, 1_000, 60_000] {
        let now = sockio_testkit::clock::start();
        let mut pending = PendingCallbacks::default();
        for n in 0..waiting {
            // Registered over the last minute, one per millisecond: none is due yet.
            let timeout = Duration::from_secs(60) + Duration::from_millis(n as u64);
            pending
                .register((), now, Some(timeout), Expect::Any)
                .expect("room in the registry");
        }
        // One wake of the expiry timer with nothing due: expire, then the next deadline.
        group.bench_function(BenchmarkId::new("timer_wake", waiting), |b| {
            b.iter(|| {
                black_box(pending.expire(now + Duration::from_secs(1)));
                black_box(pending.next_deadline())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, acks, remote_callbacks);
criterion_main!(benches);
