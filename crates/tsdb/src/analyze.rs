//! `koban tsdb analyze`: cardinality and churn statistics of a block, in the
//! spirit of `promtool tsdb analyze`.

use crate::block::{Block, BlockError};
use crate::db::is_block_id;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Entries shown per list by default.
pub const DEFAULT_LIMIT: usize = 20;

/// What to analyze.
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    /// Block id to analyze (None: the newest block).
    pub block_id: Option<String>,
    /// Entries per list.
    pub limit: usize,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            block_id: None,
            limit: DEFAULT_LIMIT,
        }
    }
}

/// Statistics of one block. `Display` prints them as `promtool tsdb
/// analyze` does; lists are sorted by count (descending), then name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnalyzeReport {
    pub block_id: String,
    pub block_dir: PathBuf,
    pub min_time: i64,
    /// Exclusive.
    pub max_time: i64,
    pub series: u64,
    pub samples: u64,
    pub chunks: u64,
    pub label_names: u64,
    /// Unique label pairs.
    pub postings: u64,
    /// Label pairs summed over series.
    pub postings_entries: u64,
    /// Label pair -> series in it whose samples don't span the whole block.
    pub churn_label_pairs: Vec<(String, u64)>,
    /// Label name -> such series having it.
    pub churn_label_names: Vec<(String, u64)>,
    /// Label pair -> series.
    pub most_common_label_pairs: Vec<(String, u64)>,
    /// Label name -> summed length of its distinct values.
    pub label_value_lengths: Vec<(String, u64)>,
    /// Label name -> number of distinct values.
    pub highest_cardinality_labels: Vec<(String, u64)>,
    /// Metric name -> series.
    pub highest_cardinality_metric_names: Vec<(String, u64)>,
}

/// Analyzes the newest block under `dir` (a data directory), or the block
/// `dir` itself when it holds a `meta.json`.
pub fn analyze(dir: &Path) -> Result<AnalyzeReport, BlockError> {
    analyze_with(dir, &AnalyzeOptions::default())
}

/// [`analyze`] with options.
pub fn analyze_with(dir: &Path, opts: &AnalyzeOptions) -> Result<AnalyzeReport, BlockError> {
    let block_dir = if dir.join("meta.json").is_file() {
        dir.to_path_buf()
    } else {
        pick_block(dir, opts)?
    };
    let b = Block::open(&block_dir)?;
    analyze_block(&b, opts.limit)
}

/// The directory of the requested (or newest) block under `dir`.
fn pick_block(dir: &Path, opts: &AnalyzeOptions) -> Result<PathBuf, BlockError> {
    if let Some(id) = &opts.block_id {
        let p = dir.join(id);
        if !p.join("meta.json").is_file() {
            return Err(BlockError::Invalid(format!(
                "{}: no such block",
                p.display()
            )));
        }
        return Ok(p);
    }
    let rd = std::fs::read_dir(dir).map_err(|e| BlockError::io(dir, e))?;
    let mut best: Option<(i64, String, PathBuf)> = None;
    for ent in rd {
        let ent = ent.map_err(|e| BlockError::io(dir, e))?;
        let name = ent.file_name().to_string_lossy().into_owned();
        let p = ent.path();
        if !is_block_id(&name) || !p.is_dir() {
            continue;
        }
        let m = match crate::block::BlockMeta::read(&p) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(block = %p.display(), error = %e, "skipping unreadable block");
                continue;
            }
        };
        let key = (m.max_time, name);
        if best
            .as_ref()
            .is_none_or(|(t, n, _)| (key.0, &key.1) > (*t, n))
        {
            best = Some((key.0, key.1, p));
        }
    }
    best.map(|b| b.2)
        .ok_or_else(|| BlockError::Invalid(format!("{}: no blocks found", dir.display())))
}

/// Statistics of an open block.
pub fn analyze_block(b: &Block, limit: usize) -> Result<AnalyzeReport, BlockError> {
    let meta = b.meta();
    let ix = b.index();
    let mut pairs: HashMap<String, u64> = HashMap::new();
    let mut churn_pairs: HashMap<String, u64> = HashMap::new();
    let mut churn_names: HashMap<String, u64> = HashMap::new();
    let mut metric_names: HashMap<String, u64> = HashMap::new();
    let mut entries = 0u64;
    let mut metas = Vec::new();
    for id in 0..ix.num_series() {
        let ls = ix.series_into(id, &mut metas)?;
        let churning = match (metas.first(), metas.last()) {
            (Some(f), Some(l)) => f.mint > meta.min_time || l.maxt < meta.max_time - 1,
            _ => false,
        };
        for l in ls.iter() {
            entries += 1;
            let pair = format!("{}={}", l.name, l.value);
            if churning {
                *churn_pairs.entry(pair.clone()).or_insert(0) += 1;
                *churn_names.entry(l.name.clone()).or_insert(0) += 1;
            }
            *pairs.entry(pair).or_insert(0) += 1;
        }
        let name = ls.metric_name();
        if !name.is_empty() {
            *metric_names.entry(name.to_string()).or_insert(0) += 1;
        }
    }
    let mut cardinality = Vec::new();
    let mut lengths = Vec::new();
    let mut postings = 0u64;
    let names = ix.label_names();
    for n in &names {
        let vs = ix.label_values(n);
        postings += vs.len() as u64;
        cardinality.push((n.to_string(), vs.len() as u64));
        lengths.push((n.to_string(), vs.iter().map(|v| v.len() as u64).sum()));
    }
    Ok(AnalyzeReport {
        block_id: meta.ulid.clone(),
        block_dir: b.dir().to_path_buf(),
        min_time: meta.min_time,
        max_time: meta.max_time,
        series: u64::from(ix.num_series()),
        samples: meta.stats.num_samples,
        chunks: meta.stats.num_chunks,
        label_names: names.len() as u64,
        postings,
        postings_entries: entries,
        churn_label_pairs: top(churn_pairs.into_iter().collect(), limit),
        churn_label_names: top(churn_names.into_iter().collect(), limit),
        most_common_label_pairs: top(pairs.into_iter().collect(), limit),
        label_value_lengths: top(lengths, limit),
        highest_cardinality_labels: top(cardinality, limit),
        highest_cardinality_metric_names: top(metric_names.into_iter().collect(), limit),
    })
}

