//! The built-in Alertmanager (issue 16): what Prometheus's Alertmanager 0.25
//! does, with its alertmanager.yml, its API v2 and its cluster protocol.
//!
//! Layout (one concern per module; the config schema is
//! `koban_config::alertmanager`):
//! - [`notify`]: the integrations (email, Slack, webhook, ...), one module
//!   each behind one trait, and their retry loop.
//! - [`types`]: alerts, fingerprints, merge and validation as 0.25.
//! - [`store`]: the alert store (merge on re-post, gc, subscription);
//!   [`marker`]: per-alert status (unprocessed/active/suppressed).
//! - [`template`]: Alertmanager's template data and default templates, on
//!   `koban_template`.
//!
//! Nothing here names a storage or web type: the binary wires the parts.

pub mod marker;
pub mod notify;
pub mod store;
pub mod template;
pub mod types;
