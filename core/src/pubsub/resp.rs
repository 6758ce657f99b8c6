//! Redis pub/sub, sans-IO: the RESP2 codec and a [`RedisLink`] state machine for one connection
//! that either subscribes to a channel or publishes to it (a subscribed RESP2 connection cannot
//! publish, so a manager keeps one of each, as python-socketio's `RedisManager` does).
//!
//! The driver connects a socket, writes what [`RedisLink::poll_transmit`] returns, feeds what it
//! reads to [`RedisLink::handle_input`], and acts on [`RedisLink::poll_event`]. A
//! [`LinkError`] means the connection is unusable: the driver drops it and reconnects with a
//! fresh link (the subscription is then made again).

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

pub use super::batch::{AfterFailure, Settled};
use super::kombu;
use super::url::{RedisConfig, RedisFraming};

/// The largest bulk string accepted from the server (Redis' own `proto-max-bulk-len` default).
pub const MAX_BULK: usize = 512 * 1024 * 1024;
/// The largest bulk string kept: a longer one (a message published on the channel by anyone
/// who can publish there) is dropped as its bytes arrive, never buffered, and reported by its
/// size ([`Reply::TooLarge`], [`LinkEvent::TooLarge`]). The same limit as RabbitMQ's
/// ([`amqp::MAX_MESSAGE`](super::amqp::MAX_MESSAGE)).
pub const MAX_RECEIVED: usize = 64 * 1024 * 1024;
/// The largest array accepted from the server; pub/sub replies have 3 or 4 elements.
const MAX_ARRAY: usize = 1024;
/// Nesting bound for arrays (pub/sub replies nest at most once).
const MAX_DEPTH: usize = 4;
/// The longest line (a reply's first line, or a bulk string's length) waited for.
const MAX_LINE: usize = 64 * 1024;
/// The most bytes one unfinished reply may hold in the decoder beside its one message of at most
/// [`MAX_RECEIVED`]: a pub/sub push is its kind, the channel and one message; only a server that
/// is not Redis sends more (an array of many large bulk strings).
const MAX_REPLY_BESIDES_MESSAGE: usize = 1024 * 1024;

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Bytes>),
    Array(Option<Vec<Reply>>),
    /// A bulk string longer than [`MAX_RECEIVED`], dropped: its length.
    TooLarge(usize),
}

/// Why the connection is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkError {
    /// The server sent something that is not RESP2, or exceeds the limits above.
    #[error("invalid reply from Redis: {0}")]
    Protocol(&'static str),
    /// The server refused a command needed to set the link up (authentication, database,
    /// subscription).
    #[error("Redis refused {command}: {message}")]
    Refused {
        command: &'static str,
        message: String,
    },
}

/// The error a server older than Redis 6 answers to `AUTH user password` (redis-py's
/// `AuthenticationWrongNumberOfArgsError`): `ERR wrong number of arguments for 'auth' command`.
fn is_auth_arity_error(message: &str) -> bool {
    message
        .to_ascii_lowercase()
        .contains("wrong number of arguments for 'auth' command")
}

/// Encodes one command as a RESP array of bulk strings.
pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// An incremental RESP2 decoder: feed bytes, take whole replies. It holds at most one reply's
/// bytes, without the bulk strings over [`MAX_RECEIVED`].
#[derive(Debug)]
pub struct Decoder {
    buffer: BytesMut,
    /// [`MAX_RECEIVED`], or a smaller limit ([`Decoder::with_max_received`]).
    max_received: usize,
    /// Where a bulk string over [`MAX_RECEIVED`] stood in `buffer` (its header and data taken
    /// out), and its length: it parses as [`Reply::TooLarge`] there, before its bytes arrive.
    dropped: Option<(usize, usize)>,
    /// Bytes of that bulk string (and its CRLF) still to come, thrown away as they arrive.
    discard: usize,
    /// A dropped bulk string did not end with CRLF: the stream is out of step.
    unterminated: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::with_max_received(MAX_RECEIVED)
    }
}

impl Decoder {
    /// A decoder that drops bulk strings longer than `max_received` bytes instead of
    /// [`MAX_RECEIVED`]'s: small limits let tests and fuzzers reach the end of a dropped one.
    pub fn with_max_received(max_received: usize) -> Self {
        Self {
            buffer: BytesMut::new(),
            max_received,
            dropped: None,
            discard: 0,
            unterminated: false,
        }
    }

