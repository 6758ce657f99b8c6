//! Socket.IO packet encoding and decoding: golden vectors, error cases and property tests.

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{Value, json};
use sockio_core::socketio::decoder::*;
use sockio_core::socketio::packet::*;

/// Decodes a text packet and its attachments with a default decoder, asserting that the decoder
/// waits exactly until the last attachment.
fn decode_all(text: &str, attachments: &[Bytes]) -> Result<Packet, ParseError> {
    let mut decoder = Decoder::new(DecoderLimits::default());
    let mut result = decoder.decode_text(text)?;
    for (i, attachment) in attachments.iter().enumerate() {
        assert!(result.is_none(), "packet complete before attachment {i}");
        assert!(decoder.is_waiting_for_attachments());
        result = decoder.decode_binary(attachment.clone())?;
    }
    assert!(!decoder.is_waiting_for_attachments());
    assert_eq!(decoder.buffered_bytes(), 0);
    Ok(result.expect("packet complete after its attachments"))
}

/// Checks that `packet` encodes to `text` + `attachments` and that this decodes back to `packet`.
fn golden(packet: Packet, text: &str, attachments: &[Bytes]) {
    let encoded = packet.encode();
    assert_eq!(&*encoded.text, text, "encoding of {packet:?}");
    assert_eq!(encoded.attachments, attachments);
    let decoded = decode_all(text, attachments).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(decoded, packet, "decoding of {text}");
    if attachments.is_empty() {
        assert_eq!(decode_packet(text), Ok(packet));
    }
}

fn packet(
    kind: PacketKind,
    namespace: &str,
    ack_id: Option<u64>,
    data: Option<Value>,
    attachments: Vec<Bytes>,
) -> Packet {
    Packet {
        kind,
        namespace: namespace.into(),
        ack_id,
        data,
        attachments,
    }
}

// ---------------------------------------------------------------- golden vectors

#[test]
fn connect_default_namespace() {
    golden(Packet::connect("/", None), "0", &[]);
    golden(Packet::connect("", None), "0", &[]);
}

#[test]
fn connect_admin_namespace() {
    golden(Packet::connect("/admin", None), "0/admin,", &[]);
}

#[test]
fn connect_with_auth() {
    golden(
        Packet::connect("/", Some(json!({"token": "x"}))),
        r#"0{"token":"x"}"#,
        &[],
    );
    golden(
        Packet::connect("/admin", Some(json!({"token": "x"}))),
        r#"0/admin,{"token":"x"}"#,
        &[],
    );
}

#[test]
fn namespace_without_comma() {
    let p = decode_packet("0/custom").unwrap();
    assert_eq!(p, Packet::connect("/custom", None));
    assert_eq!(&*p.namespace, "/custom");
    // and re-encodes with the comma
    assert_eq!(&*p.encode().text, "0/custom,");
    // `40/custom` is the Engine.IO message; its Socket.IO part `0/custom` is tested above.
}

