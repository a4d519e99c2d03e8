//! The operator's own HTTP endpoints: Prometheus metrics on /metrics, liveness on /healthz and
//! readiness on /readyz.
//!
//! [`Telemetry`] is the handle the controller records into (cheap to clone, shared by all
//! clones); [`serve`] answers scrapes and probes from it until told to shut down.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The content type of the OpenMetrics text format that [`Telemetry::encode`] produces.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of the probes' plain answers.
const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// How long open connections get to finish after shutdown before they are cut.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How long to pause after an accept error that is not about one connection (e.g. out of file
/// descriptors), so the loop does not spin while it lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: String,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    reconciles: Family<ResultLabels, Counter>,
    reconcile_errors: Family<KindLabels, Counter>,
    loadtests: Family<PhaseLabels, Gauge>,
    overrunning: Gauge,
    ready: AtomicBool,
}

/// The operator's metrics and readiness, shared by every clone.
#[derive(Debug, Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new()
    }
}

impl Telemetry {
    /// Fresh metrics (all zero) and not ready.
    pub fn new() -> Telemetry {
        let reconciles = Family::<ResultLabels, Counter>::default();
        let reconcile_errors = Family::<KindLabels, Counter>::default();
        let loadtests = Family::<PhaseLabels, Gauge>::default();
        let overrunning = Gauge::default();
        let mut registry = Registry::default();
        // Counters get their `_total` suffix from the encoder.
        registry.register(
            "stampede_reconciles",
            "LoadTest reconciliations by result (ok or error)",
            reconciles.clone(),
        );
        registry.register(
            "stampede_reconcile_errors",
            "Failed LoadTest reconciliations by kind of error",
            reconcile_errors.clone(),
        );
        registry.register(
            "stampede_loadtests",
            "LoadTests by phase",
            loadtests.clone(),
        );
        registry.register(
            "stampede_overrunning_decisions",
            "LoadTest decisions still running past their deadline (each holds a thread until it returns)",
            overrunning.clone(),
        );
        Telemetry {
            inner: Arc::new(Inner {
                registry,
                reconciles,
                reconcile_errors,
                loadtests,
                overrunning,
                ready: AtomicBool::new(false),
            }),
        }
    }

    /// Counts a reconciliation: `stampede_reconciles_total{result="ok"|"error"}`.
    pub fn reconciled(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.inner
            .reconciles
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// Counts a failed reconciliation by its kind: `stampede_reconcile_errors_total{kind=...}`.
    pub fn reconcile_error(&self, kind: &str) {
        self.inner
            .reconcile_errors
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// Sets `stampede_loadtests{phase=...}` for every phase given; phases not given keep their
    /// value, so pass every phase (zeros included) for a complete picture.
    pub fn set_phases(&self, counts: &[(&str, i64)]) {
        for (phase, count) in counts {
            self.inner
                .loadtests
                .get_or_create(&PhaseLabels {
                    phase: (*phase).to_owned(),
                })
                .set(*count);
        }
    }

    /// Sets what /readyz answers: 200 when `ready`, 503 otherwise.
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::Relaxed);
    }

    /// A decision overran its deadline and still holds its thread: /readyz answers 503 until
    /// every such decision has returned ([`Telemetry::overrun_ended`]).
    pub fn overrun_started(&self) {
        self.inner.overrunning.inc();
    }

    /// A decision that overran has returned.
    pub fn overrun_ended(&self) {
        self.inner.overrunning.dec();
    }

    /// Whether /readyz answers 200: set ready, and no decision stuck past its deadline.
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Relaxed) && self.inner.overrunning.get() <= 0
    }

    /// All metrics in the OpenMetrics text format (ending in `# EOF`).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail, so an error could only come from a broken
        // encoder; the text up to it is still the best a scrape can get.
        if let Err(error) =
            prometheus_client::encoding::text::encode(&mut text, &self.inner.registry)
        {
            tracing::error!(%error, "encoding the metrics failed");
        }
        text
    }
}

/// A failure that stops [`serve`].
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listener can no longer accept connections.
    #[error("accepting a telemetry connection: {0}")]
    Accept(#[source] std::io::Error),
}

/// Serves /metrics, /healthz and /readyz from `telemetry` on `listener` until `shutdown`
/// resolves; then stops accepting, lets open connections finish their request (a few seconds
/// at most) and returns.
pub async fn serve(
    listener: TcpListener,
    telemetry: Telemetry,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let outcome = loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break Ok(()),
            accepted = listener.accept() => accepted,
            // Reap finished connections so the set does not grow with every scrape.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        match accepted {
            Ok((stream, _)) => {
                connections.spawn(connection(stream, telemetry.clone(), stopped.clone()));
            }
            Err(error) => match accept_failure(&error) {
                AcceptFailure::Connection => {}
                AcceptFailure::Resources => {
                    tracing::warn!(%error, "accepting a telemetry connection");
                    tokio::select! {
                        () = &mut shutdown => break Ok(()),
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    }
                }
                AcceptFailure::Listener => break Err(ServeError::Accept(error)),
            },
        }
    };
    drop(listener);
    stop.send_replace(true);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drained).await.is_err() {
        // Dropping the set aborts whatever is still open.
        tracing::warn!("cut the telemetry connections still open after the shutdown grace");
    }
    outcome
}

