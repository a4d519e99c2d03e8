//! The Helm chart (charts/stampede) rendered by Helm's own engine through `tests/chart/render.py`
//! (PyPI package helm-python-sdk, offline): every rendered object is its k8s-openapi type with no
//! field lost, the rendered CRDs are crds/loadtest.yaml, and the chart grants the operator what
//! the operator's code makes it do (the objects it applies, and every permission of the runner
//! Role it creates, which RBAC escalation prevention requires it to hold itself).
//!
//! Needs `python3` on PATH (or `$STAMPEDE_CHART_PYTHON`) with `helm-python-sdk==0.2.2`.

use std::path::Path;
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value as Json, json};
use stampede_crds::LoadTest;
use stampede_operator::desired::{self, Run};
use stampede_operator::plan::plan;
use stampede_operator::policy::Policy;
use stampede_operator::runner_policy::RunnerPolicy;
use stampede_tests::chart::{
    RELEASE_NAMESPACE, parse_documents, python, render_chart, require_helm_sdk,
};
use stampede_tests::repo_root;

fn to_json(value: &serde_yaml_ng::Value) -> Json {
    serde_json::to_value(value).expect("YAML document as JSON")
}

fn kind(object: &Json) -> &str {
    object["kind"].as_str().unwrap_or_default()
}

fn name(object: &Json) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

/// Parses `object` as `T` and serializes it back: equal to the original, so no field was
/// misspelled, misplaced or of the wrong type (k8s-openapi ignores unknown fields, the
/// round trip does not).
fn round_trip<T: Serialize + DeserializeOwned>(object: &Json) -> T {
    let typed: T = serde_json::from_value(object.clone()).unwrap_or_else(|error| {
        panic!(
            "{} {} does not parse as its k8s-openapi type: {error}",
            kind(object),
            name(object)
        )
    });
    let back = serde_json::to_value(&typed).expect("serialize");
    assert_eq!(
        &back,
        object,
        "{} {}: fields lost or changed by its k8s-openapi type (misspelled or misplaced?)",
        kind(object),
        name(object)
    );
    typed
}

/// Checks every object is its type; returns them as JSON.
fn check_types(documents: &[serde_yaml_ng::Value]) -> Vec<Json> {
    let objects: Vec<Json> = documents.iter().map(to_json).collect();
    for object in &objects {
        match kind(object) {
            "CustomResourceDefinition" => {
                round_trip::<CustomResourceDefinition>(object);
            }
            "Deployment" => {
                round_trip::<Deployment>(object);
            }
            "ServiceAccount" => {
                round_trip::<ServiceAccount>(object);
            }
            "ClusterRole" => {
                round_trip::<ClusterRole>(object);
            }
            "ClusterRoleBinding" => {
                round_trip::<ClusterRoleBinding>(object);
            }
            "Role" => {
                round_trip::<Role>(object);
            }
            "RoleBinding" => {
                round_trip::<RoleBinding>(object);
            }
            "Service" => {
                round_trip::<Service>(object);
            }
            "Ingress" => {
                round_trip::<Ingress>(object);
            }
            "ServiceMonitor" => {
                assert_eq!(object["apiVersion"], "monitoring.coreos.com/v1");
                assert!(object["spec"]["endpoints"].is_array(), "{object}");
                assert!(object["spec"]["selector"]["matchLabels"].is_object());
            }
            other => panic!("the chart renders a {other} that this test does not check"),
        }
    }
    objects
}

