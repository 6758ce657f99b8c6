//! Engine.IO server options, named as python-engineio names them, with the current official servers'
//! defaults (ping 25 s / 20 s, 1 MB payloads, no cookie, same-origin CORS).

use std::sync::Arc;
use std::time::Duration;

use crate::http::{CookieConfig, CorsConfig, Request};

/// A transport a client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// HTTP long-polling (also JSONP for v3 clients).
    Polling,
    /// WebSocket.
    WebSocket,
}

impl Transport {
    /// The name used in the `transport` query parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Polling => "polling",
            Transport::WebSocket => "websocket",
        }
    }

    /// Parses the `transport` query parameter.
    pub fn from_query(value: &str) -> Option<Self> {
        match value {
            "polling" => Some(Transport::Polling),
            "websocket" => Some(Transport::WebSocket),
            _ => None,
        }
    }
}

/// The longest `ping_interval + ping_timeout` clients can time: a JavaScript timer takes at most
/// 2^31 − 1 ms (about 24.8 days). [`EngineConfig::normalize`] keeps the settings within it.
pub const CLIENT_TIMER_MAX: Duration = Duration::from_millis(CLIENT_TIMER_MAX_MS);

const CLIENT_TIMER_MAX_MS: u64 = (1 << 31) - 1;

/// A hook that can refuse a handshake (403, code 4 "Forbidden"); the error string becomes the message.
pub type AllowRequest = Arc<dyn Fn(&Request) -> Result<(), String> + Send + Sync>;

/// Engine.IO server options.
#[derive(Clone)]
#[non_exhaustive]
pub struct EngineConfig {
    /// How often the server pings a v4 client (and how often a v3 client is told to ping).
    /// With `ping_timeout`, cut to what clients can time ([`EngineConfig::normalize`]).
    pub ping_interval: Duration,
    /// How long to wait for the pong (v4) or, on top of `ping_interval`, for the next ping (v3).
    pub ping_timeout: Duration,
    /// How long an unfinished upgrade probe may take before it is cancelled.
    pub upgrade_timeout: Duration,
    /// How long a server-side close waits for the client's next poll to deliver the close packet
    /// (counted from the close, and again from each poll that takes part of a backlog queued
    /// before it; the close goes alone in the poll after them).
    pub close_timeout: Duration,
    /// How long a client may take to send an HTTP request head, and the longest wait for more
    /// of a request body (runtimes enforce it: a connection that sends its head slowly, or stops
    /// half-way through its head or its body, is closed). Zero means no limit.
    pub http_header_timeout: Duration,
    /// Largest POST body and largest WebSocket message accepted, in bytes; advertised as `maxPayload`.
    pub max_http_buffer_size: usize,
    /// Whether polling clients may upgrade to WebSocket.
    pub allow_upgrades: bool,
    /// Whether polling responses are gzip/deflate compressed when the client accepts it.
    pub http_compression: bool,
    /// Smallest polling response body that gets compressed.
    pub compression_threshold: usize,
    /// The sticky-session cookie sent with the handshake, if any.
    pub cookie: Option<CookieConfig>,
    /// Which origins may connect, and whether credentials are allowed.
    pub cors: CorsConfig,
    /// The transports clients may use.
    pub transports: Vec<Transport>,
    /// Whether Engine.IO 3 clients (socket.io-client 2.x) are accepted.
    pub allow_eio3: bool,
    /// The URL path the server answers under, with a trailing slash (an endpoint adds the
    /// slashes missing). A path holding `?` or `#` matches no request: the builders' `path`
    /// refuses it.
    pub path: String,
    /// Most packets a session buffers for a client that does not read; past it the session is closed
    /// with [`CloseReason::OutboundQueueFull`](super::session::CloseReason::OutboundQueueFull).
    pub max_buffered_packets: usize,
    /// Most bytes a session buffers for a client that does not read; same policy as above.
    pub max_buffered_bytes: usize,
    /// Optional gate run on every handshake.
    pub allow_request: Option<AllowRequest>,
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout", &self.ping_timeout)
            .field("upgrade_timeout", &self.upgrade_timeout)
            .field("close_timeout", &self.close_timeout)
            .field("http_header_timeout", &self.http_header_timeout)
            .field("max_http_buffer_size", &self.max_http_buffer_size)
            .field("allow_upgrades", &self.allow_upgrades)
            .field("http_compression", &self.http_compression)
            .field("compression_threshold", &self.compression_threshold)
            .field("cookie", &self.cookie)
            .field("cors", &self.cors)
            .field("transports", &self.transports)
            .field("allow_eio3", &self.allow_eio3)
            .field("path", &self.path)
            .field("max_buffered_packets", &self.max_buffered_packets)
            .field("max_buffered_bytes", &self.max_buffered_bytes)
            .field("allow_request", &self.allow_request.is_some())
            .finish()
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            upgrade_timeout: Duration::from_millis(10_000),
            close_timeout: Duration::from_millis(30_000),
            http_header_timeout: Duration::from_secs(30),
            max_http_buffer_size: 1_000_000,
            allow_upgrades: true,
            http_compression: true,
            compression_threshold: 1024,
            cookie: None,
            cors: CorsConfig::default(),
            transports: vec![Transport::Polling, Transport::WebSocket],
            allow_eio3: false,
            path: "/engine.io/".to_owned(),
            max_buffered_packets: 10_000,
            max_buffered_bytes: 16 * 1024 * 1024,
            allow_request: None,
        }
    }
}

