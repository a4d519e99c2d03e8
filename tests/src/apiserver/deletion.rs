//! Deletion: graceful pod deletion, finalizers, propagation policies, and the garbage collector
//! that follows ownerReferences (background, foreground, orphan) and empties deleted namespaces.

use serde_json::{Value, json};

use super::errors::{ApiError, deleted_status};
use super::external::{ExternalAction, ExternalRef};
use super::meta;
use super::registry::ResourceType;
use super::store::{ObjectKey, Store};

/// How dependents are treated when their owner is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Owner goes at once; the collector deletes dependents afterwards.
    Background,
    /// Owner stays (finalizer `foregroundDeletion`) until blocking dependents are gone.
    Foreground,
    /// Dependents lose their ownerReference (finalizer `orphan`).
    Orphan,
}

impl Propagation {
    /// Parses `propagationPolicy`.
    pub fn parse(text: &str) -> Result<Propagation, ApiError> {
        match text {
            "Background" => Ok(Propagation::Background),
            "Foreground" => Ok(Propagation::Foreground),
            "Orphan" => Ok(Propagation::Orphan),
            other => Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
            ))),
        }
    }
}

/// What a DELETE asked for (query parameters and the DeleteOptions body).
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `propagationPolicy`, or the resource's default.
    pub propagation: Option<Propagation>,
    /// `gracePeriodSeconds`.
    pub grace_period: Option<i64>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

/// The answer to a DELETE: HTTP code and body (the object, or a Success Status).
#[derive(Debug)]
pub struct Deleted {
    /// 200 when gone or being deleted gracefully, 202 while finalizers hold it.
    pub code: u16,
    /// Body.
    pub body: Value,
}

/// The default propagation when the client names none: batch/v1 Jobs still orphan their pods
/// for backwards compatibility (kubectl always sends Background explicitly).
pub fn default_propagation(resource: &ResourceType) -> Propagation {
    if resource.group == "batch" && resource.plural == "jobs" {
        Propagation::Orphan
    } else {
        Propagation::Background
    }
}

/// Deletes one object as the real server would, then runs the garbage collector.
pub fn delete(
    store: &mut Store,
    resource: &ResourceType,
    key: &ObjectKey,
    options: &DeleteOptions,
) -> Result<Deleted, ApiError> {
    let Some(object) = store.get(key).cloned() else {
        return Err(ApiError::not_found(
            &resource.group,
            &resource.plural,
            &key.name,
        ));
    };
    let uid = meta::meta_str(&object, "uid").to_string();
    if let Some(expected) = &options.uid
        && *expected != uid
    {
        return Err(ApiError::conflict(
            format!(
                "Precondition failed: UID in precondition: {expected}, UID in object meta: {uid}"
            ),
            &resource.group,
            &resource.plural,
            &key.name,
        ));
    }
    if let Some(expected) = &options.resource_version
        && expected != meta::meta_str(&object, "resourceVersion")
    {
        return Err(ApiError::conflict(
            format!(
                "Precondition failed: ResourceVersion in precondition: {expected}, ResourceVersion in object meta: {}",
                meta::meta_str(&object, "resourceVersion")
            ),
            &resource.group,
            &resource.plural,
            &key.name,
        ));
    }
    if options.dry_run {
        return Ok(Deleted {
            code: 200,
            body: object,
        });
    }
    let propagation = options
        .propagation
        .unwrap_or_else(|| default_propagation(resource));
    let deleted = delete_object(store, key, propagation, options.grace_period);
    collect_garbage(store);
    Ok(match deleted {
        Outcome::Removed(object) => Deleted {
            code: 200,
            body: if resource.plural == "pods" || resource.is_custom() {
                object
            } else {
                deleted_status(&resource.group, &resource.plural, &key.name, &uid)
            },
        },
        Outcome::Graceful(object) => Deleted {
            code: 200,
            body: object,
        },
        Outcome::Finalizing(object) => Deleted {
            code: 202,
            body: object,
        },
        Outcome::Missing => Deleted {
            code: 200,
            body: deleted_status(&resource.group, &resource.plural, &key.name, &uid),
        },
    })
}

