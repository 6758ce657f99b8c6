//! Engine.IO v3 (socket.io-client 2.x) and JSONP attacks: garbage in v3 text payloads (UTF-16
//! length prefixes), in the XHR2 binary payload, in JSONP form bodies, in v3 WebSocket frames,
//! and script injection through the JSONP callback index. The profile allows EIO3.
//!
//! v3 servers do not ping; the client does. A live v3 session therefore never answers a GET by
//! itself, so these checks ask it something (a ping `2`, answered `3`) instead of waiting for
//! the heartbeat, which would end a live session too and could not tell the two apart.

use std::time::{Duration, Instant};

use tungstenite::Message;

use super::attacks::Checks;
use super::net::*;

const POLL3: &str = "/socket.io/?EIO=3&transport=polling";

/// How a polling session's requests are made: XHR (text or binary bodies) or JSONP (`j=0`,
/// form-encoded POSTs, responses wrapped in `___eio[0]("...")`).
#[derive(Clone, Copy)]
enum Polling {
    Xhr,
    Jsonp,
}

impl Polling {
    fn query(self) -> &'static str {
        match self {
            Polling::Xhr => "",
            Polling::Jsonp => "&j=0",
        }
    }
}

/// A v3 handshake; the sid.
fn handshake3(port: u16, polling: Polling) -> Result<String, String> {
    let resp = request(
        port,
        "GET",
        &format!("{POLL3}{}", polling.query()),
        &[],
        b"",
    )?;
    if resp.status != 200 {
        return Err(format!("handshake: {} {:?}", resp.status, resp.text()));
    }
    let text = resp.text().replace("\\\"", "\"");
    let start = text
        .find("\"sid\":\"")
        .ok_or_else(|| format!("no sid in {text:?}"))?
        + "\"sid\":\"".len();
    let len = text[start..]
        .find('"')
        .ok_or_else(|| format!("unterminated sid in {text:?}"))?;
    Ok(text[start..start + len].to_owned())
}

fn post3(
    port: u16,
    polling: Polling,
    sid: &str,
    content_type: &str,
    body: &[u8],
) -> Result<Resp, String> {
    request(
        port,
        "POST",
        &format!("{POLL3}{}&sid={sid}", polling.query()),
        &[("Content-Type", content_type)],
        body,
    )
}

/// The packets of a v3 text payload `<len>:<packet>...` (lengths in UTF-16 units), unwrapping
/// a JSONP response first.
fn packets3(body: &str) -> Result<Vec<String>, String> {
    let payload = match body.strip_prefix("___eio[") {
        Some(rest) => {
            let open = rest
                .find("](")
                .ok_or_else(|| format!("bad JSONP {body:?}"))?;
            let literal = rest[open + 2..]
                .strip_suffix(");")
                .ok_or_else(|| format!("bad JSONP {body:?}"))?;
            serde_json::from_str::<String>(literal).map_err(|e| format!("JSONP {body:?}: {e}"))?
        }
        None => body.to_owned(),
    };
    let mut packets = Vec::new();
    let mut rest = payload.as_str();
    while !rest.is_empty() {
        let colon = rest
            .find(':')
            .ok_or_else(|| format!("bad v3 payload {payload:?}"))?;
        let units: usize = rest[..colon]
            .parse()
            .map_err(|_| format!("bad v3 length in {payload:?}"))?;
        let mut taken = 0;
        let mut end = colon + 1;
        for c in rest[colon + 1..].chars() {
            if taken == units {
                break;
            }
            taken += c.len_utf16();
            end += c.len_utf8();
        }
        packets.push(rest[colon + 1..end].to_owned());
        rest = &rest[end..];
    }
    Ok(packets)
}

