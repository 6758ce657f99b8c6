//! The messages servers and emitters exchange over a broker, in python-socketio's JSON dialect
//! (5.15.1 and later; see `PROTOCOL.md` §3), so Python and Rust servers and emitters can share one
//! channel.
//!
//! Every message is a JSON object with a `method` key. [`Message::decode`] is total: anything
//! that is not such an object, or names an unknown method, or carries malformed fields, is a
//! [`DecodeError`] that the listener logs and skips; nothing panics on what a foreign publisher
//! sends.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::payload::Args;
use crate::socketio::packet::placeholder_out_of_range;

/// Why a message from the broker was not understood. The listener logs it and skips the message
/// (as python-socketio does); the others keep flowing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not JSON (pre-5.14 Python servers publish pickle, which no other language can read).
    #[error("not a JSON message (a python-socketio older than 5.14 publishes pickle)")]
    NotJson,
    /// JSON, but not an object with a string `method`.
    #[error("no `method` in the message")]
    NoMethod,
    /// A method this version does not know.
    #[error("unknown method `{0}`")]
    UnknownMethod(String),
    /// A required field is missing or has the wrong type.
    #[error("field `{0}` is missing or malformed")]
    Field(&'static str),
    /// An attachment is not standard base64.
    #[error("attachment {0} is not valid base64")]
    Attachment(usize),
    /// A binary placeholder refers to an attachment the message does not carry.
    #[error("a binary placeholder refers to attachment {0}, which the message does not carry")]
    Placeholder(u64),
    /// A binary placeholder whose `num` is missing or not a non-negative integer.
    #[error("a binary placeholder without an attachment number")]
    PlaceholderWithoutNumber,
    /// JSON nested deeper than any client's arguments may be, with the message's own levels.
    #[error("nested deeper than {0} levels of arrays and objects")]
    TooDeep(usize),
    /// A kombu envelope whose body is not JSON (a python-socketio older than 5.14 publishes
    /// pickle through kombu).
    #[error(
        "a kombu message of content type `{0}`, not JSON (a python-socketio older than 5.14 publishes pickle)"
    )]
    KombuContentType(String),
    /// A kombu envelope whose body is encoded in a way kombu's Redis transport does not use.
    #[error("a kombu message with body encoding `{0}`")]
    KombuBodyEncoding(String),
}

/// Where an emit's acknowledgement goes back to: the originating host registered `id`, and the
/// host that owns `sid` sends the answer as a [`Message::Callback`] addressed to that host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteAck {
    /// The client (or, as python-socketio allows, the room) the emit went to, as the emitting
    /// host wrote it: python-socketio's room may be a number, and it looks the answer up by that
    /// same value, so the answer echoes it unchanged.
    pub sid: Value,
    /// Its namespace.
    pub namespace: String,
    /// The originating host's callback id.
    pub id: u64,
}

/// One broker message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Message {
    /// Emit `event` with `args` to the clients of `namespace` in any of `rooms` (all of them when
    /// empty), except those in (or named by) `skip`.
    Emit {
        event: String,
        args: Args,
        namespace: String,
        rooms: Vec<String>,
        skip: Vec<String>,
        callback: Option<RemoteAck>,
        host_id: Option<String>,
    },
    /// Disconnect `sid` from `namespace`, on whichever host holds it.
    Disconnect {
        sid: String,
        namespace: String,
        host_id: Option<String>,
    },
    /// Put `sid` into `room`, on whichever host holds it.
    EnterRoom {
        sid: String,
        room: String,
        namespace: String,
        host_id: Option<String>,
    },
    /// Take `sid` out of `room`, on whichever host holds it.
    LeaveRoom {
        sid: String,
        room: String,
        namespace: String,
        host_id: Option<String>,
    },
    /// Empty `room` on every host.
    CloseRoom {
        room: String,
        namespace: String,
        host_id: Option<String>,
    },
    /// A client's answer to an emit with a callback, for the host `host_id` that made the emit.
    Callback {
        host_id: String,
        /// The [`RemoteAck::sid`] of the emit, echoed.
        sid: Value,
        namespace: String,
        id: u64,
        args: Args,
    },
}

