//! Running container processes: spawning one (own process group, only the given environment,
//! stdout and stderr appended to its log file), signalling it (SIGTERM to the process, SIGKILL
//! to its whole group) and polling it for its exit.
//!
//! A [`Process`] keeps its `tokio::process::Child` behind a mutex and is only ever signalled
//! while the child has not been reaped, so a signal can never reach a recycled pid.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// How often exits are polled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// What to run for a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments (after argv[0]).
    pub args: Vec<String>,
    /// The whole environment (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// The working directory.
    pub working_dir: PathBuf,
    /// The log file stdout and stderr are appended to.
    pub log_path: PathBuf,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// The exit code, `128 + signal` when a signal killed it.
    pub code: i32,
    /// It was killed by the OOM-kill fault.
    pub oom_killed: bool,
}

/// The container exit code of a process exit status: its code, or `128 + signal`.
pub fn exit_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 128,
    }
}

/// A running (or exited, not yet forgotten) container process.
#[derive(Debug)]
pub struct Process {
    child: Mutex<Child>,
    pid: i32,
    oom_killed: AtomicBool,
    /// When it was started.
    pub started_at: Timestamp,
}

fn lock(child: &Mutex<Child>) -> MutexGuard<'_, Child> {
    child.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts a process as a process-group leader, with `kill_on_drop`.
pub fn spawn(launch: &Launch) -> io::Result<Process> {
    if let Some(dir) = launch.log_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let stdout = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&launch.log_path)?;
    let stderr = stdout.try_clone()?;
    let child = Command::new(&launch.program)
        .args(&launch.args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&launch.working_dir)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .ok_or_else(|| io::Error::other("spawned process has no pid"))?;
    Ok(Process {
        child: Mutex::new(child),
        pid,
        oom_killed: AtomicBool::new(false),
        started_at: Timestamp::now(),
    })
}

impl Process {
    /// The process id (and process group id).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The exit, if the process has exited (reaping it). An error waiting for it counts as an
    /// exit by SIGKILL.
    pub fn try_exit(&self) -> Option<Exit> {
        let code = match lock(&self.child).try_wait() {
            Ok(None) => return None,
            Ok(Some(status)) => exit_code(status),
            Err(_) => 128 + Signal::SIGKILL as i32,
        };
        Some(Exit {
            code,
            oom_killed: self.oom_killed.load(Ordering::SeqCst),
        })
    }

    /// Sends `signal` while the process has not been reaped; `group` sends it to the whole
    /// process group. Returns whether it was still running.
    fn signal(&self, signal: Signal, group: bool) -> bool {
        let mut child = lock(&self.child);
        if !matches!(child.try_wait(), Ok(None)) {
            return false;
        }
        let pid = Pid::from_raw(self.pid);
        let sent = if group {
            killpg(pid, signal).or_else(|_| kill(pid, signal))
        } else {
            kill(pid, signal)
        };
        sent.is_ok()
    }

    /// SIGTERM to the process (as a container runtime sends it to PID 1).
    pub fn terminate(&self) -> bool {
        self.signal(Signal::SIGTERM, false)
    }

    /// SIGKILL to the process group.
    pub fn kill(&self) -> bool {
        self.signal(Signal::SIGKILL, true)
    }

    /// SIGKILL for a fault; `oom` makes the exit report `OOMKilled`.
    pub fn fault_kill(&self, oom: bool) -> bool {
        if oom {
            self.oom_killed.store(true, Ordering::SeqCst);
        }
        self.kill()
    }

    /// After the process exited: SIGKILL whatever is left of its process group (as a container
    /// runtime ends the container's other processes with it).
    pub fn kill_leftovers(&self) {
        let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
    }
}

/// The processes of one pod.
#[derive(Debug)]
struct PodProcesses {
    namespace: String,
    name: String,
    processes: Vec<Arc<Process>>,
}

/// Every process the kubelet started and has not forgotten yet, by pod uid: what faults,
/// shutdown and drop reach.
#[derive(Debug, Default)]
pub struct ProcessTable {
    pods: Mutex<std::collections::HashMap<String, PodProcesses>>,
}

impl ProcessTable {
    fn pods(&self) -> MutexGuard<'_, std::collections::HashMap<String, PodProcesses>> {
        self.pods.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a pod's new process.
    pub fn register(&self, uid: &str, namespace: &str, name: &str, process: Arc<Process>) {
        self.pods()
            .entry(uid.to_string())
            .or_insert_with(|| PodProcesses {
                namespace: namespace.to_string(),
                name: name.to_string(),
                processes: Vec::new(),
            })
            .processes
            .push(process);
    }

