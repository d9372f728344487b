//! The config crate's error type.

use std::fmt;
use std::path::{Path, PathBuf};

/// An error loading or validating a config file.
///
/// Display is `path:line:col: message`, or `path: message` when the position
/// is unknown (line 0).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    /// Malformed YAML or a value of the wrong type.
    #[error("{}: {message}", FilePos(path, *line, *column))]
    Yaml {
        path: PathBuf,
        line: u32,
        column: u32,
        message: String,
    },
    /// A key the schema does not know.
    #[error("{}: unknown field \"{field}\"{}", FilePos(path, *line, *column), Expected(expected))]
    UnknownField {
        path: PathBuf,
        line: u32,
        column: u32,
        field: String,
        expected: Vec<String>,
    },
    /// A Prometheus feature (service discovery provider, auth method...) Koban does not implement.
    #[error("{}: {key} is not supported by Koban yet", FilePos(path, *line, *column))]
    Unsupported {
        path: PathBuf,
        line: u32,
        column: u32,
        key: String,
    },
    /// A well-formed value that fails validation (duplicate job, timeout > interval...).
    #[error("{}: {message}", FilePos(path, *line, *column))]
    Invalid {
        path: PathBuf,
        line: u32,
        column: u32,
        message: String,
    },
}

impl ConfigError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ConfigError::Io { path, .. }
            | ConfigError::Yaml { path, .. }
            | ConfigError::UnknownField { path, .. }
            | ConfigError::Unsupported { path, .. }
            | ConfigError::Invalid { path, .. } => path,
        }
    }

    /// The message without the file and position.
    pub fn message(&self) -> String {
        match self {
            ConfigError::Io { message, .. }
            | ConfigError::Yaml { message, .. }
            | ConfigError::Invalid { message, .. } => message.clone(),
            ConfigError::UnknownField {
                field, expected, ..
            } => format!("unknown field \"{field}\"{}", Expected(expected)),
            ConfigError::Unsupported { key, .. } => format!("{key} is not supported by Koban yet"),
        }
    }

    /// `(line, column)`, 1-based, when known.
    pub fn position(&self) -> Option<(u32, u32)> {
        match self {
            ConfigError::Io { .. } => None,
            ConfigError::Yaml { line, column, .. }
            | ConfigError::UnknownField { line, column, .. }
            | ConfigError::Unsupported { line, column, .. }
            | ConfigError::Invalid { line, column, .. } => (*line > 0).then_some((*line, *column)),
        }
    }
}

/// A place in a file as errors name it: `path:line:col`, or `path` when
/// the line is 0 (unknown).
pub struct FilePos<'a>(pub &'a Path, pub u32, pub u32);

impl fmt::Display for FilePos<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.1 == 0 {
            write!(f, "{}", self.0.display())
        } else {
            write!(f, "{}:{}:{}", self.0.display(), self.1, self.2)
        }
    }
}

struct Expected<'a>(&'a [String]);

impl fmt::Display for Expected<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        f.write_str(", expected one of: ")?;
        f.write_str(&self.0.join(", "))
    }
}
