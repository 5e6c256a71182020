//! Writes: `POST`, `PATCH` and `DELETE` on a resource, and the activity
//! record each one leaves in `/activities`.
//!
//! Like the real API the simulator is lenient (fact sheet §10, quirk 3):
//! unknown and read-only attributes are ignored, `data.type` is not
//! checked, and custom-field keys that are not field ids of the resource are
//! dropped. It is strict where the API is: values of a typed attribute must
//! fit its JSON shape (they are stored in the shape the API sends, e.g. a
//! number sent for a decimal-string attribute is stored as `"12.5"`), and
//! the catalog's `create_required` fields must be present, reported as one
//! `422 invalid_attribute` entry per field with relationships under their
//! relationship name (`data/attributes/task_list`).
//!
//! Choices of ours, where the API leaves it open:
//! - A `PATCH` of `custom_fields` merges the given keys into the stored
//!   object (`null` as the whole value clears it).
//! - Related ids are not checked for existence.
//! - A `PATCH` validates only what it changes: a required field set to
//!   blank, and the booking / comment parent rules when a parent changes.
//! - A booking needs exactly one of `service` and `event`; a comment needs a
//!   `body` and at most one parent (exactly one when
//!   [`WriteRules::comments_need_parent`] is on). Both failures point at the
//!   group name (`data/attributes/bookable`, `data/attributes/commentable`).

use chrono::{DateTime, NaiveTime};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::catalog::{Attribute, Cardinality, JsonType, Resource};
use crate::sim::error::{ApiError, FieldError};
use crate::sim::rules::{self, COMMENT_PARENTS, ORGANIZATION};
use crate::sim::store::{Link, Record, Ref, Store};

/// Write rules that differ between readings of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteRules {
    /// Whether `POST /comments` without a parent relationship is refused
    /// (422). Off by default: such a comment is stored, readable by id, and
    /// left out of the list of all comments, which is what the gateway is
    /// built against; turn it on to test a stricter API.
    pub comments_need_parent: bool,
}

impl Default for WriteRules {
    fn default() -> WriteRules {
        WriteRules {
            comments_need_parent: false,
        }
    }
}

/// The changes a write body asks for, already converted to stored shapes.
#[derive(Debug, Default)]
struct Changes {
    attributes: Vec<(String, Value)>,
    links: Vec<(String, Link)>,
    /// `Some(Null)` clears the object; `Some(object)` merges keys.
    custom_fields: Option<Value>,
}

/// The `data` object of a JSON:API write body; an empty body is an empty
/// object.
///
/// # Errors
/// `400 bad_request` when the body is not JSON.
pub fn parse_data(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let document: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("The request body is not valid JSON: {e}")))?;
    Ok(match document.get("data") {
        Some(Value::Object(data)) => data.clone(),
        _ => Map::new(),
    })
}

fn object<'a>(data: &'a Map<String, Value>, key: &str) -> Option<&'a Map<String, Value>> {
    data.get(key).and_then(Value::as_object)
}

