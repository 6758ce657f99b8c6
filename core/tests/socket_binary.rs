//! BINARY_EVENT / BINARY_ACK: reassembly from text + attachments over every transport, encoding
//! of outgoing attachments per protocol version, and the attachment limits (PROTOCOL.md 1.5, 1.10,
//! 1.13).

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::json;
use sockio_core::engineio::{CloseReason, Sid, WsMessage};
use sockio_core::socketio::decoder::{DecoderLimits, ParseError};
use sockio_core::socketio::packet::placeholder;
use sockio_core::socketio::{DisconnectReason, SocketConfig, SocketEvent};
use support::*;

const UPLOAD: &str = r#"451-["upload",{"_placeholder":true,"num":0}]"#;

fn bin(data: &'static [u8]) -> Bytes {
    Bytes::from_static(data)
}

fn upload(sid: &Sid, attachments: Vec<Bytes>) -> SocketEvent {
    SocketEvent::Event {
        namespace: "/".into(),
        sid: sid.clone(),
        event: "upload".to_owned(),
        args: vec![placeholder(0)],
        attachments,
        ack_id: None,
    }
}

/// The events of a connection closed for a bad binary packet while joined to `/` only.
fn parse_error_close(sid: &Sid, error: ParseError) -> Vec<SocketEvent> {
    vec![
        SocketEvent::Disconnect {
            namespace: "/".into(),
            sid: sid.clone(),
            reason: DisconnectReason::ParseError(error),
        },
        SocketEvent::Closed(CloseReason::ForcedClose),
    ]
}

/// A v3 binary polling payload (octet-stream) of the given packets: `(is_binary, bytes)`.
fn v3_binary_payload(packets: &[(bool, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (binary, data) in packets {
        out.push(u8::from(*binary));
        for digit in data.len().to_string().bytes() {
            out.push(digit - b'0');
        }
        out.push(0xFF);
        out.extend_from_slice(data);
    }
    out
}

// ----- client → server -----------------------------------------------------------------------

#[test]
fn v5_websocket_binary_event() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws, id) = h.sio_ws_joined();
    h.ws_send_text(ws, UPLOAD);
    assert!(h.take_events(&sid).is_empty(), "waits for the attachment");
    h.ws_send(ws, WsMessage::Binary(bin(&[1, 2, 3])));
    assert_eq!(
        h.take_events(&sid),
        vec![upload(&id, vec![bin(&[1, 2, 3])])]
    );
}

#[test]
fn v5_websocket_binary_event_with_two_attachments_in_a_namespace_with_ack() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws, _) = h.sio_ws_joined();
    let admin = h.sio_ws_join(&sid, ws, "/admin");
    h.ws_send_text(
        ws,
        r#"452-/admin,3["two",{"a":{"_placeholder":true,"num":1}},[{"_placeholder":true,"num":0}]]"#,
    );
    h.ws_send(ws, WsMessage::Binary(bin(b"first")));
    assert!(h.take_events(&sid).is_empty());
    h.ws_send(ws, WsMessage::Binary(bin(b"")));
    assert_eq!(
        h.take_events(&sid),
        vec![SocketEvent::Event {
            namespace: "/admin".into(),
            sid: admin,
            event: "two".to_owned(),
            args: vec![json!({"a": placeholder(1)}), json!([placeholder(0)])],
            attachments: vec![bin(b"first"), bin(b"")],
            ack_id: Some(3),
        }]
    );
}

#[test]
fn binary_event_declaring_zero_attachments_is_delivered_at_once() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws, id) = h.sio_ws_joined();
    h.ws_send_text(ws, r#"450-["none",1]"#);
    assert_eq!(
        h.take_events(&sid),
        vec![SocketEvent::Event {
            namespace: "/".into(),
            sid: id,
            event: "none".to_owned(),
            args: vec![json!(1)],
            attachments: vec![],
            ack_id: None,
        }]
    );
}

#[test]
fn v4_websocket_binary_event_strips_the_type_byte() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws) = h.sio_ws_v4_joined();
    h.ws_send_text(ws, UPLOAD);
    h.ws_send(ws, WsMessage::Binary(bin(&[4, 1, 2, 3])));
    assert_eq!(
        h.take_events(&sid),
        vec![upload(&Sid::from(sid.as_str()), vec![bin(&[1, 2, 3])])]
    );
}

