//! `list datasets`, `list metrics`, `info dataset`, `info metric`.

use std::io::Write;

use anyhow::bail;
use serde_json::json;

use super::{
    args::{ListFormat, TableOrJson},
    diagnostics::Hinted,
    output, ExitStatus,
};
use crate::{
    datasets::{catalog, task::TaskType},
    metrics,
};

fn dataset_json(definition: &catalog::DatasetDefinition) -> serde_json::Value {
    json!({
        "name": definition.name,
        "aliases": definition.aliases,
        "description": definition.description,
        "repo_id": definition.repo_id,
        "config": definition.config,
        "split": definition.split,
        "revision": definition.revision,
        "task_type": definition.task_type().as_str(),
        "modalities": definition.family.modalities().iter().map(|modality| modality.as_str()).collect::<Vec<_>>(),
        "processors": definition.processors,
        "metrics": definition.metrics,
        "args": definition.all_args().map(|spec| json!({
            "name": spec.name, "required": spec.required, "default": spec.default, "description": spec.description,
        })).collect::<Vec<_>>(),
    })
}

pub(super) fn list_datasets(
    format: ListFormat,
    task: Option<&str>,
    metric: Option<&str>,
) -> anyhow::Result<ExitStatus> {
    let task = match task {
        Some(name) => Some(TaskType::from_name(name).ok_or_else(|| {
            let names: Vec<&str> = TaskType::ALL.iter().map(|task| task.as_str()).collect();
            Hinted { message: format!("unknown task `{name}`"), hint: format!("tasks: {}", names.join(", ")) }
        })?),
        None => None,
    };
    if let Some(name) = metric.filter(|name| metrics::find(name).is_none() && *name != "rouge") {
        bail!(Hinted {
            message: format!("unknown metric `{name}`"),
            hint: "`karma-host list metrics` shows the metrics".to_owned()
        });
    }
    let selected: Vec<&catalog::DatasetDefinition> = catalog::DATASETS
        .iter()
        .filter(|definition| task.is_none_or(|task| definition.task_type() == task))
        .filter(|definition| {
            metric.is_none_or(|wanted| {
                definition.metrics.iter().flat_map(|name| metrics::expand(name)).any(|name| name == wanted)
                    || definition.metrics.contains(&wanted)
            })
        })
        .collect();
    let mut stdout = std::io::stdout().lock();
    match format {
        ListFormat::Json => {
            let datasets: Vec<_> = selected.iter().map(|definition| dataset_json(definition)).collect();
            let groups: Vec<_> = catalog::GROUPS
                .iter()
                .map(|(name, description, members)| json!({"name": name, "description": description, "datasets": members}))
                .collect();
            output::json(&mut stdout, &json!({ "datasets": datasets, "groups": groups }))?;
        }
        ListFormat::Table | ListFormat::Csv => {
            let rows: Vec<Vec<String>> = selected
                .iter()
                .map(|definition| {
                    vec![
                        definition.name.to_owned(),
                        definition.aliases.join(","),
                        definition.task_type().as_str().to_owned(),
                        definition.metrics.join(","),
                        definition.split.to_owned(),
                        definition.revision.unwrap_or("main").to_owned(),
                    ]
                })
                .collect();
            let headers = ["DATASET", "ALIASES", "TASK", "METRICS", "SPLIT", "REVISION"];
            if format == ListFormat::Csv {
                output::csv(
                    &mut stdout,
                    &headers.map(str::to_lowercase).each_ref().map(String::as_str),
                    &rows,
                )?;
            } else {
                output::table(&mut stdout, &headers, &rows)?;
                for (name, description, members) in catalog::GROUPS {
                    writeln!(stdout, "\ngroup `{name}`: {description}: {}", members.join(", "))?;
                }
            }
        }
    }
    Ok(ExitStatus::Success)
}

pub(super) fn info_dataset(name: &str, format: TableOrJson) -> anyhow::Result<ExitStatus> {
    let Some(definition) = catalog::find(name) else {
        let suggestions = catalog::suggestions(name);
        bail!(Hinted {
            message: format!("unknown dataset `{name}`"),
            hint: if suggestions.is_empty() {
                "`karma-host list datasets` shows the registered datasets".to_owned()
            } else {
                format!("did you mean: {}?", suggestions.join(", "))
            },
        });
    };
    let mut stdout = std::io::stdout().lock();
    match format {
        TableOrJson::Json => output::json(&mut stdout, &dataset_json(definition))?,
        TableOrJson::Table => {
            writeln!(stdout, "name         {}", definition.name)?;
            writeln!(stdout, "aliases      {}", definition.aliases.join(", "))?;
            writeln!(stdout, "description  {}", definition.description)?;
            writeln!(
                stdout,
                "hub          {}{} split {} at {}",
                definition.repo_id,
                definition.config.map(|c| format!(" ({c})")).unwrap_or_default(),
                definition.split,
                definition.revision.unwrap_or("main")
            )?;
            writeln!(stdout, "task         {}", definition.task_type().as_str())?;
            let modalities: Vec<&str> =
                definition.family.modalities().iter().map(|modality| modality.as_str()).collect();
            writeln!(stdout, "modalities   {} (the model must accept them)", modalities.join(", "))?;
            writeln!(stdout, "metrics      {}", definition.metrics.join(", "))?;
            if !definition.processors.is_empty() {
                writeln!(stdout, "processors   {}", definition.processors.join(", "))?;
            }
            writeln!(
                stdout,
                "extraction   {} v{}",
                definition.family.extraction().id(),
                definition.family.extraction().version()
            )?;
            writeln!(stdout, "arguments")?;
            for spec in definition.all_args() {
                let requirement = if spec.required { "required" } else { "optional" };
                writeln!(
                    stdout,
                    "  {:<26} {requirement}{}: {}",
                    spec.name,
                    spec.default.map(|d| format!(", default {d}")).unwrap_or_default(),
                    spec.description
                )?;
            }
        }
    }
    Ok(ExitStatus::Success)
}

