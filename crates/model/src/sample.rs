//! Samples and the staleness marker.

/// The bit pattern Prometheus uses to mark a series stale: a signalling NaN
/// distinct from the NaN a user may write.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker as a float; compare with [`is_stale_nan`], never `==`.
pub const STALE_NAN: f64 = f64::from_bits(STALE_NAN_BITS);

/// True if `v` is exactly the staleness marker (bit for bit).
#[inline]
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One float sample: a timestamp in milliseconds since the Unix epoch and a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub t: i64,
    pub v: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_marker_is_not_an_ordinary_nan() {
        assert!(is_stale_nan(STALE_NAN));
        assert!(STALE_NAN.is_nan());
        assert!(!is_stale_nan(f64::NAN));
    }
}
