//! `karma-host list models|plugins`.

use std::io::Write;

use serde_json::json;

use super::{
    args::{ListFormat, TableOrJson},
    output, ExitStatus,
};
use crate::plugins::{PluginStatus, Registry};

pub(super) fn models(registry: &Registry, format: ListFormat) -> anyhow::Result<ExitStatus> {
    let duplicates = registry.duplicates();
    let mut stdout = std::io::stdout().lock();
    match format {
        ListFormat::Json => {
            let models: Vec<_> = registry
                .models
                .iter()
                .map(|model| {
                    json!({
                        "name": model.meta.name,
                        "model_type": model.meta.model_type.as_str(),
                        "modalities": model.meta.modalities.iter().map(|modality| modality.as_str()).collect::<Vec<_>>(),
                        "plugin": model.plugin_path.display().to_string(),
                        "description": model.meta.description,
                        "framework": model.meta.framework,
                        "duplicate": duplicates.contains_key(model.meta.name.as_str()),
                    })
                })
                .collect();
            output::json(&mut stdout, &json!({ "models": models }))?;
        }
        ListFormat::Table | ListFormat::Csv => {
            let rows: Vec<Vec<String>> = registry
                .models
                .iter()
                .map(|model| {
                    let mut name = model.meta.name.clone();
                    if format == ListFormat::Table && duplicates.contains_key(name.as_str()) {
                        name.push_str(" (DUPLICATE)");
                    }
                    vec![
                        name,
                        model.meta.model_type.as_str().to_owned(),
                        model
                            .meta
                            .modalities
                            .iter()
                            .map(|modality| modality.as_str())
                            .collect::<Vec<_>>()
                            .join(","),
                        model.plugin_path.display().to_string(),
                    ]
                })
                .collect();
            if format == ListFormat::Csv {
                output::csv(&mut stdout, &["name", "model_type", "modalities", "plugin"], &rows)?;
            } else if rows.is_empty() {
                writeln!(stdout, "no models registered (see `karma-host list plugins`)")?;
            } else {
                output::table(&mut stdout, &["NAME", "TYPE", "MODALITIES", "PLUGIN"], &rows)?;
            }
        }
    }
    Ok(ExitStatus::Success)
}

pub(super) fn plugins(registry: &Registry, format: TableOrJson, verbose: bool) -> anyhow::Result<ExitStatus> {
    let mut stdout = std::io::stdout().lock();
    match format {
        TableOrJson::Json => {
            let plugins: Vec<_> = registry
                .plugins
                .iter()
                .map(|record| match &record.status {
                    PluginStatus::Loaded { versions, models } => json!({
                        "path": record.path.display().to_string(),
                        "status": "loaded",
                        "reason": null,
                        "code": null,
                        "hint": null,
                        "plugin_api_version": versions.plugin_api_version,
                        "abi_version": format!("{}.{}", versions.abi_major, versions.abi_minor),
                        "rustc_version": versions.rustc_version,
                        "models": models,
                    }),
                    PluginStatus::Rejected(rejection) => json!({
                        "path": record.path.display().to_string(),
                        "status": "rejected",
                        "reason": rejection.reason,
                        "code": rejection.code.as_str(),
                        "hint": rejection.hint,
                        "plugin_api_version": null,
                        "abi_version": null,
                        "rustc_version": null,
                        "models": [],
                    }),
                })
                .collect();
            output::json(&mut stdout, &json!({ "plugins": plugins }))?;
        }
        TableOrJson::Table => {
            if registry.plugins.is_empty() {
                writeln!(stdout, "no plugin files found")?;
            }
            for record in &registry.plugins {
                match &record.status {
                    PluginStatus::Loaded { versions, models } => writeln!(
                        stdout,
                        "loaded    {}  (plugin-api {}, {}): {}",
                        record.path.display(),
                        versions.plugin_api_version,
                        versions.rustc_version,
                        models.join(", ")
                    )?,
                    PluginStatus::Rejected(rejection) => {
                        writeln!(stdout, "rejected  {}: {}", record.path.display(), rejection.reason)?;
                        if let Some(hint) = &rejection.hint {
                            writeln!(stdout, "          hint: {hint}")?;
                        }
                        if let (true, Some(detail)) = (verbose, &rejection.detail) {
                            for line in detail.lines() {
                                writeln!(stdout, "          | {line}")?;
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(ExitStatus::Success)
}
