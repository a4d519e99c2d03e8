//! The HTTP/1.1 wire format: request heads out, response heads and body framing in.
//!
//! Pure functions over byte buffers (no IO), so every rule is unit-tested here. Requests are
//! written as Go's `net/http` writes them (canonical header case, `Host` and `User-Agent`
//! first); response heads, chunk sizes and trailers are parsed by `httparse` (hyper's parser),
//! and bodies are framed as RFC 9112 §6.3 says.

use bytes::{Buf, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
use httparse::Status;

use super::error::ErrorKind;
use super::target::Target;

/// Response heads larger than this are refused: Go's client default (`Transport`'s
/// `MaxResponseHeaderBytes`, 10 MiB), which k6 inherits, so whatever k6 accepts we accept. The
/// buffer only grows that large for a response that big.
const MAX_HEAD_BYTES: usize = 10 * 1024 * 1024;

/// Header (or trailer) lines parsed with slots on the stack. Go has no count limit (only the
/// byte limit), so a head with more lines is parsed again with slots on the heap, one per line.
const STACK_HEADERS: usize = 100;

/// A chunk-size line (with its extensions) longer than this is malformed.
const MAX_LINE_BYTES: usize = 4096;

fn malformed(what: impl std::fmt::Display) -> ErrorKind {
    ErrorKind::Protocol(format!("malformed HTTP response: {what}"))
}

/// What the request head says beyond its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestInfo {
    /// `HEAD`: the response has no body whatever its headers say.
    pub(crate) is_head: bool,
    /// The request asked to close the connection after the response.
    pub(crate) close: bool,
}

