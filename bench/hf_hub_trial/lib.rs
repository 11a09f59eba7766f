//! Trial (issue 16): karma-hub's public API over hf-hub 1.0, so the host and the plugins build
//! and test unchanged against it. `bench/hf_hub_trial.sh` swaps it in; see `hub/README.md` for
//! what it measured.
//!
//! What a real adoption would use of hf-hub: the repository info call (commit + file list),
//! `download_file` per selected file (HEAD for ETag/commit/Xet, then GET or Xet CAS, blobs/ +
//! snapshot symlinks, retries), token resolution (`HF_TOKEN`, `HF_TOKEN_PATH`, `$HF_HOME/token`)
//! and cache-directory resolution. Kept from our client: the cache lookup (hf-hub's
//! `local_files_only` resolves a 40-hex commit or a ref, not the commit prefixes the dataset
//! registry pins), the timeouts (set on the caller-built client), the error wording.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use hf_hub::{HFClient, HFError};

pub const HF_HOME: &str = "HF_HOME";
pub const HF_HUB_CACHE: &str = "HF_HUB_CACHE";
pub const HF_HUB_OFFLINE: &str = "HF_HUB_OFFLINE";
pub const HF_ENDPOINT: &str = "HF_ENDPOINT";
pub const HF_TOKEN: &str = "HF_TOKEN";
pub const HF_TOKEN_PATH: &str = "HF_TOKEN_PATH";
pub const KARMA_HUB_TIMEOUT_SECS: &str = "KARMA_HUB_TIMEOUT_SECS";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepoKind {
    Model,
    Dataset,
}

impl RepoKind {
    fn as_str(self) -> &'static str {
        match self {
            RepoKind::Model => "model",
            RepoKind::Dataset => "dataset",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            RepoKind::Model => "models",
            RepoKind::Dataset => "datasets",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct RepoRef<'a> {
    pub kind: RepoKind,
    pub repo: &'a str,
    pub revision: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("{kind} `{repo}` (revision {revision}) is not in the local Hugging Face cache at `{}` and offline mode (--offline or HF_HUB_OFFLINE=1) forbids downloading", cache.display())]
    NotCached { kind: &'static str, repo: String, revision: String, cache: PathBuf },
    #[error("cannot reach the hub at {endpoint} for `{repo}`: {message}")]
    Network { endpoint: String, repo: String, message: String },
    #[error("the hub answered {status} for {url}{}", if *status == 401 || *status == 403 { " (gated or private: set HF_TOKEN, or log in with `hf auth login`)" } else { "" })]
    Status { status: u16, url: String },
    #[error("the hub's answer for `{repo}` is malformed: {message}")]
    Malformed { repo: String, message: String },
    #[error("{kind} `{repo}` has none of the files needed: {wanted} (files: {files})")]
    NoFiles { kind: &'static str, repo: String, wanted: String, files: String },
    #[error("cannot write the Hugging Face cache at `{}`: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub commit: String,
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
}

pub trait Select {
    fn select(&self, listing: &[String]) -> Vec<String>;
    fn describe(&self) -> String;
}

/// hf-hub's own resolution: `HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
pub fn cache_dir() -> PathBuf {
    hf_hub::resolve_cache_dir()
}

/// hf-hub 1.0 does not read `HF_HUB_OFFLINE`: the caller maps it to `local_files_only`.
pub fn offline_from_env() -> bool {
    std::env::var(HF_HUB_OFFLINE)
        .is_ok_and(|value| matches!(value.trim(), "1" | "true" | "TRUE" | "yes" | "ON" | "on"))
}

fn repo_dir(cache: &Path, repo: &RepoRef<'_>) -> PathBuf {
    cache.join(format!("{}--{}", repo.kind.plural(), repo.repo.replace('/', "--")))
}

/// The cache lookup, as in our client (see the module comment for why not `local_files_only`).
pub fn find_cached(cache: &Path, repo: &RepoRef<'_>, select: &dyn Select) -> Option<Snapshot> {
    let root = repo_dir(cache, repo);
    let commit = std::fs::read_to_string(root.join("refs").join(repo.revision))
        .ok()
        .map(|text| text.trim().to_owned())
        .or_else(|| {
            std::fs::read_dir(root.join("snapshots")).ok()?.filter_map(Result::ok).find_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                name.starts_with(repo.revision).then_some(name)
            })
        })?;
    let dir = root.join("snapshots").join(&commit);
    let mut listing = Vec::new();
    let mut pending = vec![dir.clone()];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory).ok()?.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(relative) = path.strip_prefix(&dir) {
                listing.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    listing.sort();
    let files = select.select(&listing);
    (!files.is_empty()).then(|| Snapshot {
        commit,
        files: files.iter().map(|file| dir.join(file)).collect(),
        dir,
    })
}

pub fn fetch(repo: &RepoRef<'_>, select: &dyn Select, offline: bool) -> Result<Snapshot, HubError> {
    let cache = cache_dir();
    if let Some(snapshot) = find_cached(&cache, repo, select) {
        return Ok(snapshot);
    }
    if offline {
        return Err(HubError::NotCached {
            kind: repo.kind.as_str(),
            repo: repo.repo.to_owned(),
            revision: repo.revision.to_owned(),
            cache,
        });
    }
    // hf-hub is async only (its `blocking` feature wraps the same runtime): one current-thread
    // runtime per call, since the host and plugins are synchronous.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| HubError::Io { path: cache.clone(), source })?;
    runtime.block_on(download(&cache, repo, select))
}

