//! Local Hugging Face causal LMs on candle, as a karma-host plugin.
//!
//! The data path inside the plugin: [`source`] finds the checkpoint (local directory, `.gguf`
//! file, HF cache or hub download), [`loader`] builds the [`arch`] network from safetensors or
//! GGUF [`weights`] with its [`tokenizer`] and [`chat`] template, [`model`] turns batch items
//! into prompts, and [`generate`] samples answers (or [`score`] scores continuations) for the whole
//! batch.

pub mod arch;
mod catalog;
pub mod chat;
pub mod config;
pub mod generate;
pub mod loader;
mod model;
pub mod score;
pub mod source;
pub mod tokenizer;
pub mod weights;

pub use model::CandleLlm;

karma_plugin_api::export_plugin! {
    CandleLlm => catalog::qwen3_0_6b,
    CandleLlm => catalog::qwen3_1_7b,
    CandleLlm => catalog::qwen2_5_0_5b_instruct,
    CandleLlm => catalog::smollm2_135m_instruct,
    CandleLlm => catalog::smollm2_360m_instruct,
    CandleLlm => catalog::llama_3_2_1b_instruct,
    CandleLlm => catalog::causal_lm,
}
