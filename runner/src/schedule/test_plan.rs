//! The schedule of a whole test on one execution segment: every scenario's plan, the test's
//! deadlines, and the VUs it needs at once — what the operator sizes runners by.

use std::collections::BTreeMap;
use std::time::Duration;

use stampede_crds::model::Test;
use stampede_crds::model::scenario::Scenario;

use super::plan::{ScenarioPlan, VuStep};
use super::segment::ExecutionSegment;

/// Every scenario of a test planned for one segment.
#[derive(Debug, Clone)]
pub struct TestPlan {
    segment: ExecutionSegment,
    scenarios: BTreeMap<String, ScenarioPlan>,
}

impl TestPlan {
    /// Plans every scenario of a compiled test for `segment`.
    pub fn for_test(test: &Test, segment: &ExecutionSegment) -> TestPlan {
        TestPlan::for_scenarios(&test.scenarios, segment)
    }

    /// Plans each scenario for `segment`.
    pub fn for_scenarios(scenarios: &[Scenario], segment: &ExecutionSegment) -> TestPlan {
        TestPlan {
            segment: segment.clone(),
            scenarios: scenarios
                .iter()
                .map(|scenario| (scenario.name.clone(), ScenarioPlan::new(scenario, segment)))
                .collect(),
        }
    }

    /// The segment the plan is for.
    pub fn segment(&self) -> &ExecutionSegment {
        &self.segment
    }

    /// Every scenario's plan by name, including those without work on this segment.
    pub fn scenarios(&self) -> &BTreeMap<String, ScenarioPlan> {
        &self.scenarios
    }

    /// One scenario's plan.
    pub fn scenario(&self, name: &str) -> Option<&ScenarioPlan> {
        self.scenarios.get(name)
    }

    /// The scenarios with work on this segment; the others are skipped as k6 skips them.
    fn working(&self) -> impl Iterator<Item = &ScenarioPlan> {
        self.scenarios.values().filter(|plan| plan.has_work())
    }

