//! Attention for decode steps on the CPU: one parallel task per (sequence, key/value head).
//!
//! Through candle's general ops a decode step's attention is two batched matmuls (one small GEMM
//! per sequence and head, each its own parallel region), a broadcast mask add and a softmax:
//! at batch 8 that costs more than all the step's projections. Here each (sequence, head) pair
//! scores its keys with the few-rows kernel, applies the padding and causal rules while taking
//! the softmax, and sums the values, all in one pass over the cache.
//!
//! A sequence's result does not depend on the others in its batch: masked keys are skipped,
//! never added as zeros, so a left-padded sequence sums exactly the terms it sums alone.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape};
use rayon::prelude::*;

use karma_cpu_kernels::few_rows;

/// Query columns up to which attention takes this path; prefill keeps the GEMMs.
pub const MAX_COLUMNS: usize = 4;

/// `softmax(q k^T * scale + mask) v` for `q` `[batch, kv_heads, groups * columns, head_dim]`
/// (query rows ordered group-major) and `k`, `v` `[batch, kv_heads, seen, head_dim]` (views of
/// the KV cache: each head's rows contiguous).
pub struct DecodeAttention<'a> {
    /// Per sequence, left-padding columns at the start of the whole sequence.
    pub padding: &'a [usize],
    /// Columns cached before this step's.
    pub past: usize,
    /// This step's query columns.
    pub columns: usize,
    pub scale: f32,
}

/// The keys query column `column` (after `past` cached ones) of a sequence with `padding` pad
/// columns sees: those at or before it that are not padding, or only itself when it is padding
/// (so its softmax stays finite). The same rule as the decoder's additive mask.
pub(super) fn visible_keys(padding: usize, past: usize, column: usize) -> std::ops::RangeInclusive<usize> {
    let query = past + column;
    if query >= padding {
        padding..=query
    } else {
        query..=query
    }
}

/// A view's base offset and its strides, checked to have contiguous rows of `head_dim`.
pub(super) fn head_blocks(layout: &Layout, what: &str) -> Result<(usize, [usize; 4])> {
    let stride: [usize; 4] = layout
        .stride()
        .try_into()
        .map_err(|_| candle_core::Error::Msg(format!("decode attention: {what} must be 4-D")))?;
    let head_dim = layout.dims()[3];
    if stride[3] != 1 || stride[2] != head_dim {
        candle_core::bail!("decode attention: each head's {what} rows must be contiguous, strides {stride:?}")
    }
    Ok((layout.start_offset(), stride))
}

/// The `len` values of one (sequence, head) block of a cache view.
pub(super) fn head_rows(
    values: &[f32],
    offset: usize,
    stride: [usize; 4],
    (sequence, head): (usize, usize),
    len: usize,
) -> &[f32] {
    let start = offset + sequence * stride[0] + head * stride[1];
    &values[start..start + len]
}

pub(super) fn f32_values<'s>(storage: &'s CpuStorage, what: &str) -> Result<&'s [f32]> {
    match storage {
        CpuStorage::F32(values) => Ok(values),
        _ => candle_core::bail!("decode attention: {what} must be f32"),
    }
}

