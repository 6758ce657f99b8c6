//! Query-string parsing (`application/x-www-form-urlencoded` style, as engine.io 6 reads an
//! Engine.IO request's URL: `Object.fromEntries(new URL(url).searchParams)`, in which the last of
//! a repeated key wins and no number of pairs is too many).

use std::borrow::Cow;

/// Decoded key/value pairs of a URL query string, in their original order.
///
/// The query string is peer input, so at most [`Query::MAX_PAIRS`] pairs are
/// kept; any further pairs are ignored. [`Query::find`] and [`Query::find_each`], which keep
/// nothing, read them all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Maximum number of pairs kept by [`Query::parse`] (Node's `querystring` default
    /// `maxKeys`, which the reference server reads a JSONP form with). What the server routes
    /// on is looked up with [`Query::find_each`], which has no such limit, as the reference
    /// server's `URLSearchParams` has none.
    pub const MAX_PAIRS: usize = 1000;

    /// Parses a raw query string such as `EIO=4&transport=polling&t=N8hyd6w`.
    ///
    /// * Pairs are separated by `&`; empty segments are skipped.
    /// * Keys and values are percent-decoded, with `+` meaning a space.
    ///   Invalid escapes (`%zz`, a trailing `%`) are kept literally, and byte
    ///   sequences that are not UTF-8 are decoded lossily (U+FFFD).
    /// * A segment without `=` is a key with an empty value.
    /// * A single leading `?` is ignored.
    pub fn parse(raw: &str) -> Query {
        let raw = raw.strip_prefix('?').unwrap_or(raw);
        let pairs = raw
            .split('&')
            .filter(|segment| !segment.is_empty())
            .take(Self::MAX_PAIRS)
            .map(|segment| {
                let (key, value) = segment.split_once('=').unwrap_or((segment, ""));
                (decode(key).into_owned(), decode(value).into_owned())
            })
            .collect();
        Query { pairs }
    }

    /// The decoded value of the last pair of `raw` whose decoded key is `key` (as the reference
    /// server reads a repeated key), found the way [`Query::get`] would find it in
    /// [`Query::parse`]'s pairs, but without keeping the other pairs or a limit on their number
    /// (so past [`Query::MAX_PAIRS`] pairs the two can differ).
    ///
    /// A plain byte scan: routing looks up a few keys in every polling request, and `str::split`
    /// took about 1,300 instructions per lookup of an Engine.IO query (bench/ANALYSIS.md).
    pub fn find<'a>(raw: &'a str, key: &str) -> Option<Cow<'a, str>> {
        let [found] = Self::find_each(raw, [key]);
        found
    }

    /// [`Query::find`] for several keys in one scan of `raw`: the value of each key's last pair,
    /// in the order of `keys`. A request's router reads several parameters, and a scan per key
    /// read the whole query again for every key it lacks (bench/ANALYSIS.md).
    pub fn find_each<'a, const N: usize>(
        raw: &'a str,
        keys: [&str; N],
    ) -> [Option<Cow<'a, str>>; N] {
        let mut found: [Option<Cow<'a, str>>; N] = std::array::from_fn(|_| None);
        for pair in RawPairs::new(raw) {
            let key = pair.key();
            for (slot, wanted) in found.iter_mut().zip(keys) {
                if *key == *wanted {
                    *slot = Some(pair.value());
                }
            }
        }
        found
    }

    /// Parses the query component of `uri` (an empty [`Query`] if it has none).
    pub fn from_uri(uri: &::http::Uri) -> Query {
        uri.query().map(Query::parse).unwrap_or_default()
    }

    /// The value of the last pair whose key is `key` (as the reference server reads a repeated
    /// key).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether a pair with key `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == key)
    }

    /// All pairs, in order, repeated keys included.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of pairs kept.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether no pair was kept.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

impl<'a> IntoIterator for &'a Query {
    type Item = (&'a str, &'a str);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a str, &'a str),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// One non-empty pair of a raw query, still encoded, and whether each side has anything to
/// decode (a `%` or `+`).
struct RawPair<'a> {
    key: &'a str,
    value: &'a str,
    key_escaped: bool,
    value_escaped: bool,
}

impl<'a> RawPair<'a> {
    fn key(&self) -> Cow<'a, str> {
        if self.key_escaped {
            decode(self.key)
        } else {
            Cow::Borrowed(self.key)
        }
    }

    fn value(&self) -> Cow<'a, str> {
        if self.value_escaped {
            decode(self.value)
        } else {
            Cow::Borrowed(self.value)
        }
    }
}