#[test]
fn v5_polling_binary_event_as_base64() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, uri, id) = h.sio_poll_joined();
    // Text and attachment in one POST.
    h.post(&uri, format!("{UPLOAD}\x1ebAQID").as_bytes());
    assert_eq!(
        h.take_events(&sid),
        vec![upload(&id, vec![bin(&[1, 2, 3])])]
    );
    // Split over two POSTs.
    h.post(&uri, UPLOAD.as_bytes());
    assert!(h.take_events(&sid).is_empty());
    h.post(&uri, b"bBAU=");
    assert_eq!(h.take_events(&sid), vec![upload(&id, vec![bin(&[4, 5])])]);
}

#[test]
fn v4_polling_binary_event_as_base64_and_as_binary_payload() {
    let mut h = Harness::socket(sio_config_any());
    let sid = h.sio_poll(3);
    let uri = sio_poll_uri(3, &sid);
    h.take_events(&sid);
    h.command(&sid, |c, now| c.accept_connect(now, "/"))
        .unwrap();
    let root = Sid::from(sid.as_str());
    // Text payload, binary as `b4<base64>`.
    h.post(&uri, v3_payload(&[UPLOAD, "b4AQID"]).as_bytes());
    assert_eq!(
        h.take_events(&sid),
        vec![upload(&root, vec![bin(&[1, 2, 3])])]
    );
    // Binary payload (socket.io-client 2.x over XHR2).
    let body = v3_binary_payload(&[(false, UPLOAD.as_bytes()), (true, &[4, 9, 8])]);
    let response = h
        .send(
            Method::POST,
            &uri,
            &[("content-type", "application/octet-stream")],
            &body,
        )
        .body_text();
    assert_eq!(response, "ok");
    assert_eq!(h.take_events(&sid), vec![upload(&root, vec![bin(&[9, 8])])]);
}

#[test]
fn binary_ack_from_the_client() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws, id) = h.sio_ws_joined();
    let ack_id = h
        .command(&sid, |c, now| {
            c.emit(now, "/", "q", vec![], vec![], Some(None))
        })
        .unwrap()
        .unwrap();
    h.ws_take_text(ws);
    h.ws_send_text(
        ws,
        &format!(r#"461-{ack_id}["ok",{{"_placeholder":true,"num":0}}]"#),
    );
    assert!(h.take_events(&sid).is_empty());
    h.ws_send(ws, WsMessage::Binary(bin(b"data")));
    assert_eq!(
        h.take_events(&sid),
        vec![SocketEvent::Ack {
            namespace: "/".into(),
            sid: id,
            ack_id,
            args: vec![json!("ok"), placeholder(0)],
            attachments: vec![bin(b"data")],
        }]
    );
}

// ----- server → client -----------------------------------------------------------------------

fn emit_file(h: &mut Harness<sockio_core::socketio::Endpoint>, sid: &str) {
    h.command(sid, |c, now| {
        c.emit(
            now,
            "/",
            "file",
            vec![placeholder(0)],
            vec![bin(&[1, 2, 3])],
            None,
        )
    })
    .unwrap();
}

const FILE: &str = r#"451-["file",{"_placeholder":true,"num":0}]"#;

#[test]
fn v5_websocket_emit_with_attachment_sends_raw_binary() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws, _) = h.sio_ws_joined();
    emit_file(&mut h, &sid);
    assert_eq!(h.ws_take_text(ws), vec![FILE, "<binary:010203>"]);
    // Two attachments, in a namespace, with an ack id.
    h.command(&sid, |c, now| {
        c.emit(
            now,
            "/",
            "two",
            vec![json!({"x": placeholder(1)}), placeholder(0)],
            vec![bin(b"a"), bin(b"bc")],
            Some(None),
        )
    })
    .unwrap();
    assert_eq!(
        h.ws_take_text(ws),
        vec![
            r#"452-0["two",{"x":{"_placeholder":true,"num":1}},{"_placeholder":true,"num":0}]"#,
            "<binary:61>",
            "<binary:6263>"
        ]
    );
}

