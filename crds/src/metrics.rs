//! k6's built-in metrics and their types, which decide the threshold aggregations they accept.

/// A k6 metric type (`metrics/metric_type.go`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// A running sum (`count`, `rate` per second).
    Counter,
    /// The last value (`value`).
    Gauge,
    /// A fraction of non-zero samples (`rate`).
    Rate,
    /// A distribution (`avg`, `min`, `max`, `med`, `p(N)`).
    Trend,
}

impl MetricType {
    /// The threshold aggregations k6 accepts for this type (`metrics/thresholds.go`).
    pub fn aggregations(self) -> &'static [&'static str] {
        match self {
            MetricType::Counter => &["count", "rate"],
            MetricType::Gauge => &["value"],
            MetricType::Rate => &["rate"],
            MetricType::Trend => &["avg", "min", "max", "med", "p(N)"],
        }
    }

    /// Lower-case name as k6 prints it.
    pub fn name(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Rate => "rate",
            MetricType::Trend => "trend",
        }
    }
}

/// Built-in metric names with their types (k6 `metrics/builtin.go`, HTTP and execution).
pub const BUILTIN: &[(&str, MetricType)] = &[
    ("vus", MetricType::Gauge),
    ("vus_max", MetricType::Gauge),
    ("iterations", MetricType::Counter),
    ("iteration_duration", MetricType::Trend),
    ("dropped_iterations", MetricType::Counter),
    ("checks", MetricType::Rate),
    ("group_duration", MetricType::Trend),
    ("data_sent", MetricType::Counter),
    ("data_received", MetricType::Counter),
    ("http_reqs", MetricType::Counter),
    ("http_req_failed", MetricType::Rate),
    ("http_req_duration", MetricType::Trend),
    ("http_req_blocked", MetricType::Trend),
    ("http_req_connecting", MetricType::Trend),
    ("http_req_tls_handshaking", MetricType::Trend),
    ("http_req_sending", MetricType::Trend),
    ("http_req_waiting", MetricType::Trend),
    ("http_req_receiving", MetricType::Trend),
];

/// The type of a built-in metric, or `None` for a name k6 does not define.
pub fn metric_type(name: &str) -> Option<MetricType> {
    BUILTIN
        .iter()
        .find(|(metric, _)| *metric == name)
        .map(|(_, kind)| *kind)
}

/// True for Trend metrics that hold times (printed and compared in milliseconds).
pub fn is_time_metric(name: &str) -> bool {
    metric_type(name) == Some(MetricType::Trend)
}

/// System tags k6 sets on samples (those a sub-metric filter may name besides custom tags).
pub const SYSTEM_TAGS: &[&str] = &[
    "proto",
    "subproto",
    "status",
    "method",
    "url",
    "name",
    "group",
    "check",
    "error",
    "error_code",
    "tls_version",
    "scenario",
    "service",
    "expected_response",
];
