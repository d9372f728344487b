//! Request parameters as Prometheus reads them: from the URL query and, for
//! POST, from a form-encoded body; repeated keys such as `match[]` kept.

use chrono::DateTime;

/// All parameters of one request, in order.
#[derive(Debug, Default, Clone)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// Merges the URL query and a form body (`application/x-www-form-urlencoded`).
    pub fn parse(query: Option<&str>, body: &[u8]) -> Self {
        let mut v: Vec<(String, String)> = Vec::new();
        if let Some(q) = query {
            v.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        v.extend(form_urlencoded::parse(body).into_owned());
        Params(v)
    }

    /// The first value of `key`, if present and non-empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key` (e.g. `match[]`).
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Parses a time as Prometheus: unix seconds (float) or RFC 3339. Returns ms.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() {
            return Err(format!("cannot parse {s:?} to a valid timestamp"));
        }
        let ms = (f * 1000.0).round();
        if ms.abs() > 9.2e18 {
            return Err(format!("cannot parse {s:?} to a valid timestamp"));
        }
        return Ok(ms as i64);
    }
    // Prometheus's min/max time sentinels, as clients such as Grafana send.
    match s {
        "-292273086-05-16T16:47:06Z" => return Ok(i64::MIN / 1_000_000 * 1000),
        "292277025-08-18T07:12:54.999999999Z" => return Ok(i64::MAX / 1_000_000 * 1000),
        _ => {}
    }
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp_millis())
        .map_err(|_| format!("cannot parse {s:?} to a valid timestamp"))
}

/// Parses a duration as Prometheus: float seconds or a duration like `1m30s`. Returns ms.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        let ms = f * 1000.0;
        if !ms.is_finite() || ms.abs() > 9.2e18 {
            return Err(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok(ms.round() as i64);
    }
    koban_config::parse_duration(s)
        .map(|d| d.as_millis() as i64)
        .map_err(|_| format!("cannot parse {s:?} to a valid duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1435781451.781"), Ok(1435781451781));
        assert_eq!(parse_time("2015-07-01T20:10:51.781Z"), Ok(1435781451781));
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15"), Ok(15000));
        assert_eq!(parse_duration("0.5"), Ok(500));
        assert_eq!(parse_duration("1m30s"), Ok(90000));
        assert_eq!(parse_duration("100ms"), Ok(100));
        assert!(parse_duration("30s1m").is_err());
        assert!(parse_duration("abc").is_err());
    }

    #[test]
    fn repeated_keys() {
        let p = Params::parse(Some("match[]=up&match[]=foo&start=1"), b"end=2");
        assert_eq!(p.all("match[]"), vec!["up", "foo"]);
        assert_eq!(p.get("end"), Some("2"));
    }
}
