//! Whisper's log-mel spectrogram, computed here rather than read from a shipped table.
//!
//! The filterbank is librosa's `filters.mel(sr=16000, n_fft=400, n_mels, htk=False,
//! norm="slaney")`, which is what OpenAI's `mel_filters.npz` holds (80 bins for most
//! checkpoints, 128 for large-v3). The spectrogram follows OpenAI's `log_mel_spectrogram`:
//! a centred STFT with reflect padding and a periodic Hann window, the last frame dropped,
//! power spectrum through the filterbank, `log10` clamped at 1e-10, floored at the maximum
//! minus 8, then `(x + 4) / 4`.

use std::sync::Arc;

use rayon::prelude::*;
use realfft::{RealFftPlanner, RealToComplex};

pub const SAMPLE_RATE: usize = 16_000;
pub const N_FFT: usize = 400;
pub const HOP_LENGTH: usize = 160;
/// Samples in one 30 s window.
pub const N_SAMPLES: usize = 30 * SAMPLE_RATE;
/// Mel frames in one 30 s window.
pub const N_FRAMES: usize = N_SAMPLES / HOP_LENGTH;
const N_BINS: usize = N_FFT / 2 + 1;

/// Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above.
fn hz_to_mel(hz: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    if hz >= MIN_LOG_HZ {
        min_log_mel + (hz / MIN_LOG_HZ).ln() / logstep
    } else {
        hz / F_SP
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel {
        MIN_LOG_HZ * (logstep * (mel - min_log_mel)).exp()
    } else {
        F_SP * mel
    }
}

/// The `n_mels` x 201 Slaney-normalised triangular filterbank, row-major.
pub fn mel_filters(n_mels: usize) -> Vec<f32> {
    let fft_freqs: Vec<f64> = (0..N_BINS).map(|bin| bin as f64 * SAMPLE_RATE as f64 / N_FFT as f64).collect();
    let top = hz_to_mel(SAMPLE_RATE as f64 / 2.0);
    let mel_points: Vec<f64> =
        (0..n_mels + 2).map(|i| mel_to_hz(top * i as f64 / (n_mels + 1) as f64)).collect();
    let mut filters = vec![0f32; n_mels * N_BINS];
    for mel in 0..n_mels {
        let (low, centre, high) = (mel_points[mel], mel_points[mel + 1], mel_points[mel + 2]);
        let norm = 2.0 / (high - low);
        for (bin, freq) in fft_freqs.iter().enumerate() {
            let rising = (freq - low) / (centre - low);
            let falling = (high - freq) / (high - centre);
            filters[mel * N_BINS + bin] = (rising.min(falling).max(0.0) * norm) as f32;
        }
    }
    filters
}

/// Frames per parallel task.
const FRAMES_PER_TASK: usize = 128;

/// Computes log-mel spectrograms for one mel-bin count.
pub struct MelSpectrogram {
    n_mels: usize,
    filters: Vec<f32>,
    /// Per mel bin, the FFT bins where its triangle is not zero: the rest add exact zeros, so
    /// skipping them changes no sum (and saves ~95% of the filterbank products).
    supports: Vec<std::ops::Range<usize>>,
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
}

impl MelSpectrogram {
    pub fn new(n_mels: usize) -> Self {
        let window = (0..N_FFT)
            .map(|n| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos()) as f32)
            .collect();
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT);
        let filters = mel_filters(n_mels);
        let supports = filters
            .chunks_exact(N_BINS)
            .map(|row| {
                let first = row.iter().position(|w| *w != 0.0).unwrap_or(0);
                let last = row.iter().rposition(|w| *w != 0.0).map_or(first, |last| last + 1);
                first..last
            })
            .collect();
        MelSpectrogram { n_mels, filters, supports, window, fft }
    }

    pub fn n_mels(&self) -> usize {
        self.n_mels
    }

    /// The `n_mels` x 3000 log-mel input of one 30 s window: `samples` (16 kHz mono, at most
    /// 30 s) zero-padded to 30 s first, as OpenAI pads every segment.
    pub fn window(&self, samples: &[f32]) -> Vec<f32> {
        let mut padded = vec![0f32; N_SAMPLES];
        let used = samples.len().min(N_SAMPLES);
        padded[..used].copy_from_slice(&samples[..used]);
        self.log_mel(&padded, N_FRAMES)
    }

    /// A whole recording's log-mel, which OpenAI's `transcribe` cuts its 30 s windows from
    /// (for recordings longer than one window): one floor (the maximum minus 8) for the whole
    /// recording, and frames that straddle a window boundary computed from the samples on both
    /// sides. One column per 160 samples (OpenAI's `content_frames`); every column sees zeros
    /// after the recording's end, as OpenAI's 30 s of padding gives.
    pub fn recording(&self, samples: &[f32]) -> RecordingMel {
        let frames = samples.len() / HOP_LENGTH;
        let mut padded = Vec::with_capacity(samples.len() + N_FFT);
        padded.extend_from_slice(samples);
        padded.resize(samples.len() + N_FFT, 0.0);
        RecordingMel { n_mels: self.n_mels, frames, values: self.log_mel(&padded, frames) }
    }

    /// Log-mel of `samples` with `frames` columns (n_mels x frames, row-major).
    pub fn log_mel(&self, samples: &[f32], frames: usize) -> Vec<f32> {
        let half = N_FFT / 2;
        // torch.stft(center=True) reflects the signal around both ends.
        let reflect = |index: isize| -> f32 {
            let len = samples.len() as isize;
            if len == 0 {
                return 0.0;
            }
            let mut i = index;
            if i < 0 {
                i = -i;
            }
            if i >= len {
                i = 2 * (len - 1) - i;
            }
            samples.get(i.clamp(0, len - 1) as usize).copied().unwrap_or(0.0)
        };
        // Frame-major per task, transposed to mel-major below.
        let columns: Vec<Vec<f32>> = (0..frames.div_ceil(FRAMES_PER_TASK))
            .into_par_iter()
            .map(|task| {
                let mut input = self.fft.make_input_vec();
                let mut spectrum = self.fft.make_output_vec();
                let mut power = vec![0f32; N_BINS];
                let first = task * FRAMES_PER_TASK;
                let last = (first + FRAMES_PER_TASK).min(frames);
                let mut energies = Vec::with_capacity((last - first) * self.n_mels);
                for frame in first..last {
                    let start = (frame * HOP_LENGTH) as isize - half as isize;
                    for (n, slot) in input.iter_mut().enumerate() {
                        *slot = reflect(start + n as isize) * self.window[n];
                    }
                    if self.fft.process(&mut input, &mut spectrum).is_err() {
                        energies.extend(std::iter::repeat_n(1e-10f32.log10(), self.n_mels));
                        continue;
                    }
                    for (p, c) in power.iter_mut().zip(&spectrum) {
                        *p = c.norm_sqr();
                    }
                    for (mel, support) in self.supports.iter().enumerate() {
                        let row = &self.filters[mel * N_BINS..][support.clone()];
                        let energy: f32 = row.iter().zip(&power[support.clone()]).map(|(w, p)| w * p).sum();
                        energies.push(energy.max(1e-10).log10());
                    }
                }
                energies
            })
            .collect();
        let mut output = vec![0f32; self.n_mels * frames];
        for (task, energies) in columns.iter().enumerate() {
            for (offset, frame) in energies.chunks_exact(self.n_mels).enumerate() {
                for (mel, energy) in frame.iter().enumerate() {
                    output[mel * frames + task * FRAMES_PER_TASK + offset] = *energy;
                }
            }
        }
        let max = output.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for value in &mut output {
            *value = (value.max(max - 8.0) + 4.0) / 4.0;
        }
        output
    }
}

