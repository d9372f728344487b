//! Relabel rule schema used by `relabel_configs`, `metric_relabel_configs`,
//! `write_relabel_configs` and `alert_relabel_configs`: the model crate's
//! [`RelabelConfig`] (regex compiled while loading, `validate()` after).

pub use koban_model::relabel::RelabelConfig;
