//! Metrics: the series a test records (k6's built-ins and their tagged sub-metrics), the
//! mergeable values they hold, and the per-thread recording that keeps locks off the hot path.

pub mod errors;
pub mod hdr_wire;
pub mod in_flight;
pub mod recorder;
pub mod registry;
pub mod sketch;
pub mod snapshot;
pub mod tags;

pub use recorder::{Recorder, Shards};
pub use registry::{Metric, Registry, SeriesId};
pub use snapshot::{Snapshot, Value};
pub use tags::SampleTags;
