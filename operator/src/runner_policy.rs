//! What a LoadTest may ask of its runner pods in a shared cluster — the image, the
//! ServiceAccount, node placement, resources, and the Secrets and ConfigMaps it reads — as the
//! cluster admin allows it (operator flags, chart `runnerPolicy`). The defaults are safe for a
//! namespace shared with people who may create LoadTests but should not act as anyone else.
//! Pure: [`check`] runs when a run is planned, before anything is created.

use k8s_openapi::api::core::v1::ResourceRequirements;
use stampede_crds::LoadTest;

use stampede_crds::model::Test;
use stampede_crds::model::flow::{Action, Step};
use stampede_crds::template::Template;
use stampede_crds::validate::render_static;
use stampede_runner::http::{ErrorKind, Target, TargetPolicy};

use crate::quantity::Quantity;

/// A name pattern: `*` (anything), `prefix*`, or an exact name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    /// The pattern as written.
    pub fn new(text: impl Into<String>) -> Pattern {
        Pattern(text.into())
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => self.0 == name,
        }
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn allowed(patterns: &[Pattern], name: &str) -> bool {
    patterns.iter().any(|pattern| pattern.matches(name))
}

fn listed(patterns: &[Pattern]) -> String {
    if patterns.is_empty() {
        "none".to_string()
    } else {
        patterns
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The admin's rules for runner pods.
#[derive(Debug, Clone, PartialEq)]
pub struct RunnerPolicy {
    /// Images `spec.runners.image` may name; the operator's own runner image is always allowed.
    pub allowed_images: Vec<Pattern>,
    /// Whether `spec.runners.serviceAccountName` may be set (the runners then act as that
    /// account, with whatever it is bound to).
    pub allow_service_account: bool,
    /// Node-selector keys `spec.runners.nodeSelector` may use.
    pub allowed_node_selector_keys: Vec<Pattern>,
    /// Toleration keys `spec.runners.tolerations` may use (a toleration without a key
    /// tolerates every taint, and is allowed only by `*`).
    pub allowed_toleration_keys: Vec<Pattern>,
    /// Whether `spec.runners.affinity` may be set.
    pub allow_affinity: bool,
    /// Most CPU one runner may request or be limited to.
    pub max_cpu: Option<Quantity>,
    /// Most memory one runner may request or be limited to.
    pub max_memory: Option<Quantity>,
    /// Secrets `spec.env[].valueFrom.secretKeyRef` may name.
    pub allowed_secrets: Vec<Pattern>,
    /// ConfigMaps `spec.env[].valueFrom.configMapKeyRef` and `spec.data.*.configMapRef` may
    /// name (the operator grants the runners `get` on them).
    pub allowed_config_maps: Vec<Pattern>,
}

impl Default for RunnerPolicy {
    /// Nothing beyond the operator's own image and account, at most 4 CPUs and 8Gi a runner.
    fn default() -> Self {
        RunnerPolicy {
            allowed_images: Vec::new(),
            allow_service_account: false,
            allowed_node_selector_keys: Vec::new(),
            allowed_toleration_keys: Vec::new(),
            allow_affinity: false,
            max_cpu: Quantity::parse(DEFAULT_MAX_CPU).ok(),
            max_memory: Quantity::parse(DEFAULT_MAX_MEMORY).ok(),
            allowed_secrets: Vec::new(),
            allowed_config_maps: Vec::new(),
        }
    }
}

impl RunnerPolicy {
    /// Everything allowed (`*` for every list, no resource caps): what a cluster used by one
    /// team may choose.
    pub fn open() -> RunnerPolicy {
        let any = || vec![Pattern::new("*")];
        RunnerPolicy {
            allowed_images: any(),
            allow_service_account: true,
            allowed_node_selector_keys: any(),
            allowed_toleration_keys: any(),
            allow_affinity: true,
            max_cpu: None,
            max_memory: None,
            allowed_secrets: any(),
            allowed_config_maps: any(),
        }
    }
}

/// `--max-runner-cpu` by default.
pub const DEFAULT_MAX_CPU: &str = "4";
/// `--max-runner-memory` by default.
pub const DEFAULT_MAX_MEMORY: &str = "8Gi";

/// One thing a LoadTest asks that the policy refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{field}: {problem}, which the operator's policy does not allow ({flag}, chart value runnerPolicy.{value}); {fix}"
)]
pub struct Violation {
    /// The field, e.g. `spec.runners.image`.
    pub field: String,
    /// What it asks.
    pub problem: String,
    /// The operator flag that would allow it.
    pub flag: &'static str,
    /// The chart value that sets the flag.
    pub value: &'static str,
    /// What the author can do instead.
    pub fix: String,
}

