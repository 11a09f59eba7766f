//! Multi-head attention on the CPU in blocks of queries, straight from the projections'
//! `(batch, time, width)` layout to the output projection's.
//!
//! Through candle's general ops one encoder layer of whisper-tiny materialises a
//! `(batch, 6, 1500, 1500)` score tensor and a softmax of the same size, 54 MB each per clip,
//! freshly allocated (and page-faulted) every call, then read back from memory. Here each task
//! takes one block of query rows of one sequence: per head, a GEMM scores the block against the
//! keys into a buffer that stays in L2, the softmax runs in place on it (vectorised `exp`), and
//! a second GEMM sums the values into the output rows, which are divided by the softmax sum
//! once per row. Heads are read and written through strides, so no split or transpose copies.
//! A decoding step (one query row per sequence) has no block to share: there each task takes
//! one head of one sequence and streams its keys and values row by row, so that both cores
//! read memory even for a single sequence.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape};
use rayon::prelude::*;

use karma_cpu_kernels::{
    matmul::{strided_gemm, Parallelism},
    vector_math,
};

/// Query rows per task: their `rows x keys` scores (384 KB for 1500 keys) stay in L2, and each
/// head's keys and values are streamed once per 64 queries. Against 32 rows this made an
/// encoder layer's attention 15% faster on a 2-core AVX2 machine (1 MB L2); 96 and 128 rows
/// gained under 3% more.
const QUERY_BLOCK: usize = 64;

/// `softmax(q k^T * scale) v` per head, for `q` `(batch, time, width)` and `k`, `v`
/// `(batch, keys, width)`, head `h` in columns `h * head_dim..(h + 1) * head_dim`.
pub struct BlockedAttention {
    pub heads: usize,
    pub scale: f32,
    /// Query row `i` sees keys `0..=keys - time + i` only (the decoder's self-attention, where
    /// the last `time` keys belong to the queries themselves); otherwise every key.
    pub causal: bool,
    /// Causal only: per sequence, how many leading keys are padding (prompts of different
    /// lengths left-padded to one batch). The padding is hidden from every later row; a
    /// padding row itself sees only its own key, so that its values stay finite. Empty: none.
    pub pads: Vec<usize>,
}

impl BlockedAttention {
    /// The keys `from..to` that the query at key position `position` of `sequence` sees.
    fn visible(&self, sequence: usize, position: usize, keys: usize) -> (usize, usize) {
        if !self.causal {
            return (0, keys);
        }
        causal_keys(self.pads.get(sequence).copied().unwrap_or(0), position)
    }
}

/// The keys `from..to` that a causal query at key position `position` sees when the first
/// `pad` keys are padding: its own and the real ones before it, or only its own when it is
/// padding itself. Shared with the tensor-op mask of GPUs and half precision.
pub fn causal_keys(pad: usize, position: usize) -> (usize, usize) {
    (if position < pad { position } else { pad }, position + 1)
}

fn contiguous_f32<'s>(storage: &'s CpuStorage, layout: &Layout, what: &str) -> Result<&'s [f32]> {
    let CpuStorage::F32(values) = storage else { candle_core::bail!("attention: {what} must be f32") };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("attention: {what} must be contiguous")
    };
    Ok(&values[start..end])
}

