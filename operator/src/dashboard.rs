//! The fleet dashboard: the operator keeps the latest merged summary of each LoadTest it
//! drives, and serves — on a loopback address inside its pod, reached with `kubectl
//! port-forward`, so only who may port-forward to the operator sees it — the list of LoadTests
//! at `/` and each one's live report page at `/loadtests/NAMESPACE/NAME`, updated from
//! server-sent events as `stampede run --dashboard` is.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use maud::{DOCTYPE, html};
use stampede_runner::dashboard::http::{
    Body, Update, UpdateSource, event_stream, html as html_response, plain,
};
use stampede_runner::html_report::{ReportData, live_update, render_live_html};
use stampede_runner::summary::format_ms;

use crate::decide::View;

/// How often an open page is updated: as often as the operator merges the reports.
const PERIOD: Duration = Duration::from_secs(stampede_runner::cluster::REPORT_EVERY_SECONDS);

/// The most LoadTests kept; past it the longest-finished one goes first.
const MAX_ENTRIES: usize = 500;

/// A LoadTest: namespace, name.
type Key = (String, String);

/// One LoadTest's latest view: what its page shows, not the summary's histograms (a merged
/// summary holds megabytes of them; this is a few kilobytes).
#[derive(Debug)]
struct Entry {
    data: Arc<ReportData>,
    /// Its live update, made once for every open page.
    update: Update,
    recorded: Instant,
}

/// The latest view of every LoadTest the operator drives (cheap to clone; shared with the
/// server).
#[derive(Debug, Clone, Default)]
pub struct Dashboards {
    entries: Arc<RwLock<BTreeMap<Key, Entry>>>,
}

impl Dashboards {
    /// Keeps `view` as LoadTest `namespace/name`'s latest.
    pub fn record(&self, namespace: &str, name: &str, view: &View) {
        let data = ReportData::of(&view.summary);
        let entry = Entry {
            update: Update {
                json: Arc::new(live_update(&data, view.done)),
                done: view.done,
            },
            data: Arc::new(data),
            recorded: Instant::now(),
        };
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        entries.insert((namespace.to_string(), name.to_string()), entry);
        while entries.len() > MAX_ENTRIES {
            // The longest-finished run goes first, then the longest-quiet one.
            let oldest = entries
                .iter()
                .min_by_key(|(_, e)| (!e.update.done, e.recorded))
                .map(|(key, _)| key.clone());
            match oldest {
                Some(key) => entries.remove(&key),
                None => break,
            };
        }
    }

