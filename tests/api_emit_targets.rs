//! Emit targets through a real server and the official client: several rooms at once (`.to()`
//! twice, `to_rooms`, rooms mixed with socket ids; the union, each socket once), several skipped
//! sids, the whole namespace minus some, a callback per recipient, and namespaces kept apart.
//!
//! Each round is one targeted emit followed by an `end` marker to every socket: a socket's events
//! arrive in order, so when it sees `end` it has seen everything the round sent it, and reports
//! exactly that. No waiting for events that should not come.

#![cfg(feature = "tokio")]

mod api_support;

use std::collections::BTreeMap;

use api_support::{Node, recv, serve, within};
use serde_json::{Value, json};
use sockio::{Server, Socket};
use tokio::sync::mpsc;

/// Six official clients: five on `/` (polling, WebSocket, polling-then-upgrade, WebSocket,
/// polling) and one on `/other`. Each records the events it gets; on `end` it reports them (and
/// forgets them). Events asking for an ack are answered with the client's number.
const CLIENTS: &str = r#"
const plan = [
  ["/", ["polling"]], ["/", ["websocket"]], ["/", ["polling", "websocket"]],
  ["/", ["websocket"]], ["/", ["polling"]], ["/other", ["websocket"]],
];
const sockets = [];
for (const [client, [nsp, transports]] of plan.entries()) {
  const socket = io(URL + nsp, { transports, reconnection: false, forceNew: true });
  let received = [];
  socket.onAny((event, ...args) => {
    if (event === "end") {
      out("round", { client, round: args[0], received });
      received = [];
      return;
    }
    if (typeof args[args.length - 1] === "function") args.pop()({ client });
    received.push([event, ...args]);
  });
  await connected(socket);
  sockets.push(socket);
}
for (const socket of sockets) {
  if (socket.io.opts.transports.length === 2 && socket.io.engine.transport.name !== "websocket") {
    await new Promise((resolve) => socket.io.engine.once("upgrade", resolve));
  }
}
out("sids", sockets.map((s) => s.id));
await command();
process.exit(0);
"#;

/// What each client (by number) received in one round.
async fn round(client: &mut Node, number: u64) -> BTreeMap<u64, Value> {
    let mut seen = BTreeMap::new();
    while seen.len() < 6 {
        let report = client.expect("round").await;
        assert_eq!(report["round"], json!(number), "{report}");
        let who = report["client"].as_u64().expect("client number");
        assert!(
            seen.insert(who, report["received"].clone()).is_none(),
            "client {who} reported round {number} twice"
        );
    }
    seen
}

/// Sends the `end` marker of round `number` to every socket of both namespaces.
async fn end_round(io: &Server, number: u64) {
    io.emit("end", &number).await.expect("end marker on /");
    io.emit("end", &number)
        .namespace("/other")
        .await
        .expect("end marker on /other");
}

/// Checks that exactly the clients in `recipients` got `[["news", number]]` and the others
/// nothing.
fn assert_round(seen: &BTreeMap<u64, Value>, number: u64, recipients: &[u64]) {
    for (client, received) in seen {
        let expected = if recipients.contains(client) {
            json!([["news", number]])
        } else {
            json!([])
        };
        assert_eq!(
            received, &expected,
            "round {number}: client {client} (recipients {recipients:?}); all: {seen:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emits_to_several_rooms_and_skipping_several_sids_reach_each_recipient_once() {
    let io = Server::builder().build();
    io.of("/other")
        .on_connect(|_socket: Socket, _handshake, _auth: Option<Value>| async { Ok(()) });
    let running = serve(&io).await;
    let mut client = Node::spawn(&running.url, CLIENTS);
    let sids: Vec<String> = client
        .expect("sids")
        .await
        .as_array()
        .expect("sids")
        .iter()
        .map(|s| s.as_str().expect("sid").to_owned())
        .collect();
    let sid = |n: usize| sids[n].as_str();

    // Room "a": clients 0, 1, 2; room "b": 2, 3 (2 is in both); 4 is in no room. Client 5 is on
    // `/other`, in that namespace's own room "a".
    for (n, room) in [(0, "a"), (1, "a"), (2, "a"), (2, "b"), (3, "b")] {
        io.enter_room(sid(n), room).expect("enter_room");
    }
    io.of("/other")
        .enter_room(sid(5), "a")
        .expect("enter_room on /other");

    // 1. `.to()` twice: the union of both rooms, client 2 once although in both.
    io.emit("news", &1).to("a").to("b").await.expect("emit");
    end_round(&io, 1).await;
    assert_round(&round(&mut client, 1).await, 1, &[0, 1, 2, 3]);

    // 2. `to_rooms` with two sids skipped (one in each room, 2 in both).
    io.emit("news", &2)
        .to_rooms(["a", "b"])
        .skip_sid(sid(1))
        .skip_sid(sid(2))
        .await
        .expect("emit");
    end_round(&io, 2).await;
    assert_round(&round(&mut client, 2).await, 2, &[0, 3]);

    // 3. No room: the whole namespace, minus two sids (and never `/other`).
    io.emit("news", &3)
        .skip_sid(sid(0))
        .skip_sid(sid(4))
        .await
        .expect("emit");
    end_round(&io, 3).await;
    assert_round(&round(&mut client, 3).await, 3, &[1, 2, 3]);

    // 4. Socket ids are rooms too: a sid, a room, and a sid already in that room.
    io.emit("news", &4)
        .to(sid(4))
        .to("b")
        .to_rooms([sid(3)])
        .await
        .expect("emit");
    end_round(&io, 4).await;
    assert_round(&round(&mut client, 4).await, 4, &[2, 3, 4]);

    // 5. Skipping every recipient sends nothing.
    io.emit("news", &5)
        .to("b")
        .skip_sid(sid(2))
        .skip_sid(sid(3))
        .await
        .expect("emit");
    end_round(&io, 5).await;
    assert_round(&round(&mut client, 5).await, 5, &[]);

    // 6. A callback with several rooms and a skipped sid: called once per recipient, with that
    //    recipient's answer.
    let (answers_tx, mut answers) = mpsc::unbounded_channel();
    io.emit("news", &6)
        .to_rooms(["a", "b"])
        .skip_sid(sid(0))
        .callback(None, move |answer: Result<Value, _>| {
            let _ = answers_tx.send(answer.map_err(|e: sockio::CallError| e.to_string()));
        })
        .await
        .expect("emit");
    end_round(&io, 6).await;
    assert_round(&round(&mut client, 6).await, 6, &[1, 2, 3]);
    let mut answered = Vec::new();
    for _ in 0..3 {
        let answer = recv(&mut answers, "an acknowledgement").await;
        answered.push(answer.expect("answered")["client"].clone());
    }
    answered.sort_by_key(|v| v.as_u64());
    assert_eq!(answered, vec![json!(1), json!(2), json!(3)]);

    // 7. The same room name in another namespace is another room.
    io.emit("news", &7)
        .namespace("/other")
        .to("a")
        .await
        .expect("emit");
    end_round(&io, 7).await;
    assert_round(&round(&mut client, 7).await, 7, &[5]);

    // Every acknowledgement of round 6 came before the clients' later reports.
    assert!(
        answers.try_recv().is_err(),
        "a callback ran more than once per recipient"
    );
    client.send("quit").await;
    within("the clients to exit", client.finish()).await;
}
