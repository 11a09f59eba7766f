//! Glue between a [`Model`] and the frozen ABI: the vtable functions, the model registry a plugin
//! declares with [`export_plugin!`](crate::export_plugin), and configuration validation.

use std::{marker::PhantomData, time::Instant};

use abi_stable::{
    prefix_type::{PrefixTypeTrait, WithMetadata},
    staticref,
    std_types::{ROption, RResult, RSlice, RStr, RString, RVec},
};

use super::{firewall::guard, logging, ContinuationRequest, Item, Model, ModelContext};
use crate::abi::{
    AbiInfo, BatchItem, ContinuationOutput, ContinuationRequest as RawContinuationRequest, ErrorCode,
    ExtensionRef, HostApi_Ref, ItemDetails, ItemDetailsTable, ItemOutput, LoglikelihoodTable,
    ModelDescriptor, ModelHandle, ModelMeta, ModelState, ModelVTable, ModelVTable_Ref, PluginError,
    PluginRoot, PluginRoot_Ref, ITEM_DETAILS_EXTENSION, LOGLIKELIHOOD_EXTENSION,
};

/// One model a plugin provides: its metadata and how to create it. Built by
/// [`export_plugin!`](crate::export_plugin); not meant to be used directly.
pub struct ModelEntry {
    meta: fn() -> ModelMeta,
    create: fn(HostApi_Ref, ModelMeta, &str) -> Result<ModelHandle, PluginError>,
}

impl ModelEntry {
    /// Pairs model type `M` with a metadata function.
    pub const fn new<M: Model>(meta: fn() -> ModelMeta) -> Self {
        ModelEntry { meta, create: create_instance::<M> }
    }
}

/// Builds the root module of a plugin providing `entries`.
#[doc(hidden)]
pub fn build_root(
    models: extern "C" fn() -> RResult<RVec<ModelDescriptor>, PluginError>,
    create: extern "C" fn(HostApi_Ref, RStr<'_>, RStr<'_>) -> RResult<ModelHandle, PluginError>,
    get_extension: extern "C" fn(RStr<'_>) -> ROption<ExtensionRef>,
) -> PluginRoot_Ref {
    PluginRoot {
        abi_info: AbiInfo {
            major: crate::abi::ABI_MAJOR,
            minor: crate::abi::ABI_MINOR,
            plugin_api_version: RStr::from_str(crate::abi::PLUGIN_API_VERSION),
            rustc_version: RStr::from_str(crate::abi::RUSTC_VERSION),
        },
        models,
        create,
        #[cfg(feature = "test-different-abi")]
        different_abi_marker: 2,
        get_extension,
    }
    .leak_into_prefix()
}

/// The `models` entry point.
#[doc(hidden)]
pub fn list_models(entries: &[ModelEntry]) -> RResult<RVec<ModelDescriptor>, PluginError> {
    guard("models", || {
        entries
            .iter()
            .map(|entry| {
                let meta = (entry.meta)();
                let meta_json = serde_json::to_string(&meta).map_err(|error| {
                    PluginError::new(
                        ErrorCode::INTERNAL,
                        format!("metadata of `{}` cannot be serialized: {error}", meta.name),
                    )
                })?;
                Ok(ModelDescriptor { name: RString::from(meta.name), meta_json: RString::from(meta_json) })
            })
            .collect()
    })
    .into()
}

/// The `create` entry point.
#[doc(hidden)]
pub fn create_model(
    entries: &[ModelEntry],
    host: HostApi_Ref,
    model_name: RStr<'_>,
    config_json: RStr<'_>,
) -> RResult<ModelHandle, PluginError> {
    guard("create", || {
        logging::install(host);
        let wanted = model_name.as_str();
        let mut known = Vec::with_capacity(entries.len());
        for entry in entries {
            let meta = (entry.meta)();
            if meta.name == wanted {
                return (entry.create)(host, meta, config_json.as_str());
            }
            known.push(meta.name);
        }
        Err(PluginError::new(
            ErrorCode::NOT_FOUND,
            format!("this plugin has no model `{wanted}` (it provides: {})", known.join(", ")),
        ))
    })
    .into()
}

/// Merges the metadata defaults under the given configuration, splits off `model_path`, and
/// deserializes the rest, rejecting keys the model does not read.
fn parse_config<M: Model>(
    meta: &ModelMeta,
    config_json: &str,
) -> Result<(M::Config, Option<String>), PluginError> {
    let invalid = |message: String| PluginError::new(ErrorCode::INVALID_INPUT, message);
    let given: serde_json::Map<String, serde_json::Value> = if config_json.trim().is_empty() {
        serde_json::Map::new()
    } else {
        serde_json::from_str(config_json).map_err(|error| {
            invalid(format!("configuration of `{}` is not a JSON object: {error}", meta.name))
        })?
    };
    let mut merged = meta.loader_kwargs.clone();
    merged.extend(given);
    let model_path = match merged.remove("model_path") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(path)) => Some(path),
        Some(other) => return Err(invalid(format!("`model_path` must be a string, got {other}"))),
    };
    let mut unknown = Vec::new();
    let config =
        serde_ignored::deserialize(serde_json::Value::Object(merged), |path| unknown.push(path.to_string()))
            .map_err(|error| invalid(format!("invalid configuration for `{}`: {error}", meta.name)))?;
    if !unknown.is_empty() {
        let mut known: Vec<&str> = meta.loader_kwargs.keys().map(String::as_str).collect();
        known.push("model_path");
        return Err(invalid(format!(
            "unknown configuration key{} {} for `{}` (known keys: {})",
            if unknown.len() == 1 { "" } else { "s" },
            unknown.iter().map(|key| format!("`{key}`")).collect::<Vec<_>>().join(", "),
            meta.name,
            known.join(", "),
        )));
    }
    Ok((config, model_path))
}

