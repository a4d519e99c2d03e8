//! Live progress: on a TTY, the run's line and a k6-style bar per scenario (elapsed of its
//! duration or iterations of its total, VUs, rate), redrawn in place every second; a plain
//! line every few seconds otherwise (CI logs).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use stampede_crds::Executor;

use crate::schedule::ScenarioPlan;
use crate::summary::format_ms;

/// One scenario's counters, updated by its VUs and read by the progress display.
#[derive(Debug, Default)]
pub struct ScenarioCounters {
    /// VUs in an iteration now.
    pub active: AtomicI64,
    /// Iterations that ran to their end (completed or failed).
    pub completed: AtomicU64,
    /// Iterations the hard stop interrupted.
    pub interrupted: AtomicU64,
}

/// One scenario's progress at a moment: what its bar shows.
#[derive(Debug, Clone)]
pub struct ScenarioStatus<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its schedule (on this runner's segment).
    pub plan: &'a ScenarioPlan,
    /// Time since the test started.
    pub elapsed: Duration,
    /// VUs in an iteration now.
    pub active: i64,
    /// Iterations run to their end.
    pub completed: u64,
    /// Iterations interrupted.
    pub interrupted: u64,
}

impl<'a> ScenarioStatus<'a> {
    /// The status of a scenario from its counters.
    pub fn read(
        name: &'a str,
        plan: &'a ScenarioPlan,
        counters: &ScenarioCounters,
        elapsed: Duration,
    ) -> ScenarioStatus<'a> {
        ScenarioStatus {
            name,
            plan,
            elapsed,
            active: counters.active.load(Ordering::Relaxed).max(0),
            completed: counters.completed.load(Ordering::Relaxed),
            interrupted: counters.interrupted.load(Ordering::Relaxed),
        }
    }

    /// Time since the scenario started (none before its `startTime`), at most its duration.
    fn in_scenario(&self) -> Option<Duration> {
        let since = self.elapsed.checked_sub(self.plan.start_time())?;
        Some(since.min(self.plan.regular_duration()))
    }

    /// How far along it is, 0..=1: iterations done of its total for the iteration executors
    /// (as k6 shows them), time of its duration otherwise.
    pub fn fraction(&self) -> f64 {
        if let Some(total) = self.plan.iterations() {
            if total == 0 {
                return 1.0;
            }
            return ((self.completed + self.interrupted) as f64 / total as f64).clamp(0.0, 1.0);
        }
        let regular = self.plan.regular_duration().as_secs_f64();
        match self.in_scenario() {
            None => 0.0,
            Some(_) if regular == 0.0 => 1.0,
            Some(t) => (t.as_secs_f64() / regular).clamp(0.0, 1.0),
        }
    }

    /// The text beside its bar, in k6's words per executor.
    pub fn text(&self) -> String {
        let Some(t) = self.in_scenario() else {
            let wait = self.plan.start_time().saturating_sub(self.elapsed);
            return format!("waiting, starts in {}", clock(wait));
        };
        let clocks = format!("{}/{}", clock(t), clock(self.plan.regular_duration()));
        let max_vus = self.plan.max_vus();
        match self.plan.executor() {
            Executor::SharedIterations => format!(
                "{}/{max_vus} VUs  {}/{} shared iters",
                self.active,
                self.completed,
                self.plan.iterations().unwrap_or(0)
            ),
            Executor::PerVuIterations => format!(
                "{}/{max_vus} VUs  {}/{} iters, {} per VU",
                self.active,
                self.completed,
                self.plan.iterations().unwrap_or(0),
                self.plan.iterations_per_vu().unwrap_or(0)
            ),
            Executor::ConstantVus => format!("{max_vus} VUs  {clocks}"),
            Executor::RampingVus => format!(
                "{}/{max_vus} VUs  {clocks}",
                self.plan.vus_at(t).min(max_vus)
            ),
            Executor::ConstantArrivalRate | Executor::RampingArrivalRate => format!(
                "{:.2} iters/s, {}/{max_vus} VUs  {clocks}",
                self.plan.rate_at(t),
                self.active
            ),
        }
    }
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Live line on a TTY, plain lines otherwise.
    Auto,
    /// Plain lines every this many seconds.
    Plain(u64),
    /// Nothing.
    Off,
}

