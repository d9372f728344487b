//! Fuzzes the exposition parser in both formats: it must never panic, every
//! entry's lazy accessors must work, and every text-format sample must
//! round-trip through `write_text` and the parser unchanged.
#![no_main]

use koban_model::exposition::{write_text, Entry, Format, Parser};
use libfuzzer_sys::fuzz_target;

fn check(data: &[u8], format: Format) {
    let mut p = Parser::new(data, format);
    let mut out = String::new();
    let mut n = 0;
    loop {
        let e = match p.next() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(err) => {
                assert!(err.line >= 1, "line numbers are 1-based");
                assert!(!err.msg.is_empty());
                // Fused after an error.
                assert_eq!(p.next(), Ok(None));
                break;
            }
        };
        n += 1;
        assert!(n <= data.len() + 1, "more entries than bytes");
        match e {
            Entry::Sample(s) => {
                let labels = s.labels();
                let _ = s.metric_name();
                if let Some(ex) = s.exemplar() {
                    let _ = ex.labels();
                }
                assert!(!s.series.is_empty());
                // Round trip through the text writer.
                let ts = s.timestamp.filter(|t| *t >= 0);
                out.clear();
                write_text(&mut out, &labels, s.value, ts);
                let mut p2 = Parser::new(out.as_bytes(), Format::Text);
                match p2.next() {
                    Ok(Some(Entry::Sample(s2))) => {
                        assert_eq!(s2.labels(), labels, "labels round trip: {out:?}");
                        // -0 is written as "0", as Prometheus does; NaN stays NaN.
                        if s.value.is_nan() {
                            assert!(s2.value.is_nan(), "NaN round trip: {out:?}");
                        } else {
                            assert_eq!(s2.value, s.value, "value round trip: {out:?}");
                        }
                        assert_eq!(s2.timestamp, ts, "timestamp round trip: {out:?}");
                    }
                    other => panic!("written line {out:?} did not parse back: {other:?}"),
                }
            }
            Entry::Help { name, help } => {
                let _ = (name.decoded(), help.decoded());
            }
            Entry::Type { name, metric_type } => {
                let _ = (name.decoded(), metric_type.as_str());
            }
            Entry::Unit { name, unit } => {
                let _ = (name.decoded(), unit.decoded());
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data, Format::Text);
    check(data, Format::OpenMetrics);
});
