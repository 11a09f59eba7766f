//! One dataset through the loop.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use abi_stable::std_types::RResult;
use serde::Serialize;

use super::{interrupted, plan::DatasetSource, CacheMode, DatasetPlan, EvalPlan, Reporter};
use crate::{
    cache::{item_key, Cache, CacheKey, CachedOutput, KeyContext, NewOutput},
    datasets::{
        hub,
        item::{with_batch_view, OwnedItem},
        record::McqRecord,
        source::{self, SourceRow},
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

/// What scoring needs of one sample.
struct Scored {
    prediction: Option<String>,
    expected: String,
    group: Option<String>,
    other_args: serde_json::Value,
}

/// A record and the item built from it.
struct Pending {
    record: McqRecord,
    item: OwnedItem,
}

/// State carried across a dataset's batches.
struct Progress<'a> {
    plan: &'a EvalPlan<'a>,
    dataset: &'a DatasetPlan,
    key_context: KeyContext,
    scored: Vec<Scored>,
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
        key_context: KeyContext::new(
            &plan.model.meta.name,
            &plan.plugin_id,
            &plan.plugin_version,
            &plan.config,
        ),
        scored: Vec::new(),
        outcome: DatasetOutcome::not_started(dataset, DatasetStatus::Completed),
        model_time: Duration::ZERO,
    };
    reporter.dataset_started(&dataset.name, plan.max_samples);
    let files = match &dataset.source {
        DatasetSource::Local { files, revision } => {
            progress.outcome.revision = Some(revision.clone());
            Ok(files.clone())
        }
        DatasetSource::Hub { .. } => {
            let request = dataset.source.hub_request().expect("hub source has a request");
            hub::fetch(&request, plan.offline).map(|snapshot| {
                progress.outcome.revision = Some(snapshot.commit);
                snapshot.files
            })
        }
    };
    let result = files.map_err(|error| error.to_string()).and_then(|files| {
        progress.outcome.files = files.clone();
        evaluate_rows(&mut progress, source::rows(files), instance, loaded, &mut cache, reporter, on_samples)
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

fn evaluate_rows(
    progress: &mut Progress<'_>,
    mut rows: impl Iterator<Item = Result<SourceRow, source::SourceError>>,
    instance: &mut ModelInstance,
    loaded: &mut bool,
    cache: &mut Option<&mut Cache>,
    reporter: &dyn Reporter,
    on_samples: &mut dyn FnMut(&[SampleRecord]) -> std::io::Result<()>,
) -> Result<(), String> {
    let limit = progress.plan.max_samples.unwrap_or(u64::MAX);
    let definition = progress.dataset.definition;
    let mut next_index = 0u64;
    loop {
        let mut batch: Vec<Pending> = Vec::with_capacity(progress.plan.batch_size);
        while batch.len() < progress.plan.batch_size && next_index < limit {
            let Some(row) = rows.next() else { break };
            let row = row.map_err(|error| error.to_string())?;
            let record = definition.schema.record(&row.value, next_index).map_err(|problem| {
                format!(
                    "`{}` row {}: field `{}`: {}",
                    row.path.display(),
                    row.row,
                    problem.field,
                    problem.problem
                )
            })?;
            let item = build_item(next_index, &record, progress.dataset);
            batch.push(Pending { record, item });
            next_index += 1;
        }
        if batch.is_empty() {
            return Ok(());
        }
        let samples = run_batch(progress, &batch, instance, loaded, cache)?;
        on_samples(&samples).map_err(|error| format!("cannot write samples: {error}"))?;
        let hits = samples.iter().filter(|sample| sample.from_cache).count() as u64;
        reporter.batch_done(samples.len() as u64, hits);
        if interrupted() {
            progress.outcome.status = super::DatasetStatus::Interrupted;
            return Ok(());
        }
    }
}

/// The item sent to the model for `record`: the rendered prompt, options in `other_args`.
pub fn build_item(id: u64, record: &McqRecord, dataset: &DatasetPlan) -> OwnedItem {
    let options: serde_json::Map<String, serde_json::Value> =
        record.options.iter().map(|(letter, text)| (letter.clone(), text.clone().into())).collect();
    let mut other_args = serde_json::Map::new();
    other_args.insert("options".to_owned(), options.into());
    if let Some(group) = &record.group {
        other_args.insert("group".to_owned(), group.clone().into());
    }
    OwnedItem {
        id,
        input: Some(dataset.definition.template.render(record, dataset.template_override())),
        system_prompt: record.system_prompt.clone(),
        expected_output: Some(record.answer.clone()),
        other_args: serde_json::Value::Object(other_args).to_string(),
        ..OwnedItem::default()
    }
}

/// The outcome of one item before extraction.
enum ItemResult {
    Output { output: CachedOutput, from_cache: bool },
    Failed(String),
}

fn run_batch(
    progress: &mut Progress<'_>,
    batch: &[Pending],
    instance: &mut ModelInstance,
    loaded: &mut bool,
    cache: &mut Option<&mut Cache>,
) -> Result<Vec<SampleRecord>, String> {
    let plan = progress.plan;
    let shows_expected = plan.model.meta.wants_expected_output;
    let keys: Vec<CacheKey> =
        batch.iter().map(|pending| item_key(&progress.key_context, &pending.item, shows_expected)).collect();
    let mut hits = match (cache.as_deref(), plan.cache) {
        (Some(cache), CacheMode::Normal) => cache.get_outputs(&keys).map_err(|error| error.to_string())?,
        _ => Default::default(),
    };
    let mut results: Vec<Option<ItemResult>> = keys
        .iter()
        .map(|key| hits.remove(key).map(|output| ItemResult::Output { output, from_cache: true }))
        .collect();
    let misses: Vec<usize> = (0..batch.len()).filter(|index| results[*index].is_none()).collect();
    if !misses.is_empty() {
        let model_started = Instant::now();
        if !*loaded {
            instance.load().map_err(|error| format!("the model failed to load: {error}"))?;
            *loaded = true;
        }
        let items: Vec<OwnedItem> = misses.iter().map(|index| batch[*index].item.clone()).collect();
        let outcome = with_batch_view(&items, shows_expected, |view| instance.run(view));
        progress.model_time += model_started.elapsed();
        match outcome {
            Ok(outputs) => {
                // `run` returns outputs in item order, paired by id.
                for (index, output) in misses.iter().zip(outputs) {
                    results[*index] = Some(match output.result {
                        RResult::ROk(text) => ItemResult::Output {
                            output: CachedOutput {
                                raw_output: text.into_string(),
                                prompt_tokens: output.prompt_tokens.into_option(),
                                completion_tokens: output.completion_tokens.into_option(),
                                latency_us: output.latency_us,
                            },
                            from_cache: false,
                        },
                        RResult::RErr(error) => {
                            ItemResult::Failed(format!("{} ({})", error.message, error.code.name()))
                        }
                    });
                }
            }
            Err(error) => {
                let message = error.to_string();
                for index in &misses {
                    results[*index] = Some(ItemResult::Failed(message.clone()));
                }
            }
        }
    }

    let extraction = progress.dataset.definition.extraction;
    let cached_extractions = match (cache.as_deref(), plan.cache) {
        (Some(cache), CacheMode::Normal) => {
            let hit_keys: Vec<CacheKey> = keys
                .iter()
                .zip(&results)
                .filter(|(_, result)| matches!(result, Some(ItemResult::Output { from_cache: true, .. })))
                .map(|(key, _)| *key)
                .collect();
            cache
                .get_extractions(&hit_keys, extraction.id(), extraction.version())
                .map_err(|error| error.to_string())?
        }
        _ => Default::default(),
    };
    let mut new_outputs = Vec::new();
    let mut new_extractions = Vec::new();
    let mut samples = Vec::with_capacity(batch.len());
    for ((pending, key), result) in batch.iter().zip(&keys).zip(results) {
        let record = &pending.record;
        let mut sample = SampleRecord {
            dataset: progress.dataset.name.clone(),
            id: record.source_id.clone(),
            prompt: pending.item.input.clone().unwrap_or_default(),
            raw_output: None,
            prediction: None,
            expected: record.answer.clone(),
            correct: None,
            from_cache: false,
            error: None,
            input_tokens: None,
            output_tokens: None,
            latency_ms: None,
            group: record.group.clone(),
        };
        progress.outcome.num_items += 1;
        match result {
            Some(ItemResult::Output { output, from_cache }) => {
                let letters: Vec<String> = record.options.iter().map(|(letter, _)| letter.clone()).collect();
                let prediction = match cached_extractions.get(key) {
                    Some(cached) => cached.prediction.clone(),
                    None => {
                        let prediction = extraction.apply(&output.raw_output, &letters);
                        new_extractions.push((*key, prediction.clone()));
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
                sample.correct = Some(
                    prediction.as_deref().is_some_and(|letter| letter.eq_ignore_ascii_case(&record.answer)),
                );
                sample.prediction = prediction.clone();
                sample.raw_output = Some(output.raw_output.clone());
                sample.from_cache = from_cache;
                sample.input_tokens = output.prompt_tokens;
                sample.output_tokens = output.completion_tokens;
                sample.latency_ms = Some(output.latency_us as f64 / 1000.0);
                progress.scored.push(Scored {
                    prediction,
                    expected: record.answer.clone(),
                    group: record.group.clone(),
                    other_args: serde_json::from_str(&pending.item.other_args).unwrap_or_default(),
                });
                if !from_cache {
                    new_outputs.push(NewOutput { key: *key, model: &plan.model.meta.name, output });
                }
            }
            Some(ItemResult::Failed(message)) => {
                progress.outcome.cache_misses += 1;
                progress.outcome.num_failed += 1;
                sample.error = Some(message);
            }
            None => unreachable!("every item has a cache hit or was sent to the model"),
        }
        samples.push(sample);
    }
    if let Some(cache) = cache.as_deref_mut() {
        if !new_outputs.is_empty() || !new_extractions.is_empty() {
            cache
                .store_batch(&new_outputs, &new_extractions, extraction.id(), extraction.version())
                .map_err(|error| error.to_string())?;
        }
    }
    Ok(samples)
}

/// Metrics over everything scored (failures excluded), overall and per subgroup.
fn score(progress: &mut Progress<'_>) {
    let seed = progress.plan.seed;
    let all: Vec<Sample<'_>> = progress
        .scored
        .iter()
        .map(|scored| Sample {
            prediction: scored.prediction.as_deref(),
            reference: &scored.expected,
            other_args: &scored.other_args,
        })
        .collect();
    let mut groups: BTreeMap<&str, Vec<Sample<'_>>> = BTreeMap::new();
    for (scored, sample) in progress.scored.iter().zip(&all) {
        if let Some(group) = &scored.group {
            groups.entry(group.as_str()).or_default().push(*sample);
        }
    }
    for name in progress.dataset.definition.metrics {
        let Some(metric) = metrics::find(name) else { continue };
        progress.outcome.metrics.insert(
            (*name).to_owned(),
            MetricResult {
                score: metrics::score(metric, &all, seed),
                num_failed: progress.outcome.num_failed,
                num_unparsed: progress.outcome.num_unparsed,
            },
        );
        for (group, samples) in &groups {
            progress
                .outcome
                .subgroups
                .entry((*group).to_owned())
                .or_default()
                .insert((*name).to_owned(), metrics::score(metric, samples, seed));
        }
    }
}
