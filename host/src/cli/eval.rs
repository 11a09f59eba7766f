//! `karma-host eval`: resolve and validate everything (exit 2 before anything loads), then run
//! the engine, writing results per dataset as they complete.

use std::{
    io::{IsTerminal, Write},
    path::{Path, PathBuf},
    time::SystemTime,
};

use anyhow::{bail, Context};
use serde_json::json;

use super::{
    args::{EvalArgs, SaveFormat, TableOrJson},
    find_model, model_config, output_guard,
    progress::Progress,
    signals, ExitStatus,
};
use crate::{
    datasets::{hub, source},
    engine::{self, CacheMode, DatasetOutcome, DatasetStatus, EvalPlan, Scoring},
    env_vars, metrics,
    plugins::{self, PluginStatus, Registry},
    report,
};

pub(super) fn eval(registry: &Registry, arguments: &EvalArgs) -> anyhow::Result<ExitStatus> {
    let started_at = SystemTime::now();
    let model = find_model(registry, &arguments.model)?;
    let config = model_config::merge(
        &model.meta.loader_kwargs,
        arguments.model_config.as_deref(),
        arguments.model_args.as_deref(),
        arguments.model_path.as_deref(),
    )?;
    let (datasets, dataset_inputs) = super::eval_plan::resolve_datasets(arguments)?;
    super::eval_plan::check_modalities(&model.meta, &datasets)?;
    let cache_path = cache_path(arguments.cache_path.as_deref());
    check_outputs(registry, arguments, &config, &cache_path, dataset_inputs)?;
    let isolation = super::isolation_config::resolve(model, arguments.isolation, arguments.batch_timeout)?;
    // The plugin validates the configuration (unknown keys, bad values) without loading anything.
    let mut backend =
        plugins::open_backend(model, &config.to_string(), isolation.isolation, isolation.batch_timeout)?;
    if arguments.scoring == Scoring::Loglikelihood && !backend.scores_continuations()? {
        bail!(
            "model `{}` cannot score continuations (it does not offer the `{}` extension); \
             use --scoring generate, or a model that supports log-likelihood scoring such as candle/causal-lm",
            model.meta.name,
            karma_plugin_api::abi::LOGLIKELIHOOD_EXTENSION
        );
    }

    let judge = super::judge::resolve(registry, arguments, &datasets)?;
    let (judge_plan, mut judge_backend) = match judge {
        Some((plan, backend)) => (Some(plan), Some(backend)),
        None => (None, None),
    };
    let offline = arguments.offline || hub::offline_from_env();
    let plugin_file =
        model.plugin_path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let plan = EvalPlan {
        model,
        config,
        datasets,
        batch_size: batch_size(arguments.batch_size, &model.meta),
        max_samples: arguments.max_samples,
        cache: if arguments.no_cache {
            CacheMode::Off
        } else if arguments.refresh_cache {
            CacheMode::Refresh
        } else {
            CacheMode::Normal
        },
        cache_path,
        offline,
        seed: arguments.seed,
        collect_samples: arguments.samples_output.is_some(),
        plugin_id: plugin_file,
        plugin_version: model.meta.version.clone().unwrap_or_default(),
        scoring: arguments.scoring,
        strict: arguments.strict,
        judge: judge_plan,
    };
    if arguments.dry_run {
        drop(backend);
        drop(judge_backend);
        return super::dry_run::dry_run(&plan);
    }
    super::crash_marker::report_earlier_crashes(&plan.cache_path, &model.meta.name);
    let _marker = (isolation.isolation == plugins::Isolation::InProcess)
        .then(|| super::crash_marker::start(&plan.cache_path, &model.meta.name));
    tracing::info!(
        "model `{}` runs {}",
        model.meta.name,
        match isolation.isolation {
            plugins::Isolation::InProcess => "in process".to_owned(),
            plugins::Isolation::Worker =>
                format!("in a worker process (batch timeout {} s)", isolation.batch_timeout.as_secs()),
        }
    );

    tracing::debug!("model configuration: {}", report::redact(&plan.config));
    let mut manifest = manifest(registry, &plan, started_at)?;
    manifest["isolation"] = json!({
        "mode": isolation.isolation.as_str(),
        "batch_timeout_secs": (isolation.isolation == plugins::Isolation::Worker).then_some(isolation.batch_timeout.as_secs()),
    });
    signals::install();
    let progress = Progress::new(!arguments.no_progress && std::io::stderr().is_terminal());
    let mut samples_writer = match &arguments.samples_output {
        Some(path) => Some(
            report::SamplesWriter::create(path)
                .with_context(|| format!("cannot create `{}`", path.display()))?,
        ),
        None => None,
    };
    let mut samples_failed = false;
    let mut completed: Vec<DatasetOutcome> = Vec::new();
    let mut write_error: Option<anyhow::Error> = None;
    let outcomes = engine::run(
        &plan,
        backend.as_mut(),
        judge_backend.as_mut().map(|judge| judge.as_mut() as &mut dyn plugins::Backend),
        &progress,
        &mut |samples| {
            if let Some(Err(error)) = samples_writer.as_mut().map(|writer| writer.write(samples)) {
                // The scores and the cache do not depend on the samples file: carry on without it.
                tracing::error!("{error}; the evaluation goes on without the samples file");
                samples_writer = None;
                samples_failed = true;
            }
            Ok(())
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
    let status = run_status(&outcomes, interrupted);
    let mut manifest = manifest;
    manifest["finished_at"] = report::utc_timestamp(SystemTime::now()).into();
    if let Err(error) = save(arguments, &manifest, &outcomes, status) {
        let kept = keep_results(&manifest, &outcomes, status);
        tracing::error!("{}", super::diagnostics::render(&error).trim_end());
        tracing::error!("the results are kept {kept}");
        return Ok(ExitStatus::Failure);
    }
    if let Some(error) = write_error {
        // An intermediate write failed, the final one did not: worth a word, not a failure.
        tracing::warn!("{error:#} (after a dataset; the final results file was written)");
    }
    let printed = print_summary(arguments.format, &manifest, &outcomes, status);
    // After a signal the terminal or pipe may be gone: the exit code must still say what happened.
    if !interrupted {
        printed?;
    }
    for outcome in outcomes.iter().filter(|outcome| outcome.status == DatasetStatus::Failed) {
        tracing::error!(
            "dataset `{}` failed: {}",
            outcome.name,
            outcome.error.as_deref().unwrap_or("unknown error")
        );
    }
    warn_about_ids(&outcomes);
    if interrupted {
        tracing::warn!(
            "interrupted by {}: partial results written to `{}`",
            signals::name(),
            arguments.output.display()
        );
        std::process::exit(signals::exit_code());
    }
    let evaluated = outcomes.iter().any(|outcome| outcome.status.finished());
    Ok(if !evaluated {
        ExitStatus::Error
    } else if report::had_failures(&outcomes) || samples_failed {
        let failed: Vec<String> = outcomes
            .iter()
            .filter(|outcome| outcome.status == DatasetStatus::Failed || outcome.num_failed > 0)
            .map(|outcome| {
                if outcome.status == DatasetStatus::Failed {
                    format!("{} (dataset failed)", outcome.name)
                } else if outcome.num_bad_rows > 0 {
                    format!(
                        "{} ({} items failed, {} of them bad rows)",
                        outcome.name, outcome.num_failed, outcome.num_bad_rows
                    )
                } else {
                    format!("{} ({} items failed)", outcome.name, outcome.num_failed)
                }
            })
            .chain(samples_failed.then(|| "the samples file could not be written".to_owned()))
            .collect();
        tracing::warn!("finished with failures: {}", failed.join(", "));
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// `--batch-size` (default: the model's `preferred_batch_size`, else 8), capped by its declared
/// `max_batch_size` (larger batches are split).
pub(super) fn batch_size(requested: Option<u32>, meta: &karma_plugin_api::abi::ModelMeta) -> usize {
    let requested = requested.or(meta.preferred_batch_size).filter(|size| *size > 0).unwrap_or(8);
    match meta.max_batch_size.filter(|limit| *limit > 0 && *limit < requested) {
        Some(limit) => {
            tracing::info!("batches of {limit} items: the model's max_batch_size (asked for {requested})");
            limit as usize
        }
        None => requested as usize,
    }
}

/// The run's `manifest.status`.
fn run_status(outcomes: &[DatasetOutcome], interrupted: bool) -> &'static str {
    if interrupted {
        "interrupted"
    } else if outcomes.iter().all(|outcome| outcome.status == DatasetStatus::Failed) {
        "failed"
    } else if report::had_failures(outcomes) {
        "completed_with_failures"
    } else {
        "completed"
    }
}

/// The final results file could not be written: the results go to
/// `$TMPDIR/karma-results-<timestamp>.json`, else to stdout. Returns where, for the message.
fn keep_results(manifest: &serde_json::Value, outcomes: &[DatasetOutcome], status: &str) -> String {
    let document = report::results_document(manifest, outcomes, status);
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_else(|_| document.to_string());
    text.push('\n');
    let stamp = report::utc_timestamp(SystemTime::now()).replace(':', "-");
    let fallback = std::env::temp_dir().join(format!("karma-results-{stamp}-{}.json", std::process::id()));
    match report::write_atomic(&fallback, text.as_bytes()) {
        Ok(()) => format!("in `{}`", fallback.display()),
        Err(error) => {
            let _ = std::io::stdout().write_all(text.as_bytes());
            format!("on stdout (`{}` could not be written either: {error})", fallback.display())
        }
    }
}

/// Repeated and unusable ids do not change scores (items are paired by row), but they make
/// samples hard to join with other runs: say how many.
fn warn_about_ids(outcomes: &[DatasetOutcome]) {
    for outcome in outcomes {
        if outcome.duplicate_ids > 0 {
            tracing::warn!(
                "dataset `{}`: {} row(s) repeat an id of an earlier row (first: {}); they are evaluated as separate items",
                outcome.name,
                outcome.duplicate_ids,
                outcome.duplicate_id_examples.iter().take(3).map(|id| format!("`{id}`")).collect::<Vec<_>>().join(", ")
            );
        }
        if outcome.ids_from_row_number > 0 {
            tracing::warn!(
                "dataset `{}`: {} row(s) have a null, object or list `id`; they are identified by row number",
                outcome.name,
                outcome.ids_from_row_number
            );
        }
    }
}

/// Refuses, before anything loads, output paths that are inputs or each other, and outputs that
/// cannot be written.
fn check_outputs(
    registry: &Registry,
    arguments: &EvalArgs,
    config: &serde_json::Value,
    cache_path: &Path,
    mut inputs: Vec<output_guard::Input>,
) -> anyhow::Result<()> {
    if let Some(path) = config.get("model_path").and_then(|path| path.as_str()) {
        inputs.push(output_guard::Input::new("the model path", path));
    }
    if let Some(path) = &arguments.model_config {
        inputs.push(output_guard::Input::new("the --model-config file", path));
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut path = cache_path.as_os_str().to_owned();
        path.push(suffix);
        inputs.push(output_guard::Input::new("the cache", PathBuf::from(path)));
    }
    for plugin in &registry.plugins {
        inputs.push(output_guard::Input::new("the plugin", &plugin.path));
    }
    let mut outputs = vec![output_guard::Output { flag: "--output", path: &arguments.output }];
    if let Some(path) = &arguments.samples_output {
        outputs.push(output_guard::Output { flag: "--samples-output", path });
    }
    output_guard::check_distinct(&outputs, &inputs)?;
    if !arguments.dry_run {
        for output in &outputs {
            output_guard::check_writable(output.flag, output.path)?;
        }
    }
    Ok(())
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
        "judge": plan.judge.as_ref().map(|judge| json!({
            "name": judge.model.meta.name,
            "version": judge.model.meta.version,
            "plugin": judge.model.plugin_path.display().to_string(),
            "config": report::redact(&judge.config),
            "batch_size": judge.batch_size,
        })),
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
                    for (group, score) in &result.breakdown {
                        rows.push(vec![
                            String::new(),
                            format!("  {group}"),
                            format_score(score.score),
                            format!("[{}, {}]", format_score(score.ci_low), format_score(score.ci_high)),
                            score.num_samples.to_string(),
                            String::new(),
                            String::new(),
                            String::new(),
                        ]);
                    }
                    for (field, gap) in &result.disparity {
                        let mut row = vec![String::new(); 8];
                        row[1] = format!("  disparity by {field}");
                        row[2] = format_score(Some(*gap));
                        rows.push(row);
                    }
                }
            }
            super::output::table(
                &mut stdout,
                &["DATASET", "METRIC", "SCORE", "95% CI", "N", "FAILED", "CACHED", "STATUS"],
                &rows,
            )?;
            for outcome in outcomes {
                for line in usage_lines(outcome) {
                    writeln!(stdout, "{line}")?;
                }
            }
        }
    }
    Ok(())
}

