//! Engine.IO packet and payload codec: golden vectors from the reference implementation's wire
//! format, plus property tests (round trips, and totality on arbitrary input).

use bytes::Bytes;
use proptest::prelude::*;
use sockio_core::engineio::payload::*;
use sockio_core::engineio::{
    DecodeError, Packet, PacketData, PacketType, ProtocolVersion, WsMessage,
};

use ProtocolVersion::{V3, V4};

fn msg(text: &str) -> Packet {
    Packet::text(PacketType::Message, text)
}

fn bin(data: &[u8]) -> Packet {
    Packet::binary(Bytes::copy_from_slice(data))
}

fn decode(body: &[u8], version: ProtocolVersion, binary_body: bool) -> DecodedPayload {
    decode_payload(Bytes::copy_from_slice(body), version, binary_body)
}

fn ok(packets: Vec<Packet>) -> DecodedPayload {
    DecodedPayload {
        packets,
        error: None,
    }
}

fn failed(error: DecodeError) -> DecodedPayload {
    DecodedPayload {
        packets: vec![],
        error: Some(error),
    }
}

// ---------------------------------------------------------------------------------------------
// Golden vectors
// ---------------------------------------------------------------------------------------------

#[test]
fn v4_text_payload() {
    let packets = vec![msg("hello"), msg("world")];
    let encoded = encode_payload(&packets, V4, true);
    assert_eq!(&encoded.body[..], b"4hello\x1e4world");
    assert_eq!(encoded.content_type, PayloadContentType::Text);
    assert_eq!(decode(b"4hello\x1e4world", V4, false), ok(packets));
}

#[test]
fn v4_binary_in_payload() {
    for supports_binary in [true, false] {
        let encoded = encode_payload(&[bin(&[1, 2, 3, 4])], V4, supports_binary);
        assert_eq!(&encoded.body[..], b"bAQIDBA==");
        assert_eq!(encoded.content_type, PayloadContentType::Text);
    }
    assert_eq!(
        decode(b"bAQIDBA==", V4, false),
        ok(vec![bin(&[1, 2, 3, 4])])
    );
    let mixed = vec![msg("a"), bin(&[1]), Packet::bare(PacketType::Noop)];
    let encoded = encode_payload(&mixed, V4, true);
    assert_eq!(&encoded.body[..], b"4a\x1ebAQ==\x1e6");
    assert_eq!(decode_payload(encoded.body, V4, false), ok(mixed));
}

#[test]
fn v4_decode_stops_at_first_bad_packet() {
    let decoded = decode(b"4a\x1e2\x1e9x\x1e4b", V4, false);
    assert_eq!(
        decoded.packets,
        vec![msg("a"), Packet::bare(PacketType::Ping)]
    );
    assert_eq!(decoded.error, Some(DecodeError::UnknownType));
    let decoded = decode(b"4a\x1eb!!\x1e4b", V4, false);
    assert_eq!(decoded.packets, vec![msg("a")]);
    assert_eq!(decoded.error, Some(DecodeError::InvalidBase64));
    let decoded = decode(b"\x1e4a", V4, false);
    assert_eq!(decoded, failed(DecodeError::Empty));
}

#[test]
fn ws_binary_frames() {
    let frame = Bytes::from_static(&[1, 2, 3, 4]);
    assert_eq!(
        Packet::decode_ws(WsMessage::Binary(frame.clone()), V4),
        Ok(bin(&[1, 2, 3, 4]))
    );
    assert_eq!(
        bin(&[1, 2, 3, 4]).encode_ws(V4, true),
        WsMessage::Binary(frame)
    );

    let frame = Bytes::from_static(&[4, 1, 2, 3, 4]);
    assert_eq!(
        Packet::decode_ws(WsMessage::Binary(frame.clone()), V3),
        Ok(bin(&[1, 2, 3, 4]))
    );
    assert_eq!(
        bin(&[1, 2, 3, 4]).encode_ws(V3, true),
        WsMessage::Binary(frame)
    );
}

#[test]
fn ws_binary_as_base64_text() {
    assert_eq!(
        bin(&[1, 2, 3, 4]).encode_ws(V4, false),
        WsMessage::Text("bAQIDBA==".into())
    );
    assert_eq!(
        bin(&[1, 2, 3, 4]).encode_ws(V3, false),
        WsMessage::Text("b4AQIDBA==".into())
    );
    // v4 quirk: a text frame starting with `b` is a base64 binary message.
    assert_eq!(
        Packet::decode_ws(WsMessage::Text("bAQIDBA==".into()), V4),
        Ok(bin(&[1, 2, 3, 4]))
    );
}

