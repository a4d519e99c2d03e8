//! The per-VU client: keep-alive connections per origin, spoken to directly by the VU's task.
//!
//! No connection task, no channel: the VU's own task writes the request and reads the response
//! on its connection (HTTP/1.1 is one exchange at a time). An idle connection is just a socket
//! (a few hundred bytes); buffers exist only during an exchange. A pooled connection is probed
//! before use, so one the server closed while the VU was idle is replaced before any byte is
//! written; and like Go's transport, a replayable request that got no response byte on a
//! reused connection is retried once on a new one.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::connect;
use super::dns::DnsCache;
use super::error::{ErrorKind, HttpError};
use super::h1::{self, Chunked, Framing, Head, RequestInfo, Step};
use super::io::Timed;
use super::target::Target;
use super::target_policy::TargetPolicy;

/// The default `User-Agent`.
pub const DEFAULT_USER_AGENT: &str = concat!("stampede/", env!("CARGO_PKG_VERSION"));

/// At most this many idle connections (one per origin) are kept per VU; the oldest goes first.
const MAX_IDLE_ORIGINS: usize = 8;

/// First read size of an exchange (a typical small response fits in one read).
const READ_CHUNK: usize = 4096;

/// Largest read for long bodies.
const MAX_READ: usize = 64 * 1024;

/// The request-head buffer is kept between requests unless it grew past this.
const KEEP_WRITE_BUFFER: usize = 16 * 1024;

/// Settings shared by every VU's client.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Accept any server certificate (k6 `insecureSkipTLSVerify`).
    pub insecure_skip_tls_verify: bool,
    /// Disable keep-alive: send `Connection: close` and open a connection per request
    /// (k6 `noConnectionReuse`).
    pub no_connection_reuse: bool,
    /// `User-Agent` for requests that set none; `None` means [`DEFAULT_USER_AGENT`].
    pub user_agent: Option<String>,
    /// How much of a response body is kept in [`BodyMode::Keep`] (default 1 MiB).
    pub max_body_bytes: usize,
    /// The run's DNS cache.
    pub dns: Arc<DnsCache>,
    /// Where load may go (checked on every new connection).
    pub targets: Arc<TargetPolicy>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            insecure_skip_tls_verify: false,
            no_connection_reuse: false,
            user_agent: None,
            max_body_bytes: 1 << 20,
            dns: Arc::new(DnsCache::new()),
            targets: Arc::new(TargetPolicy::default()),
        }
    }
}

/// One request (one hop: the caller follows redirects).
#[derive(Debug, Clone)]
pub struct OutgoingRequest {
    /// The method.
    pub method: Method,
    /// Where to send it.
    pub url: Target,
    /// Headers; `Host`, `User-Agent` and `Content-Length` are added when absent.
    pub headers: HeaderMap,
    /// The body (empty for none).
    pub body: Bytes,
}

/// Per-request options.
#[derive(Debug, Clone, Copy)]
pub struct SendOptions {
    /// Covers the whole exchange: DNS, connect, TLS, sending, waiting and the body (k6: 60 s).
    pub timeout: Duration,
    /// Whether the response body is kept.
    pub keep_body: BodyMode,
}

impl Default for SendOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            keep_body: BodyMode::Keep,
        }
    }
}

/// What happens to the response body. It is always read to the end either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyMode {
    /// Read and count it, keep nothing (k6 `discardResponseBodies`).
    Discard,
    /// Keep up to [`ClientConfig::max_body_bytes`].
    Keep,
}

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body (empty when discarded; cut at `max_body_bytes`).
    pub body: Bytes,
    /// The body was longer than `max_body_bytes`.
    pub body_truncated: bool,
    /// k6's timing phases.
    pub timings: Timings,
    /// Bytes written on the wire for this request (TLS records and handshake included).
    pub bytes_sent: u64,
    /// Bytes read from the wire for this request (headers, body, TLS overhead).
    pub bytes_received: u64,
    /// `tls1.3`, `tls1.2` ... for `https`.
    pub tls_version: Option<&'static str>,
    /// `HTTP/1.1` (or `HTTP/1.0` if the server answered so).
    pub proto: &'static str,
    /// The address connected to.
    pub remote_addr: SocketAddr,
}

