//! One dataset through the loop: fetch its files, read rows a window ahead (`read.rs`), look
//! the window up in the cache, send the misses to the plugin in batches, extract, score.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use super::{
    finish::{finish_item, record_bad_row, ItemResult},
    grading::{self, Judge, JudgeReport},
    interrupted,
    outcome::{DatasetOutcome, DatasetStatus, MetricResult, SampleLine, Timings},
    plan::DatasetSource,
    read::{Pending, Window, WindowReader, LOOKUP_WINDOW, WINDOWS_AHEAD},
    scoring::Accumulator,
    usage::AnswerFacts,
    CacheMode, DatasetPlan, EvalPlan, Reporter, Scoring,
};
use crate::{
    cache::{Cache, CacheKey, CachedExtraction, CachedOutput, KeyContext, NewOutput},
    datasets::{
        extract::Extraction,
        hub,
        item::OwnedItem,
        source,
        task::{Reference, ScoringKey},
    },
    metrics,
    plugins::Backend,
};

/// State carried across a dataset's batches.
pub(super) struct Progress<'a> {
    pub plan: &'a EvalPlan<'a>,
    pub dataset: &'a DatasetPlan,
    key_context: KeyContext,
    pub extraction: Extraction,
    pub accumulators: Vec<(metrics::MetricHandle, Accumulator)>,
    /// Subgroup names; accumulators refer to them by index.
    pub group_names: Vec<String>,
    pub outcome: DatasetOutcome,
    model_time: Duration,
}

/// The models of a run: the candidate and, for graded datasets, the judge.
pub(super) struct Models<'a, 'b> {
    pub backend: &'a mut dyn Backend,
    pub loaded: &'a mut bool,
    pub judge: Option<&'a mut Judge<'b>>,
}

