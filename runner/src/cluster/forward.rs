//! `stampede dashboard NAME`: finds the operator's leading pod, forwards a local port to the
//! fleet dashboard it serves on the pod's loopback (through the API server's
//! `pods/portforward`, as `kubectl port-forward` does), and gives the LoadTest's page.
//!
//! Choosing the pod and its port is pure ([`pick_operator`]); the forwarding is the I/O edge.

use std::net::SocketAddr;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use tokio::net::TcpListener;

use stampede_crds::LoadTest;

/// The labels the chart puts on the operator's pods.
pub const OPERATOR_SELECTOR: &str =
    "app.kubernetes.io/name=stampede,app.kubernetes.io/component=operator";
/// Where the operator's dashboard listens when nothing says otherwise.
pub const DEFAULT_DASHBOARD_PORT: u16 = 5665;

/// Why the dashboard cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// No running operator pod.
    #[error(
        "no running operator pod in namespace {namespace} (pods labelled {OPERATOR_SELECTOR}); \
         pass --operator-namespace where the chart is installed"
    )]
    NoOperator {
        /// Where it looked.
        namespace: String,
    },
    /// The operator serves no dashboard.
    #[error(
        "the operator pod {pod} serves no dashboard (STAMPEDE_DASHBOARD_ADDR=off); set the chart \
         value dashboard.enabled=true"
    )]
    Off {
        /// The pod.
        pod: String,
    },
    /// The LoadTest does not exist.
    #[error("LoadTest {namespace}/{name} not found")]
    NotFound {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The local port could not be opened.
    #[error("cannot listen on {addr} (choose another with --port, 0 for any): {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An API call failed.
    #[error("{0}")]
    Kube(#[from] kube::Error),
}

/// The operator pod to forward to, and the dashboard's port in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorTarget {
    /// The pod's name.
    pub pod: String,
    /// The dashboard's port on its loopback.
    pub port: u16,
}

/// The running operator pod that leads (the Lease holder among `pods`; the first running one
/// by name when no Lease names one, as with a single replica), and its dashboard port from
/// its `STAMPEDE_DASHBOARD_ADDR` or `--dashboard-addr`.
pub fn pick_operator(
    namespace: &str,
    pods: &[Pod],
    lease_holders: &[String],
) -> Result<OperatorTarget, ForwardError> {
    let mut running: Vec<&Pod> = pods
        .iter()
        .filter(|pod| {
            pod.metadata.deletion_timestamp.is_none()
                && pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        })
        .collect();
    running.sort_by_key(|pod| pod.metadata.name.clone());
    let name_of = |pod: &&Pod| pod.metadata.name.clone().unwrap_or_default();
    let chosen = running
        .iter()
        .find(|pod| lease_holders.contains(&name_of(pod)))
        .or(running.first())
        .ok_or_else(|| ForwardError::NoOperator {
            namespace: namespace.to_string(),
        })?;
    let pod = name_of(chosen);
    match dashboard_addr(chosen).as_deref() {
        Some("off") => Err(ForwardError::Off { pod }),
        Some(addr) => Ok(OperatorTarget {
            port: addr
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(DEFAULT_DASHBOARD_PORT),
            pod,
        }),
        None => Ok(OperatorTarget {
            pod,
            port: DEFAULT_DASHBOARD_PORT,
        }),
    }
}

/// The dashboard address the operator container was given: its `--dashboard-addr` argument,
/// else its `STAMPEDE_DASHBOARD_ADDR` variable.
fn dashboard_addr(pod: &Pod) -> Option<String> {
    let container = pod.spec.as_ref()?.containers.first()?;
    let args = container.args.as_deref().unwrap_or_default();
    let from_args = args.iter().enumerate().find_map(|(i, arg)| {
        arg.strip_prefix("--dashboard-addr=")
            .map(str::to_string)
            .or_else(|| (arg == "--dashboard-addr").then(|| args.get(i + 1).cloned())?)
    });
    from_args.or_else(|| {
        container
            .env
            .as_deref()?
            .iter()
            .find(|e| e.name == "STAMPEDE_DASHBOARD_ADDR")?
            .value
            .clone()
    })
}

/// The dashboard's path for a LoadTest, or its list.
pub fn page_path(namespace: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("/loadtests/{namespace}/{name}"),
        None => "/".to_string(),
    }
}

