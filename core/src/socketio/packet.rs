//! Socket.IO packets: `<type>[<attachments>-][<nsp>,][<ackId>][<JSON>]`, the same grammar for
//! protocol v4 (over Engine.IO 3) and v5 (over Engine.IO 4).

use std::cell::Cell;

use bytes::Bytes;
use bytestring::ByteString;
use serde_json::Value;

/// The seven Socket.IO packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PacketKind {
    Connect,
    Disconnect,
    Event,
    Ack,
    /// `ERROR` in protocol v4.
    ConnectError,
    BinaryEvent,
    BinaryAck,
}

impl PacketKind {
    /// The ASCII digit of this type on the wire.
    pub fn as_char(self) -> char {
        match self {
            PacketKind::Connect => '0',
            PacketKind::Disconnect => '1',
            PacketKind::Event => '2',
            PacketKind::Ack => '3',
            PacketKind::ConnectError => '4',
            PacketKind::BinaryEvent => '5',
            PacketKind::BinaryAck => '6',
        }
    }

    /// Inverse of [`as_char`](Self::as_char).
    pub fn from_char(c: char) -> Option<Self> {
        Some(match c {
            '0' => PacketKind::Connect,
            '1' => PacketKind::Disconnect,
            '2' => PacketKind::Event,
            '3' => PacketKind::Ack,
            '4' => PacketKind::ConnectError,
            '5' => PacketKind::BinaryEvent,
            '6' => PacketKind::BinaryAck,
            _ => return None,
        })
    }

    /// True for the two kinds that carry binary attachments.
    pub fn is_binary(self) -> bool {
        matches!(self, PacketKind::BinaryEvent | PacketKind::BinaryAck)
    }
}

/// One Socket.IO packet.
///
/// Binary data travels as separate attachments: `data` holds `{"_placeholder":true,"num":i}` objects
/// where the bytes were, and `attachments[i]` holds the bytes. The core keeps placeholders as they are;
/// the runtime's payload layer swaps them for `bytes::Bytes` values of user types.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    pub kind: PacketKind,
    /// The namespace, `/` by default. For protocol v4 CONNECT packets it may carry a query string
    /// (`/admin?token=x`); the connection layer splits it off.
    pub namespace: ByteString,
    pub ack_id: Option<u64>,
    pub data: Option<Value>,
    pub attachments: Vec<Bytes>,
}

/// The names an EVENT may not use (`isPayloadValid` of the reference parser).
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Why `event` cannot have an event handler of its own, and what to use instead; `None` when it
/// can. No client can send a reserved name (the reference parser refuses them), and `*` is
/// python-socketio's catch-all, which has a registration of its own here: such a handler would
/// be registered and never run. The runtimes' `on` and `on_args` panic with this (a
/// programming error, found where the handler is registered).
pub fn handler_event_refusal(event: &str) -> Option<String> {
    let instead = match event {
        "connect" => {
            "register the connect handler with `on_connect` (python-socketio's \
                      `@sio.on('connect')`)"
        }
        "disconnect" => {
            "register the disconnect handler with `on_disconnect` (python-socketio's \
                         `@sio.on('disconnect')`)"
        }
        "*" => "register a catch-all handler with `on_any` (python-socketio's `@sio.on('*')`)",
        _ if RESERVED_EVENTS.contains(&event) => {
            "it is reserved by Socket.IO: no client can send it, so its handler would never run"
        }
        _ => return None,
    };
    Some(format!(
        "no event handler can be registered for `{event}`: {instead}"
    ))
}

/// The text part and the attachments of an encoded packet; the attachments are the same
/// [`Bytes`] as the packet's (cheap clones).
///
/// The text goes out as one Engine.IO message, then each attachment as a binary message, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedPacket {
    pub text: ByteString,
    pub attachments: Vec<Bytes>,
}

/// The namespace value used when none is written on the wire.
pub(crate) const DEFAULT_NAMESPACE: &str = "/";

fn namespace_of(namespace: &str) -> ByteString {
    if namespace.is_empty() || namespace == DEFAULT_NAMESPACE {
        ByteString::from_static(DEFAULT_NAMESPACE)
    } else {
        ByteString::from(namespace)
    }
}

impl Packet {
    /// A CONNECT packet (`0/admin,{"token":"x"}`). `data` is the auth object (v5); `None` for v4.
    /// An empty namespace means `/`.
    pub fn connect(namespace: &str, data: Option<Value>) -> Packet {
        Packet {
            kind: PacketKind::Connect,
            namespace: namespace_of(namespace),
            ack_id: None,
            data,
            attachments: Vec::new(),
        }
    }

    /// A DISCONNECT packet (`1/admin,`).
    pub fn disconnect(namespace: &str) -> Packet {
        Packet {
            kind: PacketKind::Disconnect,
            namespace: namespace_of(namespace),
            ack_id: None,
            data: None,
            attachments: Vec::new(),
        }
    }

