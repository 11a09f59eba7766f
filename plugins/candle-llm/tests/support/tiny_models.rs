//! Tiny random-weight checkpoints for tests: every supported architecture as Hugging Face
//! safetensors (config.json, tokenizer.json with a ChatML template), and GGUF files written from
//! the same weights (with the tokenizer embedded as GGUF metadata, the way llama.cpp does).
//!
//! Weights come from candle-transformers' own model constructors (so the tensor names and shapes
//! are exactly what the reference implementations read), then are overwritten with seeded
//! pseudo-random values so every run sees the same checkpoint.

#![allow(dead_code)]

use std::{collections::HashMap, path::Path};

use candle_core::{
    quantized::{gguf_file, GgmlDType, QTensor},
    DType, Device, Tensor,
};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::{gemma3, llama, phi3, qwen2, qwen3};
use tokenizers::{
    decoders::byte_level::ByteLevel as ByteLevelDecoder, models::bpe::BPE,
    pre_tokenizers::byte_level::ByteLevel, AddedToken, Tokenizer,
};

pub const HIDDEN: usize = 64;
pub const HEADS: usize = 4;
pub const KV_HEADS: usize = 2;
pub const HEAD_DIM: usize = 16;
pub const LAYERS: usize = 2;
pub const INTERMEDIATE: usize = 128;
pub const VOCAB: usize = 320;
pub const POSITIONS: usize = 512;

/// ChatML, as SmolLM2 and Qwen ship it.
pub const CHAT_TEMPLATE: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

pub const SPECIAL_TOKENS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// Merges of the test tokenizer, applied in order.
const MERGES: [(&str, &str); 12] = [
    ("t", "h"),
    ("th", "e"),
    ("Ġ", "the"),
    ("a", "n"),
    ("Ġ", "a"),
    ("i", "n"),
    ("e", "r"),
    ("o", "n"),
    ("Ġ", "A"),
    ("Ġ", "B"),
    ("Ġ", "C"),
    ("Ġ", "D"),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Qwen2,
    Qwen3,
    Gemma3,
    Phi3,
}

impl Arch {
    pub const ALL: [Arch; 5] = [Arch::Llama, Arch::Qwen2, Arch::Qwen3, Arch::Gemma3, Arch::Phi3];
    pub const BATCHED: [Arch; 3] = [Arch::Llama, Arch::Qwen2, Arch::Qwen3];

    pub fn model_type(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Gemma3 => "gemma3_text",
            Arch::Phi3 => "phi3",
        }
    }

    fn gguf_name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Gemma3 => "gemma3",
            Arch::Phi3 => "phi3",
        }
    }
}

/// The vocabulary: the 256 byte-level symbols, then merge results, then special tokens.
pub fn vocabulary() -> Vec<String> {
    let mut tokens: Vec<String> = {
        let mut alphabet: Vec<String> = ByteLevel::alphabet().into_iter().map(|c| c.to_string()).collect();
        alphabet.sort();
        alphabet
    };
    for (left, right) in MERGES {
        tokens.push(format!("{left}{right}"));
    }
    tokens.extend(SPECIAL_TOKENS.iter().map(|token| (*token).to_owned()));
    assert!(tokens.len() <= VOCAB);
    tokens
}

/// A byte-level BPE tokenizer over [`vocabulary`].
pub fn tokenizer() -> Tokenizer {
    let vocab: ahash::AHashMap<String, u32> =
        vocabulary().into_iter().enumerate().map(|(id, token)| (token, id as u32)).collect();
    let merges = MERGES.iter().map(|(l, r)| ((*l).to_owned(), (*r).to_owned())).collect();
    let bpe = BPE::builder().vocab_and_merges(vocab, merges).build().unwrap();
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    tokenizer.add_special_tokens(SPECIAL_TOKENS.iter().map(|token| AddedToken::from(*token, true))).unwrap();
    tokenizer
}

