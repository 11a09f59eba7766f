//! `x @ W^T` for prefill-sized products (a few hundred rows) with the weight's output columns
//! split across the thread pool, one single-threaded GEMM per part.
//!
//! Through candle, such a product is one `gemm` call with its own threading, which on two cores
//! left SmolLM2's batch-1 prefill of 200-token prompts at 395-500 tokens/s; split by columns,
//! each thread streams its own rows of the weight and the same run gave 520-590. Products with
//! thousands of rows keep `gemm`'s threading, which measured as fast or faster there.

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape};
use karma_cpu_kernels::matmul::{strided_gemm, Parallelism};
use rayon::prelude::*;

use super::few_rows::{operands, Operands};

/// The most input rows the split takes.
pub const MAX_ROWS: usize = 2048;

/// The fewest output columns worth a part of their own: each part packs the whole input again.
const MIN_PART_COLUMNS: usize = 64;

/// Whether [`ColumnSplitMatmul`] takes this product.
pub fn applies(rows: usize, dtype: DType, on_cpu: bool) -> bool {
    on_cpu && dtype == DType::F32 && rows <= MAX_ROWS
}

/// The candle operation: `xs` `[rows, in]` by `weight` `[out, in]`, both f32 on the CPU.
pub struct ColumnSplitMatmul;

impl CustomOp2 for ColumnSplitMatmul {
    fn name(&self) -> &'static str {
        "column-split-matmul"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xs_layout: &Layout,
        weight: &CpuStorage,
        weight_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let Operands { xs, weight, rows, features, outputs } =
            operands("column-split matmul", (xs, xs_layout), (weight, weight_layout))?;
        let mut out = vec![0f32; rows * outputs];
        let parts = rayon::current_num_threads().min(outputs / MIN_PART_COLUMNS).max(1);
        // Parts of whole 16-column tiles, so no part ends mid-tile.
        let width = outputs.div_ceil(parts).div_ceil(16) * 16;
        let starts: Vec<usize> = (0..outputs).step_by(width.max(1)).collect();
        // The address as an integer so the closure can cross threads; parts write disjoint columns.
        let out_address = out.as_mut_ptr() as usize;
        starts.into_par_iter().for_each(|start| {
            let columns = width.min(outputs - start);
            // SAFETY: `out` is `rows x outputs`, and this part writes columns
            // `start..start + columns` of it, which no other part touches; the weight rows
            // `start..start + columns` lie inside `weight` (`outputs x features`), read as the
            // `features x columns` transpose; `xs` is `rows x features`.
            unsafe {
                strided_gemm(
                    (rows, columns, features),
                    ((out_address as *mut f32).add(start), outputs, 1),
                    false,
                    (xs.as_ptr(), features, 1),
                    (weight.as_ptr().add(start * features), 1, features),
                    Parallelism::None,
                )
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((rows, outputs))))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;

    /// Against candle's own matmul, on odd sizes: outputs that are not a multiple of the
    /// 16-column tiles, fewer outputs than a part's minimum, one row.
    #[test]
    fn equals_candle_matmul_on_odd_sizes() {
        let device = Device::Cpu;
        for (rows, features, outputs) in [(1, 8, 5), (37, 70, 300), (200, 64, 257), (65, 33, 1000)] {
            let xs = Tensor::randn(0f32, 1.0, (rows, features), &device).unwrap();
            let weight = Tensor::randn(0f32, 1.0, (outputs, features), &device).unwrap();
            let want: Vec<Vec<f32>> = xs.matmul(&weight.t().unwrap()).unwrap().to_vec2().unwrap();
            let got: Vec<Vec<f32>> =
                xs.apply_op2_no_bwd(&weight, &ColumnSplitMatmul).unwrap().to_vec2().unwrap();
            for (row, (got, want)) in got.iter().zip(&want).enumerate() {
                for (column, (got, want)) in got.iter().zip(want).enumerate() {
                    assert!(
                        (got - want).abs() < 1e-4,
                        "{rows}x{features}x{outputs} at ({row}, {column}): {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn mismatched_features_are_an_error() {
        let device = Device::Cpu;
        let xs = Tensor::zeros((3, 4), DType::F32, &device).unwrap();
        let weight = Tensor::zeros((5, 6), DType::F32, &device).unwrap();
        assert!(xs.apply_op2_no_bwd(&weight, &ColumnSplitMatmul).is_err());
    }
}
