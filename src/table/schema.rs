//! SQL columns of a Productive table, derived from the catalog.
//!
//! A table has `id`, one column per catalog attribute, `<name>_id` for each
//! to-one relationship whose id the API can include, and a `<group>_type` /
//! `<group>_id` pair for each group of alternative relationships (a
//! booking's service or event, a comment's parent). Custom fields add one
//! column each when the session turns them on.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::catalog::{JsonType, SqlType, Table};

/// Scale of `numeric` columns. Arrow decimals have a fixed scale; six
/// places keep rates and quantities exact while money stays in cents.
pub const NUMERIC_SCALE: i8 = 6;
/// Precision of `numeric` columns.
pub const NUMERIC_PRECISION: u8 = 38;

/// Where a column's value comes from in a JSON:API record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnSource {
    /// The resource id.
    Id,
    /// `attributes.<name>`.
    Attribute { name: String, json_type: JsonType },
    /// The id in the linkage of a to-one relationship.
    RelationshipId { relationship: String },
    /// Which relationship of an exclusive group is set (its name).
    GroupType { members: Vec<String> },
    /// The id of whichever relationship of an exclusive group is set.
    GroupId { members: Vec<String> },
    /// `attributes.custom_fields.<field id>`.
    CustomField(CustomFieldColumn),
}

/// A custom field exposed as a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomFieldColumn {
    pub field_id: String,
    /// Productive's `data_type_id` (1 text, 2 number, 3 select, 4 date,
    /// 5 multiselect, 6 person).
    pub data_type: u8,
    /// Option id to label, for select and multiselect fields.
    pub options: Vec<(String, String)>,
}

/// What a filter on this column can be pushed down as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filterable {
    /// Not at all.
    No,
    /// An id filter (`filter[project_id]=1,2`): equality and lists are exact.
    Id { filter: String },
    /// A filter on the attribute of the same name; what operators mean for
    /// it depends on the column type, and the answer is re-checked locally.
    Value { filter: String },
}

/// One SQL column.
#[derive(Debug, Clone)]
pub struct ColumnDef {
    pub name: String,
    pub sql_type: SqlType,
    pub source: ColumnSource,
    pub filterable: Filterable,
    /// The catalog `sort=` key that orders by this column.
    pub sort_key: Option<String>,
    /// Shown by `\d+`: the unit and meaning where they are not obvious.
    pub comment: Option<String>,
    pub writable: bool,
    pub required_on_create: bool,
}

impl ColumnDef {
    /// The relationships whose linkage this column needs (`include=`).
    pub fn includes(&self) -> Vec<String> {
        match &self.source {
            ColumnSource::RelationshipId { relationship } => vec![relationship.clone()],
            ColumnSource::GroupType { members } | ColumnSource::GroupId { members } => {
                members.clone()
            }
            _ => vec![],
        }
    }
}

/// The columns of one table, with its Arrow schema.
#[derive(Debug)]
pub struct TableDef {
    pub table: &'static Table,
    pub columns: Vec<ColumnDef>,
    pub schema: SchemaRef,
}

/// The Arrow type for a SQL type.
pub fn arrow_type(sql: SqlType) -> DataType {
    match sql {
        SqlType::BigInt => DataType::Int64,
        SqlType::Integer => DataType::Int32,
        SqlType::Text | SqlType::Jsonb => DataType::Utf8,
        SqlType::Boolean => DataType::Boolean,
        SqlType::Numeric => DataType::Decimal128(NUMERIC_PRECISION, NUMERIC_SCALE),
        SqlType::Double => DataType::Float64,
        SqlType::Date => DataType::Date32,
        SqlType::Timestamptz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        SqlType::Time => DataType::Time64(TimeUnit::Microsecond),
        SqlType::TextArray => DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
    }
}

