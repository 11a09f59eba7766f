//! `eval --dry-run`: the plan, sample counts, bad rows, expected cache hits and the first prompt,
//! read as the run would read them, without loading the model.

use std::io::Write;

use super::ExitStatus;
use crate::{
    cache::{item_key, Cache},
    datasets::{hub, source},
    engine::{self, CacheMode, DatasetSource, EvalPlan},
    report,
};

/// `--dry-run`: everything validated, the plan printed, nothing loaded or called.
pub(super) fn dry_run(plan: &EvalPlan<'_>) -> anyhow::Result<ExitStatus> {
    let cache = match plan.cache {
        CacheMode::Normal if plan.cache_path.exists() => Some(Cache::open(&plan.cache_path)?),
        _ => None,
    };
    let key_context = plan.key_context();
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "model:     {} ({})", plan.model.meta.name, plan.model.plugin_path.display())?;
    writeln!(stdout, "config:    {}", report::redact(&plan.config))?;
    if let Some(judge) = &plan.judge {
        writeln!(
            stdout,
            "judge:     {} ({}), config {}",
            judge.model.meta.name,
            judge.model.plugin_path.display(),
            report::redact(&judge.config)
        )?;
    }
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
    // Problems stop a dataset (exit 2); warnings are bad rows the run would record (exit 1).
    let (mut problems, mut warnings) = (0, 0);
    for dataset in &plan.datasets {
        writeln!(stdout, "\ndataset:   {} ({})", dataset.name, dataset.definition.task_type().as_str())?;
        let files = match &dataset.source {
            DatasetSource::Local { files } => {
                let revision = source::content_hash(files)?;
                writeln!(stdout, "source:    {} file(s), revision local:{revision}", files.len())?;
                Some(files.clone())
            }
            DatasetSource::Hub { repo, config, split, revision } => {
                let request = engine::plan::hub_request(repo, config.as_deref(), split, revision);
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
        let mut first_media = None;
        let (mut bad_rows, mut first_bad) = (0u64, None);
        let mut judge_calls = 0u64;
        let mut keys = Vec::new();
        let limit = plan.max_samples.unwrap_or(u64::MAX);
        let mut items = engine::ItemReader::new(dataset, plan.scoring, files, limit, plan.strict);
        let mut read = Vec::with_capacity(1);
        loop {
            match items.next(&mut read) {
                Ok(None) => break,
                Ok(Some(engine::Read::Item)) => {
                    let Some(pending) = read.pop() else { continue };
                    if let crate::datasets::task::Reference::Rubric(rubric) = &pending.key.reference {
                        judge_calls += engine::grading::calls_for(rubric);
                    }
                    if cache.is_some() {
                        keys.push(item_key(
                            &key_context,
                            &pending.item,
                            plan.model.meta.wants_expected_output,
                        ));
                    }
                    if first_prompt.is_none() {
                        first_media = media_summary(&pending.item);
                    }
                    first_prompt.get_or_insert(pending.item.input.unwrap_or_default());
                    count += 1;
                }
                Ok(Some(engine::Read::BadRow { error, .. })) => {
                    bad_rows += 1;
                    first_bad.get_or_insert(error.to_string());
                }
                Err(problem) => {
                    writeln!(stdout, "error:     dataset `{}`: {problem}", dataset.name)?;
                    problems += 1;
                    break;
                }
            }
        }
        if let Some(first) = first_bad {
            writeln!(stdout, "bad rows:  {bad_rows} (recorded as failures; first: {first})")?;
            warnings += 1;
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
        writeln!(stdout, "calls:     {} to the model", count - hits)?;
        if dataset.needs_judge() {
            // The answers are not known yet, so neither is which judge prompts are cached.
            writeln!(
                stdout,
                "judge:     up to {judge_calls} calls (one per answer and rubric criterion; cached verdicts are reused)"
            )?;
        }
        if let Some(media) = first_media {
            writeln!(stdout, "media:     {media} (first item)")?;
        }
        if let Some(prompt) = first_prompt.filter(|prompt| !prompt.is_empty()) {
            writeln!(
                stdout,
                "prompt:\n{}",
                prompt.lines().map(|line| format!("    {line}")).collect::<Vec<_>>().join("\n")
            )?;
        }
    }
    Ok(if problems > 0 {
        ExitStatus::Error
    } else if warnings > 0 {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// `2 images (png 1204 B, jpeg 699 B), audio (flac 4827 B)`, or `None` for a text-only item.
fn media_summary(item: &crate::datasets::item::OwnedItem) -> Option<String> {
    let blob = |media: &crate::datasets::item::MediaBlob| format!("{} {} B", media.format, media.data.len());
    let mut parts = Vec::new();
    if !item.images.is_empty() {
        let each: Vec<String> = item.images.iter().map(blob).collect();
        let noun = if item.images.len() == 1 { "image" } else { "images" };
        parts.push(format!("{} {noun} ({})", item.images.len(), each.join(", ")));
    }
    for (name, media) in [("audio", &item.audio), ("video", &item.video)] {
        if let Some(media) = media {
            parts.push(format!("{name} ({})", blob(media)));
        }
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}
