//! Test helpers shared by the plugin's integration tests.

pub mod lossy;
pub mod tiny_whisper;
