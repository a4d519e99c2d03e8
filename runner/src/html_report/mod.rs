//! The HTML report of a run (`stampede run --report FILE`, `stampede report NAME --html FILE`):
//! a single file that opens offline, built from a summary; and the same page live, for the
//! dashboard (`stampede run --dashboard`), with its updates.
//!
//! - `model`: what the page shows, computed from the summary by pure functions;
//! - `page`: the page itself, with its charts' script and the charting library inline.

mod model;
mod page;

pub use page::{live_update as live_update_of, render_live as render_live_of};

pub use model::{
    CheckLine, FleetView, Headline, Quantile, ReportData, RunnerLine, Series, StepLine,
    ThresholdRow,
};

use crate::summary::Summary;

/// The report page of `summary`.
pub fn render_html(summary: &Summary) -> String {
    page::render(&ReportData::of(summary))
}

/// The live dashboard's page for the run so far, reading updates from `events`.
pub fn render_live_html(summary: &Summary, events: &str) -> String {
    page::render_live(&ReportData::of(summary), events)
}

/// One live update of the dashboard (JSON without `<`, `>` or `&`): the charts' data and the
/// page's text parts; `done` for the final one.
pub fn live_update(summary: &Summary, done: bool) -> String {
    page::live_update(&ReportData::of(summary), done)
}
