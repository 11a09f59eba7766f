//! Attention for prefill steps on the CPU, in blocks of query rows.
//!
//! Through candle's general ops a prefill's attention materialises the whole
//! `[batch, heads, columns, seen]` score tensor, scales it, adds a mask of the same size,
//! takes a softmax into a third and multiplies the values: passes over freshly allocated
//! tensors that took a fifth of SmolLM2's prefill at batch 8 for under 1% of its FLOPs. Here a
//! task takes one block of query rows of one (sequence, head): a GEMM scores the block against
//! the keys it can see into a buffer that stays in L2, the softmax runs in place on it
//! (vectorised `exp`), and a second GEMM sums the values into the output rows, divided once per
//! row by the softmax sum.
//!
//! The mask rule is [`decode_attention::visible_keys`]'s: a left-padded sequence's keys start at
//! its first real token, so its scores and sums cover the same keys as alone, and a padding
//! query sees only itself (its output is its own value row).

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape};
use karma_cpu_kernels::{
    matmul::{strided_gemm, Parallelism},
    vector_math,
};
use rayon::prelude::*;

use super::decode_attention::{f32_values, head_blocks, head_rows, visible_keys};

/// Query rows per task: their scores against 1,000 keys (256 KB) stay in L2, and each head's
/// keys and values are read once per block.
const QUERY_BLOCK: usize = 64;

/// `softmax(q k^T * scale + mask) v` for `q` `[batch, kv_heads, groups * columns, head_dim]`
/// (query rows ordered group-major) and `k`, `v` `[batch, kv_heads, seen, head_dim]` (views of
/// the KV cache: each head's rows contiguous), as [`super::decode_attention::DecodeAttention`]
/// takes them.
pub struct PrefillAttention<'a> {
    /// Per sequence, left-padding columns at the start of the whole sequence.
    pub padding: &'a [usize],
    /// Columns cached before this step's.
    pub past: usize,
    /// This step's query columns.
    pub columns: usize,
    pub scale: f32,
}

/// Where one task's query rows and keys lie.
struct Block<'a> {
    /// The block's query rows, `rows x head_dim`.
    queries: &'a [f32],
    /// The head's keys and values, `seen x head_dim`.
    keys: &'a [f32],
    values: &'a [f32],
    /// The block's first query column.
    first: usize,
    padding: usize,
}

impl PrefillAttention<'_> {
    /// One block into `out` (`rows x head_dim`), with `scores` as scratch.
    fn block(&self, block: &Block<'_>, head_dim: usize, scores: &mut [f32], out: &mut [f32]) {
        let rows = out.len() / head_dim;
        // Padding queries come first in a block (the padding is on the left); each sees only its
        // own key, so its softmax weight is exactly 1.
        let real = (0..rows).find(|&row| self.past + block.first + row >= block.padding).unwrap_or(rows);
        for row in 0..real {
            let key = *visible_keys(block.padding, self.past, block.first + row).start();
            out[row * head_dim..][..head_dim].copy_from_slice(&block.values[key * head_dim..][..head_dim]);
        }
        if real == rows {
            return;
        }
        let (out, queries) = (&mut out[real * head_dim..], &block.queries[real * head_dim..]);
        let (rows, first) = (rows - real, block.first + real);
        // Every real row sees keys from the first real one up to its own position.
        let low = block.padding;
        let keys = *visible_keys(block.padding, self.past, first + rows - 1).end() + 1 - low;
        let scores = &mut scores[..rows * keys];
        // SAFETY: `queries` is `rows x head_dim`; keys `low..low + keys` of the head, read as a
        // `head_dim x keys` transpose, lie in `block.keys` (`seen x head_dim`, and `low + keys <=
        // past + columns = seen`); `scores` is `rows x keys`.
        unsafe {
            strided_gemm(
                (rows, keys, head_dim),
                (scores.as_mut_ptr(), keys, 1),
                false,
                (queries.as_ptr(), head_dim, 1),
                (block.keys.as_ptr().add(low * head_dim), 1, head_dim),
                Parallelism::None,
            )
        }
        let mut sums = [0f32; QUERY_BLOCK];
        for (row, sum) in sums.iter_mut().enumerate().take(rows) {
            let scores = &mut scores[row * keys..][..keys];
            let visible = visible_keys(block.padding, self.past, first + row).end() + 1 - low;
            *sum = vector_math::softmax_unnormalised(&mut scores[..visible], self.scale);
            scores[visible..].fill(0.0);
        }
        // SAFETY: `scores` is `rows x keys`, the head's values `low..low + keys` are `keys x
        // head_dim` inside `block.values`, and `out` is `rows x head_dim`.
        unsafe {
            strided_gemm(
                (rows, head_dim, keys),
                (out.as_mut_ptr(), head_dim, 1),
                false,
                (scores.as_ptr(), keys, 1),
                (block.values.as_ptr().add(low * head_dim), head_dim, 1),
                Parallelism::None,
            )
        }
        for (row, sum) in out.chunks_exact_mut(head_dim).zip(&sums) {
            let inverse = 1.0 / sum;
            row.iter_mut().for_each(|value| *value *= inverse);
        }
    }
}

