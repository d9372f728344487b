//! Scrape manager and per-target scrape loops.
