//! The live dashboard of a local run (`stampede run --dashboard`), as k6's web dashboard: an
//! HTTP server on the run's runtime serving the report page at `/` and its updates as
//! server-sent events at `/events`, every period while the run goes, then the final report
//! once, after which each event stream ends. The server stops with the run.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::engine::{LiveSummary, RunWatcher};
use crate::html_report::{live_update, render_live_html};
use crate::summary::Summary;

/// Where k6's dashboard listens by default.
pub const DEFAULT_ADDR: &str = "127.0.0.1:5665";

/// How often an open page is updated.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(2);

/// How long the end of a run waits for open pages to receive the final report.
const FINAL_DELIVERY: Duration = Duration::from_secs(2);

/// The path of the event stream.
const EVENTS: &str = "/events";

/// Why the dashboard could not start.
#[derive(Debug, thiserror::Error)]
#[error("--dashboard-addr {addr}: cannot listen: {source}")]
pub struct DashboardError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// Why.
    pub source: std::io::Error,
}

/// What every connection reads.
struct State {
    source: LiveSummary,
    period: Duration,
    /// The final update, once the run is over.
    finished: watch::Receiver<Option<Arc<String>>>,
    /// How many event streams are open.
    streams: watch::Sender<usize>,
}

/// A running dashboard; [`RunWatcher::finish`] sends the final report to every open page.
#[derive(Debug)]
pub struct Dashboard {
    addr: SocketAddr,
    finished: watch::Sender<Option<Arc<String>>>,
    streams: watch::Receiver<usize>,
    server: tokio::task::JoinHandle<()>,
}

impl Dashboard {
    /// Listens on `addr` before the run starts, so a taken port is an error before any load.
    pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, DashboardError> {
        let listener =
            std::net::TcpListener::bind(addr).map_err(|source| DashboardError { addr, source })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| DashboardError { addr, source })?;
        Ok(listener)
    }

    /// Serves `source` on `listener` every `period`, on the current runtime.
    pub fn serve(
        listener: std::net::TcpListener,
        source: LiveSummary,
        period: Duration,
    ) -> Result<Dashboard, DashboardError> {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let listener =
            TcpListener::from_std(listener).map_err(|source| DashboardError { addr, source })?;
        let (finished_tx, finished_rx) = watch::channel(None);
        let (streams_tx, streams_rx) = watch::channel(0);
        let state = Arc::new(State {
            source,
            period,
            finished: finished_rx,
            streams: streams_tx,
        });
        let server = tokio::spawn(accept(listener, state));
        Ok(Dashboard {
            addr,
            finished: finished_tx,
            streams: streams_rx,
            server,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl RunWatcher for Dashboard {
    async fn finish(mut self, summary: &Summary) {
        let _ = self
            .finished
            .send(Some(Arc::new(live_update(summary, true))));
        // Open pages get the final report before the run's runtime (and this server) ends.
        let _ =
            tokio::time::timeout(FINAL_DELIVERY, self.streams.wait_for(|open| *open == 0)).await;
        self.server.abort();
    }
}

async fn accept(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(respond(&request, &state)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

fn respond(request: &Request<Incoming>, state: &Arc<State>) -> Response<Body> {
    if request.method() != Method::GET {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    match request.uri().path() {
        "/" => {
            let page = render_live_html(&state.source.now(), EVENTS);
            with_type(
                "text/html; charset=utf-8",
                Full::new(Bytes::from(page)).boxed_unsync(),
            )
        }
        EVENTS => with_type("text/event-stream", events(Arc::clone(state))),
        _ => plain(StatusCode::NOT_FOUND, "not found: the dashboard is at /\n"),
    }
}

fn with_type(content_type: &'static str, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = with_type(
        "text/plain; charset=utf-8",
        Full::new(Bytes::from_static(text.as_bytes())).boxed_unsync(),
    );
    *response.status_mut() = status;
    response
}

/// Where one event stream is.
enum Next {
    /// Send an update now.
    First,
    /// Send one after the period (or the final report as soon as it exists).
    Later,
    /// The final report was sent.
    Done,
}

/// One page's event stream: an update at once, then every period, then the final report.
fn events(state: Arc<State>) -> Body {
    state.streams.send_modify(|open| *open += 1);
    let guard = StreamGuard(Arc::clone(&state));
    let stream = futures::stream::unfold((Next::First, guard), |(next, guard)| async move {
        let state = &guard.0;
        match next {
            Next::Done => return None,
            Next::First => {}
            Next::Later => {
                let mut finished = state.finished.clone();
                if finished.borrow().is_none() {
                    tokio::select! {
                        () = tokio::time::sleep(state.period) => {}
                        _ = finished.changed() => {}
                    }
                }
            }
        }
        let finished = state.finished.borrow().clone();
        let (event, next) = match finished {
            Some(update) => (sse("final", &update), Next::Done),
            None => (
                sse("update", &live_update(&state.source.now(), false)),
                Next::Later,
            ),
        };
        Some((Ok(Frame::data(Bytes::from(event))), (next, guard)))
    });
    BodyExt::boxed_unsync(StreamBody::new(stream.boxed()))
}

/// Counts a stream as closed when it ends or its page goes away.
struct StreamGuard(Arc<State>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0
            .streams
            .send_modify(|open| *open = open.saturating_sub(1));
    }
}

/// A server-sent event; `data` holds no newline (JSON without raw line breaks).
fn sse(event: &str, data: &str) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}