impl Message {
    /// The publishing host, when it said (foreign publishers may not).
    pub fn host_id(&self) -> Option<&str> {
        match self {
            Message::Emit { host_id, .. }
            | Message::Disconnect { host_id, .. }
            | Message::EnterRoom { host_id, .. }
            | Message::LeaveRoom { host_id, .. }
            | Message::CloseRoom { host_id, .. } => host_id.as_deref(),
            Message::Callback { host_id, .. } => Some(host_id),
        }
    }

    /// Whether the host `me` acts on this message. A host handles its own emits, disconnects and
    /// room changes before publishing them, so it skips their echo; a callback is the opposite:
    /// only the host it names acts on it.
    pub fn is_for(&self, me: &str) -> bool {
        match self {
            Message::Callback { host_id, .. } => host_id == me,
            other => other.host_id() != Some(me),
        }
    }

    /// The method name on the wire.
    pub fn method(&self) -> &'static str {
        match self {
            Message::Emit { .. } => "emit",
            Message::Disconnect { .. } => "disconnect",
            Message::EnterRoom { .. } => "enter_room",
            Message::LeaveRoom { .. } => "leave_room",
            Message::CloseRoom { .. } => "close_room",
            Message::Callback { .. } => "callback",
        }
    }

    /// The JSON bytes to publish.
    pub fn encode(&self) -> Vec<u8> {
        let value = match self {
            Message::Emit {
                event,
                args,
                namespace,
                rooms,
                skip,
                callback,
                host_id,
            } => {
                let (data, binary) = encode_data(args);
                json!({
                    "method": "emit",
                    "event": event,
                    "data": data,
                    "binary": binary,
                    "namespace": namespace,
                    "room": one_or_list(rooms),
                    "skip_sid": one_or_list(skip),
                    "callback": callback.as_ref().map(|c| json!([c.sid, c.namespace, c.id])),
                    "host_id": host_id,
                })
            }
            Message::Disconnect {
                sid,
                namespace,
                host_id,
            } => json!({
                "method": "disconnect",
                "sid": sid,
                "namespace": namespace,
                "host_id": host_id,
            }),
            Message::EnterRoom {
                sid,
                room,
                namespace,
                host_id,
            }
            | Message::LeaveRoom {
                sid,
                room,
                namespace,
                host_id,
            } => json!({
                "method": self.method(),
                "sid": sid,
                "room": room,
                "namespace": namespace,
                "host_id": host_id,
            }),
            Message::CloseRoom {
                room,
                namespace,
                host_id,
            } => json!({
                "method": "close_room",
                "room": room,
                "namespace": namespace,
                "host_id": host_id,
            }),
            Message::Callback {
                host_id,
                sid,
                namespace,
                id,
                args,
            } => {
                // python-socketio sends callback arguments as a plain list (it cannot send
                // bytes there); binary answers use the emit's `binary` form, which only sockio
                // reads.
                let (data, binary) = encode_data(args);
                let mut value = json!({
                    "method": "callback",
                    "host_id": host_id,
                    "sid": sid,
                    "namespace": namespace,
                    "id": id,
                    "args": data,
                });
                if binary {
                    value["binary"] = Value::Bool(true);
                }
                value
            }
        };
        // Serializing a `Value` cannot fail.
        serde_json::to_vec(&value).unwrap_or_default()
    }

    /// Parses one message from the broker. Also accepts the message as a JSON string holding
    /// the JSON object (a publisher that gave kombu's JSON serializer python-socketio's
    /// `json.dumps(message)` encodes it once more), and either inside kombu's envelope, as
    /// kombu's Redis transport publishes it ([`kombu`](super::kombu)).
    ///
    /// Halves of UTF-16 surrogate pairs escaped alone (Python's `json.dumps` writes them for a
    /// string that holds one) read as U+FFFD, as in packets from clients.
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        let map = parse_object(bytes)?;
        if super::kombu::is_envelope(&map) {
            // The body is the message itself, never an envelope again.
            return Self::decode_object(parse_object(&super::kombu::unwrap(&map)?)?);
        }
        Self::decode_object(map)
    }

    fn decode_object(map: Map<String, Value>) -> Result<Message, DecodeError> {
        let method = map
            .get("method")
            .and_then(Value::as_str)
            .ok_or(DecodeError::NoMethod)?;
        let host_id = optional_str(&map, "host_id")?;
        // python-socketio defaults a missing namespace to "/".
        let namespace = optional_str(&map, "namespace")?.unwrap_or_else(|| "/".to_owned());
        match method {
            "emit" => Ok(Message::Emit {
                event: required_str(&map, "event")?,
                args: decode_data(&map)?,
                namespace,
                rooms: rooms_field(&map)?,
                skip: one_or_list_field(&map, "skip_sid")?,
                callback: decode_callback(&map)?,
                host_id,
            }),
            "disconnect" => Ok(Message::Disconnect {
                sid: required_str(&map, "sid")?,
                namespace,
                host_id,
            }),
            "enter_room" | "leave_room" => {
                let sid = required_str(&map, "sid")?;
                let room = required_room(&map, "room")?;
                Ok(if method == "enter_room" {
                    Message::EnterRoom {
                        sid,
                        room,
                        namespace,
                        host_id,
                    }
                } else {
                    Message::LeaveRoom {
                        sid,
                        room,
                        namespace,
                        host_id,
                    }
                })
            }
            "close_room" => Ok(Message::CloseRoom {
                room: required_room(&map, "room")?,
                namespace,
                host_id,
            }),
            "callback" => Ok(Message::Callback {
                host_id: host_id.ok_or(DecodeError::Field("host_id"))?,
                sid: map
                    .get("sid")
                    .filter(|sid| room_name(sid).is_some())
                    .cloned()
                    .ok_or(DecodeError::Field("sid"))?,
                namespace,
                id: map
                    .get("id")
                    .and_then(Value::as_u64)
                    .ok_or(DecodeError::Field("id"))?,
                args: decode_args(&map, "args")?,
            }),
            other => Err(DecodeError::UnknownMethod(other.to_owned())),
        }
    }
}

