//! Checks that the demo organization is complete, well-typed and coherent.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use chrono::NaiveDate;
use serde_json::Value;

use super::*;
use crate::catalog::{Catalog, JsonType};
use crate::sim::store::Link;

/// The default demo organization, built once for all read-only tests.
static DEMO: LazyLock<Store> = LazyLock::new(|| demo_store(&DemoOptions::default()));

fn demo() -> &'static Store {
    &DEMO
}

fn same_store(a: &Store, b: &Store) -> bool {
    let kinds_a: Vec<_> = a.kinds().collect();
    let kinds_b: Vec<_> = b.kinds().collect();
    kinds_a == kinds_b
        && kinds_a
            .iter()
            .all(|k| a.all(k).eq(b.all(k)) && a.count(k) == b.count(k))
}

/// The value of an attribute; one the record does not hold is NULL.
fn attr<'a>(record: &'a Record, name: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    record.attributes.get(name).unwrap_or(&NULL)
}

fn text<'a>(record: &'a Record, name: &str) -> Option<&'a str> {
    attr(record, name).as_str()
}

fn int(record: &Record, name: &str) -> Option<i64> {
    attr(record, name).as_i64()
}

/// `YYYY-MM-DDTHH:MM:SS.mmm+0H:00` with a Central European offset, checked
/// byte by byte: chrono's parser is too slow in debug builds for the
/// hundreds of thousands of timestamps the demo holds.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 29 || !(s.ends_with("+01:00") || s.ends_with("+02:00")) {
        return false;
    }
    let digits = |range: std::ops::Range<usize>| {
        b[range.clone()].iter().all(u8::is_ascii_digit).then(|| {
            b[range]
                .iter()
                .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'))
        })
    };
    let separators = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
    ];
    separators.iter().all(|&(i, c)| b[i] == c)
        && digits(20..23).is_some()
        && matches!(
            (digits(0..4), digits(5..7), digits(8..10)),
            (Some(y), Some(m), Some(d)) if NaiveDate::from_ymd_opt(y as i32, m, d).is_some()
        )
        && digits(11..13).is_some_and(|h| h < 24)
        && digits(14..16).is_some_and(|m| m < 60)
        && digits(17..19).is_some_and(|s| s < 60)
}

/// The local (Central European) part of a timestamp; these compare in
/// time order as strings.
fn local_part(timestamp: &str) -> &str {
    &timestamp[..23]
}

fn has_json_type(value: &Value, json_type: JsonType) -> bool {
    match json_type {
        JsonType::String => value.is_string(),
        JsonType::IdString => value
            .as_str()
            .is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())),
        JsonType::DecimalString => value
            .as_str()
            .is_some_and(|s| s.contains('.') && s.parse::<f64>().is_ok()),
        JsonType::DateString => value
            .as_str()
            .is_some_and(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() && s.len() == 10),
        JsonType::TimestampString => value.as_str().is_some_and(is_timestamp),
        JsonType::TimeString => value
            .as_str()
            .is_some_and(|s| chrono::NaiveTime::parse_from_str(s, "%H:%M").is_ok()),
        JsonType::Integer => value.is_i64() || value.is_u64(),
        JsonType::Number => value.is_number(),
        JsonType::Boolean => value.is_boolean(),
        JsonType::Object => value.is_object(),
        JsonType::Array => value.is_array(),
        JsonType::StringArray => value
            .as_array()
            .is_some_and(|items| items.iter().all(Value::is_string)),
    }
}

#[test]
fn same_seed_builds_the_same_store_and_another_seed_does_not() {
    // Small organizations run the same code as the full one, faster.
    let options = DemoOptions {
        scale: 1,
        seed: 3,
        tasks: None,
    };
    let one = small_demo_store(&options, 20);
    let again = small_demo_store(&options, 20);
    assert!(same_store(&one, &again));
    let other = small_demo_store(
        &DemoOptions {
            scale: 1,
            seed: 4,
            tasks: None,
        },
        20,
    );
    assert!(!same_store(&one, &other));
}