const CONFIGURATIONS: &[&[&str]] = &[
    &[],
    &["--mode", "cluster"],
    &["--mode", "namespaced"],
    &[
        "--mode",
        "cluster",
        "--set",
        "watchNamespaces={team-a,team-b}",
        "--set",
        "replicas=2",
        "--set",
        "demoServer.enabled=true",
        "--set",
        "metrics.serviceMonitor.enabled=true",
    ],
    &[
        "--mode",
        "namespaced",
        "--set",
        "watchNamespaces={team-a,team-b}",
        "--set",
        "replicas=2",
        "--set",
        "demoServer.enabled=true",
        "--set",
        "metrics.serviceMonitor.enabled=true",
    ],
    &[
        "--set",
        "dashboard.ingress.enabled=true",
        "--set",
        "dashboard.ingress.className=nginx",
        "--set",
        "dashboard.ingress.host=loadtests.example.test",
        "--set",
        "dashboard.ingress.tls[0].secretName=loadtests-tls",
        "--set",
        "dashboard.ingress.tls[0].hosts[0]=loadtests.example.test",
    ],
];

#[test]
fn every_rendered_object_is_its_kubernetes_type() {
    for args in CONFIGURATIONS {
        let objects = check_types(&render_chart(args));
        let kinds: Vec<&str> = objects.iter().map(kind).collect();
        assert_eq!(kinds.first(), Some(&"CustomResourceDefinition"), "{args:?}");
        for wanted in ["ServiceAccount", "Service", "Deployment"] {
            assert!(
                kinds.contains(&wanted),
                "{args:?}: no {wanted} in {kinds:?}"
            );
        }
        let namespaced = args.contains(&"namespaced");
        assert_eq!(kinds.contains(&"ClusterRole"), !namespaced, "{args:?}");
        assert_eq!(
            kinds.contains(&"ClusterRoleBinding"),
            !namespaced,
            "{args:?}"
        );
        let everything = args.contains(&"demoServer.enabled=true");
        assert_eq!(kinds.contains(&"ServiceMonitor"), everything, "{args:?}");
        let deployments = kinds.iter().filter(|k| **k == "Deployment").count();
        assert_eq!(deployments, if everything { 2 } else { 1 }, "{args:?}");
    }
}

#[test]
fn the_rendered_crds_are_crds_loadtest_yaml() {
    let golden = std::fs::read_to_string(repo_root().join("crds/loadtest.yaml"))
        .expect("read crds/loadtest.yaml");
    let golden: Vec<Json> = parse_documents(&golden).iter().map(to_json).collect();
    assert!(!golden.is_empty());
    for args in [&[][..], &["--mode", "namespaced"][..]] {
        let rendered: Vec<Json> = render_chart(args)
            .iter()
            .map(to_json)
            .filter(|o| kind(o) == "CustomResourceDefinition")
            .collect();
        assert!(
            rendered == golden,
            "the chart's CRDs differ from crds/loadtest.yaml; regenerate both copies:\n  cargo run -q -p \
             stampede-runner -- crd > crds/loadtest.yaml && cp crds/loadtest.yaml \
             charts/stampede/crds/loadtest.yaml"
        );
    }
}

fn rules(object: &Json) -> Vec<PolicyRule> {
    serde_json::from_value(object["rules"].clone()).expect("rules")
}

/// Whether `rules` allow `verb` on `group`/`resource` (named `object`, when the call names one).
fn allows(
    rules: &[PolicyRule],
    group: &str,
    resource: &str,
    verb: &str,
    object: Option<&str>,
) -> bool {
    rules.iter().any(|rule| {
        rule.api_groups
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|g| g == group)
            && rule
                .resources
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|r| r == resource)
            && rule.verbs.iter().any(|v| v == verb)
            && match (rule.resource_names.as_deref(), object) {
                (None, _) => true,
                (Some([]), _) => true,
                (Some(names), Some(object)) => names.iter().any(|n| n == object),
                (Some(_), None) => false,
            }
    })
}

/// (group, resource) of a k8s-openapi or kube type, as RBAC names it.
fn resource_of<K: Resource<DynamicType = ()>>() -> (String, String) {
    (K::group(&()).into_owned(), K::plural(&()).into_owned())
}

