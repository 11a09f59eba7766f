//! `eval`'s planning: dataset names (paths with commas, groups, duplicates) to definitions
//! with checked arguments and resolved sources; local files' task families; metric lists and
//! their arguments. Everything here runs before anything loads, and fails with exit 2.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::bail;

use super::{args::EvalArgs, diagnostics::Hinted, output_guard, processor_plan};
use crate::{
    datasets::{args as dataset_args, catalog, source, task::TaskType},
    engine::{DatasetPlan, DatasetSource, Scoring},
    metrics,
};

/// `--metric-args`, parsed and checked against each metric's declared arguments.
pub(super) fn metric_args(spec: Option<&str>) -> anyhow::Result<BTreeMap<String, BTreeMap<String, String>>> {
    let Some(spec) = spec else { return Ok(BTreeMap::new()) };
    let parsed = metrics::args::parse_spec(spec).map_err(|message| Hinted {
        message,
        hint: "expected `metric:key=value[,key2=value2]`".to_owned(),
    })?;
    for (name, given) in &parsed {
        metrics::configure(name, given).map_err(|message| Hinted {
            message: format!("--metric-args: {message}"),
            hint: "`karma-host info metric NAME` lists a metric's arguments".to_owned(),
        })?;
    }
    Ok(parsed)
}

/// Configured metrics for `names`, with their `--metric-args`.
pub(super) fn configured_metrics(
    names: &[&str],
    args: &BTreeMap<String, BTreeMap<String, String>>,
) -> anyhow::Result<Vec<metrics::MetricHandle>> {
    let none = BTreeMap::new();
    names
        .iter()
        .map(|name| {
            metrics::configure(name, args.get(*name).unwrap_or(&none))
                .map_err(|message| anyhow::anyhow!("{message}"))
        })
        .collect()
}

/// The `--datasets` values as dataset names: each split on commas, except where the commas
/// belong to an existing path (`data,v2.jsonl` is one file when it exists).
fn dataset_names(values: &[String]) -> Vec<String> {
    let mut names = Vec::new();
    for value in values {
        let parts: Vec<&str> = value.split(',').map(str::trim).collect();
        let mut start = 0;
        while start < parts.len() {
            let end = (start + 2..=parts.len())
                .rev()
                .find(|end| Path::new(&parts[start..*end].join(",")).exists())
                .unwrap_or(start + 1);
            names.push(parts[start..end].join(",").trim().to_owned());
            start = end;
        }
    }
    names.retain(|name| !name.is_empty());
    // A group stands for its members (an existing path of the same name wins).
    names
        .into_iter()
        .flat_map(|name| match catalog::group(&name).filter(|_| !Path::new(&name).exists()) {
            Some(members) => members.iter().map(|member| (*member).to_owned()).collect(),
            None => vec![name],
        })
        .collect()
}

