//! Alertmanager's template data (Receiver, Status, Alerts, GroupLabels,
//! CommonLabels, CommonAnnotations, ExternalURL) and its default templates.
