//! Batched decoding of 30 s windows: the encoder runs once on the whole group, then every
//! step feeds all unfinished sequences together through the KV-cached decoder, dropping rows as
//! they finish. Logit rules follow OpenAI's `decoding.py`: suppressed tokens, `SuppressBlank`,
//! and `ApplyTimestampRules` when timestamps are on.

use candle_core::{Device, Tensor};

use crate::{mel::N_FRAMES, network::Whisper, tokens::Specials};

/// One window to decode.
#[derive(Clone, Debug)]
pub struct Window {
    /// n_mels x 3000 log-mel, row-major.
    pub mel: Vec<f32>,
    /// Start tokens (sot, language, task[, notimestamps]); every window of a group has the
    /// same length.
    pub prompt: Vec<u32>,
    pub timestamps: bool,
}

/// What decoding one window produced.
#[derive(Clone, Debug, Default)]
pub struct Decoded {
    /// Sampled tokens, without the final `<|endoftext|>`.
    pub tokens: Vec<u32>,
    pub sum_logprob: f64,
    /// OpenAI's `avg_logprob`: the sum over `tokens.len() + 1`.
    pub avg_logprob: f64,
    pub no_speech_prob: f64,
    /// Whether the model ended the window itself (else it ran out of tokens).
    pub ended: bool,
}

/// Sampling choices for one pass.
#[derive(Clone, Copy, Debug)]
pub struct Pass {
    pub temperature: f64,
    pub max_new_tokens: usize,
    pub seed: u64,
}

/// SplitMix64: reproducible sampling without a dependency.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|l| (*l as f64 - max).exp()).sum();
    let log_sum = sum.ln() + max;
    logits.iter().map(|l| *l as f64 - log_sum).collect()
}

/// Applies OpenAI's logit filters for the next token after `sampled`.
pub fn filter_logits(
    logits: &mut [f32],
    sampled: &[u32],
    timestamps: bool,
    specials: &Specials,
    suppress: &[u32],
) {
    let ninf = f32::NEG_INFINITY;
    let vocab = logits.len();
    let ts = (specials.timestamp_begin as usize).min(vocab);
    let eot = specials.eot as usize;
    for id in suppress.iter().chain(&specials.never).chain(specials.no_speech.iter()) {
        if let Some(slot) = logits.get_mut(*id as usize) {
            *slot = ninf;
        }
    }
    // Everything between eot and the timestamps is a control token (sot, languages, tasks).
    for slot in logits.iter_mut().take(ts).skip(eot + 1) {
        *slot = ninf;
    }
    if sampled.is_empty() {
        if let Some(blank) = specials.blank {
            if let Some(slot) = logits.get_mut(blank as usize) {
                *slot = ninf;
            }
        }
        logits[eot.min(vocab - 1)] = ninf;
    }
    if !timestamps {
        logits[ts..].iter_mut().for_each(|slot| *slot = ninf);
        return;
    }
    let is_ts = |id: u32| id >= specials.timestamp_begin;
    let last = sampled.last().is_some_and(|id| is_ts(*id));
    let penultimate = sampled.len() < 2 || is_ts(sampled[sampled.len() - 2]);
    if last {
        if penultimate {
            logits[ts..].iter_mut().for_each(|slot| *slot = ninf);
        } else {
            logits[..eot].iter_mut().for_each(|slot| *slot = ninf);
        }
    }
    if let Some(latest) = sampled.iter().rev().find(|id| is_ts(**id)) {
        // Timestamps never go back; a segment's end may repeat as the next one's start.
        let floor = if last && !penultimate { *latest } else { latest + 1 } as usize;
        logits[ts..floor.min(vocab)].iter_mut().for_each(|slot| *slot = ninf);
    }
    if sampled.is_empty() {
        logits[..ts].iter_mut().for_each(|slot| *slot = ninf);
        // max_initial_timestamp = 1.0 s.
        let last_allowed = ts + 50;
        if last_allowed + 1 < vocab {
            logits[last_allowed + 1..].iter_mut().for_each(|slot| *slot = ninf);
        }
    }
    let logprobs = log_softmax(logits);
    let ts_mass = logprobs[ts..].iter().map(|l| l.exp()).sum::<f64>().ln();
    let text_max = logprobs[..ts].iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if ts_mass > text_max {
        logits[..ts].iter_mut().for_each(|slot| *slot = ninf);
    }
}

