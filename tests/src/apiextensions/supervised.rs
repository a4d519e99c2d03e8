//! A child process that cannot outlive the test that started it: it runs under a small `sh`
//! supervisor that holds the read end of a pipe whose write end only the test process has, and
//! kills the child when that pipe closes, which happens however the test process ends (a
//! panic, nextest's timeout kill, Ctrl-C). Dropping a [`Supervised`] closes the pipe too.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

/// The supervisor: a reader of stdin (the pipe) kills the command at EOF; the supervisor itself
/// waits for the command, so it exits when the command does. The command's stdin is /dev/null
/// and it does not hold the pipe.
const SUPERVISOR: &str = r#"exec 3<&0
"$@" </dev/null 3<&- & child=$!
( while read -r _; do :; done; kill -9 "$child" 2>/dev/null ) <&3 &
exec 3<&-
wait "$child""#;

/// A supervised child process with its output in a log file.
#[derive(Debug)]
pub struct Supervised {
    name: &'static str,
    supervisor: Child,
    // Holding it keeps the child alive; dropping it ends the child.
    lifeline: Option<ChildStdin>,
    log: PathBuf,
}

impl Supervised {
    /// Starts `program ARGS...` with stdout and stderr appended to `log`.
    pub fn spawn(
        name: &'static str,
        program: &Path,
        args: &[String],
        log: &Path,
    ) -> std::io::Result<Supervised> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let mut supervisor = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("supervisor")
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        let lifeline = supervisor.stdin.take();
        Ok(Supervised {
            name,
            supervisor,
            lifeline,
            log: log.to_path_buf(),
        })
    }

    /// Whether the child still runs (its supervisor exits when it does).
    pub fn is_running(&mut self) -> bool {
        matches!(self.supervisor.try_wait(), Ok(None))
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let Ok(mut file) = File::open(&self.log) else {
            return format!("({}: no log at {})", self.name, self.log.display());
        };
        // The end of a long log is what explains a failure.
        let length = file.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(length.saturating_sub(64 * 1024)));
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Stops the child and waits until it and its supervisor are gone.
    pub fn stop(&mut self) {
        drop(self.lifeline.take());
        let _ = self.supervisor.wait();
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop();
    }
}
