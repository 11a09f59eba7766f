//! `karma-host eval`: resolve and validate everything (exit 2 before anything loads), then run
//! the engine, writing results per dataset as they complete.

use std::{
    collections::BTreeMap,
    io::{IsTerminal, Write},
    path::{Path, PathBuf},
    time::SystemTime,
};

use anyhow::{bail, Context};
use serde_json::json;

use super::{
    args::{EvalArgs, SaveFormat, TableOrJson},
    diagnostics::Hinted,
    find_model, model_config,
    progress::Progress,
    ExitStatus,
};
use crate::{
    cache::{item_key, Cache},
    datasets::{args as dataset_args, catalog, hub, source},
    engine::{self, CacheMode, DatasetOutcome, DatasetPlan, DatasetSource, DatasetStatus, EvalPlan, Scoring},
    env_vars, metrics,
    plugins::{ModelInstance, PluginStatus, Registry},
    report,
};

/// Exit code for a run stopped by Ctrl-C.
const INTERRUPTED_EXIT: i32 = 130;

pub(super) fn eval(registry: &Registry, arguments: &EvalArgs) -> anyhow::Result<ExitStatus> {
    let started_at = SystemTime::now();
    let model = find_model(registry, &arguments.model)?;
    let config = model_config::merge(
        &model.meta.loader_kwargs,
        arguments.model_config.as_deref(),
        arguments.model_args.as_deref(),
        arguments.model_path.as_deref(),
    )?;
    check_metric_args(arguments.metric_args.as_deref())?;
    let datasets = resolve_datasets(arguments)?;
    // The plugin validates the configuration (unknown keys, bad values) without loading anything.
    let instance = ModelInstance::create(model, &config.to_string())?;
    if arguments.scoring == Scoring::Loglikelihood && !instance.scores_continuations()? {
        bail!(
            "model `{}` cannot score continuations (it does not offer the `{}` extension); \
             use --scoring generate, or a model that supports log-likelihood scoring such as candle/causal-lm",
            model.meta.name,
            karma_plugin_api::abi::LOGLIKELIHOOD_EXTENSION
        );
    }
    drop(instance);

    let offline = arguments.offline || hub::offline_from_env();
    let plugin_file =
        model.plugin_path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let plan = EvalPlan {
        model,
        config,
        datasets,
        batch_size: arguments.batch_size as usize,
        max_samples: arguments.max_samples,
        cache: if arguments.no_cache {
            CacheMode::Off
        } else if arguments.refresh_cache {
            CacheMode::Refresh
        } else {
            CacheMode::Normal
        },
        cache_path: cache_path(arguments.cache_path.as_deref()),
        offline,
        seed: arguments.seed,
        collect_samples: arguments.samples_output.is_some(),
        plugin_id: plugin_file,
        plugin_version: model.meta.version.clone().unwrap_or_default(),
        scoring: arguments.scoring,
    };
    if arguments.dry_run {
        return dry_run(&plan);
    }

    let manifest = manifest(registry, &plan, started_at)?;
    ctrlc_handler();
    let progress = Progress::new(!arguments.no_progress && std::io::stderr().is_terminal());
    let mut samples_writer = match &arguments.samples_output {
        Some(path) => Some(
            report::SamplesWriter::create(path)
                .with_context(|| format!("cannot create `{}`", path.display()))?,
        ),
        None => None,
    };
    let mut completed: Vec<DatasetOutcome> = Vec::new();
    let mut write_error: Option<anyhow::Error> = None;
    let outcomes = engine::run(
        &plan,
        &progress,
        &mut |samples| match samples_writer.as_mut() {
            Some(writer) => writer.write(samples),
            None => Ok(()),
        },
        &mut |outcome| {
            completed.push(outcome.clone());
            if let Err(error) = save(arguments, &manifest, &completed, "running") {
                write_error.get_or_insert(error);
            }
        },
    )?;
    progress.finish();
    let interrupted = engine::interrupted();
    let status = if interrupted { "interrupted" } else { "completed" };
    let mut manifest = manifest;
    manifest["finished_at"] = report::utc_timestamp(SystemTime::now()).into();
    save(arguments, &manifest, &outcomes, status)?;
    if let Some(error) = write_error {
        return Err(error);
    }
    print_summary(arguments.format, &manifest, &outcomes, status)?;
    for outcome in outcomes.iter().filter(|outcome| outcome.status == DatasetStatus::Failed) {
        tracing::error!(
            "dataset `{}` failed: {}",
            outcome.name,
            outcome.error.as_deref().unwrap_or("unknown error")
        );
    }
    if interrupted {
        tracing::warn!("interrupted: partial results written to `{}`", arguments.output.display());
        std::process::exit(INTERRUPTED_EXIT);
    }
    let evaluated = outcomes.iter().any(|outcome| outcome.status == DatasetStatus::Completed);
    Ok(if !evaluated {
        ExitStatus::Error
    } else if report::had_failures(&outcomes) {
        let failed: Vec<String> = outcomes
            .iter()
            .filter(|outcome| outcome.status == DatasetStatus::Failed || outcome.num_failed > 0)
            .map(|outcome| {
                if outcome.status == DatasetStatus::Failed {
                    format!("{} (dataset failed)", outcome.name)
                } else {
                    format!("{} ({} items failed)", outcome.name, outcome.num_failed)
                }
            })
            .collect();
        tracing::warn!("finished with failures: {}", failed.join(", "));
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

fn ctrlc_handler() {
    // First Ctrl-C: finish the batch in flight, write partial results. Second: leave now.
    let _ = ctrlc::set_handler(|| {
        if engine::INTERRUPTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::process::exit(INTERRUPTED_EXIT);
        }
    });
}

/// `--cache-path`, else `KARMA_CACHE_PATH`, else `~/.cache/karma/cache.sqlite`.
pub(super) fn cache_path(flag: Option<&Path>) -> PathBuf {
    if let Some(path) = flag {
        return path.to_owned();
    }
    if let Some(path) = std::env::var_os(env_vars::KARMA_CACHE_PATH) {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache/karma/cache.sqlite")
}

fn check_metric_args(spec: Option<&str>) -> anyhow::Result<()> {
    let Some(spec) = spec else { return Ok(()) };
    // No metric takes arguments yet, so the first well-formed entry is already an error.
    if let Some(part) = spec.split(';').map(str::trim).find(|part| !part.is_empty()) {
        let (name, _) = part.split_once(':').ok_or_else(|| Hinted {
            message: format!("invalid metric argument `{part}`"),
            hint: "expected `metric:key=value[,key2=value2]`".to_owned(),
        })?;
        match metrics::find(name.trim()) {
            Some(metric) => bail!(Hinted {
                message: format!("metric `{}` takes no arguments", metric.name()),
                hint: "remove it from --metric-args".to_owned(),
            }),
            None => bail!(Hinted {
                message: format!("unknown metric `{}` in --metric-args", name.trim()),
                hint: "`karma-host list metrics` shows the metrics".to_owned(),
            }),
        }
    }
    Ok(())
}

/// Names → definitions, arguments validated, sources resolved.
fn resolve_datasets(arguments: &EvalArgs) -> anyhow::Result<Vec<DatasetPlan>> {
    let mut given = dataset_args::parse(arguments.dataset_args.as_deref(), &arguments.dataset_arg).map_err(
        |message| Hinted {
            message,
            hint: "see `karma-host info dataset NAME` for a dataset's arguments".to_owned(),
        },
    )?;
    let mut plans = Vec::new();
    for name in arguments.datasets.iter().map(|name| name.trim()).filter(|name| !name.is_empty()) {
        let (definition, report_name, local_path) = match catalog::find(name) {
            Some(definition) => (definition, definition.name.to_owned(), None),
            None if Path::new(name).exists() => {
                (&catalog::LOCAL_MCQ, name.to_owned(), Some(PathBuf::from(name)))
            }
            None => {
                let suggestions = catalog::suggestions(name);
                bail!(Hinted {
                    message: format!("unknown dataset `{name}`"),
                    hint: if suggestions.is_empty() {
                        "`karma-host list datasets` shows the registered datasets; a local MCQ file must exist".to_owned()
                    } else {
                        format!("did you mean: {}?", suggestions.join(", "))
                    },
                });
            }
        };
        let args = given
            .remove(name)
            .or_else(|| given.remove(definition.name))
            .or_else(|| definition.aliases.iter().find_map(|alias| given.remove(*alias)))
            .unwrap_or_default();
        let args = validate_args(definition, &report_name, args)?;
        let data_files = args.get("data_files").map(PathBuf::from).or(local_path);
        let source = match data_files {
            Some(path) => {
                let files = source::data_files(&path).map_err(|error| Hinted {
                    message: format!("dataset `{report_name}`: {error}"),
                    hint: "pass an existing .jsonl/.json/.csv/.parquet file or a directory of them"
                        .to_owned(),
                })?;
                DatasetSource::Local { files }
            }
            None => DatasetSource::Hub {
                repo: definition.repo_id,
                config: definition.config,
                split: definition.split,
                revision: definition.revision.unwrap_or("main").to_owned(),
            },
        };
        plans.push(DatasetPlan { name: report_name, definition, args, source });
    }
    if plans.is_empty() {
        bail!("no datasets given");
    }
    if let Some(unused) = given.keys().next() {
        bail!(Hinted {
            message: format!("dataset arguments given for `{unused}`, which is not in --datasets"),
            hint: "check the dataset name in --dataset-args / --dataset-arg".to_owned(),
        });
    }
    Ok(plans)
}

fn validate_args(
    definition: &catalog::DatasetDefinition,
    name: &str,
    mut args: BTreeMap<String, String>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let known: Vec<&str> = definition.all_args().map(|spec| spec.name).collect();
    if let Some(unknown) = args.keys().find(|key| !known.contains(&key.as_str())) {
        bail!(Hinted {
            message: format!("unknown argument `{unknown}` for dataset `{name}`"),
            hint: format!("known arguments: {}", known.join(", ")),
        });
    }
    for spec in definition.all_args() {
        if !args.contains_key(spec.name) {
            match (spec.required, spec.default) {
                (_, Some(default)) => {
                    args.insert(spec.name.to_owned(), default.to_owned());
                }
                (true, None) => bail!(Hinted {
                    message: format!(
                        "dataset `{name}` requires the argument `{}` ({})",
                        spec.name, spec.description
                    ),
                    hint: format!("pass --dataset-arg '{name}.{}=VALUE'", spec.name),
                }),
                (false, None) => {}
            }
        }
    }
    Ok(args)
}

fn manifest(
    registry: &Registry,
    plan: &EvalPlan<'_>,
    started_at: SystemTime,
) -> anyhow::Result<serde_json::Value> {
    let plugin_sha256 = source::content_hash(std::slice::from_ref(&plan.model.plugin_path))?;
    let versions =
        registry.plugins.iter().find(|record| record.path == plan.model.plugin_path).and_then(|record| {
            match &record.status {
                PluginStatus::Loaded { versions, .. } => Some(versions.clone()),
                PluginStatus::Rejected(_) => None,
            }
        });
    Ok(json!({
        "host_version": env!("CARGO_PKG_VERSION"),
        "plugin": {
            "path": plan.model.plugin_path.display().to_string(),
            "sha256": plugin_sha256,
            "plugin_api_version": versions.as_ref().map(|v| v.plugin_api_version.clone()),
            "abi_version": versions.as_ref().map(|v| format!("{}.{}", v.abi_major, v.abi_minor)),
            "rustc_version": versions.as_ref().map(|v| v.rustc_version.clone()),
        },
        "model": {
            "name": plan.model.meta.name,
            "version": plan.model.meta.version,
            "config": report::redact(&plan.config),
        },
        "batch_size": plan.batch_size,
        "max_samples": plan.max_samples,
        "cache": match plan.cache { CacheMode::Normal => "normal", CacheMode::Refresh => "refresh", CacheMode::Off => "off" },
        "seed": plan.seed,
        "scoring": plan.scoring.as_str(),
        "bootstrap_resamples": metrics::interval::RESAMPLES,
        "started_at": report::utc_timestamp(started_at),
        "finished_at": null,
    }))
}

fn save(
    arguments: &EvalArgs,
    manifest: &serde_json::Value,
    outcomes: &[DatasetOutcome],
    status: &str,
) -> anyhow::Result<()> {
    let bytes = match arguments.save_format {
        SaveFormat::Json => {
            let mut text =
                serde_json::to_string_pretty(&report::results_document(manifest, outcomes, status))?;
            text.push('\n');
            text.into_bytes()
        }
        SaveFormat::Csv => report::results_csv(outcomes).into_bytes(),
        SaveFormat::Yaml => {
            report::to_yaml(&report::results_document(manifest, outcomes, status)).into_bytes()
        }
    };
    report::write_atomic(&arguments.output, &bytes)
        .with_context(|| format!("cannot write results to `{}`", arguments.output.display()))
}

fn format_score(value: Option<f64>) -> String {
    value.map(|value| format!("{value:.4}")).unwrap_or_else(|| "-".to_owned())
}

fn print_summary(
    format: TableOrJson,
    manifest: &serde_json::Value,
    outcomes: &[DatasetOutcome],
    status: &str,
) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match format {
        TableOrJson::Json => {
            super::output::json(&mut stdout, &report::results_document(manifest, outcomes, status))?
        }
        TableOrJson::Table => {
            let mut rows = Vec::new();
            for outcome in outcomes {
                let status = serde_json::to_value(outcome.status)?.as_str().unwrap_or_default().to_owned();
                if outcome.metrics.is_empty() {
                    rows.push(vec![
                        outcome.name.clone(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        outcome.num_items.to_string(),
                        outcome.num_failed.to_string(),
                        outcome.cache_hits.to_string(),
                        status.clone(),
                    ]);
                }
                for (name, result) in &outcome.metrics {
                    rows.push(vec![
                        outcome.name.clone(),
                        name.clone(),
                        format_score(result.score.score),
                        format!(
                            "[{}, {}]",
                            format_score(result.score.ci_low),
                            format_score(result.score.ci_high)
                        ),
                        result.score.num_samples.to_string(),
                        result.num_failed.to_string(),
                        outcome.cache_hits.to_string(),
                        status.clone(),
                    ]);
                }
            }
            super::output::table(
                &mut stdout,
                &["DATASET", "METRIC", "SCORE", "95% CI", "N", "FAILED", "CACHED", "STATUS"],
                &rows,
            )?;
        }
    }
    Ok(())
}

/// `--dry-run`: everything validated, the plan printed, nothing loaded or called.
fn dry_run(plan: &EvalPlan<'_>) -> anyhow::Result<ExitStatus> {
    let cache = match plan.cache {
        CacheMode::Normal if plan.cache_path.exists() => Some(Cache::open(&plan.cache_path)?),
        _ => None,
    };
    let key_context = plan.key_context();
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "model:     {} ({})", plan.model.meta.name, plan.model.plugin_path.display())?;
    writeln!(stdout, "config:    {}", report::redact(&plan.config))?;
    writeln!(
        stdout,
        "cache:     {} ({})",
        plan.cache_path.display(),
        match plan.cache {
            CacheMode::Normal => "read and write",
            CacheMode::Refresh => "refresh: write only",
            CacheMode::Off => "off",
        }
    )?;
    writeln!(
        stdout,
        "batch size {}, max samples {}, scoring {}",
        plan.batch_size,
        plan.max_samples.map(|n| n.to_string()).unwrap_or_else(|| "all".into()),
        plan.scoring.as_str()
    )?;
    let mut problems = 0;
    for dataset in &plan.datasets {
        writeln!(stdout, "\ndataset:   {} ({})", dataset.name, dataset.definition.task_type.as_str())?;
        let files = match &dataset.source {
            DatasetSource::Local { files } => {
                let revision = source::content_hash(files)?;
                writeln!(stdout, "source:    {} file(s), revision local:{revision}", files.len())?;
                Some(files.clone())
            }
            DatasetSource::Hub { repo, config, split, revision } => {
                let request = engine::plan::hub_request(repo, *config, split, revision);
                match hub::find_cached(&hub::cache_dir(), &request) {
                    Some(snapshot) => {
                        writeln!(
                            stdout,
                            "source:    {repo} split {split} at {} (in the local HF cache)",
                            snapshot.commit
                        )?;
                        Some(snapshot.files)
                    }
                    None => {
                        writeln!(
                            stdout,
                            "source:    {repo} split {split} at {revision}: not cached, {}",
                            if plan.offline {
                                "and offline mode forbids downloading"
                            } else {
                                "would be downloaded"
                            }
                        )?;
                        None
                    }
                }
            }
        };
        let Some(files) = files else { continue };
        let (mut count, mut hits, mut first_prompt) = (0u64, 0u64, None);
        let mut keys = Vec::new();
        let mut rows = source::RowReader::new(files);
        while let Some(row) = rows.next_row() {
            if plan.max_samples.is_some_and(|limit| count >= limit) {
                break;
            }
            let row = row?;
            let record = dataset.definition.schema.record(&row.value, count).map_err(|problem| {
                anyhow::anyhow!(
                    "dataset `{}`: `{}` row {}: field `{}`: {}",
                    dataset.name,
                    row.path.display(),
                    row.row,
                    problem.field,
                    problem.problem
                )
            });
            let record = match record {
                Ok(record) => record,
                Err(error) => {
                    writeln!(stdout, "error:     {error}")?;
                    problems += 1;
                    break;
                }
            };
            let prompt = dataset.definition.template.render(&record, dataset.template_override());
            if cache.is_some() {
                let item = engine::build_item(count, &record, dataset, plan.scoring);
                keys.push(item_key(&key_context, &item, plan.model.meta.wants_expected_output));
            }
            first_prompt.get_or_insert(prompt);
            count += 1;
        }
        if let Some(cache) = &cache {
            for chunk in keys.chunks(10_000) {
                let extraction = plan.extraction(dataset);
                hits += cache
                    .get_outputs_with_extractions(chunk, extraction.id(), extraction.version())?
                    .len() as u64;
            }
        }
        writeln!(stdout, "samples:   {count}")?;
        writeln!(stdout, "cached:    {hits} of {count}")?;
        if let Some(prompt) = first_prompt {
            writeln!(
                stdout,
                "prompt:\n{}",
                prompt.lines().map(|line| format!("    {line}")).collect::<Vec<_>>().join("\n")
            )?;
        }
    }
    Ok(if problems > 0 { ExitStatus::Error } else { ExitStatus::Success })
}
