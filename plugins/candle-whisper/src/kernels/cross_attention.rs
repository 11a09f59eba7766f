//! The decoder's cross-attention straight from the encoder output, on the CPU.
//!
//! The usual form projects the encoder output `E` (`keys x width`) into keys and values once
//! per layer, then reads both (4.6 MB per layer and sequence for whisper-tiny, 147 MB per
//! decoding step at batch 8, far more than the last-level cache) on every step. The same
//! numbers come from `E` itself, which all layers share:
//!
//! - scores of head `h`: `q_h K_h^T = q_h (E W_h)^T = (q_h W_h) E^T`, with `W_h` the head's
//!   rows of the key weight; the key projection has no bias;
//! - output of head `h`: `P_h V_h = (P_h E) V_h^T + b_h`, since each row of `P_h` sums to 1.
//!
//! The precomputed keys and values (3.5 GFLOP per 30 s window) are gone. A step folds each
//! head's query into `q_h W_h`, then scores and sums `E` in one pass (`rows_attention` in
//! karma-cpu-kernels), reading its 2.3 MB per sequence and layer once for up to 8 heads (tiny
//! and base; larger checkpoints take two or three passes): as two GEMMs it was read twice,
//! from a row-major and a transposed copy.

use candle_core::{CpuStorage, DType, Result, Storage, Tensor};
use rayon::prelude::*;

use karma_cpu_kernels::{
    matmul::{strided_gemm as gemm, Parallelism},
    rows_attention,
};

/// One batch of encoder outputs, f32 and contiguous: `(batch, keys, width)`.
pub struct AudioRows {
    pub rows: Tensor,
}

impl AudioRows {
    pub fn new(audio: &Tensor) -> Result<Self> {
        Ok(AudioRows { rows: audio.to_dtype(DType::F32)?.contiguous()? })
    }

    /// Keeps only sequences `rows` (indices into the current batch), in that order.
    pub fn retain(&mut self, index: &Tensor) -> Result<()> {
        self.rows = self.rows.index_select(index, 0)?;
        Ok(())
    }
}

fn f32_values<'s>(storage: &'s Storage, tensor: &Tensor, what: &str) -> Result<&'s [f32]> {
    let Storage::Cpu(CpuStorage::F32(values)) = storage else {
        candle_core::bail!("cross-attention: {what} must be f32 on the CPU")
    };
    let Some((start, end)) = tensor.layout().contiguous_offsets() else {
        candle_core::bail!("cross-attention: {what} must be contiguous")
    };
    Ok(&values[start..end])
}

/// The key and value weights of one layer's cross-attention.
pub struct CrossWeights<'a> {
    /// `(width, width)`, `[out, in]`.
    pub key: &'a Tensor,
    pub value: &'a Tensor,
    pub value_bias: Option<&'a Tensor>,
    pub heads: usize,
}

