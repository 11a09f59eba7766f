//! Where a model's files come from: a local directory or `.gguf` file, or a Hugging Face hub
//! repository (the local HF cache, else a download into it through the shared hub client,
//! which honours HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE, HF_ENDPOINT and HF_TOKEN).

use std::path::{Path, PathBuf};

use karma_hub::{RepoKind, RepoRef, Select};

/// The files of one checkpoint.
#[derive(Clone, Debug)]
pub struct ModelFiles {
    /// Where config and tokenizer files are looked for.
    pub dir: PathBuf,
    pub weights: Weights,
    /// Where the files came from, for logs and errors.
    pub origin: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Weights {
    /// Hugging Face layout: `config.json` plus `model.safetensors` or an index.
    Safetensors,
    Gguf(PathBuf),
}

impl ModelFiles {
    /// `dir/name` when that file exists.
    pub fn optional(&self, name: &str) -> Option<PathBuf> {
        Some(self.dir.join(name)).filter(|path| path.is_file())
    }
}

/// Files wanted from a hub repository.
struct ModelSelect<'a> {
    gguf_file: Option<&'a str>,
}

const SIDE_FILES: [&str; 5] = [
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "generation_config.json",
    "model.safetensors.index.json",
];

impl Select for ModelSelect<'_> {
    fn select(&self, listing: &[String]) -> Vec<String> {
        let has = |name: &str| listing.iter().any(|file| file == name);
        let mut chosen: Vec<String> =
            SIDE_FILES.iter().filter(|name| has(name)).map(|name| (*name).to_owned()).collect();
        match self.gguf_file {
            Some(gguf) if has(gguf) => chosen.push(gguf.to_owned()),
            Some(_) => return Vec::new(),
            None => {
                let shards: Vec<String> =
                    listing.iter().filter(|file| file.ends_with(".safetensors")).cloned().collect();
                if shards.is_empty() || !has("config.json") {
                    return Vec::new();
                }
                chosen.extend(shards);
            }
        }
        chosen
    }

    fn describe(&self) -> String {
        match self.gguf_file {
            Some(gguf) => format!("`{gguf}`"),
            None => {
                "config.json and *.safetensors weights (set `gguf_file` for a GGUF repository)".to_owned()
            }
        }
    }
}

/// Whether `location` names a hub repository rather than a local path.
fn looks_like_repo_id(location: &str) -> bool {
    let parts: Vec<&str> = location.split('/').collect();
    parts.len() == 2
        && parts.iter().all(|part| !part.is_empty() && *part != "." && *part != "..")
        && !location.starts_with('~')
        && !location.ends_with(".gguf")
}

/// Finds the checkpoint at `location` (a local path or hub id).
pub fn resolve(
    location: &str,
    gguf_file: Option<&str>,
    revision: &str,
    offline: bool,
) -> Result<ModelFiles, String> {
    let path = Path::new(location);
    if path.exists() {
        return local(path, gguf_file);
    }
    if !looks_like_repo_id(location) {
        return Err(format!("model path `{location}` does not exist (give a local directory, a .gguf file or a hub id `org/name`)"));
    }
    let repo = RepoRef { kind: RepoKind::Model, repo: location, revision };
    let snapshot =
        karma_hub::fetch(&repo, &ModelSelect { gguf_file }, offline).map_err(|error| error.to_string())?;
    let weights = match gguf_file {
        Some(gguf) => Weights::Gguf(snapshot.dir.join(gguf)),
        None => Weights::Safetensors,
    };
    Ok(ModelFiles { dir: snapshot.dir, weights, origin: format!("{location}@{}", snapshot.commit) })
}

fn local(path: &Path, gguf_file: Option<&str>) -> Result<ModelFiles, String> {
    let origin = path.display().to_string();
    if path.is_file() {
        if path.extension().is_some_and(|extension| extension == "gguf") {
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
            return Ok(ModelFiles { dir, weights: Weights::Gguf(path.to_path_buf()), origin });
        }
        return Err(format!("`{origin}` is a file but not a .gguf file: give the model's directory instead"));
    }
    if let Some(gguf) = gguf_file {
        let file = path.join(gguf);
        if !file.is_file() {
            return Err(format!("gguf_file `{gguf}` not found in `{origin}`"));
        }
        return Ok(ModelFiles { dir: path.to_path_buf(), weights: Weights::Gguf(file), origin });
    }
    if path.join("model.safetensors").is_file() || path.join("model.safetensors.index.json").is_file() {
        return Ok(ModelFiles { dir: path.to_path_buf(), weights: Weights::Safetensors, origin });
    }
    let ggufs: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|error| format!("cannot read `{origin}`: {error}"))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|file| file.extension().is_some_and(|extension| extension == "gguf"))
        .collect();
    match ggufs.as_slice() {
        [single] => {
            Ok(ModelFiles { dir: path.to_path_buf(), weights: Weights::Gguf(single.clone()), origin })
        }
        [] => {
            Err(format!("`{origin}` holds no model.safetensors, model.safetensors.index.json or .gguf file"))
        }
        _ => {
            Err(format!("`{origin}` holds several .gguf files: choose one with `gguf_file` in --model-args"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_ids_and_paths_are_told_apart() {
        assert!(looks_like_repo_id("Qwen/Qwen3-0.6B"));
        assert!(!looks_like_repo_id("./models/x"));
        assert!(!looks_like_repo_id("/abs/dir"));
        assert!(!looks_like_repo_id("models/x.gguf"));
        assert!(!looks_like_repo_id("a/b/c"));
    }

    #[test]
    fn hub_selection_wants_weights_and_config() {
        let listing: Vec<String> = [
            "config.json",
            "tokenizer.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "model.safetensors.index.json",
            "README.md",
        ]
        .iter()
        .map(|name| (*name).to_owned())
        .collect();
        let chosen = ModelSelect { gguf_file: None }.select(&listing);
        assert!(chosen.contains(&"model-00002-of-00002.safetensors".to_owned()));
        assert!(!chosen.contains(&"README.md".to_owned()));
        assert!(ModelSelect { gguf_file: Some("m.gguf") }.select(&listing).is_empty());
        assert!(ModelSelect { gguf_file: None }.select(&listing[1..]).is_empty());
    }
}
