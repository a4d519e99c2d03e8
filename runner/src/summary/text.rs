//! The end-of-test text summary in k6's layout (thresholds, totals, HTTP, execution, network),
//! plus what k6 lacks: a per-step table and a one-line verdict.

use std::io::{self, Write};

use stampede_crds::metrics::MetricType;
use stampede_crds::model::summary::{TrendColumn, TrendStat};

use super::Summary;
use super::format::{format_bytes, format_ms, format_number, is_time_key};
use crate::metrics::registry::canonical_key;
use crate::metrics::snapshot::Trend;
use crate::metrics::{Metric, Value};

const WIDTH: usize = 40;

const HTTP: [Metric; 9] = [
    Metric::HttpReqBlocked,
    Metric::HttpReqConnecting,
    Metric::HttpReqDuration,
    Metric::HttpReqFailed,
    Metric::HttpReqReceiving,
    Metric::HttpReqSending,
    Metric::HttpReqTlsHandshaking,
    Metric::HttpReqWaiting,
    Metric::HttpReqs,
];
const EXECUTION: [Metric; 6] = [
    Metric::DroppedIterations,
    Metric::GroupDuration,
    Metric::IterationDuration,
    Metric::Iterations,
    Metric::Vus,
    Metric::VusMax,
];
const NETWORK: [Metric; 2] = [Metric::DataReceived, Metric::DataSent];
/// Metrics k6's compact mode hides.
const HIDDEN_IN_COMPACT: [Metric; 6] = [
    Metric::HttpReqBlocked,
    Metric::HttpReqConnecting,
    Metric::HttpReqReceiving,
    Metric::HttpReqSending,
    Metric::HttpReqTlsHandshaking,
    Metric::HttpReqWaiting,
];

/// Writes the summary. `full` is k6's `--summary-mode full` (shows every timing phase).
pub fn write_text(summary: &Summary, full: bool, out: &mut impl Write) -> io::Result<()> {
    let seconds = summary.seconds();
    if !summary.thresholds.is_empty() {
        writeln!(out, "\n  █ THRESHOLDS\n")?;
        let mut last_metric = "";
        for result in &summary.thresholds {
            if result.metric != last_metric {
                if !last_metric.is_empty() {
                    writeln!(out)?;
                }
                writeln!(out, "    {}", result.metric)?;
                last_metric = &result.metric;
            }
            let mark = if result.ok { "✓" } else { "✗" };
            writeln!(
                out,
                "    {mark} '{}' {}",
                result.threshold,
                result.observed()
            )?;
        }
    }
    writeln!(out, "\n  █ TOTAL RESULTS\n")?;
    write_checks(summary, seconds, out)?;
    for (title, metrics) in [
        ("HTTP", &HTTP[..]),
        ("EXECUTION", &EXECUTION[..]),
        ("NETWORK", &NETWORK[..]),
    ] {
        let shown: Vec<Metric> = metrics
            .iter()
            .copied()
            .filter(|m| full || !HIDDEN_IN_COMPACT.contains(m))
            .filter(|m| {
                summary.metrics.metric(*m).is_some_and(Value::has_samples) || always_shown(*m)
            })
            .collect();
        if shown.is_empty() {
            continue;
        }
        writeln!(out, "    {title}")?;
        for metric in shown {
            let Some(value) = summary.metrics.metric(metric) else {
                continue;
            };
            write_line(
                out,
                4,
                metric.name(),
                &render(metric.name(), value, summary, seconds),
            )?;
            for key in sub_metrics_to_show(summary, metric) {
                if let Some(value) = summary.metrics.get(&key) {
                    let label = format!(
                        "{{ {} }}",
                        key.split_once('{')
                            .map_or("", |(_, f)| f)
                            .trim_end_matches('}')
                    );
                    write_line(out, 6, &label, &render(&key, value, summary, seconds))?;
                }
            }
        }
        writeln!(out)?;
    }
    write_steps(summary, seconds, out)?;
    write_verdict(summary, out)
}

fn always_shown(metric: Metric) -> bool {
    matches!(metric, Metric::Iterations | Metric::Vus | Metric::VusMax)
}

/// k6 shows sub-metrics that thresholds reference, and `{expected_response:true}`.
fn sub_metrics_to_show(summary: &Summary, metric: Metric) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    if metric == Metric::HttpReqDuration {
        keys.push(canonical_key(
            metric.name(),
            &[("expected_response".into(), "true".into())],
        ));
    }
    for result in &summary.thresholds {
        // The canonical series key the threshold was evaluated on, recorded with its result.
        if result
            .series
            .split_once('{')
            .is_some_and(|(name, _)| name == metric.name())
            && !keys.contains(&result.series)
        {
            keys.push(result.series.clone());
        }
    }
    keys
}

fn write_line(out: &mut impl Write, indent: usize, label: &str, value: &str) -> io::Result<()> {
    let dots = WIDTH.saturating_sub(indent + label.chars().count()).max(3);
    writeln!(
        out,
        "{}{label}{}: {value}",
        " ".repeat(indent),
        ".".repeat(dots)
    )
}

