//! Raw HTTP/1.1 and WebSocket plumbing for the hostile-client suite: requests are written as bytes
//! so that anything, valid or not, can be sent.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

/// How long any single read may block before the suite calls the server stalled.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP response as read off the wire.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `{"code","message"}` body of an Engine.IO error response.
    pub fn error_code(&self) -> Option<(i64, String)> {
        let value: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        Some((
            value["code"].as_i64()?,
            value["message"].as_str()?.to_owned(),
        ))
    }

    /// Checks an Engine.IO error answer: this status, this code, a JSON content type.
    pub fn expect_error(&self, status: u16, code: i64) -> Result<(), String> {
        let content_type = self.header("content-type").unwrap_or("");
        match self.error_code() {
            Some((c, _)) if self.status == status && c == code && content_type.contains("json") => {
                Ok(())
            }
            _ => Err(format!(
                "expected {status} with code {code} as JSON, got {} ({content_type}) {:?}",
                self.status,
                self.text()
            )),
        }
    }

    /// The Engine.IO v4 packets of a polling body.
    pub fn packets(&self) -> Vec<String> {
        self.text().split('\x1e').map(str::to_owned).collect()
    }
}

/// One keep-alive HTTP connection.
pub struct Http {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Http {
    pub fn connect(port: u16) -> io::Result<Http> {
        Http::from_stream(TcpStream::connect(("127.0.0.1", port))?)
    }

    pub fn from_stream(stream: TcpStream) -> io::Result<Http> {
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Http {
            stream,
            buf: Vec::new(),
        })
    }

    /// Writes a request with `Host`, `Content-Length` (when there is a body) and `extra` headers.
    pub fn send(
        &mut self,
        method: &str,
        target: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<()> {
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (name, value) in extra {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut all = head.into_bytes();
        all.extend_from_slice(body);
        self.stream.write_all(&all)
    }

    pub fn request(
        &mut self,
        method: &str,
        target: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Resp> {
        self.send(method, target, extra, body)?;
        self.read_response()
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Reads one response (Content-Length or chunked body).
    pub fn read_response(&mut self) -> io::Result<Resp> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        self.buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let body = if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            while self.buf.len() < len {
                self.fill()?;
            }
            self.buf.drain(..len).collect()
        } else if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            let mut body = Vec::new();
            loop {
                let line_end = loop {
                    if let Some(i) = find(&self.buf, b"\r\n") {
                        break i;
                    }
                    self.fill()?;
                };
                let size_text = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
                let size =
                    usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|_| io::Error::other(format!("bad chunk size {size_text:?}")))?;
                self.buf.drain(..line_end + 2);
                while self.buf.len() < size + 2 {
                    self.fill()?;
                }
                body.extend(self.buf.drain(..size));
                self.buf.drain(..2);
                if size == 0 {
                    break body;
                }
            }
        } else if status == 101 || status == 204 || status == 304 {
            Vec::new()
        } else {
            // Until the server closes.
            loop {
                match self.fill() {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(e),
                }
            }
            std::mem::take(&mut self.buf)
        };
        Ok(Resp {
            status,
            headers,
            body,
        })
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One request on a fresh connection.
pub fn request(
    port: u16,
    method: &str,
    target: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Result<Resp, String> {
    let mut http = Http::connect(port).map_err(|e| format!("connect: {e}"))?;
    http.request(method, target, extra, body)
        .map_err(|e| format!("{method} {target}: {e}"))
}

pub const POLL: &str = "/socket.io/?EIO=4&transport=polling";

/// The sid of an open packet `0{"sid":...}`.
pub fn sid_of_open(packet: &str) -> Result<String, String> {
    let json = packet
        .strip_prefix('0')
        .ok_or_else(|| format!("not an open packet: {packet:?}"))?;
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("open packet {packet:?}: {e}"))?;
    value["sid"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no sid in {packet:?}"))
}

/// A polling handshake on `http`; returns the sid.
pub fn handshake_on(http: &mut Http) -> Result<String, String> {
    let resp = http
        .request("GET", POLL, &[], b"")
        .map_err(|e| format!("handshake: {e}"))?;
    if resp.status != 200 {
        return Err(format!("handshake: {} {:?}", resp.status, resp.text()));
    }
    sid_of_open(&resp.text())
}

pub fn handshake(port: u16) -> Result<String, String> {
    let mut http = Http::connect(port).map_err(|e| format!("connect: {e}"))?;
    handshake_on(&mut http)
}

pub fn post(port: u16, sid: &str, body: &[u8]) -> Result<Resp, String> {
    request(
        port,
        "POST",
        &format!("{POLL}&sid={sid}"),
        &[("Content-Type", "text/plain;charset=UTF-8")],
        body,
    )
}

pub fn get(port: u16, sid: &str) -> Result<Resp, String> {
    request(port, "GET", &format!("{POLL}&sid={sid}"), &[], b"")
}

/// A polling session joined to `/`: handshake, `40`, and the poll that brings `40{"sid":..}`.
pub fn sio_polling(port: u16) -> Result<String, String> {
    let sid = handshake(port)?;
    let resp = post(port, &sid, b"40")?;
    if resp.status != 200 {
        return Err(format!("POST 40: {} {:?}", resp.status, resp.text()));
    }
    let resp = get(port, &sid)?;
    if !resp.packets().iter().any(|p| p.starts_with("40{")) {
        return Err(format!("no CONNECT reply: {:?}", resp.text()));
    }
    Ok(sid)
}

/// Whether the polling session `sid` is over: a GET gets 400 code 1 ("Session ID unknown") or
/// the close packet. `Ok(false)` when the GET brought anything else (the session lives).
pub fn polling_closed(port: u16, sid: &str) -> Result<bool, String> {
    // The close packet comes alone, in the poll after what was queued before it.
    for _ in 0..2 {
        let resp = get(port, sid)?;
        if resp.status == 400 {
            resp.expect_error(400, 1)?;
            return Ok(true);
        }
        if resp.status != 200 {
            return Err(format!("GET: {} {:?}", resp.status, resp.text()));
        }
        let packets = resp.packets();
        if packets.iter().any(|p| p == "1") {
            return Ok(true);
        }
        if packets.iter().any(|p| p == "2") {
            return Ok(false);
        }
    }
    Ok(false)
}

pub type Ws = WebSocket<TcpStream>;

/// Opens a WebSocket at `/socket.io/?EIO=4&transport=websocket<query>` with extra headers.
pub fn ws_open(port: u16, query: &str, headers: &[(&str, &str)]) -> Result<Ws, String> {
    ws_open_eio(port, 4, query, headers)
}

/// Opens a WebSocket at `/socket.io/?EIO=<eio>&transport=websocket<query>` with extra headers.
pub fn ws_open_eio(
    port: u16,
    eio: u8,
    query: &str,
    headers: &[(&str, &str)],
) -> Result<Ws, String> {
    let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO={eio}&transport=websocket{query}");
    let mut request = tungstenite::client::IntoClientRequest::into_client_request(url.as_str())
        .map_err(|e| e.to_string())?;
    for (name, value) in headers {
        request.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| e.to_string())?,
            tungstenite::http::HeaderValue::from_str(value).map_err(|e| e.to_string())?,
        );
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20));
    match tungstenite::client::client_with_config(request, stream, Some(config)) {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::HandshakeError::Failure(e)) => Err(format!("handshake: {e}")),
        Err(tungstenite::HandshakeError::Interrupted(_)) => Err("handshake interrupted".to_owned()),
    }
}

