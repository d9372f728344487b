//! WAL checkpoints: compacting old segments into the series and samples
//! still needed.

use super::record::{self, Record};
use super::replay::latest_checkpoint;
use super::{list_segments, segment_name, sync_dir, WalError};
use std::io::Write;
use std::path::Path;

/// Writes `checkpoint.<before-1>` holding, from the previous checkpoint
/// and segments `< before`, the series records with `keep(ref)` and their
/// samples with `t >= mint` and tombstones reaching `mint`, in log order; then deletes those segments and older
/// checkpoints. A crash at any point leaves a readable WAL (the new
/// checkpoint becomes visible by an atomic rename before anything is
/// deleted).
pub(crate) fn checkpoint(
    dir: &Path,
    before: u32,
    mint: i64,
    keep: impl Fn(u64) -> bool,
) -> Result<(), WalError> {
    if before == 0 {
        return Ok(());
    }
    let old_cp = latest_checkpoint(dir)?;
    let from = old_cp.as_ref().map_or(0, |c| c.0 + 1);
    let segs: Vec<u32> = list_segments(dir)?
        .into_iter()
        .filter(|&s| s >= from && s < before)
        .collect();
    if segs.is_empty() && old_cp.as_ref().is_none_or(|c| c.0 + 1 >= before) {
        return Ok(());
    }
    let n = before - 1;
    let tmp = dir.join(format!("checkpoint.{}.tmp", segment_name(n)));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| WalError::io(&tmp, e))?;
    let out_path = tmp.join(segment_name(0));
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&out_path).map_err(|e| WalError::io(&out_path, e))?,
    );
    let (mut buf, mut scratch) = (Vec::new(), Vec::new());
    let mut write_err: Option<std::io::Error> = None;
    let mut emit = |rec: Record| {
        buf.clear();
        match rec {
            Record::Series(s) => {
                let s: Vec<_> = s.into_iter().filter(|(r, _)| keep(*r)).collect();
                if !s.is_empty() {
                    record::encode_series(&mut buf, &mut scratch, &s);
                }
            }
            Record::Samples(s) => {
                let s: Vec<_> = s
                    .into_iter()
                    .filter(|(r, t, _)| *t >= mint && keep(*r))
                    .collect();
                if !s.is_empty() {
                    record::encode_samples(&mut buf, &s);
                }
            }
            // Kept in log order: a deletion hides the samples before it.
            Record::Tombstones(ts) => {
                let ts: Vec<_> = ts
                    .into_iter()
                    .filter(|(r, _, maxt)| *maxt >= mint && keep(*r))
                    .collect();
                if !ts.is_empty() {
                    record::encode_tombstones(&mut buf, &mut scratch, &ts);
                }
            }
        }
        if write_err.is_none() && !buf.is_empty() {
            if let Err(e) = out.write_all(&buf) {
                write_err = Some(e);
            }
        }
    };
    // Reuse replay on a view holding only the old checkpoint and segments.
    let view = dir.join(format!("checkpoint.{}.src", segment_name(n)));
    let _ = std::fs::remove_dir_all(&view);
    std::fs::create_dir_all(&view).map_err(|e| WalError::io(&view, e))?;
    if let Some((cn, cp)) = &old_cp {
        for s in list_segments(cp)? {
            link(
                &cp.join(segment_name(s)),
                &view
                    .join(format!("checkpoint.{}", segment_name(*cn)))
                    .join(segment_name(s)),
            )?;
        }
    }
    for &s in &segs {
        link(&dir.join(segment_name(s)), &view.join(segment_name(s)))?;
    }
    let res = super::replay(&view, &mut emit);
    let _ = std::fs::remove_dir_all(&view);
    res?;
    if let Some(e) = write_err {
        return Err(WalError::io(&out_path, e));
    }
    let f = out
        .into_inner()
        .map_err(|e| WalError::io(&out_path, e.into_error()))?;
    f.sync_all().map_err(|e| WalError::io(&out_path, e))?;
    drop(f);
    let final_dir = dir.join(format!("checkpoint.{}", segment_name(n)));
    std::fs::rename(&tmp, &final_dir).map_err(|e| WalError::io(&tmp, e))?;
    sync_dir(dir)?;
    tracing::info!(checkpoint = %final_dir.display(), segments = segs.len(), "WAL checkpoint written");
    for s in list_segments(dir)?.into_iter().filter(|&s| s < before) {
        let p = dir.join(segment_name(s));
        std::fs::remove_file(&p).map_err(|e| WalError::io(&p, e))?;
    }
    if let Some((cn, cp)) = old_cp {
        if cn != n {
            std::fs::remove_dir_all(&cp).map_err(|e| WalError::io(&cp, e))?;
        }
    }
    sync_dir(dir)
}

/// Hard-links (or copies, where links are unsupported) `from` to `to`.
fn link(from: &Path, to: &Path) -> Result<(), WalError> {
    if let Some(p) = to.parent() {
        std::fs::create_dir_all(p).map_err(|e| WalError::io(p, e))?;
    }
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to).map_err(|e| WalError::io(from, e))?;
    }
    Ok(())
}
