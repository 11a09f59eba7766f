//! Plugins: find → check → load → register.
//!
//! [`scan`] looks at every `*.so` entry of the plugin directories, runs the static checks of
//! [`precheck`], loads what passes with [`loader`], and returns a [`Registry`] holding every
//! model and every rejected file with its reason. One bad file never stops the others.

mod backend;
mod batch_view;
pub(crate) mod host_api;
mod instance;
mod loader;
mod permissions;
mod precheck;
mod rejection;
mod scan_cache;
pub mod scan_child;
pub mod search_path;
pub mod trust;
pub mod worker;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fs,
    path::{Path, PathBuf},
    sync::Mutex,
    time::Duration,
};

use karma_plugin_api::abi::{HostApi_Ref, ModelMeta, PluginRoot_Ref};

pub use backend::{
    open_backend, Backend, Completion, ContinuationScores, Isolation, ItemFailure, ScoreRequest,
};
pub use batch_view::with_batch_view;
pub use host_api::{set_status_sink, StatusSink};
pub use instance::{CallError, ModelInstance};
pub use rejection::{RejectCode, Rejection};
pub use search_path::PluginDir;
pub use worker::{WorkerBackend, WORKER_BINARY};

/// A model as registered from a scanned plugin. Its library is loaded into this process only
/// when an in-process instance is created ([`plugin_root`]).
#[derive(Clone)]
pub struct RegisteredModel {
    pub meta: ModelMeta,
    pub plugin_path: PathBuf,
}

/// Libraries loaded into this process, by path (never unloaded: see `loader::load`).
static LOADED: Mutex<Option<HashMap<PathBuf, (PluginRoot_Ref, HostApi_Ref)>>> = Mutex::new(None);

/// The root module of the plugin at `path` and its host API, loading it into this process (with
/// the scan's checks) the first time.
pub(crate) fn plugin_root(path: &Path) -> Result<(PluginRoot_Ref, HostApi_Ref), Rejection> {
    let mut loaded = LOADED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let loaded = loaded.get_or_insert_with(HashMap::new);
    if let Some(found) = loaded.get(path) {
        return Ok(*found);
    }
    let library = precheck::check(path).and_then(|summary| load_checked(path, &summary))?;
    let found = (library.root, host_api::host_api_for(&instance::plugin_label(path)));
    loaded.insert(path.to_owned(), found);
    Ok(found)
}

/// Loads `path` into this process; under `--require-trusted`, only when its open descriptor
/// hashes to the pin, and through that descriptor.
fn load_checked(path: &Path, summary: &precheck::ElfSummary) -> Result<loader::LoadedLibrary, Rejection> {
    match trust::required_pin(path) {
        None => loader::load(path, summary),
        Some(pin) => {
            let file = trust::open_pinned(path, &pin?)?;
            let library = loader::load_as(path, Some(&trust::fd_path(&file)), summary);
            // Kept open: the loaded library's link-map names this descriptor.
            std::mem::forget(file);
            library
        }
    }
}

/// Loads the plugin at `path` into this process and registers its model `name` (a worker's
/// start: one plugin, one model).
pub(crate) fn load_model(path: &Path, name: &str) -> Result<RegisteredModel, String> {
    let mut registry = Registry::default();
    // The scan that registered it checked its permissions.
    registry.add(path.to_owned(), &mut Loading::InProcess, true);
    if let Some(PluginRecord { status: PluginStatus::Rejected(rejection), .. }) = registry.plugins.first() {
        return Err(format!("cannot load `{}`: {}", path.display(), rejection.reason));
    }
    registry
        .models
        .into_iter()
        .find(|model| model.meta.name == name)
        .ok_or_else(|| format!("`{}` no longer provides model `{name}`", path.display()))
}

/// How a scan loads plugins to read their models.
enum Loading {
    /// In this process (the library API: tests and benchmarks that drive plugins directly).
    InProcess,
    /// In a child process per file not in the scan cache (the CLI).
    Isolated { cache: scan_cache::ScanCache, timeout: Duration },
}

