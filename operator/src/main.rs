//! `stampede-operator`: flags and environment → policy; logs; `/metrics`, `/healthz`,
//! `/readyz`; leader election; the controller until SIGTERM or lost leadership.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, ValueEnum};
use k8s_openapi::api::core::v1::ResourceRequirements;
use stampede_operator::controller::{self, Context};
use stampede_operator::dashboard::Dashboards;
use stampede_operator::lease::{self, LeaseConfig};
use stampede_operator::policy::{DEFAULT_DENIED_TARGETS, Policy};
use stampede_operator::quantity::Quantity;
use stampede_operator::runner_policy::{self, Pattern, RunnerPolicy};
use stampede_operator::telemetry::{self, Telemetry};
use stampede_runner::http::TargetPolicy;
use stampede_runner::http::target_policy::{self, TargetRule};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// One JSON object per line (for log collectors).
    Json,
    /// Human-readable lines.
    Text,
}

/// The Stampede operator: reconciles LoadTests into runner Jobs and writes their verdicts.
#[derive(Debug, Parser)]
#[command(name = "stampede-operator", version)]
struct Args {
    /// Watch LoadTests in these namespaces only, comma-separated (default: every namespace).
    #[arg(long, env = "STAMPEDE_WATCH_NAMESPACE", value_delimiter = ',')]
    namespace: Vec<String>,
    /// Runner image for LoadTests that do not set spec.runners.image.
    #[arg(long, env = "STAMPEDE_RUNNER_IMAGE")]
    runner_image: Option<String>,
    /// Most runners one LoadTest may use.
    #[arg(long, env = "STAMPEDE_MAX_RUNNERS", default_value_t = Policy::default().max_runners)]
    max_runners: u64,
    /// Most VUs (peak, all runners) one LoadTest may ask for.
    #[arg(long, env = "STAMPEDE_MAX_VUS_PER_TEST", default_value_t = Policy::default().max_vus_per_test)]
    max_vus_per_test: u64,
    /// VUs per runner when a LoadTest sets neither runners.count nor runners.maxVUsPerRunner.
    #[arg(long, env = "STAMPEDE_DEFAULT_MAX_VUS_PER_RUNNER", default_value_t = Policy::default().default_max_vus_per_runner)]
    default_max_vus_per_runner: u64,
    /// Seconds the runners have to become Ready before the run is Errored.
    #[arg(long, env = "STAMPEDE_START_DEADLINE_SECONDS", default_value_t = Policy::default().start_deadline_seconds)]
    start_deadline_seconds: u64,
    /// Runner container resources for LoadTests that do not set spec.runners.resources, as
    /// JSON of a Kubernetes ResourceRequirements, e.g. '{"requests":{"cpu":"1","memory":"256Mi"}}'.
    #[arg(long, env = "STAMPEDE_RUNNER_RESOURCES", value_parser = parse_resources)]
    runner_resources: Option<ResourceRequirements>,
    /// Images spec.runners.image may name besides the runner image, comma-separated; each is
    /// an exact image, a prefix ending in `*` (e.g. registry.corp/stampede:*) or `*`.
    #[arg(long, env = "STAMPEDE_ALLOWED_RUNNER_IMAGES", value_delimiter = ',')]
    allowed_runner_images: Vec<String>,
    /// Let LoadTests set spec.runners.serviceAccountName (the runners then act as that account).
    #[arg(
        long,
        env = "STAMPEDE_ALLOW_RUNNER_SERVICE_ACCOUNT",
        default_value_t = false
    )]
    allow_runner_service_account: bool,
    /// Node-selector label keys spec.runners.nodeSelector may use, comma-separated (patterns
    /// as for --allowed-runner-images).
    #[arg(
        long,
        env = "STAMPEDE_ALLOWED_NODE_SELECTOR_KEYS",
        value_delimiter = ','
    )]
    allowed_node_selector_keys: Vec<String>,
    /// Taint keys spec.runners.tolerations may tolerate, comma-separated (`*` also allows a
    /// toleration without a key, which tolerates every taint).
    #[arg(long, env = "STAMPEDE_ALLOWED_TOLERATION_KEYS", value_delimiter = ',')]
    allowed_toleration_keys: Vec<String>,
    /// Let LoadTests set spec.runners.affinity.
    #[arg(long, env = "STAMPEDE_ALLOW_RUNNER_AFFINITY", default_value_t = false)]
    allow_runner_affinity: bool,
    /// Most CPU one runner may request or be limited to (a Kubernetes quantity, or `none`).
    #[arg(long, env = "STAMPEDE_MAX_RUNNER_CPU", default_value = runner_policy::DEFAULT_MAX_CPU, value_parser = parse_cap)]
    max_runner_cpu: Cap,
    /// Most memory one runner may request or be limited to (a Kubernetes quantity, or `none`).
    #[arg(long, env = "STAMPEDE_MAX_RUNNER_MEMORY", default_value = runner_policy::DEFAULT_MAX_MEMORY, value_parser = parse_cap)]
    max_runner_memory: Cap,
    /// Secrets spec.env[].valueFrom.secretKeyRef may name, comma-separated (patterns).
    #[arg(long, env = "STAMPEDE_ALLOWED_SECRETS", value_delimiter = ',')]
    allowed_secrets: Vec<String>,
    /// ConfigMaps spec.env[].valueFrom.configMapKeyRef and spec.data.*.configMapRef may name,
    /// comma-separated (patterns); the runners are granted `get` on them.
    #[arg(long, env = "STAMPEDE_ALLOWED_CONFIG_MAPS", value_delimiter = ',')]
    allowed_config_maps: Vec<String>,
    /// Where runners may send load, comma-separated hosts, `*.domains`, addresses and CIDR
    /// ranges (empty: anywhere not denied); checked by the runners on every connection.
    #[arg(long, env = "STAMPEDE_ALLOWED_TARGETS", default_value = "", value_parser = parse_targets)]
    allowed_targets: Targets,
    /// Where runners never send load (same form; wins over --allowed-targets). The API
    /// server's address is always denied too.
    #[arg(long, env = "STAMPEDE_DENIED_TARGETS", default_value = DEFAULT_DENIED_TARGETS, value_parser = parse_targets)]
    denied_targets: Targets,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "STAMPEDE_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Address of the fleet dashboard (the LoadTests and each one's live report), or `off`.
    /// Loopback by default: reached with `kubectl port-forward`, so only who may port-forward
    /// to the operator's pod sees it.
    #[arg(long, env = "STAMPEDE_DASHBOARD_ADDR", default_value = "127.0.0.1:5665", value_parser = parse_dashboard_addr)]
    dashboard_addr: DashboardAddr,
    /// Elect a leader with a Lease (for more than one replica).
    #[arg(long, env = "STAMPEDE_LEADER_ELECT", default_value_t = false)]
    leader_elect: bool,
    /// Namespace of the Lease (default: $POD_NAMESPACE, else the watched namespace, else default).
    #[arg(long, env = "STAMPEDE_LEASE_NAMESPACE")]
    lease_namespace: Option<String>,
    /// Name of the Lease.
    #[arg(long, env = "STAMPEDE_LEASE_NAME", default_value = "stampede-operator")]
    lease_name: String,
    /// Log format.
    #[arg(long, env = "STAMPEDE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    log_format: LogFormat,
}