#[test]
fn ws_invalid_utf8_binary_frame_is_not_text() {
    // A v4 binary frame is binary data, never validated as text.
    assert_eq!(
        Packet::decode_ws(WsMessage::Binary(Bytes::from_static(&[0xff])), V4),
        Ok(bin(&[0xff]))
    );
}

#[test]
fn probes() {
    for version in [V3, V4] {
        for (wire, kind) in [("2probe", PacketType::Ping), ("3probe", PacketType::Pong)] {
            let packet = Packet::text(kind, "probe");
            assert_eq!(Packet::decode_text(wire, version), Ok(packet.clone()));
            assert_eq!(
                Packet::decode_ws(WsMessage::Text(wire.into()), version),
                Ok(packet.clone())
            );
            assert_eq!(
                packet.encode_ws(version, true),
                WsMessage::Text(wire.into())
            );
        }
        assert_eq!(
            Packet::bare(PacketType::Upgrade).encode_ws(version, true),
            WsMessage::Text("5".into())
        );
    }
}

#[test]
fn packet_errors() {
    for version in [V3, V4] {
        assert_eq!(
            Packet::decode_text("9", version),
            Err(DecodeError::UnknownType)
        );
        assert_eq!(Packet::decode_text("", version), Err(DecodeError::Empty));
        assert_eq!(
            Packet::decode_ws(WsMessage::Text("".into()), version),
            Err(DecodeError::Empty)
        );
    }
    assert_eq!(
        Packet::decode_text("b@@@@", V4),
        Err(DecodeError::InvalidBase64)
    );
    assert_eq!(
        Packet::decode_text("b4@@@@", V3),
        Err(DecodeError::InvalidBase64)
    );
    assert_eq!(
        Packet::decode_ws(WsMessage::Text("b*".into()), V4),
        Err(DecodeError::InvalidBase64)
    );
}

#[test]
fn empty_data_decodes_as_empty() {
    for version in [V3, V4] {
        assert_eq!(
            Packet::decode_text("4", version),
            Ok(Packet::bare(PacketType::Message))
        );
        assert_eq!(
            Packet::decode_text("6", version).map(|p| p.data),
            Ok(PacketData::Empty)
        );
    }
}

#[test]
fn v3_text_payload() {
    let packets = vec![msg("hello"), msg("€")];
    let encoded = encode_payload(&packets, V3, true);
    assert_eq!(&encoded.body[..], "6:4hello2:4€".as_bytes());
    assert_eq!(encoded.content_type, PayloadContentType::Text);
    assert_eq!(decode("6:4hello2:4€".as_bytes(), V3, false), ok(packets));
}

#[test]
fn v3_astral_length() {
    assert_eq!(utf16_len("4😀"), 3);
    let encoded = encode_payload(&[msg("😀")], V3, false);
    assert_eq!(&encoded.body[..], "3:4😀".as_bytes());
    assert_eq!(decode("3:4😀".as_bytes(), V3, false), ok(vec![msg("😀")]));
    assert_eq!(
        decode("2:4😀".as_bytes(), V3, false),
        failed(DecodeError::LengthMismatch)
    );
    assert_eq!(
        decode("4:4😀".as_bytes(), V3, false),
        failed(DecodeError::LengthMismatch)
    );
}

#[test]
fn v3_base64_in_text_payload() {
    let encoded = encode_payload(&[bin(&[1, 2, 3, 4])], V3, false);
    assert_eq!(&encoded.body[..], b"10:b4AQIDBA==");
    assert_eq!(encoded.content_type, PayloadContentType::Text);
    assert_eq!(
        decode(b"10:b4AQIDBA==", V3, false),
        ok(vec![bin(&[1, 2, 3, 4])])
    );
}

#[test]
fn v3_empty_payload() {
    for supports_binary in [true, false] {
        let encoded = encode_payload(&[], V3, supports_binary);
        assert_eq!(&encoded.body[..], b"0:");
        assert_eq!(encoded.content_type, PayloadContentType::Text);
    }
    assert_eq!(decode(b"0:", V3, false), ok(vec![]));
    assert!(encode_payload(&[], V4, true).body.is_empty());
}