/// See [`MelSpectrogram::recording`].
pub struct RecordingMel {
    n_mels: usize,
    /// Columns.
    pub frames: usize,
    /// n_mels x frames, row-major.
    values: Vec<f32>,
}

impl RecordingMel {
    /// The n_mels x 3000 window of columns `seek..seek + size` (cut at the recording's end),
    /// zero-padded on the right as OpenAI's `pad_or_trim` pads a mel segment.
    pub fn window(&self, seek: usize, size: usize) -> Vec<f32> {
        let from = seek.min(self.frames);
        let used = size.min(N_FRAMES).min(self.frames - from);
        let mut window = vec![0f32; self.n_mels * N_FRAMES];
        for (row, out) in self.values.chunks_exact(self.frames.max(1)).zip(window.chunks_exact_mut(N_FRAMES))
        {
            out[..used].copy_from_slice(&row[from..from + used]);
        }
        window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slaney_scale_round_trips_and_breaks_at_one_kilohertz() {
        for hz in [0.0, 440.0, 1000.0, 3000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-6);
        }
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
    }

    /// Frame `frame`'s log10 energies with the whole filterbank, one frame at a time.
    fn dense_frame(mel: &MelSpectrogram, samples: &[f32], frame: usize) -> Vec<f32> {
        let len = samples.len() as isize;
        let mut input = mel.fft.make_input_vec();
        let mut spectrum = mel.fft.make_output_vec();
        for (n, slot) in input.iter_mut().enumerate() {
            let mut i = (frame * HOP_LENGTH + n) as isize - (N_FFT / 2) as isize;
            if i < 0 {
                i = -i;
            }
            if i >= len {
                i = 2 * (len - 1) - i;
            }
            *slot = samples[i as usize] * mel.window[n];
        }
        mel.fft.process(&mut input, &mut spectrum).unwrap();
        let power: Vec<f32> = spectrum.iter().map(|c| c.norm_sqr()).collect();
        mel.filters
            .chunks_exact(N_BINS)
            .map(|row| row.iter().zip(&power).map(|(w, p)| w * p).sum::<f32>().max(1e-10).log10())
            .collect()
    }

