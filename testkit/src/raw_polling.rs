//! Polling requests written by hand over a blocking `TcpStream`, for what no official client
//! does on purpose: a POST whose body stops half-way, and a POST sent while another's body is
//! still on its way (PROTOCOL 1.4: the reference server answers the second with 400 and ends the
//! session). Every runtime's tests use these against their own server.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long a request may take before the test fails.
const STEP: Duration = Duration::from_secs(15);

/// An HTTP response: status and body text.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// Sends one request on a connection of its own (`Connection: close`) and reads the answer.
pub fn request(addr: SocketAddr, method: &str, target: &str, body: &[u8]) -> Answer {
    let mut stream = connect(addr);
    write_head(&mut stream, method, target, body.len());
    stream.write_all(body).expect("write the body");
    read_answer(&mut stream)
}

/// Like [`request`], with the body sent chunked (`Transfer-Encoding: chunked`): see [`chunked`].
pub fn request_chunked(addr: SocketAddr, method: &str, target: &str, chunks: &[&[u8]]) -> Answer {
    let mut stream = connect(addr);
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain;charset=UTF-8\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("write the head");
    stream.write_all(&chunked(chunks)).expect("write the body");
    read_answer(&mut stream)
}

/// A chunked body (RFC 9112 §7.1) of a chunk per item of `chunks`, with what a client may add
/// and a server must skip: a chunk extension on the first chunk, a trailer field after the last.
pub fn chunked(chunks: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let extension = if i == 0 {
            ";note=\"first; of many\""
        } else {
            ""
        };
        body.extend_from_slice(format!("{:x}{extension}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(chunk);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\nX-Trailer: done\r\n\r\n");
    body
}

/// Checks that a Socket.IO server reads polling POSTs with chunked bodies whole: a session joins
/// `/` with a chunked CONNECT (`40`, answered `ok`), then emits `echo` with an ack in a body of
/// several chunks. The server's `echo` handler must acknowledge with `echo:` and its argument.
pub fn assert_chunked_posts_are_read(addr: SocketAddr) {
    let sid = open(addr, "/socket.io/");
    let uri = session_uri("/socket.io/", &sid);
    let connect = request_chunked(addr, "POST", &uri, &[b"4", b"0"]);
    assert_eq!(
        (connect.status, connect.body.as_str()),
        (200, "ok"),
        "{connect:?}"
    );
    let packets = poll_packets(addr, &sid);
    assert!(
        packets.first().is_some_and(|p| p.starts_with("40")),
        "{packets:?}"
    );
    let emit = request_chunked(
        addr,
        "POST",
        &uri,
        &[b"421[\"ec", b"ho\",\"in ", b"chunks\"]"],
    );
    assert_eq!((emit.status, emit.body.as_str()), (200, "ok"), "{emit:?}");
    assert_eq!(
        poll_until(addr, &sid, "431[", STEP),
        "431[\"echo:in chunks\"]"
    );
}

/// Opens a polling session under `path` (`/socket.io/` or `/engine.io/`); returns its sid.
pub fn open(addr: SocketAddr, path: &str) -> String {
    let answer = request(addr, "GET", &format!("{path}?EIO=4&transport=polling"), b"");
    assert_eq!(answer.status, 200, "handshake: {answer:?}");
    let open = answer.body.strip_prefix('0').expect("an open packet");
    let open: serde_json::Value = serde_json::from_str(open).expect("open packet JSON");
    open["sid"].as_str().expect("a sid").to_owned()
}

/// Opens a Socket.IO session over polling and POSTs the main namespace's CONNECT, without
/// reading the answer (which waits for the connect handler). Returns the sid.
pub fn connecting(addr: SocketAddr) -> String {
    let sid = open(addr, "/socket.io/");
    let uri = session_uri("/socket.io/", &sid);
    let posted = request(addr, "POST", &uri, b"40");
    assert_eq!(posted.status, 200, "namespace connect: {posted:?}");
    sid
}

/// Opens a Socket.IO session over polling and connects the main namespace, reading the
/// server's answer: the client then holds no request, as between two polls. Returns the sid.
pub fn connected_between_polls(addr: SocketAddr) -> String {
    let sid = connecting(addr);
    let packets = poll_packets(addr, &sid);
    assert!(
        packets.first().is_some_and(|p| p.starts_with("40")),
        "{packets:?}"
    );
    sid
}

/// Opens a Socket.IO session joined to `/` ([`connected_between_polls`]) and POSTs `body` (one
/// or several packets) in one request, which must be answered 200 (so the packets are all read
/// before any of their handlers can act). Returns the session's sid.
pub fn post_after_joining(addr: SocketAddr, body: &[u8]) -> String {
    let sid = connected_between_polls(addr);
    let posted = request(addr, "POST", &session_uri("/socket.io/", &sid), body);
    assert_eq!(posted.status, 200, "{posted:?}");
    sid
}

/// Polls Engine.IO session `sid` (under `path`) until `count` messages arrived, each poll on a
/// connection of its own; returns their data, in order. Pings and noops are skipped; anything
/// else (a close, an error status) fails the test with how many had arrived.
pub fn poll_messages(addr: SocketAddr, path: &str, sid: &str, count: usize) -> Vec<String> {
    let uri = session_uri(path, sid);
    let mut messages = Vec::new();
    while messages.len() < count {
        let answer = request(addr, "GET", &uri, b"");
        assert_eq!(
            answer.status,
            200,
            "{answer:?} after {} messages",
            messages.len()
        );
        for packet in answer.body.split('\x1e') {
            match packet.strip_prefix('4') {
                Some(data) => messages.push(data.to_owned()),
                None => assert!(
                    ["2", "6"].contains(&packet),
                    "{packet:?} after {} messages",
                    messages.len()
                ),
            }
        }
    }
    messages
}

/// Polls Socket.IO session `sid` once, on a connection of its own; returns the packets.
pub fn poll_packets(addr: SocketAddr, sid: &str) -> Vec<String> {
    let answer = request(addr, "GET", &session_uri("/socket.io/", sid), b"");
    assert_eq!(answer.status, 200, "poll: {answer:?}");
    answer.body.split('\x1e').map(str::to_owned).collect()
}

/// Polls Socket.IO session `sid` until a packet holds `needle`, for at most `within`, answering
/// the server's pings meanwhile; returns that packet, or fails the test with the packets seen.
/// The server's ping interval must be under a request's 15 s limit: an idle poll ends with a ping.
pub fn poll_until(addr: SocketAddr, sid: &str, needle: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        for packet in poll_packets(addr, sid) {
            if packet.contains(needle) {
                return packet;
            }
            if packet == "2" {
                let pong = request(addr, "POST", &session_uri("/socket.io/", sid), b"3");
                assert_eq!(pong.status, 200, "pong: {pong:?}");
            }
            seen.push(packet);
        }
    }
    panic!("no packet holding {needle:?} within {within:?}; packets seen: {seen:?}");
}

