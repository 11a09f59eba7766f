//! Whole recordings to text, the way OpenAI's `transcribe.py` walks them: 30 s windows, where a
//! recording longer than one window is decoded with timestamps and the next window starts at
//! the last complete segment's end timestamp (so a word cut by the boundary is decoded again
//! in full in the next window, never lost). Each window is decoded at temperature 0 first and
//! again at 0.2, 0.4, ... 1.0 while its output looks like a failure (compression ratio > 2.4
//! or average log-probability < -1), unless the window is judged silent. A window's prompt
//! holds the text decoded so far (`condition_on_previous_text`), after the initial prompt;
//! a window decoded above temperature 0.5 clears it, as OpenAI's does. A multilingual
//! recording without a language gets the one detected on its first window.
//!
//! Every round encodes the current window of every unfinished recording of the batch together
//! and decodes them together, at each fallback temperature from the same encoder output.

use candle_core::Tensor;

use crate::{
    decode::{self, Decoded, Pass, Request},
    mel::{MelSpectrogram, RecordingMel, HOP_LENGTH, N_FRAMES, N_SAMPLES},
    network::Whisper,
    tokens::{Specials, Vocabulary},
};

const TEMPERATURES: [f64; 6] = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
const COMPRESSION_RATIO_THRESHOLD: f64 = 2.4;
const LOGPROB_THRESHOLD: f64 = -1.0;
const NO_SPEECH_THRESHOLD: f64 = 0.6;
/// Above this temperature a window's text is not carried into the next window's prompt.
const PROMPT_RESET_TEMPERATURE: f64 = 0.5;
/// Mel frames per timestamp step (0.02 s).
const FRAMES_PER_TIMESTAMP: usize = 2;

/// How a recording's decoder prompt starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// `[sot]` alone.
    EnglishOnly,
    /// `[sot, <|xx|>, task]`; no language means the one detected on the first window.
    Multilingual { language: Option<u32>, task: u32 },
}

/// One recording to transcribe.
pub struct Clip {
    /// 16 kHz mono.
    pub samples: Vec<f32>,
    pub start: Start,
    /// OpenAI's `initial_prompt`, as tokens: text the first window continues from (empty for
    /// none).
    pub prompt: Vec<u32>,
}

/// The transcript of one recording.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Transcript {
    pub text: String,
    /// Text tokens kept, over all windows.
    pub tokens: usize,
    /// Windows decoded.
    pub windows: usize,
    /// Whether some window ran out of `max_new_tokens` before ending.
    pub truncated: bool,
    /// The `<|xx|>` decoded with (given or detected); `None` for English-only checkpoints.
    pub language: Option<u32>,
}

/// Decoding choices.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub max_new_tokens: usize,
    pub temperature_fallback: bool,
    pub seed: u64,
    /// Prompt each window with the text of the windows before it (OpenAI's default).
    pub condition_on_previous_text: bool,
}

struct Progress {
    seek: usize,
    frames: usize,
    recording: Option<RecordingMel>,
    pieces: Vec<String>,
    transcript: Transcript,
    /// The initial prompt, then every kept segment's tokens (timestamps included).
    context: Vec<u32>,
    /// Where in `context` the next prompt starts.
    context_from: usize,
}

/// Whether a decoded window needs another try at a higher temperature.
fn needs_fallback(decoded: &Decoded, text: &str) -> bool {
    if decoded.no_speech_prob > NO_SPEECH_THRESHOLD && decoded.avg_logprob < LOGPROB_THRESHOLD {
        return false;
    }
    decode::compression_ratio(text) > COMPRESSION_RATIO_THRESHOLD || decoded.avg_logprob < LOGPROB_THRESHOLD
}

/// Rows `rows` of the encoder output `audio`, in that order.
fn select_rows(audio: &Tensor, rows: &[usize]) -> Result<Tensor, String> {
    let index: Vec<u32> = rows.iter().map(|row| *row as u32).collect();
    Tensor::new(index.as_slice(), audio.device())
        .and_then(|index| audio.index_select(&index, 0))
        .map_err(|error| error.to_string())
}

