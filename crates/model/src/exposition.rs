//! Zero-copy pull parser for the Prometheus text exposition format 0.0.4 and
//! OpenMetrics 1.0, plus the text writer used by `/federate`.
//!
//! The parser walks a scraped page (`&[u8]`) and yields [`Entry`] values
//! borrowing from it. Samples carry the raw series bytes (metric name plus
//! label block exactly as written) so a scrape loop can use them as a cache
//! key and only materialise [`Labels`] for series it has not seen before.
//! Nothing is allocated per sample unless labels are materialised.
//!
//! Behaviour follows Prometheus's parsers: the text format allows blank
//! lines, free whitespace between tokens and `#` comments, and integer
//! millisecond timestamps; OpenMetrics is strict (single spaces, no blank
//! lines or free comments), takes float-second timestamps and exemplars, and
//! must end with `# EOF` with nothing after it. Both accept quoted UTF-8
//! metric and label names (`{"my.metric", "my.label"="v"}`).

use crate::labels::{Label, Labels, LabelsBuilder, METRIC_NAME};
use std::borrow::Cow;
use std::fmt;

mod float;
mod scan;
mod write;

pub use float::{format_float, parse_float, NORMAL_NAN_BITS};
pub use write::write_text;

use scan::{Escapes, Quoted};

/// The `Accept` header Prometheus sends when scraping: OpenMetrics 1.0.0
/// preferred, then OpenMetrics 0.0.1, then the text format 0.0.4, then anything.
pub const ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Content type of the text format as Prometheus serves it (e.g. `/federate`).
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The two exposition formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

/// Picks the parser for a response `Content-Type`: `application/openmetrics-text`
/// (any parameters, any case) is OpenMetrics, anything else the text format.
pub fn format_from_content_type(ct: &str) -> Format {
    let media = ct.split(';').next().unwrap_or_default().trim();
    if media.eq_ignore_ascii_case("application/openmetrics-text") {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

/// Metric family type from a `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    /// `untyped` in the text format, `unknown` in OpenMetrics.
    Unknown,
}

impl MetricType {
    /// The name Prometheus's metadata API uses (`counter`, ..., `unknown`).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }

    fn parse(s: &[u8], format: Format) -> Option<MetricType> {
        Some(match (s, format) {
            (b"counter", _) => MetricType::Counter,
            (b"gauge", _) => MetricType::Gauge,
            (b"histogram", _) => MetricType::Histogram,
            (b"summary", _) => MetricType::Summary,
            (b"untyped", Format::Text) => MetricType::Unknown,
            (b"unknown", Format::OpenMetrics) => MetricType::Unknown,
            (b"gaugehistogram", Format::OpenMetrics) => MetricType::GaugeHistogram,
            (b"info", Format::OpenMetrics) => MetricType::Info,
            (b"stateset", Format::OpenMetrics) => MetricType::StateSet,
            _ => return None,
        })
    }
}

/// A parse failure: 1-based line number and reason. Displays as
/// `line 12: expected equal, got "x"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {msg}")]
pub struct ParseError {
    pub line: usize,
    pub msg: String,
}

/// An OpenMetrics exemplar attached to a sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar<'a> {
    /// The exemplar's label block `{...}` as written.
    pub raw_labels: &'a [u8],
    pub value: f64,
    /// Milliseconds since the epoch (OpenMetrics float seconds converted).
    pub timestamp: Option<i64>,
}

impl<'a> Exemplar<'a> {
    /// Calls `f(name, value)` for each exemplar label, escapes decoded.
    pub fn for_each_label(&self, mut f: impl FnMut(&str, &str)) {
        scan::for_each_pair(self.raw_labels, |n, v| f(&n, &v));
    }

    /// The exemplar's labels.
    pub fn labels(&self) -> Labels {
        let mut v = Vec::new();
        self.for_each_label(|n, val| v.push(Label::new(n, val)));
        Labels::from_vec(v)
    }
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleEntry<'a> {
    /// Metric name plus label block exactly as written (a stable cache key
    /// for a target whose output does not change formatting).
    pub series: &'a [u8],
    /// The value; a written NaN is normalised to [`NORMAL_NAN_BITS`].
    pub value: f64,
    /// Milliseconds since the epoch, if the line had a timestamp.
    pub timestamp: Option<i64>,
    /// The validated exemplar text (`{...} value [timestamp]`), parsed on demand.
    exemplar_raw: Option<&'a [u8]>,
    /// The metric name is `series[name_start..name_end]`.
    name_start: u32,
    name_end: u32,
    /// Offset of the label block `{` in `series`, or `u32::MAX`.
    labels_at: u32,
    name_escaped: bool,
}

