//! The author SDK: implement [`Model`] in safe Rust and list it in
//! [`export_plugin!`](crate::export_plugin). The SDK owns every unsafe edge: vtable glue, the
//! panic firewall, configuration validation and log forwarding.

#[doc(hidden)]
pub mod export;
mod firewall;
mod item;
mod logging;
mod model;
pub mod progress;

pub use export::ModelEntry;
pub use item::Item;
pub use model::{ContinuationRequest, Generation, Model, ModelContext, ScoredContinuations};

/// Everything a plugin author needs, in one import.
pub mod prelude {
    pub use super::{Generation, Item, Model, ModelContext};
    pub use crate::abi::{ErrorCode, Modality, ModelMeta, ModelType, PluginError};
    pub use crate::export_plugin;
}
