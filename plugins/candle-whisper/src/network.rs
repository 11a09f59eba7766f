//! The Whisper network (OpenAI's `model.py`), with what batched decoding needs and
//! candle-transformers' whisper lacks: a self-attention KV cache (candle's recomputes the whole
//! prefix every step) and dropping finished rows from every cache between steps.
//!
//! Weights use the Hugging Face names (`model.encoder.layers.0.self_attn.q_proj.weight`, ...);
//! CTranslate2 checkpoints are renamed to them in [`crate::weights`].

use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{LayerNorm, Linear, VarBuilder};
use rayon::prelude::*;
use serde::Deserialize;

use crate::kernels::{
    affine::affine,
    attention::{causal_keys, BlockedAttention},
    cross_attention::{attend_audio, AudioRows, CrossWeights},
    gelu::GeluErf,
};

/// The dimensions of a checkpoint (Hugging Face `config.json` names).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct WhisperDims {
    pub num_mel_bins: usize,
    pub d_model: usize,
    pub encoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_layers: usize,
    pub decoder_attention_heads: usize,
    pub vocab_size: usize,
    pub max_source_positions: usize,
    pub max_target_positions: usize,
}

fn layer_norm(size: usize, vb: VarBuilder) -> Result<LayerNorm> {
    Ok(LayerNorm::new(vb.get(size, "weight")?, vb.get(size, "bias")?, 1e-5))
}

fn linear(inputs: usize, outputs: usize, bias: bool, vb: VarBuilder) -> Result<Linear> {
    let weight = vb.get((outputs, inputs), "weight")?;
    let bias = if bias { Some(vb.get(outputs, "bias")?) } else { None };
    Ok(Linear::new(weight, bias))
}

struct Attention {
    query: Linear,
    key: Linear,
    value: Linear,
    out: Linear,
    heads: usize,
}

impl Attention {
    fn load(width: usize, heads: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Attention {
            query: linear(width, width, true, vb.pp("q_proj"))?,
            key: linear(width, width, false, vb.pp("k_proj"))?,
            value: linear(width, width, true, vb.pp("v_proj"))?,
            out: linear(width, width, true, vb.pp("out_proj"))?,
            heads,
        })
    }

    fn keys_values(&self, source: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((self.key.forward(source)?, affine(&self.value, source, None)?))
    }

    /// `residual` plus the attention of `x` over `keys`/`values` (the key and value
    /// projections, `(batch, keys, width)`); `causal` for the decoder's self-attention, where
    /// the last `time` keys are the queries' own and each sequence's first `pads` keys are
    /// padding (see [`BlockedAttention::pads`]; empty for none).
    fn attend(
        &self,
        x: &Tensor,
        keys: &Tensor,
        values: &Tensor,
        causal: bool,
        pads: &[usize],
        residual: &Tensor,
    ) -> Result<Tensor> {
        let q = affine(&self.query, x, None)?;
        let head_dim = q.dim(D::Minus1)? / self.heads;
        let mixed = if q.device().is_cpu() && q.dtype() == DType::F32 {
            let scale = (head_dim as f32).powf(-0.5);
            let op = BlockedAttention { heads: self.heads, scale, causal, pads: pads.to_vec() };
            q.apply_op3_no_bwd(&keys.contiguous()?, &values.contiguous()?, &op)?
        } else {
            self.attend_with_tensor_ops(&q, keys, values, causal, pads)?
        };
        affine(&self.out, &mixed, Some(residual))
    }

    /// `residual` plus the cross-attention of `x` over the encoder output itself (see
    /// [`crate::kernels::cross_attention`]); the CPU's f32 path.
    fn attend_audio(&self, x: &Tensor, audio: &AudioRows, residual: &Tensor) -> Result<Tensor> {
        let q = affine(&self.query, x, None)?;
        let weights = CrossWeights {
            key: self.key.weight(),
            value: self.value.weight(),
            value_bias: self.value.bias(),
            heads: self.heads,
        };
        affine(&self.out, &attend_audio(&q, audio, &weights)?, Some(residual))
    }

    /// The same attention from candle's ops (GPUs, half precision), as OpenAI writes it.
    fn attend_with_tensor_ops(
        &self,
        q: &Tensor,
        keys: &Tensor,
        values: &Tensor,
        causal: bool,
        pads: &[usize],
    ) -> Result<Tensor> {
        let split = |x: &Tensor| -> Result<Tensor> {
            let (batch, time, width) = x.dims3()?;
            x.reshape((batch, time, self.heads, width / self.heads))?.transpose(1, 2)?.contiguous()
        };
        let (time, keys_len) = (q.dim(1)?, keys.dim(1)?);
        let scale = ((q.dim(D::Minus1)? / self.heads) as f64).powf(-0.25);
        let mut scores = (split(q)? * scale)?.matmul(&(split(keys)? * scale)?.t()?)?;
        if causal && (time > 1 || pads.iter().any(|pad| *pad > 0)) {
            // The same visibility as the CPU kernel's: (batch or 1, 1, time, keys).
            let past = keys_len - time;
            let rows = pads.len().max(1);
            let mut mask = vec![0f32; rows * time * keys_len];
            for (row, mask) in mask.chunks_mut(time * keys_len).enumerate() {
                let pad = pads.get(row).copied().unwrap_or(0);
                for (i, mask) in mask.chunks_mut(keys_len).enumerate() {
                    let (from, to) = causal_keys(pad, past + i);
                    mask[..from].fill(f32::NEG_INFINITY);
                    mask[to..].fill(f32::NEG_INFINITY);
                }
            }
            let mask =
                Tensor::from_vec(mask, (rows, 1, time, keys_len), q.device())?.to_dtype(scores.dtype())?;
            scores = scores.broadcast_add(&mask)?;
        }
        let weights =
            candle_nn::ops::softmax_last_dim(&scores.to_dtype(DType::F32)?)?.to_dtype(values.dtype())?;
        weights.matmul(&split(values)?)?.transpose(1, 2)?.flatten_from(2)
    }
}

