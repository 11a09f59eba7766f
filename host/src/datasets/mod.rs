//! Datasets: the registry of definitions, where rows come from (local files, the hub), how rows
//! become items (schemas, prompts) and how answers are read back (extraction).

pub mod args;
pub mod catalog;
pub mod extract;
pub mod hub;
pub mod item;
pub mod media;
mod parquet_row;
pub mod prompt;
pub mod record;
pub mod row;
pub mod source;
pub mod task;
