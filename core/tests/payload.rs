//! The payload layer: user types <-> event arguments with binary attachments.

use std::collections::{BTreeMap, HashMap};

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sockio_core::payload::{Args, PayloadError, from_args, from_value, to_args, to_value};

fn ph(num: u64) -> Value {
    json!({"_placeholder": true, "num": num})
}

fn b(data: &'static [u8]) -> Bytes {
    Bytes::from_static(data)
}

/// A `serde_bytes`-style adapter for `Vec<u8>` fields.
mod as_bytes {
    use serde::de::{Deserializer, Error, Visitor};
    use serde::ser::Serializer;
    use std::fmt;

    pub fn serialize<S: Serializer>(data: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(data)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        struct BytesVisitor;
        impl Visitor<'_> for BytesVisitor {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        deserializer.deserialize_byte_buf(BytesVisitor)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Upload {
    name: String,
    data: Bytes,
}

// ---------------------------------------------------------------------------------------------
// to_args: argument splitting
// ---------------------------------------------------------------------------------------------

#[test]
fn tuple_becomes_several_arguments() {
    let args = to_args(&("a", 1, b(b"\x01\x02"))).unwrap();
    assert_eq!(args.values, vec![json!("a"), json!(1), ph(0)]);
    assert_eq!(args.attachments, vec![b(b"\x01\x02")]);
    assert_eq!(args.len(), 3);
    assert!(args.has_binary());
    assert!(!args.is_empty());
}

#[test]
fn unit_is_zero_arguments() {
    let args = to_args(&()).unwrap();
    assert_eq!(args, Args::new());
    assert!(args.is_empty());
    assert_eq!(args.len(), 0);
    assert!(!args.has_binary());
}

#[test]
fn one_element_tuple_is_one_argument() {
    let args = to_args(&("only",)).unwrap();
    assert_eq!(args.values, vec![json!("only")]);
}

#[test]
fn vec_and_slice_are_one_argument() {
    assert_eq!(to_args(&vec![1, 2]).unwrap().values, vec![json!([1, 2])]);
    assert_eq!(to_args(&[1, 2][..]).unwrap().values, vec![json!([1, 2])]);
    assert_eq!(to_args(&Vec::<i32>::new()).unwrap().values, vec![json!([])]);
}

#[test]
fn json_array_value_is_one_argument() {
    assert_eq!(to_args(&json!([1, 2])).unwrap().values, vec![json!([1, 2])]);
    assert_eq!(
        to_args(&json!({"a": 1})).unwrap().values,
        vec![json!({"a": 1})]
    );
    assert_eq!(to_args(&json!("s")).unwrap().values, vec![json!("s")]);
}

#[test]
fn json_null_is_zero_arguments_like_unit() {
    // Documented: `Value::Null` serializes exactly like `()` (python-socketio: `data=None`).
    assert_eq!(to_args(&json!(null)).unwrap(), Args::new());
    assert_eq!(from_args::<Value>(&Args::new()).unwrap(), json!(null));
    // `None` is one `null` argument.
    assert_eq!(to_args(&None::<i32>).unwrap().values, vec![json!(null)]);
}

#[test]
fn one_tuples_are_argument_lists() {
    let one = to_args(&("x",)).unwrap();
    let (x,): (String,) = from_args(&one).unwrap();
    assert_eq!(x, "x");
    // Even when the argument is itself an array.
    let array_arg = to_args(&(vec![1, 2],)).unwrap();
    assert_eq!(array_arg.values, vec![json!([1, 2])]);
    let (list,): (Vec<i32>,) = from_args(&array_arg).unwrap();
    assert_eq!(list, vec![1, 2]);
    assert_eq!(
        from_args::<[Vec<i32>; 1]>(&array_arg).unwrap(),
        [vec![1, 2]]
    );
    assert_eq!(
        from_args::<Option<(Vec<i32>,)>>(&array_arg).unwrap(),
        Some((vec![1, 2],))
    );
    // But a longer tuple can still come from one array argument.
    assert_eq!(from_args::<(i32, i32)>(&array_arg).unwrap(), (1, 2));
    // `from_value` is about one value: tuples are arrays there.
    assert_eq!(from_value::<(i32,)>(&json!([7]), &[]).unwrap(), (7,));
    assert!(from_value::<(i32,)>(&json!(7), &[]).is_err());
}

#[test]
fn fixed_size_array_is_a_serde_tuple_and_so_several_arguments() {
    // Documented caveat: serde serializes `[T; N]` with `serialize_tuple`.
    assert_eq!(
        to_args(&[1, 2, 3]).unwrap().values,
        vec![json!(1), json!(2), json!(3)]
    );
}

#[test]
fn other_top_level_shapes_are_one_argument() {
    #[derive(Serialize)]
    struct Unit;
    #[derive(Serialize)]
    struct Pair(i32, i32);
    #[derive(Serialize)]
    struct Wrapper((i32, i32));
    assert_eq!(to_args(&Some(5)).unwrap().values, vec![json!(5)]);
    assert_eq!(to_args(&Some((1, 2))).unwrap().values, vec![json!([1, 2])]);
    assert_eq!(to_args(&Unit).unwrap().values, vec![json!(null)]);
    assert_eq!(to_args(&Pair(1, 2)).unwrap().values, vec![json!([1, 2])]);
    assert_eq!(
        to_args(&Wrapper((1, 2))).unwrap().values,
        vec![json!([1, 2])]
    );
    assert_eq!(to_args("text").unwrap().values, vec![json!("text")]);
    assert_eq!(to_args(&b(b"raw")).unwrap().values, vec![ph(0)]);
}

#[test]
fn nested_tuples_inside_a_tuple_are_arrays() {
    let args = to_args(&((1, 2), ((),), "x")).unwrap();
    assert_eq!(args.values, vec![json!([1, 2]), json!([null]), json!("x")]);
}

#[test]
fn references_are_transparent() {
    let data = ("a", 1);
    assert_eq!(to_args(&&data).unwrap(), to_args(&data).unwrap());
    assert_eq!(to_args(&Box::new(())).unwrap(), Args::new());
}

// ---------------------------------------------------------------------------------------------
// Binary extraction
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Nested {
    first: Bytes,
    list: Vec<Bytes>,
    maybe: Option<Bytes>,
    none: Option<Bytes>,
    map: BTreeMap<String, Bytes>,
    inner: Upload,
    #[serde(with = "as_bytes")]
    raw: Vec<u8>,
    plain: Vec<u8>,
}

fn nested() -> Nested {
    Nested {
        first: b(b"0"),
        list: vec![b(b"1"), b(b"2")],
        maybe: Some(b(b"3")),
        none: None,
        map: BTreeMap::from([("k1".to_owned(), b(b"4")), ("k2".to_owned(), b(b"5"))]),
        inner: Upload {
            name: "n".into(),
            data: b(b"6"),
        },
        raw: vec![7, 7],
        plain: vec![8, 8],
    }
}

#[test]
fn placeholders_are_numbered_depth_first() {
    let args = to_args(&nested()).unwrap();
    assert_eq!(
        args.values,
        vec![json!({
            "first": ph(0),
            "list": [ph(1), ph(2)],
            "maybe": ph(3),
            "none": null,
            "map": {"k1": ph(4), "k2": ph(5)},
            "inner": {"name": "n", "data": ph(6)},
            "raw": ph(7),
            "plain": [8, 8],
        })]
    );
    assert_eq!(
        args.attachments,
        vec![
            b(b"0"),
            b(b"1"),
            b(b"2"),
            b(b"3"),
            b(b"4"),
            b(b"5"),
            b(b"6"),
            b(b"\x07\x07")
        ]
    );
    let back: Nested = from_args(&args).unwrap();
    assert_eq!(back, nested());
}

#[test]
fn numbering_runs_across_tuple_arguments() {
    let args = to_args(&(b(b"a"), vec![b(b"b"), b(b"c")], "x", b(b"d"))).unwrap();
    assert_eq!(
        args.values,
        vec![ph(0), json!([ph(1), ph(2)]), json!("x"), ph(3)]
    );
    assert_eq!(args.attachments, vec![b(b"a"), b(b"b"), b(b"c"), b(b"d")]);
}

#[test]
fn bytes_mut_is_binary_too() {
    let args = to_args(&BytesMut::from(&b"mut"[..])).unwrap();
    assert_eq!(args.values, vec![ph(0)]);
    assert_eq!(args.attachments, vec![b(b"mut")]);
    let back: BytesMut = from_args(&args).unwrap();
    assert_eq!(&back[..], b"mut");
}

#[test]
fn empty_bytes_is_still_an_attachment() {
    let args = to_args(&(Bytes::new(),)).unwrap();
    assert_eq!(args.values, vec![ph(0)]);
    assert_eq!(args.attachments, vec![Bytes::new()]);
    let (back,): (Bytes,) = from_args(&args).unwrap();
    assert!(back.is_empty());
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Message {
    Ping,
    Blob(Bytes),
    Pair(Bytes, String),
    File { name: String, data: Bytes },
}

#[test]
fn enum_variants_carry_bytes() {
    let data = vec![
        Message::Ping,
        Message::Blob(b(b"blob")),
        Message::Pair(b(b"pair"), "p".into()),
        Message::File {
            name: "f".into(),
            data: b(b"file"),
        },
    ];
    let args = to_args(&data).unwrap();
    assert_eq!(
        args.values,
        vec![json!([
            "Ping",
            {"Blob": ph(0)},
            {"Pair": [ph(1), "p"]},
            {"File": {"name": "f", "data": ph(2)}},
        ])]
    );
    assert_eq!(args.attachments, vec![b(b"blob"), b(b"pair"), b(b"file")]);
    let back: Vec<Message> = from_args(&args).unwrap();
    assert_eq!(back, data);
}

#[test]
fn map_keys_follow_serde_json() {
    let map = BTreeMap::from([(1, b(b"one")), (-2, b(b"two"))]);
    let mut attachments = Vec::new();
    let value = to_value(&map, &mut attachments).unwrap();
    assert_eq!(value, json!({"-2": ph(0), "1": ph(1)}));
    let back: BTreeMap<i32, Bytes> = from_value(&value, &attachments).unwrap();
    assert_eq!(back, map);

    let flags = BTreeMap::from([(true, 1), (false, 0)]);
    let value = to_value(&flags, &mut Vec::new()).unwrap();
    assert_eq!(value, serde_json::to_value(&flags).unwrap());
    let back: BTreeMap<bool, i32> = from_value(&value, &[]).unwrap();
    assert_eq!(back, flags);

    #[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
    enum Key {
        A,
        B,
    }
    let keyed = BTreeMap::from([(Key::A, 1), (Key::B, 2)]);
    let value = to_value(&keyed, &mut Vec::new()).unwrap();
    assert_eq!(value, json!({"A": 1, "B": 2}));
    let back: BTreeMap<Key, i32> = from_value(&value, &[]).unwrap();
    assert_eq!(back, keyed);
}

#[test]
fn numeric_keys_must_be_whole_numbers() {
    for bad in [
        json!({"x": 1}),
        json!({" 1": 1}),
        json!({"1 ": 1}),
        json!({"1.5": 1}),
    ] {
        assert!(
            from_value::<HashMap<i32, i32>>(&bad, &[]).is_err(),
            "{bad} should not give integer keys"
        );
    }
}

#[test]
fn non_string_keys_are_a_serialize_error() {
    let map = BTreeMap::from([(vec![1], 1)]);
    let mut attachments = vec![b(b"keep")];
    let err = to_value(&map, &mut attachments).unwrap_err();
    assert!(matches!(err, PayloadError::Serialize(_)), "{err:?}");
    assert!(err.to_string().contains("key must be a string"), "{err}");
    assert_eq!(attachments, vec![b(b"keep")]);
}

#[test]
fn failed_serialization_leaves_attachments_untouched() {
    struct Fails;
    impl Serialize for Fails {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("nope"))
        }
    }
    let mut attachments = vec![b(b"old")];
    let err = to_value(&(b(b"new"), Fails), &mut attachments).unwrap_err();
    assert!(matches!(err, PayloadError::Serialize(ref m) if m == "nope"));
    assert_eq!(attachments, vec![b(b"old")]);
    assert!(to_args(&(b(b"new"), Fails)).is_err());
}