impl<'a> SampleEntry<'a> {
    /// The metric name as written, without quotes and with escapes (if any)
    /// still encoded; see [`SampleEntry::metric_name`].
    pub fn raw_name(&self) -> &'a [u8] {
        &self.series[self.name_start as usize..self.name_end as usize]
    }

    /// The metric name with escapes decoded (borrowed unless it had escapes).
    pub fn metric_name(&self) -> Cow<'a, str> {
        scan::unescape(self.raw_name(), self.name_escaped, Escapes::Full)
    }

    /// True if the line carried an (OpenMetrics) exemplar.
    pub fn has_exemplar(&self) -> bool {
        self.exemplar_raw.is_some()
    }

    /// The exemplar, if the line had one.
    pub fn exemplar(&self) -> Option<Exemplar<'a>> {
        let raw = self.exemplar_raw?;
        // The text was validated by the parser: `{labels} value[ ts]`.
        let end = scan::label_block_end(raw);
        let raw_labels = &raw[..end];
        let rest = raw.get(end + 1..).unwrap_or_default();
        let (v, ts) = match memchr::memchr(b' ', rest) {
            Some(k) => (&rest[..k], Some(&rest[k + 1..])),
            None => (rest, None),
        };
        let value = parse_float(v).unwrap_or(f64::NAN);
        let timestamp = ts.and_then(parse_float).map(|t| (t * 1000.0) as i64);
        Some(Exemplar {
            raw_labels,
            value,
            timestamp,
        })
    }

    /// Calls `f(name, value)` for `__name__` and then each label in written
    /// order, escapes decoded. Allocates only for values containing escapes.
    pub fn for_each_label(&self, mut f: impl FnMut(&str, &str)) {
        f(METRIC_NAME, &self.metric_name());
        if let Some(block) = self.series.get(self.labels_at as usize..) {
            scan::for_each_pair(block, |n, v| f(&n, &v));
        }
    }

    /// Clears `out` and fills it with `__name__` and the labels, in written
    /// order (not sorted; [`Labels::from_vec`] sorts).
    pub fn labels_into(&self, out: &mut Vec<Label>) {
        out.clear();
        self.for_each_label(|n, v| out.push(Label::new(n, v)));
    }

    /// A builder holding `__name__` and the labels, ready for relabelling
    /// (e.g. [`crate::relabel::process_builder`]).
    pub fn labels_builder(&self) -> LabelsBuilder {
        let mut b = LabelsBuilder::new();
        self.for_each_label(|n, v| {
            b.set(n, v);
        });
        b
    }

    /// The full label set including `__name__` (empty values dropped, as
    /// [`Labels`] always does).
    pub fn labels(&self) -> Labels {
        let mut v = Vec::with_capacity(4);
        self.labels_into(&mut v);
        Labels::from_vec(v)
    }
}

/// Validated UTF-8 text from the page whose escapes are decoded lazily
/// (metadata names and HELP/UNIT text), so entries a consumer ignores cost
/// nothing to build.
#[derive(Clone, Copy)]
pub struct Text<'a> {
    raw: &'a [u8],
    /// False when the text is known to contain no escapes.
    escaped: bool,
    mode: Escapes,
}

impl<'a> Text<'a> {
    /// The bytes as written (without surrounding quotes), escapes encoded.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The text with escapes decoded; borrowed unless it had escapes.
    pub fn decoded(&self) -> Cow<'a, str> {
        let escaped = self.escaped && memchr::memchr(b'\\', self.raw).is_some();
        scan::unescape(self.raw, escaped, self.mode)
    }
}

impl fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.decoded(), f)
    }
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.decoded())
    }
}

impl PartialEq for Text<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.decoded() == o.decoded()
    }
}

impl PartialEq<str> for Text<'_> {
    fn eq(&self, o: &str) -> bool {
        self.decoded() == o
    }
}

impl PartialEq<&str> for Text<'_> {
    fn eq(&self, o: &&str) -> bool {
        self.decoded() == *o
    }
}

/// One parsed entry. Comments and blank lines are skipped.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry<'a> {
    Sample(SampleEntry<'a>),
    /// `# HELP name text`.
    Help {
        name: Text<'a>,
        help: Text<'a>,
    },
    /// `# TYPE name type`.
    Type {
        name: Text<'a>,
        metric_type: MetricType,
    },
    /// `# UNIT name unit` (OpenMetrics only; the unit is validated as a
    /// suffix of the name).
    Unit {
        name: Text<'a>,
        unit: Text<'a>,
    },
}

/// The pull parser. After the first error (or the end) `next` keeps
/// returning `Ok(None)`.
pub struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
    line: usize,
    format: Format,
    done: bool,
    /// Label-name spans of the current label block (start, end, escaped),
    /// reused across samples for duplicate detection.
    names: Vec<(usize, usize, bool)>,
    /// Start and length of the last bare metric name of a `# HELP` or
    /// `# TYPE` line (length 0: none). A TYPE line or sample name starting
    /// with the same bytes needs no re-validation of that prefix.
    family: (usize, usize),
}

