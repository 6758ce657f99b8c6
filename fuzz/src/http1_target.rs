//! The `threads_http1` target: a client's bytes through the threads runtime's HTTP/1.1 request
//! reader (`runtime-threads/src/http1.rs`, driven through `sockio_threads::fuzzing`).

use std::io::{self, Read};

use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderValue, Version};
use sockio_threads::fuzzing::{MAX_HEAD, Outcome, READ_CHUNK, ReadRequest, Reader, UNKNOWN_UNREAD};

/// The body limit (`max_http_buffer_size`), picked by the low two bits of the config byte: small
/// limits make bodies over it reachable, the default one covers ordinary traffic.
const LIMITS: [usize; 4] = [0, 10, 1000, 1_000_000];

/// Config bits besides the limit's.
pub mod config {
    /// The stream ends with a read error (`TimedOut`, a socket's read timeout) instead of `Ok(0)`.
    pub const END_WITH_ERROR: u8 = 4;
    /// The cut source returns `Interrupted` before some pieces (the reader must retry).
    pub const INTERRUPT: u8 = 8;
}

/// Input: a config byte (the limit, how the stream ends, interruptions), a byte seeding the cut
/// points, then what a client sends. Requests are read as the threads runtime's connection loop
/// reads them until the stream ends, a request is refused, or a body is left unread (where the
/// connection loop closes the connection), once from a source returning as much as asked and
/// once from one returning short reads (1 to 64 bytes, at times up to 4 KiB, with `Interrupted`
/// between some of them). Besides "never panics" it checks that both give the same outcomes (the
/// requests with their method, target, version, headers, body, keep-alive, 100-continue and
/// unread count; the status and reason of a refusal; a close) and leave the same bytes unread;
/// that the reader's buffer never holds `MAX_HEAD + READ_CHUNK` bytes nor grows past twice that,
/// and a body's allocation stays within twice its length plus 32 bytes; that a body is never
/// over `max_body + 1` bytes, is exactly as long as its `Content-Length` allows, and the unread
/// count says what was left; that `Closed` and "chunked body cut short" come only once the
/// stream ended; and that every request read whole, written again with `Content-Length`
/// framing, reads back the same.
pub fn threads_http1(data: &[u8]) {
    let [config, seed, stream @ ..] = data else {
        return;
    };
    let max_body = LIMITS[usize::from(config & 3)];
    let end_with_error = config & config::END_WITH_ERROR != 0;
    let whole = read_all(stream, max_body, Source::new(stream, end_with_error, None));
    if tracing() {
        eprintln!("limit {max_body}: {:#?}", whole.0);
        let left = &whole.1[..whole.1.len().min(200)];
        eprintln!(
            "left: {} bytes, {:?}",
            whole.1.len(),
            String::from_utf8_lossy(left)
        );
    }
    let cuts = Cuts::new(*seed, config & config::INTERRUPT != 0);
    let pieces = read_all(
        stream,
        max_body,
        Source::new(stream, end_with_error, Some(cuts)),
    );
    assert_eq!(whole, pieces, "cutting the input changed what was read");
    for outcome in &whole.0 {
        if let Outcome::Request(request) = outcome {
            round_trip(request);
        }
    }
}

/// With `SOCKIO_FUZZ_TRACE` set, what was read is printed (to debug a failing input).
fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("SOCKIO_FUZZ_TRACE").is_some())
}

/// Pseudo-random piece lengths (and interruptions) from a seed byte.
struct Cuts {
    state: u32,
    interrupt: bool,
}

impl Cuts {
    fn new(seed: u8, interrupt: bool) -> Self {
        Cuts {
            state: u32::from(seed) | 0x100,
            interrupt,
        }
    }

    /// The next piece's length, and whether an `Interrupted` comes before it.
    fn next(&mut self) -> (usize, bool) {
        // xorshift
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        let length = if (self.state >> 8) & 7 == 0 {
            (self.state >> 11) as usize % 4096 + 1
        } else {
            (self.state % 64) as usize + 1
        };
        (length, self.interrupt && (self.state >> 24) & 3 == 0)
    }
}

/// The client's bytes as a `Read`: whole (as much as each read asks for) or in pieces.
struct Source<'a> {
    rest: &'a [u8],
    end_with_error: bool,
    cuts: Option<Cuts>,
    /// An `Interrupted` was just returned: the next read returns data.
    interrupted: bool,
    /// The end (or the error that stands for it) was returned.
    ended: bool,
}

impl<'a> Source<'a> {
    fn new(bytes: &'a [u8], end_with_error: bool, cuts: Option<Cuts>) -> Self {
        Source {
            rest: bytes,
            end_with_error,
            cuts,
            interrupted: false,
            ended: false,
        }
    }
}

impl Read for Source<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.rest.is_empty() {
            self.ended = true;
            return if self.end_with_error {
                Err(io::ErrorKind::TimedOut.into())
            } else {
                Ok(0)
            };
        }
        let mut take = self.rest.len().min(buf.len());
        if let Some(cuts) = &mut self.cuts {
            let (length, interrupt) = cuts.next();
            if interrupt && !self.interrupted {
                self.interrupted = true;
                return Err(io::ErrorKind::Interrupted.into());
            }
            take = take.min(length);
        }
        self.interrupted = false;
        let (piece, rest) = self.rest.split_at(take);
        buf[..take].copy_from_slice(piece);
        self.rest = rest;
        Ok(take)
    }
}

