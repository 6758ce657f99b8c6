//! Broker URLs, as python-socketio's managers take them: `redis://[[user]:password@]host[:port][/db]`,
//! `rediss://...` (Redis over TLS), `unix://[[user]:password@]/path/to/redis.sock[?db=N]` (a Redis
//! URL may give `db`, `username` and `password` in its query instead, as redis-py reads them),
//! `amqp://user:password@host[:port][/vhost]` (or kombu's `pyamqp://`) and `amqps://...` (AMQP
//! over TLS). A URL without a host names `localhost`, as in the Python clients (`redis://`,
//! `amqp://`).
//!
//! TLS settings ride in the query string under the names the Python clients use, so one URL works
//! for python-socketio and for sockio: redis-py's `ssl_ca_certs`, `ssl_certfile`, `ssl_keyfile`
//! and `ssl_cert_reqs` for `rediss://`, aio-pika's `cafile`, `certfile`, `keyfile` and
//! `no_verify_ssl` for `amqps://`. Only the settings are parsed here; reading the files and the
//! handshake belong to the runtimes.

/// Where a Redis server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisAddress {
    Tcp { host: String, port: u16 },
    Unix { path: String },
}

/// A parsed `redis://`, `rediss://` or `unix://` URL. Its `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    pub address: RedisAddress,
    pub db: u32,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Set for `rediss://`.
    pub tls: Option<TlsOptions>,
    /// How messages travel on the channel. Not part of the URL: the URL is the same for
    /// python-socketio's `RedisManager` and `KombuManager`, the class tells them apart (here
    /// [`ClientManager::kombu`](super::ClientManager::kombu)).
    pub framing: RedisFraming,
}

impl RedisConfig {
    /// The Redis pub/sub channel a manager's `channel` travels on: the name itself, or kombu's
    /// topic for it (with this URL's database number) under [`RedisFraming::Kombu`].
    pub fn pubsub_channel(&self, channel: &str) -> String {
        match self.framing {
            RedisFraming::PubSub => channel.to_owned(),
            RedisFraming::Kombu => super::kombu::topic(self.db, channel),
        }
    }
}

/// How messages travel on a Redis channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedisFraming {
    /// python-socketio's `RedisManager`: each message as it is, on the channel's name.
    #[default]
    PubSub,
    /// kombu's Redis transport, python-socketio's `KombuManager('redis://')`: each message in
    /// kombu's envelope, on the topic `/{db}.{channel}` ([`kombu`](super::kombu)).
    Kombu,
}

/// A parsed `amqp://` or `amqps://` URL. Its `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct AmqpConfig {
    pub host: String,
    pub port: u16,
    pub vhost: String,
    pub username: String,
    pub password: String,
    /// Set for `amqps://`.
    pub tls: Option<TlsOptions>,
}

/// Stands for a password in `Debug` output (a configuration logged with `{:?}`).
struct Hidden;

impl std::fmt::Debug for Hidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"<hidden>\"")
    }
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("address", &self.address)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| Hidden))
            .field("tls", &self.tls)
            .field("framing", &self.framing)
            .finish()
    }
}

impl std::fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("vhost", &self.vhost)
            .field("username", &self.username)
            .field("password", &Hidden)
            .field("tls", &self.tls)
            .finish()
    }
}

/// How to secure a broker connection with TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// The name the server's certificate must carry: the URL's host.
    pub server_name: String,
    /// A PEM file of the certificate authorities to trust instead of the system's.
    pub ca_file: Option<String>,
    /// A PEM certificate chain and its PEM private key, for brokers that authenticate clients.
    pub client_identity: Option<ClientIdentity>,
    /// `false` accepts any server certificate (`ssl_cert_reqs=none`, `no_verify_ssl=1`): the
    /// connection is encrypted but not authenticated.
    pub verify_server: bool,
    /// `false` (`ssl_check_hostname=false`, redis-py's): the server's certificate must still be
    /// signed by a trusted authority, but need not carry `server_name` (a broker reached by an
    /// address its certificate does not list).
    pub check_server_name: bool,
}

