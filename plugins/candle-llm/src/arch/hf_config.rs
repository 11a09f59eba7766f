//! `config.json` (Hugging Face) to decoder shapes.

use serde::Deserialize;

use super::{
    decoder::{DecoderConfig, Llama3Scaling, RopeLayout},
    Family,
};

/// The fields of `config.json` the decoder families read. Unknown fields are ignored: configs
/// carry many that do not change the computation.
#[derive(Debug, Deserialize)]
struct RawConfig {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    #[serde(default = "default_eps")]
    rms_norm_eps: f64,
    rope_theta: Option<f64>,
    rope_parameters: Option<serde_json::Value>,
    rope_scaling: Option<serde_json::Value>,
    #[serde(default = "default_positions")]
    max_position_embeddings: usize,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default)]
    attention_bias: bool,
    #[serde(default)]
    mlp_bias: bool,
}

fn default_eps() -> f64 {
    1e-6
}

fn default_positions() -> usize {
    4096
}

/// What `config.json` says about a batched-decoder model.
#[derive(Debug)]
pub struct HfDecoder {
    pub config: DecoderConfig,
    pub tie_embeddings: bool,
}

/// The family named by `config.json` (`model_type`).
pub fn family(config: &serde_json::Value) -> Result<Family, String> {
    let model_type = config["model_type"]
        .as_str()
        .ok_or("config.json has no `model_type`: it does not describe a transformers model")?;
    Family::from_name(model_type).ok_or_else(|| {
        format!("architecture `{model_type}` is not supported (supported: {})", super::SUPPORTED)
    })
}

/// Decoder shapes for the llama/qwen2/qwen3 families.
pub fn decoder_config(family: Family, config: &serde_json::Value) -> Result<HfDecoder, String> {
    let raw: RawConfig =
        serde_json::from_value(config.clone()).map_err(|error| format!("config.json: {error}"))?;
    // transformers >= 5 writes `rope_parameters.rope_theta` and no top-level `rope_theta`;
    // falling back to 10000 there silently changes every logit.
    let rope_theta = raw
        .rope_theta
        .or_else(|| raw.rope_parameters.as_ref().and_then(|p| p["rope_theta"].as_f64()))
        .unwrap_or(10_000.0);
    let scaling = raw.rope_scaling.as_ref().or(raw.rope_parameters.as_ref());
    let llama3_scaling = match scaling {
        Some(value) if value["rope_type"] == "llama3" || value["type"] == "llama3" => {
            let field = |name: &str| {
                value[name].as_f64().ok_or_else(|| format!("config.json: rope_scaling.{name} is missing"))
            };
            Some(Llama3Scaling {
                factor: field("factor")?,
                low_freq_factor: field("low_freq_factor")?,
                high_freq_factor: field("high_freq_factor")?,
                original_max_positions: field("original_max_position_embeddings")?,
            })
        }
        Some(value)
            if value
                .get("rope_type")
                .or(value.get("type"))
                .and_then(|t| t.as_str())
                .is_some_and(|t| t != "default") =>
        {
            return Err(format!("config.json: rope scaling {value} is not supported"));
        }
        _ => None,
    };
    if raw.num_attention_heads == 0
        || !raw.hidden_size.is_multiple_of(raw.num_attention_heads) && raw.head_dim.is_none()
    {
        return Err("config.json: hidden_size is not a multiple of num_attention_heads".to_owned());
    }
    if raw.mlp_bias {
        return Err("config.json: `mlp_bias: true` is not supported".to_owned());
    }
    let num_kv_heads = raw.num_key_value_heads.unwrap_or(raw.num_attention_heads);
    if num_kv_heads == 0 || !raw.num_attention_heads.is_multiple_of(num_kv_heads) {
        return Err("config.json: num_attention_heads is not a multiple of num_key_value_heads".to_owned());
    }
    Ok(HfDecoder {
        config: DecoderConfig {
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_layers: raw.num_hidden_layers,
            num_heads: raw.num_attention_heads,
            num_kv_heads,
            head_dim: raw.head_dim.unwrap_or(raw.hidden_size / raw.num_attention_heads),
            rms_norm_eps: raw.rms_norm_eps,
            rope_theta,
            max_positions: raw.max_position_embeddings,
            rope_layout: RopeLayout::Halves,
            llama3_scaling,
            rope_freq_divisors: None,
            qkv_bias: family == Family::Qwen2 || raw.attention_bias,
            qk_norm: family == Family::Qwen3,
        },
        tie_embeddings: raw.tie_word_embeddings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::json!({
            "model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
            "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
        })
    }

    #[test]
    fn rope_theta_falls_back_to_rope_parameters() {
        let mut config = base();
        config["rope_parameters"] = serde_json::json!({"rope_theta": 100000.0, "rope_type": "default"});
        assert_eq!(decoder_config(Family::Llama, &config).unwrap().config.rope_theta, 100000.0);
        config["rope_theta"] = serde_json::json!(5.0);
        assert_eq!(decoder_config(Family::Llama, &config).unwrap().config.rope_theta, 5.0);
    }

    #[test]
    fn unknown_architecture_and_scaling_are_named() {
        let mut config = base();
        config["model_type"] = "mamba".into();
        assert!(family(&config).unwrap_err().contains("`mamba` is not supported"));
        let mut config = base();
        config["rope_scaling"] = serde_json::json!({"rope_type": "yarn", "factor": 4.0});
        assert!(decoder_config(Family::Llama, &config).unwrap_err().contains("yarn"));
    }
}