    /// When the last scenario stops starting iterations: the latest `startTime` + regular
    /// duration among scenarios with work (0 when none has any).
    pub fn regular_duration(&self) -> Duration {
        self.working()
            .map(|plan| plan.start_time().saturating_add(plan.regular_duration()))
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// When the test is over at the latest: the latest `startTime` + max duration (regular +
    /// graceful stop) among scenarios with work.
    pub fn total_duration(&self) -> Duration {
        self.working()
            .map(|plan| plan.start_time().saturating_add(plan.max_duration()))
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// What the executors plan at `t` from the test start, test-wide: looping VUs (the VU
    /// executors) and iterations per second (the arrival-rate executors), summed over the
    /// scenarios running then — the stages a report draws behind what was achieved.
    pub fn planned_at(&self, t: Duration) -> PlannedLoad {
        let mut planned = PlannedLoad::default();
        for plan in self.working() {
            let Some(local) = t.checked_sub(plan.start_time()) else {
                continue;
            };
            planned.vus += plan.global_vus_at(local);
            planned.rate += plan.global_rate_at(local);
        }
        planned
    }

    /// The VUs the test needs over time (k6 `GetFullExecutionRequirements`): each scenario's
    /// requirements shifted by its `startTime` and summed, one step per instant at which the
    /// sum changes. Times are from the test start. A scenario holds its VUs on `[at, next at)`,
    /// so one that ends exactly when another starts never counts twice. (k6 sums step by step
    /// and can briefly count both when a later-sorted scenario's drop shares an instant with
    /// an earlier one's rise; this takes the sum after every change at an instant.)
    pub fn requirements(&self) -> Vec<VuStep> {
        // (instant, scenario, planned, unplanned), stably sorted so a scenario's own steps
        // at one instant keep their order and the last one wins.
        let mut events: Vec<(Duration, usize, u64, u64)> = Vec::new();
        let working: Vec<&ScenarioPlan> = self.working().collect();
        for (index, plan) in working.iter().enumerate() {
            for step in plan.requirements() {
                events.push((
                    plan.start_time().saturating_add(step.at),
                    index,
                    step.planned_vus,
                    step.max_unplanned_vus,
                ));
            }
        }
        events.sort_by_key(|event| event.0);
        let mut planned = vec![0u64; working.len()];
        let mut unplanned = vec![0u64; working.len()];
        let mut combined: Vec<VuStep> = Vec::new();
        let mut events = events.into_iter().peekable();
        while let Some((at, index, step_planned, step_unplanned)) = events.next() {
            planned[index] = step_planned;
            unplanned[index] = step_unplanned;
            if events.peek().is_some_and(|next| next.0 == at) {
                continue;
            }
            let step = VuStep {
                at,
                planned_vus: planned.iter().fold(0u64, |sum, v| sum.saturating_add(*v)),
                max_unplanned_vus: unplanned.iter().fold(0u64, |sum, v| sum.saturating_add(*v)),
            };
            let changed = combined.last().is_none_or(|last| {
                (last.planned_vus, last.max_unplanned_vus)
                    != (step.planned_vus, step.max_unplanned_vus)
            });
            if changed {
                combined.push(step);
            }
        }
        combined
    }

    /// The most VUs the test may hold at once: the maximum over time of the sum of every
    /// running scenario's requirement, counting arrival-rate scenarios at `maxVUs` and
    /// ramping-vus at its time-resolved count including VUs still finishing within
    /// `gracefulRampDown` (exact, from k6's step plan). Scenarios that do not overlap in time
    /// share VUs, as in k6. This is what the operator sizes runners by.
    pub fn peak_vus(&self) -> u64 {
        self.requirements()
            .iter()
            .map(|step| step.planned_vus.saturating_add(step.max_unplanned_vus))
            .max()
            .unwrap_or(0)
    }

    /// The VUs k6 initializes before the test starts: the peak of the planned VUs, i.e.
    /// [`Self::peak_vus`] without arrival-rate VUs above `preAllocatedVUs`, which are made on
    /// demand.
    pub fn initial_vus(&self) -> u64 {
        self.requirements()
            .iter()
            .map(|step| step.planned_vus)
            .max()
            .unwrap_or(0)
    }

    /// Runners needed so that none holds more than `max_vus_per_runner` of the peak:
    /// `ceil(peak_vus / max_vus_per_runner)`, at least 1 (0 per runner counts as 1).
    ///
    /// Each scenario is striped over the runners on its own, so one runner's share of the peak
    /// can exceed `peak / runners` by up to one VU per scenario running at that moment;
    /// `TestPlan::for_test(test, &ExecutionSegment::of(i, n)?).peak_vus()` gives the exact
    /// figure for runner `i`.
    pub fn runners_needed(&self, max_vus_per_runner: u64) -> u64 {
        self.peak_vus().div_ceil(max_vus_per_runner.max(1)).max(1)
    }
}

/// The load the executors plan at one instant, test-wide.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PlannedLoad {
    /// Looping VUs of ramping-vus, constant-vus and the iteration executors.
    pub vus: u64,
    /// Iterations per second of the arrival-rate executors.
    pub rate: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use stampede_crds::model::scenario;
    use stampede_crds::{Executor, Scenario as ManifestScenario, Stage};

    /// Compiles manifest scenarios into the model, as a run does.
    fn compiled(scenarios: &BTreeMap<String, ManifestScenario>) -> Vec<Scenario> {
        scenarios
            .iter()
            .map(|(name, manifest)| scenario::build(name, manifest).expect("compiles"))
            .collect()
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn constant_vus(vus: i64, duration: &str, start: &str) -> ManifestScenario {
        let mut scenario = ManifestScenario::new(Executor::ConstantVus);
        scenario.vus = Some(vus);
        scenario.duration = Some(duration.into());
        scenario.start_time = Some(start.into());
        scenario.graceful_stop = Some("0s".into());
        scenario
    }

    #[test]
    fn the_planned_load_follows_each_scenario_from_its_start_time() {
        let mut arrivals = ManifestScenario::new(Executor::ConstantArrivalRate);
        arrivals.rate = Some(30);
        arrivals.time_unit = Some("2s".into());
        arrivals.duration = Some("10s".into());
        arrivals.pre_allocated_vus = Some(5);
        arrivals.start_time = Some("5s".into());
        let scenarios = BTreeMap::from([
            ("looping".to_string(), constant_vus(10, "10s", "0s")),
            ("arrivals".to_string(), arrivals),
        ]);
        let plan = TestPlan::for_scenarios(&compiled(&scenarios), &ExecutionSegment::full());
        let at = |s: u64| plan.planned_at(secs(s));
        assert_eq!(at(0), PlannedLoad { vus: 10, rate: 0.0 });
        assert_eq!(
            at(7),
            PlannedLoad {
                vus: 10,
                rate: 15.0
            }
        );
        assert_eq!(at(12), PlannedLoad { vus: 0, rate: 15.0 });
        assert_eq!(at(15), PlannedLoad::default());
    }

    #[test]
    fn sequential_scenarios_share_vus() {
        let scenarios = BTreeMap::from([
            ("a".to_string(), constant_vus(10, "10s", "0s")),
            ("b".to_string(), constant_vus(20, "10s", "10s")),
        ]);
        let plan = TestPlan::for_scenarios(&compiled(&scenarios), &ExecutionSegment::full());
        assert_eq!(plan.peak_vus(), 20);
        assert_eq!(plan.total_duration(), secs(20));
        assert_eq!(plan.regular_duration(), secs(20));
        let steps: Vec<(Duration, u64)> = plan
            .requirements()
            .iter()
            .map(|s| (s.at, s.planned_vus))
            .collect();
        assert_eq!(steps, [(secs(0), 10), (secs(10), 20), (secs(20), 0)]);
    }

    #[test]
    fn overlapping_scenarios_add_up_with_arrival_max_vus() {
        let mut arrival = ManifestScenario::new(Executor::ConstantArrivalRate);
        arrival.rate = Some(100);
        arrival.duration = Some("30s".into());
        arrival.pre_allocated_vus = Some(50);
        arrival.max_vus = Some(200);
        arrival.start_time = Some("20s".into());
        let mut ramp = ManifestScenario::new(Executor::RampingVus);
        ramp.start_vus = Some(0);
        ramp.stages = vec![
            Stage {
                duration: "20s".into(),
                target: 100,
            },
            Stage {
                duration: "20s".into(),
                target: 0,
            },
        ];
        let scenarios =
            BTreeMap::from([("arrival".to_string(), arrival), ("ramp".to_string(), ramp)]);
        let plan = TestPlan::for_scenarios(&compiled(&scenarios), &ExecutionSegment::full());
        // The ramp holds its 100 VUs for gracefulRampDown (30s) after they start leaving at
        // 20.2s, while the arrival scenario may use up to 200 from 20s on.
        assert_eq!(plan.peak_vus(), 300);
        assert_eq!(plan.initial_vus(), 150);
        assert_eq!(plan.runners_needed(100), 3);
        assert_eq!(plan.runners_needed(0), 300);
        // Arrival: 20s + 30s + 30s gracefulStop; ramp: last VU leaves at 40s, +30s.
        assert_eq!(plan.total_duration(), secs(80));
        assert_eq!(plan.regular_duration(), secs(50));

        let per_runner: Vec<u64> = (0..3)
            .map(|i| {
                TestPlan::for_scenarios(&compiled(&scenarios), &ExecutionSegment::of(i, 3).unwrap())
                    .peak_vus()
            })
            .collect();
        assert_eq!(per_runner.iter().sum::<u64>(), 300);
    }

    #[test]
    fn scenarios_without_work_on_a_segment_are_skipped() {
        let scenarios = BTreeMap::from([
            ("small".to_string(), constant_vus(1, "1m", "0s")),
            ("big".to_string(), constant_vus(4, "10s", "0s")),
        ]);
        let plan =
            TestPlan::for_scenarios(&compiled(&scenarios), &ExecutionSegment::of(3, 4).unwrap());
        assert!(!plan.scenario("small").unwrap().has_work());
        assert_eq!(plan.total_duration(), secs(10));
        assert_eq!(plan.peak_vus(), 1);
        let empty = TestPlan::for_scenarios(&[], &ExecutionSegment::full());
        assert_eq!(empty.peak_vus(), 0);
        assert_eq!(empty.total_duration(), Duration::ZERO);
        assert_eq!(empty.runners_needed(10), 1);
    }
}
