//! A differential wire test: the same raw long-polling requests and WebSocket frames go to the
//! official Node.js server running the shared test profile (`testkit/clients/node/
//! reference-server.js`, socket.io 4.8.4 / engine.io 6.6.13) and to `sockio-conformance serve
//! --profile socket-io` on each runtime, and what each answered is compared after normalisation:
//! HTTP status, main content type and body (session ids replaced by `<sid>`, JSON compared field
//! by field), WebSocket frames (text or binary) and how the connection ended (close frame and its
//! code, or a TCP close). The other headers are ignored. A handful of cases use the raw
//! Engine.IO servers instead (sockio's `engine-io` profile against a bare `engine.io` server with
//! the same settings), the only profile of either side where Engine.IO 3 is off; the heartbeat
//! cases use a second pair of them with a short ping timeout ([`HEARTBEAT_TIMEOUT`]), and the
//! Engine.IO 3 heartbeat and upgrade timeout cases a second pair of socket-io servers with short
//! ping and upgrade timeouts ([`TIMEOUTS_PING_TIMEOUT`], [`UPGRADE_TIMEOUT`]).
//!
//! Every case starts a fresh session where it needs one and ends on something it waits for (an
//! answer, a close, or a sentinel: an acknowledged event or a CONNECT to `/custom` sent after the
//! case's packets, whose answer proves the server has dealt with them and stayed up), never on a
//! sleep; waits are bounded by [`ANSWER_WITHIN`]. Packets that have an answer of their own (a
//! CONNECT) get it before the sentinel goes: the reference connects a namespace a tick after the
//! CONNECT, and sockio's connect handler runs on a task, so a sentinel sent at once could race
//! it. The one thing that cannot be waited for, that a held GET has reached the server before the
//! next request races it, is checked instead: the GET must stay unanswered for [`HOLD_WINDOW`]
//! after the first ping (the only one: no case that holds a GET answers pings, and a v4 server
//! pings again only after a pong) has been taken out of the way.
//!
//! Besides the session ids, two things are normalised away: a noop (`6`) sharing a poll with
//! other packets, which the reference sends before a close packet that waited for a GET (see
//! [`Polling::collect`]), and the ack ids of the server's emits in the cases that answer them
//! ([`hide_ack_id`]: the reference counts them per namespace, sockio per socket). The three runtimes are tested separately, each against its own
//! reference server, all at once.
//!
//! A case either must match the reference (`Expect::Same`), or, when the difference is deliberate
//! and written down (README "Where sockio differs", PROTOCOL.md, or the limits table of
//! SECURITY.md that the README points to), lists both answers (`Expect::Differs`) or how sockio's
//! few differing lines read at the reference (`Expect::Rewritten`), so that the test fails if
//! either side changes. Run with `--nocapture` to see every transcript
//! (`SOCKIO_DIFF_VERBOSE=1`) or only the failures.

#[path = "support/served.rs"]
mod served;

mod hostile {
    // This test uses the suite's raw HTTP and WebSocket plumbing only.
    #[allow(dead_code)]
    pub mod net;
}

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use hostile::net::{Http, Resp, Ws, is_wait, raw_frame};
use serde_json::Value;
use served::Served;
use sockio_testkit::{
    ReferenceServer, clients_dir, ensure_clients, start_reference_server_with,
    start_reference_server_with_timeouts,
};
use tungstenite::Message;
use tungstenite::protocol::{Role, WebSocketConfig};

/// The ping timeout given to every server but the heartbeat cases' (the profile's is 200 ms).
/// Nothing outside those cases answers a ping, so a session lives ping interval (300 ms) + this:
/// every case ends well within it, even one that waits [`ANSWER_WITHIN`] several times.
const PING_TIMEOUT: Duration = Duration::from_secs(30);

/// The ping timeout of the raw Engine.IO servers the heartbeat cases use: a session that does not
/// answer its first ping ends 700 ms after the handshake.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(400);

/// The ping interval of every server here (the profiles').
const PING_INTERVAL: Duration = Duration::from_millis(300);

/// The ping timeout of the socket-io servers the timeout cases use: an Engine.IO 3 session whose
/// client does not ping ends 1.3 s after its last ping (or its handshake), and a v4 one whose
/// client does not pong 1.3 s after its handshake, which leaves the upgrade timeout cases a
/// second to go on over polling once their WebSocket is gone.
const TIMEOUTS_PING_TIMEOUT: Duration = Duration::from_millis(1000);

/// The upgrade timeout of the socket-io servers the timeout cases use: a WebSocket opened for a
/// polling session that has not upgraded it within this is closed.
const UPGRADE_TIMEOUT: Duration = Duration::from_millis(400);

/// How long the timeout cases' clients keep their heartbeat (or their traffic) up: past
/// [`PING_INTERVAL`] + [`TIMEOUTS_PING_TIMEOUT`], when a session without pings ends.
const KEPT_UP_FOR: Duration = Duration::from_millis(2000);

/// How long a case waits for an answer, a close or its sentinel's answer before it writes down
/// that the connection stayed open. Only a broken case waits this long (every case ends on
/// something it waits for), so it is long: a loaded machine must not change a transcript.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// How long a wait lasts for an answer that one of the servers does not give (the first of two
/// overlapping POSTs): the one wait that ends on silence, so it decides no outcome by itself.
const SILENCE_WITHIN: Duration = Duration::from_secs(2);

/// How long a GET (or an unfinished POST) must stay unanswered to count as held by the server.
/// A heuristic: a server that answers a GET at once does so within microseconds here, and one
/// that holds it (both, whenever nothing is queued) never answers within this.
const HOLD_WINDOW: Duration = Duration::from_millis(500);

/// The socket-io profile's path, and the engine-io profile's.
const SIO: &str = "/socket.io/";
const EIO: &str = "/engine.io/";

/// The profile's `maxHttpBufferSize`.
const MAX_PAYLOAD: usize = 1_000_000;

// ------------------------------------------------------------------------------------------------
// Servers

/// The ports of one side: the socket-io profile, the raw Engine.IO server, the raw Engine.IO
/// server with [`HEARTBEAT_TIMEOUT`], and the socket-io profile with [`TIMEOUTS_PING_TIMEOUT`]
/// and [`UPGRADE_TIMEOUT`].
#[derive(Clone, Copy)]
struct Ports {
    sio: u16,
    engine: u16,
    heartbeat: u16,
    timeouts: u16,
}

/// A bare `engine.io` 6.6 server (Engine.IO 3 off, as in sockio's engine-io profile) that echoes
/// every message, killed when dropped; it also exits when its stdin closes.
struct NodeEngine {
    child: Child,
    _stdin: ChildStdin,
    port: u16,
}

