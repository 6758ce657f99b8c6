//! JSON of packet payloads, read into and written from `serde_json::Value`.
//!
//! Going through serde's generic `Deserialize`/`Serialize` for `Value` cost about 970
//! instructions to read an echo event's `["echo","<22 characters>"]` and 340 to write its
//! acknowledgement's array (callgrind, `bench/instructions_per_ack.sh`; bench/ANALYSIS.md). Both directions here handle plain JSON
//! themselves (850 and 220 instructions, the allocations of the values included) and hand
//! everything else to serde_json, so what is accepted, the values produced, the errors and the
//! bytes written are serde_json's:
//! - [`parse`] reads strings without escapes, integers without fraction or exponent that fit in
//!   18 digits, `true`, `false`, `null`, and arrays and objects of those nested up to
//!   [`MAX_FAST_DEPTH`]; on anything else (an escape, a float, a syntax error, ...) it parses the
//!   whole text again with serde_json (such text pays for the fast path's attempt up to the
//!   first such token).
//! - [`write`] writes strings that need no escape and integers itself; serde_json writes the
//!   rest (escaped strings, floats).

use serde_json::{Map, Number, Value};

use crate::swar::{lanes_below, lanes_equal};

/// Nesting the fast path reads; deeper text goes to serde_json (whose own limit is 128), so
/// the fast path's recursion stays shallow.
const MAX_FAST_DEPTH: usize = 32;

/// Reads one JSON value filling the whole of `text` (surrounding whitespace allowed).
///
/// A `\u` escape of half a UTF-16 surrogate pair with no other half (`"\ud83d"`) reads as
/// U+FFFD: JavaScript's `JSON.stringify` writes such escapes for a string cut inside an emoji,
/// and the reference servers take them, but a Rust string cannot hold the half, and serde_json
/// refuses the whole text.
pub(crate) fn parse(text: &str) -> Result<Value, serde_json::Error> {
    match FastReader::new(text).read_document() {
        Some(value) => Ok(value),
        None => serde_json::from_str(text).or_else(|error| match without_lone_surrogates(text) {
            Some(mended) => serde_json::from_str(&mended),
            None => Err(error),
        }),
    }
}

/// Nesting serde_json reads by itself: it refuses the 128th level.
const SERDE_JSON_DEPTH: usize = 127;

/// [`parse`], for text that may nest up to `max_depth` levels of arrays and objects, past
/// serde_json's own limit (a broker message wraps a client's arguments, which may be as deep as
/// serde_json reads, in a few levels of its own). Deeper text is refused as [`parse`] refuses
/// it, without being read recursively. `max_depth` is at least serde_json's own 127.
pub(crate) fn parse_nested(text: &str, max_depth: usize) -> Result<Value, serde_json::Error> {
    debug_assert!(max_depth >= SERDE_JSON_DEPTH);
    let error = match parse(text) {
        Ok(value) => return Ok(value),
        Err(error) => error,
    };
    let depth = nesting_depth(text);
    if depth <= SERDE_JSON_DEPTH || depth > max_depth {
        return Err(error);
    }
    let unbounded = |text: &str| {
        let mut reader = serde_json::Deserializer::from_str(text);
        reader.disable_recursion_limit();
        let value = serde::Deserialize::deserialize(&mut reader)?;
        reader.end().map(|()| value)
    };
    unbounded(text).or_else(|error| match without_lone_surrogates(text) {
        Some(mended) => unbounded(&mended),
        None => Err(error),
    })
}

