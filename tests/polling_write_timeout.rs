//! A polling client that asks for its queued packets and never reads the answer: on every
//! runtime the connection is cut once the write has waited the write timeout (`ping_interval +
//! ping_timeout`) without the client taking anything, so the unsent answer and the socket are
//! freed (the threads runtime used a fixed 30 s send timeout until it took the configured one).

mod std_serving;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use sockio::server::{Runtime, Server};
use sockio_testkit::raw_polling::{SocketBuffers, open, request, session_uri};
use std_serving::{Work, serve_std_on, tokio_block_on};

const PING: Duration = Duration::from_millis(500);

/// Twice what the socket buffers between the server and a client that does not read hold.
fn payload() -> usize {
    let buffers = SocketBuffers::of_this_machine();
    2 * (buffers.send_max + buffers.receive_unread)
}

fn serve<Rt: Runtime>(block_on: fn(Work<'static>)) -> (Server<Rt>, SocketAddr) {
    let io = Server::<Rt>::builder()
        .ping_interval(PING)
        .ping_timeout(PING)
        .max_buffered(10_000, 2 * payload())
        .build();
    let addr = serve_std_on(&io, block_on);
    (io, addr)
}

fn check<Rt: Runtime>(io: &Server<Rt>, addr: SocketAddr, block_on: impl Fn(Work<'_>)) {
    check_unread_answer(addr, |big| {
        block_on(Box::pin(async {
            io.emit("big", big).await.expect("emit");
        }))
    });
}

/// Connects a polling client to `/` at `addr`, has `emit_big` send it a packet bigger than the
/// socket buffers, asks for it and does not read: the answer must be cut off.
fn check_unread_answer(addr: SocketAddr, emit_big: impl FnOnce(&str)) {
    let sid = open(addr, "/socket.io/");
    let uri = session_uri("/socket.io/", &sid);
    assert_eq!(request(addr, "POST", &uri, b"40").status, 200);
    let connected = request(addr, "GET", &uri, b"");
    assert!(connected.body.starts_with("40"), "{connected:?}");
    // A packet bigger than the socket buffers waits in the session's queue.
    emit_big(&"x".repeat(payload()));

    let mut reader = TcpStream::connect(addr).expect("connect");
    reader
        .write_all(format!("GET {uri} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .expect("write the GET");
    // Not read for far longer than the write timeout (a second here).
    std::thread::sleep(Duration::from_secs(4));
    reader
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    let started = Instant::now();
    let mut received = 0usize;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => received += read,
            Err(error) if error.kind() == ErrorKind::ConnectionReset => break,
            Err(error) => panic!("the connection was neither finished nor cut: {error}"),
        }
    }
    assert!(
        received < payload(),
        "the whole answer ({received} bytes) was still there after {:?}: the server kept waiting for a client that took nothing",
        started.elapsed()
    );
}

#[test]
fn an_unread_polling_answer_is_cut_on_tokio() {
    let (io, addr) = serve::<sockio_tokio::Tokio>(tokio_block_on);
    check(&io, addr, |future| tokio_block_on(future));
}

#[test]
fn an_unread_polling_answer_is_cut_on_smol() {
    let (io, addr) = serve::<sockio_smol::Smol>(smol::block_on);
    check(&io, addr, |future| smol::block_on(future));
}

#[test]
fn an_unread_polling_answer_is_cut_on_threads() {
    let io = sockio_threads::Server::builder()
        .ping_interval(PING)
        .ping_timeout(PING)
        .max_buffered(10_000, 2 * payload())
        .build();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let serving = io.clone();
    std::thread::spawn(move || serving.serve_std(listener));
    check_unread_answer(addr, |big| io.emit("big", big).send().expect("emit"));
}
