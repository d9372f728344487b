//! Backfill: turning an OpenMetrics text file into fully compacted blocks
//! (`koban tsdb create-blocks-from openmetrics FILE DIR`).
//!
//! The file is streamed once. Samples are grouped per series and per 2h
//! window; whenever more than [`BackfillOptions::flush_samples`] are held,
//! every window is written out as a level-1 block into a staging directory.
//! At the end, the staged blocks are compacted into one block per
//! `max_block_duration` window in the output directory and the staging
//! directory is removed. Memory is bounded by `flush_samples` whatever the
//! input order (series by series, as `history.py` writes, or scrape by scrape).

use crate::block::{Block, BlockError, BlockWriter};
use crate::compact::{compact, range_start, MIN_BLOCK_RANGE_MS};
use koban_model::Labels;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Tuning for [`create_blocks_from_openmetrics_with`].
#[derive(Debug, Clone)]
pub struct BackfillOptions {
    /// Width of the final blocks (aligned to multiples of it). Default 486h
    /// (the largest leveled compaction range under 31 days).
    pub max_block_duration: i64,
    /// Samples held in memory before staging blocks are written.
    pub flush_samples: usize,
}

impl Default for BackfillOptions {
    fn default() -> Self {
        BackfillOptions {
            max_block_duration: 486 * 3600 * 1000,
            flush_samples: 8 << 20,
        }
    }
}

/// What a backfill did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackfillStats {
    pub samples: u64,
    pub series: u64,
    pub lines: u64,
    pub bytes_read: u64,
    pub min_time: i64,
    pub max_time: i64,
    /// The final blocks' directories.
    pub blocks: Vec<PathBuf>,
}

/// Imports `input` into blocks under `out_dir` with default options.
/// `progress(bytes_read, total_bytes)` is called now and then.
pub fn create_blocks_from_openmetrics(
    input: &Path,
    out_dir: &Path,
    progress: impl FnMut(u64, u64),
) -> Result<BackfillStats, BlockError> {
    create_blocks_from_openmetrics_with(input, out_dir, &BackfillOptions::default(), progress)
}

struct Staging {
    dir: PathBuf,
    /// window start -> series index -> samples
    windows: BTreeMap<i64, HashMap<usize, Vec<(i64, f64)>>>,
    held: usize,
    blocks: Vec<PathBuf>,
}

impl Staging {
    fn flush(&mut self, series: &[Labels]) -> Result<(), BlockError> {
        for (_, w) in std::mem::take(&mut self.windows) {
            let mut bw = BlockWriter::new(&self.dir)?;
            for (idx, samples) in w {
                bw.add_series(series[idx].clone(), &samples)?;
            }
            if let Some(d) = bw.finish()? {
                self.blocks.push(d);
            }
        }
        self.held = 0;
        Ok(())
    }
}

/// Like [`create_blocks_from_openmetrics`] with explicit options.
///
/// On error nothing new is left in `out_dir` (the staging directory is
/// removed; final blocks are only written after the whole input parsed).
pub fn create_blocks_from_openmetrics_with(
    input: &Path,
    out_dir: &Path,
    opts: &BackfillOptions,
    progress: impl FnMut(u64, u64),
) -> Result<BackfillStats, BlockError> {
    let staging_dir = out_dir.join(".backfill.tmp");
    let r = backfill(input, out_dir, &staging_dir, opts, progress);
    if r.is_err() {
        let _ = std::fs::remove_dir_all(&staging_dir);
    }
    r
}

