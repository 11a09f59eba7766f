//! One batched decoder for the llama, qwen2 and qwen3 families.
//!
//! candle-transformers' models take a single position offset and a causal-only mask, so a batch
//! of prompts of different lengths cannot share a forward pass there. This decoder takes
//! per-sequence positions and an explicit mask: prompts are left-padded to a common length, the
//! mask hides the padding, and each sequence's positions start at 0 at its first real token.
//! The families differ only in switches: q/k/v biases (qwen2), per-head q/k RMS norms (qwen3),
//! tied embeddings, and the rotary layout (llama.cpp stores llama's q/k rows interleaved).

use candle_core::quantized::QMatMul;
use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::RmsNorm;

use super::{
    activation::SiluMul, block_quant::BlockQuantMatrix, column_split, decode_attention, few_rows,
    prefill_attention::PrefillAttention,
};

/// How q/k halves are paired by the rotary embedding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeLayout {
    /// Hugging Face: dimension `i` pairs with `i + d/2`.
    Halves,
    /// llama.cpp's llama GGUF files: dimension `2i` pairs with `2i + 1`.
    Interleaved,
}

/// Llama 3's frequency-dependent rotary scaling (`rope_scaling.rope_type == "llama3"`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Llama3Scaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_positions: f64,
}

/// Shapes and switches of a decoder.
#[derive(Clone, Debug, PartialEq)]
pub struct DecoderConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub max_positions: usize,
    pub rope_layout: RopeLayout,
    pub llama3_scaling: Option<Llama3Scaling>,
    /// Per-frequency divisors stored in some llama GGUF files (`rope_freqs.weight`).
    pub rope_freq_divisors: Option<Vec<f32>>,
    pub qkv_bias: bool,
    pub qk_norm: bool,
}

/// Row counts up to which a dense product is computed as `W @ x^T` (see [`Matrix::forward`]).
const DECODE_ROWS: usize = 16;

/// A weight matrix `[out, in]` as the decoder multiplies by it.
pub enum Matrix {
    /// `[out, in]`, as checkpoints store it.
    Dense(Tensor),
    /// GGUF Q4_1, Q5_0 or Q5_1 blocks on the CPU, multiplied by the plugin's SIMD kernels
    /// (candle's are scalar for these types).
    BlockQuant(BlockQuantMatrix),
    /// Other GGUF blocks, or any on a GPU, multiplied by candle's quantized kernels.
    Quantized(QMatMul),
}

impl Matrix {
    /// A dense `[out, in]` weight.
    pub fn dense(weight: Tensor) -> Result<Self> {
        Ok(Matrix::Dense(weight))
    }

    /// `xs @ W^T` for `xs` of shape `[rows, in]`.
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Matrix::Dense(weight) if few_rows::applies(xs.dim(0)?, weight.dtype(), xs.device().is_cpu()) => {
                xs.contiguous()?.apply_op2_no_bwd(&weight.contiguous()?, &few_rows::FewRowsMatmul)
            }
            // Prefill-sized products on the CPU in f32: one GEMM per thread over its own columns.
            Matrix::Dense(weight)
                if column_split::applies(xs.dim(0)?, weight.dtype(), xs.device().is_cpu()) =>
            {
                xs.contiguous()?.apply_op2_no_bwd(&weight.contiguous()?, &column_split::ColumnSplitMatmul)
            }
            // Few rows (decode) off the CPU or in half precision: `W @ x^T` keeps the GEMM's long side on the weight, where
            // `x @ W^T` would pad each 1-row tile to the kernel's 16 rows. Many rows
            // (prefill): `x @ W^T` packs better.
            Matrix::Dense(weight) if xs.dim(0)? <= DECODE_ROWS => weight.matmul(&xs.t()?)?.t(),
            Matrix::Dense(weight) => xs.matmul(&weight.t()?),
            Matrix::BlockQuant(matrix) => matrix.forward(xs),
            Matrix::Quantized(quantized) => quantized.forward(xs),
        }
    }
}

