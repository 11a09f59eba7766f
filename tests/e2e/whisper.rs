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