#[test]
fn every_served_resource_has_records() {
    for resource in Catalog::get().served_resources() {
        assert!(
            demo().count(&resource.json_api_type) > 0,
            "no {} records",
            resource.json_api_type
        );
    }
    let deals = demo().all("deals");
    let (budgets, sales): (Vec<_>, Vec<_>) =
        deals.partition(|d| attr(d, "budget") == &Value::Bool(true));
    assert!(!budgets.is_empty() && !sales.is_empty());
}

#[test]
fn volumes_at_scale_one_look_like_a_mid_sized_agency() {
    let store = demo();
    let within = |kind: &str, low: usize, high: usize| {
        let n = store.count(kind);
        assert!(
            (low..=high).contains(&n),
            "{kind}: {n} not in {low}..={high}"
        );
    };
    within("people", 250, 350);
    within("companies", 120, 180);
    within("projects", 180, 220);
    within("services", 800, 1_300);
    within("task_lists", 450, 750);
    within("tasks", 4_500, 5_500);
    within("time_entries", 18_000, 22_000);
    within("bookings", 2_700, 3_300);
    within("invoices", 500, 700);
    within("line_items", 1_500, 2_600);
    within("payments", 350, 650);
    within("expenses", 700, 900);
    within("comments", 2_700, 3_300);
    within("activities", 4_500, 5_500);
    let budgets = store
        .all("deals")
        .filter(|d| attr(d, "budget") == &Value::Bool(true))
        .count();
    assert!((180..=220).contains(&budgets), "{budgets} budgets");
    assert!((270..=330).contains(&(store.count("deals") - budgets)));
}

#[test]
fn every_record_has_every_catalog_attribute_with_its_json_type() {
    let store = demo();
    let latest = local_part(DEMO_NOW);
    for resource in Catalog::get().served_resources() {
        let expected: BTreeSet<&str> = resource
            .attributes
            .iter()
            .filter(|a| a.name != "id")
            .map(|a| a.name.as_str())
            .collect();
        let mut non_null = BTreeSet::new();
        for record in store.all(&resource.json_api_type) {
            // Only attributes the catalog lists; one not held is NULL.
            for (name, _) in &record.attributes {
                assert!(
                    expected.contains(name),
                    "{} {} has {name}",
                    resource.name,
                    record.id
                );
            }
            for a in resource.attributes.iter().filter(|a| a.name != "id") {
                let value = record.attributes.get(&a.name).unwrap_or(&Value::Null);
                if value.is_null() {
                    continue;
                }
                non_null.insert(a.name.as_str());
                assert!(
                    has_json_type(value, a.json_type),
                    "{}.{} = {value} is not {:?}",
                    resource.json_api_type,
                    a.name,
                    a.json_type
                );
                if a.json_type == JsonType::TimestampString {
                    let t = local_part(value.as_str().unwrap_or_default());
                    assert!(t <= latest, "{}.{} is in the future", resource.name, a.name);
                }
            }
            let created = record.attributes.get("created_at").and_then(Value::as_str);
            let updated = record.attributes.get("updated_at").and_then(Value::as_str);
            if let (Some(c), Some(u)) = (created, updated) {
                assert!(
                    local_part(c) <= local_part(u),
                    "{} {}: updated before created",
                    resource.name,
                    record.id
                );
            }
        }
        // Names and titles are always filled in where a resource has them.
        for key in ["name", "title"] {
            if expected.contains(key) && resource.json_api_type != "activities" {
                assert!(non_null.contains(key), "{}.{key} never set", resource.name);
            }
        }
    }
}