impl Args {
    fn policy(&self) -> Policy {
        let defaults = Policy::default();
        Policy {
            max_runners: self.max_runners,
            max_vus_per_test: self.max_vus_per_test,
            default_max_vus_per_runner: self.default_max_vus_per_runner,
            runner_image: self
                .runner_image
                .clone()
                .filter(|i| !i.is_empty())
                .unwrap_or(defaults.runner_image),
            start_deadline_seconds: self.start_deadline_seconds,
            default_runner_resources: self.runner_resources.clone(),
            runners: RunnerPolicy {
                allowed_images: patterns(&self.allowed_runner_images),
                allow_service_account: self.allow_runner_service_account,
                allowed_node_selector_keys: patterns(&self.allowed_node_selector_keys),
                allowed_toleration_keys: patterns(&self.allowed_toleration_keys),
                allow_affinity: self.allow_runner_affinity,
                max_cpu: self.max_runner_cpu.0.clone(),
                max_memory: self.max_runner_memory.0.clone(),
                allowed_secrets: patterns(&self.allowed_secrets),
                allowed_config_maps: patterns(&self.allowed_config_maps),
            },
            targets: TargetPolicy {
                allowed: self.allowed_targets.0.clone(),
                denied: self.denied_targets.0.clone(),
            },
        }
    }
}

/// The non-empty entries of a comma-separated list as patterns.
fn patterns(list: &[String]) -> Vec<Pattern> {
    list.iter()
        .map(|entry| entry.trim())
        .filter(|entry| !entry.is_empty())
        .map(Pattern::new)
        .collect()
}

/// Where the fleet dashboard listens.
#[derive(Debug, Clone, Copy)]
enum DashboardAddr {
    /// Not served.
    Off,
    /// On this address.
    At(SocketAddr),
}

fn parse_dashboard_addr(text: &str) -> Result<DashboardAddr, String> {
    if text == "off" {
        return Ok(DashboardAddr::Off);
    }
    text.parse()
        .map(DashboardAddr::At)
        .map_err(|_| format!("{text:?} is not an address (write 127.0.0.1:5665, or off)"))
}

/// A target list.
#[derive(Debug, Clone)]
struct Targets(Vec<TargetRule>);

fn parse_targets(text: &str) -> Result<Targets, String> {
    target_policy::parse_list(text)
        .map(Targets)
        .map_err(|error| error.to_string())
}

