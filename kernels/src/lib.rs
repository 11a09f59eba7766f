//! CPU math that candle runs as scalar loops, shared by the candle plugins: each function is
//! compiled for AVX2+FMA (chosen at run time) and for the build's baseline, and the portable
//! build stays callable so that tests can compare the two.

pub mod few_rows;
pub mod matmul;
pub mod rows_attention;
pub mod vector_math;
