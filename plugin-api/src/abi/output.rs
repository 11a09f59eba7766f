//! What a plugin returns for each item.

use abi_stable::{
    std_types::{ROption, RResult, RString},
    StableAbi,
};

use super::PluginError;

/// The result for one item of a batch. Exactly one per item; the host reports a missing,
/// duplicate or unknown `id` as a plugin fault.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct ItemOutput {
    /// The id of the [`BatchItem`](super::BatchItem) this answers.
    pub id: u64,
    /// The generated text, or why this item failed (other items still count).
    pub result: RResult<RString, PluginError>,
    /// Tokens in the prompt, when the model counts them.
    pub prompt_tokens: ROption<u64>,
    /// Tokens generated, when the model counts them.
    pub completion_tokens: ROption<u64>,
    /// Time spent on this item in microseconds (for batched models: the batch's time).
    pub latency_us: u64,
}
