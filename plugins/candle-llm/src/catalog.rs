//! The checkpoints this plugin registers, with their real sizes.

use karma_plugin_api::abi::{ModelMeta, ModelType};

/// One registered checkpoint.
struct Checkpoint {
    name: &'static str,
    description: &'static str,
    parameters: u64,
    license: &'static str,
    release_date: &'static str,
    /// Extra loader kwargs beyond `repo`.
    kwargs: serde_json::Value,
}

/// Config keys that cannot change an answer, left out of the host's cache keys: `threads` only
/// sizes the compute pool (each output is computed the same way whatever its size), and
/// `offline` only decides whether the hub may be asked for the checkpoint, not which weights
/// run. Everything else picks weights, numerics, prompts or sampling.
pub const CACHE_NEUTRAL_CONFIG: &[&str] = &["threads", "offline"];

fn meta(checkpoint: Checkpoint) -> ModelMeta {
    let mut meta = ModelMeta::new(checkpoint.name, ModelType::TextGeneration);
    meta.description = Some(checkpoint.description.to_owned());
    meta.framework = vec!["candle".to_owned()];
    meta.version = Some(env!("CARGO_PKG_VERSION").to_owned());
    meta.open_weights = Some(true);
    meta.license = Some(checkpoint.license.to_owned());
    meta.languages = vec!["eng-Latn".to_owned(), "mul".to_owned()];
    meta.cache_neutral_config = CACHE_NEUTRAL_CONFIG.iter().map(|key| (*key).to_owned()).collect();
    if checkpoint.parameters > 0 {
        meta.n_parameters = Some(checkpoint.parameters);
        // f32 weights plus ~10% for activations and the KV cache of an evaluation batch.
        meta.memory_usage_mb = Some(checkpoint.parameters * 4 * 11 / 10 / (1024 * 1024));
        meta.reference = Some(format!("https://huggingface.co/{}", checkpoint.name));
        meta.release_date = Some(checkpoint.release_date.to_owned());
    }
    // The dtype and the rule that keeps small GGUF files f32 are stated here, not only as config
    // defaults, so that `info model` shows them and the host's cache keys hash them: with the
    // file (repo, revision, gguf_file or model_path, all hashed too) they decide whether a model
    // runs f32 or quantized.
    let mut kwargs = serde_json::json!({
        "max_tokens": 512,
        "temperature": 0.0,
        "dtype": "f32",
        "dequantize": null,
        "dequantize_below_parameters": crate::loader::DEQUANTIZE_BELOW_PARAMETERS,
    });
    if checkpoint.parameters > 0 {
        kwargs["repo"] = checkpoint.name.into();
    }
    if let (Some(target), serde_json::Value::Object(extra)) = (kwargs.as_object_mut(), checkpoint.kwargs) {
        target.extend(extra);
    }
    if let serde_json::Value::Object(map) = kwargs {
        meta.loader_kwargs = map;
    }
    meta
}

pub fn qwen3_0_6b() -> ModelMeta {
    meta(Checkpoint {
        name: "Qwen/Qwen3-0.6B",
        description: "Qwen3 0.6B (thinking off by default: set enable_thinking)",
        parameters: 596_049_920,
        license: "Apache-2.0",
        release_date: "2025-04-29",
        kwargs: serde_json::json!({"enable_thinking": false}),
    })
}

pub fn qwen3_1_7b() -> ModelMeta {
    meta(Checkpoint {
        name: "Qwen/Qwen3-1.7B",
        description: "Qwen3 1.7B (thinking off by default: set enable_thinking)",
        parameters: 1_720_574_976,
        license: "Apache-2.0",
        release_date: "2025-04-29",
        kwargs: serde_json::json!({"enable_thinking": false}),
    })
}

pub fn qwen2_5_0_5b_instruct() -> ModelMeta {
    meta(Checkpoint {
        name: "Qwen/Qwen2.5-0.5B-Instruct",
        description: "Qwen2.5 0.5B instruct",
        parameters: 494_032_768,
        license: "Apache-2.0",
        release_date: "2024-09-19",
        kwargs: serde_json::json!({}),
    })
}

pub fn smollm2_135m_instruct() -> ModelMeta {
    meta(Checkpoint {
        name: "HuggingFaceTB/SmolLM2-135M-Instruct",
        description: "SmolLM2 135M instruct (llama architecture)",
        parameters: 134_515_008,
        license: "Apache-2.0",
        release_date: "2024-11-01",
        kwargs: serde_json::json!({}),
    })
}

pub fn smollm2_360m_instruct() -> ModelMeta {
    meta(Checkpoint {
        name: "HuggingFaceTB/SmolLM2-360M-Instruct",
        description: "SmolLM2 360M instruct (llama architecture)",
        parameters: 361_821_120,
        license: "Apache-2.0",
        release_date: "2024-11-01",
        kwargs: serde_json::json!({}),
    })
}

pub fn llama_3_2_1b_instruct() -> ModelMeta {
    meta(Checkpoint {
        name: "meta-llama/Llama-3.2-1B-Instruct",
        description: "Llama 3.2 1B instruct (gated on the hub: set HF_TOKEN)",
        parameters: 1_235_814_400,
        license: "Llama-3.2-Community",
        release_date: "2024-09-25",
        kwargs: serde_json::json!({}),
    })
}

pub fn causal_lm() -> ModelMeta {
    meta(Checkpoint {
        name: "candle/causal-lm",
        description:
            "Any llama, qwen2, qwen3, gemma3 or phi3 checkpoint: --model-path DIR, FILE.gguf or a hub id",
        parameters: 0,
        license: "per checkpoint",
        release_date: "",
        kwargs: serde_json::json!({}),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_declares_its_cache_neutral_config_keys() {
        let all = [
            qwen3_0_6b(),
            qwen3_1_7b(),
            qwen2_5_0_5b_instruct(),
            smollm2_135m_instruct(),
            smollm2_360m_instruct(),
            llama_3_2_1b_instruct(),
            causal_lm(),
        ];
        for meta in all {
            assert_eq!(meta.cache_neutral_config, ["threads", "offline"], "{}", meta.name);
            assert_eq!(meta.preferred_batch_size, None, "{}", meta.name);
        }
        // Both are keys the config reads.
        let config: crate::config::LlmConfig =
            serde_json::from_value(serde_json::json!({"threads": 3, "offline": true})).unwrap();
        assert_eq!((config.threads, config.offline), (Some(3), true));
    }

    #[test]
    fn every_model_states_its_dtype_rule_as_the_config_reads_it() {
        for meta in [qwen3_1_7b(), smollm2_135m_instruct(), causal_lm()] {
            let kwargs = serde_json::Value::Object(meta.loader_kwargs.clone());
            let config: crate::config::LlmConfig = serde_json::from_value(kwargs).unwrap();
            assert_eq!(config.dtype, "f32", "{}", meta.name);
            assert_eq!(config.dequantize, None, "{}", meta.name);
            assert_eq!(
                config.dequantize_below_parameters,
                crate::loader::DEQUANTIZE_BELOW_PARAMETERS,
                "{}",
                meta.name
            );
        }
    }
}