fn required_str(map: &Map<String, Value>, key: &'static str) -> Result<String, DecodeError> {
    map.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(DecodeError::Field(key))
}

/// A room name as python-socketio may publish it: a string, or a number (Python rooms are any
/// hashable value, and an application's `enter_room(sid, user.id)` publishes `"room": 42`),
/// which names the room of the same decimal text here.
fn room_name(value: &Value) -> Option<String> {
    match value {
        Value::String(name) => Some(name.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn required_room(map: &Map<String, Value>, key: &'static str) -> Result<String, DecodeError> {
    map.get(key)
        .and_then(room_name)
        .ok_or(DecodeError::Field(key))
}

/// Nesting a message may have: a client's arguments may be as deep as its packet decoder reads
/// (127 levels, the packet's own array among them), and a message holds their list (the
/// packet's array) inside its object and, with binary attachments, inside one more list.
const MAX_MESSAGE_DEPTH: usize = 127 + 2;

/// The JSON object in `bytes`, or in the JSON string `bytes` holds (see [`Message::decode`]).
fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, DecodeError> {
    let parse = |text: &str| {
        crate::socketio::json::parse_nested(text, MAX_MESSAGE_DEPTH).map_err(|_| {
            if crate::socketio::json::nesting_depth(text) > MAX_MESSAGE_DEPTH {
                DecodeError::TooDeep(MAX_MESSAGE_DEPTH)
            } else {
                DecodeError::NotJson
            }
        })
    };
    let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::NotJson)?;
    let mut value = parse(text)?;
    if let Value::String(inner) = &value {
        value = parse(inner)?;
    }
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(DecodeError::NoMethod),
    }
}

fn optional_str(
    map: &Map<String, Value>,
    key: &'static str,
) -> Result<Option<String>, DecodeError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(DecodeError::Field(key)),
    }
}

/// `null` for none, a string for one, a list for several: what python-socketio publishes.
fn one_or_list(items: &[String]) -> Value {
    match items {
        [] => Value::Null,
        [one] => Value::String(one.clone()),
        many => Value::from(many.to_vec()),
    }
}

fn one_or_list_field(
    map: &Map<String, Value>,
    key: &'static str,
) -> Result<Vec<String>, DecodeError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(room_name)
            .collect::<Option<Vec<_>>>()
            .ok_or(DecodeError::Field(key)),
        Some(one) => room_name(one)
            .map(|one| vec![one])
            .ok_or(DecodeError::Field(key)),
    }
}