/// What an accept error says about the listener.
enum AcceptFailure {
    /// Only about the one connection (reset before we took it, say): carry on.
    Connection,
    /// About the process's resources (file descriptors, memory), likely to pass: pause.
    Resources,
    /// The listener itself is unusable.
    Listener,
}

fn accept_failure(error: &std::io::Error) -> AcceptFailure {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::ConnectionAborted
        | ErrorKind::ConnectionReset
        | ErrorKind::ConnectionRefused
        | ErrorKind::Interrupted
        | ErrorKind::WouldBlock
        | ErrorKind::TimedOut => AcceptFailure::Connection,
        ErrorKind::InvalidInput | ErrorKind::NotConnected | ErrorKind::Unsupported => {
            AcceptFailure::Listener
        }
        _ => AcceptFailure::Resources,
    }
}

/// Serves one connection until it closes, or until shutdown lets its request in flight finish.
async fn connection(
    stream: tokio::net::TcpStream,
    telemetry: Telemetry,
    mut stopped: watch::Receiver<bool>,
) {
    let service = service_fn(move |request| {
        let response = respond(&telemetry, &request);
        async move { Ok::<_, Infallible>(response) }
    });
    // The timer enables hyper's header read timeout, so a silent client cannot hold a
    // connection (and the shutdown) open.
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        // `is_ok` drops the borrow of the flag at once, keeping the future Send; an error
        // (the server itself went away) is a shutdown as well.
        _ = async { stopped.wait_for(|stop| *stop).await.is_ok() } => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "telemetry connection ended with an error");
    }
}

