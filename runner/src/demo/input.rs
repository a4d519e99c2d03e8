//! Request input: reading and validating JSON bodies, query strings, cookies and bearer
//! tokens. Nothing here panics on bad input; every failure is a 400/401/413 response.

use std::borrow::Cow;

use bytes::Bytes;
use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use serde_json::{Map, Value};

use super::respond::{Reject, bad_request, error};

/// A JSON object request body.
pub(crate) type Object = Map<String, Value>;

/// Reads a whole request body, at most `limit` bytes (413 beyond).
pub(crate) async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, Reject> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body is larger than {limit} bytes"),
        )),
        Err(e) => Err(bad_request(&format!(
            "could not read the request body: {e}"
        ))),
    }
}

/// Parses a body that must be a JSON object (whatever its Content-Type says).
pub(crate) fn object(body: &[u8]) -> Result<Object, Reject> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad_request("request body is empty; expected a JSON object"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(bad_request("request body must be a JSON object")),
        Err(e) => Err(bad_request(&format!("request body is not valid JSON: {e}"))),
    }
}

/// A field that is present and not `null`.
fn present<'a>(obj: &'a Object, field: &str) -> Option<&'a Value> {
    obj.get(field).filter(|v| !v.is_null())
}

/// A required, non-empty string field.
pub(crate) fn required_str<'a>(obj: &'a Object, field: &str) -> Result<&'a str, Reject> {
    match present(obj, field) {
        None => Err(bad_request(&format!("missing field `{field}`"))),
        Some(Value::String(s)) if s.is_empty() => {
            Err(bad_request(&format!("field `{field}` must not be empty")))
        }
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(bad_request(&format!("field `{field}` must be a string"))),
    }
}

/// An optional identifier that may be a non-empty string or an integer; returned as text.
pub(crate) fn optional_id(obj: &Object, field: &str) -> Result<Option<String>, Reject> {
    match present(obj, field) {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => {
            Err(bad_request(&format!("field `{field}` must not be empty")))
        }
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
        Some(_) => Err(bad_request(&format!(
            "field `{field}` must be a string or an integer"
        ))),
    }
}

/// A positive integer given as a JSON number or a decimal string; `None` when not one.
pub(crate) fn as_positive(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => parse_positive(s),
        _ => None,
    }
    .filter(|&n| n > 0)
}

/// A decimal string holding a positive integer.
pub(crate) fn parse_positive(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok().filter(|&n| n > 0)
}

/// A decimal integer (optionally negative), as ids in paths are.
pub(crate) fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>().ok()
}

/// A required positive integer field (a number or a decimal string).
pub(crate) fn required_positive(obj: &Object, field: &str) -> Result<u64, Reject> {
    match present(obj, field) {
        None => Err(bad_request(&format!("missing field `{field}`"))),
        Some(value) => positive_value(value, field),
    }
}

/// An optional positive integer field.
pub(crate) fn optional_positive(obj: &Object, field: &str) -> Result<Option<u64>, Reject> {
    present(obj, field)
        .map(|value| positive_value(value, field))
        .transpose()
}

/// `value` as a positive integer, or a 400 naming `field`.
pub(crate) fn positive_value(value: &Value, field: &str) -> Result<u64, Reject> {
    as_positive(value).ok_or_else(|| {
        bad_request(&format!(
            "field `{field}` must be a positive integer, got {value}"
        ))
    })
}

/// Decodes `%XX` escapes and `+` (as a space) of a query-string component.
pub(crate) fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(hi), Some(lo)) => {
                        out.push((hi * 16 + lo) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// The decoded `name=value` pairs of a query string, in order.
pub(crate) fn query_pairs(
    query: Option<&str>,
) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
}

/// The first value of query parameter `name`.
pub(crate) fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<Cow<'a, str>> {
    query_pairs(query).find(|(n, _)| n == name).map(|(_, v)| v)
}

/// Every `name=value` pair of the request's `Cookie` headers.
pub(crate) fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            Some((name.trim(), value.trim()))
        })
}

/// The value of cookie `name`.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    cookies(headers).find(|(n, _)| *n == name).map(|(_, v)| v)
}

/// The token of an `Authorization: Bearer <token>` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn numbers_may_be_decimal_strings() {
        let o = obj(json!({"a": 5, "b": "12345", "c": "x", "d": 0, "e": -3, "f": 1.5, "g": null}));
        assert_eq!(required_positive(&o, "a").ok(), Some(5));
        assert_eq!(required_positive(&o, "b").ok(), Some(12345));
        for field in ["c", "d", "e", "f", "g", "missing"] {
            assert!(required_positive(&o, field).is_err(), "{field}");
        }
        assert_eq!(optional_positive(&o, "g").ok(), Some(None));
    }

    #[test]
    fn strings_are_required_and_non_empty() {
        let o = obj(json!({"a": "x", "b": "", "c": 3}));
        assert_eq!(required_str(&o, "a").ok(), Some("x"));
        assert!(required_str(&o, "b").is_err());
        assert!(required_str(&o, "c").is_err());
        assert!(required_str(&o, "d").is_err());
        assert_eq!(optional_id(&o, "c").ok(), Some(Some("3".to_string())));
    }

    #[test]
    fn bodies_must_be_objects() {
        assert!(object(b"{\"a\":1}").is_ok());
        assert!(object(b"[1]").is_err());
        assert!(object(b"{nope").is_err());
        assert!(object(b"  ").is_err());
    }

    #[test]
    fn query_strings_decode() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%41%42"), "AB");
        let q = Some("query=Sam%20sung&x=1&flag");
        assert_eq!(query_param(q, "query").as_deref(), Some("Sam sung"));
        assert_eq!(query_param(q, "flag").as_deref(), Some(""));
        assert_eq!(query_param(q, "nope"), None);
        assert_eq!(parse_int("-4"), Some(-4));
        assert_eq!(parse_int("4a"), None);
        assert_eq!(parse_positive("0"), None);
    }

    #[test]
    fn cookies_and_bearer() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, "a=1; session_id=abc".parse().unwrap());
        h.append(COOKIE, "b=2".parse().unwrap());
        h.insert(AUTHORIZATION, "bearer tok".parse().unwrap());
        assert_eq!(cookie(&h, "session_id"), Some("abc"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(bearer(&h), Some("tok"));
    }
}
