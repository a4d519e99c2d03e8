//! Reading a trend's HdrHistogram back from a report, treated as untrusted input: the sizes its
//! header declares are checked before `hdrhistogram` allocates them.
//!
//! Why: the V2 encoding starts with a payload length and the histogram's bounds, and
//! `hdrhistogram`'s deserializer allocates both before reading a byte of payload. A 60-byte
//! value declaring a 4 GiB payload, or bounds of 1..2^63 at 5 significant figures, would make
//! the operator (which reads every runner's report, and a runner's image is the LoadTest
//! author's choice) allocate gigabytes. Our runners write histograms of microseconds with
//! [`TREND_SIGFIGS`] figures; everything else is refused with a message.

use std::borrow::Cow;
use std::io::Read;

use flate2::read::ZlibDecoder;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;

use super::snapshot::{TREND_SIGFIGS, WireError};

/// HdrHistogram's V2 cookie, and the cookie of a deflated V2 (the base values with the 8-byte
/// word-size flag the encoders set).
const V2_COOKIE: u32 = 0x1c84_9303 | 0x10;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9304 | 0x10;
/// A V2 header: cookie, payload length, normalizing offset, significant figures, lowest and
/// highest trackable values, integer-to-double ratio.
const HEADER_LEN: usize = 40;
/// The highest trackable value a report's histogram may declare: 2^45 µs, about 407 days —
/// far past any request or iteration, yet its counts stay under 300 KiB at 3 figures.
pub const MAX_HIGHEST: u64 = 1 << 45;
/// The most counters all histograms of one snapshot may declare together (64 MiB of `u64`):
/// a real report of a 100-series test declares about 2 % of it.
pub const MAX_COUNTS_PER_SNAPSHOT: u64 = 8 << 20;

/// What the histograms of one snapshot have declared so far.
#[derive(Debug, Default)]
pub struct CountsBudget {
    declared: u64,
}

/// Decodes one base64-decoded histogram (deflated or not), charging its counters to `budget`.
pub fn decode(bytes: &[u8], budget: &mut CountsBudget) -> Result<Histogram<u64>, WireError> {
    let plain: Cow<'_, [u8]> = match be_u32(bytes, 0)? {
        V2_COOKIE => Cow::Borrowed(bytes),
        V2_COMPRESSED_COOKIE => Cow::Owned(inflate(bytes)?),
        other => return Err(refused(format!("unknown encoding (cookie {other:#010x})"))),
    };
    let header = Header::read(&plain)?;
    budget.declared = budget.declared.saturating_add(header.counts_len());
    if budget.declared > MAX_COUNTS_PER_SNAPSHOT {
        return Err(refused(format!(
            "the report's histograms declare over {MAX_COUNTS_PER_SNAPSHOT} counters together"
        )));
    }
    Deserializer::new()
        .deserialize(&mut &plain[..])
        .map_err(|error| refused(format!("{error:?}")))
}

/// The V2 encoding inside a deflated one, refused when it would inflate past what a valid
/// header and payload can need (a small value must not inflate to gigabytes).
fn inflate(bytes: &[u8]) -> Result<Vec<u8>, WireError> {
    let declared = usize::try_from(be_u32(bytes, 4)?).unwrap_or(usize::MAX);
    let compressed = &bytes[8..];
    let compressed = &compressed[..declared.min(compressed.len())];
    let limit = HEADER_LEN + max_payload();
    let mut plain = Vec::new();
    ZlibDecoder::new(compressed)
        .take(limit as u64 + 1)
        .read_to_end(&mut plain)
        .map_err(|error| refused(format!("its deflated data is corrupt ({error})")))?;
    if plain.len() > limit {
        return Err(refused(format!("it inflates past {limit} bytes")));
    }
    Ok(plain)
}

/// The largest payload a histogram within the limits can have: every counter a 9-byte varint.
fn max_payload() -> usize {
    let counts = Header::counts_len_of(u32::from(TREND_SIGFIGS), 1, MAX_HIGHEST);
    usize::try_from(counts.saturating_mul(9)).unwrap_or(usize::MAX)
}