/// Files of a client certificate for TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub certificate_file: String,
    pub key_file: String,
}

/// A message-queue URL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrokerUrl {
    Redis(RedisConfig),
    Amqp(AmqpConfig),
}

/// Why a URL was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    #[error(
        "`{0}` is not a broker URL (expected redis://, rediss://, unix://, amqp:// or amqps://)"
    )]
    Scheme(String),
    /// The URL has no `scheme://` (the URL itself is not repeated: it may hold a password).
    #[error(
        "not a broker URL: it must start with redis://, rediss://, unix://, amqp:// or amqps://"
    )]
    NoScheme,
    #[error("`{0}` is a TLS setting: use it with {1}")]
    TlsSettingWithoutTls(String, &'static str),
    #[error("bad broker URL: {0}")]
    Malformed(&'static str),
    /// The URL names a broker whose client this build leaves out.
    #[error(
        "this build of sockio has no {0} client: enable the `{0}` feature of the sockio crate \
         (or of the runtime crate you depend on)"
    )]
    BrokerNotCompiled(&'static str),
}

/// The URL's query string as decoded `(name, value)` pairs.
type Query = Vec<(String, String)>;

impl BrokerUrl {
    /// The cargo feature that compiles this broker's client (`redis` or `amqp`).
    #[must_use]
    pub fn feature(&self) -> &'static str {
        match self {
            BrokerUrl::Redis(_) => "redis",
            BrokerUrl::Amqp(_) => "amqp",
        }
    }

    pub fn parse(url: &str) -> Result<BrokerUrl, UrlError> {
        let (scheme, rest) = url
            .split_once("://")
            // What comes before it must look like a scheme (RFC 3986's letters, digits, `+`,
            // `-`, `.`), or it may be a URL's userinfo, password and all, which the error shows.
            .filter(|(scheme, _)| {
                scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
            })
            .ok_or(UrlError::NoScheme)?;
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, parse_query(query)),
            None => (rest, Vec::new()),
        };
        // redis-py's `parse_url` unescapes each query value once more after `parse_qs` did.
        let redis_query = || -> Query {
            query
                .iter()
                .map(|(name, value)| (name.clone(), percent_decode(value)))
                .collect()
        };
        match scheme {
            "redis" | "valkey" => parse_redis(rest, &redis_query(), false).map(BrokerUrl::Redis),
            "rediss" | "valkeys" => parse_redis(rest, &redis_query(), true).map(BrokerUrl::Redis),
            "unix" => parse_redis_unix(rest, &redis_query()).map(BrokerUrl::Redis),
            // `pyamqp` is kombu's name for the same transport.
            "amqp" | "pyamqp" => parse_amqp(rest, &query, false).map(BrokerUrl::Amqp),
            "amqps" => parse_amqp(rest, &query, true).map(BrokerUrl::Amqp),
            other => Err(UrlError::Scheme(format!("{other}://"))),
        }
    }
}

