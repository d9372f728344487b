//! The bridge from alerting rules to the template engine: Prometheus's
//! template data (`$labels`, `$value`, `$externalLabels`, `$externalURL`)
//! for one alert.
//!
//! Interim: until `crate::template` lands, a template is returned as
//! written.

use crate::group::EvalEnv;
use koban_model::Labels;

/// Expands `text` for the alert `alert` whose sample has `labels` and
/// `value`, evaluated at `ts_ms`. The error text is what goes after
/// `<error expanding template: `.
pub(crate) fn expand(
    env: &EvalEnv,
    alert: &str,
    text: &str,
    labels: &Labels,
    value: f64,
    ts_ms: i64,
) -> Result<String, String> {
    let _ = (env, alert, labels, value, ts_ms);
    Ok(text.to_string())
}
