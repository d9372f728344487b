//! `time_intervals` / `mute_time_intervals`: named sets of times, parsed
//! as Alertmanager 0.25 parses them (`"09:00"`–`"17:00"`, `monday:friday`,
//! days of the month `1:5` or from the end `-3:-1`, `january:march` or
//! `1:3`, years `2020:2022`, IANA `location` names).

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// One entry of `time_intervals`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NamedTimeInterval {
    pub name: String,
    #[serde(default)]
    pub time_intervals: Vec<TimeInterval>,
}

/// One time interval: it contains an instant when every set field
/// contains it (an empty field contains everything).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeInterval {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub times: Vec<TimeRange>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub weekdays: Vec<WeekdayRange>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub days_of_month: Vec<DayOfMonthRange>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub months: Vec<MonthRange>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub years: Vec<YearRange>,
    /// An IANA time zone name (`Europe/Berlin`), `UTC` or `Local`; the
    /// times are in this zone. Checked against the system's zoneinfo, as
    /// Go's `time.LoadLocation` does.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "location",
        default
    )]
    pub location: Option<String>,
}

/// `start_time`–`end_time` as minutes of the day, `[start, end)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub start_minute: u32,
    pub end_minute: u32,
}

impl<'de> Deserialize<'de> for TimeRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            #[serde(default)]
            start_time: String,
            #[serde(default)]
            end_time: String,
        }
        let r = Raw::deserialize(d)?;
        if r.start_time.is_empty() || r.end_time.is_empty() {
            return Err(de::Error::custom(
                "both start and end times must be provided",
            ));
        }
        let start = parse_clock(&r.start_time).map_err(de::Error::custom)?;
        let end = parse_clock(&r.end_time).map_err(de::Error::custom)?;
        if start >= end {
            return Err(de::Error::custom(
                "start time cannot be equal or greater than end time",
            ));
        }
        Ok(TimeRange {
            start_minute: start,
            end_minute: end,
        })
    }
}

impl Serialize for TimeRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("start_time", &clock(self.start_minute))?;
        m.serialize_entry("end_time", &clock(self.end_minute))?;
        m.end()
    }
}

fn clock(minute: u32) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// `HH:MM` from `00:00` to `24:00`, two digits each.
fn parse_clock(s: &str) -> Result<u32, String> {
    let bad = || format!("couldn't parse timestamp {s}, invalid format");
    if s == "24:00" {
        return Ok(24 * 60);
    }
    let b = s.as_bytes();
    if b.len() != 5
        || b[2] != b':'
        || !s
            .bytes()
            .enumerate()
            .all(|(i, c)| i == 2 || c.is_ascii_digit())
    {
        return Err(bad());
    }
    let h: u32 = s[..2].parse().map_err(|_| bad())?;
    let m: u32 = s[3..].parse().map_err(|_| bad())?;
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Splits `a:b` (or a single `a`), lower-cased, and parses both ends
/// with `member`; returns the values and the ends' texts (for errors).
fn parse_range(
    s: &str,
    member: impl Fn(&str) -> Result<i32, String>,
) -> Result<(i32, i32, String, String), String> {
    let s = s.to_lowercase();
    match s.split_once(':') {
        Some((a, b)) => {
            if b.contains(':') {
                return Err(format!("couldn't parse range {s}, invalid format"));
            }
            Ok((member(a)?, member(b)?, a.to_string(), b.to_string()))
        }
        None => {
            let v = member(&s)?;
            Ok((v, v, s.clone(), s))
        }
    }
}

fn int(s: &str) -> Result<i32, String> {
    s.parse::<i32>()
        .map_err(|_| format!("strconv.Atoi: parsing {s:?}: invalid syntax"))
}

/// Accepts a string or an integer scalar as text (YAML `1` or `"1:5"`).
struct Text;

impl Visitor<'_> for Text {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a range such as \"1:5\"")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
}

macro_rules! range_type {
    ($(#[$doc:meta])* $name:ident, $parse:ident, $show:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name {
            pub begin: i32,
            pub end: i32,
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = d.deserialize_any(Text)?;
                let (begin, end) = $parse(&s).map_err(de::Error::custom)?;
                Ok($name { begin, end })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if self.begin == self.end {
                    s.serialize_str(&$show(self.begin))
                } else {
                    s.serialize_str(&format!("{}:{}", $show(self.begin), $show(self.end)))
                }
            }
        }
    };
}

range_type!(
    /// Days of the week, 0 = Sunday, inclusive.
    WeekdayRange,
    parse_weekdays,
    show_weekday
);
range_type!(
    /// Days of the month, 1..=31 or counted from the end -31..=-1, inclusive.
    DayOfMonthRange,
    parse_days_of_month,
    show_int
);
range_type!(
    /// Months, 1 = January, inclusive.
    MonthRange,
    parse_months,
    show_month
);
range_type!(
    /// Years, inclusive.
    YearRange,
    parse_years,
    show_int
);

fn show_int(v: i32) -> String {
    v.to_string()
}

