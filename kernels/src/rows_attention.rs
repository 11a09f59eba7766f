//! Attention of a few query rows over one matrix that is both the keys and the values, in one
//! pass over that matrix.
//!
//! Whisper's decoder takes its cross-attention from the encoder output `E` itself (the
//! whisper plugin's `cross_attention` module has the algebra): per head, scores against the
//! rows of `E`, then a weighted sum of the same rows. As two GEMMs that reads `E` twice per
//! layer and step, and from two layouts, since each GEMM wants a different unit stride: 4.6 MB
//! per sequence for whisper-tiny, 37 MB a layer at batch 8, more than the last-level cache.
//! Here `E` is read once per group of up to 8 queries (whisper-tiny's 6 heads make one group
//! in a decoding step), a block of rows at a time: the block's scores for every query of the
//! group, a running (online) softmax across blocks, and the block's weighted rows added while
//! the block is still in L2. The rows can be split between threads: each part gives a [`Partial`], and
//! partials merge exactly (up to rounding), as flash attention merges its tiles.

use rayon::prelude::*;

use crate::few_rows::horizontal_sum;
use crate::vector_math::exp;

/// Rows of the matrix per block: 32 rows of whisper-tiny's 384 floats (48 KB) stay in L2 between
/// the scoring and the summing pass, and the running sums are rescaled once per block.
const BLOCK_ROWS: usize = 32;
/// Queries scored together: each loaded row feeds this many dot products, and the matrix is
/// read once per group. Whisper-tiny has 6 heads, so a decoding step's queries are one group;
/// the larger checkpoints' 12 to 20 heads take two or three passes.
const GROUP: usize = 8;

/// The softmax-weighted sums of some of the rows, before normalisation.
pub struct Partial {
    width: usize,
    /// Per query: the largest scaled score so far.
    max: Vec<f32>,
    /// Per query: the sum of `exp(score - max)`.
    sum: Vec<f32>,
    /// Per query, `width` values: the sum of `exp(score - max) * row`.
    weighted: Vec<f32>,
}

impl Partial {
    fn empty(queries: usize, width: usize) -> Self {
        Partial {
            width,
            max: vec![f32::NEG_INFINITY; queries],
            sum: vec![0.0; queries],
            weighted: vec![0.0; queries * width],
        }
    }

    /// The state over both parts' rows.
    pub fn merge(mut self, other: Partial) -> Partial {
        assert_eq!((self.width, self.max.len()), (other.width, other.max.len()), "partials of one shape");
        for query in 0..self.max.len() {
            let max = self.max[query].max(other.max[query]);
            if max == f32::NEG_INFINITY {
                // Neither part has seen a row: it stays empty (exp(-inf - -inf) would be NaN).
                continue;
            }
            let (mine, theirs) = (exp(self.max[query] - max), exp(other.max[query] - max));
            self.sum[query] = self.sum[query] * mine + other.sum[query] * theirs;
            self.max[query] = max;
            let rows = self.weighted[query * self.width..][..self.width].iter_mut();
            for (value, other) in rows.zip(&other.weighted[query * self.width..][..self.width]) {
                *value = *value * mine + other * theirs;
            }
        }
        self
    }

    /// Writes the attention output, `queries x width`, into `out`: zeros for a query that saw
    /// no rows.
    pub fn finish(&self, out: &mut [f32]) {
        assert_eq!(out.len(), self.weighted.len(), "output of queries x width");
        for ((out, weighted), sum) in out
            .chunks_exact_mut(self.width.max(1))
            .zip(self.weighted.chunks_exact(self.width.max(1)))
            .zip(&self.sum)
        {
            let inverse = if *sum > 0.0 { 1.0 / sum } else { 0.0 };
            for (out, weighted) in out.iter_mut().zip(weighted) {
                *out = weighted * inverse;
            }
        }
    }
}

