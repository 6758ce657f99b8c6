//! HTTP compression of polling responses, as engine.io's `httpCompression`
//! option does it.

use std::io::Write as _;

use ::http::header::{
    ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, HeaderMap, HeaderValue, VARY,
};
use bytes::Bytes;
use flate2::Compression;
use flate2::write::{GzEncoder, ZlibEncoder};

use super::Response;

/// engine.io's default `httpCompression.threshold`: bodies shorter than
/// this many bytes are sent uncompressed.
pub const DEFAULT_COMPRESSION_THRESHOLD: usize = 1024;

/// A content coding the engine can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentEncoding {
    /// `gzip` (RFC 1952).
    Gzip,
    /// `deflate`: the zlib format (RFC 1950), as Node's `zlib.createDeflate`
    /// produces and as HTTP defines it.
    Deflate,
}

impl ContentEncoding {
    /// The `Content-Encoding` value: `gzip` or `deflate`.
    pub fn header_value(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Deflate => "deflate",
        }
    }
}

/// Parses a qvalue into thousandths, as Node's `negotiator` reads one (`parseFloat`, no range
/// check): a number past 1 ranks above 1, a negative one is 0 (refused); `None` when it is no
/// number at all.
fn parse_q(raw: &str) -> Option<u16> {
    let q: f32 = raw.trim().parse().ok().filter(|q: &f32| !q.is_nan())?;
    Some((q.clamp(0.0, 65.535) * 1000.0).round() as u16)
}

/// Negotiates over the (comma-separated) values of `Accept-Encoding`.
fn negotiate_values<'a>(values: impl Iterator<Item = &'a str>) -> Option<ContentEncoding> {
    let (mut gzip, mut deflate, mut star) = (None::<u16>, None::<u16>, None::<u16>);
    for entry in values.flat_map(|v| v.split(',')) {
        let mut parts = entry.split(';');
        let coding = parts.next().unwrap_or("").trim();
        if coding.is_empty() {
            continue;
        }
        let mut q = Some(1000);
        for param in parts {
            if let Some((name, value)) = param.split_once('=')
                && name.trim().eq_ignore_ascii_case("q")
            {
                q = parse_q(value);
            }
        }
        // A q-value that is no number refuses the entry's coding, as Node's `negotiator` (whose
        // q is then NaN) does: dropping the entry would let a `*` accept what the client named.
        let q = q.unwrap_or(0);
        let slot = if coding.eq_ignore_ascii_case("gzip") {
            &mut gzip
        } else if coding.eq_ignore_ascii_case("deflate") {
            &mut deflate
        } else if coding == "*" {
            &mut star
        } else {
            continue;
        };
        *slot = Some(slot.map_or(q, |old| old.max(q)));
    }
    let gzip = gzip.or(star).unwrap_or(0);
    let deflate = deflate.or(star).unwrap_or(0);
    if gzip > 0 && gzip >= deflate {
        Some(ContentEncoding::Gzip)
    } else if deflate > 0 {
        Some(ContentEncoding::Deflate)
    } else {
        None
    }
}

/// Picks gzip or deflate from an `Accept-Encoding` value: q-values are
/// honoured, `q=0` excludes a coding, `*` stands for codings not listed,
/// gzip wins ties; `None` when neither is acceptable (or no header).
pub fn negotiate(accept_encoding: Option<&HeaderValue>) -> Option<ContentEncoding> {
    negotiate_values(accept_encoding.and_then(|v| v.to_str().ok()).into_iter())
}

/// Compresses `body` at the default level (6, as Node's zlib). `Deflate`
/// produces the zlib format.
pub fn compress(body: &[u8], encoding: ContentEncoding) -> Bytes {
    const VEC_WRITE: &str = "writing to a Vec cannot fail";
    let out = Vec::with_capacity(body.len() / 2 + 32);
    let out = match encoding {
        ContentEncoding::Gzip => {
            let mut encoder = GzEncoder::new(out, Compression::default());
            encoder.write_all(body).expect(VEC_WRITE);
            encoder.finish().expect(VEC_WRITE)
        }
        ContentEncoding::Deflate => {
            let mut encoder = ZlibEncoder::new(out, Compression::default());
            encoder.write_all(body).expect(VEC_WRITE);
            encoder.finish().expect(VEC_WRITE)
        }
    };
    Bytes::from(out)
}

