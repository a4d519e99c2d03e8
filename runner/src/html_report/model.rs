//! What the HTML report shows, computed from a summary by pure functions: the verdict with each
//! threshold's observed value, limit and margin; the three numbers that matter; the time series
//! as columns; the latency distribution; the per-step and per-check tables.

use serde::Serialize;
use stampede_crds::threshold::{Aggregation, Operator, parse_expression};

use crate::metrics::errors::{ErrorRow, code_meaning};
use crate::metrics::registry::Metric;
use crate::metrics::registry::canonical_key;
use crate::metrics::snapshot::{Trend, Value};
use crate::summary::{Fleet, Summary, format_ms, format_number, is_time_key};
use crate::thresholds::ThresholdResult;

/// Everything the page shows; embedded in it as JSON for the charts, and rendered as text.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportData {
    /// The LoadTest's name.
    pub name: String,
    /// Whether every threshold held.
    pub passed: bool,
    /// Why the run stopped early.
    pub aborted: Option<String>,
    /// Test-run time, seconds.
    pub duration_seconds: f64,
    /// The three numbers that matter, and their context.
    pub headline: Headline,
    /// One row per threshold.
    pub thresholds: Vec<ThresholdRow>,
    /// The time series, one column per quantity.
    pub series: Series,
    /// `http_req_duration` at percentiles from 0 to 99.99 (and the maximum).
    pub distribution: Vec<Quantile>,
    /// One row per step that sent requests, in flow order.
    pub steps: Vec<StepLine>,
    /// One row per group that ran, in flow order.
    pub groups: Vec<GroupLine>,
    /// One row per check, in flow order.
    pub checks: Vec<CheckLine>,
    /// The errors by kind, most frequent first.
    pub errors: Vec<ErrorLine>,
    /// Which run of which LoadTest, and its runners (a cluster run).
    pub fleet: Option<FleetView>,
}

/// A cluster run's identity and its runners' parts.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetView {
    /// The LoadTest's namespace.
    pub namespace: String,
    /// The run.
    pub run: i64,
    /// The spec generation it ran.
    pub generation: Option<i64>,
    /// How far apart the runners' scenarios started, ms (when every runner said).
    pub start_spread_ms: Option<f64>,
    /// One row per runner.
    pub runners: Vec<RunnerLine>,
}

/// One runner's row.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunnerLine {
    /// Its index.
    pub runner: u64,
    /// Requests it sent.
    pub requests: f64,
    /// Its share of all requests, 0..1.
    pub share: f64,
    /// Iterations it dropped.
    pub dropped: f64,
    /// When its scenarios started.
    pub started_at: Option<String>,
}

/// Throughput, latency and errors over the whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Headline {
    /// HTTP requests.
    pub requests: f64,
    /// Requests per second (achieved).
    pub requests_per_second: f64,
    /// Iterations completed.
    pub iterations: f64,
    /// Iterations the executors planned but could not start (arrival-rate executors).
    pub dropped_iterations: f64,
    /// Share of iterations offered that were started: 1 unless iterations were dropped.
    pub achieved_share: f64,
    /// `http_req_duration` p95 and p99, ms.
    pub p95_ms: f64,
    /// p99, ms.
    pub p99_ms: f64,
    /// `http_req_failed` rate, 0..1.
    pub error_rate: f64,
    /// Most VUs active at once (in an iteration, for the arrival rates), as sampled each second.
    pub vus_max: f64,
    /// Most VUs allocated at once (k6's `vus_max`).
    pub vus_allocated: f64,
    /// Responses with a 4xx status.
    pub client_errors: u64,
    /// Responses with a 5xx status.
    pub server_errors: u64,
    /// Requests with no response.
    pub no_response: u64,
}

/// A threshold's verdict with the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdRow {
    /// The metric key as written.
    pub metric: String,
    /// The expression as written.
    pub threshold: String,
    /// The observed aggregation, as the text summary prints it (`p(95)=12.3ms`).
    pub observed: String,
    /// The limit, as the metric's unit reads (`500ms`, `1.00%`).
    pub limit: String,
    /// How far from the limit, on the passing or failing side (`312ms under`).
    pub margin: String,
    /// Whether it held.
    pub ok: bool,
}

