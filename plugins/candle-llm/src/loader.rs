//! Turns a checkpoint's files into a runnable network, tokenizer and chat template.

use std::path::Path;

use candle_core::{quantized::gguf_file, DType, Device};
use candle_nn::VarBuilder;
use candle_transformers::models::{gemma3, phi3};

use crate::{
    arch::{decoder::Decoder, gguf_config, hf_config, single::SingleSequenceModel, Family},
    chat::ChatTemplate,
    generate::Network,
    source::{ModelFiles, Weights},
    tokenizer::{self, TextTokenizer},
    weights::{self, GgufFile},
};

/// GGUF models below this many parameters are dequantized to f32 at load unless told
/// otherwise (the default of the `dequantize_below_parameters` config key): f32 prefill is
/// still a little faster on CPU than quantized (SmolLM2's Q4_1 prefills at 0.9-0.96x, see the
/// README) and memory is cheap at this size; from 1B on, quantized weights halve the memory and
/// speed up decode.
pub const DEQUANTIZE_BELOW_PARAMETERS: u64 = 1_000_000_000;

/// Load-time choices.
pub struct LoadOptions<'a> {
    pub dtype: DType,
    pub device: &'a Device,
    /// `None`: decide by size, with `dequantize_below_parameters`.
    pub dequantize: Option<bool>,
    pub dequantize_below_parameters: u64,
}

/// A ready model.
pub struct LoadedModel {
    pub network: Network,
    pub tokenizer: TextTokenizer,
    pub chat_template: Option<ChatTemplate>,
    pub family: Family,
    /// Whether the matrices stayed in their GGUF blocks (the effective dtype, for the log).
    pub quantized: bool,
}

fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read `{}`: {error}", path.display()))?;
    serde_json::from_str(&text).map_err(|error| format!("`{}` is not valid JSON: {error}", path.display()))
}

/// A special token written either as a string or as `{"content": ...}`.
fn token_text(value: &serde_json::Value) -> Option<String> {
    value.as_str().map(str::to_owned).or_else(|| value["content"].as_str().map(str::to_owned))
}

/// `eos_token_id` as an integer or a list.
fn token_ids(value: &serde_json::Value) -> Vec<u32> {
    match value {
        serde_json::Value::Array(values) => {
            values.iter().filter_map(|v| v.as_u64()).map(|v| v as u32).collect()
        }
        other => other.as_u64().map(|v| v as u32).into_iter().collect(),
    }
}

/// The chat template of tokenizer_config.json: a string, or a list of named templates of which
/// `default` is used.
fn template_source(tokenizer_config: &serde_json::Value) -> Option<String> {
    match &tokenizer_config["chat_template"] {
        serde_json::Value::String(source) => Some(source.clone()),
        serde_json::Value::Array(named) => named
            .iter()
            .find(|entry| entry["name"] == "default")
            .and_then(|entry| entry["template"].as_str().map(str::to_owned)),
        _ => None,
    }
}

/// Side files of a Hugging Face layout: tokenizer_config.json and EOS ids.
struct SideFiles {
    tokenizer_config: serde_json::Value,
    eos_ids: Vec<u32>,
}

fn side_files(files: &ModelFiles, config: Option<&serde_json::Value>) -> Result<SideFiles, String> {
    let tokenizer_config = match files.optional("tokenizer_config.json") {
        Some(path) => read_json(&path)?,
        None => serde_json::Value::Null,
    };
    let mut eos_ids = config.map(|config| token_ids(&config["eos_token_id"])).unwrap_or_default();
    if let Some(path) = files.optional("generation_config.json") {
        eos_ids.extend(token_ids(&read_json(&path)?["eos_token_id"]));
    }
    Ok(SideFiles { tokenizer_config, eos_ids })
}

fn hf_tokenizer(files: &ModelFiles, side: &SideFiles) -> Result<TextTokenizer, String> {
    let path = files
        .optional("tokenizer.json")
        .ok_or_else(|| format!("`{}` has no tokenizer.json", files.dir.display()))?;
    Ok(TextTokenizer::new(
        TextTokenizer::from_file(&path)?,
        token_text(&side.tokenizer_config["bos_token"]),
        token_text(&side.tokenizer_config["eos_token"]),
        side.eos_ids.clone(),
    ))
}

fn chat_template(source: Option<String>, tokenizer: &TextTokenizer) -> Result<Option<ChatTemplate>, String> {
    source
        .map(|source| {
            ChatTemplate::new(&source, tokenizer.bos_token.as_deref(), tokenizer.eos_token.as_deref())
        })
        .transpose()
}

/// Loads the checkpoint.
pub fn load(files: &ModelFiles, options: &LoadOptions<'_>) -> Result<LoadedModel, String> {
    match &files.weights {
        Weights::Safetensors => load_safetensors(files, options),
        Weights::Gguf(path) => load_gguf(files, path, options),
    }
}