/// Names → definitions, arguments validated, sources resolved; also the local files read, so
/// that no output overwrites them. A dataset named twice is evaluated once.
pub(super) fn resolve_datasets(
    arguments: &EvalArgs,
) -> anyhow::Result<(Vec<DatasetPlan>, Vec<output_guard::Input>)> {
    let mut given = dataset_args::parse(arguments.dataset_args.as_deref(), &arguments.dataset_arg).map_err(
        |message| Hinted {
            message,
            hint: "see `karma-host info dataset NAME` for a dataset's arguments".to_owned(),
        },
    )?;
    let task = arguments.task.as_deref().map(parse_task).transpose()?;
    let chosen_metrics = arguments.metrics.as_deref().map(parse_metrics).transpose()?;
    let metric_args = metric_args(arguments.metric_args.as_deref())?;
    let processor_args = processor_plan::parse_args(arguments.processor_args.as_deref())?;
    let chosen_processors = arguments.processors.as_deref().map(processor_plan::parse_list).transpose()?;
    let mut processors_used: Vec<(Vec<String>, Vec<&'static str>)> = Vec::new();
    let mut reported: Vec<&'static str> = Vec::new();
    let mut plans: Vec<DatasetPlan> = Vec::new();
    let mut inputs = Vec::new();
    let mut seen: Vec<(String, String)> = Vec::new();
    for name in dataset_names(&arguments.datasets) {
        let name = name.as_str();
        // A local file's family is known once its first row is read (or from --task).
        let (mut definition, report_name, local_path) = match catalog::find(name) {
            Some(definition) => (definition, definition.name.to_owned(), None),
            None if Path::new(name).exists() => {
                (&catalog::LOCAL[0], name.to_owned(), Some(PathBuf::from(name)))
            }
            None => {
                let suggestions = catalog::suggestions(name);
                bail!(Hinted {
                    message: format!("unknown dataset `{name}`"),
                    hint: if suggestions.is_empty() {
                        "`karma-host list datasets` shows the registered datasets; a local file must exist"
                            .to_owned()
                    } else {
                        format!("did you mean: {}?", suggestions.join(", "))
                    },
                });
            }
        };
        // The same dataset under another spelling (an alias, `./x.jsonl` and `x.jsonl`).
        let identity = match &local_path {
            Some(path) => path.canonicalize().unwrap_or_else(|_| path.clone()).display().to_string(),
            None => definition.name.to_owned(),
        };
        if let Some((first, _)) = seen.iter().find(|(_, known)| *known == identity) {
            tracing::warn!(
                "dataset `{name}` is listed more than once (as `{first}` before); it is evaluated once"
            );
            continue;
        }
        seen.push((name.to_owned(), identity));
        let args = given
            .remove(name)
            .or_else(|| given.remove(definition.name))
            .or_else(|| definition.aliases.iter().find_map(|alias| given.remove(*alias)))
            .unwrap_or_default();
        let args = validate_args(definition, &report_name, args)?;
        let ad_hoc = local_path.is_some();
        let data_files = args.get("data_files").map(PathBuf::from).or(local_path);
        let source = match data_files {
            Some(path) => {
                let files = source::data_files(&path).map_err(|error| Hinted {
                    message: format!("dataset `{report_name}`: {error}"),
                    hint: "pass an existing .jsonl/.json/.csv/.parquet file or a directory of them"
                        .to_owned(),
                })?;
                if source::RowReader::new(files.clone()).next_row().is_none() {
                    bail!(Hinted {
                        message: format!("dataset `{report_name}`: `{}` has no rows", path.display()),
                        hint: "blank lines are skipped; give a file with at least one row".to_owned(),
                    });
                }
                if ad_hoc {
                    definition = local_definition(&report_name, &files, task)?;
                }
                if path.is_dir() {
                    inputs.push(output_guard::Input::new("dataset directory", &path));
                }
                inputs.extend(files.iter().map(|file| output_guard::Input::new("dataset file", file)));
                DatasetSource::Local { files }
            }
            None => DatasetSource::Hub {
                repo: definition.repo_id,
                config: definition
                    .config_arg
                    .and_then(|arg| args.get(arg).cloned())
                    .or(definition.config.map(str::to_owned)),
                split: definition.split,
                revision: definition.revision.unwrap_or("main").to_owned(),
            },
        };
        let names: Vec<&str> = match &chosen_metrics {
            Some(chosen) => chosen.iter().map(|metric| metric.name()).collect(),
            None => definition.metrics.iter().flat_map(|name| metrics::expand(name)).collect(),
        };
        let metrics = configured_metrics(&names, &metric_args)?;
        if let Some(metric) =
            metrics.iter().find(|metric| metric.needs_grades() && definition.family.grader().is_none())
        {
            bail!(Hinted {
                message: format!(
                    "{} needs judge-graded rubrics, and dataset `{report_name}` has none",
                    metric.name()
                ),
                hint: "use it on a rubric dataset (healthbench, or a local file in HealthBench's schema) with --judge"
                    .to_owned(),
            });
        }
        reported.extend(metrics.iter().map(|metric| metric.name()));
        if arguments.scoring == Scoring::Loglikelihood && !definition.family.supports_loglikelihood() {
            bail!(Hinted {
                message: format!(
                    "dataset `{report_name}` is {} and cannot be scored by log-likelihood",
                    definition.task_type().as_str()
                ),
                hint: "--scoring loglikelihood applies to multiple-choice datasets; use --scoring generate"
                    .to_owned(),
            });
        }
        let processor_names = chosen_processors.clone().unwrap_or_else(|| definition.processors.to_vec());
        let mut names: Vec<&str> = vec![name, definition.name, &report_name];
        names.extend(definition.aliases.iter().copied());
        // The dataset's language reaches the processors (a transcript's, a translation's target).
        let language = args.get("language").or_else(|| args.get("target_language")).map(String::as_str);
        let processors = processor_plan::steps(&processor_names, &names, &processor_args, language)?;
        processors_used.push((names.iter().map(|name| (*name).to_owned()).collect(), processor_names));
        plans.push(DatasetPlan { name: report_name, definition, args, source, metrics, processors });
    }
    if plans.is_empty() {
        bail!("no datasets given");
    }
    if let Some(unused) = metric_args.keys().find(|name| !reported.contains(&name.as_str())) {
        bail!(Hinted {
            message: format!("--metric-args given for `{unused}`, which no dataset reports"),
            hint: "add it with --metrics, or check the metric name".to_owned(),
        });
    }
    processor_plan::check_all_used(&processor_args, &processors_used)?;
    if let Some(unused) = given.keys().next() {
        bail!(Hinted {
            message: format!("dataset arguments given for `{unused}`, which is not in --datasets"),
            hint: "check the dataset name in --dataset-args / --dataset-arg".to_owned(),
        });
    }
    Ok((plans, inputs))
}

/// `--task`: one of the families a local file can have.
fn parse_task(name: &str) -> anyhow::Result<TaskType> {
    let local = |task: &TaskType| catalog::LOCAL.iter().any(|definition| definition.task_type() == *task);
    TaskType::from_name(name.trim()).filter(local).ok_or_else(|| {
        let names: Vec<&str> =
            TaskType::ALL.iter().filter(|task| local(task)).map(|task| task.as_str()).collect();
        Hinted {
            message: format!("unknown task `{name}`"),
            hint: format!("--task takes one of: {}", names.join(", ")),
        }
        .into()
    })
}

/// `--metrics a,b`: the metrics every dataset reports instead of its own list.
pub(super) fn parse_metrics(list: &str) -> anyhow::Result<Vec<&'static dyn metrics::Metric>> {
    let mut chosen: Vec<&'static dyn metrics::Metric> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|name| !name.is_empty()).flat_map(metrics::expand) {
        let metric = metrics::find(name).ok_or_else(|| Hinted {
            message: format!("unknown metric `{name}` in --metrics"),
            hint: format!(
                "known metrics: {} (and `rouge` for the four ROUGE variants)",
                metrics::all().iter().map(|metric| metric.name()).collect::<Vec<_>>().join(", ")
            ),
        })?;
        if !chosen.iter().any(|known| known.name() == metric.name()) {
            chosen.push(metric);
        }
    }
    if chosen.is_empty() {
        bail!(Hinted {
            message: "--metrics names no metric".to_owned(),
            hint: "e.g. --metrics bleu,exact_match".to_owned()
        });
    }
    Ok(chosen)
}

