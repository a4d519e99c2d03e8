//! The schedule of one scenario on one execution segment: its deadlines, its share of VUs and
//! iterations, the VU count over time (ramping-vus) and every iteration start (arrival rates),
//! computed exactly as k6's executors do (`lib/executor/*.go`).
//!
//! All instants are offsets from the scenario's own start (add [`ScenarioPlan::start_time`]
//! for the test clock) in whole nanoseconds; every instant is computed from its index with
//! integer arithmetic, never by accumulating steps, so nothing drifts over millions of starts.

use std::time::Duration;

use stampede_crds::Executor;
use stampede_crds::model::scenario::{
    self as model, ConstantArrivalRate, Iterations, RampingArrivalRate, RampingVus, Scenario,
};

use super::graceful::reserve_for_graceful_ramp_down;
use super::segment::ExecutionSegment;
use super::wide::U256;

/// One step of a VU requirement curve (k6 `ExecutionStep`): from `at` on, the scenario needs
/// `planned_vus` VUs, and may initialize up to `max_unplanned_vus` more on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VuStep {
    /// Offset from the scenario start.
    pub at: Duration,
    /// VUs the scenario holds from `at` on.
    pub planned_vus: u64,
    /// VUs it may add on demand (arrival-rate `maxVUs - preAllocatedVUs`).
    pub max_unplanned_vus: u64,
}

impl VuStep {
    pub(super) fn planned(at_nanos: u64, planned_vus: u64) -> VuStep {
        VuStep {
            at: Duration::from_nanos(at_nanos),
            planned_vus,
            max_unplanned_vus: 0,
        }
    }

    pub(super) fn at_nanos(&self) -> u64 {
        nanos(self.at)
    }
}

/// One iteration start of an arrival-rate scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Arrival {
    /// The global (test-wide, 0-based) number of this start; unique across segments.
    pub iteration: u64,
    /// When it starts, as an offset from the scenario start.
    pub at: Duration,
}

/// The schedule of one scenario for one execution segment.
#[derive(Debug, Clone)]
pub struct ScenarioPlan {
    executor: Executor,
    segment: ExecutionSegment,
    start_time: u64,
    graceful_stop: u64,
    schedule: Schedule,
}

#[derive(Debug, Clone)]
enum Schedule {
    /// shared-iterations and per-vu-iterations.
    Iterations(IterationsPlan),
    ConstantVus {
        global_vus: u64,
        vus: u64,
        duration: u64,
    },
    RampingVus(RampingVusPlan),
    ArrivalRate(ArrivalPlan),
}

#[derive(Debug, Clone)]
struct IterationsPlan {
    shared: bool,
    global_vus: u64,
    vus: u64,
    /// shared: this segment's share of the iterations; per-vu: iterations per VU.
    iterations: u64,
    max_duration: u64,
    /// The segment whose owned indices are this segment's global iteration numbers.
    iteration_segment: Option<ExecutionSegment>,
}

#[derive(Debug, Clone)]
struct RampingVusPlan {
    start_vus: u64,
    stages: Vec<VuStage>,
    /// Sum of the stage durations.
    end: u64,
    graceful_ramp_down: u64,
    graceful_stop: u64,
    /// This segment's most VUs at once: its share of the largest of startVUs and the targets.
    max_vus: u64,
    /// When this segment's VU count drops to 0 for good (k6's regular duration).
    regular_end: u64,
    /// This segment's VU reservation incl. graceful ramp-down (k6 `GetExecutionRequirements`);
    /// `None` when the ramp has too many steps to hold in memory.
    requirements: Option<Vec<VuStep>>,
}

#[derive(Debug, Clone, Copy)]
struct VuStage {
    start: u64,
    duration: u64,
    from: u64,
    to: u64,
}

#[derive(Debug, Clone)]
struct ArrivalPlan {
    /// `timeUnit` in nanoseconds, at least 1.
    time_unit: u64,
    shape: RateShape,
    /// When starts stop: `duration` or the sum of the stage durations.
    regular: u64,
    /// How many starts the whole test makes.
    global_starts: u64,
    pre_allocated_vus: u64,
    max_vus: u64,
    /// The segment that owns this runner's start numbers; `None` when it has no VUs.
    arrival_segment: Option<ExecutionSegment>,
}

#[derive(Debug, Clone)]
enum RateShape {
    Constant { rate: u64 },
    Ramping { stages: Vec<RateStage> },
}

/// One ramping-arrival-rate stage. Areas are `∫ rate` in "rate × nanoseconds" doubled, so that
/// the number of starts up to a point is `area / (2 · timeUnit)` with integers only.
#[derive(Debug, Clone, Copy)]
struct RateStage {
    start: u64,
    duration: u64,
    from: u64,
    to: u64,
    area_before: u128,
    area_after: u128,
}

/// Ramps with more VU changes than this on one segment keep no step list: their requirements
/// become "the most VUs over the whole window" and their steps are produced lazily, so a typo
/// like `target: 100000000` cannot exhaust memory while a test is being planned. 2^17 is over
/// the operator's default cap of 100 000 VUs per test, so every test it allows by default is
/// planned exactly, and keeps planning any manifest bounded: at 2^20, a 380-byte ramp to
/// 577 781 VUs took 190 ms of CPU to plan (found by the manifest fuzz target).
pub const MAX_MATERIALIZED_STEPS: u64 = 1 << 17;

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// `ceil(k · duration / steps)`: when the `k`-th of `steps` whole-VU changes of a stage happens.
/// k6 computes `end - duration·(T-u)/(T-F)` with truncating division, which is this ceiling.
fn change_offset(k: u64, duration: u64, steps: u64) -> u64 {
    let offset = (u128::from(k) * u128::from(duration)).div_ceil(u128::from(steps.max(1)));
    u64::try_from(offset).unwrap_or(u64::MAX)
}

impl ScenarioPlan {
    /// Plans `scenario` (from the compiled test, k6's defaults applied) for `segment`.
    pub fn new(scenario: &Scenario, segment: &ExecutionSegment) -> ScenarioPlan {
        let start_time = nanos(scenario.start_time);
        let graceful_stop = nanos(scenario.graceful_stop);
        let schedule = match &scenario.executor {
            model::Executor::SharedIterations(iterations) => {
                Schedule::Iterations(IterationsPlan::new(iterations, true, segment))
            }
            model::Executor::PerVuIterations(iterations) => {
                Schedule::Iterations(IterationsPlan::new(iterations, false, segment))
            }
            model::Executor::ConstantVus(constant) => Schedule::ConstantVus {
                global_vus: constant.vus,
                vus: segment.scale(constant.vus),
                duration: nanos(constant.duration),
            },
            model::Executor::RampingVus(ramp) => {
                Schedule::RampingVus(RampingVusPlan::new(ramp, segment, graceful_stop))
            }
            model::Executor::ConstantArrivalRate(constant) => {
                Schedule::ArrivalRate(ArrivalPlan::constant(constant, segment))
            }
            model::Executor::RampingArrivalRate(ramp) => {
                Schedule::ArrivalRate(ArrivalPlan::ramping(ramp, segment))
            }
        };
        ScenarioPlan {
            executor: scenario.executor.kind(),
            segment: segment.clone(),
            start_time,
            graceful_stop,
            schedule,
        }
    }

    /// The executor.
    pub fn executor(&self) -> Executor {
        self.executor
    }

    /// The segment this plan is for.
    pub fn segment(&self) -> &ExecutionSegment {
        &self.segment
    }

    /// Delay from the test start to the scenario start (`startTime`).
    pub fn start_time(&self) -> Duration {
        Duration::from_nanos(self.start_time)
    }

    /// How long iterations may finish after the regular end (`gracefulStop`).
    pub fn graceful_stop(&self) -> Duration {
        Duration::from_nanos(self.graceful_stop)
    }

    /// `gracefulRampDown` of ramping-vus.
    pub fn graceful_ramp_down(&self) -> Option<Duration> {
        match &self.schedule {
            Schedule::RampingVus(plan) => Some(Duration::from_nanos(plan.graceful_ramp_down)),
            _ => None,
        }
    }

    /// `timeUnit` of the arrival-rate executors.
    pub fn time_unit(&self) -> Option<Duration> {
        match &self.schedule {
            Schedule::ArrivalRate(plan) => Some(Duration::from_nanos(plan.time_unit)),
            _ => None,
        }
    }