/// Polls Socket.IO session `sid` for `window`, answering the server's pings meanwhile; returns how
/// many packets held `needle`. The server's ping interval must be under a request's 15 s limit.
pub fn count_packets(addr: SocketAddr, sid: &str, needle: &str, window: Duration) -> usize {
    let deadline = Instant::now() + window;
    let mut seen = 0;
    while Instant::now() < deadline {
        for packet in poll_packets(addr, sid) {
            if packet == "2" {
                let pong = request(addr, "POST", &session_uri("/socket.io/", sid), b"3");
                assert_eq!(pong.status, 200, "pong: {pong:?}");
            }
            seen += usize::from(packet.contains(needle));
        }
    }
    seen
}

/// The polling URI of session `sid` under `path`.
pub fn session_uri(path: &str, sid: &str) -> String {
    format!("{path}?EIO=4&transport=polling&sid={sid}")
}

/// Sends a POST to `target` announcing a body of `declared` bytes and only `sent` of them; the
/// rest never comes unless the caller writes it. The server reads the head at once.
pub fn unfinished_post(addr: SocketAddr, target: &str, declared: usize, sent: &[u8]) -> TcpStream {
    assert!(sent.len() < declared, "an unfinished body");
    let mut stream = connect(addr);
    write_head(&mut stream, "POST", target, declared);
    stream.write_all(sent).expect("write part of the body");
    stream
}

/// Checks that a server refuses overlapping POSTs: while `first` (an [`unfinished_post`] to
/// `target`) waits for the rest of its body, POSTs a noop packet (`6`) until one is refused, then
/// writes `rest` (what `first` still owes) and reads `first`'s answer. Either POST may be the one
/// refused as overlapping: the server reads the two connections in its own time, so a noop POST's
/// start can come before `first`'s head is read, which makes `first` the second POST. So one of
/// the two answers must be `Bad request` (code 3) and the other 400 as well: the refusal ended
/// the session. Fails the test when no POST is refused within a few seconds.
pub fn assert_overlap_refused(addr: SocketAddr, target: &str, mut first: TcpStream, rest: &[u8]) {
    let refused = post_until_refused(addr, target);
    first.write_all(rest).expect("write the rest of the body");
    let first = read_answer(&mut first);
    if error_code(&refused) == Some(3) {
        assert_eq!(first.status, 400, "after the overlap: {first:?}");
    } else {
        assert_eq!(
            error_code(&refused),
            Some(1),
            "Session ID unknown: {refused:?}"
        );
        assert_bad_request(&first);
    }
}

