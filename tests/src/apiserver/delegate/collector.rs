//! The garbage collector's reach into the real server, as kube-controller-manager's collector
//! watches every resource of a cluster: one watch on CRDs, one per custom resource they define,
//! keeping the store's [`External`](crate::apiserver::external::External) view current and
//! collecting garbage on each change; and the task that carries out what the collector asks of
//! the real server (delete an object, remove a finalizer it has honoured).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

use crate::apiserver::deletion::collect_garbage;
use crate::apiserver::external::{ExternalAction, ExternalObject, ExternalRef};
use crate::apiserver::routes::Shared;

/// Starts the CRD watch and the action task on the current runtime.
pub fn start(shared: Arc<Shared>, client: kube::Client) {
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    shared.lock().external.connect(sender);
    tokio::spawn(act(Arc::clone(&shared), client.clone(), receiver));
    tokio::spawn(watch_definitions(shared, client));
}

/// The resource a CRD serves objects at (its storage version, else its first served one).
pub fn resource_of(crd: &CustomResourceDefinition) -> Option<ApiResource> {
    let spec = &crd.spec;
    let version = spec
        .versions
        .iter()
        .find(|v| v.storage && v.served)
        .or_else(|| spec.versions.iter().find(|v| v.served))?;
    Some(ApiResource {
        group: spec.group.clone(),
        version: version.name.clone(),
        api_version: format!("{}/{}", spec.group, version.name),
        kind: spec.names.kind.clone(),
        plural: spec.names.plural.clone(),
    })
}

/// A watcher's events, re-listing with back-off after errors (which it passes over: the
/// re-list that follows an error brings the state back).
fn events<K>(api: Api<K>) -> futures::stream::BoxStream<'static, Event<K>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .filter_map(|event| futures::future::ready(event.ok()))
        .boxed()
}

async fn watch_definitions(shared: Arc<Shared>, client: kube::Client) {
    let definitions: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut watches: BTreeMap<String, (ApiResource, JoinHandle<()>)> = BTreeMap::new();
    let mut listed: HashSet<String> = HashSet::new();
    let mut stream = events(definitions);
    while let Some(event) = stream.next().await {
        match event {
            Event::Init => listed.clear(),
            Event::InitApply(crd) | Event::Apply(crd) => {
                let name = crd.metadata.name.clone().unwrap_or_default();
                listed.insert(name.clone());
                let Some(resource) = resource_of(&crd) else {
                    continue;
                };
                let current = watches.get(&name).map(|(r, _)| r.clone());
                if current.as_ref() != Some(&resource) {
                    if let Some((old, task)) = watches.remove(&name) {
                        task.abort();
                        forget(&shared, &old);
                    }
                    let task = tokio::spawn(watch_objects(
                        Arc::clone(&shared),
                        client.clone(),
                        resource.clone(),
                    ));
                    watches.insert(name, (resource, task));
                }
            }
            Event::Delete(crd) => {
                let name = crd.metadata.name.clone().unwrap_or_default();
                if let Some((resource, task)) = watches.remove(&name) {
                    task.abort();
                    forget(&shared, &resource);
                }
            }
            Event::InitDone => {
                let gone: Vec<String> = watches
                    .keys()
                    .filter(|n| !listed.contains(*n))
                    .cloned()
                    .collect();
                for name in gone {
                    if let Some((resource, task)) = watches.remove(&name) {
                        task.abort();
                        forget(&shared, &resource);
                    }
                }
            }
        }
    }
}

/// A CRD went, and its objects with it.
fn forget(shared: &Shared, resource: &ApiResource) {
    let mut store = shared.lock();
    for uid in store.external.uids_of(&resource.group, &resource.plural) {
        store.external.remove(&uid);
    }
    collect_garbage(&mut store);
}

fn external(resource: &ApiResource, object: &DynamicObject) -> Option<ExternalObject> {
    let value = serde_json::to_value(object).ok()?;
    ExternalObject::from_object(&resource.group, &resource.version, &resource.plural, &value)
}

