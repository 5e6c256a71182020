//! Conversation and history: comments on tasks, deals, companies and people,
//! and the activity feed of create, update and delete events.
//!
//! Activity changesets follow `productive-api.md` section 13: an array of
//! one-key objects whose value is `[old, new]`, each side an object with a
//! `value`, references adding `id` (and `color_id` for workflow statuses),
//! money adding `currency`.

use chrono::{Duration, NaiveDateTime};
use serde_json::{Value, json};

use super::fill::shape;
use super::names::{COMMENT_PHRASES, TASK_OBJECTS, TASK_VERBS};
use super::{DEMO_DEFAULT_CURRENCY, Generator, Item, date, now, ts};

/// What a comment hangs on: (relationship, JSON:API type, commentable_type).
const TASK_PARENT: (&str, &str, &str) = ("task", "tasks", "task");
const DEAL_PARENT: (&str, &str, &str) = ("deal", "deals", "deal");
const COMPANY_PARENT: (&str, &str, &str) = ("company", "companies", "company");
const PERSON_PARENT: (&str, &str, &str) = ("person", "people", "person");

/// A container an activity names in its `parent_*` or `root_*` fields.
struct Container {
    kind: &'static str,
    id: u64,
    name: String,
}

impl Generator {
    pub(super) fn comments(&mut self) {
        let s = shape("comments");
        for _ in 0..self.volumes.comments {
            let roll = self.below(100);
            let (parent, id, created, project) = if roll < 70 {
                let t = self.below(self.tasks.len());
                let task = &self.tasks[t];
                (
                    TASK_PARENT,
                    task.id,
                    task.created,
                    Some(self.projects[task.project].id),
                )
            } else if roll < 88 {
                let d = self.below(self.deals.len());
                (DEAL_PARENT, self.deals[d].id, self.deals[d].created, None)
            } else if roll < 96 {
                let c = self.below(self.companies.len());
                let company = &self.companies[c];
                (COMPANY_PARENT, company.id, company.created, None)
            } else {
                let c = self.below(self.contacts.len());
                let contact = &self.contacts[c];
                (PERSON_PARENT, contact.id, contact.created, None)
            };
            let at = self.moment(created, now());
            let creator = self.employee_on(at.date());
            let creator = self.employees[creator].id;
            let mut d = self.draft(s, at);
            let mut body = format!("<p>{}</p>", self.pick(COMMENT_PHRASES));
            if self.chance(0.2) {
                let e = self.below(self.employees.len());
                let mention = &self.employees[e];
                body = format!("<p>@[Person:{}:{}] </p>{body}", mention.id, mention.name);
            }
            d.set("body", body);
            d.set("commentable_type", parent.2);
            d.set("version_number", 1);
            if self.chance(0.1) {
                let edited = self.moment(at, now());
                d.set("edited_at", ts(edited));
                d.set("version_number", 2);
                d.updated = d.updated.max(edited);
            }
            if self.chance(0.02) {
                let pinned = self.moment(at, now());
                d.set("pinned_at", ts(pinned));
                d.one("pinned_by", "people", creator);
                d.updated = d.updated.max(pinned);
            }
            d.set("reactions", json!({}));
            d.one(parent.0, parent.1, id);
            d.one_opt("project", "projects", project);
            d.one("creator", "people", creator);
            self.put(d);
        }
    }

    /// The container chain of a project: (parent, root).
    fn project_chain(&self, p: usize) -> (Container, Option<Container>) {
        let project = &self.projects[p];
        let parent = Container {
            kind: "Project",
            id: project.id,
            name: project.name.clone(),
        };
        let root = project.company.map(|c| Container {
            kind: "Company",
            id: self.companies[c].id,
            name: self.companies[c].name.clone(),
        });
        (parent, root)
    }

    fn company_container(&self, c: usize) -> Container {
        Container {
            kind: "Company",
            id: self.companies[c].id,
            name: self.companies[c].name.clone(),
        }
    }