/// [`negotiate`] over every `Accept-Encoding` line of a request's headers (a client may split
/// the list over several lines).
pub fn negotiate_headers(request_headers: &HeaderMap) -> Option<ContentEncoding> {
    negotiate_values(
        request_headers
            .get_all(ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

/// Compresses `response`'s body when it is at least `threshold` bytes
/// long (and not empty), the response has no `Content-Encoding` yet and
/// the request's `Accept-Encoding` headers accept gzip or deflate (see
/// [`negotiate`]). It then sets `Content-Encoding`, fixes
/// `Content-Length` (set to the compressed length) and adds
/// `Vary: Accept-Encoding`. Otherwise the response is returned unchanged.
///
/// Whether compression is enabled at all is the caller's decision (call
/// this or not); engine.io's default threshold is
/// [`DEFAULT_COMPRESSION_THRESHOLD`].
pub fn maybe_compress(
    response: Response,
    request_headers: &HeaderMap,
    threshold: usize,
) -> Response {
    if !worth_compressing(&response, threshold) {
        return response;
    }
    compress_as(response, negotiate_headers(request_headers), threshold)
}

/// [`maybe_compress`] with the coding already negotiated (`None`: the request accepts neither),
/// for an answer made after its request's headers are gone (a held poll).
pub fn compress_as(
    response: Response,
    encoding: Option<ContentEncoding>,
    threshold: usize,
) -> Response {
    let Some(encoding) = encoding else {
        return response;
    };
    if !worth_compressing(&response, threshold) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let compressed = compress(&body, encoding);
    parts.headers.insert(
        CONTENT_ENCODING,
        HeaderValue::from_static(encoding.header_value()),
    );
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(compressed.len()));
    let vary_listed = parts.headers.get_all(VARY).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .map(str::trim)
                .any(|t| t == "*" || t.eq_ignore_ascii_case("accept-encoding"))
        })
    });
    if !vary_listed {
        parts
            .headers
            .append(VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    Response::from_parts(parts, compressed)
}

/// A body long enough for `threshold`, not already encoded.
fn worth_compressing(response: &Response, threshold: usize) -> bool {
    let body_len = response.body().len();
    body_len != 0 && body_len >= threshold && !response.headers().contains_key(CONTENT_ENCODING)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::http::StatusCode;
    use ::http::header::CONTENT_TYPE;
    use flate2::read::{GzDecoder, ZlibDecoder};
    use std::io::Read as _;

    fn ae(v: &'static str) -> Option<ContentEncoding> {
        negotiate(Some(&HeaderValue::from_static(v)))
    }

    fn payload(n: usize) -> Vec<u8> {
        const UNIT: &[u8] = b"4hello socket.io\x1e";
        (0..n).map(|i| UNIT[i % UNIT.len()]).collect()
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        GzDecoder::new(data).read_to_end(&mut out).unwrap();
        out
    }

    fn inflate(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        ZlibDecoder::new(data).read_to_end(&mut out).unwrap();
        out
    }

    fn response(body: Vec<u8>) -> Response {
        let len = body.len();
        let mut r = Response::new(Bytes::from(body));
        *r.status_mut() = StatusCode::OK;
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=UTF-8"),
        );
        r.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(len));
        r
    }

    fn request_headers(accept: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT_ENCODING, HeaderValue::from_static(accept));
        h
    }

    #[test]
    fn header_values() {
        assert_eq!(ContentEncoding::Gzip.header_value(), "gzip");
        assert_eq!(ContentEncoding::Deflate.header_value(), "deflate");
    }

    #[test]
    fn round_trips() {
        for n in [0, 1, 100, 5000, 100_000] {
            let data = payload(n);
            let gz = compress(&data, ContentEncoding::Gzip);
            assert_eq!(&gz[..2], &[0x1f, 0x8b]);
            assert_eq!(gunzip(&gz), data);
            let zl = compress(&data, ContentEncoding::Deflate);
            assert_eq!(zl[0] & 0x0f, 8); // zlib header, CM = deflate
            assert_eq!((u16::from(zl[0]) << 8 | u16::from(zl[1])) % 31, 0);
            assert_eq!(inflate(&zl), data);
        }
    }

    #[test]
    fn negotiation() {
        use ContentEncoding::{Deflate, Gzip};
        assert_eq!(negotiate(None), None);
        assert_eq!(ae(""), None);
        assert_eq!(ae("gzip"), Some(Gzip));
        assert_eq!(ae("deflate"), Some(Deflate));
        assert_eq!(ae("gzip, deflate, br"), Some(Gzip));
        assert_eq!(ae("deflate, gzip"), Some(Gzip)); // tie → gzip
        assert_eq!(ae("GZIP"), Some(Gzip));
        assert_eq!(ae("gzip;q=0, deflate"), Some(Deflate));
        assert_eq!(ae("gzip; q=0.5, deflate; q=0.8"), Some(Deflate));
        assert_eq!(ae("gzip;q=0.8, deflate;q=0.5"), Some(Gzip));
        assert_eq!(ae("gzip;Q=0.001, deflate;q=0"), Some(Gzip));
        assert_eq!(ae("*"), Some(Gzip));
        assert_eq!(ae("*;q=0.5, gzip;q=0.1"), Some(Deflate));
        assert_eq!(ae("*;q=0"), None);
        assert_eq!(ae("deflate, *;q=0"), Some(Deflate));
        assert_eq!(ae("identity"), None);
        assert_eq!(ae("identity, br"), None);
        assert_eq!(ae("gzip;q=0, deflate;q=0"), None);
        assert_eq!(ae("gzip;q=0, deflate;q=0.000"), None);
        // A malformed q-value refuses its coding, even beside a `*` (negotiator's NaN).
        assert_eq!(ae("gzip;q=abc, deflate;q=0.1"), Some(Deflate));
        assert_eq!(ae("gzip;q=abc, *"), Some(Deflate));
        assert_eq!(ae("gzip;q=abc, deflate;q=x, *"), None);
        // Out of range, as negotiator reads it: past 1 ranks first, below 0 is refused.
        assert_eq!(ae("gzip;q=2"), Some(Gzip));
        assert_eq!(ae("deflate;q=1, gzip;q=2"), Some(Gzip));
        assert_eq!(ae("gzip;q=-1, *"), Some(Deflate));
        assert_eq!(ae(" , ,gzip"), Some(Gzip));
        let bin = HeaderValue::from_bytes(b"gzip\xff").unwrap();
        assert_eq!(negotiate(Some(&bin)), None);
    }

    #[test]
    fn maybe_compress_gzip() {
        let data = payload(2000);
        let r = maybe_compress(
            response(data.clone()),
            &request_headers("gzip, deflate"),
            1024,
        );
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[CONTENT_ENCODING], "gzip");
        assert_eq!(
            r.headers()[CONTENT_LENGTH],
            r.body().len().to_string().as_str()
        );
        assert_eq!(r.headers()[CONTENT_TYPE], "text/plain; charset=UTF-8");
        assert_eq!(r.headers()[VARY], "Accept-Encoding");
        assert!(r.body().len() < data.len());
        assert_eq!(gunzip(r.body()), data);
    }

    #[test]
    fn maybe_compress_deflate() {
        let data = payload(2000);
        let r = maybe_compress(
            response(data.clone()),
            &request_headers("gzip;q=0, deflate"),
            0,
        );
        assert_eq!(r.headers()[CONTENT_ENCODING], "deflate");
        assert_eq!(
            r.headers()[CONTENT_LENGTH],
            r.body().len().to_string().as_str()
        );
        assert_eq!(inflate(r.body()), data);
    }

    #[test]
    fn threshold_respected() {
        let h = request_headers("gzip");
        let r = maybe_compress(response(payload(1023)), &h, 1024);
        assert!(r.headers().get(CONTENT_ENCODING).is_none());
        assert!(r.headers().get(VARY).is_none());
        assert_eq!(r.body().len(), 1023);
        assert_eq!(r.headers()[CONTENT_LENGTH], "1023");

        let r = maybe_compress(response(payload(1024)), &h, 1024);
        assert_eq!(r.headers()[CONTENT_ENCODING], "gzip");
        assert_eq!(gunzip(r.body()), payload(1024));

        let r = maybe_compress(response(payload(10)), &h, 0);
        assert_eq!(r.headers()[CONTENT_ENCODING], "gzip");
        // Empty bodies are never compressed.
        let r = maybe_compress(response(Vec::new()), &h, 0);
        assert!(r.headers().get(CONTENT_ENCODING).is_none());
    }

    #[test]
    fn not_accepted_or_already_encoded() {
        let data = payload(4096);
        let r = maybe_compress(response(data.clone()), &HeaderMap::new(), 1024);
        assert!(r.headers().get(CONTENT_ENCODING).is_none());
        assert_eq!(r.body().as_ref(), &data[..]);

        let r = maybe_compress(response(data.clone()), &request_headers("identity"), 1024);
        assert!(r.headers().get(CONTENT_ENCODING).is_none());
        assert_eq!(r.body().as_ref(), &data[..]);

        let mut pre = response(data.clone());
        pre.headers_mut()
            .insert(CONTENT_ENCODING, HeaderValue::from_static("br"));
        let r = maybe_compress(pre, &request_headers("gzip"), 0);
        assert_eq!(r.headers()[CONTENT_ENCODING], "br");
        assert_eq!(r.body().as_ref(), &data[..]);
    }

    #[test]
    fn several_accept_encoding_headers_and_vary() {
        let mut h = HeaderMap::new();
        h.append(ACCEPT_ENCODING, HeaderValue::from_static("gzip;q=0"));
        h.append(ACCEPT_ENCODING, HeaderValue::from_static("deflate"));
        let mut r = response(payload(2000));
        r.headers_mut()
            .insert(VARY, HeaderValue::from_static("Origin, accept-encoding"));
        let r = maybe_compress(r, &h, 1024);
        assert_eq!(r.headers()[CONTENT_ENCODING], "deflate");
        assert_eq!(r.headers().get_all(VARY).iter().count(), 1);
    }
}