#[test]
fn relationships_point_at_existing_records_of_the_declared_type() {
    let store = demo();
    let catalog = Catalog::get();
    for kind in store.kinds() {
        let resource = catalog.resource(kind).expect("served type");
        let has_organization = resource.relationship("organization").is_some();
        for record in store.all(kind) {
            if has_organization {
                assert_eq!(
                    record.link_id("organization"),
                    Some(DEMO_ORGANIZATION_ID),
                    "{kind} {}",
                    record.id
                );
            }
            for (name, link) in &record.relationships {
                let declared = resource
                    .relationship(name)
                    .unwrap_or_else(|| panic!("{kind} has no relationship {name}"));
                let targets: Vec<&Ref> = match link {
                    Link::One(target) => {
                        assert!(declared.is_to_one(), "{kind}.{name} is to-many");
                        target.iter().collect()
                    }
                    Link::Many(targets) => {
                        assert!(!declared.is_to_one(), "{kind}.{name} is to-one");
                        targets.iter().collect()
                    }
                };
                for target in targets {
                    if let Some(t) = &declared.target_type {
                        assert_eq!(&target.kind, t, "{kind}.{name}");
                    }
                    assert!(
                        store.get(&target.kind, target.id).is_some(),
                        "{kind} {} -> {name} {} {} does not exist",
                        record.id,
                        target.kind,
                        target.id
                    );
                }
            }
        }
    }
}

#[test]
fn tasks_follow_their_task_list_and_workflow() {
    let store = demo();
    let mut parents = 0;
    for task in store.all("tasks") {
        let list = task.link_id("task_list").expect("task list");
        let list = store.get("task_lists", list).expect("task list exists");
        let project = task.link_id("project").expect("project");
        assert_eq!(list.link_id("project"), Some(project), "task {}", task.id);

        let status = task.link_id("workflow_status").expect("status");
        let status = store
            .get("workflow_statuses", status)
            .expect("status exists");
        let workflow = store
            .get("projects", project)
            .and_then(|p| p.link_id("workflow"));
        assert_eq!(status.link_id("workflow"), workflow, "task {}", task.id);
        let closed = int(status, "category_id") == Some(3);
        assert_eq!(
            attr(task, "closed"),
            &Value::Bool(closed),
            "task {}",
            task.id
        );
        assert_eq!(
            attr(task, "closed_at").is_null(),
            !closed,
            "task {}",
            task.id
        );

        if let Some(parent) = task.link_id("parent_task") {
            parents += 1;
            let parent = store.get("tasks", parent).expect("parent exists");
            assert_eq!(parent.link_id("project"), Some(project));
            assert!(int(parent, "subtask_count").unwrap_or(0) > 0);
        }
        assert!(text(task, "number").is_some());
    }
    assert!(parents > 100, "only {parents} subtasks");
}

#[test]
fn bookings_have_a_service_or_an_event_and_consistent_amounts() {
    let store = demo();
    let (mut work, mut absence) = (0, 0);
    for booking in store.all("bookings") {
        let service = booking.link_id("service");
        let event = booking.link_id("event");
        assert!(
            service.is_some() != event.is_some(),
            "booking {}",
            booking.id
        );
        if service.is_some() {
            work += 1;
            assert_eq!(int(booking, "booking_type_id"), Some(1));
        } else {
            absence += 1;
            assert_eq!(int(booking, "booking_type_id"), Some(2));
            assert!(matches!(
                booking.relationships.get("approval_statuses"),
                Some(Link::Many(v)) if v.len() == 1
            ));
        }

        let days = attr(booking, "total_working_days").as_f64().expect("days") as i64;
        let total = int(booking, "total_time").expect("total_time");
        let time = int(booking, "time");
        let percentage = int(booking, "percentage");
        match int(booking, "booking_method_id") {
            Some(1) => {
                assert_eq!(percentage, None);
                assert_eq!(Some(total), time.map(|t| t * days));
            }
            Some(2) => {
                assert_eq!(time, None);
                assert_eq!(Some(total), percentage.map(|p| 480 * p / 100 * days));
            }
            Some(3) => assert_eq!((time, percentage), (None, None)),
            other => panic!("booking method {other:?}"),
        }
        assert_eq!(attr(booking, "hours").as_f64(), Some(total as f64 / 60.0));
        let approved = attr(booking, "approved") == &Value::Bool(true);
        assert_eq!(approved, !attr(booking, "approved_at").is_null());
    }
    assert!(work > absence && absence > 0);
    for status in store.all("approval_statuses") {
        let booking = status.link_id("booking").expect("booking");
        assert!(store.get("bookings", booking).is_some());
        assert_eq!(text(status, "target_type"), Some("event"));
    }
}

