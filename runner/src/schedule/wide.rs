//! Exact 256-bit comparisons for the arrival-time quadratic, whose terms outgrow `u128`.

/// An unsigned 256-bit value as (high, low) 128-bit halves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct U256 {
    high: u128,
    low: u128,
}

impl U256 {
    /// The full product of two 128-bit values.
    pub(crate) fn product(a: u128, b: u128) -> U256 {
        const MASK: u128 = u64::MAX as u128;
        let (a_hi, a_lo) = (a >> 64, a & MASK);
        let (b_hi, b_lo) = (b >> 64, b & MASK);
        let lo_lo = a_lo * b_lo;
        let hi_lo = a_hi * b_lo;
        let lo_hi = a_lo * b_hi;
        let hi_hi = a_hi * b_hi;
        // Sum the middle terms' halves with the carries they produce.
        let middle = (lo_lo >> 64) + (hi_lo & MASK) + (lo_hi & MASK);
        let low = (middle << 64) | (lo_lo & MASK);
        let high = hi_hi + (hi_lo >> 64) + (lo_hi >> 64) + (middle >> 64);
        U256 { high, low }
    }

    /// `self + other`, saturating at the maximum.
    pub(crate) fn saturating_add(self, other: U256) -> U256 {
        let (low, carry) = self.low.overflowing_add(other.low);
        match self
            .high
            .checked_add(other.high)
            .and_then(|high| high.checked_add(u128::from(carry)))
        {
            Some(high) => U256 { high, low },
            None => U256 {
                high: u128::MAX,
                low: u128::MAX,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_are_exact() {
        let max = u128::MAX;
        let square = U256::product(max, max);
        // (2^128 - 1)^2 = 2^256 - 2^129 + 1
        assert_eq!(square.high, max - 1);
        assert_eq!(square.low, 1);
        assert_eq!(U256::product(1 << 100, 1 << 100).high, 1 << 72);
        assert!(U256::product(3, 1 << 127) > U256::product(1 << 127, 2));
        assert!(
            U256::product(u128::MAX, 2)
                < U256::product(2, 1 << 127).saturating_add(U256::product(u128::MAX, 1))
        );
        let small = U256::product(12345, 67890);
        assert_eq!(small, U256::product(67890, 12345));
        assert_eq!(small.low, 12345 * 67890);
        let sum = U256::product(max, 1).saturating_add(U256::product(1, 1));
        assert_eq!(sum, U256 { high: 1, low: 0 });
    }
}
