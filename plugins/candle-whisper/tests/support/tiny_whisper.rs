//! Tiny random-weight Whisper checkpoints for tests, written both as a Hugging Face directory
//! (config.json, model.safetensors, tokenizer.json) and as a CTranslate2 directory (model.bin
//! in float32, float16 or int8, config.json, tokenizer.json) from the same seeded weights, and
//! 16-bit PCM WAV bytes. Shared with the e2e tests (`tests/e2e/whisper.rs`).

#![allow(dead_code)]

use std::{collections::HashMap, path::Path};

use candle_core::{Device, Tensor};
use tokenizers::{
    decoders::byte_level::ByteLevel as ByteLevelDecoder, models::bpe::BPE,
    pre_tokenizers::byte_level::ByteLevel, AddedToken, Tokenizer,
};

pub const WIDTH: usize = 64;
pub const HEADS: usize = 4;
pub const LAYERS: usize = 2;
pub const MELS: usize = 80;
pub const SOURCE_POSITIONS: usize = 1500;
pub const TARGET_POSITIONS: usize = 448;

/// The special tokens after the 256 byte tokens, in Whisper's order.
fn specials(multilingual: bool) -> Vec<String> {
    let mut list = vec!["<|endoftext|>".to_owned(), "<|startoftranscript|>".to_owned()];
    if multilingual {
        list.extend(["<|en|>".to_owned(), "<|hi|>".to_owned()]);
    }
    list.extend(
        [
            "<|translate|>",
            "<|transcribe|>",
            "<|startoflm|>",
            "<|startofprev|>",
            "<|nospeech|>",
            "<|notimestamps|>",
        ]
        .map(str::to_owned),
    );
    list.extend((0..=1500).map(|i| format!("<|{:.2}|>", i as f64 * 0.02)));
    list
}

pub fn vocab_size(multilingual: bool) -> usize {
    256 + specials(multilingual).len()
}

/// A byte-level BPE without merges plus Whisper's special tokens.
pub fn write_tokenizer(path: &Path, multilingual: bool) {
    let vocab: ahash::AHashMap<String, u32> =
        ByteLevel::alphabet().into_iter().enumerate().map(|(i, c)| (c.to_string(), i as u32)).collect();
    let mut sorted: Vec<(String, u32)> = vocab.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let vocab: ahash::AHashMap<String, u32> =
        sorted.into_iter().enumerate().map(|(i, (token, _))| (token, i as u32)).collect();
    let bpe = BPE::builder().vocab_and_merges(vocab, Vec::new()).build().unwrap();
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    let added: Vec<AddedToken> =
        specials(multilingual).into_iter().map(|t| AddedToken::from(t, true)).collect();
    let _ = tokenizer.add_special_tokens(added);
    tokenizer.save(path, false).unwrap();
}

