//! `x W^T + b`, with an optional residual added, as one GEMM on the CPU.
//!
//! candle's `Linear` writes the product into a fresh tensor, adds the bias into a second one,
//! and the block's residual add makes a third: for an encoder `fc1` of whisper-tiny that is
//! three passes over 9 MB per layer and clip, each on newly faulted pages. Here the output
//! starts as the bias (plus the residual), and the GEMM accumulates into it. A decoding step's
//! few rows (one per sequence) go to [`few_rows`] instead, which reads each weight row once for
//! all of them where the GEMM would pad them to its tiles; the vocabulary projection (80 MB of
//! weights a step) is one of these maps, without bias.

use candle_core::{CpuStorage, DType, Module, Result, Storage, Tensor};
use candle_nn::Linear;
use karma_cpu_kernels::few_rows;
use karma_cpu_kernels::matmul::{strided_gemm, Parallelism};

/// Row counts up to which the product runs on [`few_rows`]: a decoding step at any batch size
/// the plugin runs; the GEMM is faster from here on.
const FEW_ROWS: usize = 16;

fn f32_rows<'t>(storage: &'t Storage, tensor: &Tensor, what: &str) -> Result<&'t [f32]> {
    let Storage::Cpu(CpuStorage::F32(values)) = storage else {
        candle_core::bail!("affine: {what} must be f32 on the CPU")
    };
    let Some((start, end)) = tensor.layout().contiguous_offsets() else {
        candle_core::bail!("affine: {what} must be contiguous")
    };
    Ok(&values[start..end])
}

