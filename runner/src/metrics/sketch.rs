//! A compact, mergeable latency distribution for one point of the time series, so the fleet's
//! per-second percentiles are those of every runner's samples together rather than the largest
//! runner's.
//!
//! The buckets are DDSketch's logarithmic ones (Masson, Rim and Lee, VLDB 2019): bucket `i`
//! holds the values in (γ^(i-1), γ^i] ms with γ = (1 + α)/(1 − α), so every percentile read
//! back is within α = 1 % of the true one, and merging two sketches (adding counts bucket by
//! bucket) loses nothing. Why not a 2-figure HdrHistogram: its linear sub-buckets need about
//! three times the buckets for the same relative precision, and 400 points of a 100-runner
//! report must fit the 256 KiB report budget. Why not a DDSketch crate: their decoders
//! allocate whatever index range the bytes declare, and a report is untrusted input.
//!
//! Wire form (base64 in JSON): the zigzag varint of the first bucket's index, then varints
//! `count << 1` for a bucket and `length << 1 | 1` for a run of empty buckets.

use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::snapshot::Trend;

/// The relative accuracy of every percentile read from a sketch.
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// The smallest value told apart, ms (a trend's resolution: 1 µs); smaller ones count here.
const MIN_MS: f64 = 0.001;
/// The largest value told apart, ms (about 28 hours); larger ones count here.
const MAX_MS: f64 = 1e8;

fn ln_gamma() -> f64 {
    ((1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)).ln()
}

/// The bucket of a value in ms, within [`min_index`, `max_index`].
fn index_of(millis: f64) -> i32 {
    let clamped = if millis.is_nan() {
        MIN_MS
    } else {
        millis.clamp(MIN_MS, MAX_MS)
    };
    (clamped.ln() / ln_gamma()).ceil() as i32
}

fn min_index() -> i32 {
    index_of(MIN_MS)
}

fn max_index() -> i32 {
    index_of(MAX_MS)
}

/// The value a bucket stands for: within α of every value it holds.
fn value_of(index: i32) -> f64 {
    let gamma = ln_gamma().exp();
    2.0 * (f64::from(index) * ln_gamma()).exp() / (gamma + 1.0)
}

/// Why a sketch's wire form was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SketchError {
    /// Not base64.
    #[error("the latency sketch is not base64")]
    Base64,
    /// A varint runs past the end or past 64 bits.
    #[error("the latency sketch is truncated or has a varint over 64 bits")]
    Varint,
    /// Buckets outside the values a sketch tells apart.
    #[error("the latency sketch's buckets {first}..{last} leave the range {min}..={max}")]
    Range {
        /// Its first bucket.
        first: i64,
        /// One past its last bucket.
        last: i64,
        /// The lowest bucket there is.
        min: i32,
        /// The highest bucket there is.
        max: i32,
    },
}

/// A sketch's buckets, decoded: `counts[k]` is the count of bucket `offset + k`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Buckets {
    offset: i32,
    counts: Vec<u64>,
}

impl Buckets {
    fn add(&mut self, index: i32, count: u64) {
        if count == 0 {
            return;
        }
        if self.counts.is_empty() {
            self.offset = index;
        }
        if index < self.offset {
            let grow = (self.offset - index) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = index;
        }
        let at = (index - self.offset) as usize;
        if at >= self.counts.len() {
            self.counts.resize(at + 1, 0);
        }
        self.counts[at] = self.counts[at].saturating_add(count);
    }

    fn merge(&mut self, other: &Buckets) {
        for (k, count) in other.counts.iter().enumerate() {
            self.add(other.offset + k as i32, *count);
        }
    }

    fn total(&self) -> u64 {
        self.counts
            .iter()
            .fold(0u64, |sum, c| sum.saturating_add(*c))
    }

