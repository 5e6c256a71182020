//! The resource-specific rules of the Productive API that the catalog
//! cannot express as data.
//!
//! The rest of the simulator is driven by [`crate::catalog`]; everything that
//! depends on what a particular resource *means* (what `filter[status]=2`
//! selects, which relationships are a comment's parent, which custom fields
//! belong to which resource, how a record is named in the activity feed)
//! is decided here, so the special cases are in one place.

use chrono::{DateTime, FixedOffset, Local, NaiveDate};
use serde_json::Value;

use crate::catalog::Resource;
use crate::sim::store::{Record, Store};

/// The relationship every resource links to its organization with; it
/// always carries data linkage, whatever `include=` says.
pub const ORGANIZATION: &str = "organization";

/// Relationships that can be a comment's parent (fact sheet §14).
pub const COMMENT_PARENTS: &[&str] = &[
    "task",
    "deal",
    "company",
    "person",
    "discussion",
    "invoice",
    "purchase_order",
];

/// Text-search filters: a case-insensitive match in the record's name.
pub const QUERY_FILTERS: &[&str] = &["query", "full_query", "jump_query", "query_extended"];

/// The current time written like the API: milliseconds and offset,
/// `2026-03-23T20:43:26.943+01:00`.
pub fn now_timestamp() -> String {
    format_timestamp(&Local::now().fixed_offset())
}

/// A timestamp written like the API.
pub fn format_timestamp(at: &DateTime<FixedOffset>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string()
}

/// Whether `text` is a `YYYY-MM-DD` date.
pub fn is_date(text: &str) -> bool {
    text.len() == 10 && NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()
}

/// The calendar date of a date or timestamp value, in the offset the value
/// was written with (the organization's zone, as the API writes it).
pub fn date_part(text: &str) -> Option<&str> {
    if text.len() >= 10 && is_date(&text[..10]) {
        Some(&text[..10])
    } else {
        None
    }
}

/// How a record is named in the activity feed, in `filter[query]` and when
/// sorting by a related record's name: `name`, else the person's full name
/// (people have a job `title` too), else `title`, else `email`, else the
/// comment `body`.
pub fn display_name(record: &Record) -> Option<String> {
    let text = |key: &str| {
        record
            .attributes
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    if let Some(name) = text("name") {
        return Some(name);
    }
    let full: Vec<String> = ["first_name", "last_name"]
        .iter()
        .filter_map(|k| text(k))
        .collect();
    if !full.is_empty() {
        return Some(full.join(" "));
    }
    text("title")
        .or_else(|| text("email"))
        .or_else(|| text("body"))
}

/// A filter whose meaning the API computes rather than reads from one
/// attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Derived {
    /// `filter[status]`, with a per-resource meaning (see [`derived_filter`]).
    Status,
    /// `filter[approval_status]` on bookings and expenses.
    ApprovalStatus,
    /// `filter[type]` on `/deals`: 1 deals, 2 budgets.
    DealType,
    /// `filter[archived]=true|false` on archivable resources.
    Archived,
}

/// Which computed filter `name` is on `resource`, if any.
///
/// `status` means: deals 1 open / 2 closed (`closed_at` unset or set: our
/// reading of "budget status"); people 1 active / 2 deactivated
/// (`deactivated_at`); tasks 1 open / 2 closed (`closed`); expenses 1 paid /
/// 2 unpaid (`paid_on`); any other resource with `archived_at` 1 active /
/// 2 archived. On other resources `status` has no derivable meaning and is
/// ignored.
pub fn derived_filter(resource: &Resource, name: &str) -> Option<Derived> {
    let kind = resource.json_api_type.as_str();
    match name {
        "status" if matches!(kind, "deals" | "people" | "tasks" | "expenses") => {
            Some(Derived::Status)
        }
        "status" if resource.is_archivable() => Some(Derived::Status),
        "approval_status" if matches!(kind, "bookings" | "expenses") => {
            Some(Derived::ApprovalStatus)
        }
        "type" if kind == "deals" => Some(Derived::DealType),
        "archived" if resource.is_archivable() => Some(Derived::Archived),
        _ => None,
    }
}

/// The value a computed filter compares against for `record`.
pub fn derived_value(resource: &Resource, derived: Derived, record: &Record) -> Value {
    let set = |key: &str| !record.attributes.get(key).unwrap_or(&Value::Null).is_null();
    let flag = |key: &str| record.attributes.get(key) == Some(&Value::Bool(true));
    let code = |first: bool| Value::from(if first { 1 } else { 2 });
    match derived {
        Derived::Status => match resource.json_api_type.as_str() {
            "deals" => code(!set("closed_at")),
            "people" => code(!set("deactivated_at")),
            "tasks" => code(!flag("closed")),
            "expenses" => code(set("paid_on")),
            _ => code(!set("archived_at")),
        },
        Derived::ApprovalStatus => {
            let n = if flag("canceled") {
                5
            } else if flag("rejected") {
                3
            } else if flag("approved") {
                1
            } else {
                2
            };
            Value::from(n)
        }
        Derived::DealType => code(!flag("budget")),
        Derived::Archived => Value::Bool(set("archived_at")),
    }
}

/// The `customizable_type` values of custom fields that extend records of
/// this JSON:API type.
pub fn customizable_types(json_api_type: &str) -> &'static [&'static str] {
    match json_api_type {
        "tasks" => &["tasks"],
        "projects" => &["projects"],
        "deals" => &["deals", "budgets"],
        "companies" => &["companies"],
        "people" => &["people", "employees", "contacts"],
        "invoices" => &["invoices"],
        "expenses" => &["project_expenses", "expenses"],
        "bookings" => &["bookings"],
        "services" => &["services"],
        "pages" => &["pages"],
        _ => &[],
    }
}

