//! The `karma.model.loglikelihood/1` extension: scoring continuations of a context by summed
//! log-probability (lm-eval-harness style multiple choice).

use abi_stable::{
    std_types::{RResult, RSlice, RStr, RVec},
    StableAbi,
};

use super::{ModelState, PluginError};

/// Id of the extension, answered by [`super::ModelVTable::get_extension`].
pub const LOGLIKELIHOOD_EXTENSION: &str = "karma.model.loglikelihood/1";

/// One context and the continuations to score after it.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct ContinuationRequest<'a> {
    /// Host-assigned id; the output for this request carries it.
    pub id: u64,
    /// Text the model conditions on, used verbatim (no chat template).
    pub context: RStr<'a>,
    /// Candidate continuations (e.g. `" A"`, `" B"`), each scored independently.
    pub continuations: RSlice<'a, RStr<'a>>,
}

/// The score of one continuation.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq)]
pub struct ContinuationScore {
    /// Sum of the log-probabilities of the continuation's tokens given the context.
    pub logprob: f64,
    /// Whether greedy decoding from the context would produce exactly these tokens.
    pub is_greedy: bool,
    /// Number of tokens in the continuation.
    pub tokens: u32,
}

/// The scores for one request, in continuation order.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct ContinuationOutput {
    /// The request's id.
    pub id: u64,
    /// One score per continuation, or why this request failed.
    pub result: RResult<RVec<ContinuationScore>, PluginError>,
    /// Tokens in the context.
    pub context_tokens: u64,
}

/// The extension's function table.
#[repr(C)]
#[derive(StableAbi)]
pub struct LoglikelihoodTable {
    /// Scores a batch of requests on a loaded instance. One output per request; a per-request
    /// failure is that output's `RErr`, a whole-batch failure the call's.
    pub score: unsafe extern "C" fn(
        state: *mut ModelState,
        requests: RSlice<'_, ContinuationRequest<'_>>,
    ) -> RResult<RVec<ContinuationOutput>, PluginError>,
}
