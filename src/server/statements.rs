//! Statements the wire layer answers itself, and the SQL touch-ups applied
//! before DataFusion sees a statement.
//!
//! [`route`] sorts a parsed statement into the ones answered here (`SET`,
//! `SHOW`, `RESET`, transaction verbs, `DISCARD`, `DEALLOCATE`, cursors and
//! `CALL`) and the ones planned by DataFusion. The settings table mirrors the
//! PostgreSQL parameters clients commonly set or read; dotted names are passed
//! to the session's DataFusion configuration, which is where the product
//! registers its own `productive.*` options.

use std::collections::HashSet;

use datafusion::common::config::{ConfigEntry, ConfigOptions};
use datafusion::sql::sqlparser::ast::{
    self, CloseCursor, DeclareType, Expr, FetchDirection, FunctionArg, FunctionArgExpr,
    FunctionArguments, Ident, ObjectName, Reset, SelectItem, Set, SetExpr, Statement,
    UtilityOption, Value,
};

use super::errors::ServerError;
use super::session::Session;
use crate::error::{SqlError, codes};

/// What the server reports as its PostgreSQL version.
pub const SERVER_VERSION: &str = "15.0";

/// A PostgreSQL setting known to the server.
#[derive(Debug)]
pub struct Setting {
    /// Canonical name, as PostgreSQL spells it.
    pub name: &'static str,
    pub default: &'static str,
    /// Sent as ParameterStatus at startup and when changed.
    pub reported: bool,
    /// Refuses `SET` to any other value than the default.
    pub fixed: bool,
    pub description: &'static str,
}

const fn setting(
    name: &'static str,
    default: &'static str,
    reported: bool,
    fixed: bool,
    description: &'static str,
) -> Setting {
    Setting {
        name,
        default,
        reported,
        fixed,
        description,
    }
}

impl Setting {
    /// Every PostgreSQL setting the server knows about.
    pub const ALL: &'static [Setting] = &[
        setting(
            "application_name",
            "",
            true,
            false,
            "Name of the client application.",
        ),
        setting(
            "bytea_output",
            "hex",
            false,
            false,
            "Output format for bytea values.",
        ),
        setting(
            "client_encoding",
            "UTF8",
            true,
            false,
            "Client's character set.",
        ),
        setting(
            "client_min_messages",
            "notice",
            false,
            false,
            "Lowest message level sent.",
        ),
        setting(
            "DateStyle",
            "ISO, MDY",
            true,
            false,
            "Display format for dates.",
        ),
        setting(
            "default_transaction_isolation",
            "read committed",
            false,
            false,
            "Isolation level of new transactions.",
        ),
        setting(
            "default_transaction_read_only",
            "off",
            true,
            false,
            "Whether new transactions are read-only.",
        ),
        setting(
            "extra_float_digits",
            "1",
            false,
            false,
            "Extra digits for floats.",
        ),
        setting(
            "idle_in_transaction_session_timeout",
            "0",
            false,
            false,
            "Accepted for compatibility; not enforced.",
        ),
        setting(
            "in_hot_standby",
            "off",
            true,
            true,
            "Whether this is a standby.",
        ),
        setting(
            "integer_datetimes",
            "on",
            true,
            true,
            "Datetimes are integer based.",
        ),
        setting(
            "IntervalStyle",
            "postgres",
            true,
            false,
            "Display format for intervals.",
        ),
        setting(
            "is_superuser",
            "off",
            true,
            true,
            "Whether the user is a superuser.",
        ),
        setting(
            "jit",
            "off",
            false,
            false,
            "Accepted for compatibility; not used.",
        ),
        setting("lc_messages", "C", false, false, "Language of messages."),
        setting("lc_monetary", "C", false, false, "Locale for money values."),
        setting("lc_numeric", "C", false, false, "Locale for numbers."),
        setting("lc_time", "C", false, false, "Locale for dates and times."),
        setting(
            "lock_timeout",
            "0",
            false,
            false,
            "Accepted for compatibility; not enforced.",
        ),
        setting(
            "max_identifier_length",
            "63",
            false,
            true,
            "Longest identifier.",
        ),
        setting(
            "search_path",
            "public",
            false,
            false,
            "Schema search order.",
        ),
        setting(
            "server_encoding",
            "UTF8",
            true,
            true,
            "Server's character set.",
        ),
        setting(
            "server_version",
            SERVER_VERSION,
            true,
            true,
            "PostgreSQL version emulated.",
        ),
        setting(
            "server_version_num",
            "150000",
            false,
            true,
            "PostgreSQL version number.",
        ),
        setting(
            "standard_conforming_strings",
            "on",
            true,
            true,
            "Backslashes are literal in strings.",
        ),
        setting(
            "statement_timeout",
            "0",
            false,
            false,
            "Longest time a statement may run, in milliseconds (0 = no limit).",
        ),
        setting("TimeZone", "UTC", true, false, "Time zone for timestamps."),
        setting(
            "transaction_isolation",
            "read committed",
            false,
            false,
            "Isolation level of the current transaction.",
        ),
        setting(
            "transaction_read_only",
            "off",
            false,
            false,
            "Whether the transaction is read-only.",
        ),
    ];

    /// Finds a setting by name, ignoring case as PostgreSQL does.
    pub fn find(name: &str) -> Option<&'static Setting> {
        Setting::ALL
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }
}

