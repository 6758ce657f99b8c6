//! Conversion between user payload types and Socket.IO event arguments with binary attachments.
//!
//! On the wire, Socket.IO carries binary data inside event (and acknowledgement) arguments as
//! *attachments*: in the JSON, each binary value is replaced by the placeholder object
//! `{"_placeholder":true,"num":i}` (numbered depth-first, in serialization order) and
//! `attachments[i]` holds its bytes. [`Args`] is that wire form; this module converts between it and
//! ordinary serde types, so that runtimes can offer a python-socketio-like API where payloads are
//! plain serde types, [`serde_json::Value`], tuples, and [`Bytes`] anywhere inside.
//!
//! # Serialization ([`to_args`], [`to_value`])
//!
//! - Every `serialize_bytes` call, at any depth, becomes a placeholder plus one attachment:
//!   [`Bytes`], `BytesMut`, or any field using `serde_bytes`-style `serialize_bytes`. The bytes are
//!   copied once into a new [`Bytes`] (serde hands the serializer a borrowed `&[u8]`).
//! - Everything else is serialized exactly as [`serde_json::to_value`] would (maps with integer or
//!   boolean keys get string keys, enums are externally tagged, `None` and `()` are `null`, ...).
//!   A plain `Vec<u8>` is a sequence of numbers, **not** binary: use [`Bytes`] to send binary.
//! - [`to_args`] follows python-socketio's `emit(event, data)`: a top-level **tuple** (serde's
//!   `serialize_tuple`, i.e. a Rust tuple `(a, b, c)`, also `(a,)`) becomes several arguments, `()`
//!   becomes zero arguments, and anything else (a `Vec`, a slice, a struct, a [`Value`], including
//!   [`Value::Array`], `None`, a unit struct) becomes exactly one argument.
//!
//!   Caveats, because serde gives a serializer no more than the calls it makes:
//!   - fixed-size arrays `[T; N]` serialize with `serialize_tuple`, exactly like Rust tuples, so
//!     `to_args(&[1, 2, 3])` gives **three** arguments. Use a slice (`&[1, 2, 3][..]`) or a `Vec`
//!     for one list argument;
//!   - [`Value::Null`] serializes with `serialize_unit`, exactly like `()`, so it gives **zero**
//!     arguments (which is what python-socketio does for `data=None`, and what [`from_args`] reads
//!     back as `null`). `Option::None` gives one `null` argument.
//!
//! # Deserialization ([`from_args`], [`from_value`])
//!
//! - [`from_args`] follows python-socketio's handler calling convention: zero arguments deserialize
//!   from `null` (so `()` and `Option<T>` work), exactly one argument deserializes from that
//!   argument, and several arguments deserialize from the sequence of all of them (so tuples
//!   `(A, B)`, `Vec<T>` and tuple structs work). A tuple with fewer elements than there are
//!   arguments is an error, as with [`serde_json::from_value`]. Tuples are argument lists on both
//!   sides, so a 1-tuple `(T,)` (or `[T; 1]`) takes a single argument as its one element: whatever
//!   `to_args` made of a tuple, `from_args` reads back into the same tuple type.
//! - A placeholder is an object whose `_placeholder` is `true` and whose `num` is a non-negative
//!   integer, whatever other keys it has (the reference parser's rule, which the decoder checks
//!   a client's packets against). Other objects are ordinary objects, and so is every object of
//!   arguments without attachments: like the reference parser, which resolves placeholders only
//!   in packets with attachments, a text packet's `{"_placeholder":true,"num":0}` is the
//!   client's own data. A placeholder whose `num` is not
//!   below the number of attachments is [`PayloadError::PlaceholderOutOfRange`], whatever the
//!   target type.
//! - A placeholder is **binary data** to the target type: it is handed to the visitor as the
//!   attachment's bytes (`visit_borrowed_bytes`) when the target asks for bytes or for "anything"
//!   (`deserialize_bytes`, `deserialize_byte_buf`, `deserialize_any`), and as a sequence of `u8` when
//!   the target asks for a sequence. So [`Bytes`], `BytesMut`, `serde_bytes`-style fields and plain
//!   `Vec<u8>` fields all receive the attachment, also inside `#[serde(untagged)]`,
//!   internally tagged or `#[serde(flatten)]` types (which buffer through `deserialize_any`).
//!   Deserializing [`Bytes`] copies the attachment (serde's impl for `Bytes` copies); take the
//!   [`Args`] themselves to share the attachment without a copy.
//! - **One exception: [`serde_json::Value`].** A `Value` target, at any depth, receives the
//!   placeholder object `{"_placeholder":true,"num":n}` unchanged, so `from_args::<Value>` and
//!   structs with `Value` fields never fail on binary payloads. The bytes are then only reachable
//!   through the [`Args`]: use [`Args`] directly, or a type with [`Bytes`] fields, to get the data.
//!   (The `Value` visitor is recognised by what it expects, "any valid JSON value"; a test guards
//!   this against serde_json changes.) A `Value` *nested inside* an untagged, internally tagged or
//!   flattened type goes through serde's buffering, which has already turned the placeholder into
//!   bytes, and so fails there: use [`Bytes`] at such positions.
//! - String targets (`String`, `&str`, `char`) do not accept a placeholder even when the bytes are
//!   UTF-8: binary stays binary.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use serde::{Deserialize, Serialize};
//! use serde_json::json;
//! use sockio_core::payload::{Args, from_args, to_args};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct Upload {
//!     name: String,
//!     data: Bytes,
//! }
//!
//! let upload = Upload { name: "a.bin".into(), data: Bytes::from_static(b"\x00\x01") };
//! let args = to_args(&("upload", &upload, 7)).unwrap();
//! assert_eq!(args.values, vec![
//!     json!("upload"),
//!     json!({"name": "a.bin", "data": {"_placeholder": true, "num": 0}}),
//!     json!(7),
//! ]);
//! assert_eq!(args.attachments, vec![Bytes::from_static(b"\x00\x01")]);
//!
//! let (kind, back, n): (String, Upload, u32) = from_args(&args).unwrap();
//! assert_eq!((kind.as_str(), &back, n), ("upload", &upload, 7));
//!
//! // A `Value` target sees the placeholder object, not the bytes.
//! let raw: serde_json::Value = from_args(&Args::from_parts(
//!     vec![args.values[1].clone()],
//!     args.attachments.clone(),
//! )).unwrap();
//! assert_eq!(raw["data"], json!({"_placeholder": true, "num": 0}));
//! ```

