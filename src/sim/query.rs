//! The query string of a list request: filters, sort, include and paging.
//!
//! [`parse_list`] turns the decoded `key=value` pairs into a [`ListQuery`]
//! checked against the resource's catalog entry (unknown filters, operators,
//! sort keys and includes are refused with the API's 400 codes), and
//! [`FilterExpr::matches`] / [`sort_records`] apply it to records borrowed
//! from the [`Store`], so a list never copies the table it reads.
//!
//! Semantics, where the API leaves them open (fact sheet §5, §6, §16):
//! - A filter maps to the attribute whose `filter_name` is the filter's name,
//!   else the attribute of that name, else the relationship whose
//!   `filter_name` it is, else the relationship `<name>_id`. A foreign key
//!   that is also an attribute (`parent_company_id`) reads the relationship
//!   when the attribute is null. A few filters
//!   are computed (see [`rules::derived_filter`]): `status`, `approval_status`,
//!   `type` on deals, `archived`. `query`, `full_query`, `jump_query` and
//!   `query_extended` match the record's name case-insensitively.
//! - `after` / `before` bound the resource's main date: the
//!   `started_on`..`ended_on` span where it has those (a booking matches
//!   when it overlaps the bound), else `date`, else `created_at`.
//!   `<field>_after` / `<field>_before` bound `<field>`, `<field>_at`,
//!   `<field>_on` or `<field>_date`, whichever is a date or timestamp.
//!   Bounds are inclusive and compare the calendar date of timestamps (our
//!   assumption).
//! - Without an operator, text filters (catalog kind `text`/`text_search`)
//!   match a case-insensitive substring, as the live `filter[title]=` does;
//!   every other filter is `eq`. Comma-separated values (except on text
//!   filters) and repeated `[]` values mean "any of"; `not_eq` /
//!   `not_contain` mean "none of". Ids compare as text, numbers numerically,
//!   and a date value against a timestamp compares its calendar date.
//! - Catalog filters without a derivable meaning are accepted and ignored.
//!   On the served resources these are the `special` and `unknown` kinds
//!   (`fuzzy_dates`, `fuzzy_people`, `date_range`, `due_date_new`, ...),
//!   `tags` where no attribute carries it, and filters that need a join the
//!   simulator does not model, such as `project_id` on people,
//!   `subscriber_id`, `person_type`, `project_type`, `stage_status_id`,
//!   `sales_status_id`, `invoice_status`, `bookings_after`, `bookable_*`.
//! - Filters the API answers through relationships are followed through
//!   the store ([`JOIN_FILTERS`]): `project_id`, `budget_id` and
//!   `company_id` on time entries, bookings and services (service → budget
//!   → project / company), `deal_id` on time entries, `project_id` and
//!   `company_id` on expenses (their budget, or their service's),
//!   `project_id` on comments (their own project, or their task's or
//!   deal's), `company_id` on tasks (their project's). A record whose chain
//!   breaks (no service, a budget without a project) matches no id.
//! - Sort keys map to the attribute whose `sort_name` matches, else the
//!   attribute of that name (or `<key>_at`), else `id`; `<rel>_name` and a
//!   bare `<rel>` sort by the related record's name, `<rel>_position` by its
//!   `position`, `name` by the record's own display name. Keys the catalog
//!   lists that none of these rules resolve (`custom_fields`,
//!   `budgets_first`, `company_name` on tasks, ...) are accepted and leave
//!   the order to the tie-breaker. Text sorts ignore case; nulls sort last
//!   ascending and first descending, as in PostgreSQL; ties are broken by id
//!   so pages are stable.

use std::borrow::Cow;
use std::cmp::Ordering;

use percent_encoding::percent_decode_str;
use serde_json::Value;

use crate::catalog::{Cardinality, FilterKind, JsonType, Resource};
use crate::sim::error::ApiError;
use crate::sim::rules::{self, Derived};
use crate::sim::store::{Link, Record, Store};

/// `page[size]` when the request gives none.
pub const DEFAULT_PAGE_SIZE: u64 = 30;
/// The largest page; bigger requests are clamped to it (quirk 6).
pub const MAX_PAGE_SIZE: u64 = 200;

/// Decodes a raw query string into `(key, value)` pairs, in request order.
/// `+` is a space, as in HTML forms and Rails.
pub fn decode_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            (decode_component(key), decode_component(value))
        })
        .collect()
}

