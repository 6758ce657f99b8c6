//! The sockio chat demo: a multi-room chat with user names, images, typing indicators and
//! delivery confirmations, served with Socket.IO on the same origin by `Server::serve_with`, on
//! tokio (default), smol (`--no-default-features --features smol`) or OS threads
//! (`--no-default-features --features threads`).
//!
//! ```text
//! cargo run --example chat                 # then open http://127.0.0.1:3000/ in two tabs
//! PORT=8080 cargo run --example chat       # another port
//! cargo run --example chat --no-default-features --features threads   # the same chat on threads
//! node examples/chat/smoke-test.js http://127.0.0.1:3000   # scripted check with the Node client
//! node examples/chat/page-test.js http://127.0.0.1:3000 /usr/bin/chromium   # the page, in Chromium
//! ```
//!
//! The chat is written once (`chat/logic.rs`: validation, the table of names, room keys, what
//! each event does and which emits it makes); this file only connects it to a runtime: `async`
//! handlers that `.await` the emits on tokio and smol, plain closures that `.send()` them on
//! threads.
//!
//! What travels between the page (`chat/static/chat.js`) and this server:
//!
//! | page → server            | data                        | acknowledgement                      |
//! |--------------------------|-----------------------------|--------------------------------------|
//! | connect                  | `auth: {name}`              | accepted, or refused with data       |
//! | `join`                   | `"room"`                    | `{Ok: {room, users}}` / `{Err: why}` |
//! | `leave`                  | `"room"`                    | `{Ok: null}` / `{Err: why}`          |
//! | `message`                | `{room, text}`              | `{Ok: {at}}` / `{Err: why}`          |
//! | `image`                  | `{room, data: <binary>}`    | `{Ok: {at}}` / `{Err: why}`          |
//! | `typing`                 | `"room"`                    | none                                 |
//!
//! Server → page: `welcome`, `message`, `image`, `typing`, `user joined`, `user left`.
//!
//! Where the state lives: each socket's user name is in its sockio *session*, the rooms it is in
//! are sockio *rooms*; the only state of our own is the table of names in use (names must be unique
//! across sockets, and nothing in a session can answer "who else is called that?").

#[cfg(any(feature = "tokio", feature = "smol", feature = "threads"))]
#[path = "chat/logic.rs"]
mod logic;

/// The chat on an async runtime: `async` handlers around the shared logic.
#[cfg(any(feature = "tokio", feature = "smol"))]
mod app {
    use bytes::Bytes;
    use serde_json::Value;
    use sockio::{Server, Socket};

    use crate::logic::{self, Chat, NewImage, NewMessage, Outs};

    logic::chat_socket!(Socket);

    /// Sends what a handler asked for, in order. An emit fails only on a programming error (a
    /// reserved event name), never because a client went away, so a failure is logged.
    async fn send(io: &Server, outs: Outs) {
        for out in outs.emits {
            let mut emit = io.emit_args(out.event, out.args).to(&out.room);
            if let Some(skip) = &out.skip {
                emit = emit.skip_sid(skip);
            }
            if let Err(error) = emit.await {
                eprintln!("emit failed: {error}");
            }
        }
        // Gone already is fine: the old socket timed out meanwhile.
        for sid in outs.disconnect {
            let _ = io.disconnect(&sid).await;
        }
    }

    /// The chat server; the same code on tokio and smol.
    pub async fn run() -> Result<(), Box<dyn std::error::Error>> {
        // Defaults suit this chat: same-origin CORS (the page comes from this server), and a
        // 1,000,000-byte message limit, above a 512 KB image even base64-encoded for HTTP polling.
        // One user's events are handled one after the other, so their messages reach the room
        // in the order they were sent (side by side, a second line could overtake the first).
        let io = Server::builder().async_handlers(false).build();
        let chat = Chat::default();

        // Handlers receive the socket and the data. Those that need the table of names each get
        // their own handle on it (a clone of `chat`), moved into the closure.
        let c = chat.clone();
        io.on_connect(move |socket: Socket, _handshake, auth: Option<Value>| {
            let chat = c.clone();
            async move {
                let outs = chat.connect(&socket, auth)?;
                send(socket.server(), outs).await;
                Ok(())
            }
        });
        let c = chat.clone();
        io.on_disconnect(move |socket: Socket, reason| {
            let chat = c.clone();
            async move {
                let outs = chat.disconnect(&socket, &reason.to_string());
                send(socket.server(), outs).await;
            }
        });
        let c = chat.clone();
        io.on("join", move |socket: Socket, room: String| {
            let chat = c.clone();
            async move {
                let (ack, outs) = chat.join(&socket, &room);
                send(socket.server(), outs).await;
                ack
            }
        });
        let c = chat.clone();
        io.on("leave", move |socket: Socket, room: String| {
            let chat = c.clone();
            async move {
                let (ack, outs) = chat.leave(&socket, &room);
                send(socket.server(), outs).await;
                ack
            }
        });
        // These need nothing but the socket (session, rooms) and the data.
        io.on(
            "message",
            |socket: Socket, message: NewMessage| async move {
                let (ack, outs) = logic::message(&socket, &message);
                send(socket.server(), outs).await;
                ack
            },
        );
        io.on("image", |socket: Socket, image: NewImage| async move {
            let (ack, outs) = logic::image(&socket, &image);
            send(socket.server(), outs).await;
            ack
        });
        io.on("typing", |socket: Socket, room: String| async move {
            send(socket.server(), logic::typing(&socket, &room)).await;
        });

        let port = logic::port()?;
        println!("chat on http://127.0.0.1:{port}/ (Ctrl-C to stop)");
        // Socket.IO at /socket.io/, the page for everything else, on the same origin.
        io.serve_with(
            &format!("127.0.0.1:{port}"),
            |request: http::Request<Bytes>| async move { logic::page(request.uri().path()) },
        )
        .await?;
        Ok(())
    }
}

