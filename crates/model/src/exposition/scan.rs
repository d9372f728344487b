//! Byte classes, escapes and the lenient re-scan of an already validated
//! label block (used when labels are materialised lazily).

use std::borrow::Cow;

const MS: u8 = 1; // metric name start [a-zA-Z_:]
const MC: u8 = 2; // metric name continue [a-zA-Z0-9_:]
const LS: u8 = 4; // label name start [a-zA-Z_]
const LC: u8 = 8; // label name continue [a-zA-Z0-9_]

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        let alpha = c.is_ascii_alphabetic() || c == b'_';
        let digit = c.is_ascii_digit();
        let mut v = 0;
        if alpha || c == b':' {
            v |= MS | MC;
        }
        if digit {
            v |= MC | LC;
        }
        if alpha {
            v |= LS | LC;
        }
        t[i] = v;
        i += 1;
    }
    t
};

#[inline]
pub(super) fn is_metric_start(c: u8) -> bool {
    CLASS[c as usize] & MS != 0
}

#[inline]
pub(super) fn is_label_start(c: u8) -> bool {
    CLASS[c as usize] & LS != 0
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// SWAR: high bit set in each byte of `x` (all bytes < 0x80) within [lo, hi].
#[inline(always)]
const fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
    let ge_lo = x.wrapping_add(ONES * (0x80 - lo as u64));
    let gt_hi = x.wrapping_add(ONES * (0x7f - hi as u64));
    ge_lo & !gt_hi & HIGH
}

/// Index of the first byte in `chunk` (little-endian) that is not a name
/// character, or 8. `colon` admits ':' (metric names).
#[inline(always)]
fn first_non_name(chunk: u64, colon: bool) -> usize {
    let ascii = !chunk & HIGH;
    let x = chunk & !HIGH;
    let digits_hi = if colon { b':' } else { b'9' };
    let ok = (in_range(x, b'0', digits_hi)
        | in_range(x, b'A', b'Z')
        | in_range(x, b'a', b'z')
        | in_range(x, b'_', b'_'))
        & ascii;
    let bad = !ok & HIGH;
    (bad.trailing_zeros() / 8) as usize
}

/// Index of the first byte of the 16 at `chunk` that is not a name
/// character, or 16 (SSE2, part of the x86_64 baseline).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn first_non_name16(chunk: &[u8], colon: bool) -> usize {
    use std::arch::x86_64::*;
    debug_assert!(chunk.len() >= 16, "BUG: short chunk");
    let hi = if colon { b':' } else { b'9' };
    // SAFETY: SSE2 is enabled on every x86_64 target; `chunk` has at least
    // 16 readable bytes (callers slice exactly 16) and the load is unaligned.
    // Signed byte compares: bytes >= 0x80 are negative and fall outside
    // every (ASCII) range, so non-ASCII bytes end the name.
    let mask = unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
        let lower = _mm_or_si128(v, _mm_set1_epi8(0x20));
        let letters = _mm_and_si128(
            _mm_cmpgt_epi8(lower, _mm_set1_epi8(b'a' as i8 - 1)),
            _mm_cmplt_epi8(lower, _mm_set1_epi8(b'z' as i8 + 1)),
        );
        let digits = _mm_and_si128(
            _mm_cmpgt_epi8(v, _mm_set1_epi8(b'0' as i8 - 1)),
            _mm_cmplt_epi8(v, _mm_set1_epi8(hi as i8 + 1)),
        );
        let under = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'_' as i8));
        let ok = _mm_or_si128(_mm_or_si128(letters, digits), under);
        _mm_movemask_epi8(ok) as u32
    };
    (!mask).trailing_zeros() as usize
}

/// For the 16 bytes at `chunk`: a bit mask of bytes equal to `a`, `b` or
/// `c`, and a bit mask of non-ASCII bytes (SSE2).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn masks16(chunk: &[u8], a: u8, b: u8, c: u8) -> (u32, u32) {
    use std::arch::x86_64::*;
    debug_assert!(chunk.len() >= 16, "BUG: short chunk");
    // SAFETY: SSE2 is enabled on every x86_64 target; `chunk` has at least
    // 16 readable bytes and the load is unaligned.
    unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
        let eq = _mm_or_si128(
            _mm_or_si128(
                _mm_cmpeq_epi8(v, _mm_set1_epi8(a as i8)),
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8)),
            ),
            _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8)),
        );
        (_mm_movemask_epi8(eq) as u32, _mm_movemask_epi8(v) as u32)
    }
}

