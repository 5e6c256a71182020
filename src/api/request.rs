//! API request plans: what a scan asks the Productive API for.
//!
//! A [`ListRequest`] is plain data, built by the pushdown planner and read by
//! the client, so `EXPLAIN` can print exactly the request a scan will make.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters left as they are in a query-string component: the unreserved
/// set of RFC 3986. Everything else, `&`, `=`, `[`, `]`, `%`, `+`, `,`
/// inside a single value, quotes, spaces, newlines and non-ASCII, is
/// percent-encoded, so a value can never add a parameter or change the path.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes one query-string key or value.
pub fn encode_component(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// A filter operator of the API (`filter[name][op]=value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterOp {
    Eq,
    NotEq,
    Contains,
    NotContain,
    Gt,
    GtEq,
    Lt,
    LtEq,
}

impl FilterOp {
    /// Every operator the API documents.
    pub const ALL: [FilterOp; 8] = [
        FilterOp::Eq,
        FilterOp::NotEq,
        FilterOp::Contains,
        FilterOp::NotContain,
        FilterOp::Gt,
        FilterOp::GtEq,
        FilterOp::Lt,
        FilterOp::LtEq,
    ];

    /// The operator spelled `text` in a `filter[name][op]` key.
    pub fn parse(text: &str) -> Option<FilterOp> {
        FilterOp::ALL.into_iter().find(|op| op.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FilterOp::Eq => "eq",
            FilterOp::NotEq => "not_eq",
            FilterOp::Contains => "contains",
            FilterOp::NotContain => "not_contain",
            FilterOp::Gt => "gt",
            FilterOp::GtEq => "gt_eq",
            FilterOp::Lt => "lt",
            FilterOp::LtEq => "lt_eq",
        }
    }
}

/// One API filter condition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FilterCond {
    /// The catalog filter name, e.g. `project_id`, or a path such as
    /// `custom_fields][123` for custom-field filters (written inside the
    /// brackets as is).
    pub name: String,
    /// `None`: the plain form `filter[name]=v`, which means equality.
    pub op: Option<FilterOp>,
    /// One value, or several meaning "any of" (sent comma-separated).
    pub values: Vec<String>,
}

impl FilterCond {
    pub fn eq(name: impl Into<String>, value: impl Into<String>) -> FilterCond {
        FilterCond {
            name: name.into(),
            op: None,
            values: vec![value.into()],
        }
    }

    pub fn op(name: impl Into<String>, op: FilterOp, value: impl Into<String>) -> FilterCond {
        FilterCond {
            name: name.into(),
            op: Some(op),
            values: vec![value.into()],
        }
    }

    pub fn any_of(name: impl Into<String>, values: Vec<String>) -> FilterCond {
        FilterCond {
            name: name.into(),
            op: None,
            values,
        }
    }

    fn key(&self, prefix: &str) -> String {
        match self.op {
            Some(op) => format!("{prefix}[{}][{}]", self.name, op.as_str()),
            None => format!("{prefix}[{}]", self.name),
        }
    }
}

/// A filter expression: conditions combined with AND and OR groups.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FilterExpr {
    Cond(FilterCond),
    And(Vec<FilterExpr>),
    Or(Vec<FilterExpr>),
}

/// A request for a list endpoint, before paging.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListRequest {
    /// Collection path, e.g. `/tasks`.
    pub endpoint: String,
    /// Conditions that all apply (AND).
    pub filters: Vec<FilterExpr>,
    /// Sort keys, `-` prefixed for descending.
    pub sort: Vec<String>,
    /// Relationships to include, so their ids are in the answer.
    pub include: Vec<String>,
    /// Rows per page (the API's maximum is 200).
    pub page_size: u32,
    /// Stop after this many rows: a `LIMIT` the API can answer exactly.
    pub limit: Option<usize>,
}

/// The largest page the API serves.
pub const MAX_PAGE_SIZE: u32 = 200;

impl ListRequest {
    pub fn new(endpoint: impl Into<String>) -> ListRequest {
        ListRequest {
            endpoint: endpoint.into(),
            page_size: MAX_PAGE_SIZE,
            ..Default::default()
        }
    }

    /// The query-string parameters (unencoded) for one page.
    pub fn params(&self, page: u32) -> Vec<(String, String)> {
        let mut out = Vec::new();
        filter_params(&self.filters, &mut out);
        if !self.sort.is_empty() {
            out.push(("sort".to_string(), self.sort.join(",")));
        }
        if !self.include.is_empty() {
            out.push(("include".to_string(), self.include.join(",")));
        }
        out.push(("page[number]".to_string(), page.to_string()));
        out.push(("page[size]".to_string(), self.page_size.to_string()));
        out
    }

    /// The encoded query string for one page.
    pub fn query_string(&self, page: u32) -> String {
        encode_query(&self.params(page))
    }

    /// The number of pages needed to return at most `limit` rows.
    pub fn pages_for_limit(&self) -> Option<u32> {
        self.limit
            .map(|l| (l as u32).div_ceil(self.page_size.max(1)).max(1))
    }
}