/// Writes the request line and headers into `out` (cleared first).
///
/// `Host` and `User-Agent` come first (the caller's values win), then the caller's headers,
/// then `Content-Length` (Go: for any body, and `0` for an empty POST/PUT/PATCH) and
/// `Connection: close` when `close` is set.
pub(crate) fn encode_request(
    out: &mut Vec<u8>,
    method: &Method,
    url: &Target,
    headers: &HeaderMap,
    body_len: usize,
    user_agent: &HeaderValue,
    close: bool,
) -> RequestInfo {
    out.clear();
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(url.path_and_query().as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(headers.get(HOST).unwrap_or(url.host_header()).as_bytes());
    out.extend_from_slice(b"\r\nUser-Agent: ");
    out.extend_from_slice(headers.get(USER_AGENT).unwrap_or(user_agent).as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut close = close;
    for (name, value) in headers {
        if name == HOST || name == USER_AGENT {
            continue;
        }
        if name == CONNECTION && has_token(value, "close") {
            close = true;
        }
        write_canonical(out, name.as_str());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let wants_length =
        body_len > 0 || matches!(*method, Method::POST | Method::PUT | Method::PATCH);
    if wants_length
        && !headers.contains_key(CONTENT_LENGTH)
        && !headers.contains_key(TRANSFER_ENCODING)
    {
        out.extend_from_slice(b"Content-Length: ");
        write_decimal(out, body_len as u64);
        out.extend_from_slice(b"\r\n");
    }
    if close && !headers.contains_key(CONNECTION) {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    RequestInfo {
        is_head: *method == Method::HEAD,
        close,
    }
}

/// `content-type` → `Content-Type` (Go's `CanonicalMIMEHeaderKey`).
fn write_canonical(out: &mut Vec<u8>, name: &str) {
    let mut upper = true;
    for &b in name.as_bytes() {
        out.push(if upper { b.to_ascii_uppercase() } else { b });
        upper = b == b'-';
    }
}

fn write_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Whether a comma-separated header value contains `token` (ASCII case-insensitive).
pub(crate) fn has_token(value: &HeaderValue, token: &str) -> bool {
    value
        .as_bytes()
        .split(|&b| b == b',')
        .any(|part| part.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body (HEAD, 1xx, 204, 304).
    Empty,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the server closes (no length given): the connection cannot be reused.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) version: Version,
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
}

impl Head {
    /// RFC 9112 §6.3 message body length.
    pub(crate) fn framing(&self, request: RequestInfo) -> Result<Framing, ErrorKind> {
        let status = self.status.as_u16();
        if request.is_head || (100..200).contains(&status) || status == 204 || status == 304 {
            return Ok(Framing::Empty);
        }
        let mut encodings = self.headers.get_all(TRANSFER_ENCODING).iter().peekable();
        if encodings.peek().is_some() {
            let last = encodings
                .flat_map(|value| value.as_bytes().split(|&b| b == b','))
                .map(<[u8]>::trim_ascii)
                .filter(|coding| !coding.is_empty())
                .last();
            return Ok(match last {
                Some(coding) if coding.eq_ignore_ascii_case(b"chunked") => Framing::Chunked,
                _ => Framing::UntilClose,
            });
        }
        let mut length = None;
        for value in self.headers.get_all(CONTENT_LENGTH) {
            for part in value.as_bytes().split(|&b| b == b',') {
                let part = part.trim_ascii();
                if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
                    return Err(malformed("invalid Content-Length"));
                }
                let n = std::str::from_utf8(part)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| malformed("invalid Content-Length"))?;
                if length.is_some_and(|previous| previous != n) {
                    return Err(malformed("conflicting Content-Length"));
                }
                length = Some(n);
            }
        }
        Ok(length.map_or(Framing::UntilClose, Framing::Length))
    }

    /// Whether the server lets the connection carry another request.
    pub(crate) fn keeps_alive(&self) -> bool {
        let says = |token| {
            self.headers
                .get_all(CONNECTION)
                .iter()
                .any(|value| has_token(value, token))
        };
        if self.version == Version::HTTP_10 {
            says("keep-alive")
        } else {
            !says("close")
        }
    }
}

/// Parses the response head at the front of `buf` once it is all there, removing it from
/// `buf`; `Ok(None)` asks for more bytes. Header values share the head's memory.
pub(crate) fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, ErrorKind> {
    match parse_head_with(buf, STACK_HEADERS)? {
        // Rare: more lines than the stack slots. One slot per line is always enough.
        Parsed::TooManyHeaders => match parse_head_with(buf, line_count(buf))? {
            Parsed::Head(head) => Ok(head),
            Parsed::TooManyHeaders => Err(malformed("too many headers")),
        },
        Parsed::Head(head) => Ok(head),
    }
}

/// What one parse of a head gave.
enum Parsed {
    /// The head, or `None` when more bytes are needed.
    Head(Option<Head>),
    /// More header lines than slots.
    TooManyHeaders,
}

/// The number of lines in `buf`, an upper bound on its header lines.
fn line_count(buf: &[u8]) -> usize {
    buf.iter().filter(|&&byte| byte == b'\n').count() + 1
}

/// Parses with `capacity` header slots: on the stack up to [`STACK_HEADERS`], else on the heap.
fn parse_head_with(buf: &mut BytesMut, capacity: usize) -> Result<Parsed, ErrorKind> {
    let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
    let mut heap;
    let slots: &mut [httparse::Header<'_>] = if capacity <= STACK_HEADERS {
        &mut stack
    } else {
        heap = vec![httparse::EMPTY_HEADER; capacity];
        &mut heap
    };
    let mut response = httparse::Response::new(slots);
    let len = match response.parse(buf) {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) if buf.len() >= MAX_HEAD_BYTES => {
            return Err(malformed("header too large"));
        }
        Ok(Status::Partial) => return Ok(Parsed::Head(None)),
        Err(httparse::Error::TooManyHeaders) => return Ok(Parsed::TooManyHeaders),
        Err(e) => return Err(malformed(e)),
    };
    let version = match response.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let status = response
        .code
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| malformed("invalid response status"))?;
    // The parsed lines borrow `buf`; their values are to be slices of the head once it is split
    // off, so note where each name and value lies (offsets into `buf`) before splitting.
    let start = buf.as_ptr().addr();
    let offset = |part: &[u8]| match part {
        [] => 0,
        _ => part.as_ptr().addr() - start,
    };
    // On the stack like the slots (no allocation per response), on the heap past them.
    let count = response.headers.len();
    let mut stack_spans = [(0, 0, 0, 0); STACK_HEADERS];
    let mut heap_spans;
    let spans: &mut [(usize, usize, usize, usize)] = if count <= STACK_HEADERS {
        &mut stack_spans[..count]
    } else {
        heap_spans = vec![(0, 0, 0, 0); count];
        &mut heap_spans
    };
    for (span, header) in spans.iter_mut().zip(response.headers.iter()) {
        let (name, value) = (header.name.as_bytes(), header.value);
        *span = (offset(name), name.len(), offset(value), value.len());
    }
    let head = buf.split_to(len).freeze();
    let mut headers = HeaderMap::with_capacity(count);
    for &(name, name_len, value, value_len) in spans.iter() {
        let name = HeaderName::from_bytes(&head[name..name + name_len])
            .map_err(|_| malformed("invalid header name"))?;
        let value = HeaderValue::from_maybe_shared(head.slice(value..value + value_len))
            .map_err(|_| malformed("invalid header value"))?;
        headers.append(name, value);
    }
    Ok(Parsed::Head(Some(Head {
        version,
        status,
        headers,
    })))
}

