//! Prometheus's rule templates: its template data (`$labels`, `$value`,
//! `$externalLabels`, `$externalURL`) and functions (`humanize`, `query`,
//! `first`, `label`, ...) over koban-template.
//!
//! Contract: an [`Expander`] is compiled once per rule text (with
//! Prometheus's prelude of variable definitions, as template
//! `__alert_NAME`) and executed per alert; its output and error texts are
//! those Prometheus 2.42 gives. Text without `{{` is copied as is.
//! `query` runs at the evaluation time through the [`EvalEnv`]'s engine;
//! the context is set per execution (thread-local), so a compiled
//! expander is shared freely.

mod funcs;
mod numbers;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use koban_model::Labels;
use koban_template::{Funcs, Template, Value};

use crate::group::EvalEnv;

/// Prometheus's definitions, prepended to every rule template.
pub(crate) const PRELUDE: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// Where `query` runs during one execution.
pub(crate) struct QueryCtx {
    pub engine: Arc<koban_promql::Engine>,
    pub queryable: Arc<dyn koban_storage::Queryable>,
    pub ts_ms: i64,
    /// `$externalURL`, for `externalURL` and `pathPrefix`.
    pub external_url: String,
}

thread_local! {
    pub(crate) static QUERY: RefCell<Option<QueryCtx>> = const { RefCell::new(None) };
}

fn funcs() -> &'static Funcs {
    static F: OnceLock<Funcs> = OnceLock::new();
    F.get_or_init(funcs::prometheus)
}

/// One compiled label or annotation template.
#[derive(Debug, Clone)]
pub(crate) enum Expander {
    /// No `{{`: the text as written.
    Plain(String),
    Tmpl(Box<Template>),
    /// The text does not parse (the loader refuses such rules; kept for
    /// rules built without the loader).
    Bad(String),
}

impl Expander {
    /// Compiles `text` as a template of the alert `alert`.
    pub(crate) fn new(alert: &str, text: &str) -> Expander {
        if !text.contains("{{") {
            return Expander::Plain(text.to_string());
        }
        let mut t = Template::new(format!("__alert_{alert}")).funcs(funcs());
        match t.parse(&format!("{PRELUDE}{text}")) {
            Ok(_) => Expander::Tmpl(Box::new(t)),
            Err(e) => Expander::Bad(format!(
                "error parsing template __alert_{alert}: {}",
                shift_parse_error(e)
            )),
        }
    }

    /// Renders the template for one alert; the error is the text after
    /// `<error expanding template: `.
    pub(crate) fn expand(
        &self,
        env: &EvalEnv,
        labels: &Labels,
        value: f64,
        ts_ms: i64,
    ) -> Result<String, String> {
        let t = match self {
            Expander::Plain(s) => return Ok(s.clone()),
            Expander::Bad(e) => return Err(e.clone()),
            Expander::Tmpl(t) => t,
        };
        let data = Value::Host(Arc::new(funcs::Data {
            labels: str_map(labels),
            external_labels: str_map(&env.external_labels),
            external_url: env.external_url.clone(),
            value,
        }));
        let prev = QUERY.with(|q| {
            q.replace(Some(QueryCtx {
                engine: env.engine.clone(),
                queryable: env.queryable.clone(),
                ts_ms,
                external_url: env.external_url.clone(),
            }))
        });
        let out = t.execute(&data);
        QUERY.with(|q| q.replace(prev));
        out.map_err(|e| format!("error executing template {}: {e}", t.name()))
    }
}

fn str_map(l: &Labels) -> Value {
    let m: BTreeMap<String, String> = l
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect();
    Value::StrMap(Arc::new(m))
}

/// A parse error with columns of line 1 counted without the prelude.
fn shift_parse_error(e: koban_template::Error) -> String {
    match e {
        koban_template::Error::Parse {
            name,
            line,
            col,
            msg,
        } => {
            let col = if line == 1 {
                col.saturating_sub(PRELUDE.len())
            } else {
                col
            };
            format!("template: {name}:{line}:{col}: {msg}")
        }
        e => e.to_string(),
    }
}

/// Whether a rule's error text is a template error (from
/// [`Expander::expand`]), which does not fail the evaluation.
pub fn is_template_error(e: &str) -> bool {
    e.starts_with("error executing template ") || e.starts_with("error parsing template ")
}

/// `Ok` when `text` parses as a rule template called `name` with
/// Prometheus's variables and functions; else the parse error, positioned
/// in `text` (the prelude excluded). Nothing is executed.
pub fn check(name: &str, text: &str) -> Result<(), String> {
    let mut t = Template::new(name).funcs(funcs());
    t.parse(&format!("{PRELUDE}{text}"))
        .map(|_| ())
        .map_err(shift_parse_error)
}

#[cfg(test)]
mod tests;