#[test]
fn v4_websocket_emit_with_attachment_prefixes_the_type_byte() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws) = h.sio_ws_v4_joined();
    emit_file(&mut h, &sid);
    assert_eq!(h.ws_take_text(ws), vec![FILE, "<binary:04010203>"]);
}

#[test]
fn websocket_clients_without_binary_support_get_base64_text() {
    let mut h = Harness::socket(sio_config_any());
    // v5, b64=1
    let (sid, ws) = h.sio_ws_query(4, "&b64=1");
    h.ws_send_text(ws, "40");
    h.command(&sid, |c, now| c.accept_connect(now, "/"))
        .unwrap();
    h.ws_take_text(ws);
    emit_file(&mut h, &sid);
    assert_eq!(h.ws_take_text(ws), vec![FILE, "bAQID"]);
    // v4, b64=1
    let (sid, ws) = h.sio_ws_query(3, "&b64=1");
    h.command(&sid, |c, now| c.accept_connect(now, "/"))
        .unwrap();
    h.ws_take_text(ws);
    emit_file(&mut h, &sid);
    assert_eq!(h.ws_take_text(ws), vec![FILE, "b4AQID"]);
}

#[test]
fn v5_polling_emit_with_attachment() {
    let mut h = Harness::socket(SocketConfig::default());
    let sid = h.sio_poll(4);
    let uri = sio_poll_uri(4, &sid);
    h.post(&uri, b"40");
    h.command(&sid, |c, now| c.accept_connect(now, "/"))
        .unwrap();
    h.get(&uri);
    emit_file(&mut h, &sid);
    assert_eq!(h.get(&uri).body_text(), format!("{FILE}\x1ebAQID"));
}

#[test]
fn v4_polling_emit_with_attachment() {
    let mut h = Harness::socket(sio_config_any());
    // Binary-capable client: binary payload.
    let sid = h.sio_poll(3);
    let uri = sio_poll_uri(3, &sid);
    h.command(&sid, |c, now| c.accept_connect(now, "/"))
        .unwrap();
    h.get(&uri);
    emit_file(&mut h, &sid);
    let response = h.get(&uri).response();
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    let text = format!("4{}", &FILE[1..]);
    let expected = v3_binary_payload(&[(false, text.as_bytes()), (true, &[4, 1, 2, 3])]);
    assert_eq!(hex(response.body()), hex(&expected));
    // b64=1 client: text payload with `b4<base64>`.
    let body = h
        .get("/socket.io/?EIO=3&transport=polling&b64=1")
        .body_text();
    let sid = open_sid(&body);
    let uri = format!("{}&b64=1", sio_poll_uri(3, &sid));
    h.command(&sid, |c, now| c.accept_connect(now, "/"))
        .unwrap();
    h.get(&uri);
    emit_file(&mut h, &sid);
    assert_eq!(h.get(&uri).body_text(), v3_payload(&[FILE, "b4AQID"]));
}

