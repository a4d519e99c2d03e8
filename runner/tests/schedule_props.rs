//! Property tests of `schedule`: however a test is split into execution segments, the
//! segments' VUs, iterations and iteration starts add up exactly to the unsplit test.

use std::collections::BTreeSet;
use std::time::Duration;

use proptest::prelude::*;
use stampede_crds::{Executor, Scenario, Stage};
use stampede_runner::schedule::{
    Arrival, ExecutionSegment, ExecutionSegmentSequence, Ratio, ScenarioPlan, VuStep,
};

/// Plans a manifest scenario the way a run does: compiled into the model first.
fn plan_of(scenario: &Scenario, segment: &ExecutionSegment) -> ScenarioPlan {
    let compiled = stampede_crds::model::scenario::build("s", scenario).expect("compiles");
    ScenarioPlan::new(&compiled, segment)
}

/// Every segment of `count` equal segments.
fn equal_split(count: u64) -> Vec<ExecutionSegment> {
    (0..count)
        .map(|index| ExecutionSegment::of(index, count).expect("index below count"))
        .collect()
}

/// A sequence whose segment lengths are proportional to `weights`.
fn weighted_split(weights: &[u64]) -> Vec<ExecutionSegment> {
    let total: u64 = weights.iter().sum();
    let mut points = vec![Ratio::ZERO];
    let mut sum = 0;
    for weight in weights {
        sum += weight;
        points.push(Ratio::new(sum, total).expect("nonzero total"));
    }
    ExecutionSegmentSequence::new(&points)
        .and_then(|sequence| sequence.segments())
        .expect("a valid sequence")
}

/// Either split, chosen by the strategy.
fn split() -> impl Strategy<Value = Vec<ExecutionSegment>> {
    prop_oneof![
        (1u64..=16).prop_map(equal_split),
        prop::collection::vec(1u64..=40, 1..=8).prop_map(|weights| weighted_split(&weights)),
    ]
}

fn stages(max_target: i64, max_tenths: u64) -> impl Strategy<Value = Vec<Stage>> {
    prop::collection::vec(
        (
            prop_oneof![1 => Just(0u64), 4 => 1..=max_tenths],
            0..=max_target,
        ),
        1..=5,
    )
    .prop_map(|stages| {
        stages
            .into_iter()
            .map(|(tenths, target)| Stage {
                duration: format!("{}ms", tenths * 100),
                target,
            })
            .collect()
    })
}

fn time_unit() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["100ms", "250ms", "1s", "1500ms", "3s", "333333333ns"])
}

