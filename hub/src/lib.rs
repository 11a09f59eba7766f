//! Hugging Face hub repositories (models and datasets), found in the local HF cache (hub
//! snapshot layout `{models|datasets}--org--name/snapshots/<commit>/`) or downloaded into it.
//!
//! Ours rather than hf-hub: measured against hf-hub 1.0 behind this same API (`hub/README.md`,
//! `bench/hf_hub_trial.sh`), it nearly doubles the binary and each plugin that links this crate,
//! cannot resolve the commit prefixes datasets are pinned by, and puts no deadline on its HEAD
//! requests. The small part of the protocol we need is implemented here:
//! `GET /api/{models|datasets}/{repo}/revision/{rev}` for the commit and file list,
//! `GET /{datasets/}{repo}/resolve/{commit}/{file}` for the bytes (Xet-backed files through the
//! hub's LFS bridge redirect), all with deadlines. The host (datasets) and the model plugins
//! (weights) share it.

use std::{
    io::Read,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

/// Hugging Face home; the hub cache is `$HF_HOME/hub` unless `HF_HUB_CACHE` is set.
pub const HF_HOME: &str = "HF_HOME";
/// The hub cache directory itself.
pub const HF_HUB_CACHE: &str = "HF_HUB_CACHE";
/// `1` forbids network access to the hub.
pub const HF_HUB_OFFLINE: &str = "HF_HUB_OFFLINE";
/// The hub's base URL (tests point it at a local server).
pub const HF_ENDPOINT: &str = "HF_ENDPOINT";
/// Token for gated or private repositories.
pub const HF_TOKEN: &str = "HF_TOKEN";
/// File holding the token when `HF_TOKEN` is unset (default `$HF_HOME/token`, where
/// `hf auth login` writes it).
pub const HF_TOKEN_PATH: &str = "HF_TOKEN_PATH";
/// Seconds before a hub request that gets no answer, or a download that stalls, is abandoned
/// (default 30).
pub const KARMA_HUB_TIMEOUT_SECS: &str = "KARMA_HUB_TIMEOUT_SECS";

/// What kind of repository: the two live in different URL and cache namespaces.
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

    /// The URL path prefix of `resolve` downloads: none for models.
    fn resolve_prefix(self) -> &'static str {
        match self {
            RepoKind::Model => "",
            RepoKind::Dataset => "datasets/",
        }
    }
}

/// One repository at one revision.
#[derive(Clone, Copy, Debug)]
pub struct RepoRef<'a> {
    pub kind: RepoKind,
    /// `org/name`.
    pub repo: &'a str,
    /// A commit (or prefix) or branch; `main` when unpinned.
    pub revision: &'a str,
}

/// Why a repository's files could not be made available.
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

/// Files of a repository snapshot.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The commit the files belong to.
    pub commit: String,
    /// The snapshot folder.
    pub dir: PathBuf,
    /// The selected files, absolute.
    pub files: Vec<PathBuf>,
}

/// Chooses the files needed from a repository listing (paths relative to the repository root).
/// An empty choice means the listing lacks something required.
pub trait Select {
    fn select(&self, listing: &[String]) -> Vec<String>;
    /// What is wanted, for error messages.
    fn describe(&self) -> String;
}

/// `HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os(HF_HUB_CACHE) {
        Some(path) => PathBuf::from(path),
        None => hf_home().join("hub"),
    }
}

