//! Pure pod status building as the kubelet reports it: container states, the pod phase and the
//! pod conditions (`PodReadyToStartContainers`, `Initialized`, `Ready`, `ContainersReady`,
//! `PodScheduled`).
//!
//! Every container is treated as `restartPolicy: Never`: a container that exits stays
//! terminated (restarts under `OnFailure` / `Always` are not modelled).

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::env::LOOPBACK_IP;

/// The message of the `PodScheduled=False` condition of an unschedulable pod.
pub const UNSCHEDULABLE_MESSAGE: &str = "0/1 nodes are available: 1 Insufficient cpu.";

/// Where one container is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerRun {
    /// Not started (yet): `ContainerCreating`, `ErrImagePull`, `CreateContainerConfigError`...
    Waiting {
        /// The waiting reason.
        reason: String,
        /// Its message.
        message: Option<String>,
    },
    /// The process runs.
    Running {
        /// When it started.
        started_at: Time,
    },
    /// The process exited (or never could start).
    Terminated {
        /// Exit code, `128 + signal` for a process killed by a signal.
        exit_code: i32,
        /// `Completed`, `Error`, `OOMKilled`, `StartError`, `ContainerStatusUnknown`.
        reason: String,
        /// Its message.
        message: Option<String>,
        /// When it started (if it did).
        started_at: Option<Time>,
        /// When it ended.
        finished_at: Time,
    },
}

impl ContainerRun {
    /// `Waiting` with a reason and message.
    pub fn waiting(reason: &str, message: Option<String>) -> ContainerRun {
        ContainerRun::Waiting {
            reason: reason.to_string(),
            message,
        }
    }

    /// Whether the container exited.
    pub fn is_terminated(&self) -> bool {
        matches!(self, ContainerRun::Terminated { .. })
    }

    /// Whether the container exited with code 0.
    pub fn succeeded(&self) -> bool {
        matches!(self, ContainerRun::Terminated { exit_code: 0, .. })
    }

    /// Whether the container exited with a non-zero code.
    pub fn failed(&self) -> bool {
        matches!(self, ContainerRun::Terminated { exit_code, .. } if *exit_code != 0)
    }
}

/// The `reason` of a terminated container.
pub fn terminated_reason(exit_code: i32, oom_killed: bool) -> &'static str {
    if oom_killed {
        "OOMKilled"
    } else if exit_code == 0 {
        "Completed"
    } else {
        "Error"
    }
}

/// One container as reported in the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerReport {
    /// The container's name.
    pub name: String,
    /// Its image.
    pub image: String,
    /// `process://<pid>` once it started.
    pub container_id: Option<String>,
    /// Its state.
    pub run: ContainerRun,
}

/// The `containerStatuses` entry of a container.
pub fn container_status(report: &ContainerReport) -> ContainerStatus {
    let state = match &report.run {
        ContainerRun::Waiting { reason, message } => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: message.clone(),
            }),
            ..ContainerState::default()
        },
        ContainerRun::Running { started_at } => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(started_at.clone()),
            }),
            ..ContainerState::default()
        },
        ContainerRun::Terminated {
            exit_code,
            reason,
            message,
            started_at,
            finished_at,
        } => ContainerState {
            terminated: Some(ContainerStateTerminated {
                container_id: report.container_id.clone(),
                exit_code: *exit_code,
                reason: Some(reason.clone()),
                message: message.clone(),
                started_at: started_at.clone(),
                finished_at: Some(finished_at.clone()),
                signal: None,
            }),
            ..ContainerState::default()
        },
    };
    let running = matches!(report.run, ContainerRun::Running { .. });
    ContainerStatus {
        name: report.name.clone(),
        image: report.image.clone(),
        image_id: if report.container_id.is_some() {
            report.image.clone()
        } else {
            String::new()
        },
        container_id: report.container_id.clone(),
        ready: running,
        started: Some(running),
        restart_count: 0,
        state: Some(state),
        ..ContainerStatus::default()
    }
}

