//! Architectures run one sequence at a time through candle-transformers' own models (gemma3 and
//! phi3, safetensors or GGUF). Their forward takes one position offset and a causal-only mask,
//! so a batch is a loop of batch-1 generations; the sampling loop is the same as the batched
//! decoder's.

use candle_core::{Device, Result, Tensor};
use candle_transformers::models::{gemma3, phi3};

/// A model that continues one sequence.
pub enum SingleSequenceModel {
    Gemma3(gemma3::Model),
    Phi3(phi3::Model),
}

impl SingleSequenceModel {
    /// Logits `[vocab]` after feeding `tokens` at positions `offset..`; `offset == 0` starts a
    /// new sequence.
    pub fn forward(&mut self, tokens: &[u32], offset: usize, device: &Device) -> Result<Tensor> {
        let input = Tensor::new(tokens, device)?.unsqueeze(0)?;
        let logits = match self {
            SingleSequenceModel::Gemma3(model) => {
                if offset == 0 {
                    model.clear_kv_cache();
                }
                // candle-transformers 0.11.1's gemma3 appends a non-contiguous value tensor to
                // its KV cache and fails on any multi-token call, so the prompt goes in one
                // token at a time (correct, slower prefill).
                let mut logits = None;
                for (index, token) in tokens.iter().enumerate() {
                    let input = Tensor::new(&[*token], device)?.unsqueeze(0)?;
                    logits = Some(model.forward(&input, offset + index)?);
                }
                logits.ok_or_else(|| candle_core::Error::Msg("no tokens to run".to_owned()))?
            }
            SingleSequenceModel::Phi3(model) => {
                if offset == 0 {
                    model.clear_kv_cache();
                }
                model.forward(&input, offset)?
            }
        };
        logits.flatten_all()?.to_dtype(candle_core::DType::F32)
    }
}
