//! The organization itself, its subsidiaries, people (employees, client
//! contacts, placeholders), login users and client companies, plus the
//! small reference lists (absence events, service types).

use chrono::{Duration, NaiveDate};
use serde_json::{Value, json};

use super::fill::shape;
use super::names::{
    COMPANY_PREFIXES, COMPANY_SUFFIXES, CONTACT_TITLES, EMPLOYEE_TITLES, FIRST_NAMES, LAST_NAMES,
    LEGAL_FORMS, SERVICE_NAMES, slug,
};
use super::{
    Company, DEMO_DEFAULT_CURRENCY, DEMO_EMAIL_DOMAIN, DEMO_ORGANIZATION_ID,
    DEMO_ORGANIZATION_NAME, Employee, Generator, Item, date, history_start, id_string, now, today,
    ts,
};

/// Client currencies and their fixed rate to the organization currency.
const CURRENCIES: &[(&str, f64)] = &[("EUR", 1.0), ("USD", 0.92), ("GBP", 1.17)];

impl Generator {
    /// The organization record, first so that its fixed id is taken before
    /// any allocated one.
    pub(super) fn organization(&mut self) {
        let created = NaiveDate::from_ymd_opt(2024, 9, 2)
            .and_then(|d| d.and_hms_opt(10, 14, 3))
            .expect("valid time");
        let mut draft = self.draft(shape("organizations"), created);
        draft.record.id = DEMO_ORGANIZATION_ID;
        draft.set("name", DEMO_ORGANIZATION_NAME);
        draft.set("time_zone", "Europe/Berlin");
        draft.set("week_start_day_id", 3);
        draft.set(
            "fiscal_year_start",
            date(NaiveDate::from_ymd_opt(2026, 1, 1).expect("date")),
        );
        draft.set("release_channel", "stable");
        draft.set("currency", DEMO_DEFAULT_CURRENCY);
        draft.set("working_hours", json!([480, 480, 480, 480, 480, 0, 0]));
        draft.set("man_day_minutes", 480);
        draft.set("locale", "en");
        draft.set("date_format_id", 1);
        draft.set("time_format_id", 1);
        draft.set("number_format_id", 1);
        draft.set("due_days", 30);
        draft.set("billing_email", format!("billing@{DEMO_EMAIL_DOMAIN}"));
        draft.set("allow_time_off", true);
        draft.set("time_reminders", true);
        draft.set("deal_probability", 50.0);
        draft.set("organization_type_id", 1);
        draft.set("decimal_places_id", 2);
        draft.set("currency_format_id", 1);
        draft.set("email_key", format!("org-{DEMO_ORGANIZATION_ID}-mail"));
        self.put(draft);
    }

    /// Links the organization to its owner once people exist.
    pub(super) fn finish_organization(&mut self) {
        let owner = self.employees.first().map(|e| e.id);
        let subsidiary_count = self.subsidiaries.len() as u64;
        if let Some(org) = self.store.get_mut("organizations", DEMO_ORGANIZATION_ID) {
            org.set_one(
                "owner",
                owner.map(|id| crate::sim::store::Ref::new("people", id)),
            );
            org.attributes
                .insert("subsidiary_count".into(), Value::from(subsidiary_count));
        }
    }

    pub(super) fn subsidiaries(&mut self) {
        let s = shape("subsidiaries");
        for (i, (suffix, scope)) in [("GmbH", "yearly"), ("Ltd", "yearly"), ("d.o.o.", "global")]
            .into_iter()
            .enumerate()
        {
            let created = self.moment(
                history_start().and_hms_opt(9, 0, 0).expect("valid time"),
                history_start().and_hms_opt(12, 0, 0).expect("valid time"),
            );
            let mut d = self.draft(s, created);
            d.set("name", format!("{DEMO_ORGANIZATION_NAME} {suffix}"));
            d.set(
                "invoice_number_format",
                format!("{}-{{YYYY}}-{{NNNN}}", i + 1),
            );
            d.set("invoice_number_scope", scope);
            d.set("show_delivery_date", i == 0);
            d.set("facility_costs", 250_000 * (i as i64 + 1));
            let id = self.put(d);
            self.subsidiaries.push(id);
        }
    }

