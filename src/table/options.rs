//! Session settings of the `productive` namespace (`SET productive.x = …`).

use datafusion::common::config::ConfigExtension;
use datafusion::common::extensions_options;

extensions_options! {
    /// Settings a session can change with `SET productive.<name> = <value>`.
    pub struct ProductiveOptions {
        /// Show custom fields as columns of the nine objects that have them.
        pub use_custom_fields: bool, default = false
        /// Fail a scan that would make more than this many API requests
        /// (0: no cap).
        pub max_requests: u64, default = 0
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
