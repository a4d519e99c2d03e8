//! Runner tests of the per-VU HTTP client against real servers on 127.0.0.1 (raw TCP, hyper, TLS).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use stampede_runner::http::{
    BodyMode, ClientConfig, DnsCache, ErrorKind, HttpError, OutgoingRequest, Response, SendOptions,
    Target, VuClient,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Every test runs under this bound.
async fn bounded<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), test)
        .await
        .expect("test took longer than 20 s")
}

fn client(config: ClientConfig) -> VuClient {
    VuClient::new(Arc::new(config))
}

fn get(url: &str) -> OutgoingRequest {
    OutgoingRequest {
        method: Method::GET,
        url: Target::parse(url).expect("test URL"),
        headers: HeaderMap::new(),
        body: Bytes::new(),
    }
}

fn post(url: &str, body: &'static [u8]) -> OutgoingRequest {
    OutgoingRequest {
        method: Method::POST,
        body: Bytes::from_static(body),
        ..get(url)
    }
}

fn opts() -> SendOptions {
    SendOptions::default()
}

fn assert_phases_add_up(response: &Response) {
    let t = response.timings;
    assert_eq!(t.duration, t.sending + t.waiting + t.receiving, "{t:?}");
}

// ---------------------------------------------------------------------------------------------
// A raw HTTP/1.1 server that counts what it reads and writes and answers from a script.