/// Decodes `requests` (row `i` against row `i` of `audio`) with fallback: every attempt decodes
/// all windows still failing together. Returns each result with the temperature that gave it.
fn decode_with_fallback(
    network: &Whisper,
    vocabulary: &Vocabulary,
    suppress: &[u32],
    audio: &Tensor,
    requests: &[Request],
    settings: Settings,
) -> Result<Vec<(Decoded, f64)>, String> {
    let mut results: Vec<(Decoded, f64)> = vec![(Decoded::default(), 0.0); requests.len()];
    let mut pending: Vec<usize> = (0..requests.len()).collect();
    let temperatures: &[f64] = if settings.temperature_fallback { &TEMPERATURES } else { &TEMPERATURES[..1] };
    for (attempt, &temperature) in temperatures.iter().enumerate() {
        let rows =
            if pending.len() == requests.len() { audio.clone() } else { select_rows(audio, &pending)? };
        let batch: Vec<&Request> = pending.iter().map(|i| &requests[*i]).collect();
        let pass = Pass {
            temperature,
            max_new_tokens: settings.max_new_tokens,
            seed: settings.seed.wrapping_add(attempt as u64),
        };
        let decoded = decode::decode_batch(network, &vocabulary.specials, suppress, &rows, &batch, pass)?;
        let mut retry = Vec::new();
        for (index, decoded) in pending.into_iter().zip(decoded) {
            let last_try = attempt + 1 == temperatures.len();
            if !last_try && needs_fallback(&decoded, &vocabulary.decode(&decoded.tokens)?) {
                retry.push(index);
            }
            results[index] = (decoded, temperature);
        }
        pending = retry;
        if pending.is_empty() {
            break;
        }
    }
    Ok(results)
}

/// Where the next window starts and which tokens of this one are kept (OpenAI's segment
/// logic): after the last pair of consecutive timestamps, or the whole window when it ends on a
/// lone timestamp or has no complete segment.
fn advance(tokens: &[u32], timestamp_begin: u32, segment_frames: usize) -> (usize, usize) {
    let is_ts = |id: &u32| *id >= timestamp_begin;
    let single_ending =
        tokens.len() >= 2 && !is_ts(&tokens[tokens.len() - 2]) && is_ts(&tokens[tokens.len() - 1]);
    let last_pair = (1..tokens.len()).rev().find(|i| is_ts(&tokens[*i]) && is_ts(&tokens[*i - 1]));
    match last_pair {
        Some(pair) if !single_ending => {
            let frames = (tokens[pair - 1] - timestamp_begin) as usize * FRAMES_PER_TIMESTAMP;
            // A window whose last segment ends at 0 would never move on.
            let frames = if frames == 0 { segment_frames } else { frames.min(segment_frames) };
            (frames, pair)
        }
        _ => (segment_frames, tokens.len()),
    }
}

/// The tokens of `kept` (a window's kept output) worth carrying into the next prompt: every
/// segment (split between consecutive timestamps) except those whose text (`text_of`) is
/// blank or that have no length, as OpenAI clears them.
fn context_tokens(
    kept: &[u32],
    timestamp_begin: u32,
    text_of: impl Fn(&[u32]) -> Result<String, String>,
) -> Result<Vec<u32>, String> {
    let is_ts = |id: u32| id >= timestamp_begin;
    let mut cuts: Vec<usize> = (1..kept.len()).filter(|i| is_ts(kept[*i]) && is_ts(kept[*i - 1])).collect();
    cuts.push(kept.len());
    let mut tokens = Vec::with_capacity(kept.len());
    let mut from = 0;
    for cut in cuts {
        let segment = &kept[from..cut];
        from = cut;
        let instant = segment.len() >= 2 && is_ts(segment[0]) && segment[0] == segment[segment.len() - 1];
        if !instant && !text_of(segment)?.trim().is_empty() {
            tokens.extend_from_slice(segment);
        }
    }
    Ok(tokens)
}

