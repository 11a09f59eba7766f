//! A model instance created by a plugin, driven through its vtable. Everything coming back
//! from the plugin is checked: an output must exist for every item, once, and only for items
//! that were sent.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use abi_stable::{
    abi_stability::abi_checking::check_layout_compatibility,
    std_types::{ROption, RResult, RSlice, RStr},
    StableAbi,
};
use karma_plugin_api::abi::{
    BatchItem, ContinuationOutput, ContinuationRequest, ItemDetailsTable, ItemOutput, LoglikelihoodTable,
    ModelHandle, PluginError, ITEM_DETAILS_EXTENSION, LOGLIKELIHOOD_EXTENSION,
};

use super::RegisteredModel;

/// A failure of a plugin call, naming the model, plugin and entry point.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("model `{model}` ({plugin}) failed in `{entry_point}`: {error}")]
    Plugin { model: String, plugin: PathBuf, entry_point: &'static str, error: Box<PluginError> },
    #[error("model `{model}` ({plugin}) broke the output contract: {problem}")]
    BadOutputs { model: String, plugin: PathBuf, problem: String },
    #[error("model `{model}` ({plugin}): {problem}")]
    /// The model cannot be called at all: its plugin no longer loads, or its workers keep dying.
    Unusable { model: String, plugin: PathBuf, problem: String },
    /// A call's error as a worker process wrote it (already naming the model and plugin).
    #[error("{0}")]
    Relayed(String),
    #[error("model `{model}` ({plugin}) offers extension `{id}` with an incompatible layout: {problem}")]
    BadExtension { model: String, plugin: PathBuf, id: String, problem: String },
}

impl CallError {
    /// Whether the failure ends the dataset instead of failing the batch's items one by one:
    /// refused credentials (a worker relays the error as text, ending in the code's name).
    pub fn stops_dataset(&self) -> bool {
        let unauthenticated = karma_plugin_api::abi::ErrorCode::UNAUTHENTICATED;
        match self {
            CallError::Plugin { error, .. } => error.code == unauthenticated,
            CallError::Relayed(message) => message.ends_with(&format!("({})", unauthenticated.name())),
            _ => false,
        }
    }
}

/// An instance of a registered model. Destroyed through its vtable when dropped.
pub struct ModelInstance {
    handle: ModelHandle,
    model: String,
    plugin: PathBuf,
    /// The `karma.model.item_details/1` table, once looked up (a layout check costs more than
    /// a small batch: it is done once per instance, not per batch).
    item_details: Option<Option<&'static ItemDetailsTable>>,
}

impl ModelInstance {
    /// Asks the plugin to validate `config_json` and create an instance (cheap: no weights).
    pub fn create(model: &RegisteredModel, config_json: &str) -> Result<Self, CallError> {
        let (root, host) =
            super::plugin_root(&model.plugin_path).map_err(|rejection| CallError::Unusable {
                model: model.meta.name.clone(),
                plugin: model.plugin_path.clone(),
                problem: format!("the plugin no longer loads: {}", rejection.reason),
            })?;
        let result = (root.create())(host, RStr::from_str(&model.meta.name), RStr::from_str(config_json));
        match result {
            RResult::ROk(handle) => Ok(ModelInstance {
                handle,
                model: model.meta.name.clone(),
                plugin: model.plugin_path.clone(),
                item_details: None,
            }),
            RResult::RErr(error) => Err(CallError::Plugin {
                model: model.meta.name.clone(),
                plugin: model.plugin_path.clone(),
                entry_point: "create",
                error: Box::new(error),
            }),
        }
    }

    /// Loads weights and clients.
    pub fn load(&mut self) -> Result<(), CallError> {
        // SAFETY: the handle came from this plugin's `create` and is used by one thread at a time.
        match unsafe { (self.handle.vtable.load())(self.handle.state) } {
            RResult::ROk(()) => Ok(()),
            RResult::RErr(error) => Err(self.plugin_error("load", error)),
        }
    }