impl CustomOp3 for BlockedAttention {
    fn name(&self) -> &'static str {
        "blocked-attention"
    }

    fn cpu_fwd(
        &self,
        q: &CpuStorage,
        q_layout: &Layout,
        k: &CpuStorage,
        k_layout: &Layout,
        v: &CpuStorage,
        v_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (batch, time, width) = q_layout.shape().dims3()?;
        let (k_batch, keys, k_width) = k_layout.shape().dims3()?;
        if (k_batch, k_width) != (batch, width)
            || v_layout.dims() != k_layout.dims()
            || self.heads == 0
            || width % self.heads != 0
            || (self.causal && time > keys)
            || (!self.pads.is_empty() && (!self.causal || self.pads.len() != batch))
            || self.pads.iter().any(|pad| *pad >= keys)
        {
            candle_core::bail!(
                "attention: shapes disagree for {} heads: q {:?}, k {:?}, v {:?}, pads {:?}",
                self.heads,
                q_layout.dims(),
                k_layout.dims(),
                v_layout.dims(),
                self.pads
            )
        }
        let q = contiguous_f32(q, q_layout, "queries")?;
        let k = contiguous_f32(k, k_layout, "keys")?;
        let v = contiguous_f32(v, v_layout, "values")?;
        let head_dim = width / self.heads;
        let mut out = vec![0f32; batch * time * width];
        if out.is_empty() || keys == 0 {
            return Ok((CpuStorage::F32(out), q_layout.shape().clone()));
        }
        if time == 1 {
            // A decoding step: one task per (sequence, head), each streaming its head's columns
            // of the keys and then the values, so both cores read memory even at batch 1.
            out.par_chunks_mut(head_dim).enumerate().for_each_init(
                || vec![0f32; keys],
                |scores, (index, out)| {
                    let (sequence, column) = (index / self.heads, (index % self.heads) * head_dim);
                    let (from, to) = self.visible(sequence, keys - 1, keys);
                    let k = &k[(sequence * keys + from) * width..][..(to - from) * width];
                    let v = &v[(sequence * keys + from) * width..][..(to - from) * width];
                    let q = &q[sequence * width + column..][..head_dim];
                    vector_math::one_query_attention(
                        q,
                        &k[column..],
                        &v[column..],
                        width,
                        self.scale,
                        &mut scores[..to - from],
                        out,
                    );
                },
            );
            return Ok((CpuStorage::F32(out), q_layout.shape().clone()));
        }
        let past = keys - time.min(keys);
        out.par_chunks_mut(time * width).enumerate().for_each(|(sequence, out)| {
            let q = &q[sequence * time * width..][..time * width];
            let k = &k[sequence * keys * width..][..keys * width];
            let v = &v[sequence * keys * width..][..keys * width];
            let block_rows = QUERY_BLOCK.min(time);
            out.par_chunks_mut(block_rows * width).enumerate().for_each_init(
                || vec![0f32; block_rows * keys],
                |scores, (block, out)| {
                    let first = block * block_rows;
                    let rows = out.len() / width;
                    let q = &q[first * width..][..rows * width];
                    for head in 0..self.heads {
                        let column = head * head_dim;
                        // SAFETY: q's `rows x head_dim` block at `column` (row stride `width`),
                        // k's `head_dim x keys` transpose and `scores`' `rows x keys` are in bounds.
                        unsafe {
                            strided_gemm(
                                (rows, keys, head_dim),
                                (scores.as_mut_ptr(), keys, 1),
                                false,
                                (q.as_ptr().add(column), width, 1),
                                (k.as_ptr().add(column), 1, width),
                                Parallelism::None,
                            )
                        }
                        let mut sums = [0f32; QUERY_BLOCK];
                        for (row, sum) in sums.iter_mut().enumerate().take(rows) {
                            let scores = &mut scores[row * keys..][..keys];
                            let (from, to) = self.visible(sequence, past + first + row, keys);
                            *sum = vector_math::softmax_unnormalised(&mut scores[from..to], self.scale);
                            scores[..from].fill(0.0);
                            scores[to..].fill(0.0);
                        }
                        // SAFETY: `scores` is `rows x keys`, v's `keys x head_dim` block at
                        // `column` and out's `rows x head_dim` block at `column` are in bounds.
                        unsafe {
                            strided_gemm(
                                (rows, head_dim, keys),
                                (out.as_mut_ptr().add(column), width, 1),
                                false,
                                (scores.as_ptr(), keys, 1),
                                (v.as_ptr().add(column), width, 1),
                                Parallelism::None,
                            )
                        }
                        for (row, sum) in sums.iter().enumerate().take(rows) {
                            let inverse = 1.0 / sum;
                            for value in &mut out[row * width + column..][..head_dim] {
                                *value *= inverse;
                            }
                        }
                    }
                },
            );
        });
        Ok((CpuStorage::F32(out), q_layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    /// Attention in f64 from its definition.
    fn reference(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        dims: (usize, usize, usize, usize),
        heads: usize,
        causal: bool,
        pads: &[usize],
    ) -> Vec<f64> {
        let (batch, time, keys, width) = dims;
        let head_dim = width / heads;
        let scale = (head_dim as f64).powf(-0.5);
        let mut out = vec![0f64; batch * time * width];
        for b in 0..batch {
            for h in 0..heads {
                for i in 0..time {
                    let position = keys - time + i;
                    let pad = pads.get(b).copied().unwrap_or(0);
                    let (from, visible) = match causal {
                        false => (0, keys),
                        true if position < pad => (position, position + 1),
                        true => (pad, position + 1),
                    };
                    let scores: Vec<f64> = (from..visible)
                        .map(|j| {
                            (0..head_dim)
                                .map(|d| {
                                    q[(b * time + i) * width + h * head_dim + d] as f64
                                        * k[(b * keys + j) * width + h * head_dim + d] as f64
                                })
                                .sum::<f64>()
                                * scale
                        })
                        .collect();
                    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                    let total: f64 = weights.iter().sum();
                    for d in 0..head_dim {
                        out[(b * time + i) * width + h * head_dim + d] = (from..visible)
                            .map(|j| weights[j - from] * v[(b * keys + j) * width + h * head_dim + d] as f64)
                            .sum::<f64>()
                            / total;
                    }
                }
            }
        }
        out
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }

    #[test]
    fn one_query_attention_is_the_same_on_the_portable_build() {
        // 70 keys of a 3-head, 13-wide layout (head width not a multiple of the SIMD width).
        let (keys, width, head_dim) = (70, 39, 13);
        let (q, k, v) = (values(width, 4), values(keys * width, 5), values(keys * width, 6));
        let (mut scores, mut wide, mut portable) =
            (vec![0f32; keys], vec![0f32; head_dim], vec![0f32; head_dim]);
        let column = head_dim;
        let q = &q[column..][..head_dim];
        vector_math::one_query_attention(q, &k[column..], &v[column..], width, 0.3, &mut scores, &mut wide);
        vector_math::portable::one_query_attention(
            q,
            &k[column..],
            &v[column..],
            width,
            0.3,
            &mut scores,
            &mut portable,
        );
        for (wide, portable) in wide.iter().zip(&portable) {
            assert!((wide - portable).abs() < 1e-6, "{wide} against {portable}");
        }
    }

    #[test]
    fn blocked_attention_matches_the_definition_with_and_without_the_causal_rule() -> Result<()> {
        // Odd sizes: a last query block of 5 or 6 rows, keys not a multiple of the SIMD width.
        for (batch, time, keys, heads, causal, pads) in [
            (2, 69, 69, 3, false, vec![]),
            (2, 37, 53, 4, false, vec![]),
            (1, 70, 75, 2, true, vec![]),
            (3, 7, 11, 2, true, vec![]),
            (1, 1, 9, 2, true, vec![]),
            // Decoding steps (one query row): cross-attention over many keys, and causal.
            (3, 1, 1501, 6, false, vec![]),
            (2, 1, 13, 3, true, vec![]),
            // Left-padded prompts: a whole prompt, then steps after it; padding rows included.
            (3, 70, 70, 2, true, vec![0, 5, 66]),
            (3, 4, 11, 2, true, vec![6, 0, 9]),
            (2, 1, 13, 3, true, vec![12, 3]),
        ] {
            let width = heads * 8;
            let (q, k, v) = (
                values(batch * time * width, 1),
                values(batch * keys * width, 2),
                values(batch * keys * width, 3),
            );
            let device = Device::Cpu;
            let op = BlockedAttention { heads, scale: (8f32).powf(-0.5), causal, pads: pads.clone() };
            let got = Tensor::from_slice(&q, (batch, time, width), &device)?
                .apply_op3_no_bwd(
                    &Tensor::from_slice(&k, (batch, keys, width), &device)?,
                    &Tensor::from_slice(&v, (batch, keys, width), &device)?,
                    &op,
                )?
                .flatten_all()?
                .to_vec1::<f32>()?;
            let want = reference(&q, &k, &v, (batch, time, keys, width), heads, causal, &pads);
            for (index, (got, want)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (*got as f64 - want).abs() < 1e-5,
                    "{batch}x{time}x{keys} causal {causal} pads {pads:?}, [{index}]: {got} against {want}"
                );
            }
        }
        Ok(())
    }
}
