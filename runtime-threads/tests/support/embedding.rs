//! Requests read by hand from a `TcpStream`, for the tests' own blocking HTTP servers that embed
//! a sockio server ("any blocking HTTP server"; deliberately minimal: `Content-Length` bodies).

use std::io::Read;
use std::net::TcpStream;

use bytes::Bytes;

/// Reads a request's head; `None` at the end of the stream.
pub fn read_head(
    stream: &mut TcpStream,
    buffered: &mut Vec<u8>,
) -> Option<(http::request::Parts, usize)> {
    let end = loop {
        if let Some(end) = buffered.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        fill(stream, buffered)?;
    };
    let head = String::from_utf8_lossy(&buffered[..end]).into_owned();
    buffered.drain(..end);
    let mut lines = head.split("\r\n");
    let mut start = lines.next()?.split(' ');
    let (method, target) = (start.next()?, start.next()?);
    let mut builder = http::Request::builder().method(method).uri(target);
    let mut length = 0;
    for line in lines.filter(|line| !line.is_empty()) {
        let (name, value) = line.split_once(':')?;
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().ok()?;
        }
        builder = builder.header(name, value.trim());
    }
    Some((builder.body(()).ok()?.into_parts().0, length))
}

/// Reads a body of `length` bytes; `None` when the stream ends first.
pub fn read_body(stream: &mut TcpStream, buffered: &mut Vec<u8>, length: usize) -> Option<Bytes> {
    while buffered.len() < length {
        fill(stream, buffered)?;
    }
    Some(Bytes::from(buffered.drain(..length).collect::<Vec<u8>>()))
}

fn fill(stream: &mut TcpStream, buffered: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk) {
        Ok(0) | Err(_) => None,
        Ok(read) => {
            buffered.extend_from_slice(&chunk[..read]);
            Some(())
        }
    }
}
