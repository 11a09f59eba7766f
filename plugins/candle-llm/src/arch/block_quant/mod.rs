//! GGUF Q4_1, Q5_0 and Q5_1 matrices multiplied with SIMD integer dot products.
//!
//! candle 0.11's dot products for these three block types are scalar (its Q4_0, Q8_0 and
//! k-quant kernels have AVX2 paths): SmolLM2's Q4_1 file ran slower quantized than dequantized
//! to f32, 4.6x in decode at batch 8 and 13x in prefill. All three are affine in an unsigned
//! value, `w = scale * q + minimum` (Q5_0's minimum is `-16 * scale`), so one kernel serves
//! them: the weight blocks are repacked at load, each activation row is quantized to 8-bit
//! blocks as candle and llama.cpp do, and every block's dot product is an 8-bit multiply-add
//! ([`kernels`]). Q4_1 stays in 4-bit nibbles; Q5's values are unpacked to one byte each at
//! load (their fifth bits would cost shuffles per block in the inner loop).
//!
//! The same kernel serves any number of rows: a decode step (one row per sequence), where the
//! weight rows are split across the rayon pool in runs as [`super::few_rows`] does, and a
//! prefill (many rows), where tiles of activation rows are.
//! Each output is computed the same way whatever the number of rows, so a sequence gets the
//! same bits alone or in a batch.

mod kernels;
#[cfg(test)]
mod tests;

use candle_core::backend::BackendStorage;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use half::f16;
use rayon::prelude::*;

use kernels::{ActivationRow, WeightRow};

/// Values per weight and activation block.
const BLOCK: usize = 32;
/// Weight rows per parallel task: enough to amortise scheduling, few enough to balance two to
/// a few dozen threads over the smallest projections (192 rows here).
const WEIGHT_ROWS_PER_TASK: usize = 8;
/// Up to this many activation rows, threads split the weight rows; beyond, the activation rows.
const SPLIT_WEIGHTS_UP_TO_ROWS: usize = 16;
/// Activation rows per task when they are split: 16 rows of 576 or 1536 values (10-30 KB)
/// stay in L1, and a 200-token prompt still makes 13 tasks to balance.
const ACTIVATION_ROWS_PER_TILE: usize = 16;

/// How a matrix keeps its unsigned values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Packing {
    /// Q4_1: per block, byte `j` holds value `j` in its low nibble and `j + 16` in its high
    /// nibble (GGUF's order); `[out, in / 2]`.
    Nibbles,
    /// Q5_0 and Q5_1: one byte per value, laid out as the activations' [`Group`]s are (per
    /// group of [`GROUP_BLOCKS`] blocks, values 0-15 of each block, then values 16-31), the
    /// last group of a row padded with zeros; `[out, groups * GROUP_BLOCKS * 32]`.
    Bytes,
}

/// A GGUF block type this module multiplies, with what its blocks hold.
#[derive(Clone, Copy)]
struct BlockType {
    dtype: GgmlDType,
    /// Bytes of one GGUF block.
    bytes: usize,
    /// Whether a block stores its own minimum (Q4_1, Q5_1) or implies `-16 * scale` (Q5_0).
    minimum: bool,
    /// Whether the values have a fifth bit (a 32-bit word after the f16 fields).
    fifth_bit: bool,
}

const BLOCK_TYPES: [BlockType; 3] = [
    BlockType { dtype: GgmlDType::Q4_1, bytes: 20, minimum: true, fifth_bit: false },
    BlockType { dtype: GgmlDType::Q5_0, bytes: 22, minimum: false, fifth_bit: true },
    BlockType { dtype: GgmlDType::Q5_1, bytes: 24, minimum: true, fifth_bit: true },
];

/// Whether [`BlockQuantMatrix::from_qtensor`] takes tensors of this type.
pub fn supports(dtype: GgmlDType) -> bool {
    BLOCK_TYPES.iter().any(|block_type| block_type.dtype == dtype)
}

