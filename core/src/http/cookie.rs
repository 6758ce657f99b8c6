//! The `io` session cookie set on the handshake response (engine.io's
//! `cookie` option).

use std::fmt::Write as _;

use ::http::HeaderValue;

/// The `SameSite` cookie attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// `SameSite=Strict`
    Strict,
    /// `SameSite=Lax`
    Lax,
    /// `SameSite=None` (browsers only accept it together with `Secure`).
    None,
}

impl SameSite {
    /// The attribute value: `Strict`, `Lax` or `None`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "Strict",
            Self::Lax => "Lax",
            Self::None => "None",
        }
    }
}

/// Settings of the session cookie. The default gives
/// `io=<sid>; Path=/; HttpOnly; SameSite=Lax`, like engine.io's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieConfig {
    /// Cookie name (default `"io"`).
    pub name: String,
    /// `Path` attribute (default `Some("/")`).
    pub path: Option<String>,
    /// `HttpOnly` attribute (default `true`).
    pub http_only: bool,
    /// `SameSite` attribute (default `Some(SameSite::Lax)`).
    pub same_site: Option<SameSite>,
    /// `Secure` attribute (default `false`).
    pub secure: bool,
    /// `Domain` attribute (default `None`).
    pub domain: Option<String>,
    /// `Max-Age` attribute in seconds (default `None`: a session cookie).
    pub max_age: Option<u64>,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            name: "io".to_owned(),
            path: Some("/".to_owned()),
            http_only: true,
            same_site: Some(SameSite::Lax),
            secure: false,
            domain: None,
            max_age: None,
        }
    }
}

/// Why [`CookieConfig::validate`] refuses a configuration: a field that cannot appear in a
/// `Set-Cookie` header as is (whose offending characters [`CookieConfig::header_value`] drops),
/// or attributes browsers refuse together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCookieConfig {
    /// The name is empty or has characters outside the HTTP token set.
    #[error("invalid cookie name {0:?}")]
    Name(String),
    /// The path has control characters, `;` or non-ASCII characters.
    #[error("invalid cookie path {0:?}")]
    Path(String),
    /// The domain has control characters, `;` or non-ASCII characters.
    #[error("invalid cookie domain {0:?}")]
    Domain(String),
    /// `SameSite=None` without `Secure`, which browsers drop (RFC 6265bis): the sticky session
    /// it is for would silently not stick.
    #[error("cookie with SameSite=None must be Secure (browsers drop it otherwise)")]
    SameSiteNoneWithoutSecure,
}

/// RFC 7230 `tchar`.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// RFC 6265 `av-octet` (attribute values): any CHAR except CTLs or `;`.
fn is_attr_char(c: char) -> bool {
    (' '..='~').contains(&c) && c != ';'
}

/// What `encodeURIComponent` leaves as it is (all of them RFC 6265 cookie octets).
fn is_uri_component_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b)
}

impl CookieConfig {
    /// Checks that every field can be written as is, and that browsers keep the cookie
    /// (`SameSite=None` only with `Secure`). Every server checks it when built (it panics on a
    /// configuration that fails it).
    pub fn validate(&self) -> Result<(), InvalidCookieConfig> {
        if self.name.is_empty() || !self.name.chars().all(is_token_char) {
            return Err(InvalidCookieConfig::Name(self.name.clone()));
        }
        if let Some(path) = &self.path
            && !path.chars().all(is_attr_char)
        {
            return Err(InvalidCookieConfig::Path(path.clone()));
        }
        if let Some(domain) = &self.domain
            && !domain.chars().all(is_attr_char)
        {
            return Err(InvalidCookieConfig::Domain(domain.clone()));
        }
        if self.same_site == Some(SameSite::None) && !self.secure {
            return Err(InvalidCookieConfig::SameSiteNoneWithoutSecure);
        }
        Ok(())
    }

