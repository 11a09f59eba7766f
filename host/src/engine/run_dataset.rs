//! One dataset through the loop.

use std::{
    borrow::Cow,
    collections::BTreeMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use abi_stable::std_types::{ROption, RResult, RSlice, RStr, RString};
use karma_plugin_api::abi::{ContinuationRequest, ItemOutput};
use serde::Serialize;

use super::{
    interrupted, plan::DatasetSource, scoring::Accumulator, CacheMode, DatasetPlan, EvalPlan, Reporter,
    Scoring,
};
use crate::{
    cache::{item_key, Cache, CacheKey, CachedExtraction, CachedOutput, KeyContext, KeyMap, NewOutput},
    datasets::{
        extract::Extraction,
        hub,
        item::{with_batch_view, OwnedItem},
        prompt,
        record::{AnswerKey, AnswerKeys, McqRecord},
        source::{self, RowReader},
    },
    metrics::{self, Sample, Score},
    plugins::ModelInstance,
};

/// How a dataset ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetStatus {
    Completed,
    Failed,
    Interrupted,
}

/// One line of the per-sample JSONL.
#[derive(Clone, Debug, Serialize)]
pub struct SampleRecord {
    pub dataset: String,
    pub id: String,
    /// What the model was given.
    pub prompt: String,
    pub raw_output: Option<String>,
    pub prediction: Option<String>,
    pub expected: String,
    pub correct: Option<bool>,
    pub from_cache: bool,
    pub error: Option<String>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// A metric's result as written to results files.
#[derive(Clone, Debug, Serialize)]
pub struct MetricResult {
    #[serde(flatten)]
    pub score: Score,
    pub num_failed: u64,
    pub num_unparsed: u64,
}

/// Wall-clock split of a dataset's evaluation.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timings {
    /// Reading rows and building prompts.
    pub data_s: f64,
    /// Inside the plugin (load and run).
    pub model_s: f64,
    pub total_s: f64,
}

/// Everything known about one dataset after the loop.
#[derive(Clone, Debug)]
pub struct DatasetOutcome {
    pub name: String,
    pub plan: DatasetPlan,
    pub status: DatasetStatus,
    pub error: Option<String>,
    /// The revision evaluated (`local:<sha256>` or a hub commit).
    pub revision: Option<String>,
    pub files: Vec<PathBuf>,
    /// sha256 over the data files' bytes, in order.
    pub content_sha256: Option<String>,
    pub metrics: BTreeMap<String, MetricResult>,
    /// Per-subgroup scores, when the dataset has groups (e.g. medmcqa subjects).
    pub subgroups: BTreeMap<String, BTreeMap<String, Score>>,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub num_items: u64,
    pub num_failed: u64,
    pub num_unparsed: u64,
    pub timings: Timings,
}

impl DatasetOutcome {
    pub(super) fn not_started(plan: &DatasetPlan, status: DatasetStatus) -> Self {
        DatasetOutcome {
            name: plan.name.clone(),
            plan: plan.clone(),
            status,
            error: None,
            revision: None,
            files: Vec::new(),
            content_sha256: None,
            metrics: BTreeMap::new(),
            subgroups: BTreeMap::new(),
            cache_hits: 0,
            cache_misses: 0,
            num_items: 0,
            num_failed: 0,
            num_unparsed: 0,
            timings: Timings::default(),
        }
    }
}

/// An item and what scoring needs of the record it was built from.
struct Pending {
    answer: AnswerKey,
    item: OwnedItem,
}

/// State carried across a dataset's batches.
struct Progress<'a> {
    plan: &'a EvalPlan<'a>,
    dataset: &'a DatasetPlan,
    key_context: KeyContext,
    extraction: Extraction,
    accumulators: Vec<(&'static dyn metrics::Metric, Accumulator)>,
    /// Subgroup names; accumulators refer to them by index.
    group_names: Vec<String>,
    outcome: DatasetOutcome,
    model_time: Duration,
}

