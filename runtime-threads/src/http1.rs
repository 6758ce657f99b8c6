//! A small, strict HTTP/1.1 request reader and response writer for blocking std sockets.
//!
//! Limits: the request line and headers together at most [`MAX_HEAD`] bytes and
//! [`MAX_HEADERS`] headers (431 past either). A body comes with `Content-Length` or with
//! `Transfer-Encoding: chunked` (RFC 9112 §7.1: chunk extensions are ignored, at most
//! [`MAX_CHUNK_EXTENSIONS`] bytes of them in a body; trailer fields are read and dropped, at most
//! [`MAX_HEAD`] bytes of them, 431 past that). Either is read up to the Socket.IO limit plus one
//! byte (the core answers 413 on seeing that byte; the connection then closes if the body went on
//! past it, as the rest was not read). Anything malformed gets 400 and a close, chunk framing
//! included: a size that is not hex or does not fit a `usize`, a chunk-size line over
//! [`MAX_CHUNK_LINE`] bytes (its CRLF included), a line or chunk not ended by CRLF, a body cut
//! short. Transfer codings other than `chunked` alone (`gzip`, `gzip, chunked`, `chunked` twice),
//! a `Transfer-Encoding` in an HTTP/1.0 request, and a request with both `Content-Length` and
//! `Transfer-Encoding` get 400 and a close. hyper (the tokio and smol runtimes) refuses `gzip`
//! too, but reads a request with both lengths by `Transfer-Encoding` alone (RFC 9112 §6.3), and
//! passes `gzip, chunked` bodies on still gzipped; here those are refused: a request with both
//! lengths is how requests are smuggled past a proxy that reads the other one, which RFC 9112
//! §6.3 lets a server refuse, and no Socket.IO client sends either.
//! An HTTP/1.1 request with `Expect: 100-continue` and a body gets `100 Continue` before its body
//! is read ([`write_continue`]), unless it is refused first (see `next_request` in `serve.rs`).
//!
//! The reader reads from any [`Read`]: a `&TcpStream` in `serve.rs`, pieces of a fuzz input in
//! the `threads_http1` target of `sockio-fuzz` (through [`fuzzing`]). A read returning `Ok(0)` is
//! the end of the stream, `Interrupted` is retried, and any other error (a read timeout:
//! `WouldBlock` or `TimedOut`) is [`Incoming::Closed`]. The end of the stream is
//! [`Incoming::Closed`] too, except inside a chunked body, where it is malformed framing (400).

use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, EXPECT, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version};
use sockio_core::http::{Request, Response};

/// Most bytes of a request line plus headers. Browsers send large cookies (Node.js allows
/// 16 KiB, hyper, under the async runtimes, about 400 KB); 8 KiB refused some that the other
/// runtimes served. The buffer grows only as a head needs.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Most header fields in one request.
pub(crate) const MAX_HEADERS: usize = 100;
/// How much one read of a request head asks for.
const READ_CHUNK: usize = 2048;
/// Most bytes of a chunk-size line, its CRLF included: a few hex digits, and extensions nobody
/// here reads, which are refused past this rather than buffered.
const MAX_CHUNK_LINE: usize = 1024;
/// [`HttpReader::unread`] for a chunked body left unread: how much of it is still to come is
/// unknown.
const UNKNOWN_UNREAD: usize = usize::MAX;
/// Most bytes of chunk extensions in one body, hyper's bound (`CHUNKED_EXTENSIONS_LIMIT`): each
/// line is capped by [`MAX_CHUNK_LINE`], but without a total a body of one-byte chunks could
/// carry a thousand times its size in extensions nothing reads. Leading zeros of a size count
/// too (hyper does not count them).
const MAX_CHUNK_EXTENSIONS: usize = 16 * 1024;

/// What the next read from a connection produced.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A complete request. `keep_alive` is false when the client asked to close or the body was
    /// not read to its end.
    Request {
        request: Box<Request>,
        keep_alive: bool,
    },
    /// The peer closed (or went idle past the read timeout) between requests.
    Closed,
    /// A malformed request: answer with this status and close.
    Bad(StatusCode, &'static str),
}

/// Reads requests from one connection, keeping bytes read past the current request.
#[derive(Default)]
pub(crate) struct HttpReader {
    buf: Vec<u8>,
    /// While a body is read: how much of `buf` is consumed. Chunk framing is consumed a few
    /// bytes at a time, and draining the buffer for each moved the rest of it every time (a
    /// 1 MB body of one-byte chunks took 68 ms to read in a release build, 36 ms with this);
    /// the buffer is compacted once per read from the socket and after the body instead.
    pos: usize,
    /// Bytes of the last request's body that were not read (past the limit, or a body its
    /// client was told not to send): the connection cannot go on, and its client may still be
    /// sending them. [`UNKNOWN_UNREAD`] for a chunked body.
    unread: usize,
    /// The last head refused for its framing was a `HEAD` request's: its answer has no body.
    refused_head_request: bool,
}

impl HttpReader {
    /// Bytes of the last request's body left unread (see [`HttpReader::leave_body`]).
    pub fn unread(&self) -> usize {
        self.unread
    }

    /// Notes that `head`'s body is not read: the connection ends after the answer.
    pub fn leave_body(&mut self, head: &Head) {
        debug_assert_eq!(self.pos, 0);
        self.unread = match head.framing {
            Framing::Length(length) => length.saturating_sub(self.buf.len()),
            Framing::Chunked => UNKNOWN_UNREAD,
        };
    }

    /// Notes that the connection ends after a refused head: its client may still be sending the
    /// rest of that head or a body, of a size nobody knows.
    pub fn leave_rest(&mut self) {
        self.unread = UNKNOWN_UNREAD;
    }

    /// Whether the head [`read_head`](Self::read_head) just refused was a `HEAD` request's (known
    /// when it parsed and its framing was refused): the refusal is answered without a body.
    pub fn refused_a_head_request(&self) -> bool {
        self.refused_head_request
    }

    /// Bytes received after the last request (the first WebSocket frames after an upgrade).
    /// Its capacity is cut to its length: the WebSocket keeps the buffer for the connection's
    /// life, growing it to its own read size when it needs to.
    pub fn take_leftover(&mut self) -> Vec<u8> {
        debug_assert_eq!(self.pos, 0);
        let mut leftover = std::mem::take(&mut self.buf);
        leftover.shrink_to_fit();
        leftover
    }

    /// Reads the next request, its body capped at `max_body + 1` bytes.
    #[cfg(test)]
    pub fn read_request(&mut self, mut stream: impl Read, max_body: usize) -> Incoming {
        match self.read_head(&mut stream) {
            Ok(head) => self.read_body(stream, head, max_body),
            Err(incoming) => incoming,
        }
    }