/// `softmax(scale * Q R^T)` applied to `R` itself, unnormalised, for `queries` `Q` and `rows`
/// `R`, both row-major with `width` columns. AVX2+FMA where the CPU has it (chosen at run
/// time), portable code elsewhere.
pub fn attend_rows(queries: &[f32], rows: &[f32], width: usize, scale: f32) -> Partial {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            #[target_feature(enable = "avx2,fma")]
            unsafe fn wide(queries: &[f32], rows: &[f32], width: usize, scale: f32) -> Partial {
                // SAFETY: this function is compiled with AVX2 and FMA, and only called where the
                // CPU has them.
                unsafe { attend_rows_with::<avx2::Avx2>(queries, rows, width, scale) }
            }
            // SAFETY: the CPU was just checked for AVX2 and FMA.
            return unsafe { wide(queries, rows, width, scale) };
        }
    }
    // SAFETY: the portable lanes need no CPU feature.
    unsafe { attend_rows_with::<Portable>(queries, rows, width, scale) }
}

/// [`attend_rows`] with the rows shared between `parts` rayon tasks, whose partials merge: one
/// sequence's attention on every thread.
pub fn attend_rows_split(queries: &[f32], rows: &[f32], width: usize, scale: f32, parts: usize) -> Partial {
    let count = rows.len() / width.max(1);
    if parts < 2 || count < 2 {
        return attend_rows(queries, rows, width, scale);
    }
    rows.par_chunks(count.div_ceil(parts) * width)
        .map(|part| attend_rows(queries, part, width, scale))
        .reduce_with(Partial::merge)
        .unwrap_or_else(|| attend_rows(queries, rows, width, scale))
}

/// The portable build of [`attend_rows`], for tests to compare against.
pub fn attend_rows_portable(queries: &[f32], rows: &[f32], width: usize, scale: f32) -> Partial {
    // SAFETY: the portable lanes need no CPU feature.
    unsafe { attend_rows_with::<Portable>(queries, rows, width, scale) }
}

/// Eight f32 lanes: a register on AVX2, an array elsewhere. Every method is safe to call on a
/// CPU with the implementation's features, with pointers to 8 readable (or writable) floats.
trait Lanes {
    type V: Copy;
    unsafe fn zero() -> Self::V;
    unsafe fn splat(value: f32) -> Self::V;
    unsafe fn load(from: *const f32) -> Self::V;
    unsafe fn store(to: *mut f32, value: Self::V);
    /// `a * b + c`, rounded once.
    unsafe fn mul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    unsafe fn mul(a: Self::V, b: Self::V) -> Self::V;
}

const LANES: usize = 8;

struct Portable;

impl Lanes for Portable {
    type V = [f32; LANES];
    unsafe fn zero() -> Self::V {
        [0.0; LANES]
    }
    unsafe fn splat(value: f32) -> Self::V {
        [value; LANES]
    }
    unsafe fn load(from: *const f32) -> Self::V {
        // SAFETY: the caller vouches for 8 readable floats.
        unsafe { from.cast::<[f32; LANES]>().read_unaligned() }
    }
    unsafe fn store(to: *mut f32, value: Self::V) {
        // SAFETY: the caller vouches for 8 writable floats.
        unsafe { to.cast::<[f32; LANES]>().write_unaligned(value) }
    }
    unsafe fn mul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        std::array::from_fn(|lane| a[lane].mul_add(b[lane], c[lane]))
    }
    unsafe fn mul(a: Self::V, b: Self::V) -> Self::V {
        std::array::from_fn(|lane| a[lane] * b[lane])
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    pub(super) struct Avx2;

    impl super::Lanes for Avx2 {
        type V = __m256;
        #[inline(always)]
        unsafe fn zero() -> __m256 {
            // SAFETY (every method): the caller runs on a CPU with AVX2 and FMA and passes
            // pointers to 8 floats.
            unsafe { _mm256_setzero_ps() }
        }
        #[inline(always)]
        unsafe fn splat(value: f32) -> __m256 {
            unsafe { _mm256_set1_ps(value) }
        }
        #[inline(always)]
        unsafe fn load(from: *const f32) -> __m256 {
            unsafe { _mm256_loadu_ps(from) }
        }
        #[inline(always)]
        unsafe fn store(to: *mut f32, value: __m256) {
            unsafe { _mm256_storeu_ps(to, value) }
        }
        #[inline(always)]
        unsafe fn mul_add(a: __m256, b: __m256, c: __m256) -> __m256 {
            unsafe { _mm256_fmadd_ps(a, b, c) }
        }
        #[inline(always)]
        unsafe fn mul(a: __m256, b: __m256) -> __m256 {
            unsafe { _mm256_mul_ps(a, b) }
        }
    }
}

