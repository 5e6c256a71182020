//! Reads against the simulator: document shapes, includes, pagination,
//! filters, sorting, errors and auth, as the Productive API behaves.

mod sim_support;

use productive_pg::catalog::Catalog;
use productive_pg::sim::fixture::ids;
use reqwest::Method;
use serde_json::{Value, json};
use sim_support::{MEDIA_TYPE, Sim, TOKEN, id_strings, start_standard};

#[tokio::test]
async fn single_record_has_the_recorded_shape() {
    let sim = start_standard().await;
    let reply = sim.get(&format!("/projects/{}", ids::WEBSITE)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("application/vnd.api+json; charset=utf-8")
    );
    assert_eq!(
        reply.header("cache-control"),
        Some("max-age=0, private, must-revalidate")
    );
    assert_eq!(reply.header("x-request-id").map(str::len), Some(36));

    let body = &reply.body;
    assert_eq!(body["meta"], json!({}));
    assert!(body.get("links").is_none() && body.get("included").is_none());
    let data = &body["data"];
    assert_eq!(data["id"], json!(ids::WEBSITE.to_string()));
    assert_eq!(data["type"], "projects");

    // Every catalog attribute but id, in catalog order, nulls included.
    let resource = Catalog::get().resource("projects").unwrap();
    let expected: Vec<&str> = resource
        .attributes
        .iter()
        .map(|a| a.name.as_str())
        .filter(|n| *n != "id")
        .collect();
    let attributes = data["attributes"].as_object().unwrap();
    assert_eq!(
        attributes.keys().map(String::as_str).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(attributes["name"], "Website relaunch");
    assert_eq!(
        attributes["custom_fields"],
        json!({ "602": ["621", "622"] })
    );

    // One relationship entry per catalog relationship; only the
    // organization carries linkage without include.
    let relationships = data["relationships"].as_object().unwrap();
    assert_eq!(relationships.len(), resource.relationships.len());
    assert_eq!(
        relationships["organization"],
        json!({ "data": { "type": "organizations", "id": ids::ORGANIZATION.to_string() } })
    );
    assert_eq!(
        relationships["company"],
        json!({ "meta": { "included": false } })
    );
    assert_eq!(
        relationships["project_manager"],
        json!({ "meta": { "included": false } })
    );
}

#[tokio::test]
async fn include_links_relationships_and_adds_deduplicated_records() {
    let sim = start_standard().await;
    let reply = sim
        .get("/tasks?include=project,assignee&filter[project_id]=301&sort=title")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let data = reply.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(
        data[0]["relationships"]["project"],
        json!({ "data": { "type": "projects", "id": "301" } })
    );
    assert_eq!(
        data[0]["relationships"]["task_list"],
        json!({ "meta": { "included": false } })
    );

    // Three tasks of one project, assigned to two people: three records.
    let included = reply.body["included"].as_array().unwrap();
    let keys: Vec<(String, String)> = included
        .iter()
        .map(|r| {
            (
                r["type"].as_str().unwrap().into(),
                r["id"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        vec![
            ("projects".into(), "301".into()),
            ("people".into(), ids::ANN.to_string()),
            ("people".into(), ids::BO.to_string()),
        ]
    );
    // Included records show their own relationships as not included.
    let project = &included[0];
    assert_eq!(project["attributes"]["name"], "Website relaunch");
    assert_eq!(
        project["relationships"]["company"],
        json!({ "meta": { "included": false } })
    );
    assert_eq!(
        project["relationships"]["organization"]["data"]["id"],
        ids::ORGANIZATION.to_string()
    );
}

#[tokio::test]
async fn include_shows_null_and_to_many_linkage() {
    let sim = start_standard().await;
    let reply = sim
        .get(&format!(
            "/projects/{}?include=company",
            ids::INTERNAL_TOOLS
        ))
        .await;
    assert_eq!(
        reply.body["data"]["relationships"]["company"],
        json!({ "data": null })
    );
    assert_eq!(reply.body["included"], json!([]));

    let reply = sim
        .get(&format!(
            "/custom_fields/{}?include=options",
            ids::PRIORITY_FIELD
        ))
        .await;
    assert_eq!(
        reply.body["data"]["relationships"]["options"],
        json!({ "data": [
            { "type": "custom_field_options", "id": ids::HIGH.to_string() },
            { "type": "custom_field_options", "id": ids::LOW.to_string() },
        ] })
    );
    assert_eq!(reply.body["included"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn pagination_meta_and_links_follow_the_api() {
    let sim = start_standard().await;
    let base = sim.url("/tasks");

    let first = sim.get("/tasks?page[number]=1&page[size]=3").await;
    assert_eq!(
        first.body["meta"],
        json!({ "current_page": 1, "total_pages": 2, "total_count": 4,
                "page_size": 3, "max_page_size": 200 })
    );
    assert_eq!(first.ids(), id_strings(&[501, 502, 503]));
    let page = |n: u64| format!("{base}?page%5Bnumber%5D={n}&page%5Bsize%5D=3");
    assert_eq!(
        first.body["links"],
        json!({ "first": page(1), "last": page(2), "next": page(2) })
    );

    let second = sim.get("/tasks?page[number]=2&page[size]=3").await;
    assert_eq!(second.ids(), id_strings(&[504]));
    assert_eq!(
        second.body["links"],
        json!({ "first": page(1), "last": page(2), "prev": page(1) })
    );

    let past_end = sim.get("/tasks?page[number]=9&page[size]=3").await;
    assert_eq!(past_end.status, 200);
    assert_eq!(past_end.body["data"], json!([]));
    assert_eq!(past_end.body["meta"]["current_page"], 9);
}

#[tokio::test]
async fn plain_listings_page_like_sorted_ones() {
    let sim = start_standard().await;
    for kind in ["tasks", "expenses"] {
        let mut plain = Vec::new();
        let mut by_id = Vec::new();
        let mut by_id_desc = Vec::new();
        for n in 1..=4 {
            let page = format!("page[number]={n}&page[size]=2");
            let a = sim.get(&format!("/{kind}?{page}")).await;
            let b = sim.get(&format!("/{kind}?sort=id&{page}")).await;
            let c = sim.get(&format!("/{kind}?sort=-id&{page}")).await;
            assert_eq!(a.body["meta"], b.body["meta"], "{kind} page {n}");
            assert_eq!(a.body["meta"], c.body["meta"], "{kind} page {n}");
            plain.extend(a.ids());
            by_id.extend(b.ids());
            by_id_desc.extend(c.ids());
        }
        assert!(!plain.is_empty(), "{kind}");
        assert_eq!(plain, by_id, "{kind}");
        let total = sim.get(&format!("/{kind}?page[size]=200")).await;
        let mut all = total.ids();
        all.truncate(plain.len());
        assert_eq!(plain, all, "{kind}: pages of 2 and one page of 200 agree");
        let mut every = sim
            .get(&format!("/{kind}?sort=-id&page[size]=200"))
            .await
            .ids();
        every.truncate(by_id_desc.len());
        assert_eq!(by_id_desc, every, "{kind}");
    }
}

#[tokio::test]
async fn page_size_defaults_to_30_and_is_clamped_to_200() {
    let sim = start_standard().await;
    let reply = sim.get("/tasks").await;
    assert_eq!(reply.body["meta"]["page_size"], 30);
    assert_eq!(reply.body["meta"]["current_page"], 1);
    let reply = sim.get("/tasks?page[size]=1000").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["meta"]["page_size"], 200);
    assert!(
        reply.body["links"]["first"]
            .as_str()
            .unwrap()
            .ends_with("page%5Bsize%5D=200")
    );
}

#[tokio::test]
async fn links_keep_the_query_percent_encoded_in_key_order() {
    let sim = start_standard().await;
    let reply = sim
        .get(
            "/projects?sort=name&filter[$op]=or&filter[0][status][eq][]=1\
             &include=company&page[size]=1",
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let expected = format!(
        "{}?filter%5B%24op%5D=or&filter%5B0%5D%5Bstatus%5D%5Beq%5D%5B%5D=1\
         &include=company&page%5Bnumber%5D=2&page%5Bsize%5D=1&sort=name",
        sim.url("/projects")
    );
    assert_eq!(reply.body["links"]["next"], json!(expected));
}

#[tokio::test]
async fn archived_rows_are_listed_unless_status_says_otherwise() {
    let sim = start_standard().await;
    assert_eq!(
        sim.list_ids("/projects").await,
        id_strings(&[ids::WEBSITE, ids::MOBILE_APP, ids::INTERNAL_TOOLS])
    );
    assert_eq!(
        sim.list_ids("/projects?filter[status]=1").await,
        id_strings(&[ids::WEBSITE, ids::INTERNAL_TOOLS])
    );
    assert_eq!(
        sim.list_ids("/projects?filter[status]=2").await,
        id_strings(&[ids::MOBILE_APP])
    );
    assert_eq!(
        sim.list_ids("/task_lists?filter[status]=2").await,
        id_strings(&[ids::BACKLOG])
    );
    assert_eq!(
        sim.list_ids("/companies?filter[status]=2").await,
        id_strings(&[ids::GLOBEX])
    );
    assert_eq!(
        sim.list_ids("/custom_fields?filter[archived]=false").await,
        id_strings(&[ids::PRIORITY_FIELD, ids::LABELS_FIELD])
    );
}

#[tokio::test]
async fn status_means_what_each_resource_says() {
    let sim = start_standard().await;
    // Tasks: 1 open, 2 closed.
    assert_eq!(
        sim.list_ids("/tasks?filter[status]=2").await,
        id_strings(&[ids::LAUNCH_TASK])
    );
    // People: 1 active, 2 deactivated.
    assert_eq!(
        sim.list_ids("/people?filter[status]=2").await,
        id_strings(&[ids::BO])
    );
    // Deals: budget status, 1 open (no closed_at), 2 closed.
    assert_eq!(
        sim.list_ids("/deals?filter[status]=2").await,
        id_strings(&[ids::PITCH_DEAL, ids::OLD_BUDGET])
    );
    // Expenses: 1 paid, 2 unpaid.
    assert_eq!(
        sim.list_ids("/expenses?filter[status]=1").await,
        id_strings(&[ids::HOTEL_EXPENSE])
    );
    // Bookings: approval status 1 approved, 2 pending.
    assert_eq!(
        sim.list_ids("/bookings?filter[approval_status]=2").await,
        id_strings(&[ids::ABSENCE_BOOKING])
    );
}

#[tokio::test]
async fn deals_and_budgets_share_an_endpoint_split_by_type() {
    let sim = start_standard().await;
    assert_eq!(sim.list_ids("/deals").await.len(), 4);
    assert_eq!(
        sim.list_ids("/deals?filter[type]=1").await,
        id_strings(&[ids::RETAINER_DEAL, ids::PITCH_DEAL])
    );
    assert_eq!(
        sim.list_ids("/deals?filter[type]=2").await,
        id_strings(&[ids::WEBSITE_BUDGET, ids::OLD_BUDGET])
    );
    assert_eq!(
        sim.list_ids("/deals?filter[type]=2&filter[status]=1").await,
        id_strings(&[ids::WEBSITE_BUDGET])
    );
}

#[tokio::test]
async fn equality_lists_and_array_brackets_select_any_of() {
    let sim = start_standard().await;
    let website = id_strings(&[501, 502, 503]);
    assert_eq!(sim.list_ids("/tasks?filter[project_id]=301").await, website);
    assert_eq!(
        sim.list_ids("/tasks?filter[project_id][eq]=301").await,
        website
    );
    assert_eq!(
        sim.list_ids("/tasks?filter[project_id]=301,303").await,
        id_strings(&[501, 502, 503, 504])
    );
    assert_eq!(
        sim.list_ids("/tasks?filter[assignee_id][eq][]=201&filter[assignee_id][eq][]=202")
            .await,
        website
    );
    assert_eq!(
        sim.list_ids("/tasks?filter[project_id][not_eq]=301").await,
        id_strings(&[504])
    );
    // `<relationship>_id` works where the catalog names no filter_name:
    // the documented way to find a booking's approval status.
    assert_eq!(
        sim.list_ids(&format!(
            "/approval_statuses?filter[booking_id]={}",
            ids::ABSENCE_BOOKING
        ))
        .await,
        id_strings(&[ids::ABSENCE_APPROVAL])
    );
    assert_eq!(
        sim.list_ids(&format!(
            "/approval_statuses?filter[booking_id]={}",
            ids::WORK_BOOKING
        ))
        .await,
        Vec::<String>::new()
    );
    assert_eq!(
        sim.list_ids("/tasks?filter[id]=502,504").await,
        id_strings(&[502, 504])
    );
}

#[tokio::test]
async fn text_operators_match_case_insensitively() {
    let sim = start_standard().await;
    assert_eq!(
        sim.list_ids("/tasks?filter[title]=HOMEPAGE").await,
        id_strings(&[501, 502])
    );
    assert_eq!(
        sim.list_ids("/tasks?filter[title][contains]=homepage")
            .await,
        id_strings(&[501, 502])
    );
    assert_eq!(
        sim.list_ids("/tasks?filter[title][not_contain]=homepage")
            .await,
        id_strings(&[503, 504])
    );
    assert_eq!(
        sim.list_ids("/tasks?filter[title][eq]=Launch website")
            .await,
        id_strings(&[503])
    );
    assert_eq!(
        sim.list_ids("/projects?filter[query]=APP").await,
        id_strings(&[ids::MOBILE_APP])
    );
    assert_eq!(
        sim.list_ids("/tasks?filter[full_query]=login").await,
        id_strings(&[ids::LOGIN_TASK])
    );
}

#[tokio::test]
async fn ordering_operators_compare_numbers_and_dates() {
    let sim = start_standard().await;
    assert_eq!(
        sim.list_ids("/tasks?filter[initial_estimate][gt]=60").await,
        id_strings(&[501])
    );
    assert_eq!(
        sim.list_ids("/tasks?filter[initial_estimate][gt_eq]=60")
            .await,
        id_strings(&[501, 502])
    );
    assert_eq!(
        sim.list_ids("/tasks?filter[initial_estimate][lt]=240")
            .await,
        id_strings(&[502])
    );
    assert_eq!(
        sim.list_ids("/tasks?filter[due_date][lt_eq]=2025-02-15")
            .await,
        id_strings(&[501, 502])
    );
    assert_eq!(
        sim.list_ids("/tasks?filter[due_date]=2025-03-10").await,
        id_strings(&[503])
    );
    // A date against a timestamp compares the calendar date.
    assert_eq!(
        sim.list_ids("/tasks?filter[created_at][gt]=2025-01-12")
            .await,
        id_strings(&[503, 504])
    );
}

#[tokio::test]
async fn date_bounds_are_inclusive() {
    let sim = start_standard().await;
    assert_eq!(
        sim.list_ids("/tasks?filter[due_date_after]=2025-02-15")
            .await,
        id_strings(&[502, 503])
    );
    assert_eq!(
        sim.list_ids("/tasks?filter[due_date_before]=2025-02-01")
            .await,
        id_strings(&[501])
    );
    assert_eq!(
        sim.list_ids("/time_entries?filter[after]=2025-03-04").await,
        id_strings(&[ids::BO_ENTRY])
    );
    assert_eq!(
        sim.list_ids("/time_entries?filter[before]=2025-03-04")
            .await,
        id_strings(&[ids::ANN_ENTRY, ids::BO_ENTRY])
    );
    // Bookings match when their span overlaps the bound.
    assert_eq!(
        sim.list_ids("/bookings?filter[after]=2025-03-05&filter[before]=2025-04-01")
            .await,
        id_strings(&[ids::WORK_BOOKING])
    );
}

#[tokio::test]
async fn logical_groups_combine_and_nest() {
    let sim = start_standard().await;
    assert_eq!(
        sim.list_ids("/projects?filter[$op]=and&filter[0][status][eq][]=1")
            .await,
        id_strings(&[ids::WEBSITE, ids::INTERNAL_TOOLS])
    );
    // As recorded: status 1 or (status 2) returns every project.
    assert_eq!(
        sim.list_ids(
            "/projects?filter[$op]=or&filter[0][status][eq][]=1\
             &filter[1][$op]=and&filter[1][0][status][eq][]=2"
        )
        .await
        .len(),
        3
    );
    assert_eq!(
        sim.list_ids(
            "/tasks?filter[$op]=or&filter[0][status]=2\
             &filter[1][$op]=and&filter[1][0][project_id]=303&filter[1][1][title][contains]=bug"
        )
        .await,
        id_strings(&[ids::LAUNCH_TASK, ids::LOGIN_TASK])
    );
    assert_eq!(
        sim.list_ids("/tasks?filter[$op]=and&filter[0][project_id]=301&filter[1][assignee_id]=201")
            .await,
        id_strings(&[501, 503])
    );
}

#[tokio::test]
async fn custom_field_filters_match_options_and_multiselects() {
    let sim = start_standard().await;
    assert_eq!(
        sim.list_ids(&format!("/tasks?filter[custom_fields][601]={}", ids::HIGH))
            .await,
        id_strings(&[ids::HOMEPAGE_TASK, ids::LOGIN_TASK])
    );
    assert_eq!(
        sim.list_ids(&format!(
            "/projects?filter[custom_fields][602]={}",
            ids::RED
        ))
        .await,
        id_strings(&[ids::WEBSITE])
    );
    assert_eq!(
        sim.list_ids(&format!(
            "/projects?filter[custom_fields][602]={}",
            ids::BLUE
        ))
        .await,
        id_strings(&[ids::WEBSITE, ids::INTERNAL_TOOLS])
    );
}

#[tokio::test]
async fn catalog_filters_without_a_meaning_are_accepted_and_ignored() {
    let sim = start_standard().await;
    assert_eq!(
        sim.list_ids("/tasks?filter[fuzzy_dates]=whatever")
            .await
            .len(),
        4
    );
}

#[tokio::test]
async fn unknown_query_names_get_the_api_400_codes() {
    let sim = start_standard().await;
    let reply = sim.get("/tasks?filter[colour]=red").await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.body,
        json!({ "errors": [{ "status": "400", "code": "unsupported_filter",
            "title": "Unsupported Filter",
            "detail": "Filter 'colour' is not supported on this endpoint",
            "meta": {}, "source": {} }] })
    );
    assert_eq!(
        reply.header("content-type"),
        Some("application/vnd.api+json; charset=utf-8")
    );
    assert_eq!(reply.header("cache-control"), Some("no-cache"));

    // Unknown names inside groups are refused too.
    let reply = sim.get("/tasks?filter[$op]=or&filter[0][colour]=red").await;
    assert_eq!(reply.error_code(), "unsupported_filter");

    for op in ["gte", "like", "in", "blank"] {
        let reply = sim.get(&format!("/tasks?filter[title][{op}]=x")).await;
        assert_eq!(reply.status, 400);
        assert_eq!(reply.error_code(), "unsupported_filter_operation", "{op}");
    }

    let reply = sim.get("/tasks?sort=-colour").await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.error_code(), "sort_param_unsupported");
    assert_eq!(reply.body["errors"][0]["title"], "Unsupported Sort");
    assert_eq!(
        reply.body["errors"][0]["detail"],
        "Sort by 'colour' is not supported on this endpoint"
    );

    let reply = sim.get("/tasks?include=owner").await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.error_code(), "unsupported_include");
    let reply = sim.get("/tasks/501?include=project.company").await;
    assert_eq!(reply.error_code(), "unsupported_include");
}

#[tokio::test]
async fn sorting_uses_catalog_keys_related_names_and_stable_ties() {
    let sim = start_standard().await;
    assert_eq!(
        sim.list_ids("/tasks?sort=title").await,
        id_strings(&[501, 504, 503, 502])
    );
    assert_eq!(
        sim.list_ids("/tasks?sort=-title").await,
        id_strings(&[502, 503, 504, 501])
    );
    // Related name: Internal tools before Website relaunch; ties by title.
    assert_eq!(
        sim.list_ids("/tasks?sort=project_name,title").await,
        id_strings(&[504, 501, 503, 502])
    );
    // Nulls last ascending, first descending.
    assert_eq!(
        sim.list_ids("/tasks?sort=due_date").await,
        id_strings(&[501, 502, 503, 504])
    );
    assert_eq!(
        sim.list_ids("/tasks?sort=-due_date").await,
        id_strings(&[504, 503, 502, 501])
    );
    // Equal keys keep id order.
    assert_eq!(
        sim.list_ids("/people?sort=role_id").await,
        id_strings(&[ids::ANN, ids::BO, ids::CY])
    );
}

#[tokio::test]
async fn comments_without_a_parent_are_readable_but_not_listed() {
    let sim = start_standard().await;
    assert_eq!(
        sim.list_ids("/comments").await,
        id_strings(&[ids::TASK_COMMENT, ids::DEAL_COMMENT])
    );
    let reply = sim.get(&format!("/comments/{}", ids::ORPHAN_COMMENT)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body["data"]["attributes"]["body"],
        "<p>Nobody owns me</p>"
    );
}

#[tokio::test]
async fn unknown_records_and_paths_are_404() {
    let sim = start_standard().await;
    let reply = sim.get("/projects/999999999").await;
    assert_eq!(reply.status, 404);
    assert_eq!(
        reply.body,
        json!({ "errors": [{ "status": "404", "code": "record_not_found",
            "title": "Record Not Found", "detail": "The requested record was not found",
            "meta": {}, "source": {} }] })
    );
    assert_eq!(sim.get("/projects/abc").await.status, 404);
    let reply = sim.get("/widgets").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.error_code(), "route_not_found");
    let reply = sim.get("/projects/301/preview").await;
    assert_eq!(reply.status, 404);
}

#[tokio::test]
async fn methods_outside_the_write_contract_are_405() {
    let sim = start_standard().await;
    let reply = sim
        .write(Method::POST, "/activities", json!({ "data": {} }))
        .await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.error_code(), "method_not_allowed");
    let reply = sim
        .send(sim.request(Method::DELETE, "/companies/101"))
        .await;
    assert_eq!(reply.status, 405);
    let reply = sim
        .write(Method::PATCH, "/tasks", json!({ "data": [] }))
        .await;
    assert_eq!(reply.status, 405);
}

async fn status_with_headers(sim: &Sim, headers: &[(&str, &str)]) -> (u16, String) {
    let mut builder = sim.client.get(sim.url("/projects"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let reply = sim.send(builder).await;
    (reply.status, reply.error_code().to_string())
}

#[tokio::test]
async fn auth_is_checked_token_then_organization_then_content_type() {
    let sim = start_standard().await;
    let org = ids::ORGANIZATION.to_string();
    let good = [
        ("X-Auth-Token", TOKEN),
        ("X-Organization-Id", org.as_str()),
        ("Content-Type", MEDIA_TYPE),
    ];
    assert_eq!(status_with_headers(&sim, &good).await.0, 200);

    // Headers sent, expected status and code.
    type Case<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (vec![good[1], good[2]], 401, "invalid_auth_token"),
        (
            vec![("X-Auth-Token", "wrong"), ("X-Organization-Id", "1")],
            401,
            "invalid_auth_token",
        ),
        (vec![good[0], good[2]], 403, "no_organization_id"),
        (
            vec![
                good[0],
                ("X-Organization-Id", "8"),
                ("Content-Type", "text/plain"),
            ],
            403,
            "no_organization_id",
        ),
        (vec![good[0], good[1]], 415, "unsupported_media_type"),
        (
            vec![good[0], good[1], ("Content-Type", "application/json")],
            415,
            "unsupported_media_type",
        ),
    ];
    for (headers, status, code) in cases {
        assert_eq!(
            status_with_headers(&sim, &headers).await,
            (status, code.to_string()),
            "{headers:?}"
        );
    }

    for media in [
        "application/vnd.api+json; charset=utf-8",
        "application/vnd.api+json; ext=bulk",
    ] {
        let headers = [good[0], good[1], ("Content-Type", media)];
        assert_eq!(status_with_headers(&sim, &headers).await.0, 200, "{media}");
    }
}

#[tokio::test]
async fn every_served_endpoint_lists() {
    let sim = start_standard().await;
    for resource in Catalog::get().served_resources() {
        let reply = sim.get(&resource.endpoint).await;
        assert_eq!(reply.status, 200, "{}: {}", resource.endpoint, reply.body);
        assert!(reply.body["data"].is_array());
        assert!(reply.body["meta"]["total_count"].is_u64());
    }
    let reply: Value = sim.get("/organizations").await.body;
    assert_eq!(reply["data"][0]["attributes"]["name"], "Simulated Agency");
}

#[tokio::test]
async fn a_missing_feature_hides_its_whole_endpoint() {
    let options = sim_support::SimOptions {
        disabled_endpoints: vec!["boards".to_string()],
        ..sim_support::test_options()
    };
    let sim = sim_support::start_with(productive_pg::sim::fixture::standard(), options).await;
    let reply = sim.get("/boards").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.error_code(), "route_not_found");
    assert_eq!(sim.get("/boards/1").await.status, 404);
    assert_eq!(sim.get("/folders").await.status, 200);
}

#[tokio::test]
async fn join_filters_follow_relationships_like_the_api() {
    let sim = start_standard().await;
    let list = |path: String| {
        let sim = &sim;
        async move { sim.list_ids(&path).await }
    };
    let entries = id_strings(&[ids::ANN_ENTRY, ids::BO_ENTRY]);
    // Time entries reach their project, budget and company through the
    // service's budget.
    for (filter, value) in [
        ("project_id", ids::WEBSITE),
        ("budget_id", ids::WEBSITE_BUDGET),
        ("deal_id", ids::WEBSITE_BUDGET),
        ("company_id", ids::ACME),
    ] {
        assert_eq!(
            list(format!("/time_entries?filter[{filter}]={value}")).await,
            entries,
            "{filter}"
        );
    }
    for (filter, value) in [
        ("project_id", ids::INTERNAL_TOOLS),
        ("budget_id", ids::OLD_BUDGET),
        ("company_id", ids::GLOBEX),
    ] {
        assert_eq!(
            list(format!("/time_entries?filter[{filter}]={value}")).await,
            Vec::<String>::new(),
            "{filter}"
        );
    }

    // Only the work booking has a service; the absence matches no project.
    let work = id_strings(&[ids::WORK_BOOKING]);
    let path = |q: &str| format!("/bookings?{q}");
    assert_eq!(
        list(path(&format!("filter[project_id]={}", ids::WEBSITE))).await,
        work
    );
    assert_eq!(
        list(path(&format!("filter[budget_id]={}", ids::WEBSITE_BUDGET))).await,
        work
    );
    assert_eq!(
        list(path(&format!("filter[company_id]={}", ids::ACME))).await,
        work
    );
    assert_eq!(
        list(path(&format!(
            "filter[project_id][not_eq]={}",
            ids::WEBSITE
        )))
        .await,
        id_strings(&[ids::ABSENCE_BOOKING])
    );

    // Expenses through their budget; services through their deal.
    let expenses = id_strings(&[ids::TRAIN_EXPENSE, ids::HOTEL_EXPENSE]);
    assert_eq!(
        list(format!("/expenses?filter[project_id]={}", ids::WEBSITE)).await,
        expenses
    );
    assert_eq!(
        list(format!("/expenses?filter[company_id]={}", ids::ACME)).await,
        expenses
    );
    assert_eq!(
        list(format!("/expenses?filter[project_id]={}", ids::MOBILE_APP)).await,
        Vec::<String>::new()
    );
    let services = id_strings(&[ids::DESIGN_SERVICE, ids::DEV_SERVICE]);
    assert_eq!(
        list(format!("/services?filter[project_id]={}", ids::WEBSITE)).await,
        services
    );
    assert_eq!(
        list(format!(
            "/services?filter[budget_id]={}",
            ids::WEBSITE_BUDGET
        ))
        .await,
        services
    );

    // Comments through their task; the deal comment's deal has no project.
    assert_eq!(
        list(format!("/comments?filter[project_id]={}", ids::WEBSITE)).await,
        id_strings(&[ids::TASK_COMMENT])
    );

    // Tasks reach their company through their project; a list works too.
    assert_eq!(
        list(format!("/tasks?filter[company_id]={}", ids::ACME)).await,
        id_strings(&[ids::HOMEPAGE_TASK, ids::COPY_TASK, ids::LAUNCH_TASK])
    );
    assert_eq!(
        list(format!("/tasks?filter[company_id]={}", ids::GLOBEX)).await,
        Vec::<String>::new()
    );
    assert_eq!(
        list(format!(
            "/time_entries?filter[project_id]={},{}",
            ids::INTERNAL_TOOLS,
            ids::WEBSITE
        ))
        .await,
        entries
    );
}
