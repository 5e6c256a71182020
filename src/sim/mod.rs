//! A local simulator of the Productive API with a demo organization.

pub mod store;