/// The figures of one progress line.
#[derive(Debug, Clone, Default)]
pub struct ProgressLine {
    /// Time since the start.
    pub elapsed: Duration,
    /// Planned length.
    pub total: Duration,
    /// Active VUs.
    pub vus: i64,
    /// Highest VUs allowed.
    pub vus_max: i64,
    /// Requests per second in the last interval.
    pub rps: f64,
    /// p95 so far, ms.
    pub p95_ms: f64,
    /// Failure rate so far.
    pub failed_rate: f64,
    /// Requests so far.
    pub requests: u64,
    /// Dropped iterations so far.
    pub dropped: u64,
}

impl ProgressLine {
    /// The line's text.
    pub fn render(&self) -> String {
        format!(
            "running ({}/{}), {}/{} VUs, {} reqs, {:.0} req/s, p95={}, failed={:.2}%, dropped={}",
            clock(self.elapsed),
            clock(self.total),
            self.vus,
            self.vus_max,
            self.requests,
            self.rps,
            format_ms(self.p95_ms),
            self.failed_rate * 100.0,
            self.dropped
        )
    }
}

fn clock(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    let minutes = (seconds / 60.0).floor();
    format!("{minutes:.0}m{:04.1}s", seconds - minutes * 60.0)
}

/// The bars drawn on a TTY: the run's line, then one bar per scenario.
#[derive(Debug)]
struct Bars {
    run: ProgressBar,
    scenarios: Vec<ProgressBar>,
}

/// Bar positions are thousandths of the way.
const BAR_STEPS: u64 = 1000;