    pub(super) fn activities(&mut self) {
        let s = shape("activities");
        for _ in 0..self.volumes.activities {
            let roll = self.below(100);
            let event = if roll < 60 {
                "create"
            } else if roll < 92 {
                "update"
            } else {
                "delete"
            };
            let target = self.below(100);

            // Pick the item, its containers and the convenience ids.
            let mut ids: Vec<(&str, u64)> = Vec::new();
            let mut deal_is_budget = false;
            let (item_type, item_id, item_name, item_created, parent, root) = if event == "delete" {
                // Deleted tasks no longer exist: their ids are never served.
                let p = self.below(self.projects.len());
                let (parent, root) = self.project_chain(p);
                let created = self.moment(self.projects[p].created, now());
                let id = self.store.allocate_id();
                let name = format!("{} {}", self.pick(TASK_VERBS), self.pick(TASK_OBJECTS));
                ids.push(("task_id", id));
                ("Task", id, name, created, Some(parent), root)
            } else if target < 60 {
                let t = self.below(self.tasks.len());
                let task = self.tasks[t].clone();
                let (parent, root) = self.project_chain(task.project);
                ids.push(("task_id", task.id));
                (
                    "Task",
                    task.id,
                    task.title,
                    task.created,
                    Some(parent),
                    root,
                )
            } else if target < 75 {
                let d = self.below(self.deals.len());
                let deal = self.deals[d].clone();
                deal_is_budget = deal.budget;
                ids.push(("deal_id", deal.id));
                let parent = deal.company.map(|c| self.company_container(c));
                let root = deal.company.map(|c| self.company_container(c));
                ("Deal", deal.id, deal.name, deal.created, parent, root)
            } else if target < 83 {
                let p = self.below(self.projects.len());
                let project = self.projects[p].clone();
                let parent = project.company.map(|c| self.company_container(c));
                let root = project.company.map(|c| self.company_container(c));
                (
                    "Project",
                    project.id,
                    project.name,
                    project.created,
                    parent,
                    root,
                )
            } else if target < 90 {
                let c = self.below(self.companies.len());
                let company = self.companies[c].clone();
                ids.push(("company_id", company.id));
                (
                    "Company",
                    company.id,
                    company.name,
                    company.created,
                    None,
                    None,
                )
            } else if target < 95 {
                let i = self.below(self.contacts.len());
                let item: Item = self.contacts[i].clone();
                ids.push(("person_id", item.id));
                ("Person", item.id, item.name, item.created, None, None)
            } else {
                let i = self.below(self.invoices.len());
                let item: Item = self.invoices[i].clone();
                ids.push(("invoice_id", item.id));
                let parent = item.company.map(|c| self.company_container(c));
                let root = item.company.map(|c| self.company_container(c));
                ("Invoice", item.id, item.name, item.created, parent, root)
            };

            let at = match event {
                "create" => item_created,
                _ => self.moment(item_created, now()),
            };
            let changeset = self.changeset(event, item_type, &item_name, at);
            let creator = self.employee_on(at.date());
            let creator = self.employees[creator].id;
            let mut d = self.draft(s, at);
            d.set("event", event);
            d.set("changeset", changeset);
            d.set("item_id", item_id);
            d.set("item_type", item_type);
            d.set("item_name", item_name);
            if event == "delete" {
                d.set("item_deleted_at", ts(at));
            }
            if let Some(parent) = parent {
                d.set("parent_id", parent.id);
                d.set("parent_type", parent.kind);
                d.set("parent_name", parent.name);
            }
            if let Some(root) = root {
                // The client the item belongs to, whatever the item is.
                if root.kind == "Company" && !ids.iter().any(|(n, _)| *n == "company_id") {
                    ids.push(("company_id", root.id));
                }
                d.set("root_id", root.id);
                d.set("root_type", root.kind);
                d.set("root_name", root.name);
            }
            for (name, id) in ids {
                d.set(name, id);
            }
            d.set("deal_is_budget", deal_is_budget);
            d.set("made_by_automation", self.chance(0.02));
            d.one("creator", "people", creator);
            self.put(d);
        }
    }

    /// The changeset of an activity.
    fn changeset(&mut self, event: &str, item_type: &str, name: &str, at: NaiveDateTime) -> Value {
        let field = |key: &str, old: Value, new: Value| {
            let mut change = serde_json::Map::new();
            change.insert(key.to_string(), Value::Array(vec![old, new]));
            Value::Object(change)
        };
        match event {
            "create" => {
                let key = if item_type == "Task" { "title" } else { "name" };
                Value::Array(vec![field(
                    key,
                    json!({ "value": null }),
                    json!({ "value": name }),
                )])
            }
            "delete" => Value::Array(Vec::new()),
            _ => {
                let mut changes = Vec::new();
                match (item_type, self.below(4)) {
                    ("Task", 0) => {
                        let a = self.below(self.employees.len());
                        let b = self.below(self.employees.len());
                        let (a, b) = (&self.employees[a], &self.employees[b]);
                        changes.push(field(
                            "assignee",
                            json!({ "id": a.id, "value": a.name }),
                            json!({ "id": b.id, "value": b.name }),
                        ));
                    }
                    ("Task", 1) => {
                        let w = self.below(self.workflows.len());
                        let statuses = &self.workflows[w].1;
                        let (old, new) = (&statuses[0], &statuses[statuses.len() - 1]);
                        changes.push(field(
                            "workflow_status",
                            json!({ "id": old.0, "value": old.1, "color_id": 1 }),
                            json!({ "id": new.0, "value": new.1, "color_id": statuses.len() }),
                        ));
                    }
                    ("Task", 2) => {
                        let old = at.date() + Duration::days(7);
                        let new = old + Duration::days(self.between(1, 14));
                        changes.push(field(
                            "due_date",
                            json!({ "value": date(old) }),
                            json!({ "value": date(new) }),
                        ));
                    }
                    ("Deal", _) => {
                        let old = self.between(10, 200) * 100_000;
                        let new = old + self.between(1, 50) * 100_000;
                        changes.push(field(
                            "budget_total",
                            json!({ "value": old, "currency": DEMO_DEFAULT_CURRENCY }),
                            json!({ "value": new, "currency": DEMO_DEFAULT_CURRENCY }),
                        ));
                    }
                    _ => {
                        let key = if item_type == "Task" { "title" } else { "name" };
                        changes.push(field(
                            key,
                            json!({ "value": format!("{name} (draft)") }),
                            json!({ "value": name }),
                        ));
                    }
                }
                Value::Array(changes)
            }
        }
    }
}
