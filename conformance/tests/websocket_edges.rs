//! WebSocket edges on every runtime, against `sockio-conformance serve` subprocesses:
//!
//! - the disconnect reason the application sees when a client leaves without a close frame
//!   (the socket-io profile's `disconnect-reason` event reports it): the reference server
//!   (engine.io on `ws`) reports a hang-up, whether end of stream or a reset, as `transport
//!   close` (`ws` emits only its `close` then, code 1006), and a protocol violation as
//!   `transport error`; tokio and smol reported every hang-up, and threads a reset, as
//!   `transport error`;
//! - a burst of pings, far more pongs than the 16 KiB the server lets wait unwritten for a
//!   client: the latest ping is answered (tokio and smol dropped the pongs of every ping past
//!   the 16 KiB, the latest included, while the client read everything).

#[path = "support/served.rs"]
mod served;

mod hostile {
    // This test uses the suite's WebSocket plumbing only.
    #[allow(dead_code)]
    pub mod net;
}

use std::net::Shutdown;
use std::time::{Duration, Instant};

use std::io::Write;

use hostile::net::{is_wait, ws_next_text, ws_open};
use served::Served;
use sockio_core::websocket::client_frame;
use tungstenite::Message;

/// How a client leaves.
#[derive(Debug, Clone, Copy)]
enum Leaving {
    CloseFrame,
    /// FIN without a close frame.
    EndOfStream,
    /// FIN in the middle of a frame.
    EndMidFrame,
    Reset,
    /// A frame with a reserved bit set.
    ProtocolViolation,
}

/// A WebSocket-only session joined to `/`, and its socket id (from the CONNECT reply).
fn connect(port: u16) -> (hostile::net::Ws, String) {
    let mut ws = ws_open(port, "", &[]).expect("a WebSocket session");
    ws_next_text(&mut ws).expect("the open packet");
    ws.send(Message::text("40")).expect("CONNECT");
    let reply = ws_next_text(&mut ws).expect("the CONNECT reply");
    let connected: serde_json::Value = reply
        .strip_prefix("40")
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_else(|| panic!("no CONNECT reply: {reply:?}"));
    let sid = connected["sid"].as_str().expect("a socket id").to_owned();
    // The profile greets every client with `auth`.
    ws_next_text(&mut ws).expect("the auth event");
    (ws, sid)
}

fn leave(ws: hostile::net::Ws, how: Leaving) {
    let mut stream = ws.into_inner();
    use std::io::Write;
    match how {
        Leaving::CloseFrame => {
            // Masked close frame, code 1000.
            let _ = stream.write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]);
        }
        Leaving::EndOfStream => {
            let _ = stream.shutdown(Shutdown::Write);
        }
        Leaving::EndMidFrame => {
            // The first 4 bytes of a masked 10-byte text frame.
            let _ = stream.write_all(&[0x81, 0x8a, 0, 0]);
            let _ = stream.shutdown(Shutdown::Write);
        }
        Leaving::Reset => {
            sockio_testkit::link_faults::reset(stream).expect("reset");
            return;
        }
        Leaving::ProtocolViolation => {
            // RSV2 set on a masked 1-byte text frame.
            let _ = stream.write_all(&[0xa1, 0x81, 0, 0, 0, 0, b'x']);
        }
    }
    // Until the server ends the connection (its close frame, then end of stream): closing
    // with its answer unread would reset the connection, which a kernel may deliver before
    // what was sent above.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut sink = [0u8; 1024];
    while let Ok(read) = std::io::Read::read(&mut stream, &mut sink) {
        if read == 0 {
            break;
        }
    }
}