    /// When the scenario stops starting iterations, from its start: `maxDuration`, `duration`
    /// or the sum of the stages. For ramping-vus it is k6's per-segment value: the instant this
    /// segment's VU count drops to 0 for good, which is before the sum of the stages when the
    /// last stages hold 0 VUs.
    pub fn regular_duration(&self) -> Duration {
        Duration::from_nanos(self.regular_nanos())
    }

    fn regular_nanos(&self) -> u64 {
        match &self.schedule {
            Schedule::Iterations(plan) => plan.max_duration,
            Schedule::ConstantVus { duration, .. } => *duration,
            Schedule::RampingVus(plan) => plan.regular_end,
            Schedule::ArrivalRate(plan) => plan.regular,
        }
    }

    /// When the last iteration is hard-stopped, from the scenario start: the regular duration
    /// plus `gracefulStop`. For ramping-vus it is where k6's VU requirements end: VUs removed by
    /// a ramp-down get `gracefulRampDown` but never past `sum(stages) + gracefulStop`, so a
    /// test that ramps down to 0 ends `gracefulRampDown` after its last VU was removed when
    /// that is earlier.
    pub fn max_duration(&self) -> Duration {
        Duration::from_nanos(self.max_nanos())
    }

    fn max_nanos(&self) -> u64 {
        match &self.schedule {
            Schedule::RampingVus(plan) => plan
                .requirements
                .as_ref()
                .and_then(|steps| steps.last())
                .map_or(
                    plan.end.saturating_add(self.graceful_stop),
                    VuStep::at_nanos,
                ),
            _ => self.regular_nanos().saturating_add(self.graceful_stop),
        }
    }

    /// Whether this segment has anything to run (k6 `HasWork`); a runner skips scenarios
    /// without work.
    pub fn has_work(&self) -> bool {
        match &self.schedule {
            Schedule::Iterations(plan) => plan.vus > 0 && plan.iterations > 0,
            Schedule::ConstantVus { vus, .. } => *vus > 0,
            Schedule::RampingVus(_) => self.max_vus() > 0,
            Schedule::ArrivalRate(plan) => plan.max_vus > 0,
        }
    }

    /// This segment's fixed VU count for shared-iterations, per-vu-iterations and
    /// constant-vus (`vus` striped over the segments).
    pub fn vus(&self) -> Option<u64> {
        match &self.schedule {
            Schedule::Iterations(plan) => Some(plan.vus),
            Schedule::ConstantVus { vus, .. } => Some(*vus),
            _ => None,
        }
    }

    /// The iterations this segment runs in all: its share of shared-iterations' `iterations`
    /// (striped by k6 over the segments that got VUs), or `vus × iterations` for
    /// per-vu-iterations.
    pub fn iterations(&self) -> Option<u64> {
        match &self.schedule {
            Schedule::Iterations(plan) if plan.shared => Some(plan.iterations),
            Schedule::Iterations(plan) => Some(plan.vus.saturating_mul(plan.iterations)),
            _ => None,
        }
    }

    /// Iterations each VU runs in per-vu-iterations; not scaled by the segment (k6).
    pub fn iterations_per_vu(&self) -> Option<u64> {
        match &self.schedule {
            Schedule::Iterations(plan) if !plan.shared => Some(plan.iterations),
            _ => None,
        }
    }

    /// The segment whose owned indices are this segment's global iteration numbers, so
    /// iteration numbers are unique across runners: re-derived from `vus` for
    /// shared-iterations and from `maxVUs` for arrival rates (k6 `GetNewExecutionTupleFromValue`),
    /// the plan's own segment otherwise. `None` when the segment runs no iterations.
    pub fn iteration_segment(&self) -> Option<&ExecutionSegment> {
        match &self.schedule {
            Schedule::Iterations(plan) if plan.shared => plan.iteration_segment.as_ref(),
            Schedule::ArrivalRate(plan) => plan.arrival_segment.as_ref(),
            _ => Some(&self.segment),
        }
    }

    /// `preAllocatedVUs` of an arrival-rate scenario, striped over the segments.
    pub fn pre_allocated_vus(&self) -> Option<u64> {
        match &self.schedule {
            Schedule::ArrivalRate(plan) => Some(plan.pre_allocated_vus),
            _ => None,
        }
    }

    /// The most VUs this scenario holds at once on this segment: `maxVUs` (defaulting to
    /// `preAllocatedVUs`) for arrival rates, the largest of `startVUs` and the stage targets
    /// for ramping-vus, `vus` otherwise — all striped over the segments.
    pub fn max_vus(&self) -> u64 {
        match &self.schedule {
            Schedule::Iterations(plan) => plan.vus,
            Schedule::ConstantVus { vus, .. } => *vus,
            Schedule::RampingVus(plan) => plan.max_vus,
            Schedule::ArrivalRate(plan) => plan.max_vus,
        }
    }

    /// The VUs k6 initializes before the test starts for this scenario: `preAllocatedVUs` for
    /// arrival rates (the rest up to `maxVUs` are made on demand), [`Self::max_vus`] otherwise.
    pub fn initial_vus(&self) -> u64 {
        match &self.schedule {
            Schedule::ArrivalRate(plan) => plan.pre_allocated_vus,
            _ => self.max_vus(),
        }
    }

    /// This segment's VU requirements over time (k6 `GetExecutionRequirements`), ending with a
    /// step to 0 at [`Self::max_duration`]. Ramping-vus keeps VUs reserved for
    /// `gracefulRampDown` after a ramp-down; arrival rates hold `preAllocatedVUs` planned and
    /// `maxVUs - preAllocatedVUs` unplanned for the whole run.
    pub fn requirements(&self) -> Vec<VuStep> {
        let end = self.max_nanos();
        match &self.schedule {
            Schedule::Iterations(plan) if plan.shared && plan.vus == 0 => {
                vec![VuStep::planned(0, 0)]
            }
            Schedule::Iterations(IterationsPlan { vus, .. })
            | Schedule::ConstantVus { vus, .. } => {
                vec![VuStep::planned(0, *vus), VuStep::planned(end, 0)]
            }
            Schedule::RampingVus(plan) => plan.requirements(),
            Schedule::ArrivalRate(plan) => vec![
                VuStep {
                    at: Duration::ZERO,
                    planned_vus: plan.pre_allocated_vus,
                    max_unplanned_vus: plan.max_vus.saturating_sub(plan.pre_allocated_vus),
                },
                VuStep::planned(end, 0),
            ],
        }
    }

    /// The test-wide VU count after each change, starting with the count at 0 and ending with
    /// the drop to 0 at the regular end. For ramping-vus, a stage from `F` to `T` VUs lasting
    /// `D` from `S` makes its `k`-th change (k = 1..|T−F|) at `S + ceil(k·D/|T−F|)` (k6's
    /// integer formula), a 0s stage jumps at once, and several changes may share an instant.
    /// Fixed-VU executors give `[(0, vus), (regular end, 0)]`; arrival rates, whose VUs follow
    /// the arrivals, give nothing. There is one entry per whole-VU change, so a ramp to 100 000
    /// VUs lists 100 000 of them; [`Self::global_vus_at`] answers for one instant in O(stages).
    pub fn vu_changes(&self) -> Vec<(Duration, u64)> {
        let at = Duration::from_nanos;
        match &self.schedule {
            Schedule::Iterations(IterationsPlan { global_vus, .. })
            | Schedule::ConstantVus { global_vus, .. } => {
                vec![(at(0), *global_vus), (at(self.regular_nanos()), 0)]
            }
            Schedule::RampingVus(plan) => plan.global_changes(),
            Schedule::ArrivalRate(_) => Vec::new(),
        }
    }

    /// The test-wide number of looping VUs at `t` (from the scenario start), consistent with
    /// [`Self::vu_changes`]: all changes at or before `t` have happened.
    pub fn global_vus_at(&self, t: Duration) -> u64 {
        let t = nanos(t);
        match &self.schedule {
            Schedule::Iterations(IterationsPlan { global_vus, .. })
            | Schedule::ConstantVus { global_vus, .. } => {
                if t < self.regular_nanos() {
                    *global_vus
                } else {
                    0
                }
            }
            Schedule::RampingVus(plan) => plan.global_vus_at(t),
            Schedule::ArrivalRate(_) => 0,
        }
    }

