//! Scaling out through a message broker, sans-IO: python-socketio's message format
//! ([`message`]), broker URLs ([`url`]), the Redis pub/sub protocol ([`resp`]), kombu's Redis
//! transport ([`kombu`]) and an AMQP 0-9-1 client subset for RabbitMQ ([`amqp`]); and the
//! broker links' policy every runtime follows: timeouts and connection names (in [`resp`] and
//! [`amqp`]), publish batches ([`batch`]), reconnection ([`reconnect`]) and when a quiet Redis
//! subscription is dead ([`quiet_watch`]).
//!
//! Runtimes own the broker sockets and reconnection; everything that decides what goes on the
//! wire and what a received message means lives here, so every runtime speaks the same dialect
//! and Python and Rust servers and emitters can share one channel.

pub mod amqp;
pub mod batch;
pub mod callbacks;
pub mod failure;
pub mod kombu;
pub mod manager;
pub mod message;
pub mod quiet_watch;
pub mod reconnect;
pub mod remote;
pub mod resp;
pub mod url;

pub use callbacks::{Expect, Expired, PendingCallbacks, TooManyPending};
pub use manager::ClientManager;
pub use message::{DecodeError, Message, RemoteAck};
pub use quiet_watch::{QuietCheck, QuietWatch};
pub use reconnect::Reconnect;
pub use remote::{Ignored, Remote, ReplyAddress, RoomChange, triage};
pub use url::{
    AmqpConfig, BrokerUrl, ClientIdentity, RedisAddress, RedisConfig, RedisFraming, TlsOptions,
    UrlError,
};

/// The channel python-socketio's managers use by default.
pub const DEFAULT_CHANNEL: &str = "socketio";
