//! Native histograms, as Prometheus models them: exponential buckets (a
//! `schema` from -4 to 8, each bucket `2^(2^-schema)` times wider than the
//! one before), a zero bucket, and sparse bucket lists described by spans.
//!
//! Two flavours: [`Histogram`] with integer counts whose buckets are stored
//! as deltas (each bucket's count minus the previous one's, as the
//! exposition formats and the TSDB encode them), and [`FloatHistogram`]
//! with float counts stored as absolute values (what rules and PromQL
//! produce). Koban carries them through the storage contract; storing and
//! querying them comes later (the TSDB refuses them, see
//! `koban_storage::Appender::append_histogram`).
//!
//! Schema -53 (custom bucket boundaries, `custom_values`) is Prometheus's
//! NHCB; it is represented so a later change need not touch the types.

/// Smallest exponential schema.
pub const MIN_SCHEMA: i32 = -4;
/// Largest exponential schema.
pub const MAX_SCHEMA: i32 = 8;
/// The schema of histograms with custom bucket boundaries (`custom_values`).
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

/// What the producer says about counter resets between this histogram and
/// the previous one of the series (Prometheus's `CounterResetHint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum CounterResetHint {
    /// Nothing is known: the storage detects resets itself.
    #[default]
    Unknown,
    /// A counter reset happened since the previous histogram.
    CounterReset,
    /// No counter reset happened since the previous histogram.
    NotCounterReset,
    /// The histogram is a gauge histogram: counts go up and down, resets
    /// are meaningless.
    Gauge,
}

/// A run of consecutive buckets: `offset` buckets after the end of the
/// previous span (for the first span: the index of its first bucket), then
/// `length` buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Span {
    pub offset: i32,
    pub length: u32,
}

/// Why a histogram is malformed (the producer's fault, reported with the
/// series by the caller).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HistogramError {
    #[error(
        "histogram has an invalid schema {0}, must be between -4 and 8 (or -53 for custom buckets)"
    )]
    InvalidSchema(i32),
    #[error("{side} side: spans need {need} buckets, have {have} buckets")]
    SpansBucketsMismatch {
        side: &'static str,
        need: u64,
        have: usize,
    },
    #[error("{side} side: span number {index} with offset {offset}: histogram has a span whose offset is negative")]
    NegativeSpanOffset {
        side: &'static str,
        index: usize,
        offset: i32,
    },
    #[error("{side} side: bucket number {index} has observation count of {count}: histogram has a bucket whose observation count is negative")]
    NegativeBucketCount {
        side: &'static str,
        index: usize,
        count: f64,
    },
    #[error("histogram has a negative zero bucket count or zero threshold")]
    NegativeZero,
    #[error("{buckets} observations found in buckets, but the Count field is {count}: histogram's observation count should equal the number of observations found in the buckets (in absence of NaN)")]
    CountMismatch { buckets: f64, count: f64 },
    #[error("{buckets} observations found in buckets, but the Count field is {count}: histogram's observation count should be at least the number of observations found in the buckets")]
    CountNotBigEnough { buckets: f64, count: f64 },
    #[error("histogram with custom buckets must have no negative buckets, no zero bucket and increasing custom values")]
    InvalidCustomBuckets,
}

/// A native histogram with integer counts (as scraped).
///
/// `positive_buckets` / `negative_buckets` hold one entry per bucket the
/// spans describe, each the difference to the previous bucket's count
/// (the first one absolute). `count` includes NaN observations, so with a
/// NaN `sum` it may exceed the buckets' total.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Histogram {
    pub counter_reset_hint: CounterResetHint,
    pub schema: i32,
    /// Width of the zero bucket: observations in `[-zero_threshold, zero_threshold]`.
    pub zero_threshold: f64,
    pub zero_count: u64,
    /// Total number of observations.
    pub count: u64,
    /// Sum of observations.
    pub sum: f64,
    pub positive_spans: Vec<Span>,
    pub negative_spans: Vec<Span>,
    /// Bucket counts as deltas.
    pub positive_buckets: Vec<i64>,
    pub negative_buckets: Vec<i64>,
    /// Upper bounds of the custom buckets (schema -53 only).
    pub custom_values: Vec<f64>,
}

