//! Query-string parsing (`application/x-www-form-urlencoded` style, as
//! Node's `querystring` module parses Engine.IO request URLs).

use std::borrow::Cow;

/// Decoded key/value pairs of a URL query string, in their original order.
///
/// The query string is peer input, so at most [`Query::MAX_PAIRS`] pairs are
/// kept; any further pairs are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Maximum number of pairs kept by [`Query::parse`].
    pub const MAX_PAIRS: usize = 256;

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

    /// The decoded value of the first pair of `raw` whose decoded key is `key`, found the way
    /// [`Query::parse`] would find it but without keeping the other pairs.
    ///
    /// A plain byte scan: routing looks up a few keys in every polling request, and `str::split`
    /// took about 1,300 instructions per lookup of an Engine.IO query (bench/ANALYSIS.md).
    pub fn find<'a>(raw: &'a str, key: &str) -> Option<Cow<'a, str>> {
        let raw = raw.strip_prefix('?').unwrap_or(raw);
        let bytes = raw.as_bytes();
        let mut start = 0;
        let mut pairs = 0;
        while start < bytes.len() && pairs < Self::MAX_PAIRS {
            let end = bytes[start..]
                .iter()
                .position(|&b| b == b'&')
                .map_or(bytes.len(), |at| start + at);
            if end > start {
                pairs += 1;
                // `&` and `=` are ASCII, so these are character boundaries.
                let segment = &raw[start..end];
                let eq = segment.bytes().position(|b| b == b'=');
                let (k, value) = segment.split_at(eq.unwrap_or(segment.len()));
                if encoded_equals(k, key) {
                    return Some(decode(value.strip_prefix('=').unwrap_or(value)));
                }
            }
            start = end + 1;
        }
        None
    }

    /// Parses the query component of `uri` (an empty [`Query`] if it has none).
    pub fn from_uri(uri: &::http::Uri) -> Query {
        uri.query().map(Query::parse).unwrap_or_default()
    }

    /// The value of the first pair whose key is `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
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

/// Whether `encoded` decodes to `key`, without decoding when it has nothing to decode.
fn encoded_equals(encoded: &str, key: &str) -> bool {
    if encoded.bytes().any(|b| b == b'%' || b == b'+') {
        decode(encoded) == key
    } else {
        encoded == key
    }
}

/// Percent-decodes one key or value (`+` is a space).
fn decode(input: &str) -> Cow<'_, str> {
    if !input.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(input);
    }
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
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
    fn find_agrees_with_parse_on_the_first_pair_of_a_key() {
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
        // Past the pair limit neither sees a key.
        let many = format!("{}late=1", "x=1&".repeat(Query::MAX_PAIRS));
        assert_eq!(Query::find(&many, "late"), None);
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
    fn repeated_keys_first_wins() {
        let q = Query::parse("sid=one&sid=two");
        assert_eq!(q.get("sid"), Some("one"));
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
        let raw: Vec<String> = (0..1000).map(|i| format!("k{i}=v{i}")).collect();
        let q = Query::parse(&raw.join("&"));
        assert_eq!(q.len(), Query::MAX_PAIRS);
        assert_eq!(q.get("k255"), Some("v255"));
        assert_eq!(q.get("k256"), None);
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
    }
}
