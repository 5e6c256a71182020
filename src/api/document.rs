//! JSON:API documents as the Productive API sends them.
//!
//! Decoding is tolerant where the API is inconsistent: ids may be strings
//! or numbers, `status` in errors may be a string or a number, and unknown
//! `meta` keys are ignored.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// One resource object: `{"id","type","attributes","relationships"}`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ResourceObject {
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub attributes: Map<String, Value>,
    #[serde(default)]
    pub relationships: Map<String, Value>,
}

/// What a relationship entry says about the related record(s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linkage {
    /// `{"meta":{"included":false}}`: the API hid the id.
    Hidden,
    /// `{"data": null}`.
    Empty,
    /// `{"data": {"type","id"}}`.
    One { kind: String, id: String },
    /// `{"data": [...]}`.
    Many(Vec<(String, String)>),
}

impl ResourceObject {
    /// The linkage of relationship `name`; a missing entry reads as hidden.
    pub fn linkage(&self, name: &str) -> Linkage {
        let Some(entry) = self.relationships.get(name) else {
            return Linkage::Hidden;
        };
        match entry.get("data") {
            None => Linkage::Hidden,
            Some(Value::Null) => Linkage::Empty,
            Some(Value::Object(o)) => match (o.get("type"), o.get("id")) {
                (Some(Value::String(k)), Some(id)) => Linkage::One {
                    kind: k.clone(),
                    id: value_as_id(id),
                },
                _ => Linkage::Empty,
            },
            Some(Value::Array(items)) => Linkage::Many(
                items
                    .iter()
                    .filter_map(|i| {
                        let k = i.get("type")?.as_str()?.to_string();
                        Some((k, value_as_id(i.get("id")?)))
                    })
                    .collect(),
            ),
            Some(_) => Linkage::Empty,
        }
    }
}

fn value_as_id(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = Value::deserialize(d)?;
    match v {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "id must be a string, got {other}"
        ))),
    }
}

/// Pagination facts of a list answer.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct PageMeta {
    #[serde(default)]
    pub current_page: Option<u32>,
    #[serde(default)]
    pub total_pages: Option<u32>,
    #[serde(default)]
    pub total_count: Option<u64>,
    #[serde(default)]
    pub page_size: Option<u32>,
    #[serde(default)]
    pub max_page_size: Option<u32>,
}

/// A list answer: one page of records.
///
/// The `included` records that `include=` adds are skipped unread: the
/// gateway includes relationships only for the ids in the linkage, and
/// reading the related records would multiply the decoding work.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ListDocument {
    pub data: Vec<ResourceObject>,
    #[serde(default)]
    pub meta: PageMeta,
}

/// A single-record answer (`GET /x/{id}`, `POST`, `PATCH`); `included` is
/// skipped as in [`ListDocument`].
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct SingleDocument {
    pub data: ResourceObject,
}

/// One entry of an `errors` array.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct ErrorObject {
    #[serde(default, deserialize_with = "opt_string_or_number")]
    pub status: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub source: Option<ErrorSource>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct ErrorSource {
    #[serde(default)]
    pub pointer: Option<String>,
}

impl ErrorObject {
    /// The attribute or relationship a `source.pointer` names
    /// (`data/attributes/title` → `title`).
    pub fn field(&self) -> Option<&str> {
        let pointer = self.source.as_ref()?.pointer.as_deref()?;
        pointer.rsplit('/').next().filter(|s| !s.is_empty())
    }

    /// `title: detail`, or whichever of them is present.
    pub fn message(&self) -> String {
        match (&self.title, &self.detail) {
            (Some(t), Some(d)) => format!("{t}: {d}"),
            (Some(t), None) => t.clone(),
            (None, Some(d)) => d.clone(),
            (None, None) => self.code.clone().unwrap_or_else(|| "unknown error".into()),
        }
    }
}

fn opt_string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(match v {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// An error answer.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct ErrorDocument {
    #[serde(default)]
    pub errors: Vec<ErrorObject>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linkage_tells_hidden_from_empty() {
        let doc: ListDocument = serde_json::from_str(
            r#"{"data":[{"id":"7","type":"tasks","attributes":{"title":"x"},
              "relationships":{"project":{"meta":{"included":false}},
              "assignee":{"data":null},
              "task_list":{"data":{"type":"task_lists","id":"9"}},
              "subscribers":{"data":[{"type":"people","id":3}]}}}],
              "meta":{"current_page":1,"total_pages":4,"total_count":100,"page_size":30,
              "max_page_size":200,"settings":{"x":1}}}"#,
        )
        .unwrap();
        let r = &doc.data[0];
        assert_eq!(r.linkage("project"), Linkage::Hidden);
        assert_eq!(r.linkage("nothing"), Linkage::Hidden);
        assert_eq!(r.linkage("assignee"), Linkage::Empty);
        assert_eq!(
            r.linkage("task_list"),
            Linkage::One {
                kind: "task_lists".into(),
                id: "9".into()
            }
        );
        assert_eq!(
            r.linkage("subscribers"),
            Linkage::Many(vec![("people".into(), "3".into())])
        );
        assert_eq!(doc.meta.total_pages, Some(4));
    }

    #[test]
    fn error_status_may_be_string_or_number() {
        let doc: ErrorDocument = serde_json::from_str(
            r#"{"errors":[{"status":"422","code":"invalid_attribute","title":"Invalid Attribute",
              "detail":"can't be blank","source":{"pointer":"data/attributes/task_list"}},
              {"status":400,"title":"Unsupported Filter"}]}"#,
        )
        .unwrap();
        assert_eq!(doc.errors[0].status.as_deref(), Some("422"));
        assert_eq!(doc.errors[0].field(), Some("task_list"));
        assert_eq!(doc.errors[1].status.as_deref(), Some("400"));
        assert_eq!(doc.errors[1].field(), None);
    }
}