/// Heap state behind a [`ModelHandle`].
struct Instance<M> {
    model: M,
    loaded: bool,
    /// The details of the last batch's items, until the host takes them.
    details: Vec<ItemDetails>,
}

fn create_instance<M: Model>(
    _host: HostApi_Ref,
    meta: ModelMeta,
    config_json: &str,
) -> Result<ModelHandle, PluginError> {
    let (config, model_path) = parse_config::<M>(&meta, config_json)?;
    let context = ModelContext { model_name: meta.name.clone(), meta, model_path };
    let model = M::create(config, &context)?;
    let instance = Box::new(Instance { model, loaded: false, details: Vec::new() });
    Ok(ModelHandle { state: Box::into_raw(instance).cast::<ModelState>(), vtable: VTable::<M>::VTABLE })
}

/// The vtable of model type `M`, one `'static` per type.
struct VTable<M>(PhantomData<M>);

impl<M: Model> VTable<M> {
    staticref! {
        const WITH_METADATA: WithMetadata<ModelVTable> = WithMetadata::new(ModelVTable {
            load: load::<M>,
            run: run::<M>,
            destroy: destroy::<M>,
            get_extension: get_extension::<M>,
        })
    }
    const VTABLE: ModelVTable_Ref = ModelVTable_Ref(Self::WITH_METADATA.as_prefix());
}

/// # Safety
/// `state` must come from [`create_instance::<M>`] and not be destroyed or used concurrently.
unsafe fn instance<'a, M>(state: *mut ModelState) -> &'a mut Instance<M> {
    unsafe { &mut *state.cast::<Instance<M>>() }
}

unsafe extern "C" fn load<M: Model>(state: *mut ModelState) -> RResult<(), PluginError> {
    let instance = unsafe { instance::<M>(state) };
    guard("load", || {
        instance.model.load()?;
        instance.loaded = true;
        Ok(())
    })
    .into()
}

