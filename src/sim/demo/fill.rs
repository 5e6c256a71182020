//! The catalog-driven filler: completes a demo record with every attribute
//! the catalog lists for its resource.
//!
//! Each resource's attribute list is resolved once into a [`Shape`]: the
//! names in catalog order, each with a [`Rule`], so completing a record
//! costs no catalog lookups. Values set by hand win; the rules only cover the rest:
//! timestamps come from the record's creation and update times, `_default`
//! and `_normalized` money follows its base amount through the exchange
//! rate, and anything else gets a neutral value of the attribute's JSON
//! type (`false`, `0`, `{}`, `[]`) or `null` where the API leaves unset
//! values empty.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use serde_json::{Map, Value};

use crate::catalog::{Attribute, Catalog, JsonType, Resource};
use crate::sim::store::{Attributes, Record, Ref};

use super::{DEMO_DEFAULT_CURRENCY, DEMO_ORGANIZATION_ID, Draft, decimal, ts};

/// How the filler computes an attribute that was not set by hand.
#[derive(Debug, Clone)]
pub(super) enum Rule {
    Created,
    Updated,
    /// `last_activity_at`: the update time.
    LastActivity,
    Currency,
    /// `currency_default` / `currency_normalized`.
    OrganizationCurrency,
    /// The exchange rate, as a decimal string or a JSON number.
    ExchangeRate {
        json_type: JsonType,
    },
    /// A `_default` / `_normalized` variant of the money attribute at
    /// position `base`.
    Converted {
        base: usize,
        float: bool,
    },
    /// A `_default` / `_normalized` variant of a ratio (a profit margin),
    /// which no exchange rate changes.
    SameAs {
        base: usize,
    },
    Fixed(Value),
}

/// A resource's attributes in catalog order, each with its fill rule.
#[derive(Debug)]
pub(super) struct Shape {
    pub(super) kind: &'static str,
    names: Vec<&'static str>,
    rules: Vec<Rule>,
    positions: HashMap<&'static str, usize>,
    has_organization: bool,
}

impl Shape {
    fn new(resource: &'static Resource) -> Shape {
        let attributes: Vec<&Attribute> = resource
            .attributes
            .iter()
            .filter(|a| a.name != "id")
            .collect();
        let names: Vec<&'static str> = attributes.iter().map(|a| a.name.as_str()).collect();
        let positions: HashMap<&'static str, usize> =
            names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let rules = attributes.iter().map(|a| rule_for(a, &positions)).collect();
        Shape {
            kind: resource.json_api_type.as_str(),
            names,
            rules,
            positions,
            has_organization: resource.relationship("organization").is_some(),
        }
    }

    /// The position of an attribute in catalog order.
    pub(super) fn position(&self, name: &str) -> Option<usize> {
        self.positions.get(name).copied()
    }
}

static SHAPES: LazyLock<BTreeMap<&'static str, Shape>> = LazyLock::new(|| {
    Catalog::get()
        .served_resources()
        .into_iter()
        .map(|resource| (resource.json_api_type.as_str(), Shape::new(resource)))
        .collect()
});

/// The shape of a served resource.
///
/// # Panics
///
/// If the catalog serves no resource of this JSON:API type: the demo
/// generators only name served types, and the tests cover every one.
pub(super) fn shape(kind: &str) -> &'static Shape {
    SHAPES
        .get(kind)
        .unwrap_or_else(|| panic!("the catalog serves no resource of type {kind}"))
}

fn is_money(attribute: &Attribute) -> bool {
    attribute
        .unit
        .as_deref()
        .is_some_and(|u| u.starts_with("money"))
}

fn rule_for(a: &Attribute, positions: &HashMap<&'static str, usize>) -> Rule {
    let name = a.name.as_str();
    match name {
        "created_at" => return Rule::Created,
        "updated_at" => return Rule::Updated,
        "last_activity_at" => return Rule::LastActivity,
        "currency" => return Rule::Currency,
        "currency_default" | "currency_normalized" => return Rule::OrganizationCurrency,
        "exchange_rate" | "exchange_rate_normalized" => {
            return Rule::ExchangeRate {
                json_type: a.json_type,
            };
        }
        _ => {}
    }
    let base = name
        .strip_suffix("_default")
        .or_else(|| name.strip_suffix("_normalized"))
        .and_then(|b| positions.get(b));
    if let Some(&base) = base {
        return if is_money(a) {
            Rule::Converted {
                base,
                float: a.json_type == JsonType::Number,
            }
        } else {
            Rule::SameAs { base }
        };
    }
    Rule::Fixed(neutral(a))
}

/// The value an attribute nobody set takes: zero for counters, durations
/// and money, `false`, empty containers, and `null` for everything whose
/// absence the API writes as `null` (texts, dates, ids, enums).
fn neutral(a: &Attribute) -> Value {
    let counted = a.unit.is_some() || a.name.ends_with("_count");
    match a.json_type {
        // Records without custom field values say `null`, not `{}`.
        JsonType::Object if a.name.ends_with("custom_fields") => Value::Null,
        JsonType::Boolean => Value::Bool(false),
        JsonType::Object => Value::Object(Map::new()),
        JsonType::Array | JsonType::StringArray => Value::Array(Vec::new()),
        JsonType::Integer if counted => Value::from(0),
        JsonType::Number if counted => Value::from(0.0),
        JsonType::DecimalString if a.name.contains("quantity") => decimal(1.0),
        // An unused second tax has no rate at all.
        JsonType::DecimalString if a.name.starts_with("tax") => Value::Null,
        JsonType::DecimalString => decimal(0.0),
        _ => Value::Null,
    }
}

