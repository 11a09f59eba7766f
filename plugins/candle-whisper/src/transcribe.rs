//! Whole recordings to text, the way OpenAI's `transcribe.py` walks them: 30 s windows, where a
//! recording longer than one window is decoded with timestamps and the next window starts at
//! the last complete segment's end timestamp (so a word cut by the boundary is decoded again
//! in full in the next window, never lost). Each window is decoded at temperature 0 first and
//! again at 0.2, 0.4, ... 1.0 while its output looks like a failure (compression ratio > 2.4
//! or average log-probability < -1), unless the window is judged silent.
//!
//! Every round decodes the current window of every unfinished recording of the batch together.

use crate::{
    decode::{self, Decoded, Pass, Window},
    mel::{MelSpectrogram, HOP_LENGTH, N_FRAMES},
    network::Whisper,
    tokens::Vocabulary,
};

const TEMPERATURES: [f64; 6] = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
const COMPRESSION_RATIO_THRESHOLD: f64 = 2.4;
const LOGPROB_THRESHOLD: f64 = -1.0;
const NO_SPEECH_THRESHOLD: f64 = 0.6;
/// Mel frames per timestamp step (0.02 s).
const FRAMES_PER_TIMESTAMP: usize = 2;

/// One recording to transcribe.
pub struct Clip {
    /// 16 kHz mono.
    pub samples: Vec<f32>,
    /// sot, then language and task for multilingual checkpoints.
    pub start_tokens: Vec<u32>,
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
}

/// Decoding choices.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub max_new_tokens: usize,
    pub temperature_fallback: bool,
    pub seed: u64,
}

struct Progress {
    seek: usize,
    frames: usize,
    pieces: Vec<String>,
    transcript: Transcript,
}

/// Whether a decoded window needs another try at a higher temperature.
fn needs_fallback(decoded: &Decoded, text: &str) -> bool {
    if decoded.no_speech_prob > NO_SPEECH_THRESHOLD && decoded.avg_logprob < LOGPROB_THRESHOLD {
        return false;
    }
    decode::compression_ratio(text) > COMPRESSION_RATIO_THRESHOLD || decoded.avg_logprob < LOGPROB_THRESHOLD
}

/// Decodes `windows` with fallback; grouped by prompt length so each group is one batch.
fn decode_windows(
    network: &Whisper,
    vocabulary: &Vocabulary,
    suppress: &[u32],
    windows: &[Window],
    settings: Settings,
) -> Result<Vec<Decoded>, String> {
    let mut results: Vec<Option<Decoded>> = vec![None; windows.len()];
    let mut pending: Vec<usize> = (0..windows.len()).collect();
    let temperatures: &[f64] = if settings.temperature_fallback { &TEMPERATURES } else { &TEMPERATURES[..1] };
    for (attempt, &temperature) in temperatures.iter().enumerate() {
        let mut lengths: Vec<usize> = pending.iter().map(|i| windows[*i].prompt.len()).collect();
        lengths.sort_unstable();
        lengths.dedup();
        let mut retry = Vec::new();
        for length in lengths {
            let group: Vec<usize> =
                pending.iter().copied().filter(|i| windows[*i].prompt.len() == length).collect();
            let refs: Vec<&Window> = group.iter().map(|i| &windows[*i]).collect();
            let pass = Pass {
                temperature,
                max_new_tokens: settings.max_new_tokens,
                seed: settings.seed.wrapping_add(attempt as u64),
            };
            let decoded = decode::decode_group(network, &vocabulary.specials, suppress, &refs, pass)?;
            for (index, decoded) in group.into_iter().zip(decoded) {
                let last_try = attempt + 1 == temperatures.len();
                if !last_try && needs_fallback(&decoded, &vocabulary.decode(&decoded.tokens)?) {
                    retry.push(index);
                }
                results[index] = Some(decoded);
            }
        }
        pending = retry;
        if pending.is_empty() {
            break;
        }
    }
    Ok(results.into_iter().map(Option::unwrap_or_default).collect())
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
            frames: clip.samples.len().div_ceil(HOP_LENGTH),
            pieces: Vec::new(),
            transcript: Transcript::default(),
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
        let windows: Vec<Window> = active
            .iter()
            .map(|&i| {
                let p = &progress[i];
                let start = (p.seek * HOP_LENGTH).min(clips[i].samples.len());
                let end = (start + N_FRAMES * HOP_LENGTH).min(clips[i].samples.len());
                let timestamps = p.frames > N_FRAMES;
                let mut prompt = clips[i].start_tokens.clone();
                if !timestamps {
                    prompt.push(specials.no_timestamps);
                }
                Window { mel: mel.window(&clips[i].samples[start..end]), prompt, timestamps }
            })
            .collect();
        let decoded = decode_windows(network, vocabulary, suppress, &windows, settings)?;
        for ((&i, window), result) in active.iter().zip(&windows).zip(decoded) {
            let p = &mut progress[i];
            let segment_frames = p.frames.saturating_sub(p.seek).clamp(1, N_FRAMES);
            p.transcript.windows += 1;
            let silent =
                result.no_speech_prob > NO_SPEECH_THRESHOLD && result.avg_logprob < LOGPROB_THRESHOLD;
            if silent {
                p.seek += segment_frames;
                continue;
            }
            let (frames, kept) = if window.timestamps {
                advance(&result.tokens, specials.timestamp_begin, segment_frames)
            } else {
                (segment_frames, result.tokens.len())
            };
            let text_tokens: Vec<u32> =
                result.tokens[..kept].iter().copied().filter(|t| *t < specials.eot).collect();
            p.transcript.tokens += text_tokens.len();
            p.transcript.truncated |= !result.ended;
            let text = vocabulary.decode(&text_tokens)?;
            if !text.trim().is_empty() {
                p.pieces.push(text.trim().to_owned());
            }
            p.seek += frames;
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
}
