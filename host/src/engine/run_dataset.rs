//! One dataset through the loop: fetch its files, read rows a window ahead (`read.rs`), look
//! the window up in the cache, send the misses to the plugin in batches, extract, score.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use super::{
    interrupted,
    outcome::{
        DatasetOutcome, DatasetStatus, MetricResult, SampleLine, SampleRecord, Timings, BAD_ROWS_LISTED,
    },
    plan::DatasetSource,
    read::{Pending, Window, WindowReader, LOOKUP_WINDOW, WINDOWS_AHEAD},
    scoring::Accumulator,
    CacheMode, DatasetPlan, EvalPlan, Reporter, Scoring,
};
use crate::{
    cache::{Cache, CacheKey, CachedExtraction, CachedOutput, KeyContext, NewOutput},
    datasets::{extract::Extraction, hub, item::OwnedItem, prompt, source, task::ScoringKey},
    metrics::{self, Sample},
    plugins::{Backend, CallError, Completion, ItemFailure, ScoreRequest},
};
/// State carried across a dataset's batches.
struct Progress<'a> {
    plan: &'a EvalPlan<'a>,
    dataset: &'a DatasetPlan,
    key_context: KeyContext,
    extraction: Extraction,
    accumulators: Vec<(metrics::MetricHandle, Accumulator)>,
    /// Subgroup names; accumulators refer to them by index.
    group_names: Vec<String>,
    outcome: DatasetOutcome,
    model_time: Duration,
}

pub(super) fn run(
    plan: &EvalPlan<'_>,
    dataset: &DatasetPlan,
    backend: &mut dyn Backend,
    loaded: &mut bool,
    mut cache: Option<&mut Cache>,
    reporter: &dyn Reporter,
    on_samples: &mut dyn FnMut(&[SampleLine]) -> std::io::Result<()>,
) -> DatasetOutcome {
    let started = Instant::now();
    let mut progress = Progress {
        plan,
        dataset,
        key_context: plan.key_context(),
        extraction: plan.extraction(dataset),
        accumulators: dataset
            .metrics
            .iter()
            .map(|metric| (metric.clone(), Accumulator::new(metric.clone())))
            .collect(),
        group_names: Vec::new(),
        outcome: DatasetOutcome::not_started(dataset, DatasetStatus::Completed),
        model_time: Duration::ZERO,
    };
    reporter.dataset_started(&dataset.name, plan.max_samples);
    let files = match &dataset.source {
        DatasetSource::Local { files } => Ok(files.clone()),
        DatasetSource::Hub { repo, config, split, revision } => {
            hub::fetch(&super::plan::hub_request(repo, config.as_deref(), split, revision), plan.offline).map(
                |snapshot| {
                    progress.outcome.revision = Some(snapshot.commit);
                    snapshot.files
                },
            )
        }
    };
    let result = files.map_err(|error| error.to_string()).and_then(|files| {
        progress.outcome.files = files.clone();
        let counted = reporter.wants_row_counts().then(|| source::count_rows(&files, plan.max_samples));
        if let Some(rows) = counted.flatten() {
            reporter.dataset_rows(rows);
        }
        // The content hash (a full read of the files, for the manifest; a local dataset's
        // revision) runs beside the evaluation instead of before it.
        std::thread::scope(|scope| {
            let hashing = scope.spawn(|| source::content_hash_unless(&files, &interrupted));
            let evaluated = evaluate_rows(
                &mut progress,
                files.clone(),
                backend,
                loaded,
                &mut cache,
                reporter,
                on_samples,
            );
            let hash = hashing
                .join()
                .map_err(|_| "hashing the dataset files failed unexpectedly".to_owned())?
                .map_err(|error| error.to_string())?;
            // None when interrupted: the revision of a half-hashed local dataset is unknown.
            if let (DatasetSource::Local { .. }, Some(hash)) = (&dataset.source, &hash) {
                progress.outcome.revision = Some(format!("local:{hash}"));
            }
            progress.outcome.content_sha256 = hash;
            evaluated
        })
    });
    let outcome = &mut progress.outcome;
    match result {
        Err(error) => {
            outcome.status = DatasetStatus::Failed;
            outcome.error = Some(error);
        }
        // A hub dataset's files are only seen here (a local one is checked at planning).
        Ok(()) if outcome.num_items == 0 && outcome.status == DatasetStatus::Completed => {
            outcome.status = DatasetStatus::Failed;
            outcome.error = Some(format!("no rows in {}", describe_files(&outcome.files)));
        }
        // Nothing could be read as an item: the file is of another shape, not a few bad rows.
        Ok(()) if outcome.num_bad_rows == outcome.num_items && outcome.status == DatasetStatus::Completed => {
            outcome.status = DatasetStatus::Failed;
            outcome.error = Some(format!(
                "every row is bad ({}); first: {}",
                outcome.num_bad_rows,
                outcome
                    .bad_rows
                    .first()
                    .map(|bad| format!("`{}` row {}: {}", bad.file, bad.row, bad.error.message))
                    .unwrap_or_default()
            ));
        }
        Ok(()) if outcome.num_failed > 0 && outcome.status == DatasetStatus::Completed => {
            outcome.status = DatasetStatus::CompletedWithFailures;
        }
        Ok(()) => {}
    }
    if progress.outcome.status != DatasetStatus::Failed {
        score(&mut progress);
    }
    let total = started.elapsed();
    progress.outcome.timings = Timings {
        data_s: total.saturating_sub(progress.model_time).as_secs_f64(),
        model_s: progress.model_time.as_secs_f64(),
        total_s: total.as_secs_f64(),
    };
    reporter.dataset_finished(&dataset.name);
    progress.outcome
}

