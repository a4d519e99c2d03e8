//! Execution segments and k6's striping: which share of every VU number and iteration number
//! one runner owns when a test is split across several (`--execution-segment`,
//! `--execution-segment-sequence`, k6 `lib/execution_segment.go`).
//!
//! A sequence `0 = b₀ < b₁ < … < bₙ = 1` cuts the work into segments `bᵢ:bᵢ₊₁`. Every index
//! `j = 0, 1, 2, …` of a countable quantity (global VU number − 1, global iteration number) is
//! owned by exactly one segment. Ownership repeats with a period of the least common
//! denominator (the *cycle*) of the segment lengths, and inside one cycle it is dealt out with
//! k6's greedy striping, so the segments' counts always add up to the whole and each count is
//! within about one of `length · j` at every `j`. Because Stampede and k6 deal the same indices
//! to the same segments, a runner's share of a test is what k6 would give that instance.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fmt;
use std::sync::Arc;

/// The longest ownership cycle (least common denominator of the segment lengths) Stampede
/// builds. The striping table of one cycle is computed up front, so absurdly fine sequences
/// (`0.1234567:0.7654321`) are refused instead of eating memory; equal splits into `N` runners
/// have a cycle of `N`.
pub const MAX_CYCLE: u64 = 1 << 22;

/// Why an execution segment or sequence was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    /// The text is not a fraction (`1/3`), decimal (`0.25`) or percentage (`25%`).
    #[error("{0:?} is not a fraction, decimal or percentage (write 1/4, 0.25 or 25%)")]
    Malformed(String),
    /// The number does not fit the exact 64-bit fractions Stampede computes with.
    #[error("{0:?} has too many digits to compute with exactly")]
    TooPrecise(String),
    /// A segment must satisfy `0 <= from < to <= 1`.
    #[error("segment {from}:{to} is out of range: it needs 0 <= from < to <= 1")]
    OutOfRange {
        /// Where the segment starts.
        from: Ratio,
        /// Where the segment ends.
        to: Ratio,
    },
    /// A sequence needs at least two points, strictly increasing between 0 and 1.
    #[error("execution segment sequence {0:?} needs at least two points, increasing from 0 to 1")]
    BadSequence(String),
    /// `ExecutionSegment::of(index, count)` with `index >= count` or `count == 0`.
    #[error("segment index {index} is not below the segment count {count}")]
    IndexOutOfRange {
        /// The requested segment index.
        index: u64,
        /// How many segments the test is split into.
        count: u64,
    },
    /// The segment is not one of the sequence's segments.
    #[error("segment {segment} is not part of the sequence {sequence}")]
    NotInSequence {
        /// The segment, as `from:to`.
        segment: String,
        /// The sequence, as `b0,b1,...`.
        sequence: String,
    },
    /// The least common denominator of the segment lengths exceeds [`MAX_CYCLE`].
    #[error(
        "the segment lengths have a common denominator of {cycle}, above the supported {max}; use coarser fractions",
        max = MAX_CYCLE
    )]
    TooFine {
        /// The least common denominator that was needed (saturated).
        cycle: u128,
    },
}

