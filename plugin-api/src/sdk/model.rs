//! The trait a model implements.

use serde::de::DeserializeOwned;

use super::Item;
use crate::abi::{ContinuationScore, ErrorCode, ExtensionRef, ModelMeta, PluginError};

/// Where and as what a model instance was created.
#[derive(Clone, Debug)]
pub struct ModelContext {
    /// The registry name the host asked for (one of the plugin's models).
    pub model_name: String,
    /// That model's metadata.
    pub meta: ModelMeta,
    /// `model_path` from the configuration (`--model-path`): a local path or hub id that
    /// overrides the default weights, if given.
    pub model_path: Option<String>,
}

/// The result for one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generation {
    /// The model's answer.
    pub text: String,
    /// Tokens in the prompt, if counted.
    pub prompt_tokens: Option<u64>,
    /// Tokens generated, if counted.
    pub completion_tokens: Option<u64>,
    /// Facts about this item the fields above have no place for (`finish_reason`, `truncated`,
    /// `reasoning_tokens`, `cost_usd`, ...: see [`crate::abi::ITEM_DETAILS_EXTENSION`]). They
    /// reach the host through the `karma.model.item_details/1` extension.
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl Generation {
    /// A generation with text only.
    pub fn text(text: impl Into<String>) -> Self {
        Generation {
            text: text.into(),
            prompt_tokens: None,
            completion_tokens: None,
            details: serde_json::Map::new(),
        }
    }

    /// Adds one detail (see [`Generation::details`]).
    pub fn with_detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

/// A model, written in safe Rust. The SDK turns it into the ABI's vtable.
///
/// The four steps mirror KARMA's `BaseModel`: `load` once, then for each batch
/// `preprocess` → `run` → `postprocess`. Every call is protected by the panic firewall: a panic
/// reaches the host as a `PANICKED` error, never as a crash.
pub trait Model: Send + Sized + 'static {
    /// The configuration. The SDK fills it from the model's `loader_kwargs` defaults merged with
    /// the user's settings; a key this type does not read is rejected as `INVALID_INPUT`.
    type Config: DeserializeOwned;
    /// What `preprocess` produces for `run` (e.g. token ids).
    type Prepared;
    /// What `run` produces for `postprocess` (e.g. raw generated tokens).
    type Raw;

    /// Validates the configuration and creates an instance. Must be cheap: no weights, no
    /// network (the host calls it for `--dry-run`).
    fn create(config: Self::Config, context: &ModelContext) -> Result<Self, PluginError>;

    /// Loads weights, tokenizers, clients. Called once before the first batch.
    fn load(&mut self) -> Result<(), PluginError> {
        Ok(())
    }

    /// Turns a batch of items into the model's input form.
    fn preprocess(&mut self, items: &[Item<'_>]) -> Result<Self::Prepared, PluginError>;

    /// Runs the model.
    fn run(&mut self, prepared: Self::Prepared) -> Result<Self::Raw, PluginError>;

    /// Turns raw output into one result per item, in item order. A per-item `Err` fails only
    /// that item.
    fn postprocess(
        &mut self,
        raw: Self::Raw,
        items: &[Item<'_>],
    ) -> Result<Vec<Result<Generation, PluginError>>, PluginError>;

    /// Extra capabilities by id (see [`crate::abi::ExtensionRef`]). None by default.
    fn extension(&self, _id: &str) -> Option<ExtensionRef> {
        None
    }

    /// Whether this instance scores continuations by log-likelihood; `true` makes the SDK offer
    /// the `karma.model.loglikelihood/1` extension backed by [`Model::score_continuations`].
    fn scores_continuations(&self) -> bool {
        false
    }

    /// Scores each request's continuations after its context (one result per request, in
    /// order; a per-request `Err` fails only that request). Called only on a loaded instance.
    fn score_continuations(
        &mut self,
        requests: &[ContinuationRequest<'_>],
    ) -> Result<Vec<Result<ScoredContinuations, PluginError>>, PluginError> {
        let _ = requests;
        Err(PluginError::new(ErrorCode::UNSUPPORTED, "this model does not score continuations"))
    }
}

/// A request to score continuations, borrowed from the host.
#[derive(Clone, Debug)]
pub struct ContinuationRequest<'a> {
    /// Host-assigned id.
    pub id: u64,
    /// Text to condition on, verbatim (no chat template).
    pub context: &'a str,
    /// Candidates scored independently after the context.
    pub continuations: Vec<&'a str>,
}

/// The scores of one request's continuations, in order, plus the context's token count.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoredContinuations {
    /// One score per continuation.
    pub scores: Vec<ContinuationScore>,
    /// Tokens in the context.
    pub context_tokens: u64,
}
