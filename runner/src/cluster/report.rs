//! A runner's report in a cluster (one ConfigMap per runner) and the merge of every runner's
//! reports into one summary: the contract between `stampede agent` and the operator.
//!
//! Reports are cumulative — each one replaces the last — so a restarted operator loses nothing
//! by reading them again. Metrics travel as mergeable snapshots (counters, rates, HdrHistograms),
//! so the merged percentiles are those of all samples, not an average of the runners'.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use stampede_crds::model::summary::TrendColumn;

use super::sealed::SealedSetup;
use crate::metrics::Metric;
use crate::metrics::Snapshot;
use crate::metrics::errors::{ErrorRow, merge_rows};
use crate::metrics::sketch::LatencySketch;
use crate::summary::{Fleet, RunnerShare, SecondPoint, Summary};

/// The ConfigMap key a report is stored under.
pub const REPORT_KEY: &str = "report.json";

/// How often a running runner writes its report, and how often the operator merges them.
pub const REPORT_EVERY_SECONDS: u64 = 2;

/// The longest series a report carries; longer runs are downsampled (adjacent seconds
/// merged) so a soak test's report stays far below a ConfigMap's limit.
const MAX_SERIES_POINTS: usize = 400;

/// Where a runner is in its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum RunnerState {
    /// Reading the LoadTest and preparing.
    #[default]
    Preparing,
    /// Prepared (and, for runner 0, setup done); waiting for the start time.
    Ready,
    /// Running its segment.
    Running,
    /// Done: this is its final report.
    Finished,
    /// It could not prepare or run; `message` says why.
    Failed,
}

/// One runner's cumulative report.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunnerReport {
    /// The run (`status.run`) it belongs to.
    pub run: i64,
    /// The runner's index.
    pub runner: u64,
    /// Its state.
    pub state: RunnerState,
    /// Why it failed, or a note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Wall-clock time its scenarios started (RFC 3339, ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// Seconds since its scenarios started.
    #[serde(default)]
    pub elapsed_seconds: f64,
    /// Active VUs at the last second.
    #[serde(default)]
    pub vus: i64,
    /// Allocated VUs at the last second.
    #[serde(default)]
    pub vus_max: i64,
    /// The public key runner 0 seals setup()'s values to (every other runner, when the test
    /// has a setup flow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup_key: Option<String>,
    /// setup()'s values sealed for every other runner (runner 0 only): a report is readable
    /// with the namespace's `view` role, so the values never appear in plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_setup: Option<SealedSetup>,
    /// Every series' cumulative value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Snapshot>,
    /// The per-second series (downsampled to the width [`series_width`] gives).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<SecondPoint>,
    /// Step names in flow order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<String>,
    /// Check names in flow order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<String>,
    /// Group tags in flow order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Request and iteration errors seen.
    #[serde(default)]
    pub errors: u64,
    /// The errors by kind, with a sample message each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_errors: Vec<ErrorRow>,
    /// Why it stopped early, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
}

/// The longest report text read: a ConfigMap holds at most 1 MiB, so anything longer did not
/// come through the API and is refused before it is parsed.
pub const MAX_REPORT_BYTES: usize = 1 << 20;

/// A report that cannot be read (reports are untrusted input: a runner's image is the
/// LoadTest author's choice).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Not JSON of a runner report, or a histogram in it is refused.
    #[error("report is not valid JSON of a runner report: {0}")]
    Json(#[from] serde_json::Error),
    /// Longer than [`MAX_REPORT_BYTES`].
    #[error("report is {0} bytes long, over the {MAX_REPORT_BYTES} a ConfigMap can hold")]
    TooLong(usize),
}

impl RunnerReport {
    /// The report's JSON text.
    pub fn to_json(&self) -> String {
        // Every field serializes (strings, numbers, base64 histograms), so this cannot fail;
        // an empty object would be read back as a Preparing report, never as a wrong one.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }

    /// Reads a report.
    pub fn from_json(text: &str) -> Result<RunnerReport, ReportError> {
        if text.len() > MAX_REPORT_BYTES {
            return Err(ReportError::TooLong(text.len()));
        }
        Ok(serde_json::from_str(text)?)
    }
}

/// How many seconds one point of a report's series covers for a test planned to last
/// `planned_seconds`: 1, or the power of two that keeps the series within 400 points (with
/// room for graceful stops). Every runner of a run has the same plan, so their points cover
/// the same seconds and merge point by point.
pub fn series_width(planned_seconds: f64) -> usize {
    let seconds = planned_seconds.max(0.0).ceil() as usize + 120;
    seconds
        .div_ceil(MAX_SERIES_POINTS)
        .next_power_of_two()
        .max(1)
}

/// Merges each run of `width` consecutive seconds into one point: counts add, VUs (active and
/// planned) and the planned rate keep the larger value, time is the later end, and the
/// percentiles are those of the merged latency sketches.
pub fn downsample(series: &[SecondPoint], width: usize) -> Vec<SecondPoint> {
    series
        .chunks(width.max(1))
        .map(|chunk| match chunk {
            [one] => one.clone(),
            _ => merge_points(chunk.iter(), Combine::Seconds),
        })
        .collect()
}

/// What the points being merged are: adjacent seconds of one runner, or the same second of
/// several runners.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Combine {
    Seconds,
    Runners,
}