/// Where a statement goes.
#[derive(Debug, Clone)]
pub enum Route {
    /// Planned and run by DataFusion.
    Plan,
    /// Answered by the wire layer.
    Utility(Utility),
}

/// A statement answered by the wire layer itself.
#[derive(Debug, Clone)]
pub enum Utility {
    /// `SET name = value`; `None` means `DEFAULT`.
    Set {
        name: String,
        value: Option<String>,
    },
    /// `SHOW name` (`all` for `SHOW ALL`).
    Show(String),
    /// `RESET name`; `None` means `RESET ALL`.
    Reset(Option<String>),
    Begin,
    Commit,
    /// `ROLLBACK`, or `ROLLBACK TO SAVEPOINT` when `to_savepoint`.
    Rollback {
        to_savepoint: bool,
    },
    Savepoint,
    ReleaseSavepoint,
    /// `DISCARD ALL|PLANS|...`.
    Discard,
    /// `DEALLOCATE [ALL|name]`.
    Deallocate(String),
    /// `DECLARE name CURSOR FOR query`.
    Declare {
        name: String,
        query: Box<ast::Query>,
    },
    /// `FETCH`; `count` is `None` for `ALL`.
    Fetch {
        name: String,
        count: Option<usize>,
    },
    /// `CLOSE name`, or `CLOSE ALL` when `None`.
    Close(Option<String>),
    /// `CALL name(args)`.
    Call {
        name: String,
        args: Vec<Expr>,
    },
}

impl Utility {
    /// Whether the statement may run inside a failed transaction block.
    pub fn allowed_when_failed(&self) -> bool {
        matches!(
            self,
            Utility::Commit | Utility::Rollback { .. } | Utility::Discard
        )
    }
}

fn unsupported(what: impl Into<String>) -> ServerError {
    ServerError::Sql(SqlError::new(codes::FEATURE_NOT_SUPPORTED, what))
}

fn syntax(what: impl Into<String>) -> ServerError {
    ServerError::Sql(SqlError::new(codes::SYNTAX_ERROR, what))
}