use std::fmt::{self, Display, Write as _};

use bytes::Bytes;
use serde::de::{
    self, DeserializeSeed, Deserializer as _, EnumAccess, IntoDeserializer as _, MapAccess,
    SeqAccess, Unexpected, VariantAccess, Visitor,
};
use serde::forward_to_deserialize_any;
use serde::ser::{self, Serialize};
use serde_json::{Map, Number, Value};

// The `num` of a placeholder object, by the decoder's rule.
use crate::socketio::packet::placeholder_num_of as placeholder_num;

/// Event arguments in wire form: JSON values (with placeholders) and the attachments they refer to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Args {
    /// The arguments, with `{"_placeholder":true,"num":i}` where binary data was.
    pub values: Vec<Value>,
    /// The binary attachments; placeholder `num: i` refers to `attachments[i]`.
    pub attachments: Vec<Bytes>,
}

impl Args {
    /// No arguments and no attachments.
    pub fn new() -> Self {
        Self::default()
    }

    /// True if there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The number of arguments (not counting attachments).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Builds from raw values and attachments (as the core reports an event).
    pub fn from_parts(values: Vec<Value>, attachments: Vec<Bytes>) -> Self {
        Self {
            values,
            attachments,
        }
    }

    /// True if there are attachments, i.e. the arguments must travel as a binary packet
    /// (`BINARY_EVENT` / `BINARY_ACK`).
    pub fn has_binary(&self) -> bool {
        !self.attachments.is_empty()
    }
}

/// Why a payload could not be converted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The value could not be turned into JSON (for example a map key that is not a string or a
    /// number, or a `Serialize` impl that failed).
    #[error("cannot serialize the payload: {0}")]
    Serialize(String),
    /// The arguments do not fit the requested type.
    #[error("cannot deserialize the payload: {0}")]
    Deserialize(String),
    /// A placeholder `{"_placeholder":true,"num":n}` refers to an attachment that does not exist.
    #[error("binary placeholder refers to attachment {0}, which does not exist")]
    PlaceholderOutOfRange(u64),
}

impl ser::Error for PayloadError {
    fn custom<T: Display>(msg: T) -> Self {
        PayloadError::Serialize(msg.to_string())
    }
}

impl de::Error for PayloadError {
    fn custom<T: Display>(msg: T) -> Self {
        PayloadError::Deserialize(msg.to_string())
    }
}

