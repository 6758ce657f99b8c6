//! A WebSocket session's outbound queue gives back the room of a large burst once its writer
//! has emptied it: a connection may live for days after one burst (a history sent on join, an
//! emit loop), and kept, 5,000 frames' room is 200 KB per connection.
//! The only test of this binary, so that no other test allocates while it counts.

use std::alloc::System;

use sockio_core::engineio::{
    Endpoint, EngineConfig, PacketData, RequestId, Routing, SequentialSids, WsAction,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn a_written_burst_gives_its_queue_room_back() {
    let endpoint = Endpoint::new(EngineConfig::default(), SequentialSids::default());
    let now = sockio_testkit::clock::start();
    let conn = RequestId(1);
    let request =
        sockio_testkit::requests::websocket_upgrade("/engine.io/?EIO=4&transport=websocket");
    let Routing::Created { mut session, .. } =
        endpoint.handle_request(now, conn, &request, |_| false)
    else {
        panic!("no handshake");
    };
    while session.poll_output().is_some() {}
    while session.poll_ws(conn).is_some() {}
    while session.poll_event().is_some() {}
    // One message sent and written, so the queue holds its usual small room.
    let message = PacketData::Text("4a message".into());
    session.send(now, message.clone()).expect("queued");
    while session.poll_ws(conn).is_some() {}
    let region = Region::new(ALLOCATOR);
    for _ in 0..5_000 {
        session.send(now, message.clone()).expect("queued");
    }
    let mut written = 0;
    while let Some(action) = session.poll_ws(conn) {
        assert!(matches!(action, WsAction::Send(_)));
        written += 1;
    }
    assert_eq!(written, 5_000);
    let change = region.change();
    // A reallocation's growth counts as allocated, its shrinking as deallocated.
    let held = change.bytes_allocated as isize - change.bytes_deallocated as isize;
    assert!(
        held <= 4_096,
        "{held} bytes kept after the burst was written"
    );
}