/// `HF_HOME`, else `~/.cache/huggingface`.
fn hf_home() -> PathBuf {
    if let Some(home) = std::env::var_os(HF_HOME) {
        return PathBuf::from(home);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache/huggingface")
}

/// `HF_TOKEN`, else the first line of `HF_TOKEN_PATH` (default `$HF_HOME/token`), as the
/// Python `huggingface_hub` resolves it; an empty value counts as none.
fn token() -> Option<String> {
    let token = match std::env::var(HF_TOKEN) {
        Ok(token) => token,
        Err(_) => {
            let path =
                std::env::var_os(HF_TOKEN_PATH).map(PathBuf::from).unwrap_or_else(|| hf_home().join("token"));
            std::fs::read_to_string(path).ok()?.lines().next()?.to_owned()
        }
    };
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

/// Whether `HF_HUB_OFFLINE` asks for no network.
pub fn offline_from_env() -> bool {
    std::env::var(HF_HUB_OFFLINE)
        .is_ok_and(|value| matches!(value.trim(), "1" | "true" | "TRUE" | "yes" | "ON" | "on"))
}

fn repo_dir(cache: &Path, repo: &RepoRef<'_>) -> PathBuf {
    cache.join(format!("{}--{}", repo.kind.plural(), repo.repo.replace('/', "--")))
}

/// Looks for an already downloaded snapshot of the revision holding everything `select` needs.
pub fn find_cached(cache: &Path, repo: &RepoRef<'_>, select: &dyn Select) -> Option<Snapshot> {
    let root = repo_dir(cache, repo);
    let commit = std::fs::read_to_string(root.join("refs").join(repo.revision))
        .ok()
        .map(|text| text.trim().to_owned())
        .or_else(|| {
            // A pinned commit (or prefix) names the snapshot folder directly.
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

/// Finds the files in the cache, downloading them first unless `offline`.
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
    download(&cache, repo, select)
}

fn endpoint() -> String {
    std::env::var(HF_ENDPOINT)
        .unwrap_or_else(|_| "https://huggingface.co".to_owned())
        .trim_end_matches('/')
        .to_owned()
}

fn agent() -> ureq::Agent {
    // A stalled server must not hang an evaluation: every phase has a deadline.
    let seconds =
        std::env::var(KARMA_HUB_TIMEOUT_SECS).ok().and_then(|text| text.parse().ok()).unwrap_or(30u64);
    // Bodies get a per-read deadline (a stalled transfer fails) but no total one: a
    // multi-gigabyte weight file may take as long as the link needs.
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(seconds.min(10))))
        .timeout_recv_response(Some(Duration::from_secs(seconds)))
        .timeout_per_read(Some(Duration::from_secs(seconds)))
        .build()
        .into()
}

fn get(agent: &ureq::Agent, url: &str, repo: &str) -> Result<ureq::http::Response<ureq::Body>, HubError> {
    let mut request = agent.get(url);
    if let Some(token) = token() {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    request.call().map_err(|error| match error {
        ureq::Error::StatusCode(status) => HubError::Status { status, url: url.to_owned() },
        other => {
            HubError::Network { endpoint: endpoint(), repo: repo.to_owned(), message: other.to_string() }
        }
    })
}

fn download(cache: &Path, repo: &RepoRef<'_>, select: &dyn Select) -> Result<Snapshot, HubError> {
    let agent = agent();
    let base = endpoint();
    let info_url = format!("{base}/api/{}/{}/revision/{}", repo.kind.plural(), repo.repo, repo.revision);
    let malformed = |message: String| HubError::Malformed { repo: repo.repo.to_owned(), message };
    let text = get(&agent, &info_url, repo.repo)?
        .body_mut()
        .read_to_string()
        .map_err(|error| malformed(error.to_string()))?;
    let info: serde_json::Value =
        serde_json::from_str(&text).map_err(|error| malformed(error.to_string()))?;
    let commit = info["sha"].as_str().ok_or_else(|| malformed("no `sha`".to_owned()))?.to_owned();
    let mut listing: Vec<String> = info["siblings"]
        .as_array()
        .ok_or_else(|| malformed("no `siblings`".to_owned()))?
        .iter()
        .filter_map(|sibling| sibling["rfilename"].as_str().map(str::to_owned))
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
    if let Some(unsafe_name) = files.iter().find(|file| !is_plain_relative(file)) {
        return Err(malformed(format!("refusing file name `{unsafe_name}` (not a plain relative path)")));
    }
    let dir = repo_dir(cache, repo).join("snapshots").join(&commit);
    let mut paths = Vec::with_capacity(files.len());
    for file in &files {
        let target = dir.join(file);
        if !target.is_file() {
            let url = format!("{base}/{}{}/resolve/{commit}/{file}", repo.kind.resolve_prefix(), repo.repo);
            download_file(&agent, &url, repo.repo, &target)?;
        }
        paths.push(target);
    }
    let refs = repo_dir(cache, repo).join("refs");
    std::fs::create_dir_all(&refs).map_err(io(&refs))?;
    std::fs::write(refs.join(repo.revision), &commit).map_err(io(&refs))?;
    Ok(Snapshot { commit, dir, files: paths })
}

/// Whether a name from the hub's listing stays inside the snapshot folder.
fn is_plain_relative(name: &str) -> bool {
    !name.is_empty()
        && Path::new(name).components().all(|component| matches!(component, std::path::Component::Normal(_)))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HubError {
    let path = path.to_owned();
    move |source| HubError::Io { path, source }
}

fn download_file(agent: &ureq::Agent, url: &str, repo: &str, target: &Path) -> Result<(), HubError> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let mut response = get(agent, url, repo)?;
    let total: Option<u64> = response
        .headers()
        .get("content-length")
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse().ok());
    let name = target.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    tracing::info!(file = %name, bytes = total, "downloading {url}");
    // Written under a temporary name and renamed, so an interrupted download never leaves a
    // truncated file that a later run would trust.
    let partial = target.with_extension("partial");
    let mut output = std::fs::File::create(&partial).map_err(io(&partial))?;
    let mut body = response.body_mut().with_config().limit(u64::MAX).reader();
    let mut buffer = vec![0u8; 1 << 16];
    let (mut received, mut last_report) = (0u64, Instant::now());
    loop {
        let read = body.read(&mut buffer).map_err(|error| HubError::Network {
            endpoint: endpoint(),
            repo: repo.to_owned(),
            message: error.to_string(),
        })?;
        if read == 0 {
            break;
        }
        std::io::Write::write_all(&mut output, &buffer[..read]).map_err(io(&partial))?;
        received += read as u64;
        if last_report.elapsed() > Duration::from_secs(5) {
            last_report = Instant::now();
            tracing::info!(file = %name, received, total, "download in progress");
        }
    }
    if let Some(total) = total.filter(|total| *total != received) {
        return Err(HubError::Network {
            endpoint: endpoint(),
            repo: repo.to_owned(),
            message: format!("`{name}` ended after {received} of {total} bytes"),
        });
    }
    output.sync_all().map_err(io(&partial))?;
    std::fs::rename(&partial, target).map_err(io(target))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Named(&'static [&'static str]);

    impl Select for Named {
        fn select(&self, listing: &[String]) -> Vec<String> {
            let found: Vec<String> = self
                .0
                .iter()
                .filter(|name| listing.iter().any(|file| file == *name))
                .map(|n| n.to_string())
                .collect();
            if found.len() == self.0.len() {
                found
            } else {
                Vec::new()
            }
        }
        fn describe(&self) -> String {
            self.0.join(", ")
        }
    }

    #[test]
    fn only_plain_relative_names_are_written() {
        assert!(is_plain_relative("data/train.parquet"));
        assert!(!is_plain_relative("../outside"));
        assert!(!is_plain_relative("/etc/passwd"));
        assert!(!is_plain_relative("a/../../b"));
        assert!(!is_plain_relative(""));
    }

    #[test]
    fn cached_snapshot_is_found_by_ref_or_commit_prefix_and_needs_every_file() {
        let cache = tempfile::tempdir().unwrap();
        let root = cache.path().join("models--org--tiny");
        let commit = "0123456789abcdef0123456789abcdef01234567";
        std::fs::create_dir_all(root.join("snapshots").join(commit)).unwrap();
        std::fs::create_dir_all(root.join("refs")).unwrap();
        std::fs::write(root.join("refs/main"), commit).unwrap();
        std::fs::write(root.join("snapshots").join(commit).join("config.json"), "{}").unwrap();
        let main = RepoRef { kind: RepoKind::Model, repo: "org/tiny", revision: "main" };
        assert!(find_cached(cache.path(), &main, &Named(&["config.json", "model.safetensors"])).is_none());
        let found = find_cached(cache.path(), &main, &Named(&["config.json"])).unwrap();
        assert_eq!(found.commit, commit);
        let pinned = RepoRef { revision: "0123456", ..main };
        assert_eq!(find_cached(cache.path(), &pinned, &Named(&["config.json"])).unwrap().commit, commit);
        let dataset = RepoRef { kind: RepoKind::Dataset, ..main };
        assert!(find_cached(cache.path(), &dataset, &Named(&["config.json"])).is_none());
    }
}