    /// This segment's number of looping VUs at `t`: the global VU numbers `1..=global` it owns,
    /// so the segments' counts add up to the global count at every instant, and a ramp-down
    /// stops the highest VU numbers first. Arrival rates give 0 (their VUs follow
    /// [`Self::arrivals`]).
    pub fn vus_at(&self, t: Duration) -> u64 {
        self.segment.scale(self.global_vus_at(t))
    }

    /// This segment's VU count changes for ramping-vus, each time it changes, starting at 0 and
    /// ending with 0 at the regular end (k6 raw execution steps), produced lazily. Start VUs
    /// when the count rises; stop the highest-numbered ones gracefully when it falls. Empty
    /// for other executors.
    pub fn vu_steps(&self) -> VuSteps<'_> {
        match &self.schedule {
            Schedule::RampingVus(plan) => plan.steps(&self.segment, true),
            _ => VuSteps {
                plan: None,
                segment: &self.segment,
                zero_end: true,
                stage: 0,
                cursor: None,
                last: None,
            },
        }
    }

    /// How many iterations this segment starts in an arrival-rate scenario (up to the regular
    /// end); 0 for other executors.
    pub fn arrival_count(&self) -> u64 {
        match &self.schedule {
            Schedule::ArrivalRate(plan) => plan
                .arrival_segment
                .as_ref()
                .map_or(0, |segment| segment.scale(plan.global_starts)),
            _ => 0,
        }
    }

    /// How many iterations the whole test starts in an arrival-rate scenario.
    pub fn global_arrival_count(&self) -> u64 {
        match &self.schedule {
            Schedule::ArrivalRate(plan) => plan.global_starts,
            _ => 0,
        }
    }

    /// This segment's iteration starts, in order, as offsets from the scenario start.
    /// constant-arrival-rate starts number `k` (k = 0, 1, …) at `k·timeUnit/rate` while before
    /// `duration`; ramping-arrival-rate starts number `n` (n = 1, 2, …) where `∫₀ᵗ rate = n`,
    /// up to and including the end of the last stage. The global start numbers are striped
    /// over [`Self::iteration_segment`]. Empty for other executors.
    pub fn arrivals(&self) -> impl Iterator<Item = Duration> + '_ {
        self.arrival_starts().map(|arrival| arrival.at)
    }

    /// [`Self::arrivals`] with each start's global iteration number.
    pub fn arrival_starts(&self) -> Arrivals<'_> {
        let (plan, segment) = match &self.schedule {
            Schedule::ArrivalRate(plan) => (Some(plan), plan.arrival_segment.as_ref()),
            _ => (None, None),
        };
        Arrivals {
            plan,
            segment,
            next: 0,
            stage: 0,
        }
    }

    /// The test-wide iteration start rate at `t`, in iterations per second (what the report
    /// draws behind the achieved rate); 0 outside the regular duration and for other executors.
    pub fn global_rate_at(&self, t: Duration) -> f64 {
        let Schedule::ArrivalRate(plan) = &self.schedule else {
            return 0.0;
        };
        plan.global_rate_at(nanos(t)) * 1e9 / plan.time_unit as f64
    }

    /// This segment's iteration start rate at `t`, in iterations per second (for progress
    /// display); 0 outside the regular duration and for other executors.
    pub fn rate_at(&self, t: Duration) -> f64 {
        let Schedule::ArrivalRate(plan) = &self.schedule else {
            return 0.0;
        };
        let share = plan
            .arrival_segment
            .as_ref()
            .map_or(0.0, ExecutionSegment::length);
        plan.global_rate_at(nanos(t)) * 1e9 / plan.time_unit as f64 * share
    }
}

impl IterationsPlan {
    fn new(params: &Iterations, shared: bool, segment: &ExecutionSegment) -> IterationsPlan {
        let global_vus = params.vus;
        let global_iterations = params.iterations;
        let vus = segment.scale(global_vus);
        let max_duration = nanos(params.max_duration);
        if !shared {
            return IterationsPlan {
                shared,
                global_vus,
                vus,
                iterations: global_iterations,
                max_duration,
                iteration_segment: Some(segment.clone()),
            };
        }
        // k6 stripes the shared iterations over the segments re-derived from `vus`, so a
        // runner without VUs gets no iterations and the rest still add up to the total.
        let iteration_segment = rescaled_or_self(segment, global_vus);
        let iterations = iteration_segment
            .as_ref()
            .map_or(0, |segment| segment.scale(global_iterations));
        IterationsPlan {
            shared,
            global_vus,
            vus,
            iterations,
            max_duration,
            iteration_segment,
        }
    }
}

/// [`ExecutionSegment::rescaled`]; if the re-derived sequence is too fine to build (values in
/// the millions with an awkward split), striping by the segment itself still partitions the
/// work exactly.
fn rescaled_or_self(segment: &ExecutionSegment, value: u64) -> Option<ExecutionSegment> {
    match segment.rescaled(value) {
        Ok(rescaled) => rescaled,
        Err(_) => Some(segment.clone()),
    }
}

impl RampingVusPlan {
    fn new(params: &RampingVus, segment: &ExecutionSegment, graceful_stop: u64) -> RampingVusPlan {
        let start_vus = params.start_vus;
        let mut stages = Vec::with_capacity(params.stages.len());
        let (mut start, mut from, mut most) = (0u64, start_vus, start_vus);
        for stage in &params.stages {
            let duration = nanos(stage.duration);
            let to = stage.target;
            stages.push(VuStage {
                start,
                duration,
                from,
                to,
            });
            start = start.saturating_add(duration);
            from = to;
            most = most.max(to);
        }
        let mut plan = RampingVusPlan {
            start_vus,
            stages,
            end: start,
            graceful_ramp_down: nanos(params.graceful_ramp_down),
            graceful_stop,
            max_vus: segment.scale(most),
            regular_end: 0,
            requirements: None,
        };
        plan.regular_end = plan.regular_end(segment);
        if plan.step_count_bound(segment) <= MAX_MATERIALIZED_STEPS {
            plan.requirements = Some(plan.reserve_requirements(segment));
        }
        plan
    }

    /// This segment's VU count changes (k6 `getRawExecutionSteps`), computed lazily.
    fn steps<'a>(&'a self, segment: &'a ExecutionSegment, zero_end: bool) -> VuSteps<'a> {
        VuSteps {
            plan: Some(self),
            segment,
            zero_end,
            stage: 0,
            cursor: None,
            last: None,
        }
    }

    /// At least as many raw steps as [`Self::steps`] yields (k6
    /// `precalculateTheRequiredSteps`), computed without producing them.
    fn step_count_bound(&self, segment: &ExecutionSegment) -> u64 {
        self.stages
            .iter()
            .map(|stage| segment.scale(stage.from).abs_diff(segment.scale(stage.to)))
            .fold(self.stages.len() as u64 + 2, u64::saturating_add)
    }

    /// The instant of the last raw step with `zeroEnd` (k6's regular duration), in closed
    /// form: the end of the stages if this segment still has VUs then, else the moment its
    /// last VU left — the removal of its lowest owned VU number in the last stage that
    /// changed its count.
    fn regular_end(&self, segment: &ExecutionSegment) -> u64 {
        let final_vus = self.stages.last().map_or(self.start_vus, |stage| stage.to);
        if segment.scale(final_vus) != 0 {
            return self.end;
        }
        for stage in self.stages.iter().rev() {
            if segment.scale(stage.from) == segment.scale(stage.to) {
                continue;
            }
            if stage.duration == 0 {
                return stage.start;
            }
            // The count falls to 0 here, so the lowest owned index is in to..from.
            let lowest = segment.nth_owned(0);
            let changes = stage.from.abs_diff(stage.to);
            let offset = change_offset(stage.from.saturating_sub(lowest), stage.duration, changes);
            return stage.start.saturating_add(offset);
        }
        0
    }

