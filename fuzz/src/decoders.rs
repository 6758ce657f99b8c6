//! The codec targets: Engine.IO packets and payloads, Socket.IO packets with attachments, and the
//! message-queue formats. Besides "no panic", each checks what a decoder promises: what it
//! accepts re-encodes to something it accepts again with the same meaning, and buffers stay
//! within their limits.

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use sockio_core::engineio::payload::{
    PayloadContentType, decode_jsonp_post, decode_payload, encode_jsonp, encode_payload, utf16_len,
};
use sockio_core::engineio::{DecodeError, Packet, ProtocolVersion, WsMessage};
use sockio_core::pubsub::amqp::{self, AmqpLink};
use sockio_core::pubsub::resp::{self, RedisLink};
use sockio_core::pubsub::{AmqpConfig, Message, RedisAddress, RedisConfig, RedisFraming};
use sockio_core::socketio;
use sockio_core::socketio::decoder::{Decoder, DecoderLimits};

use crate::input::Input;

/// The RESP decoder with a small kept limit (0 to 255 bytes, from one input byte), fed the
/// input's chunks one by one, against one with the real limit fed them whole: the same replies,
/// except that each bulk string over the small limit is [`resp::Reply::TooLarge`] with its
/// length; the same error, or the small limit's own (two such strings in one reply). The small
/// one may have reported one reply more, holding a dropped string whose bytes were still
/// arriving when it was reported: the reference, given the bytes the small one still meant to
/// throw away, must finish that very reply.
fn resp_against_reference(input: &mut Input) {
    let limit = usize::from(input.u8());
    let mut chunks = Vec::new();
    while !input.is_empty() {
        chunks.push(input.bytes());
    }
    let whole = chunks.concat();
    let small = resp_replies(resp::Decoder::with_max_received(limit), &chunks);
    let reference = resp_replies(resp::Decoder::default(), &[&whole]);
    let expected: Vec<resp::Reply> = reference
        .replies
        .iter()
        .map(|reply| dropping_over(reply.clone(), limit))
        .collect();
    let common = small.replies.len().min(expected.len());
    assert_eq!(small.replies[..common], expected[..common], "limit {limit}");
    if small.error
        == Some(resp::LinkError::Protocol(
            "two bulk strings over the limit in one reply",
        ))
    {
        // The reference keeps both strings: if it finished that reply, the reply holds two
        // over the limit. (It may not have: the small decoder fails at the second header,
        // before the strings' bytes.)
        if let Some(refused) = expected.get(small.replies.len()) {
            assert!(
                too_large_count(refused) >= 2,
                "limit {limit}: refused two over the limit in {refused:?}"
            );
        }
        return;
    }
    assert_eq!(small.error, reference.error, "limit {limit}");
    if small.replies.len() == expected.len() {
        return;
    }
    // Only a reply the reference had not finished may have been reported early.
    let early = &small.replies[small.replies.len() - 1];
    assert!(
        small.replies.len() == expected.len() + 1 && holds_too_large(early) && reference.unfinished,
        "limit {limit}: {:?} against {expected:?}",
        small.replies
    );
    let left = small.discarding;
    // Past `COMPLETED_MAX` the reference would copy megabytes per run (a declared length of up
    // to 64 MiB): inputs with shorter strings check the same code.
    if reference.error.is_none() && left <= COMPLETED_MAX {
        // The dropped string's missing bytes, then its CRLF (or what is left of it).
        assert!(
            left > 0,
            "limit {limit}: {early:?} reported with its string's bytes all in"
        );
        let mut rest = vec![b'x'; left.saturating_sub(2)];
        rest.extend_from_slice(&b"\r\n"[2 - left.min(2)..]);
        let completed = resp_replies(resp::Decoder::default(), &[&whole, &rest]);
        let finished: Vec<resp::Reply> = completed
            .replies
            .into_iter()
            .skip(reference.replies.len())
            .map(|reply| dropping_over(reply, limit))
            .collect();
        assert_eq!(
            (finished.as_slice(), completed.error, completed.unfinished),
            (std::slice::from_ref(early), None, false),
            "limit {limit}: the reply reported early is not the one the reference finishes"
        );
    }
}

