//! The threads runtime's own HTTP/1.1 server, byte by byte: how responses are framed (HEAD, 204,
//! `Connection: close`), which request heads it accepts (line ends, header values), chunked
//! request bodies, keep-alive and `Expect: 100-continue`. Raw bytes over a `TcpStream`, as a
//! client (or an attacker) sends them; several requests in one write check that each answer ends
//! where the next begins.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use sockio_threads::Server;

/// How long a read waits: far below the server's 30 s header timeout, so an answer the server
/// only gives when that runs out counts as none.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// One client connection, reading what the server sends as it comes.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    fn open(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("read timeout");
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads more; false at the end of the stream (or a reset). Fails the test on a timeout.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!(
                    "nothing more from the server within {READ_TIMEOUT:?}; so far {:?}",
                    String::from_utf8_lossy(&self.buf)
                )
            }
            Err(_) => false,
        }
    }

    /// The next response head (up to its empty line), taken out of what was read.
    fn head(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end + 4]).into_owned();
                self.buf.drain(..end + 4);
                return head;
            }
            assert!(
                self.fill(),
                "the connection ended before a whole response head: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        }
    }

    /// The next `n` bytes.
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill(), "the connection ended inside a body");
        }
        self.buf.drain(..n).collect()
    }

    /// The next response: its head and its body (as long as its `Content-Length` says).
    fn response(&mut self) -> (String, String) {
        let head = self.head();
        let length = content_length(&head).unwrap_or(0);
        let body = self.bytes(length);
        (head, String::from_utf8_lossy(&body).into_owned())
    }

    /// Asserts the server closes the connection without sending anything more.
    fn assert_closed(&mut self) {
        while self.fill() {}
        assert!(
            self.buf.is_empty(),
            "more after the last expected response: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
    }
}