#[test]
fn comments_have_exactly_one_parent_named_by_commentable_type() {
    let store = demo();
    let parents = [
        ("task", "task"),
        ("deal", "deal"),
        ("company", "company"),
        ("person", "person"),
    ];
    let mut seen = BTreeSet::new();
    for comment in store.all("comments") {
        let set: Vec<&str> = parents
            .iter()
            .filter(|(rel, _)| comment.link_id(rel).is_some())
            .map(|(_, t)| *t)
            .collect();
        assert_eq!(set.len(), 1, "comment {}", comment.id);
        assert_eq!(text(comment, "commentable_type"), Some(set[0]));
        seen.insert(set[0]);
        if let Some(task) = comment.link_id("task") {
            let task = store.get("tasks", task).expect("task");
            assert_eq!(comment.link_id("project"), task.link_id("project"));
        }
    }
    assert_eq!(seen.len(), parents.len());
}

#[test]
fn deals_and_budgets_are_told_apart_by_the_budget_flag() {
    let store = demo();
    let mut foreign = false;
    for deal in store.all("deals") {
        let budget = attr(deal, "budget").as_bool().expect("flag");
        assert_eq!(
            deal.link_id("project").is_some(),
            budget,
            "deal {}",
            deal.id
        );
        let pipeline = deal.link_id("pipeline").expect("pipeline");
        let pipeline = store.get("pipelines", pipeline).expect("pipeline exists");
        let production = int(pipeline, "pipeline_type_id") == Some(2);
        assert_eq!(production, budget, "deal {}", deal.id);
        if !budget && int(deal, "sales_status_id") == Some(3) {
            assert!(deal.link_id("lost_reason").is_some());
        }
        // Money is in integer cents with converted variants.
        let revenue = attr(deal, "revenue");
        assert!(revenue.is_i64(), "deal {} revenue {revenue}", deal.id);
        let currency = text(deal, "currency").expect("currency");
        let rate: f64 = text(deal, "exchange_rate")
            .and_then(|r| r.parse().ok())
            .expect("exchange rate");
        if currency == DEMO_DEFAULT_CURRENCY {
            assert_eq!(rate, 1.0);
        }
        let converted = (revenue.as_f64().unwrap_or_default() * rate).round() as i64;
        assert_eq!(
            int(deal, "revenue_default"),
            Some(converted),
            "deal {}",
            deal.id
        );
        assert_eq!(int(deal, "revenue_normalized"), Some(converted));
        foreign |= currency != DEMO_DEFAULT_CURRENCY;
        assert_eq!(text(deal, "currency_default"), Some(DEMO_DEFAULT_CURRENCY));
        // Ratios keep their value in every currency.
        assert_eq!(
            attr(deal, "profit_margin_default"),
            attr(deal, "profit_margin")
        );
    }
    assert!(foreign, "some deals are in a foreign currency");
}

#[test]
fn money_follows_the_real_api_shapes() {
    let store = demo();
    for service in store.all("services") {
        let price = attr(service, "price");
        assert!(price.is_f64(), "service price {price} must be a float");
        assert!(attr(service, "budget_total_default").is_f64());
        let deal = service.link_id("deal").expect("deal");
        assert!(store.get("deals", deal).is_some());
    }
    for line in store.all("line_items") {
        let quantity = text(line, "quantity").expect("quantity");
        assert!(quantity.contains('.'), "quantity {quantity}");
    }

    // An invoice's amount is the sum of its lines.
    let mut sums: BTreeMap<u64, i64> = BTreeMap::new();
    for line in store.all("line_items") {
        let invoice = line.link_id("invoice").expect("invoice");
        *sums.entry(invoice).or_default() += int(line, "amount").expect("amount");
    }
    for invoice in store.all("invoices") {
        assert_eq!(
            sums.get(&invoice.id).copied(),
            int(invoice, "amount"),
            "invoice {}",
            invoice.id
        );
        let with_tax = int(invoice, "amount_with_tax").expect("amount");
        let paid = int(invoice, "amount_paid").expect("paid");
        if int(invoice, "invoice_type_id") == Some(1) {
            assert_eq!(int(invoice, "amount_unpaid"), Some(with_tax - paid));
        }
    }
    let mut paid: BTreeMap<u64, i64> = BTreeMap::new();
    for payment in store.all("payments") {
        let invoice = payment.link_id("invoice").expect("invoice");
        *paid.entry(invoice).or_default() += int(payment, "amount").expect("amount");
    }
    for (invoice, amount) in paid {
        let invoice = store.get("invoices", invoice).expect("invoice");
        assert_eq!(int(invoice, "amount_paid"), Some(amount));
    }
}