/// Seeded uniform values in [-scale, scale).
fn random(count: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// The Hugging Face-named weights of a tiny checkpoint.
pub fn weights(multilingual: bool, seed: u64) -> HashMap<String, Tensor> {
    let vocab = vocab_size(multilingual);
    let mut shapes: Vec<(String, Vec<usize>)> = vec![
        ("model.encoder.conv1.weight".into(), vec![WIDTH, MELS, 3]),
        ("model.encoder.conv1.bias".into(), vec![WIDTH]),
        ("model.encoder.conv2.weight".into(), vec![WIDTH, WIDTH, 3]),
        ("model.encoder.conv2.bias".into(), vec![WIDTH]),
        ("model.encoder.embed_positions.weight".into(), vec![SOURCE_POSITIONS, WIDTH]),
        ("model.encoder.layer_norm.weight".into(), vec![WIDTH]),
        ("model.encoder.layer_norm.bias".into(), vec![WIDTH]),
        ("model.decoder.embed_tokens.weight".into(), vec![vocab, WIDTH]),
        ("model.decoder.embed_positions.weight".into(), vec![TARGET_POSITIONS, WIDTH]),
        ("model.decoder.layer_norm.weight".into(), vec![WIDTH]),
        ("model.decoder.layer_norm.bias".into(), vec![WIDTH]),
    ];
    for side in ["encoder", "decoder"] {
        for i in 0..LAYERS {
            let p = format!("model.{side}.layers.{i}");
            let mut attn = vec!["self_attn"];
            if side == "decoder" {
                attn.push("encoder_attn");
            }
            for a in attn {
                for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                    shapes.push((format!("{p}.{a}.{proj}.weight"), vec![WIDTH, WIDTH]));
                    if proj != "k_proj" {
                        shapes.push((format!("{p}.{a}.{proj}.bias"), vec![WIDTH]));
                    }
                }
                shapes.push((format!("{p}.{a}_layer_norm.weight"), vec![WIDTH]));
                shapes.push((format!("{p}.{a}_layer_norm.bias"), vec![WIDTH]));
            }
            shapes.push((format!("{p}.fc1.weight"), vec![4 * WIDTH, WIDTH]));
            shapes.push((format!("{p}.fc1.bias"), vec![4 * WIDTH]));
            shapes.push((format!("{p}.fc2.weight"), vec![WIDTH, 4 * WIDTH]));
            shapes.push((format!("{p}.fc2.bias"), vec![WIDTH]));
            shapes.push((format!("{p}.final_layer_norm.weight"), vec![WIDTH]));
            shapes.push((format!("{p}.final_layer_norm.bias"), vec![WIDTH]));
        }
    }
    shapes
        .into_iter()
        .enumerate()
        .map(|(index, (name, shape))| {
            let count: usize = shape.iter().product();
            let values = if name.ends_with("layer_norm.weight") {
                random(count, seed + index as u64, 0.1).into_iter().map(|v| v + 1.0).collect()
            } else {
                random(count, seed + index as u64, 0.2)
            };
            (name, Tensor::from_vec(values, shape, &Device::Cpu).unwrap())
        })
        .collect()
}

fn config_json(multilingual: bool) -> serde_json::Value {
    serde_json::json!({
        "model_type": "whisper",
        "num_mel_bins": MELS, "d_model": WIDTH,
        "encoder_layers": LAYERS, "encoder_attention_heads": HEADS,
        "decoder_layers": LAYERS, "decoder_attention_heads": HEADS,
        "vocab_size": vocab_size(multilingual),
        "max_source_positions": SOURCE_POSITIONS, "max_target_positions": TARGET_POSITIONS,
        "suppress_tokens": [],
    })
}

/// A Hugging Face checkpoint directory.
pub fn write_hf(dir: &Path, multilingual: bool, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    candle_core::safetensors::save(&weights(multilingual, seed), dir.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("config.json"), config_json(multilingual).to_string()).unwrap();
    write_tokenizer(&dir.join("tokenizer.json"), multilingual);
}

/// How CTranslate2 stores the large weights.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Ct2Dtype {
    F32,
    F16,
    I8,
}

fn f32_to_f16(value: f32) -> u16 {
    let bits = value.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exponent = ((bits >> 23) & 0xff) as i32 - 127 + 15;
    let mantissa = bits & 0x7f_ffff;
    if exponent <= 0 {
        if exponent < -10 {
            return sign;
        }
        let m = (mantissa | 0x80_0000) >> (1 - exponent);
        return sign | ((m + 0x1000) >> 13) as u16;
    }
    if exponent >= 31 {
        return sign | 0x7c00;
    }
    let rounded = ((exponent as u32) << 10 | (mantissa >> 13)) + ((mantissa >> 12) & 1);
    sign | rounded as u16
}

struct Writer(Vec<u8>);

