//! karma-host: the evaluation host for medical AI model plugins.
//!
//! The data path, in module order:
//!
//! ```text
//! plugins dir ──scan──> plugins::Registry ──(model name)──> plugins::ModelInstance
//!                                                               ^
//!                       datasets::item::OwnedItem ──view──> batch of borrowed BatchItems
//!                                                               │
//!                                     outputs paired by id <────┘
//! ```
//!
//! `cli` sits on top and is the only module that prints.

pub mod cache;
pub mod cli;
pub mod datasets;
pub mod engine;
pub mod env_vars;
pub mod grading;
pub mod metrics;
pub mod plugins;
pub mod processors;
pub mod report;
