//! Reads: `GET <endpoint>` (a filtered, sorted page) and `GET <endpoint>/{id}`.
//!
//! Records are filtered by reference and only the requested page is
//! serialized, so listing 200 records out of 50,000 copies none of them.
//! Two rules of the API apply on top of the query (fact sheet §5, §13,
//! §14): the activity feed is always newest first, and a comment without
//! any parent is readable by id but missing from the list of all comments.
//! Archived and closed rows are listed unless a `status` filter says
//! otherwise (quirk 2): no filter is applied by default.

use crate::catalog::{JsonType, Resource};
use crate::sim::document::{self, PageInfo, RenderContext};
use crate::sim::error::ApiError;
use crate::sim::query::{self, EvalContext, MAX_PAGE_SIZE, SortKey, SortSource};
use crate::sim::rules;
use crate::sim::store::Record;

/// The body of a list response for `resource`.
///
/// # Errors
/// 400 errors for filters, operators, sort keys and includes the resource
/// does not support.
pub fn list(
    ctx: RenderContext<'_>,
    resource: &'static Resource,
    pairs: &[(String, String)],
    collection_url: &str,
) -> Result<Vec<u8>, ApiError> {
    let query = query::parse_list(resource, pairs)?;
    let kind = resource.json_api_type.as_str();
    let eval = EvalContext {
        resource,
        store: ctx.store,
    };
    let is_comments = kind == "comments";
    let newest_first = kind == "activities";
    let first = usize::try_from((query.page_number - 1).saturating_mul(query.page_size))
        .unwrap_or(usize::MAX);
    let size = usize::try_from(query.page_size).unwrap_or(usize::MAX);

    // A plain listing in id order is the store's own order: only the page
    // is visited, so paging through a million records stays linear.
    let in_store_order = query
        .sort
        .iter()
        .all(|k| matches!(k.source, SortSource::Id) && !k.descending);
    let (total, page): (usize, Vec<&Record>) =
        if query.filter.is_everything() && in_store_order && !is_comments && !newest_first {
            let page = ctx.store.all(kind).skip(first).take(size).collect();
            (ctx.store.count(kind), page)
        } else {
            let matched: Vec<&Record> = ctx
                .store
                .all(kind)
                .filter(|r| !is_comments || rules::has_comment_parent(r))
                .filter(|r| query.filter.matches(eval, r))
                .collect();
            let sort = if newest_first {
                vec![SortKey {
                    source: SortSource::Attribute("created_at", JsonType::TimestampString),
                    descending: true,
                }]
            } else {
                query.sort.clone()
            };
            // The store yields id order, which is already the default order.
            let sorted = if sort.is_empty() {
                matched
            } else {
                query::sort_records(matched, &sort, eval, newest_first)
            };
            let total = sorted.len();
            let page = sorted.into_iter().skip(first).take(size).collect();
            (total, page)
        };

    let info = PageInfo {
        current_page: query.page_number,
        page_size: query.page_size,
        total_count: total as u64,
        max_page_size: MAX_PAGE_SIZE,
    };
    let links = document::page_links(collection_url, pairs, &info);
    Ok(document::list_document(
        ctx,
        kind,
        &page,
        &query.include,
        &links,
        &info,
    ))
}

/// The body of a single-record response.
///
/// # Errors
/// `404 record_not_found` for an unknown id, `400 unsupported_include`.
pub fn single(
    ctx: RenderContext<'_>,
    resource: &Resource,
    id: u64,
    pairs: &[(String, String)],
) -> Result<Vec<u8>, ApiError> {
    let include = query::parse_include(resource, pairs)?;
    let kind = resource.json_api_type.as_str();
    let record = ctx.store.get(kind, id).ok_or(ApiError::RecordNotFound)?;
    Ok(document::single_document(ctx, kind, record, &include))
}