#[test]
fn v3_binary_payload() {
    let packets = vec![msg("hello"), bin(&[1, 2, 3])];
    let expected: &[u8] = &[
        0x00, 6, 0xFF, b'4', b'h', b'e', b'l', b'l', b'o', 0x01, 4, 0xFF, 4, 1, 2, 3,
    ];
    let encoded = encode_payload(&packets, V3, true);
    assert_eq!(&encoded.body[..], expected);
    assert_eq!(encoded.content_type, PayloadContentType::Binary);
    assert_eq!(
        encoded.content_type.header_value(),
        "application/octet-stream"
    );
    assert_eq!(decode(expected, V3, true), ok(packets.clone()));

    // Without binary support the same batch is a text payload.
    let encoded = encode_payload(&packets, V3, false);
    assert_eq!(&encoded.body[..], b"6:4hello6:b4AQID");
    assert_eq!(
        encoded.content_type.header_value(),
        "text/plain; charset=UTF-8"
    );
    // With binary support but no binary packet, text too.
    let encoded = encode_payload(&[msg("hello")], V3, true);
    assert_eq!(&encoded.body[..], b"6:4hello");
}

#[test]
fn v3_binary_payload_multi_digit_length_and_utf8() {
    // String lengths count UTF-8 bytes here, unlike the text payload.
    let long = "x".repeat(123);
    let packets = vec![msg("€"), msg(&long), bin(&[9; 10])];
    let encoded = encode_payload(&packets, V3, true);
    let mut expected = vec![0, 4, 0xff, b'4', 0xe2, 0x82, 0xac];
    expected.extend([0, 1, 2, 4, 0xff, b'4']);
    expected.extend(long.bytes());
    expected.extend([1, 1, 1, 0xff, 4]);
    expected.extend([9; 10]);
    assert_eq!(&encoded.body[..], &expected[..]);
    assert_eq!(decode_payload(encoded.body, V3, true), ok(packets));
}

#[test]
fn v3_binary_payload_invalid_utf8_string() {
    assert_eq!(
        decode(&[0, 2, 0xff, b'4', 0xc3], V3, true),
        failed(DecodeError::InvalidUtf8)
    );
}

/// parser-v3's `decodePayload` and `decodePayloadAsBinary` hand each packet over as they read
/// it, so those before a bad one are delivered with the error.
#[test]
fn v3_keeps_the_packets_before_a_bad_one() {
    assert_eq!(
        decode(b"5:4hel", V3, false),
        failed(DecodeError::LengthMismatch)
    );
    let a_then = |error| DecodedPayload {
        packets: vec![Packet::text(PacketType::Message, "a")],
        error: Some(error),
    };
    assert_eq!(
        decode(b"2:4a1:9", V3, false),
        a_then(DecodeError::UnknownType)
    );
    assert_eq!(
        decode(b"2:4a2:4", V3, false),
        a_then(DecodeError::LengthMismatch)
    );
    assert_eq!(
        decode(b"2:4ax", V3, false),
        a_then(DecodeError::InvalidLength)
    );
    assert_eq!(
        decode(&[0, 2, 0xff, b'4', b'a', 0, 2, 0xff, b'9'], V3, true),
        a_then(DecodeError::LengthMismatch)
    );
}

#[test]
fn overflowing_lengths() {
    assert_eq!(
        decode(b"99999999999999999999999:x", V3, false),
        failed(DecodeError::InvalidLength)
    );
    let mut body = vec![0u8];
    body.extend([9; 30]);
    body.extend([0xff, b'4']);
    assert_eq!(decode(&body, V3, true), failed(DecodeError::InvalidLength));
    assert_eq!(
        decode(b"18446744073709551615:x", V3, false),
        failed(DecodeError::LengthMismatch)
    );
    assert_eq!(
        decode(
            &[
                1, 1, 8, 4, 4, 6, 7, 4, 4, 0, 7, 3, 7, 0, 9, 5, 5, 1, 6, 1, 5, 0xff, 4
            ],
            V3,
            true
        ),
        failed(DecodeError::LengthMismatch)
    );
}

#[test]
fn v4_binary_content_type_rejected() {
    assert_eq!(
        decode(b"4hi", V4, true),
        failed(DecodeError::UnsupportedBinaryPayload)
    );
}

