//! `--judge NAME --judge-args JSON`: the judge model of datasets whose answers a grader grades
//! (HealthBench), resolved and validated before anything loads, with its own plugin instance.

use anyhow::bail;
use serde_json::Value;

use super::{args::EvalArgs, diagnostics::Hinted, find_model};
use crate::{
    engine::{grading::JudgePlan, DatasetPlan},
    plugins::{self, Backend, Registry},
};

/// The judge's plan and backend, when a dataset needs one.
pub(super) type ResolvedJudge<'a> = Option<(JudgePlan<'a>, Box<dyn Backend>)>;

pub(super) fn resolve<'a>(
    registry: &'a Registry,
    arguments: &EvalArgs,
    datasets: &[DatasetPlan],
) -> anyhow::Result<ResolvedJudge<'a>> {
    let graded: Vec<&str> = datasets
        .iter()
        .filter(|dataset| dataset.needs_judge())
        .map(|dataset| dataset.name.as_str())
        .collect();
    let Some(name) = arguments.judge.as_deref() else {
        if let Some(first) = graded.first() {
            bail!(Hinted {
                message: format!("dataset `{first}` is graded by a judge model, and no --judge is given"),
                hint: "add --judge NAME: any registered model (`karma-host list models`), e.g. --judge gpt-4.1, \
                       which simple-evals grades HealthBench with"
                    .to_owned(),
            });
        }
        if arguments.judge_args.is_some() {
            bail!(Hinted {
                message: "--judge-args is given without --judge".to_owned(),
                hint: "name the judge model with --judge NAME".to_owned(),
            });
        }
        return Ok(None);
    };
    if graded.is_empty() {
        tracing::warn!("--judge `{name}` is not used: none of the datasets is graded by a judge");
        return Ok(None);
    }
    let model = find_model(registry, name)?;
    let mut config = model.meta.loader_kwargs.clone();
    if let Some(text) = arguments.judge_args.as_deref() {
        let hint = || "pass a JSON object, e.g. --judge-args '{\"temperature\": 0}'".to_owned();
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(layer)) => config.extend(layer),
            Ok(other) => bail!(Hinted {
                message: format!("--judge-args must be a JSON object, not {other}"),
                hint: hint()
            }),
            Err(error) => {
                bail!(Hinted { message: format!("--judge-args is not valid JSON: {error}"), hint: hint() })
            }
        }
    }
    let config = Value::Object(config);
    let isolation = super::isolation_config::resolve(model, arguments.isolation, arguments.batch_timeout)?;
    // The plugin checks the judge's configuration now, as it does the candidate's.
    let backend =
        plugins::open_backend(model, &config.to_string(), isolation.isolation, isolation.batch_timeout)?;
    let plan = JudgePlan {
        model,
        config,
        plugin_id: model
            .plugin_path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        plugin_version: model.meta.version.clone().unwrap_or_default(),
        batch_size: super::eval::batch_size(None, &model.meta),
    };
    Ok(Some((plan, backend)))
}