    /// Runs one batch and returns the outputs in item order, paired by id.
    pub fn run(&mut self, items: &[BatchItem<'_>]) -> Result<Vec<ItemOutput>, CallError> {
        // SAFETY: as in `load`; `items` outlive the call.
        let outputs =
            match unsafe { (self.handle.vtable.run())(self.handle.state, RSlice::from_slice(items)) } {
                RResult::ROk(outputs) => outputs,
                RResult::RErr(error) => return Err(self.plugin_error("run", error)),
            };
        pair_by_id(items, outputs.into_vec()).map_err(|problem| CallError::BadOutputs {
            model: self.model.clone(),
            plugin: self.plugin.clone(),
            problem,
        })
    }

    /// The instance's extension `id` (e.g. `karma.model.loglik/1`) as a `T`, after checking the
    /// plugin's table has `T`'s layout. `None` when the model does not offer it.
    pub fn extension<T: StableAbi>(&self, id: &str) -> Result<Option<&'static T>, CallError> {
        // SAFETY: as in `load`.
        let found = unsafe { (self.handle.vtable.get_extension())(self.handle.state, RStr::from_str(id)) };
        let ROption::RSome(extension) = found else { return Ok(None) };
        check_layout_compatibility(T::LAYOUT, extension.layout).map_err(|errors| {
            CallError::BadExtension {
                model: self.model.clone(),
                plugin: self.plugin.clone(),
                id: id.to_owned(),
                problem: super::loader::last_error_line(&errors.to_string()),
            }
        })?;
        // SAFETY: the table is a `'static` value whose layout was just checked to be `T`'s.
        Ok(Some(unsafe { &*extension.table.cast::<T>() }))
    }

    /// The details of the last batch's items by id (`karma.model.item_details/1`); empty when
    /// the plugin does not offer the extension (or offers it with a layout this host cannot
    /// read: a warning, once). A detail that is not a JSON object is a contract violation.
    pub fn take_item_details(&mut self) -> Result<HashMap<u64, String>, CallError> {
        let table = match self.item_details {
            Some(table) => table,
            None => {
                // An optional extension: one the host cannot read costs the details, not the run.
                let table =
                    self.extension::<ItemDetailsTable>(ITEM_DETAILS_EXTENSION).unwrap_or_else(|error| {
                        tracing::warn!("{error}; its answers are used without their details");
                        None
                    });
                self.item_details = Some(table);
                table
            }
        };
        let Some(table) = table else { return Ok(HashMap::new()) };
        // SAFETY: as in `load`; the table's layout was checked by `extension`.
        let details = unsafe { (table.take)(self.handle.state) };
        details
            .into_iter()
            .map(|detail| {
                let json = detail.json.into_string();
                match serde_json::from_str::<serde_json::Value>(&json) {
                    Ok(serde_json::Value::Object(_)) => Ok((detail.id, json)),
                    _ => Err(CallError::BadOutputs {
                        model: self.model.clone(),
                        plugin: self.plugin.clone(),
                        problem: format!("the details of item {} are not a JSON object", detail.id),
                    }),
                }
            })
            .collect()
    }

    /// Whether the instance scores continuations by log-likelihood.
    pub fn scores_continuations(&self) -> Result<bool, CallError> {
        Ok(self.extension::<LoglikelihoodTable>(LOGLIKELIHOOD_EXTENSION)?.is_some())
    }

