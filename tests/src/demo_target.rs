//! The demo server an end-to-end test's LoadTests load: in process on this machine's loopback
//! next to the API server stand-in (whose process kubelet runs the runner pods here too), or —
//! on a real cluster, whose runner pods cannot reach this loopback — the chart's demo-server
//! Deployment and Service in the test's own namespace.

use serde_json::{Value, json};
use stampede_runner::demo::{DemoConfig, DemoServer, DemoStats};

use crate::chart::render_chart;
use crate::cluster::{Cluster, runner_image};

/// How long a real cluster gets to pull the image and make the demo Deployment Available.
pub const AVAILABLE_TIMEOUT: &str = "180s";

/// The label value the chart gives the demo server's objects (`app.kubernetes.io/component`).
const COMPONENT: &str = "demo-server";

/// Why the chart's rendering did not yield a usable demo server.
#[derive(Debug, thiserror::Error)]
pub enum DemoObjectsError {
    /// The rendering had not exactly one demo-server object of a kind.
    #[error("the chart rendered {count} demo-server {kind} objects, expected exactly one")]
    NotOne {
        /// Deployment or Service.
        kind: &'static str,
        /// How many there were.
        count: usize,
    },
    /// A field the base URL is made of is missing.
    #[error("the demo-server Service has no {0}")]
    MissingField(&'static str),
    /// The values file could not be written.
    #[error("writing the chart values: {0}")]
    Io(#[from] std::io::Error),
    /// The objects could not be serialized.
    #[error("serializing the demo-server objects: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
}

/// The chart's demo server (charts/stampede/templates/demo-server.yaml) as rendered by Helm's
/// engine for one namespace and image.
#[derive(Debug, Clone)]
pub struct DemoObjects {
    /// The Deployment.
    pub deployment: Value,
    /// The Service in front of it.
    pub service: Value,
}

impl DemoObjects {
    /// Renders the chart with `demoServer.enabled=true` into `namespace`, the image being
    /// `image` (split into the chart's `image.repository` and `image.tag`, so the chart prints
    /// it back unchanged), and picks out the demo server's Deployment and Service.
    pub fn render(namespace: &str, image: &str) -> Result<DemoObjects, DemoObjectsError> {
        let (repository, tag) = split_image(image);
        // A values file, not --set: --set would read a tag like `1` or `true` as a number or a
        // boolean, which the chart's schema refuses.
        let dir = tempfile::tempdir()?;
        let values = dir.path().join("demo-values.json");
        std::fs::write(
            &values,
            json!({"image": {"repository": repository, "tag": tag}}).to_string(),
        )?;
        let documents: Vec<Value> = render_chart(&[
            "--no-crds",
            "--namespace",
            namespace,
            "--set",
            "demoServer.enabled=true",
            "--values",
            &values.to_string_lossy(),
        ])
        .into_iter()
        .filter_map(|document| serde_json::to_value(document).ok())
        .collect();
        Ok(DemoObjects {
            deployment: only_one(&documents, "Deployment")?,
            service: only_one(&documents, "Service")?,
        })
    }

    /// The Service's name.
    pub fn service_name(&self) -> Result<&str, DemoObjectsError> {
        self.service["metadata"]["name"]
            .as_str()
            .ok_or(DemoObjectsError::MissingField("metadata.name"))
    }

    /// The Service's namespace.
    pub fn namespace(&self) -> Result<&str, DemoObjectsError> {
        self.service["metadata"]["namespace"]
            .as_str()
            .ok_or(DemoObjectsError::MissingField("metadata.namespace"))
    }

    /// The Service's `http` port.
    pub fn port(&self) -> Result<u16, DemoObjectsError> {
        self.service["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|port| port["name"] == "http")
            .and_then(|port| port["port"].as_u64())
            .and_then(|port| u16::try_from(port).ok())
            .ok_or(DemoObjectsError::MissingField("spec.ports[name=http].port"))
    }

    /// Where pods of the cluster reach the demo server: `http://<service>.<namespace>.svc:<port>`.
    pub fn base_url(&self) -> Result<String, DemoObjectsError> {
        Ok(format!(
            "http://{}.{}.svc:{}",
            self.service_name()?,
            self.namespace()?,
            self.port()?
        ))
    }

    /// The Deployment's name.
    pub fn deployment_name(&self) -> Result<&str, DemoObjectsError> {
        self.deployment["metadata"]["name"]
            .as_str()
            .ok_or(DemoObjectsError::MissingField("Deployment metadata.name"))
    }

    /// Both objects as one YAML stream, the Service first (Helm's install order).
    pub fn manifest(&self) -> Result<String, DemoObjectsError> {
        Ok(format!(
            "---\n{}---\n{}",
            serde_yaml_ng::to_string(&self.service)?,
            serde_yaml_ng::to_string(&self.deployment)?
        ))
    }

    /// `kubectl apply` of both objects; panics with kubectl's message when the cluster refuses
    /// them.
    pub fn apply(&self, cluster: &Cluster) {
        let manifest = self.manifest().unwrap_or_else(|error| panic!("{error}"));
        let dir = tempfile::tempdir().expect("temporary directory for the demo manifest");
        let path = dir.path().join("demo-server.yaml");
        std::fs::write(&path, manifest).expect("write the demo manifest");
        cluster.kubectl_ok(&["apply", "-f", &path.to_string_lossy()]);
    }
}

/// The demo-server object of `kind` among `documents`, which must be exactly one.
fn only_one(documents: &[Value], kind: &'static str) -> Result<Value, DemoObjectsError> {
    let found: Vec<&Value> = documents
        .iter()
        .filter(|d| d["kind"] == kind)
        .filter(|d| d["metadata"]["labels"]["app.kubernetes.io/component"] == COMPONENT)
        .collect();
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        _ => Err(DemoObjectsError::NotOne {
            kind,
            count: found.len(),
        }),
    }
}

/// An image reference as the chart's `image.repository` and `image.tag`, which it prints as
/// `repository:tag`: split at the last `:` after the last `/` (so a registry's port stays in
/// the repository, and `name@sha256:...` prints back as it was); no tag means `latest`.
pub fn split_image(image: &str) -> (String, String) {
    let name_start = image.rfind('/').map_or(0, |slash| slash + 1);
    match image[name_start..].rfind(':') {
        Some(colon) => {
            let at = name_start + colon;
            (image[..at].to_string(), image[at + 1..].to_string())
        }
        None => (image.to_string(), "latest".to_string()),
    }
}

/// The demo server of one test.
#[derive(Debug)]
pub enum DemoTarget {
    /// A [`DemoServer`] on loopback, on a runtime of its own (the test thread blocks on
    /// kubectl); the stand-in's process kubelet runs runner pods on this machine.
    InProcess {
        /// The server (taken on drop).
        server: Option<DemoServer>,
        /// Its runtime (shut down on drop).
        runtime: Option<tokio::runtime::Runtime>,
        /// `http://127.0.0.1:<port>`.
        base_url: String,
    },
    /// The chart's demo server in the test's namespace; it goes when the namespace does.
    InCluster {
        /// The namespace.
        namespace: String,
        /// Its Deployment's name.
        deployment: String,
        /// `http://<service>.<namespace>.svc:<port>`.
        base_url: String,
    },
}

impl DemoTarget {
    /// The demo server for LoadTests in `namespace`: in the cluster on a real cluster, else in
    /// process on loopback.
    pub async fn start(cluster: &Cluster, namespace: &str) -> DemoTarget {
        if cluster.is_real() {
            DemoTarget::deploy(cluster, namespace)
        } else {
            DemoTarget::in_process().await
        }
    }

    /// A demo server on loopback, on a runtime of its own.
    pub async fn in_process() -> DemoTarget {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("the demo server's runtime");
        let server = runtime
            .spawn(DemoServer::start(
                std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                DemoConfig::default(),
            ))
            .await
            .expect("the demo server's start task")
            .expect("bind the demo server on loopback");
        let base_url = server.base_url();
        DemoTarget::InProcess {
            server: Some(server),
            runtime: Some(runtime),
            base_url,
        }
    }

    /// Applies the chart's demo server (image [`runner_image`]) to `namespace` and waits until
    /// its Deployment is Available; panics with the pods' state when it does not become so.
    pub fn deploy(cluster: &Cluster, namespace: &str) -> DemoTarget {
        let objects = DemoObjects::render(namespace, &runner_image())
            .unwrap_or_else(|error| panic!("the chart's demo server: {error}"));
        let (deployment, base_url) = match (objects.deployment_name(), objects.base_url()) {
            (Ok(deployment), Ok(base_url)) => (deployment.to_string(), base_url),
            (Err(error), _) | (_, Err(error)) => panic!("the chart's demo server: {error}"),
        };
        objects.apply(cluster);
        let waited = cluster.kubectl_run(&[
            "wait",
            "-n",
            namespace,
            "--for=condition=Available",
            &format!("deployment/{deployment}"),
            &format!("--timeout={AVAILABLE_TIMEOUT}"),
        ]);
        if !waited.status.success() {
            let pods = cluster.kubectl_run(&["get", "pods", "-n", namespace, "-o", "wide"]);
            let described =
                cluster.kubectl_run(&["describe", "deployment", &deployment, "-n", namespace]);
            panic!(
                "the demo server did not become Available in {AVAILABLE_TIMEOUT}: {}\n{}\n{}",
                String::from_utf8_lossy(&waited.stderr),
                String::from_utf8_lossy(&pods.stdout),
                String::from_utf8_lossy(&described.stdout)
            );
        }
        let target = DemoTarget::InCluster {
            namespace: namespace.to_string(),
            deployment,
            base_url,
        };
        eprintln!("demo server: {}", target.describe());
        target
    }

    /// The URL LoadTests put in `spec.defaults.baseUrl`.
    pub fn base_url(&self) -> &str {
        match self {
            DemoTarget::InProcess { base_url, .. } | DemoTarget::InCluster { base_url, .. } => {
                base_url
            }
        }
    }

    /// The server's request counters; None in the cluster, where the demo server keeps them in
    /// memory and serves no endpoint that reads them out (so assertions on them are skipped).
    pub fn stats(&self) -> Option<DemoStats> {
        match self {
            DemoTarget::InProcess { server, .. } => server.as_ref().map(DemoServer::stats),
            DemoTarget::InCluster { .. } => None,
        }
    }

    /// Where the server runs, in one line.
    pub fn describe(&self) -> String {
        match self {
            DemoTarget::InProcess { base_url, .. } => format!("in process at {base_url}"),
            DemoTarget::InCluster {
                namespace,
                deployment,
                base_url,
            } => format!("deployment/{deployment} in namespace {namespace}, at {base_url}"),
        }
    }
}

impl Drop for DemoTarget {
    fn drop(&mut self) {
        // The in-process server's tasks live on its runtime; shutting that down stops them.
        // The in-cluster one is deleted with the test's namespace.
        if let DemoTarget::InProcess {
            server, runtime, ..
        } = self
        {
            drop(server.take());
            if let Some(runtime) = runtime.take() {
                runtime.shutdown_background();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_image;

    fn split(image: &str) -> (String, String) {
        let (repository, tag) = split_image(image);
        // The chart prints `repository:tag`: a tagged reference comes back as it was.
        if image
            .rsplit('/')
            .next()
            .is_some_and(|name| name.contains(':'))
        {
            assert_eq!(format!("{repository}:{tag}"), image);
        }
        (repository, tag)
    }

    #[test]
    fn an_image_splits_into_the_charts_repository_and_tag() {
        let pair = |r: &str, t: &str| (r.to_string(), t.to_string());
        assert_eq!(split("stampede:e2e"), pair("stampede", "e2e"));
        assert_eq!(split("stampede"), pair("stampede", "latest"));
        assert_eq!(
            split("localhost:5000/team/stampede:1"),
            pair("localhost:5000/team/stampede", "1")
        );
        assert_eq!(
            split("localhost:5000/stampede"),
            pair("localhost:5000/stampede", "latest")
        );
        assert_eq!(
            split("localhost:5000/stampede:0.1.0@sha256:0123abcd"),
            pair("localhost:5000/stampede:0.1.0@sha256", "0123abcd")
        );
        assert_eq!(split(""), pair("", "latest"));
    }
}
