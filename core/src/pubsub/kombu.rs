//! kombu's Redis transport, as python-socketio's `KombuManager('redis://')` uses it (kombu 5.x,
//! `kombu/transport/redis.py` and `virtual/base.py`, default transport options).
//!
//! kombu has no fanout of its own on Redis: a fanout exchange is Redis pub/sub on the topic
//! `/{db}.{exchange}` (its `keyprefix_fanout`, the URL's database number filled in), and every
//! message is kombu's own envelope, a JSON object:
//!
//! ```json
//! {"body": "<base64 of the serialized body>", "content-encoding": "utf-8",
//!  "content-type": "text/plain", "headers": {},
//!  "properties": {"delivery_info": {"exchange": "socketio", "routing_key": ""}, "priority": 0,
//!                 "body_encoding": "base64", "delivery_tag": "<unique>"}}
//! ```
//!
//! So a sockio server or emitter meets `KombuManager('redis://')` processes only when it speaks
//! the same: [`ClientManager::kombu`](super::ClientManager::kombu) sets that up, and a plain
//! `RedisManager` channel stays a different channel, as between the two Python classes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::message::DecodeError;

/// The pub/sub topic kombu publishes a fanout exchange's messages on, and subscribes to.
pub fn topic(db: u32, exchange: &str) -> String {
    format!("/{db}.{exchange}")
}

/// `payload` (a python-socketio message, JSON) in kombu's envelope, as kombu's virtual transport
/// publishes it to `exchange`. `delivery_tag` must be unique: kombu's Redis consumers keep each
/// message in a hash shared by all of them, by tag, until they acknowledge it.
///
/// The body is labelled `text/plain`, as python-socketio's own (a `str`): kombu hands it over as
/// it is and python-socketio reads it with plain `json.loads`. Under `application/json`, kombu's
/// own JSON reader would turn any object shaped `{"__type__": .., "__value__": ..}` in the data
/// into a Python value, or fail on an unknown type, which makes python-socketio's listener drop
/// its queue and reconnect.
pub fn wrap(payload: &[u8], exchange: &str, delivery_tag: &str) -> Vec<u8> {
    let envelope = json!({
        "body": STANDARD.encode(payload),
        "content-encoding": "utf-8",
        "content-type": "text/plain",
        "headers": {},
        "properties": {
            "delivery_info": {"exchange": exchange, "routing_key": ""},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": delivery_tag,
        },
    });
    // Serializing a `Value` cannot fail.
    serde_json::to_vec(&envelope).unwrap_or_default()
}

/// Whether `map` is a kombu envelope rather than a python-socketio message (which always has a
/// `method`, and never these two keys).
pub(crate) fn is_envelope(map: &Map<String, Value>) -> bool {
    !map.contains_key("method") && map.contains_key("body") && map.contains_key("properties")
}

/// The body an envelope carries, decoded from its `body_encoding`: the bytes kombu's serializer
/// wrote. python-socketio 5.14 and later publishes its JSON as a string, which kombu labels
/// `text/plain` (kombu 5.7); kombu's JSON serializer labels `application/json`. Older versions
/// published pickle, which kombu labels `application/data` (raw bytes) or
/// `application/x-python-serialize`.
pub(crate) fn unwrap(map: &Map<String, Value>) -> Result<Vec<u8>, DecodeError> {
    let content_type = map.get("content-type").and_then(Value::as_str);
    if let Some(other) = content_type.filter(|ct| {
        !ct.eq_ignore_ascii_case("application/json") && !ct.eq_ignore_ascii_case("text/plain")
    }) {
        return Err(DecodeError::KombuContentType(other.to_owned()));
    }
    let Some(Value::String(body)) = map.get("body") else {
        return Err(DecodeError::Field("body"));
    };
    let encoding = map
        .get("properties")
        .and_then(|properties| properties.get("body_encoding"))
        .and_then(Value::as_str);
    match encoding {
        Some(encoding) if encoding.eq_ignore_ascii_case("base64") => STANDARD
            .decode(body)
            .map_err(|_| DecodeError::Field("body")),
        // kombu leaves a body as it is when the transport's encoding is none or UTF-8.
        None => Ok(body.as_bytes().to_vec()),
        Some(encoding) if encoding.eq_ignore_ascii_case("utf-8") => Ok(body.as_bytes().to_vec()),
        Some(other) => Err(DecodeError::KombuBodyEncoding(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(bytes: &[u8]) -> Map<String, Value> {
        match serde_json::from_slice(bytes).unwrap() {
            Value::Object(map) => map,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn wraps_as_kombus_virtual_transport_does() {
        let wrapped = wrap(br#"{"method":"emit"}"#, "socketio", "tag-1");
        let map = object(&wrapped);
        assert_eq!(map["body"], json!("eyJtZXRob2QiOiJlbWl0In0="));
        assert_eq!(map["content-type"], json!("text/plain"));
        assert_eq!(map["content-encoding"], json!("utf-8"));
        assert_eq!(map["headers"], json!({}));
        assert_eq!(
            map["properties"],
            json!({
                "delivery_info": {"exchange": "socketio", "routing_key": ""},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": "tag-1",
            })
        );
        assert!(is_envelope(&map));
        assert_eq!(unwrap(&map).unwrap(), br#"{"method":"emit"}"#);
    }

    #[test]
    fn reads_plain_bodies_and_refuses_what_is_not_json() {
        let plain = object(br#"{"body": "\"x\"", "properties": {}}"#);
        assert_eq!(unwrap(&plain).unwrap(), b"\"x\"");
        let text = object(br#"{"body": "e30=", "content-type": "text/plain", "properties": {"body_encoding": "base64"}}"#);
        assert_eq!(unwrap(&text).unwrap(), b"{}");
        let pickle = object(
            br#"{"body": "gAR9", "content-type": "application/data",
                 "properties": {"body_encoding": "base64"}}"#,
        );
        assert_eq!(
            unwrap(&pickle),
            Err(DecodeError::KombuContentType("application/data".into()))
        );
        let odd = object(br#"{"body": "x", "properties": {"body_encoding": "rot13"}}"#);
        assert_eq!(
            unwrap(&odd),
            Err(DecodeError::KombuBodyEncoding("rot13".into()))
        );
        let bad = object(br#"{"body": "%%%", "properties": {"body_encoding": "base64"}}"#);
        assert_eq!(unwrap(&bad), Err(DecodeError::Field("body")));
        let missing = object(br#"{"body": 3, "properties": {}}"#);
        assert_eq!(unwrap(&missing), Err(DecodeError::Field("body")));
        assert!(!is_envelope(&object(
            br#"{"method": "emit", "body": "", "properties": {}}"#
        )));
    }
}
