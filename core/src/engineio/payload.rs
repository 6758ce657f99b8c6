//! HTTP long-polling payloads: several Engine.IO packets in one request or response body.
//!
//! - v4: text packets joined by `\x1e`, binary as `b<base64>`. Because `\x1e` is the
//!   separator, v4 text data containing `\x1e` cannot be carried (the reference parser has the
//!   same limitation); such data is written as is and splits into two packets at the peer.
//! - v3 text: `<len>:<packet>` repeated, `len` in UTF-16 code units (JavaScript string length),
//!   binary as `b<type><base64>`; no packets is `0:`.
//! - v3 binary (XHR2, `application/octet-stream`): per packet a header byte (0 string,
//!   1 binary), the length as one decimal digit per byte, `0xFF`, then the bytes.
//! - v3 JSONP: the text payload as a JavaScript string literal inside `___eio[<j>]("...");`,
//!   and POSTs as a form field `d`.
//!
//! Decoding is total: malformed bodies yield a [`DecodeError`], never a panic, and all work is
//! linear in the body size.

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use super::ProtocolVersion;
use super::packet::{DecodeError, Packet, PacketData, WsMessage, decode_text_in};
use crate::http::query;

/// v4 packet separator (ASCII record separator), chosen because it never appears in JSON.
const SEPARATOR: u8 = 0x1e;

/// Terminator of a v3 binary payload length.
const BINARY_LENGTH_END: u8 = 0xff;

/// The `Content-Type` of a polling body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadContentType {
    /// `text/plain; charset=UTF-8`: v4 payloads and v3 text payloads.
    Text,
    /// `application/octet-stream`: v3 binary payloads.
    Binary,
}

impl PayloadContentType {
    /// The header value the reference server sends.
    pub fn header_value(self) -> &'static str {
        match self {
            PayloadContentType::Text => "text/plain; charset=UTF-8",
            PayloadContentType::Binary => "application/octet-stream",
        }
    }
}

/// A polling response body and the content type it must be sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedPayload {
    pub body: Bytes,
    pub content_type: PayloadContentType,
}

/// The packets of a decoded polling body.
///
/// The packets before the first bad one come *and* the error: the reference parsers stop there
/// but have already emitted the earlier packets (v3's `decodePayload` and
/// `decodePayloadAsBinary` hand each packet over as they read it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedPayload {
    pub packets: Vec<Packet>,
    pub error: Option<DecodeError>,
}

impl DecodedPayload {
    fn ok(packets: Vec<Packet>) -> Self {
        DecodedPayload {
            packets,
            error: None,
        }
    }

    fn err(error: DecodeError) -> Self {
        DecodedPayload {
            packets: Vec::new(),
            error: Some(error),
        }
    }
}

/// The length of `s` in UTF-16 code units, i.e. JavaScript's `string.length`, which v3 text
/// payload length prefixes count.
pub fn utf16_len(s: &str) -> usize {
    // Every char starts with one non-continuation byte and counts 1, plus 1 more for chars
    // outside the BMP (4-byte sequences, lead byte >= 0xF0) which are surrogate pairs.
    s.bytes()
        .map(|b| match b {
            0x80..=0xbf => 0,
            0xf0..=0xff => 2,
            _ => 1,
        })
        .sum()
}

/// Encodes packets into a polling response body.
///
/// v4 is always text. v3 uses the binary format iff `supports_binary` and any packet is binary,
/// else the text format (binary as `b<type><base64>`). No packets encode as an empty v4 body
/// and as `0:` in v3.
pub fn encode_payload(
    packets: &[Packet],
    version: ProtocolVersion,
    supports_binary: bool,
) -> EncodedPayload {
    let body = match version {
        ProtocolVersion::V4 => encode_v4(packets),
        ProtocolVersion::V3 => {
            let has_binary = packets
                .iter()
                .any(|p| matches!(p.data, PacketData::Binary(_)));
            if supports_binary && has_binary {
                return EncodedPayload {
                    body: encode_v3_binary(packets),
                    content_type: PayloadContentType::Binary,
                };
            }
            Bytes::from(encode_v3_text_payload(packets))
        }
    };
    EncodedPayload {
        body,
        content_type: PayloadContentType::Text,
    }
}

fn encode_v4(packets: &[Packet]) -> Bytes {
    let hint: usize = packets.iter().map(|p| p.encoded_text_len_hint() + 1).sum();
    let mut out = String::with_capacity(hint);
    for (i, packet) in packets.iter().enumerate() {
        if i > 0 {
            out.push(SEPARATOR as char);
        }
        packet.encode_text(ProtocolVersion::V4, &mut out);
    }
    Bytes::from(out)
}