    /// k6 `GetExecutionRequirements` for ramping-vus: the raw steps with VUs kept reserved for
    /// `gracefulRampDown` after each ramp-down (`reserveVUsForGracefulRampDowns`), never past
    /// `sum(stages) + gracefulStop`, ending with 0.
    fn reserve_requirements(&self, segment: &ExecutionSegment) -> Vec<VuStep> {
        let raw: Vec<VuStep> = self.steps(segment, false).collect();
        let executor_end = self.end.saturating_add(self.graceful_stop);
        let mut steps = if self.graceful_ramp_down > 0 {
            reserve_for_graceful_ramp_down(&raw, self.graceful_ramp_down, executor_end)
        } else {
            raw
        };
        if steps.last().map(|step| step.planned_vus) != Some(0) {
            steps.push(VuStep::planned(executor_end, 0));
        }
        steps
    }

    /// The requirements: exact when they were materialized, otherwise (ramps with more than
    /// [`MAX_MATERIALIZED_STEPS`] changes) the scenario's most VUs over its whole window,
    /// which k6's curve never exceeds.
    fn requirements(&self) -> Vec<VuStep> {
        match &self.requirements {
            Some(requirements) => requirements.clone(),
            None => vec![
                VuStep::planned(0, self.max_vus),
                VuStep::planned(self.end.saturating_add(self.graceful_stop), 0),
            ],
        }
    }

    fn global_changes(&self) -> Vec<(Duration, u64)> {
        let at = Duration::from_nanos;
        let mut changes = vec![(at(0), self.start_vus)];
        for stage in &self.stages {
            if stage.from == stage.to {
                continue;
            }
            if stage.duration == 0 {
                changes.push((at(stage.start), stage.to));
                continue;
            }
            let count = stage.from.abs_diff(stage.to);
            for k in 1..=count {
                let offset = change_offset(k, stage.duration, count);
                let vus = if stage.to > stage.from {
                    stage.from + k
                } else {
                    stage.from - k
                };
                changes.push((at(stage.start.saturating_add(offset)), vus));
            }
        }
        if changes.last().map(|change| change.1) != Some(0) {
            changes.push((at(self.end), 0));
        }
        changes
    }

    fn global_vus_at(&self, t: u64) -> u64 {
        if t >= self.end {
            return 0;
        }
        let mut vus = self.start_vus;
        for stage in &self.stages {
            if t < stage.start {
                break;
            }
            let changes = stage.from.abs_diff(stage.to);
            let elapsed = t - stage.start;
            // Changes k with ceil(k·D/n) <= elapsed, i.e. k <= elapsed·n/D.
            let done = if elapsed >= stage.duration {
                changes
            } else {
                let k = u128::from(elapsed) * u128::from(changes) / u128::from(stage.duration);
                u64::try_from(k).unwrap_or(changes).min(changes)
            };
            vus = if stage.to >= stage.from {
                stage.from + done
            } else {
                stage.from - done
            };
        }
        vus
    }
}

/// One segment's ramping-vus VU count changes, in order (k6 `getRawExecutionSteps`); see
/// [`ScenarioPlan::vu_steps`]. Only the VU numbers the segment owns are visited: owned VU
/// number `u` (index `u-1`) joins at the change that brings the global count to `u` and
/// leaves at the change that takes it from `u` to `u-1`.
#[derive(Debug, Clone)]
pub struct VuSteps<'a> {
    plan: Option<&'a RampingVusPlan>,
    segment: &'a ExecutionSegment,
    /// Whether to end with a step to 0 at the end of the stages (k6 `zeroEnd`).
    zero_end: bool,
    stage: usize,
    /// Owned VUs at the current position within the current stage.
    cursor: Option<u64>,
    /// The last count produced; `None` before the first step.
    last: Option<u64>,
}

impl VuSteps<'_> {
    /// The next change (instant, new count) in the current stage, or `None` after moving on
    /// to the next stage.
    fn next_in_stage(&mut self, stage: &VuStage) -> Option<(u64, u64)> {
        let segment = self.segment;
        if stage.from == stage.to || stage.duration == 0 {
            self.stage += 1;
            self.cursor = None;
            return (stage.from != stage.to).then(|| (stage.start, segment.scale(stage.to)));
        }
        let changes = stage.from.abs_diff(stage.to);
        let at = |k: u64| {
            stage
                .start
                .saturating_add(change_offset(k, stage.duration, changes))
        };
        let owned = *self.cursor.get_or_insert_with(|| segment.scale(stage.from));
        let change = if stage.to > stage.from {
            let index = segment.nth_owned(owned);
            (index < stage.to).then(|| (at(index + 1 - stage.from), owned + 1))
        } else {
            owned
                .checked_sub(1)
                .map(|below| (below, segment.nth_owned(below)))
                .filter(|&(_, index)| index >= stage.to)
                .map(|(below, index)| (at(stage.from - index), below))
        };
        match change {
            Some((_, count)) => self.cursor = Some(count),
            None => {
                self.stage += 1;
                self.cursor = None;
            }
        }
        change
    }
}

impl Iterator for VuSteps<'_> {
    type Item = VuStep;

    fn next(&mut self) -> Option<VuStep> {
        let plan = self.plan?;
        let Some(last) = self.last else {
            let planned = self.segment.scale(plan.start_vus);
            self.last = Some(planned);
            return Some(VuStep::planned(0, planned));
        };
        while let Some(stage) = plan.stages.get(self.stage) {
            if let Some((at, planned)) = self.next_in_stage(stage)
                && planned != last
            {
                self.last = Some(planned);
                return Some(VuStep::planned(at, planned));
            }
        }
        if self.zero_end && last != 0 {
            self.last = Some(0);
            return Some(VuStep::planned(plan.end, 0));
        }
        None
    }
}

impl ArrivalPlan {
    /// Plans constant-arrival-rate: start `k` at `k·timeUnit/rate` while before `duration`.
    fn constant(params: &ConstantArrivalRate, segment: &ExecutionSegment) -> ArrivalPlan {
        // The model never holds a zero timeUnit; the floor only keeps the division total.
        let time_unit = nanos(params.time_unit).max(1);
        let rate = params.rate;
        let duration = nanos(params.duration);
        // Starts k with k·timeUnit/rate < duration: k < duration·rate/timeUnit.
        let starts = (u128::from(duration) * u128::from(rate)).div_ceil(u128::from(time_unit));
        ArrivalPlan::with_shape(
            time_unit,
            RateShape::Constant { rate },
            duration,
            u64::try_from(starts).unwrap_or(u64::MAX),
            (params.pre_allocated_vus, params.max_vus),
            segment,
        )
    }

    /// Plans ramping-arrival-rate: start `n` where the integral of the rate reaches `n`.
    fn ramping(params: &RampingArrivalRate, segment: &ExecutionSegment) -> ArrivalPlan {
        let time_unit = nanos(params.time_unit).max(1);
        let mut stages = Vec::with_capacity(params.stages.len());
        let (mut start, mut from, mut area) = (0u64, params.start_rate, 0u128);
        for stage in &params.stages {
            let duration = nanos(stage.duration);
            let to = stage.target;
            let area_after = area.saturating_add(
                u128::from(duration).saturating_mul(u128::from(from) + u128::from(to)),
            );
            stages.push(RateStage {
                start,
                duration,
                from,
                to,
                area_before: area,
                area_after,
            });
            (start, from, area) = (start.saturating_add(duration), to, area_after);
        }
        // Starts n >= 1 with n <= ∫ rate, i.e. 2·timeUnit·n <= area.
        let starts = area / (2 * u128::from(time_unit));
        ArrivalPlan::with_shape(
            time_unit,
            RateShape::Ramping { stages },
            start,
            u64::try_from(starts).unwrap_or(u64::MAX),
            (params.pre_allocated_vus, params.max_vus),
            segment,
        )
    }

    fn with_shape(
        time_unit: u64,
        shape: RateShape,
        regular: u64,
        global_starts: u64,
        (global_pre, global_max): (u64, u64),
        segment: &ExecutionSegment,
    ) -> ArrivalPlan {
        ArrivalPlan {
            time_unit,
            shape,
            regular,
            global_starts,
            pre_allocated_vus: segment.scale(global_pre),
            max_vus: segment.scale(global_max),
            // k6 stripes start numbers over the segments re-derived from maxVUs, so a runner
            // with no VUs is dealt no starts (which it could only drop).
            arrival_segment: rescaled_or_self(segment, global_max),
        }
    }