/// The pod phase (kubelet rules, restart policy Never): a failed init container fails the
/// pod; unfinished init containers or a waiting container keep it Pending; a running one
/// makes it Running; all exited: Succeeded if all exited 0, else Failed.
pub fn phase(init: &[ContainerRun], main: &[ContainerRun]) -> &'static str {
    if init.iter().any(ContainerRun::failed) {
        return "Failed";
    }
    if !init.iter().all(ContainerRun::succeeded) {
        return "Pending";
    }
    if main.is_empty()
        || main
            .iter()
            .any(|c| matches!(c, ContainerRun::Waiting { .. }))
    {
        return "Pending";
    }
    if main
        .iter()
        .any(|c| matches!(c, ContainerRun::Running { .. }))
    {
        return "Running";
    }
    if main.iter().all(ContainerRun::succeeded) {
        "Succeeded"
    } else {
        "Failed"
    }
}

/// Whether a phase is terminal.
pub fn is_terminal(phase: &str) -> bool {
    phase == "Succeeded" || phase == "Failed"
}

fn condition(type_: &str, ok: bool, reason: Option<&str>, message: Option<String>) -> PodCondition {
    PodCondition {
        type_: type_.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: reason.map(str::to_string),
        message,
        ..PodCondition::default()
    }
}

/// Sets each condition's `lastTransitionTime`: kept from `previous` when the status did not
/// change, else `now`.
pub fn stamp_conditions(
    conditions: Vec<PodCondition>,
    previous: &[PodCondition],
    now: &Time,
) -> Vec<PodCondition> {
    conditions
        .into_iter()
        .map(|mut c| {
            let before = previous
                .iter()
                .find(|p| p.type_ == c.type_ && p.status == c.status);
            c.last_transition_time = before
                .and_then(|p| p.last_transition_time.clone())
                .or_else(|| Some(now.clone()));
            c
        })
        .collect()
}

fn names_where(reports: &[ContainerReport], pick: impl Fn(&ContainerRun) -> bool) -> String {
    let names: Vec<&str> = reports
        .iter()
        .filter(|r| pick(&r.run))
        .map(|r| r.name.as_str())
        .collect();
    names.join(" ")
}

/// The whole status of a scheduled pod.
pub fn pod_status(
    init: &[ContainerReport],
    main: &[ContainerReport],
    start_time: &Time,
    previous_conditions: &[PodCondition],
    now: &Time,
) -> PodStatus {
    let init_runs: Vec<ContainerRun> = init.iter().map(|r| r.run.clone()).collect();
    let main_runs: Vec<ContainerRun> = main.iter().map(|r| r.run.clone()).collect();
    let phase = phase(&init_runs, &main_runs);
    let terminal = is_terminal(phase);

    let initialized = init_runs.iter().all(ContainerRun::succeeded);
    let initialized_condition = if initialized {
        condition("Initialized", true, None, None)
    } else {
        let pending = names_where(init, |r| !r.succeeded());
        condition(
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(format!("containers with incomplete status: [{pending}]")),
        )
    };
    let all_running = !main.is_empty()
        && main_runs
            .iter()
            .all(|r| matches!(r, ContainerRun::Running { .. }));
    let (ready, ready_reason, ready_message) = if terminal {
        (false, Some("PodCompleted"), None)
    } else if all_running {
        (true, None, None)
    } else {
        let unready = names_where(main, |r| !matches!(r, ContainerRun::Running { .. }));
        (
            false,
            Some("ContainersNotReady"),
            Some(format!("containers with unready status: [{unready}]")),
        )
    };
    let conditions = vec![
        condition("PodReadyToStartContainers", !terminal, None, None),
        initialized_condition,
        condition("Ready", ready, ready_reason, ready_message.clone()),
        condition("ContainersReady", ready, ready_reason, ready_message),
        condition("PodScheduled", true, None, None),
    ];

    PodStatus {
        phase: Some(phase.to_string()),
        conditions: Some(stamp_conditions(conditions, previous_conditions, now)),
        host_ip: Some(LOOPBACK_IP.to_string()),
        host_ips: Some(vec![HostIP {
            ip: LOOPBACK_IP.to_string(),
        }]),
        pod_ip: Some(LOOPBACK_IP.to_string()),
        pod_ips: Some(vec![PodIP {
            ip: LOOPBACK_IP.to_string(),
        }]),
        start_time: Some(start_time.clone()),
        init_container_statuses: (!init.is_empty())
            .then(|| init.iter().map(container_status).collect()),
        container_statuses: Some(main.iter().map(container_status).collect()),
        ..PodStatus::default()
    }
}