/// An exact fraction `numer/denom` in lowest terms, used for segment bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ratio {
    numer: u64,
    denom: u64,
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Ratio {
    /// Zero.
    pub const ZERO: Ratio = Ratio { numer: 0, denom: 1 };
    /// One.
    pub const ONE: Ratio = Ratio { numer: 1, denom: 1 };

    /// `numer/denom` in lowest terms; `None` when `denom` is 0.
    pub fn new(numer: u64, denom: u64) -> Option<Ratio> {
        Self::reduced(u128::from(numer), u128::from(denom))
    }

    /// Reduces a wide fraction, `None` if the denominator is 0 or the result needs more than
    /// 64 bits.
    fn reduced(numer: u128, denom: u128) -> Option<Ratio> {
        if denom == 0 {
            return None;
        }
        let divisor = gcd(numer, denom).max(1);
        Some(Ratio {
            numer: u64::try_from(numer / divisor).ok()?,
            denom: u64::try_from(denom / divisor).ok()?,
        })
    }

    /// The numerator in lowest terms.
    pub fn numer(self) -> u64 {
        self.numer
    }

    /// The denominator in lowest terms.
    pub fn denom(self) -> u64 {
        self.denom
    }

    /// The value as a float, for display and rates.
    pub fn to_f64(self) -> f64 {
        self.numer as f64 / self.denom as f64
    }

    /// Parses k6's notation for one point: a fraction `1/3`, a decimal `0.25` or a
    /// percentage `25%` / `12.5%`.
    pub fn parse(text: &str) -> Result<Ratio, SegmentError> {
        let trimmed = text.trim();
        let malformed = || SegmentError::Malformed(text.to_string());
        let too_precise = || SegmentError::TooPrecise(text.to_string());
        if let Some(percent) = trimmed.strip_suffix('%') {
            let (numer, denom) = parse_decimal(percent.trim()).ok_or_else(malformed)?;
            let denom = denom.checked_mul(100).ok_or_else(too_precise)?;
            return Ratio::reduced(numer, denom).ok_or_else(too_precise);
        }
        if let Some((numer, denom)) = trimmed.split_once('/') {
            let numer = parse_integer(numer.trim()).ok_or_else(malformed)?;
            let denom = parse_integer(denom.trim()).ok_or_else(malformed)?;
            if denom == 0 {
                return Err(malformed());
            }
            return Ratio::reduced(numer, denom).ok_or_else(too_precise);
        }
        let (numer, denom) = parse_decimal(trimmed).ok_or_else(malformed)?;
        Ratio::reduced(numer, denom).ok_or_else(too_precise)
    }

    /// `self - other`, or `None` when negative or not representable.
    fn checked_sub(self, other: Ratio) -> Option<Ratio> {
        let left = u128::from(self.numer) * u128::from(other.denom);
        let right = u128::from(other.numer) * u128::from(self.denom);
        let denom = u128::from(self.denom) * u128::from(other.denom);
        Ratio::reduced(left.checked_sub(right)?, denom)
    }
}

/// Digits only, as a wide integer (at most 38 digits so it cannot overflow).
fn parse_integer(text: &str) -> Option<u128> {
    if text.is_empty() || text.len() > 38 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `123.45` as `(12345, 100)`; `None` for anything but digits with at most one dot.
fn parse_decimal(text: &str) -> Option<(u128, u128)> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let numer = parse_integer(&digits)?;
    let denom = 10u128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
    Some((numer, denom))
}

impl Ord for Ratio {
    fn cmp(&self, other: &Self) -> Ordering {
        (u128::from(self.numer) * u128::from(other.denom))
            .cmp(&(u128::from(other.numer) * u128::from(self.denom)))
    }
}

impl PartialOrd for Ratio {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Ratio {
    /// `1/3`, `0`, `1` — k6's `RatString`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.denom == 1 {
            write!(f, "{}", self.numer)
        } else {
            write!(f, "{}/{}", self.numer, self.denom)
        }
    }
}

/// An ordered chain of segments covering `0..1` without gaps, written `0,1/4,1/2,1`
/// (k6 `--execution-segment-sequence`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionSegmentSequence {
    /// Strictly increasing bounds from 0 to 1.
    bounds: Arc<[Ratio]>,
}