/// What a dataset's calls used and what was cut short, under the table (only what happened).
fn usage_lines(outcome: &DatasetOutcome) -> Vec<String> {
    let describe = |usage: &engine::usage::Usage| {
        let mut text = format!(
            "{} calls, {} prompt + {} completion tokens",
            usage.calls, usage.prompt_tokens, usage.completion_tokens
        );
        if usage.reasoning_tokens > 0 {
            text.push_str(&format!(" ({} reasoning)", usage.reasoning_tokens));
        }
        if let Some(cost) = usage.cost_usd {
            text.push_str(&format!(", about ${cost:.4}"));
        }
        text
    };
    let mut lines = Vec::new();
    let usage = &outcome.usage;
    if usage.prompt_tokens + usage.completion_tokens > 0 || usage.cost_usd.is_some() {
        lines.push(format!("{}: model {}", outcome.name, describe(&outcome.usage)));
    }
    if let Some(judge) = &outcome.judge {
        lines.push(format!(
            "{}: judge {} {}, {} cached verdicts, {} answers not graded",
            outcome.name,
            judge.model,
            describe(&judge.usage),
            judge.cache_hits,
            judge.num_judge_failed
        ));
    }
    if outcome.num_truncated > 0 {
        lines.push(format!(
            "{}: {} answers cut short by the token limit (raise max_tokens in --model-args)",
            outcome.name, outcome.num_truncated
        ));
    }
    lines
}