/// OpenAI's `nn.GELU`, the exact (erf) form; in place on the CPU.
fn gelu_erf(x: Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 && x.is_contiguous() {
        x.inplace_op1(&GeluErf)?;
        Ok(x)
    } else {
        x.gelu_erf()
    }
}

struct Block {
    attn: Attention,
    attn_ln: LayerNorm,
    cross: Option<(Attention, LayerNorm)>,
    fc1: Linear,
    fc2: Linear,
    mlp_ln: LayerNorm,
}

impl Block {
    fn load(width: usize, heads: usize, cross: bool, vb: VarBuilder) -> Result<Self> {
        let cross = if cross {
            Some((
                Attention::load(width, heads, vb.pp("encoder_attn"))?,
                layer_norm(width, vb.pp("encoder_attn_layer_norm"))?,
            ))
        } else {
            None
        };
        Ok(Block {
            attn: Attention::load(width, heads, vb.pp("self_attn"))?,
            attn_ln: layer_norm(width, vb.pp("self_attn_layer_norm"))?,
            cross,
            fc1: linear(width, 4 * width, true, vb.pp("fc1"))?,
            fc2: linear(4 * width, width, true, vb.pp("fc2"))?,
            mlp_ln: layer_norm(width, vb.pp("final_layer_norm"))?,
        })
    }

    fn mlp(&self, x: &Tensor) -> Result<Tensor> {
        let hidden = gelu_erf(affine(&self.fc1, &self.mlp_ln.forward(x)?, None)?)?;
        affine(&self.fc2, &hidden, Some(x))
    }
}

/// A width-3, padding-1 convolution over time on `(batch, time, channels)`, as one GEMM: each
/// output frame's three input frames, side by side, times the kernel laid out to match. Time
/// stays the major axis from the mel input to the blocks, so no transposes are copied.
struct TimeConv {
    /// `(outputs, 3 * inputs)`: tap-major, then input channel.
    taps: Linear,
    stride: usize,
}

impl TimeConv {
    fn load(inputs: usize, outputs: usize, stride: usize, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get((outputs, inputs, 3), "weight")?.transpose(1, 2)?.contiguous()?;
        let weight = weight.reshape((outputs, 3 * inputs))?;
        Ok(TimeConv { taps: Linear::new(weight, Some(vb.get(outputs, "bias")?)), stride })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (batch, time, channels) = x.dims3()?;
        let padded = x.pad_with_zeros(1, 1, 1)?;
        let columns = match self.stride {
            1 => Tensor::cat(
                &[padded.narrow(1, 0, time)?, padded.narrow(1, 1, time)?, padded.narrow(1, 2, time)?],
                2,
            )?,
            // Output frame t reads padded frames 2t, 2t+1 and 2t+2: pairs of frames as rows.
            2 if time % 2 == 0 => {
                let pairs = padded.reshape((batch, time / 2 + 1, 2 * channels))?;
                let frames = time / 2;
                Tensor::cat(
                    &[pairs.narrow(1, 0, frames)?, pairs.narrow(1, 1, frames)?.narrow(2, 0, channels)?],
                    2,
                )?
            }
            stride => candle_core::bail!("convolution with stride {stride} over {time} frames"),
        };
        affine(&self.taps, &columns, None)
    }
}

