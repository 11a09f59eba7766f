//! Reference baseline models for karma-host.
//!
//! They answer without any learned weights, so they give the floor every real model must beat
//! (`karma/random-option` is chance level on an MCQ dataset) and a zero-cost model for measuring
//! the host's own overhead.
//!
//! * `karma/constant`: always `Final Answer: (<value>)`.
//! * `karma/echo`: returns its input.
//! * `karma/first-option`: picks the first option listed in `other_args.options`.
//! * `karma/random-option`: picks an option uniformly at random, reproducibly from `seed`.
//! * `karma/describe-input`: reports what it received (text sizes, turns, each image's and
//!   recording's format, size and SHA-256), for checking a dataset's plumbing.

use karma_plugin_api::sdk::prelude::*;
use serde::Deserialize;

mod describe;
mod rules;

pub use describe::DescribeInput;
pub use rules::{Constant, Echo, FirstOption, RandomOption};

/// How one baseline answers a single item.
pub trait Rule: Send + Sized + 'static {
    /// The rule's configuration keys.
    type Config: serde::de::DeserializeOwned;
    /// Builds the rule from its validated configuration.
    fn new(config: Self::Config) -> Result<Self, PluginError>;
    /// The answer for one item, or why this item cannot be answered.
    fn answer(&self, item: &Item<'_>) -> Result<String, PluginError>;
}

/// Adapts a per-item [`Rule`] to the SDK's batch-oriented [`Model`].
pub struct Baseline<R>(R);

impl<R: Rule> Model for Baseline<R> {
    type Config = R::Config;
    type Prepared = Vec<Result<String, PluginError>>;
    type Raw = Vec<Result<String, PluginError>>;

    fn create(config: R::Config, _context: &ModelContext) -> Result<Self, PluginError> {
        R::new(config).map(Baseline)
    }

    fn preprocess(&mut self, items: &[Item<'_>]) -> Result<Self::Prepared, PluginError> {
        Ok(items.iter().map(|item| self.0.answer(item)).collect())
    }

    fn run(&mut self, answers: Self::Prepared) -> Result<Self::Raw, PluginError> {
        Ok(answers)
    }

    fn postprocess(
        &mut self,
        answers: Self::Raw,
        _items: &[Item<'_>],
    ) -> Result<Vec<Result<Generation, PluginError>>, PluginError> {
        Ok(answers.into_iter().map(|answer| answer.map(Generation::text)).collect())
    }
}

/// The configuration of a baseline that takes no keys.
#[derive(Deserialize)]
pub struct NoConfig {}

fn baseline_meta(name: &str, description: &str, loader_kwargs: serde_json::Value) -> ModelMeta {
    let mut meta = ModelMeta::new(name, ModelType::TextGeneration);
    meta.description = Some(description.to_owned());
    meta.framework = vec!["karma-baseline".to_owned()];
    meta.n_parameters = Some(0);
    meta.memory_usage_mb = Some(0);
    meta.version = Some(env!("CARGO_PKG_VERSION").to_owned());
    meta.languages = vec!["mul".to_owned()];
    meta.open_weights = Some(true);
    meta.license = Some("Apache-2.0".to_owned());
    if let serde_json::Value::Object(map) = loader_kwargs {
        meta.loader_kwargs = map;
    }
    meta
}

fn constant_meta() -> ModelMeta {
    baseline_meta(
        "karma/constant",
        "Always answers `Final Answer: (<value>)`; the floor for MCQ datasets with a skewed key",
        serde_json::json!({"value": "A"}),
    )
}

fn echo_meta() -> ModelMeta {
    baseline_meta(
        "karma/echo",
        "Returns its input unchanged (the last user turn for conversations)",
        serde_json::json!({}),
    )
}

fn first_option_meta() -> ModelMeta {
    baseline_meta(
        "karma/first-option",
        "Answers with the first option listed in other_args.options",
        serde_json::json!({}),
    )
}

fn random_option_meta() -> ModelMeta {
    baseline_meta(
        "karma/random-option",
        "Picks an option uniformly at random, reproducibly per item and seed: chance level",
        serde_json::json!({"seed": 0}),
    )
}

fn describe_input_meta() -> ModelMeta {
    let mut meta = baseline_meta(
        "karma/describe-input",
        "Reports what it received (text sizes, turns, each image's and recording's format, size and SHA-256); \
         report=digest answers the first medium's SHA-256 as eight words",
        serde_json::json!({"report": "json"}),
    );
    meta.model_type = ModelType::Multimodal;
    meta.modalities = vec![Modality::Text, Modality::Image, Modality::Audio, Modality::Video];
    meta
}

export_plugin! {
    Baseline<Constant> => constant_meta,
    Baseline<Echo> => echo_meta,
    Baseline<FirstOption> => first_option_meta,
    Baseline<RandomOption> => random_option_meta,
    Baseline<DescribeInput> => describe_input_meta,
}