/// Reads the next text message, answering pings (`2` → `3`) on the way.
pub fn ws_next_text(ws: &mut Ws) -> Result<String, String> {
    loop {
        match ws.read() {
            Ok(Message::Text(text)) if text.as_str() == "2" => {
                ws.send(Message::text("3")).map_err(|e| e.to_string())?;
            }
            Ok(Message::Text(text)) => return Ok(text.as_str().to_owned()),
            Ok(Message::Close(frame)) => return Err(format!("closed: {frame:?}")),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// A WebSocket-only session joined to `/`.
pub fn ws_sio(port: u16) -> Result<Ws, String> {
    let mut ws = ws_open(port, "", &[])?;
    let open = ws_next_text(&mut ws)?;
    sid_of_open(&open)?;
    ws.send(Message::text("40")).map_err(|e| e.to_string())?;
    let reply = ws_next_text(&mut ws)?;
    if !reply.starts_with("40{") {
        return Err(format!("no CONNECT reply: {reply:?}"));
    }
    // The profile greets every client with `auth`.
    let auth = ws_next_text(&mut ws)?;
    if !auth.starts_with("42[\"auth\"") {
        return Err(format!("no auth event: {auth:?}"));
    }
    Ok(ws)
}

/// Waits (answering pings, so the heartbeat cannot be the cause) until the server ends the
/// WebSocket, within `within`. Returns how it ended and the last text it sent before.
pub fn ws_expect_closed(ws: &mut Ws, within: Duration) -> Result<String, String> {
    let deadline = Instant::now() + within;
    let _ = ws
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(200)));
    let mut last = String::new();
    loop {
        if Instant::now() > deadline {
            return Err(format!(
                "the server kept the WebSocket open for {within:?} (last text {last:?})"
            ));
        }
        match ws.read() {
            Ok(Message::Text(text)) if text.as_str() == "2" => {
                let _ = ws.send(Message::text("3"));
            }
            Ok(Message::Text(text)) => {
                if text.as_str() == "1" {
                    return Ok("close packet".to_owned());
                }
                last = text.as_str().chars().take(80).collect();
            }
            Ok(Message::Close(frame)) => {
                return Ok(format!(
                    "close frame {}",
                    frame.map(|f| u16::from(f.code)).unwrap_or(0)
                ));
            }
            Ok(_) => {}
            Err(e) if is_wait(&e) => {}
            Err(
                tungstenite::Error::ConnectionClosed
                | tungstenite::Error::AlreadyClosed
                | tungstenite::Error::Protocol(_),
            ) => return Ok("connection closed".to_owned()),
            Err(tungstenite::Error::Io(e)) => return Ok(format!("connection ended: {e}")),
            Err(e) => return Ok(format!("ended: {e}")),
        }
    }
}

/// A read that timed out (the socket's read timeout): nothing came yet.
pub fn is_wait(error: &tungstenite::Error) -> bool {
    matches!(error, tungstenite::Error::Io(e)
        if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
}

/// Writes one masked WebSocket frame with any payload (for invalid UTF-8 in a text frame).
pub fn raw_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    // A zero mask leaves the payload as it is.
    sockio_core::websocket::client_frame(0x80 | opcode, payload, [0; 4])
}
