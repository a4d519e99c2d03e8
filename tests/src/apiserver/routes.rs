//! The HTTP edge: parses API paths and query parameters, dispatches to the store under one
//! lock, negotiates Table output, and streams watches as JSON lines.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::auth;
use super::chaos::{self, Chaos};
use super::delegate::Delegate;
use super::deletion::{self, DeleteOptions, Propagation};
use super::discovery;
use super::errors::ApiError;
use super::events;
use super::rbac::{Attributes, User};
use super::registry::ResourceType;
use super::selector::{FieldSelector, LabelSelector};
use super::store::{Event, EventType, Store};
use super::table::{self, IncludeObject};
use super::write::{self, PatchKind, WriteOptions};

/// The response body type.
pub type Body = BoxBody<Bytes, Infallible>;

/// Shared server state.
#[derive(Debug)]
pub struct Shared {
    /// Everything stored, behind one lock (no await while it is held).
    pub store: Mutex<Store>,
    /// `host:port` the server listens on.
    pub address: String,
    /// Where pod logs are read from for `pods/log` (`<dir>/<ns>_<pod>_<container>.log`).
    pub log_dir: Mutex<Option<std::path::PathBuf>>,
    /// Interval of watch bookmarks.
    pub bookmark_interval: Duration,
    /// Every resource request's user and authorizer attributes, with the decision (an audit
    /// log: which API calls a component really makes).
    pub audit: Mutex<Vec<AuditEntry>>,
    /// The real apiextensions server CRDs and custom resources go to, if any.
    pub delegate: Option<Arc<Delegate>>,
    /// Status writes whose fields the real server did not keep (one line each).
    pub pruned: Mutex<Vec<String>>,
    /// The faults a test injected.
    pub chaos: Chaos,
}

/// One audited request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// The authenticated user's name (`system:serviceaccount:<ns>:<name>` for a token).
    pub user: String,
    /// What the request did.
    pub attributes: Attributes,
    /// Whether RBAC allowed it.
    pub allowed: bool,
}

impl Shared {
    /// RBAC's decision on a resource request, recorded in the audit log; 403 when denied.
    pub fn authorize_audited(
        &self,
        store: &Store,
        user: &User,
        attributes: &Attributes,
    ) -> Result<(), ApiError> {
        let decision = auth::authorize(store, user, attributes);
        if let Ok(mut audit) = self.audit.lock() {
            audit.push(AuditEntry {
                user: user.name.clone(),
                attributes: attributes.clone(),
                allowed: decision.is_ok(),
            });
        }
        decision
    }

    /// Locks the store (a panic elsewhere must not wedge every later request).
    pub fn lock(&self) -> MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Serves one request.
pub async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    if let Some(target) = super::portforward::target_of(&request) {
        return Ok(super::portforward::serve(&shared, request, target));
    }
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    if let Some(refused) = shared.chaos.intercept(&parts.method, parts.uri.path()) {
        return Ok(refused);
    }
    let watch = chaos::is_watch(parts.uri.query());
    let response = serve_request(Arc::clone(&shared), parts, body).await;
    Ok(if watch {
        let (parts, body) = response.into_parts();
        Response::from_parts(parts, shared.chaos.cuttable(body))
    } else {
        response
    })
}

/// Serves one request that no injected fault refused.
async fn serve_request(
    shared: Arc<Shared>,
    parts: http::request::Parts,
    body: Bytes,
) -> Response<Body> {
    if let Some(delegate) = shared.delegate.clone()
        && let Some(claim) = delegate.claim(&parts.method, parts.uri.path(), parts.uri.query())
    {
        return super::delegate::serve(shared, &delegate, claim, parts, body).await;
    }
    let request = ParsedRequest::new(parts, body);
    match route(&shared, &request) {
        Ok(Reply::Json(code, value, warnings)) => json_response(code, &value, &warnings),
        Ok(Reply::Text(text)) => Response::builder()
            .status(200)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(full(Bytes::from(text)))
            .unwrap_or_else(|_| Response::new(full(Bytes::new()))),
        Ok(Reply::Watch(watch)) => watch_response(shared, *watch),
        Err(error) => json_response(error.code, &error.status(), &[]),
    }
}

