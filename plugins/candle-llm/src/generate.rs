//! The sampling loop shared by every architecture (log-likelihood scoring is in [`crate::score`]).
//!
//! Batched families (llama, qwen2, qwen3) run the whole batch through one forward per step:
//! prompts left-padded, a KV cache reused across steps, each sequence stopping on its own (EOS,
//! stop string, token budget) while the others go on. gemma3 and phi3 run the same loop with a
//! batch of one per prompt.

use candle_core::{Device, IndexOp, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};

use crate::{
    arch::{
        decoder::{left_pad, Decoder, KvCache, Step},
        single::SingleSequenceModel,
    },
    tokenizer::TextTokenizer,
};

/// The network a loaded model runs.
pub enum Network {
    Batched(Decoder),
    Single { model: SingleSequenceModel, device: Device, max_positions: usize },
}

impl Network {
    pub fn max_positions(&self) -> usize {
        match self {
            Network::Batched(decoder) => decoder.config.max_positions,
            Network::Single { max_positions, .. } => *max_positions,
        }
    }
}

/// How to pick tokens and when to stop.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingSettings {
    pub max_tokens: usize,
    /// 0 means greedy.
    pub temperature: f64,
    pub top_p: Option<f64>,
    pub top_k: Option<usize>,
    /// 1.0 means none.
    pub repetition_penalty: f32,
    /// How many recent tokens the repetition penalty looks at.
    pub repeat_last_n: usize,
    pub seed: u64,
    pub stop: Vec<String>,
}

impl SamplingSettings {
    /// Greedy decoding of up to `max_tokens` tokens, no penalty, no stop strings.
    pub fn greedy(max_tokens: usize) -> Self {
        SamplingSettings {
            max_tokens,
            temperature: 0.0,
            top_p: None,
            top_k: None,
            repetition_penalty: 1.0,
            repeat_last_n: 64,
            seed: 0,
            stop: Vec::new(),
        }
    }
}

/// What one prompt produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generated {
    /// Generated token ids, without the EOS token.
    pub tokens: Vec<u32>,
    /// Their text, cut before the first stop string.
    pub text: String,
}

/// Per-sequence sampling state.
struct Sequence {
    processor: LogitsProcessor,
    /// Prompt and generated tokens, for the repetition penalty.
    history: Vec<u32>,
    generated: Vec<u32>,
    text: String,
    finished: bool,
}

impl Sequence {
    fn new(prompt: &[u32], settings: &SamplingSettings) -> Self {
        let sampling = if settings.temperature <= 0.0 {
            Sampling::ArgMax
        } else {
            let temperature = settings.temperature;
            match (settings.top_k, settings.top_p) {
                (None, None) => Sampling::All { temperature },
                (Some(k), None) => Sampling::TopK { k, temperature },
                (None, Some(p)) => Sampling::TopP { p, temperature },
                (Some(k), Some(p)) => Sampling::TopKThenTopP { k, p, temperature },
            }
        };
        // Seeded per prompt, not per batch slot: an item samples the same text whatever batch it
        // lands in.
        let seed = prompt.iter().fold(settings.seed ^ 0xcbf2_9ce4_8422_2325, |hash, &token| {
            (hash ^ u64::from(token)).wrapping_mul(0x0100_0000_01b3)
        });
        Sequence {
            processor: LogitsProcessor::from_sampling(seed, sampling),
            history: prompt.to_vec(),
            generated: Vec::new(),
            text: String::new(),
            finished: false,
        }
    }

