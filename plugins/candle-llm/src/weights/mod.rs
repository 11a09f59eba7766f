//! Weight files to [`DecoderWeights`]: Hugging Face safetensors (single or sharded, any float
//! dtype) and GGUF (quantized, or dequantized to f32 at load).

pub mod gguf_as_hf;

use std::path::{Path, PathBuf};

use candle_core::{
    quantized::{gguf_file::Content, QMatMul, QTensor},
    DType, Device, Tensor,
};
use candle_nn::{RmsNorm, VarBuilder};

use crate::arch::{
    block_quant::{self, BlockQuantMatrix},
    decoder::{Attention, Block, DecoderConfig, DecoderWeights, Linear, Matrix, Mlp},
};

/// The safetensors files of a checkpoint: `model.safetensors`, or the shards listed by
/// `model.safetensors.index.json`.
pub fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text =
            std::fs::read_to_string(&index).map_err(|error| format!("`{}`: {error}", index.display()))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|error| format!("`{}`: {error}", index.display()))?;
        let map = json["weight_map"]
            .as_object()
            .ok_or_else(|| format!("`{}` has no `weight_map` object", index.display()))?;
        let mut shards: Vec<String> = map.values().filter_map(|v| v.as_str().map(str::to_owned)).collect();
        shards.sort();
        shards.dedup();
        let files: Vec<PathBuf> = shards.iter().map(|shard| dir.join(shard)).collect();
        if let Some(missing) = files.iter().find(|file| !file.is_file()) {
            return Err(format!("shard `{}` listed in `{}` is missing", missing.display(), index.display()));
        }
        return Ok(files);
    }
    Err(format!(
        "`{}` holds neither model.safetensors nor model.safetensors.index.json (nor a .gguf file)",
        dir.display()
    ))
}

/// Checks each file parses as safetensors, so a corrupt one is named (candle's mmap error does
/// not say which file).
pub fn check_safetensors(files: &[PathBuf]) -> Result<(), String> {
    for file in files {
        let bytes = std::fs::File::open(file).map_err(|error| format!("`{}`: {error}", file.display()))?;
        // SAFETY: read-only mapping of a weight file nobody is expected to modify while loading.
        let map = unsafe { memmap2::Mmap::map(&bytes) }
            .map_err(|error| format!("`{}`: {error}", file.display()))?;
        safetensors::SafeTensors::deserialize(&map)
            .map_err(|error| format!("`{}` is not a valid safetensors file: {error}", file.display()))?;
    }
    Ok(())
}

/// Loads llama/qwen2/qwen3 weights with Hugging Face names.
pub fn from_safetensors(
    files: &[PathBuf],
    config: &DecoderConfig,
    tie_embeddings: bool,
    dtype: DType,
    device: &Device,
) -> Result<DecoderWeights, String> {
    check_safetensors(files)?;
    // SAFETY: as above; the files stay mapped for the weights' lifetime.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(files, dtype, device) }
        .map_err(|error| format!("cannot map the safetensors files: {error}"))?;
    load_hf(&vb, config, tie_embeddings).map_err(|error| format!("weights: {error}"))
}

fn load_hf(vb: &VarBuilder<'_>, config: &DecoderConfig, tie: bool) -> candle_core::Result<DecoderWeights> {
    let (hidden, heads, kv_heads, head_dim) =
        (config.hidden_size, config.num_heads, config.num_kv_heads, config.head_dim);
    let linear = |vb: &VarBuilder<'_>, out: usize, input: usize, bias: bool| -> candle_core::Result<Linear> {
        Ok(Linear {
            weight: Matrix::dense(vb.get((out, input), "weight")?)?,
            bias: if bias { Some(vb.get(out, "bias")?) } else { None },
        })
    };
    let norm = |vb: VarBuilder<'_>, size: usize| -> candle_core::Result<RmsNorm> {
        Ok(RmsNorm::new(vb.get(size, "weight")?, config.rms_norm_eps))
    };
    let model = vb.pp("model");
    let embeddings = model.get((config.vocab_size, hidden), "embed_tokens.weight")?;
    let mut blocks = Vec::with_capacity(config.num_layers);
    for layer in 0..config.num_layers {
        let vb = model.pp(format!("layers.{layer}"));
        let attn = vb.pp("self_attn");
        let mlp = vb.pp("mlp");
        blocks.push(Block {
            input_norm: norm(vb.pp("input_layernorm"), hidden)?,
            attention: Attention {
                q: linear(&attn.pp("q_proj"), heads * head_dim, hidden, config.qkv_bias)?,
                k: linear(&attn.pp("k_proj"), kv_heads * head_dim, hidden, config.qkv_bias)?,
                v: linear(&attn.pp("v_proj"), kv_heads * head_dim, hidden, config.qkv_bias)?,
                o: linear(&attn.pp("o_proj"), hidden, heads * head_dim, false)?,
                q_norm: if config.qk_norm { Some(norm(attn.pp("q_norm"), head_dim)?) } else { None },
                k_norm: if config.qk_norm { Some(norm(attn.pp("k_norm"), head_dim)?) } else { None },
            },
            post_attention_norm: norm(vb.pp("post_attention_layernorm"), hidden)?,
            mlp: Mlp {
                gate: linear(&mlp.pp("gate_proj"), config.intermediate_size, hidden, false)?,
                up: linear(&mlp.pp("up_proj"), config.intermediate_size, hidden, false)?,
                down: linear(&mlp.pp("down_proj"), hidden, config.intermediate_size, false)?,
            },
        });
    }
    let lm_head = if tie || !vb.contains_tensor("lm_head.weight") {
        embeddings.clone()
    } else {
        vb.get((config.vocab_size, hidden), "lm_head.weight")?
    };
    Ok(DecoderWeights {
        embeddings,
        blocks,
        final_norm: norm(model.pp("norm"), hidden)?,
        lm_head: Matrix::dense(lm_head)?,
    })
}