/// Converts an amount in cents into the organization currency.
fn convert(base: &Value, rate: f64, float: bool) -> Value {
    let Some(amount) = base.as_f64() else {
        return Value::Null;
    };
    let converted = (amount * rate).round();
    if float {
        Value::from(converted)
    } else {
        Value::from(converted as i64)
    }
}

/// Buffers reused from record to record. Allocating them per record
/// showed up in profiles as allocator churn.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    /// Spare hand-value lists for new drafts (drafts can nest).
    hands: Vec<Vec<(usize, Value)>>,
    slots: Vec<Option<Value>>,
}

impl Scratch {
    /// An empty list for a new draft's hand-set values.
    pub(super) fn hand(&mut self) -> Vec<(usize, Value)> {
        self.hands.pop().unwrap_or_else(|| Vec::with_capacity(32))
    }
}

/// Builds the finished record: every catalog attribute in catalog order,
/// hand-set values first, rules for the rest, and the organization link.
pub(super) fn complete(draft: Draft, scratch: &mut Scratch) -> Record {
    let Draft {
        shape,
        mut record,
        mut hand,
        created,
        updated,
        currency,
        rate,
    } = draft;

    // Hand-set values by position; a later value for the same attribute
    // replaces an earlier one.
    let n = shape.names.len();
    let slots = &mut scratch.slots;
    slots.clear();
    slots.resize(n, None);
    for (position, value) in hand.drain(..) {
        slots[position] = Some(value);
    }
    scratch.hands.push(hand);

    // Plain rules first, so conversions see their final base amounts.
    for (position, rule) in shape.rules.iter().enumerate() {
        if slots[position].is_some() {
            continue;
        }
        let value = match rule {
            Rule::Created => ts(created),
            Rule::Updated | Rule::LastActivity => ts(updated),
            Rule::Currency => Value::from(currency),
            Rule::OrganizationCurrency => Value::from(DEMO_DEFAULT_CURRENCY),
            Rule::ExchangeRate { json_type } => match json_type {
                JsonType::DecimalString => decimal(rate),
                _ => Value::from((rate * 100.0).round() / 100.0),
            },
            Rule::Converted { .. } | Rule::SameAs { .. } => continue,
            Rule::Fixed(v) => v.clone(),
        };
        slots[position] = Some(value);
    }
    for (position, rule) in shape.rules.iter().enumerate() {
        if slots[position].is_some() {
            continue;
        }
        let value = match rule {
            Rule::Converted { base, float } => slots[*base]
                .as_ref()
                .map_or(Value::Null, |b| convert(b, rate, *float)),
            Rule::SameAs { base } => slots[*base].clone().unwrap_or(Value::Null),
            _ => continue,
        };
        slots[position] = Some(value);
    }

    let mut attributes = Attributes::new();
    for (name, value) in shape.names.iter().zip(slots.drain(..)) {
        attributes.insert((*name).to_string(), value.unwrap_or(Value::Null));
    }
    record.attributes = attributes;
    if shape.has_organization {
        record.set_one(
            "organization",
            Some(Ref::new("organizations", DEMO_ORGANIZATION_ID)),
        );
    }
    record
}

/// Whether records of `kind` have the attribute `name`.
fn has_attribute(kind: &str, name: &str) -> bool {
    Catalog::get()
        .resource(kind)
        .is_some_and(|r| r.attribute(name).is_some())
}

/// Sets a money attribute and its `_default` / `_normalized` variants on a
/// finished record of `kind` (used when roll-ups revise amounts after the
/// fact).
pub(super) fn set_money(
    record: &mut Record,
    kind: &str,
    name: &str,
    cents: i64,
    rate: f64,
    float: bool,
) {
    let write = |v: i64| {
        if float {
            Value::from(v as f64)
        } else {
            Value::from(v)
        }
    };
    let converted = (cents as f64 * rate).round() as i64;
    let attributes = &mut record.attributes;
    attributes.insert(name.to_string(), write(cents));
    for suffix in ["_default", "_normalized"] {
        let variant = format!("{name}{suffix}");
        if has_attribute(kind, &variant) {
            attributes.insert(variant, write(converted));
        }
    }
}

/// Sets a ratio attribute (a margin) and its `_default` / `_normalized`
/// variants, which carry the same value.
pub(super) fn set_ratio(record: &mut Record, kind: &str, name: &str, value: Value) {
    for suffix in ["_default", "_normalized"] {
        let variant = format!("{name}{suffix}");
        if has_attribute(kind, &variant) {
            record.attributes.insert(variant, value.clone());
        }
    }
    record.attributes.insert(name.to_string(), value);
}