fn evaluate_rows(
    progress: &mut Progress<'_>,
    files: Vec<PathBuf>,
    backend: &mut dyn Backend,
    loaded: &mut bool,
    cache: &mut Option<&mut Cache>,
    reporter: &dyn Reporter,
    on_samples: &mut dyn FnMut(&[SampleLine]) -> std::io::Result<()>,
) -> Result<(), String> {
    let plan = progress.plan;
    let reader = WindowReader {
        dataset: progress.dataset,
        scoring: plan.scoring,
        key_context: cache.is_some().then(|| progress.key_context.clone()),
        shows_expected: plan.model.meta.wants_expected_output,
        limit: plan.max_samples.unwrap_or(u64::MAX),
        window_size: LOOKUP_WINDOW.max(plan.batch_size),
        strict: plan.strict,
    };
    let reader = &reader;
    // Lookups run on a connection of their own, so they overlap the commits of earlier windows.
    // What this run commits is merged into the looked-up table when the run ends (see
    // `Cache::merge_pending`), so an item repeated within one run is evaluated again.
    let mut lookups = match (cache.as_deref(), plan.cache) {
        (Some(cache), CacheMode::Normal) => Some(cache.reopen().map_err(|error| error.to_string())?),
        _ => None,
    };
    let extraction = progress.extraction;
    std::thread::scope(|scope| {
        let (sender, read) = std::sync::mpsc::sync_channel(WINDOWS_AHEAD);
        let reading = scope.spawn(move || reader.read(files, sender));
        let windows = match lookups.as_mut() {
            None => read,
            Some(lookups) => {
                let (sender, looked_up) = std::sync::mpsc::sync_channel(WINDOWS_AHEAD);
                scope.spawn(move || {
                    for window in read {
                        let window = window.and_then(|mut window| {
                            window.hits = lookups
                                .get_outputs_with_extractions(
                                    &window.keys,
                                    extraction.id(),
                                    extraction.version(),
                                )
                                .map_err(|error| error.to_string())?;
                            Ok(window)
                        });
                        if sender.send(window).is_err() {
                            return;
                        }
                    }
                });
                looked_up
            }
        };
        // Leaving this loop early drops `windows`, which stops the stages before it at their
        // next send.
        let evaluated = (|| {
            for window in windows {
                let samples = run_window(progress, window?, backend, loaded, cache, reporter)?;
                on_samples(&samples).map_err(|error| error.to_string())?;
                if interrupted() {
                    progress.outcome.status = DatasetStatus::Interrupted;
                    return Ok(());
                }
            }
            Ok(())
        })();
        if let Ok(ids) = reading.join() {
            let outcome = &mut progress.outcome;
            outcome.duplicate_ids = ids.duplicates;
            outcome.duplicate_id_examples = ids.duplicate_examples;
            outcome.ids_from_row_number = ids.from_row_number;
        }
        evaluated
    })
}

/// The outcome of one item before extraction.
enum ItemResult {
    Output { output: CachedOutput, from_cache: bool, extraction: Option<CachedExtraction> },
    Failed(String),
}