    /// Reads the next request's head, checking its framing. `Err` holds what to do instead:
    /// [`Incoming::Closed`] or [`Incoming::Bad`].
    pub fn read_head(&mut self, mut stream: impl Read) -> Result<Head, Incoming> {
        // Each request starts with its whole body to read; and a body read leaves no cursor.
        self.unread = 0;
        self.refused_head_request = false;
        debug_assert_eq!(self.pos, 0);
        // How much of the buffer was searched for the head's end without finding it: a head
        // that comes in small pieces is searched once, not once more per piece.
        let mut searched: usize = 0;
        // Where the head starts: empty lines before a request line are skipped (RFC 9112 §2.2),
        // but count towards the head's limit. Those skipped stay skipped as more comes (a CR
        // alone at the end waits for its LF), so each is looked at once, not once per read.
        let mut start: usize = 0;
        let (head_start, head_end) = loop {
            start += leading_empty_lines(&self.buf[start..]);
            // An end not in the part searched can only begin in its last two bytes (the LF of
            // an LF LF or an LF CR LF).
            let from = searched.saturating_sub(2).max(start);
            if let Some(end) = find_head_end(&self.buf[from..]) {
                break (start, from + end);
            }
            searched = self.buf.len();
            if self.buf.len() >= MAX_HEAD {
                return Err(Incoming::Bad(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "request head too large",
                ));
            }
            match self.fill(&mut stream) {
                Ok(0) => return Err(Incoming::Closed),
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(Incoming::Closed),
            }
        };
        if head_end > MAX_HEAD {
            return Err(Incoming::Bad(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "request head too large",
            ));
        }
        // One copy of the head, which the URI and the header values share instead of a copy
        // each (an allocation per header on a connection thread, whose allocator caches are
        // cold: bench/ANALYSIS.md, "Threads runtime: polling").
        let mut head = parse_head(Bytes::copy_from_slice(&self.buf[head_start..head_end]))
            .map_err(|(status, text)| Incoming::Bad(status, text))?;
        self.buf.drain(..head_end);
        self.refused_head_request = head.method == Method::HEAD;
        head.framing = framing(&head.headers, head.version).map_err(bad)?;
        self.refused_head_request = false;
        head.expects_continue = head.framing != Framing::Length(0)
            && head.version == Version::HTTP_11
            && head
                .headers
                .get(EXPECT)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        Ok(head)
    }

    /// Reads the body of the request `head` began, capped at `max_body + 1` bytes.
    /// [`Incoming::Closed`] when the peer went away before all of it came (or, for a chunked
    /// body, when a read failed); [`Incoming::Bad`] for malformed chunk framing, or a chunked
    /// body whose stream ended before its last chunk.
    pub fn read_body(&mut self, mut stream: impl Read, head: Head, max_body: usize) -> Incoming {
        let Head {
            method,
            uri,
            version,
            headers,
            framing,
            ..
        } = head;
        let cap = max_body.saturating_add(1);
        let read = match framing {
            Framing::Length(length) => self.read_sized(&mut stream, length, cap),
            Framing::Chunked => self.read_chunked(&mut stream, cap).inspect_err(|incoming| {
                // Where the refused body ends is unknown: what the client still sends is
                // drained after the answer, so that closing does not reset the connection
                // before the client has read the 400.
                if matches!(incoming, Incoming::Bad(..)) {
                    self.unread = UNKNOWN_UNREAD;
                }
            }),
        };
        self.buf.drain(..self.pos);
        self.pos = 0;
        let (body, whole) = match read {
            Ok(read) => read,
            Err(incoming) => return incoming,
        };
        let mut request = Request::new(body);
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.version_mut() = version;
        let keep_alive = whole && wants_keep_alive(version, &headers);
        *request.headers_mut() = headers;
        Incoming::Request {
            request: Box::new(request),
            keep_alive,
        }
    }

    /// Reads a body of `length` bytes, at most `cap` of them; with it, whether it was all read.
    fn read_sized(
        &mut self,
        stream: &mut impl Read,
        length: usize,
        cap: usize,
    ) -> Result<(Bytes, bool), Incoming> {
        let wanted = length.min(cap);
        if wanted == 0 {
            return Ok((Bytes::new(), true));
        }
        let mut body = Vec::with_capacity(wanted.min(64 * 1024));
        match self.read_exact_into(stream, &mut body, wanted) {
            Ok(true) => {}
            // The peer went away mid-body.
            _ => return Err(Incoming::Closed),
        }
        if wanted < length {
            self.unread = length - wanted;
        }
        Ok((Bytes::from(body), wanted == length))
    }

    /// Reads a chunked body (RFC 9112 §7.1), at most `cap` bytes of its data; with it, whether
    /// it was read to its end, trailer fields and final CRLF included. A body longer than `cap`
    /// is not read further (its rest is left [unread](Self::unread)): memory stays bounded by
    /// the limit, whatever the client sends.
    fn read_chunked(
        &mut self,
        stream: &mut impl Read,
        cap: usize,
    ) -> Result<(Bytes, bool), Incoming> {
        let mut body = Vec::new();
        let mut extensions = 0;
        loop {
            let too_long = (StatusCode::BAD_REQUEST, "chunk-size line too long");
            let end = self.line_end(stream, MAX_CHUNK_LINE, too_long)?;
            let line = &self.buf[self.pos..self.pos + end - 2];
            let size = parse_chunk_size(line).ok_or_else(|| bad("bad chunk size"))?;
            extensions += line.len() - significant_digits(line);
            if extensions > MAX_CHUNK_EXTENSIONS {
                return Err(bad("chunk extensions too long"));
            }
            self.pos += end;
            if size == 0 {
                self.skip_trailer_fields(stream)?;
                return Ok((Bytes::from(body), true));
            }
            let room = cap - body.len();
            self.read_chunk_data(stream, &mut body, size.min(room))?;
            if size > room {
                self.unread = UNKNOWN_UNREAD;
                return Ok((Bytes::from(body), false));
            }
            self.expect_crlf(stream)?;
        }
    }

    /// Appends the next `n` bytes of a chunk's data to `body`.
    fn read_chunk_data(
        &mut self,
        stream: &mut impl Read,
        body: &mut Vec<u8>,
        n: usize,
    ) -> Result<(), Incoming> {
        match self.read_exact_into(stream, body, n) {
            Ok(true) => Ok(()),
            Ok(false) => Err(bad("chunked body cut short")),
            Err(_) => Err(Incoming::Closed),
        }
    }

    /// Takes the CRLF that ends a chunk's data.
    fn expect_crlf(&mut self, stream: &mut impl Read) -> Result<(), Incoming> {
        while self.buf.len() - self.pos < 2 {
            self.fill_chunked(stream)?;
        }
        if !self.buf[self.pos..].starts_with(b"\r\n") {
            return Err(bad("chunk data not followed by CRLF"));
        }
        self.pos += 2;
        Ok(())
    }

