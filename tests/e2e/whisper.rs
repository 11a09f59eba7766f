//! The candle Whisper plugin through the real binary: a tiny random-weight checkpoint generated
//! here (the plugin's own test generator) on a local ASR file, and the real whisper-tiny.en
//! (CTranslate2, unpacked by `.ci/run` into target/models/) on speech synthesised by espeak-ng.

#[path = "../../plugins/candle-whisper/tests/support/lossy.rs"]
mod lossy;
#[path = "../../plugins/candle-whisper/tests/support/tiny_whisper.rs"]
mod tiny_whisper;

use std::path::Path;

use serde_json::{json, Value};

use crate::{
    eval_env::EvalEnv,
    harness::{whisper_plugin, workspace_root},
};

fn write_jsonl(path: &Path, rows: &[Value]) {
    let text: Vec<String> = rows.iter().map(Value::to_string).collect();
    std::fs::write(path, text.join("\n")).unwrap();
}

fn score(entry: &Value, metric: &str) -> f64 {
    entry["metrics"][metric]["score"].as_f64().unwrap_or_else(|| panic!("no {metric} score in {entry}"))
}

#[test]
fn a_tiny_checkpoint_transcribes_an_asr_file_and_an_undecodable_clip_fails_alone() {
    let env = EvalEnv::new(&[whisper_plugin()]);
    let model = env.path("tiny-whisper");
    tiny_whisper::write_hf(&model, true, 21);
    let mut rows = Vec::new();
    for (index, (hertz, rate)) in [(220.0, 16_000), (440.0, 44_100), (330.0, 8_000)].iter().enumerate() {
        let name = format!("clip{index}.wav");
        env.work.write(&name, tiny_whisper::wav_bytes(&tiny_whisper::tone(*hertz, *rate, 1.5), *rate, 1));
        rows.push(json!({"audio": name, "text": "the patient is stable"}));
    }
    env.work.write("broken.wav", b"RIFF but not really a wave file");
    rows.insert(1, json!({"audio": "broken.wav", "text": "never heard"}));
    write_jsonl(&env.path("asr.jsonl"), &rows);
    let model_path = model.to_str().unwrap();
    let run = env.eval(&[
        "--model",
        "candle/whisper",
        "--model-path",
        model_path,
        "--datasets",
        "asr.jsonl",
        "--model-args",
        r#"{"max_new_tokens": 6, "threads": 2}"#,
        "--batch-size",
        "4",
        "--output",
        "results.json",
        "--samples-output",
        "samples.jsonl",
    ]);
    run.assert_code(1);
    let results = env.results();
    let entry = &results["datasets"]["asr.jsonl"];
    assert_eq!(entry["task_type"], "transcription", "{entry}");
    assert_eq!(entry["status"], "completed_with_failures", "{entry}");
    assert_eq!(entry["num_failed"], 1, "{entry}");
    assert_eq!(entry["metrics"]["wer"]["num_samples"], 3, "{entry}");
    assert!(score(entry, "wer") >= 0.0 && score(entry, "cer") >= 0.0);
    let samples = env.samples("samples.jsonl");
    assert_eq!(samples.len(), 4);
    let failed: Vec<&Value> = samples.iter().filter(|s| !s["error"].is_null()).collect();
    assert_eq!(failed.len(), 1, "{samples:#?}");
    let error = failed[0]["error"].to_string();
    assert!(error.contains("cannot decode its audio"), "{error}");
    let ok = samples.iter().find(|s| s["error"].is_null()).unwrap();
    assert_eq!(ok["details"]["audio_seconds"], 1.5, "{ok:#}");
    assert!(["stop", "length"].contains(&ok["details"]["finish_reason"].as_str().unwrap()), "{ok:#}");
}

/// The real whisper-tiny.en's directory, or `None` (saying why) when `.ci/run` could not fetch it.
fn real_tiny_en() -> Option<std::path::PathBuf> {
    let model = workspace_root().join("target/models/whisper-tiny.en-ct2");
    if model.join("model.bin").is_file() {
        Some(model)
    } else {
        println!("skipping: {} is absent (.ci/run fetches it from PyPI)", model.display());
        None
    }
}