fn choose(logits: &[f32], temperature: f64, rng: &mut Rng) -> u32 {
    let argmax = || {
        logits
            .iter()
            .enumerate()
            .fold((0usize, f32::NEG_INFINITY), |best, (i, l)| if *l > best.1 { (i, *l) } else { best })
            .0
    };
    if temperature <= 0.0 {
        return argmax() as u32;
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let weights: Vec<f64> = logits.iter().map(|l| ((*l as f64 - max) / temperature).exp()).collect();
    let total: f64 = weights.iter().sum();
    let mut target = rng.next_f64() * total;
    for (i, w) in weights.iter().enumerate() {
        target -= w;
        if target <= 0.0 && *w > 0.0 {
            return i as u32;
        }
    }
    argmax() as u32
}

fn tensor_error(error: candle_core::Error) -> String {
    error.to_string()
}

/// Decodes `windows` (same prompt length) together.
pub fn decode_group(
    network: &Whisper,
    specials: &Specials,
    suppress: &[u32],
    windows: &[&Window],
    pass: Pass,
) -> Result<Vec<Decoded>, String> {
    if windows.is_empty() {
        return Ok(Vec::new());
    }
    let device: &Device = &network.device;
    let n_mels = network.dims.num_mel_bins;
    let batch = windows.len();
    let prompt_len = windows[0].prompt.len();
    if windows.iter().any(|w| w.prompt.len() != prompt_len || w.mel.len() != n_mels * N_FRAMES) {
        return Err("windows of one group differ in prompt length or mel size".to_owned());
    }
    let mel: Vec<f32> = windows.iter().flat_map(|w| w.mel.iter().copied()).collect();
    let mel = Tensor::from_vec(mel, (batch, n_mels, N_FRAMES), device).map_err(tensor_error)?;
    let audio = network.encode(&mel).map_err(tensor_error)?;
    let mut state = network.start(&audio).map_err(tensor_error)?;
    drop(audio);
    let prompt: Vec<u32> = windows.iter().flat_map(|w| w.prompt.iter().copied()).collect();
    let prompt = Tensor::from_vec(prompt, (batch, prompt_len), device).map_err(tensor_error)?;
    let logits = network.step(&prompt, &mut state).map_err(tensor_error)?;
    let mut results = vec![Decoded::default(); batch];
    if let Some(no_speech) = specials.no_speech {
        let first = logits.narrow(1, 0, 1).and_then(|t| t.squeeze(1)).and_then(|t| t.to_vec2::<f32>());
        for (result, row) in results.iter_mut().zip(first.map_err(tensor_error)?) {
            result.no_speech_prob = log_softmax(&row).get(no_speech as usize).map_or(0.0, |l| l.exp());
        }
    }
    let mut rows: Vec<Vec<f32>> = logits
        .narrow(1, prompt_len - 1, 1)
        .and_then(|t| t.squeeze(1))
        .and_then(|t| t.to_vec2())
        .map_err(tensor_error)?;
    let limit = pass.max_new_tokens.min(network.dims.max_target_positions.saturating_sub(prompt_len));
    let mut live: Vec<usize> = (0..batch).collect();
    let mut rngs: Vec<Rng> = (0..batch).map(|i| Rng(pass.seed ^ ((i as u64 + 1) << 32))).collect();
    while !live.is_empty() {
        let mut next_tokens = Vec::with_capacity(live.len());
        let mut keep = Vec::with_capacity(live.len());
        for (row_index, (&item, row)) in live.iter().zip(rows.iter_mut()).enumerate() {
            let result = &mut results[item];
            filter_logits(row, &result.tokens, windows[item].timestamps, specials, suppress);
            let token = choose(row, pass.temperature, &mut rngs[item]);
            let logprob = log_softmax(row).get(token as usize).copied().unwrap_or(f64::NEG_INFINITY);
            if token == specials.eot {
                result.sum_logprob += logprob;
                result.ended = true;
                continue;
            }
            result.sum_logprob += logprob;
            result.tokens.push(token);
            if result.tokens.len() >= limit {
                continue;
            }
            keep.push(row_index as u32);
            next_tokens.push(token);
        }
        let finished = keep.len() < live.len();
        live = keep.iter().map(|r| live[*r as usize]).collect();
        if live.is_empty() {
            break;
        }
        if finished {
            state.retain(&keep).map_err(tensor_error)?;
        }
        let input = Tensor::from_vec(next_tokens, (live.len(), 1), device).map_err(tensor_error)?;
        let logits = network.step(&input, &mut state).map_err(tensor_error)?;
        rows = logits.squeeze(1).and_then(|t| t.to_vec2()).map_err(tensor_error)?;
    }
    for result in &mut results {
        result.avg_logprob = result.sum_logprob / (result.tokens.len() + 1) as f64;
    }
    Ok(results)
}

/// OpenAI's `compression_ratio`: UTF-8 bytes over zlib-compressed bytes (repetitive, looping
/// output compresses well).
pub fn compression_ratio(text: &str) -> f64 {
    use std::io::Write;
    if text.is_empty() {
        return 0.0;
    }
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let compressed = encoder.write_all(text.as_bytes()).and_then(|_| encoder.finish());
    match compressed {
        Ok(bytes) if !bytes.is_empty() => text.len() as f64 / bytes.len() as f64,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetitive_text_compresses_well() {
        assert!(compression_ratio(&"the patient ".repeat(40)) > 2.4);
        assert!(compression_ratio("The patient reports mild chest pain since Tuesday.") < 2.4);
    }
}
