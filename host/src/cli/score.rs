//! `karma-host score FILE --metrics a,b`: scores predictions someone already has, with the same
//! metrics, intervals and results schema as `eval`, and no model.

use std::{collections::BTreeMap, io::Write, time::SystemTime};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use super::{
    args::{ScoreArgs, TableOrJson},
    diagnostics::Hinted,
    output, ExitStatus,
};
use crate::{
    datasets::{record, row::RowValue, source},
    metrics::{self, Sample},
    report,
};

/// One row's prediction and references.
struct Scored {
    prediction: Option<String>,
    references: Vec<String>,
    group: Option<String>,
    other_args: Value,
}

pub(super) fn score(arguments: &ScoreArgs) -> anyhow::Result<ExitStatus> {
    let started_at = SystemTime::now();
    let names: Vec<&str> =
        super::eval_plan::parse_metrics(&arguments.metrics)?.iter().map(|metric| metric.name()).collect();
    let chosen = super::eval_plan::configured_metrics(
        &names,
        &super::eval_plan::metric_args(arguments.metric_args.as_deref())?,
    )?;
    if let Some(metric) = chosen.iter().find(|metric| metric.needs_grades()) {
        anyhow::bail!(Hinted {
            message: format!(
                "{} needs a judge's grades, which a predictions file does not carry",
                metric.name()
            ),
            hint:
                "evaluate the rubric dataset with `karma-host eval --judge NAME` (cached verdicts are reused)"
                    .to_owned(),
        });
    }
    let files = source::data_files(&arguments.file).map_err(|error| Hinted {
        message: error.to_string(),
        hint: "pass a .jsonl/.json/.csv/.parquet file of predictions".to_owned(),
    })?;
    if let Some(output) = &arguments.output {
        let outputs = [super::output_guard::Output { flag: "--output", path: output }];
        let inputs: Vec<_> =
            files.iter().map(|file| super::output_guard::Input::new("the predictions file", file)).collect();
        super::output_guard::check_distinct(&outputs, &inputs)?;
        super::output_guard::check_writable("--output", output)?;
    }
    let processor_args = super::processor_plan::parse_args(arguments.processor_args.as_deref())?;
    let processor_names = match arguments.processors.as_deref() {
        Some(list) => super::processor_plan::parse_list(list)?,
        None => Vec::new(),
    };
    let steps = super::processor_plan::steps(&processor_names, &[], &processor_args, None)?;
    super::processor_plan::check_all_used(&processor_args, &[(Vec::new(), processor_names)])?;
    let (mut rows, bad_rows) = read(&files, arguments.strict)?;
    // Predictions and references through the processors, in order, before any metric.
    for row in &mut rows {
        let run = |text: &str| steps.iter().fold(text.to_owned(), |text, step| step.processor.process(&text));
        row.prediction = row.prediction.as_deref().map(run);
        row.references = row.references.iter().map(|text| run(text)).collect();
    }
    if rows.is_empty() && bad_rows.is_empty() {
        bail!(Hinted {
            message: format!("`{}` has no rows", arguments.file.display()),
            hint: "expected rows with `prediction` and `reference` (or `references`)".to_owned(),
        });
    }
    let mut groups: Vec<String> = rows.iter().filter_map(|row| row.group.clone()).collect();
    groups.sort();
    groups.dedup();
    let mut scores = serde_json::Map::new();
    let mut subgroups: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
    let unparsed = rows.iter().filter(|row| row.prediction.is_none()).count();
    for metric in &chosen {
        let samples: Vec<Sample<'_>> = rows.iter().map(sample).collect();
        let mut entry = serde_json::to_value(metrics::score(metric.as_ref(), &samples, arguments.seed))?;
        entry["num_failed"] = bad_rows.len().into();
        entry["num_unparsed"] = unparsed.into();
        let strata = metric.strata();
        let mut breakdown = BTreeMap::new();
        if !metric.parts().is_empty() {
            let stats: Vec<Vec<f64>> = samples.iter().map(|sample| metric.sample_stats(sample)).collect();
            let views: Vec<&[f64]> = stats.iter().map(Vec::as_slice).collect();
            breakdown = metrics::score_with_parts(metric.as_ref(), &views, arguments.seed).1;
        } else if strata.is_empty() {
            for group in &groups {
                let members: Vec<Sample<'_>> =
                    rows.iter().filter(|row| row.group.as_ref() == Some(group)).map(sample).collect();
                let score = metrics::score(metric.as_ref(), &members, arguments.seed);
                subgroups.entry(group.clone()).or_default().insert(metric.name().to_owned(), json!(score));
                breakdown.insert(group.clone(), score);
            }
        } else {
            // A stratified metric's groups come from each row's `other_args`.
            let keys: Vec<Vec<String>> =
                rows.iter().map(|row| metrics::stratified::strata_keys(&strata, &row.other_args)).collect();
            let mut names: Vec<&String> = keys.iter().flatten().collect();
            names.sort();
            names.dedup();
            for name in names {
                let members: Vec<Sample<'_>> = rows
                    .iter()
                    .zip(&keys)
                    .filter(|(_, keys)| keys.contains(name))
                    .map(|(row, _)| sample(row))
                    .collect();
                breakdown.insert(name.clone(), metrics::score(metric.as_ref(), &members, arguments.seed));
            }
            let disparity = metrics::stratified::disparity(&strata, &breakdown);
            if !disparity.is_empty() {
                entry["disparity"] = json!(disparity);
            }
        }
        if !breakdown.is_empty() {
            entry["breakdown"] = json!(breakdown);
        }
        scores.insert(metric.name().to_owned(), entry);
    }
    let status = if bad_rows.is_empty() { "completed" } else { "completed_with_failures" };
    let name = arguments.file.display().to_string();
    let mut entry = json!({
        "metrics": scores,
        "task_type": "scored",
        "num_items": rows.len() + bad_rows.len(),
        "num_failed": bad_rows.len(),
        "num_unparsed": unparsed,
        "status": status,
        "processors": steps.iter().map(|step| step.describe()).collect::<Vec<_>>(),
    });
    if !subgroups.is_empty() {
        entry["subgroups"] = json!(subgroups);
    }
    if !bad_rows.is_empty() {
        entry["num_bad_rows"] = bad_rows.len().into();
        entry["bad_rows"] = json!(bad_rows.iter().take(20).collect::<Vec<_>>());
    }
    let document = json!({
        "manifest": {
            "host_version": env!("CARGO_PKG_VERSION"),
            "command": "score",
            "seed": arguments.seed,
            "bootstrap_resamples": metrics::interval::RESAMPLES,
            "started_at": report::utc_timestamp(started_at),
            "finished_at": report::utc_timestamp(SystemTime::now()),
            "status": status,
            "dataset_sources": {
                &name: {
                    "revision": format!("local:{}", source::content_hash(&files)?),
                    "files": files.iter().map(|path| path.display().to_string()).collect::<Vec<_>>(),
                },
            },
        },
        "datasets": { &name: entry },
    });
    if let Some(output) = &arguments.output {
        let mut text = serde_json::to_string_pretty(&document)?;
        text.push('\n');
        report::write_atomic(output, text.as_bytes())
            .with_context(|| format!("cannot write results to `{}`", output.display()))?;
    }
    let mut stdout = std::io::stdout().lock();
    match arguments.format {
        TableOrJson::Json => output::json(&mut stdout, &document)?,
        TableOrJson::Table => {
            let rows: Vec<Vec<String>> = document["datasets"][&name]["metrics"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(metric, result)| {
                    let number = |key: &str| {
                        result[key]
                            .as_f64()
                            .map(|value| format!("{value:.4}"))
                            .unwrap_or_else(|| "-".to_owned())
                    };
                    vec![
                        metric.clone(),
                        number("score"),
                        format!("[{}, {}]", number("ci_low"), number("ci_high")),
                        result["num_samples"].to_string(),
                        bad_rows.len().to_string(),
                    ]
                })
                .collect();
            output::table(&mut stdout, &["METRIC", "SCORE", "95% CI", "N", "FAILED"], &rows)?;
        }
    }
    stdout.flush()?;
    if !bad_rows.is_empty() {
        tracing::warn!("{} row(s) could not be scored; see `bad_rows` in the results", bad_rows.len());
        return Ok(ExitStatus::Failure);
    }
    Ok(ExitStatus::Success)
}

