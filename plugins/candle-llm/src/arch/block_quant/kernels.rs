//! Weight-block by activation-block dot products: AVX2 (and AVX-512 VNNI where the CPU has it),
//! chosen at run time since the plugin is built for baseline x86-64, with portable code
//! elsewhere.
//!
//! Per block `b`, `w = dw * qw + mw` and `x ~ dx * qx`, so `w . x = dw dx (qw . qx) + mw sx` with
//! `sx = dx * sum(qx)`: the unsigned 4- or 5-bit by signed 8-bit integer dot is the only
//! per-value work, and the `mw sx` terms join the same vector sums.

use super::{Group, Packing, BLOCK, GROUP_BLOCKS, GROUP_BYTES, HALF_GROUP, LANES_PER_BLOCK};

/// One weight row, repacked (see [`super::BlockQuantMatrix`]).
pub(super) struct WeightRow<'a> {
    pub packing: Packing,
    pub quants: &'a [u8],
    pub scales: &'a [f32],
    pub minimums: &'a [f32],
}

/// One activation row in Q8_1 blocks, in the kernels' layout (see [`super::Activations`]).
pub(super) struct ActivationRow<'a> {
    pub groups: &'a [Group],
}

/// Fills `out[r]` with the weight row dotted with `inputs[r]`.
pub(super) type Kernel = fn(&WeightRow<'_>, &[ActivationRow<'_>], &mut [f32]);

/// The fastest kernel this CPU runs.
pub(super) fn select() -> Kernel {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
        {
            return |weight, inputs, out| {
                // SAFETY: the CPU was just checked for AVX-512 F, BW and VNNI.
                unsafe { avx512::rows(weight, inputs, out) }
            };
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return |weight, inputs, out| {
                // SAFETY: the CPU was just checked for AVX2 and FMA.
                unsafe { avx2::rows(weight, inputs, out) }
            };
        }
    }
    portable
}

/// Every kernel this CPU can run, for tests that compare them.
#[cfg(test)]
pub(super) fn available() -> Vec<(&'static str, Kernel)> {
    let mut kernels: Vec<(&'static str, Kernel)> = vec![("portable", portable)];
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            kernels.push(("avx2", |weight, inputs, out| {
                // SAFETY: checked just above.
                unsafe { avx2::rows(weight, inputs, out) }
            }));
        }
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
        {
            kernels.push(("avx512-vnni", |weight, inputs, out| {
                // SAFETY: checked just above.
                unsafe { avx512::rows(weight, inputs, out) }
            }));
        }
    }
    kernels
}

/// Checks that every row has the weight row's number of blocks (activation rows padded to
/// whole groups): the SIMD kernels read them without bounds checks.
fn check_lengths(weight: &WeightRow<'_>, inputs: &[ActivationRow<'_>], out: &[f32]) -> usize {
    let blocks = weight.scales.len();
    let bytes = match weight.packing {
        Packing::Nibbles => blocks * BLOCK / 2,
        Packing::Bytes => blocks.div_ceil(GROUP_BLOCKS) * GROUP_BYTES,
    };
    assert!(
        weight.minimums.len() == blocks && weight.quants.len() == bytes,
        "a weight row of {blocks} blocks"
    );
    for input in inputs {
        assert_eq!(
            input.groups.len(),
            blocks.div_ceil(GROUP_BLOCKS),
            "activation rows as long as the weight row"
        );
    }
    assert_eq!(out.len(), inputs.len(), "one output per activation row");
    blocks
}

fn portable(weight: &WeightRow<'_>, inputs: &[ActivationRow<'_>], out: &mut [f32]) {
    let blocks = check_lengths(weight, inputs, out);
    for (input, out) in inputs.iter().zip(out) {
        let mut total = 0f32;
        for block in 0..blocks {
            let group = &input.groups[block / GROUP_BLOCKS];
            let (at, lane) = (block % GROUP_BLOCKS * BLOCK / 2, block % GROUP_BLOCKS * LANES_PER_BLOCK);
            // Values j and j + 16 of the block.
            let value = |j: usize| -> (u8, u8) {
                match weight.packing {
                    Packing::Nibbles => {
                        let byte = weight.quants[block * BLOCK / 2 + j];
                        (byte & 0x0F, byte >> 4)
                    }
                    Packing::Bytes => {
                        let start = block / GROUP_BLOCKS * GROUP_BYTES + at + j;
                        (weight.quants[start], weight.quants[start + HALF_GROUP])
                    }
                }
            };
            let mut dot = 0i32;
            for j in 0..BLOCK / 2 {
                let (first, second) = value(j);
                dot += i32::from(first) * i32::from(group.low[at + j])
                    + i32::from(second) * i32::from(group.high[at + j]);
            }
            let sum = group.lane_sums[lane] * LANES_PER_BLOCK as f32;
            total +=
                dot as f32 * weight.scales[block] * group.lane_scales[lane] + weight.minimums[block] * sum;
        }
        *out = total;
    }
}

