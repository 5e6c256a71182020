//! Custom field definitions, their options, and values on records.
//!
//! Each of the nine customizable objects gets one field of every data type
//! 1-6 (text, number, select, date, multiselect, person). Values live in a
//! record's `custom_fields` attribute keyed by the field id as a string
//! (`productive-api.md` section 12):
//!
//! - text: a string; date: `YYYY-MM-DD`;
//! - number: a JSON number, always written with a fraction (`37.5`, `8.0`);
//!   the real API's shape for numbers is unconfirmed;
//! - select: one option id string; multiselect: an array of option id
//!   strings;
//! - person: a person id string, and the person is also linked through the
//!   record's `custom_field_people` relationship.
//!
//! Records without values carry `custom_fields: null`, as the real API does.
//! Some names collide on purpose: "Client Tier" exists on three objects, and
//! tasks have both "Priority" and "priority!", which snake-case alike.

use chrono::NaiveDate;
use serde_json::{Map, Value};

use super::fill::shape;
use super::{Generator, date, history_start, id_string, now, today};

pub(super) const TEXT: u8 = 1;
pub(super) const NUMBER: u8 = 2;
pub(super) const SELECT: u8 = 3;
pub(super) const DATE: u8 = 4;
pub(super) const MULTISELECT: u8 = 5;
pub(super) const PERSON: u8 = 6;

/// (customizable_type, fields as (name, data_type_id, option names)).
type FieldTable = &'static [(
    &'static str,
    &'static [(&'static str, u8, &'static [&'static str])],
)];

const FIELDS: FieldTable = &[
    (
        "tasks",
        &[
            ("QA Notes", TEXT, &[]),
            ("Story Points", NUMBER, &[]),
            ("Priority", SELECT, &["Low", "Medium", "High", "Urgent"]),
            ("Review Date", DATE, &[]),
            (
                "Platforms",
                MULTISELECT,
                &["Web", "iOS", "Android", "Desktop"],
            ),
            ("Reviewer", PERSON, &[]),
            ("priority!", SELECT, &["P1", "P2", "P3", "P4"]),
        ],
    ),
    (
        "projects",
        &[
            ("Brief Summary", TEXT, &[]),
            ("Expected Hours", NUMBER, &[]),
            ("Client Tier", SELECT, &["Gold", "Silver", "Bronze"]),
            ("Kick-off Date", DATE, &[]),
            (
                "Channels",
                MULTISELECT,
                &["Social", "Search", "Email", "Display"],
            ),
            ("Account Lead", PERSON, &[]),
        ],
    ),
    (
        "deals",
        &[
            ("Referral Detail", TEXT, &[]),
            ("Win Confidence", NUMBER, &[]),
            ("Client Tier", SELECT, &["Gold", "Silver", "Bronze"]),
            ("Decision Date", DATE, &[]),
            (
                "Services Pitched",
                MULTISELECT,
                &["Branding", "Web", "SEO", "Content"],
            ),
            ("Sales Engineer", PERSON, &[]),
        ],
    ),
    (
        "budgets",
        &[
            ("PO Reference", TEXT, &[]),
            ("Hourly Cap", NUMBER, &[]),
            (
                "Billing Cycle",
                SELECT,
                &["Monthly", "Quarterly", "Milestone"],
            ),
            ("Renewal Date", DATE, &[]),
            (
                "Cost Centres",
                MULTISELECT,
                &["Design", "Engineering", "Marketing"],
            ),
            ("Budget Owner", PERSON, &[]),
        ],
    ),
    (
        "companies",
        &[
            ("Registry Number", TEXT, &[]),
            ("Employee Count", NUMBER, &[]),
            ("Client Tier", SELECT, &["Gold", "Silver", "Bronze"]),
            ("Contract Signed", DATE, &[]),
            (
                "Industries",
                MULTISELECT,
                &["Retail", "Finance", "Health", "Travel"],
            ),
            ("Key Account Manager", PERSON, &[]),
        ],
    ),
    (
        "people",
        &[
            ("Desk Location", TEXT, &[]),
            ("Years of Experience", NUMBER, &[]),
            ("Seniority", SELECT, &["Junior", "Medior", "Senior", "Lead"]),
            ("Birthday", DATE, &[]),
            (
                "Skills",
                MULTISELECT,
                &["Figma", "Rust", "React", "Copywriting"],
            ),
            ("Mentor", PERSON, &[]),
        ],
    ),
    (
        "invoices",
        &[
            ("Accounting Reference", TEXT, &[]),
            ("Early Payment Discount", NUMBER, &[]),
            ("Delivery Channel", SELECT, &["E-mail", "Post", "Portal"]),
            ("Reminder Sent", DATE, &[]),
            (
                "Attachments Included",
                MULTISELECT,
                &["Timesheet", "Receipts", "Report"],
            ),
            ("Accountant", PERSON, &[]),
        ],
    ),
    (
        "project_expenses",
        &[
            ("Receipt Number", TEXT, &[]),
            ("Kilometres", NUMBER, &[]),
            (
                "Expense Category",
                SELECT,
                &["Travel", "Software", "Hardware", "Meals"],
            ),
            ("Receipt Date", DATE, &[]),
            (
                "Cost Tags",
                MULTISELECT,
                &["Billable", "Internal", "Conference"],
            ),
            ("Backup Approver", PERSON, &[]),
        ],
    ),
    (
        "bookings",
        &[
            ("Booking Reason", TEXT, &[]),
            ("Confidence", NUMBER, &[]),
            ("Booking Source", SELECT, &["Planner", "Request", "Import"]),
            ("Confirmed On", DATE, &[]),
            (
                "Booking Tags",
                MULTISELECT,
                &["Tentative", "Overtime", "On site"],
            ),
            ("Requested By", PERSON, &[]),
        ],
    ),
];

