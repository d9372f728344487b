//! Relabelling (placeholder).
