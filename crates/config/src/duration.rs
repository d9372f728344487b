//! Prometheus-style durations (`1h30m`, `15s`, `500ms`, `2d`, `1w`, `1y`).

use std::fmt;

/// A non-negative duration with millisecond precision, written and read in
/// Prometheus syntax: unit groups `y w d h m s ms`, largest first, each at most
/// once (`1h30m`, `90s`, `0`). A year is 365 days, a week 7 days.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(std::time::Duration);

const MS: u64 = 1;
const SEC: u64 = 1000 * MS;
const MIN: u64 = 60 * SEC;
const HOUR: u64 = 60 * MIN;
const DAY: u64 = 24 * HOUR;
const WEEK: u64 = 7 * DAY;
const YEAR: u64 = 365 * DAY;

/// Units in the order they must appear, with their length in milliseconds.
const UNITS: [(&str, u64); 7] = [
    ("y", YEAR),
    ("w", WEEK),
    ("d", DAY),
    ("h", HOUR),
    ("m", MIN),
    ("s", SEC),
    ("ms", MS),
];

impl Duration {
    pub const ZERO: Duration = Duration(std::time::Duration::ZERO);

    pub const fn from_secs(s: u64) -> Self {
        Duration(std::time::Duration::from_secs(s))
    }

    pub const fn from_millis(ms: u64) -> Self {
        Duration(std::time::Duration::from_millis(ms))
    }

    /// The duration as `std::time::Duration`.
    pub const fn as_std(self) -> std::time::Duration {
        self.0
    }

    /// Whole milliseconds.
    pub fn as_millis(self) -> u64 {
        // Durations are built from u64 milliseconds, so this cannot truncate.
        self.0.as_millis() as u64
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

impl From<std::time::Duration> for Duration {
    /// Truncates to whole milliseconds.
    fn from(d: std::time::Duration) -> Self {
        Duration::from_millis(d.as_millis().min(u64::MAX as u128) as u64)
    }
}

/// Error from [`parse_duration`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid duration string: {0:?}")]
pub struct DurationParseError(pub String);

/// Parses a Prometheus duration such as `1h30m`, `15s`, `500ms` or `0`.
///
/// Units (`y w d h m s ms`) must appear largest first and at most once; the
/// empty string, signs, fractions and overflows are errors.
pub fn parse_duration(s: &str) -> Result<Duration, DurationParseError> {
    let err = || DurationParseError(s.to_string());
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(err());
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut next_unit = 0; // index into UNITS of the smallest unit still allowed
    let mut total: u64 = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(err());
        }
        let n: u64 = s[start..i].parse().map_err(|_| err())?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[ustart..i];
        let idx = UNITS[next_unit..]
            .iter()
            .position(|(u, _)| *u == unit)
            .ok_or_else(err)?
            + next_unit;
        next_unit = idx + 1;
        let add = n.checked_mul(UNITS[idx].1).ok_or_else(err)?;
        total = total.checked_add(add).ok_or_else(err)?;
    }
    // Prometheus limits durations to what fits an int64 of nanoseconds.
    if total > (i64::MAX as u64) / 1_000_000 {
        return Err(err());
    }
    Ok(Duration::from_millis(total))
}

impl std::str::FromStr for Duration {
    type Err = DurationParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s)
    }
}

/// Prints as Prometheus does: `0s` for zero; `y`, `w`, `d` only when they
/// divide the remaining milliseconds exactly, then `h m s ms` greedily.
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, mult) in UNITS {
            let exact_only = mult >= DAY;
            if exact_only && !ms.is_multiple_of(mult) {
                continue;
            }
            let v = ms / mult;
            if v > 0 {
                write!(f, "{v}{unit}")?;
                ms -= v * mult;
            }
        }
        Ok(())
    }
}

impl<'de> serde::Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration like 15s, 1m or 1h30m")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
                parse_duration(v).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Duration, E> {
                // A bare 0 is the only number Prometheus accepts.
                if v == 0 {
                    Ok(Duration::ZERO)
                } else {
                    Err(E::custom(format!(
                        "not a valid duration string: \"{v}\" (missing unit)"
                    )))
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Duration, E> {
                if v == 0 {
                    Ok(Duration::ZERO)
                } else {
                    Err(E::custom(format!(
                        "not a valid duration string: \"{v}\" (missing unit)"
                    )))
                }
            }
        }
        d.deserialize_str(V)
    }
}

impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for (s, ms, printed) in [
            ("0", 0, "0s"),
            ("0s", 0, "0s"),
            ("15s", 15_000, "15s"),
            ("500ms", 500, "500ms"),
            ("1h30m", 5_400_000, "1h30m"),
            ("90m", 5_400_000, "1h30m"),
            ("2d", 2 * DAY, "2d"),
            ("1w", WEEK, "1w"),
            ("1y", YEAR, "1y"),
            ("1d12h", DAY + 12 * HOUR, "36h"),
            (
                "1y2w3d4h5m6s7ms",
                YEAR + 2 * WEEK + 3 * DAY + 4 * HOUR + 5 * MIN + 6 * SEC + 7,
                "9172h5m6s7ms",
            ),
        ] {
            let d = parse_duration(s).unwrap();
            assert_eq!(d.as_millis(), ms, "{s}");
            assert_eq!(d.to_string(), printed, "{s}");
        }
    }

    #[test]
    fn prints_weeks_only_when_exact() {
        assert_eq!(Duration::from_millis(14 * DAY).to_string(), "2w");
        assert_eq!(Duration::from_millis(10 * DAY).to_string(), "10d");
        assert_eq!(Duration::from_millis(DAY + 1).to_string(), "24h1ms");
    }

    #[test]
    fn rejects_bad_input() {
        for s in [
            "",
            "1",
            "s",
            "1x",
            "1m1h",
            "1s1s",
            "-1s",
            "1.5s",
            "1 s",
            "99999999999999999999y",
            "300000y",
        ] {
            assert!(parse_duration(s).is_err(), "{s:?} should fail");
        }
    }
}