/// Converts a value sent for `attribute` into the JSON shape the API
/// stores, or says why it does not fit.
pub fn coerce(attribute: &Attribute, value: &Value) -> Result<Value, &'static str> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let text = value.as_str();
    match attribute.json_type {
        JsonType::String => match value {
            Value::String(_) => Ok(value.clone()),
            Value::Number(n) => Ok(Value::String(n.to_string())),
            Value::Bool(b) => Ok(Value::String(b.to_string())),
            _ => Err("is invalid"),
        },
        JsonType::IdString => id_of(value)
            .map(|id| Value::String(id.to_string()))
            .ok_or("is not a valid id"),
        JsonType::DecimalString => {
            let raw = match value {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.trim().to_string(),
                _ => return Err("is not a number"),
            };
            let parsed = raw
                .parse::<Decimal>()
                .or_else(|_| Decimal::from_scientific(&raw))
                .map_err(|_| "is not a number")?;
            let mut written = parsed.normalize().to_string();
            if !written.contains('.') {
                written.push_str(".0");
            }
            Ok(Value::String(written))
        }
        JsonType::DateString => match text {
            Some(t) if rules::is_date(t) => Ok(value.clone()),
            _ => Err("is not a valid date"),
        },
        JsonType::TimestampString => {
            let t = text.ok_or("is not a valid datetime")?;
            if let Ok(at) = DateTime::parse_from_rfc3339(t) {
                Ok(Value::String(rules::format_timestamp(&at)))
            } else if rules::is_date(t) {
                let midnight = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .and_then(|d| d.and_local_timezone(chrono::Local).single())
                    .ok_or("is not a valid datetime")?;
                Ok(Value::String(rules::format_timestamp(
                    &midnight.fixed_offset(),
                )))
            } else {
                Err("is not a valid datetime")
            }
        }
        JsonType::TimeString => match text {
            Some(t) if NaiveTime::parse_from_str(t, "%H:%M").is_ok() => Ok(value.clone()),
            _ => Err("is not a valid time"),
        },
        JsonType::Integer => match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(value.clone()),
            Value::Number(n) => match n.as_f64() {
                Some(f) if f.fract() == 0.0 => Ok(Value::from(f as i64)),
                _ => Err("must be an integer"),
            },
            Value::String(s) => s
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| "is not a number"),
            _ => Err("is not a number"),
        },
        JsonType::Number => match value {
            Value::Number(_) => Ok(value.clone()),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or("is not a number"),
            _ => Err("is not a number"),
        },
        JsonType::Boolean => match value {
            Value::Bool(_) => Ok(value.clone()),
            Value::String(s) if s == "true" => Ok(Value::Bool(true)),
            Value::String(s) if s == "false" => Ok(Value::Bool(false)),
            _ => Err("is not a boolean"),
        },
        JsonType::Object => match value {
            Value::Object(_) => Ok(value.clone()),
            _ => Err("is invalid"),
        },
        JsonType::Array => match value {
            Value::Array(_) => Ok(value.clone()),
            _ => Err("is invalid"),
        },
        JsonType::StringArray => match value {
            Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    Value::String(_) => Ok(item.clone()),
                    Value::Number(n) => Ok(Value::String(n.to_string())),
                    _ => Err("is invalid"),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            _ => Err("is invalid"),
        },
    }
}

