//! Evaluates template function calls (`${random(1, 10)}`, `${uuid()}`, `${now()}`, ...) with
//! the VU's random source and the system clock; the calls themselves are parsed and checked
//! by `stampede_crds::template`.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use chrono::{DateTime, Datelike as _, Timelike as _, Utc};
use stampede_crds::template::{Call, Reference, Resolve};

/// A resolver that evaluates function calls itself (with `rng`) and asks `inner` for every
/// other reference. It reuses one buffer for call results, so rendering allocates nothing
/// beyond the output string.
pub struct WithCalls<R, G> {
    /// The resolver for variables, env, data, setup values and builtins.
    pub inner: R,
    /// The random source for `random`, `randomString`, `uuid` and `pick`: each call returns 64
    /// uniformly random bits.
    pub rng: G,
    call_output: String,
}

impl<R, G> WithCalls<R, G>
where
    R: Resolve,
    G: FnMut() -> u64,
{
    /// Wraps `inner`, evaluating calls with `rng`.
    pub fn new(inner: R, rng: G) -> WithCalls<R, G> {
        WithCalls {
            inner,
            rng,
            call_output: String::new(),
        }
    }
}

impl<R: fmt::Debug, G> fmt::Debug for WithCalls<R, G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithCalls")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<R, G> Resolve for WithCalls<R, G>
where
    R: Resolve,
    G: FnMut() -> u64,
{
    fn resolve(&mut self, reference: &Reference) -> Option<Cow<'_, str>> {
        match reference {
            Reference::Call(call) => {
                self.call_output.clear();
                write_call(call, &mut self.rng, &mut self.call_output);
                Some(Cow::Borrowed(&self.call_output))
            }
            other => self.inner.resolve(other),
        }
    }
}

/// Evaluates `call` with `rng` (64 uniformly random bits per call) and the system clock,
/// appending the result to `output` (no allocation beyond its growth).
pub fn write_call(call: &Call, rng: &mut impl FnMut() -> u64, output: &mut String) {
    match call {
        Call::Random { min, max } => {
            let span = (i128::from(*max) - i128::from(*min) + 1) as u128;
            let offset = scale(rng(), span);
            let _ = write!(output, "{}", i128::from(*min) + offset as i128);
        }
        Call::RandomString(length) => {
            const ALPHABET: &[u8; 62] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
            output.reserve(*length);
            for _ in 0..*length {
                let index = scale(rng(), ALPHABET.len() as u128) as usize;
                output.push(char::from(ALPHABET[index % ALPHABET.len()]));
            }
        }
        Call::Uuid => {
            let high = rng();
            let low = rng();
            let random = (u128::from(high) << 64) | u128::from(low);
            let _ = write!(output, "{}", uuid_v4(random).hyphenated());
        }
        Call::Now => {
            let _ = write!(output, "{}", Utc::now().timestamp_millis());
        }
        Call::Timestamp => write_timestamp(Utc::now(), output),
        Call::Pick(choices) => {
            let index = scale(rng(), choices.len() as u128) as usize;
            if let Some(choice) = choices.get(index) {
                output.push_str(choice);
            }
        }
    }
}

/// Maps 64 random bits onto `0..span` (`span` <= 2^64) by multiply-and-shift, which avoids
/// the division of `%` and is as uniform.
fn scale(random: u64, span: u128) -> u128 {
    (u128::from(random) * span) >> 64
}

/// The version 4 UUID made from 128 random bits (most significant first), the version and
/// variant bits set over them.
pub fn uuid_v4(random: u128) -> uuid::Uuid {
    uuid::Builder::from_random_bytes(random.to_be_bytes()).into_uuid()
}

