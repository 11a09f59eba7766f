//! `karma-host info model NAME`.

use std::io::Write;

use super::{args::TableOrJson, find_model, output, ExitStatus};
use crate::plugins::{PluginStatus, Registry};

pub(super) fn model(registry: &Registry, name: &str, format: TableOrJson) -> anyhow::Result<ExitStatus> {
    let model = find_model(registry, name)?;
    let versions =
        registry.plugins.iter().find(|record| record.path == model.plugin_path).and_then(|record| {
            match &record.status {
                PluginStatus::Loaded { versions, .. } => Some(versions.clone()),
                PluginStatus::Rejected(_) => None,
            }
        });
    let mut document = serde_json::to_value(&model.meta)?;
    if let serde_json::Value::Object(map) = &mut document {
        map.insert("plugin".to_owned(), model.plugin_path.display().to_string().into());
        if let Some(versions) = &versions {
            map.insert("plugin_api_version".to_owned(), versions.plugin_api_version.clone().into());
            map.insert("plugin_rustc_version".to_owned(), versions.rustc_version.clone().into());
        }
    }
    let mut stdout = std::io::stdout().lock();
    match format {
        TableOrJson::Json => output::json(&mut stdout, &document)?,
        TableOrJson::Table => {
            let serde_json::Value::Object(map) = document else {
                output::json(&mut stdout, &document)?;
                return Ok(ExitStatus::Success);
            };
            let width = map.keys().map(String::len).max().unwrap_or(0);
            for (key, value) in map {
                let text = match value {
                    serde_json::Value::String(text) => text,
                    serde_json::Value::Array(list) if list.iter().all(serde_json::Value::is_string) => {
                        list.iter().filter_map(serde_json::Value::as_str).collect::<Vec<_>>().join(", ")
                    }
                    other => other.to_string(),
                };
                writeln!(stdout, "{key:<width$}  {text}")?;
            }
        }
    }
    Ok(ExitStatus::Success)
}
