//! What the stand-in knows of the objects a real apiextensions server stores for it (custom
//! resources, when it delegates): their identity, owners and deletion state, so that its
//! garbage collector follows owner references across the two stores as kube-controller-manager
//! does on a real cluster, and the actions the collector asks of the real server.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use super::meta;

/// Where an object lives on the real server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExternalRef {
    /// API group.
    pub group: String,
    /// Served version the reference uses.
    pub version: String,
    /// Resource (plural).
    pub plural: String,
    /// Namespace, "" for cluster-scoped.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Its uid (a precondition of every action, so a new object of the same name is safe).
    pub uid: String,
}

impl ExternalRef {
    /// The object's URL path on the real server.
    pub fn path(&self) -> String {
        let namespace = if self.namespace.is_empty() {
            String::new()
        } else {
            format!("namespaces/{}/", self.namespace)
        };
        format!(
            "/apis/{}/{}/{namespace}{}/{}",
            self.group, self.version, self.plural, self.name
        )
    }
}

/// One object of the real server, as the collector needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalObject {
    /// Where it is.
    pub reference: ExternalRef,
    /// Its owners' uids, with whether each blocks the owner's deletion.
    pub owners: Vec<(String, bool)>,
    /// Whether it has a deletionTimestamp.
    pub deleting: bool,
    /// Its finalizers.
    pub finalizers: Vec<String>,
}

impl ExternalObject {
    /// Reads an object of resource `group/version/plural` (None without a uid or name).
    pub fn from_object(group: &str, version: &str, plural: &str, object: &Value) -> Option<Self> {
        let uid = meta::meta_str(object, "uid");
        let name = meta::meta_str(object, "name");
        if uid.is_empty() || name.is_empty() {
            return None;
        }
        Some(ExternalObject {
            reference: ExternalRef {
                group: group.to_string(),
                version: version.to_string(),
                plural: plural.to_string(),
                namespace: meta::meta_str(object, "namespace").to_string(),
                name: name.to_string(),
                uid: uid.to_string(),
            },
            owners: meta::owner_uids(object),
            deleting: meta::is_deleting(object),
            finalizers: meta::finalizers(object),
        })
    }

    /// Whether `uid` is one of its owners (and whether that reference blocks deletion).
    pub fn owned_by(&self, uid: &str) -> Option<bool> {
        self.owners
            .iter()
            .find(|(owner, _)| owner == uid)
            .map(|(_, blocks)| *blocks)
    }
}

/// What the collector asks of the real server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExternalAction {
    /// Delete the object (background propagation), e.g. its owners are gone or its namespace
    /// is being emptied.
    Delete(ExternalRef),
    /// Remove a finalizer (`foregroundDeletion` or `orphan`) the collector has honoured.
    RemoveFinalizer(ExternalRef, String),
}

/// The real server's objects as last seen, and the channel to the task that acts on it.
#[derive(Debug, Default)]
pub struct External {
    objects: BTreeMap<String, ExternalObject>,
    actions: Option<UnboundedSender<ExternalAction>>,
    requested: HashSet<ExternalAction>,
}

impl External {
    /// Connects the channel to the task that performs actions; until then (in-memory mode)
    /// nothing is external.
    pub fn connect(&mut self, actions: UnboundedSender<ExternalAction>) {
        self.actions = Some(actions);
    }

    /// Whether a real server stands behind the stand-in.
    pub fn is_connected(&self) -> bool {
        self.actions.is_some()
    }

    /// Records an object as it is now.
    pub fn upsert(&mut self, object: ExternalObject) {
        self.objects.insert(object.reference.uid.clone(), object);
    }

    /// Forgets an object (it is gone from the real server).
    pub fn remove(&mut self, uid: &str) -> Option<ExternalObject> {
        self.requested.retain(|action| match action {
            ExternalAction::Delete(r) | ExternalAction::RemoveFinalizer(r, _) => r.uid != uid,
        });
        self.objects.remove(uid)
    }

    /// Whether an object with this uid exists on the real server.
    pub fn contains(&self, uid: &str) -> bool {
        self.objects.contains_key(uid)
    }

    /// Every known object.
    pub fn objects(&self) -> impl Iterator<Item = &ExternalObject> {
        self.objects.values()
    }

    /// The uids of known objects of one resource.
    pub fn uids_of(&self, group: &str, plural: &str) -> Vec<String> {
        self.objects
            .values()
            .filter(|o| o.reference.group == group && o.reference.plural == plural)
            .map(|o| o.reference.uid.clone())
            .collect()
    }

    /// Asks the action task for `action`, once until it has been done.
    pub fn request(&mut self, action: ExternalAction) {
        let Some(actions) = &self.actions else {
            return;
        };
        if self.requested.insert(action.clone()) {
            // A closed channel means the server is shutting down.
            let _ = actions.send(action);
        }
    }

    /// Marks an action done (it may be asked for again if the state still calls for it).
    pub fn done(&mut self, action: &ExternalAction) {
        self.requested.remove(action);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(uid: &str, owners: Value) -> Value {
        json!({"metadata": {"name": "lt", "namespace": "ns", "uid": uid,
                            "ownerReferences": owners, "finalizers": ["a"]}})
    }

    #[test]
    fn reads_identity_owners_and_deletion_state() {
        let seen = ExternalObject::from_object(
            "stampede.dev",
            "v1alpha1",
            "loadtests",
            &object(
                "u1",
                json!([{"uid": "o1", "blockOwnerDeletion": true}, {"uid": "o2"}]),
            ),
        )
        .unwrap();
        assert_eq!(
            seen.reference.path(),
            "/apis/stampede.dev/v1alpha1/namespaces/ns/loadtests/lt"
        );
        assert_eq!(seen.owned_by("o1"), Some(true));
        assert_eq!(seen.owned_by("o2"), Some(false));
        assert_eq!(seen.owned_by("o3"), None);
        assert!(!seen.deleting);
        assert_eq!(seen.finalizers, ["a"]);
        assert!(ExternalObject::from_object("g", "v", "p", &json!({"metadata": {}})).is_none());
    }

    #[test]
    fn an_action_is_sent_once_until_done_or_the_object_goes() {
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        let mut external = External::default();
        let seen =
            ExternalObject::from_object("g", "v", "things", &object("u1", json!([]))).unwrap();
        let action = ExternalAction::Delete(seen.reference.clone());
        external.request(action.clone());
        assert!(receiver.try_recv().is_err(), "not connected: nothing sent");
        external.connect(sender);
        external.upsert(seen);
        external.request(action.clone());
        external.request(action.clone());
        assert_eq!(receiver.try_recv().ok(), Some(action.clone()));
        assert!(receiver.try_recv().is_err(), "asked once");
        external.done(&action);
        external.request(action.clone());
        assert_eq!(receiver.try_recv().ok(), Some(action.clone()));
        external.remove("u1");
        assert!(!external.contains("u1"));
        external.request(action.clone());
        assert_eq!(
            receiver.try_recv().ok(),
            Some(action),
            "forgotten with the object"
        );
    }
}
