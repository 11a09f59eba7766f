//! A CTranslate2 (faster-whisper) Whisper directory written as a Hugging Face checkpoint:
//! `model.safetensors` (float32, named and split as [`ct2_to_hf`] does for loading),
//! `config.json`, `generation_config.json` and `tokenizer.json`, so that transformers and this
//! plugin can be compared on one file (`bench/whisper_parity.py`), and so that users of
//! faster-whisper can hand the same weights to Hugging Face tools.

use std::path::Path;

use serde_json::{json, Value};

use crate::{ct2::Ct2Model, tokens::Vocabulary, weights::ct2_to_hf};

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("`{}`: {e}", path.display()))
}

/// Writes the CTranslate2 directory `source` as a Hugging Face checkpoint in `out`, which must
/// not exist or be empty. Returns the number of tensors written.
pub fn ct2_to_safetensors(source: &Path, out: &Path) -> Result<usize, String> {
    // Never write over an input, nor over a checkpoint someone already has.
    if out.exists() && std::fs::read_dir(out).map_err(|e| e.to_string())?.next().is_some() {
        return Err(format!("`{}` exists and is not empty; name a new directory", out.display()));
    }
    let model = Ct2Model::read(&source.join("model.bin"))?;
    let (tensors, dims) = ct2_to_hf(&model)?;
    // config.json is optional in a CT2 directory (the loader treats it so too).
    let config_path = source.join("config.json");
    let ct2_config = if config_path.is_file() { read_json(&config_path)? } else { Value::Null };
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create `{}`: {e}", out.display()))?;
    candle_core::safetensors::save(&tensors, out.join("model.safetensors")).map_err(|e| e.to_string())?;
    // The special ids as the plugin reads them from the same tokenizer.
    let specials = Vocabulary::load(source, dims.vocab_size)?.specials;
    let english_only = specials.languages.is_empty();
    let (eot, sot, no_timestamps) = (specials.eot, specials.sot, specials.no_timestamps);
    let list = |key: &str| match &ct2_config[key] {
        Value::Array(ids) => Value::Array(ids.clone()),
        _ => json!([]),
    };
    let suppress = list("suppress_ids");
    // OpenAI's SuppressBlank: a space or end of text cannot open the transcript.
    let begin_suppress = match list("suppress_ids_begin") {
        Value::Array(ids) if ids.is_empty() => {
            json!(specials.blank.into_iter().chain([eot]).collect::<Vec<_>>())
        }
        ids => ids,
    };
    let config = json!({
        "model_type": "whisper",
        "architectures": ["WhisperForConditionalGeneration"],
        "num_mel_bins": dims.num_mel_bins,
        "d_model": dims.d_model,
        "encoder_layers": dims.encoder_layers,
        "encoder_attention_heads": dims.encoder_attention_heads,
        "decoder_layers": dims.decoder_layers,
        "decoder_attention_heads": dims.decoder_attention_heads,
        "encoder_ffn_dim": dims.d_model * 4,
        "decoder_ffn_dim": dims.d_model * 4,
        "vocab_size": dims.vocab_size,
        "max_source_positions": dims.max_source_positions,
        "max_target_positions": dims.max_target_positions,
        "activation_function": "gelu",
        "scale_embedding": false,
        "tie_word_embeddings": true,
        "bos_token_id": eot,
        "eos_token_id": eot,
        "pad_token_id": eot,
        "decoder_start_token_id": sot,
        "suppress_tokens": suppress,
        "begin_suppress_tokens": begin_suppress,
        "torch_dtype": "float32",
    });
    let generation = json!({
        "bos_token_id": eot,
        "eos_token_id": eot,
        "pad_token_id": eot,
        "decoder_start_token_id": sot,
        "no_timestamps_token_id": no_timestamps,
        "is_multilingual": !english_only,
        "max_length": dims.max_target_positions,
        "suppress_tokens": suppress,
        "begin_suppress_tokens": begin_suppress,
        "return_timestamps": false,
    });
    for (name, value) in [("config.json", &config), ("generation_config.json", &generation)] {
        let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
        std::fs::write(out.join(name), text).map_err(|e| format!("cannot write {name}: {e}"))?;
    }
    for name in ["tokenizer.json", "vocabulary.json", "vocabulary.txt"] {
        if source.join(name).is_file() {
            std::fs::copy(source.join(name), out.join(name))
                .map_err(|e| format!("cannot copy {name}: {e}"))?;
        }
    }
    Ok(tensors.len())
}
