//! Weights into the [`Whisper`] network: Hugging Face safetensors as they are, CTranslate2
//! `model.bin` renamed to the Hugging Face names.
//!
//! CTranslate2 fuses attention projections (`ctranslate2/converters/transformers.py`,
//! `set_attention`): self-attention `linear_0` is `[q; k; v]` stacked by output row, with a zero
//! bias block for k (Whisper's key projection has no bias); cross-attention `linear_0` is q and
//! `linear_1` is `[k; v]`; the last linear is the output projection. Layer norms are
//! `gamma`/`beta`, the decoder's output projection is an alias of its embeddings.

use std::{collections::HashMap, path::Path};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::{
    ct2::{Ct2Model, Ct2Type},
    network::{Whisper, WhisperDims},
};

fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read `{}`: {error}", path.display()))?;
    serde_json::from_str(&text).map_err(|error| format!("`{}` is not valid JSON: {error}", path.display()))
}

/// The safetensors files of a Hugging Face checkpoint directory (single file or sharded).
fn safetensors_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, String> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    let map = read_json(&index)?;
    let mut shards: Vec<String> = map["weight_map"]
        .as_object()
        .map(|map| map.values().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    shards.sort();
    shards.dedup();
    if shards.is_empty() {
        return Err(format!("`{}` lists no shards", index.display()));
    }
    Ok(shards.into_iter().map(|shard| dir.join(shard)).collect())
}

/// A loaded network and the checkpoint's own token lists.
pub struct LoadedWeights {
    pub network: Whisper,
    /// Token ids the checkpoint says never to emit (`suppress_tokens` / `suppress_ids`).
    pub suppress: Vec<u32>,
    /// What the weights were stored as, for logs.
    pub stored_as: String,
}

fn ids(value: &serde_json::Value) -> Vec<u32> {
    value
        .as_array()
        .map(|list| list.iter().filter_map(|v| v.as_u64()).map(|v| v as u32).collect())
        .unwrap_or_default()
}

/// A Hugging Face checkpoint: `config.json` and safetensors.
pub fn load_safetensors(dir: &Path, dtype: DType, device: &Device) -> Result<LoadedWeights, String> {
    let config_path = dir.join("config.json");
    let config = read_json(&config_path)?;
    let dims: WhisperDims = serde_json::from_value(config.clone())
        .map_err(|error| format!("`{}`: {error}", config_path.display()))?;
    let files = safetensors_files(dir)?;
    // SAFETY: read-only mapping of the weight files for the model's lifetime.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&files, dtype, device) }
        .map_err(|error| format!("cannot map the safetensors files: {error}"))?;
    let network =
        Whisper::load(vb, dims).map_err(|error| format!("`{}`: weights: {error}", dir.display()))?;
    let mut suppress = ids(&config["suppress_tokens"]);
    let generation = dir.join("generation_config.json");
    if generation.is_file() {
        suppress.extend(ids(&read_json(&generation)?["suppress_tokens"]));
    }
    Ok(LoadedWeights { network, suppress, stored_as: "safetensors".to_owned() })
}

/// How CTranslate2 names a Hugging Face linear layer's parts.
fn put_linear(
    model: &Ct2Model,
    source: &str,
    target: &str,
    out: &mut HashMap<String, Tensor>,
) -> Result<(), String> {
    out.insert(format!("{target}.weight"), model.tensor(&format!("{source}/weight"), &Device::Cpu)?);
    if model.get(&format!("{source}/bias")).is_some() {
        out.insert(format!("{target}.bias"), model.tensor(&format!("{source}/bias"), &Device::Cpu)?);
    }
    Ok(())
}

fn put_norm(
    model: &Ct2Model,
    source: &str,
    target: &str,
    out: &mut HashMap<String, Tensor>,
) -> Result<(), String> {
    out.insert(format!("{target}.weight"), model.tensor(&format!("{source}/gamma"), &Device::Cpu)?);
    out.insert(format!("{target}.bias"), model.tensor(&format!("{source}/beta"), &Device::Cpu)?);
    Ok(())
}

/// Splits a fused linear (stacked by output rows) into `parts` equal blocks named by `targets`;
/// `with_bias[i]` says whether block i keeps its slice of the bias.
fn put_fused(
    model: &Ct2Model,
    source: &str,
    targets: &[(&str, bool)],
    out: &mut HashMap<String, Tensor>,
) -> Result<(), String> {
    let weight = model.tensor(&format!("{source}/weight"), &Device::Cpu)?;
    let bias = match model.get(&format!("{source}/bias")) {
        Some(_) => Some(model.tensor(&format!("{source}/bias"), &Device::Cpu)?),
        None => None,
    };
    let rows = weight.dim(0).map_err(|e| e.to_string())?;
    let block = rows / targets.len();
    if block * targets.len() != rows {
        return Err(format!("`{source}/weight` has {rows} rows, not {} equal blocks", targets.len()));
    }
    for (index, (target, keep_bias)) in targets.iter().enumerate() {
        let slice = |t: &Tensor| {
            t.narrow(0, index * block, block).and_then(|t| t.contiguous()).map_err(|e| e.to_string())
        };
        out.insert(format!("{target}.weight"), slice(&weight)?);
        if let (Some(bias), true) = (&bias, keep_bias) {
            out.insert(format!("{target}.bias"), slice(bias)?);
        }
    }
    Ok(())
}

fn count_layers(model: &Ct2Model, prefix: &str) -> usize {
    (0..).take_while(|i| model.get(&format!("{prefix}/layer_{i}/ffn/linear_0/weight")).is_some()).count()
}