unsafe extern "C" fn run<M: Model>(
    state: *mut ModelState,
    items: RSlice<'_, BatchItem<'_>>,
) -> RResult<RVec<ItemOutput>, PluginError> {
    let instance = unsafe { instance::<M>(state) };
    guard("run", || {
        if !instance.loaded {
            return Err(PluginError::new(ErrorCode::NOT_LOADED, "`run` called before a successful `load`"));
        }
        let started = Instant::now();
        let items: Vec<Item<'_>> = items.iter().map(Item::new).collect();
        let prepared = instance.model.preprocess(&items)?;
        let raw = instance.model.run(prepared)?;
        let results = instance.model.postprocess(raw, &items)?;
        if results.len() != items.len() {
            return Err(PluginError::new(
                ErrorCode::INTERNAL,
                format!("postprocess returned {} results for {} items", results.len(), items.len()),
            ));
        }
        let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        instance.details.clear();
        for (item, result) in items.iter().zip(&results) {
            if let Ok(generation) = result {
                if !generation.details.is_empty() {
                    let json = serde_json::Value::Object(generation.details.clone()).to_string();
                    instance.details.push(ItemDetails { id: item.id(), json: RString::from(json) });
                }
            }
        }
        Ok(items
            .iter()
            .zip(results)
            .map(|(item, result)| match result {
                Ok(generation) => ItemOutput {
                    id: item.id(),
                    result: RResult::ROk(RString::from(generation.text)),
                    prompt_tokens: generation.prompt_tokens.into(),
                    completion_tokens: generation.completion_tokens.into(),
                    latency_us,
                },
                Err(error) => ItemOutput {
                    id: item.id(),
                    result: RResult::RErr(error),
                    prompt_tokens: ROption::RNone,
                    completion_tokens: ROption::RNone,
                    latency_us,
                },
            })
            .collect())
    })
    .into()
}

unsafe extern "C" fn destroy<M: Model>(state: *mut ModelState) {
    let instance = unsafe { Box::from_raw(state.cast::<Instance<M>>()) };
    // A panicking Drop must not unwind into the host; there is nobody to report it to but the log.
    let _ = guard("destroy", move || {
        drop(instance);
        Ok(())
    });
}

unsafe extern "C" fn get_extension<M: Model>(state: *mut ModelState, id: RStr<'_>) -> ROption<ExtensionRef> {
    let instance = unsafe { instance::<M>(state) };
    guard("get_extension", || {
        if id.as_str() == LOGLIKELIHOOD_EXTENSION && instance.model.scores_continuations() {
            return Ok(Some(ExtensionRef::new(VTable::<M>::LOGLIKELIHOOD)));
        }
        if id.as_str() == ITEM_DETAILS_EXTENSION {
            return Ok(Some(ExtensionRef::new(VTable::<M>::ITEM_DETAILS)));
        }
        Ok(instance.model.extension(id.as_str()))
    })
    .ok()
    .flatten()
    .into()
}

impl<M: Model> VTable<M> {
    const LOGLIKELIHOOD: &'static LoglikelihoodTable =
        &LoglikelihoodTable { score: score_continuations::<M> };
    const ITEM_DETAILS: &'static ItemDetailsTable = &ItemDetailsTable { take: take_details::<M> };
}

unsafe extern "C" fn take_details<M: Model>(state: *mut ModelState) -> RVec<ItemDetails> {
    let instance = unsafe { instance::<M>(state) };
    RVec::from(std::mem::take(&mut instance.details))
}