#[test]
fn binary_ack_from_the_server() {
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws, _) = h.sio_ws_joined();
    h.ws_send_text(ws, r#"421["x"]"#);
    h.command(&sid, |c, now| {
        c.ack(
            now,
            "/",
            1,
            vec![json!("r"), placeholder(0)],
            vec![bin(&[7])],
        )
    })
    .unwrap();
    assert_eq!(
        h.ws_take_text(ws),
        vec![r#"461-1["r",{"_placeholder":true,"num":0}]"#, "<binary:07>"]
    );
    // v4 client, custom namespace.
    let (sid, ws) = h.sio_ws_v4_joined();
    h.ws_send_text(ws, "40/admin,");
    h.command(&sid, |c, now| c.accept_connect(now, "/admin"))
        .unwrap();
    h.ws_take_text(ws);
    h.ws_send_text(ws, r#"42/admin,9["x"]"#);
    h.command(&sid, |c, now| {
        c.ack(now, "/admin", 9, vec![placeholder(0)], vec![bin(&[7])])
    })
    .unwrap();
    assert_eq!(
        h.ws_take_text(ws),
        vec![
            r#"461-/admin,9[{"_placeholder":true,"num":0}]"#,
            "<binary:0407>"
        ]
    );
}

// ----- limits and broken attachment streams ----------------------------------------------------

#[test]
fn too_many_attachments_declared_closes_the_connection() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws, id) = h.sio_ws_joined();
    h.ws_send_text(ws, r#"4511-["bomb"]"#);
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
    assert!(!h.sessions.contains_key(sid.as_str()));
    assert_eq!(
        h.take_events(&sid),
        parse_error_close(
            &id,
            ParseError::TooManyAttachments {
                declared: 11,
                max: 10
            }
        )
    );
}

#[test]
fn the_attachment_count_cap_is_configurable() {
    let mut config = SocketConfig::default();
    config.decoder_limits = DecoderLimits {
        max_attachments: 1,
        max_attachment_bytes: 100,
    };
    let mut h = Harness::socket(config);
    let (sid, ws, id) = h.sio_ws_joined();
    h.ws_send_text(ws, UPLOAD);
    h.ws_send(ws, WsMessage::Binary(bin(&[1])));
    assert_eq!(h.take_events(&sid), vec![upload(&id, vec![bin(&[1])])]);
    h.ws_send_text(
        ws,
        r#"452-["two",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
    );
    assert_eq!(
        h.take_events(&sid),
        parse_error_close(
            &id,
            ParseError::TooManyAttachments {
                declared: 2,
                max: 1
            }
        )
    );
}

#[test]
fn attachment_bytes_over_the_cap_close_the_connection() {
    let mut config = SocketConfig::default();
    config.decoder_limits = DecoderLimits {
        max_attachments: 10,
        max_attachment_bytes: 10,
    };
    let mut h = Harness::socket(config);
    let (sid, ws, id) = h.sio_ws_joined();
    // Exactly at the cap is fine.
    h.ws_send_text(
        ws,
        r#"452-["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
    );
    h.ws_send(ws, WsMessage::Binary(bin(b"12345")));
    h.ws_send(ws, WsMessage::Binary(bin(b"67890")));
    assert_eq!(h.take_events(&sid).len(), 1);
    // One byte more is not.
    h.ws_send_text(
        ws,
        r#"452-["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
    );
    h.ws_send(ws, WsMessage::Binary(bin(b"123456")));
    assert!(h.sessions.contains_key(sid.as_str()));
    h.ws_send(ws, WsMessage::Binary(bin(b"78901")));
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
    assert_eq!(
        h.take_events(&sid),
        parse_error_close(&id, ParseError::AttachmentsTooLarge { max: 10 })
    );
}

#[test]
fn attachments_that_never_arrive_time_out() {
    let mut config = SocketConfig::default();
    config.attachment_timeout = Duration::from_secs(5);
    let mut h = Harness::socket(config);
    let (sid, ws, id) = h.sio_ws_joined();
    h.ws_send_text(
        ws,
        r#"452-["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
    );
    h.advance(Duration::from_secs(3));
    // An attachment arriving does not extend the deadline.
    h.ws_send(ws, WsMessage::Binary(bin(b"1")));
    h.advance(Duration::from_millis(1_999));
    assert!(h.sessions.contains_key(sid.as_str()));
    assert!(h.take_events(&sid).is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
    assert_eq!(
        h.take_events(&sid),
        parse_error_close(&id, ParseError::AttachmentTimeout)
    );
}

/// While the driver does not read the client (its application is behind), the attachments may
/// be waiting unread: the wait for them is frozen, and the time paused is added to it on resuming.
#[test]
fn the_attachment_wait_is_frozen_while_reading_is_paused() {
    let mut config = SocketConfig::default();
    config.attachment_timeout = Duration::from_secs(5);
    let mut h = Harness::socket(config);
    let (sid, ws, id) = h.sio_ws_joined();
    h.ws_send_text(ws, UPLOAD);
    h.advance(Duration::from_secs(2));
    h.command(&sid, |c, now| c.pause_reading(now));
    h.advance(Duration::from_secs(60));
    assert!(
        h.sessions.contains_key(sid.as_str()),
        "timed out while paused"
    );
    h.command(&sid, |c, now| c.resume_reading(now));
    // 3 s were left when reading paused.
    h.advance(Duration::from_millis(2_999));
    h.ws_send(ws, WsMessage::Binary(bin(&[1])));
    assert_eq!(h.take_events(&sid), vec![upload(&id, vec![bin(&[1])])]);
    // And without the attachment, the rest of the wait runs out.
    h.ws_send_text(ws, UPLOAD);
    h.advance(Duration::from_secs(1));
    h.command(&sid, |c, now| c.pause_reading(now));
    h.advance(Duration::from_secs(10));
    h.command(&sid, |c, now| c.resume_reading(now));
    h.advance(Duration::from_millis(3_999));
    assert!(h.sessions.contains_key(sid.as_str()));
    h.advance(Duration::from_millis(1));
    // (The heartbeat's pings went out meanwhile.)
    assert_eq!(
        h.ws_take_text(ws).last().map(String::as_str),
        Some("<close>")
    );
    assert_eq!(
        h.take_events(&sid),
        parse_error_close(&id, ParseError::AttachmentTimeout)
    );
}

/// A binary event with two attachments.
const UPLOAD_TWO: &str =
    r#"452-["upload",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;

/// The attachment `[byte]` read by a driver whose writer is behind: given back to hold.
fn hold(
    h: &mut Harness<sockio_core::socketio::Endpoint>,
    sid: &str,
    ws: sockio_core::engineio::RequestId,
    byte: u8,
) -> WsMessage {
    h.command(sid, |c, now| {
        c.handle_ws_heartbeat(now, ws, WsMessage::Binary(Bytes::from(vec![byte])))
    })
    .expect("an attachment is given back to hold")
}

/// While the driver holds what it reads of the client (its writer is behind: messages other than
/// the heartbeat go back from `handle_ws_heartbeat` to be handed over later), the attachments may
/// be among what it holds: the wait for them is frozen from the first message held until the
/// held ones are handed over. It ran on, and a client sent to faster than it read was closed
/// with `AttachmentTimeout` for attachments it had sent in time.
#[test]
fn the_attachment_wait_is_frozen_while_the_driver_holds_input() {
    let mut config = SocketConfig::default();
    config.attachment_timeout = Duration::from_secs(5);
    let mut h = Harness::socket(config);
    let (sid, ws, id) = h.sio_ws_joined();
    h.ws_send_text(ws, UPLOAD);
    h.advance(Duration::from_secs(2));
    let held = hold(&mut h, &sid, ws, 1);
    h.advance(Duration::from_secs(10));
    assert!(
        h.sessions.contains_key(sid.as_str()),
        "timed out while the attachment was held"
    );
    h.ws_send(ws, held);
    assert_eq!(h.take_events(&sid), vec![upload(&id, vec![bin(&[1])])]);

    // Two held, handed over one at a time (the driver's writer fell behind again in between):
    // frozen until the last is handed over.
    h.ws_send_text(ws, UPLOAD_TWO);
    h.advance(Duration::from_secs(2));
    let first = hold(&mut h, &sid, ws, 3);
    let second = hold(&mut h, &sid, ws, 4);
    h.advance(Duration::from_secs(1));
    h.ws_send(ws, first);
    // Past the 3 s that were left (and short of the heartbeat's own timeout).
    h.advance(Duration::from_secs(5));
    assert!(
        h.sessions.contains_key(sid.as_str()),
        "timed out while the second attachment was still held"
    );
    h.ws_send(ws, second);
    match h.take_events(&sid).as_slice() {
        [SocketEvent::Event { attachments, .. }] => {
            assert_eq!(attachments, &vec![bin(&[3]), bin(&[4])]);
        }
        other => panic!("{other:?}"),
    }

    // One of two attachments held, the other never sent: the rest of the wait (3 s) runs once
    // the held one is handed over.
    h.ws_send_text(ws, UPLOAD_TWO);
    h.advance(Duration::from_secs(2));
    let held = hold(&mut h, &sid, ws, 2);
    h.advance(Duration::from_secs(10));
    h.ws_send(ws, held);
    h.advance(Duration::from_millis(2_999));
    assert!(h.sessions.contains_key(sid.as_str()));
    h.advance(Duration::from_millis(1));
    assert_eq!(
        h.ws_take_text(ws).last().map(String::as_str),
        Some("<close>")
    );
    assert_eq!(
        h.take_events(&sid),
        parse_error_close(&id, ParseError::AttachmentTimeout)
    );
}

#[test]
fn a_completed_packet_clears_the_attachment_timeout() {
    let mut config = SocketConfig::default();
    config.attachment_timeout = Duration::from_secs(5);
    let mut h = Harness::socket(config);
    let (sid, ws, id) = h.sio_ws_joined();
    h.ws_send_text(ws, UPLOAD);
    h.advance(Duration::from_secs(4));
    h.ws_send(ws, WsMessage::Binary(bin(&[1])));
    assert_eq!(h.take_events(&sid), vec![upload(&id, vec![bin(&[1])])]);
    // A later partial packet gets a fresh deadline.
    h.advance(Duration::from_secs(4));
    h.ws_send_text(ws, UPLOAD);
    h.advance(Duration::from_secs(4));
    h.ws_send(ws, WsMessage::Binary(bin(&[2])));
    assert_eq!(h.take_events(&sid), vec![upload(&id, vec![bin(&[2])])]);
    h.advance(Duration::from_secs(10));
    assert!(h.sessions.contains_key(sid.as_str()));
    assert!(h.take_events(&sid).is_empty());
}

#[test]
fn attachment_timeout_over_polling() {
    let mut config = SocketConfig::default();
    config.attachment_timeout = Duration::from_secs(5);
    let mut h = Harness::socket(config);
    let (sid, uri, id) = h.sio_poll_joined();
    let held = h.get(&uri).held();
    h.post(&uri, UPLOAD.as_bytes());
    h.advance(Duration::from_secs(5));
    assert_eq!(body_text(&h.take_response(held).unwrap()), "1");
    assert_eq!(
        h.take_events(&sid),
        parse_error_close(&id, ParseError::AttachmentTimeout)
    );
}

#[test]
fn text_while_attachments_are_pending_closes_the_connection() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws, id) = h.sio_ws_joined();
    h.ws_send_text(ws, UPLOAD);
    h.ws_send_text(ws, r#"42["sneaky"]"#);
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
    assert_eq!(
        h.take_events(&sid),
        parse_error_close(&id, ParseError::UnexpectedText)
    );
}

#[test]
fn binary_without_a_pending_packet_closes_the_connection() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws, id) = h.sio_ws_joined();
    h.ws_send(ws, WsMessage::Binary(bin(&[1])));
    assert_eq!(h.ws_take_text(ws), vec!["<close>"]);
    assert_eq!(
        h.take_events(&sid),
        parse_error_close(&id, ParseError::UnexpectedBinary)
    );
}

#[test]
fn placeholder_out_of_range_closes_the_connection() {
    let mut h = Harness::socket(SocketConfig::default());
    let (sid, ws, id) = h.sio_ws_joined();
    h.ws_send_text(ws, r#"451-["x",{"_placeholder":true,"num":1}]"#);
    assert_eq!(
        h.take_events(&sid),
        parse_error_close(&id, ParseError::PlaceholderOutOfRange)
    );
}

#[test]
fn base64_attachments_from_a_websocket_client() {
    // Text frames starting with `b` are base64 binary messages (v4: no type digit; v3: `b4`).
    let mut h = Harness::socket(sio_config_any());
    let (sid, ws, id) = h.sio_ws_joined();
    h.ws_send_text(ws, UPLOAD);
    h.ws_send_text(ws, "bAQID");
    assert_eq!(
        h.take_events(&sid),
        vec![upload(&id, vec![bin(&[1, 2, 3])])]
    );
    let (sid, ws) = h.sio_ws_v4_joined();
    h.ws_send_text(ws, UPLOAD);
    h.ws_send_text(ws, "b4AQID");
    assert_eq!(
        h.take_events(&sid),
        vec![upload(&Sid::from(sid.as_str()), vec![bin(&[1, 2, 3])])]
    );
}
