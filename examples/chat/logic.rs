//! The chat itself, written once for every runtime: payloads, validation, the table of names,
//! room keys, the page, and what each event does. Handlers here do not send anything: they return
//! the acknowledgement and the emits to make ([`Out`]), and the runtime's glue in `chat.rs` sends
//! those (with `.await` on tokio and smol, `.send()` on threads). Everything they ask of sockio
//! (rooms, sessions) is synchronous on every runtime, through [`ChatSocket`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sockio::core::api::ConnectRefused;
use sockio::core::engineio::Sid;
use sockio::core::payload::{self, Args};

/// Everyone joins this room on connecting, and cannot leave it.
const LOBBY: &str = "lobby";
const MAX_NAME_CHARS: usize = 20;
const MAX_ROOM_CHARS: usize = 24;
const MAX_ROOMS_PER_USER: usize = 10;
const MAX_TEXT_CHARS: usize = 1000;
const MAX_IMAGE_BYTES: usize = 512 * 1024;

/// The page and its assets, compiled into the binary so the example runs from any directory.
const INDEX_HTML: &str = include_str!("index.html");
/// `/static/<name>` → (body, content type). `socket.io.min.js` is the official browser client,
/// vendored so the page needs no CDN; its license is served next to it.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "chat.js",
        include_str!("static/chat.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "chat.css",
        include_str!("static/chat.css"),
        "text/css; charset=utf-8",
    ),
    (
        "socket.io.min.js",
        include_str!("static/socket.io.min.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "LICENSE-socket.io-client",
        include_str!("static/LICENSE-socket.io-client"),
        "text/plain; charset=utf-8",
    ),
];

// ----- payloads: plain serde types; sockio turns them into Socket.IO arguments -----------------

/// What the page sends as `auth` when it connects.
#[derive(Deserialize)]
struct Auth {
    name: String,
    /// A secret the page made when it loaded, the same on each of its reconnections: a page
    /// whose connection dropped without the server noticing (a network change) takes its name
    /// back from its own old socket, which still holds it until the heartbeat times it out.
    #[serde(default)]
    resume: Option<String>,
}

/// The longest `resume` secret kept.
const MAX_RESUME_CHARS: usize = 64;

/// Sent as the `data` of a refused connection (`err.data` in the page's `connect_error`).
#[derive(Serialize)]
struct Refusal {
    detail: String,
    /// A free name to offer instead, when the wanted one is taken.
    suggestion: Option<String>,
}

/// Per-socket data kept by sockio (python-socketio's `save_session`/`get_session`).
#[derive(Serialize, Deserialize)]
pub struct Session {
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
pub struct Joined {
    room: String,
    users: Vec<String>,
}

/// The acknowledgement of `message` and `image`: when the server accepted it.
#[derive(Serialize)]
pub struct Sent {
    at: u64,
}

#[derive(Deserialize)]
pub struct NewMessage {
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
pub struct NewImage {
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

// ----- what the chat needs from sockio, and what it asks to send --------------------------------

/// What the chat asks of a socket and its server (namespace `/`). The same methods exist on every
/// runtime's `Socket`; [`chat_socket!`] implements this trait for one.
pub trait ChatSocket {
    fn sid(&self) -> &Sid;
    /// The rooms of socket `sid`; empty once it is gone.
    fn rooms_of(&self, sid: &Sid) -> Vec<String>;
    /// The sockets in `room`.
    fn participants(&self, room: &str) -> Vec<Sid>;
    fn session_of(&self, sid: &Sid) -> Option<Session>;
    fn save_session(&self, session: &Session) -> Result<(), String>;
    fn enter_room(&self, room: &str) -> Result<(), String>;
    fn leave_room(&self, room: &str) -> Result<(), String>;
}

/// Implements [`ChatSocket`] for a runtime's `Socket` type (the method names are the same on all).
macro_rules! chat_socket {
    ($socket:ty) => {
        impl $crate::logic::ChatSocket for $socket {
            fn sid(&self) -> &sockio::core::engineio::Sid {
                <$socket>::sid(self)
            }
            fn rooms_of(&self, sid: &sockio::core::engineio::Sid) -> Vec<String> {
                self.server().rooms(sid)
            }
            fn participants(&self, room: &str) -> Vec<sockio::core::engineio::Sid> {
                self.server().participants(room)
            }
            fn session_of(
                &self,
                sid: &sockio::core::engineio::Sid,
            ) -> Option<$crate::logic::Session> {
                self.server().get_session(sid).ok()
            }
            fn save_session(&self, session: &$crate::logic::Session) -> Result<(), String> {
                <$socket>::save_session(self, session).map_err(|e| e.to_string())
            }
            fn enter_room(&self, room: &str) -> Result<(), String> {
                <$socket>::enter_room(self, room).map_err(|e| e.to_string())
            }
            fn leave_room(&self, room: &str) -> Result<(), String> {
                <$socket>::leave_room(self, room).map_err(|e| e.to_string())
            }
        }
    };
}
pub(crate) use chat_socket;

/// One emit a handler asks for: `event` with `args` to everyone in `room` (a chat room's key, or
/// a sid for one socket), except `skip`.
pub struct Out {
    pub event: &'static str,
    pub args: Args,
    pub room: String,
    pub skip: Option<Sid>,
}

/// What a handler asks for: emits, in order, then sockets to disconnect.
#[derive(Default)]
pub struct Outs {
    pub emits: Vec<Out>,
    /// The old sockets of pages that came back under their own name (see `Auth::resume`).
    pub disconnect: Vec<Sid>,
}

impl Outs {
    /// To everyone in `room` but `socket` (python-socketio's `skip_sid`).
    fn broadcast<T: Serialize>(
        &mut self,
        socket: &impl ChatSocket,
        room: String,
        event: &'static str,
        data: &T,
    ) {
        self.push(event, data, room, Some(socket.sid().clone()));
    }