/// The same settings as sockio's engine-io profile (`conformance/src/engine_profile.rs`).
const NODE_ENGINE_SCRIPT: &str = r#"
const http = require("http");
const { Server } = require("engine.io");
const httpServer = http.createServer();
const engine = new Server({
  pingInterval: 300,
  pingTimeout: Number(process.argv[1]),
  maxHttpBufferSize: 1000000,
  cors: { origin: true, credentials: true },
});
engine.attach(httpServer, { path: "/engine.io/" });
engine.on("connection", (socket) => socket.on("message", (data) => socket.send(data)));
httpServer.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening ${httpServer.address().port}\n`);
});
process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
process.stdin.resume();
"#;

impl NodeEngine {
    fn start(ping_timeout: Duration) -> NodeEngine {
        ensure_clients().expect("installing the official clients (engine.io)");
        let mut child = Command::new("node")
            .arg("-e")
            .arg(NODE_ENGINE_SCRIPT)
            .arg(ping_timeout.as_millis().to_string())
            .current_dir(clients_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node (engine.io server)");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        // Killed on drop from here on, also when the first line is not what is expected.
        let mut engine = NodeEngine {
            child,
            _stdin: stdin,
            port: 0,
        };
        let mut first = String::new();
        io::BufRead::read_line(&mut io::BufReader::new(stdout), &mut first)
            .expect("read the engine.io server's listening line");
        engine.port = first
            .strip_prefix("listening ")
            .and_then(|port| port.trim().parse().ok())
            .unwrap_or_else(|| panic!("`listening <port>` expected from node, got {first:?}"));
        engine
    }
}

impl Drop for NodeEngine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Node side: two reference servers and two bare engine.io servers.
struct Reference {
    sio: ReferenceServer,
    engine: NodeEngine,
    heartbeat: NodeEngine,
    timeouts: ReferenceServer,
}

impl Reference {
    fn start() -> Reference {
        Reference {
            sio: start_reference_server_with(PING_TIMEOUT).expect("start the reference server"),
            engine: NodeEngine::start(PING_TIMEOUT),
            heartbeat: NodeEngine::start(HEARTBEAT_TIMEOUT),
            timeouts: start_reference_server_with_timeouts(TIMEOUTS_PING_TIMEOUT, UPGRADE_TIMEOUT)
                .expect("start the reference server with short timeouts"),
        }
    }

    fn ports(&self) -> Ports {
        Ports {
            sio: self.sio.port(),
            engine: self.engine.port,
            heartbeat: self.heartbeat.port,
            timeouts: self.timeouts.port(),
        }
    }
}

/// One runtime's side: `serve --profile socket-io` and `serve --profile engine-io`, twice each.
struct Sockio {
    sio: Served,
    engine: Served,
    heartbeat: Served,
    timeouts: Served,
}

impl Sockio {
    fn start(runtime: &str) -> Sockio {
        let serve = |profile: &str, ping_timeout: Duration, upgrade_timeout: Option<Duration>| {
            Served::start(|command| {
                command.args(["--runtime", runtime, "--profile", profile, "--port", "0"]);
                command.args(["--ping-timeout-ms", &ping_timeout.as_millis().to_string()]);
                if let Some(upgrade_timeout) = upgrade_timeout {
                    let ms = upgrade_timeout.as_millis().to_string();
                    command.args(["--upgrade-timeout-ms", &ms]);
                }
            })
        };
        Sockio {
            sio: serve("socket-io", PING_TIMEOUT, None),
            engine: serve("engine-io", PING_TIMEOUT, None),
            heartbeat: serve("engine-io", HEARTBEAT_TIMEOUT, None),
            timeouts: serve("socket-io", TIMEOUTS_PING_TIMEOUT, Some(UPGRADE_TIMEOUT)),
        }
    }

    fn ports(&self) -> Ports {
        Ports {
            sio: self.sio.port,
            engine: self.engine.port,
            heartbeat: self.heartbeat.port,
            timeouts: self.timeouts.port,
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Normalisation

/// `text/plain; charset=UTF-8` → `text/plain`; `-` when there is none.
fn main_type(resp: &Resp) -> String {
    resp.header("content-type")
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|| "-".to_owned())
}

/// JSON with every object's keys sorted, so that two servers' objects compare field by field.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|key| format!("{}:{}", Value::String(key.clone()), canonical(&map[key])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

/// A JSON object whose `sid` is replaced by `<sid>`, canonical; `None` if `text` is not one.
fn without_sid(text: &str) -> Option<String> {
    let mut value: Value = serde_json::from_str(text).ok()?;
    let object = value.as_object_mut()?;
    if object.contains_key("sid") {
        object.insert("sid".to_owned(), Value::String("<sid>".to_owned()));
    }
    Some(canonical(&value))
}

/// FNV-1a, to name a long payload by its content.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// An Engine.IO packet as text, normalised: the sid of an open packet and of a Socket.IO
/// CONNECT reply (`40{"sid":..}`, `40/custom,{"sid":..}`) becomes `<sid>`, JSON objects there
/// are canonical, and a packet over 200 bytes is shown by its length, start and hash.
fn norm_packet(packet: &str) -> String {
    if packet.len() > 200 {
        let start: String = packet.chars().take(24).collect();
        return format!(
            "<{} bytes: {start}... #{:016x}>",
            packet.len(),
            fnv(packet.as_bytes())
        );
    }
    if let Some(json) = packet.strip_prefix('0')
        && let Some(open) = without_sid(json)
    {
        return format!("0{open}");
    }
    if let Some(rest) = packet.strip_prefix("40") {
        let (nsp, json) = match rest.strip_prefix('/') {
            Some(_) => match rest.split_once(',') {
                Some((nsp, json)) => (format!("{nsp},"), json),
                None => (rest.to_owned(), ""),
            },
            None => (String::new(), rest),
        };
        if let Some(reply) = without_sid(json)
            && json.contains("\"sid\"")
        {
            return format!("40{nsp}{reply}");
        }
    }
    packet.to_owned()
}

/// Binary data as written down: hex, or its length and hash when long.
fn hex(bytes: &[u8]) -> String {
    if bytes.len() > 64 {
        return format!("<{} bytes #{:016x}>", bytes.len(), fnv(bytes));
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Standard base64 (for `b<base64>` packets).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The packets of an Engine.IO 3 text payload (`<len>:<packet>...`, lengths in UTF-16 code
/// units); `None` when `body` is not one.
fn decode_v3(body: &str) -> Option<Vec<String>> {
    let mut packets = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (len, after) = rest.split_once(':')?;
        if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let len: usize = len.parse().ok()?;
        let mut units = 0;
        let mut end = 0;
        for c in after.chars() {
            if units == len {
                break;
            }
            units += c.len_utf16();
            end += c.len_utf8();
        }
        if units != len {
            return None;
        }
        packets.push(after[..end].to_owned());
        rest = &after[end..];
    }
    (!packets.is_empty()).then_some(packets)
}

/// The packets of a polling body: v3 (`<len>:...`) when it parses as such, else v4 (`\x1e`).
fn body_packets(body: &str) -> Vec<String> {
    if body.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && let Some((len, _)) = body.split_once(':')
        && len.bytes().all(|b| b.is_ascii_digit())
        && let Some(packets) = decode_v3(body)
    {
        return packets.into_iter().map(|p| format!("v3 {p}")).collect();
    }
    body.split('\x1e').map(str::to_owned).collect()
}

/// The packets of a polling body, normalised, as one string.
fn packets_line(body: &str) -> String {
    let packets: Vec<String> = body_packets(body)
        .iter()
        .map(|p| match p.strip_prefix("v3 ") {
            Some(p) => format!("v3 {}", norm_packet(p)),
            None => norm_packet(p),
        })
        .collect();
    format!("{packets:?}")
}

/// A JSONP poll (`___eio[<index>]("<payload as a JSON string>");`): the index and the payload.
fn jsonp(body: &str) -> Option<(String, String)> {
    let rest = body.strip_prefix("___eio[")?;
    let (index, rest) = rest.split_once("](")?;
    let literal = rest.strip_suffix(");")?;
    Some((index.to_owned(), serde_json::from_str(literal).ok()?))
}

/// A poll's payload: its body, or what a JSONP poll's body wraps.
fn poll_text(resp: &Resp) -> String {
    let text = resp.text();
    jsonp(&text).map_or(text, |(_, payload)| payload)
}

/// An HTTP answer as one transcript line: status, main content type, normalised body.
fn answer(resp: &Resp) -> String {
    let ctype = main_type(resp);
    let text = resp.text();
    let body = if resp.body.is_empty() {
        "<empty>".to_owned()
    } else if let Some((index, payload)) = jsonp(&text) {
        format!("jsonp[{index}] {}", packets_line(&payload))
    } else {
        match ctype.as_str() {
            "application/json" => match serde_json::from_slice::<Value>(&resp.body) {
                Ok(value) => canonical(&value),
                Err(_) => format!("{text:?}"),
            },
            "text/plain" => packets_line(&text),
            "application/octet-stream" => format!("bytes {}", hex(&resp.body)),
            _ => format!("{text:?}"),
        }
    };
    format!("{} {ctype} {body}", resp.status)
}

/// A request that got no HTTP answer, as a transcript line.
fn no_answer(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => "no answer in time".to_owned(),
        // End of stream or a reset: which of the two is a race of the kernel.
        _ => "connection closed without an answer".to_owned(),
    }
}

// ------------------------------------------------------------------------------------------------
// HTTP plumbing

/// A new connection whose reads give up after `within`.
fn connect(port: u16, within: Duration) -> Result<Http, String> {
    let http = Http::connect(port).map_err(|e| format!("connect to {port}: {e}"))?;
    http.stream
        .set_read_timeout(Some(within))
        .map_err(|e| format!("read timeout: {e}"))?;
    Ok(http)
}

/// One request on a fresh connection, as a transcript line `METHOD what -> answer`.
fn exchange(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<String, String> {
    exchange_shown(port, (method, target, headers, body), &answer)
}

/// One request (method, target, headers, body) on a fresh connection, as a transcript line
/// `METHOD what -> ` and its answer as `show` writes it.
fn exchange_shown(
    port: u16,
    (method, target, headers, body): (&str, &str, &[(&str, &str)], &[u8]),
    show: &dyn Fn(&Resp) -> String,
) -> Result<String, String> {
    let mut http = connect(port, ANSWER_WITHIN)?;
    let label = label(method, target, body);
    // A write the server cut short (it answered early and closed) still has an answer to read.
    let _ = http.send(method, target, headers, body);
    Ok(match http.read_response() {
        Ok(resp) => format!("{label} -> {}", show(&resp)),
        Err(e) => format!("{label} -> {}", no_answer(&e)),
    })
}

/// The CORS headers of an answer, the only headers a case writes down (in the CORS cases): each
/// as `name: value`, lists compared as sets, in this order; `-` when it has none.
fn cors_headers(resp: &Resp) -> String {
    const CORS: [&str; 6] = [
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-expose-headers",
        "access-control-max-age",
    ];
    let found: Vec<String> = CORS
        .iter()
        .filter_map(|name| {
            let value = resp.header(name)?;
            let mut items: Vec<String> = value
                .split(',')
                .map(|item| item.trim().to_ascii_lowercase())
                .collect();
            items.sort();
            Some(format!("{name}: {}", items.join(",")))
        })
        .collect();
    if found.is_empty() {
        "-".to_owned()
    } else {
        found.join("; ")
    }
}

/// One request on a fresh connection, as a transcript line with its answer's CORS headers.
fn exchange_cors(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<String, String> {
    exchange_shown(port, (method, target, headers, body), &|resp| {
        format!("{} [{}]", answer(resp), cors_headers(resp))
    })
}

/// `METHOD ?query body` with the session id taken out and a long body shortened.
fn label(method: &str, target: &str, body: &[u8]) -> String {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let query: Vec<&str> = query
        .split('&')
        .map(|pair| {
            if pair.starts_with("sid=") {
                "sid"
            } else {
                pair
            }
        })
        .collect();
    let body = if body.is_empty() {
        String::new()
    } else if body.len() > 80 {
        format!(" <{} bytes>", body.len())
    } else {
        format!(" {:?}", String::from_utf8_lossy(body))
    };
    format!("{method} ?{}{body}", query.join("&"))
}

/// Reads an HTTP response head byte by byte, so that nothing after it is consumed: the status
/// and the headers.
fn read_head(stream: &mut TcpStream) -> io::Result<(u16, Vec<(String, String)>)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line in {head:?}")))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    Ok((status, headers))
}

/// A HEAD request (its answer has a head only), as a transcript line.
fn head_request(port: u16, target: &str) -> Result<String, String> {
    let http = connect(port, ANSWER_WITHIN)?;
    let mut stream = http.stream;
    let request = format!("HEAD {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("write HEAD: {e}"))?;
    let label = label("HEAD", target, b"");
    Ok(match read_head(&mut stream) {
        Ok((status, headers)) => {
            let resp = Resp {
                status,
                headers,
                body: Vec::new(),
            };
            format!("{label} -> {} {}", status, main_type(&resp))
        }
        Err(e) => format!("{label} -> {}", no_answer(&e)),
    })
}

/// Upgrades a fresh connection to a WebSocket at `target`. `Err` holds the refusal as a
/// transcript line (`400 text/html "..."`, or how the connection ended).
fn ws_upgrade(port: u16, target: &str) -> Result<Ws, String> {
    let http = connect(port, ANSWER_WITHIN)?;
    let mut stream = http.stream;
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("write the upgrade: {e}"))?;
    let (status, headers) = read_head(&mut stream).map_err(|e| no_answer(&e))?;
    if status == 101 {
        let config = WebSocketConfig::default()
            .max_message_size(Some(64 << 20))
            .max_frame_size(Some(64 << 20));
        return Ok(tungstenite::WebSocket::from_raw_socket(
            stream,
            Role::Client,
            Some(config),
        ));
    }
    let length = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.parse::<usize>().ok());
    let mut body = Vec::new();
    let read = match length {
        Some(length) => {
            body.resize(length, 0);
            stream.read_exact(&mut body)
        }
        None => stream.read_to_end(&mut body).map(drop),
    };
    let resp = Resp {
        status,
        headers,
        body,
    };
    Err(match read {
        Ok(()) => answer(&resp),
        Err(e) => format!("{status} {} then {}", main_type(&resp), no_answer(&e)),
    })
}

// ------------------------------------------------------------------------------------------------
// Sessions

/// The transcript of one case on one server.
type Transcript = Vec<String>;

/// How a wait for packets ended.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Ended {
    /// The packet waited for came.
    Matched,
    /// The session or connection ended.
    Closed,
    /// Nothing more came within [`ANSWER_WITHIN`].
    Quiet,
}

/// A long-polling session.
struct Polling {
    port: u16,
    path: &'static str,
    eio: &'static str,
    sid: String,
}

impl Polling {
    /// A polling handshake at `path` with `eio`, the query before the transport (`EIO=4`,
    /// `EIO=3&token=abc`); writes down its answer.
    fn open(
        port: u16,
        path: &'static str,
        eio: &'static str,
        t: &mut Transcript,
    ) -> Result<Polling, String> {
        let mut http = connect(port, ANSWER_WITHIN)?;
        let target = format!("{path}?{eio}&transport=polling");
        let resp = http
            .request("GET", &target, &[], b"")
            .map_err(|e| format!("handshake: {}", no_answer(&e)))?;
        t.push(format!(
            "{} -> {}",
            label("GET", &target, b""),
            answer(&resp)
        ));
        let open = body_packets(&poll_text(&resp))
            .into_iter()
            .next()
            .unwrap_or_default();
        let open = open.strip_prefix("v3 ").unwrap_or(&open).to_owned();
        let sid = open
            .strip_prefix('0')
            .and_then(|json| serde_json::from_str::<Value>(json).ok())
            .and_then(|value| value["sid"].as_str().map(str::to_owned))
            .ok_or_else(|| "no session".to_owned())?;
        Ok(Polling {
            port,
            path,
            eio,
            sid,
        })
    }

    /// A session at the socket-io profile on `port` (`eio` as for [`open`](Self::open)) that has
    /// joined `/` (a v4 session by sending CONNECT, a v3 one by itself), the greeting awaited.
    fn joined(port: u16, eio: &'static str, t: &mut Transcript) -> Result<Polling, String> {
        let session = Polling::open(port, SIO, eio, t)?;
        if eio.starts_with("EIO=4") {
            session.post(b"40", t)?;
        }
        matched(session.collect(t, &auth_on_root)?)?;
        Ok(session)
    }

    fn target(&self) -> String {
        format!(
            "{}?{}&transport=polling&sid={}",
            self.path, self.eio, self.sid
        )
    }

    fn post(&self, body: &[u8], t: &mut Transcript) -> Result<(), String> {
        let line = exchange(
            self.port,
            "POST",
            &self.target(),
            &[("Content-Type", "text/plain;charset=UTF-8")],
            body,
        )?;
        t.push(line);
        Ok(())
    }

    fn get(&self, t: &mut Transcript) -> Result<(), String> {
        t.push(exchange(self.port, "GET", &self.target(), &[], b"")?);
        Ok(())
    }

    /// Polls until `done` matches a packet, the session ends (a close packet or an error
    /// answer) or [`ANSWER_WITHIN`] passes, writing down every packet but the server's pings and
    /// the noops that share a poll with other packets: a noop carries nothing, and the reference
    /// adds one when a close waited for a GET (`6\x1e1`, `transports/polling.ts` onPollRequest),
    /// where sockio sends the close alone. A poll that is only a noop (the answer that releases
    /// a held GET) is written down.
    fn collect(&self, t: &mut Transcript, done: &dyn Fn(&str) -> bool) -> Result<Ended, String> {
        let deadline = Instant::now() + ANSWER_WITHIN;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                t.push(format!("(nothing more within {ANSWER_WITHIN:?})"));
                return Ok(Ended::Quiet);
            }
            let mut http = connect(self.port, left)?;
            let resp = match http.request("GET", &self.target(), &[], b"") {
                Ok(resp) => resp,
                Err(e) if is_timeout(&e) => {
                    t.push(format!("(nothing more within {ANSWER_WITHIN:?})"));
                    return Ok(Ended::Quiet);
                }
                Err(e) => {
                    t.push(format!("GET -> {}", no_answer(&e)));
                    return Ok(Ended::Closed);
                }
            };
            if resp.status != 200 {
                t.push(format!("GET -> {}", answer(&resp)));
                return Ok(Ended::Closed);
            }
            // Each packet as the server sent it (a v3 payload's marked `v3 `) and without the
            // marker, which is what `done` and the checks below read.
            let packets: Vec<(String, String)> = body_packets(&poll_text(&resp))
                .into_iter()
                .map(|p| (p.strip_prefix("v3 ").unwrap_or(&p).to_owned(), p))
                // The v4 server's ping; a v3 server does not ping.
                .filter(|(p, _)| !(p == "2" && self.eio == "EIO=4"))
                .collect();
            let alone = packets.len() == 1;
            // The whole poll is written down, also what came after the awaited packet in it.
            let mut ended = None;
            for (packet, sent) in packets {
                if packet == "6" && !alone {
                    continue;
                }
                let marker = if sent.starts_with("v3 ") { "v3 " } else { "" };
                t.push(format!("< {marker}{}", norm_packet(&packet)));
                if packet == "1" {
                    ended = Some(Ended::Closed);
                } else if ended.is_none() && done(&packet) {
                    ended = Some(Ended::Matched);
                }
            }
            if let Some(ended) = ended {
                return Ok(ended);
            }
        }
    }

    /// A GET the server holds: the first ping is taken (see the module docs), then a GET must stay
    /// unanswered for [`HOLD_WINDOW`]. Its connection, to read the answer from later.
    fn held_get(&self) -> Result<Http, String> {
        // A v3 server does not ping: its first GET is held at once.
        let mut pinged = !self.eio.starts_with("EIO=4");
        loop {
            let mut http = connect(self.port, if pinged { HOLD_WINDOW } else { ANSWER_WITHIN })?;
            http.send("GET", &self.target(), &[], b"")
                .map_err(|e| format!("GET: {e}"))?;
            match http.read_response() {
                Err(e) if pinged && is_timeout(&e) => {
                    http.stream
                        .set_read_timeout(Some(ANSWER_WITHIN))
                        .map_err(|e| format!("read timeout: {e}"))?;
                    return Ok(http);
                }
                Ok(resp) if !pinged && resp.status == 200 && resp.text() == "2" => pinged = true,
                Ok(resp) => return Err(format!("GET not held: {}", answer(&resp))),
                Err(e) => return Err(format!("GET not held: {}", no_answer(&e))),
            }
        }
    }
}

/// A read that gave up after its timeout: nothing came.
fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Reads the answer to a held GET, as a transcript line.
fn read_held(mut http: Http, t: &mut Transcript) {
    t.push(match http.read_response() {
        Ok(resp) => format!("held GET -> {}", answer(&resp)),
        Err(e) => format!("held GET -> {}", no_answer(&e)),
    });
}

/// Reads WebSocket messages until `done` matches a text one, the connection ends or
/// [`ANSWER_WITHIN`] passes, writing down everything but the server's pings (`2`).
fn ws_collect(ws: &mut Ws, t: &mut Transcript, done: &dyn Fn(&str) -> bool) -> Ended {
    let deadline = Instant::now() + ANSWER_WITHIN;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || ws.get_ref().set_read_timeout(Some(left)).is_err() {
            t.push(format!("(nothing more within {ANSWER_WITHIN:?})"));
            return Ended::Quiet;
        }
        match ws.read() {
            Ok(Message::Text(text)) if text.as_str() == "2" => {}
            Ok(Message::Text(text)) => {
                t.push(format!("< {}", norm_packet(text.as_str())));
                if done(text.as_str()) {
                    return Ended::Matched;
                }
            }
            Ok(Message::Binary(bytes)) => t.push(format!("< binary {}", hex(&bytes))),
            Ok(Message::Close(frame)) => {
                t.push(match frame {
                    Some(frame) => format!("< close frame {}", u16::from(frame.code)),
                    None => "< close frame without a code".to_owned(),
                });
                return Ended::Closed;
            }
            Ok(_) => {}
            Err(e) if is_wait(&e) => {
                t.push(format!("(nothing more within {ANSWER_WITHIN:?})"));
                return Ended::Quiet;
            }
            // End of stream, a reset, or a frame that is not one: no close frame came.
            Err(_) => {
                t.push("< connection closed without a close frame".to_owned());
                return Ended::Closed;
            }
        }
    }
}

/// Goes on only when the wait matched; `?` on it ends the case otherwise (what ended the wait
/// is already written down, so the error is empty).
fn matched(ended: Ended) -> Result<(), String> {
    match ended {
        Ended::Matched => Ok(()),
        Ended::Closed | Ended::Quiet => Err(String::new()),
    }
}

/// Sends a text frame, writing it down. A failed write is not written down: what the
/// server did is read next.
fn ws_send(ws: &mut Ws, text: &str, t: &mut Transcript) {
    t.push(format!("> {}", shorten(text)));
    let _ = ws.send(Message::text(text));
}

/// A sent packet as written down: itself, or its length when long.
fn shorten(text: &str) -> String {
    if text.len() > 80 {
        format!("<{} bytes>", text.len())
    } else {
        text.to_owned()
    }
}

/// A WebSocket-only session (`EIO=4`, no sid): the upgrade, then its open packet. The
/// WebSocket and the session id.
fn ws_session(port: u16, t: &mut Transcript) -> Result<(Ws, String), String> {
    let target = format!("{SIO}?EIO=4&transport=websocket");
    let mut ws = ws_upgrade(port, &target).map_err(|refused| format!("upgrade: {refused}"))?;
    t.push(format!("{} -> 101", label("GET (upgrade)", &target, b"")));
    let sid = std::cell::RefCell::new(None);
    ws_collect(&mut ws, t, &|packet| {
        let open = packet
            .strip_prefix('0')
            .and_then(|json| serde_json::from_str::<Value>(json).ok());
        *sid.borrow_mut() = open.and_then(|open| open["sid"].as_str().map(str::to_owned));
        true
    });
    let sid = sid.into_inner().ok_or("no open packet")?;
    Ok((ws, sid))
}

/// Whether a packet is the profile's greeting after a CONNECT to `/`.
fn auth_on_root(packet: &str) -> bool {
    packet.starts_with("42[\"auth\"")
}

// ------------------------------------------------------------------------------------------------
// Cases

/// What a case must give.
enum Expect {
    /// The same transcript on both sides.
    Same,
    /// A written-down difference: each side's exact transcript.
    Differs {
        reference: Vec<String>,
        sockio: Vec<String>,
        /// Where the difference is documented.
        why: &'static str,
    },
    /// A written-down difference confined to a few lines: sockio's transcript with each line
    /// `rewrite` replaces (by what the reference says there) must be the reference's, and the
    /// rewrite must replace something, so that the test fails if either side changes.
    Rewritten {
        rewrite: Rewrite,
        /// Where the difference is documented.
        why: &'static str,
    },
}

/// What the reference says in place of one of sockio's transcript lines; `None` keeps the line.
type Rewrite = fn(&str) -> Option<Vec<String>>;

/// `transcript` with `rewrite` applied to every line, and whether it replaced any.
fn rewritten(transcript: &Transcript, rewrite: Rewrite) -> (Transcript, bool) {
    let mut replaced = false;
    let mut out = Vec::with_capacity(transcript.len());
    for line in transcript {
        match rewrite(line) {
            Some(lines) => {
                replaced = true;
                out.extend(lines);
            }
            None => out.push(line.clone()),
        }
    }
    (out, replaced)
}

/// A case's steps against one side: they write the transcript; an error ends it (with a line
/// saying why, unless empty).
type Run = Box<dyn Fn(Ports, &mut Transcript) -> Result<(), String> + Send + Sync>;

/// One case: its name, its steps, and what it must give.
struct Case {
    name: String,
    run: Run,
    expect: Expect,
}

impl Case {
    fn new(
        name: impl Into<String>,
        run: impl Fn(Ports, &mut Transcript) -> Result<(), String> + Send + Sync + 'static,
    ) -> Case {
        Case {
            name: name.into(),
            run: Box::new(run),
            expect: Expect::Same,
        }
    }

    /// A written-down difference: the transcript each side must give.
    fn differs(mut self, why: &'static str, reference: Transcript, sockio: Transcript) -> Case {
        self.expect = Expect::Differs {
            reference,
            sockio,
            why,
        };
        self
    }

    /// A written-down difference of a few lines: `rewrite` turns sockio's transcript into the
    /// reference's.
    fn rewritten(mut self, why: &'static str, rewrite: Rewrite) -> Case {
        self.expect = Expect::Rewritten { rewrite, why };
        self
    }

    /// Runs the case against one side.
    fn transcript(&self, ports: Ports) -> Transcript {
        let mut t = Vec::new();
        if let Err(e) = (self.run)(ports, &mut t)
            && !e.is_empty()
        {
            t.push(format!("stopped: {e}"));
        }
        t
    }
}

/// One request with no session, at the socket-io profile.
fn one_request(name: &str, method: &'static str, query: &'static str) -> Case {
    Case::new(name, move |ports, t| {
        let target = format!("{SIO}?{query}");
        t.push(if method == "HEAD" {
            head_request(ports.sio, &target)?
        } else {
            exchange(ports.sio, method, &target, &[], b"")?
        });
        Ok(())
    })
}

/// One request with no session, at the raw Engine.IO server.
fn one_engine_request(name: &str, query: &'static str) -> Case {
    Case::new(name, move |ports, t| {
        let target = format!("{EIO}?{query}");
        t.push(exchange(ports.engine, "GET", &target, &[], b"")?);
        Ok(())
    })
}

/// One request on a fresh v4 polling session, then whether the session lived through it.
fn on_session(name: &str, method: &'static str) -> Case {
    Case::new(name, move |ports, t| {
        let session = Polling::open(ports.sio, SIO, "EIO=4", t)?;
        t.push(if method == "HEAD" {
            head_request(ports.sio, &session.target())?
        } else {
            exchange(ports.sio, method, &session.target(), &[], b"")?
        });
        session.post(b"40", t)?;
        session.collect(t, &auth_on_root).map(drop)
    })
}

/// A raw POST body on a fresh v4 polling session (after `40` when `join`), what came back until
/// `wait_for` matched (when the body has answers of its own), then the sentinel.
fn post_body(
    name: &str,
    join: bool,
    body: &'static [u8],
    wait_for: Option<fn(&str) -> bool>,
    sentinel: Sentinel,
) -> Case {
    Case::new(name, move |ports, t| {
        let session = Polling::open(ports.sio, SIO, "EIO=4", t)?;
        if join {
            session.post(b"40", t)?;
            matched(session.collect(t, &auth_on_root)?)?;
        }
        session.post(body, t)?;
        if let Some(answer) = wait_for {
            matched(session.collect(t, &answer)?)?;
        }
        session.post(sentinel.packet().as_bytes(), t)?;
        session.collect(t, &|p| sentinel.answered(p)).map(drop)
    })
}

/// What is sent after a case's packets to learn that the server dealt with them: its answer
/// comes after theirs (both servers handle one client's packets in order), or the connection
/// ends.
#[derive(Clone, Copy)]
enum Sentinel {
    /// `message-with-ack` on `/`, acknowledged with the same argument.
    AckOnRoot,
    /// A CONNECT to `/custom`, answered with the CONNECT reply and the `auth` greeting.
    ConnectCustom,
    /// A CONNECT to `/`, for a case that connects `/custom` itself.
    ConnectRoot,
}

impl Sentinel {
    fn packet(self) -> &'static str {
        match self {
            Sentinel::AckOnRoot => "4299[\"message-with-ack\",\"sentinel\"]",
            Sentinel::ConnectCustom => "40/custom,",
            Sentinel::ConnectRoot => "40",
        }
    }

    fn answered(self, packet: &str) -> bool {
        match self {
            Sentinel::AckOnRoot => packet == "4399[\"sentinel\"]",
            Sentinel::ConnectCustom => auth_on_custom(packet),
            Sentinel::ConnectRoot => auth_on_root(packet),
        }
    }
}

/// Whether a packet is the profile's greeting after a CONNECT to `/custom`.
fn auth_on_custom(packet: &str) -> bool {
    packet.starts_with("42/custom,[\"auth\"")
}

/// Whether a packet is a CONNECT_ERROR.
fn connect_error(packet: &str) -> bool {
    packet.starts_with("44")
}

/// An Engine.IO message a Socket.IO case sends: text (`4...`) or binary.
#[derive(Clone)]
enum Msg {
    Text(String),
    Binary(Vec<u8>),
}

fn text(packet: impl Into<String>) -> Msg {
    Msg::Text(packet.into())
}

/// The transport a Socket.IO case runs over.
#[derive(Clone, Copy, PartialEq)]
enum Via {
    Polling,
    WebSocket,
}

impl Via {
    /// As case names say it.
    fn name(self) -> &'static str {
        match self {
            Via::Polling => "polling",
            Via::WebSocket => "websocket",
        }
    }
}

/// A Socket.IO case: a fresh session (joined to `/` when `join`), the messages (in one POST, or
/// a frame each), what came back until `wait_for` matched (when the messages have an answer of
/// their own: the reference connects a namespace a tick later, so a sentinel sent at once could
/// overtake a CONNECT), then the sentinel and what came back until its answer or the end.
struct Sio {
    name: &'static str,
    join: bool,
    send: Vec<Msg>,
    wait_for: Option<fn(&str) -> bool>,
    sentinel: Sentinel,
}

fn sio(name: &'static str, join: bool, send: Vec<Msg>) -> Sio {
    Sio {
        name,
        join,
        send,
        wait_for: None,
        sentinel: if join {
            Sentinel::AckOnRoot
        } else {
            Sentinel::ConnectCustom
        },
    }
}

impl Sio {
    fn wait_for(mut self, answer: fn(&str) -> bool) -> Sio {
        self.wait_for = Some(answer);
        self
    }

    fn sentinel(mut self, sentinel: Sentinel) -> Sio {
        self.sentinel = sentinel;
        self
    }

    /// The case over `via`.
    fn over(&self, via: Via) -> Case {
        let (join, send, wait_for, sentinel) =
            (self.join, self.send.clone(), self.wait_for, self.sentinel);
        let name = format!("{} ({})", self.name, via.name());
        Case::new(name, move |ports, t| match via {
            Via::Polling => {
                let session = Polling::open(ports.sio, SIO, "EIO=4", t)?;
                if join {
                    session.post(b"40", t)?;
                    matched(session.collect(t, &auth_on_root)?)?;
                }
                let parts: Vec<String> = send
                    .iter()
                    .map(|msg| match msg {
                        Msg::Text(text) => text.clone(),
                        Msg::Binary(bytes) => format!("b{}", base64(bytes)),
                    })
                    .collect();
                session.post(parts.join("\x1e").as_bytes(), t)?;
                if let Some(answer) = wait_for {
                    matched(session.collect(t, &answer)?)?;
                }
                session.post(sentinel.packet().as_bytes(), t)?;
                session.collect(t, &|p| sentinel.answered(p)).map(drop)
            }
            Via::WebSocket => {
                let (mut ws, _) = ws_session(ports.sio, t)?;
                if join {
                    ws_send(&mut ws, "40", t);
                    matched(ws_collect(&mut ws, t, &auth_on_root))?;
                }
                for msg in &send {
                    match msg {
                        Msg::Text(text) => ws_send(&mut ws, text, t),
                        Msg::Binary(bytes) => {
                            t.push(format!("> binary {}", hex(bytes)));
                            let _ = ws.send(Message::binary(bytes.clone()));
                        }
                    }
                }
                if let Some(answer) = wait_for {
                    matched(ws_collect(&mut ws, t, &answer))?;
                }
                ws_send(&mut ws, sentinel.packet(), t);
                ws_collect(&mut ws, t, &|p| sentinel.answered(p));
                Ok(())
            }
        })
    }

    fn both(&self) -> [Case; 2] {
        [self.over(Via::Polling), self.over(Via::WebSocket)]
    }
}

/// `42["message",<depth nested arrays>]`: the whole payload is `depth + 1` levels deep.
fn nested(depth: usize) -> String {
    format!("42[\"message\",{}{}]", "[".repeat(depth), "]".repeat(depth))
}

/// `421["message-with-ack","xx..."]` of exactly `len` bytes.
fn sized(len: usize) -> String {
    let empty = "421[\"message-with-ack\",\"\"]";
    format!(
        "421[\"message-with-ack\",\"{}\"]",
        "x".repeat(len - empty.len())
    )
}

/// `{"_placeholder":true,"num":<num>}`.
fn placeholder(num: u32) -> String {
    format!("{{\"_placeholder\":true,\"num\":{num}}}")
}

/// Handshakes, request checks and methods, at the socket-io profile and at the raw Engine.IO
/// servers (Engine.IO 3 off there).
fn engine_cases() -> Vec<Case> {
    vec![
        one_request("handshake EIO=4", "GET", "EIO=4&transport=polling"),
        // The profile allows Engine.IO 3, so any EIO but "4" is a v3 handshake (PROTOCOL 1.1).
        one_request("handshake EIO=3", "GET", "EIO=3&transport=polling"),
        one_request("handshake without EIO", "GET", "transport=polling"),
        one_request("handshake EIO=2", "GET", "EIO=2&transport=polling"),
        one_request("handshake EIO=5", "GET", "EIO=5&transport=polling"),
        one_request("handshake EIO=junk", "GET", "EIO=junk&transport=polling"),
        one_request("handshake without transport", "GET", "EIO=4"),
        one_request("handshake transport=foo", "GET", "EIO=4&transport=foo"),
        one_request(
            "handshake transport=webtransport",
            "GET",
            "EIO=4&transport=webtransport",
        ),
        one_request(
            "handshake websocket without Upgrade",
            "GET",
            "EIO=4&transport=websocket",
        ),
        one_request("handshake POST", "POST", "EIO=4&transport=polling"),
        one_request("handshake PUT", "PUT", "EIO=4&transport=polling"),
        one_request("handshake DELETE", "DELETE", "EIO=4&transport=polling"),
        one_request("handshake HEAD", "HEAD", "EIO=4&transport=polling"),
        one_request(
            "handshake OPTIONS without Origin",
            "OPTIONS",
            "EIO=4&transport=polling",
        ),
        one_request("GET unknown sid", "GET", "EIO=4&transport=polling&sid=nope"),
        one_request(
            "POST unknown sid",
            "POST",
            "EIO=4&transport=polling&sid=nope",
        ),
        on_session("PUT on a session", "PUT").rewritten(ERROR_BODIES, error_body_as_reference),
        on_session("DELETE on a session", "DELETE")
            .rewritten(ERROR_BODIES, error_body_as_reference),
        on_session("HEAD on a session", "HEAD").rewritten(ERROR_BODIES, error_body_as_reference),
        on_session("OPTIONS on a session without Origin", "OPTIONS"),
        Case::new("GET with EIO=3 on a v4 session", |ports, t| {
            let session = Polling::open(ports.sio, SIO, "EIO=4", t)?;
            let v3 = format!("{SIO}?EIO=3&transport=polling&sid={}", session.sid);
            t.push(exchange(ports.sio, "GET", &v3, &[], b"")?);
            Ok(())
        }),
        Case::new(
            "POSTs without EIO and with EIO=5 on a v4 session",
            |ports, t| {
                let session = Polling::open(ports.sio, SIO, "EIO=4", t)?;
                for eio in ["", "EIO=5&"] {
                    let target = format!("{SIO}?{eio}transport=polling&sid={}", session.sid);
                    t.push(exchange(ports.sio, "POST", &target, &[], b"40/custom,")?);
                }
                // Neither was taken: the session goes on, `/custom` not joined.
                session.post(b"40", t)?;
                matched(session.collect(t, &auth_on_root)?)?;
                session.post(Sentinel::AckOnRoot.packet().as_bytes(), t)?;
                session
                    .collect(t, &|p| Sentinel::AckOnRoot.answered(p))
                    .map(drop)
            },
        ),
        Case::new("polling GET on a WebSocket session", |ports, t| {
            let (_ws, sid) = ws_session(ports.sio, t)?;
            let target = format!("{SIO}?EIO=4&transport=polling&sid={sid}");
            t.push(exchange(ports.sio, "GET", &target, &[], b"")?);
            Ok(())
        }),
        one_engine_request("engine.io: handshake EIO=4", "EIO=4&transport=polling"),
        one_engine_request("engine.io: handshake EIO=3", "EIO=3&transport=polling"),
        one_engine_request("engine.io: handshake without EIO", "transport=polling"),
        one_engine_request("engine.io: handshake EIO=5", "EIO=5&transport=polling"),
        Case::new("engine.io: messages are echoed", |ports, t| {
            let session = Polling::open(ports.engine, EIO, "EIO=4", t)?;
            session.post(b"4hello\x1e4world", t)?;
            session.collect(t, &|p| p == "4world").map(drop)
        }),
        Case::new(
            "engine.io: an empty message and an empty packet",
            |ports, t| {
                let session = Polling::open(ports.engine, EIO, "EIO=4", t)?;
                session.post(b"4\x1e4after", t)?;
                matched(session.collect(t, &|p| p == "4after")?)?;
                session.post(b"4one\x1e\x1e4two", t)?;
                session.collect(t, &|p| p == "4two").map(drop)
            },
        ),
    ]
}

/// Long-polling bodies and request overlaps, v4 and v3.
fn polling_cases() -> Vec<Case> {
    vec![
        post_body(
            "POST an empty body",
            false,
            b"",
            None,
            Sentinel::ConnectCustom,
        ),
        post_body(
            "POST an unknown packet type",
            false,
            b"9",
            None,
            Sentinel::ConnectCustom,
        ),
        post_body(
            "POST a bad packet among good ones",
            true,
            b"4298[\"message-with-ack\",\"a\"]\x1e9\x1e4297[\"message-with-ack\",\"b\"]",
            None,
            Sentinel::AckOnRoot,
        ),
        post_body(
            "POST several packets",
            false,
            b"40\x1e40/custom,\x1e6",
            Some(auth_on_custom),
            Sentinel::AckOnRoot,
        ),
        post_body(
            "POST a CONNECT and an EVENT for its namespace together",
            false,
            b"40/custom,\x1e42/custom,[\"message\",1]",
            None,
            Sentinel::ConnectRoot,
        ),
        post_body("POST a noop", false, b"6", None, Sentinel::ConnectCustom),
        post_body(
            "POST a binary packet before CONNECT",
            false,
            b"bAQID",
            None,
            Sentinel::ConnectCustom,
        ),
        Case::new("POST a ping (v4) while a GET is held", |ports, t| {
            let session = Polling::open(ports.sio, SIO, "EIO=4", t)?;
            let held = session.held_get()?;
            session.post(b"2", t)?;
            read_held(held, t);
            session.get(t)
        }),
        Case::new("POST a close, then GET and POST", |ports, t| {
            let session = Polling::open(ports.sio, SIO, "EIO=4", t)?;
            session.post(b"1", t)?;
            session.get(t)?;
            session.post(b"40", t)
        }),
        Case::new("POST a close while a GET is held", |ports, t| {
            let session = Polling::open(ports.sio, SIO, "EIO=4", t)?;
            let held = session.held_get()?;
            session.post(b"1", t)?;
            read_held(held, t);
            session.get(t)
        }),
        Case::new("two concurrent GETs", |ports, t| {
            let session = Polling::open(ports.sio, SIO, "EIO=4", t)?;
            let held = session.held_get()?;
            session.get(t)?;
            read_held(held, t);
            session.get(t)
        })
        .rewritten(ERROR_BODIES, error_body_as_reference),
        Case::new(
            "a POST while another POST's body is arriving",
            overlapping_posts,
        )
        .rewritten(OVERLAPPING_POST, overlapping_post_as_reference),
        Case::new(
            "a POST with another EIO while another POST's body is arriving",
            refused_post_while_another_arrives,
        ),
        Case::new("POST as application/octet-stream (v4)", |ports, t| {
            let session = Polling::open(ports.sio, SIO, "EIO=4", t)?;
            t.push(exchange(
                ports.sio,
                "POST",
                &session.target(),
                &[("Content-Type", "application/octet-stream")],
                b"40",
            )?);
            session.get(t)
        })
        .rewritten(ERROR_BODIES, error_body_as_reference),
        Case::new(
            "v3: the first poll brings the implicit CONNECT",
            |ports, t| {
                let session = Polling::open(ports.sio, SIO, "EIO=3&token=abc", t)?;
                session.collect(t, &auth_on_root).map(drop)
            },
        ),
        Case::new("v3: a client ping is answered", |ports, t| {
            let session = Polling::joined(ports.sio, "EIO=3", t)?;
            session.post(b"1:2", t)?;
            session.collect(t, &|p| p == "3").map(drop)
        }),
        Case::new("v3: a pong from the client", |ports, t| {
            v3_after_join(ports, t, b"1:3")
        }),
        Case::new("v3: a bad length prefix", |ports, t| {
            v3_after_join(ports, t, b"5:40")
        }),
        Case::new("v3: a POST with several packets", |ports, t| {
            v3_after_join(ports, t, b"10:40/custom,1:6")
        }),
    ]
}

/// A v3 session that got its implicit CONNECT, `body` POSTed, then a sentinel: the profile's
/// `message-with-ack` with ack id 99.
fn v3_after_join(ports: Ports, t: &mut Transcript, body: &[u8]) -> Result<(), String> {
    let session = Polling::joined(ports.sio, "EIO=3", t)?;
    session.post(body, t)?;
    session.post(b"35:4299[\"message-with-ack\",\"sentinel\"]", t)?;
    session
        .collect(t, &|p| Sentinel::AckOnRoot.answered(p))
        .map(drop)
}

/// The rest of the body [`post_partly`] began: with its first 2 bytes, a CONNECT to `/` and four
/// noops.
const POST_REST: &[u8] = b"\x1e6\x1e6\x1e6\x1e6";

/// A POST to `session` whose body is still arriving: 2 of its 10 bytes (`40`) are sent, and the
/// server must hold it for [`HOLD_WINDOW`]. Its connection, to send the rest on or read from.
fn post_partly(session: &Polling, t: &mut Transcript) -> Result<Http, String> {
    let mut first = connect(session.port, HOLD_WINDOW)?;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain;charset=UTF-8\r\n\
         Content-Length: {}\r\n\r\n40",
        session.target(),
        2 + POST_REST.len()
    );
    first
        .stream
        .write_all(head.as_bytes())
        .map_err(|e| format!("write the first POST: {e}"))?;
    match first.read_response() {
        Err(e) if is_timeout(&e) => t.push("first POST (2 of 10 bytes) held".to_owned()),
        Ok(resp) => return Err(format!("first POST answered early: {}", answer(&resp))),
        Err(e) => return Err(format!("first POST: {}", no_answer(&e))),
    }
    Ok(first)
}

/// A POST refused for its query (another EIO) while another POST's body is arriving: the
/// refusal must not count as an overlapping POST, so the first POST is still taken.
fn refused_post_while_another_arrives(ports: Ports, t: &mut Transcript) -> Result<(), String> {
    let session = Polling::open(ports.sio, SIO, "EIO=4", t)?;
    let mut first = post_partly(&session, t)?;
    let other = format!("{SIO}?EIO=3&transport=polling&sid={}", session.sid);
    t.push(exchange(
        ports.sio,
        "POST",
        &other,
        &[("Content-Type", "text/plain;charset=UTF-8")],
        b"6",
    )?);
    first
        .stream
        .write_all(POST_REST)
        .map_err(|e| format!("write the rest of the first POST: {e}"))?;
    first
        .stream
        .set_read_timeout(Some(ANSWER_WITHIN))
        .map_err(|e| format!("read timeout: {e}"))?;
    t.push(match first.read_response() {
        Ok(resp) => format!("first POST -> {}", answer(&resp)),
        Err(e) => format!("first POST -> {}", no_answer(&e)),
    });
    session.collect(t, &auth_on_root).map(drop)
}

/// A POST whose body is still arriving (2 of 10 bytes), then another POST on the same session.
fn overlapping_posts(ports: Ports, t: &mut Transcript) -> Result<(), String> {
    let session = Polling::open(ports.sio, SIO, "EIO=4", t)?;
    let mut first = post_partly(&session, t)?;
    session.post(b"6", t)?;
    first
        .stream
        .set_read_timeout(Some(SILENCE_WITHIN))
        .map_err(|e| format!("read timeout: {e}"))?;
    t.push(match first.read_response() {
        Ok(resp) => format!("first POST -> {}", answer(&resp)),
        Err(e) => format!("first POST -> {}", no_answer(&e)),
    });
    session.get(t)
}

/// Socket.IO packets, each over long-polling and over a WebSocket.
fn socket_io_cases() -> Vec<Case> {
    let table = vec![
        sio("CONNECT / without auth", false, vec![text("40")]).wait_for(auth_on_root),
        sio(
            "CONNECT / with auth",
            false,
            vec![text("40{\"token\":\"abc\"}")],
        )
        .wait_for(auth_on_root),
        sio(
            "CONNECT / refused by the profile",
            false,
            vec![text("40{\"refuse\":true}")],
        )
        .wait_for(connect_error),
        sio(
            "CONNECT with a string as auth",
            false,
            vec![text("40\"x\"")],
        ),
        sio("CONNECT with an array as auth", false, vec![text("40[1]")]),
        sio(
            "CONNECT to /custom without a comma",
            true,
            vec![text("40/custom")],
        )
        .wait_for(auth_on_custom),
        sio(
            "CONNECT to a namespace not accepted",
            false,
            vec![text("40/nope,")],
        )
        .wait_for(connect_error),
        sio(
            "EVENT before CONNECT",
            false,
            vec![text("42[\"message\",\"x\"]")],
        ),
        sio("EVENT with an object", true, vec![text("42{}")]),
        sio("EVENT with a string", true, vec![text("42\"x\"")]),
        sio("EVENT with an empty array", true, vec![text("42[]")]),
        sio("EVENT named by a number", true, vec![text("42[1]")]),
        sio("EVENT named connect", true, vec![text("42[\"connect\"]")]),
        sio(
            "EVENT named disconnect",
            true,
            vec![text("42[\"disconnect\"]")],
        ),
        sio(
            "EVENT named disconnecting",
            true,
            vec![text("42[\"disconnecting\"]")],
        ),
        sio(
            "EVENT named newListener",
            true,
            vec![text("42[\"newListener\"]")],
        ),
        sio(
            "EVENT echoed",
            true,
            vec![text("42[\"message\",1,\"two\",{\"3\":[4]}]")],
        ),
        sio(
            "EVENT with an ack id",
            true,
            vec![text("427[\"message-with-ack\",\"a\"]")],
        ),
        sio(
            "ACK for an id never asked",
            true,
            vec![text("43999[\"x\"]")],
        ),
        sio(
            "DISCONNECT for a namespace not joined",
            true,
            vec![text("41/custom,")],
        ),
        sio("DISCONNECT of /", true, vec![text("41")]).sentinel(Sentinel::ConnectCustom),
        sio(
            "CONNECT_ERROR from the client",
            true,
            vec![text("44{\"message\":\"x\"}")],
        ),
        sio("packet type 7", true, vec![text("47")]),
        sio("packet type 9", true, vec![text("49")]),
        sio(
            "BINARY_EVENT echoed",
            true,
            vec![
                text(format!("451-[\"message\",{}]", placeholder(0))),
                Msg::Binary(vec![1, 2, 3]),
            ],
        ),
        sio(
            "BINARY_EVENT whose attachment does not come (text follows)",
            true,
            vec![text(format!("451-[\"message\",{}]", placeholder(0)))],
        ),
        sio(
            "BINARY_EVENT with 2 declared, 1 sent",
            true,
            vec![
                text(format!(
                    "452-[\"message\",{},{}]",
                    placeholder(0),
                    placeholder(1)
                )),
                Msg::Binary(vec![1]),
            ],
        ),
        sio(
            "BINARY_EVENT with a placeholder out of range",
            true,
            vec![
                text(format!("451-[\"message\",{}]", placeholder(1))),
                Msg::Binary(vec![1]),
            ],
        ),
        sio(
            "BINARY_EVENT with 1 declared and no placeholder",
            true,
            vec![text("451-[\"message\",1]"), Msg::Binary(vec![1])],
        ),
        sio(
            "BINARY_EVENT with 11 attachments declared",
            true,
            vec![text(format!("4511-[\"message\",{}]", placeholder(0)))],
        ),
        sio(
            "binary message with no BINARY_EVENT",
            true,
            vec![Msg::Binary(vec![1, 2])],
        ),
        // The deepest sockio accepts (SECURITY.md: serde_json's 128 levels, the whole payload).
        sio("EVENT nested 126 deep", true, vec![text(nested(126))]),
        sio(
            "message of exactly maxPayload",
            true,
            vec![text(sized(MAX_PAYLOAD))],
        ),
        sio("CONNECT with null as auth", false, vec![text("40null")]),
        sio(
            "CONNECT to a namespace with a query (v5)",
            false,
            vec![text("40/custom?x=1,")],
        )
        .wait_for(|p| p.starts_with("44/custom?x=1,")),
        sio(
            "EVENT named by an object",
            true,
            vec![text("42[{\"a\":1}]")],
        ),
        sio("EVENT named by null", true, vec![text("42[null]")]),
        sio(
            "ACK with an object instead of an array",
            true,
            vec![text("435{\"a\":1}")],
        ),
    ];
    table.iter().flat_map(Sio::both).collect()
}

// ------------------------------------------------------------------------------------------------
// Written-down differences: each lists both sides' transcripts, in the normalised form above.

/// The open packet of a session at the socket-io profile, normalised.
fn open_packet(upgrades: &str) -> String {
    format!(
        "0{{\"maxPayload\":{MAX_PAYLOAD},\"pingInterval\":300,\"pingTimeout\":{},\
         \"sid\":\"<sid>\",\"upgrades\":{upgrades}}}",
        PING_TIMEOUT.as_millis()
    )
}

/// A handshake at the socket-io profile answered with `content_type` and the open packet, as a
/// transcript line (`jsonp` for a JSONP poll, `v3` for an Engine.IO 3 payload).
fn handshake_line(query: &str, content_type: &str, jsonp: Option<&str>, v3: bool) -> String {
    let open = open_packet("[\"websocket\"]");
    let packets = format!("[{:?}]", if v3 { format!("v3 {open}") } else { open });
    let body = match jsonp {
        Some(index) => format!("jsonp[{index}] {packets}"),
        None => packets,
    };
    format!(
        "{} -> 200 {content_type} {body}",
        label("GET", &format!("{SIO}?{query}"), b"")
    )
}

/// A POST of `body` on a v4 session at the socket-io profile answered `ok`, as a transcript line.
fn posted(body: &str) -> String {
    let session = format!("{SIO}?EIO=4&transport=polling&sid=x");
    format!(
        "{} -> 200 text/html \"ok\"",
        label("POST", &session, body.as_bytes())
    )
}

/// How a Socket.IO case's transcript starts over `via`: the handshake, or the upgrade and the
/// open packet.
fn opened(via: Via) -> Transcript {
    match via {
        Via::Polling => vec![handshake_line(
            "EIO=4&transport=polling",
            "text/plain",
            None,
            false,
        )],
        Via::WebSocket => vec![
            format!(
                "{} -> 101",
                label(
                    "GET (upgrade)",
                    &format!("{SIO}?EIO=4&transport=websocket"),
                    b""
                )
            ),
            format!("< {}", open_packet("[]")),
        ],
    }
}

/// `packet` sent over `via` (a POST answered `ok`), as a transcript line.
fn sent(via: Via, packet: &str) -> String {
    match via {
        Via::Polling => posted(packet),
        Via::WebSocket => format!("> {}", shorten(packet)),
    }
}

/// How a Socket.IO case's transcript starts over `via` when it joins `/`, sends `sent` and the
/// sentinel (every POST answered `ok`).
fn sent_after_join(via: Via, packets: &[&str], sentinel: Sentinel) -> Transcript {
    let mut t = opened(via);
    t.push(sent(via, "40"));
    t.push("< 40{\"sid\":\"<sid>\"}".to_owned());
    t.push("< 42[\"auth\",{}]".to_owned());
    match via {
        Via::Polling => t.push(posted(&packets.join("\x1e"))),
        Via::WebSocket => t.extend(packets.iter().map(|packet| sent(via, packet))),
    }
    t.push(sent(via, sentinel.packet()));
    t
}

/// How the servers end a Socket.IO connection over `via`: the close packet in the next poll, or
/// a close frame without a code (`ws`'s `close()`; sockio sends the same).
fn closed(via: Via) -> String {
    match via {
        Via::Polling => "< 1".to_owned(),
        Via::WebSocket => "< close frame without a code".to_owned(),
    }
}

/// `head`, then `tail`.
fn with(head: &Transcript, tail: &[String]) -> Transcript {
    head.iter().chain(tail).cloned().collect()
}

/// README, "Where sockio differs from python-socketio on purpose": "An event without a payload
/// (`42`, `421`: no client sends one) closes the connection (`forced server close`, ...); the
/// Node.js server dispatches nothing ... keeping the connection".
const NO_PAYLOAD: &str = "README \"Where sockio differs\": an event without a payload closes the \
                          connection; the Node.js server dispatches nothing and keeps it";

/// SECURITY.md, to which the README points for "every limit, its default, what happens when it
/// is hit": "JSON nesting | 128 levels | serde_json's recursion limit | The packet is refused and
/// the connection closed." The whole payload counts, so 127 nested arrays inside the event
/// array are one level too many; the Node.js server has no limit.
const NESTING: &str = "SECURITY.md (the README's list of limits): JSON nesting is cut at 128 \
                       levels and the connection closed";

/// README, "Where sockio differs": "JSONP polls are answered as `text/javascript;
/// charset=UTF-8` ...; python-engineio and the Node.js server label them `text/plain`."
const JSONP_TYPE: &str = "README \"Where sockio differs\": JSONP polls are text/javascript";

