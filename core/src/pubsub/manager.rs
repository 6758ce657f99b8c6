//! [`ClientManager`]: which broker and channel a server (or an emitter) shares its clients
//! through — the value every runtime's `client_manager` option takes.

use super::DEFAULT_CHANNEL;
use super::url::{BrokerUrl, RedisFraming, UrlError};

/// A message-queue client manager's settings: python-socketio's `RedisManager(url,
/// channel=...)` / `KombuManager(url, channel=...)`. The in-memory manager is what a server uses
/// without one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientManager {
    broker: BrokerUrl,
    channel: String,
    max_message: Option<usize>,
}

/// Refuses a broker this build has no client for. The check is here, where the application
/// hands over its URL, so a missing feature is an error at start-up and not a server that
/// silently keeps its emits to itself.
fn compiled_broker(broker: BrokerUrl) -> Result<BrokerUrl, UrlError> {
    let compiled = match broker {
        BrokerUrl::Redis(_) => cfg!(feature = "redis"),
        BrokerUrl::Amqp(_) => cfg!(feature = "amqp"),
    };
    if compiled {
        Ok(broker)
    } else {
        Err(UrlError::BrokerNotCompiled(broker.feature()))
    }
}

/// The largest message published on Redis by default. Redis cuts every pub/sub subscriber
/// whose output buffer passes 32 MB at once (`client-output-buffer-limit pubsub 32mb 8mb 60`):
/// one bigger message would disconnect every server on the channel, while its publisher heard
/// it was delivered. Half that leaves room for what subscribers have not read yet.
pub const REDIS_MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// The largest message published on RabbitMQ by default: RabbitMQ 4's own default
/// `max_message_size` (16 MiB since 4.0; 128 MiB before). The broker answers a larger publish by
/// closing the channel (406 PRECONDITION_FAILED), which fails the whole batch in flight with it,
/// so such a message is refused here, with its size, before it is sent.
pub const AMQP_MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// The longest name AMQP 0-9-1 carries (a `shortstr`): exchanges, queues, vhosts.
const AMQP_MAX_NAME: usize = 255;

impl ClientManager {
    /// A manager on the broker at `url`: `redis://[[user]:password@]host[:port][/db]`,
    /// `unix:///path/to/redis.sock[?db=N]` (Redis or Valkey pub/sub) or
    /// `amqp://user:password@host[:port][/vhost]` (RabbitMQ). A runtime that cannot reach a kind
    /// of broker says so on every publish and in its log.
    ///
    /// # Errors
    /// A URL that is not a broker URL sockio reads, and a Redis or AMQP URL when this build has
    /// no client for that broker ([`UrlError::BrokerNotCompiled`]: the root crate's `redis` and
    /// `amqp` features compile them).
    pub fn from_url(url: &str) -> Result<ClientManager, UrlError> {
        Ok(ClientManager {
            broker: compiled_broker(BrokerUrl::parse(url)?)?,
            channel: DEFAULT_CHANNEL.to_owned(),
            max_message: None,
        })
    }

    /// A manager that meets python-socketio's `KombuManager(url)`. On `redis://` and `rediss://`
    /// it speaks kombu's Redis transport with kombu's default transport options (kombu's
    /// envelope, on the topic `/{db}.{channel}`), which is not what `RedisManager` processes
    /// read: every process on a channel must use the same class. (`unix://` works between sockio
    /// processes; kombu's own name for a socket is `redis+socket://`, which is not taken.) On
    /// `amqp://` kombu speaks AMQP itself, so this is [`ClientManager::from_url`].
    ///
    /// # Errors
    /// As [`ClientManager::from_url`].
    pub fn kombu(url: &str) -> Result<ClientManager, UrlError> {
        let mut broker = compiled_broker(BrokerUrl::parse(url)?)?;
        if let BrokerUrl::Redis(config) = &mut broker {
            config.framing = RedisFraming::Kombu;
        }
        Ok(ClientManager {
            broker,
            channel: DEFAULT_CHANNEL.to_owned(),
            max_message: None,
        })
    }

    /// The channel (Redis) or exchange (AMQP) name; `socketio` by default, as python-socketio.
    /// Panics on RabbitMQ when the name is longer than the 255 bytes AMQP gives an exchange
    /// name: every declare would fail, so the server would start and never hear the others.
    #[must_use]
    #[track_caller]
    pub fn channel(mut self, channel: &str) -> Self {
        assert!(
            !matches!(self.broker, BrokerUrl::Amqp(_)) || channel.len() <= AMQP_MAX_NAME,
            "channel of {} bytes: an AMQP exchange name holds at most {AMQP_MAX_NAME}",
            channel.len()
        );
        self.channel = channel.to_owned();
        self
    }

