//! Unit tests of the flow model: what a compiled spec holds, what its steps read, and the
//! problems a spec that does not parse gets.

use std::time::Duration;

use super::*;
use crate::spec::LoadTest;
use crate::template::Reference;

fn spec(yaml_spec: &str) -> LoadTestSpec {
    let yaml = format!(
        "apiVersion: stampede.dev/v1alpha1\nkind: LoadTest\nmetadata: {{name: t}}\nspec:\n{yaml_spec}"
    );
    let test: LoadTest = serde_yaml_ng::from_str(&yaml).expect("test manifest parses");
    test.spec
}

fn compiled(yaml_spec: &str) -> Flows {
    compile(&spec(yaml_spec)).unwrap_or_else(|problems| panic!("{problems:?}"))
}

fn problems(yaml_spec: &str) -> Vec<String> {
    compile(&spec(yaml_spec))
        .expect_err("the spec has problems")
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn request(step: &Step) -> &Request {
    match &step.action {
        Action::Request(request) => request,
        other => panic!("not a request: {other:?}"),
    }
}

const SHOP: &str = r#"  defaults:
    baseUrl: "http://${env.HOST}:8080"
    timeout: 5s
    maxRedirects: 3
    expectedStatuses: [200, "300-304"]
    minIterationDuration: 1500ms
    headers: {X-Client: stampede, Accept: "*/*"}
  env: [{name: HOST, value: shop}]
  setup:
    - {name: admin, request: {method: post, url: /auth/token}, capture: {token: {json: "$.token"}}}
  flows:
    buy:
      - name: login
        request:
          method: POST
          url: /api/login
          headers: {accept: application/json}
          json: {user: "${setup.token}", n: 3}
          timeout: 2s
          expectedStatuses: [409]
          maxRedirects: 0
          tags: {name: sign-in, tier: gold}
        checks: {"login ok": "status == 200"}
        capture: {session: {header: X-Session}}
      - sleep: {min: 1s, max: 3s}
      - group: cart
        if: "${session} != null"
        steps:
          - request: {url: "/cart?id=1", query: {page: "${iter}"}}
            checks: {"has items": "json(\"$.items\") != null", "login ok": "status < 300"}
          - sleep: 250ms
"#;

#[test]
fn a_request_carries_its_defaults_and_its_own_overrides() {
    let flows = compiled(SHOP);
    let defaults = &flows.defaults;
    assert_eq!(
        defaults.base_url.as_ref().unwrap().to_string(),
        "http://${env.HOST}:8080"
    );
    assert_eq!(defaults.timeout, Duration::from_secs(5));
    assert_eq!(defaults.max_redirects, 3);
    assert_eq!(
        defaults.expected_statuses.ranges(),
        [(200, 200), (300, 304)]
    );
    assert_eq!(
        defaults.min_iteration_duration,
        Some(Duration::from_millis(1500))
    );

    let buy = &flows.get("buy").expect("flow buy").steps;
    let login = request(&buy[0]);
    assert_eq!(login.method, Method::Post);
    assert_eq!(login.url.as_literal(), Some("/api/login"));
    // The request's `accept` replaces the default `Accept` and moves to the end.
    let headers: Vec<(&str, String)> = login
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.to_string()))
        .collect();
    assert_eq!(
        headers,
        [
            ("X-Client", "stampede".to_string()),
            ("accept", "application/json".to_string())
        ]
    );
    assert_eq!(login.timeout, Duration::from_secs(2));
    assert_eq!(login.max_redirects, 0);
    assert!(login.expected_statuses.contains(409));
    assert!(!login.expected_statuses.contains(200));
    assert_eq!(login.name, "sign-in");
    assert_eq!(login.tags, [("tier".to_string(), "gold".to_string())]);
    assert_eq!(login.body.content_type(), Some("application/json"));
    assert!(!login.body.is_literal());

    // Setup's method is written in lower case; the defaults apply unchanged.
    let admin = request(&flows.setup.steps[0]);
    assert_eq!(admin.method, Method::Post);
    assert_eq!(admin.timeout, Duration::from_secs(5));
    assert_eq!(admin.max_redirects, 3);
    assert!(admin.expected_statuses.contains(302));
    assert!(!admin.expected_statuses.contains(305));
    assert_eq!(admin.headers.len(), 2);
}

