//! The live dashboard of a local run (`stampede run --dashboard`), as k6's web dashboard: an
//! HTTP server on the run's runtime serving the report page at `/` and its updates as
//! server-sent events at `/events`, every period while the run goes, then the final report
//! once, after which each event stream ends. The server stops with the run.
//!
//! - `http`: the server loop, responses and event stream, shared with the operator's fleet
//!   dashboard.

pub mod http;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ::http::{Method, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::watch;

use self::http::{Update, UpdateSource, event_stream, html, plain};
use crate::engine::{LiveSummary, RunWatcher};
use crate::html_report::{ReportData, live_update, render_live_html};
use crate::summary::Summary;

/// Where k6's dashboard listens by default.
pub const DEFAULT_ADDR: &str = "127.0.0.1:5665";

/// How often an open page is updated.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(2);

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

/// The run's updates: live until the final summary is set.
struct RunSource {
    live: LiveSummary,
    finished: OnceLock<Arc<String>>,
    /// How many event streams are open.
    streams: watch::Sender<usize>,
}

impl UpdateSource for RunSource {
    fn latest(&self) -> Option<Update> {
        Some(match self.finished.get() {
            Some(json) => Update {
                json: Arc::clone(json),
                done: true,
            },
            None => Update {
                json: Arc::new(live_update(&ReportData::of(&self.live.now()), false)),
                done: false,
            },
        })
    }

    fn opened(&self) {
        self.streams.send_modify(|open| *open += 1);
    }

    fn closed(&self) {
        self.streams
            .send_modify(|open| *open = open.saturating_sub(1));
    }
}

/// A running dashboard; [`RunWatcher::finish`] sends the final report to every open page.
pub struct Dashboard {
    addr: SocketAddr,
    source: Arc<RunSource>,
    period: Duration,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard")
            .field("addr", &self.addr)
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
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

    /// Serves `live` on `listener` every `period`, on the current runtime.
    pub fn serve(
        listener: std::net::TcpListener,
        live: LiveSummary,
        period: Duration,
    ) -> Result<Dashboard, DashboardError> {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let listener =
            TcpListener::from_std(listener).map_err(|source| DashboardError { addr, source })?;
        let source = Arc::new(RunSource {
            live,
            finished: OnceLock::new(),
            streams: watch::channel(0).0,
        });
        let for_requests = Arc::clone(&source);
        let respond = Arc::new(move |request: &::http::Request<hyper::body::Incoming>| {
            if request.method() != Method::GET {
                return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
            }
            match request.uri().path() {
                "/" => html(render_live_html(
                    &ReportData::of(&for_requests.live.now()),
                    EVENTS,
                )),
                EVENTS => {
                    let source: Arc<dyn UpdateSource> = for_requests.clone();
                    event_stream(source, period)
                }
                _ => plain(StatusCode::NOT_FOUND, "not found: the dashboard is at /\n"),
            }
        });
        let server = tokio::spawn(http::serve(listener, respond));
        Ok(Dashboard {
            addr,
            source,
            period,
            server,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl RunWatcher for Dashboard {
    async fn finish(self, summary: &Summary) {
        let source = &self.source;
        let _ = source
            .finished
            .set(Arc::new(live_update(&ReportData::of(summary), true)));
        // Open pages get the final report (at their next period) before the run's runtime,
        // and this server, end.
        let mut streams = source.streams.subscribe();
        let _ = tokio::time::timeout(
            self.period + Duration::from_secs(1),
            streams.wait_for(|open| *open == 0),
        )
        .await;
        self.server.abort();
    }
}
