//! `karma-host run`: one batch through a model's real vtable, outputs as JSON lines.
//!
//! The smallest end-to-end path (scan → create → load → run → pair by id) until `eval` exists,
//! and a quick way for plugin authors to try a model.

use std::{
    collections::HashSet,
    io::{BufRead, Write},
    path::{Path, PathBuf},
};

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::json;

use super::{args::RunArgs, find_model, ExitStatus};
use crate::{
    datasets::item::{ConversationTurn, Criterion, MediaBlob, OwnedItem},
    plugins::{self, Registry},
};

pub(super) fn run(registry: &Registry, arguments: &RunArgs) -> anyhow::Result<ExitStatus> {
    let model = find_model(registry, &arguments.model)?;
    let config = super::model_config::merge(
        &model.meta.loader_kwargs,
        None,
        arguments.model_args.as_deref(),
        arguments.model_path.as_deref(),
    )?;
    let items = match &arguments.items {
        Some(path) => read_items(path)?,
        None => arguments
            .input
            .iter()
            .zip(0u64..)
            .map(|(text, id)| OwnedItem { id, input: Some(text.clone()), ..OwnedItem::default() })
            .collect(),
    };
    let isolation = super::isolation_config::resolve(model, arguments.isolation, arguments.batch_timeout)?;
    let mut backend =
        plugins::open_backend(model, &config.to_string(), isolation.isolation, isolation.batch_timeout)?;
    backend.load()?;
    let refs: Vec<&OwnedItem> = items.iter().collect();
    let outputs = backend.generate(&refs, model.meta.wants_expected_output)?;

    let mut stdout = std::io::stdout().lock();
    let mut failed = 0usize;
    for (item, output) in items.iter().zip(&outputs) {
        let line = match output {
            Ok(completion) => json!({
                "id": item.id,
                "prompt_tokens": completion.prompt_tokens,
                "completion_tokens": completion.completion_tokens,
                "latency_us": completion.latency_us,
                "details": completion.details.as_deref().and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok()),
                "output": completion.text,
            }),
            Err(failure) => {
                failed += 1;
                // The same keys as an answer's line (the stable format), with nothing measured.
                json!({
                    "id": item.id,
                    "prompt_tokens": null,
                    "completion_tokens": null,
                    "latency_us": null,
                    "details": null,
                    "error": {"code": failure.code, "message": failure.message},
                })
            }
        };
        writeln!(stdout, "{line}")?;
    }
    if failed > 0 {
        tracing::warn!("{failed} of {} items failed", outputs.len());
        return Ok(ExitStatus::Failure);
    }
    Ok(ExitStatus::Success)
}

/// One line of an items file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemLine {
    id: Option<u64>,
    input: Option<String>,
    system_prompt: Option<String>,
    #[serde(default)]
    conversation: Vec<TurnLine>,
    options: Option<serde_json::Value>,
    other_args: Option<serde_json::Map<String, serde_json::Value>>,
    expected_output: Option<String>,
    #[serde(default)]
    images: Vec<PathBuf>,
    audio: Option<PathBuf>,
    #[serde(default)]
    rubric: Vec<CriterionLine>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TurnLine {
    role: String,
    content: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CriterionLine {
    criterion: String,
    points: f64,
    #[serde(default)]
    tags: Vec<String>,
}

fn read_items(path: &Path) -> anyhow::Result<Vec<OwnedItem>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open items file `{}`", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut items = Vec::new();
    let mut ids = HashSet::new();
    for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let number = index + 1;
        let line = line.with_context(|| format!("cannot read `{}` line {number}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: ItemLine = serde_json::from_str(&line)
            .with_context(|| format!("`{}` line {number} is not a valid item", path.display()))?;
        let id = parsed.id.unwrap_or(index as u64);
        if !ids.insert(id) {
            bail!("`{}` line {number}: duplicate item id {id}", path.display());
        }
        let mut other_args = parsed.other_args.unwrap_or_default();
        if let Some(options) = parsed.options {
            other_args.insert("options".to_owned(), options);
        }
        let read_media = |media: &Path| -> anyhow::Result<MediaBlob> {
            let full = base.join(media);
            let data = std::fs::read(&full).with_context(|| {
                format!("`{}` line {number}: cannot read `{}`", path.display(), full.display())
            })?;
            let format = media
                .extension()
                .map(|extension| extension.to_string_lossy().to_lowercase())
                .unwrap_or_default();
            Ok(MediaBlob { data, format })
        };
        items.push(OwnedItem {
            id,
            input: parsed.input,
            system_prompt: parsed.system_prompt,
            conversation: parsed
                .conversation
                .into_iter()
                .map(|turn| ConversationTurn { role: turn.role, content: turn.content })
                .collect(),
            images: parsed.images.iter().map(|image| read_media(image)).collect::<anyhow::Result<_>>()?,
            audio: parsed.audio.as_deref().map(read_media).transpose()?.map(Box::new),
            video: None,
            expected_output: parsed.expected_output,
            rubric: parsed
                .rubric
                .into_iter()
                .map(|criterion| Criterion {
                    criterion: criterion.criterion,
                    points: criterion.points,
                    tags: criterion.tags,
                })
                .collect(),
            other_args: serde_json::Value::Object(other_args).to_string(),
        });
    }
    if items.is_empty() {
        bail!("items file `{}` contains no items", path.display());
    }
    Ok(items)
}
