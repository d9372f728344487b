//! The unit-test file as promtool reads it (`promtool test rules`), field
//! for field. Unknown keys are refused (promtool reads the file strictly
//! too); `null` counts as absent, as in Go's YAML decoding.

use koban_config::Duration;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

/// One test file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// Rule files, relative to the test file's directory; globs allowed.
    #[serde(default, deserialize_with = "nullable")]
    pub rule_files: Vec<String>,
    /// Step of the evaluation loop (default 1m).
    #[serde(default)]
    pub evaluation_interval: Option<Duration>,
    /// Groups listed here are evaluated in this order at each step.
    #[serde(default, deserialize_with = "nullable")]
    pub group_eval_order: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub tests: Vec<TestGroup>,
    /// Later promtool (3.x): floats compare equal within one ULP.
    #[serde(default)]
    pub fuzzy_compare: bool,
}

/// One entry of `tests`: input series and what to check on them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestGroup {
    /// Step between input samples (default: the file's
    /// `evaluation_interval`, as later promtool).
    #[serde(default)]
    pub interval: Option<Duration>,
    #[serde(default, deserialize_with = "nullable")]
    pub input_series: Vec<InputSeries>,
    #[serde(default, deserialize_with = "nullable")]
    pub alert_rule_test: Vec<AlertTestCase>,
    #[serde(default, deserialize_with = "nullable")]
    pub promql_expr_test: Vec<PromqlTestCase>,
    /// `$externalLabels` in templates (not added to alert labels).
    #[serde(default, deserialize_with = "nullable_map")]
    pub external_labels: BTreeMap<String, String>,
    /// `$externalURL` in templates.
    #[serde(default, deserialize_with = "nullable_scalar")]
    pub external_url: String,
    #[serde(default, deserialize_with = "nullable_scalar")]
    pub name: String,
}

/// `series` in PromQL's series notation, `values` in the expanding notation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSeries {
    #[serde(default, deserialize_with = "nullable_scalar")]
    pub series: String,
    #[serde(default, deserialize_with = "nullable_scalar")]
    pub values: String,
}

/// The firing alerts named `alertname` expected at `eval_time`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertTestCase {
    #[serde(default)]
    pub eval_time: Duration,
    #[serde(default, deserialize_with = "nullable_scalar")]
    pub alertname: String,
    #[serde(default, deserialize_with = "nullable")]
    pub exp_alerts: Vec<ExpAlert>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpAlert {
    #[serde(default, deserialize_with = "nullable_map")]
    pub exp_labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "nullable_map")]
    pub exp_annotations: BTreeMap<String, String>,
}

/// The result expected of `expr` evaluated at `eval_time` (after the rules).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromqlTestCase {
    #[serde(default, deserialize_with = "nullable_scalar")]
    pub expr: String,
    #[serde(default)]
    pub eval_time: Duration,
    #[serde(default, deserialize_with = "nullable")]
    pub exp_samples: Vec<ExpSample>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpSample {
    /// A series descriptor such as `up{job="x"}` (`{}` for a scalar).
    #[serde(default, deserialize_with = "nullable_scalar")]
    pub labels: String,
    #[serde(default)]
    pub value: f64,
    /// Later promtool: a native histogram in series notation. Koban has no
    /// native histograms; a non-empty value is refused when the case runs.
    #[serde(default, deserialize_with = "nullable_scalar")]
    pub histogram: String,
}

fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A YAML scalar read as text, as Go's decoder does for string fields
/// (`code: 500` is the string "500").
#[derive(Debug, Default, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(String::new()))
            }
        }
        // As text where the parser allows (keeps `y`, `1.50` as written).
        d.deserialize_str(V)
    }
}

fn nullable_scalar<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<Scalar>::deserialize(d)?.unwrap_or_default().0)
}

fn nullable_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let m = Option::<BTreeMap<Scalar, Scalar>>::deserialize(d)?.unwrap_or_default();
    Ok(m.into_iter().map(|(k, v)| (k.0, v.0)).collect())
}

/// Parses a test file's text; the error names the line and column.
pub fn parse(text: &str) -> Result<TestFile, String> {
    serde_saphyr::from_str::<Option<TestFile>>(text)
        .map(Option::unwrap_or_default)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_promtools_fields_and_go_style_scalars() {
        let f = parse(
            r#"
rule_files: [a.yml]
evaluation_interval: 30s
group_eval_order: [g1, g2]
tests:
  - interval: 1m
    name: t
    external_labels: {cluster: c1}
    external_url: http://x/
    input_series:
      - series: 'up{job="a"}'
        values: 1.50
    alert_rule_test:
      - eval_time: 5m
        alertname: A
        exp_alerts:
          - exp_labels: {code: 500, ok: true}
            exp_annotations:
    promql_expr_test:
      - expr: up
        eval_time: 0
        exp_samples:
          - labels: 'up{job="a"}'
            value: 1
      - expr: y
"#,
        )
        .unwrap();
        assert_eq!(f.evaluation_interval.unwrap().as_millis(), 30_000);
        let t = &f.tests[0];
        assert_eq!(t.input_series[0].values, "1.50");
        assert_eq!(t.promql_expr_test[1].expr, "y");
        let a = &t.alert_rule_test[0].exp_alerts[0];
        assert_eq!(a.exp_labels["code"], "500");
        assert_eq!(a.exp_labels["ok"], "true");
        assert!(a.exp_annotations.is_empty());
        assert_eq!(t.promql_expr_test[0].exp_samples[0].value, 1.0);
    }

    #[test]
    fn refuses_unknown_keys_naming_them() {
        let e = parse("tests:\n  - intervall: 1m\n").unwrap_err();
        assert!(e.contains("intervall"), "{e}");
        assert!(parse("").unwrap().tests.is_empty());
    }
}