/// Versions a loaded plugin reports.
#[derive(Clone, Debug)]
pub struct PluginVersions {
    pub abi_major: u16,
    pub abi_minor: u16,
    pub plugin_api_version: String,
    pub rustc_version: String,
}

/// The outcome of scanning one file.
#[derive(Clone, Debug)]
pub enum PluginStatus {
    Loaded { versions: PluginVersions, models: Vec<String> },
    Rejected(Rejection),
}

/// One scanned file.
#[derive(Clone, Debug)]
pub struct PluginRecord {
    pub path: PathBuf,
    pub status: PluginStatus,
}

/// A plugin directory that could not be scanned.
#[derive(Clone, Debug)]
pub struct DirectoryProblem {
    pub path: PathBuf,
    pub explicit: bool,
    pub reason: String,
}

/// Everything a scan found.
#[derive(Default)]
pub struct Registry {
    pub plugins: Vec<PluginRecord>,
    pub models: Vec<RegisteredModel>,
    pub directory_problems: Vec<DirectoryProblem>,
}

/// Why a model name cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("unknown model `{name}`")]
    Unknown { name: String, suggestions: Vec<String> },
    #[error("model `{name}` is provided by {} plugins: {}", plugins.len(), plugins.iter().map(|path| format!("`{}`", path.display())).collect::<Vec<_>>().join(", "))]
    Ambiguous { name: String, plugins: Vec<PathBuf> },
}

impl Registry {
    /// The plugin files providing each model name, for names provided more than once.
    pub fn duplicates(&self) -> BTreeMap<&str, Vec<&Path>> {
        let mut providers: BTreeMap<&str, Vec<&Path>> = BTreeMap::new();
        for model in &self.models {
            providers.entry(model.meta.name.as_str()).or_default().push(&model.plugin_path);
        }
        providers.retain(|_, paths| paths.len() > 1);
        providers
    }

    /// The one model registered under `name`. Two plugins claiming a name is an error: neither
    /// silently wins.
    pub fn model(&self, name: &str) -> Result<&RegisteredModel, LookupError> {
        let matches: Vec<&RegisteredModel> =
            self.models.iter().filter(|model| model.meta.name == name).collect();
        match matches.as_slice() {
            [only] => Ok(only),
            [] => Err(LookupError::Unknown { name: name.to_owned(), suggestions: self.suggestions(name) }),
            several => Err(LookupError::Ambiguous {
                name: name.to_owned(),
                plugins: several.iter().map(|model| model.plugin_path.clone()).collect(),
            }),
        }
    }

    /// Up to five registered names close to `name` (substring or small edit distance).
    fn suggestions(&self, name: &str) -> Vec<String> {
        let wanted = name.to_lowercase();
        let mut scored: Vec<(f64, &str)> = self
            .models
            .iter()
            .map(|model| model.meta.name.as_str())
            .collect::<HashSet<_>>()
            .into_iter()
            .filter_map(|candidate| {
                let lower = candidate.to_lowercase();
                let score = if lower.contains(&wanted) || wanted.contains(&lower) {
                    1.0
                } else {
                    strsim::jaro_winkler(&wanted, &lower)
                };
                (score >= 0.8).then_some((score, candidate))
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        scored.into_iter().take(5).map(|(_, name)| name.to_owned()).collect()
    }
}

/// Scans `directories` and loads every plugin found into this process (refusing files others
/// could have written).
pub fn scan(directories: &[PluginDir]) -> Registry {
    scan_with(directories, &mut Loading::InProcess, false)
}

/// Scans `directories`, loading each plugin not in the scan cache in a child process of this
/// binary with `timeout`: a plugin whose load-time code crashes, exits or hangs is rejected and
/// the others are listed. Nothing is loaded into this process.
/// Files other users can write, or that they own, are refused unless `allow_insecure`.
pub fn scan_isolated(directories: &[PluginDir], timeout: Duration, allow_insecure: bool) -> Registry {
    let mut loading = Loading::Isolated { cache: scan_cache::ScanCache::open(), timeout };
    let registry = scan_with(directories, &mut loading, allow_insecure);
    if let Loading::Isolated { cache, .. } = &mut loading {
        cache.save();
    }
    registry
}

fn scan_with(directories: &[PluginDir], loading: &mut Loading, allow_insecure: bool) -> Registry {
    let mut registry = Registry::default();
    let mut seen = HashSet::new();
    for directory in directories {
        let canonical = directory.path.canonicalize().unwrap_or_else(|_| directory.path.clone());
        if !seen.insert(canonical) {
            continue;
        }
        let entries = match fs::read_dir(&directory.path) {
            Ok(entries) => entries,
            Err(error) => {
                if directory.explicit || error.kind() != std::io::ErrorKind::NotFound {
                    registry.directory_problems.push(DirectoryProblem {
                        path: directory.path.clone(),
                        explicit: directory.explicit,
                        reason: error.to_string(),
                    });
                }
                continue;
            }
        };
        let mut candidates: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|extension| extension == "so"))
            .collect();
        candidates.sort();
        for path in candidates {
            registry.add(path, loading, allow_insecure);
        }
    }
    registry
}