#[test]
fn to_value_continues_numbering() {
    let mut attachments = vec![b(b"existing")];
    let value = to_value(&(b(b"x"), 1), &mut attachments).unwrap();
    assert_eq!(value, json!([ph(1), 1]), "tuples are arrays in to_value");
    assert_eq!(attachments, vec![b(b"existing"), b(b"x")]);
    assert_eq!(to_value(&(), &mut attachments).unwrap(), json!(null));
    let back: (Bytes, i32) = from_value(&value, &attachments).unwrap();
    assert_eq!(back, (b(b"x"), 1));
}

#[test]
fn plain_json_matches_serde_json() {
    #[derive(Serialize)]
    struct Plain<'a> {
        a: i64,
        b: u64,
        c: f64,
        d: &'a str,
        e: Option<bool>,
        f: Vec<(i8, char)>,
        g: HashMap<String, Value>,
        h: (),
        i: i128,
        j: f32,
        k: Message,
    }
    let plain = Plain {
        a: -5,
        b: u64::MAX,
        c: 1.5,
        d: "text",
        e: Some(true),
        f: vec![(1, 'x'), (-1, 'y')],
        g: HashMap::from([("k".to_owned(), json!({"z": [1, null]}))]),
        h: (),
        i: -7,
        j: 0.25,
        k: Message::Ping,
    };
    let mut attachments = Vec::new();
    assert_eq!(
        to_value(&plain, &mut attachments).unwrap(),
        serde_json::to_value(&plain).unwrap()
    );
    assert!(attachments.is_empty());
    assert_eq!(
        to_value(&f64::NAN, &mut attachments).unwrap(),
        serde_json::to_value(f64::NAN).unwrap()
    );
}