/// A projection with an optional bias.
pub struct Linear {
    pub weight: Matrix,
    pub bias: Option<Tensor>,
}

impl Linear {
    /// `xs` of any rank, projected along its last dimension.
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        // One GEMM over all batch rows: a 3-D input would make candle broadcast the weight and
        // run one product per sequence, reading the weights once per sequence.
        let dims = xs.dims().to_vec();
        let Some((&features, leading)) = dims.split_last() else {
            candle_core::bail!("a projection needs at least a 1-D input, got a scalar")
        };
        let rows: usize = leading.iter().product();
        let ys = self.weight.forward(&xs.reshape((rows, features))?)?;
        let ys = match &self.bias {
            Some(bias) => ys.broadcast_add(bias)?,
            None => ys,
        };
        let mut out = leading.to_vec();
        out.push(ys.dim(1)?);
        ys.reshape(out)
    }
}

pub struct Attention {
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    pub q_norm: Option<RmsNorm>,
    pub k_norm: Option<RmsNorm>,
}

pub struct Mlp {
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
}

pub struct Block {
    pub input_norm: RmsNorm,
    pub attention: Attention,
    pub post_attention_norm: RmsNorm,
    pub mlp: Mlp,
}

/// The weights, in the layout every source is converted to.
pub struct DecoderWeights {
    /// `[vocab, hidden]`, dense.
    pub embeddings: Tensor,
    pub blocks: Vec<Block>,
    pub final_norm: RmsNorm,
    pub lm_head: Matrix,
}

/// Keys and values of the sequences being decoded, per layer: `[batch, kv_heads, seen, head_dim]`,
/// in buffers that grow by [`KV_CACHE_BLOCK`] columns so a decode step writes one column instead
/// of copying the whole cache.
#[derive(Default)]
pub struct KvCache {
    layers: Vec<candle_nn::kv_cache::KvCache>,
    /// Set by [`KvCache::not_kept`]: attention uses the step's own keys and values and stores
    /// nothing.
    discard: bool,
}

/// Columns a KV buffer grows by.
const KV_CACHE_BLOCK: usize = 256;

impl KvCache {
    /// A cache for a single forward that no later step continues (a prefill whose last
    /// logits are all that is wanted, such as MCQ options scored by their letters): the step's
    /// keys and values go straight to attention, skipping the zeroed buffers and the copy into
    /// them, about 94 MB a layer stack for 8 prompts of 200 tokens.
    pub fn not_kept() -> Self {
        KvCache { layers: Vec::new(), discard: true }
    }

    /// Columns already cached.
    pub fn seen(&self) -> usize {
        self.layers.first().map_or(0, |layer| layer.current_seq_len())
    }

    /// A new cache whose sequence `i` is a copy of this cache's sequence `rows[i]` (rows may
    /// repeat): several continuations then go on from one shared prefix without recomputing it.
    pub fn select_rows(&self, rows: &[usize]) -> Result<KvCache> {
        let mut layers = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let (Some(keys), Some(values)) =
                (layer.k_cache().all_data().as_ref(), layer.v_cache().all_data().as_ref())
            else {
                // Nothing cached yet: an empty cache of the same depth.
                layers.push(candle_nn::kv_cache::KvCache::new(2, KV_CACHE_BLOCK));
                continue;
            };
            let index: Vec<u32> = rows.iter().map(|&row| row as u32).collect();
            let index = Tensor::from_vec(index, rows.len(), keys.device())?;
            let seen = layer.current_seq_len();
            // The buffers are contiguous (index_select needs it); only their filled columns are
            // copied into the new cache.
            let pick = |buffer: &Tensor| buffer.index_select(&index, 0)?.narrow(2, 0, seen)?.contiguous();
            let mut copy = candle_nn::kv_cache::KvCache::new(2, KV_CACHE_BLOCK);
            copy.append(&pick(keys)?, &pick(values)?)?;
            layers.push(copy);
        }
        Ok(KvCache { layers, discard: false })
    }
}

