//! The Socket.IO layer (protocol v4 over Engine.IO 3, v5 over Engine.IO 4): packets, binary
//! reassembly, namespaces, acknowledgements, rooms and broadcast encoding.

mod awaited_acks;
pub mod config;
pub mod connection;
pub mod decoder;
pub mod endpoint;
pub(crate) mod json;
pub mod packet;
pub mod rooms;

pub use config::{NamespaceFilter, SocketConfig};
pub use connection::{
    CommandError, Connection, DisconnectReason, EncodedFrames, Handshake, KeepInHandshake,
    RemoteAddr, SocketEvent, SocketVersion,
};
pub use endpoint::{Endpoint, Routing};
pub use packet::{Packet, PacketKind};
pub use rooms::{BroadcastTarget, RoomIndex, RoomName};
