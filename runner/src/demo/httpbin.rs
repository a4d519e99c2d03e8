//! httpbin-style helper endpoints for the runner's tests: status codes, redirects, delays,
//! echoes of the request, cookies and random bytes.

use std::time::Duration;

use bytes::Bytes;
use http::header::SET_COOKIE;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Map, Value, json};

use super::input::{cookies, parse_positive, query_pairs};
use super::respond::{
    HandlerResult, Reject, Resp, bad_request, json_bytes, ok, redirect, with_type,
};

/// The longest `/delay/{ms}` sleeps.
const MAX_DELAY_MS: u64 = 10_000;
/// The most `/bytes/{n}` sends.
const MAX_BYTES: u64 = 10 << 20;
/// The most hops `/redirect/{n}` allows.
const MAX_REDIRECTS: u64 = 100;

/// The fixed document of `GET /json` (httpbin's slideshow).
const JSON_DOCUMENT: &str = r#"{"slideshow":{"author":"Yours Truly","date":"date of publication","slides":[{"title":"Wake up to WonderWidgets!","type":"all"},{"items":["Why <em>WonderWidgets</em> are great","Who <em>buys</em> WonderWidgets"],"title":"Overview","type":"all"}],"title":"Sample Slide Show"}}"#;

/// A non-negative decimal integer path parameter.
fn count(param: &str, what: &str) -> Result<u64, Reject> {
    if param == "0" {
        return Ok(0);
    }
    parse_positive(param).ok_or_else(|| {
        bad_request(&format!(
            "{what} must be a non-negative integer, got `{param}`"
        ))
    })
}

/// The query parameters as a JSON object; repeated names become arrays.
fn args(query: Option<&str>) -> Value {
    let mut args = Map::new();
    for (name, value) in query_pairs(query) {
        let value = Value::String(value.into_owned());
        match args.get_mut(name.as_ref()) {
            None => {
                args.insert(name.into_owned(), value);
            }
            Some(Value::Array(values)) => values.push(value),
            Some(previous) => *previous = Value::Array(vec![previous.take(), value]),
        }
    }
    Value::Object(args)
}

/// The request headers as a JSON object; repeated headers are joined with `, `.
fn headers(headers: &HeaderMap) -> Value {
    let mut out = Map::new();
    for name in headers.keys() {
        let joined = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        out.insert(name.as_str().to_string(), Value::String(joined));
    }
    Value::Object(out)
}

/// The request cookies as a JSON object.
fn cookie_map(headers: &HeaderMap) -> Map<String, Value> {
    cookies(headers)
        .map(|(name, value)| (name.to_string(), Value::String(value.to_string())))
        .collect()
}

fn url(parts: &Parts) -> String {
    parts.uri.path_and_query().map_or_else(
        || parts.uri.path().to_string(),
        |pq| pq.as_str().to_string(),
    )
}

/// `ANY /status/{code}`: that status; 3xx codes redirect to `/get`.
pub(crate) fn status(param: &str) -> HandlerResult {
    let status = param
        .parse::<u16>()
        .ok()
        .filter(|code| (200..=599).contains(code))
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| bad_request(&format!("status code must be 200..=599, got `{param}`")))?;
    if status.is_redirection() {
        return Ok(redirect(status, "/get"));
    }
    let mut response = Resp::new(Bytes::new().into());
    *response.status_mut() = status;
    Ok(response)
}

/// `GET /redirect/{n}`: `n` redirects (302), the last to `/get`.
pub(crate) fn redirects(param: &str) -> HandlerResult {
    let n = parse_positive(param)
        .filter(|&n| n <= MAX_REDIRECTS)
        .ok_or_else(|| {
            bad_request(&format!(
                "redirect count must be 1..={MAX_REDIRECTS}, got `{param}`"
            ))
        })?;
    let location = if n == 1 {
        "/get".to_string()
    } else {
        format!("/redirect/{}", n - 1)
    };
    Ok(redirect(StatusCode::FOUND, &location))
}