/// The query's pairs, decoded as the Python clients decode theirs (`parse_qs`, yarl) and as the
/// core decodes a request's (`crate::http::Query`): `+` is a space, so that one URL means the
/// same password or file to both. A name without a value (`ssl_ca_certs=`, as a template leaves
/// an unset variable) is no setting, as `parse_qs` drops blank values (and
/// `ssl.create_default_context` takes an empty file name for none).
fn parse_query(query: &str) -> Query {
    crate::http::Query::parse(query)
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// The first value of `name`, as redis-py (`parse_qs(...)[name][0]`) and yarl (aio-pika) read
/// a repeated one.
fn query_value<'q>(query: &'q Query, name: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The query names that set TLS up, per scheme family: (CA file, certificate, key).
struct TlsNames {
    ca_file: &'static str,
    certificate: &'static str,
    key: &'static str,
    /// The scheme these names need, for the error when they come without it.
    scheme: &'static str,
}

const REDIS_TLS: TlsNames = TlsNames {
    ca_file: "ssl_ca_certs",
    certificate: "ssl_certfile",
    key: "ssl_keyfile",
    scheme: "rediss://",
};

const AMQP_TLS: TlsNames = TlsNames {
    ca_file: "cafile",
    certificate: "certfile",
    key: "keyfile",
    scheme: "amqps://",
};

/// Reads the TLS settings of the query: `None` without TLS, where any TLS setting is an error
/// rather than a silently plain-text connection.
fn tls_options(
    query: &Query,
    names: &TlsNames,
    host: &str,
    tls: bool,
    verify_server: Option<bool>,
    check_server_name: Option<bool>,
) -> Result<Option<TlsOptions>, UrlError> {
    let ca_file = query_value(query, names.ca_file);
    let certificate = query_value(query, names.certificate);
    let key = query_value(query, names.key);
    if !tls {
        let setting = [
            // kombu's `?ssl=1` turns TLS on for `amqp://` (port 5671): read as plain text, the
            // login and every message would cross in the clear to a broker that also listens
            // without TLS, so it is refused for the scheme that says TLS.
            ("ssl", query_value(query, "ssl").is_some()),
            (names.ca_file, ca_file.is_some()),
            (names.certificate, certificate.is_some()),
            (names.key, key.is_some()),
            ("verification", verify_server.is_some()),
            ("ssl_check_hostname", check_server_name.is_some()),
        ]
        .into_iter()
        .find(|(_, present)| *present);
        return match setting {
            Some((name, _)) => Err(UrlError::TlsSettingWithoutTls(
                name.to_owned(),
                names.scheme,
            )),
            None => Ok(None),
        };
    }
    let client_identity = match (certificate, key) {
        (Some(certificate), Some(key)) => Some(ClientIdentity {
            certificate_file: certificate.to_owned(),
            key_file: key.to_owned(),
        }),
        // As Python's `load_cert_chain(certfile)`: the key is in the certificate's file.
        (Some(both), None) => Some(ClientIdentity {
            certificate_file: both.to_owned(),
            key_file: both.to_owned(),
        }),
        (None, None) => None,
        (None, Some(_)) => {
            return Err(UrlError::Malformed(
                "a client key file needs its certificate file",
            ));
        }
    };
    Ok(Some(TlsOptions {
        server_name: host.to_owned(),
        ca_file: ca_file.map(str::to_owned),
        client_identity,
        verify_server: verify_server.unwrap_or(true),
        check_server_name: check_server_name.unwrap_or(true),
    }))
}

/// Splits `user:password@rest` into credentials and the rest.
fn credentials(
    authority_and_path: &str,
) -> Result<(Option<String>, Option<String>, &str), UrlError> {
    // The credentials end at the last '@' before the path.
    let path_start = authority_and_path
        .find('/')
        .unwrap_or(authority_and_path.len());
    let Some(at) = authority_and_path[..path_start].rfind('@') else {
        return Ok((None, None, authority_and_path));
    };
    let userinfo = &authority_and_path[..at];
    let rest = &authority_and_path[at + 1..];
    let (user, password) = match userinfo.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (userinfo, None),
    };
    // An empty user or password is none, as redis-py, kombu and aio-pika read it
    // (`redis://:@host` sends no AUTH, `amqp://guest:@host` logs in as guest/guest).
    let user = Some(percent_decode(user)).filter(|u| !u.is_empty());
    let password = password.map(percent_decode).filter(|p| !p.is_empty());
    Ok((user, password, rest))
}

fn host_port(authority: &str, default_port: u16) -> Result<(String, u16), UrlError> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or(UrlError::Malformed("unclosed IPv6 bracket"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    // No host is the local one, as redis-py and kombu read it: python-socketio's docs write
    // `KombuManager('amqp://')`.
    let host = if host.is_empty() { "localhost" } else { host };
    let port = match port {
        None | Some("") => default_port,
        Some(port) => port.parse().map_err(|_| UrlError::Malformed("bad port"))?,
    };
    Ok((host.to_owned(), port))
}

/// A Redis URL's credentials: its userinfo's, or else the query's `username` and `password`
/// (redis-py takes any connection argument from the query, and documents `password` there for
/// `unix://`; the userinfo wins where both are given).
fn redis_credentials<'r>(
    rest: &'r str,
    query: &Query,
) -> Result<(Option<String>, Option<String>, &'r str), UrlError> {
    let (username, password, rest) = credentials(rest)?;
    let from_query = |name| {
        query_value(query, name)
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    };
    Ok((
        username.or_else(|| from_query("username")),
        password.or_else(|| from_query("password")),
        rest,
    ))
}

