//! `x W^T + b`, with an optional residual added, as one GEMM on the CPU.
//!
//! candle's `Linear` writes the product into a fresh tensor, adds the bias into a second one,
//! and the block's residual add makes a third: for an encoder `fc1` of whisper-tiny that is
//! three passes over 9 MB per layer and clip, each on newly faulted pages. Here the output
//! starts as the bias (plus the residual), and the GEMM accumulates into it.

use candle_core::{CpuStorage, DType, Module, Result, Storage, Tensor};
use candle_nn::Linear;

fn f32_rows<'t>(storage: &'t Storage, tensor: &Tensor, what: &str) -> Result<&'t [f32]> {
    let Storage::Cpu(CpuStorage::F32(values)) = storage else {
        candle_core::bail!("affine: {what} must be f32 on the CPU")
    };
    let Some((start, end)) = tensor.layout().contiguous_offsets() else {
        candle_core::bail!("affine: {what} must be contiguous")
    };
    Ok(&values[start..end])
}

/// `residual + x W^T + b` for `x` `(.., inputs)`; candle's ops where the fused path does not
/// apply (GPUs, half precision, a layer without bias).
pub fn affine(layer: &Linear, x: &Tensor, residual: Option<&Tensor>) -> Result<Tensor> {
    let fused = x.device().is_cpu() && x.dtype() == DType::F32 && layer.bias().is_some();
    let Some(bias) = layer.bias().filter(|_| fused) else {
        let y = layer.forward(x)?;
        return match residual {
            Some(residual) => residual + y,
            None => Ok(y),
        };
    };
    let x = x.contiguous()?;
    let weight = layer.weight().contiguous()?;
    let (outputs, inputs) = weight.dims2()?;
    let mut shape = x.dims().to_vec();
    if shape.last() != Some(&inputs) || bias.dims1()? != outputs {
        candle_core::bail!("affine: input {:?} against weight {:?}", x.dims(), weight.dims())
    }
    let rows = x.elem_count() / inputs.max(1);
    if let Some(last) = shape.last_mut() {
        *last = outputs;
    }
    let mut out = Vec::with_capacity(rows * outputs);
    {
        let (bias_storage, _) = bias.storage_and_layout();
        let bias = f32_rows(&bias_storage, bias, "the bias")?;
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
    if rows > 0 && inputs > 0 {
        let (x_storage, _) = x.storage_and_layout();
        let (w_storage, _) = weight.storage_and_layout();
        let (x_values, w_values) =
            (f32_rows(&x_storage, &x, "the input")?, f32_rows(&w_storage, &weight, "the weight")?);
        let threads = rayon::current_num_threads();
        let parallelism =
            if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
        // SAFETY: `out` is `rows x outputs`, `x` `rows x inputs` and `weight` `outputs x inputs`,
        // all row-major and contiguous; the product's element (i, j) reads x row i and weight
        // row j. `read_dst` adds the product to the bias (and residual) already in `out`.
        unsafe {
            gemm::gemm(
                rows,
                outputs,
                inputs,
                out.as_mut_ptr(),
                1,
                outputs as isize,
                true,
                x_values.as_ptr(),
                1,
                inputs as isize,
                w_values.as_ptr(),
                inputs as isize,
                1,
                1.0,
                1.0,
                false,
                false,
                false,
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
        for (batch, time, inputs, outputs) in [(2, 37, 19, 45), (1, 300, 64, 96), (3, 1, 8, 5)] {
            let x = Tensor::from_vec(values(batch * time * inputs, 1), (batch, time, inputs), &device)?;
            let weight = Tensor::from_vec(values(outputs * inputs, 2), (outputs, inputs), &device)?;
            let bias = Tensor::from_vec(values(outputs, 3), outputs, &device)?;
            let residual =
                Tensor::from_vec(values(batch * time * outputs, 4), (batch, time, outputs), &device)?;
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
