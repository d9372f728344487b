//! Go's `text/template`, for Koban's recording/alerting rules and its
//! Alertmanager notifications.
//!
//! ```
//! use koban_template::{Template, Value};
//! let mut t = Template::new("alert");
//! t.parse(r#"{{ range $k, $v := .Labels }}{{ $k }}={{ $v }};{{ end }}"#).unwrap();
//! let data = Value::from(serde_json::json!({"Labels": {"job": "node", "instance": "a:9100"}}));
//! assert_eq!(t.execute(&data).unwrap(), "instance=a:9100;job=node;");
//! ```
//!
//! Supported: text and actions with `{{-`/`-}}` trimming, comments,
//! pipelines, variables (`:=`, `=`, `$`), field chains on maps and
//! [`HostValue`]s, parenthesised pipelines, `if`/`else if`/`else`, `range`
//! (lists, maps in key order, integers; `$i, $v :=`; `else`; `break`,
//! `continue`), `with`/`else with`/`else`, `define`/`template`/`block`,
//! all literal kinds, and Go's builtins (`and or not len index slice print
//! printf println eq ne lt le gt ge html js urlquery call`). Hosts add
//! functions with [`Funcs`] before parsing (the parser rejects unknown
//! function names, as Go's does).
//!
//! Differences from Go, on purpose:
//! - Parse errors name line *and* column (`template: NAME:LINE:COL: msg`;
//!   Go gives only the line); exec errors have Go's form
//!   (`template: NAME:LINE:COL: executing "NAME" at <node>: msg`).
//! - `eq`/`ne` with nil (a missing map key) on one side compare unequal
//!   instead of failing.
//! - [`Options::escape_html`] is not `html/template`: it HTML-escapes every
//!   action's output as if in HTML text, with no attribute, URL or script
//!   contexts.
//! - Hostile templates are bounded: template-call and body nesting
//!   ([`Options::max_depth`]), evaluation steps ([`Options::max_steps`]),
//!   output size ([`Options::max_output`]) and parse nesting (100) all end in
//!   errors.
//! - Methods exist only on [`HostValue`]s ([`HostValue::method`], and
//!   computed fields for argument-less ones); no complex numbers, no
//!   `missingkey` option; a missing key of a [`Value::Map`] yields nil (printed `<no value>`), of
//!   a [`Value::StrMap`] (Go's `map[string]string`, as `$labels` is) `""`.
//!
//! Why not the `gtmpl` crate (0.7.1, the only Rust implementation of Go
//! templates, no release in years)? Tried on a handful of cases it handles
//! trimming, comments and `else if`, but: `{{break}}` fails to parse
//! ("function break not defined"); `and` does not short-circuit; exec
//! errors carry no position (`unable to get 9 in [Number(...)]`); parse
//! errors name no template and no line:col (`template: :3:unexpected EOF`
//! for a one-line template); `printf "%5s"` pads on the wrong
//! side; and nothing bounds output size or evaluation steps.

mod exec;
mod fmt;
mod funcs;
mod lex;
mod parse;
mod value;

use std::collections::HashMap;
use std::sync::Arc;

pub use funcs::{html_escape, js_escape, query_escape, Func, FuncError, Funcs};

/// Go's `fmt.Sprintf` over template values (the verbs `printf` knows).
pub fn sprintf(format: &str, args: &[Value]) -> String {
    fmt::sprintf(format, args)
}

/// The text `{{ . }}` prints for `v` (Go's `fmt.Sprint`).
pub fn display(v: &Value) -> String {
    fmt::display(v)
}
pub use value::{HostValue, Value};

use parse::Tree;

/// Execution limits and modes.
#[derive(Debug, Clone)]
pub struct Options {
    /// HTML-escape every action's output (text context only; see the crate doc).
    pub escape_html: bool,
    /// Largest output in bytes; beyond it execution fails with
    /// [`Error::OutputLimit`].
    pub max_output: usize,
    /// Deepest nesting of `template` calls and `if`/`range`/`with` bodies.
    pub max_depth: usize,
    /// Most evaluation steps (nodes, commands, operands) in one execution.
    pub max_steps: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            escape_html: false,
            max_output: 1 << 20,
            max_depth: 200,
            max_steps: 1_000_000,
        }
    }
}