/// The index of the first newline at or after `i` (or `buf.len()`) and
/// whether every byte before it is ASCII.
#[inline]
pub(super) fn line_end_ascii(buf: &[u8], mut i: usize) -> (usize, bool) {
    let mut ascii = true;
    #[cfg(target_arch = "x86_64")]
    if let Some(last) = buf.len().checked_sub(16) {
        while i <= last {
            let (nl, high) = masks16(&buf[i..i + 16], b'\n', b'\n', b'\n');
            if nl != 0 {
                let k = nl.trailing_zeros() as usize;
                return (i + k, ascii && high & ((1u32 << k) - 1) == 0);
            }
            ascii &= high == 0;
            i += 16;
        }
    }
    while i < buf.len() && buf[i] != b'\n' {
        ascii &= buf[i] < 0x80;
        i += 1;
    }
    (i, ascii)
}

/// End of the run of name characters starting at `i`, 16 or 8 bytes at a time.
#[inline(always)]
fn name_end(buf: &[u8], mut i: usize, colon: bool, class: u8) -> usize {
    #[cfg(target_arch = "x86_64")]
    if let Some(last) = buf.len().checked_sub(16) {
        // One compare per step: i <= last means 16 bytes are readable.
        while i <= last {
            let k = first_non_name16(&buf[i..i + 16], colon);
            i += k;
            if k < 16 {
                return i;
            }
        }
    }
    while let Some(c) = buf.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let k = first_non_name(u64::from_le_bytes(w), colon);
        i += k;
        if k < 8 {
            return i;
        }
    }
    while i < buf.len() && CLASS[buf[i] as usize] & class != 0 {
        i += 1;
    }
    i
}

/// Whether `buf[a..a + len]` equals `buf[b..b + len]`; false when either
/// range is out of bounds. Sixteen bytes at a time (SSE2) when 16 bytes
/// past both runs are readable, else a plain slice compare.
#[inline(always)]
pub(super) fn same_run(buf: &[u8], a: usize, b: usize, len: usize) -> bool {
    let far = a.max(b);
    #[cfg(target_arch = "x86_64")]
    if buf.len() >= 16 && far <= buf.len() - 16 && len <= buf.len() - 16 - far {
        let p = buf.as_ptr();
        let mut off = 0;
        loop {
            // SAFETY: off < len, so both loads end at or before
            // far + len + 16 <= buf.len() (checked above).
            let m = unsafe { eq_mask16(p.add(a + off), p.add(b + off)) };
            let rem = len - off;
            if rem <= 16 {
                let want = (1u32 << rem) - 1;
                return m & want == want;
            }
            if m != 0xffff {
                return false;
            }
            off += 16;
        }
    }
    match (
        buf.get(a..a.wrapping_add(len)),
        buf.get(b..b.wrapping_add(len)),
    ) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Bit mask of the equal bytes among the 16 at `x` and the 16 at `y`.
///
/// # Safety
/// 16 bytes must be readable at both pointers.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn eq_mask16(x: *const u8, y: *const u8) -> u32 {
    use std::arch::x86_64::*;
    // SSE2 is enabled on every x86_64 target; the loads are unaligned and
    // in bounds by the caller's contract.
    let x = _mm_loadu_si128(x.cast::<__m128i>());
    let y = _mm_loadu_si128(y.cast::<__m128i>());
    _mm_movemask_epi8(_mm_cmpeq_epi8(x, y)) as u32
}

/// The 7 bytes at `i` as a little-endian word (top byte zero), if 8 bytes
/// are readable there.
#[inline(always)]
pub(super) fn word7(buf: &[u8], i: usize) -> Option<u64> {
    let w = buf.get(i..i.wrapping_add(8))?;
    let mut a = [0u8; 8];
    a.copy_from_slice(w);
    Some(u64::from_le_bytes(a) & 0x00ff_ffff_ffff_ffff)
}

/// `buf[i..e]` (at most 8 bytes) as a little-endian word, zero-padded, if
/// 8 bytes are readable at `i`.
#[inline(always)]
pub(super) fn short_word(buf: &[u8], i: usize, e: usize) -> Option<u64> {
    let len = e.wrapping_sub(i);
    if len > 8 {
        return None;
    }
    let w = buf.get(i..i.wrapping_add(8))?;
    let mut a = [0u8; 8];
    a.copy_from_slice(w);
    let keep = if len == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * len)) - 1
    };
    Some(u64::from_le_bytes(a) & keep)
}

/// A constant of up to 8 bytes as [`word7`] and [`short_word`] read it.
pub(super) const fn word_const(s: &[u8]) -> u64 {
    let mut v = 0u64;
    let mut k = 0;
    while k < s.len() {
        v |= (s[k] as u64) << (8 * k);
        k += 1;
    }
    v
}

/// Whether `c` may continue a metric name.
#[inline(always)]
pub(super) fn is_metric_continue(c: u8) -> bool {
    CLASS[c as usize] & MC != 0
}

/// End of the metric-name run starting at `i`.
#[inline]
pub(super) fn metric_name_end(buf: &[u8], i: usize) -> usize {
    name_end(buf, i, true, MC)
}