impl Writer {
    fn string(&mut self, text: &str) {
        self.0.extend_from_slice(&((text.len() + 1) as u16).to_le_bytes());
        self.0.extend_from_slice(text.as_bytes());
        self.0.push(0);
    }
    fn variable(&mut self, name: &str, shape: &[usize], dtype: u8, bytes: &[u8]) {
        self.string(name);
        self.0.push(shape.len() as u8);
        for d in shape {
            self.0.extend_from_slice(&(*d as u32).to_le_bytes());
        }
        self.0.push(dtype);
        self.0.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        self.0.extend_from_slice(bytes);
    }
    fn f32s(&mut self, name: &str, tensor: &Tensor, dtype: Ct2Dtype, quantize: bool) {
        let shape = tensor.dims().to_vec();
        let values: Vec<f32> = tensor.flatten_all().unwrap().to_vec1().unwrap();
        match dtype {
            Ct2Dtype::I8 if quantize => {
                let rows = shape[0];
                let per_row = values.len() / rows;
                let mut scales = Vec::with_capacity(rows);
                let mut bytes = Vec::with_capacity(values.len());
                for row in values.chunks(per_row) {
                    let amax = row.iter().fold(0f32, |m, v| m.max(v.abs()));
                    let scale = if amax == 0.0 { 1.0 } else { 127.0 / amax };
                    scales.push(scale);
                    bytes.extend(row.iter().map(|v| (v * scale).round().clamp(-127.0, 127.0) as i8 as u8));
                }
                self.variable(name, &shape, 1, &bytes);
                let scale_bytes: Vec<u8> = scales.iter().flat_map(|s| s.to_le_bytes()).collect();
                self.variable(&format!("{name}_scale"), &[rows], 0, &scale_bytes);
            }
            Ct2Dtype::F16 => {
                let bytes: Vec<u8> = values.iter().flat_map(|v| f32_to_f16(*v).to_le_bytes()).collect();
                self.variable(name, &shape, 4, &bytes);
            }
            _ => {
                let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                self.variable(name, &shape, 0, &bytes);
            }
        }
    }
}

