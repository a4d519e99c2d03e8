//! The report page: one self-contained HTML file (data, charting library, styles and script
//! inline; a Content-Security-Policy that lets it fetch nothing), readable without script:
//! every chart has its numbers in text beside it. The live dashboard serves the same page
//! (`render_live`) and sends its updates (`live_update`).

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::model::{ReportData, Series};
use crate::summary::format_ms;

/// uPlot, installed from the npm registry by `build.rs` (pinned in `runner/ui`).
const UPLOT_JS: &str = include_str!(concat!(
    env!("STAMPEDE_UI_NODE_MODULES"),
    "/uplot/dist/uPlot.iife.min.js"
));
const UPLOT_CSS: &str = include_str!(concat!(
    env!("STAMPEDE_UI_NODE_MODULES"),
    "/uplot/dist/uPlot.min.css"
));
/// The page's own script and styles.
const REPORT_JS: &str = include_str!("report.js");
const REPORT_CSS: &str = include_str!("report.css");

/// Nothing may be fetched: scripts and styles are inline, images are data URLs.
const CSP: &str =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:";
/// The live dashboard's page may also read its own server's event stream.
const LIVE_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'";

/// The charts: id, title.
const CHARTS: [(&str, &str); 5] = [
    (
        "load",
        "Load: VUs, requests in flight, and requests and iterations per second, with what the executors planned (dashed)",
    ),
    (
        "latency",
        "Request duration per interval: p50, p90, p95, p99",
    ),
    (
        "errors",
        "Errors per second: failed requests, 4xx and 5xx responses, no response, dropped iterations",
    ),
    (
        "saturation",
        "Latency against throughput: p95 for each interval's requests per second",
    ),
    (
        "distribution",
        "Request duration distribution (all requests, to p99.99)",
    ),
];

/// The whole page, as a file.
pub fn render(data: &ReportData) -> String {
    page(data, None)
}

/// The live dashboard's page: the same page, updated from the server-sent events at `events`.
pub fn render_live(data: &ReportData, events: &str) -> String {
    page(data, Some(events))
}

fn page(data: &ReportData, events: Option<&str>) -> String {
    let verdict = verdict_word(data);
    let page = html! {
        (DOCTYPE)
        html lang="en" data-live=[events] {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy" content=(if events.is_some() { LIVE_CSP } else { CSP });
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (data.name) " — " (verdict) " — Stampede" @if events.is_some() { " dashboard" } @else { " report" } }
                style { (PreEscaped(UPLOT_CSS)) (PreEscaped(REPORT_CSS)) }
            }
            body {
                (header(data, events.is_some()))
                (numbers(data))
                (thresholds(data))
                section #charts {
                    h2 { "Over time" }
                    @for (id, title) in CHARTS {
                        (figure(id, title, &caption(id, data)))
                    }
                }
                (steps(data))
                (groups(data))
                (errors(data))
                (checks(data))
                (runners(data))
                footer {
                    @if events.is_some() {
                        "Stampede's live dashboard: updated every few seconds while the run goes; the last update is the final report."
                    } @else {
                        "Made by Stampede. Whole-run percentiles come from the merged histograms of every request; an interval's percentiles are those of its requests on every runner, within 1 %. This file fetches nothing."
                    }
                }
                script #report-data type="application/json" { (PreEscaped(embedded_json(data))) }
                script { (PreEscaped(UPLOT_JS)) }
                script { (PreEscaped(REPORT_JS)) }
            }
        }
    };
    page.into_string()
}

/// One live update of the dashboard (JSON without `<`, `>` or `&`): the data for the charts,
/// and the text parts of the page rendered again (escaped as the page is), by element id;
/// `done` for the final one.
pub fn live_update(data: &ReportData, done: bool) -> String {
    let sections = serde_json::json!({
        "header": header(data, !done).into_string(),
        "numbers": numbers(data).into_string(),
        "thresholds": thresholds(data).into_string(),
        "steps": steps(data).into_string(),
        "groups": groups(data).into_string(),
        "errors": errors(data).into_string(),
        "checks": checks(data).into_string(),
        "runners": runners(data).into_string(),
    });
    let captions: serde_json::Map<String, serde_json::Value> = CHARTS
        .iter()
        .map(|(id, _)| (id.to_string(), caption(id, data).into()))
        .collect();
    escape_json(
        &serde_json::json!({"data": data, "sections": sections, "captions": captions, "done": done})
            .to_string(),
    )
}

fn verdict_word(data: &ReportData) -> &'static str {
    if data.passed { "PASSED" } else { "FAILED" }
}