/// The audio encoder.
pub struct Encoder {
    conv1: TimeConv,
    conv2: TimeConv,
    positions: Tensor,
    blocks: Vec<Block>,
    ln_post: LayerNorm,
}

/// The per-layer caches of one batch of sequences.
pub struct DecoderState {
    /// Self-attention keys and values so far, per layer: (batch, time, width).
    self_kv: Vec<Option<(Tensor, Tensor)>>,
    /// Cross-attention keys and values of the encoder output, per layer (GPUs, half
    /// precision).
    cross_kv: Vec<(Tensor, Tensor)>,
    /// The encoder output itself, which the CPU's f32 cross-attention reads instead.
    audio: Option<AudioRows>,
    /// Per sequence, how many of the first tokens fed were padding (prompts of different
    /// lengths, left-padded to one length); empty when none were.
    pads: Vec<usize>,
    /// Tokens already in the cache (padding included).
    pub position: usize,
}

impl DecoderState {
    /// Keeps only `rows` (indices into the current batch), in that order.
    pub fn retain(&mut self, rows: &[u32]) -> Result<()> {
        let device = match (&self.audio, self.cross_kv.first()) {
            (Some(audio), _) => audio.rows.device().clone(),
            (None, Some((first, _))) => first.device().clone(),
            (None, None) => return Ok(()),
        };
        let index = Tensor::new(rows, &device)?;
        if !self.pads.is_empty() {
            self.pads = rows.iter().map(|row| self.pads[*row as usize]).collect();
        }
        if let Some(audio) = &mut self.audio {
            audio.retain(&index)?;
        }
        let pick = |t: &Tensor| t.index_select(&index, 0);
        for (k, v) in &mut self.cross_kv {
            *k = pick(k)?;
            *v = pick(v)?;
        }
        for (k, v) in self.self_kv.iter_mut().flatten() {
            *k = pick(k)?;
            *v = pick(v)?;
        }
        Ok(())
    }
}

/// The text decoder.
pub struct Decoder {
    embedding: Tensor,
    positions: Tensor,
    blocks: Vec<Block>,
    ln: LayerNorm,
}

/// A whole checkpoint.
pub struct Whisper {
    pub encoder: Encoder,
    pub decoder: Decoder,
    pub dims: WhisperDims,
    pub dtype: DType,
    pub device: Device,
}

/// OpenAI's encoder positions (also what the checkpoints store).
fn sinusoids(length: usize, channels: usize, device: &Device) -> Result<Tensor> {
    let increment = 10000f64.ln() / (channels / 2 - 1) as f64;
    let mut values = vec![0f32; length * channels];
    for t in 0..length {
        for i in 0..channels / 2 {
            let angle = t as f64 * (-(i as f64) * increment).exp();
            values[t * channels + i] = angle.sin() as f32;
            values[t * channels + channels / 2 + i] = angle.cos() as f32;
        }
    }
    Tensor::from_vec(values, (length, channels), device)
}