#[test]
fn time_entries_fall_on_working_days_inside_their_project() {
    let store = demo();
    for entry in store.all("time_entries").take(5_000) {
        let day = NaiveDate::parse_from_str(text(entry, "date").expect("date"), "%Y-%m-%d")
            .expect("date");
        assert!(is_working_day(day) && day <= today(), "entry {}", entry.id);
        let minutes = int(entry, "time").expect("time");
        assert!(minutes > 0 && minutes <= 480);
        let service = entry.link_id("service").expect("service");
        let service = store.get("services", service).expect("service");
        let budget = store
            .get("deals", service.link_id("deal").expect("deal"))
            .expect("budget");
        assert_eq!(attr(budget, "budget"), &Value::Bool(true));
        if let Some(task) = entry.link_id("task") {
            let task = store.get("tasks", task).expect("task");
            assert_eq!(task.link_id("project"), budget.link_id("project"));
        }
        let person = entry.link_id("person").expect("person");
        let person = store.get("people", person).expect("person");
        assert_eq!(person_type(person), Some(1));
    }
}

#[test]
fn people_are_employees_contacts_and_placeholders() {
    let store = demo();
    let mut types = BTreeMap::<u8, usize>::new();
    for person in store.all("people") {
        let t = person_type(person).expect("every person has a type");
        *types.entry(t).or_default() += 1;
        match t {
            1 => {
                let user = int(person, "user_id").expect("user id") as u64;
                let user = store.get("users", user).expect("user exists");
                assert_eq!(attr(user, "email"), attr(person, "email"));
                assert_eq!(int(person, "hrm_type_id"), Some(1));
            }
            2 => assert!(person.link_id("company").is_some()),
            _ => assert!(attr(person, "email").is_null()),
        }
    }
    assert!(types.len() == 3, "{types:?}");
    let deactivated = store
        .all("people")
        .filter(|p| !attr(p, "deactivated_at").is_null())
        .count();
    assert!(deactivated > 0);
}

/// The customizable_type a record's custom fields must have.
fn customizable_type(kind: &str, record: &Record) -> &'static str {
    match kind {
        "deals" if attr(record, "budget") == &Value::Bool(true) => "budgets",
        "deals" => "deals",
        "expenses" => "project_expenses",
        "bookings" => "bookings",
        "companies" => "companies",
        "invoices" => "invoices",
        "people" => "people",
        "projects" => "projects",
        "tasks" => "tasks",
        other => panic!("{other} is not customizable"),
    }
}

