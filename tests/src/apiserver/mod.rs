//! A Kubernetes API server stand-in for tests: in memory, over HTTP on loopback, with a kubeconfig.
//!
//! It serves what Stampede and `kubectl` use (discovery, CRUD, the four patch types and
//! server-side apply, the status subresource, CRD schemas, list/watch with selectors and
//! bookmarks, finalizers and garbage collection, Table output) and behaves like kube-apiserver
//! on each. Start one with [`ApiServer::start`]; point kube-rs at [`ApiServer::client`] and
//! `kubectl` at [`ApiServer::kubectl`].

pub mod auth;
pub mod builtin;
pub mod cel;
pub mod chaos;
pub mod cr_admission;
pub mod crd_admission;
pub mod delegate;
pub mod deletion;
pub mod discovery;
pub mod errors;
pub mod events;
pub mod external;
pub mod field;
pub mod formats;
pub mod managed;
pub mod meta;
pub mod patch;
pub mod pod_security;
pub mod portforward;
pub mod protobuf;
pub mod rbac;
pub mod registry;
pub mod render;
pub mod routes;
pub mod schema;
pub mod selector;
pub mod store;
pub mod table;
pub mod write;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

use crate::apiextensions::{RealServer, binaries, webhook};
use delegate::Delegate;
use routes::Shared;
use store::Store;

/// Tuning of a stand-in server.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Events kept for watches to resume from; older resourceVersions get 410 Gone.
    pub history: usize,
    /// How often watches that allow bookmarks get one.
    pub bookmark_interval: Duration,
    /// Where CRDs and custom resources are kept.
    pub delegation: Delegation,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            history: 100_000,
            bookmark_interval: Duration::from_secs(1),
            delegation: Delegation::FromEnvironment,
        }
    }
}

/// Where a stand-in keeps CRDs and custom resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delegation {
    /// A real apiextensions-apiserver when one is built (see [`binaries::find`]), else in
    /// memory — unless `STAMPEDE_REAL_APISERVER_REQUIRED` makes that an error.
    FromEnvironment,
    /// In memory, whatever the environment says.
    InMemory,
}

/// A running stand-in API server. Dropping it stops it.
#[derive(Debug)]
pub struct ApiServer {
    address: SocketAddr,
    shared: Arc<Shared>,
    dir: tempfile::TempDir,
    runtime: Option<tokio::runtime::Runtime>,
    // Dropped after the runtime: forwarding tasks end before the real server goes.
    real: Option<RealServer>,
}

impl ApiServer {
    /// Starts a server on `127.0.0.1:0` with the namespaces a fresh cluster has, delegating
    /// CRDs and custom resources to a real apiextensions-apiserver when one is built.
    pub fn start() -> std::io::Result<ApiServer> {
        ApiServer::start_with(Settings::default())
    }

    /// Starts a server that keeps everything in memory, CRDs and custom resources included,
    /// whatever the environment says (the differential tests compare this mode with the real
    /// server).
    pub fn start_in_memory() -> std::io::Result<ApiServer> {
        ApiServer::start_with(Settings {
            delegation: Delegation::InMemory,
            ..Settings::default()
        })
    }

    /// What this server does with CRDs and custom resources, in one line.
    pub fn mode(&self) -> String {
        match &self.shared.delegate {
            Some(delegate) => delegate.describe(),
            None => "in memory: CRDs and custom resources are kept by the stand-in itself".into(),
        }
    }

    /// Status writes of custom resources whose fields the real server dropped, one line each
    /// (always empty in memory, where nothing is compared).
    pub fn pruned_status_writes(&self) -> Vec<String> {
        self.shared
            .pruned
            .lock()
            .map(|lines| lines.clone())
            .unwrap_or_default()
    }

    /// The real server CRDs and custom resources are delegated to, if any.
    pub fn real_server(&self) -> Option<&RealServer> {
        self.real.as_ref()
    }

