//! The `websocket_frames` target: a client's bytes through the core's WebSocket reader.

use sockio_core::engineio::WsMessage;
use sockio_core::websocket::{FrameReader, Incoming, ReadError};

/// The largest message the reader is set to take, picked by the first input byte: small limits
/// make "too long" reachable, the default one covers ordinary traffic.
const LIMITS: [usize; 4] = [0, 125, 1024, 1_000_000];

/// Input: one byte picks the limit (low two bits), one byte seeds the cut points, the rest is
/// what a client sends. The bytes are read whole and cut into pieces; besides "never panics" it
/// checks that how the bytes are cut changes nothing (same messages, same error), that no message
/// exceeds the limit, that the reader never holds more than one message's bytes plus a control
/// frame and a header, and that nothing comes after a close or an error.
pub fn websocket_frames(data: &[u8]) {
    let [selector, seed, stream @ ..] = data else {
        return;
    };
    let max = LIMITS[usize::from(selector & 3)];
    let whole = read(max, stream, &mut std::iter::once(stream.len()));
    let mut state = u32::from(*seed) | 1;
    let mut cuts = std::iter::from_fn(|| {
        // xorshift: cut points the seed byte chooses, 1 to 64 bytes apart.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        Some((state % 64) as usize + 1)
    });
    let pieces = read(max, stream, &mut cuts);
    assert_eq!(whole, pieces, "cutting the input changed what was read");
}

/// What a reader with limit `max` finds in `stream` fed in pieces of the lengths `cuts` gives.
fn read(
    max: usize,
    mut stream: &[u8],
    cuts: &mut impl Iterator<Item = usize>,
) -> (Vec<Incoming>, Option<ReadError>) {
    let mut reader = FrameReader::new(max);
    let mut found = Vec::new();
    let mut error = None;
    while !stream.is_empty() {
        let take = cuts.next().unwrap_or(stream.len()).min(stream.len());
        let (piece, rest) = stream.split_at(take);
        stream = rest;
        let ended_before = reader.is_ended();
        let before = found.len();
        let result = reader.feed(piece, &mut |incoming| found.push(incoming));
        if ended_before {
            assert!(
                result.is_ok() && found.len() == before,
                "read after the end"
            );
        }
        if let Err(e) = result {
            assert!(reader.is_ended(), "an error must end the reader");
            error = Some(e);
        }
        // A message's bytes, a control frame between its fragments, and a header cut off.
        assert!(
            reader.buffered() <= max + 125 + 13,
            "reader holds {} bytes with a {max}-byte limit",
            reader.buffered()
        );
    }
    for incoming in &found {
        if let Incoming::Message(message) = incoming {
            assert!(message.len() <= max, "a message over the limit");
            if let WsMessage::Text(text) = message {
                assert!(std::str::from_utf8(text.as_bytes()).is_ok());
            }
        }
    }
    if let Some(position) = found.iter().position(|i| matches!(i, Incoming::Close(_))) {
        assert_eq!(position + 1, found.len(), "something after a close");
    }
    (found, error)
}
