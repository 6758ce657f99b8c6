//! The attacks. Each one runs against a live server, checks the server's answers against
//! PROTOCOL.md, ends every connection it opened, and returns a line of detail for the report.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tungstenite::Message;

use super::harness::{ALLOWED_ORIGIN, ATTACHMENT_TIMEOUT, PING_TIMEOUT_MS, UPGRADE_TIMEOUT};
use super::net::*;

pub type Attack = fn(u16) -> Result<String, String>;

pub const ALL: &[(&str, Attack)] = &[
    ("malformed Engine.IO packets", malformed_engine_io),
    ("malformed Socket.IO packets", malformed_socket_io),
    (
        "Engine.IO v3 and JSONP garbage",
        super::v3::v3_and_jsonp_garbage,
    ),
    ("bad EIO, transport, sid", bad_query),
    ("wrong methods", wrong_methods),
    ("POST body over the limit", post_over_limit),
    ("WebSocket message over the limit", ws_over_limit),
    ("concurrent GET polls", concurrent_polls),
    ("invalid UTF-8", invalid_utf8),
    ("deeply nested JSON", deep_json),
    ("ack ids that overflow", ack_overflow),
    ("attachment-count bomb", attachment_count_bomb),
    ("attachment-size bomb", attachment_size_bomb),
    ("CORS from a disallowed origin", cors),
    ("5,000 polling sessions abandoned", abandoned_sessions),
    ("upgrades never finished", unfinished_upgrades),
    (
        "upgrades held past the upgrade timeout",
        upgrades_held_past_the_timeout,
    ),
    ("slowloris headers", slowloris),
    ("slow readers during broadcasts", slow_readers),
    ("connect flood", connect_flood),
];

/// Every check of an attack, so one failure does not hide the others.
pub(super) struct Checks(Vec<String>);

impl Checks {
    pub(super) fn new() -> Self {
        Checks(Vec::new())
    }
    pub(super) fn check(&mut self, what: &str, run: impl FnOnce() -> Result<(), String>) {
        if let Err(e) = run() {
            self.0.push(format!("{what}: {e}"));
        }
    }
    pub(super) fn done(self, detail: String) -> Result<String, String> {
        if self.0.is_empty() {
            Ok(detail)
        } else {
            Err(self.0.join("; "))
        }
    }
}

/// Sends `body` as a polling POST on a fresh Socket.IO session and checks the server ends the
/// session (the next GET brings the close packet or 400 code 1, not a ping).
fn post_closes(port: u16, body: &[u8]) -> Result<(), String> {
    let sid = sio_polling(port)?;
    let resp = post(port, &sid, body)?;
    if resp.status != 200 && resp.status != 400 {
        return Err(format!("POST answered {} {:?}", resp.status, resp.text()));
    }
    if polling_closed(port, &sid)? {
        Ok(())
    } else {
        Err("the session lives on".to_owned())
    }
}