/// An id sent as a string of digits or as a JSON integer.
fn id_of(value: &Value) -> Option<u64> {
    match value {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

fn collect_changes(
    store: &Store,
    resource: &Resource,
    data: &Map<String, Value>,
) -> Result<Changes, ApiError> {
    let mut changes = Changes::default();
    let mut errors = Vec::new();
    let to_link = |rel: &crate::catalog::Relationship, value: &Value| -> Option<Link> {
        let kind = rel.target_type.clone()?;
        match (rel.cardinality, value) {
            (Cardinality::ToOne, Value::Null) => Some(Link::One(None)),
            (Cardinality::ToOne, v) => id_of(v).map(|id| Link::One(Some(Ref::new(kind, id)))),
            (Cardinality::ToMany, Value::Array(items)) => items
                .iter()
                .map(|v| id_of(v).map(|id| Ref::new(kind.clone(), id)))
                .collect::<Option<Vec<_>>>()
                .map(Link::Many),
            (Cardinality::ToMany, _) => None,
        }
    };

    for (key, value) in object(data, "attributes").into_iter().flatten() {
        if key == "custom_fields" && resource.attribute(key).is_some() {
            match value {
                Value::Object(fields) => {
                    let kept: Map<String, Value> = fields
                        .iter()
                        .filter(|(id, _)| {
                            rules::is_custom_field_of(store, &resource.json_api_type, id)
                        })
                        .map(|(id, v)| (id.clone(), v.clone()))
                        .collect();
                    changes.custom_fields = Some(Value::Object(kept));
                }
                Value::Null => changes.custom_fields = Some(Value::Null),
                _ => errors.push(FieldError::new(key, "is invalid")),
            }
            continue;
        }
        if let Some(attribute) = resource.attribute(key) {
            if attribute.writable() {
                match coerce(attribute, value) {
                    Ok(stored) => changes.attributes.push((key.clone(), stored)),
                    Err(detail) => errors.push(FieldError::new(key, detail)),
                }
            }
            continue;
        }
        // Flat relationship parameters: `project_id`, `attachment_ids`.
        let relationship = key
            .strip_suffix("_id")
            .and_then(|stem| resource.relationship(stem))
            .filter(|r| r.is_to_one())
            .or_else(|| {
                let stem = key.strip_suffix("_ids")?;
                resource
                    .relationship(&format!("{stem}s"))
                    .or_else(|| resource.relationship(stem))
                    .filter(|r| !r.is_to_one())
            });
        if let Some(rel) = relationship.filter(|r| r.name != ORGANIZATION) {
            match to_link(rel, value) {
                Some(link) => changes.links.push((rel.name.clone(), link)),
                None if rel.target_type.is_none() => {}
                None => errors.push(FieldError::new(&rel.name, "is invalid")),
            }
        }
    }

    for (name, entry) in object(data, "relationships").into_iter().flatten() {
        let Some(rel) = resource
            .relationship(name)
            .filter(|r| r.name != ORGANIZATION)
        else {
            continue;
        };
        let Some(linkage) = entry.get("data") else {
            continue;
        };
        let id_value = |v: &Value| v.get("id").cloned().unwrap_or(Value::Null);
        let flat = match linkage {
            Value::Array(items) => Value::Array(items.iter().map(id_value).collect()),
            Value::Null => Value::Null,
            other => id_value(other),
        };
        // Linkage names its type; fall back to it where the catalog has none.
        let kind = rel.target_type.clone().or_else(|| {
            linkage
                .get("type")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        let mut rel = rel.clone();
        rel.target_type = kind;
        match to_link(&rel, &flat) {
            Some(link) => changes.links.push((rel.name.clone(), link)),
            None => errors.push(FieldError::new(&rel.name, "is invalid")),
        }
    }

    if errors.is_empty() {
        Ok(changes)
    } else {
        Err(ApiError::Invalid(errors))
    }
}

fn apply(changes: &Changes, record: &mut Record) {
    for (name, value) in &changes.attributes {
        record.attributes.insert(name.clone(), value.clone());
    }
    for (name, link) in &changes.links {
        record.relationships.insert(name.clone(), link.clone());
    }
    match &changes.custom_fields {
        Some(Value::Object(given)) => {
            let mut merged = match record.attributes.get("custom_fields") {
                Some(Value::Object(stored)) => stored.clone(),
                _ => Map::new(),
            };
            for (id, value) in given {
                merged.insert(id.clone(), value.clone());
            }
            record
                .attributes
                .insert("custom_fields".into(), Value::Object(merged));
        }
        Some(_) => {
            record
                .attributes
                .insert("custom_fields".into(), Value::Null);
        }
        None => {}
    }
}

fn is_blank(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(Value::Array(items)) => items.is_empty(),
        Some(_) => false,
    }
}

fn link_is_set(record: &Record, name: &str) -> bool {
    match record.relationships.get(name) {
        Some(Link::One(target)) => target.is_some(),
        Some(Link::Many(targets)) => !targets.is_empty(),
        None => false,
    }
}

/// A required field of the catalog: an attribute, or a relationship
/// written `<name>_id`.
enum Required<'a> {
    Attribute(&'a str),
    Relationship(&'a str),
}

fn required_fields(resource: &Resource) -> Vec<Required<'_>> {
    let mut attributes = Vec::new();
    let mut relationships = Vec::new();
    for field in &resource.create_required {
        if resource.attribute(field).is_some() {
            attributes.push(Required::Attribute(field.as_str()));
        } else if let Some(rel) = field
            .strip_suffix("_id")
            .and_then(|stem| resource.relationship(stem))
        {
            relationships.push(Required::Relationship(rel.name.as_str()));
        }
    }
    if resource.json_api_type == "comments" {
        attributes.push(Required::Attribute("body"));
    }
    // Attributes first, as the recorded 422 for tasks lists them.
    attributes.extend(relationships);
    attributes
}

/// The resource's group of alternative parents (a booking's `bookable`, a
/// comment's `commentable`), with its member relationships.
fn parent_group(resource: &Resource) -> Option<(String, Vec<String>)> {
    if resource.json_api_type == "comments" {
        let members = COMMENT_PARENTS
            .iter()
            .filter(|p| resource.relationship(p).is_some())
            .map(|p| p.to_string())
            .collect();
        return Some(("commentable".to_string(), members));
    }
    let group = resource
        .relationships
        .iter()
        .find_map(|r| r.exclusive_group.clone())?;
    let members = resource
        .relationships
        .iter()
        .filter(|r| r.exclusive_group.as_deref() == Some(group.as_str()))
        .map(|r| r.name.clone())
        .collect();
    Some((group, members))
}

fn group_errors(resource: &Resource, record: &Record, write_rules: &WriteRules) -> Vec<FieldError> {
    let Some((group, members)) = parent_group(resource) else {
        return Vec::new();
    };
    let set = members.iter().filter(|m| link_is_set(record, m)).count();
    let optional = group == "commentable" && !write_rules.comments_need_parent;
    if set == 1 || (set == 0 && optional) {
        return Vec::new();
    }
    vec![FieldError::new(
        group,
        format!("exactly one of {} must be set", members.join(", ")),
    )]
}

fn default_value(attribute: &Attribute) -> Value {
    match attribute.json_type {
        JsonType::Boolean => Value::Bool(false),
        JsonType::StringArray => Value::Array(Vec::new()),
        _ => Value::Null,
    }
}

/// Creates a record from a `POST` body and returns its id.
///
/// # Errors
/// `400` for a body that is not JSON, `422` for invalid values and missing
/// required fields.
pub fn create(
    store: &mut Store,
    resource: &Resource,
    body: &[u8],
    write_rules: &WriteRules,
) -> Result<u64, ApiError> {
    let data = parse_data(body)?;
    let changes = collect_changes(store, resource, &data)?;

    let mut record = Record::new(0);
    for attribute in resource.attributes.iter().filter(|a| a.name != "id") {
        record
            .attributes
            .insert(attribute.name.clone(), default_value(attribute));
    }
    let defaults = record.clone();
    apply(&changes, &mut record);

    let mut errors: Vec<FieldError> = required_fields(resource)
        .into_iter()
        .filter_map(|field| match field {
            Required::Attribute(name) => {
                is_blank(record.attributes.get(name)).then(|| FieldError::blank(name))
            }
            Required::Relationship(name) => {
                (!link_is_set(&record, name)).then(|| FieldError::blank(name))
            }
        })
        .collect();
    errors.extend(group_errors(resource, &record, write_rules));
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }

    record.id = store.allocate_id();
    let now = Value::String(rules::now_timestamp());
    for stamp in ["created_at", "updated_at"] {
        if resource.attribute(stamp).is_some() {
            record.attributes.insert(stamp.into(), now.clone());
        }
    }
    finish(store, resource, &mut record);
    let changeset = changeset(store, resource, &defaults, &record);
    let id = record.id;
    store.put(&resource.json_api_type, record.clone());
    record_activity(store, resource, "create", &record, changeset);
    Ok(id)
}

/// Applies a `PATCH` body to record `id`.
///
/// # Errors
/// `404` for an unknown id, `400` for a body that is not JSON, `422` for
/// invalid values.
pub fn update(
    store: &mut Store,
    resource: &Resource,
    id: u64,
    body: &[u8],
    write_rules: &WriteRules,
) -> Result<(), ApiError> {
    let before = store
        .get(&resource.json_api_type, id)
        .ok_or(ApiError::RecordNotFound)?
        .clone();
    let data = parse_data(body)?;
    let changes = collect_changes(store, resource, &data)?;
    let mut record = before.clone();
    apply(&changes, &mut record);

    let changed_attribute = |name: &str| changes.attributes.iter().any(|(n, _)| n == name);
    let changed_link = |name: &str| changes.links.iter().any(|(n, _)| n == name);
    let mut errors: Vec<FieldError> = required_fields(resource)
        .into_iter()
        .filter_map(|field| match field {
            Required::Attribute(name) => (changed_attribute(name)
                && is_blank(record.attributes.get(name)))
            .then(|| FieldError::blank(name)),
            Required::Relationship(name) => {
                (changed_link(name) && !link_is_set(&record, name)).then(|| FieldError::blank(name))
            }
        })
        .collect();
    if let Some((_, members)) = parent_group(resource)
        && members.iter().any(|m| changed_link(m))
    {
        errors.extend(group_errors(resource, &record, write_rules));
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }

    commit_update(store, resource, &before, record);
    Ok(())
}

/// Stores an updated record: bumps `updated_at`, applies derived state and
/// records the `update` activity.
pub fn commit_update(store: &mut Store, resource: &Resource, before: &Record, mut record: Record) {
    if resource.attribute("updated_at").is_some() {
        record
            .attributes
            .insert("updated_at".into(), Value::String(rules::now_timestamp()));
    }
    finish(store, resource, &mut record);
    let changeset = changeset(store, resource, before, &record);
    store.put(&resource.json_api_type, record.clone());
    record_activity(store, resource, "update", &record, changeset);
}

/// Derived state the API keeps itself.
fn finish(store: &Store, resource: &Resource, record: &mut Record) {
    match resource.json_api_type.as_str() {
        "tasks" => rules::sync_task_closed(store, record),
        "comments" => {
            let parent = COMMENT_PARENTS
                .iter()
                .find(|p| link_is_set(record, p))
                .map_or(Value::Null, |p| Value::String(p.to_string()));
            record.attributes.insert("commentable_type".into(), parent);
        }
        _ => {}
    }
}

/// Deletes record `id`.
///
/// # Errors
/// `404` for an unknown id.
pub fn delete(store: &mut Store, resource: &Resource, id: u64) -> Result<(), ApiError> {
    let removed = store
        .remove(&resource.json_api_type, id)
        .ok_or(ApiError::RecordNotFound)?;
    let item_type = rules::item_type_name(resource);
    let now = Value::String(rules::now_timestamp());
    let earlier: Vec<u64> = store
        .all("activities")
        .filter(|a| {
            a.attributes.get("item_type").and_then(Value::as_str) == Some(item_type.as_str())
                && a.attributes.get("item_id").and_then(Value::as_u64) == Some(id)
        })
        .map(|a| a.id)
        .collect();
    for activity_id in earlier {
        if let Some(activity) = store.get_mut("activities", activity_id) {
            activity
                .attributes
                .insert("item_deleted_at".into(), now.clone());
        }
    }
    record_activity(store, resource, "delete", &removed, Vec::new());
    Ok(())
}

fn ref_value(store: &Store, link: Option<&Link>) -> Value {
    match link {
        Some(Link::One(Some(target))) => {
            let name = store
                .get(&target.kind, target.id)
                .and_then(rules::display_name);
            json!({ "id": target.id, "value": name })
        }
        _ => json!({ "value": null }),
    }
}

/// The activity feed's changeset between two versions of a record
/// (fact sheet §13): one `{field: [{"value": old}, {"value": new}]}` entry
/// per changed attribute, references with their `id`.
pub fn changeset(
    store: &Store,
    resource: &Resource,
    before: &Record,
    after: &Record,
) -> Vec<Value> {
    let mut entries = Vec::new();
    for attribute in &resource.attributes {
        let name = attribute.name.as_str();
        if matches!(name, "id" | "created_at" | "updated_at") {
            continue;
        }
        let old = before.attributes.get(name).unwrap_or(&Value::Null);
        let new = after.attributes.get(name).unwrap_or(&Value::Null);
        if old != new {
            entries.push(json!({ name: [{ "value": old }, { "value": new }] }));
        }
    }
    for rel in resource.relationships.iter().filter(|r| r.is_to_one()) {
        let old = before.relationships.get(&rel.name);
        let new = after.relationships.get(&rel.name);
        if before.link_id(&rel.name) != after.link_id(&rel.name) {
            entries.push(json!({
                rel.name.as_str(): [ref_value(store, old), ref_value(store, new)]
            }));
        }
    }
    entries
}

/// Appends an entry to `/activities` for a write on `record`.
pub fn record_activity(
    store: &mut Store,
    resource: &Resource,
    event: &str,
    record: &Record,
    changeset: Vec<Value>,
) {
    let mut activity = Record::new(store.allocate_id());
    let attributes = &mut activity.attributes;
    attributes.insert("event".into(), event.into());
    attributes.insert("changeset".into(), Value::Array(changeset));
    attributes.insert("created_at".into(), rules::now_timestamp().into());
    attributes.insert("item_id".into(), record.id.into());
    attributes.insert(
        "item_name".into(),
        rules::display_name(record).map_or(Value::Null, Value::String),
    );
    attributes.insert("item_type".into(), rules::item_type_name(resource).into());
    attributes.insert("made_by_automation".into(), false.into());
    if let Some(key) = rules::activity_convenience_id(&resource.json_api_type) {
        attributes.insert(key.into(), record.id.into());
    }
    if resource.json_api_type == "deals" {
        let budget = record.attributes.get("budget") == Some(&Value::Bool(true));
        attributes.insert("deal_is_budget".into(), budget.into());
    }
    store.put("activities", activity);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn attribute(kind: &str, name: &str) -> &'static Attribute {
        Catalog::get()
            .resource(kind)
            .unwrap()
            .attribute(name)
            .unwrap()
    }

    #[test]
    fn values_are_stored_in_the_api_shape() {
        let quantity = attribute("expenses", "quantity");
        assert_eq!(coerce(quantity, &json!(12.5)), Ok(json!("12.5")));
        assert_eq!(coerce(quantity, &json!(3)), Ok(json!("3.0")));
        assert_eq!(coerce(quantity, &json!("x")), Err("is not a number"));
        let date = attribute("tasks", "due_date");
        assert_eq!(
            coerce(date, &json!("2025-02-30")),
            Err("is not a valid date")
        );
        assert_eq!(coerce(date, &json!("2025-02-28")), Ok(json!("2025-02-28")));
        let time = attribute("time_entries", "time");
        assert_eq!(coerce(time, &json!("90")), Ok(json!(90)));
        let tags = attribute("tasks", "tag_list");
        assert_eq!(coerce(tags, &json!([1, "a"])), Ok(json!(["1", "a"])));
        let stamp = attribute("time_entries", "started_at");
        assert_eq!(
            coerce(stamp, &json!("2025-01-02T03:04:05Z")),
            Ok(json!("2025-01-02T03:04:05.000+00:00"))
        );
    }
}