impl Bars {
    fn new(target: ProgressDrawTarget, scenarios: &[ScenarioStatus<'_>]) -> Bars {
        let all = MultiProgress::with_draw_target(target);
        let run = all.add(ProgressBar::new(BAR_STEPS));
        run.set_style(
            ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let width = scenarios
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(0)
            .min(30);
        let style =
            ProgressStyle::with_template(&format!("{{prefix:<{width}}} [{{bar:40}}] {{msg}}"))
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=>-");
        let bars = scenarios
            .iter()
            .map(|scenario| {
                let bar = all.add(ProgressBar::new(BAR_STEPS));
                bar.set_style(style.clone());
                bar.set_prefix(scenario.name.to_string());
                bar
            })
            .collect();
        Bars {
            run,
            scenarios: bars,
        }
    }

    fn update(&self, line: &ProgressLine, scenarios: &[ScenarioStatus<'_>]) {
        self.run.set_message(line.render());
        for (bar, scenario) in self.scenarios.iter().zip(scenarios) {
            bar.set_position((scenario.fraction() * BAR_STEPS as f64) as u64);
            bar.set_message(scenario.text());
        }
    }

    fn finish(&self, line: &ProgressLine, scenarios: &[ScenarioStatus<'_>]) {
        self.update(line, scenarios);
        for bar in std::iter::once(&self.run).chain(&self.scenarios) {
            bar.finish();
        }
    }
}

/// Writes progress to stderr.
#[derive(Debug)]
pub struct Progress {
    mode: ProgressMode,
    tty: bool,
    ticks: u64,
    bars: Option<Bars>,
}

impl Progress {
    /// A progress writer.
    pub fn new(mode: ProgressMode) -> Self {
        Progress {
            mode,
            tty: std::io::stderr().is_terminal(),
            ticks: 0,
            bars: None,
        }
    }

    /// The bars on a TTY, made at the first tick.
    fn bars(&mut self, scenarios: &[ScenarioStatus<'_>]) -> Option<&Bars> {
        if self.mode != ProgressMode::Auto || !self.tty {
            return None;
        }
        Some(
            self.bars
                .get_or_insert_with(|| Bars::new(ProgressDrawTarget::stderr(), scenarios)),
        )
    }

    /// Called once per second.
    pub fn tick(&mut self, line: &ProgressLine, scenarios: &[ScenarioStatus<'_>]) {
        self.ticks += 1;
        if let Some(bars) = self.bars(scenarios) {
            bars.update(line, scenarios);
            return;
        }
        // Without a terminal (the bars' case returned above): a plain line every few seconds.
        let every = match self.mode {
            ProgressMode::Off => return,
            ProgressMode::Auto => 5,
            ProgressMode::Plain(every) => every.max(1),
        };
        if self.ticks.is_multiple_of(every) {
            let _ = writeln!(std::io::stderr().lock(), "{}", line.render());
        }
    }

    /// Ends the live display: the bars stay with their last state.
    pub fn finish(&mut self, line: &ProgressLine, scenarios: &[ScenarioStatus<'_>]) {
        if let Some(bars) = self.bars(scenarios) {
            bars.finish(line, scenarios);
            return;
        }
        if self.mode != ProgressMode::Off {
            let _ = writeln!(std::io::stderr().lock(), "{}", line.render());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plans(yaml: &str) -> Vec<(String, ScenarioPlan)> {
        let spec: stampede_crds::spec::LoadTestSpec = serde_yaml_ng::from_str(yaml).unwrap();
        stampede_crds::model::scenario::compile(&spec)
            .unwrap()
            .iter()
            .map(|s| {
                let plan = ScenarioPlan::new(s, &crate::schedule::ExecutionSegment::full());
                (s.name.clone(), plan)
            })
            .collect()
    }

    /// Each executor's bar reads as k6's does: VUs and time for the VU executors, the rate for
    /// arrival rates, iterations for the iteration executors; a scenario not started yet waits.
    #[test]
    fn each_executors_bar_reads_as_k6s() {
        let plans = plans(
            r#"
scenarios:
  ramp: {executor: ramping-vus, startTime: 10s, stages: [{duration: 10s, target: 10}, {duration: 10s, target: 0}]}
  shared: {executor: shared-iterations, vus: 4, iterations: 200}
  pervu: {executor: per-vu-iterations, vus: 2, iterations: 5}
  steady: {executor: constant-vus, vus: 3, duration: 1m}
  rate: {executor: constant-arrival-rate, rate: 5, timeUnit: 1s, duration: 40s, preAllocatedVUs: 2, maxVUs: 8}
"#,
        );
        let status = |name: &str, elapsed: u64, active: i64, completed: u64| {
            let (name, plan) = plans.iter().find(|(n, _)| n == name).unwrap();
            let counters = ScenarioCounters::default();
            counters.active.store(active, Ordering::Relaxed);
            counters.completed.store(completed, Ordering::Relaxed);
            let status = ScenarioStatus::read(name, plan, &counters, Duration::from_secs(elapsed));
            (status.fraction(), status.text())
        };
        assert_eq!(
            status("ramp", 4, 0, 0),
            (0.0, "waiting, starts in 0m06.0s".to_string())
        );
        assert_eq!(
            status("ramp", 15, 5, 0),
            (0.25, "5/10 VUs  0m05.0s/0m20.0s".to_string())
        );
        assert_eq!(
            status("shared", 3, 4, 50),
            (0.25, "4/4 VUs  50/200 shared iters".to_string())
        );
        assert_eq!(
            status("pervu", 1, 2, 5),
            (0.5, "2/2 VUs  5/10 iters, 5 per VU".to_string())
        );
        assert_eq!(
            status("steady", 30, 3, 0),
            (0.5, "3 VUs  0m30.0s/1m00.0s".to_string())
        );
        assert_eq!(
            status("rate", 10, 1, 0),
            (0.25, "5.00 iters/s, 1/8 VUs  0m10.0s/0m40.0s".to_string())
        );
        // Past its end the bar is full and the clock stops at the duration.
        assert_eq!(
            status("steady", 75, 0, 0),
            (1.0, "3 VUs  1m00.0s/1m00.0s".to_string())
        );
    }

    #[test]
    fn renders_a_k6_like_line() {
        let line = ProgressLine {
            elapsed: Duration::from_millis(12_300),
            total: Duration::from_secs(70),
            vus: 120,
            vus_max: 2000,
            rps: 1234.4,
            p95_ms: 12.3,
            failed_rate: 0.0012,
            requests: 5000,
            dropped: 0,
        };
        assert_eq!(
            line.render(),
            "running (0m12.3s/1m10.0s), 120/2000 VUs, 5000 reqs, 1234 req/s, p95=12.3ms, failed=0.12%, dropped=0"
        );
    }
}
