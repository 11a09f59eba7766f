//! The last steps of one item: extraction (when the cache had none), the grades, the counters,
//! the metrics' statistics and its samples line.

use super::{
    grading::CriterionVerdict,
    outcome::{BadRowRecord, CriterionGrade, SampleLine, SampleRecord, BAD_ROWS_LISTED},
    read::Pending,
    run_dataset::Progress,
    usage::AnswerFacts,
};
use crate::{
    cache::{CacheKey, CachedExtraction, CachedOutput},
    datasets::task::Reference,
    metrics::{Graded, Sample},
};

/// The outcome of one item before extraction.
pub(super) enum ItemResult {
    Output { output: CachedOutput, from_cache: bool, extraction: Option<CachedExtraction> },
    Failed(String),
}

/// Counts a bad row as an item that failed, listing the first few in the results.
pub(super) fn record_bad_row(progress: &mut Progress<'_>, bad: BadRowRecord, samples: &mut Vec<SampleLine>) {
    let outcome = &mut progress.outcome;
    outcome.num_items += 1;
    outcome.num_failed += 1;
    outcome.num_bad_rows += 1;
    if outcome.bad_rows.len() < BAD_ROWS_LISTED {
        outcome.bad_rows.push(bad.clone());
    }
    if progress.plan.collect_samples {
        samples.push(SampleLine::BadRow(bad));
    }
}

/// Extraction (if not cached), counters, scoring and the sample record of one item. `grades`
/// are the judge's verdicts when the dataset has a grader. Returns the extraction to store
/// when a cached output had none under the current rule.
pub(super) fn finish_item(
    progress: &mut Progress<'_>,
    pending: &Pending,
    key: CacheKey,
    result: ItemResult,
    grades: Option<Result<Vec<CriterionVerdict>, String>>,
) -> (SampleRecord, Option<(CacheKey, Option<String>)>) {
    let answer = &pending.key;
    let collect = progress.plan.collect_samples;
    // Texts are copied into the record only when samples are written.
    let copy = |text: &str| if collect { text.to_owned() } else { String::new() };
    let mut sample = SampleRecord {
        dataset: copy(&progress.dataset.name),
        id: copy(&answer.source_id),
        prompt: if collect { prompt_text(&pending.item) } else { String::new() },
        raw_output: None,
        prediction: None,
        expected: copy(answer.reference.primary()),
        correct: None,
        from_cache: false,
        error: None,
        input_tokens: None,
        output_tokens: None,
        latency_ms: None,
        group: if collect { answer.group.clone() } else { None },
        details: None,
        grades: None,
    };
    progress.outcome.num_items += 1;
    let mut late = None;
    let (output, from_cache, extraction) = match result {
        ItemResult::Output { output, from_cache, extraction } => (output, from_cache, extraction),
        ItemResult::Failed(message) => {
            progress.outcome.cache_misses += 1;
            progress.outcome.num_failed += 1;
            sample.error = Some(message);
            return (sample, None);
        }
    };
    let prediction = match extraction {
        Some(cached) => cached.prediction,
        None => {
            let prediction = progress.extraction.apply(&output.raw_output, answer.reference.letters());
            late = Some((key, prediction.clone()));
            prediction
        }
    };
    if from_cache {
        progress.outcome.cache_hits += 1;
    } else {
        progress.outcome.cache_misses += 1;
    }
    let facts = AnswerFacts::read(output.details.as_deref());
    if facts.truncated {
        progress.outcome.num_truncated += 1;
    }
    sample.from_cache = from_cache;
    sample.input_tokens = output.prompt_tokens;
    sample.output_tokens = output.completion_tokens;
    sample.latency_ms = Some(output.latency_us as f64 / 1000.0);
    if collect {
        sample.details =
            output.details.as_deref().and_then(|text| serde_json::from_str(text).ok()).map(Box::new);
        sample.raw_output = Some(output.raw_output);
    }
    let verdicts = match grades {
        Some(Err(message)) => {
            // The answer exists (and is cached) but could not be graded: a failure, not a zero.
            progress.outcome.num_failed += 1;
            sample.error = Some(message);
            sample.prediction = if collect { prediction } else { None };
            return (sample, late);
        }
        Some(Ok(verdicts)) => Some(verdicts),
        None => None,
    };
    if prediction.is_none() {
        progress.outcome.num_unparsed += 1;
    }
    let other_args: serde_json::Value =
        if progress.accumulators.iter().any(|(metric, _)| metric.needs_other_args()) {
            serde_json::from_str(&pending.item.other_args).unwrap_or_default()
        } else {
            serde_json::Value::Null
        };
    let processed = super::processing::Processed::apply(
        &progress.dataset.processors,
        prediction.as_deref(),
        &answer.reference,
    );
    let mut scored = match &processed {
        Some(processed) => processed.sample(&other_args),
        None => Sample {
            prediction: prediction.as_deref(),
            reference: answer.reference.primary(),
            references: answer.reference.texts(),
            other_args: &other_args,
            graded: None,
        },
    };
    let met: Vec<bool> = verdicts.iter().flatten().map(|verdict| verdict.criteria_met).collect();
    if let (Some(_), Reference::Rubric(rubric)) = (&verdicts, &answer.reference) {
        scored.graded =
            Some(Graded { criteria: &rubric.criteria, met: &met, example_tags: &rubric.example_tags });
    }
    let group =
        answer.group.as_ref().map(|group| match progress.group_names.iter().position(|name| name == group) {
            Some(index) => index as u32,
            None => {
                progress.group_names.push(group.clone());
                (progress.group_names.len() - 1) as u32
            }
        });
    for (metric, accumulator) in &mut progress.accumulators {
        accumulator.add(metric.as_ref(), &scored, group);
    }
    sample.correct = answer.reference.correct(prediction.as_deref());
    sample.prediction = if collect { prediction } else { None };
    if let (true, Some(verdicts), Reference::Rubric(rubric)) = (collect, verdicts, &answer.reference) {
        sample.grades = Some(
            rubric
                .criteria
                .iter()
                .zip(verdicts)
                .map(|(criterion, verdict)| CriterionGrade {
                    criterion: criterion.criterion.clone(),
                    points: criterion.points,
                    tags: criterion.tags.clone(),
                    criteria_met: verdict.criteria_met,
                    explanation: verdict.explanation,
                    from_cache: verdict.from_cache,
                })
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );
    }
    (sample, late)
}

/// What the model was asked, for the samples file: its input, or for a conversation item (a
/// rubric dataset's) the turns as `role: content` lines, the system prompt first.
fn prompt_text(item: &crate::datasets::item::OwnedItem) -> String {
    if let Some(input) = &item.input {
        return input.clone();
    }
    let system = item.system_prompt.iter().map(|content| format!("system: {content}"));
    let turns = item.conversation.iter().map(|turn| format!("{}: {}", turn.role, turn.content));
    system.chain(turns).collect::<Vec<_>>().join("\n\n")
}