/// Finds the operator's dashboard (checking the LoadTest exists first, when one is named).
pub async fn find_dashboard(
    client: &kube::Client,
    operator_namespace: &str,
    loadtest: Option<(&str, &str)>,
) -> Result<OperatorTarget, ForwardError> {
    if let Some((namespace, name)) = loadtest {
        let tests: Api<LoadTest> = Api::namespaced(client.clone(), namespace);
        if tests.get_opt(name).await?.is_none() {
            return Err(ForwardError::NotFound {
                namespace: namespace.to_string(),
                name: name.to_string(),
            });
        }
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), operator_namespace);
    let listed = pods
        .list(&ListParams::default().labels(OPERATOR_SELECTOR))
        .await?;
    // Who leads: any Lease there naming one of the pods (reading Leases may be denied; then
    // the first running pod it is).
    let leases: Api<Lease> = Api::namespaced(client.clone(), operator_namespace);
    let holders: Vec<String> = leases
        .list(&ListParams::default())
        .await
        .map(|list| {
            list.items
                .into_iter()
                .filter_map(|lease| lease.spec?.holder_identity)
                .collect()
        })
        .unwrap_or_default();
    pick_operator(operator_namespace, &listed.items, &holders)
}

/// Listens on `addr` (port 0: any free one) for the forward.
pub async fn listen(addr: SocketAddr) -> Result<TcpListener, ForwardError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ForwardError::Listen { addr, source })
}

/// Forwards every connection to `listener` to the dashboard in the operator pod until
/// `stop` resolves; one port-forward stream per connection (a page and its event stream are
/// two).
pub async fn forward(
    client: kube::Client,
    operator_namespace: &str,
    target: &OperatorTarget,
    listener: TcpListener,
    stop: impl std::future::Future<Output = ()>,
) {
    let pods: Api<Pod> = Api::namespaced(client, operator_namespace);
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            () = &mut stop => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((mut connection, _)) = accepted else {
            continue;
        };
        let pods = pods.clone();
        let target = target.clone();
        tokio::spawn(async move {
            let mut forwarder = match pods.portforward(&target.pod, &[target.port]).await {
                Ok(forwarder) => forwarder,
                Err(error) => {
                    eprintln!("port-forward to {}: {error}", target.pod);
                    return;
                }
            };
            if let Some(mut upstream) = forwarder.take_stream(target.port) {
                let _ = tokio::io::copy_bidirectional(&mut connection, &mut upstream).await;
            }
            let _ = forwarder.join().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, phase: &str, env: Option<&str>, args: &[&str]) -> Pod {
        let env = env.map_or(
            json!([]),
            |v| json!([{"name": "STAMPEDE_DASHBOARD_ADDR", "value": v}]),
        );
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "operator", "args": args, "env": env}]},
            "status": {"phase": phase},
        }))
        .unwrap()
    }

    #[test]
    fn the_lease_holder_is_chosen_with_its_dashboard_port() {
        let pods = [
            pod("stampede-a", "Running", Some("127.0.0.1:5665"), &[]),
            pod("stampede-b", "Running", Some("127.0.0.1:7000"), &[]),
            pod("stampede-c", "Pending", None, &[]),
        ];
        let leader = pick_operator("ops", &pods, &["stampede-b".into()]).unwrap();
        assert_eq!(
            leader,
            OperatorTarget {
                pod: "stampede-b".into(),
                port: 7000
            }
        );
        // No Lease (one replica): the first running pod.
        let single = pick_operator("ops", &pods, &[]).unwrap();
        assert_eq!(single.pod, "stampede-a");
        // The flag wins over the variable, as clap reads them.
        let flagged = pod(
            "x",
            "Running",
            Some("127.0.0.1:5665"),
            &["--dashboard-addr", "0.0.0.0:9000"],
        );
        assert_eq!(pick_operator("ops", &[flagged], &[]).unwrap().port, 9000);
    }

    #[test]
    fn no_operator_or_a_dashboard_turned_off_say_what_to_do() {
        let error = pick_operator("ops", &[pod("p", "Pending", None, &[])], &[]).unwrap_err();
        assert!(
            error.to_string().contains("--operator-namespace"),
            "{error}"
        );
        let off = pick_operator("ops", &[pod("p", "Running", Some("off"), &[])], &[]).unwrap_err();
        assert!(off.to_string().contains("dashboard.enabled=true"), "{off}");
        assert_eq!(page_path("shop", Some("spike")), "/loadtests/shop/spike");
        assert_eq!(page_path("shop", None), "/");
    }
}