/// Every violation of `policy` in `test`, in field order; `runner_image` is the operator's own
/// (always allowed).
pub fn check(test: &LoadTest, policy: &RunnerPolicy, runner_image: &str) -> Vec<Violation> {
    let mut found = Vec::new();
    if let Some(runners) = test.spec.runners.as_ref() {
        if let Some(image) = runners.image.as_deref().filter(|image| !image.is_empty())
            && image != runner_image
            && !allowed(&policy.allowed_images, image)
        {
            found.push(Violation {
                field: "spec.runners.image".into(),
                problem: format!("runs image {image:?}"),
                flag: "--allowed-runner-images",
                value: "allowedImages",
                fix: format!(
                    "remove it to use the operator's image {runner_image:?} (allowed: {})",
                    listed(&policy.allowed_images)
                ),
            });
        }
        if let Some(account) = runners
            .service_account_name
            .as_deref()
            .filter(|name| !name.is_empty())
            && !policy.allow_service_account
        {
            found.push(Violation {
                field: "spec.runners.serviceAccountName".into(),
                problem: format!("runs the runners as ServiceAccount {account:?}"),
                flag: "--allow-runner-service-account",
                value: "allowServiceAccount",
                fix: "remove it: the runners use the account the operator makes for this test"
                    .into(),
            });
        }
        for key in runners.node_selector.keys() {
            if !allowed(&policy.allowed_node_selector_keys, key) {
                found.push(Violation {
                    field: format!("spec.runners.nodeSelector.{key}"),
                    problem: format!("selects nodes by label {key:?}"),
                    flag: "--allowed-node-selector-keys",
                    value: "allowedNodeSelectorKeys",
                    fix: format!(
                        "remove it (allowed keys: {})",
                        listed(&policy.allowed_node_selector_keys)
                    ),
                });
            }
        }
        for (index, toleration) in runners.tolerations.iter().enumerate() {
            let key = toleration.key.as_deref().unwrap_or_default();
            let permitted = if key.is_empty() {
                policy.allowed_toleration_keys.iter().any(|p| p.0 == "*")
            } else {
                allowed(&policy.allowed_toleration_keys, key)
            };
            if !permitted {
                found.push(Violation {
                    field: format!("spec.runners.tolerations[{index}]"),
                    problem: if key.is_empty() {
                        "tolerates every taint".into()
                    } else {
                        format!("tolerates taint {key:?}")
                    },
                    flag: "--allowed-toleration-keys",
                    value: "allowedTolerationKeys",
                    fix: format!(
                        "remove it (allowed keys: {})",
                        listed(&policy.allowed_toleration_keys)
                    ),
                });
            }
        }
        if runners.affinity.is_some() && !policy.allow_affinity {
            found.push(Violation {
                field: "spec.runners.affinity".into(),
                problem: "sets pod affinity".into(),
                flag: "--allow-runner-affinity",
                value: "allowAffinity",
                fix: "remove it".into(),
            });
        }
        if let Some(resources) = runners.resources.as_ref() {
            check_resources(resources, policy, &mut found);
        }
    }
    for (index, var) in test.spec.env.iter().enumerate() {
        let Some(source) = var.value_from.as_ref() else {
            continue;
        };
        if let Some(secret) = source.secret_key_ref.as_ref()
            && !allowed(&policy.allowed_secrets, &secret.name)
        {
            found.push(Violation {
                field: format!("spec.env[{index}].valueFrom.secretKeyRef"),
                problem: format!("reads Secret {:?}", secret.name),
                flag: "--allowed-secrets",
                value: "allowedSecrets",
                fix: format!(
                    "use a Secret the admin allows (allowed: {})",
                    listed(&policy.allowed_secrets)
                ),
            });
        }
        if let Some(map) = source.config_map_key_ref.as_ref()
            && !allowed(&policy.allowed_config_maps, &map.name)
        {
            found.push(config_map_violation(
                format!("spec.env[{index}].valueFrom.configMapKeyRef"),
                &map.name,
                policy,
            ));
        }
    }
    for (table, source) in &test.spec.data {
        if let Some(map) = source.config_map_ref.as_ref()
            && !allowed(&policy.allowed_config_maps, &map.name)
        {
            found.push(config_map_violation(
                format!("spec.data.{table}.configMapRef"),
                &map.name,
                policy,
            ));
        }
    }
    found
}