fn status(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

fn content_length(head: &str) -> Option<usize> {
    header(head, "content-length").map(|v| v.parse().expect("a numeric Content-Length"))
}

fn serve(io: &Server) -> SocketAddr {
    support::serve(io)
}

/// A HEAD request is answered with the headers a GET gets, `Content-Length` included, and no
/// body: the next response on the connection starts right after the head.
#[test]
fn a_head_response_has_no_body() {
    let io = Server::builder().build();
    let addr = serve(&io);
    let mut client = Raw::open(addr);
    client.send(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
    let (get, body) = client.response();
    assert_eq!(status(&get), 404, "{get}");
    client.send(
        b"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\nGET /y HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    let head = client.head();
    assert_eq!(status(&head), 404, "{head}");
    assert_eq!(content_length(&head), Some(body.len()), "{head}");
    let next = client.head();
    assert!(next.starts_with("HTTP/1.1 404"), "{next:?}");
    assert_eq!(client.bytes(body.len()), body.as_bytes());
    client.assert_closed();
    io.abort();
}

/// Only SP and HTAB surround a header value: a CR, a form feed or another control byte there is
/// no whitespace, and such a request is refused (400, then the connection closes) instead of its
/// `Content-Length` being read as 3 and what follows the body served as a second request.
#[test]
fn control_bytes_around_a_header_value_are_refused() {
    let io = Server::builder().build();
    let addr = serve(&io);
    for length in [&b":\r3"[..], b": 3\x0c", b": 3\r"] {
        let mut client = Raw::open(addr);
        let mut request = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length".to_vec();
        request.extend_from_slice(length);
        request.extend_from_slice(b"\r\n\r\nabcGET /y HTTP/1.1\r\nHost: a\r\n\r\n");
        client.send(&request);
        let (head, _) = client.response();
        assert_eq!(
            status(&head),
            400,
            "{:?}: {head}",
            String::from_utf8_lossy(length)
        );
        client.assert_closed();
    }
    io.abort();
}

/// A response that says `Connection: close` ends its connection: the core's refusal of a
/// WebSocket upgrade (here for `Sec-WebSocket-Version: 12`) is followed by the end of the stream,
/// not by an answer to the request pipelined behind it.
#[test]
fn a_refused_upgrade_closes_the_connection() {
    let io = Server::builder().build();
    let addr = serve(&io);
    let mut client = Raw::open(addr);
    client.send(
        b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: a\r\n\
          Upgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 12\r\n\r\n\
          GET /x HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    let (head, _) = client.response();
    assert_eq!(status(&head), 400, "{head}");
    assert_eq!(header(&head, "connection"), Some("close"), "{head}");
    client.assert_closed();
    io.abort();
}

/// So does an application's answer saying `Connection: close`.
#[test]
fn a_fallback_answer_saying_close_closes_the_connection() {
    let io = Server::builder().build();
    let app = sockio_threads::Middleware::new(io.clone(), |_request| {
        let mut response = http::Response::new(bytes::Bytes::from_static(b"bye"));
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
        response
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || app.serve_std(listener));
    let mut client = Raw::open(addr);
    client.send(b"GET /bye HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n");
    let (head, body) = client.response();
    assert_eq!((status(&head), body.as_str()), (200, "bye"), "{head}");
    assert_eq!(header(&head, "connection"), Some("close"), "{head}");
    client.assert_closed();
    io.abort();
}

/// A fallback that answers a HEAD itself, with no body and the `Content-Length` its GET would
/// have, keeps that length; the next request on the connection is answered after it.
#[test]
fn a_fallbacks_head_answer_keeps_its_content_length() {
    let io = Server::builder().build();
    let app = sockio_threads::Middleware::new(io.clone(), |request| {
        let body: &'static [u8] = if request.method() == http::Method::HEAD {
            b""
        } else {
            b"0123456789"
        };
        let mut response = http::Response::new(bytes::Bytes::from_static(body));
        response.headers_mut().insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from_static("10"),
        );
        response
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || app.serve_std(listener));
    let mut client = Raw::open(addr);
    client.send(b"HEAD /file HTTP/1.1\r\nHost: a\r\n\r\nGET /file HTTP/1.1\r\nHost: a\r\n\r\n");
    let head = client.head();
    assert_eq!(
        (status(&head), content_length(&head)),
        (200, Some(10)),
        "{head}"
    );
    let (head, body) = client.response();
    assert_eq!(
        (status(&head), body.as_str()),
        (200, "0123456789"),
        "{head}"
    );
    io.abort();
}

/// A 204 has no `Content-Length` (nor a body): the CORS preflight's answer, with the request
/// pipelined behind it answered after it.
#[test]
fn a_204_has_no_content_length() {
    let io = Server::builder()
        .cors_allowed_origins(sockio_threads::AllowedOrigins::List(vec![
            "http://app.example".to_owned(),
        ]))
        .build();
    let addr = serve(&io);
    let mut client = Raw::open(addr);
    client.send(
        b"OPTIONS /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: a\r\n\
          Origin: http://app.example\r\nAccess-Control-Request-Method: POST\r\n\r\n\
          GET /x HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    let preflight = client.head();
    assert_eq!(status(&preflight), 204, "{preflight}");
    assert_eq!(
        header(&preflight, "access-control-allow-origin"),
        Some("http://app.example"),
        "{preflight}"
    );
    assert_eq!(header(&preflight, "content-length"), None, "{preflight}");
    let (next, body) = client.response();
    assert_eq!((status(&next), body.as_str()), (404, "not found"), "{next}");
    // Both say when they were answered (RFC 9110 §6.6.1), as hyper's answers do.
    for head in [&preflight, &next] {
        let date = header(head, "date").unwrap_or_else(|| panic!("no Date in {head}"));
        assert!(httpdate::parse_http_date(date).is_ok(), "{date}");
    }
    io.abort();
}

/// `close` among a request's `Connection` tokens ends the connection after its answer, whatever
/// else is listed, in one header or several, over HTTP/1.0 and HTTP/1.1.
#[test]
fn close_wins_over_keep_alive() {
    let io = Server::builder().build();
    let addr = serve(&io);
    for connection in [
        "Connection: keep-alive, close\r\n",
        "Connection: keep-alive\r\nConnection: close\r\n",
    ] {
        for version in ["HTTP/1.0", "HTTP/1.1"] {
            let mut client = Raw::open(addr);
            client.send(
                format!(
                    "GET /x {version}\r\nHost: a\r\n{connection}\r\nGET /y {version}\r\nHost: a\r\n\r\n"
                )
                .as_bytes(),
            );
            let (head, _) = client.response();
            assert_eq!(status(&head), 404, "{head}");
            assert_eq!(
                header(&head, "connection"),
                Some("close"),
                "{version} {connection:?}"
            );
            client.assert_closed();
        }
    }
    // Without `close`, keep-alive keeps an HTTP/1.0 connection open.
    let mut client = Raw::open(addr);
    client.send(b"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /y HTTP/1.0\r\n\r\n");
    let (first, _) = client.response();
    assert_eq!(header(&first, "connection"), Some("keep-alive"), "{first}");
    let (second, _) = client.response();
    assert_eq!(header(&second, "connection"), Some("close"), "{second}");
    client.assert_closed();
    io.abort();
}

/// Lines may end with a bare LF (RFC 9112 §2.2), the empty line ending a head too (LF or CRLF):
/// such requests are answered at once, not when the header timeout runs out.
#[test]
fn bare_lf_line_ends_are_accepted() {
    let io = Server::builder().build();
    let addr = serve(&io);
    let mut client = Raw::open(addr);
    client.send(b"GET /x HTTP/1.1\nHost: a\n\n");
    let (head, body) = client.response();
    assert_eq!((status(&head), body.as_str()), (404, "not found"), "{head}");
    client.send(b"GET /y HTTP/1.1\nHost: a\nConnection: close\n\r\n");
    let (head, body) = client.response();
    assert_eq!((status(&head), body.as_str()), (404, "not found"), "{head}");
    client.assert_closed();
    io.abort();
}

/// Empty lines before a request line are skipped (RFC 9112 §2.2: some clients send a CRLF after
/// a POST's body), not refused as a malformed request.
#[test]
fn an_empty_line_before_a_request_is_ignored() {
    let io = Server::builder().build();
    let addr = serve(&io);
    let mut client = Raw::open(addr);
    client.send(
        b"\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n\
          POST /y HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nz\r\n\
          GET /z HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    for _ in 0..3 {
        let (head, body) = client.response();
        assert_eq!((status(&head), body.as_str()), (404, "not found"), "{head}");
    }
    client.assert_closed();
    io.abort();
}

/// A polling session's id, from a handshake on `client`.
fn handshake(client: &mut Raw) -> String {
    client.send(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: a\r\n\r\n");
    let (head, body) = client.response();
    assert_eq!(status(&head), 200, "{head}");
    support::sid_of_open(&body)
}

/// The head of a POST of `length` bytes to session `sid`, asking for `100 Continue`.
fn post_expecting_continue(sid: &str, length: usize) -> Vec<u8> {
    format!(
        "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: a\r\n\
         Content-Length: {length}\r\nExpect: 100-Continue\r\n\r\n"
    )
    .into_bytes()
}

/// A client that sends `Expect: 100-continue` and holds its body back gets `100 Continue`, then,
/// once it sent the body, the answer; the connection stays usable.
#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let io = Server::builder().build();
    let addr = serve(&io);
    let mut client = Raw::open(addr);
    let sid = handshake(&mut client);
    client.send(&post_expecting_continue(&sid, 2));
    // Read with the client's timeout: the body has not been sent, so only the 100 can come.
    let interim = client.head();
    assert_eq!(interim, "HTTP/1.1 100 Continue\r\n\r\n");
    client.send(b"40");
    let (head, body) = client.response();
    assert_eq!((status(&head), body.as_str()), (200, "ok"), "{head}");
    client.send(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
    let (head, _) = client.response();
    assert_eq!(status(&head), 404, "{head}");
    io.abort();
}

/// A body over `max_http_buffer_size` is refused at once (413), without `100 Continue`, and the
/// connection closes (its body is never asked for).
#[test]
fn a_body_over_the_limit_expecting_100_continue_gets_413_at_once() {
    let io = Server::builder().max_http_buffer_size(10).build();
    let addr = serve(&io);
    let mut client = Raw::open(addr);
    let sid = handshake(&mut client);
    let mut request = post_expecting_continue(&sid, 11);
    // With the CORS headers its origin gets, as the core's 413 for a body read whole.
    request.splice(
        request.len() - 2..request.len() - 2,
        *b"Origin: http://a\r\n",
    );
    client.send(&request);
    let (head, _) = client.response();
    assert_eq!(status(&head), 413, "{head}");
    assert_eq!(
        header(&head, "access-control-allow-origin"),
        Some("http://a"),
        "{head}"
    );
    client.assert_closed();
    // The session is still there.
    let mut other = Raw::open(addr);
    other.send(
        format!(
            "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: a\r\n\
             Content-Length: 2\r\n\r\n40"
        )
        .as_bytes(),
    );
    let (head, body) = other.response();
    assert_eq!((status(&head), body.as_str()), (200, "ok"), "{head}");
    io.abort();
}

/// Writes `request` whole (from another thread, the server reading or draining it meanwhile),
/// then reads its answer, `expected`, and the close: a write cut short by a reset fails.
fn assert_sent_whole_then_answered(client: &mut Raw, request: Vec<u8>, expected: u16) {
    let mut writer = client.stream.try_clone().expect("clone");
    let sent = std::thread::spawn(move || writer.write_all(&request).is_ok());
    assert!(
        sent.join().expect("the writer"),
        "the server took all that was sent before its {expected}"
    );
    let (head, _) = client.response();
    assert_eq!(status(&head), expected, "{head}");
    client.assert_closed();
}

/// A client that sends a body over the limit whole, reading nothing until it has sent it all
/// (as an upload does), gets to send it and then reads the 413: the server reads and drops the
/// rest before the connection ends. Closing with those bytes unread reset the connection, and
/// the client's upload failed with "connection reset" instead of showing the answer.
#[test]
fn a_body_over_the_limit_sent_whole_gets_its_413_before_the_close() {
    let io = Server::builder().max_http_buffer_size(10_000).build();
    let addr = serve(&io);
    let mut client = Raw::open(addr);
    let sid = handshake(&mut client);
    let length = 16 << 20;
    let mut request = format!(
        "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: a\r\n\
         Content-Length: {length}\r\n\r\n"
    )
    .into_bytes();
    request.resize(request.len() + length, b'x');
    assert_sent_whole_then_answered(&mut client, request, 413);
    io.abort();
}

/// A head refused while its client is still sending (framing with both `Transfer-Encoding` and
/// `Content-Length`, followed by a long body; a header too large, still arriving) gets its answer
/// before the close: what follows it is drained first, where closing with it unread reset the
/// connection and the client's write failed.
#[test]
fn a_head_refused_while_its_client_still_sends_gets_its_answer() {
    let io = Server::builder().build();
    let addr = serve(&io);
    let length = 16 << 20;
    let framing = format!(
        "POST /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: a\r\n\
         Transfer-Encoding: chunked\r\nContent-Length: {length}\r\n\r\n"
    );
    let large_header = "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: a\r\nX-A: ";
    for (head, expected) in [(framing.as_str(), 400), (large_header, 431)] {
        let mut request = head.as_bytes().to_vec();
        request.resize(request.len() + length, b'x');
        assert_sent_whole_then_answered(&mut Raw::open(addr), request, expected);
    }
    io.abort();
}

/// A POST the core refuses at its start (it overlaps one whose body is still awaited) is answered
/// without `100 Continue`, and the connection closes without waiting for the body.
#[test]
fn a_post_refused_at_its_start_gets_no_100_continue() {
    let io = Server::builder().build();
    let addr = serve(&io);
    let mut first = Raw::open(addr);
    let sid = handshake(&mut first);
    first.send(&post_expecting_continue(&sid, 2));
    // Its start is reported: the session awaits its body.
    assert_eq!(first.head(), "HTTP/1.1 100 Continue\r\n\r\n");
    let mut second = Raw::open(addr);
    second.send(&post_expecting_continue(&sid, 2));
    let (head, _) = second.response();
    assert_eq!(status(&head), 400, "{head}");
    second.assert_closed();
    io.abort();
}

/// The WebSocket upgrade needs HTTP/1.1 (RFC 6455 §4.1): an HTTP/1.0 request asking for one gets
/// 400, not 101, and the connection closes. The same request over HTTP/1.1 is upgraded.
#[test]
fn an_http10_upgrade_is_refused() {
    let io = Server::builder().build();
    let addr = serve(&io);
    let upgrade = |version: &str| {
        format!(
            "GET /socket.io/?EIO=4&transport=websocket {version}\r\nHost: a\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
    };
    let mut client = Raw::open(addr);
    client.send(upgrade("HTTP/1.0").as_bytes());
    let (head, _) = client.response();
    assert_eq!(status(&head), 400, "{head}");
    client.assert_closed();
    let mut client = Raw::open(addr);
    client.send(upgrade("HTTP/1.1").as_bytes());
    let head = client.head();
    assert_eq!(status(&head), 101, "{head}");
    io.abort();
}

/// The head of a chunked POST to session `sid`, with `extra` header lines.
fn chunked_post(sid: &str, extra: &str) -> Vec<u8> {
    format!(
        "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: a\r\n\
         Transfer-Encoding: chunked\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// A chunked body whose client waits for `100 Continue` is asked for, read and answered; the
/// connection goes on with the request pipelined right behind the body, and again after a
/// chunked body without `Expect`.
#[test]
fn a_chunked_body_expecting_100_continue_is_read_and_the_connection_kept() {
    let io = Server::builder().build();
    let addr = serve(&io);
    let mut client = Raw::open(addr);
    let sid = handshake(&mut client);
    client.send(&chunked_post(&sid, "Expect: 100-continue\r\n"));
    assert_eq!(client.head(), "HTTP/1.1 100 Continue\r\n\r\n");
    let mut rest = sockio_testkit::raw_polling::chunked(&[b"4", b"0"]);
    rest.extend_from_slice(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
    client.send(&rest);
    let (head, body) = client.response();
    assert_eq!((status(&head), body.as_str()), (200, "ok"), "{head}");
    let (head, _) = client.response();
    assert_eq!(status(&head), 404, "{head}");
    let mut noop = chunked_post(&sid, "");
    // The bare form, no extension nor trailer (`raw_polling::chunked` writes both).
    noop.extend_from_slice(b"1\r\n6\r\n0\r\n\r\nGET /y HTTP/1.1\r\nHost: a\r\n\r\n");
    client.send(&noop);
    let (head, body) = client.response();
    assert_eq!((status(&head), body.as_str()), (200, "ok"), "{head}");
    let (head, _) = client.response();
    assert_eq!(status(&head), 404, "{head}");
    io.abort();
}

/// A chunked body past `max_http_buffer_size` gets what a `Content-Length` one gets: 413, then
/// the connection closes (the rest of the body is not read, however much the client sends).
#[test]
fn a_chunked_body_over_the_limit_gets_413_and_a_close() {
    let io = Server::builder().max_http_buffer_size(10).build();
    let addr = serve(&io);
    let mut client = Raw::open(addr);
    let sid = handshake(&mut client);
    let mut request = chunked_post(&sid, "");
    request.extend_from_slice(&sockio_testkit::raw_polling::chunked(&[
        b"4hello", b"4world",
    ]));
    client.send(&request);
    let (head, _) = client.response();
    assert_eq!(status(&head), 413, "{head}");
    assert_eq!(header(&head, "connection"), Some("close"), "{head}");
    client.assert_closed();
    io.abort();
}

/// Malformed chunk framing, other transfer codings and a request with both `Content-Length` and
/// `Transfer-Encoding` (a request-smuggling vector) get 400 and a close: nothing after them is
/// read as a request.
#[test]
fn malformed_chunked_requests_get_400_and_a_close() {
    let io = Server::builder().build();
    let addr = serve(&io);
    let next = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
    let requests = [
        format!("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n{next}"),
        format!("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n40xx0\r\n\r\n{next}"),
        format!(
            "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n\
             0\r\n\r\n{next}"
        ),
        format!("POST /x HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n{next}"),
        format!("POST /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n{next}"),
    ];
    for request in requests {
        let mut client = Raw::open(addr);
        client.send(request.as_bytes());
        let (head, _) = client.response();
        assert_eq!(status(&head), 400, "{request:?}: {head}");
        client.assert_closed();
    }
    io.abort();
}

/// Malformed framing in a body the client sent after `100 Continue`, to a live session: the
/// client gets a 400 after its 100, the connection closes, and the session's POST is abandoned,
/// which ends the session as a POST cut short does (its transport failed).
#[test]
fn malformed_chunk_framing_after_100_continue_gets_400_and_a_close() {
    let io = Server::builder().build();
    let addr = serve(&io);
    let mut client = Raw::open(addr);
    let sid = handshake(&mut client);
    client.send(&chunked_post(&sid, "Expect: 100-continue\r\n"));
    assert_eq!(client.head(), "HTTP/1.1 100 Continue\r\n\r\n");
    client.send(b"2\r\n40\r\nzz\r\n");
    let (head, _) = client.response();
    assert_eq!(status(&head), 400, "{head}");
    client.assert_closed();
    let mut client = Raw::open(addr);
    let mut post = chunked_post(&sid, "");
    post.extend_from_slice(&sockio_testkit::raw_polling::chunked(&[b"6"]));
    client.send(&post);
    let (head, body) = client.response();
    assert_eq!(status(&head), 400, "{head}");
    assert!(body.contains("Session ID unknown"), "{body}");
    io.abort();
}

/// An upgrade request whose body goes past the limit: the rest of that body would be read as the
/// WebSocket's first frames, so the upgrade is refused.
#[test]
fn an_upgrade_with_a_body_past_the_limit_is_refused() {
    let io = Server::builder().max_http_buffer_size(10).build();
    let addr = serve(&io);
    let mut client = Raw::open(addr);
    let mut request = b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: a\r\n\
          Upgrade: websocket\r\nConnection: Upgrade\r\nTransfer-Encoding: chunked\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .to_vec();
    request.extend_from_slice(&sockio_testkit::raw_polling::chunked(&[
        b"0123456789",
        b"\x81\x85maskedframe",
    ]));
    client.send(&request);
    let (head, _) = client.response();
    assert_eq!(status(&head), 400, "{head}");
    client.assert_closed();
    io.abort();
}

/// A request outside the Socket.IO path, with no fallback to read it, announcing a body past
/// the Socket.IO limit: 404 at once, as on the async runtimes, not 413 for that limit, and
/// without waiting for the body (here never sent); the connection then closes.
#[test]
fn a_body_outside_the_path_is_not_waited_for() {
    let io = Server::builder().build();
    let addr = serve(&io);
    let mut client = Raw::open(addr);
    client.send(b"POST /other HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n");
    let (head, body) = client.response();
    assert_eq!((status(&head), body.as_str()), (404, "not found"), "{head}");
    io.abort();
}

/// Outside the Socket.IO path, without a fallback, a body past the limit gets 404 however it is
/// framed (as on tokio and smol): sent with `Content-Length` it is refused before it is read, sent
/// chunked its length is known only once read.
#[test]
fn a_body_past_the_limit_outside_the_path_gets_404_however_framed() {
    let io = Server::builder().max_http_buffer_size(100).build();
    let addr = serve(&io);
    let big = "a".repeat(200);
    for request in [
        format!("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 200\r\n\r\n{big}"),
        format!(
            "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nc8\r\n{big}\r\n0\r\n\r\n"
        ),
    ] {
        let mut client = Raw::open(addr);
        client.send(request.as_bytes());
        let (head, body) = client.response();
        assert_eq!((status(&head), body.as_str()), (404, "not found"), "{head}");
    }
    io.abort();
}

/// The answers given before a HEAD request's body is read (404 outside the path, 413 when
/// `Expect: 100-continue` announces too much) carry no body either.
#[test]
fn a_head_refused_before_its_body_gets_no_body() {
    let io = Server::builder().max_http_buffer_size(100).build();
    let addr = serve(&io);
    for (request, expected) in [
        (
            "HEAD /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n",
            404,
        ),
        (
            "HEAD /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n",
            413,
        ),
        // Refused for its framing, after its head parsed.
        (
            "HEAD /x HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n",
            400,
        ),
    ] {
        let mut client = Raw::open(addr);
        client.send(request.as_bytes());
        let head = client.head();
        assert_eq!(status(&head), expected, "{head}");
        assert!(content_length(&head).is_some(), "{head}");
        client.assert_closed();
    }
    io.abort();
}
