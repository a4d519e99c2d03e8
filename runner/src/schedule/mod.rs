//! Executor schedules and execution segments (being written).