fn json_ser_error(error: serde_json::Error) -> PayloadError {
    PayloadError::Serialize(error.to_string())
}

fn json_de_error(error: serde_json::Error) -> PayloadError {
    PayloadError::Deserialize(error.to_string())
}

const PLACEHOLDER_KEY: &str = "_placeholder";
const NUM_KEY: &str = "num";

/// The placeholder object `{"_placeholder":true,"num":num}`.
fn placeholder(num: usize) -> Value {
    let mut map = Map::with_capacity(2);
    map.insert(PLACEHOLDER_KEY.to_owned(), Value::Bool(true));
    map.insert(NUM_KEY.to_owned(), Value::from(num));
    Value::Object(map)
}

/// The `num` of a placeholder object in arguments that came with `attachments`. Arguments without
/// any (a text packet) hold no placeholders: the reference parser resolves them only in BINARY_*
/// packets, so an object shaped like one is an ordinary object there.
fn placeholder_in(map: &Map<String, Value>, attachments: &[Bytes]) -> Option<u64> {
    if attachments.is_empty() {
        return None;
    }
    placeholder_num(map)
}

// ---------------------------------------------------------------------------------------------
// Serialization
// ---------------------------------------------------------------------------------------------

/// Serializes `data` as event arguments, extracting binary data into attachments.
///
/// python-socketio semantics for emit data: a top-level **tuple** (serde's `serialize_tuple`, i.e.
/// Rust tuples `(a, b)`) becomes several arguments; `()` (unit) becomes zero arguments; anything
/// else (including `Vec`, slices, structs, [`Value`], and a [`Value::Array`]) becomes exactly one
/// argument. Every `serialize_bytes` call anywhere ([`Bytes`], `serde_bytes`) becomes a placeholder
/// plus an attachment, numbered depth-first.
///
/// Fixed-size arrays `[T; N]` serialize as serde tuples and therefore become `N` arguments; pass a
/// slice or a `Vec` to send one list argument. [`Value::Null`] serializes as unit and therefore
/// becomes zero arguments (python-socketio's `data=None`); `None` becomes one `null` argument.
pub fn to_args<T: Serialize + ?Sized>(data: &T) -> Result<Args, PayloadError> {
    let mut attachments = Vec::new();
    let mut shape = Shape::One;
    let value = data.serialize(PayloadSerializer {
        attachments: &mut attachments,
        shape: Some(&mut shape),
    })?;
    let values = match (shape, value) {
        (Shape::Unit, _) => Vec::new(),
        (Shape::Tuple, Value::Array(items)) => items,
        (_, value) => vec![value],
    };
    Ok(Args {
        values,
        attachments,
    })
}

/// Serializes one value (e.g. one acknowledgement argument), extracting binary data: each
/// `serialize_bytes` call appends an attachment to `attachments` and leaves a placeholder whose
/// numbering continues from `attachments.len()`. Tuples are JSON arrays here.
///
/// On error, `attachments` is left as it was.
pub fn to_value<T: Serialize + ?Sized>(
    data: &T,
    attachments: &mut Vec<Bytes>,
) -> Result<Value, PayloadError> {
    let before = attachments.len();
    let result = data.serialize(PayloadSerializer {
        attachments: &mut *attachments,
        shape: None,
    });
    if result.is_err() {
        attachments.truncate(before);
    }
    result
}

/// What the top-level call of [`to_args`] was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    One,
    Tuple,
    Unit,
}

/// A serializer to [`Value`] that turns `serialize_bytes` into placeholders plus attachments.
struct PayloadSerializer<'a> {
    attachments: &'a mut Vec<Bytes>,
    /// `Some` only for the top-level value of [`to_args`]: records a tuple or unit there.
    shape: Option<&'a mut Shape>,
}

impl PayloadSerializer<'_> {
    fn nested(attachments: &mut Vec<Bytes>) -> PayloadSerializer<'_> {
        PayloadSerializer {
            attachments,
            shape: None,
        }
    }
}

macro_rules! delegate_to_json {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(
            fn $method(self, v: $ty) -> Result<Value, PayloadError> {
                serde_json::value::Serializer.$method(v).map_err(json_ser_error)
            }
        )*
    };
}

impl<'a> ser::Serializer for PayloadSerializer<'a> {
    type Ok = Value;
    type Error = PayloadError;
    type SerializeSeq = SeqBuilder<'a>;
    type SerializeTuple = SeqBuilder<'a>;
    type SerializeTupleStruct = SeqBuilder<'a>;
    type SerializeTupleVariant = SeqBuilder<'a>;
    type SerializeMap = MapBuilder<'a>;
    type SerializeStruct = MapBuilder<'a>;
    type SerializeStructVariant = MapBuilder<'a>;

