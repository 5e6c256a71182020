//! Filter values with characters that mean something in a URL (`&`, `[`,
//! `]`, `%`, `#`, `+`, `/`, `?`), in SQL (`'`, `"`), line breaks and
//! non-ASCII text reach the API as one intact parameter, and the rows that
//! come back are the right ones. A value with a comma, which the API
//! would read as a list, is compared locally instead of sent.

mod gateway_support;

use gateway_support::{Env, standard};
use productive_pg::sim::fixture::ids;
use productive_pg::sim::query::decode_pairs;

const TITLES: &[&str] = &[
    "Tom & Jerry",
    "array[1] and [2]",
    "100% done",
    "it's here",
    "say \"hi\"",
    "first line\nsecond line",
    "#hashtag",
    "a+b=c",
    "path/to?x=1&y=2",
    "Grüße, 東京 ✓",
    "&page[size]=1%\n'\"é#+/?",
];

fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The values of the `filter[title]...` parameters of the requests the
/// simulator saw for `/tasks`, decoded as the simulator decodes them.
fn title_filters(env: &Env) -> Vec<(String, String)> {
    env.take_requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/tasks"))
        .flat_map(|r| decode_pairs(r.query.as_deref().unwrap_or("")))
        .filter(|(key, _)| key.starts_with("filter[title]"))
        .collect()
}

async fn insert_titles(env: &Env) {
    let rows: Vec<String> = TITLES
        .iter()
        .map(|t| format!("({}, {}, {})", quoted(t), ids::WEBSITE, ids::SPRINT))
        .collect();
    env.query(&format!(
        "INSERT INTO tasks (title, project_id, task_list_id) VALUES {}",
        rows.join(", ")
    ))
    .await;
    env.take_requests();
}

#[tokio::test]
async fn equality_sends_each_title_as_one_parameter_and_finds_its_row() {
    let env = standard().await;
    insert_titles(&env).await;
    for title in TITLES {
        let sql = format!("SELECT title FROM tasks WHERE title = {}", quoted(title));
        let found = env.column(&sql).await;
        assert_eq!(found, vec![title.to_string()], "{sql}");
        // A comma would make the value a list to the API, so such a value
        // is compared here instead of sent.
        let expected = match title.contains(',') {
            true => vec![],
            false => vec![("filter[title]".to_owned(), title.to_string())],
        };
        assert_eq!(title_filters(&env), expected, "{sql}");
    }
}

#[tokio::test]
async fn like_and_in_keep_the_values_intact() {
    let env = standard().await;
    insert_titles(&env).await;
    for title in TITLES {
        // LIKE wildcards in the value itself would change its meaning.
        if title.contains('%') || title.contains('_') {
            continue;
        }
        let sql = format!(
            "SELECT title FROM tasks WHERE title LIKE {}",
            quoted(&format!("%{title}%"))
        );
        let found = env.column(&sql).await;
        assert_eq!(found, vec![title.to_string()], "{sql}");
        let filters = title_filters(&env);
        assert!(
            filters.iter().all(|(_, v)| v == title),
            "{sql}: {filters:?}"
        );
        let sent = usize::from(!title.contains(','));
        assert_eq!(filters.len(), sent, "{sql}: {filters:?}");
    }

    let list: Vec<String> = TITLES.iter().map(|t| quoted(t)).collect();
    let sql = format!(
        "SELECT title FROM tasks WHERE title IN ({}) ORDER BY title",
        list.join(", ")
    );
    let mut expected: Vec<String> = TITLES.iter().map(|t| t.to_string()).collect();
    expected.sort();
    let mut found = env.column(&sql).await;
    found.sort();
    assert_eq!(found, expected);
    // Whatever of the list was sent, each value went whole.
    for (_, value) in title_filters(&env) {
        for part in value.split(',') {
            assert!(
                TITLES.iter().any(|t| t.contains(part)),
                "a value was cut: {value:?}"
            );
        }
    }
}