fn sample(row: &Scored) -> Sample<'_> {
    Sample {
        prediction: row.prediction.as_deref(),
        reference: row.references.first().map(String::as_str).unwrap_or_default(),
        references: &row.references,
        other_args: &row.other_args,
        graded: None,
    }
}

/// The scorable rows, and the bad ones as `{file, row, id, error}` (or the first error, with
/// `strict`).
fn read(files: &[std::path::PathBuf], strict: bool) -> anyhow::Result<(Vec<Scored>, Vec<Value>)> {
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    let mut reader = source::RowReader::new(files.to_vec());
    while let Some(row) = reader.next_row() {
        let problem = match row {
            Ok(row) => match scored(&row.value) {
                Ok(scored) => {
                    rows.push(scored);
                    continue;
                }
                Err(problem) => source::SourceError::bad_field(&row, &problem),
            },
            Err(error) => error,
        };
        if strict || !problem.is_bad_row() {
            return Err(problem.into());
        }
        let (file, number, message) = match &problem {
            source::SourceError::Row { path, row, message } => {
                (path.display().to_string(), *row, message.clone())
            }
            other => (String::new(), 0, other.to_string()),
        };
        bad.push(json!({"file": file, "row": number, "error": {"code": "bad_row", "message": message}}));
    }
    Ok((rows, bad))
}

fn scored(row: &RowValue<'_>) -> Result<Scored, record::RowError> {
    let problem = |field: &str, problem: &str| record::RowError {
        field: field.to_owned(),
        problem: problem.to_owned(),
    };
    if !row.is_object() {
        return Err(problem("<row>", "expected a JSON object"));
    }
    let prediction = match row.get("prediction") {
        None => return Err(problem("prediction", "missing (null marks an unparsed answer)")),
        Some(RowValue::Null) => None,
        Some(value) => {
            Some(record::text(value).ok_or_else(|| problem("prediction", "expected text"))?.into_owned())
        }
    };
    let references = if row.get("references").is_some() {
        crate::datasets::task::texts(row, "references")?
    } else if row.get("reference").is_some() {
        crate::datasets::task::texts(row, "reference")?
    } else {
        return Err(problem("reference", "missing (give `reference` or `references`)"));
    };
    let other_args = match row.get("other_args") {
        None | Some(RowValue::Null) => Value::Null,
        Some(value @ RowValue::Object(_)) => serde_json::to_value(value).unwrap_or_default(),
        Some(RowValue::Text(text)) => {
            serde_json::from_str(text).map_err(|_| problem("other_args", "expected a JSON object"))?
        }
        Some(_) => return Err(problem("other_args", "expected a JSON object")),
    };
    Ok(Scored {
        prediction,
        references,
        group: record::optional_text(row, "group").map(|g| g.into_owned()),
        other_args,
    })
}
