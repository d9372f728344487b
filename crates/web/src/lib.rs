//! HTTP API, federation and the embedded UI.