/// Every URL of the test that is known before the run (literal, or rendered from static
/// `spec.env` values: `defaults.baseUrl` and request URLs) and aims where `targets` forbids;
/// the runners check every other address on every connection.
pub fn check_targets(test: &LoadTest, model: &Test, targets: &TargetPolicy) -> Vec<Violation> {
    let mut found = Vec::new();
    if targets.is_open() {
        return found;
    }
    let mut check = |field: String, template: &Template| {
        let Some(url) = render_static(&template.to_string(), &test.spec) else {
            return;
        };
        let Ok(target) = Target::parse(&url) else {
            // Relative (joined to the base URL, checked on its own) or refused by validation.
            return;
        };
        if let Err(error) = targets.check(target.host(), target.ip()) {
            let (flag, value) = if matches!(error, ErrorKind::NotAllowedTarget { .. }) {
                ("--allowed-targets", "allowedTargets")
            } else {
                ("--denied-targets", "deniedTargets")
            };
            found.push(Violation {
                field,
                problem: format!("aims at {}: {error}", target.authority()),
                flag,
                value,
                fix: "load a service of your own".into(),
            });
        }
    };
    if let Some(base_url) = &model.flows.defaults.base_url {
        check("spec.defaults.baseUrl".into(), base_url);
    }
    let flows = [
        ("spec.setup".to_string(), &model.flows.setup),
        ("spec.teardown".to_string(), &model.flows.teardown),
    ]
    .into_iter()
    .chain(
        model
            .flows
            .flows
            .iter()
            .map(|(name, flow)| (format!("spec.flows.{name}"), flow)),
    );
    for (path, flow) in flows {
        walk_requests(&path, &flow.steps, &mut check);
    }
    found
}

/// Calls `visit` with the path of each request's URL, groups included.
fn walk_requests(path: &str, steps: &[Step], visit: &mut impl FnMut(String, &Template)) {
    for (index, step) in steps.iter().enumerate() {
        match &step.action {
            Action::Request(request) => visit(format!("{path}[{index}].request.url"), &request.url),
            Action::Group(group) => {
                walk_requests(&format!("{path}[{index}].steps"), &group.steps, visit);
            }
            Action::Sleep(_) => {}
        }
    }
}

fn config_map_violation(field: String, name: &str, policy: &RunnerPolicy) -> Violation {
    Violation {
        field,
        problem: format!("reads ConfigMap {name:?}"),
        flag: "--allowed-config-maps",
        value: "allowedConfigMaps",
        fix: format!(
            "use a ConfigMap the admin allows, or inline rows (allowed: {})",
            listed(&policy.allowed_config_maps)
        ),
    }
}