/// Sends `text` on a fresh WebSocket Socket.IO session and checks the server ends it.
fn ws_closes(port: u16, message: Message) -> Result<(), String> {
    let mut ws = ws_sio(port)?;
    match ws.send(message) {
        Ok(()) => ws_expect_closed(&mut ws, Duration::from_secs(5)).map(|_| ()),
        // The server may reject a frame from its header and end the connection while the rest
        // of it is still being written.
        Err(tungstenite::Error::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

fn malformed_engine_io(port: u16) -> Result<String, String> {
    let mut checks = Checks::new();
    let bodies: &[&[u8]] = &[
        b"9",            // unknown packet type
        b"",             // empty payload
        b"\x1e\x1e",     // empty packets
        b"b@@@@",        // base64 that is not
        b"2",            // a ping from a v4 client (wrong heartbeat direction)
        b"40\x1e7hello", // a good packet, then a bad one
        b"4",            // an empty message: an empty Socket.IO packet
    ];
    for body in bodies {
        checks.check(
            &format!("polling {:?}", String::from_utf8_lossy(body)),
            || post_closes(port, body),
        );
    }
    for text in ["9", "", "b@@@@", "2", "7x"] {
        checks.check(&format!("ws {text:?}"), || {
            ws_closes(port, Message::text(text))
        });
    }
    // A binary Engine.IO message where Socket.IO expects none.
    checks.check("ws binary without a header", || {
        ws_closes(port, Message::binary(vec![1u8, 2, 3]))
    });
    // v4 polling refuses octet-stream bodies.
    checks.check("polling octet-stream", || {
        let sid = sio_polling(port)?;
        let resp = request(
            port,
            "POST",
            &format!("{POLL}&sid={sid}"),
            &[("Content-Type", "application/octet-stream")],
            b"\x00\x01\xff4abc",
        )?;
        if resp.status != 400 {
            Err(format!("answered {} {:?}", resp.status, resp.text()))
        } else if polling_closed(port, &sid)? {
            Ok(())
        } else {
            Err("the session lives on".to_owned())
        }
    });
    checks.done(format!(
        "{} polling bodies, 6 WebSocket frames",
        bodies.len() + 1
    ))
}

const BAD_SOCKET_IO: &[&str] = &[
    "7",                                                     // unknown type
    "2[",                                                    // bad JSON
    "2{}",                                                   // an event that is not an array
    "2[]",                                                   // an event without a name
    "2[{}]",                                                 // an event name that is an object
    "2[\"disconnect\"]",                                     // a reserved event name
    "4\"from the client\"",                                  // CONNECT_ERROR from a client
    "2/unjoined,[\"x\"]",                                    // an event for a namespace not joined
    "5-[\"x\"]",                                             // BINARY_EVENT without a count
    "5x-[\"x\"]",                                            // a count that is not a number
    "3abc",                                                  // an ACK with a bad payload
    "1[1]",                                                  // DISCONNECT with a payload
    "2[\"message\",{\"_placeholder\":true,\"num\":0}]\u{0}", // trailing garbage
];

fn malformed_socket_io(port: u16) -> Result<String, String> {
    let mut checks = Checks::new();
    for packet in BAD_SOCKET_IO {
        let text = format!("4{packet}");
        checks.check(&format!("ws {text:?}"), || {
            ws_closes(port, Message::text(text.clone()))
        });
        checks.check(&format!("polling {text:?}"), || {
            post_closes(port, text.as_bytes())
        });
    }
    // Not malformed: socket.io-client repeats a socket's CONNECT (`manager.socket(nsp).connect()`),
    // which is ignored; the connection goes on (README, "Where sockio differs from the Node.js
    // server on the wire").
    checks.check("a repeated CONNECT is ignored", || {
        let mut ws = ws_sio(port)?;
        ws.send(Message::text("40")).map_err(|e| e.to_string())?;
        ws.send(Message::text("421[\"message-with-ack\",\"still here\"]"))
            .map_err(|e| e.to_string())?;
        match ws_next_text(&mut ws)? {
            ack if ack == "431[\"still here\"]" => Ok(()),
            other => Err(format!("expected the acknowledgement, got {other:?}")),
        }
    });
    // A placeholder pointing past the attachments, then the attachment.
    checks.check("placeholder out of range", || {
        let mut ws = ws_sio(port)?;
        ws.send(Message::text(
            "451-[\"message-with-ack\",{\"_placeholder\":true,\"num\":3}]",
        ))
        .map_err(|e| e.to_string())?;
        let _ = ws.send(Message::binary(vec![1u8, 2, 3]));
        ws_expect_closed(&mut ws, Duration::from_secs(5)).map(|_| ())
    });
    // Text where an attachment is due.
    checks.check("text while attachments are pending", || {
        let mut ws = ws_sio(port)?;
        ws.send(Message::text(
            "451-[\"message-with-ack\",{\"_placeholder\":true,\"num\":0}]",
        ))
        .map_err(|e| e.to_string())?;
        let _ = ws.send(Message::text("42[\"message\",1]"));
        ws_expect_closed(&mut ws, Duration::from_secs(5)).map(|_| ())
    });
    checks.done(format!(
        "{} packets over WebSocket and polling, a repeated CONNECT, 2 attachment sequences",
        BAD_SOCKET_IO.len()
    ))
}

fn bad_query(port: u16) -> Result<String, String> {
    let mut checks = Checks::new();
    let error = |target: &str, code: i64| {
        request(port, "GET", target, &[], b"").and_then(|r| r.expect_error(400, code))
    };
    checks.check("no transport", || error("/socket.io/?EIO=4", 0));
    checks.check("transport=flashsocket", || {
        error("/socket.io/?EIO=4&transport=flashsocket", 0)
    });
    checks.check("transport=webtransport over HTTP", || {
        error("/socket.io/?EIO=4&transport=webtransport", 0)
    });
    checks.check("unknown sid", || {
        error(&format!("{POLL}&sid=AAAAAAAAAAAAAAAAAAAA"), 1)
    });
    checks.check("garbage sid", || {
        error(&format!("{POLL}&sid=%00%ff%fe..%2F"), 1)
    });
    checks.check("a 4 kB sid", || {
        error(&format!("{POLL}&sid={}", "A".repeat(4_000)), 1)
    });
    checks.check("transport=websocket without Upgrade", || {
        error("/socket.io/?EIO=4&transport=websocket", 3)
    });
    checks.check("JSONP index that is not digits", || {
        error(&format!("{POLL}&j=alert(1)"), 3)
    });
    // The socket-io profile allows Engine.IO 3, so any EIO other than 4 is a v3 handshake
    // (PROTOCOL.md 1.1: `EIO === "4" ? 4 : 3`): a length-prefixed open packet.
    for eio in ["3", "abc", "99999999999999999999", ""] {
        checks.check(&format!("EIO={eio:?}"), || {
            request(
                port,
                "GET",
                &format!("/socket.io/?EIO={eio}&transport=polling"),
                &[],
                b"",
            )
            .and_then(|r| {
                let text = r.text();
                match text.split_once(':') {
                    Some((len, rest)) if r.status == 200 && rest.starts_with("0{") => len
                        .parse::<usize>()
                        .map(|_| ())
                        .map_err(|_| format!("not v3 framing: {text:?}")),
                    _ => Err(format!("{} {text:?}", r.status)),
                }
            })
        });
    }
    // A sid of a polling session, asked for over WebSocket without an upgrade.
    checks.check("polling sid on transport=websocket without Upgrade", || {
        let sid = handshake(port)?;
        request(
            port,
            "GET",
            &format!("/socket.io/?EIO=4&transport=websocket&sid={sid}"),
            &[],
            b"",
        )
        .and_then(|r| {
            if r.status == 400 {
                Ok(())
            } else {
                Err(format!("{} {:?}", r.status, r.text()))
            }
        })
    });
    // A WebSocket session's sid used for polling: 400 code 3 (transport mismatch).
    checks.check("WebSocket sid over polling", || {
        let mut ws = ws_open(port, "", &[])?;
        let sid = sid_of_open(&ws_next_text(&mut ws)?)?;
        let r = get(port, &sid)?;
        drop(ws);
        r.expect_error(400, 3)
    });
    // Outside the path: not the endpoint's business, and no crash.
    checks.check("outside the path", || {
        request(port, "GET", "/elsewhere/?EIO=4&transport=polling", &[], b"").and_then(|r| {
            if r.status == 404 {
                Ok(())
            } else {
                Err(format!("{} {:?}", r.status, r.text()))
            }
        })
    });
    checks.done("17 requests".to_owned())
}

fn wrong_methods(port: u16) -> Result<String, String> {
    let mut checks = Checks::new();
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        checks.check(&format!("{method} handshake"), || {
            request(port, method, POLL, &[], b"x").and_then(|r| r.expect_error(400, 2))
        });
    }
    for method in ["PUT", "DELETE", "PATCH"] {
        checks.check(&format!("{method} on a session"), || {
            let sid = sio_polling(port)?;
            request(port, method, &format!("{POLL}&sid={sid}"), &[], b"x").and_then(|r| {
                if r.status == 500 {
                    Ok(())
                } else {
                    Err(format!("{} {:?}", r.status, r.text()))
                }
            })
        });
    }
    checks.check("HEAD handshake", || {
        let mut http = Http::connect(port).map_err(|e| e.to_string())?;
        http.send("HEAD", POLL, &[], b"")
            .map_err(|e| e.to_string())?;
        // A HEAD answer has no body whatever its Content-Length: read the head only.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match http.stream.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                Ok(_) => break,
                Err(e) => return Err(e.to_string()),
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        if head.starts_with("HTTP/1.1 400") {
            Ok(())
        } else {
            Err(format!("{head:?}"))
        }
    });
    checks.done("8 requests".to_owned())
}

fn post_over_limit(port: u16) -> Result<String, String> {
    let mut checks = Checks::new();
    let sid = sio_polling(port)?;
    let mut body = b"4".to_vec();
    body.extend(std::iter::repeat_n(b'2', 1_000_000));
    checks.check("1,000,001 bytes", || {
        post(port, &sid, &body).and_then(|r| {
            if r.status == 413 {
                Ok(())
            } else {
                Err(format!("{} {:?}", r.status, r.text()))
            }
        })
    });
    // A body that claims 100 MB: answered once the limit is passed, without reading the rest.
    checks.check("Content-Length 100,000,000", || {
        let sid = sio_polling(port)?;
        let mut http = Http::connect(port).map_err(|e| e.to_string())?;
        let head = format!(
            "POST {POLL}&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000000\r\n\r\n"
        );
        http.stream
            .write_all(head.as_bytes())
            .map_err(|e| e.to_string())?;
        // The server may answer (and stop reading) before all of this is written.
        let _ = http.stream.write_all(&body);
        match http.read_response() {
            Ok(r) if r.status == 413 => Ok(()),
            Ok(r) => Err(format!("{} {:?}", r.status, r.text())),
            Err(e) => Err(format!("no answer: {e}")),
        }
    });
    checks.done("2 POSTs".to_owned())
}

fn ws_over_limit(port: u16) -> Result<String, String> {
    let mut checks = Checks::new();
    let big = format!("42[\"message\",\"{}\"]", "x".repeat(1_000_000));
    checks.check("text", || ws_closes(port, Message::text(big)));
    checks.check("binary", || {
        ws_closes(port, Message::binary(vec![7u8; 1_000_001]))
    });
    checks.done("2 messages of ~1 MB".to_owned())
}

fn concurrent_polls(port: u16) -> Result<String, String> {
    let mut checks = Checks::new();
    let mut conclusive = 0;
    for round in 0..20 {
        checks.check(&format!("round {round}"), || {
            let sid = sio_polling(port)?;
            let target = format!("{POLL}&sid={sid}");
            let mut first = Http::connect(port).map_err(|e| e.to_string())?;
            let mut second = Http::connect(port).map_err(|e| e.to_string())?;
            first
                .send("GET", &target, &[], b"")
                .map_err(|e| e.to_string())?;
            second
                .send("GET", &target, &[], b"")
                .map_err(|e| e.to_string())?;
            let a = first.read_response().map_err(|e| e.to_string())?;
            let b = second.read_response().map_err(|e| e.to_string())?;
            // Whichever arrived second gets 400 (or 500), the held one gets the close packet.
            let both_answered = a.status == 200 && b.status == 200;
            let (refused, held) = if a.status == 200 { (b, a) } else { (a, b) };
            if both_answered && !held.packets().iter().any(|p| p == "1") {
                // The first poll was answered (a ping was due) before the second arrived: the
                // polls were not concurrent; this round proves nothing.
                return Ok(());
            }
            conclusive += 1;
            if !(refused.status == 400 || refused.status == 500) {
                Err(format!(
                    "second poll: {} {:?}",
                    refused.status,
                    refused.text()
                ))
            } else if held.status != 200 || !held.packets().iter().any(|p| p == "1") {
                Err(format!("held poll: {} {:?}", held.status, held.text()))
            } else if !polling_closed(port, &sid)? {
                Err("the session lives on".to_owned())
            } else {
                Ok(())
            }
        });
    }
    if conclusive < 10 {
        return Err(format!(
            "only {conclusive} of 20 rounds had two polls at once"
        ));
    }
    checks.done(format!("{conclusive} of 20 rounds with two polls at once"))
}

fn invalid_utf8(port: u16) -> Result<String, String> {
    let mut checks = Checks::new();
    checks.check("polling body", || {
        post_closes(port, b"42[\"message-with-ack\",\"\xff\xfe\xc3\x28\"]")
    });
    checks.check("WebSocket text frame", || {
        let mut ws = ws_sio(port)?;
        let frame = raw_frame(0x1, b"42[\"message\",\"\xff\xfe\xc3\x28\"]");
        ws.get_mut().write_all(&frame).map_err(|e| e.to_string())?;
        ws_expect_closed(&mut ws, Duration::from_secs(5)).map(|_| ())
    });
    checks.check("query string", || {
        let mut http = Http::connect(port).map_err(|e| e.to_string())?;
        http.stream
            .write_all(
                b"GET /socket.io/?EIO=4&transport=polling&sid=\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
            )
            .map_err(|e| e.to_string())?;
        match http.read_response() {
            Ok(r) if r.status == 400 => Ok(()),
            Ok(r) => Err(format!("{} {:?}", r.status, r.text())),
            Err(e) => Err(format!("no answer: {e}")),
        }
    });
    checks.check("header value", || {
        request(port, "GET", POLL, &[("Origin", "http://\u{ff}x")], b"")
            .and_then(|r| r.expect_error(400, 3))
    });
    checks.done("polling body, WebSocket text frame, query, header".to_owned())
}

fn deep_json(port: u16) -> Result<String, String> {
    let mut checks = Checks::new();
    for depth in [1_000usize, 100_000] {
        let text = format!(
            "42[\"message-with-ack\",{}{}]",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        checks.check(&format!("ws depth {depth}"), || {
            ws_closes(port, Message::text(text.clone()))
        });
        if depth < 500_000 {
            checks.check(&format!("polling depth {depth}"), || {
                post_closes(port, text.as_bytes())
            });
        }
        let objects = format!(
            "42[\"message-with-ack\",{}1{}]",
            "{\"a\":".repeat(depth),
            "}".repeat(depth)
        );
        checks.check(&format!("ws objects depth {depth}"), || {
            ws_closes(port, Message::text(objects))
        });
    }
    // Under the limit: answered.
    checks.check("depth 100 is answered", || {
        let mut ws = ws_sio(port)?;
        ws.send(Message::text(format!(
            "427[\"message-with-ack\",{}{}]",
            "[".repeat(100),
            "]".repeat(100)
        )))
        .map_err(|e| e.to_string())?;
        let reply = ws_next_text(&mut ws)?;
        if reply.starts_with("437[") {
            Ok(())
        } else {
            Err(format!("{reply:?}"))
        }
    });
    checks.done("depths 100, 1,000 and 100,000".to_owned())
}

fn ack_overflow(port: u16) -> Result<String, String> {
    let mut checks = Checks::new();
    for id in [
        "18446744073709551616",
        "99999999999999999999999999999999999999",
    ] {
        checks.check(&format!("event with ack id {id}"), || {
            ws_closes(
                port,
                Message::text(format!("42{id}[\"message-with-ack\",1]")),
            )
        });
        checks.check(&format!("ACK with id {id}"), || {
            ws_closes(port, Message::text(format!("43{id}[1]")))
        });
    }
    checks.check("u64::MAX is answered", || {
        let mut ws = ws_sio(port)?;
        ws.send(Message::text(
            "4218446744073709551615[\"message-with-ack\",1]",
        ))
        .map_err(|e| e.to_string())?;
        let reply = ws_next_text(&mut ws)?;
        if reply == "4318446744073709551615[1]" {
            Ok(())
        } else {
            Err(format!("{reply:?}"))
        }
    });
    checks.check("an ACK nobody awaits is ignored", || {
        let mut ws = ws_sio(port)?;
        ws.send(Message::text("4312345[1]"))
            .map_err(|e| e.to_string())?;
        ws.send(Message::text("425[\"message-with-ack\",2]"))
            .map_err(|e| e.to_string())?;
        let reply = ws_next_text(&mut ws)?;
        if reply == "435[2]" {
            Ok(())
        } else {
            Err(format!("{reply:?}"))
        }
    });
    checks.done("4 overflowing ids, u64::MAX, an unknown ACK".to_owned())
}

fn placeholders(count: usize) -> String {
    (0..count)
        .map(|i| format!(",{{\"_placeholder\":true,\"num\":{i}}}"))
        .collect()
}

fn attachment_count_bomb(port: u16) -> Result<String, String> {
    let mut checks = Checks::new();
    for count in ["11", "1000000", "18446744073709551616"] {
        let text = format!("45{count}-[\"message-with-ack\"{}]", placeholders(11));
        checks.check(&format!("ws {count}"), || {
            ws_closes(port, Message::text(text.clone()))
        });
        checks.check(&format!("polling {count}"), || {
            post_closes(port, text.as_bytes())
        });
    }
    checks.check("10 attachments are answered", || {
        let mut ws = ws_sio(port)?;
        ws.send(Message::text(format!(
            "4510-3[\"message-with-ack\"{}]",
            placeholders(10)
        )))
        .map_err(|e| e.to_string())?;
        for i in 0..10u8 {
            ws.send(Message::binary(vec![i; 10]))
                .map_err(|e| e.to_string())?;
        }
        let reply = ws_next_text(&mut ws)?;
        if reply.starts_with("4610-3[") {
            Ok(())
        } else {
            Err(format!("{reply:?}"))
        }
    });
    checks.done("counts 11, 10^6, 2^64".to_owned())
}

/// Binary packets that announce 10 attachments of ~1 MB, send 9 and stop: up to ~9 MB pinned
/// per attacker until the attachment timeout ends the connection. Each attacker runs on its own
/// thread and times its own packet.
///
/// An attacker cannot answer the server's pings while it is writing its megabytes, and even a
/// pong written in between would wait behind them for the server to read. With the suite's 2 s
/// ping timeout ([`PING_TIMEOUT_MS`]), a server that takes over about 2 s to read the 9 MB would
/// end an attacker by the heartbeat before the 3 s attachment timeout, and this check fails;
/// it reads them in well under a second here.
fn attachment_size_bomb(port: u16) -> Result<String, String> {
    let attackers = 10;
    let within = ATTACHMENT_TIMEOUT + Duration::from_secs(10);
    let started = Instant::now();
    let runs: Vec<_> = (0..attackers)
        .map(|_| {
            std::thread::spawn(move || -> Result<Duration, String> {
                let mut ws = ws_sio(port)?;
                // A server that neither reads nor closes fails the attack instead of hanging it.
                ws.get_ref()
                    .set_write_timeout(Some(within))
                    .map_err(|e| e.to_string())?;
                let announced = Instant::now();
                ws.send(Message::text(format!(
                    "4510-[\"message-with-ack\"{}]",
                    placeholders(10)
                )))
                .map_err(|e| e.to_string())?;
                for i in 0..9u8 {
                    match ws.send(Message::binary(vec![i; 1_000_000])) {
                        Ok(()) => {}
                        // On a slow machine the timeout may end the connection before the 9 MB
                        // are written: that is the end this attack waits for.
                        Err(e) if ended_by_the_server(&e) => return Ok(announced.elapsed()),
                        Err(e) => return Err(format!("attachment {i}: {e}")),
                    }
                }
                ws_expect_closed(&mut ws, within)?;
                Ok(announced.elapsed())
            })
        })
        .collect();
    let mut checks = Checks::new();
    for (i, run) in runs.into_iter().enumerate() {
        let outcome = run
            .join()
            .unwrap_or_else(|_| Err("the attacker thread panicked".to_owned()));
        checks.check(&format!("attacker {i}"), || {
            // The server's timer starts when it reads the announcement, after it was sent.
            let lived = outcome?;
            if lived + Duration::from_millis(500) >= ATTACHMENT_TIMEOUT {
                Ok(())
            } else {
                Err(format!(
                    "closed {lived:?} after its announcement, before the timeout"
                ))
            }
        });
    }
    checks.done(format!(
        "{attackers} × 9 MB of a 10-attachment packet; all ended after {:?} (attachment timeout \
         {ATTACHMENT_TIMEOUT:?}, ping timeout {PING_TIMEOUT_MS} ms)",
        started.elapsed()
    ))
}

/// A write that failed because the server closed the connection.
fn ended_by_the_server(error: &tungstenite::Error) -> bool {
    match error {
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => true,
        tungstenite::Error::Io(e) => matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
        ),
        _ => false,
    }
}

fn cors(port: u16) -> Result<String, String> {
    let mut checks = Checks::new();
    let evil = [("Origin", "http://evil.example")];
    checks.check("handshake", || {
        request(port, "GET", POLL, &evil, b"").and_then(|r| {
            r.expect_error(400, 3)?;
            match r.header("access-control-allow-origin") {
                None => Ok(()),
                Some(v) => Err(format!("Access-Control-Allow-Origin: {v}")),
            }
        })
    });
    checks.check("preflight", || {
        request(
            port,
            "OPTIONS",
            POLL,
            &[
                ("Origin", "http://evil.example"),
                ("Access-Control-Request-Method", "POST"),
            ],
            b"",
        )
        .and_then(|r| {
            if r.header("access-control-allow-origin").is_some() {
                Err(format!("allowed: {:?}", r.headers))
            } else {
                r.expect_error(400, 3)
            }
        })
    });
    checks.check("POST on a session", || {
        let sid = sio_polling(port)?;
        request(
            port,
            "POST",
            &format!("{POLL}&sid={sid}"),
            &evil,
            b"42[\"message\",1]",
        )
        .and_then(|r| r.expect_error(400, 3))
    });
    checks.check("WebSocket", || match ws_open(port, "", &evil) {
        Ok(_) => Err("upgraded".to_owned()),
        Err(e) if e.contains("400") => Ok(()),
        Err(e) => Err(e),
    });
    checks.check("the allowed origin is echoed", || {
        request(port, "GET", POLL, &[("Origin", ALLOWED_ORIGIN)], b"").and_then(|r| {
            match (r.status, r.header("access-control-allow-origin")) {
                (200, Some(v)) if v == ALLOWED_ORIGIN => Ok(()),
                _ => Err(format!("{} {:?}", r.status, r.headers)),
            }
        })
    });
    checks.check("the allowed origin over WebSocket", || {
        ws_open(port, "", &[("Origin", ALLOWED_ORIGIN)]).map(|_| ())
    });
    checks.done("HTTP handshake, preflight, POST, WebSocket".to_owned())
}

/// 5,000 Socket.IO sessions over polling, joined to `/`, then never polled again; they must be
/// gone once ping interval + ping timeout (+ slack) have passed.
pub fn abandoned_sessions(port: u16) -> Result<String, String> {
    const SESSIONS: usize = 5_000;
    const THREADS: usize = 4;
    let started = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            std::thread::spawn(move || -> Result<Vec<String>, String> {
                let mut http = Http::connect(port).map_err(|e| e.to_string())?;
                let mut sids = Vec::new();
                for _ in 0..SESSIONS / THREADS {
                    let sid = handshake_on(&mut http)?;
                    let r = http
                        .request(
                            "POST",
                            &format!("{POLL}&sid={sid}"),
                            &[("Content-Type", "text/plain;charset=UTF-8")],
                            b"40",
                        )
                        .map_err(|e| e.to_string())?;
                    if r.status != 200 {
                        return Err(format!("POST 40: {} {:?}", r.status, r.text()));
                    }
                    sids.push(sid);
                }
                Ok(sids)
            })
        })
        .collect();
    let mut sids = Vec::new();
    for worker in workers {
        sids.extend(worker.join().map_err(|_| "worker panicked".to_owned())??);
    }
    let opened = started.elapsed();
    // Every 50th session, until each is gone (one GET on a live one brings its CONNECT reply
    // or a ping and counts as nothing: only a pong keeps a v4 session alive).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut sample: Vec<&String> = sids.iter().step_by(50).collect();
    while !sample.is_empty() {
        if Instant::now() > deadline {
            return Err(format!(
                "{} of {} sampled sessions still alive 20 s after the last was opened",
                sample.len(),
                sids.len() / 50
            ));
        }
        let mut alive = Vec::new();
        for sid in sample {
            if !polling_closed(port, sid)? {
                alive.push(sid);
            }
        }
        sample = alive;
    }
    Ok(format!(
        "{} sessions opened in {opened:?}; the sampled ones were gone {:?} after the start",
        sids.len(),
        started.elapsed()
    ))
}