impl Whisper {
    pub fn load(vb: VarBuilder, dims: WhisperDims) -> Result<Self> {
        let width = dims.d_model;
        let dtype = vb.dtype();
        let device = vb.device().clone();
        let enc = vb.pp("model.encoder");
        let positions = if enc.contains_tensor("embed_positions.weight") {
            enc.get((dims.max_source_positions, width), "embed_positions.weight")?
        } else {
            sinusoids(dims.max_source_positions, width, &device)?.to_dtype(dtype)?
        };
        let encoder = Encoder {
            conv1: TimeConv::load(dims.num_mel_bins, width, 1, enc.pp("conv1"))?,
            conv2: TimeConv::load(width, width, 2, enc.pp("conv2"))?,
            positions,
            blocks: (0..dims.encoder_layers)
                .map(|i| {
                    Block::load(width, dims.encoder_attention_heads, false, enc.pp(format!("layers.{i}")))
                })
                .collect::<Result<_>>()?,
            ln_post: layer_norm(width, enc.pp("layer_norm"))?,
        };
        let dec = vb.pp("model.decoder");
        let decoder = Decoder {
            embedding: dec.get((dims.vocab_size, width), "embed_tokens.weight")?,
            positions: dec.get((dims.max_target_positions, width), "embed_positions.weight")?,
            blocks: (0..dims.decoder_layers)
                .map(|i| {
                    Block::load(width, dims.decoder_attention_heads, true, dec.pp(format!("layers.{i}")))
                })
                .collect::<Result<_>>()?,
            ln: layer_norm(width, dec.pp("layer_norm"))?,
        };
        Ok(Whisper { encoder, decoder, dims, dtype, device })
    }

