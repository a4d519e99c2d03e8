//! Delegation, as kube-apiserver delegates to its apiextensions server: the stand-in keeps
//! authentication, RBAC (authorize, then forward), the built-in kinds, garbage collection and
//! the process kubelet, and forwards CRDs, every custom resource (objects, `/status`, lists,
//! watch streams), their discovery and their OpenAPI to a real `apiextensions-apiserver`.

pub mod collector;
pub mod merge;
pub mod openapi;
pub mod pruning;
pub mod request_info;

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Response, header};
use http_body_util::BodyExt;
use serde_json::Value;

use super::auth;
use super::deletion::collect_garbage;
use super::errors::ApiError;
use super::external::ExternalObject;
use super::registry::Registry;
use super::routes::{Body, Shared, json_response, stream_response};
use request_info::RequestInfo;

/// The group whose requests always go to the real server.
pub const APIEXTENSIONS: &str = "apiextensions.k8s.io";

/// The forwarding side of a delegating stand-in.
pub struct Delegate {
    client: kube::Client,
    builtin_groups: BTreeSet<String>,
    url: String,
    version: String,
}

impl std::fmt::Debug for Delegate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delegate")
            .field("url", &self.url)
            .field("version", &self.version)
            .field("builtin_groups", &self.builtin_groups)
            .finish_non_exhaustive()
    }
}

/// What a delegated request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// `GET /apis`: the stand-in's groups and the real server's, merged.
    Groups,
    /// `GET /openapi/v3`: both servers' documents, merged.
    OpenApiRoot,
    /// Discovery or OpenAPI of a delegated group, forwarded as is.
    NonResource,
    /// The OpenAPI v3 document of a custom resource group/version, built from its CRDs.
    CustomOpenApi(String, String),
    /// A request on a delegated resource.
    Resource(RequestInfo),
}

impl Delegate {
    /// A delegate forwarding with `client` (built for the real server at `url`); `registry`
    /// holds the stand-in's built-in kinds, whose groups stay local.
    pub fn new(client: kube::Client, registry: &Registry, url: &str, version: &str) -> Delegate {
        let builtin_groups = registry
            .types()
            .iter()
            .filter(|t| !t.is_custom() && t.group != APIEXTENSIONS)
            .map(|t| t.group.clone())
            .collect();
        Delegate {
            client,
            builtin_groups,
            url: url.to_string(),
            version: version.to_string(),
        }
    }

    /// The client for the real server.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// One line for logs: what the stand-in delegates to.
    pub fn describe(&self) -> String {
        format!(
            "delegating CRDs and custom resources to a real apiextensions-apiserver ({}) at {}",
            self.version, self.url
        )
    }

    /// Whether `group` is served by the real server.
    pub fn is_delegated(&self, group: &str) -> bool {
        !group.is_empty() && !self.builtin_groups.contains(group)
    }

    /// Whether the request at `path` goes (in part or whole) to the real server.
    pub fn claim(&self, method: &Method, path: &str, query: Option<&str>) -> Option<Claim> {
        claim(|group| self.is_delegated(group), method, path, query)
    }
}

/// What part the real server has in a request, given which groups it serves.
pub fn claim(
    delegated: impl Fn(&str) -> bool,
    method: &Method,
    path: &str,
    query: Option<&str>,
) -> Option<Claim> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["apis"] if method == Method::GET => Some(Claim::Groups),
        ["openapi", "v3"] if method == Method::GET => Some(Claim::OpenApiRoot),
        ["openapi", "v3", "apis", group, version]
            if delegated(group) && *group != APIEXTENSIONS =>
        {
            Some(Claim::CustomOpenApi(group.to_string(), version.to_string()))
        }
        ["openapi", "v3", "apis", group, ..] if delegated(group) => Some(Claim::NonResource),
        ["apis", group] | ["apis", group, _] if delegated(group) => Some(Claim::NonResource),
        ["apis", group, _, _, ..] if delegated(group) => {
            RequestInfo::parse(method, &segments, query).map(Claim::Resource)
        }
        _ => None,
    }
}

