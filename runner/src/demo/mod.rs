//! The demo server (being written).
