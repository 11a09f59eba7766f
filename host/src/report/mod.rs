//! Results files: `results.json` (manifest + per-dataset metrics), the per-sample JSONL, CSV.
//! Files are written atomically (temporary file + rename) so a crash never leaves half a file.

mod redact;
mod time;
mod yaml;

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use serde_json::{json, Value};

pub use redact::{redact, redact_text};
pub use time::utc_timestamp;
pub use yaml::to_yaml;

use crate::engine::{DatasetOutcome, DatasetStatus};

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename. On
/// failure (a full disk, say) the temporary file is removed and `path` is left as it was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let directory = path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(directory)?;
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "results".to_owned());
    let temporary = directory.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let written = std::fs::File::create(&temporary).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// The JSON entry of one dataset.
pub fn dataset_entry(outcome: &DatasetOutcome) -> Value {
    let mut entry = json!({
        "metrics": outcome.metrics,
        "task_type": outcome.plan.definition.task_type().as_str(),
        "dataset_args": redact(&serde_json::to_value(&outcome.plan.args).unwrap_or_default()),
        "processors": outcome
            .plan
            .processors
            .iter()
            .map(|step| step.describe())
            .collect::<Vec<_>>(),
        "timings": outcome.timings,
        "cache_hits": outcome.cache_hits,
        "cache_misses": outcome.cache_misses,
        "num_items": outcome.num_items,
        "num_failed": outcome.num_failed,
        "num_unparsed": outcome.num_unparsed,
        "num_truncated": outcome.num_truncated,
        "usage": outcome.usage,
        "status": outcome.status,
        "revision": outcome.revision,
    });
    if let Some(judge) = &outcome.judge {
        entry["judge"] = json!(judge);
        entry["num_judge_failed"] = judge.num_judge_failed.into();
    }
    if !outcome.subgroups.is_empty() {
        entry["subgroups"] = json!(outcome.subgroups);
    }
    if outcome.num_bad_rows > 0 {
        entry["num_bad_rows"] = outcome.num_bad_rows.into();
        entry["bad_rows"] = json!(outcome
            .bad_rows
            .iter()
            .map(|bad| json!({"file": bad.file, "row": bad.row, "id": bad.id, "error": bad.error}))
            .collect::<Vec<_>>());
    }
    if outcome.duplicate_ids > 0 {
        entry["duplicate_ids"] =
            json!({"count": outcome.duplicate_ids, "first": outcome.duplicate_id_examples});
    }
    if outcome.ids_from_row_number > 0 {
        entry["ids_from_row_number"] = outcome.ids_from_row_number.into();
    }
    if let Some(error) = &outcome.error {
        entry["error"] = redact_text(error).into();
    }
    entry
}

/// The whole results document.
pub fn results_document(manifest: &Value, outcomes: &[DatasetOutcome], status: &str) -> Value {
    let datasets: serde_json::Map<String, Value> =
        outcomes.iter().map(|outcome| (outcome.name.clone(), dataset_entry(outcome))).collect();
    let mut manifest = manifest.clone();
    manifest["status"] = status.into();
    manifest["dataset_sources"] = outcomes
        .iter()
        .map(|outcome| {
            (
                outcome.name.clone(),
                json!({
                    "repo": (!outcome.plan.definition.repo_id.is_empty()).then_some(outcome.plan.definition.repo_id),
                    "config": outcome.plan.definition.config,
                    "split": (!outcome.plan.definition.split.is_empty()).then_some(outcome.plan.definition.split),
                    "revision": outcome.revision,
                    "content_sha256": outcome.content_sha256,
                    "files": outcome.files.iter().map(|path| path.display().to_string()).collect::<Vec<_>>(),
                }),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
    json!({ "manifest": manifest, "datasets": datasets })
}

/// One CSV row per (dataset, metric).
pub fn results_csv(outcomes: &[DatasetOutcome]) -> String {
    let mut out = String::from(
        "dataset,task_type,metric,score,stderr,ci_low,ci_high,num_samples,num_failed,num_unparsed,status\r\n",
    );
    let cell = |value: Option<f64>| value.map(|value| value.to_string()).unwrap_or_default();
    for outcome in outcomes {
        let status = serde_json::to_value(outcome.status)
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default();
        let quoted = |text: &str| {
            if text.contains([',', '"', '\n']) {
                format!("\"{}\"", text.replace('"', "\"\""))
            } else {
                text.to_owned()
            }
        };
        if outcome.metrics.is_empty() {
            out.push_str(&format!(
                "{},{},,,,,,0,{},{},{status}\r\n",
                quoted(&outcome.name),
                outcome.plan.definition.task_type().as_str(),
                outcome.num_failed,
                outcome.num_unparsed
            ));
        }
        for (name, result) in &outcome.metrics {
            out.push_str(&format!(
                "{},{},{name},{},{},{},{},{},{},{},{status}\r\n",
                quoted(&outcome.name),
                outcome.plan.definition.task_type().as_str(),
                cell(result.score.score),
                cell(result.score.stderr),
                cell(result.score.ci_low),
                cell(result.score.ci_high),
                result.score.num_samples,
                result.num_failed,
                result.num_unparsed
            ));
        }
    }
    out
}

/// Whether any dataset failed or any item failed.
pub fn had_failures(outcomes: &[DatasetOutcome]) -> bool {
    outcomes.iter().any(|outcome| outcome.status == DatasetStatus::Failed || outcome.num_failed > 0)
}

/// Appends sample records as JSON lines, a batch at a time. The file only ever ends in a whole
/// line: a batch that cannot be written in full (a full disk) is cut back off.
pub struct SamplesWriter {
    file: std::fs::File,
    path: PathBuf,
    /// Bytes of whole lines written so far.
    length: u64,
    buffer: Vec<u8>,
}

impl SamplesWriter {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        Ok(SamplesWriter {
            file: std::fs::File::create(path)?,
            path: path.to_owned(),
            length: 0,
            buffer: Vec::new(),
        })
    }

    pub fn write<T: serde::Serialize>(&mut self, samples: &[T]) -> std::io::Result<()> {
        self.buffer.clear();
        for sample in samples {
            serde_json::to_writer(&mut self.buffer, sample)?;
            self.buffer.push(b'\n');
        }
        if let Err(error) = self.file.write_all(&self.buffer) {
            // Cut back to the last whole line (best effort: the disk may refuse even that).
            let _ = self.file.set_len(self.length);
            let _ = std::io::Seek::seek(&mut self.file, std::io::SeekFrom::Start(self.length));
            return Err(std::io::Error::new(
                error.kind(),
                format!("cannot write samples to `{}`: {error}", self.path.display()),
            ));
        }
        self.length += self.buffer.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_atomic_write_leaves_no_temporary_file_and_the_target_as_it_was() {
        let directory = tempfile::tempdir().unwrap();
        // Renaming a file over a non-empty directory fails after the temporary file is written.
        let target = directory.path().join("results.json");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("keep"), "x").unwrap();
        assert!(write_atomic(&target, b"{}").is_err());
        let names: Vec<_> =
            std::fs::read_dir(directory.path()).unwrap().map(|entry| entry.unwrap().file_name()).collect();
        assert_eq!(names, ["results.json"]);
        assert!(target.join("keep").exists());
    }
}
