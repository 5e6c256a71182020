//! JSON:API documents written straight into a byte buffer.
//!
//! Resource objects follow fact sheet §3 and the recorded responses: `id`
//! as a string, every catalog attribute but `id` in catalog order (missing
//! values as `null`), and one relationship entry per catalog relationship,
//! `{"meta":{"included":false}}` unless the request included it, except
//! `organization`, which always carries linkage. Records are borrowed from
//! the store and serialized in place; nothing is cloned into an
//! intermediate `Value` tree.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::Value;

use crate::catalog::{Cardinality, Catalog, Resource};
use crate::sim::rules::ORGANIZATION;
use crate::sim::store::{Link, Record, Ref, Store};

/// What rendering needs besides the records.
#[derive(Clone, Copy)]
pub struct RenderContext<'a> {
    pub store: &'a Store,
    pub organization_id: u64,
}

/// Pagination of a list response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageInfo {
    pub current_page: u64,
    pub page_size: u64,
    pub total_count: u64,
    pub max_page_size: u64,
}

impl PageInfo {
    /// `ceil(total_count / page_size)`; 0 for an empty list.
    pub fn total_pages(&self) -> u64 {
        self.total_count.div_ceil(self.page_size.max(1))
    }
}

fn put<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(&mut *out, value).expect("serializing into a Vec cannot fail");
}

fn raw(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
}

fn write_ref(out: &mut Vec<u8>, target: &Ref) {
    raw(out, "{\"type\":");
    put(out, &target.kind);
    raw(out, ",\"id\":");
    put(out, &target.id.to_string());
    raw(out, "}");
}

/// Writes one resource object. `included` names the relationships shown
/// with data linkage.
pub fn write_resource(
    out: &mut Vec<u8>,
    ctx: RenderContext<'_>,
    kind: &str,
    record: &Record,
    included: &[String],
) {
    let resource = Catalog::get().resource(kind);
    raw(out, "{\"id\":");
    put(out, &record.id.to_string());
    raw(out, ",\"type\":");
    put(out, kind);
    raw(out, ",\"attributes\":{");
    let mut first = true;
    let mut field = |out: &mut Vec<u8>, name: &str| {
        if !first {
            raw(out, ",");
        }
        first = false;
        put(out, name);
        raw(out, ":");
    };
    match resource {
        Some(resource) => {
            for attribute in resource.attributes.iter().filter(|a| a.name != "id") {
                field(out, &attribute.name);
                put(
                    out,
                    record
                        .attributes
                        .get(&attribute.name)
                        .unwrap_or(&Value::Null),
                );
            }
        }
        // A type the catalog does not describe: show what the store holds.
        None => {
            for (name, value) in &record.attributes {
                field(out, name);
                put(out, value);
            }
        }
    }
    raw(out, "},\"relationships\":{");
    write_relationships(out, ctx, resource, record, included);
    raw(out, "}}");
}

fn write_relationships(
    out: &mut Vec<u8>,
    ctx: RenderContext<'_>,
    resource: Option<&Resource>,
    record: &Record,
    included: &[String],
) {
    let names: Vec<(&str, bool)> = match resource {
        Some(r) => r
            .relationships
            .iter()
            .map(|rel| (rel.name.as_str(), rel.cardinality == Cardinality::ToMany))
            .collect(),
        None => record
            .relationships
            .iter()
            .map(|(name, link)| (name.as_str(), matches!(link, Link::Many(_))))
            .collect(),
    };
    for (i, (name, to_many)) in names.into_iter().enumerate() {
        if i > 0 {
            raw(out, ",");
        }
        put(out, name);
        raw(out, ":");
        if name == ORGANIZATION {
            raw(out, "{\"data\":");
            write_ref(out, &Ref::new("organizations", ctx.organization_id));
            raw(out, "}");
            continue;
        }
        if !included.iter().any(|n| n == name) {
            raw(out, "{\"meta\":{\"included\":false}}");
            continue;
        }
        raw(out, "{\"data\":");
        match (record.relationships.get(name), to_many) {
            (Some(Link::One(Some(target))), _) => write_ref(out, target),
            (Some(Link::Many(targets)), _) => {
                raw(out, "[");
                for (j, target) in targets.iter().enumerate() {
                    if j > 0 {
                        raw(out, ",");
                    }
                    write_ref(out, target);
                }
                raw(out, "]");
            }
            (_, true) => raw(out, "[]"),
            (_, false) => raw(out, "null"),
        }
        raw(out, "}");
    }
}

/// The related records named by `included` that exist in the store, in
/// order of first appearance and without duplicates.
pub fn collect_included<'s>(
    ctx: RenderContext<'s>,
    records: &[&Record],
    included: &[String],
) -> Vec<(String, &'s Record)> {
    let mut seen: HashSet<(String, u64)> = HashSet::new();
    let mut found = Vec::new();
    for record in records {
        for name in included {
            let targets: Vec<Ref> = if name == ORGANIZATION {
                vec![Ref::new("organizations", ctx.organization_id)]
            } else {
                match record.relationships.get(name) {
                    Some(Link::One(Some(target))) => vec![target.clone()],
                    Some(Link::Many(targets)) => targets.clone(),
                    _ => Vec::new(),
                }
            };
            for target in targets {
                if let Some(related) = ctx.store.get(&target.kind, target.id)
                    && seen.insert((target.kind.clone(), target.id))
                {
                    found.push((target.kind, related));
                }
            }
        }
    }
    found
}

