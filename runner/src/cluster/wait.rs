//! `stampede wait NAME`: follows a LoadTest in the cluster, prints its progress and the final
//! verdict, and gives the exit code a pipeline gates on. The verdict logic is pure; the watch
//! is the I/O edge.

use std::io::Write;
use std::time::Duration;

use futures::TryStreamExt;
use kube::api::Api;
use kube::runtime::watcher;
use stampede_crds::LoadTest;
use stampede_crds::status::{LoadTestStatus, Phase};

use crate::exit::Exit;

/// What a finished run means for a waiting pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Succeeded: every threshold held.
    Passed,
    /// Failed, or aborted by an `abortOnFail` threshold.
    ThresholdsFailed,
    /// Errored: the run could not complete.
    Errored,
    /// Aborted for another reason (a spec change superseded it).
    Aborted,
    /// The spec is invalid; nothing ran.
    Invalid,
}

impl Verdict {
    /// The process exit code.
    fn exit(self) -> Exit {
        match self {
            Verdict::Passed => Exit::Ok,
            Verdict::ThresholdsFailed => Exit::ThresholdsFailed,
            Verdict::Errored => Exit::Errored,
            Verdict::Aborted => Exit::Aborted,
            Verdict::Invalid => Exit::InvalidConfig,
        }
    }
}

/// The verdict of `status` for the spec at `generation`, or None while that spec's run is not
/// over. A status that describes an older generation does not count: after `kubectl apply` of
/// a changed spec, `stampede wait` waits for the new run instead of returning the old verdict.
fn verdict(generation: Option<i64>, status: Option<&LoadTestStatus>) -> Option<Verdict> {
    let status = status?;
    if let (Some(generation), Some(observed)) = (generation, status.observed_generation)
        && observed < generation
    {
        return None;
    }
    if generation.is_some() && status.observed_generation.is_none() {
        return None;
    }
    match status.phase? {
        Phase::Succeeded => Some(Verdict::Passed),
        Phase::Failed => Some(Verdict::ThresholdsFailed),
        Phase::Errored => Some(Verdict::Errored),
        Phase::Invalid => Some(Verdict::Invalid),
        Phase::Aborted if status.thresholds.iter().any(|t| !t.ok) => {
            Some(Verdict::ThresholdsFailed)
        }
        Phase::Aborted => Some(Verdict::Aborted),
        Phase::Pending | Phase::Provisioning | Phase::Running | Phase::Aborting => None,
    }
}

/// One progress line for a status, like `stampede run` prints.
fn progress_line(status: &LoadTestStatus) -> String {
    let phase = status.phase.unwrap_or_default();
    let mut line = format!("{phase:?}");
    if let Some(runners) = &status.runners {
        line.push_str(&format!(
            ", runners {}/{} ready",
            runners.ready, runners.desired
        ));
    }
    if let Some(progress) = &status.progress {
        line.push_str(&format!(
            ", {:.0}s/{:.0}s, {} VUs, {} reqs, {:.1} req/s",
            progress.elapsed_seconds,
            progress.total_seconds,
            progress.vus,
            progress.http_reqs,
            progress.rps
        ));
        if !progress.p95.is_empty() {
            line.push_str(&format!(", p95={}", progress.p95));
        }
        if !progress.failed.is_empty() {
            line.push_str(&format!(", failed={}", progress.failed));
        }
    }
    line
}

/// The end of the wait: thresholds with observed values, per-step figures, the message and
/// the verdict.
fn final_report(name: &str, status: &LoadTestStatus, verdict: Verdict) -> String {
    let mut text = String::new();
    if !status.thresholds.is_empty() {
        text.push_str("  THRESHOLDS\n");
        for threshold in &status.thresholds {
            let mark = if threshold.ok { '✓' } else { '✗' };
            let observed = threshold
                .value
                .map_or_else(|| "no samples".to_string(), |v| format!("{v}"));
            text.push_str(&format!(
                "    {mark} {} {} (observed {observed})\n",
                threshold.metric, threshold.threshold
            ));
        }
    }
    if !status.steps.is_empty() {
        text.push_str("  STEPS\n");
        for step in &status.steps {
            text.push_str(&format!(
                "    {:<24} {:>8} reqs  {:>6.2}% failed\n",
                step.name,
                step.reqs,
                step.failed_rate * 100.0
            ));
        }
    }
    if let Some(message) = &status.message {
        text.push_str(&format!("  {message}\n"));
    }
    let outcome = match verdict {
        Verdict::Passed => "PASSED: every threshold held",
        Verdict::ThresholdsFailed => "FAILED: thresholds failed",
        Verdict::Errored => "ERRORED: the run could not complete",
        Verdict::Aborted => "ABORTED",
        Verdict::Invalid => "INVALID: nothing ran",
    };
    text.push_str(&format!("loadtest/{name}: {outcome}\n"));
    text
}