/// Encodes packets as a v3 text payload (binary as `b<type><base64>`), the input of
/// [`encode_jsonp`]; the same text as `encode_payload(packets, V3, false)`'s body.
pub fn encode_v3_text_payload(packets: &[Packet]) -> String {
    if packets.is_empty() {
        return "0:".to_owned();
    }
    let hint: usize = packets.iter().map(|p| p.encoded_text_len_hint() + 8).sum();
    let mut out = String::with_capacity(hint);
    let mut scratch = String::new();
    for packet in packets {
        scratch.clear();
        packet.encode_text(ProtocolVersion::V3, &mut scratch);
        // Writing to a String cannot fail.
        let _ = write!(out, "{}:", utf16_len(&scratch));
        out.push_str(&scratch);
    }
    out
}

fn encode_v3_binary(packets: &[Packet]) -> Bytes {
    let hint: usize = packets.iter().map(|p| p.encoded_text_len_hint() + 24).sum();
    let mut out = BytesMut::with_capacity(hint);
    let mut scratch = String::new();
    for packet in packets {
        match &packet.data {
            PacketData::Binary(bytes) => {
                out.put_u8(1);
                put_binary_length(&mut out, bytes.len() + 1);
                out.put_u8(packet.kind.as_u8());
                out.put_slice(bytes);
            }
            PacketData::Text(_) | PacketData::Empty => {
                scratch.clear();
                packet.encode_text(ProtocolVersion::V3, &mut scratch);
                out.put_u8(0);
                put_binary_length(&mut out, scratch.len());
                out.put_slice(scratch.as_bytes());
            }
        }
    }
    out.freeze()
}

/// Writes `len` as one byte per decimal digit (values 0..=9), then `0xFF`.
fn put_binary_length(out: &mut BytesMut, len: usize) {
    for digit in len.to_string().bytes() {
        out.put_u8(digit - b'0');
    }
    out.put_u8(BINARY_LENGTH_END);
}

/// Decodes a polling POST body.
///
/// `binary_body` is true when the POST's `Content-Type` was `application/octet-stream` (v3
/// only). For v4 the caller rejects such POSTs before calling; if called anyway the result is
/// [`DecodeError::UnsupportedBinaryPayload`] with no packets.
///
/// An empty text body is an error in both versions (the reference parsers report a parser
/// error), so `encode_payload(&[], V4, _)` does not round-trip; an empty v3 binary body holds
/// no packets. The data of a body's only packet is sliced out of `body` without copying; that
/// of several packets (or of one followed by more of the body: a bad packet, v3 `0:` entries)
/// is copied out, each into its own allocation.
pub fn decode_payload(body: Bytes, version: ProtocolVersion, binary_body: bool) -> DecodedPayload {
    let reader = match PayloadReader::new(body, version, binary_body) {
        Ok(reader) => reader,
        Err(error) => return DecodedPayload::err(error),
    };
    let mut packets = Vec::new();
    for packet in reader {
        match packet {
            Ok(packet) => packets.push(packet),
            Err(error) => {
                return DecodedPayload {
                    packets,
                    error: Some(error),
                };
            }
        }
    }
    DecodedPayload::ok(packets)
}

/// A polling body's packets, decoded one at a time as they are asked for, so that what is not
/// handled yet is held as the body's bytes, not as packets (a 1 MB body of `42[0]` is about
/// 150,000 of them). Yields each packet, or the error of the first bad one and nothing after it;
/// [`decode_payload`] collects it (and, v3, drops the packets of a body with a bad one).
///
/// The data of a body's only packet is sliced out of the body without copying; that of the
/// packets of a longer body is copied out, each into its own allocation. Each packet's data sliced out
/// of the body would keep all of it alive: one packet echoed into the outbound queue, which
/// counts only its own bytes, could pin a whole body (1 MB behind a 1-byte frame, thousands of
/// times over). A body of one packet is about that packet, so it stays shared; data decoded into
/// a buffer of its own (base64) is not copied again.
#[derive(Debug, Clone)]
pub struct PayloadReader {
    format: Format,
    /// Packets yielded so far.
    read: usize,
    /// A bad packet was found: nothing more is read.
    failed: bool,
}