/// One window: a cache lookup for all its keys, the misses through the plugin in batches (each
/// committed before the next), then extraction and scoring in row order. After Ctrl-C the
/// window is cut after the last committed batch.
fn run_window(
    progress: &mut Progress<'_>,
    Window { pending: window, keys, mut hits, bad_rows }: Window,
    backend: &mut dyn Backend,
    loaded: &mut bool,
    cache: &mut Option<&mut Cache>,
    reporter: &dyn Reporter,
) -> Result<Vec<SampleLine>, String> {
    let plan = progress.plan;
    let extraction = progress.extraction;
    let mut results: Vec<Option<ItemResult>> = keys
        .iter()
        .map(|key| {
            hits.remove(key).map(|(output, extraction)| ItemResult::Output {
                output,
                from_cache: true,
                extraction,
            })
        })
        .collect();
    let misses: Vec<usize> = (0..window.len()).filter(|index| results[*index].is_none()).collect();
    let mut cut = window.len();
    let mut reported = 0usize;
    for batch in misses.chunks(plan.batch_size) {
        run_plugin_batch(progress, &window, batch, &keys, &mut results, backend, loaded, cache)?;
        let done = batch[batch.len() - 1] + 1;
        let hits_so_far = results[reported..done]
            .iter()
            .filter(|result| matches!(result, Some(ItemResult::Output { from_cache: true, .. })))
            .count();
        reporter.batch_done((done - reported) as u64, hits_so_far as u64);
        reported = done;
        if interrupted() {
            cut = done;
            break;
        }
    }
    if reported < cut {
        reporter.batch_done((cut - reported) as u64, (cut - reported) as u64);
    }

    let mut late_extractions = Vec::new();
    let mut samples = Vec::with_capacity(cut + bad_rows.len());
    // Bad rows go in row order between the items; those after an interruption's cut are dropped
    // with the items around them.
    let mut bad_rows = bad_rows.into_iter().peekable();
    for (index, ((pending, key), result)) in window.iter().zip(keys.iter()).zip(results).take(cut).enumerate()
    {
        while let Some((_, bad)) = bad_rows.next_if(|(before, _)| *before <= index) {
            record_bad_row(progress, bad, &mut samples);
        }
        let Some(result) = result else { continue };
        let (sample, late) = finish_item(progress, pending, *key, result);
        late_extractions.extend(late);
        if plan.collect_samples {
            samples.push(SampleLine::Item(sample));
        }
    }
    if cut == window.len() {
        for (_, bad) in bad_rows {
            record_bad_row(progress, bad, &mut samples);
        }
    }
    // Outputs served from the cache whose extraction rule changed: store the new extraction.
    if let (Some(cache), false) = (cache.as_deref_mut(), late_extractions.is_empty()) {
        cache
            .store_batch(&[], &late_extractions, extraction.id(), extraction.version())
            .map_err(|error| error.to_string())?;
    }
    Ok(samples)
}

/// Counts a bad row as an item that failed, listing the first few in the results.
fn record_bad_row(
    progress: &mut Progress<'_>,
    bad: crate::engine::outcome::BadRowRecord,
    samples: &mut Vec<SampleLine>,
) {
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

/// Sends the items at `batch` (indices into `window`) to the model, stores what came back in
/// `results`, and commits the successful outputs with their extractions.
#[allow(clippy::too_many_arguments)]
fn run_plugin_batch(
    progress: &mut Progress<'_>,
    window: &[Pending],
    batch: &[usize],
    keys: &[CacheKey],
    results: &mut [Option<ItemResult>],
    backend: &mut dyn Backend,
    loaded: &mut bool,
    cache: &mut Option<&mut Cache>,
) -> Result<(), String> {
    let plan = progress.plan;
    let extraction = progress.extraction;
    let model_started = Instant::now();
    if !*loaded {
        backend.load().map_err(|error| format!("the model failed to load: {error}"))?;
        *loaded = true;
    }
    let items: Vec<&OwnedItem> = batch.iter().map(|index| &window[*index].item).collect();
    let outcome = match plan.scoring {
        Scoring::Generate => backend.generate(&items, plan.model.meta.wants_expected_output),
        Scoring::Loglikelihood => {
            let keys: Vec<&ScoringKey> = batch.iter().map(|index| &window[*index].key).collect();
            score_options(backend, &items, &keys)
        }
    };
    progress.model_time += model_started.elapsed();
    let mut new_outputs = Vec::new();
    let mut new_extractions = Vec::new();
    match outcome {
        Ok(outputs) => {
            // Outputs come in item order, paired by id at the plugin boundary.
            for (index, output) in batch.iter().zip(outputs) {
                results[*index] = Some(match output {
                    Ok(completion) => {
                        let output = CachedOutput {
                            raw_output: completion.text,
                            prompt_tokens: completion.prompt_tokens,
                            completion_tokens: completion.completion_tokens,
                            latency_us: completion.latency_us,
                        };
                        let prediction =
                            extraction.apply(&output.raw_output, window[*index].key.reference.letters());
                        // Copies kept for the commit only when there is a cache to commit to.
                        if cache.is_some() {
                            new_extractions.push((keys[*index], prediction.clone()));
                            new_outputs.push(NewOutput {
                                key: keys[*index],
                                model: &plan.model.meta.name,
                                output: output.clone(),
                            });
                        }
                        ItemResult::Output {
                            output,
                            from_cache: false,
                            extraction: Some(CachedExtraction { prediction }),
                        }
                    }
                    Err(failure) => ItemResult::Failed(crate::report::redact_text(&failure.to_string())),
                });
            }
        }
        Err(error) => {
            let message = crate::report::redact_text(&error.to_string());
            for index in batch {
                results[*index] = Some(ItemResult::Failed(message.clone()));
            }
        }
    }
    if let (Some(cache), false) = (cache.as_deref_mut(), new_outputs.is_empty()) {
        cache
            .store_batch(&new_outputs, &new_extractions, extraction.id(), extraction.version())
            .map_err(|error| error.to_string())?;
    }
    Ok(())
}

/// Scores every item's option letters as continuations of its context; each completion's text
/// is the JSON object of log-probabilities by letter that [`Extraction::LoglikelihoodArgmax`]
/// reads.
fn score_options(
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
            })
        })
        .collect())
}