    /// Samples the next token from `logits` (`[vocab]`) and updates the stop state.
    fn accept(
        &mut self,
        logits: &Tensor,
        settings: &SamplingSettings,
        tokenizer: &TextTokenizer,
    ) -> Result<u32, String> {
        let logits = if settings.repetition_penalty == 1.0 {
            logits.clone()
        } else {
            let start = self.history.len().saturating_sub(settings.repeat_last_n);
            candle_transformers::utils::apply_repeat_penalty(
                logits,
                settings.repetition_penalty,
                &self.history[start..],
            )
            .map_err(|error| error.to_string())?
        };
        let token = self.processor.sample(&logits).map_err(|error| error.to_string())?;
        self.history.push(token);
        if tokenizer.eos_ids.contains(&token) {
            self.finished = true;
            return Ok(token);
        }
        self.generated.push(token);
        if !settings.stop.is_empty() {
            self.text = tokenizer.decode(&self.generated)?;
            if let Some(cut) = settings.stop.iter().filter_map(|stop| self.text.find(stop.as_str())).min() {
                self.text.truncate(cut);
                self.finished = true;
            }
        }
        if self.generated.len() >= settings.max_tokens {
            self.finished = true;
        }
        Ok(token)
    }

    fn finish(mut self, settings: &SamplingSettings, tokenizer: &TextTokenizer) -> Result<Generated, String> {
        if settings.stop.is_empty() {
            self.text = tokenizer.decode(&self.generated)?;
        }
        Ok(Generated { tokens: self.generated, text: self.text })
    }
}

/// Generates a continuation for each prompt.
pub fn generate(
    network: &mut Network,
    tokenizer: &TextTokenizer,
    prompts: &[Vec<u32>],
    settings: &SamplingSettings,
) -> Result<Vec<Generated>, String> {
    if settings.max_tokens == 0 {
        return Ok(prompts.iter().map(|_| Generated { tokens: Vec::new(), text: String::new() }).collect());
    }
    let max_positions = network.max_positions();
    match network {
        Network::Batched(decoder) => generate_batch(decoder, tokenizer, prompts, settings, max_positions),
        Network::Single { model, device, .. } => prompts
            .iter()
            .map(|prompt| {
                let mut sequence = Sequence::new(prompt, settings);
                let mut logits = model.forward(prompt, 0, device).map_err(|error| error.to_string())?;
                let mut position = prompt.len();
                loop {
                    let token = sequence.accept(&logits, settings, tokenizer)?;
                    if sequence.finished || position + 1 >= max_positions {
                        break;
                    }
                    logits = model.forward(&[token], position, device).map_err(|error| error.to_string())?;
                    position += 1;
                }
                sequence.finish(settings, tokenizer)
            })
            .collect(),
    }
}

fn generate_batch(
    decoder: &Decoder,
    tokenizer: &TextTokenizer,
    prompts: &[Vec<u32>],
    settings: &SamplingSettings,
    max_positions: usize,
) -> Result<Vec<Generated>, String> {
    let error = |error: candle_core::Error| error.to_string();
    if prompts.is_empty() {
        return Ok(Vec::new());
    }
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let pad = tokenizer.pad_id();
    let (padded, padding) = left_pad(prompts, pad);
    let mut sequences: Vec<Sequence> = prompts.iter().map(|prompt| Sequence::new(prompt, settings)).collect();
    let mut cache = KvCache::default();
    let hidden = decoder.forward(&Step { tokens: &padded, padding: &padding }, &mut cache).map_err(error)?;
    let mut logits = decoder.last_logits(&hidden).map_err(error)?;
    let mut columns = longest;
    loop {
        let mut next = Vec::with_capacity(sequences.len());
        for (row, sequence) in sequences.iter_mut().enumerate() {
            if sequence.finished {
                next.push(vec![pad]);
                continue;
            }
            let row_logits = logits.i(row).map_err(error)?;
            next.push(vec![sequence.accept(&row_logits, settings, tokenizer)?]);
        }
        if sequences.iter().all(|sequence| sequence.finished) || columns + 1 >= max_positions {
            break;
        }
        let hidden =
            decoder.forward(&Step { tokens: &next, padding: &padding }, &mut cache).map_err(error)?;
        logits = decoder.last_logits(&hidden).map_err(error)?;
        columns += 1;
    }
    sequences.into_iter().map(|sequence| sequence.finish(settings, tokenizer)).collect()
}
