//! The exact (erf) GELU in place, vectorised and spread over the thread pool; candle's
//! `gelu_erf` is a scalar `erff` per value on one thread, and allocates a second tensor.

use candle_core::{CpuStorage, InplaceOp1, Layout, Result};
use rayon::prelude::*;

use karma_cpu_kernels::vector_math;

/// Values per parallel task.
const CHUNK: usize = 16 * 1024;

pub struct GeluErf;

impl InplaceOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "gelu-erf-in-place"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let CpuStorage::F32(values) = storage else { candle_core::bail!("gelu: values must be f32") };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("gelu: values must be contiguous")
        };
        values[start..end].par_chunks_mut(CHUNK).for_each(vector_math::gelu_in_place);
        Ok(())
    }
}
