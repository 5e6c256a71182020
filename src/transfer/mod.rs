//! Moving data in and out: CSV export (and the CSV conventions it shares
//! with `COPY`).

pub mod csv_out;
pub mod export;
