//! Panics of application code on the threads runtime. An event, connect or disconnect handler, an
//! emit callback or a background task that panics is logged and contained: the event gets no
//! acknowledgement and the connect is refused ("internal server error"), while the client's
//! connection stays, the server goes on serving it and the others, and the handler pool keeps
//! every worker and every client's share of it.
//!
//! The checks of the tokio runtime's `tests/api_panics.rs` (which `api.rs` runs here with Node's
//! client and the default pool of 32), with hand-rolled clients over polling and over WebSocket,
//! so no Node is needed, and with a pool small enough that the panics outnumber its workers: a
//! panic that took a worker, or a client's handler slot, with it would leave handlers that never
//! run.

mod support;

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sockio_testkit::raw_polling::{open, request, session_uri};
use sockio_threads::{Server, Socket};
use support::{STEP, recv, serve};
use tungstenite::Message;
use tungstenite::stream::MaybeTlsStream;

/// Workers in the handler pool.
const THREADS: usize = 2;
/// Panicking events each client sends: more than the pool has workers, and than a client's share
/// of it (one handler at a time).
const PANICS: u64 = 2 * THREADS as u64 + 1;
/// How long a `meet` handler waits for the others: a bound on a hang, shorter than the polling
/// client's read timeout (15 s) so that a missing worker fails with its own message.
const MEET_WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug)]
enum Transport {
    Polling,
    WebSocket,
}

const TRANSPORTS: [Transport; 2] = [Transport::Polling, Transport::WebSocket];

enum Link {
    WebSocket(Box<tungstenite::WebSocket<MaybeTlsStream<TcpStream>>>),
    /// The session's polling URI.
    Polling(String),
}

/// One Engine.IO connection, speaking raw packets (`40`, `42["ev"]`, ...).
struct Client {
    addr: SocketAddr,
    link: Link,
    /// Packets of the last poll not read yet.
    inbox: VecDeque<String>,
}

impl Client {
    /// Opens an Engine.IO connection (its open packet read), not joined to any namespace.
    fn open(addr: SocketAddr, transport: Transport) -> Client {
        let link = match transport {
            Transport::Polling => {
                Link::Polling(session_uri("/socket.io/", &open(addr, "/socket.io/")))
            }
            Transport::WebSocket => {
                let (mut ws, _) = tungstenite::connect(format!(
                    "ws://{addr}/socket.io/?EIO=4&transport=websocket"
                ))
                .expect("WebSocket handshake");
                // A server that stops answering fails the test instead of hanging it.
                if let MaybeTlsStream::Plain(stream) = ws.get_ref() {
                    stream.set_read_timeout(Some(STEP)).expect("read timeout");
                }
                let open = ws.read().expect("the open packet");
                assert!(open.to_text().expect("text").starts_with("0{"), "{open:?}");
                Link::WebSocket(Box::new(ws))
            }
        };
        Client {
            addr,
            link,
            inbox: VecDeque::new(),
        }
    }

    /// Opens a connection and joins `/`.
    fn joined(addr: SocketAddr, transport: Transport) -> Client {
        let mut client = Client::open(addr, transport);
        client.join(None);
        client
    }

    /// Joins `/` (with `auth`), and returns the server's answer: the CONNECT packet's JSON.
    /// Fails unless it is accepted.
    fn join(&mut self, auth: Option<Value>) -> Value {
        let (kind, answer) = self.try_join(auth);
        assert_eq!(kind, "40", "refused: {answer}");
        answer
    }

    /// Asks to join `/` (with `auth`); returns the answer's packet type (`40` accepted, `44`
    /// refused) and JSON.
    fn try_join(&mut self, auth: Option<Value>) -> (String, Value) {
        let connect = match auth {
            Some(auth) => format!("40{auth}"),
            None => "40".to_owned(),
        };
        self.send(&[&connect]);
        let answer = self.next();
        let parsed = ["40", "44"].into_iter().find_map(|kind| {
            let json = serde_json::from_str(answer.strip_prefix(kind)?).ok()?;
            Some((kind.to_owned(), json))
        });
        parsed.unwrap_or_else(|| panic!("a CONNECT answer expected, got {answer:?}"))
    }

    /// Sends Engine.IO packets: each in a WebSocket message of its own, or together in one POST.
    fn send(&mut self, packets: &[&str]) {
        match &mut self.link {
            Link::WebSocket(ws) => {
                for packet in packets {
                    ws.send(Message::text(*packet)).expect("send");
                }
            }
            Link::Polling(uri) => {
                let posted = request(self.addr, "POST", uri, packets.join("\x1e").as_bytes());
                assert_eq!(
                    (posted.status, posted.body.as_str()),
                    (200, "ok"),
                    "POST {packets:?}"
                );
            }
        }
    }