impl EngineConfig {
    /// How long one write to a client may wait without the client taking anything (a polling
    /// answer, a WebSocket frame): a ping interval and a ping timeout, the time a live client
    /// has to answer a ping. A client that takes nothing for that long is cut.
    pub fn write_timeout(&self) -> Duration {
        self.ping_interval.saturating_add(self.ping_timeout)
    }

    /// True when `transport` is in the allow-list.
    pub fn allows(&self, transport: Transport) -> bool {
        self.transports.contains(&transport)
    }

    /// Brings settings a client or the clock could not honour into range; every endpoint
    /// applies it to the configuration it is given (so do the servers to the copy they keep):
    /// - `ping_interval` and `ping_timeout` are cut so that their sum, which a client times
    ///   with one timer, is at most [`CLIENT_TIMER_MAX`]: socket.io-client's JavaScript timers
    ///   fire at once past it (the client then drops the connection at once as a ping
    ///   timeout), and python-socketio's client fails to connect with far larger values. When
    ///   the sum is past it, the interval keeps what the timeout leaves, or half of the bound
    ///   if that is more, and the timeout what the interval then leaves;
    /// - a zero `http_header_timeout` means none, as one too long for the clock does;
    /// - `path` gets a leading slash and exactly one trailing slash (python-socketio's own
    ///   spelling is `socket.io`); an empty path stays `/`, every path.
    pub fn normalize(&mut self) {
        let half = Duration::from_millis(CLIENT_TIMER_MAX_MS / 2);
        self.ping_interval = self
            .ping_interval
            .min(CLIENT_TIMER_MAX.saturating_sub(self.ping_timeout).max(half));
        self.ping_timeout = self.ping_timeout.min(CLIENT_TIMER_MAX - self.ping_interval);
        if self.http_header_timeout.is_zero() {
            self.http_header_timeout = Duration::MAX;
        }
        self.path = self.normalized_path();
    }

    /// Panics when `path` holds `?` or `#`, which no request path can, or a character a
    /// request's path only holds percent-encoded (a space, a control or non-ASCII character):
    /// requests are matched against their path as sent, so a server with such a path would
    /// answer nothing. Every constructor taking a configuration checks it.
    #[track_caller]
    pub fn assert_path_can_match(&self) {
        assert!(
            !self.path.contains(['?', '#']),
            "path {:?}: a URL path cannot hold '?' or '#' (the query is not part of it)",
            self.path
        );
        assert!(
            self.path.bytes().all(|b| b.is_ascii_graphic()),
            "path {:?}: a URL path holds spaces, control and non-ASCII characters only \
             percent-encoded; give the path as requests spell it (\"/chat%20room/\")",
            self.path
        );
    }

