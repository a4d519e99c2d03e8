//! Process exit codes, k6's where k6 has one (`errext/exitcodes/codes.go`).

/// Everything passed.
pub const OK: u8 = 0;
/// A threshold failed (also on abortOnFail).
pub const THRESHOLDS_FAILED: u8 = 99;
/// The manifest or the command line is invalid.
pub const INVALID_CONFIG: u8 = 104;
/// Stopped by SIGINT / SIGTERM.
pub const EXTERNAL_ABORT: u8 = 105;
/// `stampede wait`: the wait timed out before the run finished (k6's GenericTimeout).
pub const TIMEOUT: u8 = 102;
/// `stampede wait`: the run was Errored — runner failure, unschedulable, image pull (k6's
/// GenericEngine).
pub const ERRORED: u8 = 103;
/// `stampede wait`: the run was Aborted without a failed threshold, e.g. superseded by a spec
/// change (k6's ScriptAborted).
pub const ABORTED: u8 = 108;
/// Anything else that went wrong (no such LoadTest, no cluster access).
pub const FAILURE: u8 = 1;
