//! Notification integrations (email, Slack, webhook, ...): one module per
//! integration behind one trait.
