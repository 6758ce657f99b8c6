//! `http_header_timeout` on every runtime: a connection that stops in the middle of its request
//! head or of its body, or sends nothing at all, is closed once the timeout passes, and complete
//! requests are still answered.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use sockio::server::{Runtime, Server};

// Long enough that a loaded machine's stalls fit in its thirds (at 300 ms, the margins of
// 100 ms in `check_kept_alive` were taken twelve times a run).
const TIMEOUT: Duration = Duration::from_secs(1);
const HANDSHAKE: &str = "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n";

fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    (listener, addr)
}

fn serve_async<Rt: Runtime>(
    timeout: Duration,
    block_on: fn(std::pin::Pin<Box<dyn Future<Output = ()>>>),
) -> SocketAddr {
    let io = Server::<Rt>::builder().http_header_timeout(timeout).build();
    let (listener, addr) = bind();
    std::thread::spawn(move || {
        block_on(Box::pin(async move {
            let _ = io.serve_std(listener).await;
        }))
    });
    addr
}

fn serve_threads(timeout: Duration) -> SocketAddr {
    let io = sockio_threads::Server::builder()
        .http_header_timeout(timeout)
        .build();
    let (listener, addr) = bind();
    std::thread::spawn(move || io.serve_std(listener));
    addr
}

/// What a half-sent head gets, a connection that sends nothing, and a whole head on another
/// connection.
fn check(addr: SocketAddr) {
    let mut stuck = TcpStream::connect(addr).expect("connect");
    stuck
        .write_all(HANDSHAKE.as_bytes())
        .expect("write half a head");
    expect_closed(stuck);
    expect_closed(TcpStream::connect(addr).expect("connect"));
    // A whole head announcing a body that never comes (a handshake, then a session's POST).
    let mut bodiless = TcpStream::connect(addr).expect("connect");
    bodiless
        .write_all(format!("{HANDSHAKE}Content-Length: 100\r\n\r\n").as_bytes())
        .expect("write a head");
    expect_closed(bodiless);
    let sid = sockio_testkit::raw_polling::open(addr, "/socket.io/");
    let uri = sockio_testkit::raw_polling::session_uri("/socket.io/", &sid);
    expect_closed(sockio_testkit::raw_polling::unfinished_post(
        addr, &uri, 100, b"4",
    ));

    let mut whole = TcpStream::connect(addr).expect("connect");
    whole
        .write_all(format!("{HANDSHAKE}Connection: close\r\n\r\n").as_bytes())
        .expect("write a head");
    let mut answer = String::new();
    whole.read_to_string(&mut answer).expect("the handshake");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"sid\""), "{answer}");
}

/// Waits for the server to close `stuck`, which sent an unfinished request or nothing.
fn expect_closed(mut stuck: TcpStream) {
    // Far longer than TIMEOUT: the read returns because the server closed the connection.
    stuck
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    let mut answer = Vec::new();
    match stuck.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(error) if error.kind() == ErrorKind::ConnectionReset => {}
        Err(error) => panic!("the stuck connection was not closed: {error}"),
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
}