    /// Reads the trailer section after the last chunk, up to and including its empty line, and
    /// drops it: nothing here reads trailer fields, but they must be well-formed and, like a
    /// head, at most [`MAX_HEAD`] bytes.
    fn skip_trailer_fields(&mut self, stream: &mut impl Read) -> Result<(), Incoming> {
        let mut budget = MAX_HEAD;
        loop {
            let too_long = (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "trailer fields too large",
            );
            let end = self.line_end(stream, budget, too_long)?;
            let line = &self.buf[self.pos..self.pos + end - 2];
            if line.is_empty() {
                self.pos += end;
                return Ok(());
            }
            if !is_field_line(line) {
                return Err(bad("malformed trailer field"));
            }
            self.pos += end;
            budget -= end;
        }
    }

    /// The length of the next line in the buffer from `pos`, its CRLF included, reading until one
    /// ends.
    /// Chunk framing ends lines with CRLF only (as hyper reads it): a bare LF is refused, and so
    /// is a line longer than `limit` bytes, with `too_long`.
    fn line_end(
        &mut self,
        stream: &mut impl Read,
        limit: usize,
        too_long: (StatusCode, &'static str),
    ) -> Result<usize, Incoming> {
        // Offsets from `pos`, which reading more moves to the buffer's start.
        let mut searched: usize = 0;
        loop {
            let unread = &self.buf[self.pos..];
            let window = unread.len().min(limit);
            if let Some(at) = unread[searched..window].iter().position(|&b| b == b'\n') {
                let lf = searched + at;
                if lf == 0 || unread[lf - 1] != b'\r' {
                    return Err(bad("chunk framing line not ended by CRLF"));
                }
                return Ok(lf + 1);
            }
            if window == limit {
                return Err(Incoming::Bad(too_long.0, too_long.1));
            }
            searched = window;
            self.fill_chunked(stream)?;
        }
    }

    /// Reads more of a chunked body into the buffer. The stream ending inside the body is
    /// malformed framing (400), as is any cut-short chunked body; a failed read is a close.
    fn fill_chunked(&mut self, stream: &mut impl Read) -> Result<(), Incoming> {
        loop {
            match self.fill(stream) {
                Ok(0) => return Err(bad("chunked body cut short")),
                Ok(_) => return Ok(()),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(Incoming::Closed),
            }
        }
    }

    /// Appends the next `n` bytes of the connection to `body`, the buffered ones first, reading
    /// no further than them: what follows belongs to the framing or to the next request.
    /// `Ok(false)` when the stream ended first.
    fn read_exact_into(
        &mut self,
        stream: &mut impl Read,
        body: &mut Vec<u8>,
        n: usize,
    ) -> io::Result<bool> {
        let from_buf = n.min(self.buf.len() - self.pos);
        body.extend_from_slice(&self.buf[self.pos..self.pos + from_buf]);
        self.pos += from_buf;
        let missing = n - from_buf;
        if missing == 0 {
            return Ok(true);
        }
        let read = Read::take(stream, missing as u64).read_to_end(body)?;
        Ok(read == missing)
    }

    /// Reads once from `stream` onto the end of the buffer; how many bytes came (0 at the end of
    /// the stream).
    fn fill(&mut self, stream: &mut impl Read) -> io::Result<usize> {
        // Straight into the buffer: a chunk array on the stack made this the deepest frame of
        // a connection thread, and every stack page a thread touched stays resident for the
        // connection's life (bench/ANALYSIS.md, "Threads runtime: stack pages").
        self.buf.drain(..self.pos);
        self.pos = 0;
        let filled = self.buf.len();
        self.buf.resize(filled + READ_CHUNK, 0);
        let read = stream.read(&mut self.buf[filled..]);
        self.buf.truncate(filled + read.as_ref().map_or(0, |n| *n));
        read
    }
}

/// A 400 answer for a malformed request.
fn bad(text: &'static str) -> Incoming {
    Incoming::Bad(StatusCode::BAD_REQUEST, text)
}

/// How a request's body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `Content-Length` bytes; none without that header.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A request's head, read before its body.
pub(crate) struct Head {
    pub method: Method,
    pub uri: Uri,
    version: Version,
    pub headers: HeaderMap,
    /// How the body is delimited, checked by [`HttpReader::read_head`].
    framing: Framing,
    /// An HTTP/1.1 request with a body and `Expect: 100-continue`: its client waits for
    /// `100 Continue` (or a final answer) before sending the body.
    expects_continue: bool,
}

impl Head {
    /// True when the body comes in chunks (the one framing whose body can be malformed).
    pub fn is_chunked(&self) -> bool {
        matches!(self.framing, Framing::Chunked)
    }

    /// True when the client waits for `100 Continue` before sending the body (RFC 9110
    /// §10.1.1; ignored for HTTP/1.0 and for an empty body, as hyper does).
    pub fn expects_continue(&self) -> bool {
        self.expects_continue
    }

    /// True when the body is known, before it is read, to be longer than `max_body` bytes (a
    /// chunked body's length is not).
    pub fn body_longer_than(&self, max_body: usize) -> bool {
        matches!(self.framing, Framing::Length(length) if length > max_body)
    }
}

/// How the body of a request with `headers` is framed; `Err` says why it is refused (400).
fn framing(headers: &HeaderMap, version: Version) -> Result<Framing, &'static str> {
    let mut encodings = headers.get_all(TRANSFER_ENCODING).iter();
    if let Some(encoding) = encodings.next() {
        if headers.contains_key(CONTENT_LENGTH) {
            // RFC 9112 §6.3 lets `Transfer-Encoding` win, or the request be refused: both
            // lengths in one request is how a request is smuggled past a proxy reading the other.
            return Err("both content-length and transfer-encoding");
        }
        if version != Version::HTTP_11 {
            // Faulty framing (RFC 9112 §6.1), refused by hyper too.
            return Err("transfer-encoding in an HTTP/1.0 request");
        }
        // Another coding would reach the application still applied, and `chunked` twice is not
        // allowed (RFC 9112 §6.1).
        if encodings.next().is_some() || !encoding.as_bytes().eq_ignore_ascii_case(b"chunked") {
            return Err("unsupported transfer encoding");
        }
        return Ok(Framing::Chunked);
    }
    let mut lengths = headers.get_all(CONTENT_LENGTH).iter();
    match (lengths.next(), lengths.next()) {
        (None, _) => Ok(Framing::Length(0)),
        (Some(value), None) => value
            .to_str()
            .ok()
            .and_then(parse_length)
            .map(Framing::Length)
            .ok_or("bad content-length"),
        (Some(_), Some(_)) => Err("several content-lengths"),
    }
}