#[test]
fn sleeps_groups_and_conditions_are_parsed_values() {
    let flows = compiled(SHOP);
    let buy = &flows.flows["buy"].steps;
    match &buy[1].action {
        Action::Sleep(sleep) => assert_eq!(
            *sleep,
            Sleep {
                min: Duration::from_secs(1),
                max: Duration::from_secs(3)
            }
        ),
        other => panic!("{other:?}"),
    }
    let Action::Group(group) = &buy[2].action else {
        panic!("{:?}", buy[2].action);
    };
    assert_eq!(group.tag, "::cart");
    assert_eq!(
        buy[2].condition.as_ref().map(Expr::source),
        Some("${session} != null")
    );
    let cart = request(&group.steps[0]);
    assert_eq!(cart.method, Method::Get);
    // The name is the URL without its query when neither a tag nor a step name gives one.
    assert_eq!(cart.name, "/cart");
    assert_eq!(cart.query.len(), 1);
    match &group.steps[1].action {
        Action::Sleep(sleep) => {
            assert_eq!(sleep.min, Duration::from_millis(250));
            assert_eq!(sleep.max, sleep.min);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_step_reads_the_body_only_when_an_expression_or_capture_does() {
    let flows = compiled(SHOP);
    let buy = &flows.flows["buy"].steps;
    // A header capture and a status check keep no body.
    assert!(!buy[0].reads_response_body());
    let Action::Group(group) = &buy[2].action else {
        panic!()
    };
    assert!(group.steps[0].reads_response_body());

    let flows = compiled(
        r#"  flows:
    f:
      - request: {url: "http://x/"}
        checks: {"mentions body in a header": "header(\"x-body\") == \"json(\""}
      - request: {url: "http://x/"}
        checks: {"reads it": "body contains \"ok\""}
      - request: {url: "http://x/"}
        capture: {id: {regex: "id=(\\d+)"}}
      - request: {url: "http://x/"}
        capture: {c: {cookie: session}}
"#,
    );
    let reads: Vec<bool> = flows.flows["f"]
        .steps
        .iter()
        .map(Step::reads_response_body)
        .collect();
    assert_eq!(reads, [false, true, true, false]);
}

#[test]
fn a_step_lists_the_references_it_reads() {
    let flows = compiled(SHOP);
    let buy = &flows.flows["buy"].steps;
    assert_eq!(
        buy[0].references(),
        [&Reference::Setup("token".to_string())]
    );
    let Action::Group(group) = &buy[2].action else {
        panic!()
    };
    // A group step reads its condition; its steps read their own.
    assert_eq!(buy[2].references(), [&Reference::Var("session".into())]);
    assert_eq!(
        group.steps[0].references(),
        [&Reference::Builtin(crate::template::Builtin::Iter)]
    );
}

#[test]
fn names_are_listed_once_in_flow_order() {
    let flows = compiled(SHOP);
    let names = flows.names();
    assert_eq!(names.steps, ["admin", "sign-in", "/cart"]);
    assert_eq!(names.checks, ["login ok", "has items"]);
    assert_eq!(names.groups, ["::cart"]);
}

#[test]
fn captures_take_their_source_and_regex_group() {
    let flows = compiled(
        r#"  flows:
    f:
      - request: {url: "http://x/"}
        capture:
          whole: {regex: "\\d+"}
          first: {regex: "a(b)(c)"}
          second: {regex: "a(b)(c)", group: 2}
          header: {header: X-Token}
          maybe: {json: "$.x", optional: true, default: "none-${vu}"}
"#,
    );
    let captures = &flows.flows["f"].steps[0].captures;
    let by_name = |name: &str| {
        captures
            .iter()
            .find(|capture| capture.name == name)
            .unwrap_or_else(|| panic!("capture {name}"))
    };
    let group = |name: &str| match &by_name(name).source {
        CaptureSource::Regex { group, .. } => *group,
        other => panic!("{other:?}"),
    };
    assert_eq!((group("whole"), group("first"), group("second")), (0, 1, 2));
    assert!(matches!(&by_name("header").source, CaptureSource::Header(name) if name == "x-token"));
    let maybe = by_name("maybe");
    assert!(maybe.optional);
    assert_eq!(maybe.default.as_ref().unwrap().to_string(), "none-${vu}");
}

#[test]
fn zero_min_iteration_duration_pads_nothing_and_no_defaults_are_k6_defaults() {
    let flows =
        compiled("  defaults: {minIterationDuration: \"0\"}\n  flows: {f: [{sleep: 1s}]}\n");
    assert_eq!(flows.defaults.min_iteration_duration, None);
    let flows = compiled("  flows: {f: [{request: {url: \"http://x/\"}}]}\n");
    let only = request(&flows.flows["f"].steps[0]);
    assert_eq!(only.timeout, DEFAULT_TIMEOUT);
    assert_eq!(only.max_redirects, DEFAULT_MAX_REDIRECTS);
    assert!(only.expected_statuses.contains(399) && !only.expected_statuses.contains(400));
    assert_eq!(only.body, Body::None);
    assert!(flows.defaults.base_url.is_none());
}

#[test]
fn every_value_that_does_not_parse_is_a_problem_at_its_path() {
    let found = problems(
        r#"  defaults: {timeout: 0s, minIterationDuration: soon, expectedStatuses: [700]}
  flows:
    f:
      - sleep: "5"
      - sleep: {min: 3s, max: 1s}
      - request:
          method: FETCH
          url: "/a/${"
          headers: {"Bad Name": x}
          json: {k: ["${nope.x}"]}
          expectedStatuses: ["399-200"]
          maxRedirects: -1
      - request: {url: "http://x/"}
        checks: {"c": "status =="}
      - {}
"#,
    );
    let has = |prefix: &str| found.iter().any(|problem| problem.starts_with(prefix));
    for prefix in [
        "spec.defaults.timeout: must be longer than 0",
        "spec.defaults.minIterationDuration: \"soon\" is not a duration",
        "spec.defaults.expectedStatuses[0]: 700 is not an HTTP status",
        "spec.flows.f[0].sleep: \"5\" has no unit",
        "spec.flows.f[1].sleep: min (3s) is longer than max (1s)",
        "spec.flows.f[2].request.method: \"FETCH\" is not an HTTP method",
        "spec.flows.f[2].request.url: \"/a/${\": unterminated",
        "spec.flows.f[2].request.headers[\"Bad Name\"]: \"Bad Name\" is not a header name",
        "spec.flows.f[2].request.json: at /k/0: unknown namespace",
        "spec.flows.f[2].request.expectedStatuses[0]: \"399-200\" is not an HTTP status",
        "spec.flows.f[2].request.maxRedirects: is -1",
        "spec.flows.f[3].checks.c: \"status ==\":",
        "spec.flows.f[4]: does nothing",
    ] {
        assert!(has(prefix), "no problem starting {prefix:?} in {found:#?}");
    }
    assert_eq!(found.len(), 13, "{found:#?}");
}

#[test]
fn status_ranges_parse_as_validation_accepts_them() {
    let parse = |entry: IntOrString| parse_status_range(&entry);
    assert_eq!(parse(IntOrString::Int(409)), Some((409, 409)));
    assert_eq!(
        parse(IntOrString::String(" 200 - 399 ".into())),
        Some((200, 399))
    );
    assert_eq!(parse(IntOrString::String("204".into())), Some((204, 204)));
    assert_eq!(parse(IntOrString::Int(99)), None);
    assert_eq!(parse(IntOrString::Int(600)), None);
    assert_eq!(parse(IntOrString::String("300-200".into())), None);
    assert_eq!(parse(IntOrString::String("-5".into())), None);
    assert_eq!(parse(IntOrString::String("2xx".into())), None);
}

/// Every example manifest that validates compiles: validation and the model agree.
#[test]
fn every_valid_example_compiles() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut compiled_count = 0;
    for entry in std::fs::read_dir(&examples).expect("examples directory") {
        let path = entry.expect("directory entry").path();
        if path.extension().is_none_or(|extension| extension != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("example reads");
        let Ok(test) = serde_yaml_ng::from_str::<LoadTest>(&text) else {
            continue;
        };
        if !crate::validate::validate(&test).is_empty() {
            continue;
        }
        if let Err(problems) = compile(&test.spec) {
            panic!(
                "{} validates but does not compile: {problems:?}",
                path.display()
            );
        }
        compiled_count += 1;
    }
    assert!(compiled_count > 0, "no example compiled");
}
