//! The CRD cases: each kind of defect a real server refuses at CRD admission (and similar CRDs it
//! accepts), the LoadTest CRD with its old `has(self.sleep)` step rule, the LoadTest CRD itself,
//! and refused updates of it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stampede_tests::cluster::repo_path;

use super::fixtures::{APPLY, CRDS, loadtest_crd, loadtests};
use super::harness::{Pair, Request, verbatim, without_cost_factors};

/// A CRD of group `differential.stampede.dev` whose version has `schema`.
fn probe_crd(plural: &str, schema: Value) -> Value {
    let kind = format!("{}{}", plural[..1].to_uppercase(), &plural[1..]);
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.differential.stampede.dev")},
        "spec": {"group": "differential.stampede.dev", "scope": "Namespaced",
                 "names": {"plural": plural, "singular": plural, "kind": kind, "listKind": format!("{kind}List")},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": schema}}]}
    })
}

/// A root schema whose `spec` has `properties` and `rules`.
fn spec_schema(properties: Value, rules: Value) -> Value {
    let mut spec = json!({"type": "object", "properties": properties});
    if rules.as_array().is_some_and(|r| !r.is_empty()) {
        spec["x-kubernetes-validations"] = rules;
    }
    json!({"type": "object", "properties": {"spec": spec}})
}