/// The size on a chunk-size line (without its CRLF): hex digits, then optionally whitespace and
/// chunk extensions after a `;`, which are ignored (RFC 9112 §7.1.1). `None` when the line is
/// malformed or the size does not fit a `usize`.
fn parse_chunk_size(line: &[u8]) -> Option<usize> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let extensions_fine = match trim_ows(&line[digits..]) {
        [] => true,
        [b';', extensions @ ..] => !extensions
            .iter()
            .any(|&b| b.is_ascii_control() && b != b'\t'),
        _ => false,
    };
    if digits == 0 || !extensions_fine {
        return None;
    }
    line[..digits].iter().try_fold(0usize, |size, &digit| {
        let value = char::from(digit).to_digit(16)?;
        size.checked_mul(16)?.checked_add(value as usize)
    })
}

/// How many hex digits of a chunk-size line carry its size: leading zeros do not, and are
/// counted with the extensions, or a size line padded with zeros would escape their bound.
fn significant_digits(line: &[u8]) -> usize {
    line.iter()
        .take_while(|b| b.is_ascii_hexdigit())
        .skip_while(|&&b| b == b'0')
        .count()
}

/// True for a field line (`name: value`) a head would accept.
fn is_field_line(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    HeaderName::from_bytes(&line[..colon]).is_ok()
        && HeaderValue::from_bytes(trim_ows(&line[colon + 1..])).is_ok()
}

/// How many bytes of empty lines (CRLF or a bare LF) `buf` starts with.
fn leading_empty_lines(buf: &[u8]) -> usize {
    let mut skipped = 0;
    loop {
        #[cfg(test)]
        tests::EMPTY_LINE_STEPS.with(|steps| steps.set(steps.get() + 1));
        match &buf[skipped..] {
            [b'\n', ..] => skipped += 1,
            [b'\r', b'\n', ..] => skipped += 2,
            _ => return skipped,
        }
    }
}

/// Where the head `buf` starts ends: just past its first empty line. Lines end with CRLF or a
/// bare LF (RFC 9112 §2.2), so the empty line is the LF or CRLF right after an LF.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = buf[from..].iter().position(|&b| b == b'\n') {
        let lf = from + at;
        match &buf[lf + 1..] {
            [b'\n', ..] => return Some(lf + 2),
            [b'\r', b'\n', ..] => return Some(lf + 3),
            _ => from = lf + 1,
        }
    }
    None
}

/// A `Content-Length` value (already without the whitespace around it): decimal digits only.
fn parse_length(text: &str) -> Option<usize> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn parse_head(head: Bytes) -> Result<Head, (StatusCode, &'static str)> {
    const BAD: (StatusCode, &str) = (StatusCode::BAD_REQUEST, "malformed request");
    // Without the empty line (CRLF or LF) and the last line's LF: every line, the last one too,
    // keeps the CR of its CRLF, which the split below removes (one CR only: a second is part of
    // the line, and refused with it).
    let without_empty = head.strip_suffix(b"\n").ok_or(BAD)?;
    let without_empty = without_empty.strip_suffix(b"\r").unwrap_or(without_empty);
    let end = without_empty.strip_suffix(b"\n").ok_or(BAD)?.len();
    // Each line as its range in `head`, without the line end.
    let mut lines = head[..end].split(|&b| b == b'\n').scan(0, |start, line| {
        let range = *start..*start + line.strip_suffix(b"\r").unwrap_or(line).len();
        *start += line.len() + 1;
        Some(range)
    });
    let request_line = &head[lines.next().ok_or(BAD)?];
    let mut parts = request_line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BAD);
    };
    let method = Method::from_bytes(method).map_err(|_| BAD)?;
    let uri = Uri::from_maybe_shared(head.slice_ref(target)).map_err(|_| BAD)?;
    let version = match version {
        b"HTTP/1.1" => Version::HTTP_11,
        b"HTTP/1.0" => Version::HTTP_10,
        _ => {
            return Err((
                StatusCode::HTTP_VERSION_NOT_SUPPORTED,
                "HTTP/1.0 and HTTP/1.1 only",
            ));
        }
    };
    let fields = head[..end].iter().filter(|&&b| b == b'\n').count();
    let mut headers = HeaderMap::with_capacity(fields.min(MAX_HEADERS));
    for range in lines {
        if headers.len() >= MAX_HEADERS {
            return Err((
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "too many headers",
            ));
        }
        let line = &head[range];
        // Obsolete line folding and empty lines inside the head are refused.
        if line.first().is_none_or(|b| *b == b' ' || *b == b'\t') {
            return Err(BAD);
        }
        let colon = line.iter().position(|&b| b == b':').ok_or(BAD)?;
        let name = HeaderName::from_bytes(&line[..colon]).map_err(|_| BAD)?;
        // Only SP and HTAB around the value are dropped; any other control byte in it (CR, LF,
        // form feed, ...) makes it invalid for `HeaderValue`, and the request is refused.
        let value = head.slice_ref(trim_ows(&line[colon + 1..]));
        let value = HeaderValue::from_maybe_shared(value).map_err(|_| BAD)?;
        headers.append(name, value);
    }
    Ok(Head {
        method,
        uri,
        version,
        headers,
        framing: Framing::Length(0),
        expects_continue: false,
    })
}

/// `bytes` without the optional whitespace (SP and HTAB) around a field value (RFC 9110 §5.5).
fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// True when a `Connection` header of `headers` lists `token` (case-insensitive).
fn has_connection_token(headers: &HeaderMap, token: &str) -> bool {
    sockio_core::http::lists_token(headers, &CONNECTION, token.as_bytes())
}

/// Whether the client lets the connection stay open after this request: `close` (in any
/// `Connection` header, next to any other token) ends it in every version; otherwise HTTP/1.1
/// stays open and HTTP/1.0 only with `keep-alive`.
fn wants_keep_alive(version: Version, headers: &HeaderMap) -> bool {
    if has_connection_token(headers, "close") {
        return false;
    }
    version == Version::HTTP_11 || has_connection_token(headers, "keep-alive")
}

