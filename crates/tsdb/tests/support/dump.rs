//! Shared by the tsdb integration tests (included with `#[path]`): every
//! stored sample of every series, as (labels, [(t, value bits)]), in the
//! querier's (sorted) series order.
#![allow(dead_code)] // each test binary uses part of it

use koban_model::{MatchType, Matcher};
use koban_storage::{Querier, Queryable};
use koban_tsdb::Db;

pub type Dump = Vec<(String, Vec<(i64, u64)>)>;

/// Everything `q` holds.
pub fn dump_querier(q: &dyn Querier) -> Dump {
    q.select(
        true,
        None,
        &[Matcher::new(MatchType::Regex, "__name__", ".+").unwrap()],
    )
    .unwrap()
    .map(|s| {
        let s = s.unwrap();
        let mut it = s.iter();
        let mut v = Vec::new();
        while let Some((t, x)) = it.next() {
            v.push((t, x.to_bits()));
        }
        (s.labels().to_string(), v)
    })
    .collect()
}

/// Everything `db` holds, over all time.
pub fn dump(db: &Db) -> Dump {
    dump_querier(&*db.querier(i64::MIN, i64::MAX).unwrap())
}
