//! The non-materialising parse path must not allocate per sample.

use koban_model::exposition::{Entry, Format, Parser};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    /// Allocations made by this thread only: the test harness's own threads
    /// allocate concurrently and must not count (that made the test flaky).
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn allocs() -> usize {
    ALLOCS.with(|c| c.get())
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // `try_with`: the thread-local may already be gone while a thread exits.
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn page() -> Vec<u8> {
    let mut s = String::new();
    for i in 0..200 {
        s.push_str(&format!(
            "# HELP m_{i} Help text with \\\\ escapes\\n and more.\n# TYPE m_{i} gauge\n"
        ));
        s.push_str(&format!(
            "m_{i}{{cpu=\"{}\",mode=\"idle\",esc=\"a\\\"b\"}} {}.25 {}\n",
            i % 8,
            i,
            1000 + i
        ));
        s.push_str(&format!("{{\"m.{i}\",\"q.l\"=\"v\"}} 1e{}\n", i % 30));
    }
    s.into_bytes()
}

#[test]
fn parsing_without_materialising_labels_does_not_allocate() {
    for (format, page) in [
        (Format::Text, page()),
        (Format::OpenMetrics, {
            let mut p = page();
            p.extend_from_slice(b"x_total 1 1.5 # {trace=\"a\"} 2 3\n# EOF\n");
            p
        }),
    ] {
        let mut p = Parser::new(&page, format);
        let before = allocs();
        let mut samples = 0;
        let mut sum = 0.0;
        while let Some(e) = p.next().expect("valid page") {
            match e {
                Entry::Sample(s) => {
                    samples += 1;
                    sum += s.value + s.series.len() as f64 + s.raw_name().len() as f64;
                    if let Some(ex) = s.exemplar() {
                        sum += ex.value;
                    }
                }
                Entry::Help { name, help } => sum += (name.raw().len() + help.raw().len()) as f64,
                _ => {}
            }
        }
        let after = allocs();
        assert!(samples >= 400 && sum > 0.0);
        assert_eq!(after - before, 0, "{format:?}: allocations while parsing");
    }
}