/// The reference's line for a JSONP poll of sockio's: the same with `text/plain`.
fn jsonp_type_as_reference(line: &str) -> Option<Vec<String>> {
    line.contains(" text/javascript jsonp[")
        .then(|| vec![line.replace(" text/javascript jsonp[", " text/plain jsonp[")])
}

/// `text` as a form field's value (`application/x-www-form-urlencoded`), as a browser sends
/// JSONP's form: every byte but ASCII letters and digits percent-encoded.
fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// README, "Where sockio differs from the Node.js server on the wire": error answers on a
/// session carry the JSON error body.
const ERROR_BODIES: &str = "README \"Where sockio differs from the Node.js server\": an error \
                            answer on a session says why in a JSON body; the reference sends none";

/// The reference's line for one of sockio's answers with a JSON error body of code 3: the same
/// status and no body (`polling.ts` answers `res.writeHead(400|500); res.end()`).
fn error_body_as_reference(line: &str) -> Option<Vec<String>> {
    const JSON: &str = " application/json {\"code\":3,\"message\":\"Bad request\"}";
    if let Some(head) = line.strip_suffix(JSON) {
        return Some(vec![format!("{head} - <empty>")]);
    }
    // A HEAD answer has no body to show, only its type.
    let head = line.strip_suffix(" 500 application/json")?;
    line.starts_with("HEAD ")
        .then(|| vec![format!("{head} 500 -")])
}

