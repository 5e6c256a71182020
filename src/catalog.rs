//! The Productive object catalog: every resource declared once, as data.
//!
//! `catalog/objects.json` describes each Productive resource (endpoint,
//! JSON:API type, attributes with their JSON and SQL types, relationships,
//! filters, sorts, includes, actions and fields required on create). This
//! module loads it once and adds what the gateway decides on top of it: the
//! SQL table names, the statements each table takes, and the fixed filters
//! that split one endpoint into two tables (`deals` and `budgets`).
//!
//! The gateway, the simulator and the replication commands all read this
//! module, so a resource is described in exactly one place.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::Deserialize;

/// The catalog file, embedded at build time.
const CATALOG_JSON: &str = include_str!("../catalog/objects.json");

/// SQL type of a column, as the gateway exposes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum SqlType {
    #[serde(rename = "bigint")]
    BigInt,
    #[serde(rename = "integer")]
    Integer,
    #[serde(rename = "text")]
    Text,
    #[serde(rename = "boolean")]
    Boolean,
    #[serde(rename = "numeric")]
    Numeric,
    #[serde(rename = "double precision")]
    Double,
    #[serde(rename = "date")]
    Date,
    #[serde(rename = "timestamptz")]
    Timestamptz,
    #[serde(rename = "time")]
    Time,
    #[serde(rename = "jsonb")]
    Jsonb,
    #[serde(rename = "text[]")]
    TextArray,
}

impl SqlType {
    /// The PostgreSQL spelling of the type.
    pub fn pg_name(self) -> &'static str {
        match self {
            SqlType::BigInt => "bigint",
            SqlType::Integer => "integer",
            SqlType::Text => "text",
            SqlType::Boolean => "boolean",
            SqlType::Numeric => "numeric",
            SqlType::Double => "double precision",
            SqlType::Date => "date",
            SqlType::Timestamptz => "timestamp with time zone",
            SqlType::Time => "time without time zone",
            SqlType::Jsonb => "jsonb",
            SqlType::TextArray => "text[]",
        }
    }
}

/// How the API writes a value in JSON. Several SQL types share a JSON shape
/// (ids and decimals are strings), and the simulator must send exactly what
/// the real API sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JsonType {
    /// A JSON string.
    String,
    /// A string of digits: JSON:API ids.
    IdString,
    /// A decimal number written as a string: `"1.0"`.
    DecimalString,
    /// `YYYY-MM-DD`.
    DateString,
    /// ISO 8601 with offset and milliseconds.
    TimestampString,
    /// `HH:MM`.
    TimeString,
    /// A JSON integer.
    Integer,
    /// A JSON number that may carry a fraction (`12345.0`).
    Number,
    Boolean,
    Object,
    Array,
    StringArray,
}

impl<'de> Deserialize<'de> for JsonType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "string" => JsonType::String,
            "string (numeric id)" => JsonType::IdString,
            "string (decimal number)" => JsonType::DecimalString,
            "string (YYYY-MM-DD)" => JsonType::DateString,
            "string (ISO 8601 datetime with offset)" | "string (ISO 8601 datetime)" => {
                JsonType::TimestampString
            }
            "string (HH:MM)" => JsonType::TimeString,
            "integer" => JsonType::Integer,
            "number" => JsonType::Number,
            "boolean" => JsonType::Boolean,
            "object" => JsonType::Object,
            "array" => JsonType::Array,
            "array of strings" => JsonType::StringArray,
            other => {
                return Err(serde::de::Error::custom(format!(
                    "unknown JSON type {other:?}"
                )));
            }
        })
    }
}

/// One attribute of a resource.
#[derive(Debug, Clone, Deserialize)]
pub struct Attribute {
    pub name: String,
    pub json_type: JsonType,
    pub sql_type: SqlType,
    /// `Some(true)`: never accepted on writes (the API ignores it silently).
    /// `None`: the sources do not say.
    #[serde(default)]
    pub read_only: Option<bool>,
    #[serde(default)]
    pub required_on_create: bool,
    /// The `filter[...]` name that filters on this attribute, if any.
    #[serde(default)]
    pub filter_name: Option<String>,
    /// The `sort=` key that orders by this attribute, if any.
    #[serde(default)]
    pub sort_name: Option<String>,
    /// The unit of a number, where it is not obvious (minutes, cents).
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// The name of an enum in [`Catalog::enums`].
    #[serde(default, rename = "enum")]
    pub enum_name: Option<String>,
}

