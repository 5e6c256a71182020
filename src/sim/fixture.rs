//! A small, fixed organization for tests, and a compact way to build others.
//!
//! [`Fixture`] adds records with explicit ids, attributes written as JSON
//! and relationships as `(name, type, id)` triples. [`standard`] builds the
//! organization most tests use: every id is a constant in [`ids`], so a
//! test can name the record it expects. All names in it are made up.

use serde_json::{Value, json};

use crate::sim::store::{Record, Ref, Store};

/// The ids of the [`standard`] organization.
pub mod ids {
    pub const ORGANIZATION: u64 = 7;

    pub const ACME: u64 = 101;
    /// Archived.
    pub const GLOBEX: u64 = 102;

    pub const ANN: u64 = 201;
    /// Deactivated.
    pub const BO: u64 = 202;
    pub const CY: u64 = 203;

    pub const WEBSITE: u64 = 301;
    /// Archived.
    pub const MOBILE_APP: u64 = 302;
    pub const INTERNAL_TOOLS: u64 = 303;

    pub const WORKFLOW: u64 = 401;
    pub const TO_DO: u64 = 411;
    pub const IN_PROGRESS: u64 = 412;
    /// Category 3: closes its tasks.
    pub const DONE: u64 = 413;
    /// A status without tasks.
    pub const BLOCKED: u64 = 414;

    pub const DESIGN_FOLDER: u64 = 421;
    pub const SPRINT: u64 = 431;
    /// Archived.
    pub const BACKLOG: u64 = 432;

    pub const HOMEPAGE_TASK: u64 = 501;
    pub const COPY_TASK: u64 = 502;
    /// Closed.
    pub const LAUNCH_TASK: u64 = 503;
    pub const LOGIN_TASK: u64 = 504;

    /// Select field on tasks.
    pub const PRIORITY_FIELD: u64 = 601;
    pub const HIGH: u64 = 611;
    pub const LOW: u64 = 612;
    /// Multiselect field on projects.
    pub const LABELS_FIELD: u64 = 602;
    pub const RED: u64 = 621;
    pub const BLUE: u64 = 622;

    /// A sales deal, open.
    pub const RETAINER_DEAL: u64 = 701;
    /// A budget, open.
    pub const WEBSITE_BUDGET: u64 = 702;
    /// A sales deal, closed.
    pub const PITCH_DEAL: u64 = 703;
    /// A budget, closed.
    pub const OLD_BUDGET: u64 = 704;

    pub const DESIGN_SERVICE: u64 = 711;
    pub const DEV_SERVICE: u64 = 712;
    pub const VACATION: u64 = 721;

    /// Work booking on the design service.
    pub const WORK_BOOKING: u64 = 801;
    /// Absence booking, pending approval.
    pub const ABSENCE_BOOKING: u64 = 802;
    /// The approval status of the absence booking.
    pub const ABSENCE_APPROVAL: u64 = 811;

    pub const TRAIN_EXPENSE: u64 = 821;
    /// Paid.
    pub const HOTEL_EXPENSE: u64 = 822;

    pub const ANN_ENTRY: u64 = 831;
    pub const BO_ENTRY: u64 = 832;

    pub const TASK_COMMENT: u64 = 841;
    pub const DEAL_COMMENT: u64 = 842;
    /// No parent: readable by id, not listed.
    pub const ORPHAN_COMMENT: u64 = 843;
}

/// Builds a [`Store`] record by record.
#[derive(Debug, Clone)]
pub struct Fixture {
    store: Store,
}

impl Fixture {
    /// An organization with its own `organizations` record.
    pub fn new(organization_id: u64, name: &str) -> Fixture {
        let mut fixture = Fixture {
            store: Store::new(organization_id),
        };
        fixture.add(
            "organizations",
            organization_id,
            json!({ "name": name, "currency": "EUR", "time_zone": "Europe/Berlin" }),
            &[],
        );
        fixture
    }

    /// Adds a record of JSON:API type `kind` with to-one relationships
    /// given as `(relationship, target type, target id)`.
    ///
    /// # Panics
    /// When `attributes` is not a JSON object: fixtures are code.
    pub fn add(
        &mut self,
        kind: &str,
        id: u64,
        attributes: Value,
        links: &[(&str, &str, u64)],
    ) -> &mut Fixture {
        let Value::Object(attributes) = attributes else {
            panic!("fixture attributes of {kind} {id} must be a JSON object");
        };
        let mut record = Record::new(id);
        record.attributes = attributes.into();
        for (name, target, target_id) in links {
            record.set_one(name, Some(Ref::new(*target, *target_id)));
        }
        self.store.put(kind, record);
        self
    }