pub(super) fn list_processors(format: TableOrJson) -> anyhow::Result<ExitStatus> {
    let mut stdout = std::io::stdout().lock();
    let args = |spec: &crate::processors::ProcessorSpec| -> Vec<String> {
        spec.args
            .iter()
            .map(|arg| match arg.default {
                Some(default) => format!("{}={default}: {}", arg.name, arg.description),
                None => format!("{}: {}", arg.name, arg.description),
            })
            .collect()
    };
    match format {
        TableOrJson::Json => {
            let list: Vec<_> = crate::processors::PROCESSORS
                .iter()
                .map(|spec| {
                    let arguments: Vec<_> = spec
                        .args
                        .iter()
                        .map(|arg| json!({"name": arg.name, "default": arg.default, "description": arg.description}))
                        .collect();
                    json!({"name": spec.name, "description": spec.description, "args": arguments})
                })
                .collect();
            output::json(&mut stdout, &json!({ "processors": list }))?;
        }
        TableOrJson::Table => {
            let rows: Vec<Vec<String>> = crate::processors::PROCESSORS
                .iter()
                .map(|spec| vec![spec.name.to_owned(), spec.description.to_owned(), args(spec).join("; ")])
                .collect();
            output::table(&mut stdout, &["PROCESSOR", "DESCRIPTION", "ARGUMENTS"], &rows)?;
        }
    }
    Ok(ExitStatus::Success)
}

pub(super) fn list_metrics(format: TableOrJson) -> anyhow::Result<ExitStatus> {
    let mut stdout = std::io::stdout().lock();
    let interval = |metric: &dyn metrics::Metric| if metric.is_proportion() { "wilson" } else { "bootstrap" };
    match format {
        TableOrJson::Json => {
            let list: Vec<_> = metrics::all()
                .iter()
                .map(|metric| json!({"name": metric.name(), "description": metric.description(), "interval": interval(*metric)}))
                .collect();
            output::json(&mut stdout, &json!({ "metrics": list }))?;
        }
        TableOrJson::Table => {
            let rows: Vec<Vec<String>> = metrics::all()
                .iter()
                .map(|metric| {
                    vec![
                        metric.name().to_owned(),
                        interval(*metric).to_owned(),
                        metric.description().to_owned(),
                    ]
                })
                .collect();
            output::table(&mut stdout, &["METRIC", "INTERVAL", "DESCRIPTION"], &rows)?;
        }
    }
    Ok(ExitStatus::Success)
}

pub(super) fn info_metric(name: &str, format: TableOrJson) -> anyhow::Result<ExitStatus> {
    let Some(metric) = metrics::find(name) else {
        let names: Vec<&str> = metrics::all().iter().map(|metric| metric.name()).collect();
        bail!(Hinted {
            message: format!("unknown metric `{name}`"),
            hint: format!("available metrics: {}", names.join(", "))
        });
    };
    let interval = if metric.is_proportion() { "wilson" } else { "bootstrap" };
    let users: Vec<&str> =
        catalog::DATASETS.iter().filter(|d| d.metrics.contains(&metric.name())).map(|d| d.name).collect();
    let mut stdout = std::io::stdout().lock();
    match format {
        TableOrJson::Json => output::json(
            &mut stdout,
            &json!({
                "name": metric.name(), "description": metric.description(), "interval": interval, "datasets": users,
                "args": metric.args().iter().map(|spec| json!({
                    "name": spec.name, "type": spec.kind.to_string(), "default": spec.default, "description": spec.description,
                })).collect::<Vec<_>>(),
            }),
        )?,
        TableOrJson::Table => {
            writeln!(stdout, "name         {}", metric.name())?;
            writeln!(stdout, "description  {}", metric.description())?;
            writeln!(stdout, "interval     95% {interval}")?;
            writeln!(stdout, "datasets     {}", users.join(", "))?;
            if !metric.args().is_empty() {
                writeln!(stdout, "arguments")?;
                for spec in metric.args() {
                    writeln!(
                        stdout,
                        "  {:<12} {} (default {}): {}",
                        spec.name, spec.kind, spec.default, spec.description
                    )?;
                }
            }
        }
    }
    Ok(ExitStatus::Success)
}