    /// Adds bytes read from the server. Take the replies with [`next_reply`](Self::next_reply)
    /// after each push: a bulk string over [`MAX_RECEIVED`] is only found, and its bytes only
    /// thrown away rather than kept, from then on.
    pub fn push(&mut self, mut bytes: &[u8]) {
        if self.discard > 0 {
            let thrown = self.discard.min(bytes.len());
            self.unterminated |= !ends_well(&bytes[..thrown], self.discard);
            self.discard -= thrown;
            bytes = &bytes[thrown..];
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// Whether bytes of an unfinished reply are held or still to be thrown away.
    pub fn holds_partial_reply(&self) -> bool {
        !self.buffer.is_empty() || self.discard > 0
    }

    /// Bytes of a dropped bulk string (its data and CRLF) still to come, which will be thrown
    /// away as they arrive.
    pub fn bytes_to_discard(&self) -> usize {
        self.discard
    }

    /// The next complete reply, `Ok(None)` when more bytes are needed.
    pub fn next_reply(&mut self) -> Result<Option<Reply>, LinkError> {
        loop {
            if self.unterminated {
                return Err(LinkError::Protocol("bulk string not terminated"));
            }
            let mut parser = Parser {
                input: &self.buffer,
                max_received: self.max_received,
                dropped: self.dropped,
            };
            match parser.parse(0, 0)? {
                Step::Done(reply, used) => {
                    // The dropped bulk string lies inside the reply it was found in, which is
                    // the one parsed from the buffer's start until it completes.
                    debug_assert!(parser.dropped.is_none(), "a dropped bulk string left over");
                    self.dropped = None;
                    self.buffer.advance(used);
                    return Ok(Some(reply));
                }
                // What waits belongs to this unfinished reply.
                Step::Incomplete
                    if self.buffer.len()
                        > self.max_received.saturating_add(MAX_REPLY_BESIDES_MESSAGE) =>
                {
                    return Err(LinkError::Protocol("reply too long"));
                }
                Step::Incomplete => return Ok(None),
                Step::TooLarge { header, data, len } => {
                    if self.dropped.is_some() {
                        return Err(LinkError::Protocol(
                            "two bulk strings over the limit in one reply",
                        ));
                    }
                    // Take the bulk string's header and what came of its data (and CRLF) out
                    // of the buffer; the rest of it is thrown away as it arrives. Its CRLF is
                    // checked on the way, as any bulk string's is.
                    let whole = len.saturating_add(2);
                    let here = whole.min(self.buffer.len() - data);
                    self.unterminated |= !ends_well(&self.buffer[data..data + here], whole);
                    let after = self.buffer.split_off(data + here);
                    self.buffer.truncate(header);
                    self.buffer.unsplit(after);
                    self.discard = whole - here;
                    self.dropped = Some((header, len));
                }
            }
        }
    }
}

/// Whether `part`, the next bytes of a dropped bulk string of which `left` bytes (data and CRLF)
/// were still to come, has the CRLF where it falls in `part`.
fn ends_well(part: &[u8], left: usize) -> bool {
    part.iter()
        .enumerate()
        .skip(left.saturating_sub(2))
        .all(|(i, &byte)| {
            let from_end = left - i;
            byte == b"\r\n"[2 - from_end]
        })
}

/// What parsing from a position found.
enum Step {
    /// A whole reply, and the position after it.
    Done(Reply, usize),
    /// More bytes are needed.
    Incomplete,
    /// A bulk string over [`MAX_RECEIVED`]: where its header and its data start, its length.
    TooLarge {
        header: usize,
        data: usize,
        len: usize,
    },
}

/// One parse of a decoder's buffer from its start.
struct Parser<'a> {
    input: &'a [u8],
    max_received: usize,
    /// The decoder's dropped bulk string, until the parse reaches it.
    dropped: Option<(usize, usize)>,
}

impl Parser<'_> {
    /// Parses one reply at `at`.
    fn parse(&mut self, at: usize, depth: usize) -> Result<Step, LinkError> {
        if let Some((dropped_at, len)) = self.dropped
            && dropped_at == at
        {
            self.dropped = None;
            return Ok(Step::Done(Reply::TooLarge(len), at));
        }
        let input = self.input.get(at..).unwrap_or_default();
        let Some(line_end) = find_crlf(input) else {
            if input.len() > MAX_LINE {
                return Err(LinkError::Protocol("line too long"));
            }
            return Ok(Step::Incomplete);
        };
        let Some((&kind, line)) = input[..line_end].split_first() else {
            return Err(LinkError::Protocol("empty line"));
        };
        let after_line = at + line_end + 2;
        let text = || {
            std::str::from_utf8(line)
                .map(str::to_owned)
                .map_err(|_| LinkError::Protocol("line is not UTF-8"))
        };
        match kind {
            b'+' => Ok(Step::Done(Reply::Simple(text()?), after_line)),
            b'-' => Ok(Step::Done(Reply::Error(text()?), after_line)),
            b':' => Ok(Step::Done(Reply::Integer(integer(line)?), after_line)),
            b'$' => {
                let len = integer(line)?;
                if len < 0 {
                    return Ok(Step::Done(Reply::Bulk(None), after_line));
                }
                let len = usize::try_from(len).map_err(|_| LinkError::Protocol("bulk length"))?;
                if len > MAX_BULK {
                    return Err(LinkError::Protocol("bulk string too long"));
                }
                if len > self.max_received {
                    return Ok(Step::TooLarge {
                        header: at,
                        data: after_line,
                        len,
                    });
                }
                let end = after_line + len;
                let Some(data_and_end) = self.input.get(after_line..end + 2) else {
                    // A wrong first byte of the CRLF fails at once, as a dropped string's does.
                    if self.input.get(end).is_some_and(|&byte| byte != b'\r') {
                        return Err(LinkError::Protocol("bulk string not terminated"));
                    }
                    return Ok(Step::Incomplete);
                };
                let (data, terminator) = data_and_end.split_at(len);
                if terminator != b"\r\n" {
                    return Err(LinkError::Protocol("bulk string not terminated"));
                }
                Ok(Step::Done(
                    Reply::Bulk(Some(Bytes::copy_from_slice(data))),
                    end + 2,
                ))
            }
            b'*' => {
                let len = integer(line)?;
                if len < 0 {
                    return Ok(Step::Done(Reply::Array(None), after_line));
                }
                if depth >= MAX_DEPTH {
                    return Err(LinkError::Protocol("arrays nested too deep"));
                }
                let len = usize::try_from(len).map_err(|_| LinkError::Protocol("array length"))?;
                if len > MAX_ARRAY {
                    return Err(LinkError::Protocol("array too long"));
                }
                let mut items = Vec::with_capacity(len);
                let mut next = after_line;
                for _ in 0..len {
                    match self.parse(next, depth + 1)? {
                        Step::Done(item, end) => {
                            items.push(item);
                            next = end;
                        }
                        other => return Ok(other),
                    }
                }
                Ok(Step::Done(Reply::Array(Some(items)), next))
            }
            _ => Err(LinkError::Protocol("unknown reply type")),
        }
    }
}

fn find_crlf(input: &[u8]) -> Option<usize> {
    input.windows(2).position(|pair| pair == b"\r\n")
}

fn integer(line: &[u8]) -> Result<i64, LinkError> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or(LinkError::Protocol("not an integer"))
}

/// What a [`RedisLink`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkEvent {
    /// The link is set up: subscribed (subscriber) or authenticated (publisher).
    Ready,
    /// A message published on the channel (subscriber).
    Message(Bytes),
    /// A message over [`MAX_RECEIVED`] was published on the channel: dropped as it arrived
    /// (subscriber).
    TooLarge { size: usize },
    /// The publish with this sequence number reached `receivers` subscribers (publisher).
    Published { seq: u64, receivers: i64 },
    /// Redis answered the publish with this sequence number with an error (`-BUSY` while a script
    /// runs, `-NOPERM` after an ACL change): it was not published. The link stays usable; the
    /// publishes queued after it are answered on their own.
    PublishRefused { seq: u64, message: String },
}

/// What the link is waiting for, in order (RESP2 answers commands in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Auth,
    Select,
    SetName,
    Subscribe,
    Publish(u64),
}

/// What a publishing link needs to put messages in kombu's envelope.
#[derive(Debug)]
struct KombuPublishing {
    exchange: String,
    tag_prefix: String,
}

/// One Redis connection used for pub/sub, without I/O. Its `Debug` shows no password (nor the
/// bytes waiting to be written, which may hold the `AUTH` command).
pub struct RedisLink {
    decoder: Decoder,
    outbox: Vec<u8>,
    expect: VecDeque<Expect>,
    events: VecDeque<LinkEvent>,
    /// The pub/sub channel: the manager's channel, or kombu's topic for it.
    channel: Vec<u8>,
    /// Set when messages travel in kombu's envelope: the exchange (the manager's channel) and
    /// the prefix of the envelopes' delivery tags.
    kombu: Option<KombuPublishing>,
    subscriber: bool,
    ready: bool,
    next_seq: u64,
    /// Why the server refused the connection's name, if it did.
    name_refused: Option<String>,
    /// While a two-argument `AUTH user password` is unanswered: the password, to log in again
    /// with it alone on a server older than Redis 6 (which takes no user name), as redis-py does;
    /// and the commands after it, held back until then (the server would refuse them unlogged).
    auth_retry: Option<AuthRetry>,
}

