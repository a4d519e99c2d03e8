//! The HTML report of a run (`stampede run --report FILE`, `stampede report NAME --html FILE`):
//! a single file that opens offline, built from a summary; and the same page live, for the
//! dashboard (`stampede run --dashboard`), with its updates.
//!
//! - `model`: what the page shows, computed from the summary by pure functions;
//! - `page`: the page itself, with its charts' script and the charting library inline.

mod model;
mod page;

pub use page::{live_update, render_live as render_live_html};

pub use model::{
    CheckLine, FleetView, Headline, Quantile, ReportData, RunnerLine, Series, StepLine,
    ThresholdRow,
};

use crate::summary::Summary;

/// The report page of `summary`.
pub fn render_html(summary: &Summary) -> String {
    page::render(&ReportData::of(summary))
}