    /// To everyone in `room`.
    fn emit_to_room<T: Serialize>(&mut self, room: String, event: &'static str, data: &T) {
        self.push(event, data, room, None);
    }

    /// To `socket` alone (the room named after its sid).
    fn emit_to_socket<T: Serialize>(
        &mut self,
        socket: &impl ChatSocket,
        event: &'static str,
        data: &T,
    ) {
        self.push(event, data, socket.sid().to_string(), None);
    }

    fn push<T: Serialize>(
        &mut self,
        event: &'static str,
        data: &T,
        room: String,
        skip: Option<Sid>,
    ) {
        // Fails only for data serde cannot encode, a programming error: logged, not shown to users.
        match payload::to_args(data) {
            Ok(args) => self.emits.push(Out {
                event,
                args,
                room,
                skip,
            }),
            Err(error) => eprintln!("cannot encode {event}: {error}"),
        }
    }
}

// ----- state -----------------------------------------------------------------------------------

/// Who holds a name: the socket, and the secret of the page it came from.
struct Holder {
    sid: Sid,
    resume: Option<String>,
}

/// The names in use: lowercased name → its holder. Cloned into every handler.
#[derive(Clone, Default)]
pub struct Chat {
    names: Arc<Mutex<HashMap<String, Holder>>>,
    /// Held from counting a user's rooms to entering the new one: one client's `join` events
    /// are handled side by side, and each would otherwise pass the count before any entered.
    joins: Arc<Mutex<()>>,
}

impl Chat {
    fn names(&self) -> MutexGuard<'_, HashMap<String, Holder>> {
        // A panicking handler must not make the chat unusable for everyone else.
        self.names
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes `name` for `socket`, or says why not. Checking and taking happen under one lock, so
    /// two people connecting with the same name at the same moment cannot both get it. A page
    /// coming back with the secret its name was taken with gets it back: the old socket to
    /// disconnect is returned.
    fn claim(
        &self,
        socket: &impl ChatSocket,
        name: &str,
        resume: Option<String>,
    ) -> Result<Option<Sid>, ConnectRefused> {
        let mut names = self.names();
        let key = name_key(name);
        // A connected socket is always in the room named after its sid; if the holder is in no
        // room at all, it is gone (it left, or never finished connecting), and the name is free
        // again.
        let taken = |key: &str| {
            names
                .get(key)
                .is_some_and(|holder| !socket.rooms_of(&holder.sid).is_empty())
        };
        let resumed = taken(&key)
            && resume.is_some()
            && names
                .get(&key)
                .is_some_and(|holder| holder.resume == resume);
        if resumed {
            let old = names.insert(
                key,
                Holder {
                    sid: socket.sid().clone(),
                    resume,
                },
            );
            return Ok(old.map(|holder| holder.sid));
        }
        if taken(&key) {
            let suggestion = (2..100).map(|n| format!("{name}{n}")).find(|candidate| {
                candidate.chars().count() <= MAX_NAME_CHARS && !taken(&name_key(candidate))
            });
            return Err(ConnectRefused::new("name taken").with_data(Refusal {
                detail: format!("Someone is already called {name:?}."),
                suggestion,
            }));
        }
        names.insert(
            key,
            Holder {
                sid: socket.sid().clone(),
                resume,
            },
        );
        Ok(None)
    }

    /// Frees `name` if `sid` still holds it; false when another socket holds it now.
    fn release(&self, name: &str, sid: &Sid) -> bool {
        let mut names = self.names();
        let key = name_key(name);
        match names.get(&key) {
            Some(holder) if &holder.sid == sid => {
                names.remove(&key);
                true
            }
            Some(_) => false,
            None => true,
        }
    }

