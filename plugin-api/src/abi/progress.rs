//! The `karma.host.progress/1` host extension: a plugin's one-line status of the work in flight
//! (`32 requests in flight, 4 retries, limit 32`), shown by the host beside its progress bar.

use abi_stable::{std_types::RStr, StableAbi};

use super::HostContextPtr;

/// Id of the extension, answered by [`super::HostApi::get_extension`].
pub const PROGRESS_EXTENSION: &str = "karma.host.progress/1";

/// The extension's function table.
#[repr(C)]
#[derive(StableAbi)]
pub struct ProgressTable {
    /// Replaces the plugin's status line; an empty status clears it. Cheap, callable from any
    /// thread; the host may show only the latest status.
    pub report: extern "C" fn(context: HostContextPtr, status: RStr<'_>),
}