/// The sizes a V2 header declares.
struct Header {
    significant_figures: u32,
    lowest: u64,
    highest: u64,
}

impl Header {
    /// Reads and checks the header of a plain V2 encoding.
    fn read(bytes: &[u8]) -> Result<Header, WireError> {
        if be_u32(bytes, 0)? != V2_COOKIE {
            return Err(refused("a deflated histogram must hold a plain one".into()));
        }
        let payload = u64::from(be_u32(bytes, 4)?);
        let present = (bytes.len() - HEADER_LEN.min(bytes.len())) as u64;
        if payload > present {
            return Err(refused(format!(
                "its header declares {payload} payload bytes but {present} follow"
            )));
        }
        let header = Header {
            significant_figures: be_u32(bytes, 12)?,
            lowest: be_u64(bytes, 16)?,
            highest: be_u64(bytes, 24)?,
        };
        if header.significant_figures > u32::from(TREND_SIGFIGS)
            || header.lowest == 0
            || header.lowest > header.highest / 2
            || header.highest > MAX_HIGHEST
        {
            return Err(refused(format!(
                "it declares {} significant figures and values {}..{} (a runner writes at most {TREND_SIGFIGS} figures and values up to {MAX_HIGHEST})",
                header.significant_figures, header.lowest, header.highest
            )));
        }
        Ok(header)
    }

    /// How many counters a histogram with these bounds allocates.
    fn counts_len(&self) -> u64 {
        Header::counts_len_of(self.significant_figures, self.lowest, self.highest)
    }

    /// HdrHistogram's layout: sub-buckets resolve `2 * 10^figures` values; each further bucket
    /// doubles the range until `highest` is covered; half of each bucket's sub-buckets are new.
    /// Computed in `u128`, so it ends for any bounds (at most 64 doublings): the fuzzer found
    /// that a `u64` shift wraps to 0 for a large `lowest` and then never passes `highest`.
    fn counts_len_of(figures: u32, lowest: u64, highest: u64) -> u64 {
        let single_unit_range = 2 * 10u64.pow(figures.min(5));
        let sub_bucket_magnitude = single_unit_range
            .next_power_of_two()
            .trailing_zeros()
            .max(1);
        let sub_bucket_count = 1u64 << sub_bucket_magnitude;
        let unit_magnitude = lowest.max(1).ilog2();
        let mut untrackable = u128::from(sub_bucket_count) << unit_magnitude;
        let mut buckets = 1u64;
        while untrackable <= u128::from(highest) {
            if untrackable > u128::from(u64::MAX / 2) {
                buckets += 1;
                break;
            }
            untrackable <<= 1;
            buckets += 1;
        }
        (buckets + 1).saturating_mul(sub_bucket_count / 2)
    }
}

fn be_u32(bytes: &[u8], at: usize) -> Result<u32, WireError> {
    bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| refused("it is cut short".into()))
}

fn be_u64(bytes: &[u8], at: usize) -> Result<u64, WireError> {
    bytes
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| refused("it is cut short".into()))
}

fn refused(reason: String) -> WireError {
    WireError(reason)
}

#[cfg(test)]
mod tests {
    use hdrhistogram::serialization::{Serializer, V2DeflateSerializer, V2Serializer};

    use super::*;