/// Activation rows per pass of the SIMD kernels: each weight group, unpacked once, feeds this
/// many rows, and as many independent accumulators hide the multiply-add latency.
#[cfg(target_arch = "x86_64")]
const PASS: usize = 8;

/// Runs a SIMD `dot::<ROWS, BYTES>` over `inputs` in passes of [`PASS`], then 4, then 1 rows,
/// `BYTES` telling the weight row's packing.
#[cfg(target_arch = "x86_64")]
macro_rules! in_passes {
    ($dot:ident, $weight:expr, $inputs:expr, $out:expr) => {{
        let (weight, inputs, out) = ($weight, $inputs, $out);
        match weight.packing {
            super::Packing::Nibbles => in_passes!(@packed false, $dot, weight, inputs, out),
            super::Packing::Bytes => in_passes!(@packed true, $dot, weight, inputs, out),
        }
    }};
    (@packed $bytes:literal, $dot:ident, $weight:expr, $inputs:expr, $out:expr) => {{
        let (weight, inputs, out) = ($weight, $inputs, $out);
        let blocks = super::check_lengths(weight, inputs, out);
        let mut row = 0;
        while let Some(pass) = inputs[row..].first_chunk::<{ super::PASS }>() {
            // SAFETY: lengths checked above; the caller vouches for the CPU.
            out[row..row + super::PASS]
                .copy_from_slice(&unsafe { $dot::<{ super::PASS }, $bytes>(weight, pass, blocks) });
            row += super::PASS;
        }
        if let Some(pass) = inputs[row..].first_chunk::<4>() {
            // SAFETY: as above.
            out[row..row + 4].copy_from_slice(&unsafe { $dot::<4, $bytes>(weight, pass, blocks) });
            row += 4;
        }
        for row in row..inputs.len() {
            // SAFETY: as above.
            out[row] = unsafe { $dot::<1, $bytes>(weight, std::array::from_ref(&inputs[row]), blocks) }[0];
        }
    }};
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{ActivationRow, WeightRow, BLOCK, GROUP_BLOCKS, GROUP_BYTES, HALF_GROUP, LANES_PER_BLOCK};

    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn rows(weight: &WeightRow<'_>, inputs: &[ActivationRow<'_>], out: &mut [f32]) {
        in_passes!(dot, weight, inputs, out)
    }

    /// Two blocks per 256-bit step (a lone last block takes the step with zeros beside it).
    /// Nibbles: 32 packed bytes give the low and high nibbles of both blocks, matching the
    /// activation layout's halves. Bytes: the two halves are loaded as they lie.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; every row holds `blocks` blocks packed as `BYTES` says.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn dot<const ROWS: usize, const BYTES: bool>(
        weight: &WeightRow<'_>,
        inputs: &[ActivationRow<'_>; ROWS],
        blocks: usize,
    ) -> [f32; ROWS] {
        let ones = _mm256_set1_epi16(1);
        let low = _mm256_set1_epi8(0x0F);
        // Lane i takes the scale of block i / 4.
        let spread = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
        let mut sums = [_mm256_setzero_ps(); ROWS];
        for block in (0..blocks).step_by(2) {
            let within = block % GROUP_BLOCKS;
            let (at, lane) = (within * BLOCK / 2, within * LANES_PER_BLOCK);
            // SAFETY: `block < blocks`; the second block is read only when it exists, and
            // activation rows are padded to whole groups.
            unsafe {
                let lone = block + 1 == blocks;
                // A lone last block's scale and minimum also fill the lanes of the block beside
                // it, whose activation scales and sums are padding zeros.
                let (scale, minimum) = if !lone {
                    let pair = |values: &[f32]| {
                        let two = _mm_castpd_ps(_mm_load_sd(values.as_ptr().add(block).cast()));
                        _mm256_permutevar8x32_ps(_mm256_castps128_ps256(two), spread)
                    };
                    (pair(weight.scales), pair(weight.minimums))
                } else {
                    (
                        _mm256_set1_ps(*weight.scales.get_unchecked(block)),
                        _mm256_set1_ps(*weight.minimums.get_unchecked(block)),
                    )
                };
                let (first, second) = if BYTES {
                    // Groups are padded with zeros, so a lone block's neighbour reads zeros.
                    let halves = weight.quants.as_ptr().add(block / GROUP_BLOCKS * GROUP_BYTES + at);
                    (_mm256_loadu_si256(halves.cast()), _mm256_loadu_si256(halves.add(HALF_GROUP).cast()))
                } else {
                    let packed = weight.quants.as_ptr().add(block * BLOCK / 2);
                    let bytes = if lone {
                        _mm256_zextsi128_si256(_mm_loadu_si128(packed.cast()))
                    } else {
                        _mm256_loadu_si256(packed.cast())
                    };
                    (_mm256_and_si256(bytes, low), _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low))
                };
                for row in 0..ROWS {
                    let group = inputs[row].groups.get_unchecked(block / GROUP_BLOCKS);
                    let x_first = _mm256_loadu_si256(group.low.as_ptr().add(at).cast());
                    let x_second = _mm256_loadu_si256(group.high.as_ptr().add(at).cast());
                    // Unsigned 5-bit (at most) by signed 8-bit pairs: at most 2 * 31 * 127 in
                    // magnitude each, so the 16-bit sums of both halves cannot saturate.
                    let pairs = _mm256_add_epi16(
                        _mm256_maddubs_epi16(first, x_first),
                        _mm256_maddubs_epi16(second, x_second),
                    );
                    let products = _mm256_madd_epi16(pairs, ones);
                    let factor = _mm256_mul_ps(scale, _mm256_loadu_ps(group.lane_scales.as_ptr().add(lane)));
                    let terms = _mm256_loadu_ps(group.lane_sums.as_ptr().add(lane));
                    sums[row] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(products), factor, sums[row]);
                    sums[row] = _mm256_fmadd_ps(minimum, terms, sums[row]);
                }
            }
        }
        sums.map(|sum| horizontal_sum(sum))
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn horizontal_sum(sum: __m256) -> f32 {
        let halves = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
        let pairs = _mm_add_ps(halves, _mm_movehl_ps(halves, halves));
        _mm_cvtss_f32(_mm_add_ss(pairs, _mm_movehdup_ps(pairs)))
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{ActivationRow, WeightRow, BLOCK, GROUP_BLOCKS, GROUP_BYTES, HALF_GROUP};

    /// # Safety
    /// The CPU has AVX-512 F, BW and VNNI.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn rows(weight: &WeightRow<'_>, inputs: &[ActivationRow<'_>], out: &mut [f32]) {
        in_passes!(dot, weight, inputs, out)
    }

    /// A group of four blocks per 512-bit step: the 64 packed bytes masked and shifted (or, for
    /// bytes, the two 64-byte halves as they lie) are the low and high halves of the four
    /// blocks, and VNNI's `dpbusd` does the unsigned-by-signed byte products and their 4-way
    /// sums in one instruction per half. The last group's missing blocks are masked off the
    /// nibble loads (bytes are padded with zeros), so they add zeros.
    ///
    /// # Safety
    /// The CPU has AVX-512 F, BW and VNNI; every row holds `blocks` blocks packed as `BYTES`
    /// says.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    unsafe fn dot<const ROWS: usize, const BYTES: bool>(
        weight: &WeightRow<'_>,
        inputs: &[ActivationRow<'_>; ROWS],
        blocks: usize,
    ) -> [f32; ROWS] {
        let low = _mm512_set1_epi8(0x0F);
        // Lane i takes the scale of block i / 4.
        let spread = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
        let mut sums = [_mm512_setzero_ps(); ROWS];
        for block in (0..blocks).step_by(GROUP_BLOCKS) {
            let present = (blocks - block).min(GROUP_BLOCKS);
            let byte_mask: __mmask64 =
                if present == GROUP_BLOCKS { u64::MAX } else { (1 << (present * 16)) - 1 };
            let scale_mask: __mmask16 = (1 << present) - 1;
            // SAFETY: the masks read only the `present` blocks left; activation rows are padded
            // to whole groups.
            unsafe {
                let (first, second) = if BYTES {
                    let halves = weight.quants.as_ptr().add(block / GROUP_BLOCKS * GROUP_BYTES);
                    (_mm512_loadu_si512(halves.cast()), _mm512_loadu_si512(halves.add(HALF_GROUP).cast()))
                } else {
                    let bytes = _mm512_maskz_loadu_epi8(
                        byte_mask,
                        weight.quants.as_ptr().add(block * BLOCK / 2).cast(),
                    );
                    (_mm512_and_si512(bytes, low), _mm512_and_si512(_mm512_srli_epi16(bytes, 4), low))
                };
                let spread_out = |values: &[f32]| {
                    _mm512_permutexvar_ps(
                        spread,
                        _mm512_maskz_loadu_ps(scale_mask, values.as_ptr().add(block)),
                    )
                };
                let (scale, minimum) = (spread_out(weight.scales), spread_out(weight.minimums));
                for row in 0..ROWS {
                    let group = inputs[row].groups.get_unchecked(block / GROUP_BLOCKS);
                    let x_first = _mm512_loadu_si512(group.low.as_ptr().cast());
                    let x_second = _mm512_loadu_si512(group.high.as_ptr().cast());
                    let products = _mm512_dpbusd_epi32(
                        _mm512_dpbusd_epi32(_mm512_setzero_si512(), first, x_first),
                        second,
                        x_second,
                    );
                    let factor = _mm512_mul_ps(scale, _mm512_loadu_ps(group.lane_scales.as_ptr()));
                    let terms = _mm512_loadu_ps(group.lane_sums.as_ptr());
                    sums[row] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(products), factor, sums[row]);
                    sums[row] = _mm512_fmadd_ps(minimum, terms, sums[row]);
                }
            }
        }
        sums.map(|sum| _mm512_reduce_add_ps(sum))
    }
}
