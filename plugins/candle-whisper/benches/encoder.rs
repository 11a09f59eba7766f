//! The audio encoder of a whisper-tiny-shaped network (random weights: speed does not depend
//! on their values) on one 30 s window, against the machine's own f32 GEMM throughput measured
//! in the same run on the encoder's largest product (`fc1`, 1500 x 384 x 1536): the encoder's
//! useful GFLOP/s as a fraction of what a plain GEMM reaches here. Also a batch of two windows,
//! which the encoder runs side by side, one per thread. Rounds are interleaved, and each
//! side's fastest round is reported.
//!
//!     cargo bench -p karma-plugin-candle-whisper --bench encoder

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use karma_cpu_kernels::matmul::{strided_gemm, Parallelism};
use karma_plugin_candle_whisper::network::{Whisper, WhisperDims};

const ROUNDS: usize = 15;
const FRAMES: usize = 1500;

fn dims() -> WhisperDims {
    WhisperDims {
        num_mel_bins: 80,
        d_model: 384,
        encoder_layers: 4,
        encoder_attention_heads: 6,
        decoder_layers: 1,
        decoder_attention_heads: 6,
        vocab_size: 64,
        max_source_positions: FRAMES,
        max_target_positions: 448,
    }
}

/// Multiply-adds times two: the convolutions, then per layer the four projections, the MLP
/// and attention's two products.
fn encoder_flops(dims: &WhisperDims) -> f64 {
    let (t, w, mels) = (FRAMES as f64, dims.d_model as f64, dims.num_mel_bins as f64);
    let convolutions = 2.0 * t * 3.0 * mels * w + t * 3.0 * w * w;
    let layer = 4.0 * t * w * w + 8.0 * t * w * w + 2.0 * t * t * w;
    2.0 * (convolutions + dims.encoder_layers as f64 * layer)
}

fn gemm_seconds(rows: usize, inputs: usize, outputs: usize, x: &[f32], w: &[f32], out: &mut [f32]) -> f64 {
    let threads = rayon::current_num_threads();
    let parallelism = if threads > 1 { Parallelism::Rayon(threads) } else { Parallelism::None };
    let started = Instant::now();
    // SAFETY: `out` is rows x outputs, `x` rows x inputs, `w` outputs x inputs, all row-major.
    unsafe {
        strided_gemm(
            (rows, outputs, inputs),
            (out.as_mut_ptr(), outputs, 1),
            false,
            (x.as_ptr(), inputs, 1),
            (w.as_ptr(), 1, inputs),
            parallelism,
        )
    }
    started.elapsed().as_secs_f64()
}

/// The fastest round: on a shared machine the others carry other tenants' load.
fn fastest(values: Vec<f64>) -> f64 {
    values.into_iter().fold(f64::INFINITY, f64::min)
}

fn main() -> candle_core::Result<()> {
    // As karma-host sets it (host/src/main.rs): freed activations are reused, not unmapped.
    // SAFETY: mallopt only sets allocator parameters; no other thread exists yet.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
    let device = Device::Cpu;
    let dims = dims();
    let weights = VarMap::new();
    let vb = VarBuilder::from_varmap(&weights, DType::F32, &device);
    let model = Whisper::load(vb, dims.clone())?;
    let mel = Tensor::randn(0f32, 1.0, (1, dims.num_mel_bins, 2 * FRAMES), &device)?;
    let pair = Tensor::randn(0f32, 1.0, (2, dims.num_mel_bins, 2 * FRAMES), &device)?;
    let (inputs, outputs) = (dims.d_model, 4 * dims.d_model);
    let x: Vec<f32> = (0..FRAMES * inputs).map(|i| (i % 97) as f32 * 0.01).collect();
    let w: Vec<f32> = (0..outputs * inputs).map(|i| (i % 89) as f32 * 0.01).collect();
    let mut out = vec![0f32; FRAMES * outputs];
    model.encode(&mel)?; // warm-up: page faults, thread pool
    let (mut encoder, mut gemm, mut pairs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let started = Instant::now();
        model.encode(&mel)?;
        encoder.push(started.elapsed().as_secs_f64());
        gemm.push(gemm_seconds(FRAMES, inputs, outputs, &x, &w, &mut out));
        let started = Instant::now();
        model.encode(&pair)?;
        pairs.push(started.elapsed().as_secs_f64() / 2.0);
    }
    let (encoder, gemm, pairs) = (fastest(encoder), fastest(gemm), fastest(pairs));
    let encoder_rate = encoder_flops(&dims) / encoder / 1e9;
    let gemm_rate = 2.0 * (FRAMES * inputs * outputs) as f64 / gemm / 1e9;
    println!(
        "whisper-tiny encoder, one 30 s window, {} threads: {:.1} ms, {encoder_rate:.0} GFLOP/s; plain GEMM {gemm_rate:.0} GFLOP/s; encoder at {:.2} of GEMM",
        rayon::current_num_threads(),
        encoder * 1000.0,
        encoder_rate / gemm_rate
    );
    println!(
        "two windows side by side: {:.1} ms a window, {:.2}x one window alone",
        pairs * 1000.0,
        encoder / pairs
    );
    Ok(())
}
