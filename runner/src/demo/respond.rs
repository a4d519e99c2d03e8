//! Response builders shared by the handlers: JSON bodies, `{"error": ...}` errors, redirects.

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, LOCATION};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde_json::Value;

/// The body of every demo response: the whole body in one buffer.
pub(crate) type Body = Full<Bytes>;
/// A demo response.
pub(crate) type Resp = Response<Body>;
/// A handler's outcome; `Err` carries an error response, so `?` works.
pub(crate) type HandlerResult = Result<Resp, Reject>;

/// An error response waiting to be sent: a status and a JSON body. Small, so that
/// `Result<_, Reject>` stays cheap to return.
#[derive(Debug)]
pub(crate) struct Reject {
    status: StatusCode,
    body: Bytes,
}

impl Reject {
    /// The response to send.
    pub fn into_response(self) -> Resp {
        json_bytes(self.status, self.body)
    }
}

/// An error with `status` and the JSON body `value`.
pub(crate) fn reject(status: StatusCode, value: &Value) -> Reject {
    Reject {
        status,
        body: Bytes::from(value.to_string()),
    }
}

pub(crate) const JSON: HeaderValue = HeaderValue::from_static("application/json");
const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");

/// A response with `status`, `content_type` and `body`.
pub(crate) fn with_type(status: StatusCode, content_type: HeaderValue, body: Bytes) -> Resp {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    response
}

/// A `text/plain` response.
pub(crate) fn text(status: StatusCode, body: Bytes) -> Resp {
    with_type(status, TEXT, body)
}

/// A JSON response from an already serialized body.
pub(crate) fn json_bytes(status: StatusCode, body: Bytes) -> Resp {
    with_type(status, JSON, body)
}

/// A JSON response.
pub(crate) fn json(status: StatusCode, value: &Value) -> Resp {
    json_bytes(status, Bytes::from(value.to_string()))
}

/// A 200 JSON response.
pub(crate) fn ok(value: &Value) -> Resp {
    json(StatusCode::OK, value)
}

/// An error with the body `{"error": message}`.
pub(crate) fn error(status: StatusCode, message: &str) -> Reject {
    reject(status, &serde_json::json!({ "error": message }))
}

/// 400 Bad Request.
pub(crate) fn bad_request(message: &str) -> Reject {
    error(StatusCode::BAD_REQUEST, message)
}

/// 401 Unauthorized.
pub(crate) fn unauthorized(message: &str) -> Reject {
    error(StatusCode::UNAUTHORIZED, message)
}

/// 404 Not Found.
pub(crate) fn not_found(message: &str) -> Reject {
    error(StatusCode::NOT_FOUND, message)
}

/// 405 Method Not Allowed, with the `Allow` header.
pub(crate) fn method_not_allowed(allow: &'static str) -> Resp {
    let mut response = error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("method not allowed; use {allow}"),
    )
    .into_response();
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

/// A redirect with `status` (a 3xx code) to `location`.
pub(crate) fn redirect(status: StatusCode, location: &str) -> Resp {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}