    /// Forgets a pod whose processes all exited.
    pub fn forget(&self, uid: &str) {
        self.pods().remove(uid);
    }

    /// The processes of the pod(s) named `namespace/name`.
    pub fn of_pod(&self, namespace: &str, name: &str) -> Vec<Arc<Process>> {
        self.pods()
            .values()
            .filter(|p| p.namespace == namespace && p.name == name)
            .flat_map(|p| p.processes.iter().cloned())
            .collect()
    }

    /// Every process.
    pub fn all(&self) -> Vec<Arc<Process>> {
        self.pods()
            .values()
            .flat_map(|p| p.processes.iter().cloned())
            .collect()
    }

    /// SIGKILLs every process still running (synchronous, for shutdown and drop).
    pub fn kill_all(&self) -> Vec<Arc<Process>> {
        let all = self.all();
        for process in &all {
            process.kill();
        }
        all
    }
}

/// Polls until every process exited or `timeout` passed; returns whether all exited.
pub async fn wait_all(processes: &[Arc<Process>], timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if processes.iter().all(|p| p.try_exit().is_some()) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(dir: &std::path::Path, script: &str) -> Launch {
        Launch {
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".into(), script.into()],
            env: vec![("ONLY".into(), "this".into())],
            working_dir: dir.to_path_buf(),
            log_path: dir.join("logs/ns_pod_c.log"),
        }
    }

    async fn wait(p: &Process) -> Exit {
        for _ in 0..500 {
            if let Some(exit) = p.try_exit() {
                return exit;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        panic!("process did not exit");
    }

    #[tokio::test]
    async fn output_env_and_exit_code() {
        let dir = tempfile::tempdir().unwrap();
        let l = launch(
            dir.path(),
            "echo out $ONLY ${HOME:-nohome} ${CARGO_MANIFEST_DIR:-clean} $(pwd); echo err >&2; exit 3",
        );
        let p = spawn(&l).unwrap();
        assert_eq!(
            wait(&p).await,
            Exit {
                code: 3,
                oom_killed: false
            }
        );
        assert!(!p.kill(), "an exited process is not signalled");
        let log = std::fs::read_to_string(&l.log_path).unwrap();
        let cwd = dir.path().canonicalize().unwrap();
        assert!(
            log.contains(&format!("out this nohome clean {}", cwd.display())),
            "{log}"
        );
        assert!(log.contains("err"), "{log}");
    }

    #[tokio::test]
    async fn kills_report_signal_exit_codes() {
        let dir = tempfile::tempdir().unwrap();
        let p = spawn(&launch(dir.path(), "sleep 30")).unwrap();
        assert!(p.try_exit().is_none());
        assert!(p.fault_kill(true));
        assert_eq!(
            wait(&p).await,
            Exit {
                code: 137,
                oom_killed: true
            }
        );
        let t = spawn(&launch(dir.path(), "exec sleep 30")).unwrap();
        assert!(t.terminate());
        assert_eq!(wait(&t).await.code, 143);
    }

    #[tokio::test]
    async fn group_kill_reaches_children_and_wait_all_waits() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("child.pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
        let p = Arc::new(spawn(&launch(dir.path(), &script)).unwrap());
        let mut child_pid = None;
        for _ in 0..250 {
            if let Ok(text) = std::fs::read_to_string(&pid_file)
                && let Ok(pid) = text.trim().parse::<i32>()
            {
                child_pid = Some(pid);
                break;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        let child_pid = child_pid.expect("child pid written");
        assert!(p.kill());
        assert!(wait_all(std::slice::from_ref(&p), Duration::from_secs(5)).await);
        // The background child is gone too (it may linger as a zombie of init briefly).
        let mut gone = false;
        for _ in 0..250 {
            let stat = std::fs::read_to_string(format!("/proc/{child_pid}/stat"));
            if stat.map_or(true, |s| s.contains(") Z ")) {
                gone = true;
                break;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        assert!(gone, "child {child_pid} survived the group kill");
    }

    #[tokio::test]
    async fn spawn_errors_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = launch(dir.path(), "true");
        l.program = dir.path().join("missing");
        assert!(spawn(&l).is_err());
    }
}
