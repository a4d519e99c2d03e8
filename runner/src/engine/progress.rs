//! Live progress: one line per second rewritten in place on a TTY, a plain line every few
//! seconds otherwise (CI logs).

use std::io::{IsTerminal, Write};
use std::time::Duration;

use crate::summary::format_ms;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Live line on a TTY, plain lines otherwise.
    Auto,
    /// Plain lines every this many seconds.
    Plain(u64),
    /// Nothing.
    Off,
}

/// The figures of one progress line.
#[derive(Debug, Clone, Default)]
pub struct ProgressLine {
    /// Time since the start.
    pub elapsed: Duration,
    /// Planned length.
    pub total: Duration,
    /// Active VUs.
    pub vus: i64,
    /// Highest VUs allowed.
    pub vus_max: i64,
    /// Requests per second in the last interval.
    pub rps: f64,
    /// p95 so far, ms.
    pub p95_ms: f64,
    /// Failure rate so far.
    pub failed_rate: f64,
    /// Requests so far.
    pub requests: u64,
    /// Dropped iterations so far.
    pub dropped: u64,
}

impl ProgressLine {
    /// The line's text.
    pub fn render(&self) -> String {
        format!(
            "running ({}/{}), {}/{} VUs, {} reqs, {:.0} req/s, p95={}, failed={:.2}%, dropped={}",
            clock(self.elapsed),
            clock(self.total),
            self.vus,
            self.vus_max,
            self.requests,
            self.rps,
            format_ms(self.p95_ms),
            self.failed_rate * 100.0,
            self.dropped
        )
    }
}

fn clock(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    let minutes = (seconds / 60.0).floor();
    format!("{minutes:.0}m{:04.1}s", seconds - minutes * 60.0)
}

/// Writes progress lines to stderr.
#[derive(Debug)]
pub struct Progress {
    mode: ProgressMode,
    tty: bool,
    ticks: u64,
}

impl Progress {
    /// A progress writer.
    pub fn new(mode: ProgressMode) -> Self {
        Progress {
            mode,
            tty: std::io::stderr().is_terminal(),
            ticks: 0,
        }
    }

    /// Called once per second.
    pub fn tick(&mut self, line: &ProgressLine) {
        self.ticks += 1;
        let mut err = std::io::stderr().lock();
        match self.mode {
            ProgressMode::Off => {}
            ProgressMode::Auto if self.tty => {
                let _ = write!(err, "\r\x1b[2K{}", line.render());
                let _ = err.flush();
            }
            ProgressMode::Auto => {
                if self.ticks.is_multiple_of(5) {
                    let _ = writeln!(err, "{}", line.render());
                }
            }
            ProgressMode::Plain(every) => {
                if self.ticks.is_multiple_of(every.max(1)) {
                    let _ = writeln!(err, "{}", line.render());
                }
            }
        }
    }

    /// Ends the live line.
    pub fn finish(&mut self, line: &ProgressLine) {
        let mut err = std::io::stderr().lock();
        match self.mode {
            ProgressMode::Off => {}
            ProgressMode::Auto if self.tty => {
                let _ = writeln!(err, "\r\x1b[2K{}", line.render());
            }
            _ => {
                let _ = writeln!(err, "{}", line.render());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_k6_like_line() {
        let line = ProgressLine {
            elapsed: Duration::from_millis(12_300),
            total: Duration::from_secs(70),
            vus: 120,
            vus_max: 2000,
            rps: 1234.4,
            p95_ms: 12.3,
            failed_rate: 0.0012,
            requests: 5000,
            dropped: 0,
        };
        assert_eq!(
            line.render(),
            "running (0m12.3s/1m10.0s), 120/2000 VUs, 5000 reqs, 1234 req/s, p95=12.3ms, failed=0.12%, dropped=0"
        );
    }
}