/// Polling sessions whose WebSocket upgrade stops after the probe (or before it); the server
/// must end the WebSockets once the session is over (upgrade timeout or heartbeat).
fn unfinished_upgrades(port: u16) -> Result<String, String> {
    const PROBED: usize = 150;
    const SILENT: usize = 50;
    let mut sockets = Vec::new();
    for i in 0..PROBED + SILENT {
        let sid = sio_polling(port)?;
        let mut ws = ws_open(port, &format!("&sid={sid}"), &[])?;
        if i < PROBED {
            ws.send(Message::text("2probe"))
                .map_err(|e| e.to_string())?;
            let reply = ws_next_text(&mut ws)?;
            if reply != "3probe" {
                return Err(format!("probe answered {reply:?}"));
            }
        }
        sockets.push(ws);
    }
    let started = Instant::now();
    let mut still_open = 0;
    for ws in &mut sockets {
        if ws_expect_closed(ws, Duration::from_secs(15)).is_err() {
            still_open += 1;
        }
    }
    if still_open > 0 {
        return Err(format!(
            "{still_open} unfinished upgrades still open after 15 s"
        ));
    }
    Ok(format!(
        "{PROBED} stopped after 3probe, {SILENT} sent nothing; all closed by the server within {:?}",
        started.elapsed()
    ))
}

