//! A handler that emits more bytes than a client's outbound queue holds (`max_buffered_bytes`,
//! 16 MiB by default) in large messages, to a client that reads as fast as it can: every message
//! arrives. Emits yielded once when they left a queue more than half full, which lets the writer
//! take a small message but not a large one: the queue reached its limit and the client was
//! closed with `outbound queue full` (9 of 400 messages of 500 KB arrived, heartbeat-under-load
//! audit; `testkit/clients/node/room-burst.js`), and concurrent handlers each emitting one
//! large message did the same. An emit now waits, before it queues, while a recipient's queue is
//! over half full and its writer is taking data.

#[path = "support/in_process.rs"]
mod in_process;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use in_process::{
    ReceiveBuffer, join_over_websocket, join_over_websocket_with, serve_async, serve_threads,
};
use serde_json::Value;
use sockio_server::{Runtime, Server, Socket};
use tungstenite::Message;

/// 40 MB in all, more than the default queue limit and the sockets' buffers together.
const MESSAGES: usize = 200;
const SIZE: usize = 200_000;

/// How many messages of how many bytes a `burst` event asks for.
#[derive(Clone, Copy)]
struct Burst {
    messages: usize,
    size: usize,
}

/// [`MESSAGES`] of [`SIZE`].
const LARGE: Burst = Burst {
    messages: MESSAGES,
    size: SIZE,
};

/// The messages and size a `burst` event's argument asks for (`{"n": .., "size": ..}`), or
/// [`LARGE`].
fn asked(spec: &Value) -> Burst {
    let field = |name: &str, default: usize| {
        spec.get(name)
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(default)
    };
    Burst {
        messages: field("n", MESSAGES),
        size: field("size", SIZE),
    }
}
/// `max_buffered_bytes`' default.
const DEFAULT_QUEUE: usize = 16 * 1024 * 1024;

/// The server's heartbeat: ping interval and ping timeout.
type Heartbeat = (Duration, Duration);

/// The defaults, 25 s and 20 s: no ping comes during a burst.
const DEFAULT_HEARTBEAT: Heartbeat = (Duration::from_secs(25), Duration::from_secs(20));

/// A ping every half second, answered within 2 s: several come during a burst, while a slow
/// client's queue holds more than 2 s of its reading.
const QUICK_HEARTBEAT: Heartbeat = (Duration::from_millis(500), Duration::from_secs(2));

/// `burst` emits the messages to the room `burst`; every client joins it as it connects, the one
/// that asks included. Each client's outbound queue holds `queue_bytes`.
fn server<Rt: Runtime>(queue_bytes: usize, (interval, timeout): Heartbeat) -> Server<Rt> {
    let io = Server::<Rt>::builder()
        .max_buffered(10_000, queue_bytes)
        .ping_interval(interval)
        .ping_timeout(timeout)
        .build();
    io.on_connect(
        |socket: Socket<Rt>, _handshake, _auth: Option<Value>| async move {
            socket.enter_room("burst").expect("joined");
            Ok(())
        },
    );
    io.on("one", |socket: Socket<Rt>, _: Value| async move {
        let data = "x".repeat(SIZE);
        socket
            .server()
            .emit("m", &data)
            .to("burst")
            .await
            .expect("emit");
    });
    // Answers (when asked) the longest any one of its emits took, in milliseconds.
    io.on("burst", |socket: Socket<Rt>, spec: Value| async move {
        let Burst { messages, size } = asked(&spec);
        let data = "x".repeat(size);
        let mut longest = Duration::ZERO;
        for _ in 0..messages {
            let started = Instant::now();
            socket
                .server()
                .emit("m", &data)
                .to("burst")
                .await
                .expect("emit");
            longest = longest.max(started.elapsed());
        }
        u64::try_from(longest.as_millis()).unwrap_or(u64::MAX)
    });
    io
}

