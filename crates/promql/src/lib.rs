//! PromQL parser, engine, functions and the promqltest runner.
//!
//! Entry points: [`parse`] for the syntax tree (its `Display` is the
//! canonical form of `/api/v1/format_query`), [`Engine`] for evaluation over
//! any [`koban_storage::Queryable`] ([`Engine::instant`], [`Engine::range`],
//! and `*_with_cancel` variants taking an `AtomicBool`), [`promqltest`] for
//! Prometheus's test-script format, [`memstore::MemStore`] as a small
//! in-memory storage for tests.
//!
//! Semantics follow Prometheus 3: left-open range windows, 5m default
//! lookback, staleness markers, extrapolated `rate`/`increase`/`delta`, and
//! delayed `__name__` removal (names dropped by functions and operators are
//! removed when the result leaves the engine, so `label_replace` can still
//! read them). Native histograms are not supported (float samples only).
//! Annotations are rendered as the API shows them, with the position of the
//! expression they are about, e.g. `PromQL info: metric might not be a
//! counter, name does not end in _total/_sum/_count/_bucket: "x" (1:6)`.

// Style lints that fight the evaluator's explicit match-heavy code.
#![allow(
    clippy::collapsible_match,
    clippy::type_complexity,
    clippy::single_match,
    clippy::ptr_arg,
    clippy::while_let_loop
)]

pub mod aggregations;
pub mod ast;
pub mod binary;
pub mod engine;
pub mod functions;
pub mod lexer;
pub mod memstore;
pub mod parser;
pub mod promqltest;
mod sparse;

pub use ast::Expr;
pub use engine::{Engine, EngineOpts, QueryError, QueryResult, RangeSeries, Sample, Value};
pub use parser::parse;

/// A parse error with the byte range it refers to.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.render(None))]
pub struct ParseError {
    pub pos_start: usize,
    pub pos_end: usize,
    pub msg: String,
    /// The query text, when known, to render `line:col`.
    pub query: Option<String>,
}

impl ParseError {
    pub fn new(pos_start: usize, pos_end: usize, msg: String) -> Self {
        ParseError {
            pos_start,
            pos_end,
            msg,
            query: None,
        }
    }

    /// `line:col: parse error: msg` (1-based; col counts bytes in the line).
    fn render(&self, _q: Option<&str>) -> String {
        let (line, col) = match &self.query {
            Some(q) => line_col(q, self.pos_start),
            None => (1, self.pos_start + 1),
        };
        format!("{line}:{col}: parse error: {}", self.msg)
    }
}

/// 1-based line and column of byte offset `pos` in `q`.
pub fn line_col(q: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(q.len());
    let before = &q.as_bytes()[..pos];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = match before.iter().rposition(|&b| b == b'\n') {
        Some(nl) => pos - nl,
        None => pos + 1,
    };
    (line, col)
}