    /// Starts a server with `settings`. It runs on a runtime of its own, so a test may block
    /// (on `kubectl`, say) without stalling it.
    pub fn start_with(settings: Settings) -> std::io::Result<ApiServer> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let mut store = Store::new(settings.history);
        let namespaces = store
            .registry
            .find("", "v1", "namespaces")
            .cloned()
            .ok_or_else(|| std::io::Error::other("namespaces are not registered"))?;
        let options = write::WriteOptions {
            manager: "kube-apiserver".into(),
            ..write::WriteOptions::default()
        };
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let namespace =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            write::create(&mut store, &namespaces, "", namespace, &options)
                .map_err(|e| std::io::Error::other(e.message))?;
        }
        bootstrap_rbac(&mut store)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("api-stand-in")
            .enable_all()
            .build()?;
        let real = match resolve(&settings.delegation)? {
            Some(binaries) => Some(RealServer::start(&binaries).map_err(std::io::Error::other)?),
            None => None,
        };
        let delegate = match &real {
            Some(real) => {
                // The client's connection tasks belong on the server's runtime.
                let _entered = runtime.enter();
                let client = delegate_client(real)?;
                Some(Arc::new(Delegate::new(
                    client,
                    &store.registry,
                    real.url(),
                    real.version(),
                )))
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            address: address.to_string(),
            log_dir: Mutex::new(None),
            bookmark_interval: settings.bookmark_interval,
            audit: Mutex::new(Vec::new()),
            delegate: delegate.clone(),
            pruned: Mutex::new(Vec::new()),
            chaos: chaos::Chaos::default(),
        });
        let dir = tempfile::tempdir()?;
        write_kubeconfig(&dir.path().join("kubeconfig"), address)?;
        if let Some(delegate) = &delegate {
            let _entered = runtime.enter();
            delegate::collector::start(Arc::clone(&shared), delegate.client().clone());
        }
        runtime.spawn(serve(listener, Arc::clone(&shared)));
        let server = ApiServer {
            address,
            shared,
            dir,
            runtime: Some(runtime),
            real,
        };
        eprintln!("API server stand-in at {}: {}", server.url(), server.mode());
        Ok(server)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// A kubeconfig file for this server (context `stand-in`, namespace `default`).
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// A kube-rs client for this server, built from the kubeconfig like a user's would be.
    pub async fn client(&self) -> Result<kube::Client, ClientError> {
        client_for(&self.kubeconfig()).await
    }

    /// A kube-rs client that authenticates with `token` instead of the admin's (e.g.
    /// [`service_account_token`], as a pod of the process kubelet does).
    pub async fn client_with_token(&self, token: &str) -> Result<kube::Client, ClientError> {
        let path = crate::kubelet::identity::pod_kubeconfig(
            &self.kubeconfig(),
            self.dir.path(),
            "token",
            &meta::random_suffix(),
            Some(token),
        )?;
        client_for(&path).await
    }

    /// A `kubectl` command for this server: its own kubeconfig and a private HOME (so the
    /// discovery cache is this server's alone).
    pub fn kubectl(&self) -> std::process::Command {
        kubectl_for(&self.kubeconfig(), self.dir.path())
    }

    /// Where `pods/log` reads container logs from (the process kubelet's log directory).
    pub fn set_log_dir(&self, dir: &Path) {
        *self
            .shared
            .log_dir
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(dir.to_path_buf());
    }

    /// The faults injected at this server's HTTP edge (outages, watch cuts, refused writes).
    pub fn chaos(&self) -> &chaos::Chaos {
        &self.shared.chaos
    }

    /// Drops the watch history, like an etcd compaction: watches from older
    /// resourceVersions get 410 Gone.
    pub fn compact(&self) {
        self.shared.lock().compact();
    }

    /// The resource requests `user` made so far, in order, with RBAC's decision.
    pub fn audit(&self, user: &str) -> Vec<routes::AuditEntry> {
        self.shared
            .audit
            .lock()
            .map(|audit| audit.iter().filter(|e| e.user == user).cloned().collect())
            .unwrap_or_default()
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().rv()
    }

    /// A scratch directory that lives as long as the server.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        // Not a blocking shutdown: the server may be dropped inside a test's runtime.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The binaries to delegate to, or None for the in-memory mode.