/// OpenAI's initial tokens: `<|startofprev|>` and the last `n_ctx / 2 - 1` tokens of the
/// context when there is one, then the start sequence; returns them with sot's index.
fn initial_tokens(
    context: &[u32],
    start: &[u32],
    startofprev: Option<u32>,
    max_positions: usize,
) -> Result<(Vec<u32>, usize), String> {
    let mut tokens = Vec::with_capacity(context.len().min(max_positions / 2) + start.len() + 1);
    if !context.is_empty() {
        let startofprev =
            startofprev.ok_or("the vocabulary has no <|startofprev|> token, so it cannot take a prompt")?;
        tokens.push(startofprev);
        let keep = (max_positions / 2).saturating_sub(1);
        tokens.extend_from_slice(&context[context.len().saturating_sub(keep)..]);
    }
    let sot_index = tokens.len();
    tokens.extend_from_slice(start);
    Ok((tokens, sot_index))
}

impl Progress {
    /// The decoder input of this recording's next window.
    fn request(&self, start: Start, specials: &Specials, max_positions: usize) -> Result<Request, String> {
        let timestamps = self.frames > N_FRAMES;
        let mut tokens = match (start, self.transcript.language) {
            (Start::Multilingual { task, .. }, Some(language)) => vec![specials.sot, language, task],
            _ => vec![specials.sot],
        };
        if !timestamps {
            tokens.push(specials.no_timestamps);
        }
        let context = &self.context[self.context_from.min(self.context.len())..];
        let (prompt, sot_index) = initial_tokens(context, &tokens, specials.startofprev, max_positions)?;
        Ok(Request { prompt, sot_index, timestamps })
    }

    /// Takes in a decoded window: its text, where the next window starts, and what the next
    /// prompt carries (`text_of` decodes tokens).
    fn record(
        &mut self,
        result: &Decoded,
        temperature: f64,
        timestamps: bool,
        specials: &Specials,
        settings: Settings,
        text_of: impl Fn(&[u32]) -> Result<String, String>,
    ) -> Result<(), String> {
        let segment_frames = self.frames.saturating_sub(self.seek).clamp(1, N_FRAMES);
        self.transcript.windows += 1;
        let silent = result.no_speech_prob > NO_SPEECH_THRESHOLD && result.avg_logprob < LOGPROB_THRESHOLD;
        if silent {
            self.seek += segment_frames;
            return Ok(());
        }
        let (frames, kept) = if timestamps {
            advance(&result.tokens, specials.timestamp_begin, segment_frames)
        } else {
            (segment_frames, result.tokens.len())
        };
        let kept = &result.tokens[..kept];
        let text_tokens: Vec<u32> = kept.iter().copied().filter(|t| *t < specials.eot).collect();
        self.transcript.tokens += text_tokens.len();
        self.transcript.truncated |= !result.ended;
        let text = text_of(&text_tokens)?;
        if !text.trim().is_empty() {
            self.pieces.push(text.trim().to_owned());
        }
        self.context.extend(context_tokens(kept, specials.timestamp_begin, &text_of)?);
        // Without `<|startofprev|>` (a stripped vocabulary) there is no way to prompt.
        let no_prompt = specials.startofprev.is_none();
        if !settings.condition_on_previous_text || temperature > PROMPT_RESET_TEMPERATURE || no_prompt {
            self.context_from = self.context.len();
        }
        self.seek += frames;
        Ok(())
    }
}