/// k6's HTTP timing phases (`lib/netext/httpext/tracer.go`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// From asking for a connection to having one: DNS, connect and TLS on a new
    /// connection, about 0 on a reused one.
    pub blocked: Duration,
    /// The TCP connect (0 on reuse).
    pub connecting: Duration,
    /// The TLS handshake (0 on reuse and for `http`).
    pub tls_handshaking: Duration,
    /// From having the connection to the last request byte written.
    pub sending: Duration,
    /// From the last request byte to the first response byte.
    pub waiting: Duration,
    /// From the first response byte to the end of the body.
    pub receiving: Duration,
    /// `sending + waiting + receiving`.
    pub duration: Duration,
}

/// What is known about one request while it runs; becomes [`Timings`] at the end.
#[derive(Debug)]
pub(crate) struct Trace {
    pub(crate) start: Instant,
    pub(crate) connect_start: Option<Instant>,
    pub(crate) connect_done: Option<Instant>,
    pub(crate) tls_start: Option<Instant>,
    pub(crate) tls_done: Option<Instant>,
    pub(crate) got_conn: Option<Instant>,
    pub(crate) tls_version: Option<&'static str>,
    /// Bytes (sent, received) of a TLS handshake that failed (no connection to read them from).
    pub(crate) handshake_bytes: (u64, u64),
    /// Socket counters when the exchange began (0 on a new connection: its handshake counts).
    base_written: u64,
    base_read: u64,
}

impl Trace {
    fn new(start: Instant) -> Self {
        Self {
            start,
            connect_start: None,
            connect_done: None,
            tls_start: None,
            tls_done: None,
            got_conn: None,
            tls_version: None,
            handshake_bytes: (0, 0),
            base_written: 0,
            base_read: 0,
        }
    }

    /// Starts counting on `conn`, which was just opened (`fresh`) or taken from the pool.
    fn attach(&mut self, conn: &mut Conn, fresh: bool) {
        self.got_conn = Some(Instant::now());
        self.tls_version = conn.tls_version;
        conn.stream.start_exchange();
        let counted = conn.stream.counted();
        (self.base_written, self.base_read) = if fresh {
            (0, 0)
        } else {
            (counted.bytes_written(), counted.bytes_read())
        };
    }

    /// Forgets a connection that died before answering: its phases and bytes do not count.
    fn restart(&mut self) {
        *self = Self::new(self.start);
    }

    /// Bytes (sent, received) of this request on `conn`.
    fn bytes(&self, conn: Option<&Conn>) -> (u64, u64) {
        match conn {
            Some(conn) => {
                let counted = conn.stream.counted();
                (
                    counted.bytes_written().saturating_sub(self.base_written),
                    counted.bytes_read().saturating_sub(self.base_read),
                )
            }
            None => self.handshake_bytes,
        }
    }

    /// k6's `Tracer.Done()`: the phases, given the write/read marks of the connection.
    fn timings(&self, conn: Option<&Conn>, end: Instant) -> Timings {
        let span = |from: Option<Instant>, to: Option<Instant>| match (from, to) {
            (Some(from), Some(to)) => to.saturating_duration_since(from),
            _ => Duration::ZERO,
        };
        let mut t = Timings {
            blocked: span(Some(self.start), self.got_conn),
            connecting: span(self.connect_start, self.connect_done),
            tls_handshaking: span(self.tls_start, self.tls_done),
            ..Timings::default()
        };
        let (wrote, first_byte) = conn.map_or((None, None), |conn| {
            (conn.stream.last_write(), conn.stream.first_read())
        });
        if let Some(wrote) = wrote {
            let ready = self
                .tls_done
                .or(self.connect_done)
                .or(self.got_conn)
                .unwrap_or(self.start);
            t.sending = wrote.saturating_duration_since(ready);
            t.waiting = match first_byte {
                Some(first) => first.saturating_duration_since(wrote),
                None => end.saturating_duration_since(wrote),
            };
        }
        if let Some(first) = first_byte {
            t.receiving = end.saturating_duration_since(first);
        }
        t.duration = t.sending + t.waiting + t.receiving;
        t
    }

