//! Datasets and the items they produce. For now: the host's owned form of an item and its
//! borrowed ABI view.

pub mod item;