struct ParsedRequest {
    method: Method,
    path: String,
    query: HashMap<String, String>,
    headers: http::HeaderMap,
    body: Bytes,
}

impl ParsedRequest {
    fn new(parts: http::request::Parts, body: Bytes) -> Self {
        let query = parts
            .uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        ParsedRequest {
            method: parts.method,
            path: parts.uri.path().to_string(),
            query,
            headers: parts.headers,
            body,
        }
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn wants_table(&self) -> bool {
        self.header(header::ACCEPT)
            .split(',')
            .next()
            .is_some_and(|first| first.contains("as=Table"))
    }

    fn write_options(&self) -> WriteOptions {
        let manager = match self.param("fieldManager") {
            Some(manager) => manager.to_string(),
            // The real server names an unnamed writer after its User-Agent's first segment.
            None => match self.header(header::USER_AGENT).split('/').next() {
                Some(prefix) if !prefix.is_empty() => prefix.to_string(),
                _ => "unknown".to_string(),
            },
        };
        WriteOptions {
            manager,
            dry_run: self.param("dryRun") == Some("All"),
            strict: self.param("fieldValidation") == Some("Strict"),
            force: self.param("force") == Some("true"),
        }
    }

    fn json_body(&self) -> Result<Value, ApiError> {
        if self.header(header::CONTENT_TYPE).contains("protobuf") {
            // kubectl's typed clients (`kubectl create secret|configmap|...`) send protobuf.
            return super::protobuf::decode(&self.body).map_err(|message| {
                ApiError::bad_request(format!(
                    "error decoding the protobuf request body: {message}"
                ))
            });
        }
        if self.body.is_empty() {
            return Err(ApiError::bad_request("the request body is empty"));
        }
        serde_json::from_slice(&self.body)
            .or_else(|_| serde_yaml_ng::from_slice(&self.body))
            .map_err(|e| ApiError::bad_request(format!("error decoding the request body: {e}")))
    }
}

enum Reply {
    Json(u16, Value, Vec<String>),
    Text(String),
    Watch(Box<WatchRequest>),
}

fn ok(value: Value) -> Result<Reply, ApiError> {
    Ok(Reply::Json(200, value, Vec::new()))
}

/// A resource URL, parsed.
struct Target {
    resource: ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn route(shared: &Shared, request: &ParsedRequest) -> Result<Reply, ApiError> {
    let segments: Vec<&str> = request.path.split('/').filter(|s| !s.is_empty()).collect();
    let store = shared.lock();
    let user = auth::authenticate(&store, &request.headers)?;
    let is_resource = matches!(
        segments.as_slice(),
        ["api", _, _, ..] | ["apis", _, _, _, ..]
    );
    if !is_resource {
        auth::authorize(
            &store,
            &user,
            &auth::path_attributes(&request.method, &request.path),
        )?;
    }
    let (group, version, rest) = match segments.as_slice() {
        ["version"] => return ok(discovery::version()),
        ["healthz" | "readyz" | "livez"] => return Ok(Reply::Text("ok".into())),
        ["api"] => return ok(discovery::core_versions(&shared.address)),
        ["apis"] => return ok(discovery::groups(&store.registry)),
        ["openapi", "v3"] => return ok(discovery::openapi_root(&store.registry)),
        ["openapi", "v3", "api", version] => {
            return discovery::openapi_document(&store.registry, "", version)
                .map_or_else(|| Err(ApiError::no_route()), ok);
        }
        ["openapi", "v3", "apis", group, version] => {
            return discovery::openapi_document(&store.registry, group, version)
                .map_or_else(|| Err(ApiError::no_route()), ok);
        }
        ["apis", group] => {
            return discovery::group(&store.registry, group)
                .map_or_else(|| Err(ApiError::no_route()), ok);
        }
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(ApiError::no_route()),
    };
    if rest.is_empty() {
        return discovery::resources(&store.registry, group, version)
            .map_or_else(|| Err(ApiError::no_route()), ok);
    }
    let target = parse_target(&store, group, version, rest)?;
    let attributes = auth::resource_attributes(
        &request.method,
        &target.resource,
        target.namespace.as_deref(),
        target.name.as_deref(),
        target.subresource.as_deref(),
        matches!(request.param("watch"), Some("true" | "1")),
        request.param("fieldSelector").unwrap_or(""),
    );
    shared.authorize_audited(&store, &user, &attributes)?;
    if target.resource.group == "authorization.k8s.io"
        && target.resource.plural == "selfsubjectaccessreviews"
    {
        if request.method != Method::POST {
            return Err(ApiError::method_not_allowed());
        }
        let review = request.json_body()?;
        return Ok(Reply::Json(
            201,
            auth::self_subject_access_review(&store, &user, &review),
            Vec::new(),
        ));
    }
    if target.resource.group == events::GROUP && target.resource.plural == "events" {
        let core = store
            .registry
            .find("", "v1", "events")
            .cloned()
            .ok_or_else(ApiError::no_route)?;
        drop(store);
        return events_view(
            shared,
            request,
            Target {
                resource: core,
                ..target
            },
        );
    }
    drop(store);
    dispatch(shared, request, target)
}

/// events.k8s.io/v1 Events: served from the core Events' storage, converted both ways.
fn events_view(shared: &Shared, request: &ParsedRequest, core: Target) -> Result<Reply, ApiError> {
    let kind = request.header(header::CONTENT_TYPE);
    if request.method == Method::PATCH && kind.contains("json-patch") {
        return Err(ApiError::unsupported_media_type(false));
    }
    let mut converted = ParsedRequest {
        method: request.method.clone(),
        path: request.path.clone(),
        query: request.query.clone(),
        headers: request.headers.clone(),
        body: request.body.clone(),
    };
    if let Some(selector) = converted.query.get_mut("fieldSelector") {
        *selector = events::selector_to_core(selector);
    }
    if !request.body.is_empty() && !kind.contains("protobuf") {
        let body: Value = serde_json::from_slice(&request.body)
            .or_else(|_| serde_yaml_ng::from_slice(&request.body))
            .map_err(|e| ApiError::bad_request(format!("error decoding the request body: {e}")))?;
        converted.body = Bytes::from(events::to_core(&body).to_string());
        if kind.contains("apply-patch+yaml") {
            // The converted applied configuration is JSON, which is YAML too.
            converted.headers.insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/apply-patch+yaml"),
            );
        }
    }
    Ok(match dispatch(shared, &converted, core)? {
        Reply::Json(code, value, warnings) => Reply::Json(code, events_out(value), warnings),
        Reply::Watch(mut watch) => {
            watch.events_v1 = true;
            Reply::Watch(watch)
        }
        other => other,
    })
}

/// A core Event, or a list of them, as events.k8s.io serves it (Status and Table pass).
fn events_out(value: Value) -> Value {
    match value.get("kind").and_then(Value::as_str) {
        Some("Event") => events::from_core(&value),
        Some("EventList") => {
            let mut list = value;
            list["apiVersion"] = json!(events::API_VERSION);
            if let Some(items) = list.get_mut("items").and_then(Value::as_array_mut) {
                for item in items.iter_mut() {
                    *item = events::from_core(item);
                }
            }
            list
        }
        _ => value,
    }
}

fn parse_target(
    store: &Store,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Result<Target, ApiError> {
    let namespaced = match rest {
        ["namespaces", namespace, plural, tail @ ..] => store
            .registry
            .find(group, version, plural)
            .filter(|t| t.namespaced)
            .map(|t| (t.clone(), Some(namespace.to_string()), tail)),
        _ => None,
    };
    let (resource, namespace, tail) = match namespaced {
        Some(found) => found,
        None => {
            let (plural, tail) = rest.split_first().ok_or_else(ApiError::no_route)?;
            let resource = store
                .registry
                .find(group, version, plural)
                .ok_or_else(ApiError::no_route)?;
            (resource.clone(), None, tail)
        }
    };
    let (name, subresource) = match tail {
        [] => (None, None),
        [name] => (Some(name.to_string()), None),
        [name, sub] => (Some(name.to_string()), Some(sub.to_string())),
        _ => return Err(ApiError::no_route()),
    };
    if let Some(sub) = &subresource {
        let known = (sub == "status" && resource.status_subresource)
            || (sub == "log" && resource.plural == "pods" && resource.group.is_empty());
        if !known {
            return Err(ApiError::no_route());
        }
    }
    Ok(Target {
        resource,
        namespace,
        name,
        subresource,
    })
}

fn dispatch(shared: &Shared, request: &ParsedRequest, target: Target) -> Result<Reply, ApiError> {
    let resource = &target.resource;
    let namespace = target.namespace.clone().unwrap_or_default();
    if resource.namespaced
        && target.namespace.is_none()
        && (target.name.is_some() || request.method != Method::GET)
    {
        return Err(ApiError::no_route());
    }
    let options = request.write_options();
    let subresource = target.subresource.as_deref();
    match (&request.method, &target.name) {
        (&Method::GET, None) => {
            if matches!(request.param("watch"), Some("true" | "1")) {
                return Ok(Reply::Watch(Box::new(watch_request(request, &target)?)));
            }
            list(shared, request, &target)
        }
        (&Method::GET, Some(name)) if subresource == Some("log") => {
            pod_log(shared, request, &namespace, name)
        }
        (&Method::GET, Some(name)) => {
            let store = shared.lock();
            let key = write::key_of(resource, &namespace, name);
            let object = store
                .get(&key)
                .cloned()
                .ok_or_else(|| ApiError::not_found(&resource.group, &resource.plural, name))?;
            let object = served_as(resource, object);
            if request.wants_table() {
                let include = IncludeObject::parse(request.param("includeObject"));
                return ok(table::table(resource, &[object], include, None));
            }
            ok(object)
        }
        (&Method::POST, None) => {
            let body = request.json_body()?;
            let mut store = shared.lock();
            let written = write::create(&mut store, resource, &namespace, body, &options)?;
            Ok(Reply::Json(
                written.code,
                served_as(resource, written.object),
                written.warnings,
            ))
        }
        (&Method::PUT, Some(name)) => {
            let body = request.json_body()?;
            let mut store = shared.lock();
            let written = write::update(
                &mut store,
                resource,
                &namespace,
                name,
                subresource,
                body,
                &options,
            )?;
            Ok(Reply::Json(
                written.code,
                served_as(resource, written.object),
                written.warnings,
            ))
        }
        (&Method::PATCH, Some(name)) => {
            let kind = PatchKind::from_content_type(request.header(header::CONTENT_TYPE))?;
            let mut store = shared.lock();
            let written = write::patch(
                &mut store,
                resource,
                &namespace,
                name,
                subresource,
                kind,
                &request.body,
                &options,
            )?;
            Ok(Reply::Json(
                written.code,
                served_as(resource, written.object),
                written.warnings,
            ))
        }
        (&Method::DELETE, Some(name)) => {
            let delete_options = delete_options(request)?;
            let mut store = shared.lock();
            let key = write::key_of(resource, &namespace, name);
            let deleted = deletion::delete(&mut store, resource, &key, &delete_options)?;
            Ok(Reply::Json(deleted.code, deleted.body, Vec::new()))
        }
        (&Method::DELETE, None) => {
            let delete_options = delete_options(request)?;
            let labels = LabelSelector::parse(request.param("labelSelector").unwrap_or(""))?;
            let fields = FieldSelector::parse(
                request.param("fieldSelector").unwrap_or(""),
                &resource.field_selectors,
            )?;
            let mut store = shared.lock();
            let keys: Vec<_> = store
                .list(&resource.storage(), target.namespace.as_deref())
                .into_iter()
                .filter(|(_, o)| labels.matches(o) && fields.matches(o))
                .map(|(k, _)| k.clone())
                .collect();
            let mut items = Vec::new();
            for key in keys {
                if let Ok(deleted) = deletion::delete(&mut store, resource, &key, &delete_options)
                    && deleted.body.get("kind").and_then(Value::as_str) != Some("Status")
                {
                    items.push(deleted.body);
                }
            }
            ok(
                json!({"kind": format!("{}List", resource.kind), "apiVersion": resource.api_version(),
                      "metadata": {"resourceVersion": store.rv().to_string()}, "items": items}),
            )
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// An object as served at `resource`'s version.
fn served_as(resource: &ResourceType, mut object: Value) -> Value {
    if object.is_object() {
        object["apiVersion"] = json!(resource.api_version());
    }
    object
}

fn list(shared: &Shared, request: &ParsedRequest, target: &Target) -> Result<Reply, ApiError> {
    let resource = &target.resource;
    let labels = LabelSelector::parse(request.param("labelSelector").unwrap_or(""))?;
    let fields = FieldSelector::parse(
        request.param("fieldSelector").unwrap_or(""),
        &resource.field_selectors,
    )?;
    let store = shared.lock();
    let items: Vec<Value> = store
        .list(&resource.storage(), target.namespace.as_deref())
        .into_iter()
        .filter(|(_, o)| labels.matches(o) && fields.matches(o))
        .map(|(_, o)| served_as(resource, o.clone()))
        .collect();
    if request.wants_table() {
        let include = IncludeObject::parse(request.param("includeObject"));
        return ok(table::table(resource, &items, include, Some(store.rv())));
    }
    ok(json!({
        "kind": format!("{}List", resource.kind),
        "apiVersion": resource.api_version(),
        "metadata": {"resourceVersion": store.rv().to_string()},
        "items": items,
    }))
}

fn delete_options(request: &ParsedRequest) -> Result<DeleteOptions, ApiError> {
    let body: Value = if request.body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&request.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?
    };
    let policy = request
        .param("propagationPolicy")
        .map(str::to_string)
        .or_else(|| {
            body.get("propagationPolicy")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    let orphan = request
        .param("orphanDependents")
        .map(|v| v == "true")
        .or_else(|| body.get("orphanDependents").and_then(Value::as_bool));
    let propagation = match (policy, orphan) {
        (Some(policy), _) => Some(Propagation::parse(&policy)?),
        (None, Some(true)) => Some(Propagation::Orphan),
        (None, Some(false)) => Some(Propagation::Background),
        (None, None) => None,
    };
    let grace_period = request
        .param("gracePeriodSeconds")
        .and_then(|g| g.parse().ok())
        .or_else(|| body.get("gracePeriodSeconds").and_then(Value::as_i64));
    let dry_run = request.param("dryRun") == Some("All")
        || body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|v| v == "All"));
    Ok(DeleteOptions {
        propagation,
        grace_period,
        uid: body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string),
        resource_version: body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string),
        dry_run,
    })
}

fn pod_log(
    shared: &Shared,
    request: &ParsedRequest,
    namespace: &str,
    name: &str,
) -> Result<Reply, ApiError> {
    let container = {
        let store = shared.lock();
        let pods = store
            .registry
            .find("", "v1", "pods")
            .cloned()
            .ok_or_else(ApiError::no_route)?;
        let pod = store
            .get(&write::key_of(&pods, namespace, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found("", "pods", name))?;
        match request.param("container") {
            Some(container) => container.to_string(),
            None => pod
                .pointer("/spec/containers/0/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        }
    };
    let dir = shared
        .log_dir
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let text = dir
        .map(|dir| dir.join(format!("{namespace}_{name}_{container}.log")))
        .and_then(|path| std::fs::read_to_string(path).ok())
        .unwrap_or_default();
    Ok(Reply::Text(text))
}

/// A watch, with everything decided under the lock.
struct WatchRequest {
    resource: ResourceType,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    bookmarks: bool,
    table: Option<IncludeObject>,
    timeout: Duration,
    /// Events to send first (synthetic ADDED for existing objects, or history).
    initial: Vec<Event>,
    /// Send the initial-events-end bookmark after `initial` (sendInitialEvents=true).
    initial_end: bool,
    receiver: Option<broadcast::Receiver<Event>>,
    /// The last resourceVersion this watch has accounted for.
    start_rv: u64,
    /// 410 Gone as the single ERROR event.
    expired: Option<ApiError>,
    /// Core Events served as events.k8s.io/v1.
    events_v1: bool,
}

fn watch_request(request: &ParsedRequest, target: &Target) -> Result<WatchRequest, ApiError> {
    let resource = target.resource.clone();
    let labels = LabelSelector::parse(request.param("labelSelector").unwrap_or(""))?;
    let fields = FieldSelector::parse(
        request.param("fieldSelector").unwrap_or(""),
        &resource.field_selectors,
    )?;
    let timeout = request
        .param("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let table = request
        .wants_table()
        .then(|| IncludeObject::parse(request.param("includeObject")));
    let send_initial = request.param("sendInitialEvents") == Some("true");
    let requested = request.param("resourceVersion").unwrap_or("");
    let mut watch = WatchRequest {
        resource,
        namespace: target.namespace.clone(),
        labels,
        fields,
        bookmarks: request.param("allowWatchBookmarks") == Some("true"),
        table,
        timeout,
        initial: Vec::new(),
        initial_end: send_initial,
        receiver: None,
        start_rv: 0,
        expired: None,
        events_v1: false,
    };
    // "" and "0" mean: the current state as ADDED events, then changes; so does
    // sendInitialEvents=true. Anything else resumes after that resourceVersion.
    watch.start_rv = if requested.is_empty() || requested == "0" || send_initial {
        SNAPSHOT
    } else {
        requested
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion: {requested}")))?
    };
    Ok(watch)
}

/// `start_rv` of a watch that begins with a snapshot of the current state.
const SNAPSHOT: u64 = u64::MAX;

fn watch_response(shared: Arc<Shared>, mut watch: WatchRequest) -> Response<Body> {
    {
        let store = shared.lock();
        if watch.start_rv == SNAPSHOT {
            watch.start_rv = store.rv();
            watch.initial = store
                .list(&watch.resource.storage(), watch.namespace.as_deref())
                .into_iter()
                .map(|(key, object)| Event {
                    rv: store.rv(),
                    event_type: EventType::Added,
                    key: key.clone(),
                    object: Arc::new(object.clone()),
                    previous: None,
                })
                .collect();
            match store.watch_from(store.rv()) {
                Ok((_, receiver)) => watch.receiver = Some(receiver),
                Err(oldest) => watch.expired = Some(ApiError::expired(store.rv(), oldest)),
            }
        } else {
            match store.watch_from(watch.start_rv) {
                Ok((past, receiver)) => {
                    watch.initial = past;
                    watch.receiver = Some(receiver);
                }
                Err(oldest) => watch.expired = Some(ApiError::expired(watch.start_rv, oldest)),
            }
        }
    }
    let (sender, receiver) = mpsc::channel::<Bytes>(256);
    let interval = shared.bookmark_interval;
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(watch.timeout);
        tokio::pin!(deadline);
        if let Some(error) = &watch.expired {
            let _ = sender
                .send(line(&json!({"type": "ERROR", "object": error.status()})))
                .await;
            return;
        }
        let mut last_rv = watch.start_rv;
        for event in std::mem::take(&mut watch.initial) {
            last_rv = last_rv.max(event.rv);
            if let Some(out) = render(&watch, &event)
                && sender.send(out).await.is_err()
            {
                return;
            }
        }
        if watch.initial_end {
            let bookmark = bookmark(&watch, last_rv, true);
            if sender.send(line(&bookmark)).await.is_err() {
                return;
            }
        }
        let Some(mut events) = watch.receiver.take() else {
            return;
        };
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = sender.closed() => return,
                _ = ticker.tick(), if watch.bookmarks => {
                    if sender.send(line(&bookmark(&watch, last_rv, false))).await.is_err() {
                        return;
                    }
                }
                received = events.recv() => {
                    let event = match received {
                        Ok(event) => event,
                        // A watcher that fell behind ends; the client resumes from its last rv.
                        Err(_) => return,
                    };
                    if event.rv <= last_rv {
                        continue;
                    }
                    last_rv = event.rv;
                    if let Some(out) = render(&watch, &event)
                        && sender.send(out).await.is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/json")
        .body(channel_body(receiver))
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}

/// One event as a line, or None when the watch's filters drop it.
fn render(watch: &WatchRequest, event: &Event) -> Option<Bytes> {
    if event.key.storage != watch.resource.storage()
        || watch
            .namespace
            .as_ref()
            .is_some_and(|ns| *ns != event.key.namespace)
    {
        return None;
    }
    let selected = |object: &Value| watch.labels.matches(object) && watch.fields.matches(object);
    let now = selected(&event.object);
    let before = event.previous.as_deref().map(selected);
    // A modification that moves an object into or out of the selection is ADDED / DELETED.
    let event_type = match (event.event_type, before, now) {
        (EventType::Modified, Some(false), true) => EventType::Added,
        (EventType::Modified, Some(true), false) => EventType::Deleted,
        (_, _, false) => return None,
        (kind, _, true) => kind,
    };
    let object = served_as(&watch.resource, (*event.object).clone());
    let object = if watch.events_v1 {
        events::from_core(&object)
    } else {
        object
    };
    let object = match watch.table {
        Some(include) => table::table(&watch.resource, &[object], include, Some(event.rv)),
        None => object,
    };
    Some(line(
        &json!({"type": event_type.as_str(), "object": object}),
    ))
}

fn bookmark(watch: &WatchRequest, rv: u64, initial_end: bool) -> Value {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let api_version = if watch.events_v1 {
        events::API_VERSION.to_string()
    } else {
        watch.resource.api_version()
    };
    json!({"type": "BOOKMARK", "object": {"kind": watch.resource.kind, "apiVersion": api_version, "metadata": metadata}})
}

fn line(value: &Value) -> Bytes {
    let mut text = value.to_string();
    text.push('\n');
    Bytes::from(text)
}

/// A streamed response: `body`'s frames are passed on as they come (watches stay open).
pub fn stream_response<B>(
    status: StatusCode,
    headers: Vec<(String, http::HeaderValue)>,
    body: B,
) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Send,
{
    let (sender, receiver) = mpsc::channel::<Bytes>(256);
    tokio::spawn(async move {
        let mut body = body;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return };
            if let Ok(data) = frame.into_data()
                && sender.send(data).await.is_err()
            {
                return;
            }
        }
    });
    let mut builder = Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    builder
        .body(channel_body(receiver))
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}

/// A body streaming what a task sends into `receiver`, until the sender goes.
fn channel_body(mut receiver: mpsc::Receiver<Bytes>) -> Body {
    let stream = futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
        .map(|bytes| Ok::<_, Infallible>(Frame::data(bytes)));
    BodyExt::boxed(StreamBody::new(stream))
}

/// A complete body.
pub fn full(bytes: Bytes) -> Body {
    BodyExt::boxed(Full::new(bytes))
}

/// A JSON response with `Warning` headers.
pub fn json_response(code: u16, value: &Value, warnings: &[String]) -> Response<Body> {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json");
    for warning in warnings {
        builder = builder.header(
            "Warning",
            format!("299 - \"{}\"", warning.replace('"', "\\\"")),
        );
    }
    builder
        .body(full(Bytes::from(value.to_string())))
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}
