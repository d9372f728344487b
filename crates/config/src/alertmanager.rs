//! The schema of alertmanager.yml (Alertmanager 0.25), with its defaults
//! and validation.
//!
//! Ownership while issue 16 is built: [`global`] (integration defaults) and
//! [`receivers`] (receivers and their integration configs) are one part;
//! the top-level config, the route tree, inhibit rules, time intervals and
//! loading are the other. The contract between them is [`global::Global`]
//! and [`receivers::Receiver::finish`].

pub mod global;
pub mod receivers;
