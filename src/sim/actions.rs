//! Action endpoints: `PATCH /<endpoint>/{id}/<verb>`, and the workflow-status
//! delete that moves tasks.
//!
//! An action must be listed for the resource in the catalog (`actions`);
//! the simulator models these (fact sheet §11):
//! - `archive` / `restore` set and clear `archived_at`;
//! - people `deactivate` / `activate` set and clear `deactivated_at`;
//! - deals `close` / `open` set and clear `closed_at`;
//! - `approve`, `unapprove`, `reject`, `unreject` on resources with approval
//!   attributes (expenses, time entries, and `unapprove` on bookings) set
//!   `approved`/`approved_at` and `rejected`/`rejected_at`/`rejected_reason`
//!   (an optional `approver_id` links the approver);
//! - `PATCH /approval_statuses/{id}/approve|reject` stores the optional
//!   `note` and applies the approval to the linked booking, expense or time
//!   entry.
//!
//! Every action answers 200 with the updated record and records an `update`
//! activity. Catalog actions that are not modelled (`move`, `reposition`,
//! `pin`, `subscribe`, `invite`, `finalize`, ...) and verbs the catalog
//! does not list answer 404.

use serde_json::{Map, Value};

use crate::catalog::{Catalog, Resource};
use crate::sim::error::{ApiError, FieldError};
use crate::sim::rules;
use crate::sim::store::{Link, Record, Ref, Store};
use crate::sim::write::{self, commit_update, parse_data};

/// Runs `verb` on record `id`; the caller answers with the updated record.
///
/// # Errors
/// `404` for an unknown record or an action that is not listed or not
/// modelled; `400` for a body that is not JSON.
pub fn run(
    store: &mut Store,
    resource: &Resource,
    id: u64,
    verb: &str,
    body: &[u8],
) -> Result<(), ApiError> {
    let kind = resource.json_api_type.as_str();
    if !resource.has_item_action(verb) {
        return Err(ApiError::RouteNotFound(format!(
            "{}/{id}/{verb}",
            resource.endpoint
        )));
    }
    let before = store.get(kind, id).ok_or(ApiError::RecordNotFound)?.clone();
    let data = parse_data(body)?;
    let empty = Map::new();
    let params = data
        .get("attributes")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let now = Value::String(rules::now_timestamp());
    let mut record = before.clone();
    let attributes = &mut record.attributes;
    match (kind, verb) {
        ("people", "deactivate") => {
            attributes.insert("deactivated_at".into(), now);
        }
        ("people", "activate") => {
            attributes.insert("deactivated_at".into(), Value::Null);
        }
        (_, "archive") if resource.is_archivable() => {
            attributes.insert("archived_at".into(), now);
        }
        (_, "restore") if resource.is_archivable() => {
            attributes.insert("archived_at".into(), Value::Null);
        }
        ("deals", "close") => {
            attributes.insert("closed_at".into(), now);
        }
        ("deals", "open") => {
            attributes.insert("closed_at".into(), Value::Null);
        }
        ("approval_statuses", "approve" | "reject") => {
            if let Some(note) = params.get("note") {
                attributes.insert("note".into(), note.clone());
            }
            approve_target(store, &record, verb, params);
        }
        (_, "approve" | "unapprove" | "reject" | "unreject")
            if resource.attribute("approved").is_some() =>
        {
            set_approval(resource, &mut record, verb, params);
        }
        _ => {
            return Err(ApiError::RouteNotFound(format!(
                "{}/{id}/{verb}",
                resource.endpoint
            )));
        }
    }
    commit_update(store, resource, &before, record);
    Ok(())
}

/// Applies an approval status's `approve` / `reject` to the booking,
/// expense or time entry it is about.
fn approve_target(store: &mut Store, status: &Record, verb: &str, params: &Map<String, Value>) {
    let catalog = Catalog::get();
    for (relationship, kind) in [
        ("booking", "bookings"),
        ("expense", "expenses"),
        ("time_entry", "time_entries"),
    ] {
        let Some(target_id) = status.link_id(relationship) else {
            continue;
        };
        let (Some(resource), Some(before)) =
            (catalog.resource(kind), store.get(kind, target_id).cloned())
        else {
            continue;
        };
        let mut target = before.clone();
        let mut params = params.clone();
        if verb == "reject"
            && !params.contains_key("rejected_reason")
            && let Some(note) = params.get("note").cloned()
        {
            params.insert("rejected_reason".into(), note);
        }
        set_approval(resource, &mut target, verb, &params);
        commit_update(store, resource, &before, target);
        return;
    }
}

