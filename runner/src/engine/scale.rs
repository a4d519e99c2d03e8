//! `--duration-scale`: the compiled scenarios' times multiplied by a factor, so a long test
//! (or every example) can run in a fraction of its time with the same shape.

use std::time::Duration;

use stampede_crds::model::scenario::{Executor, Scenario, Stage};

/// k6's smallest `duration` and `maxDuration`; a scaled one never goes below it.
const MINIMUM_DURATION: Duration = Duration::from_secs(1);

/// Multiplies the scenario times a manifest wrote by `factor`, rounded to whole milliseconds:
/// `startTime`, `gracefulStop`, `duration`, `maxDuration`, stages and `gracefulRampDown`.
/// k6's defaults (a safety net such as the 10m `maxDuration`, not a schedule), `timeUnit`,
/// sleeps, timeouts and thresholds keep their values; a scaled `duration` or `maxDuration`
/// stays at least 1s, k6's minimum. A factor of 1 changes nothing.
pub fn scale_durations(scenarios: &mut [Scenario], factor: f64) {
    if (factor - 1.0).abs() < f64::EPSILON {
        return;
    }
    let scale = |time: &mut Duration| {
        let millis = (time.as_secs_f64() * 1000.0 * factor).round().max(0.0);
        // `as` saturates: a factor that overflows a u64 of milliseconds gives the largest time.
        *time = Duration::from_millis(millis as u64);
    };
    let scale_stages = |stages: &mut [Stage]| {
        for stage in stages {
            scale(&mut stage.duration);
        }
    };
    for scenario in scenarios {
        let defaulted = scenario.defaulted;
        scale(&mut scenario.start_time);
        if !defaulted.graceful_stop {
            scale(&mut scenario.graceful_stop);
        }
        match &mut scenario.executor {
            Executor::SharedIterations(iterations) | Executor::PerVuIterations(iterations) => {
                if !defaulted.max_duration {
                    scale(&mut iterations.max_duration);
                    iterations.max_duration = iterations.max_duration.max(MINIMUM_DURATION);
                }
            }
            Executor::ConstantVus(constant) => {
                scale(&mut constant.duration);
                constant.duration = constant.duration.max(MINIMUM_DURATION);
            }
            Executor::RampingVus(ramp) => {
                scale_stages(&mut ramp.stages);
                if !defaulted.graceful_ramp_down {
                    scale(&mut ramp.graceful_ramp_down);
                }
            }
            Executor::ConstantArrivalRate(constant) => {
                scale(&mut constant.duration);
                constant.duration = constant.duration.max(MINIMUM_DURATION);
            }
            Executor::RampingArrivalRate(ramp) => scale_stages(&mut ramp.stages),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stampede_crds::spec::LoadTestSpec;

    fn scenarios(yaml: &str) -> Vec<Scenario> {
        let spec: LoadTestSpec = serde_yaml_ng::from_str(yaml).unwrap();
        stampede_crds::model::scenario::compile(&spec).unwrap()
    }

    fn millis(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn written_times_scale_and_defaults_stay() {
        let mut scaled = scenarios(
            r#"
scenarios:
  ramp: {executor: ramping-vus, startTime: 10s, stages: [{duration: 1m, target: 5}, {duration: 15ms, target: 0}]}
  shared: {executor: shared-iterations, vus: 2, iterations: 10, gracefulStop: 5s}
  steady: {executor: constant-vus, duration: 5s, gracefulStop: 2s}
  rate: {executor: constant-arrival-rate, rate: 5, timeUnit: 2s, duration: 1m, preAllocatedVUs: 1}
"#,
        );
        scale_durations(&mut scaled, 0.1);
        let [ramp, rate, shared, steady] = &scaled[..] else {
            panic!("four scenarios expected");
        };
        assert_eq!(ramp.start_time, Duration::from_secs(1));
        assert_eq!(ramp.graceful_stop, Duration::from_secs(30));
        let Executor::RampingVus(params) = &ramp.executor else {
            panic!("ramping-vus expected");
        };
        assert_eq!(params.stages[0].duration, Duration::from_secs(6));
        // 1.5ms rounds to whole milliseconds.
        assert_eq!(params.stages[1].duration, millis(2));
        assert_eq!(params.graceful_ramp_down, Duration::from_secs(30));
        let Executor::ConstantArrivalRate(params) = &rate.executor else {
            panic!("constant-arrival-rate expected");
        };
        assert_eq!(params.duration, Duration::from_secs(6));
        assert_eq!(params.time_unit, Duration::from_secs(2));
        assert_eq!(shared.graceful_stop, millis(500));
        let Executor::SharedIterations(params) = &shared.executor else {
            panic!("shared-iterations expected");
        };
        assert_eq!(params.max_duration, Duration::from_secs(600));
        assert_eq!(steady.graceful_stop, millis(200));
        let Executor::ConstantVus(params) = &steady.executor else {
            panic!("constant-vus expected");
        };
        // 500ms is below k6's minimum duration.
        assert_eq!(params.duration, Duration::from_secs(1));
    }

    #[test]
    fn a_factor_of_one_changes_nothing() {
        let original = scenarios("{vus: 2, duration: 90s}");
        let mut same = original.clone();
        scale_durations(&mut same, 1.0);
        assert_eq!(same, original);
        let mut doubled = original.clone();
        scale_durations(&mut doubled, 2.0);
        let Executor::ConstantVus(params) = &doubled[0].executor else {
            panic!("constant-vus expected");
        };
        assert_eq!(params.duration, Duration::from_secs(180));
    }
}
