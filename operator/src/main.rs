//! `stampede-operator`: flags and environment → policy; logs; `/metrics`, `/healthz`,
//! `/readyz`; leader election; the controller until SIGTERM or lost leadership.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, ValueEnum};
use k8s_openapi::api::core::v1::ResourceRequirements;
use stampede_operator::controller::{self, Context};
use stampede_operator::lease::{self, LeaseConfig};
use stampede_operator::policy::Policy;
use stampede_operator::telemetry::{self, Telemetry};

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
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "STAMPEDE_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
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
        }
    }
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
    let context = Arc::new(Context::new(client.clone(), policy, telemetry));
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
    tracing::info!("stopped");
    code
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}