/// An emit's rooms: none (`null` or missing) is everyone. An empty list names no room; here it
/// would read as none, and reach everyone, where python-socketio's `get_participants` fails on it
/// and the emit reaches nobody: refused (python-socketio never publishes one; another publisher's
/// empty selection must not become a broadcast).
fn rooms_field(map: &Map<String, Value>) -> Result<Vec<String>, DecodeError> {
    if matches!(map.get("room"), Some(Value::Array(items)) if items.is_empty()) {
        return Err(DecodeError::Field("room"));
    }
    one_or_list_field(map, "room")
}

fn decode_callback(map: &Map<String, Value>) -> Result<Option<RemoteAck>, DecodeError> {
    match map.get("callback") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(parts)) => match parts.as_slice() {
            // The first part is the emit's room, which may be a number (see `room_name`).
            [room, Value::String(namespace), id] if room_name(room).is_some() => {
                Ok(Some(RemoteAck {
                    sid: room.clone(),
                    namespace: namespace.clone(),
                    id: id.as_u64().ok_or(DecodeError::Field("callback"))?,
                }))
            }
            _ => Err(DecodeError::Field("callback")),
        },
        Some(_) => Err(DecodeError::Field("callback")),
    }
}

/// `data` is always the argument list; with binary, `[<list with placeholders>, b64, b64, ...]`.
fn encode_data(args: &Args) -> (Value, bool) {
    let list = Value::from(args.values.clone());
    if args.attachments.is_empty() {
        return (list, false);
    }
    let mut data = Vec::with_capacity(1 + args.attachments.len());
    data.push(list);
    data.extend(
        args.attachments
            .iter()
            .map(|bytes| Value::String(STANDARD.encode(bytes))),
    );
    (Value::Array(data), true)
}

fn decode_data(map: &Map<String, Value>) -> Result<Args, DecodeError> {
    decode_args(map, "data")
}

/// Arguments from `key` (`data` of an emit, `args` of a callback), in plain or binary form.
fn decode_args(map: &Map<String, Value>, key: &'static str) -> Result<Args, DecodeError> {
    let data = map.get(key).cloned().unwrap_or(Value::Null);
    let binary = match map.get("binary") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(DecodeError::Field("binary")),
    };
    let (list, attachments) = if binary {
        let Value::Array(mut parts) = data else {
            return Err(DecodeError::Field(key));
        };
        if parts.is_empty() {
            return Err(DecodeError::Field(key));
        }
        let list = parts.remove(0);
        let attachments = parts
            .into_iter()
            .enumerate()
            .map(|(i, part)| {
                part.as_str()
                    .and_then(|text| STANDARD.decode(text).ok())
                    .map(Bytes::from)
                    .ok_or(DecodeError::Attachment(i))
            })
            .collect::<Result<Vec<_>, _>>()?;
        (list, attachments)
    } else {
        (data, Vec::new())
    };
    let values = match list {
        // A one-element list is one argument; python-socketio turns an emit's `None` into no
        // argument. A callback's `args` is the client's answer as it came (`[null]` is one).
        Value::Array(values) if key == "data" && values.len() == 1 && values[0].is_null() => {
            Vec::new()
        }
        Value::Array(values) => values,
        // The legacy form: `data` itself is the one argument.
        Value::Null => Vec::new(),
        single => vec![single],
    };
    check_placeholders(&values, attachments.len())?;
    Ok(Args::from_parts(values, attachments))
}