fn block_on_tokio(future: std::pin::Pin<Box<dyn Future<Output = ()>>>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

#[test]
fn a_half_sent_head_is_closed_on_tokio() {
    check(serve_async::<sockio_tokio::Tokio>(TIMEOUT, block_on_tokio));
}

#[test]
fn a_half_sent_head_is_closed_on_smol() {
    check(serve_async::<sockio_smol::Smol>(TIMEOUT, smol::block_on));
}

#[test]
fn a_half_sent_head_is_closed_on_threads() {
    check(serve_threads(TIMEOUT));
}

/// A zero timeout is none, on every runtime: it dropped every connection at once on tokio and
/// smol, and on threads left the 1 s read timeout the listener's sockets start with.
fn check_no_timeout(addr: SocketAddr) {
    let mut late = TcpStream::connect(addr).expect("connect");
    std::thread::sleep(Duration::from_millis(1500));
    late.write_all(format!("{HANDSHAKE}Connection: close\r\n\r\n").as_bytes())
        .expect("write a head");
    let mut answer = String::new();
    late.read_to_string(&mut answer).expect("the handshake");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn a_zero_header_timeout_is_none_on_tokio() {
    check_no_timeout(serve_async::<sockio_tokio::Tokio>(
        Duration::ZERO,
        block_on_tokio,
    ));
}

#[test]
fn a_zero_header_timeout_is_none_on_smol() {
    check_no_timeout(serve_async::<sockio_smol::Smol>(
        Duration::ZERO,
        smol::block_on,
    ));
}

#[test]
fn a_zero_header_timeout_is_none_on_threads() {
    check_no_timeout(serve_threads(Duration::ZERO));
}

/// A kept-alive connection: requests that each come within the timeout of the previous answer
/// are answered for longer than the timeout in all (the timeout counts from each answer, not from
/// the first), and a head it then leaves unfinished is closed. On tokio and smol the requests'
/// timeouts share one runtime timer per connection (server/src/http1.rs), which fires early for
/// all but the first and must neither close the connection then nor forget the later deadline.
fn check_kept_alive(addr: SocketAddr) {
    let mut kept = TcpStream::connect(addr).expect("connect");
    kept.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    for request in 0..5 {
        if request > 0 {
            // The client's think time, 4 times: two thirds of the timeout, so that the shared
            // timer, armed for the first request's deadline, fires a third of the timeout
            // before the third request, and each request still comes a third of the timeout
            // before its own deadline (margins of a third of the timeout both ways).
            std::thread::sleep(TIMEOUT * 2 / 3);
        }
        kept.write_all(format!("{HANDSHAKE}\r\n").as_bytes())
            .expect("write a head");
        let answer = read_one_answer(&mut kept);
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "request {request}: {answer}"
        );
    }
    kept.write_all(HANDSHAKE.as_bytes())
        .expect("write half a head");
    expect_closed(kept);

    // A head left unfinished while the shared timer is still armed for the previous request's
    // deadline (a third of the timeout before this one's): closed only if the early wake arms it
    // again.
    let mut kept = TcpStream::connect(addr).expect("connect");
    kept.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    for request in 0..2 {
        if request > 0 {
            std::thread::sleep(TIMEOUT / 3);
        }
        kept.write_all(format!("{HANDSHAKE}\r\n").as_bytes())
            .expect("write a head");
        let answer = read_one_answer(&mut kept);
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "request {request}: {answer}"
        );
    }
    kept.write_all(HANDSHAKE.as_bytes())
        .expect("write half a head");
    expect_closed(kept);
}

/// Reads one answer (head and `Content-Length` body) from a kept-alive connection.
fn read_one_answer(stream: &mut TcpStream) -> String {
    let mut raw = Vec::new();
    let mut byte = [0];
    while !raw.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => raw.push(byte[0]),
            other => panic!(
                "the connection ended in an answer's head ({other:?}): {}",
                String::from_utf8_lossy(&raw)
            ),
        }
    }
    let head = String::from_utf8_lossy(&raw).into_owned();
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or_else(|| panic!("no Content-Length in {head}"));
    let mut body = vec![0; length];
    stream.read_exact(&mut body).expect("the answer's body");
    head + &String::from_utf8_lossy(&body)
}

#[test]
fn a_kept_alive_connection_is_timed_from_each_answer_on_tokio() {
    check_kept_alive(serve_async::<sockio_tokio::Tokio>(TIMEOUT, block_on_tokio));
}

#[test]
fn a_kept_alive_connection_is_timed_from_each_answer_on_smol() {
    check_kept_alive(serve_async::<sockio_smol::Smol>(TIMEOUT, smol::block_on));
}

#[test]
fn a_kept_alive_connection_is_timed_from_each_answer_on_threads() {
    check_kept_alive(serve_threads(TIMEOUT));
}
