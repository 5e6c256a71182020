//! Session settings of the `productive` namespace (`SET productive.x = …`).

use std::fmt;

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
    fn set_reports_the_setting_and_value() {
        let mut b = PgBool::default();
        b.set("use_custom_fields", "on").unwrap();
        assert!(b.0);
        let err = b.set("use_custom_fields", "maybe").unwrap_err().to_string();
        assert!(err.contains("requires a Boolean value"), "{err}");
    }
}