#[test]
fn custom_field_values_match_their_definitions() {
    let store = demo();
    let catalog = Catalog::get();
    let allowed: BTreeSet<String> = catalog
        .enum_def("customizable_type")
        .expect("enum")
        .values
        .keys()
        .cloned()
        .collect();

    // Every customizable object has a field of every data type 1-6.
    let mut types: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for field in store.all("custom_fields") {
        let object = text(field, "customizable_type").expect("type").to_string();
        assert!(allowed.contains(&object), "{object}");
        types
            .entry(object.clone())
            .or_default()
            .insert(int(field, "data_type_id").expect("data type"));
        names
            .entry(object)
            .or_default()
            .push(text(field, "name").expect("name").to_string());
    }
    assert_eq!(types.len(), 9);
    for (object, t) in &types {
        assert_eq!(t, &(1..=6).collect::<BTreeSet<_>>(), "{object}");
    }
    let tasks = &names["tasks"];
    assert!(tasks.contains(&"Priority".to_string()) && tasks.contains(&"priority!".to_string()));

    let mut with_values = BTreeSet::new();
    let mut without_values = BTreeSet::new();
    for kind in [
        "bookings",
        "companies",
        "deals",
        "expenses",
        "invoices",
        "people",
        "projects",
        "tasks",
    ] {
        for record in store.all(kind) {
            let object = customizable_type(kind, record);
            let values = attr(record, "custom_fields");
            let Some(values) = values.as_object() else {
                assert!(values.is_null(), "{kind} {}", record.id);
                without_values.insert(object);
                continue;
            };
            assert!(!values.is_empty(), "empty values are written as null");
            with_values.insert(object);
            let linked: BTreeSet<u64> = match record.relationships.get("custom_field_people") {
                Some(Link::Many(refs)) => refs.iter().map(|r| r.id).collect(),
                _ => BTreeSet::new(),
            };
            for (key, value) in values {
                let field_id: u64 = key.parse().expect("field ids are numeric strings");
                let field = store.get("custom_fields", field_id).expect("field exists");
                assert_eq!(text(field, "customizable_type"), Some(object));
                let options: BTreeSet<String> = match field.relationships.get("options") {
                    Some(Link::Many(refs)) => refs.iter().map(|r| r.id.to_string()).collect(),
                    _ => BTreeSet::new(),
                };
                match int(field, "data_type_id") {
                    Some(1) => assert!(value.is_string()),
                    Some(2) => assert!(value.is_f64(), "number value {value}"),
                    Some(3) => assert!(options.contains(value.as_str().expect("string"))),
                    Some(4) => assert!(has_json_type(value, JsonType::DateString)),
                    Some(5) => {
                        let items = value.as_array().expect("array");
                        assert!(!items.is_empty());
                        for item in items {
                            assert!(options.contains(item.as_str().expect("string")));
                        }
                    }
                    Some(6) => {
                        let person: u64 = value
                            .as_str()
                            .and_then(|s| s.parse().ok())
                            .expect("person id string");
                        assert!(store.get("people", person).is_some());
                        assert!(linked.contains(&person));
                    }
                    other => panic!("data type {other:?}"),
                }
            }
        }
    }
    assert_eq!(with_values.len(), 9, "{with_values:?}");
    assert_eq!(without_values.len(), 9, "{without_values:?}");
}

#[test]
fn activities_describe_creates_updates_and_deletes() {
    let store = demo();
    let mut events = BTreeMap::<String, usize>::new();
    for activity in store.all("activities") {
        let event = text(activity, "event").expect("event").to_string();
        let changeset = attr(activity, "changeset").as_array().expect("array");
        for change in changeset {
            let change = change.as_object().expect("one-key object");
            assert_eq!(change.len(), 1);
            let pair = change
                .values()
                .next()
                .and_then(Value::as_array)
                .expect("pair");
            assert_eq!(pair.len(), 2);
            assert!(pair.iter().all(|side| side.get("value").is_some()));
        }
        let item = int(activity, "item_id").expect("item id") as u64;
        let kind = match text(activity, "item_type") {
            Some("Task") => "tasks",
            Some("Deal") => "deals",
            Some("Project") => "projects",
            Some("Company") => "companies",
            Some("Person") => "people",
            Some("Invoice") => "invoices",
            other => panic!("item type {other:?}"),
        };
        if event == "delete" {
            assert!(store.get(kind, item).is_none());
            assert!(!attr(activity, "item_deleted_at").is_null());
        } else {
            assert!(store.get(kind, item).is_some(), "{kind} {item}");
            assert!(!changeset.is_empty());
        }
        if text(activity, "root_type") == Some("Company") {
            assert_eq!(int(activity, "company_id"), int(activity, "root_id"));
        }
        *events.entry(event).or_default() += 1;
    }
    assert_eq!(
        events.keys().map(String::as_str).collect::<Vec<_>>(),
        ["create", "delete", "update"]
    );
}