/// The answer to one request.
fn respond(telemetry: &Telemetry, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET {
        return text(StatusCode::NOT_FOUND, "not found");
    }
    match request.uri().path() {
        "/metrics" => {
            let mut response = Response::new(Full::new(Bytes::from(telemetry.encode())));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(OPENMETRICS_CONTENT_TYPE),
            );
            response
        }
        "/healthz" => text(StatusCode::OK, "ok"),
        "/readyz" if telemetry.is_ready() => text(StatusCode::OK, "ok"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready"),
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_CONTENT_TYPE));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::oneshot;

    /// A bound on every wait, generous for a loaded machine.
    const WAIT: Duration = Duration::from_secs(10);

    /// A raw HTTP/1.1 response: status code, headers (names lowercased) and body.
    #[derive(Debug)]
    struct Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Reply {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        }
    }

    /// Sends `METHOD path` over a fresh connection that the server closes after answering.
    async fn request(address: std::net::SocketAddr, method: &str, path: &str) -> Reply {
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(address)
                .await
                .expect("connect");
            let head =
                format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
            stream.write_all(head.as_bytes()).await.expect("write");
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).await.expect("read");
            String::from_utf8(raw).expect("a UTF-8 response")
        };
        let raw = tokio::time::timeout(WAIT, exchange)
            .await
            .expect("answered in time");
        let (head, body) = raw.split_once("\r\n\r\n").expect("a head and a body");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("a status line");
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .expect("a status code");
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        Reply {
            status,
            headers,
            body: body.to_owned(),
        }
    }

    /// A server on a free loopback port; sending on the returned channel shuts it down.
    async fn start(
        telemetry: &Telemetry,
    ) -> (
        std::net::SocketAddr,
        oneshot::Sender<()>,
        tokio::task::JoinHandle<Result<(), ServeError>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (shutdown, on_shutdown) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, telemetry.clone(), async move {
            // A dropped sender shuts down as well.
            let _ = on_shutdown.await;
        }));
        (address, shutdown, server)
    }

    /// The sample line of `series` (name and labels exactly as encoded) in `text`, if any.
    fn sample<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
    }

    #[test]
    fn encode_counts_and_sets() {
        let telemetry = Telemetry::new();
        let clone = telemetry.clone();
        telemetry.reconciled(true);
        telemetry.reconciled(true);
        clone.reconciled(false);
        telemetry.reconcile_error("Conflict");
        telemetry.reconcile_error("Conflict");
        telemetry.reconcile_error("quote\"d");
        telemetry.set_phases(&[("Running", 3), ("Pending", 1)]);
        telemetry.set_phases(&[("Running", 2)]);
        let text = telemetry.encode();
        assert_eq!(
            sample(&text, r#"stampede_reconciles_total{result="ok"}"#),
            Some("2")
        );
        assert_eq!(
            sample(&text, r#"stampede_reconciles_total{result="error"}"#),
            Some("1")
        );
        assert_eq!(
            sample(&text, r#"stampede_reconcile_errors_total{kind="Conflict"}"#),
            Some("2")
        );
        assert_eq!(
            sample(&text, r#"stampede_reconcile_errors_total{kind="quote\"d"}"#),
            Some("1")
        );
        assert_eq!(
            sample(&text, r#"stampede_loadtests{phase="Running"}"#),
            Some("2")
        );
        assert_eq!(
            sample(&text, r#"stampede_loadtests{phase="Pending"}"#),
            Some("1")
        );
        assert!(
            text.contains("# TYPE stampede_reconciles counter"),
            "{text}"
        );
        assert!(text.contains("# TYPE stampede_loadtests gauge"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn fresh_telemetry_is_not_ready_and_has_no_samples_but_zero_overruns() {
        let telemetry = Telemetry::default();
        assert!(!telemetry.is_ready());
        let text = telemetry.encode();
        let samples: Vec<&str> = text
            .lines()
            .filter(|line| line.starts_with("stampede_"))
            .collect();
        assert_eq!(samples, ["stampede_overrunning_decisions 0"], "{text}");
    }

    #[tokio::test]
    async fn serves_metrics_health_and_readiness() {
        let telemetry = Telemetry::new();
        let (address, shutdown, server) = start(&telemetry).await;

        telemetry.reconciled(true);
        telemetry.reconciled(false);
        telemetry.reconciled(false);
        telemetry.reconcile_error("Api");
        telemetry.set_phases(&[("Running", 4), ("Succeeded", 0)]);
        let metrics = request(address, "GET", "/metrics").await;
        assert_eq!(metrics.status, 200);
        assert_eq!(
            metrics.header("content-type"),
            Some(OPENMETRICS_CONTENT_TYPE)
        );
        let body = &metrics.body;
        assert_eq!(
            sample(body, r#"stampede_reconciles_total{result="ok"}"#),
            Some("1")
        );
        assert_eq!(
            sample(body, r#"stampede_reconciles_total{result="error"}"#),
            Some("2")
        );
        assert_eq!(
            sample(body, r#"stampede_reconcile_errors_total{kind="Api"}"#),
            Some("1")
        );
        assert_eq!(
            sample(body, r#"stampede_loadtests{phase="Running"}"#),
            Some("4")
        );
        assert_eq!(
            sample(body, r#"stampede_loadtests{phase="Succeeded"}"#),
            Some("0")
        );
        assert!(body.ends_with("# EOF\n"), "{body}");

        // A later scrape sees later counts.
        telemetry.reconciled(true);
        let metrics = request(address, "GET", "/metrics?debug=1").await;
        assert_eq!(
            sample(&metrics.body, r#"stampede_reconciles_total{result="ok"}"#),
            Some("2")
        );

        let health = request(address, "GET", "/healthz").await;
        assert_eq!((health.status, health.body.as_str()), (200, "ok"));

        let ready = request(address, "GET", "/readyz").await;
        assert_eq!((ready.status, ready.body.as_str()), (503, "not ready"));
        telemetry.set_ready(true);
        let ready = request(address, "GET", "/readyz").await;
        assert_eq!((ready.status, ready.body.as_str()), (200, "ok"));
        // A decision stuck past its deadline makes the operator unready until it returns.
        telemetry.overrun_started();
        let ready = request(address, "GET", "/readyz").await;
        assert_eq!((ready.status, ready.body.as_str()), (503, "not ready"));
        assert_eq!(
            sample(
                &request(address, "GET", "/metrics").await.body,
                "stampede_overrunning_decisions"
            ),
            Some("1")
        );
        telemetry.overrun_ended();
        assert_eq!(request(address, "GET", "/readyz").await.status, 200);
        telemetry.set_ready(false);
        assert_eq!(request(address, "GET", "/readyz").await.status, 503);

        assert_eq!(request(address, "GET", "/").await.status, 404);
        assert_eq!(request(address, "GET", "/metricsz").await.status, 404);
        assert_eq!(request(address, "POST", "/metrics").await.status, 404);

        shutdown.send(()).expect("server still running");
        let stopped = tokio::time::timeout(WAIT, server)
            .await
            .expect("stopped in time");
        assert!(matches!(stopped, Ok(Ok(()))), "{stopped:?}");
        assert!(tokio::net::TcpStream::connect(address).await.is_err());
    }

    #[tokio::test]
    async fn shutdown_lets_an_open_keep_alive_connection_go() {
        let telemetry = Telemetry::new();
        let (address, shutdown, server) = start(&telemetry).await;
        // A client that keeps its connection open after a request, as scrapers do.
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            .await
            .expect("write");
        let mut buffer = [0u8; 1024];
        let read = tokio::time::timeout(WAIT, stream.read(&mut buffer))
            .await
            .expect("answered in time")
            .expect("read");
        assert!(buffer[..read].starts_with(b"HTTP/1.1 200"));

        let asked = tokio::time::Instant::now();
        shutdown.send(()).expect("server still running");
        let stopped = tokio::time::timeout(WAIT, server)
            .await
            .expect("stopped in time");
        assert!(matches!(stopped, Ok(Ok(()))), "{stopped:?}");
        // Idle connections are closed at once, not cut when the grace period runs out.
        assert!(
            asked.elapsed() < SHUTDOWN_GRACE,
            "took {:?}",
            asked.elapsed()
        );
        // The server closed the idle connection rather than waiting for its grace to run out.
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(WAIT, stream.read_to_end(&mut rest)).await;
        assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
    }
}