/// The most bytes [`resp_against_reference`] adds to finish a reply reported early.
const COMPLETED_MAX: usize = 64 * 1024;

/// What a RESP decoder made of some input.
struct Decoded {
    replies: Vec<resp::Reply>,
    /// Its error, if it failed.
    error: Option<resp::LinkError>,
    /// Whether it was left holding part of a reply (always so after an error).
    unfinished: bool,
    /// Bytes of a dropped bulk string it still meant to throw away.
    discarding: usize,
}

/// What a decoder gives for `chunks`, pushed one by one.
fn resp_replies(mut decoder: resp::Decoder, chunks: &[&[u8]]) -> Decoded {
    let mut replies = Vec::new();
    for chunk in chunks {
        decoder.push(chunk);
        loop {
            match decoder.next_reply() {
                Ok(Some(reply)) => replies.push(reply),
                Ok(None) => break,
                Err(error) => {
                    return Decoded {
                        replies,
                        error: Some(error),
                        unfinished: true,
                        discarding: decoder.bytes_to_discard(),
                    };
                }
            }
        }
    }
    Decoded {
        replies,
        error: None,
        unfinished: decoder.holds_partial_reply(),
        discarding: decoder.bytes_to_discard(),
    }
}

/// `reply` as a decoder keeping bulk strings of at most `limit` bytes gives it.
fn dropping_over(reply: resp::Reply, limit: usize) -> resp::Reply {
    match reply {
        resp::Reply::Bulk(Some(data)) if data.len() > limit => resp::Reply::TooLarge(data.len()),
        resp::Reply::Array(Some(items)) => resp::Reply::Array(Some(
            items
                .into_iter()
                .map(|item| dropping_over(item, limit))
                .collect(),
        )),
        other => other,
    }
}

fn holds_too_large(reply: &resp::Reply) -> bool {
    too_large_count(reply) > 0
}

/// How many bulk strings of `reply` were dropped as over the limit.
fn too_large_count(reply: &resp::Reply) -> usize {
    match reply {
        resp::Reply::TooLarge(_) => 1,
        resp::Reply::Array(Some(items)) => items.iter().map(too_large_count).sum(),
        _ => 0,
    }
}

/// Modes of [`eio_decode`], the low three bits of its first byte; bit 7 selects Engine.IO 3.
pub mod eio_mode {
    pub const TEXT_PACKET: u8 = 0;
    pub const WS_TEXT: u8 = 1;
    pub const WS_BINARY: u8 = 2;
    pub const TEXT_PAYLOAD: u8 = 3;
    pub const BINARY_PAYLOAD: u8 = 4;
    pub const JSONP_BODY: u8 = 5;
    pub const UTF16: u8 = 6;
    pub const V3: u8 = 0x80;
}

/// Engine.IO decoders: one byte picks the decoder (and the version), the rest is its input.
pub fn eio_decode(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let version = if selector & eio_mode::V3 != 0 {
        ProtocolVersion::V3
    } else {
        ProtocolVersion::V4
    };
    let text = String::from_utf8_lossy(body);
    match selector & 7 {
        eio_mode::TEXT_PACKET => {
            if let Ok(packet) = Packet::decode_text(&text, version) {
                text_round_trip(&packet, version);
            }
        }
        eio_mode::WS_TEXT => {
            if let Ok(packet) = Packet::decode_ws(WsMessage::Text(text.as_ref().into()), version) {
                ws_round_trip(&packet, version);
            }
        }
        eio_mode::WS_BINARY => {
            let message = WsMessage::Binary(Bytes::copy_from_slice(body));
            if let Ok(packet) = Packet::decode_ws(message, version) {
                ws_round_trip(&packet, version);
            }
        }
        eio_mode::TEXT_PAYLOAD => {
            payload(Bytes::copy_from_slice(body), version, false);
        }
        eio_mode::BINARY_PAYLOAD => {
            let decoded = payload(Bytes::copy_from_slice(body), version, true);
            if version == ProtocolVersion::V4 {
                assert_eq!(decoded, Some(DecodeError::UnsupportedBinaryPayload));
            }
        }
        eio_mode::JSONP_BODY => {
            if let Some(payload_text) = decode_jsonp_post(body) {
                payload(
                    Bytes::from(payload_text.clone()),
                    ProtocolVersion::V3,
                    false,
                );
                let script = encode_jsonp(&payload_text, "7").expect("a digit callback index");
                let script = std::str::from_utf8(&script).expect("JSONP is UTF-8");
                // Line terminators would end the script's string literal.
                assert!(
                    !script.contains(['\n', '\r', '\u{2028}', '\u{2029}']),
                    "unescaped line terminator in {script:?}"
                );
            }
            assert!(encode_jsonp("", "1x").is_none());
        }
        eio_mode::UTF16 => assert_eq!(utf16_len(&text), text.encode_utf16().count()),
        _ => {
            // Any version and body type: the polling path of a session.
            payload(Bytes::copy_from_slice(body), version, selector & 0x40 != 0);
        }
    }
}