/// A LoadTest as the operator sees one, with a data table from a ConfigMap (so the runner Role
/// has all three of its rules).
fn sample_test() -> LoadTest {
    serde_json::from_value(json!({
        "apiVersion": "stampede.dev/v1alpha1", "kind": "LoadTest",
        "metadata": {"name": "spike", "namespace": "team-a", "uid": "0000-1111", "generation": 1},
        "spec": {"vus": 20, "duration": "5s", "runners": {"count": 2},
                 "data": {"users": {"configMapRef": {"name": "users", "key": "users.csv"}}},
                 "flows": {"default": [{"request": {"url": "http://127.0.0.1:1/"}}]}}
    }))
    .expect("sample LoadTest")
}

/// What the operator does in a watched namespace, derived from its code where the code says it:
/// every verb of the runner Role it builds (escalation prevention: it must hold them to create and
/// bind that Role), create + patch (server-side apply) of every kind of object it applies, and the
/// calls of controller.rs (watch LoadTests and their Jobs, read Jobs and pods, delete Jobs and
/// reports, the status, TTL deletion, Events).
fn operator_needs() -> Vec<(String, String, String, Option<String>)> {
    let test = sample_test();
    let plan = plan(
        &test,
        &Policy {
            // The sample reads a ConfigMap: the policy of a cluster that allows it.
            runners: RunnerPolicy::open(),
            ..Policy::default()
        },
    )
    .expect("plan");
    let run = Run {
        test: &test,
        plan: &plan,
        run: 1,
    };
    let mut needs = Vec::new();
    let mut need = |(group, resource): (String, String), verbs: &[&str]| {
        for verb in verbs {
            needs.push((group.clone(), resource.clone(), (*verb).to_string(), None));
        }
    };
    // The runner Role, as desired.rs builds it: the operator must hold each of its permissions.
    let role = desired::role(run);
    for rule in role.rules.as_deref().unwrap_or_default() {
        for group in rule.api_groups.as_deref().unwrap_or_default() {
            for resource in rule.resources.as_deref().unwrap_or_default() {
                let verbs: Vec<&str> = rule.verbs.iter().map(String::as_str).collect();
                need((group.clone(), resource.clone()), &verbs);
            }
        }
    }
    assert!(
        role.rules.as_ref().is_some_and(|r| r.len() == 3),
        "the sample should exercise every runner rule"
    );
    // Server-side apply of each desired object (PATCH, and "create" when it does not exist).
    let apply = ["create", "patch"];
    for config_map in desired::report_config_maps(run) {
        assert_eq!(config_map.meta().namespace.as_deref(), Some("team-a"));
    }
    need(resource_of::<ConfigMap>(), &apply);
    need(resource_of::<ServiceAccount>(), &apply);
    need(resource_of::<Role>(), &apply);
    need(resource_of::<RoleBinding>(), &apply);
    need(resource_of::<Job>(), &apply);
    // Reads, watches, deletes of controller.rs.
    need(resource_of::<LoadTest>(), &["list", "watch", "delete"]);
    let (group, plural) = resource_of::<LoadTest>();
    need((group, format!("{plural}/status")), &["patch"]);
    need(resource_of::<Job>(), &["list", "watch", "get", "delete"]);
    need(resource_of::<ConfigMap>(), &["list", "delete"]);
    need(resource_of::<Pod>(), &["list"]);
    // kube-runtime's Recorder: create, then merge-patch a repeated Event.
    need(resource_of::<Event>(), &["create", "patch"]);
    needs
}

fn watch_roles(objects: &[Json]) -> Vec<(String, Vec<PolicyRule>)> {
    objects
        .iter()
        .filter(|o| {
            kind(o) == "ClusterRole"
                || (kind(o) == "Role" && !name(o).ends_with("-leader-election"))
        })
        .map(|o| {
            let namespace = o["metadata"]["namespace"].as_str().unwrap_or("<cluster>");
            (format!("{} {namespace}/{}", kind(o), name(o)), rules(o))
        })
        .collect()
}