    /// Scores each request's continuations; outputs in request order, paired by id.
    pub fn score_continuations(
        &mut self,
        requests: &[ContinuationRequest<'_>],
    ) -> Result<Vec<ContinuationOutput>, CallError> {
        let table = self.extension::<LoglikelihoodTable>(LOGLIKELIHOOD_EXTENSION)?.ok_or_else(|| {
            self.plugin_error(
                "score_continuations",
                PluginError::new(
                    karma_plugin_api::abi::ErrorCode::UNSUPPORTED,
                    format!("the model does not offer `{LOGLIKELIHOOD_EXTENSION}`"),
                ),
            )
        })?;
        // SAFETY: as in `load`; the table's layout was checked by `extension`.
        let outputs = match unsafe { (table.score)(self.handle.state, RSlice::from_slice(requests)) } {
            RResult::ROk(outputs) => outputs.into_vec(),
            RResult::RErr(error) => return Err(self.plugin_error("score_continuations", error)),
        };
        let ids: Vec<u64> = requests.iter().map(|request| request.id).collect();
        let mut by_id: HashMap<u64, ContinuationOutput> = HashMap::with_capacity(outputs.len());
        let returned = outputs.len();
        for output in outputs {
            by_id.insert(output.id, output);
        }
        let bad = |problem: String| CallError::BadOutputs {
            model: self.model.clone(),
            plugin: self.plugin.clone(),
            problem,
        };
        if returned != ids.len() || by_id.len() != ids.len() {
            return Err(bad(format!(
                "{returned} continuation outputs (distinct ids: {}) for {} requests",
                by_id.len(),
                ids.len()
            )));
        }
        ids.iter()
            .zip(requests)
            .map(|(id, request)| {
                let output = by_id
                    .remove(id)
                    .ok_or_else(|| bad(format!("no continuation output for request {id}")))?;
                if let RResult::ROk(scores) = &output.result {
                    if scores.len() != request.continuations.len() {
                        return Err(bad(format!(
                            "request {id}: {} scores for {} continuations",
                            scores.len(),
                            request.continuations.len()
                        )));
                    }
                }
                Ok(output)
            })
            .collect()
    }

    fn plugin_error(&self, entry_point: &'static str, error: PluginError) -> CallError {
        CallError::Plugin {
            model: self.model.clone(),
            plugin: self.plugin.clone(),
            entry_point,
            error: Box::new(error),
        }
    }
}

impl Drop for ModelInstance {
    fn drop(&mut self) {
        // SAFETY: the handle is destroyed exactly once, here.
        unsafe { (self.handle.vtable.destroy())(self.handle.state) };
    }
}

/// The plugin's file name, used to tag its log events.
pub(crate) fn plugin_label(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Orders `outputs` like `items`, matching by id; never by position.
fn pair_by_id(items: &[BatchItem<'_>], outputs: Vec<ItemOutput>) -> Result<Vec<ItemOutput>, String> {
    let position: HashMap<u64, usize> =
        items.iter().enumerate().map(|(index, item)| (item.id, index)).collect();
    let mut slots: Vec<Option<ItemOutput>> = (0..items.len()).map(|_| None).collect();
    let (mut unknown, mut duplicate) = (Vec::new(), Vec::new());
    let returned = outputs.len();
    for output in outputs {
        match position.get(&output.id) {
            None => unknown.push(output.id),
            Some(&index) if slots[index].is_some() => duplicate.push(output.id),
            Some(&index) => slots[index] = Some(output),
        }
    }
    let missing: Vec<u64> =
        items.iter().zip(&slots).filter(|(_, slot)| slot.is_none()).map(|(item, _)| item.id).collect();
    if unknown.is_empty() && duplicate.is_empty() && missing.is_empty() {
        return Ok(slots.into_iter().flatten().collect());
    }
    let mut problems = vec![format!("{returned} outputs for {} items", items.len())];
    for (label, ids) in [("missing", &missing), ("duplicate", &duplicate), ("unknown", &unknown)] {
        if !ids.is_empty() {
            problems.push(format!("{label} ids {ids:?}"));
        }
    }
    Err(problems.join(", "))
}

#[cfg(test)]
mod tests {
    use abi_stable::std_types::RString;

    use super::*;

    fn item(id: u64) -> BatchItem<'static> {
        BatchItem {
            id,
            input: ROption::RNone,
            system_prompt: ROption::RNone,
            conversation: RSlice::EMPTY,
            images: RSlice::EMPTY,
            audio: ROption::RNone,
            video: ROption::RNone,
            expected_output: ROption::RNone,
            rubric: RSlice::EMPTY,
            other_args_json: RStr::from_str("{}"),
        }
    }

    fn output(id: u64, text: &str) -> ItemOutput {
        ItemOutput {
            id,
            result: RResult::ROk(RString::from(text)),
            prompt_tokens: ROption::RNone,
            completion_tokens: ROption::RNone,
            latency_us: 0,
        }
    }

    #[test]
    fn outputs_are_paired_by_id_not_position() {
        let items = [item(10), item(20), item(30)];
        let paired = pair_by_id(&items, vec![output(30, "c"), output(10, "a"), output(20, "b")]).unwrap();
        let ids: Vec<u64> = paired.iter().map(|output| output.id).collect();
        assert_eq!(ids, [10, 20, 30]);
        assert_eq!(paired[0].result.as_ref().unwrap().as_str(), "a");
    }

    #[test]
    fn every_contract_violation_is_named() {
        let items = [item(1), item(2), item(3)];
        let problem =
            pair_by_id(&items, vec![output(1, "a"), output(1, "again"), output(9, "?")]).unwrap_err();
        assert_eq!(problem, "3 outputs for 3 items, missing ids [2, 3], duplicate ids [1], unknown ids [9]");
    }
}
