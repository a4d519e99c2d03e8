//! Writes: create, update, the four patch types and server-side apply, all through one
//! admission path (status subresource split, decoding / pruning / defaulting / validation,
//! metadata rules, managedFields, finalizers) before the object is stored.

use serde_json::{Value, json};

use super::builtin;
use super::cr_admission;
use super::crd_admission;
use super::deletion::{self, collect_garbage};
use super::errors::{ApiError, qualified};
use super::managed;
use super::meta;
use super::patch;
use super::pod_security;
use super::registry::ResourceType;
use super::schema;
use super::store::{ObjectKey, Store};

/// Query parameters every write takes.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `fieldManager`, or the prefix of the User-Agent as the real server derives it.
    pub manager: String,
    /// `dryRun=All`: everything but storing.
    pub dry_run: bool,
    /// `fieldValidation=Strict`: unknown fields are an error instead of a warning.
    pub strict: bool,
    /// `force=true` for server-side apply.
    pub force: bool,
}

/// A successful write: HTTP code, the object, and `Warning` headers.
#[derive(Debug)]
pub struct Written {
    /// 201 for creations, 200 otherwise.
    pub code: u16,
    /// The stored (or, for dry runs, the would-be) object.
    pub object: Value,
    /// Warnings (unknown fields under `fieldValidation=Warn`).
    pub warnings: Vec<String>,
}

/// The kinds of PATCH bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// application/merge-patch+json
    Merge,
    /// application/json-patch+json
    Json,
    /// application/strategic-merge-patch+json
    Strategic,
    /// application/apply-patch+yaml
    Apply,
}

impl PatchKind {
    /// From the Content-Type header.
    pub fn from_content_type(content_type: &str) -> Result<PatchKind, ApiError> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media {
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
            "application/apply-patch+yaml" => Ok(PatchKind::Apply),
            _ => Err(ApiError::unsupported_media_type(false)),
        }
    }
}

/// POST to a collection.
pub fn create(
    store: &mut Store,
    resource: &ResourceType,
    namespace: &str,
    mut body: Value,
    options: &WriteOptions,
) -> Result<Written, ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    if resource.is_custom() {
        cr_admission::decode_type_meta(resource, &body, options.strict)?;
    }
    let metadata = meta::metadata_mut(&mut body);
    let mut name = metadata
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if name.is_empty() {
        let prefix = metadata
            .get("generateName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if prefix.is_empty() && !resource.is_custom() {
            return Err(invalid(
                resource,
                "",
                vec![field_error(
                    "metadata.name",
                    "FieldValueRequired",
                    "metadata.name: Required value: name or generateName is required",
                )],
            ));
        }
        // A custom resource without either is refused by validation, with its other errors.
        if !prefix.is_empty() {
            name = format!("{prefix}{}", meta::random_suffix());
            metadata.insert("name".into(), json!(name));
        }
    }
    check_namespace(store, resource, namespace, &body)?;
    let key = key_of(resource, namespace, &name);
    if store.get(&key).is_some() {
        return Err(ApiError::already_exists(
            &resource.group,
            &resource.plural,
            &name,
        ));
    }
    if resource.group.is_empty() && resource.plural == "pods" {
        admit_pod_security(store, namespace, &name, &body)?;
        admit_service_account(store, namespace, &name, &mut body)?;
    }
    let body = managed::record_update(
        None,
        body,
        &options.manager,
        None,
        &resource.api_version(),
        &meta::now(),
    );
    let written = admit(store, resource, &key, None, body, None, options)?;
    if resource.group.is_empty() && resource.plural == "namespaces" && !options.dry_run {
        create_default_service_account(store, &name);
    }
    Ok(written)
}

/// The PodSecurity admission plugin: the namespace's enforced Pod Security Standard.
fn admit_pod_security(
    store: &Store,
    namespace: &str,
    pod: &str,
    body: &Value,
) -> Result<(), ApiError> {
    let level = store
        .get(&ObjectKey::core("namespaces", "", namespace))
        .map_or(
            pod_security::Level::Privileged,
            pod_security::Level::of_namespace,
        );
    match pod_security::refusal(level, pod, body) {
        Some(message) => Err(ApiError::forbidden(message)),
        None => Ok(()),
    }
}