#[derive(Debug, Clone)]
enum Format {
    /// Text packets joined by the separator; `next` is where the next one starts (`None`: none
    /// left). The separator is ASCII, so it never occurs inside a UTF-8 sequence, and each
    /// packet is checked on its own, keeping the ones before a bad one. A body ending in the
    /// separator has an empty last packet, which is bad, as JavaScript's `split` gives it.
    V4 { body: Bytes, next: Option<usize> },
    /// `<len>:<packet>` from `pos` on.
    V3Text { text: ByteString, pos: usize },
    /// Header byte, length digits, `0xFF`, packet, from `pos` on.
    V3Binary { body: Bytes, pos: usize },
}

impl PayloadReader {
    /// A reader of `body`, or the error of a body that has no packets to read: a v4 body with
    /// `binary_body` ([`DecodeError::UnsupportedBinaryPayload`]), a v3 text body that is empty
    /// or not UTF-8. See [`decode_payload`] for `binary_body`.
    pub fn new(
        body: Bytes,
        version: ProtocolVersion,
        binary_body: bool,
    ) -> Result<Self, DecodeError> {
        let format = match (version, binary_body) {
            (ProtocolVersion::V4, true) => return Err(DecodeError::UnsupportedBinaryPayload),
            (ProtocolVersion::V4, false) => Format::V4 {
                body,
                next: Some(0),
            },
            (ProtocolVersion::V3, false) => {
                let text = ByteString::try_from(body).map_err(|_| DecodeError::InvalidUtf8)?;
                if text.is_empty() {
                    return Err(DecodeError::Empty);
                }
                Format::V3Text { text, pos: 0 }
            }
            (ProtocolVersion::V3, true) => Format::V3Binary { body, pos: 0 },
        };
        Ok(PayloadReader {
            format,
            read: 0,
            failed: false,
        })
    }

    /// Reads the body again from its first packet.
    pub fn rewind(&mut self) {
        self.read = 0;
        self.failed = false;
        match &mut self.format {
            Format::V4 { next, .. } => *next = Some(0),
            Format::V3Text { pos, .. } | Format::V3Binary { pos, .. } => *pos = 0,
        }
    }

    /// Nothing is left to read: every packet has been yielded, or a bad one.
    pub fn is_done(&self) -> bool {
        self.failed
            || match &self.format {
                Format::V4 { next, .. } => next.is_none(),
                Format::V3Text { text, pos } => *pos >= text.len(),
                Format::V3Binary { body, pos } => *pos >= body.len(),
            }
    }

    fn body_range(&self) -> std::ops::Range<*const u8> {
        match &self.format {
            Format::V4 { body, .. } | Format::V3Binary { body, .. } => body.as_ptr_range(),
            Format::V3Text { text, .. } => text.as_bytes().as_ptr_range(),
        }
    }

    /// The next packet, `None` at the end.
    fn decode_next(&mut self) -> Result<Option<Packet>, DecodeError> {
        match &mut self.format {
            Format::V4 { body, next } => {
                let Some(start) = *next else {
                    return Ok(None);
                };
                let separator = body[start..]
                    .iter()
                    .position(|&b| b == SEPARATOR)
                    .map(|at| start + at);
                *next = separator.map(|at| at + 1);
                let end = separator.unwrap_or(body.len());
                let text = ByteString::try_from(body.slice(start..end))
                    .map_err(|_| DecodeError::InvalidUtf8)?;
                decode_text_in(&text, &text, ProtocolVersion::V4).map(Some)
            }
            Format::V3Text { text, pos } => next_v3_text(text, pos),
            Format::V3Binary { body, pos } => next_v3_binary(body, pos),
        }
    }

    /// The next packet, its data left in the body: for a look at the packets (their kinds,
    /// whether they decode) that does not keep them.
    pub fn next_sliced(&mut self) -> Option<Result<Packet, DecodeError>> {
        if self.is_done() {
            return None;
        }
        match self.decode_next() {
            Ok(Some(packet)) => {
                self.read += 1;
                Some(Ok(packet))
            }
            Ok(None) => None,
            Err(error) => {
                self.failed = true;
                Some(Err(error))
            }
        }
    }
}

impl Iterator for PayloadReader {
    type Item = Result<Packet, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut packet = match self.next_sliced()? {
            Ok(packet) => packet,
            Err(error) => return Some(Err(error)),
        };
        let only = self.read == 1 && self.is_done();
        if !only && let Some(data) = owned_if_in(&packet.data, &self.body_range()) {
            packet.data = data;
        }
        Some(Ok(packet))
    }
}

/// Moves `packet`'s data into an allocation of its own: it no longer keeps a body alive.
pub(crate) fn own_data(packet: &mut Packet) {
    if let Some(data) = copied(&packet.data) {
        packet.data = data;
    }
}