/// Decides who answers `stmt`.
///
/// # Errors
/// `0A000` for forms that are recognised but not supported (scrollable
/// cursors, `EXPLAIN ANALYZE` of a data-changing statement, ...).
pub fn route(stmt: &Statement) -> Result<Route, ServerError> {
    let utility = match stmt {
        Statement::Set(set) => route_set(set)?,
        Statement::ShowVariable { variable } => Utility::Show(show_name(variable)),
        Statement::Reset(reset) => match &reset.reset {
            Reset::ALL => Utility::Reset(None),
            Reset::ConfigurationParameter(name) => Utility::Reset(Some(object_name(name))),
        },
        Statement::StartTransaction { .. } => Utility::Begin,
        Statement::Commit { .. } => Utility::Commit,
        Statement::Rollback { savepoint, .. } => Utility::Rollback {
            to_savepoint: savepoint.is_some(),
        },
        Statement::Savepoint { .. } => Utility::Savepoint,
        Statement::ReleaseSavepoint { .. } => Utility::ReleaseSavepoint,
        Statement::Discard { .. } => Utility::Discard,
        Statement::Deallocate { name, .. } => Utility::Deallocate(name.value.clone()),
        Statement::Declare { stmts } => route_declare(stmts)?,
        Statement::Fetch {
            name, direction, ..
        } => Utility::Fetch {
            name: name.value.clone(),
            count: fetch_count(direction)?,
        },
        Statement::Close { cursor } => Utility::Close(match cursor {
            CloseCursor::All => None,
            CloseCursor::Specific { name } => Some(name.value.clone()),
        }),
        Statement::Call(function) => Utility::Call {
            name: object_name(&function.name),
            args: call_args(&function.args)?,
        },
        Statement::Explain {
            analyze,
            options,
            statement,
            ..
        } => {
            let analyze = *analyze || options.as_deref().is_some_and(has_analyze_option);
            let changes_data = matches!(
                **statement,
                Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_)
            );
            if analyze && changes_data {
                return Err(unsupported(
                    "EXPLAIN ANALYZE of INSERT, UPDATE or DELETE is not supported \
                     because it would change data; use EXPLAIN without ANALYZE",
                ));
            }
            return Ok(Route::Plan);
        }
        _ => return Ok(Route::Plan),
    };
    Ok(Route::Utility(utility))
}

fn has_analyze_option(options: &[UtilityOption]) -> bool {
    options.iter().any(|o| {
        o.name.value.eq_ignore_ascii_case("analyze")
            && o.arg.as_ref().is_none_or(|arg| {
                let v = arg.to_string().to_ascii_lowercase();
                !matches!(v.as_str(), "false" | "off" | "0")
            })
    })
}

fn route_set(set: &Set) -> Result<Utility, ServerError> {
    match set {
        Set::SingleAssignment {
            variable, values, ..
        } => Ok(Utility::Set {
            name: object_name(variable),
            value: set_value(values),
        }),
        Set::SetTimeZone { value, .. } => {
            let value = set_value(std::slice::from_ref(value));
            let value = value.filter(|v| !v.eq_ignore_ascii_case("local"));
            Ok(Utility::Set {
                name: "TimeZone".to_owned(),
                value,
            })
        }
        Set::SetNames { charset_name, .. } => Ok(Utility::Set {
            name: "client_encoding".to_owned(),
            value: Some(charset_name.value.clone()),
        }),
        other => Err(unsupported(format!("unsupported SET form: {other}"))),
    }
}

/// Renders the value list of a SET; `None` for `DEFAULT`.
fn set_value(values: &[Expr]) -> Option<String> {
    if let [Expr::Identifier(ident)] = values
        && ident.quote_style.is_none()
        && ident.value.eq_ignore_ascii_case("default")
    {
        return None;
    }
    let parts: Vec<String> = values
        .iter()
        .map(|v| match v {
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s)
                | Value::DoubleQuotedString(s)
                | Value::EscapedStringLiteral(s) => s.clone(),
                Value::Number(n, _) => n.to_string(),
                Value::Boolean(b) => if *b { "on" } else { "off" }.to_owned(),
                other => other.to_string(),
            },
            Expr::Identifier(ident) => ident.value.clone(),
            other => other.to_string(),
        })
        .collect();
    Some(parts.join(", "))
}

fn show_name(variable: &[Ident]) -> String {
    let words: Vec<String> = variable
        .iter()
        .map(|i| i.value.to_ascii_lowercase())
        .collect();
    match words
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["time", "zone"] => "TimeZone".to_owned(),
        ["transaction", "isolation", "level"] => "transaction_isolation".to_owned(),
        _ => variable
            .iter()
            .map(|i| i.value.clone())
            .collect::<Vec<_>>()
            .join("."),
    }
}

