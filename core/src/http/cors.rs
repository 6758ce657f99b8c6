//! CORS handling following python-engineio.

use std::fmt;
use std::sync::Arc;

use ::http::StatusCode;
use ::http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS, HOST,
    HeaderMap, HeaderValue, ORIGIN, VARY,
};
use bytes::Bytes;

use super::Response;

/// Which `Origin`s may make cross-origin requests.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum AllowedOrigins {
    /// Only an `Origin` whose `host[:port]` equals the request's `Host`
    /// header (scheme ignored, host compared case-insensitively; a default
    /// port `:80` for `http`/`ws` or `:443` for `https`/`wss` may be present
    /// on either side). python-engineio's default compares the scheme too
    /// (its own, or `X-Forwarded-Proto`); a server behind a proxy that
    /// terminated TLS cannot know the page's, so only host and port are
    /// compared here. List the origins to have the scheme checked.
    #[default]
    SameOrigin,
    /// Any origin (still echoed back, never `*`, so credentials work).
    Any,
    /// Exact match of the full origin, e.g. `"http://localhost:3000"`. An
    /// entry `"*"` allows any origin, as in python-engineio.
    List(Vec<String>),
    /// Decided by a function of the origin string.
    Predicate(Arc<dyn Fn(&str) -> bool + Send + Sync>),
    /// No CORS handling at all, for a proxy in front that does it: no origin is checked, no
    /// CORS header (nor `Vary: Origin`) is added, and a preflight gets an empty `204`.
    /// python-engineio's `cors_allowed_origins=[]`; the Node.js server's default (`cors`
    /// unset). An empty [`List`](Self::List) instead refuses every origin.
    Disabled,
}

impl fmt::Debug for AllowedOrigins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SameOrigin => f.write_str("SameOrigin"),
            Self::Any => f.write_str("Any"),
            Self::List(list) => f.debug_tuple("List").field(list).finish(),
            Self::Predicate(_) => f.write_str("Predicate(..)"),
            Self::Disabled => f.write_str("Disabled"),
        }
    }
}

/// CORS settings.
#[derive(Clone, Debug)]
pub struct CorsConfig {
    /// Which origins are allowed.
    pub allowed_origins: AllowedOrigins,
    /// Whether to send `Access-Control-Allow-Credentials: true` (default
    /// `true`, as in python-engineio).
    pub credentials: bool,
    /// `Access-Control-Max-Age` of preflight answers, in seconds.
    pub max_age: Option<u32>,
}

impl Default for CorsConfig {
    fn default() -> Self {
        Self {
            allowed_origins: AllowedOrigins::SameOrigin,
            credentials: true,
            max_age: None,
        }
    }
}

/// Outcome of [`CorsConfig::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginCheck {
    /// The request has no `Origin` header (not a browser cross-origin
    /// request): allowed, but no CORS headers are sent.
    NoOrigin,
    /// The origin is allowed; the value is the request's `Origin`.
    Allowed(HeaderValue),
    /// The origin is not allowed (or malformed).
    Denied,
}

impl OriginCheck {
    /// Whether the request may proceed (`NoOrigin` or `Allowed`).
    pub fn is_allowed(&self) -> bool {
        !matches!(self, Self::Denied)
    }
}

const ALLOW_METHODS: &str = "OPTIONS, GET, POST";

fn is_visible_ascii(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// Removes a default port matching `scheme` from `authority`.
fn strip_default_port<'a>(scheme: &str, authority: &'a str) -> &'a str {
    let default = if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("ws") {
        ":80"
    } else if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("wss") {
        ":443"
    } else {
        return authority;
    };
    authority.strip_suffix(default).unwrap_or(authority)
}

/// Whether `origin` (`scheme://host[:port]`) designates `host` (a `Host`
/// header value), ignoring the scheme.
fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let host = host.trim();
    if scheme.is_empty() || authority.is_empty() || host.is_empty() || authority.contains('/') {
        return false;
    }
    if authority.eq_ignore_ascii_case(host) {
        return true;
    }
    strip_default_port(scheme, authority).eq_ignore_ascii_case(strip_default_port(scheme, host))
}

/// The first host of the first `X-Forwarded-Host` header (a chain of proxies lists the
/// client's first).
fn forwarded_host(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("x-forwarded-host")?.to_str().ok()?;
    value.split(',').next().map(str::trim)
}

