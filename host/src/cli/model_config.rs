//! The configuration a plugin receives: metadata defaults < `--model-config` file <
//! `--model-args` JSON, plus `model_path` from `--model-path`.

use std::path::Path;

use anyhow::{bail, Context};
use serde_json::{Map, Value};

use super::diagnostics::Hinted;

fn json_object_hint() -> String {
    "pass a JSON object, e.g. --model-args '{\"temperature\": 0}'".to_owned()
}

/// Merges the layers; every problem is an error naming its source.
pub(super) fn merge(
    defaults: &Map<String, Value>,
    config_file: Option<&Path>,
    model_args: Option<&str>,
    model_path: Option<&str>,
) -> anyhow::Result<Value> {
    let mut config = defaults.clone();
    if let Some(path) = config_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --model-config `{}`", path.display()))?;
        let is_toml = path.extension().is_some_and(|extension| extension == "toml");
        let parsed: Value = if is_toml {
            let table: toml::Table = toml::from_str(&text).map_err(|error| Hinted {
                message: format!("--model-config `{}` is not valid TOML: {error}", path.display()),
                hint: "write `key = value` lines, or use a .json file".to_owned(),
            })?;
            serde_json::to_value(table)?
        } else {
            serde_json::from_str(&text).map_err(|error| Hinted {
                message: format!("--model-config `{}` is not valid JSON: {error}", path.display()),
                hint: "use a JSON object, or a .toml file".to_owned(),
            })?
        };
        let Value::Object(layer) = parsed else {
            bail!(Hinted {
                message: format!("--model-config `{}` must hold an object", path.display()),
                hint: json_object_hint()
            });
        };
        config.extend(layer);
    }
    if let Some(text) = model_args {
        let parsed: Value = serde_json::from_str(text).map_err(|error| Hinted {
            message: format!("--model-args is not valid JSON: {error}"),
            hint: json_object_hint(),
        })?;
        let Value::Object(layer) = parsed else {
            bail!(Hinted {
                message: "--model-args must be a JSON object".to_owned(),
                hint: json_object_hint()
            });
        };
        config.extend(layer);
    }
    if let Some(path) = model_path {
        config.insert("model_path".to_owned(), path.into());
    }
    Ok(Value::Object(config))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn layers_override_in_order() {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("model.toml");
        std::fs::write(&file, "temperature = 0.5\nmax_tokens = 64\n").unwrap();
        let defaults =
            json!({"temperature": 1.0, "max_tokens": 16, "top_p": 0.9}).as_object().cloned().unwrap();
        let merged = merge(&defaults, Some(&file), Some(r#"{"max_tokens": 8}"#), Some("/weights")).unwrap();
        assert_eq!(
            merged,
            json!({"temperature": 0.5, "max_tokens": 8, "top_p": 0.9, "model_path": "/weights"})
        );
    }

    #[test]
    fn bad_layers_are_named() {
        let error = merge(&Map::new(), None, Some("[1]"), None).unwrap_err();
        assert_eq!(error.to_string(), "--model-args must be a JSON object");
        let error = merge(&Map::new(), Some(Path::new("/no/such.json")), None, None).unwrap_err();
        assert!(error.to_string().contains("cannot read --model-config `/no/such.json`"));
    }
}
