//! Preparing a configuration: what the notifier needs from
//! `global.external_labels` and `alerting`, with the HTTP clients built.

use crate::NotifierError;
use koban_config::{AlertmanagerConfig, Config, RelabelConfig};
use koban_httpclient::{ClientOptions, HttpClient};
use koban_model::Labels;
use std::sync::Arc;
use std::time::Duration;

/// One entry of `alerting.alertmanagers`, ready to run.
pub(crate) struct SetConfig {
    /// `config-0`, `config-1`, ... (the discovery set name, as Prometheus).
    pub name: String,
    /// The entry as loaded; equal entries keep their running senders.
    pub source: AlertmanagerConfig,
    pub client: HttpClient,
    pub timeout: Duration,
}

impl SetConfig {
    pub fn relabel_configs(&self) -> &[RelabelConfig] {
        &self.source.relabel_configs
    }

    pub fn alert_relabel_configs(&self) -> &[RelabelConfig] {
        &self.source.alert_relabel_configs
    }
}

/// What [`crate::Notifier::send`] applies to every alert before it is queued.
#[derive(Default)]
pub(crate) struct Global {
    pub external_labels: Labels,
    pub alert_relabel_configs: Vec<RelabelConfig>,
    /// False when `alerting.alertmanagers` is empty: alerts are dropped at once.
    pub has_alertmanagers: bool,
}

/// A configuration checked and built by [`crate::Notifier::prepare`], for
/// [`crate::Notifier::commit`].
pub struct Prepared {
    pub(crate) config: Arc<Config>,
    pub(crate) global: Arc<Global>,
    pub(crate) sets: Vec<Arc<SetConfig>>,
}

/// Builds the sets of `cfg`, reusing those of `old` whose entry is equal
/// (same clients, senders kept running).
pub(crate) fn prepare(
    cfg: &Arc<Config>,
    old: &[Arc<SetConfig>],
) -> Result<Prepared, NotifierError> {
    let mut sets = Vec::with_capacity(cfg.alerting.alertmanagers.len());
    for (i, am) in cfg.alerting.alertmanagers.iter().enumerate() {
        let name = format!("config-{i}");
        if let Some(o) = old.iter().find(|o| o.name == name && o.source == *am) {
            sets.push(o.clone());
            continue;
        }
        if am.api_version != "v2" {
            return Err(NotifierError::ApiVersion {
                set: name,
                version: am.api_version.clone(),
            });
        }
        let client = HttpClient::new(
            &am.http_client_config(),
            "alertmanager",
            ClientOptions {
                gzip: false,
                ..ClientOptions::default()
            },
        )
        .map_err(|source| NotifierError::HttpClient {
            set: name.clone(),
            source,
        })?;
        sets.push(Arc::new(SetConfig {
            name,
            source: am.clone(),
            client,
            timeout: Duration::from_millis(am.timeout.as_millis().max(1)),
        }));
    }
    let global = Global {
        external_labels: cfg.global.external_labels(),
        alert_relabel_configs: cfg.alerting.alert_relabel_configs.clone(),
        has_alertmanagers: !sets.is_empty(),
    };
    Ok(Prepared {
        config: cfg.clone(),
        global: Arc::new(global),
        sets,
    })
}
