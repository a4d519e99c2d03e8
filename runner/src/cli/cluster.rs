//! `stampede wait`, `stampede report` and `stampede agent`: the commands that work on a
//! LoadTest in a cluster, through `$KUBECONFIG` or the in-cluster config.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use stampede_runner::cluster;
use stampede_runner::exit::Exit;

use super::run::{export_summary, write_html_report};
use super::{CommandError, Outcome, current_thread_runtime};

/// A client for the cluster, and the namespace to use (the kubeconfig context's by default).
async fn connect(namespace: Option<String>) -> Result<(kube::Client, String), CommandError> {
    let client = kube::Client::try_default()
        .await
        .map_err(CommandError::Connect)?;
    let namespace = namespace.unwrap_or_else(|| client.default_namespace().to_string());
    Ok((client, namespace))
}

/// `stampede wait NAME`: follows the LoadTest until its run is over; the verdict is the exit
/// code.
pub fn wait(
    name: &str,
    namespace: Option<String>,
    timeout: Option<Duration>,
    out: &mut impl Write,
) -> Result<Outcome, CommandError> {
    current_thread_runtime()?.block_on(async {
        let (client, namespace) = connect(namespace).await?;
        let exit = cluster::wait(client, &namespace, name, timeout, out).await?;
        Ok(exit.into())
    })
}

/// `stampede report NAME`: the merged summary of the LoadTest's last finished run, printed
/// as `stampede run` prints it; the thresholds' verdict is the exit code.
pub fn report(
    name: &str,
    namespace: Option<String>,
    full: bool,
    summary_export: Option<&Path>,
    html: Option<&Path>,
    out: &mut impl Write,
) -> Result<Outcome, CommandError> {
    let summary = current_thread_runtime()?.block_on(async {
        let (client, namespace) = connect(namespace).await?;
        Ok::<_, CommandError>(cluster::fetch_result(client, &namespace, name).await?)
    })?;
    let _ = stampede_runner::summary::write_text(&summary, full, out);
    Ok(Outcome {
        exit: if summary.passed() {
            Exit::Ok
        } else {
            Exit::ThresholdsFailed
        },
        warnings: [
            export_summary(&summary, summary_export),
            write_html_report(&summary, "--html", html),
        ]
        .into_iter()
        .filter_map(Result::err)
        .collect(),
    })
}

/// `stampede dashboard [NAME]`: forwards a local port to the leading operator pod's fleet
/// dashboard and prints (and on a desktop opens) the page, until Ctrl-C.
pub fn dashboard(
    name: Option<&str>,
    namespace: Option<String>,
    operator_namespace: &str,
    port: u16,
    open: bool,
    out: &mut impl Write,
) -> Result<Outcome, CommandError> {
    use stampede_runner::cluster::forward;
    current_thread_runtime()?.block_on(async {
        let (client, namespace) = connect(namespace).await?;
        let target = forward::find_dashboard(
            &client,
            operator_namespace,
            name.map(|name| (namespace.as_str(), name)),
        )
        .await?;
        let listener = forward::listen(std::net::SocketAddr::from(([127, 0, 0, 1], port))).await?;
        let local = listener
            .local_addr()
            .map_err(|source| forward::ForwardError::Listen {
                addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                source,
            })?;
        let url = format!("http://{local}{}", forward::page_path(&namespace, name));
        let _ = writeln!(
            out,
            "fleet dashboard: {url} (through pod {operator_namespace}/{}, port {}; Ctrl-C stops)",
            target.pod, target.port
        );
        let _ = out.flush();
        if open && std::io::stdout().is_terminal() {
            // A desktop's browser, when there is one; the address is printed either way.
            let _ = std::process::Command::new("xdg-open")
                .arg(&url)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn();
        }
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        forward::forward(client, operator_namespace, &target, listener, stop).await;
        Ok(Exit::Ok.into())
    })
}

/// `stampede agent`: a runner pod's part of the run. Its log (stderr) is its output.
pub fn agent() -> Result<Outcome, CommandError> {
    cluster::agent()?;
    Ok(Exit::Ok.into())
}
