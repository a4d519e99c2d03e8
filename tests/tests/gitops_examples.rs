//! The GitOps examples in examples/gitops/ (Argo CD, Argo Rollouts, Flux, CI): every LoadTest
//! in them — plain, inlined in a ConfigMap, or rendered from a kustomize overlay — passes
//! Stampede's validation; every other document parses as YAML, and Kubernetes built-in kinds
//! as their k8s-openapi types without a field lost; the RBAC they ship is as narrow as it says;
//! Flux's CEL health expressions agree with the Argo CD health check; and the Argo CD PostSync
//! Job hook gates on `stampede wait` against the API server stand-in with the process kubelet.
//!
//! (tests/tests/examples.rs covers only the top-level examples/*.yaml.)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{ConfigMap, PodTemplateSpec, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding};
use kube::api::{Api, Patch, PatchParams};
use kube_cel::cel::{Context, Program, Value as CelValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use stampede_crds::LoadTest;
use stampede_runner::manifest::{self, Report};
use stampede_tests::argocd::argocd_health;
use stampede_tests::cluster::{Cluster, kubectl_available};
use stampede_tests::repo_root;

/// The target every example LoadTest uses: the chart's optional demo server.
const DEMO_BASE_URL: &str = "http://stampede-demo.stampede.svc:8080";

const GITOPS: &str = "examples/gitops";

/// Every YAML file under examples/gitops, sorted.
fn gitops_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, files);
            } else if path
                .extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
            {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo_root().join(GITOPS), &mut files);
    files.sort();
    assert!(files.len() >= 12, "examples/gitops holds {files:?}");
    files
}