/// A resource cap: a quantity, or none when the flag is empty.
#[derive(Debug, Clone)]
struct Cap(Option<Quantity>);

fn parse_cap(text: &str) -> Result<Cap, String> {
    if text.trim().is_empty() || text.trim() == "none" {
        return Ok(Cap(None));
    }
    Quantity::parse(text.trim())
        .map(|quantity| Cap(Some(quantity)))
        .map_err(|error| {
            format!(
                "{error}: write a Kubernetes quantity such as 4, 500m or 8Gi, or none for no cap"
            )
        })
}

fn parse_resources(text: &str) -> Result<ResourceRequirements, String> {
    serde_json::from_str(text).map_err(|error| {
        format!(
            "{error}: write a ResourceRequirements as JSON, e.g. {{\"requests\":{{\"cpu\":\"1\",\"memory\":\"256Mi\"}}}}"
        )
    })
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.with_ansi(false).init(),
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logs(args.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(operate(args))
}

async fn operate(args: Args) -> ExitCode {
    let policy = args.policy();
    let client = match kube::Client::try_default().await {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot reach the Kubernetes API (in-cluster config or $KUBECONFIG)");
            return ExitCode::FAILURE;
        }
    };
    let telemetry = Telemetry::new();
    let listener = match tokio::net::TcpListener::bind(args.metrics_addr).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%error, addr = %args.metrics_addr, "cannot listen for /metrics");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(addr = %listener.local_addr().map_or(args.metrics_addr, |a| a), "serving /metrics, /healthz, /readyz");
    let server = tokio::spawn(telemetry::serve(
        listener,
        telemetry.clone(),
        shutdown_signal(),
    ));
    let dashboards = Dashboards::default();
    let dashboard = match args.dashboard_addr {
        DashboardAddr::Off => None,
        DashboardAddr::At(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                tracing::info!(addr = %listener.local_addr().map_or(addr, |a| a), "serving the fleet dashboard");
                Some(tokio::spawn(dashboards.clone().serve(listener)))
            }
            // The dashboard is for people; load tests run without it.
            Err(error) => {
                tracing::error!(%error, %addr, "cannot listen for the fleet dashboard; running without it");
                None
            }
        },
    };

    let mut leadership = None;
    let mut lease_config = None;
    if args.leader_elect {
        let namespace = args
            .lease_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .or_else(|| args.namespace.first().cloned())
            .unwrap_or_else(|| "default".into());
        let identity = std::env::var("POD_NAME")
            .ok()
            .or_else(hostname)
            .unwrap_or_else(|| format!("stampede-operator-{}", std::process::id()));
        let config = LeaseConfig::new(namespace, args.lease_name.clone(), identity);
        // A standby replica is healthy and ready to take over; it only does not reconcile.
        telemetry.set_ready(true);
        let mut elected = lease::spawn(client.clone(), config.clone());
        tracing::info!(lease = %config.name, namespace = %config.namespace, identity = %config.identity, "waiting to lead");
        tokio::select! {
            () = elected.acquired() => {}
            () = shutdown_signal() => return ExitCode::SUCCESS,
        }
        tracing::info!("leading");
        leadership = Some(elected);
        lease_config = Some(config);
    }
    telemetry.set_ready(true);
    let watched = if args.namespace.is_empty() {
        "<all>".to_string()
    } else {
        args.namespace.join(",")
    };
    tracing::info!(namespaces = %watched, image = %policy.runner_image,
        max_runners = policy.max_runners, max_vus_per_test = policy.max_vus_per_test, "starting the controller");
    let context = Arc::new(Context::new(client.clone(), policy, telemetry, dashboards));
    let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<()>();
    let stop = async move {
        tokio::select! {
            () = shutdown_signal() => {}
            _ = lost_rx => {}
        }
    };
    let namespaces: Vec<String> = args
        .namespace
        .iter()
        .map(|ns| ns.trim().to_string())
        .filter(|ns| !ns.is_empty())
        .collect();
    let controller = controller::run(context, &namespaces, stop);
    let code = match leadership.as_mut() {
        Some(elected) => {
            tokio::pin!(controller);
            tokio::select! {
                () = &mut controller => ExitCode::SUCCESS,
                () = elected.lost() => {
                    tracing::error!("lost the leader Lease; stopping so a new leader alone reconciles");
                    let _ = lost_tx.send(());
                    controller.await;
                    ExitCode::FAILURE
                }
            }
        }
        None => {
            controller.await;
            drop(lost_tx);
            ExitCode::SUCCESS
        }
    };
    if let (Some(elected), Some(config)) = (leadership, lease_config) {
        elected.stop().await;
        if let Err(error) = lease::release(client, &config).await {
            tracing::warn!(%error, "cannot release the Lease");
        }
    }
    server.abort();
    if let Some(dashboard) = dashboard {
        dashboard.abort();
    }
    tracing::info!("stopped");
    code
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}