    delegate_to_json! {
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<Value, PayloadError> {
        let num = self.attachments.len();
        self.attachments.push(Bytes::copy_from_slice(v));
        Ok(placeholder(num))
    }

    fn serialize_none(self) -> Result<Value, PayloadError> {
        Ok(Value::Null)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, PayloadError> {
        value.serialize(PayloadSerializer::nested(self.attachments))
    }

    fn serialize_unit(self) -> Result<Value, PayloadError> {
        if let Some(shape) = self.shape {
            *shape = Shape::Unit;
        }
        Ok(Value::Null)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, PayloadError> {
        Ok(Value::Null)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
    ) -> Result<Value, PayloadError> {
        Ok(Value::String(variant.to_owned()))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Value, PayloadError> {
        value.serialize(PayloadSerializer::nested(self.attachments))
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, PayloadError> {
        let inner = value.serialize(PayloadSerializer::nested(self.attachments))?;
        let mut map = Map::with_capacity(1);
        map.insert(variant.to_owned(), inner);
        Ok(Value::Object(map))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder<'a>, PayloadError> {
        Ok(SeqBuilder {
            items: Vec::with_capacity(len.unwrap_or(0)),
            attachments: self.attachments,
            variant: None,
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder<'a>, PayloadError> {
        if let Some(shape) = self.shape {
            *shape = Shape::Tuple;
        }
        Ok(SeqBuilder {
            items: Vec::with_capacity(len),
            attachments: self.attachments,
            variant: None,
        })
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SeqBuilder<'a>, PayloadError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SeqBuilder<'a>, PayloadError> {
        Ok(SeqBuilder {
            items: Vec::with_capacity(len),
            attachments: self.attachments,
            variant: Some(variant),
        })
    }

    fn serialize_map(self, len: Option<usize>) -> Result<MapBuilder<'a>, PayloadError> {
        Ok(MapBuilder {
            map: Map::with_capacity(len.unwrap_or(0)),
            next_key: None,
            attachments: self.attachments,
            variant: None,
        })
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<MapBuilder<'a>, PayloadError> {
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<MapBuilder<'a>, PayloadError> {
        Ok(MapBuilder {
            map: Map::with_capacity(len),
            next_key: None,
            attachments: self.attachments,
            variant: Some(variant),
        })
    }
}

/// Wraps `value` as `{variant: value}` when serializing an enum variant.
fn tag(variant: Option<&'static str>, value: Value) -> Value {
    match variant {
        None => value,
        Some(variant) => {
            let mut map = Map::with_capacity(1);
            map.insert(variant.to_owned(), value);
            Value::Object(map)
        }
    }
}

/// Builds a JSON array for sequences, tuples, tuple structs and tuple variants.
struct SeqBuilder<'a> {
    items: Vec<Value>,
    attachments: &'a mut Vec<Bytes>,
    variant: Option<&'static str>,
}

impl SeqBuilder<'_> {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), PayloadError> {
        let value = value.serialize(PayloadSerializer::nested(self.attachments))?;
        self.items.push(value);
        Ok(())
    }

    fn finish(self) -> Value {
        tag(self.variant, Value::Array(self.items))
    }
}

impl ser::SerializeSeq for SeqBuilder<'_> {
    type Ok = Value;
    type Error = PayloadError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), PayloadError> {
        self.push(value)
    }

    fn end(self) -> Result<Value, PayloadError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTuple for SeqBuilder<'_> {
    type Ok = Value;
    type Error = PayloadError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), PayloadError> {
        self.push(value)
    }

    fn end(self) -> Result<Value, PayloadError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleStruct for SeqBuilder<'_> {
    type Ok = Value;
    type Error = PayloadError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), PayloadError> {
        self.push(value)
    }

    fn end(self) -> Result<Value, PayloadError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleVariant for SeqBuilder<'_> {
    type Ok = Value;
    type Error = PayloadError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), PayloadError> {
        self.push(value)
    }

    fn end(self) -> Result<Value, PayloadError> {
        Ok(self.finish())
    }
}

/// Builds a JSON object for maps, structs and struct variants.
struct MapBuilder<'a> {
    map: Map<String, Value>,
    next_key: Option<String>,
    attachments: &'a mut Vec<Bytes>,
    variant: Option<&'static str>,
}

