//! Delivers alerts to Alertmanagers, as Prometheus's notifier does: one
//! queue, batches of 64, each Alertmanager sent to independently over API
//! v2, with drops and errors counted. Implements
//! [`koban_model::AlertSink`].
