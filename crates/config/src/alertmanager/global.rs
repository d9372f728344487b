//! `global`: resolve_timeout and the integrations' defaults (smtp_*,
//! slack_api_url, http_config, ...).

use crate::Duration;
use serde::{Deserialize, Serialize};

/// The `global` section.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Global {
    /// How long an alert without endsAt stays active after its last update.
    pub resolve_timeout: Duration,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            resolve_timeout: Duration::from_secs(300),
        }
    }
}