pub(super) fn run(
    plan: &EvalPlan<'_>,
    dataset: &DatasetPlan,
    models: &mut Models<'_, '_>,
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
    if let (true, Some(judge)) = (dataset.needs_judge(), models.judge.as_deref()) {
        progress.outcome.judge =
            Some(JudgeReport { model: judge.plan.model.meta.name.clone(), ..JudgeReport::default() });
    }
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
            let evaluated =
                evaluate_rows(&mut progress, files.clone(), models, &mut cache, reporter, on_samples);
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
    models: &mut Models<'_, '_>,
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
                let samples = run_window(progress, window?, models, cache, reporter)?;
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

/// One window: a cache lookup for all its keys, the misses through the plugin in batches of
/// similar size (each committed before the next), then extraction and scoring in row order.
/// After Ctrl-C the window keeps the items that have a result.
fn run_window(
    progress: &mut Progress<'_>,
    Window { pending: window, keys, mut hits, bad_rows }: Window,
    models: &mut Models<'_, '_>,
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
    let mut misses: Vec<usize> = (0..window.len()).filter(|index| results[*index].is_none()).collect();
    // Largest first, as lm-evaluation-harness orders its requests: a batch then holds prompts
    // of similar length, so little of its prefill is left-padding (random batches of medqa
    // questions pad by a third), and a batch too large for memory comes first, not last.
    // Results are kept by position, so samples and metrics stay in row order.
    misses.sort_by_key(|&index| std::cmp::Reverse(window[index].item.size_hint()));
    let hits = (window.len() - misses.len()) as u64;
    if hits > 0 {
        reporter.batch_done(hits, hits);
    }
    let mut cut = window.len();
    for batch in misses.chunks(plan.batch_size) {
        run_plugin_batch(progress, &window, batch, &keys, &mut results, models, cache)?;
        reporter.batch_done(batch.len() as u64, 0);
        if interrupted() {
            // Batches do not run in row order, so the partial results hold every item that
            // has a result (all committed), with gaps where the rest will go on resuming.
            break;
        }
    }

    let mut grades = match grade_window(progress, &window[..cut], &results[..cut], models, cache)? {
        Some(WindowGrades { by_position, unasked }) => {
            // Interrupted while grading: the window ends before the first answer not graded.
            cut = unasked.unwrap_or(cut);
            Some(by_position)
        }
        None => None,
    };
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
        let grade = grades.as_mut().and_then(|grades| grades[index].take());
        let (sample, late) = finish_item(progress, pending, *key, result, grade);
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

/// Sends the items at `batch` (indices into `window`) to the model, stores what came back in
/// `results`, and commits the successful outputs with their extractions.
fn run_plugin_batch(
    progress: &mut Progress<'_>,
    window: &[Pending],
    batch: &[usize],
    keys: &[CacheKey],
    results: &mut [Option<ItemResult>],
    models: &mut Models<'_, '_>,
    cache: &mut Option<&mut Cache>,
) -> Result<(), String> {
    let plan = progress.plan;
    let extraction = progress.extraction;
    let model_started = Instant::now();
    let backend = &mut *models.backend;
    if !*models.loaded {
        backend.load().map_err(|error| format!("the model failed to load: {error}"))?;
        *models.loaded = true;
    }
    let items: Vec<&OwnedItem> = batch.iter().map(|index| &window[*index].item).collect();
    let outcome = match plan.scoring {
        Scoring::Generate => backend.generate(&items, plan.model.meta.wants_expected_output),
        Scoring::Loglikelihood => {
            let keys: Vec<&ScoringKey> = batch.iter().map(|index| &window[*index].key).collect();
            super::loglikelihood::score_options(backend, &items, &keys)
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
                        progress.outcome.usage.add(
                            completion.prompt_tokens,
                            completion.completion_tokens,
                            &AnswerFacts::read(completion.details.as_deref()),
                        );
                        let output = CachedOutput {
                            raw_output: completion.text,
                            prompt_tokens: completion.prompt_tokens,
                            completion_tokens: completion.completion_tokens,
                            latency_us: completion.latency_us,
                            details: completion.details,
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
        // Refused credentials would fail every item alike: one error for the dataset instead.
        Err(error) if error.stops_dataset() => return Err(crate::report::redact_text(&error.to_string())),
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

/// A window's grades by position, and where an interruption left the first answer ungraded.
struct WindowGrades {
    by_position: Vec<Option<grading::Grades>>,
    unasked: Option<usize>,
}

/// The judge's grades of the window's answers, by window position, when the dataset has a
/// grader and a judge (`None` otherwise), and the position of the first answer an interruption
/// left ungraded. Failed items are not graded.
fn grade_window(
    progress: &mut Progress<'_>,
    window: &[Pending],
    results: &[Option<ItemResult>],
    models: &mut Models<'_, '_>,
    cache: &mut Option<&mut Cache>,
) -> Result<Option<WindowGrades>, String> {
    let (Some(judge), Some(report)) = (models.judge.as_deref_mut(), progress.outcome.judge.as_mut()) else {
        return Ok(None);
    };
    let mut positions = Vec::new();
    let mut answers = Vec::new();
    for (position, (pending, result)) in window.iter().zip(results).enumerate() {
        if let (Some(ItemResult::Output { output, .. }), Reference::Rubric(rubric)) =
            (result, &pending.key.reference)
        {
            positions.push(position);
            answers.push(grading::Answer {
                system_prompt: pending.item.system_prompt.as_deref(),
                conversation: &pending.item.conversation,
                response: &output.raw_output,
                rubric,
            });
        }
    }
    let started = Instant::now();
    let read_cache = progress.plan.cache == CacheMode::Normal;
    let graded = grading::grade(judge, &answers, cache.as_deref_mut(), read_cache, report)?;
    progress.model_time += started.elapsed();
    let mut by_position: Vec<Option<grading::Grades>> = (0..window.len()).map(|_| None).collect();
    let mut unasked = None;
    for (position, grades) in positions.into_iter().zip(graded) {
        match grades {
            Some(grades) => by_position[position] = Some(grades),
            None => {
                unasked.get_or_insert(position);
            }
        }
    }
    Ok(Some(WindowGrades { by_position, unasked }))
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