impl TableDef {
    /// The columns of `table`, plus one per custom field given.
    pub fn new(table: &'static Table, custom_fields: &[(String, CustomFieldColumn)]) -> TableDef {
        let resource = &table.resource;
        let mut columns: Vec<ColumnDef> = Vec::new();
        let mut names = BTreeSet::new();

        for attr in &resource.attributes {
            if !names.insert(attr.name.clone()) {
                continue;
            }
            if attr.name == "id" {
                columns.push(ColumnDef {
                    name: "id".into(),
                    sql_type: SqlType::BigInt,
                    source: ColumnSource::Id,
                    filterable: if resource.filter("id").is_some() {
                        Filterable::Id {
                            filter: "id".into(),
                        }
                    } else {
                        Filterable::No
                    },
                    sort_key: resource.has_sort("id").then(|| "id".to_string()),
                    comment: None,
                    writable: false,
                    required_on_create: false,
                });
                continue;
            }
            // Only a filter named like the attribute is trusted to mean it:
            // tasks' `public_access`, for one, is the opposite of `private`.
            let filterable = match resource.filter(&attr.name) {
                Some(f) if f.kind == crate::catalog::FilterKind::Id => Filterable::Id {
                    filter: f.name.clone(),
                },
                Some(f)
                    if matches!(
                        f.kind,
                        crate::catalog::FilterKind::Number
                            | crate::catalog::FilterKind::Date
                            | crate::catalog::FilterKind::Text
                            | crate::catalog::FilterKind::Boolean
                            | crate::catalog::FilterKind::Enum
                    ) =>
                {
                    Filterable::Value {
                        filter: f.name.clone(),
                    }
                }
                _ => Filterable::No,
            };
            let sort_key = match &attr.sort_name {
                Some(s) if *s == attr.name && resource.has_sort(s) => Some(s.clone()),
                _ if resource.has_sort(&attr.name) => Some(attr.name.clone()),
                _ => None,
            };
            columns.push(ColumnDef {
                name: attr.name.clone(),
                sql_type: attr.sql_type,
                source: ColumnSource::Attribute {
                    name: attr.name.clone(),
                    json_type: attr.json_type,
                },
                filterable,
                sort_key,
                comment: column_comment(attr.unit.as_deref(), attr.description.as_deref()),
                writable: attr.writable(),
                required_on_create: is_required(resource, &attr.name),
            });
        }

        for rel in resource
            .relationships
            .iter()
            .filter(|r| r.is_to_one() && r.includable)
        {
            let name = format!("{}_id", rel.name);
            if !names.insert(name.clone()) {
                continue;
            }
            let filterable = match &rel.filter_name {
                Some(f) if *f == name && resource.filter(f).is_some() => {
                    Filterable::Id { filter: f.clone() }
                }
                _ if resource
                    .filter(&name)
                    .is_some_and(|f| f.kind == crate::catalog::FilterKind::Id) =>
                {
                    Filterable::Id {
                        filter: name.clone(),
                    }
                }
                _ => Filterable::No,
            };
            let target = rel.target_type.clone().unwrap_or_else(|| "record".into());
            columns.push(ColumnDef {
                name,
                sql_type: SqlType::BigInt,
                source: ColumnSource::RelationshipId {
                    relationship: rel.name.clone(),
                },
                filterable,
                sort_key: None,
                comment: Some(format!("id of the related {target} record ({})", rel.name)),
                writable: rel.name != "organization",
                required_on_create: is_required(resource, &format!("{}_id", rel.name)),
            });
        }

        for (group, members) in exclusive_groups(table) {
            for (suffix, sql_type) in [("type", SqlType::Text), ("id", SqlType::BigInt)] {
                let name = format!("{group}_{suffix}");
                if !names.insert(name.clone()) {
                    continue;
                }
                let source = if suffix == "type" {
                    ColumnSource::GroupType {
                        members: members.clone(),
                    }
                } else {
                    ColumnSource::GroupId {
                        members: members.clone(),
                    }
                };
                columns.push(ColumnDef {
                    name,
                    sql_type,
                    source,
                    filterable: Filterable::No,
                    sort_key: None,
                    comment: Some(format!(
                        "{} of the {group} record: one of {}",
                        if suffix == "type" { "kind" } else { "id" },
                        members.join(", ")
                    )),
                    writable: true,
                    required_on_create: false,
                });
            }
        }

        for (name, cf) in custom_fields {
            if !names.insert(name.clone()) {
                continue;
            }
            let sql_type = match cf.data_type {
                2 => SqlType::Numeric,
                4 => SqlType::Date,
                _ => SqlType::Text,
            };
            columns.push(ColumnDef {
                name: name.clone(),
                sql_type,
                source: ColumnSource::CustomField(cf.clone()),
                filterable: Filterable::No,
                sort_key: None,
                comment: Some(format!("custom field {}", cf.field_id)),
                writable: true,
                required_on_create: false,
            });
        }

        let fields: Vec<Field> = columns
            .iter()
            .map(|c| {
                let field = Field::new(&c.name, arrow_type(c.sql_type), c.name != "id");
                match c.sql_type {
                    SqlType::Jsonb => crate::server::jsonb::mark(field),
                    _ => field,
                }
            })
            .collect();
        TableDef {
            table,
            columns,
            schema: Arc::new(Schema::new(fields)),
        }
    }

    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

fn is_required(resource: &crate::catalog::Resource, name: &str) -> bool {
    resource.create_required.iter().any(|r| r == name)
}

/// The exclusive relationship groups of a table, members in catalog order.
pub fn exclusive_groups(table: &Table) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for rel in table.resource.relationships.iter().filter(|r| r.includable) {
        if let Some(group) = &rel.exclusive_group {
            match groups.iter_mut().find(|(g, _)| g == group) {
                Some((_, members)) => members.push(rel.name.clone()),
                None => groups.push((group.clone(), vec![rel.name.clone()])),
            }
        }
    }
    groups
}