const TEXT_VALUES: &[&str] = &[
    "See attached brief",
    "Needs sign-off",
    "A-17",
    "Second floor",
    "Confirmed by phone",
    "Legacy import",
];

/// One custom field definition as the value generator needs it.
#[derive(Debug, Clone)]
pub(super) struct FieldDef {
    pub(super) id: u64,
    pub(super) data_type: u8,
    pub(super) options: Vec<u64>,
}

/// The fields of one customizable object.
#[derive(Debug, Clone)]
pub(super) struct FieldSet {
    pub(super) customizable_type: &'static str,
    pub(super) fields: Vec<FieldDef>,
}

impl Generator {
    /// Field definitions and options for every customizable object.
    pub(super) fn custom_fields(&mut self) {
        let field_shape = shape("custom_fields");
        let option_shape = shape("custom_field_options");
        for (customizable_type, fields) in FIELDS {
            let mut defs = Vec::new();
            for (position, (name, data_type, option_names)) in fields.iter().enumerate() {
                let created = self.moment(
                    history_start().and_hms_opt(9, 0, 0).expect("valid time"),
                    history_start().and_hms_opt(17, 0, 0).expect("valid time"),
                );
                let mut draft = self.draft(field_shape, created);
                let field_id = draft.record.id;
                draft.set("name", *name);
                draft.set("data_type_id", *data_type);
                draft.set("customizable_type", *customizable_type);
                draft.set("global", true);
                draft.set("position", position as u64 + 1);
                draft.set("show_in_add_edit_views", true);
                if *data_type == NUMBER {
                    draft.set("aggregation_type_id", 1);
                    draft.set("formatting_type_id", 1);
                }

                // Options are their own records, linked both ways.
                let mut options = Vec::new();
                for (i, option) in option_names.iter().enumerate() {
                    let mut o = self.draft(option_shape, created);
                    o.set("name", *option);
                    o.set("position", i as u64 + 1);
                    o.set("color_id", (i % 8) as u64 + 1);
                    o.one("custom_field", "custom_fields", field_id);
                    options.push(self.put(o));
                }
                draft.many("options", "custom_field_options", &options);
                self.put(draft);
                defs.push(FieldDef {
                    id: field_id,
                    data_type: *data_type,
                    options,
                });
            }
            self.field_sets.push(FieldSet {
                customizable_type,
                fields: defs,
            });
        }

        // One retired option shows that archived options stay listed.
        let owner = self.field_sets[0].fields[2].id;
        let mut retired = self.draft(option_shape, now() - chrono::Duration::days(200));
        retired.set("name", "Someday");
        retired.set("position", 9);
        retired.set("color_id", 9);
        retired.set(
            "archived_at",
            super::ts(now() - chrono::Duration::days(100)),
        );
        retired.one("custom_field", "custom_fields", owner);
        self.put(retired);
    }

    /// Custom field values for a new record of a customizable object: the
    /// `custom_fields` attribute value and the people it references.
    ///
    /// About half of the records have no values (`null`).
    pub(super) fn custom_values(&mut self, customizable_type: &str) -> (Value, Vec<u64>) {
        let Some(set) = self
            .field_sets
            .iter()
            .position(|s| s.customizable_type == customizable_type)
        else {
            return (Value::Null, Vec::new());
        };
        if self.chance(0.45) {
            return (Value::Null, Vec::new());
        }
        let mut values = Map::new();
        let mut people = Vec::new();
        for f in 0..self.field_sets[set].fields.len() {
            if !self.chance(0.6) {
                continue;
            }
            let field = self.field_sets[set].fields[f].clone();
            let value = match field.data_type {
                TEXT => Value::from(*self.pick(TEXT_VALUES)),
                NUMBER => Value::from(self.between(0, 400) as f64 / 4.0),
                SELECT => id_string(*self.pick(&field.options)),
                DATE => {
                    let from = NaiveDate::from_ymd_opt(2024, 6, 1).expect("valid date");
                    date(self.day(from, today()))
                }
                MULTISELECT => {
                    let mut chosen = Vec::new();
                    for &option in &field.options {
                        if self.chance(0.5) {
                            chosen.push(option);
                        }
                    }
                    if chosen.is_empty() {
                        chosen.push(field.options[0]);
                    }
                    Value::Array(chosen.into_iter().map(id_string).collect())
                }
                _ => {
                    if self.employees.is_empty() {
                        continue;
                    }
                    let person = self.active_employee();
                    if !people.contains(&person) {
                        people.push(person);
                    }
                    id_string(person)
                }
            };
            values.insert(field.id.to_string(), value);
        }
        if values.is_empty() {
            (Value::Null, Vec::new())
        } else {
            (Value::Object(values), people)
        }
    }

    /// Sets `custom_fields` and `custom_field_people` on a draft.
    pub(super) fn with_custom_values(&mut self, draft: &mut super::Draft, customizable_type: &str) {
        let (values, people) = self.custom_values(customizable_type);
        draft.set("custom_fields", values);
        draft.many("custom_field_people", "people", &people);
    }
}