/// # Safety
/// The CPU has `L`'s features.
#[inline(always)]
unsafe fn attend_rows_with<L: Lanes>(queries: &[f32], rows: &[f32], width: usize, scale: f32) -> Partial {
    assert!(width > 0 && queries.len() % width == 0 && rows.len() % width == 0, "rows of {width} values");
    let count = queries.len() / width;
    let mut partial = Partial::empty(count, width);
    for (group, queries) in queries.chunks(GROUP * width).enumerate() {
        let first = group * GROUP;
        let size = queries.len() / width;
        let state = State {
            max: &mut partial.max[first..first + size],
            sum: &mut partial.sum[first..first + size],
            weighted: &mut partial.weighted[first * width..(first + size) * width],
        };
        // SAFETY (each arm): `queries` holds `size` rows of `width`, `rows` whole rows, and
        // `state` the group's slices; the caller vouches for `L`'s CPU features.
        unsafe {
            match size {
                1 => group_pass::<L, 1>(queries, rows, width, scale, state),
                2 => group_pass::<L, 2>(queries, rows, width, scale, state),
                3 => group_pass::<L, 3>(queries, rows, width, scale, state),
                4 => group_pass::<L, 4>(queries, rows, width, scale, state),
                5 => group_pass::<L, 5>(queries, rows, width, scale, state),
                6 => group_pass::<L, 6>(queries, rows, width, scale, state),
                7 => group_pass::<L, 7>(queries, rows, width, scale, state),
                _ => group_pass::<L, 8>(queries, rows, width, scale, state),
            }
        }
    }
    partial
}

/// One group's slices of a [`Partial`].
struct State<'a> {
    max: &'a mut [f32],
    sum: &'a mut [f32],
    weighted: &'a mut [f32],
}

/// One pass over `rows` for `N` queries, in blocks of [`BLOCK_ROWS`].
///
/// # Safety
/// `queries` holds `N` rows of `width` values, `rows` a whole number of rows, `state` `N`
/// maxima and sums and `N * width` weighted values; the CPU has `L`'s features.
#[inline(always)]
unsafe fn group_pass<L: Lanes, const N: usize>(
    queries: &[f32],
    rows: &[f32],
    width: usize,
    scale: f32,
    state: State<'_>,
) {
    assert!(queries.len() == N * width && state.weighted.len() == N * width && state.max.len() == N);
    let queries: [&[f32]; N] = std::array::from_fn(|query| &queries[query * width..][..width]);
    let whole = width / LANES * LANES;
    // Two rows (or column groups) at a time need `2 * N` sums in registers, which AVX2's 16
    // hold for up to 6 queries.
    const { assert!(N <= GROUP) };
    let pairs = N <= 6;
    let weighted = state.weighted.as_mut_ptr();
    let mut weights = [[0f32; BLOCK_ROWS]; N];
    for block in rows.chunks(BLOCK_ROWS * width) {
        let block_rows = block.len() / width;
        // Scores: rows in pairs where the registers allow (each query load then feeds two
        // FMAs), every query dotted with a row while the row is in registers.
        let mut index = 0;
        if pairs {
            while index + 2 <= block_rows {
                // SAFETY: rows `index` and `index + 1` are in the block.
                unsafe {
                    score_rows::<L, N, 2>(
                        &block[index * width..],
                        &queries,
                        whole,
                        scale,
                        &mut weights,
                        index,
                    )
                };
                index += 2;
            }
        }
        for index in index..block_rows {
            // SAFETY: row `index` is in the block.
            unsafe {
                score_rows::<L, N, 1>(&block[index * width..], &queries, whole, scale, &mut weights, index)
            };
        }
        // The running softmax: a new maximum rescales what was summed before.
        let mut rescale = [0f32; N];
        for (query, weights) in weights.iter_mut().enumerate() {
            let weights = &mut weights[..block_rows];
            let max = weights.iter().fold(state.max[query], |a, b| a.max(*b));
            rescale[query] = exp(state.max[query] - max);
            let mut total = 0.0;
            for weight in weights.iter_mut() {
                *weight = exp(*weight - max);
                total += *weight;
            }
            state.sum[query] = state.sum[query] * rescale[query] + total;
            state.max[query] = max;
        }
        // Weighted rows, 8 or 16 columns at a time, the sums held in registers.
        let mut start = 0;
        if pairs {
            while start + 2 * LANES <= whole {
                // SAFETY: columns `start..start + 16` are within every row and weighted row.
                unsafe { weigh_columns::<L, N, 2>(block, width, start, &weights, &rescale, weighted) };
                start += 2 * LANES;
            }
        }
        while start < whole {
            // SAFETY: columns `start..start + 8` are within every row and weighted row.
            unsafe { weigh_columns::<L, N, 1>(block, width, start, &weights, &rescale, weighted) };
            start += LANES;
        }
        for column in whole..width {
            for (query, weights) in weights.iter().enumerate() {
                // SAFETY: `column < width`, within the query's weighted values.
                let value = unsafe { &mut *weighted.add(query * width + column) };
                *value *= rescale[query];
                for (index, row) in block.chunks_exact(width).enumerate() {
                    *value = weights[index].mul_add(row[column], *value);
                }
            }
        }
    }
}