#[test]
fn scale_multiplies_transactional_volume() {
    let one = small_demo_store(
        &DemoOptions {
            scale: 1,
            seed: 42,
            tasks: None,
        },
        10,
    );
    let two = small_demo_store(
        &DemoOptions {
            scale: 2,
            seed: 42,
            tasks: None,
        },
        10,
    );
    for kind in [
        "tasks",
        "time_entries",
        "bookings",
        "comments",
        "activities",
    ] {
        let ratio = two.count(kind) as f64 / one.count(kind) as f64;
        assert!((1.8..=2.2).contains(&ratio), "{kind}: {ratio}");
    }
    // People grow more slowly than the work they do.
    let people = two.count("people") as f64 / one.count("people") as f64;
    assert!(people > 1.2 && people < 1.6, "people: {people}");
    assert_eq!(Volumes::at(0).tasks, Volumes::at(1).tasks);
    let full = Volumes::at(10);
    assert_eq!(full.tasks, 50_000);
    assert_eq!(full.time_entries, 200_000);
    assert!(full.employees < 10 * Volumes::at(1).employees / 2);
}

#[test]
fn timestamps_carry_milliseconds_and_a_central_european_offset() {
    let winter = NaiveDate::from_ymd_opt(2025, 1, 7)
        .and_then(|d| d.and_hms_milli_opt(9, 12, 44, 120))
        .expect("time");
    assert_eq!(ts(winter), Value::from("2025-01-07T09:12:44.120+01:00"));
    let summer = NaiveDate::from_ymd_opt(2025, 7, 1)
        .and_then(|d| d.and_hms_opt(8, 0, 0))
        .expect("time");
    assert_eq!(ts(summer), Value::from("2025-07-01T08:00:00.000+02:00"));
    assert_eq!(ts(now()), Value::from(DEMO_NOW));
    assert_eq!(decimal(1.0), Value::from("1.0"));
    assert_eq!(decimal(12.5), Value::from("12.5"));
    assert!(is_timestamp("2025-01-07T09:12:44.120+01:00"));
    assert!(!is_timestamp("2025-01-07T09:12:44+01:00"));
    assert!(!is_timestamp("2025-02-30T09:12:44.120+01:00"));
    assert!(!is_timestamp("2025-01-07T09:12:44.120Z"));
}

#[test]
fn work_and_money_link_to_the_same_project_and_client() {
    let store = demo();
    let deal_of_service = |service: u64| {
        let service = store.get("services", service).expect("service");
        let deal = service.link_id("deal").expect("deal");
        store.get("deals", deal).expect("deal exists")
    };
    for project in store.all("projects") {
        let budgets: Vec<_> = store
            .all("deals")
            .filter(|d| d.link_id("project") == Some(project.id))
            .collect();
        assert_eq!(budgets.len(), 1, "project {}", project.id);
        assert_eq!(budgets[0].link_id("company"), project.link_id("company"));
    }
    for task in store.all("tasks") {
        if let Some(service) = task.link_id("service") {
            let budget = deal_of_service(service);
            assert_eq!(budget.link_id("project"), task.link_id("project"));
        }
    }
    for booking in store.all("bookings") {
        if let (Some(service), Some(task)) = (booking.link_id("service"), booking.link_id("task")) {
            let task = store.get("tasks", task).expect("task");
            assert_eq!(
                deal_of_service(service).link_id("project"),
                task.link_id("project")
            );
        }
    }
    for expense in store.all("expenses") {
        let service = expense.link_id("service").expect("service");
        assert_eq!(Some(deal_of_service(service).id), expense.link_id("deal"));
    }
    for line in store.all("line_items") {
        let invoice = line.link_id("invoice").expect("invoice");
        let invoice = store.get("invoices", invoice).expect("invoice exists");
        if let Some(service) = line.link_id("service") {
            let budget = deal_of_service(service);
            assert_eq!(budget.link_id("company"), invoice.link_id("company"));
            assert_eq!(attr(line, "currency"), attr(invoice, "currency"));
        }
    }
}
