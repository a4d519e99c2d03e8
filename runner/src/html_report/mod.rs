//! The HTML report of a run (`stampede run --report FILE`, `stampede report NAME --html FILE`):
//! a single file that opens offline, built from a summary.
//!
//! - `model`: what the page shows, computed from the summary by pure functions;
//! - `page`: the page itself, with its charts' script and the charting library inline.

mod model;
mod page;

pub use model::{CheckLine, Headline, Quantile, ReportData, Series, StepLine, ThresholdRow};

use crate::summary::Summary;

/// The report page of `summary`.
pub fn render_html(summary: &Summary) -> String {
    page::render(&ReportData::of(summary))
}