impl ExecutionSegmentSequence {
    /// The sequence with the given bounds. Like k6, a sequence that does not start at 0 or end
    /// at 1 is filled with one extra segment at either end.
    pub fn new(points: &[Ratio]) -> Result<Self, SegmentError> {
        let describe = || {
            points
                .iter()
                .map(Ratio::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        if points.len() < 2 || points.windows(2).any(|pair| pair[0] >= pair[1]) {
            return Err(SegmentError::BadSequence(describe()));
        }
        if points.iter().any(|point| *point > Ratio::ONE) {
            return Err(SegmentError::BadSequence(describe()));
        }
        let mut bounds = Vec::with_capacity(points.len() + 2);
        if points[0] != Ratio::ZERO {
            bounds.push(Ratio::ZERO);
        }
        bounds.extend_from_slice(points);
        if bounds.last() != Some(&Ratio::ONE) {
            bounds.push(Ratio::ONE);
        }
        Ok(ExecutionSegmentSequence {
            bounds: bounds.into(),
        })
    }

    /// Parses k6's comma-separated form, e.g. `0,1/3,1/2,1` or `0,25%,50%,100%`.
    pub fn parse(text: &str) -> Result<Self, SegmentError> {
        let points = text
            .split(',')
            .map(Ratio::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(&points)
    }

    /// `count` equal segments `i/count:(i+1)/count` (k6 `Split`), the split the operator uses.
    pub fn equal(count: u64) -> Result<Self, SegmentError> {
        if count == 0 {
            return Err(SegmentError::IndexOutOfRange { index: 0, count });
        }
        if count > MAX_CYCLE {
            return Err(SegmentError::TooFine {
                cycle: u128::from(count),
            });
        }
        let bounds: Vec<Ratio> = (0..=count).filter_map(|i| Ratio::new(i, count)).collect();
        Ok(ExecutionSegmentSequence {
            bounds: bounds.into(),
        })
    }

    /// How many segments the sequence has.
    pub fn len(&self) -> usize {
        self.bounds.len() - 1
    }

    /// Always false: a sequence has at least one segment.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The bounds `b0,b1,...,bn`.
    pub fn bounds(&self) -> &[Ratio] {
        &self.bounds
    }

    /// The index of the segment `from:to`, if it is one of this sequence's segments.
    pub fn position(&self, from: Ratio, to: Ratio) -> Option<usize> {
        self.bounds
            .windows(2)
            .position(|pair| pair[0] == from && pair[1] == to)
    }

    /// The segment at `index`, with its ownership computed against this sequence.
    pub fn segment(&self, index: usize) -> Result<ExecutionSegment, SegmentError> {
        if index >= self.len() {
            return Err(SegmentError::IndexOutOfRange {
                index: index as u64,
                count: self.len() as u64,
            });
        }
        let layout = CycleLayout::of(&self.bounds)?;
        let mut owned = Vec::new();
        stripe(
            &layout.numerators,
            layout.cycle,
            layout.cycle,
            |position, segment| {
                if segment == index {
                    owned.push(position);
                }
            },
        );
        Ok(ExecutionSegment {
            bounds: Arc::clone(&self.bounds),
            index,
            cycle: layout.cycle,
            owned: owned.into(),
        })
    }

    /// Every segment of the sequence, sharing one striping pass.
    pub fn segments(&self) -> Result<Vec<ExecutionSegment>, SegmentError> {
        let layout = CycleLayout::of(&self.bounds)?;
        let mut owned: Vec<Vec<u64>> = layout
            .numerators
            .iter()
            .map(|&n| Vec::with_capacity(usize::try_from(n).unwrap_or(0)))
            .collect();
        stripe(
            &layout.numerators,
            layout.cycle,
            layout.cycle,
            |position, segment| {
                if let Some(list) = owned.get_mut(segment) {
                    list.push(position);
                }
            },
        );
        Ok(owned
            .into_iter()
            .enumerate()
            .map(|(index, owned)| ExecutionSegment {
                bounds: Arc::clone(&self.bounds),
                index,
                cycle: layout.cycle,
                owned: owned.into(),
            })
            .collect())
    }
}

impl fmt::Display for ExecutionSegmentSequence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, bound) in self.bounds.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{bound}")?;
        }
        Ok(())
    }
}

/// The cycle of a sequence and each segment's number of owned indices per cycle.
struct CycleLayout {
    cycle: u64,
    numerators: Vec<u64>,
}

impl CycleLayout {
    fn of(bounds: &[Ratio]) -> Result<CycleLayout, SegmentError> {
        let lengths: Vec<Ratio> = bounds
            .windows(2)
            .map(|pair| pair[1].checked_sub(pair[0]))
            .collect::<Option<_>>()
            .ok_or(SegmentError::TooFine { cycle: u128::MAX })?;
        let mut cycle: u128 = 1;
        for length in &lengths {
            let denom = u128::from(length.denom);
            cycle = (cycle / gcd(cycle, denom)).saturating_mul(denom);
            if cycle > u128::from(MAX_CYCLE) {
                return Err(SegmentError::TooFine { cycle });
            }
        }
        let cycle = u64::try_from(cycle).unwrap_or(MAX_CYCLE);
        let numerators = lengths
            .iter()
            .map(|length| length.numer.saturating_mul(cycle / length.denom.max(1)))
            .collect();
        Ok(CycleLayout { cycle, numerators })
    }
}

