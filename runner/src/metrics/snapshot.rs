//! Mergeable metric values. A snapshot of one runner (or one thread) merges with another's into
//! exactly what one recorder of all samples would hold: counters add, rates add their counts,
//! trends merge their HdrHistograms — so percentiles merge across runners, which k6 cannot do.

use std::collections::BTreeMap;

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use super::hdr_wire::{self, CountsBudget};
use super::registry::{Metric, Registry, SeriesId};
use stampede_crds::metrics::MetricType;

/// Significant figures of trend histograms: values are kept within 0.1 %.
pub const TREND_SIGFIGS: u8 = 3;

/// A distribution of times, kept as microseconds in an HdrHistogram plus the exact sum, min
/// and max in milliseconds.
#[derive(Debug, Clone)]
pub struct Trend {
    histogram: Histogram<u64>,
    /// Sum of all values, ms.
    pub sum: f64,
    /// Smallest value, ms.
    pub min: f64,
    /// Largest value, ms.
    pub max: f64,
}

impl Default for Trend {
    fn default() -> Self {
        Trend {
            histogram: Histogram::new(TREND_SIGFIGS).unwrap_or_else(|_| unreachable_histogram()),
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

fn unreachable_histogram() -> Histogram<u64> {
    // 3 significant figures is within HdrHistogram's 0..=5 range, so `new` cannot fail.
    Histogram::new(2).expect("a 2-significant-figure histogram is always valid")
}

impl Trend {
    /// Records a value in milliseconds.
    pub fn record(&mut self, millis: f64) {
        let micros = (millis * 1000.0).round().max(0.0) as u64;
        // Auto-resizing histograms only fail on values beyond u64 range; clamp for safety.
        let _ = self.histogram.record(micros.min(u64::MAX / 2));
        self.sum += millis;
        self.min = self.min.min(millis);
        self.max = self.max.max(millis);
    }

    /// Number of values.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// Mean, ms (0 when empty, as k6 reports).
    pub fn avg(&self) -> f64 {
        if self.count() == 0 {
            0.0
        } else {
            self.sum / self.count() as f64
        }
    }

    /// Percentile `p` (0..=100), ms, within the histogram's precision (0 when empty).
    pub fn percentile(&self, p: f64) -> f64 {
        if self.count() == 0 {
            return 0.0;
        }
        if p >= 100.0 {
            return self.max;
        }
        if p <= 0.0 {
            return self.min;
        }
        let micros = self.histogram.value_at_quantile(p / 100.0);
        (micros as f64 / 1000.0).clamp(self.min, self.max)
    }

    /// Smallest value, ms (0 when empty).
    pub fn min_or_zero(&self) -> f64 {
        if self.count() == 0 { 0.0 } else { self.min }
    }

    /// Largest value, ms (0 when empty).
    pub fn max_or_zero(&self) -> f64 {
        if self.count() == 0 { 0.0 } else { self.max }
    }

    /// Every recorded value (ms, at the histogram's precision) with how often it was seen, in
    /// ascending order: the samples as the histogram keeps them.
    pub fn recorded(&self) -> Vec<(f64, u64)> {
        self.histogram
            .iter_recorded()
            .map(|v| (v.value_iterated_to() as f64 / 1000.0, v.count_at_value()))
            .collect()
    }

    /// Empties the trend, keeping its histogram's allocation.
    pub fn reset(&mut self) {
        self.histogram.reset();
        self.sum = 0.0;
        self.min = f64::INFINITY;
        self.max = f64::NEG_INFINITY;
    }

    /// Adds another trend's values.
    pub fn merge(&mut self, other: &Trend) {
        let _ = self.histogram.add(&other.histogram);
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }
}

/// The value of one series.
#[derive(Debug, Clone)]
pub enum Value {
    /// A running sum.
    Counter(f64),
    /// A gauge: last value and the range seen.
    Gauge {
        /// Last value.
        value: f64,
        /// Smallest value.
        min: f64,
        /// Largest value.
        max: f64,
    },
    /// Non-zero samples out of all.
    Rate {
        /// Samples that were true / non-zero.
        passes: u64,
        /// All samples.
        total: u64,
    },
    /// A distribution.
    Trend(Box<Trend>),
}

impl Value {
    /// The empty value of a metric type.
    pub fn empty(kind: MetricType) -> Value {
        match kind {
            MetricType::Counter => Value::Counter(0.0),
            MetricType::Gauge => Value::Gauge {
                value: 0.0,
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
            },
            MetricType::Rate => Value::Rate {
                passes: 0,
                total: 0,
            },
            MetricType::Trend => Value::Trend(Box::default()),
        }
    }

    /// A rate's fraction of non-zero samples (`passes / total`); None for other kinds and for a
    /// rate without samples (k6 shows no value for it).
    pub fn rate(&self) -> Option<f64> {
        match self {
            Value::Rate { passes, total } if *total > 0 => Some(*passes as f64 / *total as f64),
            _ => None,
        }
    }

    /// Whether any sample was recorded.
    pub fn has_samples(&self) -> bool {
        match self {
            Value::Counter(sum) => *sum != 0.0,
            Value::Gauge { max, .. } => max.is_finite(),
            Value::Rate { total, .. } => *total > 0,
            Value::Trend(trend) => trend.count() > 0,
        }
    }

    /// Empties the value in place, keeping its allocation (a trend keeps its histogram).
    pub fn reset(&mut self) {
        match self {
            Value::Counter(sum) => *sum = 0.0,
            Value::Gauge { value, min, max } => {
                *value = 0.0;
                *min = f64::INFINITY;
                *max = f64::NEG_INFINITY;
            }
            Value::Rate { passes, total } => {
                *passes = 0;
                *total = 0;
            }
            Value::Trend(trend) => trend.reset(),
        }
    }

    /// Adds a sample.
    pub fn add(&mut self, sample: f64) {
        match self {
            Value::Counter(sum) => *sum += sample,
            Value::Gauge { value, min, max } => {
                *value = sample;
                *min = min.min(sample);
                *max = max.max(sample);
            }
            Value::Rate { passes, total } => {
                *total += 1;
                if sample != 0.0 {
                    *passes += 1;
                }
            }
            Value::Trend(trend) => trend.record(sample),
        }
    }

    /// Merges another value of the same type (values of different types are ignored). Gauges
    /// from different runners add up (VUs of the whole fleet).
    pub fn merge(&mut self, other: &Value) {
        match (self, other) {
            (Value::Counter(a), Value::Counter(b)) => *a += b,
            (
                Value::Gauge { value, min, max },
                Value::Gauge {
                    value: v2,
                    min: min2,
                    max: max2,
                },
            ) => {
                let had = max.is_finite();
                *value += v2;
                if had && max2.is_finite() {
                    *min += min2;
                    *max += max2;
                } else if max2.is_finite() {
                    *min = *min2;
                    *max = *max2;
                }
            }
            (
                Value::Rate { passes, total },
                Value::Rate {
                    passes: p2,
                    total: t2,
                },
            ) => {
                *passes += p2;
                *total += t2;
            }
            (Value::Trend(a), Value::Trend(b)) => a.merge(b),
            _ => {}
        }
    }
}

/// The values of every series of a registry.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Series key → value.
    pub values: BTreeMap<String, Value>,
}

impl Snapshot {
    /// An empty snapshot holding every series of `registry`.
    pub fn empty(registry: &Registry) -> Snapshot {
        Snapshot {
            values: registry
                .series()
                .iter()
                .map(|series| (series.key.clone(), Value::empty(series.metric.kind())))
                .collect(),
        }
    }

    /// The value of a series key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// The fraction of a rate series (see [`Value::rate`]).
    pub fn rate(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::rate)
    }

    /// The root value of a metric.
    pub fn metric(&self, metric: Metric) -> Option<&Value> {
        self.values.get(metric.name())
    }

    /// A counter's total (0 when absent).
    pub fn count(&self, key: &str) -> f64 {
        match self.values.get(key) {
            Some(Value::Counter(sum)) => *sum,
            Some(Value::Trend(trend)) => trend.count() as f64,
            Some(Value::Rate { total, .. }) => *total as f64,
            _ => 0.0,
        }
    }

    /// A trend (None when absent or not a trend).
    pub fn trend(&self, key: &str) -> Option<&Trend> {
        match self.values.get(key) {
            Some(Value::Trend(trend)) => Some(trend),
            _ => None,
        }
    }

    /// Merges another snapshot key by key.
    pub fn merge(&mut self, other: &Snapshot) {
        for (key, value) in &other.values {
            match self.values.get_mut(key) {
                Some(mine) => mine.merge(value),
                None => {
                    self.values.insert(key.clone(), value.clone());
                }
            }
        }
    }

    /// Builds a snapshot from per-series values in registry order.
    pub fn from_values(registry: &Registry, values: &[Value]) -> Snapshot {
        Snapshot {
            values: registry
                .series()
                .iter()
                .zip(values)
                .map(|(series, value)| (series.key.clone(), value.clone()))
                .collect(),
        }
    }

    /// The id-indexed values of `registry`'s series found in this snapshot.
    pub fn value_of(&self, registry: &Registry, id: SeriesId) -> Option<&Value> {
        self.values.get(&registry.series()[id].key)
    }
}

/// The wire form of a value, used in reports and the result ConfigMap.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum WireValue {
    /// A counter.
    Counter {
        /// Total.
        count: f64,
    },
    /// A gauge.
    Gauge {
        /// Last value.
        value: f64,
        /// Smallest value (absent when no sample).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        /// Largest value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
    /// A rate.
    Rate {
        /// True samples.
        passes: u64,
        /// All samples.
        total: u64,
    },
    /// A trend: exact sum/min/max and the HdrHistogram of microseconds (V2, deflated, base64).
    Trend {
        /// Number of values.
        count: u64,
        /// Sum, ms.
        sum: f64,
        /// Min, ms (absent when empty).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        /// Max, ms.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
        /// Base64 of the V2-serialized (deflated) histogram.
        hdr: String,
    },
}

/// Why a wire value could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("invalid histogram in report: {0}")]
pub struct WireError(pub(crate) String);

impl From<&Value> for WireValue {
    fn from(value: &Value) -> Self {
        let finite = |x: f64| x.is_finite().then_some(x);
        match value {
            Value::Counter(count) => WireValue::Counter { count: *count },
            Value::Gauge { value, min, max } => WireValue::Gauge {
                value: *value,
                min: finite(*min),
                max: finite(*max),
            },
            Value::Rate { passes, total } => WireValue::Rate {
                passes: *passes,
                total: *total,
            },
            Value::Trend(trend) => {
                // Deflated: a wide latency histogram shrinks several-fold, which keeps a busy
                // runner's report far below a ConfigMap's limit (the reader takes both forms).
                let mut bytes = Vec::new();
                let _ = V2DeflateSerializer::new().serialize(&trend.histogram, &mut bytes);
                WireValue::Trend {
                    count: trend.count(),
                    sum: trend.sum,
                    min: finite(trend.min),
                    max: finite(trend.max),
                    hdr: base64::engine::general_purpose::STANDARD.encode(bytes),
                }
            }
        }
    }
}

impl Value {
    /// Reads a wire value back; a trend's histogram is untrusted input, checked against the
    /// limits of [`hdr_wire`] and charged to `budget` (one per snapshot).
    fn from_wire(wire: &WireValue, budget: &mut CountsBudget) -> Result<Value, WireError> {
        Ok(match wire {
            WireValue::Counter { count } => Value::Counter(*count),
            WireValue::Gauge { value, min, max } => Value::Gauge {
                value: *value,
                min: min.unwrap_or(f64::INFINITY),
                max: max.unwrap_or(f64::NEG_INFINITY),
            },
            WireValue::Rate { passes, total } => Value::Rate {
                passes: *passes,
                total: *total,
            },
            WireValue::Trend {
                sum, min, max, hdr, ..
            } => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(hdr)
                    .map_err(|e| WireError(e.to_string()))?;
                let mut histogram = hdr_wire::decode(&bytes, budget)?;
                histogram.auto(true);
                Value::Trend(Box::new(Trend {
                    histogram,
                    sum: *sum,
                    min: min.unwrap_or(f64::INFINITY),
                    max: max.unwrap_or(f64::NEG_INFINITY),
                }))
            }
        })
    }
}

