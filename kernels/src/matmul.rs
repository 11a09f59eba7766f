//! One call shape for the `gemm` crate (candle's own GEMM, so it is built once): matrices
//! described by a pointer and the strides of their rows and columns.

pub use gemm::Parallelism;

/// `dst = lhs * rhs` (or `dst += lhs * rhs` when `accumulate`), each operand's element
/// `(i, j)` at `pointer + i * row + j * column`; `m x n` output, `k` inner.
///
/// # Safety
/// Every element addressed through the sizes and strides lies inside its allocation, `dst`
/// overlaps neither input, and `dst` is initialised when `accumulate`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn strided_gemm(
    (m, n, k): (usize, usize, usize),
    (dst, dst_row, dst_column): (*mut f32, usize, usize),
    accumulate: bool,
    (lhs, lhs_row, lhs_column): (*const f32, usize, usize),
    (rhs, rhs_row, rhs_column): (*const f32, usize, usize),
    parallelism: Parallelism,
) {
    // SAFETY: the caller's bounds.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_column as isize,
            dst_row as isize,
            accumulate,
            lhs,
            lhs_column as isize,
            lhs_row as isize,
            rhs,
            rhs_column as isize,
            rhs_row as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}
