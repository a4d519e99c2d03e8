//! The six k6 executors at run time, driven by the pure schedules of `crate::schedule`:
//! closed models loop VUs (constant, ramping with LIFO ramp-down, shared and per-VU
//! iterations); open models hand each scheduled start to an idle VU or drop it — never queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use stampede_crds::Executor;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::flow::CompiledFlow;
use super::progress::ScenarioCounters;
use super::shared::{ScenarioContext, Shared};
use super::vu::{IterationEnd, Vu};
use crate::metrics::SampleTags;
use crate::schedule::ScenarioPlan;

/// VU gauges of the whole test, read by the collector every second.
#[derive(Debug, Default)]
pub struct VuGauges {
    /// VUs executing an iteration (k6 `vus` for arrival rates) or looping (closed models).
    pub active: AtomicI64,
    /// VUs initialized (k6 `vus_max`).
    pub allocated: AtomicI64,
}

/// Test-wide controls.
#[derive(Debug)]
pub struct Controls {
    /// Cancelled to stop starting iterations (abortOnFail, first Ctrl-C): in-flight iterations
    /// get their scenario's gracefulStop, then are interrupted.
    pub stop: CancellationToken,
    /// Gauges.
    pub gauges: VuGauges,
    /// Test start.
    pub start: Instant,
    /// Next local VU number.
    next_vu: AtomicU64,
    /// Number of runners (VU numbers are striped over them so they are unique in the test).
    pub runner_count: u64,
}

impl Controls {
    /// Controls for a test starting at `start`.
    pub fn new(start: Instant, runner_count: u64) -> Self {
        Controls::with_stop(start, runner_count, CancellationToken::new())
    }

    /// Controls whose graceful stop is `stop` (a child of a token someone outside cancels).
    pub fn with_stop(start: Instant, runner_count: u64, stop: CancellationToken) -> Self {
        Controls {
            stop,
            gauges: VuGauges::default(),
            start,
            next_vu: AtomicU64::new(0),
            runner_count: runner_count.max(1),
        }
    }

    fn new_vu(&self, shared: &Shared) -> Vu {
        let local = self.next_vu.fetch_add(1, Ordering::Relaxed);
        self.gauges.allocated.fetch_add(1, Ordering::Relaxed);
        Vu::new(local * self.runner_count + shared.runner_index + 1, shared)
    }

