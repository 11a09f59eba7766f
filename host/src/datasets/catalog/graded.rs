//! Datasets whose answers a judge model grades (`--judge`).

use super::{ArgSpec, DatasetDefinition};
use crate::datasets::task::RubricConversation;

/// In listing order.
pub(super) const DATASETS: &[DatasetDefinition] = &[DatasetDefinition {
    name: "Tonic/Health-Bench-Eval-OSS-2025-07",
    aliases: &["healthbench"],
    description:
        "HealthBench (OSS eval set): health conversations continued by the model, each answer graded \
                  by a judge against physician-written rubric criteria",
    repo_id: "Tonic/Health-Bench-Eval-OSS-2025-07",
    config: None,
    config_arg: None,
    split: "oss_eval",
    revision: Some("0865a52c"),
    family: &RubricConversation,
    metrics: &["rubric_evaluation"],
    processors: &[],
    args: &[ArgSpec {
        name: "system_prompt",
        required: false,
        default: Some("You are a helpful assistant."),
        description:
            "the system prompt before the conversation (the one simple-evals' samplers and KARMA send; \
                      `none` sends none)",
        choices: &[],
    }],
}];