    #[test]
    fn the_parallel_sparse_spectrogram_equals_the_dense_one_bit_for_bit() {
        for n_mels in [80, 128] {
            let mel = MelSpectrogram::new(n_mels);
            // A chirp with noise, 3.3 s: several tasks and a partial last one.
            let samples: Vec<f32> = (0..52_800)
                .map(|i| {
                    let t = i as f32 / SAMPLE_RATE as f32;
                    (t * t * 9000.0).sin() * 0.3 + ((i * 7919 % 997) as f32 / 997.0 - 0.5) * 0.01
                })
                .collect();
            let frames = samples.len() / HOP_LENGTH;
            let got = mel.log_mel(&samples, frames);
            let dense: Vec<Vec<f32>> = (0..frames).map(|frame| dense_frame(&mel, &samples, frame)).collect();
            let max = dense.iter().flatten().copied().fold(f32::NEG_INFINITY, f32::max);
            for (frame, energies) in dense.iter().enumerate() {
                for (bin, energy) in energies.iter().enumerate() {
                    let expected = (energy.max(max - 8.0) + 4.0) / 4.0;
                    assert_eq!(
                        got[bin * frames + frame].to_bits(),
                        expected.to_bits(),
                        "{n_mels} bins, frame {frame}, bin {bin}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_recordings_windows_share_one_floor_and_pad_with_zeros_past_its_end() {
        let mel = MelSpectrogram::new(80);
        // 20 s of loud chirp, then 15.5 s of quiet noise: the second window's floor comes from
        // the first part's maximum, and its columns past the recording's end are zeros.
        let samples: Vec<f32> = (0..568_000usize)
            .map(|i| {
                let t = i as f32 / SAMPLE_RATE as f32;
                let noise = ((i * 7919 % 997) as f32 / 997.0 - 0.5) * 1e-3;
                if i < 320_000 {
                    (t * t * 40.0).sin() * 0.5
                } else {
                    noise
                }
            })
            .collect();
        let recording = mel.recording(&samples);
        assert_eq!(recording.frames, 3550);
        let mut padded = samples.clone();
        padded.resize(samples.len() + N_FFT, 0.0);
        let dense: Vec<Vec<f32>> =
            (0..recording.frames).map(|frame| dense_frame(&mel, &padded, frame)).collect();
        let max = dense.iter().flatten().copied().fold(f32::NEG_INFINITY, f32::max);
        let (seek, size) = (2500, recording.frames - 2500);
        let window = recording.window(seek, size);
        for bin in [0, 40, 79] {
            for column in [0, 499, 500, 1049] {
                let expected = (dense[seek + column][bin].max(max - 8.0) + 4.0) / 4.0;
                assert_eq!(window[bin * N_FRAMES + column].to_bits(), expected.to_bits(), "{bin} {column}");
            }
            assert!(window[bin * N_FRAMES + 1050..(bin + 1) * N_FRAMES].iter().all(|v| *v == 0.0));
        }
        // A window of the quiet part alone would set its own, lower floor.
        let alone = mel.window(&samples[seek * HOP_LENGTH..]);
        assert!(alone.iter().zip(&window).take(1050).any(|(a, w)| a != w));
    }
}