/// A native histogram with float counts (as rules and PromQL produce).
/// Bucket counts are absolute, not deltas.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FloatHistogram {
    pub counter_reset_hint: CounterResetHint,
    pub schema: i32,
    pub zero_threshold: f64,
    pub zero_count: f64,
    pub count: f64,
    pub sum: f64,
    pub positive_spans: Vec<Span>,
    pub negative_spans: Vec<Span>,
    /// Bucket counts, absolute.
    pub positive_buckets: Vec<f64>,
    pub negative_buckets: Vec<f64>,
    /// Upper bounds of the custom buckets (schema -53 only).
    pub custom_values: Vec<f64>,
}

/// Checks that `spans` describe exactly `n` buckets with no negative
/// offset after the first span.
fn check_spans(side: &'static str, spans: &[Span], n: usize) -> Result<(), HistogramError> {
    let mut need = 0u64;
    for (i, s) in spans.iter().enumerate() {
        if i > 0 && s.offset < 0 {
            return Err(HistogramError::NegativeSpanOffset {
                side,
                index: i + 1,
                offset: s.offset,
            });
        }
        need += u64::from(s.length);
    }
    if need != n as u64 {
        return Err(HistogramError::SpansBucketsMismatch {
            side,
            need,
            have: n,
        });
    }
    Ok(())
}

fn check_schema(schema: i32, custom_values: &[f64]) -> Result<bool, HistogramError> {
    if schema == CUSTOM_BUCKETS_SCHEMA {
        if !custom_values.windows(2).all(|w| w[0] < w[1]) {
            return Err(HistogramError::InvalidCustomBuckets);
        }
        return Ok(true);
    }
    if !(MIN_SCHEMA..=MAX_SCHEMA).contains(&schema) {
        return Err(HistogramError::InvalidSchema(schema));
    }
    Ok(false)
}

fn check_count(buckets: f64, count: f64, sum: f64) -> Result<(), HistogramError> {
    if sum.is_nan() {
        if buckets > count {
            return Err(HistogramError::CountNotBigEnough { buckets, count });
        }
    } else if buckets != count {
        return Err(HistogramError::CountMismatch { buckets, count });
    }
    Ok(())
}

impl Histogram {
    /// Checks the histogram is well formed: a valid schema, spans matching
    /// the bucket lists, no negative bucket count once the deltas are
    /// summed up, and a `count` equal to the buckets' total (at least it
    /// when `sum` is NaN). Allocates nothing.
    pub fn validate(&self) -> Result<(), HistogramError> {
        let custom = check_schema(self.schema, &self.custom_values)?;
        if custom
            && (!self.negative_spans.is_empty()
                || !self.negative_buckets.is_empty()
                || self.zero_count != 0)
        {
            return Err(HistogramError::InvalidCustomBuckets);
        }
        check_spans(
            "positive",
            &self.positive_spans,
            self.positive_buckets.len(),
        )?;
        check_spans(
            "negative",
            &self.negative_spans,
            self.negative_buckets.len(),
        )?;
        if self.zero_threshold < 0.0 {
            return Err(HistogramError::NegativeZero);
        }
        let mut total = 0u128;
        for (side, deltas) in [
            ("positive", &self.positive_buckets),
            ("negative", &self.negative_buckets),
        ] {
            let mut c = 0i128;
            for (i, d) in deltas.iter().enumerate() {
                c += i128::from(*d);
                if c < 0 {
                    return Err(HistogramError::NegativeBucketCount {
                        side,
                        index: i + 1,
                        count: c as f64,
                    });
                }
                total += c as u128;
            }
        }
        total += u128::from(self.zero_count);
        check_count(total as f64, self.count as f64, self.sum)
    }