fn load_safetensors(files: &ModelFiles, options: &LoadOptions<'_>) -> Result<LoadedModel, String> {
    let config_path = files
        .optional("config.json")
        .ok_or_else(|| format!("`{}` has no config.json", files.dir.display()))?;
    let config = read_json(&config_path)?;
    let family =
        hf_config::family(&config).map_err(|error| format!("`{}`: {error}", config_path.display()))?;
    let weight_files = weights::safetensors_files(&files.dir)?;
    let side = side_files(files, Some(&config))?;
    let tokenizer = hf_tokenizer(files, &side)?;
    let network = if family.batched() {
        let parsed = hf_config::decoder_config(family, &config)?;
        let weights = weights::from_safetensors(
            &weight_files,
            &parsed.config,
            parsed.tie_embeddings,
            options.dtype,
            options.device,
        )?;
        Network::Batched(
            Decoder::new(parsed.config, weights, options.device).map_err(|error| error.to_string())?,
        )
    } else {
        weights::check_safetensors(&weight_files)?;
        // SAFETY: read-only mapping of the weight files for the model's lifetime.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&weight_files, options.dtype, options.device) }
            .map_err(|error| format!("cannot map the safetensors files: {error}"))?;
        let config_error = |error: serde_json::Error| format!("`{}`: {error}", config_path.display());
        let (model, max_positions) = match family {
            Family::Gemma3 => {
                // Multimodal gemma3 checkpoints nest the text model's config.
                let text = if config["text_config"].is_object() {
                    config["text_config"].clone()
                } else {
                    config.clone()
                };
                let parsed: gemma3::Config = serde_json::from_value(text).map_err(config_error)?;
                let vb = if vb.contains_tensor("language_model.model.embed_tokens.weight") {
                    vb.pp("language_model")
                } else {
                    vb
                };
                let model =
                    gemma3::Model::new(false, &parsed, vb).map_err(|error| format!("weights: {error}"))?;
                (SingleSequenceModel::Gemma3(model), parsed.max_position_embeddings)
            }
            Family::Phi3 => {
                let parsed: phi3::Config = serde_json::from_value(config.clone()).map_err(config_error)?;
                let model = phi3::Model::new(&parsed, vb).map_err(|error| format!("weights: {error}"))?;
                (SingleSequenceModel::Phi3(model), parsed.max_position_embeddings)
            }
            batched => {
                return Err(format!(
                    "{} runs on the batched decoder, not one sequence at a time",
                    batched.as_str()
                ))
            }
        };
        Network::Single { model, device: options.device.clone(), max_positions }
    };
    let chat_template = chat_template(template_source(&side.tokenizer_config), &tokenizer)?;
    Ok(LoadedModel { network, tokenizer, chat_template, family, quantized: false })
}

fn load_gguf(files: &ModelFiles, path: &Path, options: &LoadOptions<'_>) -> Result<LoadedModel, String> {
    let mut reader =
        std::fs::File::open(path).map_err(|error| format!("cannot open `{}`: {error}", path.display()))?;
    let content = gguf_file::Content::read(&mut reader)
        .map_err(|error| format!("`{}` is not a valid GGUF file: {error}", path.display()))?;
    let family = gguf_config::family(&content).map_err(|error| format!("`{}`: {error}", path.display()))?;
    let side = side_files(files, None)?;
    let mut tokenizer = match files.optional("tokenizer.json") {
        Some(_) => hf_tokenizer(files, &side)?,
        None => tokenizer::from_gguf(&content).map_err(|error| format!("`{}`: {error}", path.display()))?,
    };
    if let Some(eos) = content.metadata.get("tokenizer.ggml.eos_token_id").and_then(|v| v.to_u32().ok()) {
        tokenizer.eos_ids.push(eos);
    }
    let template = template_source(&side.tokenizer_config).or_else(|| {
        content.metadata.get("tokenizer.chat_template").and_then(|value| value.to_string().ok()).cloned()
    });
    let parameters: u64 = content.tensor_infos.values().map(|info| info.shape.elem_count() as u64).sum();
    let dequantize = options.dequantize.unwrap_or(parameters < options.dequantize_below_parameters);
    let network = if family.batched() {
        let mut config = gguf_config::decoder_config(family, &content)
            .map_err(|error| format!("`{}`: {error}", path.display()))?;
        let mut file =
            GgufFile { path, content: &content, reader: &mut reader, device: options.device, dequantize };
        config.rope_freq_divisors = weights::gguf_rope_divisors(&mut file)?;
        let weights = weights::from_gguf(&mut file, &config)?;
        Network::Batched(Decoder::new(config, weights, options.device).map_err(|error| error.to_string())?)
    } else {
        let converted = match family {
            Family::Gemma3 => weights::gguf_as_hf::gemma3(&content, &mut reader, options.device)
                .map(|(model, positions)| (SingleSequenceModel::Gemma3(model), positions)),
            Family::Phi3 => weights::gguf_as_hf::phi3(&content, &mut reader, options.device)
                .map(|(model, positions)| (SingleSequenceModel::Phi3(model), positions)),
            batched => {
                Err(format!("{} runs on the batched decoder, not one sequence at a time", batched.as_str()))
            }
        };
        let (model, max_positions) = converted.map_err(|error| format!("`{}`: {error}", path.display()))?;
        Network::Single { model, device: options.device.clone(), max_positions }
    };
    let chat_template = chat_template(template, &tokenizer)?;
    // gemma3 and phi3 GGUF files are always dequantized into candle-transformers' models.
    let quantized = family.batched() && !dequantize;
    Ok(LoadedModel { network, tokenizer, chat_template, family, quantized })
}
