//! Session settings of the `productive` namespace (`SET productive.x = …`).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use datafusion::common::config::{ConfigExtension, ConfigField, Visit};
use datafusion::common::extensions_options;
use datafusion::error::{DataFusionError, Result};

/// A boolean setting spelled as PostgreSQL spells them: `on`/`off`,
/// `true`/`false`, `yes`/`no`, `1`/`0` (any case, any unique prefix of
/// the words, as PostgreSQL accepts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PgBool(pub bool);

impl PgBool {
    /// Parses a PostgreSQL boolean setting value.
    pub fn parse(value: &str) -> Option<bool> {
        let v = value.trim().to_ascii_lowercase();
        if v.is_empty() {
            return None;
        }
        let is_prefix = |word: &str, min: usize| v.len() >= min && word.starts_with(&v);
        if v == "1" || is_prefix("true", 1) || is_prefix("yes", 1) || is_prefix("on", 2) {
            Some(true)
        } else if v == "0" || is_prefix("false", 1) || is_prefix("no", 1) || is_prefix("off", 2) {
            Some(false)
        } else {
            None
        }
    }
}

impl fmt::Display for PgBool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0 { "on" } else { "off" })
    }
}

impl ConfigField for PgBool {
    fn visit<V: Visit>(&self, v: &mut V, key: &str, description: &'static str) {
        v.some(key, self, description)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match PgBool::parse(value) {
            Some(b) => {
                self.0 = b;
                Ok(())
            }
            None => Err(DataFusionError::External(Box::new(
                crate::error::SqlError::new(
                    crate::error::codes::INVALID_PARAMETER_VALUE,
                    format!(
                        "parameter \"productive.{key}\" requires a Boolean value, not {value:?}"
                    ),
                ),
            ))),
        }
    }

    fn reset(&mut self, _key: &str) -> Result<()> {
        self.0 = false;
        Ok(())
    }
}

/// How old a cached API answer a scan accepts: a default for every table
/// and overrides per table.
///
/// `SET productive.cache_ttl = '60s'` sets the default,
/// `SET productive.cache_ttl.tasks = '5m'` the time for `tasks` alone
/// (`'default'` removes that override). Durations are written as
/// `500ms`, `60s`, `5m`, `1h` (combinations like `1m 30s` too); `0` or
/// `off` turns the cache off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheTtl {
    pub default: Option<Duration>,
    pub tables: BTreeMap<String, Option<Duration>>,
}

impl CacheTtl {
    /// The time to live for scans of `table` (`None`: no cache).
    pub fn for_table(&self, table: &str) -> Option<Duration> {
        self.tables.get(table).copied().unwrap_or(self.default)
    }

    /// Parses a duration setting; `Ok(None)` is "off".
    pub fn parse(value: &str) -> std::result::Result<Option<Duration>, String> {
        let v = value.trim().to_ascii_lowercase();
        if v.is_empty() || v == "0" || PgBool::parse(&v) == Some(false) {
            return Ok(None);
        }
        humantime::parse_duration(&v)
            .map(|d| Some(d).filter(|d| !d.is_zero()))
            .map_err(|e| e.to_string())
    }

    fn show(ttl: Option<Duration>) -> String {
        match ttl {
            None => "off".into(),
            Some(d) => humantime::format_duration(d).to_string(),
        }
    }
}

impl fmt::Display for CacheTtl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&CacheTtl::show(self.default))
    }
}

impl ConfigField for CacheTtl {
    fn visit<V: Visit>(&self, v: &mut V, key: &str, description: &'static str) {
        v.some(key, self, description);
        for (table, ttl) in &self.tables {
            v.some(&format!("{key}.{table}"), CacheTtl::show(*ttl), description);
        }
    }

    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let table = key.to_ascii_lowercase();
        if !table.is_empty() && value.trim().eq_ignore_ascii_case("default") {
            self.tables.remove(&table);
            return Ok(());
        }
        let ttl = CacheTtl::parse(value).map_err(|reason| {
            let name = match key {
                "" => "cache_ttl".to_string(),
                table => format!("cache_ttl.{table}"),
            };
            DataFusionError::External(Box::new(
                crate::error::SqlError::new(
                    crate::error::codes::INVALID_PARAMETER_VALUE,
                    format!(
                        "invalid value for parameter \"productive.{name}\": {value:?} ({reason})"
                    ),
                )
                .with_hint("write a duration such as '60s', '5m' or '1h', or 'off'"),
            ))
        })?;
        if table.is_empty() {
            self.default = ttl;
        } else if crate::catalog::Catalog::get()
            .tables()
            .iter()
            .any(|t| t.name == table)
        {
            self.tables.insert(table, ttl);
        } else {
            return Err(DataFusionError::External(Box::new(
                crate::error::SqlError::new(
                    crate::error::codes::UNDEFINED_OBJECT,
                    format!(
                        "unrecognized configuration parameter \"productive.cache_ttl.{key}\": \
                         table not found"
                    ),
                )
                .with_hint("name a table after cache_ttl, e.g. productive.cache_ttl.tasks"),
            )));
        }
        Ok(())
    }

    fn reset(&mut self, key: &str) -> Result<()> {
        if key.is_empty() {
            *self = CacheTtl::default();
        } else {
            self.tables.remove(&key.to_ascii_lowercase());
        }
        Ok(())
    }
}
/// Default of `productive.max_scan_rows`: well above what dashboards read
/// at once, well below what takes the rate budget many minutes to page
/// through (200,000 rows are 1,000 pages).
pub const DEFAULT_MAX_SCAN_ROWS: u64 = 200_000;

