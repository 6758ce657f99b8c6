//! `is_finished`: a closed session still owes its driver WebSocket writes until they are pulled;
//! and what one pull of a WebSocket's writes takes.

use std::time::Instant;

use bytes::Bytes;
use sockio_core::engineio::{
    CloseReason, Endpoint, EngineConfig, PacketData, RequestId, Routing, SequentialSids, Session,
    WS_PULL_BYTES, WsAction, WsBatch, WsPulled,
};
use sockio_core::websocket::Outbox;

/// A WebSocket session (socket `RequestId(1)`) that was sent one message and then closed, with
/// its open packet, the message and the close still to be pulled.
fn closed_websocket_session() -> Session {
    let now = sockio_testkit::clock::start();
    let mut session = websocket_session();
    session
        .send(now, PacketData::Text("bye".into()))
        .expect("open");
    session.close(now, CloseReason::ForcedClose);
    while session.poll_output().is_some() {}
    while session.poll_event().is_some() {}
    session
}

/// A new WebSocket session (socket `RequestId(1)`), its open packet not pulled yet.
fn websocket_session() -> Session {
    let endpoint = Endpoint::new(EngineConfig::default(), SequentialSids::default());
    let now = sockio_testkit::clock::start();
    let request =
        sockio_testkit::requests::websocket_upgrade("/engine.io/?EIO=4&transport=websocket");
    let Routing::Created { mut session, .. } =
        endpoint.handle_request(now, RequestId(1), &request, |_| false)
    else {
        panic!("no handshake");
    };
    while session.poll_output().is_some() {}
    while session.poll_event().is_some() {}
    *session
}

#[test]
fn a_closed_websocket_session_is_finished_once_its_writes_are_pulled() {
    let mut session = closed_websocket_session();
    let conn = RequestId(1);
    assert!(session.is_closed());
    assert!(
        !session.is_finished(),
        "the open packet, the message and the close are still owed"
    );
    let mut pulled = Vec::new();
    while let Some(action) = session.poll_ws(conn) {
        pulled.push(action);
    }
    assert_eq!(pulled.len(), 3, "{pulled:?}");
    assert_eq!(pulled.last(), Some(&WsAction::Close));
    assert!(session.is_finished());
}

#[test]
fn pull_ws_takes_at_most_max_and_says_finished_only_when_nothing_is_left() {
    let mut session = closed_websocket_session();
    let conn = RequestId(1);
    let first = session.pull_ws(conn, 2);
    assert_eq!(first.actions.len(), 2, "{first:?}");
    assert!(!first.finished, "the close is still owed");
    let second = session.pull_ws(conn, 2);
    assert_eq!(second.actions, vec![WsAction::Close]);
    assert!(!second.finished, "finished is only said with nothing taken");
    let last = session.pull_ws(conn, 2);
    assert!(last.actions.is_empty());
    assert!(last.finished);
    assert_eq!(
        session.pull_ws(RequestId(2), 2),
        WsBatch {
            actions: Vec::new(),
            finished: true,
            more: false
        },
        "another socket of an ended session gets nothing more either"
    );
}

#[test]
fn pull_ws_into_frames_into_the_writers_outbox_what_pull_ws_would_return() {
    let mut batches = closed_websocket_session();
    let mut framed = closed_websocket_session();
    let conn = RequestId(1);
    let mut expected = Outbox::new();
    let mut outbox = Outbox::new();
    for _ in 0..3 {
        let batch = batches.pull_ws(conn, 2);
        let pulled = framed.pull_ws_into(conn, 2, &mut outbox);
        assert_eq!(
            pulled,
            WsPulled {
                taken: batch.actions.len(),
                finished: batch.finished,
                more: batch.more
            }
        );
        for action in batch.actions {
            expected.push_action(action);
        }
    }
    assert!(outbox.is_closed(), "the close was framed");
    let bytes = |outbox: &Outbox| {
        let mut slices = [std::io::IoSlice::new(&[]); 16];
        let filled = outbox.io_slices(&mut slices);
        slices[..filled]
            .iter()
            .flat_map(|slice| slice.iter().copied())
            .collect::<Vec<u8>>()
    };
    assert_eq!(bytes(&outbox), bytes(&expected));
    assert!(framed.is_finished());
}