/// Every placeholder must name an attachment the message carries, or a client's decoder would
/// reject the packet. A message without attachments goes out as a text packet, whose objects are
/// all data.
fn check_placeholders(values: &[Value], attachments: usize) -> Result<(), DecodeError> {
    if attachments == 0 {
        return Ok(());
    }
    match placeholder_out_of_range(values, attachments) {
        Some(num) => Err(num.as_u64().map_or(
            DecodeError::PlaceholderWithoutNumber,
            DecodeError::Placeholder,
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_json(value: Value) -> Result<Message, DecodeError> {
        Message::decode(&serde_json::to_vec(&value).unwrap())
    }

    /// What python-socketio 5.18 publishes for `emit('ev', {'a': b'\x01'}, room='r')`
    /// (PROTOCOL.md §3).
    #[test]
    fn decodes_python_binary_emit() {
        let message = decode_json(json!({
            "method": "emit", "event": "ev",
            "data": [[{"a": {"_placeholder": true, "num": 0}}], "AQ=="], "binary": true,
            "namespace": "/", "room": "r", "skip_sid": null, "callback": null,
            "host_id": "0123456789abcdef0123456789abcdef"
        }))
        .unwrap();
        let Message::Emit {
            event,
            args,
            rooms,
            skip,
            callback,
            host_id,
            ..
        } = message
        else {
            panic!("not an emit");
        };
        assert_eq!(event, "ev");
        assert_eq!(
            args.values,
            vec![json!({"a": {"_placeholder": true, "num": 0}})]
        );
        assert_eq!(args.attachments, vec![Bytes::from_static(&[1])]);
        assert_eq!(rooms, vec!["r".to_owned()]);
        assert!(skip.is_empty());
        assert_eq!(callback, None);
        assert_eq!(host_id.as_deref(), Some("0123456789abcdef0123456789abcdef"));
    }

    /// An emit to an empty list of rooms from another publisher reaches nobody (python-socketio
    /// fails on it), instead of every client of the namespace; `null` is still everyone.
    #[test]
    fn an_emit_to_an_empty_room_list_is_refused() {
        let empty = json!({"method": "emit", "event": "e", "data": [], "room": []});
        assert_eq!(decode_json(empty), Err(DecodeError::Field("room")));
        let everyone =
            decode_json(json!({"method": "emit", "event": "e", "data": [], "room": null}));
        assert!(matches!(everyone, Ok(Message::Emit { rooms, .. }) if rooms.is_empty()));
        let no_skip = json!({"method": "emit", "event": "e", "data": [], "skip_sid": []});
        assert!(decode_json(no_skip).is_ok());
    }

    /// python-socketio rooms are any hashable value: `enter_room(sid, 42)` and `emit(..,
    /// room=42)` publish a number, which names the room "42" here instead of failing the message.
    #[test]
    fn numeric_rooms_from_python_name_their_decimal_text() {
        let emit = decode_json(json!({
            "method": "emit", "event": "e", "data": [], "namespace": "/",
            "room": 42, "skip_sid": ["s", 7], "callback": [42, "/", 3], "host_id": "h"
        }))
        .unwrap();
        let Message::Emit {
            rooms,
            skip,
            callback,
            ..
        } = emit
        else {
            panic!("not an emit");
        };
        assert_eq!(rooms, vec!["42".to_owned()]);
        assert_eq!(skip, vec!["s".to_owned(), "7".to_owned()]);
        // The callback's room is echoed as it came: python-socketio looks its answer up by it.
        assert_eq!(callback.map(|c| c.sid), Some(json!(42)));
        let rooms = decode_json(json!({
            "method": "emit", "event": "e", "data": [], "room": [1, "two", 3.5]
        }))
        .unwrap();
        assert!(matches!(rooms, Message::Emit { rooms, .. } if rooms == ["1", "two", "3.5"]));
        for method in ["enter_room", "leave_room"] {
            let message = decode_json(json!({
                "method": method, "sid": "s", "room": 42, "namespace": "/", "host_id": "h"
            }))
            .unwrap();
            assert!(matches!(
                message,
                Message::EnterRoom { ref room, .. } | Message::LeaveRoom { ref room, .. }
                    if room == "42"
            ));
        }
        let close = decode_json(json!({"method": "close_room", "room": 42})).unwrap();
        assert!(matches!(close, Message::CloseRoom { room, .. } if room == "42"));
        // Other values are still refused.
        for room in [json!(true), json!({"a": 1}), json!([["nested"]])] {
            let message = json!({"method": "emit", "event": "e", "data": [], "room": room});
            assert_eq!(decode_json(message), Err(DecodeError::Field("room")));
        }
    }

    /// A client that answers `null` gives the callback one `null` argument, as python-socketio
    /// calls `cb(None)`; an emit's `[null]` is no argument, as python-socketio sends it.
    #[test]
    fn a_callback_answer_of_null_is_one_argument() {
        let answer = decode_json(json!({
            "method": "callback", "host_id": "h", "sid": "s", "namespace": "/", "id": 1,
            "args": [null]
        }))
        .unwrap();
        assert!(matches!(answer, Message::Callback { args, .. } if args.values == [json!(null)]));
        let emit = decode_json(json!({"method": "emit", "event": "e", "data": [null]})).unwrap();
        assert!(matches!(emit, Message::Emit { args, .. } if args.values.is_empty()));
    }

    #[test]
    fn accepts_kombus_double_encoding() {
        let inner = r#"{"method": "close_room", "room": "r", "namespace": "/", "host_id": "h"}"#;
        let outer = serde_json::to_vec(&Value::String(inner.to_owned())).unwrap();
        assert_eq!(
            Message::decode(&outer).unwrap(),
            Message::CloseRoom {
                room: "r".into(),
                namespace: "/".into(),
                host_id: Some("h".into())
            }
        );
    }

    /// What python-socketio 5.18's `KombuManager('redis://', channel='captest')` published for
    /// `emit("ev", {"a": [1, "é"]}, namespace="/", room="r1")` (kombu 5.7, captured from Redis):
    /// kombu's envelope around the JSON, `text/plain`, base64.
    #[test]
    fn reads_kombus_redis_envelope() {
        let captured = br#"{"body": "eyJtZXRob2QiOiAiZW1pdCIsICJldmVudCI6ICJldiIsICJkYXRhIjogW3siYSI6IFsxLCAiXHUwMGU5Il19XSwgImJpbmFyeSI6IGZhbHNlLCAibmFtZXNwYWNlIjogIi8iLCAicm9vbSI6ICJyMSIsICJza2lwX3NpZCI6IG51bGwsICJjYWxsYmFjayI6IG51bGwsICJob3N0X2lkIjogIjYzN2U5Mjk2OGJmMDRiZjk4NjQ2ZTY3ZTliNWUxOWRhIn0=", "content-encoding": "utf-8", "content-type": "text/plain", "headers": {}, "properties": {"delivery_mode": 2, "delivery_info": {"exchange": "captest", "routing_key": ""}, "priority": 0, "body_encoding": "base64", "delivery_tag": "e7d2a9e2-9317-4f5f-b465-81520f04a009"}}"#;
        match Message::decode(captured).unwrap() {
            Message::Emit {
                event,
                args,
                namespace,
                rooms,
                host_id,
                ..
            } => {
                assert_eq!(event, "ev");
                assert_eq!(args.values, vec![json!({"a": [1, "é"]})]);
                assert_eq!(namespace, "/");
                assert_eq!(rooms, vec!["r1".to_owned()]);
                assert_eq!(host_id.as_deref(), Some("637e92968bf04bf98646e67e9b5e19da"));
            }
            other => panic!("not an emit: {other:?}"),
        }
        // What sockio publishes reads back the same; an envelope in an envelope is not a message.
        let message = Message::CloseRoom {
            room: "r".into(),
            namespace: "/".into(),
            host_id: Some("h".into()),
        };
        let wrapped = super::super::kombu::wrap(&message.encode(), "socketio", "t.1");
        assert_eq!(Message::decode(&wrapped).unwrap(), message);
        let twice = super::super::kombu::wrap(&wrapped, "socketio", "t.2");
        assert_eq!(Message::decode(&twice), Err(DecodeError::NoMethod));
    }

    /// Python's `json.dumps('\ud83d')` (a `str` holding half a surrogate pair) writes the half as
    /// an escape, which a Rust string cannot hold: it reads as U+FFFD instead of failing the
    /// message, single- or kombu-double-encoded.
    #[test]
    fn a_lone_surrogate_from_python_reads_as_the_replacement_character() {
        let single = br#"{"method": "emit", "event": "e", "data": ["\ud83d"], "namespace": "/"}"#;
        let double =
            serde_json::to_vec(&Value::String(String::from_utf8(single.to_vec()).unwrap()))
                .unwrap();
        for bytes in [&single[..], &double[..]] {
            match Message::decode(bytes).unwrap() {
                Message::Emit { args, .. } => assert_eq!(args.values, vec![json!("\u{FFFD}")]),
                other => panic!("not an emit: {other:?}"),
            }
        }
    }

    #[test]
    fn data_forms_follow_python_socketio() {
        let args =
            |data: Value| match decode_json(json!({"method": "emit", "event": "e", "data": data}))
                .unwrap()
            {
                Message::Emit { args, .. } => args.values,
                _ => unreachable!(),
            };
        assert_eq!(args(json!(["x"])), vec![json!("x")]);
        assert_eq!(args(json!([1, "two"])), vec![json!(1), json!("two")]);
        assert_eq!(args(json!([[1, "two"]])), vec![json!([1, "two"])]);
        assert_eq!(args(json!([])), Vec::<Value>::new());
        assert_eq!(args(json!([null])), Vec::<Value>::new());
        // Legacy: not a list, passed through as the one argument.
        assert_eq!(args(json!({"k": 1})), vec![json!({"k": 1})]);
        assert_eq!(args(json!("plain")), vec![json!("plain")]);
    }

    #[test]
    fn round_trips_every_method() {
        let messages = vec![
            Message::Emit {
                event: "e".into(),
                args: Args::from_parts(
                    vec![
                        json!("a"),
                        json!({"b": {"_placeholder": true, "num": 1}}),
                        json!({"_placeholder": true, "num": 0}),
                    ],
                    vec![Bytes::from_static(b"\x00\xff"), Bytes::from_static(b"hi")],
                ),
                namespace: "/chat".into(),
                rooms: vec!["r1".into(), "r2".into()],
                skip: vec!["s1".into()],
                callback: Some(RemoteAck {
                    sid: "s2".into(),
                    namespace: "/chat".into(),
                    id: 7,
                }),
                host_id: Some("h".into()),
            },
            Message::Disconnect {
                sid: "s".into(),
                namespace: "/".into(),
                host_id: None,
            },
            Message::EnterRoom {
                sid: "s".into(),
                room: "r".into(),
                namespace: "/".into(),
                host_id: Some("h".into()),
            },
            Message::LeaveRoom {
                sid: "s".into(),
                room: "r".into(),
                namespace: "/".into(),
                host_id: Some("h".into()),
            },
            Message::CloseRoom {
                room: "r".into(),
                namespace: "/".into(),
                host_id: Some("h".into()),
            },
            Message::Callback {
                host_id: "h".into(),
                sid: "s".into(),
                namespace: "/".into(),
                id: 3,
                args: Args::from_parts(vec![json!(1), json!("x")], vec![]),
            },
            Message::Callback {
                host_id: "h".into(),
                sid: "s".into(),
                namespace: "/".into(),
                id: 4,
                args: Args::from_parts(
                    vec![json!({"_placeholder": true, "num": 0})],
                    vec![Bytes::from_static(b"\x01")],
                ),
            },
        ];
        for message in messages {
            assert_eq!(Message::decode(&message.encode()).unwrap(), message);
        }
    }

    #[test]
    fn encodes_python_shapes() {
        let encoded: Value = serde_json::from_slice(
            &Message::Emit {
                event: "e".into(),
                args: Args::from_parts(vec![json!("x")], vec![]),
                namespace: "/".into(),
                rooms: vec![],
                skip: vec!["a".into(), "b".into()],
                callback: None,
                host_id: Some("h".into()),
            }
            .encode(),
        )
        .unwrap();
        assert_eq!(
            encoded,
            json!({"method": "emit", "event": "e", "data": ["x"], "binary": false,
                   "namespace": "/", "room": null, "skip_sid": ["a", "b"], "callback": null,
                   "host_id": "h"})
        );
    }

    #[test]
    fn host_filtering() {
        let emit =
            decode_json(json!({"method": "close_room", "room": "r", "host_id": "me"})).unwrap();
        assert!(!emit.is_for("me"));
        assert!(emit.is_for("other"));
        let foreign = decode_json(json!({"method": "close_room", "room": "r"})).unwrap();
        assert!(
            foreign.is_for("me"),
            "messages without host_id are for everyone"
        );
        let callback = decode_json(
            json!({"method": "callback", "host_id": "me", "sid": "s", "namespace": "/", "id": 1, "args": []}),
        )
        .unwrap();
        assert!(callback.is_for("me"));
        assert!(!callback.is_for("other"));
    }

    #[test]
    fn rejects_what_it_cannot_use() {
        assert_eq!(
            Message::decode(b"\x80\x04pickle"),
            Err(DecodeError::NotJson)
        );
        assert_eq!(decode_json(json!([1])), Err(DecodeError::NoMethod));
        assert_eq!(decode_json(json!({"x": 1})), Err(DecodeError::NoMethod));
        assert_eq!(
            decode_json(json!({"method": "explode"})),
            Err(DecodeError::UnknownMethod("explode".into()))
        );
        assert_eq!(
            decode_json(json!({"method": "emit", "data": []})),
            Err(DecodeError::Field("event"))
        );
        assert_eq!(
            decode_json(json!({"method": "emit", "event": "e", "binary": true,
                               "data": [[{"_placeholder": true, "num": 1}], "AQ=="]})),
            Err(DecodeError::Placeholder(1))
        );
        // Any `_placeholder: true` object is one to a client's parser, extra keys or not.
        assert_eq!(
            decode_json(json!({"method": "emit", "event": "e", "binary": true,
                               "data": [[{"_placeholder": true, "num": "0", "x": 1}], "AQ=="]})),
            Err(DecodeError::PlaceholderWithoutNumber)
        );
        // Without attachments the emit goes out as a text packet: such an object is data.
        let lookalike = json!({"_placeholder": true, "num": 0});
        let Ok(Message::Emit { args, .. }) =
            decode_json(json!({"method": "emit", "event": "e", "data": [lookalike.clone()]}))
        else {
            panic!("a placeholder-shaped object without attachments is data");
        };
        assert_eq!(args.values, vec![lookalike]);
        assert_eq!(
            decode_json(
                json!({"method": "emit", "event": "e", "binary": true, "data": [[], "!!"]})
            ),
            Err(DecodeError::Attachment(0))
        );
        assert_eq!(
            decode_json(json!({"method": "emit", "event": "e", "room": false})),
            Err(DecodeError::Field("room"))
        );
        assert_eq!(
            decode_json(json!({"method": "callback", "sid": "s", "id": 1})),
            Err(DecodeError::Field("host_id"))
        );
    }

    /// The deepest arguments a client's packet may carry: `depth` levels of arrays inside the
    /// event's own (the decoder takes a packet as deep as serde_json reads).
    fn deepest_client_argument() -> Value {
        let mut depth = 1;
        loop {
            let nested = format!("{}{}", "[".repeat(depth + 1), "]".repeat(depth + 1));
            let text = format!("2[\"ev\",{nested}]");
            if crate::socketio::decoder::decode_packet(&text).is_err() {
                break;
            }
            depth += 1;
        }
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let text = format!("2[\"ev\",{nested}]");
        let packet = crate::socketio::decoder::decode_packet(&text).unwrap();
        packet.data.unwrap()[1].clone()
    }

    /// Whatever a client may send goes through the broker: the message's own object and lists
    /// around the arguments do not push them over the limit the packet decoder keeps.
    #[test]
    fn the_deepest_arguments_a_client_may_send_cross_the_broker() {
        let deepest = deepest_client_argument();
        let plain = Args {
            values: vec![deepest.clone()],
            attachments: Vec::new(),
        };
        let binary = Args {
            values: vec![deepest, json!({"_placeholder": true, "num": 0})],
            attachments: vec![Bytes::from_static(b"\x01")],
        };
        for args in [plain, binary] {
            let emit = Message::Emit {
                event: "ev".into(),
                args: args.clone(),
                namespace: "/".into(),
                rooms: Vec::new(),
                skip: Vec::new(),
                callback: None,
                host_id: Some("h".into()),
            };
            assert_eq!(Message::decode(&emit.encode()), Ok(emit));
            let callback = Message::Callback {
                host_id: "h".into(),
                sid: "s".into(),
                namespace: "/".into(),
                id: 1,
                args,
            };
            assert_eq!(Message::decode(&callback.encode()), Ok(callback));
        }
    }

    /// Nesting past what any client may send is refused as such, without recursing through it.
    #[test]
    fn a_message_nested_past_the_limit_is_refused() {
        // Inside the message's object and `data` list: one level past the limit, and far past.
        for depth in [MAX_MESSAGE_DEPTH - 1, 100_000] {
            let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let text =
                format!(r#"{{"method":"emit","event":"ev","namespace":"/","data":[{nested}]}}"#);
            assert_eq!(
                Message::decode(text.as_bytes()),
                Err(DecodeError::TooDeep(MAX_MESSAGE_DEPTH))
            );
        }
    }
}