/// What happened to an object a delete was asked for.
#[derive(Debug)]
pub enum Outcome {
    /// Gone from the store.
    Removed(Value),
    /// A running pod marked for deletion; its kubelet finishes the job.
    Graceful(Value),
    /// Finalizers hold it with a deletionTimestamp.
    Finalizing(Value),
    /// It was not there.
    Missing,
}

/// Deletes `key` without the collector pass (callers run it).
pub fn delete_object(
    store: &mut Store,
    key: &ObjectKey,
    propagation: Propagation,
    grace_period: Option<i64>,
) -> Outcome {
    let Some(mut object) = store.get(key).cloned() else {
        return Outcome::Missing;
    };
    let is_pod = key.storage.group.is_empty() && key.storage.plural == "pods";
    if meta::is_deleting(&object) {
        // A second delete of a terminating pod may shorten its grace period to zero (the
        // kubelet's final delete); anything else just reports the pending deletion.
        if is_pod && grace_period == Some(0) {
            if meta::finalizers(&object).is_empty() {
                return remove(store, key).map_or(Outcome::Missing, Outcome::Removed);
            }
            meta::metadata_mut(&mut object).insert("deletionGracePeriodSeconds".into(), json!(0));
            return Outcome::Finalizing(store.put(key.clone(), object));
        }
        return if meta::finalizers(&object).is_empty() {
            Outcome::Graceful(object)
        } else {
            Outcome::Finalizing(object)
        };
    }
    if is_pod {
        let scheduled = !meta::path(&object, "spec.nodeName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty();
        let terminal = matches!(
            meta::path(&object, "status.phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed")
        );
        let grace = grace_period
            .or_else(|| {
                meta::path(&object, "spec.terminationGracePeriodSeconds").and_then(Value::as_i64)
            })
            .unwrap_or(30);
        if scheduled && !terminal && grace > 0 {
            let metadata = meta::metadata_mut(&mut object);
            metadata.insert("deletionTimestamp".into(), json!(meta::now_plus(grace)));
            metadata.insert("deletionGracePeriodSeconds".into(), json!(grace));
            add_propagation_finalizer(&mut object, propagation);
            let stored = store.put(key.clone(), object);
            return Outcome::Graceful(stored);
        }
    }
    add_propagation_finalizer(&mut object, propagation);
    // A namespace always terminates first (its `kubernetes` finalizer): the collector empties
    // it, then removes it.
    let is_namespace = key.storage.group.is_empty() && key.storage.plural == "namespaces";
    if meta::finalizers(&object).is_empty() && !is_namespace {
        return remove(store, key).map_or(Outcome::Missing, Outcome::Removed);
    }
    let metadata = meta::metadata_mut(&mut object);
    metadata.insert("deletionTimestamp".into(), json!(meta::now()));
    metadata.insert("deletionGracePeriodSeconds".into(), json!(0));
    if is_namespace {
        object["status"] = json!({"phase": "Terminating"});
    }
    Outcome::Finalizing(store.put(key.clone(), object))
}

fn add_propagation_finalizer(object: &mut Value, propagation: Propagation) {
    let finalizer = match propagation {
        Propagation::Background => return,
        Propagation::Foreground => "foregroundDeletion",
        Propagation::Orphan => "orphan",
    };
    let mut finalizers = meta::finalizers(object);
    if !finalizers.iter().any(|f| f == finalizer) {
        finalizers.push(finalizer.to_string());
        meta::set_finalizers(object, &finalizers);
    }
}

/// Removes an object for good, with what the real server does when some kinds go: a CRD takes
/// its custom resources and its API with it.
pub fn remove(store: &mut Store, key: &ObjectKey) -> Option<Value> {
    let object = store.remove(key)?;
    if key.storage.group == "apiextensions.k8s.io"
        && key.storage.plural == "customresourcedefinitions"
    {
        if let Some(types) = store
            .registry
            .types()
            .iter()
            .find(|t| t.crd.as_deref() == Some(key.name.as_str()))
            .map(ResourceType::storage)
        {
            let keys: Vec<ObjectKey> = store
                .list(&types, None)
                .into_iter()
                .map(|(k, _)| k.clone())
                .collect();
            for custom in keys {
                store.remove(&custom);
            }
        }
        store.registry.unregister_crd(&key.name);
    }
    Some(object)
}

/// One pass after another until nothing changes: orphan and foreground finalizers, dependents
/// whose owners are all gone, and the contents of terminating namespaces.
pub fn collect_garbage(store: &mut Store) {
    // Bounded: every pass removes a finalizer, a reference or an object, or stops.
    for _ in 0..10_000 {
        if !collect_once(store) {
            return;
        }
    }
}

fn collect_once(store: &mut Store) -> bool {
    let objects: Vec<(ObjectKey, Value)> =
        store.all().map(|(k, v)| (k.clone(), v.clone())).collect();
    // Owners may live on the real server the stand-in delegates custom resources to.
    let uids: std::collections::HashSet<String> = objects
        .iter()
        .map(|(_, o)| meta::meta_str(o, "uid").to_string())
        .chain(store.external.objects().map(|o| o.reference.uid.clone()))
        .collect();
    let dependents_of = |uid: &str| -> Vec<(ObjectKey, Value)> {
        objects
            .iter()
            .filter(|(_, o)| meta::owner_uids(o).iter().any(|(owner, _)| owner == uid))
            .cloned()
            .collect()
    };
    for (key, object) in &objects {
        if !meta::is_deleting(object) {
            continue;
        }
        let uid = meta::meta_str(object, "uid");
        let finalizers = meta::finalizers(object);
        if finalizers.iter().any(|f| f == "orphan") {
            for (dependent_key, dependent) in dependents_of(uid) {
                store.put(dependent_key, without_owner(dependent, uid));
            }
            drop_finalizer(store, key, object, "orphan");
            return true;
        }
        if finalizers.iter().any(|f| f == "foregroundDeletion") {
            let dependents = dependents_of(uid);
            let mut changed = false;
            for (dependent_key, dependent) in &dependents {
                if !meta::is_deleting(dependent) {
                    delete_object(store, dependent_key, Propagation::Foreground, None);
                    changed = true;
                }
            }
            let blocking = dependents
                .iter()
                .any(|(k, d)| store.get(k).is_some() && blocks_owner(d, uid))
                || delete_external_dependents(store, uid);
            if !blocking {
                drop_finalizer(store, key, object, "foregroundDeletion");
                return true;
            }
            if changed {
                return true;
            }
        }
        if key.storage.group.is_empty() && key.storage.plural == "namespaces" {
            let contents: Vec<ObjectKey> = objects
                .iter()
                .filter(|(k, _)| k.namespace == key.name)
                .map(|(k, _)| k.clone())
                .collect();
            let external: Vec<_> = store
                .external
                .objects()
                .filter(|o| o.reference.namespace == key.name)
                .map(|o| o.reference.clone())
                .collect();
            let waiting_for_external = !external.is_empty();
            for reference in external {
                store.external.request(ExternalAction::Delete(reference));
            }
            if contents.is_empty() && !waiting_for_external {
                remove(store, key);
                return true;
            }
            let mut changed = false;
            for content in contents {
                if store.get(&content).is_some_and(|o| !meta::is_deleting(o)) {
                    delete_object(store, &content, Propagation::Background, None);
                    changed = true;
                }
            }
            if changed {
                return true;
            }
        }
    }
    if collect_for_external_owners(store, &objects) {
        return true;
    }
    for (key, object) in &objects {
        let owners = meta::owner_uids(object);
        if owners.is_empty() || meta::is_deleting(object) {
            continue;
        }
        if owners.iter().all(|(owner, _)| !uids.contains(owner)) {
            delete_object(store, key, Propagation::Background, None);
            return true;
        }
    }
    let orphaned: Vec<ExternalRef> = store
        .external
        .objects()
        .filter(|o| !o.deleting && !o.owners.is_empty())
        .filter(|o| o.owners.iter().all(|(owner, _)| !uids.contains(owner)))
        .map(|o| o.reference.clone())
        .collect();
    for reference in orphaned {
        store.external.request(ExternalAction::Delete(reference));
    }
    false
}

/// Asks the real server to delete the external dependents of `uid`; true while any that block
/// the owner's deletion remain.
fn delete_external_dependents(store: &mut Store, uid: &str) -> bool {
    let dependents: Vec<(ExternalRef, bool, bool)> = store
        .external
        .objects()
        .filter_map(|o| {
            o.owned_by(uid)
                .map(|blocks| (o.reference.clone(), blocks, o.deleting))
        })
        .collect();
    let mut blocking = false;
    for (reference, blocks, deleting) in dependents {
        blocking |= blocks;
        if !deleting {
            store.external.request(ExternalAction::Delete(reference));
        }
    }
    blocking
}

/// The `orphan` and `foregroundDeletion` finalizers of owners on the real server: the
/// stand-in's dependents are orphaned or deleted here, then the finalizer is removed there.
/// True when the store changed.
fn collect_for_external_owners(store: &mut Store, objects: &[(ObjectKey, Value)]) -> bool {
    let deleting: Vec<(ExternalRef, Vec<String>)> = store
        .external
        .objects()
        .filter(|o| o.deleting)
        .map(|o| (o.reference.clone(), o.finalizers.clone()))
        .collect();
    for (owner, finalizers) in deleting {
        let uid = owner.uid.as_str();
        let dependents: Vec<&(ObjectKey, Value)> = objects
            .iter()
            .filter(|(_, o)| meta::owner_uids(o).iter().any(|(u, _)| u == uid))
            .collect();
        if finalizers.iter().any(|f| f == "orphan") {
            if let Some((dependent_key, dependent)) = dependents.first() {
                store.put(dependent_key.clone(), without_owner(dependent.clone(), uid));
                return true;
            }
            store
                .external
                .request(ExternalAction::RemoveFinalizer(owner, "orphan".into()));
            continue;
        }
        if finalizers.iter().any(|f| f == "foregroundDeletion") {
            if let Some((dependent_key, _)) = dependents.iter().find(|(_, d)| !meta::is_deleting(d))
            {
                delete_object(store, dependent_key, Propagation::Foreground, None);
                return true;
            }
            let blocking = dependents.iter().any(|(_, d)| blocks_owner(d, uid));
            if !blocking && !delete_external_dependents(store, uid) {
                store.external.request(ExternalAction::RemoveFinalizer(
                    owner,
                    "foregroundDeletion".into(),
                ));
            }
        }
    }
    false
}

/// Whether `dependent` holds back the foreground deletion of its owner `uid`
/// (`blockOwnerDeletion`).
fn blocks_owner(dependent: &Value, uid: &str) -> bool {
    meta::owner_uids(dependent)
        .iter()
        .any(|(owner, blocks)| owner == uid && *blocks)
}

/// `dependent` without its owner reference to `uid` (the `orphan` propagation).
fn without_owner(mut dependent: Value, uid: &str) -> Value {
    if let Some(refs) = dependent
        .pointer_mut("/metadata/ownerReferences")
        .and_then(Value::as_array_mut)
    {
        refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
        if refs.is_empty() {
            meta::metadata_mut(&mut dependent).remove("ownerReferences");
        }
    }
    dependent
}

fn drop_finalizer(store: &mut Store, key: &ObjectKey, object: &Value, finalizer: &str) {
    let mut object = object.clone();
    let finalizers: Vec<String> = meta::finalizers(&object)
        .into_iter()
        .filter(|f| f != finalizer)
        .collect();
    meta::set_finalizers(&mut object, &finalizers);
    if finalizers.is_empty() && meta::is_deleting(&object) && !is_pending_pod(key, &object) {
        remove(store, key);
    } else {
        store.put(key.clone(), object);
    }
}

/// A pod still waiting for its kubelet to finish a graceful deletion (the kubelet's own
/// delete with grace period 0 removes it).
pub fn is_pending_pod(key: &ObjectKey, object: &Value) -> bool {
    key.storage.group.is_empty()
        && key.storage.plural == "pods"
        && meta::path(object, "metadata.deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .is_some_and(|g| g > 0)
}
