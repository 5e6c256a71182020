//! Custom field definitions, turned into table columns.
//!
//! Definitions come from `/custom_fields` and `/custom_field_options` and are
//! cached per API base URL and token, shared by every session using them,
//! until refreshed. Each field of the nine objects that have custom fields
//! becomes a column named from the field's name in snake_case, made unique
//! within its table.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;
use tokio::sync::Mutex as AsyncMutex;

use crate::api::document::ResourceObject;
use crate::api::{ApiClient, ApiError, ListRequest, RequestStats};
use crate::table::schema::CustomFieldColumn;

/// The table a `customizable_type` extends.
pub fn table_for_customizable_type(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "tasks" => "tasks",
        "projects" => "projects",
        "deals" => "deals",
        "budgets" => "budgets",
        "companies" => "companies",
        "people" | "employees" | "contacts" => "people",
        "invoices" => "invoices",
        "project_expenses" | "expenses" => "expenses",
        "bookings" => "bookings",
        _ => return None,
    })
}

/// Custom-field columns of every table, by table name.
pub type CustomFieldColumns = BTreeMap<String, Vec<(String, CustomFieldColumn)>>;

/// Turns a field name into a column name: lower case, runs of anything but
/// letters and digits become one `_`, a leading digit gets a `cf_` prefix.
pub fn column_name(field_name: &str) -> String {
    let mut out = String::new();
    let mut gap = false;
    for ch in field_name.trim().chars().flat_map(char::to_lowercase) {
        if ch.is_alphanumeric() {
            if gap && !out.is_empty() {
                out.push('_');
            }
            gap = false;
            out.push(ch);
        } else {
            gap = true;
        }
    }
    if out.is_empty() {
        out.push_str("custom_field");
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "cf_");
    }
    out
}

/// Builds the columns from definition and option records. `taken` holds the
/// names each table already uses; a custom field never shadows them.
pub fn build_columns(
    fields: &[ResourceObject],
    options: &[ResourceObject],
    taken: &dyn Fn(&str) -> HashSet<String>,
) -> CustomFieldColumns {
    let mut options_by_field: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for o in options {
        let Some(field) = option_field_id(o) else {
            continue;
        };
        let name = o
            .attributes
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        options_by_field
            .entry(field)
            .or_default()
            .push((o.id.clone(), name.to_string()));
    }

    let mut sorted: Vec<&ResourceObject> = fields.iter().collect();
    sorted.sort_by_key(|f| f.id.parse::<u64>().unwrap_or(u64::MAX));

    let mut out = CustomFieldColumns::new();
    let mut used: HashMap<&'static str, HashSet<String>> = HashMap::new();
    for f in sorted {
        let kind = f
            .attributes
            .get("customizable_type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(table) = table_for_customizable_type(kind) else {
            continue;
        };
        let data_type = f.attributes.get("data_type_id").and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        });
        // Attachments (7) have no value a column could show.
        let Some(data_type @ 1..=6) = data_type else {
            continue;
        };
        let names = used.entry(table).or_insert_with(|| taken(table));
        let base = column_name(
            f.attributes
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        );
        let mut name = base.clone();
        let mut n = 2;
        while names.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        names.insert(name.clone());
        out.entry(table.to_string()).or_default().push((
            name,
            CustomFieldColumn {
                field_id: f.id.clone(),
                data_type: data_type as u8,
                options: options_by_field.get(&f.id).cloned().unwrap_or_default(),
            },
        ));
    }
    out
}

fn option_field_id(o: &ResourceObject) -> Option<String> {
    match o.linkage("custom_field") {
        crate::api::document::Linkage::One { id, .. } => Some(id),
        _ => o.attributes.get("custom_field_id").map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
    }
}

/// Fetches every record of a list request.
async fn fetch_all(client: &ApiClient, req: &ListRequest) -> Result<Vec<ResourceObject>, ApiError> {
    let stats = RequestStats::default();
    let first = client.list_page(req, 1, &stats).await?;
    let total = first.meta.total_pages.unwrap_or(1);
    let mut out = first.data;
    for page in 2..=total {
        out.extend(client.list_page(req, page, &stats).await?.data);
    }
    Ok(out)
}