impl MapBuilder<'_> {
    fn insert<T: Serialize + ?Sized>(
        &mut self,
        key: String,
        value: &T,
    ) -> Result<(), PayloadError> {
        let value = value.serialize(PayloadSerializer::nested(self.attachments))?;
        self.map.insert(key, value);
        Ok(())
    }

    fn finish(self) -> Value {
        tag(self.variant, Value::Object(self.map))
    }
}

/// Turns a map key into a JSON object key the way serde_json does: strings and chars as they
/// are, integers, finite floats and booleans as their text, unit variants as their name.
fn map_key<T: Serialize + ?Sized>(key: &T) -> Result<String, PayloadError> {
    match serde_json::to_value(key).map_err(json_ser_error)? {
        Value::String(key) => Ok(key),
        Value::Number(number) => Ok(number.to_string()),
        Value::Bool(flag) => Ok(flag.to_string()),
        Value::Null => Err(ser::Error::custom(
            "key must be a string (or a number or a boolean), got null or a non-finite float",
        )),
        Value::Array(_) | Value::Object(_) => Err(ser::Error::custom(
            "key must be a string (or a number or a boolean)",
        )),
    }
}

impl ser::SerializeMap for MapBuilder<'_> {
    type Ok = Value;
    type Error = PayloadError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), PayloadError> {
        self.next_key = Some(map_key(key)?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), PayloadError> {
        let key = self
            .next_key
            .take()
            .ok_or_else(|| ser::Error::custom("serialize_value called before serialize_key"))?;
        self.insert(key, value)
    }

    fn end(self) -> Result<Value, PayloadError> {
        Ok(self.finish())
    }
}

impl ser::SerializeStruct for MapBuilder<'_> {
    type Ok = Value;
    type Error = PayloadError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), PayloadError> {
        self.insert(key.to_owned(), value)
    }

    fn end(self) -> Result<Value, PayloadError> {
        Ok(self.finish())
    }
}

impl ser::SerializeStructVariant for MapBuilder<'_> {
    type Ok = Value;
    type Error = PayloadError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), PayloadError> {
        self.insert(key.to_owned(), value)
    }

    fn end(self) -> Result<Value, PayloadError> {
        Ok(self.finish())
    }
}

// ---------------------------------------------------------------------------------------------
// Deserialization
// ---------------------------------------------------------------------------------------------

/// Deserializes event arguments into `T`, resolving placeholders against the attachments.
///
/// python-socketio semantics for handler data: zero arguments deserialize from `null` (so `()` and
/// `Option<T>` work), exactly one argument deserializes from that argument, several deserialize
/// from the sequence of all of them (so tuples `(A, B)` and `Vec<T>` work; a tuple shorter than the
/// arguments is an error). A 1-tuple `(T,)` takes a single argument as its element, so every tuple
/// that [`to_args`] splits into arguments reads back into the same tuple type.
///
/// Placeholders become the attachment's bytes wherever the target asks for bytes or for anything
/// ([`Bytes`], `serde_bytes`, `Vec<u8>`, also inside untagged enums), except that a
/// [`serde_json::Value`] target gets the placeholder object unchanged: use [`Args`] or [`Bytes`]
/// fields to get the data. See the [module documentation](self).
pub fn from_args<T: de::DeserializeOwned>(args: &Args) -> Result<T, PayloadError> {
    static NULL: Value = Value::Null;
    let attachments = args.attachments.as_slice();
    match args.values.as_slice() {
        [] => T::deserialize(ValueDe::new(&NULL, attachments)),
        [value] => T::deserialize(ValueDe {
            sole_argument: true,
            ..ValueDe::new(value, attachments)
        }),
        values => T::deserialize(ArgsDe {
            values,
            attachments,
        }),
    }
}

/// Deserializes one value (e.g. one acknowledgement argument) with placeholders resolved against
/// `attachments`, with the same rules as [`from_args`].
pub fn from_value<T: de::DeserializeOwned>(
    value: &Value,
    attachments: &[Bytes],
) -> Result<T, PayloadError> {
    T::deserialize(ValueDe::new(value, attachments))
}

/// What serde_json's `Value` visitor says it expects.
const JSON_VALUE_EXPECTING: &str = "any valid JSON value";

