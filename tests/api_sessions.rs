//! User sessions, rooms (`rooms`, `enter_room`, `close_room`) and `transport()`, observed through
//! the official JavaScript client.

#![cfg(feature = "tokio")]

mod api_support;

use std::time::Duration;

use api_support::{Node, recv, serve, within};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sockio::{ServerError, Socket, Transport};
use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Session {
    user: String,
    visits: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_saved_in_connect_is_read_in_event_handlers() {
    let io = sockio::Server::builder().build();
    io.on_connect(
        |socket: Socket, _handshake, auth: Option<Value>| async move {
            let user = auth
                .as_ref()
                .and_then(|a| a["user"].as_str())
                .unwrap_or("nobody")
                .to_owned();
            // Nothing saved yet: the session reads as null.
            assert_eq!(socket.get_session::<Option<Session>>().ok(), Some(None));
            socket
                .save_session(&Session { user, visits: 0 })
                .expect("save_session in connect");
            Ok(())
        },
    );
    io.on("visit", |socket: Socket, _: Option<Value>| async move {
        let mut session: Session = socket.get_session().expect("get_session");
        session.visits += 1;
        socket.save_session(&session).expect("save_session");
        session
    });
    // The server-level accessors see the same session.
    let (tx, mut sids) = mpsc::unbounded_channel();
    io.on("sid", move |socket: Socket, _: Option<Value>| {
        let _ = tx.send(socket.sid().to_string());
        async {}
    });
    let running = serve(&io).await;
    let mut client = Node::spawn(
        &running.url,
        r#"
const make = (user) => io(URL, { auth: { user }, reconnection: false, forceNew: true });
const alice = make("alice");
const bob = make("bob");
await connected(alice);
await connected(bob);
out("alice", await emitWithAck(alice, "visit"));
out("alice", await emitWithAck(alice, "visit"));
out("bob", await emitWithAck(bob, "visit"));
alice.emit("sid");
await command();
process.exit(0);
"#,
    );
    assert_eq!(
        client.expect("alice").await,
        json!([{"user": "alice", "visits": 1}])
    );
    assert_eq!(
        client.expect("alice").await,
        json!([{"user": "alice", "visits": 2}])
    );
    assert_eq!(
        client.expect("bob").await,
        json!([{"user": "bob", "visits": 1}])
    );
    let alice = recv(&mut sids, "alice's sid").await;
    assert_eq!(
        io.get_session::<Session>(&alice)
            .expect("server get_session"),
        Session {
            user: "alice".into(),
            visits: 2
        }
    );
    assert!(matches!(
        io.get_session::<Session>("nope"),
        Err(ServerError::UnknownSid(_))
    ));
    assert!(matches!(
        io.get_session::<u32>(&alice),
        Err(ServerError::Session(_))
    ));
    client.send("bye").await;
    client.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_lists_the_own_sid_room_and_joined_rooms_and_close_room_empties_a_room() {
    let io = sockio::Server::builder().build();
    io.on("join", |socket: Socket, room: String| async move {
        socket.enter_room(&room).expect("enter_room");
        let mut rooms = socket.rooms();
        rooms.sort();
        rooms
    });
    io.on("leave", |socket: Socket, room: String| async move {
        socket.leave_room(&room).expect("leave_room");
        let mut rooms = socket.rooms();
        rooms.sort();
        rooms
    });
    let running = serve(&io).await;
    // Each client prints every `news`/`marker` event it gets, in arrival order.
    let script = r#"
const socket = io(URL, { reconnection: false, transports: [process.env.T] });
await connected(socket);
socket.on("news", (text) => out("news", text));
socket.on("marker", (text) => out("marker", text));
out("connected", socket.id);
out("joined", (await emitWithAck(socket, "join", "lobby"))[0]);
out("joined", (await emitWithAck(socket, "join", "extra"))[0]);
out("left", (await emitWithAck(socket, "leave", "extra"))[0]);
await command();
process.exit(0);
"#;
    let mut clients = Vec::new();
    let mut sids = Vec::new();
    for transport in ["polling", "websocket"] {
        let mut client = Node::spawn(
            &running.url,
            &format!("process.env.T = {transport:?};\n{script}"),
        );
        let sid = client.expect("connected").await;
        let sid = sid.as_str().expect("sid").to_owned();
        let mut expected = vec![sid.clone(), "lobby".to_owned()];
        expected.sort();
        assert_eq!(client.expect("joined").await, json!(expected));
        expected.push("extra".to_owned());
        expected.sort();
        assert_eq!(client.expect("joined").await, json!(expected));
        expected.retain(|r| r != "extra");
        assert_eq!(client.expect("left").await, json!(expected));
        clients.push(client);
        sids.push(sid);
    }

    // The room reaches both members.
    io.emit("news", &"first").to("lobby").await.expect("emit");
    for client in &mut clients {
        assert_eq!(client.expect("news").await, json!("first"));
    }

    io.close_room("lobby").expect("close_room");
    for sid in &sids {
        let rooms = io.rooms(sid);
        assert_eq!(rooms, vec![sid.clone()], "only the own room is left");
    }
    // An emit to the closed room reaches nobody: the marker sent after it is the next event
    // each client sees (events of one connection arrive in order).
    io.emit("news", &"second").to("lobby").await.expect("emit");
    io.emit("marker", &"after").await.expect("emit");
    for client in &mut clients {
        assert_eq!(client.expect("marker").await, json!("after"));
    }
    // A socket's own room can be neither entered by another socket, left nor closed (unlike
    // python-socketio): the emit to it below reaches its socket alone.
    assert!(matches!(
        io.leave_room(&sids[1], &sids[1]),
        Err(ServerError::SidRoom(_))
    ));
    assert!(matches!(
        io.enter_room(&sids[0], &sids[1]),
        Err(ServerError::SidRoom(_))
    ));
    assert!(matches!(
        io.close_room(&sids[1]),
        Err(ServerError::SidRoom(_))
    ));
    // Each sid room still addresses its socket.
    io.emit("news", &"direct")
        .to(&sids[1])
        .await
        .expect("emit to sid");
    assert_eq!(clients[1].expect("news").await, json!("direct"));
    io.emit("marker", &"end").await.expect("emit");
    assert_eq!(clients[0].expect("marker").await, json!("end"));
    assert_eq!(clients[1].expect("marker").await, json!("end"));

    assert!(io.rooms("unknown").is_empty());
    assert!(matches!(
        io.enter_room("unknown", "lobby"),
        Err(ServerError::UnknownSid(_))
    ));
    for mut client in clients {
        client.send("bye").await;
        client.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_reports_polling_then_websocket_after_the_upgrade() {
    let io = sockio::Server::builder().build();
    let (tx, mut at_connect) = mpsc::unbounded_channel();
    io.on_connect(move |socket: Socket, _handshake, _auth: Option<Value>| {
        let _ = tx.send((socket.sid().to_string(), socket.transport().ok()));
        async { Ok(()) }
    });
    let (gone_tx, mut gone) = mpsc::unbounded_channel();
    io.on_disconnect(move |socket: Socket, _reason| {
        let _ = gone_tx.send(socket.transport().is_ok());
        async {}
    });
    io.on("transport", |socket: Socket, _: Option<Value>| async move {
        socket.transport().map(|t| t.as_str()).unwrap_or("unknown")
    });
    let running = serve(&io).await;
    let mut client = Node::spawn(
        &running.url,
        r#"
const socket = io(URL, { reconnection: false });
const upgraded = new Promise((resolve) => socket.io.on("open", () => socket.io.engine.on("upgrade", resolve)));
await connected(socket);
out("connected", { id: socket.id, transport: socket.io.engine.transport.name });
await upgraded;
out("upgraded", { client: socket.io.engine.transport.name, server: (await emitWithAck(socket, "transport"))[0] });
await command();
process.exit(0);
"#,
    );
    let connected = client.expect("connected").await;
    let (sid, transport) = recv(&mut at_connect, "the connect handler").await;
    assert_eq!(connected["id"], json!(sid));
    // The official client starts with a long-polling handshake.
    assert_eq!(transport, Some(Transport::Polling));
    let upgraded = client.expect("upgraded").await;
    assert_eq!(
        upgraded,
        json!({"client": "websocket", "server": "websocket"})
    );
    assert_eq!(io.transport(&sid).ok(), Some(Transport::WebSocket));
    assert!(matches!(
        io.transport("unknown"),
        Err(ServerError::UnknownSid(_))
    ));
    // python-socketio's get_environ(sid): the handshake request, by sid alone.
    let handshake = io
        .handshake(&sid)
        .expect("the handshake of a connected sid");
    assert_eq!(handshake.query_param("EIO").as_deref(), Some("4"));
    assert!(
        handshake
            .remote_addr
            .is_some_and(|addr| addr.ip().is_loopback())
    );
    assert_eq!(
        io.of("/").handshake(&sid).expect("the same").uri,
        handshake.uri
    );
    assert!(matches!(
        io.handshake("unknown"),
        Err(ServerError::UnknownSid(_))
    ));
    assert!(matches!(
        io.of("/other").handshake(&sid),
        Err(ServerError::UnknownSid(_))
    ));
    client.send("bye").await;
    client.finish().await;
    // The disconnect handler still sees the socket; once it finished (shutdown waits for the
    // connection's tasks), the sid is unknown.
    assert!(recv(&mut gone, "the disconnect handler").await);
    within("shutdown", io.shutdown(Duration::from_secs(5))).await;
    assert!(matches!(
        io.transport(&sid),
        Err(ServerError::UnknownSid(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_task_emits_with_sleep_between_and_send_uses_message() {
    let io = sockio::Server::builder().build();
    let (tx, mut joined) = mpsc::unbounded_channel();
    io.on("subscribe", move |socket: Socket, _: Option<Value>| {
        socket.enter_room("ticks").expect("enter_room");
        let _ = tx.send(());
        async {}
    });
    let running = serve(&io).await;
    let mut client = Node::spawn(
        &running.url,
        r#"
const socket = io(URL, { reconnection: false });
socket.on("tick", (n) => out("tick", n));
socket.on("message", (text) => { out("message", text); process.exit(0); });
await connected(socket);
socket.emit("subscribe");
"#,
    );
    recv(&mut joined, "the subscription").await;
    let server = io.clone();
    let task = io.start_background_task(async move {
        for n in 0..3 {
            server.sleep(Duration::from_millis(20)).await;
            server.emit("tick", &n).to("ticks").await.expect("emit");
        }
        server.send(&"done").await.expect("send");
        "finished"
    });
    for n in 0..3 {
        assert_eq!(client.expect("tick").await, json!(n));
    }
    assert_eq!(client.expect("message").await, json!("done"));
    assert_eq!(within("the background task", task).await, "finished");
    client.finish().await;
}