fn relative(path: &Path) -> String {
    path.strip_prefix(repo_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The documents of a YAML text (empty documents left out).
fn documents(source: &str, text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|document| {
            serde::Deserialize::deserialize(document)
                .unwrap_or_else(|e| panic!("{source} is not valid YAML: {e}"))
        })
        .filter(|value: &Value| !value.is_null())
        .collect()
}

fn kind_of(document: &Value) -> (&str, &str) {
    (
        document["apiVersion"].as_str().unwrap_or_default(),
        document["kind"].as_str().unwrap_or_default(),
    )
}

fn assert_valid(source: &str, report: &Report) {
    let problems: Vec<String> = report.diagnostics.iter().map(ToString::to_string).collect();
    assert!(
        problems.is_empty(),
        "{source} has an invalid LoadTest:\n{}",
        problems.join("\n")
    );
}

/// The LoadTests inlined in a ConfigMap's `*.yaml` data keys (Argo Rollouts' analysis applies
/// them from there), checked like a file.
fn inlined_loadtests(source: &str, document: &Value) -> Vec<LoadTest> {
    let mut tests = Vec::new();
    if kind_of(document) != ("v1", "ConfigMap") {
        return tests;
    }
    let Some(data) = document["data"].as_object() else {
        return tests;
    };
    for (key, text) in data {
        if key.ends_with(".yaml") || key.ends_with(".yml") {
            let source = format!("{source} (ConfigMap data {key})");
            let report = manifest::check_str(
                &source,
                text.as_str().unwrap_or_default(),
                &Default::default(),
            );
            assert_valid(&source, &report);
            tests.extend(report.tests);
        }
    }
    tests
}

fn kubectl_kustomize(dir: &Path) -> String {
    assert!(
        kubectl_available(),
        "kubectl is missing: the kustomize overlays are rendered with `kubectl kustomize`"
    );
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("run kubectl kustomize");
    assert!(
        output.status.success(),
        "kubectl kustomize {} failed: {}",
        relative(dir),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Every directory under examples/gitops with a kustomization.yaml.
fn kustomize_dirs() -> Vec<PathBuf> {
    gitops_files()
        .into_iter()
        .filter(|path| path.file_name().is_some_and(|n| n == "kustomization.yaml"))
        .map(|path| path.parent().unwrap().to_path_buf())
        .collect()
}

#[test]
fn every_loadtest_in_the_gitops_examples_is_valid() {
    let mut tests: Vec<(String, LoadTest)> = Vec::new();
    for path in gitops_files() {
        let source = relative(&path);
        // What `stampede validate FILE` runs; documents of other kinds are skipped.
        let report = manifest::check_file(&path, &Default::default()).unwrap();
        assert_valid(&source, &report);
        tests.extend(report.tests.into_iter().map(|t| (source.clone(), t)));
        let text = std::fs::read_to_string(&path).unwrap();
        for document in documents(&source, &text) {
            for test in inlined_loadtests(&source, &document) {
                tests.push((format!("{source} (inlined)"), test));
            }
        }
    }
    for dir in kustomize_dirs() {
        let source = format!("kubectl kustomize {}", relative(&dir));
        let report = manifest::check_str(&source, &kubectl_kustomize(&dir), &Default::default());
        assert_valid(&source, &report);
        tests.extend(report.tests.into_iter().map(|t| (source.clone(), t)));
    }
    let names: Vec<String> = tests
        .iter()
        .map(|(source, test)| format!("{source}: {}", test.metadata.name.as_deref().unwrap_or("?")))
        .collect();
    assert!(tests.len() >= 7, "{names:#?}");
    for (source, test) in &tests {
        let base_url = test
            .spec
            .defaults
            .as_ref()
            .and_then(|d| d.base_url.as_deref());
        assert_eq!(base_url, Some(DEMO_BASE_URL), "{source}");
    }
    for file in [
        "argocd/postsync-loadtest.yaml",
        "argocd/postsync-wait-job.yaml",
        "argo-rollouts/analysis-template.yaml (inlined)",
        "flux/base/loadtest.yaml",
        "ci/loadtest.yaml",
    ] {
        let file = format!("{GITOPS}/{file}");
        assert!(
            tests.iter().any(|(source, _)| *source == file),
            "no LoadTest from {file}: {names:#?}"
        );
    }
}

/// `T` read from `document` and written back gives the same JSON: no unknown or misspelled
/// field was dropped on the way.
fn round_trip<T: DeserializeOwned + Serialize>(source: &str, what: &str, document: &Value) {
    let typed: T = serde_json::from_value(document.clone())
        .unwrap_or_else(|e| panic!("{source}: {what} does not parse: {e}\n{document:#}"));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(
        &back, document,
        "{source}: {what} loses or changes fields when read as its Kubernetes type"
    );
}

#[test]
fn every_other_document_parses_as_its_type() {
    let mut seen = Vec::new();
    for path in gitops_files() {
        let source = relative(&path);
        let text = std::fs::read_to_string(&path).unwrap();
        for document in documents(&source, &text) {
            let (api_version, kind) = kind_of(&document);
            let name = document["metadata"]["name"].as_str().unwrap_or("?");
            let what = format!("{kind} {name}");
            match (api_version, kind) {
                ("stampede.dev/v1alpha1", "LoadTest") => {} // validated above
                ("v1", "ServiceAccount") => round_trip::<ServiceAccount>(&source, &what, &document),
                ("v1", "ConfigMap") => round_trip::<ConfigMap>(&source, &what, &document),
                ("v1", "Service") => round_trip::<Service>(&source, &what, &document),
                ("rbac.authorization.k8s.io/v1", "Role") => {
                    round_trip::<Role>(&source, &what, &document)
                }
                ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
                    round_trip::<RoleBinding>(&source, &what, &document)
                }
                ("batch/v1", "Job") => round_trip::<Job>(&source, &what, &document),
                ("argoproj.io/v1alpha1", "AnalysisTemplate") => {
                    let metrics = document["spec"]["metrics"].as_array().unwrap();
                    assert!(!metrics.is_empty(), "{source}: {what} has no metrics");
                    for metric in metrics {
                        let job = &metric["provider"]["job"]["spec"];
                        round_trip::<JobSpec>(&source, &format!("{what} job"), job);
                    }
                }
                ("argoproj.io/v1alpha1", "Rollout") => round_trip::<PodTemplateSpec>(
                    &source,
                    &format!("{what} template"),
                    &document["spec"]["template"],
                ),
                ("kustomize.config.k8s.io/v1beta1", "Kustomization") => {
                    assert!(document["resources"].is_array(), "{source}");
                }
                ("kustomize.toolkit.fluxcd.io/v1", "Kustomization") => {
                    assert!(document["spec"]["sourceRef"].is_object(), "{source}");
                }
                ("", "") => {
                    // Not a Kubernetes object: a CI pipeline or a JSON 6902 patch.
                    assert!(
                        source.ends_with("ci/github-actions.yaml")
                            || source.ends_with("ci/gitlab-ci.yml")
                            || source.ends_with("flux/overlays/staging/loadtest-patch.yaml"),
                        "{source}: a document without apiVersion and kind"
                    );
                }
                _ => panic!("{source}: {api_version} {kind} is not checked here; add it"),
            }
            seen.push(format!("{api_version} {kind}"));
        }
    }
    for kind in [
        "batch/v1 Job",
        "rbac.authorization.k8s.io/v1 Role",
        "argoproj.io/v1alpha1 AnalysisTemplate",
        "argoproj.io/v1alpha1 Rollout",
        "kustomize.toolkit.fluxcd.io/v1 Kustomization",
    ] {
        assert!(seen.iter().any(|s| s == kind), "no {kind} in {seen:?}");
    }
}

fn rules_of(path: &str, role: &str) -> Vec<PolicyRule> {
    let text = std::fs::read_to_string(repo_root().join(path)).unwrap();
    documents(path, &text)
        .into_iter()
        .filter(|d| {
            kind_of(d) == ("rbac.authorization.k8s.io/v1", "Role") && d["metadata"]["name"] == role
        })
        .map(|d| serde_json::from_value::<Role>(d).unwrap())
        .next()
        .unwrap_or_else(|| panic!("{path}: no Role {role}"))
        .rules
        .unwrap_or_default()
}

fn loadtest_rule(verbs: &[&str]) -> Vec<PolicyRule> {
    vec![PolicyRule {
        api_groups: Some(vec!["stampede.dev".into()]),
        resources: Some(vec!["loadtests".into()]),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..PolicyRule::default()
    }]
}

#[test]
fn the_rbac_shipped_with_the_examples_is_least_privilege() {
    // `stampede wait` reads and watches one LoadTest: nothing more.
    for path in [
        "examples/gitops/argocd/postsync-wait-job.yaml",
        "examples/gitops/ci/rbac.yaml",
    ] {
        assert_eq!(
            rules_of(path, "stampede-wait"),
            loadtest_rule(&["get", "list", "watch"]),
            "{path}"
        );
    }
    // The Rollouts analysis also replaces the LoadTest it then waits on.
    assert_eq!(
        rules_of(
            "examples/gitops/argo-rollouts/analysis-template.yaml",
            "stampede-analysis"
        ),
        loadtest_rule(&["get", "list", "watch", "create", "delete"])
    );
}

fn document_named(path: &str, kind: &str, name: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join(path)).unwrap();
    documents(path, &text)
        .into_iter()
        .find(|d| kind_of(d).1 == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{path}: no {kind} {name}"))
}

#[test]
fn argocd_hooks_are_post_sync_and_recreated_on_every_sync() {
    let hook = |document: &Value| {
        let annotations = &document["metadata"]["annotations"];
        (
            annotations["argocd.argoproj.io/hook"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            annotations["argocd.argoproj.io/hook-delete-policy"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            annotations["argocd.argoproj.io/sync-wave"]
                .as_str()
                .unwrap_or("0")
                .to_string(),
        )
    };
    let post_sync = |wave: &str| {
        (
            "PostSync".to_string(),
            "BeforeHookCreation".to_string(),
            wave.to_string(),
        )
    };
    let file = "examples/gitops/argocd/postsync-loadtest.yaml";
    assert_eq!(
        hook(&document_named(file, "LoadTest", "checkout-smoke")),
        post_sync("0")
    );
    let file = "examples/gitops/argocd/postsync-wait-job.yaml";
    assert_eq!(
        hook(&document_named(file, "LoadTest", "checkout-wait")),
        post_sync("0")
    );
    let job = document_named(file, "Job", "checkout-wait-gate");
    // The Job waits after the LoadTest exists.
    assert_eq!(hook(&job), post_sync("1"));
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "stampede-wait");
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "ghcr.io/stampede-dev/stampede:0.1.0");
    assert_eq!(container["command"], json!(["stampede"]));
    assert_eq!(
        container["args"],
        json!([
            "wait",
            "checkout-wait",
            "-n",
            "$(POD_NAMESPACE)",
            "--timeout",
            "30m"
        ])
    );
}

#[test]
fn the_rollout_runs_the_analysis_template_with_its_arguments() {
    let rollouts = "examples/gitops/argo-rollouts/rollout.yaml";
    let templates = "examples/gitops/argo-rollouts/analysis-template.yaml";
    let rollout = document_named(rollouts, "Rollout", "shop");
    let canary = &rollout["spec"]["strategy"]["canary"];
    let analysis = canary["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|step| step.get("analysis"))
        .expect("a canary step runs an analysis");
    let template_name = analysis["templates"][0]["templateName"].as_str().unwrap();
    let template = document_named(templates, "AnalysisTemplate", template_name);
    let mut declared: Vec<&str> = template["spec"]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    let mut passed: Vec<&str> = analysis["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    declared.sort();
    passed.sort();
    assert_eq!(declared, passed);
    // Every {{args.X}} the template uses is declared.
    let template_text = serde_json::to_string(&template).unwrap();
    for used in template_text.split("{{args.").skip(1) {
        let arg = used.split("}}").next().unwrap();
        assert!(
            declared.contains(&arg),
            "{{{{args.{arg}}}}} is not declared"
        );
    }
    // The arguments name the ConfigMap and the LoadTest inlined in it.
    let arg = |name: &str| {
        analysis["args"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap()["value"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let config_map = document_named(templates, "ConfigMap", &arg("manifest"));
    let tests = inlined_loadtests(templates, &config_map);
    assert_eq!(tests.len(), 1);
    assert_eq!(
        tests[0].metadata.name.as_deref(),
        Some(arg("loadtest").as_str())
    );
    // The job ends in `stampede wait`; its init containers recreate the LoadTest first.
    let pod = &template["spec"]["metrics"][0]["provider"]["job"]["spec"]["template"]["spec"];
    assert_eq!(pod["containers"][0]["args"][0], "wait");
    assert_eq!(pod["containers"][0]["command"], json!(["stampede"]));
    let init: Vec<&str> = pod["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["args"][0].as_str().unwrap())
        .collect();
    assert_eq!(init, ["delete", "create"]);
    // Rollouts routes canary traffic through the services it names.
    for service in ["canaryService", "stableService"] {
        let name = canary[service].as_str().unwrap();
        document_named(rollouts, "Service", name);
    }
}

#[test]
fn the_staging_overlay_patches_the_base() {
    let rendered = kubectl_kustomize(&repo_root().join("examples/gitops/flux/overlays/staging"));
    let report = manifest::check_str("staging", &rendered, &Default::default());
    assert_valid("staging", &report);
    let [test] = report.tests.as_slice() else {
        panic!("one LoadTest expected:\n{rendered}")
    };
    let rendered: Value = serde_yaml_ng::from_str(&rendered).unwrap();
    assert_eq!(rendered["metadata"]["namespace"], "shop-staging");
    assert_eq!(rendered["spec"]["scenarios"]["browse"]["vus"], 50);
    assert_eq!(rendered["spec"]["scenarios"]["browse"]["duration"], "3m");
    assert_eq!(
        rendered["spec"]["thresholds"]["http_req_duration"],
        json!(["p(95)<300", "p(99)<800"])
    );
    assert!(
        test.spec
            .thresholds
            .contains_key("http_req_duration{name:search}")
    );
}

/// Flux's verdict on `object` with the Kustomization's `healthCheckExprs`, as kustomize-
/// controller computes it: a status of an older generation is InProgress; then inProgress,
/// failed and current are tried in order; none true is InProgress. An expression that cannot
/// be evaluated (e.g. no status yet) is an error, which Flux retries: InProgress here too.
fn flux_status(exprs: &Value, object: &Value) -> &'static str {
    let observed = object["status"]["observedGeneration"].as_i64();
    let generation = object["metadata"]["generation"].as_i64();
    if let (Some(observed), Some(generation)) = (observed, generation)
        && observed != generation
    {
        return "InProgress";
    }
    let mut context = Context::default();
    for (key, value) in object.as_object().unwrap() {
        context.add_variable_from_value(key.clone(), kube_cel::cel::to_value(value).unwrap());
    }
    for (field, result) in [
        ("inProgress", "InProgress"),
        ("failed", "Failed"),
        ("current", "Current"),
    ] {
        let Some(expression) = exprs[field].as_str() else {
            continue;
        };
        let program = Program::compile(expression)
            .unwrap_or_else(|e| panic!("{field}: {expression} does not parse: {e:?}"));
        match program.execute(&context) {
            Ok(CelValue::Bool(true)) => return result,
            Ok(CelValue::Bool(false)) => {}
            Ok(other) => panic!("{field}: {expression} gave {other:?}, not a bool"),
            Err(_) => return "InProgress",
        }
    }
    "InProgress"
}

#[test]
fn the_flux_kustomization_gates_on_the_loadtest_like_the_argocd_health_check() {
    let path = "examples/gitops/flux/flux-kustomization.yaml";
    let flux = document_named(path, "Kustomization", "shop-loadtest-staging");
    let spec = &flux["spec"];
    // It applies the staging overlay, and the LoadTest it checks is the one the overlay renders.
    let overlay = repo_root().join(spec["path"].as_str().unwrap().trim_start_matches("./"));
    let rendered: Value = serde_yaml_ng::from_str(&kubectl_kustomize(&overlay)).unwrap();
    let check = &spec["healthChecks"][0];
    assert_eq!(check["kind"], "LoadTest");
    assert_eq!(check["apiVersion"], rendered["apiVersion"]);
    assert_eq!(check["name"], rendered["metadata"]["name"]);
    assert_eq!(check["namespace"], rendered["metadata"]["namespace"]);
    let exprs = &spec["healthCheckExprs"][0];
    assert_eq!(exprs["kind"], "LoadTest");
    assert_eq!(exprs["apiVersion"], "stampede.dev/v1alpha1");

    // The statuses the operator writes along a run, and Flux's reading of each.
    let condition = |kind: &str, status: &str, reason: &str| {
        json!({"type": kind, "status": status, "reason": reason, "message": "m",
               "observedGeneration": 1, "lastTransitionTime": "2025-06-01T10:00:00Z"})
    };
    let with = |generation: i64, status: Option<Value>| {
        let mut object = rendered.clone();
        object["metadata"]["generation"] = json!(generation);
        if let Some(status) = status {
            object["status"] = status;
        }
        object
    };
    let running = |phase: &str| {
        json!({"phase": phase, "observedGeneration": 1, "message": "m",
               "conditions": [condition("Complete", "False", "Provisioning"), condition("Passed", "Unknown", "Provisioning")]})
    };
    let over = |phase: &str, passed: bool, reason: &str| {
        json!({"phase": phase, "observedGeneration": 1, "message": "m",
               "conditions": [condition("Complete", "True", reason),
                              condition("Passed", if passed { "True" } else { "False" }, reason)]})
    };
    let cases = [
        (with(1, None), "InProgress"),
        (
            with(
                1,
                Some(json!({"phase": "Pending", "observedGeneration": 1})),
            ),
            "InProgress",
        ),
        (with(1, Some(running("Provisioning"))), "InProgress"),
        (with(1, Some(running("Running"))), "InProgress"),
        (with(1, Some(running("Aborting"))), "InProgress"),
        (
            with(1, Some(over("Succeeded", true, "ThresholdsPassed"))),
            "Current",
        ),
        (
            with(1, Some(over("Failed", false, "ThresholdsFailed"))),
            "Failed",
        ),
        (with(1, Some(over("Errored", false, "Errored"))), "Failed"),
        (with(1, Some(over("Invalid", false, "Invalid"))), "Failed"),
        (with(1, Some(over("Aborted", false, "Aborted"))), "Failed"),
        // A new spec: the previous run's verdict does not count.
        (
            with(2, Some(over("Succeeded", true, "ThresholdsPassed"))),
            "InProgress",
        ),
        (
            with(2, Some(over("Failed", false, "ThresholdsFailed"))),
            "InProgress",
        ),
    ];
    for (object, expected) in &cases {
        let phase = object["status"]["phase"].as_str().unwrap_or("no status");
        assert_eq!(flux_status(exprs, object), *expected, "{phase}");
        // The Argo CD health check reads the same status the same way.
        let argocd = match *expected {
            "Current" => "Healthy",
            "Failed" => "Degraded",
            _ => "Progressing",
        };
        assert_eq!(argocd_health(object).0, argocd, "{phase}");
    }
}

#[test]
fn the_ci_pipelines_apply_the_ci_loadtest_and_gate_on_it() {
    let loadtest = document_named(
        "examples/gitops/ci/loadtest.yaml",
        "LoadTest",
        "checkout-ci",
    );
    let name = loadtest["metadata"]["name"].as_str().unwrap();

    let path = "examples/gitops/ci/github-actions.yaml";
    let text = std::fs::read_to_string(repo_root().join(path)).unwrap();
    let workflow = &documents(path, &text)[0];
    let job = &workflow["jobs"]["loadtest"];
    assert_eq!(job["env"]["LOADTEST"], name);
    let steps: Vec<String> = job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str().map(str::to_string))
        .collect();
    let script = steps.join("\n");
    for needle in [
        "apply -f examples/gitops/ci/loadtest.yaml",
        "wait --for=condition=Complete \"lt/$LOADTEST\" --timeout=30m",
        "jsonpath='{.status.conditions[?(@.type==\"Passed\")].status}'",
        "!= \"True\"",
    ] {
        assert!(
            script.contains(needle),
            "{path}: no {needle:?} in\n{script}"
        );
    }

    let path = "examples/gitops/ci/gitlab-ci.yml";
    let text = std::fs::read_to_string(repo_root().join(path)).unwrap();
    let pipeline = &documents(path, &text)[0];
    let job = &pipeline["loadtest"];
    assert_eq!(job["variables"]["LOADTEST"], name);
    let script: Vec<&str> = job["script"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let script = script.join("\n");
    for needle in [
        "apply -f examples/gitops/ci/loadtest.yaml",
        "--image=ghcr.io/stampede-dev/stampede:0.1.0",
        "\"serviceAccountName\": \"stampede-wait\"",
        "-- wait \"$LOADTEST\" -n \"$NAMESPACE\" --timeout 30m",
    ] {
        assert!(
            script.contains(needle),
            "{path}: no {needle:?} in\n{script}"
        );
    }
    let overrides = script
        .split("--overrides='")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap();
    serde_json::from_str::<Value>(overrides).expect("--overrides is JSON");
}

/// The Argo CD Job hook, applied as Argo CD would (`kubectl apply`) to the API server stand-in:
/// its pod runs `stampede wait` as the example's ServiceAccount — so the Role must be enough —
/// and the Job completes when the LoadTest passed and fails when it failed.
#[tokio::test]
async fn the_argocd_job_hook_gates_on_stampede_wait_in_a_cluster() {
    assert!(kubectl_available(), "kubectl is missing");
    let mut cluster = Cluster::start().await;
    if cluster.is_real() {
        return; // Without the operator's run there, the status below would be made up.
    }
    cluster.start_kubelet().await;
    cluster.install_crd("crds/loadtest.yaml", "loadtests.stampede.dev");
    let ns = cluster.namespace("gitops-hook").await;
    let file = repo_root().join("examples/gitops/argocd/postsync-wait-job.yaml");
    let file = file.to_str().unwrap();
    cluster.kubectl_ok(&["-n", &ns, "apply", "-f", file]);

    let tests: Api<LoadTest> = Api::namespaced(cluster.client().await, &ns);
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": status, "reason": reason, "message": message,
               "observedGeneration": 1, "lastTransitionTime": "2025-06-01T10:00:00Z"})
    };
    let set_status = |status: Value| {
        let tests = tests.clone();
        async move {
            tests
                .patch_status(
                    "checkout-wait",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": status})),
                )
                .await
                .unwrap();
        }
    };
    let health = || {
        let json = cluster.kubectl_ok(&["-n", &ns, "get", "lt", "checkout-wait", "-o", "json"]);
        argocd_health(&serde_json::from_str(&json).unwrap())
    };
    assert_eq!(health().0, "Progressing");

    // Running, then passed: the Job completes.
    set_status(json!({"phase": "Running", "observedGeneration": 1,
        "progress": {"elapsedSeconds": 3.0, "totalSeconds": 60.0, "vus": 20, "rps": 38.0, "p95": "2ms"}}))
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    set_status(json!({"phase": "Succeeded", "observedGeneration": 1, "message": "all thresholds passed",
        "thresholds": [{"metric": "http_req_duration", "threshold": "p(95)<500", "value": 2.1, "ok": true}],
        "conditions": [condition("Complete", "True", "Finished", "run 1 finished"),
                       condition("Passed", "True", "ThresholdsPassed", "all thresholds passed")]}))
    .await;
    cluster.kubectl_ok(&[
        "-n",
        &ns,
        "wait",
        "--for=condition=complete",
        "job/checkout-wait-gate",
        "--timeout=90s",
    ]);
    let log = cluster.kubectl_ok(&["-n", &ns, "logs", "job/checkout-wait-gate"]);
    assert!(log.contains("loadtest/checkout-wait: PASSED"), "{log}");
    assert_eq!(health().0, "Healthy");

    // The next sync: the hook Job is recreated; this time the test failed.
    cluster.kubectl_ok(&["-n", &ns, "delete", "job", "checkout-wait-gate", "--wait"]);
    set_status(json!({"phase": "Failed", "observedGeneration": 1,
        "message": "http_req_duration p(95)=612.5ms, want <500",
        "thresholds": [{"metric": "http_req_duration", "threshold": "p(95)<500", "value": 612.5, "ok": false}],
        "conditions": [condition("Complete", "True", "Finished", "run 1 finished"),
                       condition("Passed", "False", "ThresholdsFailed", "http_req_duration p(95)=612.5ms, want <500")]}))
    .await;
    cluster.kubectl_ok(&["-n", &ns, "apply", "-f", file]);
    cluster.kubectl_ok(&[
        "-n",
        &ns,
        "wait",
        "--for=condition=failed",
        "job/checkout-wait-gate",
        "--timeout=90s",
    ]);
    let log = cluster.kubectl_ok(&["-n", &ns, "logs", "job/checkout-wait-gate"]);
    assert!(log.contains("loadtest/checkout-wait: FAILED"), "{log}");
    assert_eq!(
        health(),
        (
            "Degraded".to_string(),
            "Failed: http_req_duration p(95)=612.5ms, want <500".to_string()
        )
    );
    let jobs: Api<Job> = Api::namespaced(cluster.client().await, &ns);
    let job = jobs.get("checkout-wait-gate").await.unwrap();
    assert_eq!(job.status.and_then(|s| s.succeeded).unwrap_or(0), 0);
    cluster.drop_namespace(&ns).await;
}