/// True if `visitor` is serde_json's `Value` visitor, which cannot take bytes: it gets the
/// placeholder object instead. Compares the visitor's `expecting` text without allocating.
fn is_json_value_visitor<'de, V: Visitor<'de>>(visitor: &V) -> bool {
    struct Matcher {
        rest: &'static str,
    }
    impl fmt::Write for Matcher {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.rest = self.rest.strip_prefix(s).ok_or(fmt::Error)?;
            Ok(())
        }
    }
    let mut matcher = Matcher {
        rest: JSON_VALUE_EXPECTING,
    };
    write!(matcher, "{}", visitor as &dyn de::Expected).is_ok() && matcher.rest.is_empty()
}

/// What a value is, for error messages; a placeholder is a byte array.
fn unexpected<'a>(value: &'a Value, attachments: &[Bytes]) -> Unexpected<'a> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(flag) => Unexpected::Bool(*flag),
        Value::Number(number) => {
            if let Some(n) = number.as_u64() {
                Unexpected::Unsigned(n)
            } else if let Some(n) = number.as_i64() {
                Unexpected::Signed(n)
            } else {
                Unexpected::Float(number.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(map) if placeholder_in(map, attachments).is_some() => Unexpected::Bytes(&[]),
        Value::Object(_) => Unexpected::Map,
    }
}

fn visit_number<'de, V: Visitor<'de>>(
    number: &Number,
    visitor: V,
) -> Result<V::Value, PayloadError> {
    if let Some(n) = number.as_u64() {
        visitor.visit_u64(n)
    } else if let Some(n) = number.as_i64() {
        visitor.visit_i64(n)
    } else if let Some(n) = number.as_f64() {
        visitor.visit_f64(n)
    } else {
        Err(de::Error::custom(format_args!(
            "unsupported number {number}"
        )))
    }
}

/// Visits `items` as a sequence; every item must be consumed.
fn visit_array<'de, V: Visitor<'de>>(
    items: &'de [Value],
    attachments: &'de [Bytes],
    visitor: V,
) -> Result<V::Value, PayloadError> {
    let mut seq = SeqDe {
        iter: items.iter(),
        attachments,
    };
    let result = visitor.visit_seq(&mut seq)?;
    if seq.iter.len() == 0 {
        Ok(result)
    } else {
        Err(de::Error::invalid_length(
            items.len(),
            &"fewer elements in array",
        ))
    }
}

/// Visits `map` as a map; every entry must be consumed.
fn visit_object<'de, V: Visitor<'de>>(
    map: &'de Map<String, Value>,
    attachments: &'de [Bytes],
    visitor: V,
) -> Result<V::Value, PayloadError> {
    let mut access = MapDe {
        iter: map.iter(),
        value: None,
        attachments,
    };
    let result = visitor.visit_map(&mut access)?;
    if access.iter.len() == 0 {
        Ok(result)
    } else {
        Err(de::Error::invalid_length(
            map.len(),
            &"fewer elements in map",
        ))
    }
}

/// A deserializer over one JSON value whose placeholders refer to `attachments`.
#[derive(Clone, Copy)]
struct ValueDe<'de> {
    value: &'de Value,
    attachments: &'de [Bytes],
    /// True for the only argument of [`from_args`]: a 1-tuple target then means "the argument
    /// list", so `(T,)` gets the argument itself, like `(A, B)` does for two arguments.
    sole_argument: bool,
}

impl<'de> ValueDe<'de> {
    fn new(value: &'de Value, attachments: &'de [Bytes]) -> Self {
        Self {
            value,
            attachments,
            sole_argument: false,
        }
    }