fn text_round_trip(packet: &Packet, version: ProtocolVersion) {
    let mut out = String::new();
    packet.encode_text(version, &mut out);
    let back = Packet::decode_text(&out, version)
        .unwrap_or_else(|e| panic!("{packet:?} encoded as {out:?} does not decode: {e}"));
    assert_eq!(&back, packet, "text round trip through {out:?}");
}

fn ws_round_trip(packet: &Packet, version: ProtocolVersion) {
    for supports_binary in [true, false] {
        let message = packet.encode_ws(version, supports_binary);
        let back = Packet::decode_ws(message.clone(), version)
            .unwrap_or_else(|e| panic!("{packet:?} encoded as {message:?} does not decode: {e}"));
        assert_eq!(&back, packet, "WebSocket round trip through {message:?}");
    }
}

/// Decodes a polling body; what decodes without error re-encodes (text and binary forms) to the
/// same packets. Returns the error.
fn payload(body: Bytes, version: ProtocolVersion, binary: bool) -> Option<DecodeError> {
    let decoded = decode_payload(body, version, binary);
    if decoded.packets.is_empty() {
        return decoded.error;
    }
    for supports_binary in [true, false] {
        let encoded = encode_payload(&decoded.packets, version, supports_binary);
        let binary_body = encoded.content_type == PayloadContentType::Binary;
        let back = decode_payload(encoded.body.clone(), version, binary_body);
        assert_eq!(
            back.error, None,
            "{:?} re-encoded as {:?} does not decode",
            decoded.packets, encoded.body
        );
        assert_eq!(back.packets, decoded.packets, "payload round trip");
    }
    decoded.error
}

/// Modes of [`sio_decode`]'s message tags (low bit).
pub const SIO_TEXT: u8 = 0;
pub const SIO_BINARY: u8 = 1;

/// The Socket.IO decoder with attachment reassembly: a limits byte (attachments `& 3`, attachment
/// bytes `>> 2` times 16), then messages, each a tag byte (low bit: text or binary) and a byte
/// string. Checks the limits hold and complete packets re-encode to equivalent packets.
pub fn sio_decode(data: &[u8]) {
    let mut input = Input::new(data);
    let limits_byte = input.u8();
    let limits = DecoderLimits {
        max_attachments: usize::from(limits_byte & 3),
        max_attachment_bytes: usize::from(limits_byte >> 2) * 16,
    };
    let mut decoder = Decoder::new(limits);
    let mut text_len = 0;
    while !input.is_empty() {
        let tag = input.u8();
        let result = if tag & 1 == SIO_TEXT {
            let text = input.text();
            text_len = text.len();
            decoder.decode_text(&text)
        } else {
            decoder.decode_binary(Bytes::copy_from_slice(input.bytes()))
        };
        assert!(
            decoder.buffered_bytes() <= limits.max_attachment_bytes + text_len,
            "decoder holds {} bytes",
            decoder.buffered_bytes()
        );
        match result {
            Ok(Some(packet)) => {
                assert!(!decoder.is_waiting_for_attachments());
                assert!(packet.attachments.len() <= limits.max_attachments);
                let total: usize = packet.attachments.iter().map(Bytes::len).sum();
                assert!(total <= limits.max_attachment_bytes);
                sio_round_trip(&packet, limits);
            }
            Ok(None) => assert!(decoder.is_waiting_for_attachments()),
            Err(_) => assert!(!decoder.is_waiting_for_attachments()),
        }
    }
}