/// One step of chunked decoding.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// The next `n` bytes at the front of the buffer are body data: consume them.
    Data(usize),
    /// Read more bytes first.
    NeedMore,
    /// The body (and its trailers) ended; the buffer holds what follows.
    Done,
}

/// Incremental `Transfer-Encoding: chunked` decoder over a read buffer.
#[derive(Debug, Default)]
pub(crate) struct Chunked {
    state: ChunkState,
    remaining: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Data,
    DataEnd,
    Trailers,
    Done,
}

impl Chunked {
    /// Advances over framing bytes in `buf`; returns data to consume, or asks for more.
    /// The caller must consume exactly `n` bytes after [`Step::Data`]`(n)`.
    pub(crate) fn step(&mut self, buf: &mut BytesMut) -> Result<Step, ErrorKind> {
        loop {
            match self.state {
                ChunkState::Size => {
                    // httparse reads an empty size as 0; RFC 9112 §7.1 wants a digit.
                    if buf.first().is_some_and(|b| !b.is_ascii_hexdigit()) {
                        return Err(malformed("invalid chunk size"));
                    }
                    let (consumed, size) = match httparse::parse_chunk_size(buf) {
                        Ok(Status::Complete(parsed)) => parsed,
                        Ok(Status::Partial) if buf.len() > MAX_LINE_BYTES => {
                            return Err(malformed("chunk line too long"));
                        }
                        Ok(Status::Partial) => return Ok(Step::NeedMore),
                        Err(_) => return Err(malformed("invalid chunk size")),
                    };
                    buf.advance(consumed);
                    if size == 0 {
                        self.state = ChunkState::Trailers;
                    } else {
                        self.remaining = size;
                        self.state = ChunkState::Data;
                    }
                }
                ChunkState::Data => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let n = usize::try_from(self.remaining)
                        .unwrap_or(usize::MAX)
                        .min(buf.len());
                    self.remaining -= n as u64;
                    if self.remaining == 0 {
                        self.state = ChunkState::DataEnd;
                    }
                    return Ok(Step::Data(n));
                }
                ChunkState::DataEnd => {
                    if !b"\r\n".starts_with(&buf[..buf.len().min(2)]) {
                        return Err(malformed("missing CRLF after chunk"));
                    }
                    if buf.len() < 2 {
                        return Ok(Step::NeedMore);
                    }
                    buf.advance(2);
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailers => {
                    let mut trailers = [httparse::EMPTY_HEADER; STACK_HEADERS];
                    let mut parsed = httparse::parse_headers(buf, &mut trailers);
                    let mut many;
                    if matches!(parsed, Err(httparse::Error::TooManyHeaders)) {
                        many = vec![httparse::EMPTY_HEADER; line_count(buf)];
                        parsed = httparse::parse_headers(buf, &mut many);
                    }
                    match parsed {
                        Ok(Status::Complete((consumed, _))) => {
                            buf.advance(consumed);
                            self.state = ChunkState::Done;
                        }
                        Ok(Status::Partial) if buf.len() >= MAX_HEAD_BYTES => {
                            return Err(malformed("trailers too large"));
                        }
                        Ok(Status::Partial) => return Ok(Step::NeedMore),
                        Err(e) => return Err(malformed(e)),
                    }
                }
                ChunkState::Done => return Ok(Step::Done),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Head, ErrorKind> {
        let mut buf = BytesMut::from(text);
        parse_head(&mut buf).map(|head| head.expect("complete head"))
    }

    const GET: RequestInfo = RequestInfo {
        is_head: false,
        close: false,
    };

    #[test]
    fn encodes_requests_like_go() {
        let url = Target::parse("http://127.0.0.1:8080/a?b=1").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-trace-id", HeaderValue::from_static("7"));
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        let ua = HeaderValue::from_static("ua/1");
        let mut out = Vec::new();
        let info = encode_request(&mut out, &Method::POST, &url, &headers, 4, &ua, false);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "POST /a?b=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: ua/1\r\n\
             X-Trace-Id: 7\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\n"
        );
        assert_eq!(info, GET);

        headers.clear();
        headers.insert(HOST, HeaderValue::from_static("example.test"));
        let info = encode_request(&mut out, &Method::HEAD, &url, &headers, 0, &ua, true);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "HEAD /a?b=1 HTTP/1.1\r\nHost: example.test\r\nUser-Agent: ua/1\r\n\
             Connection: close\r\n\r\n"
        );
        assert!(info.is_head && info.close);

        encode_request(
            &mut out,
            &Method::PUT,
            &url,
            &HeaderMap::new(),
            0,
            &ua,
            false,
        );
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("Content-Length: 0\r\n")
        );
    }