/// `data` copied into an allocation of its own (`None`: there is none to copy).
fn copied(data: &PacketData) -> Option<PacketData> {
    match data {
        PacketData::Empty => None,
        PacketData::Text(text) => Some(PacketData::Text(ByteString::from(&**text))),
        PacketData::Binary(bytes) => Some(PacketData::Binary(Bytes::copy_from_slice(bytes))),
    }
}

/// `data` in an allocation of its own, when it lies in `body` (`None`: it does not).
fn owned_if_in(data: &PacketData, body: &std::ops::Range<*const u8>) -> Option<PacketData> {
    let start = match data {
        PacketData::Empty => return None,
        PacketData::Text(text) => text.as_ptr(),
        PacketData::Binary(bytes) => bytes.as_ptr(),
    };
    body.contains(&start).then(|| copied(data)).flatten()
}

/// Accumulates one decimal digit into a length, rejecting overflow.
fn push_digit(len: usize, digit: u8) -> Result<usize, DecodeError> {
    len.checked_mul(10)
        .and_then(|l| l.checked_add(usize::from(digit)))
        .ok_or(DecodeError::InvalidLength)
}

/// The next packet of a v3 text body from `pos` on (`None` at its end), `pos` moved past it.
fn next_v3_text(whole: &ByteString, pos: &mut usize) -> Result<Option<Packet>, DecodeError> {
    loop {
        let rest = &whole[*pos..];
        if rest.is_empty() {
            return Ok(None);
        }
        // `<digits>:`; all ASCII, so byte positions are char boundaries.
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || rest.as_bytes().get(digits) != Some(&b':') {
            return Err(DecodeError::InvalidLength);
        }
        let units = rest.as_bytes()[..digits]
            .iter()
            .try_fold(0usize, |len, &d| push_digit(len, d - b'0'))?;
        let after = &rest[digits + 1..];
        let msg = &after[..utf16_prefix_bytes(after, units)?];
        *pos += digits + 1 + msg.len();
        // A zero-length entry (`0:`) carries no packet, as in the reference parser.
        if !msg.is_empty() {
            return decode_text_in(whole, msg, ProtocolVersion::V3).map(Some);
        }
    }
}

/// The byte length of the first `units` UTF-16 code units of `s`; a length that ends past
/// `s` or inside a surrogate pair does not match the content.
fn utf16_prefix_bytes(s: &str, units: usize) -> Result<usize, DecodeError> {
    let mut counted = 0;
    for (i, c) in s.char_indices() {
        if counted == units {
            return Ok(i);
        }
        counted += c.len_utf16();
        if counted > units {
            return Err(DecodeError::LengthMismatch);
        }
    }
    if counted == units {
        Ok(s.len())
    } else {
        Err(DecodeError::LengthMismatch)
    }
}

/// The next packet of a v3 binary body from `pos` on (`None` at its end), `pos` moved past it.
fn next_v3_binary(body: &Bytes, pos: &mut usize) -> Result<Option<Packet>, DecodeError> {
    let Some(&header) = body.get(*pos) else {
        return Ok(None);
    };
    let is_string = match header {
        0 => true,
        1 => false,
        // The length prefix is header + digits + 0xFF; other header values are not valid.
        _ => return Err(DecodeError::InvalidLength),
    };
    let mut at = *pos + 1;
    let mut len = 0usize;
    let mut digits = 0usize;
    loop {
        match body.get(at) {
            Some(&BINARY_LENGTH_END) => break,
            Some(&d) if d <= 9 => len = push_digit(len, d)?,
            _ => return Err(DecodeError::InvalidLength),
        }
        digits += 1;
        at += 1;
    }
    if digits == 0 {
        return Err(DecodeError::InvalidLength);
    }
    at += 1; // the 0xFF
    let end = at
        .checked_add(len)
        .filter(|&end| end <= body.len())
        .ok_or(DecodeError::LengthMismatch)?;
    let chunk = body.slice(at..end);
    *pos = end;
    let packet = if is_string {
        let text = ByteString::try_from(chunk).map_err(|_| DecodeError::InvalidUtf8)?;
        decode_text_in(&text, &text, ProtocolVersion::V3)?
    } else {
        // Same layout as a v3 binary WebSocket frame: type byte, then data.
        Packet::decode_ws(WsMessage::Binary(chunk), ProtocolVersion::V3)?
    };
    Ok(Some(packet))
}