fn parse_redis(rest: &str, query: &Query, tls: bool) -> Result<RedisConfig, UrlError> {
    let (username, password, rest) = redis_credentials(rest, query)?;
    let (authority, path) = match rest.split_once('/') {
        Some((authority, path)) => (authority, path),
        None => (rest, ""),
    };
    let (host, port) = host_port(authority, 6379)?;
    // The query's `db` wins over the path's, as in redis-py.
    let db = match (query_value(query, "db"), path) {
        (None, "") => 0,
        (None, db) => db
            .parse()
            .map_err(|_| UrlError::Malformed("bad database number"))?,
        (Some(_), _) => query_db(query)?,
    };
    let (verify_server, check_server_name) = redis_verification(query)?;
    let tls = tls_options(
        query,
        &REDIS_TLS,
        &host,
        tls,
        verify_server,
        check_server_name,
    )?;
    Ok(RedisConfig {
        address: RedisAddress::Tcp { host, port },
        db,
        username,
        password,
        tls,
        framing: RedisFraming::PubSub,
    })
}

/// redis-py's verification settings of a `rediss://` URL: `ssl_cert_reqs` (`none` skips
/// verifying the server; `optional` and `required` verify it, a server always presenting a
/// certificate) and `ssl_check_hostname` (its `to_bool`: an empty value is unset; a value it would
/// read as true only by being no false word is refused here rather than guessed).
fn redis_verification(query: &Query) -> Result<(Option<bool>, Option<bool>), UrlError> {
    let one_of = |v: &str, words: &[&str]| words.iter().any(|w| v.eq_ignore_ascii_case(w));
    let verify_server = match query_value(query, "ssl_cert_reqs") {
        None => None,
        Some(v) if one_of(v, &["none", "cert_none"]) => Some(false),
        Some(v)
            if one_of(
                v,
                &["optional", "required", "cert_optional", "cert_required"],
            ) =>
        {
            Some(true)
        }
        Some(_) => {
            return Err(UrlError::Malformed(
                "ssl_cert_reqs must be none, optional or required",
            ));
        }
    };
    let check_server_name = match query_value(query, "ssl_check_hostname") {
        None | Some("") => None,
        Some(v) if one_of(v, &["0", "f", "false", "n", "no"]) => Some(false),
        Some(v) if one_of(v, &["1", "t", "true", "y", "yes"]) => Some(true),
        Some(_) => {
            return Err(UrlError::Malformed(
                "ssl_check_hostname must be true or false",
            ));
        }
    };
    Ok((verify_server, check_server_name))
}

fn query_db(query: &Query) -> Result<u32, UrlError> {
    match query_value(query, "db") {
        None => Ok(0),
        Some(db) => db
            .parse()
            .map_err(|_| UrlError::Malformed("bad database number")),
    }
}

fn parse_redis_unix(rest: &str, query: &Query) -> Result<RedisConfig, UrlError> {
    let (username, password, path) = redis_credentials(rest, query)?;
    if !path.starts_with('/') {
        return Err(UrlError::Malformed("unix:// needs an absolute socket path"));
    }
    Ok(RedisConfig {
        address: RedisAddress::Unix {
            path: percent_decode(path),
        },
        db: query_db(query)?,
        username,
        password,
        tls: {
            // Refused there as every TLS setting on a plain-text URL.
            let (verify_server, check_server_name) = redis_verification(query)?;
            tls_options(
                query,
                &REDIS_TLS,
                "",
                false,
                verify_server,
                check_server_name,
            )?
        },
        framing: RedisFraming::PubSub,
    })
}