fn object_name(name: &ObjectName) -> String {
    name.0
        .iter()
        .map(|part| match part.as_ident() {
            Some(ident) => ident.value.clone(),
            None => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn route_declare(stmts: &[ast::Declare]) -> Result<Utility, ServerError> {
    let [declare] = stmts else {
        return Err(syntax("DECLARE takes exactly one cursor"));
    };
    if declare.declare_type != Some(DeclareType::Cursor) {
        return Err(unsupported("only DECLARE ... CURSOR is supported"));
    }
    if declare.scroll == Some(true) {
        return Err(unsupported("scrollable cursors are not supported"));
    }
    let name = declare
        .names
        .first()
        .map(|n| n.value.clone())
        .ok_or_else(|| syntax("cursor name is required"))?;
    let query = declare
        .for_query
        .clone()
        .ok_or_else(|| syntax("DECLARE CURSOR requires a query"))?;
    Ok(Utility::Declare { name, query })
}

fn fetch_count(direction: &FetchDirection) -> Result<Option<usize>, ServerError> {
    let number = |v: &ast::ValueWithSpan| match &v.value {
        Value::Number(n, _) => n
            .to_string()
            .parse::<usize>()
            .map_err(|_| syntax(format!("invalid FETCH count {n}"))),
        other => Err(syntax(format!("invalid FETCH count {other}"))),
    };
    match direction {
        FetchDirection::Next | FetchDirection::Forward { limit: None } => Ok(Some(1)),
        FetchDirection::Count { limit } | FetchDirection::Forward { limit: Some(limit) } => {
            number(limit).map(Some)
        }
        FetchDirection::All | FetchDirection::ForwardAll => Ok(None),
        _ => Err(ServerError::Sql(SqlError::new(
            "55000",
            "cursor can only scan forward",
        ))),
    }
}

fn call_args(args: &FunctionArguments) -> Result<Vec<Expr>, ServerError> {
    match args {
        FunctionArguments::None => Ok(vec![]),
        FunctionArguments::List(list) => list
            .args
            .iter()
            .map(|arg| match arg {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e.clone()),
                other => Err(unsupported(format!("unsupported CALL argument {other}"))),
            })
            .collect(),
        FunctionArguments::Subquery(_) => Err(unsupported("CALL with a subquery argument")),
    }
}

/// A ParameterStatus to send after a successful SET.
pub type ReportedChange = Option<(String, String)>;

/// Applies `SET name = value` (or `DEFAULT` when `value` is `None`).
///
/// # Errors
/// `42704` for an unknown setting, `22023` for a value the setting refuses.
pub fn apply_set(
    session: &Session,
    name: &str,
    value: Option<&str>,
) -> Result<ReportedChange, ServerError> {
    if name.contains('.') {
        set_datafusion_option(session, name, value)?;
        return Ok(None);
    }
    let setting = Setting::find(name).ok_or_else(|| unknown_setting(name))?;
    let value = match value {
        Some(v) => normalize(setting, v)?,
        None => setting.default.to_owned(),
    };
    if setting.name == "TimeZone" {
        let state_ref = session.ctx.state_ref();
        let mut state = state_ref.write();
        state.config_mut().options_mut().execution.time_zone = Some(value.clone());
    }
    session.store_setting(setting.name, value.clone());
    Ok(setting.reported.then(|| (setting.name.to_owned(), value)))
}

fn unknown_setting(name: &str) -> ServerError {
    ServerError::Sql(SqlError::new(
        codes::UNDEFINED_OBJECT,
        format!("unrecognized configuration parameter \"{name}\""),
    ))
}

fn invalid_value(setting: &str, value: &str) -> ServerError {
    ServerError::Sql(SqlError::new(
        codes::INVALID_PARAMETER_VALUE,
        format!("invalid value for parameter \"{setting}\": \"{value}\""),
    ))
}

/// Validates a value and brings it to the form PostgreSQL would show.
fn normalize(setting: &Setting, value: &str) -> Result<String, ServerError> {
    let trimmed = value.trim();
    if setting.fixed {
        return if trimmed.eq_ignore_ascii_case(setting.default) {
            Ok(setting.default.to_owned())
        } else {
            Err(ServerError::Sql(SqlError::new(
                "55P02",
                format!("parameter \"{}\" cannot be changed", setting.name),
            )))
        };
    }
    match setting.name {
        "statement_timeout" | "lock_timeout" | "idle_in_transaction_session_timeout" => {
            parse_millis(trimmed)
                .map(|ms| ms.to_string())
                .ok_or_else(|| invalid_value(setting.name, value))
        }
        "extra_float_digits" => match trimmed.parse::<i8>() {
            Ok(n) if (-15..=3).contains(&n) => Ok(n.to_string()),
            _ => Err(invalid_value(setting.name, value)),
        },
        "client_encoding" => {
            // asyncpg sends `'utf-8'` in the startup packet, quotes included,
            // and PostgreSQL accepts it.
            let upper = trimmed
                .trim_matches('\'')
                .to_ascii_uppercase()
                .replace(['-', '_'], "");
            if upper == "UTF8" || upper == "UNICODE" {
                Ok("UTF8".to_owned())
            } else {
                Err(ServerError::Sql(
                    SqlError::new(
                        codes::INVALID_PARAMETER_VALUE,
                        format!("invalid value for parameter \"client_encoding\": \"{value}\""),
                    )
                    .with_hint("only UTF8 is supported"),
                ))
            }
        }
        "DateStyle" => {
            let parts: Vec<String> = trimmed
                .split(',')
                .map(|p| p.trim().to_ascii_uppercase())
                .collect();
            let style = parts
                .iter()
                .find(|p| matches!(p.as_str(), "ISO" | "SQL" | "POSTGRES" | "GERMAN"))
                .map(|s| match s.as_str() {
                    "POSTGRES" => "Postgres".to_owned(),
                    "GERMAN" => "German".to_owned(),
                    other => other.to_owned(),
                })
                .unwrap_or_else(|| "ISO".to_owned());
            let order = parts
                .iter()
                .find(|p| matches!(p.as_str(), "MDY" | "DMY" | "YMD"))
                .cloned()
                .unwrap_or_else(|| "MDY".to_owned());
            Ok(format!("{style}, {order}"))
        }
        "TimeZone" if trimmed.is_empty() => Err(invalid_value(setting.name, value)),
        _ => Ok(trimmed.to_owned()),
    }
}

/// Parses a PostgreSQL duration setting (`5000`, `'5s'`, `'100ms'`,
/// `'1min'`) into milliseconds.
pub fn parse_millis(value: &str) -> Option<u64> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor = match unit.trim() {
        "" | "ms" => 1,
        "s" => 1_000,
        "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// Renders milliseconds the way `SHOW statement_timeout` does.
fn show_millis(ms: &str) -> String {
    match ms.parse::<u64>() {
        Ok(0) => "0".to_owned(),
        Ok(ms) if ms % 1000 == 0 => format!("{}s", ms / 1000),
        Ok(ms) => format!("{ms}ms"),
        Err(_) => ms.to_owned(),
    }
}

fn set_datafusion_option(
    session: &Session,
    name: &str,
    value: Option<&str>,
) -> Result<(), ServerError> {
    let key = name.to_ascii_lowercase();
    let value = match value {
        Some(v) => v.to_owned(),
        None => initial_option(session, &key)
            .flatten()
            .ok_or_else(|| unknown_setting(name))?,
    };
    let state_ref = session.ctx.state_ref();
    let mut state = state_ref.write();
    state
        .config_mut()
        .options_mut()
        .set(&key, &value)
        .map_err(|e| {
            let text = e.to_string();
            if text.contains("Could not find config namespace")
                || text.contains("could not find config namespace")
                || text.contains("not found")
                || text.contains("Unknown")
            {
                unknown_setting(name)
            } else {
                ServerError::Sql(SqlError::new(codes::INVALID_PARAMETER_VALUE, text))
            }
        })
}

/// All DataFusion options with their full keys, extensions included (their
/// own entries omit the namespace prefix).
fn option_entries(options: &ConfigOptions) -> Vec<ConfigEntry> {
    let mut entries: Vec<ConfigEntry> = options
        .entries()
        .into_iter()
        .filter(|e| e.key.starts_with("datafusion."))
        .collect();
    for (prefix, extension) in options.extensions.iter() {
        entries.extend(extension.entries().into_iter().map(|e| ConfigEntry {
            key: format!("{prefix}.{}", e.key),
            ..e
        }));
    }
    entries
}

fn initial_option(session: &Session, key: &str) -> Option<Option<String>> {
    option_entries(session.initial_options())
        .into_iter()
        .find(|e| e.key == key)
        .map(|e| e.value)
}

/// Applies `RESET name` or `RESET ALL`.
///
/// # Errors
/// `42704` for an unknown setting.
pub fn apply_reset(
    session: &Session,
    name: Option<&str>,
) -> Result<Vec<(String, String)>, ServerError> {
    match name {
        Some(name) => Ok(apply_set(session, name, None)?.into_iter().collect()),
        None => {
            {
                let state_ref = session.ctx.state_ref();
                let mut state = state_ref.write();
                *state.config_mut().options_mut() = session.initial_options().clone();
            }
            let mut reported = vec![];
            for s in Setting::ALL.iter().filter(|s| !s.fixed) {
                if let Some(change) = apply_set(session, s.name, None)? {
                    reported.push(change);
                }
            }
            Ok(reported)
        }
    }
}

/// Whether a configuration key names a credential, whose value is never shown.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "token",
        "password",
        "secret",
        "api_key",
        "apikey",
        "credential",
    ]
    .iter()
    .any(|w| k.contains(w))
}

const MASK: &str = "********";

/// Rows for `SHOW name`: column name and value.
///
/// # Errors
/// `42704` for an unknown setting.
pub fn show(session: &Session, name: &str) -> Result<(String, Option<String>), ServerError> {
    if name.contains('.') {
        let key = name.to_ascii_lowercase();
        let options = session.ctx.state().config_options().clone();
        let entry = option_entries(&options)
            .into_iter()
            .find(|e| e.key == key)
            .ok_or_else(|| unknown_setting(name))?;
        let value = if is_secret_key(&key) {
            entry.value.map(|_| MASK.to_owned())
        } else {
            entry.value
        };
        return Ok((key, value));
    }
    let setting = Setting::find(name).ok_or_else(|| unknown_setting(name))?;
    let value = session.setting(setting.name).unwrap_or_default();
    let value = match setting.name {
        "statement_timeout" | "lock_timeout" | "idle_in_transaction_session_timeout" => {
            show_millis(&value)
        }
        _ => value,
    };
    Ok((setting.name.to_owned(), Some(value)))
}

/// Rows for `SHOW ALL`: name, setting, description.
pub fn show_all(session: &Session) -> Vec<[Option<String>; 3]> {
    let mut rows: Vec<[Option<String>; 3]> = Setting::ALL
        .iter()
        .map(|s| {
            let (_, value) = show(session, s.name).unwrap_or((String::new(), None));
            [
                Some(s.name.to_owned()),
                value,
                Some(s.description.to_owned()),
            ]
        })
        .collect();
    let options = session.ctx.state().config_options().clone();
    for entry in option_entries(&options) {
        let value = if is_secret_key(&entry.key) {
            entry.value.map(|_| MASK.to_owned())
        } else {
            entry.value
        };
        rows.push([Some(entry.key), value, Some(entry.description.to_owned())]);
    }
    rows
}

/// The CommandComplete tag for a statement DataFusion ran that returns no
/// rows (DDL and the like).
pub fn command_tag(stmt: &Statement) -> String {
    match stmt {
        Statement::CreateTable(_) => "CREATE TABLE".to_owned(),
        Statement::CreateView(_) => "CREATE VIEW".to_owned(),
        Statement::CreateSchema { .. } => "CREATE SCHEMA".to_owned(),
        Statement::CreateDatabase { .. } => "CREATE DATABASE".to_owned(),
        Statement::CreateFunction(_) => "CREATE FUNCTION".to_owned(),
        Statement::Drop { object_type, .. } => format!("DROP {object_type}"),
        Statement::Insert(_) => "INSERT".to_owned(),
        Statement::Update(_) => "UPDATE".to_owned(),
        Statement::Delete(_) => "DELETE".to_owned(),
        Statement::Explain { .. } => "EXPLAIN".to_owned(),
        Statement::Query(_) => "SELECT".to_owned(),
        other => other
            .to_string()
            .split_whitespace()
            .next()
            .unwrap_or("OK")
            .to_ascii_uppercase(),
    }
}

/// Names unnamed result columns the way PostgreSQL does: `count` instead of
/// `count(*)`, `?column?` for other expressions, the function name for
/// function calls. Only the outermost SELECT list is touched, and a name is
/// only given when it stays unique, because DataFusion refuses duplicate
/// column names where PostgreSQL allows them.
pub fn name_columns(stmt: &mut Statement) {
    if let Statement::Query(query) = stmt {
        name_body(&mut query.body);
    }
}

fn name_body(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => name_items(&mut select.projection),
        SetExpr::SetOperation { left, .. } => name_body(left),
        SetExpr::Query(query) => name_body(&mut query.body),
        _ => {}
    }
}