/// A template error; every variant names the template.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad syntax, at byte `col` (0-based, as Go counts) of 1-based `line`.
    #[error("template: {name}:{line}:{col}: {msg}")]
    Parse {
        name: String,
        line: usize,
        col: usize,
        msg: String,
    },
    /// Execution failed at a node (boxed: it is the large variant).
    #[error(transparent)]
    Exec(Box<ExecError>),
    /// `execute_template` named a template that was never defined.
    #[error("template: no template {name:?} associated with template {root:?}")]
    NoTemplate { name: String, root: String },
    #[error("template: {name}: output exceeds the limit of {limit} bytes")]
    OutputLimit { name: String, limit: usize },
    #[error("template: {name}: execution exceeds the limit of {limit} steps")]
    StepLimit { name: String, limit: u64 },
}

/// Where and why execution failed.
#[derive(Debug, thiserror::Error)]
#[error("template: {name}:{line}:{col}: executing {template:?} at <{context}>: {msg}")]
pub struct ExecError {
    /// The template whose source holds the node.
    pub name: String,
    /// The template executing (differs from `name` inside a `define`).
    pub template: String,
    /// 1-based line.
    pub line: usize,
    /// 0-based byte column, as Go counts.
    pub col: usize,
    /// The source text of the failing node.
    pub context: String,
    pub msg: String,
    /// A function's own error, when a function failed.
    #[source]
    pub source: Option<FuncError>,
}

/// 1-based line and 0-based byte column of `pos` in `src`.
pub(crate) fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(src.len());
    let before = &src.as_bytes()[..pos];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let col = match before.iter().rposition(|&b| b == b'\n') {
        Some(nl) => pos - nl - 1,
        None => pos,
    };
    (line, col)
}

/// A named template and the templates it defines, as Go's `*Template`.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    trees: HashMap<String, Arc<Tree>>,
    funcs: Funcs,
    options: Options,
}

impl Template {
    /// An empty template called `name` (the name errors report).
    pub fn new(name: impl Into<String>) -> Self {
        Template {
            name: name.into(),
            trees: HashMap::new(),
            funcs: Funcs::new(),
            options: Options::default(),
        }
    }

    /// Adds functions; call before [`parse`](Self::parse), which checks
    /// function names.
    pub fn funcs(mut self, funcs: &Funcs) -> Self {
        self.funcs.extend(funcs);
        self
    }

    /// Sets execution options.
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// The template's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Parses `src` as this template's body and adds its `define`s. A body
    /// of only whitespace (and defines) does not replace an existing one, as
    /// in Go. On error nothing changes.
    pub fn parse(&mut self, src: &str) -> Result<&mut Self, Error> {
        let known = |n: &str| self.funcs.get(n).is_some() || funcs::BUILTINS.contains(&n);
        let (root, defines) = parse::parse(src, &known).map_err(|e| {
            let (line, col) = line_col(src, e.pos);
            Error::Parse {
                name: self.name.clone(),
                line,
                col,
                msg: e.msg,
            }
        })?;
        let shared: Arc<str> = Arc::from(src);
        for (name, list) in defines {
            self.trees.insert(
                name.clone(),
                Arc::new(Tree {
                    name,
                    parse_name: self.name.clone(),
                    src: shared.clone(),
                    root: list,
                }),
            );
        }
        let empty = root
            .iter()
            .all(|n| matches!(n, parse::Node::Text(t) if t.trim().is_empty()));
        if !empty || !self.trees.contains_key(&self.name) {
            self.trees.insert(
                self.name.clone(),
                Arc::new(Tree {
                    name: self.name.clone(),
                    parse_name: self.name.clone(),
                    src: shared,
                    root,
                }),
            );
        }
        Ok(self)
    }

    /// Names of all defined templates, sorted.
    pub fn templates(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.trees.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Executes this template with `data` as dot.
    pub fn execute(&self, data: &Value) -> Result<String, Error> {
        self.execute_template(&self.name, data)
    }

    /// Executes the template `name` (this one or a `define`d one).
    pub fn execute_template(&self, name: &str, data: &Value) -> Result<String, Error> {
        let tree = self.trees.get(name).ok_or_else(|| Error::NoTemplate {
            name: name.into(),
            root: self.name.clone(),
        })?;
        exec::execute(self, tree, data)
    }
}