    /// When global start `index` (0-based) happens; `stage` is a cursor into the ramping
    /// stages that only moves forward, as start numbers only grow.
    fn start_at(&self, index: u64, stage: &mut usize) -> u64 {
        match &self.shape {
            RateShape::Constant { rate } => {
                let at =
                    u128::from(index) * u128::from(self.time_unit) / u128::from((*rate).max(1));
                u64::try_from(at).unwrap_or(u64::MAX)
            }
            RateShape::Ramping { stages } => {
                // Start number n = index + 1 happens where 2·timeUnit·n = area.
                let target = 2 * u128::from(self.time_unit) * (u128::from(index) + 1);
                while *stage + 1 < stages.len() && stages[*stage].area_after < target {
                    *stage += 1;
                }
                stages
                    .get(*stage)
                    .map_or(self.regular, |current| ramp_offset(current, target))
            }
        }
    }

    /// The whole test's start rate at `t`, per `timeUnit`.
    fn global_rate_at(&self, t: u64) -> f64 {
        if t >= self.regular {
            return 0.0;
        }
        match &self.shape {
            RateShape::Constant { rate } => *rate as f64,
            RateShape::Ramping { stages } => stages
                .iter()
                .find(|stage| stage.duration > 0 && t < stage.start.saturating_add(stage.duration))
                .map_or(0.0, |stage| {
                    let progress = (t.saturating_sub(stage.start)) as f64 / stage.duration as f64;
                    stage.from as f64 + (stage.to as f64 - stage.from as f64) * progress
                }),
        }
    }
}

/// The offset (from the scenario start) within `stage` where the area reaches `target`
/// (`2·timeUnit·n`), rounded down to the nanosecond like k6's `time.Duration(x)`.
///
/// With `a`, `b` the stage's start and end rates, `D` its duration and `K = target −
/// area_before`, the offset `x` solves `(b−a)·x² + 2aD·x = D·K` — the reference's
/// `x = (aD − √(D(a²D + 2(n−N₀)(b−a))))/(a−b)` — and `x = K/(2a)` at a constant rate. A float
/// estimate is corrected with exact 256-bit comparisons, so the result is the exact floor.
fn ramp_offset(stage: &RateStage, target: u128) -> u64 {
    let excess = target.saturating_sub(stage.area_before);
    let (a, b, d) = (stage.from, stage.to, stage.duration);
    let x = if a == b {
        let x = excess / (2 * u128::from(a.max(1)));
        u64::try_from(x).unwrap_or(d).min(d)
    } else {
        let twice_a_d = 2 * u128::from(a) * u128::from(d);
        let rhs = U256::product(u128::from(d), excess);
        let growth = u128::from(a.abs_diff(b));
        let within = |x: u64| {
            let x = u128::from(x);
            let linear = U256::product(twice_a_d, x);
            let square = U256::product(growth, x * x);
            if b > a {
                square.saturating_add(linear) <= rhs
            } else {
                linear <= rhs.saturating_add(square)
            }
        };
        let (af, df, kf) = (a as f64, d as f64, excess as f64);
        let slope = b as f64 - af;
        let discriminant = (af * af * df * df + slope * df * kf).max(0.0);
        let denominator = af * df + discriminant.sqrt();
        let guess = if denominator > 0.0 {
            df * kf / denominator
        } else {
            0.0
        };
        largest_within(d, guess as u64, within)
    };
    stage.start.saturating_add(x)
}

/// The largest `x` in `0..=limit` with `within(x)`, for a predicate that is true at 0 and
/// monotone (true, then false); starts from `guess` and gallops outwards.
fn largest_within(limit: u64, guess: u64, within: impl Fn(u64) -> bool) -> u64 {
    let guess = guess.min(limit);
    // Invariant: within(low) and (high > limit or !within(high)).
    let (mut low, mut high): (u64, u128);
    if within(guess) {
        low = guess;
        let mut step = 1u64;
        loop {
            let probe = u128::from(low) + u128::from(step);
            if probe > u128::from(limit) {
                high = u128::from(limit) + 1;
                break;
            }
            let probe = probe as u64;
            if within(probe) {
                low = probe;
                step = step.saturating_mul(2);
            } else {
                high = u128::from(probe);
                break;
            }
        }
    } else {
        high = u128::from(guess);
        let mut step = 1u64;
        loop {
            let probe = guess.saturating_sub(step);
            if probe == 0 || within(probe) {
                low = probe;
                break;
            }
            high = u128::from(probe);
            step = step.saturating_mul(2);
        }
    }
    while high - u128::from(low) > 1 {
        let middle = low + ((high - u128::from(low)) / 2) as u64;
        if within(middle) {
            low = middle;
        } else {
            high = u128::from(middle);
        }
    }
    low
}

/// The iteration starts of one segment of an arrival-rate scenario, in order; computed one at
/// a time from their numbers, without allocating. See [`ScenarioPlan::arrivals`].
#[derive(Debug, Clone)]
pub struct Arrivals<'a> {
    plan: Option<&'a ArrivalPlan>,
    segment: Option<&'a ExecutionSegment>,
    /// How many of the segment's starts have been produced.
    next: u64,
    stage: usize,
}

