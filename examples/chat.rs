//! The sockio chat demo: a multi-room chat with user names, images, typing indicators and
//! delivery confirmations, served with Socket.IO on the same origin by `Server::serve_with`, on tokio (default) or
//! smol (`--no-default-features --features smol`).
//!
//! ```text
//! cargo run --example chat                 # then open http://127.0.0.1:3000/ in two tabs
//! PORT=8080 cargo run --example chat       # another port
//! node examples/chat/smoke-test.js http://127.0.0.1:3000   # scripted check with the Node client
//! ```
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

/// The chat server on an async runtime (its handlers are `async`).
#[cfg(any(feature = "tokio", feature = "smol"))]
mod app {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, MutexGuard};
    use std::time::{SystemTime, UNIX_EPOCH};

    use bytes::Bytes;
    use http_body_util::Full;
    use serde::{Deserialize, Serialize};
    use serde_json::Value;
    use sockio::{ConnectRefused, ConnectResult, DisconnectReason, Emit, Server, Sid, Socket};

    /// Everyone joins this room on connecting, and cannot leave it.
    const LOBBY: &str = "lobby";
    const MAX_NAME_CHARS: usize = 20;
    const MAX_ROOM_CHARS: usize = 24;
    const MAX_ROOMS_PER_USER: usize = 10;
    const MAX_TEXT_CHARS: usize = 1000;
    const MAX_IMAGE_BYTES: usize = 512 * 1024;

    /// The page and its assets, compiled into the binary so the example runs from any directory.
    const INDEX_HTML: &str = include_str!("chat/index.html");
    /// `/static/<name>` → (body, content type). `socket.io.min.js` is the official browser client,
    /// vendored so the page needs no CDN; its license is served next to it.
    const ASSETS: &[(&str, &str, &str)] = &[
        (
            "chat.js",
            include_str!("chat/static/chat.js"),
            "text/javascript; charset=utf-8",
        ),
        (
            "chat.css",
            include_str!("chat/static/chat.css"),
            "text/css; charset=utf-8",
        ),
        (
            "socket.io.min.js",
            include_str!("chat/static/socket.io.min.js"),
            "text/javascript; charset=utf-8",
        ),
        (
            "LICENSE-socket.io-client",
            include_str!("chat/static/LICENSE-socket.io-client"),
            "text/plain; charset=utf-8",
        ),
    ];

    // ----- payloads: plain serde types; sockio turns them into Socket.IO arguments -----------------

    /// What the page sends as `auth` when it connects.
    #[derive(Deserialize)]
    struct Auth {
        name: String,
    }

    /// Sent as the `data` of a refused connection (`err.data` in the page's `connect_error`).
    #[derive(Serialize)]
    struct Refusal {
        detail: String,
        /// A free name to offer instead, when the wanted one is taken.
        suggestion: Option<String>,
    }

    /// Per-socket data kept by sockio (python-socketio's `save_session`/`get_session`).
    #[derive(Serialize, Deserialize)]
    struct Session {
        name: String,
    }

    /// Sent to a socket once its connection is accepted.
    #[derive(Serialize)]
    struct Welcome<'a> {
        name: &'a str,
        room: &'a str,
        users: Vec<String>,
    }

    /// `user joined` / `user left`. It carries the room's user list after the change, so pages simply
    /// replace theirs instead of keeping their own (which could drift).
    #[derive(Serialize)]
    struct Presence<'a> {
        room: &'a str,
        name: &'a str,
        users: Vec<String>,
        /// Why the user left: "left the room", or the disconnect reason ("transport close", ...).
        reason: Option<String>,
    }

    /// The acknowledgement of `join`.
    #[derive(Serialize)]
    struct Joined {
        room: String,
        users: Vec<String>,
    }

    /// The acknowledgement of `message` and `image`: when the server accepted it.
    #[derive(Serialize)]
    struct Sent {
        at: u64,
    }

    #[derive(Deserialize)]
    struct NewMessage {
        room: String,
        text: String,
    }

    #[derive(Serialize)]
    struct ChatMessage<'a> {
        room: &'a str,
        from: &'a str,
        text: &'a str,
        at: u64,
    }

    /// An image from the page. The JavaScript client sends the ArrayBuffer as a binary attachment,
    /// and a `Bytes` field receives it.
    #[derive(Deserialize)]
    struct NewImage {
        room: String,
        data: Bytes,
    }

    /// An image for the other members of the room; the `Bytes` field travels as binary again.
    #[derive(Serialize)]
    struct ChatImage<'a> {
        room: &'a str,
        from: &'a str,
        mime: &'static str,
        data: Bytes,
        at: u64,
    }

    #[derive(Serialize)]
    struct Typing<'a> {
        room: &'a str,
        name: &'a str,
    }

    // ----- state -----------------------------------------------------------------------------------

    /// The names in use: lowercased name → the socket holding it. Cloned into every handler.
    #[derive(Clone, Default)]
    struct Chat {
        names: Arc<Mutex<HashMap<String, Sid>>>,
    }

    impl Chat {
        fn names(&self) -> MutexGuard<'_, HashMap<String, Sid>> {
            // A panicking handler must not make the chat unusable for everyone else.
            self.names
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }

        /// Takes `name` for `socket`, or says why not. Checking and taking happen under one lock, so
        /// two people connecting with the same name at the same moment cannot both get it.
        fn claim(&self, socket: &Socket, name: &str) -> Result<(), ConnectRefused> {
            let io = socket.server();
            let mut names = self.names();
            let key = name.to_lowercase();
            // A connected socket is always in the room named after its sid; if the holder is in no
            // room at all, it is gone (a client that vanished mid-connect never gets a disconnect
            // event), and the name is free again.
            let taken = |key: &str| names.get(key).is_some_and(|sid| !io.rooms(sid).is_empty());
            if taken(&key) {
                let suggestion = (2..100).map(|n| format!("{name}{n}")).find(|candidate| {
                    candidate.chars().count() <= MAX_NAME_CHARS && !taken(&candidate.to_lowercase())
                });
                return Err(ConnectRefused::new("name taken").with_data(Refusal {
                    detail: format!("Someone is already called {name:?}."),
                    suggestion,
                }));
            }
            names.insert(key, socket.sid().clone());
            Ok(())
        }

        /// Frees `name` if `sid` still holds it.
        fn release(&self, name: &str, sid: &Sid) {
            let mut names = self.names();
            let key = name.to_lowercase();
            if names.get(&key) == Some(sid) {
                names.remove(&key);
            }
        }

        /// The names of the users in chat room `room`, sorted.
        ///
        /// sockio has no "who is in this room" query, so this asks, for each user, whether that
        /// user's socket is in the room. Fine for a demo-sized chat.
        fn users_in(&self, io: &Server, room: &str) -> Vec<String> {
            let key = room_key(room);
            let mut users: Vec<String> = self
                .names()
                .values()
                .filter(|sid| io.rooms(sid).contains(&key))
                .filter_map(|sid| io.get_session::<Session>(sid).ok().map(|s| s.name))
                .collect();
            users.sort_by_key(|name| name.to_lowercase());
            users
        }
    }

    /// The sockio room behind chat room `room`.
    ///
    /// Every socket is also in a room named after its sid, where messages meant for it alone go. The
    /// prefix keeps chat rooms apart from those: without it, a user could "join" someone's sid and read
    /// their private traffic.
    fn room_key(room: &str) -> String {
        format!("chat:{room}")
    }

    /// The chat rooms `socket` is in (its sid room left out).
    fn chat_rooms(socket: &Socket) -> Vec<String> {
        socket
            .rooms()
            .iter()
            .filter_map(|key| key.strip_prefix("chat:"))
            .map(str::to_owned)
            .collect()
    }

    fn is_in(socket: &Socket, room: &str) -> bool {
        socket.rooms().contains(&room_key(room))
    }

    /// The user name of `socket`, from its session.
    fn name_of(socket: &Socket) -> Result<String, String> {
        socket
            .get_session::<Session>()
            .map(|session| session.name)
            .map_err(|_| "not signed in".to_owned())
    }

    fn now_ms() -> u64 {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        since_epoch.as_millis() as u64
    }

    /// Sends an emit. It fails only on a programming error (a reserved event name, data serde cannot
    /// encode), never because a client went away, so a failure is logged rather than shown to users.
    async fn send(emit: Emit) {
        if let Err(error) = emit.await {
            eprintln!("emit failed: {error}");
        }
    }

    // ----- validation ------------------------------------------------------------------------------

    fn valid_name(name: &str) -> Result<String, ConnectRefused> {
        let name = name.trim();
        let refuse = |detail: String| {
            Err(ConnectRefused::new("invalid name").with_data(Refusal {
                detail,
                suggestion: None,
            }))
        };
        if name.is_empty() {
            return refuse("Please choose a name.".to_owned());
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return refuse(format!("Names are at most {MAX_NAME_CHARS} characters."));
        }
        if name.chars().any(char::is_control) {
            return refuse("Names cannot contain control characters.".to_owned());
        }
        Ok(name.to_owned())
    }

    /// Room names are short lowercase words, so "Lobby" and "lobby " are the same room.
    fn valid_room(room: &str) -> Result<String, String> {
        let room = room.trim().to_lowercase();
        let allowed =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
        if room.is_empty() || room.len() > MAX_ROOM_CHARS || !room.chars().all(allowed) {
            return Err(format!(
                "Room names are 1 to {MAX_ROOM_CHARS} letters, digits, '-' or '_'."
            ));
        }
        Ok(room)
    }

    /// The image type, from the file's first bytes. The page sends only the bytes; the type we forward
    /// is what other browsers will trust, so it comes from the bytes themselves, and only formats that
    /// cannot carry scripts (no SVG) are accepted.
    fn image_type(data: &[u8]) -> Option<&'static str> {
        if data.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some("image/png")
        } else if data.starts_with(b"\xff\xd8\xff") {
            Some("image/jpeg")
        } else if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
            Some("image/gif")
        } else if data.len() >= 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WEBP" {
            Some("image/webp")
        } else {
            None
        }
    }

    // ----- handlers --------------------------------------------------------------------------------

    /// A client asks to connect: check its name, then put it in the lobby.
    async fn on_connect(chat: Chat, socket: Socket, auth: Option<Value>) -> ConnectResult {
        let wanted = auth
            .and_then(|auth| serde_json::from_value::<Auth>(auth).ok())
            .map(|auth| auth.name)
            .unwrap_or_default();
        let name = valid_name(&wanted)?;
        chat.claim(&socket, &name)?;
        // These fail only if the socket is already gone; then nobody will see the refusal anyway.
        let entered = socket
            .save_session(&Session { name: name.clone() })
            .and_then(|()| socket.enter_room(&room_key(LOBBY)));
        if entered.is_err() {
            chat.release(&name, socket.sid());
            return Err(ConnectRefused::new("connection lost"));
        }
        println!("{name} connected ({})", socket.sid());

        let io = socket.server();
        let users = chat.users_in(io, LOBBY);
        let joined = Presence {
            room: LOBBY,
            name: &name,
            users: users.clone(),
            reason: None,
        };
        send(socket.broadcast("user joined", &joined).to(room_key(LOBBY))).await;
        // Emits made before the connect handler returns reach the client right after its connection
        // is accepted, so the page gets this as its first event.
        let welcome = Welcome {
            name: &name,
            room: LOBBY,
            users,
        };
        send(socket.emit("welcome", &welcome)).await;
        Ok(())
    }

    /// A socket is gone: free its name and tell every room it was in, with the reason.
    async fn on_disconnect(chat: Chat, socket: Socket, reason: DisconnectReason) {
        // The socket is still in its rooms and still has its session while this handler runs.
        let Ok(name) = name_of(&socket) else {
            return;
        };
        println!("{name} disconnected ({reason})");
        chat.release(&name, socket.sid());
        let io = socket.server();
        for room in chat_rooms(&socket) {
            let left = Presence {
                room: &room,
                name: &name,
                users: chat.users_in(io, &room),
                reason: Some(reason.to_string()),
            };
            send(socket.broadcast("user left", &left).to(room_key(&room))).await;
        }
    }

    // Event handlers return a `Result`; whatever a handler returns is the acknowledgement, and serde
    // sends `Ok(v)` as `{"Ok": v}` and `Err(why)` as `{"Err": why}`.

    async fn on_join(chat: Chat, socket: Socket, room: String) -> Result<Joined, String> {
        let name = name_of(&socket)?;
        let room = valid_room(&room)?;
        let io = socket.server();
        if !is_in(&socket, &room) {
            if chat_rooms(&socket).len() >= MAX_ROOMS_PER_USER {
                return Err(format!("You can be in at most {MAX_ROOMS_PER_USER} rooms."));
            }
            socket
                .enter_room(&room_key(&room))
                .map_err(|e| e.to_string())?;
            let joined = Presence {
                room: &room,
                name: &name,
                users: chat.users_in(io, &room),
                reason: None,
            };
            send(socket.broadcast("user joined", &joined).to(room_key(&room))).await;
        }
        let users = chat.users_in(io, &room);
        Ok(Joined { room, users })
    }

    async fn on_leave(chat: Chat, socket: Socket, room: String) -> Result<(), String> {
        let name = name_of(&socket)?;
        let room = valid_room(&room)?;
        if room == LOBBY {
            return Err("Everyone stays in the lobby.".to_owned());
        }
        if !is_in(&socket, &room) {
            return Err(format!("You are not in {room}."));
        }
        socket
            .leave_room(&room_key(&room))
            .map_err(|e| e.to_string())?;
        let left = Presence {
            room: &room,
            name: &name,
            users: chat.users_in(socket.server(), &room),
            reason: Some("left the room".to_owned()),
        };
        // The leaver is out of the room already, so a plain emit to the room reaches exactly the others.
        send(socket.server().emit("user left", &left).to(room_key(&room))).await;
        Ok(())
    }

    async fn on_message(socket: Socket, message: NewMessage) -> Result<Sent, String> {
        let from = name_of(&socket)?;
        let room = &message.room;
        // Never trust the page: it could send to a room it is not in.
        if !is_in(&socket, room) {
            return Err(format!("You are not in {room}."));
        }
        let text = message.text.trim();
        if text.is_empty() {
            return Err("Empty message.".to_owned());
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(format!("Messages are at most {MAX_TEXT_CHARS} characters."));
        }
        let at = now_ms();
        let out = ChatMessage {
            room,
            from: &from,
            text,
            at,
        };
        // The sender shows its own copy already (pending until this handler's ack arrives).
        send(socket.broadcast("message", &out).to(room_key(room))).await;
        Ok(Sent { at })
    }

    async fn on_image(socket: Socket, image: NewImage) -> Result<Sent, String> {
        let from = name_of(&socket)?;
        if !is_in(&socket, &image.room) {
            return Err(format!("You are not in {}.", image.room));
        }
        // The page checks the size too, but only the server's check counts.
        if image.data.len() > MAX_IMAGE_BYTES {
            return Err(format!("Images are at most {} KB.", MAX_IMAGE_BYTES / 1024));
        }
        let mime = image_type(&image.data).ok_or("Only PNG, JPEG, GIF and WebP images.")?;
        let at = now_ms();
        let out = ChatImage {
            room: &image.room,
            from: &from,
            mime,
            // `Bytes` clones share the buffer: no copy per recipient, and sockio encodes the packet
            // once for the whole room.
            data: image.data.clone(),
            at,
        };
        send(socket.broadcast("image", &out).to(room_key(&image.room))).await;
        Ok(Sent { at })
    }

    /// "X is typing…": relayed to the room. The page throttles these, and each one is shown for a few
    /// seconds only, so a lost one costs nothing and none needs an acknowledgement.
    async fn on_typing(socket: Socket, room: String) {
        let Ok(name) = name_of(&socket) else {
            return;
        };
        if is_in(&socket, &room) {
            let typing = Typing {
                room: &room,
                name: &name,
            };
            send(socket.broadcast("typing", &typing).to(room_key(&room))).await;
        }
    }

    // ----- HTTP ------------------------------------------------------------------------------------

    /// Everything that is not Socket.IO: the page and its assets.
    fn page(request: http::Request<hyper::body::Incoming>) -> http::Response<Full<Bytes>> {
        let path = request.uri().path();
        let found: Option<(&'static [u8], &'static str)> = if path == "/" {
            Some((INDEX_HTML.as_bytes(), "text/html; charset=utf-8"))
        } else {
            path.strip_prefix("/static/").and_then(|file| {
                ASSETS
                    .iter()
                    .find(|(name, _, _)| *name == file)
                    .map(|(_, body, content_type)| (body.as_bytes(), *content_type))
            })
        };
        let mut response = match found {
            Some((body, content_type)) => {
                let mut response = http::Response::new(Full::new(Bytes::from_static(body)));
                if let Ok(value) = http::HeaderValue::from_str(content_type) {
                    response
                        .headers_mut()
                        .insert(http::header::CONTENT_TYPE, value);
                }
                response
            }
            None => http::Response::new(Full::new(Bytes::from_static(b"not found"))),
        };
        if found.is_none() {
            *response.status_mut() = http::StatusCode::NOT_FOUND;
        }
        response
    }

    /// The chat server; the same code on every runtime.
    pub async fn run() -> Result<(), Box<dyn std::error::Error>> {
        // Defaults suit this chat: same-origin CORS (the page comes from this server), and a
        // 1,000,000-byte message limit, above a 512 KB image even base64-encoded for HTTP polling.
        let io = Server::builder().build();
        let chat = Chat::default();

        // Handlers receive the socket and the data. Those that need the table of names each get
        // their own handle on it (a clone of `chat`), moved into the closure.
        let c = chat.clone();
        io.on_connect(move |socket, _handshake, auth| on_connect(c.clone(), socket, auth));
        let c = chat.clone();
        io.on_disconnect(move |socket, reason| on_disconnect(c.clone(), socket, reason));
        let c = chat.clone();
        io.on("join", move |socket, room| on_join(c.clone(), socket, room));
        let c = chat.clone();
        io.on("leave", move |socket, room| {
            on_leave(c.clone(), socket, room)
        });
        // These need nothing but the socket (session, rooms) and the data.
        io.on("message", on_message);
        io.on("image", on_image);
        io.on("typing", on_typing);

        let port: u16 = match std::env::var("PORT") {
            Ok(port) => port
                .parse()
                .map_err(|_| format!("PORT={port:?} is not a port number"))?,
            Err(_) => 3000,
        };
        println!("chat on http://127.0.0.1:{port}/ (Ctrl-C to stop)");
        // Socket.IO at /socket.io/, the page for everything else, on the same origin.
        io.serve_with(&format!("127.0.0.1:{port}"), page).await?;
        Ok(())
    }
}

/// `cargo run --example chat` runs on tokio; add `--no-default-features --features smol` for smol.
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

/// The demo is written for the async runtimes; the threads runtime's version is not written yet.
#[cfg(not(any(feature = "tokio", feature = "smol")))]
fn main() {
    eprintln!("the chat demo needs the tokio (default) or smol feature");
    std::process::exit(1);
}