/// The same server on the threads runtime.
fn threads_server(queue_bytes: usize, (interval, timeout): Heartbeat) -> sockio_threads::Server {
    let io = sockio_threads::Server::builder()
        .max_buffered(10_000, queue_bytes)
        .ping_interval(interval)
        .ping_timeout(timeout)
        .build();
    io.on_connect(
        |socket: sockio_threads::Socket, _handshake, _auth: Option<Value>| {
            socket.enter_room("burst").expect("joined");
            Ok(())
        },
    );
    io.on("one", |socket: sockio_threads::Socket, _: Value| {
        let data = "x".repeat(SIZE);
        socket
            .server()
            .emit("m", &data)
            .to("burst")
            .send()
            .expect("emit");
    });
    // Answers (when asked) the longest any one of its emits took, in milliseconds.
    io.on("burst", |socket: sockio_threads::Socket, spec: Value| {
        let Burst { messages, size } = asked(&spec);
        let data = "x".repeat(size);
        let mut longest = Duration::ZERO;
        for _ in 0..messages {
            let started = Instant::now();
            socket
                .server()
                .emit("m", &data)
                .to("burst")
                .send()
                .expect("emit");
            longest = longest.max(started.elapsed());
        }
        u64::try_from(longest.as_millis()).unwrap_or(u64::MAX)
    });
    io
}

type Client = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

/// How a client asks for the burst.
#[derive(Clone, Copy)]
enum Ask {
    /// It does not.
    Not,
    /// One `burst` event, whose handler emits every message.
    InOneEvent,
    /// One `one` event per message, whose handlers emit one each (concurrently, on the async
    /// runtimes' default `async_handlers`, and on the threads runtime's handler pool).
    EventByEvent,
}