impl Serialize for Snapshot {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let wire: BTreeMap<&String, WireValue> = self
            .values
            .iter()
            .map(|(k, v)| (k, WireValue::from(v)))
            .collect();
        wire.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Snapshot {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = BTreeMap::<String, WireValue>::deserialize(deserializer)?;
        let mut values = BTreeMap::new();
        let mut budget = CountsBudget::default();
        for (key, value) in wire {
            let value = Value::from_wire(&value, &mut budget).map_err(serde::de::Error::custom)?;
            values.insert(key, value);
        }
        Ok(Snapshot { values })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_trends_give_the_percentiles_of_all_samples() {
        let mut whole = Trend::default();
        let mut parts = vec![Trend::default(), Trend::default(), Trend::default()];
        let mut state = 12345u64;
        for i in 0..30_000u64 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let millis = (state >> 33) as f64 / 1_000_000.0 + (i % 7) as f64;
            whole.record(millis);
            parts[(i % 3) as usize].record(millis);
        }
        let mut merged = Trend::default();
        for part in &parts {
            merged.merge(part);
        }
        assert_eq!(merged.count(), whole.count());
        for p in [50.0, 90.0, 95.0, 99.0, 99.9] {
            assert_eq!(merged.percentile(p), whole.percentile(p), "p({p})");
        }
        assert!((merged.avg() - whole.avg()).abs() < 1e-9);
        assert_eq!(merged.max, whole.max);
    }

    #[test]
    fn snapshots_round_trip_through_json() {
        let mut registry = Registry::new();
        registry.add(
            Metric::HttpReqDuration,
            vec![("name".to_string(), "login".to_string())],
        );
        let mut snapshot = Snapshot::empty(&registry);
        for ms in [1.5, 2.5, 100.0] {
            if let Some(Value::Trend(t)) = snapshot.values.get_mut("http_req_duration{name:login}")
            {
                t.record(ms);
            }
        }
        if let Some(v) = snapshot.values.get_mut("http_reqs") {
            v.add(3.0);
        }
        let json = serde_json::to_string(&snapshot).unwrap();
        let back: Snapshot = serde_json::from_str(&json).unwrap();
        let trend = back.trend("http_req_duration{name:login}").unwrap();
        assert_eq!(trend.count(), 3);
        assert_eq!(trend.max, 100.0);
        assert!((trend.percentile(50.0) - 2.5).abs() < 0.01);
        assert_eq!(back.count("http_reqs"), 3.0);
    }
}
