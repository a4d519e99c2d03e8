//! Runner faults read from the run's pods and Job: a pod that failed (killed, OOM-killed, a
//! crashed runner) ends the run at once; a pod stuck Pending (unschedulable, image not
//! pullable) ends it when the start deadline passes, with the stuck pod's reason. Pure.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;

/// The annotation (and label) Kubernetes puts the completion index of an Indexed Job's pod in.
pub const INDEX_ANNOTATION: &str = "batch.kubernetes.io/job-completion-index";

/// How bad a fault is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The runner is gone: the run cannot complete.
    Fatal,
    /// The runner cannot start yet; fatal once the start deadline passes.
    Stuck,
}

/// One runner's fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerFault {
    /// The runner index (None when the pod carries none).
    pub runner: Option<u64>,
    /// The pod's name.
    pub pod: String,
    /// Kubernetes' reason (`OOMKilled`, `Error`, `Unschedulable`, `ImagePullBackOff`, ...).
    pub reason: String,
    /// Fatal or stuck.
    pub severity: Severity,
    /// A sentence for the status message.
    pub message: String,
}

fn runner_index(pod: &Pod) -> Option<u64> {
    let from = |map: Option<&std::collections::BTreeMap<String, String>>| {
        map.and_then(|m| m.get(INDEX_ANNOTATION))
            .and_then(|v| v.parse().ok())
    };
    from(pod.metadata.annotations.as_ref()).or_else(|| from(pod.metadata.labels.as_ref()))
}

/// Image-pull states that may clear up by themselves (a registry blip) until the deadline.
const PULL_WAITING: [&str; 2] = ["ErrImagePull", "ImagePullBackOff"];
/// Waiting states that never clear up by themselves.
const FATAL_WAITING: [&str; 4] = [
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// The fault of one pod, if it has one.
pub fn pod_fault(pod: &Pod) -> Option<RunnerFault> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let runner = runner_index(pod);
    let who = match runner {
        Some(index) => format!("runner {index} (pod {name})"),
        None => format!("runner pod {name}"),
    };
    let status = pod.status.as_ref()?;
    let containers = status.container_statuses.as_deref().unwrap_or_default();
    let fault = |reason: &str, severity, detail: String| RunnerFault {
        runner,
        pod: name.clone(),
        reason: reason.to_string(),
        severity,
        message: format!("{who} {detail}"),
    };
    if status.phase.as_deref() == Some("Failed") {
        let terminated = containers
            .iter()
            .find_map(|c| c.state.as_ref().and_then(|s| s.terminated.as_ref()));
        return Some(match terminated {
            Some(t) => {
                let reason = t.reason.clone().unwrap_or_else(|| "Error".into());
                let mut detail = format!("failed: {reason} (exit code {})", t.exit_code);
                if let Some(message) = t.message.as_deref().filter(|m| !m.is_empty()) {
                    detail.push_str(&format!(": {}", message.trim()));
                }
                fault(&reason, Severity::Fatal, detail)
            }
            None => {
                let reason = status.reason.clone().unwrap_or_else(|| "Failed".into());
                let detail = match status.message.as_deref() {
                    Some(m) => format!("failed: {reason}: {m}"),
                    None => format!("failed: {reason}"),
                };
                fault(&reason, Severity::Fatal, detail)
            }
        });
    }
    for container in containers {
        if let Some(waiting) = container.state.as_ref().and_then(|s| s.waiting.as_ref()) {
            let reason = waiting.reason.clone().unwrap_or_default();
            let severity = if FATAL_WAITING.contains(&reason.as_str()) {
                Severity::Fatal
            } else if PULL_WAITING.contains(&reason.as_str()) {
                Severity::Stuck
            } else {
                continue;
            };
            let detail = match waiting.message.as_deref() {
                Some(m) if !m.is_empty() => format!("cannot start: {reason}: {m}"),
                _ => format!("cannot start: {reason}"),
            };
            return Some(fault(&reason, severity, detail));
        }
    }
    let unschedulable = status
        .conditions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        });
    unschedulable.map(|c| {
        let detail = match c.message.as_deref() {
            Some(m) if !m.is_empty() => format!("is unschedulable: {m}"),
            _ => "is unschedulable".to_string(),
        };
        fault("Unschedulable", Severity::Stuck, detail)
    })
}