fn name_items(items: &mut [SelectItem]) {
    let mut taken: HashSet<String> = items
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
            SelectItem::UnnamedExpr(Expr::Identifier(i)) => Some(i.value.clone()),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => {
                parts.last().map(|i| i.value.clone())
            }
            _ => None,
        })
        .collect();
    for item in items.iter_mut() {
        let SelectItem::UnnamedExpr(expr) = item else {
            continue;
        };
        if matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
            continue;
        }
        let name = pg_column_name(expr);
        if !taken.insert(name.clone()) {
            continue;
        }
        let expr = std::mem::replace(expr, Expr::Value(Value::Null.into()));
        *item = SelectItem::ExprWithAlias {
            expr,
            alias: Ident::with_quote('"', name),
        };
    }
}

/// Types the integer literals of the outermost SELECT list as PostgreSQL
/// does: `integer` when the value fits, `bigint` otherwise (DataFusion
/// makes every integer literal `bigint`). Drivers that map result types to
/// their own (node-postgres reads `bigint` as a string) then see `SELECT 1`
/// as the number 1. Literals inside expressions keep DataFusion's typing.
/// Run after [`name_columns`], which names such columns `?column?`.
pub fn type_integer_literals(stmt: &mut Statement) {
    if let Statement::Query(query) = stmt {
        integer_literals_of(&mut query.body);
    }
}