/// Scores of the `R` rows at the start of `rows` against every query, scaled, into column
/// `index..index + R` of `weights`.
///
/// # Safety
/// `rows` holds `R` rows of the queries' length, `whole` is that length rounded down to
/// [`LANES`], `index + R <= BLOCK_ROWS`, and the CPU has `L`'s features.
#[inline(always)]
unsafe fn score_rows<L: Lanes, const N: usize, const R: usize>(
    rows: &[f32],
    queries: &[&[f32]; N],
    whole: usize,
    scale: f32,
    weights: &mut [[f32; BLOCK_ROWS]; N],
    index: usize,
) {
    let width = queries[0].len();
    let mut lanes = [[unsafe { L::zero() }; N]; R];
    for start in (0..whole).step_by(LANES) {
        // SAFETY: `start + LANES <= whole <= width`, within each row and query.
        unsafe {
            let values: [L::V; R] =
                std::array::from_fn(|row| L::load(rows.as_ptr().add(row * width + start)));
            for query in 0..N {
                let query_values = L::load(queries[query].as_ptr().add(start));
                for row in 0..R {
                    lanes[row][query] = L::mul_add(values[row], query_values, lanes[row][query]);
                }
            }
        }
    }
    for (row, lanes) in lanes.iter().enumerate() {
        let values = &rows[row * width..][..width];
        for query in 0..N {
            let mut sums = [0f32; LANES];
            // SAFETY: `sums` holds 8 floats.
            unsafe { L::store(sums.as_mut_ptr(), lanes[query]) };
            let tail: f32 = values[whole..].iter().zip(&queries[query][whole..]).map(|(a, b)| a * b).sum();
            weights[query][index + row] = (horizontal_sum(&sums) + tail) * scale;
        }
    }
}