/// Asks for the burst as `ask` says, then counts what arrives until the last message or the end
/// of the connection, taking `pace` over each message (a client slower than the server's emits
/// that still reads on).
fn read_burst(mut ws: Client, ask: Ask, burst: Burst, pace: Duration) -> usize {
    match ask {
        Ask::Not => {}
        Ask::InOneEvent => {
            let Burst { messages, size } = burst;
            let event = format!(r#"42["burst",{{"n":{messages},"size":{size}}}]"#);
            ws.send(Message::text(event)).expect("burst");
        }
        Ask::EventByEvent => {
            for _ in 0..burst.messages {
                ws.send(Message::text(r#"42["one",{}]"#)).expect("one");
            }
        }
    }
    let mut received = 0;
    while received < burst.messages {
        match ws.read() {
            Ok(Message::Text(text)) if text.starts_with(r#"42["m","#) => {
                received += 1;
                std::thread::sleep(pace);
            }
            Ok(Message::Text(text)) if text.as_str() == "2" => {
                let _ = ws.send(Message::text("3"));
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    received
}

/// The asking client and another one, both in the room (joined before their CONNECT is
/// answered), each read everything; the other one reads at 50 messages a second, 10 MB/s.
fn both_read_everything(addr: SocketAddr, ask: Ask) {
    both_read_the_burst(addr, ask, LARGE, Duration::from_millis(20));
}

/// What a paced client's kernel may hold for it unread: 64 KiB (128 KiB as Linux counts it).
/// These tests measure how long pings wait behind what the server holds, in its queue and its
/// socket; left to grow, the client's own buffer took about 1.2 MB, 1.2 s of reading at 1 MB/s
/// and more on a loaded machine, where a paced client reads slower than its pace (a CI run on
/// 56423bc: the other client's connection ended after 604 of 800 messages, most likely on the
/// 3 s ping timeout).
const PACED_RECEIVE: ReceiveBuffer = ReceiveBuffer::AtMost(64 * 1024);

/// The asking client and another one each read all of `burst`, the other taking `pace` over
/// each message.
fn both_read_the_burst(addr: SocketAddr, ask: Ask, burst: Burst, pace: Duration) {
    let other = join_over_websocket_with(addr, Duration::from_secs(20), PACED_RECEIVE);
    let asker = join_over_websocket(addr, Duration::from_secs(20));
    let other = std::thread::spawn(move || read_burst(other, Ask::Not, burst, pace));
    assert_eq!(
        read_burst(asker, ask, burst, Duration::ZERO),
        burst.messages,
        "the asking client"
    );
    assert_eq!(
        other.join().expect("joined"),
        burst.messages,
        "the other client"
    );
}

#[test]
fn a_burst_of_large_emits_arrives_whole_on_tokio() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let _entered = runtime.enter();
    let io = server::<sockio_tokio::Tokio>(DEFAULT_QUEUE, DEFAULT_HEARTBEAT);
    both_read_everything(serve_async(&io), Ask::InOneEvent);
}

#[test]
fn large_emits_from_concurrent_handlers_arrive_whole_on_tokio() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let _entered = runtime.enter();
    let io = server::<sockio_tokio::Tokio>(DEFAULT_QUEUE, DEFAULT_HEARTBEAT);
    both_read_everything(serve_async(&io), Ask::EventByEvent);
}

#[test]
fn a_burst_of_large_emits_arrives_whole_on_smol() {
    let io = server::<sockio_smol::Smol>(DEFAULT_QUEUE, DEFAULT_HEARTBEAT);
    both_read_everything(serve_async(&io), Ask::InOneEvent);
}

#[test]
fn large_emits_from_concurrent_handlers_arrive_whole_on_smol() {
    let io = server::<sockio_smol::Smol>(DEFAULT_QUEUE, DEFAULT_HEARTBEAT);
    both_read_everything(serve_async(&io), Ask::EventByEvent);
}

/// A client in the room that stopped reading does not hold up the emits to the others: the emit
/// stops waiting for a writer that takes nothing for a second, and later emits do not wait for
/// it again (it is closed once its queue is full). With a 32 MiB queue, waiting a second at each
/// emit until then held the asking client's burst up for over a minute; it takes a few seconds.
fn a_stuck_client_does_not_hold_up_the_others(addr: SocketAddr) {
    let stuck = join_over_websocket(addr, Duration::from_secs(20));
    let asker = join_over_websocket(addr, Duration::from_secs(20));
    let started = Instant::now();
    assert_eq!(
        read_burst(asker, Ask::InOneEvent, LARGE, Duration::ZERO),
        MESSAGES,
        "the asking client"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the burst took {:?} beside a client that stopped reading",
        started.elapsed()
    );
    drop(stuck);
}

/// Clients in the room that stopped reading hold an emit up once, side by side, each for the
/// second (`WRITER_STALL`) its writer is given: the longest of a burst's emits (the handler times
/// each) stays under three stalls beside four of them, where waiting for them one after another
/// took four.
fn stuck_clients_are_waited_for_side_by_side(addr: SocketAddr) {
    let stuck: Vec<Client> = (0..4)
        .map(|_| join_over_websocket_with(addr, Duration::from_secs(20), PACED_RECEIVE))
        .collect();
    let mut asker = join_over_websocket(addr, Duration::from_secs(20));
    let messages = 60;
    asker
        .send(Message::text(format!(
            r#"421["burst",{{"n":{messages},"size":{SIZE}}}]"#
        )))
        .expect("burst");
    let (mut received, mut longest) = (0, None);
    while longest.is_none() {
        match asker.read().expect("the burst and its answer") {
            Message::Text(text) if text.starts_with(r#"42["m","#) => received += 1,
            Message::Text(text) if text.as_str() == "2" => {
                let _ = asker.send(Message::text("3"));
            }
            Message::Text(text) if text.starts_with("431[") => {
                longest = text["431[".len()..text.len() - 1].parse::<u64>().ok();
            }
            _ => {}
        }
    }
    assert_eq!(received, messages, "the asking client");
    let longest = Duration::from_millis(longest.unwrap_or(u64::MAX));
    // Three stalls: one side by side, four one after another.
    assert!(
        longest < 3 * sockio_core::writer_wait::WRITER_STALL,
        "an emit waited {longest:?} beside four clients that stopped reading"
    );
    drop(stuck);
}

#[test]
fn stuck_clients_are_waited_for_side_by_side_on_tokio() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let _entered = runtime.enter();
    let io = server::<sockio_tokio::Tokio>(DEFAULT_QUEUE / 4, DEFAULT_HEARTBEAT);
    stuck_clients_are_waited_for_side_by_side(serve_async(&io));
}

#[test]
fn stuck_clients_are_waited_for_side_by_side_on_smol() {
    let io = server::<sockio_smol::Smol>(DEFAULT_QUEUE / 4, DEFAULT_HEARTBEAT);
    stuck_clients_are_waited_for_side_by_side(serve_async(&io));
}

#[test]
fn stuck_clients_are_waited_for_side_by_side_on_threads() {
    let io = threads_server(DEFAULT_QUEUE / 4, DEFAULT_HEARTBEAT);
    stuck_clients_are_waited_for_side_by_side(serve_threads(&io));
}

#[test]
fn a_burst_of_large_emits_arrives_whole_on_threads() {
    let io = threads_server(DEFAULT_QUEUE, DEFAULT_HEARTBEAT);
    both_read_everything(serve_threads(&io), Ask::InOneEvent);
}

#[test]
fn large_emits_from_concurrent_handlers_arrive_whole_on_threads() {
    let io = threads_server(DEFAULT_QUEUE, DEFAULT_HEARTBEAT);
    both_read_everything(serve_threads(&io), Ask::EventByEvent);
}

#[test]
fn a_stuck_client_does_not_hold_up_the_others_on_tokio() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let _entered = runtime.enter();
    let io = server::<sockio_tokio::Tokio>(2 * DEFAULT_QUEUE, DEFAULT_HEARTBEAT);
    a_stuck_client_does_not_hold_up_the_others(serve_async(&io));
}

#[test]
fn a_stuck_client_does_not_hold_up_the_others_on_smol() {
    let io = server::<sockio_smol::Smol>(2 * DEFAULT_QUEUE, DEFAULT_HEARTBEAT);
    a_stuck_client_does_not_hold_up_the_others(serve_async(&io));
}

#[test]
fn a_stuck_client_does_not_hold_up_the_others_on_threads() {
    let io = threads_server(2 * DEFAULT_QUEUE, DEFAULT_HEARTBEAT);
    a_stuck_client_does_not_hold_up_the_others(serve_threads(&io));
}

/// A client that reads slower than the burst comes keeps about half its queue full (the emits
/// wait there): with a 64 MiB queue, 3 s of its reading. The server's pings must not wait behind
/// that, or the client, reading all along, answers each one too late and is closed with `ping
/// timeout` (heartbeat-under-load audit: 20-40 s late behind the default queue's 8 MiB, closed
/// at about 46 s).
fn a_slow_reader_answers_pings_in_time(addr: SocketAddr) {
    both_read_everything(addr, Ask::InOneEvent);
}

#[test]
fn pings_do_not_wait_behind_a_slow_readers_backlog_on_tokio() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let _entered = runtime.enter();
    let io = server::<sockio_tokio::Tokio>(4 * DEFAULT_QUEUE, QUICK_HEARTBEAT);
    a_slow_reader_answers_pings_in_time(serve_async(&io));
}

#[test]
fn pings_do_not_wait_behind_a_slow_readers_backlog_on_smol() {
    let io = server::<sockio_smol::Smol>(4 * DEFAULT_QUEUE, QUICK_HEARTBEAT);
    a_slow_reader_answers_pings_in_time(serve_async(&io));
}

#[test]
fn pings_do_not_wait_behind_a_slow_readers_backlog_on_threads() {
    let io = threads_server(4 * DEFAULT_QUEUE, QUICK_HEARTBEAT);
    a_slow_reader_answers_pings_in_time(serve_threads(&io));
}

/// The same with a client reading 1 MB/s, in 10 KB messages: the backlog is 8 MiB in the core
/// and whatever the kernel takes. The kernel took up to its send buffer (4 MiB here, 4 s of this
/// reading, more than the ping timeout) until accepted sockets limited what it holds unsent
/// (`sockio_net::limit_unsent`); the socket also took writes again only once about half of that
/// had gone, so the writer looked stuck, emits stopped waiting, and the queue overflowed. The
/// ping timeout is 3 s (`PATIENT_HEARTBEAT`), under those 4 s, and not the 2 s of the other
/// heartbeat tests: on two loaded cores, with this file's other tests beside it, a reading thread
/// of the threads runtime once answered 2 s late (the CI run of f80ef16).
fn a_slow_reader_answers_pings_behind_the_kernels_buffers(addr: SocketAddr) {
    let burst = Burst {
        messages: 800,
        size: 10_000,
    };
    both_read_the_burst(addr, Ask::InOneEvent, burst, Duration::from_millis(10));
}

#[test]
fn pings_do_not_wait_behind_the_kernels_buffers_on_tokio() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let _entered = runtime.enter();
    let io = server::<sockio_tokio::Tokio>(DEFAULT_QUEUE, PATIENT_HEARTBEAT);
    a_slow_reader_answers_pings_behind_the_kernels_buffers(serve_async(&io));
}

#[test]
fn pings_do_not_wait_behind_the_kernels_buffers_on_smol() {
    let io = server::<sockio_smol::Smol>(DEFAULT_QUEUE, PATIENT_HEARTBEAT);
    a_slow_reader_answers_pings_behind_the_kernels_buffers(serve_async(&io));
}

#[test]
fn pings_do_not_wait_behind_the_kernels_buffers_on_threads() {
    let io = threads_server(DEFAULT_QUEUE, PATIENT_HEARTBEAT);
    a_slow_reader_answers_pings_behind_the_kernels_buffers(serve_threads(&io));
}

/// A ping every half second, answered within 3 s.
const PATIENT_HEARTBEAT: Heartbeat = (Duration::from_millis(500), Duration::from_secs(3));

/// A client that stops reading for a moment, longer than emits wait for a writer that takes
/// nothing (`WRITER_STALL`, 1 s), has the burst's emits queue without waiting for it: 14 MB of
/// its 16 MiB queue. Reading on at 1 MB/s, it keeps the queue over half full for about 5 s. The
/// threads runtime's reading thread waited for its writer all that time and the client's pongs
/// waited unread with it, past the ping timeout; what is read while the writer catches up is
/// now held, but for the heartbeat (`sockio_core::held_input`).
fn a_reader_back_from_a_pause_answers_pings_in_time(addr: SocketAddr) {
    let burst = Burst {
        messages: 1_400,
        size: 10_000,
    };
    let other = join_over_websocket_with(addr, Duration::from_secs(20), PACED_RECEIVE);
    let asker = join_over_websocket(addr, Duration::from_secs(20));
    let other = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1_500));
        read_burst(other, Ask::Not, burst, Duration::from_millis(10))
    });
    assert_eq!(
        read_burst(asker, Ask::InOneEvent, burst, Duration::ZERO),
        burst.messages,
        "the asking client"
    );
    assert_eq!(
        other.join().expect("joined"),
        burst.messages,
        "the client back from its pause"
    );
}