/// The ServiceAccount admission plugin: a pod runs as `default` unless it names an account,
/// and the account must exist.
fn admit_service_account(
    store: &Store,
    namespace: &str,
    pod: &str,
    body: &mut Value,
) -> Result<(), ApiError> {
    let Some(spec) = body.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let account = match spec.get("serviceAccountName").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => "default".to_string(),
    };
    spec.insert("serviceAccountName".into(), json!(account));
    spec.insert("serviceAccount".into(), json!(account));
    let key = ObjectKey::core("serviceaccounts", namespace, &account);
    if store.get(&key).is_none() {
        return Err(ApiError::forbidden(format!(
            "pods \"{pod}\" is forbidden: error looking up service account \
             {namespace}/{account}: serviceaccount \"{account}\" not found"
        )));
    }
    Ok(())
}

/// What the service-account controller does for every new namespace.
fn create_default_service_account(store: &mut Store, namespace: &str) {
    let Some(accounts) = store.registry.find("", "v1", "serviceaccounts").cloned() else {
        return;
    };
    let account =
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}});
    let options = WriteOptions {
        manager: "kube-controller-manager".into(),
        ..WriteOptions::default()
    };
    // A failure here (it exists already) changes nothing.
    let _ = create(store, &accounts, namespace, account, &options);
}

/// PUT to an object or its status.
pub fn update(
    store: &mut Store,
    resource: &ResourceType,
    namespace: &str,
    name: &str,
    subresource: Option<&str>,
    body: Value,
    options: &WriteOptions,
) -> Result<Written, ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    if resource.is_custom() {
        cr_admission::decode_type_meta(resource, &body, options.strict)?;
    }
    let body_name = meta::meta_str(&body, "name");
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    check_namespace(store, resource, namespace, &body)?;
    let key = key_of(resource, namespace, name);
    let Some(old) = store.get(&key).cloned() else {
        return Err(ApiError::not_found(&resource.group, &resource.plural, name));
    };
    let given = meta::meta_str(&body, "resourceVersion");
    if given.is_empty() && resource.is_custom() {
        return Err(invalid(
            resource,
            name,
            vec![field_error(
                "metadata.resourceVersion",
                "FieldValueInvalid",
                "metadata.resourceVersion: Invalid value: 0: must be specified for an update",
            )],
        ));
    }
    if !given.is_empty() && given != meta::meta_str(&old, "resourceVersion") {
        return Err(ApiError::stale(&resource.group, &resource.plural, name));
    }
    let body = managed::record_update(
        Some(&old),
        body,
        &options.manager,
        subresource,
        &resource.api_version(),
        &meta::now(),
    );
    admit(store, resource, &key, Some(old), body, subresource, options)
}

/// PATCH of any kind; server-side apply creates the object when it is missing.
#[allow(clippy::too_many_arguments)]
pub fn patch(
    store: &mut Store,
    resource: &ResourceType,
    namespace: &str,
    name: &str,
    subresource: Option<&str>,
    kind: PatchKind,
    body: &[u8],
    options: &WriteOptions,
) -> Result<Written, ApiError> {
    let key = key_of(resource, namespace, name);
    let old = store.get(&key).cloned();
    if kind == PatchKind::Apply {
        return apply(
            store,
            resource,
            namespace,
            &key,
            old,
            subresource,
            body,
            options,
        );
    }
    let Some(old) = old else {
        return Err(ApiError::not_found(&resource.group, &resource.plural, name));
    };
    let patch_body: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    // The stored object is converted to the URL's version before the patch applies.
    let mut patched = old.clone();
    if let Some(map) = patched.as_object_mut() {
        map.insert("apiVersion".into(), json!(resource.api_version()));
    }
    let result = match kind {
        PatchKind::Merge => patch::merge_patch(&mut patched, &patch_body),
        PatchKind::Json => patch::json_patch(&mut patched, &patch_body),
        PatchKind::Strategic if resource.is_custom() => {
            return Err(ApiError::unsupported_media_type(true));
        }
        PatchKind::Strategic => patch::strategic_merge_patch(&mut patched, &patch_body),
        PatchKind::Apply => unreachable!("handled above"),
    };
    result.map_err(|e| match e {
        patch::PatchError::Invalid(message) => ApiError::bad_request(message),
        patch::PatchError::Failed(message) => invalid(
            resource,
            name,
            vec![field_error("", "FieldValueInvalid", &message)],
        ),
    })?;
    // A resourceVersion in the patch is a precondition.
    let given = meta::meta_str(&patched, "resourceVersion");
    if !given.is_empty() && given != meta::meta_str(&old, "resourceVersion") {
        return Err(ApiError::stale(&resource.group, &resource.plural, name));
    }
    if meta::meta_str(&patched, "name") != name {
        return Err(ApiError::bad_request(
            "metadata.name may not be changed by a patch",
        ));
    }
    let patched = managed::record_update(
        Some(&old),
        patched,
        &options.manager,
        subresource,
        &resource.api_version(),
        &meta::now(),
    );
    admit(
        store,
        resource,
        &key,
        Some(old),
        patched,
        subresource,
        options,
    )
}

