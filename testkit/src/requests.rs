//! Requests as tests and benchmarks hand them to a server directly, without a client.

use bytes::Bytes;

/// The headers a client's WebSocket upgrade request carries (the key is RFC 6455's example).
pub const WEBSOCKET_UPGRADE_HEADERS: [(&str, &str); 4] = [
    ("connection", "Upgrade"),
    ("upgrade", "websocket"),
    ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("sec-websocket-version", "13"),
];

/// A `GET` of `path_and_query` with [`WEBSOCKET_UPGRADE_HEADERS`] and no body: a WebSocket
/// handshake (`/socket.io/?EIO=4&transport=websocket`) or an upgrade of a polling session.
pub fn websocket_upgrade(path_and_query: &str) -> http::Request<Bytes> {
    let mut request = http::Request::get(path_and_query);
    for (name, value) in WEBSOCKET_UPGRADE_HEADERS {
        request = request.header(name, value);
    }
    request
        .body(Bytes::new())
        .expect("a valid WebSocket upgrade request")
}