pub(super) fn run(
    plan: &EvalPlan<'_>,
    dataset: &DatasetPlan,
    instance: &mut ModelInstance,
    loaded: &mut bool,
    mut cache: Option<&mut Cache>,
    reporter: &dyn Reporter,
    on_samples: &mut dyn FnMut(&[SampleRecord]) -> std::io::Result<()>,
) -> DatasetOutcome {
    let started = Instant::now();
    let mut progress = Progress {
        plan,
        dataset,
        key_context: plan.key_context(),
        extraction: plan.extraction(dataset),
        accumulators: dataset
            .definition
            .metrics
            .iter()
            .filter_map(|name| metrics::find(name).map(|metric| (metric, Accumulator::new(name, metric))))
            .collect(),
        group_names: Vec::new(),
        outcome: DatasetOutcome::not_started(dataset, DatasetStatus::Completed),
        model_time: Duration::ZERO,
    };
    reporter.dataset_started(&dataset.name, plan.max_samples);
    let files = match &dataset.source {
        DatasetSource::Local { files } => Ok(files.clone()),
        DatasetSource::Hub { repo, config, split, revision } => {
            hub::fetch(&super::plan::hub_request(repo, *config, split, revision), plan.offline).map(
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
            let hashing = scope.spawn(|| source::content_hash(&files));
            let evaluated = evaluate_rows(
                &mut progress,
                files.clone(),
                instance,
                loaded,
                &mut cache,
                reporter,
                on_samples,
            );
            let hash = hashing
                .join()
                .map_err(|_| "hashing the dataset files failed unexpectedly".to_owned())?
                .map_err(|error| error.to_string())?;
            if let DatasetSource::Local { .. } = dataset.source {
                progress.outcome.revision = Some(format!("local:{hash}"));
            }
            progress.outcome.content_sha256 = Some(hash);
            evaluated
        })
    });
    if let Err(error) = result {
        progress.outcome.status = DatasetStatus::Failed;
        progress.outcome.error = Some(error);
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

/// Rows are read and looked up in the cache a window at a time (one query for many keys);
/// misses go to the plugin in batches of `batch_size`, each committed before the next.
const LOOKUP_WINDOW: usize = 512;

/// Windows the reading thread may prepare ahead of the evaluation.
const WINDOWS_AHEAD: usize = 2;

/// A window of items with their cache keys, as the reading thread hands it over, and the
/// cached outputs the lookup thread found for it.
struct Window {
    pending: Vec<Pending>,
    keys: Vec<CacheKey>,
    hits: CacheHits,
}

type CacheHits = KeyMap<(CachedOutput, Option<CachedExtraction>)>;

/// The reading side of a dataset: rows to records, items and cache keys. It runs on its own
/// thread, a window or two ahead of the lookups, the plugin and the commits.
struct WindowReader<'a> {
    dataset: &'a DatasetPlan,
    scoring: Scoring,
    /// Set when there is a cache: this thread hashes the keys (the lookup thread's SQLite
    /// seeks are the heavier half). Without a cache hashing every prompt would be wasted work.
    key_context: Option<KeyContext>,
    shows_expected: bool,
    limit: u64,
    window_size: usize,
}

impl WindowReader<'_> {
    /// Sends windows until the rows (or `limit`) run out, a row is bad (its error is sent), or
    /// the evaluation stops listening.
    fn read(&self, files: Vec<PathBuf>, windows: std::sync::mpsc::SyncSender<Result<Window, String>>) {
        let mut rows = RowReader::new(files);
        let mut answer_keys = AnswerKeys::default();
        let mut next_index = 0u64;
        loop {
            let window = self.next_window(&mut rows, &mut answer_keys, &mut next_index);
            let last = !matches!(&window, Ok(window) if window.pending.len() == self.window_size);
            let empty = matches!(&window, Ok(window) if window.pending.is_empty());
            if empty || windows.send(window).is_err() || last {
                return;
            }
        }
    }

    fn next_window(
        &self,
        rows: &mut RowReader,
        answer_keys: &mut AnswerKeys,
        next_index: &mut u64,
    ) -> Result<Window, String> {
        let definition = self.dataset.definition;
        let mut pending = Vec::with_capacity(self.window_size);
        while pending.len() < self.window_size && *next_index < self.limit {
            let Some(row) = rows.next_row() else { break };
            let row = row.map_err(|error| error.to_string())?;
            let record = definition.schema.record(&row.value, *next_index).map_err(|problem| {
                format!(
                    "`{}` row {}: field `{}`: {}",
                    row.path.display(),
                    row.row,
                    problem.field,
                    problem.problem
                )
            })?;
            let item = build_item(*next_index, &record, self.dataset, self.scoring);
            pending.push(Pending { answer: answer_keys.key(&record), item });
            *next_index += 1;
        }
        let mut window = Window { pending, keys: Vec::new(), hits: CacheHits::default() };
        window.keys = match &self.key_context {
            Some(context) => window.keys_under(context, self.shows_expected),
            None => vec![CacheKey([0; 32]); window.pending.len()],
        };
        Ok(window)
    }
}

impl Window {
    fn keys_under(&self, context: &KeyContext, shows_expected: bool) -> Vec<CacheKey> {
        self.pending.iter().map(|pending| item_key(context, &pending.item, shows_expected)).collect()
    }
}

