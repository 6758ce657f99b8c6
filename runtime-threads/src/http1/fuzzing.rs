//! The HTTP/1.1 request reader as the fuzz target `threads_http1` (crate `sockio-fuzz`) drives
//! it: not API, re-exported hidden as `sockio_threads::fuzzing`. A request is read as
//! `next_request` in `serve.rs` reads it, from any [`Read`], and what the reader holds is shown.

use std::io::Read;

use http::{HeaderMap, Method, Uri, Version};

use super::{Framing, HttpReader, Incoming};

/// Most bytes of a request line plus headers (`http1::MAX_HEAD`).
pub const MAX_HEAD: usize = super::MAX_HEAD;
/// Most header fields in one request.
pub const MAX_HEADERS: usize = super::MAX_HEADERS;
/// How much one read of the reader's buffer asks for.
pub const READ_CHUNK: usize = super::READ_CHUNK;
/// Most bytes of a chunk-size line, its CRLF included.
pub const MAX_CHUNK_LINE: usize = super::MAX_CHUNK_LINE;
/// Most bytes of chunk extensions (and leading zeros of sizes) in one body.
pub const MAX_CHUNK_EXTENSIONS: usize = super::MAX_CHUNK_EXTENSIONS;
/// [`Reader::unread`] after a chunked body left unread.
pub const UNKNOWN_UNREAD: usize = super::UNKNOWN_UNREAD;

/// A request as the reader produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub keep_alive: bool,
    /// The head asked for `100 Continue`.
    pub expects_continue: bool,
    /// `Some(length)` for a `Content-Length` body (0 without one), `None` for a chunked one.
    pub content_length: Option<usize>,
    /// [`Reader::unread`] after the request.
    pub unread: usize,
}

/// What reading the next request produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A request with its body.
    Request(Box<ReadRequest>),
    /// A head asking for `100 Continue` with a `Content-Length` over the limit: `serve.rs`
    /// answers 413 without reading the body (`HttpReader::leave_body`) and closes.
    Refused { content_length: usize },
    /// The stream ended (or failed) between requests or inside a `Content-Length` body.
    Closed,
    /// Refused with this status: in the head (`in_body` false) or in chunk framing.
    Bad {
        status: u16,
        text: &'static str,
        in_body: bool,
    },
}

/// An `HttpReader` with a look at what it holds.
#[derive(Default)]
pub struct Reader {
    inner: HttpReader,
    body_capacity: usize,
}

impl Reader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the next request from `stream` as `next_request` in `serve.rs` does: its head, then,
    /// unless a `100-continue` head announces a body over `max_body` (refused unread), its body
    /// capped at `max_body + 1` bytes.
    pub fn next(&mut self, mut stream: impl Read, max_body: usize) -> Outcome {
        self.body_capacity = 0;
        let head = match self.inner.read_head(&mut stream) {
            Ok(head) => head,
            Err(incoming) => return outcome(incoming, false),
        };
        let content_length = match head.framing {
            Framing::Length(length) => Some(length),
            Framing::Chunked => None,
        };
        let expects_continue = head.expects_continue();
        if expects_continue && head.body_longer_than(max_body) {
            self.inner.leave_body(&head);
            return Outcome::Refused {
                content_length: content_length.expect("only a known length is longer"),
            };
        }
        match self.inner.read_body(stream, head, max_body) {
            Incoming::Request {
                request,
                keep_alive,
            } => {
                let (parts, body) = request.into_parts();
                let body = Vec::from(body);
                self.body_capacity = body.capacity();
                Outcome::Request(Box::new(ReadRequest {
                    method: parts.method,
                    uri: parts.uri,
                    version: parts.version,
                    headers: parts.headers,
                    body,
                    keep_alive,
                    expects_continue,
                    content_length,
                    unread: self.inner.unread(),
                }))
            }
            other => outcome(other, true),
        }
    }

    /// Bytes read from the stream and not yet taken by a request.
    pub fn buffered(&self) -> usize {
        self.inner.buf.len() - self.inner.pos
    }

    /// The capacity of the reader's buffer: at least the most it ever held (it only grows, until
    /// [`Reader::take_leftover`]).
    pub fn buffer_capacity(&self) -> usize {
        self.inner.buf.capacity()
    }

    /// The capacity of the last request's body as the reader allocated it (what the request
    /// keeps); 0 after anything else.
    pub fn body_capacity(&self) -> usize {
        self.body_capacity
    }

    /// `HttpReader::unread`.
    pub fn unread(&self) -> usize {
        self.inner.unread()
    }

    /// `HttpReader::take_leftover`.
    pub fn take_leftover(&mut self) -> Vec<u8> {
        self.inner.take_leftover()
    }
}

fn outcome(incoming: Incoming, in_body: bool) -> Outcome {
    match incoming {
        Incoming::Request { .. } => unreachable!("a request comes with its body"),
        Incoming::Closed => Outcome::Closed,
        Incoming::Bad(status, text) => Outcome::Bad {
            status: status.as_u16(),
            text,
            in_body,
        },
    }
}