/// Serves a delegated request: authenticate and authorize here, then forward.
pub async fn serve(
    shared: Arc<Shared>,
    delegate: &Delegate,
    claim: Claim,
    parts: http::request::Parts,
    body: Bytes,
) -> Response<Body> {
    match serve_inner(&shared, delegate, claim, parts, body).await {
        Ok(response) => response,
        Err(error) => json_response(error.code, &error.status(), &[]),
    }
}

async fn serve_inner(
    shared: &Arc<Shared>,
    delegate: &Delegate,
    claim: Claim,
    parts: http::request::Parts,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    {
        let store = shared.lock();
        let user = auth::authenticate(&store, &parts.headers)?;
        let attributes = match &claim {
            Claim::Resource(info) => info.attributes(),
            _ => auth::path_attributes(&parts.method, parts.uri.path()),
        };
        if attributes.resource_request {
            shared.authorize_audited(&store, &user, &attributes)?;
        } else {
            auth::authorize(&store, &user, &attributes)?;
        }
        if let Claim::Resource(info) = &claim {
            namespace_lifecycle(&store, info)?;
        }
    }
    match claim {
        Claim::Groups => {
            let real = delegated_groups(delegate).await?;
            let local = super::discovery::groups(&shared.lock().registry);
            Ok(json_response(
                200,
                &merge::groups(&local, &real, |g| delegate.is_delegated(g)),
                &[],
            ))
        }
        Claim::OpenApiRoot => {
            let mut real = get_json(delegate, "/openapi/v3").await?;
            let crds = definitions(delegate).await?;
            for (group, version) in openapi::served(&crds) {
                let hash = openapi::hash(&crds, &group, &version);
                real["paths"][format!("apis/{group}/{version}")] = serde_json::json!({
                    "serverRelativeURL": format!("/openapi/v3/apis/{group}/{version}?hash={hash}")
                });
            }
            let local = super::discovery::openapi_root(&shared.lock().registry);
            Ok(json_response(
                200,
                &merge::openapi_root(&local, &real, |g| delegate.is_delegated(g)),
                &[],
            ))
        }
        Claim::CustomOpenApi(group, version) => {
            let crds = definitions(delegate).await?;
            let document = openapi::document(&crds, &group, &version).ok_or_else(|| {
                ApiError::not_found("", "openapi", &format!("apis/{group}/{version}"))
            })?;
            Ok(json_response(200, &document, &[]))
        }
        Claim::NonResource => forward(shared, delegate, &parts, body, None).await,
        Claim::Resource(info) => forward(shared, delegate, &parts, body, Some(&info)).await,
    }
}

/// kube-apiserver's NamespaceLifecycle admission for custom resources: no creation in a
/// namespace that does not exist or is being deleted (the real apiextensions server alone
/// runs without it, as it has no namespaces).
fn namespace_lifecycle(store: &super::store::Store, info: &RequestInfo) -> Result<(), ApiError> {
    if info.verb != "create" || info.namespace.is_empty() || info.group == APIEXTENSIONS {
        return Ok(());
    }
    let key = super::store::ObjectKey::core("namespaces", "", &info.namespace);
    match store.get(&key) {
        None => Err(ApiError::not_found("", "namespaces", &info.namespace)),
        Some(namespace) if super::meta::is_deleting(namespace) => {
            Err(ApiError::forbidden(format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {} because it is being terminated",
                super::errors::qualified(&info.group, &info.resource),
                info.name,
                info.namespace
            )))
        }
        Some(_) => Ok(()),
    }
}