/// Transcribes `clips` together.
pub fn transcribe(
    network: &Whisper,
    vocabulary: &Vocabulary,
    mel: &MelSpectrogram,
    suppress: &[u32],
    clips: &[Clip],
    settings: Settings,
) -> Result<Vec<Transcript>, String> {
    let specials = &vocabulary.specials;
    let mut progress: Vec<Progress> = clips
        .iter()
        .map(|clip| Progress {
            seek: 0,
            frames: clip.samples.len() / HOP_LENGTH,
            // Longer than a window: OpenAI's windows of one whole-recording spectrogram.
            // Otherwise the clip padded with silence to 30 s, as transformers' and OpenAI's
            // `decode` take it (the parity bench's clips).
            recording: (clip.samples.len() / HOP_LENGTH > N_FRAMES).then(|| mel.recording(&clip.samples)),
            pieces: Vec::new(),
            transcript: Transcript {
                language: match clip.start {
                    Start::Multilingual { language, .. } => language,
                    Start::EnglishOnly => None,
                },
                ..Transcript::default()
            },
            context: clip.prompt.clone(),
            context_from: 0,
        })
        .collect();
    // Windows always advance, but bound the rounds anyway against a pathological model.
    let max_rounds = progress.iter().map(|p| p.frames / 2 + 2).max().unwrap_or(0);
    for _ in 0..max_rounds {
        let active: Vec<usize> =
            (0..clips.len()).filter(|i| progress[*i].seek < progress[*i].frames.max(1)).collect();
        if active.is_empty() {
            break;
        }
        let mels: Vec<Vec<f32>> = active
            .iter()
            .map(|&i| {
                let p = &progress[i];
                match &p.recording {
                    Some(recording) => recording.window(p.seek, p.frames - p.seek),
                    None => mel.window(&clips[i].samples[..clips[i].samples.len().min(N_SAMPLES)]),
                }
            })
            .collect();
        let audio = decode::encode(network, &mels)?;
        drop(mels);
        let undetected: Vec<usize> = (0..active.len())
            .filter(|row| {
                matches!(clips[active[*row]].start, Start::Multilingual { .. })
                    && progress[active[*row]].transcript.language.is_none()
            })
            .collect();
        if !undetected.is_empty() {
            let rows = select_rows(&audio, &undetected)?;
            for (row, language) in undetected.iter().zip(decode::detect_languages(network, specials, &rows)?)
            {
                progress[active[*row]].transcript.language = Some(language);
            }
        }
        let max_positions = network.dims.max_target_positions;
        let requests: Vec<Request> = active
            .iter()
            .map(|&i| progress[i].request(clips[i].start, specials, max_positions))
            .collect::<Result<_, String>>()?;
        let decoded = decode_with_fallback(network, vocabulary, suppress, &audio, &requests, settings)?;
        drop(audio);
        for ((&i, request), (result, temperature)) in active.iter().zip(&requests).zip(decoded) {
            let text_of = |ids: &[u32]| vocabulary.decode(ids);
            progress[i].record(&result, temperature, request.timestamps, specials, settings, text_of)?;
        }
    }
    Ok(progress.into_iter().map(|p| Transcript { text: p.pieces.join(" "), ..p.transcript }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_window_starts_at_the_last_complete_segment() {
        let ts = 1000;
        // <0.00> a b <2.00> <2.00> c d  : cut after the pair, continue from 2.00 s.
        let tokens = [ts, 1, 2, ts + 100, ts + 100, 3, 4];
        assert_eq!(advance(&tokens, ts, 3000), (200, 4));
        // Ends on a lone timestamp: the whole window was transcribed.
        let tokens = [ts, 1, 2, ts + 100];
        assert_eq!(advance(&tokens, ts, 3000), (3000, 4));
        // No timestamps at all.
        assert_eq!(advance(&[1, 2], ts, 2500), (2500, 2));
        // A segment ending at 0 still moves on.
        assert_eq!(advance(&[ts, ts, 5], ts, 3000), (3000, 1));
    }

    #[test]
    fn the_prompt_carries_kept_segments_with_text_and_length() {
        let (ts, eot) = (1000, 900);
        // Token 9 stands for a space: a segment of it alone is blank.
        let text_of = |ids: &[u32]| -> Result<String, String> {
            Ok(ids
                .iter()
                .filter(|id| **id < eot)
                .map(|id| if *id == 9 { " ".to_owned() } else { id.to_string() })
                .collect())
        };
        let context_tokens =
            |kept: &[u32], ts: u32, _eot: u32| super::context_tokens(kept, ts, text_of).unwrap();
        // <0.00> a b <1.00> | <1.00> c <1.00> | <1.40> d <2.00>: the middle one is instantaneous.
        let kept = [ts, 1, 2, ts + 50, ts + 50, 3, ts + 50, ts + 70, 4, ts + 100];
        assert_eq!(context_tokens(&kept, ts, eot), vec![ts, 1, 2, ts + 50, ts + 70, 4, ts + 100]);
        // A segment of timestamps alone has no text.
        assert_eq!(context_tokens(&[ts, ts + 10, ts + 10, 5, ts + 20], ts, eot), vec![ts + 10, 5, ts + 20]);
        // No timestamps: the whole window.
        assert_eq!(context_tokens(&[4, 5, 6], ts, eot), vec![4, 5, 6]);
        // A segment of whitespace only is blank too.
        assert_eq!(context_tokens(&[ts, 9, 9, ts + 5, ts + 5, 4, ts + 9], ts, eot), vec![ts + 5, 4, ts + 9]);
    }

    #[test]
    fn the_initial_tokens_keep_the_last_half_context_after_startofprev() {
        let start = [50258, 50259, 50359];
        assert_eq!(initial_tokens(&[], &start, Some(7), 448).unwrap(), (start.to_vec(), 0));
        let context: Vec<u32> = (0..300).collect();
        let (tokens, sot) = initial_tokens(&context, &start, Some(7), 448).unwrap();
        assert_eq!(sot, 224);
        assert_eq!(tokens[0], 7);
        assert_eq!(&tokens[1..sot], &context[77..]);
        assert_eq!(&tokens[sot..], &start);
        let error = initial_tokens(&[1], &start, None, 448).unwrap_err();
        assert!(error.contains("<|startofprev|>"), "{error}");
    }

    #[test]
    fn each_window_is_prompted_with_the_text_kept_before_it_until_a_hot_window() {
        let ts = 1000;
        let specials = Specials {
            eot: 900,
            sot: 901,
            transcribe: 902,
            translate: None,
            no_timestamps: 999,
            timestamp_begin: ts,
            no_speech: None,
            startofprev: Some(903),
            never: Vec::new(),
            blank: None,
            languages: Default::default(),
        };
        let text_of = |ids: &[u32]| -> Result<String, String> {
            Ok(ids.iter().filter(|id| **id < 900).map(|id| format!("w{id} ")).collect())
        };
        let mut progress = Progress {
            seek: 0,
            frames: 7000,
            recording: None,
            pieces: Vec::new(),
            transcript: Transcript::default(),
            context: vec![5, 6],
            context_from: 0,
        };
        let settings = Settings {
            max_new_tokens: 224,
            temperature_fallback: true,
            seed: 0,
            condition_on_previous_text: true,
        };
        // The first window continues from the initial prompt.
        let first = progress.request(Start::EnglishOnly, &specials, 448).unwrap();
        assert_eq!((first.prompt, first.sot_index, first.timestamps), (vec![903, 5, 6, 901], 3, true));
        // <0.00> a b <2.00> <2.00> c: kept up to the pair, next window at 2.00 s.
        let window = |tokens: Vec<u32>| Decoded { tokens, ended: true, ..Decoded::default() };
        progress
            .record(&window(vec![ts, 1, 2, ts + 100, ts + 100, 3]), 0.0, true, &specials, settings, text_of)
            .unwrap();
        assert_eq!(progress.seek, 200);
        let second = progress.request(Start::EnglishOnly, &specials, 448).unwrap();
        assert_eq!(second.prompt, vec![903, 5, 6, ts, 1, 2, ts + 100, 901]);
        // A window decoded at 0.6 keeps its text but clears the prompt after it.
        progress.record(&window(vec![ts, 4, ts + 50]), 0.6, true, &specials, settings, text_of).unwrap();
        assert_eq!(progress.request(Start::EnglishOnly, &specials, 448).unwrap().prompt, vec![901]);
        progress.record(&window(vec![ts, 7, ts + 50]), 0.0, true, &specials, settings, text_of).unwrap();
        assert_eq!(
            progress.request(Start::EnglishOnly, &specials, 448).unwrap().prompt,
            vec![903, ts, 7, ts + 50, 901]
        );
        assert_eq!(progress.pieces, ["w1 w2", "w4", "w7"]);
        // Without conditioning only the initial prompt reaches the first window.
        let unconditioned = Settings { condition_on_previous_text: false, ..settings };
        progress.record(&window(vec![ts, 8, ts + 50]), 0.0, true, &specials, unconditioned, text_of).unwrap();
        assert_eq!(progress.request(Start::EnglishOnly, &specials, 448).unwrap().prompt, vec![901]);
    }
}