/// End of the label-name run starting at `i`.
#[inline]
pub(super) fn label_name_end(buf: &[u8], i: usize) -> usize {
    name_end(buf, i, false, LC)
}

/// Skips spaces and tabs. The usual cases (none, or a single separator)
/// take one or two byte checks; longer runs loop out of line.
#[inline(always)]
pub(super) fn skip_ws(buf: &[u8], i: usize) -> usize {
    match buf.get(i) {
        Some(b' ' | b'\t') => match buf.get(i + 1) {
            Some(b' ' | b'\t') => skip_ws_run(buf, i + 2),
            _ => i + 1,
        },
        _ => i,
    }
}

#[inline(never)]
fn skip_ws_run(buf: &[u8], mut i: usize) -> usize {
    while i < buf.len() && (buf[i] == b' ' || buf[i] == b'\t') {
        i += 1;
    }
    i
}

/// Result of scanning a quoted string.
pub(super) enum Quoted {
    /// Content is `buf[start..end]`; `end` is the closing quote.
    Ok {
        start: usize,
        end: usize,
        escaped: bool,
    },
    Unterminated,
    BadUtf8,
}

/// Scans the quoted string whose opening quote is at `i`. Raw newlines are
/// not allowed inside; the content must be valid UTF-8.
#[inline]
pub(super) fn quoted(buf: &[u8], i: usize) -> Quoted {
    let start = i + 1;
    // Fast path: the closing quote is within 16 bytes, with no escape and
    // no non-ASCII byte before it.
    #[cfg(target_arch = "x86_64")]
    if let Some(c) = buf.get(start..start + 16) {
        let (special, high) = masks16(c, b'"', b'\\', b'\n');
        if special != 0 {
            let k = special.trailing_zeros() as usize;
            if c[k] == b'"' && high & ((1u32 << k) - 1) == 0 {
                return Quoted::Ok {
                    start,
                    end: start + k,
                    escaped: false,
                };
            }
        }
    }
    let mut j = start;
    let mut escaped = false;
    loop {
        match buf.get(j) {
            Some(b'"') => break,
            Some(b'\\') => {
                escaped = true;
                match buf.get(j + 1) {
                    None | Some(b'\n') => return Quoted::Unterminated,
                    Some(_) => j += 2,
                }
            }
            None | Some(b'\n') => return Quoted::Unterminated,
            Some(_) => j += 1,
        }
    }
    let s = &buf[start..j];
    if !s.is_ascii() && std::str::from_utf8(s).is_err() {
        return Quoted::BadUtf8;
    }
    Quoted::Ok {
        start,
        end: j,
        escaped,
    }
}

/// The index of the closing quote of the quoted string whose opening quote
/// is at `i`, if its content is ASCII without escapes or newlines (None
/// for anything else, including a string running to the end of `buf`).
#[inline(always)]
pub(super) fn quoted_plain(buf: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    #[cfg(target_arch = "x86_64")]
    if let Some(last) = buf.len().checked_sub(16) {
        while j <= last {
            let c = &buf[j..j + 16];
            let (special, high) = masks16(c, b'"', b'\\', b'\n');
            if special != 0 {
                let k = special.trailing_zeros() as usize;
                return (c[k] == b'"' && high & ((1u32 << k) - 1) == 0).then_some(j + k);
            }
            if high != 0 {
                return None;
            }
            j += 16;
        }
    }
    loop {
        match *buf.get(j)? {
            b'"' => return Some(j),
            b'\\' | b'\n' | 0x80..=0xff => return None,
            _ => j += 1,
        }
    }
}

/// Which escapes a string decodes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Escapes {
    /// `\\`, `\"`, `\n` (label values, quoted names, OpenMetrics HELP).
    Full,
    /// `\\`, `\n` only (text-format HELP).
    TextHelp,
}