/// The local family whose columns the first readable row of `files` has, or `task`'s.
fn local_definition(
    name: &str,
    files: &[PathBuf],
    task: Option<TaskType>,
) -> anyhow::Result<&'static catalog::DatasetDefinition> {
    if let Some(task) = task {
        return Ok(catalog::local_for(task));
    }
    let mut rows = source::RowReader::new(files.to_vec());
    let shapes = || {
        catalog::LOCAL
            .iter()
            .map(|definition| {
                format!("{}: {}", definition.task_type().as_str(), definition.family.local_columns())
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    while let Some(row) = rows.next_row() {
        let row = match row {
            Ok(row) => row,
            Err(error) if error.is_bad_row() => continue,
            Err(error) => return Err(anyhow::Error::new(error).context(format!("dataset `{name}`"))),
        };
        if let Some(definition) =
            catalog::LOCAL.iter().find(|definition| definition.family.recognises(&row.value))
        {
            return Ok(definition);
        }
        let columns = match &row.value {
            crate::datasets::row::RowValue::Object(entries) => {
                entries.iter().map(|(key, _)| key.as_ref()).collect::<Vec<_>>().join(", ")
            }
            _ => "not an object".to_owned(),
        };
        bail!(Hinted {
            message: format!(
                "dataset `{name}`: cannot tell its task from the columns of `{}` row {} ({columns})",
                row.path.display(),
                row.row
            ),
            hint: format!("expected {}; or pass --task", shapes()),
        });
    }
    bail!(Hinted {
        message: format!("dataset `{name}`: no readable row to tell its task from"),
        hint: format!("expected {}", shapes()),
    })
}

/// Refuses datasets whose items carry a modality the model does not accept (an audio dataset
/// on a text model), before anything is loaded.
pub(super) fn check_modalities(
    meta: &karma_plugin_api::abi::ModelMeta,
    datasets: &[DatasetPlan],
) -> anyhow::Result<()> {
    for dataset in datasets {
        let missing: Vec<&str> = dataset
            .definition
            .family
            .modalities()
            .iter()
            .filter(|modality| !meta.modalities.contains(modality))
            .map(|modality| modality.as_str())
            .collect();
        if !missing.is_empty() {
            let accepted: Vec<&str> = meta.modalities.iter().map(|modality| modality.as_str()).collect();
            bail!(Hinted {
                message: format!(
                    "dataset `{}` gives the model {} input, which model `{}` does not accept (it takes: {})",
                    dataset.name,
                    missing.join(" and "),
                    meta.name,
                    accepted.join(", ")
                ),
                hint:
                    "`karma-host list models` shows each model's modalities; choose one that accepts them, \
                       or karma/describe-input to check the dataset's plumbing"
                        .to_owned(),
            });
        }
    }
    Ok(())
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
        if let Some(value) = args.get(spec.name).filter(|_| !spec.choices.is_empty()) {
            if !spec.choices.contains(&value.as_str()) {
                bail!(Hinted {
                    message: format!("dataset `{name}`: `{value}` is not a valid `{}`", spec.name),
                    hint: format!("valid values: {}", spec.choices.join(", ")),
                });
            }
        }
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
                    hint: if spec.choices.is_empty() {
                        format!("pass --dataset-arg '{name}.{}=VALUE'", spec.name)
                    } else {
                        format!(
                            "pass --dataset-arg '{name}.{}=VALUE' with one of: {}",
                            spec.name,
                            spec.choices.join(", ")
                        )
                    },
                }),
                (false, None) => {}
            }
        }
    }
    Ok(args)
}