    /// The next Engine.IO packet from the server, answering pings on the way.
    fn next(&mut self) -> String {
        loop {
            let packet = match self.inbox.pop_front() {
                Some(packet) => packet,
                None => match &mut self.link {
                    Link::WebSocket(ws) => match ws.read().expect("a message from the server") {
                        Message::Text(text) => text.as_str().to_owned(),
                        Message::Close(close) => {
                            panic!("the server closed the WebSocket: {close:?}")
                        }
                        _ => continue,
                    },
                    Link::Polling(uri) => {
                        let polled = request(self.addr, "GET", uri, b"");
                        assert_eq!(polled.status, 200, "poll: {polled:?}");
                        self.inbox
                            .extend(polled.body.split('\x1e').map(str::to_owned));
                        continue;
                    }
                },
            };
            if packet == "2" {
                self.send(&["3"]);
                continue;
            }
            return packet;
        }
    }

    /// Emits `event` (a JSON array: name, then arguments) with ack id `id`, and returns the
    /// acknowledgement's arguments, which must be the next packet.
    fn call(&mut self, id: u64, event: &str) -> Value {
        self.send(&[&format!("42{id}{event}")]);
        self.ack(id)
    }

    /// Ends the Engine.IO connection: an Engine.IO close over polling, a WebSocket close (its
    /// answer read) over WebSocket.
    fn close(self) {
        match self.link {
            Link::WebSocket(mut ws) => {
                ws.close(None).expect("send the close");
                while ws.read().is_ok() {}
            }
            Link::Polling(uri) => {
                let posted = request(self.addr, "POST", &uri, b"1");
                assert_eq!(posted.status, 200, "close: {posted:?}");
            }
        }
    }

    /// The arguments of acknowledgement `id`, which must be the next packet.
    fn ack(&mut self, id: u64) -> Value {
        let packet = self.next();
        let Some(args) = packet.strip_prefix(&format!("43{id}")) else {
            panic!("acknowledgement {id} expected, got {packet:?}");
        };
        serde_json::from_str(args).unwrap_or_else(|e| panic!("{e}: {packet}"))
    }
}

/// Where `meet` handlers wait for each other: all of them get in at once only when as many
/// workers as the pool started are still taking jobs.
#[derive(Default)]
struct Rendezvous {
    inside: Mutex<usize>,
    arrived: Condvar,
}

impl Rendezvous {
    /// True once [`THREADS`] handlers are inside at once; false when they are not within
    /// [`MEET_WAIT`] (a worker missing: the others would wait for it forever).
    fn meet(&self) -> bool {
        let mut inside = self.inside.lock().expect("rendezvous lock");
        *inside += 1;
        self.arrived.notify_all();
        let (inside, _) = self
            .arrived
            .wait_timeout_while(inside, MEET_WAIT, |inside| *inside < THREADS)
            .expect("rendezvous lock");
        *inside >= THREADS
    }
}

/// The disconnect handler's reason, and whether it was about to panic.
type Disconnects = Receiver<(String, bool)>;

/// A server with a pool of [`THREADS`] workers, one handler at a time per client. Its `boom`
/// handler panics, its connect handler panics for `auth.panic == "connect"`, its disconnect
/// handler panics for sockets that sent `mark`, `ping` answers its number plus one and `meet`
/// answers [`Rendezvous::meet`].
fn panicking_server(async_handlers: bool) -> (Server, Disconnects) {
    let io = Server::builder()
        .async_handlers(async_handlers)
        .handler_threads(THREADS)
        .handlers_per_client(1)
        .build();
    let disconnects = support::add_panicking_handlers(&io);
    let rendezvous = Arc::new(Rendezvous::default());
    io.on("meet", move |_socket: Socket, _: Option<Value>| {
        rendezvous.meet()
    });
    (io, disconnects)
}