/// The non-empty pairs of a raw query, all of them, split as [`Query::parse`] splits them. One pass finds a segment's end, its first `=` and its escapes
/// together, eight bytes to a step (`crate::swar`).
struct RawPairs<'a> {
    raw: &'a str,
    at: usize,
}

impl<'a> RawPairs<'a> {
    fn new(raw: &'a str) -> Self {
        RawPairs {
            raw: raw.strip_prefix('?').unwrap_or(raw),
            at: 0,
        }
    }
}

impl<'a> Iterator for RawPairs<'a> {
    type Item = RawPair<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        use crate::swar::{first_match, lanes_equal};
        let bytes = self.raw.as_bytes();
        while self.at < bytes.len() {
            let start = self.at;
            let (mut equals, mut key_escaped, mut value_escaped) = (None, false, false);
            let mut from = start;
            let end = loop {
                let marked = first_match(&bytes[from..], b'a', |word| {
                    lanes_equal(word, b'&')
                        | lanes_equal(word, b'=')
                        | lanes_equal(word, b'%')
                        | lanes_equal(word, b'+')
                });
                let Some(offset) = marked else {
                    break bytes.len();
                };
                let at = from + offset;
                match bytes[at] {
                    b'&' => break at,
                    b'=' if equals.is_none() => equals = Some(at),
                    b'%' | b'+' if equals.is_none() => key_escaped = true,
                    b'%' | b'+' => value_escaped = true,
                    _ => {}
                }
                from = at + 1;
            };
            self.at = end + 1;
            if end > start {
                // `&` and `=` are ASCII, so these are character boundaries.
                let (key, value) = match equals {
                    Some(at) => (&self.raw[start..at], &self.raw[at + 1..end]),
                    None => (&self.raw[start..end], ""),
                };
                return Some(RawPair {
                    key,
                    value,
                    key_escaped,
                    value_escaped,
                });
            }
        }
        None
    }
}

/// Percent-decodes one key or value (`+` is a space).
fn decode(input: &str) -> Cow<'_, str> {
    unescape(input, true)
}