/// The CRDs the real server stores.
async fn definitions(delegate: &Delegate) -> Result<Vec<Value>, ApiError> {
    let list = get_json(
        delegate,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    )
    .await?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

/// The real server's groups as an APIGroupList. A standalone apiextensions-apiserver serves no
/// `/apis` (inside kube-apiserver the aggregator lists CRD groups), so each group of a CRD is
/// asked for on its own; a group not served yet (its CRD not Established) answers 404.
async fn delegated_groups(delegate: &Delegate) -> Result<Value, ApiError> {
    let crds = definitions(delegate).await?;
    let mut names: BTreeSet<String> = crds
        .iter()
        .filter_map(|crd| crd["spec"]["group"].as_str().map(str::to_string))
        .collect();
    let mut groups = vec![APIEXTENSIONS.to_string()];
    names.remove(APIEXTENSIONS);
    groups.extend(names);
    let mut list = Vec::new();
    for name in groups {
        if let Ok(mut group) = get_json(delegate, &format!("/apis/{name}")).await
            && group["name"] == name.as_str()
            && let Some(fields) = group.as_object_mut()
        {
            fields.remove("kind");
            fields.remove("apiVersion");
            list.push(group);
        }
    }
    Ok(serde_json::json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": list}))
}

async fn get_json(delegate: &Delegate, path: &str) -> Result<Value, ApiError> {
    let request = http::Request::get(path)
        .header(header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|e| unavailable(&e.to_string()))?;
    let text = delegate
        .client
        .request_text(request)
        .await
        .map_err(|e| unavailable(&e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| unavailable(&e.to_string()))
}

fn unavailable(detail: &str) -> ApiError {
    ApiError {
        code: 503,
        reason: "ServiceUnavailable",
        message: format!("the real apiextensions-apiserver did not answer: {detail}"),
        details: None,
    }
}

/// Request headers the real server needs; credentials and impersonation stay here.
const FORWARDED_REQUEST_HEADERS: [header::HeaderName; 3] =
    [header::ACCEPT, header::CONTENT_TYPE, header::USER_AGENT];

/// Response headers passed back.
const FORWARDED_RESPONSE_HEADERS: [&str; 4] =
    ["content-type", "warning", "audit-id", "content-encoding"];

async fn forward(
    shared: &Shared,
    delegate: &Delegate,
    parts: &http::request::Parts,
    body: Bytes,
    resource: Option<&RequestInfo>,
) -> Result<Response<Body>, ApiError> {
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_string(), |p| p.as_str().to_string());
    let mut builder = http::Request::builder()
        .method(parts.method.clone())
        .uri(path_and_query);
    for name in FORWARDED_REQUEST_HEADERS {
        if let Some(value) = parts.headers.get(&name) {
            builder = builder.header(name, value.clone());
        }
    }
    let request = builder
        .body(kube::client::Body::from(body.clone()))
        .map_err(|e| unavailable(&e.to_string()))?;
    let response = delegate
        .client
        .send(request)
        .await
        .map_err(|e| unavailable(&e.to_string()))?;
    let (head, answer_body) = response.into_parts();
    let headers: Vec<(String, HeaderValue)> = FORWARDED_RESPONSE_HEADERS
        .iter()
        .flat_map(|name| {
            head.headers
                .get_all(*name)
                .iter()
                .map(|v| (name.to_string(), v.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let streaming = parts.method == Method::GET;
    if streaming {
        return Ok(stream_response(head.status, headers, answer_body));
    }
    // A write's answer is read whole: the collector learns of the object before the client
    // does, so a dependent created next never looks ownerless.
    let bytes = answer_body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| unavailable(&e.to_string()))?;
    // A dry run stores nothing, so there is nothing to learn from its answer.
    let dry_run = parts
        .uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("dryRun=")));
    if let Some(info) = resource
        && head.status.is_success()
        && !dry_run
        && let Ok(answer) = serde_json::from_slice::<Value>(&bytes)
    {
        if info.subresource == "status" {
            check_status_kept(shared, info, &parts.headers, &body, &answer);
        }
        learn(shared, info, &answer);
    }
    let mut builder = Response::builder().status(head.status);
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    builder
        .body(super::routes::full(bytes))
        .map_err(|e| unavailable(&e.to_string()))
}

/// Records the status fields a write sent that the real server did not keep.
fn check_status_kept(
    shared: &Shared,
    info: &RequestInfo,
    headers: &http::HeaderMap,
    body: &Bytes,
    answer: &Value,
) {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.contains("json-patch") {
        // A JSON patch is a list of operations, not a status to compare.
        return;
    }
    let sent: Option<Value> = serde_json::from_slice(body)
        .ok()
        .or_else(|| serde_yaml_ng::from_slice(body).ok());
    let Some(sent) = sent else { return };
    if let Some(corpus) = std::env::var_os(pruning::CORPUS_ENV).filter(|d| !d.is_empty()) {
        pruning::record(std::path::Path::new(&corpus), content_type, &sent);
    }
    let pruned = pruning::pruned_status(&sent, answer);
    if pruned.is_empty() {
        return;
    }
    let line = format!(
        "{} {}/{} {}/{}: the real server did not keep {}",
        info.verb,
        info.namespace,
        info.name,
        info.resource,
        info.subresource,
        pruned.join(", ")
    );
    eprintln!("API server stand-in: {line}");
    if let Ok(mut kept) = shared.pruned.lock() {
        kept.push(line);
    }
}

/// What a successful write of a custom resource means for the collector's view: the object
/// as it is now, or that it is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// The object exists as answered.
    Present(ExternalObject),
    /// The object `(namespace, name)` of the resource is gone.
    Gone(String, String),
    /// Nothing to learn (a list, a Status of another kind, a CRD).
    Nothing,
}

/// Reads what a successful write's answer says about the object.
pub fn observed(info: &RequestInfo, answer: &Value) -> Observed {
    if info.group == APIEXTENSIONS || (info.name.is_empty() && info.verb != "create") {
        return Observed::Nothing;
    }
    if answer.get("kind").and_then(Value::as_str) == Some("Status") {
        return if info.verb == "delete" {
            Observed::Gone(info.namespace.clone(), info.name.clone())
        } else {
            Observed::Nothing
        };
    }
    match ExternalObject::from_object(&info.group, &info.version, &info.resource, answer) {
        // A delete that answers with the object without a deletionTimestamp removed it.
        Some(object) if info.verb == "delete" && !object.deleting => Observed::Gone(
            object.reference.namespace.clone(),
            object.reference.name.clone(),
        ),
        Some(object) => Observed::Present(object),
        None => Observed::Nothing,
    }
}

/// Applies what a write taught to the stand-in's view, then collects garbage.
pub fn learn(shared: &Shared, info: &RequestInfo, answer: &Value) {
    let observed = observed(info, answer);
    let mut store = shared.lock();
    match observed {
        Observed::Present(object) => store.external.upsert(object),
        Observed::Gone(namespace, name) => {
            let uid = store
                .external
                .objects()
                .find(|o| {
                    o.reference.group == info.group
                        && o.reference.plural == info.resource
                        && o.reference.namespace == namespace
                        && o.reference.name == name
                })
                .map(|o| o.reference.uid.clone());
            if let Some(uid) = uid {
                store.external.remove(&uid);
            }
        }
        Observed::Nothing => return,
    }
    collect_garbage(&mut store);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delegated(group: &str) -> bool {
        matches!(group, "stampede.dev" | APIEXTENSIONS)
    }

    fn kind(method: Method, path: &str) -> String {
        match claim(delegated, &method, path, None) {
            None => "local".into(),
            Some(Claim::Resource(info)) => format!("resource {} {}", info.verb, info.resource),
            Some(other) => format!("{other:?}"),
        }
    }

    #[test]
    fn built_in_kinds_stay_and_custom_resources_go() {
        let cases = [
            (Method::GET, "/api/v1/namespaces/x/configmaps", "local"),
            (Method::GET, "/apis/batch/v1/jobs", "local"),
            (Method::GET, "/apis/apps", "local"),
            (Method::GET, "/apis", "Groups"),
            (Method::POST, "/apis", "local"),
            (Method::GET, "/openapi/v3", "OpenApiRoot"),
            (Method::GET, "/openapi/v3/api/v1", "local"),
            (Method::GET, "/openapi/v3/apis/batch/v1", "local"),
            (
                Method::GET,
                "/openapi/v3/apis/stampede.dev/v1alpha1",
                r#"CustomOpenApi("stampede.dev", "v1alpha1")"#,
            ),
            (
                Method::GET,
                "/openapi/v3/apis/apiextensions.k8s.io/v1",
                "NonResource",
            ),
            (Method::GET, "/apis/stampede.dev", "NonResource"),
            (Method::GET, "/apis/stampede.dev/v1alpha1", "NonResource"),
            (
                Method::PATCH,
                "/apis/stampede.dev/v1alpha1/namespaces/x/loadtests/t/status",
                "resource patch loadtests",
            ),
            (
                Method::POST,
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                "resource create customresourcedefinitions",
            ),
        ];
        for (method, path, want) in cases {
            assert_eq!(kind(method, path), want, "{path}");
        }
    }
}
