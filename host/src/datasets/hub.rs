//! Hub datasets: the split's data files, found in the local HF cache or downloaded into it at a
//! pinned revision, through the shared `karma-hub` client (timeouts, HF cache layout).

use std::path::Path;

pub use karma_hub::{cache_dir, offline_from_env, HubError, Snapshot};
use karma_hub::{RepoKind, RepoRef, Select};

/// What to fetch.
#[derive(Debug, Clone)]
pub struct DatasetRequest<'a> {
    pub repo: &'a str,
    pub config: Option<&'a str>,
    pub split: &'a str,
    /// A commit (or prefix) or branch; `main` when unpinned.
    pub revision: &'a str,
}

impl DatasetRequest<'_> {
    fn repo_ref(&self) -> RepoRef<'_> {
        RepoRef { kind: RepoKind::Dataset, repo: self.repo, revision: self.revision }
    }
}

impl Select for DatasetRequest<'_> {
    fn select(&self, listing: &[String]) -> Vec<String> {
        split_files(listing, self.config, self.split)
    }

    fn describe(&self) -> String {
        let config = self.config.map(|config| format!(" of config `{config}`")).unwrap_or_default();
        format!("data files (.jsonl/.json/.csv/.parquet) for split `{}`{config}", self.split)
    }
}

/// Chooses the files of one split from a repository listing: under the config's folder when
/// there is a config, and with the split's name in the file name or folder.
fn split_files(all: &[String], config: Option<&str>, split: &str) -> Vec<String> {
    let data: Vec<&String> = all
        .iter()
        .filter(|file| {
            ["jsonl", "json", "csv", "parquet"]
                .iter()
                .any(|extension| file.ends_with(&format!(".{extension}")))
        })
        .filter(|file| {
            config.is_none_or(|config| {
                file.starts_with(&format!("{config}/")) || file.contains(&format!("/{config}/"))
            })
        })
        .collect();
    let mut chosen: Vec<String> = data
        .iter()
        .filter(|file| {
            file.split('/').any(|part| {
                part == split
                    || part.starts_with(&format!("{split}-"))
                    || part.starts_with(&format!("{split}."))
                    || part.starts_with(&format!("{split}_"))
            })
        })
        .map(|file| (*file).clone())
        .collect();
    chosen.sort();
    chosen
}

/// Looks for an already downloaded snapshot of the revision.
pub fn find_cached(cache: &Path, request: &DatasetRequest<'_>) -> Option<Snapshot> {
    karma_hub::find_cached(cache, &request.repo_ref(), request)
}

/// Finds the split's files in the cache, downloading them first unless `offline`.
pub fn fetch(request: &DatasetRequest<'_>, offline: bool) -> Result<Snapshot, HubError> {
    karma_hub::fetch(&request.repo_ref(), request, offline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_files_follow_hub_conventions() {
        let listing: Vec<String> = [
            "README.md",
            "data/test-00000-of-00001.parquet",
            "data/train-00000-of-00002.parquet",
            "Text/test.jsonl",
            "Text/dev.jsonl",
            "MM/test.jsonl",
            "validation/part.json",
        ]
        .iter()
        .map(|file| (*file).to_owned())
        .collect();
        assert_eq!(
            split_files(&listing, None, "test"),
            ["MM/test.jsonl", "Text/test.jsonl", "data/test-00000-of-00001.parquet"]
        );
        assert_eq!(split_files(&listing, Some("Text"), "test"), ["Text/test.jsonl"]);
        assert_eq!(split_files(&listing, None, "validation"), ["validation/part.json"]);
    }
}