fn top(mut v: Vec<(String, u64)>, limit: usize) -> Vec<(String, u64)> {
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(limit);
    v
}

/// Formats milliseconds like Go's `time.Duration` (`2h0m0s`, `1.5s`).
pub fn format_duration_ms(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let neg = ms < 0;
    let ms = ms.unsigned_abs();
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if ms < 1000 {
        out.push_str(&format!("{frac}ms"));
        return out;
    }
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if frac > 0 {
        let f = format!("{frac:03}");
        out.push_str(&format!("{s}.{}s", f.trim_end_matches('0')));
    } else {
        out.push_str(&format!("{s}s"));
    }
    out
}

impl fmt::Display for AnalyzeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Block ID: {}", self.block_id)?;
        writeln!(
            f,
            "Duration: {}",
            format_duration_ms(self.max_time - self.min_time)
        )?;
        writeln!(f, "Total Series: {}", self.series)?;
        writeln!(f, "Total Samples: {}", self.samples)?;
        writeln!(f, "Total Chunks: {}", self.chunks)?;
        writeln!(f, "Label names: {}", self.label_names)?;
        writeln!(f, "Postings (unique label pairs): {}", self.postings)?;
        writeln!(
            f,
            "Postings entries (total label pairs): {}",
            self.postings_entries
        )?;
        let lists: [(&str, &Vec<(String, u64)>); 6] = [
            (
                "Label pairs most involved in churning",
                &self.churn_label_pairs,
            ),
            (
                "Label names most involved in churning",
                &self.churn_label_names,
            ),
            ("Most common label pairs", &self.most_common_label_pairs),
            (
                "Label names with highest cumulative label value length",
                &self.label_value_lengths,
            ),
            (
                "Highest cardinality labels",
                &self.highest_cardinality_labels,
            ),
            (
                "Highest cardinality metric names",
                &self.highest_cardinality_metric_names,
            ),
        ];
        for (title, v) in lists {
            writeln!(f, "\n{title}:")?;
            for (name, n) in v {
                writeln!(f, "{n} {name}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::BlockWriter;
    use koban_model::Labels;

    #[test]
    fn durations() {
        assert_eq!(format_duration_ms(2 * 3600 * 1000), "2h0m0s");
        assert_eq!(format_duration_ms(1500), "1.5s");
        assert_eq!(format_duration_ms(61_000), "1m1s");
        assert_eq!(format_duration_ms(7), "7ms");
        assert_eq!(format_duration_ms(0), "0s");
    }

    #[test]
    fn report() {
        let d = tempfile::tempdir().unwrap();
        let mut w = BlockWriter::new(d.path()).unwrap();
        let full: Vec<(i64, f64)> = (0..120).map(|i| (i * 60_000, i as f64)).collect();
        for i in 0..5 {
            let ls = Labels::from_pairs([("__name__", "up"), ("job", "a")])
                .builder()
                .set("i", &i.to_string())
                .labels();
            w.add_series(ls, &full).unwrap();
        }
        // Churning: only the second half of the block.
        for i in 0..3 {
            let ls = Labels::from_pairs([("__name__", "short"), ("pod", &format!("p{i}"))]);
            w.add_series(ls, &full[60..]).unwrap();
        }
        w.finish().unwrap();
        let r = analyze(d.path()).unwrap();
        assert_eq!(r.series, 8);
        assert_eq!(
            r.highest_cardinality_metric_names,
            vec![("up".into(), 5), ("short".into(), 3)]
        );
        assert_eq!(r.highest_cardinality_labels[0], ("i".to_string(), 5));
        assert_eq!(r.churn_label_pairs[0], ("__name__=short".to_string(), 3));
        assert_eq!(r.churn_label_names.iter().find(|x| x.0 == "job"), None);
        let s = r.to_string();
        assert!(s.contains("Duration: 1h59m0.001s"), "{s}");
        assert!(
            s.contains("Highest cardinality metric names:\n5 up\n3 short\n"),
            "{s}"
        );
        // The block directory itself works too.
        let r2 = analyze(&r.block_dir).unwrap();
        assert_eq!(r2.block_id, r.block_id);
    }
}
