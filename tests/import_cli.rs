//! `productive-pg import` against the simulator: each mode, column maps,
//! dry runs, rejects among good rows, file formats, faults, and a rerun of
//! an interrupted import.

mod gateway_support;

use std::path::{Path, PathBuf};

use gateway_support::*;
use productive_pg::app::{ApiSettings, import};
use productive_pg::secret::Secret;
use productive_pg::sim::faults::FaultKind;
use productive_pg::sim::fixture::ids;
use productive_pg::transfer::csv_in::InputFormat;
use productive_pg::transfer::import::{ImportMode, ImportOptions, journal_path};

fn settings(env: &Env) -> ApiSettings {
    ApiSettings {
        api_url: env.sim.base_url().to_string(),
        credentials: Some((env.sim.organization_id().to_string(), Secret::new(TOKEN))),
        demo: None,
    }
}

/// A fresh directory for one test's files.
fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("import-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn write(path: &Path, data: &[u8]) -> PathBuf {
    std::fs::write(path, data).expect("write input");
    path.to_path_buf()
}

fn options(mode: ImportMode) -> ImportOptions {
    let mut format = InputFormat::csv();
    format.header = true;
    ImportOptions {
        mode,
        map: vec![],
        columns: None,
        format,
        rejects: None,
        journal: None,
        dry_run: false,
    }
}

async fn titles_like(env: &Env, prefix: &str) -> Vec<String> {
    let mut titles = env
        .column(&format!(
            "SELECT title FROM tasks WHERE title LIKE '{prefix}%'"
        ))
        .await;
    titles.sort();
    titles
}

fn writes(env: &Env) -> usize {
    env.take_requests()
        .iter()
        .filter(|r| r.method != "GET")
        .count()
}

#[tokio::test]
async fn insert_with_a_map_creates_every_row() {
    let env = standard().await;
    let d = dir("insert");
    let input = write(
        &d.join("in.csv"),
        format!(
            "name,project_id,task_list_id\nImp A,{p},{l}\n\"Imp, B\",{p},{l}\n",
            p = ids::WEBSITE,
            l = ids::SPRINT
        )
        .as_bytes(),
    );
    let mut opts = options(ImportMode::Insert);
    opts.map = vec![("name".into(), "title".into())];
    let summary = import(&settings(&env), &input, "tasks", &opts, false)
        .await
        .expect("imports");
    assert_eq!(summary.inserted, 2, "{summary}");
    assert!(!summary.failed());
    assert_eq!(titles_like(&env, "Imp").await, vec!["Imp A", "Imp, B"]);
    // A finished run leaves no journal behind.
    assert!(!journal_path(&input).exists());
}

#[tokio::test]
async fn update_upsert_and_delete_match_on_id() {
    let env = standard().await;
    let d = dir("modes");
    let input = write(
        &d.join("update.csv"),
        format!("id,title\n{},Renamed homepage\n", ids::HOMEPAGE_TASK).as_bytes(),
    );
    let summary = import(
        &settings(&env),
        &input,
        "tasks",
        &options(ImportMode::Update),
        false,
    )
    .await
    .expect("updates");
    assert_eq!(summary.updated, 1, "{summary}");
    assert_eq!(
        env.column(&format!(
            "SELECT title FROM tasks WHERE id = {}",
            ids::HOMEPAGE_TASK
        ))
        .await,
        vec!["Renamed homepage"]
    );

    let input = write(
        &d.join("upsert.csv"),
        format!(
            "id,title,project_id,task_list_id\n{c},Upserted copy,{p},{l}\n,Upserted new,{p},{l}\n",
            c = ids::COPY_TASK,
            p = ids::WEBSITE,
            l = ids::SPRINT
        )
        .as_bytes(),
    );
    let summary = import(
        &settings(&env),
        &input,
        "tasks",
        &options(ImportMode::Upsert),
        false,
    )
    .await
    .expect("upserts");
    assert_eq!((summary.updated, summary.inserted), (1, 1), "{summary}");
    assert_eq!(
        titles_like(&env, "Upserted").await,
        vec!["Upserted copy", "Upserted new"]
    );

    let input = write(
        &d.join("delete.csv"),
        format!("id\n{}\n", ids::LAUNCH_TASK).as_bytes(),
    );
    let summary = import(
        &settings(&env),
        &input,
        "tasks",
        &options(ImportMode::Delete),
        false,
    )
    .await
    .expect("deletes");
    assert_eq!(summary.deleted, 1, "{summary}");
    assert!(
        env.column(&format!(
            "SELECT title FROM tasks WHERE id = {}",
            ids::LAUNCH_TASK
        ))
        .await
        .is_empty()
    );
}

