use std::io::IoSlice;

use bytes::Bytes;
use bytestring::ByteString;
use proptest::prelude::*;

use super::*;
use crate::engineio::WsMessage;

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn text(s: &str) -> WsMessage {
    WsMessage::Text(ByteString::from(s))
}

/// Everything `reader` finds in `input` fed in pieces of `step` bytes.
fn read_in_steps(
    reader: &mut FrameReader,
    input: &[u8],
    step: usize,
) -> (Vec<Incoming>, Result<(), ReadError>) {
    let mut found = Vec::new();
    for piece in input.chunks(step.max(1)) {
        if let Err(error) = reader.feed(piece, &mut |incoming| found.push(incoming)) {
            return (found, Err(error));
        }
    }
    (found, Ok(()))
}

fn read_all(input: &[u8]) -> (Vec<Incoming>, Result<(), ReadError>) {
    read_in_steps(&mut FrameReader::new(1 << 20), input, input.len())
}

#[test]
fn messages_of_every_length_encoding_arrive_whole_however_the_bytes_are_cut() {
    for len in [0usize, 1, 125, 126, 127, 65_535, 65_536, 70_001] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut input = client_frame(0x82, &payload, MASK);
        input.extend(client_frame(0x81, b"42[\"a\"]", MASK));
        for step in [1, 3, 7, 1000, input.len()] {
            if len > 1000 && step < 7 {
                continue;
            }
            let mut reader = FrameReader::new(1 << 20);
            let (found, result) = read_in_steps(&mut reader, &input, step);
            assert_eq!(result, Ok(()));
            assert_eq!(
                found,
                vec![
                    Incoming::Message(WsMessage::Binary(Bytes::from(payload.clone()))),
                    Incoming::Message(text("42[\"a\"]")),
                ],
                "length {len}, step {step}"
            );
            assert_eq!(reader.buffered(), 0);
        }
    }
}

#[test]
fn a_long_message_leaves_nothing_in_the_reader() {
    let payload = vec![9u8; 256 * 1024];
    let input = client_frame(0x82, &payload, MASK);
    let mut reader = FrameReader::new(1 << 20);
    let (_, result) = read_in_steps(&mut reader, &input[..100_000], 16 * 1024);
    assert_eq!(result, Ok(()));
    // While it arrives, it is held at about what arrived, never past its announced length.
    assert!((100_000 - 14..=payload.len()).contains(&reader.buffered()));
    let (found, result) = read_in_steps(&mut reader, &input[100_000..], 16 * 1024);
    assert_eq!(result, Ok(()));
    assert_eq!(found.len(), 1);
    assert_eq!(reader.buffered(), 0);
}

#[test]
fn fragments_are_joined_and_control_frames_between_them_come_first() {
    let mut input = client_frame(0x01, "42[\"é".as_bytes()[..6].as_ref(), MASK);
    input.extend(client_frame(0x89, b"are you there", MASK));
    // The second fragment starts inside the two-byte "é": UTF-8 is checked on the whole message.
    input.extend(client_frame(0x00, &"42[\"é".as_bytes()[6..], MASK));
    input.extend(client_frame(0x8A, b"unsolicited pong", MASK));
    input.extend(client_frame(0x80, b"\"]", MASK));
    for step in [1, 2, 5, input.len()] {
        let (found, result) = read_in_steps(&mut FrameReader::new(1024), &input, step);
        assert_eq!(result, Ok(()));
        assert_eq!(
            found,
            vec![
                Incoming::Ping(Bytes::from_static(b"are you there")),
                Incoming::Message(text("42[\"é\"]")),
            ]
        );
    }
}

#[test]
fn a_close_ends_the_stream_and_what_follows_is_ignored() {
    let mut input = client_frame(0x88, &[0x03, 0xE8, b'o', b'k'], MASK);
    input.extend(client_frame(0x81, b"ignored", MASK));
    let mut reader = FrameReader::new(1024);
    let (found, result) = read_in_steps(&mut reader, &input, input.len());
    assert_eq!(result, Ok(()));
    assert_eq!(found, vec![Incoming::Close(Some(CloseCode::NORMAL))]);
    assert!(reader.is_ended());
    let (found, _) = read_in_steps(&mut reader, &client_frame(0x81, b"x", MASK), 10);
    assert!(found.is_empty());
    assert_eq!(
        read_all(&client_frame(0x88, &[], MASK)).0,
        vec![Incoming::Close(None)]
    );
}