#[test]
fn preserves_field_order() {
    #[derive(Serialize)]
    struct Ordered {
        z: i32,
        a: i32,
        m: i32,
    }
    let value = to_value(&Ordered { z: 1, a: 2, m: 3 }, &mut Vec::new()).unwrap();
    assert_eq!(value.to_string(), r#"{"z":1,"a":2,"m":3}"#);
}

// ---------------------------------------------------------------------------------------------
// from_args: argument gathering
// ---------------------------------------------------------------------------------------------

#[test]
fn tuple_from_wire_form() {
    let args = Args::from_parts(vec![json!("name"), ph(0)], vec![b(b"\xff\x00")]);
    let (name, data): (String, Bytes) = from_args(&args).unwrap();
    assert_eq!(name, "name");
    assert_eq!(data, b(b"\xff\x00"));
}

#[test]
fn struct_with_bytes_from_wire_form() {
    let args = Args::from_parts(
        vec![json!({"name": "u.bin", "data": ph(0)})],
        vec![b(b"payload")],
    );
    let upload: Upload = from_args(&args).unwrap();
    assert_eq!(
        upload,
        Upload {
            name: "u.bin".into(),
            data: b(b"payload")
        }
    );
}

#[test]
fn zero_arguments() {
    let none = Args::new();
    from_args::<()>(&none).unwrap();
    assert_eq!(from_args::<Option<String>>(&none).unwrap(), None);
    assert_eq!(from_args::<Value>(&none).unwrap(), Value::Null);
    assert!(from_args::<String>(&none).is_err());
    assert!(from_args::<(String,)>(&none).is_err());
}

#[test]
fn option_from_one_argument() {
    let one = Args::from_parts(vec![json!("x")], vec![]);
    assert_eq!(
        from_args::<Option<String>>(&one).unwrap(),
        Some("x".to_owned())
    );
    let null = Args::from_parts(vec![json!(null)], vec![]);
    assert_eq!(from_args::<Option<String>>(&null).unwrap(), None);
    from_args::<()>(&null).unwrap();
}

#[test]
fn several_arguments() {
    let two = Args::from_parts(vec![json!(1), json!(2)], vec![]);
    assert_eq!(from_args::<(i32, i32)>(&two).unwrap(), (1, 2));
    assert_eq!(from_args::<Vec<i32>>(&two).unwrap(), vec![1, 2]);
    assert_eq!(from_args::<[i32; 2]>(&two).unwrap(), [1, 2]);
    assert_eq!(from_args::<Value>(&two).unwrap(), json!([1, 2]));
    assert_eq!(from_args::<Option<(i32, i32)>>(&two).unwrap(), Some((1, 2)));

    #[derive(Debug, PartialEq, Deserialize)]
    struct Pair(i32, i32);
    assert_eq!(from_args::<Pair>(&two).unwrap(), Pair(1, 2));
    #[derive(Debug, PartialEq, Deserialize)]
    struct Named {
        a: i32,
        b: i32,
    }
    assert_eq!(from_args::<Named>(&two).unwrap(), Named { a: 1, b: 2 });
}

#[test]
fn vec_from_one_array_argument() {
    let one = Args::from_parts(vec![json!([1, 2, 3])], vec![]);
    assert_eq!(from_args::<Vec<i32>>(&one).unwrap(), vec![1, 2, 3]);
    assert_eq!(from_args::<(i32, i32, i32)>(&one).unwrap(), (1, 2, 3));
}

#[test]
fn argument_count_mismatch_is_an_error() {
    let three = Args::from_parts(vec![json!(1), json!(2), json!(3)], vec![]);
    let err = from_args::<(i32, i32)>(&three).unwrap_err();
    assert!(matches!(err, PayloadError::Deserialize(_)), "{err:?}");
    assert!(from_args::<(i32, i32, i32, i32)>(&three).is_err());
    assert!(from_args::<i32>(&three).is_err());
    assert!(from_args::<String>(&three).is_err());
    assert!(from_args::<Message>(&three).is_err());
}

#[test]
fn round_trip_through_args() {
    let data = (
        "event-data".to_owned(),
        Upload {
            name: "x".into(),
            data: b(b"bin"),
        },
        vec![b(b"a"), b(b"b")],
        Some(3u8),
    );
    let args = to_args(&data).unwrap();
    assert_eq!(args.len(), 4);
    assert_eq!(args.attachments.len(), 3);
    let back: (String, Upload, Vec<Bytes>, Option<u8>) = from_args(&args).unwrap();
    assert_eq!(back, data);
}

// ---------------------------------------------------------------------------------------------
// Placeholders on the way in
// ---------------------------------------------------------------------------------------------

#[test]
fn placeholder_out_of_range_is_an_error() {
    let args = Args::from_parts(vec![ph(1)], vec![b(b"only one")]);
    let err = from_args::<Bytes>(&args).unwrap_err();
    assert!(
        matches!(err, PayloadError::PlaceholderOutOfRange(1)),
        "{err:?}"
    );
    assert!(err.to_string().contains("attachment 1"), "{err}");

    let nested = Args::from_parts(vec![json!({"name": "n", "data": ph(5)})], vec![b(b"x")]);
    assert!(matches!(
        from_args::<Upload>(&nested),
        Err(PayloadError::PlaceholderOutOfRange(5))
    ));
    // Also for a `Value` target and a sequence target.
    assert!(matches!(
        from_args::<Value>(&args),
        Err(PayloadError::PlaceholderOutOfRange(1))
    ));
    assert!(matches!(
        from_args::<Vec<u8>>(&args),
        Err(PayloadError::PlaceholderOutOfRange(1))
    ));
    let huge = Args::from_parts(vec![ph(u64::MAX)], vec![b(b"x")]);
    assert!(matches!(
        from_args::<Bytes>(&huge),
        Err(PayloadError::PlaceholderOutOfRange(u64::MAX))
    ));
}

/// A text packet (arguments without attachments) holds no placeholders: the reference parser
/// resolves them only in BINARY_* packets, so a client's object shaped like one is its data.
#[test]
fn arguments_without_attachments_hold_no_placeholders() {
    #[derive(Debug, PartialEq, Deserialize)]
    struct Lookalike {
        _placeholder: bool,
        num: u64,
    }
    #[derive(Debug, PartialEq, Deserialize)]
    enum Shape {
        Square { side: u32 },
    }

    let args = Args::from_parts(vec![ph(0), json!({"nested": [ph(7)]})], vec![]);
    let (first, second): (Lookalike, HashMap<String, Vec<Lookalike>>) = from_args(&args).unwrap();
    assert_eq!(
        first,
        Lookalike {
            _placeholder: true,
            num: 0
        }
    );
    assert_eq!(
        second["nested"],
        vec![Lookalike {
            _placeholder: true,
            num: 7
        }]
    );
    let values: Vec<Value> = from_args(&args).unwrap();
    assert_eq!(values, vec![ph(0), json!({"nested": [ph(7)]})]);
    // A byte target is refused with a type error, not sent looking for an attachment.
    let err = from_args::<Bytes>(&Args::from_parts(vec![ph(0)], vec![])).unwrap_err();
    assert!(matches!(err, PayloadError::Deserialize(_)), "{err:?}");
    assert!(err.to_string().contains("map"), "{err}");
    // Enum variants: a lookalike is an ordinary (here, malformed) map, not binary data.
    let err = from_args::<Shape>(&Args::from_parts(vec![ph(0)], vec![])).unwrap_err();
    assert!(err.to_string().contains("single key"), "{err}");
}

#[test]
fn ignored_fields_do_not_resolve_placeholders() {
    #[derive(Debug, Deserialize)]
    struct OnlyName {
        name: String,
    }
    let args = Args::from_parts(vec![json!({"name": "n", "data": ph(9)})], vec![]);
    assert_eq!(from_args::<OnlyName>(&args).unwrap().name, "n");
}

#[test]
fn wrong_shape_placeholders_stay_objects() {
    let attachments = [b(b"zero")];
    for object in [
        json!({"_placeholder": true}),
        json!({"_placeholder": false, "num": 0}),
        json!({"_placeholder": "true", "num": 0}),
        json!({"_placeholder": true, "num": -1}),
        json!({"_placeholder": true, "num": 0.5}),
        json!({"_placeholder": true, "num": "0"}),
    ] {
        let value: Value = from_value(&object, &attachments).unwrap();
        assert_eq!(value, object);
        let map: BTreeMap<String, Value> = from_value(&object, &attachments).unwrap();
        assert_eq!(Value::Object(map.into_iter().collect()), object);
        assert!(
            from_value::<Bytes>(&object, &attachments).is_err(),
            "{object} is not binary"
        );
    }
    // A whole number written as a float is the same number to the reference parser.
    let object = json!({"_placeholder": true, "num": 0.0});
    assert_eq!(
        from_value::<Bytes>(&object, &attachments).unwrap(),
        b(b"zero")
    );
    // Extra keys do not make a placeholder an object (the reference parser's rule).
    let object = json!({"_placeholder": true, "num": 0, "extra": 1});
    assert_eq!(
        from_value::<Bytes>(&object, &attachments).unwrap(),
        b(b"zero")
    );
    // Out of range is irrelevant when it is not a placeholder.
    let object = json!({"_placeholder": false, "num": 99});
    assert_eq!(from_value::<Value>(&object, &[]).unwrap(), object);
}

#[test]
fn value_targets_get_the_placeholder_object() {
    let attachments = vec![b(b"a"), b(b"b")];
    let args = Args::from_parts(
        vec![json!("x"), json!({"file": ph(1), "list": [ph(0)]})],
        attachments.clone(),
    );
    let all: Value = from_args(&args).unwrap();
    assert_eq!(all, Value::Array(args.values.clone()));
    let (_, second): (String, Value) = from_args(&args).unwrap();
    assert_eq!(second, args.values[1]);
    let single: Value = from_value(&ph(0), &attachments).unwrap();
    assert_eq!(single, ph(0));
    let values: Vec<Value> = from_args(&args).unwrap();
    assert_eq!(values, args.values);
    let map: serde_json::Map<String, Value> = from_value(&args.values[1], &attachments).unwrap();
    assert_eq!(map["file"], ph(1));

    #[derive(Debug, Deserialize)]
    struct Mixed {
        file: Bytes,
        list: Value,
        other: Option<Value>,
    }
    let mixed: Mixed = from_value(
        &json!({"file": ph(1), "list": [ph(0)], "other": ph(0)}),
        &attachments,
    )
    .unwrap();
    assert_eq!(mixed.file, b(b"b"));
    assert_eq!(mixed.list, json!([ph(0)]));
    assert_eq!(mixed.other, Some(ph(0)));
}

#[test]
fn byte_vectors_receive_attachments() {
    #[derive(Debug, PartialEq, Deserialize)]
    struct Raw {
        #[serde(with = "as_bytes")]
        adapted: Vec<u8>,
        plain: Vec<u8>,
        fixed: [u8; 2],
    }
    let attachments = [b(b"ad"), b(b"pl"), b(b"fx")];
    let raw: Raw = from_value(
        &json!({"adapted": ph(0), "plain": ph(1), "fixed": ph(2)}),
        &attachments,
    )
    .unwrap();
    assert_eq!(
        raw,
        Raw {
            adapted: b"ad".to_vec(),
            plain: b"pl".to_vec(),
            fixed: *b"fx",
        }
    );
    // A fixed array of the wrong length does not fit.
    assert!(from_value::<[u8; 3]>(&ph(0), &attachments).is_err());
    // Plain JSON forms still work for bytes targets.
    assert_eq!(
        from_value::<Bytes>(&json!([1, 2]), &[]).unwrap(),
        b(b"\x01\x02")
    );
    assert_eq!(from_value::<Bytes>(&json!("hi"), &[]).unwrap(), b(b"hi"));
}

#[test]
fn binary_is_not_a_string() {
    let attachments = [b(b"utf8 text")];
    let err = from_value::<String>(&ph(0), &attachments).unwrap_err();
    assert!(err.to_string().contains("byte array"), "{err}");
    assert!(from_value::<char>(&ph(0), &[b(b"c")]).is_err());
    assert!(from_value::<i64>(&ph(0), &attachments).is_err());
    assert!(from_value::<bool>(&ph(0), &attachments).is_err());
    assert!(from_value::<()>(&ph(0), &attachments).is_err());
    assert!(from_value::<Message>(&ph(0), &attachments).is_err());
    let err = from_value::<Upload>(&ph(0), &attachments).unwrap_err();
    assert!(err.to_string().contains("byte array"), "{err}");
}

#[test]
fn bytes_inside_untagged_and_internally_tagged_types() {
    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(untagged)]
    enum Either {
        File { name: String, data: Bytes },
        Text(String),
    }
    let attachments = [b(b"\x00bin")];
    let file: Either = from_value(&json!({"name": "f", "data": ph(0)}), &attachments).unwrap();
    assert_eq!(
        file,
        Either::File {
            name: "f".into(),
            data: b(b"\x00bin")
        }
    );
    let text: Either = from_value(&json!("t"), &attachments).unwrap();
    assert_eq!(text, Either::Text("t".into()));

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(tag = "type")]
    enum Tagged {
        Blob { data: Bytes },
        Empty,
    }
    let blob: Tagged = from_value(&json!({"type": "Blob", "data": ph(0)}), &attachments).unwrap();
    assert_eq!(
        blob,
        Tagged::Blob {
            data: b(b"\x00bin")
        }
    );
    let empty: Tagged = from_value(&json!({"type": "Empty"}), &attachments).unwrap();
    assert_eq!(empty, Tagged::Empty);

    #[derive(Debug, PartialEq, Deserialize)]
    struct Outer {
        id: u32,
        #[serde(flatten)]
        rest: BTreeMap<String, Bytes>,
    }
    let outer: Outer = from_value(&json!({"id": 1, "x": ph(0)}), &attachments).unwrap();
    assert_eq!(outer.rest["x"], b(b"\x00bin"));
}

