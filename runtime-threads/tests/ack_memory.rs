//! The acknowledgement callbacks a connection awaits give their room back as the answers come:
//! a server that once had thousands of callbacks waiting for one client (up to
//! `max_pending_acks`, 10,000) must not keep that room for the connection's life.
//! The only test of this binary, so that no other test allocates while it counts.

use std::alloc::System;
use std::net::TcpListener;
use std::sync::mpsc::channel;
use std::time::Duration;

use serde_json::Value;
use sockio_threads::{CallError, Server, Socket};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tungstenite::Message;

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const ASKED: usize = 9_999;

#[test]
fn answered_callbacks_give_their_room_back() {
    let io = Server::builder().build();
    let (sid_tx, sid) = channel();
    io.on_connect(move |socket: Socket, _handshake, _auth: Option<Value>| {
        let _ = sid_tx.send(socket.sid().to_string());
        Ok(())
    });
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let serving = io.clone();
    std::thread::spawn(move || serving.serve_std(listener));
    let (mut client, _) =
        tungstenite::connect(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket"))
            .expect("WebSocket handshake");
    client.send(Message::text("40")).expect("connect");
    // The client reads every question first, then answers them all: the server awaits all of
    // them at once. Its list of ids is made here, before the count starts.
    let mut ids: Vec<u64> = Vec::with_capacity(ASKED);
    let answering = std::thread::spawn(move || {
        while ids.len() < ASKED {
            let text = match client.read() {
                Ok(Message::Text(text)) => text,
                Ok(_) => continue,
                Err(error) => panic!("the client's connection failed: {error}"),
            };
            if let Some(event) = text.as_str().strip_prefix("42") {
                let digits = event.find('[').expect("an event's arguments");
                ids.push(event[..digits].parse().expect("an ack id"));
            }
        }
        for id in &ids {
            client
                .send(Message::text(format!("43{id}[]")))
                .expect("an answer");
        }
        (client, ids)
    });
    let sid = sid
        .recv_timeout(Duration::from_secs(10))
        .expect("the client connected");
    let (answered_tx, answered) = channel();
    let region = Region::new(ALLOCATOR);
    for n in 0..ASKED {
        let answered_tx = answered_tx.clone();
        io.emit("ask", &n)
            .to(&sid)
            .callback(
                Some(Duration::from_secs(60)),
                move |answer: Result<Value, CallError>| {
                    let _ = answered_tx.send(answer.is_ok());
                },
            )
            .send()
            .expect("the question is sent");
    }
    drop(answered_tx);
    for _ in 0..ASKED {
        let ok = answered
            .recv_timeout(Duration::from_secs(30))
            .expect("every question answered");
        assert!(ok, "an answer, not a timeout");
    }
    let change = region.change();
    // A reallocation's growth counts as allocated, its shrinking as deallocated.
    let held = change.bytes_allocated as isize - change.bytes_deallocated as isize;
    let client = answering.join().expect("the client");
    assert!(
        held <= 100_000,
        "{held} bytes kept once {ASKED} callbacks were answered"
    );
    drop(client);
    io.abort();
}