impl CorsConfig {
    /// Checks the request's `Origin` header.
    ///
    /// A request without `Origin` is allowed ([`OriginCheck::NoOrigin`]).
    /// An empty `Origin`, one with characters outside visible ASCII, or
    /// several `Origin` headers → [`OriginCheck::Denied`]. For
    /// [`AllowedOrigins::SameOrigin`] the `Host` header is used, and the
    /// `X-Forwarded-Host` a proxy adds; an HTTP/2 request carries its
    /// authority in the URI instead, see [`CorsConfig::check_request`].
    /// [`AllowedOrigins::Disabled`] treats every request as one without `Origin`.
    pub fn check(&self, headers: &HeaderMap) -> OriginCheck {
        self.check_with_host(headers, || headers.get(HOST).and_then(|h| h.to_str().ok()))
    }

    /// Like [`CorsConfig::check`], taking the host from the `Host` header
    /// or, when there is none (HTTP/2), from the request URI's authority.
    pub fn check_request<B>(&self, request: &::http::Request<B>) -> OriginCheck {
        self.check_parts(request.uri(), request.headers())
    }

    /// [`CorsConfig::check_request`] for a request whose body is not there yet (its head's URI
    /// and headers).
    pub fn check_parts(&self, uri: &::http::Uri, headers: &HeaderMap) -> OriginCheck {
        self.check_with_host(headers, || match headers.get(HOST) {
            Some(h) => h.to_str().ok(),
            None => uri.authority().map(|a| a.as_str()),
        })
    }

