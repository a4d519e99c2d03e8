//! Recording samples without locks on the hot path.
//!
//! Each runtime worker thread accumulates samples in a thread-local store; it moves them into
//! its shared shard every 100 ms of activity and whenever it parks (wire
//! [`flush_current_thread`] to tokio's `on_thread_park`). The collector reads only the shards,
//! so a VU never waits for another thread, and the one mutex per shard is taken by its owner
//! a few times a second and by the collector once a second.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::registry::{Metric, Registry};
use super::snapshot::{Snapshot, Trend, Value};
use super::tags::SampleTags;

/// How stale a busy thread's local samples may get before it moves them to its shard.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Samples between two clock reads of the flush check.
const CHECK_CLOCK_EVERY: u32 = 64;

/// Figures of one interval of the time series (reset when the collector takes them).
#[derive(Debug, Clone, Default)]
pub struct Interval {
    /// Requests.
    pub requests: u64,
    /// Requests that failed (`http_req_failed`).
    pub failed: u64,
    /// Completed iterations.
    pub iterations: u64,
    /// Dropped iterations.
    pub dropped: u64,
    /// Responses with a 4xx status.
    pub client_errors: u64,
    /// Responses with a 5xx status.
    pub server_errors: u64,
    /// Requests with no response (status 0: refused, reset, timed out, …).
    pub no_response: u64,
    /// Those by k6 `error_code` (a handful of codes at most: a linear list).
    pub no_response_codes: Vec<(u32, u64)>,
    /// `http_req_duration` of the interval.
    pub duration: Trend,
}

impl Interval {
    fn count_no_response(&mut self, code: u32, count: u64) {
        match self.no_response_codes.iter_mut().find(|(c, _)| *c == code) {
            Some((_, n)) => *n += count,
            None => self.no_response_codes.push((code, count)),
        }
    }

    fn reset(&mut self) {
        self.requests = 0;
        self.failed = 0;
        self.iterations = 0;
        self.dropped = 0;
        self.client_errors = 0;
        self.server_errors = 0;
        self.no_response = 0;
        self.no_response_codes.clear();
        self.duration.reset();
    }

    fn merge(&mut self, other: &Interval) {
        self.requests += other.requests;
        self.failed += other.failed;
        self.client_errors += other.client_errors;
        self.server_errors += other.server_errors;
        self.no_response += other.no_response;
        for (code, count) in &other.no_response_codes {
            self.count_no_response(*code, *count);
        }
        self.iterations += other.iterations;
        self.dropped += other.dropped;
        self.duration.merge(&other.duration);
    }
}

#[derive(Debug)]
struct ShardData {
    values: Vec<Value>,
    interval: Interval,
}

#[derive(Debug)]
struct Shard {
    data: Mutex<ShardData>,
    unflushed: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn empty_values(registry: &Registry) -> Vec<Value> {
    registry
        .series()
        .iter()
        .map(|series| Value::empty(series.metric.kind()))
        .collect()
}

/// The shared side of recording: the registry, every thread's shard, and the gauges the
/// collector sets.
#[derive(Debug)]
pub struct Shards {
    id: usize,
    registry: Arc<Registry>,
    shards: Mutex<Vec<Arc<Shard>>>,
    gauges: Mutex<Vec<Value>>,
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

struct Local {
    owner: usize,
    shard: Arc<Shard>,
    values: Vec<Value>,
    interval: Interval,
    dirty: bool,
    since_clock: u32,
    last_flush: Instant,
}

impl Local {
    fn flush(&mut self) {
        if !self.dirty {
            return;
        }
        let mut data = lock(&self.shard.data);
        for (shared, local) in data.values.iter_mut().zip(&mut self.values) {
            if local.has_samples() {
                shared.merge(local);
                // Reset in place: a flush every 100 ms must not reallocate every histogram.
                local.reset();
            }
        }
        data.interval.merge(&self.interval);
        drop(data);
        self.interval.reset();
        self.dirty = false;
        self.shard.unflushed.store(false, Ordering::Release);
        self.last_flush = Instant::now();
    }
}

thread_local! {
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
}

/// Moves this thread's local samples into its shard (call from tokio's `on_thread_park`).
pub fn flush_current_thread() {
    LOCAL.with(|local| {
        if let Ok(mut local) = local.try_borrow_mut()
            && let Some(local) = local.as_mut()
        {
            local.flush();
        }
    });
}

impl Shards {
    /// Shards recording the series of `registry`.
    pub fn new(registry: Arc<Registry>) -> Arc<Shards> {
        let gauges = empty_values(&registry);
        Arc::new(Shards {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            registry,
            shards: Mutex::new(Vec::new()),
            gauges: Mutex::new(gauges),
        })
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// A recorder handle for VUs.
    pub fn recorder(self: &Arc<Self>) -> Recorder {
        Recorder {
            shards: Arc::clone(self),
        }
    }

    /// Sets a gauge (vus, vus_max): only the collector calls this.
    pub fn set_gauge(&self, metric: Metric, value: f64) {
        let id = self.registry.root(metric);
        lock(&self.gauges)[id].add(value);
    }

    /// Everything recorded so far (flushed samples, plus gauges).
    pub fn snapshot(&self) -> Snapshot {
        let mut values = lock(&self.gauges).clone();
        for shard in lock(&self.shards).iter() {
            let data = lock(&shard.data);
            for (total, value) in values.iter_mut().zip(&data.values) {
                if value.has_samples() {
                    total.merge(value);
                }
            }
        }
        Snapshot::from_values(&self.registry, &values)
    }

    /// Takes the interval figures recorded since the last call.
    pub fn take_interval(&self) -> Interval {
        let mut total = Interval::default();
        for shard in lock(&self.shards).iter() {
            let mut data = lock(&shard.data);
            total.merge(&data.interval);
            data.interval = Interval::default();
        }
        total
    }

    /// Whether every thread has moved its samples to its shard.
    pub fn all_flushed(&self) -> bool {
        lock(&self.shards)
            .iter()
            .all(|shard| !shard.unflushed.load(Ordering::Acquire))
    }

    /// Waits (bounded by `limit`) until every worker thread has flushed; worker threads flush
    /// when they park, which they do as soon as the VUs are done.
    pub async fn wait_flushed(&self, limit: Duration) {
        flush_current_thread();
        let deadline = Instant::now() + limit;
        while !self.all_flushed() && Instant::now() < deadline {
            // Sleeping parks this worker, which flushes it; the others park when idle.
            tokio::time::sleep(Duration::from_millis(1)).await;
            flush_current_thread();
        }
    }
}

/// The handle VUs record through. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Recorder {
    shards: Arc<Shards>,
}

/// One HTTP request's figures, for [`Recorder::http`].
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpFigures {
    /// Whether `http_req_failed` counts it as failed.
    pub failed: bool,
    /// Phases in ms: blocked, connecting, tls_handshaking, sending, waiting, receiving.
    pub phases: [f64; 6],
    /// Duration in ms (sending + waiting + receiving).
    pub duration: f64,
    /// Bytes written.
    pub sent: u64,
    /// Bytes read.
    pub received: u64,
}

impl Recorder {
    /// The registry of the series recorded.
    pub fn registry(&self) -> &Registry {
        &self.shards.registry
    }