/// Writes `response` (its own framing headers replaced by `Content-Length` and `Connection`) and
/// returns whether the connection stays open: as `keep_alive` says, unless the response itself
/// says `Connection: close` (the core's refusal of a WebSocket upgrade, or an application's
/// answer), which is then written and kept.
/// The answer to a `HEAD` request (`to_head`) has the headers a `GET` would have had, its
/// `Content-Length` included, and no body (RFC 9110 §9.3.2): body bytes there would be read as
/// the start of the next response. A 1xx, 204 or 304 response has neither a body nor a
/// `Content-Length` (RFC 9110 §8.6, RFC 9112 §6.3).
pub(crate) fn write_response(
    mut stream: &TcpStream,
    response: &Response,
    keep_alive: bool,
    to_head: bool,
) -> io::Result<bool> {
    let keep_alive = keep_alive && !has_connection_token(response.headers(), "close");
    let status = response.status();
    let mut out = Vec::with_capacity(256);
    // Written into `out` (a `Vec` does not fail), not through `format!`'s own strings.
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    write_headers(&mut out, response.headers(), true);
    // A server with a clock sends when it answered (RFC 9110 §6.6.1), unless the answer has one.
    if !status.is_informational() && !response.headers().contains_key(DATE) {
        let _ = write!(
            out,
            "Date: {}\r\n",
            httpdate::fmt_http_date(std::time::SystemTime::now())
        );
    }
    let bodiless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    // An application's answer to a HEAD may say how long the GET's body would be, without it.
    let head_length = response
        .headers()
        .get(CONTENT_LENGTH)
        .filter(|_| to_head && response.body().is_empty());
    if let Some(length) = head_length.filter(|_| !bodiless) {
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(length.as_bytes());
        out.extend_from_slice(b"\r\n");
    } else if !bodiless {
        let _ = write!(out, "Content-Length: {}\r\n", response.body().len());
    }
    out.extend_from_slice(if keep_alive {
        b"Connection: keep-alive\r\n\r\n"
    } else {
        b"Connection: close\r\n\r\n"
    });
    let body: &[u8] = if to_head || bodiless {
        &[]
    } else {
        response.body()
    };
    write_head_and_body(stream, &out, body)?;
    stream.flush()?;
    Ok(keep_alive)
}