    /// The attachment a placeholder refers to.
    fn attachment(&self, num: u64) -> Result<&'de Bytes, PayloadError> {
        usize::try_from(num)
            .ok()
            .and_then(|index| self.attachments.get(index))
            .ok_or(PayloadError::PlaceholderOutOfRange(num))
    }

    /// The attachment if this value is a placeholder.
    fn as_binary(&self) -> Result<Option<&'de Bytes>, PayloadError> {
        match self.value {
            Value::Object(map) => placeholder_in(map, self.attachments)
                .map(|num| self.attachment(num))
                .transpose(),
            _ => Ok(None),
        }
    }

    fn invalid_type<V: de::Expected>(&self, expected: &V) -> PayloadError {
        de::Error::invalid_type(unexpected(self.value, self.attachments), expected)
    }

    fn deserialize_text<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PayloadError> {
        match self.value {
            Value::String(s) => visitor.visit_borrowed_str(s),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    /// A placeholder as a sequence of `u8`; anything else as usual.
    fn deserialize_sequence<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PayloadError> {
        match self.as_binary()? {
            Some(bytes) => {
                let mut seq = de::value::SeqDeserializer::new(bytes.iter().copied());
                let result = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(result)
            }
            None => self.deserialize_any(visitor),
        }
    }
}

impl<'de> de::Deserializer<'de> for ValueDe<'de> {
    type Error = PayloadError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PayloadError> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(flag) => visitor.visit_bool(*flag),
            Value::Number(number) => visit_number(number, visitor),
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => visit_array(items, self.attachments, visitor),
            Value::Object(map) => match placeholder_in(map, self.attachments) {
                Some(num) => {
                    let bytes = self.attachment(num)?;
                    if is_json_value_visitor(&visitor) {
                        visit_object(map, self.attachments, visitor)
                    } else {
                        visitor.visit_borrowed_bytes(bytes)
                    }
                }
                None => visit_object(map, self.attachments, visitor),
            },
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PayloadError> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, PayloadError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, PayloadError> {
        match self.value {
            Value::String(variant) => visitor.visit_enum(EnumDe {
                variant,
                value: None,
                attachments: self.attachments,
            }),
            Value::Object(map) if placeholder_in(map, self.attachments).is_none() => {
                let mut entries = map.iter();
                match (entries.next(), entries.next()) {
                    (Some((variant, value)), None) => visitor.visit_enum(EnumDe {
                        variant,
                        value: Some(value),
                        attachments: self.attachments,
                    }),
                    _ => Err(de::Error::invalid_value(
                        Unexpected::Map,
                        &"map with a single key",
                    )),
                }
            }
            _ => Err(self.invalid_type(&"string or map")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PayloadError> {
        self.deserialize_text(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PayloadError> {
        self.deserialize_text(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PayloadError> {
        self.deserialize_text(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PayloadError> {
        self.deserialize_text(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PayloadError> {
        self.deserialize_sequence(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, PayloadError> {
        if self.sole_argument && len == 1 {
            visit_array(std::slice::from_ref(self.value), self.attachments, visitor)
        } else {
            self.deserialize_sequence(visitor)
        }
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, PayloadError> {
        self.deserialize_sequence(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, PayloadError> {
        visitor.visit_unit()
    }

    // Bytes, numbers, maps and structs dispatch on the value like `deserialize_any`: a placeholder
    // is bytes, a string is its UTF-8 bytes, an array is a sequence, ...
    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64
        bytes byte_buf unit unit_struct map struct
    }
}

/// Several arguments, deserialized as the sequence of all of them (without building an array).
struct ArgsDe<'de> {
    values: &'de [Value],
    attachments: &'de [Bytes],
}

impl<'de> de::Deserializer<'de> for ArgsDe<'de> {
    type Error = PayloadError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PayloadError> {
        visit_array(self.values, self.attachments, visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PayloadError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, PayloadError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, PayloadError> {
        Err(de::Error::invalid_type(Unexpected::Seq, &"string or map"))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, PayloadError> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

struct SeqDe<'de> {
    iter: std::slice::Iter<'de, Value>,
    attachments: &'de [Bytes],
}

impl<'de> SeqAccess<'de> for SeqDe<'de> {
    type Error = PayloadError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, PayloadError> {
        match self.iter.next() {
            Some(value) => seed
                .deserialize(ValueDe::new(value, self.attachments))
                .map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct MapDe<'de> {
    iter: serde_json::map::Iter<'de>,
    value: Option<&'de Value>,
    attachments: &'de [Bytes],
}

impl<'de> MapAccess<'de> for MapDe<'de> {
    type Error = PayloadError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, PayloadError> {
        match self.iter.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(KeyDe { key }).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<T::Value, PayloadError> {
        match self.value.take() {
            Some(value) => seed.deserialize(ValueDe::new(value, self.attachments)),
            None => Err(de::Error::custom("value is missing")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// A JSON object key; like serde_json, numeric and boolean targets parse the key's text.
struct KeyDe<'de> {
    key: &'de str,
}

impl<'de> KeyDe<'de> {
    /// Parses the key as a JSON number with serde_json's own number parser, for `method`.
    fn numeric<V, F>(self, visitor: V, method: F) -> Result<V::Value, PayloadError>
    where
        V: Visitor<'de>,
        F: FnOnce(
            &mut serde_json::Deserializer<serde_json::de::StrRead<'de>>,
            V,
        ) -> Result<V::Value, serde_json::Error>,
    {
        let bytes = self.key.as_bytes();
        let starts_like_number = matches!(bytes.first(), Some(b'0'..=b'9' | b'-'));
        let ends_like_number = matches!(bytes.last(), Some(b'0'..=b'9'));
        if !(starts_like_number && ends_like_number) {
            return Err(de::Error::invalid_type(Unexpected::Str(self.key), &visitor));
        }
        let mut parser = serde_json::Deserializer::from_str(self.key);
        let value = method(&mut parser, visitor).map_err(json_de_error)?;
        parser.end().map_err(json_de_error)?;
        Ok(value)
    }
}

macro_rules! numeric_key {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PayloadError> {
                self.numeric(visitor, |parser, visitor| parser.$method(visitor))
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for KeyDe<'de> {
    type Error = PayloadError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PayloadError> {
        visitor.visit_borrowed_str(self.key)
    }

    numeric_key! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PayloadError> {
        match self.key {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            _ => Err(de::Error::invalid_type(Unexpected::Str(self.key), &visitor)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PayloadError> {
        // Map keys cannot be null.
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, PayloadError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, PayloadError> {
        de::value::BorrowedStrDeserializer::<PayloadError>::new(self.key)
            .deserialize_enum(name, variants, visitor)
    }

    forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct
        map struct identifier ignored_any
    }
}

struct EnumDe<'de> {
    variant: &'de str,
    value: Option<&'de Value>,
    attachments: &'de [Bytes],
}

impl<'de> EnumAccess<'de> for EnumDe<'de> {
    type Error = PayloadError;
    type Variant = VariantDe<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantDe<'de>), PayloadError> {
        let variant = seed.deserialize(self.variant.into_deserializer())?;
        Ok((
            variant,
            VariantDe {
                value: self.value,
                attachments: self.attachments,
            },
        ))
    }
}

struct VariantDe<'de> {
    value: Option<&'de Value>,
    attachments: &'de [Bytes],
}

impl<'de> VariantDe<'de> {
    fn de(&self, value: &'de Value) -> ValueDe<'de> {
        ValueDe::new(value, self.attachments)
    }
}

impl<'de> VariantAccess<'de> for VariantDe<'de> {
    type Error = PayloadError;

    fn unit_variant(self) -> Result<(), PayloadError> {
        match self.value {
            Some(value) => de::Deserialize::deserialize(self.de(value)),
            None => Ok(()),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, PayloadError> {
        match self.value {
            Some(value) => seed.deserialize(self.de(value)),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"newtype variant",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, PayloadError> {
        match self.value {
            Some(Value::Array(items)) if items.is_empty() => visitor.visit_unit(),
            Some(Value::Array(items)) => visit_array(items, self.attachments, visitor),
            Some(other) => Err(de::Error::invalid_type(
                unexpected(other, self.attachments),
                &"tuple variant",
            )),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"tuple variant",
            )),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, PayloadError> {
        match self.value {
            Some(Value::Object(map)) if placeholder_in(map, self.attachments).is_none() => {
                visit_object(map, self.attachments, visitor)
            }
            Some(other) => Err(de::Error::invalid_type(
                unexpected(other, self.attachments),
                &"struct variant",
            )),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"struct variant",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_value_visitor_is_recognised() {
        // Guards the `Value` special case against a change of serde_json's `expecting` text.
        let value = json!({"_placeholder": true, "num": 0});
        let attachments = [Bytes::from_static(b"x")];
        let back: Value = from_value(&value, &attachments).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn placeholder_shape_is_the_reference_parsers() {
        let ok = json!({"_placeholder": true, "num": 3});
        assert_eq!(placeholder_num(ok.as_object().unwrap()), Some(3));
        // The decoder accepts this in a BINARY packet (the reference parser resolves it), so
        // the handler must get the bytes, not a map.
        let extra = json!({"_placeholder": true, "num": 0, "extra": 1});
        assert_eq!(placeholder_num(extra.as_object().unwrap()), Some(0));
        for not in [
            json!({"_placeholder": true}),
            json!({"_placeholder": false, "num": 0}),
            json!({"_placeholder": "true", "num": 0}),
            json!({"_placeholder": true, "num": -1}),
            json!({"_placeholder": true, "num": 1.5}),
            json!({"_placeholder": true, "num": "0"}),
            json!({"_placeholder": true, "nom": 0}),
        ] {
            assert_eq!(placeholder_num(not.as_object().unwrap()), None, "{not}");
        }
        assert_eq!(placeholder(7), json!({"_placeholder": true, "num": 7}));
    }
}