impl Attribute {
    /// Whether a write may set this attribute.
    pub fn writable(&self) -> bool {
        self.read_only != Some(true) && self.name != "id"
    }
}

/// Whether a relationship points at one record or many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Cardinality {
    #[serde(rename = "to-one")]
    ToOne,
    #[serde(rename = "to-many")]
    ToMany,
}

/// One relationship of a resource.
#[derive(Debug, Clone, Deserialize)]
pub struct Relationship {
    pub name: String,
    /// JSON:API type of the related records; `None` where the sources do
    /// not name one (polymorphic or undocumented targets).
    #[serde(default)]
    pub target_type: Option<String>,
    pub cardinality: Cardinality,
    #[serde(default)]
    pub includable: bool,
    #[serde(default)]
    pub required_on_create: Option<bool>,
    /// The `filter[...]` name that filters on the related id, if any.
    #[serde(default)]
    pub filter_name: Option<String>,
    /// Relationships in the same group are alternatives: exactly one is set
    /// (a booking's service or event, a comment's parent).
    #[serde(default)]
    pub exclusive_group: Option<String>,
}

impl Relationship {
    pub fn is_to_one(&self) -> bool {
        self.cardinality == Cardinality::ToOne
    }
}

/// What a filter's value means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterKind {
    Id,
    Number,
    Enum,
    Date,
    DateBound,
    Boolean,
    Text,
    TextSearch,
    Special,
    CustomFields,
    Tags,
    Unknown,
}

/// One `filter[...]` a list endpoint accepts.
#[derive(Debug, Clone, Deserialize)]
pub struct Filter {
    pub name: String,
    pub kind: FilterKind,
    #[serde(default, rename = "enum")]
    pub enum_name: Option<String>,
}

/// Which REST operations the API offers on a resource (`None`: unknown).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Operations {
    #[serde(default)]
    pub list: Option<bool>,
    #[serde(default)]
    pub get: Option<bool>,
    #[serde(default)]
    pub create: Option<bool>,
    #[serde(default)]
    pub update: Option<bool>,
    #[serde(default)]
    pub delete: Option<bool>,
}

/// One Productive resource, as the catalog describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Resource {
    pub name: String,
    /// Collection path relative to the API base, e.g. `/tasks`.
    pub endpoint: String,
    pub json_api_type: String,
    pub operations: Operations,
    pub attributes: Vec<Attribute>,
    /// Parameters accepted on writes but never returned (`assignee_id`).
    #[serde(default)]
    pub write_only_params: Vec<String>,
    pub relationships: Vec<Relationship>,
    pub filters: Vec<Filter>,
    #[serde(default)]
    pub sorts: Vec<String>,
    #[serde(default)]
    pub includes: Vec<String>,
    /// Fields required on create, relationships written as `<name>_id`.
    #[serde(default)]
    pub create_required: Vec<String>,
    /// Action endpoints as the catalog lists them (`PATCH /x/{id}/archive`).
    #[serde(default)]
    pub actions: Vec<String>,
    #[serde(default)]
    pub notes: Vec<String>,
}

impl Resource {
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    pub fn relationship(&self, name: &str) -> Option<&Relationship> {
        self.relationships.iter().find(|r| r.name == name)
    }

    pub fn filter(&self, name: &str) -> Option<&Filter> {
        self.filters.iter().find(|f| f.name == name)
    }

    pub fn has_sort(&self, key: &str) -> bool {
        self.sorts.iter().any(|s| s == key)
    }

    pub fn has_include(&self, name: &str) -> bool {
        self.includes.iter().any(|s| s == name)
    }

    /// Whether the resource has an action at `<item path>/<verb>`, such as
    /// `archive` or `approve`.
    pub fn has_item_action(&self, verb: &str) -> bool {
        let suffix = format!("/{{id}}/{verb}");
        self.actions.iter().any(|a| {
            a.split_whitespace()
                .nth(1)
                .is_some_and(|path| path.ends_with(&suffix))
        })
    }

    /// Whether a record has an `archived_at` timestamp (archive/restore).
    pub fn is_archivable(&self) -> bool {
        self.attribute("archived_at").is_some()
    }
}

/// An enumeration of integer codes, such as `archivable_status`.
#[derive(Debug, Clone, Deserialize)]
pub struct EnumDef {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub values: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct CatalogFile {
    enums: BTreeMap<String, EnumDef>,
    objects: BTreeMap<String, Resource>,
}

/// Which SQL statements a table accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Statements {
    pub insert: bool,
    pub update: bool,
    pub delete: bool,
}