fn render(key: &str, value: &Value, summary: &Summary, seconds: f64) -> String {
    let per_second = |count: f64| if seconds > 0.0 { count / seconds } else { 0.0 };
    match value {
        Value::Counter(count) if key.starts_with("data_") => {
            format!(
                "{:<8} {}/s",
                format_bytes(*count),
                format_bytes(per_second(*count))
            )
        }
        Value::Counter(count) => {
            format!("{:<8} {:.6}/s", format_number(*count), per_second(*count))
        }
        Value::Gauge { value, min, max } => {
            let (min, max) = if max.is_finite() {
                (*min, *max)
            } else {
                (0.0, 0.0)
            };
            format!(
                "{:<8} min={} max={}",
                format_number(*value),
                format_number(min),
                format_number(max)
            )
        }
        Value::Rate { passes, total } => {
            let rate = value.rate().unwrap_or(0.0);
            format!("{:.2}%  {passes} out of {total}", rate * 100.0)
        }
        Value::Trend(trend) => trend_line(key, trend, &summary.trend_stats),
    }
}

fn trend_line(key: &str, trend: &Trend, columns: &[TrendColumn]) -> String {
    let show = |ms: f64| {
        if is_time_key(key) {
            format_ms(ms)
        } else {
            format_number(ms)
        }
    };
    columns
        .iter()
        .map(|column| {
            let value = match column.stat {
                TrendStat::Avg => show(trend.avg()),
                TrendStat::Min => show(trend.min_or_zero()),
                TrendStat::Med => show(trend.percentile(50.0)),
                TrendStat::Max => show(trend.max_or_zero()),
                TrendStat::Count => trend.count().to_string(),
                TrendStat::Percentile(p) => show(trend.percentile(p)),
            };
            format!("{}={value}", column.label)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn write_checks(summary: &Summary, seconds: f64, out: &mut impl Write) -> io::Result<()> {
    let Some(Value::Rate { passes, total }) = summary.metrics.metric(Metric::Checks) else {
        return Ok(());
    };
    if *total == 0 {
        return Ok(());
    }
    let fails = total - passes;
    let percent = |n: u64| n as f64 * 100.0 / *total as f64;
    write_line(
        out,
        4,
        "checks_total",
        &format!("{total:<8} {:.6}/s", *total as f64 / seconds.max(1e-9)),
    )?;
    write_line(
        out,
        4,
        "checks_succeeded",
        &format!("{:.2}% {passes} out of {total}", percent(*passes)),
    )?;
    write_line(
        out,
        4,
        "checks_failed",
        &format!("{:.2}% {fails} out of {total}", percent(fails)),
    )?;
    writeln!(out)?;
    for name in &summary.checks {
        let key = canonical_key("checks", &[("check".into(), name.clone())]);
        if let Some(Value::Rate { passes, total }) = summary.metrics.get(&key) {
            if *total == 0 {
                continue;
            }
            if passes == total {
                writeln!(out, "    ✓ {name}")?;
            } else {
                writeln!(out, "    ✗ {name}")?;
                writeln!(
                    out,
                    "      ↳  {:.0}% — ✓ {passes} / ✗ {}",
                    *passes as f64 * 100.0 / *total as f64,
                    total - passes
                )?;
            }
        }
    }
    writeln!(out)
}

fn write_steps(summary: &Summary, seconds: f64, out: &mut impl Write) -> io::Result<()> {
    let rows = summary.step_rows();
    if rows.is_empty() {
        return Ok(());
    }
    let width = rows
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, STEP_NAME_WIDTH);
    writeln!(out, "  █ STEPS\n")?;
    writeln!(
        out,
        "    {:<width$}  {:>9}  {:>10}  {:>7}  {:>9}  {:>9}  {:>9}",
        "step", "reqs", "rps", "failed", "p50", "p95", "p99"
    )?;
    for row in rows {
        let (requests, failed) = (row.requests, row.failed_rate);
        let name = fit(row.name, STEP_NAME_WIDTH);
        let p = |q: f64| {
            row.duration
                .map_or("-".to_string(), |t| format_ms(t.percentile(q)))
        };
        writeln!(
            out,
            "    {name:<width$}  {requests:>9}  {:>10.2}  {:>6.2}%  {:>9}  {:>9}  {:>9}",
            requests / seconds.max(1e-9),
            failed * 100.0,
            p(50.0),
            p(95.0),
            p(99.0)
        )?;
    }
    writeln!(out)
}

/// The widest the step column gets: a longer name is cut with an ellipsis (a 65 536-character
/// name once made the table's width overflow `format!`'s limit).
const STEP_NAME_WIDTH: usize = 60;

/// `text`, cut to `width` characters with a trailing `…` when longer.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn write_verdict(summary: &Summary, out: &mut impl Write) -> io::Result<()> {
    if let Some(reason) = &summary.aborted {
        writeln!(out, "  stopped early: {reason}")?;
    }
    let failed: Vec<String> = summary
        .thresholds
        .iter()
        .filter(|t| !t.ok)
        .map(|t| format!("{} {} (want {})", t.metric, t.observed(), t.threshold))
        .collect();
    let total = summary.thresholds.len();
    if failed.is_empty() {
        writeln!(out, "  ✓ PASSED: {total} of {total} thresholds held")
    } else {
        writeln!(
            out,
            "  ✗ FAILED: {} of {total} thresholds failed: {}",
            failed.len(),
            failed.join("; ")
        )
    }
}

/// The k6 type name of a metric, for JSON output.
pub(super) fn type_name(kind: MetricType) -> &'static str {
    kind.name()
}