    /// Absence events and service types, set up on the first day.
    pub(super) fn reference_data(&mut self) {
        let s = shape("events");
        let events = [
            ("Vacation", "time_off", 1, 2, false),
            ("Sick leave", "time_off", 1, 4, false),
            ("Parental leave", "time_off", 1, 4, false),
            ("Unpaid leave", "time_off", 2, 3, false),
            ("Remote work", "remote_work", 1, 4, false),
            ("Conference", "time_off", 1, 4, true),
        ];
        for (name, absence, event_type, limitation, archived) in events {
            let created = self.moment(
                history_start().and_hms_opt(9, 0, 0).expect("valid time"),
                history_start().and_hms_opt(17, 0, 0).expect("valid time"),
            );
            let mut d = self.draft(s, created);
            d.set("name", name);
            d.set("description", format!("{name} bookings"));
            d.set("event_type_id", event_type);
            d.set("limitation_type_id", limitation);
            d.set("absence_type", absence);
            d.set("status", if archived { "2" } else { "1" });
            d.set("color_id", (self.events.len() % 8) as u64 + 1);
            d.set("half_day_bookings", absence == "time_off");
            if archived {
                d.set("archived_at", ts(self.moment(created, now())));
            }
            let id = self.put(d);
            self.events.push((id, name.to_string(), archived));
        }

        let s = shape("service_types");
        for (i, name) in SERVICE_NAMES.iter().enumerate() {
            let created = self.moment(
                history_start().and_hms_opt(9, 0, 0).expect("valid time"),
                history_start().and_hms_opt(17, 0, 0).expect("valid time"),
            );
            let mut d = self.draft(s, created);
            d.set("name", *name);
            d.set("description", format!("{name} work"));
            if i == SERVICE_NAMES.len() - 1 {
                d.set("archived_at", ts(self.moment(created, now())));
            }
            let id = self.put(d);
            self.service_types.push((id, name.to_string()));
        }
    }

    fn person_name(&mut self) -> (String, String) {
        let first = self.pick(FIRST_NAMES).to_string();
        let last = self.pick(LAST_NAMES).to_string();
        (first, last)
    }

    /// Employees with their login users, then a few placeholders.
    pub(super) fn employees(&mut self) {
        let people = shape("people");
        let users = shape("users");
        let mut emails = std::collections::BTreeSet::new();
        for i in 0..self.volumes.employees {
            let (first, last) = self.person_name();
            let mut email = format!("{}.{}@{DEMO_EMAIL_DOMAIN}", slug(&first), slug(&last));
            let mut n = 2;
            while !emails.insert(email.clone()) {
                email = format!("{}.{}{n}@{DEMO_EMAIL_DOMAIN}", slug(&first), slug(&last));
                n += 1;
            }

            // A core team from before the history, then steady hiring.
            let joined = if i < 12 || self.chance(0.6) {
                let from = NaiveDate::from_ymd_opt(2018, 1, 8).expect("valid date");
                self.working_day(from, history_start())
            } else {
                self.working_day(history_start(), today() - Duration::days(20))
            };
            let left = if i >= 3 && self.chance(0.07) {
                let earliest = (joined + Duration::days(90)).max(history_start());
                Some(self.working_day(earliest, today() - Duration::days(5)))
                    .filter(|d| *d > joined)
            } else {
                None
            };
            let created = self.office_moment(joined.max(history_start()) - Duration::days(3));
            let created = created.min(now());

            // The login identity first, so the person can point at it.
            let mut user = self.draft(users, created);
            user.set("email", email.clone());
            user.set("first_name", first.clone());
            user.set("last_name", last.clone());
            user.set("time_zone", "Europe/Berlin");
            user.set("locale", "en");
            user.set("default_organization_id", DEMO_ORGANIZATION_ID);
            user.set(
                "default_organization_slug",
                slug(super::DEMO_ORGANIZATION_NAME),
            );
            user.set("two_factor_auth", self.chance(0.3));
            user.set("newsletter_consent", self.chance(0.2));
            user.set("preferences", "{}");
            let user_id = self.put(user);

            let mut d = self.draft(people, created);
            let person_id = d.record.id;
            d.set("first_name", first.clone());
            d.set("last_name", last.clone());
            d.set("email", email);
            d.set("title", *self.pick(EMPLOYEE_TITLES));
            d.set("role_id", *self.pick(&[1u64, 2, 3, 4]));
            d.set("is_user", true);
            d.set("user_id", user_id);
            d.set("hrm_type_id", 1);
            d.set("joined_at", ts(self.office_moment(joined)));
            d.set("invited_at", ts(created));
            d.set("time_off_status_sync", true);
            d.set("color_id", ((i % 12) + 1).to_string());
            d.set("availabilities", "[]");
            d.set("offboarding_status", "not_initiated");
            d.set("contact", json!({}));
            if let Some(left) = left {
                let at = self.office_moment(left).max(created);
                d.set("deactivated_at", ts(at));
                d.set("offboarding_status", "completed");
                d.set("last_seen_at", ts(at));
                if self.chance(0.5) {
                    d.set("archived_at", ts(self.moment(at, now())));
                }
                d.updated = d.updated.max(at);
            } else {
                d.set("last_seen_at", ts(self.moment(d.updated, now())));
            }
            let subsidiary = *self.pick(&self.subsidiaries.clone());
            d.one("subsidiary", "subsidiaries", subsidiary);
            let m = self.below(i.min(6));
            if let Some(manager) = self.employees.get(m) {
                d.one("manager", "people", manager.id);
            }
            let types: Vec<u64> = (0..2)
                .map(|_| self.pick(&self.service_types.clone()).0)
                .collect();
            d.many("service_types", "service_types", &types);
            self.with_custom_values(&mut d, "people");
            self.put(d);
            let hourly_cost = self.between(28, 75) * 100;
            self.employees.push(Employee {
                id: person_id,
                name: format!("{first} {last}"),
                joined,
                left,
                hourly_cost,
            });
        }

        // Placeholders stand for roles the agency is hiring for.
        for role in [
            "Senior Designer",
            "Backend Developer",
            "Project Manager",
            "Copywriter",
        ] {
            let created = self.historic_moment();
            let mut d = self.draft(people, created);
            d.set("first_name", format!("{role} (open role)"));
            d.set("placeholder", true);
            d.set("title", role);
            d.set("color_id", "4");
            d.set("availabilities", "[]");
            d.set("offboarding_status", "not_initiated");
            d.set("time_off_status_sync", true);
            self.put(d);
        }
    }