impl Statements {
    const READ_ONLY: Statements = Statements {
        insert: false,
        update: false,
        delete: false,
    };
    const IUD: Statements = Statements {
        insert: true,
        update: true,
        delete: true,
    };
    const IU: Statements = Statements {
        insert: true,
        update: true,
        delete: false,
    };
    const UD: Statements = Statements {
        insert: false,
        update: true,
        delete: true,
    };
    const U: Statements = Statements {
        insert: false,
        update: true,
        delete: false,
    };

    /// The allowed statements in words, for error messages: `"INSERT, UPDATE"`.
    pub fn describe(self) -> String {
        let mut words = vec!["SELECT"];
        if self.insert {
            words.push("INSERT");
        }
        if self.update {
            words.push("UPDATE");
        }
        if self.delete {
            words.push("DELETE");
        }
        words.join(", ")
    }
}

/// A filter the gateway always sends for a table, and that the table's rows
/// satisfy: `filter[type]=1` makes `/deals` the `deals` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedFilter {
    pub name: &'static str,
    pub value: &'static str,
    /// The attribute that tells the two tables apart, and its value for this
    /// table's rows (`budget = false` for deals).
    pub attribute: &'static str,
    pub attribute_value: bool,
}

/// A SQL table over a Productive resource.
#[derive(Debug)]
pub struct Table {
    /// SQL name: snake_case plural, like the API (`deal_statuses`).
    pub name: &'static str,
    pub resource: Resource,
    pub statements: Statements,
    pub fixed_filter: Option<FixedFilter>,
    /// Whether the table is one of the objects users asked for beyond the
    /// core list (time entries, folders ...).
    pub extra: bool,
}

impl Table {
    pub fn endpoint(&self) -> &str {
        &self.resource.endpoint
    }

    pub fn json_api_type(&self) -> &str {
        &self.resource.json_api_type
    }
}

/// The tables the gateway serves, with the statements each accepts. This
/// list is the write contract: anything else is refused before any API call.
const TABLES: &[(&str, &str, Statements, bool)] = &[
    ("activities", "Activities", Statements::READ_ONLY, false),
    ("boards", "Boards", Statements::IU, false),
    ("bookings", "Bookings", Statements::IUD, false),
    ("budgets", "Budgets", Statements::IUD, false),
    ("comments", "Comments", Statements::IUD, false),
    ("companies", "Companies", Statements::IU, false),
    (
        "custom_field_options",
        "CustomFieldOptions",
        Statements::IU,
        false,
    ),
    ("custom_fields", "CustomFields", Statements::IU, false),
    ("deals", "Deals", Statements::IUD, false),
    ("deal_statuses", "DealStatuses", Statements::IUD, false),
    ("events", "Events", Statements::IU, false),
    ("expenses", "Expenses", Statements::IUD, false),
    ("invoices", "Invoices", Statements::IUD, false),
    ("line_items", "LineItems", Statements::IUD, false),
    ("lost_reasons", "LostReasons", Statements::IU, false),
    ("organizations", "Organizations", Statements::UD, false),
    ("payments", "Payments", Statements::IUD, false),
    ("people", "People", Statements::IU, false),
    ("projects", "Projects", Statements::IUD, false),
    ("services", "Services", Statements::IUD, false),
    ("service_types", "ServiceTypes", Statements::IUD, false),
    ("subsidiaries", "Subsidiaries", Statements::IU, false),
    ("task_lists", "TaskLists", Statements::IU, false),
    ("tasks", "Tasks", Statements::IUD, false),
    ("users", "Users", Statements::U, false),
    ("workflows", "Workflows", Statements::IUD, false),
    (
        "workflow_statuses",
        "WorkflowStatuses",
        Statements::IU,
        false,
    ),
    ("time_entries", "TimeEntries", Statements::IUD, true),
    (
        "approval_statuses",
        "ApprovalStatuses",
        Statements::READ_ONLY,
        true,
    ),
    ("folders", "Folders", Statements::IU, true),
    ("pipelines", "Pipelines", Statements::IUD, true),
    ("memberships", "Memberships", Statements::IUD, true),
];

/// The whole catalog: every resource, and the tables over them.
#[derive(Debug)]
pub struct Catalog {
    pub enums: BTreeMap<String, EnumDef>,
    /// Every resource of the catalog file, keyed by JSON:API type. Deals and
    /// budgets share the type `deals`; the entry is the deals' description.
    resources: BTreeMap<String, Resource>,
    tables: Vec<Table>,
}

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    Catalog::from_json(CATALOG_JSON).expect("the embedded catalog is valid (checked by tests)")
});