fn sio_round_trip(packet: &socketio::Packet, limits: DecoderLimits) {
    let encoded = packet.encode();
    // The packet's own JSON writer must write what serde_json writes.
    if let Some(data) = &packet.data {
        let json = serde_json::to_string(data).expect("a Value always serializes");
        assert!(
            encoded.text.ends_with(&json),
            "{:?} does not end with serde_json's {json:?}",
            encoded.text
        );
    }
    let mut decoder = Decoder::new(limits);
    let mut result = decoder.decode_text(&encoded.text);
    for attachment in &encoded.attachments {
        assert!(
            matches!(result, Ok(None)),
            "{:?} did not wait for its attachments: {result:?}",
            encoded.text
        );
        result = decoder.decode_binary(attachment.clone());
    }
    let back = match result {
        Ok(Some(back)) => back,
        other => panic!("{packet:?} encoded as {encoded:?} decodes to {other:?}"),
    };
    assert_eq!(back.kind, packet.kind, "kind through {:?}", encoded.text);
    assert_eq!(back.namespace, packet.namespace);
    assert_eq!(back.ack_id, packet.ack_id);
    assert_eq!(back.attachments, packet.attachments);
    assert_eq!(
        back.data.as_ref().map(shape),
        packet.data.as_ref().map(shape),
        "data through {:?}",
        encoded.text
    );
}

/// A JSON value with numbers blanked (float text round trips are not exact), for comparisons.
fn shape(value: &Value) -> Value {
    match value {
        Value::Number(_) => Value::Null,
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        other => other.clone(),
    }
}

/// python-socketio broker messages: what decodes re-encodes to a message that decodes with the
/// same method and host.
pub fn pubsub_message(data: &[u8]) {
    let Ok(message) = Message::decode(data) else {
        return;
    };
    let encoded = message.encode();
    let back = Message::decode(&encoded).unwrap_or_else(|e| {
        panic!(
            "{message:?} encoded as {:?} does not decode: {e}",
            String::from_utf8_lossy(&encoded)
        )
    });
    assert_eq!(back.method(), message.method());
    assert_eq!(back.host_id(), message.host_id());
    // What a kombu-framed Redis link publishes reads back as the same message.
    let wrapped = sockio_core::pubsub::kombu::wrap(&encoded, "socketio", "tag.0");
    assert_eq!(Message::decode(&wrapped).ok(), Some(back));
    let _ = message.is_for("me");
}

/// Modes of [`broker_links`], the first byte modulo their count.
pub mod link_mode {
    /// A limit byte, then chunks: the RESP decoder under that kept limit against the real one.
    pub const RESP_DECODER: u8 = 0;
    pub const REDIS_SUBSCRIBER: u8 = 1;
    pub const REDIS_PUBLISHER: u8 = 2;
    pub const AMQP_SUBSCRIBER: u8 = 3;
    pub const AMQP_PUBLISHER: u8 = 4;
    pub const AMQP_TABLE: u8 = 5;
    pub const AMQP_FRAMES: u8 = 6;
    pub const COUNT: u8 = 7;
}

/// Link operations (opcode modulo [`link_op::COUNT`]).
pub mod link_op {
    /// A chunk of bytes from the broker.
    pub const INPUT: u8 = 0;
    /// The application publishes a byte string.
    pub const PUBLISH: u8 = 1;
    /// Time passes (u16 milliseconds times 16) and timers fire (AMQP) or a ping goes out (Redis).
    pub const TICK: u8 = 2;
    /// The application closes the link (AMQP).
    pub const CLOSE: u8 = 3;
    pub const COUNT: u8 = 4;
}

