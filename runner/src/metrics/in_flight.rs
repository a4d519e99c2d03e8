//! How many requests are awaiting their response right now, counted without a shared hot
//! cache line: each thread adds to its own padded slot and the collector sums the slots once
//! a second. A request may end on another thread than it began (tasks move between worker
//! threads), so a slot can go negative; the sum cannot.

use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

/// Slots (more than worker threads on any machine this runs on; threads beyond share them).
const SLOTS: usize = 64;

/// One slot on its own cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Slot(AtomicI64);

/// The count of requests in flight.
#[derive(Debug)]
pub struct InFlight {
    slots: Box<[Slot]>,
}

impl Default for InFlight {
    fn default() -> Self {
        InFlight {
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
        }
    }
}

static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD_SLOT: Cell<Option<usize>> = const { Cell::new(None) };
}

fn thread_slot() -> usize {
    THREAD_SLOT.with(|slot| {
        *slot
            .get()
            .get_or_insert_with(|| NEXT_SLOT.fetch_add(1, Ordering::Relaxed) % SLOTS)
    })
}

impl InFlight {
    /// Counts a request from now until the guard drops (its response, its error, or the task
    /// cancelled by the hard stop).
    pub fn begin(&self) -> InFlightGuard<'_> {
        self.slots[thread_slot()].0.fetch_add(1, Ordering::Relaxed);
        InFlightGuard { count: self }
    }

    /// Requests in flight now.
    pub fn now(&self) -> u64 {
        let sum: i64 = self.slots.iter().map(|s| s.0.load(Ordering::Relaxed)).sum();
        sum.max(0) as u64
    }
}

/// Ends a request's count when dropped.
#[derive(Debug)]
pub struct InFlightGuard<'a> {
    count: &'a InFlight,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.count.slots[thread_slot()]
            .0
            .fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_begun_on_one_thread_and_ended_on_another_still_count_right() {
        let count = InFlight::default();
        let guards: Vec<InFlightGuard<'_>> = (0..5).map(|_| count.begin()).collect();
        assert_eq!(count.now(), 5);
        std::thread::scope(|scope| {
            scope.spawn(|| drop(guards));
        });
        assert_eq!(count.now(), 0);
        let _one = count.begin();
        assert_eq!(count.now(), 1);
    }
}