fn show_weekday(v: i32) -> String {
    WEEKDAYS
        .get(v as usize)
        .map_or_else(|| v.to_string(), |s| s.to_string())
}

fn show_month(v: i32) -> String {
    MONTHS
        .get((v - 1) as usize)
        .map_or_else(|| v.to_string(), |s| s.to_string())
}

fn parse_weekdays(s: &str) -> Result<(i32, i32), String> {
    let (b, e, _, _) = parse_range(s, |d| {
        WEEKDAYS
            .iter()
            .position(|w| *w == d)
            .map(|i| i as i32)
            .ok_or_else(|| format!("{d} is not a valid weekday"))
    })?;
    if b > e {
        return Err("start day cannot be before end day".into());
    }
    Ok((b, e))
}

fn parse_days_of_month(s: &str) -> Result<(i32, i32), String> {
    let (b, e, _, _) = parse_range(s, int)?;
    for d in [b, e] {
        if d == 0 || !(-31..=31).contains(&d) {
            return Err(format!("{d} is not a valid day of the month: out of range"));
        }
    }
    // A positive start with a negative end (`1:-1`) is resolved per month.
    if b < 0 && e > 0 {
        return Err("end day must be negative if start day is negative".into());
    }
    if (b > 0) == (e > 0) && b > e {
        return Err(format!("end day {e} is always before start day {b}"));
    }
    Ok((b, e))
}

/// Months by name or number; as Alertmanager 0.25, numbers are not
/// range-checked (`13` is accepted and matches nothing).
fn parse_months(s: &str) -> Result<(i32, i32), String> {
    let (b, e, bs, es) = parse_range(s, |m| match MONTHS.iter().position(|n| *n == m) {
        Some(i) => Ok(i as i32 + 1),
        None => m.parse().map_err(|_| format!("{m} is not a valid month")),
    })?;
    if b > e {
        return Err(format!("end month {es} is before start month {bs}"));
    }
    Ok((b, e))
}

fn parse_years(s: &str) -> Result<(i32, i32), String> {
    let (b, e, bs, es) = parse_range(s, int)?;
    if b > e {
        return Err(format!("end year {es} is before start year {bs}"));
    }
    Ok((b, e))
}

fn location<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    check_location(&s).map_err(de::Error::custom)?;
    Ok(Some(s))
}

/// Checks a location name as Go's `time.LoadLocation` does on Linux: ""
/// `UTC` and `Local` are built in; other names must be a zoneinfo file
/// under `$ZONEINFO` or `/usr/share/zoneinfo`.
pub(crate) fn check_location(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "UTC" || name == "Local" {
        return Ok(());
    }
    if name.contains("..") || name.starts_with('/') || name.starts_with('\\') {
        return Err("time: invalid location name".into());
    }
    let mut dirs: Vec<std::path::PathBuf> = Vec::new();
    if let Some(z) = std::env::var_os("ZONEINFO") {
        dirs.push(z.into());
    }
    for d in [
        "/usr/share/zoneinfo/",
        "/usr/share/lib/zoneinfo/",
        "/usr/lib/locale/TZ/",
    ] {
        dirs.push(d.into());
    }
    for d in dirs {
        if let Ok(b) = std::fs::read(d.join(name)) {
            if b.starts_with(b"TZif") {
                return Ok(());
            }
        }
    }
    Err(format!("unknown time zone {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks() {
        assert_eq!(parse_clock("09:00"), Ok(540));
        assert_eq!(parse_clock("24:00"), Ok(1440));
        assert!(parse_clock("9:00").is_err());
        assert!(parse_clock("24:01").is_err());
        assert!(parse_clock("12:60").is_err());
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_weekdays("Monday:Friday"), Ok((1, 5)));
        assert_eq!(parse_weekdays("sunday"), Ok((0, 0)));
        assert!(parse_weekdays("friday:monday").is_err());
        assert!(parse_weekdays("funday").is_err());
        assert_eq!(parse_days_of_month("-3:-1"), Ok((-3, -1)));
        assert_eq!(parse_days_of_month("1:-1"), Ok((1, -1)));
        assert!(parse_days_of_month("0").is_err());
        assert!(parse_days_of_month("32").is_err());
        assert_eq!(parse_months("january:march"), Ok((1, 3)));
        assert_eq!(parse_months("2:12"), Ok((2, 12)));
        assert_eq!(parse_months("13"), Ok((13, 13)));
        assert_eq!(
            parse_months("march:january").unwrap_err(),
            "end month january is before start month march"
        );
        assert_eq!(
            parse_days_of_month("5:1").unwrap_err(),
            "end day 1 is always before start day 5"
        );
        assert!(parse_days_of_month("-1:5").is_err());
        assert_eq!(parse_years("2020:2022"), Ok((2020, 2022)));
        assert!(parse_years("2022:2020").is_err());
        assert!(parse_range("1:2:3", int).is_err());
    }

    #[test]
    fn locations() {
        assert!(check_location("UTC").is_ok());
        assert!(check_location("Local").is_ok());
        assert!(check_location("Mars/Olympus").is_err());
        assert!(check_location("../etc/passwd").is_err());
    }
}