/// Renames a CTranslate2 Whisper model's variables to the Hugging Face names, and its dims.
pub fn ct2_to_hf(model: &Ct2Model) -> Result<(HashMap<String, Tensor>, WhisperDims), String> {
    if model.spec != "WhisperSpec" {
        return Err(format!("model.bin holds a `{}`, not a Whisper model (WhisperSpec)", model.spec));
    }
    let shape = |name: &str| {
        model.get(name).map(|v| v.shape.clone()).ok_or_else(|| format!("model.bin has no `{name}`"))
    };
    let heads = |name: &str| {
        model
            .get(name)
            .and_then(|v| v.scalar())
            .map(|v| v as usize)
            .ok_or_else(|| format!("model.bin has no `{name}`"))
    };
    let embeddings = shape("decoder/embeddings/weight")?;
    let conv1 = shape("encoder/conv1/weight")?;
    let dims = WhisperDims {
        num_mel_bins: conv1.get(1).copied().unwrap_or(80),
        d_model: embeddings.get(1).copied().unwrap_or(0),
        encoder_layers: count_layers(model, "encoder"),
        encoder_attention_heads: heads("encoder/num_heads")?,
        decoder_layers: count_layers(model, "decoder"),
        decoder_attention_heads: heads("decoder/num_heads")?,
        vocab_size: embeddings[0],
        max_source_positions: shape("encoder/position_encodings/encodings")?[0],
        max_target_positions: shape("decoder/position_encodings/encodings")?[0],
    };
    let mut out = HashMap::new();
    let cpu = Device::Cpu;
    for conv in ["conv1", "conv2"] {
        put_linear(model, &format!("encoder/{conv}"), &format!("model.encoder.{conv}"), &mut out)?;
    }
    out.insert(
        "model.encoder.embed_positions.weight".into(),
        model.tensor("encoder/position_encodings/encodings", &cpu)?,
    );
    put_norm(model, "encoder/layer_norm", "model.encoder.layer_norm", &mut out)?;
    out.insert("model.decoder.embed_tokens.weight".into(), model.tensor("decoder/embeddings/weight", &cpu)?);
    out.insert(
        "model.decoder.embed_positions.weight".into(),
        model.tensor("decoder/position_encodings/encodings", &cpu)?,
    );
    put_norm(model, "decoder/layer_norm", "model.decoder.layer_norm", &mut out)?;
    for (side, layers) in [("encoder", dims.encoder_layers), ("decoder", dims.decoder_layers)] {
        for i in 0..layers {
            let src = format!("{side}/layer_{i}");
            let dst = format!("model.{side}.layers.{i}");
            let (q, k, v) = (
                format!("{dst}.self_attn.q_proj"),
                format!("{dst}.self_attn.k_proj"),
                format!("{dst}.self_attn.v_proj"),
            );
            put_fused(
                model,
                &format!("{src}/self_attention/linear_0"),
                &[(&q, true), (&k, false), (&v, true)],
                &mut out,
            )?;
            put_linear(
                model,
                &format!("{src}/self_attention/linear_1"),
                &format!("{dst}.self_attn.out_proj"),
                &mut out,
            )?;
            put_norm(
                model,
                &format!("{src}/self_attention/layer_norm"),
                &format!("{dst}.self_attn_layer_norm"),
                &mut out,
            )?;
            put_linear(model, &format!("{src}/ffn/linear_0"), &format!("{dst}.fc1"), &mut out)?;
            put_linear(model, &format!("{src}/ffn/linear_1"), &format!("{dst}.fc2"), &mut out)?;
            put_norm(model, &format!("{src}/ffn/layer_norm"), &format!("{dst}.final_layer_norm"), &mut out)?;
            if side == "decoder" {
                let a = format!("{src}/attention");
                let e = format!("{dst}.encoder_attn");
                put_linear(model, &format!("{a}/linear_0"), &format!("{e}.q_proj"), &mut out)?;
                let (k, v) = (format!("{e}.k_proj"), format!("{e}.v_proj"));
                put_fused(model, &format!("{a}/linear_1"), &[(&k, false), (&v, true)], &mut out)?;
                put_linear(model, &format!("{a}/linear_2"), &format!("{e}.out_proj"), &mut out)?;
                put_norm(
                    model,
                    &format!("{a}/layer_norm"),
                    &format!("{dst}.encoder_attn_layer_norm"),
                    &mut out,
                )?;
            }
        }
    }
    Ok((out, dims))
}

/// A CTranslate2 directory: `model.bin` and its `config.json` (suppressed ids).
pub fn load_ct2(dir: &Path, dtype: DType, device: &Device) -> Result<LoadedWeights, String> {
    let model = Ct2Model::read(&dir.join("model.bin"))?;
    let stored = model.weight_dtype().unwrap_or(Ct2Type::F32);
    let (tensors, dims) = ct2_to_hf(&model).map_err(|error| format!("`{}`: {error}", dir.display()))?;
    drop(model);
    let tensors = tensors
        .into_iter()
        .map(|(name, tensor)| Ok((name, tensor.to_dtype(dtype)?.to_device(device)?)))
        .collect::<candle_core::Result<HashMap<_, _>>>()
        .map_err(|error| error.to_string())?;
    let vb = VarBuilder::from_tensors(tensors, dtype, device);
    let network =
        Whisper::load(vb, dims).map_err(|error| format!("`{}`: weights: {error}", dir.display()))?;
    let config_path = dir.join("config.json");
    let suppress =
        if config_path.is_file() { ids(&read_json(&config_path)?["suppress_ids"]) } else { Vec::new() };
    Ok(LoadedWeights { network, suppress, stored_as: format!("CTranslate2 {}", stored.name()) })
}