/// README, "Where sockio differs from the Node.js server on the wire": a POST that overlaps
/// another's body.
const OVERLAPPING_POST: &str = "README \"Where sockio differs from the Node.js server\": the \
                                first of two overlapping POSTs is left to its body's timeout";

/// The reference's lines for sockio's in the overlapping POSTs case: the error body, and the
/// first POST's connection closed instead of left waiting for the rest of its body.
fn overlapping_post_as_reference(line: &str) -> Option<Vec<String>> {
    if line == "first POST -> no answer in time" {
        return Some(vec![
            "first POST -> connection closed without an answer".to_owned(),
        ]);
    }
    error_body_as_reference(line)
}

/// README, "Where sockio differs from the Node.js server on the wire": a second WebSocket.
const SECOND_WEBSOCKET: &str = "README \"Where sockio differs from the Node.js server\": a \
                                second WebSocket on a probing or upgraded session is \
                                refused with 400";

/// The reference's lines for sockio's refusal of a second WebSocket: it completes the handshake
/// and closes the WebSocket on its probe.
fn second_websocket_as_reference(line: &str) -> Option<Vec<String>> {
    (line == "second upgrade -> 400 text/html \"Bad request\"").then(|| {
        vec![
            "second upgrade -> 101".to_owned(),
            "> 2probe".to_owned(),
            "< close frame without a code".to_owned(),
        ]
    })
}