/// Writes `time` as RFC 3339 in UTC with milliseconds, e.g. `2024-02-29T23:59:59.999Z`.
pub fn write_timestamp(time: DateTime<Utc>, output: &mut String) {
    let _ = write!(
        output,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        time.year(),
        time.month(),
        time.day(),
        time.hour(),
        time.minute(),
        time.second(),
        time.timestamp_subsec_millis(),
    );
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use stampede_crds::template::parse;

    use super::*;

    /// A resolver over a fixed map, keyed by the reference's source form.
    struct MapResolver(HashMap<String, String>);

    impl Resolve for MapResolver {
        fn resolve(&mut self, reference: &Reference) -> Option<Cow<'_, str>> {
            self.0
                .get(&reference.to_string())
                .map(|value| Cow::Borrowed(value.as_str()))
        }
    }

    fn evaluate_call(call: &Call, rng: &mut impl FnMut() -> u64) -> String {
        let mut output = String::new();
        write_call(call, rng, &mut output);
        output
    }

    fn counter_rng() -> impl FnMut() -> u64 {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        move || {
            // splitmix64: deterministic, well spread bits for tests
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
    }

    #[test]
    fn with_calls_evaluates_calls_and_delegates_the_rest() {
        let template = parse("${vu}:${random(1, 6)}:${randomString(5)}:${pick('x')}").unwrap();
        let inner = MapResolver(HashMap::from([("${vu}".to_string(), "3".to_string())]));
        let mut resolver = WithCalls::new(inner, counter_rng());
        let rendered = template.render(&mut resolver).unwrap();
        let parts: Vec<&str> = rendered.split(':').collect();
        assert_eq!(parts[0], "3");
        let roll: i64 = parts[1].parse().unwrap();
        assert!((1..=6).contains(&roll), "{roll}");
        assert_eq!(parts[2].len(), 5);
        assert!(parts[2].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(parts[3], "x");
        let missing = parse("${iter}").unwrap().render(&mut resolver).unwrap_err();
        assert!(missing.to_string().contains("${iter}"));
    }

    #[test]
    fn random_covers_its_whole_range_and_extremes() {
        let mut rng = counter_rng();
        let mut seen = [false; 3];
        for _ in 0..200 {
            let value: i64 = evaluate_call(&Call::Random { min: -1, max: 1 }, &mut rng)
                .parse()
                .unwrap();
            seen[(value + 1) as usize] = true;
        }
        assert_eq!(seen, [true; 3]);
        let full = Call::Random {
            min: i64::MIN,
            max: i64::MAX,
        };
        assert_eq!(evaluate_call(&full, &mut || 0), i64::MIN.to_string());
        assert_eq!(evaluate_call(&full, &mut || u64::MAX), i64::MAX.to_string());
        assert_eq!(
            evaluate_call(&Call::Random { min: 5, max: 5 }, &mut || u64::MAX),
            "5"
        );
    }

    #[test]
    fn pick_uses_every_choice() {
        let call = Call::Pick(vec!["a".into(), "b".into(), "c".into()]);
        let mut rng = counter_rng();
        let picked: std::collections::HashSet<String> =
            (0..100).map(|_| evaluate_call(&call, &mut rng)).collect();
        assert_eq!(picked.len(), 3);
    }

    #[test]
    fn uuid_has_version_and_variant_bits() {
        let uuid = evaluate_call(&Call::Uuid, &mut || u64::MAX);
        assert_eq!(uuid, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let uuid = evaluate_call(&Call::Uuid, &mut || 0);
        assert_eq!(uuid, "00000000-0000-4000-8000-000000000000");
        let mut words = [0x0123_4567_89ab_cdefu64, 0xfedc_ba98_7654_3210].into_iter();
        let uuid = evaluate_call(&Call::Uuid, &mut || words.next().unwrap_or(0));
        assert_eq!(uuid, "01234567-89ab-4def-bedc-ba9876543210");
        assert_eq!(uuid_v4(0).get_version_num(), 4);
    }

    #[test]
    fn formats_rfc3339_timestamps() {
        let format = |millis| {
            let time = DateTime::from_timestamp_millis(millis).expect("in chrono's range");
            let mut text = String::new();
            write_timestamp(time, &mut text);
            text
        };
        assert_eq!(format(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(format(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
        assert_eq!(format(-86_400_000), "1969-12-31T00:00:00.000Z");
        assert_eq!(format(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(format(253_402_300_799_000), "9999-12-31T23:59:59.000Z");
    }

    #[test]
    fn now_and_timestamp_use_the_clock() {
        let now: i64 = evaluate_call(&Call::Now, &mut || 0).parse().unwrap();
        assert!(now > 1_700_000_000_000, "{now}");
        let timestamp = evaluate_call(&Call::Timestamp, &mut || 0);
        assert_eq!(timestamp.len(), "2024-02-29T23:59:59.999Z".len());
        assert!(
            timestamp.ends_with('Z') && timestamp.starts_with("20"),
            "{timestamp}"
        );
    }
}