/// `weighted = weighted * rescale + weights * block` for columns `start..start + C * LANES`
/// of every query, the sums held in registers across the block's rows.
///
/// # Safety
/// Those columns are within `width`; `weighted` points to `N * width` floats; `block` holds
/// whole rows of `width`, at most [`BLOCK_ROWS`]; the CPU has `L`'s features.
#[inline(always)]
unsafe fn weigh_columns<L: Lanes, const N: usize, const C: usize>(
    block: &[f32],
    width: usize,
    start: usize,
    weights: &[[f32; BLOCK_ROWS]; N],
    rescale: &[f32; N],
    weighted: *mut f32,
) {
    // SAFETY: every address below is a column in `start..start + C * LANES` of a query's
    // weighted row or of a block row, which the caller vouches for.
    unsafe {
        let mut sums = [[L::zero(); N]; C];
        for (group, sums) in sums.iter_mut().enumerate() {
            for (query, sum) in sums.iter_mut().enumerate() {
                let old = L::load(weighted.add(query * width + start + group * LANES));
                *sum = L::mul(old, L::splat(rescale[query]));
            }
        }
        for (index, row) in block.chunks_exact(width).enumerate() {
            let values: [L::V; C] =
                std::array::from_fn(|group| L::load(row.as_ptr().add(start + group * LANES)));
            for (query, weights) in weights.iter().enumerate() {
                let weight = L::splat(weights[index]);
                for group in 0..C {
                    sums[group][query] = L::mul_add(weight, values[group], sums[group][query]);
                }
            }
        }
        for (group, sums) in sums.iter().enumerate() {
            for (query, sum) in sums.iter().enumerate() {
                L::store(weighted.add(query * width + start + group * LANES), *sum);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }

    /// `softmax(scale * q R^T) R` in f64, from the definition.
    fn reference(queries: &[f32], rows: &[f32], width: usize, scale: f64) -> Vec<f64> {
        let mut out = Vec::new();
        for query in queries.chunks_exact(width) {
            let scores: Vec<f64> = rows
                .chunks_exact(width)
                .map(|row| row.iter().zip(query).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>() * scale)
                .collect();
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let total: f64 = weights.iter().sum();
            for column in 0..width {
                let sum: f64 =
                    rows.chunks_exact(width).zip(&weights).map(|(row, w)| w * row[column] as f64).sum();
                out.push(sum / total);
            }
        }
        out
    }

    #[test]
    fn matches_the_definition_for_every_group_size_on_both_builds() {
        // Widths with and without a lane tail; row counts with a partial last block; 1 to 13
        // queries (one group, a full group plus a partial one).
        // Widths below one lane group (all scalar) too, and every group size from 1 to 8.
        let mut cases = vec![(24, 70, 6), (19, 33, 1), (384, 1500, 6), (13, 5, 13), (8, 32, 8), (40, 97, 3)];
        cases.extend(
            [1, 3, 7, 9].into_iter().flat_map(|width| (1..=17).map(move |queries| (width, 41, queries))),
        );
        for (width, rows, queries) in cases {
            let q = values(queries * width, 1);
            // Rows growing in size, so that the maximum score moves up from block to block
            // and the running sums must be rescaled.
            let r: Vec<f32> = values(rows * width, 2)
                .chunks_exact(width)
                .enumerate()
                .flat_map(|(row, values)| {
                    values.iter().map(move |v| v * (0.5 + 2.0 * row as f32 / rows as f32))
                })
                .collect();
            let scale = 3.0 / (width as f32).sqrt();
            let want = reference(&q, &r, width, scale as f64);
            for (name, run) in [
                ("dispatched", attend_rows as fn(&[f32], &[f32], usize, f32) -> Partial),
                ("portable", attend_rows_portable),
            ] {
                let mut got = vec![0f32; queries * width];
                run(&q, &r, width, scale).finish(&mut got);
                for (index, (got, want)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (*got as f64 - want).abs() < 2e-6 * (1.0 + want.abs()),
                        "{name} {width}x{rows}x{queries} [{index}]: {got} against {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn partials_over_split_rows_merge_into_the_whole() {
        let (width, rows, queries) = (24, 101, 6);
        let (q, r) = (values(queries * width, 3), values(rows * width, 4));
        let scale = 2.0 / (width as f32).sqrt();
        let mut whole = vec![0f32; queries * width];
        attend_rows(&q, &r, width, scale).finish(&mut whole);
        // Uneven parts, one of them a single row.
        let mut merged = vec![0f32; queries * width];
        let parts = [&r[..40 * width], &r[40 * width..41 * width], &r[41 * width..]];
        for run in [attend_rows as fn(&[f32], &[f32], usize, f32) -> Partial, attend_rows_portable] {
            // An empty part merges as nothing.
            let empty = run(&q, &[], width, scale);
            let partial = parts.iter().map(|part| run(&q, part, width, scale)).fold(empty, Partial::merge);
            partial.finish(&mut merged);
            for (a, b) in whole.iter().zip(&merged) {
                assert!((a - b).abs() < 1e-6 * (1.0 + a.abs()), "{a} against {b}");
            }
        }
        // The rayon split gives the same as the serial merge of its parts.
        let mut split = vec![0f32; queries * width];
        attend_rows_split(&q, &r, width, scale, 3).finish(&mut split);
        for (a, b) in whole.iter().zip(&split) {
            assert!((a - b).abs() < 1e-6 * (1.0 + a.abs()), "split: {a} against {b}");
        }
        // Nothing but empty parts: zeros, not NaN.
        let nothing = attend_rows(&q, &[], width, scale).merge(attend_rows(&q, &[], width, scale));
        nothing.finish(&mut merged);
        assert!(merged.iter().all(|value| *value == 0.0));
    }
}