    fn company_name(&mut self, taken: &mut std::collections::BTreeSet<String>) -> String {
        loop {
            let name = format!(
                "{} {}",
                self.pick(COMPANY_PREFIXES),
                self.pick(COMPANY_SUFFIXES)
            );
            if taken.insert(name.clone()) {
                return name;
            }
            if taken.len() >= COMPANY_PREFIXES.len() * COMPANY_SUFFIXES.len() / 2 {
                let numbered = format!("{name} {}", taken.len());
                if taken.insert(numbered.clone()) {
                    return numbered;
                }
            }
        }
    }

    pub(super) fn companies(&mut self) {
        let s = shape("companies");
        let mut taken = std::collections::BTreeSet::new();
        for i in 0..self.volumes.companies {
            let name = self.company_name(&mut taken);
            let created = self.historic_moment();
            let (currency, rate) = if self.chance(0.7) {
                CURRENCIES[0]
            } else {
                *self.pick(&CURRENCIES[1..])
            };
            let archived = self.chance(0.1);
            let mut d = self.draft(s, created);
            let id = d.record.id;
            let legal = *self.pick(LEGAL_FORMS);
            d.set("name", name.clone());
            d.set("billing_name", format!("{name} {legal}"));
            d.set("vat", format!("XX{:09}", self.between(1, 999_999_999)));
            d.set("default_currency", currency);
            d.set("company_code", format!("C{:04}", i + 1));
            d.set("domain", format!("{}.example", slug(&name)));
            d.set("due_days", *self.pick(&[15u64, 30, 30, 45, 60]));
            d.set("payment_terms_type", 1);
            let subsidiary = self.below(self.subsidiaries.len());
            let subsidiary = self.subsidiaries[subsidiary];
            d.set("default_subsidiary_id", subsidiary);
            d.one("default_subsidiary", "subsidiaries", subsidiary);
            d.set(
                "tag_list",
                if self.chance(0.3) {
                    json!(["key-account"])
                } else {
                    json!([])
                },
            );
            d.set(
                "contact",
                json!({ "website": format!("https://{}.example", slug(&name)) }),
            );
            d.set("settings", json!({}));
            d.set("invoice_email_recipients", json!({}));
            d.set("subscriber_ids", Value::Array(Vec::new()));
            if archived {
                d.set("archived_at", ts(self.moment(d.updated, now())));
            }
            // A few clients are subsidiaries of earlier ones.
            if i > 10 && self.chance(0.06) {
                let parent = self.below(i.min(10));
                let parent = self.companies[parent].id;
                d.set("parent_company_id", id_string(parent));
                d.one("parent_company", "companies", parent);
            }
            self.with_custom_values(&mut d, "companies");
            self.put(d);
            self.companies.push(Company {
                id,
                name,
                currency,
                rate,
                archived,
                contacts: Vec::new(),
                created,
            });
        }
    }

    /// Client contacts, spread over the companies.
    pub(super) fn contacts(&mut self) {
        let s = shape("people");
        for i in 0..self.volumes.contacts {
            // Every company gets a first contact, then the rest at random.
            let c = if i < self.companies.len() {
                i
            } else {
                self.below(self.companies.len())
            };
            let (first, last) = self.person_name();
            let company = self.companies[c].clone();
            let created = self.moment(company.created, now());
            let mut d = self.draft(s, created);
            let id = d.record.id;
            d.set("first_name", first.clone());
            d.set("last_name", last.clone());
            d.set(
                "email",
                format!(
                    "{}.{}{}@{}.example",
                    slug(&first),
                    slug(&last),
                    i,
                    slug(&company.name)
                ),
            );
            d.set("title", *self.pick(CONTACT_TITLES));
            d.set("hrm_type_id", 2);
            d.set("color_id", ((i % 12) + 1).to_string());
            d.set("availabilities", "[]");
            d.set("offboarding_status", "not_initiated");
            d.set("time_off_status_sync", true);
            d.set(
                "contact",
                json!({ "phone": format!("+00 1 555 {:04}", i % 10_000) }),
            );
            d.one("company", "companies", company.id);
            if company.archived && self.chance(0.5) {
                d.set("archived_at", ts(self.moment(d.updated, now())));
            }
            self.with_custom_values(&mut d, "people");
            self.put(d);
            self.companies[c].contacts.push(id);
            self.contacts.push(Item {
                id,
                name: format!("{first} {last}"),
                created,
                company: Some(c),
            });
        }
    }
}