#[test]
fn enum_errors_are_clear() {
    assert!(from_value::<Message>(&json!({"Blob": ph(0), "Ping": null}), &[]).is_err());
    assert!(from_value::<Message>(&json!({}), &[]).is_err());
    assert!(from_value::<Message>(&json!("Nope"), &[]).is_err());
    assert!(from_value::<Message>(&json!(3), &[]).is_err());
    assert!(from_value::<Message>(&json!("Blob"), &[]).is_err());
    assert_eq!(
        from_value::<Message>(&json!({"Ping": null}), &[]).unwrap(),
        Message::Ping
    );
}

#[test]
fn newtypes_and_options_pass_through() {
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Blob(Bytes);
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(transparent)]
    struct Transparent(Option<Bytes>);
    let data = (Blob(b(b"x")), Transparent(Some(b(b"y"))), Transparent(None));
    let args = to_args(&data).unwrap();
    assert_eq!(args.values, vec![ph(0), ph(1), json!(null)]);
    let back: (Blob, Transparent, Transparent) = from_args(&args).unwrap();
    assert_eq!(back, data);
}

#[test]
fn error_messages_are_readable() {
    let err = from_args::<(i32, String)>(&Args::from_parts(vec![json!("a"), json!(1)], vec![]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"cannot deserialize the payload: invalid type: string "a", expected i32"#
    );
}

// ---------------------------------------------------------------------------------------------
// Property: from_value(to_value(x)) == x
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Tree {
    Bin(Bytes),
    Text(String),
    Int(i64),
    Maybe(Option<Box<Tree>>),
    List(Vec<Tree>),
    Map(BTreeMap<String, Tree>),
    Record {
        label: String,
        data: Bytes,
        children: Vec<Tree>,
    },
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(|v| Tree::Bin(Bytes::from(v))),
        ".{0,8}".prop_map(Tree::Text),
        any::<i64>().prop_map(Tree::Int),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::option::of(inner.clone()).prop_map(|t| Tree::Maybe(t.map(Box::new))),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Tree::List),
            proptest::collection::btree_map(".{0,6}", inner.clone(), 0..6).prop_map(Tree::Map),
            (
                ".{0,6}",
                proptest::collection::vec(any::<u8>(), 0..8),
                proptest::collection::vec(inner, 0..4)
            )
                .prop_map(|(label, data, children)| Tree::Record {
                    label,
                    data: Bytes::from(data),
                    children
                }),
        ]
    })
}