#[allow(clippy::too_many_arguments)]
fn apply(
    store: &mut Store,
    resource: &ResourceType,
    namespace: &str,
    key: &ObjectKey,
    old: Option<Value>,
    subresource: Option<&str>,
    body: &[u8],
    options: &WriteOptions,
) -> Result<Written, ApiError> {
    let mut applied: Value = serde_yaml_ng::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    if !applied.is_object() {
        return Err(ApiError::bad_request("the apply body must be an object"));
    }
    cr_admission::check_applied_type(resource, &applied)?;
    if options.manager.is_empty() {
        return Err(ApiError::bad_request(
            "PATCH, application/apply-patch+yaml: fieldManager must be set",
        ));
    }
    // Like the real server, an applied configuration without a name takes the URL's (the
    // usual form of a status apply: apiVersion, kind and status only).
    if meta::meta_str(&applied, "name").is_empty() {
        applied["metadata"]["name"] = Value::String(key.name.clone());
    }
    let applied_name = meta::meta_str(&applied, "name");
    if applied_name != key.name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({applied_name}) does not match the name on the URL ({})",
            key.name
        )));
    }
    check_namespace(store, resource, namespace, &applied)?;
    if let Some(old) = &old {
        let given = meta::meta_str(&applied, "resourceVersion");
        if !given.is_empty() && given != meta::meta_str(old, "resourceVersion") {
            return Err(ApiError::stale(
                &resource.group,
                &resource.plural,
                &key.name,
            ));
        }
    }
    if resource.status_subresource
        && let Some(map) = applied.as_object_mut()
    {
        if subresource == Some("status") {
            map.retain(|k, _| ["apiVersion", "kind", "metadata", "status"].contains(&k.as_str()));
        } else {
            map.remove("status");
        }
    }
    if subresource.is_some() && old.is_none() {
        return Err(ApiError::not_found(
            &resource.group,
            &resource.plural,
            &key.name,
        ));
    }
    let merged = managed::apply(
        old.as_ref(),
        &applied,
        &options.manager,
        subresource,
        &resource.api_version(),
        options.force,
        &meta::now(),
    )
    .map_err(|conflicts| {
        ApiError::conflict(
            managed::conflict_message(&conflicts, &resource.api_version()),
            &resource.group,
            &resource.plural,
            &key.name,
        )
    })?;
    admit(store, resource, key, old, merged, subresource, options)
}

/// The one path every write goes through before it is stored.
#[allow(clippy::too_many_arguments)]
fn admit(
    store: &mut Store,
    resource: &ResourceType,
    key: &ObjectKey,
    old: Option<Value>,
    mut object: Value,
    subresource: Option<&str>,
    options: &WriteOptions,
) -> Result<Written, ApiError> {
    if resource.is_custom() {
        let errors = cr_admission::type_meta_errors(resource, &object);
        if !errors.is_empty() {
            // The status names the kind the object claims to be.
            let claimed = ResourceType {
                kind: object
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                ..resource.clone()
            };
            return Err(invalid(&claimed, &key.name, errors));
        }
    }
    object["apiVersion"] = json!(resource.api_version());
    object["kind"] = json!(resource.kind);
    {
        let metadata = meta::metadata_mut(&mut object);
        metadata.insert("name".into(), json!(key.name));
        if resource.namespaced {
            metadata.insert("namespace".into(), json!(key.namespace));
        } else {
            metadata.remove("namespace");
        }
    }
    split_status(resource, old.as_ref(), &mut object, subresource);
    let warnings = decode(
        resource,
        &key.name,
        &mut object,
        subresource,
        options.strict,
    )?;
    if resource.plural == "customresourcedefinitions" && subresource.is_none() {
        let errors = crd_admission::validate(&object);
        if !errors.is_empty() {
            return Err(invalid(resource, &key.name, errors));
        }
        let mut registry = store.registry.clone();
        registry.register_crd(&object).map_err(|message| {
            invalid(
                resource,
                &key.name,
                vec![field_error("spec", "FieldValueInvalid", &message)],
            )
        })?;
        object["status"] = crd_status(&object, old.as_ref());
    }
    keep_server_metadata(resource, old.as_ref(), &mut object)?;
    if resource.is_custom() {
        meta::go_numbers(&mut object);
    }
    if options.dry_run {
        return Ok(Written {
            code: if old.is_none() { 201 } else { 200 },
            object,
            warnings,
        });
    }
    let creating = old.is_none();
    // Removing the last finalizer of an object being deleted completes the deletion.
    if !creating
        && meta::is_deleting(&object)
        && meta::finalizers(&object).is_empty()
        && !deletion::is_pending_pod(key, &object)
    {
        let gone = deletion::remove(store, key).unwrap_or(object);
        collect_garbage(store);
        return Ok(Written {
            code: 200,
            object: gone,
            warnings,
        });
    }
    // A write that changes nothing but managedFields timestamps is no write at all on a real
    // server: the resourceVersion stays and watchers see no event.
    if let Some(old) = &old
        && meta::same_but_timestamps(old, &object)
    {
        return Ok(Written {
            code: 200,
            object: old.clone(),
            warnings,
        });
    }
    let stored = store.put(key.clone(), object);
    if resource.plural == "customresourcedefinitions" {
        // Validated above on a copy of the registry.
        let _ = store.registry.register_crd(&stored);
    }
    collect_garbage(store);
    Ok(Written {
        code: if creating { 201 } else { 200 },
        object: stored,
        warnings,
    })
}

