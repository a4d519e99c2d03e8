//! A request the hard stop cut: its future is dropped mid-send (the iteration is interrupted at
//! the end of `gracefulStop` or `gracefulRampDown`), and this guard records it as a failed
//! request so a target that never answers is counted, not silently left out as k6 does.

use std::time::Instant;

use super::label::RequestLabel;
use super::shared::Shared;
use crate::http::CUT_BY_HARD_STOP;
use crate::metrics::SampleTags;
use crate::metrics::recorder::HttpFigures;

/// Armed while a request is being sent; recording happens only if it is dropped armed.
pub(crate) struct CutGuard<'a> {
    shared: &'a Shared,
    tags: SampleTags<'a>,
    label: RequestLabel<'a>,
    started: Instant,
    armed: bool,
}

impl<'a> CutGuard<'a> {
    /// Arms a guard for a request with these tags (`status`, `expected_response` and
    /// `error_code` are set here).
    pub(crate) fn arm(
        shared: &'a Shared,
        tags: SampleTags<'a>,
        label: RequestLabel<'a>,
    ) -> CutGuard<'a> {
        CutGuard {
            shared,
            tags: SampleTags {
                status: Some(0),
                expected_response: Some(false),
                error_code: Some(CUT_BY_HARD_STOP),
                ..tags
            },
            label,
            started: Instant::now(),
            armed: true,
        }
    }

    /// The request ended by itself (answered or failed): nothing to record here.
    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for CutGuard<'_> {
    fn drop(&mut self) {
        // A panic elsewhere unwinding through the VU is not a cut (and must not panic again).
        if !self.armed || std::thread::panicking() {
            return;
        }
        let elapsed = self.started.elapsed();
        let millis = elapsed.as_secs_f64() * 1000.0;
        // No response arrived: the whole time was spent waiting for one.
        let figures = HttpFigures {
            failed: true,
            phases: [0.0, 0.0, 0.0, 0.0, millis, 0.0],
            duration: millis,
            sent: 0,
            received: 0,
        };
        self.shared.recorder.http(&self.tags, &figures);
        self.shared.report_error(
            self.tags.scenario.unwrap_or_default(),
            Some(CUT_BY_HARD_STOP),
            self.tags.name.unwrap_or_default(),
            &format!(
                "{}: no response arrived before the hard stop cut the request after {:.1}s (error_code {CUT_BY_HARD_STOP})",
                self.label,
                elapsed.as_secs_f64()
            ),
        );
    }
}
