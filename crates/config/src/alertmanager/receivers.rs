//! `receivers`: one receiver and its integrations' configs.

use super::global::Global;
use crate::error::ConfigError;
use crate::tree::Node;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One entry of `receivers`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Receiver {
    pub name: String,
}

impl Receiver {
    /// Called by the loader once per receiver, after the whole file is
    /// decoded: fills each integration's defaults from `global`, makes its
    /// `*_file` paths relative to `base` (the config file's directory) and
    /// validates it. `node` is the receiver's YAML node (for positions) and
    /// `path` names the file in errors.
    #[allow(dead_code)] // the alertmanager.yml loader will call it
    pub(crate) fn finish(
        &mut self,
        _global: &Global,
        _node: Option<&Node>,
        _path: &Path,
        _base: &Path,
    ) -> Result<(), ConfigError> {
        Ok(())
    }
}