/// Upgrades that stop after the probe while their polling sessions stay alive (pings answered
/// over polling): the upgrade timeout must end the probe WebSocket, and the session must go on
/// over polling, as the reference server does. Each session is kept alive from the moment it is
/// joined, so however long the others take to set up, no session misses a ping.
fn upgrades_held_past_the_timeout(port: u16) -> Result<String, String> {
    const SESSIONS: usize = 20;
    let within = UPGRADE_TIMEOUT + Duration::from_secs(10);
    let outcomes = std::thread::scope(|scope| -> Result<Vec<Result<Duration, String>>, String> {
        let mut workers = Vec::new();
        for _ in 0..SESSIONS {
            let sid = sio_polling(port)?;
            workers.push(scope.spawn(move || {
                let done = std::sync::atomic::AtomicBool::new(false);
                std::thread::scope(|inner| {
                    let polling = inner.spawn(|| keep_polling(port, &sid, &done));
                    let held = hold_a_probe(port, &sid, within);
                    done.store(true, std::sync::atomic::Ordering::SeqCst);
                    let polled = polling
                        .join()
                        .unwrap_or_else(|_| Err("the polling thread panicked".to_owned()));
                    let after = held?;
                    polled.map_err(|e| format!("the session did not survive: {e}"))?;
                    Ok(after)
                })
            }));
        }
        Ok(workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err("worker panicked".to_owned()))
            })
            .collect())
    })?;
    let mut checks = Checks::new();
    let mut latest = Duration::ZERO;
    for (i, outcome) in outcomes.into_iter().enumerate() {
        checks.check(&format!("session {i}"), || {
            let after = outcome?;
            latest = latest.max(after);
            if after + Duration::from_millis(500) < UPGRADE_TIMEOUT {
                Err(format!(
                    "the probe ended after {after:?}, before the timeout"
                ))
            } else {
                Ok(())
            }
        });
    }
    checks.done(format!(
        "{SESSIONS} probes held with their sessions alive: every probe WebSocket closed at most \
         {latest:?} after its probe (upgrade timeout {UPGRADE_TIMEOUT:?}), every session still \
         polling"
    ))
}