    fn error(&self, kind: ErrorKind, conn: Option<&Conn>) -> HttpError {
        let (bytes_sent, bytes_received) = self.bytes(conn);
        HttpError {
            kind,
            timings: self.timings(conn, Instant::now()),
            bytes_sent,
            bytes_received,
            tls_version: self.tls_version,
        }
    }
}

/// One open connection of a VU.
#[derive(Debug)]
struct Conn {
    origin: Target,
    stream: Timed,
    tls_version: Option<&'static str>,
    remote: SocketAddr,
    /// When it went back to the pool.
    idle_since: Instant,
}

/// A response read to the end, before timings are attached.
struct Exchanged {
    head: Head,
    body: Bytes,
    body_truncated: bool,
    end: Instant,
    reusable: bool,
}

/// The HTTP/1.1 client of one VU. Not shared, not locked; holds no socket until it sends.
pub struct VuClient {
    config: Arc<ClientConfig>,
    /// Idle keep-alive connections, at most one per origin.
    pool: Vec<Conn>,
    /// The connection of the exchange in progress (kept here so that a timed-out exchange
    /// still reports its bytes and phases).
    active: Option<Conn>,
    user_agent: HeaderValue,
    /// The encoded request head, reused between requests.
    head: Vec<u8>,
}

impl std::fmt::Debug for VuClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VuClient")
            .field("open_connections", &self.pool.len())
            .finish_non_exhaustive()
    }
}

impl VuClient {
    /// A client with no connection yet.
    pub fn new(config: Arc<ClientConfig>) -> Self {
        let user_agent = config
            .user_agent
            .as_deref()
            .and_then(|ua| HeaderValue::from_str(ua).ok())
            .unwrap_or(HeaderValue::from_static(DEFAULT_USER_AGENT));
        Self {
            config,
            pool: Vec::new(),
            active: None,
            user_agent,
            head: Vec::new(),
        }
    }

    /// Idle connections currently kept.
    pub fn open_connections(&self) -> usize {
        self.pool.len()
    }

    /// Closes every connection (k6 `noVUConnectionReuse`, between iterations).
    pub fn close_connections(&mut self) {
        self.pool = Vec::new();
    }

    /// Sends one request (one hop: redirects are followed by the caller, which counts each
    /// hop like k6) and reads the whole response.
    pub async fn send(
        &mut self,
        request: OutgoingRequest,
        options: SendOptions,
    ) -> Result<Response, HttpError> {
        let mut trace = Trace::new(Instant::now());
        let outcome = tokio::time::timeout(
            options.timeout,
            self.exchange(&request, options.keep_body, &mut trace),
        )
        .await;
        if self.head.capacity() > KEEP_WRITE_BUFFER {
            self.head = Vec::new();
        }
        let conn = self.active.take();
        match outcome {
            Ok(Ok(done)) => {
                let (bytes_sent, bytes_received) = trace.bytes(conn.as_ref());
                let timings = trace.timings(conn.as_ref(), done.end);
                let remote_addr = match conn {
                    Some(mut conn) => {
                        let remote = conn.remote;
                        if done.reusable && !self.config.no_connection_reuse {
                            conn.idle_since = done.end;
                            self.put_back(conn);
                        }
                        remote
                    }
                    None => SocketAddr::from(([0, 0, 0, 0], 0)),
                };
                Ok(Response {
                    status: done.head.status,
                    headers: done.head.headers,
                    body: done.body,
                    body_truncated: done.body_truncated,
                    timings,
                    bytes_sent,
                    bytes_received,
                    tls_version: trace.tls_version,
                    proto: if done.head.version == Version::HTTP_10 {
                        "HTTP/1.0"
                    } else {
                        "HTTP/1.1"
                    },
                    remote_addr,
                })
            }
            Ok(Err(kind)) => Err(trace.error(kind, conn.as_ref())),
            Err(_elapsed) => Err(trace.error(ErrorKind::Timeout, conn.as_ref())),
        }
    }