impl CustomOp3 for PrefillAttention<'_> {
    fn name(&self) -> &'static str {
        "prefill-attention"
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
        if (k_batch, k_heads, k_dim) != (batch, kv_heads, head_dim)
            || v_layout.dims() != k_layout.dims()
            || self.padding.len() != batch
            || self.columns == 0
            || query_rows % self.columns != 0
            || self.past + self.columns != seen
        {
            candle_core::bail!(
                "prefill attention: {} paddings, {} past and {} new columns for q {:?}, k {:?}, v {:?}",
                self.padding.len(),
                self.past,
                self.columns,
                q_layout.dims(),
                k_layout.dims(),
                v_layout.dims()
            )
        }
        let Some((q_start, q_end)) = q_layout.contiguous_offsets() else {
            candle_core::bail!("prefill attention: q must be contiguous")
        };
        let q = &f32_values(q, "q")?[q_start..q_end];
        let (k_values, v_values) = (f32_values(k, "k")?, f32_values(v, "v")?);
        let (k_offset, k_stride) = head_blocks(k_layout, "key")?;
        let (v_offset, v_stride) = head_blocks(v_layout, "value")?;
        let mut out = vec![0f32; q.len()];
        if out.is_empty() {
            return Ok((CpuStorage::F32(out), q_layout.shape().clone()));
        }
        let groups = query_rows / self.columns;
        // One chunk per (sequence, kv head, group): `columns x head_dim`, then blocks of it.
        let per_group = self.columns * head_dim;
        out.par_chunks_mut(per_group).zip(q.par_chunks(per_group)).enumerate().for_each(
            |(index, (out, queries))| {
                let (sequence, head) = (index / groups / kv_heads, index / groups % kv_heads);
                let keys = head_rows(k_values, k_offset, k_stride, (sequence, head), seen * head_dim);
                let values = head_rows(v_values, v_offset, v_stride, (sequence, head), seen * head_dim);
                let block_len = QUERY_BLOCK * head_dim;
                out.par_chunks_mut(block_len).zip(queries.par_chunks(block_len)).enumerate().for_each_init(
                    || vec![0f32; QUERY_BLOCK * seen],
                    |scores, (number, (out, queries))| {
                        let block = Block {
                            queries,
                            keys,
                            values,
                            first: number * QUERY_BLOCK,
                            padding: self.padding[sequence],
                        };
                        self.block(&block, head_dim, scores, out);
                    },
                );
            },
        );
        Ok((CpuStorage::F32(out), q_layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::super::decode_attention::tests::assert_matches_reference;
    use super::*;

    #[test]
    fn matches_masked_softmax_attention_with_padding_past_and_partial_blocks() {
        // A first prefill, a prefill after cached columns, and blocks of 64 with a partial
        // last one; padding that covers a whole block, none, and all but one column.
        for (past, columns) in [(0, 70), (5, 9), (0, 130)] {
            let seen = past + columns;
            let padding = [0, 66.min(seen - 1), seen - 1];
            let scale = 0.3;
            let op = PrefillAttention { padding: &padding, past, columns, scale: scale as f32 };
            assert_matches_reference(&op, (3, 2, 3, 20, seen + 7), &padding, (past, columns, scale));
        }
    }

    #[test]
    fn inconsistent_shapes_are_errors_not_panics() {
        let device = Device::Cpu;
        let q = Tensor::zeros((1, 1, 6, 4), candle_core::DType::F32, &device).unwrap();
        let k = Tensor::zeros((1, 1, 6, 4), candle_core::DType::F32, &device).unwrap();
        let wrong_past = PrefillAttention { padding: &[0], past: 2, columns: 6, scale: 1.0 };
        assert!(q.apply_op3_no_bwd(&k, &k, &wrong_past).is_err());
        let wrong_batch = PrefillAttention { padding: &[0, 0], past: 0, columns: 6, scale: 1.0 };
        assert!(q.apply_op3_no_bwd(&k, &k, &wrong_batch).is_err());
    }
}