/// Cached definitions for one API base URL and token.
#[derive(Debug, Default)]
pub struct DefinitionCache {
    columns: AsyncMutex<Option<Arc<CustomFieldColumns>>>,
}

impl DefinitionCache {
    /// The shared cache for a client's base URL and token.
    pub fn for_client(client: &ApiClient) -> Arc<DefinitionCache> {
        static CACHES: OnceLock<Mutex<HashMap<u64, Arc<DefinitionCache>>>> = OnceLock::new();
        let mut hasher = DefaultHasher::new();
        let config = client.config();
        (
            &config.base_url,
            &config.organization_id,
            config.token.expose(),
        )
            .hash(&mut hasher);
        let mut map = CACHES
            .get_or_init(Default::default)
            .lock()
            .expect("cache map lock");
        map.entry(hasher.finish()).or_default().clone()
    }

    /// The columns, fetched on first use.
    pub async fn columns(
        &self,
        client: &ApiClient,
        taken: &(dyn Fn(&str) -> HashSet<String> + Sync),
    ) -> Result<Arc<CustomFieldColumns>, ApiError> {
        let mut guard = self.columns.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let mut fields_req = ListRequest::new("/custom_fields");
        fields_req
            .filters
            .push(crate::api::FilterExpr::Cond(crate::api::FilterCond::eq(
                "archived", "false",
            )));
        let fields = fetch_all(client, &fields_req).await?;
        let mut options_req = ListRequest::new("/custom_field_options");
        options_req.include = vec!["custom_field".into()];
        let options = fetch_all(client, &options_req).await?;
        let columns = Arc::new(build_columns(&fields, &options, taken));
        *guard = Some(columns.clone());
        Ok(columns)
    }

    /// Forgets the definitions; the next use fetches them again.
    pub async fn refresh(&self) {
        *self.columns.lock().await = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_snake_case() {
        assert_eq!(column_name("Client Tier"), "client_tier");
        assert_eq!(column_name("  Priority!! "), "priority");
        assert_eq!(column_name("2nd Owner"), "cf_2nd_owner");
        assert_eq!(column_name("Ünïcode Näme"), "ünïcode_näme");
        assert_eq!(column_name("!!!"), "custom_field");
    }

    fn rec(json: serde_json::Value) -> ResourceObject {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn columns_are_unique_and_never_shadow_attributes() {
        let fields = vec![
            rec(
                serde_json::json!({"id":"2","type":"custom_fields","attributes":
                {"name":"Priority","data_type_id":3,"customizable_type":"tasks"}}),
            ),
            rec(
                serde_json::json!({"id":"3","type":"custom_fields","attributes":
                {"name":"priority!","data_type_id":1,"customizable_type":"tasks"}}),
            ),
            rec(
                serde_json::json!({"id":"4","type":"custom_fields","attributes":
                {"name":"Title","data_type_id":1,"customizable_type":"tasks"}}),
            ),
            rec(
                serde_json::json!({"id":"5","type":"custom_fields","attributes":
                {"name":"Cost","data_type_id":2,"customizable_type":"project_expenses"}}),
            ),
            rec(
                serde_json::json!({"id":"6","type":"custom_fields","attributes":
                {"name":"File","data_type_id":7,"customizable_type":"tasks"}}),
            ),
        ];
        let options = vec![rec(
            serde_json::json!({"id":"10","type":"custom_field_options",
            "attributes":{"name":"High"},
            "relationships":{"custom_field":{"data":{"type":"custom_fields","id":"2"}}}}),
        )];
        let taken = |t: &str| -> HashSet<String> {
            if t == "tasks" {
                ["id", "title"].iter().map(|s| s.to_string()).collect()
            } else {
                HashSet::new()
            }
        };
        let cols = build_columns(&fields, &options, &taken);
        let tasks: Vec<&str> = cols["tasks"].iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(tasks, ["priority", "priority_2", "title_2"]);
        assert_eq!(
            cols["tasks"][0].1.options,
            vec![("10".to_string(), "High".to_string())]
        );
        assert_eq!(cols["expenses"][0].0, "cost");
        assert_eq!(cols["expenses"][0].1.data_type, 2);
    }
}
