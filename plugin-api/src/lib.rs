//! `karma-plugin-api`: the one crate both `karma-host` and its model plugins link.
//!
//! * [`abi`] is the frozen, stable ABI: the root module a plugin exports, model metadata, batch
//!   items borrowed from host memory, outputs and errors. It changes only with a major version.
//! * [`sdk`] is what plugin authors use: the safe [`sdk::Model`] trait and the
//!   [`export_plugin!`] macro, which turn a Rust type into a loadable `.so`.
//!
//! A plugin is a `cdylib` crate depending only on this crate (and `serde` for its config):
//!
//! ```
//! use karma_plugin_api::sdk::prelude::*;
//!
//! struct Shout;
//!
//! impl Model for Shout {
//!     type Config = serde_json::Map<String, serde_json::Value>;
//!     type Prepared = Vec<String>;
//!     type Raw = Vec<String>;
//!     fn create(_: Self::Config, _: &ModelContext) -> Result<Self, PluginError> { Ok(Shout) }
//!     fn preprocess(&mut self, items: &[Item<'_>]) -> Result<Vec<String>, PluginError> {
//!         Ok(items.iter().map(|item| item.input().unwrap_or_default().to_owned()).collect())
//!     }
//!     fn run(&mut self, texts: Vec<String>) -> Result<Vec<String>, PluginError> {
//!         Ok(texts.into_iter().map(|text| text.to_uppercase()).collect())
//!     }
//!     fn postprocess(&mut self, raw: Vec<String>, _: &[Item<'_>])
//!         -> Result<Vec<Result<Generation, PluginError>>, PluginError> {
//!         Ok(raw.into_iter().map(|text| Ok(Generation::text(text))).collect())
//!     }
//! }
//!
//! fn shout_meta() -> ModelMeta { ModelMeta::new("me/shout", ModelType::TextGeneration) }
//!
//! export_plugin!(Shout => shout_meta);
//! # fn main() {}
//! ```
//!
//! See `plugin-api/README.md` for the full guide.

#![deny(missing_docs)]

pub mod abi;
pub mod sdk;

/// Items the [`export_plugin!`] expansion names; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use abi_stable::library::{
        __call_root_module_loader as call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult,
    };
    pub use abi_stable::std_types::{ROption, RResult, RStr, RVec};
}