    /// Panics when the cookie is one [`CookieConfig::validate`] refuses: characters a
    /// `Set-Cookie` header cannot hold in its name, path or domain, or `SameSite=None` without
    /// `Secure`, which browsers drop (sticky sessions would silently not stick). Every
    /// constructor taking a configuration checks it.
    #[track_caller]
    pub fn assert_cookie_is_valid(&self) {
        if let Some(Err(error)) = self.cookie.as_ref().map(CookieConfig::validate) {
            panic!("{error}");
        }
    }

    /// Panics when `max_buffered_packets` or `max_buffered_bytes` is 0, which is not "no limit":
    /// no Socket.IO CONNECT reply fits such a queue, so every client would be disconnected as
    /// it connects. The Socket.IO builders check it (`max_buffered`, `socket_config`).
    #[track_caller]
    pub fn assert_queue_can_hold_a_reply(&self) {
        assert!(
            self.max_buffered_packets > 0 && self.max_buffered_bytes > 0,
            "max_buffered({}, {}): a queue of 0 holds no CONNECT reply, so no client could \
             connect (usize::MAX lifts a limit)",
            self.max_buffered_packets,
            self.max_buffered_bytes
        );
    }

    /// The path with one leading and exactly one trailing slash, as requests are matched
    /// against it (an empty path is `/`, every path).
    pub fn normalized_path(&self) -> String {
        let trimmed = self.path.trim_matches('/');
        if trimmed.is_empty() {
            "/".to_owned()
        } else {
            format!("/{trimmed}/")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(edit: impl FnOnce(&mut EngineConfig)) -> EngineConfig {
        let mut config = EngineConfig::default();
        edit(&mut config);
        config.normalize();
        config
    }

    #[test]
    fn paths_get_one_leading_and_one_trailing_slash() {
        for (given, kept) in [
            ("socket.io", "/socket.io/"),
            ("/socket.io", "/socket.io/"),
            ("socket.io/", "/socket.io/"),
            ("//a/b//", "/a/b/"),
            ("/engine.io/", "/engine.io/"),
            ("", "/"),
            ("/", "/"),
        ] {
            assert_eq!(
                normalized(|c| c.path = given.to_owned()).path,
                kept,
                "{given:?}"
            );
        }
    }

    #[test]
    fn a_zero_header_timeout_is_none() {
        assert_eq!(
            normalized(|c| c.http_header_timeout = Duration::ZERO).http_header_timeout,
            Duration::MAX
        );
        let kept = Duration::from_millis(1);
        assert_eq!(
            normalized(|c| c.http_header_timeout = kept).http_header_timeout,
            kept
        );
    }

    #[test]
    fn ping_settings_fit_one_client_timer_together() {
        let day = Duration::from_secs(24 * 3600);
        for (interval, timeout) in [
            (Duration::MAX, Duration::MAX),
            (Duration::MAX, Duration::ZERO),
            (Duration::ZERO, Duration::MAX),
            (30 * day, day),
            (day, 30 * day),
            (20 * day, Duration::from_secs(20)),
        ] {
            let config = normalized(|c| {
                c.ping_interval = interval;
                c.ping_timeout = timeout;
            });
            assert!(
                config.ping_interval + config.ping_timeout <= CLIENT_TIMER_MAX,
                "{interval:?} {timeout:?} -> {config:?}"
            );
            assert!(config.ping_interval >= interval.min(12 * day), "{config:?}");
        }
        // Kept whole while the sum fits, however the two share it.
        for (interval, timeout) in [(day, 20 * day), (20 * day, Duration::from_secs(20))] {
            let config = normalized(|c| {
                c.ping_interval = interval;
                c.ping_timeout = timeout;
            });
            assert_eq!(
                (config.ping_interval, config.ping_timeout),
                (interval, timeout)
            );
        }
    }
}
