//! The Engine.IO HTTP error codes and responses of the reference server.

use ::http::StatusCode;
use ::http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use bytes::Bytes;

use super::Response;

/// Engine.IO HTTP error codes, as sent in the JSON body of a rejected
/// request (`{"code":N,"message":"..."}`).
///
/// | code | message | status |
/// |---|---|---|
/// | 0 | Transport unknown | 400 |
/// | 1 | Session ID unknown | 400 |
/// | 2 | Bad handshake method | 400 |
/// | 3 | Bad request | 400 |
/// | 4 | Forbidden | 403 |
/// | 5 | Unsupported protocol version | 400 |
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum EngineErrorCode {
    /// 0: the `transport` query parameter is missing or not supported.
    #[error("Transport unknown")]
    UnknownTransport,
    /// 1: the `sid` is unknown, or does not match the transport.
    #[error("Session ID unknown")]
    UnknownSid,
    /// 2: a handshake (no `sid`) with a method other than GET.
    #[error("Bad handshake method")]
    BadHandshakeMethod,
    /// 3: any other invalid request.
    #[error("Bad request")]
    BadRequest,
    /// 4: refused by the application (e.g. `allowRequest`).
    #[error("Forbidden")]
    Forbidden,
    /// 5: the `EIO` query parameter names an unsupported version.
    #[error("Unsupported protocol version")]
    UnsupportedProtocolVersion,
}

impl EngineErrorCode {
    /// The numeric code sent in the JSON body.
    pub fn code(self) -> u8 {
        match self {
            Self::UnknownTransport => 0,
            Self::UnknownSid => 1,
            Self::BadHandshakeMethod => 2,
            Self::BadRequest => 3,
            Self::Forbidden => 4,
            Self::UnsupportedProtocolVersion => 5,
        }
    }

    /// The code for a numeric value, if it is one of the known ones.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::UnknownTransport,
            1 => Self::UnknownSid,
            2 => Self::BadHandshakeMethod,
            3 => Self::BadRequest,
            4 => Self::Forbidden,
            5 => Self::UnsupportedProtocolVersion,
            _ => return None,
        })
    }

    /// The reference server's default message.
    pub fn message(self) -> &'static str {
        match self {
            Self::UnknownTransport => "Transport unknown",
            Self::UnknownSid => "Session ID unknown",
            Self::BadHandshakeMethod => "Bad handshake method",
            Self::BadRequest => "Bad request",
            Self::Forbidden => "Forbidden",
            Self::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    /// HTTP status of a rejected (non-upgrade) request: 403 for
    /// [`Forbidden`](Self::Forbidden), 400 otherwise.
    pub fn status(self) -> StatusCode {
        match self {
            Self::Forbidden => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// A response with `status`, `Content-Type: content_type`, a
/// `Content-Length` and `body`.
pub fn plain_response(status: StatusCode, content_type: &'static str, body: Bytes) -> Response {
    let len = body.len();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    response
}

/// The reference server's answer to a rejected HTTP request:
/// status [`EngineErrorCode::status`], `Content-Type: application/json` and
/// body `{"code":N,"message":"..."}`. `message` replaces the default
/// [`EngineErrorCode::message`] when given.
pub fn error_response(code: EngineErrorCode, message: Option<&str>) -> Response {
    let message = message.unwrap_or(code.message());
    // `Value`'s Display is infallible and escapes like JSON.stringify.
    let message = serde_json::Value::String(message.to_owned());
    let body = format!("{{\"code\":{},\"message\":{message}}}", code.code());
    plain_response(code.status(), "application/json", Bytes::from(body))
}

/// The reference server's answer to a rejected WebSocket upgrade: always
/// `400 Bad Request`, `Connection: close`, `Content-Type: text/html` and the
/// message (`message`, or the code's default) as the body.
pub fn ws_rejection_response(code: EngineErrorCode, message: Option<&str>) -> Response {
    let message = message.unwrap_or(code.message());
    let mut response = plain_response(
        StatusCode::BAD_REQUEST,
        "text/html",
        Bytes::copy_from_slice(message.as_bytes()),
    );
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [EngineErrorCode; 6] = [
        EngineErrorCode::UnknownTransport,
        EngineErrorCode::UnknownSid,
        EngineErrorCode::BadHandshakeMethod,
        EngineErrorCode::BadRequest,
        EngineErrorCode::Forbidden,
        EngineErrorCode::UnsupportedProtocolVersion,
    ];

    #[test]
    fn codes_messages_statuses() {
        for (i, code) in ALL.iter().enumerate() {
            assert_eq!(code.code() as usize, i);
            assert_eq!(EngineErrorCode::from_code(i as u8), Some(*code));
            assert_eq!(code.to_string(), code.message());
        }
        assert_eq!(EngineErrorCode::from_code(6), None);
        assert_eq!(EngineErrorCode::Forbidden.status(), StatusCode::FORBIDDEN);
        for code in ALL.iter().filter(|c| **c != EngineErrorCode::Forbidden) {
            assert_eq!(code.status(), StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn error_bodies_exact() {
        let expected = [
            (0, r#"{"code":0,"message":"Transport unknown"}"#),
            (1, r#"{"code":1,"message":"Session ID unknown"}"#),
            (2, r#"{"code":2,"message":"Bad handshake method"}"#),
            (3, r#"{"code":3,"message":"Bad request"}"#),
            (4, r#"{"code":4,"message":"Forbidden"}"#),
            (5, r#"{"code":5,"message":"Unsupported protocol version"}"#),
        ];
        for (i, body) in expected {
            let code = EngineErrorCode::from_code(i).unwrap();
            let r = error_response(code, None);
            assert_eq!(r.status(), code.status());
            assert_eq!(r.body().as_ref(), body.as_bytes());
            assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
            assert_eq!(r.headers()[CONTENT_LENGTH], body.len().to_string().as_str());
        }
    }

    #[test]
    fn error_body_custom_message_escaped() {
        let r = error_response(EngineErrorCode::Forbidden, Some("no \"way\"\n\u{1}é"));
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            r.body().as_ref(),
            "{\"code\":4,\"message\":\"no \\\"way\\\"\\n\\u0001é\"}".as_bytes()
        );
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(v["message"], "no \"way\"\n\u{1}é");
        assert_eq!(
            r.headers()[CONTENT_LENGTH],
            r.body().len().to_string().as_str()
        );
    }

    #[test]
    fn ws_rejection() {
        let r = ws_rejection_response(EngineErrorCode::Forbidden, None);
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.body().as_ref(), b"Forbidden");
        assert_eq!(r.headers()[CONTENT_TYPE], "text/html");
        assert_eq!(r.headers()[CONTENT_LENGTH], "9");
        assert_eq!(r.headers()[CONNECTION], "close");

        let r = ws_rejection_response(EngineErrorCode::UnknownSid, Some("gone"));
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.body().as_ref(), b"gone");
        assert_eq!(r.headers()[CONTENT_LENGTH], "4");
    }

    #[test]
    fn plain() {
        let r = plain_response(
            StatusCode::OK,
            "text/plain; charset=UTF-8",
            Bytes::from_static(b"ok"),
        );
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[CONTENT_TYPE], "text/plain; charset=UTF-8");
        assert_eq!(r.headers()[CONTENT_LENGTH], "2");
        assert_eq!(r.body().as_ref(), b"ok");
    }
}