    /// The same histogram with float counts and absolute buckets.
    pub fn to_float(&self) -> FloatHistogram {
        let abs = |deltas: &[i64]| {
            let mut c = 0i64;
            deltas
                .iter()
                .map(|d| {
                    c = c.wrapping_add(*d);
                    c as f64
                })
                .collect()
        };
        FloatHistogram {
            counter_reset_hint: self.counter_reset_hint,
            schema: self.schema,
            zero_threshold: self.zero_threshold,
            zero_count: self.zero_count as f64,
            count: self.count as f64,
            sum: self.sum,
            positive_spans: self.positive_spans.clone(),
            negative_spans: self.negative_spans.clone(),
            positive_buckets: abs(&self.positive_buckets),
            negative_buckets: abs(&self.negative_buckets),
            custom_values: self.custom_values.clone(),
        }
    }
}

impl FloatHistogram {
    /// Checks the histogram is well formed, as [`Histogram::validate`]
    /// (bucket counts are absolute here). Allocates nothing.
    pub fn validate(&self) -> Result<(), HistogramError> {
        let custom = check_schema(self.schema, &self.custom_values)?;
        if custom
            && (!self.negative_spans.is_empty()
                || !self.negative_buckets.is_empty()
                || self.zero_count != 0.0)
        {
            return Err(HistogramError::InvalidCustomBuckets);
        }
        check_spans(
            "positive",
            &self.positive_spans,
            self.positive_buckets.len(),
        )?;
        check_spans(
            "negative",
            &self.negative_spans,
            self.negative_buckets.len(),
        )?;
        if self.zero_threshold < 0.0 || self.zero_count < 0.0 {
            return Err(HistogramError::NegativeZero);
        }
        let mut total = self.zero_count;
        for (side, buckets) in [
            ("positive", &self.positive_buckets),
            ("negative", &self.negative_buckets),
        ] {
            for (i, c) in buckets.iter().enumerate() {
                if *c < 0.0 {
                    return Err(HistogramError::NegativeBucketCount {
                        side,
                        index: i + 1,
                        count: *c,
                    });
                }
                total += c;
            }
        }
        // Float sums round, and NaN observations count without a bucket:
        // only a count clearly below the buckets' total is wrong.
        if self.count.is_nan() || self.count < total * (1.0 - 1e-9) {
            return Err(HistogramError::CountNotBigEnough {
                buckets: total,
                count: self.count,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h() -> Histogram {
        // Buckets 2, 3 (index 0, 1) and 1 (index 5): deltas 2, +1, -2.
        Histogram {
            schema: 0,
            zero_threshold: 1e-128,
            zero_count: 1,
            count: 7,
            sum: 12.5,
            positive_spans: vec![
                Span {
                    offset: 0,
                    length: 2,
                },
                Span {
                    offset: 3,
                    length: 1,
                },
            ],
            positive_buckets: vec![2, 1, -2],
            ..Histogram::default()
        }
    }

    #[test]
    fn a_well_formed_histogram_validates_and_converts() {
        let h = h();
        assert_eq!(h.validate(), Ok(()));
        let f = h.to_float();
        assert_eq!(f.positive_buckets, vec![2.0, 3.0, 1.0]);
        assert_eq!(f.count, 7.0);
        assert_eq!(f.validate(), Ok(()));
    }

    #[test]
    fn malformed_histograms_say_what_is_wrong() {
        let mut x = h();
        x.schema = 9;
        assert_eq!(x.validate(), Err(HistogramError::InvalidSchema(9)));
        let mut x = h();
        x.positive_buckets.pop();
        assert!(x
            .validate()
            .unwrap_err()
            .to_string()
            .contains("positive side: spans need 3 buckets, have 2 buckets"));
        let mut x = h();
        x.positive_buckets[2] = -4;
        assert!(matches!(
            x.validate(),
            Err(HistogramError::NegativeBucketCount { index: 3, .. })
        ));
        let mut x = h();
        x.count = 8;
        assert!(matches!(
            x.validate(),
            Err(HistogramError::CountMismatch { .. })
        ));
        // A NaN sum allows NaN observations beyond the buckets.
        x.sum = f64::NAN;
        assert_eq!(x.validate(), Ok(()));
        x.count = 6;
        assert!(matches!(
            x.validate(),
            Err(HistogramError::CountNotBigEnough { .. })
        ));
        let mut f = h().to_float();
        f.negative_buckets = vec![1.0];
        assert!(f.validate().is_err(), "no span for the negative bucket");
    }
}