/// Opens a WebSocket for the polling session `sid`, probes it, then never finishes the upgrade:
/// how long after the probe the server ended that WebSocket (within `within`).
fn hold_a_probe(port: u16, sid: &str, within: Duration) -> Result<Duration, String> {
    let mut ws = ws_open(port, &format!("&sid={sid}"), &[])?;
    ws.send(Message::text("2probe"))
        .map_err(|e| e.to_string())?;
    let reply = ws_next_text(&mut ws)?;
    if reply != "3probe" {
        return Err(format!("probe answered {reply:?}"));
    }
    let probed = Instant::now();
    ws_expect_closed(&mut ws, within)?;
    Ok(probed.elapsed())
}

/// Polls `sid` and answers its pings until `done`; an error if the session ends meanwhile.
fn keep_polling(port: u16, sid: &str, done: &std::sync::atomic::AtomicBool) -> Result<(), String> {
    while !done.load(std::sync::atomic::Ordering::SeqCst) {
        let resp = get(port, sid)?;
        if resp.status != 200 {
            return Err(format!("GET: {} {:?}", resp.status, resp.text()));
        }
        let packets = resp.packets();
        if packets.iter().any(|p| p == "1") {
            return Err("the server closed the session".to_owned());
        }
        if packets.iter().any(|p| p == "2") {
            let pong = post(port, sid, b"3")?;
            if pong.status != 200 {
                return Err(format!("POST 3: {} {:?}", pong.status, pong.text()));
            }
        }
    }
    Ok(())
}

