//! The simulator's in-memory organization: records as the API sends them.
//!
//! Records keep their attributes as the exact JSON values the real API
//! writes (ids as strings, decimals as strings, timestamps with offset), so
//! serving a record is a copy, not a conversion. Relationships are kept as
//! linkage; whether a response shows it depends on `include=`.
//!
//! Memory matters at the scales the benchmarks use (a million tasks), so
//! attribute names are interned once for the process and NULL values are
//! not kept: an attribute the record does not hold is NULL, which is how
//! every response renders it.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, OnceLock};

use serde_json::{Map, Value};

/// The one copy of an attribute name. Names come from the catalog and the
/// attributes writes may set, so the set stays small.
fn intern(name: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(known) = names.get(name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}

/// The non-NULL attribute values of a record, by name, in insertion order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attributes(Vec<(&'static str, Value)>);

impl Attributes {
    pub fn new() -> Attributes {
        Attributes(Vec::new())
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.0.iter().position(|(n, _)| *n == name)
    }

    /// The value of `name`; `None` when it is NULL.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.position(name).map(|i| &self.0[i].1)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Value> {
        self.position(name).map(|i| &mut self.0[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    /// Sets `name` (NULL removes it); answers the value it had.
    pub fn insert(&mut self, name: String, value: Value) -> Option<Value> {
        match (self.position(&name), value) {
            (Some(i), Value::Null) => Some(self.0.remove(i).1),
            (Some(i), value) => Some(std::mem::replace(&mut self.0[i].1, value)),
            (None, Value::Null) => None,
            (None, value) => {
                self.0.push((intern(&name), value));
                None
            }
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<Value> {
        self.position(name).map(|i| self.0.remove(i).1)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Value)> {
        self.0.iter().map(|(n, v)| (*n, v))
    }
}

impl<'a> IntoIterator for &'a Attributes {
    type Item = (&'static str, &'a Value);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (&'static str, Value)>,
        fn(&'a (&'static str, Value)) -> (&'static str, &'a Value),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(n, v)| (*n, v))
    }
}

impl Extend<(String, Value)> for Attributes {
    fn extend<I: IntoIterator<Item = (String, Value)>>(&mut self, items: I) {
        for (name, value) in items {
            self.insert(name, value);
        }
    }
}

impl FromIterator<(String, Value)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(items: I) -> Attributes {
        let mut attributes = Attributes::new();
        attributes.extend(items);
        attributes
    }
}

impl From<Map<String, Value>> for Attributes {
    fn from(map: Map<String, Value>) -> Attributes {
        map.into_iter().collect()
    }
}

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
    pub attributes: Attributes,
    /// Relationship linkage by relationship name. A relationship of the
    /// catalog that is missing here is empty (`null` or `[]`).
    pub relationships: BTreeMap<String, Link>,
}

impl Record {
    pub fn new(id: u64) -> Record {
        Record {
            id,
            attributes: Attributes::new(),
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