fn parse_amqp(rest: &str, query: &Query, tls: bool) -> Result<AmqpConfig, UrlError> {
    let (username, password, rest) = credentials(rest)?;
    let (authority, vhost) = match rest.split_once('/') {
        Some((authority, vhost)) => (authority, Some(vhost)),
        None => (rest, None),
    };
    let (host, port) = host_port(authority, if tls { 5671 } else { 5672 })?;
    let vhost = match vhost {
        // RabbitMQ's convention: no path is the default vhost "/"; "/x" is "x"; "/%2f" is "/".
        None | Some("") => "/".to_owned(),
        Some(vhost) => percent_decode(vhost),
    };
    if vhost.len() > 255 {
        return Err(UrlError::Malformed(
            "an AMQP vhost name holds at most 255 bytes",
        ));
    }
    // aio-pika's `no_verify_ssl=1` skips verifying the server.
    let verify_server = match query_value(query, "no_verify_ssl") {
        None => None,
        Some("1" | "true" | "yes") => Some(false),
        Some("0" | "false" | "no") => Some(true),
        Some(_) => return Err(UrlError::Malformed("no_verify_ssl must be 0 or 1")),
    };
    let tls = tls_options(query, &AMQP_TLS, &host, tls, verify_server, None)?;
    Ok(AmqpConfig {
        host,
        port,
        vhost,
        username: username.unwrap_or_else(|| "guest".to_owned()),
        password: password.unwrap_or_else(|| "guest".to_owned()),
        tls,
    })
}