/// `residual + x W^T + b` for `x` `(.., inputs)` (`b` zero for a layer without bias);
/// candle's ops where the fused path does not apply (GPUs, half precision).
pub fn affine(layer: &Linear, x: &Tensor, residual: Option<&Tensor>) -> Result<Tensor> {
    if !(x.device().is_cpu() && x.dtype() == DType::F32 && layer.weight().dtype() == DType::F32) {
        let y = layer.forward(x)?;
        return match residual {
            Some(residual) => residual + y,
            None => Ok(y),
        };
    }
    let x = x.contiguous()?;
    let weight = layer.weight().contiguous()?;
    let (outputs, inputs) = weight.dims2()?;
    let mut shape = x.dims().to_vec();
    if shape.last() != Some(&inputs) || layer.bias().is_some_and(|bias| bias.dims1().ok() != Some(outputs)) {
        candle_core::bail!("affine: input {:?} against weight {:?}", x.dims(), weight.dims())
    }
    let rows = x.elem_count() / inputs.max(1);
    if let Some(last) = shape.last_mut() {
        *last = outputs;
    }
    let mut out = Vec::with_capacity(rows * outputs);
    {
        let zeros;
        let bias_storage = layer.bias().map(|bias| bias.storage_and_layout().0);
        let bias = match (&bias_storage, layer.bias()) {
            (Some(storage), Some(bias)) => f32_rows(storage, bias, "the bias")?,
            _ => {
                zeros = vec![0f32; outputs];
                &zeros
            }
        };
        match residual {
            Some(residual) => {
                let residual = residual.contiguous()?;
                if residual.dims() != shape.as_slice() {
                    candle_core::bail!("affine: residual {:?} for output {shape:?}", residual.dims())
                }
                let (storage, _) = residual.storage_and_layout();
                let residual = f32_rows(&storage, &residual, "the residual")?;
                for row in residual.chunks_exact(outputs) {
                    out.extend(row.iter().zip(bias).map(|(r, b)| r + b));
                }
            }
            None => (0..rows).for_each(|_| out.extend_from_slice(bias)),
        }
    }
    if rows > 0 && inputs > 0 && rows <= FEW_ROWS {
        let (x_storage, _) = x.storage_and_layout();
        let (w_storage, _) = weight.storage_and_layout();
        let (x_values, w_values) =
            (f32_rows(&x_storage, &x, "the input")?, f32_rows(&w_storage, &weight, "the weight")?);
        // `[outputs, rows]`, added to the bias (and residual) already in `out`.
        let products = few_rows::multiply_transposed(x_values, w_values, rows, inputs);
        for (output, values) in products.chunks_exact(rows).enumerate() {
            for (row, value) in values.iter().enumerate() {
                out[row * outputs + output] += value;
            }
        }
    } else if rows > 0 && inputs > 0 {
        let (x_storage, _) = x.storage_and_layout();
        let (w_storage, _) = weight.storage_and_layout();
        let (x_values, w_values) =
            (f32_rows(&x_storage, &x, "the input")?, f32_rows(&w_storage, &weight, "the weight")?);
        let threads = rayon::current_num_threads();
        let parallelism = if threads > 1 { Parallelism::Rayon(threads) } else { Parallelism::None };
        // SAFETY: `out` is `rows x outputs`, `x` `rows x inputs` and `weight` `outputs x inputs`,
        // all row-major and contiguous; the product's element (i, j) reads x row i and weight
        // row j (the weight read as its `inputs x outputs` transpose). Accumulating adds the
        // product to the bias (and residual) already in `out`.
        unsafe {
            strided_gemm(
                (rows, outputs, inputs),
                (out.as_mut_ptr(), outputs, 1),
                true,
                (x_values.as_ptr(), inputs, 1),
                (w_values.as_ptr(), 1, inputs),
                parallelism,
            )
        }
    }
    Tensor::from_vec(out, shape, x.device())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }

    #[test]
    fn the_fused_affine_map_equals_linear_plus_residual() -> Result<()> {
        let device = Device::Cpu;
        // Odd sizes: rows and widths that are not multiples of the GEMM's register tiles.
        // Decoding steps (up to 16 rows) take the few-rows kernel, the rest the GEMM.
        for (batch, time, inputs, outputs) in
            [(2, 37, 19, 45), (1, 300, 64, 96), (3, 1, 8, 5), (8, 1, 37, 70), (1, 16, 13, 9)]
        {
            let x = Tensor::from_vec(values(batch * time * inputs, 1), (batch, time, inputs), &device)?;
            let weight = Tensor::from_vec(values(outputs * inputs, 2), (outputs, inputs), &device)?;
            let bias = Tensor::from_vec(values(outputs, 3), outputs, &device)?;
            let residual =
                Tensor::from_vec(values(batch * time * outputs, 4), (batch, time, outputs), &device)?;
            let unbiased = Linear::new(weight.clone(), None);
            let want = unbiased.forward(&x)?.flatten_all()?.to_vec1::<f32>()?;
            for (got, want) in affine(&unbiased, &x, None)?.flatten_all()?.to_vec1::<f32>()?.iter().zip(&want)
            {
                assert!(
                    (got - want).abs() < 1e-5,
                    "no bias, {batch}x{time}x{inputs}->{outputs}: {got} against {want}"
                );
            }
            let layer = Linear::new(weight, Some(bias));
            let want = (&residual + layer.forward(&x)?)?.flatten_all()?.to_vec1::<f32>()?;
            let got = affine(&layer, &x, Some(&residual))?;
            assert_eq!(got.dims(), residual.dims());
            for (got, want) in got.flatten_all()?.to_vec1::<f32>()?.iter().zip(&want) {
                assert!(
                    (got - want).abs() < 1e-5,
                    "{batch}x{time}x{inputs}->{outputs}: {got} against {want}"
                );
            }
            let want = layer.forward(&x)?.flatten_all()?.to_vec1::<f32>()?;
            for (got, want) in affine(&layer, &x, None)?.flatten_all()?.to_vec1::<f32>()?.iter().zip(&want) {
                assert!(
                    (got - want).abs() < 1e-5,
                    "{batch}x{time}x{inputs}->{outputs}: {got} against {want}"
                );
            }
        }
        Ok(())
    }
}