    #[test]
    fn parses_heads_incrementally() {
        let text = b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody";
        let mut buf = BytesMut::new();
        for (i, &byte) in text[..24].iter().enumerate() {
            buf.extend_from_slice(&[byte]);
            assert!(parse_head(&mut buf).unwrap().is_none(), "{i}");
        }
        buf.extend_from_slice(&text[24..]);
        let head = parse_head(&mut buf).unwrap().expect("complete head");
        assert_eq!(head.headers["a"], "b");
        assert_eq!(&buf[..], b"body");

        let mut buf = BytesMut::from(&b"HTTP/1.0 200 OK\n\nx"[..]);
        assert_eq!(
            parse_head(&mut buf).unwrap().unwrap().version,
            Version::HTTP_10
        );
        assert_eq!(&buf[..], b"x");
    }

    #[test]
    fn refuses_oversized_heads() {
        let mut big = BytesMut::from(&b"HTTP/1.1 200 OK\r\nX-Big: "[..]);
        big.resize(MAX_HEAD_BYTES - 1, b'a');
        assert!(parse_head(&mut big).unwrap().is_none());
        big.extend_from_slice(b"a");
        assert_eq!(parse_head(&mut big).unwrap_err().error_code(), 1000);
    }

    #[test]
    fn accepts_what_go_accepts_many_and_large_headers() {
        // 150 Set-Cookie lines (a browser and k6 take them) and a 100 KB header.
        let mut many = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..150 {
            many.push_str(&format!("Set-Cookie: c{i}={i}\r\n"));
        }
        many.push_str(&format!("X-Big: {}\r\n\r\nrest", "b".repeat(100_000)));
        let mut buf = BytesMut::from(many.as_str());
        let parsed = parse_head(&mut buf).unwrap().expect("complete head");
        assert_eq!(parsed.headers.get_all("set-cookie").iter().count(), 150);
        assert_eq!(parsed.headers["x-big"].len(), 100_000);
        assert_eq!(&buf[..], b"rest");
        // Incomplete, with more lines than the stack slots: asks for more bytes.
        let mut partial = BytesMut::from(&many.as_bytes()[..4_000]);
        assert!(parse_head(&mut partial).unwrap().is_none());

        // Trailers too.
        let mut trailers = String::from("0\r\n");
        for i in 0..150 {
            trailers.push_str(&format!("X-T{i}: {i}\r\n"));
        }
        trailers.push_str("\r\nnext");
        let mut buf = BytesMut::from(trailers.as_str());
        let mut decoder = Chunked::default();
        assert_eq!(decoder.step(&mut buf).unwrap(), Step::Done);
        assert_eq!(&buf[..], b"next");
    }