/// k6's striping (`NewExecutionSegmentSequenceWrapper`): deals the positions `0..limit` of one
/// cycle to the segments, calling `assign(position, segment)` for each.
///
/// Segments are ranked by size, largest first (ties keep sequence order). A segment with
/// `numerator` positions per cycle that has been dealt `c` of them becomes due again at
/// position `ceil(c · cycle / numerator)`; each position goes to the best-ranked due segment.
/// k6 scans every segment per position; a heap of due segments gives the same result in
/// `O(log n)` per position. Since the dealt counts always sum to the position, some segment is
/// always due.
fn stripe(numerators: &[u64], cycle: u64, limit: u64, mut assign: impl FnMut(u64, usize)) {
    let mut by_rank: Vec<usize> = (0..numerators.len()).collect();
    by_rank.sort_by_key(|&segment| Reverse(numerators[segment]));
    let mut dealt = vec![0u64; numerators.len()];
    // Segments waiting for their next due position: (due position, rank).
    let mut waiting: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
    // Segments that are due, best rank first.
    let mut due: BinaryHeap<Reverse<usize>> = (0..by_rank.len()).map(Reverse).collect();
    for position in 0..limit.min(cycle) {
        while let Some(&Reverse((at, rank))) = waiting.peek() {
            if at > position {
                break;
            }
            waiting.pop();
            due.push(Reverse(rank));
        }
        let Some(Reverse(rank)) = due.pop() else {
            continue;
        };
        let segment = by_rank[rank];
        assign(position, segment);
        dealt[rank] += 1;
        let numerator = numerators[segment];
        if dealt[rank] < numerator {
            let next =
                (u128::from(dealt[rank]) * u128::from(cycle)).div_ceil(u128::from(numerator));
            waiting.push(Reverse((u64::try_from(next).unwrap_or(u64::MAX), rank)));
        }
    }
}

/// One runner's share of the work: a segment `from:to` of an [`ExecutionSegmentSequence`],
/// with the indices it owns (k6's `ExecutionTuple`). Cheap to clone.
#[derive(Clone)]
pub struct ExecutionSegment {
    bounds: Arc<[Ratio]>,
    index: usize,
    /// The period of ownership: the least common denominator of the sequence's lengths.
    cycle: u64,
    /// The positions `0..cycle` this segment owns, ascending; never empty.
    owned: Arc<[u64]>,
}

impl ExecutionSegment {
    /// The whole test, `0:1`: owns every index.
    pub fn full() -> ExecutionSegment {
        ExecutionSegment {
            bounds: Arc::from([Ratio::ZERO, Ratio::ONE].as_slice()),
            index: 0,
            cycle: 1,
            owned: Arc::from([0u64].as_slice()),
        }
    }

    /// The segment `from:to` of the sequence `0,from,to,1` — what k6 does when
    /// `--execution-segment` is given without `--execution-segment-sequence`.
    pub fn new(from: Ratio, to: Ratio) -> Result<ExecutionSegment, SegmentError> {
        if from >= to || to > Ratio::ONE {
            return Err(SegmentError::OutOfRange { from, to });
        }
        let sequence = ExecutionSegmentSequence::new(&[from, to])?;
        let index = sequence.position(from, to).unwrap_or(0);
        sequence.segment(index)
    }