/// Whether the session is over, asked without waiting for the heartbeat: a ping POST gets 400
/// code 1 when the session is gone; otherwise the next GET brings the close packet (a session
/// ending) or the pong (a session that lives).
fn closed3(port: u16, polling: Polling, sid: &str) -> Result<bool, String> {
    let ping = match polling {
        Polling::Xhr => post3(port, polling, sid, "text/plain;charset=UTF-8", b"1:2")?,
        Polling::Jsonp => post3(
            port,
            polling,
            sid,
            "application/x-www-form-urlencoded",
            b"d=1%3A2",
        )?,
    };
    if ping.status == 400 {
        ping.expect_error(400, 1)?;
        return Ok(true);
    }
    // The close packet comes alone, in the poll after what was queued before it.
    let mut seen = Vec::new();
    for _ in 0..2 {
        let resp = request(
            port,
            "GET",
            &format!("{POLL3}{}&sid={sid}", polling.query()),
            &[],
            b"",
        )?;
        if resp.status == 400 {
            resp.expect_error(400, 1)?;
            return Ok(true);
        }
        if resp.status != 200 {
            return Err(format!("GET: {} {:?}", resp.status, resp.text()));
        }
        let packets = packets3(&resp.text())?;
        if packets.iter().any(|p| p == "1") {
            return Ok(true);
        }
        if packets.iter().any(|p| p == "3") {
            return Ok(false);
        }
        seen.extend(packets);
    }
    Err(format!("two GETs brought neither close nor pong: {seen:?}"))
}

/// Sends `body` on a fresh v3 session and checks the server ends that session.
fn post3_closes(
    port: u16,
    polling: Polling,
    content_type: &str,
    body: &[u8],
) -> Result<(), String> {
    let sid = handshake3(port, polling)?;
    let resp = post3(port, polling, &sid, content_type, body)?;
    if resp.status != 200 && resp.status != 400 {
        return Err(format!("POST answered {} {:?}", resp.status, resp.text()));
    }
    if closed3(port, polling, &sid)? {
        Ok(())
    } else {
        Err("the session lives on".to_owned())
    }
}

/// A v3 WebSocket session: the open packet read, and `40` (the server joins 2.x clients to `/`).
fn ws3(port: u16) -> Result<Ws, String> {
    let mut ws = ws_open_eio(port, 3, "", &[])?;
    sid_of_open(&ws_next_text(&mut ws)?)?;
    let joined = ws_next_text(&mut ws)?;
    if joined != "40" {
        return Err(format!("expected 40, got {joined:?}"));
    }
    Ok(ws)
}

/// Whether the server ends the v3 WebSocket within `within`, while this client keeps pinging
/// (so the heartbeat cannot be what ends it).
fn ws3_closed(ws: &mut Ws, within: Duration) -> Result<bool, String> {
    let deadline = Instant::now() + within;
    let _ = ws
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(100)));
    let mut next_ping = Instant::now();
    while Instant::now() < deadline {
        if Instant::now() >= next_ping {
            if ws.send(Message::text("2")).is_err() {
                return Ok(true);
            }
            next_ping = Instant::now() + Duration::from_millis(200);
        }
        match ws.read() {
            Ok(Message::Text(text)) if text.as_str() == "1" => return Ok(true),
            Ok(Message::Close(_)) => return Ok(true),
            Ok(_) => {}
            Err(e) if is_wait(&e) => {}
            Err(_) => return Ok(true),
        }
    }
    Ok(false)
}

fn ws3_closes(port: u16, message: Message) -> Result<(), String> {
    let mut ws = ws3(port)?;
    if ws.send(message).is_err() || ws3_closed(&mut ws, Duration::from_secs(5))? {
        Ok(())
    } else {
        Err("the WebSocket lives on".to_owned())
    }
}