/// A Q4_1, Q5_0 or Q5_1 weight `[out, in]`, repacked for the kernels.
pub struct BlockQuantMatrix {
    outputs: usize,
    features: usize,
    packing: Packing,
    /// The activations' block sums in f32 rather than f16: Q5_0's activation blocks (Q8_0)
    /// carry no sum in candle and llama.cpp, so its `minimum * sum` terms are exact there.
    exact_sums: bool,
    /// Per row, as [`Packing`] says.
    quants: Vec<u8>,
    /// `[out, in / 32]`: a value is `scale * q + minimum`.
    scales: Vec<f32>,
    minimums: Vec<f32>,
}

impl BlockQuantMatrix {
    /// Repacks a Q4_1, Q5_0 or Q5_1 tensor `[out, in]`; `in` must be a whole number of blocks.
    pub fn from_qtensor(tensor: &QTensor) -> Result<Self> {
        let Some(block_type) = BLOCK_TYPES.iter().find(|block_type| block_type.dtype == tensor.dtype())
        else {
            candle_core::bail!("expected a Q4_1, Q5_0 or Q5_1 tensor, got {:?}", tensor.dtype())
        };
        let (outputs, features) = tensor.shape().dims2()?;
        if features == 0 || !features.is_multiple_of(BLOCK) {
            candle_core::bail!(
                "a {:?} row of {features} values is not a whole number of blocks",
                block_type.dtype
            )
        }
        let data = tensor.data()?;
        let blocks = outputs * features / BLOCK;
        if data.len() != blocks * block_type.bytes {
            candle_core::bail!(
                "a {:?} tensor of {blocks} blocks holds {} bytes",
                block_type.dtype,
                data.len()
            )
        }
        let packing = if block_type.fifth_bit { Packing::Bytes } else { Packing::Nibbles };
        let mut matrix = BlockQuantMatrix {
            outputs,
            features,
            packing,
            exact_sums: !block_type.minimum,
            quants: Vec::with_capacity(outputs * row_bytes(packing, features)),
            scales: Vec::with_capacity(blocks),
            minimums: Vec::with_capacity(blocks),
        };
        let half = |at: usize, block: &[u8]| f16::from_le_bytes([block[at], block[at + 1]]).to_f32();
        for row in data.chunks_exact(features / BLOCK * block_type.bytes) {
            let start = matrix.quants.len();
            matrix.quants.resize(start + row_bytes(packing, features), 0);
            for (index, block) in row.chunks_exact(block_type.bytes).enumerate() {
                let scale = half(0, block);
                let (minimum, rest) = if block_type.minimum {
                    (half(2, block), &block[4..])
                } else {
                    (-16.0 * scale, &block[2..])
                };
                matrix.scales.push(scale);
                matrix.minimums.push(minimum);
                if packing == Packing::Nibbles {
                    matrix.quants[start + index * BLOCK / 2..start + (index + 1) * BLOCK / 2]
                        .copy_from_slice(rest);
                    continue;
                }
                let fifth = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
                let group = start + index / GROUP_BLOCKS * GROUP_BYTES;
                let at = index % GROUP_BLOCKS * BLOCK / 2;
                for (j, byte) in rest[4..].iter().enumerate() {
                    let bit = |value: usize| ((fifth >> value) & 1) as u8 * 16;
                    matrix.quants[group + at + j] = (byte & 0x0F) | bit(j);
                    matrix.quants[group + HALF_GROUP + at + j] = (byte >> 4) | bit(j + BLOCK / 2);
                }
            }
        }
        Ok(matrix)
    }