fn backfill(
    input: &Path,
    out_dir: &Path,
    staging_dir: &Path,
    opts: &BackfillOptions,
    mut progress: impl FnMut(u64, u64),
) -> Result<BackfillStats, BlockError> {
    let f = std::fs::File::open(input).map_err(|e| BlockError::io(input, e))?;
    let total = f.metadata().map_err(|e| BlockError::io(input, e))?.len();
    let mut r = BufReader::with_capacity(1 << 20, f);
    std::fs::create_dir_all(out_dir).map_err(|e| BlockError::io(out_dir, e))?;
    let staging_dir = staging_dir.to_path_buf();
    if staging_dir.exists() {
        std::fs::remove_dir_all(&staging_dir).map_err(|e| BlockError::io(&staging_dir, e))?;
    }
    std::fs::create_dir_all(&staging_dir).map_err(|e| BlockError::io(&staging_dir, e))?;
    let mut st = Staging {
        dir: staging_dir.clone(),
        windows: BTreeMap::new(),
        held: 0,
        blocks: Vec::new(),
    };
    let mut stats = BackfillStats {
        min_time: i64::MAX,
        max_time: i64::MIN,
        ..Default::default()
    };

    let mut series: Vec<Labels> = Vec::new();
    let mut by_text: HashMap<Box<[u8]>, usize> = HashMap::new();
    let mut last_text: Vec<u8> = Vec::new();
    let mut last_idx = usize::MAX;
    let mut line = Vec::with_capacity(256);
    let mut bytes = 0u64;
    let mut next_progress = 0u64;
    let mut saw_eof = false;
    loop {
        line.clear();
        let n = (&mut r)
            .take(1 << 24)
            .read_until(b'\n', &mut line)
            .map_err(|e| BlockError::io(input, e))?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        stats.lines += 1;
        let lineno = stats.lines;
        let perr = |reason: String| BlockError::Parse {
            path: input.to_path_buf(),
            line: lineno,
            reason,
        };
        if line.last() == Some(&b'\n') {
            line.pop();
        } else if n == 1 << 24 {
            return Err(perr("line longer than 16 MiB".into()));
        }
        if saw_eof {
            if line.is_empty() {
                continue;
            }
            return Err(perr("data after # EOF".into()));
        }
        if line.is_empty() {
            continue;
        }
        if line[0] == b'#' {
            if line.as_slice() == b"# EOF" {
                saw_eof = true;
            }
            continue;
        }
        let s = parse_sample_line(&line).map_err(perr)?;
        let idx = if s.series_text == last_text.as_slice() {
            last_idx
        } else {
            let idx = match by_text.get(s.series_text) {
                Some(&i) => i,
                None => {
                    let ls = parse_series(s.series_text).map_err(perr)?;
                    series.push(ls);
                    by_text.insert(s.series_text.into(), series.len() - 1);
                    series.len() - 1
                }
            };
            last_text.clear();
            last_text.extend_from_slice(s.series_text);
            last_idx = idx;
            idx
        };
        stats.samples += 1;
        stats.min_time = stats.min_time.min(s.t);
        stats.max_time = stats.max_time.max(s.t);
        st.windows
            .entry(range_start(s.t, MIN_BLOCK_RANGE_MS))
            .or_default()
            .entry(idx)
            .or_default()
            .push((s.t, s.v));
        st.held += 1;
        if st.held >= opts.flush_samples {
            st.flush(&series)?;
        }
        if bytes >= next_progress {
            progress(bytes, total);
            next_progress = bytes + (16 << 20);
        }
    }
    st.flush(&series)?;
    stats.bytes_read = bytes;
    stats.series = series.len() as u64;
    drop(by_text);
    drop(series);

    // Compact the staged blocks into one block per max_block_duration window.
    let mut groups: BTreeMap<i64, Vec<Block>> = BTreeMap::new();
    for d in &st.blocks {
        let b = Block::open(d)?;
        groups
            .entry(range_start(b.meta().min_time, opts.max_block_duration))
            .or_default()
            .push(b);
    }
    for (_, g) in groups {
        if g.len() == 1 {
            let src = g[0].dir().to_path_buf();
            let dst = out_dir.join(&g[0].meta().ulid);
            drop(g);
            std::fs::rename(&src, &dst).map_err(|e| BlockError::io(&dst, e))?;
            stats.blocks.push(dst);
        } else if let Some(b) = compact(&g, out_dir)? {
            stats.blocks.push(b.dir().to_path_buf());
        }
    }
    std::fs::remove_dir_all(&staging_dir).map_err(|e| BlockError::io(&staging_dir, e))?;
    progress(bytes, total);
    if stats.samples == 0 {
        stats.min_time = 0;
        stats.max_time = 0;
    }
    Ok(stats)
}

struct SampleLine<'a> {
    series_text: &'a [u8],
    v: f64,
    t: i64,
}

/// Splits `name{labels} value timestamp [# exemplar]`.
fn parse_sample_line(line: &[u8]) -> Result<SampleLine<'_>, String> {
    // The series text ends at the first space outside braces/quotes.
    let mut i = 0;
    let mut in_braces = false;
    let mut in_quotes = false;
    while i < line.len() {
        let c = line[i];
        if in_quotes {
            if c == b'\\' {
                i += 1;
            } else if c == b'"' {
                in_quotes = false;
            }
        } else if c == b'"' && in_braces {
            in_quotes = true;
        } else if c == b'{' {
            in_braces = true;
        } else if c == b'}' {
            in_braces = false;
        } else if c == b' ' && !in_braces {
            break;
        }
        i += 1;
    }
    if i >= line.len() {
        return Err("expected a value after the series".into());
    }
    let series_text = &line[..i];
    let rest = std::str::from_utf8(&line[i + 1..]).map_err(|_| "invalid UTF-8".to_string())?;
    let rest = match rest.find(" # ") {
        Some(p) => &rest[..p],
        None => rest,
    };
    let mut it = rest.split(' ');
    let vs = it.next().unwrap_or("");
    let ts = it
        .next()
        .ok_or_else(|| "sample without a timestamp".to_string())?;
    if it.next().is_some() {
        return Err("unexpected text after the timestamp".into());
    }
    let v = parse_value(vs).ok_or_else(|| format!("invalid value {vs:?}"))?;
    let t = parse_ts_seconds(ts).ok_or_else(|| format!("invalid timestamp {ts:?}"))?;
    Ok(SampleLine { series_text, v, t })
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ if s
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E')) =>
        {
            s.parse().ok()
        }
        _ => None,
    }
}

