//! Unit tests of the shared validation.

use super::*;
use crate::spec::LoadTest;

fn parse(yaml: &str) -> LoadTest {
    serde_yaml_ng::from_str(yaml).expect("test manifest parses")
}

fn problems(yaml: &str) -> Vec<String> {
    validate(&parse(yaml))
        .iter()
        .map(ToString::to_string)
        .collect()
}

const VALID: &str = r#"
apiVersion: stampede.dev/v1alpha1
kind: LoadTest
metadata: {name: shop}
spec:
  defaults: {baseUrl: "http://127.0.0.1:8080"}
  env: [{name: PASSWORD, value: secret}]
  data:
    users: {rows: [{username: a}, {username: b}], select: unique}
  setup:
    - {name: admin, request: {method: POST, url: /auth/token}, capture: {token: {json: "$.token"}}}
  scenarios:
    spike:
      executor: ramping-vus
      stages: [{duration: 20s, target: 100}, {duration: 30s, target: 0}]
      flow: buy
  flows:
    buy:
      - name: login
        request: {method: POST, url: /api/login, json: {username: "${data.users.username}", password: "${env.PASSWORD}"}}
        checks: {"login ok": "status == 200"}
        capture: {session: {json: "$.session_id"}}
      - group: shop
        steps:
          - name: search
            request: {url: "/api/search", headers: {Cookie: "session_id=${session}", Authorization: "Bearer ${setup.token}"}}
      - sleep: 1s
  thresholds:
    http_req_duration: ["p(95)<500"]
    "http_req_duration{name:login}": [{threshold: "p(99)<1000", abortOnFail: true, delayAbortEval: 10s}]
    "group_duration{group:::shop}": ["avg<200"]
    http_req_failed: ["rate<0.01"]
    checks: ["rate>0.99"]
"#;

#[test]
fn a_complete_manifest_is_valid() {
    assert_eq!(problems(VALID), Vec::<String>::new());
}

#[test]
fn shortcuts_make_the_default_scenario_like_k6() {
    let mut spec = LoadTestSpec::default();
    let only = |spec: &LoadTestSpec| effective_scenarios(spec).remove("default").unwrap();
    assert_eq!(only(&spec).executor, crate::Executor::PerVuIterations);
    spec.vus = Some(5);
    let scenario = only(&spec);
    assert_eq!(scenario.executor, crate::Executor::SharedIterations);
    assert_eq!(scenario.iterations, Some(5));
    spec.stages = vec![crate::Stage {
        duration: "10s".into(),
        target: 3,
    }];
    let scenario = only(&spec);
    assert_eq!(scenario.executor, crate::Executor::RampingVus);
    assert_eq!(scenario.start_vus, Some(5));
    spec.duration = Some("30s".into());
    assert_eq!(only(&spec).executor, crate::Executor::ConstantVus);
    spec.iterations = Some(10);
    let scenario = only(&spec);
    assert_eq!(scenario.executor, crate::Executor::SharedIterations);
    assert_eq!(scenario.max_duration.as_deref(), Some("30s"));
}

#[test]
fn reports_every_problem_at_once_with_paths() {
    let yaml = VALID
        .replace("duration: 30s, target: 0", "duration: 3x, target: 0")
        .replace("\"p(95)<500\"", "\"p95<500\"")
        .replace("session_id=${session}", "session_id=${sesion}");
    let found = problems(&yaml);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(found.iter().any(|p| {
        p.starts_with("spec.scenarios.spike.stages[1].duration: \"3x\" is not a duration")
    }));
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("spec.thresholds.http_req_duration[0]: "))
    );
    assert!(
        found
            .iter()
            .any(|p| p.contains(r#"(did you mean "session"?)"#))
    );
}

#[test]
fn executor_rules() {
    let base = |scenario: &str| {
        format!(
            "metadata: {{name: t}}\nspec:\n  flows: {{default: [{{sleep: 1s}}]}}\n  scenarios:\n    s: {scenario}\n"
        )
    };
    let cases = [
        (
            "{executor: constant-vus, vus: 2}",
            "spec.scenarios.s.duration: is required",
        ),
        (
            "{executor: constant-vus, duration: 500ms}",
            "shorter than k6's minimum of 1s",
        ),
        (
            "{executor: shared-iterations, vus: 10, iterations: 5}",
            "requires iterations >= vus",
        ),
        (
            "{executor: constant-arrival-rate, duration: 1m, preAllocatedVUs: 5}",
            "spec.scenarios.s.rate: is required",
        ),
        (
            "{executor: constant-arrival-rate, rate: 5, duration: 1m}",
            "spec.scenarios.s.preAllocatedVUs: is required",
        ),
        (
            "{executor: ramping-arrival-rate, stages: [{duration: 1s, target: 1}], preAllocatedVUs: 5, maxVUs: 2}",
            "must be >= preAllocatedVUs",
        ),
        (
            "{executor: ramping-vus, stages: []}",
            "needs at least one stage",
        ),
        (
            "{executor: constant-vus, duration: 1m, stages: [{duration: 1s, target: 1}]}",
            "`stages` is not an option of the constant-vus executor",
        ),
        (
            "{executor: ramping-vus, startVUs: 0, stages: [{duration: 1s, target: 0}]}",
            "no VU would ever run",
        ),
        (
            "{executor: constant-vus, duration: 1m, flow: nope}",
            "names the flow \"nope\"",
        ),
    ];
    for (scenario, expected) in cases {
        let found = problems(&base(scenario));
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "{scenario}: {found:#?}"
        );
    }
}