type Span = (usize, usize, bool);

impl<'a> Parser<'a> {
    pub fn new(buf: &'a [u8], format: Format) -> Self {
        Parser {
            buf,
            pos: 0,
            line: 1,
            format,
            done: false,
            names: Vec::with_capacity(16),
            family: (0, 0),
        }
    }

    /// The format being parsed.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The 1-based line the parser is on.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The next entry, `Ok(None)` at the end of input.
    #[allow(clippy::should_implement_trait)]
    #[inline]
    pub fn next(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        if self.done {
            return Ok(None);
        }
        let r = self.next_inner();
        if !matches!(r, Ok(Some(_))) {
            self.done = true;
        }
        r
    }

    #[inline(always)]
    fn next_inner(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        let om = self.format == Format::OpenMetrics;
        loop {
            let buf = self.buf;
            let mut i = self.pos;
            if !om {
                i = scan::skip_ws(buf, i);
            }
            let Some(&c) = buf.get(i) else {
                if om {
                    return Err(self.err("data does not end with # EOF"));
                }
                return Ok(None);
            };
            match c {
                b'\n' if !om => {
                    self.pos = i + 1;
                    self.line += 1;
                }
                b'#' => {
                    self.pos = i;
                    if om {
                        // The only OpenMetrics comment without an entry is `# EOF`.
                        return self.om_comment();
                    }
                    match self.text_comment_kind() {
                        Some((kind, j)) => return self.text_meta(kind, j),
                        None => self.skip_line(i + 1),
                    }
                }
                b'{' => {
                    self.pos = i;
                    return self.sample(None);
                }
                c if scan::is_metric_start(c) => {
                    self.pos = i;
                    let e = self.bare_name_end(i);
                    return self.sample(Some((i, e, false)));
                }
                _ => return Err(self.err_got(i, "expected a valid start token")),
            }
        }
    }

    fn err(&self, msg: impl Into<String>) -> ParseError {
        ParseError {
            line: self.line,
            msg: msg.into(),
        }
    }

    /// `"<what>, got <token at i>"`.
    fn err_got(&self, i: usize, what: &str) -> ParseError {
        self.err(format!("{what}, got {}", describe(self.buf, i)))
    }

    /// End of the bare metric name starting at `i` (whose first byte is a
    /// valid start). Bytes equal to the last HELP/TYPE name are already
    /// known to be name bytes, so only what follows them is scanned.
    #[inline(always)]
    fn bare_name_end(&self, i: usize) -> usize {
        let buf = self.buf;
        let (fs, fl) = self.family;
        if fl != 0 && scan::same_run(buf, i, fs, fl) {
            let j = i + fl;
            return match buf.get(j) {
                Some(&c) if scan::is_metric_continue(c) => scan::metric_name_end(buf, j),
                _ => j,
            };
        }
        scan::metric_name_end(buf, i)
    }

    /// Skips to after the next newline (or the end).
    fn skip_line(&mut self, from: usize) {
        match memchr::memchr(b'\n', &self.buf[from.min(self.buf.len())..]) {
            Some(k) => {
                self.pos = from + k + 1;
                self.line += 1;
            }
            None => self.pos = self.buf.len(),
        }
    }

    /// Finishes a line at `i`, which must be a newline (or the end of input
    /// for the text format).
    #[inline]
    fn end_line(&mut self, i: usize) {
        if i < self.buf.len() {
            self.line += 1;
            self.pos = i + 1;
        } else {
            self.pos = i;
        }
    }

    /// For a text-format comment line at `self.pos`: the metadata kind and
    /// where its word starts, or None for a plain comment.
    #[inline(always)]
    fn text_comment_kind(&self) -> Option<(Meta, usize)> {
        let buf = self.buf;
        let i = self.pos + 1;
        // Commonest: exactly `# HELP ` or `# TYPE `, compared as one word.
        let word = scan::word7(buf, self.pos);
        let (kind, j) = if word == Some(HELP_WORD) {
            (Some(Meta::Help), i + 1)
        } else if word == Some(TYPE_WORD) {
            (Some(Meta::Type), i + 1)
        } else {
            let j = scan::skip_ws(buf, i);
            let kind = if j == i || j + 4 >= buf.len() || !matches!(buf[j + 4], b' ' | b'\t') {
                None
            } else {
                match &buf[j..j + 4] {
                    b"HELP" => Some(Meta::Help),
                    b"TYPE" => Some(Meta::Type),
                    _ => None,
                }
            };
            (kind, j)
        };
        Some((kind?, j))
    }