/// README, "Where sockio differs from the Node.js server on the wire", and PROTOCOL 1.8: a POST
/// over `max_http_buffer_size` gets 413 and the session stays; engine.io 6.6 closes it.
const PAYLOAD_TOO_LARGE: &str = "README \"Where sockio differs from the Node.js server\" and \
                                 PROTOCOL 1.8: after a 413 the session stays";

/// README, "Where sockio differs from the Node.js server on the wire", and PROTOCOL 1.10 and
/// 1.13 (the ack id is digits only, a CONNECT's payload an object): `40 1` is malformed.
const CONNECT_SPACE: &str = "README \"Where sockio differs from the Node.js server\" and \
                             PROTOCOL 1.10: `40 1` is malformed and closes the connection";

/// README, "Where sockio differs from the Node.js server on the wire": a namespace's DISCONNECT
/// and a packet for it that arrive together.
const DISCONNECT_THEN: &str = "README \"Where sockio differs from the Node.js server\": a \
                               namespace's DISCONNECT takes effect before the packet after it";

/// A client joined to `/` and `/custom` sends `together` at once (one POST, or WebSocket frames
/// in one write), waits for the CONNECT's answer if `together` has one (which ends the case when
/// the connection ends instead), then sends the sentinel.
fn disconnect_then(via: Via, together: &'static [&'static str]) -> Case {
    let name = via.name();
    let connect = together.contains(&Sentinel::ConnectCustom.packet());
    Case::new(
        format!(
            "DISCONNECT of a namespace and {} it together ({name})",
            if connect {
                "a CONNECT to"
            } else {
                "an EVENT to"
            }
        ),
        move |ports, t| {
            let mut client = Joined::open(ports, via, t)?;
            client.send(&[text(Sentinel::ConnectCustom.packet())], t)?;
            matched(client.collect(t, &auth_on_custom)?)?;
            match &mut client {
                Joined::Polling(session) => session.post(together.join("\x1e").as_bytes(), t)?,
                Joined::WebSocket(ws) => {
                    // In one write, so that the server reads the frames at once: sent one by one
                    // they may arrive in two reads, which the reference handles in two ticks.
                    let mut frames = Vec::new();
                    for packet in together {
                        t.push(format!("> {packet}"));
                        frames.extend(raw_frame(0x1, packet.as_bytes()));
                    }
                    let _ = ws.get_mut().write_all(&frames);
                }
            }
            if connect {
                matched(client.collect(t, &auth_on_custom)?)?;
            }
            client.sentinel(t)
        },
    )
}

/// The transcripts of [`disconnect_then`] up to what the two servers do differently.
fn disconnect_then_head(via: Via, together: &[&str]) -> Transcript {
    let mut t = opened(via);
    t.push(sent(via, "40"));
    t.push("< 40{\"sid\":\"<sid>\"}".to_owned());
    t.push("< 42[\"auth\",{}]".to_owned());
    t.push(sent(via, Sentinel::ConnectCustom.packet()));
    t.push("< 40/custom,{\"sid\":\"<sid>\"}".to_owned());
    t.push("< 42/custom,[\"auth\",{}]".to_owned());
    match via {
        Via::Polling => t.push(posted(&together.join("\x1e"))),
        Via::WebSocket => t.extend(together.iter().map(|packet| sent(via, packet))),
    }
    t
}

/// README, "Where sockio differs from the Node.js server on the wire": a CONNECT to a namespace
/// already joined.
const CONNECT_AGAIN: &str = "README \"Where sockio differs from the Node.js server\": a v5 \
                             client's CONNECT to a namespace it joined is ignored";

/// README, "Where sockio differs from the Node.js server on the wire": ack ids are kept exactly
/// up to 2^64 − 1, and a longer one is malformed.
const ACK_ID_RANGE: &str = "README \"Where sockio differs from the Node.js server\": an ack id \
                            is exact up to 2^64 - 1 and malformed past it";

/// README, "Where sockio differs from the Node.js server on the wire": malformed base64, and a
/// close packet over a WebSocket.
const ENGINE_PACKETS: &str = "README \"Where sockio differs from the Node.js server\": bad \
                              base64 closes the session, so does a close packet over a WebSocket";

/// Engine.IO packets at the raw servers that sockio takes otherwise, on purpose.
fn engine_packet_differences() -> Vec<Case> {
    let open = handshake_line("EIO=4&transport=polling", "text/plain", None, false);
    let session = format!("{EIO}?EIO=4&transport=polling&sid=x");
    let upgraded = vec![
        format!(
            "{} -> 101",
            label(
                "GET (upgrade)",
                &format!("{EIO}?EIO=4&transport=websocket"),
                b""
            )
        ),
        format!("< {}", open_packet("[]")),
        "> 1".to_owned(),
        "> 4after".to_owned(),
    ];
    vec![
        Case::new("engine.io: a bad base64 message", |ports, t| {
            let session = Polling::open(ports.engine, EIO, "EIO=4", t)?;
            session.post(b"bAQ!", t)?;
            session.post(b"4after", t)?;
            session.collect(t, &|p| p == "4after").map(drop)
        })
        .differs(
            ENGINE_PACKETS,
            vec![
                open.clone(),
                posted("bAQ!"),
                posted("4after"),
                "< bAQ==".to_owned(),
                "< 4after".to_owned(),
            ],
            vec![
                open,
                posted("bAQ!"),
                format!(
                    "{} -> 400 application/json {{\"code\":1,\"message\":\"Session ID unknown\"}}",
                    label("POST", &session, b"4after")
                ),
                "GET -> 400 application/json {\"code\":1,\"message\":\"Session ID unknown\"}"
                    .to_owned(),
            ],
        ),
        Case::new("engine.io: a close packet over a WebSocket", |ports, t| {
            let target = format!("{EIO}?EIO=4&transport=websocket");
            let mut ws = ws_upgrade(ports.engine, &target).map_err(|e| format!("upgrade: {e}"))?;
            t.push(format!("{} -> 101", label("GET (upgrade)", &target, b"")));
            matched(ws_collect(&mut ws, t, &|p| p.starts_with('0')))?;
            ws_send(&mut ws, "1", t);
            ws_send(&mut ws, "4after", t);
            ws_collect(&mut ws, t, &|p| p == "4after");
            Ok(())
        })
        .differs(
            ENGINE_PACKETS,
            with(&upgraded, &["< 4after".to_owned()]),
            with(&upgraded, &["< close frame without a code".to_owned()]),
        ),
    ]
}

/// SECURITY.md (request checks, "In the reference server's order"): "non-digit JSONP index →
/// 400 code 3". The Node.js server drops the non-digits (`polling-jsonp.ts`).
const JSONP_INDEX: &str = "SECURITY.md (request checks): a non-digit JSONP index gets 400 code 3";

fn documented_cases() -> Vec<Case> {
    let mut cases = vec![
        one_request(
            "JSONP handshake EIO=3",
            "GET",
            "EIO=3&transport=polling&j=0",
        )
        .differs(
            JSONP_TYPE,
            vec![handshake_line(
                "EIO=3&transport=polling&j=0",
                "text/plain",
                Some("0"),
                true,
            )],
            vec![handshake_line(
                "EIO=3&transport=polling&j=0",
                "text/javascript",
                Some("0"),
                true,
            )],
        ),
        one_request(
            "JSONP handshake EIO=4",
            "GET",
            "EIO=4&transport=polling&j=0",
        )
        .differs(
            JSONP_TYPE,
            vec![handshake_line(
                "EIO=4&transport=polling&j=0",
                "text/plain",
                Some("0"),
                false,
            )],
            vec![handshake_line(
                "EIO=4&transport=polling&j=0",
                "text/javascript",
                Some("0"),
                false,
            )],
        ),
        one_request(
            "JSONP with a non-digit index",
            "GET",
            "EIO=3&transport=polling&j=abc",
        )
        .differs(
            JSONP_INDEX,
            vec![handshake_line(
                "EIO=3&transport=polling&j=abc",
                "text/plain",
                Some(""),
                true,
            )],
            vec![format!(
                "{} -> 400 application/json {{\"code\":3,\"message\":\"Bad request\"}}",
                label("GET", &format!("{SIO}?EIO=3&transport=polling&j=abc"), b"")
            )],
        ),
    ];
    let oversized = sized(MAX_PAYLOAD + 1);
    let over_max_payload = sio(
        "message one byte over maxPayload",
        true,
        vec![text(oversized.clone())],
    );
    // Over a WebSocket both close the connection (1009).
    cases.push(over_max_payload.over(Via::WebSocket));
    let session = format!("{SIO}?EIO=4&transport=polling&sid=x");
    let joined = &sent_after_join(Via::Polling, &[], Sentinel::AckOnRoot)[..4];
    let too_large = |answer: &str| {
        format!(
            "{} -> 413 {answer}",
            label("POST", &session, oversized.as_bytes())
        )
    };
    let unknown_sid = "400 application/json {\"code\":1,\"message\":\"Session ID unknown\"}";
    cases.push(over_max_payload.over(Via::Polling).differs(
        PAYLOAD_TOO_LARGE,
        with(
            &joined.to_vec(),
            &[
                too_large("- <empty>"),
                format!(
                    "{} -> {unknown_sid}",
                    label("POST", &session, Sentinel::AckOnRoot.packet().as_bytes())
                ),
                format!("GET -> {unknown_sid}"),
            ],
        ),
        with(
            &joined.to_vec(),
            &[
                too_large("text/html \"payload too large\""),
                posted(Sentinel::AckOnRoot.packet()),
                "< 4399[\"sentinel\"]".to_owned(),
            ],
        ),
    ));
    // The reference reads an ack id as a JavaScript number: past 2^53 its answer carries another
    // id, past 10^21 one in exponent notation, which no client can match.
    const ACK_IDS: [(&str, &str, &str, Option<&str>); 2] = [
        (
            "an EVENT with an ack id past 2^53",
            "4212345678901234567890[\"message-with-ack\",1]",
            "< 4312345678901234567000[1]",
            Some("< 4312345678901234567890[1]"),
        ),
        (
            "an EVENT with an ack id past 2^64",
            "42123456789012345678901234567890[\"message-with-ack\",1]",
            "< 431.2345678901234568e+29[1]",
            // Malformed: the connection closes.
            None,
        ),
    ];
    for via in [Via::Polling, Via::WebSocket] {
        for (name, packet, reference, sockio) in ACK_IDS {
            let head = sent_after_join(via, &[packet], Sentinel::AckOnRoot);
            let sentinel = "< 4399[\"sentinel\"]".to_owned();
            let sockio = match sockio {
                Some(ack) => vec![ack.to_owned(), sentinel.clone()],
                None => vec![closed(via)],
            };
            cases.push(sio(name, true, vec![text(packet)]).over(via).differs(
                ACK_ID_RANGE,
                with(&head, &[reference.to_owned(), sentinel]),
                with(&head, &sockio),
            ));
        }
    }
    for via in [Via::Polling, Via::WebSocket] {
        // The reference handles a DISCONNECT a tick later (`client.ts` ondecoded), so a CONNECT
        // read with it finds the namespace still joined and closes the connection, and an EVENT
        // read with it reaches a socket already gone and is dropped.
        const RECONNECT: &[&str] = &["41/custom,", "40/custom,"];
        let head = disconnect_then_head(via, RECONNECT);
        cases.push(disconnect_then(via, RECONNECT).differs(
            DISCONNECT_THEN,
            with(&head, &[closed(via)]),
            with(
                &head,
                &[
                    "< 40/custom,{\"sid\":\"<sid>\"}".to_owned(),
                    "< 42/custom,[\"auth\",{}]".to_owned(),
                    sent(via, Sentinel::AckOnRoot.packet()),
                    "< 4399[\"sentinel\"]".to_owned(),
                ],
            ),
        ));
        const EVENT_AFTER: &[&str] = &["41/custom,", "42/custom,[\"message\",1]"];
        let head = with(
            &disconnect_then_head(via, EVENT_AFTER),
            &[sent(via, Sentinel::AckOnRoot.packet())],
        );
        cases.push(disconnect_then(via, EVENT_AFTER).differs(
            DISCONNECT_THEN,
            with(&head, &["< 4399[\"sentinel\"]".to_owned()]),
            with(&head, &[closed(via)]),
        ));
    }
    for via in [Via::Polling, Via::WebSocket] {
        let head = with(&opened(via), &[sent(via, "40 1")]);
        cases.push(
            sio(
                "CONNECT with a space and a number",
                false,
                vec![text("40 1")],
            )
            .wait_for(auth_on_root)
            .over(via)
            .differs(
                CONNECT_SPACE,
                with(
                    &head,
                    &[
                        "< 40{\"sid\":\"<sid>\"}".to_owned(),
                        "< 42[\"auth\",{}]".to_owned(),
                        sent(via, Sentinel::ConnectCustom.packet()),
                        "< 40/custom,{\"sid\":\"<sid>\"}".to_owned(),
                        "< 42/custom,[\"auth\",{}]".to_owned(),
                    ],
                ),
                with(&head, &[closed(via)]),
            ),
        );
    }
    for via in [Via::Polling, Via::WebSocket] {
        let head = sent_after_join(via, &["40"], Sentinel::AckOnRoot);
        cases.push(
            sio("CONNECT / twice", true, vec![text("40")])
                .over(via)
                .differs(
                    CONNECT_AGAIN,
                    with(&head, &[closed(via)]),
                    with(&head, &["< 4399[\"sentinel\"]".to_owned()]),
                ),
        );
    }
    for via in [Via::Polling, Via::WebSocket] {
        let head = sent_after_join(via, &["42"], Sentinel::AckOnRoot);
        cases.push(
            sio("EVENT without payload", true, vec![text("42")])
                .over(via)
                .differs(
                    NO_PAYLOAD,
                    with(&head, &["< 4399[\"sentinel\"]".to_owned()]),
                    with(&head, &[closed(via)]),
                ),
        );
        let deep = nested(127);
        let echo = format!(
            "42[\"message-back\",{}{}]",
            "[".repeat(127),
            "]".repeat(127)
        );
        let head = sent_after_join(via, &[&deep], Sentinel::AckOnRoot);
        cases.push(
            sio("EVENT nested 127 deep", true, vec![text(deep.clone())])
                .over(via)
                .differs(
                    NESTING,
                    with(
                        &head,
                        &[
                            format!("< {}", norm_packet(&echo)),
                            "< 4399[\"sentinel\"]".to_owned(),
                        ],
                    ),
                    with(&head, &[closed(via)]),
                ),
        );
    }
    cases
}