#[test]
fn pings_reach_a_reader_back_from_a_pause_on_tokio() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let _entered = runtime.enter();
    let io = server::<sockio_tokio::Tokio>(DEFAULT_QUEUE, PATIENT_HEARTBEAT);
    a_reader_back_from_a_pause_answers_pings_in_time(serve_async(&io));
}

#[test]
fn pings_reach_a_reader_back_from_a_pause_on_smol() {
    let io = server::<sockio_smol::Smol>(DEFAULT_QUEUE, PATIENT_HEARTBEAT);
    a_reader_back_from_a_pause_answers_pings_in_time(serve_async(&io));
}

#[test]
fn pings_reach_a_reader_back_from_a_pause_on_threads() {
    let io = threads_server(DEFAULT_QUEUE, PATIENT_HEARTBEAT);
    a_reader_back_from_a_pause_answers_pings_in_time(serve_threads(&io));
}

/// A raw Engine.IO server whose application sends 14 MB at once (its sends do not wait) to a
/// client reading 1 MB/s: the queue stays over half full for about 5 s, and the server reads only
/// the client's heartbeat meanwhile (what the client sends must wait for the writer, or a client
/// sending faster than it read would fill its queue with the answers). Every pong was left unread
/// with the rest, and the client, reading all along, was closed with `ping timeout`.
fn an_engine_io_client_answers_pings_behind_a_pushed_backlog(addr: SocketAddr) {
    let mut ws =
        in_process::open_websocket_with(addr, "engine.io", Duration::from_secs(20), PACED_RECEIVE);
    ws.send(Message::text("4start")).expect("start");
    let mut received = 0;
    while received < PUSHED {
        match ws.read() {
            Ok(Message::Text(text)) if text.starts_with('4') => {
                received += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(Message::Text(text)) if text.as_str() == "2" => {
                let _ = ws.send(Message::text("3"));
            }
            Ok(_) => {}
            Err(error) => panic!("after {received} messages: {error}"),
        }
    }
}

/// How many messages of 10 KB the raw Engine.IO server pushes.
const PUSHED: usize = 1_400;

fn pushing_engine_config() -> sockio_core::engineio::EngineConfig {
    let mut config = sockio_core::engineio::EngineConfig::default();
    (config.ping_interval, config.ping_timeout) = PATIENT_HEARTBEAT;
    config
}

fn push_burst(data: &sockio_core::engineio::PacketData) -> Option<String> {
    matches!(data, sockio_core::engineio::PacketData::Text(text) if text == "start")
        .then(|| "x".repeat(10_000))
}

fn serve_async_pushing_engine<Rt: Runtime>() -> SocketAddr {
    let engine = sockio_server::engine::EngineServer::<Rt>::new(pushing_engine_config());
    engine.on_message(|socket, data| {
        if let Some(message) = push_burst(&data) {
            for _ in 0..PUSHED {
                socket.send_text(&message).expect("queued");
            }
        }
    });
    in_process::serve_async_engine(engine)
}

#[test]
fn pings_reach_a_raw_engine_io_client_behind_a_pushed_backlog_on_tokio() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let _entered = runtime.enter();
    let addr = serve_async_pushing_engine::<sockio_tokio::Tokio>();
    an_engine_io_client_answers_pings_behind_a_pushed_backlog(addr);
}

#[test]
fn pings_reach_a_raw_engine_io_client_behind_a_pushed_backlog_on_smol() {
    let addr = serve_async_pushing_engine::<sockio_smol::Smol>();
    an_engine_io_client_answers_pings_behind_a_pushed_backlog(addr);
}

#[test]
fn pings_reach_a_raw_engine_io_client_behind_a_pushed_backlog_on_threads() {
    let engine = sockio_threads::engine::EngineServer::new(pushing_engine_config());
    engine.on_message(|socket, data| {
        if let Some(message) = push_burst(&data) {
            for _ in 0..PUSHED {
                socket.send_text(&message).expect("queued");
            }
        }
    });
    an_engine_io_client_answers_pings_behind_a_pushed_backlog(in_process::serve_threads_engine(
        engine,
    ));
}