/// Every fault of a run: its pods' faults, and the Job's own failure when no pod explains it
/// (pods already gone).
pub fn run_faults(job: Option<&Job>, pods: &[Pod]) -> Vec<RunnerFault> {
    let mut faults: Vec<RunnerFault> = pods.iter().filter_map(pod_fault).collect();
    faults.sort_by_key(|f| (f.severity != Severity::Fatal, f.runner));
    if faults.iter().all(|f| f.severity != Severity::Fatal)
        && let Some(job) = job
        && let Some(failed) = job
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Failed" && c.status == "True"))
    {
        let reason = failed.reason.clone().unwrap_or_else(|| "Failed".into());
        faults.insert(
            0,
            RunnerFault {
                runner: None,
                pod: String::new(),
                reason: reason.clone(),
                severity: Severity::Fatal,
                message: format!(
                    "runner Job {} failed: {reason}{}",
                    job.metadata.name.as_deref().unwrap_or_default(),
                    failed
                        .message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
            },
        );
    }
    faults
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "t-run1-1-abcde", "annotations": {INDEX_ANNOTATION: "1"}},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn a_failed_pod_is_fatal_with_its_termination_reason() {
        let fault = pod_fault(&pod(json!({
            "phase": "Failed",
            "containerStatuses": [{"name": "runner", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}],
        })))
        .unwrap();
        assert_eq!(fault.severity, Severity::Fatal);
        assert_eq!(fault.runner, Some(1));
        assert_eq!(fault.reason, "OOMKilled");
        assert_eq!(
            fault.message,
            "runner 1 (pod t-run1-1-abcde) failed: OOMKilled (exit code 137)"
        );
    }

    #[test]
    fn pull_errors_and_unschedulable_pods_are_stuck_not_fatal() {
        let pulling = pod_fault(&pod(json!({
            "phase": "Pending",
            "containerStatuses": [{"name": "runner", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"x\""}}}],
        })))
        .unwrap();
        assert_eq!(pulling.severity, Severity::Stuck);
        assert!(pulling.message.contains("cannot start: ImagePullBackOff"));
        let unschedulable = pod_fault(&pod(json!({
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/3 nodes are available"}],
        })))
        .unwrap();
        assert_eq!(unschedulable.severity, Severity::Stuck);
        assert_eq!(unschedulable.reason, "Unschedulable");
        assert!(
            unschedulable
                .message
                .ends_with("is unschedulable: 0/3 nodes are available")
        );
    }

    #[test]
    fn healthy_pods_have_no_fault() {
        assert_eq!(pod_fault(&pod(json!({"phase": "Running"}))), None);
        assert_eq!(pod_fault(&pod(json!({"phase": "Succeeded"}))), None);
        assert_eq!(
            pod_fault(&pod(
                json!({"phase": "Pending", "containerStatuses": [{"name": "runner",
                "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}}}]})
            )),
            None
        );
    }

    #[test]
    fn a_failed_job_without_pods_is_fatal() {
        let job: Job = serde_json::from_value(json!({
            "metadata": {"name": "t-run1"},
            "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit"}]},
        }))
        .unwrap();
        let faults = run_faults(Some(&job), &[]);
        assert_eq!(faults.len(), 1);
        assert_eq!(faults[0].severity, Severity::Fatal);
        assert!(
            faults[0]
                .message
                .starts_with("runner Job t-run1 failed: BackoffLimitExceeded")
        );
        assert!(run_faults(None, &[]).is_empty());
    }
}
