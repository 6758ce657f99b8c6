//! Why a runtime's broker connection failed, for every runtime alike: what it met on its socket,
//! or its link's own error. Whether a failure is a timeout decides whether a batch is published
//! again ([`BatchProgress::after_failure`](super::batch::BatchProgress::after_failure)), so it
//! is classified here once rather than by each runtime.

use std::fmt;
use std::io;

/// A broker link's error, as [`ConnectionFailure`] needs it.
pub trait BrokerLinkError: std::error::Error + 'static {
    /// The broker's name, for messages ("Redis", "RabbitMQ").
    const BROKER: &'static str;

    /// True when the link gave up waiting for the broker (what was written may have arrived).
    fn is_timeout(&self) -> bool {
        false
    }
}

impl BrokerLinkError for super::resp::LinkError {
    const BROKER: &'static str = "Redis";
}

impl BrokerLinkError for super::amqp::LinkError {
    const BROKER: &'static str = "RabbitMQ";

    /// The broker went silent past its heartbeats.
    fn is_timeout(&self) -> bool {
        matches!(self, super::amqp::LinkError::HeartbeatTimeout)
    }
}

/// Why a connection to a broker failed.
#[derive(Debug)]
pub enum ConnectionFailure<E> {
    /// Connecting failed.
    Connect(io::Error),
    /// Reading or writing failed.
    Io(io::Error),
    /// The link refused what the broker sent, or the broker refused the link.
    Link(E),
    /// The broker closed the connection.
    Closed,
    /// The broker took nothing, or answered nothing, for the whole wait.
    Timeout,
    /// The connection was found dead before anything was written on it: nothing of a batch can
    /// have arrived, whatever the failure was.
    FoundDead(Box<ConnectionFailure<E>>),
}

impl<E: BrokerLinkError> ConnectionFailure<E> {
    /// A read or a write that waited its whole timeout (ours; the kernel's, ETIMEDOUT; or a
    /// blocking socket's send or receive timeout, EAGAIN: `WouldBlock` on Unix), or a link that
    /// gave up waiting: what was written may have arrived.
    pub fn is_timeout(&self) -> bool {
        match self {
            ConnectionFailure::Timeout => true,
            ConnectionFailure::Io(error) => is_timeout_kind(error.kind()),
            ConnectionFailure::Link(error) => error.is_timeout(),
            ConnectionFailure::Connect(_)
            | ConnectionFailure::Closed
            | ConnectionFailure::FoundDead(_) => false,
        }
    }
}

/// True for the error kinds of a socket operation that waited out its timeout.
pub fn is_timeout_kind(kind: io::ErrorKind) -> bool {
    matches!(kind, io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock)
}

impl<E: BrokerLinkError> fmt::Display for ConnectionFailure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let broker = E::BROKER;
        match self {
            ConnectionFailure::Connect(error) => write!(f, "cannot connect to {broker}: {error}"),
            ConnectionFailure::Io(error) => write!(f, "{broker} connection: {error}"),
            ConnectionFailure::Link(error) => fmt::Display::fmt(error, f),
            ConnectionFailure::Closed => write!(f, "{broker} closed the connection"),
            ConnectionFailure::Timeout => write!(f, "{broker} did not answer in time"),
            ConnectionFailure::FoundDead(failure) => write!(
                f,
                "the {broker} connection was found dead before publishing: {failure}"
            ),
        }
    }
}

impl<E: BrokerLinkError> std::error::Error for ConnectionFailure<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // As the runtimes' own enums had it: `Connect` and `FoundDead` print their cause
            // already; a link error stands for itself (its cause is its own source).
            ConnectionFailure::Io(error) => Some(error),
            ConnectionFailure::Link(error) => error.source(),
            ConnectionFailure::Connect(_)
            | ConnectionFailure::FoundDead(_)
            | ConnectionFailure::Closed
            | ConnectionFailure::Timeout => None,
        }
    }
}

impl<E> From<io::Error> for ConnectionFailure<E> {
    fn from(error: io::Error) -> Self {
        ConnectionFailure::Io(error)
    }
}

impl From<super::resp::LinkError> for ConnectionFailure<super::resp::LinkError> {
    fn from(error: super::resp::LinkError) -> Self {
        ConnectionFailure::Link(error)
    }
}

impl From<super::amqp::LinkError> for ConnectionFailure<super::amqp::LinkError> {
    fn from(error: super::amqp::LinkError) -> Self {
        ConnectionFailure::Link(error)
    }
}

/// A Redis connection's failure.
pub type RedisFailure = ConnectionFailure<super::resp::LinkError>;
/// A RabbitMQ connection's failure.
pub type AmqpFailure = ConnectionFailure<super::amqp::LinkError>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pubsub::{amqp, resp};

    #[test]
    fn timeouts_are_what_may_have_arrived() {
        let timed_out = [
            RedisFailure::Timeout,
            RedisFailure::Io(io::ErrorKind::TimedOut.into()),
            RedisFailure::Io(io::ErrorKind::WouldBlock.into()),
        ];
        assert!(timed_out.iter().all(RedisFailure::is_timeout));
        let not = [
            RedisFailure::Closed,
            RedisFailure::Connect(io::ErrorKind::TimedOut.into()),
            RedisFailure::Io(io::ErrorKind::ConnectionReset.into()),
            RedisFailure::Link(resp::LinkError::Protocol("?")),
            RedisFailure::FoundDead(Box::new(RedisFailure::Timeout)),
        ];
        assert!(!not.iter().any(RedisFailure::is_timeout));
        assert!(AmqpFailure::Link(amqp::LinkError::HeartbeatTimeout).is_timeout());
        assert!(!AmqpFailure::Link(amqp::LinkError::ConsumerCancelled).is_timeout());
    }

    #[test]
    fn messages_name_the_broker() {
        assert_eq!(
            RedisFailure::Timeout.to_string(),
            "Redis did not answer in time"
        );
        assert_eq!(
            AmqpFailure::FoundDead(Box::new(AmqpFailure::Closed)).to_string(),
            "the RabbitMQ connection was found dead before publishing: RabbitMQ closed the connection"
        );
    }
}