fn header(data: &ReportData, live: bool) -> Markup {
    let held = data.thresholds.iter().filter(|t| t.ok).count();
    html! {
        header #header {
            h1 { "LoadTest " code { (data.name) } }
            p #verdict class=(if data.passed { "verdict pass" } else { "verdict fail" }) {
                @if live {
                    strong { "RUNNING" } " — " (held) " of " (data.thresholds.len()) " thresholds hold so far"
                } @else {
                    strong { (verdict_word(data)) }
                    " — " (held) " of " (data.thresholds.len()) " thresholds held"
                }
            }
            p.meta {
                @if live { "Running for " } @else { "Ran " }
                (format_seconds(data.duration_seconds))
                @if let Some(fleet) = &data.fleet {
                    " · namespace " code { (fleet.namespace) } " · run " (fleet.run)
                    @if let Some(generation) = fleet.generation { " (spec generation " (generation) ")" }
                    " · " (fleet.runners.len()) " runners"
                    @if let Some(spread) = fleet.start_spread_ms { ", started within " (format_ms(spread)) }
                }
                @if let Some(reason) = &data.aborted { " · stopped early: " (reason) }
            }
        }
    }
}

fn caption(id: &str, data: &ReportData) -> String {
    match id {
        "load" => load_caption(&data.series),
        "latency" => latency_caption(&data.series),
        "errors" => errors_caption(data),
        "saturation" => saturation_caption(&data.series),
        _ => distribution_caption(data),
    }
}

/// The data as JSON that cannot end its `<script>` element.
fn embedded_json(data: &ReportData) -> String {
    // Strings, numbers and vectors always serialize.
    escape_json(&serde_json::to_string(data).unwrap_or_else(|_| "{}".into()))
}

/// `<`, `>` and `&` (only ever inside strings, such as a step's name) written as JSON escapes,
/// so the text can sit in a `<script>` element or an event stream as it is.
fn escape_json(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn format_seconds(seconds: f64) -> String {
    if seconds >= 60.0 {
        format!("{}m{:02.0}s", (seconds / 60.0).floor(), seconds % 60.0)
    } else {
        format!("{seconds:.1}s")
    }
}

/// "up to 40 VUs", or with the allocated ones when more were (the arrival rates keep idle VUs).
fn vus_text(active: f64, allocated: f64) -> String {
    if allocated > active {
        format!(
            "up to {} VUs active of {} allocated",
            readable(active),
            readable(allocated)
        )
    } else {
        format!("up to {} VUs", readable(active))
    }
}

/// A count or rate with the digits a reader needs: 264 req/s, 55.2 req/s, 3.25 req/s.
fn readable(value: f64) -> String {
    let digits = match value.abs() {
        v if v >= 100.0 || v == v.trunc() => 0,
        v if v >= 10.0 => 1,
        _ => 2,
    };
    format!("{value:.digits$}")
}

fn percent(share: f64) -> String {
    format!("{:.2}%", share * 100.0)
}

fn numbers(data: &ReportData) -> Markup {
    let h = &data.headline;
    html! {
        section #numbers {
            h2 { "The three numbers" }
            dl.numbers {
                div {
                    dt { "Throughput" }
                    dd { (readable(h.requests_per_second)) " req/s" }
                    dd.sub {
                        (readable(h.requests)) " requests · "
                        @if h.dropped_iterations > 0.0 {
                            (percent(h.achieved_share)) " of the offered iterations ran ("
                            (readable(h.dropped_iterations)) " dropped)"
                        } @else {
                            "every offered iteration ran"
                        }
                    }
                }
                div {
                    dt { "Latency" }
                    dd { "p95 " (format_ms(h.p95_ms)) }
                    dd.sub { "p99 " (format_ms(h.p99_ms)) " · " (vus_text(h.vus_max, h.vus_allocated)) }
                }
                div {
                    dt { "Errors" }
                    dd { (percent(h.error_rate)) }
                    dd.sub { "of requests failed (http_req_failed)" }
                }
            }
        }
    }
}