fn check_resources(
    resources: &ResourceRequirements,
    policy: &RunnerPolicy,
    found: &mut Vec<Violation>,
) {
    for (kind, values) in [
        ("requests", &resources.requests),
        ("limits", &resources.limits),
    ] {
        let Some(values) = values else {
            continue;
        };
        for (resource, max, flag, value) in [
            ("cpu", &policy.max_cpu, "--max-runner-cpu", "maxCpu"),
            (
                "memory",
                &policy.max_memory,
                "--max-runner-memory",
                "maxMemory",
            ),
        ] {
            let (Some(asked), Some(max)) = (values.get(resource), max.as_ref()) else {
                continue;
            };
            let field = format!("spec.runners.resources.{kind}.{resource}");
            match Quantity::parse(&asked.0) {
                Ok(asked) if asked <= *max => {}
                Ok(asked) => found.push(Violation {
                    field,
                    problem: format!("asks {asked} per runner, over the most of {max}"),
                    flag,
                    value,
                    fix: "ask less per runner and let the operator use more runners (raise runners.count or lower runners.maxVUsPerRunner)".into(),
                }),
                // The API server refuses malformed quantities first; a LoadTest planned from
                // a file may still carry one.
                Err(error) => found.push(Violation {
                    field,
                    problem: format!("is {:?}, not a quantity ({error})", asked.0),
                    flag,
                    value,
                    fix: "write a Kubernetes quantity such as 500m, 2 or 1Gi".into(),
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn test(spec: serde_json::Value) -> LoadTest {
        let mut full = json!({"vus": 1, "duration": "1s",
            "flows": {"default": [{"request": {"url": "http://127.0.0.1:1/"}}]}});
        full.as_object_mut()
            .unwrap()
            .extend(spec.as_object().unwrap().clone());
        serde_json::from_value(json!({
            "apiVersion": "stampede.dev/v1alpha1", "kind": "LoadTest",
            "metadata": {"name": "t", "namespace": "shop"}, "spec": full,
        }))
        .unwrap()
    }

    const IMAGE: &str = "ghcr.io/stampede-dev/stampede:0.1.0";

    #[test]
    fn the_default_policy_allows_a_plain_test_and_the_operators_own_image() {
        let policy = RunnerPolicy::default();
        assert!(check(&test(json!({})), &policy, IMAGE).is_empty());
        let own = test(json!({"runners": {"image": IMAGE,
            "resources": {"requests": {"cpu": "4", "memory": "8Gi"}}}}));
        assert!(check(&own, &policy, IMAGE).is_empty());
    }

    #[test]
    fn the_default_policy_refuses_each_way_to_act_as_someone_else_naming_field_and_flag() {
        let hostile = test(json!({
            "env": [
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "cluster-admin-token", "key": "token"}}},
                {"name": "CFG", "valueFrom": {"configMapKeyRef": {"name": "kube-root-ca.crt", "key": "ca.crt"}}},
                {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            ],
            "data": {"users": {"configMapRef": {"name": "payroll", "key": "rows.csv"}}},
            "runners": {
                "image": "evil.example/miner:latest",
                "serviceAccountName": "admin",
                "nodeSelector": {"node-role.kubernetes.io/control-plane": ""},
                "tolerations": [{"operator": "Exists"}, {"key": "dedicated", "operator": "Exists"}],
                "affinity": {"nodeAffinity": {}},
                "resources": {"requests": {"cpu": "64"}, "limits": {"memory": "1Ti"}},
            },
        }));
        let found = check(&hostile, &RunnerPolicy::default(), IMAGE);
        let fields: Vec<&str> = found.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.runners.image",
                "spec.runners.serviceAccountName",
                "spec.runners.nodeSelector.node-role.kubernetes.io/control-plane",
                "spec.runners.tolerations[0]",
                "spec.runners.tolerations[1]",
                "spec.runners.affinity",
                "spec.runners.resources.requests.cpu",
                "spec.runners.resources.limits.memory",
                "spec.env[0].valueFrom.secretKeyRef",
                "spec.env[1].valueFrom.configMapKeyRef",
                "spec.data.users.configMapRef",
            ]
        );
        assert_eq!(
            found[0].to_string(),
            "spec.runners.image: runs image \"evil.example/miner:latest\", which the operator's \
             policy does not allow (--allowed-runner-images, chart value runnerPolicy.allowedImages); \
             remove it to use the operator's image \"ghcr.io/stampede-dev/stampede:0.1.0\" (allowed: none)"
        );
        assert!(
            found[6]
                .to_string()
                .contains("asks 64 per runner, over the most of 4")
        );
    }

    #[test]
    fn urls_known_before_the_run_are_checked_against_the_target_policy() {
        let spec = test(json!({
            "env": [{"name": "BASE_URL", "value": "http://metadata.google.internal"},
                    {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
            "defaults": {"baseUrl": "${env.BASE_URL}"},
            "flows": {"default": [
                {"request": {"url": "/computeMetadata/v1/"}},
                {"group": "g", "steps": [{"request": {"url": "http://169.254.169.254/latest/meta-data/"}}]},
                {"request": {"url": "http://${env.HOST}/"}},
                {"request": {"url": "http://127.0.0.1:8080/"}},
            ]},
        }));
        let model = crate::compiled::compile(&spec).unwrap().model;
        let targets = crate::policy::default_targets();
        let found = check_targets(&spec, &model, &targets);
        let fields: Vec<&str> = found.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.defaults.baseUrl",
                "spec.flows.default[1].steps[0].request.url"
            ]
        );
        assert_eq!(
            found[1].to_string(),
            "spec.flows.default[1].steps[0].request.url: aims at 169.254.169.254: IP (169.254.169.254) \
             is in a blacklisted range (169.254.0.0/16), which the operator's policy does not allow \
             (--denied-targets, chart value runnerPolicy.deniedTargets); load a service of your own"
        );
        assert!(check_targets(&spec, &model, &TargetPolicy::default()).is_empty());
    }

    #[test]
    fn an_admin_can_allow_each_by_name_or_prefix() {
        let policy = RunnerPolicy {
            allowed_images: vec![Pattern::new("registry.corp/stampede:*")],
            allow_service_account: true,
            allowed_node_selector_keys: vec![Pattern::new("pool")],
            allowed_toleration_keys: vec![Pattern::new("load*")],
            allow_affinity: true,
            max_cpu: None,
            max_memory: Quantity::parse("16Gi").ok(),
            allowed_secrets: vec![Pattern::new("loadtest-*")],
            allowed_config_maps: vec![Pattern::new("*")],
        };
        let spec = test(json!({
            "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "loadtest-user", "key": "p"}}}],
            "data": {"users": {"configMapRef": {"name": "anything", "key": "rows.csv"}}},
            "runners": {"image": "registry.corp/stampede:2", "serviceAccountName": "loader",
                "nodeSelector": {"pool": "load"}, "tolerations": [{"key": "load-only", "operator": "Exists"}],
                "affinity": {}, "resources": {"limits": {"cpu": "64", "memory": "16Gi"}}},
        }));
        assert_eq!(check(&spec, &policy, IMAGE), Vec::<Violation>::new());
        let other = test(json!({
            "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "prod-db", "key": "p"}}}],
            "runners": {"image": "registry.corp/other:2", "tolerations": [{"operator": "Exists"}]},
        }));
        let fields: Vec<String> = check(&other, &policy, IMAGE)
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            [
                "spec.runners.image",
                "spec.runners.tolerations[0]",
                "spec.env[0].valueFrom.secretKeyRef"
            ]
        );
    }
}