    /// The nearest-rank percentile (the smallest bucket holding at least `percent` % of the
    /// values), as HdrHistogram and k6 read one; 0 when empty.
    fn percentile(&self, percent: f64) -> f64 {
        let total = self.total();
        if total == 0 {
            return 0.0;
        }
        let rank = ((percent.clamp(0.0, 100.0) / 100.0) * total as f64).ceil() as u64;
        let rank = rank.max(1);
        let mut seen = 0u64;
        for (k, count) in self.counts.iter().enumerate() {
            seen = seen.saturating_add(*count);
            if seen >= rank {
                return value_of(self.offset + k as i32);
            }
        }
        value_of(self.offset + self.counts.len() as i32 - 1)
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.counts.len() + 4);
        let offset = i64::from(self.offset);
        put_varint(&mut out, ((offset << 1) ^ (offset >> 63)) as u64);
        let mut k = 0;
        while k < self.counts.len() {
            let zeros = self.counts[k..].iter().take_while(|c| **c == 0).count();
            if zeros > 0 {
                put_varint(&mut out, ((zeros as u64) << 1) | 1);
                k += zeros;
            } else {
                // Counts past 2^63 saturate, as adding them does.
                put_varint(&mut out, self.counts[k].min(u64::MAX >> 1) << 1);
                k += 1;
            }
        }
        out
    }

    /// Reads a wire form, refusing any bucket outside the fixed range before allocating it.
    fn decode(bytes: &[u8]) -> Result<Buckets, SketchError> {
        let mut input = bytes;
        if input.is_empty() {
            return Ok(Buckets::default());
        }
        let zigzag = take_varint(&mut input)?;
        let offset = ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64);
        let span = i64::from(max_index()) - i64::from(min_index()) + 1;
        let range = |last: i64| SketchError::Range {
            first: offset,
            last,
            min: min_index(),
            max: max_index(),
        };
        if offset < i64::from(min_index()) || offset > i64::from(max_index()) {
            return Err(range(offset));
        }
        let mut counts = Vec::new();
        while !input.is_empty() {
            let item = take_varint(&mut input)?;
            let (count, run) = if item & 1 == 1 {
                (0, item >> 1)
            } else {
                (item >> 1, 1)
            };
            let end = (counts.len() as u64).saturating_add(run);
            if end > (i64::from(max_index()) - offset + 1) as u64 || end > span as u64 {
                return Err(range(offset.saturating_add(end as i64)));
            }
            counts.resize(end as usize, count);
        }
        Ok(Buckets {
            offset: offset as i32,
            counts,
        })
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn take_varint(input: &mut &[u8]) -> Result<u64, SketchError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first().ok_or(SketchError::Varint)?;
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(SketchError::Varint)
}

/// One interval's request durations, kept in its wire form (a few hundred bytes), since a
/// long run holds one per second.
#[derive(Clone, PartialEq, Eq)]
pub struct LatencySketch {
    wire: Box<[u8]>,
}

impl fmt::Debug for LatencySketch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LatencySketch({} bytes)", self.wire.len())
    }
}

/// Percentiles read from one (merged) sketch.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    /// p50, ms.
    pub p50: f64,
    /// p90, ms.
    pub p90: f64,
    /// p95, ms.
    pub p95: f64,
    /// p99, ms.
    pub p99: f64,
}

impl LatencySketch {
    fn from_buckets(buckets: &Buckets) -> LatencySketch {
        LatencySketch {
            wire: buckets.encode().into_boxed_slice(),
        }
    }

    fn buckets(&self) -> Buckets {
        // Validated when made or read, so this cannot fail; an empty sketch would only
        // lower a percentile, never invent one.
        Buckets::decode(&self.wire).unwrap_or_default()
    }

    /// The sketch of a trend's values (none when it is empty).
    pub fn from_trend(trend: &Trend) -> Option<LatencySketch> {
        Self::from_values(trend.recorded())
    }

    /// The sketch of values (ms) with how often each was seen (none when there are none).
    pub fn from_values(values: impl IntoIterator<Item = (f64, u64)>) -> Option<LatencySketch> {
        let mut buckets = Buckets::default();
        for (millis, count) in values {
            buckets.add(index_of(millis), count);
        }
        (!buckets.counts.is_empty()).then(|| Self::from_buckets(&buckets))
    }

    /// Each non-empty bucket's value (ms) with its count, in ascending order: the values as
    /// the sketch keeps them.
    pub fn values(&self) -> Vec<(f64, u64)> {
        let buckets = self.buckets();
        buckets
            .counts
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(k, count)| (value_of(buckets.offset + k as i32), *count))
            .collect()
    }

    /// How many values it holds.
    pub fn count(&self) -> u64 {
        self.buckets().total()
    }

    /// The bytes of its wire form.
    pub fn wire_len(&self) -> usize {
        self.wire.len()
    }

    /// Every sketch merged into one, with its percentiles (none when there is none).
    pub fn merge<'a>(
        sketches: impl IntoIterator<Item = &'a LatencySketch>,
    ) -> Option<(LatencySketch, Percentiles)> {
        let merged = merged_buckets(sketches)?;
        Some((Self::from_buckets(&merged), percentiles_of(&merged)))
    }

    /// The percentiles of every sketch's values together, without encoding the merged sketch
    /// (none when there is none).
    pub fn merged_percentiles<'a>(
        sketches: impl IntoIterator<Item = &'a LatencySketch>,
    ) -> Option<Percentiles> {
        merged_buckets(sketches).map(|merged| percentiles_of(&merged))
    }

    /// Its p50, p90, p95 and p99.
    pub fn percentiles(&self) -> Percentiles {
        percentiles_of(&self.buckets())
    }
}

fn merged_buckets<'a>(sketches: impl IntoIterator<Item = &'a LatencySketch>) -> Option<Buckets> {
    let mut merged: Option<Buckets> = None;
    for sketch in sketches {
        let buckets = sketch.buckets();
        match merged.as_mut() {
            Some(all) => all.merge(&buckets),
            None => merged = Some(buckets),
        }
    }
    merged
}