/// The broker links, sans-IO: the RESP decoder, Redis and AMQP links fed broker bytes in chunks
/// interleaved with publishes and clock ticks, and the AMQP table and frame decoders.
pub fn broker_links(data: &[u8]) {
    let mut input = Input::new(data);
    match input.u8() % link_mode::COUNT {
        link_mode::RESP_DECODER => resp_against_reference(&mut input),
        mode @ (link_mode::REDIS_SUBSCRIBER | link_mode::REDIS_PUBLISHER) => {
            let flags = input.u8();
            let config = RedisConfig {
                address: RedisAddress::Tcp {
                    host: "127.0.0.1".into(),
                    port: 6379,
                },
                db: u32::from(flags & 3),
                username: (flags & 4 != 0).then(|| "user".into()),
                password: (flags & 8 != 0).then(|| "secret".into()),
                tls: None,
                framing: if flags & 16 != 0 {
                    RedisFraming::Kombu
                } else {
                    RedisFraming::PubSub
                },
            };
            let mut link = if mode == link_mode::REDIS_SUBSCRIBER {
                RedisLink::subscriber(&config, "socketio", "server 1")
            } else {
                RedisLink::publisher(&config, "socketio", "server-1")
            };
            while !input.is_empty() {
                let result = match input.u8() % link_op::COUNT {
                    link_op::INPUT => link.handle_input(input.bytes()),
                    link_op::PUBLISH => {
                        link.publish(input.bytes());
                        Ok(())
                    }
                    link_op::TICK => {
                        link.ping();
                        Ok(())
                    }
                    _ => Ok(()),
                };
                while link.poll_transmit().is_some() {}
                while link.poll_event().is_some() {}
                let _ = link.unanswered().count();
                if result.is_err() {
                    return;
                }
            }
        }
        mode @ (link_mode::AMQP_SUBSCRIBER | link_mode::AMQP_PUBLISHER) => {
            let config = AmqpConfig {
                host: "127.0.0.1".into(),
                port: 5672,
                vhost: "/".into(),
                username: "guest".into(),
                password: "guest".into(),
                tls: None,
            };
            let heartbeat = u16::from(input.u8() & 3);
            let link = if mode == link_mode::AMQP_SUBSCRIBER {
                AmqpLink::subscriber(&config, "socketio", "q", "fuzz")
            } else {
                AmqpLink::publisher(&config, "socketio", "fuzz")
            };
            let mut link = link.expect("valid names");
            link.set_heartbeat(heartbeat);
            let mut now = Instant::now();
            while !input.is_empty() {
                let result = match input.u8() % link_op::COUNT {
                    link_op::INPUT => link.handle_input(now, input.bytes()),
                    link_op::PUBLISH => link.publish(input.bytes()).map(|_| ()),
                    link_op::TICK => {
                        now += Duration::from_millis(u64::from(input.u16()) * 16);
                        let result = link.handle_timeout(now);
                        if result.is_ok()
                            && let Some(deadline) = link.poll_timeout()
                        {
                            assert!(deadline > now, "deadline not in the future after a tick");
                        }
                        result
                    }
                    _ => {
                        link.close();
                        Ok(())
                    }
                };
                while let Some(bytes) = link.poll_transmit() {
                    assert!(!bytes.is_empty(), "empty transmit");
                }
                while link.poll_event().is_some() {}
                let _ = link.unconfirmed().count();
                if result.is_err() {
                    return;
                }
            }
        }
        link_mode::AMQP_TABLE => {
            let _ = amqp::decode_table(input.rest());
        }
        _ => {
            let mut decoder = amqp::FrameDecoder::default();
            decoder.set_frame_max(u32::from(input.u16()).max(amqp::FRAME_MIN));
            while !input.is_empty() {
                decoder.push(input.bytes());
                loop {
                    match decoder.next_frame() {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(_) => return,
                    }
                }
            }
        }
    }
}
