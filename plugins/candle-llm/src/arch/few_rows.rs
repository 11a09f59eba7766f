//! `x @ W^T` for the few rows of a decode step as a candle op, on
//! [`karma_cpu_kernels::few_rows`]' kernel, which reads every weight row once and gives a
//! sequence bit-identical logits alone or in a batch.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape};
use karma_cpu_kernels::few_rows::multiply_transposed;

/// The most input rows the kernel takes; larger products go to the GEMM.
pub const MAX_ROWS: usize = 16;

/// The candle operation: `xs` `[rows, in]` by `weight` `[out, in]`, both f32 on the CPU.
pub struct FewRowsMatmul;

impl CustomOp2 for FewRowsMatmul {
    fn name(&self) -> &'static str {
        "few-rows-matmul"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xs_layout: &Layout,
        weight: &CpuStorage,
        weight_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let Operands { xs, weight, rows, features, outputs } =
            operands("few-rows matmul", (xs, xs_layout), (weight, weight_layout))?;
        if rows > MAX_ROWS {
            candle_core::bail!("few-rows matmul takes at most {MAX_ROWS} rows, got {rows}")
        }
        let transposed = multiply_transposed(xs, weight, rows, features);
        let mut out = vec![0f32; rows * outputs];
        for (output, values) in transposed.chunks_exact(rows.max(1)).enumerate() {
            for (row, value) in values.iter().enumerate() {
                out[row * outputs + output] = *value;
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((rows, outputs))))
    }
}

/// The operands of `xs @ W^T` as contiguous f32 slices, with their sizes.
pub(super) struct Operands<'a> {
    pub xs: &'a [f32],
    pub weight: &'a [f32],
    pub rows: usize,
    pub features: usize,
    pub outputs: usize,
}

/// Checks and borrows `xs` `[rows, in]` and `weight` `[out, in]` for the op named `op`.
pub(super) fn operands<'a>(
    op: &str,
    (xs, xs_layout): (&'a CpuStorage, &Layout),
    (weight, weight_layout): (&'a CpuStorage, &Layout),
) -> Result<Operands<'a>> {
    let (rows, features) = xs_layout.shape().dims2()?;
    let (outputs, weight_features) = weight_layout.shape().dims2()?;
    if features != weight_features {
        candle_core::bail!("{op}: input has {features} features, weight {weight_features}")
    }
    let contiguous_f32 = |storage: &'a CpuStorage, layout: &Layout, what: &str| -> Result<&'a [f32]> {
        let CpuStorage::F32(values) = storage else {
            candle_core::bail!("{op}: {what} must be f32, got {:?}", storage.dtype())
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("{op}: {what} must be contiguous")
        };
        Ok(&values[start..end])
    };
    Ok(Operands {
        xs: contiguous_f32(xs, xs_layout, "input")?,
        weight: contiguous_f32(weight, weight_layout, "weight")?,
        rows,
        features,
        outputs,
    })
}

/// Whether [`FewRowsMatmul`] takes this product.
pub fn applies(rows: usize, dtype: DType, on_cpu: bool) -> bool {
    on_cpu && dtype == DType::F32 && rows <= MAX_ROWS
}
