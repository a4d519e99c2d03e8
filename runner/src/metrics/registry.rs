//! The series of a test: every built-in metric (root series) and every sub-metric some part of
//! Stampede needs — thresholds' filters, the per-step table, per-check and per-group lines —
//! registered before the test starts so recording is a table lookup.

use std::collections::BTreeMap;

use stampede_crds::metrics::{BUILTIN, MetricType};
use stampede_crds::model::Test;
use stampede_crds::threshold::MetricKey;

use super::tags::SampleTags;

/// Index of a series in a [`Registry`].
pub type SeriesId = usize;

/// k6's built-in metrics, in `stampede_crds::metrics::BUILTIN` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum Metric {
    Vus,
    VusMax,
    Iterations,
    IterationDuration,
    DroppedIterations,
    Checks,
    GroupDuration,
    DataSent,
    DataReceived,
    HttpReqs,
    HttpReqFailed,
    HttpReqDuration,
    HttpReqBlocked,
    HttpReqConnecting,
    HttpReqTlsHandshaking,
    HttpReqSending,
    HttpReqWaiting,
    HttpReqReceiving,
}

impl Metric {
    /// Every metric, in k6 order.
    pub const ALL: [Metric; 18] = [
        Metric::Vus,
        Metric::VusMax,
        Metric::Iterations,
        Metric::IterationDuration,
        Metric::DroppedIterations,
        Metric::Checks,
        Metric::GroupDuration,
        Metric::DataSent,
        Metric::DataReceived,
        Metric::HttpReqs,
        Metric::HttpReqFailed,
        Metric::HttpReqDuration,
        Metric::HttpReqBlocked,
        Metric::HttpReqConnecting,
        Metric::HttpReqTlsHandshaking,
        Metric::HttpReqSending,
        Metric::HttpReqWaiting,
        Metric::HttpReqReceiving,
    ];

    /// The k6 name.
    pub fn name(self) -> &'static str {
        BUILTIN[self as usize].0
    }

    /// The k6 type.
    pub fn kind(self) -> MetricType {
        BUILTIN[self as usize].1
    }

    /// Looks a metric up by its k6 name.
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|metric| metric.name() == name)
    }
}

/// One series: a metric, optionally narrowed by tag filters (a k6 sub-metric).
#[derive(Debug, Clone)]
pub struct Series {
    /// The metric.
    pub metric: Metric,
    /// Tag filters; empty for the root series.
    pub filter: Vec<(String, String)>,
    /// The canonical key, e.g. `http_req_duration{name:login}`.
    pub key: String,
}

/// Every series of a test, with lookups from a metric to its series.
#[derive(Debug, Clone)]
pub struct Registry {
    series: Vec<Series>,
    by_key: BTreeMap<String, SeriesId>,
    /// For each metric, its root series and then its sub-series.
    by_metric: Vec<Vec<SeriesId>>,
}