    /// The `Set-Cookie` header value for session `sid`, attributes in the
    /// order of Node's `cookie` module:
    /// `name=<sid>; Max-Age=N; Domain=D; Path=P; HttpOnly; Secure; SameSite=S`
    /// (absent ones left out), e.g. `io=<sid>; Path=/; HttpOnly; SameSite=Lax`
    /// by default.
    ///
    /// `sid` is written as JavaScript's `encodeURIComponent` writes it, as engine.io's
    /// `cookie.serialize` does: the default ids (base64url) as they are, any other byte
    /// percent-encoded (`%` too, so that a load balancer or a page decoding the value gets the
    /// sid back).
    /// Characters of the name, path or domain that are not allowed there are
    /// dropped (see [`CookieConfig::validate`]).
    pub fn header_value(&self, sid: &str) -> HeaderValue {
        let mut out = String::with_capacity(64 + sid.len());
        out.extend(self.name.chars().filter(|&c| is_token_char(c)));
        out.push('=');
        for b in sid.bytes() {
            if is_uri_component_char(b) {
                out.push(char::from(b));
            } else {
                let _ = write!(out, "%{b:02X}");
            }
        }
        if let Some(max_age) = self.max_age {
            let _ = write!(out, "; Max-Age={max_age}");
        }
        if let Some(domain) = &self.domain {
            out.push_str("; Domain=");
            out.extend(domain.chars().filter(|&c| is_attr_char(c)));
        }
        if let Some(path) = &self.path {
            out.push_str("; Path=");
            out.extend(path.chars().filter(|&c| is_attr_char(c)));
        }
        if self.http_only {
            out.push_str("; HttpOnly");
        }
        if self.secure {
            out.push_str("; Secure");
        }
        if let Some(same_site) = self.same_site {
            out.push_str("; SameSite=");
            out.push_str(same_site.as_str());
        }
        // Only visible ASCII and spaces were written, which is always valid.
        HeaderValue::from_str(&out).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "Z5b2a7UQ1sOWVfPXAAAB";

    fn base() -> CookieConfig {
        CookieConfig {
            name: "io".into(),
            path: None,
            http_only: false,
            same_site: None,
            secure: false,
            domain: None,
            max_age: None,
        }
    }

    #[test]
    fn default_cookie() {
        let c = CookieConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(
            c.header_value(SID),
            "io=Z5b2a7UQ1sOWVfPXAAAB; Path=/; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn bare_cookie() {
        assert_eq!(base().header_value(SID), "io=Z5b2a7UQ1sOWVfPXAAAB");
    }

    #[test]
    fn each_attribute() {
        let cases: Vec<(CookieConfig, &str)> = vec![
            (
                CookieConfig {
                    name: "sess".into(),
                    ..base()
                },
                "sess=Z5b2a7UQ1sOWVfPXAAAB",
            ),
            (
                CookieConfig {
                    path: Some("/socket.io".into()),
                    ..base()
                },
                "io=Z5b2a7UQ1sOWVfPXAAAB; Path=/socket.io",
            ),
            (
                CookieConfig {
                    http_only: true,
                    ..base()
                },
                "io=Z5b2a7UQ1sOWVfPXAAAB; HttpOnly",
            ),
            (
                CookieConfig {
                    secure: true,
                    ..base()
                },
                "io=Z5b2a7UQ1sOWVfPXAAAB; Secure",
            ),
            (
                CookieConfig {
                    same_site: Some(SameSite::Strict),
                    ..base()
                },
                "io=Z5b2a7UQ1sOWVfPXAAAB; SameSite=Strict",
            ),
            (
                CookieConfig {
                    same_site: Some(SameSite::Lax),
                    ..base()
                },
                "io=Z5b2a7UQ1sOWVfPXAAAB; SameSite=Lax",
            ),
            (
                CookieConfig {
                    same_site: Some(SameSite::None),
                    secure: true,
                    ..base()
                },
                "io=Z5b2a7UQ1sOWVfPXAAAB; Secure; SameSite=None",
            ),
            (
                CookieConfig {
                    domain: Some("example.com".into()),
                    ..base()
                },
                "io=Z5b2a7UQ1sOWVfPXAAAB; Domain=example.com",
            ),
            (
                CookieConfig {
                    max_age: Some(86400),
                    ..base()
                },
                "io=Z5b2a7UQ1sOWVfPXAAAB; Max-Age=86400",
            ),
            (
                CookieConfig {
                    name: "io".into(),
                    path: Some("/".into()),
                    http_only: true,
                    same_site: Some(SameSite::None),
                    secure: true,
                    domain: Some(".example.com".into()),
                    max_age: Some(0),
                },
                "io=Z5b2a7UQ1sOWVfPXAAAB; Max-Age=0; Domain=.example.com; Path=/; HttpOnly; Secure; SameSite=None",
            ),
        ];
        for (config, expected) in cases {
            assert_eq!(config.validate(), Ok(()));
            assert_eq!(config.header_value(SID), expected, "{config:?}");
        }
    }

    #[test]
    fn sid_encoding() {
        let c = base();
        // base64url-style ids are already valid cookie values.
        assert_eq!(c.header_value("a-b_c.d~e"), "io=a-b_c.d~e");
        assert_eq!(c.header_value("ab%cd"), "io=ab%25cd");
        assert_eq!(c.header_value("a+b/c=d!*'()"), "io=a%2Bb%2Fc%3Dd!*'()");
        assert_eq!(c.header_value("a b;c"), "io=a%20b%3Bc");
        assert_eq!(c.header_value("x\"y,z\\%"), "io=x%22y%2Cz%5C%25");
        assert_eq!(c.header_value("é"), "io=%C3%A9");
        assert_eq!(c.header_value(""), "io=");
    }

    #[test]
    fn invalid_config_fields() {
        let c = CookieConfig {
            name: "i o;".into(),
            ..base()
        };
        assert_eq!(c.validate(), Err(InvalidCookieConfig::Name("i o;".into())));
        assert_eq!(c.header_value("x"), "io=x");
        assert!(
            CookieConfig {
                name: String::new(),
                ..base()
            }
            .validate()
            .is_err()
        );

        let c = CookieConfig {
            path: Some("/a;\r\nb".into()),
            domain: Some("ex;ample.com\u{7f}é".into()),
            ..base()
        };
        assert_eq!(
            c.validate(),
            Err(InvalidCookieConfig::Path("/a;\r\nb".into()))
        );
        assert_eq!(c.header_value("x"), "io=x; Domain=example.com; Path=/ab");
        let c = CookieConfig {
            domain: Some("a;b".into()),
            ..base()
        };
        assert_eq!(c.validate(), Err(InvalidCookieConfig::Domain("a;b".into())));
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "invalid cookie domain \"a;b\""
        );
        let c = CookieConfig {
            same_site: Some(SameSite::None),
            ..base()
        };
        assert_eq!(
            c.validate(),
            Err(InvalidCookieConfig::SameSiteNoneWithoutSecure)
        );
    }
}