/// The status of a pod the scheduler cannot place.
pub fn unschedulable_status(now: &Time) -> PodStatus {
    let mut scheduled = condition(
        "PodScheduled",
        false,
        Some("Unschedulable"),
        Some(UNSCHEDULABLE_MESSAGE.to_string()),
    );
    scheduled.last_probe_time = None;
    scheduled.last_transition_time = Some(now.clone());
    PodStatus {
        phase: Some("Pending".to_string()),
        conditions: Some(vec![scheduled]),
        ..PodStatus::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn t(s: i64) -> Time {
        Time(Timestamp::from_second(1_700_000_000 + s).unwrap())
    }

    fn waiting(reason: &str) -> ContainerRun {
        ContainerRun::waiting(reason, None)
    }

    fn running() -> ContainerRun {
        ContainerRun::Running { started_at: t(1) }
    }

    fn exited(code: i32) -> ContainerRun {
        ContainerRun::Terminated {
            exit_code: code,
            reason: terminated_reason(code, false).into(),
            message: None,
            started_at: Some(t(1)),
            finished_at: t(2),
        }
    }

    fn report(name: &str, run: ContainerRun) -> ContainerReport {
        ContainerReport {
            name: name.into(),
            image: "ghcr.io/acme/stampede:0.1.0".into(),
            container_id: (!matches!(run, ContainerRun::Waiting { .. }))
                .then(|| "process://42".to_string()),
            run,
        }
    }

    fn cond<'a>(status: &'a PodStatus, type_: &str) -> &'a PodCondition {
        status
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == type_)
            .unwrap()
    }

    #[test]
    fn phases_follow_the_kubelet() {
        assert_eq!(phase(&[], &[waiting("ContainerCreating")]), "Pending");
        assert_eq!(phase(&[], &[running(), waiting("ErrImagePull")]), "Pending");
        assert_eq!(phase(&[], &[running(), exited(0)]), "Running");
        assert_eq!(phase(&[], &[exited(0), exited(0)]), "Succeeded");
        assert_eq!(phase(&[], &[exited(0), exited(137)]), "Failed");
        assert_eq!(
            phase(&[running()], &[waiting("PodInitializing")]),
            "Pending"
        );
        assert_eq!(phase(&[exited(1)], &[waiting("PodInitializing")]), "Failed");
        assert_eq!(phase(&[exited(0)], &[running()]), "Running");
        assert_eq!(phase(&[], &[]), "Pending");
        assert_eq!(terminated_reason(0, false), "Completed");
        assert_eq!(terminated_reason(1, false), "Error");
        assert_eq!(terminated_reason(137, true), "OOMKilled");
    }

    #[test]
    fn running_pod_is_ready_with_loopback_ips() {
        let status = pod_status(&[], &[report("runner", running())], &t(0), &[], &t(1));
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(status.pod_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(status.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(status.start_time, Some(t(0)));
        let types: Vec<&str> = status
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(
            types,
            [
                "PodReadyToStartContainers",
                "Initialized",
                "Ready",
                "ContainersReady",
                "PodScheduled"
            ]
        );
        assert!(
            status
                .conditions
                .as_ref()
                .unwrap()
                .iter()
                .all(|c| c.status == "True")
        );
        let cs = &status.container_statuses.as_ref().unwrap()[0];
        assert!(cs.ready);
        assert_eq!(cs.started, Some(true));
        assert_eq!(cs.container_id.as_deref(), Some("process://42"));
        assert_eq!(
            cs.state
                .as_ref()
                .unwrap()
                .running
                .as_ref()
                .unwrap()
                .started_at,
            Some(t(1))
        );
        assert!(status.init_container_statuses.is_none());
    }

    #[test]
    fn finished_pods_report_terminated_containers() {
        let status = pod_status(&[], &[report("runner", exited(137))], &t(0), &[], &t(3));
        assert_eq!(status.phase.as_deref(), Some("Failed"));
        let ready = cond(&status, "Ready");
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason.as_deref(), Some("PodCompleted"));
        let cs = &status.container_statuses.as_ref().unwrap()[0];
        let term = cs.state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!(term.exit_code, 137);
        assert_eq!(term.reason.as_deref(), Some("Error"));
        assert_eq!(term.started_at, Some(t(1)));
        assert_eq!(term.finished_at, Some(t(2)));
        assert!(!cs.ready);
        assert_eq!(cs.started, Some(false));
        let ok = pod_status(&[], &[report("runner", exited(0))], &t(0), &[], &t(3));
        assert_eq!(ok.phase.as_deref(), Some("Succeeded"));
    }

    #[test]
    fn waiting_containers_keep_the_pod_pending_with_their_reason() {
        let run = ContainerRun::waiting("ErrImagePull", Some("image \"x\"".into()));
        let status = pod_status(&[], &[report("runner", run)], &t(0), &[], &t(1));
        assert_eq!(status.phase.as_deref(), Some("Pending"));
        let ready = cond(&status, "Ready");
        assert_eq!(ready.reason.as_deref(), Some("ContainersNotReady"));
        assert_eq!(
            ready.message.as_deref(),
            Some("containers with unready status: [runner]")
        );
        let waiting = status.container_statuses.as_ref().unwrap()[0]
            .state
            .as_ref()
            .unwrap()
            .waiting
            .clone()
            .unwrap();
        assert_eq!(waiting.reason.as_deref(), Some("ErrImagePull"));
        assert_eq!(waiting.message.as_deref(), Some("image \"x\""));
    }

    #[test]
    fn init_containers_gate_initialized() {
        let status = pod_status(
            &[report("setup", running())],
            &[report("runner", waiting("PodInitializing"))],
            &t(0),
            &[],
            &t(1),
        );
        assert_eq!(status.phase.as_deref(), Some("Pending"));
        let init = cond(&status, "Initialized");
        assert_eq!(init.status, "False");
        assert_eq!(
            init.message.as_deref(),
            Some("containers with incomplete status: [setup]")
        );
        assert_eq!(status.init_container_statuses.as_ref().unwrap().len(), 1);
    }

    #[test]
    fn transition_times_are_kept_while_a_condition_holds() {
        let first = pod_status(&[], &[report("r", running())], &t(0), &[], &t(1));
        let previous = first.conditions.clone().unwrap();
        let second = pod_status(
            &[],
            &[report("r", running()), report("s", running())],
            &t(0),
            &previous,
            &t(5),
        );
        assert_eq!(cond(&second, "Ready").last_transition_time, Some(t(1)));
        let third = pod_status(&[], &[report("r", exited(0))], &t(0), &previous, &t(9));
        assert_eq!(cond(&third, "Ready").last_transition_time, Some(t(9)));
        assert_eq!(
            cond(&third, "PodScheduled").last_transition_time,
            Some(t(1))
        );
    }

    #[test]
    fn unschedulable_pods_say_why() {
        let status = unschedulable_status(&t(0));
        assert_eq!(status.phase.as_deref(), Some("Pending"));
        let c = cond(&status, "PodScheduled");
        assert_eq!(c.status, "False");
        assert_eq!(c.reason.as_deref(), Some("Unschedulable"));
        assert_eq!(
            c.message.as_deref(),
            Some("0/1 nodes are available: 1 Insufficient cpu.")
        );
    }
}