fn integer_literals_of(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => {
            for item in select.projection.iter_mut() {
                let expr = match item {
                    SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => expr,
                    _ => continue,
                };
                let number = |e: &Expr| match e {
                    Expr::Value(v) => match &v.value {
                        Value::Number(n, _) => Some(n.clone()),
                        _ => None,
                    },
                    _ => None,
                };
                let text = match &*expr {
                    Expr::UnaryOp {
                        op: ast::UnaryOperator::Minus,
                        expr,
                    } => number(expr).map(|n| format!("-{n}")),
                    other => number(other),
                };
                let fits = text.is_some_and(|n| n.parse::<i32>().is_ok());
                if fits {
                    let literal = std::mem::replace(expr, Expr::Value(Value::Null.into()));
                    *expr = Expr::Cast {
                        kind: ast::CastKind::Cast,
                        expr: Box::new(literal),
                        data_type: ast::DataType::Integer(None),
                        array: false,
                        format: None,
                    };
                }
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            integer_literals_of(left);
            integer_literals_of(right);
        }
        SetExpr::Query(query) => integer_literals_of(&mut query.body),
        _ => {}
    }
}

/// The column name PostgreSQL gives an unnamed select-list expression.
fn pg_column_name(expr: &Expr) -> String {
    match expr {
        Expr::Identifier(i) => i.value.clone(),
        Expr::CompoundIdentifier(parts) => parts
            .last()
            .map(|i| i.value.clone())
            .unwrap_or_else(|| "?column?".to_owned()),
        Expr::Function(f) => f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(|i| i.value.to_ascii_lowercase())
            .unwrap_or_else(|| "?column?".to_owned()),
        Expr::Nested(inner) => pg_column_name(inner),
        Expr::Cast {
            expr, data_type, ..
        } => match pg_column_name(expr).as_str() {
            "?column?" => pg_type_name(&data_type.to_string()),
            name => name.to_owned(),
        },
        Expr::Case { .. } => "case".to_owned(),
        Expr::Exists { .. } => "exists".to_owned(),
        Expr::Array(_) => "array".to_owned(),
        _ => "?column?".to_owned(),
    }
}