    /// Segment `index` of `count` equal segments: `index/count:(index+1)/count` in the
    /// sequence of all `count` of them. This is how the operator splits a test over runners.
    pub fn of(index: u64, count: u64) -> Result<ExecutionSegment, SegmentError> {
        if index >= count {
            return Err(SegmentError::IndexOutOfRange { index, count });
        }
        let sequence = ExecutionSegmentSequence::equal(count)?;
        // Equal segments are dealt round-robin; skip the striping pass.
        Ok(ExecutionSegment {
            bounds: Arc::clone(&sequence.bounds),
            index: usize::try_from(index).unwrap_or(usize::MAX),
            cycle: count,
            owned: Arc::from([index].as_slice()),
        })
    }

    /// Parses k6's `--execution-segment` value: `1/4:1/2`, `25%:50%`, `0.25:0.5`, or a single
    /// value `x` meaning `0:x`; empty means the whole test. The sequence is `0,from,to,1`.
    pub fn parse(text: &str) -> Result<ExecutionSegment, SegmentError> {
        let (from, to) = parse_bounds(text)?;
        if from == Ratio::ZERO && to == Ratio::ONE {
            return Ok(ExecutionSegment::full());
        }
        ExecutionSegment::new(from, to)
    }

    /// Parses `--execution-segment` together with `--execution-segment-sequence`; an empty
    /// sequence behaves like [`ExecutionSegment::parse`].
    pub fn parse_in(segment: &str, sequence: &str) -> Result<ExecutionSegment, SegmentError> {
        if sequence.trim().is_empty() {
            return ExecutionSegment::parse(segment);
        }
        let (from, to) = parse_bounds(segment)?;
        let sequence = ExecutionSegmentSequence::parse(sequence)?;
        let index = sequence
            .position(from, to)
            .ok_or_else(|| SegmentError::NotInSequence {
                segment: format!("{from}:{to}"),
                sequence: sequence.to_string(),
            })?;
        sequence.segment(index)
    }

    /// Where the segment starts.
    pub fn from(&self) -> Ratio {
        self.bounds[self.index]
    }

    /// Where the segment ends.
    pub fn to(&self) -> Ratio {
        self.bounds[self.index + 1]
    }

    /// `to - from` as a float: the segment's share of rates.
    pub fn length(&self) -> f64 {
        self.owned.len() as f64 / self.cycle as f64
    }

    /// The position of this segment in its sequence.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The sequence this segment belongs to (filled to cover `0..1`).
    pub fn sequence(&self) -> ExecutionSegmentSequence {
        ExecutionSegmentSequence {
            bounds: Arc::clone(&self.bounds),
        }
    }

    /// True for the whole test `0:1`.
    pub fn is_full(&self) -> bool {
        self.bounds.len() == 2
    }

    /// The period after which ownership repeats (the least common denominator of the
    /// sequence's segment lengths).
    pub fn cycle(&self) -> u64 {
        self.cycle
    }

    /// How many indices of each cycle this segment owns.
    fn per_cycle(&self) -> u64 {
        self.owned.len() as u64
    }

    /// Whether this segment owns index `j` (0-based: global VU number − 1, global iteration
    /// number). Exactly one segment of the sequence owns each index.
    pub fn owns(&self, j: u64) -> bool {
        self.owned.binary_search(&(j % self.cycle)).is_ok()
    }

    /// How many of the indices `0..total` this segment owns: its share of `total` VUs or
    /// iterations (k6 `ExecutionTuple.ScaleInt64`). The shares of all segments of a sequence
    /// add up to `total`, and each is non-decreasing in `total`.
    pub fn scale(&self, total: u64) -> u64 {
        let whole_cycles = total / self.cycle;
        let rest = total % self.cycle;
        whole_cycles * self.per_cycle() + self.owned.partition_point(|&p| p < rest) as u64
    }

    /// The `k`-th (0-based) index this segment owns; `nth_owned(scale(j)) == j` when
    /// `owns(j)`. Saturates at `u64::MAX` far beyond any real count.
    pub fn nth_owned(&self, k: u64) -> u64 {
        let per_cycle = self.per_cycle();
        let in_cycle = usize::try_from(k.checked_rem(per_cycle).unwrap_or(0)).unwrap_or(0);
        match self.owned.get(in_cycle) {
            Some(position) => (k / per_cycle)
                .saturating_mul(self.cycle)
                .saturating_add(*position),
            // Every segment of a sequence owns at least one position per cycle.
            None => u64::MAX,
        }
    }