/// The CRDs with the defects a real server refuses (and a few it accepts).
fn defective_crds() -> Vec<(&'static str, Value)> {
    let string = json!({"a": {"type": "string"}});
    let many_rules: Vec<Value> = (0..40)
        .map(|i| json!({"rule": format!("!has(self.a) || self.a != {i}")}))
        .collect();
    let few_rules: Vec<Value> = many_rules[..10].to_vec();
    let item = |rules: Vec<Value>| {
        json!({"l": {"type": "array", "items": {"type": "object",
            "properties": {"a": {"type": "integer"}}, "x-kubernetes-validations": rules}}})
    };
    vec![
        (
            "CEL syntax error",
            spec_schema(string.clone(), json!([{"rule": "self.a == "}])),
        ),
        (
            "CEL syntax errors, two of them",
            spec_schema(string.clone(), json!([{"rule": "self.a === 'x' || (self"}])),
        ),
        (
            "a rule reading an untyped field",
            spec_schema(
                json!({"a": {"type": "string"}, "u": {"x-kubernetes-preserve-unknown-fields": true}}),
                json!([{"rule": "has(self.u) || self.a == 'x'"}]),
            ),
        ),
        (
            "a rule reading an undeclared field",
            spec_schema(
                string.clone(),
                json!([{"rule": "self.a == 'x' && self.zz == 1"}]),
            ),
        ),
        (
            "a rule comparing a string with an int",
            spec_schema(
                string.clone(),
                json!([{"rule": "self.a > 5", "message": "a > 5"}]),
            ),
        ),
        (
            "a rule naming an undeclared variable",
            spec_schema(string.clone(), json!([{"rule": "foo.a == 1"}])),
        ),
        (
            "a rule that is not a bool",
            spec_schema(string.clone(), json!([{"rule": "self.a"}])),
        ),
        (
            "a messageExpression that is not a string",
            spec_schema(
                json!({"n": {"type": "integer"}}),
                json!([{"rule": "true", "messageExpression": "self.n"}]),
            ),
        ),
        (
            "oldSelf on list items",
            spec_schema(
                json!({"l": {"type": "array", "items": {"type": "string",
                    "x-kubernetes-validations": [{"rule": "self == oldSelf"}]}}}),
                json!([]),
            ),
        ),
        (
            "an empty rule and an unsupported reason",
            spec_schema(
                string.clone(),
                json!([{"rule": "  "}, {"rule": "true", "reason": "Nope"}]),
            ),
        ),
        (
            "a fieldPath that does not exist",
            spec_schema(
                string.clone(),
                json!([{"rule": "true", "fieldPath": ".zz"}]),
            ),
        ),
        (
            "a rule over the per-rule cost budget",
            spec_schema(
                json!({"l": {"type": "array", "items": {"type": "string"}}}),
                json!([{"rule": "self.l.all(x, self.l.all(y, x == y))"}]),
            ),
        ),
        (
            "the same rule with bounded lists, within budget",
            spec_schema(
                json!({"l": {"type": "array", "maxItems": 10,
                             "items": {"type": "string", "maxLength": 10}}}),
                json!([{"rule": "self.l.all(x, self.l.all(y, x == y))"}]),
            ),
        ),
        (
            "a rule just over the per-rule budget (about 14 units, a million times)",
            spec_schema(
                item(vec![
                    json!({"rule": "!has(self.a) || (self.a != 1 && self.a != 2 && \
                    self.a != 3 && self.a != 4 && self.a != 5 && self.a != 6)"}),
                ]),
                json!([]),
            ),
        ),
        (
            "a rule under the per-rule budget (about 6 units, a million times)",
            spec_schema(
                item(vec![
                    json!({"rule": "!has(self.a) || (self.a != 1 && self.a != 2)"}),
                ]),
                json!([]),
            ),
        ),
        (
            "rules over the CRD's total cost budget",
            spec_schema(item(many_rules), json!([])),
        ),
        (
            "the same kind of rules within the total budget",
            spec_schema(item(few_rules), json!([])),
        ),
        (
            "non-structural: a property without a type",
            spec_schema(
                json!({"a": {"description": "x"}, "b": {"type": "array"}}),
                json!([]),
            ),
        ),
        (
            "non-structural: no type at the root",
            json!({"properties": {"spec": {"type": "object"}}}),
        ),
        (
            "non-structural: a type under anyOf",
            spec_schema(
                json!({"m": {"type": "string", "anyOf": [{"type": "string"}]}}),
                json!([]),
            ),
        ),
        (
            "properties and additionalProperties together",
            spec_schema(
                json!({"m": {"type": "object", "properties": {"x": {"type": "string"}},
                             "additionalProperties": {"type": "string"}}}),
                json!([]),
            ),
        ),
        (
            "an unknown type",
            spec_schema(json!({"m": {"type": "strin"}}), json!([])),
        ),
        (
            "a list type on a string",
            spec_schema(
                json!({"m": {"type": "string", "x-kubernetes-list-type": "set"}}),
                json!([]),
            ),
        ),
        (
            "x-kubernetes-preserve-unknown-fields: false",
            spec_schema(
                json!({"m": {"type": "object", "x-kubernetes-preserve-unknown-fields": false}}),
                json!([]),
            ),
        ),
        (
            "an embedded resource without properties",
            spec_schema(
                json!({"e": {"type": "object", "x-kubernetes-embedded-resource": true}}),
                json!([]),
            ),
        ),
        (
            "metadata with more than names",
            json!({"type": "object", "properties": {"metadata": {"type": "object", "description": "d"}}}),
        ),
        (
            "a rule on a node CEL cannot see",
            spec_schema(
                json!({"u": {"x-kubernetes-preserve-unknown-fields": true,
                             "x-kubernetes-validations": [{"rule": "true"}]}}),
                json!([]),
            ),
        ),
        (
            "several defects at once",
            spec_schema(json!({"a": {}, "b": {"type": "strin"}}), json!([])),
        ),
        (
            "a well-typed rule set",
            spec_schema(
                json!({"a": {"type": "string", "maxLength": 20}, "n": {"type": "integer"},
                       "l": {"type": "array", "maxItems": 5, "items": {"type": "string", "maxLength": 5}},
                       "m": {"type": "object", "maxProperties": 5, "additionalProperties": {"type": "integer"}}}),
                json!([
                    {"rule": "!has(self.a) || self.a.startsWith('x')", "message": "a starts with x"},
                    {"rule": "!has(self.l) || self.l.all(x, x.size() < 5)", "messageExpression": "'bad ' + self.a"},
                    {"rule": "!has(self.m) || self.m.exists(k, self.m[k] > 0)", "reason": "FieldValueForbidden", "fieldPath": ".m"},
                    {"rule": "!has(self.n) || type(self.n) == int && self.n >= 0"}
                ]),
            ),
        ),
    ]
}