fn column_comment(unit: Option<&str>, description: Option<&str>) -> Option<String> {
    let unit = unit.map(|u| match u {
        "money, minor units (cents) of currency" => {
            "money in cents of the record's currency".into()
        }
        "money, minor units (cents) of currency (organization default currency)" => {
            "money in cents of the organization's default currency".into()
        }
        "money, minor units (cents) of currency (normalized currency)" => {
            "money in cents of the normalized currency".into()
        }
        other => format!("in {other}"),
    });
    match (unit, description) {
        (Some(u), Some(d)) => Some(format!("{d} ({u})")),
        (Some(u), None) => Some(u),
        (None, Some(d)) => Some(d.to_string()),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn def(name: &str) -> TableDef {
        TableDef::new(Catalog::get().table(name).unwrap(), &[])
    }

    #[test]
    fn tasks_have_attributes_and_relationship_ids() {
        let tasks = def("tasks");
        assert_eq!(tasks.columns[0].name, "id");
        assert_eq!(tasks.column("title").unwrap().sql_type, SqlType::Text);
        let project = tasks.column("project_id").unwrap();
        assert_eq!(
            project.filterable,
            Filterable::Id {
                filter: "project_id".into()
            }
        );
        assert_eq!(project.includes(), vec!["project".to_string()]);
        assert!(project.required_on_create);
        assert_eq!(tasks.schema.field(0).data_type(), &DataType::Int64);
        assert!(!tasks.schema.field(0).is_nullable());
    }

    #[test]
    fn bookings_have_a_service_or_event_pair() {
        let bookings = def("bookings");
        let kind = bookings.column("bookable_type").unwrap();
        assert_eq!(
            kind.source,
            ColumnSource::GroupType {
                members: vec!["event".into(), "service".into()]
            }
        );
        assert!(bookings.column("bookable_id").is_some());
        assert!(bookings.column("service_id").is_some());
        assert!(bookings.column("event_id").is_some());
    }

    #[test]
    fn column_names_are_unique_in_every_table() {
        for table in Catalog::get().tables() {
            let d = TableDef::new(table, &[]);
            let mut names: Vec<_> = d.columns.iter().map(|c| c.name.clone()).collect();
            names.sort();
            let before = names.len();
            names.dedup();
            assert_eq!(before, names.len(), "{}", table.name);
        }
    }

    #[test]
    fn minutes_and_cents_are_explained() {
        let deals = def("deals");
        let worked = deals.column("worked_time").unwrap();
        assert!(
            worked.comment.as_deref().unwrap().contains("minutes"),
            "{:?}",
            worked.comment
        );
    }
}