    /// Drops LoadTest `namespace/name` (it was deleted).
    pub fn forget(&self, namespace: &str, name: &str) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(&(namespace.to_string(), name.to_string()));
        }
    }

    fn get(&self, key: &Key) -> Option<(Arc<ReportData>, Update)> {
        let entries = self.entries.read().ok()?;
        let entry = entries.get(key)?;
        Some((Arc::clone(&entry.data), entry.update.clone()))
    }

    /// Serves the dashboard on `listener` until the task is dropped.
    pub async fn serve(self, listener: tokio::net::TcpListener) {
        let respond = Arc::new(move |request: &Request<Incoming>| self.respond(request));
        stampede_runner::dashboard::http::serve(listener, respond).await;
    }

    /// The answer to one request.
    pub fn respond<B>(&self, request: &Request<B>) -> Response<Body> {
        if request.method() != Method::GET {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
        }
        let path = request.uri().path();
        if path == "/" {
            return html_response(self.list_page());
        }
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            ["loadtests", namespace, name] => {
                let key = (namespace.to_string(), name.to_string());
                match self.get(&key) {
                    Some((data, _)) => html_response(render_live_html(
                        &data,
                        &format!("/loadtests/{namespace}/{name}/events"),
                    )),
                    None => not_driven(),
                }
            }
            ["loadtests", namespace, name, "events"] => {
                let key = (namespace.to_string(), name.to_string());
                if self.get(&key).is_none() {
                    return not_driven();
                }
                let source: Arc<dyn UpdateSource> = Arc::new(LoadTestSource {
                    dashboards: self.clone(),
                    key,
                });
                event_stream(source, PERIOD)
            }
            _ => plain(StatusCode::NOT_FOUND, "not found: the dashboard is at /\n"),
        }
    }

    /// The list of LoadTests with their state and a link to each page.
    fn list_page(&self) -> String {
        let rows: Vec<(Key, Arc<ReportData>, bool)> = self
            .entries
            .read()
            .map(|entries| {
                entries
                    .iter()
                    .map(|(key, e)| (key.clone(), Arc::clone(&e.data), e.update.done))
                    .collect()
            })
            .unwrap_or_default();
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'";
                    title { "Stampede — LoadTests" }
                    style { "body{font:15px/1.45 system-ui,sans-serif;max-width:1040px;margin:0 auto;padding:24px}table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e5e7eb}.fail{color:#b91c1c}.pass{color:#15803d}" }
                }
                body {
                    h1 { "LoadTests" }
                    @if rows.is_empty() {
                        p { "No LoadTest has run since this operator started. A finished run's report stays in its result ConfigMap: stampede report NAME --html FILE." }
                    } @else {
                        table #loadtests {
                            thead { tr { th { "Namespace" } th { "LoadTest" } th { "State" } th { "Requests" } th { "p95" } th { "Ran" } } }
                            tbody {
                                @for ((namespace, name), data, done) in &rows {
                                    @let state = if !done { "running" } else if data.passed { "passed" } else { "failed" };
                                    tr {
                                        td { (namespace) }
                                        td { a href=(format!("/loadtests/{namespace}/{name}")) { (name) } }
                                        td class=(if state == "failed" { "fail" } else { "pass" }) { (state) }
                                        td { (data.headline.requests) }
                                        td { (format_ms(data.headline.p95_ms)) }
                                        td { (format!("{:.0}s", data.duration_seconds)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        .into_string()
    }
}

fn not_driven() -> Response<Body> {
    plain(
        StatusCode::NOT_FOUND,
        "no such LoadTest has run since this operator started (the list is at /)\n",
    )
}

/// One LoadTest's updates for an event stream; the stream ends when the LoadTest goes.
struct LoadTestSource {
    dashboards: Dashboards,
    key: Key,
}

impl UpdateSource for LoadTestSource {
    fn latest(&self) -> Option<Update> {
        self.dashboards.get(&self.key).map(|(_, update)| update)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stampede_runner::metrics::Snapshot;
    use stampede_runner::summary::Summary;

    fn view(requests: u64, done: bool) -> View {
        let mut metrics = Snapshot {
            values: Default::default(),
        };
        metrics.values.insert(
            "http_reqs".into(),
            stampede_runner::metrics::Value::Counter(requests as f64),
        );
        View {
            summary: Arc::new(Summary {
                name: "spike".into(),
                test_run_duration_ms: 4000.0,
                metrics,
                thresholds: Vec::new(),
                groups: Vec::new(),
                errors: Vec::new(),
                series: Vec::new(),
                trend_stats: Vec::new(),
                steps: Vec::new(),
                checks: Vec::new(),
                aborted: None,
                fleet: None,
            }),
            done,
        }
    }

    fn get(dashboards: &Dashboards, path: &str) -> (StatusCode, String) {
        let request = Request::get(path).body(()).unwrap();
        let response = dashboards.respond(&request);
        let status = response.status();
        let body =
            futures::executor::block_on(http_body_util::BodyExt::collect(response.into_body()))
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                .unwrap_or_default();
        (status, body)
    }

    #[test]
    fn the_list_links_each_loadtest_and_a_page_serves_its_latest_view() {
        let dashboards = Dashboards::default();
        dashboards.record("shop", "spike", &view(120, false));
        dashboards.record("shop", "<b>soak</b>", &view(9, true));
        let (status, list) = get(&dashboards, "/");
        assert_eq!(status, StatusCode::OK);
        assert!(list.contains("href=\"/loadtests/shop/spike\""), "{list}");
        assert!(list.contains("&lt;b&gt;soak&lt;/b&gt;"), "{list}");
        let (status, page) = get(&dashboards, "/loadtests/shop/spike");
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("data-live=\"/loadtests/shop/spike/events\""));
        assert!(page.contains("RUNNING"));
        assert_eq!(
            get(&dashboards, "/loadtests/shop/gone").0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get(&dashboards, "/loadtests/shop/gone/events").0,
            StatusCode::NOT_FOUND
        );
        dashboards.forget("shop", "spike");
        assert_eq!(
            get(&dashboards, "/loadtests/shop/spike").0,
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn an_event_stream_ends_after_the_final_view() {
        let dashboards = Dashboards::default();
        dashboards.record("shop", "spike", &view(120, true));
        let (status, events) = get(&dashboards, "/loadtests/shop/spike/events");
        assert_eq!(status, StatusCode::OK);
        assert!(events.starts_with("event: final\ndata: {"), "{events}");
        assert_eq!(events.matches("event:").count(), 1);
        assert!(events.contains("\"requests\":120.0"), "{events}");
    }

    #[test]
    fn past_the_limit_the_longest_finished_run_goes_first() {
        let dashboards = Dashboards::default();
        dashboards.record("a", "finished-first", &view(1, true));
        for i in 0..MAX_ENTRIES {
            dashboards.record("b", &format!("running-{i}"), &view(1, false));
        }
        assert_eq!(
            get(&dashboards, "/loadtests/a/finished-first").0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(get(&dashboards, "/loadtests/b/running-0").0, StatusCode::OK);
        assert_eq!(dashboards.entries.read().unwrap().len(), MAX_ENTRIES);
    }
}