/// Extraction (if not cached), counters, scoring and the sample record of one item. Returns
/// the extraction to store when a cached output had none under the current rule.
fn finish_item(
    progress: &mut Progress<'_>,
    pending: &Pending,
    key: CacheKey,
    result: ItemResult,
) -> (SampleRecord, Option<(CacheKey, Option<String>)>) {
    let answer = &pending.key;
    let collect = progress.plan.collect_samples;
    // Texts are copied into the record only when samples are written.
    let copy = |text: &str| if collect { text.to_owned() } else { String::new() };
    let mut sample = SampleRecord {
        dataset: copy(&progress.dataset.name),
        id: copy(&answer.source_id),
        prompt: copy(pending.item.input.as_deref().unwrap_or_default()),
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
    };
    progress.outcome.num_items += 1;
    let mut late = None;
    match result {
        ItemResult::Output { output, from_cache, extraction } => {
            let prediction = match extraction {
                Some(cached) => cached.prediction,
                None => {
                    let prediction =
                        progress.extraction.apply(&output.raw_output, answer.reference.letters());
                    late = Some((key, prediction.clone()));
                    prediction
                }
            };
            if from_cache {
                progress.outcome.cache_hits += 1;
            } else {
                progress.outcome.cache_misses += 1;
            }
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
            let scored = match &processed {
                Some(processed) => processed.sample(&other_args),
                None => Sample {
                    prediction: prediction.as_deref(),
                    reference: answer.reference.primary(),
                    references: answer.reference.texts(),
                    other_args: &other_args,
                },
            };
            let group = answer.group.as_ref().map(|group| {
                match progress.group_names.iter().position(|name| name == group) {
                    Some(index) => index as u32,
                    None => {
                        progress.group_names.push(group.clone());
                        (progress.group_names.len() - 1) as u32
                    }
                }
            });
            for (metric, accumulator) in &mut progress.accumulators {
                accumulator.add(metric.as_ref(), &scored, group);
            }
            sample.correct = answer.reference.correct(prediction.as_deref());
            sample.prediction = if collect { prediction } else { None };
            sample.from_cache = from_cache;
            sample.input_tokens = output.prompt_tokens;
            sample.output_tokens = output.completion_tokens;
            sample.latency_ms = Some(output.latency_us as f64 / 1000.0);
            if collect {
                sample.raw_output = Some(output.raw_output);
            }
        }
        ItemResult::Failed(message) => {
            progress.outcome.cache_misses += 1;
            progress.outcome.num_failed += 1;
            sample.error = Some(message);
        }
    }
    (sample, late)
}

/// Metrics over everything scored (failures excluded), overall and per subgroup.
fn score(progress: &mut Progress<'_>) {
    let seed = progress.plan.seed;
    for (_, accumulator) in &progress.accumulators {
        let scores = accumulator.scores(&progress.group_names, seed);
        if scores.by_groups {
            for (group, score) in &scores.breakdown {
                progress
                    .outcome
                    .subgroups
                    .entry(group.clone())
                    .or_default()
                    .insert(scores.name.to_owned(), score.clone());
            }
        }
        progress.outcome.metrics.insert(
            scores.name.to_owned(),
            MetricResult {
                score: scores.overall,
                num_failed: progress.outcome.num_failed,
                num_unparsed: progress.outcome.num_unparsed,
                breakdown: scores.breakdown,
                disparity: scores.disparity,
            },
        );
    }
}

fn describe_files(files: &[PathBuf]) -> String {
    let names: Vec<String> = files.iter().map(|path| format!("`{}`", path.display())).collect();
    names.join(", ")
}