/// Speaks `sentence` into `path` (22.05 kHz WAV); false, saying why, without espeak-ng.
fn speak(path: &Path, sentence: &str) -> bool {
    match std::process::Command::new("espeak-ng").arg("-w").arg(path).arg(sentence).status() {
        Ok(status) if status.success() => true,
        _ => {
            println!("skipping: espeak-ng is not installed (apt-get install espeak-ng)");
            false
        }
    }
}

#[test]
fn real_tiny_en_transcribes_synthesised_medical_speech() {
    let Some(model) = real_tiny_en() else { return };
    let sentences = [
        "The patient has a fever and a dry cough.",
        "Take two tablets of paracetamol every six hours.",
        "Her blood pressure is one hundred and forty over ninety.",
        "He was admitted with severe chest pain.",
        "Please drink plenty of water and rest at home.",
        "The doctor prescribed antibiotics for the infection.",
    ];
    let env = EvalEnv::new(&[whisper_plugin()]);
    let mut rows = Vec::new();
    for (index, sentence) in sentences.iter().enumerate() {
        if !speak(&env.path(&format!("s{index}.wav")), sentence) {
            return;
        }
        rows.push(json!({"audio": format!("s{index}.wav"), "text": sentence}));
    }
    write_jsonl(&env.path("speech.jsonl"), &rows);
    let run = env.eval(&[
        "--model",
        "candle/whisper",
        "--model-path",
        model.to_str().unwrap(),
        "--datasets",
        "speech.jsonl",
        "--batch-size",
        "3",
        "--output",
        "results.json",
        "--samples-output",
        "samples.jsonl",
    ]);
    run.assert_code(0);
    let entry = &env.results()["datasets"]["speech.jsonl"];
    for sample in env.samples("samples.jsonl") {
        println!("{}", sample["raw_output"]);
    }
    let (wer, cer) = (score(entry, "wer"), score(entry, "cer"));
    println!("real whisper-tiny.en on espeak-ng speech: WER {wer:.3}, CER {cer:.3}");
    assert_eq!(entry["metrics"]["wer"]["num_samples"], 6);
    assert!(wer < 0.75, "WER {wer}");
    assert!(cer < 0.45, "CER {cer}");
}