    async fn exchange(
        &mut self,
        request: &OutgoingRequest,
        mode: BodyMode,
        trace: &mut Trace,
    ) -> Result<Exchanged, ErrorKind> {
        let info = h1::encode_request(
            &mut self.head,
            &request.method,
            &request.url,
            &request.headers,
            request.body.len(),
            &self.user_agent,
            self.config.no_connection_reuse,
        );
        let replayable = is_replayable(&request.method, &request.headers);
        let max_body = self.config.max_body_bytes;
        loop {
            let (mut conn, reused) = match self.take_pooled(&request.url) {
                Some(mut conn) => {
                    if !conn.stream.probe_idle() {
                        continue; // closed while idle: nothing written, try the next one
                    }
                    (conn, true)
                }
                None => (self.open(&request.url, trace).await?, false),
            };
            trace.attach(&mut conn, !reused);
            let conn = self.active.insert(conn);
            let result = exchange_on(
                &mut conn.stream,
                &self.head,
                &request.body,
                info,
                mode,
                max_body,
            )
            .await;
            match result {
                Ok(done) => return Ok(done),
                Err(kind) => {
                    // A reused connection that gave no response byte was closed by the server
                    // (idle timeout racing our request): Go retries on a new connection when
                    // nothing was written or the request is replayable.
                    let silent = conn.stream.first_read().is_none();
                    let unsent = conn.stream.counted().bytes_written() == trace.base_written;
                    if reused && silent && (unsent || replayable) {
                        self.active = None;
                        trace.restart();
                        continue;
                    }
                    return Err(kind);
                }
            }
        }
    }

    async fn open(&mut self, origin: &Target, trace: &mut Trace) -> Result<Conn, ErrorKind> {
        let opened = connect::open(origin, &self.config, trace).await?;
        Ok(Conn {
            origin: origin.clone(),
            stream: opened.stream,
            tls_version: opened.tls_version,
            remote: opened.remote,
            idle_since: Instant::now(),
        })
    }

    fn take_pooled(&mut self, origin: &Target) -> Option<Conn> {
        if self.config.no_connection_reuse {
            return None;
        }
        let index = self
            .pool
            .iter()
            .position(|conn| conn.origin.same_origin(origin))?;
        Some(self.pool.swap_remove(index))
    }

    fn put_back(&mut self, conn: Conn) {
        if self.pool.len() >= MAX_IDLE_ORIGINS
            && let Some(oldest) = (0..self.pool.len()).min_by_key(|&i| self.pool[i].idle_since)
        {
            self.pool.swap_remove(oldest);
        }
        self.pool.reserve_exact(1);
        self.pool.push(conn);
    }
}