/// Sets the approval attributes of a booking, expense or time entry.
fn set_approval(resource: &Resource, record: &mut Record, verb: &str, params: &Map<String, Value>) {
    let now = Value::String(rules::now_timestamp());
    let mut set = |key: &str, value: Value| {
        if resource.attribute(key).is_some() {
            record.attributes.insert(key.into(), value);
        }
    };
    match verb {
        "approve" => {
            set("approved", Value::Bool(true));
            set("approved_at", now);
            set("rejected", Value::Bool(false));
            set("rejected_at", Value::Null);
            set("rejected_reason", Value::Null);
        }
        "unapprove" => {
            set("approved", Value::Bool(false));
            set("approved_at", Value::Null);
        }
        "reject" => {
            set("approved", Value::Bool(false));
            set("approved_at", Value::Null);
            set("rejected", Value::Bool(true));
            set("rejected_at", now);
            let reason = params
                .get("rejected_reason")
                .cloned()
                .unwrap_or(Value::Null);
            set("rejected_reason", reason);
        }
        "unreject" => {
            set("rejected", Value::Bool(false));
            set("rejected_at", Value::Null);
            set("rejected_reason", Value::Null);
        }
        _ => {}
    }
    let approver = params.get("approver_id").and_then(|v| match v {
        Value::String(s) => s.parse::<u64>().ok(),
        other => other.as_u64(),
    });
    if resource.relationship("approver").is_some() {
        match (verb, approver) {
            ("approve" | "reject", Some(id)) => {
                record.set_one("approver", Some(Ref::new("people", id)));
            }
            ("unapprove", _) => record.set_one("approver", None),
            _ => {}
        }
    }
}

/// `DELETE /workflow_statuses/{id}`, moving the status's tasks to
/// `attributes.target_workflow_status_id` from the body.
///
/// Without a target, deleting a status that still has tasks is refused
/// with 422 (our choice; the API's behaviour is unconfirmed), and an empty
/// status is deleted.
///
/// # Errors
/// `404` for an unknown status; `422` for a missing or unknown target.
pub fn delete_workflow_status(
    store: &mut Store,
    resource: &Resource,
    id: u64,
    body: &[u8],
) -> Result<(), ApiError> {
    if store.get(&resource.json_api_type, id).is_none() {
        return Err(ApiError::RecordNotFound);
    }
    let data = parse_data(body)?;
    let target = data
        .get("attributes")
        .and_then(|a| a.get("target_workflow_status_id"));
    let target = match target {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.trim().parse::<u64>().ok()),
        Some(other) => Some(other.as_u64()),
    };
    let field = "target_workflow_status_id";
    let tasks: Vec<u64> = store
        .all("tasks")
        .filter(|t| t.link_id("workflow_status") == Some(id))
        .map(|t| t.id)
        .collect();
    match target {
        Some(Some(target)) if target != id && store.get("workflow_statuses", target).is_some() => {
            let Some(tasks_resource) = Catalog::get().resource("tasks") else {
                return Err(ApiError::Server(500));
            };
            for task_id in tasks {
                let Some(before) = store.get("tasks", task_id).cloned() else {
                    continue;
                };
                let mut task = before.clone();
                task.relationships.insert(
                    "workflow_status".into(),
                    Link::One(Some(Ref::new("workflow_statuses", target))),
                );
                commit_update(store, tasks_resource, &before, task);
            }
        }
        Some(_) => {
            return Err(ApiError::Invalid(vec![FieldError::new(
                field,
                "is invalid",
            )]));
        }
        None if !tasks.is_empty() => {
            return Err(ApiError::Invalid(vec![FieldError::blank(field)]));
        }
        None => {}
    }
    write::delete(store, resource, id)
}
