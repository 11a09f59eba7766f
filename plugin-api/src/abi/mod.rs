//! The frozen stable ABI between `karma-host` and model plugins.
//!
//! Everything in this module crosses a `cdylib` boundary between binaries built by different
//! rustc versions, so it is made of `#[repr(C)]` [`StableAbi`](abi_stable::StableAbi) types and
//! `extern "C"` functions only.
//!
//! # Growth rules (read before changing anything here)
//!
//! * abi_stable accepts a plugin only when it is at least as new as the host's view of every
//!   prefix type. Our users need the opposite (a newer host must load older plugins), so **every
//!   type reachable from [`PluginRoot`] is frozen for a whole ABI major version**: no field is
//!   added, removed, renamed or retyped. `tests/abi_layout.rs` fails on any change.
//! * New capabilities are added as *extensions*: string ids such as `"karma.model.loglik/1"`
//!   answered by [`PluginRoot::get_extension`], [`ModelVTable::get_extension`] or
//!   [`HostApi::get_extension`], each returning an [`ExtensionRef`] whose own layout the receiver
//!   checks before use.
//! * Evolvable descriptive data (model metadata) travels as JSON validated with serde on the
//!   host side, so adding an optional metadata field is never an ABI change.
//! * Open enumerations ([`ErrorCode`], [`LogLevel`]) are integer newtypes with associated
//!   constants, so a new value is not an ABI change either.
//! * This module never imports [`crate::sdk`]; the split into two crates stays a mechanical move.

// abi_stable names the generated prefix references `Foo_Ref`; we keep its convention so its
// documentation applies verbatim.
#![allow(non_camel_case_types)]

mod batch;
mod error;
mod extension;
mod host_api;
mod item_details;
mod loglikelihood;
mod meta;
mod output;
mod progress;
mod root;
mod version;

pub use batch::{BatchItem, Media, RubricCriterion, Turn};
pub use error::{ErrorCode, PluginError};
pub use extension::ExtensionRef;
pub use host_api::{HostApi, HostApi_Ref, HostContext, HostContextPtr, LogLevel};
pub use item_details::{ItemDetails, ItemDetailsTable, ITEM_DETAILS_EXTENSION};
pub use loglikelihood::{
    ContinuationOutput, ContinuationRequest, ContinuationScore, LoglikelihoodTable, LOGLIKELIHOOD_EXTENSION,
};
pub use meta::{Modality, ModelDescriptor, ModelMeta, ModelType};
pub use output::ItemOutput;
pub use progress::{ProgressTable, PROGRESS_EXTENSION};
pub use root::{AbiInfo, ModelHandle, ModelState, ModelVTable, ModelVTable_Ref, PluginRoot, PluginRoot_Ref};
pub use version::{ABI_MAJOR, ABI_MINOR, ABI_VERSION, PLUGIN_API_VERSION, ROOT_SYMBOL, RUSTC_VERSION};
