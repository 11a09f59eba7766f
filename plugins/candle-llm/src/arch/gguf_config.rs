//! GGUF metadata to decoder shapes.

use candle_core::quantized::gguf_file::{Content, Value};

use super::{
    decoder::{DecoderConfig, RopeLayout},
    Family,
};

/// The family named by `general.architecture`.
pub fn family(content: &Content) -> Result<Family, String> {
    let name = content
        .metadata
        .get("general.architecture")
        .and_then(|value| value.to_string().ok())
        .ok_or("the GGUF file has no `general.architecture`")?;
    Family::from_name(name).ok_or_else(|| {
        format!("GGUF architecture `{name}` is not supported (supported: {})", super::SUPPORTED)
    })
}

/// A numeric metadata value, whatever integer or float type the file stored it as.
pub(crate) fn number(content: &Content, key: &str) -> Option<f64> {
    content.metadata.get(key).and_then(|value| match value {
        Value::U8(v) => Some(f64::from(*v)),
        Value::U16(v) => Some(f64::from(*v)),
        Value::U32(v) => Some(f64::from(*v)),
        Value::U64(v) => Some(*v as f64),
        Value::I32(v) => Some(f64::from(*v)),
        Value::I64(v) => Some(*v as f64),
        Value::F32(v) => Some(f64::from(*v)),
        Value::F64(v) => Some(*v),
        _ => None,
    })
}

/// Decoder shapes for llama/qwen2/qwen3 GGUF files, as llama.cpp's converters write them.
pub fn decoder_config(family: Family, content: &Content) -> Result<DecoderConfig, String> {
    // Metadata keys use the file's own architecture name (`mistral.*` for a mistral file).
    let arch = content
        .metadata
        .get("general.architecture")
        .and_then(|value| value.to_string().ok())
        .map_or(family.as_str(), String::as_str);
    let required = |key: &str| {
        number(content, &format!("{arch}.{key}"))
            .ok_or_else(|| format!("the GGUF file lacks the metadata `{arch}.{key}`"))
    };
    let hidden_size = required("embedding_length")? as usize;
    let num_heads = required("attention.head_count")? as usize;
    if num_heads == 0 {
        return Err(format!("the GGUF metadata `{arch}.attention.head_count` is 0"));
    }
    let num_kv_heads =
        number(content, &format!("{arch}.attention.head_count_kv")).map_or(num_heads, |v| v as usize);
    if num_kv_heads == 0 || !num_heads.is_multiple_of(num_kv_heads) {
        return Err(format!(
            "the GGUF metadata gives {num_heads} attention heads and {num_kv_heads} key/value heads: not a multiple"
        ));
    }
    let head_dim = number(content, &format!("{arch}.attention.key_length"))
        .map_or(hidden_size / num_heads, |v| v as usize);
    let token_count = content
        .tensor_infos
        .get("token_embd.weight")
        .and_then(|info| info.shape.dims().first().copied())
        .ok_or("the GGUF file has no `token_embd.weight` tensor")?;
    Ok(DecoderConfig {
        vocab_size: token_count,
        hidden_size,
        intermediate_size: required("feed_forward_length")? as usize,
        num_layers: required("block_count")? as usize,
        num_heads,
        num_kv_heads,
        head_dim,
        rms_norm_eps: number(content, &format!("{arch}.attention.layer_norm_rms_epsilon")).unwrap_or(1e-6),
        rope_theta: number(content, &format!("{arch}.rope.freq_base")).unwrap_or(10_000.0),
        max_positions: number(content, &format!("{arch}.context_length")).map_or(4096, |v| v as usize),
        // llama.cpp permutes llama's q/k rows for its interleaved rotary kernel; the qwen
        // converters keep Hugging Face's layout.
        rope_layout: if family == Family::Llama { RopeLayout::Interleaved } else { RopeLayout::Halves },
        llama3_scaling: None,
        rope_freq_divisors: None,
        qkv_bias: content.tensor_infos.contains_key("blk.0.attn_q.bias"),
        qk_norm: content.tensor_infos.contains_key("blk.0.attn_q_norm.weight"),
    })
}