/// See [`RedisLink::auth_retry`](RedisLink). Its `Debug` shows no password.
struct AuthRetry {
    /// `None` once the password alone was sent: a second refusal ends the link.
    password: Option<Vec<u8>>,
    held: Vec<u8>,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLink")
            .field("outbox_bytes", &self.outbox.len())
            .field("expect", &self.expect)
            .field("events", &self.events)
            .field("channel", &String::from_utf8_lossy(&self.channel))
            .field("kombu", &self.kombu)
            .field("subscriber", &self.subscriber)
            .field("ready", &self.ready)
            .field("next_seq", &self.next_seq)
            .field("name_refused", &self.name_refused)
            .field("auth_retry", &self.auth_retry)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for AuthRetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthRetry")
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("held_bytes", &self.held.len())
            .finish()
    }
}

impl RedisLink {
    /// A link that subscribes to `channel` and reports every message on it. `name` labels the
    /// connection in `CLIENT LIST` (no spaces), so operators can tell which server it serves.
    /// With [`RedisFraming::Kombu`] the link subscribes to kombu's topic for `channel`, and
    /// the messages it reports are still in kombu's envelope ([`Message::decode`] reads both).
    ///
    /// [`Message::decode`]: super::Message::decode
    pub fn subscriber(config: &RedisConfig, channel: &str, name: &str) -> Self {
        let mut link = Self::new(config, channel, name, true);
        let channel = link.channel.clone();
        encode_command(link.out(), &[b"SUBSCRIBE", &channel]);
        link.expect.push_back(Expect::Subscribe);
        link
    }

    /// A link that publishes to `channel`, labelled `name` in `CLIENT LIST`. With
    /// [`RedisFraming::Kombu`] it publishes each payload in kombu's envelope on kombu's topic
    /// for `channel`, tagged `<name>.<sequence number>`: give each link a name of its own (the
    /// runtimes number a host's publisher connections), as kombu's consumers keep unacknowledged
    /// messages by tag in a hash they all share.
    pub fn publisher(config: &RedisConfig, channel: &str, name: &str) -> Self {
        let mut link = Self::new(config, channel, name, false);
        if link.expect.is_empty() {
            link.ready = true;
            link.events.push_back(LinkEvent::Ready);
        }
        link
    }

    fn new(config: &RedisConfig, channel: &str, name: &str, subscriber: bool) -> Self {
        let mut link = RedisLink {
            decoder: Decoder::default(),
            outbox: Vec::new(),
            expect: VecDeque::new(),
            events: VecDeque::new(),
            channel: config.pubsub_channel(channel).into_bytes(),
            kombu: (config.framing == RedisFraming::Kombu).then(|| KombuPublishing {
                exchange: channel.to_owned(),
                tag_prefix: name.to_owned(),
            }),
            subscriber,
            ready: false,
            next_seq: 0,
            name_refused: None,
            auth_retry: None,
        };
        // As redis-py: a user without a password logs in with an empty one (`AUTH user ""`,
        // which a `nopass` user accepts), rather than staying the `default` user.
        match (&config.username, &config.password) {
            (Some(user), password) => {
                let password = password.as_deref().unwrap_or_default();
                encode_command(
                    &mut link.outbox,
                    &[b"AUTH", user.as_bytes(), password.as_bytes()],
                );
                link.expect.push_back(Expect::Auth);
                link.auth_retry = Some(AuthRetry {
                    password: Some(password.as_bytes().to_vec()),
                    held: Vec::new(),
                });
            }
            (None, Some(password)) => {
                encode_command(&mut link.outbox, &[b"AUTH", password.as_bytes()]);
                link.expect.push_back(Expect::Auth);
            }
            (None, None) => {}
        }
        if config.db != 0 {
            let db = config.db.to_string();
            encode_command(link.out(), &[b"SELECT", db.as_bytes()]);
            link.expect.push_back(Expect::Select);
        }
        let name: String = name
            .chars()
            .map(|c| if c.is_ascii_graphic() { c } else { '_' })
            .collect();
        if !name.is_empty() {
            encode_command(link.out(), &[b"CLIENT", b"SETNAME", name.as_bytes()]);
            link.expect.push_back(Expect::SetName);
        }
        link
    }