/// Percent-decodes `input` as Node's `querystring` and Python's `unquote` do: `%` and two hex
/// digits is that byte, any other `%` stays as it is, and bytes that are not UTF-8 become U+FFFD.
/// With `plus_is_space`, `+` is a space (a query's keys and values).
pub(crate) fn unescape(input: &str, plus_is_space: bool) -> Cow<'_, str> {
    if !input
        .bytes()
        .any(|b| b == b'%' || (plus_is_space && b == b'+'))
    {
        return Cow::Borrowed(input);
    }
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push(hi << 4 | lo);
                    i += 3;
                } else {
                    out.push(b'%');
                    i += 1;
                }
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_agrees_with_parse_on_the_last_pair_of_a_key() {
        for raw in [
            "?a=1&b=x%20y&a=2&c+d=e+f&flag&%zz=bad%",
            "&&a==1&&b=&=v&a%3D=3&%61=4&",
            "EIO=4&transport=polling&t=N8hyd6w&sid=abc",
            "",
            "?",
            "a",
        ] {
            let parsed = Query::parse(raw);
            for key in [
                "a", "b", "c d", "flag", "%zz", "a=", "sid", "EIO", "missing", "",
            ] {
                assert_eq!(
                    Query::find(raw, key).as_deref(),
                    parsed.get(key),
                    "{raw} {key}"
                );
            }
        }
        // Past the limit of the pairs parse keeps, find still sees a key, as the reference
        // server does.
        let many = format!("{}late=1", "x=1&".repeat(Query::MAX_PAIRS));
        assert_eq!(Query::find(&many, "late").as_deref(), Some("1"));
        assert_eq!(Query::parse(&many).get("late"), None);
    }

    #[test]
    fn engineio_handshake_query() {
        let q = Query::parse("EIO=4&transport=polling&t=N8hyd6w");
        assert_eq!(q.get("EIO"), Some("4"));
        assert_eq!(q.get("transport"), Some("polling"));
        assert_eq!(q.get("t"), Some("N8hyd6w"));
        assert_eq!(q.get("sid"), None);
        assert_eq!(q.len(), 3);
        assert_eq!(
            q.iter().collect::<Vec<_>>(),
            vec![("EIO", "4"), ("transport", "polling"), ("t", "N8hyd6w")]
        );
    }

    #[test]
    fn percent_and_plus_decoding() {
        let q = Query::parse("path=%2Fsocket.io%2f&msg=hello+world&k%20ey=a%2Bb");
        assert_eq!(q.get("path"), Some("/socket.io/"));
        assert_eq!(q.get("msg"), Some("hello world"));
        assert_eq!(q.get("k ey"), Some("a+b"));
    }

    #[test]
    fn utf8_decoding() {
        let q = Query::parse("name=%C3%A9t%C3%A9&bad=%FF");
        assert_eq!(q.get("name"), Some("été"));
        assert_eq!(q.get("bad"), Some("\u{FFFD}"));
    }

    #[test]
    fn invalid_escapes_kept_literally() {
        let q = Query::parse("a=%zz&b=%&c=%4&d=100%&e=%%41");
        assert_eq!(q.get("a"), Some("%zz"));
        assert_eq!(q.get("b"), Some("%"));
        assert_eq!(q.get("c"), Some("%4"));
        assert_eq!(q.get("d"), Some("100%"));
        assert_eq!(q.get("e"), Some("%A"));
    }

    #[test]
    fn keys_without_equals_and_empty_segments() {
        let q = Query::parse("&flag&&x=&=v&y=a=b&");
        assert_eq!(
            q.iter().collect::<Vec<_>>(),
            vec![("flag", ""), ("x", ""), ("", "v"), ("y", "a=b")]
        );
        assert!(q.contains_key("flag"));
        assert_eq!(q.get("flag"), Some(""));
    }

    #[test]
    fn repeated_keys_last_wins() {
        let q = Query::parse("sid=one&sid=two");
        assert_eq!(q.get("sid"), Some("two"));
        assert_eq!(
            Query::find("sid=one&sid=two", "sid").as_deref(),
            Some("two")
        );
        let all: Vec<_> = (&q).into_iter().filter(|(k, _)| *k == "sid").collect();
        assert_eq!(all, vec![("sid", "one"), ("sid", "two")]);
    }

    #[test]
    fn empty_and_leading_question_mark() {
        assert!(Query::parse("").is_empty());
        assert_eq!(Query::parse("?EIO=3").get("EIO"), Some("3"));
    }

    #[test]
    fn pair_cap() {
        let raw: Vec<String> = (0..1500).map(|i| format!("k{i}=v{i}")).collect();
        let q = Query::parse(&raw.join("&"));
        assert_eq!(q.len(), 1000);
        assert_eq!(q.get("k999"), Some("v999"));
        assert_eq!(q.get("k1000"), None);
        assert_eq!(Query::find(&raw.join("&"), "k999").as_deref(), Some("v999"));
        assert_eq!(
            Query::find(&raw.join("&"), "k1499").as_deref(),
            Some("v1499")
        );
    }

    #[test]
    fn from_uri() {
        let uri: ::http::Uri = "/socket.io/?EIO=4&transport=websocket&sid=abc%3D"
            .parse()
            .unwrap();
        let q = Query::from_uri(&uri);
        assert_eq!(q.get("transport"), Some("websocket"));
        assert_eq!(q.get("sid"), Some("abc="));
        let uri: ::http::Uri = "/socket.io/".parse().unwrap();
        assert!(Query::from_uri(&uri).is_empty());
    }

    proptest::proptest! {
        #[test]
        fn find_agrees_with_parse_on_any_query(
            raw in "[?a-c=&%+2D0-9]{0,40}",
            key in "[a-c=% +]{0,3}",
        ) {
            let parsed = Query::parse(&raw);
            let found = Query::find(&raw, &key);
            proptest::prop_assert_eq!(found.as_deref(), parsed.get(&key));
        }

        #[test]
        fn find_each_agrees_with_parse_for_every_key(
            raw in "[?a-c=&%+2D0-9]{0,40}",
            keys in proptest::array::uniform3("[a-c=% +]{0,2}"),
        ) {
            let parsed = Query::parse(&raw);
            let found = Query::find_each(&raw, [&*keys[0], &*keys[1], &*keys[2]]);
            for (key, value) in keys.iter().zip(&found) {
                proptest::prop_assert_eq!(value.as_deref(), parsed.get(key));
            }
        }
    }
}
