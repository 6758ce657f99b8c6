//! Typed errors for API misuse and failed operations.

use sockio_core::payload::PayloadError;
use sockio_core::socketio::CommandError;

/// A server method failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error("no socket {0} in this namespace on this server")]
    UnknownSid(String),
    #[error("session data: {0}")]
    Session(String),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// An emit could not be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    #[error("event name {0:?} is reserved")]
    ReservedEvent(String),
    #[error("the data cannot be sent: {0}")]
    Payload(#[from] PayloadError),
}

/// A call (or an emit callback) did not get its answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    #[error("the client did not answer in time")]
    Timeout,
    #[error("the client disconnected before answering")]
    Disconnected,
    #[error("no recipient: set one with .to(sid)")]
    NoRecipient,
    #[error("no socket {0} in this namespace on this server")]
    UnknownSid(String),
    #[error("event name {0:?} is reserved")]
    ReservedEvent(String),
    #[error("payload: {0}")]
    Payload(#[from] PayloadError),
    #[error(transparent)]
    Command(#[from] CommandError),
}