/// The time series as columns of equal length (what the charting library draws).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Series {
    /// Seconds since the start, at the end of each interval.
    pub t: Vec<f64>,
    /// Active VUs.
    pub vus: Vec<f64>,
    /// Requests awaiting their response at the end of the interval.
    #[serde(rename = "inFlight")]
    pub in_flight: Vec<f64>,
    /// Looping VUs the executors planned (their stages), test-wide.
    #[serde(rename = "plannedVus")]
    pub planned_vus: Vec<f64>,
    /// Iterations per second the arrival-rate executors planned.
    #[serde(rename = "plannedRate")]
    pub planned_rate: Vec<f64>,
    /// Requests per second in the interval.
    pub rps: Vec<f64>,
    /// Failed requests per second.
    pub failed: Vec<f64>,
    /// 4xx responses per second.
    #[serde(rename = "clientErrors")]
    pub client_errors: Vec<f64>,
    /// 5xx responses per second.
    #[serde(rename = "serverErrors")]
    pub server_errors: Vec<f64>,
    /// Requests with no response per second.
    #[serde(rename = "noResponse")]
    pub no_response: Vec<f64>,
    /// Requests with no response per second, by k6 `error_code`.
    #[serde(rename = "noResponseByCode")]
    pub no_response_by_code: Vec<CodeColumn>,
    /// Dropped iterations per second.
    pub dropped: Vec<f64>,
    /// Iterations per second.
    pub iterations: Vec<f64>,
    /// Request duration percentiles of the interval, ms; none (a gap) where it sent no request.
    pub p50: Vec<Option<f64>>,
    /// p90, ms.
    pub p90: Vec<Option<f64>>,
    /// p95, ms.
    pub p95: Vec<Option<f64>>,
    /// p99, ms.
    pub p99: Vec<Option<f64>>,
}

/// One k6 `error_code`'s requests with no response per second.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeColumn {
    /// The code.
    pub code: u32,
    /// The code and what it means (`1212 connection refused`).
    pub label: String,
    /// Per second, one value per interval.
    pub per_second: Vec<f64>,
    /// In all.
    pub total: u64,
}

/// One point of the latency distribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quantile {
    /// The percentile, 0..=100.
    pub percentile: f64,
    /// The duration there, ms.
    pub ms: f64,
}

/// One row of the per-step table.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepLine {
    /// The step's name.
    pub name: String,
    /// Requests it sent.
    pub requests: f64,
    /// Its failed share, 0..1.
    pub failed_rate: f64,
    /// Its duration percentiles and maximum, ms.
    pub p50_ms: f64,
    /// p95, ms.
    pub p95_ms: f64,
    /// p99, ms.
    pub p99_ms: f64,
    /// Maximum, ms.
    pub max_ms: f64,
}

/// One row of the groups table: how long a pass through the group took (`group_duration`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupLine {
    /// The group's path (`auth`, `checkout › pay`).
    pub name: String,
    /// Passes through it.
    pub passes: u64,
    /// Mean duration, ms.
    pub avg_ms: f64,
    /// p95, ms.
    pub p95_ms: f64,
    /// Maximum, ms.
    pub max_ms: f64,
}

/// One row of the checks table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckLine {
    /// The check's name.
    pub name: String,
    /// Times it held.
    pub passes: u64,
    /// Times it did not.
    pub fails: u64,
}

/// The percentiles the distribution is drawn at: dense to p99.99, as HdrHistogram plots are.
const DISTRIBUTION: [f64; 17] = [
    0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 97.5, 99.0, 99.5, 99.75, 99.9, 99.95, 99.975, 99.99,
    99.999, 100.0,
];

impl ReportData {
    /// The report of `summary`.
    pub fn of(summary: &Summary) -> ReportData {
        let duration = summary.metrics.trend(Metric::HttpReqDuration.name());
        ReportData {
            name: summary.name.clone(),
            passed: summary.passed(),
            aborted: summary.aborted.clone(),
            duration_seconds: summary.seconds(),
            headline: headline(summary),
            thresholds: summary.thresholds.iter().map(threshold_row).collect(),
            series: series(summary),
            distribution: duration.map(distribution).unwrap_or_default(),
            steps: steps(summary),
            groups: groups(summary),
            checks: checks(summary),
            errors: summary.errors.iter().map(error_line).collect(),
            fleet: summary.fleet.as_ref().map(fleet),
        }
    }
}