/// The deepest nesting of arrays and objects in `text`, brackets inside strings not counted.
/// A scan without recursion, for text that serde_json would refuse.
pub(crate) fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in text.as_bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// `text` with every `\u` escape of an unpaired UTF-16 surrogate replaced by `\ufffd`; `None`
/// when it has none. Only escapes are looked at: a backslash outside a string is a syntax error
/// however it is read.
pub(crate) fn without_lone_surrogates(text: &str) -> Option<String> {
    /// The code unit of the `\uXXXX` escape at the start of `bytes`.
    fn escaped_unit(bytes: &[u8]) -> Option<u16> {
        let hex = bytes.strip_prefix(b"\\u")?.get(..4)?;
        u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    }
    let bytes = text.as_bytes();
    let mut mended: Option<String> = None;
    // Bytes of `text` already copied to `mended`, or looked at and kept.
    let mut kept = 0;
    let mut at = 0;
    // `at` may pass the end after an escape cut short by it.
    while let Some(offset) = bytes
        .get(at..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\\'))
    {
        at += offset;
        let Some(unit) = escaped_unit(&bytes[at..]) else {
            // Another escape (`\\` included): its two characters.
            at += 2;
            continue;
        };
        let paired = match unit {
            0xD800..=0xDBFF => {
                escaped_unit(&bytes[at + 6..]).is_some_and(|next| (0xDC00..=0xDFFF).contains(&next))
            }
            0xDC00..=0xDFFF => false,
            _ => {
                at += 6;
                continue;
            }
        };
        if paired {
            at += 12;
            continue;
        }
        let out = mended.get_or_insert_with(|| String::with_capacity(text.len()));
        out.push_str(&text[kept..at]);
        out.push_str("\\ufffd");
        at += 6;
        kept = at;
    }
    let mut out = mended?;
    out.push_str(&text[kept..]);
    Some(out)
}

/// Appends `value` to `out` as compact JSON, byte for byte what `serde_json::to_writer` writes.
pub(crate) fn write(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => write_number(out, number),
        Value::String(string) => write_string(out, string),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, key);
                out.push(b':');
                write(out, item);
            }
            out.push(b'}');
        }
    }
}

fn write_number(out: &mut Vec<u8>, number: &Number) {
    if let Some(n) = number.as_u64() {
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    } else if let Some(n) = number.as_i64() {
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    } else {
        // Floats: serde_json's shortest round-trip form. Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, number);
    }
}

fn write_string(out: &mut Vec<u8>, string: &str) {
    if first_special(string.as_bytes()).is_some() {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, string);
    } else {
        out.reserve(string.len() + 2);
        out.push(b'"');
        out.extend_from_slice(string.as_bytes());
        out.push(b'"');
    }
}

/// The index of the first byte of `bytes` that JSON strings must escape: a control character
/// (below 0x20), `"` or `\` (serde_json escapes exactly these). They are also the bytes that end
/// a string or start an escape when reading. Eight bytes to a step: a byte-by-byte loop took
/// about 10 instructions per byte of an event's strings.
fn first_special(bytes: &[u8]) -> Option<usize> {
    crate::swar::first_match(bytes, b'a', |word| {
        lanes_below(word, 0x20) | lanes_equal(word, b'"') | lanes_equal(word, b'\\')
    })
}

