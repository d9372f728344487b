//! Resolving label matchers to series ids (postings), as Prometheus does.

use super::IndexReader;
use crate::block::BlockError;
use koban_model::{MatchType, Matcher};
use roaring::RoaringBitmap;

/// Ids of the series matching every matcher.
///
/// A matcher that does not match the empty string selects by the postings of
/// the values it matches (direct lookups for `=` and literal alternations;
/// a scan of the label's values otherwise). A matcher that does match the
/// empty string also selects series without the label, so it is applied by
/// subtracting the series whose value does *not* match. With no matcher of
/// the first kind, the start set is every series.
pub fn postings_for_matchers(
    ix: &IndexReader,
    ms: &[Matcher],
) -> Result<RoaringBitmap, BlockError> {
    let mut pos: Option<RoaringBitmap> = None;
    let mut neg = RoaringBitmap::new();
    // Positive matchers first, cheapest (equality) first.
    let mut order: Vec<&Matcher> = ms.iter().collect();
    order.sort_by_key(|m| match m.kind {
        MatchType::Equal => 0,
        MatchType::Regex => 1,
        _ => 2,
    });
    for m in order {
        if m.matches_empty() {
            let inverse = match m.kind {
                // `l!="x"` drops exactly the `l="x"` series.
                MatchType::NotEqual => ix.postings(&m.name, &m.value)?,
                MatchType::NotRegex => match m.set_matches() {
                    Some(set) => union_of(ix, &m.name, set)?,
                    None => ix.postings_matching(&m.name, |v| !m.matches(v))?,
                },
                _ => ix.postings_matching(&m.name, |v| !m.matches(v))?,
            };
            neg |= inverse;
        } else {
            let p = match m.kind {
                MatchType::Equal => ix.postings(&m.name, &m.value)?,
                MatchType::Regex => match m.set_matches() {
                    Some(set) => union_of(ix, &m.name, set)?,
                    None => match m.prefix() {
                        Some(pfx) => {
                            ix.postings_matching(&m.name, |v| v.starts_with(pfx) && m.matches(v))?
                        }
                        None => ix.postings_matching(&m.name, |v| m.matches(v))?,
                    },
                },
                _ => ix.postings_matching(&m.name, |v| m.matches(v))?,
            };
            let next = match pos {
                None => p,
                Some(cur) => cur & p,
            };
            if next.is_empty() {
                return Ok(next);
            }
            pos = Some(next);
        }
    }
    let mut out = pos.unwrap_or_else(|| ix.all_postings());
    out -= neg;
    Ok(out)
}

fn union_of(ix: &IndexReader, name: &str, values: &[String]) -> Result<RoaringBitmap, BlockError> {
    let mut out = RoaringBitmap::new();
    for v in values {
        if !v.is_empty() {
            out |= ix.postings(name, v)?;
        }
    }
    Ok(out)
}
