//! YAML schemas for prometheus.yml, rule files and alertmanager.yml, with validation.