unsafe extern "C" fn score_continuations<M: Model>(
    state: *mut ModelState,
    requests: RSlice<'_, RawContinuationRequest<'_>>,
) -> RResult<RVec<ContinuationOutput>, PluginError> {
    let instance = unsafe { instance::<M>(state) };
    guard("score_continuations", || {
        if !instance.loaded {
            return Err(PluginError::new(
                ErrorCode::NOT_LOADED,
                "`score_continuations` called before a successful `load`",
            ));
        }
        let requests: Vec<ContinuationRequest<'_>> = requests
            .iter()
            .map(|request| ContinuationRequest {
                id: request.id,
                context: request.context.as_str(),
                continuations: request.continuations.iter().map(|text| text.as_str()).collect(),
            })
            .collect();
        let results = instance.model.score_continuations(&requests)?;
        if results.len() != requests.len() {
            return Err(PluginError::new(
                ErrorCode::INTERNAL,
                format!(
                    "score_continuations returned {} results for {} requests",
                    results.len(),
                    requests.len()
                ),
            ));
        }
        Ok(requests
            .iter()
            .zip(results)
            .map(|(request, result)| match result {
                Ok(scored) => ContinuationOutput {
                    id: request.id,
                    result: RResult::ROk(scored.scores.into()),
                    context_tokens: scored.context_tokens,
                },
                Err(error) => {
                    ContinuationOutput { id: request.id, result: RResult::RErr(error), context_tokens: 0 }
                }
            })
            .collect())
    })
    .into()
}

/// Registers a plugin's models and exports the root module the host loads.
///
/// Write it once at the top level of the plugin crate (`crate-type = ["cdylib", "rlib"]`),
/// listing each model type with a function returning its [`ModelMeta`]. A type may appear
/// several times with different metadata (one implementation serving several checkpoints).
///
/// ```text
/// karma_plugin_api::export_plugin! {
///     EchoModel => echo_meta,
///     ConstantModel => constant_meta,
/// }
/// ```
///
/// The crate-level documentation has a complete, compiled example.
///
/// Plugins must be built with `panic = "unwind"` (the default): with `panic = "abort"` a panic
/// would kill the host, so the macro refuses to compile.
#[macro_export]
macro_rules! export_plugin {
    ($($model:ty => $meta:expr),+ $(,)?) => {
        #[cfg(panic = "abort")]
        compile_error!(
            "karma plugins must be built with `panic = \"unwind\"`: with `panic = \"abort\"` a panic \
             in the plugin would abort the host. Remove `panic = \"abort\"` from your Cargo profile."
        );

        const _: () = {
            static MODELS: &[$crate::sdk::ModelEntry] = &[$($crate::sdk::ModelEntry::new::<$model>($meta)),+];

            extern "C" fn models() -> $crate::__private::RResult<
                $crate::__private::RVec<$crate::abi::ModelDescriptor>,
                $crate::abi::PluginError,
            > {
                $crate::sdk::export::list_models(MODELS)
            }

            extern "C" fn create(
                host: $crate::abi::HostApi_Ref,
                model_name: $crate::__private::RStr<'_>,
                config_json: $crate::__private::RStr<'_>,
            ) -> $crate::__private::RResult<$crate::abi::ModelHandle, $crate::abi::PluginError> {
                $crate::sdk::export::create_model(MODELS, host, model_name, config_json)
            }

            extern "C" fn get_extension(
                _id: $crate::__private::RStr<'_>,
            ) -> $crate::__private::ROption<$crate::abi::ExtensionRef> {
                $crate::__private::ROption::RNone
            }

            fn root_module() -> $crate::abi::PluginRoot_Ref {
                $crate::sdk::export::build_root(models, create, get_extension)
            }

            extern "C" fn root_module_loader() -> $crate::__private::RootModuleResult {
                $crate::__private::call_root_module_loader(root_module)
            }

            // abi_stable's library header under its fixed symbol name; the host finds the
            // plugin through it.
            #[unsafe(export_name = "_1as_0lib_1header_0root_bmodule_bloader")]
            static ROOT: $crate::__private::LibHeader = unsafe {
                $crate::__private::LibHeader::from_constructor::<$crate::abi::PluginRoot_Ref>(
                    root_module_loader,
                    $crate::__private::CheckTypeLayout::Yes,
                )
            };
        };
    };
}
