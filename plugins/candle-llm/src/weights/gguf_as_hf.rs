//! gemma3 and phi3 GGUF files run through candle-transformers' Hugging Face implementations,
//! with the GGUF tensors dequantized and renamed.
//!
//! candle-transformers 0.11.1's own GGUF versions of these models compute something else than
//! the checkpoints were trained for: `quantized_gemma3` uses SiLU where Gemma 3 uses tanh-GELU,
//! and `quantized_phi3` ignores `phi3.rope.freq_base` (always 10000). The Hugging Face versions
//! are right, so GGUF weights are converted to them (always as f32; these families run one
//! sequence at a time anyway).

use std::collections::HashMap;

use candle_core::{quantized::gguf_file::Content, DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{gemma3, phi3};

use crate::arch::{gguf_config::number, Family};

/// The Hugging Face name of a llama.cpp tensor name.
pub fn hf_name(family: Family, name: &str) -> String {
    match name {
        "token_embd.weight" => return "model.embed_tokens.weight".into(),
        "output_norm.weight" => return "model.norm.weight".into(),
        "output.weight" => return "lm_head.weight".into(),
        _ => {}
    }
    let Some((layer, rest)) = name.strip_prefix("blk.").and_then(|rest| rest.split_once('.')) else {
        return name.to_owned();
    };
    let (post_attention, ffn_norm) = if family == Family::Gemma3 {
        ("post_attention_layernorm", "pre_feedforward_layernorm")
    } else {
        ("post_attention_norm", "post_attention_layernorm")
    };
    let part = rest.split_once('.').map_or(rest, |(part, _)| part);
    let suffix = &rest[part.len()..];
    let mapped = match part {
        "attn_norm" => "input_layernorm",
        "post_attention_norm" => post_attention,
        "ffn_norm" => ffn_norm,
        "post_ffw_norm" => "post_feedforward_layernorm",
        "attn_qkv" => "self_attn.qkv_proj",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "attn_q_norm" => "self_attn.q_norm",
        "attn_k_norm" => "self_attn.k_norm",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" if family == Family::Phi3 => "mlp.gate_up_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        other => other,
    };
    format!("model.layers.{layer}.{mapped}{suffix}")
}

/// Every tensor of the file, dequantized, under its Hugging Face name.
fn tensors(
    family: Family,
    content: &Content,
    reader: &mut std::fs::File,
    device: &Device,
) -> Result<HashMap<String, Tensor>, String> {
    let mut tensors = HashMap::with_capacity(content.tensor_infos.len());
    for name in content.tensor_infos.keys() {
        let mut tensor = content
            .tensor(reader, name, device)
            .and_then(|tensor| tensor.dequantize(device))
            .map_err(|error| format!("tensor `{name}`: {error}"))?;
        if family == Family::Gemma3 && name.ends_with("norm.weight") {
            // llama.cpp stores gemma's norm scales with the +1 the HF model adds itself.
            tensor = (tensor - 1.0).map_err(|error| error.to_string())?;
        }
        tensors.insert(hf_name(family, name), tensor);
    }
    Ok(tensors)
}

fn required(content: &Content, arch: &str, key: &str) -> Result<f64, String> {
    number(content, &format!("{arch}.{key}"))
        .ok_or_else(|| format!("the GGUF file lacks the metadata `{arch}.{key}`"))
}

/// A gemma3 model from GGUF, and its context length.
pub fn gemma3(
    content: &Content,
    reader: &mut std::fs::File,
    device: &Device,
) -> Result<(gemma3::Model, usize), String> {
    let a = "gemma3";
    let tensors = tensors(Family::Gemma3, content, reader, device)?;
    let vocab =
        tensors.get("model.embed_tokens.weight").map(|t| t.dims()[0]).ok_or("no token_embd.weight")?;
    let head_dim = required(content, a, "attention.key_length")? as usize;
    let config = serde_json::json!({
        "attention_bias": false,
        "head_dim": head_dim,
        "hidden_activation": "gelu_pytorch_tanh",
        "hidden_size": required(content, a, "embedding_length")? as usize,
        "intermediate_size": required(content, a, "feed_forward_length")? as usize,
        "num_attention_heads": required(content, a, "attention.head_count")? as usize,
        "num_hidden_layers": required(content, a, "block_count")? as usize,
        "num_key_value_heads": required(content, a, "attention.head_count_kv")? as usize,
        "rms_norm_eps": number(content, "gemma3.attention.layer_norm_rms_epsilon").unwrap_or(1e-6),
        "rope_theta": number(content, "gemma3.rope.freq_base").unwrap_or(1_000_000.0),
        "rope_local_base_freq": number(content, "gemma3.rope.local_freq_base").unwrap_or(10_000.0),
        "vocab_size": vocab,
        "final_logit_softcapping": number(content, "gemma3.final_logit_softcapping"),
        "attn_logit_softcapping": number(content, "gemma3.attn_logit_softcapping"),
        "query_pre_attn_scalar": head_dim,
        "sliding_window": required(content, a, "attention.sliding_window")? as usize,
        "sliding_window_pattern": number(content, "gemma3.attention.sliding_window_type").unwrap_or(6.0) as usize,
        "max_position_embeddings": number(content, "gemma3.context_length").unwrap_or(32_768.0) as usize,
    });
    let config: gemma3::Config = serde_json::from_value(config).map_err(|error| error.to_string())?;
    let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
    let model = gemma3::Model::new(false, &config, vb).map_err(|error| format!("weights: {error}"))?;
    Ok((model, config.max_position_embeddings))
}

/// A phi3 model from GGUF, and its context length.
pub fn phi3(
    content: &Content,
    reader: &mut std::fs::File,
    device: &Device,
) -> Result<(phi3::Model, usize), String> {
    let a = "phi3";
    let tensors = tensors(Family::Phi3, content, reader, device)?;
    let vocab =
        tensors.get("model.embed_tokens.weight").map(|t| t.dims()[0]).ok_or("no token_embd.weight")?;
    let hidden = required(content, a, "embedding_length")? as usize;
    let heads = required(content, a, "attention.head_count")? as usize;
    let rotary = number(content, "phi3.rope.dimension_count").map(|dims| dims / (hidden / heads) as f64);
    let config = serde_json::json!({
        "vocab_size": vocab,
        "hidden_act": "silu",
        "hidden_size": hidden,
        "intermediate_size": required(content, a, "feed_forward_length")? as usize,
        "num_hidden_layers": required(content, a, "block_count")? as usize,
        "num_attention_heads": heads,
        "num_key_value_heads": number(content, "phi3.attention.head_count_kv").map_or(heads, |v| v as usize),
        "rms_norm_eps": number(content, "phi3.attention.layer_norm_rms_epsilon").unwrap_or(1e-5),
        "rope_theta": number(content, "phi3.rope.freq_base").unwrap_or(10_000.0),
        "max_position_embeddings": number(content, "phi3.context_length").unwrap_or(4096.0) as usize,
        "partial_rotary_factor": rotary.filter(|factor| *factor < 1.0),
        "tie_word_embeddings": !tensors.contains_key("lm_head.weight"),
    });
    let config: phi3::Config = serde_json::from_value(config).map_err(|error| error.to_string())?;
    let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
    let model = phi3::Model::new(&config, vb).map_err(|error| format!("weights: {error}"))?;
    Ok((model, config.max_position_embeddings))
}