fn percentiles_of(buckets: &Buckets) -> Percentiles {
    Percentiles {
        p50: buckets.percentile(50.0),
        p90: buckets.percentile(90.0),
        p95: buckets.percentile(95.0),
        p99: buckets.percentile(99.0),
    }
}

impl Serialize for LatencySketch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.wire))
    }
}

impl<'de> Deserialize<'de> for LatencySketch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let wire = base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|_| serde::de::Error::custom(SketchError::Base64))?;
        Buckets::decode(&wire).map_err(serde::de::Error::custom)?;
        Ok(LatencySketch {
            wire: wire.into_boxed_slice(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nearest-rank percentile of raw values.
    fn exact(values: &mut [f64], percent: f64) -> f64 {
        values.sort_by(f64::total_cmp);
        let rank = ((percent / 100.0) * values.len() as f64).ceil().max(1.0) as usize;
        values[rank - 1]
    }

    fn within_accuracy(got: f64, want: f64) -> bool {
        (got - want).abs() <= want * RELATIVE_ACCURACY + 1e-9
    }

    fn sketch(values: &[f64]) -> LatencySketch {
        LatencySketch::from_values(values.iter().map(|v| (*v, 1))).expect("values")
    }

    /// Three runners with different latencies in the same second: the merged sketch's p95 is
    /// that of all samples together, which the largest runner's p95 is far from.
    #[test]
    fn merged_percentiles_are_those_of_all_samples_not_the_largest_runners() {
        let mut rng = fastrand::Rng::with_seed(11);
        let runners: Vec<Vec<f64>> = [(2.0, 300), (5.0, 300), (40.0, 20)]
            .iter()
            .map(|(base, n)| (0..*n).map(|_| base * (1.0 + rng.f64())).collect())
            .collect();
        let sketches: Vec<LatencySketch> = runners.iter().map(|r| sketch(r)).collect();
        let (merged, got) = LatencySketch::merge(&sketches).expect("merged");
        let mut all: Vec<f64> = runners.concat();
        assert_eq!(merged.count(), all.len() as u64);
        for (percent, value) in [
            (50.0, got.p50),
            (90.0, got.p90),
            (95.0, got.p95),
            (99.0, got.p99),
        ] {
            let want = exact(&mut all, percent);
            assert!(
                within_accuracy(value, want),
                "p{percent}: {value} vs {want}"
            );
        }
        let largest_p95 = sketches
            .iter()
            .map(|s| s.percentiles().p95)
            .fold(0.0, f64::max);
        assert!(largest_p95 > got.p95 * 5.0, "{largest_p95} vs {}", got.p95);
    }

    #[test]
    fn the_wire_form_round_trips_and_stays_small() {
        let mut rng = fastrand::Rng::with_seed(3);
        let values: Vec<f64> = (0..5000)
            .map(|_| 5.0 * (rng.f64() * 3.0 - 1.5).exp())
            .chain([0.0, 0.0004, 1e12, f64::NAN])
            .collect();
        let original = sketch(&values);
        let json = serde_json::to_string(&original).expect("json");
        let back: LatencySketch = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, original);
        assert_eq!(back.count(), 5004);
        // A factor of 20 of spread at 1 %: about 150 buckets, one byte each.
        assert!(json.len() < 400, "{} bytes", json.len());
        let sparse = sketch(&[1.0, 1000.0]);
        assert!(sparse.wire_len() <= 8, "{}", sparse.wire_len());
        assert_eq!(sparse.percentiles().p99, value_of(index_of(1000.0)));
    }

    /// A report is untrusted: buckets outside the range, runs that would allocate millions of
    /// buckets and truncated varints are refused with the reason.
    #[test]
    fn hostile_wire_forms_are_refused_before_they_allocate() {
        let read = |bytes: &[u8]| {
            let text = format!(
                "\"{}\"",
                base64::engine::general_purpose::STANDARD.encode(bytes)
            );
            serde_json::from_str::<LatencySketch>(&text)
                .unwrap_err()
                .to_string()
        };
        // Offset 2^40 (zigzag), far past the highest bucket.
        let mut far = Vec::new();
        put_varint(&mut far, 1 << 41);
        put_varint(&mut far, 1);
        assert!(read(&far).contains("leave the range"), "{}", read(&far));
        // A run of 2^60 empty buckets.
        let mut run = Vec::new();
        put_varint(&mut run, 0);
        put_varint(&mut run, (1 << 61) | 1);
        assert!(read(&run).contains("leave the range"), "{}", read(&run));
        assert!(read(&[0x80]).contains("truncated"));
        assert!(
            serde_json::from_str::<LatencySketch>("\"!!\"")
                .unwrap_err()
                .to_string()
                .contains("not base64")
        );
    }

    #[test]
    fn percentiles_of_each_value_are_within_the_accuracy() {
        for value in [0.001, 0.0123, 1.0, 7.77, 250.0, 59_999.0] {
            let p = sketch(&[value]).percentiles();
            assert!(within_accuracy(p.p50, value), "{value}: {}", p.p50);
        }
    }
}