/// Merges points into one. Percentiles come from the merged latency sketches, so they are
/// those of every sample within the sketch's 1 %; when a point that sent requests has no
/// sketch (a report from before sketches), they fall back to the largest point's (an upper
/// bound). VUs add across runners and keep the largest across seconds; the planned load is
/// test-wide, so it keeps the largest either way.
fn merge_points<'a>(
    points: impl Iterator<Item = &'a SecondPoint> + Clone,
    combine: Combine,
) -> SecondPoint {
    let mut merged = SecondPoint::default();
    for p in points.clone() {
        merged.t = merged.t.max(p.t);
        (merged.vus, merged.in_flight) = match combine {
            Combine::Runners => (merged.vus + p.vus, merged.in_flight + p.in_flight),
            Combine::Seconds => (merged.vus.max(p.vus), merged.in_flight.max(p.in_flight)),
        };
        merged.requests += p.requests;
        merged.failed += p.failed;
        merged.client_errors += p.client_errors;
        merged.server_errors += p.server_errors;
        merged.no_response += p.no_response;
        for (code, count) in &p.no_response_by_code {
            *merged.no_response_by_code.entry(*code).or_default() += count;
        }
        merged.iterations += p.iterations;
        merged.dropped += p.dropped;
        merged.p50_ms = merged.p50_ms.max(p.p50_ms);
        merged.p90_ms = merged.p90_ms.max(p.p90_ms);
        merged.p95_ms = merged.p95_ms.max(p.p95_ms);
        merged.p99_ms = merged.p99_ms.max(p.p99_ms);
        merged.planned_vus = merged.planned_vus.max(p.planned_vus);
        merged.planned_rate = merged.planned_rate.max(p.planned_rate);
    }
    let every_sketch = points
        .clone()
        .all(|p| p.latency.is_some() || p.requests == 0);
    if !every_sketch {
        return merged;
    }
    let sketches = points.filter_map(|p| p.latency.as_ref());
    // A downsampled point keeps its sketch (runners' points merge later); the fleet's merged
    // result keeps the percentiles only, so its sketch is never encoded.
    let at = match combine {
        Combine::Seconds => LatencySketch::merge(sketches).map(|(sketch, at)| {
            merged.latency = Some(sketch);
            at
        }),
        Combine::Runners => LatencySketch::merged_percentiles(sketches),
    };
    if let Some(at) = at {
        merged.p50_ms = at.p50;
        merged.p90_ms = at.p90;
        merged.p95_ms = at.p95;
        merged.p99_ms = at.p99;
    }
    merged
}

/// Merges the runners' series second by second (they all started at the same instant).
fn merge_series(reports: &[&RunnerReport]) -> Vec<SecondPoint> {
    let len = reports.iter().map(|r| r.series.len()).max().unwrap_or(0);
    (0..len)
        .map(|i| {
            merge_points(
                reports.iter().filter_map(|r| r.series.get(i)),
                Combine::Runners,
            )
        })
        .collect()
}

/// The fleet's summary so far: every report's metrics merged, the series merged, the run time
/// of the longest runner. Thresholds are left empty for the caller to evaluate (live rules or
/// end-of-test rules).
pub fn merge_reports(
    name: &str,
    trend_stats: &[TrendColumn],
    reports: &[&RunnerReport],
) -> Summary {
    let mut metrics: Option<Snapshot> = None;
    for report in reports {
        if let Some(snapshot) = &report.metrics {
            match metrics.as_mut() {
                Some(merged) => merged.merge(snapshot),
                None => metrics = Some(snapshot.clone()),
            }
        }
    }
    let first_with = |pick: fn(&RunnerReport) -> &Vec<String>| {
        reports
            .iter()
            .map(|r| pick(r))
            .find(|list| !list.is_empty())
            .cloned()
            .unwrap_or_default()
    };
    let elapsed = reports
        .iter()
        .map(|r| r.elapsed_seconds)
        .fold(0.0, f64::max);
    let aborted = reports.iter().find_map(|r| r.aborted.clone());
    Summary {
        name: name.to_string(),
        test_run_duration_ms: elapsed * 1000.0,
        metrics: metrics.unwrap_or(Snapshot {
            values: BTreeMap::new(),
        }),
        thresholds: Vec::new(),
        series: merge_series(reports),
        errors: merge_rows(reports.iter().map(|r| r.top_errors.as_slice())),
        trend_stats: trend_stats.to_vec(),
        steps: first_with(|r| &r.steps),
        checks: first_with(|r| &r.checks),
        groups: first_with(|r| &r.groups),
        aborted,
        fleet: Some(Fleet {
            runners: reports.iter().map(|r| runner_share(r)).collect(),
            ..Fleet::default()
        }),
    }
}

