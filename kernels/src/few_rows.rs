//! `x @ W^T` for the few rows of a decode step, reading every weight row once.
//!
//! A decode step multiplies one row per sequence by each weight matrix. A general GEMM packs
//! both operands into tiles sized for large products, so at 8 rows it spends most of its time
//! on tile bookkeeping and padding. Here each weight row is loaded once and dotted with every
//! input row while it sits in L1, so a batch of 8 costs little more memory traffic than a batch
//! of 1: decode throughput scales with the batch.
//!
//! Each output element is accumulated in the same order whatever the number of rows, so a
//! sequence gets bit-identical results alone or in a batch.

use rayon::prelude::*;

/// Weight rows per parallel task: large enough to amortise scheduling, small enough to balance
/// two to a few dozen threads over the smallest projections.
const WEIGHT_ROWS_PER_TASK: usize = 32;

/// `[out, rows]`: element `(o, r)` is weight row `o` (of `weight`, `[out, features]`) dotted
/// with input row `r` (of `xs`, `[rows, features]`), spread over the thread pool.
pub fn multiply_transposed(xs: &[f32], weight: &[f32], rows: usize, features: usize) -> Vec<f32> {
    multiply_transposed_with(select_kernel(), xs, weight, rows, features)
}

fn multiply_transposed_with(
    task: Task,
    xs: &[f32],
    weight: &[f32],
    rows: usize,
    features: usize,
) -> Vec<f32> {
    let outputs = weight.len() / features.max(1);
    let mut transposed = vec![0f32; outputs * rows];
    if rows == 0 || features == 0 {
        return transposed;
    }
    let inputs: Vec<&[f32]> = xs.chunks_exact(features).collect();
    transposed
        .par_chunks_mut(WEIGHT_ROWS_PER_TASK * rows)
        .zip(weight.par_chunks(WEIGHT_ROWS_PER_TASK * features))
        .for_each(|(out, weights)| task(weights, &inputs, out));
    transposed
}

/// Fills `out` (`[weight rows, input rows]`) for a run of weight rows.
type Task = fn(&[f32], &[&[f32]], &mut [f32]);

/// One thread's share: `out[o * rows + r]` = weight row `o` (of `weights`, rows of the inputs'
/// length) dotted with `inputs[r]`, computed as [`multiply_transposed`] computes it.
pub fn dot_rows(weights: &[f32], inputs: &[&[f32]], out: &mut [f32]) {
    if !inputs.is_empty() {
        select_kernel()(weights, inputs, out)
    }
}

/// AVX2 with FMA where the CPU has it (chosen at run time: the plugins are built for
/// baseline x86-64), portable code elsewhere.
fn select_kernel() -> Task {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return |weights, inputs, out| {
                // SAFETY: the CPU was just checked for AVX2 and FMA.
                unsafe { avx2::task(weights, inputs, out) }
            };
        }
    }
    portable_task
}

fn portable_task(weights: &[f32], inputs: &[&[f32]], out: &mut [f32]) {
    // SAFETY: the portable kernel needs no CPU feature.
    unsafe { task::<portable::Portable>(weights, inputs, out) }
}

/// Dot products of one weight row with a pass of input rows.
trait Kernel {
    /// # Safety
    /// The CPU has the features the kernel is compiled for, and every input has the weight
    /// row's length.
    unsafe fn dot<const ROWS: usize>(weight: &[f32], inputs: &[&[f32]; ROWS]) -> [f32; ROWS];
}

/// Runs `K::dot` over every weight row, in passes of 8, then 4, then 1 input rows: passes of 8
/// give the CPU enough independent sums to hide FMA latency, and each weight value loaded feeds
/// 8 FMAs. Kernels compute a row's sum the same way in every pass size, so a row's result is
/// bit for bit the same alone or in a batch.
///
/// # Safety
/// The CPU has `K`'s features.
#[inline(always)]
unsafe fn task<K: Kernel>(weights: &[f32], inputs: &[&[f32]], out: &mut [f32]) {
    let rows = inputs.len();
    let features = inputs[0].len();
    for input in inputs {
        assert_eq!(input.len(), features, "input rows of one length");
    }
    // SAFETY (every `K::dot` below): the caller vouches for the CPU; lengths were checked above.
    for (weight, out) in weights.chunks_exact(features).zip(out.chunks_exact_mut(rows)) {
        let mut row = 0;
        while rows - row >= 8 {
            let pass: &[&[f32]; 8] = inputs[row..row + 8].try_into().expect("8 rows");
            out[row..row + 8].copy_from_slice(&unsafe { K::dot(weight, pass) });
            row += 8;
        }
        while rows - row >= 4 {
            let pass: &[&[f32]; 4] = inputs[row..row + 4].try_into().expect("4 rows");
            out[row..row + 4].copy_from_slice(&unsafe { K::dot(weight, pass) });
            row += 4;
        }
        for row in row..rows {
            out[row] = unsafe { K::dot(weight, &[inputs[row]]) }[0];
        }
    }
}

