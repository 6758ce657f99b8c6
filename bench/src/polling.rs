//! A tiny HTTP/1.1 keep-alive client for the Engine.IO long-polling transport.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::net::{Result, tcp_connect};

/// One polling client: one keep-alive connection, requests one after the other.
pub struct PollingClient {
    server: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    sid: String,
}

impl PollingClient {
    /// Opens an Engine.IO session over polling and connects the Socket.IO namespace `/`.
    pub async fn connect(server: SocketAddr) -> Result<Self> {
        let mut client = PollingClient {
            server,
            stream: None,
            buf: Vec::with_capacity(1024),
            sid: String::new(),
        };
        let open = client
            .request("GET", "/socket.io/?EIO=4&transport=polling", b"")
            .await?;
        let open = String::from_utf8(open)?;
        let json = open
            .strip_prefix('0')
            .ok_or_else(|| format!("expected an open packet, got {open:?}"))?;
        let value: serde_json::Value = serde_json::from_str(json)?;
        client.sid = value
            .get("sid")
            .and_then(|s| s.as_str())
            .ok_or("open packet without sid")?
            .to_owned();
        client.post("40").await?;
        loop {
            let packets = client.poll().await?;
            if packets.iter().any(|p| p.starts_with("40")) {
                return Ok(client);
            }
            if let Some(p) = packets.iter().find(|p| p.starts_with("44")) {
                return Err(format!("namespace connect refused: {p}").into());
            }
        }
    }

    fn path(&self) -> String {
        format!("/socket.io/?EIO=4&transport=polling&sid={}", self.sid)
    }

    /// Sends one or more packets (joined with the record separator).
    pub async fn post(&mut self, payload: &str) -> Result<()> {
        let path = self.path();
        self.request("POST", &path, payload.as_bytes()).await?;
        Ok(())
    }

    /// One long-poll GET: the packets it returned. Pings are answered.
    pub async fn poll(&mut self) -> Result<Vec<String>> {
        let path = self.path();
        let body = self.request("GET", &path, b"").await?;
        let body = String::from_utf8(body)?;
        let packets: Vec<String> = body.split('\u{1e}').map(str::to_owned).collect();
        if packets.iter().any(|p| p == "2") {
            self.post("3").await?;
        }
        if let Some(p) = packets.iter().find(|p| p.starts_with('1')) {
            return Err(format!("the server closed the session: {p}").into());
        }
        Ok(packets)
    }

    async fn request(&mut self, method: &str, path: &str, body: &[u8]) -> Result<Vec<u8>> {
        let stream = match self.stream.as_mut() {
            Some(s) => s,
            None => self.stream.insert(tcp_connect(self.server).await?),
        };
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
            self.server,
            body.len()
        );
        let mut out = Vec::with_capacity(head.len() + body.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(body);
        stream.write_all(&out).await?;
        let (status, close, body) = read_response(stream, &mut self.buf).await?;
        if close {
            self.stream = None;
        }
        if status != 200 {
            return Err(format!(
                "HTTP {status} for {method}: {}",
                String::from_utf8_lossy(&body)
            )
            .into());
        }
        Ok(body)
    }
}

/// Reads one response (Content-Length or chunked): status, whether the server closes the
/// connection, body. `buf` keeps bytes read past the response.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(u16, bool, Vec<u8>)> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head_len) = response.parse(buf)? {
            let status = response.code.ok_or("response without status")?;
            let mut length = None;
            let mut chunked = false;
            let mut close = false;
            for h in response.headers.iter() {
                let value = std::str::from_utf8(h.value)?.trim().to_ascii_lowercase();
                if h.name.eq_ignore_ascii_case("content-length") {
                    length = Some(value.parse::<usize>()?);
                } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.contains("chunked");
                } else if h.name.eq_ignore_ascii_case("connection") {
                    close = value.contains("close");
                }
            }
            buf.drain(..head_len);
            let body = if chunked {
                read_chunked(stream, buf).await?
            } else {
                let length = length.ok_or("response without length")?;
                fill(stream, buf, length).await?;
                buf.drain(..length).collect()
            };
            return Ok((status, close, body));
        }
        read_more(stream, buf).await?;
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<()> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        return Err("connection closed".into());
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>, n: usize) -> Result<()> {
    while buf.len() < n {
        read_more(stream, buf).await?;
    }
    Ok(())
}

async fn read_chunked(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                break i;
            }
            read_more(stream, buf).await?;
        };
        let line = std::str::from_utf8(&buf[..line_end])?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)?;
        buf.drain(..line_end + 2);
        fill(stream, buf, size + 2).await?;
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
        if size == 0 {
            return Ok(body);
        }
    }
}