fn write_included(
    out: &mut Vec<u8>,
    ctx: RenderContext<'_>,
    records: &[&Record],
    include: &[String],
) {
    if include.is_empty() {
        return;
    }
    raw(out, ",\"included\":[");
    for (i, (kind, related)) in collect_included(ctx, records, include).iter().enumerate() {
        if i > 0 {
            raw(out, ",");
        }
        write_resource(out, ctx, kind, related, &[]);
    }
    raw(out, "]");
}

/// `{"data": <resource>, "meta": {}}`, plus `included` when asked for.
pub fn single_document(
    ctx: RenderContext<'_>,
    kind: &str,
    record: &Record,
    include: &[String],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(2048);
    raw(&mut out, "{\"data\":");
    write_resource(&mut out, ctx, kind, record, include);
    write_included(&mut out, ctx, &[record], include);
    raw(&mut out, ",\"meta\":{}}");
    out
}

/// A list page: `data`, `included` when asked for, `links` and `meta`.
pub fn list_document(
    ctx: RenderContext<'_>,
    kind: &str,
    page: &[&Record],
    include: &[String],
    links: &[(&str, String)],
    info: &PageInfo,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024 + page.len() * 2048);
    raw(&mut out, "{\"data\":[");
    for (i, record) in page.iter().enumerate() {
        if i > 0 {
            raw(&mut out, ",");
        }
        write_resource(&mut out, ctx, kind, record, include);
    }
    raw(&mut out, "]");
    write_included(&mut out, ctx, page, include);
    raw(&mut out, ",\"links\":{");
    for (i, (name, url)) in links.iter().enumerate() {
        if i > 0 {
            raw(&mut out, ",");
        }
        put(&mut out, name);
        raw(&mut out, ":");
        put(&mut out, url);
    }
    raw(&mut out, "},\"meta\":");
    put(
        &mut out,
        &serde_json::json!({
            "current_page": info.current_page,
            "total_pages": info.total_pages(),
            "total_count": info.total_count,
            "page_size": info.page_size,
            "max_page_size": info.max_page_size,
        }),
    );
    raw(&mut out, "}");
    out
}

/// Percent-encodes like Rails' `CGI.escape`: everything but `A-Z a-z 0-9
/// _ . - ~` is `%XX`, and a space is `+`.
pub fn cgi_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// The `links` of a list page: `first`, `last`, then `prev` (left out on
/// the first page) and `next` (left out on the last), each the request's
/// own query with the page number replaced, keys sorted and percent-encoded
/// as the API writes them. The page size in the links is the effective
/// (clamped) one, and `last` points at page 1 for an empty list.
pub fn page_links(
    collection_url: &str,
    pairs: &[(String, String)],
    info: &PageInfo,
) -> Vec<(&'static str, String)> {
    let mut kept: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k != "page[number]" && k != "page[size]")
        .map(|(k, v)| (cgi_escape(k), cgi_escape(v)))
        .collect();
    kept.push((cgi_escape("page[size]"), info.page_size.to_string()));
    let url = |number: u64| {
        let mut all = kept.clone();
        all.push((cgi_escape("page[number]"), number.to_string()));
        // Stable: repeated keys keep their request order.
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let query: Vec<String> = all.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{collection_url}?{}", query.join("&"))
    };
    let last = info.total_pages().max(1);
    let mut links = vec![("first", url(1)), ("last", url(last))];
    if info.current_page > 1 {
        links.push(("prev", url(info.current_page - 1)));
    }
    if info.current_page < info.total_pages() {
        links.push(("next", url(info.current_page + 1)));
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::query::decode_pairs;

    #[test]
    fn links_match_the_recorded_encoding() {
        let pairs = decode_pairs(
            "filter[$op]=or&filter[0][status][eq][]=1&filter[1][$op]=and\
             &filter[1][0][status][eq][]=2&page[number]=1&page[size]=5",
        );
        let info = PageInfo {
            current_page: 1,
            page_size: 5,
            total_count: 915,
            max_page_size: 200,
        };
        let links = page_links("https://x/api/v2/projects", &pairs, &info);
        assert_eq!(links[0].0, "first");
        assert_eq!(
            links[0].1,
            concat!(
                "https://x/api/v2/projects?filter%5B%24op%5D=or",
                "&filter%5B0%5D%5Bstatus%5D%5Beq%5D%5B%5D=1",
                "&filter%5B1%5D%5B%24op%5D=and",
                "&filter%5B1%5D%5B0%5D%5Bstatus%5D%5Beq%5D%5B%5D=2",
                "&page%5Bnumber%5D=1",
                "&page%5Bsize%5D=5",
            )
        );
        assert_eq!(links[1], ("last", links[1].1.clone()));
        assert!(links[1].1.contains("page%5Bnumber%5D=183&"));
        assert_eq!(links.len(), 3, "no prev on page 1: {links:?}");
        assert_eq!(links[2].0, "next");
    }

    #[test]
    fn sort_and_include_are_kept_in_key_order() {
        let pairs = decode_pairs(
            "sort=name&filter[status]=1&include=project,assignee&page[number]=2&page[size]=2",
        );
        let info = PageInfo {
            current_page: 2,
            page_size: 2,
            total_count: 4,
            max_page_size: 200,
        };
        let links = page_links("u", &pairs, &info);
        assert_eq!(
            links[2],
            (
                "prev",
                concat!(
                    "u?filter%5Bstatus%5D=1&include=project%2Cassignee",
                    "&page%5Bnumber%5D=1&page%5Bsize%5D=2&sort=name"
                )
                .to_string()
            )
        );
        assert!(links.iter().all(|(name, _)| *name != "next"));
    }

    #[test]
    fn total_pages_rounds_up() {
        let info = PageInfo {
            current_page: 1,
            page_size: 30,
            total_count: 61,
            max_page_size: 200,
        };
        assert_eq!(info.total_pages(), 3);
    }
}