/// A batch step: token columns plus where each sequence's real tokens begin.
pub struct Step<'a> {
    /// `[batch][columns]` token ids for the new columns.
    pub tokens: &'a [Vec<u32>],
    /// Per sequence, the number of left-padding columns at the start of the whole sequence.
    pub padding: &'a [usize],
}

/// Left-pads `rows` with `pad` to a common length; returns the rows and each one's padding
/// count, as [`Step`] takes them.
pub fn left_pad(rows: &[Vec<u32>], pad: u32) -> (Vec<Vec<u32>>, Vec<usize>) {
    let longest = rows.iter().map(Vec::len).max().unwrap_or(0);
    let padding: Vec<usize> = rows.iter().map(|row| longest - row.len()).collect();
    let padded = rows
        .iter()
        .zip(&padding)
        .map(|(row, &count)| std::iter::repeat_n(pad, count).chain(row.iter().copied()).collect())
        .collect();
    (padded, padding)
}

pub struct Decoder {
    pub config: DecoderConfig,
    weights: DecoderWeights,
    /// `[max_positions, head_dim / 2]`.
    cos: Tensor,
    sin: Tensor,
    device: Device,
}

impl Decoder {
    pub fn new(config: DecoderConfig, weights: DecoderWeights, device: &Device) -> Result<Self> {
        // Everything meets the weights' dtype (f32, or bf16/f16 safetensors); logits come out f32.
        let dtype = weights.embeddings.dtype();
        let (cos, sin) = rotary_tables(&config, device)?;
        Ok(Decoder {
            config,
            weights,
            cos: cos.to_dtype(dtype)?,
            sin: sin.to_dtype(dtype)?,
            device: device.clone(),
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Runs new columns through the stack, extending `cache`; returns hidden states
    /// `[batch, columns, hidden]` after the final norm.
    pub fn forward(&self, step: &Step<'_>, cache: &mut KvCache) -> Result<Tensor> {
        let batch = step.tokens.len();
        let columns = step.tokens.first().map_or(0, Vec::len);
        let past = cache.seen();
        let flat: Vec<u32> = step.tokens.iter().flatten().copied().collect();
        let ids = Tensor::from_vec(flat, (batch, columns), &self.device)?;
        let mut hidden = self.weights.embeddings.index_select(&ids.flatten_all()?, 0)?.reshape((
            batch,
            columns,
            self.config.hidden_size,
        ))?;
        let positions: Vec<u32> = step
            .padding
            .iter()
            .flat_map(|&padding| {
                (past..past + columns).map(move |column| column.saturating_sub(padding) as u32)
            })
            .collect();
        if let Some(&too_far) =
            positions.iter().find(|&&position| position as usize >= self.config.max_positions)
        {
            candle_core::bail!(
                "position {too_far} is beyond the model's {} positions: shorten the prompt or max_tokens",
                self.config.max_positions
            );
        }
        let positions = Tensor::from_vec(positions, batch * columns, &self.device)?;
        let half = self.config.head_dim / 2;
        let cos = self.cos.index_select(&positions, 0)?.reshape((batch, columns, half))?;
        let sin = self.sin.index_select(&positions, 0)?.reshape((batch, columns, half))?;
        let mask =
            if self.own_cpu_kernels() { None } else { Some(self.mask(step.padding, past, columns)?) };
        if cache.discard && past > 0 {
            candle_core::bail!("a cache that keeps nothing cannot be continued")
        }
        if cache.layers.is_empty() && !cache.discard {
            cache.layers = (0..self.weights.blocks.len())
                .map(|_| candle_nn::kv_cache::KvCache::new(2, KV_CACHE_BLOCK))
                .collect();
        }
        let mut layer_caches = cache.layers.iter_mut();
        for block in &self.weights.blocks {
            let layer_cache = layer_caches.next();
            let residual = hidden.clone();
            let normed = block.input_norm.forward(&hidden)?;
            let attended = self.attention(
                &block.attention,
                &normed,
                &cos,
                &sin,
                (mask.as_ref(), step.padding),
                layer_cache,
            )?;
            hidden = (residual + attended)?;
            let residual = hidden.clone();
            let normed = block.post_attention_norm.forward(&hidden)?;
            let mlp = &block.mlp;
            let activated = self.silu_mul(mlp.gate.forward(&normed)?, &mlp.up.forward(&normed)?)?;
            hidden = (residual + mlp.down.forward(&activated)?)?;
        }
        self.weights.final_norm.forward(&hidden)
    }

    /// Logits `[batch, vocab]` of the last column.
    pub fn last_logits(&self, hidden: &Tensor) -> Result<Tensor> {
        let columns = hidden.dim(1)?;
        let last = hidden.narrow(1, columns - 1, 1)?.squeeze(1)?.contiguous()?;
        self.weights.lm_head.forward(&last)?.to_dtype(DType::F32)
    }

    /// Logits `[batch, columns, vocab]` of every column.
    pub fn all_logits(&self, hidden: &Tensor) -> Result<Tensor> {
        let (batch, columns, features) = hidden.dims3()?;
        let flat = hidden.contiguous()?.reshape((batch * columns, features))?;
        self.weights.lm_head.forward(&flat)?.reshape((batch, columns, ()))?.to_dtype(DType::F32)
    }

    /// Whether attention and the MLP's activation run on the plugin's CPU kernels
    /// ([`decode_attention`], [`PrefillAttention`], [`SiluMul`]) rather
    /// than candle's general ops (GPUs, half precision).
    fn own_cpu_kernels(&self) -> bool {
        self.device.is_cpu() && self.weights.embeddings.dtype() == DType::F32
    }

    /// `silu(gate) * up`: one vectorised pass into `gate`'s buffer on the CPU in f32 (candle's
    /// SiLU is a scalar `expf` loop and the product another allocation and pass).
    fn silu_mul(&self, gate: Tensor, up: &Tensor) -> Result<Tensor> {
        if !self.own_cpu_kernels() {
            return candle_nn::ops::silu(&gate)? * up;
        }
        let gate = gate.contiguous()?;
        gate.inplace_op2(&up.contiguous()?, &SiluMul)?;
        Ok(gate)
    }

    /// Additive mask `[batch, 1, columns, past + columns]`: a query sees keys at or before it
    /// that are not padding. A padding query sees itself only, so its softmax stays finite.
    fn mask(&self, padding: &[usize], past: usize, columns: usize) -> Result<Tensor> {
        let total = past + columns;
        let mut values = Vec::with_capacity(padding.len() * columns * total);
        for &pad in padding {
            for query in past..total {
                for key in 0..total {
                    let visible = (key <= query && key >= pad) || key == query;
                    values.push(if visible { 0f32 } else { f32::NEG_INFINITY });
                }
            }
        }
        Tensor::from_vec(values, (padding.len(), 1, columns, total), &self.device)?
            .to_dtype(self.weights.embeddings.dtype())
    }

    fn attention(
        &self,
        attention: &Attention,
        xs: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        (mask, padding): (Option<&Tensor>, &[usize]),
        layer_cache: Option<&mut candle_nn::kv_cache::KvCache>,
    ) -> Result<Tensor> {
        let config = &self.config;
        let (batch, columns, _) = xs.dims3()?;
        let (heads, kv_heads, head_dim) = (config.num_heads, config.num_kv_heads, config.head_dim);
        let mut q = attention.q.forward(xs)?.reshape((batch, columns, heads, head_dim))?;
        let mut k = attention.k.forward(xs)?.reshape((batch, columns, kv_heads, head_dim))?;
        let v = attention.v.forward(xs)?.reshape((batch, columns, kv_heads, head_dim))?;
        if let Some(norm) = &attention.q_norm {
            q = norm.forward(&q.contiguous()?)?;
        }
        if let Some(norm) = &attention.k_norm {
            k = norm.forward(&k.contiguous()?)?;
        }
        let q = q.transpose(1, 2)?.contiguous()?;
        let k = k.transpose(1, 2)?.contiguous()?;
        let v = v.transpose(1, 2)?.contiguous()?;
        let (q, k) = match config.rope_layout {
            RopeLayout::Halves => {
                (candle_nn::rotary_emb::rope(&q, cos, sin)?, candle_nn::rotary_emb::rope(&k, cos, sin)?)
            }
            RopeLayout::Interleaved => {
                (candle_nn::rotary_emb::rope_i(&q, cos, sin)?, candle_nn::rotary_emb::rope_i(&k, cos, sin)?)
            }
        };
        let (past, k, v) = match layer_cache {
            Some(layer_cache) => {
                let past = layer_cache.current_seq_len();
                let (k, v) = layer_cache.append(&k, &v)?;
                (past, k, v)
            }
            None => (0, k, v),
        };
        // Grouped-query attention without copying keys and values per query head: the query
        // heads sharing a key/value head are stacked as extra rows of one product.
        let groups = heads / kv_heads;
        let q = q.reshape((batch, kv_heads, groups * columns, head_dim))?;
        let scale = 1.0 / (head_dim as f64).sqrt();
        let weighted_values = match mask {
            None if columns <= decode_attention::MAX_COLUMNS => q.apply_op3_no_bwd(
                &k,
                &v,
                &decode_attention::DecodeAttention { padding, past, columns, scale: scale as f32 },
            )?,
            None => {
                q.apply_op3_no_bwd(&k, &v, &PrefillAttention { padding, past, columns, scale: scale as f32 })?
            }
            Some(mask) => {
                let seen = k.dim(2)?;
                let scores = (q.matmul(&k.t()?)? * scale)?
                    .reshape((batch, kv_heads, groups, columns, seen))?
                    .broadcast_add(&mask.unsqueeze(1)?)?;
                let weights = candle_nn::ops::softmax_last_dim(&scores)?.reshape((
                    batch,
                    kv_heads,
                    groups * columns,
                    seen,
                ))?;
                weights.matmul(&v)?
            }
        };
        let attended = weighted_values
            .reshape((batch, heads, columns, head_dim))?
            .transpose(1, 2)?
            .reshape((batch, columns, heads * head_dim))?;
        attention.o.forward(&attended)
    }
}

/// Cosine and sine tables `[max_positions, head_dim / 2]`.
fn rotary_tables(config: &DecoderConfig, device: &Device) -> Result<(Tensor, Tensor)> {
    let half = config.head_dim / 2;
    let mut frequencies: Vec<f64> = (0..half)
        .map(|index| 1.0 / config.rope_theta.powf(2.0 * index as f64 / config.head_dim as f64))
        .collect();
    if let Some(scaling) = config.llama3_scaling {
        let low_wavelength = scaling.original_max_positions / scaling.low_freq_factor;
        let high_wavelength = scaling.original_max_positions / scaling.high_freq_factor;
        for frequency in &mut frequencies {
            let wavelength = 2.0 * std::f64::consts::PI / *frequency;
            *frequency = if wavelength < high_wavelength {
                *frequency
            } else if wavelength > low_wavelength {
                *frequency / scaling.factor
            } else {
                let smooth = (scaling.original_max_positions / wavelength - scaling.low_freq_factor)
                    / (scaling.high_freq_factor - scaling.low_freq_factor);
                (1.0 - smooth) * *frequency / scaling.factor + smooth * *frequency
            };
        }
    }
    if let Some(divisors) = &config.rope_freq_divisors {
        for (frequency, divisor) in frequencies.iter_mut().zip(divisors) {
            *frequency /= f64::from(*divisor);
        }
    }
    let frequencies: Vec<f32> = frequencies.into_iter().map(|frequency| frequency as f32).collect();
    let frequencies = Tensor::from_vec(frequencies, (1, half), device)?;
    let positions = Tensor::arange(0u32, config.max_positions as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((config.max_positions, 1))?;
    let angles = positions.broadcast_mul(&frequencies)?;
    Ok((angles.cos()?.contiguous()?, angles.sin()?.contiguous()?))
}

/// Log-probabilities along the last dimension.
pub fn log_softmax(logits: &Tensor) -> Result<Tensor> {
    candle_nn::ops::log_softmax(logits, D::Minus1)
}
