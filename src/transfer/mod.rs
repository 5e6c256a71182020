//! Moving data in and out of Productive.
//!
//! - [`csv_in`]: CSV and PostgreSQL's text format read for a bulk load.
//! - [`import`]: a CSV file into a table, row by row, with rejects and a
//!   journal for reruns.
//! - [`csv_out`]: CSV in PostgreSQL's conventions, shared with `COPY`.
//! - [`export`]: a table or a query to a CSV file.
//! - [`replicate`]: the replication engine (full and incremental copies,
//!   deletions, watermarks, retries of failed records).
//! - [`sync`]: two-way sync of tables with a target.
//! - [`target`]: the SQLite and PostgreSQL targets.
//! - [`value`]: one JSON:API value as a target stores it.
//! - [`progress`]: progress bars and the per-table summary.

pub mod csv_in;
pub mod csv_out;
pub mod export;
pub mod import;
pub mod progress;
pub mod replicate;
pub mod sync;
pub mod target;
pub mod value;

pub use progress::{Progress, TableSummary};
pub use replicate::{ReplicateError, ReplicateOptions, RunReport, run};
