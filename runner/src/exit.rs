//! The process exit codes of every `stampede` command, the agent's included: one enum, k6's
//! numbers where k6 has one (`errext/exitcodes/codes.go`). README.md lists them in one table.

use std::process::ExitCode;

/// How a `stampede` process ends. The discriminant is the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Exit {
    /// Everything passed (or the command did its job).
    Ok = 0,
    /// Anything else that went wrong: no such LoadTest, no cluster access, no result yet, a
    /// runner that could not run its part.
    Failure = 1,
    /// The command line could not be parsed (clap's usage errors), or `stampede agent` runs
    /// outside a runner pod (its environment is missing or malformed).
    Usage = 2,
    /// A threshold failed (also when `abortOnFail` stopped the run).
    ThresholdsFailed = 99,
    /// `stampede wait`: the wait timed out before the run finished (k6's GenericTimeout).
    Timeout = 102,
    /// `stampede wait`: the run was Errored — runner failure, unschedulable, image pull (k6's
    /// GenericEngine).
    Errored = 103,
    /// The manifest or a command-line value is invalid (for `stampede wait`: the LoadTest is
    /// Invalid).
    InvalidConfig = 104,
    /// Stopped by SIGINT / SIGTERM.
    ExternalAbort = 105,
    /// `stampede wait`: the run was Aborted without a failed threshold, e.g. superseded by a
    /// spec change (k6's ScriptAborted).
    Aborted = 108,
}

impl Exit {
    /// Every exit code, in numeric order.
    pub const ALL: [Exit; 9] = [
        Exit::Ok,
        Exit::Failure,
        Exit::Usage,
        Exit::ThresholdsFailed,
        Exit::Timeout,
        Exit::Errored,
        Exit::InvalidConfig,
        Exit::ExternalAbort,
        Exit::Aborted,
    ];

    /// The process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_exit_code_keeps_its_number() {
        let numbers: Vec<(Exit, u8)> = Exit::ALL.iter().map(|e| (*e, e.code())).collect();
        assert_eq!(
            numbers,
            [
                (Exit::Ok, 0),
                (Exit::Failure, 1),
                (Exit::Usage, 2),
                (Exit::ThresholdsFailed, 99),
                (Exit::Timeout, 102),
                (Exit::Errored, 103),
                (Exit::InvalidConfig, 104),
                (Exit::ExternalAbort, 105),
                (Exit::Aborted, 108),
            ]
        );
    }
}