/// One kind of error: its k6 code and what it means, where, how often, a sample message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorLine {
    /// k6's `error_code` (none for an iteration error).
    pub code: Option<u32>,
    /// What the code means.
    pub meaning: String,
    /// The step, or `iteration` / `teardown`.
    pub place: String,
    /// How often.
    pub count: u64,
    /// The first message of its kind.
    pub message: String,
}

fn error_line(row: &ErrorRow) -> ErrorLine {
    ErrorLine {
        code: row.code,
        meaning: row.meaning(),
        place: row.place.clone(),
        count: row.count,
        message: row.message.clone(),
    }
}

fn fleet(fleet: &Fleet) -> FleetView {
    let total: f64 = fleet.runners.iter().map(|r| r.requests).sum();
    let starts: Option<Vec<i64>> = fleet
        .runners
        .iter()
        .map(|r| {
            let at = chrono::DateTime::parse_from_rfc3339(r.started_at.as_deref()?).ok()?;
            Some(at.timestamp_millis())
        })
        .collect();
    let start_spread_ms = starts.filter(|s| !s.is_empty()).map(|starts| {
        let first = starts.iter().min().copied().unwrap_or(0);
        let last = starts.iter().max().copied().unwrap_or(0);
        (last - first) as f64
    });
    FleetView {
        namespace: fleet.namespace.clone(),
        run: fleet.run,
        generation: fleet.generation,
        start_spread_ms,
        runners: fleet
            .runners
            .iter()
            .map(|r| RunnerLine {
                runner: r.runner,
                requests: r.requests,
                share: if total > 0.0 { r.requests / total } else { 0.0 },
                dropped: r.dropped,
                started_at: r.started_at.clone(),
            })
            .collect(),
    }
}

fn headline(summary: &Summary) -> Headline {
    let metrics = &summary.metrics;
    let requests = metrics.count(Metric::HttpReqs.name());
    let iterations = metrics.count(Metric::Iterations.name());
    let dropped = metrics.count(Metric::DroppedIterations.name());
    let duration = metrics.trend(Metric::HttpReqDuration.name());
    let gauge_max = |metric: Metric| match metrics.metric(metric) {
        Some(Value::Gauge { max, .. }) if max.is_finite() => *max,
        _ => 0.0,
    };
    let vus_max = gauge_max(Metric::Vus);
    let vus_allocated = gauge_max(Metric::VusMax);
    Headline {
        requests,
        requests_per_second: requests / summary.seconds().max(1e-9),
        iterations,
        dropped_iterations: dropped,
        achieved_share: if iterations + dropped > 0.0 {
            iterations / (iterations + dropped)
        } else {
            1.0
        },
        p95_ms: duration.map_or(0.0, |t| t.percentile(95.0)),
        p99_ms: duration.map_or(0.0, |t| t.percentile(99.0)),
        error_rate: metrics.rate(Metric::HttpReqFailed.name()).unwrap_or(0.0),
        vus_max,
        vus_allocated,
        // The series holds every request, its last partial second included.
        client_errors: summary.series.iter().map(|p| p.client_errors).sum(),
        server_errors: summary.series.iter().map(|p| p.server_errors).sum(),
        no_response: summary.series.iter().map(|p| p.no_response).sum(),
    }
}

/// A number in the unit the metric's threshold reads in.
fn in_unit(metric: &str, aggregation: Aggregation, value: f64) -> String {
    if is_time_key(metric) && !matches!(aggregation, Aggregation::Count | Aggregation::Rate) {
        format_ms(value)
    } else if aggregation == Aggregation::Rate && !metric.starts_with("http_reqs") {
        format!("{:.2}%", value * 100.0)
    } else {
        format_number(value)
    }
}