/// The outcomes of reading `input` from `source`, and the bytes the reader did not take (what
/// it holds, then what it never read).
fn read_all(input: &[u8], max_body: usize, mut source: Source) -> (Vec<Outcome>, Vec<u8>) {
    let mut reader = Reader::new();
    let mut outcomes = Vec::new();
    loop {
        // Every request takes a few bytes at least.
        assert!(outcomes.len() <= input.len(), "requests out of nothing");
        let outcome = reader.next(&mut source, max_body);
        // The buffer is filled a read (`READ_CHUNK`) at a time, only while it holds less than
        // `MAX_HEAD` bytes (a head, a chunk-size line, trailer fields, all capped by it); a `Vec`
        // at most doubles when it grows.
        assert!(
            reader.buffered() < MAX_HEAD + READ_CHUNK,
            "the reader holds {} bytes",
            reader.buffered()
        );
        assert!(
            reader.buffer_capacity() < 2 * (MAX_HEAD + READ_CHUNK),
            "the reader's buffer grew to {} bytes",
            reader.buffer_capacity()
        );
        let end = match &outcome {
            Outcome::Request(request) => {
                check_request(request, max_body, reader.body_capacity());
                // The connection loop cannot go on: the body's rest would be read as a head.
                request.unread > 0
            }
            Outcome::Refused { content_length } => {
                assert!(*content_length > max_body);
                // What is still to come of the body, past what was read with the head.
                assert_eq!(
                    reader.unread(),
                    content_length.saturating_sub(reader.buffered())
                );
                true
            }
            Outcome::Closed => {
                assert!(source.ended, "closed before the stream ended");
                assert_eq!(reader.unread(), 0);
                true
            }
            Outcome::Bad { text, in_body, .. } => {
                if *text == "chunked body cut short" {
                    assert!(
                        source.ended && !source.end_with_error,
                        "cut short too early"
                    );
                }
                // A refused chunked body's rest is drained after the answer; a head's is not.
                let unread = if *in_body { UNKNOWN_UNREAD } else { 0 };
                assert_eq!(reader.unread(), unread);
                true
            }
        };
        outcomes.push(outcome);
        if end {
            break;
        }
    }
    let mut rest = reader.take_leftover();
    rest.extend_from_slice(source.rest);
    assert!(
        input.ends_with(&rest),
        "the reader's leftover is not the input's end"
    );
    (outcomes, rest)
}

/// Checks a request's body against its framing and the limit.
fn check_request(request: &ReadRequest, max_body: usize, body_capacity: usize) {
    let cap = max_body + 1;
    let length = request.body.len();
    assert!(
        length <= cap,
        "a body of {length} bytes over the limit {max_body}"
    );
    // A `Vec` at most doubles when it grows; `read_to_end` asks for 32 bytes more at a time.
    assert!(
        body_capacity <= 2 * length + 32,
        "a body of {length} bytes allocated {body_capacity}"
    );
    match request.content_length {
        Some(content_length) => {
            assert_eq!(length, content_length.min(cap));
            assert_eq!(request.unread, content_length - length);
        }
        None => assert!(
            request.unread == 0 || (request.unread == UNKNOWN_UNREAD && length == cap),
            "a chunked body of {length} bytes left {} unread",
            request.unread
        ),
    }
    if request.unread > 0 {
        assert!(!request.keep_alive, "kept alive with a body unread");
    }
    if request.version == Version::HTTP_10 {
        assert!(request.content_length.is_some(), "HTTP/1.0 chunked");
        assert!(!request.expects_continue, "HTTP/1.0 expecting 100-continue");
    }
}

/// A request read whole, written again with its body's length as `Content-Length` (its own
/// framing headers dropped), reads back the same, alone.
fn round_trip(request: &ReadRequest) {
    if request.unread > 0 {
        return;
    }
    let mut headers = request.headers.clone();
    headers.remove(CONTENT_LENGTH);
    headers.remove(TRANSFER_ENCODING);
    if !request.body.is_empty() {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(request.body.len()));
    }
    let version = if request.version == Version::HTTP_10 {
        "HTTP/1.0"
    } else {
        "HTTP/1.1"
    };
    let mut bytes = format!("{} {} {version}\r\n", request.method, request.uri).into_bytes();
    for (name, value) in &headers {
        bytes.extend_from_slice(name.as_str().as_bytes());
        bytes.extend_from_slice(b": ");
        bytes.extend_from_slice(value.as_bytes());
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"\r\n");
    if bytes.len() > MAX_HEAD {
        // Written longer than it came (`: ` and CRLF where it had `:` and LF).
        return;
    }
    bytes.extend_from_slice(&request.body);
    let expected = ReadRequest {
        headers,
        content_length: Some(request.body.len()),
        expects_continue: request.expects_continue && !request.body.is_empty(),
        ..request.clone()
    };
    let mut source = Source::new(&bytes, false, None);
    let mut reader = Reader::new();
    match reader.next(&mut source, request.body.len()) {
        Outcome::Request(again) => assert_eq!(*again, expected, "read back differently"),
        other => panic!(
            "{other:?} reading back {:?}",
            String::from_utf8_lossy(&bytes)
        ),
    }
    assert_eq!(reader.next(&mut source, 0), Outcome::Closed);
    assert!(reader.take_leftover().is_empty());
}