/// Wraps an already-encoded v3 *text* payload for JSONP: `___eio[<j>]("<escaped>");`.
///
/// The payload is escaped as `JSON.stringify` does, plus U+2028/U+2029, which are valid in JSON
/// strings but are line terminators in pre-ES2019 JavaScript. Returns `None` unless `j` is a
/// non-empty run of ASCII digits, since it is spliced into script.
pub fn encode_jsonp(payload_text: &str, j: &str) -> Option<Bytes> {
    if j.is_empty() || !j.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut out = String::with_capacity(payload_text.len() + j.len() + 16);
    out.push_str("___eio[");
    out.push_str(j);
    out.push_str("](\"");
    for c in payload_text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push_str("\");");
    Some(Bytes::from(out))
}

/// Extracts the payload text from a JSONP POST form body (field `d`), undoing the newline
/// escaping the client applies.
///
/// The client (engine.io-client's JSONP transport, which posts through a `<textarea>` that
/// browsers may normalise `\n` in) sends a literal backslash-`n` as `\\n` and a newline as `\n`.
/// The reference server undoes this in two passes, mirrored exactly: `/(\\)?\\n/g` turns a
/// `\n` not preceded by a backslash into a newline, then `/\\\\n/g` turns `\\n` into `\n`.
///
/// The form is read as the reference server's Node `querystring` reads it: `+` is a space, a bad
/// `%` escape stays as it is, bytes that are not UTF-8 become U+FFFD, other fields are ignored.
/// `None` when there is no `d` field, or several (`querystring` makes a list of them): the
/// reference server then reads nothing from the body, and answers `ok` all the same.
pub fn decode_jsonp_post(body: &[u8]) -> Option<String> {
    let form = String::from_utf8_lossy(body);
    let mut found: Option<String> = None;
    let pairs = form.split('&').filter(|pair| !pair.is_empty());
    for pair in pairs.take(crate::http::Query::MAX_PAIRS) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if query::unescape(key, true) != "d" {
            continue;
        }
        if found.is_some() {
            return None;
        }
        found = Some(query::unescape(value, true).into_owned());
    }
    found.map(|data| unescape_double_slashes(&unescape_newlines(&data)))
}