/// One request/response on an open connection.
async fn exchange_on(
    stream: &mut Timed,
    head: &[u8],
    body: &[u8],
    info: RequestInfo,
    mode: BodyMode,
    max_body: usize,
) -> Result<Exchanged, ErrorKind> {
    write_request(stream, head, body)
        .await
        .map_err(|e| ErrorKind::from_io(&e, "write"))?;

    let mut buf = BytesMut::new();
    let head = loop {
        let head = read_head(stream, &mut buf).await?;
        // Interim responses (100 Continue, 103 Early Hints) precede the real one.
        let status = head.status.as_u16();
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        break head;
    };

    let framing = head.framing(info)?;
    let mut kept = BodyBuf::new(mode, max_body, &framing);
    let clean = match framing {
        Framing::Empty => true,
        Framing::Length(mut remaining) => {
            loop {
                let n = usize::try_from(remaining)
                    .unwrap_or(usize::MAX)
                    .min(buf.len());
                kept.take(&mut buf, n, n as u64 == remaining);
                remaining -= n as u64;
                if remaining == 0 {
                    break;
                }
                if fill(stream, &mut buf, remaining).await? == 0 {
                    return Err(ErrorKind::Protocol("unexpected EOF".into()));
                }
            }
            true
        }
        Framing::Chunked => {
            let mut decoder = Chunked::default();
            loop {
                match decoder.step(&mut buf)? {
                    Step::Data(n) => kept.take(&mut buf, n, false),
                    Step::Done => break,
                    Step::NeedMore => {
                        if fill(stream, &mut buf, READ_CHUNK as u64).await? == 0 {
                            return Err(ErrorKind::Protocol("unexpected EOF".into()));
                        }
                    }
                }
            }
            true
        }
        Framing::UntilClose => {
            loop {
                let n = buf.len();
                kept.take(&mut buf, n, false);
                if fill(stream, &mut buf, MAX_READ as u64).await? == 0 {
                    break;
                }
            }
            false
        }
    };
    let end = Instant::now();
    // Bytes after the response (a misbehaving server) make the connection unusable.
    let reusable = clean
        && buf.is_empty()
        && !info.close
        && head.status != StatusCode::SWITCHING_PROTOCOLS
        && head.keeps_alive();
    let (body, body_truncated) = kept.finish();
    Ok(Exchanged {
        head,
        body,
        body_truncated,
        end,
        reusable,
    })
}

/// Writes head and body (one vectored write when possible) and flushes.
async fn write_request(stream: &mut Timed, head: &[u8], body: &[u8]) -> std::io::Result<()> {
    let (mut head, mut body) = (head, body);
    while !head.is_empty() || !body.is_empty() {
        let n = if body.is_empty() {
            stream.write(head).await?
        } else if head.is_empty() {
            stream.write(body).await?
        } else {
            stream
                .write_vectored(&[IoSlice::new(head), IoSlice::new(body)])
                .await?
        };
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        let from_head = n.min(head.len());
        head = &head[from_head..];
        body = body.get(n - from_head..).unwrap_or_default();
    }
    stream.flush().await
}

/// Reads until a whole response head is buffered, then parses it (removing it from `buf`).
async fn read_head(stream: &mut Timed, buf: &mut BytesMut) -> Result<Head, ErrorKind> {
    loop {
        if let Some(head) = h1::parse_head(buf)? {
            return Ok(head);
        }
        if fill(stream, buf, READ_CHUNK as u64).await? == 0 {
            // Go reports a server that closes before answering as `EOF`.
            let message = if stream.first_read().is_none() {
                "EOF"
            } else {
                "unexpected EOF"
            };
            return Err(ErrorKind::Protocol(message.into()));
        }
    }
}

/// Reads more bytes into `buf` (room for up to `want`, within [READ_CHUNK, MAX_READ]).
async fn fill(stream: &mut Timed, buf: &mut BytesMut, want: u64) -> Result<usize, ErrorKind> {
    let room = usize::try_from(want)
        .unwrap_or(MAX_READ)
        .clamp(READ_CHUNK, MAX_READ);
    if buf.capacity() - buf.len() < room.min(READ_CHUNK) {
        buf.reserve(room.max(buf.len()));
    }
    stream
        .read_buf(buf)
        .await
        .map_err(|e| ErrorKind::from_io(&e, "read"))
}

/// Go's `Request.isReplayable`: idempotent method or an idempotency key (bodies are in memory).
fn is_replayable(method: &Method, headers: &HeaderMap) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) || headers.contains_key("idempotency-key")
        || headers.contains_key("x-idempotency-key")
}

