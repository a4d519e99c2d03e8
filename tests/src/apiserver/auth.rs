//! Authentication (bearer tokens, impersonation) and RBAC authorization of each request, so a
//! too-narrow Role fails here as it would on a real cluster.

use http::{HeaderMap, Method};
use serde_json::{Value, json};

use super::errors::ApiError;
use super::meta;
use super::rbac::{self, Attributes, Decision, User};
use super::registry::{ResourceType, StorageId};
use super::store::{ObjectKey, Store};

/// The token of the kubeconfig the stand-in writes: the cluster admin.
pub const ADMIN_TOKEN: &str = "stand-in-token";

/// Service-account tokens are `stand-in:serviceaccount:<namespace>:<name>`.
pub const SERVICE_ACCOUNT_TOKEN_PREFIX: &str = "stand-in:serviceaccount:";

/// Who sent the request, after impersonation.
pub fn authenticate(store: &Store, headers: &HeaderMap) -> Result<User, ApiError> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let authorization = header("authorization");
    let token = authorization.strip_prefix("Bearer ").unwrap_or("").trim();
    // Like kube-apiserver's old insecure port: a request over plain HTTP with no credentials is
    // the admin. kubectl (client-go) never sends a bearer token over plain HTTP, so this is how
    // it gets in; every other token is checked.
    let user = if token == ADMIN_TOKEN || authorization.is_empty() {
        User::admin()
    } else if let Some(account) = token.strip_prefix(SERVICE_ACCOUNT_TOKEN_PREFIX)
        && let Some((namespace, name)) = account.split_once(':')
        && service_account_exists(store, namespace, name)
    {
        User::service_account(namespace, name)
    } else {
        return Err(ApiError::unauthorized());
    };
    let impersonated = header("impersonate-user");
    if impersonated.is_empty() {
        return Ok(user);
    }
    if !user.groups.iter().any(|g| g == "system:masters") {
        let kind = if impersonated.starts_with("system:serviceaccount:") {
            "serviceaccounts"
        } else {
            "users"
        };
        return Err(ApiError::forbidden(format!(
            "{kind} \"{impersonated}\" is forbidden: User \"{}\" cannot impersonate resource \"{kind}\" in API group \"\" at the cluster scope",
            user.name
        )));
    }
    let groups: Vec<String> = headers
        .get_all("impersonate-group")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let mut impersonated_user = match impersonated
        .strip_prefix("system:serviceaccount:")
        .and_then(|a| a.split_once(':'))
    {
        Some((namespace, name)) => User::service_account(namespace, name),
        None => User {
            name: impersonated.to_string(),
            groups: vec!["system:authenticated".into()],
        },
    };
    for group in groups {
        if !impersonated_user.groups.contains(&group) {
            impersonated_user.groups.push(group);
        }
    }
    Ok(impersonated_user)
}

fn service_account_exists(store: &Store, namespace: &str, name: &str) -> bool {
    store
        .get(&ObjectKey::core("serviceaccounts", namespace, name))
        .is_some()
}

/// The attributes of a request on a resource (the verb from method and shape, the name of a
/// list or watch from a `metadata.name=` field selector, as the real server does).
pub fn resource_attributes(
    method: &Method,
    resource: &ResourceType,
    namespace: Option<&str>,
    name: Option<&str>,
    subresource: Option<&str>,
    watch: bool,
    field_selector: &str,
) -> Attributes {
    Attributes {
        verb: verb(method, name.is_some(), watch).into(),
        api_group: resource.group.clone(),
        resource: resource.plural.clone(),
        subresource: subresource.unwrap_or("").into(),
        namespace: namespace.unwrap_or("").into(),
        name: name.unwrap_or(selected_name(field_selector)).into(),
        path: String::new(),
        resource_request: true,
    }
}

/// The authorizer's verb of a resource request: from the method, whether the URL names an
/// object, and `watch=true`.
pub fn verb(method: &Method, named: bool, watch: bool) -> &'static str {
    match (method, named) {
        (&Method::GET, true) => "get",
        (&Method::GET, false) if watch => "watch",
        (&Method::GET, false) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => "unknown",
    }
}

/// The name a list or watch asks for with a `metadata.name=` field selector ("" for none), as
/// the real server authorizes it.
pub fn selected_name(field_selector: &str) -> &str {
    field_selector
        .split(',')
        .find_map(|term| term.trim().strip_prefix("metadata.name="))
        .unwrap_or("")
}

/// The attributes of a request outside the resource tree (discovery, version, OpenAPI).
pub fn path_attributes(method: &Method, path: &str) -> Attributes {
    Attributes {
        verb: if method == Method::GET {
            "get".into()
        } else {
            method.as_str().to_lowercase()
        },
        path: path.into(),
        resource_request: false,
        ..Attributes::default()
    }
}

/// Allows the request or answers 403 with the real server's message.
pub fn authorize(store: &Store, user: &User, attributes: &Attributes) -> Result<(), ApiError> {
    match decide(store, user, attributes) {
        Decision::Allow => Ok(()),
        Decision::Deny => Err(ApiError::forbidden(rbac::forbidden_message(
            user, attributes,
        ))),
    }
}

fn decide(store: &Store, user: &User, attributes: &Attributes) -> Decision {
    let objects = |group: &str, plural: &str| -> Vec<Value> {
        let storage = StorageId {
            group: group.into(),
            plural: plural.into(),
        };
        store
            .list(&storage, None)
            .into_iter()
            .map(|(_, o)| o.clone())
            .collect()
    };
    const RBAC: &str = "rbac.authorization.k8s.io";
    rbac::authorize(
        user,
        attributes,
        &objects(RBAC, "roles"),
        &objects(RBAC, "rolebindings"),
        &objects(RBAC, "clusterroles"),
        &objects(RBAC, "clusterrolebindings"),
    )
}

/// `POST selfsubjectaccessreviews`: whether the caller may do what the review describes
/// (`kubectl auth can-i`, with `--as` through impersonation).
pub fn self_subject_access_review(store: &Store, user: &User, review: &Value) -> Value {
    let spec = review.get("spec").cloned().unwrap_or(json!({}));
    let text = |value: Option<&Value>, field: &str| {
        value
            .and_then(|v| v.get(field))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let attributes = if let Some(resource) = spec.get("resourceAttributes") {
        Attributes {
            verb: text(Some(resource), "verb"),
            api_group: text(Some(resource), "group"),
            resource: text(Some(resource), "resource"),
            subresource: text(Some(resource), "subresource"),
            namespace: text(Some(resource), "namespace"),
            name: text(Some(resource), "name"),
            path: String::new(),
            resource_request: true,
        }
    } else {
        let path = spec.get("nonResourceAttributes");
        Attributes {
            verb: text(path, "verb"),
            path: text(path, "path"),
            resource_request: false,
            ..Attributes::default()
        }
    };
    let allowed = decide(store, user, &attributes) == Decision::Allow;
    let mut answer = review.clone();
    meta::metadata_mut(&mut answer).insert("creationTimestamp".into(), Value::Null);
    answer["apiVersion"] = json!("authorization.k8s.io/v1");
    answer["kind"] = json!("SelfSubjectAccessReview");
    answer["status"] = if allowed {
        json!({"allowed": true, "reason": "RBAC: allowed by the stand-in's RBAC rules"})
    } else {
        json!({"allowed": false})
    };
    answer
}
