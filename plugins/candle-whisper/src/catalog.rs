//! The checkpoints this plugin registers, with their real sizes.

use karma_plugin_api::abi::{Modality, ModelMeta, ModelType};

/// Config keys that cannot change a transcript, left out of the host's cache keys: `threads`
/// only sizes the compute pool, `offline` only decides whether the hub may be asked.
pub const CACHE_NEUTRAL_CONFIG: &[&str] = &["threads", "offline"];

/// Containers and codecs the decoder in [`crate::audio`] reads.
pub const AUDIO_FORMATS: &[&str] = &["wav", "flac", "mp3", "ogg", "m4a", "mp4", "aac"];

struct Checkpoint {
    name: &'static str,
    description: &'static str,
    parameters: u64,
    release_date: &'static str,
    english_only: bool,
}

fn meta(checkpoint: Checkpoint) -> ModelMeta {
    let mut meta = ModelMeta::new(checkpoint.name, ModelType::AudioRecognition);
    meta.description = Some(checkpoint.description.to_owned());
    meta.modalities = vec![Modality::Audio];
    meta.framework = vec!["candle".to_owned()];
    meta.version = Some(env!("CARGO_PKG_VERSION").to_owned());
    meta.open_weights = Some(true);
    meta.license = Some(if checkpoint.parameters > 0 { "MIT" } else { "per checkpoint" }.to_owned());
    meta.languages = vec![if checkpoint.english_only { "eng-Latn" } else { "mul" }.to_owned()];
    meta.audio_sample_rate = Some(16_000);
    meta.supported_audio_formats = AUDIO_FORMATS.iter().map(|f| (*f).to_owned()).collect();
    meta.cache_neutral_config = CACHE_NEUTRAL_CONFIG.iter().map(|key| (*key).to_owned()).collect();
    let mut kwargs = serde_json::json!({
        "language": null,
        "task": "transcribe",
        "initial_prompt": null,
        "condition_on_previous_text": true,
        "temperature_fallback": true,
        "max_new_tokens": 224,
        "dtype": "f32",
    });
    if checkpoint.parameters > 0 {
        meta.n_parameters = Some(checkpoint.parameters);
        // f32 weights plus ~10% for activations and the caches of a batch.
        meta.memory_usage_mb = Some(checkpoint.parameters * 4 * 11 / 10 / (1024 * 1024));
        meta.reference = Some(format!("https://huggingface.co/{}", checkpoint.name));
        meta.release_date = Some(checkpoint.release_date.to_owned());
        kwargs["repo"] = checkpoint.name.into();
    }
    if let serde_json::Value::Object(map) = kwargs {
        meta.loader_kwargs = map;
    }
    meta
}

pub fn whisper_tiny() -> ModelMeta {
    meta(Checkpoint {
        name: "openai/whisper-tiny",
        description: "Whisper tiny, multilingual (39M)",
        parameters: 37_760_640,
        release_date: "2022-09-21",
        english_only: false,
    })
}

pub fn whisper_tiny_en() -> ModelMeta {
    meta(Checkpoint {
        name: "openai/whisper-tiny.en",
        description: "Whisper tiny, English only (39M)",
        parameters: 37_760_640,
        release_date: "2022-09-21",
        english_only: true,
    })
}

pub fn whisper_base() -> ModelMeta {
    meta(Checkpoint {
        name: "openai/whisper-base",
        description: "Whisper base, multilingual (74M)",
        parameters: 72_593_920,
        release_date: "2022-09-21",
        english_only: false,
    })
}

pub fn whisper_small() -> ModelMeta {
    meta(Checkpoint {
        name: "openai/whisper-small",
        description: "Whisper small, multilingual (244M)",
        parameters: 241_734_912,
        release_date: "2022-09-21",
        english_only: false,
    })
}

pub fn whisper_large_v3() -> ModelMeta {
    meta(Checkpoint {
        name: "openai/whisper-large-v3",
        description: "Whisper large-v3, multilingual, 128 mel bins (1.55B)",
        parameters: 1_543_490_560,
        release_date: "2023-11-06",
        english_only: false,
    })
}

pub fn whisper_large_v3_turbo() -> ModelMeta {
    meta(Checkpoint {
        name: "openai/whisper-large-v3-turbo",
        description: "Whisper large-v3-turbo: large-v3's encoder with a 4-layer decoder (809M)",
        parameters: 808_878_080,
        release_date: "2024-10-01",
        english_only: false,
    })
}

pub fn local_whisper() -> ModelMeta {
    meta(Checkpoint {
        name: "candle/whisper",
        description: "Any Whisper checkpoint: --model-path DIR (Hugging Face safetensors or CTranslate2 model.bin) or a hub id",
        parameters: 0,
        release_date: "",
        english_only: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_is_audio_recognition_at_16k_with_neutral_keys() {
        for meta in [
            whisper_tiny(),
            whisper_tiny_en(),
            whisper_base(),
            whisper_small(),
            whisper_large_v3(),
            whisper_large_v3_turbo(),
            local_whisper(),
        ] {
            assert_eq!(meta.model_type, ModelType::AudioRecognition, "{}", meta.name);
            assert_eq!(meta.audio_sample_rate, Some(16_000));
            assert_eq!(meta.cache_neutral_config, ["threads", "offline"]);
            let config: crate::config::WhisperConfig =
                serde_json::from_value(serde_json::Value::Object(meta.loader_kwargs.clone())).unwrap();
            config.validate().unwrap();
        }
    }
}
