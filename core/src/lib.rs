//! # sockio-core
//!
//! The sans-IO protocol engine of sockio: Engine.IO v3 and v4, Socket.IO v4 and v5, with no
//! sockets, no threads, no clock and no randomness of its own. A runtime (tokio, smol, OS threads,
//! or your own event loop) feeds it HTTP requests, WebSocket messages, application commands and the
//! current time, and carries out what it asks for: HTTP responses, WebSocket writes and closes,
//! application events, and one deadline.
//!
//! ## The contract
//!
//! Modelled on quinn-proto and str0m:
//!
//! - **Endpoint / session split.** An [`Endpoint`](socketio::Endpoint) checks each request and makes
//!   handshakes; it owns no sessions. A handshake hands a new
//!   [`Connection`](socketio::Connection) to the driver, which keeps it in its own map and routes
//!   later requests to it ([`Routing::Existing`](socketio::Routing::Existing)). Every connection can
//!   be driven on its own thread or task; there is no lock around all clients.
//! - **Inputs** are `handle_*` methods that take `now: Instant`; commands (`emit`, `ack`,
//!   `disconnect`, ...) too.
//! - **Outputs** are drained with `poll_output` (HTTP responses for request handles, WebSocket
//!   wake-ups), `poll_event` (events for the application) and `poll_ws` (the next WebSocket write,
//!   pulled as fast as the socket takes it), and the next deadline comes from `poll_timeout`.
//! - **Drain rule.** After every input or command, drain `poll_output` and `poll_event` until both
//!   return `None`, then arm one timer for `poll_timeout`. Debug builds assert, at each input, that
//!   the outputs of the one before were drained (commands are not checked).
//! - **After `Closed`** a session or connection has no deadline: a WebSocket's remaining packets
//!   (the close frame at least) wait for [`poll_ws`](socketio::Connection::poll_ws) until they are
//!   written. A driver cuts a socket that has taken nothing for
//!   [`EngineConfig::write_timeout`](engineio::EngineConfig::write_timeout) (as the runtimes do)
//!   and then forgets the connection, whether or not it is finished.
//! - **Broadcast encodes once**: [`EncodedFrames`](socketio::EncodedFrames) serializes a packet
//!   once; every recipient gets reference-counted clones of the same bytes.
//! - **Everything bounded**: POST bodies and WebSocket messages (`max_http_buffer_size`), binary
//!   attachments (count, bytes, completion time), outbound queues (packets and bytes; a client that
//!   does not read is disconnected with a reported reason), pending acknowledgements.
//! - **Types of other crates**: requests and responses are the `http` 1.x crate's, bodies and
//!   binary data `bytes::Bytes`, arguments `serde_json::Value`. `bytes` and `serde_json` are
//!   re-exported; `http` is not (this crate's [`http`] module holds its helpers
//!   for those types), so a driver depends on `http = "1"` itself.
//!
//! ## Example: a Socket.IO v5 client over long-polling, by hand
//!
//! ```
//! use std::time::{Duration, Instant};
//! use bytes::Bytes;
//! use sockio_core::engineio::{Output, RequestId, SequentialSids};
//! use sockio_core::socketio::{Endpoint, Routing, SocketConfig, SocketEvent};
//!
//! let endpoint = Endpoint::new(SocketConfig::default(), SequentialSids::default());
//! let now = Instant::now(); // the driver's clock; the core never reads one
//!
//! // 1. Handshake: GET /socket.io/?EIO=4&transport=polling
//! let get = http::Request::get("/socket.io/?EIO=4&transport=polling").body(Bytes::new()).unwrap();
//! let Routing::Created { mut connection, response, .. } =
//!     endpoint.handle_request(now, RequestId(1), &get, |_| false)
//! else { panic!("expected a handshake") };
//! let open = response.unwrap();
//! assert!(open.body().starts_with(b"0{\"sid\":\"sid-000001\""));
//!
//! // 2. The client joins `/`: POST `40`; the application accepts.
//! let post = http::Request::post("/socket.io/?EIO=4&transport=polling&sid=sid-000001")
//!     .body(Bytes::from_static(b"40")).unwrap();
//! connection.handle_request(now, RequestId(2), &post);
//! while let Some(Output::Respond { response, .. }) = connection.poll_output() {
//!     assert_eq!(response.body().as_ref(), b"ok");
//! }
//! let Some(SocketEvent::Connect { namespace, .. }) = connection.poll_event() else { panic!() };
//! let socket_id = connection.accept_connect(now, &namespace).unwrap();
//!
//! // 3. The client's next poll carries the CONNECT reply with the socket id.
//! let poll = http::Request::get("/socket.io/?EIO=4&transport=polling&sid=sid-000001")
//!     .body(Bytes::new()).unwrap();
//! connection.handle_request(now, RequestId(3), &poll);
//! let Some(Output::Respond { response, .. }) = connection.poll_output() else { panic!() };
//! assert_eq!(response.body().as_ref(), format!("40{{\"sid\":\"{socket_id}\"}}").as_bytes());
//!
//! // 4. Time is an input: 25 s later the server wants to ping.
//! assert_eq!(connection.poll_timeout(), Some(now + Duration::from_secs(25)));
//! ```

#![forbid(unsafe_code)]

/// The cheaply cloneable UTF-8 string type of [`engineio::WsMessage::Text`], re-exported so
/// drivers need not depend on `bytestring` themselves.
pub use bytestring::ByteString;

/// The byte buffers of the API (request bodies, binary messages and attachments).
pub use bytes;
/// The JSON values of the API (event arguments, auth payloads).
pub use serde_json;

pub mod api;
pub mod engineio;
pub mod held_input;
pub mod held_namespaces;
pub mod http;
pub mod hub;
pub mod log_throttle;
pub mod payload;
pub mod pubsub;
pub mod queue;
pub mod small_map;
pub mod socketio;
mod swar;
pub mod timer;
pub mod websocket;
pub mod writer_wait;