/// The reason recorded for `sid`, asked over a new session until it is there.
fn reason_of(port: u16, sid: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut ws, _) = connect(port);
    loop {
        let ask = format!("421[\"disconnect-reason\",{}]", serde_json::json!(sid));
        ws.send(Message::text(ask)).expect("ask for the reason");
        let answer = loop {
            let text = ws_next_text(&mut ws).expect("the reason");
            if let Some(ack) = text.strip_prefix("431") {
                break ack.to_owned();
            }
        };
        let answer: Vec<serde_json::Value> = serde_json::from_str(&answer).expect("JSON");
        if let Some(reason) = answer.first().and_then(|r| r.as_str()) {
            return reason.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no disconnect recorded for {sid}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_websocket_client_hanging_up_is_a_transport_close_on_every_runtime() {
    let cases = [
        (Leaving::CloseFrame, "transport close"),
        (Leaving::EndOfStream, "transport close"),
        (Leaving::EndMidFrame, "transport close"),
        (Leaving::Reset, "transport close"),
        (Leaving::ProtocolViolation, "transport error"),
    ];
    let mut wrong = Vec::new();
    for runtime in ["tokio", "smol", "threads"] {
        let served = serve(runtime, "socket-io", &[]);
        for (how, expected) in cases {
            let (ws, sid) = connect(served.port);
            leave(ws, how);
            let reason = reason_of(served.port, &sid);
            if reason != expected {
                wrong.push(format!("{runtime} {how:?}: {reason}, expected {expected}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// `sockio-conformance serve` with `profile` on `runtime`, plus `extra` arguments.
fn serve(runtime: &str, profile: &str, extra: &[&str]) -> Served {
    Served::start(|command| {
        command.args(["--runtime", runtime, "--profile", profile, "--port", "0"]);
        command.args(extra);
    })
}

/// How long the pong of the burst's last ping may take before the test gives up.
const PONG_WAIT: Duration = Duration::from_secs(10);

#[test]
fn the_latest_of_a_burst_of_pings_is_answered_on_every_runtime() {
    const PINGS: usize = 400;
    // 100-byte payloads: 400 pongs are about 42 KiB, well past what may wait unwritten.
    let payload = |index: usize| format!("{index:0100}");
    let burst: Vec<u8> = (0..PINGS)
        .flat_map(|index| client_frame(0x89, payload(index).as_bytes(), [1, 2, 3, 4]))
        .collect();
    let mut missing = Vec::new();
    for runtime in ["tokio", "smol", "threads"] {
        // Its Engine.IO pings are answered below, between the pongs.
        let served = serve(runtime, "engine-io", &["--ping-timeout-ms", "2000"]);
        let mut ws = ws_open_at(served.port, "/engine.io/?EIO=4&transport=websocket");
        ws.get_mut().write_all(&burst).expect("send the pings");
        let deadline = Instant::now() + PONG_WAIT;
        let last = payload(PINGS - 1);
        let mut answered = 0;
        let latest_answered = loop {
            if Instant::now() > deadline {
                break false;
            }
            match ws.read() {
                Ok(Message::Pong(pong)) => {
                    answered += 1;
                    if *pong == *last.as_bytes() {
                        break true;
                    }
                }
                Ok(Message::Text(text)) if text.as_str() == "2" => {
                    ws.send(Message::text("3"))
                        .expect("answer the Engine.IO ping");
                }
                Ok(_) => {}
                Err(error) if is_wait(&error) => {}
                Err(error) => panic!("{runtime}: the WebSocket ended: {error}"),
            }
        };
        if !latest_answered {
            missing.push(format!(
                "{runtime}: {answered} pongs, none for the last of {PINGS} pings"
            ));
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
}

/// A WebSocket to `path_and_query` on `port`, its Engine.IO open packet read.
fn ws_open_at(port: u16, path_and_query: &str) -> hostile::net::Ws {
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("read timeout");
    let url = format!("ws://127.0.0.1:{port}{path_and_query}");
    let (mut ws, _) = tungstenite::client::client(url.as_str(), stream).expect("the upgrade");
    loop {
        match ws.read() {
            Ok(Message::Text(open)) if open.as_str().starts_with('0') => return ws,
            Ok(_) => {}
            Err(error) if is_wait(&error) => {}
            Err(error) => panic!("no open packet: {error}"),
        }
    }
}