    /// The names of the users in chat room `room`, sorted (python-socketio's
    /// `get_participants`, then each one's session), leaving out `leaving`: a socket whose
    /// disconnect handler runs is still in its rooms.
    fn users_in(&self, socket: &impl ChatSocket, room: &str, leaving: Option<&Sid>) -> Vec<String> {
        let mut users: Vec<String> = socket
            .participants(&room_key(room))
            .iter()
            .filter(|sid| Some(*sid) != leaving)
            .filter_map(|sid| socket.session_of(sid).map(|s| s.name))
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
fn chat_rooms(socket: &impl ChatSocket) -> Vec<String> {
    socket
        .rooms_of(socket.sid())
        .iter()
        .filter_map(|key| key.strip_prefix("chat:"))
        .map(str::to_owned)
        .collect()
}

fn is_in(socket: &impl ChatSocket, room: &str) -> bool {
    socket.rooms_of(socket.sid()).contains(&room_key(room))
}

/// The user name of `socket`, from its session.
fn name_of(socket: &impl ChatSocket) -> Result<String, String> {
    socket
        .session_of(socket.sid())
        .map(|session| session.name)
        .ok_or_else(|| "not signed in".to_owned())
}

fn now_ms() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    since_epoch.as_millis() as u64
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
    // Invisible characters and direction overrides would let "bob\u{200b}" pass for "bob", or
    // a name turn the page's text around it.
    if name.chars().any(is_invisible) {
        return refuse("Names cannot contain invisible or direction characters.".to_owned());
    }
    Ok(name.to_owned())
}

/// Which name `name` counts as when names are compared: lowercase, without variation selectors
/// (which emoji need, so names may hold them, but which show nothing after a letter: "bob" with
/// one must not pass for "bob"). A chat with real stakes would compare names by their Unicode
/// confusable skeleton instead.
fn name_key(name: &str) -> String {
    name.chars()
        .filter(|&c| !is_variation_selector(c))
        .collect::<String>()
        .to_lowercase()
}

fn is_variation_selector(c: char) -> bool {
    matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}')
}

/// The common characters that show nothing (zero-width spaces and joiners, the soft hyphen,
/// the byte-order mark, word joiners, fillers, tags, interlinear annotation marks, line and
/// paragraph separators) or turn text around (bidirectional marks and overrides). Variation
/// selectors are let through, as emoji need them ([`name_key`] leaves them out).
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

/// Room names are short lowercase words, so "Lobby" and "lobby " are the same room.
fn valid_room(room: &str) -> Result<String, String> {
    let room = room.trim().to_lowercase();
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
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

// Event handlers return a `Result` as their acknowledgement; serde sends `Ok(v)` as `{"Ok": v}` and
// `Err(why)` as `{"Err": why}`. With it come the emits to make, in order.

impl Chat {
    /// A client asks to connect: check its name, then put it in the lobby.
    pub fn connect(
        &self,
        socket: &impl ChatSocket,
        auth: Option<Value>,
    ) -> Result<Outs, ConnectRefused> {
        let auth = auth.and_then(|auth| serde_json::from_value::<Auth>(auth).ok());
        let (wanted, resume) = auth
            .map(|auth| (auth.name, auth.resume))
            .unwrap_or_default();
        let name = valid_name(&wanted)?;
        let resume = resume
            .filter(|secret| !secret.is_empty() && secret.chars().count() <= MAX_RESUME_CHARS);
        let replaced = self.claim(socket, &name, resume)?;
        // These fail only if the socket is already gone; then nobody will see the refusal anyway.
        let entered = socket
            .save_session(&Session { name: name.clone() })
            .and_then(|()| socket.enter_room(&room_key(LOBBY)));
        if entered.is_err() {
            self.release(&name, socket.sid());
            return Err(ConnectRefused::new("connection lost"));
        }
        println!("{name} connected ({})", socket.sid());

        let mut outs = Outs::default();
        // A replaced socket is still in the lobby under the same name until it is disconnected.
        let users = self.users_in(socket, LOBBY, replaced.as_ref());
        let joined = Presence {
            room: LOBBY,
            name: &name,
            users: users.clone(),
            reason: None,
        };
        outs.broadcast(socket, room_key(LOBBY), "user joined", &joined);
        // Emits made before the connect handler returns reach the client right after its
        // connection is accepted, so the page gets this as its first event.
        let welcome = Welcome {
            name: &name,
            room: LOBBY,
            users,
        };
        outs.emit_to_socket(socket, "welcome", &welcome);
        outs.disconnect.extend(replaced);
        Ok(outs)
    }

    /// A socket is gone: free its name and tell every room it was in, with the reason.
    pub fn disconnect(&self, socket: &impl ChatSocket, reason: &str) -> Outs {
        let mut outs = Outs::default();
        // The socket is still in its rooms and still has its session while this handler runs.
        let Ok(name) = name_of(socket) else {
            return outs;
        };
        println!("{name} disconnected ({reason})");
        if !self.release(&name, socket.sid()) {
            // Replaced by the same page's new connection (`Auth::resume`): the user stays.
            return outs;
        }
        for room in chat_rooms(socket) {
            let left = Presence {
                room: &room,
                name: &name,
                users: self.users_in(socket, &room, Some(socket.sid())),
                reason: Some(reason.to_owned()),
            };
            outs.broadcast(socket, room_key(&room), "user left", &left);
        }
        outs
    }

    pub fn join(&self, socket: &impl ChatSocket, room: &str) -> (Result<Joined, String>, Outs) {
        let mut outs = Outs::default();
        let ack = (|| {
            let name = name_of(socket)?;
            let room = valid_room(room)?;
            let joining = self
                .joins
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if !is_in(socket, &room) {
                if chat_rooms(socket).len() >= MAX_ROOMS_PER_USER {
                    return Err(format!("You can be in at most {MAX_ROOMS_PER_USER} rooms."));
                }
                socket.enter_room(&room_key(&room))?;
                let joined = Presence {
                    room: &room,
                    name: &name,
                    users: self.users_in(socket, &room, None),
                    reason: None,
                };
                outs.broadcast(socket, room_key(&room), "user joined", &joined);
            }
            drop(joining);
            let users = self.users_in(socket, &room, None);
            Ok(Joined { room, users })
        })();
        (ack, outs)
    }

    pub fn leave(&self, socket: &impl ChatSocket, room: &str) -> (Result<(), String>, Outs) {
        let mut outs = Outs::default();
        let ack = (|| {
            let name = name_of(socket)?;
            let room = valid_room(room)?;
            if room == LOBBY {
                return Err("Everyone stays in the lobby.".to_owned());
            }
            if !is_in(socket, &room) {
                return Err(format!("You are not in {room}."));
            }
            socket.leave_room(&room_key(&room))?;
            let left = Presence {
                room: &room,
                name: &name,
                users: self.users_in(socket, &room, None),
                reason: Some("left the room".to_owned()),
            };
            // The leaver is out of the room already, so a plain emit to the room reaches exactly
            // the others.
            outs.emit_to_room(room_key(&room), "user left", &left);
            Ok(())
        })();
        (ack, outs)
    }
}

pub fn message(socket: &impl ChatSocket, message: &NewMessage) -> (Result<Sent, String>, Outs) {
    let mut outs = Outs::default();
    let ack = (|| {
        let from = name_of(socket)?;
        let room = &message.room;
        // Never trust the page: it could send to a room it is not in.
        if !is_in(socket, room) {
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
        outs.broadcast(socket, room_key(room), "message", &out);
        Ok(Sent { at })
    })();
    (ack, outs)
}

pub fn image(socket: &impl ChatSocket, image: &NewImage) -> (Result<Sent, String>, Outs) {
    let mut outs = Outs::default();
    let ack = (|| {
        let from = name_of(socket)?;
        if !is_in(socket, &image.room) {
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
        outs.broadcast(socket, room_key(&image.room), "image", &out);
        Ok(Sent { at })
    })();
    (ack, outs)
}

/// "X is typing…": relayed to the room. The page throttles these, and each one is shown for a few
/// seconds only, so a lost one costs nothing and none needs an acknowledgement.
pub fn typing(socket: &impl ChatSocket, room: &str) -> Outs {
    let mut outs = Outs::default();
    if let Ok(name) = name_of(socket)
        && is_in(socket, room)
    {
        let typing = Typing { room, name: &name };
        outs.broadcast(socket, room_key(room), "typing", &typing);
    }
    outs
}

// ----- HTTP ------------------------------------------------------------------------------------

/// Everything that is not Socket.IO: the page and its assets, by path; 404 for the rest.
pub fn page(path: &str) -> http::Response<Bytes> {
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
    match found {
        Some((body, content_type)) => {
            let mut response = http::Response::new(Bytes::from_static(body));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static(content_type),
            );
            response
        }
        None => {
            let mut response = http::Response::new(Bytes::from_static(b"not found"));
            *response.status_mut() = http::StatusCode::NOT_FOUND;
            response
        }
    }
}

/// The port to serve on: `PORT`, else 3000.
pub fn port() -> Result<u16, String> {
    match std::env::var("PORT") {
        Ok(port) => port
            .parse()
            .map_err(|_| format!("PORT={port:?} is not a port number")),
        Err(_) => Ok(3000),
    }
}
