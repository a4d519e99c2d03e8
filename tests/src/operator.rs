//! The operator as the end-to-end tests run it: the real `stampede-operator` binary in a child
//! process against a cluster's kubeconfig, with its log kept in a file, restartable mid-run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running `stampede-operator` process; dropping it kills the process.
#[derive(Debug)]
pub struct OperatorProcess {
    child: Option<Child>,
    kubeconfig: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
}

impl OperatorProcess {
    /// Starts the operator watching `namespace` with the test policy: runner image
    /// [`crate::cluster::runner_image`], metrics on a free loopback port, the given start
    /// deadline, and `extra` flags. Its log goes to `log`.
    pub fn start(
        kubeconfig: &Path,
        namespace: &str,
        start_deadline_seconds: u64,
        extra: &[&str],
        log: &Path,
    ) -> OperatorProcess {
        let mut args: Vec<String> = [
            "--namespace",
            namespace,
            "--metrics-addr",
            "127.0.0.1:0",
            "--dashboard-addr",
            "127.0.0.1:0",
            "--log-format",
            "text",
            "--runner-image",
            &crate::cluster::runner_image(),
            "--start-deadline-seconds",
            &start_deadline_seconds.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        OperatorProcess::start_with(kubeconfig, args, Vec::new(), log)
    }

    /// Starts the operator with exactly these arguments and environment (e.g. a Deployment's,
    /// as a chart renders it), authenticating with `kubeconfig`.
    pub fn start_with(
        kubeconfig: &Path,
        args: Vec<String>,
        env: Vec<(String, String)>,
        log: &Path,
    ) -> OperatorProcess {
        let mut operator = OperatorProcess {
            child: None,
            kubeconfig: kubeconfig.to_path_buf(),
            args,
            env,
            log: log.to_path_buf(),
        };
        operator.spawn();
        operator
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("operator log file");
        let child = Command::new(crate::operator_bin())
            .args(&self.args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("RUST_LOG", "info,kube=warn")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start stampede-operator");
        self.child = Some(child);
    }

    /// Kills the process (SIGKILL: no clean shutdown, as a crashed or evicted pod) and waits
    /// for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills it and starts a new process with the same flags.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Kills it and starts a new process with `flags` (flag, value) set in place of the values
    /// it had (added when it had none): a restart with another policy.
    pub fn restart_with(&mut self, flags: &[(&str, &str)]) {
        for (flag, value) in flags {
            match self.args.iter().position(|arg| arg == flag) {
                Some(at) if at + 1 < self.args.len() => self.args[at + 1] = value.to_string(),
                _ => self.args.extend([flag.to_string(), value.to_string()]),
            }
        }
        self.restart();
    }

    /// The address of its /metrics, /healthz and /readyz, from its log (it binds a free port).
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.logged_addr("serving /metrics")
    }

    /// The address of its fleet dashboard, from its log (it binds a free port).
    pub fn dashboard_addr(&self) -> Option<std::net::SocketAddr> {
        self.logged_addr("serving the fleet dashboard")
    }

    /// The `addr=` of the latest log line saying `what`: a restarted operator binds a new port.
    fn logged_addr(&self, what: &str) -> Option<std::net::SocketAddr> {
        self.log()
            .lines()
            .rev()
            .filter(|line| line.contains(what))
            .filter_map(|line| line.split("addr=").nth(1))
            .filter_map(|rest| rest.split_whitespace().next())
            .find_map(|addr| addr.parse().ok())
    }

    /// `GET path` on its telemetry server: (status code, body).
    pub fn http_get(&self, path: &str) -> Option<(u16, String)> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(self.metrics_addr()?).ok()?;
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .ok()?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: operator\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let code = response.split_whitespace().nth(1)?.parse().ok()?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())?;
        Some((code, body))
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
