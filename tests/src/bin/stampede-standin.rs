//! Runs the API server stand-in (and, with `--kubelet`, the process kubelet) until Ctrl-C,
//! printing its kubeconfig path — for trying `kubectl` against it by hand.

use stampede_tests::apiserver::ApiServer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = ApiServer::start()?;
    println!("export KUBECONFIG={}", server.kubeconfig().display());
    println!("# serving {} until Ctrl-C", server.url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