fn decode_component(text: &str) -> String {
    let spaced = text.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

/// Splits `filter[0][status][eq][]` into `filter`, `0`, `status`, `eq`.
/// Empty `[]` segments only mark a list value and are dropped.
fn key_segments(key: &str) -> Vec<String> {
    let Some(open) = key.find('[') else {
        return vec![key.to_string()];
    };
    let mut segments = vec![key[..open].to_string()];
    let mut rest = &key[open..];
    while let Some(inner) = rest.strip_prefix('[') {
        let Some(close) = inner.find(']') else {
            // Not bracket syntax after all: keep the key whole.
            return vec![key.to_string()];
        };
        if close > 0 {
            segments.push(inner[..close].to_string());
        }
        rest = &inner[close + 1..];
    }
    segments
}

/// Nested parameters, as Rails builds them from bracketed keys.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Leaf(Vec<String>),
    Map(Vec<(String, Node)>),
}

impl Node {
    fn insert(&mut self, path: &[String], value: String) {
        let Some((head, rest)) = path.split_first() else {
            match self {
                Node::Leaf(values) => values.push(value),
                // `filter[x]=1&filter[x][eq]=2`: a bare value is an `eq`.
                Node::Map(_) => self.insert(&["eq".to_string()], value),
            }
            return;
        };
        if let Node::Leaf(values) = self {
            let values = std::mem::take(values);
            *self = if values.is_empty() {
                Node::Map(Vec::new())
            } else {
                Node::Map(vec![("eq".to_string(), Node::Leaf(values))])
            };
        }
        let Node::Map(entries) = self else {
            unreachable!("a leaf was just turned into a map")
        };
        let index = match entries.iter().position(|(k, _)| k == head) {
            Some(i) => i,
            None => {
                entries.push((head.clone(), Node::Leaf(Vec::new())));
                entries.len() - 1
            }
        };
        entries[index].1.insert(rest, value);
    }

    fn values(&self) -> Vec<String> {
        match self {
            Node::Leaf(values) => values.clone(),
            Node::Map(entries) => entries.iter().flat_map(|(_, n)| n.values()).collect(),
        }
    }
}

/// A filter operator (fact sheet §5): the same vocabulary the client sends.
pub use crate::api::request::FilterOp as Op;

/// Whether an ordering operator holds for `actual` compared with the value.
fn accepts(op: Op, ordering: Ordering) -> bool {
    match op {
        Op::Gt => ordering == Ordering::Greater,
        Op::GtEq => ordering != Ordering::Less,
        Op::Lt => ordering == Ordering::Less,
        Op::LtEq => ordering != Ordering::Greater,
        _ => false,
    }
}

/// Which side of a date bound a filter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    After,
    Before,
}

/// What a filter reads from a record.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Id,
    Attribute(&'static str),
    Relationship(&'static str),
    Derived(Derived),
    /// Text search in the record's display name.
    Query,
    /// An inclusive bound on the calendar date of an attribute.
    DateBound {
        attribute: &'static str,
        bound: Bound,
    },
    /// A bound on a `started_on`..`ended_on` span: matches on overlap.
    SpanBound(Bound),
    /// One custom field's value, by field id.
    CustomField(String),
    /// Ids reached by following chains of relationships (see
    /// [`JOIN_FILTERS`]); a record matches on any of them.
    Joined(&'static [&'static [&'static str]]),
    /// A catalog filter the simulator cannot evaluate: always true.
    Ignored,
}

/// Filters the API answers by following relationships the record does not
/// carry itself: `(resource type, filter, relationship paths)`. Projects and
/// companies are reached through the budget (a deal) of a service; a budget
/// id is the id of that deal.
pub const JOIN_FILTERS: &[(&str, &str, &[&[&str]])] = &[
    (
        "time_entries",
        "project_id",
        &[&["service", "deal", "project"]],
    ),
    ("time_entries", "budget_id", &[&["service", "deal"]]),
    ("time_entries", "deal_id", &[&["service", "deal"]]),
    (
        "time_entries",
        "company_id",
        &[&["service", "deal", "company"]],
    ),
    ("bookings", "project_id", &[&["service", "deal", "project"]]),
    ("bookings", "budget_id", &[&["service", "deal"]]),
    ("bookings", "company_id", &[&["service", "deal", "company"]]),
    (
        "expenses",
        "project_id",
        &[&["deal", "project"], &["service", "deal", "project"]],
    ),
    (
        "expenses",
        "company_id",
        &[&["deal", "company"], &["service", "deal", "company"]],
    ),
    ("services", "project_id", &[&["deal", "project"]]),
    ("services", "budget_id", &[&["deal"]]),
    ("services", "company_id", &[&["deal", "company"]]),
    (
        "comments",
        "project_id",
        &[&["project"], &["task", "project"], &["deal", "project"]],
    ),
    ("tasks", "company_id", &[&["project", "company"]]),
];

/// One comparison of a filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Test {
    pub target: Target,
    pub op: Op,
    pub values: Vec<String>,
}

/// A compiled `filter[...]` tree.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterExpr {
    All(Vec<FilterExpr>),
    Any(Vec<FilterExpr>),
    Test(Test),
}

/// What a record is compared in: its resource and the store (for names of
/// related records).
#[derive(Clone, Copy)]
pub struct EvalContext<'a> {
    pub resource: &'static Resource,
    pub store: &'a Store,
}

