//! Delivery: workflows and their statuses, projects with folders (served
//! as both `folders` and `boards`), task lists and memberships, tasks, time
//! entries, and bookings with their approval statuses.

use chrono::{Duration, NaiveDate};
use serde_json::{Value, json};

use super::fill::shape;
use super::names::{
    BOOKING_NOTES, INTERNAL_PROJECTS, PROJECT_TOPICS, TASK_LIST_NAMES, TASK_OBJECTS, TASK_VERBS,
    TIME_ENTRY_NOTES,
};
use super::{
    Generator, Project, Task, date, history_start, id_string, is_working_day, now, today, ts,
    working_days,
};

/// A workflow: (name, archived, statuses as (name, category_id)).
type WorkflowSpec = (&'static str, bool, &'static [(&'static str, u8)]);

const WORKFLOWS: &[WorkflowSpec] = &[
    (
        "Default",
        false,
        &[
            ("To do", 1),
            ("In progress", 2),
            ("In review", 2),
            ("Done", 3),
        ],
    ),
    (
        "Creative production",
        false,
        &[
            ("Brief", 1),
            ("Concept", 2),
            ("Client feedback", 2),
            ("Approved", 3),
            ("Cancelled", 3),
        ],
    ),
    (
        "Software delivery",
        false,
        &[
            ("Backlog", 1),
            ("Ready", 1),
            ("In development", 2),
            ("QA", 2),
            ("Released", 3),
        ],
    ),
    ("Legacy", true, &[("Open", 1), ("Closed", 3)]),
];

/// The first working day on or after `d`.
fn next_working_day(mut d: NaiveDate) -> NaiveDate {
    while !is_working_day(d) {
        d += Duration::days(1);
    }
    d
}

impl Generator {
    pub(super) fn workflows(&mut self) {
        let workflow_shape = shape("workflows");
        let status_shape = shape("workflow_statuses");
        for (name, archived, statuses) in WORKFLOWS {
            let created = history_start().and_hms_opt(9, 30, 0).expect("valid time");
            let created = self.moment(created, created + Duration::hours(3));
            let mut w = self.draft(workflow_shape, created);
            let workflow_id = w.record.id;
            w.set("name", *name);
            if *archived {
                w.set("archived_at", ts(self.moment(created, now())));
            }
            let mut ids = Vec::new();
            let mut list = Vec::new();
            for (i, (status, category)) in statuses.iter().enumerate() {
                let mut s = self.draft(status_shape, created);
                s.set("name", *status);
                s.set("position", i as u64 + 1);
                s.set("category_id", *category);
                s.set("color_id", i as u64 + 1);
                s.one("workflow", "workflows", workflow_id);
                let id = self.put(s);
                ids.push(id);
                list.push((id, status.to_string(), *category));
            }
            w.many("workflow_statuses", "workflow_statuses", &ids);
            self.put(w);
            if !archived {
                self.workflows.push((workflow_id, list));
            }
        }
    }

    /// Projects, each with folders, task lists, memberships and a budget.
    pub(super) fn projects(&mut self) {
        let project_shape = shape("projects");
        let task_field_ids: Vec<Value> = self
            .field_sets
            .iter()
            .find(|s| s.customizable_type == "tasks")
            .map(|s| s.fields.iter().map(|f| id_string(f.id)).collect())
            .unwrap_or_default();
        for n in 0..self.volumes.projects {
            let internal = n < INTERNAL_PROJECTS.len() || self.chance(0.03);
            let (company, name, created) = if internal {
                let name = INTERNAL_PROJECTS[n % INTERNAL_PROJECTS.len()].to_string();
                let name = if n < INTERNAL_PROJECTS.len() {
                    name
                } else {
                    format!("{name} {}", n + 1)
                };
                (None, name, self.historic_moment())
            } else {
                let c = self.below(self.companies.len());
                let company = self.companies[c].clone();
                let topic = *self.pick(PROJECT_TOPICS);
                let created = self.moment(company.created, now() - Duration::days(3));
                (Some(c), format!("{} {}", company.name, topic), created)
            };
            let archived = company.is_some_and(|c| self.companies[c].archived) || self.chance(0.12);
            let workflow = self.below(self.workflows.len());
            let pm = self.employee_on(created.date());
            let pm_id = self.employees[pm].id;

            let mut d = self.draft(project_shape, created);
            let id = d.record.id;
            d.set("name", name.clone());
            d.set("number", (n + 1).to_string());
            d.set("project_number", (n + 1).to_string());
            d.set("project_type_id", if internal { 1 } else { 2 });
            d.set("project_color_id", (n % 12) as u64 + 1);
            d.set("preferences", json!({}));
            d.set("tag_colors", json!({}));
            d.set(
                "task_custom_fields_ids",
                Value::Array(task_field_ids.clone()),
            );
            d.set("page_custom_fields_ids", json!([]));
            d.set("time_on_tasks", true);
            if archived {
                let at = self.moment(d.updated, now());
                d.set("archived_at", ts(at));
                d.updated = d.updated.max(at);
            }
            let company_id = company.map(|c| self.companies[c].id);
            d.one_opt("company", "companies", company_id);
            d.one("project_manager", "people", pm_id);
            d.one("last_actor", "people", pm_id);
            d.one("workflow", "workflows", self.workflows[workflow].0);
            self.with_custom_values(&mut d, "projects");
            self.put(d);

            // The team: the manager plus a few colleagues.
            let mut members = vec![pm_id];
            for _ in 0..2 + self.below(4) {
                let e = self.employee_on(created.date());
                let e = self.employees[e].id;
                if !members.contains(&e) {
                    members.push(e);
                }
            }
            self.projects.push(Project {
                id,
                name,
                company,
                workflow,
                archived,
                created,
                task_lists: Vec::new(),
                members: members.clone(),
                budget: 0,
                tasks: Vec::new(),
            });
            let p = self.projects.len() - 1;
            self.memberships(p, &members);
            self.folders_and_lists(p);
            let budget = self.budget_for(p);
            self.projects[p].budget = budget;
        }
    }

    fn memberships(&mut self, p: usize, members: &[u64]) {
        let s = shape("memberships");
        let project = self.projects[p].id;
        let created = self.projects[p].created;
        for (i, &person) in members.iter().enumerate() {
            let mut d = self.draft(s, created);
            d.set("type_id", 1);
            d.set("access_type_id", if i == 0 { 1 } else { 2 });
            d.set("target_id", project.to_string());
            d.set("target_type", "Workspace");
            d.one("project", "projects", project);
            d.one("person", "people", person);
            self.put(d);
        }
        if self.chance(0.15) {
            let mut d = self.draft(s, created);
            d.set("type_id", 2);
            d.set("access_type_id", 3);
            d.set("dynamic_group_id", 2);
            d.set("target_id", project.to_string());
            d.set("target_type", "Workspace");
            d.one("project", "projects", project);
            self.put(d);
        }
    }

    /// Folders (the same records under `folders` and `boards`) and task
    /// lists in them.
    fn folders_and_lists(&mut self, p: usize) {
        let folder_shape = shape("folders");
        let list_shape = shape("task_lists");
        let project = self.projects[p].clone();
        let folder_count = 1 + usize::from(self.chance(0.4));
        let mut folders = Vec::new();
        for i in 0..folder_count {
            let mut d = self.draft(folder_shape, project.created);
            d.set("name", if i == 0 { "Main" } else { "Phase 2" });
            d.set("position", i as u64 + 1);
            d.set("placement", (i as u64 + 1) * 1000);
            if project.archived {
                d.set("archived_at", ts(self.moment(d.updated, now())));
            }
            d.one("project", "projects", project.id);
            let id = d.record.id;
            let record = self.finish(d);
            self.store.put("boards", record.clone());
            self.store.put("folders", record);
            folders.push(id);
        }

        let count = 1 + self.below(5);
        let mut names: Vec<&str> = TASK_LIST_NAMES.to_vec();
        for i in 0..count {
            let name = names.remove(self.below(names.len()));
            let folder = folders[self.below(folders.len())];
            let created = self.moment(project.created, project.created + Duration::days(30));
            let mut d = self.draft(list_shape, created.min(now()));
            d.set("name", name);
            d.set("position", i as u64 + 1);
            d.set("placement", (i as u64 + 1) * 1000);
            d.set("email_key", format!("list-{}", d.record.id));
            if project.archived || self.chance(0.06) {
                d.set("archived_at", ts(self.moment(d.updated, now())));
            }
            d.one("project", "projects", project.id);
            d.one("folder", "folders", folder);
            d.one("board", "boards", folder);
            let id = self.put(d);
            self.projects[p].task_lists.push(id);
        }
    }

    pub(super) fn tasks(&mut self) {
        let s = shape("tasks");
        let mut numbers = vec![0u64; self.projects.len()];
        for _ in 0..self.volumes.tasks {
            let p = self.below(self.projects.len());
            let project = &self.projects[p];
            let lists = project.task_lists.clone();
            let members = project.members.clone();
            let workflow = project.workflow;
            let project_id = project.id;
            let project_created = project.created;
            let list = lists[self.below(lists.len())];
            let created = self.moment(project_created, now());
            let age = (now() - created).num_days();

            // Older tasks are more likely to be done.
            let statuses = self.workflows[workflow].1.clone();
            let closed_share = if age > 120 { 0.75 } else { 0.3 };
            let wanted = if self.chance(closed_share) {
                3
            } else if self.chance(0.5) {
                2
            } else {
                1
            };
            let candidates: Vec<_> = statuses.iter().filter(|s| s.2 == wanted).collect();
            let status = candidates[self.below(candidates.len())].clone();
            let closed = status.2 == 3;

            numbers[p] += 1;
            let number = numbers[p];
            let title = format!("{} {}", self.pick(TASK_VERBS), self.pick(TASK_OBJECTS));
            let mut d = self.draft(s, created);
            let id = d.record.id;
            d.set("title", title.clone());
            d.set(
                "description",
                format!("<p>{title} as agreed with the team.</p>"),
            );
            d.set("number", number.to_string());
            d.set("task_number", number.to_string());
            d.set("type_id", if self.chance(0.03) { 3 } else { 1 });
            d.set("creation_method_id", 1);
            d.set("placement", number * 100);
            d.set("subtask_placement", number * 100);
            d.set("closed", closed);
            if closed {
                let at = self.moment(created, now());
                d.set("closed_at", ts(at));
                d.updated = d.updated.max(at);
            }
            if self.chance(0.7) {
                let due = created.date() + Duration::days(self.between(3, 45));
                d.set("due_date", date(due));
                if self.chance(0.5) {
                    d.set("start_date", date(created.date()));
                }
            }
            let estimate = self.between(0, 16) * 30;
            d.set("initial_estimate", estimate);
            d.set("remaining_time", if closed { 0 } else { estimate });
            let assignee = (self.chance(0.85)).then(|| members[self.below(members.len())]);
            d.one_opt("assignee", "people", assignee);
            d.set(
                "subscriber_ids",
                Value::Array(assignee.into_iter().map(id_string).collect()),
            );
            let creator = members[self.below(members.len())];
            d.one("creator", "people", creator);
            d.one("last_actor", "people", assignee.unwrap_or(creator));
            if self.chance(0.15) {
                d.set("tag_list", json!([*self.pick(super::names::TAGS)]));
            }
            d.one("project", "projects", project_id);
            d.one("task_list", "task_lists", list);
            d.one("workflow_status", "workflow_statuses", status.0);

            // Some tasks are subtasks of an earlier task in the project.
            let siblings = self.projects[p].tasks.clone();
            if !siblings.is_empty() && self.chance(0.12) {
                let parent = siblings[self.below(siblings.len())];
                d.one("parent_task", "tasks", self.tasks[parent].id);
            }
            if self.chance(0.3) {
                let budget = self.projects[p].budget;
                let services = self.deals[budget].services.clone();
                if !services.is_empty() {
                    let service = services[self.below(services.len())];
                    d.one("service", "services", self.services[service].id);
                }
            }
            self.with_custom_values(&mut d, "tasks");
            self.put(d);
            self.tasks.push(Task {
                id,
                title,
                project: p,
                created,
            });
            let t = self.tasks.len() - 1;
            self.projects[p].tasks.push(t);
        }
        self.count_subtasks();
    }

    /// Writes each parent task's subtask counters.
    fn count_subtasks(&mut self) {
        let mut counts = std::collections::BTreeMap::<u64, (u64, u64)>::new();
        for task in self.store.all("tasks") {
            if let Some(parent) = task.link_id("parent_task") {
                let entry = counts.entry(parent).or_default();
                entry.0 += 1;
                if task.attributes.get("closed") != Some(&Value::Bool(true)) {
                    entry.1 += 1;
                }
            }
        }
        for (parent, (all, open)) in counts {
            if let Some(record) = self.store.get_mut("tasks", parent) {
                record
                    .attributes
                    .insert("subtask_count".into(), Value::from(all));
                record
                    .attributes
                    .insert("open_subtask_count".into(), Value::from(open));
            }
        }
    }

    pub(super) fn time_entries(&mut self) {
        let s = shape("time_entries");
        let mut task_minutes = vec![(0i64, 0i64); self.tasks.len()];
        for _ in 0..self.volumes.time_entries {
            let p = self.below(self.projects.len());
            let budget = self.deals[self.projects[p].budget].clone();
            if budget.services.is_empty() {
                continue;
            }
            let si = budget.services[self.below(budget.services.len())];
            let day = self.working_day(budget.start, budget.end.min(today()));

            // Project members track most of the time.
            let members = self.projects[p].members.clone();
            let member = members[self.below(members.len())];
            let mut person = self
                .employees
                .iter()
                .position(|e| e.id == member)
                .unwrap_or(0);
            let e = &self.employees[person];
            if e.joined > day || e.left.is_some_and(|l| l < day) {
                person = self.employee_on(day);
            }
            let employee = self.employees[person].clone();

            let minutes = self.between(1, 32) * 15;
            let service = self.services[si].clone();
            let billable = if service.billable { minutes } else { 0 };
            let cost = minutes * employee.hourly_cost / 60;
            let created = self.office_moment(day);
            let mut d = self.draft(s, created);
            d.set("date", date(day));
            d.set("time", minutes);
            d.set("billable_time", billable);
            d.set("recognized_time", billable);
            d.set("note", *self.pick(TIME_ENTRY_NOTES));
            d.set("cost", cost);
            d.set("work_cost", cost);
            let age = (today() - day).num_days();
            d.set("submitted", age > 7);
            let timer = self.chance(0.3);
            d.set("track_method_id", if timer { 2 } else { 1 });
            if timer {
                let start = created - Duration::minutes(minutes);
                let start = start.max(day.and_hms_opt(7, 0, 0).expect("valid time"));
                d.set("started_at", ts(start));
                d.set("timer_started_at", ts(start));
                d.set("timer_stopped_at", ts(created));
            }
            if age > 14 && (budget.time_approval || self.chance(0.8)) {
                if self.chance(0.98) {
                    let delay = Duration::days(self.between(1, 10));
                    let at = self.office_moment((day + delay).min(today()));
                    let at = at.max(created);
                    d.set("approved", true);
                    d.set("approved_at", ts(at));
                    d.one("approver", "people", self.projects[p].members[0]);
                    d.updated = d.updated.max(at);
                } else {
                    let at = self
                        .office_moment((day + Duration::days(2)).min(today()))
                        .max(created);
                    d.set("rejected", true);
                    d.set("rejected_at", ts(at));
                    d.set("rejected_reason", "Wrong service");
                    d.one("rejecter", "people", self.projects[p].members[0]);
                    d.updated = d.updated.max(at);
                }
            }
            d.set("invoiced", billable > 0 && age > 45 && self.chance(0.6));
            d.one("person", "people", employee.id);
            d.one("creator", "people", employee.id);
            d.one("last_actor", "people", employee.id);
            d.one("service", "services", service.id);
            d.one("person_subsidiary", "subsidiaries", self.subsidiaries[0]);
            d.one("deal_subsidiary", "subsidiaries", self.subsidiaries[0]);
            let task_count = self.projects[p].tasks.len();
            if task_count > 0 && self.chance(0.5) {
                let k = self.below(task_count);
                let t = self.projects[p].tasks[k];
                d.one("task", "tasks", self.tasks[t].id);
                task_minutes[t].0 += minutes;
                task_minutes[t].1 += billable;
            }
            self.put(d);

            let service = &mut self.services[si];
            service.worked += minutes;
            service.billable_worked += billable;
            service.work_cost += (cost as f64 / budget.rate).round() as i64;
        }

        // Tasks show the time tracked on them.
        for (t, (minutes, billable)) in task_minutes.into_iter().enumerate() {
            if minutes == 0 {
                continue;
            }
            if let Some(record) = self.store.get_mut("tasks", self.tasks[t].id) {
                record
                    .attributes
                    .insert("worked_time".into(), Value::from(minutes));
                record
                    .attributes
                    .insert("billable_time".into(), Value::from(billable));
            }
        }
    }

    /// Work bookings on services and absence bookings on events, with
    /// approval statuses for the absences.
    pub(super) fn bookings(&mut self) {
        let s = shape("bookings");
        let approval_shape = shape("approval_statuses");
        let events: Vec<(u64, String)> = self
            .events
            .iter()
            .filter(|e| !e.2)
            .map(|e| (e.0, e.1.clone()))
            .collect();
        for _ in 0..self.volumes.bookings {
            let absence = self.chance(0.15);
            let (person, start, service, project) = if absence {
                let start = self.working_day(history_start(), today() + Duration::days(60));
                let person = self.employee_on(start.min(today()));
                (self.employees[person].id, start, None, None)
            } else {
                let p = self.below(self.projects.len());
                let budget = self.deals[self.projects[p].budget].clone();
                if budget.services.is_empty() {
                    continue;
                }
                let si = budget.services[self.below(budget.services.len())];
                let start =
                    self.working_day(budget.start, budget.end.min(today() + Duration::days(60)));
                let members = self.projects[p].members.clone();
                let person = members[self.below(members.len())];
                (person, start, Some(si), Some(p))
            };
            let length = self.between(0, 9);
            let end = next_working_day(start + Duration::days(length));
            let days = working_days(start, end);
            let lead = Duration::days(self.between(1, 30));
            let created = self.office_moment((start - lead).max(history_start()));
            let created = created.min(now());
            let mut d = self.draft(s, created);
            let id = d.record.id;
            d.set("started_on", date(start));
            d.set("ended_on", date(end));
            d.set("total_working_days", days as f64);

            // booking_method_id decides which of time / percentage /
            // total_time carries the amount.
            let method = if absence || self.chance(0.6) {
                1
            } else if self.chance(0.6) {
                2
            } else {
                3
            };
            let total = match method {
                1 => {
                    let per_day = if absence {
                        480
                    } else {
                        self.between(2, 8) * 60
                    };
                    d.set("time", per_day);
                    d.set("percentage", Value::Null);
                    per_day * days
                }
                2 => {
                    let percentage = *self.pick(&[25i64, 50, 75, 100]);
                    d.set("percentage", percentage);
                    d.set("time", Value::Null);
                    480 * percentage / 100 * days
                }
                _ => {
                    d.set("time", Value::Null);
                    d.set("percentage", Value::Null);
                    self.between(1, 40) * 60
                }
            };
            d.set("booking_method_id", method);
            d.set("total_time", total);
            d.set("hours", total as f64 / 60.0);
            d.set("booking_type_id", if absence { 2 } else { 1 });
            d.one("person", "people", person);
            d.one("creator", "people", person);
            d.one("updater", "people", person);
            if let (Some(si), Some(p)) = (service, project) {
                d.set("stage_type", 2);
                d.set("note", *self.pick(BOOKING_NOTES));
                d.one("service", "services", self.services[si].id);
                let future = start > today();
                d.set("draft", future && self.chance(0.05));
                if self.chance(0.7) {
                    d.set("approved", true);
                    d.set("approved_at", ts(created));
                    d.one("approver", "people", self.projects[p].members[0]);
                }
                let task_count = self.projects[p].tasks.len();
                if task_count > 0 && self.chance(0.2) {
                    let k = self.below(task_count);
                    let t = self.projects[p].tasks[k];
                    d.one("task", "tasks", self.tasks[t].id);
                }
                self.services[si].booked += total;
            } else {
                let (event, name) = events[self.below(events.len())].clone();
                d.set("note", name);
                d.one("event", "events", event);

                // Absences go through approval.
                let approver = self.active_employee();
                let mut a = self.draft(approval_shape, created);
                a.set("target_type", "event");
                a.one("booking", "bookings", id);
                a.one("approver", "people", approver);
                let decided = self.moment(created, (created + Duration::days(3)).min(now()));
                if self.chance(0.85) {
                    d.set("approved", true);
                    d.set("approved_at", ts(decided));
                    d.one("approver", "people", approver);
                    a.one("actual_approver", "people", approver);
                    a.set("note", "Enjoy!");
                    d.updated = d.updated.max(decided);
                } else if self.chance(0.3) {
                    d.set("rejected", true);
                    d.set("rejected_at", ts(decided));
                    d.set("rejected_reason", "Overlaps a launch");
                    d.one("rejecter", "people", approver);
                    a.one("actual_approver", "people", approver);
                    d.updated = d.updated.max(decided);
                }
                let approval = self.put(a);
                d.many("approval_statuses", "approval_statuses", &[approval]);
            }
            if self.chance(0.02) {
                let at = self.moment(created, now());
                d.set("canceled", true);
                d.set("canceled_at", ts(at));
                d.one("canceler", "people", person);
                d.updated = d.updated.max(at);
            }
            self.with_custom_values(&mut d, "bookings");
            self.put(d);
        }
    }
}