/// `ANY /redirect-to?url=U[&status_code=N]`: a redirect (302 unless another 3xx is asked) to
/// `U`, a path or an `http(s)` URL on a loopback host: the demo server never sends a client
/// off the machine.
pub(crate) fn redirect_to(parts: &Parts) -> HandlerResult {
    let mut location = None;
    let mut status = StatusCode::FOUND;
    for (name, value) in query_pairs(parts.uri.query()) {
        match name.as_ref() {
            "url" => location = Some(value.into_owned()),
            "status_code" => {
                status = value
                    .parse::<u16>()
                    .ok()
                    .and_then(|code| StatusCode::from_u16(code).ok())
                    .filter(StatusCode::is_redirection)
                    .ok_or_else(|| {
                        bad_request(&format!("status_code must be 300..=399, got `{value}`"))
                    })?;
            }
            _ => {}
        }
    }
    let location = location.ok_or_else(|| bad_request("the url query parameter is required"))?;
    if !location.starts_with('/') && !is_loopback_url(&location) {
        return Err(bad_request(&format!(
            "url must be a path or an http(s) URL on a loopback host, got `{location}`"
        )));
    }
    Ok(redirect(status, &location))
}

/// Whether `text` is an `http(s)` URL whose host is `localhost` or a loopback address.
fn is_loopback_url(text: &str) -> bool {
    let Ok(url) = url::Url::parse(text) else {
        return false;
    };
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    loopback && matches!(url.scheme(), "http" | "https")
}

/// `GET /get`: the request's query, headers and URL.
pub(crate) fn get(parts: &Parts) -> Resp {
    ok(&json!({
        "args": args(parts.uri.query()),
        "headers": headers(&parts.headers),
        "url": url(parts),
    }))
}

/// `GET /delay/{ms}`: sleeps `ms` (at most 10 000), then answers like `/get`.
pub(crate) async fn delay(parts: &Parts, param: &str) -> HandlerResult {
    let ms = count(param, "delay")?.min(MAX_DELAY_MS);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(ok(&json!({
        "delayMs": ms,
        "args": args(parts.uri.query()),
        "headers": headers(&parts.headers),
        "url": url(parts),
    })))
}

/// `GET /json`: a fixed JSON document.
pub(crate) fn json_document() -> Resp {
    json_bytes(StatusCode::OK, Bytes::from_static(JSON_DOCUMENT.as_bytes()))
}

/// `ANY /anything`: echoes the method, path, query, headers and body.
pub(crate) fn anything(parts: &Parts, body: &[u8]) -> Resp {
    let parsed = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
    ok(&json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query().unwrap_or(""),
        "args": args(parts.uri.query()),
        "headers": headers(&parts.headers),
        "data": String::from_utf8_lossy(body),
        "json": parsed,
        "url": url(parts),
    }))
}

/// `GET /headers`: the request headers.
pub(crate) fn echo_headers(parts: &Parts) -> Resp {
    ok(&json!({ "headers": headers(&parts.headers) }))
}

/// `GET /cookies`: the request cookies.
pub(crate) fn echo_cookies(parts: &Parts) -> Resp {
    ok(&json!({ "cookies": cookie_map(&parts.headers) }))
}

/// `GET /cookies/set?name=value...`: sets each cookie, answers with the cookies the client
/// now has (the request's, updated by the new ones).
pub(crate) fn set_cookies(parts: &Parts) -> HandlerResult {
    let mut jar = cookie_map(&parts.headers);
    let mut set = Vec::new();
    for (name, value) in query_pairs(parts.uri.query()) {
        let header = HeaderValue::from_str(&format!("{name}={value}; Path=/"))
            .map_err(|_| bad_request(&format!("cookie `{name}` cannot be sent in a header")))?;
        set.push(header);
        jar.insert(name.into_owned(), Value::String(value.into_owned()));
    }
    let mut response = ok(&json!({ "cookies": jar }));
    for header in set {
        response.headers_mut().append(SET_COOKIE, header);
    }
    Ok(response)
}

/// `GET /bytes/{n}`: `n` pseudo-random bytes (at most 10 MiB).
pub(crate) fn random_bytes(param: &str) -> HandlerResult {
    let n = count(param, "byte count")?.min(MAX_BYTES);
    let mut bytes = vec![0; n as usize];
    fastrand::fill(&mut bytes);
    Ok(with_type(
        StatusCode::OK,
        HeaderValue::from_static("application/octet-stream"),
        Bytes::from(bytes),
    ))
}
