//! Productive resources as DataFusion tables: columns from the catalog,
//! predicate pushdown into API requests, and the streaming scan.

pub mod convert;
pub mod exec;
pub mod options;
pub mod provider;
pub mod pushdown;
pub mod schema;

pub use options::ProductiveOptions;
pub use provider::ProductiveTable;
pub use schema::TableDef;
