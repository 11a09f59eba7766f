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
        let (rows, features) = xs_layout.shape().dims2()?;
        let (outputs, weight_features) = weight_layout.shape().dims2()?;
        if features != weight_features {
            candle_core::bail!("few-rows matmul: input has {features} features, weight {weight_features}")
        }
        if rows > MAX_ROWS {
            candle_core::bail!("few-rows matmul takes at most {MAX_ROWS} rows, got {rows}")
        }
        let xs = contiguous_f32(xs, xs_layout, "input")?;
        let weight = contiguous_f32(weight, weight_layout, "weight")?;
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

fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(values) = storage else {
        candle_core::bail!("few-rows matmul: {what} must be f32, got {:?}", storage.dtype())
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("few-rows matmul: {what} must be contiguous")
    };
    Ok(&values[start..end])
}

/// Whether [`FewRowsMatmul`] takes this product.
pub fn applies(rows: usize, dtype: DType, on_cpu: bool) -> bool {
    on_cpu && dtype == DType::F32 && rows <= MAX_ROWS
}
