//! Service discovery: the [`Discoverer`] trait, the [`DiscoveryManager`] and
//! one module per provider (static, file, dns).
//!
//! Providers send lists of [`TargetGroup`]s: first their full set, then the
//! full groups of every source that changed (an empty group means the source
//! has no targets any more). The manager merges them per job (or per
//! alertmanager set), debounces, and publishes the merged view on a
//! `tokio::sync::watch` channel.

pub mod dns;
pub mod file;
mod manager;
pub mod static_sd;

pub use dns::DnsDiscoverer;
pub use file::{read_file, FileDiscoverer, FileSdError, FileSdStatus, META_FILEPATH};
pub use manager::{DiscoveryManager, ProviderSpec, Targets};
pub use static_sd::StaticDiscoverer;

use koban_model::Labels;
use std::future::Future;
use std::pin::Pin;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The label holding a target's `host:port`.
pub const ADDRESS_LABEL: &str = "__address__";

/// A set of targets sharing labels, identified by `source` within its provider.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetGroup {
    /// Unique within the provider (e.g. `path/to/file.json:0` or `0`).
    pub source: String,
    /// One label set per target; each holds at least `__address__`.
    pub targets: Vec<Labels>,
    /// Labels common to every target of the group.
    pub labels: Labels,
}

/// A boxed `Send` future, as returned by [`Discoverer::run`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A service discovery provider.
pub trait Discoverer: Send + 'static {
    /// Runs until `cancel` fires (or `tx` is closed). Sends the full set of
    /// groups first, then, on every change, the full groups of the changed
    /// sources (empty groups for sources that vanished).
    fn run(
        self: Box<Self>,
        cancel: CancellationToken,
        tx: mpsc::Sender<Vec<TargetGroup>>,
    ) -> BoxFuture<'static, ()>;
}