fn pg_type_name(sql_type: &str) -> String {
    let lower = sql_type.to_ascii_lowercase();
    let base = lower.split('(').next().unwrap_or(&lower).trim();
    match base {
        "int" | "integer" | "int4" => "int4",
        "bigint" | "int8" => "int8",
        "smallint" | "int2" => "int2",
        "boolean" | "bool" => "bool",
        "real" | "float4" => "float4",
        "double precision" | "double" | "float8" | "float" => "float8",
        "decimal" | "numeric" => "numeric",
        "character varying" | "varchar" => "varchar",
        "timestamp with time zone" | "timestamptz" => "timestamptz",
        "timestamp" | "timestamp without time zone" => "timestamp",
        other => other,
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use datafusion_pg_catalog::sql::PostgresCompatibilityParser;

    use super::*;

    fn parse(sql: &str) -> Statement {
        PostgresCompatibilityParser::new()
            .parse(sql)
            .expect("test SQL parses")
            .remove(0)
    }

    #[test]
    fn columns_get_postgres_names() {
        let mut stmt =
            parse("SELECT count(*), 1 + 1, max(a), a, x::int, 'y'::integer, b AS c FROM t");
        name_columns(&mut stmt);
        let text = stmt.to_string();
        assert!(text.contains("count(*) AS \"count\""), "{text}");
        assert!(text.contains("1 + 1 AS \"?column?\""), "{text}");
        assert!(text.contains("max(a) AS \"max\""), "{text}");
        assert!(text.contains("AS \"x\""), "{text}");
        assert!(text.contains("AS \"int4\""), "{text}");
        assert!(text.contains("b AS c"), "{text}");
    }

    #[test]
    fn small_integer_literals_are_integers() {
        let mut stmt = parse("SELECT 1, 3000000000 AS big, 2 + 3 AS sum UNION SELECT -4, 5, 6");
        name_columns(&mut stmt);
        type_integer_literals(&mut stmt);
        assert_eq!(
            stmt.to_string(),
            "SELECT CAST(1 AS INTEGER) AS \"?column?\", 3000000000 AS big, 2 + 3 AS sum \
             UNION SELECT CAST(-4 AS INTEGER), CAST(5 AS INTEGER), CAST(6 AS INTEGER)"
        );
    }

    #[test]
    fn duplicate_names_are_left_to_datafusion() {
        let mut stmt = parse("SELECT 1, 2");
        name_columns(&mut stmt);
        let text = stmt.to_string();
        assert_eq!(text.matches("?column?").count(), 1, "{text}");
    }

    #[test]
    fn routes_utilities() {
        assert!(matches!(
            route(&parse("SET statement_timeout = '5s'")).unwrap(),
            Route::Utility(Utility::Set { ref name, value: Some(ref v) })
                if name == "statement_timeout" && v == "5s"
        ));
        assert!(matches!(
            route(&parse("SET TIME ZONE 'Europe/Berlin'")).unwrap(),
            Route::Utility(Utility::Set { ref name, .. }) if name == "TimeZone"
        ));
        assert!(matches!(
            route(&parse("SHOW TIME ZONE")).unwrap(),
            Route::Utility(Utility::Show(ref n)) if n == "TimeZone"
        ));
        assert!(matches!(
            route(&parse("FETCH 5 FROM c")).unwrap(),
            Route::Utility(Utility::Fetch { count: Some(5), .. })
        ));
        assert!(matches!(route(&parse("SELECT 1")).unwrap(), Route::Plan));
        assert!(matches!(
            route(&parse("EXPLAIN DELETE FROM t")).unwrap(),
            Route::Plan
        ));
        let err = route(&parse("EXPLAIN ANALYZE DELETE FROM t")).unwrap_err();
        assert!(matches!(err, ServerError::Sql(ref e) if e.code == "0A000"));
    }

    #[test]
    fn client_encoding_accepts_quoted_spellings() {
        let setting = Setting::ALL
            .iter()
            .find(|s| s.name == "client_encoding")
            .expect("client_encoding is a known setting");
        for value in ["UTF8", "utf-8", "'utf-8'", "unicode"] {
            assert_eq!(
                normalize(setting, value).ok().as_deref(),
                Some("UTF8"),
                "{value}"
            );
        }
        assert!(normalize(setting, "LATIN1").is_err());
    }

    #[test]
    fn durations_parse_like_postgres() {
        assert_eq!(parse_millis("5000"), Some(5000));
        assert_eq!(parse_millis("5s"), Some(5000));
        assert_eq!(parse_millis("2min"), Some(120_000));
        assert_eq!(parse_millis("soon"), None);
        assert_eq!(show_millis("5000"), "5s");
        assert_eq!(show_millis("250"), "250ms");
    }

    #[test]
    fn secrets_are_recognised() {
        assert!(is_secret_key("productive.api_token"));
        assert!(!is_secret_key("productive.page_size"));
    }
}
