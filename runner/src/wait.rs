//! `stampede wait NAME`: follows a LoadTest in the cluster, prints its progress and the final
//! verdict, and exits with a code a pipeline can gate on. The verdict logic is pure; the watch
//! is the I/O edge.

use std::io::Write;
use std::time::Duration;

use futures::TryStreamExt;
use kube::api::Api;
use kube::runtime::watcher;
use stampede_crds::LoadTest;
use stampede_crds::status::{LoadTestStatus, Phase};

use crate::exit;

/// What a finished run means for a waiting pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
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
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Passed => exit::OK,
            Verdict::ThresholdsFailed => exit::THRESHOLDS_FAILED,
            Verdict::Errored => exit::ERRORED,
            Verdict::Aborted => exit::ABORTED,
            Verdict::Invalid => exit::INVALID_CONFIG,
        }
    }
}

/// The verdict of `status` for the spec at `generation`, or None while that spec's run is not
/// over. A status that describes an older generation does not count: after `kubectl apply` of
/// a changed spec, `stampede wait` waits for the new run instead of returning the old verdict.
pub fn verdict(generation: Option<i64>, status: Option<&LoadTestStatus>) -> Option<Verdict> {
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
pub fn progress_line(status: &LoadTestStatus) -> String {
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
pub fn final_report(name: &str, status: &LoadTestStatus, verdict: Verdict) -> String {
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

/// Follows LoadTest `name` until its current spec's run is over; prints to `out`; returns the
/// exit code.
pub async fn follow(
    client: kube::Client,
    namespace: &str,
    name: &str,
    timeout: Option<Duration>,
    out: &mut impl Write,
) -> u8 {
    let api: Api<LoadTest> = Api::namespaced(client, namespace);
    match api.get_opt(name).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            let _ = writeln!(
                out,
                "loadtest \"{name}\" not found in namespace \"{namespace}\""
            );
            return exit::FAILURE;
        }
        Err(error) => {
            let _ = writeln!(
                out,
                "cannot read loadtest \"{name}\" in namespace \"{namespace}\": {error}"
            );
            return exit::FAILURE;
        }
    }
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = std::pin::pin!(watcher(api, config));
    let mut last_line = String::new();
    let follow = async {
        loop {
            let event = match events.try_next().await {
                Ok(Some(event)) => event,
                Ok(None) => return exit::FAILURE,
                // Missing rights never come back by retrying: fail fast, naming them.
                Err(
                    watcher::Error::InitialListFailed(kube::Error::Api(status))
                    | watcher::Error::WatchStartFailed(kube::Error::Api(status)),
                ) if status.code == 401 || status.code == 403 => {
                    let _ = writeln!(
                        out,
                        "cannot watch loadtest \"{name}\": {} — `stampede wait` needs get, list and watch on loadtests.stampede.dev",
                        status.message
                    );
                    return exit::FAILURE;
                }
                // The watcher retries on its own after other errors; report and go on.
                Err(error) => {
                    let _ = writeln!(out, "watch error (retrying): {error}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let test = match event {
                watcher::Event::Apply(test) | watcher::Event::InitApply(test) => test,
                watcher::Event::Delete(_) => {
                    let _ = writeln!(out, "loadtest/{name} was deleted before it finished");
                    return exit::FAILURE;
                }
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
                return verdict.exit_code();
            }
        }
    };
    match timeout {
        None => follow.await,
        Some(limit) => match tokio::time::timeout(limit, follow).await {
            Ok(code) => code,
            Err(_) => {
                let _ = writeln!(
                    out,
                    "loadtest/{name}: timed out after {limit:?} before the run finished"
                );
                exit::TIMEOUT
            }
        },
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
            (Phase::Succeeded, Some(exit::OK)),
            (Phase::Failed, Some(exit::THRESHOLDS_FAILED)),
            (Phase::Errored, Some(exit::ERRORED)),
            (Phase::Invalid, Some(exit::INVALID_CONFIG)),
            (Phase::Aborted, Some(exit::ABORTED)),
            (Phase::Running, None),
            (Phase::Aborting, None),
            (Phase::Pending, None),
        ];
        for (phase, code) in cases {
            assert_eq!(
                verdict(Some(1), Some(&status(phase, 1))).map(Verdict::exit_code),
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