    fn header(payload: u32, figures: u32, lowest: u64, highest: u64) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend(V2_COOKIE.to_be_bytes());
        bytes.extend(payload.to_be_bytes());
        bytes.extend(0u32.to_be_bytes());
        bytes.extend(figures.to_be_bytes());
        bytes.extend(lowest.to_be_bytes());
        bytes.extend(highest.to_be_bytes());
        bytes.extend(1.0f64.to_be_bytes());
        bytes
    }

    fn deflated(plain: &[u8]) -> Vec<u8> {
        let mut compressed = Vec::new();
        flate2::read::ZlibEncoder::new(plain, flate2::Compression::default())
            .read_to_end(&mut compressed)
            .unwrap();
        let mut bytes = Vec::new();
        bytes.extend(V2_COMPRESSED_COOKIE.to_be_bytes());
        bytes.extend((compressed.len() as u32).to_be_bytes());
        bytes.extend(compressed);
        bytes
    }

    #[test]
    fn a_runners_histograms_read_back_in_both_encodings() {
        let mut histogram = Histogram::<u64>::new(TREND_SIGFIGS).unwrap();
        histogram.auto(true);
        for micros in [1, 250, 1_000, 60_000_000, 3_600_000_000] {
            histogram.record(micros).unwrap();
        }
        let mut plain = Vec::new();
        V2Serializer::new()
            .serialize(&histogram, &mut plain)
            .unwrap();
        let mut compressed = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&histogram, &mut compressed)
            .unwrap();
        for bytes in [plain, compressed] {
            let back = decode(&bytes, &mut CountsBudget::default()).unwrap();
            assert_eq!(back.len(), 5);
            assert_eq!(back.max(), histogram.max());
        }
    }

    #[test]
    fn the_counts_length_is_what_hdrhistogram_allocates() {
        for (figures, lowest, highest) in [(3, 1, 2), (3, 1, 60_000_000), (2, 1, MAX_HIGHEST)] {
            let histogram =
                Histogram::<u64>::new_with_bounds(lowest, highest, figures as u8).unwrap();
            assert_eq!(
                Header::counts_len_of(figures, lowest, highest),
                histogram.distinct_values() as u64,
                "{figures} {lowest}..{highest}"
            );
        }
    }

    #[test]
    fn declared_sizes_past_the_limits_are_refused_before_anything_is_allocated() {
        // A 4 GiB payload declared by a 40-byte value.
        let error = decode(&header(u32::MAX, 3, 1, 2), &mut CountsBudget::default());
        assert!(
            error
                .unwrap_err()
                .to_string()
                .contains("declares 4294967295 payload bytes but 0 follow")
        );
        // Bounds whose counters would take gigabytes.
        for (figures, highest) in [(5, MAX_HIGHEST), (3, u64::MAX / 2)] {
            let error = decode(
                &header(0, figures, 1, highest),
                &mut CountsBudget::default(),
            )
            .unwrap_err()
            .to_string();
            assert!(
                error.contains("a runner writes at most 3 figures"),
                "{error}"
            );
        }
        // A deflate bomb: 64 MiB of zeros deflate to a few KiB.
        let mut bomb = header(64 << 20, 3, 1, 2);
        bomb.resize(HEADER_LEN + (64 << 20), 0);
        let error = decode(&deflated(&bomb), &mut CountsBudget::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains("it inflates past"), "{error}");
        // A lowest value near the top (the fuzzer's find: the counts size never finished).
        for lowest in [1 << 60, u64::MAX, MAX_HIGHEST] {
            let error = decode(
                &header(0, 3, lowest, MAX_HIGHEST),
                &mut CountsBudget::default(),
            )
            .unwrap_err()
            .to_string();
            assert!(
                error.contains("a runner writes at most 3 figures"),
                "{error}"
            );
            assert!(Header::counts_len_of(3, lowest, MAX_HIGHEST) < 1 << 20);
        }
        // Garbage and truncation.
        for bytes in [&b""[..], &b"\x1c\x84\x93\x13"[..], &b"not a histogram"[..]] {
            assert!(decode(bytes, &mut CountsBudget::default()).is_err());
        }
    }

    #[test]
    fn many_histograms_share_one_budget_per_snapshot() {
        let value = header(0, 3, 1, MAX_HIGHEST);
        let mut budget = CountsBudget::default();
        let per_histogram = Header::counts_len_of(3, 1, MAX_HIGHEST);
        let fits = MAX_COUNTS_PER_SNAPSHOT / per_histogram;
        for _ in 0..fits {
            decode(&value, &mut budget).unwrap();
        }
        let error = decode(&value, &mut budget).unwrap_err().to_string();
        assert!(
            error.contains("declare over 8388608 counters together"),
            "{error}"
        );
    }
}