#[test]
fn protocol_violations_are_errors_with_their_close_codes() {
    let unmasked = {
        let mut frame = client_frame(0x81, b"hi", [0; 4]);
        frame[1] &= 0x7F;
        frame.drain(2..6);
        frame
    };
    let cases: Vec<(&str, Vec<u8>, CloseCode)> = vec![
        ("unmasked", unmasked, CloseCode::PROTOCOL_ERROR),
        (
            "reserved bit",
            client_frame(0xC1, b"hi", MASK),
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "unknown opcode",
            client_frame(0x83, b"hi", MASK),
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "fragmented ping",
            client_frame(0x09, b"hi", MASK),
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "long ping",
            client_frame(0x89, &[0; 126], MASK),
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "stray continuation",
            client_frame(0x80, b"hi", MASK),
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "message inside fragments",
            [
                client_frame(0x01, b"a", MASK),
                client_frame(0x81, b"b", MASK),
            ]
            .concat(),
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "64-bit length with its top bit set",
            [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4].to_vec(),
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "too long",
            client_frame(0x82, &[0; 1025], MASK),
            CloseCode::TOO_BIG,
        ),
        (
            "too long in fragments",
            [
                client_frame(0x02, &[0; 600], MASK),
                client_frame(0x80, &[0; 600], MASK),
            ]
            .concat(),
            CloseCode::TOO_BIG,
        ),
        (
            "invalid UTF-8",
            client_frame(0x81, b"\xff\xfe", MASK),
            CloseCode::INVALID_DATA,
        ),
        (
            "one-byte close",
            client_frame(0x88, &[3], MASK),
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "close code 1005",
            client_frame(0x88, &[0x03, 0xED], MASK),
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "close code 999",
            client_frame(0x88, &[0x03, 0xE7], MASK),
            CloseCode::PROTOCOL_ERROR,
        ),
        (
            "close reason not UTF-8",
            client_frame(0x88, &[0x03, 0xE8, 0xff], MASK),
            CloseCode::INVALID_DATA,
        ),
    ];
    for (name, input, code) in cases {
        for step in [1, input.len()] {
            let mut reader = FrameReader::new(1024);
            let (found, result) = read_in_steps(&mut reader, &input, step);
            let error = result.expect_err(name);
            assert_eq!(error.close_code(), code, "{name}");
            assert!(found.is_empty(), "{name}");
            assert!(reader.is_ended(), "{name}");
            // Nothing more is read after an error.
            assert_eq!(
                reader.feed(&client_frame(0x81, b"x", MASK), &mut |_| panic!()),
                Ok(())
            );
        }
    }
}

#[test]
fn a_too_long_frame_is_refused_from_its_header_before_its_payload() {
    let header = &client_frame(0x82, &vec![0; 1 << 21], MASK)[..14];
    let (_, result) = read_in_steps(&mut FrameReader::new(1 << 20), header, 14);
    assert_eq!(
        result,
        Err(ReadError::TooLong {
            size: 1 << 21,
            max: 1 << 20
        })
    );
}

/// The bytes `outbox` gives, written `step` bytes at a time.
fn drain(outbox: &mut Outbox, step: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while !outbox.is_empty() {
        let mut slices = [IoSlice::new(&[]); 3];
        let filled = outbox.io_slices(&mut slices);
        assert!(filled > 0);
        let mut taken = 0;
        for slice in &slices[..filled] {
            let take = (step - taken).min(slice.len());
            out.extend_from_slice(&slice[..take]);
            taken += take;
            if taken == step {
                break;
            }
        }
        outbox.advance(taken);
    }
    out
}

/// A server frame as RFC 6455 lays it out.
fn server_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = client_frame(first, payload, [0; 4]);
    frame[1] &= 0x7F;
    let mask_at = frame.len() - payload.len() - 4;
    frame.drain(mask_at..mask_at + 4);
    frame
}