fn threshold_row(result: &ThresholdResult) -> ThresholdRow {
    let parsed = parse_expression(&result.threshold).ok();
    let limit = parsed.map_or_else(String::new, |p| {
        in_unit(&result.metric, p.aggregation, p.limit)
    });
    let margin = match (parsed, result.value) {
        (Some(p), Some(value)) => {
            let distance = in_unit(&result.metric, p.aggregation, (p.limit - value).abs());
            let side = match p.operator {
                Operator::Less | Operator::LessOrEqual => {
                    if value <= p.limit {
                        "under"
                    } else {
                        "over"
                    }
                }
                Operator::Greater | Operator::GreaterOrEqual => {
                    if value >= p.limit {
                        "over"
                    } else {
                        "under"
                    }
                }
                Operator::Equal | Operator::StrictEqual | Operator::NotEqual => {
                    if value == p.limit { "at" } else { "off" }
                }
            };
            if side == "at" {
                "at the limit".to_string()
            } else {
                format!("{distance} {side}")
            }
        }
        _ => String::new(),
    };
    ThresholdRow {
        metric: result.metric.clone(),
        threshold: result.threshold.clone(),
        observed: result.observed(),
        limit,
        margin,
        ok: result.ok,
    }
}

fn series(summary: &Summary) -> Series {
    let mut columns = Series::default();
    let codes: std::collections::BTreeSet<u32> = summary
        .series
        .iter()
        .flat_map(|p| p.no_response_by_code.keys().copied())
        .collect();
    columns.no_response_by_code = codes
        .iter()
        .map(|code| CodeColumn {
            code: *code,
            label: format!("{code} {}", code_meaning(*code)),
            ..CodeColumn::default()
        })
        .collect();
    let mut previous = 0.0;
    for point in &summary.series {
        // Points of a downsampled series cover several seconds: rates divide by the width.
        let width = (point.t - previous).max(1e-9);
        previous = point.t;
        columns.t.push(point.t);
        columns.vus.push(point.vus as f64);
        columns.in_flight.push(point.in_flight as f64);
        columns.planned_vus.push(point.planned_vus as f64);
        columns.planned_rate.push(point.planned_rate);
        columns.rps.push(point.requests as f64 / width);
        columns.failed.push(point.failed as f64 / width);
        columns
            .client_errors
            .push(point.client_errors as f64 / width);
        columns
            .server_errors
            .push(point.server_errors as f64 / width);
        columns.no_response.push(point.no_response as f64 / width);
        for column in &mut columns.no_response_by_code {
            let count = point
                .no_response_by_code
                .get(&column.code)
                .copied()
                .unwrap_or(0);
            column.per_second.push(count as f64 / width);
            column.total += count;
        }
        columns.dropped.push(point.dropped as f64 / width);
        columns.iterations.push(point.iterations as f64 / width);
        let sent = point.requests > 0;
        columns.p50.push(sent.then_some(point.p50_ms));
        columns.p90.push(sent.then_some(point.p90_ms));
        columns.p95.push(sent.then_some(point.p95_ms));
        columns.p99.push(sent.then_some(point.p99_ms));
    }
    columns
}

fn distribution(trend: &Trend) -> Vec<Quantile> {
    if trend.count() == 0 {
        return Vec::new();
    }
    DISTRIBUTION
        .iter()
        .map(|&percentile| Quantile {
            percentile,
            ms: trend.percentile(percentile),
        })
        .collect()
}

fn steps(summary: &Summary) -> Vec<StepLine> {
    summary
        .step_rows()
        .into_iter()
        .map(|row| {
            let at = |p: f64| row.duration.map_or(0.0, |t| t.percentile(p));
            StepLine {
                name: row.name.to_string(),
                requests: row.requests,
                failed_rate: row.failed_rate,
                p50_ms: at(50.0),
                p95_ms: at(95.0),
                p99_ms: at(99.0),
                max_ms: row.duration.map_or(0.0, Trend::max_or_zero),
            }
        })
        .collect()
}

fn groups(summary: &Summary) -> Vec<GroupLine> {
    summary
        .groups
        .iter()
        .filter_map(|tag| {
            let key = canonical_key(
                Metric::GroupDuration.name(),
                &[("group".into(), tag.clone())],
            );
            let trend = summary.metrics.trend(&key).filter(|t| t.count() > 0)?;
            Some(GroupLine {
                name: tag
                    .trim_start_matches("::")
                    .split("::")
                    .collect::<Vec<_>>()
                    .join(" › "),
                passes: trend.count(),
                avg_ms: trend.avg(),
                p95_ms: trend.percentile(95.0),
                max_ms: trend.max_or_zero(),
            })
        })
        .collect()
}

