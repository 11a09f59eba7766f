//! Where a checkpoint's files come from: a local directory, or a Hugging Face hub repository
//! (the local HF cache, else a download into it through the shared hub client, which honours
//! HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE, HF_ENDPOINT and HF_TOKEN).

use std::path::{Path, PathBuf};

use karma_hub::{RepoKind, RepoRef, Select};

/// The weight format of a checkpoint directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `config.json` + `model.safetensors` (or an index) + `tokenizer.json`.
    Safetensors,
    /// CTranslate2: `model.bin` + `config.json` + a tokenizer or vocabulary file.
    Ct2,
}

#[derive(Clone, Debug)]
pub struct ModelFiles {
    pub dir: PathBuf,
    pub format: Format,
    /// Where the files came from, for logs and errors.
    pub origin: String,
}

const SIDE_FILES: [&str; 7] = [
    "config.json",
    "tokenizer.json",
    "generation_config.json",
    "preprocessor_config.json",
    "model.safetensors.index.json",
    "vocabulary.txt",
    "vocabulary.json",
];

struct WhisperSelect;

impl Select for WhisperSelect {
    fn select(&self, listing: &[String]) -> Vec<String> {
        let has = |name: &str| listing.iter().any(|file| file == name);
        if !has("config.json") {
            return Vec::new();
        }
        let mut chosen: Vec<String> =
            SIDE_FILES.iter().filter(|name| has(name)).map(|name| (*name).to_owned()).collect();
        if has("model.bin") {
            chosen.push("model.bin".to_owned());
            return chosen;
        }
        let shards: Vec<String> = listing
            .iter()
            .filter(|file| file.ends_with(".safetensors") && !file.contains('/'))
            .cloned()
            .collect();
        if shards.is_empty() || !has("tokenizer.json") {
            return Vec::new();
        }
        chosen.extend(shards);
        chosen
    }

    fn describe(&self) -> String {
        "config.json with *.safetensors and tokenizer.json, or a CTranslate2 model.bin".to_owned()
    }
}

fn looks_like_repo_id(location: &str) -> bool {
    let parts: Vec<&str> = location.split('/').collect();
    parts.len() == 2
        && parts.iter().all(|part| !part.is_empty() && *part != "." && *part != "..")
        && !location.starts_with('~')
}

/// The format of a local directory.
pub fn detect(dir: &Path) -> Result<Format, String> {
    if dir.join("model.bin").is_file() {
        return Ok(Format::Ct2);
    }
    if dir.join("model.safetensors").is_file() || dir.join("model.safetensors.index.json").is_file() {
        return Ok(Format::Safetensors);
    }
    Err(format!(
        "`{}` holds neither model.safetensors (Hugging Face) nor model.bin (CTranslate2)",
        dir.display()
    ))
}

/// Finds the checkpoint at `location` (a local directory or hub id).
pub fn resolve(location: &str, revision: &str, offline: bool) -> Result<ModelFiles, String> {
    let path = Path::new(location);
    if path.is_dir() {
        return Ok(ModelFiles {
            dir: path.to_path_buf(),
            format: detect(path)?,
            origin: path.display().to_string(),
        });
    }
    if path.exists() {
        return Err(format!("`{location}` is a file: give the checkpoint's directory"));
    }
    if !looks_like_repo_id(location) {
        return Err(format!(
            "model path `{location}` does not exist (give a local directory or a hub id such as openai/whisper-tiny)"
        ));
    }
    let repo = RepoRef { kind: RepoKind::Model, repo: location, revision };
    let snapshot = karma_hub::fetch(&repo, &WhisperSelect, offline).map_err(|error| error.to_string())?;
    let format = detect(&snapshot.dir)?;
    Ok(ModelFiles { dir: snapshot.dir, format, origin: format!("{location}@{}", snapshot.commit) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn hub_selection_takes_safetensors_or_ct2() {
        let hf = names(&[
            "config.json",
            "tokenizer.json",
            "model.safetensors",
            "pytorch_model.bin",
            "flax_model.msgpack",
        ]);
        let chosen = WhisperSelect.select(&hf);
        assert!(chosen.contains(&"model.safetensors".to_owned()));
        assert!(!chosen.iter().any(|name| name.ends_with(".msgpack") || name == "pytorch_model.bin"));
        let ct2 = names(&["config.json", "model.bin", "tokenizer.json", "vocabulary.txt"]);
        assert_eq!(WhisperSelect.select(&ct2).len(), 4);
        assert!(WhisperSelect.select(&names(&["model.bin"])).is_empty());
    }

    #[test]
    fn paths_and_hub_ids_are_told_apart() {
        assert!(looks_like_repo_id("openai/whisper-tiny"));
        assert!(!looks_like_repo_id("./models/x"));
        assert!(!looks_like_repo_id("/abs/dir"));
    }
}
