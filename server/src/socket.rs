//! [`Socket`]: the handle handlers receive for the client's socket in one namespace.

use crate::runtime::Runtime;
use std::sync::Arc;

use bytestring::ByteString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sockio_core::engineio::{Sid, Transport};
use sockio_core::socketio::Handshake;

use crate::error::ServerError;
use crate::server::{Call, Emit, Server};

/// One client's socket in one namespace. Cheap to clone.
#[derive(Clone)]
pub struct Socket<Rt: Runtime> {
    /// A server handle of the socket's connection, not the server's own: handing sockets to
    /// handlers for every event then changes no reference count that other connections' threads
    /// change too (bench/ANALYSIS.md).
    server: Arc<Server<Rt>>,
    namespace: ByteString,
    sid: Sid,
}

impl<Rt: Runtime> std::fmt::Debug for Socket<Rt> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("namespace", &self.namespace)
            .field("sid", &self.sid)
            .finish()
    }
}

impl<Rt: Runtime> Socket<Rt> {
    pub(crate) fn new(server: Arc<Server<Rt>>, namespace: ByteString, sid: Sid) -> Self {
        Socket {
            server,
            namespace,
            sid,
        }
    }

    /// The socket id (python-socketio's `sid`).
    pub fn sid(&self) -> &Sid {
        &self.sid
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The server.
    pub fn server(&self) -> &Server<Rt> {
        &self.server
    }

    /// The handshake request's headers, query and remote address.
    pub fn handshake(&self) -> Option<Arc<Handshake>> {
        let cell = self.server.owner(&self.namespace, &self.sid)?;
        let handshake = cell.lock().conn.handshake().clone();
        Some(handshake)
    }

    /// Emits to this socket only.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Emit<Rt> {
        self.server
            .emit(event, data)
            .namespace(&self.namespace)
            .to(&self.sid)
    }

    /// Emits raw arguments (for relaying what a client sent, binary included) to this socket.
    pub fn emit_args(&self, event: &str, args: sockio_core::payload::Args) -> Emit<Rt> {
        self.server
            .emit_args(event, args)
            .namespace(&self.namespace)
            .to(&self.sid)
    }

    /// Emits to everyone in the namespace (or in rooms set with `.to`) except this socket.
    pub fn broadcast<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Emit<Rt> {
        self.server
            .emit(event, data)
            .namespace(&self.namespace)
            .skip_sid(&self.sid)
    }

    /// Emits to this socket and waits for its acknowledgement.
    pub fn call<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Call<Rt> {
        self.server
            .call(event, data)
            .namespace(&self.namespace)
            .to(&self.sid)
    }

    /// Enters `room`.
    pub fn enter_room(&self, room: &str) -> Result<(), ServerError> {
        self.server.of(&self.namespace).enter_room(&self.sid, room)
    }

    /// Leaves `room`.
    pub fn leave_room(&self, room: &str) -> Result<(), ServerError> {
        self.server.of(&self.namespace).leave_room(&self.sid, room)
    }

    /// The rooms this socket is in.
    pub fn rooms(&self) -> Vec<String> {
        self.server.of(&self.namespace).rooms(&self.sid)
    }

    /// Disconnects this socket from its namespace.
    pub async fn disconnect(&self) -> Result<(), ServerError> {
        self.server.of(&self.namespace).disconnect(&self.sid).await
    }

    /// The transport in use.
    pub fn transport(&self) -> Result<Transport, ServerError> {
        self.server.of(&self.namespace).transport(&self.sid)
    }

    /// The user session.
    pub fn get_session<T: DeserializeOwned>(&self) -> Result<T, ServerError> {
        self.server.of(&self.namespace).get_session(&self.sid)
    }

    /// Saves the user session.
    pub fn save_session<T: Serialize>(&self, session: &T) -> Result<(), ServerError> {
        self.server
            .of(&self.namespace)
            .save_session(&self.sid, session)
    }
}