async fn watch_objects(shared: Arc<Shared>, client: kube::Client, resource: ApiResource) {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let mut listed: HashSet<String> = HashSet::new();
    let mut stream = events(api);
    while let Some(event) = stream.next().await {
        match event {
            Event::Init => listed.clear(),
            Event::InitApply(object) | Event::Apply(object) => {
                let Some(seen) = external(&resource, &object) else {
                    continue;
                };
                listed.insert(seen.reference.uid.clone());
                let mut store = shared.lock();
                store.external.upsert(seen);
                collect_garbage(&mut store);
            }
            Event::Delete(object) => {
                let Some(seen) = external(&resource, &object) else {
                    continue;
                };
                let mut store = shared.lock();
                store.external.remove(&seen.reference.uid);
                collect_garbage(&mut store);
            }
            Event::InitDone => {
                // Objects known before a re-list but not in it may have gone while the watch
                // was down, or been created after the list began: ask before forgetting.
                let unlisted: Vec<ExternalRef> = {
                    let store = shared.lock();
                    store
                        .external
                        .objects()
                        .filter(|o| {
                            o.reference.group == resource.group
                                && o.reference.plural == resource.plural
                                && !listed.contains(&o.reference.uid)
                        })
                        .map(|o| o.reference.clone())
                        .collect()
                };
                for reference in unlisted {
                    if !exists(&client, &reference).await {
                        let mut store = shared.lock();
                        store.external.remove(&reference.uid);
                        collect_garbage(&mut store);
                    }
                }
            }
        }
    }
}

/// Whether the object (with this uid) is still on the real server; true when unsure.
async fn exists(client: &kube::Client, reference: &ExternalRef) -> bool {
    let Ok(request) = http::Request::get(reference.path()).body(Vec::new()) else {
        return true;
    };
    match client.request::<Value>(request).await {
        Ok(object) => {
            object.pointer("/metadata/uid").and_then(Value::as_str) == Some(&reference.uid)
        }
        Err(kube::Error::Api(status)) if status.code == 404 => false,
        Err(_) => true,
    }
}

async fn act(
    shared: Arc<Shared>,
    client: kube::Client,
    mut actions: UnboundedReceiver<ExternalAction>,
) {
    while let Some(action) = actions.recv().await {
        let gone = match &action {
            ExternalAction::Delete(reference) => delete(&client, reference).await,
            ExternalAction::RemoveFinalizer(reference, finalizer) => {
                remove_finalizer(&client, reference, finalizer).await;
                false
            }
        };
        // Done or failed: the next change the watches see decides whether to ask again.
        let mut store = shared.lock();
        store.external.done(&action);
        if gone && let ExternalAction::Delete(reference) = &action {
            // Already gone (no watch event will say so again): forget it here.
            store.external.remove(&reference.uid);
            collect_garbage(&mut store);
        }
    }
}

/// Deletes the object; true when the real server says it is not there (404, or 409: the uid
/// precondition failed, so the name now holds another object).
async fn delete(client: &kube::Client, reference: &ExternalRef) -> bool {
    let options = json!({"kind": "DeleteOptions", "apiVersion": "v1",
                         "propagationPolicy": "Background",
                         "preconditions": {"uid": reference.uid}});
    let Ok(request) = http::Request::delete(reference.path())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(options.to_string().into_bytes())
    else {
        return false;
    };
    matches!(
        client.request_text(request).await,
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409
    )
}

async fn remove_finalizer(client: &kube::Client, reference: &ExternalRef, finalizer: &str) {
    let Ok(request) = http::Request::get(reference.path()).body(Vec::new()) else {
        return;
    };
    let Ok(object) = client.request::<Value>(request).await else {
        return;
    };
    if object.pointer("/metadata/uid").and_then(Value::as_str) != Some(&reference.uid) {
        return;
    }
    let finalizers: Vec<Value> = object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter(|f| *f != finalizer).cloned().collect())
        .unwrap_or_default();
    // The resourceVersion makes it a compare-and-swap: a concurrent change wins and the
    // watches see it.
    let patch = json!({"metadata": {"finalizers": finalizers,
                                    "resourceVersion": object.pointer("/metadata/resourceVersion")}});
    let Ok(request) = http::Request::patch(reference.path())
        .header(http::header::CONTENT_TYPE, "application/merge-patch+json")
        .body(patch.to_string().into_bytes())
    else {
        return;
    };
    let _ = client.request_text(request).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crd_is_watched_at_its_storage_version() {
        let crd: CustomResourceDefinition = serde_json::from_value(json!({
            "metadata": {"name": "widgets.example.dev"},
            "spec": {"group": "example.dev", "scope": "Namespaced",
                     "names": {"plural": "widgets", "kind": "Widget"},
                     "versions": [
                        {"name": "v1beta1", "served": true, "storage": false},
                        {"name": "v1", "served": true, "storage": true}]}
        }))
        .unwrap();
        let resource = resource_of(&crd).unwrap();
        assert_eq!(resource.api_version, "example.dev/v1");
        assert_eq!(
            (resource.kind.as_str(), resource.plural.as_str()),
            ("Widget", "widgets")
        );
    }
}
