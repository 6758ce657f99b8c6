//! Broker URLs, as python-socketio's managers take them: `redis://[[user]:password@]host[:port][/db]`,
//! `unix://[[user]:password@]/path/to/redis.sock[?db=N]` and `amqp://user:password@host[:port][/vhost]`.

/// Where a Redis server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisAddress {
    Tcp { host: String, port: u16 },
    Unix { path: String },
}

/// A parsed `redis://` or `unix://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    pub address: RedisAddress,
    pub db: u32,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// A parsed `amqp://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpConfig {
    pub host: String,
    pub port: u16,
    pub vhost: String,
    pub username: String,
    pub password: String,
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
    #[error("`{0}` is not a broker URL (expected redis://, unix:// or amqp://)")]
    Scheme(String),
    #[error(
        "{0} (TLS) is not supported yet; terminate TLS in front of the broker or use a plain URL on a private network"
    )]
    Tls(&'static str),
    #[error("bad broker URL: {0}")]
    Malformed(&'static str),
}

impl BrokerUrl {
    pub fn parse(url: &str) -> Result<BrokerUrl, UrlError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| UrlError::Scheme(url.to_owned()))?;
        match scheme {
            "redis" | "valkey" => parse_redis(rest).map(BrokerUrl::Redis),
            "unix" => parse_redis_unix(rest).map(BrokerUrl::Redis),
            "amqp" => parse_amqp(rest).map(BrokerUrl::Amqp),
            "rediss" | "valkeys" => Err(UrlError::Tls("rediss://")),
            "amqps" => Err(UrlError::Tls("amqps://")),
            other => Err(UrlError::Scheme(format!("{other}://"))),
        }
    }
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
    let user = Some(percent_decode(user)?).filter(|u| !u.is_empty());
    let password = password.map(percent_decode).transpose()?;
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
    if host.is_empty() {
        return Err(UrlError::Malformed("no host"));
    }
    let port = match port {
        None | Some("") => default_port,
        Some(port) => port.parse().map_err(|_| UrlError::Malformed("bad port"))?,
    };
    Ok((host.to_owned(), port))
}

fn parse_redis(rest: &str) -> Result<RedisConfig, UrlError> {
    let (username, password, rest) = credentials(rest)?;
    let (authority, path) = match rest.split_once('/') {
        Some((authority, path)) => (authority, path),
        None => (rest, ""),
    };
    let (host, port) = host_port(authority, 6379)?;
    let db = match path.split('?').next().unwrap_or("") {
        "" => 0,
        db => db
            .parse()
            .map_err(|_| UrlError::Malformed("bad database number"))?,
    };
    Ok(RedisConfig {
        address: RedisAddress::Tcp { host, port },
        db,
        username,
        password,
    })
}

fn parse_redis_unix(rest: &str) -> Result<RedisConfig, UrlError> {
    let (username, password, rest) = credentials(rest)?;
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, query),
        None => (rest, ""),
    };
    if !path.starts_with('/') {
        return Err(UrlError::Malformed("unix:// needs an absolute socket path"));
    }
    let mut db = 0;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        if let Some(value) = pair.strip_prefix("db=") {
            db = value
                .parse()
                .map_err(|_| UrlError::Malformed("bad database number"))?;
        }
    }
    Ok(RedisConfig {
        address: RedisAddress::Unix {
            path: percent_decode(path)?,
        },
        db,
        username,
        password,
    })
}

fn parse_amqp(rest: &str) -> Result<AmqpConfig, UrlError> {
    let (username, password, rest) = credentials(rest)?;
    let (authority, vhost) = match rest.split_once('/') {
        Some((authority, vhost)) => (authority, Some(vhost)),
        None => (rest, None),
    };
    let (host, port) = host_port(authority, 5672)?;
    let vhost = match vhost {
        // RabbitMQ's convention: no path is the default vhost "/"; "/x" is "x"; "/%2f" is "/".
        None | Some("") => "/".to_owned(),
        Some(vhost) => percent_decode(vhost)?,
    };
    Ok(AmqpConfig {
        host,
        port,
        vhost,
        username: username.unwrap_or_else(|| "guest".to_owned()),
        password: password.unwrap_or_else(|| "guest".to_owned()),
    })
}

fn percent_decode(text: &str) -> Result<String, UrlError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(UrlError::Malformed("bad percent escape"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UrlError::Malformed("not UTF-8 after unescaping"))
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
                password: None
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

    #[test]
    fn amqp_urls() {
        assert_eq!(
            BrokerUrl::parse("amqp://guest:guest@127.0.0.1:5672//").unwrap(),
            BrokerUrl::Amqp(AmqpConfig {
                host: "127.0.0.1".into(),
                port: 5672,
                vhost: "/".into(),
                username: "guest".into(),
                password: "guest".into()
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
    fn refusals_are_clear() {
        assert!(matches!(
            BrokerUrl::parse("rediss://h"),
            Err(UrlError::Tls(_))
        ));
        assert!(matches!(
            BrokerUrl::parse("amqps://h"),
            Err(UrlError::Tls(_))
        ));
        assert!(matches!(
            BrokerUrl::parse("kafka://h"),
            Err(UrlError::Scheme(_))
        ));
        assert!(matches!(
            BrokerUrl::parse("localhost:6379"),
            Err(UrlError::Scheme(_))
        ));
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