#[test]
fn real_tiny_en_hears_the_same_speech_in_mp3_ogg_vorbis_and_m4a_aac() {
    let Some(model) = real_tiny_en() else { return };
    if let Err(why) = lossy::ffmpeg() {
        println!("skipping: {why}");
        return;
    }
    let sentences = [
        "The patient has a fever and a dry cough.",
        "He was admitted with severe chest pain.",
        "Please drink plenty of water and rest at home.",
    ];
    let env = EvalEnv::new(&[whisper_plugin()]);
    let extensions: Vec<&str> =
        std::iter::once("wav").chain(lossy::FORMATS.iter().map(|(ext, _)| *ext)).collect();
    let mut rows: Vec<Vec<Value>> = vec![Vec::new(); extensions.len()];
    for (index, sentence) in sentences.iter().enumerate() {
        let wav_path = env.path(&format!("s{index}.wav"));
        if !speak(&wav_path, sentence) {
            return;
        }
        let wav = std::fs::read(&wav_path).unwrap();
        for (format, extension) in extensions.iter().enumerate() {
            let name = format!("s{index}.{extension}");
            if *extension != "wav" {
                env.work.write(&name, lossy::encode(&wav, extension).unwrap());
            }
            rows[format].push(json!({"audio": name, "text": sentence}));
        }
    }
    let datasets: Vec<String> = extensions.iter().map(|ext| format!("speech-{ext}.jsonl")).collect();
    for (name, rows) in datasets.iter().zip(&rows) {
        write_jsonl(&env.path(name), rows);
    }
    let run = env.eval(&[
        "--model",
        "candle/whisper",
        "--model-path",
        model.to_str().unwrap(),
        "--datasets",
        &datasets.join(","),
        "--batch-size",
        "3",
        "--output",
        "results.json",
        "--samples-output",
        "samples.jsonl",
    ]);
    run.assert_code(0);
    let results = env.results();
    let samples = env.samples("samples.jsonl");
    let seconds = |dataset: &str, id: &Value| -> f64 {
        let sample = samples.iter().find(|s| s["dataset"] == dataset && &s["id"] == id).unwrap();
        sample["details"]["audio_seconds"].as_f64().unwrap()
    };
    for dataset in &datasets {
        let entry = &results["datasets"][dataset.as_str()];
        assert_eq!(entry["num_failed"], 0, "{entry}");
        assert_eq!(entry["metrics"]["wer"]["num_samples"], 3, "{entry}");
        let wer = score(entry, "wer");
        println!("{dataset}: WER {wer:.3}");
        // Measured: WAV 0.48, MP3 0.44, Ogg 0.32, M4A 0.48. A lossy copy changes a word or two of
        // a robotic voice, never the whole clip.
        assert!(wer < 0.75, "{dataset}: WER {wer}");
        for sample in samples.iter().filter(|s| s["dataset"] == dataset.as_str()) {
            println!("  {}", sample["raw_output"]);
            // Decoded at the clip's own length: at most two codec frames of priming or padding.
            let extra = seconds(dataset, &sample["id"]) - seconds(&datasets[0], &sample["id"]);
            assert!((-0.01..0.1).contains(&extra), "{dataset}: {extra} s longer than the WAV");
        }
    }
}

/// The 16-bit PCM samples of an espeak-ng WAV, as floats, and its rate.
fn wav_samples(bytes: &[u8]) -> (Vec<f32>, u32) {
    let rate = u32::from_le_bytes(bytes[24..28].try_into().unwrap());
    let data = bytes.windows(4).position(|w| w == b"data").expect("a data chunk") + 8;
    let samples =
        bytes[data..].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0).collect();
    (samples, rate)
}

