//! The bridge from alerting rules to [`crate::template`]: expands one
//! label or annotation text for one alert.

use crate::group::EvalEnv;
use crate::template::Expander;
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
    Expander::new(alert, text).expand(env, labels, value, ts_ms)
}