/// Connections that send their request head one byte at a time (all interleaved), and others
/// that stop in the middle of it; the slow ones must still get their handshake, and everyone
/// else is served meanwhile.
fn slowloris(port: u16) -> Result<String, String> {
    const SLOW: usize = 200;
    const STUCK: usize = 200;
    let request = format!(
        "GET {POLL} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\nAccept: */*\r\n\r\n"
    );
    let bytes = request.as_bytes();
    let mut slow = Vec::new();
    for _ in 0..SLOW {
        let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        slow.push(s);
    }
    let mut stuck = Vec::new();
    for _ in 0..STUCK {
        let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        s.write_all(&bytes[..bytes.len() / 2])
            .map_err(|e| e.to_string())?;
        stuck.push(s);
    }
    let started = Instant::now();
    for i in 0..bytes.len() {
        for s in &mut slow {
            s.write_all(&bytes[i..=i]).map_err(|e| e.to_string())?;
        }
        // Pacing of the attack (not synchronisation): about 2 ms per byte.
        std::thread::sleep(Duration::from_millis(2));
    }
    let sent = started.elapsed();
    let mut checks = Checks::new();
    for (i, s) in slow.into_iter().enumerate() {
        let mut http = Http::from_stream(s).map_err(|e| e.to_string())?;
        checks.check(&format!("slow {i}"), || match http.read_response() {
            Ok(r) if r.status == 200 && r.text().starts_with("0{") => Ok(()),
            Ok(r) => Err(format!("{} {:?}", r.status, r.text())),
            Err(e) => Err(e.to_string()),
        });
    }
    drop(stuck);
    checks.done(format!(
        "{SLOW} heads sent a byte at a time over {sent:?}, {STUCK} left half-sent"
    ))
}