/// The chat on OS threads: plain closures around the shared logic, run on the handler pool.
#[cfg(all(feature = "threads", not(any(feature = "tokio", feature = "smol"))))]
mod app {
    use bytes::Bytes;
    use serde_json::Value;
    use sockio::threads::{Server, Socket};

    use crate::logic::{self, Chat, NewImage, NewMessage, Outs};

    logic::chat_socket!(Socket);

    /// Sends what a handler asked for, in order (blocking until queued on every recipient's
    /// connection, not until delivered). A failure is a programming error, logged.
    fn send(io: &Server, outs: Outs) {
        for out in outs.emits {
            let mut emit = io.emit_args(out.event, out.args).to(&out.room);
            if let Some(skip) = &out.skip {
                emit = emit.skip_sid(skip);
            }
            if let Err(error) = emit.send() {
                eprintln!("emit failed: {error}");
            }
        }
        // Gone already is fine: the old socket timed out meanwhile.
        for sid in outs.disconnect {
            let _ = io.disconnect(&sid);
        }
    }

    /// The chat server on threads: the same handlers, blocking instead of `async`.
    pub fn run() -> Result<(), Box<dyn std::error::Error>> {
        // One user's events one after the other, as on tokio and smol (message order).
        let io = Server::builder().async_handlers(false).build();
        let chat = Chat::default();

        let c = chat.clone();
        io.on_connect(move |socket: Socket, _handshake, auth: Option<Value>| {
            let outs = c.connect(&socket, auth)?;
            send(socket.server(), outs);
            Ok(())
        });
        let c = chat.clone();
        io.on_disconnect(move |socket: Socket, reason| {
            send(socket.server(), c.disconnect(&socket, &reason.to_string()));
        });
        let c = chat.clone();
        io.on("join", move |socket: Socket, room: String| {
            let (ack, outs) = c.join(&socket, &room);
            send(socket.server(), outs);
            ack
        });
        let c = chat.clone();
        io.on("leave", move |socket: Socket, room: String| {
            let (ack, outs) = c.leave(&socket, &room);
            send(socket.server(), outs);
            ack
        });
        io.on("message", |socket: Socket, message: NewMessage| {
            let (ack, outs) = logic::message(&socket, &message);
            send(socket.server(), outs);
            ack
        });
        io.on("image", |socket: Socket, image: NewImage| {
            let (ack, outs) = logic::image(&socket, &image);
            send(socket.server(), outs);
            ack
        });
        io.on("typing", |socket: Socket, room: String| {
            send(socket.server(), logic::typing(&socket, &room));
        });

        let port = logic::port()?;
        println!("chat on http://127.0.0.1:{port}/ (Ctrl-C to stop)");
        // Socket.IO at /socket.io/, the page for everything else, on the same origin.
        io.serve_with(
            &format!("127.0.0.1:{port}"),
            |request: http::Request<Bytes>| logic::page(request.uri().path()),
        )?;
        Ok(())
    }
}

/// `cargo run --example chat` runs on tokio; add `--no-default-features --features smol` for smol,
/// or `--no-default-features --features threads` for OS threads.
#[cfg(feature = "tokio")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt::init();
    tokio::runtime::Runtime::new()?.block_on(app::run())
}

#[cfg(all(feature = "smol", not(feature = "tokio")))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt::init();
    smol::block_on(app::run())
}

#[cfg(all(feature = "threads", not(any(feature = "tokio", feature = "smol"))))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt::init();
    app::run()
}

#[cfg(not(any(feature = "tokio", feature = "smol", feature = "threads")))]
fn main() {
    eprintln!("the chat demo needs one of the features tokio (default), smol or threads");
    std::process::exit(1);
}
