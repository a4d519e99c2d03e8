//! Runs the API server stand-in until Ctrl-C, printing its kubeconfig path — for trying
//! `kubectl` against it by hand. With `--kubelet`, Jobs run too: the `stampede` image maps to
//! the `stampede` binary next to this one.

use stampede_tests::apiserver::ApiServer;
use stampede_tests::cluster::KubeletRuntime;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let with_kubelet = std::env::args().skip(1).any(|arg| arg == "--kubelet");
    let server = ApiServer::start()?;
    let _kubelet = if with_kubelet {
        let binary = std::env::current_exe()?
            .with_file_name(format!("stampede{}", std::env::consts::EXE_SUFFIX));
        if !binary.exists() {
            return Err(format!(
                "{} is missing: run `cargo build --bins` first",
                binary.display()
            )
            .into());
        }
        Some(KubeletRuntime::start(&server, binary).await)
    } else {
        None
    };
    println!("export KUBECONFIG={}", server.kubeconfig().display());
    println!("# serving {} until Ctrl-C", server.url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