fn resolve(delegation: &Delegation) -> std::io::Result<Option<binaries::Binaries>> {
    match delegation {
        Delegation::InMemory => Ok(None),
        Delegation::FromEnvironment => match binaries::find() {
            Ok(found) => Ok(Some(found)),
            Err(missing) if binaries::required() => Err(std::io::Error::other(format!(
                "{} is set, but there is no real API server to delegate to: {missing}",
                binaries::REQUIRED_ENV
            ))),
            Err(_) => Ok(None),
        },
    }
}

/// The forwarding client: the real server's CA, a token its webhook accepts, no retries (the
/// client in front decides what to retry) and no timeouts (watches stay open).
fn delegate_client(real: &RealServer) -> std::io::Result<kube::Client> {
    let url: http::Uri = real
        .url()
        .parse()
        .map_err(|e| std::io::Error::other(format!("real server URL: {e}")))?;
    let mut config = kube::Config::new(url);
    config.root_cert_file = Some(real.ca());
    config.default_retry = false;
    config.connect_timeout = Some(Duration::from_secs(10));
    config.write_timeout = None;
    config.headers.push((
        http::header::AUTHORIZATION,
        http::HeaderValue::from_str(&format!("Bearer {}", webhook::ADMIN_TOKEN))
            .map_err(std::io::Error::other)?,
    ));
    kube::Client::try_from(config).map_err(std::io::Error::other)
}

/// Why a client could not be built from a kubeconfig.
pub type ClientError = Box<dyn std::error::Error + Send + Sync>;

/// A kube-rs client from a kubeconfig file, built the way a user's tools build one.
pub async fn client_for(kubeconfig: &Path) -> Result<kube::Client, ClientError> {
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    Ok(kube::Client::try_from(config)?)
}

/// The bearer token the stand-in accepts for a service account (what a projected token is on
/// a real node); the process kubelet hands it to pods.
pub fn service_account_token(namespace: &str, name: &str) -> String {
    format!("{}{namespace}:{name}", auth::SERVICE_ACCOUNT_TOKEN_PREFIX)
}

/// A `kubectl` command using `kubeconfig`, with HOME (and so the discovery cache) in `home`.
pub fn kubectl_for(kubeconfig: &Path, home: &Path) -> std::process::Command {
    let mut command = std::process::Command::new("kubectl");
    command
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", home)
        .env_remove("KUBECTL_EXTERNAL_DIFF");
    command
}

async fn serve(listener: std::net::TcpListener, shared: Arc<Shared>) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let service = service_fn(move |request| routes::handle(Arc::clone(&shared), request));
            // Errors are a client hanging up; nothing to do about them.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

/// The cluster-admin role and its binding to `system:masters`, as every cluster has them.
fn bootstrap_rbac(store: &mut Store) -> std::io::Result<()> {
    let options = write::WriteOptions {
        manager: "kube-apiserver".into(),
        ..write::WriteOptions::default()
    };
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "cluster-admin"},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                  {"nonResourceURLs": ["*"], "verbs": ["*"]}]
    });
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "cluster-admin"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}]
    });
    for (plural, object) in [("clusterroles", role), ("clusterrolebindings", binding)] {
        let resource = store
            .registry
            .find("rbac.authorization.k8s.io", "v1", plural)
            .cloned()
            .ok_or_else(|| std::io::Error::other("RBAC kinds are not registered"))?;
        write::create(store, &resource, "", object, &options)
            .map_err(|e| std::io::Error::other(e.message))?;
    }
    Ok(())
}

fn write_kubeconfig(path: &Path, address: SocketAddr) -> std::io::Result<()> {
    let token = auth::ADMIN_TOKEN;
    let config = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: stand-in\n  cluster:\n    server: http://{address}\n\
         contexts:\n- name: stand-in\n  context:\n    cluster: stand-in\n    user: admin\n    namespace: default\n\
         current-context: stand-in\nusers:\n- name: admin\n  user:\n    token: {token}\n"
    );
    std::fs::write(path, config)
}