impl FilterExpr {
    /// The filter that keeps every record.
    pub fn everything() -> FilterExpr {
        FilterExpr::All(Vec::new())
    }

    /// Whether the filter keeps every record without looking at it.
    pub fn is_everything(&self) -> bool {
        matches!(self, FilterExpr::All(parts) if parts.iter().all(FilterExpr::is_everything))
    }

    /// Whether `record` passes the filter.
    pub fn matches(&self, ctx: EvalContext<'_>, record: &Record) -> bool {
        match self {
            FilterExpr::All(parts) => parts.iter().all(|p| p.matches(ctx, record)),
            FilterExpr::Any(parts) => parts.iter().any(|p| p.matches(ctx, record)),
            FilterExpr::Test(test) => test.matches(ctx, record),
        }
    }
}

/// A scalar read from a record, compared with a filter value.
#[derive(Debug, Clone, PartialEq)]
enum Scalar<'a> {
    Text(Cow<'a, str>),
    Num(f64),
    Bool(bool),
}

impl Scalar<'_> {
    fn as_text(&self) -> Cow<'_, str> {
        match self {
            Scalar::Text(t) => Cow::Borrowed(t.as_ref()),
            Scalar::Num(n) => Cow::Owned(format_number(*n)),
            Scalar::Bool(b) => Cow::Owned(b.to_string()),
        }
    }
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

/// The scalars of a JSON value: none for null and objects, one per element
/// for arrays.
fn scalars(value: &Value) -> Vec<Scalar<'_>> {
    match value {
        Value::String(s) => vec![Scalar::Text(Cow::Borrowed(s))],
        Value::Number(n) => n.as_f64().map(Scalar::Num).into_iter().collect(),
        Value::Bool(b) => vec![Scalar::Bool(*b)],
        Value::Array(items) => items
            .iter()
            .flat_map(|item| match item {
                Value::Array(_) => Vec::new(),
                other => scalars(other),
            })
            .collect(),
        Value::Null | Value::Object(_) => Vec::new(),
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "1" | "t" => Some(true),
        "false" | "0" | "f" => Some(false),
        _ => None,
    }
}

fn equals(actual: &Scalar<'_>, value: &str) -> bool {
    match actual {
        Scalar::Num(n) => value.trim().parse::<f64>().is_ok_and(|v| v == *n),
        Scalar::Bool(b) => parse_bool(value) == Some(*b),
        Scalar::Text(text) => {
            text.as_ref() == value
                || (rules::is_date(value) && rules::date_part(text) == Some(value))
        }
    }
}

fn contains(actual: &Scalar<'_>, value: &str) -> bool {
    actual
        .as_text()
        .to_lowercase()
        .contains(&value.to_lowercase())
}

fn compare(actual: &Scalar<'_>, value: &str) -> Option<Ordering> {
    match actual {
        Scalar::Num(n) => n.partial_cmp(&value.trim().parse::<f64>().ok()?),
        Scalar::Bool(_) => None,
        Scalar::Text(text) => {
            if rules::is_date(value) {
                return rules::date_part(text).map(|d| d.cmp(value));
            }
            match (text.parse::<f64>(), value.parse::<f64>()) {
                (Ok(a), Ok(b)) => a.partial_cmp(&b),
                _ => Some(text.as_ref().cmp(value)),
            }
        }
    }
}

fn apply_op(op: Op, actual: &[Scalar<'_>], values: &[String]) -> bool {
    let any = |f: &dyn Fn(&Scalar<'_>, &str) -> bool| {
        actual.iter().any(|a| values.iter().any(|v| f(a, v)))
    };
    match op {
        Op::Eq => any(&equals),
        Op::NotEq => !any(&equals),
        Op::Contains => any(&contains),
        Op::NotContain => !any(&contains),
        Op::Gt | Op::GtEq | Op::Lt | Op::LtEq => {
            any(&|a, v| compare(a, v).is_some_and(|o| accepts(op, o)))
        }
    }
}

fn link_scalars(record: &Record, relationship: &str) -> Vec<Scalar<'static>> {
    match record.relationships.get(relationship) {
        Some(Link::One(Some(r))) => vec![Scalar::Text(Cow::Owned(r.id.to_string()))],
        Some(Link::Many(refs)) => refs
            .iter()
            .map(|r| Scalar::Text(Cow::Owned(r.id.to_string())))
            .collect(),
        _ => Vec::new(),
    }
}