/// One scripted answer.
#[derive(Clone, Debug)]
struct Reply {
    /// Wait before the first response byte.
    delay: Duration,
    /// The status line and headers, without the blank line.
    head: String,
    /// Body pieces, each after its own pause.
    chunks: Vec<(Duration, &'static [u8])>,
    /// Close the socket after this response (without saying so).
    close: bool,
    /// Never answer (hold the connection open).
    silent: bool,
    /// Close without answering (like a server whose idle timeout raced the request).
    hang_up: bool,
}

impl Reply {
    fn ok(body: &'static [u8]) -> Self {
        Reply {
            delay: Duration::ZERO,
            head: format!("HTTP/1.1 200 OK\r\nContent-Length: {}", body.len()),
            chunks: vec![(Duration::ZERO, body)],
            close: false,
            silent: false,
            hang_up: false,
        }
    }
}

#[derive(Clone)]
struct RawServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    bytes_in: Arc<AtomicU64>,
    bytes_out: Arc<AtomicU64>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl RawServer {
    /// Starts a server; `script(n)` answers the n-th request (0-based, over all connections).
    async fn start(script: impl Fn(usize) -> Reply + Send + Sync + 'static) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = RawServer {
            addr: listener.local_addr().unwrap(),
            connections: Arc::default(),
            bytes_in: Arc::default(),
            bytes_out: Arc::default(),
            heads: Arc::default(),
        };
        let script = Arc::new(script);
        let requests = Arc::new(AtomicUsize::new(0));
        let state = server.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                state.connections.fetch_add(1, Ordering::SeqCst);
                // Each scripted write leaves at once (no Nagle delay against delayed ACKs).
                socket.set_nodelay(true).unwrap();
                let (state, script, requests) = (state.clone(), script.clone(), requests.clone());
                tokio::spawn(async move {
                    let _ = state.serve(socket, &*script, &requests).await;
                });
            }
        });
        server
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn serve(
        &self,
        mut socket: TcpStream,
        script: &(dyn Fn(usize) -> Reply + Send + Sync),
        requests: &AtomicUsize,
    ) -> std::io::Result<()> {
        let mut buf = Vec::new();
        loop {
            let Some(head_len) = self.read_request(&mut socket, &mut buf).await? else {
                return Ok(());
            };
            buf.drain(..head_len);
            let reply = script(requests.fetch_add(1, Ordering::SeqCst));
            if reply.hang_up {
                return Ok(());
            }
            if reply.silent {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            if !reply.delay.is_zero() {
                tokio::time::sleep(reply.delay).await;
            }
            self.write(&mut socket, format!("{}\r\n\r\n", reply.head).as_bytes())
                .await?;
            for (pause, chunk) in reply.chunks {
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                self.write(&mut socket, chunk).await?;
            }
            if reply.close {
                return Ok(());
            }
        }
    }

    /// Reads one request (head and Content-Length body); returns its length in `buf`.
    async fn read_request(
        &self,
        socket: &mut TcpStream,
        buf: &mut Vec<u8>,
    ) -> std::io::Result<Option<usize>> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let body_len = head
                    .lines()
                    .filter_map(|line| line.split_once(':'))
                    .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, value)| value.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                let total = end + 4 + body_len;
                if buf.len() >= total {
                    self.heads.lock().unwrap().push(head);
                    return Ok(Some(total));
                }
            }
            let n = socket.read(&mut chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            self.bytes_in.fetch_add(n as u64, Ordering::SeqCst);
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn write(&self, socket: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
        socket.write_all(bytes).await?;
        self.bytes_out
            .fetch_add(bytes.len() as u64, Ordering::SeqCst);
        Ok(())
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------------------------------------
// Keep-alive and connection handling.

#[tokio::test]
async fn keep_alive_reuses_the_connection() {
    bounded(async {
        let server = RawServer::start(|_| Reply::ok(b"hello")).await;
        let mut vu = client(ClientConfig::default());
        let first = vu.send(get(&server.url("/a")), opts()).await.unwrap();
        assert_eq!(first.status, StatusCode::OK);
        assert_eq!(first.body, "hello");
        assert_eq!(first.proto, "HTTP/1.1");
        assert!(first.timings.connecting > Duration::ZERO);
        assert!(first.timings.blocked >= first.timings.connecting);

        let second = vu.send(get(&server.url("/b")), opts()).await.unwrap();
        assert_eq!(second.body, "hello");
        assert_eq!(second.timings.connecting, Duration::ZERO);
        assert_eq!(second.timings.tls_handshaking, Duration::ZERO);
        assert!(second.timings.blocked < Duration::from_millis(50));
        assert_eq!(server.connections(), 1);
        assert_eq!(vu.open_connections(), 1);

        vu.close_connections();
        assert_eq!(vu.open_connections(), 0);
        vu.send(get(&server.url("/c")), opts()).await.unwrap();
        assert_eq!(server.connections(), 2);
    })
    .await;
}

#[tokio::test]
async fn no_connection_reuse_opens_a_connection_per_request() {
    bounded(async {
        let server = RawServer::start(|_| Reply::ok(b"hi")).await;
        let mut vu = client(ClientConfig {
            no_connection_reuse: true,
            ..ClientConfig::default()
        });
        for i in 1..=3 {
            let response = vu.send(get(&server.url("/")), opts()).await.unwrap();
            assert!(response.timings.connecting > Duration::ZERO);
            assert_eq!(server.connections(), i);
            assert_eq!(vu.open_connections(), 0);
        }
        let heads = server.heads.lock().unwrap();
        assert!(
            heads.iter().all(|h| h.contains("\r\nConnection: close")),
            "{heads:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_server_closing_an_idle_connection_is_replaced_transparently() {
    bounded(async {
        // The server closes after each response without a `Connection: close` header.
        let server = RawServer::start(|_| Reply {
            close: true,
            ..Reply::ok(b"bye")
        })
        .await;
        let mut vu = client(ClientConfig::default());
        let first = vu.send(get(&server.url("/")), opts()).await.unwrap();
        // Give the FIN time to arrive, then the same at once (racing the close).
        tokio::time::sleep(Duration::from_millis(20)).await;
        let second = vu.send(get(&server.url("/")), opts()).await.unwrap();
        assert_eq!(second.body, "bye");
        assert!(second.timings.connecting > Duration::ZERO);
        assert_eq!(server.connections(), 2);
        // The dead attempt is not counted: both requests report the same bytes.
        assert_eq!(first.bytes_sent, second.bytes_sent);
        assert_eq!(first.bytes_received, second.bytes_received);
        let third = vu.send(get(&server.url("/")), opts()).await.unwrap();
        assert_eq!(third.body, "bye");
        assert_eq!(server.connections(), 3);
        assert_eq!(server.bytes_in.load(Ordering::SeqCst), first.bytes_sent * 3);
    })
    .await;
}

#[tokio::test]
async fn connection_close_from_the_server_is_honoured() {
    bounded(async {
        let server = RawServer::start(|_| Reply {
            head: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close".into(),
            close: true,
            ..Reply::ok(b"ok")
        })
        .await;
        let mut vu = client(ClientConfig::default());
        vu.send(get(&server.url("/")), opts()).await.unwrap();
        assert_eq!(vu.open_connections(), 0);
        vu.send(get(&server.url("/")), opts()).await.unwrap();
        assert_eq!(server.connections(), 2);
    })
    .await;
}

#[tokio::test]
async fn http_1_0_responses_without_keep_alive_close_the_connection() {
    bounded(async {
        let server = RawServer::start(|_| Reply {
            head: "HTTP/1.0 200 OK\r\nContent-Length: 2".into(),
            close: true,
            ..Reply::ok(b"ok")
        })
        .await;
        let mut vu = client(ClientConfig::default());
        let response = vu.send(get(&server.url("/")), opts()).await.unwrap();
        assert_eq!(response.proto, "HTTP/1.0");
        assert_eq!(vu.open_connections(), 0);
    })
    .await;
}

#[tokio::test]
async fn each_origin_gets_its_own_connection() {
    bounded(async {
        let a = RawServer::start(|_| Reply::ok(b"a")).await;
        let b = RawServer::start(|_| Reply::ok(b"b")).await;
        let mut vu = client(ClientConfig::default());
        for _ in 0..3 {
            assert_eq!(vu.send(get(&a.url("/")), opts()).await.unwrap().body, "a");
            assert_eq!(vu.send(get(&b.url("/")), opts()).await.unwrap().body, "b");
        }
        assert_eq!((a.connections(), b.connections()), (1, 1));
        assert_eq!(vu.open_connections(), 2);
    })
    .await;
}

#[tokio::test]
async fn a_reused_connection_closed_under_a_request_is_retried_only_when_replayable() {
    bounded(async {
        // Request 1 (on the reused connection) is read, then the server hangs up.
        let server = RawServer::start(|n| Reply {
            hang_up: n == 1 || n == 4,
            ..Reply::ok(b"ok")
        })
        .await;
        let mut vu = client(ClientConfig::default());
        vu.send(get(&server.url("/")), opts()).await.unwrap();
        // GET is replayable: retried once on a new connection, counted once.
        let retried = vu.send(get(&server.url("/")), opts()).await.unwrap();
        assert_eq!(retried.body, "ok");
        assert!(retried.timings.connecting > Duration::ZERO);
        assert_eq!(server.connections(), 2);
        // POST is not: the failure is reported (Go: EOF, code 1000), with its bytes.
        vu.send(get(&server.url("/")), opts()).await.unwrap();
        let err = expect_err(vu.send(post(&server.url("/"), b"x"), opts()).await);
        assert_eq!(err.error_code(), 1000, "{err}");
        assert_eq!(err.to_string(), "EOF");
        assert!(err.bytes_sent > 0);
        assert_eq!(server.connections(), 2);
    })
    .await;
}

#[tokio::test]
async fn head_and_no_content_responses_have_no_body() {
    bounded(async {
        let server = RawServer::start(|n| match n % 2 {
            0 => Reply {
                head: "HTTP/1.1 200 OK\r\nContent-Length: 1000".into(),
                chunks: vec![],
                ..Reply::ok(b"")
            },
            _ => Reply {
                head: "HTTP/1.1 204 No Content".into(),
                chunks: vec![],
                ..Reply::ok(b"")
            },
        })
        .await;
        let mut vu = client(ClientConfig::default());
        for _ in 0..2 {
            let head = OutgoingRequest {
                method: Method::HEAD,
                ..get(&server.url("/"))
            };
            let response = vu.send(head, opts()).await.unwrap();
            assert_eq!(response.headers["content-length"], "1000");
            assert!(response.body.is_empty());
            let response = vu.send(get(&server.url("/")), opts()).await.unwrap();
            assert_eq!(response.status, StatusCode::NO_CONTENT);
        }
        assert_eq!(server.connections(), 1);
    })
    .await;
}

#[tokio::test]
async fn interim_responses_are_skipped() {
    bounded(async {
        let server = RawServer::start(|_| Reply {
            head: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2".into(),
            ..Reply::ok(b"ok")
        })
        .await;
        let mut vu = client(ClientConfig::default());
        let response = vu
            .send(post(&server.url("/"), b"data"), opts())
            .await
            .unwrap();
        assert_eq!(
            (response.status, &response.body[..]),
            (StatusCode::OK, &b"ok"[..])
        );
    })
    .await;
}

#[tokio::test]
async fn a_body_without_length_runs_until_the_server_closes() {
    bounded(async {
        let server = RawServer::start(|_| Reply {
            head: "HTTP/1.1 200 OK".into(),
            chunks: vec![
                (Duration::ZERO, b"part one, "),
                (Duration::from_millis(5), b"part two"),
            ],
            close: true,
            ..Reply::ok(b"")
        })
        .await;
        let mut vu = client(ClientConfig::default());
        let response = vu.send(get(&server.url("/")), opts()).await.unwrap();
        assert_eq!(response.body, "part one, part two");
        assert_eq!(vu.open_connections(), 0);
    })
    .await;
}

static BIG: [u8; 1 << 20] = [b'x'; 1 << 20];

#[tokio::test]
async fn large_bodies_are_read_counted_and_capped() {
    bounded(async {
        let server = RawServer::start(|_| Reply {
            head: format!("HTTP/1.1 200 OK\r\nContent-Length: {}", 2 * BIG.len()),
            chunks: vec![(Duration::ZERO, &BIG[..]), (Duration::ZERO, &BIG[..])],
            ..Reply::ok(b"")
        })
        .await;
        let mut vu = client(ClientConfig::default());
        let kept = vu.send(get(&server.url("/")), opts()).await.unwrap();
        assert_eq!(kept.body.len(), 1 << 20);
        assert!(kept.body_truncated);
        let discard = SendOptions {
            keep_body: BodyMode::Discard,
            ..opts()
        };
        let discarded = vu.send(get(&server.url("/")), discard).await.unwrap();
        assert!(discarded.body.is_empty());
        assert_eq!(kept.bytes_received, discarded.bytes_received);
        assert_eq!(
            kept.bytes_received + discarded.bytes_received,
            server.bytes_out.load(Ordering::SeqCst)
        );
        assert_eq!(server.connections(), 1);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Timing phases and byte counts.

#[tokio::test]
async fn phases_are_consistent_on_new_and_reused_connections() {
    bounded(async {
        let server = RawServer::start(|_| Reply::ok(b"hello")).await;
        let mut vu = client(ClientConfig::default());
        for _ in 0..5 {
            let response = vu.send(get(&server.url("/")), opts()).await.unwrap();
            assert_phases_add_up(&response);
            assert!(response.timings.duration > Duration::ZERO);
            assert!(response.timings.waiting > Duration::ZERO);
        }
    })
    .await;
}

#[tokio::test]
async fn waiting_covers_the_time_to_first_byte() {
    bounded(async {
        let server = RawServer::start(|_| Reply {
            delay: Duration::from_millis(50),
            ..Reply::ok(b"slow")
        })
        .await;
        let mut vu = client(ClientConfig::default());
        for _ in 0..2 {
            let response = vu.send(get(&server.url("/")), opts()).await.unwrap();
            let t = response.timings;
            assert!(t.waiting >= Duration::from_millis(50), "{t:?}");
            assert!(t.waiting < Duration::from_millis(1000), "{t:?}");
            assert!(t.sending < Duration::from_millis(45), "{t:?}");
            assert!(t.receiving < Duration::from_millis(45), "{t:?}");
            assert_phases_add_up(&response);
        }
    })
    .await;
}

#[tokio::test]
async fn receiving_covers_a_slow_body() {
    const BODY_PAUSE: Duration = Duration::from_millis(300);
    const MARGIN: Duration = Duration::from_millis(100);
    bounded(async {
        let server = RawServer::start(|_| Reply {
            head: "HTTP/1.1 200 OK\r\nContent-Length: 10".into(),
            chunks: vec![(Duration::ZERO, b"01234"), (BODY_PAUSE, b"56789")],
            ..Reply::ok(b"")
        })
        .await;
        let mut vu = client(ClientConfig::default());
        let response = vu.send(get(&server.url("/")), opts()).await.unwrap();
        assert_eq!(response.body, "0123456789");
        let t = response.timings;
        // The pause starts when the server has written the head, before the client reads it, so
        // only waiting + receiving is bound to cover it whole; receiving must hold most of it
        // (the margin absorbs a client scheduled late to read the head on a loaded machine).
        assert!(t.waiting + t.receiving >= BODY_PAUSE, "{t:?}");
        assert!(t.receiving >= BODY_PAUSE - MARGIN, "{t:?}");
        assert!(t.waiting < BODY_PAUSE - MARGIN, "{t:?}");
        assert_phases_add_up(&response);
    })
    .await;
}

#[tokio::test]
async fn chunked_bodies_are_read_to_the_end() {
    bounded(async {
        let server = RawServer::start(|_| Reply {
            head: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked".into(),
            chunks: vec![
                (Duration::ZERO, b"3\r\nabc\r\n"),
                (Duration::from_millis(10), b"2\r\nde\r\n0\r\n\r\n"),
            ],
            ..Reply::ok(b"")
        })
        .await;
        let mut vu = client(ClientConfig::default());
        for _ in 0..2 {
            let response = vu.send(get(&server.url("/")), opts()).await.unwrap();
            assert_eq!(response.body, "abcde");
        }
        assert_eq!(server.connections(), 1);
    })
    .await;
}

#[tokio::test]
async fn byte_counts_match_what_the_server_saw() {
    bounded(async {
        let server = RawServer::start(|n| {
            if n % 2 == 0 {
                Reply::ok(b"hello")
            } else {
                Reply {
                    head: "HTTP/1.1 201 Created\r\nContent-Length: 11\r\nX-Extra: 1".into(),
                    ..Reply::ok(b"hello world")
                }
            }
        })
        .await;
        let mut vu = client(ClientConfig::default());
        let (mut sent, mut received) = (0, 0);
        for i in 0..4 {
            let request = if i % 2 == 0 {
                get(&server.url("/get?x=1"))
            } else {
                post(&server.url("/post"), b"{\"a\":1}")
            };
            let response = vu.send(request, opts()).await.unwrap();
            assert!(response.bytes_sent > 0 && response.bytes_received > 0);
            sent += response.bytes_sent;
            received += response.bytes_received;
            assert_eq!(sent, server.bytes_in.load(Ordering::SeqCst), "after {i}");
            assert_eq!(
                received,
                server.bytes_out.load(Ordering::SeqCst),
                "after {i}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn default_headers_are_set_and_user_headers_win() {
    bounded(async {
        let server = RawServer::start(|_| Reply::ok(b"")).await;
        let mut vu = client(ClientConfig::default());
        vu.send(post(&server.url("/p"), b"abcd"), opts())
            .await
            .unwrap();
        vu.send(post(&server.url("/p"), b""), opts()).await.unwrap();
        vu.send(get(&server.url("/g")), opts()).await.unwrap();
        let mut custom = get(&server.url("/c"));
        custom
            .headers
            .insert("user-agent", "custom/1".parse().unwrap());
        custom
            .headers
            .insert("host", "example.test".parse().unwrap());
        vu.send(custom, opts()).await.unwrap();

        let mut other = client(ClientConfig {
            user_agent: Some("my-agent".into()),
            ..ClientConfig::default()
        });
        other.send(get(&server.url("/o")), opts()).await.unwrap();

        let heads = server.heads.lock().unwrap().clone();
        let host = format!("\r\nHost: {}\r\n", server.addr);
        let ua = format!("\r\nUser-Agent: stampede/{}\r\n", env!("CARGO_PKG_VERSION"));
        assert!(heads[0].starts_with("POST /p HTTP/1.1\r\n"), "{}", heads[0]);
        assert!(
            heads[0].contains(&host) && heads[0].contains(&ua),
            "{}",
            heads[0]
        );
        assert!(heads[0].contains("\r\nContent-Length: 4"), "{}", heads[0]);
        assert!(heads[1].contains("\r\nContent-Length: 0"), "{}", heads[1]);
        assert!(
            !heads[2].to_ascii_lowercase().contains("content-length"),
            "{}",
            heads[2]
        );
        assert!(
            heads[3].contains("\r\nUser-Agent: custom/1"),
            "{}",
            heads[3]
        );
        assert!(heads[3].contains("\r\nHost: example.test"), "{}", heads[3]);
        assert!(
            !heads[3].contains(&host) && !heads[3].contains(&ua),
            "{}",
            heads[3]
        );
        assert!(
            heads[4].contains("\r\nUser-Agent: my-agent"),
            "{}",
            heads[4]
        );
    })
    .await;
}

#[tokio::test]
async fn bodies_can_be_discarded_or_capped() {
    bounded(async {
        let server = RawServer::start(|_| Reply::ok(b"0123456789")).await;
        let mut capped = client(ClientConfig {
            max_body_bytes: 4,
            ..ClientConfig::default()
        });
        let discard = SendOptions {
            keep_body: BodyMode::Discard,
            ..opts()
        };
        let response = capped.send(get(&server.url("/")), discard).await.unwrap();
        assert!(response.body.is_empty() && !response.body_truncated);
        let full_size = response.bytes_received;
        let response = capped.send(get(&server.url("/")), opts()).await.unwrap();
        assert_eq!(response.body, "0123");
        assert!(response.body_truncated);
        assert_eq!(response.bytes_received, full_size);
        // The connection stays usable after a capped body.
        assert_eq!(server.connections(), 1);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Failures and their k6 error codes.

fn expect_err(result: Result<Response, HttpError>) -> HttpError {
    match result {
        Ok(response) => panic!("expected an error, got {}", response.status),
        Err(err) => err,
    }
}

#[tokio::test]
async fn a_timeout_gives_1050_within_the_timeout_and_drops_the_connection() {
    bounded(async {
        let server = RawServer::start(|n| Reply {
            silent: n == 1,
            ..Reply::ok(b"ok")
        })
        .await;
        let mut vu = client(ClientConfig::default());
        vu.send(get(&server.url("/")), opts()).await.unwrap();
        let timeout = SendOptions {
            timeout: Duration::from_millis(200),
            ..opts()
        };
        let started = Instant::now();
        let err = expect_err(vu.send(get(&server.url("/hang")), timeout).await);
        let elapsed = started.elapsed();
        assert_eq!(err.error_code(), 1050);
        assert_eq!(err.kind, ErrorKind::Timeout);
        assert_eq!(err.to_string(), "request timeout");
        assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
        // The request was sent and waited for: k6 counts the wait as `waiting`.
        assert!(err.bytes_sent > 0);
        assert!(
            err.timings.waiting >= Duration::from_millis(150),
            "{:?}",
            err.timings
        );
        assert_eq!(
            err.timings.duration,
            err.timings.sending + err.timings.waiting
        );
        // The hung connection is gone; the next request opens a new one.
        assert_eq!(vu.open_connections(), 0);
        vu.send(get(&server.url("/")), opts()).await.unwrap();
        assert_eq!(server.connections(), 2);
    })
    .await;
}

#[tokio::test]
async fn a_refused_connection_gives_the_dial_refused_code() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let mut vu = client(ClientConfig::default());
        let err = expect_err(vu.send(get(&format!("http://{addr}/")), opts()).await);
        assert_eq!(err.error_code(), 1212, "{err}");
        assert_eq!(err.to_string(), "dial: connection refused");
        assert_eq!(err.timings.duration, Duration::ZERO);
        assert_eq!((err.bytes_sent, err.bytes_received), (0, 0));
    })
    .await;
}

#[tokio::test]
async fn unresolvable_hosts_give_no_such_host() {
    bounded(async {
        let server = RawServer::start(|_| Reply::ok(b"named")).await;
        let dns = DnsCache::new()
            .with_override("api.test", ["127.0.0.1".parse().unwrap()])
            .with_override("gone.test", []);
        let mut vu = client(ClientConfig {
            dns: Arc::new(dns),
            ..ClientConfig::default()
        });
        let url = format!("http://api.test:{}/", server.addr.port());
        let response = vu.send(get(&url), opts()).await.unwrap();
        assert_eq!(response.body, "named");
        let heads = server.heads.lock().unwrap().clone();
        assert!(heads[0].contains(&format!("\r\nHost: api.test:{}\r\n", server.addr.port())));

        for host in ["gone.test", "nothing-here.invalid"] {
            let err = expect_err(vu.send(get(&format!("http://{host}/")), opts()).await);
            assert_eq!(err.error_code(), 1101, "{err}");
            assert_eq!(err.to_string(), format!("lookup {host}: no such host"));
        }
    })
    .await;
}

#[tokio::test]
async fn invalid_urls_give_1020() {
    let err = Target::parse("ftp://127.0.0.1/").unwrap_err();
    assert_eq!(err.error_code(), 1020);
    assert!(matches!(err.kind, ErrorKind::InvalidUrl(_)));
}

#[tokio::test]
async fn a_server_closing_without_answering_gives_eof() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                drop(socket);
            }
        });
        let mut vu = client(ClientConfig::default());
        let err = expect_err(vu.send(get(&format!("http://{addr}/")), opts()).await);
        assert!(
            [1000, 1220].contains(&err.error_code()),
            "{err} ({})",
            err.error_code()
        );
        assert!(err.bytes_sent > 0);
    })
    .await;
}

#[tokio::test]
async fn a_malformed_response_gives_1000() {
    bounded(async {
        let server = RawServer::start(|_| Reply {
            head: "NOT HTTP AT ALL".into(),
            close: true,
            ..Reply::ok(b"")
        })
        .await;
        let mut vu = client(ClientConfig::default());
        let err = expect_err(vu.send(get(&server.url("/")), opts()).await);
        assert_eq!(err.error_code(), 1000, "{err}");
        assert!(err.bytes_received > 0);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// A hyper server: many VUs on a multi-threaded runtime.

async fn hyper_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                    let body = Bytes::from(req.uri().path().to_owned());
                    Ok::<_, Infallible>(http::Response::new(Full::new(body)))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    (addr, connections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_vus_each_keep_their_own_connection() {
    bounded(async {
        let (addr, connections) = hyper_server().await;
        let config = Arc::new(ClientConfig::default());
        let mut vus = Vec::new();
        for vu in 0..50 {
            let config = config.clone();
            vus.push(tokio::spawn(async move {
                let mut client = VuClient::new(config);
                for i in 0..20 {
                    let path = format!("/vu{vu}/{i}");
                    let response = client
                        .send(get(&format!("http://{addr}{path}")), opts())
                        .await
                        .unwrap();
                    assert_eq!(response.body, path.as_bytes());
                    assert_phases_add_up(&response);
                }
            }));
        }
        for vu in vus {
            vu.await.unwrap();
        }
        assert_eq!(connections.load(Ordering::SeqCst), 50);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// TLS against a local rustls server with a self-signed certificate.

async fn tls_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert = certified.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(socket).await else {
                    return;
                };
                let service = service_fn(|_req| async {
                    Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
                        b"secure",
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (addr, connections)
}

#[tokio::test]
async fn tls_with_insecure_skip_verify_succeeds_and_is_timed() {
    bounded(async {
        let (addr, connections) = tls_server().await;
        let mut vu = client(ClientConfig {
            insecure_skip_tls_verify: true,
            ..ClientConfig::default()
        });
        for url in [
            format!("https://{addr}/"),
            format!("https://localhost:{}/", addr.port()),
        ] {
            let first = vu.send(get(&url), opts()).await.unwrap();
            assert_eq!(first.body, "secure");
            assert_eq!(first.tls_version, Some("tls1.3"));
            assert!(first.timings.tls_handshaking > Duration::ZERO);
            assert!(first.timings.blocked >= first.timings.tls_handshaking);
            // The handshake (with the certificate) and TLS records are on the wire too.
            assert!(first.bytes_received > 500 + "secure".len() as u64);
            assert_phases_add_up(&first);

            let second = vu.send(get(&url), opts()).await.unwrap();
            assert_eq!(second.body, "secure");
            assert_eq!(second.tls_version, Some("tls1.3"));
            assert_eq!(second.timings.tls_handshaking, Duration::ZERO);
            assert_eq!(second.timings.connecting, Duration::ZERO);
            assert!(second.bytes_received + 400 < first.bytes_received);
            assert!(second.bytes_sent < first.bytes_sent);
            assert_phases_add_up(&second);
        }
        assert_eq!(connections.load(Ordering::SeqCst), 2);
    })
    .await;
}

#[tokio::test]
async fn tls_with_an_untrusted_certificate_fails_with_a_tls_code() {
    bounded(async {
        let (addr, _) = tls_server().await;
        let mut vu = client(ClientConfig::default());
        let err = expect_err(vu.send(get(&format!("https://{addr}/")), opts()).await);
        assert_eq!(err.error_code(), 1310, "{err}");
        assert_eq!(err.to_string(), "x509: unknown authority");
        assert!(err.timings.connecting > Duration::ZERO);
        assert!(err.bytes_received > 0);
    })
    .await;
}

#[tokio::test]
async fn tls_to_a_plain_http_server_fails_with_a_tls_code() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let _ = socket
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    .await;
            }
        });
        let mut vu = client(ClientConfig {
            insecure_skip_tls_verify: true,
            ..ClientConfig::default()
        });
        let err = expect_err(vu.send(get(&format!("https://{addr}/")), opts()).await);
        assert_eq!(err.error_code(), 1301, "{err}");
    })
    .await;
}

#[tokio::test]
async fn heads_a_browser_and_k6_accept_are_accepted_many_cookies_and_a_large_header() {
    bounded(async {
        let mut head = String::from("HTTP/1.1 200 OK\r\nContent-Length: 2");
        for i in 0..150 {
            head.push_str(&format!("\r\nSet-Cookie: c{i}={i}"));
        }
        head.push_str(&format!("\r\nX-Big: {}", "b".repeat(100_000)));
        let server = RawServer::start(move |_| Reply {
            head: head.clone(),
            ..Reply::ok(b"ok")
        })
        .await;
        let mut vu = client(ClientConfig::default());
        let response = vu.send(get(&server.url("/")), opts()).await.unwrap();
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(response.headers.get_all("set-cookie").iter().count(), 150);
        assert_eq!(response.headers["x-big"].len(), 100_000);
        assert_eq!(&response.body[..], b"ok");
    })
    .await;
}