/// A GGUF file opened for reading tensors.
pub struct GgufFile<'a> {
    pub path: &'a Path,
    pub content: &'a Content,
    pub reader: &'a mut std::fs::File,
    pub device: &'a Device,
    /// Dequantize every matrix to f32 at load (fast prefill on CPU for small models).
    pub dequantize: bool,
}

impl GgufFile<'_> {
    fn tensor(&mut self, name: &str) -> Result<QTensor, String> {
        self.content
            .tensor(self.reader, name, self.device)
            .map_err(|error| format!("`{}`: tensor `{name}`: {error}", self.path.display()))
    }

    fn has(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    fn dense(&mut self, name: &str) -> Result<Tensor, String> {
        let tensor = self.tensor(name)?;
        tensor
            .dequantize(self.device)
            .map_err(|error| format!("`{}`: tensor `{name}`: {error}", self.path.display()))
    }

    fn matrix(&mut self, name: &str) -> Result<Matrix, String> {
        let tensor = self.tensor(name)?;
        if self.dequantize {
            let dense = tensor
                .dequantize(self.device)
                .map_err(|error| format!("`{}`: tensor `{name}`: {error}", self.path.display()))?;
            Matrix::dense(dense)
                .map_err(|error| format!("`{}`: tensor `{name}`: {error}", self.path.display()))
        } else if block_quant::supports(tensor.dtype()) && self.device.is_cpu() {
            BlockQuantMatrix::from_qtensor(&tensor)
                .map(Matrix::BlockQuant)
                .map_err(|error| format!("`{}`: tensor `{name}`: {error}", self.path.display()))
        } else {
            QMatMul::from_qtensor(tensor)
                .map(Matrix::Quantized)
                .map_err(|error| format!("`{}`: tensor `{name}`: {error}", self.path.display()))
        }
    }

    fn linear(&mut self, prefix: &str, bias: bool) -> Result<Linear, String> {
        Ok(Linear {
            weight: self.matrix(&format!("{prefix}.weight"))?,
            bias: if bias { Some(self.dense(&format!("{prefix}.bias"))?) } else { None },
        })
    }

    fn norm(&mut self, name: &str, eps: f64) -> Result<RmsNorm, String> {
        Ok(RmsNorm::new(self.dense(name)?, eps))
    }
}

/// Loads llama/qwen2/qwen3 weights with llama.cpp names.
pub fn from_gguf(file: &mut GgufFile<'_>, config: &DecoderConfig) -> Result<DecoderWeights, String> {
    let eps = config.rms_norm_eps;
    let embeddings = file.dense("token_embd.weight")?;
    let mut blocks = Vec::with_capacity(config.num_layers);
    for layer in 0..config.num_layers {
        let p = format!("blk.{layer}");
        blocks.push(Block {
            input_norm: file.norm(&format!("{p}.attn_norm.weight"), eps)?,
            attention: Attention {
                q: file.linear(&format!("{p}.attn_q"), config.qkv_bias)?,
                k: file.linear(&format!("{p}.attn_k"), config.qkv_bias)?,
                v: file.linear(&format!("{p}.attn_v"), config.qkv_bias)?,
                o: file.linear(&format!("{p}.attn_output"), false)?,
                q_norm: if config.qk_norm {
                    Some(file.norm(&format!("{p}.attn_q_norm.weight"), eps)?)
                } else {
                    None
                },
                k_norm: if config.qk_norm {
                    Some(file.norm(&format!("{p}.attn_k_norm.weight"), eps)?)
                } else {
                    None
                },
            },
            post_attention_norm: file.norm(&format!("{p}.ffn_norm.weight"), eps)?,
            mlp: Mlp {
                gate: file.linear(&format!("{p}.ffn_gate"), false)?,
                up: file.linear(&format!("{p}.ffn_up"), false)?,
                down: file.linear(&format!("{p}.ffn_down"), false)?,
            },
        });
    }
    let lm_head = if file.has("output.weight") {
        file.matrix("output.weight")?
    } else {
        Matrix::dense(embeddings.clone()).map_err(|error| error.to_string())?
    };
    Ok(DecoderWeights { embeddings, blocks, final_norm: file.norm("output_norm.weight", eps)?, lm_head })
}

/// `rope_freqs.weight`, the per-frequency divisors llama 3 GGUF files carry.
pub fn gguf_rope_divisors(file: &mut GgufFile<'_>) -> Result<Option<Vec<f32>>, String> {
    if !file.has("rope_freqs.weight") {
        return Ok(None);
    }
    let tensor = file.dense("rope_freqs.weight")?;
    tensor.flatten_all().and_then(|t| t.to_vec1::<f32>()).map(Some).map_err(|error| error.to_string())
}
