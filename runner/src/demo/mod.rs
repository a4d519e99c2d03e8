//! The demo server: a fast, stateful, in-memory HTTP/1.1 target for the examples and tests.
//!
//! It implements the "Demo server API" of `examples/README.md` (stock trading, reservations
//! and points, e-commerce, concert queue, `GET /` and `GET /boards`) plus httpbin-style
//! helpers (`/status/{code}`, `/redirect/{n}`, `/redirect-to`, `/get`, `/delay/{ms}`, `/json`, `/anything`,
//! `/headers`, `/cookies`, `/cookies/set`, `/bytes/{n}`). `stampede demo` starts it
//! in-process, `stampede demo-server` runs it until a signal, and the runner's tests drive it
//! over loopback.
//!
//! State lives in sharded maps behind short std mutexes; the hot read paths (`GET /`,
//! `GET /boards`, product and concert lookups) take no lock at all and serve precomputed
//! bodies. Balance reads and writes, point charges, payments and orders hold a per-user (per
//! product for orders) async lock for [`DemoConfig::write_latency`], like a database row lock,
//! so concurrent writes to one user queue up.

mod concerts;
mod httpbin;
mod input;
mod plain;
mod reservations;
mod respond;
mod routes;
mod server;
mod shop;
mod state;
mod stock;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Settings of a demo server.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// How long a balance read or write, a point charge, a payment or an order holds its
    /// per-user (per-product) lock: a simulated database write. Default 2 ms; zero disables it.
    pub write_latency: Duration,
    /// Seats of each concert schedule (`GET /concerts/{id}`, `seatNo` 1..=N). Default 50.
    pub seats_per_schedule: u32,
    /// Queue positions that are `ACTIVE` in `POST /queue/token`; later ones are `WAITING`.
    /// Default 100.
    pub active_queue_size: u64,
    /// Largest request body the server reads; larger ones get 413. Default 1 MiB.
    pub max_body_bytes: usize,
    /// How long [`DemoServer::shutdown`] waits for in-flight requests before it drops their
    /// connections. Default 15 s (longer than the 10 s cap of `/delay/{ms}`).
    pub shutdown_grace: Duration,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            write_latency: Duration::from_millis(2),
            seats_per_schedule: 50,
            active_queue_size: 100,
            max_body_bytes: 1 << 20,
            shutdown_grace: Duration::from_secs(15),
        }
    }
}

/// Counters of a running demo server, for tests and the `demo` command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DemoStats {
    /// TCP connections accepted so far.
    pub connections: u64,
    /// Requests received so far, all routes together.
    pub requests: u64,
    /// Requests by route, for the routes hit at least once. Keys are the method and path
    /// pattern, e.g. `"GET /boards"`, `"POST /v1/users/{id}/balance"`, `"ANY /anything"`;
    /// unknown paths count under `"404"` and wrong methods under `"405"`.
    pub by_route: BTreeMap<&'static str, u64>,
}

impl DemoStats {
    /// Requests served by one route (0 when it was never hit); see [`DemoStats::by_route`].
    pub fn route(&self, name: &str) -> u64 {
        self.by_route.get(name).copied().unwrap_or(0)
    }
}

/// A running demo server. Stop it with [`DemoServer::shutdown`]; dropping it stops it too,
/// without waiting.
#[derive(Debug)]
pub struct DemoServer {
    addr: SocketAddr,
    state: Arc<state::State>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl DemoServer {
    /// Binds `addr` (use `127.0.0.1:0` for a free port) and serves on the current tokio
    /// runtime until shut down.
    pub async fn start(addr: SocketAddr, config: DemoConfig) -> std::io::Result<DemoServer> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(state::State::new(config));
        let (shutdown, signal) = watch::channel(false);
        let task = tokio::spawn(server::accept_loop(listener, Arc::clone(&state), signal));
        Ok(DemoServer {
            addr,
            state,
            shutdown,
            task,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL of the server, e.g. `http://127.0.0.1:8080`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests served so far, by route, and connections accepted.
    pub fn stats(&self) -> DemoStats {
        self.state.stats.snapshot()
    }

    /// Stops accepting, closes idle connections, lets in-flight requests finish (for at most
    /// [`DemoConfig::shutdown_grace`]) and waits until every connection is closed.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// For the CLI: serves on `addr` until SIGINT or SIGTERM, writing
/// `demo server listening on http://...` to `out` first, then shuts down gracefully.
pub async fn run_until_signal(
    addr: SocketAddr,
    config: DemoConfig,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    let server = DemoServer::start(addr, config).await?;
    // Flushed at once: whoever started the server reads the URL from this line.
    writeln!(out, "demo server listening on {}", server.base_url())?;
    out.flush()?;
    wait_for_signal().await?;
    server.shutdown().await;
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = terminate.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}
