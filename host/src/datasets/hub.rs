//! Hugging Face hub datasets: found in the local HF cache (hub snapshot layout) or downloaded
//! into it, at a pinned revision.
//!
//! hf-hub 0.4 ignores `HF_HUB_CACHE`/`HF_HUB_OFFLINE`, misses snapshots pinned by commit and sets
//! no network timeouts (a stalled server hangs it forever), so the small part of the protocol we
//! need is implemented here: `GET /api/datasets/{repo}/revision/{rev}` for the commit and file
//! list, `GET /datasets/{repo}/resolve/{commit}/{file}` for the bytes, both with timeouts.

use std::{
    io::Read,
    path::{Path, PathBuf},
    time::Duration,
};

use crate::env_vars;

/// Why a hub dataset could not be made available.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("dataset `{repo}` (revision {revision}) is not in the local Hugging Face cache at `{}` and --offline forbids downloading", cache.display())]
    NotCached { repo: String, revision: String, cache: PathBuf },
    #[error("cannot reach the hub at {endpoint} for `{repo}`: {message}")]
    Network { endpoint: String, repo: String, message: String },
    #[error("the hub answered {status} for {url}")]
    Status { status: u16, url: String },
    #[error("the hub's answer for `{repo}` is malformed: {message}")]
    Malformed { repo: String, message: String },
    #[error("`{repo}` has no data files for split `{split}`{} (files: {files})", config.as_ref().map(|c| format!(" of config `{c}`")).unwrap_or_default())]
    NoSplitFiles { repo: String, config: Option<String>, split: String, files: String },
    #[error("cannot write the Hugging Face cache at `{}`: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// Where a dataset's files were found.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The commit the files belong to.
    pub commit: String,
    pub files: Vec<PathBuf>,
}

/// What to fetch.
#[derive(Debug, Clone)]
pub struct DatasetRequest<'a> {
    pub repo: &'a str,
    pub config: Option<&'a str>,
    pub split: &'a str,
    /// A commit (or prefix) or branch; `main` when unpinned.
    pub revision: &'a str,
}

/// `HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`.
pub fn cache_dir() -> PathBuf {
    if let Some(path) = std::env::var_os(env_vars::HF_HUB_CACHE) {
        return PathBuf::from(path);
    }
    if let Some(home) = std::env::var_os(env_vars::HF_HOME) {
        return PathBuf::from(home).join("hub");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache/huggingface/hub")
}

/// Whether `HF_HUB_OFFLINE` asks for no network.
pub fn offline_from_env() -> bool {
    std::env::var(env_vars::HF_HUB_OFFLINE)
        .is_ok_and(|value| matches!(value.trim(), "1" | "true" | "TRUE" | "yes" | "ON" | "on"))
}

fn repo_dir(cache: &Path, repo: &str) -> PathBuf {
    cache.join(format!("datasets--{}", repo.replace('/', "--")))
}

/// The files of one split, chosen from a repository listing: under the config's folder when
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
    let repo = repo_dir(cache, request.repo);
    let commit = std::fs::read_to_string(repo.join("refs").join(request.revision))
        .ok()
        .map(|text| text.trim().to_owned())
        .or_else(|| {
            // A pinned commit (or prefix) names the snapshot folder directly.
            std::fs::read_dir(repo.join("snapshots")).ok()?.filter_map(Result::ok).find_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                name.starts_with(request.revision).then_some(name)
            })
        })?;
    let snapshot = repo.join("snapshots").join(&commit);
    let mut listing = Vec::new();
    let mut pending = vec![snapshot.clone()];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory).ok()?.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(relative) = path.strip_prefix(&snapshot) {
                listing.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    let files = split_files(&listing, request.config, request.split);
    (!files.is_empty())
        .then(|| Snapshot { commit, files: files.iter().map(|file| snapshot.join(file)).collect() })
}

/// Finds the split's files in the cache, downloading them first unless `offline`.
pub fn fetch(request: &DatasetRequest<'_>, offline: bool) -> Result<Snapshot, HubError> {
    let cache = cache_dir();
    if let Some(snapshot) = find_cached(&cache, request) {
        return Ok(snapshot);
    }
    if offline {
        return Err(HubError::NotCached {
            repo: request.repo.to_owned(),
            revision: request.revision.to_owned(),
            cache,
        });
    }
    download(&cache, request)
}