/// Why `stampede wait` could not tell a verdict.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The LoadTest does not exist.
    #[error("loadtest \"{name}\" not found in namespace \"{namespace}\"")]
    NotFound {
        /// Its name.
        name: String,
        /// Its namespace.
        namespace: String,
    },
    /// The LoadTest could not be read.
    #[error("cannot read loadtest \"{name}\" in namespace \"{namespace}\": {source}")]
    Read {
        /// Its name.
        name: String,
        /// Its namespace.
        namespace: String,
        /// The API's error.
        source: kube::Error,
    },
    /// The watch is not allowed; retrying would not help.
    #[error(
        "cannot watch loadtest \"{name}\": {message} — `stampede wait` needs get, list and watch on loadtests.stampede.dev"
    )]
    Forbidden {
        /// Its name.
        name: String,
        /// The API's message.
        message: String,
    },
    /// The LoadTest was deleted while it ran.
    #[error("loadtest/{0} was deleted before it finished")]
    Deleted(String),
    /// The watch stream ended (it retries on errors, so this is unexpected).
    #[error("loadtest/{0}: the watch ended before the run finished")]
    WatchEnded(String),
    /// `--timeout` passed first.
    #[error("loadtest/{name}: timed out after {limit:?} before the run finished")]
    TimedOut {
        /// Its name.
        name: String,
        /// The `--timeout`.
        limit: Duration,
    },
}

impl WaitError {
    /// The process exit code: [`Exit::Timeout`] for a timeout, [`Exit::Failure`] otherwise.
    pub fn exit(&self) -> Exit {
        match self {
            WaitError::TimedOut { .. } => Exit::Timeout,
            WaitError::NotFound { .. }
            | WaitError::Read { .. }
            | WaitError::Forbidden { .. }
            | WaitError::Deleted(_)
            | WaitError::WatchEnded(_) => Exit::Failure,
        }
    }
}

