//! Drives rust_socketio (the Rust Socket.IO client) against a server running the `socket-io`
//! test profile (testkit/README.md) over one transport, checks what comes back, and exits
//! non-zero on any mismatch. Usage: `rust-socketio-check URL polling|websocket|upgrade`.

use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use rust_socketio::{ClientBuilder, Payload, RawClient, TransportType};
use serde_json::{Value, json};

/// What the client heard: an event's name (or `ack:<event>`) and its payload.
type Heard = (String, Payload);

const WAIT: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(url), Some(transport)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: rust-socketio-check URL polling|websocket|upgrade");
        return ExitCode::from(2);
    };
    let transport_type = match transport.as_str() {
        "polling" => TransportType::Polling,
        "websocket" => TransportType::Websocket,
        "upgrade" => TransportType::WebsocketUpgrade,
        other => {
            eprintln!("unknown transport {other}");
            return ExitCode::from(2);
        }
    };
    match check(url, transport_type) {
        Ok(()) => {
            println!("{transport}: all checks passed");
            ExitCode::SUCCESS
        }
        Err(failure) => {
            println!("{transport}: FAILED: {failure}");
            ExitCode::FAILURE
        }
    }
}

fn listener(
    name: &'static str,
    tx: &Sender<Heard>,
) -> impl FnMut(Payload, RawClient) + Send + Sync + use<> {
    let tx = tx.clone();
    move |payload, _client| {
        let _ = tx.send((name.to_owned(), payload));
    }
}

fn next(rx: &Receiver<Heard>, what: &str) -> Result<Heard, String> {
    rx.recv_timeout(WAIT)
        .map_err(|_| format!("nothing heard within {WAIT:?} while waiting for {what}"))
}

/// The next event, which must be `event` with the JSON arguments `expected` (for an
/// acknowledgement, rust_socketio hands its arguments over as one array: `[[..args]]`).
fn expect_text(rx: &Receiver<Heard>, event: &str, expected: Value) -> Result<(), String> {
    match next(rx, event)? {
        (name, Payload::Text(args)) if name == event && Value::Array(args.clone()) == expected => {
            Ok(())
        }
        other => Err(format!("expected {event} {expected}, heard {other:?}")),
    }
}

fn check(url: &str, transport_type: TransportType) -> Result<(), String> {
    let (tx, rx) = mpsc::channel::<Heard>();
    let client = ClientBuilder::new(url)
        .transport_type(transport_type)
        .auth(json!({"token": "abc"}))
        .on("auth", listener("auth", &tx))
        .on("message-back", listener("message-back", &tx))
        .on("need-ack", listener("need-ack", &tx))
        .on("server-call", listener("server-call", &tx))
        .on("close", listener("close", &tx))
        .on("error", listener("error", &tx))
        .connect()
        .map_err(|error| format!("connect: {error}"))?;
    let emit = |event: &str, data: Payload| {
        client
            .emit(event, data)
            .map_err(|error| format!("emit {event}: {error}"))
    };
    let emit_with_ack = |event: &str, data: Vec<Value>, name: &'static str| {
        client
            .emit_with_ack(event, Payload::Text(data), WAIT, listener(name, &tx))
            .map_err(|error| format!("emit {event}: {error}"))
    };

    expect_text(&rx, "auth", json!([{"token": "abc"}]))?;

    let args = json!([1, "two", {"three": [3, null]}, "\u{2028}é😀"]);
    emit(
        "message",
        Payload::Text(args.as_array().cloned().unwrap_or_default()),
    )?;
    expect_text(&rx, "message-back", args.clone())?;

    // Every byte but 0x1e: rust_socketio 0.6.0 splits a WebSocket message at that byte (the
    // polling payload's record separator) even in a binary frame, and reports "EngineIO Error"
    // (against the official Node.js server too).
    let bytes: Vec<u8> = (0..=255).filter(|&byte| byte != 0x1e).collect();
    emit("message", Payload::Binary(bytes.clone().into()))?;
    match next(&rx, "message-back (binary)")? {
        (name, Payload::Binary(back)) if name == "message-back" && back[..] == bytes[..] => {}
        other => return Err(format!("expected the bytes back, heard {other:?}")),
    }

    emit_with_ack(
        "message-with-ack",
        vec![json!({"a": 1})],
        "ack:message-with-ack",
    )?;
    expect_text(&rx, "ack:message-with-ack", json!([[{"a": 1}]]))?;

    emit("server-ack", Payload::Text(Vec::new()))?;
    expect_text(&rx, "need-ack", json!(["please"]))?;

    emit_with_ack("rooms", Vec::new(), "ack:rooms")?;
    match next(&rx, "rooms")? {
        (name, Payload::Text(args))
            if name == "ack:rooms"
                && args.len() == 1
                && args[0]
                    .pointer("/0")
                    .and_then(Value::as_array)
                    .is_some_and(|rooms| {
                        rooms.len() == 1 && rooms[0].as_str().is_some_and(|sid| sid.len() >= 16)
                    }) => {}
        other => {
            return Err(format!(
                "expected [[[<own sid>]]] for rooms, heard {other:?}"
            ));
        }
    }

    // rust_socketio 0.6 cannot answer an acknowledgement the server asks for: the server's call
    // is asked, and times out.
    emit_with_ack("call-client", vec![json!(300)], "ack:call-client")?;
    expect_text(&rx, "server-call", json!(["question"]))?;
    expect_text(&rx, "ack:call-client", json!([[{"error": "timeout"}]]))?;

    const BURST: u64 = 500;
    for i in 0..BURST {
        emit("message", Payload::Text(vec![json!(i)]))?;
    }
    for i in 0..BURST {
        expect_text(&rx, "message-back", json!([i]))?;
    }

    emit("disconnect-me", Payload::Text(Vec::new()))?;
    match next(&rx, "the close after disconnect-me")? {
        (name, _) if name == "close" => {}
        other => return Err(format!("expected close, heard {other:?}")),
    }
    let _ = client.disconnect();
    Ok(())
}