    /// An EVENT packet with `data = [event, ...args]`; a BINARY_EVENT when `attachments` is
    /// non-empty (`args` should then hold the [`placeholder`]s).
    pub fn event(
        namespace: &str,
        event: &str,
        args: Vec<Value>,
        attachments: Vec<Bytes>,
        ack_id: Option<u64>,
    ) -> Packet {
        let mut data = Vec::with_capacity(args.len() + 1);
        data.push(Value::String(event.to_owned()));
        data.extend(args);
        Packet {
            kind: if attachments.is_empty() {
                PacketKind::Event
            } else {
                PacketKind::BinaryEvent
            },
            namespace: namespace_of(namespace),
            ack_id,
            data: Some(Value::Array(data)),
            attachments,
        }
    }

    /// An ACK packet with `data = args`; a BINARY_ACK when `attachments` is non-empty.
    pub fn ack(namespace: &str, ack_id: u64, args: Vec<Value>, attachments: Vec<Bytes>) -> Packet {
        Packet {
            kind: if attachments.is_empty() {
                PacketKind::Ack
            } else {
                PacketKind::BinaryAck
            },
            namespace: namespace_of(namespace),
            ack_id: Some(ack_id),
            data: Some(Value::Array(args)),
            attachments,
        }
    }

    /// A CONNECT_ERROR packet; `data` is `{"message": ...}` (v5, optionally with `"data"`) or a
    /// string (v4).
    pub fn connect_error(namespace: &str, data: Value) -> Packet {
        Packet {
            kind: PacketKind::ConnectError,
            namespace: namespace_of(namespace),
            ack_id: None,
            data: Some(data),
            attachments: Vec::new(),
        }
    }

    /// For EVENT/BINARY_EVENT: the event name, i.e. the first array element as a string. Numbers
    /// are returned as their decimal string, as the reference server stringifies them.
    pub fn event_name(&self) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        if !matches!(self.kind, PacketKind::Event | PacketKind::BinaryEvent) {
            return None;
        }
        match self.data.as_ref()?.as_array()?.first()? {
            Value::String(s) => Some(Cow::Borrowed(s.as_str())),
            Value::Number(n) => Some(Cow::Owned(n.to_string())),
            _ => None,
        }
    }

    /// The arguments: for EVENT/BINARY_EVENT the array elements after the event name, for
    /// ACK/BINARY_ACK the whole array; empty otherwise.
    pub fn args(&self) -> &[Value] {
        let Some(array) = self.data.as_ref().and_then(Value::as_array) else {
            return &[];
        };
        match self.kind {
            PacketKind::Event | PacketKind::BinaryEvent => array.get(1..).unwrap_or(&[]),
            PacketKind::Ack | PacketKind::BinaryAck => array,
            _ => &[],
        }
    }

    /// The kind written on the wire: EVENT and ACK become BINARY_EVENT and BINARY_ACK when the
    /// packet has attachments. BINARY_* kinds stay binary even with zero attachments.
    pub fn wire_kind(&self) -> PacketKind {
        match self.kind {
            PacketKind::Event if !self.attachments.is_empty() => PacketKind::BinaryEvent,
            PacketKind::Ack if !self.attachments.is_empty() => PacketKind::BinaryAck,
            kind => kind,
        }
    }

    /// Encodes the packet as `<type>[<attachments>-][<nsp>,][<ackId>][<JSON>]`.
    ///
    /// The namespace is written (followed by `,`) when it is neither empty nor `/`; it should
    /// start with `/` and contain no `,` for the peer to read it back. Attachments are only
    /// sent for the binary kinds (after promotion, see [`wire_kind`](Self::wire_kind)); other
    /// kinds cannot declare them, so they are dropped.
    pub fn encode(&self) -> EncodedPacket {
        self.encode_after(b"")
    }

    /// [`Packet::encode`] as the text of an Engine.IO message (`4` in front), written in one
    /// buffer so the frame needs no second copy.
    pub fn encode_message(&self) -> EncodedPacket {
        self.encode_after(b"4")
    }

    fn encode_after(&self, prefix: &[u8]) -> EncodedPacket {
        let kind = self.wire_kind();
        // The buffer is taken out of its slot while in use, and a thread whose slot is gone (its
        // locals destroyed at exit) writes into a new one.
        let mut text = ENCODE_SCRATCH.try_with(Cell::take).unwrap_or_default();
        text.clear();
        self.write_text(prefix, kind, &mut text);
        let text = if text.len() > SCRATCH_KEPT {
            // Large texts are handed over as they are; the next packet starts a new buffer.
            String::from_utf8(text).map_or_else(
                |error| ByteString::from(String::from_utf8_lossy(error.as_bytes()).into_owned()),
                ByteString::from,
            )
        } else {
            // Copied out at its exact size, the text is one allocation; handing over a buffer
            // with spare room would cost a second one in `Bytes`, and growing it two.
            let copied = std::str::from_utf8(&text).map_or_else(
                |_| ByteString::from(String::from_utf8_lossy(&text).into_owned()),
                ByteString::from,
            );
            let _ = ENCODE_SCRATCH.try_with(|scratch| scratch.set(text));
            copied
        };
        EncodedPacket {
            text,
            attachments: if kind.is_binary() {
                self.attachments.clone()
            } else {
                Vec::new()
            },
        }
    }

    /// Appends `<type>[<attachments>-][<nsp>,][<ackId>][<JSON>]` to `text`. Every piece is
    /// UTF-8 (the prefix, ASCII, a `str`, JSON written from `str`s).
    fn write_text(&self, prefix: &[u8], kind: PacketKind, text: &mut Vec<u8>) {
        text.extend_from_slice(prefix);
        text.push(kind.as_char() as u8);
        if kind.is_binary() {
            text.extend_from_slice(
                itoa::Buffer::new()
                    .format(self.attachments.len())
                    .as_bytes(),
            );
            text.push(b'-');
        }
        if !self.namespace.is_empty() && &*self.namespace != DEFAULT_NAMESPACE {
            text.extend_from_slice(self.namespace.as_bytes());
            text.push(b',');
        }
        if let Some(id) = self.ack_id {
            // itoa: `write!` goes through the formatter (3% of the instructions per echo event).
            text.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
        }
        if let Some(data) = &self.data {
            super::json::write(text, data);
        }
    }
}