/// The fast path: `None` means "not plain JSON here, ask serde_json", never "invalid".
struct FastReader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> FastReader<'a> {
    fn new(text: &'a str) -> Self {
        FastReader { text, at: 0 }
    }

    fn read_document(&mut self) -> Option<Value> {
        let value = self.read_value(0)?;
        self.skip_whitespace();
        (self.at == self.text.len()).then_some(value)
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// Consumes `byte` if it comes next (after whitespace).
    fn eat(&mut self, byte: u8) -> bool {
        self.skip_whitespace();
        let found = self.peek() == Some(byte);
        if found {
            self.at += 1;
        }
        found
    }

    fn read_value(&mut self, depth: usize) -> Option<Value> {
        self.skip_whitespace();
        match self.peek()? {
            b'"' => self.read_string().map(|s| Value::String(s.to_owned())),
            b'[' if depth < MAX_FAST_DEPTH => self.read_array(depth + 1),
            b'{' if depth < MAX_FAST_DEPTH => self.read_object(depth + 1),
            b't' => self.read_literal("true", Value::Bool(true)),
            b'f' => self.read_literal("false", Value::Bool(false)),
            b'n' => self.read_literal("null", Value::Null),
            b'-' | b'0'..=b'9' => self.read_integer(),
            _ => None,
        }
    }

    fn read_literal(&mut self, word: &str, value: Value) -> Option<Value> {
        let found = self
            .text
            .as_bytes()
            .get(self.at..)?
            .starts_with(word.as_bytes());
        if !found {
            return None;
        }
        self.at += word.len();
        Some(value)
    }

    /// A string without escapes, the opening quote next; the slice between the quotes.
    fn read_string(&mut self) -> Option<&'a str> {
        let start = self.at + 1;
        let bytes = self.text.as_bytes();
        let length = first_special(bytes.get(start..)?)?;
        let end = start + length;
        if bytes[end] != b'"' {
            // An escape or a raw control character: serde_json decides.
            return None;
        }
        self.at = end + 1;
        // Both ends sit next to an ASCII quote, so they are character boundaries.
        self.text.get(start..end)
    }

    /// An integer of at most 18 digits (no overflow possible) with no fraction or exponent;
    /// `-0` and leading zeros are left to serde_json.
    fn read_integer(&mut self) -> Option<Value> {
        let bytes = self.text.as_bytes();
        let negative = bytes[self.at] == b'-';
        let start = self.at + usize::from(negative);
        let digits = bytes
            .get(start..)?
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let end = start + digits;
        if digits == 0
            || digits > 18
            || (bytes[start] == b'0' && (digits > 1 || negative))
            || matches!(bytes.get(end), Some(b'.' | b'e' | b'E'))
        {
            return None;
        }
        let magnitude = bytes[start..end]
            .iter()
            .fold(0u64, |n, &b| n * 10 + u64::from(b - b'0'));
        self.at = end;
        Some(if negative {
            // 18 digits fit in an i64 either sign.
            Value::Number(Number::from(-i64::try_from(magnitude).ok()?))
        } else {
            Value::Number(Number::from(magnitude))
        })
    }

    fn read_array(&mut self, depth: usize) -> Option<Value> {
        self.at += 1;
        let mut items = Vec::new();
        if self.eat(b']') {
            return Some(Value::Array(items));
        }
        loop {
            items.push(self.read_value(depth)?);
            if self.eat(b']') {
                return Some(Value::Array(items));
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    fn read_object(&mut self, depth: usize) -> Option<Value> {
        self.at += 1;
        let mut map = Map::new();
        if self.eat(b'}') {
            return Some(Value::Object(map));
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return None;
            }
            let key = self.read_string()?;
            if !self.eat(b':') {
                return None;
            }
            let value = self.read_value(depth)?;
            // A repeated key keeps its first position and takes the last value, as in serde_json.
            map.insert(key.to_owned(), value);
            if self.eat(b'}') {
                return Some(Value::Object(map));
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn nesting_depth_counts_brackets_outside_strings_only() {
        assert_eq!(nesting_depth(r#"[1,{"a":[2]}]"#), 3);
        assert_eq!(nesting_depth(r#"["[[[{{{", "\\", "\"[[["]"#), 1);
        assert_eq!(nesting_depth("7"), 0);
    }

    #[test]
    fn parse_nested_reads_past_serde_json_up_to_the_given_depth_only() {
        let deep = |depth: usize| format!("{}\"\\ud83d\"{}", "[".repeat(depth), "]".repeat(depth));
        assert!(parse(&deep(127)).is_ok());
        assert!(parse(&deep(128)).is_err());
        // A lone surrogate half reads as U+FFFD there too.
        let value = parse_nested(&deep(129), 129).unwrap();
        let mut inner = &value;
        for _ in 0..129 {
            inner = &inner[0];
        }
        assert_eq!(inner, "\u{fffd}");
        assert!(parse_nested(&deep(130), 129).is_err());
        assert!(parse_nested("[[1]", 129).is_err());
    }

    /// The bytes [`first_special`] looks for, one at a time.
    fn needs_escape(byte: u8) -> bool {
        byte < 0x20 || byte == b'"' || byte == b'\\'
    }

    /// What serde_json makes of `text`: the value, or that it is an error.
    fn reference(text: &str) -> Option<Value> {
        serde_json::from_str(text).ok()
    }

    #[test]
    fn the_fast_path_reads_plain_event_payloads() {
        for text in [
            r#"["echo","echo-payload-0123456789"]"#,
            r#" [ "a" , 1 , -2 , true , false , null , [] , {} ] "#,
            r#"{"a":{"b":[1,2,{"c":"d"}]},"e":0}"#,
            "999999999999999999",
            "-999999999999999999",
        ] {
            let value = FastReader::new(text).read_document();
            assert!(value.is_some(), "{text} should take the fast path");
            assert_eq!(value, reference(text), "{text}");
        }
    }

    #[test]
    fn serde_json_reads_what_the_fast_path_leaves() {
        for text in [
            r#""tab\tquote\"""#,
            r#""\u00e9\ud83d\ude00""#,
            "1.5",
            "1e3",
            "-0",
            "01",
            "1234567890123456789",
            "18446744073709551616",
            "-9223372036854775809",
            "\"raw\u{1}control\"",
            "[1,]",
            "{\"a\":1,}",
            "[1 2]",
            "{\"a\" 1}",
            "tru",
            "nul",
            "[",
            "",
            "  ",
            "[1] x",
            "{1:2}",
        ] {
            assert_eq!(FastReader::new(text).read_document(), None, "{text}");
            assert_eq!(parse(text).ok(), reference(text), "{text}");
        }
    }

    #[test]
    fn repeated_keys_keep_their_first_place_and_last_value() {
        let text = r#"{"b":1,"a":2,"b":3}"#;
        let value = parse(text).unwrap();
        assert_eq!(Some(&value), reference(text).as_ref());
        assert_eq!(
            value.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["b", "a"]
        );
        assert_eq!(value["b"], 3);
    }

    #[test]
    fn nesting_beyond_the_fast_depth_goes_to_serde_json() {
        let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        assert!(
            FastReader::new(&deep(MAX_FAST_DEPTH))
                .read_document()
                .is_some()
        );
        assert!(
            FastReader::new(&deep(MAX_FAST_DEPTH + 1))
                .read_document()
                .is_none()
        );
        assert_eq!(parse(&deep(100)).ok(), reference(&deep(100)));
        // serde_json's own limit still applies.
        assert!(parse(&deep(1000)).is_err());
    }

    #[test]
    fn written_values_match_serde_json_byte_for_byte() {
        let value = json!({
            "plain": "text",
            "escaped": "a\"b\\c\nd\u{1f}e\u{7f}/é😀",
            "numbers": [0, 1, -1, u64::MAX, i64::MIN, 1.5, -0.0, 1e300],
            "nested": [[], {}, null, true, false],
        });
        let mut out = Vec::new();
        write(&mut out, &value);
        assert_eq!(out, serde_json::to_vec(&value).unwrap());
    }

    /// Any JSON value, with strings that sometimes need escapes and every kind of number.
    fn any_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[a-z0-9 ]{0,12}".prop_map(Value::String),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("[a-z\"\\\\]{0,4}", inner), 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn a_lone_half_of_a_surrogate_pair_reads_as_the_replacement_character() {
        for (text, expected) in [
            (r#"["m","\ud83d"]"#, json!(["m", "\u{FFFD}"])),
            (r#""a\udc00b""#, json!("a\u{FFFD}b")),
            (r#""\ud83d\u0041""#, json!("\u{FFFD}A")),
            (r#""\ude00\ud83d""#, json!("\u{FFFD}\u{FFFD}")),
            (
                r#"{"\ud800":"\ud83d\ude00"}"#,
                json!({"\u{FFFD}": "\u{1F600}"}),
            ),
        ] {
            assert_eq!(parse(text).ok(), Some(expected), "{text}");
        }
    }

    #[test]
    fn pairs_and_escaped_backslashes_are_left_alone() {
        for text in [r#""\ud83d\ude00""#, r#""\\ud83d""#, r#""\u00e9\n""#] {
            assert_eq!(without_lone_surrogates(text), None, "{text}");
            assert_eq!(parse(text).ok(), reference(text), "{text}");
        }
    }

    #[test]
    fn escapes_cut_short_are_errors_not_panics() {
        for text in [
            "\"",
            "\"\\",
            "\"\\u",
            "\"\\ud83",
            "\"\\ud83d\\",
            "\"\\ud83d\\ude0",
            "\\",
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
    }

    proptest! {
        #[test]
        fn first_special_finds_the_first_byte_to_escape(bytes in prop::collection::vec(
            prop_oneof![any::<u8>(), Just(b'"'), Just(b'\\'), Just(0x1f), Just(0x20), Just(b'a')],
            0..40,
        )) {
            prop_assert_eq!(first_special(&bytes), bytes.iter().position(|&b| needs_escape(b)));
        }

        #[test]
        fn writing_matches_serde_json(value in any_value()) {
            let mut out = Vec::new();
            write(&mut out, &value);
            prop_assert_eq!(out, serde_json::to_vec(&value).unwrap());
        }

        #[test]
        fn parsing_written_json_matches_serde_json(value in any_value(), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                serde_json::to_string(&value).unwrap()
            };
            prop_assert_eq!(parse(&text).ok(), reference(&text));
        }

        #[test]
        fn parsing_any_text_matches_serde_json(text in "[\\[\\]{}\",:0-9a-z.eE+\\- \\\\tnrul]{0,24}") {
            // serde_json, but for halves of surrogate pairs, which read as U+FFFD.
            let mended = without_lone_surrogates(&text).unwrap_or_else(|| text.clone());
            prop_assert_eq!(parse(&text).ok(), reference(&mended));
        }
    }
}