    /// The largest message (bytes of python-socketio's JSON message) this manager publishes; an
    /// emit of a larger one fails with a publish error (its local clients still get it). By
    /// default [`REDIS_MAX_MESSAGE`] on Redis (three quarters of it with kombu's framing, whose
    /// envelope carries the message in base64, a third larger), and [`AMQP_MAX_MESSAGE`] on
    /// RabbitMQ. Raise it only with the broker's own limits raised (on Redis,
    /// `client-output-buffer-limit pubsub`; on RabbitMQ, `max_message_size`), and not past
    /// 64 MiB (with kombu's framing, 48 MiB less the envelope's own few hundred bytes and the
    /// channel's name: the envelope carries the message in base64, a third larger):
    /// sockio's subscribers drop larger messages, with a log line, on both brokers
    /// ([`amqp::MAX_MESSAGE`](super::amqp::MAX_MESSAGE),
    /// [`resp::MAX_RECEIVED`](super::resp::MAX_RECEIVED)).
    #[must_use]
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message = Some(bytes);
        self
    }

    /// The largest message this manager publishes (see
    /// [`max_message_size`](Self::max_message_size)).
    pub fn message_limit(&self) -> usize {
        self.max_message.unwrap_or(match &self.broker {
            BrokerUrl::Amqp(_) => AMQP_MAX_MESSAGE,
            BrokerUrl::Redis(config) if config.framing == RedisFraming::Kombu => {
                REDIS_MAX_MESSAGE / 4 * 3
            }
            BrokerUrl::Redis(_) => REDIS_MAX_MESSAGE,
        })
    }

    /// The broker.
    pub fn broker(&self) -> &BrokerUrl {
        &self.broker
    }

    /// The channel or exchange name.
    pub fn channel_name(&self) -> &str {
        &self.channel
    }
}

/// Refuses a message over a manager's [`message_limit`](ClientManager::message_limit), with the
/// reason.
pub fn check_message_size(message: &[u8], limit: usize) -> Result<(), crate::api::PublishError> {
    if message.len() <= limit {
        return Ok(());
    }
    Err(crate::api::PublishError(format!(
        "a message of {} bytes is over the broker's limit of {limit} bytes (ClientManager::max_message_size)",
        message.len()
    )))
}

/// A host id from 16 random bytes: 32 hex digits, as python-socketio's `uuid4().hex`. (The
/// runtime supplies the randomness; the core has none.)
pub fn host_id(random: [u8; 16]) -> String {
    random.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each broker's URL is accepted exactly when its feature is on; `cargo test -p sockio-core
    /// --no-default-features` runs the refusing side (scripts/test.sh).
    #[test]
    fn a_broker_url_needs_its_feature() {
        let cases = [
            ("redis://127.0.0.1:6379", "redis", cfg!(feature = "redis")),
            ("unix:///run/redis.sock", "redis", cfg!(feature = "redis")),
            (
                "amqp://guest:guest@127.0.0.1:5672//",
                "amqp",
                cfg!(feature = "amqp"),
            ),
        ];
        for (url, feature, compiled) in cases {
            let expected = if compiled {
                Ok(())
            } else {
                Err(UrlError::BrokerNotCompiled(feature))
            };
            assert_eq!(ClientManager::from_url(url).map(drop), expected, "{url}");
            assert_eq!(ClientManager::kombu(url).map(drop), expected, "{url}");
        }
        let message = UrlError::BrokerNotCompiled("redis").to_string();
        assert!(message.contains("`redis` feature"), "{message}");
    }

    #[cfg(all(feature = "redis", feature = "amqp"))]
    #[test]
    fn messages_over_the_brokers_limit_are_refused() {
        let redis = ClientManager::from_url("redis://127.0.0.1:6379").expect("url");
        assert_eq!(redis.message_limit(), REDIS_MAX_MESSAGE);
        let amqp = ClientManager::from_url("amqp://guest:guest@127.0.0.1:5672//").expect("url");
        // RabbitMQ 4's default `max_message_size`: a larger publish would close the channel.
        assert_eq!(amqp.message_limit(), 16 << 20);
        assert!(amqp.message_limit() as u64 <= super::super::amqp::MAX_MESSAGE);
        let kombu = ClientManager::kombu("redis://127.0.0.1:6379").expect("url");
        assert_eq!(kombu.message_limit(), REDIS_MAX_MESSAGE / 4 * 3);
        let small = redis.max_message_size(4);
        assert_eq!(small.message_limit(), 4);
        assert!(check_message_size(b"1234", 4).is_ok());
        let refused = check_message_size(b"12345", 4).expect_err("over the limit");
        assert!(
            refused.0.contains("5 bytes") && refused.0.contains("limit of 4"),
            "{refused:?}"
        );
    }

    /// An exchange name AMQP cannot carry is refused where it is set: the server would start
    /// and never hear the others. Redis channels have no such limit.
    #[cfg(all(feature = "redis", feature = "amqp"))]
    #[test]
    fn an_amqp_channel_over_255_bytes_is_refused() {
        let long = "x".repeat(256);
        let redis = ClientManager::from_url("redis://127.0.0.1:6379").expect("url");
        assert_eq!(redis.channel(&long).channel_name(), long);
        let amqp = || ClientManager::from_url("amqp://127.0.0.1//").expect("url");
        assert_eq!(amqp().channel(&long[..255]).channel_name(), &long[..255]);
        let refused = std::panic::catch_unwind(|| amqp().channel(&long)).expect_err("refused");
        let message = refused
            .downcast_ref::<String>()
            .expect("a formatted message");
        assert!(message.contains("at most 255"), "{message}");
    }
}