    /// The same split re-derived from a quantity of `value` (k6
    /// `GetNewExecutionTupleFromValue`): every segment of the sequence gets the length
    /// `scale(value) / value`, segments with no share are dropped, and this segment's place in
    /// the new sequence is returned. k6 stripes iterations this way — by `vus` for
    /// shared-iterations and by `maxVUs` for arrival rates — so a runner that got no VUs gets
    /// no iterations either. `Ok(None)` when this segment's share of `value` is 0.
    pub fn rescaled(&self, value: u64) -> Result<Option<ExecutionSegment>, SegmentError> {
        if value == 0 {
            return Ok(None);
        }
        if value.is_multiple_of(self.cycle) {
            return Ok(Some(self.clone()));
        }
        let layout = CycleLayout::of(&self.bounds)?;
        let whole_cycles = value / self.cycle;
        let mut shares: Vec<u64> = layout
            .numerators
            .iter()
            .map(|&numerator| whole_cycles.saturating_mul(numerator))
            .collect();
        stripe(
            &layout.numerators,
            layout.cycle,
            value % layout.cycle,
            |_, segment| {
                if let Some(share) = shares.get_mut(segment) {
                    *share += 1;
                }
            },
        );
        if shares.get(self.index).copied().unwrap_or(0) == 0 {
            return Ok(None);
        }
        let mut bounds = vec![Ratio::ZERO];
        let mut new_index = 0;
        let mut sum = 0u64;
        for (segment, &share) in shares.iter().enumerate() {
            if share == 0 {
                continue;
            }
            if segment == self.index {
                new_index = bounds.len() - 1;
            }
            sum = sum.saturating_add(share);
            bounds.push(Ratio::new(sum, value).ok_or(SegmentError::TooFine {
                cycle: u128::from(value),
            })?);
        }
        let sequence = ExecutionSegmentSequence {
            bounds: bounds.into(),
        };
        sequence.segment(new_index).map(Some)
    }
}

/// Splits `a:b` (or `b` alone, or empty) into checked bounds.
fn parse_bounds(text: &str) -> Result<(Ratio, Ratio), SegmentError> {
    let text = text.trim();
    let (from, to) = match text.split_once(':') {
        Some((from, to)) => (Ratio::parse(from)?, Ratio::parse(to)?),
        None if text.is_empty() => (Ratio::ZERO, Ratio::ONE),
        None => (Ratio::ZERO, Ratio::parse(text)?),
    };
    if from >= to || to > Ratio::ONE {
        return Err(SegmentError::OutOfRange { from, to });
    }
    Ok((from, to))
}

impl PartialEq for ExecutionSegment {
    fn eq(&self, other: &Self) -> bool {
        self.index == other.index && self.bounds == other.bounds
    }
}

impl Eq for ExecutionSegment {}

impl fmt::Display for ExecutionSegment {
    /// `from:to`, as k6 prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.from(), self.to())
    }
}