pub fn token_id(token: &str) -> u32 {
    vocabulary().iter().position(|candidate| candidate == token).unwrap() as u32
}

/// config.json: a superset of the fields each family's reference config reads.
pub fn config_json(arch: Arch) -> serde_json::Value {
    let mut config = serde_json::json!({
        "architectures": ["TinyForCausalLM"],
        "model_type": arch.model_type(),
        "vocab_size": VOCAB,
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "head_dim": HEAD_DIM,
        "rms_norm_eps": 1e-6,
        "max_position_embeddings": POSITIONS,
        "tie_word_embeddings": false,
        "bos_token_id": token_id("<|im_start|>"),
        "eos_token_id": token_id("<|im_end|>"),
        "hidden_act": "silu",
        "attention_bias": false,
        "sliding_window": POSITIONS,
        "max_window_layers": LAYERS,
        "use_sliding_window": false,
        // transformers >= 5 layout: no top-level rope_theta.
        "rope_parameters": {"rope_theta": 50000.0, "rope_type": "default"},
    });
    match arch {
        Arch::Qwen3 => config["tie_word_embeddings"] = true.into(),
        Arch::Gemma3 => {
            config["hidden_activation"] = "gelu_pytorch_tanh".into();
            config["rope_local_base_freq"] = 10000.0.into();
            config["final_logit_softcapping"] = serde_json::Value::Null;
            config["attn_logit_softcapping"] = serde_json::Value::Null;
            config["query_pre_attn_scalar"] = HEAD_DIM.into();
            config["sliding_window"] = 64.into();
            config["sliding_window_pattern"] = 2.into();
        }
        _ => {}
    }
    // The reference configs of candle read the top-level key.
    config["rope_theta"] = 50000.0.into();
    config
}

