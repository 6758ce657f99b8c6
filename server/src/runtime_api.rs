//! The user-facing names a runtime crate exports: [`Server`](crate::Server) and the rest with
//! its runtime filled in, and the shared types. Written once here so tokio's and smol's crates
//! cannot drift apart (each exports exactly this, plus its own runtime type and stream helpers).

/// Expands, in a runtime crate, to its aliases of this crate's generic types for runtime `$rt`
/// (named `$name` in the docs), the re-exports of the runtime-neutral types, and its `engine`
/// module, whose `serve_stream` serves streams implementing `$read + $write` through the
/// hyper adapter `$io`.
#[doc(hidden)]
#[macro_export]
macro_rules! runtime_api {
    ($rt:ident, $name:literal, $($io:ident)::+, $read:path, $write:path) => {
        #[doc = concat!("A Socket.IO server on ", $name, ".")]
        pub type Server = $crate::Server<$rt>;
        /// Builds a [`Server`] with python-socketio's option names.
        pub type ServerBuilder = $crate::ServerBuilder<$rt>;
        /// A client's socket in one namespace, as handlers receive it.
        pub type Socket = $crate::Socket<$rt>;
        /// A namespace's handle, from [`Server::of`](sockio_server::Server::of).
        pub type Namespace = $crate::Namespace<$rt>;
        /// An emit being configured; `.await` it.
        pub type Emit = $crate::Emit<$rt>;
        /// A call being configured; `.await` it for the answer.
        pub type Call = $crate::Call<$rt>;
        /// A write-only client manager for processes that are not servers.
        pub type Emitter = $crate::Emitter<$rt>;
        /// An external emit being configured, from
        /// [`Emitter::emit`](sockio_server::Emitter::emit); `.send().await` it.
        pub type ExternalEmit = $crate::ExternalEmit<$rt>;
        /// The tower layer serving Socket.IO in a tower-based app (hyper; axum on tokio).
        pub type SocketIoLayer = $crate::SocketIoLayer<$rt>;
        /// The service made by [`SocketIoLayer`].
        pub type SocketIoService<S> = $crate::SocketIoService<$rt, S>;

        pub use $crate::{
            AllowedOrigins, Args, BackgroundTask, BoxFuture, CallError, ClientManager,
            ConnectInfo, ConnectRefused, ConnectResult, CookieConfig, DisconnectReason,
            EmitError, Fallback, Handled, Handshake, KeepInHandshake, ListenError, MessageStream,
            NamespaceHandler, PubSubBackend, PublishError, RemoteAddr, Runtime, SameSite,
            ServerError, Sid, SocketIoResponse, Transport, fallback, payload,
        };

        #[doc = concat!(
            "The raw Engine.IO server (no Socket.IO layer), as python-engineio's, on ",
            $name,
            "."
        )]
        pub mod engine {
            #[doc = concat!("A raw Engine.IO server on ", $name, ".")]
            pub type EngineServer = $crate::engine::EngineServer<super::$rt>;
            /// One Engine.IO session, as the server's callbacks receive it.
            pub type EngineSocket = $crate::engine::EngineSocket<super::$rt>;
            pub use $crate::engine::{CloseReason, EngineConfig, PacketData, Sid, Transport};

            #[doc = concat!(
                "Serves one connection of any ",
                $name,
                " stream (a Unix socket, a TLS stream, ...) as HTTP/1.1 with WebSocket \
                 upgrades until the client closes it, as [`serve_stream`](super::serve_stream) \
                 does for a Socket.IO server; other paths get 404."
            )]
            pub async fn serve_stream<S>(
                server: EngineServer,
                stream: S,
                remote: Option<std::net::SocketAddr>,
            ) where
                S: $read + $write + Unpin + Send + 'static,
            {
                server
                    .serve_connection($($io)::+::new(stream), remote)
                    .await;
            }
        }
    };
}