    #[test]
    fn parses_heads() {
        let h = head("HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-A:  1 \r\nX-A: 2\r\n\r\n")
            .unwrap();
        assert_eq!(
            (h.version, h.status),
            (Version::HTTP_11, StatusCode::CREATED)
        );
        assert_eq!(h.headers.get_all("x-a").iter().count(), 2);
        assert_eq!(h.headers["x-a"], "1");
        let blank = head("HTTP/1.1 200 OK\r\nX-Empty:\r\nX-Blank: \t \r\nB: 2\r\n\r\n").unwrap();
        assert_eq!(blank.headers["x-empty"], "");
        assert_eq!(blank.headers["x-blank"], "");
        assert_eq!(blank.headers["b"], "2");
        assert_eq!(h.framing(GET).unwrap(), Framing::Length(5));
        assert!(h.keeps_alive());

        let h = head("HTTP/1.0 200\nConnection: Keep-Alive\n\n").unwrap();
        assert_eq!(h.version, Version::HTTP_10);
        assert_eq!(h.framing(GET).unwrap(), Framing::UntilClose);
        assert!(h.keeps_alive());
        assert!(!head("HTTP/1.0 200 OK\r\n\r\n").unwrap().keeps_alive());
        assert!(
            !head("HTTP/1.1 200 OK\r\nConnection: x, close\r\n\r\n")
                .unwrap()
                .keeps_alive()
        );

        for bad in [
            "HTTP/2 200 OK\r\n\r\n",
            "HTTP/1.1 20 OK\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "garbage\r\n\r\n",
            "HTTP/1.1 200 OK\r\nNo colon\r\n\r\n",
            "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            "HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n",
            "HTTP/1.1 000 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nA: b\x01c\r\n\r\n",
        ] {
            assert_eq!(head(bad).unwrap_err().error_code(), 1000, "{bad:?}");
        }
    }

    #[test]
    fn frames_bodies() {
        let framing = |text: &str, request: RequestInfo| head(text).unwrap().framing(request);
        let chunked =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(framing(chunked, GET).unwrap(), Framing::Chunked);
        let gzip_only = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n";
        assert_eq!(framing(gzip_only, GET).unwrap(), Framing::UntilClose);
        let head_req = RequestInfo {
            is_head: true,
            close: false,
        };
        let sized = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
        assert_eq!(framing(sized, head_req).unwrap(), Framing::Empty);
        for empty in [
            "HTTP/1.1 204 No Content\r\n\r\n",
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
        ] {
            assert_eq!(framing(empty, GET).unwrap(), Framing::Empty);
        }
        let same = "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n";
        assert_eq!(framing(same, GET).unwrap(), Framing::Length(3));
        for bad in [
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        ] {
            assert_eq!(framing(bad, GET).unwrap_err().error_code(), 1000, "{bad:?}");
        }
    }

    fn decode_all(input: &[u8], split: usize) -> Result<(Vec<u8>, Vec<u8>), ErrorKind> {
        let mut decoder = Chunked::default();
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut fed = 0;
        loop {
            match decoder.step(&mut buf)? {
                Step::Data(n) => body.extend_from_slice(&buf.split_to(n)),
                Step::Done => return Ok((body, buf.to_vec())),
                Step::NeedMore => {
                    if fed == input.len() {
                        return Err(malformed("truncated"));
                    }
                    let end = (fed + split).min(input.len());
                    buf.extend_from_slice(&input[fed..end]);
                    fed = end;
                }
            }
        }
    }

    #[test]
    fn decodes_chunked_bodies_in_any_split() {
        let input = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        for split in 1..input.len() {
            let (body, rest) = decode_all(input, split).unwrap();
            assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.", "split {split}");
            assert!(b"NEXT".starts_with(&rest) || rest.is_empty() || rest == b"NEXT");
        }
        let (body, rest) = decode_all(b"3;a=\"b\"\r\nabc\r\n0\r\n\r\n", 64).unwrap();
        assert_eq!((&body[..], &rest[..]), (&b"abc"[..], &b""[..]));
    }

    #[test]
    fn rejects_bad_chunks() {
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"3\r\nabcX\r\n",
            b"11111111111111111\r\n",
            b"3 junk",
            // Chunk lines end in CRLF, not a bare LF (RFC 9112 §7.1; hyper is as strict).
            b"3\nabc\n0\n\n",
            b"3\r\nabc\n0\r\n\r\n",
            b"0\r\nBad Trailer: x\r\n\r\n",
        ] {
            assert_eq!(
                decode_all(bad, 64).map(|_| ()).unwrap_err().error_code(),
                1000
            );
        }
    }
}