#[tokio::test]
async fn a_dry_run_validates_and_sends_nothing() {
    let env = standard().await;
    let d = dir("dry");
    let input = write(
        &d.join("in.csv"),
        format!(
            "title,project_id,task_list_id\nDry A,{p},{l}\nDry B,not-a-number,{l}\n",
            p = ids::WEBSITE,
            l = ids::SPRINT
        )
        .as_bytes(),
    );
    env.take_requests();
    let mut opts = options(ImportMode::Insert);
    opts.dry_run = true;
    let summary = import(&settings(&env), &input, "tasks", &opts, false)
        .await
        .expect("validates");
    assert_eq!(summary.inserted, 1);
    assert_eq!(summary.rejected.len(), 1);
    assert_eq!(summary.rejected[0].line, 3);
    assert!(summary.to_string().contains("dry run"), "{summary}");
    assert_eq!(writes(&env), 0, "a dry run wrote");
    assert!(titles_like(&env, "Dry").await.is_empty());
}

#[tokio::test]
async fn bad_rows_go_to_the_rejects_file_and_good_rows_arrive() {
    let env = standard().await;
    let d = dir("rejects");
    let mut csv = String::from("title,project_id,task_list_id,due_date\n");
    let mut bad_lines = Vec::new();
    for i in 0..40 {
        let line = i + 2;
        let row = match i % 10 {
            3 => {
                bad_lines.push(line);
                format!(",{},{},\n", ids::WEBSITE, ids::SPRINT) // NULL title
            }
            6 => {
                bad_lines.push(line);
                format!("Many {i},{},{},not a date\n", ids::WEBSITE, ids::SPRINT)
            }
            8 => {
                bad_lines.push(line);
                format!("Many {i},{},{}\n", ids::WEBSITE, ids::SPRINT) // too few
            }
            _ => format!("Many {i},{},{},2026-05-01\n", ids::WEBSITE, ids::SPRINT),
        };
        csv.push_str(&row);
    }
    let input = write(&d.join("many.csv"), csv.as_bytes());
    let rejects = d.join("rejects.csv");
    let mut opts = options(ImportMode::Insert);
    opts.rejects = Some(rejects.clone());
    let summary = import(&settings(&env), &input, "tasks", &opts, false)
        .await
        .expect("imports");
    assert_eq!(summary.inserted, 28, "{summary}");
    let lines: Vec<u64> = summary.rejected.iter().map(|r| r.line).collect();
    assert_eq!(lines, bad_lines);
    assert_eq!(titles_like(&env, "Many ").await.len(), 28);

    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(&rejects)
        .expect("rejects file");
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(
        header,
        vec![
            "title",
            "project_id",
            "task_list_id",
            "due_date",
            "line",
            "reason"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), bad_lines.len());
    let reason_of = |line: u64| -> String {
        let row = rows
            .iter()
            .find(|r| r.get(r.len() - 2) == Some(&line.to_string()))
            .expect("a rejects row for the line");
        row.get(row.len() - 1).unwrap_or_default().to_string()
    };
    assert!(reason_of(5).contains("not-null"), "{}", reason_of(5));
    assert!(reason_of(8).contains("due_date"), "{}", reason_of(8));
    assert!(reason_of(10).contains("missing data"), "{}", reason_of(10));
}

#[tokio::test]
async fn file_formats_crlf_no_header_delimiter_and_null() {
    let env = standard().await;
    let d = dir("formats");
    let input = write(
        &d.join("crlf.csv"),
        format!(
            "title;project_id;task_list_id;description\r\nFmt A;{p};{l};NONE\r\n\
             \"Fmt;B\";{p};{l};\"NONE\"\r\n",
            p = ids::WEBSITE,
            l = ids::SPRINT
        )
        .as_bytes(),
    );
    let mut opts = options(ImportMode::Insert);
    opts.format.delimiter = b';';
    opts.format.null = "NONE".into();
    opts.format.header = false;
    opts.columns = Some(vec![
        "title".into(),
        "project_id".into(),
        "task_list_id".into(),
        "description".into(),
    ]);
    // Without a header the first line is data: it is rejected here.
    let summary = import(&settings(&env), &input, "tasks", &opts, false)
        .await
        .expect("imports");
    assert_eq!(summary.inserted, 2, "{summary}");
    assert_eq!(summary.rejected.len(), 1);
    assert_eq!(summary.rejected[0].line, 1);
    assert_eq!(titles_like(&env, "Fmt").await, vec!["Fmt A", "Fmt;B"]);
    let descriptions = env
        .column(
            "SELECT coalesce(description, 'null') FROM tasks WHERE title LIKE 'Fmt%' \
                 ORDER BY title",
        )
        .await;
    assert_eq!(descriptions, vec!["null", "NONE"]);
}

