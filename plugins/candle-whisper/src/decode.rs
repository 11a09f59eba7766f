//! Batched decoding of 30 s windows: the encoder runs once on all of a round's windows, then
//! every step feeds all unfinished sequences together through the KV-cached decoder, dropping
//! rows as they finish. Prompts of different lengths (previous text) are left-padded to one
//! batch. Logit rules follow OpenAI's `decoding.py`: suppressed tokens, `SuppressBlank`, and
//! `ApplyTimestampRules` when timestamps are on; language detection is its `detect_language`.

use candle_core::{Device, Tensor};

use crate::{mel::N_FRAMES, network::Whisper, tokens::Specials};

/// What to decode against one window's audio.
#[derive(Clone, Debug)]
pub struct Request {
    /// Initial tokens: `[<|startofprev|>, previous text...]`, then sot, language, task
    /// (and `<|notimestamps|>` when timestamps are off).
    pub prompt: Vec<u32>,
    /// Where sot is in `prompt` (its logits give the no-speech probability).
    pub sot_index: usize,
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

/// The encoder output of `mels` (each n_mels x 3000, row-major): (windows, 1500, width).
pub fn encode(network: &Whisper, mels: &[Vec<f32>]) -> Result<Tensor, String> {
    let n_mels = network.dims.num_mel_bins;
    if mels.iter().any(|mel| mel.len() != n_mels * N_FRAMES) {
        return Err(format!("a window's log-mel is not {n_mels} x {N_FRAMES}"));
    }
    let flat: Vec<f32> = mels.iter().flat_map(|mel| mel.iter().copied()).collect();
    let mel =
        Tensor::from_vec(flat, (mels.len(), n_mels, N_FRAMES), &network.device).map_err(tensor_error)?;
    network.encode(&mel).map_err(tensor_error)
}

/// The most likely `<|xx|>` token for each row of `audio` (OpenAI's `detect_language`: the
/// logits after sot alone, restricted to the checkpoint's language tokens).
pub fn detect_languages(network: &Whisper, specials: &Specials, audio: &Tensor) -> Result<Vec<u32>, String> {
    let mut candidates: Vec<u32> = specials.languages.values().copied().collect();
    candidates.sort_unstable();
    if candidates.is_empty() {
        return Err("an English-only checkpoint has no languages to detect".to_owned());
    }
    let batch = audio.dim(0).map_err(tensor_error)?;
    let mut state = network.start(audio, Vec::new()).map_err(tensor_error)?;
    let sot =
        Tensor::from_vec(vec![specials.sot; batch], (batch, 1), &network.device).map_err(tensor_error)?;
    let logits = network.step(&sot, &mut state).and_then(|l| l.squeeze(1)?.to_vec2::<f32>());
    Ok(logits
        .map_err(tensor_error)?
        .iter()
        .map(|row| {
            // The first of equal maxima, as torch's argmax picks.
            let score = |id: u32| row.get(id as usize).copied().unwrap_or(f32::NEG_INFINITY);
            candidates
                .iter()
                .copied()
                .fold(candidates[0], |best, id| if score(id) > score(best) { id } else { best })
        })
        .collect())
}

/// Decodes `requests` together, row `i` against row `i` of `audio` (the encoder's output).
pub fn decode_batch(
    network: &Whisper,
    specials: &Specials,
    suppress: &[u32],
    audio: &Tensor,
    requests: &[&Request],
    pass: Pass,
) -> Result<Vec<Decoded>, String> {
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    let device: &Device = &network.device;
    let batch = requests.len();
    if audio.dim(0).map_err(tensor_error)? != batch
        || requests.iter().any(|r| r.prompt.is_empty() || r.sot_index >= r.prompt.len())
    {
        return Err("decode_batch: requests and audio rows disagree".to_owned());
    }
    let prompt_len = requests.iter().map(|r| r.prompt.len()).max().unwrap_or(0);
    let pads: Vec<usize> = requests.iter().map(|r| prompt_len - r.prompt.len()).collect();
    let mut state = network.start(audio, pads.clone()).map_err(tensor_error)?;
    let prompt: Vec<u32> = requests
        .iter()
        .zip(&pads)
        .flat_map(|(r, pad)| std::iter::repeat_n(specials.eot, *pad).chain(r.prompt.iter().copied()))
        .collect();
    let prompt = Tensor::from_vec(prompt, (batch, prompt_len), device).map_err(tensor_error)?;
    let hidden = network.step_hidden(&prompt, &mut state).map_err(tensor_error)?;
    // Logits at two positions a row only (sot and the prompt's last): a long previous-text
    // prompt would otherwise project hundreds of positions onto the 51,865-token vocabulary.
    let picks: Vec<u32> = requests
        .iter()
        .zip(&pads)
        .enumerate()
        .flat_map(|(row, (r, pad))| {
            let base = (row * prompt_len) as u32;
            [base + (pad + r.sot_index) as u32, base + prompt_len as u32 - 1]
        })
        .collect();
    let picked = Tensor::new(picks.as_slice(), device)
        .and_then(|picks| hidden.flatten_to(1)?.index_select(&picks, 0))
        .and_then(|rows| network.logits(&rows)?.to_vec2::<f32>())
        .map_err(tensor_error)?;
    let mut results = vec![Decoded::default(); batch];
    let mut rows: Vec<Vec<f32>> = Vec::with_capacity(batch);
    for (result, pair) in results.iter_mut().zip(picked.chunks(2)) {
        if let Some(no_speech) = specials.no_speech {
            result.no_speech_prob = log_softmax(&pair[0]).get(no_speech as usize).map_or(0.0, |l| l.exp());
        }
        rows.push(pair[1].clone());
    }
    // OpenAI stops once the sequence is longer than the context: the last token sampled is
    // never fed, so it needs no position of its own.
    let max_positions = network.dims.max_target_positions + 1;
    let limits: Vec<usize> = requests
        .iter()
        .map(|r| pass.max_new_tokens.min(max_positions.saturating_sub(r.prompt.len())))
        .collect();
    let mut live: Vec<usize> = (0..batch).collect();
    let mut rngs: Vec<Rng> = (0..batch).map(|i| Rng(pass.seed ^ ((i as u64 + 1) << 32))).collect();
    while !live.is_empty() {
        let mut next_tokens = Vec::with_capacity(live.len());
        let mut keep = Vec::with_capacity(live.len());
        for (row_index, (&item, row)) in live.iter().zip(rows.iter_mut()).enumerate() {
            let result = &mut results[item];
            filter_logits(row, &result.tokens, requests[item].timestamps, specials, suppress);
            let token = choose(row, pass.temperature, &mut rngs[item]);
            let logprob = log_softmax(row).get(token as usize).copied().unwrap_or(f64::NEG_INFINITY);
            result.sum_logprob += logprob;
            if token == specials.eot {
                result.ended = true;
                continue;
            }
            result.tokens.push(token);
            if result.tokens.len() >= limits[item] {
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
