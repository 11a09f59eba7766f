//! Log-likelihood scoring of option letters: each completion is the JSON object of
//! log-probabilities by letter that `Extraction::LoglikelihoodArgmax` reads.

use std::time::Instant;

use crate::{
    datasets::{item::OwnedItem, prompt, task::ScoringKey},
    plugins::{Backend, CallError, Completion, ItemFailure, ScoreRequest},
};

/// Scores every item's option letters as continuations of its context; each completion's text
/// is the JSON object of log-probabilities by letter that `Extraction::LoglikelihoodArgmax`
/// reads.
pub(super) fn score_options(
    backend: &mut dyn Backend,
    items: &[&OwnedItem],
    answers: &[&ScoringKey],
) -> Result<Vec<Result<Completion, ItemFailure>>, CallError> {
    let started = Instant::now();
    let continuations: Vec<Vec<String>> = answers
        .iter()
        .map(|answer| {
            answer
                .reference
                .letters()
                .iter()
                .map(|letter| prompt::loglikelihood_continuation(letter))
                .collect()
        })
        .collect();
    let requests: Vec<ScoreRequest<'_>> = items
        .iter()
        .zip(&continuations)
        .map(|(item, continuations)| ScoreRequest {
            id: item.id,
            context: item.input.as_deref().unwrap_or_default(),
            continuations,
        })
        .collect();
    let outputs = backend.score_continuations(&requests)?;
    let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    Ok(outputs
        .into_iter()
        .zip(answers)
        .map(|(output, answer)| {
            let scores = output?;
            if scores.logprobs.iter().any(|logprob| !logprob.is_finite()) {
                // JSON cannot carry them, and a NaN ranks nothing: a failure, not an answer.
                return Err(ItemFailure {
                    code: "internal".to_owned(),
                    message: format!("non-finite log-probabilities {:?}", scores.logprobs),
                });
            }
            let by_letter: serde_json::Map<String, serde_json::Value> = answer
                .reference
                .letters()
                .iter()
                .zip(&scores.logprobs)
                .map(|(letter, logprob)| (letter.clone(), serde_json::json!(logprob)))
                .collect();
            Ok(Completion {
                text: serde_json::Value::Object(by_letter).to_string(),
                prompt_tokens: Some(scores.context_tokens),
                completion_tokens: None,
                latency_us,
                details: None,
            })
        })
        .collect())
}