fn evaluate_rows(
    progress: &mut Progress<'_>,
    files: Vec<PathBuf>,
    instance: &mut ModelInstance,
    loaded: &mut bool,
    cache: &mut Option<&mut Cache>,
    reporter: &dyn Reporter,
    on_samples: &mut dyn FnMut(&[SampleRecord]) -> std::io::Result<()>,
) -> Result<(), String> {
    let plan = progress.plan;
    let reader = WindowReader {
        dataset: progress.dataset,
        scoring: plan.scoring,
        key_context: cache.is_some().then(|| progress.key_context.clone()),
        shows_expected: plan.model.meta.wants_expected_output,
        limit: plan.max_samples.unwrap_or(u64::MAX),
        window_size: LOOKUP_WINDOW.max(plan.batch_size),
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
        scope.spawn(move || reader.read(files, sender));
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
        for window in windows {
            let samples = run_window(progress, window?, instance, loaded, cache, reporter)?;
            on_samples(&samples).map_err(|error| format!("cannot write samples: {error}"))?;
            if interrupted() {
                progress.outcome.status = super::DatasetStatus::Interrupted;
                return Ok(());
            }
        }
        Ok(())
    })
}

/// The item sent to the model for `record`: the rendered prompt (or, for log-likelihood
/// scoring, the context the options continue), options in `other_args`.
pub fn build_item(id: u64, record: &McqRecord<'_>, dataset: &DatasetPlan, scoring: Scoring) -> OwnedItem {
    /// `other_args` serialized straight from the record, without building a JSON value first,
    /// in canonical form (keys sorted at every level) so the cache key can hash it as it is.
    #[derive(Serialize)]
    struct OtherArgs<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        group: Option<&'a str>,
        options: Options<'a>,
    }
    struct Options<'a>(Vec<&'a (Cow<'a, str>, Cow<'a, str>)>);
    impl Serialize for Options<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_map(self.0.iter().map(|(letter, text)| (letter, text)))
        }
    }
    let mut options: Vec<&(Cow<'_, str>, Cow<'_, str>)> = record.options.iter().collect();
    options.sort_by(|a, b| a.0.cmp(&b.0));
    let other_args =
        serde_json::to_string(&OtherArgs { group: record.group.as_deref(), options: Options(options) })
            .unwrap_or_else(|_| "{}".to_owned());
    OwnedItem {
        id,
        input: Some(match scoring {
            Scoring::Generate => dataset.definition.template.render(record, dataset.template_override()),
            Scoring::Loglikelihood => prompt::loglikelihood_context(record),
        }),
        system_prompt: record.system_prompt.as_deref().map(str::to_owned),
        expected_output: Some(record.answer.to_string()),
        other_args,
        ..OwnedItem::default()
    }
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
    Window { pending: window, keys, mut hits }: Window,
    instance: &mut ModelInstance,
    loaded: &mut bool,
    cache: &mut Option<&mut Cache>,
    reporter: &dyn Reporter,
) -> Result<Vec<SampleRecord>, String> {
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
        run_plugin_batch(progress, &window, batch, &keys, &mut results, instance, loaded, cache)?;
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
    let mut samples = Vec::with_capacity(cut);
    for ((pending, key), result) in window.iter().zip(keys.iter()).zip(results).take(cut) {
        let Some(result) = result else { continue };
        let (sample, late) = finish_item(progress, pending, *key, result);
        late_extractions.extend(late);
        if plan.collect_samples {
            samples.push(sample);
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

/// Sends the items at `batch` (indices into `window`) to the plugin, stores what came back in
/// `results`, and commits the successful outputs with their extractions.
#[allow(clippy::too_many_arguments)]
fn run_plugin_batch(
    progress: &mut Progress<'_>,
    window: &[Pending],
    batch: &[usize],
    keys: &[CacheKey],
    results: &mut [Option<ItemResult>],
    instance: &mut ModelInstance,
    loaded: &mut bool,
    cache: &mut Option<&mut Cache>,
) -> Result<(), String> {
    let plan = progress.plan;
    let extraction = progress.extraction;
    let model_started = Instant::now();
    if !*loaded {
        instance.load().map_err(|error| format!("the model failed to load: {error}"))?;
        *loaded = true;
    }
    let items: Vec<&OwnedItem> = batch.iter().map(|index| &window[*index].item).collect();
    let outcome = match plan.scoring {
        Scoring::Generate => {
            with_batch_view(&items, plan.model.meta.wants_expected_output, |view| instance.run(view))
        }
        Scoring::Loglikelihood => {
            let answers: Vec<&AnswerKey> = batch.iter().map(|index| &window[*index].answer).collect();
            score_options(instance, &items, &answers)
        }
    };
    progress.model_time += model_started.elapsed();
    let mut new_outputs = Vec::new();
    let mut new_extractions = Vec::new();
    match outcome {
        Ok(outputs) => {
            // `run` returns outputs in item order, paired by id.
            for (index, output) in batch.iter().zip(outputs) {
                results[*index] = Some(match output.result {
                    RResult::ROk(text) => {
                        let output = CachedOutput {
                            raw_output: text.into_string(),
                            prompt_tokens: output.prompt_tokens.into_option(),
                            completion_tokens: output.completion_tokens.into_option(),
                            latency_us: output.latency_us,
                        };
                        let prediction = extraction.apply(&output.raw_output, &window[*index].answer.letters);
                        new_extractions.push((keys[*index], prediction.clone()));
                        new_outputs.push(NewOutput {
                            key: keys[*index],
                            model: &plan.model.meta.name,
                            output: output.clone(),
                        });
                        ItemResult::Output {
                            output,
                            from_cache: false,
                            extraction: Some(CachedExtraction { prediction }),
                        }
                    }
                    RResult::RErr(error) => {
                        ItemResult::Failed(format!("{} ({})", error.message, error.code.name()))
                    }
                });
            }
        }
        Err(error) => {
            let message = error.to_string();
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

/// Scores every item's option letters as continuations of its context; each output's text is
/// the JSON object of log-probabilities by letter that [`Extraction::LoglikelihoodArgmax`] reads.
fn score_options(
    instance: &mut ModelInstance,
    items: &[&OwnedItem],
    answers: &[&AnswerKey],
) -> Result<Vec<ItemOutput>, crate::plugins::CallError> {
    let started = Instant::now();
    let continuations: Vec<Vec<String>> = answers
        .iter()
        .map(|answer| {
            answer.letters.iter().map(|letter| prompt::loglikelihood_continuation(letter)).collect()
        })
        .collect();
    let continuation_views: Vec<Vec<RStr<'_>>> =
        continuations.iter().map(|texts| texts.iter().map(|text| RStr::from_str(text)).collect()).collect();
    let requests: Vec<ContinuationRequest<'_>> = items
        .iter()
        .zip(&continuation_views)
        .map(|(item, views)| ContinuationRequest {
            id: item.id,
            context: RStr::from_str(item.input.as_deref().unwrap_or_default()),
            continuations: RSlice::from_slice(views),
        })
        .collect();
    let outputs = instance.score_continuations(&requests)?;
    let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    Ok(outputs
        .into_iter()
        .zip(answers)
        .map(|(output, answer)| {
            let result = match output.result {
                RResult::ROk(scores) if scores.iter().any(|score| !score.logprob.is_finite()) => {
                    // JSON cannot carry them, and a NaN ranks nothing: a failure, not an answer.
                    RResult::RErr(karma_plugin_api::abi::PluginError::new(
                        karma_plugin_api::abi::ErrorCode::INTERNAL,
                        format!(
                            "non-finite log-probabilities {:?}",
                            scores.iter().map(|s| s.logprob).collect::<Vec<_>>()
                        ),
                    ))
                }
                RResult::ROk(scores) => {
                    let by_letter: serde_json::Map<String, serde_json::Value> = answer
                        .letters
                        .iter()
                        .zip(scores.iter())
                        .map(|(letter, score)| (letter.clone(), serde_json::json!(score.logprob)))
                        .collect();
                    RResult::ROk(RString::from(serde_json::Value::Object(by_letter).to_string()))
                }
                RResult::RErr(error) => RResult::RErr(error),
            };
            ItemOutput {
                id: output.id,
                result,
                prompt_tokens: ROption::RSome(output.context_tokens),
                completion_tokens: ROption::RNone,
                latency_us,
            }
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
    let answer = &pending.answer;
    let collect = progress.plan.collect_samples;
    // Texts are copied into the record only when samples are written.
    let copy = |text: &str| if collect { text.to_owned() } else { String::new() };
    let mut sample = SampleRecord {
        dataset: copy(&progress.dataset.name),
        id: copy(&answer.source_id),
        prompt: copy(pending.item.input.as_deref().unwrap_or_default()),
        raw_output: None,
        prediction: None,
        expected: copy(&answer.answer),
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
                    let prediction = progress.extraction.apply(&output.raw_output, &answer.letters);
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
            let scored = Sample {
                prediction: prediction.as_deref(),
                reference: &answer.answer,
                other_args: &other_args,
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
                accumulator.add(*metric, &scored, group);
            }
            sample.correct =
                Some(prediction.as_deref().is_some_and(|letter| letter.eq_ignore_ascii_case(&answer.answer)));
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
        let (name, overall, per_group) = accumulator.scores(progress.group_names.len(), seed);
        progress.outcome.metrics.insert(
            name.to_owned(),
            MetricResult {
                score: overall,
                num_failed: progress.outcome.num_failed,
                num_unparsed: progress.outcome.num_unparsed,
            },
        );
        for (group, score) in progress.group_names.iter().zip(per_group) {
            progress.outcome.subgroups.entry(group.clone()).or_default().insert(name.to_owned(), score);
        }
    }
}
