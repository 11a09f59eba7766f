//! Model architectures: which family a checkpoint belongs to, its shapes, and the networks that
//! run it.

pub mod activation;
pub mod block_quant;
pub mod column_split;
pub mod decode_attention;
pub mod decoder;
pub mod few_rows;
pub mod gguf_config;
pub mod hf_config;
pub mod prefill_attention;
pub mod single;

/// Architecture families this plugin runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Llama,
    Qwen2,
    Qwen3,
    Gemma3,
    Phi3,
}

impl Family {
    /// From `config.json`'s `model_type` or GGUF's `general.architecture`.
    pub fn from_name(name: &str) -> Option<Family> {
        Some(match name {
            "llama" | "mistral" => Family::Llama,
            "qwen2" => Family::Qwen2,
            "qwen3" => Family::Qwen3,
            "gemma3" | "gemma3_text" => Family::Gemma3,
            "phi3" => Family::Phi3,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Qwen2 => "qwen2",
            Family::Qwen3 => "qwen3",
            Family::Gemma3 => "gemma3",
            Family::Phi3 => "phi3",
        }
    }

    /// Whether the shared batched decoder runs it (the others run one sequence at a time
    /// through candle-transformers' own models).
    pub fn batched(self) -> bool {
        matches!(self, Family::Llama | Family::Qwen2 | Family::Qwen3)
    }
}

/// The families named in errors.
pub const SUPPORTED: &str = "llama, qwen2, qwen3, gemma3, phi3";