/// Every defective CRD, on both servers.
pub async fn defects(pair: &mut Pair) {
    for (index, (label, schema)) in defective_crds().into_iter().enumerate() {
        let crd = probe_crd(&format!("case{index}s"), schema);
        pair.compare(
            label,
            &Request::json("POST", CRDS, &crd),
            &without_cost_factors,
        )
        .await;
    }
    let text =
        std::fs::read_to_string(repo_path("tests/fixtures/widget-crd.yaml")).expect("the CRD");
    let widget: Value = serde_yaml_ng::from_str(&text).expect("YAML");
    pair.compare(
        "the conformance tests' widget CRD",
        &Request::json("POST", CRDS, &widget),
        &verbatim,
    )
    .await;
    // Today's LoadTest CRD with its step rule reverted to the has(self.sleep) form.
    let old = loadtest_crd_with_sleep_rule();
    let (real, stand_in) = pair
        .compare(
            "the LoadTest CRD with the has(self.sleep) step rule",
            &Request::json("POST", CRDS, &old),
            &verbatim,
        )
        .await;
    for outcome in [&real, &stand_in] {
        assert_eq!(outcome.verdict(), "422 Invalid", "{}", outcome.message);
        assert!(
            outcome
                .message
                .contains("compilation failed: ERROR: <input>:1:35: undefined field 'sleep'"),
            "{}",
            outcome.message
        );
    }
}

/// Installs crds/loadtest.yaml on both and waits until the real server serves LoadTests.
pub async fn install_loadtest_crd(pair: &mut Pair) {
    let (real, stand_in) = pair
        .compare(
            "the LoadTest CRD",
            &Request::json("POST", CRDS, &loadtest_crd()),
            &verbatim,
        )
        .await;
    assert_eq!((real.code, stand_in.code), (201, 201), "{}", real.message);
    // The real server serves the new resource once its controllers have established it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = pair.real.send(&Request::get(&loadtests("default"))).await;
        if listed.code == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "LoadTests are not served: {:?}",
            listed.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The LoadTest CRD with its step rule in the old `has(self.sleep)` form.
fn loadtest_crd_with_sleep_rule() -> Value {
    let text = std::fs::read_to_string(repo_path("crds/loadtest.yaml")).expect("the CRD");
    let old = text.replace(
        "!has(self.request) || !has(self.group)",
        "(has(self.request) ? 1 : 0) + (has(self.sleep) ? 1 : 0) + (has(self.group) ? 1 : 0) == 1",
    );
    assert_ne!(old, text, "the step rule is in the CRD");
    serde_yaml_ng::from_str(&old).expect("YAML")
}

/// A change made to a CRD before it is sent.
type Change = dyn Fn(&mut Value);

/// Updates of the installed LoadTest CRD are admitted like creations: server-side apply and
/// PUT of defective versions are refused, and the CRD stays as it was.
pub async fn updates(pair: &mut Pair) {
    let crd_path = format!("{CRDS}/loadtests.stampede.dev");
    pair.compare(
        "server-side apply of the LoadTest CRD with the has(self.sleep) step rule",
        &Request::patch(
            &format!("{crd_path}?fieldManager=differential&force=true"),
            APPLY,
            &loadtest_crd_with_sleep_rule(),
        ),
        &verbatim,
    )
    .await;
    let (real, stand_in) = pair.both(&Request::get(&crd_path)).await;
    let versions = [&real, &stand_in].map(|o| {
        o.body["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    let changes: [(&str, &Change); 2] = [
        ("PUT of the LoadTest CRD with an untyped property", &|crd| {
            let spec =
                &mut crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
            spec["properties"]["untyped"] = json!({"description": "no type"});
        }),
        ("PUT of the LoadTest CRD with a rule over budget", &|crd| {
            let spec =
                &mut crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
            spec["properties"]["tags"] = json!({"type": "array", "items": {"type": "string"}});
            if let Some(rules) = spec["x-kubernetes-validations"].as_array_mut() {
                rules.push(json!({"rule": "!has(self.tags) || self.tags.all(a, self.tags.all(b, a != b || a == b))"}));
            }
        }),
    ];
    for (label, change) in changes {
        let requests: Vec<Request> = versions
            .iter()
            .map(|version| {
                let mut crd = loadtest_crd();
                crd["metadata"]["resourceVersion"] = json!(version);
                change(&mut crd);
                Request::json("PUT", &crd_path, &crd)
            })
            .collect();
        pair.compare_each(label, &requests[0], &requests[1], &without_cost_factors)
            .await;
    }
}