extensions_options! {
    /// Settings a session can change with `SET productive.<name> = <value>`.
    pub struct ProductiveOptions {
        /// Show custom fields as columns of the nine objects that have them.
        pub use_custom_fields: PgBool, default = PgBool(false)
        /// Fail a statement that would make more than this many API
        /// requests, counted across all its scans and writes (0: no cap).
        pub max_requests: u64, default = 0
        /// Refuse a scan with no filter or LIMIT the API can apply when the
        /// table holds more rows than this, after its first page (0: no
        /// limit).
        pub max_scan_rows: u64, default = DEFAULT_MAX_SCAN_ROWS
        /// Pages of one scan fetched at the same time.
        pub page_concurrency: u64, default = 8
        /// An UPDATE or DELETE without WHERE that would change more rows
        /// than this is refused before any write (0: no limit).
        pub unfiltered_write_limit: u64, default = 50
        /// Reuse API answers up to this old for reads (off by default);
        /// `cache_ttl.<table>` sets one table's time.
        pub cache_ttl: CacheTtl, default = CacheTtl::default()
    }
}

impl ConfigExtension for ProductiveOptions {
    const PREFIX: &'static str = "productive";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_parse_like_postgres() {
        for v in ["on", "ON", "true", "t", "yes", "y", "1"] {
            assert_eq!(PgBool::parse(v), Some(true), "{v}");
        }
        for v in ["off", "OFF", "false", "f", "no", "n", "0"] {
            assert_eq!(PgBool::parse(v), Some(false), "{v}");
        }
        for v in ["o", "maybe", "", "2"] {
            assert_eq!(PgBool::parse(v), None, "{v}");
        }
    }

    #[test]
    fn cache_ttl_has_a_default_and_per_table_times() {
        let mut o = ProductiveOptions::default();
        assert_eq!(o.cache_ttl.for_table("tasks"), None);
        o.set("cache_ttl", "60s").unwrap();
        o.set("cache_ttl.tasks", "5m").unwrap();
        o.set("cache_ttl.people", "off").unwrap();
        assert_eq!(
            o.cache_ttl.for_table("projects"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            o.cache_ttl.for_table("tasks"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(o.cache_ttl.for_table("people"), None);
        o.set("cache_ttl.tasks", "default").unwrap();
        assert_eq!(
            o.cache_ttl.for_table("tasks"),
            Some(Duration::from_secs(60))
        );
        o.set("cache_ttl", "0").unwrap();
        assert_eq!(o.cache_ttl.for_table("projects"), None);
        o.set("cache_ttl", "1m 30s").unwrap();
        assert_eq!(o.cache_ttl.default, Some(Duration::from_secs(90)));

        let err = o.set("cache_ttl", "soon").unwrap_err().to_string();
        assert!(err.contains("productive.cache_ttl"), "{err}");
        let err = o.set("cache_ttl.nope", "5s").unwrap_err().to_string();
        assert!(err.contains("productive.cache_ttl.nope"), "{err}");
    }

    #[test]
    fn cache_ttl_shows_every_override() {
        use datafusion::common::config::ExtensionOptions;
        let mut o = ProductiveOptions::default();
        ExtensionOptions::set(&mut o, "cache_ttl.tasks", "5m").unwrap();
        let entries = ExtensionOptions::entries(&o);
        let show = |key: &str| {
            entries
                .iter()
                .find(|e| e.key == key)
                .and_then(|e| e.value.clone())
        };
        assert_eq!(show("cache_ttl").as_deref(), Some("off"));
        assert_eq!(show("cache_ttl.tasks").as_deref(), Some("5m"));
    }

    #[test]
    fn set_reports_the_setting_and_value() {
        let mut b = PgBool::default();
        b.set("use_custom_fields", "on").unwrap();
        assert!(b.0);
        let err = b.set("use_custom_fields", "maybe").unwrap_err().to_string();
        assert!(err.contains("requires a Boolean value"), "{err}");
    }
}