impl Catalog {
    /// The catalog embedded in the binary.
    pub fn get() -> &'static Catalog {
        &CATALOG
    }

    fn from_json(json: &str) -> Result<Catalog, serde_json::Error> {
        let file: CatalogFile = serde_json::from_str(json)?;
        let mut resources = BTreeMap::new();
        for (key, resource) in &file.objects {
            // Budgets are deals: keep the deals' own description for the type.
            if key == "Budgets" {
                continue;
            }
            resources.insert(resource.json_api_type.clone(), resource.clone());
        }
        let tables = TABLES
            .iter()
            .map(|&(name, object, statements, extra)| {
                let resource = file
                    .objects
                    .get(object)
                    .unwrap_or_else(|| panic!("catalog has no object {object}"))
                    .clone();
                let fixed_filter = match name {
                    "deals" => Some(FixedFilter {
                        name: "type",
                        value: "1",
                        attribute: "budget",
                        attribute_value: false,
                    }),
                    "budgets" => Some(FixedFilter {
                        name: "type",
                        value: "2",
                        attribute: "budget",
                        attribute_value: true,
                    }),
                    _ => None,
                };
                Table {
                    name,
                    resource,
                    statements,
                    fixed_filter,
                    extra,
                }
            })
            .collect();
        Ok(Catalog {
            enums: file.enums,
            resources,
            tables,
        })
    }

    /// Every SQL table, in catalog order.
    pub fn tables(&self) -> &[Table] {
        &self.tables
    }

    /// The table with this SQL name.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// The resource with this JSON:API type, whether or not a table serves it.
    pub fn resource(&self, json_api_type: &str) -> Option<&Resource> {
        self.resources.get(json_api_type)
    }

    /// The resources behind the tables, one per endpoint (deals and budgets
    /// share `/deals`).
    pub fn served_resources(&self) -> Vec<&Resource> {
        let mut seen = std::collections::BTreeSet::new();
        self.tables
            .iter()
            .filter(|t| seen.insert(t.resource.json_api_type.clone()))
            .filter_map(|t| self.resource(&t.resource.json_api_type))
            .collect()
    }

    pub fn enum_def(&self, name: &str) -> Option<&EnumDef> {
        self.enums.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_loads_every_table() {
        let catalog = Catalog::get();
        assert_eq!(catalog.tables().len(), TABLES.len());
        for table in catalog.tables() {
            assert!(table.resource.endpoint.starts_with('/'), "{}", table.name);
            assert!(
                table.resource.attribute("id").is_some(),
                "{} has no id",
                table.name
            );
        }
    }

    #[test]
    fn deals_and_budgets_share_one_endpoint() {
        let catalog = Catalog::get();
        let deals = catalog.table("deals").unwrap();
        let budgets = catalog.table("budgets").unwrap();
        assert_eq!(deals.endpoint(), "/deals");
        assert_eq!(budgets.endpoint(), "/deals");
        assert_eq!(deals.fixed_filter.unwrap().value, "1");
        assert_eq!(budgets.fixed_filter.unwrap().value, "2");
        let served: Vec<_> = catalog
            .served_resources()
            .iter()
            .map(|r| r.endpoint.clone())
            .collect();
        assert_eq!(served.iter().filter(|e| *e == "/deals").count(), 1);
    }

    #[test]
    fn statements_follow_the_write_contract() {
        let catalog = Catalog::get();
        let s = |t: &str| catalog.table(t).unwrap().statements;
        assert_eq!(s("tasks"), Statements::IUD);
        assert_eq!(s("companies"), Statements::IU);
        assert_eq!(s("organizations"), Statements::UD);
        assert_eq!(s("users"), Statements::U);
        assert_eq!(s("activities"), Statements::READ_ONLY);
        assert_eq!(s("companies").describe(), "SELECT, INSERT, UPDATE");
    }

    #[test]
    fn attribute_json_types_match_the_real_api() {
        let tasks = &Catalog::get().table("tasks").unwrap().resource;
        assert_eq!(tasks.attribute("id").unwrap().json_type, JsonType::IdString);
        assert_eq!(
            tasks.attribute("created_at").unwrap().sql_type,
            SqlType::Timestamptz
        );
        assert!(tasks.relationship("project").unwrap().is_to_one());
        assert!(tasks.has_sort("title"));
        let projects = &Catalog::get().table("projects").unwrap().resource;
        assert!(projects.has_item_action("archive"));
        assert!(projects.has_item_action("restore"));
    }
}
