//! The `payload_args` target: event and acknowledgement arguments as a client can send them,
//! decoded by the Socket.IO decoder with their attachments, then read into the kinds of types
//! handlers declare (`sockio_core::payload::from_args`, a serde deserializer of the core's own).
//! Besides "never panics" on any argument a peer chooses: a `Value` target gets the arguments
//! exactly as they came (placeholders included), and whatever a typed target accepted writes
//! back (`to_args`) and reads back to the same value.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sockio_core::payload::{Args, from_args, to_args};
use sockio_core::socketio::decoder::{Decoder, DecoderLimits};
use sockio_core::socketio::packet::{Packet, PacketKind};

use crate::input::Input;

/// The limits the target decodes with: a few attachments, so inputs stay small.
pub const LIMITS: DecoderLimits = DecoderLimits {
    max_attachments: 4,
    max_attachment_bytes: 4096,
};

/// Input: a packet's text (an `Input` byte string), then its attachments (byte strings).
pub fn payload_args(data: &[u8]) {
    let Some(packet) = decode(data) else {
        return;
    };
    let values = match (packet.kind, packet.data) {
        (PacketKind::Event | PacketKind::BinaryEvent, Some(Value::Array(mut items)))
            if !items.is_empty() =>
        {
            // The event name; handlers get the rest.
            items.remove(0);
            items
        }
        (PacketKind::Ack | PacketKind::BinaryAck, Some(Value::Array(items))) => items,
        _ => return,
    };
    let args = Args::from_parts(values, packet.attachments);
    value_target_is_identity(&args);

    round_trip::<()>(&args);
    round_trip::<bool>(&args);
    round_trip::<u8>(&args);
    round_trip::<i64>(&args);
    round_trip::<u64>(&args);
    round_trip::<f64>(&args);
    round_trip::<char>(&args);
    round_trip::<String>(&args);
    round_trip::<(String,)>(&args);
    round_trip::<Option<u32>>(&args);
    round_trip::<Bytes>(&args);
    round_trip::<Vec<u8>>(&args);
    round_trip::<Vec<Bytes>>(&args);
    round_trip::<Vec<String>>(&args);
    round_trip::<(String, Option<i64>, Vec<Value>)>(&args);
    round_trip::<(Bytes, Bytes)>(&args);
    round_trip::<HashMap<String, Vec<i32>>>(&args);
    round_trip::<BTreeMap<String, Value>>(&args);
    round_trip::<Record>(&args);
    round_trip::<Shape>(&args);
    round_trip::<Tagged>(&args);
    round_trip::<Loose>(&args);
    round_trip::<Flat>(&args);
    round_trip::<Vec<Shape>>(&args);
}

/// Decodes the packet text and as many attachments as it asks for; `None` if it does not decode
/// or its attachments are missing.
fn decode(data: &[u8]) -> Option<Packet> {
    let mut input = Input::new(data);
    let mut decoder = Decoder::new(LIMITS);
    if let Some(packet) = decoder.decode_text(&input.text()).ok()? {
        return Some(packet);
    }
    while !input.is_empty() {
        if let Some(packet) = decoder
            .decode_binary(Bytes::copy_from_slice(input.bytes()))
            .ok()?
        {
            return Some(packet);
        }
    }
    None
}

/// A `Value` target receives the arguments unchanged: zero arguments as `null`, one as itself,
/// several as their array (`from_args`'s rule), placeholders as the objects they are.
fn value_target_is_identity(args: &Args) {
    let expected = match args.values.as_slice() {
        [] => Value::Null,
        [only] => only.clone(),
        several => Value::Array(several.to_vec()),
    };
    match from_args::<Value>(args) {
        Ok(value) => assert_eq!(value, expected, "a Value target changed the arguments"),
        Err(error) => panic!("a Value target refused {:?}: {error}", args.values),
    }
}

/// If `T` reads the arguments, its value must write back and read back to itself.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(args: &Args) {
    let Ok(value) = from_args::<T>(args) else {
        return;
    };
    let name = std::any::type_name::<T>();
    let written = match to_args(&value) {
        Ok(written) => written,
        Err(error) => panic!("{name} read {value:?} but cannot write it: {error}"),
    };
    match from_args::<T>(&written) {
        Ok(back) => assert_eq!(back, value, "{name}: written as {written:?}"),
        Err(error) => panic!("{name} cannot read back {value:?} from {written:?}: {error}"),
    }
}

/// A struct with binary data, defaults, optional and nested parts.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Record {
    name: String,
    #[serde(default)]
    data: Option<Bytes>,
    #[serde(default)]
    tags: Vec<String>,
    count: Option<i64>,
    #[serde(default)]
    child: Option<Box<Record>>,
}

/// An externally tagged enum (serde's default).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Shape {
    Unit,
    New(u32),
    Pair(i8, String),
    Square { side: f64 },
    Blob(Bytes),
}

/// An internally tagged enum: serde buffers the map before choosing the variant.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
enum Tagged {
    Text { text: String },
    File { name: String, data: Bytes },
}

/// An untagged, recursive enum: serde tries each variant on buffered content. `List` comes
/// before `Bin` because `Bytes` also accepts an array of small numbers, and `Text` before both
/// because `String` also accepts bytes that are UTF-8: in another order, a value would read back
/// as another variant, which is serde's untagged matching, not the payload's.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Loose {
    Flag(bool),
    Num(i64),
    Text(String),
    List(Vec<Loose>),
    Bin(Bytes),
    Map(BTreeMap<String, Loose>),
}

/// A struct with flattened fields: buffered like the untagged enum.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Flat {
    id: u64,
    #[serde(flatten)]
    rest: BTreeMap<String, Loose>,
}