#[test]
fn real_tiny_en_transcribes_a_recording_longer_than_a_window_with_and_without_previous_text() {
    let Some(model) = real_tiny_en() else { return };
    let sentences = [
        "The patient is a sixty year old man with a history of diabetes.",
        "He reports chest pain that started two days ago.",
        "The pain gets worse when he climbs the stairs.",
        "His blood pressure is high and his pulse is fast.",
        "We started him on aspirin and a beta blocker.",
        "An electrocardiogram showed changes in the lateral leads.",
        "His troponin level was raised on admission.",
        "The cardiology team will review him in the morning.",
        "He should avoid heavy exercise for two weeks.",
        "Please book a follow up appointment in the clinic.",
        "Bring a list of all the medicines you take.",
        "Call us at once if the pain comes back.",
    ];
    let env = EvalEnv::new(&[whisper_plugin()]);
    let mut recording = Vec::new();
    let mut rate = 0;
    for (index, sentence) in sentences.iter().enumerate() {
        let path = env.path(&format!("part{index}.wav"));
        if !speak(&path, sentence) {
            return;
        }
        let (samples, part_rate) = wav_samples(&std::fs::read(&path).unwrap());
        rate = part_rate;
        recording.extend(samples);
        recording.extend(std::iter::repeat_n(0.0, part_rate as usize * 3 / 5));
    }
    let seconds = recording.len() as f64 / rate as f64;
    assert!(seconds > 35.0, "the recording should need two windows: {seconds} s");
    env.work.write("long.wav", tiny_whisper::wav_bytes(&recording, rate, 1));
    write_jsonl(&env.path("long.jsonl"), &[json!({"audio": "long.wav", "text": sentences.join(" ")})]);
    let mut wers = Vec::new();
    for (run_index, (name, args)) in
        [("conditioned", "{}"), ("unconditioned", r#"{"condition_on_previous_text": false}"#)]
            .into_iter()
            .enumerate()
    {
        let samples_file = format!("{name}.jsonl");
        let run = env.eval(&[
            "--model",
            "candle/whisper",
            "--model-path",
            model.to_str().unwrap(),
            "--model-args",
            args,
            "--datasets",
            "long.jsonl",
            "--output",
            "results.json",
            "--samples-output",
            &samples_file,
        ]);
        run.assert_code(0);
        let entry = &env.results()["datasets"]["long.jsonl"];
        let sample = &env.samples(&samples_file)[0];
        println!("{name}: {}", sample["raw_output"]);
        assert!(sample["details"]["windows"].as_u64().unwrap() >= 2, "{sample:#}");
        assert_eq!(sample["details"]["language"], "en", "{sample:#}");
        // No sentence lost or doubled at the window boundary: the word count stays close.
        let heard = sample["raw_output"].as_str().unwrap().split_whitespace().count();
        let said = sentences.iter().map(|s| s.split_whitespace().count()).sum::<usize>();
        assert!(heard.abs_diff(said) * 5 < said, "{heard} words heard for {said} said");
        wers.push(score(entry, "wer"));
        // The setting is part of the cache key: the second run decodes again.
        assert_eq!(env.cached_outputs(), run_index as i64 + 1, "{name}");
    }
    println!(
        "real whisper-tiny.en, {seconds:.1} s recording: WER {:.3} with previous text, {:.3} without",
        wers[0], wers[1]
    );
    // Measured 0.156 both ways (the two differ in one sentence of the second window).
    assert!(wers.iter().all(|wer| *wer < 0.35), "{wers:?}");
}

#[test]
fn a_multilingual_checkpoint_detects_the_language_of_items_that_give_none() {
    let env = EvalEnv::new(&[whisper_plugin()]);
    let model = env.path("tiny-whisper");
    // The seed and tones of the plugin's detection test: 180 Hz is heard as <|hi|>, 700 Hz as
    // <|en|> by these random weights.
    tiny_whisper::write_hf(&model, true, 7);
    for (name, hertz) in [("low.wav", 180.0), ("high.wav", 700.0)] {
        env.work.write(name, tiny_whisper::wav_bytes(&tiny_whisper::tone(hertz, 16_000, 3.0), 16_000, 1));
    }
    let rows = [
        json!({"audio": "low.wav", "text": "a"}),
        json!({"audio": "high.wav", "text": "b"}),
        json!({"audio": "low.wav", "text": "c", "language": "en"}),
        json!({"audio": "high.wav", "text": "d", "language": "auto", "initial_prompt": "Ibuprofen 400 mg."}),
        json!({"audio": "low.wav", "text": "e", "language": "xx-unknown"}),
    ];
    write_jsonl(&env.path("mixed.jsonl"), &rows);
    let run = env.eval(&[
        "--model",
        "candle/whisper",
        "--model-path",
        model.to_str().unwrap(),
        "--model-args",
        r#"{"max_new_tokens": 4}"#,
        "--datasets",
        "mixed.jsonl",
        "--batch-size",
        "5",
        "--output",
        "results.json",
        "--samples-output",
        "samples.jsonl",
    ]);
    run.assert_code(1);
    let samples = env.samples("samples.jsonl");
    let language = |index: usize| samples[index]["details"]["language"].clone();
    assert_eq!(language(0), "hi", "{:#}", samples[0]);
    assert_eq!(language(1), "en", "{:#}", samples[1]);
    assert_eq!(language(2), "en", "given, not detected: {:#}", samples[2]);
    assert_eq!(language(3), "en", "{:#}", samples[3]);
    let error = samples[4]["error"].to_string();
    assert!(error.contains("language `xx-unknown` is not one Whisper knows"), "{error}");
    assert_eq!(env.results()["datasets"]["mixed.jsonl"]["num_failed"], 1);
}