    /// Sets a to-many relationship of an existing record.
    ///
    /// # Panics
    /// When the record does not exist.
    pub fn link_many(
        &mut self,
        kind: &str,
        id: u64,
        relationship: &str,
        target: &str,
        target_ids: &[u64],
    ) -> &mut Fixture {
        let record = self
            .store
            .get_mut(kind, id)
            .unwrap_or_else(|| panic!("fixture has no {kind} {id}"));
        record.set_many(
            relationship,
            target_ids.iter().map(|t| Ref::new(target, *t)).collect(),
        );
        self
    }

    pub fn build(self) -> Store {
        self.store
    }
}

/// A timestamp in the fixture's zone, written like the API.
fn at(day: &str, time: &str) -> String {
    format!("{day}T{time}.000+01:00")
}

/// The organization most tests use; see [`ids`].
pub fn standard() -> Store {
    use ids::*;
    let mut f = Fixture::new(ORGANIZATION, "Simulated Agency");

    f.add(
        "companies",
        ACME,
        json!({ "name": "Acme Studio", "archived_at": null,
                "created_at": at("2024-01-10", "09:00:00") }),
        &[],
    )
    .add(
        "companies",
        GLOBEX,
        json!({ "name": "Globex Partners", "archived_at": at("2024-06-01", "12:00:00"),
                "created_at": at("2024-02-11", "10:00:00") }),
        &[],
    );

    for (id, first, last, email, deactivated) in [
        (ANN, "Ann", "Archer", "ann@example.test", None),
        (
            BO,
            "Bo",
            "Baker",
            "bo@example.test",
            Some(at("2025-01-31", "18:00:00")),
        ),
        (CY, "Cy", "Cole", "cy@example.test", None),
    ] {
        f.add(
            "people",
            id,
            json!({ "first_name": first, "last_name": last, "email": email,
                    "archived_at": null, "deactivated_at": deactivated, "role_id": 3,
                    "created_at": at("2024-01-02", "08:00:00") }),
            &[("company", "companies", ACME)],
        );
    }

    f.add(
        "projects",
        WEBSITE,
        json!({ "name": "Website relaunch", "project_type_id": 2, "archived_at": null,
                "created_at": at("2025-01-07", "09:12:44"),
                "custom_fields": { "602": ["621", "622"] } }),
        &[
            ("company", "companies", ACME),
            ("project_manager", "people", ANN),
            ("workflow", "workflows", WORKFLOW),
        ],
    )
    .add(
        "projects",
        MOBILE_APP,
        json!({ "name": "Mobile app", "project_type_id": 2,
                "archived_at": at("2025-03-01", "10:00:00"),
                "created_at": at("2024-11-20", "14:30:00"), "custom_fields": null }),
        &[
            ("company", "companies", GLOBEX),
            ("project_manager", "people", BO),
        ],
    )
    .add(
        "projects",
        INTERNAL_TOOLS,
        json!({ "name": "Internal tools", "project_type_id": 1, "archived_at": null,
                "created_at": at("2025-02-02", "11:00:00"),
                "custom_fields": { "602": ["622"] } }),
        &[("project_manager", "people", CY)],
    );

    f.add(
        "workflows",
        WORKFLOW,
        json!({ "name": "Default workflow", "archived_at": null }),
        &[],
    );
    for (id, name, position, category) in [
        (TO_DO, "To do", 1, 1),
        (IN_PROGRESS, "In progress", 2, 2),
        (DONE, "Done", 3, 3),
        (BLOCKED, "Blocked", 4, 2),
    ] {
        f.add(
            "workflow_statuses",
            id,
            json!({ "name": name, "position": position, "category_id": category,
                    "color_id": position }),
            &[("workflow", "workflows", WORKFLOW)],
        );
    }

    f.add(
        "folders",
        DESIGN_FOLDER,
        json!({ "name": "Design", "archived_at": null }),
        &[("project", "projects", WEBSITE)],
    )
    .add(
        "task_lists",
        SPRINT,
        json!({ "name": "Sprint 1", "archived_at": null, "position": 1 }),
        &[
            ("project", "projects", WEBSITE),
            ("folder", "folders", DESIGN_FOLDER),
        ],
    )
    .add(
        "task_lists",
        BACKLOG,
        json!({ "name": "Backlog", "archived_at": at("2025-02-20", "09:00:00"),
                "position": 2 }),
        &[
            ("project", "projects", WEBSITE),
            ("folder", "folders", DESIGN_FOLDER),
        ],
    );

    let task = |title: &str, due: Value, closed: bool, created: &str, extra: Value| {
        let mut attributes = json!({
            "title": title, "due_date": due, "closed": closed,
            "closed_at": closed.then(|| at("2025-03-10", "17:00:00")),
            "created_at": at(created, "10:00:00"), "updated_at": at(created, "10:00:00"),
            "private": false, "tag_list": [], "type_id": 1, "custom_fields": null,
        });
        if let (Value::Object(base), Value::Object(more)) = (&mut attributes, extra) {
            base.extend(more);
        }
        attributes
    };
    f.add(
        "tasks",
        HOMEPAGE_TASK,
        task(
            "Design homepage",
            json!("2025-02-01"),
            false,
            "2025-01-10",
            json!({ "custom_fields": { "601": "611" }, "initial_estimate": 240 }),
        ),
        &[
            ("project", "projects", WEBSITE),
            ("task_list", "task_lists", SPRINT),
            ("assignee", "people", ANN),
            ("workflow_status", "workflow_statuses", TO_DO),
        ],
    )
    .add(
        "tasks",
        COPY_TASK,
        task(
            "Write homepage copy",
            json!("2025-02-15"),
            false,
            "2025-01-12",
            json!({ "tag_list": ["content"], "custom_fields": { "601": "612" },
                    "initial_estimate": 60 }),
        ),
        &[
            ("project", "projects", WEBSITE),
            ("task_list", "task_lists", SPRINT),
            ("assignee", "people", BO),
            ("workflow_status", "workflow_statuses", IN_PROGRESS),
        ],
    )
    .add(
        "tasks",
        LAUNCH_TASK,
        task(
            "Launch website",
            json!("2025-03-10"),
            true,
            "2025-01-15",
            json!({}),
        ),
        &[
            ("project", "projects", WEBSITE),
            ("task_list", "task_lists", SPRINT),
            ("assignee", "people", ANN),
            ("workflow_status", "workflow_statuses", DONE),
        ],
    )
    .add(
        "tasks",
        LOGIN_TASK,
        task(
            "Fix login bug",
            Value::Null,
            false,
            "2025-02-05",
            json!({ "custom_fields": { "601": "611" } }),
        ),
        &[
            ("project", "projects", INTERNAL_TOOLS),
            ("workflow_status", "workflow_statuses", TO_DO),
        ],
    );

    f.add(
        "custom_fields",
        PRIORITY_FIELD,
        json!({ "name": "Priority", "data_type_id": 3, "customizable_type": "tasks",
                "archived_at": null }),
        &[],
    )
    .add(
        "custom_fields",
        LABELS_FIELD,
        json!({ "name": "Labels", "data_type_id": 5, "customizable_type": "projects",
                "archived_at": null }),
        &[],
    );
    for (id, name, field) in [
        (HIGH, "High", PRIORITY_FIELD),
        (LOW, "Low", PRIORITY_FIELD),
        (RED, "Red", LABELS_FIELD),
        (BLUE, "Blue", LABELS_FIELD),
    ] {
        f.add(
            "custom_field_options",
            id,
            json!({ "name": name, "archived_at": null }),
            &[("custom_field", "custom_fields", field)],
        );
    }
    f.link_many(
        "custom_fields",
        PRIORITY_FIELD,
        "options",
        "custom_field_options",
        &[HIGH, LOW],
    );

    for (id, name, budget, closed, date, company) in [
        (
            RETAINER_DEAL,
            "Acme retainer",
            false,
            false,
            "2025-01-05",
            ACME,
        ),
        (
            WEBSITE_BUDGET,
            "Website budget",
            true,
            false,
            "2025-01-08",
            ACME,
        ),
        (
            PITCH_DEAL,
            "Globex pitch",
            false,
            true,
            "2024-10-01",
            GLOBEX,
        ),
        (OLD_BUDGET, "Old budget", true, true, "2024-05-01", GLOBEX),
    ] {
        f.add(
            "deals",
            id,
            json!({ "name": name, "budget": budget, "date": date, "deal_type_id": 2,
                    "closed_at": closed.then(|| at("2025-01-20", "16:00:00")),
                    "currency": "EUR", "profit_margin": "25.0",
                    "created_at": at(date, "09:00:00") }),
            &[
                ("company", "companies", company),
                ("responsible", "people", ANN),
            ],
        );
    }
    if let Some(budget) = f.store.get_mut("deals", WEBSITE_BUDGET) {
        budget.set_one("project", Some(Ref::new("projects", WEBSITE)));
    }

    for (id, name) in [(DESIGN_SERVICE, "Design"), (DEV_SERVICE, "Development")] {
        f.add(
            "services",
            id,
            json!({ "name": name, "price": 9000.0, "currency": "EUR" }),
            &[("deal", "deals", WEBSITE_BUDGET)],
        );
    }
    f.add(
        "events",
        VACATION,
        json!({ "name": "Vacation", "event_type_id": 1, "limitation_type_id": 2,
                "archived_at": null }),
        &[],
    );

    f.add(
        "bookings",
        WORK_BOOKING,
        json!({ "started_on": "2025-03-01", "ended_on": "2025-03-05", "time": 240,
                "booking_method_id": 1, "approved": true,
                "approved_at": at("2025-02-25", "09:00:00"), "rejected": false,
                "canceled": false }),
        &[
            ("person", "people", ANN),
            ("service", "services", DESIGN_SERVICE),
        ],
    )
    .add(
        "bookings",
        ABSENCE_BOOKING,
        json!({ "started_on": "2025-04-10", "ended_on": "2025-04-11", "time": 480,
                "booking_method_id": 1, "approved": false, "approved_at": null,
                "rejected": false, "canceled": false }),
        &[("person", "people", BO), ("event", "events", VACATION)],
    )
    .add(
        "approval_statuses",
        ABSENCE_APPROVAL,
        json!({ "note": null, "target_type": "event" }),
        &[
            ("booking", "bookings", ABSENCE_BOOKING),
            ("approver", "people", ANN),
        ],
    );
    f.link_many(
        "bookings",
        ABSENCE_BOOKING,
        "approval_statuses",
        "approval_statuses",
        &[ABSENCE_APPROVAL],
    );

    f.add(
        "expenses",
        TRAIN_EXPENSE,
        json!({ "name": "Train ticket", "date": "2025-03-03", "currency": "EUR",
                "amount": 1250, "quantity": "1.0", "approved": false, "rejected": false,
                "paid_on": null, "created_at": at("2025-03-03", "19:00:00") }),
        &[("deal", "deals", WEBSITE_BUDGET), ("person", "people", ANN)],
    )
    .add(
        "expenses",
        HOTEL_EXPENSE,
        json!({ "name": "Hotel", "date": "2025-03-04", "currency": "EUR",
                "amount": 18000, "quantity": "2.0", "approved": true, "rejected": false,
                "paid_on": "2025-03-20", "created_at": at("2025-03-04", "20:00:00") }),
        &[("deal", "deals", WEBSITE_BUDGET), ("person", "people", BO)],
    );

    f.add(
        "time_entries",
        ANN_ENTRY,
        json!({ "date": "2025-03-02", "time": 120, "billable_time": 120, "note": "Wireframes",
                "approved": false, "rejected": false,
                "created_at": at("2025-03-02", "18:00:00") }),
        &[
            ("person", "people", ANN),
            ("service", "services", DESIGN_SERVICE),
            ("task", "tasks", HOMEPAGE_TASK),
        ],
    )
    .add(
        "time_entries",
        BO_ENTRY,
        json!({ "date": "2025-03-04", "time": 60, "billable_time": 0, "note": "Copy draft",
                "approved": false, "rejected": false,
                "created_at": at("2025-03-04", "18:00:00") }),
        &[
            ("person", "people", BO),
            ("service", "services", DEV_SERVICE),
        ],
    );

    f.add(
        "comments",
        TASK_COMMENT,
        json!({ "body": "<p>Looks good</p>", "commentable_type": "task",
                "created_at": at("2025-01-11", "10:00:00") }),
        &[("task", "tasks", HOMEPAGE_TASK), ("creator", "people", ANN)],
    )
    .add(
        "comments",
        DEAL_COMMENT,
        json!({ "body": "<p>Renewal in March</p>", "commentable_type": "deal",
                "created_at": at("2025-01-06", "10:00:00") }),
        &[("deal", "deals", RETAINER_DEAL)],
    )
    .add(
        "comments",
        ORPHAN_COMMENT,
        json!({ "body": "<p>Nobody owns me</p>", "commentable_type": null,
                "created_at": at("2025-01-07", "10:00:00") }),
        &[],
    );

    f.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    #[test]
    fn standard_records_are_of_served_types() {
        let mut store = standard();
        let served: Vec<String> = Catalog::get()
            .served_resources()
            .iter()
            .map(|r| r.json_api_type.clone())
            .collect();
        for kind in store.kinds() {
            assert!(served.iter().any(|s| s == kind), "{kind} is not served");
        }
        assert_eq!(store.organization_id, ids::ORGANIZATION);
        assert_eq!(store.count("tasks"), 4);
        assert!(store.allocate_id() > ids::ORPHAN_COMMENT);
    }
}