/// Counts the binary leaves, depth-first, collecting them in order.
fn binaries(tree: &Tree, out: &mut Vec<Bytes>) {
    match tree {
        Tree::Bin(data) => out.push(data.clone()),
        Tree::Text(_) | Tree::Int(_) | Tree::Maybe(None) => {}
        Tree::Maybe(Some(inner)) => binaries(inner, out),
        Tree::List(items) => items.iter().for_each(|t| binaries(t, out)),
        Tree::Map(map) => map.values().for_each(|t| binaries(t, out)),
        Tree::Record { data, children, .. } => {
            out.push(data.clone());
            children.iter().for_each(|t| binaries(t, out));
        }
    }
}

/// True if `value` contains no bytes that are not placeholders, i.e. binary never leaks into JSON
/// as arrays of numbers.
fn count_placeholders(value: &Value) -> usize {
    match value {
        Value::Array(items) => items.iter().map(count_placeholders).sum(),
        Value::Object(map) if map.len() == 2 && map.get("_placeholder") == Some(&json!(true)) => 1,
        Value::Object(map) => map.values().map(count_placeholders).sum(),
        _ => 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn value_round_trip(x in tree(), prefix in 0usize..3) {
        let mut attachments: Vec<Bytes> = (0..prefix).map(|i| Bytes::from(vec![i as u8])).collect();
        let value = to_value(&x, &mut attachments).unwrap();

        let mut expected: Vec<Bytes> = attachments[..prefix].to_vec();
        binaries(&x, &mut expected);
        prop_assert_eq!(&attachments, &expected, "attachments in depth-first order");
        prop_assert_eq!(count_placeholders(&value), expected.len() - prefix);

        let back: Tree = from_value(&value, &attachments).unwrap();
        prop_assert_eq!(&back, &x);

        // The JSON part survives text encoding (what goes over the wire).
        let reparsed: Value = serde_json::from_str(&value.to_string()).unwrap();
        let back: Tree = from_value(&reparsed, &attachments).unwrap();
        prop_assert_eq!(back, x);
    }

    #[test]
    fn args_round_trip(a in tree(), b in tree(), n in any::<i64>()) {
        let data = (a, n, b);
        let args = to_args(&data).unwrap();
        prop_assert_eq!(args.len(), 3);
        let mut expected = Vec::new();
        binaries(&data.0, &mut expected);
        binaries(&data.2, &mut expected);
        prop_assert_eq!(&args.attachments, &expected);
        prop_assert_eq!(args.has_binary(), !expected.is_empty());
        let back: (Tree, i64, Tree) = from_args(&args).unwrap();
        prop_assert_eq!(back, data);
    }

    #[test]
    fn value_target_is_identity(x in tree()) {
        // Deserializing into `Value` gives the wire JSON back, placeholders included.
        let mut attachments = Vec::new();
        let value = to_value(&x, &mut attachments).unwrap();
        let same: Value = from_value(&value, &attachments).unwrap();
        prop_assert_eq!(same, value);
    }
}

// ---------------------------------------------------------------------------------------------
// Property: without attachments, from_value agrees with serde_json::from_value
// ---------------------------------------------------------------------------------------------

/// Any JSON value of a few levels, with keys and scalars drawn from small sets so that the
/// targets below often fit (and often do not). No `_placeholder` keys: without attachments those
/// are plain objects anyway.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (0u64..300).prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        prop_oneof![
            Just("a"),
            Just("b"),
            Just("x"),
            Just("Unit"),
            Just("New"),
            Just("Pair"),
            Just("Rec"),
            Just("1"),
            Just("-2"),
            Just("true"),
            Just("é"),
            Just("")
        ]
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("a"),
                    Just("b"),
                    Just("x"),
                    Just("Unit"),
                    Just("New"),
                    Just("Pair"),
                    Just("Rec"),
                    Just("1"),
                    Just("-2"),
                    Just("true")
                ],
                inner,
                0..4
            )
            .prop_map(|map| Value::Object(
                map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

#[derive(Debug, PartialEq, Deserialize)]
struct Newtype(String);

#[derive(Debug, PartialEq, Deserialize)]
struct NewtypeList(Vec<Value>);

#[derive(Debug, PartialEq, Deserialize)]
struct TupleStruct(i64, Option<bool>);

#[derive(Debug, PartialEq, Deserialize)]
struct UnitStruct;

#[derive(Debug, PartialEq, Deserialize)]
struct Record {
    a: i64,
    #[serde(default)]
    b: Option<String>,
    #[serde(default)]
    x: Vec<f64>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Strict {
    a: bool,
}

#[derive(Debug, PartialEq, Deserialize)]
enum Variants {
    Unit,
    New(u8),
    Pair(i32, String),
    Rec { a: Option<i64> },
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(untagged)]
enum Untagged {
    Flag(bool),
    Number(i64),
    Words(Vec<String>),
    Record { a: Value },
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(tag = "a")]
enum Tagged {
    #[serde(rename = "x")]
    X { b: Option<i64> },
    #[serde(rename = "b")]
    B,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Flattened {
    b: Option<String>,
    #[serde(flatten)]
    rest: BTreeMap<String, Value>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
struct NewKey(String);

/// `from_value` with no attachments and `serde_json::from_value` both succeed with the same
/// result, or both fail.
fn agrees<T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
    value: &Value,
) -> Result<(), TestCaseError> {
    same_outcome::<T>(value, from_value::<T>(value, &[]), value)
}

/// `ours` (read from `input`) and serde_json's reading of `value` both succeed with the same
/// result, or both fail.
fn same_outcome<T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
    input: &dyn std::fmt::Debug,
    ours: Result<T, PayloadError>,
    value: &Value,
) -> Result<(), TestCaseError> {
    match (ours, serde_json::from_value::<T>(value.clone())) {
        (Ok(ours), Ok(theirs)) => prop_assert_eq!(ours, theirs, "{:?}", input),
        (Err(_), Err(_)) => {}
        (ours, theirs) => prop_assert!(
            false,
            "{:?} into {}: ours {:?}, serde_json {:?}",
            input,
            std::any::type_name::<T>(),
            ours,
            theirs
        ),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn from_value_agrees_with_serde_json(value in json_value()) {
        agrees::<Value>(&value)?;
        agrees::<()>(&value)?;
        agrees::<bool>(&value)?;
        agrees::<u8>(&value)?;
        agrees::<i32>(&value)?;
        agrees::<u64>(&value)?;
        agrees::<i128>(&value)?;
        agrees::<f32>(&value)?;
        agrees::<f64>(&value)?;
        agrees::<char>(&value)?;
        agrees::<String>(&value)?;
        agrees::<Option<String>>(&value)?;
        agrees::<Vec<u8>>(&value)?;
        agrees::<Vec<Value>>(&value)?;
        agrees::<(i64, String)>(&value)?;
        agrees::<[bool; 2]>(&value)?;
        agrees::<HashMap<String, Value>>(&value)?;
        agrees::<BTreeMap<i32, Value>>(&value)?;
        agrees::<BTreeMap<bool, Value>>(&value)?;
        agrees::<BTreeMap<char, Value>>(&value)?;
        agrees::<Newtype>(&value)?;
        agrees::<NewtypeList>(&value)?;
        agrees::<TupleStruct>(&value)?;
        agrees::<UnitStruct>(&value)?;
        agrees::<Record>(&value)?;
        agrees::<Strict>(&value)?;
        agrees::<Variants>(&value)?;
        agrees::<Vec<Variants>>(&value)?;
        agrees::<Untagged>(&value)?;
        agrees::<Tagged>(&value)?;
        agrees::<Flattened>(&value)?;
        agrees::<BTreeMap<NewKey, Value>>(&value)?;
        agrees::<BTreeMap<Option<String>, Value>>(&value)?;
        agrees::<serde::de::IgnoredAny>(&value)?;
    }

    /// `from_args` reads zero arguments as `null`, one as itself and several as their array
    /// (1-tuples aside, which take one argument as their element): then it agrees with
    /// serde_json on that value.
    #[test]
    fn from_args_agrees_with_serde_json_on_the_gathered_arguments(
        values in proptest::collection::vec(json_value(), 0..4)
    ) {
        let gathered = match values.as_slice() {
            [] => Value::Null,
            [one] => one.clone(),
            _ => Value::Array(values.clone()),
        };
        let args = Args::from_parts(values, vec![]);
        fn check<T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
            args: &Args,
            gathered: &Value,
        ) -> Result<(), TestCaseError> {
            same_outcome::<T>(&args.values, from_args::<T>(args), gathered)
        }
        check::<Value>(&args, &gathered)?;
        check::<()>(&args, &gathered)?;
        check::<Option<i64>>(&args, &gathered)?;
        check::<String>(&args, &gathered)?;
        check::<Vec<Value>>(&args, &gathered)?;
        check::<(Value, Value)>(&args, &gathered)?;
        check::<(i64, Option<String>, Value)>(&args, &gathered)?;
        check::<Newtype>(&args, &gathered)?;
        check::<NewtypeList>(&args, &gathered)?;
        check::<TupleStruct>(&args, &gathered)?;
        check::<UnitStruct>(&args, &gathered)?;
        check::<Record>(&args, &gathered)?;
        check::<Variants>(&args, &gathered)?;
        check::<Untagged>(&args, &gathered)?;
        check::<HashMap<String, Value>>(&args, &gathered)?;
        check::<serde::de::IgnoredAny>(&args, &gathered)?;
    }
}
