//! Flows: the declarative steps a VU runs each iteration (requests, checks, captures, sleeps, groups).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One step of a flow. Exactly one of `request`, `sleep` or `group` is set: the shared
/// validation checks that; the CRD's rule can only check `request` against `group`, because
/// `sleep` has no `type` (string or object) and an API server hides untyped fields from CEL.
///
/// ```yaml
/// - name: login
///   request: {method: POST, url: /api/login, json: {username: "${data.users.username}"}}
///   checks: {"login ok": "status == 200"}
///   capture: {session: {json: "$.session_id"}}
/// - sleep: 1s
/// - group: checkout
///   steps: [...]
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(self.request) || !has(self.group)",
     "message": "a step does exactly one thing: set one of request, sleep or group, not both request and group"}
]))]
pub struct Step {
    /// The step's name: the `name` tag of its request metrics and its row in the per-step table.
    /// Defaults to the request's URL path without query for requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// An HTTP request to send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Request>,
    /// Checks on the response: check name → expression (`status == 200`,
    /// `json("$.ok") == true`, `body contains "token"`, `duration < 500`). Each emits a `checks`
    /// sample tagged `check=<name>`; a failed check never stops the iteration (k6).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 32))]
    pub checks: BTreeMap<String, String>,
    /// Values taken from the response into VU variables, read later as `${name}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 32))]
    pub capture: BTreeMap<String, Capture>,
    /// Think time: a fixed duration (`1s`) or a uniform range (`{min: 1s, max: 3s}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::crd::string_or_object_schema")]
    pub sleep: Option<SleepSpec>,
    /// A named group of steps (k6 `group()`): tags its samples `group=::name` and emits
    /// `group_duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The steps of a `group`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::crd::nested_steps_schema")]
    pub steps: Vec<Step>,
    /// Run this step only when the expression holds, e.g. `${balance} < 10000`.
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

/// Think time: a fixed duration or a uniform random duration between `min` and `max`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(untagged)]
pub enum SleepSpec {
    /// A fixed pause such as `1s` or `500ms`.
    Fixed(String),
    /// A pause drawn uniformly from `min`..`max` each time.
    Range(SleepRange),
}

/// A uniform random pause.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SleepRange {
    /// Shortest pause.
    pub min: String,
    /// Longest pause.
    pub max: String,
}

/// An HTTP request. `url` is absolute or relative to `spec.defaults.baseUrl`; every string
/// may use `${...}` templates.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// HTTP method (GET when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Absolute URL, or a path joined to `spec.defaults.baseUrl`.
    pub url: String,
    /// Request headers; they add to and override `spec.defaults.headers`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Query parameters appended to the URL (URL-encoded).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// A JSON body (any JSON value; string leaves are templated). Sets Content-Type to
    /// application/json unless a header says otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::crd::any_json_schema")]
    pub json: Option<serde_json::Value>,
    /// A form body (application/x-www-form-urlencoded).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub form: BTreeMap<String, String>,
    /// A raw body, sent as is after templating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Request timeout (defaults to `spec.defaults.timeout`, k6 default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Extra tags for this request's metric samples (`name` here overrides the step name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Statuses that count as expected for `http_req_failed` (k6 `expectedStatuses`): codes
    /// such as 409 or ranges such as "200-399". Defaults to `spec.defaults.expectedStatuses`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected_statuses: Vec<IntOrString>,
    /// Redirects to follow (defaults to `spec.defaults.maxRedirects`, k6 default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_redirects: Option<i64>,
}

/// Where a captured value comes from. Exactly one of `json`, `regex`, `header` or `cookie`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "(has(self.json) ? 1 : 0) + (has(self.regex) ? 1 : 0) + (has(self.header) ? 1 : 0) + (has(self.cookie) ? 1 : 0) == 1",
     "message": "a capture reads exactly one of json, regex, header or cookie"}
]))]
pub struct Capture {
    /// An RFC 9535 JSONPath into the response body, e.g. `$.session_id` or `$.items[0].id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<String>,
    /// A regular expression over the response body; captures group `group` (default 1, or the
    /// whole match when the pattern has no group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// The regex group to capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub group: Option<i64>,
    /// A response header, by name (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// A cookie set by the response, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
    /// When true, a missing value leaves the variable unset (or `default`) instead of failing
    /// the rest of the iteration.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
    /// The value used when an optional capture finds nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

impl Capture {
    /// The sources that are set, by field name (valid captures have exactly one).
    pub fn sources(&self) -> Vec<&'static str> {
        let mut set = Vec::new();
        if self.json.is_some() {
            set.push("json");
        }
        if self.regex.is_some() {
            set.push("regex");
        }
        if self.header.is_some() {
            set.push("header");
        }
        if self.cookie.is_some() {
            set.push("cookie");
        }
        set
    }
}

impl Step {
    /// The kinds of action this step sets (`request`, `sleep`, `group`); valid steps have one.
    pub fn actions(&self) -> Vec<&'static str> {
        let mut set = Vec::new();
        if self.request.is_some() {
            set.push("request");
        }
        if self.sleep.is_some() {
            set.push("sleep");
        }
        if self.group.is_some() {
            set.push("group");
        }
        set
    }

    /// The name the step's samples carry in the `name` tag: the request's `tags.name`, else the
    /// step name, else the URL without its query string (k6 uses the URL).
    pub fn metric_name(&self) -> Option<String> {
        let request = self.request.as_ref()?;
        if let Some(tag) = request.tags.get("name") {
            return Some(tag.clone());
        }
        if let Some(name) = &self.name {
            return Some(name.clone());
        }
        Some(
            request
                .url
                .split('?')
                .next()
                .unwrap_or(&request.url)
                .to_string(),
        )
    }
}
