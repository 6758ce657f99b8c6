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
}

impl ClientManager {
    /// A manager on the broker at `url`: `redis://[[user]:password@]host[:port][/db]`,
    /// `unix:///path/to/redis.sock[?db=N]` (Redis or Valkey pub/sub) or
    /// `amqp://user:password@host[:port][/vhost]` (RabbitMQ). A runtime that cannot reach a kind
    /// of broker says so on every publish and in its log.
    pub fn from_url(url: &str) -> Result<ClientManager, UrlError> {
        Ok(ClientManager {
            broker: BrokerUrl::parse(url)?,
            channel: DEFAULT_CHANNEL.to_owned(),
        })
    }

    /// A manager that meets python-socketio's `KombuManager(url)`. On `redis://` and `rediss://`
    /// it speaks kombu's Redis transport with kombu's default transport options (kombu's
    /// envelope, on the topic `/{db}.{channel}`), which is not what `RedisManager` processes
    /// read: every process on a channel must use the same class. (`unix://` works between sockio
    /// processes; kombu's own name for a socket is `redis+socket://`, which is not taken.) On
    /// `amqp://` kombu speaks AMQP itself, so this is [`ClientManager::from_url`].
    pub fn kombu(url: &str) -> Result<ClientManager, UrlError> {
        let mut broker = BrokerUrl::parse(url)?;
        if let BrokerUrl::Redis(config) = &mut broker {
            config.framing = RedisFraming::Kombu;
        }
        Ok(ClientManager {
            broker,
            channel: DEFAULT_CHANNEL.to_owned(),
        })
    }

    /// The channel (Redis) or exchange (AMQP) name; `socketio` by default, as python-socketio.
    #[must_use]
    pub fn channel(mut self, channel: &str) -> Self {
        self.channel = channel.to_owned();
        self
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

/// A host id from 16 random bytes: 32 hex digits, as python-socketio's `uuid4().hex`. (The
/// runtime supplies the randomness; the core has none.)
pub fn host_id(random: [u8; 16]) -> String {
    random.iter().map(|b| format!("{b:02x}")).collect()
}
