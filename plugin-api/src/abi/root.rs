//! The root module every plugin exports, and the model instance handle.

use abi_stable::{
    std_types::{ROption, RResult, RSlice, RStr, RVec},
    StableAbi,
};

use super::{BatchItem, ExtensionRef, HostApi_Ref, ItemOutput, ModelDescriptor, PluginError};

/// Versions recorded by the plugin's copy of `karma-plugin-api` at compile time.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct AbiInfo {
    /// [`super::ABI_MAJOR`] of the plugin.
    pub major: u16,
    /// [`super::ABI_MINOR`] of the plugin.
    pub minor: u16,
    /// The `karma-plugin-api` crate version the plugin was built with.
    pub plugin_api_version: RStr<'static>,
    /// `rustc --version` of the compiler that built the plugin (diagnostics only).
    pub rustc_version: RStr<'static>,
}

/// The root module: the only thing a plugin exports.
///
/// Frozen for the ABI major. Loaded by the host through abi_stable's header, which checks the
/// layout of this struct and everything reachable from it.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginRoot_Ref)))]
#[sabi(missing_field(panic))]
pub struct PluginRoot {
    /// Versions the plugin was built with.
    pub abi_info: AbiInfo,
    /// The models this plugin provides. Pure and cheap: called while listing.
    pub models: extern "C" fn() -> RResult<RVec<ModelDescriptor>, PluginError>,
    /// Creates an instance of `model_name` from its merged configuration (a JSON object).
    ///
    /// Only validates and stores the configuration (unknown keys are `INVALID_INPUT`); never
    /// loads weights or opens connections, so the host may call it for `--dry-run`.
    pub create: extern "C" fn(
        host: HostApi_Ref,
        model_name: RStr<'_>,
        config_json: RStr<'_>,
    ) -> RResult<ModelHandle, PluginError>,
    /// Test-only field that makes the root layout differ from ABI 1.
    #[cfg(feature = "test-different-abi")]
    pub different_abi_marker: u64,
    /// Plugin-wide capabilities by id; `RNone` when `id` is not offered.
    ///
    /// This is the last field of ABI 1: it never moves, and nothing is added below it until the
    /// ABI major changes.
    #[sabi(last_prefix_field)]
    pub get_extension: extern "C" fn(id: RStr<'_>) -> ROption<ExtensionRef>,
}

/// Opaque per-instance state; only the plugin that created it knows its real type.
#[repr(C)]
#[derive(StableAbi)]
pub struct ModelState {
    _private: [u8; 0],
}

/// A model instance: plugin-owned state plus the functions that operate on it.
///
/// The host calls `load` once, then `run` any number of times from one thread at a time, then
/// `destroy` exactly once. After `destroy` the handle must not be used.
#[repr(C)]
#[derive(StableAbi)]
pub struct ModelHandle {
    /// The instance.
    pub state: *mut ModelState,
    /// Its functions.
    pub vtable: ModelVTable_Ref,
}

// The host moves an instance to the thread that drives it; the SDK requires `Model: Send`.
unsafe impl Send for ModelHandle {}

/// Functions of a model instance. Frozen for the ABI major.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = ModelVTable_Ref)))]
#[sabi(missing_field(panic))]
pub struct ModelVTable {
    /// Loads weights, opens clients: the expensive part.
    pub load: unsafe extern "C" fn(state: *mut ModelState) -> RResult<(), PluginError>,
    /// Runs one batch. The items borrow host memory for the duration of the call. On success,
    /// one [`ItemOutput`] per item; a whole-batch failure is an `RErr`.
    pub run: unsafe extern "C" fn(
        state: *mut ModelState,
        items: RSlice<'_, BatchItem<'_>>,
    ) -> RResult<RVec<ItemOutput>, PluginError>,
    /// Frees the instance.
    pub destroy: unsafe extern "C" fn(state: *mut ModelState),
    /// Per-instance capabilities by id (log-likelihood scoring, streaming, embeddings, ...);
    /// `RNone` when `id` is not offered.
    ///
    /// This is the last field of ABI 1: it never moves, and nothing is added below it until the
    /// ABI major changes.
    #[sabi(last_prefix_field)]
    pub get_extension: unsafe extern "C" fn(state: *mut ModelState, id: RStr<'_>) -> ROption<ExtensionRef>,
}

/// The root module as abi_stable knows it.
impl abi_stable::library::RootModule for PluginRoot_Ref {
    abi_stable::declare_root_module_statics! {PluginRoot_Ref}

    const BASE_NAME: &'static str = "karma_plugin";
    const NAME: &'static str = "karma plugin";
    const VERSION_STRINGS: abi_stable::sabi_types::VersionStrings =
        abi_stable::sabi_types::VersionStrings::new(super::ABI_VERSION);
}