/// The sum of a row past the last whole group of lanes.
#[inline(always)]
fn tail_dot(weight: &[f32], input: &[f32], from: usize) -> f32 {
    weight[from..].iter().zip(&input[from..]).map(|(w, x)| w * x).sum()
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{horizontal_sum, tail_dot, Kernel};

    /// Floats ahead of the current position that are fetched into L1.
    const PREFETCH_AHEAD: usize = 1024;

    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn task(weights: &[f32], inputs: &[&[f32]], out: &mut [f32]) {
        // SAFETY: forwarded from the caller; the kernel is inlined here, with these features.
        unsafe { super::task::<Avx2>(weights, inputs, out) }
    }

    struct Avx2;

    impl Kernel for Avx2 {
        #[inline(always)]
        unsafe fn dot<const ROWS: usize>(weight: &[f32], inputs: &[&[f32]; ROWS]) -> [f32; ROWS] {
            // SAFETY: forwarded from the caller.
            unsafe { dot(weight, inputs) }
        }
    }

    /// 8 lanes of partial sums per input, one FMA per step.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn dot<const ROWS: usize>(weight: &[f32], inputs: &[&[f32]; ROWS]) -> [f32; ROWS] {
        let mut sums = [_mm256_setzero_ps(); ROWS];
        let whole = weight.len() / 8 * 8;
        let mut start = 0;
        while start < whole {
            // SAFETY: `start + 8 <= whole <= len` for the weight row and for every input, which
            // the caller guarantees to be as long.
            unsafe {
                // Weight rows lie back to back: fetching ahead pulls in the next row's values
                // while this one is multiplied (a prefetch past the matrix is harmless).
                _mm_prefetch::<_MM_HINT_T0>(weight.as_ptr().wrapping_add(start + PREFETCH_AHEAD).cast());
                let w = _mm256_loadu_ps(weight.as_ptr().add(start));
                for row in 0..ROWS {
                    let x = _mm256_loadu_ps(inputs[row].as_ptr().add(start));
                    sums[row] = _mm256_fmadd_ps(w, x, sums[row]);
                }
            }
            start += 8;
        }
        let mut out = [0f32; ROWS];
        for row in 0..ROWS {
            let mut lanes = [0f32; 8];
            // SAFETY: `lanes` holds 8 floats.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sums[row]) };
            out[row] = horizontal_sum(&lanes) + tail_dot(weight, inputs[row], whole);
        }
        out
    }
}

mod portable {
    use super::{horizontal_sum, tail_dot, Kernel};

    pub(super) struct Portable;

    impl Kernel for Portable {
        /// 8 lanes of partial sums per input, which the compiler may vectorise.
        #[inline(always)]
        unsafe fn dot<const ROWS: usize>(weight: &[f32], inputs: &[&[f32]; ROWS]) -> [f32; ROWS] {
            let mut sums = [[0f32; 8]; ROWS];
            let whole = weight.len() / 8 * 8;
            for start in (0..whole).step_by(8) {
                let w: &[f32; 8] = weight[start..start + 8].try_into().expect("8 values");
                for (sum, input) in sums.iter_mut().zip(inputs) {
                    let x: &[f32; 8] = input[start..start + 8].try_into().expect("8 values");
                    for lane in 0..8 {
                        sum[lane] += w[lane] * x[lane];
                    }
                }
            }
            let mut out = [0f32; ROWS];
            for row in 0..ROWS {
                out[row] = horizontal_sum(&sums[row]) + tail_dot(weight, inputs[row], whole);
            }
            out
        }
    }
}

/// Pairwise, in a fixed order, so every row's result is the same in any pass (also the lane
/// sum of `rows_attention`'s scores).
#[inline(always)]
pub(crate) fn horizontal_sum<const LANES: usize>(lanes: &[f32; LANES]) -> f32 {
    let mut values = *lanes;
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for lane in 0..width {
            values[lane] += values[lane + width];
        }
    }
    values[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel this CPU selects and the portable one (which this CPU would not pick).
    fn kernels() -> [(&'static str, Task); 2] {
        [("selected", select_kernel()), ("portable", portable_task)]
    }

    fn reference(xs: &[f32], weight: &[f32], rows: usize, features: usize) -> Vec<f32> {
        let outputs = weight.len() / features;
        let mut out = vec![0f32; rows * outputs];
        for row in 0..rows {
            for output in 0..outputs {
                out[row * outputs + output] = (0..features)
                    .map(|k| f64::from(xs[row * features + k]) * f64::from(weight[output * features + k]))
                    .sum::<f64>() as f32;
            }
        }
        out
    }

    fn values(count: usize, seed: u32) -> Vec<f32> {
        (0..count)
            .map(|index| {
                ((index as u32).wrapping_mul(2654435761).wrapping_add(seed) % 1000) as f32 / 500.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn matches_a_float64_reference_for_every_row_count_and_odd_widths() {
        let outputs = 70;
        for (kernel, task) in kernels() {
            for features in [1, 7, 16, 37, 576] {
                for rows in [1, 2, 3, 4, 5, 8, 13, 16] {
                    let xs = values(rows * features, 1);
                    let weight = values(outputs * features, 2);
                    let transposed = multiply_transposed_with(task, &xs, &weight, rows, features);
                    let expected = reference(&xs, &weight, rows, features);
                    for row in 0..rows {
                        for output in 0..outputs {
                            let (got, want) =
                                (transposed[output * rows + row], expected[row * outputs + output]);
                            assert!(
                                (got - want).abs() <= 1e-4 * features as f32,
                                "{kernel} kernel, rows {rows}, features {features}: {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_row_gets_the_same_bits_alone_or_in_a_batch() {
        let (features, outputs, rows) = (97, 41, 11);
        let weight = values(outputs * features, 3);
        let batch = values(rows * features, 4);
        for (kernel, task) in kernels() {
            let together = multiply_transposed_with(task, &batch, &weight, rows, features);
            for (row, input) in batch.chunks_exact(features).enumerate() {
                let alone = multiply_transposed_with(task, input, &weight, 1, features);
                for output in 0..outputs {
                    assert_eq!(
                        alone[output].to_bits(),
                        together[output * rows + row].to_bits(),
                        "{kernel} kernel, row {row}, output {output}"
                    );
                }
            }
        }
    }
}