    /// Parses a text-format HELP or TYPE line whose word starts at `j`.
    #[inline(always)]
    fn text_meta(&mut self, kind: Meta, j: usize) -> Result<Option<Entry<'a>>, ParseError> {
        let buf = self.buf;
        let k = scan::skip_ws(buf, j + 5);
        let (name, k) = self.meta_name(k, kind)?;
        let mut text_ascii = true;
        let (ts, te) = match buf.get(k) {
            None | Some(b'\n') => (k, k),
            Some(b' ' | b'\t') => {
                let (e, ascii) = scan::line_end_ascii(buf, k);
                text_ascii = ascii;
                (k + 1, e)
            }
            Some(_) => {
                return Err(self.err_got(
                    k,
                    &format!("expected text after metric name in {}", kind.word()),
                ))
            }
        };
        let r = self.meta_entry(kind, name, ts, te, text_ascii);
        if r.is_ok() {
            self.end_line(te);
        }
        r
    }

    fn om_comment(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        let buf = self.buf;
        let i = self.pos;
        if buf.get(i + 1) != Some(&b' ') {
            return Err(self.err_got(i, "expected a valid start token"));
        }
        let j = i + 2;
        let rest = &buf[j..];
        if rest.starts_with(b"EOF") {
            let mut k = j + 3;
            if buf.get(k) == Some(&b'\n') {
                k += 1;
            }
            if k != buf.len() {
                return Err(self.err("unexpected data after # EOF"));
            }
            self.pos = buf.len();
            return Ok(None);
        }
        let kind = if rest.len() > 4 && rest[4] == b' ' {
            match &rest[..4] {
                b"HELP" => Some(Meta::Help),
                b"TYPE" => Some(Meta::Type),
                b"UNIT" => Some(Meta::Unit),
                _ => None,
            }
        } else {
            None
        };
        let Some(kind) = kind else {
            return Err(self.err_got(j, "expected HELP, TYPE, UNIT or EOF after \"# \""));
        };
        let (name, k) = self.meta_name(j + 5, kind)?;
        let (ts, te) = match buf.get(k) {
            None => return Err(self.err("data does not end with # EOF")),
            Some(b'\n') => (k, k),
            Some(b' ') => match memchr::memchr(b'\n', &buf[k..]) {
                Some(x) => (k + 1, k + x),
                None => return Err(self.err("data does not end with # EOF")),
            },
            Some(_) => {
                return Err(self.err_got(
                    k,
                    &format!("expected text after metric name in {}", kind.word()),
                ))
            }
        };
        let r = self.meta_entry(kind, name, ts, te, false);
        if r.is_ok() {
            self.end_line(te);
        }
        r
    }

    /// Parses the metric name of a metadata line at `k`.
    #[inline(always)]
    fn meta_name(&mut self, k: usize, kind: Meta) -> Result<(Span, usize), ParseError> {
        let buf = self.buf;
        match buf.get(k) {
            Some(b'"') => {
                let (s, e, esc) = self.quoted(k)?;
                if s == e {
                    return Err(self.err("empty metric name"));
                }
                Ok(((s, e, esc), e + 1))
            }
            Some(&c) if scan::is_metric_start(c) => {
                // A TYPE or UNIT line usually names the family of the HELP
                // line before it.
                let e = if kind == Meta::Help {
                    scan::metric_name_end(buf, k)
                } else {
                    self.bare_name_end(k)
                };
                self.family = (k, e - k);
                Ok(((k, e, false), e))
            }
            _ => Err(self.err_got(k, &format!("expected metric name after {}", kind.word()))),
        }
    }

    /// Builds a metadata entry; `text_ascii` is true when `buf[ts..te]` is
    /// known to be ASCII.
    #[inline]
    fn meta_entry(
        &self,
        kind: Meta,
        name: Span,
        ts: usize,
        te: usize,
        text_ascii: bool,
    ) -> Result<Option<Entry<'a>>, ParseError> {
        let buf = self.buf;
        let name = Text {
            raw: &buf[name.0..name.1],
            escaped: name.2,
            mode: Escapes::Full,
        };
        let text = &buf[ts..te];
        match kind {
            Meta::Type => match scan::short_word(buf, ts, te)
                .and_then(|w| common_type(w, self.format))
                .or_else(|| MetricType::parse(text, self.format))
            {
                Some(metric_type) => Ok(Some(Entry::Type { name, metric_type })),
                None => Err(self.err(format!(
                    "invalid metric type {:?}",
                    String::from_utf8_lossy(text)
                ))),
            },
            Meta::Help | Meta::Unit => {
                if !text_ascii && !text.is_ascii() && std::str::from_utf8(text).is_err() {
                    return Err(self.err(format!(
                        "{} text {:?} is not valid UTF-8",
                        kind.word(),
                        String::from_utf8_lossy(text)
                    )));
                }
                let mode = if self.format == Format::Text {
                    Escapes::TextHelp
                } else {
                    Escapes::Full
                };
                // Whether the text has escapes is found lazily by `Text::decoded`.
                let text = Text {
                    raw: text,
                    escaped: true,
                    mode,
                };
                if kind == Meta::Help {
                    return Ok(Some(Entry::Help { name, help: text }));
                }
                let unit = text.decoded();
                if !unit.is_empty() {
                    let name = name.decoded();
                    let ok = name.strip_suffix(&*unit).is_some_and(|p| p.ends_with('_'));
                    if !ok {
                        return Err(
                            self.err(format!("unit {unit:?} not a suffix of metric {name:?}"))
                        );
                    }
                }
                Ok(Some(Entry::Unit { name, unit: text }))
            }
        }
    }

    /// Scans a quoted string at `i`, mapping scan failures to errors.
    #[inline(always)]
    fn quoted(&self, i: usize) -> Result<Span, ParseError> {
        match scan::quoted(self.buf, i) {
            Quoted::Ok {
                start,
                end,
                escaped,
            } => Ok((start, end, escaped)),
            Quoted::Unterminated => Err(self.cold_err("unterminated quoted string")),
            Quoted::BadUtf8 => Err(self.cold_err("invalid UTF-8 in quoted string")),
        }
    }

    #[cold]
    #[inline(never)]
    fn cold_err(&self, msg: &'static str) -> ParseError {
        self.err(msg)
    }

    /// Parses a sample line starting at `self.pos`. `name` is the span of a
    /// bare metric name already found there (None when the line starts with `{`).
    #[inline(always)]
    fn sample(&mut self, name: Option<Span>) -> Result<Option<Entry<'a>>, ParseError> {
        let om = self.format == Format::OpenMetrics;
        let buf = self.buf;
        let start = self.pos;
        let (name, labels_at, mut i) = match name {
            None => {
                let (end, n) = self.label_block(start, LabelCtx::SeriesNoName)?;
                match n {
                    Some(n) => (n, 0, end),
                    None => {
                        return Err(
                            self.err("metric name not set (expected a quoted name in braces)")
                        )
                    }
                }
            }
            Some(n) => {
                let mut i = n.1;
                let j = if om { i } else { scan::skip_ws(buf, i) };
                let mut at = usize::MAX;
                if buf.get(j) == Some(&b'{') {
                    let end = match self.plain_label_block(j) {
                        Some(end) => end,
                        None => self.label_block(j, LabelCtx::SeriesNamed)?.0,
                    };
                    at = j - start;
                    i = end;
                }
                (n, at, i)
            }
        };
        let series = &buf[start..i];
        if series.len() >= u32::MAX as usize {
            return Err(self.err("series too long"));
        }
        let entry = |value, timestamp, exemplar_raw| {
            // Offsets fit u32: the series length was checked above.
            Entry::Sample(SampleEntry {
                series,
                value,
                timestamp,
                exemplar_raw,
                name_start: (name.0 - start) as u32,
                name_end: (name.1 - start) as u32,
                labels_at: labels_at.min(u32::MAX as usize) as u32,
                name_escaped: name.2,
            })
        };
        // Commonest line end in both formats: ` d\n` with a single digit.
        if let Some(&[b' ', d, b'\n']) = buf.get(i..i + 3) {
            if d.is_ascii_digit() {
                self.end_line(i + 2);
                return Ok(Some(entry(f64::from(d - b'0'), None, None)));
            }
        }
        // Value.
        let vs = if om {
            if buf.get(i) != Some(&b' ') {
                return Err(self.err_got(i, "expected value after metric"));
            }
            i + 1
        } else {
            scan::skip_ws(buf, i)
        };
        // Commonest case: a single digit (`0`, `1`) followed by the line end.
        // Then a plain decimal parsed while finding the token end.
        let quick = match buf.get(vs..vs + 2) {
            Some(&[d, e]) if d.is_ascii_digit() && is_value_end(e, om) => {
                Some((f64::from(d - b'0'), vs + 1))
            }
            _ => None,
        };
        let (value, ve) = match quick.or_else(|| {
            float::parse_decimal_prefix(&buf[vs..])
                .filter(|&(_, n)| buf.get(vs + n).is_none_or(|&c| is_value_end(c, om)))
                .map(|(v, n)| (v, vs + n))
        }) {
            Some(r) => r,
            None => {
                let mut ve = vs;
                while ve < buf.len() && !is_value_end(buf[ve], om) {
                    ve += 1;
                }
                if ve == vs {
                    return Err(self.err_got(vs, "expected value after metric"));
                }
                match parse_float(&buf[vs..ve]) {
                    Some(v) => (v, ve),
                    None => return Err(self.bad_float("value", vs, ve)),
                }
            }
        };
        i = ve;
        let mut timestamp = None;
        let mut exemplar = None;
        if om {
            match buf.get(i) {
                None => return Err(self.err("data does not end with # EOF")),
                Some(b'\n') => {}
                Some(b' ') if buf[i + 1..].starts_with(b"# {") => {
                    let end = self.exemplar(i + 3)?;
                    exemplar = Some(&buf[i + 3..end]);
                    i = end;
                }
                Some(b' ') => {
                    let (ts, end) = self.om_timestamp(i + 1, "timestamp")?;
                    timestamp = Some(ts);
                    i = end;
                    match buf.get(i) {
                        None => return Err(self.err("data does not end with # EOF")),
                        Some(b'\n') => {}
                        Some(b' ') if buf[i + 1..].starts_with(b"# {") => {
                            let end = self.exemplar(i + 3)?;
                            exemplar = Some(&buf[i + 3..end]);
                            i = end;
                        }
                        Some(_) => {
                            return Err(self.err_got(i, "expected next entry after timestamp"))
                        }
                    }
                }
                Some(_) => return Err(self.err_got(i, "expected timestamp or # symbol")),
            }
        } else {
            i = scan::skip_ws(buf, i);
            match buf.get(i) {
                None | Some(b'\n') => {}
                Some(c) if c.is_ascii_digit() => {
                    let te = digits_end(buf, i);
                    let ts = parse_i64(&buf[i..te]).ok_or_else(|| {
                        self.err(format!(
                            "invalid timestamp {:?}",
                            String::from_utf8_lossy(&buf[i..te])
                        ))
                    })?;
                    timestamp = Some(ts);
                    i = scan::skip_ws(buf, te);
                    if !matches!(buf.get(i), None | Some(b'\n')) {
                        return Err(self.err_got(i, "expected next entry after timestamp"));
                    }
                }
                Some(_) => return Err(self.err_got(i, "expected timestamp or new record")),
            }
        }
        self.end_line(i);
        Ok(Some(entry(value, timestamp, exemplar)))
    }

    /// Validates an exemplar whose `{` is at `i`; returns the index of the
    /// terminating newline.
    fn exemplar(&mut self, i: usize) -> Result<usize, ParseError> {
        let buf = self.buf;
        let (end, _) = self.label_block(i, LabelCtx::Exemplar)?;
        if buf.get(end) != Some(&b' ') {
            if end >= buf.len() {
                return Err(self.err("data does not end with # EOF"));
            }
            return Err(self.err_got(end, "expected value after exemplar labels"));
        }
        let vs = end + 1;
        let mut ve = vs;
        while ve < buf.len() && !is_value_end(buf[ve], true) {
            ve += 1;
        }
        if ve == vs {
            return Err(self.err_got(vs, "expected value after exemplar labels"));
        }
        if parse_float(&buf[vs..ve]).is_none() {
            return Err(self.bad_float("exemplar value", vs, ve));
        }
        let mut j = ve;
        if buf.get(j) == Some(&b' ') {
            let (_, e) = self.om_timestamp(j + 1, "exemplar timestamp")?;
            j = e;
        }
        match buf.get(j) {
            Some(b'\n') => Ok(j),
            None => Err(self.err("data does not end with # EOF")),
            Some(_) => Err(self.err_got(j, "expected next entry after exemplar")),
        }
    }

    /// An OpenMetrics float-seconds timestamp token at `i`, converted to
    /// milliseconds (truncated toward zero, as Prometheus).
    fn om_timestamp(&self, i: usize, what: &str) -> Result<(i64, usize), ParseError> {
        let buf = self.buf;
        let mut e = i;
        while e < buf.len() && !is_value_end(buf[e], true) {
            e += 1;
        }
        if e == i {
            return Err(self.err_got(i, &format!("expected {what}")));
        }
        let ts = parse_float(&buf[i..e]).ok_or_else(|| self.bad_float(what, i, e))?;
        if !ts.is_finite() {
            return Err(self.err(format!(
                "invalid {what} {:?}",
                String::from_utf8_lossy(&buf[i..e])
            )));
        }
        Ok(((ts * 1000.0) as i64, e))
    }

    fn bad_float(&self, what: &str, s: usize, e: usize) -> ParseError {
        self.err(format!(
            "invalid {what} {:?}: not a valid float",
            String::from_utf8_lossy(&self.buf[s..e])
        ))
    }

    /// Fast path for the label block of a named series whose `{` is at
    /// `open`, when it is plain: bare names, no whitespace, ASCII values
    /// without escapes, at most [`PLAIN_LABELS`] distinct labels, none named
    /// `__name__`, no trailing comma. Returns the index after `}`, or None
    /// for anything else (including every error), which
    /// [`Parser::label_block`] then parses from the start.
    #[inline(always)]
    fn plain_label_block(&self, open: usize) -> Option<usize> {
        let buf = self.buf;
        let mut names = [(0usize, 0usize); PLAIN_LABELS];
        let mut n = 0;
        let mut i = open + 1;
        loop {
            if !scan::is_label_start(*buf.get(i)?) {
                return None;
            }
            let e = scan::label_name_end(buf, i);
            if buf.get(e..e + 2)? != b"=\"" {
                return None;
            }
            let close = scan::quoted_plain(buf, e + 1)?;
            let len = e - i;
            if len == METRIC_NAME.len() && &buf[i..e] == METRIC_NAME.as_bytes() {
                return None;
            }
            for &(s, l) in &names[..n] {
                if l == len && buf[s..s + l] == buf[i..e] {
                    return None;
                }
            }
            if n == PLAIN_LABELS {
                return None;
            }
            names[n] = (i, len);
            n += 1;
            match buf.get(close + 1)? {
                b',' => i = close + 2,
                b'}' => return Some(close + 2),
                _ => return None,
            }
        }
    }

    /// Parses and validates the label block whose `{` is at `open`. Returns
    /// the index after `}` and, for a series, the span of a quoted metric
    /// name found inside.
    #[inline]
    fn label_block(
        &mut self,
        open: usize,
        ctx: LabelCtx,
    ) -> Result<(usize, Option<Span>), ParseError> {
        let om = self.format == Format::OpenMetrics;
        let buf = self.buf;
        let mut i = open + 1;
        let mut name: Option<Span> = None;
        self.names.clear();
        loop {
            if !om {
                i = scan::skip_ws(buf, i);
            }
            let (ns, ne, nesc, quoted) = match buf.get(i) {
                Some(b'}') => return Ok((i + 1, name)),
                Some(b'"') => {
                    let (s, e, esc) = self.quoted(i)?;
                    i = e + 1;
                    (s, e, esc, true)
                }
                Some(&c) if scan::is_label_start(c) => {
                    let e = scan::label_name_end(buf, i);
                    if buf.get(e..e + 2) == Some(b"=\"") {
                        // Fast path for `name="value"` without spaces: the
                        // same checks as below in the same order.
                        let (_, ve, _) = self.quoted(e + 1)?;
                        self.check_duplicate((i, e, false), ctx)?;
                        i = ve + 1;
                        match buf.get(i) {
                            Some(b',') => {
                                i += 1;
                                continue;
                            }
                            Some(b'}') => return Ok((i + 1, name)),
                            _ => {
                                if !om {
                                    i = scan::skip_ws(buf, i);
                                }
                                match buf.get(i) {
                                    Some(b',') => i += 1,
                                    Some(b'}') => {}
                                    _ => {
                                        return Err(self.err_got(i, "expected comma or brace close"))
                                    }
                                }
                                continue;
                            }
                        }
                    }
                    let r = (i, e, false, false);
                    i = e;
                    r
                }
                _ => return Err(self.err_got(i, "expected label name")),
            };
            if !om {
                i = scan::skip_ws(buf, i);
            }
            match buf.get(i) {
                Some(&c @ (b',' | b'}')) if quoted && ctx != LabelCtx::Exemplar => {
                    if name.is_some() || ctx == LabelCtx::SeriesNamed {
                        return Err(self.err(format!(
                            "metric name already set, got second name {:?}",
                            String::from_utf8_lossy(&buf[ns..ne])
                        )));
                    }
                    if ns == ne {
                        return Err(self.err("empty metric name"));
                    }
                    name = Some((ns, ne, nesc));
                    if c == b',' {
                        i += 1;
                    }
                    continue;
                }
                Some(b'=') => i += 1,
                _ => return Err(self.err_got(i, "expected equal")),
            }
            if ns == ne {
                return Err(self.err("empty label name"));
            }
            if !om {
                i = scan::skip_ws(buf, i);
            }
            if buf.get(i) != Some(&b'"') {
                return Err(self.err_got(i, "expected label value"));
            }
            let (_, ve, _) = self.quoted(i)?;
            i = ve + 1;
            self.check_duplicate((ns, ne, nesc), ctx)?;
            if !om {
                i = scan::skip_ws(buf, i);
            }
            match buf.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => {}
                _ => return Err(self.err_got(i, "expected comma or brace close")),
            }
        }
    }

    /// Errors if the label name `n` repeats one of the block or is `__name__`
    /// in a series; then records it.
    #[inline(always)]
    fn check_duplicate(&mut self, n: Span, ctx: LabelCtx) -> Result<(), ParseError> {
        // Fast path: a bare name that is not `__name__` and differs from
        // every bare name seen so far in the block (lengths compared first).
        // Anything else (escapes, a repeat, `__name__`) takes the slow path,
        // which makes the same decisions in full.
        if !n.2 {
            let buf = self.buf;
            let nb = &buf[n.0..n.1];
            let fresh = nb != METRIC_NAME.as_bytes()
                && self
                    .names
                    .iter()
                    .all(|&(s, e, esc)| !esc && (e - s != nb.len() || &buf[s..e] != nb));
            if fresh {
                self.names.push(n);
                return Ok(());
            }
        }
        self.check_duplicate_slow(n, ctx)
    }

    #[inline(never)]
    fn check_duplicate_slow(&mut self, n: Span, ctx: LabelCtx) -> Result<(), ParseError> {
        let buf = self.buf;
        let nb = &buf[n.0..n.1];
        if ctx != LabelCtx::Exemplar && !n.2 && nb == METRIC_NAME.as_bytes() {
            return Err(
                self.err("duplicate label name \"__name__\": the metric name is set already")
            );
        }
        for &(s, e, esc) in &self.names {
            let same = if esc || n.2 {
                scan::unescape(&buf[s..e], esc, Escapes::Full)
                    == scan::unescape(nb, n.2, Escapes::Full)
            } else {
                &buf[s..e] == nb
            };
            if same {
                let name = scan::unescape(nb, n.2, Escapes::Full);
                return Err(self.err(format!("duplicate label name {name:?}")));
            }
        }
        if n.2
            && ctx != LabelCtx::Exemplar
            && scan::unescape(nb, true, Escapes::Full) == METRIC_NAME
        {
            return Err(
                self.err("duplicate label name \"__name__\": the metric name is set already")
            );
        }
        self.names.push(n);
        Ok(())
    }
}

