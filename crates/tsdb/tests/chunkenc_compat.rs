//! Format compatibility: the checked-in fixture must decode to exactly the
//! samples the generator produces, and today's encoder must produce exactly
//! the fixture's bytes. Regenerate only on a deliberate format change:
//! `KOBAN_REGEN_FIXTURES=1 cargo test -p koban-tsdb --test chunkenc_compat`.

use koban_storage::SampleIterator;
use koban_tsdb::chunkenc::{XorChunk, XorIterator};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/xor_chunk_v1.bin"
);

/// Samples covering every timestamp bucket and value case.
fn fixture_samples() -> Vec<(i64, u64)> {
    let mut s = Vec::new();
    let mut t = 1_700_000_000_000i64;
    let mut v = 0.0f64;
    for i in 0..100i64 {
        t += 15_000 + (i % 7) - 3;
        v += (i % 4) as f64 * 0.25;
        s.push((t, v.to_bits()));
    }
    let extra: [(i64, u64); 10] = [
        (10_000, 0x7ff0_0000_0000_0002), // stale marker
        (20_000, f64::NAN.to_bits()),
        (70_000, 0xfff8_0000_dead_beef),
        (600_000, f64::INFINITY.to_bits()),
        (600_001, (-0.0f64).to_bits()),
        (100_000_000, 42.0f64.to_bits()),
        (100_015_000, 42.0f64.to_bits()),
        (100_030_000, 1e300f64.to_bits()),
        (100_045_000, 1u64),
        (100_045_001, u64::MAX),
    ];
    for (d, v) in extra {
        t += d;
        s.push((t, v));
    }
    s
}

fn encode() -> Vec<u8> {
    let mut c = XorChunk::new();
    for (t, v) in fixture_samples() {
        c.append(t, f64::from_bits(v));
    }
    c.into_bytes()
}

#[test]
fn xor_chunk_v1_fixture() {
    if std::env::var_os("KOBAN_REGEN_FIXTURES").is_some() {
        std::fs::write(FIXTURE, encode()).expect("write fixture");
    }
    let bytes = std::fs::read(FIXTURE).expect("fixture present");
    let mut it = XorIterator::new(&bytes[..]);
    let mut got = Vec::new();
    while let Some((t, v)) = it.next() {
        got.push((t, v.to_bits()));
    }
    assert!(!it.is_corrupt());
    assert_eq!(got, fixture_samples());
    assert_eq!(
        encode(),
        bytes,
        "encoder output changed: the v1 format must stay stable"
    );
    let c = XorChunk::from_bytes(bytes).expect("valid chunk");
    assert_eq!(c.num_samples(), 110);
}