/// A runner's part of the merged result, from its report.
fn runner_share(report: &RunnerReport) -> RunnerShare {
    let count = |metric: Metric| {
        report
            .metrics
            .as_ref()
            .map_or(0.0, |m| m.count(metric.name()))
    };
    RunnerShare {
        runner: report.runner,
        requests: count(Metric::HttpReqs),
        dropped: count(Metric::DroppedIterations),
        started_at: report.started_at.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::snapshot::Trend;
    use crate::metrics::{Metric, Registry, Value};
    use base64::Engine as _;

    fn report(runner: u64, durations: &[f64], requests: f64) -> RunnerReport {
        let mut registry = Registry::new();
        registry.add(Metric::HttpReqs, Vec::new());
        let mut snapshot = Snapshot::empty(&registry);
        let mut trend = Trend::default();
        for d in durations {
            trend.record(*d);
        }
        snapshot.values.insert(
            Metric::HttpReqDuration.name().to_string(),
            Value::Trend(Box::new(trend)),
        );
        snapshot.values.insert(
            Metric::HttpReqs.name().to_string(),
            Value::Counter(requests),
        );
        RunnerReport {
            run: 1,
            runner,
            state: RunnerState::Finished,
            elapsed_seconds: 10.0 + runner as f64,
            metrics: Some(snapshot),
            series: vec![
                SecondPoint {
                    t: 1.0,
                    requests: 10,
                    vus: 2,
                    p95_ms: runner as f64,
                    ..SecondPoint::default()
                };
                3
            ],
            steps: vec!["login".into()],
            ..RunnerReport::default()
        }
    }

    #[test]
    fn reports_round_trip_through_json() {
        let original = report(2, &[1.0, 2.0, 3.0], 3.0);
        let back = RunnerReport::from_json(&original.to_json()).expect("parses");
        assert_eq!(back.runner, 2);
        assert_eq!(back.state, RunnerState::Finished);
        let trend = back
            .metrics
            .as_ref()
            .and_then(|m| m.trend("http_req_duration"))
            .expect("trend");
        assert_eq!(trend.count(), 3);
        assert_eq!(trend.max, 3.0);
    }

    #[test]
    fn bad_json_is_an_error_not_a_panic() {
        assert!(RunnerReport::from_json("{\"state\": 7}").is_err());
        assert!(RunnerReport::from_json("not json").is_err());
    }

    /// A report is untrusted input: a trend whose 40-byte histogram declares a 4 GiB payload
    /// (hdrhistogram would allocate it before reading) and a text over a ConfigMap's size are
    /// refused with the reason, before anything large is allocated.
    #[test]
    fn hostile_reports_are_refused_before_they_allocate() {
        let mut header = Vec::new();
        header.extend(0x1c84_9313u32.to_be_bytes());
        header.extend(u32::MAX.to_be_bytes());
        header.extend(0u32.to_be_bytes());
        header.extend(3u32.to_be_bytes());
        header.extend(1u64.to_be_bytes());
        header.extend(2u64.to_be_bytes());
        header.extend(1.0f64.to_be_bytes());
        let hdr = base64::engine::general_purpose::STANDARD.encode(&header);
        let text = format!(
            r#"{{"run":1,"runner":0,"state":"Running","metrics":{{"http_req_duration":{{"type":"trend","count":1,"sum":1.0,"hdr":"{hdr}"}}}}}}"#
        );
        let error = RunnerReport::from_json(&text).unwrap_err().to_string();
        assert!(
            error.contains("declares 4294967295 payload bytes but 0 follow"),
            "{error}"
        );

        let long = format!("{{\"message\": \"{}\"}}", "x".repeat(MAX_REPORT_BYTES));
        assert!(matches!(
            RunnerReport::from_json(&long),
            Err(ReportError::TooLong(_))
        ));
    }

    #[test]
    fn merged_reports_add_counts_and_merge_percentiles_exactly() {
        let a = report(0, &(1..=100).map(f64::from).collect::<Vec<_>>(), 100.0);
        let b = report(1, &(101..=200).map(f64::from).collect::<Vec<_>>(), 100.0);
        let c = report(2, &(201..=300).map(f64::from).collect::<Vec<_>>(), 100.0);
        let merged = merge_reports("t", &TrendColumn::defaults(), &[&a, &b, &c]);
        assert_eq!(merged.metrics.count("http_reqs"), 300.0);
        let trend = merged.metrics.trend("http_req_duration").expect("trend");
        assert_eq!(trend.count(), 300);
        // The p95 of 1..=300 is 285; HdrHistogram keeps 3 significant figures.
        assert!((trend.percentile(95.0) - 285.0).abs() <= 0.3);
        assert_eq!(merged.test_run_duration_ms, 12_000.0);
        assert_eq!(merged.series.len(), 3);
        assert_eq!(merged.series[0].requests, 30);
        assert_eq!(merged.series[0].vus, 6);
        assert_eq!(merged.series[0].p95_ms, 2.0);
        assert_eq!(merged.steps, vec!["login".to_string()]);
    }

    /// A point of each runner with its own latencies: the fleet's point has the percentiles
    /// of every sample (within the sketch's 1 %), in the same second and after downsampling.
    #[test]
    fn merged_series_percentiles_are_those_of_every_runners_samples() {
        let samples = |runner: u64, second: u64| -> Vec<f64> {
            // Runner 2 is slow and sends few requests: its p95 is far above the fleet's.
            let (base, n) = if runner == 2 { (90.0, 10) } else { (4.0, 200) };
            (0..n)
                .map(|k| base + ((k * 7 + runner * 13 + second * 3) % 50) as f64 * 0.1)
                .collect()
        };
        let point = |runner: u64, second: u64| {
            let values = samples(runner, second);
            let sketch = LatencySketch::from_values(values.iter().map(|v| (*v, 1)));
            let at = sketch
                .as_ref()
                .map(LatencySketch::percentiles)
                .unwrap_or_default();
            SecondPoint {
                t: second as f64,
                requests: values.len() as u64,
                p50_ms: at.p50,
                p90_ms: at.p90,
                p95_ms: at.p95,
                p99_ms: at.p99,
                latency: sketch,
                ..SecondPoint::default()
            }
        };
        let reports: Vec<RunnerReport> = (0..3)
            .map(|runner| RunnerReport {
                runner,
                series: downsample(&(1..=4).map(|s| point(runner, s)).collect::<Vec<_>>(), 2),
                ..RunnerReport::default()
            })
            .collect();
        let back: Vec<RunnerReport> = reports
            .iter()
            .map(|r| RunnerReport::from_json(&r.to_json()).expect("parses"))
            .collect();
        let merged = merge_reports("t", &[], &back.iter().collect::<Vec<_>>());
        assert_eq!(merged.series.len(), 2);
        for (i, got) in merged.series.iter().enumerate() {
            let seconds = [2 * i as u64 + 1, 2 * i as u64 + 2];
            let mut all: Vec<f64> = (0..3)
                .flat_map(|r| seconds.iter().flat_map(move |s| samples(r, *s)))
                .collect();
            all.sort_by(f64::total_cmp);
            let exact =
                |percent: f64| all[((percent / 100.0) * all.len() as f64).ceil() as usize - 1];
            for (percent, value) in [
                (50.0, got.p50_ms),
                (90.0, got.p90_ms),
                (95.0, got.p95_ms),
                (99.0, got.p99_ms),
            ] {
                let want = exact(percent);
                assert!(
                    (value - want).abs() <= want * 0.01,
                    "point {i} p{percent}: {value} vs {want}"
                );
            }
            // The largest runner's p95 (the old upper bound) is the slow runner's.
            assert!(
                back[2].series[i].p95_ms > 80.0 && got.p95_ms < 10.0,
                "{got:?}"
            );
            assert_eq!(got.requests, 820);
            assert!(got.latency.is_none(), "the merged result keeps no sketch");
        }
    }

    #[test]
    fn downsampling_keeps_totals_and_bounds_the_length() {
        let series: Vec<SecondPoint> = (1..=1000)
            .map(|t| SecondPoint {
                t: f64::from(t),
                requests: 1,
                p95_ms: f64::from(t % 7),
                ..SecondPoint::default()
            })
            .collect();
        let width = series_width(1000.0);
        assert_eq!(width, 4);
        let small = downsample(&series, width);
        assert!(small.len() <= MAX_SERIES_POINTS);
        assert_eq!(small.len(), 250);
        assert_eq!(small.iter().map(|p| p.requests).sum::<u64>(), 1000);
        assert_eq!(small.last().map(|p| p.t), Some(1000.0));
        assert_eq!(small[0].t, 4.0);
        assert!(small.iter().all(|p| p.p95_ms <= 6.0));
        // Runners whose series differ by a point still cover the same seconds per point.
        assert_eq!(downsample(&series[..401], width)[99].t, small[99].t);
        assert_eq!(series_width(30.0), 1);
        assert_eq!(series_width(3600.0), 16);
        assert!(3720usize.div_ceil(series_width(3600.0)) <= MAX_SERIES_POINTS);
    }
}
