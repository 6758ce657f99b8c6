//! Planning and delivering one broadcast to 10,000 WebSocket sessions through the core: room
//! selection, encoding once, and handing the shared frames to every connection's queue.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use sockio_core::engineio::{RequestId, SequentialSids, Sid, WsMessage};
use sockio_core::socketio::{
    BroadcastTarget, Connection, EncodedFrames, Endpoint, Packet, RoomIndex, Routing, SocketConfig,
    SocketEvent,
};

const CLIENTS: usize = 10_000;

struct World {
    connections: HashMap<Sid, (Connection, RequestId)>,
    rooms: RoomIndex<Sid>,
    now: Instant,
}

fn world() -> World {
    let endpoint = Endpoint::new(SocketConfig::default(), SequentialSids::default());
    let now = sockio_testkit::clock::start();
    let mut connections = HashMap::with_capacity(CLIENTS);
    let mut rooms = RoomIndex::new();
    for i in 0..CLIENTS {
        let id = RequestId(i as u64);
        let request =
            sockio_testkit::requests::websocket_upgrade("/socket.io/?EIO=4&transport=websocket");
        let Routing::Created { mut connection, .. } =
            endpoint.handle_request(now, id, &request, |_| false)
        else {
            panic!("handshake refused");
        };
        while connection.poll_output().is_some() {}
        while connection.poll_ws(id).is_some() {}
        connection.handle_ws_message(now, id, WsMessage::Text("40".into()));
        let Some(SocketEvent::Connect { .. }) = connection.poll_event() else {
            panic!("no connect");
        };
        let sid = connection.accept_connect(now, "/").expect("pending");
        while connection.poll_output().is_some() {}
        while connection.poll_ws(id).is_some() {}
        rooms.join(&sid, sid.as_str());
        if i % 2 == 0 {
            rooms.join(&sid, "news");
        }
        connections.insert(sid, (*connection, id));
    }
    World {
        connections,
        rooms,
        now,
    }
}

fn broadcast(c: &mut Criterion) {
    let mut world = world();
    let packet = Packet::event(
        "/",
        "message",
        vec![json!({"user": "ada", "text": "hello, everyone"})],
        vec![],
        None,
    );
    let mut recipients = Vec::with_capacity(CLIENTS);
    let skip = world.rooms.members_of("news")[0].clone();

    c.bench_function(
        "broadcast/plan 10k (select all but sender + encode once)",
        |b| {
            let target = BroadcastTarget::all().skip(skip.clone());
            b.iter(|| {
                recipients.clear();
                world.rooms.select_into(&target, &mut recipients);
                black_box((EncodedFrames::new(&packet), recipients.len()))
            })
        },
    );

    c.bench_function(
        "broadcast/deliver 10k (plan + queue + pull every frame)",
        |b| {
            let target = BroadcastTarget::all();
            b.iter(|| {
                recipients.clear();
                world.rooms.select_into(&target, &mut recipients);
                let frames = EncodedFrames::new(&packet);
                for sid in &recipients {
                    if let Some((connection, conn)) = world.connections.get_mut(sid) {
                        connection
                            .send_encoded(world.now, "/", &frames)
                            .expect("open");
                        while connection.poll_output().is_some() {}
                        while let Some(action) = connection.poll_ws(*conn) {
                            black_box(action);
                        }
                    }
                }
            })
        },
    );

    c.bench_function("broadcast/deliver to room of 5k", |b| {
        let target = BroadcastTarget::room("news");
        b.iter(|| {
            recipients.clear();
            world.rooms.select_into(&target, &mut recipients);
            let frames = EncodedFrames::new(&packet);
            for sid in &recipients {
                if let Some((connection, conn)) = world.connections.get_mut(sid) {
                    connection
                        .send_encoded(world.now, "/", &frames)
                        .expect("open");
                    while connection.poll_output().is_some() {}
                    while let Some(action) = connection.poll_ws(*conn) {
                        black_box(action);
                    }
                }
            }
        })
    });
}

criterion_group!(benches, broadcast);
criterion_main!(benches);