/// `data.replace(/(\\)?\\n/g, (m, slashes) => slashes ? m : "\n")`: scanning left to right,
/// `\\n` is kept as is and a remaining `\n` becomes a newline.
fn unescape_newlines(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("\\\\n") {
            out.push_str("\\\\n");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("\\n") {
            out.push('\n');
            rest = after;
        } else {
            out.push('\\');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// `data.replace(/\\\\n/g, "\\n")`: every `\\n` becomes `\n`.
fn unescape_double_slashes(s: &str) -> String {
    s.replace("\\\\n", "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engineio::packet::PacketType;

    fn text(kind: PacketType, s: &str) -> Packet {
        Packet::text(kind, s)
    }

    fn body(p: &EncodedPayload) -> &[u8] {
        &p.body
    }

    /// Whether `data` lies inside `body`'s bytes (shares its allocation).
    fn inside(body: &Bytes, data: &PacketData) -> bool {
        let data: &[u8] = match data {
            PacketData::Empty => return false,
            PacketData::Text(text) => text.as_bytes(),
            PacketData::Binary(bytes) => bytes,
        };
        let range = body.as_ptr_range();
        range.contains(&data.as_ptr())
    }

    #[test]
    fn packets_of_a_body_of_several_do_not_keep_the_body_alive() {
        // v3 binary: a 1-byte binary message, then a ping padded to 64 KiB.
        let padding = "x".repeat(64 * 1024);
        let mut v3 = vec![1, 2, 0xFF, 4, 7];
        v3.push(0);
        v3.extend(
            padding
                .len()
                .saturating_add(1)
                .to_string()
                .bytes()
                .map(|d| d - b'0'),
        );
        v3.push(0xFF);
        v3.push(b'2');
        v3.extend(padding.as_bytes());
        // v4 text: a small message, then a padded ping; v3 text alike.
        let v4 = format!("4hi\x1e2{padding}");
        let v3_text = format!("3:4hi{}:2{padding}", padding.len() + 1);
        for (body, version, binary) in [
            (Bytes::from(v3), ProtocolVersion::V3, true),
            (Bytes::from(v4), ProtocolVersion::V4, false),
            (Bytes::from(v3_text), ProtocolVersion::V3, false),
        ] {
            let decoded = decode_payload(body.clone(), version, binary);
            assert_eq!(decoded.error, None, "{version:?} {binary}");
            assert_eq!(decoded.packets.len(), 2, "{version:?} {binary}");
            assert_eq!(decoded.packets[0].data.len(), if binary { 1 } else { 2 });
            assert_eq!(decoded.packets[1].data.len(), padding.len());
            for packet in &decoded.packets {
                assert!(
                    !inside(&body, &packet.data),
                    "{version:?} {binary}: {packet:?}"
                );
            }
        }
        // A body of one packet is that packet: shared, not copied.
        let single = Bytes::from(format!("4{padding}"));
        let decoded = decode_payload(single.clone(), ProtocolVersion::V4, false);
        assert!(inside(&single, &decoded.packets[0].data));
    }

    #[test]
    fn utf16_len_counts_code_units() {
        assert_eq!(utf16_len(""), 0);
        assert_eq!(utf16_len("4hello"), 6);
        assert_eq!(utf16_len("4€"), 2);
        assert_eq!(utf16_len("4😀"), 3);
        assert_eq!(utf16_len("é😀€a"), 5);
        let s = "aé€😀\u{10ffff}";
        assert_eq!(utf16_len(s), s.encode_utf16().count());
    }

    #[test]
    fn v3_text_encoding() {
        let p = encode_payload(
            &[
                text(PacketType::Message, "hello"),
                text(PacketType::Message, "€"),
            ],
            ProtocolVersion::V3,
            true,
        );
        assert_eq!(body(&p), "6:4hello2:4€".as_bytes());
        assert_eq!(p.content_type, PayloadContentType::Text);
        let p = encode_payload(
            &[text(PacketType::Message, "😀")],
            ProtocolVersion::V3,
            false,
        );
        assert_eq!(body(&p), "3:4😀".as_bytes());
    }

    #[test]
    fn empty_payloads() {
        let p = encode_payload(&[], ProtocolVersion::V3, true);
        assert_eq!(body(&p), b"0:");
        assert_eq!(p.content_type, PayloadContentType::Text);
        let p = encode_payload(&[], ProtocolVersion::V4, true);
        assert_eq!(body(&p), b"");
        let d = decode_payload(Bytes::from_static(b"0:"), ProtocolVersion::V3, false);
        assert_eq!(d, DecodedPayload::ok(vec![]));
        let d = decode_payload(Bytes::new(), ProtocolVersion::V3, false);
        assert_eq!(d.error, Some(DecodeError::Empty));
        let d = decode_payload(Bytes::new(), ProtocolVersion::V4, false);
        assert_eq!(d.error, Some(DecodeError::Empty));
        let d = decode_payload(Bytes::new(), ProtocolVersion::V3, true);
        assert_eq!(d, DecodedPayload::ok(vec![]));
    }

    #[test]
    fn v3_text_zero_copy() {
        let body = Bytes::from_static(b"6:4hello");
        let d = decode_payload(body.clone(), ProtocolVersion::V3, false);
        let PacketData::Text(t) = &d.packets[0].data else {
            panic!("expected text")
        };
        assert_eq!(t, "hello");
        assert_eq!(t.as_bytes().as_ptr(), body[3..].as_ptr());
    }

    #[test]
    fn v3_text_length_errors() {
        for (input, err) in [
            (&b"5:4hel"[..], DecodeError::LengthMismatch),
            (b":4", DecodeError::InvalidLength),
            (b"a:4", DecodeError::InvalidLength),
            (b"1", DecodeError::InvalidLength),
            (b"99999999999999999999999:x", DecodeError::InvalidLength),
            (b"2:4\xf0\x9f\x98\x80", DecodeError::LengthMismatch), // ends inside a pair
            (b"1:9", DecodeError::UnknownType),
            (b"2:4a\xff", DecodeError::InvalidUtf8),
        ] {
            let d = decode_payload(Bytes::from_static(input), ProtocolVersion::V3, false);
            assert_eq!(d, DecodedPayload::err(err), "{input:?}");
        }
    }

    /// parser-v3's `decodePayload` and `decodePayloadAsBinary` hand each packet over as they
    /// read it: those before a bad one are delivered.
    #[test]
    fn a_v3_body_keeps_the_packets_before_a_bad_one() {
        let hello = || vec![Packet::text(PacketType::Message, "hello")];
        for (input, err) in [
            (&b"6:4hello1"[..], DecodeError::InvalidLength),
            (b"6:4hello5:4x", DecodeError::LengthMismatch),
            (b"6:4hello1:9", DecodeError::UnknownType),
        ] {
            let d = decode_payload(Bytes::from_static(input), ProtocolVersion::V3, false);
            assert_eq!(
                d,
                DecodedPayload {
                    packets: hello(),
                    error: Some(err)
                },
                "{input:?}"
            );
        }
        let binary = [
            0u8, 6, 0xff, b'4', b'h', b'e', b'l', b'l', b'o', 0, 1, 0xff, b'9',
        ];
        let d = decode_payload(Bytes::copy_from_slice(&binary), ProtocolVersion::V3, true);
        assert_eq!(
            d,
            DecodedPayload {
                packets: hello(),
                error: Some(DecodeError::UnknownType)
            }
        );
    }

    #[test]
    fn v3_binary_length_errors() {
        for (input, err) in [
            (&[2u8, 1, 0xff, 4][..], DecodeError::InvalidLength),
            (&[0, 0xff], DecodeError::InvalidLength),
            (&[0, 1], DecodeError::InvalidLength),
            (&[0, 10, 0xff, b'4'], DecodeError::InvalidLength),
            (&[0, 2, 0xff, b'4'], DecodeError::LengthMismatch),
            (&[0, 0, 0xff], DecodeError::Empty),
            (&[1, 0, 0xff], DecodeError::Empty),
            (&[1, 1, 0xff, 9], DecodeError::UnknownType),
            (&[0, 2, 0xff, b'4', 0xff], DecodeError::InvalidUtf8),
        ] {
            let d = decode_payload(Bytes::copy_from_slice(input), ProtocolVersion::V3, true);
            assert_eq!(d, DecodedPayload::err(err), "{input:?}");
        }
        let mut huge = vec![1u8];
        huge.extend(std::iter::repeat_n(9, 40));
        huge.push(0xff);
        let d = decode_payload(Bytes::from(huge), ProtocolVersion::V3, true);
        assert_eq!(d, DecodedPayload::err(DecodeError::InvalidLength));
        // Leading zeros are harmless, however many.
        let mut zeros = vec![0u8];
        zeros.extend(std::iter::repeat_n(0, 100));
        zeros.extend([1, 0xff, b'6']);
        let d = decode_payload(Bytes::from(zeros), ProtocolVersion::V3, true);
        assert_eq!(d, DecodedPayload::ok(vec![Packet::bare(PacketType::Noop)]));
    }

    #[test]
    fn v4_binary_body_rejected() {
        let d = decode_payload(Bytes::from_static(b"4hi"), ProtocolVersion::V4, true);
        assert_eq!(
            d,
            DecodedPayload::err(DecodeError::UnsupportedBinaryPayload)
        );
    }

    #[test]
    fn v4_invalid_utf8_segment_keeps_earlier_packets() {
        let d = decode_payload(
            Bytes::from_static(b"4a\x1e4\xff\x1e4c"),
            ProtocolVersion::V4,
            false,
        );
        assert_eq!(d.packets, vec![text(PacketType::Message, "a")]);
        assert_eq!(d.error, Some(DecodeError::InvalidUtf8));
        let d = decode_payload(Bytes::from_static(b"4a\x1e"), ProtocolVersion::V4, false);
        assert_eq!(d.packets, vec![text(PacketType::Message, "a")]);
        assert_eq!(d.error, Some(DecodeError::Empty));
    }

    #[test]
    fn v3_non_message_binary_in_payloads() {
        let ping = Packet {
            kind: PacketType::Ping,
            data: PacketData::Binary(Bytes::from_static(&[7, 8])),
        };
        let p = encode_payload(std::slice::from_ref(&ping), ProtocolVersion::V3, false);
        assert_eq!(body(&p), b"6:b2Bwg=");
        let d = decode_payload(p.body, ProtocolVersion::V3, false);
        assert_eq!(d.packets, vec![ping.clone()]);
        let p = encode_payload(std::slice::from_ref(&ping), ProtocolVersion::V3, true);
        assert_eq!(body(&p), [1, 3, 0xff, 2, 7, 8]);
        let d = decode_payload(p.body, ProtocolVersion::V3, true);
        assert_eq!(d.packets, vec![ping]);
    }

    #[test]
    fn v3_binary_payload_string_in_base64_form() {
        // A string entry is any text packet, including the `b<type><base64>` form.
        let d = decode_payload(
            Bytes::from_static(&[
                0, 6, 0xff, b'b', b'4', b'A', b'Q', b'I', b'D', 1, 1, 0xff, 6,
            ]),
            ProtocolVersion::V3,
            true,
        );
        assert_eq!(
            d.packets,
            vec![
                Packet::binary(Bytes::from_static(&[1, 2, 3])),
                // A binary entry stays binary even when it has no data after the type byte.
                Packet {
                    kind: PacketType::Noop,
                    data: PacketData::Binary(Bytes::new())
                }
            ]
        );
        assert_eq!(d.error, None);
    }

    #[test]
    fn jsonp_escaping() {
        assert_eq!(
            encode_jsonp("3:4hi", "0").as_deref(),
            Some(&b"___eio[0](\"3:4hi\");"[..])
        );
        let out = encode_jsonp("a\"b\\c\nd\u{2028}e\u{2029}\u{1}\u{8}\u{c}\r\t/", "12").unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"___eio[12]("a\"b\\c\nd\u2028e\u2029\u0001\b\f\r\t/");"#
        );
        assert_eq!(encode_jsonp("x", ""), None);
        assert_eq!(encode_jsonp("x", "1a"), None);
        assert_eq!(encode_jsonp("x", "١"), None); // non-ASCII digit
    }

    #[test]
    fn jsonp_escaping_matches_json() {
        // Apart from U+2028/U+2029, the escaping is JSON's; serde_json must read it back.
        let s = "\u{0}\u{1f}\u{7f}\"\\/é😀\u{2028}";
        let out = encode_jsonp(s, "3").unwrap();
        let out = std::str::from_utf8(&out).unwrap();
        let literal = &out["___eio[3](".len()..out.len() - 2];
        let back: String = serde_json::from_str(literal).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn jsonp_post_form_decoding() {
        assert_eq!(decode_jsonp_post(b"d=3%3A4hi").as_deref(), Some("3:4hi"));
        assert_eq!(
            decode_jsonp_post(b"x=1&d=3:4a+b&y").as_deref(),
            Some("3:4a b")
        );
        assert_eq!(decode_jsonp_post(b"%64=1%3a2").as_deref(), Some("1:2"));
        assert_eq!(decode_jsonp_post(b"d").as_deref(), Some(""));
        assert_eq!(
            decode_jsonp_post(b"d=%E2%82%AC").as_deref(),
            Some("\u{20ac}")
        );
        // Nothing to read, as `querystring` gives the reference server no string `d`.
        assert_eq!(decode_jsonp_post(b""), None);
        assert_eq!(decode_jsonp_post(b"x=1"), None);
        assert_eq!(decode_jsonp_post(b"d=1&d=2"), None);
        // Bad escapes stay as they are; bytes that are not UTF-8 become U+FFFD.
        assert_eq!(decode_jsonp_post(b"d=%zz").as_deref(), Some("%zz"));
        assert_eq!(decode_jsonp_post(b"d=%4").as_deref(), Some("%4"));
        assert_eq!(decode_jsonp_post(b"d=%ff").as_deref(), Some("\u{fffd}"));
        assert_eq!(decode_jsonp_post(b"%zz=1&d=1").as_deref(), Some("1"));
    }

    #[test]
    fn jsonp_post_newline_unescaping() {
        // `\n` -> newline; `\\n` -> `\n`; `\\\n` -> `\` + `\n`.
        let cases: [(&[u8], &str); 5] = [
            (b"d=4a%5Cnb", "4a\nb"),
            (b"d=4a%5C%5Cnb", "4a\\nb"),
            (b"d=4a%5C%5C%5Cnb", "4a\\\\nb"),
            (b"d=4%5C", "4\\"),
            (b"d=4%5Cx%5Cn", "4\\x\n"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                decode_jsonp_post(input).as_deref(),
                Some(expected),
                "{input:?}"
            );
        }
    }

    /// What engine.io-client's JSONP transport does before posting.
    fn client_escape(data: &str) -> String {
        data.replace("\\n", "\\\n").replace('\n', "\\n")
    }

    fn form_encode(data: &str) -> String {
        let mut out = String::from("d=");
        for b in data.bytes() {
            if b.is_ascii_alphanumeric() {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    /// The scheme is lossy only for a backslash directly before a newline (`\` + LF comes back
    /// as `\n`), which JSON-encoded Socket.IO payloads never contain: JSON escapes newlines.
    #[test]
    fn jsonp_post_inverts_client_escaping() {
        for data in [
            "a\nb",
            "a\\nb",
            "a\\\\nb",
            "\\n\n\\\\n",
            "7:4[\"x\"]",
            "n\\",
        ] {
            let posted = form_encode(&client_escape(data));
            assert_eq!(
                decode_jsonp_post(posted.as_bytes()).as_deref(),
                Some(data),
                "{data:?}"
            );
        }
    }
}