/// Per head, `softmax(q_h K_h^T / sqrt(head_dim)) V_h` for `q` `(batch, time, width)` (the
/// query projection) over `audio`; `(batch, time, width)`, before the output projection.
pub fn attend_audio(q: &Tensor, audio: &AudioRows, weights: &CrossWeights<'_>) -> Result<Tensor> {
    let (batch, time, width) = q.dims3()?;
    let (audio_batch, keys, audio_width) = audio.rows.dims3()?;
    let heads = weights.heads;
    if audio_batch != batch || audio_width != width || heads == 0 || width % heads != 0 {
        candle_core::bail!(
            "cross-attention: queries {:?} against audio {:?} with {heads} heads",
            q.dims(),
            audio.rows.dims()
        )
    }
    let head_dim = width / heads;
    let scale = (head_dim as f32).powf(-0.5);
    let q = q.to_dtype(DType::F32)?.contiguous()?;
    let (key, value) = (weights.key.contiguous()?, weights.value.contiguous()?);
    let mut bias = vec![0f32; width];
    if let Some(value_bias) = weights.value_bias {
        let value_bias = value_bias.to_dtype(DType::F32)?.contiguous()?;
        let (storage, _) = value_bias.storage_and_layout();
        bias.copy_from_slice(f32_values(&storage, &value_bias, "the value bias")?);
    }
    let (q_storage, _) = q.storage_and_layout();
    let (rows_storage, _) = audio.rows.storage_and_layout();
    let (key_storage, _) = key.storage_and_layout();
    let (value_storage, _) = value.storage_and_layout();
    let q = f32_values(&q_storage, &q, "the queries")?;
    let rows = f32_values(&rows_storage, &audio.rows, "the audio")?;
    let key = f32_values(&key_storage, &key, "the key weight")?;
    let value = f32_values(&value_storage, &value, "the value weight")?;
    if key.len() != width * width || value.len() != width * width {
        candle_core::bail!("cross-attention: key and value weights must be {width}x{width}")
    }
    let mut out = vec![0f32; batch * time * width];
    let threads = rayon::current_num_threads();
    // Enough sequences keep every thread busy one each; fewer share their GEMMs instead.
    let (inner, outer_parallel) = if batch >= threads || threads < 2 {
        (Parallelism::None, true)
    } else {
        (Parallelism::Rayon(threads), false)
    };
    let one = |sequence: usize, out: &mut [f32]| {
        let q = &q[sequence * time * width..][..time * width];
        let rows = &rows[sequence * keys * width..][..keys * width];
        // Query row r = head * time + t of the folded queries and the mixed audio.
        let n = heads * time;
        let mut folded = vec![0f32; n * width];
        let mut mixed = vec![0f32; n * width];
        // SAFETY (all products below): the sizes and strides address `time x head_dim`
        // blocks of `q` and `out`, `head_dim x width` blocks of the weights, and the
        // `n x width` buffers, all within their slices.
        for head in 0..heads {
            let column = head * head_dim;
            unsafe {
                gemm(
                    (time, width, head_dim),
                    (folded.as_mut_ptr().add(head * time * width), width, 1),
                    false,
                    (q.as_ptr().add(column), width, 1),
                    (key.as_ptr().add(column * width), width, 1),
                    inner,
                )
            }
        }
        // Softmax-weighted rows of E per folded query, in one pass (see `rows_attention`);
        // with inner parallelism each thread takes a share of the rows, and the parts merge.
        let partial = match inner {
            Parallelism::Rayon(threads) => {
                rows_attention::attend_rows_split(&folded, rows, width, scale, threads)
            }
            Parallelism::None => rows_attention::attend_rows(&folded, rows, width, scale),
        };
        partial.finish(&mut mixed);
        for t in 0..time {
            out[t * width..][..width].copy_from_slice(&bias);
        }
        for head in 0..heads {
            let column = head * head_dim;
            unsafe {
                gemm(
                    (time, head_dim, width),
                    (out.as_mut_ptr().add(column), width, 1),
                    true,
                    (mixed.as_ptr().add(head * time * width), width, 1),
                    (value.as_ptr().add(column * width), 1, width),
                    inner,
                )
            }
        }
    };
    if outer_parallel {
        out.par_chunks_mut(time * width).enumerate().for_each(|(sequence, out)| one(sequence, out));
    } else {
        out.chunks_mut(time * width).enumerate().for_each(|(sequence, out)| one(sequence, out));
    }
    Tensor::from_vec(out, (batch, time, width), &candle_core::Device::Cpu)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, D};

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }

    /// The usual form: project keys and values, then attend per head with candle's ops.
    fn through_keys_and_values(
        q: &Tensor,
        audio: &Tensor,
        key: &Tensor,
        value: &Tensor,
        bias: &Tensor,
        heads: usize,
    ) -> Result<Tensor> {
        let (batch, time, width) = q.dims3()?;
        let keys = audio.dim(1)?;
        let k = audio.broadcast_matmul(&key.t()?)?;
        let v = audio.broadcast_matmul(&value.t()?)?.broadcast_add(bias)?;
        let head_dim = width / heads;
        let split = |x: &Tensor, len: usize| -> Result<Tensor> {
            x.reshape((batch, len, heads, head_dim))?.transpose(1, 2)?.contiguous()
        };
        let scores = (split(q, time)?.matmul(&split(&k, keys)?.t()?)? * (head_dim as f64).powf(-0.5))?;
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        weights.matmul(&split(&v, keys)?)?.transpose(1, 2)?.flatten_from(2)?.contiguous()
    }

    #[test]
    fn attention_from_the_audio_equals_attention_through_keys_and_values() -> Result<()> {
        let device = Device::Cpu;
        // Odd sizes: keys not a multiple of the SIMD width; one and several query rows.
        for (batch, time, keys, heads, head_dim) in [(3, 1, 61, 3, 8), (2, 4, 37, 2, 12), (1, 1, 1500, 6, 16)]
        {
            let width = heads * head_dim;
            let tensor = |len: usize, seed: u32, shape: &[usize]| {
                let scaled: Vec<f32> = values(len, seed).iter().map(|v| v * 0.5).collect();
                Tensor::from_vec(scaled, shape, &device)
            };
            let q = tensor(batch * time * width, 1, &[batch, time, width])?;
            let audio = tensor(batch * keys * width, 2, &[batch, keys, width])?;
            let key = tensor(width * width, 3, &[width, width])?;
            let value = tensor(width * width, 4, &[width, width])?;
            let bias = tensor(width, 5, &[width])?;
            let want = through_keys_and_values(&q, &audio, &key, &value, &bias, heads)?;
            let weights = CrossWeights { key: &key, value: &value, value_bias: Some(&bias), heads };
            let got = attend_audio(&q, &AudioRows::new(&audio)?, &weights)?;
            let worst = (got - &want)?.abs()?.flatten_all()?.max(D::Minus1)?.to_scalar::<f32>()?;
            assert!(worst < 1e-4, "{batch}x{time}x{keys}, {heads} heads: off by {worst}");
        }
        Ok(())
    }
}
