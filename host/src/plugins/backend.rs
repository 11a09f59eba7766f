//! The engine's view of a model: host types in, host types out. The ABI's borrowed views are
//! built here, at the plugin boundary, and nowhere in the engine; a worker-process backend can
//! implement the same trait.

use abi_stable::std_types::{RResult, RSlice, RStr};
use karma_plugin_api::abi::{ContinuationRequest, PluginError};

use super::{batch_view::with_batch_view, CallError, ModelInstance};
use crate::datasets::item::OwnedItem;

/// A generated answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    pub text: String,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub latency_us: u64,
    /// The item's details as the plugin gave them: a JSON object (`finish_reason`, `truncated`,
    /// `reasoning_tokens`, `cost_usd`, ...; see `karma.model.item_details/1`), if any.
    pub details: Option<String>,
}

/// Why one item failed (the others still count).
#[derive(Clone, Debug, PartialEq)]
pub struct ItemFailure {
    /// The plugin's error code name (`invalid_input`, `panicked`, ...).
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for ItemFailure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{} ({})", self.message, self.code)
    }
}

impl From<PluginError> for ItemFailure {
    fn from(error: PluginError) -> Self {
        ItemFailure { code: error.code.name().to_owned(), message: error.message.into_string() }
    }
}

/// Continuations to score after a context.
pub struct ScoreRequest<'a> {
    pub id: u64,
    pub context: &'a str,
    pub continuations: &'a [String],
}

/// The log-probability of each continuation, in request order.
#[derive(Clone, Debug, PartialEq)]
pub struct ContinuationScores {
    pub logprobs: Vec<f64>,
    pub context_tokens: u64,
}

/// Where a model's plugin code runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// In the karma-host process (fastest; a crashing plugin ends the run).
    InProcess,
    /// In a child process that is restarted when it dies; items that kill it are quarantined.
    Worker,
}

impl Isolation {
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::InProcess => "in-process",
            Isolation::Worker => "worker",
        }
    }
}

/// Creates an instance of `model` from `config_json` (which validates it, loading nothing),
/// in process or in a worker.
pub fn open_backend(
    model: &super::RegisteredModel,
    config_json: &str,
    isolation: Isolation,
    batch_timeout: std::time::Duration,
) -> Result<Box<dyn Backend>, CallError> {
    Ok(match isolation {
        Isolation::InProcess => Box::new(ModelInstance::create(model, config_json)?),
        Isolation::Worker => Box::new(super::WorkerBackend::start(model, config_json, batch_timeout)?),
    })
}

/// A model the engine can call.
pub trait Backend {
    /// Loads weights and clients (once, before the first call).
    fn load(&mut self) -> Result<(), CallError>;

    /// Whether the model offers log-likelihood scoring (`score_continuations`).
    fn scores_continuations(&mut self) -> Result<bool, CallError>;

    /// One result per item, in item order (paired by id, never by position).
    fn generate(
        &mut self,
        items: &[&OwnedItem],
        show_expected_output: bool,
    ) -> Result<Vec<Result<Completion, ItemFailure>>, CallError>;

    /// One result per request, in request order.
    fn score_continuations(
        &mut self,
        requests: &[ScoreRequest<'_>],
    ) -> Result<Vec<Result<ContinuationScores, ItemFailure>>, CallError>;
}

impl Backend for ModelInstance {
    fn load(&mut self) -> Result<(), CallError> {
        ModelInstance::load(self)
    }

    fn scores_continuations(&mut self) -> Result<bool, CallError> {
        ModelInstance::scores_continuations(self)
    }

    fn generate(
        &mut self,
        items: &[&OwnedItem],
        show_expected_output: bool,
    ) -> Result<Vec<Result<Completion, ItemFailure>>, CallError> {
        let outputs = with_batch_view(items, show_expected_output, |view| self.run(view))?;
        let mut details = self.take_item_details()?;
        Ok(outputs
            .into_iter()
            .map(|output| match output.result {
                RResult::ROk(text) => Ok(Completion {
                    text: text.into_string(),
                    prompt_tokens: output.prompt_tokens.into_option(),
                    completion_tokens: output.completion_tokens.into_option(),
                    latency_us: output.latency_us,
                    details: details.remove(&output.id),
                }),
                RResult::RErr(error) => Err(error.into()),
            })
            .collect())
    }

    fn score_continuations(
        &mut self,
        requests: &[ScoreRequest<'_>],
    ) -> Result<Vec<Result<ContinuationScores, ItemFailure>>, CallError> {
        let views: Vec<Vec<RStr<'_>>> = requests
            .iter()
            .map(|request| request.continuations.iter().map(|text| RStr::from_str(text)).collect())
            .collect();
        let abi_requests: Vec<ContinuationRequest<'_>> = requests
            .iter()
            .zip(&views)
            .map(|(request, views)| ContinuationRequest {
                id: request.id,
                context: RStr::from_str(request.context),
                continuations: RSlice::from_slice(views),
            })
            .collect();
        let outputs = ModelInstance::score_continuations(self, &abi_requests)?;
        Ok(outputs
            .into_iter()
            .map(|output| match output.result {
                RResult::ROk(scores) => Ok(ContinuationScores {
                    logprobs: scores.iter().map(|score| score.logprob).collect(),
                    context_tokens: output.context_tokens,
                }),
                RResult::RErr(error) => Err(error.into()),
            })
            .collect())
    }
}