/// The ids at the ends of `paths`, each followed from `record` one
/// to-one relationship at a time through the store.
fn joined_ids(store: &Store, record: &Record, paths: &[&[&str]]) -> Vec<u64> {
    let mut ids = Vec::new();
    for path in paths {
        let mut current = record;
        let mut reached = None;
        for (i, relationship) in path.iter().enumerate() {
            let Some(Link::One(Some(next))) = current.relationships.get(*relationship) else {
                reached = None;
                break;
            };
            if i + 1 == path.len() {
                reached = Some(next.id);
            } else if let Some(found) = store.get(&next.kind, next.id) {
                current = found;
            } else {
                reached = None;
                break;
            }
        }
        if let Some(id) = reached
            && !ids.contains(&id)
        {
            ids.push(id);
        }
    }
    ids
}

fn date_within(record: &Record, attribute: &str, bound: Bound, value: &str) -> bool {
    let Some(date) = record
        .attributes
        .get(attribute)
        .and_then(Value::as_str)
        .and_then(rules::date_part)
    else {
        return false;
    };
    match bound {
        Bound::After => date >= value,
        Bound::Before => date <= value,
    }
}

impl Test {
    fn matches(&self, ctx: EvalContext<'_>, record: &Record) -> bool {
        let attribute = |name: &str| record.attributes.get(name).unwrap_or(&Value::Null);
        match &self.target {
            Target::Ignored => true,
            Target::Joined(paths) => {
                let ids = joined_ids(ctx.store, record, paths);
                let actual: Vec<Scalar<'_>> = ids
                    .iter()
                    .map(|id| Scalar::Text(Cow::Owned(id.to_string())))
                    .collect();
                apply_op(self.op, &actual, &self.values)
            }
            Target::Id => {
                let id = Scalar::Text(Cow::Owned(record.id.to_string()));
                apply_op(self.op, &[id], &self.values)
            }
            Target::Attribute(name) => {
                let mut actual = scalars(attribute(name));
                // Foreign keys that are also attributes (`parent_company_id`)
                // fall back to the relationship when the attribute is unset.
                if actual.is_empty()
                    && let Some(stem) = name.strip_suffix("_id")
                {
                    actual = link_scalars(record, stem);
                }
                apply_op(self.op, &actual, &self.values)
            }
            Target::Relationship(name) => {
                apply_op(self.op, &link_scalars(record, name), &self.values)
            }
            Target::Derived(derived) => {
                let value = rules::derived_value(ctx.resource, *derived, record);
                apply_op(self.op, &scalars(&value), &self.values)
            }
            Target::Query => {
                let name = rules::display_name(record).unwrap_or_default();
                let op = match self.op {
                    Op::Eq => Op::Contains,
                    other => other,
                };
                apply_op(op, &[Scalar::Text(Cow::Owned(name))], &self.values)
            }
            Target::DateBound { attribute, bound } => self
                .values
                .first()
                .is_some_and(|v| date_within(record, attribute, *bound, v)),
            Target::SpanBound(bound) => self.values.first().is_some_and(|v| {
                // A span overlaps "after v" when it ends on or after v.
                let edge = match bound {
                    Bound::After => "ended_on",
                    Bound::Before => "started_on",
                };
                date_within(record, edge, *bound, v)
            }),
            Target::CustomField(field) => {
                let value = attribute("custom_fields")
                    .get(field.as_str())
                    .unwrap_or(&Value::Null);
                apply_op(self.op, &scalars(value), &self.values)
            }
        }
    }
}