    /// Queues a publish of `payload`; its outcome is reported as [`LinkEvent::Published`] or
    /// [`LinkEvent::PublishRefused`] with the returned sequence number, or the link fails (and
    /// every unanswered publish with it).
    pub fn publish(&mut self, payload: &[u8]) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let channel = self.channel.clone();
        match &self.kombu {
            None => encode_command(self.out(), &[b"PUBLISH", &channel, payload]),
            Some(kombu) => {
                let tag = format!("{}.{seq}", kombu.tag_prefix);
                let envelope = kombu::wrap(payload, &kombu.exchange, &tag);
                encode_command(self.out(), &[b"PUBLISH", &channel, &envelope]);
            }
        }
        self.expect.push_back(Expect::Publish(seq));
        seq
    }

    /// Queues a `PING` on a subscribed link, to find out whether a quiet connection still works
    /// (its answer is consumed here; any input proves the connection alive).
    pub fn ping(&mut self) {
        encode_command(self.out(), &[b"PING"]);
    }

    /// The sequence numbers of publishes not answered yet (to fail them when the link dies).
    pub fn unanswered(&self) -> impl Iterator<Item = u64> + '_ {
        self.expect.iter().filter_map(|expect| match expect {
            Expect::Publish(seq) => Some(*seq),
            _ => None,
        })
    }

    /// The server's refusal of the connection's name (`CLIENT SETNAME`), which the link goes on
    /// without: for the driver to log, so an operator looking for it in `CLIENT LIST` knows.
    pub fn name_refused(&self) -> Option<&str> {
        self.name_refused.as_deref()
    }

    /// True once set up.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// Where a command goes: held back while a two-argument `AUTH` is unanswered, else out.
    fn out(&mut self) -> &mut Vec<u8> {
        match &mut self.auth_retry {
            Some(retry) => &mut retry.held,
            None => &mut self.outbox,
        }
    }

    /// Bytes to write to the socket, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.outbox.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.outbox))
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    /// Feeds bytes read from the socket.
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
        self.decoder.push(bytes);
        while let Some(reply) = self.decoder.next_reply()? {
            self.handle_reply(reply)?;
        }
        Ok(())
    }

    fn handle_reply(&mut self, reply: Reply) -> Result<(), LinkError> {
        if self.subscriber && self.ready {
            return self.handle_push(reply);
        }
        let Some(expect) = self.expect.pop_front() else {
            return Err(LinkError::Protocol("reply to no command"));
        };
        let command = match expect {
            Expect::Auth => "AUTH",
            Expect::Select => "SELECT",
            Expect::SetName => "CLIENT SETNAME",
            Expect::Subscribe => "SUBSCRIBE",
            Expect::Publish(_) => "PUBLISH",
        };
        match (expect, reply) {
            // A server older than Redis 6 takes `AUTH password` only: logged in again with the
            // password alone (redis-py's fallback), then the held commands go.
            (Expect::Auth, Reply::Error(message)) if is_auth_arity_error(&message) => {
                let password = self
                    .auth_retry
                    .as_mut()
                    .and_then(|retry| retry.password.take());
                let Some(password) = password else {
                    return Err(LinkError::Refused { command, message });
                };
                encode_command(&mut self.outbox, &[b"AUTH", &password]);
                self.expect.push_front(Expect::Auth);
                return Ok(());
            }
            (Expect::Auth, Reply::Simple(_)) => {
                // Logged in: what waited for it goes.
                if let Some(retry) = self.auth_retry.take() {
                    self.outbox.extend_from_slice(&retry.held);
                }
            }
            // The connection's name only shows in the operators' `CLIENT LIST`: a user whose
            // ACL does not grant `CLIENT`, or a server that renamed the command, still gets a
            // working link (python-socketio's redis-py sets no name at all).
            (Expect::SetName, Reply::Error(message)) => self.name_refused = Some(message),
            (Expect::Publish(seq), Reply::Error(message)) => {
                self.events
                    .push_back(LinkEvent::PublishRefused { seq, message });
            }
            (_, Reply::Error(message)) => return Err(LinkError::Refused { command, message }),
            (Expect::Select | Expect::SetName, Reply::Simple(_)) => {}
            (Expect::Subscribe, Reply::Array(Some(items))) => {
                if !matches!(items.first(), Some(Reply::Bulk(Some(kind))) if kind.as_ref() == b"subscribe")
                {
                    return Err(LinkError::Protocol("unexpected SUBSCRIBE reply"));
                }
            }
            (Expect::Publish(seq), Reply::Integer(receivers)) => {
                self.events
                    .push_back(LinkEvent::Published { seq, receivers });
            }
            _ => return Err(LinkError::Protocol("unexpected reply")),
        }
        if !self.ready && !self.expect.iter().any(|e| !matches!(e, Expect::Publish(_))) {
            self.ready = true;
            self.events.push_back(LinkEvent::Ready);
        }
        Ok(())
    }

    /// A subscribed connection receives `["message", channel, payload]` pushes.
    fn handle_push(&mut self, reply: Reply) -> Result<(), LinkError> {
        let items = match reply {
            Reply::Array(Some(items)) => items,
            // The only command sent on a subscribed connection is the keepalive PING: refused
            // (a user whose ACL grants `SUBSCRIBE` and `PUBLISH` but not `PING`, which is all
            // python-socketio's redis-py needs, or a renamed command), its answer still shows
            // the connection alive. Taken as a failure, it tore the subscription down after
            // every quiet interval, losing what was published while it was down.
            Reply::Error(_) => return Ok(()),
            _ => return Err(LinkError::Protocol("pub/sub push is not an array")),
        };
        match items.as_slice() {
            [
                Reply::Bulk(Some(kind)),
                Reply::Bulk(Some(_channel)),
                Reply::Bulk(Some(payload)),
            ] if kind.as_ref() == b"message" => {
                self.events.push_back(LinkEvent::Message(payload.clone()));
                Ok(())
            }
            [
                Reply::Bulk(Some(kind)),
                Reply::Bulk(Some(_channel)),
                Reply::TooLarge(size),
            ] if kind.as_ref() == b"message" => {
                self.events.push_back(LinkEvent::TooLarge { size: *size });
                Ok(())
            }
            // Replies to a later SUBSCRIBE or a PING on the subscribed connection.
            [Reply::Bulk(Some(kind)), ..]
                if kind.as_ref() == b"subscribe" || kind.as_ref() == b"pong" =>
            {
                Ok(())
            }
            _ => Err(LinkError::Protocol("unexpected pub/sub push")),
        }
    }
}

/// What an emit gets when Redis did not answer its publish in time (or stopped taking bytes).
pub const NOT_ANSWERED: &str =
    "Redis did not answer in time; the message may or may not reach the other servers";

/// One batch of publishes to Redis, across the connections it takes: after a lost connection
/// only what Redis neither answered nor refused is sent again on the next (a message answered is
/// never sent twice). How to drive it: [`super::batch::PublishBatch`].
pub type PublishBatch = super::batch::PublishBatch<RedisLink>;

impl PublishBatch {
    /// Queues on `link` (a fresh link for each attempt) every message of `payloads` (the batch,
    /// in order) neither answered nor refused yet.
    pub fn publish<P: AsRef<[u8]>>(&mut self, link: &mut RedisLink, payloads: &[P]) {
        debug_assert_eq!(
            payloads.len(),
            self.progress.len(),
            "one payload per message"
        );
        for index in self.progress.begin_attempt() {
            if let Some(payload) = payloads.get(index) {
                let seq = link.publish(payload.as_ref());
                self.progress.published_as(seq, index);
            }
        }
    }

    /// Records `link`'s answers to this batch's publishes.
    pub fn handle_events(&mut self, link: &mut RedisLink) {
        while let Some(event) = link.poll_event() {
            match event {
                LinkEvent::Published { seq, .. } => self.progress.settle(seq, None),
                LinkEvent::PublishRefused { seq, message } => self
                    .progress
                    .settle(seq, Some(format!("Redis refused the message: {message}"))),
                LinkEvent::Ready | LinkEvent::Message(_) | LinkEvent::TooLarge { .. } => {}
            }
        }
    }

    /// An attempt on `link` failed with `error` (`timed_out`: Redis took nothing, or answered
    /// nothing, for the whole wait): records the answers `link` read before the failure, then
    /// says whether to try the rest on a new connection. After a timeout it is not published
    /// again: Redis may have taken it, and a second publish could deliver it twice. After a lost
    /// connection it is (python-socketio's second attempt: the first may find a connection the
    /// broker dropped since the last publish).
    /// The decision is kept too: [`next_attempt`](super::batch::PublishBatch::next_attempt)
    /// and [`split`](super::batch::PublishBatch::split) follow it.
    pub fn after_failure(
        &mut self,
        link: &mut RedisLink,
        error: String,
        timed_out: bool,
    ) -> AfterFailure {
        self.handle_events(link);
        self.progress.after_failure(error, timed_out, NOT_ANSWERED)
    }
}

/// A publisher connection unused this long is replaced before it publishes again: one that died
/// without a word (an idle connection dropped by a NAT or a load balancer) would otherwise take
/// the next publish, which would time out and, as Redis may have taken it, not be sent again.
pub const PUBLISHER_IDLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// How long connecting to Redis and setting a link up (`AUTH`, `SELECT`, `CLIENT SETNAME`,
/// `SUBSCRIBE`) may take: an unreachable or stuck Redis fails the attempt (an emit's publish, or
/// a subscription that then retries on [`Reconnect`](super::Reconnect)'s schedule) instead of
/// waiting for the operating system's TCP timeout.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long Redis may take to answer a batch of publishes: past it the emits waiting on them are
/// told [`NOT_ANSWERED`] rather than hanging on a connection that may be dead.
pub const PUBLISH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The name (`CLIENT SETNAME`, see [`RedisLink::publisher`]) of the `opened`-th publisher
/// connection (counted from 0) of the host `host_id`: operators find a server's connections in
/// `CLIENT LIST` by its host id, and each publisher connection has a name of its own because
/// kombu's delivery tags are made from it.
pub fn publisher_name(host_id: &str, opened: u64) -> String {
    format!("sockio:{host_id}:pub:{opened}")
}