impl CustomOp3 for DecodeAttention<'_> {
    fn name(&self) -> &'static str {
        "decode-attention"
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
        let (batch, kv_heads, query_rows, head_dim) = q_layout.shape().dims4()?;
        let (k_batch, k_heads, seen, k_dim) = k_layout.shape().dims4()?;
        if (k_batch, k_heads, k_dim) != (batch, kv_heads, head_dim) || v_layout.dims() != k_layout.dims() {
            candle_core::bail!(
                "decode attention: shapes disagree: q {:?}, k {:?}, v {:?}",
                q_layout.dims(),
                k_layout.dims(),
                v_layout.dims()
            )
        }
        if self.padding.len() != batch
            || self.columns == 0
            || query_rows % self.columns != 0
            || self.past + self.columns != seen
        {
            candle_core::bail!(
                "decode attention: {} paddings, {} past and {} new columns for q {:?}, k {:?}",
                self.padding.len(),
                self.past,
                self.columns,
                q_layout.dims(),
                k_layout.dims()
            )
        }
        let Some((q_start, q_end)) = q_layout.contiguous_offsets() else {
            candle_core::bail!("decode attention: q must be contiguous")
        };
        let q = &f32_values(q, "q")?[q_start..q_end];
        let (k_values, v_values) = (f32_values(k, "k")?, f32_values(v, "v")?);
        let (k_offset, k_stride) = head_blocks(k_layout, "key")?;
        let (v_offset, v_stride) = head_blocks(v_layout, "value")?;

        let mut out = vec![0f32; q.len()];
        let per_head = query_rows * head_dim;
        out.par_chunks_mut(per_head.max(1)).zip(q.par_chunks(per_head.max(1))).enumerate().for_each(
            |(index, (out, queries))| {
                let (sequence, head) = (index / kv_heads, index % kv_heads);
                let keys = head_rows(k_values, k_offset, k_stride, (sequence, head), seen * head_dim);
                let values = head_rows(v_values, v_offset, v_stride, (sequence, head), seen * head_dim);
                let rows: Vec<&[f32]> = queries.chunks_exact(head_dim).collect();
                // `scores[key * query_rows + row]`, the few-rows layout.
                let mut scores = vec![0f32; seen * query_rows];
                few_rows::dot_rows(keys, &rows, &mut scores);
                let mut weights = vec![0f32; seen];
                for (row, out) in out.chunks_exact_mut(head_dim).enumerate() {
                    let visible = visible_keys(self.padding[sequence], self.past, row % self.columns);
                    let weights = &mut weights[visible.clone()];
                    for (weight, key) in weights.iter_mut().zip(visible.clone()) {
                        *weight = scores[key * query_rows + row] * self.scale;
                    }
                    let max = weights.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut total = 0f32;
                    for weight in weights.iter_mut() {
                        *weight = (*weight - max).exp();
                        total += *weight;
                    }
                    let values = &values[visible.start() * head_dim..(visible.end() + 1) * head_dim];
                    for (weight, value) in weights.iter().zip(values.chunks_exact(head_dim)) {
                        let weight = weight / total;
                        for (out, value) in out.iter_mut().zip(value) {
                            *out += weight * value;
                        }
                    }
                }
            },
        );
        Ok((CpuStorage::F32(out), q_layout.shape().clone()))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use candle_core::{Device, Tensor};

    use super::*;

    /// `softmax(q k^T * scale)` over the keys the mask rule shows, times `v`, in f64 loops.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::arch) fn reference(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        (batch, heads, rows, head_dim, seen): (usize, usize, usize, usize, usize),
        padding: &[usize],
        past: usize,
        columns: usize,
        scale: f64,
    ) -> Vec<f32> {
        let mut out = Vec::new();
        for sequence in 0..batch {
            for head in 0..heads {
                let block = (sequence * heads + head) * seen * head_dim;
                for row in 0..rows {
                    let query = &q[((sequence * heads + head) * rows + row) * head_dim..][..head_dim];
                    let position = past + row % columns;
                    let visible: Vec<usize> = (0..seen)
                        .filter(|&key| (key <= position && key >= padding[sequence]) || key == position)
                        .collect();
                    let scores: Vec<f64> = visible
                        .iter()
                        .map(|&key| {
                            let key_row = &k[block + key * head_dim..][..head_dim];
                            query.iter().zip(key_row).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum::<f64>()
                                * scale
                        })
                        .collect();
                    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let total: f64 = scores.iter().map(|score| (score - max).exp()).sum();
                    for dim in 0..head_dim {
                        let value: f64 = visible
                            .iter()
                            .zip(&scores)
                            .map(|(&key, score)| {
                                (score - max).exp() / total * f64::from(v[block + key * head_dim + dim])
                            })
                            .sum();
                        out.push(value as f32);
                    }
                }
            }
        }
        out
    }

    /// Runs `op` (built for `padding`, `past`, `columns` and `scale`) on random queries and on
    /// keys and values as the KV cache hands them out, the first `past + columns` of `capacity`
    /// columns (each head's rows contiguous, heads `capacity` rows apart), and checks it against
    /// [`reference`].
    pub(in crate::arch) fn assert_matches_reference(
        op: &impl candle_core::CustomOp3,
        (batch, heads, groups, head_dim, capacity): (usize, usize, usize, usize, usize),
        padding: &[usize],
        (past, columns, scale): (usize, usize, f64),
    ) {
        let device = Device::Cpu;
        let seen = past + columns;
        let rows = groups * columns;
        let q = Tensor::randn(0f32, 1.0, (batch, heads, rows, head_dim), &device).unwrap();
        let buffer = |seed: f32| {
            (Tensor::randn(0f32, 1.0, (batch, heads, capacity, head_dim), &device).unwrap() + f64::from(seed))
                .unwrap()
                .narrow(2, 0, seen)
                .unwrap()
        };
        let (k, v) = (buffer(0.0), buffer(0.5));
        let got: Vec<f32> = q.apply_op3_no_bwd(&k, &v, op).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let flat = |t: &Tensor| t.contiguous().unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let dims = (batch, heads, rows, head_dim, seen);
        let want = reference(&flat(&q), &flat(&k), &flat(&v), dims, padding, past, columns, scale);
        assert_eq!(got.len(), want.len());
        for (index, (got, want)) in got.iter().zip(&want).enumerate() {
            assert!(
                (got - want).abs() < 1e-5,
                "past {past}, columns {columns}, element {index}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn matches_masked_softmax_attention_on_cache_views_with_padding() {
        for (past, columns) in [(6, 1), (5, 2)] {
            let padding = [0, 2, past + columns - 1];
            let scale = 0.3;
            let op = DecodeAttention { padding: &padding, past, columns, scale: scale as f32 };
            assert_matches_reference(&op, (3, 2, 3, 20, 16), &padding, (past, columns, scale));
        }
    }

    #[test]
    fn inconsistent_shapes_are_errors_not_panics() {
        let device = Device::Cpu;
        let q = Tensor::zeros((1, 1, 1, 4), candle_core::DType::F32, &device).unwrap();
        let k = Tensor::zeros((1, 1, 3, 4), candle_core::DType::F32, &device).unwrap();
        let wrong_past = DecodeAttention { padding: &[0], past: 5, columns: 1, scale: 1.0 };
        assert!(q.apply_op3_no_bwd(&k, &k, &wrong_past).is_err());
        let wrong_batch = DecodeAttention { padding: &[0, 0], past: 2, columns: 1, scale: 1.0 };
        assert!(q.apply_op3_no_bwd(&k, &k, &wrong_batch).is_err());
    }
}