/// Whether `field_id` is an existing custom field that extends records of
/// `json_api_type`.
pub fn is_custom_field_of(store: &Store, json_api_type: &str, field_id: &str) -> bool {
    let Ok(id) = field_id.parse::<u64>() else {
        return false;
    };
    let Some(field) = store.get("custom_fields", id) else {
        return false;
    };
    let owner = field
        .attributes
        .get("customizable_type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    customizable_types(json_api_type).contains(&owner)
}

/// Whether a comment has any parent relationship set.
pub fn has_comment_parent(record: &Record) -> bool {
    COMMENT_PARENTS.iter().any(|p| {
        matches!(
            record.relationships.get(*p),
            Some(crate::sim::store::Link::One(Some(_)))
        )
    })
}

/// The singular class-like name of a resource used in the activity feed's
/// polymorphic `item_type`: `Tasks` → `Task`, `People` → `Person`,
/// `WorkflowStatuses` → `WorkflowStatus`, `Companies` → `Company`.
pub fn item_type_name(resource: &Resource) -> String {
    let plural = resource.name.as_str();
    if let Some(stem) = plural.strip_suffix("People") {
        format!("{stem}Person")
    } else if let Some(stem) = plural.strip_suffix("ies") {
        format!("{stem}y")
    } else if plural.ends_with("uses") {
        plural[..plural.len() - 2].to_string()
    } else if let Some(stem) = plural.strip_suffix('s') {
        stem.to_string()
    } else {
        plural.to_string()
    }
}

/// The activity attribute that repeats the id of a changed record of this
/// type (`task_id` for tasks), where the feed has one.
pub fn activity_convenience_id(json_api_type: &str) -> Option<&'static str> {
    Some(match json_api_type {
        "tasks" => "task_id",
        "deals" => "deal_id",
        "bookings" => "booking_id",
        "invoices" => "invoice_id",
        "companies" => "company_id",
        "people" => "person_id",
        "pages" => "page_id",
        _ => return None,
    })
}

/// The workflow-status category that closes a task (fact sheet §14).
pub const CLOSED_CATEGORY: i64 = 3;

/// Keeps a task's read-only `closed` / `closed_at` in step with the category
/// of its workflow status: a task is closed by moving it to a status of
/// category 3.
pub fn sync_task_closed(store: &Store, task: &mut Record) {
    let Some(status_id) = task.link_id("workflow_status") else {
        return;
    };
    let Some(status) = store.get("workflow_statuses", status_id) else {
        return;
    };
    let closed =
        status.attributes.get("category_id").and_then(Value::as_i64) == Some(CLOSED_CATEGORY);
    let was_closed = task.attributes.get("closed") == Some(&Value::Bool(true));
    task.attributes.insert("closed".into(), Value::Bool(closed));
    if closed && !was_closed {
        task.attributes
            .insert("closed_at".into(), Value::String(now_timestamp()));
    } else if !closed {
        task.attributes.insert("closed_at".into(), Value::Null);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn resource(kind: &str) -> &'static Resource {
        Catalog::get().resource(kind).unwrap()
    }

    #[test]
    fn item_type_names_are_singular() {
        assert_eq!(item_type_name(resource("tasks")), "Task");
        assert_eq!(item_type_name(resource("people")), "Person");
        assert_eq!(
            item_type_name(resource("workflow_statuses")),
            "WorkflowStatus"
        );
        assert_eq!(item_type_name(resource("companies")), "Company");
        assert_eq!(item_type_name(resource("expenses")), "Expense");
    }

    #[test]
    fn status_means_different_things_per_resource() {
        let mut task = Record::new(1);
        task.attributes.insert("closed".into(), Value::Bool(true));
        assert_eq!(derived_value(resource("tasks"), Derived::Status, &task), 2);
        let mut project = Record::new(2);
        project.attributes.insert("archived_at".into(), Value::Null);
        assert_eq!(
            derived_value(resource("projects"), Derived::Status, &project),
            1
        );
        let mut expense = Record::new(3);
        expense
            .attributes
            .insert("paid_on".into(), Value::from("2025-01-01"));
        assert_eq!(
            derived_value(resource("expenses"), Derived::Status, &expense),
            1
        );
        assert_eq!(derived_filter(resource("users"), "status"), None);
    }

    #[test]
    fn timestamps_have_milliseconds_and_offset() {
        let at = DateTime::parse_from_rfc3339("2026-03-23T20:43:26.9+01:00").unwrap();
        assert_eq!(format_timestamp(&at), "2026-03-23T20:43:26.900+01:00");
        assert_eq!(
            date_part("2026-03-23T20:43:26.900+01:00"),
            Some("2026-03-23")
        );
        assert_eq!(date_part("soon"), None);
    }

    #[test]
    fn display_name_falls_back_through_name_fields() {
        let mut person = Record::new(1);
        person.attributes.insert("first_name".into(), "Ann".into());
        person.attributes.insert("last_name".into(), "Lee".into());
        assert_eq!(display_name(&person).as_deref(), Some("Ann Lee"));
        person.attributes.insert("title".into(), "Designer".into());
        assert_eq!(display_name(&person).as_deref(), Some("Ann Lee"));
        let mut task = Record::new(2);
        task.attributes.insert("title".into(), "Launch".into());
        assert_eq!(display_name(&task).as_deref(), Some("Launch"));
    }
}