/// Python's `unquote` (the query's own unescaping, `+` left alone): a password `50%off` typed
/// unescaped means the same to both.
fn percent_decode(text: &str) -> String {
    crate::http::query::unescape(text, false).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis(url: &str) -> RedisConfig {
        match BrokerUrl::parse(url).unwrap() {
            BrokerUrl::Redis(config) => config,
            other => panic!("{other:?}"),
        }
    }

    /// A configuration logged with `{:?}` (or a `ClientManager` holding it) shows no password.
    #[test]
    fn debug_output_hides_passwords() {
        for url in [
            "redis://user:s3cret@h:6379/1",
            "redis://h?password=s3cret",
            "amqp://guest:s3cret@h//",
        ] {
            let parsed = BrokerUrl::parse(url).unwrap();
            let shown = format!("{parsed:?}");
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("<hidden>"), "{shown}");
        }
    }

    /// Query values as redis-py (`parse_qs`) and yarl read them: a blank one is no setting, a
    /// repeated one is its first, and a `%` without two hex digits after it stays as it is.
    #[test]
    fn query_values_read_as_the_python_clients_do() {
        let plain = redis("rediss://h");
        assert_eq!(redis("rediss://h?ssl_ca_certs=&ssl_cert_reqs=&db="), plain);
        assert_eq!(redis("redis://h/2?db=").db, 2);
        let first = redis("rediss://h?ssl_cert_reqs=required&ssl_cert_reqs=none");
        assert!(first.tls.expect("TLS").verify_server);
        assert_eq!(redis("redis://h?db=3&db=4").db, 3);
        assert_eq!(
            redis("redis://h?password=50%off").password,
            Some("50%off".to_owned())
        );
        // redis-py unescapes a query value twice (not the userinfo, nor aio-pika's query).
        assert_eq!(
            redis("redis://h?password=%2541").password,
            Some("A".to_owned())
        );
        assert_eq!(redis("redis://:%2541@h").password, Some("%41".to_owned()));
        // (`+` is a space in a query, as in `parse_qs`: so `%+1` is tried in the userinfo.)
        assert_eq!(redis("redis://x%+1:pw@h").username, Some("x%+1".to_owned()));
        assert_eq!(
            redis("redis://:p%40ss%2x@h").password,
            Some("p@ss%2x".to_owned())
        );
    }

    #[test]
    fn redis_urls() {
        assert_eq!(
            redis("redis://127.0.0.1:6379/0"),
            RedisConfig {
                address: RedisAddress::Tcp {
                    host: "127.0.0.1".into(),
                    port: 6379
                },
                db: 0,
                username: None,
                password: None,
                tls: None,
                framing: RedisFraming::PubSub,
            }
        );
        let full = redis("redis://user:p%40ss@redis.example:7000/3");
        assert_eq!(full.username.as_deref(), Some("user"));
        assert_eq!(full.password.as_deref(), Some("p@ss"));
        assert_eq!(full.db, 3);
        assert_eq!(
            full.address,
            RedisAddress::Tcp {
                host: "redis.example".into(),
                port: 7000
            }
        );
        let password_only = redis("redis://:secret@localhost");
        assert_eq!(password_only.username, None);
        assert_eq!(password_only.password.as_deref(), Some("secret"));
        assert_eq!(
            redis("redis://[::1]").address,
            RedisAddress::Tcp {
                host: "::1".into(),
                port: 6379
            }
        );
        let unix = redis("unix:///run/redis.sock?db=2");
        assert_eq!(
            unix.address,
            RedisAddress::Unix {
                path: "/run/redis.sock".into()
            }
        );
        assert_eq!(unix.db, 2);
    }

    /// Credentials and database as redis-py's `parse_url` reads them: an empty user or password
    /// is none (no `AUTH ""`, which a Redis without a password refuses); the query may carry
    /// `username` and `password` (redis-py documents `unix://...?db=0&password=...`), the userinfo
    /// winning over it; the query's `db` wins over the path's.
    #[test]
    fn redis_urls_read_as_redis_py() {
        // `+` in the query is a space to redis-py, kombu and aio-pika; `%2B` is a plus.
        assert_eq!(
            redis("redis://h?password=a+b%2Bc").password.as_deref(),
            Some("a b+c")
        );
        assert_eq!(redis("redis://u:a+b@h").password.as_deref(), Some("a+b"));
        let empty = redis("redis://:@127.0.0.1:6379/0");
        assert_eq!((empty.username, empty.password), (None, None));
        let unix = redis("unix:///tmp/redis.sock?db=1&password=secret");
        assert_eq!(unix.password.as_deref(), Some("secret"));
        assert_eq!(unix.db, 1);
        let tcp = redis("redis://localhost/0?username=app&password=s%26cret");
        assert_eq!(tcp.username.as_deref(), Some("app"));
        assert_eq!(tcp.password.as_deref(), Some("s&cret"));
        let both = redis("redis://user:inurl@localhost?username=q&password=inquery");
        assert_eq!(both.username.as_deref(), Some("user"));
        assert_eq!(both.password.as_deref(), Some("inurl"));
        assert_eq!(redis("redis://localhost?password=").password, None);
        assert_eq!(redis("redis://localhost:6379/1?db=2").db, 2);
        assert_eq!(redis("redis://localhost:6379/1").db, 1);
        assert!(BrokerUrl::parse("redis://localhost/1?db=x").is_err());
    }

    /// An empty AMQP password is none, so the default (guest) applies, as kombu and aio-pika read
    /// it.
    #[test]
    fn an_empty_amqp_password_is_the_default() {
        let BrokerUrl::Amqp(config) = BrokerUrl::parse("amqp://guest:@localhost//").unwrap() else {
            panic!("an AMQP URL")
        };
        assert_eq!(config.password, "guest");
    }

    #[test]
    fn amqp_urls() {
        assert_eq!(
            BrokerUrl::parse("amqp://guest:guest@127.0.0.1:5672//").unwrap(),
            BrokerUrl::Amqp(AmqpConfig {
                host: "127.0.0.1".into(),
                port: 5672,
                vhost: "/".into(),
                username: "guest".into(),
                password: "guest".into(),
                tls: None
            })
        );
        let BrokerUrl::Amqp(config) = BrokerUrl::parse("amqp://localhost").unwrap() else {
            panic!()
        };
        assert_eq!((config.port, config.vhost.as_str()), (5672, "/"));
        let BrokerUrl::Amqp(config) = BrokerUrl::parse("amqp://u:p@h/%2f").unwrap() else {
            panic!()
        };
        assert_eq!(config.vhost, "/");
        let BrokerUrl::Amqp(config) = BrokerUrl::parse("amqp://u:p@h/prod").unwrap() else {
            panic!()
        };
        assert_eq!(config.vhost, "prod");
    }

    #[test]
    fn tls_urls() {
        let plain_default = redis("rediss://:pw@cache.example");
        assert_eq!(
            plain_default.tls,
            Some(TlsOptions {
                server_name: "cache.example".into(),
                ca_file: None,
                client_identity: None,
                verify_server: true,
                check_server_name: true,
            })
        );
        let full = redis(
            "rediss://cache.example:6380/2?ssl_ca_certs=%2Fetc%2Fca.pem&ssl_certfile=/c.pem&ssl_keyfile=/k.pem&ssl_cert_reqs=required",
        );
        assert_eq!(full.db, 2);
        let tls = full.tls.expect("TLS");
        assert_eq!(tls.ca_file.as_deref(), Some("/etc/ca.pem"));
        assert_eq!(
            tls.client_identity,
            Some(ClientIdentity {
                certificate_file: "/c.pem".into(),
                key_file: "/k.pem".into()
            })
        );
        assert!(tls.verify_server);
        let unverified = redis("rediss://h?ssl_cert_reqs=none");
        assert!(!unverified.tls.expect("TLS").verify_server);
        for (value, checked) in [
            ("false", false),
            ("No", false),
            ("0", false),
            ("TRUE", true),
        ] {
            let url = redis(&format!("rediss://h?ssl_check_hostname={value}"));
            let tls = url.tls.expect("TLS");
            assert_eq!(tls.check_server_name, checked, "{value}");
            assert!(tls.verify_server);
        }
        assert_eq!(
            BrokerUrl::parse("rediss://h?ssl_check_hostname=maybe"),
            Err(UrlError::Malformed(
                "ssl_check_hostname must be true or false"
            ))
        );
        // Empty is unset, as redis-py reads it.
        let unset = redis("rediss://h?ssl_check_hostname=");
        assert!(unset.tls.expect("TLS").check_server_name);
        assert_eq!(
            BrokerUrl::parse("unix:///run/redis.sock?ssl_check_hostname=false"),
            Err(UrlError::TlsSettingWithoutTls(
                "ssl_check_hostname".into(),
                "rediss://"
            ))
        );
        assert!(matches!(
            BrokerUrl::parse("unix:///run/redis.sock?ssl_cert_reqs=none"),
            Err(UrlError::TlsSettingWithoutTls(..))
        ));
        assert_eq!(
            BrokerUrl::parse("redis://h?ssl_check_hostname=false"),
            Err(UrlError::TlsSettingWithoutTls(
                "ssl_check_hostname".into(),
                "rediss://"
            ))
        );

        let BrokerUrl::Amqp(amqps) =
            BrokerUrl::parse("amqps://u:p@mq.example/prod?cafile=/ca.pem&no_verify_ssl=0").unwrap()
        else {
            panic!()
        };
        assert_eq!((amqps.port, amqps.vhost.as_str()), (5671, "prod"));
        let tls = amqps.tls.expect("TLS");
        assert_eq!(tls.server_name, "mq.example");
        assert_eq!(tls.ca_file.as_deref(), Some("/ca.pem"));
        assert!(tls.verify_server);
        let BrokerUrl::Amqp(plain) = BrokerUrl::parse("amqp://u:p@h/prod?heartbeat=30").unwrap()
        else {
            panic!()
        };
        assert_eq!((plain.vhost.as_str(), plain.tls), ("prod", None));
    }

    /// python-socketio's docs write `KombuManager('amqp://')` and `RedisManager('redis://')`:
    /// no host is localhost, as redis-py and kombu read it; kombu's `pyamqp://` is `amqp://`.
    #[test]
    fn urls_without_a_host_name_localhost() {
        assert_eq!(
            redis("redis://").address,
            RedisAddress::Tcp {
                host: "localhost".into(),
                port: 6379
            }
        );
        assert_eq!(redis("redis://").db, 0);
        let with_port = redis("redis://:pw@:6380/2");
        assert_eq!(
            (
                with_port.address,
                with_port.password.as_deref(),
                with_port.db
            ),
            (
                RedisAddress::Tcp {
                    host: "localhost".into(),
                    port: 6380
                },
                Some("pw"),
                2
            )
        );
        for url in [
            "amqp://",
            "pyamqp://",
            "pyamqp://guest:guest@localhost:5672//",
        ] {
            let BrokerUrl::Amqp(config) = BrokerUrl::parse(url).unwrap() else {
                panic!("{url} is an AMQP URL");
            };
            assert_eq!(
                (
                    config.host.as_str(),
                    config.port,
                    config.vhost.as_str(),
                    config.username.as_str(),
                    config.password.as_str()
                ),
                ("localhost", 5672, "/", "guest", "guest"),
                "{url}"
            );
        }
    }

    #[test]
    fn refusals_are_clear() {
        assert_eq!(
            BrokerUrl::parse("redis://h?ssl_ca_certs=/ca.pem"),
            Err(UrlError::TlsSettingWithoutTls(
                "ssl_ca_certs".into(),
                "rediss://"
            ))
        );
        assert_eq!(
            BrokerUrl::parse("amqp://h?no_verify_ssl=1"),
            Err(UrlError::TlsSettingWithoutTls(
                "verification".into(),
                "amqps://"
            ))
        );
        for url in [
            "amqp://u:p@h//?ssl=1",
            "pyamqp://h?ssl=true",
            "amqp://h?ssl=0",
        ] {
            assert_eq!(
                BrokerUrl::parse(url),
                Err(UrlError::TlsSettingWithoutTls("ssl".into(), "amqps://")),
                "{url}"
            );
        }
        assert_eq!(
            BrokerUrl::parse("redis://h?ssl=true"),
            Err(UrlError::TlsSettingWithoutTls("ssl".into(), "rediss://"))
        );
        assert!(BrokerUrl::parse("amqps://h?ssl=1").is_ok());
        assert!(matches!(
            BrokerUrl::parse(&format!("amqp://h/{}", "v".repeat(256))),
            Err(UrlError::Malformed(_))
        ));
        assert!(BrokerUrl::parse(&format!("amqp://h/{}", "v".repeat(255))).is_ok());
        assert!(matches!(
            BrokerUrl::parse("rediss://h?ssl_keyfile=/k.pem"),
            Err(UrlError::Malformed(_))
        ));
        // A certificate file alone holds its key too, as redis-py and aio-pika read it.
        match BrokerUrl::parse("rediss://h?ssl_certfile=/both.pem") {
            Ok(BrokerUrl::Redis(config)) => assert_eq!(
                config.tls.and_then(|tls| tls.client_identity),
                Some(ClientIdentity {
                    certificate_file: "/both.pem".into(),
                    key_file: "/both.pem".into(),
                })
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            BrokerUrl::parse("rediss://h?ssl_cert_reqs=maybe"),
            Err(UrlError::Malformed(_))
        ));
        assert!(matches!(
            BrokerUrl::parse("kafka://h"),
            Err(UrlError::Scheme(_))
        ));
        assert_eq!(
            BrokerUrl::parse("redis:/:s3cret@localhost:6379"),
            Err(UrlError::NoScheme)
        );
        assert!(
            !UrlError::NoScheme.to_string().contains("s3cret"),
            "the error repeats no part of the URL"
        );
        // A `://` further on (in the query) does not make what precedes it a scheme.
        assert_eq!(
            BrokerUrl::parse("redis//:s3cret@h/0?ssl_ca_certs=file:///ca.pem"),
            Err(UrlError::NoScheme)
        );
        assert!(matches!(
            BrokerUrl::parse("redis://h:99999"),
            Err(UrlError::Malformed(_))
        ));
        assert!(matches!(
            BrokerUrl::parse("redis://h/x"),
            Err(UrlError::Malformed(_))
        ));
        assert!(matches!(
            BrokerUrl::parse("unix://relative.sock"),
            Err(UrlError::Malformed(_))
        ));
    }
}