/// Collects (or only counts) a response body, keeping at most `cap` bytes.
struct BodyBuf {
    keep: bool,
    cap: usize,
    /// A body that arrived whole in the read buffer, kept without copying.
    whole: Bytes,
    copied: BytesMut,
    expected: usize,
    truncated: bool,
}

impl BodyBuf {
    fn new(mode: BodyMode, cap: usize, framing: &Framing) -> Self {
        let expected = match framing {
            Framing::Length(n) => usize::try_from(*n).unwrap_or(usize::MAX),
            _ => 0,
        };
        Self {
            keep: mode == BodyMode::Keep,
            cap,
            whole: Bytes::new(),
            copied: BytesMut::new(),
            expected,
            truncated: false,
        }
    }

    /// Consumes the first `n` bytes of `buf`; `last` says they end the body.
    fn take(&mut self, buf: &mut BytesMut, n: usize, last: bool) {
        if n == 0 {
            return;
        }
        if !self.keep {
            buf.advance(n);
            return;
        }
        let room = self.cap.saturating_sub(self.copied.len());
        let keep = n.min(room);
        if keep < n {
            self.truncated = true;
        }
        if last && self.copied.is_empty() && keep == n {
            // The whole body is in the read buffer: hand it over without a copy.
            self.whole = buf.split_to(n).freeze();
            return;
        }
        if keep > 0 {
            if self.copied.capacity() == 0 {
                self.copied
                    .reserve(self.expected.clamp(keep, self.cap.max(keep)));
            }
            self.copied.extend_from_slice(&buf[..keep]);
        }
        buf.advance(n);
    }

    fn finish(self) -> (Bytes, bool) {
        if self.whole.is_empty() {
            (self.copied.freeze(), self.truncated)
        } else {
            (self.whole, self.truncated)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take_all(mode: BodyMode, cap: usize, pieces: &[&[u8]], framing: Framing) -> (Bytes, bool) {
        let mut body = BodyBuf::new(mode, cap, &framing);
        for (i, piece) in pieces.iter().enumerate() {
            let mut buf = BytesMut::from(*piece);
            body.take(&mut buf, piece.len(), i + 1 == pieces.len());
            assert!(buf.is_empty());
        }
        body.finish()
    }

    #[test]
    fn body_buffer_keeps_up_to_the_cap() {
        let keep = BodyMode::Keep;
        let three: &[&[u8]] = &[b"abc", b"def", b"ghi"];
        assert_eq!(
            take_all(keep, 5, three, Framing::Chunked),
            (Bytes::from_static(b"abcde"), true)
        );
        assert_eq!(
            take_all(keep, 100, three, Framing::Length(9)),
            (Bytes::from_static(b"abcdefghi"), false)
        );
        assert_eq!(
            take_all(keep, 2, &[b"abc"], Framing::Length(3)),
            (Bytes::from_static(b"ab"), true)
        );
        assert_eq!(
            take_all(keep, 3, &[b"abc"], Framing::Length(3)),
            (Bytes::from_static(b"abc"), false)
        );
        assert_eq!(
            take_all(BodyMode::Discard, 5, three, Framing::Chunked),
            (Bytes::new(), false)
        );
    }

    #[test]
    fn timings_follow_k6_rules_before_any_byte() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut trace = Trace::new(start);
        trace.connect_start = Some(at(1));
        trace.connect_done = Some(at(3));
        trace.got_conn = Some(at(3));
        let t = trace.timings(None, at(10));
        assert_eq!(t.blocked, Duration::from_millis(3));
        assert_eq!(t.connecting, Duration::from_millis(2));
        assert_eq!(t.duration, Duration::ZERO);
    }

    #[test]
    fn the_client_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let mut client = VuClient::new(Arc::new(ClientConfig::default()));
        let request = OutgoingRequest {
            method: Method::GET,
            url: Target::parse("http://127.0.0.1:1/").unwrap(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        };
        let fut = client.send(request, SendOptions::default());
        assert_send(&fut);
    }
}