impl fmt::Debug for ExecutionSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExecutionSegment({self} of {})", self.sequence())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ratio(text: &str) -> Ratio {
        Ratio::parse(text).unwrap()
    }

    /// k6 `GetStripedOffsets` output (start, offsets, lcd) turned into owned positions.
    fn positions(start: u64, offsets: &[u64], cycle: u64) -> Vec<u64> {
        let mut out = vec![start];
        for offset in &offsets[..offsets.len() - 1] {
            out.push(out.last().unwrap() + offset);
        }
        assert_eq!(out.last().unwrap() + offsets.last().unwrap(), start + cycle);
        out
    }

    #[test]
    fn parses_k6_notations() {
        assert_eq!(ratio("1/3"), Ratio::new(1, 3).unwrap());
        assert_eq!(ratio("2/4"), Ratio::new(1, 2).unwrap());
        assert_eq!(ratio("0.25"), Ratio::new(1, 4).unwrap());
        assert_eq!(ratio("25%"), Ratio::new(1, 4).unwrap());
        assert_eq!(ratio("12.5%"), Ratio::new(1, 8).unwrap());
        assert_eq!(ratio("1"), Ratio::ONE);
        assert_eq!(ratio(".5"), Ratio::new(1, 2).unwrap());
        for bad in ["", "x", "1/0", "-1/2", "1.2.3", "1/", "%"] {
            assert!(Ratio::parse(bad).is_err(), "{bad:?} should not parse");
        }
        let segment = ExecutionSegment::parse("1/4:2/4").unwrap();
        assert_eq!(segment.to_string(), "1/4:1/2");
        assert_eq!(segment.sequence().to_string(), "0,1/4,1/2,1");
        assert_eq!(ExecutionSegment::parse("20%").unwrap().to_string(), "0:1/5");
        assert!(ExecutionSegment::parse("").unwrap().is_full());
        assert!(ExecutionSegment::parse("0:1").unwrap().is_full());
        assert!(matches!(
            ExecutionSegment::parse("1/2:1/4"),
            Err(SegmentError::OutOfRange { .. })
        ));
        assert!(matches!(
            ExecutionSegment::parse("0:2"),
            Err(SegmentError::OutOfRange { .. })
        ));
        assert!(matches!(
            ExecutionSegment::parse_in("0:1/5", "0,1/4,1"),
            Err(SegmentError::NotInSequence { .. })
        ));
        assert!(matches!(
            ExecutionSegment::of(3, 3),
            Err(SegmentError::IndexOutOfRange { .. })
        ));
        assert!(matches!(
            ExecutionSegment::parse("0.1234567:0.7654321"),
            Err(SegmentError::TooFine { .. })
        ));
    }

    #[test]
    fn sequence_cycles_match_k6_lcd() {
        for (sequence, cycle) in [
            ("0,0.3,0.5,0.6,0.7,0.8,0.9,1", 10),
            ("0,0.1,0.5,0.6,0.7,0.8,0.9,1", 10),
            ("0,1/3,5/6", 6),
            ("0,1/3,4/7", 21),
        ] {
            let segments = ExecutionSegmentSequence::parse(sequence)
                .unwrap()
                .segments()
                .unwrap();
            assert_eq!(segments[0].cycle(), cycle, "{sequence}");
        }
    }

    /// k6 `TestGetStripedOffsets`.
    #[test]
    fn striping_matches_k6() {
        let cases: &[(&str, &str, u64, &[u64], u64)] = &[
            ("0,0.3,0.5,0.6,0.7,0.8,0.9,1", "0:0.3", 0, &[4, 3, 3], 10),
            ("0,0.3,0.5,0.6,0.7,0.8,0.9,1", "0.3:0.5", 1, &[4, 6], 10),
            ("0,0.3,0.5,0.6,0.7,0.8,0.9,1", "0.5:0.6", 2, &[10], 10),
            ("0,0.3,0.5,0.6,0.7,0.8,0.9,1", "0.6:0.7", 3, &[10], 10),
            ("0,0.3,0.5,0.6,0.7,0.8,0.9,1", "0.8:0.9", 8, &[10], 10),
            ("0,0.3,0.5,0.6,0.7,0.8,0.9,1", "0.9:1", 9, &[10], 10),
            ("0,0.2,0.5,0.6,0.7,0.8,0.9,1", "0.9:1", 9, &[10], 10),
            ("0,0.2,0.5,0.6,0.7,0.8,0.9,1", "0:0.2", 1, &[4, 6], 10),
            ("0,0.2,0.5,0.6,0.7,0.8,0.9,1", "0.6:0.7", 3, &[10], 10),
            ("0,0.2,0.5", "0:0.2", 3, &[6, 4], 10),
            ("0,0.2,0.5", "0.2:0.5", 1, &[4, 2, 4], 10),
            ("0,2/5,4/5", "0:2/5", 0, &[3, 2], 5),
            ("0,2/5,4/5", "2/5:4/5", 1, &[3, 2], 5),
            ("", "0:0.2", 1, &[5], 5),
            ("", "0:1/5", 1, &[5], 5),
            ("", "0:2/10", 1, &[5], 5),
            ("", "0:0.4", 1, &[2, 3], 5),
            ("", "0:2/5", 1, &[2, 3], 5),
            ("", "2/5:4/5", 1, &[3, 2], 5),
            ("", "0:4/10", 1, &[2, 3], 5),
            ("", "1/10:5/10", 1, &[2, 2, 4, 2], 10),
        ];
        for &(sequence, segment, start, offsets, cycle) in cases {
            let segment = ExecutionSegment::parse_in(segment, sequence).unwrap();
            assert_eq!(segment.cycle(), cycle, "{segment:?}");
            assert_eq!(
                segment.owned.to_vec(),
                positions(start, offsets, cycle),
                "{segment:?}"
            );
        }
    }

    /// k6 `TestNewExecutionTuple`: scaling and re-deriving from a value.
    #[test]
    fn scale_and_rescale_match_k6() {
        let thirds = ExecutionSegmentSequence::parse("0,1/3,2/3,1")
            .unwrap()
            .segments()
            .unwrap();
        let scale = |segment: &ExecutionSegment, value: u64, total: u64| {
            segment
                .rescaled(value)
                .unwrap()
                .map(|rescaled| rescaled.scale(total))
        };
        assert_eq!(
            [50, 3, 2, 1, 0].map(|v| thirds[0].scale(v)),
            [17, 1, 1, 1, 0]
        );
        assert_eq!(
            [50, 3, 2, 1, 0].map(|v| thirds[1].scale(v)),
            [17, 1, 1, 0, 0]
        );
        assert_eq!(
            [50, 3, 2, 1, 0].map(|v| thirds[2].scale(v)),
            [16, 1, 0, 0, 0]
        );
        let expected: [(usize, u64, Option<[u64; 3]>); 15] = [
            (0, 50, Some([17, 1, 0])),
            (0, 20, Some([18, 1, 0])),
            (0, 3, Some([17, 1, 0])),
            (0, 2, Some([25, 1, 0])),
            (0, 1, Some([50, 1, 0])),
            (1, 50, Some([17, 0, 0])),
            (1, 20, Some([17, 0, 0])),
            (1, 3, Some([17, 0, 0])),
            (1, 2, Some([25, 0, 0])),
            (1, 1, None),
            (2, 50, Some([16, 0, 0])),
            (2, 20, Some([15, 0, 0])),
            (2, 3, Some([16, 0, 0])),
            (2, 2, None),
            (2, 1, None),
        ];
        for (index, value, totals) in expected {
            let got = [50, 1, 0].map(|total| scale(&thirds[index], value, total));
            match totals {
                Some(totals) => assert_eq!(got, totals.map(Some), "{index} {value}"),
                None => assert_eq!(got, [None; 3], "{index} {value}"),
            }
        }
        let rescaled = thirds[0].rescaled(20).unwrap().unwrap();
        assert_eq!(rescaled.sequence().to_string(), "0,7/20,7/10,1");
        assert!(thirds[0].rescaled(0).unwrap().is_none());
    }

    #[test]
    fn equal_segments_deal_round_robin() {
        let by_striping = ExecutionSegmentSequence::equal(7)
            .unwrap()
            .segments()
            .unwrap();
        for (index, striped) in by_striping.iter().enumerate() {
            let direct = ExecutionSegment::of(index as u64, 7).unwrap();
            assert_eq!(striped.owned, direct.owned);
            assert_eq!(striped, &direct);
            assert!(direct.owns(index as u64 + 14));
            assert_eq!(direct.nth_owned(2), index as u64 + 14);
        }
        let full = ExecutionSegment::full();
        assert_eq!(full.scale(12345), 12345);
        assert_eq!(full.nth_owned(99), 99);
        assert_eq!(full.to_string(), "0:1");
    }

    #[test]
    fn nth_owned_inverts_scale() {
        let segment = ExecutionSegment::parse_in("1/3:1/2", "0,1/3,1/2,1").unwrap();
        for k in 0..200 {
            let j = segment.nth_owned(k);
            assert!(segment.owns(j));
            assert_eq!(segment.scale(j), k);
        }
        assert_eq!(segment.nth_owned(u64::MAX), u64::MAX);
    }
}