#[test]
fn a_closed_polling_session_is_finished_at_once() {
    let endpoint = Endpoint::new(EngineConfig::default(), SequentialSids::default());
    let now = sockio_testkit::clock::start();
    let request = http::Request::get("/engine.io/?EIO=4&transport=polling")
        .body(Bytes::new())
        .expect("request");
    let Routing::Created { mut session, .. } =
        endpoint.handle_request(now, RequestId(1), &request, |_| false)
    else {
        panic!("no handshake");
    };
    let poll = http::Request::get("/engine.io/?EIO=4&transport=polling&sid=sid-000001")
        .body(Bytes::new())
        .expect("request");
    session.handle_request(now, RequestId(2), &poll);
    session.close(now, CloseReason::ForcedClose);
    while session.poll_output().is_some() {}
    while session.poll_event().is_some() {}
    assert!(session.is_closed());
    assert!(session.is_finished());
}

/// A WebSocket session whose handshake was made and whose open packet was never pulled: a client
/// that does not read.
fn unread_websocket_session() -> (sockio_core::engineio::Session, RequestId, Instant) {
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
    (*session, conn, now)
}

// Found by the `endpoint_stateful` fuzz target: the writes a closed session owes its WebSocket
// can never be pulled once that socket is gone, so they must not keep the session unfinished
// (a driver that forgets sessions when `is_finished` would leak it).
#[test]
fn a_closed_session_whose_unread_websocket_then_fails_is_finished() {
    let (mut session, conn, now) = unread_websocket_session();
    session.close(now, CloseReason::ForcedClose);
    while session.poll_output().is_some() {}
    while session.poll_event().is_some() {}
    assert!(!session.is_finished(), "the close is still owed");
    session.handle_ws_closed(now, conn, true);
    assert!(session.poll_output().is_none());
    assert!(session.poll_event().is_none(), "Closed was reported once");
    assert!(session.is_finished());
    assert_eq!(session.poll_ws(conn), None);
}

#[test]
fn an_open_session_whose_unread_websocket_fails_is_finished() {
    let (mut session, conn, now) = unread_websocket_session();
    for _ in 0..3 {
        session
            .send(now, PacketData::Text("unread".into()))
            .expect("open");
        while session.poll_output().is_some() {}
    }
    session.handle_ws_closed(now, conn, true);
    while session.poll_output().is_some() {}
    let mut events = Vec::new();
    while let Some(event) = session.poll_event() {
        events.push(event);
    }
    assert_eq!(
        events,
        vec![sockio_core::engineio::EngineEvent::Closed(
            CloseReason::TransportError("websocket failed")
        )]
    );
    assert!(session.is_finished());
    assert_eq!(session.buffered(), (0, 0));
}

/// A pull stops once it took [`WS_PULL_BYTES`] (after one frame at least) and says more is
/// ready: what a writer holds is out of the heartbeat's reach, and 64 frames of 200 KB put 12.8
/// MB, seconds of a slow client's reading, ahead of the next ping.
#[test]
fn a_pull_stops_at_its_byte_budget_and_says_more_is_ready() {
    let mut session = closed_websocket_session();
    let conn = RequestId(1);
    let now = sockio_testkit::clock::start();
    let open = session.pull_ws(conn, 64);
    assert_eq!(
        open.actions.len(),
        3,
        "the open packet, `bye` and the close"
    );
    assert!(!open.more);

    let mut session = open_websocket_session();
    let small = WS_PULL_BYTES / 2 + 1;
    for size in [small, small, small, 4 * WS_PULL_BYTES, small] {
        session
            .send(now, PacketData::Text("x".repeat(size).into()))
            .expect("open");
    }
    let sizes = |batch: &WsBatch| {
        batch
            .actions
            .iter()
            .map(|action| match action {
                WsAction::Send(message) => message.len(),
                WsAction::Close => 0,
            })
            .collect::<Vec<_>>()
    };
    let first = session.pull_ws(conn, 64);
    assert_eq!(sizes(&first), [small + 1, small + 1]);
    assert!(first.more);
    let second = session.pull_ws(conn, 64);
    assert_eq!(sizes(&second), [small + 1, 4 * WS_PULL_BYTES + 1]);
    assert!(second.more);
    let third = session.pull_ws(conn, 64);
    assert_eq!(sizes(&third), [small + 1]);
    assert!(!third.more, "nothing left");
    assert!(!third.finished, "the session is open");
    let mut outbox = Outbox::new();
    session
        .send(now, PacketData::Text("y".repeat(small).into()))
        .expect("open");
    session
        .send(now, PacketData::Text("y".repeat(small).into()))
        .expect("open");
    let pulled = session.pull_ws_into(conn, 1, &mut outbox);
    assert_eq!(
        pulled,
        WsPulled {
            taken: 1,
            finished: false,
            more: true
        },
        "stopped at its count"
    );
}

/// A WebSocket session (socket `RequestId(1)`) whose open packet was pulled.
fn open_websocket_session() -> Session {
    let mut session = websocket_session();
    assert_eq!(session.pull_ws(RequestId(1), 64).actions.len(), 1);
    session
}
