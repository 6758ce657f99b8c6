//! Decoding a short WebSocket text message (up to 1 KiB after its type byte) into its Engine.IO
//! packet allocates nothing: the packet's data is the message's own buffer past the type byte.
//! Slicing a second handle out of it would allocate the buffer's shared header, once per message
//! on the echo path (bench/ANALYSIS.md).
//! The only test of this binary, so that no other test allocates while it counts.

use std::alloc::System;

use bytestring::ByteString;
use sockio_core::engineio::{Packet, PacketData, PacketType, ProtocolVersion, WsMessage};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn a_text_message_is_decoded_without_allocating() {
    for version in [ProtocolVersion::V4, ProtocolVersion::V3] {
        // Built as the frame reader builds a message: from a vector of exactly its length.
        let message = ByteString::try_from(b"42[\"echo\",\"hi\"]".to_vec()).expect("UTF-8");
        let region = Region::new(ALLOCATOR);
        let packet = Packet::decode_ws(WsMessage::Text(message), version).expect("a packet");
        let allocations = region.change().allocations;
        assert_eq!(allocations, 0, "{version:?}");
        assert_eq!(packet.kind, PacketType::Message);
        assert_eq!(packet.data, PacketData::Text("2[\"echo\",\"hi\"]".into()));
    }
}
