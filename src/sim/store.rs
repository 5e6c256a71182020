//! The simulator's in-memory organization: records as the API sends them.
//!
//! Records keep their attributes as the exact JSON values the real API
//! writes (ids as strings, decimals as strings, timestamps with offset), so
//! serving a record is a copy, not a conversion. Relationships are kept as
//! linkage; whether a response shows it depends on `include=`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A reference to another record: its JSON:API type and id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ref {
    pub kind: String,
    pub id: u64,
}

impl Ref {
    pub fn new(kind: impl Into<String>, id: u64) -> Ref {
        Ref {
            kind: kind.into(),
            id,
        }
    }
}

/// The linkage of one relationship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    One(Option<Ref>),
    Many(Vec<Ref>),
}

/// One record of a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: u64,
    /// Attribute values exactly as the API writes them in JSON.
    pub attributes: Map<String, Value>,
    /// Relationship linkage by relationship name. A relationship of the
    /// catalog that is missing here is empty (`null` or `[]`).
    pub relationships: BTreeMap<String, Link>,
}

impl Record {
    pub fn new(id: u64) -> Record {
        Record {
            id,
            attributes: Map::new(),
            relationships: BTreeMap::new(),
        }
    }

    /// The id of a to-one relationship, if set.
    pub fn link_id(&self, relationship: &str) -> Option<u64> {
        match self.relationships.get(relationship) {
            Some(Link::One(Some(r))) => Some(r.id),
            _ => None,
        }
    }

    pub fn set_one(&mut self, relationship: &str, target: Option<Ref>) {
        self.relationships
            .insert(relationship.to_string(), Link::One(target));
    }

    pub fn set_many(&mut self, relationship: &str, targets: Vec<Ref>) {
        self.relationships
            .insert(relationship.to_string(), Link::Many(targets));
    }
}

/// Every record of the organization, by JSON:API type and id.
#[derive(Debug, Clone, Default)]
pub struct Store {
    pub organization_id: u64,
    records: BTreeMap<String, BTreeMap<u64, Record>>,
    next_id: u64,
}

impl Store {
    pub fn new(organization_id: u64) -> Store {
        Store {
            organization_id,
            records: BTreeMap::new(),
            next_id: 1,
        }
    }

    /// A fresh id, unique across all types (the real API's ids are too).
    pub fn allocate_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Inserts or replaces a record, keeping id allocation ahead of it.
    pub fn put(&mut self, kind: &str, record: Record) {
        self.next_id = self.next_id.max(record.id + 1);
        self.records
            .entry(kind.to_string())
            .or_default()
            .insert(record.id, record);
    }

    pub fn get(&self, kind: &str, id: u64) -> Option<&Record> {
        self.records.get(kind).and_then(|m| m.get(&id))
    }

    pub fn get_mut(&mut self, kind: &str, id: u64) -> Option<&mut Record> {
        self.records.get_mut(kind).and_then(|m| m.get_mut(&id))
    }

    pub fn remove(&mut self, kind: &str, id: u64) -> Option<Record> {
        self.records.get_mut(kind).and_then(|m| m.remove(&id))
    }

    /// All records of a type, in id order.
    pub fn all(&self, kind: &str) -> impl Iterator<Item = &Record> {
        self.records.get(kind).into_iter().flat_map(|m| m.values())
    }

    pub fn count(&self, kind: &str) -> usize {
        self.records.get(kind).map_or(0, |m| m.len())
    }

    /// The JSON:API types that have records.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.records.keys().map(String::as_str)
    }
}
