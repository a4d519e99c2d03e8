//! Kubernetes resource quantities (`500m`, `2`, `1.5Gi`, `1e3`) as exact values, to compare a
//! LoadTest's runner resources with the operator's caps. k8s-openapi keeps a quantity as its
//! text; the parsers on offer target older k8s-openapi releases, so this is the grammar of
//! `k8s.io/apimachinery/pkg/api/resource` (sign, decimal number, one suffix), to nano-units.

use std::cmp::Ordering;
use std::fmt;

/// A non-negative quantity, kept with the text it was written as.
#[derive(Debug, Clone)]
pub struct Quantity {
    text: String,
    /// The value in units of 10⁻⁹, rounded up (as Kubernetes rounds to its nano precision).
    nanos: u128,
}

/// Why a text is not a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// No number.
    #[error("no number")]
    NoNumber,
    /// A minus sign: resources are never negative.
    #[error("negative")]
    Negative,
    /// An unknown suffix.
    #[error(
        "unknown suffix {0:?} (use m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or e<exponent>)"
    )]
    Suffix(String),
    /// Beyond what any node has, by far.
    #[error("too large")]
    TooLarge,
}

impl Quantity {
    /// Parses `text` as the API server does.
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        let unsigned = match text.as_bytes().first() {
            Some(b'-') => return Err(QuantityError::Negative),
            Some(b'+') => &text[1..],
            _ => text,
        };
        let number_end = unsigned
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(unsigned.len());
        let (number, suffix) = unsigned.split_at(number_end);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(QuantityError::NoNumber);
        }
        let mut mantissa: u128 = 0;
        for digit in whole.bytes().chain(fraction.bytes()) {
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(u128::from(digit - b'0')))
                .ok_or(QuantityError::TooLarge)?;
        }
        let (binary_power, decimal_exponent) = suffix_scale(suffix)?;
        // value = mantissa · 2^binary · 10^(exponent − fraction digits); nanos = value · 10⁹.
        let fraction_digits = i32::try_from(fraction.len()).map_err(|_| QuantityError::TooLarge)?;
        let exponent = decimal_exponent + 9 - fraction_digits;
        let scaled = mantissa
            .checked_mul(
                1u128
                    .checked_shl(binary_power)
                    .ok_or(QuantityError::TooLarge)?,
            )
            .ok_or(QuantityError::TooLarge)?;
        let nanos = if exponent >= 0 {
            10u128
                .checked_pow(exponent.unsigned_abs())
                .and_then(|scale| scaled.checked_mul(scale))
                .ok_or(QuantityError::TooLarge)?
        } else {
            match 10u128.checked_pow(exponent.unsigned_abs()) {
                Some(scale) => scaled.div_ceil(scale),
                // Smaller than a nano-unit: rounds up to one, unless it is zero.
                None => u128::from(scaled != 0),
            }
        };
        Ok(Quantity {
            text: text.to_string(),
            nanos,
        })
    }
}

/// (power of two, power of ten) of a suffix.
fn suffix_scale(suffix: &str) -> Result<(u32, i32), QuantityError> {
    let decimal = |exponent: i32| Ok((0, exponent));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => Ok((10, 0)),
        "Mi" => Ok((20, 0)),
        "Gi" => Ok((30, 0)),
        "Ti" => Ok((40, 0)),
        "Pi" => Ok((50, 0)),
        "Ei" => Ok((60, 0)),
        _ => {
            let exponent = suffix
                .strip_prefix(['e', 'E'])
                .and_then(|digits| digits.parse::<i32>().ok())
                .filter(|exponent| exponent.abs() <= 60)
                .ok_or_else(|| QuantityError::Suffix(suffix.to_string()))?;
            decimal(exponent)
        }
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.nanos.cmp(&other.nanos))
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(text: &str) -> u128 {
        Quantity::parse(text).unwrap().nanos
    }

    #[test]
    fn reads_every_suffix_form_exactly() {
        assert_eq!(nanos("500m"), 500_000_000);
        assert_eq!(nanos("0.5"), 500_000_000);
        assert_eq!(nanos(".5"), 500_000_000);
        assert_eq!(nanos("+2"), 2_000_000_000);
        assert_eq!(nanos("1Ki"), 1024 * 1_000_000_000);
        assert_eq!(nanos("1.5Gi"), 1_610_612_736 * 1_000_000_000);
        assert_eq!(nanos("1e3"), nanos("1k"));
        assert_eq!(nanos("1E3"), nanos("1000"));
        assert_eq!(nanos("2E"), 2 * 10u128.pow(27));
        assert_eq!(nanos("1n"), 1);
        assert_eq!(nanos("0.1n"), 1, "rounded up to the nano precision");
        assert_eq!(nanos("0"), 0);
        assert!(Quantity::parse("8Gi").unwrap() > Quantity::parse("8G").unwrap());
        assert!(Quantity::parse("4").unwrap() == Quantity::parse("4000m").unwrap());
    }

    #[test]
    fn refuses_what_the_api_server_refuses() {
        for (text, error) in [
            ("", QuantityError::NoNumber),
            ("Gi", QuantityError::NoNumber),
            ("1.2.3", QuantityError::NoNumber),
            ("-1", QuantityError::Negative),
            ("1GB", QuantityError::Suffix("GB".into())),
            ("1 Gi", QuantityError::Suffix(" Gi".into())),
            ("1e999", QuantityError::Suffix("e999".into())),
            (
                "99999999999999999999999999999999999999999",
                QuantityError::TooLarge,
            ),
            ("1e60", QuantityError::TooLarge),
        ] {
            assert_eq!(Quantity::parse(text).unwrap_err(), error, "{text:?}");
        }
    }
}