#[test]
fn the_outbox_writes_frames_in_order_however_the_socket_takes_them() {
    let long = Bytes::from(vec![5u8; 70_000]);
    let medium = ByteString::from("é".repeat(700));
    let push_all = |outbox: &mut Outbox| {
        outbox.push(text("2"));
        assert!(outbox.push_pong(b"p"));
        outbox.push(WsMessage::Binary(long.clone()));
        outbox.push(WsMessage::Text(medium.clone()));
        outbox.push(WsMessage::Binary(Bytes::from_static(&[1, 2])));
        outbox.push_close(Some(CloseCode::NORMAL));
        outbox.push(text("after the close"));
    };
    let expected = [
        server_frame(0x81, b"2"),
        server_frame(0x8A, b"p"),
        server_frame(0x82, &long),
        server_frame(0x81, medium.as_bytes()),
        server_frame(0x82, &[1, 2]),
        server_frame(0x88, &[0x03, 0xE8]),
    ]
    .concat();
    for step in [1, 2, 9, 1000, 65_536, usize::MAX / 2] {
        if step < 9 {
            // Byte by byte through 70 KB is slow and proves nothing more than 9.
            let mut outbox = Outbox::new();
            outbox.push(text("2"));
            outbox.push(WsMessage::Text(medium.clone()));
            let bytes = drain(&mut outbox, step);
            assert_eq!(
                bytes,
                [
                    server_frame(0x81, b"2"),
                    server_frame(0x81, medium.as_bytes())
                ]
                .concat()
            );
            continue;
        }
        let mut outbox = Outbox::new();
        push_all(&mut outbox);
        assert!(outbox.is_closed());
        assert_eq!(outbox.unwritten(), expected.len());
        assert_eq!(drain(&mut outbox, step), expected, "step {step}");
        assert!(outbox.is_empty());
    }
}

#[test]
fn a_long_payload_is_written_from_the_messages_own_bytes() {
    let long = Bytes::from(vec![5u8; SHARED_PAYLOAD + 1]);
    let mut outbox = Outbox::new();
    outbox.push(WsMessage::Binary(long.clone()));
    let mut slices = [IoSlice::new(&[]); 4];
    assert_eq!(outbox.io_slices(&mut slices), 2);
    assert_eq!(slices[1].as_ptr(), long.as_ptr());
    // Once written, the outbox lets go of it.
    outbox.advance(outbox.unwritten());
    drop(outbox);
    assert!(long.is_unique());
}

#[test]
fn pongs_wait_for_a_reading_client() {
    let mut outbox = Outbox::new();
    outbox.push(WsMessage::Binary(Bytes::from(vec![0u8; 20_000])));
    assert!(!outbox.push_pong(b"waits while the socket is far behind"));
    outbox.advance(outbox.unwritten());
    assert!(outbox.push_pong(b"answered"));
}

/// A run of pings that finds the socket far behind is answered by the pong of the latest one,
/// once the backlog is written down: not dropped, and not one pong per ping.
#[test]
fn the_latest_ping_met_while_far_behind_is_answered_once_the_backlog_is_written() {
    let mut outbox = Outbox::new();
    outbox.push(WsMessage::Binary(Bytes::from(vec![0u8; 20_000])));
    for payload in [b"first".as_slice(), b"second", b"latest"] {
        assert!(!outbox.push_pong(payload));
    }
    assert!(outbox.has_deferred_pong());
    // Part of the backlog written, still more than 16 KiB left: the pong waits.
    outbox.advance(1_000);
    assert!(outbox.has_deferred_pong());
    // Written down below it: the pong is queued behind what is left.
    outbox.advance(10_000);
    assert!(!outbox.has_deferred_pong());
    let mut out = Vec::new();
    while !outbox.is_empty() {
        let mut slices = [IoSlice::new(&[]); 4];
        let filled = outbox.io_slices(&mut slices);
        let taken: usize = slices[..filled].iter().map(|s| s.len()).sum();
        for slice in &slices[..filled] {
            out.extend_from_slice(slice);
        }
        outbox.advance(taken);
    }
    let pong = server_frame(0x8A, b"latest");
    assert!(out.ends_with(&pong), "the latest ping's pong comes last");
    assert_eq!(
        out.len(),
        20_000 - 11_000 + 4 + pong.len(),
        "one pong, after the rest of the message"
    );
    // A close drops a pong still waiting: nothing follows a close.
    let mut outbox = Outbox::new();
    outbox.push(WsMessage::Binary(Bytes::from(vec![0u8; 20_000])));
    assert!(!outbox.push_pong(b"never"));
    outbox.push_close(None);
    outbox.advance(outbox.unwritten());
    assert!(outbox.is_empty());
}