/// The canonical key of a metric with filters (sorted by tag, as k6 prints them).
pub fn canonical_key(metric: &str, filter: &[(String, String)]) -> String {
    if filter.is_empty() {
        return metric.to_string();
    }
    let mut sorted = filter.to_vec();
    sorted.sort();
    let inner: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    format!("{metric}{{{}}}", inner.join(","))
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl Registry {
    /// A registry with the root series of every built-in metric.
    pub fn new() -> Self {
        let mut registry = Registry {
            series: Vec::new(),
            by_key: BTreeMap::new(),
            by_metric: vec![Vec::new(); Metric::ALL.len()],
        };
        for metric in Metric::ALL {
            registry.add(metric, Vec::new());
        }
        // k6 always shows http_req_duration{expected_response:true}.
        registry.add(
            Metric::HttpReqDuration,
            vec![("expected_response".into(), "true".into())],
        );
        registry
    }

    /// Registers (or finds) the series for `metric` with `filter`.
    pub fn add(&mut self, metric: Metric, filter: Vec<(String, String)>) -> SeriesId {
        let key = canonical_key(metric.name(), &filter);
        if let Some(id) = self.by_key.get(&key) {
            return *id;
        }
        let id = self.series.len();
        self.series.push(Series {
            metric,
            filter,
            key: key.clone(),
        });
        self.by_key.insert(key, id);
        self.by_metric[metric as usize].push(id);
        id
    }

    /// The series of a test, as every runner registers them (and the operator, to read their
    /// reports): the built-ins, per step `http_reqs`, `http_req_failed` and
    /// `http_req_duration{name:STEP}`, per check `checks{check:NAME}`, per group
    /// `group_duration{group:TAG}`, and each threshold's series.
    pub fn for_test(test: &Test) -> Registry {
        let mut registry = Registry::new();
        let names = test.flows.names();
        for step in &names.steps {
            let filter = vec![("name".to_string(), step.clone())];
            for metric in [
                Metric::HttpReqs,
                Metric::HttpReqFailed,
                Metric::HttpReqDuration,
            ] {
                registry.add(metric, filter.clone());
            }
        }
        for check in &names.checks {
            registry.add(Metric::Checks, vec![("check".to_string(), check.clone())]);
        }
        for group in &names.groups {
            registry.add(
                Metric::GroupDuration,
                vec![("group".to_string(), group.clone())],
            );
        }
        for thresholds in &test.thresholds {
            registry.add_key(&thresholds.key);
        }
        registry
    }

    /// Registers the series of a threshold key such as `http_req_duration{name:login}`;
    /// `None` when it names no metric the engine records.
    pub fn add_key(&mut self, key: &MetricKey) -> Option<SeriesId> {
        let metric = Metric::from_name(&key.metric)?;
        Some(self.add(metric, key.tags.clone()))
    }

    /// The series of a key (filters in any order).
    pub fn find(&self, key: &MetricKey) -> Option<SeriesId> {
        self.by_key
            .get(&canonical_key(&key.metric, &key.tags))
            .copied()
    }

    /// The root series of a metric.
    pub fn root(&self, metric: Metric) -> SeriesId {
        self.by_metric[metric as usize][0]
    }

    /// All series.
    pub fn series(&self) -> &[Series] {
        &self.series
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// True when there is no series (never: the built-ins are always there).
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Calls `f` with every series of `metric` that a sample with `tags` belongs to (the root
    /// series always).
    pub fn matching(&self, metric: Metric, tags: &SampleTags<'_>, mut f: impl FnMut(SeriesId)) {
        for &id in &self.by_metric[metric as usize] {
            let series = &self.series[id];
            if series
                .filter
                .iter()
                .all(|(key, value)| tags.has(key, value))
            {
                f(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `http_req_duration` filtered by `tags`.
    fn duration_key(tags: &[(&str, &str)]) -> MetricKey {
        MetricKey {
            metric: "http_req_duration".to_string(),
            tags: tags
                .iter()
                .map(|(tag, value)| ((*tag).to_string(), (*value).to_string()))
                .collect(),
        }
    }

    #[test]
    fn sub_metrics_match_samples_with_all_their_tags() {
        let mut registry = Registry::new();
        let login = registry
            .add_key(&duration_key(&[("name", "login")]))
            .unwrap();
        let login_200 = registry
            .add_key(&duration_key(&[("status", "200"), ("name", "login")]))
            .unwrap();
        assert_eq!(
            registry.find(&duration_key(&[("name", "login"), ("status", "200")])),
            Some(login_200)
        );
        let tags = SampleTags {
            name: Some("login"),
            status: Some(500),
            expected_response: Some(false),
            ..SampleTags::default()
        };
        let mut hit = Vec::new();
        registry.matching(Metric::HttpReqDuration, &tags, |id| hit.push(id));
        assert_eq!(hit, vec![registry.root(Metric::HttpReqDuration), login]);
        assert_eq!(Metric::HttpReqDuration.name(), "http_req_duration");
        assert_eq!(Metric::from_name("checks"), Some(Metric::Checks));
    }

    #[test]
    fn a_tests_series_are_registered_up_front() {
        let test: stampede_crds::LoadTest = serde_yaml_ng::from_str(
            r#"
apiVersion: stampede.dev/v1alpha1
kind: LoadTest
metadata: {name: series}
spec:
  defaults: {baseUrl: "http://127.0.0.1:1"}
  flows:
    default:
      - name: login
        request: {url: /login}
        checks: {"login ok": "status == 200"}
      - group: browse
        steps: [{name: home, request: {url: /}}]
  thresholds:
    "http_reqs{status:500}": ["count<1"]
"#,
        )
        .unwrap();
        let compiled = stampede_crds::model::compile(&test, &Default::default()).unwrap();
        let registry = Registry::for_test(&compiled);
        for key in [
            "http_reqs{name:login}",
            "http_req_failed{name:home}",
            "http_req_duration{name:login}",
            "checks{check:login ok}",
            "group_duration{group:::browse}",
            "http_reqs{status:500}",
        ] {
            assert!(
                registry.series().iter().any(|series| series.key == key),
                "{key} is not registered"
            );
        }
    }
}