/// Every client sends [`PANICS`] panicking events asking for acknowledgements, then `ping`.
fn panicking_events_leave_the_connections_and_the_pool_serving(
    async_handlers: bool,
    transport: Transport,
) {
    let (io, disconnects) = panicking_server(async_handlers);
    let addr = serve(&io);
    let mut clients: Vec<Client> = (0..THREADS)
        .map(|_| Client::joined(addr, transport))
        .collect();
    let booms: Vec<String> = (1..=PANICS)
        .map(|id| format!(r#"42{id}["boom"]"#))
        .collect();
    let booms: Vec<&str> = booms.iter().map(String::as_str).collect();
    for client in &mut clients {
        client.send(&booms);
        // A client's events are handled one at a time, in order: the ping's acknowledgement
        // coming next says that no `boom` got one, and that the panics left this client's
        // handler slot, and the pool's workers, free.
        assert_eq!(
            client.call(PANICS + 1, r#"["ping",1]"#),
            json!([2]),
            "{transport:?}"
        );
    }
    // The first connection is still served after the others' panics.
    assert_eq!(
        clients[0].call(PANICS + 2, r#"["ping",2]"#),
        json!([3]),
        "{transport:?}"
    );
    // Each worker is still there: as many handlers as the pool has workers run at once.
    for client in &mut clients {
        client.send(&[r#"4290["meet"]"#]);
    }
    for client in &mut clients {
        assert_eq!(
            client.ack(90),
            json!([true]),
            "{transport:?}: a worker is missing"
        );
    }
    // And a new client is served.
    let mut late = Client::joined(addr, transport);
    assert_eq!(late.call(1, r#"["ping",41]"#), json!([42]), "{transport:?}");

    for client in clients.iter_mut().chain([&mut late]) {
        client.send(&["41"]);
    }
    for _ in 0..=THREADS {
        assert_eq!(
            recv(&disconnects, "the disconnect handler"),
            ("client namespace disconnect".to_owned(), false)
        );
    }
    clients.into_iter().chain([late]).for_each(Client::close);
    // Nothing is left behind: every connection is cleaned up within the grace.
    io.shutdown(Duration::from_secs(5));
    assert_eq!(io.connection_count(), 0, "{transport:?}");
}

#[test]
fn panicking_event_handlers_with_async_handlers() {
    for transport in TRANSPORTS {
        panicking_events_leave_the_connections_and_the_pool_serving(true, transport);
    }
}

#[test]
fn panicking_event_handlers_with_sync_handlers() {
    for transport in TRANSPORTS {
        panicking_events_leave_the_connections_and_the_pool_serving(false, transport);
    }
}

/// A panicking connect handler refuses that connect only: the same connection can join again,
/// and other clients are served.
#[test]
fn a_panicking_connect_handler_refuses_that_connect_only() {
    let (io, _disconnects) = panicking_server(true);
    let addr = serve(&io);
    for transport in TRANSPORTS {
        let mut client = Client::open(addr, transport);
        for _ in 0..PANICS {
            let (kind, answer) = client.try_join(Some(json!({"panic": "connect"})));
            assert_eq!(kind, "44", "{transport:?}: {answer}");
            assert_eq!(
                answer["message"], "internal server error",
                "{transport:?}: {answer}"
            );
        }
        client.join(None);
        assert_eq!(client.call(1, r#"["ping",1]"#), json!([2]), "{transport:?}");
        let mut other = Client::joined(addr, transport);
        assert_eq!(other.call(1, r#"["ping",2]"#), json!([3]), "{transport:?}");
    }
    io.abort();
}

/// A panicking disconnect handler leaves the connection able to join again, and the server
/// serving it and others.
#[test]
fn a_panicking_disconnect_handler_leaves_the_connection_working() {
    let (io, disconnects) = panicking_server(true);
    let addr = serve(&io);
    for transport in TRANSPORTS {
        let mut client = Client::joined(addr, transport);
        for round in 0..PANICS {
            assert_eq!(client.call(1, r#"["mark"]"#), json!([]), "{transport:?}");
            client.send(&["41"]);
            assert_eq!(
                recv(&disconnects, "the panicking disconnect handler"),
                ("client namespace disconnect".to_owned(), true),
                "{transport:?}, round {round}"
            );
            client.join(None);
            assert_eq!(client.call(2, r#"["ping",1]"#), json!([2]), "{transport:?}");
        }
        let mut other = Client::joined(addr, transport);
        assert_eq!(other.call(1, r#"["ping",2]"#), json!([3]), "{transport:?}");
    }
    io.abort();
}

/// An emit callback runs on the thread that read the answer (the WebSocket's reader, or the
/// POST's): its panic must leave that connection reading, and later callbacks called.
#[test]
fn a_panicking_emit_callback_leaves_the_connection_working() {
    let (io, _disconnects) = panicking_server(true);
    let addr = serve(&io);
    for transport in TRANSPORTS {
        let mut client = Client::open(addr, transport);
        let sid = client.join(None)["sid"]
            .as_str()
            .expect("the socket's sid")
            .to_owned();
        let (called_tx, called) = channel();
        io.emit("question", &"first")
            .to(&sid)
            .callback(Some(STEP), move |_: Result<Value, _>| {
                let _ = called_tx.send(());
                panic!("test panic in an emit callback");
            })
            .send()
            .expect("emit");
        answer_question(&mut client, "first", "answer");
        recv(&called, "the panicking callback");
        assert_eq!(client.call(1, r#"["ping",1]"#), json!([2]), "{transport:?}");

        let (answer_tx, answers) = channel();
        io.emit("question", &"second")
            .to(&sid)
            .callback(Some(STEP), move |answer: Result<String, _>| {
                let _ = answer_tx.send(answer.ok());
            })
            .send()
            .expect("emit");
        answer_question(&mut client, "second", "another answer");
        assert_eq!(
            recv(&answers, "the second callback"),
            Some("another answer".to_owned()),
            "{transport:?}"
        );
    }
    io.abort();
}

/// Reads the server's `question` (with argument `asked`) and acknowledges it with `answer`.
fn answer_question(client: &mut Client, asked: &str, answer: &str) {
    let packet = client.next();
    let rest = packet
        .strip_prefix("42")
        .unwrap_or_else(|| panic!("an event expected, got {packet:?}"));
    let id: String = rest.chars().take_while(char::is_ascii_digit).collect();
    assert_eq!(&rest[id.len()..], json!(["question", asked]).to_string());
    client.send(&[&format!("43{id}{}", json!([answer]))]);
}

/// A panicking background task (a thread of its own) is reported by `join`; the server serves on.
#[test]
fn a_panicking_background_task_is_reported_by_join() {
    let (io, _disconnects) = panicking_server(true);
    let addr = serve(&io);
    let task = io.start_background_task(|| -> u32 { panic!("test panic in a background task") });
    assert_eq!(task.join(), None);
    let mut client = Client::joined(addr, Transport::WebSocket);
    assert_eq!(client.call(1, r#"["ping",1]"#), json!([2]));
    io.abort();
}

/// Application code that runs on a connection's own thread (here a CORS predicate) and panics
/// ends that connection: the client sees it close at once, as on the async runtimes, instead of
/// waiting on a connection nobody serves until the server is aborted. The server goes on.
#[test]
fn a_panic_on_a_connection_thread_closes_that_connection() {
    use std::io::{Read, Write};

    use sockio_threads::AllowedOrigins;

    let io = Server::builder()
        .cors_allowed_origins(AllowedOrigins::Predicate(Arc::new(|origin: &str| {
            assert_ne!(
                origin, "http://panic",
                "the predicate panics on this origin"
            );
            true
        })))
        .build();
    io.on("ping", |_socket: Socket, n: u32| n + 1);
    let addr = serve(&io);
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(STEP)).expect("read timeout");
    stream
        .write_all(
            b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nOrigin: http://panic\r\n\r\n",
        )
        .expect("write the request");
    let mut answer = Vec::new();
    let ended = stream.read_to_end(&mut answer);
    assert!(
        ended.is_ok(),
        "the connection stayed open after its thread panicked: {ended:?}, read {answer:?}"
    );
    let mut other = Client::joined(addr, Transport::Polling);
    assert_eq!(other.call(1, r#"["ping",1]"#), json!([2]));
    io.abort();
}

/// Panics when dropped: a handler holding one panics when it is replaced.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("a handler's capture panicked on drop");
    }
}

/// A registration that panics (here the `Drop` of the handler it replaces) poisons the handler
/// registry, which stays whole: it is read on, so the connect handler still refuses what it
/// refuses and events still reach their handlers (reading it as empty had accepted every
/// connect unchecked and dropped every event).
#[test]
fn a_registration_that_panics_leaves_the_handlers_in_force() {
    let (io, _disconnects) = panicking_server(true);
    let held = PanicsOnDrop;
    io.on("spare", move |_socket: Socket, _: Option<Value>| {
        let _ = &held;
    });
    let replaced = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        io.on("spare", |_socket: Socket, _: Option<Value>| {});
    }));
    assert!(replaced.is_err(), "the replaced handler's drop panics");
    let addr = serve(&io);
    for transport in TRANSPORTS {
        let mut client = Client::open(addr, transport);
        let (kind, answer) = client.try_join(Some(json!({"panic": "connect"})));
        assert_eq!(kind, "44", "{transport:?}: {answer}");
        client.join(None);
        assert_eq!(client.call(1, r#"["ping",1]"#), json!([2]), "{transport:?}");
    }
    io.abort();
}
