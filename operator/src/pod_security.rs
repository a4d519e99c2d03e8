//! The runner pods' security settings: they meet the `restricted` Pod Security Standard, so
//! namespaces that enforce it run them, and they carry only the token the agent needs.
//!
//! The image runs as uid 65532 with a read-only root; the agent writes only `configMapRef`
//! data tables, to a private directory under `/tmp`, which is an `emptyDir`.

use k8s_openapi::api::core::v1::{
    Capabilities, EmptyDirVolumeSource, PodSecurityContext, SeccompProfile, SecurityContext,
    Volume, VolumeMount,
};

/// The image's non-root user and group (distroless `nonroot`).
pub const RUNNER_UID: i64 = 65532;

/// The scratch volume's name and where it is mounted.
pub const SCRATCH_VOLUME: &str = "tmp";
const SCRATCH_PATH: &str = "/tmp";

fn runtime_default_seccomp() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        localhost_profile: None,
    }
}

/// Pod level: non-root, the runtime's default seccomp profile.
pub fn runner_pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUNNER_UID),
        run_as_group: Some(RUNNER_UID),
        seccomp_profile: Some(runtime_default_seccomp()),
        ..PodSecurityContext::default()
    }
}

/// Container level: no privilege escalation, every capability dropped, read-only root.
pub fn runner_container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        seccomp_profile: Some(runtime_default_seccomp()),
        ..SecurityContext::default()
    }
}

/// The writable `/tmp` of a read-only container.
pub fn scratch_volume() -> Volume {
    Volume {
        name: SCRATCH_VOLUME.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

/// Its mount in the runner container.
pub fn scratch_mount() -> VolumeMount {
    VolumeMount {
        name: SCRATCH_VOLUME.into(),
        mount_path: SCRATCH_PATH.into(),
        ..VolumeMount::default()
    }
}
