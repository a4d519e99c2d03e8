//! The object store: one resourceVersion counter, the objects, and the event history that
//! watches resume from (older than the history → 410 Gone, like a compacted etcd).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

use super::external::External;
use super::meta;
use super::registry::{Registry, StorageId};

/// Identity of a stored object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// The resource it belongs to.
    pub storage: StorageId,
    /// Namespace ("" for cluster-scoped).
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// The key of a core-group (`v1`) object: `namespace` is "" for cluster-scoped kinds.
    pub fn core(plural: &str, namespace: &str, name: &str) -> ObjectKey {
        ObjectKey {
            storage: StorageId {
                group: String::new(),
                plural: plural.to_string(),
            },
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

/// Watch event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watches deliver it.
#[derive(Debug, Clone)]
pub struct Event {
    /// The resourceVersion the change got.
    pub rv: u64,
    /// What happened.
    pub event_type: EventType,
    /// Which object.
    pub key: ObjectKey,
    /// The object after the change (before removal for deletes, with the new resourceVersion).
    pub object: Arc<Value>,
    /// The object before the change (None for ADDED), so filtered watches can turn a
    /// modification that leaves or enters the selection into DELETED / ADDED.
    pub previous: Option<Arc<Value>>,
}

/// Everything the server keeps.
#[derive(Debug)]
pub struct Store {
    rv: u64,
    objects: BTreeMap<ObjectKey, Value>,
    history: VecDeque<Event>,
    history_limit: usize,
    /// Changes at or below this resourceVersion are no longer in the history.
    compacted: u64,
    /// The served resource types.
    pub registry: Registry,
    /// Objects of the real server the stand-in delegates custom resources to (none in memory).
    pub external: External,
    sender: broadcast::Sender<Event>,
}

impl Store {
    /// An empty store with the built-in kinds, keeping `history_limit` events for watches.
    pub fn new(history_limit: usize) -> Store {
        let (sender, _) = broadcast::channel(65_536);
        Store {
            rv: 1,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_limit,
            compacted: 1,
            registry: Registry::builtin(),
            external: External::default(),
            sender,
        }
    }

    /// The current resourceVersion.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    /// The stored object.
    pub fn get(&self, key: &ObjectKey) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Objects of one resource, in one namespace (`Some`) or all (`None`), sorted by namespace/name.
    pub fn list(&self, storage: &StorageId, namespace: Option<&str>) -> Vec<(&ObjectKey, &Value)> {
        self.objects
            .iter()
            .filter(|(key, _)| {
                key.storage == *storage && namespace.is_none_or(|ns| key.namespace == ns)
            })
            .collect()
    }

    /// Every object.
    pub fn all(&self) -> impl Iterator<Item = (&ObjectKey, &Value)> {
        self.objects.iter()
    }

    /// Stores `object` under `key` with the next resourceVersion and records the event.
    /// Returns the stored object.
    pub fn put(&mut self, key: ObjectKey, mut object: Value) -> Value {
        let event_type = if self.objects.contains_key(&key) {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.rv += 1;
        meta::metadata_mut(&mut object)
            .insert("resourceVersion".into(), self.rv.to_string().into());
        let previous = self.objects.insert(key.clone(), object.clone());
        self.record(event_type, key, object.clone(), previous);
        object
    }

    /// Removes the object, recording a DELETED event carrying a fresh resourceVersion.
    pub fn remove(&mut self, key: &ObjectKey) -> Option<Value> {
        let mut object = self.objects.remove(key)?;
        self.rv += 1;
        meta::metadata_mut(&mut object)
            .insert("resourceVersion".into(), self.rv.to_string().into());
        self.record(EventType::Deleted, key.clone(), object.clone(), None);
        Some(object)
    }

    fn record(
        &mut self,
        event_type: EventType,
        key: ObjectKey,
        object: Value,
        previous: Option<Value>,
    ) {
        let event = Event {
            rv: self.rv,
            event_type,
            key,
            object: Arc::new(object),
            previous: previous.map(Arc::new),
        };
        self.history.push_back(event.clone());
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted = dropped.rv;
            }
        }
        // No receiver is fine: nobody watches.
        let _ = self.sender.send(event);
    }

    /// Drops the whole history, as an etcd compaction would: watches from any earlier
    /// resourceVersion then get 410 Gone.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rv;
    }

    /// The events after `rv` and a receiver for later ones, taken atomically; `Err(oldest)`
    /// when `rv` is older than the history.
    pub fn watch_from(&self, rv: u64) -> Result<(Vec<Event>, broadcast::Receiver<Event>), u64> {
        if rv < self.compacted {
            return Err(self.compacted);
        }
        let past = self.history.iter().filter(|e| e.rv > rv).cloned().collect();
        Ok((past, self.sender.subscribe()))
    }
}