#[test]
fn jsonp_response() {
    let payload = encode_v3_text_payload(&[msg("hi")]);
    assert_eq!(payload, "3:4hi");
    assert_eq!(
        encode_jsonp(&payload, "0").as_deref(),
        Some(&b"___eio[0](\"3:4hi\");"[..])
    );
    let payload = encode_v3_text_payload(&[msg("a\"b\\c\nd\u{2028}e\u{2029}")]);
    let body = encode_jsonp(&payload, "7").expect("valid j");
    assert_eq!(
        std::str::from_utf8(&body).expect("utf-8"),
        "___eio[7](\"11:4a\\\"b\\\\c\\nd\\u2028e\\u2029\");"
    );
    assert_eq!(encode_jsonp(&payload, ""), None);
    assert_eq!(encode_jsonp(&payload, "0);alert(1"), None);
}

#[test]
fn jsonp_binary_is_base64() {
    let payload = encode_v3_text_payload(&[bin(&[1, 2, 3, 4])]);
    assert_eq!(payload, "10:b4AQIDBA==");
    assert_eq!(
        encode_jsonp(&payload, "1").as_deref(),
        Some(&b"___eio[1](\"10:b4AQIDBA==\");"[..])
    );
}

#[test]
fn jsonp_post() {
    assert_eq!(decode_jsonp_post(b"d=3%3A4hi").as_deref(), Some("3:4hi"));
    // `%5Cn` is a backslash + `n`: an escaped newline.
    assert_eq!(
        decode_jsonp_post(b"d=4%3A4a%5Cnb").as_deref(),
        Some("4:4a\nb")
    );
    // `%5C%5Cn` is an escaped literal backslash-n.
    assert_eq!(
        decode_jsonp_post(b"d=5%3A4a%5C%5Cnb").as_deref(),
        Some("5:4a\\nb")
    );
    let text = decode_jsonp_post(b"d=4%3A4a%5Cnb").expect("valid form");
    assert_eq!(
        decode_payload(Bytes::from(text), V3, false),
        ok(vec![msg("a\nb")])
    );
    assert_eq!(decode_jsonp_post(b"x=1"), None);
    assert_eq!(decode_jsonp_post(b"d=%G0").as_deref(), Some("%G0"));
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

fn versions() -> impl Strategy<Value = ProtocolVersion> {
    prop_oneof![Just(V3), Just(V4)]
}

/// Text that may contain anything, including astral chars; `\x1e` only where allowed (v4
/// payloads cannot carry it). Empty text is generated as `PacketData::Empty`, which is how it
/// decodes.
fn data_text(allow_separator: bool) -> impl Strategy<Value = PacketData> {
    let chars = prop_oneof![
        4 => any::<char>(),
        1 => Just('\u{1e}'),
        1 => Just('😀'),
        1 => Just('€'),
        1 => Just(':'),
        1 => Just('b'),
        1 => prop::char::range('0', '9'),
    ];
    prop::collection::vec(chars, 0..24).prop_map(move |chars| {
        let s: String = chars
            .into_iter()
            .filter(|&c| allow_separator || c != '\u{1e}')
            .collect();
        if s.is_empty() {
            PacketData::Empty
        } else {
            PacketData::Text(s.into())
        }
    })
}

fn packet(allow_separator: bool) -> impl Strategy<Value = Packet> {
    let kind = prop_oneof![
        Just(PacketType::Message),
        Just(PacketType::Ping),
        Just(PacketType::Pong),
        Just(PacketType::Noop),
        Just(PacketType::Close),
    ];
    prop_oneof![
        3 => (kind, data_text(allow_separator)).prop_map(|(kind, data)| Packet { kind, data }),
        1 => prop::collection::vec(any::<u8>(), 0..32).prop_map(|b| Packet::binary(b.into())),
    ]
}

proptest! {
    /// At least one packet: an empty v4 body is a parser error in the reference, so `[]`
    /// deliberately does not round-trip (the server never sends an empty poll response).
    #[test]
    fn v4_payload_round_trip(packets in prop::collection::vec(packet(false), 1..8), sb in any::<bool>()) {
        let encoded = encode_payload(&packets, V4, sb);
        prop_assert_eq!(encoded.content_type, PayloadContentType::Text);
        prop_assert_eq!(decode_payload(encoded.body, V4, false), ok(packets));
    }

    #[test]
    fn v3_payload_round_trip(packets in prop::collection::vec(packet(true), 0..8), sb in any::<bool>()) {
        let encoded = encode_payload(&packets, V3, sb);
        let binary = encoded.content_type == PayloadContentType::Binary;
        prop_assert_eq!(
            binary,
            sb && packets.iter().any(|p| matches!(p.data, PacketData::Binary(_)))
        );
        prop_assert_eq!(decode_payload(encoded.body, V3, binary), ok(packets));
    }

    #[test]
    fn v3_jsonp_round_trip(packets in prop::collection::vec(packet(true), 0..8)) {
        let payload = encode_v3_text_payload(&packets);
        let body = encode_jsonp(&payload, "3").expect("valid j");
        let body = std::str::from_utf8(&body).expect("utf-8");
        // The string literal is JSON apart from the U+2028/9 escapes, which JSON also accepts.
        let literal = body
            .strip_prefix("___eio[3](")
            .and_then(|b| b.strip_suffix(");"))
            .expect("JSONP wrapper");
        let unescaped: String = serde_json::from_str(literal).expect("JSON string");
        prop_assert_eq!(&unescaped, &payload);
        prop_assert!(!body.contains(['\u{2028}', '\u{2029}']), "raw line separator in {:?}", body);
        prop_assert_eq!(decode_payload(Bytes::from(unescaped), V3, false), ok(packets));
    }

    #[test]
    fn ws_round_trip(p in packet(true), version in versions(), sb in any::<bool>()) {
        let frame = p.encode_ws(version, sb);
        prop_assert_eq!(matches!(frame, WsMessage::Binary(_)), sb && matches!(p.data, PacketData::Binary(_)));
        prop_assert_eq!(Packet::decode_ws(frame, version), Ok(p));
    }

    #[test]
    fn text_round_trip(p in packet(true), version in versions()) {
        let mut text = String::new();
        p.encode_text(version, &mut text);
        prop_assert_eq!(Packet::decode_text(&text, version), Ok(p));
    }

    #[test]
    fn v3_any_binary_type_round_trips(
        kind in (0u8..=6).prop_map(|t| PacketType::from_u8(t).expect("valid type")),
        data in prop::collection::vec(any::<u8>(), 0..16),
        sb in any::<bool>(),
    ) {
        let p = Packet { kind, data: PacketData::Binary(data.into()) };
        prop_assert_eq!(Packet::decode_ws(p.encode_ws(V3, sb), V3), Ok(p.clone()));
        let encoded = encode_payload(std::slice::from_ref(&p), V3, sb);
        let binary = encoded.content_type == PayloadContentType::Binary;
        prop_assert_eq!(decode_payload(encoded.body, V3, binary), ok(vec![p]));
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        version in versions(),
        binary_body in any::<bool>(),
    ) {
        // (A body with a bad packet keeps the packets before it, in both versions:
        // `v3_keeps_the_packets_before_a_bad_one`.)
        let body = Bytes::from(bytes.clone());
        let _ = decode_payload(body.clone(), version, binary_body);
        let _ = Packet::decode_ws(WsMessage::Binary(body), version);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = Packet::decode_text(text, version);
            let _ = Packet::decode_ws(WsMessage::Text(text.into()), version);
        }
        let _ = decode_jsonp_post(&bytes);
    }

    /// Bytes biased towards the grammar's special characters reach deeper paths.
    #[test]
    fn decoding_grammar_like_input_never_panics(
        bytes in prop::collection::vec(
            prop_oneof![
                Just(b':'), Just(0x1e), Just(0xff), Just(b'b'), Just(b'%'), Just(b'\\'),
                Just(b'd'), Just(b'='), Just(b'&'), 0u8..=9, b'0'..=b'9', any::<u8>(),
            ],
            0..64,
        ),
        version in versions(),
        binary_body in any::<bool>(),
    ) {
        let _ = decode_payload(Bytes::from(bytes.clone()), version, binary_body);
        let _ = decode_jsonp_post(&bytes);
    }

    #[test]
    fn utf16_len_matches_encode_utf16(s in any::<String>()) {
        prop_assert_eq!(utf16_len(&s), s.encode_utf16().count());
    }
}
