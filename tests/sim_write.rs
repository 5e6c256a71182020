//! Writes against the simulator: create, update, delete, validation,
//! lenient input, relationships in both forms, custom fields, the activity
//! feed, actions and the workflow-status delete.

mod sim_support;

use productive_pg::sim::fixture::{self, ids};
use productive_pg::sim::store::{Record, Ref};
use productive_pg::sim::{SimOptions, WriteRules};
use reqwest::Method;
use serde_json::{Value, json};
use sim_support::{Reply, Sim, id_strings, start_standard, start_with, test_options};

fn is_api_timestamp(value: &Value) -> bool {
    let Some(text) = value.as_str() else {
        return false;
    };
    // 2026-03-23T20:43:26.943+01:00
    text.len() == 29
        && chrono::DateTime::parse_from_rfc3339(text).is_ok()
        && text.as_bytes()[19] == b'.'
        && (text.as_bytes()[23] == b'+' || text.as_bytes()[23] == b'-')
}

fn pointers(reply: &Reply) -> Vec<String> {
    reply.body["errors"]
        .as_array()
        .expect("an error document")
        .iter()
        .map(|e| {
            e["source"]["pointer"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

async fn post(sim: &Sim, path: &str, data: Value) -> Reply {
    sim.write(Method::POST, path, json!({ "data": data })).await
}

async fn patch(sim: &Sim, path: &str, data: Value) -> Reply {
    sim.write(Method::PATCH, path, json!({ "data": data }))
        .await
}

#[tokio::test]
async fn post_with_linkage_creates_the_full_resource() {
    let sim = start_standard().await;
    let reply = post(
        &sim,
        "/tasks",
        json!({
            "type": "tasks",
            "attributes": { "title": "Plan sprint 2", "due_date": "2025-04-01" },
            "relationships": {
                "project": { "data": { "type": "projects", "id": "301" } },
                "task_list": { "data": { "type": "task_lists", "id": "431" } },
                "assignee": { "data": { "type": "people", "id": ids::CY.to_string() } }
            }
        }),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["meta"], json!({}));
    let data = &reply.body["data"];
    let id: u64 = data["id"].as_str().unwrap().parse().unwrap();
    assert!(id > ids::ORPHAN_COMMENT, "a fresh id");
    assert_eq!(data["type"], "tasks");
    let attributes = &data["attributes"];
    assert_eq!(attributes["title"], "Plan sprint 2");
    assert_eq!(attributes["due_date"], "2025-04-01");
    assert_eq!(attributes["closed"], false);
    assert_eq!(attributes["description"], Value::Null);
    assert!(is_api_timestamp(&attributes["created_at"]), "{attributes}");
    assert_eq!(attributes["created_at"], attributes["updated_at"]);
    assert_eq!(
        data["relationships"]["project"],
        json!({ "meta": { "included": false } })
    );

    let read = sim
        .get(&format!("/tasks/{id}?include=project,task_list,assignee"))
        .await;
    let relationships = &read.body["data"]["relationships"];
    assert_eq!(relationships["project"]["data"]["id"], "301");
    assert_eq!(relationships["task_list"]["data"]["id"], "431");
    assert_eq!(relationships["assignee"]["data"]["id"], ids::CY.to_string());
    assert_eq!(sim.list_ids("/tasks?filter[project_id]=301").await.len(), 4);
}

#[tokio::test]
async fn post_with_flat_id_attributes_sets_relationships() {
    let sim = start_standard().await;
    let reply = post(
        &sim,
        "/tasks",
        json!({ "type": "tasks", "attributes": {
            "title": "Flat", "project_id": "303", "task_list_id": 431,
            "assignee_id": ids::ANN.to_string(),
            "workflow_status_id": ids::IN_PROGRESS.to_string() } }),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.body["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        sim.list_ids(&format!(
            "/tasks?filter[assignee_id]={}&filter[project_id]=303",
            ids::ANN
        ))
        .await,
        vec![id.clone()]
    );
    let store = sim.server.store();
    let store = store.read().unwrap();
    let task = store.get("tasks", id.parse().unwrap()).unwrap();
    assert_eq!(task.link_id("task_list"), Some(431));
    assert_eq!(task.link_id("workflow_status"), Some(ids::IN_PROGRESS));
}

#[tokio::test]
async fn missing_required_fields_get_one_422_entry_each() {
    let sim = start_standard().await;
    let reply = post(&sim, "/tasks", json!({ "type": "tasks", "attributes": {} })).await;
    assert_eq!(reply.status, 422);
    assert_eq!(reply.header("cache-control"), Some("no-cache"));
    assert_eq!(
        pointers(&reply),
        vec![
            "data/attributes/title",
            "data/attributes/project",
            "data/attributes/task_list"
        ]
    );
    let first = &reply.body["errors"][0];
    assert_eq!(first["status"], "422");
    assert_eq!(first["code"], "invalid_attribute");
    assert_eq!(first["title"], "Invalid Attribute");
    assert_eq!(first["detail"], "can't be blank");
    assert_eq!(first["meta"], json!({}));

    // A blank string is blank too, and nothing was stored.
    let reply = post(
        &sim,
        "/companies",
        json!({ "type": "companies", "attributes": { "name": "  " } }),
    )
    .await;
    assert_eq!(pointers(&reply), vec!["data/attributes/name"]);
    assert_eq!(sim.list_ids("/companies").await.len(), 2);
}

#[tokio::test]
async fn unknown_and_read_only_attributes_are_ignored() {
    let sim = start_standard().await;
    let reply = post(
        &sim,
        "/companies",
        json!({ "type": "anything", "attributes": {
            "name": "Initech", "favourite_colour": "teal", "archived_at": "2025-01-01T00:00:00Z",
            "created_at": "2000-01-01T00:00:00Z" } }),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let attributes = &reply.body["data"]["attributes"];
    assert!(attributes.get("favourite_colour").is_none());
    assert_eq!(attributes["archived_at"], Value::Null);
    assert_ne!(attributes["created_at"], "2000-01-01T00:00:00.000+00:00");

    let before = sim.get(&format!("/tasks/{}", ids::LAUNCH_TASK)).await.body;
    let reply = patch(
        &sim,
        &format!("/tasks/{}", ids::LAUNCH_TASK),
        json!({ "type": "tasks", "attributes": { "closed": false, "shoe_size": 44 } }),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["data"]["attributes"]["closed"], true);
    assert_eq!(
        reply.body["data"]["attributes"]["title"],
        before["data"]["attributes"]["title"]
    );
}

#[tokio::test]
async fn values_are_stored_in_the_api_shape_or_refused() {
    let sim = start_standard().await;
    let reply = post(
        &sim,
        "/expenses",
        json!({ "type": "expenses", "attributes": {
            "name": "Taxi", "date": "2025-05-02", "currency": "EUR",
            "quantity": 2.5, "amount": "1500", "approved": "true" } }),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let attributes = &reply.body["data"]["attributes"];
    assert_eq!(attributes["quantity"], "2.5");
    assert_eq!(attributes["amount"], 1500);
    assert_eq!(attributes["approved"], true);

    let reply = post(
        &sim,
        "/expenses",
        json!({ "type": "expenses", "attributes": {
            "name": "Taxi", "date": "next tuesday", "currency": "EUR", "amount": "lots" } }),
    )
    .await;
    assert_eq!(reply.status, 422);
    assert_eq!(
        pointers(&reply),
        vec!["data/attributes/date", "data/attributes/amount"]
    );
    assert_eq!(reply.body["errors"][0]["detail"], "is not a valid date");
}

#[tokio::test]
async fn patch_updates_only_given_fields_and_bumps_updated_at() {
    let sim = start_standard().await;
    let path = format!("/tasks/{}", ids::HOMEPAGE_TASK);
    let before = sim.get(&path).await.body["data"]["attributes"].clone();
    let reply = patch(
        &sim,
        &path,
        json!({ "type": "tasks", "id": "501", "attributes": { "title": "Design landing page" } }),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let after = &reply.body["data"]["attributes"];
    assert_eq!(after["title"], "Design landing page");
    assert_eq!(after["due_date"], before["due_date"]);
    assert_eq!(after["created_at"], before["created_at"]);
    assert_ne!(after["updated_at"], before["updated_at"]);
    assert!(is_api_timestamp(&after["updated_at"]));

    let reply = patch(
        &sim,
        "/tasks/999999",
        json!({ "attributes": { "title": "x" } }),
    )
    .await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.error_code(), "record_not_found");

    // Blanking a required field is refused.
    let reply = patch(&sim, &path, json!({ "attributes": { "title": "" } })).await;
    assert_eq!(pointers(&reply), vec!["data/attributes/title"]);
}

#[tokio::test]
async fn patch_relationships_in_both_forms() {
    let sim = start_standard().await;
    let path = format!("/tasks/{}", ids::LOGIN_TASK);
    let reply = patch(
        &sim,
        &path,
        json!({ "attributes": { "assignee_id": ids::CY.to_string() } }),
    )
    .await;
    assert_eq!(reply.status, 200);
    let reply = patch(
        &sim,
        &path,
        json!({ "relationships": {
            "task_list": { "data": { "type": "task_lists", "id": "432" } } } }),
    )
    .await;
    assert_eq!(reply.status, 200);
    let read = sim.get(&format!("{path}?include=assignee,task_list")).await;
    let relationships = &read.body["data"]["relationships"];
    assert_eq!(relationships["assignee"]["data"]["id"], ids::CY.to_string());
    assert_eq!(relationships["task_list"]["data"]["id"], "432");

    let reply = patch(
        &sim,
        &path,
        json!({ "relationships": { "assignee": { "data": null } } }),
    )
    .await;
    assert_eq!(reply.status, 200);
    let read = sim.get(&format!("{path}?include=assignee")).await;
    assert_eq!(
        read.body["data"]["relationships"]["assignee"],
        json!({ "data": null })
    );
}

#[tokio::test]
async fn delete_answers_204_and_the_record_is_gone() {
    let sim = start_standard().await;
    let path = format!("/tasks/{}", ids::COPY_TASK);
    let reply = sim.send(sim.request(Method::DELETE, &path)).await;
    assert_eq!(reply.status, 204);
    assert_eq!(reply.body, Value::Null);
    assert_eq!(reply.header("cache-control"), Some("no-cache"));
    assert_eq!(sim.get(&path).await.status, 404);
    let again = sim.send(sim.request(Method::DELETE, &path)).await;
    assert_eq!(again.status, 404);
    assert_eq!(again.error_code(), "record_not_found");
}

#[tokio::test]
async fn every_write_lands_in_the_activity_feed_newest_first() {
    let sim = start_standard().await;
    let created = post(
        &sim,
        "/tasks",
        json!({ "attributes": {
            "title": "Audit me", "project_id": "301", "task_list_id": "431" } }),
    )
    .await;
    let id = created.body["data"]["id"].as_str().unwrap().to_string();
    patch(
        &sim,
        &format!("/tasks/{id}"),
        json!({ "attributes": { "title": "Audited" } }),
    )
    .await;
    sim.send(sim.request(Method::DELETE, &format!("/tasks/{id}")))
        .await;

    let feed = sim.get("/activities").await;
    assert_eq!(feed.status, 200);
    let events: Vec<&Value> = feed.body["data"].as_array().unwrap().iter().collect();
    assert_eq!(events.len(), 3);
    let attributes = |i: usize| &events[i]["attributes"];
    assert_eq!(
        (0..3)
            .map(|i| attributes(i)["event"].clone())
            .collect::<Vec<_>>(),
        vec![json!("delete"), json!("update"), json!("create")]
    );
    for i in 0..3 {
        assert_eq!(attributes(i)["item_type"], "Task");
        assert_eq!(attributes(i)["item_id"], json!(id.parse::<u64>().unwrap()));
        assert_eq!(attributes(i)["task_id"], attributes(i)["item_id"]);
        assert!(is_api_timestamp(&attributes(i)["created_at"]));
    }
    assert_eq!(attributes(0)["item_name"], "Audited");
    assert!(is_api_timestamp(&attributes(2)["item_deleted_at"]));
    assert_eq!(
        attributes(1)["changeset"],
        json!([{ "title": [{ "value": "Audit me" }, { "value": "Audited" }] }])
    );
    let created_changes = attributes(2)["changeset"].as_array().unwrap();
    assert!(created_changes.contains(&json!({ "project": [
        { "value": null },
        { "id": 301, "value": "Website relaunch" }
    ] })));

    let filtered = sim.list_ids("/activities?filter[event]=update").await;
    assert_eq!(
        filtered,
        vec![events[1]["id"].as_str().unwrap().to_string()]
    );
    let reply = sim.get("/activities?sort=created_at").await;
    assert_eq!(reply.error_code(), "sort_param_unsupported");
}

#[tokio::test]
async fn a_booking_needs_exactly_one_of_service_and_event() {
    let sim = start_standard().await;
    let base = json!({ "started_on": "2025-06-02", "ended_on": "2025-06-03",
                       "person_id": ids::ANN.to_string(), "time": 240 });
    let with = |extra: Value| {
        let mut attributes = base.clone();
        attributes
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({ "type": "bookings", "attributes": attributes })
    };
    let both = post(
        &sim,
        "/bookings",
        with(json!({ "service_id": "711", "event_id": "721" })),
    )
    .await;
    assert_eq!(both.status, 422);
    assert_eq!(pointers(&both), vec!["data/attributes/bookable"]);
    let neither = post(&sim, "/bookings", with(json!({}))).await;
    assert_eq!(pointers(&neither), vec!["data/attributes/bookable"]);
    let missing = post(
        &sim,
        "/bookings",
        json!({ "attributes": { "event_id": "721" } }),
    )
    .await;
    assert_eq!(
        pointers(&missing),
        vec![
            "data/attributes/ended_on",
            "data/attributes/started_on",
            "data/attributes/person"
        ]
    );
    let work = post(&sim, "/bookings", with(json!({ "service_id": "711" }))).await;
    assert_eq!(work.status, 201, "{}", work.body);
}

#[tokio::test]
async fn comments_need_a_body_and_one_parent() {
    let options = SimOptions {
        write_rules: WriteRules {
            comments_need_parent: true,
        },
        ..test_options()
    };
    let sim = start_with(fixture::standard(), options).await;
    let reply = post(
        &sim,
        "/comments",
        json!({ "attributes": { "body": "<p>Hi</p>" } }),
    )
    .await;
    assert_eq!(reply.status, 422);
    assert_eq!(pointers(&reply), vec!["data/attributes/commentable"]);
    let reply = post(
        &sim,
        "/comments",
        json!({ "attributes": { "task_id": "501", "deal_id": "701", "body": "x" } }),
    )
    .await;
    assert_eq!(pointers(&reply), vec!["data/attributes/commentable"]);
    let reply = post(
        &sim,
        "/comments",
        json!({ "attributes": { "task_id": "501" } }),
    )
    .await;
    assert_eq!(pointers(&reply), vec!["data/attributes/body"]);

    let reply = post(
        &sim,
        "/comments",
        json!({ "attributes": { "body": "<p>Ship it</p>" },
                "relationships": { "task": { "data": { "type": "tasks", "id": "502" } } } }),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["data"]["attributes"]["commentable_type"], "task");
    let id = reply.body["data"]["id"].as_str().unwrap().to_string();
    assert!(
        sim.list_ids("/comments?filter[task_id]=502")
            .await
            .contains(&id)
    );
}

#[tokio::test]
async fn a_parentless_comment_is_stored_but_not_listed() {
    let sim = start_standard().await;
    let reply = post(
        &sim,
        "/comments",
        json!({ "attributes": { "body": "<p>Loose</p>" } }),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.body["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(sim.get(&format!("/comments/{id}")).await.status, 200);
    assert!(!sim.list_ids("/comments").await.contains(&id));
}

#[tokio::test]
async fn custom_fields_keep_field_ids_merge_and_filter() {
    let sim = start_standard().await;
    // A second task field, so a merge has something to keep.
    {
        let store = sim.server.store();
        let mut store = store.write().unwrap();
        let mut field = Record::new(605);
        field.attributes.insert("name".into(), "Notes".into());
        field
            .attributes
            .insert("customizable_type".into(), "tasks".into());
        field.attributes.insert("data_type_id".into(), 1.into());
        store.put("custom_fields", field);
    }
    let reply = post(
        &sim,
        "/tasks",
        json!({ "attributes": {
            "title": "Fields", "project_id": "301", "task_list_id": "431",
            // 602 belongs to projects, 999 does not exist, names are ignored.
            "custom_fields": { "601": "612", "602": ["621"], "999": "x", "Priority": "High" } } }),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(
        reply.body["data"]["attributes"]["custom_fields"],
        json!({ "601": "612" })
    );
    let id = reply.body["data"]["id"].as_str().unwrap().to_string();

    let reply = patch(
        &sim,
        &format!("/tasks/{id}"),
        json!({ "attributes": { "custom_fields": { "605": "remember the milk" } } }),
    )
    .await;
    assert_eq!(
        reply.body["data"]["attributes"]["custom_fields"],
        json!({ "601": "612", "605": "remember the milk" })
    );
    assert_eq!(
        sim.list_ids("/tasks?filter[custom_fields][605][contains]=MILK")
            .await,
        vec![id.clone()]
    );
    assert_eq!(
        sim.list_ids(&format!("/tasks?filter[custom_fields][601]={}", ids::LOW))
            .await,
        vec![ids::COPY_TASK.to_string(), id]
    );
}

#[tokio::test]
async fn budgets_are_deals_with_budget_true() {
    let sim = start_standard().await;
    let reply = post(
        &sim,
        "/deals",
        json!({ "attributes": { "name": "New budget", "budget": true, "date": "2025-05-01",
                                "deal_type_id": 2, "responsible_id": ids::ANN.to_string() } }),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.body["data"]["id"].as_str().unwrap().to_string();
    assert!(sim.list_ids("/deals?filter[type]=2").await.contains(&id));
    assert!(!sim.list_ids("/deals?filter[type]=1").await.contains(&id));
    let feed = sim.get("/activities").await;
    assert_eq!(feed.body["data"][0]["attributes"]["deal_is_budget"], true);
}

#[tokio::test]
async fn moving_a_task_to_a_closed_status_closes_it() {
    let sim = start_standard().await;
    let path = format!("/tasks/{}", ids::HOMEPAGE_TASK);
    let reply = patch(
        &sim,
        &path,
        json!({ "attributes": { "workflow_status_id": ids::DONE.to_string() } }),
    )
    .await;
    assert_eq!(reply.body["data"]["attributes"]["closed"], true);
    assert!(is_api_timestamp(
        &reply.body["data"]["attributes"]["closed_at"]
    ));
    assert_eq!(
        sim.list_ids("/tasks?filter[status]=2").await,
        id_strings(&[ids::HOMEPAGE_TASK, ids::LAUNCH_TASK])
    );
    let reply = patch(
        &sim,
        &path,
        json!({ "attributes": { "workflow_status_id": ids::TO_DO.to_string() } }),
    )
    .await;
    assert_eq!(reply.body["data"]["attributes"]["closed"], false);
    assert_eq!(reply.body["data"]["attributes"]["closed_at"], Value::Null);
}

async fn action(sim: &Sim, path: &str, attributes: Value) -> Reply {
    patch(sim, path, json!({ "type": "x", "attributes": attributes })).await
}

#[tokio::test]
async fn archive_and_restore_toggle_archived_at() {
    let sim = start_standard().await;
    let path = format!("/projects/{}", ids::WEBSITE);
    let reply = action(&sim, &format!("{path}/archive"), json!({})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(is_api_timestamp(
        &reply.body["data"]["attributes"]["archived_at"]
    ));
    assert_eq!(
        sim.list_ids("/projects?filter[status]=2").await,
        id_strings(&[ids::WEBSITE, ids::MOBILE_APP])
    );
    let reply = action(&sim, &format!("{path}/restore"), json!({})).await;
    assert_eq!(reply.body["data"]["attributes"]["archived_at"], Value::Null);

    // Archive-only resources, and an empty body.
    let reply = sim
        .send(sim.request(
            Method::PATCH,
            &format!("/custom_fields/{}/archive", ids::LABELS_FIELD),
        ))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        sim.list_ids("/custom_fields?filter[archived]=true").await,
        id_strings(&[ids::LABELS_FIELD])
    );
    let reply = action(
        &sim,
        &format!("/custom_fields/{}/restore", ids::LABELS_FIELD),
        json!({}),
    )
    .await;
    assert_eq!(reply.status, 404, "restore is not listed for custom fields");
}

#[tokio::test]
async fn deals_close_and_open_people_deactivate() {
    let sim = start_standard().await;
    let path = format!("/deals/{}", ids::RETAINER_DEAL);
    let reply = action(&sim, &format!("{path}/close"), json!({})).await;
    assert!(is_api_timestamp(
        &reply.body["data"]["attributes"]["closed_at"]
    ));
    assert!(
        sim.list_ids("/deals?filter[status]=2")
            .await
            .contains(&ids::RETAINER_DEAL.to_string())
    );
    let reply = action(&sim, &format!("{path}/open"), json!({})).await;
    assert_eq!(reply.body["data"]["attributes"]["closed_at"], Value::Null);

    let reply = action(&sim, &format!("/people/{}/deactivate", ids::CY), json!({})).await;
    assert!(is_api_timestamp(
        &reply.body["data"]["attributes"]["deactivated_at"]
    ));
    assert_eq!(
        sim.list_ids("/people?filter[status]=2").await,
        id_strings(&[ids::BO, ids::CY])
    );
}

#[tokio::test]
async fn expense_and_time_entry_approvals() {
    let sim = start_standard().await;
    let expense = format!("/expenses/{}", ids::TRAIN_EXPENSE);
    let reply = action(
        &sim,
        &format!("{expense}/approve"),
        json!({ "approver_id": ids::ANN.to_string(), "note": "ok" }),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let attributes = &reply.body["data"]["attributes"];
    assert_eq!(attributes["approved"], true);
    assert!(is_api_timestamp(&attributes["approved_at"]));
    let with_approver = sim.get(&format!("{expense}?include=approver")).await;
    assert_eq!(
        with_approver.body["data"]["relationships"]["approver"]["data"]["id"],
        ids::ANN.to_string()
    );

    let reply = action(&sim, &format!("{expense}/unapprove"), json!({})).await;
    assert_eq!(reply.body["data"]["attributes"]["approved"], false);
    assert_eq!(reply.body["data"]["attributes"]["approved_at"], Value::Null);

    let reply = action(
        &sim,
        &format!("{expense}/reject"),
        json!({ "rejected_reason": "No receipt" }),
    )
    .await;
    let attributes = &reply.body["data"]["attributes"];
    assert_eq!(attributes["rejected"], true);
    assert_eq!(attributes["rejected_reason"], "No receipt");
    assert!(is_api_timestamp(&attributes["rejected_at"]));
    assert_eq!(
        sim.list_ids("/expenses?filter[approval_status]=3").await,
        id_strings(&[ids::TRAIN_EXPENSE])
    );
    let reply = action(&sim, &format!("{expense}/unreject"), json!({})).await;
    assert_eq!(reply.body["data"]["attributes"]["rejected"], false);
    assert_eq!(
        reply.body["data"]["attributes"]["rejected_reason"],
        Value::Null
    );

    let entry = format!("/time_entries/{}", ids::ANN_ENTRY);
    let reply = action(&sim, &format!("{entry}/approve"), json!({})).await;
    assert_eq!(reply.body["data"]["attributes"]["approved"], true);
    let reply = action(&sim, &format!("{entry}/unapprove"), json!({})).await;
    assert_eq!(reply.body["data"]["attributes"]["approved"], false);
}

#[tokio::test]
async fn booking_approval_goes_through_approval_statuses() {
    let sim = start_standard().await;
    let status = format!("/approval_statuses/{}", ids::ABSENCE_APPROVAL);
    let reply = action(
        &sim,
        &format!("{status}/approve"),
        json!({ "note": "Enjoy" }),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["data"]["type"], "approval_statuses");
    assert_eq!(reply.body["data"]["attributes"]["note"], "Enjoy");
    let booking = sim
        .get(&format!("/bookings/{}", ids::ABSENCE_BOOKING))
        .await
        .body;
    assert_eq!(booking["data"]["attributes"]["approved"], true);
    assert!(is_api_timestamp(
        &booking["data"]["attributes"]["approved_at"]
    ));

    let reply = action(
        &sim,
        &format!("{status}/reject"),
        json!({ "note": "Busy week" }),
    )
    .await;
    assert_eq!(reply.status, 200);
    let booking = sim
        .get(&format!("/bookings/{}", ids::ABSENCE_BOOKING))
        .await
        .body;
    let attributes = &booking["data"]["attributes"];
    assert_eq!(attributes["approved"], false);
    assert_eq!(attributes["rejected"], true);
    assert_eq!(attributes["rejected_reason"], "Busy week");

    // Bookings themselves only have unapprove.
    let work = format!("/bookings/{}", ids::WORK_BOOKING);
    let reply = action(&sim, &format!("{work}/unapprove"), json!({})).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["data"]["attributes"]["approved"], false);
    assert_eq!(reply.body["data"]["attributes"]["approved_at"], Value::Null);
    assert_eq!(
        action(&sim, &format!("{work}/approve"), json!({}))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn unknown_or_unmodelled_actions_are_404() {
    let sim = start_standard().await;
    let reply = action(&sim, "/projects/301/explode", json!({})).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.error_code(), "route_not_found");
    // Listed in the catalog, but not simulated.
    assert_eq!(
        action(&sim, "/projects/301/subscribe", json!({}))
            .await
            .status,
        404
    );
    let reply = action(&sim, "/projects/999999/archive", json!({})).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.error_code(), "record_not_found");
}

#[tokio::test]
async fn deleting_a_workflow_status_moves_its_tasks() {
    let sim = start_standard().await;
    let path = format!("/workflow_statuses/{}", ids::TO_DO);

    let reply = sim.send(sim.request(Method::DELETE, &path)).await;
    assert_eq!(reply.status, 422, "tasks still use it");
    assert_eq!(
        pointers(&reply),
        vec!["data/attributes/target_workflow_status_id"]
    );
    let reply = sim
        .write(
            Method::DELETE,
            &path,
            json!({ "data": { "type": "workflow_statuses",
                              "attributes": { "target_workflow_status_id": "999999" } } }),
        )
        .await;
    assert_eq!(reply.status, 422);

    let reply = sim
        .write(
            Method::DELETE,
            &path,
            json!({ "data": { "type": "workflow_statuses", "attributes": {
                "target_workflow_status_id": ids::IN_PROGRESS.to_string() } } }),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(sim.get(&path).await.status, 404);
    assert_eq!(
        sim.list_ids(&format!(
            "/tasks?filter[workflow_status_id]={}",
            ids::IN_PROGRESS
        ))
        .await,
        id_strings(&[ids::HOMEPAGE_TASK, ids::COPY_TASK, ids::LOGIN_TASK])
    );

    // A status without tasks goes without a body.
    let empty = format!("/workflow_statuses/{}", ids::BLOCKED);
    assert_eq!(
        sim.send(sim.request(Method::DELETE, &empty)).await.status,
        204
    );
}

#[tokio::test]
async fn writes_are_visible_in_the_shared_store() {
    let sim = start_standard().await;
    {
        let store = sim.server.store();
        let mut store = store.write().unwrap();
        let mut company = Record::new(150);
        company.attributes.insert("name".into(), "Hooli".into());
        company.set_one("parent_company", Some(Ref::new("companies", ids::ACME)));
        store.put("companies", company);
    }
    assert_eq!(
        sim.list_ids("/companies?filter[parent_company_id]=101")
            .await,
        vec!["150".to_string()]
    );
    assert_eq!(sim.get("/companies/150").await.status, 200);
}