    fn with_local<R>(&self, f: impl FnOnce(&mut Local, &Registry) -> R) -> R {
        LOCAL.with(|cell| {
            let mut slot = cell.borrow_mut();
            let stale = slot
                .as_ref()
                .is_none_or(|local| local.owner != self.shards.id);
            if stale {
                if let Some(old) = slot.as_mut() {
                    old.flush();
                }
                let shard = Arc::new(Shard {
                    data: Mutex::new(ShardData {
                        values: empty_values(&self.shards.registry),
                        interval: Interval::default(),
                    }),
                    unflushed: AtomicBool::new(false),
                });
                lock(&self.shards.shards).push(Arc::clone(&shard));
                *slot = Some(Local {
                    owner: self.shards.id,
                    shard,
                    values: empty_values(&self.shards.registry),
                    interval: Interval::default(),
                    dirty: false,
                    since_clock: 0,
                    last_flush: Instant::now(),
                });
            }
            let local = slot.as_mut().expect("local store was just initialised");
            if !local.dirty {
                local.dirty = true;
                local.shard.unflushed.store(true, Ordering::Release);
            }
            let result = f(local, &self.shards.registry);
            local.since_clock += 1;
            if local.since_clock >= CHECK_CLOCK_EVERY {
                local.since_clock = 0;
                if local.last_flush.elapsed() >= FLUSH_EVERY {
                    local.flush();
                }
            }
            result
        })
    }

    /// Adds `value` to `metric`'s series that match `tags`.
    pub fn add(&self, metric: Metric, tags: &SampleTags<'_>, value: f64) {
        self.with_local(|local, registry| {
            registry.matching(metric, tags, |id| local.values[id].add(value));
        });
    }

    /// Records one HTTP request (k6: http_reqs, http_req_failed, the timing trends, data).
    pub fn http(&self, tags: &SampleTags<'_>, figures: &HttpFigures) {
        const PHASES: [Metric; 6] = [
            Metric::HttpReqBlocked,
            Metric::HttpReqConnecting,
            Metric::HttpReqTlsHandshaking,
            Metric::HttpReqSending,
            Metric::HttpReqWaiting,
            Metric::HttpReqReceiving,
        ];
        self.with_local(|local, registry| {
            let values = &mut local.values;
            registry.matching(Metric::HttpReqs, tags, |id| values[id].add(1.0));
            let failed = if figures.failed { 1.0 } else { 0.0 };
            registry.matching(Metric::HttpReqFailed, tags, |id| values[id].add(failed));
            registry.matching(Metric::HttpReqDuration, tags, |id| {
                values[id].add(figures.duration)
            });
            for (metric, value) in PHASES.iter().zip(figures.phases) {
                registry.matching(*metric, tags, |id| values[id].add(value));
            }
            registry.matching(Metric::DataSent, tags, |id| {
                values[id].add(figures.sent as f64)
            });
            registry.matching(Metric::DataReceived, tags, |id| {
                values[id].add(figures.received as f64)
            });
            local.interval.requests += 1;
            local.interval.failed += u64::from(figures.failed);
            match tags.status {
                Some(0) => {
                    local.interval.no_response += 1;
                    local
                        .interval
                        .count_no_response(tags.error_code.unwrap_or(1000), 1);
                }
                Some(400..=499) => local.interval.client_errors += 1,
                Some(500..=599) => local.interval.server_errors += 1,
                _ => {}
            }
            local.interval.duration.record(figures.duration);
        });
    }

    /// Records a completed iteration.
    pub fn iteration(&self, tags: &SampleTags<'_>, millis: f64) {
        self.with_local(|local, registry| {
            registry.matching(Metric::Iterations, tags, |id| local.values[id].add(1.0));
            registry.matching(Metric::IterationDuration, tags, |id| {
                local.values[id].add(millis)
            });
            local.interval.iterations += 1;
        });
    }

    /// Records dropped iterations.
    pub fn dropped(&self, tags: &SampleTags<'_>, count: u64) {
        if count == 0 {
            return;
        }
        self.with_local(|local, registry| {
            registry.matching(Metric::DroppedIterations, tags, |id| {
                local.values[id].add(count as f64)
            });
            local.interval.dropped += count;
        });
    }
}