    fn release_vu(&self) {
        self.gauges.allocated.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One scenario ready to run.
#[derive(Debug, Clone)]
pub struct ScenarioJob {
    /// Context (name, tags, env).
    pub context: Arc<ScenarioContext>,
    /// The flow each iteration runs.
    pub flow: Arc<CompiledFlow>,
    /// Its schedule for this runner's segment.
    pub plan: Arc<ScenarioPlan>,
    /// Its VUs and iterations so far (what its progress bar shows).
    pub counters: Arc<ScenarioCounters>,
}

/// Everything a VU task needs.
#[derive(Clone)]
struct Env {
    job: ScenarioJob,
    shared: Arc<Shared>,
    controls: Arc<Controls>,
    /// Interrupts running iterations (hard stop).
    hard: CancellationToken,
    /// Local iteration counter, mapped to test-wide numbers by the iteration segment.
    iterations: Arc<AtomicU64>,
}

impl Env {
    fn iteration_number(&self) -> u64 {
        let local = self.iterations.fetch_add(1, Ordering::Relaxed);
        match self.job.plan.iteration_segment() {
            Some(segment) => segment.nth_owned(local),
            None => local,
        }
    }

    /// Runs one iteration unless interrupted; `None` when interrupted (no iteration sample,
    /// as in k6).
    async fn run_one(
        &self,
        vu: &mut Vu,
        number: u64,
        hard: &CancellationToken,
    ) -> Option<IterationEnd> {
        let gauges = &self.controls.gauges;
        let counters = &self.job.counters;
        gauges.active.fetch_add(1, Ordering::Relaxed);
        counters.active.fetch_add(1, Ordering::Relaxed);
        let result = tokio::select! {
            biased;
            _ = hard.cancelled() => None,
            end = vu.iteration(&self.shared, &self.job.context, &self.job.flow, number) => Some(end),
        };
        gauges.active.fetch_sub(1, Ordering::Relaxed);
        counters.active.fetch_sub(1, Ordering::Relaxed);
        match &result {
            None => counters.interrupted.fetch_add(1, Ordering::Relaxed),
            Some(IterationEnd::DataExhausted) => 0,
            Some(_) => counters.completed.fetch_add(1, Ordering::Relaxed),
        };
        result
    }

    fn dropped(&self, count: u64) {
        let tags = SampleTags {
            scenario: Some(&self.job.context.name),
            custom: &self.job.context.tags,
            ..SampleTags::default()
        };
        self.shared.recorder.dropped(&tags, count);
    }
}

/// Runs a scenario to its end (regular end, then gracefulStop), returning when every VU of
/// it has stopped.
pub async fn run_scenario(job: ScenarioJob, shared: Arc<Shared>, controls: Arc<Controls>) {
    let plan = Arc::clone(&job.plan);
    if !plan.has_work() {
        return;
    }
    let scenario_start = controls.start + plan.start_time();
    tokio::select! {
        _ = sleep_until(scenario_start) => {}
        _ = controls.stop.cancelled() => return,
    }
    let env = Env {
        job,
        shared,
        controls: Arc::clone(&controls),
        hard: CancellationToken::new(),
        iterations: Arc::new(AtomicU64::new(0)),
    };
    let regular_end = scenario_start + plan.regular_duration();
    let hard_end = scenario_start + plan.max_duration();
    // The hard stop: at the scenario's max duration, or gracefulStop after an abort.
    let hard = env.hard.clone();
    let stop = controls.stop.clone();
    let graceful = plan.graceful_stop();
    let hard_timer = tokio::spawn(async move {
        tokio::select! {
            _ = sleep_until(hard_end) => {}
            _ = async { stop.cancelled().await; tokio::time::sleep(graceful).await } => {}
        }
        hard.cancel();
    });
    match plan.executor() {
        Executor::ConstantVus => {
            closed_loop(&env, plan.vus().unwrap_or(0), regular_end, None).await
        }
        Executor::SharedIterations => {
            let remaining = Arc::new(AtomicI64::new(plan.iterations().unwrap_or(0) as i64));
            closed_loop(
                &env,
                plan.vus().unwrap_or(0),
                regular_end,
                Some(Budget::Shared(Arc::clone(&remaining))),
            )
            .await;
            let left = remaining.load(Ordering::Relaxed).max(0) as u64;
            env.dropped(left);
        }
        Executor::PerVuIterations => {
            let dropped = Arc::new(AtomicU64::new(0));
            let per_vu = plan.iterations_per_vu().unwrap_or(1);
            closed_loop(
                &env,
                plan.vus().unwrap_or(0),
                regular_end,
                Some(Budget::PerVu(per_vu, Arc::clone(&dropped))),
            )
            .await;
            env.dropped(dropped.load(Ordering::Relaxed));
        }
        Executor::RampingVus => ramping_vus(&env, scenario_start, regular_end).await,
        Executor::ConstantArrivalRate | Executor::RampingArrivalRate => {
            arrival_rate(&env, scenario_start, regular_end).await
        }
    }
    hard_timer.abort();
}

/// How many iterations closed-model VUs may run.
#[derive(Clone)]
enum Budget {
    /// A pool shared by all VUs (shared-iterations).
    Shared(Arc<AtomicI64>),
    /// Each VU runs this many; unrun ones are counted as dropped.
    PerVu(u64, Arc<AtomicU64>),
}

/// Closed models with a fixed VU count: loop until the regular end or the budget runs out.
async fn closed_loop(env: &Env, vus: u64, regular_end: Instant, budget: Option<Budget>) {
    let mut tasks = JoinSet::new();
    for _ in 0..vus {
        let env = env.clone();
        let budget = budget.clone();
        tasks.spawn(async move {
            let mut vu = env.controls.new_vu(&env.shared);
            let mut done = 0u64;
            loop {
                if Instant::now() >= regular_end
                    || env.controls.stop.is_cancelled()
                    || env.hard.is_cancelled()
                {
                    break;
                }
                match &budget {
                    Some(Budget::Shared(left)) if left.fetch_sub(1, Ordering::Relaxed) <= 0 => {
                        left.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Some(Budget::PerVu(limit, _)) if done >= *limit => break,
                    _ => {}
                }
                let number = env.iteration_number();
                let hard = env.hard.clone();
                match env.run_one(&mut vu, number, &hard).await {
                    None => break,
                    Some(IterationEnd::DataExhausted) => break,
                    Some(_) => done += 1,
                }
            }
            if let Some(Budget::PerVu(limit, dropped)) = &budget {
                dropped.fetch_add(limit.saturating_sub(done), Ordering::Relaxed);
            }
            env.controls.release_vu();
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// One VU slot of a ramping-vus scenario.
struct Slot {
    /// Whether the slot should keep starting iterations.
    active: Arc<AtomicBool>,
    /// Hard stop of this slot's VU (gracefulRampDown after it was ramped down).
    hard: CancellationToken,
    /// Bumped each time the slot is ramped down, so a stale ramp-down timer does nothing.
    generation: Arc<AtomicU64>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// ramping-vus: follow the segment's VU steps; a ramp-down stops the highest slots (LIFO),
/// letting their iterations finish within gracefulRampDown; a ramp-up reuses slots still
/// finishing.
async fn ramping_vus(env: &Env, scenario_start: Instant, regular_end: Instant) {
    let ramp_down_time = env
        .job
        .plan
        .graceful_ramp_down()
        .unwrap_or(Duration::from_secs(30));
    let mut slots: Vec<Slot> = Vec::new();
    // Slots [0, active) are active, the rest are not: a step touches only the slots it changes,
    // so a ramp to 20 000 VUs does O(change) work per step, not O(slots).
    let mut active = 0usize;
    let plan = Arc::clone(&env.job.plan);
    for step in plan.vu_steps() {
        let at = scenario_start + step.at;
        tokio::select! {
            biased;
            _ = env.controls.stop.cancelled() => break,
            _ = env.hard.cancelled() => break,
            _ = sleep_until(at) => {}
        }
        let target = usize::try_from(step.planned_vus).unwrap_or(usize::MAX);
        if target > active {
            while slots.len() < target {
                slots.push(Slot {
                    active: Arc::new(AtomicBool::new(false)),
                    hard: env.hard.child_token(),
                    generation: Arc::new(AtomicU64::new(0)),
                    task: None,
                });
            }
            for slot in &mut slots[active..target] {
                ramp_up(env, slot, regular_end);
            }
        } else {
            for slot in &slots[target..active] {
                ramp_down(slot, ramp_down_time);
            }
        }
        active = target;
    }
    for slot in &slots {
        slot.active.store(false, Ordering::Release);
    }
    for slot in slots {
        if let Some(task) = slot.task {
            let _ = task.await;
        }
    }
}

/// Makes `slot` active: its VU keeps starting iterations, started again if it had ended.
fn ramp_up(env: &Env, slot: &mut Slot, regular_end: Instant) {
    if !slot.active.swap(true, Ordering::AcqRel) {
        slot.generation.fetch_add(1, Ordering::AcqRel);
    }
    let running = slot.task.as_ref().is_some_and(|t| !t.is_finished());
    if !running {
        if slot.hard.is_cancelled() {
            slot.hard = env.hard.child_token();
        }
        slot.task = Some(spawn_ramping_vu(
            env,
            Arc::clone(&slot.active),
            slot.hard.clone(),
            regular_end,
        ));
    }
}

/// Ramps `slot` down: its VU finishes its iteration, or is interrupted after gracefulRampDown
/// unless ramped up again meanwhile.
fn ramp_down(slot: &Slot, ramp_down_time: Duration) {
    let running = slot.task.as_ref().is_some_and(|t| !t.is_finished());
    if slot.active.swap(false, Ordering::AcqRel) && running {
        let generation = slot.generation.fetch_add(1, Ordering::AcqRel) + 1;
        let (hard, generation_now, active) = (
            slot.hard.clone(),
            Arc::clone(&slot.generation),
            Arc::clone(&slot.active),
        );
        tokio::spawn(async move {
            tokio::time::sleep(ramp_down_time).await;
            if generation_now.load(Ordering::Acquire) == generation
                && !active.load(Ordering::Acquire)
            {
                hard.cancel();
            }
        });
    }
}

fn spawn_ramping_vu(
    env: &Env,
    active: Arc<AtomicBool>,
    hard: CancellationToken,
    regular_end: Instant,
) -> tokio::task::JoinHandle<()> {
    let env = env.clone();
    tokio::spawn(async move {
        let mut vu = env.controls.new_vu(&env.shared);
        while active.load(Ordering::Acquire)
            && Instant::now() < regular_end
            && !env.controls.stop.is_cancelled()
            && !hard.is_cancelled()
        {
            let number = env.iteration_number();
            match env.run_one(&mut vu, number, &hard).await {
                None | Some(IterationEnd::DataExhausted) => break,
                Some(_) => {}
            }
        }
        env.controls.release_vu();
    })
}

/// Arrival-rate executors: at each scheduled start, hand the iteration to an idle VU without
/// blocking; with none idle, count a dropped iteration and (below maxVUs) add one VU.
async fn arrival_rate(env: &Env, scenario_start: Instant, regular_end: Instant) {
    let plan = Arc::clone(&env.job.plan);
    let max_vus = plan.max_vus();
    let (idle_tx, mut idle_rx) = mpsc::unbounded_channel::<usize>();
    let mut workers: Vec<mpsc::Sender<u64>> = Vec::new();
    let mut idle: Vec<usize> = Vec::new();
    let mut tasks = JoinSet::new();
    // A new VU is idle from the moment it exists: its one-slot job channel holds a hand-off
    // until its task first runs.
    let spawn_worker =
        |workers: &mut Vec<mpsc::Sender<u64>>, idle: &mut Vec<usize>, tasks: &mut JoinSet<()>| {
            let index = workers.len();
            let (job_tx, mut job_rx) = mpsc::channel::<u64>(1);
            workers.push(job_tx);
            idle.push(index);
            let env = env.clone();
            let idle_tx = idle_tx.clone();
            tasks.spawn(async move {
                let mut vu = env.controls.new_vu(&env.shared);
                while let Some(number) = job_rx.recv().await {
                    let hard = env.hard.clone();
                    match env.run_one(&mut vu, number, &hard).await {
                        None | Some(IterationEnd::DataExhausted) => break,
                        Some(_) => {}
                    }
                    if idle_tx.send(index).is_err() {
                        break;
                    }
                }
                env.controls.release_vu();
            });
        };
    for _ in 0..plan.pre_allocated_vus().unwrap_or(0) {
        spawn_worker(&mut workers, &mut idle, &mut tasks);
    }
    let mut dropped = 0u64;
    let mut warned = false;
    for arrival in plan.arrival_starts() {
        let at = scenario_start + arrival.at;
        if at > regular_end {
            break;
        }
        if at > Instant::now() {
            tokio::select! {
                _ = sleep_until(at) => {}
                _ = env.controls.stop.cancelled() => break,
            }
        } else if env.controls.stop.is_cancelled() {
            break;
        }
        while let Ok(index) = idle_rx.try_recv() {
            idle.push(index);
        }
        let mut handed = false;
        while let Some(index) = idle.pop() {
            if workers[index].try_send(arrival.iteration).is_ok() {
                handed = true;
                break;
            }
        }
        if !handed {
            dropped += 1;
            if (workers.len() as u64) < max_vus {
                spawn_worker(&mut workers, &mut idle, &mut tasks);
            } else if !warned {
                warned = true;
                if env.shared.print_errors {
                    eprintln!(
                        "warning [{}]: insufficient VUs, reached {max_vus} maxVUs; iterations are being dropped",
                        env.job.context.name
                    );
                }
            }
        }
        // Report drops in batches so the hot loop stays cheap.
        if dropped >= 64 {
            env.dropped(dropped);
            dropped = 0;
        }
    }
    env.dropped(dropped);
    // Regular end: no new starts; running iterations finish or are interrupted at the hard stop.
    drop(workers);
    drop(idle_tx);
    while tasks.join_next().await.is_some() {}
}