/// Float seconds to integer milliseconds, exactly for plain decimals.
fn parse_ts_seconds(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let (ip, fp) = body.split_once('.').unwrap_or((body, ""));
    if !ip.is_empty()
        && ip.bytes().all(|b| b.is_ascii_digit())
        && fp.bytes().all(|b| b.is_ascii_digit())
        && ip.len() <= 15
    {
        let secs: i64 = ip.parse().ok()?;
        let mut ms = 0i64;
        for (k, b) in fp.bytes().take(3).enumerate() {
            ms += i64::from(b - b'0') * [100, 10, 1][k];
        }
        // Round on the fourth fractional digit.
        if fp.as_bytes().get(3).is_some_and(|&b| b >= b'5') {
            ms += 1;
        }
        let v = secs.checked_mul(1000)?.checked_add(ms)?;
        return Some(if neg { -v } else { v });
    }
    let f: f64 = s.parse().ok()?;
    let ms = (f * 1000.0).round();
    (ms.is_finite() && ms.abs() < 9.0e18).then_some(ms as i64)
}

/// Parses `name{a="x",b="y\"z"}` into labels.
fn parse_series(text: &[u8]) -> Result<Labels, String> {
    let s = std::str::from_utf8(text).map_err(|_| "invalid UTF-8 in series".to_string())?;
    let (name, rest) = match s.find('{') {
        Some(p) => (&s[..p], &s[p..]),
        None => (s, ""),
    };
    if !is_metric_name(name) {
        return Err(format!("invalid metric name {name:?}"));
    }
    let mut pairs: Vec<(String, String)> =
        vec![(koban_model::METRIC_NAME.to_string(), name.to_string())];
    if !rest.is_empty() {
        let body = rest
            .strip_prefix('{')
            .and_then(|r| r.strip_suffix('}'))
            .ok_or("unterminated label set")?;
        let b = body.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let start = i;
            while i < b.len() && b[i] != b'=' {
                i += 1;
            }
            let lname = body[start..i].trim();
            if !koban_model::labels::is_valid_label_name(lname) {
                return Err(format!("invalid label name {lname:?}"));
            }
            i += 1;
            if b.get(i) != Some(&b'"') {
                return Err(format!("label {lname}: expected a quoted value"));
            }
            i += 1;
            let mut val = String::new();
            let mut chunk_start = i;
            loop {
                match b.get(i) {
                    None => return Err(format!("label {lname}: unterminated value")),
                    Some(b'"') => {
                        val.push_str(&body[chunk_start..i]);
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        val.push_str(&body[chunk_start..i]);
                        match b.get(i + 1) {
                            Some(b'\\') => val.push('\\'),
                            Some(b'"') => val.push('"'),
                            Some(b'n') => val.push('\n'),
                            _ => return Err(format!("label {lname}: invalid escape")),
                        }
                        i += 2;
                        chunk_start = i;
                    }
                    Some(_) => i += 1,
                }
            }
            if pairs.iter().any(|(n, _)| n == lname) {
                return Err(format!("duplicate label {lname}"));
            }
            pairs.push((lname.to_string(), val));
            match b.get(i) {
                None => break,
                Some(b',') => i += 1,
                Some(_) => return Err("expected ',' between labels".into()),
            }
        }
    }
    Ok(Labels::from_pairs(pairs))
}

fn is_metric_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_' || b[0] == b':')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines() {
        let s = parse_sample_line(br#"up{job="n\"x",instance="a b"} 1.5 1700000000.25"#).unwrap();
        assert_eq!(s.t, 1_700_000_000_250);
        assert_eq!(s.v, 1.5);
        let ls = parse_series(s.series_text).unwrap();
        assert_eq!(ls.get("job"), "n\"x");
        assert_eq!(ls.get("instance"), "a b");
        assert_eq!(ls.metric_name(), "up");
        let s = parse_sample_line(b"x 2 17 # {a=\"b\"} 1 2").unwrap();
        assert_eq!((s.t, s.v), (17_000, 2.0));
        assert!(parse_sample_line(b"x 2").is_err());
        assert!(parse_sample_line(b"x abc 1").is_err());
        assert!(parse_series(b"x{a=b}").is_err());
        assert!(parse_series(b"x{a=\"b\"").is_err());
        assert!(parse_value("NaN").unwrap().is_nan());
        assert_eq!(parse_ts_seconds("1.5e3"), Some(1_500_000));
        assert_eq!(parse_ts_seconds("-1.0005"), Some(-1001));
    }
}