/// A POST body of `events` `count` events: more than a server's dispatch backlog takes.
pub fn many_events(events: usize) -> String {
    vec![r#"42["count"]"#; events].join("\x1e")
}

/// A POST body of `events` `count` events whose argument is an array of `values` zeros:
/// `values` of 32 bytes or more (50 MB and more for 1.6 M of them) once parsed, from 2 bytes of
/// text each.
pub fn heavy_events(events: usize, values: usize) -> String {
    let one = format!(r#"42["count",[{}]]"#, vec!["0"; values].join(","));
    vec![one; events].join("\x1e")
}

/// Checks that a client's POSTs are not read while its events pile up unhandled. Session `uri`
/// (joined to `/`) is sent, in one POST, a `hold` event and then `queued` (more than the
/// server's dispatch backlog takes, in number or in size: [`many_events`], [`heavy_events`]);
/// `held` returns once the `hold` handler has started (the events are then queued), and that
/// handler must wait until `release` is called. Two more
/// POSTs, each on a connection of its own and not waiting for the others' answers, as a client
/// flooding the server would send them: the server must leave them unread, and one of them,
/// overlapping the other, gets 400 while the handler is still held (the other, when answered
/// before the handler ends, 400 too: the refusal ended the session). A server that read them
/// would queue their events too, without bound, and answer neither until the handler ends.
pub fn assert_posts_wait_behind_a_backlog(
    addr: SocketAddr,
    uri: &str,
    queued: &str,
    held: impl FnOnce(),
    release: impl FnOnce(),
) {
    let flood = format!("42[\"hold\"]\x1e{queued}");
    let target = uri.to_owned();
    let first = std::thread::spawn(move || request(addr, "POST", &target, flood.as_bytes()));
    held();
    let (answers, answered) = std::sync::mpsc::channel();
    let post = |answers: std::sync::mpsc::Sender<Answer>| {
        let target = uri.to_owned();
        std::thread::spawn(move || {
            let _ = answers.send(request(addr, "POST", &target, br#"42["count"]"#));
        })
    };
    let second = post(answers.clone());
    // Time for a server that reads the second POST to have read it (11 bytes), so that the
    // third is not refused only for coming while the second's body was still being read. A
    // server that leaves the second unread refuses the third whenever it comes (or, should the
    // third come first, the second), so this pause is not what makes it pass.
    std::thread::sleep(Duration::from_millis(300));
    let more = [second, post(answers)];
    // The overlapping one is refused, which ends the session; the other may then be answered
    // before the handler ends (that the session is gone) or after it, as the runtime has it.
    let mut early = Vec::new();
    while !early.iter().any(|answer| error_code(answer) == Some(3)) {
        let answer = answered
            .recv_timeout(STEP)
            .expect("one of two overlapping POSTs refused while the dispatcher is behind");
        assert_eq!(answer.status, 400, "no POST is read meanwhile: {answer:?}");
        early.push(answer);
    }
    release();
    // Nothing is left hanging: every POST is answered once the handler ends.
    if early.len() < 2 {
        answered
            .recv_timeout(STEP)
            .expect("the POST that waited is answered after the handler");
    }
    for post in more {
        post.join().expect("a POST's thread");
    }
    first.join().expect("the first POST's thread");
}

/// Checks that one POST's events are handed to the handlers a step at a time, as they catch up,
/// rather than all at once. Session `uri` (joined to `/`) is sent, in one POST, a `hold` event,
/// `events` `count` events carrying their index (more than the server's dispatch backlog
/// takes), and a close packet. The `hold` handler emits `held` with `"now"`; `held` returns once
/// it has started, and it must wait until `release` is called. Meanwhile the close packet at the
/// body's end is not reached, and a GET is answered as usual, with that emit (a server that
/// handled the whole body at once has ended the session and refuses it; one that held every
/// request of the client behind the POST's steps does not answer it). Once released, every
/// event is handled, in order (`counted` returns the indexes the `count` handler got, once it
/// has had `events` of them), the POST is answered `ok`, and the session ends.
pub fn assert_a_post_is_handed_over_in_steps(
    addr: SocketAddr,
    uri: &str,
    events: usize,
    held: impl FnOnce(),
    release: impl FnOnce(),
    counted: impl FnOnce() -> Vec<usize>,
) {
    let mut body = String::from(r#"42["hold"]"#);
    for index in 0..events {
        body.push_str(&format!("\x1e42[\"count\",{index}]"));
    }
    body.push_str("\x1e1");
    let target = uri.to_owned();
    let post = std::thread::spawn(move || request(addr, "POST", &target, body.as_bytes()));
    held();
    let polled = request(addr, "GET", uri, b"");
    assert_eq!(
        (polled.status, polled.body.as_str()),
        (200, r#"42["held","now"]"#),
        "a GET while the first handler is held gets what it emitted"
    );
    release();
    let indexes = counted();
    assert!(
        indexes.iter().copied().eq(0..events),
        "every event of the POST, in order: got {} of {events}",
        indexes.len()
    );
    let answer = post.join().expect("the POST's thread");
    assert_eq!((answer.status, answer.body.as_str()), (200, "ok"));
    // The close packet at the body's end has ended the session (a GET answered meanwhile, with
    // a ping, changes nothing).
    let deadline = Instant::now() + STEP;
    loop {
        let polled = request(addr, "GET", uri, b"");
        if session_gone(&polled) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the session outlived its close packet"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Checks that a client hanging up while its POST is handed over in steps ends the session, with
/// the rest of the POST unhandled. The server at `addr` has a `hold` handler that waits (`held`
/// returns once it has started: the server has read the whole body) until `release`, and runs
/// one handler of a client at a time. The POST, on a connection of its own, is a `hold` event and
/// `events` `count` events; that connection is closed once the handler is held. GETs then must
/// come to `Session ID unknown` within a few seconds (a GET held meanwhile is answered when the
/// session ends; only a ping, 25 s on, would answer it otherwise). `release` runs after, whatever
/// happened. The caller checks the disconnect reason.
pub fn assert_a_post_whose_client_leaves_mid_steps_ends_the_session(
    addr: SocketAddr,
    uri: &str,
    events: usize,
    held: impl FnOnce(),
    release: impl FnOnce(),
) {
    let mut body = String::from(r#"42["hold"]"#);
    for index in 0..events {
        body.push_str(&format!("\x1e42[\"count\",{index}]"));
    }
    let mut post = connect(addr);
    write_head(&mut post, "POST", uri, body.len());
    post.write_all(body.as_bytes()).expect("write the body");
    held();
    drop(post);
    let ended = || {
        let deadline = Instant::now() + STEP;
        loop {
            let mut get = connect(addr);
            write_head(&mut get, "GET", uri, 0);
            let mut raw = Vec::new();
            // Up to the server's close, or the read timeout; an error leaves what was read.
            let _ = get.read_to_end(&mut raw);
            assert!(
                !raw.is_empty() && Instant::now() < deadline,
                "the session outlived its client's hang-up mid-POST by {STEP:?}"
            );
            let polled = parse_answer(&raw);
            if session_gone(&polled) {
                break;
            }
            assert_eq!(polled.status, 200, "{polled:?}");
        }
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(ended));
    release();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// POSTs a noop packet (`6`) to `target` until one is refused, and returns that answer: a POST
/// answered `ok` before the server has read another connection's unfinished POST changes nothing.
fn post_until_refused(addr: SocketAddr, target: &str) -> Answer {
    let deadline = Instant::now() + STEP;
    loop {
        let answer = request(addr, "POST", target, b"6");
        if answer.status != 200 {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "every POST was accepted while another POST's body was unfinished"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether a poll's answer says its session is gone: a 400 must be `Session ID unknown` (code 1).
#[track_caller]
fn session_gone(polled: &Answer) -> bool {
    if polled.status != 400 {
        return false;
    }
    assert_eq!(
        error_code(polled),
        Some(1),
        "Session ID unknown: {polled:?}"
    );
    true
}

/// The `code` of a 400 answer's error JSON.
fn error_code(answer: &Answer) -> Option<u64> {
    if answer.status != 400 {
        return None;
    }
    let body: serde_json::Value = serde_json::from_str(&answer.body).ok()?;
    body["code"].as_u64()
}

/// Starts upgrading session `sid` under `path` to WebSocket and reads the `101`; returns the
/// socket, on which the probe is never sent: the session stays on polling.
pub fn unfinished_upgrade(addr: SocketAddr, path: &str, sid: &str) -> TcpStream {
    let mut stream = connect(addr);
    let head = format!(
        "GET {path}?EIO=4&transport=websocket&sid={sid} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream
        .write_all(head.as_bytes())
        .expect("write the upgrade");
    // Byte by byte up to the end of the head: nothing after it may be taken from the socket.
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("the upgrade's answer");
        answer.push(byte[0]);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
    stream
}

/// Asserts `answer` is the reference server's `Bad request` (400, code 3): what an overlapping
/// POST gets.
#[track_caller]
pub fn assert_bad_request(answer: &Answer) {
    assert_eq!(answer.status, 400, "{answer:?}");
    let body: serde_json::Value = serde_json::from_str(&answer.body).expect("an error JSON");
    assert_eq!(body["code"], 3, "Bad request: {answer:?}");
}

/// Asserts the session polled at `uri` is gone: a GET gets `Session ID unknown` (400, code 1).
#[track_caller]
pub fn assert_session_gone(addr: SocketAddr, uri: &str) {
    let answer = request(addr, "GET", uri, b"");
    assert_eq!(answer.status, 400, "{answer:?}");
    let body: serde_json::Value = serde_json::from_str(&answer.body).expect("an error JSON");
    assert_eq!(body["code"], 1, "Session ID unknown: {answer:?}");
}

/// Reads the answer to a request written on `stream` (the server closes after it).
pub fn read_answer(stream: &mut TcpStream) -> Answer {
    let mut raw = Vec::new();
    // Up to the server's close; an error after the answer (a reset) leaves what was read.
    let _ = stream.read_to_end(&mut raw);
    parse_answer(&raw)
}

/// Writes `head` (a whole request head) then `body` on a connection of its own, and returns the
/// head of the answer, lowercased, without waiting for the connection's end.
pub fn answer_head(addr: SocketAddr, head: &str, body: &[u8]) -> String {
    let mut stream = connect(addr);
    stream.write_all(head.as_bytes()).expect("write the head");
    stream.write_all(body).expect("write the body");
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(read) => answer.extend_from_slice(&chunk[..read]),
        }
    }
    String::from_utf8_lossy(&answer).to_lowercase()
}

/// A POST to session `uri` whose chunked body is malformed gets the core's 400 with the CORS
/// headers of its `origin` (which the server must allow), as every other answer under the path.
pub fn assert_a_malformed_body_is_answered_with_cors_headers(
    addr: SocketAddr,
    uri: &str,
    origin: &str,
) {
    let head = format!(
        "POST {uri} HTTP/1.1\r\nHost: a\r\nOrigin: {origin}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let answer = answer_head(addr, &head, b"zz\r\n");
    assert!(
        answer.starts_with("http/1.1 400 bad request\r\n"),
        "{answer}"
    );
    assert!(
        answer.contains(&format!("access-control-allow-origin: {origin}\r\n")),
        "{answer}"
    );
}

/// The answer in `raw`, a whole HTTP response.
fn parse_answer(raw: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer in {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    Answer {
        status,
        body: body.to_owned(),
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(STEP)).expect("read timeout");
    stream
}

fn write_head(stream: &mut TcpStream, method: &str, target: &str, length: usize) {
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("write the head");
}

/// What the kernel's TCP buffers can hold, from `net.ipv4.tcp_wmem` / `tcp_rmem` (4 MiB /
/// 128 KiB / 6 MiB, Linux's defaults, when they cannot be read), so that tests which need a
/// writer to block send more than the buffers between the two ends hold, on any machine.
#[derive(Debug, Clone, Copy)]
pub struct SocketBuffers {
    /// The largest send buffer (`tcp_wmem` max).
    pub send_max: usize,
    /// A receive buffer whose reader has not read (`tcp_rmem` default: it grows as the reader
    /// reads).
    pub receive_unread: usize,
    /// The largest receive buffer (`tcp_rmem` max).
    pub receive_max: usize,
}

impl SocketBuffers {
    pub fn of_this_machine() -> SocketBuffers {
        let read = |name: &str| -> Option<Vec<usize>> {
            let text = std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}")).ok()?;
            text.split_whitespace().map(|n| n.parse().ok()).collect()
        };
        let wmem = read("tcp_wmem").unwrap_or_default();
        let rmem = read("tcp_rmem").unwrap_or_default();
        SocketBuffers {
            send_max: wmem.get(2).copied().unwrap_or(4 << 20),
            receive_unread: rmem.get(1).copied().unwrap_or(128 << 10),
            receive_max: rmem.get(2).copied().unwrap_or(6 << 20),
        }
    }
}