impl Registry {
    fn add(&mut self, path: PathBuf, loading: &mut Loading, allow_insecure: bool) {
        let checked = precheck::check(&path).and_then(|summary| {
            for warning in permissions::check(&path, allow_insecure)? {
                tracing::warn!("plugin `{}`: {warning}", path.display());
            }
            Ok(summary)
        });
        let pin = trust::required_pin(&path);
        let loaded = checked.and_then(|summary| match (loading, pin) {
            (Loading::InProcess, _) => {
                let library = load_checked(&path, &summary)?;
                let host_api = host_api::host_api_for(&instance::plugin_label(&path));
                LOADED
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get_or_insert_with(HashMap::new)
                    .insert(path.clone(), (library.root, host_api));
                scan_child::LoadOutcome::loaded(&library).into_parts(&path)
            }
            (Loading::Isolated { cache, timeout }, Some(pin)) => {
                // Hashed on every command; a file with this identity and this hash that was
                // scanned before needs no child. A new scan loads through the hashed descriptor.
                let pin = pin?;
                let file = trust::open_pinned(&path, &pin)?;
                let key = path.canonicalize().unwrap_or_else(|_| path.clone());
                let identity = file.metadata().map(|metadata| scan_cache::FileIdentity::from(&metadata));
                let cached =
                    identity.as_ref().ok().and_then(|identity| cache.get_hashed(&key, *identity, &pin));
                let outcome = match (cached, identity) {
                    (Some(outcome), _) => outcome.clone(),
                    (None, identity) => {
                        let outcome = scan_child::scan(&path, *timeout, Some(&file));
                        if let Ok(identity) = identity {
                            cache.put_hashed(&key, identity, pin, outcome.clone());
                        }
                        outcome
                    }
                };
                outcome.into_parts(&path)
            }
            (Loading::Isolated { cache, timeout }, None) => {
                let identity = scan_cache::FileIdentity::of(&path).map_err(|error| {
                    Rejection::new(
                        &path,
                        RejectCode::Unreadable,
                        format!("cannot read its metadata: {error}"),
                    )
                })?;
                // Keyed by the real path: the same directory reached from elsewhere hits.
                let key = path.canonicalize().unwrap_or_else(|_| path.clone());
                let outcome = match cache.get(&key, identity) {
                    Some(outcome) => outcome.clone(),
                    None => {
                        let outcome = scan_child::scan(&path, *timeout, None);
                        cache.put(&key, identity, outcome.clone());
                        outcome
                    }
                };
                outcome.into_parts(&path)
            }
        });
        let status = match loaded {
            Ok((versions, models)) => {
                let names = models.iter().map(|meta| meta.name.clone()).collect();
                for meta in models {
                    self.models.push(RegisteredModel { meta, plugin_path: path.clone() });
                }
                PluginStatus::Loaded { versions, models: names }
            }
            Err(rejection) => {
                tracing::info!(path = %path.display(), code = rejection.code.as_str(), "rejected plugin: {}", rejection.reason);
                PluginStatus::Rejected(rejection)
            }
        };
        self.plugins.push(PluginRecord { path, status });
    }
}
