use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};

use super::{kernels, BlockQuantMatrix};

/// The block types the module takes, each checked below.
const TYPES: [GgmlDType; 3] = [GgmlDType::Q4_1, GgmlDType::Q5_0, GgmlDType::Q5_1];

/// Deterministic values in [-1, 1) with a few large ones, as activations have.
fn values(count: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..count)
        .map(|index| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let unit = (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
            if index % 97 == 0 {
                unit * 8.0
            } else {
                unit
            }
        })
        .collect()
}

fn quantized(dtype: GgmlDType, outputs: usize, features: usize, seed: u64) -> QTensor {
    let weight =
        Tensor::from_vec(values(outputs * features, seed), (outputs, features), &Device::Cpu).unwrap();
    QTensor::quantize(&weight, dtype).unwrap()
}

/// `sum |w| |x|` per output: the scale the float rounding of a dot product is relative to.
fn magnitudes(weight: &QTensor, xs: &[f32], rows: usize) -> Vec<f32> {
    let dense = weight.dequantize(&Device::Cpu).unwrap().abs().unwrap();
    let xs = Tensor::from_vec(xs.to_vec(), (rows, xs.len() / rows), &Device::Cpu).unwrap().abs().unwrap();
    xs.matmul(&dense.t().unwrap()).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn equals_candles_matmul_for_each_type_at_decode_and_prefill_row_counts() {
    // candle's Q5_0 dot product takes even block counts only: 18, 48 and 2 blocks here.
    for (dtype, (outputs, features)) in
        TYPES.into_iter().flat_map(|dtype| [(192, 576), (70, 1536), (8, 64)].map(|shape| (dtype, shape)))
    {
        let weight = quantized(dtype, outputs, features, 1);
        let candle = QMatMul::from_qtensor(quantized(dtype, outputs, features, 1)).unwrap();
        let matrix = BlockQuantMatrix::from_qtensor(&weight).unwrap();
        for rows in [1, 3, 4, 8, 33, 100] {
            let xs = values(rows * features, 2 + rows as u64);
            let input = Tensor::from_vec(xs.clone(), (rows, features), &Device::Cpu).unwrap();
            let expected: Vec<f32> =
                candle.forward(&input).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let bounds = magnitudes(&weight, &xs, rows);
            for (kernel, run) in kernels::available() {
                let got = matrix.multiply_with(run, &xs, rows);
                for (index, ((got, want), bound)) in got.iter().zip(&expected).zip(&bounds).enumerate() {
                    assert!(
                        (got - want).abs() <= 1e-5 * bound,
                        "{dtype:?} {kernel}, {outputs}x{features}, {rows} rows, output {index}: {got} vs candle's {want} (scale {bound})"
                    );
                }
            }
        }
    }
}

#[test]
fn the_tensor_path_equals_the_slice_path() {
    let (outputs, features, rows) = (40, 96, 5);
    for dtype in TYPES {
        let matrix = BlockQuantMatrix::from_qtensor(&quantized(dtype, outputs, features, 3)).unwrap();
        let xs = values(rows * features, 4);
        let input = Tensor::from_vec(xs.clone(), (rows, features), &Device::Cpu).unwrap();
        let through_candle: Vec<f32> =
            matrix.forward(&input).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(through_candle, matrix.multiply(&xs, rows), "{dtype:?}");
    }
}

#[test]
fn simd_kernels_match_the_portable_one_for_odd_block_counts() {
    // 1, 3 and 5 blocks per row: the AVX2 kernel's lone last block and the AVX-512 kernel's
    // partial last group run.
    for (dtype, features) in
        TYPES.into_iter().flat_map(|dtype| [32, 96, 160].map(|features| (dtype, features)))
    {
        let outputs = 19;
        let weight = quantized(dtype, outputs, features, 5);
        let matrix = BlockQuantMatrix::from_qtensor(&weight).unwrap();
        let rows = 7;
        let xs = values(rows * features, 6);
        let bounds = magnitudes(&weight, &xs, rows);
        let reference = matrix.multiply_with(kernels::available()[0].1, &xs, rows);
        for (kernel, run) in kernels::available() {
            let got = matrix.multiply_with(run, &xs, rows);
            for ((got, want), bound) in got.iter().zip(&reference).zip(&bounds) {
                assert!(
                    (got - want).abs() <= 1e-5 * bound,
                    "{dtype:?} {kernel}, {features} features: {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn a_row_gets_the_same_bits_alone_or_in_a_batch() {
    let (outputs, features) = (41, 576);
    // 11 rows split the weight rows across threads, 37 the activation rows.
    for (dtype, (kernel, run), rows) in TYPES.into_iter().flat_map(|dtype| {
        kernels::available().into_iter().flat_map(move |kernel| [(dtype, kernel, 11), (dtype, kernel, 37)])
    }) {
        let matrix = BlockQuantMatrix::from_qtensor(&quantized(dtype, outputs, features, 7)).unwrap();
        let batch = values(rows * features, 8);
        let together = matrix.multiply_with(run, &batch, rows);
        for (row, input) in batch.chunks_exact(features).enumerate() {
            let alone = matrix.multiply_with(run, input, 1);
            let bits = |values: &[f32]| values.iter().map(|value| value.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&alone),
                bits(&together[row * outputs..(row + 1) * outputs]),
                "{dtype:?} {kernel}, row {row} of {rows}"
            );
        }
    }
}

#[test]
fn rejects_other_block_types() {
    let weight = Tensor::from_vec(values(4 * 256, 9), (4, 256), &Device::Cpu).unwrap();
    for dtype in [GgmlDType::Q8_0, GgmlDType::Q4_0, GgmlDType::Q4K, GgmlDType::F16] {
        let other = QTensor::quantize(&weight, dtype).unwrap();
        assert!(!super::supports(dtype) && BlockQuantMatrix::from_qtensor(&other).is_err(), "{dtype:?}");
    }
    assert!(TYPES.into_iter().all(super::supports));
}