/// The name (`CLIENT SETNAME`, see [`RedisLink::subscriber`]) of the host `host_id`'s subscriber
/// connection, for `CLIENT LIST`. The same on every reconnection: a host has one subscriber.
pub fn subscriber_name(host_id: &str) -> String {
    format!("sockio:{host_id}:sub")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(password: Option<&str>, db: u32) -> RedisConfig {
        RedisConfig {
            address: super::super::url::RedisAddress::Tcp {
                host: "127.0.0.1".into(),
                port: 6379,
            },
            db,
            username: None,
            password: password.map(str::to_owned),
            tls: None,
            framing: Default::default(),
        }
    }

    #[test]
    fn encodes_commands() {
        let mut out = Vec::new();
        encode_command(&mut out, &[b"PUBLISH", b"socketio", b"{}"]);
        assert_eq!(
            out,
            b"*3\r\n$7\r\nPUBLISH\r\n$8\r\nsocketio\r\n$2\r\n{}\r\n"
        );
    }

    #[test]
    fn decodes_replies_split_anywhere() {
        let wire: &[u8] =
            b"+OK\r\n:3\r\n$-1\r\n*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$5\r\nhe\r\nl\r\n-ERR no\r\n";
        for split in 0..wire.len() {
            let mut decoder = Decoder::default();
            let mut replies = Vec::new();
            for part in [&wire[..split], &wire[split..]] {
                decoder.push(part);
                while let Some(reply) = decoder.next_reply().unwrap() {
                    replies.push(reply);
                }
            }
            assert_eq!(
                replies,
                vec![
                    Reply::Simple("OK".into()),
                    Reply::Integer(3),
                    Reply::Bulk(None),
                    Reply::Array(Some(vec![
                        Reply::Bulk(Some(Bytes::from_static(b"message"))),
                        Reply::Bulk(Some(Bytes::from_static(b"c"))),
                        Reply::Bulk(Some(Bytes::from_static(b"he\r\nl"))),
                    ])),
                    Reply::Error("ERR no".into()),
                ],
                "split at {split}"
            );
        }
    }

    #[test]
    fn rejects_garbage_and_oversized_input() {
        let mut decoder = Decoder::default();
        decoder.push(b"?what\r\n");
        assert!(decoder.next_reply().is_err());
        let mut decoder = Decoder::default();
        decoder.push(b"*99999999\r\n");
        assert!(decoder.next_reply().is_err());
        let mut decoder = Decoder::default();
        decoder.push(b"$9999999999999\r\n");
        assert!(decoder.next_reply().is_err());
        let mut decoder = Decoder::default();
        decoder.push(b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n");
        assert!(decoder.next_reply().is_err());
    }

    /// Feeds `decoder` a bulk string of `len` bytes of `x` (without its header) in 1 MiB pieces,
    /// checking it never holds more than `held` bytes meanwhile.
    fn feed_bulk_data(decoder: &mut Decoder, len: usize, held: usize) {
        let piece = vec![b'x'; 1024 * 1024];
        let mut left = len;
        while left > 0 {
            let n = left.min(piece.len());
            decoder.push(&piece[..n]);
            left -= n;
            assert!(
                decoder.buffer.len() <= held,
                "held {}",
                decoder.buffer.len()
            );
        }
    }

    #[test]
    fn a_bulk_string_over_the_limit_is_dropped_as_it_arrives() {
        let len = MAX_RECEIVED + 1;
        let mut decoder = Decoder::default();
        decoder.push(format!("*3\r\n$1\r\na\r\n${len}\r\n").as_bytes());
        assert_eq!(decoder.next_reply(), Ok(None));
        feed_bulk_data(&mut decoder, len, 64);
        assert_eq!(decoder.next_reply(), Ok(None));
        // Its CRLF, the item after it and the next reply, split between pushes.
        decoder.push(b"\r");
        decoder.push(b"\n:7\r");
        assert_eq!(decoder.next_reply(), Ok(None));
        decoder.push(b"\n+OK\r\n");
        assert_eq!(
            decoder.next_reply(),
            Ok(Some(Reply::Array(Some(vec![
                Reply::Bulk(Some(Bytes::from_static(b"a"))),
                Reply::TooLarge(len),
                Reply::Integer(7),
            ]))))
        );
        assert_eq!(decoder.next_reply(), Ok(Some(Reply::Simple("OK".into()))));
        assert_eq!(decoder.next_reply(), Ok(None));
        assert!(decoder.buffer.is_empty());

        // Arriving whole, with what follows it in the same read.
        let mut whole = format!("${len}\r\n").into_bytes();
        whole.resize(whole.len() + len, b'x');
        whole.extend_from_slice(b"\r\n:1\r\n");
        let mut decoder = Decoder::default();
        decoder.push(&whole);
        assert_eq!(decoder.next_reply(), Ok(Some(Reply::TooLarge(len))));
        assert_eq!(decoder.next_reply(), Ok(Some(Reply::Integer(1))));
        assert!(decoder.buffer.is_empty());

        // One at the limit is kept.
        let mut at_limit = format!("${MAX_RECEIVED}\r\n").into_bytes();
        at_limit.resize(at_limit.len() + MAX_RECEIVED, b'y');
        at_limit.extend_from_slice(b"\r\n");
        let mut decoder = Decoder::default();
        decoder.push(&at_limit);
        assert!(matches!(
            decoder.next_reply(),
            Ok(Some(Reply::Bulk(Some(data)))) if data.len() == MAX_RECEIVED
        ));
    }

    #[test]
    fn a_bulk_string_whose_crlf_starts_wrong_fails_before_its_second_byte() {
        let mut decoder = Decoder::default();
        decoder.push(b"$4\r\nabcd");
        assert_eq!(decoder.next_reply(), Ok(None));
        decoder.push(b"\r");
        assert_eq!(decoder.next_reply(), Ok(None));
        let mut decoder = Decoder::default();
        decoder.push(b"$4\r\nabcd\n");
        assert_eq!(
            decoder.next_reply(),
            Err(LinkError::Protocol("bulk string not terminated"))
        );
    }

    #[test]
    fn a_bulk_string_over_the_limit_without_its_crlf_fails() {
        let len = MAX_RECEIVED + 1;
        for terminator in [&b"xx"[..], b"\rx", b"\n\r"] {
            // Its CRLF arriving after its data, a byte at a time.
            let mut decoder = Decoder::default();
            decoder.push(format!("*2\r\n${len}\r\n").as_bytes());
            assert_eq!(decoder.next_reply(), Ok(None));
            feed_bulk_data(&mut decoder, len, 64);
            decoder.push(&terminator[..1]);
            decoder.push(&terminator[1..]);
            decoder.push(b":1\r\n");
            assert_eq!(
                decoder.next_reply(),
                Err(LinkError::Protocol("bulk string not terminated")),
                "{terminator:?}"
            );
            // Arriving whole: the link fails before the reply is given.
            let mut whole = format!("${len}\r\n").into_bytes();
            whole.resize(whole.len() + len, b'x');
            whole.extend_from_slice(terminator);
            whole.extend_from_slice(b":1\r\n");
            let mut decoder = Decoder::default();
            decoder.push(&whole);
            assert_eq!(
                decoder.next_reply(),
                Err(LinkError::Protocol("bulk string not terminated")),
                "{terminator:?}"
            );
        }
    }

    #[test]
    fn a_reply_holding_more_than_one_message_fails() {
        let mut decoder = Decoder::default();
        let len = MAX_RECEIVED / 4 * 3;
        let mut reply = format!("*3\r\n${len}\r\n").into_bytes();
        reply.resize(reply.len() + len, b'x');
        reply.extend_from_slice(format!("\r\n${len}\r\n").as_bytes());
        reply.resize(reply.len() + len, b'y');
        reply.extend_from_slice(b"\r\n$5\r\n");
        let max_reply = MAX_RECEIVED + MAX_REPLY_BESIDES_MESSAGE;
        decoder.push(&reply[..max_reply]);
        assert_eq!(decoder.next_reply(), Ok(None));
        decoder.push(&reply[max_reply..]);
        assert_eq!(
            decoder.next_reply(),
            Err(LinkError::Protocol("reply too long"))
        );
    }

    #[test]
    fn one_reply_with_two_bulk_strings_over_the_limit_fails() {
        let len = MAX_RECEIVED + 1;
        let mut decoder = Decoder::default();
        decoder.push(format!("*2\r\n${len}\r\n").as_bytes());
        assert_eq!(decoder.next_reply(), Ok(None));
        feed_bulk_data(&mut decoder, len, 64);
        decoder.push(format!("\r\n${len}\r\n").as_bytes());
        assert!(decoder.next_reply().is_err());
    }

    #[test]
    fn a_message_over_the_limit_is_reported_and_the_next_one_delivered() {
        let mut link = subscribed();
        let size = MAX_RECEIVED + 10;
        link.handle_input(
            format!("*3\r\n$7\r\nmessage\r\n$8\r\nsocketio\r\n${size}\r\n").as_bytes(),
        )
        .unwrap();
        // Reported once its size is known, before its bytes arrive.
        assert_eq!(link.poll_event(), Some(LinkEvent::TooLarge { size }));
        feed_bulk_data(&mut link.decoder, size, 0);
        link.handle_input(b"\r\n*3\r\n$7\r\nmessage\r\n$8\r\nsocketio\r\n$2\r\n{}\r\n")
            .unwrap();
        assert_eq!(
            link.poll_event(),
            Some(LinkEvent::Message(Bytes::from_static(b"{}")))
        );
        assert_eq!(link.poll_event(), None);
    }

    #[test]
    fn subscriber_authenticates_selects_subscribes_then_reports_messages() {
        let mut link = RedisLink::subscriber(&config(Some("pw"), 2), "socketio", "s 1");
        assert_eq!(
            link.poll_transmit().unwrap(),
            b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$3\r\ns_1\r\n*2\r\n$9\r\nSUBSCRIBE\r\n$8\r\nsocketio\r\n"
        );
        link.handle_input(b"+OK\r\n+OK\r\n+OK\r\n").unwrap();
        assert!(!link.is_ready());
        link.handle_input(b"*3\r\n$9\r\nsubscribe\r\n$8\r\nsocketio\r\n:1\r\n")
            .unwrap();
        assert_eq!(link.poll_event(), Some(LinkEvent::Ready));
        link.handle_input(b"*3\r\n$7\r\nmessage\r\n$8\r\nsocketio\r\n$2\r\n{}\r\n")
            .unwrap();
        assert_eq!(
            link.poll_event(),
            Some(LinkEvent::Message(Bytes::from_static(b"{}")))
        );
    }

    /// The URL's credentials log in as redis-py logs in with them: a user alone with an empty
    /// password (a `nopass` ACL user), a password alone as the `default` user, neither with no
    /// `AUTH` at all.
    #[test]
    fn the_urls_credentials_log_in_as_redis_py_does() {
        let first_command = |url: &str| {
            let super::super::url::BrokerUrl::Redis(config) =
                super::super::url::BrokerUrl::parse(url).expect("url")
            else {
                panic!("{url} is not a Redis URL");
            };
            let mut link = RedisLink::publisher(&config, "socketio", "");
            link.poll_transmit().unwrap_or_default()
        };
        let auth_alice_empty = b"*3\r\n$4\r\nAUTH\r\n$5\r\nalice\r\n$0\r\n\r\n";
        assert!(first_command("redis://alice@h").starts_with(auth_alice_empty));
        assert!(first_command("redis://alice:@h").starts_with(auth_alice_empty));
        assert!(
            first_command("redis://alice:pw@h")
                .starts_with(b"*3\r\n$4\r\nAUTH\r\n$5\r\nalice\r\n$2\r\npw\r\n")
        );
        assert!(first_command("redis://:pw@h").starts_with(b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n"));
        assert!(first_command("redis://:@h").is_empty());
        assert!(first_command("redis://h").is_empty());
    }

    /// A subscriber link whose subscription is confirmed (`Ready` taken).
    fn subscribed() -> RedisLink {
        let mut link = RedisLink::subscriber(&config(None, 0), "socketio", "s");
        let _ = link.poll_transmit();
        link.handle_input(b"+OK\r\n*3\r\n$9\r\nsubscribe\r\n$8\r\nsocketio\r\n:1\r\n")
            .unwrap();
        assert_eq!(link.poll_event(), Some(LinkEvent::Ready));
        link
    }

    /// A quiet subscriber's `PING` (the runtimes send one after 15 s of silence) goes out as a
    /// command, and its answer on the subscribed connection (`["pong", ""]`), like a later
    /// subscription's confirmation, is taken without an event: messages go on arriving after it.
    #[test]
    fn a_subscribers_ping_and_its_pong_leave_the_messages_flowing() {
        let mut link = subscribed();
        link.ping();
        assert_eq!(link.poll_transmit().unwrap(), b"*1\r\n$4\r\nPING\r\n");
        link.handle_input(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
            .unwrap();
        link.handle_input(b"*3\r\n$9\r\nsubscribe\r\n$8\r\nsocketio\r\n:1\r\n")
            .unwrap();
        assert_eq!(link.poll_event(), None);
        link.handle_input(b"*3\r\n$7\r\nmessage\r\n$8\r\nsocketio\r\n$2\r\n{}\r\n")
            .unwrap();
        assert_eq!(
            link.poll_event(),
            Some(LinkEvent::Message(Bytes::from_static(b"{}")))
        );
        // Anything else pushed on the subscribed connection is a protocol error.
        assert!(
            link.handle_input(b"*2\r\n$5\r\nweird\r\n$0\r\n\r\n")
                .is_err()
        );
    }

    /// A refused keepalive `PING` (an ACL user without `+ping`, enough for python-socketio's
    /// redis-py, which never pings a subscription; or a renamed command) still shows the
    /// connection alive: the messages go on. It was a protocol error, and the subscription was
    /// torn down and made again after every quiet interval.
    #[test]
    fn a_refused_ping_on_the_subscribed_connection_leaves_the_messages_flowing() {
        let mut link = subscribed();
        link.ping();
        let _ = link.poll_transmit();
        link.handle_input(b"-NOPERM User u has no permissions to run the 'ping' command\r\n")
            .expect("a refused ping is no failure");
        link.handle_input(b"*3\r\n$7\r\nmessage\r\n$8\r\nsocketio\r\n$2\r\n{}\r\n")
            .unwrap();
        assert_eq!(
            link.poll_event(),
            Some(LinkEvent::Message(Bytes::from_static(b"{}")))
        );
    }

    /// A user whose ACL lacks `CLIENT` (or a server that renamed it) refuses the name, and the
    /// link works without it, as python-socketio's does.
    #[test]
    fn a_refused_connection_name_does_not_fail_the_link() {
        let mut link = RedisLink::subscriber(&config(Some("pw"), 0), "socketio", "s");
        let _ = link.poll_transmit();
        link.handle_input(
            b"+OK\r\n-NOPERM User u has no permissions to run the 'client|setname' command\r\n",
        )
        .unwrap();
        link.handle_input(b"*3\r\n$9\r\nsubscribe\r\n$8\r\nsocketio\r\n:1\r\n")
            .unwrap();
        assert_eq!(link.poll_event(), Some(LinkEvent::Ready));
        assert!(
            link.name_refused()
                .is_some_and(|reason| reason.starts_with("NOPERM"))
        );

        let mut link = RedisLink::publisher(&config(None, 0), "c", "p");
        let _ = link.poll_transmit();
        let seq = link.publish(b"a");
        link.handle_input(b"-ERR unknown command 'CLIENT'\r\n:1\r\n")
            .unwrap();
        let events: Vec<_> = std::iter::from_fn(|| link.poll_event()).collect();
        assert!(events.contains(&LinkEvent::Ready), "{events:?}");
        assert!(
            events.contains(&LinkEvent::Published { seq, receivers: 1 }),
            "{events:?}"
        );
    }

    /// With kombu's framing the links use kombu's topic for the channel (the database number in
    /// it), and a publish goes out in kombu's envelope, tagged by the link's name.
    #[test]
    fn kombu_framing_uses_kombus_topic_and_envelope() {
        let kombu = |db| RedisConfig {
            framing: RedisFraming::Kombu,
            ..config(None, db)
        };
        let mut link = RedisLink::subscriber(&kombu(2), "socketio", "s");
        let wire = link.poll_transmit().unwrap();
        let wire = String::from_utf8(wire).unwrap();
        assert!(
            wire.ends_with("*2\r\n$9\r\nSUBSCRIBE\r\n$11\r\n/2.socketio\r\n"),
            "{wire:?}"
        );

        let mut link = RedisLink::publisher(&kombu(0), "chat", "host-a");
        let _ = link.poll_transmit();
        let seq = link.publish(br#"{"method":"close_room"}"#);
        let mut expected = Vec::new();
        encode_command(
            &mut expected,
            &[
                b"PUBLISH",
                b"/0.chat",
                &kombu::wrap(
                    br#"{"method":"close_room"}"#,
                    "chat",
                    &format!("host-a.{seq}"),
                ),
            ],
        );
        assert_eq!(link.poll_transmit().unwrap(), expected);
    }

    /// A server older than Redis 6 refuses `AUTH user password` for its arity: the link logs in
    /// again with the password alone, as redis-py does, and only then sends the commands it held
    /// back (unlogged, the server would refuse them); a second refusal ends the link.
    #[test]
    fn a_server_without_users_is_logged_in_with_the_password_alone() {
        let url = |url: &str| {
            let super::super::url::BrokerUrl::Redis(config) =
                super::super::url::BrokerUrl::parse(url).expect("url")
            else {
                panic!("{url} is not a Redis URL");
            };
            config
        };
        let arity = b"-ERR wrong number of arguments for 'auth' command\r\n";
        let mut link = RedisLink::subscriber(&url("redis://default:s3cret@h/2"), "socketio", "s");
        // Its Debug shows neither the password nor the AUTH command waiting to go.
        let shown = format!("{link:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("115, 51"),
            "{shown}"
        );
        let _ = link.poll_transmit();
        let mut link = RedisLink::subscriber(&url("redis://default:pw@h/2"), "socketio", "s");
        assert_eq!(
            link.poll_transmit().unwrap(),
            b"*3\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n$2\r\npw\r\n"
        );
        link.handle_input(arity).unwrap();
        assert_eq!(
            link.poll_transmit().unwrap(),
            b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n"
        );
        assert!(!link.is_ready());
        link.handle_input(b"+OK\r\n").unwrap();
        let held = link.poll_transmit().unwrap();
        assert!(
            held.starts_with(b"*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n*3\r\n$6\r\nCLIENT\r\n"),
            "{}",
            String::from_utf8_lossy(&held)
        );
        assert!(held.ends_with(b"*2\r\n$9\r\nSUBSCRIBE\r\n$8\r\nsocketio\r\n"));
        link.handle_input(b"+OK\r\n+OK\r\n*3\r\n$9\r\nsubscribe\r\n$8\r\nsocketio\r\n:1\r\n")
            .unwrap();
        assert_eq!(link.poll_event(), Some(LinkEvent::Ready));
        // A publisher's publishes wait for the login too.
        let mut link = RedisLink::publisher(&url("redis://default:pw@h"), "socketio", "");
        let _ = link.poll_transmit();
        let seq = link.publish(b"early");
        assert_eq!(link.poll_transmit(), None, "held until logged in");
        link.handle_input(arity).unwrap();
        let _ = link.poll_transmit();
        link.handle_input(b"+OK\r\n").unwrap();
        assert!(link.poll_transmit().unwrap().ends_with(b"$5\r\nearly\r\n"));
        link.handle_input(b":1\r\n").unwrap();
        assert_eq!(link.poll_event(), Some(LinkEvent::Ready));
        assert_eq!(
            link.poll_event(),
            Some(LinkEvent::Published { seq, receivers: 1 })
        );
        // A password the old server refuses too ends the link.
        let mut link = RedisLink::publisher(&url("redis://default:bad@h"), "socketio", "");
        let _ = link.poll_transmit();
        link.handle_input(arity).unwrap();
        assert_eq!(
            link.handle_input(arity),
            Err(LinkError::Refused {
                command: "AUTH",
                message: "ERR wrong number of arguments for 'auth' command".into()
            })
        );
        // Without a user there is nothing to fall back to.
        let mut link = RedisLink::publisher(&url("redis://:pw@h"), "socketio", "");
        let _ = link.poll_transmit();
        assert!(link.handle_input(arity).is_err());
    }

    #[test]
    fn refused_authentication_fails_the_link() {
        let mut link = RedisLink::subscriber(&config(Some("bad"), 0), "socketio", "");
        let _ = link.poll_transmit();
        assert_eq!(
            link.handle_input(b"-WRONGPASS invalid password\r\n"),
            Err(LinkError::Refused {
                command: "AUTH",
                message: "WRONGPASS invalid password".into()
            })
        );
    }

    #[test]
    fn publisher_reports_each_publish_in_order() {
        let mut link = RedisLink::publisher(&config(None, 0), "c", "");
        assert_eq!(link.poll_event(), Some(LinkEvent::Ready));
        let first = link.publish(b"a");
        let second = link.publish(b"b");
        assert_eq!(link.unanswered().collect::<Vec<_>>(), vec![first, second]);
        assert_eq!(
            link.poll_transmit().unwrap(),
            b"*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$1\r\na\r\n*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$1\r\nb\r\n"
        );
        link.handle_input(b":2\r\n:0\r\n").unwrap();
        assert_eq!(
            link.poll_event(),
            Some(LinkEvent::Published {
                seq: first,
                receivers: 2
            })
        );
        assert_eq!(
            link.poll_event(),
            Some(LinkEvent::Published {
                seq: second,
                receivers: 0
            })
        );
        assert_eq!(link.unanswered().count(), 0);
    }

    fn written(link: &mut RedisLink) -> String {
        String::from_utf8_lossy(&link.poll_transmit().expect("commands")).into_owned()
    }

    #[test]
    fn a_batch_sends_only_what_was_not_answered_again() {
        let config = config(None, 0);
        let payloads = [b"a".as_slice(), b"b", b"c"];
        let mut batch = PublishBatch::new(payloads.len());
        let mut first = RedisLink::publisher(&config, "ch", "pub");
        batch.publish(&mut first, &payloads);
        let text = written(&mut first);
        assert_eq!(text.matches("PUBLISH").count(), 3, "{text}");
        // Set-up answers, then the first publish's; the connection is lost before the others.
        first.handle_input(b"+OK\r\n:1\r\n").expect("replies");
        batch.handle_events(&mut first);
        assert!(!batch.is_settled());
        let mut second = RedisLink::publisher(&config, "ch", "pub");
        batch.publish(&mut second, &payloads);
        let text = written(&mut second);
        assert!(
            !text.contains("\r\na\r\n"),
            "the answered message again: {text}"
        );
        assert!(
            text.contains("\r\nb\r\n") && text.contains("\r\nc\r\n"),
            "{text}"
        );
        second
            .handle_input(b"+OK\r\n:1\r\n:2\r\n")
            .expect("replies");
        batch.handle_events(&mut second);
        assert!(batch.is_settled());
        assert_eq!(batch.split(vec!["a", "b", "c"]).sent, vec!["a", "b", "c"]);
    }

    /// Redis runs each pipelined command on its own: an error reply to one publish fails that
    /// message only, the link goes on, and the publishes after it are answered as usual.
    #[test]
    fn a_refused_publish_fails_alone_and_the_link_goes_on() {
        let config = config(None, 0);
        let payloads = [b"a".as_slice(), b"b", b"c"];
        let mut batch = PublishBatch::new(payloads.len());
        let mut link = RedisLink::publisher(&config, "ch", "pub");
        batch.publish(&mut link, &payloads);
        let _ = link.poll_transmit();
        link.handle_input(b"+OK\r\n:1\r\n-BUSY Redis is busy running a script\r\n")
            .expect("an error reply to a publish does not fail the link");
        batch.handle_events(&mut link);
        assert!(!batch.is_settled());

        // Lost now, the retry would publish the unanswered one only.
        let mut retry = batch.clone();
        assert!(matches!(
            retry.after_failure(
                &mut RedisLink::publisher(&config, "ch", "pub"),
                "reset".into(),
                false
            ),
            AfterFailure::Retry(_)
        ));
        let mut second = RedisLink::publisher(&config, "ch", "pub");
        retry.publish(&mut second, &payloads);
        let text = written(&mut second);
        assert_eq!(text.matches("PUBLISH").count(), 1, "{text}");
        assert!(text.contains("\r\nc\r\n"), "{text}");

        link.handle_input(b":4\r\n").expect("reply");
        batch.handle_events(&mut link);
        assert!(batch.is_settled());
        let settled = batch.split(vec!["a", "b", "c"]);
        assert_eq!(settled.sent, vec!["a", "c"]);
        assert_eq!(
            settled.refused,
            vec![(
                "b",
                crate::api::PublishError(
                    "Redis refused the message: BUSY Redis is busy running a script".into()
                )
            )]
        );
    }

    /// Answers read in the same input as what failed the link count: a retry does not publish
    /// them twice.
    #[test]
    fn answers_read_before_a_failure_count_for_the_retry() {
        let config = config(None, 0);
        let payloads = [b"a".as_slice(), b"b"];
        let mut batch = PublishBatch::new(payloads.len());
        let mut first = RedisLink::publisher(&config, "ch", "pub");
        batch.publish(&mut first, &payloads);
        let _ = first.poll_transmit();
        let error = first
            .handle_input(b"+OK\r\n:1\r\n?what\r\n")
            .expect_err("not RESP2");
        assert!(matches!(
            batch.after_failure(&mut first, error.to_string(), false),
            AfterFailure::Retry(_)
        ));
        let mut second = RedisLink::publisher(&config, "ch", "pub");
        batch.publish(&mut second, &payloads);
        let text = written(&mut second);
        assert!(!text.contains("\r\na\r\n"), "{text}");
        assert!(text.contains("\r\nb\r\n"), "{text}");
    }

    #[test]
    fn a_timed_out_batch_is_not_sent_again_and_answered_jobs_succeed() {
        let config = config(None, 0);
        let mut batch = PublishBatch::new(3);
        let mut link = RedisLink::publisher(&config, "ch", "pub");
        batch.publish(&mut link, &[b"a".as_slice(), b"b", b"c"]);
        link.handle_input(b"+OK\r\n:1\r\n").expect("replies");
        batch.handle_events(&mut link);
        assert!(matches!(
            batch.after_failure(&mut link, "reset".into(), false),
            AfterFailure::Retry(error) if error.0 == "reset"
        ));
        assert!(matches!(
            batch.after_failure(&mut link, "timed out".into(), true),
            AfterFailure::GiveUp(error) if error.0 == NOT_ANSWERED
        ));
        let settled = batch.split(vec!["a", "b", "c"]);
        assert_eq!(
            (settled.sent, settled.unsettled),
            (vec!["a"], vec!["b", "c"])
        );
    }

    #[test]
    fn connection_names_carry_the_host_id() {
        assert_eq!(publisher_name("abc", 0), "sockio:abc:pub:0");
        assert_eq!(publisher_name("abc", 7), "sockio:abc:pub:7");
        assert_eq!(subscriber_name("abc"), "sockio:abc:sub");
    }
}
