//! Replication of a Productive organization into a database the user owns.
//!
//! - [`replicate`]: the engine (full and incremental copies, deletions,
//!   watermarks, retries of failed records).
//! - [`target`]: the SQLite and PostgreSQL targets.
//! - [`value`]: one JSON:API value as a target stores it.
//! - [`progress`]: progress bars and the per-table summary.

pub mod progress;
pub mod replicate;
pub mod target;
pub mod value;

pub use progress::{Progress, TableSummary};
pub use replicate::{ReplicateError, ReplicateOptions, RunReport, run};