fn checks(summary: &Summary) -> Vec<CheckLine> {
    summary
        .checks
        .iter()
        .filter_map(|name| {
            let key = canonical_key("checks", &[("check".into(), name.clone())]);
            match summary.metrics.get(&key) {
                Some(Value::Rate { passes, total }) if *total > 0 => Some(CheckLine {
                    name: name.clone(),
                    passes: *passes,
                    fails: total - passes,
                }),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::SecondPoint;

    fn threshold(metric: &str, expression: &str, value: f64, ok: bool) -> ThresholdResult {
        ThresholdResult {
            metric: metric.into(),
            series: metric.into(),
            threshold: expression.into(),
            value: Some(value),
            ok,
            evaluated: true,
            abort_on_fail: false,
            no_data: false,
        }
    }

    #[test]
    fn a_threshold_row_gives_the_limit_and_the_margin_in_the_metrics_unit() {
        let row = threshold_row(&threshold("http_req_duration", "p(95)<500", 320.0, true));
        assert_eq!(
            (row.limit.as_str(), row.margin.as_str()),
            ("500ms", "180ms under")
        );
        let row = threshold_row(&threshold("http_req_failed", "rate<0.01", 0.05, false));
        assert_eq!(
            (row.limit.as_str(), row.margin.as_str()),
            ("1.00%", "4.00% over")
        );
        let row = threshold_row(&threshold("checks", "rate>0.99", 0.95, false));
        assert_eq!(row.margin, "4.00% under");
        let row = threshold_row(&threshold("http_reqs", "count>=100", 100.0, true));
        assert_eq!(row.margin, "0 over");
        let row = threshold_row(&threshold("iterations", "count==3", 3.0, true));
        assert_eq!(row.margin, "at the limit");
    }

    #[test]
    fn a_fleet_shows_each_runners_share_and_how_far_apart_they_started() {
        let share =
            |runner: u64, requests: f64, started: Option<&str>| crate::summary::RunnerShare {
                runner,
                requests,
                dropped: 0.0,
                started_at: started.map(str::to_string),
            };
        let view = fleet(&Fleet {
            namespace: "shop".into(),
            run: 3,
            generation: Some(2),
            runners: vec![
                share(0, 300.0, Some("2026-12-01T09:00:04.012Z")),
                share(1, 100.0, Some("2026-12-01T09:00:04.250Z")),
            ],
        });
        assert_eq!(view.start_spread_ms, Some(238.0));
        let shares: Vec<f64> = view.runners.iter().map(|r| r.share).collect();
        assert_eq!(shares, [0.75, 0.25]);
        // A runner that has not said when it started: no spread to show.
        let view = fleet(&Fleet {
            runners: vec![
                share(0, 1.0, Some("2026-12-01T09:00:04Z")),
                share(1, 0.0, None),
            ],
            ..Fleet::default()
        });
        assert_eq!(view.start_spread_ms, None);
    }

    #[test]
    fn downsampled_points_give_rates_per_second_and_idle_intervals_leave_gaps() {
        let point = |t: f64, requests: u64, p95_ms: f64| SecondPoint {
            t,
            requests,
            failed: requests / 4,
            p95_ms,
            ..SecondPoint::default()
        };
        let summary = Summary {
            name: "t".into(),
            test_run_duration_ms: 6000.0,
            metrics: crate::metrics::Snapshot {
                values: Default::default(),
            },
            thresholds: Vec::new(),
            groups: Vec::new(),
            errors: Vec::new(),
            series: vec![
                point(2.0, 200, 12.0),
                point(4.0, 100, 30.0),
                point(6.0, 0, 0.0),
            ],
            trend_stats: Vec::new(),
            steps: Vec::new(),
            checks: Vec::new(),
            aborted: None,
            fleet: None,
        };
        let columns = series(&summary);
        assert_eq!(columns.rps, [100.0, 50.0, 0.0]);
        assert_eq!(columns.failed, [25.0, 12.5, 0.0]);
        assert_eq!(columns.p95, [Some(12.0), Some(30.0), None]);
    }
}
