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

pub use compress::{ContentEncoding, DEFAULT_COMPRESSION_THRESHOLD, maybe_compress, negotiate};
pub use cookie::{CookieConfig, InvalidCookieConfig, SameSite};
pub use cors::{AllowedOrigins, CorsConfig, OriginCheck};
pub use error::{EngineErrorCode, error_response, plain_response, ws_rejection_response};
pub use header_list::HeaderList;
pub use query::Query;