/// The same weights as [`write_hf`] as a CTranslate2 directory, fused the way CTranslate2's
/// converter fuses them.
pub fn write_ct2(dir: &Path, multilingual: bool, seed: u64, dtype: Ct2Dtype) {
    std::fs::create_dir_all(dir).unwrap();
    let w = weights(multilingual, seed);
    let get = |name: &str| w.get(name).unwrap_or_else(|| panic!("no {name}")).clone();
    let zeros = Tensor::zeros(WIDTH, candle_core::DType::F32, &Device::Cpu).unwrap();
    let mut out = Writer(Vec::new());
    out.0.extend_from_slice(&6u32.to_le_bytes());
    out.string("WhisperSpec");
    out.0.extend_from_slice(&3u32.to_le_bytes());
    let mut vars: Vec<(String, Tensor, bool)> = Vec::new();
    let linear = |vars: &mut Vec<(String, Tensor, bool)>, ct2: &str, hf: &str| {
        vars.push((format!("{ct2}/weight"), get(&format!("{hf}.weight")), true));
        vars.push((format!("{ct2}/bias"), get(&format!("{hf}.bias")), false));
    };
    let norm = |vars: &mut Vec<(String, Tensor, bool)>, ct2: &str, hf: &str| {
        vars.push((format!("{ct2}/gamma"), get(&format!("{hf}.weight")), false));
        vars.push((format!("{ct2}/beta"), get(&format!("{hf}.bias")), false));
    };
    linear(&mut vars, "encoder/conv1", "model.encoder.conv1");
    linear(&mut vars, "encoder/conv2", "model.encoder.conv2");
    vars.push((
        "encoder/position_encodings/encodings".into(),
        get("model.encoder.embed_positions.weight"),
        false,
    ));
    norm(&mut vars, "encoder/layer_norm", "model.encoder.layer_norm");
    vars.push(("decoder/embeddings/weight".into(), get("model.decoder.embed_tokens.weight"), true));
    vars.push((
        "decoder/position_encodings/encodings".into(),
        get("model.decoder.embed_positions.weight"),
        false,
    ));
    norm(&mut vars, "decoder/layer_norm", "model.decoder.layer_norm");
    for side in ["encoder", "decoder"] {
        for i in 0..LAYERS {
            let (c, h) = (format!("{side}/layer_{i}"), format!("model.{side}.layers.{i}"));
            let a = format!("{h}.self_attn");
            let qkv = Tensor::cat(
                &[
                    get(&format!("{a}.q_proj.weight")),
                    get(&format!("{a}.k_proj.weight")),
                    get(&format!("{a}.v_proj.weight")),
                ],
                0,
            )
            .unwrap();
            let qkv_bias = Tensor::cat(
                &[get(&format!("{a}.q_proj.bias")), zeros.clone(), get(&format!("{a}.v_proj.bias"))],
                0,
            )
            .unwrap();
            vars.push((format!("{c}/self_attention/linear_0/weight"), qkv, true));
            vars.push((format!("{c}/self_attention/linear_0/bias"), qkv_bias, false));
            linear(&mut vars, &format!("{c}/self_attention/linear_1"), &format!("{a}.out_proj"));
            norm(&mut vars, &format!("{c}/self_attention/layer_norm"), &format!("{h}.self_attn_layer_norm"));
            if side == "decoder" {
                let e = format!("{h}.encoder_attn");
                linear(&mut vars, &format!("{c}/attention/linear_0"), &format!("{e}.q_proj"));
                let kv =
                    Tensor::cat(&[get(&format!("{e}.k_proj.weight")), get(&format!("{e}.v_proj.weight"))], 0)
                        .unwrap();
                let kv_bias = Tensor::cat(&[zeros.clone(), get(&format!("{e}.v_proj.bias"))], 0).unwrap();
                vars.push((format!("{c}/attention/linear_1/weight"), kv, true));
                vars.push((format!("{c}/attention/linear_1/bias"), kv_bias, false));
                linear(&mut vars, &format!("{c}/attention/linear_2"), &format!("{e}.out_proj"));
                norm(
                    &mut vars,
                    &format!("{c}/attention/layer_norm"),
                    &format!("{h}.encoder_attn_layer_norm"),
                );
            }
            linear(&mut vars, &format!("{c}/ffn/linear_0"), &format!("{h}.fc1"));
            linear(&mut vars, &format!("{c}/ffn/linear_1"), &format!("{h}.fc2"));
            norm(&mut vars, &format!("{c}/ffn/layer_norm"), &format!("{h}.final_layer_norm"));
        }
    }
    let scalars: Vec<(String, u8, Vec<u8>)> = vec![
        ("decoder/activation".into(), 1, vec![3]),
        ("decoder/num_heads".into(), 2, (HEADS as i16).to_le_bytes().to_vec()),
        ("encoder/num_heads".into(), 2, (HEADS as i16).to_le_bytes().to_vec()),
    ];
    let quantized_count = vars.iter().filter(|(_, _, q)| *q && dtype == Ct2Dtype::I8).count();
    out.0.extend_from_slice(&((vars.len() + quantized_count + scalars.len()) as u32).to_le_bytes());
    for (name, kind, bytes) in &scalars {
        out.variable(name, &[], *kind, bytes);
    }
    for (name, tensor, quantizable) in &vars {
        out.f32s(name, tensor, dtype, *quantizable);
    }
    out.0.extend_from_slice(&1u32.to_le_bytes());
    out.string("decoder/projection/weight");
    out.string("decoder/embeddings/weight");
    std::fs::write(dir.join("model.bin"), out.0).unwrap();
    std::fs::write(
        dir.join("config.json"),
        serde_json::json!({"suppress_ids": [], "suppress_ids_begin": []}).to_string(),
    )
    .unwrap();
    write_tokenizer(&dir.join("tokenizer.json"), multilingual);
}

/// 16-bit PCM WAV bytes of interleaved `channels` x samples in [-1, 1].
pub fn wav_bytes(samples: &[f32], rate: u32, channels: u16) -> Vec<u8> {
    let data: Vec<u8> =
        samples.iter().flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes()).collect();
    let mut out = Vec::with_capacity(44 + data.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * u32::from(channels) * 2).to_le_bytes());
    out.extend_from_slice(&(channels * 2).to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    out
}

/// A sine tone, mono.
pub fn tone(hertz: f64, rate: u32, seconds: f64) -> Vec<f32> {
    let count = (f64::from(rate) * seconds) as usize;
    (0..count)
        .map(|i| (0.5 * (2.0 * std::f64::consts::PI * hertz * i as f64 / f64::from(rate)).sin()) as f32)
        .collect()
}