/// Most labels a block may have for [`Parser::plain_label_block`].
const PLAIN_LABELS: usize = 8;

#[derive(Clone, Copy, PartialEq, Eq)]
enum LabelCtx {
    /// Series whose line starts with `{`: a quoted name inside is the metric name.
    SeriesNoName,
    /// Series with the metric name before `{`.
    SeriesNamed,
    Exemplar,
}

/// The commonest metric types from a [`scan::short_word`] (None: use
/// [`MetricType::parse`]).
#[inline(always)]
fn common_type(w: u64, format: Format) -> Option<MetricType> {
    const GAUGE: u64 = scan::word_const(b"gauge");
    const COUNTER: u64 = scan::word_const(b"counter");
    const UNTYPED: u64 = scan::word_const(b"untyped");
    match w {
        GAUGE => Some(MetricType::Gauge),
        COUNTER => Some(MetricType::Counter),
        UNTYPED if format == Format::Text => Some(MetricType::Unknown),
        _ => None,
    }
}

/// `# HELP ` and `# TYPE ` as [`scan::word7`] reads them.
const HELP_WORD: u64 = scan::word_const(b"# HELP ");
const TYPE_WORD: u64 = scan::word_const(b"# TYPE ");

#[derive(Clone, Copy, PartialEq, Eq)]
enum Meta {
    Help,
    Type,
    Unit,
}