#[test]
fn the_chart_grants_what_the_operator_code_does_in_every_watched_namespace() {
    let needs = operator_needs();
    for args in CONFIGURATIONS {
        let objects = check_types(&render_chart(args));
        let roles = watch_roles(&objects);
        let expected = if args.contains(&"namespaced") {
            if args.contains(&"watchNamespaces={team-a,team-b}") {
                2
            } else {
                1
            }
        } else {
            1
        };
        assert_eq!(roles.len(), expected, "{args:?}");
        for (role, rules) in &roles {
            for (group, resource, verb, object) in &needs {
                assert!(
                    allows(rules, group, resource, verb, object.as_deref()),
                    "{args:?}: {role} does not grant {verb} on {resource}.{group}, which the operator needs"
                );
            }
            for rule in rules {
                for resource in rule.resources.as_deref().unwrap_or_default() {
                    assert!(
                        !["secrets", "pods/log", "*"].contains(&resource.as_str()),
                        "{role} grants {resource}"
                    );
                }
            }
        }
    }
}

#[test]
fn leader_election_rights_match_lease_rs_and_only_in_the_release_namespace() {
    let (group, plural) = resource_of::<Lease>();
    for args in [
        &["--set", "replicas=2"][..],
        &[
            "--mode",
            "namespaced",
            "--set",
            "leaderElection.enabled=true",
        ][..],
    ] {
        let objects = check_types(&render_chart(args));
        let lease_role = objects
            .iter()
            .find(|o| kind(o) == "Role" && name(o) == "stampede-leader-election")
            .unwrap_or_else(|| panic!("{args:?}: no Lease Role"));
        assert_eq!(lease_role["metadata"]["namespace"], RELEASE_NAMESPACE);
        let lease_rules = rules(lease_role);
        let value =
            |key: &str| operator_env(&objects, key).unwrap_or_else(|| panic!("{args:?}: no {key}"));
        assert_eq!(value("STAMPEDE_LEADER_ELECT"), "true");
        assert_eq!(value("STAMPEDE_LEASE_NAMESPACE"), RELEASE_NAMESPACE);
        let lease = value("STAMPEDE_LEASE_NAME");
        // lease.rs: get_opt, create, replace (PUT = update), on this Lease only.
        for verb in ["get", "update"] {
            assert!(
                allows(&lease_rules, &group, &plural, verb, Some(&lease)),
                "{verb}"
            );
            assert!(
                !allows(&lease_rules, &group, &plural, verb, Some("another-lease")),
                "{verb}"
            );
        }
        assert!(allows(&lease_rules, &group, &plural, "create", None));
        for (role, rules) in watch_roles(&objects) {
            assert!(
                !allows(&rules, &group, &plural, "get", Some(&lease)),
                "{role} grants leases"
            );
        }
    }
}