/// WebSocket clients that never read while another client broadcasts ~21 MB to everyone.
fn slow_readers(port: u16) -> Result<String, String> {
    const READERS: usize = 10;
    const BROADCASTS: usize = 120;
    let mut readers = Vec::new();
    for _ in 0..READERS {
        readers.push(ws_sio(port)?);
    }
    let mut sender = ws_sio(port)?;
    let payload = "y".repeat(256 * 1024);
    let started = Instant::now();
    let mut last_pong = Instant::now();
    for i in 0..BROADCASTS {
        // The readers answer the heartbeat without reading (a pong every 250 ms, blindly), so
        // what ends them is the outbound-queue cap, not the ping timeout.
        if last_pong.elapsed() >= Duration::from_millis(250) {
            for reader in &mut readers {
                let _ = reader.send(Message::text("3"));
            }
            last_pong = Instant::now();
        }
        sender
            .send(Message::text(format!("42{i}[\"broadcast\",\"{payload}\"]")))
            .map_err(|e| format!("broadcast {i}: {e}"))?;
        // The sender reads its acks so that it is not a slow reader itself.
        loop {
            let text = ws_next_text(&mut sender)?;
            if text.starts_with(&format!("43{i}[")) {
                break;
            }
        }
    }
    let sent = started.elapsed();
    drop(sender);
    // Now read what each slow reader was sent: the server must have ended each of them (queue
    // cap, or the heartbeat once the pongs stopped) rather than buffering forever.
    let mut received = Vec::new();
    let mut endings: Vec<String> = Vec::new();
    let mut checks = Checks::new();
    for (i, mut ws) in readers.into_iter().enumerate() {
        let _ = ws
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(500)));
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut bytes = 0usize;
        let result = loop {
            if Instant::now() > deadline {
                break Err(format!("still open after 20 s, {bytes} bytes read"));
            }
            match ws.read() {
                Ok(Message::Text(t)) => bytes += t.len(),
                Ok(Message::Close(frame)) => {
                    break Ok(format!(
                        "close {}",
                        frame.map(|f| u16::from(f.code)).unwrap_or(0)
                    ));
                }
                Ok(_) => {}
                Err(e) if is_wait(&e) => {}
                // A reset discards what the reader's kernel had buffered: the count is then
                // what was read before it.
                Err(e) => break Ok(format!("{e}")),
            }
        };
        if let Ok(how) = &result {
            endings.push(how.clone());
        }
        received.push(bytes / 1024 / 1024);
        checks.check(&format!("reader {i}"), || result.map(|_| ()));
    }
    checks.done(format!(
        "{BROADCASTS} × 256 KiB broadcast in {sent:?}; the {READERS} readers had been sent \
         {received:?} MiB of the {} MiB before being closed ({})",
        BROADCASTS / 4,
        {
            endings.sort();
            endings.dedup();
            endings.join(", ")
        }
    ))
}

/// Many clients connect (WebSocket, join `/`, leave abruptly), and many TCP connections open
/// and say nothing.
fn connect_flood(port: u16) -> Result<String, String> {
    const WS_CLIENTS: usize = 800;
    const IDLE_TCP: usize = 1_500;
    const THREADS: usize = 4;
    let started = Instant::now();
    let idle: Vec<TcpStream> = (0..IDLE_TCP)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            std::thread::spawn(move || -> Result<(), String> {
                for _ in 0..WS_CLIENTS / THREADS {
                    let ws = ws_sio(port)?;
                    drop(ws); // no close frame: the TCP connection just ends
                }
                Ok(())
            })
        })
        .collect();
    for w in workers {
        w.join().map_err(|_| "worker panicked".to_owned())??;
    }
    let idle_count = idle.len();
    drop(idle);
    if idle_count < IDLE_TCP {
        return Err(format!(
            "only {idle_count} of {IDLE_TCP} TCP connections opened"
        ));
    }
    Ok(format!(
        "{WS_CLIENTS} WebSocket clients joined and vanished, {IDLE_TCP} idle TCP connections, in {:?}",
        started.elapsed()
    ))
}
