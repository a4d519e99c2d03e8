//! The per-VU HTTP client (being written).