fn endpoint() -> String {
    std::env::var(env_vars::HF_ENDPOINT)
        .unwrap_or_else(|_| "https://huggingface.co".to_owned())
        .trim_end_matches('/')
        .to_owned()
}

fn agent() -> ureq::Agent {
    // A stalled server must not hang an evaluation: every phase has a deadline.
    let seconds = std::env::var(env_vars::KARMA_HUB_TIMEOUT_SECS)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(30u64);
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(seconds.min(10))))
        .timeout_recv_response(Some(Duration::from_secs(seconds)))
        .timeout_recv_body(Some(Duration::from_secs(seconds * 10)))
        .build()
        .into()
}

fn get(agent: &ureq::Agent, url: &str, repo: &str) -> Result<ureq::http::Response<ureq::Body>, HubError> {
    let mut request = agent.get(url);
    if let Ok(token) = std::env::var(env_vars::HF_TOKEN) {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    request.call().map_err(|error| match error {
        ureq::Error::StatusCode(status) => HubError::Status { status, url: url.to_owned() },
        other => {
            HubError::Network { endpoint: endpoint(), repo: repo.to_owned(), message: other.to_string() }
        }
    })
}

fn download(cache: &Path, request: &DatasetRequest<'_>) -> Result<Snapshot, HubError> {
    let agent = agent();
    let base = endpoint();
    let info_url = format!("{base}/api/datasets/{}/revision/{}", request.repo, request.revision);
    let malformed = |message: String| HubError::Malformed { repo: request.repo.to_owned(), message };
    let text = get(&agent, &info_url, request.repo)?
        .body_mut()
        .read_to_string()
        .map_err(|error| malformed(error.to_string()))?;
    let info: serde_json::Value =
        serde_json::from_str(&text).map_err(|error| malformed(error.to_string()))?;
    let commit = info["sha"].as_str().ok_or_else(|| malformed("no `sha`".to_owned()))?.to_owned();
    let listing: Vec<String> = info["siblings"]
        .as_array()
        .ok_or_else(|| malformed("no `siblings`".to_owned()))?
        .iter()
        .filter_map(|sibling| sibling["rfilename"].as_str().map(str::to_owned))
        .collect();
    let files = split_files(&listing, request.config, request.split);
    if files.is_empty() {
        return Err(HubError::NoSplitFiles {
            repo: request.repo.to_owned(),
            config: request.config.map(str::to_owned),
            split: request.split.to_owned(),
            files: listing.join(", "),
        });
    }
    let repo = repo_dir(cache, request.repo);
    let snapshot = repo.join("snapshots").join(&commit);
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| HubError::Io { path, source }
    };
    let mut paths = Vec::with_capacity(files.len());
    for file in &files {
        let target = snapshot.join(file);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let url = format!("{base}/datasets/{}/resolve/{commit}/{file}", request.repo);
        let mut response = get(&agent, &url, request.repo)?;
        // Written under a temporary name and renamed, so an interrupted download never leaves a
        // truncated file that a later run would trust.
        let partial = target.with_extension("partial");
        let mut output = std::fs::File::create(&partial).map_err(io(&partial))?;
        let mut body = response.body_mut().with_config().limit(u64::MAX).reader();
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            let read = body.read(&mut buffer).map_err(|error| HubError::Network {
                endpoint: base.clone(),
                repo: request.repo.to_owned(),
                message: error.to_string(),
            })?;
            if read == 0 {
                break;
            }
            std::io::Write::write_all(&mut output, &buffer[..read]).map_err(io(&partial))?;
        }
        output.sync_all().map_err(io(&partial))?;
        std::fs::rename(&partial, &target).map_err(io(&target))?;
        paths.push(target);
    }
    let refs = repo.join("refs");
    std::fs::create_dir_all(&refs).map_err(io(&refs))?;
    std::fs::write(refs.join(request.revision), &commit).map_err(io(&refs))?;
    Ok(Snapshot { commit, files: paths })
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
