//! Reporting the work in flight to the host (`karma.host.progress/1`), for models whose batches
//! take long (API models waiting on servers): the host shows the status beside its progress
//! bar. A host without the extension ignores it.

use std::sync::OnceLock;

use abi_stable::{abi_stability::abi_checking::check_layout_compatibility, std_types::RStr, StableAbi};

use crate::abi::{ProgressTable, PROGRESS_EXTENSION};

/// The host's table, looked up and checked once.
fn table() -> Option<&'static ProgressTable> {
    static TABLE: OnceLock<Option<&'static ProgressTable>> = OnceLock::new();
    *TABLE.get_or_init(|| {
        let host = super::logging::host()?;
        let extension =
            (host.get_extension())(host.context(), RStr::from_str(PROGRESS_EXTENSION)).into_option()?;
        check_layout_compatibility(ProgressTable::LAYOUT, extension.layout).ok()?;
        // SAFETY: the table is a `'static` value whose layout was just checked.
        Some(unsafe { &*extension.table.cast::<ProgressTable>() })
    })
}

/// Replaces this plugin's status line on the host (an empty `status` clears it).
pub fn report(status: &str) {
    if let (Some(table), Some(host)) = (table(), super::logging::host()) {
        (table.report)(host.context(), RStr::from_str(status));
    }
}