#[tokio::test]
async fn broken_files_name_their_lines() {
    let env = standard().await;
    let d = dir("broken");
    let (p, l) = (ids::WEBSITE, ids::SPRINT);
    let mut data = format!("title,project_id,task_list_id\nGood 1,{p},{l}\n").into_bytes();
    data.extend_from_slice(b"Bad \xff\xfe,1,2\n");
    data.extend_from_slice(format!("Good 2,{p},{l}\nToo many,{p},{l},x\n").as_bytes());
    data.extend_from_slice(b"\"Open,1,2\n");
    let input = write(&d.join("broken.csv"), &data);
    let summary = import(
        &settings(&env),
        &input,
        "tasks",
        &options(ImportMode::Insert),
        false,
    )
    .await
    .expect("imports");
    assert_eq!(summary.inserted, 2, "{summary}");
    assert_eq!(titles_like(&env, "Good").await, vec!["Good 1", "Good 2"]);
    let rejected: Vec<(u64, &str)> = summary
        .rejected
        .iter()
        .map(|r| (r.line, r.reason.as_str()))
        .collect();
    assert_eq!(rejected.len(), 3, "{rejected:?}");
    assert_eq!(rejected[0].0, 3);
    assert!(rejected[0].1.contains("UTF8"), "{rejected:?}");
    assert!(rejected[0].1.contains("0xff"), "{rejected:?}");
    assert_eq!(rejected[1].0, 5);
    assert!(rejected[1].1.contains("extra data"), "{rejected:?}");
    assert_eq!(rejected[2].0, 6);
    assert!(rejected[2].1.contains("unterminated"), "{rejected:?}");
    assert!(summary.failed());
}

#[tokio::test]
async fn unknown_and_read_only_columns_stop_before_any_row() {
    let env = standard().await;
    let d = dir("columns");
    let input = write(&d.join("in.csv"), b"title,colour\nX,red\n");
    let err = import(
        &settings(&env),
        &input,
        "tasks",
        &options(ImportMode::Insert),
        false,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("\"colour\""), "{err}");
    let input = write(&d.join("ro.csv"), b"title,created_at\nX,2026-01-01\n");
    let err = import(
        &settings(&env),
        &input,
        "tasks",
        &options(ImportMode::Insert),
        false,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
    env.take_requests();
    assert_eq!(writes(&env), 0);
}

#[tokio::test]
async fn an_interrupted_import_reruns_as_upsert_without_duplicates() {
    let env = standard().await;
    let d = dir("rerun");
    let mut csv = String::from("title,project_id,task_list_id\n");
    for i in 0..6 {
        csv.push_str(&format!("Rerun {i},{},{}\n", ids::WEBSITE, ids::SPRINT));
    }
    let input = write(&d.join("rerun.csv"), csv.as_bytes());
    // The fourth POST never answers: its outcome is unknown; the fifth
    // gets a 503, which a POST does not retry.
    let api = settings(&env);
    let insert = options(ImportMode::Insert);
    let first = import(&api, &input, "tasks", &insert, false);
    let sim = &env.sim;
    let watcher = async {
        // Let three rows through, then break the next two requests.
        loop {
            let posts = sim.requests().iter().filter(|r| r.method == "POST").count();
            if posts >= 3 {
                sim.fail_next(1, FaultKind::DropConnection);
                sim.fail_next(1, FaultKind::Status(503));
                break;
            }
            tokio::task::yield_now().await;
        }
    };
    let (summary, ()) = tokio::join!(first, watcher);
    let summary = summary.expect("runs");
    assert!(summary.failed(), "{summary}");
    assert!(!summary.unknown.is_empty(), "{summary}");
    for row in &summary.unknown {
        assert!(row.line >= 5, "{:?}", summary.unknown);
    }
    assert!(journal_path(&input).exists());
    let before = titles_like(&env, "Rerun").await;

    // The rerun updates what was created and leaves unknown rows alone.
    let again = import(
        &settings(&env),
        &input,
        "tasks",
        &options(ImportMode::Upsert),
        false,
    )
    .await
    .expect("reruns");
    assert_eq!(again.already_written, summary.inserted, "{again}");
    assert_eq!(again.updated, summary.inserted, "{again}");
    assert_eq!(again.unknown.len(), summary.unknown.len(), "{again}");
    let after = titles_like(&env, "Rerun").await;
    let mut unique = after.clone();
    unique.dedup();
    assert_eq!(unique, after, "duplicates were created");
    assert!(after.len() >= before.len());
    assert_eq!(
        after.len() as u64,
        before.len() as u64 + again.inserted,
        "{again}"
    );
}

#[tokio::test]
async fn api_refusals_are_rejects_with_the_apis_reason_and_429s_are_retried() {
    let env = standard().await;
    let d = dir("api");
    let input = write(
        &d.join("in.csv"),
        format!(
            "title,project_id,task_list_id\nApi A,{p},{l}\n\"\",{p},{l}\nApi C,{p},{l}\n",
            p = ids::WEBSITE,
            l = ids::SPRINT
        )
        .as_bytes(),
    );
    env.sim.fail_next(3, FaultKind::Status(429));
    let rejects = d.join("rejects.csv");
    let mut opts = options(ImportMode::Insert);
    opts.rejects = Some(rejects.clone());
    let summary = import(&settings(&env), &input, "tasks", &opts, false)
        .await
        .expect("imports");
    assert_eq!(summary.inserted, 2, "{summary}");
    assert_eq!(summary.rejected.len(), 1);
    assert_eq!(summary.rejected[0].line, 3);
    assert!(
        summary.rejected[0].reason.contains("blank"),
        "{:?}",
        summary.rejected
    );
    let text = std::fs::read_to_string(&rejects).expect("rejects");
    assert!(text.contains("blank"), "{text}");
    assert_eq!(titles_like(&env, "Api").await, vec!["Api A", "Api C"]);
}