/// The LoadTest NOTES.txt tells the user to apply is valid, as `stampede validate` sees it.
#[test]
fn the_notes_example_is_a_valid_load_test() {
    require_helm_sdk();
    for args in [
        &["--notes"][..],
        &["--notes", "--set", "demoServer.enabled=true"][..],
    ] {
        let output = Command::new(python())
            .arg(repo_root().join("tests/chart/render.py"))
            .args(args)
            .output()
            .expect("run render.py --notes");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let notes = String::from_utf8(output.stdout).expect("UTF-8");
        let example: String = notes
            .lines()
            .skip_while(|line| !line.contains("# LoadTest begin"))
            .skip(1)
            .take_while(|line| !line.contains("# LoadTest end"))
            .map(|line| format!("{}\n", line.strip_prefix("   ").unwrap_or(line)))
            .collect();
        assert!(example.contains("kind: LoadTest"), "{notes}");
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("smoke.yaml");
        std::fs::write(&file, &example).expect("write the example");
        let validated = stampede_tests::stampede(&["validate", path_str(&file)]);
        assert!(
            validated.status.success(),
            "the NOTES.txt example is invalid:\n{example}\n{}{}",
            String::from_utf8_lossy(&validated.stdout),
            String::from_utf8_lossy(&validated.stderr)
        );
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// The value of `key` in the environment of the rendered operator Deployment's container.
fn operator_env(objects: &[Json], key: &str) -> Option<String> {
    let deployment = objects
        .iter()
        .find(|o| kind(o) == "Deployment")
        .expect("Deployment");
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == key)
        .and_then(|e| e["value"].as_str())
        .map(str::to_string)
}

/// The chart's default runner policy is the operator's own default: the denied targets are the
/// same list, and the resource caps the same quantities.
#[test]
fn the_charts_default_runner_policy_is_the_operators() {
    let objects = check_types(&render_chart(&[]));
    let value = |key: &str| operator_env(&objects, key).unwrap_or_else(|| panic!("no {key}"));
    assert_eq!(
        value("STAMPEDE_DENIED_TARGETS"),
        stampede_operator::policy::DEFAULT_DENIED_TARGETS
    );
    assert_eq!(
        value("STAMPEDE_MAX_RUNNER_CPU"),
        stampede_operator::runner_policy::DEFAULT_MAX_CPU
    );
    assert_eq!(
        value("STAMPEDE_MAX_RUNNER_MEMORY"),
        stampede_operator::runner_policy::DEFAULT_MAX_MEMORY
    );
}

/// By default the dashboard listens on the pod's loopback only (kubectl port-forward reaches
/// it); an Ingress, off by default, reaches it through a Service whose port leads to the
/// container port the operator listens on, on the pod's address.
#[test]
fn the_dashboard_stays_on_the_pods_loopback_unless_an_ingress_asks_for_it() {
    let objects = check_types(&render_chart(&[]));
    assert_eq!(
        operator_env(&objects, "STAMPEDE_DASHBOARD_ADDR").as_deref(),
        Some("127.0.0.1:5665")
    );
    assert!(
        !objects
            .iter()
            .any(|o| kind(o) == "Ingress" || name(o).ends_with("-dashboard")),
        "the default chart exposes the dashboard"
    );

    let objects = check_types(&render_chart(&[
        "--set",
        "dashboard.ingress.enabled=true",
        "--set",
        "dashboard.ingress.host=loadtests.example.test",
        "--set",
        "dashboard.port=7000",
    ]));
    assert_eq!(
        operator_env(&objects, "STAMPEDE_DASHBOARD_ADDR").as_deref(),
        Some("0.0.0.0:7000")
    );
    let deployment = objects.iter().find(|o| kind(o) == "Deployment").unwrap();
    let ports = &deployment["spec"]["template"]["spec"]["containers"][0]["ports"];
    let container_port = ports
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "dashboard")
        .expect("a dashboard container port");
    assert_eq!(container_port["containerPort"], 7000);
    let ingress = objects
        .iter()
        .find(|o| kind(o) == "Ingress")
        .expect("Ingress");
    let rule = &ingress["spec"]["rules"][0];
    assert_eq!(rule["host"], "loadtests.example.test");
    let backend = &rule["http"]["paths"][0]["backend"]["service"];
    let service = objects
        .iter()
        .find(|o| kind(o) == "Service" && name(o) == backend["name"])
        .unwrap_or_else(|| panic!("no Service {}", backend["name"]));
    let service_port = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == backend["port"]["name"])
        .expect("the Ingress's port on the Service");
    assert_eq!(service_port["targetPort"], "dashboard");
    // The Service selects the operator's pods.
    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    for (key, value) in service["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&pod_labels[key], value, "{key}");
    }
}

/// A Service in front of several replicas would reach a follower, which drives no run: the
/// chart refuses it and says what to do instead.
#[test]
fn a_dashboard_service_with_more_than_one_replica_is_refused_with_the_fix() {
    require_helm_sdk();
    let output = Command::new(python())
        .arg(repo_root().join("tests/chart/render.py"))
        .args([
            "--set",
            "replicas=2",
            "--set",
            "dashboard.ingress.enabled=true",
        ])
        .current_dir(repo_root())
        .output()
        .expect("run render.py");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("dashboard.service and dashboard.ingress need replicas: 1")
            && stderr.contains("kubectl port-forward"),
        "{stderr}"
    );
}