/// Follows LoadTest `name` until its current spec's run is over, printing its progress and the
/// final report to `out` (watch errors it retries after go to stderr); returns the verdict's
/// exit code.
pub async fn wait(
    client: kube::Client,
    namespace: &str,
    name: &str,
    timeout: Option<Duration>,
    out: &mut impl Write,
) -> Result<Exit, WaitError> {
    let api: Api<LoadTest> = Api::namespaced(client, namespace);
    match api.get_opt(name).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Err(WaitError::NotFound {
                name: name.to_string(),
                namespace: namespace.to_string(),
            });
        }
        Err(source) => {
            return Err(WaitError::Read {
                name: name.to_string(),
                namespace: namespace.to_string(),
                source,
            });
        }
    }
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = std::pin::pin!(watcher(api, config));
    let mut last_line = String::new();
    let follow = async {
        loop {
            let event = match events.try_next().await {
                Ok(Some(event)) => event,
                Ok(None) => return Err(WaitError::WatchEnded(name.to_string())),
                // Missing rights never come back by retrying: fail fast, naming them.
                Err(
                    watcher::Error::InitialListFailed(kube::Error::Api(status))
                    | watcher::Error::WatchStartFailed(kube::Error::Api(status)),
                ) if status.code == 401 || status.code == 403 => {
                    return Err(WaitError::Forbidden {
                        name: name.to_string(),
                        message: status.message,
                    });
                }
                // The watcher retries on its own after other errors; report and go on.
                Err(error) => {
                    eprintln!("watch error (retrying): {error}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let test = match event {
                watcher::Event::Apply(test) | watcher::Event::InitApply(test) => test,
                watcher::Event::Delete(_) => return Err(WaitError::Deleted(name.to_string())),
                watcher::Event::Init | watcher::Event::InitDone => continue,
            };
            if let Some(status) = &test.status {
                let line = progress_line(status);
                if line != last_line {
                    // Flushed at once: CI logs show progress while the test runs.
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                    last_line = line;
                }
            }
            if let Some(verdict) = verdict(test.metadata.generation, test.status.as_ref()) {
                let status = test.status.unwrap_or_default();
                let _ = write!(out, "{}", final_report(name, &status, verdict));
                return Ok(verdict.exit());
            }
        }
    };
    match timeout {
        None => follow.await,
        Some(limit) => tokio::time::timeout(limit, follow)
            .await
            .unwrap_or_else(|_| {
                Err(WaitError::TimedOut {
                    name: name.to_string(),
                    limit,
                })
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stampede_crds::status::ThresholdStatus;

    fn status(phase: Phase, observed: i64) -> LoadTestStatus {
        LoadTestStatus {
            phase: Some(phase),
            observed_generation: Some(observed),
            ..LoadTestStatus::default()
        }
    }

    #[test]
    fn finished_phases_map_to_exit_codes() {
        let cases = [
            (Phase::Succeeded, Some(Exit::Ok)),
            (Phase::Failed, Some(Exit::ThresholdsFailed)),
            (Phase::Errored, Some(Exit::Errored)),
            (Phase::Invalid, Some(Exit::InvalidConfig)),
            (Phase::Aborted, Some(Exit::Aborted)),
            (Phase::Running, None),
            (Phase::Aborting, None),
            (Phase::Pending, None),
        ];
        for (phase, code) in cases {
            assert_eq!(
                verdict(Some(1), Some(&status(phase, 1))).map(Verdict::exit),
                code,
                "{phase:?}"
            );
        }
    }

    #[test]
    fn an_abort_by_a_failed_threshold_is_a_threshold_failure() {
        let mut aborted = status(Phase::Aborted, 1);
        aborted.thresholds.push(ThresholdStatus {
            metric: "http_req_duration".into(),
            threshold: "p(95)<500".into(),
            value: Some(812.0),
            ok: false,
        });
        assert_eq!(
            verdict(Some(1), Some(&aborted)),
            Some(Verdict::ThresholdsFailed)
        );
        let report = final_report("t", &aborted, Verdict::ThresholdsFailed);
        assert!(
            report.contains("✗ http_req_duration p(95)<500 (observed 812)"),
            "{report}"
        );
    }

    #[test]
    fn wait_errors_name_the_loadtest_and_give_their_exit_code() {
        let cases = [
            (
                WaitError::NotFound {
                    name: "gate".into(),
                    namespace: "ci".into(),
                },
                "loadtest \"gate\" not found in namespace \"ci\"",
                Exit::Failure,
            ),
            (
                WaitError::Forbidden {
                    name: "gate".into(),
                    message: "forbidden".into(),
                },
                "cannot watch loadtest \"gate\": forbidden — `stampede wait` needs get, list and watch on loadtests.stampede.dev",
                Exit::Failure,
            ),
            (
                WaitError::Deleted("gate".into()),
                "loadtest/gate was deleted before it finished",
                Exit::Failure,
            ),
            (
                WaitError::WatchEnded("gate".into()),
                "loadtest/gate: the watch ended before the run finished",
                Exit::Failure,
            ),
            (
                WaitError::TimedOut {
                    name: "gate".into(),
                    limit: Duration::from_secs(90),
                },
                "loadtest/gate: timed out after 90s before the run finished",
                Exit::Timeout,
            ),
        ];
        for (error, message, exit) in cases {
            assert_eq!(error.to_string(), message);
            assert_eq!(error.exit(), exit, "{message}");
        }
    }

    #[test]
    fn a_status_of_an_older_spec_does_not_count() {
        assert_eq!(verdict(Some(2), Some(&status(Phase::Succeeded, 1))), None);
        assert_eq!(
            verdict(Some(2), Some(&status(Phase::Succeeded, 2))),
            Some(Verdict::Passed)
        );
        let unobserved = LoadTestStatus {
            phase: Some(Phase::Succeeded),
            ..LoadTestStatus::default()
        };
        assert_eq!(verdict(Some(1), Some(&unobserved)), None);
        assert_eq!(verdict(Some(1), None), None);
    }
}