pub fn v3_and_jsonp_garbage(port: u16) -> Result<String, String> {
    const TEXT: &str = "text/plain;charset=UTF-8";
    const BINARY: &str = "application/octet-stream";
    const FORM: &str = "application/x-www-form-urlencoded";
    let mut checks = Checks::new();

    // Controls: valid traffic keeps each kind of session alive, so "closed" below means
    // something.
    for polling in [Polling::Xhr, Polling::Jsonp] {
        checks.check("a valid session lives", || {
            let sid = handshake3(port, polling)?;
            if closed3(port, polling, &sid)? {
                Err("closed after a ping".to_owned())
            } else {
                Ok(())
            }
        });
    }
    checks.check("a valid v3 WebSocket lives", || {
        let mut ws = ws3(port)?;
        if ws3_closed(&mut ws, Duration::from_millis(600))? {
            Err("closed while pinging".to_owned())
        } else {
            Ok(())
        }
    });

    // engine.io-parser 2 skips an empty packet in a v3 payload (`if (msg.length)`), so the
    // reference server keeps such a session; so does sockio.
    checks.check("v3 text \"0:\" is skipped", || {
        let sid = handshake3(port, Polling::Xhr)?;
        post3(port, Polling::Xhr, &sid, TEXT, b"0:")?;
        if closed3(port, Polling::Xhr, &sid)? {
            Err("closed".to_owned())
        } else {
            Ok(())
        }
    });

    let text_bodies: &[&str] = &[
        "99999999999999999999:4", // a length that overflows
        "5:4abc",                 // a length past the end
        "abc",                    // no length
        "2:9x",                   // an unknown packet type
        "1:4é",                   // a length that splits the payload mid-packet
        "6:b4@@@@",               // base64 that is not
        "3:42[",                  // a Socket.IO event with broken JSON
    ];
    for body in text_bodies {
        checks.check(&format!("v3 text {body:?}"), || {
            post3_closes(port, Polling::Xhr, TEXT, body.as_bytes())
        });
    }

    let mut overflow = vec![0u8];
    overflow.extend(std::iter::repeat_n(9u8, 400));
    overflow.push(0xff);
    let binary_bodies: &[(&str, &[u8])] = &[
        ("a length past the end", &[0, 9, 9, 9, 0xff, b'4', b'a']),
        ("no length digits", &[0, 0xff, b'4']),
        ("an unknown header byte", &[2, 1, 0xff, b'4']),
        ("a length that overflows", &overflow),
        ("a digit byte over 9", &[0, 10, 0xff, b'4']),
        ("a binary packet of unknown type", &[1, 2, 0xff, 9, 9]),
    ];
    for (what, body) in binary_bodies {
        checks.check(&format!("v3 binary payload with {what}"), || {
            post3_closes(port, Polling::Xhr, BINARY, body)
        });
    }

    let form_bodies: &[&str] = &[
        "d=5%3A4abc",                 // a bad payload inside a good form
        "d=99999999999999999999%3A4", // an overflowing length
        "d=%ZZ",                      // a bad percent escape: kept, so not a payload
    ];
    for body in form_bodies {
        checks.check(&format!("JSONP form {body:?}"), || {
            post3_closes(port, Polling::Jsonp, FORM, body.as_bytes())
        });
    }
    // A form the reference server's querystring gives no string `d` is nothing to read: `ok`,
    // and the session lives on, as there.
    for body in ["x=1", "d=2%3A4a&d=2%3A4b"] {
        checks.check(&format!("JSONP form {body:?} (no single d)"), || {
            let sid = handshake3(port, Polling::Jsonp)?;
            let resp = post3(port, Polling::Jsonp, &sid, FORM, body.as_bytes())?;
            if resp.status != 200 || resp.text() != "ok" {
                return Err(format!("POST answered {} {:?}", resp.status, resp.text()));
            }
            if closed3(port, Polling::Jsonp, &sid)? {
                Err("the session was closed".to_owned())
            } else {
                Ok(())
            }
        });
    }

    // The callback index is written into JavaScript: nothing but digits may get there.
    for j in [
        "0);alert(1)//",
        "%22%3E%3Cscript%3E",
        "99999999999999999999999",
    ] {
        checks.check(&format!("JSONP index {j:?}"), || {
            let resp = request(port, "GET", &format!("{POLL3}&j={j}"), &[], b"")?;
            if resp.status == 400 {
                return Ok(());
            }
            let text = resp.text();
            let index = text
                .strip_prefix("___eio[")
                .and_then(|rest| rest.split_once("]("))
                .map(|(index, _)| index)
                .ok_or_else(|| format!("{} {text:?}", resp.status))?;
            if index.bytes().all(|b| b.is_ascii_digit()) {
                Ok(())
            } else {
                Err(format!("the index {index:?} reached the script"))
            }
        });
    }

    let frames: Vec<(&str, Message)> = vec![
        ("text \"9\"", Message::text("9")),
        ("empty text", Message::text("")),
        ("text b4 with bad base64", Message::text("b4@@@@")),
        ("text 42[", Message::text("42[")),
        ("binary of unknown type", Message::binary(vec![9u8, 1, 2])),
        ("empty binary", Message::binary(Vec::new())),
    ];
    let frame_count = frames.len();
    for (what, frame) in frames {
        checks.check(&format!("v3 WebSocket {what}"), || ws3_closes(port, frame));
    }

    checks.done(format!(
        "{} v3 text bodies, {} binary payloads, {} JSONP forms (and 2 without one d), 3 JSONP indexes, {frame_count} v3 \
         WebSocket frames",
        text_bodies.len(),
        binary_bodies.len(),
        form_bodies.len()
    ))
}
