//! The PodSecurity admission plugin for pods: a namespace labelled
//! `pod-security.kubernetes.io/enforce: baseline | restricted` refuses pods that break that
//! Pod Security Standard, with kube-apiserver's message (`violates PodSecurity
//! "restricted:latest": <check> (<detail>), ...`). Only `enforce` is modelled (no `warn` or
//! `audit`, no version pinning: every level is `latest`), and only on pod creation, where
//! the real plugin does its work; workload objects (Jobs) are let through as the real plugin
//! does (it only warns on them).

use serde_json::Value;

/// The namespace label that sets the enforced level.
pub const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";

/// A Pod Security Standard level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Anything goes.
    Privileged,
    /// Known privilege escalations refused.
    Baseline,
    /// Hardened pod practice.
    Restricted,
}

impl Level {
    /// The level a namespace enforces (an unknown value enforces nothing, as the real plugin
    /// then refuses the namespace label instead).
    pub fn of_namespace(namespace: &Value) -> Level {
        match namespace
            .pointer("/metadata/labels")
            .and_then(|labels| labels.get(ENFORCE_LABEL))
            .and_then(Value::as_str)
        {
            Some("baseline") => Level::Baseline,
            Some("restricted") => Level::Restricted,
            _ => Level::Privileged,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// Capabilities baseline allows adding (the container runtimes' defaults).
const BASELINE_CAPABILITIES: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Volume types restricted allows.
const RESTRICTED_VOLUME_TYPES: [&str; 8] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// The refusal message of a pod that breaks `level`, or `None` when it meets it.
pub fn refusal(level: Level, pod_name: &str, pod: &Value) -> Option<String> {
    let violations = violations(level, pod.get("spec").unwrap_or(&Value::Null));
    (!violations.is_empty()).then(|| {
        format!(
            "pods \"{pod_name}\" is forbidden: violates PodSecurity \"{}:latest\": {}",
            level.name(),
            violations.join(", ")
        )
    })
}

/// Every check of `level` the pod spec fails, in the real plugin's order and wording.
pub fn violations(level: Level, spec: &Value) -> Vec<String> {
    if level == Level::Privileged {
        return Vec::new();
    }
    let containers: Vec<&Value> = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|field| spec.get(*field).and_then(Value::as_array))
        .flatten()
        .collect();
    let name = |c: &Value| {
        c.get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let context = |c: &Value, path: &str| c.pointer(&format!("/securityContext/{path}")).cloned();
    let pod_context = |path: &str| spec.pointer(&format!("/securityContext/{path}")).cloned();
    // The containers for which `breaks` holds, as the messages name them; None for none.
    let offenders = |breaks: &dyn Fn(&Value) -> bool| -> Option<String> {
        let names: Vec<String> = containers
            .iter()
            .filter(|c| breaks(c))
            .map(|c| name(c))
            .collect();
        (!names.is_empty()).then(|| containers_phrase(&names))
    };
    let mut found = Vec::new();

    // Baseline.
    let hosts: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
        .iter()
        .filter(|field| spec.get(**field) == Some(&Value::Bool(true)))
        .map(|field| format!("{field}=true"))
        .collect();
    if !hosts.is_empty() {
        found.push(format!("host namespaces ({})", hosts.join(", ")));
    }
    if let Some(who) = offenders(&|c| context(c, "privileged") == Some(Value::Bool(true))) {
        found.push(format!(
            "privileged ({who} must not set securityContext.privileged=true)"
        ));
    }
    let added = |c: &Value| -> Vec<String> {
        c.pointer("/securityContext/capabilities/add")
            .and_then(Value::as_array)
            .map(|caps| {
                caps.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut non_default = Vec::new();
    for container in &containers {
        for capability in added(container) {
            if !BASELINE_CAPABILITIES.contains(&capability.as_str()) {
                non_default.push(format!(
                    "container \"{}\" must not include \"{capability}\" in securityContext.capabilities.add",
                    name(container)
                ));
            }
        }
    }
    if !non_default.is_empty() {
        found.push(format!(
            "non-default capabilities ({})",
            non_default.join("; ")
        ));
    }
    let volumes: Vec<&Value> = spec
        .get("volumes")
        .and_then(Value::as_array)
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    let host_paths: Vec<String> = volumes
        .iter()
        .filter(|v| v.get("hostPath").is_some())
        .map(|v| {
            format!(
                "\"{}\"",
                v.get("name").and_then(Value::as_str).unwrap_or("")
            )
        })
        .collect();
    if !host_paths.is_empty() {
        found.push(format!(
            "hostPath {} ({})",
            if host_paths.len() == 1 {
                "volume"
            } else {
                "volumes"
            },
            host_paths.join(", ")
        ));
    }
    let mut host_ports = Vec::new();
    for container in &containers {
        for port in container
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(host_port) = port
                .get("hostPort")
                .and_then(Value::as_i64)
                .filter(|p| *p != 0)
            {
                host_ports.push(format!(
                    "container \"{}\" uses hostPort {host_port}",
                    name(container)
                ));
            }
        }
    }
    if !host_ports.is_empty() {
        found.push(format!("hostPort ({})", host_ports.join("; ")));
    }
    let unconfined =
        |profile: Option<Value>| profile.as_ref().and_then(Value::as_str) == Some("Unconfined");
    if level == Level::Baseline {
        let mut seccomp = Vec::new();
        if unconfined(pod_context("seccompProfile/type")) {
            seccomp.push(
                "pod must not set securityContext.seccompProfile.type to \"Unconfined\""
                    .to_string(),
            );
        }
        if let Some(who) = offenders(&|c| unconfined(context(c, "seccompProfile/type"))) {
            seccomp.push(format!(
                "{who} must not set securityContext.seccompProfile.type to \"Unconfined\""
            ));
        }
        if !seccomp.is_empty() {
            found.push(format!("seccompProfile ({})", seccomp.join("; ")));
        }
        return found;
    }

    // Restricted.
    let restricted_volumes: Vec<String> = volumes
        .iter()
        .filter_map(|volume| {
            let kind = volume
                .as_object()?
                .keys()
                .find(|key| key.as_str() != "name")?
                .clone();
            (!RESTRICTED_VOLUME_TYPES.contains(&kind.as_str())).then(|| {
                format!(
                    "volume \"{}\" uses restricted volume type \"{kind}\"",
                    volume.get("name").and_then(Value::as_str).unwrap_or("")
                )
            })
        })
        .collect();
    if !restricted_volumes.is_empty() {
        found.push(format!(
            "restricted volume types ({})",
            restricted_volumes.join("; ")
        ));
    }
    if let Some(who) =
        offenders(&|c| context(c, "allowPrivilegeEscalation") != Some(Value::Bool(false)))
    {
        found.push(format!(
            "allowPrivilegeEscalation != false ({who} must set securityContext.allowPrivilegeEscalation=false)"
        ));
    }
    let mut capabilities = Vec::new();
    if let Some(who) = offenders(&|c| {
        !c.pointer("/securityContext/capabilities/drop")
            .and_then(Value::as_array)
            .is_some_and(|drop| drop.iter().any(|cap| cap == "ALL"))
    }) {
        capabilities.push(format!(
            "{who} must set securityContext.capabilities.drop=[\"ALL\"]"
        ));
    }
    for container in &containers {
        for capability in added(container) {
            if capability != "NET_BIND_SERVICE" {
                capabilities.push(format!(
                    "container \"{}\" must not include \"{capability}\" in securityContext.capabilities.add",
                    name(container)
                ));
            }
        }
    }
    if !capabilities.is_empty() {
        found.push(format!(
            "unrestricted capabilities ({})",
            capabilities.join("; ")
        ));
    }
    let pod_non_root = pod_context("runAsNonRoot");
    let mut non_root = Vec::new();
    if pod_non_root == Some(Value::Bool(false)) {
        non_root.push("pod must not set securityContext.runAsNonRoot=false".to_string());
    }
    if let Some(who) = offenders(&|c| context(c, "runAsNonRoot") == Some(Value::Bool(false))) {
        non_root.push(format!(
            "{who} must not set securityContext.runAsNonRoot=false"
        ));
    }
    // A container that says nothing inherits the pod's setting.
    if let Some(who) = offenders(&|c| {
        !matches!(context(c, "runAsNonRoot"), Some(Value::Bool(_)))
            && pod_non_root != Some(Value::Bool(true))
    }) {
        non_root.push(format!(
            "pod or {who} must set securityContext.runAsNonRoot=true"
        ));
    }
    if !non_root.is_empty() {
        found.push(format!("runAsNonRoot != true ({})", non_root.join("; ")));
    }
    let mut root_users = Vec::new();
    if pod_context("runAsUser").and_then(|u| u.as_i64()) == Some(0) {
        root_users.push("pod must not set runAsUser=0".to_string());
    }
    if let Some(who) = offenders(&|c| context(c, "runAsUser").and_then(|u| u.as_i64()) == Some(0)) {
        root_users.push(format!("{who} must not set runAsUser=0"));
    }
    if !root_users.is_empty() {
        found.push(format!("runAsUser=0 ({})", root_users.join("; ")));
    }
    let allowed_profile =
        |profile: &Value| matches!(profile.as_str(), Some("RuntimeDefault" | "Localhost"));
    let pod_profile = pod_context("seccompProfile/type");
    let mut seccomp = Vec::new();
    if let Some(profile) = pod_profile.as_ref().filter(|p| !allowed_profile(p)) {
        seccomp.push(format!(
            "pod must not set securityContext.seccompProfile.type to {profile}"
        ));
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for container in &containers {
        match context(container, "seccompProfile/type") {
            Some(profile) if !allowed_profile(&profile) => {
                explicit.push(format!(
                    "container \"{}\" must not set securityContext.seccompProfile.type to {profile}",
                    name(container)
                ));
            }
            Some(_) => {}
            None if !pod_profile.as_ref().is_some_and(allowed_profile) => {
                implicit.push(name(container))
            }
            None => {}
        }
    }
    seccomp.extend(explicit);
    if !implicit.is_empty() {
        seccomp.push(format!(
            "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
            containers_phrase(&implicit)
        ));
    }
    if !seccomp.is_empty() {
        found.push(format!("seccompProfile ({})", seccomp.join("; ")));
    }
    found
}

/// `container "a"` or `containers "a", "b"`, as the real messages name them.
fn containers_phrase(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    format!(
        "{} {}",
        if names.len() == 1 {
            "container"
        } else {
            "containers"
        },
        quoted.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_bare_pod_breaks_restricted_with_the_real_message_and_meets_baseline() {
        let pod = json!({"spec": {"containers": [{"name": "runner", "image": "x"}]}});
        assert_eq!(
            refusal(Level::Restricted, "p", &pod).unwrap(),
            "pods \"p\" is forbidden: violates PodSecurity \"restricted:latest\": \
             allowPrivilegeEscalation != false (container \"runner\" must set securityContext.allowPrivilegeEscalation=false), \
             unrestricted capabilities (container \"runner\" must set securityContext.capabilities.drop=[\"ALL\"]), \
             runAsNonRoot != true (pod or container \"runner\" must set securityContext.runAsNonRoot=true), \
             seccompProfile (pod or container \"runner\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        );
        assert_eq!(refusal(Level::Baseline, "p", &pod), None);
        assert_eq!(refusal(Level::Privileged, "p", &pod), None);
    }

    #[test]
    fn baseline_refuses_host_access_and_privilege() {
        let spec = json!({
            "hostNetwork": true,
            "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
            "containers": [{"name": "c", "securityContext": {"privileged": true,
                "capabilities": {"add": ["SYS_ADMIN", "CHOWN"]}},
                "ports": [{"containerPort": 80, "hostPort": 80}]}],
        });
        let found = violations(Level::Baseline, &spec);
        assert_eq!(
            found,
            [
                "host namespaces (hostNetwork=true)",
                "privileged (container \"c\" must not set securityContext.privileged=true)",
                "non-default capabilities (container \"c\" must not include \"SYS_ADMIN\" in securityContext.capabilities.add)",
                "hostPath volume (\"root\")",
                "hostPort (container \"c\" uses hostPort 80)",
            ]
        );
    }

    #[test]
    fn pod_level_settings_cover_the_containers_and_container_settings_override_them() {
        let hardened =
            json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}});
        let spec = json!({
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": [{"name": "tmp", "emptyDir": {}}],
            "containers": [{"name": "a", "securityContext": hardened}],
        });
        assert!(violations(Level::Restricted, &spec).is_empty());
        let mut overriding = spec.clone();
        overriding["containers"][0]["securityContext"]["runAsNonRoot"] = json!(false);
        overriding["containers"][0]["securityContext"]["seccompProfile"] =
            json!({"type": "Unconfined"});
        assert_eq!(
            violations(Level::Restricted, &overriding),
            [
                "runAsNonRoot != true (container \"a\" must not set securityContext.runAsNonRoot=false)",
                "seccompProfile (container \"a\" must not set securityContext.seccompProfile.type to \"Unconfined\")",
            ]
        );
    }
}
