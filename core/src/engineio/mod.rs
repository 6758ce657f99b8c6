//! The Engine.IO layer: packets, polling payloads, sessions and the endpoint that creates them.
//!
//! Usable on its own as a raw Engine.IO server (default path `/engine.io/`), the way python-engineio
//! and the Node `engine.io` package are; the Socket.IO layer in [`crate::socketio`] sits on top.

pub mod config;
pub mod delivery;
pub mod endpoint;
pub mod frame;
pub mod packet;
pub mod payload;
pub mod session;
pub mod sid;

pub use config::{CLIENT_TIMER_MAX, EngineConfig, Transport};
pub use delivery::{EngineCallbacks, OrderedDelivery, SessionNotice, deliver_in_order};
pub use endpoint::{Endpoint, Routing, is_valid_websocket_handshake, is_websocket_upgrade};
pub use frame::Frame;
pub use packet::{DecodeError, Packet, PacketData, PacketType, WsMessage};
pub use session::{
    CloseReason, EngineEvent, Output, POLL_ANSWER_BYTES, RequestId, SendError, Session,
    WS_PULL_BYTES, WsAction, WsBatch, WsPulled,
};
pub use sid::{SequentialSids, Sid, SidGenerator, SidHasher, SidMap};

/// The instant `wait` after `now`, or `None` (no deadline) when the clock cannot represent it.
///
/// Every timer of the core (heartbeat, upgrade, close wait, connect, attachments, acks) arms its
/// deadline through this: a setting too large for the clock, such as `Duration::MAX`, means
/// "never" rather than a panic. (The heartbeat's settings never get there: an endpoint cuts them
/// to what clients can time, [`EngineConfig::normalize`].)
pub(crate) fn deadline_after(
    now: std::time::Instant,
    wait: std::time::Duration,
) -> Option<std::time::Instant> {
    now.checked_add(wait)
}

/// The earlier of two optional deadlines; `None` is "no deadline", later than any. The
/// `poll_timeout`s of the session and the connection fold their timers with it (plain
/// comparisons: an iterator chain cost 130 instructions per drive, bench/ANALYSIS.md).
#[inline]
pub(crate) fn earlier(
    a: Option<std::time::Instant>,
    b: Option<std::time::Instant>,
) -> Option<std::time::Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// A deadline as if `paused_for` had not passed (reading was paused: what the client sent may
/// be waiting unread), but no later than `fresh`, a whole wait from now. `None` stays "never".
pub(crate) fn unfrozen(
    deadline: Option<std::time::Instant>,
    paused_for: std::time::Duration,
    fresh: Option<std::time::Instant>,
) -> Option<std::time::Instant> {
    match deadline {
        Some(deadline) => earlier(deadline.checked_add(paused_for), fresh),
        None => None,
    }
}

/// The Engine.IO protocol revision a connection speaks, chosen by the `EIO` query parameter.
///
/// The reference server reads `EIO === "4" ? 4 : 3`, so anything else (missing, garbage) means v3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolVersion {
    /// Engine.IO 3 (socket.io-client 2.x, python-socketio 4.x). Clients ping, servers pong.
    V3,
    /// Engine.IO 4 (socket.io-client 3.x and 4.x, python-socketio 5.x). Servers ping, clients pong.
    V4,
}

impl ProtocolVersion {
    /// Parses the `EIO` query value the way the reference server does.
    pub fn from_query(eio: Option<&str>) -> Self {
        match eio {
            Some("4") => ProtocolVersion::V4,
            _ => ProtocolVersion::V3,
        }
    }
}
