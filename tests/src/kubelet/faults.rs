//! Fault hooks for tests: killing (or OOM-killing) a pod's processes now, and making later pods
//! unschedulable or their images unpullable.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::pod::LEGACY_JOB_NAME_LABEL;
use super::process::ProcessTable;

#[derive(Debug, Default)]
struct FaultSets {
    unschedulable_jobs: BTreeSet<String>,
    failing_images: BTreeSet<String>,
}

/// Faults a test can inject into the kubelet.
#[derive(Debug)]
pub struct Faults {
    sets: Mutex<FaultSets>,
    processes: Arc<ProcessTable>,
}

impl Faults {
    pub(crate) fn new(processes: Arc<ProcessTable>) -> Faults {
        Faults {
            sets: Mutex::new(FaultSets::default()),
            processes,
        }
    }

    fn sets(&self) -> MutexGuard<'_, FaultSets> {
        self.sets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn kill(&self, namespace: &str, pod: &str, oom: bool) -> bool {
        let mut found = false;
        for process in self.processes.of_pod(namespace, pod) {
            found |= process.fault_kill(oom);
        }
        found
    }

    /// SIGKILLs the pod's running container process(es) now: each container ends terminated
    /// with exitCode 137 and reason `Error`, and the pod Failed. Returns whether a running
    /// process was found.
    pub fn kill_pod(&self, namespace: &str, pod: &str) -> bool {
        self.kill(namespace, pod, false)
    }

    /// Like [`Faults::kill_pod`], reported as reason `OOMKilled` (exitCode 137).
    pub fn oom_kill_pod(&self, namespace: &str, pod: &str) -> bool {
        self.kill(namespace, pod, true)
    }

    /// Pods scheduled from now on whose labels contain `job-name=<job>` (any namespace) stay
    /// Pending with condition `PodScheduled=False`, reason `Unschedulable`.
    pub fn unschedulable_job(&self, job: &str) {
        self.sets().unschedulable_jobs.insert(job.to_string());
    }

    /// Containers with exactly this image fail to pull from now on: `ErrImagePull`, then
    /// `ImagePullBackOff`, and their pod stays Pending.
    pub fn fail_image_pull(&self, image: &str) {
        self.sets().failing_images.insert(image.to_string());
    }

    /// Whether a pod with these labels must stay unscheduled.
    pub(crate) fn is_unschedulable(
        &self,
        labels: Option<&std::collections::BTreeMap<String, String>>,
    ) -> bool {
        let Some(job) = labels.and_then(|l| l.get(LEGACY_JOB_NAME_LABEL)) else {
            return false;
        };
        self.sets().unschedulable_jobs.contains(job)
    }

    /// Whether pulling `image` must fail.
    pub(crate) fn image_pull_fails(&self, image: &str) -> bool {
        self.sets().failing_images.contains(image)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn fault_sets_match_labels_and_images() {
        let faults = Faults::new(Arc::new(ProcessTable::default()));
        let labels = BTreeMap::from([("job-name".to_string(), "load".to_string())]);
        assert!(!faults.is_unschedulable(Some(&labels)));
        faults.unschedulable_job("load");
        assert!(faults.is_unschedulable(Some(&labels)));
        assert!(!faults.is_unschedulable(None));
        let other = BTreeMap::from([("job-name".to_string(), "other".to_string())]);
        assert!(!faults.is_unschedulable(Some(&other)));

        faults.fail_image_pull("ghcr.io/acme/stampede:0.1.0");
        assert!(faults.image_pull_fails("ghcr.io/acme/stampede:0.1.0"));
        assert!(!faults.image_pull_fails("ghcr.io/acme/stampede:0.2.0"));
        assert!(!faults.kill_pod("ns", "nothing"));
        assert!(!faults.oom_kill_pod("ns", "nothing"));
    }
}