#[test]
fn stages_with_scenarios_is_rejected_like_k6() {
    let yaml = "metadata: {name: t}\nspec:\n  stages: [{duration: 1s, target: 1}]\n  flows: {default: [{sleep: 1s}]}\n  scenarios: {s: {executor: constant-vus, duration: 1s}}\n";
    let found = problems(yaml);
    assert!(
        found.iter().any(|p| p
            .starts_with("spec.stages: using `stages` and `scenarios` together is not allowed")),
        "{found:#?}"
    );
}

#[test]
fn sub_metric_filters_must_name_something_that_exists() {
    let yaml = VALID.replace(
        "http_req_duration{name:login}",
        "http_req_duration{name:logn}",
    );
    let found = problems(&yaml);
    assert!(
        found.iter().any(
            |p| p.contains("no step is named \"logn\"") && p.contains("did you mean \"login\"")
        ),
        "{found:#?}"
    );
}

#[test]
fn aggregation_must_fit_metric_type() {
    let yaml = VALID.replace(
        "http_req_failed: [\"rate<0.01\"]",
        "http_req_failed: [\"p(95)<1\"]",
    );
    let found = problems(&yaml);
    assert!(
        found
            .iter()
            .any(|p| p.contains("p(95) is not an aggregation of the rate metric")),
        "{found:#?}"
    );
}

#[test]
fn variables_must_be_captured_before_use() {
    let yaml = VALID
        .replace("Cookie: \"session_id=${session}\"", "Cookie: \"x\"")
        .replace("password: \"${env.PASSWORD}\"", "password: \"${session}\"");
    let found = problems(&yaml);
    assert!(
        found
            .iter()
            .any(|p| p.contains("before the step that captures it")),
        "{found:#?}"
    );
}

#[test]
fn missing_name_and_relative_url_without_base() {
    let yaml = "metadata: {}\nspec:\n  flows: {default: [{request: {url: /x}}]}\n";
    let found = problems(yaml);
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("metadata.name: is missing")),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|p| p.contains("is relative but spec.defaults.baseUrl is not set")),
        "{found:#?}"
    );
}

#[test]
fn values_over_the_crds_limits_are_problems_with_the_limit() {
    let long_name = "n".repeat(300);
    let flows: String = (0..65)
        .map(|i| format!("    f{i}: [{{sleep: 1s}}]\n"))
        .collect();
    let yaml = format!(
        "apiVersion: stampede.dev/v1alpha1\nkind: LoadTest\nmetadata: {{name: big}}\nspec:\n  defaults: {{baseUrl: \"http://127.0.0.1:8080\"}}\n  flows:\n    default: [{{name: {long_name}, request: {{url: /}}}}]\n{flows}"
    );
    let found = problems(&yaml);
    assert!(
        found.contains(
            &"spec.flows.default[0].name: is 300 characters long; the CRD allows at most 256 (a Kubernetes API server refuses it)"
                .to_string()
        ),
        "{found:#?}"
    );
    assert!(
        found.contains(
            &"spec.flows: has 66 entries; the CRD allows at most 64 (a Kubernetes API server refuses it)"
                .to_string()
        ),
        "{found:#?}"
    );
    // The CRD carries the same limits.
    let crd = serde_json::to_value(crate::crd::definition()).unwrap();
    let step_name = crd
        .pointer("/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/flows/additionalProperties/items/properties/name/maxLength");
    assert_eq!(step_name, Some(&serde_json::json!(256)));
    assert!(problems(VALID).is_empty());
}

#[test]
fn a_base_url_from_static_env_values_is_checked_unless_something_can_replace_them() {
    let manifest = |env: &str, scenario_env: &str| {
        format!(
            r#"
apiVersion: stampede.dev/v1alpha1
kind: LoadTest
metadata: {{name: shop}}
spec:
  env: [{env}]
  defaults: {{baseUrl: "${{env.HOST}}:8080"}}
  scenarios: {{s: {{executor: constant-vus, vus: 1, duration: 5s{scenario_env}}}}}
  flows: {{default: [{{name: home, request: {{url: /}}}}]}}
"#
        )
    };
    let wrong = problems(&manifest("{name: HOST, value: shop}", ""));
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    assert!(wrong[0].contains(r#"renders to "shop:8080""#), "{wrong:?}");
    let right = manifest("{name: HOST, value: \"http://shop\"}", "");
    assert_eq!(problems(&right), Vec::<String>::new());
    // A Secret's value, a scenario's own env, or `-e HOST=...` may make it a URL: not checked.
    let secret = "{name: HOST, valueFrom: {secretKeyRef: {name: s, key: k}}}";
    assert_eq!(problems(&manifest(secret, "")), Vec::<String>::new());
    let per_scenario = manifest("{name: HOST, value: shop}", ", env: {HOST: \"http://a\"}");
    assert_eq!(problems(&per_scenario), Vec::<String>::new());
    let options = Options {
        extra_env: ["HOST".to_string()].into(),
    };
    let test = parse(&manifest("{name: HOST, value: shop}", ""));
    assert!(validate_spec(&test.spec, &options).is_empty());
}
