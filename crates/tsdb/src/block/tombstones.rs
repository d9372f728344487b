//! Deletion marks: the optional `tombstones` file of a block.
//!
//! ```text
//! "KBTS" u8(version=1) 3 zero bytes
//! uvarint entries
//! per entry (ascending series id): uvarint series_id, uvarint intervals,
//!   per interval (ascending, disjoint): varint mint, uvarint maxt - mint
//! u32 LE crc32c of everything before it
//! ```
//!
//! Intervals are closed; samples inside them are hidden from queries and
//! dropped by compaction.

use super::BlockError;
use crate::encoding::{put_uvarint, put_varint, Decbuf, DecodeError};
use std::collections::BTreeMap;
use std::path::Path;

const MAGIC: &[u8; 4] = b"KBTS";

/// Deleted intervals per series id.
pub type Tombstones = BTreeMap<u32, Vec<(i64, i64)>>;

/// Adds `[mint, maxt]` to `ivs`, keeping them sorted and merged.
pub fn add_interval(ivs: &mut Vec<(i64, i64)>, mint: i64, maxt: i64) {
    ivs.push((mint, maxt));
    ivs.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(ivs.len());
    for &(a, b) in ivs.iter() {
        match out.last_mut() {
            Some(l) if a <= l.1.saturating_add(1) => l.1 = l.1.max(b),
            _ => out.push((a, b)),
        }
    }
    *ivs = out;
}

/// True if `t` lies in one of the sorted intervals.
#[inline]
pub fn is_deleted(ivs: &[(i64, i64)], t: i64) -> bool {
    let i = ivs.partition_point(|iv| iv.1 < t);
    ivs.get(i).is_some_and(|iv| iv.0 <= t)
}

/// True if the intervals cover all of `[mint, maxt]`.
pub fn covers(ivs: &[(i64, i64)], mint: i64, maxt: i64) -> bool {
    let i = ivs.partition_point(|iv| iv.1 < mint);
    ivs.get(i).is_some_and(|iv| iv.0 <= mint && iv.1 >= maxt)
}

/// Reads `path`; a missing file means no tombstones.
pub fn read(path: &Path) -> Result<Tombstones, BlockError> {
    let b = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Tombstones::new()),
        Err(e) => return Err(BlockError::io(path, e)),
    };
    let corrupt = |r: &str| BlockError::corrupt(path, "tombstones", r);
    if b.len() < 12 || &b[..4] != MAGIC || b[4] != 1 {
        return Err(corrupt("bad header"));
    }
    let body = b.len() - 4;
    let want = u32::from_le_bytes([b[body], b[body + 1], b[body + 2], b[body + 3]]);
    if crc32c::crc32c(&b[..body]) != want {
        return Err(corrupt("checksum mismatch"));
    }
    let parse = || -> Result<Tombstones, DecodeError> {
        let mut d = Decbuf::new(&b[8..body]);
        let mut out = Tombstones::new();
        let n = d.len_at_most(body)?;
        for _ in 0..n {
            let id =
                u32::try_from(d.uvarint()?).map_err(|_| DecodeError("series id out of range"))?;
            let k = d.len_at_most(body)?;
            let mut ivs = Vec::with_capacity(k);
            for _ in 0..k {
                let mint = d.varint()?;
                let maxt = mint.wrapping_add(d.uvarint()? as i64);
                ivs.push((mint, maxt));
            }
            out.insert(id, ivs);
        }
        Ok(out)
    };
    parse().map_err(|e| corrupt(&e.to_string()))
}

/// Writes `ts` to `path` atomically (temporary file, fsync, rename).
pub fn write(path: &Path, ts: &Tombstones) -> Result<(), BlockError> {
    let mut b = Vec::new();
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&[1, 0, 0, 0]);
    put_uvarint(&mut b, ts.len() as u64);
    for (id, ivs) in ts {
        put_uvarint(&mut b, u64::from(*id));
        put_uvarint(&mut b, ivs.len() as u64);
        for &(a, z) in ivs {
            put_varint(&mut b, a);
            put_uvarint(&mut b, z.wrapping_sub(a) as u64);
        }
    }
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(|e| BlockError::io(&tmp, e))?;
        f.write_all(&b).map_err(|e| BlockError::io(&tmp, e))?;
        f.sync_all().map_err(|e| BlockError::io(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| BlockError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_merge_and_round_trip() {
        let mut ivs = Vec::new();
        add_interval(&mut ivs, 10, 20);
        add_interval(&mut ivs, 30, 40);
        add_interval(&mut ivs, 21, 25);
        assert_eq!(ivs, vec![(10, 25), (30, 40)]);
        assert!(
            is_deleted(&ivs, 10)
                && is_deleted(&ivs, 25)
                && !is_deleted(&ivs, 26)
                && !is_deleted(&ivs, 9)
        );
        assert!(covers(&ivs, 12, 24) && !covers(&ivs, 12, 31));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tombstones");
        assert!(read(&p).unwrap().is_empty());
        let mut ts = Tombstones::new();
        ts.insert(7, ivs);
        ts.insert(1, vec![(i64::MIN, i64::MAX)]);
        write(&p, &ts).unwrap();
        assert_eq!(read(&p).unwrap(), ts);
        let mut b = std::fs::read(&p).unwrap();
        b[9] ^= 1;
        std::fs::write(&p, b).unwrap();
        assert!(read(&p).unwrap_err().to_string().contains("tombstones"));
    }
}