/// WebSocket sessions and the upgrade from long-polling.
fn websocket_cases() -> Vec<Case> {
    vec![
        Case::new("WebSocket without a polling session", |ports, t| {
            ws_session(ports.sio, t).map(drop)
        }),
        Case::new("WebSocket with an unknown sid", |ports, t| {
            let target = format!("{SIO}?EIO=4&transport=websocket&sid=nope");
            t.push(upgrade_answer(ws_upgrade(ports.sio, &target)));
            Ok(())
        }),
        Case::new(
            "upgrade: probe, noop to the held GET, upgrade",
            |ports, t| {
                let session = Polling::open(ports.sio, SIO, "EIO=4", t)?;
                let held = session.held_get()?;
                let mut ws = upgrade_of(&session, t)?;
                ws_send(&mut ws, "2probe", t);
                matched(ws_collect(&mut ws, t, &|p| p == "3probe"))?;
                read_held(held, t);
                ws_send(&mut ws, "5", t);
                // The CONNECT reply can only come over the WebSocket once it is the transport, so it
                // also orders the GET after the upgrade.
                ws_send(&mut ws, "40", t);
                matched(ws_collect(&mut ws, t, &auth_on_root))?;
                session.get(t)
            },
        ),
        Case::new("upgrade: 5 without a probe", |ports, t| {
            let session = Polling::open(ports.sio, SIO, "EIO=4", t)?;
            let held = session.held_get()?;
            let mut ws = upgrade_of(&session, t)?;
            ws_send(&mut ws, "5", t);
            // What the GET held over polling gets when polling ends without a probe before it.
            read_held(held, t);
            ws_send(&mut ws, "40", t);
            ws_collect(&mut ws, t, &auth_on_root);
            // Which transport the session kept.
            session.post(b"40/custom,", t)?;
            session.collect(t, &auth_on_custom).map(drop)
        }),
        Case::new("upgrade: a message before 5", |ports, t| {
            let session = Polling::open(ports.sio, SIO, "EIO=4", t)?;
            let mut ws = upgrade_of(&session, t)?;
            ws_send(&mut ws, "2probe", t);
            matched(ws_collect(&mut ws, t, &|p| p == "3probe"))?;
            ws_send(&mut ws, "40", t);
            ws_collect(&mut ws, t, &|_| false);
            // The session goes on over polling.
            session.post(b"40", t)?;
            session.collect(t, &auth_on_root).map(drop)
        }),
        Case::new(
            "upgrade: a second WebSocket while the first probes",
            |ports, t| {
                let session = Polling::open(ports.sio, SIO, "EIO=4", t)?;
                let mut ws = upgrade_of(&session, t)?;
                ws_send(&mut ws, "2probe", t);
                matched(ws_collect(&mut ws, t, &|p| p == "3probe"))?;
                let target = format!("{SIO}?EIO=4&transport=websocket&sid={}", session.sid);
                match ws_upgrade(ports.sio, &target) {
                    Ok(mut second) => {
                        t.push("second upgrade -> 101".to_owned());
                        ws_send(&mut second, "2probe", t);
                        ws_collect(&mut second, t, &|p| p == "3probe");
                    }
                    Err(refused) => t.push(format!("second upgrade -> {refused}")),
                }
                // The first one completes the upgrade.
                ws_send(&mut ws, "5", t);
                ws_send(&mut ws, Sentinel::ConnectRoot.packet(), t);
                ws_collect(&mut ws, t, &auth_on_root);
                Ok(())
            },
        )
        .rewritten(SECOND_WEBSOCKET, second_websocket_as_reference),
        Case::new(
            "upgrade: packets queued over polling arrive over the WebSocket",
            |ports, t| {
                let session = Polling::joined(ports.sio, "EIO=4", t)?;
                // Answered while no GET is held: the answer waits in the queue.
                session.post(b"42[\"message\",\"queued\"]", t)?;
                let mut ws = upgrade_of(&session, t)?;
                ws_send(&mut ws, "2probe", t);
                matched(ws_collect(&mut ws, t, &|p| p == "3probe"))?;
                ws_send(&mut ws, "5", t);
                matched(ws_collect(&mut ws, t, &|p| p.contains("\"queued\"")))?;
                ws_send(&mut ws, Sentinel::AckOnRoot.packet(), t);
                ws_collect(&mut ws, t, &|p| Sentinel::AckOnRoot.answered(p));
                Ok(())
            },
        ),
        Case::new("upgrade: a second WebSocket once upgraded", |ports, t| {
            let session = Polling::open(ports.sio, SIO, "EIO=4", t)?;
            let mut ws = upgrade_of(&session, t)?;
            ws_send(&mut ws, "2probe", t);
            matched(ws_collect(&mut ws, t, &|p| p == "3probe"))?;
            ws_send(&mut ws, "5", t);
            ws_send(&mut ws, "40", t);
            matched(ws_collect(&mut ws, t, &auth_on_root))?;
            let target = format!("{SIO}?EIO=4&transport=websocket&sid={}", session.sid);
            match ws_upgrade(ports.sio, &target) {
                Ok(mut second) => {
                    t.push("second upgrade -> 101".to_owned());
                    ws_send(&mut second, "2probe", t);
                    ws_collect(&mut second, t, &|p| p == "3probe");
                }
                Err(refused) => t.push(format!("second upgrade -> {refused}")),
            }
            // The first WebSocket lives on.
            ws_send(&mut ws, Sentinel::AckOnRoot.packet(), t);
            ws_collect(&mut ws, t, &|p| Sentinel::AckOnRoot.answered(p));
            Ok(())
        })
        .rewritten(SECOND_WEBSOCKET, second_websocket_as_reference),
        Case::new("upgrade with EIO=3 on a v4 session", |ports, t| {
            let session = Polling::open(ports.sio, SIO, "EIO=4", t)?;
            let target = format!("{SIO}?EIO=3&transport=websocket&sid={}", session.sid);
            match ws_upgrade(ports.sio, &target) {
                Ok(mut ws) => {
                    t.push("upgrade -> 101".to_owned());
                    ws_send(&mut ws, "2probe", t);
                    ws_collect(&mut ws, t, &|p| p == "3probe");
                }
                Err(refused) => t.push(format!("upgrade -> {refused}")),
            }
            Ok(())
        }),
        Case::new(
            "WebSocket: a probe on a WebSocket-only session",
            |ports, t| {
                let (mut ws, _) = ws_session(ports.sio, t)?;
                ws_send(&mut ws, "2probe", t);
                ws_collect(&mut ws, t, &|_| false);
                Ok(())
            },
        ),
        Case::new("WebSocket: invalid UTF-8 in a text frame", |ports, t| {
            let (mut ws, _) = ws_session(ports.sio, t)?;
            ws_send(&mut ws, "40", t);
            matched(ws_collect(&mut ws, t, &auth_on_root))?;
            t.push("> text frame 42[\"message\",\"\\xff\\xfe\"]".to_owned());
            let mut payload = b"42[\"message\",\"".to_vec();
            payload.extend_from_slice(&[0xff, 0xfe]);
            payload.extend_from_slice(b"\"]");
            let _ = ws.get_mut().write_all(&raw_frame(0x1, &payload));
            ws_collect(&mut ws, t, &|_| false);
            Ok(())
        }),
        Case::new(
            "WebSocket: an attachment as a b<base64> text frame",
            |ports, t| {
                let (mut ws, _) = ws_session(ports.sio, t)?;
                ws_send(&mut ws, "40", t);
                matched(ws_collect(&mut ws, t, &auth_on_root))?;
                ws_send(&mut ws, &format!("451-[\"message\",{}]", placeholder(0)), t);
                // PROTOCOL 1.5: a v4 text frame starting with `b` is a base64 binary message.
                ws_send(&mut ws, "bAQID", t);
                ws_send(&mut ws, Sentinel::AckOnRoot.packet(), t);
                ws_collect(&mut ws, t, &|p| Sentinel::AckOnRoot.answered(p));
                Ok(())
            },
        ),
    ]
}

/// A joined client, over either transport, for cases that answer what the server sent.
enum Joined {
    Polling(Polling),
    WebSocket(Box<Ws>),
}

impl Joined {
    /// A v4 session over `via`, with `/` joined (its greeting awaited).
    fn open(ports: Ports, via: Via, t: &mut Transcript) -> Result<Joined, String> {
        let mut joined = match via {
            Via::Polling => Joined::Polling(Polling::open(ports.sio, SIO, "EIO=4", t)?),
            Via::WebSocket => Joined::WebSocket(Box::new(ws_session(ports.sio, t)?.0)),
        };
        joined.send(&[text("40")], t)?;
        matched(joined.collect(t, &auth_on_root)?)?;
        Ok(joined)
    }