/// Writes `head` and then `body` with vectored writes: one system call for both as a single
/// buffer took, without copying a large body (a polling answer of many messages) behind its head.
fn write_head_and_body(mut stream: &TcpStream, head: &[u8], body: &[u8]) -> io::Result<()> {
    let mut both = [IoSlice::new(head), IoSlice::new(body)];
    let mut left = &mut both[..];
    // Drops a leading empty slice (a bodiless response has an empty second one, dropped below).
    IoSlice::advance_slices(&mut left, 0);
    while !left.is_empty() {
        match stream.write_vectored(left) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => IoSlice::advance_slices(&mut left, written),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Tells a client waiting to send a body (`Expect: 100-continue`) to send it.
pub(crate) fn write_continue(mut stream: &TcpStream) -> io::Result<()> {
    stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    stream.flush()
}

/// A plain-text response.
pub(crate) fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut response = Response::new(Bytes::from_static(text.as_bytes()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Writes a `101 Switching Protocols` head with `headers`.
pub(crate) fn write_switching(mut stream: &TcpStream, headers: &HeaderMap) -> io::Result<()> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
    write_headers(&mut out, headers, false);
    out.extend_from_slice(b"\r\n");
    stream.write_all(&out)?;
    stream.flush()
}

/// Writes `headers`; with `replace_framing`, without those this writer sets itself.
fn write_headers(out: &mut Vec<u8>, headers: &HeaderMap, replace_framing: bool) {
    for (name, value) in headers {
        if replace_framing
            && (name == CONTENT_LENGTH || name == TRANSFER_ENCODING || name == CONNECTION)
        {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// The server's end of a connection whose client sent `bytes` and then shut its side.
    pub(super) fn sent(bytes: &[u8]) -> TcpStream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client.write_all(bytes).unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        server
    }

    /// Feeds `bytes` to a reader through a real socket pair.
    fn read(bytes: &[u8], max_body: usize) -> (Incoming, HttpReader) {
        let mut reader = HttpReader::default();
        let incoming = reader.read_request(&sent(bytes), max_body);
        (incoming, reader)
    }

    /// A body larger than the socket buffers takes several vectored writes, each starting where
    /// the last stopped (the head is no longer copied in front of it).
    #[test]
    fn a_large_response_body_arrives_whole_behind_its_head() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let body: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let expected = body.clone();
        let reading = std::thread::spawn(move || {
            let mut received = Vec::new();
            client.read_to_end(&mut received).unwrap();
            received
        });
        let response = Response::new(Bytes::from(body));
        assert!(!write_response(&server, &response, false, false).unwrap());
        drop(server);
        let received = reading.join().unwrap();
        let head_end = received.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = std::str::from_utf8(&received[..head_end]).unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("Content-Length: 4194304\r\n"), "{head}");
        assert!(head.ends_with("Connection: close\r\n\r\n"), "{head}");
        assert!(received[head_end..] == expected[..], "the body differs");
    }

    #[test]
    fn reads_a_request_with_body_and_keeps_the_rest() {
        let (incoming, mut reader) = read(
            b"POST /socket.io/?EIO=4 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nX-A: 1\r\nX-A: 2\r\n\r\n40GET",
            100,
        );
        let Incoming::Request {
            request,
            keep_alive,
        } = incoming
        else {
            panic!("{incoming:?}")
        };
        assert!(keep_alive);
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.uri().query(), Some("EIO=4"));
        assert_eq!(request.body().as_ref(), b"40");
        assert_eq!(request.headers().get_all("x-a").iter().count(), 2);
        let leftover = reader.take_leftover();
        assert_eq!(leftover, b"GET");
        // The room a read asked for is not handed on: the WebSocket keeps this buffer.
        assert!(leftover.capacity() < READ_CHUNK, "{}", leftover.capacity());
    }

    #[test]
    fn a_head_longer_than_one_read_and_the_request_after_it_are_both_read() {
        let long = "v".repeat(READ_CHUNK + READ_CHUNK / 2);
        let bytes = format!(
            "GET /a HTTP/1.1\r\nX-Long: {long}\r\n\r\nGET /b?EIO=4 HTTP/1.1\r\nHost: x\r\n\r\n"
        );
        let (first, mut reader) = read(bytes.as_bytes(), 10);
        let Incoming::Request { request, .. } = first else {
            panic!("{first:?}")
        };
        assert_eq!(request.uri().path(), "/a");
        assert_eq!(request.headers()["x-long"].as_bytes(), long.as_bytes());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (idle, _) = listener.accept().unwrap();
        // Were it read, it would time out and the request come back as a close.
        idle.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        // The second request is already in the buffer: no read of the (idle) stream is needed.
        let Incoming::Request { request, .. } = reader.read_request(&idle, 10) else {
            panic!("the second request")
        };
        assert_eq!(request.uri().query(), Some("EIO=4"));
        assert!(reader.take_leftover().is_empty());
    }

    #[test]
    fn spaces_and_tabs_around_a_value_are_dropped() {
        let (incoming, _) = read(
            b"POST / HTTP/1.1\r\nContent-Length: \t3 \t\r\nX-A:\ta b\t\r\n\r\nabc",
            10,
        );
        let Incoming::Request { request, .. } = incoming else {
            panic!("{incoming:?}")
        };
        assert_eq!(request.body().as_ref(), b"abc");
        assert_eq!(request.headers()["x-a"], "a b");
    }

    #[test]
    fn bare_lf_line_ends_and_leading_empty_lines_are_accepted() {
        let heads: [&[u8]; 6] = [
            b"GET /a HTTP/1.1\nHost: x\nX-A: 1\n\n",
            b"GET /a HTTP/1.1\nHost: x\nX-A: 1\n\r\n",
            b"GET /a HTTP/1.1\r\nHost: x\nX-A: 1\r\n\n",
            b"\r\nGET /a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\n",
            b"\n\r\n\nGET /a HTTP/1.1\nHost: x\nX-A: 1\n\n",
            b"\nGET /a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\n",
        ];
        for head in heads {
            let mut bytes = head.to_vec();
            bytes.extend_from_slice(b"rest");
            let (incoming, mut reader) = read(&bytes, 10);
            let Incoming::Request { request, .. } = incoming else {
                panic!("{incoming:?} for {:?}", String::from_utf8_lossy(head))
            };
            assert_eq!(request.uri().path(), "/a");
            assert_eq!(request.headers()["host"], "x");
            assert_eq!(request.headers()["x-a"], "1");
            assert_eq!(reader.take_leftover(), b"rest");
        }
    }

    #[test]
    fn finds_the_end_of_a_head() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nx"), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\nx"), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\r\nx"), Some(17));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r"), None);
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n\rc"), None);
        assert_eq!(leading_empty_lines(b"\r\n\n\r\nGET"), 5);
        assert_eq!(leading_empty_lines(b"\r\rGET"), 0);
    }

    #[test]
    fn caps_the_body_one_past_the_limit() {
        let (incoming, _) = read(
            b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789",
            4,
        );
        let Incoming::Request {
            request,
            keep_alive,
        } = incoming
        else {
            panic!()
        };
        assert_eq!(request.body().len(), 5);
        assert!(!keep_alive);
    }

    #[test]
    fn refuses_malformed_requests() {
        let cases: [(&[u8], StatusCode); 12] = [
            (b"GET /\r\n\r\n", StatusCode::BAD_REQUEST),
            (
                b"GET / HTTP/2.0\r\n\r\n",
                StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            ),
            (
                b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
                StatusCode::BAD_REQUEST,
            ),
            (
                b"GET / HTTP/1.1\r\n folded: x\r\n\r\n",
                StatusCode::BAD_REQUEST,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
                StatusCode::BAD_REQUEST,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                StatusCode::BAD_REQUEST,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
                StatusCode::BAD_REQUEST,
            ),
            (b"G\x01T / HTTP/1.1\r\n\r\n", StatusCode::BAD_REQUEST),
            // Control bytes other than HTAB around or in a value are not whitespace.
            (
                b"POST / HTTP/1.1\r\nContent-Length:\r3\r\n\r\nabc",
                StatusCode::BAD_REQUEST,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 3\x0c\r\n\r\nabc",
                StatusCode::BAD_REQUEST,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 3\r\r\n\r\nabc",
                StatusCode::BAD_REQUEST,
            ),
            (
                b"GET / HTTP/1.1\r\nX-A: a\x0bb\r\n\r\n",
                StatusCode::BAD_REQUEST,
            ),
        ];
        for (bytes, status) in cases {
            match read(bytes, 100).0 {
                Incoming::Bad(got, _) => {
                    assert_eq!(got, status, "{:?}", String::from_utf8_lossy(bytes))
                }
                other => panic!("{other:?} for {:?}", String::from_utf8_lossy(bytes)),
            }
        }
    }

    #[test]
    fn limits_the_head() {
        let mut big = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..101 {
            big.extend_from_slice(format!("x-{i}: y\r\n").as_bytes());
        }
        big.extend_from_slice(b"\r\n");
        assert!(matches!(
            read(&big, 10).0,
            Incoming::Bad(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, _)
        ));
        // Skipped empty lines count towards the limit.
        assert!(matches!(
            read(&b"\r\n".repeat(MAX_HEAD), 10).0,
            Incoming::Bad(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, _)
        ));
        let mut huge = b"GET / HTTP/1.1\r\nx: ".to_vec();
        huge.extend(std::iter::repeat_n(b'a', MAX_HEAD));
        assert!(matches!(
            read(&huge, 10).0,
            Incoming::Bad(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, _)
        ));
    }

    /// A stream giving one byte per read, as a client sending one byte per segment does.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let (Some(slot), Some((&byte, rest))) = (buf.first_mut(), self.0.split_first()) else {
                return Ok(0);
            };
            *slot = byte;
            self.0 = rest;
            Ok(1)
        }
    }

    thread_local! {
        /// Steps taken by `leading_empty_lines` on this thread: what the test below counts.
        pub(super) static EMPTY_LINE_STEPS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// Empty lines before a request line that come a byte at a time are skipped once each, as a
    /// head's end is searched for once: they were all looked at again after every read, in
    /// steps quadratic in their length (64 KiB of them a byte per read took 3 s in a debug
    /// build). Counted, not timed: at most one step per byte plus one per read.
    #[test]
    fn empty_lines_that_come_a_byte_at_a_time_are_skipped_once() {
        let empty_lines = b"\r\n".repeat(MAX_HEAD / 2);
        EMPTY_LINE_STEPS.with(|steps| steps.set(0));
        let mut reader = HttpReader::default();
        let refused = reader.read_head(Trickle(&empty_lines));
        assert!(
            matches!(
                refused,
                Err(Incoming::Bad(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    _
                ))
            ),
            "{:?}",
            refused.err()
        );
        let steps = EMPTY_LINE_STEPS.with(std::cell::Cell::get);
        assert!(
            steps <= 2 * empty_lines.len() + 2,
            "{steps} steps for {} bytes",
            empty_lines.len()
        );
    }

    /// A head that comes a few bytes at a time, its end split between reads in each way it can
    /// be (LF LF, LF CR LF), is found where it ends: the search resumes near where it stopped.
    #[test]
    fn reads_a_head_that_comes_in_pieces() {
        for head in [
            "\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /a HTTP/1.1\nHost: x\n\n",
        ] {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (server, _) = listener.accept().unwrap();
            client.set_nodelay(true).unwrap();
            let bytes = format!("{head}GET /b HTTP/1.1\r\n\r\n").into_bytes();
            let writer = std::thread::spawn(move || {
                // One byte per segment (the pauses keep the kernel from joining them), so the
                // reader gets the head in many reads.
                for byte in bytes {
                    client.write_all(&[byte]).unwrap();
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                client.shutdown(std::net::Shutdown::Write).unwrap();
            });
            let mut reader = HttpReader::default();
            for path in ["/a", "/b"] {
                match reader.read_request(&server, 10) {
                    Incoming::Request { request, .. } => assert_eq!(request.uri().path(), path),
                    other => panic!("{other:?} for {head:?}"),
                }
            }
            writer.join().unwrap();
        }
    }

    /// A browser's cookies for a site can pass 8 KiB; the async runtimes (hyper) read them.
    #[test]
    fn reads_a_head_with_large_cookies() {
        let cookie = "c".repeat(20 * 1024);
        let head =
            format!("GET /socket.io/?EIO=4 HTTP/1.1\r\nHost: a\r\nCookie: k={cookie}\r\n\r\n");
        match read(head.as_bytes(), 10).0 {
            Incoming::Request { request, .. } => {
                assert_eq!(request.headers()["cookie"].len(), cookie.len() + 2)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn truncated_or_empty_input_is_a_close() {
        assert!(matches!(read(b"", 10).0, Incoming::Closed));
        assert!(matches!(
            read(b"GET / HTTP/1.1\r\n", 10).0,
            Incoming::Closed
        ));
        assert!(matches!(
            read(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", 10).0,
            Incoming::Closed
        ));
    }

    #[test]
    fn http10_closes_by_default() {
        let Incoming::Request { keep_alive, .. } = read(b"GET / HTTP/1.0\r\n\r\n", 10).0 else {
            panic!()
        };
        assert!(!keep_alive);
        let Incoming::Request { keep_alive, .. } =
            read(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 10).0
        else {
            panic!()
        };
        assert!(!keep_alive);
    }

    #[test]
    fn close_wins_over_keep_alive() {
        let heads: [&[u8]; 6] = [
            // Bytes outside visible ASCII elsewhere on the line do not hide the token.
            b"GET / HTTP/1.1\r\nConnection: close, f\xc3\xb6\r\n\r\n",
            b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
            b"GET / HTTP/1.0\r\nConnection: close, keep-alive\r\n\r\n",
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: Close\r\n\r\n",
            b"GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n",
            b"GET / HTTP/1.1\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
        ];
        for head in heads {
            let Incoming::Request { keep_alive, .. } = read(head, 10).0 else {
                panic!()
            };
            assert!(!keep_alive, "{:?}", String::from_utf8_lossy(head));
        }
        let Incoming::Request { keep_alive, .. } =
            read(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 10).0
        else {
            panic!()
        };
        assert!(keep_alive);
    }

    const CHUNKED_POST: &str = "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";

    /// A chunked POST whose bytes after the head are `framed`.
    pub(super) fn chunked_request(framed: &[u8]) -> Vec<u8> {
        let mut bytes = CHUNKED_POST.as_bytes().to_vec();
        bytes.extend_from_slice(framed);
        bytes
    }

    /// Reads a chunked POST whose body (after the head) is `body`; the request's body, whether
    /// the connection stays open, and the reader.
    fn read_chunked(body: &[u8], max_body: usize) -> (Bytes, bool, HttpReader) {
        let (incoming, reader) = read(&chunked_request(body), max_body);
        let Incoming::Request {
            request,
            keep_alive,
        } = incoming
        else {
            panic!("{incoming:?} for {:?}", String::from_utf8_lossy(body))
        };
        (request.into_body(), keep_alive, reader)
    }

    #[test]
    fn reads_a_chunked_body_of_one_chunk() {
        let (body, keep_alive, mut reader) = read_chunked(b"2\r\n40\r\n0\r\n\r\nGET", 100);
        assert_eq!(body.as_ref(), b"40");
        assert!(keep_alive);
        assert_eq!(reader.take_leftover(), b"GET");
    }

    #[test]
    fn reads_a_chunked_body_of_several_chunks() {
        let (body, keep_alive, _) =
            read_chunked(b"5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n", 100);
        assert_eq!(body.as_ref(), b"hello world");
        assert!(keep_alive);
    }

    #[test]
    fn chunk_extensions_are_ignored() {
        let (body, keep_alive, _) = read_chunked(
            b"5;name=value\r\nhello\r\n6 ; a ;b=\"c; d\"\t\r\n world\r\n0;last\r\n\r\n",
            100,
        );
        assert_eq!(body.as_ref(), b"hello world");
        assert!(keep_alive);
    }

    #[test]
    fn trailer_fields_are_read_and_dropped() {
        let (body, keep_alive, mut reader) = read_chunked(
            b"2\r\n40\r\n0\r\nX-Checksum: abc\r\nX-Other:\t1 \r\n\r\nnext",
            100,
        );
        assert_eq!(body.as_ref(), b"40");
        assert!(keep_alive);
        assert_eq!(reader.take_leftover(), b"next");
    }

    #[test]
    fn chunk_sizes_are_hex_in_either_case_with_leading_zeros() {
        let data = "0123456789abcdefghijklmnopqrstu"; // 31 bytes
        for size in ["1f", "1F", "001f"] {
            let chunked =
                format!("{size}\r\n{data}\r\na\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n");
            let (body, _, _) = read_chunked(chunked.as_bytes(), 100);
            assert_eq!(body, format!("{data}01234567890123456789"), "{size}");
        }
    }

    #[test]
    fn chunks_longer_than_a_read_are_read_whole() {
        let big = "x".repeat(3 * READ_CHUNK + 7);
        let chunked = format!("{:x}\r\n{big}\r\n3\r\nend\r\n0\r\n\r\n", big.len());
        let (body, keep_alive, _) = read_chunked(chunked.as_bytes(), 10 * READ_CHUNK);
        assert_eq!(body.len(), big.len() + 3);
        assert!(body.ends_with(b"xend"));
        assert!(keep_alive);
    }

    /// A body of exactly the limit is read; one byte more is read too (the core answers 413 on
    /// seeing it), as with `Content-Length: limit + 1`; past that the body stops being read and
    /// the connection cannot go on.
    #[test]
    fn a_chunked_body_is_capped_one_past_the_limit() {
        let (body, keep_alive, reader) = read_chunked(b"6\r\n012345\r\n4\r\n6789\r\n0\r\n\r\n", 10);
        assert_eq!((body.as_ref(), keep_alive), (&b"0123456789"[..], true));
        assert_eq!(reader.unread(), 0);
        let (body, keep_alive, reader) =
            read_chunked(b"6\r\n012345\r\n5\r\n6789a\r\n0\r\n\r\n", 10);
        assert_eq!((body.as_ref(), keep_alive), (&b"0123456789a"[..], true));
        assert_eq!(reader.unread(), 0);
        for past in [
            &b"6\r\n012345\r\n6\r\n6789ab\r\n0\r\n\r\n"[..],
            b"b\r\n0123456789a\r\n1\r\nb\r\n0\r\n\r\n",
            b"ffffffff\r\n0123456789abcdef",
        ] {
            let (body, keep_alive, reader) = read_chunked(past, 10);
            assert_eq!(
                (body.as_ref(), keep_alive),
                (&b"0123456789a"[..], false),
                "{:?}",
                String::from_utf8_lossy(past)
            );
            assert_eq!(reader.unread(), UNKNOWN_UNREAD);
        }
    }

    #[test]
    fn a_request_pipelined_after_a_chunked_body_is_read() {
        let bytes = format!(
            "{CHUNKED_POST}2\r\n40\r\n0\r\nX-T: 1\r\n\r\n\
             POST /after HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi\
             {CHUNKED_POST}3\r\nabc\r\n0\r\n\r\n"
        );
        let server = sent(bytes.as_bytes());
        let mut reader = HttpReader::default();
        let mut next = || match reader.read_request(&server, 100) {
            Incoming::Request {
                request,
                keep_alive: true,
            } => (request.uri().path().to_owned(), request.into_body()),
            other => panic!("{other:?}"),
        };
        assert_eq!(next(), ("/c".to_owned(), Bytes::from_static(b"40")));
        assert_eq!(next(), ("/after".to_owned(), Bytes::from_static(b"hi")));
        assert_eq!(next(), ("/c".to_owned(), Bytes::from_static(b"abc")));
        assert!(matches!(
            reader.read_request(&server, 100),
            Incoming::Closed
        ));
    }

    #[test]
    fn a_chunked_request_may_expect_100_continue() {
        let bytes = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n";
        let mut reader = HttpReader::default();
        let Ok(head) = reader.read_head(&sent(bytes.as_bytes())) else {
            panic!("a head")
        };
        assert!(head.expects_continue());
        // Its length is unknown until it is read.
        assert!(!head.body_longer_than(0));
        reader.leave_body(&head);
        assert_eq!(reader.unread(), UNKNOWN_UNREAD);
    }

    #[test]
    fn refuses_malformed_chunk_framing() {
        let long_line = format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(MAX_CHUNK_LINE));
        let big_trailer = format!("0\r\nX-T: {}\r\n\r\n", "t".repeat(MAX_HEAD));
        let past_max = format!("1{:x}\r\nx", usize::MAX);
        let cases: [(&[u8], StatusCode); 16] = [
            (b"zz\r\nab\r\n0\r\n\r\n", StatusCode::BAD_REQUEST),
            (b"-1\r\n", StatusCode::BAD_REQUEST),
            (b" 2\r\n40\r\n0\r\n\r\n", StatusCode::BAD_REQUEST),
            (b"0x2\r\n40\r\n0\r\n\r\n", StatusCode::BAD_REQUEST),
            (b"\r\n40\r\n0\r\n\r\n", StatusCode::BAD_REQUEST),
            (past_max.as_bytes(), StatusCode::BAD_REQUEST),
            (b"2 x\r\n40\r\n0\r\n\r\n", StatusCode::BAD_REQUEST),
            (b"2;a\x01b\r\n40\r\n0\r\n\r\n", StatusCode::BAD_REQUEST),
            // Line ends: a bare LF, data not followed by CRLF.
            (b"2\n40\r\n0\r\n\r\n", StatusCode::BAD_REQUEST),
            (b"2\r\n40xx0\r\n\r\n", StatusCode::BAD_REQUEST),
            (b"2\r\n400\r\n\r\n", StatusCode::BAD_REQUEST),
            (long_line.as_bytes(), StatusCode::BAD_REQUEST),
            // Trailer fields.
            (b"0\r\nno colon\r\n\r\n", StatusCode::BAD_REQUEST),
            (b"0\r\n folded: x\r\n\r\n", StatusCode::BAD_REQUEST),
            (b"0\r\nX-T: 1\n\r\n", StatusCode::BAD_REQUEST),
            (
                big_trailer.as_bytes(),
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ),
        ];
        for (body, status) in cases {
            match read(&chunked_request(body), 100).0 {
                Incoming::Bad(got, _) => {
                    assert_eq!(got, status, "{:?}", String::from_utf8_lossy(body))
                }
                other => panic!("{other:?} for {:?}", String::from_utf8_lossy(body)),
            }
        }
    }

    #[test]
    fn chunk_extensions_are_capped_over_the_whole_body() {
        let extension = format!(";{}", "e".repeat(1000));
        let within: String = (0..16).map(|_| format!("1{extension}\r\nx\r\n")).collect();
        let (body, keep_alive, _) = read_chunked(format!("{within}0\r\n\r\n").as_bytes(), 100);
        assert_eq!((body.len(), keep_alive), (16, true));
        // Leading zeros are charged as extensions are: they carry no size either.
        let zeros = "0".repeat(1000);
        for line in [format!("1{extension}"), format!("{zeros}1")] {
            let past: String = (0..17).map(|_| format!("{line}\r\nx\r\n")).collect();
            let (incoming, reader) =
                read(&chunked_request(format!("{past}0\r\n\r\n").as_bytes()), 100);
            assert!(
                matches!(
                    incoming,
                    Incoming::Bad(StatusCode::BAD_REQUEST, "chunk extensions too long")
                ),
                "{incoming:?}"
            );
            // What the client still sends is drained before the close.
            assert_eq!(reader.unread(), UNKNOWN_UNREAD);
        }
    }

    /// The stream ending anywhere inside a chunked body is malformed framing, not a request.
    #[test]
    fn a_chunked_body_cut_short_is_refused() {
        let whole = b"5;x=y\r\nhello\r\n0\r\nX-T: 1\r\n\r\n";
        for end in 0..whole.len() {
            match read(&chunked_request(&whole[..end]), 100).0 {
                Incoming::Bad(StatusCode::BAD_REQUEST, _) => {}
                other => panic!("{other:?} cut at {end}"),
            }
        }
    }

    /// Only `chunked` alone, in HTTP/1.1, without `Content-Length`.
    #[test]
    fn refuses_other_transfer_encodings_and_both_lengths() {
        let heads: [&[u8]; 8] = [
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n40\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n2\r\n40\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\n40\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n40\r\n0\r\n\r\n",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n40\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked;q=1\r\n\r\n",
        ];
        for bytes in heads {
            match read(bytes, 100).0 {
                Incoming::Bad(StatusCode::BAD_REQUEST, _) => {}
                other => panic!("{other:?} for {:?}", String::from_utf8_lossy(bytes)),
            }
        }
        // The coding's name is case-insensitive (RFC 9112 §7).
        let (incoming, _) = read(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n2\r\n40\r\n0\r\n\r\n",
            100,
        );
        assert!(matches!(incoming, Incoming::Request { .. }), "{incoming:?}");
    }

    #[test]
    fn parses_chunk_sizes() {
        assert_eq!(parse_chunk_size(b"0"), Some(0));
        assert_eq!(parse_chunk_size(b"fF"), Some(255));
        assert_eq!(parse_chunk_size(b"10 ;a=b"), Some(16));
        let max = format!("{:x}", usize::MAX);
        assert_eq!(parse_chunk_size(max.as_bytes()), Some(usize::MAX));
        assert_eq!(parse_chunk_size(format!("1{max}").as_bytes()), None);
        assert_eq!(parse_chunk_size(b"00000000000000000000001"), Some(1));
        assert_eq!(parse_chunk_size(b""), None);
        assert_eq!(parse_chunk_size(b";a"), None);
        assert_eq!(parse_chunk_size(b"1 2"), None);
        assert_eq!(parse_chunk_size(b"+1"), None);
    }
}

#[cfg(test)]
mod chunked_props;

pub mod fuzzing;