    /// `host` is asked only for a same-origin check: most requests (every one of a non-browser
    /// client) carry no `Origin`, and each header lookup costs (bench/ANALYSIS.md).
    fn check_with_host<'h>(
        &self,
        headers: &HeaderMap,
        host: impl FnOnce() -> Option<&'h str>,
    ) -> OriginCheck {
        let mut origins = headers.get_all(ORIGIN).iter();
        let Some(value) = origins.next() else {
            return OriginCheck::NoOrigin;
        };
        if let AllowedOrigins::Disabled = self.allowed_origins {
            return OriginCheck::NoOrigin;
        }
        if origins.next().is_some() || value.is_empty() || !is_visible_ascii(value.as_bytes()) {
            return OriginCheck::Denied;
        }
        let Ok(origin) = value.to_str() else {
            return OriginCheck::Denied;
        };
        let allowed = match &self.allowed_origins {
            // Behind a proxy that rewrote `Host`, the page's host is the forwarded one (as
            // python-engineio's default). Safe to trust for this check: a page cannot set the
            // header on a WebSocket handshake, and setting it on a request makes the browser ask
            // first with a preflight, which this check refuses.
            AllowedOrigins::SameOrigin => {
                host().is_some_and(|host| same_origin(origin, host))
                    || forwarded_host(headers).is_some_and(|host| same_origin(origin, host))
            }
            AllowedOrigins::Any => true,
            AllowedOrigins::List(list) => list.iter().any(|o| o == "*" || o == origin),
            AllowedOrigins::Predicate(predicate) => predicate(origin),
            AllowedOrigins::Disabled => true,
        };
        if allowed {
            OriginCheck::Allowed(value.clone())
        } else {
            OriginCheck::Denied
        }
    }

    /// Adds the CORS headers of a response: for an allowed origin,
    /// `Access-Control-Allow-Origin` (the request's origin echoed, never
    /// `*`) and, when [`credentials`](Self::credentials),
    /// `Access-Control-Allow-Credentials: true`; nothing for `NoOrigin` or
    /// `Denied`. In every case `Vary: Origin` is added (unless the `Vary`
    /// headers already list `Origin` or `*`), since the answer depends on it.
    pub fn apply(&self, check: &OriginCheck, response_headers: &mut HeaderMap) {
        if let AllowedOrigins::Disabled = self.allowed_origins {
            return;
        }
        if let OriginCheck::Allowed(origin) = check {
            response_headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            if self.credentials {
                response_headers.insert(
                    ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
        }
        add_vary(response_headers, "Origin");
    }

    /// The answer to an `OPTIONS` preflight request.
    ///
    /// python-engineio answers `200 OK`; this answers `204 No Content` with
    /// an empty body (browsers accept both). Headers: those of
    /// [`apply`](Self::apply), `Access-Control-Allow-Methods: OPTIONS, GET,
    /// POST`, `Access-Control-Allow-Headers` echoing the request's
    /// `Access-Control-Request-Headers` if present, and
    /// `Access-Control-Max-Age` if [`max_age`](Self::max_age) is set.
    ///
    /// Like python-engineio's headers, the methods/headers are sent whatever
    /// the check; a `Denied` check gets no `Access-Control-Allow-Origin`, so
    /// the browser fails the preflight. A caller that prefers to reject a
    /// denied origin outright can answer with
    /// [`error_response`](super::error::error_response) instead.
    pub fn preflight_response(&self, check: &OriginCheck, request_headers: &HeaderMap) -> Response {
        let mut response = Response::new(Bytes::new());
        *response.status_mut() = StatusCode::NO_CONTENT;
        if let AllowedOrigins::Disabled = self.allowed_origins {
            return response;
        }
        let headers = response.headers_mut();
        self.apply(check, headers);
        headers.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        for requested in request_headers.get_all(ACCESS_CONTROL_REQUEST_HEADERS) {
            headers.append(ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
        }
        if let Some(max_age) = self.max_age {
            headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(max_age));
        }
        response
    }
}

/// Appends `token` to the `Vary` headers unless already listed (or `*`).
fn add_vary(headers: &mut HeaderMap, token: &'static str) {
    let present = headers.get_all(VARY).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .map(str::trim)
                .any(|t| t == "*" || t.eq_ignore_ascii_case(token))
        })
    });
    if !present {
        headers.append(VARY, HeaderValue::from_static(token));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                ::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    fn allowed(origin: &'static str) -> OriginCheck {
        OriginCheck::Allowed(HeaderValue::from_static(origin))
    }

    fn config(allowed_origins: AllowedOrigins) -> CorsConfig {
        CorsConfig {
            allowed_origins,
            ..CorsConfig::default()
        }
    }

    #[test]
    fn defaults() {
        let c = CorsConfig::default();
        assert!(matches!(c.allowed_origins, AllowedOrigins::SameOrigin));
        assert!(c.credentials);
        assert_eq!(c.max_age, None);
    }

    #[test]
    fn no_origin_is_allowed() {
        let c = CorsConfig::default();
        let check = c.check(&headers(&[("host", "example.com")]));
        assert_eq!(check, OriginCheck::NoOrigin);
        assert!(check.is_allowed());
        assert_eq!(
            config(AllowedOrigins::List(vec![])).check(&HeaderMap::new()),
            OriginCheck::NoOrigin
        );
    }

    #[test]
    fn same_origin_with_host() {
        let c = CorsConfig::default();
        let ok = |origin: &'static str, host: &str| {
            c.check(&headers(&[("origin", origin), ("host", host)])) == allowed(origin)
        };
        assert!(ok("http://example.com", "example.com"));
        assert!(ok("https://example.com", "example.com")); // scheme ignored
        assert!(ok("http://Example.COM:8080", "example.com:8080"));
        assert!(ok("http://localhost:3000", "localhost:3000"));
        assert!(ok("http://[::1]:5000", "[::1]:5000"));
        assert!(ok("http://example.com", "example.com:80"));
        assert!(ok("https://example.com:443", "example.com"));

        let denied = |origin: &str, host: &str| {
            c.check(&headers(&[("origin", origin), ("host", host)])) == OriginCheck::Denied
        };
        assert!(denied("http://evil.com", "example.com"));
        assert!(denied("http://example.com:8080", "example.com"));
        assert!(denied("http://example.com", "example.com:8080"));
        assert!(denied("http://example.com.evil.com", "example.com"));
        assert!(denied("http://example.com/", "example.com"));
        assert!(denied("example.com", "example.com"));
        assert!(denied("null", "example.com"));
        // No Host header: nothing to compare with.
        assert_eq!(
            c.check(&headers(&[("origin", "http://example.com")])),
            OriginCheck::Denied
        );
    }

    #[test]
    fn same_origin_http2_authority() {
        let c = CorsConfig::default();
        let req = ::http::Request::builder()
            .uri("https://example.com:8443/socket.io/?EIO=4")
            .header("origin", "https://example.com:8443")
            .body(())
            .unwrap();
        assert_eq!(c.check_request(&req), allowed("https://example.com:8443"));
        let req = ::http::Request::builder()
            .uri("/socket.io/?EIO=4")
            .header("origin", "https://example.com")
            .header("host", "example.com")
            .body(())
            .unwrap();
        assert_eq!(c.check_request(&req), allowed("https://example.com"));
        let req = ::http::Request::builder()
            .uri("/socket.io/?EIO=4")
            .header("origin", "https://example.com")
            .body(())
            .unwrap();
        assert_eq!(c.check_request(&req), OriginCheck::Denied);
    }

    #[test]
    fn list() {
        let c = config(AllowedOrigins::List(vec![
            "http://localhost:3000".into(),
            "https://app.example.com".into(),
        ]));
        let h = |o| headers(&[("origin", o), ("host", "api.example.com")]);
        assert_eq!(
            c.check(&h("http://localhost:3000")),
            allowed("http://localhost:3000")
        );
        assert_eq!(
            c.check(&h("https://app.example.com")),
            allowed("https://app.example.com")
        );
        assert_eq!(c.check(&h("https://localhost:3000")), OriginCheck::Denied);
        assert_eq!(c.check(&h("http://localhost:3001")), OriginCheck::Denied);
        assert_eq!(c.check(&h("https://api.example.com")), OriginCheck::Denied);
        let star = config(AllowedOrigins::List(vec!["*".into()]));
        assert_eq!(star.check(&h("http://x.y")), allowed("http://x.y"));
    }

    #[test]
    fn any() {
        let c = config(AllowedOrigins::Any);
        assert_eq!(
            c.check(&headers(&[("origin", "http://anything.test:1234")])),
            allowed("http://anything.test:1234")
        );
        assert_eq!(c.check(&headers(&[("origin", "null")])), allowed("null"));
    }

    #[test]
    fn predicate() {
        let c = config(AllowedOrigins::Predicate(Arc::new(|o: &str| {
            o.ends_with(".example.com")
        })));
        assert_eq!(
            c.check(&headers(&[("origin", "https://a.example.com")])),
            allowed("https://a.example.com")
        );
        assert_eq!(
            c.check(&headers(&[("origin", "https://example.org")])),
            OriginCheck::Denied
        );
        assert_eq!(format!("{:?}", c.allowed_origins), "Predicate(..)");
        let c2 = c.clone();
        assert!(format!("{c2:?}").contains("Predicate(..)"));
    }

    #[test]
    fn bad_characters_denied() {
        let c = config(AllowedOrigins::Any);
        for bad in [
            &b"http://a b.com"[..],
            b"http://a\tb.com",
            b"http://\xc3\xa9.com",
            b"http://x.com\x80",
            b"",
        ] {
            let mut h = HeaderMap::new();
            h.insert(ORIGIN, HeaderValue::from_bytes(bad).unwrap());
            assert_eq!(c.check(&h), OriginCheck::Denied, "{bad:?}");
        }
        // Several Origin headers.
        let h = headers(&[("origin", "http://a.com"), ("origin", "http://b.com")]);
        assert_eq!(c.check(&h), OriginCheck::Denied);
    }

    #[test]
    fn apply_headers() {
        let c = CorsConfig::default();
        let mut h = HeaderMap::new();
        c.apply(&allowed("http://localhost:3000"), &mut h);
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "http://localhost:3000");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(h[VARY], "Origin");
        assert_eq!(h.len(), 3);
        // Idempotent.
        c.apply(&allowed("http://localhost:3000"), &mut h);
        assert_eq!(h.get_all(VARY).iter().count(), 1);
        assert_eq!(h.len(), 3);

        let no_creds = CorsConfig {
            credentials: false,
            ..config(AllowedOrigins::Any)
        };
        let mut h = HeaderMap::new();
        h.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
        no_creds.apply(&allowed("http://a.com"), &mut h);
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "http://a.com");
        assert!(h.get(ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
        let vary: Vec<_> = h.get_all(VARY).iter().collect();
        assert_eq!(vary, ["Accept-Encoding", "Origin"]);

        for check in [OriginCheck::NoOrigin, OriginCheck::Denied] {
            let mut h = HeaderMap::new();
            c.apply(&check, &mut h);
            assert!(h.get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
            assert!(h.get(ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
            assert_eq!(h[VARY], "Origin");
            assert_eq!(h.len(), 1);
        }
    }

    #[test]
    fn preflight() {
        let c = CorsConfig {
            max_age: Some(600),
            ..CorsConfig::default()
        };
        let req = headers(&[
            ("origin", "http://example.com"),
            ("host", "example.com"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type, x-custom"),
        ]);
        let check = c.check(&req);
        assert_eq!(check, allowed("http://example.com"));
        let r = c.preflight_response(&check, &req);
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert!(r.body().is_empty());
        let h = r.headers();
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "http://example.com");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], "OPTIONS, GET, POST");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_HEADERS], "content-type, x-custom");
        assert_eq!(h[ACCESS_CONTROL_MAX_AGE], "600");
        assert_eq!(h[VARY], "Origin");
        assert!(h.get(::http::header::CONTENT_LENGTH).is_none());
        assert_eq!(h.len(), 6);
    }

    #[test]
    fn preflight_minimal_and_denied() {
        let c = CorsConfig::default();
        let req = headers(&[("origin", "http://evil.com"), ("host", "example.com")]);
        let check = c.check(&req);
        assert_eq!(check, OriginCheck::Denied);
        let r = c.preflight_response(&check, &req);
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let h = r.headers();
        assert!(h.get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
        assert!(h.get(ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
        assert!(h.get(ACCESS_CONTROL_ALLOW_HEADERS).is_none());
        assert!(h.get(ACCESS_CONTROL_MAX_AGE).is_none());
        assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], "OPTIONS, GET, POST");
        assert_eq!(h[VARY], "Origin");
    }
}