    /// `xs @ W^T` for `xs` `[rows, in]`, f32 on the CPU.
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        xs.contiguous()?.apply_op1_no_bwd(&Product(self))
    }

    fn row(&self, output: usize) -> WeightRow<'_> {
        let blocks = self.features / BLOCK;
        let bytes = row_bytes(self.packing, self.features);
        WeightRow {
            packing: self.packing,
            quants: &self.quants[output * bytes..(output + 1) * bytes],
            scales: &self.scales[output * blocks..(output + 1) * blocks],
            minimums: &self.minimums[output * blocks..(output + 1) * blocks],
        }
    }

    /// `[rows, out]` for `xs` `[rows, in]` (row-major).
    fn multiply(&self, xs: &[f32], rows: usize) -> Vec<f32> {
        self.multiply_with(kernels::select(), xs, rows)
    }

    fn multiply_with(&self, kernel: kernels::Kernel, xs: &[f32], rows: usize) -> Vec<f32> {
        let activations = Activations::quantize(xs, rows, self.features, self.exact_sums);
        let inputs: Vec<ActivationRow<'_>> = (0..rows).map(|row| activations.row(row)).collect();
        if rows <= SPLIT_WEIGHTS_UP_TO_ROWS {
            self.split_by_weight_rows(kernel, &inputs)
        } else {
            self.split_by_activation_rows(kernel, &inputs)
        }
    }

    /// Few rows (decode): threads share out the weight rows, each read once for all the
    /// activation rows; the `[out, rows]` result is transposed at the end (cheap at this size).
    fn split_by_weight_rows(&self, kernel: kernels::Kernel, inputs: &[ActivationRow<'_>]) -> Vec<f32> {
        let rows = inputs.len();
        let mut transposed = vec![0f32; self.outputs * rows];
        if rows == 0 {
            return transposed;
        }
        transposed.par_chunks_mut(WEIGHT_ROWS_PER_TASK * rows).enumerate().for_each(|(task, out)| {
            let first = task * WEIGHT_ROWS_PER_TASK;
            for (output, out) in (first..).zip(out.chunks_exact_mut(rows)) {
                kernel(&self.row(output), inputs, out);
            }
        });
        let mut out = vec![0f32; rows * self.outputs];
        for (output, values) in transposed.chunks_exact(rows).enumerate() {
            for (row, value) in values.iter().enumerate() {
                out[row * self.outputs + output] = *value;
            }
        }
        out
    }

    /// Many rows (prefill): threads share out tiles of activation rows, which stay in L1 while
    /// every weight row (from L2) meets them; each tile fills its own rows of the output.
    fn split_by_activation_rows(&self, kernel: kernels::Kernel, inputs: &[ActivationRow<'_>]) -> Vec<f32> {
        let mut out = vec![0f32; inputs.len() * self.outputs];
        out.par_chunks_mut(ACTIVATION_ROWS_PER_TILE * self.outputs)
            .zip(inputs.par_chunks(ACTIVATION_ROWS_PER_TILE))
            .for_each(|(out, tile)| {
                let mut values = [0f32; ACTIVATION_ROWS_PER_TILE];
                let values = &mut values[..tile.len()];
                for output in 0..self.outputs {
                    kernel(&self.row(output), tile, values);
                    for (row, value) in values.iter().enumerate() {
                        out[row * self.outputs + output] = *value;
                    }
                }
            });
        out
    }
}

/// Activation rows quantized to 8-bit blocks: per block of 32 values, `d = max|x| / 127`, `q =
/// round(x / d)` and `s = d * sum(q)`. `d` is rounded to f16 as candle and llama.cpp store it,
/// and so is `s` for Q4_1 and Q5_1 (their Q8_1 blocks); Q5_0's Q8_0 blocks have no `s`, so it
/// is kept exact. A product then equals candle's own up to the order of the float sums.
struct Activations {
    groups_per_row: usize,
    /// `[rows, groups_per_row]`, the last group of a row padded with zeros.
    groups: Vec<Group>,
}

/// Blocks a kernel step takes from a row: 64 packed weight bytes, one AVX-512 register.
const GROUP_BLOCKS: usize = 4;
/// Bytes of a group of [`Packing::Bytes`] weights.
const GROUP_BYTES: usize = GROUP_BLOCKS * BLOCK;
/// 32-bit lanes that hold one block's partial sums (16 values of the low half and 16 of the high
/// half, four bytes a lane).
const LANES_PER_BLOCK: usize = 4;
/// Values of a group's low (or high) halves.
const HALF_GROUP: usize = GROUP_BLOCKS * BLOCK / 2;
/// Lanes of a group's partial sums.
const GROUP_LANES: usize = GROUP_BLOCKS * LANES_PER_BLOCK;

/// [`GROUP_BLOCKS`] blocks of an activation row, laid out for the kernels. A weight group's 64
/// packed bytes give, masked and shifted, two vectors whose bytes line up with `low` and `high`,
/// each 32-bit lane inside one block: no shuffles in the inner loop. Values, scales and sums lie
/// together so that one pointer per row reaches them all (eight rows' worth of separate
/// pointers would not fit in registers).
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct Group {
    /// Values 0-15 of each block.
    pub low: [i8; HALF_GROUP],
    /// Values 16-31 of each block.
    pub high: [i8; HALF_GROUP],
    /// Each block's `d` in each of its lanes.
    pub lane_scales: [f32; GROUP_LANES],
    /// Each block's `s` divided among its lanes (an exact division by 4), so that the weights'
    /// `minimum * s` terms join the same vector sums.
    pub lane_sums: [f32; GROUP_LANES],
}

/// Bytes of one weight row of `features` values.
fn row_bytes(packing: Packing, features: usize) -> usize {
    match packing {
        Packing::Nibbles => features / 2,
        Packing::Bytes => (features / BLOCK).div_ceil(GROUP_BLOCKS) * GROUP_BYTES,
    }
}

const EMPTY_GROUP: Group = Group {
    low: [0; HALF_GROUP],
    high: [0; HALF_GROUP],
    lane_scales: [0.0; GROUP_LANES],
    lane_sums: [0.0; GROUP_LANES],
};

impl Activations {
    fn quantize(xs: &[f32], rows: usize, features: usize, exact_sums: bool) -> Self {
        let groups_per_row = (features / BLOCK).div_ceil(GROUP_BLOCKS);
        let mut groups = vec![EMPTY_GROUP; rows * groups_per_row];
        groups.par_chunks_mut(groups_per_row.max(1)).zip(xs.par_chunks(features.max(1))).for_each(
            |(groups, values)| {
                for (block, values) in values.chunks_exact(BLOCK).enumerate() {
                    let group = &mut groups[block / GROUP_BLOCKS];
                    let within = block % GROUP_BLOCKS;
                    let largest = values.iter().fold(0f32, |largest, value| largest.max(value.abs()));
                    let d = largest / 127.0;
                    let inverse = if d != 0.0 { 1.0 / d } else { 0.0 };
                    let mut total = 0i32;
                    let (first, second) = values.split_at(BLOCK / 2);
                    let halves = [(&mut group.low, first), (&mut group.high, second)];
                    for (half, values) in halves {
                        for (quant, value) in half[within * BLOCK / 2..].iter_mut().zip(values) {
                            *quant = (value * inverse).round() as i8;
                            total += i32::from(*quant);
                        }
                    }
                    let d = f16::from_f32(d);
                    let lanes = within * LANES_PER_BLOCK..(within + 1) * LANES_PER_BLOCK;
                    group.lane_scales[lanes.clone()].fill(d.to_f32());
                    // `d * total` is exact in f32: an 11-bit mantissa times a 12-bit integer.
                    let sum = if exact_sums {
                        d.to_f32() * total as f32
                    } else {
                        (f16::from_f32(total as f32) * d).to_f32()
                    };
                    group.lane_sums[lanes].fill(sum / LANES_PER_BLOCK as f32);
                }
            },
        );
        Activations { groups_per_row, groups }
    }

    fn row(&self, row: usize) -> ActivationRow<'_> {
        let per_row = self.groups_per_row;
        ActivationRow { groups: &self.groups[row * per_row..(row + 1) * per_row] }
    }
}

/// The candle operation: `xs` `[rows, in]` by a [`BlockQuantMatrix`].
struct Product<'a>(&'a BlockQuantMatrix);

impl CustomOp1 for Product<'_> {
    fn name(&self) -> &'static str {
        "block-quant-matmul"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let matrix = self.0;
        let (rows, features) = layout.shape().dims2()?;
        if features != matrix.features {
            candle_core::bail!(
                "block-quant matmul: input has {features} features, weight {}",
                matrix.features
            )
        }
        let CpuStorage::F32(values) = storage else {
            candle_core::bail!("block-quant matmul: the input must be f32, got {:?}", storage.dtype())
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("block-quant matmul: the input must be contiguous")
        };
        let out = matrix.multiply(&values[start..end], rows);
        Ok((CpuStorage::F32(out), Shape::from((rows, matrix.outputs))))
    }
}
