//! Process exit codes, k6's where k6 has one (`errext/exitcodes/codes.go`).

/// Everything passed.
pub const OK: u8 = 0;
/// A threshold failed (also on abortOnFail).
pub const THRESHOLDS_FAILED: u8 = 99;
/// The manifest or the command line is invalid.
pub const INVALID_CONFIG: u8 = 104;
/// Stopped by SIGINT / SIGTERM.
pub const EXTERNAL_ABORT: u8 = 105;