/// Each segment's starts, checked to be in time order, merged and checked to be disjoint.
fn merged_arrivals(scenario: &Scenario, segments: &[ExecutionSegment]) -> Vec<Arrival> {
    let mut merged = Vec::new();
    let mut seen = BTreeSet::new();
    for segment in segments {
        let plan = plan_of(scenario, segment);
        let starts: Vec<Arrival> = plan.arrival_starts().collect();
        assert_eq!(starts.len() as u64, plan.arrival_count());
        assert!(starts.windows(2).all(|pair| pair[0].at <= pair[1].at));
        assert!(
            starts
                .iter()
                .all(|start| start.at <= plan.regular_duration())
        );
        for start in starts {
            assert!(seen.insert(start.iteration), "{} twice", start.iteration);
            merged.push(start);
        }
    }
    merged.sort_by_key(|start| start.iteration);
    merged
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn equal_segments_share_every_total_exactly(count in 1u64..=64, total in 0u64..=100_000) {
        let segments = equal_split(count);
        let shares: Vec<u64> = segments.iter().map(|s| s.scale(total)).collect();
        prop_assert_eq!(shares.iter().sum::<u64>(), total);
        let next: Vec<u64> = segments.iter().map(|s| s.scale(total + 1)).collect();
        // Monotone, and index `total` goes to exactly one segment.
        prop_assert!(shares.iter().zip(&next).all(|(a, b)| a <= b));
        prop_assert_eq!(next.iter().sum::<u64>() - shares.iter().sum::<u64>(), 1);
        prop_assert_eq!(segments.iter().filter(|s| s.owns(total)).count(), 1);
        for (segment, share) in segments.iter().zip(&shares) {
            prop_assert!(share.abs_diff(total / count) <= 1);
            if *share > 0 {
                prop_assert!(segment.nth_owned(share - 1) < total);
            }
            prop_assert!(segment.nth_owned(*share) >= total);
        }
    }

    #[test]
    fn weighted_segments_own_each_index_once_and_evenly(
        weights in prop::collection::vec(1u64..=100, 1..=12),
        total in 0u64..=100_000,
    ) {
        let segments = weighted_split(&weights);
        let sum: u64 = weights.iter().sum();
        prop_assert_eq!(segments.iter().map(|s| s.scale(total)).sum::<u64>(), total);
        let cycle = segments[0].cycle();
        for j in (0..cycle.min(400)).chain(total..total + 50) {
            let owners: Vec<&ExecutionSegment> = segments.iter().filter(|s| s.owns(j)).collect();
            prop_assert_eq!(owners.len(), 1, "index {}", j);
            prop_assert_eq!(owners[0].nth_owned(owners[0].scale(j)), j);
        }
        for (segment, weight) in segments.iter().zip(&weights) {
            prop_assert!(segment.scale(total) <= segment.scale(total + 1));
            // Near its exact share at every point. k6's striping deals each index to the
            // largest segment that is due, so small segments of an uneven sequence can lag by
            // a few indices (measured: up to ~0.4 per segment in the sequence).
            let exact = total as f64 * *weight as f64 / sum as f64;
            let slack = 1.0 + weights.len() as f64 / 2.0;
            prop_assert!(
                (segment.scale(total) as f64 - exact).abs() < slack,
                "{:?} has {} of {} (exact {})", segment, segment.scale(total), total, exact
            );
        }
    }

    #[test]
    fn rescaled_segments_partition_like_the_originals(
        segments in split(),
        value in 1u64..=500,
        total in 0u64..=10_000,
    ) {
        let mut sum = 0;
        let mut owners = vec![0usize; 64];
        for segment in &segments {
            match segment.rescaled(value).expect("small values rescale") {
                Some(rescaled) => {
                    prop_assert_eq!(rescaled.scale(value), segment.scale(value));
                    sum += rescaled.scale(total);
                    for (j, owner) in owners.iter_mut().enumerate() {
                        *owner += usize::from(rescaled.owns(total + j as u64));
                    }
                }
                None => prop_assert_eq!(segment.scale(value), 0),
            }
        }
        prop_assert_eq!(sum, total);
        prop_assert!(owners.iter().all(|&count| count == 1));
    }

    #[test]
    fn ramping_vus_segments_add_up_at_every_instant(
        segments in split(),
        start_vus in 0i64..=40,
        stages in stages(60, 40),
        probes in prop::collection::vec(0u64..=25_000_000_000, 20),
    ) {
        let mut scenario = Scenario::new(Executor::RampingVus);
        scenario.start_vus = Some(start_vus);
        scenario.stages = stages;
        let full = plan_of(&scenario, &ExecutionSegment::full());
        let plans: Vec<ScenarioPlan> =
            segments.iter().map(|segment| plan_of(&scenario, segment)).collect();
        let changes = full.vu_changes();
        let mut instants: Vec<Duration> = probes.into_iter().map(Duration::from_nanos).collect();
        for (at, _) in &changes {
            instants.push(*at);
            instants.push(at.saturating_sub(Duration::from_nanos(1)));
            instants.push(*at + Duration::from_nanos(1));
        }
        for t in instants {
            let global = full.global_vus_at(t);
            prop_assert_eq!(full.vus_at(t), global);
            let sum: u64 = plans.iter().map(|plan| plan.vus_at(t)).sum();
            prop_assert_eq!(sum, global, "at {:?}", t);
        }
        // The change lists agree with the instant queries: the last change at an instant wins.
        for (index, (at, vus)) in changes.iter().enumerate() {
            if changes.get(index + 1).is_none_or(|next| next.0 != *at) {
                prop_assert_eq!(full.global_vus_at(*at), *vus);
            }
        }
        for plan in &plans {
            let steps: Vec<VuStep> = plan.vu_steps().collect();
            prop_assert_eq!(steps.last().map(|step| step.planned_vus), Some(0));
            prop_assert_eq!(steps.last().map(|step| step.at), Some(plan.regular_duration()));
            for (index, step) in steps.iter().enumerate() {
                if steps.get(index + 1).is_none_or(|next| next.at != step.at) {
                    prop_assert_eq!(plan.vus_at(step.at), step.planned_vus);
                }
            }
            let requirements = plan.requirements();
            prop_assert_eq!(requirements.last().map(|step| step.planned_vus), Some(0));
            prop_assert!(plan.max_duration() >= plan.regular_duration());
            prop_assert!(requirements.iter().all(|step| step.planned_vus <= plan.max_vus()));
        }
    }

    #[test]
    fn constant_arrival_rate_segments_partition_the_starts(
        segments in split(),
        rate in 1i64..=40,
        time_unit in time_unit(),
        seconds in 1u64..=10,
        pre_allocated in 0i64..=20,
        extra in 0i64..=20,
    ) {
        let mut scenario = Scenario::new(Executor::ConstantArrivalRate);
        scenario.rate = Some(rate);
        scenario.time_unit = Some(time_unit.to_string());
        scenario.duration = Some(format!("{seconds}s"));
        scenario.pre_allocated_vus = Some(pre_allocated);
        scenario.max_vus = Some((pre_allocated + extra).max(1));
        let full: Vec<Arrival> =
            plan_of(&scenario, &ExecutionSegment::full()).arrival_starts().collect();
        prop_assert_eq!(full.first().map(|start| start.at), Some(Duration::ZERO));
        prop_assert!(full.iter().all(|start| start.at < Duration::from_secs(seconds)));
        prop_assert_eq!(merged_arrivals(&scenario, &segments), full);
    }

    #[test]
    fn ramping_arrival_rate_segments_partition_the_starts(
        segments in split(),
        start_rate in 0i64..=30,
        stages in stages(40, 30),
        time_unit in time_unit(),
        max_vus in 1i64..=30,
    ) {
        let mut scenario = Scenario::new(Executor::RampingArrivalRate);
        scenario.start_rate = Some(start_rate);
        scenario.stages = stages;
        scenario.time_unit = Some(time_unit.to_string());
        scenario.pre_allocated_vus = Some(max_vus);
        let full_plan = plan_of(&scenario, &ExecutionSegment::full());
        let full: Vec<Arrival> = full_plan.arrival_starts().collect();
        prop_assert_eq!(full.len() as u64, full_plan.global_arrival_count());
        prop_assert!(full.windows(2).all(|pair| pair[0].at <= pair[1].at));
        prop_assert_eq!(merged_arrivals(&scenario, &segments), full);
    }

    #[test]
    fn fixed_vu_executors_share_vus_and_iterations_exactly(
        segments in split(),
        vus in 1i64..=200,
        extra_iterations in 0i64..=5_000,
    ) {
        let mut shared = Scenario::new(Executor::SharedIterations);
        shared.vus = Some(vus);
        shared.iterations = Some(vus + extra_iterations);
        let mut per_vu = shared.clone();
        per_vu.executor = Executor::PerVuIterations;
        let mut constant = Scenario::new(Executor::ConstantVus);
        constant.vus = Some(vus);
        constant.duration = Some("10s".into());
        let (mut shared_vus, mut shared_iterations, mut per_vu_vus, mut constant_vus) =
            (0, 0, 0, 0);
        for segment in &segments {
            let plan = plan_of(&shared, segment);
            let (plan_vus, plan_iterations) = (plan.vus().unwrap(), plan.iterations().unwrap());
            prop_assert!(plan_vus > 0 || plan_iterations == 0);
            shared_vus += plan_vus;
            shared_iterations += plan_iterations;
            let plan = plan_of(&per_vu, segment);
            prop_assert_eq!(plan.iterations_per_vu(), Some((vus + extra_iterations) as u64));
            per_vu_vus += plan.vus().unwrap();
            constant_vus += plan_of(&constant, segment).vus().unwrap();
        }
        prop_assert_eq!(shared_vus, vus as u64);
        prop_assert_eq!(shared_iterations, (vus + extra_iterations) as u64);
        prop_assert_eq!(per_vu_vus, vus as u64);
        prop_assert_eq!(constant_vus, vus as u64);
    }
}