#[test]
fn namespace_with_query_and_slash_only() {
    let p = decode_packet("0/admin?token=x,").unwrap();
    assert_eq!(&*p.namespace, "/admin?token=x");
    let p = decode_packet(r#"2/,["a"]"#).unwrap();
    assert_eq!(&*p.namespace, "/");
    assert_eq!(&*p.encode().text, r#"2["a"]"#);
}

#[test]
fn disconnect() {
    golden(Packet::disconnect("/admin"), "1/admin,", &[]);
    golden(Packet::disconnect("/"), "1", &[]);
}

#[test]
fn event() {
    let p = Packet::event("/", "hello", vec![json!(1)], vec![], None);
    golden(p.clone(), r#"2["hello",1]"#, &[]);
    assert_eq!(p.event_name().as_deref(), Some("hello"));
    assert_eq!(p.args(), &[json!(1)]);
}

#[test]
fn event_with_namespace_and_ack() {
    golden(
        Packet::event(
            "/admin",
            "project:delete",
            vec![json!(123)],
            vec![],
            Some(456),
        ),
        r#"2/admin,456["project:delete",123]"#,
        &[],
    );
}

#[test]
fn event_with_ack_default_namespace() {
    golden(
        Packet::event("/", "a", vec![], vec![], Some(12)),
        r#"212["a"]"#,
        &[],
    );
}

#[test]
fn ack() {
    let p = Packet::ack("/admin", 456, vec![], vec![]);
    golden(p.clone(), "3/admin,456[]", &[]);
    assert_eq!(p.event_name(), None);
    assert!(p.args().is_empty());
    let p = Packet::ack("/", 1, vec![json!("x"), json!(2)], vec![]);
    golden(p.clone(), r#"31["x",2]"#, &[]);
    assert_eq!(p.args(), &[json!("x"), json!(2)]);
}

#[test]
fn connect_error() {
    golden(
        Packet::connect_error("/", json!({"message": "Not authorized"})),
        r#"4{"message":"Not authorized"}"#,
        &[],
    );
    golden(
        Packet::connect_error("/nsp", json!({"message": "Invalid namespace"})),
        r#"4/nsp,{"message":"Invalid namespace"}"#,
        &[],
    );
    // protocol v4 sends a plain string
    golden(
        Packet::connect_error("/", json!("Not authorized")),
        r#"4"Not authorized""#,
        &[],
    );
}

#[test]
fn binary_event() {
    let bytes = Bytes::from_static(&[1, 2, 3]);
    let p = Packet::event(
        "/",
        "hello",
        vec![placeholder(0)],
        vec![bytes.clone()],
        None,
    );
    assert_eq!(p.kind, PacketKind::BinaryEvent);
    golden(
        p.clone(),
        r#"51-["hello",{"_placeholder":true,"num":0}]"#,
        &[bytes],
    );
    assert_eq!(p.event_name().as_deref(), Some("hello"));
}

#[test]
fn binary_ack() {
    let bytes = Bytes::from_static(b"\x00\xff");
    let p = Packet::ack("/admin", 456, vec![placeholder(0)], vec![bytes.clone()]);
    assert_eq!(p.kind, PacketKind::BinaryAck);
    golden(
        p,
        r#"61-/admin,456[{"_placeholder":true,"num":0}]"#,
        &[bytes],
    );
}

#[test]
fn binary_event_several_attachments() {
    let a = Bytes::from_static(b"a");
    let b = Bytes::from_static(b"bb");
    let p = Packet::event(
        "/x",
        "up",
        vec![json!({"f": placeholder(1), "g": [placeholder(0)]})],
        vec![a.clone(), b.clone()],
        Some(7),
    );
    golden(
        p,
        r#"52-/x,7["up",{"f":{"_placeholder":true,"num":1},"g":[{"_placeholder":true,"num":0}]}]"#,
        &[a, b],
    );
}

#[test]
fn encoder_promotes_to_binary() {
    let bytes = Bytes::from_static(b"z");
    let mut p = packet(
        PacketKind::Event,
        "/",
        None,
        Some(json!(["a", placeholder(0)])),
        vec![bytes.clone()],
    );
    assert_eq!(p.wire_kind(), PacketKind::BinaryEvent);
    let encoded = p.encode();
    assert_eq!(&*encoded.text, r#"51-["a",{"_placeholder":true,"num":0}]"#);
    assert_eq!(encoded.attachments, vec![bytes.clone()]);
    p.kind = PacketKind::Ack;
    p.ack_id = Some(3);
    assert_eq!(
        &*p.encode().text,
        r#"61-3["a",{"_placeholder":true,"num":0}]"#
    );
}

#[test]
fn binary_with_zero_attachments_is_kept_and_delivered_immediately() {
    let p = packet(
        PacketKind::BinaryEvent,
        "/",
        None,
        Some(json!(["a"])),
        vec![],
    );
    assert_eq!(&*p.encode().text, r#"50-["a"]"#);
    let mut decoder = Decoder::default();
    assert_eq!(decoder.decode_text(r#"50-["a"]"#), Ok(Some(p.clone())));
    assert!(!decoder.is_waiting_for_attachments());
    assert_eq!(decode_packet(r#"50-["a"]"#), Ok(p));
    let ack = packet(PacketKind::BinaryAck, "/", Some(1), Some(json!([])), vec![]);
    golden(ack, "60-1[]", &[]);
}

#[test]
fn attachments_on_non_binary_kinds_are_not_sent() {
    let p = packet(
        PacketKind::Connect,
        "/",
        None,
        None,
        vec![Bytes::from_static(b"x")],
    );
    let encoded = p.encode();
    assert_eq!(&*encoded.text, "0");
    assert!(encoded.attachments.is_empty());
}

#[test]
fn nested_event() {
    golden(
        Packet::event(
            "/",
            "a",
            vec![json!({"b": [1, 2, {"c": null}]})],
            vec![],
            None,
        ),
        r#"2["a",{"b":[1,2,{"c":null}]}]"#,
        &[],
    );
}

#[test]
fn event_with_number_name() {
    let p = decode_packet(r#"2[1,"x"]"#).unwrap();
    assert_eq!(p.kind, PacketKind::Event);
    assert_eq!(p.event_name().as_deref(), Some("1"));
    assert_eq!(p.args(), &[json!("x")]);
    assert_eq!(&*p.encode().text, r#"2[1,"x"]"#);
    assert_eq!(
        decode_packet("2[1.5]").unwrap().event_name().as_deref(),
        Some("1.5")
    );
}

#[test]
fn bare_packets_without_payload() {
    for (text, kind) in [
        ("2", PacketKind::Event),
        ("3", PacketKind::Ack),
        ("4", PacketKind::ConnectError),
        ("1", PacketKind::Disconnect),
    ] {
        let p = decode_packet(text).unwrap();
        assert_eq!(p.kind, kind);
        assert_eq!(p.data, None);
        assert_eq!(p.event_name(), None);
        assert_eq!(&*p.encode().text, text);
    }
}

#[test]
fn placeholders() {
    assert_eq!(placeholder(3), json!({"_placeholder": true, "num": 3}));
    assert_eq!(placeholder_num(&placeholder(3)), Some(3));
    assert_eq!(
        placeholder_num(&json!({"_placeholder": false, "num": 3})),
        None
    );
    assert_eq!(
        placeholder_num(&json!({"_placeholder": true, "num": -1})),
        None
    );
    assert_eq!(
        placeholder_num(&json!({"_placeholder": true, "num": 1.5})),
        None
    );
    assert_eq!(placeholder_num(&json!({"num": 1})), None);
    assert_eq!(placeholder_num(&json!([1])), None);
    assert!(is_placeholder(&json!({"_placeholder": true})));
}

#[test]
fn placeholders_in_plain_event_are_plain_objects() {
    let text = r#"2["a",{"_placeholder":true,"num":5}]"#;
    let p = decode_packet(text).unwrap();
    assert!(p.attachments.is_empty());
    assert_eq!(p.args(), &[json!({"_placeholder": true, "num": 5})]);
}

#[test]
fn placeholders_are_what_the_reference_parser_resolves() {
    // Any object with `_placeholder: true` in a packet with attachments, whatever else it
    // holds: a handler asking for bytes gets the attachment, not a map.
    let bytes = Bytes::from_static(b"\x01\x02");
    let p = decode_all(
        r#"51-["a",{"_placeholder":true,"num":0,"x":1}]"#,
        std::slice::from_ref(&bytes),
    )
    .unwrap();
    let args = sockio_core::payload::Args::from_parts(p.args().to_vec(), p.attachments.clone());
    let data: Bytes = sockio_core::payload::from_args(&args).unwrap();
    assert_eq!(data, bytes);
    // A `num` written as a float is the same number to the reference parser (JavaScript has
    // one number type).
    let second = Bytes::from_static(b"\x03");
    for (text, expected) in [
        (r#"52-["a",{"_placeholder":true,"num":1.0}]"#, &second),
        (r#"52-["a",{"_placeholder":true,"num":1e0}]"#, &second),
        (r#"52-["a",{"_placeholder":true,"num":0.0}]"#, &bytes),
    ] {
        let p = decode_all(text, &[bytes.clone(), second.clone()]).unwrap();
        let args = sockio_core::payload::Args::from_parts(p.args().to_vec(), p.attachments.clone());
        let data: Bytes = sockio_core::payload::from_args(&args).unwrap();
        assert_eq!(&data, expected, "{text}");
    }
    // A BINARY packet declaring no attachments is not reconstructed (the reference parser
    // hands it on at once), so a placeholder-shaped object in it is data, as in a text packet.
    let p = decode_all(r#"50-["a",{"_placeholder":true,"num":0}]"#, &[]).unwrap();
    assert_eq!(p.args(), &[json!({"_placeholder": true, "num": 0})]);
}

// ---------------------------------------------------------------- errors

fn assert_error(text: &str, expected: ParseError) {
    assert_eq!(decode_packet(text), Err(expected.clone()), "{text}");
    let mut decoder = Decoder::default();
    assert_eq!(decoder.decode_text(text), Err(expected), "{text}");
    assert!(!decoder.is_waiting_for_attachments());
}

fn assert_json_error(text: &str) {
    match decode_packet(text) {
        Err(ParseError::InvalidJson(_)) => {}
        other => panic!("{text}: expected InvalidJson, got {other:?}"),
    }
}

#[test]
fn reserved_event_names() {
    for name in RESERVED_EVENTS {
        assert_error(
            &format!(r#"2["{name}"]"#),
            ParseError::InvalidPayload(PacketKind::Event),
        );
        assert_error(
            &format!(r#"50-["{name}"]"#),
            ParseError::InvalidPayload(PacketKind::BinaryEvent),
        );
    }
}

#[test]
fn invalid_payloads() {
    use PacketKind::*;
    for (text, kind) in [
        ("2[]", Event),
        ("2{}", Event),
        ("2[null]", Event),
        ("2[true]", Event),
        (r#"2[["a"]]"#, Event),
        (r#"2"a""#, Event),
        ("1/a,{}", Disconnect),
        ("1null", Disconnect),
        ("0[]", Connect),
        (r#"0"x""#, Connect),
        ("0null", Connect),
        ("3{}", Ack),
        (r#"3"a""#, Ack),
        ("4[]", ConnectError),
        ("4true", ConnectError),
        ("4null", ConnectError),
        ("50-[]", BinaryEvent),
        ("60-{}", BinaryAck),
    ] {
        assert_error(text, ParseError::InvalidPayload(kind));
    }
}

#[test]
fn unknown_type_and_empty() {
    assert_error("9", ParseError::UnknownType('9'));
    assert_error("7[]", ParseError::UnknownType('7'));
    assert_error("x", ParseError::UnknownType('x'));
    assert_error("é", ParseError::UnknownType('é'));
    assert_error("", ParseError::Empty);
}

#[test]
fn invalid_json() {
    assert_json_error("2[");
    assert_json_error(r#"2["a"]x"#);
    assert_json_error("2 ");
    assert_json_error(r#"2/admin,1["a""#);
    assert_json_error("0/admin,x");
    // without the comma the namespace runs to the end of the packet
    assert_eq!(&*decode_packet("4/nsp{}").unwrap().namespace, "/nsp{}");
}

#[test]
fn invalid_attachment_count() {
    for text in [
        r#"5["a"]"#,
        r#"5-["a"]"#,
        r#"51["a"]"#,
        r#"5a-["a"]"#,
        "5",
        "6",
        r#"5 1-["a"]"#,
        r#"599999999999999999999999-["a"]"#,
    ] {
        assert_error(text, ParseError::InvalidAttachmentCount);
    }
}

#[test]
fn ack_id_overflow() {
    assert_error(r#"2999999999999999999999["a"]"#, ParseError::InvalidAckId);
    assert_error("3/a,18446744073709551616[]", ParseError::InvalidAckId);
    let max = decode_packet("3/a,18446744073709551615[]").unwrap();
    assert_eq!(max.ack_id, Some(u64::MAX));
    golden(max, "3/a,18446744073709551615[]", &[]);
    let zero = decode_packet("30[]").unwrap();
    golden(zero, "30[]", &[]);
}

#[test]
fn too_many_attachments() {
    let mut decoder = Decoder::default();
    assert_eq!(
        decoder.decode_text(r#"511-["a"]"#),
        Err(ParseError::TooManyAttachments {
            declared: 11,
            max: 10
        })
    );
    assert!(!decoder.is_waiting_for_attachments());
    // exactly at the limit is fine
    assert_eq!(decoder.decode_text(r#"510-["a"]"#), Ok(None));
    assert!(decoder.is_waiting_for_attachments());
    // decode_packet expects no attachments
    assert_eq!(
        decode_packet(r#"51-["a",{"_placeholder":true,"num":0}]"#),
        Err(ParseError::TooManyAttachments {
            declared: 1,
            max: 0
        })
    );
}

#[test]
fn text_while_attachments_pending() {
    let mut decoder = Decoder::default();
    assert_eq!(
        decoder.decode_text(r#"52-["a",{"_placeholder":true,"num":0}]"#),
        Ok(None)
    );
    assert_eq!(decoder.decode_binary(Bytes::from_static(b"x")), Ok(None));
    assert_eq!(
        decoder.decode_text(r#"2["b"]"#),
        Err(ParseError::UnexpectedText)
    );
    // the state was reset
    assert!(!decoder.is_waiting_for_attachments());
    assert_eq!(decoder.buffered_bytes(), 0);
    assert_eq!(
        decoder.decode_binary(Bytes::from_static(b"y")),
        Err(ParseError::UnexpectedBinary)
    );
    assert!(decoder.decode_text(r#"2["b"]"#).unwrap().is_some());
}

#[test]
fn binary_without_pending_packet() {
    let mut decoder = Decoder::default();
    assert_eq!(
        decoder.decode_binary(Bytes::from_static(b"x")),
        Err(ParseError::UnexpectedBinary)
    );
    // after a complete binary packet, a further attachment is unexpected
    assert_eq!(decoder.decode_text(r#"51-["a"]"#), Ok(None));
    assert!(decoder.decode_binary(Bytes::new()).unwrap().is_some());
    assert_eq!(
        decoder.decode_binary(Bytes::new()),
        Err(ParseError::UnexpectedBinary)
    );
}

#[test]
fn placeholder_out_of_range() {
    for text in [
        r#"51-["a",{"_placeholder":true,"num":1}]"#,
        r#"51-["a",{"_placeholder":true,"num":-1}]"#,
        r#"51-["a",{"_placeholder":true,"num":0.5}]"#,
        r#"51-["a",{"_placeholder":true,"num":1.0}]"#,
        r#"51-["a",{"_placeholder":true,"num":1e300}]"#,
        r#"51-["a",{"_placeholder":true,"num":"0"}]"#,
        r#"51-["a",{"_placeholder":true}]"#,
        r#"51-["a",[[{"x":{"_placeholder":true,"num":18446744073709551615}}]]]"#,
        r#"61-1[{"_placeholder":true,"num":1}]"#,
        // Extra keys do not make it data: the reference parser looks only at `_placeholder`.
        r#"51-["a",{"_placeholder":true,"num":1,"x":2}]"#,
    ] {
        let mut decoder = Decoder::default();
        assert_eq!(
            decoder.decode_text(text),
            Err(ParseError::PlaceholderOutOfRange),
            "{text}"
        );
        assert!(!decoder.is_waiting_for_attachments());
    }
    // `_placeholder: false` is an ordinary object
    let mut decoder = Decoder::default();
    assert_eq!(
        decoder.decode_text(r#"51-["a",{"_placeholder":false,"num":9}]"#),
        Ok(None)
    );
}

#[test]
fn attachment_byte_limit() {
    let limits = DecoderLimits {
        max_attachments: 3,
        max_attachment_bytes: 10,
    };
    let mut decoder = Decoder::new(limits);
    let text = r#"53-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1},{"_placeholder":true,"num":2}]"#;
    assert_eq!(decoder.decode_text(text), Ok(None));
    assert_eq!(decoder.buffered_bytes(), text.len());
    assert_eq!(decoder.decode_binary(Bytes::from(vec![0; 6])), Ok(None));
    assert_eq!(decoder.buffered_bytes(), text.len() + 6);
    assert_eq!(decoder.decode_binary(Bytes::from(vec![0; 4])), Ok(None));
    assert_eq!(
        decoder.decode_binary(Bytes::from(vec![0; 1])),
        Err(ParseError::AttachmentsTooLarge { max: 10 })
    );
    assert!(!decoder.is_waiting_for_attachments());
    assert_eq!(decoder.buffered_bytes(), 0);

    // exactly at the limit is fine
    assert_eq!(decoder.decode_text(text), Ok(None));
    decoder.decode_binary(Bytes::from(vec![0; 10])).unwrap();
    decoder.decode_binary(Bytes::new()).unwrap();
    let p = decoder.decode_binary(Bytes::new()).unwrap().unwrap();
    assert_eq!(p.attachments.len(), 3);
    assert_eq!(decoder.limits(), limits);
}

/// An application may lift the attachment count limit; a client declaring an absurd count
/// must then cost the attachments it sends, not what it declares (a reservation of the declared
/// count aborted the process).
#[test]
fn a_declared_attachment_count_is_not_reserved_up_front() {
    let mut decoder = Decoder::new(DecoderLimits {
        max_attachments: usize::MAX,
        max_attachment_bytes: usize::MAX,
    });
    let text = r#"51000000000000000-["a",{"_placeholder":true,"num":0}]"#;
    assert_eq!(decoder.decode_text(text), Ok(None));
    assert!(decoder.is_waiting_for_attachments());
    assert_eq!(decoder.decode_binary(Bytes::from_static(b"x")), Ok(None));
    assert_eq!(decoder.buffered_bytes(), text.len() + 1);
}

#[test]
fn reset_drops_partial_packet() {
    let mut decoder = Decoder::default();
    assert_eq!(decoder.decode_text(r#"52-["a"]"#), Ok(None));
    decoder.decode_binary(Bytes::from_static(b"abc")).unwrap();
    assert!(decoder.buffered_bytes() > 0);
    decoder.reset();
    assert!(!decoder.is_waiting_for_attachments());
    assert_eq!(decoder.buffered_bytes(), 0);
    assert_eq!(
        decoder
            .decode_text(r#"2["b"]"#)
            .unwrap()
            .unwrap()
            .event_name()
            .as_deref(),
        Some("b")
    );
}

#[test]
fn default_limits() {
    let limits = DecoderLimits::default();
    assert_eq!(limits.max_attachments, 10);
    assert_eq!(limits.max_attachment_bytes, 10_000_000);
}

#[test]
fn deeply_nested_json_is_an_error() {
    for (open, close) in [("[", "]"), (r#"{"a":"#, "}")] {
        let depth = 10_000;
        let text = format!(r#"2["a",{}1{}]"#, open.repeat(depth), close.repeat(depth));
        assert_json_error(&text);
        let text = format!(r#"51-["a",{}1{}]"#, open.repeat(depth), close.repeat(depth));
        let mut decoder = Decoder::default();
        assert!(matches!(
            decoder.decode_text(&text),
            Err(ParseError::InvalidJson(_))
        ));
    }
    // moderately nested JSON is fine
    let text = format!(r#"2["a",{}1{}]"#, "[".repeat(100), "]".repeat(100));
    assert!(decode_packet(&text).is_ok());
}

#[test]
fn error_messages() {
    assert_eq!(
        ParseError::TooManyAttachments {
            declared: 11,
            max: 10
        }
        .to_string(),
        "packet declares 11 attachments, more than the limit of 10"
    );
    assert_eq!(
        ParseError::UnknownType('9').to_string(),
        "unknown packet type '9'"
    );
    assert_eq!(
        ParseError::InvalidPayload(PacketKind::Event).to_string(),
        "invalid payload for a Event packet"
    );
    assert_eq!(
        ParseError::AttachmentTimeout.to_string(),
        "binary attachments did not arrive in time"
    );
}

// ---------------------------------------------------------------- property tests

fn arb_namespace() -> impl Strategy<Value = String> {
    prop_oneof![Just("/".to_owned()), "/[a-z0-9_-]{1,10}"]
}

fn arb_event_name() -> impl Strategy<Value = String> {
    any::<String>().prop_filter("reserved event name", |name| {
        !RESERVED_EVENTS.contains(&name.as_str())
    })
}

/// JSON values of bounded depth. Numbers are integers or short binary fractions, which survive a
/// text round trip exactly.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1_000_000i32..1_000_000).prop_map(|n| Value::from(f64::from(n) / 8.0)),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z0-9 _]{0,8}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn arb_attachments() -> impl Strategy<Value = Vec<Bytes>> {
    prop::collection::vec(
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from),
        0..5,
    )
}

/// Inserts the placeholders of `count` attachments into `args` at positions chosen by `slots`.
fn with_placeholders(mut args: Vec<Value>, count: usize, slots: &[usize]) -> Vec<Value> {
    for num in 0..count {
        let slot = slots.get(num).copied().unwrap_or(0);
        let value = placeholder(num);
        if slot % 2 == 1 {
            args.push(json!({ "file": value }));
        } else {
            let at = slot.min(args.len());
            args.insert(at, value);
        }
    }
    args
}

fn round_trip(packet: &Packet) -> Result<(), TestCaseError> {
    let encoded = packet.encode();
    prop_assert_eq!(encoded.attachments.len(), packet.attachments.len());
    let decoded = decode_all(&encoded.text, &encoded.attachments)
        .map_err(|e| TestCaseError::fail(format!("{}: {e}", encoded.text)))?;
    prop_assert_eq!(&decoded, packet);
    Ok(())
}

/// Feeds to a decoder, in one test case.
#[derive(Debug, Clone)]
enum Input {
    Text(String),
    Binary(Vec<u8>),
    Reset,
}

fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        r#"[0-9][0-9/,a-z\[\]{}":_\-]{0,40}"#,
        r#"[56][0-3]-(/[a-z]{0,3},)?[0-9]{0,3}\["a",\{"_placeholder":(true|false),"num":[0-9-]{1,2}\}\]"#,
        prop::collection::vec(any::<u8>(), 0..64)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn event_round_trip(
        namespace in arb_namespace(),
        name in arb_event_name(),
        args in prop::collection::vec(arb_json(), 0..4),
        attachments in arb_attachments(),
        slots in prop::collection::vec(0usize..8, 5),
        ack_id in prop::option::of(any::<u64>()),
    ) {
        let args = with_placeholders(args, attachments.len(), &slots);
        let packet = Packet::event(&namespace, &name, args, attachments, ack_id);
        let event_name = packet.event_name();
        prop_assert_eq!(event_name.as_deref(), Some(name.as_str()));
        round_trip(&packet)?;
    }

    #[test]
    fn ack_round_trip(
        namespace in arb_namespace(),
        args in prop::collection::vec(arb_json(), 0..4),
        attachments in arb_attachments(),
        slots in prop::collection::vec(0usize..8, 5),
        ack_id in any::<u64>(),
    ) {
        let args = with_placeholders(args, attachments.len(), &slots);
        round_trip(&Packet::ack(&namespace, ack_id, args, attachments))?;
    }

    #[test]
    fn other_kinds_round_trip(
        namespace in arb_namespace(),
        auth in prop::option::of(prop::collection::btree_map("[a-z]{0,8}", arb_json(), 0..4)),
        message in any::<String>(),
    ) {
        let auth = auth.map(|map| Value::Object(map.into_iter().collect()));
        round_trip(&Packet::connect(&namespace, auth))?;
        round_trip(&Packet::disconnect(&namespace))?;
        round_trip(&Packet::connect_error(&namespace, json!({ "message": message.clone() })))?;
        round_trip(&Packet::connect_error(&namespace, Value::String(message)))?;
    }

    #[test]
    fn decode_packet_never_panics(text in arb_text()) {
        if let Ok(packet) = decode_packet(&text) {
            // whatever decodes re-encodes to something that decodes to the same packet
            let encoded = packet.encode();
            prop_assert_eq!(decode_packet(&encoded.text), Ok(packet));
        }
    }

    #[test]
    fn decoder_never_panics(
        inputs in prop::collection::vec(
            prop_oneof![
                arb_text().prop_map(Input::Text),
                prop::collection::vec(any::<u8>(), 0..32).prop_map(Input::Binary),
                Just(Input::Reset),
            ],
            0..16,
        ),
    ) {
        let limits = DecoderLimits { max_attachments: 3, max_attachment_bytes: 48 };
        let mut decoder = Decoder::new(limits);
        for input in inputs {
            let result = match input {
                Input::Text(text) => decoder.decode_text(&text),
                Input::Binary(bytes) => decoder.decode_binary(Bytes::from(bytes)),
                Input::Reset => {
                    decoder.reset();
                    Ok(None)
                }
            };
            match result {
                Err(_) => {
                    prop_assert!(!decoder.is_waiting_for_attachments());
                    prop_assert_eq!(decoder.buffered_bytes(), 0);
                }
                Ok(Some(packet)) => {
                    prop_assert!(!decoder.is_waiting_for_attachments());
                    prop_assert!(packet.attachments.len() <= limits.max_attachments);
                    let total: usize = packet.attachments.iter().map(Bytes::len).sum();
                    prop_assert!(total <= limits.max_attachment_bytes);
                    if !packet.kind.is_binary() {
                        prop_assert!(packet.attachments.is_empty());
                    }
                }
                Ok(None) => {}
            }
        }
    }
}

#[test]
fn packets_of_any_size_encode_one_after_another() {
    // Past the encoder's per-thread buffer size (4 KiB) the text is handed over rather than
    // copied; small packets before and after must not see any of it.
    let sizes = [10, 5_000, 10, 100_000, 3, 4_090, 4_100, 0];
    for (i, size) in sizes.into_iter().enumerate() {
        let text = "é".repeat(size / 2);
        let packet = Packet::event("/", "big", vec![json!(text)], vec![], Some(i as u64));
        let expected = format!("2{i}[\"big\",\"{text}\"]");
        assert_eq!(&*packet.encode().text, expected.as_str());
        assert_eq!(
            &*packet.encode_message().text,
            format!("4{expected}").as_str()
        );
    }
}