/// Where one sort key reads its value.
#[derive(Debug, Clone, PartialEq)]
pub enum SortSource {
    Id,
    Attribute(&'static str, JsonType),
    RelatedName(&'static str),
    RelatedPosition(&'static str),
    DisplayName,
    /// A catalog sort key no rule resolves: leaves the order to the id.
    Unordered,
}

/// One `sort=` key.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub source: SortSource,
    pub descending: bool,
}

/// A parsed and checked list request.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub filter: FilterExpr,
    pub sort: Vec<SortKey>,
    pub include: Vec<String>,
    /// 1-based.
    pub page_number: u64,
    /// Already clamped to [`MAX_PAGE_SIZE`].
    pub page_size: u64,
}

/// Parses the query of `GET <endpoint>` for `resource`.
///
/// # Errors
/// 400 errors for filters, operators, sort keys and includes the catalog
/// does not list for the resource.
pub fn parse_list(
    resource: &'static Resource,
    pairs: &[(String, String)],
) -> Result<ListQuery, ApiError> {
    let mut filter_tree = Node::Map(Vec::new());
    let mut sort = Vec::new();
    let mut page_number = 1;
    let mut page_size = DEFAULT_PAGE_SIZE;
    for (key, value) in pairs {
        let segments = key_segments(key);
        match segments[0].as_str() {
            "filter" if segments.len() > 1 => filter_tree.insert(&segments[1..], value.clone()),
            "sort" => sort = compile_sort(resource, value)?,
            "page" if segments.len() == 2 => {
                let parsed = value.trim().parse::<u64>().ok().filter(|n| *n > 0);
                match segments[1].as_str() {
                    "number" => page_number = parsed.unwrap_or(1),
                    "size" => page_size = parsed.unwrap_or(DEFAULT_PAGE_SIZE).min(MAX_PAGE_SIZE),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let filter = match &filter_tree {
        Node::Map(entries) => compile_group(resource, entries)?,
        Node::Leaf(_) => FilterExpr::everything(),
    };
    Ok(ListQuery {
        filter,
        sort,
        include: parse_include(resource, pairs)?,
        page_number,
        page_size,
    })
}

/// The checked `include=` names of a request.
///
/// # Errors
/// `unsupported_include` for a name the catalog does not list.
pub fn parse_include(
    resource: &Resource,
    pairs: &[(String, String)],
) -> Result<Vec<String>, ApiError> {
    let mut names: Vec<String> = Vec::new();
    for (_, value) in pairs.iter().filter(|(k, _)| k == "include") {
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if !resource.has_include(name) {
                return Err(ApiError::UnsupportedInclude(name.to_string()));
            }
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
    }
    Ok(names)
}

fn compile_group(
    resource: &'static Resource,
    entries: &[(String, Node)],
) -> Result<FilterExpr, ApiError> {
    let mut any = false;
    let mut parts = Vec::new();
    for (key, node) in entries {
        if key == "$op" {
            any = node.values().first().is_some_and(|op| op == "or");
        } else if key.chars().all(|c| c.is_ascii_digit()) {
            if let Node::Map(inner) = node {
                parts.push(compile_group(resource, inner)?);
            }
        } else {
            parts.push(compile_condition(resource, key, node)?);
        }
    }
    Ok(if any && !parts.is_empty() {
        FilterExpr::Any(parts)
    } else {
        FilterExpr::All(parts)
    })
}

fn compile_condition(
    resource: &'static Resource,
    name: &str,
    node: &Node,
) -> Result<FilterExpr, ApiError> {
    let filter = resource
        .filter(name)
        .ok_or_else(|| ApiError::UnsupportedFilter(name.to_string()))?;
    if filter.kind == FilterKind::CustomFields {
        let Node::Map(fields) = node else {
            return Ok(FilterExpr::everything());
        };
        let parts = fields
            .iter()
            .map(|(field, node)| {
                compile_tests(name, Target::CustomField(field.clone()), Op::Eq, true, node)
            })
            .collect::<Result<_, _>>()?;
        return Ok(FilterExpr::All(parts));
    }
    let target = compile_target(resource, &filter.name);
    let text =
        matches!(filter.kind, FilterKind::Text | FilterKind::TextSearch) || target == Target::Query;
    let implicit = if text { Op::Contains } else { Op::Eq };
    compile_tests(name, target, implicit, !text, node)
}

fn compile_tests(
    name: &str,
    target: Target,
    implicit: Op,
    split_commas: bool,
    node: &Node,
) -> Result<FilterExpr, ApiError> {
    let values = |node: &Node| -> Vec<String> {
        let raw = node.values();
        if split_commas {
            raw.iter()
                .flat_map(|v| v.split(','))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect()
        } else {
            raw
        }
    };
    match node {
        Node::Leaf(_) => Ok(FilterExpr::Test(Test {
            target,
            op: implicit,
            values: values(node),
        })),
        Node::Map(ops) => {
            let tests = ops
                .iter()
                .map(|(op, node)| {
                    let op = Op::parse(op).ok_or_else(|| ApiError::UnsupportedFilterOperation {
                        filter: name.to_string(),
                        op: op.clone(),
                    })?;
                    Ok(FilterExpr::Test(Test {
                        target: target.clone(),
                        op,
                        values: values(node),
                    }))
                })
                .collect::<Result<_, ApiError>>()?;
            Ok(FilterExpr::All(tests))
        }
    }
}

/// What the catalog filter `name` reads on `resource`.
pub fn compile_target(resource: &'static Resource, name: &str) -> Target {
    if let Some(derived) = rules::derived_filter(resource, name) {
        return Target::Derived(derived);
    }
    if name == "id" {
        return Target::Id;
    }
    if let Some((_, _, paths)) = JOIN_FILTERS
        .iter()
        .find(|(kind, filter, _)| *kind == resource.json_api_type && *filter == name)
    {
        return Target::Joined(paths);
    }
    if rules::QUERY_FILTERS.contains(&name) {
        return Target::Query;
    }
    let attributes = &resource.attributes;
    if let Some(a) = attributes
        .iter()
        .find(|a| a.filter_name.as_deref() == Some(name))
        .or_else(|| attributes.iter().find(|a| a.name == name))
    {
        return Target::Attribute(&a.name);
    }
    let relationships = &resource.relationships;
    if let Some(r) = relationships
        .iter()
        .find(|r| r.filter_name.as_deref() == Some(name))
        .or_else(|| {
            relationships
                .iter()
                .find(|r| name.strip_suffix("_id") == Some(r.name.as_str()))
        })
    {
        return Target::Relationship(&r.name);
    }
    date_bound_target(resource, name).unwrap_or(Target::Ignored)
}

fn date_bound_target(resource: &'static Resource, name: &str) -> Option<Target> {
    let (stem, bound) = match name {
        "after" => (None, Bound::After),
        "before" => (None, Bound::Before),
        _ => {
            if let Some(stem) = name.strip_suffix("_after") {
                (Some(stem), Bound::After)
            } else {
                (Some(name.strip_suffix("_before")?), Bound::Before)
            }
        }
    };
    let attribute = |n: &str| {
        resource
            .attribute(n)
            .filter(|a| {
                matches!(
                    a.json_type,
                    JsonType::DateString | JsonType::TimestampString
                )
            })
            .map(|a| a.name.as_str())
    };
    let found = match stem {
        Some(stem) => [
            stem.to_string(),
            format!("{stem}_at"),
            format!("{stem}_on"),
            format!("{stem}_date"),
        ]
        .iter()
        .find_map(|n| attribute(n)),
        None => {
            if attribute("started_on").is_some() && attribute("ended_on").is_some() {
                return Some(Target::SpanBound(bound));
            }
            attribute("date").or_else(|| attribute("created_at"))
        }
    }?;
    Some(Target::DateBound {
        attribute: found,
        bound,
    })
}

/// Parses `sort=a,-b` for `resource`.
///
/// # Errors
/// `sort_param_unsupported` for a key the catalog does not list.
pub fn compile_sort(resource: &'static Resource, param: &str) -> Result<Vec<SortKey>, ApiError> {
    param
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|raw| {
            let (key, descending) = match raw.strip_prefix('-') {
                Some(key) => (key, true),
                None => (raw, false),
            };
            if !resource.has_sort(key) {
                return Err(ApiError::UnsupportedSort(key.to_string()));
            }
            Ok(SortKey {
                source: sort_source(resource, key),
                descending,
            })
        })
        .collect()
}

fn sort_source(resource: &'static Resource, key: &str) -> SortSource {
    let attributes = &resource.attributes;
    let attribute = attributes
        .iter()
        .find(|a| a.sort_name.as_deref() == Some(key))
        .or_else(|| attributes.iter().find(|a| a.name == key))
        .or_else(|| attributes.iter().find(|a| a.name == format!("{key}_at")));
    if let Some(a) = attribute {
        return if a.name == "id" {
            SortSource::Id
        } else {
            SortSource::Attribute(&a.name, a.json_type)
        };
    }
    if key == "id" {
        return SortSource::Id;
    }
    let to_one = |name: &str| {
        resource
            .relationships
            .iter()
            .find(|r| r.name == name && r.cardinality == Cardinality::ToOne)
            .map(|r| r.name.as_str())
    };
    if let Some(rel) = key
        .strip_suffix("_name")
        .and_then(to_one)
        .or_else(|| to_one(key))
    {
        return SortSource::RelatedName(rel);
    }
    if let Some(rel) = key.strip_suffix("_position").and_then(to_one) {
        return SortSource::RelatedPosition(rel);
    }
    if key == "name" {
        return SortSource::DisplayName;
    }
    SortSource::Unordered
}

/// A sort value; `Null` sorts after everything before direction applies.
#[derive(Debug, Clone, PartialEq)]
enum Key {
    Bool(bool),
    Num(f64),
    Text(String),
    Null,
}

impl Key {
    fn rank(&self) -> u8 {
        match self {
            Key::Bool(_) => 0,
            Key::Num(_) => 1,
            Key::Text(_) => 2,
            Key::Null => 3,
        }
    }

    fn cmp(&self, other: &Key) -> Ordering {
        match (self, other) {
            (Key::Bool(a), Key::Bool(b)) => a.cmp(b),
            (Key::Num(a), Key::Num(b)) => a.total_cmp(b),
            (Key::Text(a), Key::Text(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }

    fn of(value: &Value, json_type: JsonType) -> Key {
        match value {
            Value::Null => Key::Null,
            Value::Bool(b) => Key::Bool(*b),
            Value::Number(n) => n.as_f64().map_or(Key::Null, Key::Num),
            Value::String(s) => match json_type {
                JsonType::DecimalString | JsonType::IdString => s
                    .parse()
                    .map_or_else(|_| Key::Text(s.to_lowercase()), Key::Num),
                _ => Key::Text(s.to_lowercase()),
            },
            other => Key::Text(other.to_string()),
        }
    }
}

fn sort_value(key: &SortKey, ctx: EvalContext<'_>, record: &Record) -> Key {
    let related = |rel: &str| {
        let target = match record.relationships.get(rel) {
            Some(Link::One(Some(r))) => r,
            _ => return None,
        };
        ctx.store.get(&target.kind, target.id)
    };
    match &key.source {
        SortSource::Id => Key::Num(record.id as f64),
        SortSource::Attribute(name, json_type) => Key::of(
            record.attributes.get(*name).unwrap_or(&Value::Null),
            *json_type,
        ),
        SortSource::RelatedName(rel) => related(rel)
            .and_then(rules::display_name)
            .map_or(Key::Null, |n| Key::Text(n.to_lowercase())),
        SortSource::RelatedPosition(rel) => related(rel)
            .and_then(|r| r.attributes.get("position"))
            .map_or(Key::Null, |v| Key::of(v, JsonType::Integer)),
        SortSource::DisplayName => {
            rules::display_name(record).map_or(Key::Null, |n| Key::Text(n.to_lowercase()))
        }
        SortSource::Unordered => Key::Null,
    }
}

/// Sorts `records` by `keys`, ties broken by id (descending when
/// `newest_first`, for the activity feed).
pub fn sort_records<'r>(
    records: Vec<&'r Record>,
    keys: &[SortKey],
    ctx: EvalContext<'_>,
    newest_first: bool,
) -> Vec<&'r Record> {
    let mut keyed: Vec<(Vec<Key>, &Record)> = records
        .into_iter()
        .map(|r| (keys.iter().map(|k| sort_value(k, ctx, r)).collect(), r))
        .collect();
    keyed.sort_by(|(a_keys, a), (b_keys, b)| {
        for ((ka, kb), spec) in a_keys.iter().zip(b_keys).zip(keys) {
            let ordering = ka.cmp(kb);
            let ordering = if spec.descending {
                ordering.reverse()
            } else {
                ordering
            };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        if newest_first {
            b.id.cmp(&a.id)
        } else {
            a.id.cmp(&b.id)
        }
    });
    keyed.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn resource(kind: &str) -> &'static Resource {
        Catalog::get().resource(kind).unwrap()
    }

    fn pairs(query: &str) -> Vec<(String, String)> {
        decode_pairs(query)
    }

    #[test]
    fn keys_split_into_segments_without_list_markers() {
        assert_eq!(
            key_segments("filter[0][status][eq][]"),
            vec!["filter", "0", "status", "eq"]
        );
        assert_eq!(key_segments("sort"), vec!["sort"]);
        assert_eq!(key_segments("odd[key"), vec!["odd[key"]);
    }

    #[test]
    fn pairs_are_percent_decoded() {
        assert_eq!(
            pairs("filter%5B%24op%5D=or&include=project%2Cassignee&q=a+b"),
            vec![
                ("filter[$op]".to_string(), "or".to_string()),
                ("include".to_string(), "project,assignee".to_string()),
                ("q".to_string(), "a b".to_string()),
            ]
        );
    }

    #[test]
    fn nested_groups_compile_to_any_of_all() {
        let q = parse_list(
            resource("projects"),
            &pairs(
                "filter[$op]=or&filter[0][status][eq][]=1\
                 &filter[1][$op]=and&filter[1][0][status][eq][]=2",
            ),
        )
        .unwrap();
        let FilterExpr::Any(groups) = q.filter else {
            panic!("expected an or group: {:?}", q.filter)
        };
        assert_eq!(groups.len(), 2);
    }

    #[test]
    fn page_size_is_clamped_and_defaults_apply() {
        let q = parse_list(resource("projects"), &pairs("page[size]=500")).unwrap();
        assert_eq!(q.page_size, MAX_PAGE_SIZE);
        assert_eq!(q.page_number, 1);
        let q = parse_list(resource("projects"), &pairs("page[number]=x")).unwrap();
        assert_eq!((q.page_number, q.page_size), (1, DEFAULT_PAGE_SIZE));
    }

    #[test]
    fn unknown_names_are_refused_with_their_codes() {
        let projects = resource("projects");
        let err = parse_list(projects, &pairs("filter[colour]=1")).unwrap_err();
        assert_eq!(err, ApiError::UnsupportedFilter("colour".into()));
        let err = parse_list(projects, &pairs("filter[name][like]=x")).unwrap_err();
        assert!(matches!(err, ApiError::UnsupportedFilterOperation { .. }));
        let err = parse_list(projects, &pairs("sort=-colour")).unwrap_err();
        assert_eq!(err, ApiError::UnsupportedSort("colour".into()));
        let err = parse_list(projects, &pairs("include=owner")).unwrap_err();
        assert_eq!(err, ApiError::UnsupportedInclude("owner".into()));
    }

    #[test]
    fn filters_map_to_attributes_relationships_and_rules() {
        let tasks = resource("tasks");
        assert_eq!(compile_target(tasks, "title"), Target::Attribute("title"));
        assert_eq!(
            compile_target(tasks, "project_id"),
            Target::Relationship("project")
        );
        assert_eq!(
            compile_target(tasks, "service_id"),
            Target::Relationship("service")
        );
        assert_eq!(
            compile_target(tasks, "status"),
            Target::Derived(Derived::Status)
        );
        assert_eq!(
            compile_target(tasks, "due_date_after"),
            Target::DateBound {
                attribute: "due_date",
                bound: Bound::After
            }
        );
        assert_eq!(
            compile_target(tasks, "closed_before"),
            Target::DateBound {
                attribute: "closed_at",
                bound: Bound::Before
            }
        );
        assert_eq!(compile_target(tasks, "fuzzy_dates"), Target::Ignored);
        let bookings = resource("bookings");
        assert_eq!(
            compile_target(bookings, "after"),
            Target::SpanBound(Bound::After)
        );
        let entries = resource("time_entries");
        assert_eq!(
            compile_target(entries, "before"),
            Target::DateBound {
                attribute: "date",
                bound: Bound::Before
            }
        );
    }

    #[test]
    fn operators_compare_by_value_kind() {
        let n = [Scalar::Num(10.0)];
        assert!(apply_op(Op::Gt, &n, &["9".into()]));
        assert!(!apply_op(Op::Lt, &n, &["9".into()]));
        assert!(apply_op(Op::GtEq, &n, &["10".into()]));
        let ts = [Scalar::Text("2025-02-01T10:00:00.000+01:00".into())];
        assert!(apply_op(Op::Eq, &ts, &["2025-02-01".into()]));
        assert!(apply_op(Op::LtEq, &ts, &["2025-02-01".into()]));
        let t = [Scalar::Text("Website Relaunch".into())];
        assert!(apply_op(Op::Contains, &t, &["relaunch".into()]));
        assert!(apply_op(Op::NotContain, &t, &["app".into()]));
        assert!(apply_op(Op::NotEq, &[], &["1".into()]));
        assert!(apply_op(Op::Eq, &[Scalar::Bool(true)], &["true".into()]));
    }

    #[test]
    fn sort_keys_resolve_through_relationships() {
        let tasks = resource("tasks");
        let keys = compile_sort(tasks, "project_name,-title").unwrap();
        assert_eq!(keys[0].source, SortSource::RelatedName("project"));
        assert!(keys[1].descending);
        assert_eq!(
            compile_sort(tasks, "workflow_status_position").unwrap()[0].source,
            SortSource::RelatedPosition("workflow_status")
        );
        assert_eq!(
            compile_sort(tasks, "company_name").unwrap()[0].source,
            SortSource::Unordered
        );
    }

    #[test]
    fn nulls_sort_last_ascending_and_first_descending() {
        let store = Store::new(1);
        let ctx = EvalContext {
            resource: resource("tasks"),
            store: &store,
        };
        let mut a = Record::new(1);
        a.attributes.insert("due_date".into(), Value::Null);
        let mut b = Record::new(2);
        b.attributes.insert("due_date".into(), "2025-01-02".into());
        let mut c = Record::new(3);
        c.attributes.insert("due_date".into(), "2025-01-01".into());
        let asc = compile_sort(ctx.resource, "due_date").unwrap();
        let ids: Vec<u64> = sort_records(vec![&a, &b, &c], &asc, ctx, false)
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, vec![3, 2, 1]);
        let desc = compile_sort(ctx.resource, "-due_date").unwrap();
        let ids: Vec<u64> = sort_records(vec![&a, &b, &c], &desc, ctx, false)
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, vec![1, 2, 3]);
    }
}
