//! HTTP-level helpers for the Engine.IO server side, working on `http` crate
//! values only (no I/O): query-string parsing, the reference server's error
//! responses, CORS, the `io` session cookie and polling-response compression.
//!
//! Note: this module is named `http` like the external `http` crate; the
//! external crate is always referred to as `::http` in this module tree.

pub mod compress;
pub mod cookie;
pub mod cors;
pub mod error;
pub mod header_list;
pub mod query;

/// An HTTP request as seen by the engine: the whole body already buffered.
pub type Request = ::http::Request<bytes::Bytes>;
/// An HTTP response produced by the engine.
pub type Response = ::http::Response<bytes::Bytes>;

/// True when a `name` header line lists `token`: comma-separated over one or more lines,
/// compared case-insensitively byte by byte (RFC 9110 §5.6.1), so a line with other bytes than
/// visible ASCII still counts (`Connection: close, fö`). Allocates nothing.
pub fn lists_token(headers: &::http::HeaderMap, name: &::http::HeaderName, token: &[u8]) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .as_bytes()
            .split(|&b| b == b',')
            .any(|item| item.trim_ascii().eq_ignore_ascii_case(token))
    })
}

pub use compress::{
    ContentEncoding, DEFAULT_COMPRESSION_THRESHOLD, compress_as, maybe_compress, negotiate,
    negotiate_headers,
};
pub use cookie::{CookieConfig, InvalidCookieConfig, SameSite};
pub use cors::{AllowedOrigins, CorsConfig, OriginCheck};
pub use error::{EngineErrorCode, error_response, plain_response, ws_rejection_response};
pub use header_list::HeaderList;
pub use query::Query;
