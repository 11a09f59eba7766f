//! The `karma.model.item_details/1` extension: the one growth point for per-item facts that
//! [`ItemOutput`](super::ItemOutput) (frozen for ABI 1.x) has no field for: finish reason,
//! truncation, reasoning tokens, cost, audio seconds, retries.
//!
//! Right after a successful `run`, a host that finds this extension calls `take` once and gets
//! a JSON object for each item of that batch that has details. Keys are open (unknown ones are
//! kept verbatim); the host understands these:
//!
//! | key                | type   | meaning                                                     |
//! |--------------------|--------|-------------------------------------------------------------|
//! | `finish_reason`    | string | why generation stopped: `stop`, `length`, `content_filter`  |
//! | `truncated`        | bool   | the answer was cut by the token limit                       |
//! | `reasoning_tokens` | int    | hidden reasoning tokens (counted in `completion_tokens`)    |
//! | `cost_usd`         | float  | estimated price of the call                                 |
//! | `attempts`         | int    | calls made, retries included                                |
//! | `audio_seconds`    | float  | length of the transcribed audio                             |

use abi_stable::{
    std_types::{RString, RVec},
    StableAbi,
};

use super::ModelState;

/// Id of the extension, answered by [`super::ModelVTable::get_extension`].
pub const ITEM_DETAILS_EXTENSION: &str = "karma.model.item_details/1";

/// The details of one item of the last batch.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct ItemDetails {
    /// The item's id.
    pub id: u64,
    /// A JSON object.
    pub json: RString,
}

/// The extension's function table.
#[repr(C)]
#[derive(StableAbi)]
pub struct ItemDetailsTable {
    /// The details of the items of the last `run` on this instance (only items that have some),
    /// handed over once: a second call returns nothing.
    pub take: unsafe extern "C" fn(state: *mut ModelState) -> RVec<ItemDetails>,
}