    /// Encodes a batch of log-mel windows (batch, n_mels, 3000) to (batch, 1500, width).
    pub fn encode(&self, mel: &Tensor) -> Result<Tensor> {
        let batch = mel.dim(0)?;
        if !self.device.is_cpu() || batch < 2 {
            return self.encode_together(mel);
        }
        // On the CPU, each window on its own, up to one per thread at a time: a thread keeps to
        // its window's activations (9 MB for whisper-tiny's `fc1`), and with every thread busy
        // the GEMMs and attention inside a window are not split between threads (idle threads
        // still steal that work when windows run out): 1.05-1.09x per window for whisper-tiny
        // on 2 cores (`cargo bench --bench encoder`). At most `min(batch, threads)` windows'
        // activations are alive at once.
        let windows = (0..batch)
            .into_par_iter()
            .map(|i| self.encode_together(&mel.narrow(0, i, 1)?))
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&windows, 0)
    }

    fn encode_together(&self, mel: &Tensor) -> Result<Tensor> {
        let e = &self.encoder;
        let mel = mel.to_dtype(self.dtype)?.transpose(1, 2)?.contiguous()?;
        let x = gelu_erf(e.conv1.forward(&mel)?)?;
        let x = gelu_erf(e.conv2.forward(&x)?)?;
        let time = x.dim(1)?;
        let mut x = x.broadcast_add(&e.positions.narrow(0, 0, time)?)?;
        for block in &e.blocks {
            let h = block.attn_ln.forward(&x)?;
            let (k, v) = block.attn.keys_values(&h)?;
            x = block.attn.attend(&h, &k, &v, false, &[], &x)?;
            x = block.mlp(&x)?;
        }
        e.ln_post.forward(&x)
    }

    /// Caches for decoding against `audio` (the encoder's output). `pads`: per sequence, how
    /// many padding tokens lead its first [`Whisper::step`] (empty for none); they are hidden
    /// from attention and the real tokens take positions from 0.
    pub fn start(&self, audio: &Tensor, pads: Vec<usize>) -> Result<DecoderState> {
        if !pads.is_empty() && pads.len() != audio.dim(0)? {
            candle_core::bail!("{} pads for {} sequences", pads.len(), audio.dim(0)?);
        }
        let pads = if pads.iter().all(|pad| *pad == 0) { Vec::new() } else { pads };
        let self_kv = vec![None; self.decoder.blocks.len()];
        if self.device.is_cpu() && self.dtype == DType::F32 {
            let audio = Some(AudioRows::new(audio)?);
            return Ok(DecoderState { self_kv, cross_kv: Vec::new(), audio, pads, position: 0 });
        }
        let cross_kv = self
            .decoder
            .blocks
            .iter()
            .map(|block| match &block.cross {
                Some((attention, _)) => attention.keys_values(audio),
                None => candle_core::bail!("decoder block without cross-attention"),
            })
            .collect::<Result<_>>()?;
        Ok(DecoderState { self_kv, cross_kv, audio: None, pads, position: 0 })
    }

    /// Feeds `tokens` (batch, steps) after what `state` holds; f32 logits (batch, steps, vocab).
    pub fn step(&self, tokens: &Tensor, state: &mut DecoderState) -> Result<Tensor> {
        self.logits(&self.step_hidden(tokens, state)?)
    }

    /// [`Whisper::step`] up to the final layer norm: (batch, steps, width), for callers that
    /// need the logits of a few positions only (a long prompt's).
    pub fn step_hidden(&self, tokens: &Tensor, state: &mut DecoderState) -> Result<Tensor> {
        let d = &self.decoder;
        let steps = tokens.dim(1)?;
        let batch = tokens.dim(0)?;
        let start = state.position;
        let least_pad = state.pads.iter().copied().min().unwrap_or(0);
        if start + steps - least_pad > self.dims.max_target_positions {
            candle_core::bail!("the decoder holds {} positions", self.dims.max_target_positions);
        }
        let embedded = d.embedding.index_select(&tokens.flatten_all()?, 0)?.reshape((
            batch,
            steps,
            self.dims.d_model,
        ))?;
        let mut x = if state.pads.is_empty() {
            embedded.broadcast_add(&d.positions.narrow(0, start, steps)?)?
        } else {
            // Each sequence's real tokens count from position 0 (padding takes position 0 too).
            let ids: Vec<u32> = state
                .pads
                .iter()
                .flat_map(|pad| (start..start + steps).map(move |t| t.saturating_sub(*pad) as u32))
                .collect();
            let ids = Tensor::from_vec(ids, batch * steps, tokens.device())?;
            (embedded + d.positions.index_select(&ids, 0)?.reshape((batch, steps, self.dims.d_model))?)?
        };
        for (layer, block) in d.blocks.iter().enumerate() {
            let h = block.attn_ln.forward(&x)?;
            let (k, v) = block.attn.keys_values(&h)?;
            let (k, v) = match state.self_kv[layer].take() {
                Some((past_k, past_v)) => (Tensor::cat(&[&past_k, &k], 1)?, Tensor::cat(&[&past_v, &v], 1)?),
                None => (k, v),
            };
            x = block.attn.attend(&h, &k, &v, true, &state.pads, &x)?;
            state.self_kv[layer] = Some((k, v));
            if let Some((attention, ln)) = &block.cross {
                x = match (&state.audio, state.cross_kv.get(layer)) {
                    (Some(audio), _) => attention.attend_audio(&ln.forward(&x)?, audio, &x)?,
                    (None, Some((ck, cv))) => attention.attend(&ln.forward(&x)?, ck, cv, false, &[], &x)?,
                    (None, None) => candle_core::bail!("no cross-attention cache for layer {layer}"),
                };
            }
            x = block.mlp(&x)?;
        }
        state.position += steps;
        d.ln.forward(&x)
    }

    /// f32 logits of decoder outputs `x` (any leading dimensions, then width).
    pub fn logits(&self, x: &Tensor) -> Result<Tensor> {
        let d = &self.decoder;
        // The tied output projection, `x E^T`, as a map without bias (a few-rows kernel on the
        // CPU, which reads the 80 MB of embeddings once per step for all sequences).
        affine(&Linear::new(d.embedding.clone(), None), x, None)?.to_dtype(DType::F32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::{Conv1d, Conv1dConfig, VarMap};

    #[test]
    fn the_time_major_convolution_equals_candles_conv1d() -> Result<()> {
        let device = Device::Cpu;
        for (inputs, outputs, stride, time) in [(5, 7, 1, 12), (6, 4, 2, 10), (3, 3, 2, 2)] {
            let weights = VarMap::new();
            let vb = VarBuilder::from_varmap(&weights, DType::F32, &device);
            let _ =
                vb.get_with_hints((outputs, inputs, 3), "weight", candle_nn::init::DEFAULT_KAIMING_NORMAL)?;
            let _ =
                vb.get_with_hints(outputs, "bias", candle_nn::init::Init::Randn { mean: 0.0, stdev: 1.0 })?;
            let ours = TimeConv::load(inputs, outputs, stride, vb.clone())?;
            let config = Conv1dConfig { padding: 1, stride, ..Default::default() };
            let candles =
                Conv1d::new(vb.get((outputs, inputs, 3), "weight")?, Some(vb.get(outputs, "bias")?), config);
            let x = Tensor::randn(0f32, 1.0, (2, inputs, time), &device)?;
            let expected = candles.forward(&x)?.transpose(1, 2)?;
            let got = ours.forward(&x.transpose(1, 2)?.contiguous()?)?;
            assert_eq!(got.dims(), expected.dims());
            let diff = (got - expected)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
            assert!(diff < 1e-5, "{inputs}->{outputs} stride {stride}: differs by {diff}");
        }
        Ok(())
    }
}
