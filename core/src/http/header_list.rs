//! [`HeaderList`]: request headers kept for a connection's whole life in one allocation.
//!
//! A handshake's headers live as long as its connection, and an idle server holds thousands of
//! connections. An `http::HeaderMap` of a browser's handshake costs a hash index, a bucket of
//! about 100 bytes per header and an allocation per value; this list stores the same names and
//! values back to back in one buffer, and looks them up by a linear scan (a handshake has a few
//! dozen headers at most, and they are read rarely: in connect handlers).

use ::http::{HeaderMap, HeaderName, HeaderValue};

/// Header names (lowercase, as `http` keeps them) and values of a request.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HeaderList {
    /// Each header's name bytes, then its value bytes.
    bytes: Box<[u8]>,
    /// Where each header's name ends and its value ends, in `bytes`: two offsets per header.
    ends: Box<[u32]>,
}

impl HeaderList {
    /// Copies the headers of `map`. Headers past 4 GiB in total (which no HTTP server accepts)
    /// are dropped rather than stored with wrapped offsets.
    pub fn from_map(map: &HeaderMap) -> Self {
        let total: usize = map
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        let mut bytes = Vec::with_capacity(total);
        let mut ends = Vec::with_capacity(map.len() * 2);
        for (name, value) in map {
            let end = bytes.len() + name.as_str().len() + value.len();
            if u32::try_from(end).is_err() {
                break;
            }
            bytes.extend_from_slice(name.as_str().as_bytes());
            ends.push(bytes.len() as u32);
            bytes.extend_from_slice(value.as_bytes());
            ends.push(bytes.len() as u32);
        }
        HeaderList {
            bytes: bytes.into_boxed_slice(),
            ends: ends.into_boxed_slice(),
        }
    }

    /// Every header as (lowercase name, value bytes), repeated names included, in the order of
    /// the map they were copied from (the values of one name together, in request order).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.ends.chunks_exact(2).scan(0usize, |start, pair| {
            let (name_end, value_end) = (pair[0] as usize, pair[1] as usize);
            let name = &self.bytes[*start..name_end];
            let value = &self.bytes[name_end..value_end];
            *start = value_end;
            // Names came from `HeaderName::as_str`, so they are ASCII.
            Some((std::str::from_utf8(name).unwrap_or_default(), value))
        })
    }

    /// The values of header `name` (any case), in request order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// The first value of header `name` (any case).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// The first value of header `name` (any case), when it is UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Whether header `name` (any case) is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The number of headers, repeated names counted each time.
    pub fn len(&self) -> usize {
        self.ends.len() / 2
    }

    /// Whether there is no header.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The headers as an `http::HeaderMap` (a new map on every call).
    pub fn to_header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.len());
        for (name, value) in self.iter() {
            // Both were valid in the map they were copied from.
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(value),
            ) {
                map.append(name, value);
            }
        }
        map
    }
}

impl From<&HeaderMap> for HeaderList {
    fn from(map: &HeaderMap) -> Self {
        HeaderList::from_map(map)
    }
}

/// Headers whose values `Debug` leaves out: credentials that would otherwise reach logs.
const SECRET_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

impl std::fmt::Debug for HeaderList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(name, value)| {
                let shown = if SECRET_HEADERS.contains(&name) {
                    "Sensitive".into()
                } else {
                    String::from_utf8_lossy(value)
                };
                (name, shown)
            }))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        map
    }

    #[test]
    fn finds_values_by_name_in_any_case_and_keeps_repeated_headers() {
        let list = HeaderList::from_map(&map(&[
            ("host", "example.com"),
            ("cookie", "a=1"),
            ("x-token", "t0k"),
            ("cookie", "b=2"),
        ]));
        assert_eq!(list.len(), 4);
        assert_eq!(list.get_str("Host"), Some("example.com"));
        assert_eq!(list.get("X-TOKEN"), Some(&b"t0k"[..]));
        assert_eq!(
            list.get_all("cookie").collect::<Vec<_>>(),
            vec![&b"a=1"[..], &b"b=2"[..]]
        );
        assert!(list.contains("x-token"));
        assert!(!list.contains("x-missing"));
        assert_eq!(list.get("x-missing"), None);
    }

    #[test]
    fn iterates_in_the_maps_order_and_converts_back_to_an_equal_map() {
        let original = map(&[("a", "1"), ("b", ""), ("a", "2"), ("c", "three")]);
        let list = HeaderList::from_map(&original);
        assert_eq!(
            list.iter().collect::<Vec<_>>(),
            original
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_bytes()))
                .collect::<Vec<_>>()
        );
        assert_eq!(list.to_header_map(), original);
    }

    #[test]
    fn non_utf8_values_are_kept_as_bytes() {
        let mut original = HeaderMap::new();
        original.insert(
            "x-raw",
            HeaderValue::from_bytes(&[0xff, b'a']).expect("value"),
        );
        let list = HeaderList::from_map(&original);
        assert_eq!(list.get("x-raw"), Some(&[0xff, b'a'][..]));
        assert_eq!(list.get_str("x-raw"), None);
        assert_eq!(list.to_header_map(), original);
    }

    #[test]
    fn debug_output_leaves_credentials_out() {
        let list = HeaderList::from_map(&map(&[
            ("host", "example.com"),
            ("cookie", "io=secret"),
            ("authorization", "Bearer secret"),
        ]));
        let shown = format!("{list:?}");
        assert!(shown.contains("example.com"), "{shown}");
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn an_empty_map_gives_an_empty_list() {
        let list = HeaderList::from_map(&HeaderMap::new());
        assert!(list.is_empty());
        assert_eq!(list.iter().count(), 0);
        assert_eq!(format!("{list:?}"), "{}");
    }
}
