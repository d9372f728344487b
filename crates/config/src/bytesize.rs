//! Byte sizes with base-2 units (`10MB`, `1GiB`, `512KB`), as Prometheus's `body_size_limit`.

use std::fmt;

/// A byte count; `0` means "no limit" where used as a limit.
///
/// Parsing follows Prometheus (`units.Base2Bytes`): units `B`, `KB`/`KiB`,
/// `MB`/`MiB`, `GB`/`GiB`, `TB`/`TiB`, `PB`/`PiB`, `EB`/`EiB`, all powers of
/// 1024; a bare number is bytes. Groups may be concatenated (`1GB512MB`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

const UNITS: [(&str, u32); 7] = [
    ("B", 0),
    ("K", 1),
    ("M", 2),
    ("G", 3),
    ("T", 4),
    ("P", 5),
    ("E", 6),
];

/// Error from [`parse_byte_size`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid byte size: {0:?} (want e.g. 10MB, 1GiB or 0)")]
pub struct ByteSizeParseError(pub String);

/// Parses a byte size such as `10MB`, `1GiB`, `100` or `0`.
pub fn parse_byte_size(s: &str) -> Result<ByteSize, ByteSizeParseError> {
    let err = || ByteSizeParseError(s.to_string());
    let s_trim = s.trim();
    if s_trim.is_empty() {
        return Err(err());
    }
    if let Ok(n) = s_trim.parse::<u64>() {
        return Ok(ByteSize(n));
    }
    let b = s_trim.as_bytes();
    let mut i = 0;
    let mut total: u64 = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(err());
        }
        let n: u64 = s_trim[start..i].parse().map_err(|_| err())?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s_trim[ustart..i];
        let pow = match unit {
            "B" => 0,
            _ => {
                let (head, tail) = unit.split_at(unit.len().min(1));
                if tail != "B" && tail != "iB" {
                    return Err(err());
                }
                UNITS
                    .iter()
                    .find(|(u, _)| *u == head)
                    .map(|(_, p)| *p)
                    .filter(|p| *p > 0)
                    .ok_or_else(err)?
            }
        };
        let add = n.checked_mul(1u64 << (10 * pow)).ok_or_else(err)?;
        total = total.checked_add(add).ok_or_else(err)?;
    }
    Ok(ByteSize(total))
}

/// Prints with the largest unit that divides exactly (`10MiB`, `1536B` -> `1536B`... `0B`).
impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if v == 0 {
            return f.write_str("0B");
        }
        for (u, pow) in UNITS.iter().rev() {
            let m = 1u64 << (10 * pow);
            if *pow > 0 && v.is_multiple_of(m) {
                return write!(f, "{}{}iB", v / m, u);
            }
        }
        write!(f, "{v}B")
    }
}

impl<'de> serde::Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a byte size like 10MB or 1GiB")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse_byte_size(v).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("negative byte size {v}")))
            }
        }
        d.deserialize_any(V)
    }
}

impl serde::Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        for (s, v) in [
            ("0", 0),
            ("100", 100),
            ("100B", 100),
            ("10MB", 10 << 20),
            ("10MiB", 10 << 20),
            ("1GiB", 1 << 30),
            ("512KB", 512 << 10),
            ("1GB512MB", (1 << 30) + (512 << 20)),
        ] {
            assert_eq!(parse_byte_size(s).unwrap(), ByteSize(v), "{s}");
        }
        for s in ["", "MB", "10XB", "10mb", "-1MB", "10M"] {
            assert!(parse_byte_size(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn prints() {
        assert_eq!(ByteSize(10 << 20).to_string(), "10MiB");
        assert_eq!(ByteSize(1536).to_string(), "1536B");
        assert_eq!(ByteSize(2048).to_string(), "2KiB");
        assert_eq!(ByteSize(0).to_string(), "0B");
    }
}