fn thresholds(data: &ReportData) -> Markup {
    html! {
        section #thresholds {
            h2 { "Thresholds" }
            @if data.thresholds.is_empty() {
                p { "No thresholds: the run passes whatever it measured." }
            } @else {
                table {
                    thead { tr { th { "" } th { "Metric" } th { "Threshold" } th { "Observed" } th { "Limit" } th { "Margin" } } }
                    tbody {
                        @for row in &data.thresholds {
                            tr class=(if row.ok { "pass" } else { "fail" }) {
                                td { @if row.ok { "✓ held" } @else { "✗ failed" } }
                                td { code { (row.metric) } }
                                td { code { (row.threshold) } }
                                td { (row.observed) }
                                td { (row.limit) }
                                td { (row.margin) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn figure(id: &str, title: &str, caption: &str) -> Markup {
    html! {
        figure.chart #(format!("chart-{id}")) data-chart=(id) {
            figcaption { strong { (title) } br; span.values { (caption) } }
            div.plot role="img" aria-label=(format!("{title}. {caption}")) {}
        }
    }
}

/// Largest and mean of a column, for a caption.
fn extent(column: &[f64]) -> (f64, f64) {
    let largest = column.iter().copied().fold(0.0, f64::max);
    let mean = column.iter().sum::<f64>() / column.len().max(1) as f64;
    (largest, mean)
}

/// Largest value of a column with gaps.
fn largest(column: &[Option<f64>]) -> f64 {
    column.iter().flatten().copied().fold(0.0, f64::max)
}

fn load_caption(series: &Series) -> String {
    if series.t.is_empty() {
        return "No per-second data.".into();
    }
    let (vus, _) = extent(&series.vus);
    let (peak, mean) = extent(&series.rps);
    let (planned_vus, _) = extent(&series.planned_vus);
    let (planned_rate, _) = extent(&series.planned_rate);
    let (iterations, _) = extent(&series.iterations);
    let (in_flight, _) = extent(&series.in_flight);
    let mut caption = format!(
        "{} intervals; VUs up to {} (planned {}); requests in flight up to {}; requests per \
         second up to {}, mean {}",
        series.t.len(),
        readable(vus),
        readable(planned_vus),
        readable(in_flight),
        readable(peak),
        readable(mean)
    );
    if planned_rate > 0.0 {
        caption.push_str(&format!(
            "; the arrival-rate executors planned up to {} iterations per second, and all \
             scenarios together ran up to {}",
            readable(planned_rate),
            readable(iterations)
        ));
    }
    caption.push('.');
    caption
}

fn latency_caption(series: &Series) -> String {
    if series.t.is_empty() {
        return "No per-second data.".into();
    }
    format!(
        "Highest interval p50 {}, p90 {}, p95 {}, p99 {}.",
        format_ms(largest(&series.p50)),
        format_ms(largest(&series.p90)),
        format_ms(largest(&series.p95)),
        format_ms(largest(&series.p99))
    )
}

fn errors_caption(data: &ReportData) -> String {
    let (failed, _) = extent(&data.series.failed);
    let (dropped, _) = extent(&data.series.dropped);
    let h = &data.headline;
    let causes: Vec<String> = data
        .series
        .no_response_by_code
        .iter()
        .map(|column| format!("{}: {}", column.label, column.total))
        .collect();
    let causes = if causes.is_empty() {
        String::new()
    } else {
        format!(" ({})", causes.join(", "))
    };
    format!(
        "Failed requests up to {}/s; in all {} 4xx, {} 5xx and {} with no response{causes}; dropped iterations up to {}/s.",
        readable(failed),
        h.client_errors,
        h.server_errors,
        h.no_response,
        readable(dropped)
    )
}

fn saturation_caption(series: &Series) -> String {
    let busiest = series
        .rps
        .iter()
        .zip(&series.p95)
        .filter_map(|(rps, p95)| Some((rps, (*p95)?)))
        .max_by(|a, b| a.0.total_cmp(b.0));
    match busiest {
        Some((rps, p95)) => format!(
            "At the busiest interval, {} req/s with p95 {}.",
            readable(*rps),
            format_ms(p95)
        ),
        None => "No per-second data.".into(),
    }
}

fn distribution_caption(data: &ReportData) -> String {
    if data.distribution.is_empty() {
        return "No requests.".into();
    }
    data.distribution
        .iter()
        .filter(|q| [50.0, 90.0, 99.0, 99.9, 99.99, 100.0].contains(&q.percentile))
        .map(|q| {
            let name = if q.percentile == 100.0 {
                "max".to_string()
            } else {
                format!("p{}", q.percentile)
            };
            format!("{name} {}", format_ms(q.ms))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn steps(data: &ReportData) -> Markup {
    html! {
        section #steps {
            h2 { "Steps" }
            @if data.steps.is_empty() {
                p { "No step sent requests." }
            } @else {
                table {
                    thead { tr { th { "Step" } th { "Requests" } th { "Failed" } th { "p50" } th { "p95" } th { "p99" } th { "Max" } } }
                    tbody {
                        @for step in &data.steps {
                            tr {
                                td { (step.name) }
                                td.n { (readable(step.requests)) }
                                td.n { (percent(step.failed_rate)) }
                                td.n { (format_ms(step.p50_ms)) }
                                td.n { (format_ms(step.p95_ms)) }
                                td.n { (format_ms(step.p99_ms)) }
                                td.n { (format_ms(step.max_ms)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn groups(data: &ReportData) -> Markup {
    html! {
        section #groups {
            @if !data.groups.is_empty() {
                h2 { "Groups" }
                table {
                    thead { tr { th { "Group" } th { "Passes" } th { "Avg" } th { "p95" } th { "Max" } } }
                    tbody {
                        @for group in &data.groups {
                            tr {
                                td { (group.name) }
                                td.n { (readable(group.passes as f64)) }
                                td.n { (format_ms(group.avg_ms)) }
                                td.n { (format_ms(group.p95_ms)) }
                                td.n { (format_ms(group.max_ms)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn errors(data: &ReportData) -> Markup {
    html! {
        section #errors {
            h2 { "Top errors" }
            @if data.errors.is_empty() {
                p { "No request failed and no iteration errored." }
            } @else {
                table {
                    thead { tr { th { "Count" } th { "Code" } th { "Meaning" } th { "Where" } th { "First message" } } }
                    tbody {
                        @for error in &data.errors {
                            tr {
                                td.n { (readable(error.count as f64)) }
                                td.n { @if let Some(code) = error.code { (code) } @else { "—" } }
                                td { (error.meaning) }
                                td { (error.place) }
                                td.message { (error.message) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn runners(data: &ReportData) -> Markup {
    html! {
        section #runners {
            @if let Some(fleet) = &data.fleet {
                h2 { "Runners" }
                table {
                    thead { tr { th { "Runner" } th { "Requests" } th { "Share" } th { "Dropped iterations" } th { "Started at" } } }
                    tbody {
                        @for runner in &fleet.runners {
                            tr {
                                td { (runner.runner) }
                                td.n { (readable(runner.requests)) }
                                td.n { (percent(runner.share)) }
                                td.n { (readable(runner.dropped)) }
                                td { (runner.started_at.as_deref().unwrap_or("not yet")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn checks(data: &ReportData) -> Markup {
    html! {
        section #checks {
            h2 { "Checks" }
            @if data.checks.is_empty() {
                p { "No checks ran." }
            } @else {
                table {
                    thead { tr { th { "" } th { "Check" } th { "Passed" } th { "Failed" } } }
                    tbody {
                        @for check in &data.checks {
                            tr class=(if check.fails == 0 { "pass" } else { "fail" }) {
                                td { @if check.fails == 0 { "✓" } @else { "✗" } }
                                td { (check.name) }
                                td.n { (check.passes) }
                                td.n { (check.fails) }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_the_digits_a_reader_needs() {
        assert_eq!(readable(263.818254), "264");
        assert_eq!(readable(55.2166), "55.2");
        assert_eq!(readable(3.256), "3.26");
        assert_eq!(readable(1844.0), "1844");
        assert_eq!(readable(0.0), "0");
    }

    fn report_named(name: &str) -> ReportData {
        ReportData {
            name: name.into(),
            passed: true,
            aborted: None,
            duration_seconds: 1.0,
            headline: super::super::Headline {
                requests: 0.0,
                requests_per_second: 0.0,
                iterations: 0.0,
                dropped_iterations: 0.0,
                achieved_share: 1.0,
                p95_ms: 0.0,
                p99_ms: 0.0,
                error_rate: 0.0,
                vus_max: 0.0,
                vus_allocated: 0.0,
                client_errors: 0,
                server_errors: 0,
                no_response: 0,
            },
            thresholds: Vec::new(),
            series: Series::default(),
            distribution: Vec::new(),
            steps: Vec::new(),
            groups: Vec::new(),
            checks: Vec::new(),
            errors: vec![super::super::model::ErrorLine {
                code: Some(1212),
                meaning: "connection refused".into(),
                place: name.into(),
                count: 3,
                message: format!("GET {name}: refused"),
            }],
            fleet: None,
        }
    }

    #[test]
    fn a_hostile_name_stays_text_in_the_markup_and_the_embedded_data() {
        let name = "</script><script>alert(1)</script>&";
        let json = embedded_json(&report_named(name));
        assert!(!json.contains('<') && !json.contains('&'), "{json}");
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["name"], name);
        let page = render(&report_named(name));
        assert!(!page.contains("<script>alert(1)"));
        assert!(page.contains("&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;"));
        // An error's message (its URL template is the author's text) is text too.
        assert!(
            page.contains("GET &lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;: refused")
        );
        let update = live_update(&report_named(name), false);
        assert!(!update.contains('<'), "{update}");
    }

    #[test]
    fn durations_read_in_minutes_past_a_minute() {
        assert_eq!(format_seconds(31.06), "31.1s");
        assert_eq!(format_seconds(3630.0), "60m30s");
    }
}