impl Meta {
    fn word(self) -> &'static str {
        match self {
            Meta::Help => "HELP",
            Meta::Type => "TYPE",
            Meta::Unit => "UNIT",
        }
    }
}

#[inline]
fn is_value_end(c: u8, om: bool) -> bool {
    if om {
        c == b' ' || c == b'\n'
    } else {
        matches!(c, b' ' | b'\t' | b'\n' | b'{')
    }
}

fn digits_end(buf: &[u8], mut i: usize) -> usize {
    while i < buf.len() && buf[i].is_ascii_digit() {
        i += 1;
    }
    i
}

fn parse_i64(d: &[u8]) -> Option<i64> {
    let mut n: i64 = 0;
    for &c in d {
        n = n.checked_mul(10)?.checked_add(i64::from(c - b'0'))?;
    }
    Some(n)
}

/// A short quoted description of the token at `i` for error messages.
fn describe(buf: &[u8], i: usize) -> String {
    let Some(&c) = buf.get(i) else {
        return "end of input".to_string();
    };
    if c == b'\n' {
        return "\"\\n\" (end of line)".to_string();
    }
    let mut e = i + 1;
    if !matches!(c, b',' | b'{' | b'}' | b'=' | b'"') {
        while e < buf.len()
            && e - i < 32
            && !matches!(
                buf[e],
                b' ' | b'\t' | b'\n' | b',' | b'{' | b'}' | b'=' | b'"'
            )
        {
            e += 1;
        }
    }
    format!("{:?}", String::from_utf8_lossy(&buf[i..e]))
}

#[cfg(test)]
mod tests;