    /// Sends `messages`: in one POST, or one WebSocket message each.
    fn send(&mut self, messages: &[Msg], t: &mut Transcript) -> Result<(), String> {
        match self {
            Joined::Polling(session) => {
                let parts: Vec<String> = messages
                    .iter()
                    .map(|msg| match msg {
                        Msg::Text(text) => text.clone(),
                        Msg::Binary(bytes) => format!("b{}", base64(bytes)),
                    })
                    .collect();
                session.post(parts.join("\x1e").as_bytes(), t)
            }
            Joined::WebSocket(ws) => {
                for msg in messages {
                    match msg {
                        Msg::Text(text) => ws_send(ws, text, t),
                        Msg::Binary(bytes) => {
                            t.push(format!("> binary {}", hex(bytes)));
                            let _ = ws.send(Message::binary(bytes.clone()));
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Writes down what comes until `done` matches a packet (see [`Polling::collect`] and
    /// [`ws_collect`]).
    fn collect(
        &mut self,
        t: &mut Transcript,
        done: &dyn Fn(&str) -> bool,
    ) -> Result<Ended, String> {
        match self {
            Joined::Polling(session) => session.collect(t, done),
            Joined::WebSocket(ws) => Ok(ws_collect(ws, t, done)),
        }
    }

    /// Sends the `message-with-ack` sentinel and collects until its ack: what was sent before it
    /// has been handled, and the connection lives.
    fn sentinel(&mut self, t: &mut Transcript) -> Result<(), String> {
        self.send(&[text(Sentinel::AckOnRoot.packet())], t)?;
        self.collect(t, &|p| Sentinel::AckOnRoot.answered(p))
            .map(drop)
    }
}

/// The ack id of the server's emit of `event` on `/` (`42<id>["<event>",...]`), if `packet` is
/// it.
fn emit_ack_id<'a>(packet: &'a str, event: &str) -> Option<&'a str> {
    let rest = packet.strip_prefix("42")?;
    let (id, args) = rest.split_at(rest.find('[')?);
    (args.starts_with(&format!("[\"{event}\""))
        && !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_digit()))
    .then_some(id)
}

/// Collects until the server emits `event` with an ack id, and returns that id.
fn await_emit_ack_id(
    client: &mut Joined,
    event: &str,
    t: &mut Transcript,
) -> Result<String, String> {
    let id = std::cell::RefCell::new(None);
    matched(client.collect(t, &|p| {
        let found = emit_ack_id(p, event).map(str::to_owned);
        let matched = found.is_some();
        *id.borrow_mut() = found;
        matched
    })?)?;
    id.into_inner().ok_or_else(|| format!("no {event} ack id"))
}

/// Writes the server's ack id `id` down as `<id>` in `lines`, where the server's emit carries
/// it (`< 42<id>[`) and the client's acks answer it (`> 43<id>[`, `> 461-<id>[`, or the same
/// in a POST's body): the reference counts ack ids per namespace, sockio per socket, and either
/// is the client's to echo. Nothing else is touched, the server's own acks (`< 43…`) included.
fn hide_ack_id(lines: &mut [String], id: &str) {
    let emit = format!("< 42{id}[");
    let acks = [format!("43{id}["), format!("461-{id}[")];
    for line in lines {
        if line.starts_with(&emit) {
            *line = line.replacen(&emit, "< 42<id>[", 1);
        } else if let Some(body) = line.strip_prefix("> ").or_else(|| {
            line.starts_with("POST ")
                .then(|| line.split_once(" \"").map_or("", |(_, b)| b))
        }) {
            for (ack, hidden) in acks.iter().zip(["43<id>[", "461-<id>["]) {
                if body.starts_with(ack.as_str()) {
                    *line = line.replacen(ack.as_str(), hidden, 1);
                    break;
                }
            }
        }
    }
}

/// The profile's `server-ack`: the server emits `need-ack` with an ack id; the client answers it
/// with `answer` (made from that id), then once more with `again`, which the server no longer
/// waits for.
fn ack_of_server_emit(
    via: Via,
    answer: fn(&str) -> Vec<Msg>,
    again: fn(&str) -> Vec<Msg>,
) -> impl Fn(Ports, &mut Transcript) -> Result<(), String> + Send + Sync + 'static {
    move |ports, t| {
        let mut client = Joined::open(ports, via, t)?;
        let from = t.len();
        client.send(&[text("42[\"server-ack\"]")], t)?;
        let id = await_emit_ack_id(&mut client, "need-ack", t)?;
        client.send(&answer(&id), t)?;
        matched(client.collect(t, &|p| p.contains("\"got-ack\""))?)?;
        client.send(&again(&id), t)?;
        let ended = client.sentinel(t);
        hide_ack_id(&mut t[from..], &id);
        ended
    }
}

/// Socket.IO exchanges over each transport, after joining `/`: heartbeats the client should not
/// send, a disconnect by the server, a namespace's DISCONNECT and then (once handled) an EVENT
/// for it, a server call that times out and is answered late, acked events (binary, and on
/// `/custom`), rooms, and the client's acks of a server emit (text and binary, and a second ack
/// of the same id).
fn heartbeat_and_ack_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for via in [Via::Polling, Via::WebSocket] {
        let over = via.name();
        for (name, packet) in [
            ("a client ping (v4) after joining", "2"),
            ("a pong no ping asked for", "3"),
        ] {
            cases.push(Case::new(format!("{name} ({over})"), move |ports, t| {
                let mut client = Joined::open(ports, via, t)?;
                client.send(&[text(packet)], t)?;
                client.sentinel(t)
            }));
        }
        cases.push(Case::new(
            format!("the server disconnects the socket, then an EVENT ({over})"),
            move |ports, t| {
                let mut client = Joined::open(ports, via, t)?;
                client.send(&[text("42[\"disconnect-me\"]")], t)?;
                matched(client.collect(t, &|p| p == "41")?)?;
                client.sentinel(t)
            },
        ));
        cases.push(Case::new(
            format!("DISCONNECT of a namespace, then an EVENT to it ({over})"),
            move |ports, t| {
                let mut client = Joined::open(ports, via, t)?;
                client.send(&[text(Sentinel::ConnectCustom.packet())], t)?;
                matched(client.collect(t, &auth_on_custom)?)?;
                client.send(&[text("41/custom,")], t)?;
                // Once the DISCONNECT has been handled, `/custom` is a namespace not joined.
                client.sentinel(t)?;
                client.send(&[text("42/custom,[\"message\",1]")], t)?;
                client.sentinel(t)
            },
        ));
        cases.push(Case::new(
            format!("a server call that times out, answered late ({over})"),
            move |ports, t| {
                let mut client = Joined::open(ports, via, t)?;
                let from = t.len();
                client.send(&[text("421[\"call-client\",50]")], t)?;
                // The emit and the timeout's answer may come in one poll.
                let id = std::cell::RefCell::new(None);
                matched(client.collect(t, &|p| {
                    if let Some(found) = emit_ack_id(p, "server-call") {
                        *id.borrow_mut() = Some(found.to_owned());
                    }
                    p.starts_with("431[")
                })?)?;
                let id = id.into_inner().ok_or("no server-call ack id")?;
                client.send(&[text(format!("43{id}[\"late\"]"))], t)?;
                let ended = client.sentinel(t);
                hide_ack_id(&mut t[from..], &id);
                ended
            },
        ));
        cases.push(Case::new(
            format!("BINARY_EVENT with an ack id, acked with the attachment ({over})"),
            move |ports, t| {
                let mut client = Joined::open(ports, via, t)?;
                client.send(
                    &[
                        text(format!("451-7[\"message-with-ack\",{}]", placeholder(0))),
                        Msg::Binary(vec![9, 8, 7]),
                    ],
                    t,
                )?;
                matched(client.collect(t, &|p| p.starts_with("461-7["))?)?;
                client.sentinel(t)
            },
        ));
        cases.push(Case::new(
            format!("EVENT with an ack id on /custom ({over})"),
            move |ports, t| {
                let mut client = Joined::open(ports, via, t)?;
                client.send(&[text(Sentinel::ConnectCustom.packet())], t)?;
                matched(client.collect(t, &auth_on_custom)?)?;
                client.send(&[text("42/custom,5[\"message-with-ack\",\"x\",2]")], t)?;
                matched(client.collect(t, &|p| p.starts_with("43/custom,5["))?)?;
                client.sentinel(t)
            },
        ));
        cases.push(Case::new(
            format!("join a room, emit to it, leave it ({over})"),
            move |ports, t| {
                let mut client = Joined::open(ports, via, t)?;
                client.send(&[text("421[\"join\",\"r1\"]")], t)?;
                matched(client.collect(t, &|p| p.starts_with("431["))?)?;
                client.send(&[text("422[\"to-room\",\"r1\",\"hi\"]")], t)?;
                matched(client.collect(t, &|p| p.starts_with("432["))?)?;
                client.send(&[text("423[\"leave\",\"r1\"]")], t)?;
                matched(client.collect(t, &|p| p.starts_with("433["))?)?;
                client.send(&[text("424[\"to-room\",\"r1\",\"gone\"]")], t)?;
                matched(client.collect(t, &|p| p.starts_with("434["))?)?;
                client.sentinel(t)
            },
        ));
        for (name, packet) in [
            (
                "an acked EVENT without arguments",
                "427[\"message-with-ack\"]",
            ),
            (
                "an EVENT with an ack id of 2^32",
                "424294967296[\"message-with-ack\",1]",
            ),
        ] {
            cases.push(Case::new(format!("{name} ({over})"), move |ports, t| {
                let mut client = Joined::open(ports, via, t)?;
                client.send(&[text(packet)], t)?;
                client.sentinel(t)
            }));
        }
        cases.push(Case::new(
            format!("ACK of a server emit, twice ({over})"),
            ack_of_server_emit(
                via,
                |id| vec![text(format!("43{id}[\"fine\"]"))],
                |id| vec![text(format!("43{id}[\"again\"]"))],
            ),
        ));
        cases.push(Case::new(
            format!("BINARY_ACK of a server emit, twice ({over})"),
            ack_of_server_emit(
                via,
                |id| {
                    vec![
                        text(format!("461-{id}[{}]", placeholder(0))),
                        Msg::Binary(vec![1, 2, 3]),
                    ]
                },
                |id| {
                    vec![
                        text(format!("461-{id}[{}]", placeholder(0))),
                        Msg::Binary(vec![4, 5]),
                    ]
                },
            ),
        ));
    }
    cases
}

/// A v3 polling body (`<length>:<packet>` each; the packets here are ASCII, so the length in
/// UTF-16 units is the byte length).
fn v3_body(packets: &[&str]) -> String {
    packets.iter().map(|p| format!("{}:{p}", p.len())).collect()
}

/// Polls the raw Engine.IO session `session` `polls` times, one GET after another, writing
/// down each answer, pings included; a poll that gets a close packet or an error answer ends it.
/// After each ping, `pong` sends the pong when set.
fn poll_heartbeats(
    session: &Polling,
    polls: usize,
    pong: bool,
    t: &mut Transcript,
) -> Result<(), String> {
    for _ in 0..polls {
        let mut http = connect(session.port, ANSWER_WITHIN)?;
        let resp = match http.request("GET", &session.target(), &[], b"") {
            Ok(resp) => resp,
            Err(e) => {
                t.push(format!("GET -> {}", no_answer(&e)));
                return Ok(());
            }
        };
        t.push(format!("GET -> {}", answer(&resp)));
        let text = resp.text();
        if resp.status != 200 || text.split('\x1e').any(|p| p == "1") {
            return Ok(());
        }
        if pong && text.split('\x1e').any(|p| p == "2") {
            session.post(b"3", t)?;
        }
    }
    Ok(())
}

/// Reads WebSocket messages, pings included, until the connection ends or `messages` have come,
/// answering each ping (`2`) with a pong when `pong` is set.
fn ws_heartbeats(ws: &mut Ws, messages: usize, pong: bool, t: &mut Transcript) {
    let _ = ws.get_ref().set_read_timeout(Some(ANSWER_WITHIN));
    for _ in 0..messages {
        match ws.read() {
            Ok(Message::Text(text)) => {
                t.push(format!("< {}", norm_packet(text.as_str())));
                if pong && text.as_str() == "2" {
                    ws_send(ws, "3", t);
                }
            }
            Ok(Message::Close(frame)) => {
                t.push(match frame {
                    Some(frame) => format!("< close frame {}", u16::from(frame.code)),
                    None => "< close frame without a code".to_owned(),
                });
                return;
            }
            Ok(Message::Binary(bytes)) => t.push(format!("< binary {}", hex(&bytes))),
            Ok(_) => {}
            Err(e) if is_wait(&e) => {
                t.push(format!("(nothing more within {ANSWER_WITHIN:?})"));
                return;
            }
            Err(_) => {
                t.push("< connection closed without a close frame".to_owned());
                return;
            }
        }
    }
}

/// A poll with `Accept-Encoding: accept`, as a transcript line: the answer with its body decoded
/// by its `Content-Encoding` (HTTP's `deflate` is a zlib stream), which is written down
/// (compressed bytes differ between zlib builds and levels; what they decode to must not).
/// With `drop_pings`, a ping sharing the poll (the first one, on a slow machine) is left out.
fn poll_encoded(
    session: &Polling,
    accept: &str,
    drop_pings: bool,
    t: &mut Transcript,
) -> Result<(), String> {
    use std::io::Read;
    let mut http = connect(session.port, ANSWER_WITHIN)?;
    let label = format!("GET (Accept-Encoding: {accept})");
    let mut resp = match http.request(
        "GET",
        &session.target(),
        &[("Accept-Encoding", accept)],
        b"",
    ) {
        Ok(resp) => resp,
        Err(e) => {
            t.push(format!("{label} -> {}", no_answer(&e)));
            return Ok(());
        }
    };
    let encoding = resp.header("content-encoding").unwrap_or("-").to_owned();
    let mut decoded = Vec::new();
    let read = match encoding.as_str() {
        "gzip" => flate2::read::GzDecoder::new(&resp.body[..]).read_to_end(&mut decoded),
        "deflate" => flate2::read::ZlibDecoder::new(&resp.body[..]).read_to_end(&mut decoded),
        _ => Ok(0),
    };
    if encoding != "-" {
        read.map_err(|e| format!("{encoding} body: {e}"))?;
        resp.body = decoded;
    }
    if drop_pings {
        let text = resp.text();
        let kept: Vec<&str> = text.split('\x1e').filter(|p| *p != "2").collect();
        resp.body = kept.join("\x1e").into_bytes();
    }
    t.push(format!(
        "{label} -> {} [content-encoding: {encoding}]",
        answer(&resp)
    ));
    Ok(())
}

/// Polls answered compressed when asked and over the threshold (1 KiB on both servers), and
/// plain otherwise.
fn compression_cases() -> Vec<Case> {
    let big = format!("42[\"message\",\"{}\"]", "x".repeat(2000));
    let mut cases = Vec::new();
    for accept in ["gzip", "deflate", "gzip, deflate, br", "identity", "br"] {
        let big = big.clone();
        cases.push(Case::new(
            format!("compression: a large poll with Accept-Encoding: {accept}"),
            move |ports, t| {
                let session = Polling::joined(ports.sio, "EIO=4", t)?;
                session.post(big.as_bytes(), t)?;
                poll_encoded(&session, accept, true, t)
            },
        ));
    }
    cases.push(Case::new(
        "compression: a small poll with Accept-Encoding: gzip",
        |ports, t| {
            let session = Polling::open(ports.sio, SIO, "EIO=4", t)?;
            // Held until the first ping: two bytes.
            session.post(b"6", t)?;
            poll_encoded(&session, "gzip", false, t)
        },
    ));
    cases
}

/// README, "Where sockio differs from the Node.js server on the wire": a preflight lists the
/// methods a session takes.
const PREFLIGHT_METHODS: &str = "README \"Where sockio differs from the Node.js server\": a \
                                 preflight lists GET, POST and OPTIONS, not the cors defaults";

/// The reference's line for sockio's answer to a preflight: the `cors` middleware's default
/// methods instead of the ones an Engine.IO session takes.
fn preflight_methods_as_reference(line: &str) -> Option<Vec<String>> {
    const SOCKIO: &str = "access-control-allow-methods: get,options,post";
    line.contains(SOCKIO).then(|| {
        vec![line.replace(
            SOCKIO,
            "access-control-allow-methods: delete,get,head,patch,post,put",
        )]
    })
}

/// An origin other than the servers' own: both profiles allow any origin, with credentials.
const ORIGIN: (&str, &str) = ("Origin", "http://example.com:8080");

/// Cross-origin requests, with the CORS headers of every answer written down: a preflight, the
/// handshake, a POST and a GET on the session, an error answer.
fn cors_cases() -> Vec<Case> {
    vec![
        Case::new("CORS: preflight of a POST", |ports, t| {
            let session = Polling::open(ports.sio, SIO, "EIO=4", t)?;
            t.push(exchange_cors(
                ports.sio,
                "OPTIONS",
                &session.target(),
                &[
                    ORIGIN,
                    ("Access-Control-Request-Method", "POST"),
                    ("Access-Control-Request-Headers", "content-type"),
                ],
                b"",
            )?);
            Ok(())
        })
        .rewritten(PREFLIGHT_METHODS, preflight_methods_as_reference),
        Case::new(
            "CORS: handshake, POST and GET from another origin",
            |ports, t| {
                let target = format!("{SIO}?EIO=4&transport=polling");
                let mut http = connect(ports.sio, ANSWER_WITHIN)?;
                let resp = http
                    .request("GET", &target, &[ORIGIN], b"")
                    .map_err(|e| format!("handshake: {}", no_answer(&e)))?;
                t.push(format!(
                    "{} -> {} [{}]",
                    label("GET", &target, b""),
                    answer(&resp),
                    cors_headers(&resp)
                ));
                let sid = body_packets(&resp.text())
                    .first()
                    .and_then(|open| open.strip_prefix('0'))
                    .and_then(|json| serde_json::from_str::<Value>(json).ok())
                    .and_then(|open| open["sid"].as_str().map(str::to_owned))
                    .ok_or("no session")?;
                let session = format!("{target}&sid={sid}");
                t.push(exchange_cors(
                    ports.sio,
                    "POST",
                    &session,
                    &[ORIGIN, ("Content-Type", "text/plain;charset=UTF-8")],
                    b"6",
                )?);
                // Held until the first ping, on both sides.
                t.push(exchange_cors(ports.sio, "GET", &session, &[ORIGIN], b"")?);
                Ok(())
            },
        ),
        Case::new("CORS: an unknown sid from another origin", |ports, t| {
            let target = format!("{SIO}?EIO=4&transport=polling&sid=nope");
            t.push(exchange_cors(ports.sio, "GET", &target, &[ORIGIN], b"")?);
            Ok(())
        }),
    ]
}

/// The heartbeat at the raw Engine.IO servers with [`HEARTBEAT_TIMEOUT`]: a client that answers
/// its pings keeps its session; one that does not loses it once the timeout has passed.
fn heartbeat_timeout_cases() -> Vec<Case> {
    vec![
        Case::new(
            "heartbeat: a polling client that answers pings",
            |ports, t| {
                let session = Polling::open(ports.heartbeat, EIO, "EIO=4", t)?;
                poll_heartbeats(&session, 3, true, t)?;
                session.post(b"4still here", t)?;
                // Pings aside, which may come first on a slow machine.
                session.collect(t, &|p| p == "4still here").map(drop)
            },
        ),
        Case::new(
            "heartbeat: a polling client that never pongs",
            |ports, t| {
                let session = Polling::open(ports.heartbeat, EIO, "EIO=4", t)?;
                poll_heartbeats(&session, 3, false, t)
            },
        ),
        Case::new(
            "heartbeat: a WebSocket client that answers pings",
            |ports, t| {
                let target = format!("{EIO}?EIO=4&transport=websocket");
                let mut ws =
                    ws_upgrade(ports.heartbeat, &target).map_err(|e| format!("upgrade: {e}"))?;
                t.push(format!("{} -> 101", label("GET (upgrade)", &target, b"")));
                ws_heartbeats(&mut ws, 4, true, t);
                ws_send(&mut ws, "4still here", t);
                ws_collect(&mut ws, t, &|p| p == "4still here");
                Ok(())
            },
        ),
        Case::new(
            "heartbeat: a WebSocket client that never pongs",
            |ports, t| {
                let target = format!("{EIO}?EIO=4&transport=websocket");
                let mut ws =
                    ws_upgrade(ports.heartbeat, &target).map_err(|e| format!("upgrade: {e}"))?;
                t.push(format!("{} -> 101", label("GET (upgrade)", &target, b"")));
                ws_heartbeats(&mut ws, 4, false, t);
                Ok(())
            },
        ),
    ]
}

/// Repeats `step` once every [`PING_INTERVAL`], as a client keeping its heartbeat (or its
/// traffic) up would, until [`KEPT_UP_FOR`] has passed or a step's wait ends otherwise than on
/// what it waited for. Only how that went is written down: at which step a session that ends
/// ends depends on the timers' phase, what ended it does not.
fn keep_up(
    t: &mut Transcript,
    what: &str,
    mut step: impl FnMut(&mut Transcript) -> Result<Ended, String>,
) -> Result<(), String> {
    let started = Instant::now();
    while started.elapsed() < KEPT_UP_FOR {
        std::thread::sleep(PING_INTERVAL);
        let mut steps = Transcript::new();
        let ended = step(&mut steps)?;
        if ended != Ended::Matched {
            t.push(format!(
                "({what} every {PING_INTERVAL:?}: ended within {KEPT_UP_FOR:?}, on {})",
                steps.last().map_or("nothing", String::as_str)
            ));
            return Ok(());
        }
    }
    t.push(format!(
        "({what} every {PING_INTERVAL:?}: each answered for {KEPT_UP_FOR:?})"
    ));
    Ok(())
}

/// Engine.IO 3 heartbeats (the client pings, the server answers) and upgrade timeouts, at the
/// socket-io servers with [`TIMEOUTS_PING_TIMEOUT`] and [`UPGRADE_TIMEOUT`].
fn timeout_cases() -> Vec<Case> {
    let mut cases = vec![
        Case::new("v3 heartbeat: a polling client that pings", |ports, t| {
            let session = Polling::joined(ports.timeouts, "EIO=3", t)?;
            keep_up(t, "a ping", |steps| {
                session.post(v3_body(&["2"]).as_bytes(), steps)?;
                session.collect(steps, &|p| p == "3")
            })?;
            session.post(v3_body(&[Sentinel::AckOnRoot.packet()]).as_bytes(), t)?;
            session
                .collect(t, &|p| Sentinel::AckOnRoot.answered(p))
                .map(drop)
        }),
        Case::new(
            "v3 heartbeat: a polling client that sends events, never a ping",
            |ports, t| {
                let session = Polling::joined(ports.timeouts, "EIO=3", t)?;
                keep_up(t, "an acked event", |steps| {
                    session.post(v3_body(&[Sentinel::AckOnRoot.packet()]).as_bytes(), steps)?;
                    session.collect(steps, &|p| Sentinel::AckOnRoot.answered(p))
                })
            },
        ),
        Case::new(
            "v3 heartbeat: a polling client that never pings",
            |ports, t| {
                let session = Polling::joined(ports.timeouts, "EIO=3", t)?;
                session.collect(t, &|_| false).map(drop)
            },
        ),
        Case::new("v3 heartbeat: a WebSocket client that pings", |ports, t| {
            let mut ws = v3_ws_joined(ports.timeouts, t)?;
            keep_up(t, "a ping", |steps| {
                ws_send(&mut ws, "2", steps);
                Ok(ws_collect(&mut ws, steps, &|p| p == "3"))
            })?;
            v3_ws_sentinel(&mut ws, t);
            Ok(())
        }),
        Case::new(
            "v3 heartbeat: a WebSocket client that never pings",
            |ports, t| {
                let mut ws = v3_ws_joined(ports.timeouts, t)?;
                ws_collect(&mut ws, t, &|_| false);
                Ok(())
            },
        ),
    ];
    for eio in ["EIO=4", "EIO=3"] {
        cases.push(Case::new(
            format!("upgrade timeout: a probe, then no upgrade packet ({eio})"),
            move |ports, t| {
                let session = Polling::joined(ports.timeouts, eio, t)?;
                let mut ws = upgrade_of(&session, t)?;
                ws_send(&mut ws, "2probe", t);
                matched(ws_collect(&mut ws, t, &|p| p == "3probe"))?;
                ws_collect(&mut ws, t, &|_| false);
                sentinel_over_polling(&session, t)
            },
        ));
        cases.push(Case::new(
            format!("upgrade timeout: a WebSocket that never probes ({eio})"),
            move |ports, t| {
                let session = Polling::joined(ports.timeouts, eio, t)?;
                let mut ws = upgrade_of(&session, t)?;
                ws_collect(&mut ws, t, &|_| false);
                sentinel_over_polling(&session, t)
            },
        ));
    }
    cases
}

/// The sentinel over polling, once a session's WebSocket is gone: the session goes on there.
fn sentinel_over_polling(session: &Polling, t: &mut Transcript) -> Result<(), String> {
    let sentinel = Sentinel::AckOnRoot.packet();
    if session.eio == "EIO=3" {
        session.post(v3_body(&[sentinel]).as_bytes(), t)?;
    } else {
        session.post(sentinel.as_bytes(), t)?;
    }
    session
        .collect(t, &|p| Sentinel::AckOnRoot.answered(p))
        .map(drop)
}

/// A v3 WebSocket session (socket.io-client 2.x's protocol) with its implicit CONNECT to `/`
/// and the greeting awaited.
fn v3_ws_joined(port: u16, t: &mut Transcript) -> Result<Ws, String> {
    let target = format!("{SIO}?EIO=3&transport=websocket");
    let mut ws = ws_upgrade(port, &target).map_err(|refused| format!("upgrade: {refused}"))?;
    t.push(format!("{} -> 101", label("GET (upgrade)", &target, b"")));
    matched(ws_collect(&mut ws, t, &auth_on_root))?;
    Ok(ws)
}

/// Sends the sentinel on a v3 WebSocket and writes down what comes until its ack.
fn v3_ws_sentinel(ws: &mut Ws, t: &mut Transcript) {
    ws_send(ws, Sentinel::AckOnRoot.packet(), t);
    ws_collect(ws, t, &|p| Sentinel::AckOnRoot.answered(p));
}

/// A v3 binary (XHR2) payload: each packet as a type byte (0 text, 1 binary), its length as one
/// byte per decimal digit, 0xFF, then the packet (a binary one starting with its Engine.IO type).
fn v3_binary_body(packets: &[(bool, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (binary, packet) in packets {
        body.push(u8::from(*binary));
        body.extend(packet.len().to_string().bytes().map(|digit| digit - b'0'));
        body.push(0xFF);
        body.extend_from_slice(packet);
    }
    body
}

/// Engine.IO 3 over a WebSocket, its upgrade, and its binary payloads over polling.
fn v3_transport_cases() -> Vec<Case> {
    vec![
        Case::new("v3: CONNECT to /custom with a query", |ports, t| {
            let mut ws = v3_ws_joined(ports.sio, t)?;
            ws_send(&mut ws, "40/custom?token=abc,", t);
            matched(ws_collect(&mut ws, t, &auth_on_custom))?;
            ws_send(&mut ws, "42/custom,3[\"message-with-ack\",\"x\"]", t);
            matched(ws_collect(&mut ws, t, &|p| p.starts_with("43/custom,3[")))?;
            v3_ws_sentinel(&mut ws, t);
            Ok(())
        }),
        Case::new("v3: CONNECT to a namespace not accepted", |ports, t| {
            let mut ws = v3_ws_joined(ports.sio, t)?;
            ws_send(&mut ws, "40/nope,", t);
            matched(ws_collect(&mut ws, t, &|p| p.starts_with("44/nope,")))?;
            v3_ws_sentinel(&mut ws, t);
            Ok(())
        }),
        Case::new("v3: DISCONNECT of /", |ports, t| {
            let mut ws = v3_ws_joined(ports.sio, t)?;
            ws_send(&mut ws, "41", t);
            // Once an answer on another namespace shows the DISCONNECT handled, `/` is a
            // namespace not joined.
            ws_send(&mut ws, "40/custom,", t);
            matched(ws_collect(&mut ws, t, &auth_on_custom))?;
            v3_ws_sentinel(&mut ws, t);
            Ok(())
        }),
        Case::new("v3: BINARY_EVENT over a WebSocket", |ports, t| {
            let mut ws = v3_ws_joined(ports.sio, t)?;
            ws_send(&mut ws, &format!("451-[\"message\",{}]", placeholder(0)), t);
            // A v3 binary frame starts with the Engine.IO packet type, 4 (message).
            t.push("> binary 04010203".to_owned());
            let _ = ws.send(Message::binary(vec![4, 1, 2, 3]));
            matched(ws_collect(&mut ws, t, &|p| {
                p.starts_with("451-[\"message-back\"")
            }))?;
            v3_ws_sentinel(&mut ws, t);
            Ok(())
        }),
        Case::new("v3: a WebSocket session, a client ping", |ports, t| {
            let target = format!("{SIO}?EIO=3&transport=websocket");
            let mut ws =
                ws_upgrade(ports.sio, &target).map_err(|refused| format!("upgrade: {refused}"))?;
            t.push(format!("{} -> 101", label("GET (upgrade)", &target, b"")));
            matched(ws_collect(&mut ws, t, &auth_on_root))?;
            ws_send(&mut ws, "2", t);
            matched(ws_collect(&mut ws, t, &|p| p == "3"))?;
            ws_send(&mut ws, Sentinel::AckOnRoot.packet(), t);
            ws_collect(&mut ws, t, &|p| Sentinel::AckOnRoot.answered(p));
            Ok(())
        }),
        Case::new("v3: upgrade with a probe", |ports, t| {
            let session = Polling::joined(ports.sio, "EIO=3", t)?;
            let held = session.held_get()?;
            let mut ws = upgrade_of(&session, t)?;
            ws_send(&mut ws, "2probe", t);
            matched(ws_collect(&mut ws, t, &|p| p == "3probe"))?;
            read_held(held, t);
            ws_send(&mut ws, "5", t);
            ws_send(&mut ws, Sentinel::AckOnRoot.packet(), t);
            ws_collect(&mut ws, t, &|p| Sentinel::AckOnRoot.answered(p));
            session.get(t)
        }),
        Case::new("v3: a client ping on the probing WebSocket", |ports, t| {
            let session = Polling::joined(ports.sio, "EIO=3", t)?;
            let mut ws = upgrade_of(&session, t)?;
            ws_send(&mut ws, "2probe", t);
            matched(ws_collect(&mut ws, t, &|p| p == "3probe"))?;
            ws_send(&mut ws, "2", t);
            ws_collect(&mut ws, t, &|_| false);
            // Which transport the session kept.
            sentinel_over_polling(&session, t)
        }),
        Case::new("JSONP: a v3 session, a form POST and polls", |ports, t| {
            let session = Polling::joined(ports.sio, "EIO=3&j=0", t)?;
            // Two packets, neither answered but by the sentinel's ack: answers to several
            // packets may come in either order.
            let payload = v3_body(&["6", Sentinel::AckOnRoot.packet()]);
            let form = format!("d={}", form_encode(&payload));
            t.push(exchange(
                ports.sio,
                "POST",
                &session.target(),
                &[("Content-Type", "application/x-www-form-urlencoded")],
                form.as_bytes(),
            )?);
            session
                .collect(t, &|p| Sentinel::AckOnRoot.answered(p))
                .map(drop)
        })
        .rewritten(JSONP_TYPE, jsonp_type_as_reference),
        Case::new("v3: BINARY_EVENT echoed with b64=1", |ports, t| {
            let session = Polling::joined(ports.sio, "EIO=3&b64=1", t)?;
            let event = format!("451-[\"message\",{}]", placeholder(0));
            session.post(v3_body(&[&event, "b4AQID"]).as_bytes(), t)?;
            session.post(v3_body(&[Sentinel::AckOnRoot.packet()]).as_bytes(), t)?;
            session
                .collect(t, &|p| Sentinel::AckOnRoot.answered(p))
                .map(drop)
        }),
        Case::new("v3: BINARY_EVENT posted as a binary payload", |ports, t| {
            let session = Polling::joined(ports.sio, "EIO=3", t)?;
            let event = format!("451-[\"message\",{}]", placeholder(0));
            let body = v3_binary_body(&[(false, event.as_bytes()), (true, &[4, 1, 2, 3])]);
            t.push(exchange(
                ports.sio,
                "POST",
                &session.target(),
                &[("Content-Type", "application/octet-stream")],
                &body,
            )?);
            // One poll: the echo as one binary payload.
            session.get(t)
        }),
        Case::new("v3: BINARY_EVENT echoed as a binary payload", |ports, t| {
            let session = Polling::joined(ports.sio, "EIO=3", t)?;
            let event = format!("451-[\"message\",{}]", placeholder(0));
            session.post(v3_body(&[&event, "b4AQID"]).as_bytes(), t)?;
            // One poll: a v3 client that can take binary gets the echo as one binary payload.
            session.get(t)
        }),
    ]
}

/// An upgrade's answer as a transcript line.
fn upgrade_answer(upgrade: Result<Ws, String>) -> String {
    match upgrade {
        Ok(_) => "upgrade -> 101".to_owned(),
        Err(refused) => format!("upgrade -> {refused}"),
    }
}

/// Upgrades `session` to a WebSocket, writing down the answer; a refusal ends the case.
fn upgrade_of(session: &Polling, t: &mut Transcript) -> Result<Ws, String> {
    let target = format!(
        "{}?{}&transport=websocket&sid={}",
        session.path, session.eio, session.sid
    );
    match ws_upgrade(session.port, &target) {
        Ok(ws) => {
            t.push("upgrade -> 101".to_owned());
            Ok(ws)
        }
        Err(refused) => Err(format!("upgrade -> {refused}")),
    }
}

fn all_cases() -> Vec<Case> {
    let mut cases = engine_cases();
    cases.extend(polling_cases());
    cases.extend(socket_io_cases());
    cases.extend(websocket_cases());
    cases.extend(heartbeat_and_ack_cases());
    cases.extend(v3_transport_cases());
    cases.extend(heartbeat_timeout_cases());
    cases.extend(timeout_cases());
    cases.extend(cors_cases());
    cases.extend(compression_cases());
    cases.extend(engine_packet_differences());
    cases.extend(documented_cases());
    cases
}

// ------------------------------------------------------------------------------------------------
// The comparison

/// Runs every case against the reference and against `runtime` at once (each side's cases one
/// after another), stops the servers, and fails with the cases that did not give what they must.
/// Every transcript is printed with `SOCKIO_DIFF_VERBOSE=1`, the failed ones always.
fn compare(runtime: &str) {
    let started = Instant::now();
    let cases = all_cases();
    let reference = Reference::start();
    let sockio = Sockio::start(runtime);
    let (reference_ports, sockio_ports) = (reference.ports(), sockio.ports());
    let run_all = |ports: Ports| -> Vec<Transcript> {
        cases.iter().map(|case| case.transcript(ports)).collect()
    };
    let (on_reference, on_sockio) = std::thread::scope(|scope| {
        let on_reference = scope.spawn(|| run_all(reference_ports));
        let on_sockio = run_all(sockio_ports);
        (
            on_reference.join().expect("the reference side's cases"),
            on_sockio,
        )
    });
    drop((reference, sockio));
    let verbose = std::env::var_os("SOCKIO_DIFF_VERBOSE").is_some();
    let mut failures = Vec::new();
    for ((case, node), ours) in cases.iter().zip(&on_reference).zip(&on_sockio) {
        let failed = match &case.expect {
            Expect::Same => node != ours,
            Expect::Differs {
                reference, sockio, ..
            } => node != reference || ours != sockio,
            Expect::Rewritten { rewrite, .. } => {
                let (ours, replaced) = rewritten(ours, *rewrite);
                !replaced || *node != ours
            }
        };
        if failed || verbose {
            println!("{}", report(case, failed, node, runtime, ours));
        }
        if failed {
            failures.push(case.name.clone());
        }
    }
    let count = |kind: fn(&Expect) -> bool| cases.iter().filter(|c| kind(&c.expect)).count();
    println!(
        "[{runtime}] {} cases ({} answered the same, {} differing with both answers held, {} \
         differing in a few rewritten lines), {} failed, in {:.1?}",
        cases.len(),
        count(|e| matches!(e, Expect::Same)),
        count(|e| matches!(e, Expect::Differs { .. })),
        count(|e| matches!(e, Expect::Rewritten { .. })),
        failures.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "[{runtime}] {} of {} cases answered otherwise than they must (transcripts above):\n  {}",
        failures.len(),
        cases.len(),
        failures.join("\n  ")
    );
}

/// A case's two transcripts (and, when a written-down difference failed, what was expected).
fn report(
    case: &Case,
    failed: bool,
    node: &Transcript,
    runtime: &str,
    ours: &Transcript,
) -> String {
    let mut out = format!(
        "--- {} [{}]{}\n  reference:\n",
        case.name,
        if failed { "FAILED" } else { "ok" },
        match &case.expect {
            Expect::Same => String::new(),
            Expect::Differs { why, .. } | Expect::Rewritten { why, .. } => {
                format!(" (documented difference: {why})")
            }
        }
    );
    for line in node {
        out.push_str(&format!("    {line}\n"));
    }
    out.push_str(&format!("  sockio ({runtime}):\n"));
    for line in ours {
        out.push_str(&format!("    {line}\n"));
    }
    if failed {
        match &case.expect {
            Expect::Same => {}
            Expect::Differs {
                reference, sockio, ..
            } => out.push_str(&format!(
                "  expected reference: {reference:#?}\n  expected sockio: {sockio:#?}\n"
            )),
            Expect::Rewritten { rewrite, .. } => {
                let (expected, replaced) = rewritten(ours, *rewrite);
                out.push_str(&format!(
                    "  sockio rewritten (replaced any: {replaced}), expected to be the \
                     reference's: {expected:#?}\n"
                ));
            }
        }
    }
    out
}

#[test]
fn tokio_answers_as_the_reference_server() {
    compare("tokio");
}

#[test]
fn smol_answers_as_the_reference_server() {
    compare("smol");
}

#[test]
fn threads_answers_as_the_reference_server() {
    compare("threads");
}