/// The largest encoded text copied out of the per-thread encoding buffer (which so keeps less
/// than twice this between packets).
const SCRATCH_KEPT: usize = 4096;

thread_local! {
    /// Where packets are written before they are copied out at their exact size.
    static ENCODE_SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// The key that marks a placeholder object.
const PLACEHOLDER_KEY: &str = "_placeholder";

/// Returns the placeholder object `{"_placeholder":true,"num":num}` for attachment `num`.
pub fn placeholder(num: usize) -> Value {
    let mut map = serde_json::Map::with_capacity(2);
    map.insert(PLACEHOLDER_KEY.to_owned(), Value::Bool(true));
    map.insert("num".to_owned(), Value::from(num));
    Value::Object(map)
}

/// True if `value` is an object with `"_placeholder": true` (what the reference parser checks),
/// whatever its `num`.
pub fn is_placeholder(value: &Value) -> bool {
    value
        .as_object()
        .and_then(|map| map.get(PLACEHOLDER_KEY))
        .and_then(Value::as_bool)
        == Some(true)
}

/// If `value` is a placeholder object (`{"_placeholder":true,"num":<non-negative integer>}`),
/// returns its num.
pub fn placeholder_num(value: &Value) -> Option<u64> {
    placeholder_num_of(value.as_object()?)
}

/// [`placeholder_num`] of an object: `_placeholder` is `true` and `num` a non-negative integer
/// (written with a fraction or an exponent too), whatever other keys it has (the reference
/// parser's rule).
pub(crate) fn placeholder_num_of(map: &serde_json::Map<String, Value>) -> Option<u64> {
    if map.get(PLACEHOLDER_KEY) != Some(&Value::Bool(true)) {
        return None;
    }
    let num = map.get("num")?;
    // JSON has one number type: `0.0` and `1e0` are the integers 0 and 1 to the reference
    // parser (a JavaScript number), while serde_json keeps them as floats.
    num.as_u64().or_else(|| {
        let float = num.as_f64()?;
        (float >= 0.0 && float.fract() == 0.0 && float < u64::MAX as f64).then_some(float as u64)
    })
}

/// The first placeholder in `values` that names none of `count` attachments: the `num` it holds
/// (`null` when it has none). Any object with `"_placeholder": true` is a placeholder, whatever
/// else it holds, as the reference parser (which throws "illegal attachments" on such a packet)
/// reads it; callers check only arguments that travel with attachments, since a packet without
/// any is a text packet, whose objects are all data. Walks with an explicit stack, so the depth
/// of `values` does not matter.
pub(crate) fn placeholder_out_of_range<'a>(
    values: impl IntoIterator<Item = &'a Value>,
    count: usize,
) -> Option<&'a Value> {
    let mut stack: Vec<&Value> = values.into_iter().collect();
    while let Some(value) = stack.pop() {
        match value {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) if is_placeholder(value) => {
                let in_range = placeholder_num(value)
                    .and_then(|num| usize::try_from(num).ok())
                    .is_some_and(|num| num < count);
                if !in_range {
                    return Some(map.get("num").unwrap_or(&Value::Null));
                }
            }
            Value::Object(map) => stack.extend(map.values()),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handlers_may_take_any_event_a_client_can_send() {
        for event in ["message", "connected", "disconnect_me", "**", "", "Connect"] {
            assert_eq!(handler_event_refusal(event), None);
        }
        for event in RESERVED_EVENTS.iter().copied().chain(["*"]) {
            assert!(handler_event_refusal(event).is_some(), "{event} accepted");
        }
    }
}
