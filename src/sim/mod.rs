//! A local simulator of the Productive API with a demo organization.

pub mod demo;
pub mod store;