impl Iterator for Arrivals<'_> {
    type Item = Arrival;

    fn next(&mut self) -> Option<Arrival> {
        let plan = self.plan?;
        let segment = self.segment?;
        let iteration = segment.nth_owned(self.next);
        if iteration >= plan.global_starts {
            return None;
        }
        self.next += 1;
        let at = plan.start_at(iteration, &mut self.stage);
        Some(Arrival {
            iteration,
            at: Duration::from_nanos(at),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let total = match (self.plan, self.segment) {
            (Some(plan), Some(segment)) => segment.scale(plan.global_starts),
            _ => 0,
        };
        let left = usize::try_from(total.saturating_sub(self.next)).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stampede_crds::{Scenario, Stage};

    /// Plans a manifest scenario the way a run does: compiled into the model first.
    fn plan_of(scenario: &Scenario, segment: &ExecutionSegment) -> ScenarioPlan {
        ScenarioPlan::new(&compiled(scenario), segment)
    }

    fn compiled(scenario: &Scenario) -> model::Scenario {
        model::build("s", scenario).expect("the test's scenario compiles")
    }

    fn ramp_params(scenario: &Scenario) -> RampingVus {
        match compiled(scenario).executor {
            model::Executor::RampingVus(params) => params,
            other => panic!("not ramping-vus: {other:?}"),
        }
    }

    fn stage(duration: &str, target: i64) -> Stage {
        Stage {
            duration: duration.to_string(),
            target,
        }
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn ramping_vus(start: i64, stages: Vec<Stage>) -> Scenario {
        let mut scenario = Scenario::new(Executor::RampingVus);
        scenario.start_vus = Some(start);
        scenario.stages = stages;
        scenario
    }

    /// A planned step written as (whole seconds, VUs), as k6's tests write them.
    type SecondsAndVus = (u64, u64);

    fn steps(pairs: &[SecondsAndVus]) -> Vec<VuStep> {
        pairs
            .iter()
            .map(|&(s, vus)| VuStep::planned(s * 1_000_000_000, vus))
            .collect()
    }

    fn segment(text: &str, sequence: &str) -> ExecutionSegment {
        ExecutionSegment::parse_in(text, sequence).unwrap()
    }

    /// The reference's ramping-vus example.
    #[test]
    fn ramping_vus_changes_like_k6() {
        let plan = plan_of(
            &ramping_vus(4, vec![stage("2s", 6), stage("5s", 1), stage("1s", 1)]),
            &ExecutionSegment::full(),
        );
        let expected = [
            (0.0, 4),
            (0.999, 4),
            (1.0, 5),
            (2.0, 6),
            (3.0, 5),
            (4.0, 4),
            (5.0, 3),
            (6.0, 2),
            (7.0, 1),
            (7.5, 1),
            (8.0, 0),
        ];
        for (t, vus) in expected {
            assert_eq!(plan.vus_at(secs(t)), vus, "at {t}s");
        }
        let changes: Vec<(f64, u64)> = plan
            .vu_changes()
            .into_iter()
            .map(|(at, vus)| (at.as_secs_f64(), vus))
            .collect();
        assert_eq!(
            changes,
            [
                (0.0, 4),
                (1.0, 5),
                (2.0, 6),
                (3.0, 5),
                (4.0, 4),
                (5.0, 3),
                (6.0, 2),
                (7.0, 1),
                (8.0, 0)
            ]
        );
        // A ramp from 0 to 1 over 10s starts its VU at 10s.
        let plan = plan_of(
            &ramping_vus(0, vec![stage("10s", 1), stage("5s", 1)]),
            &ExecutionSegment::full(),
        );
        assert_eq!(plan.vus_at(Duration::from_nanos(9_999_999_999)), 0);
        assert_eq!(plan.vus_at(secs(10.0)), 1);
        assert_eq!(plan.vu_changes()[1], (secs(10.0), 1));
    }

    fn k6_example() -> Scenario {
        ramping_vus(
            4,
            vec![
                stage("2s", 6),
                stage("5s", 1),
                stage("4s", 5),
                stage("4s", 1),
                stage("3s", 4),
                stage("2s", 4),
                stage("0s", 1),
                stage("3s", 1),
            ],
        )
    }

    /// k6 `TestRampingVUsConfigExecutionPlanExample`.
    #[test]
    fn ramping_vus_requirements_match_k6() {
        let full = ExecutionSegment::full();
        let mut scenario = k6_example();
        let plan = plan_of(&scenario, &full);
        let raw = steps(&[
            (0, 4),
            (1, 5),
            (2, 6),
            (3, 5),
            (4, 4),
            (5, 3),
            (6, 2),
            (7, 1),
            (8, 2),
            (9, 3),
            (10, 4),
            (11, 5),
            (12, 4),
            (13, 3),
            (14, 2),
            (15, 1),
            (16, 2),
            (17, 3),
            (18, 4),
            (20, 1),
            (23, 0),
        ]);
        assert_eq!(plan.vu_steps().collect::<Vec<_>>(), raw);
        assert_eq!(plan.regular_duration(), secs(23.0));
        assert_eq!(
            plan.requirements(),
            steps(&[(0, 4), (1, 5), (2, 6), (33, 5), (42, 4), (50, 1), (53, 0)])
        );
        assert_eq!(plan.max_duration(), secs(53.0));
        assert_eq!(plan.max_vus(), 6);

        scenario.graceful_stop = Some("80s".into());
        assert_eq!(
            plan_of(&scenario, &full).requirements(),
            steps(&[(0, 4), (1, 5), (2, 6), (33, 5), (42, 4), (50, 1), (103, 0)])
        );
        scenario.graceful_stop = Some("3s".into());
        assert_eq!(
            plan_of(&scenario, &full).requirements(),
            steps(&[(0, 4), (1, 5), (2, 6), (26, 0)])
        );
        scenario.graceful_stop = Some("0s".into());
        assert_eq!(
            plan_of(&scenario, &full).requirements(),
            steps(&[(0, 4), (1, 5), (2, 6), (23, 0)])
        );
        scenario.graceful_ramp_down = Some("0s".into());
        assert_eq!(plan_of(&scenario, &full).requirements(), raw);
    }

    /// k6 `TestRampingVUsConfigExecutionPlanExampleOneThird`.
    #[test]
    fn ramping_vus_requirements_match_k6_for_a_third() {
        let third = ExecutionSegment::parse("0:1/3").unwrap();
        let mut scenario = k6_example();
        let plan = plan_of(&scenario, &third);
        assert_eq!(
            plan.vu_steps().collect::<Vec<_>>(),
            steps(&[
                (0, 1),
                (1, 2),
                (4, 1),
                (7, 0),
                (8, 1),
                (11, 2),
                (12, 1),
                (15, 0),
                (16, 1),
                (20, 0)
            ])
        );
        assert_eq!(plan.regular_duration(), secs(20.0));
        assert_eq!(
            plan.requirements(),
            steps(&[(0, 1), (1, 2), (42, 1), (50, 0)])
        );
        scenario.graceful_stop = Some("80s".into());
        assert_eq!(
            plan_of(&scenario, &third).requirements(),
            steps(&[(0, 1), (1, 2), (42, 1), (50, 0)])
        );
        scenario.graceful_stop = Some("3s".into());
        assert_eq!(
            plan_of(&scenario, &third).requirements(),
            steps(&[(0, 1), (1, 2), (26, 0)])
        );
    }

    /// k6 `TestRampingVUsExecutionTupleTests` (raw steps without the zero end).
    #[test]
    fn ramping_vus_segments_match_k6() {
        let mut scenario = k6_example();
        scenario.stages.extend([
            stage("0s", 5),
            stage("3s", 5),
            stage("0s", 0),
            stage("2s", 2),
            stage("2s", 0),
            stage("4s", 4),
        ]);
        let cases: [(&str, &str, &[SecondsAndVus]); 5] = [
            (
                "0:1",
                "",
                &[
                    (0, 4),
                    (1, 5),
                    (2, 6),
                    (3, 5),
                    (4, 4),
                    (5, 3),
                    (6, 2),
                    (7, 1),
                    (8, 2),
                    (9, 3),
                    (10, 4),
                    (11, 5),
                    (12, 4),
                    (13, 3),
                    (14, 2),
                    (15, 1),
                    (16, 2),
                    (17, 3),
                    (18, 4),
                    (20, 1),
                    (23, 5),
                    (26, 0),
                    (27, 1),
                    (28, 2),
                    (29, 1),
                    (30, 0),
                    (31, 1),
                    (32, 2),
                    (33, 3),
                    (34, 4),
                ],
            ),
            (
                "0:1/3",
                "",
                &[
                    (0, 1),
                    (1, 2),
                    (4, 1),
                    (7, 0),
                    (8, 1),
                    (11, 2),
                    (12, 1),
                    (15, 0),
                    (16, 1),
                    (20, 0),
                    (23, 2),
                    (26, 0),
                    (28, 1),
                    (29, 0),
                    (32, 1),
                ],
            ),
            (
                "0:1/3",
                "0,1/3,2/3,1",
                &[
                    (0, 2),
                    (5, 1),
                    (10, 2),
                    (13, 1),
                    (18, 2),
                    (20, 1),
                    (23, 2),
                    (26, 0),
                    (27, 1),
                    (30, 0),
                    (31, 1),
                    (34, 2),
                ],
            ),
            (
                "1/3:2/3",
                "0,1/3,2/3,1",
                &[
                    (0, 1),
                    (1, 2),
                    (4, 1),
                    (7, 0),
                    (8, 1),
                    (11, 2),
                    (12, 1),
                    (15, 0),
                    (16, 1),
                    (20, 0),
                    (23, 2),
                    (26, 0),
                    (28, 1),
                    (29, 0),
                    (32, 1),
                ],
            ),
            (
                "2/3:1",
                "0,1/3,2/3,1",
                &[
                    (0, 1),
                    (2, 2),
                    (3, 1),
                    (6, 0),
                    (9, 1),
                    (14, 0),
                    (17, 1),
                    (20, 0),
                    (23, 1),
                    (26, 0),
                    (33, 1),
                ],
            ),
        ];
        for (text, sequence, expected) in cases {
            let segment = segment(text, sequence);
            let plan = RampingVusPlan::new(&ramp_params(&scenario), &segment, 0);
            let raw: Vec<VuStep> = plan.steps(&segment, false).collect();
            assert_eq!(raw, steps(expected), "{segment:?}");
        }
    }

    /// k6 `TestRampingVUsGetRawExecutionStepsCornerCases`.
    #[test]
    fn ramping_vus_corner_cases_match_k6() {
        let up_down = || {
            vec![
                stage("2s", 2),
                stage("2s", 0),
                stage("2s", 2),
                stage("2s", 0),
            ]
        };
        /// startVUs, stages, segment, sequence, expected raw steps.
        type Case = (
            i64,
            Vec<Stage>,
            &'static str,
            &'static str,
            Vec<SecondsAndVus>,
        );
        let cases: Vec<Case> = vec![
            (
                2,
                vec![stage("0s", 5), stage("2s", 3)],
                "",
                "",
                vec![(0, 2), (0, 5), (1, 4), (2, 3)],
            ),
            (
                3,
                vec![stage("2s", 5)],
                "",
                "",
                vec![(0, 3), (1, 4), (2, 5)],
            ),
            (
                0,
                up_down(),
                "",
                "",
                vec![
                    (0, 0),
                    (1, 1),
                    (2, 2),
                    (3, 1),
                    (4, 0),
                    (5, 1),
                    (6, 2),
                    (7, 1),
                    (8, 0),
                ],
            ),
            (
                0,
                up_down(),
                "0:1/2",
                "",
                vec![(0, 0), (1, 1), (4, 0), (5, 1), (8, 0)],
            ),
            (
                0,
                up_down(),
                "1/2:1",
                "",
                vec![(0, 0), (2, 1), (3, 0), (6, 1), (7, 0)],
            ),
            (0, up_down(), "2/3:1", "0,1/3,2/3,1", vec![(0, 0)]),
            (
                0,
                up_down(),
                "0:1/3",
                "0,1/3,1/2,2/3,1",
                vec![(0, 0), (1, 1), (4, 0), (5, 1), (8, 0)],
            ),
            (
                0,
                vec![stage("20s", 20), stage("30s", 30)],
                "0:0.3",
                "0,0.3,0.6,0.9,1",
                vec![
                    (0, 0),
                    (1, 1),
                    (5, 2),
                    (8, 3),
                    (11, 4),
                    (15, 5),
                    (18, 6),
                    (23, 7),
                    (35, 8),
                    (44, 9),
                ],
            ),
            (
                0,
                vec![stage("5s", 5), stage("5s", 0)],
                "",
                "",
                vec![
                    (0, 0),
                    (1, 1),
                    (2, 2),
                    (3, 3),
                    (4, 4),
                    (5, 5),
                    (6, 4),
                    (7, 3),
                    (8, 2),
                    (9, 1),
                    (10, 0),
                ],
            ),
        ];
        for (start, stages, text, sequence, expected) in cases {
            let segment = if text.is_empty() {
                ExecutionSegment::full()
            } else {
                segment(text, sequence)
            };
            let plan = RampingVusPlan::new(&ramp_params(&ramping_vus(start, stages)), &segment, 0);
            let raw: Vec<VuStep> = plan.steps(&segment, false).collect();
            assert_eq!(raw, steps(&expected), "{segment:?}");
        }
    }

    #[test]
    fn ramping_vus_trailing_zero_stages_end_early_like_k6() {
        let plan = plan_of(
            &ramping_vus(0, vec![stage("10s", 10), stage("10s", 0), stage("30s", 0)]),
            &ExecutionSegment::full(),
        );
        assert_eq!(plan.regular_duration(), secs(20.0));
        // The last VU leaves at 20s and gets the default 30s gracefulRampDown.
        assert_eq!(plan.max_duration(), secs(50.0));
        assert_eq!(plan.vus_at(secs(19.5)), 1);
        assert_eq!(plan.vus_at(secs(20.0)), 0);
    }

    #[test]
    fn ramps_over_the_default_vu_cap_are_not_listed_and_those_under_it_are() {
        let over = ramping_vus(0, vec![stage("4s", 577_781)]);
        assert_eq!(
            plan_of(&over, &ExecutionSegment::full())
                .requirements()
                .len(),
            2
        );
        let under = ramping_vus(0, vec![stage("4s", 100_000)]);
        let plan = plan_of(&under, &ExecutionSegment::full());
        assert!(plan.requirements().len() > 100_000, "exact up to the cap");
        assert_eq!(plan.max_vus(), 100_000);
    }

    #[test]
    fn huge_ramps_are_planned_without_listing_their_steps() {
        let scenario = ramping_vus(0, vec![stage("1h", i64::MAX), stage("1h", 0)]);
        let plan = plan_of(&scenario, &ExecutionSegment::of(1, 3).unwrap());
        assert_eq!(plan.max_vus(), (i64::MAX as u64) / 3);
        assert_eq!(plan.requirements().len(), 2);
        assert_eq!(plan.max_duration(), secs(7230.0));
        // The last VU of segment 1 (global VU number 2) leaves within the last nanosecond.
        assert_eq!(plan.regular_duration(), secs(7200.0));
        let first: Vec<VuStep> = plan.vu_steps().take(3).collect();
        assert_eq!(first[0].planned_vus, 0);
        assert_eq!(first[2].planned_vus, 2);
        assert!(plan.vus_at(secs(3600.0)) > 1 << 60);
    }

    #[test]
    fn extreme_inputs_saturate_instead_of_panicking() {
        let mut constant = Scenario::new(Executor::ConstantArrivalRate);
        constant.rate = Some(i64::MAX);
        constant.time_unit = Some("1ns".into());
        constant.duration = Some("100000000s".into());
        constant.pre_allocated_vus = Some(i64::MAX);
        let mut ramping = ramping_rate(
            i64::MAX,
            "1ns",
            vec![stage("1000h", 1), stage("0s", i64::MAX), stage("1000h", 0)],
        );
        ramping.pre_allocated_vus = Some(i64::MAX);
        let mut shared = Scenario::new(Executor::SharedIterations);
        shared.vus = Some(i64::MAX);
        shared.iterations = Some(i64::MAX);
        shared.max_duration = Some("100000000s".into());
        for scenario in [constant, ramping, shared] {
            for segment in [
                ExecutionSegment::full(),
                ExecutionSegment::of(2, 7).unwrap(),
            ] {
                let plan = plan_of(&scenario, &segment);
                let first: Vec<Arrival> = plan.arrival_starts().take(3).collect();
                assert!(first.windows(2).all(|pair| pair[0].at <= pair[1].at));
                let _ = plan.start_at_for_test(u64::MAX - 1);
                let _ = plan.start_at_for_test(u64::MAX / 3);
                let _ = (
                    plan.rate_at(secs(1.0)),
                    plan.max_duration(),
                    plan.iterations(),
                );
                let _ = (plan.requirements(), plan.max_vus(), plan.arrival_count());
            }
        }
    }

    fn ramping_rate(start_rate: i64, time_unit: &str, stages: Vec<Stage>) -> Scenario {
        let mut scenario = Scenario::new(Executor::RampingArrivalRate);
        scenario.start_rate = Some(start_rate);
        scenario.time_unit = Some(time_unit.to_string());
        scenario.stages = stages;
        scenario.pre_allocated_vus = Some(1);
        scenario
    }

    /// k6's cal test calls the schedule with the segment itself; 6 VUs (a multiple of every
    /// cycle below) keep the maxVUs re-derivation from changing the segment.
    fn cal_example(time_unit: &str) -> Scenario {
        let mut scenario = ramping_rate(
            0,
            time_unit,
            vec![stage("5s", 1), stage("1s", 1), stage("5s", 0)],
        );
        scenario.pre_allocated_vus = Some(6);
        scenario
    }

    /// The reference example and k6 `TestRampingArrivalRateCal` (k6 compares within 0.1%).
    #[test]
    fn ramping_arrival_rate_matches_k6_cal() {
        let plan = plan_of(&cal_example("1s"), &ExecutionSegment::full());
        let starts: Vec<u64> = plan.arrivals().map(|at| at.as_nanos() as u64).collect();
        assert_eq!(
            starts,
            [
                3_162_277_660,
                4_472_135_954,
                5_500_000_000,
                6_527_864_045,
                7_837_722_339,
                11_000_000_000
            ]
        );
        assert_eq!(plan.global_arrival_count(), 6);
        assert_eq!(plan.regular_duration(), secs(11.0));

        let cases: [(&str, &str, &[u64]); 7] = [
            ("0:1/3", "", &[4472, 7837]),
            ("0:1/3", "0,1/3,1", &[4472, 7837]),
            ("1/3:2/3", "", &[4472, 7837]),
            ("2/3:1", "", &[4472, 7837]),
            ("0:1/3", "0,1/3,2/3,1", &[3162, 6527]),
            ("1/3:2/3", "0,1/3,2/3,1", &[4472, 7837]),
            ("2/3:1", "0,1/3,2/3,1", &[5500, 11000]),
        ];
        for (text, sequence, expected) in cases {
            let plan = plan_of(&cal_example("1s"), &segment(text, sequence));
            let got: Vec<u64> = plan.arrivals().map(|at| at.as_millis() as u64).collect();
            assert_eq!(got, expected, "{text} in {sequence:?}");
        }

        // Three times as fast; k6 expects these within 0.1% (its floats give 10999ms at the end).
        let plan = plan_of(&cal_example("333333333ns"), &ExecutionSegment::full());
        let expected = [
            1825, 2581, 3162, 3651, 4082, 4472, 4830, 5166, 5499, 5833, 6169, 6527, 6917, 7348,
            7837, 8418, 9174, 10999,
        ];
        let got: Vec<u64> = plan.arrivals().map(|at| at.as_millis() as u64).collect();
        assert_eq!(got.len(), expected.len());
        for (got, expected) in got.iter().zip(expected) {
            assert!(got.abs_diff(expected) <= 1, "{got} vs {expected}");
        }
    }

    /// k6 `TestRampingArrivalRateGlobalIters`: start numbers are striped over the segments
    /// re-derived from maxVUs.
    #[test]
    fn arrival_iterations_are_striped_by_max_vus_like_k6() {
        let mut scenario = ramping_rate(0, "950ms", vec![stage("1s", 20), stage("1s", 0)]);
        scenario.pre_allocated_vus = Some(4);
        scenario.max_vus = Some(5);
        let cases: [(&str, &[u64]); 3] = [
            ("0:1/4", &[1, 6, 11, 16]),
            ("1/4:3/4", &[0, 2, 4, 5, 7, 9, 10, 12, 14, 15, 17, 19, 20]),
            ("3/4:1", &[3, 8, 13, 18]),
        ];
        for (text, expected) in cases {
            let plan = plan_of(&scenario, &segment(text, "0,1/4,3/4,1"));
            let got: Vec<u64> = plan.arrival_starts().map(|a| a.iteration).collect();
            assert_eq!(got, expected, "{text}");
        }
    }

    /// k6 `TestRampingArrivalRateCornerCase` and `..._GetExecutionRequirements`.
    #[test]
    fn arrival_rate_vus_match_k6() {
        let mut scenario = ramping_rate(1, "1s", vec![stage("1s", 1)]);
        scenario.pre_allocated_vus = Some(0);
        scenario.max_vus = Some(2);
        let plan = plan_of(&scenario, &segment("1/5:2/5", "0,1/5,2/5,1"));
        assert!(!plan.has_work());
        assert_eq!(plan.arrivals().count(), 0);

        let quarters = "0,1/4,1/2,3/4,1";
        for (pre, max, text, sequence, planned, unplanned) in [
            (1, 4000, "0:1/4", quarters, 1, 999),
            (100, 4000, "0:1/4", quarters, 25, 975),
            (1, 4000, "0:1", "0,1", 1, 3999),
            (100, 4000, "0:1", "0,1", 100, 3900),
        ] {
            let mut scenario = ramping_rate(0, "1s", vec![stage("1s", 1)]);
            scenario.pre_allocated_vus = Some(pre);
            scenario.max_vus = Some(max);
            let plan = plan_of(&scenario, &segment(text, sequence));
            let requirements = plan.requirements();
            assert_eq!(requirements[0].planned_vus, planned);
            assert_eq!(requirements[0].max_unplanned_vus, unplanned);
            assert_eq!(plan.initial_vus(), planned);
            assert_eq!(plan.max_vus(), planned + unplanned);
        }
    }

    #[test]
    fn constant_arrival_rate_starts_at_zero_and_stops_before_duration() {
        let mut scenario = Scenario::new(Executor::ConstantArrivalRate);
        scenario.rate = Some(3);
        scenario.duration = Some("2s".into());
        scenario.pre_allocated_vus = Some(3);
        let plan = plan_of(&scenario, &ExecutionSegment::full());
        let starts: Vec<u64> = plan.arrivals().map(|at| at.as_nanos() as u64).collect();
        assert_eq!(
            starts,
            [
                0,
                333_333_333,
                666_666_666,
                1_000_000_000,
                1_333_333_333,
                1_666_666_666
            ]
        );
        assert_eq!(plan.regular_duration(), secs(2.0));
        assert_eq!(plan.max_duration(), secs(32.0));
        assert!((plan.rate_at(secs(1.0)) - 3.0).abs() < 1e-9);
        assert_eq!(plan.rate_at(secs(2.0)), 0.0);

        // No drift: start number 3·10⁸ of a 3/s rate is exactly at 10⁸ s.
        scenario.duration = Some("100000000s".into());
        let plan = plan_of(&scenario, &ExecutionSegment::of(0, 3).unwrap());
        let at = plan.start_at_for_test(300_000_000);
        assert_eq!(at, 100_000_000 * 1_000_000_000);
        assert_eq!(plan.start_at_for_test(299_999_999), 99_999_999_666_666_666);
        assert_eq!(plan.arrival_count(), 100_000_000);
    }

    #[test]
    fn ramping_arrival_rate_handles_start_rate_and_jumps() {
        // startRate 2/s for 1s, jump to 4/s, hold 1s, ramp to 0 over 2s: 2 + 4 + 4 starts.
        let plan = plan_of(
            &ramping_rate(
                2,
                "1s",
                vec![
                    stage("1s", 2),
                    stage("0s", 4),
                    stage("1s", 4),
                    stage("2s", 0),
                ],
            ),
            &ExecutionSegment::full(),
        );
        let starts: Vec<f64> = plan.arrivals().map(|at| at.as_secs_f64()).collect();
        assert_eq!(starts.len(), 10);
        assert_eq!(&starts[..6], &[0.5, 1.0, 1.25, 1.5, 1.75, 2.0]);
        assert_eq!(starts[9], 4.0);
        assert!((plan.rate_at(secs(0.5)) - 2.0).abs() < 1e-9);
        assert!((plan.rate_at(secs(1.5)) - 4.0).abs() < 1e-9);
        assert!((plan.rate_at(secs(3.0)) - 2.0).abs() < 1e-9);
    }

    #[test]
    fn iteration_executors_scale_like_k6() {
        let mut shared = Scenario::new(Executor::SharedIterations);
        shared.vus = Some(2);
        shared.iterations = Some(10);
        let quarters: Vec<ScenarioPlan> = (0..4)
            .map(|i| plan_of(&shared, &ExecutionSegment::of(i, 4).unwrap()))
            .collect();
        let vus: Vec<_> = quarters.iter().map(|p| p.vus().unwrap()).collect();
        let iterations: Vec<_> = quarters.iter().map(|p| p.iterations().unwrap()).collect();
        assert_eq!(vus, [1, 1, 0, 0]);
        // Runners without VUs get no iterations: the 10 go to the two that have one.
        assert_eq!(iterations, [5, 5, 0, 0]);
        assert!(!quarters[3].has_work());
        assert_eq!(quarters[0].regular_duration(), secs(600.0));
        assert_eq!(quarters[0].max_duration(), secs(630.0));

        let mut per_vu = Scenario::new(Executor::PerVuIterations);
        per_vu.vus = Some(5);
        per_vu.iterations = Some(7);
        let plan = plan_of(&per_vu, &ExecutionSegment::of(0, 2).unwrap());
        assert_eq!(plan.vus(), Some(3));
        assert_eq!(plan.iterations_per_vu(), Some(7));
        assert_eq!(plan.iterations(), Some(21));

        let mut constant = Scenario::new(Executor::ConstantVus);
        constant.vus = Some(5);
        constant.duration = Some("1m".into());
        constant.start_time = Some("10s".into());
        constant.graceful_stop = Some("5s".into());
        let plan = plan_of(&constant, &ExecutionSegment::of(1, 2).unwrap());
        assert_eq!(plan.vus(), Some(2));
        assert_eq!(plan.start_time(), secs(10.0));
        assert_eq!(plan.max_duration(), secs(65.0));
        assert_eq!(plan.vus_at(secs(59.0)), 2);
        assert_eq!(plan.vus_at(secs(60.0)), 0);
    }

    #[test]
    fn largest_within_finds_the_boundary_from_any_guess() {
        for boundary in [0u64, 1, 2, 17, 1000, u64::MAX - 1, u64::MAX] {
            for guess in [0u64, 1, 16, 999, 1001, 1 << 40, u64::MAX] {
                let got = largest_within(u64::MAX, guess, |x| x <= boundary);
                assert_eq!(got, boundary, "guess {guess}");
            }
        }
        assert_eq!(largest_within(10, 3, |_| true), 10);
    }

    impl ScenarioPlan {
        fn start_at_for_test(&self, index: u64) -> u64 {
            match &self.schedule {
                Schedule::ArrivalRate(plan) => plan.start_at(index, &mut 0),
                _ => 0,
            }
        }
    }
}