/// Decodes escapes in `raw` (valid UTF-8 by contract; invalid bytes are
/// replaced, which cannot happen for parser-validated input). Unknown escape
/// sequences are kept verbatim, as Prometheus does. Borrows when `escaped`
/// is false.
#[inline]
pub(super) fn unescape(raw: &[u8], escaped: bool, mode: Escapes) -> Cow<'_, str> {
    // `from_utf8` has a word-at-a-time ASCII fast path; the lossy variant
    // (only reached for invalid input, which the parser rejects) does not.
    let s = match std::str::from_utf8(raw) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(raw),
    };
    if !escaped {
        return s;
    }
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.peek() {
            Some('\\') => {
                out.push('\\');
                it.next();
            }
            Some('n') => {
                out.push('\n');
                it.next();
            }
            Some('"') if mode == Escapes::Full => {
                out.push('"');
                it.next();
            }
            _ => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// Index just after the `}` closing the validated label block `block`
/// (which starts at `{`), skipping quoted strings; `block.len()` if none.
pub(super) fn label_block_end(block: &[u8]) -> usize {
    let mut i = 1;
    while let Some(&c) = block.get(i) {
        match c {
            b'}' => return i + 1,
            b'"' => match quoted(block, i) {
                Quoted::Ok { end, .. } => i = end + 1,
                _ => return block.len(),
            },
            _ => i += 1,
        }
    }
    block.len()
}

/// Calls `f(name, value)` for each `name="value"` pair of the label block
/// `block` (starting at `{`), skipping a bare quoted metric name. The block
/// must have been validated by the parser; malformed input ends the walk
/// early without panicking.
pub(super) fn for_each_pair(block: &[u8], mut f: impl FnMut(Cow<'_, str>, Cow<'_, str>)) {
    let mut i = 1;
    loop {
        i = skip_ws(block, i);
        let (ns, ne, nesc, q) = match block.get(i) {
            Some(b'"') => match quoted(block, i) {
                Quoted::Ok {
                    start,
                    end,
                    escaped,
                } => {
                    i = end + 1;
                    (start, end, escaped, true)
                }
                _ => return,
            },
            Some(&c) if is_label_start(c) => {
                let e = label_name_end(block, i);
                let r = (i, e, false, false);
                i = e;
                r
            }
            _ => return,
        };
        i = skip_ws(block, i);
        match block.get(i) {
            Some(b',') if q => {
                i += 1;
                continue;
            }
            Some(b'=') => i += 1,
            _ => return,
        }
        i = skip_ws(block, i);
        let (vs, ve, vesc) = match quoted(block, i) {
            Quoted::Ok {
                start,
                end,
                escaped,
            } => (start, end, escaped),
            _ => return,
        };
        i = ve + 1;
        f(
            unescape(&block[ns..ne], nesc, Escapes::Full),
            unescape(&block[vs..ve], vesc, Escapes::Full),
        );
        i = skip_ws(block, i);
        if block.get(i) == Some(&b',') {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_scans_match_simple_ones() {
        let mut buf = b"\"abc\\\"d\"".to_vec();
        buf.extend_from_slice(&[b'x'; 40]);
        assert!(matches!(
            quoted(&buf, 0),
            Quoted::Ok {
                start: 1,
                end: 7,
                escaped: true
            }
        ));
        let mut buf = b"\"0.25\" ".to_vec();
        buf.extend_from_slice(&[b'x'; 40]);
        assert!(matches!(
            quoted(&buf, 0),
            Quoted::Ok {
                start: 1,
                end: 5,
                escaped: false
            }
        ));
        let mut buf = "\"ü\"".as_bytes().to_vec();
        buf.extend_from_slice(&[b'x'; 40]);
        assert!(matches!(
            quoted(&buf, 0),
            Quoted::Ok {
                start: 1,
                end: 3,
                escaped: false
            }
        ));
        let mut buf = b"\"ab\nc\"".to_vec();
        buf.extend_from_slice(&[b'x'; 40]);
        assert!(matches!(quoted(&buf, 0), Quoted::Unterminated));
        for len in 0..50 {
            for nonascii in [None, Some(0), Some(len / 2)] {
                let mut line = vec![b'a'; len];
                if let Some(p) = nonascii {
                    if p < len {
                        line[p] = 0xc3;
                    }
                }
                let mut buf = line.clone();
                buf.push(b'\n');
                buf.extend_from_slice(&[0xff; 20]);
                let want_ascii = line.is_ascii();
                assert_eq!(
                    line_end_ascii(&buf, 0),
                    (len, want_ascii),
                    "{len} {nonascii:?}"
                );
                assert_eq!(
                    line_end_ascii(&line, 0),
                    (len, want_ascii),
                    "{len} {nonascii:?}"
                );
            }
        }
    }

    #[test]
    fn swar_name_scan_matches_table() {
        let mut buf = Vec::new();
        for c in 0u8..=255 {
            buf.clear();
            buf.extend_from_slice(b"abc_XYZ:09");
            buf.push(c);
            buf.extend_from_slice(b"zzzzzzzzzzzzzzzz");
            for start in 0..buf.len() {
                let want_m = start
                    + buf[start..]
                        .iter()
                        .position(|&b| CLASS[b as usize] & MC == 0)
                        .unwrap_or(buf.len() - start);
                let want_l = start
                    + buf[start..]
                        .iter()
                        .position(|&b| CLASS[b as usize] & LC == 0)
                        .unwrap_or(buf.len() - start);
                assert_eq!(metric_name_end(&buf, start), want_m, "{c}");
                assert_eq!(label_name_end(&buf, start), want_l, "{c}");
            }
        }
    }
}