/// Encodes parameters as `k=v&k=v`, every key and value percent-encoded.
pub fn encode_query(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Writes the AND of `filters` as parameters. Plain conditions use the
/// short form; when two conditions would share a key, or an OR appears,
/// the API's numbered groups (`filter[$op]`, `filter[0][...]`) are used.
fn filter_params(filters: &[FilterExpr], out: &mut Vec<(String, String)>) {
    let all_plain = filters.iter().all(|f| matches!(f, FilterExpr::Cond(_)));
    let mut keys: Vec<String> = Vec::new();
    let unique_keys = filters.iter().all(|f| match f {
        FilterExpr::Cond(c) => {
            let k = c.key("filter");
            let fresh = !keys.contains(&k);
            keys.push(k);
            fresh
        }
        _ => false,
    });
    if all_plain && unique_keys {
        for f in filters {
            if let FilterExpr::Cond(c) = f {
                out.push((c.key("filter"), c.values.join(",")));
            }
        }
        return;
    }
    group_params("filter", &FilterExpr::And(filters.to_vec()), out);
}

fn group_params(prefix: &str, expr: &FilterExpr, out: &mut Vec<(String, String)>) {
    match expr {
        FilterExpr::Cond(c) => out.push((c.key(prefix), c.values.join(","))),
        FilterExpr::And(items) | FilterExpr::Or(items) => {
            let op = if matches!(expr, FilterExpr::And(_)) {
                "and"
            } else {
                "or"
            };
            out.push((format!("{prefix}[$op]"), op.to_string()));
            for (i, item) in items.iter().enumerate() {
                group_params(&format!("{prefix}[{i}]"), item, out);
            }
        }
    }
}

impl fmt::Display for FilterExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterExpr::Cond(c) => {
                let op = c.op.map_or("eq", FilterOp::as_str);
                write!(f, "{} {} {}", c.name, op, c.values.join(","))
            }
            FilterExpr::And(items) | FilterExpr::Or(items) => {
                let sep = if matches!(self, FilterExpr::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                let parts: Vec<String> = items.iter().map(|i| i.to_string()).collect();
                write!(f, "({})", parts.join(sep))
            }
        }
    }
}

impl fmt::Display for ListRequest {
    /// A one-line summary for `EXPLAIN`: `GET /tasks filter=[...] sort=...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GET {}", self.endpoint)?;
        if !self.filters.is_empty() {
            let parts: Vec<String> = self.filters.iter().map(|x| x.to_string()).collect();
            write!(f, " filter=[{}]", parts.join(", "))?;
        }
        if !self.sort.is_empty() {
            write!(f, " sort={}", self.sort.join(","))?;
        }
        if !self.include.is_empty() {
            write!(f, " include={}", self.include.join(","))?;
        }
        write!(f, " page_size={}", self.page_size)?;
        if let Some(limit) = self.limit {
            write!(f, " limit={limit}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_parse_as_they_are_spelled() {
        for op in FilterOp::ALL {
            assert_eq!(FilterOp::parse(op.as_str()), Some(op));
        }
        assert_eq!(FilterOp::parse("gte"), None);
    }

    #[test]
    fn plain_filters_use_the_short_form() {
        let mut req = ListRequest::new("/tasks");
        req.filters
            .push(FilterExpr::Cond(FilterCond::eq("project_id", "42")));
        req.filters.push(FilterExpr::Cond(FilterCond::op(
            "title",
            FilterOp::Contains,
            "x",
        )));
        req.include = vec!["project".into()];
        assert_eq!(
            req.query_string(2),
            "filter%5Bproject_id%5D=42&filter%5Btitle%5D%5Bcontains%5D=x&include=project\
             &page%5Bnumber%5D=2&page%5Bsize%5D=200"
        );
    }

    #[test]
    fn hostile_values_cannot_add_parameters() {
        let mut req = ListRequest::new("/tasks");
        req.filters.push(FilterExpr::Cond(FilterCond::eq(
            "title",
            "a&page[size]=1%\n'\"é",
        )));
        let qs = req.query_string(1);
        assert!(qs.starts_with("filter%5Btitle%5D=a%26page%5Bsize%5D%3D1%25%0A%27%22%C3%A9&"));
        assert_eq!(qs.matches('&').count(), 2, "{qs}");
    }

    #[test]
    fn repeated_keys_and_or_use_groups() {
        let mut req = ListRequest::new("/tasks");
        req.filters.push(FilterExpr::Or(vec![
            FilterExpr::Cond(FilterCond::eq("status", "1")),
            FilterExpr::Cond(FilterCond::eq("status", "2")),
        ]));
        let params = req.params(1);
        let keys: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "filter[$op]",
                "filter[0][$op]",
                "filter[0][0][status]",
                "filter[0][1][status]",
                "page[number]",
                "page[size]"
            ]
        );
        assert_eq!(params[1].1, "or");
    }

    #[test]
    fn explain_line_names_the_request() {
        let mut req = ListRequest::new("/tasks");
        req.filters.push(FilterExpr::Cond(FilterCond::any_of(
            "id",
            vec!["1".into(), "2".into()],
        )));
        req.sort = vec!["-created_at".into()];
        req.limit = Some(10);
        req.page_size = 10;
        assert_eq!(
            req.to_string(),
            "GET /tasks filter=[id eq 1,2] sort=-created_at page_size=10 limit=10"
        );
    }
}
