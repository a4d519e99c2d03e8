//! The demo server's shared state, a sharded map for it, and random id helpers.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::DemoConfig;
use super::concerts::Concerts;
use super::plain::Plain;
use super::reservations::Reservations;
use super::routes::Stats;
use super::shop::Shop;
use super::stock::Stock;

/// Everything one demo server knows; shared by its connections behind an `Arc`.
#[derive(Debug)]
pub(crate) struct State {
    pub config: DemoConfig,
    pub stats: Stats,
    pub plain: Plain,
    pub stock: Stock,
    pub reservations: Reservations,
    pub shop: Shop,
    pub concerts: Concerts,
}

impl State {
    pub fn new(config: DemoConfig) -> Self {
        State {
            stats: Stats::default(),
            plain: Plain::new(),
            stock: Stock::default(),
            reservations: Reservations::new(),
            shop: Shop::new(),
            concerts: Concerts::new(config.seats_per_schedule, config.active_queue_size),
            config,
        }
    }
}

/// Locks a std mutex, ignoring poisoning (no handler panics while holding one).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

const SHARDS: usize = 64;

/// A hash map split into independently locked shards, so that requests for different keys
/// rarely contend. Locks are held only for the map operation itself, never across an await.
#[derive(Debug)]
pub(crate) struct Sharded<K, V> {
    hasher: RandomState,
    shards: Box<[Mutex<HashMap<K, V>>]>,
}

impl<K: Hash + Eq, V> Default for Sharded<K, V> {
    fn default() -> Self {
        Sharded {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

impl<K: Hash + Eq, V> Sharded<K, V> {
    /// Runs `f` on the shard that holds `key`, under that shard's lock.
    pub fn with<Q, R>(&self, key: &Q, f: impl FnOnce(&mut HashMap<K, V>) -> R) -> R
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        // `Borrow` guarantees that `key` hashes like the `K` it stands for.
        let index = (self.hasher.hash_one(key) as usize) % SHARDS;
        f(&mut lock(&self.shards[index]))
    }

    /// A clone of the value of `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.with(key, |map| map.get(key).cloned())
    }

    /// Removes `key` and returns its value.
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.with(key, |map| map.remove(key))
    }

    /// Inserts `key` → `value`.
    pub fn insert(&self, key: K, value: V) {
        let index = (self.hasher.hash_one(&key) as usize) % SHARDS;
        lock(&self.shards[index]).insert(key, value);
    }
}

/// Waits `latency`: a simulated database write, called while holding a per-user lock.
pub(crate) async fn simulate_write(latency: Duration) {
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
}

/// 32 random lowercase hex characters (session ids, tokens).
pub(crate) fn hex_id() -> String {
    format!("{:032x}", fastrand::u128(..))
}

/// A random version-4 UUID in its usual text form.
pub(crate) fn uuid_v4() -> String {
    crate::engine::calls::uuid_v4(fastrand::u128(..)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_has_version_and_variant() {
        let id = uuid_v4();
        assert_eq!(id.len(), 36);
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
    }

    #[test]
    fn sharded_map_round_trip() {
        let map: Sharded<String, u32> = Sharded::default();
        map.insert("a".to_string(), 1);
        assert_eq!(map.get("a"), Some(1));
        assert_eq!(map.remove("a"), Some(1));
        assert_eq!(map.get("a"), None);
        assert_eq!(hex_id().len(), 32);
    }
}