/// Deterministic pseudo-random values in [-scale, scale).
fn values(seed: &mut u64, count: usize, scale: f32) -> Vec<f32> {
    (0..count)
        .map(|_| {
            *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((*seed >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// Builds the reference model for `arch` over a fresh VarMap, then reseeds every weight.
fn weights(arch: Arch) -> HashMap<String, Tensor> {
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let config = config_json(arch);
    match arch {
        Arch::Llama => {
            let parsed: llama::LlamaConfig = serde_json::from_value(config).unwrap();
            llama::Llama::load(vb, &parsed.into_config(false)).map(drop)
        }
        Arch::Qwen2 => {
            let parsed: qwen2::Config = serde_json::from_value(config).unwrap();
            // lm_head is created explicitly so the checkpoint is untied.
            vb.pp("lm_head").get((VOCAB, HIDDEN), "weight").unwrap();
            qwen2::ModelForCausalLM::new(&parsed, vb).map(drop)
        }
        Arch::Qwen3 => {
            let parsed: qwen3::Config = serde_json::from_value(config).unwrap();
            qwen3::ModelForCausalLM::new(&parsed, vb).map(drop)
        }
        Arch::Gemma3 => {
            let parsed: gemma3::Config = serde_json::from_value(config).unwrap();
            gemma3::Model::new(false, &parsed, vb).map(drop)
        }
        Arch::Phi3 => {
            let parsed: phi3::Config = serde_json::from_value(config).unwrap();
            phi3::Model::new(&parsed, vb).map(drop)
        }
    }
    .unwrap();
    let data = varmap.data().lock().unwrap();
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut seed = 0x5eed_u64;
    names
        .into_iter()
        .map(|name| {
            let shape = data[name].shape().clone();
            let is_norm = name.contains("norm");
            let mut numbers = values(&mut seed, shape.elem_count(), if is_norm { 0.2 } else { 0.25 });
            if is_norm && arch != Arch::Gemma3 {
                // RMS norm scales sit around 1 (gemma stores them as offsets from 1).
                numbers.iter_mut().for_each(|value| *value += 1.0);
            }
            (name.clone(), Tensor::from_vec(numbers, shape, &device).unwrap())
        })
        .collect()
}

/// Writes a safetensors checkpoint of `arch` with its tokenizer and returns its weights.
pub fn write_checkpoint(dir: &Path, arch: Arch) -> HashMap<String, Tensor> {
    std::fs::create_dir_all(dir).unwrap();
    let tensors = weights(arch);
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&config_json(arch)).unwrap())
        .unwrap();
    write_tokenizer_files(dir);
    tensors
}

/// tokenizer.json and tokenizer_config.json (ChatML template, `<|im_end|>` as EOS).
pub fn write_tokenizer_files(dir: &Path) {
    tokenizer().save(dir.join("tokenizer.json"), false).unwrap();
    let tokenizer_config = serde_json::json!({
        "bos_token": "<|im_start|>",
        "eos_token": "<|im_end|>",
        "chat_template": CHAT_TEMPLATE,
    });
    std::fs::write(dir.join("tokenizer_config.json"), tokenizer_config.to_string()).unwrap();
}

/// llama.cpp's row permutation of llama q/k weights for its interleaved rotary kernel.
fn permute_rows(weight: &Tensor, heads: usize) -> Tensor {
    let (rows, columns) = weight.dims2().unwrap();
    weight
        .reshape((heads, 2, rows / heads / 2, columns))
        .unwrap()
        .transpose(1, 2)
        .unwrap()
        .contiguous()
        .unwrap()
        .reshape((rows, columns))
        .unwrap()
}

/// The llama.cpp name of a Hugging Face tensor name.
fn gguf_name(arch: Arch, name: &str) -> String {
    let name = name.strip_prefix("model.").unwrap_or(name);
    match name {
        "embed_tokens.weight" => return "token_embd.weight".into(),
        "norm.weight" => return "output_norm.weight".into(),
        "lm_head.weight" => return "output.weight".into(),
        _ => {}
    }
    let rest = name.strip_prefix("layers.").expect(name);
    let (layer, rest) = rest.split_once('.').unwrap();
    // gemma3 has four norms per block; in the llama family the norm after attention is the
    // MLP's input norm.
    let post_attention = if arch == Arch::Gemma3 { "post_attention_norm" } else { "ffn_norm" };
    let mapped = rest
        .replace("input_layernorm", "attn_norm")
        .replace("post_attention_layernorm", post_attention)
        .replace("pre_feedforward_layernorm", "ffn_norm")
        .replace("post_feedforward_layernorm", "post_ffw_norm")
        .replace("self_attn.qkv_proj", "attn_qkv")
        .replace("self_attn.q_proj", "attn_q")
        .replace("self_attn.k_proj", "attn_k")
        .replace("self_attn.v_proj", "attn_v")
        .replace("self_attn.o_proj", "attn_output")
        .replace("self_attn.q_norm", "attn_q_norm")
        .replace("self_attn.k_norm", "attn_k_norm")
        .replace("mlp.gate_up_proj", "ffn_up")
        .replace("mlp.gate_proj", "ffn_gate")
        .replace("mlp.up_proj", "ffn_up")
        .replace("mlp.down_proj", "ffn_down");
    format!("blk.{layer}.{mapped}")
}

/// Writes the weights of a checkpoint as GGUF the way llama.cpp's converter does (matrices as
/// `dtype`, norms and biases f32; llama q/k rows permuted, gemma norm scales +1), with the test
/// tokenizer and chat template in the metadata.
pub fn write_gguf(path: &Path, arch: Arch, tensors: &HashMap<String, Tensor>, dtype: GgmlDType) {
    let mut quantized: Vec<(String, QTensor)> = Vec::new();
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    for name in names {
        let mut tensor = tensors[name].clone();
        if arch == Arch::Gemma3 && name.ends_with("norm.weight") {
            // llama.cpp stores gemma's RMS norm scales with the +1 applied.
            tensor = (tensor + 1.0).unwrap();
        }
        if arch == Arch::Llama && name.ends_with("q_proj.weight") {
            tensor = permute_rows(&tensor, HEADS);
        }
        if arch == Arch::Llama && name.ends_with("k_proj.weight") {
            tensor = permute_rows(&tensor, KV_HEADS);
        }
        let kind = if tensor.rank() == 2 { dtype } else { GgmlDType::F32 };
        quantized.push((gguf_name(arch, name), QTensor::quantize(&tensor, kind).unwrap()));
    }
    let a = arch.gguf_name();
    let tokens = vocabulary();
    let merges: Vec<String> = MERGES.iter().map(|(l, r)| format!("{l} {r}")).collect();
    let kinds: Vec<gguf_file::Value> = tokens
        .iter()
        .map(|token| gguf_file::Value::I32(if SPECIAL_TOKENS.contains(&token.as_str()) { 3 } else { 1 }))
        .collect();
    let mut metadata: Vec<(String, gguf_file::Value)> = vec![
        ("general.architecture".into(), gguf_file::Value::String(a.into())),
        (format!("{a}.block_count"), gguf_file::Value::U32(LAYERS as u32)),
        (format!("{a}.embedding_length"), gguf_file::Value::U32(HIDDEN as u32)),
        (format!("{a}.feed_forward_length"), gguf_file::Value::U32(INTERMEDIATE as u32)),
        (format!("{a}.attention.head_count"), gguf_file::Value::U32(HEADS as u32)),
        (format!("{a}.attention.head_count_kv"), gguf_file::Value::U32(KV_HEADS as u32)),
        (format!("{a}.attention.key_length"), gguf_file::Value::U32(HEAD_DIM as u32)),
        (format!("{a}.attention.layer_norm_rms_epsilon"), gguf_file::Value::F32(1e-6)),
        (format!("{a}.rope.freq_base"), gguf_file::Value::F32(50000.0)),
        (format!("{a}.context_length"), gguf_file::Value::U32(POSITIONS as u32)),
        ("tokenizer.ggml.model".into(), gguf_file::Value::String("gpt2".into())),
        (
            "tokenizer.ggml.tokens".into(),
            gguf_file::Value::Array(tokens.iter().map(|t| gguf_file::Value::String(t.clone())).collect()),
        ),
        (
            "tokenizer.ggml.merges".into(),
            gguf_file::Value::Array(merges.into_iter().map(gguf_file::Value::String).collect()),
        ),
        ("tokenizer.ggml.token_type".into(), gguf_file::Value::Array(kinds)),
        ("tokenizer.ggml.bos_token_id".into(), gguf_file::Value::U32(token_id("<|im_start|>"))),
        ("tokenizer.ggml.eos_token_id".into(), gguf_file::Value::U32(token_id("<|im_end|>"))),
        ("tokenizer.chat_template".into(), gguf_file::Value::String(CHAT_TEMPLATE.into())),
    ];
    match arch {
        Arch::Gemma3 => metadata.extend([
            (format!("{a}.attention.value_length"), gguf_file::Value::U32(HEAD_DIM as u32)),
            (format!("{a}.attention.sliding_window"), gguf_file::Value::U32(64)),
            (format!("{a}.attention.sliding_window_type"), gguf_file::Value::U32(2)),
            (format!("{a}.rope.local_freq_base"), gguf_file::Value::F32(10000.0)),
        ]),
        Arch::Phi3 => {
            metadata.push((format!("{a}.rope.dimension_count"), gguf_file::Value::U32(HEAD_DIM as u32)))
        }
        _ => {}
    }
    let metadata_refs: Vec<(&str, &gguf_file::Value)> =
        metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = quantized.iter().map(|(k, v)| (k.as_str(), v)).collect();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    let mut file = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut file, &metadata_refs, &tensor_refs).unwrap();
}