/// The status subresource: writes to the object keep the stored status; writes to `/status`
/// keep everything else.
fn split_status(
    resource: &ResourceType,
    old: Option<&Value>,
    object: &mut Value,
    subresource: Option<&str>,
) {
    if !resource.status_subresource {
        return;
    }
    if subresource == Some("status") {
        if let Some(old) = old {
            let status = object.get("status").cloned();
            let managed_fields = object.pointer("/metadata/managedFields").cloned();
            *object = old.clone();
            match status {
                Some(status) => object["status"] = status,
                None => {
                    if let Some(map) = object.as_object_mut() {
                        map.remove("status");
                    }
                }
            }
            if let Some(fields) = managed_fields {
                meta::metadata_mut(object).insert("managedFields".into(), fields);
            }
        }
        return;
    }
    let status = match old {
        Some(old) => old.get("status").cloned(),
        None => initial_status(resource),
    };
    if let Some(map) = object.as_object_mut() {
        match status {
            Some(status) => {
                map.insert("status".into(), status);
            }
            None => {
                map.remove("status");
            }
        }
    }
}

/// What the real server's strategies put in `status` on creation.
fn initial_status(resource: &ResourceType) -> Option<Value> {
    match (resource.group.as_str(), resource.plural.as_str()) {
        ("", "pods") => Some(json!({"phase": "Pending", "qosClass": "BestEffort"})),
        ("", "namespaces") => Some(json!({"phase": "Active"})),
        ("batch", "jobs") => Some(json!({})),
        _ => None,
    }
}

/// Decoding: built-ins through their typed structs, custom resources through the CRD's
/// structural schema (prune unknown fields, apply defaults, validate → 422).
fn decode(
    resource: &ResourceType,
    name: &str,
    object: &mut Value,
    subresource: Option<&str>,
    strict: bool,
) -> Result<Vec<String>, ApiError> {
    let before = object.clone();
    if let Some(schema_doc) = &resource.schema {
        schema::prune(schema_doc, object);
    } else {
        *object = builtin::normalize(&resource.api_version(), &resource.kind, object.clone())
            .map_err(|error| {
                ApiError::bad_request(format!(
                    "{} in version \"{}\" cannot be handled as a {}: {error}",
                    resource.kind, resource.version, resource.kind
                ))
            })?;
    }
    let unknown: Vec<String> = builtin::dropped_fields(&before, object)
        .into_iter()
        .filter(|path| !path.starts_with(".status") || resource.schema.is_none())
        .filter(|path| !path.starts_with(".metadata"))
        .map(|path| format!("unknown field \"{}\"", path.trim_start_matches('.')))
        .collect();
    if strict && !unknown.is_empty() {
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
            resource.kind,
            resource.version,
            resource.kind,
            unknown.join(", ")
        )));
    }
    if let Some(schema_doc) = &resource.schema {
        schema::apply_defaults(schema_doc, object);
        let metadata_errors = cr_admission::object_meta_errors(object);
        let errors = if subresource == Some("status") {
            schema::validate_status_after(schema_doc, object, metadata_errors)
        } else {
            schema::validate_after(schema_doc, object, metadata_errors)
        };
        if !errors.is_empty() {
            return Err(invalid(resource, name, errors));
        }
    } else {
        let errors = cr_admission::labels_annotations_finalizers_errors(object);
        if !errors.is_empty() {
            return Err(invalid(resource, name, errors));
        }
    }
    Ok(unknown)
}