fn message_strategy() -> impl Strategy<Value = WsMessage> {
    prop_oneof![
        ".{0,300}".prop_map(|s| WsMessage::Text(ByteString::from(s))),
        prop::collection::vec(any::<u8>(), 0..3000).prop_map(|v| WsMessage::Binary(Bytes::from(v))),
    ]
}

proptest! {
    /// Any messages, cut into any fragments with any masks and read in any pieces, arrive whole
    /// and in order.
    #[test]
    fn messages_round_trip_through_fragments_and_pieces(
        messages in prop::collection::vec((message_strategy(), 1usize..4, any::<[u8; 4]>()), 1..8),
        step in 1usize..4000,
    ) {
        let mut input = Vec::new();
        for (message, fragments, mask) in &messages {
            let (opcode, bytes): (u8, &[u8]) = match message {
                WsMessage::Text(text) => (1, text.as_bytes()),
                WsMessage::Binary(bytes) => (2, bytes),
            };
            let size = bytes.len().div_ceil(*fragments).max(1);
            let pieces: Vec<&[u8]> = if bytes.is_empty() { vec![&[]] } else { bytes.chunks(size).collect() };
            for (index, piece) in pieces.iter().enumerate() {
                let fin = if index + 1 == pieces.len() { 0x80 } else { 0 };
                let op = if index == 0 { opcode } else { 0 };
                input.extend(client_frame(fin | op, piece, *mask));
            }
        }
        let (found, result) = read_in_steps(&mut FrameReader::new(1 << 20), &input, step);
        prop_assert_eq!(result, Ok(()));
        let expected: Vec<Incoming> =
            messages.into_iter().map(|(message, _, _)| Incoming::Message(message)).collect();
        prop_assert_eq!(found, expected);
    }
}