fn client() -> Result<HFClient, HFError> {
    let seconds =
        std::env::var(KARMA_HUB_TIMEOUT_SECS).ok().and_then(|text| text.parse().ok()).unwrap_or(30u64);
    // Per-read and connect deadlines on the client hf-hub uses for GETs; hf-hub builds the client
    // for its HEAD requests itself, without them.
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(seconds.min(10)))
        .read_timeout(Duration::from_secs(seconds))
        .build()
        .map_err(|source| HFError::Request { source, url: None })?;
    HFClient::builder().client(http).build()
}

fn hub_error(repo: &str, error: HFError) -> HubError {
    let endpoint = std::env::var(HF_ENDPOINT).unwrap_or_else(|_| "https://huggingface.co".to_owned());
    match error {
        HFError::Http { context } | HFError::AuthRequired { context } | HFError::Forbidden { context } => {
            HubError::Status { status: context.status.as_u16(), url: context.url }
        }
        HFError::RepoNotFound { context: Some(context), .. }
        | HFError::RevisionNotFound { context: Some(context), .. }
        | HFError::EntryNotFound { context: Some(context), .. } => {
            HubError::Status { status: context.status.as_u16(), url: context.url }
        }
        HFError::Request { source, .. } => {
            HubError::Network { endpoint, repo: repo.to_owned(), message: source.to_string() }
        }
        HFError::Io(source) => HubError::Io { path: cache_dir(), source },
        other => HubError::Malformed { repo: repo.to_owned(), message: other.to_string() },
    }
}

async fn download(cache: &Path, repo: &RepoRef<'_>, select: &dyn Select) -> Result<Snapshot, HubError> {
    let failed = |error| hub_error(repo.repo, error);
    let client = client().map_err(failed)?;
    let (owner, name) = hf_hub::split_id(repo.repo);
    let revision = repo.revision.to_owned();
    let (sha, siblings) = match repo.kind {
        RepoKind::Model => {
            let info = client.model(owner, name).info().revision(revision).send().await.map_err(failed)?;
            (info.sha, info.siblings)
        }
        RepoKind::Dataset => {
            let info = client.dataset(owner, name).info().revision(revision).send().await.map_err(failed)?;
            (info.sha, info.siblings)
        }
    };
    let malformed =
        |message: &str| HubError::Malformed { repo: repo.repo.to_owned(), message: message.to_owned() };
    let commit = sha.ok_or_else(|| malformed("no `sha`"))?;
    let mut listing: Vec<String> = siblings
        .ok_or_else(|| malformed("no `siblings`"))?
        .into_iter()
        .map(|sibling| sibling.rfilename)
        .collect();
    listing.sort();
    let files = select.select(&listing);
    if files.is_empty() {
        return Err(HubError::NoFiles {
            kind: repo.kind.as_str(),
            repo: repo.repo.to_owned(),
            wanted: select.describe(),
            files: listing.join(", "),
        });
    }
    let mut paths = Vec::with_capacity(files.len());
    for file in &files {
        tracing::info!(file = %file, "downloading through hf-hub");
        let path = match repo.kind {
            RepoKind::Model => {
                client.model(owner, name).download_file().filename(file).revision(commit.clone()).send().await
            }
            RepoKind::Dataset => {
                client
                    .dataset(owner, name)
                    .download_file()
                    .filename(file)
                    .revision(commit.clone())
                    .send()
                    .await
            }
        }
        .map_err(failed)?;
        paths.push(path);
    }
    // hf-hub writes no ref for a revision given as a commit; the cache lookup needs one for
    // branch names.
    let refs = repo_dir(cache, repo).join("refs");
    std::fs::create_dir_all(&refs).map_err(|source| HubError::Io { path: refs.clone(), source })?;
    std::fs::write(refs.join(repo.revision), &commit)
        .map_err(|source| HubError::Io { path: refs.clone(), source })?;
    let dir = repo_dir(cache, repo).join("snapshots").join(&commit);
    Ok(Snapshot { commit, dir, files: paths })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Why the cache lookup above is ours: hf-hub's cache-only resolution takes a ref or a full
    /// commit, not the commit prefixes the dataset registry pins (`medqa` at `153e61cd`).
    #[test]
    fn hf_hub_cache_only_lookup_finds_a_full_commit_but_not_a_prefix() {
        let cache = tempfile::tempdir().unwrap();
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let snapshot = cache.path().join("datasets--org--tiny/snapshots").join(commit);
        std::fs::create_dir_all(&snapshot).unwrap();
        std::fs::write(snapshot.join("data.parquet"), b"rows").unwrap();
        let client = HFClient::builder().cache_dir(cache.path()).build().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let repo = client.dataset("org", "tiny");
        let lookup = |revision: &str| {
            runtime.block_on(
                repo.download_file()
                    .filename("data.parquet")
                    .revision(revision)
                    .local_files_only(true)
                    .send(),
            )
        };
        assert_eq!(lookup(commit).unwrap(), snapshot.join("data.parquet"));
        let prefix = lookup("0123456");
        assert!(matches!(prefix, Err(HFError::LocalEntryNotFound { .. })), "{prefix:?}");
    }
}