/// Server-owned metadata: uid, creationTimestamp, generation, deletion fields.
fn keep_server_metadata(
    resource: &ResourceType,
    old: Option<&Value>,
    object: &mut Value,
) -> Result<(), ApiError> {
    let spec_changed =
        old.is_none_or(|old| without_meta_and_status(old) != without_meta_and_status(object));
    let metadata_old = old
        .and_then(|o| o.get("metadata"))
        .cloned()
        .unwrap_or(json!({}));
    let finalizers_old = old.map(meta::finalizers).unwrap_or_default();
    let deleting = old.is_some_and(meta::is_deleting);
    if deleting {
        let added: Vec<String> = meta::finalizers(object)
            .into_iter()
            .filter(|f| !finalizers_old.contains(f))
            .collect();
        if !added.is_empty() {
            return Err(invalid(
                resource,
                meta::meta_str(object, "name"),
                vec![field_error(
                    "metadata.finalizers",
                    "FieldValueForbidden",
                    &format!(
                        "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{\"{}\"}}",
                        added.join("\", \"")
                    ),
                )],
            ));
        }
    }
    let metadata = meta::metadata_mut(object);
    match old {
        None => {
            metadata.insert("uid".into(), json!(meta::new_uid()));
            metadata.insert("creationTimestamp".into(), json!(meta::now()));
            if resource.generation {
                metadata.insert("generation".into(), json!(1));
            }
            metadata.remove("deletionTimestamp");
            metadata.remove("deletionGracePeriodSeconds");
        }
        Some(_) => {
            for field in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            ] {
                match metadata_old.get(field) {
                    Some(value) => metadata.insert(field.into(), value.clone()),
                    None => metadata.remove(field),
                };
            }
            if resource.generation {
                let generation = metadata_old
                    .get("generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
                metadata.insert(
                    "generation".into(),
                    json!(if spec_changed {
                        generation + 1
                    } else {
                        generation
                    }),
                );
            } else {
                metadata.remove("generation");
            }
        }
    }
    metadata.remove("selfLink");
    Ok(())
}

fn without_meta_and_status(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    copy
}

/// What the apiextensions controllers would write: names accepted, Established.
fn crd_status(crd: &Value, old: Option<&Value>) -> Value {
    let now = meta::now();
    let previous = |kind: &str| {
        old.and_then(|o| o.pointer("/status/conditions"))
            .and_then(Value::as_array)
            .and_then(|list| list.iter().find(|c| c["type"] == kind))
            .and_then(|c| c.get("lastTransitionTime"))
            .cloned()
            .unwrap_or(json!(now))
    };
    let storage: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|versions| {
            versions
                .iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    json!({
        "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or(json!({})),
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": previous("NamesAccepted")},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": previous("Established")},
        ],
        "storedVersions": storage,
    })
}

/// The namespace rules of writes: it must match the URL, exist, and not be terminating.
fn check_namespace(
    store: &Store,
    resource: &ResourceType,
    namespace: &str,
    body: &Value,
) -> Result<(), ApiError> {
    if !resource.namespaced {
        return Ok(());
    }
    let given = meta::meta_str(body, "namespace");
    if !given.is_empty() && given != namespace {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let key = ObjectKey::core("namespaces", "", namespace);
    match store.get(&key) {
        None => Err(ApiError::not_found("", "namespaces", namespace)),
        Some(ns) if meta::is_deleting(ns) => Err(ApiError::forbidden(format!(
            "{} \"{}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
            qualified(&resource.group, &resource.plural),
            meta::meta_str(body, "name")
        ))),
        Some(_) => Ok(()),
    }
}

/// The store key of an object of `resource`.
pub fn key_of(resource: &ResourceType, namespace: &str, name: &str) -> ObjectKey {
    ObjectKey {
        storage: resource.storage(),
        namespace: if resource.namespaced {
            namespace.to_string()
        } else {
            String::new()
        },
        name: name.to_string(),
    }
}

fn field_error(field: &str, reason: &str, message: &str) -> schema::FieldError {
    schema::FieldError {
        field: field.into(),
        reason: reason.into(),
        message: message.into(),
    }
}

fn invalid(resource: &ResourceType, name: &str, errors: Vec<schema::FieldError>) -> ApiError {
    let message = schema::invalid_message(&resource.kind, &resource.group, name, &errors);
    let causes = errors
        .iter()
        .map(|e| json!({"reason": e.reason, "message": e.cause_message(), "field": e.field}))
        .collect();
    ApiError::invalid(message, &resource.group, &resource.kind, name, causes)
}
