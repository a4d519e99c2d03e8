//! A real Kubernetes CRD API server for the tests: `apiextensions-apiserver` (the server inside
//! every kube-apiserver that stores, validates and serves CRDs and custom resources) on its own
//! etcd, both on loopback, behind an allow-all authentication/authorization webhook.
//!
//! `tests/real-apiserver/build.sh` builds the binaries from Debian's packaged sources and
//! caches them; [`binaries`] finds them. The stand-in delegates to a [`RealServer`] as
//! kube-apiserver delegates to its apiextensions server (see `apiserver::delegate`).

pub mod binaries;
pub mod supervised;
pub mod webhook;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use binaries::Binaries;
use supervised::Supervised;
use webhook::Webhook;

/// Why a real server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A process or file could not be set up.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The start-up thread panicked.
    #[error("the start-up thread panicked")]
    Panicked,
    /// A process did not become healthy in time.
    #[error("{what} did not become healthy within {seconds} s; its log:\n{log}")]
    Unhealthy {
        /// Which process.
        what: &'static str,
        /// How long it was given.
        seconds: u64,
        /// The end of its log.
        log: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StartError {
    let what = what.into();
    move |source| StartError::Io { what, source }
}

/// A running etcd + apiextensions-apiserver pair. Dropping it stops both and removes their data.
#[derive(Debug)]
pub struct RealServer {
    // Field order is drop order: the server goes before its etcd and its webhook.
    server: Supervised,
    etcd: Supervised,
    webhook: Webhook,
    url: String,
    kubeconfig: PathBuf,
    version: String,
    dir: tempfile::TempDir,
}

/// How long each process gets to answer its health check.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(60);

impl RealServer {
    /// Starts etcd, the webhook and the server from `binaries`, and waits until the server is
    /// ready. It blocks (about 2 s) on a thread of its own, so it may be called from async code.
    pub fn start(binaries: &Binaries) -> Result<RealServer, StartError> {
        let binaries = binaries.clone();
        std::thread::spawn(move || RealServer::start_blocking(&binaries))
            .join()
            .unwrap_or(Err(StartError::Panicked))
    }

    fn start_blocking(binaries: &Binaries) -> Result<RealServer, StartError> {
        let dir = tempfile::Builder::new()
            .prefix("real-apiserver-")
            .tempdir()
            .map_err(io("create the server's directory"))?;
        let webhook = Webhook::start().map_err(io("start the authorization webhook"))?;
        let webhook_kubeconfig = dir.path().join("webhook.kubeconfig");
        std::fs::write(&webhook_kubeconfig, webhook.kubeconfig())
            .map_err(io("write the webhook kubeconfig"))?;

        // Free ports are picked by binding :0; another process may take one before the child
        // binds it, so a start that fails is retried on new ports.
        const ATTEMPTS: usize = 3;
        let mut attempt = 1;
        loop {
            match start_pair(binaries, dir.path(), &webhook_kubeconfig) {
                Ok((etcd, server, port)) => {
                    let url = format!("https://127.0.0.1:{port}");
                    let kubeconfig = dir.path().join("kubeconfig");
                    std::fs::write(
                        &kubeconfig,
                        client_kubeconfig(&url, &dir.path().join("certs/apiserver.crt")),
                    )
                    .map_err(io("write the client kubeconfig"))?;
                    return Ok(RealServer {
                        server,
                        etcd,
                        webhook,
                        url,
                        kubeconfig,
                        version: binaries.version.clone(),
                        dir,
                    });
                }
                Err(_) if attempt < ATTEMPTS => attempt += 1,
                Err(error) => return Err(error),
            }
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A kubeconfig for the server (its CA, a token the webhook accepts as the admin).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The package versions the binaries were built from, e.g.
    /// `golang-k8s-apiextensions-apiserver-dev 0.36.4-1, etcd-server 3.5.30-2`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The CA certificate the server's serving certificate chains to.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("certs/apiserver.crt")
    }

    /// The server's log so far (for a test's failure message).
    pub fn log(&self) -> String {
        self.server.log_tail(200)
    }

    /// Whether etcd and the server still run (the supervisor notices a crash).
    pub fn is_running(&mut self) -> bool {
        self.etcd.is_running() && self.server.is_running()
    }

    /// The server's scratch directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Requests the webhook has answered (authentication and authorization reviews).
    pub fn reviews(&self) -> u64 {
        self.webhook.reviews()
    }
}

/// The real server a test needs, or None — with a line saying why — when none is built; a
/// panic instead when `STAMPEDE_REAL_APISERVER_REQUIRED` says one must be there.
pub fn for_test() -> Option<RealServer> {
    match binaries::find() {
        Ok(found) => Some(
            RealServer::start(&found)
                .unwrap_or_else(|error| panic!("the real API server did not start: {error}")),
        ),
        Err(missing) if binaries::required() => {
            panic!("a real API server is required here but missing: {missing}")
        }
        Err(missing) => {
            eprintln!("skipped: no real API server ({missing})");
            None
        }
    }
}

fn start_pair(
    binaries: &Binaries,
    dir: &Path,
    webhook_kubeconfig: &Path,
) -> Result<(Supervised, Supervised, u16), StartError> {
    let [client_port, peer_port, secure_port] = free_ports()?;
    let etcd_dir = dir.join(format!("etcd-{client_port}"));
    let client_url = format!("http://127.0.0.1:{client_port}");
    let etcd = Supervised::spawn(
        "etcd",
        &binaries.etcd,
        &[
            "--name=stampede-test".into(),
            format!("--data-dir={}", etcd_dir.display()),
            format!("--listen-client-urls={client_url}"),
            format!("--advertise-client-urls={client_url}"),
            format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
            format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
            format!("--initial-cluster=stampede-test=http://127.0.0.1:{peer_port}"),
            // Tests write little and briefly: no fsync per commit, a small backend.
            "--unsafe-no-fsync".into(),
            "--quota-backend-bytes=1073741824".into(),
            "--log-level=warn".into(),
        ],
        &dir.join(format!("etcd-{client_port}.log")),
    )
    .map_err(io("start etcd"))?;
    let mut etcd = etcd;
    wait_healthy(&mut etcd, "etcd", || etcd_healthy(client_port))?;
    let certs = dir.join("certs");
    let server = Supervised::spawn(
        "apiextensions-apiserver",
        &binaries.apiextensions_apiserver,
        &[
            format!("--etcd-servers={client_url}"),
            format!("--secure-port={secure_port}"),
            "--bind-address=127.0.0.1".into(),
            format!("--cert-dir={}", certs.display()),
            format!("--kubeconfig={}", webhook_kubeconfig.display()),
            format!(
                "--authentication-kubeconfig={}",
                webhook_kubeconfig.display()
            ),
            format!(
                "--authorization-kubeconfig={}",
                webhook_kubeconfig.display()
            ),
            "--authentication-skip-lookup".into(),
            "--authentication-tolerate-lookup-failure".into(),
            "--authorization-always-allow-paths=/*".into(),
            // Webhook answers are cached per token and request: the one answer never changes.
            "--authentication-token-webhook-cache-ttl=10m".into(),
            "--authorization-webhook-cache-authorized-ttl=10m".into(),
            "--disable-admission-plugins=NamespaceLifecycle,MutatingAdmissionPolicy,\
             MutatingAdmissionWebhook,ValidatingAdmissionPolicy,ValidatingAdmissionWebhook"
                .into(),
            "-v=1".into(),
        ],
        &dir.join(format!("apiextensions-apiserver-{secure_port}.log")),
    )
    .map_err(io("start apiextensions-apiserver"))?;
    let mut server = server;
    let ca = certs.join("apiserver.crt");
    let kubeconfig = dir.join(format!("probe-{secure_port}.kubeconfig"));
    std::fs::write(
        &kubeconfig,
        client_kubeconfig(&format!("https://127.0.0.1:{secure_port}"), &ca),
    )
    .map_err(io("write the probe kubeconfig"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io("build the probe runtime"))?;
    wait_healthy(&mut server, "apiextensions-apiserver", || {
        ca.exists() && server_ready(&runtime, &kubeconfig)
    })?;
    Ok((etcd, server, secure_port))
}

/// Polls `check` until it holds, the process dies, or [`HEALTH_TIMEOUT`] passes. A health
/// endpoint is the only readiness signal these processes offer.
fn wait_healthy(
    process: &mut Supervised,
    what: &'static str,
    mut check: impl FnMut() -> bool,
) -> Result<(), StartError> {
    let started = Instant::now();
    while started.elapsed() < HEALTH_TIMEOUT {
        if !process.is_running() {
            break;
        }
        if check() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(StartError::Unhealthy {
        what,
        seconds: HEALTH_TIMEOUT.as_secs(),
        log: process.log_tail(40),
    })
}

/// etcd's `/health` over plain HTTP/1.0: `{"health":"true",...}`.
fn etcd_healthy(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(1),
    ) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.0 200") && answer.contains(r#""health":"true""#)
}

/// The server's `/readyz` through a kube client built from its kubeconfig (its own CA), less
/// `informer-sync`: the informers of core kinds never sync, as there is no core API here.
fn server_ready(runtime: &tokio::runtime::Runtime, kubeconfig: &Path) -> bool {
    runtime.block_on(async {
        let Ok(client) = crate::apiserver::client_for(kubeconfig).await else {
            return false;
        };
        let request = http::Request::get("/readyz?exclude=informer-sync").body(Vec::new());
        match request {
            Ok(request) => client
                .request_text(request)
                .await
                .is_ok_and(|text| text.trim() == "ok"),
            Err(_) => false,
        }
    })
}

fn free_ports() -> Result<[u16; 3], StartError> {
    let listeners: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))))
        .collect::<Result<_, _>>()
        .map_err(io("pick free loopback ports"))?;
    let port = |i: usize| listeners[i].local_addr().map(|a| a.port());
    Ok([
        port(0).map_err(io("read a port"))?,
        port(1).map_err(io("read a port"))?,
        port(2).map_err(io("read a port"))?,
    ])
}

fn client_kubeconfig(url: &str, ca: &Path) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: real\n  cluster:\n    server: {url}\n    certificate-authority: {}\n\
         contexts:\n- name: real\n  context:\n    cluster: real\n    user: admin\n    namespace: default\n\
         current-context: real\nusers:\n- name: admin\n  user:\n    token: {}\n",
        ca.display(),
        webhook::ADMIN_TOKEN
    )
}