#[test]
fn the_accept_key_is_rfc_6455s() {
    // The example of RFC 6455 section 1.3.
    assert_eq!(
        accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[test]
fn the_switching_headers_carry_the_accept_key_and_then_the_extra_ones() {
    let mut extra = http::HeaderMap::new();
    extra.insert(http::header::SET_COOKIE, "io=abc".parse().unwrap());
    let headers = switching_headers(b"dGhlIHNhbXBsZSBub25jZQ==", extra);
    assert_eq!(headers[http::header::UPGRADE], "websocket");
    assert_eq!(headers[http::header::CONNECTION], "Upgrade");
    assert_eq!(
        headers[http::header::SEC_WEBSOCKET_ACCEPT],
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    assert_eq!(headers[http::header::SET_COOKIE], "io=abc");
}

#[test]
fn the_cores_actions_become_frames_and_nothing_follows_its_close() {
    use crate::engineio::WsAction;
    let mut outbox = Outbox::new();
    outbox.push_action(WsAction::Send(text("4hi")));
    outbox.push_action(WsAction::Close);
    outbox.push_action(WsAction::Send(text("4late")));
    assert!(outbox.is_closed());
    assert_eq!(
        drain(&mut outbox, 3),
        [server_frame(0x81, b"4hi"), server_frame(0x88, b"")].concat()
    );
}

/// Found by the `websocket_frames` fuzz target: the fragments of a message grew by doubling, so
/// the reader (and then the message) held up to twice the maximum message size.
#[test]
fn fragments_are_held_at_their_exact_length() {
    let mut reader = FrameReader::new(125);
    let mut input = client_frame(0x02, &[1; 100], MASK);
    input.extend(client_frame(0x80, &[2; 25], MASK));
    // Everything but the last byte of the last fragment.
    let (found, result) = read_in_steps(&mut reader, &input[..input.len() - 1], 7);
    assert_eq!((found.len(), result), (0, Ok(())));
    assert_eq!(reader.buffered(), 125);
    let (found, _) = read_in_steps(&mut reader, &input[input.len() - 1..], 1);
    assert_eq!(found.len(), 1);
    assert_eq!(reader.buffered(), 0);
}

/// A header alone reserves nothing: a client announcing a long message and sending nothing more
/// costs the server no allocation of that size.
#[test]
fn a_header_alone_reserves_nothing() {
    let header = &client_frame(0x82, &vec![0; 1 << 19], MASK)[..14];
    let mut reader = FrameReader::new(1 << 20);
    let (found, result) = read_in_steps(&mut reader, header, 14);
    assert_eq!((found.len(), result), (0, Ok(())));
    assert_eq!(reader.buffered(), 0);
}

/// Control frames between fragments do not count towards the message's size (RFC 6455 5.4).
#[test]
fn a_ping_between_fragments_of_a_message_at_the_limit_is_accepted() {
    let mut input = client_frame(0x02, &[1; 125], MASK);
    input.extend(client_frame(0x89, b"x", MASK));
    input.extend(client_frame(0x80, &[], MASK));
    let (found, result) = read_in_steps(&mut FrameReader::new(125), &input, input.len());
    assert_eq!(result, Ok(()));
    assert_eq!(
        found,
        vec![
            Incoming::Ping(Bytes::from_static(b"x")),
            Incoming::Message(WsMessage::Binary(Bytes::from(vec![1; 125]))),
        ]
    );
}

/// A control frame is no message: a message limit below a control frame's 125 bytes does not
/// refuse a client's ping or its close's reason.
#[test]
fn control_frames_are_read_whole_under_a_message_limit_below_125_bytes() {
    let mut input = client_frame(0x89, &[7; 125], MASK);
    input.extend(client_frame(
        0x88,
        &[[0x03, 0xE8].as_slice(), &[b'r'; 100]].concat(),
        MASK,
    ));
    let (found, result) = read_in_steps(&mut FrameReader::new(10), &input, input.len());
    assert_eq!(result, Ok(()));
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0], Incoming::Ping(Bytes::from(vec![7; 125])));
    assert!(matches!(found[1], Incoming::Close(..)), "{found:?}");
    // A message is still held to the limit.
    let message = client_frame(0x82, &[0; 11], MASK);
    let (_, result) = read_in_steps(&mut FrameReader::new(10), &message, message.len());
    assert_eq!(result, Err(ReadError::TooLong { size: 11, max: 10 }));
}

#[derive(Debug, Clone)]
enum OutboxOp {
    Push(WsMessage),
    Pong(Vec<u8>),
    Write(usize),
}

fn outbox_op() -> impl Strategy<Value = OutboxOp> {
    prop_oneof![
        message_strategy().prop_map(OutboxOp::Push),
        prop::collection::vec(any::<u8>(), 0..20).prop_map(OutboxOp::Pong),
        (1usize..5000).prop_map(OutboxOp::Write),
    ]
}

proptest! {
    /// Pushes into a partly written outbox, and writes of any size, give the frames in order, and
    /// what was written is let go of: the outbox never holds much more than what is unwritten.
    #[test]
    fn a_partly_written_outbox_keeps_order_and_lets_go_of_what_left(
        ops in prop::collection::vec(outbox_op(), 1..60),
    ) {
        let mut outbox = Outbox::new();
        let mut expected = Vec::new();
        let mut out = Vec::new();
        let mut deferred: Option<Vec<u8>> = None;
        for op in ops {
            match op {
                OutboxOp::Push(message) => {
                    let (first, bytes): (u8, &[u8]) = match &message {
                        WsMessage::Text(text) => (0x81, text.as_bytes()),
                        WsMessage::Binary(bytes) => (0x82, bytes),
                    };
                    expected.extend(server_frame(first, bytes));
                    outbox.push(message);
                }
                OutboxOp::Pong(payload) => {
                    if outbox.push_pong(&payload) {
                        expected.extend(server_frame(0x8A, &payload));
                    } else if outbox.has_deferred_pong() {
                        deferred = Some(payload);
                    }
                }
                OutboxOp::Write(limit) => {
                    let mut slices = [IoSlice::new(&[]); 4];
                    let filled = outbox.io_slices(&mut slices);
                    let mut taken = 0;
                    for slice in &slices[..filled] {
                        let take = (limit - taken).min(slice.len());
                        out.extend_from_slice(&slice[..take]);
                        taken += take;
                    }
                    outbox.advance(taken);
                    // A pong that waited for the backlog is queued by the write that brings
                    // it down.
                    if !outbox.has_deferred_pong()
                        && let Some(payload) = deferred.take()
                    {
                        expected.extend(server_frame(0x8A, &payload));
                    }
                }
            }
            // What is held: the unwritten bytes, written copied bytes up to as many again, and
            // headers of long payloads.
            let held = outbox.copied.len() + outbox.shared.iter().map(|(_, b)| b.len()).sum::<usize>();
            prop_assert!(held <= 2 * outbox.unwritten() + 4096, "held {held}, unwritten {}", outbox.unwritten());
        }
        out.extend(drain(&mut outbox, 1000));
        if let Some(payload) = deferred.filter(|_| !outbox.has_deferred_pong()) {
            expected.extend(server_frame(0x8A, &payload));
        }
        prop_assert!(!outbox.has_deferred_pong(), "a written outbox has no pong waiting");
        prop_assert_eq!(out, expected);
    }
}

/// What the server owes the client is queued by `read_and_answer`: a pong per ping, the close
/// answering a close, the close naming a violation.
#[test]
fn the_answers_to_pings_closes_and_violations_are_queued() {
    let drain_all = |outbox: &mut Outbox| drain(outbox, usize::MAX / 2);
    let mut reader = FrameReader::new(1024);
    let mut outbox = Outbox::new();
    let mut messages = Vec::new();
    let input = [
        client_frame(0x89, b"hi", MASK),
        client_frame(0x81, b"4", MASK),
    ]
    .concat();
    let outcome = read_and_answer(&mut reader, &mut outbox, &input, &mut |m| messages.push(m));
    assert_eq!(outcome, ReadOutcome::Open);
    assert_eq!(messages, vec![text("4")]);
    assert_eq!(drain_all(&mut outbox), server_frame(0x8A, b"hi"));

    // The close is answered with the client's own code (as `ws` does), its reason not repeated;
    // a close without a code, with none.
    let close = client_frame(0x88, b"\x0f\xa0going", MASK);
    let outcome = read_and_answer(&mut reader, &mut outbox, &close, &mut |_| panic!());
    assert_eq!(outcome, ReadOutcome::Closed);
    assert_eq!(drain_all(&mut outbox), server_frame(0x88, &[0x0F, 0xA0]));
    let mut reader = FrameReader::new(1024);
    let mut outbox = Outbox::new();
    let close = client_frame(0x88, &[], MASK);
    let outcome = read_and_answer(&mut reader, &mut outbox, &close, &mut |_| panic!());
    assert_eq!(outcome, ReadOutcome::Closed);
    assert_eq!(drain_all(&mut outbox), server_frame(0x88, &[]));

    let mut reader = FrameReader::new(1024);
    let mut outbox = Outbox::new();
    let bad = client_frame(0x81, b"\xff", MASK);
    let outcome = read_and_answer(&mut reader, &mut outbox, &bad, &mut |_| panic!());
    assert_eq!(outcome, ReadOutcome::Failed(ReadError::InvalidUtf8));
    assert_eq!(drain_all(&mut outbox), server_frame(0x88, &[0x03, 0xEF]));
}

/// After the driver's own close, the client's messages are dropped and reading stops at its
/// close frame (or at a violation), however the bytes are cut.
#[test]
fn reading_after_the_servers_close_stops_at_the_clients_close() {
    let mut input = Vec::new();
    for _ in 0..3 {
        input.extend(client_frame(0x81, b"42[\"noise\"]", MASK));
    }
    let close_at = input.len();
    input.extend(client_frame(0x88, &[0x03, 0xE8], MASK));
    for cut in 1..input.len() {
        let mut reader = FrameReader::new(1024);
        let first = read_after_close(&mut reader, &input[..cut]);
        let second = read_after_close(&mut reader, &input[cut..]);
        assert!(!first, "cut at {cut}: stopped before the close");
        assert!(second, "cut at {cut}: the close was not seen");
    }
    let mut reader = FrameReader::new(1024);
    assert!(!read_after_close(&mut reader, &input[..close_at]));
    // Opcode 3 is reserved: a violation ends the reading too.
    let mut reader = FrameReader::new(1024);
    assert!(read_after_close(
        &mut reader,
        &client_frame(0x83, b"", MASK)
    ));
}
