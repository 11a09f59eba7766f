//! Images and recordings from dataset rows to the plugin: parquet `Image`/`Audio` structs,
//! JSONL paths, base64 and data URLs; VQA and ASR datasets scored end to end; the modality check.
//! `karma/describe-input` answers with the SHA-256 of what it received, so a score here is right
//! only if every byte arrived, and each expected score is computed in the test.

use base64_free::encode;
use serde_json::{json, Value};

use crate::{
    datagen::write_jsonl,
    eval_env::EvalEnv,
    harness::baseline_plugin,
    media_gen::{digest_words, fixture_media, png, sha256_hex, wav, write_media_parquet, Column},
};

/// Standard base64, written here so the test does not share karma-host's decoder.
mod base64_free {
    pub fn encode(data: &[u8]) -> String {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let bytes = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(bytes[0]) << 16) | (u32::from(bytes[1]) << 8) | u32::from(bytes[2]);
            for index in 0..4 {
                if index <= chunk.len() {
                    out.push(ALPHABET[(n >> (18 - 6 * index)) as usize & 63] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

fn digest(env: &EvalEnv, extra: &[&str]) -> crate::harness::Run {
    let mut args = vec!["--model", "karma/describe-input", "--model-args", r#"{"report": "digest"}"#];
    args.extend_from_slice(extra);
    env.eval(&args)
}

fn score(entry: &Value, metric: &str) -> f64 {
    entry["metrics"][metric]["score"].as_f64().unwrap_or_else(|| panic!("no {metric} score in {entry}"))
}

/// Levenshtein distance, computed here independently of karma-host.
fn edits<T: PartialEq>(r: &[T], h: &[T]) -> usize {
    let mut previous: Vec<usize> = (0..=h.len()).collect();
    for (i, item) in r.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, other) in h.iter().enumerate() {
            current.push(
                (previous[j] + usize::from(item != other)).min(previous[j + 1] + 1).min(current[j] + 1),
            );
        }
        previous = current;
    }
    previous[h.len()]
}

/// jiwer's corpus WER and CER (characters including inner spaces).
fn error_rates(references: &[String], hypotheses: &[String]) -> (f64, f64) {
    let words = |text: &str| text.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let chars = |text: &str| text.trim().chars().collect::<Vec<_>>();
    let pairs = || references.iter().zip(hypotheses);
    let word_edits: usize = pairs().map(|(r, h)| edits(&words(r), &words(h))).sum();
    let char_edits: usize = pairs().map(|(r, h)| edits(&chars(r), &chars(h))).sum();
    let word_count: usize = references.iter().map(|r| words(r).len()).sum();
    let char_count: usize = references.iter().map(|r| chars(r).len()).sum();
    (word_edits as f64 / word_count as f64, char_edits as f64 / char_count as f64)
}

#[test]
fn vqa_rad_parquet_images_reach_the_model_intact_and_key_the_cache() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    // Two images over 64 KiB, which a worker receives through shared memory, the rest inline.
    let images: Vec<Vec<u8>> =
        (0..9u8).map(|i| if i % 4 == 2 { png(200, 150, i) } else { png(8 + u32::from(i), 6, i) }).collect();
    assert!(images[2].len() > 64 << 10);
    let answers: Vec<String> = images
        .iter()
        .enumerate()
        .map(|(i, image)| if i % 3 == 0 { "left lung".to_owned() } else { digest_words(image) })
        .collect();
    let write = |images: &[Vec<u8>]| {
        write_media_parquet(
            &env.path("vqa.parquet"),
            &[
                Column::Media(
                    "image",
                    images
                        .iter()
                        .enumerate()
                        .map(|(i, image)| (image.clone(), (i % 2 == 1).then(|| format!("synpic{i}.jpg"))))
                        .collect(),
                ),
                Column::Text(
                    "question",
                    (0..9).map(|i| format!("Is there an abnormality in study {i}?")).collect(),
                ),
                Column::Text("answer", answers.clone()),
            ],
        )
    };
    write(&images);
    let dataset = ["--datasets", "vqa-rad", "--dataset-arg", "vqa-rad.data_files=vqa.parquet"];
    let run = digest(&env, &dataset);
    run.assert_code(0);
    let results = env.results();
    let entry = &results["datasets"]["flaviagiammarino/vqa-rad"];
    assert_eq!(entry["task_type"], "vqa");
    assert_eq!(score(entry, "exact_match"), 6.0 / 9.0, "{entry}");
    assert_eq!(score(entry, "tokenised_f1"), 6.0 / 9.0, "{entry}");
    assert_eq!(entry["cache_misses"], 9);

    // The full report: format, size and hash of every image, as the plugin saw them.
    let report = env.eval(&[
        "--model",
        "karma/describe-input",
        "--datasets",
        "vqa-rad",
        "--dataset-arg",
        "vqa-rad.data_files=vqa.parquet",
        "--samples-output",
        "report.jsonl",
    ]);
    report.assert_code(0);
    let samples = env.samples("report.jsonl");
    assert_eq!(samples.len(), 9);
    for (sample, image) in samples.iter().zip(&images) {
        let seen: Value = serde_json::from_str(sample["raw_output"].as_str().unwrap()).unwrap();
        assert_eq!(
            seen["images"],
            json!([{"format": "png", "bytes": image.len(), "sha256": sha256_hex(image)}])
        );
        assert_eq!(seen["audio"], Value::Null);
        assert!(seen["input_chars"].as_u64().unwrap() > 40, "{seen}");
    }

    // A worker process receives the same bytes (small ones in the request, large ones in the
    // shared region).
    env.eval(&[
        "--model",
        "karma/describe-input",
        "--isolation",
        "worker",
        "--no-cache",
        "--datasets",
        "vqa-rad",
        "--dataset-arg",
        "vqa-rad.data_files=vqa.parquet",
        "--samples-output",
        "worker.jsonl",
    ])
    .assert_code(0);
    let outputs = |name: &str| -> Vec<Value> {
        env.samples(name).into_iter().map(|s| s["raw_output"].clone()).collect()
    };
    assert_eq!(outputs("worker.jsonl"), outputs("report.jsonl"));

    // Same bytes: every answer from the cache. One image changed: that item alone is asked again.
    digest(&env, &dataset).assert_code(0);
    assert_eq!(env.results()["datasets"]["flaviagiammarino/vqa-rad"]["cache_hits"], 9);
    let mut changed = images.clone();
    changed[4] = png(12, 6, 200);
    write(&changed);
    digest(&env, &dataset).assert_code(0);
    let entry = &env.results()["datasets"]["flaviagiammarino/vqa-rad"];
    assert_eq!((entry["cache_hits"].as_u64(), entry["cache_misses"].as_u64()), (Some(8), Some(1)));
    assert_eq!(score(entry, "exact_match"), 5.0 / 9.0, "image 4 no longer matches its answer");
}

#[test]
fn jsonl_media_paths_are_relative_to_the_file_and_a_missing_one_fails_its_row() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    let jpeg = fixture_media("scan.jpg");
    let pngs: Vec<Vec<u8>> = (0..3u8).map(|i| png(5, 5, 40 + i)).collect();
    env.work.write("slake/images/scan.jpg", &jpeg);
    for (i, image) in pngs.iter().enumerate() {
        env.work.write(&format!("slake/images/p{i}.png"), image);
    }
    let rows = vec![
        json!({"id": 1, "image": "images/p0.png", "question": "Which organ?", "answer": "Liver"}),
        json!({"id": 2, "image": {"bytes": null, "path": "images/p1.png"}, "question": "Which side?", "answer": "Left"}),
        json!({"id": 3, "image": format!("data:image/jpeg;base64,{}", encode(&jpeg)), "question": "Modality?", "answer": "CT"}),
        json!({"id": 4, "image": {"bytes": encode(&pngs[2]), "path": "ignored.png"}, "question": "Normal?", "answer": "yes"}),
        json!({"id": 5, "image": "images/missing.png", "question": "Lesion?", "answer": "no"}),
    ];
    write_jsonl(&env.path("slake/test.jsonl"), &rows);
    let run = env.eval(&[
        "--model",
        "karma/describe-input",
        "--datasets",
        "slake",
        "--dataset-arg",
        "slake.data_files=slake/test.jsonl",
        "--samples-output",
        "s.jsonl",
    ]);
    run.assert_code(1);
    let samples = env.samples("s.jsonl");
    let expected = [&pngs[0], &pngs[1], &jpeg, &pngs[2]];
    for (sample, image) in samples.iter().zip(expected) {
        let seen: Value = serde_json::from_str(sample["raw_output"].as_str().unwrap()).unwrap();
        assert_eq!(seen["images"][0]["sha256"], sha256_hex(image), "{sample}");
    }
    assert_eq!(
        serde_json::from_str::<Value>(samples[2]["raw_output"].as_str().unwrap()).unwrap()["images"][0]
            ["format"],
        "jpeg"
    );
    let entry = &env.results()["datasets"]["mdwiratathya/SLAKE-vqa-english"];
    assert_eq!(entry["num_bad_rows"], 1);
    assert_eq!(entry["bad_rows"][0]["row"], 5);
    let message = samples[4]["error"]["message"].as_str().unwrap();
    assert!(message.contains("slake/images/missing.png") && message.contains("not found"), "{message}");
    assert!(message.contains("field `image`"), "{message}");
}

#[test]
fn asr_parquet_recordings_are_transcribed_and_scored_by_word_and_character_error_rates() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    let mut recordings: Vec<Vec<u8>> =
        (0..5).map(|i| wav(120 + 10 * i, 300.0 + 50.0 * f64::from(i))).collect();
    recordings.push(fixture_media("tone.flac"));
    // References: the digest with 0, 1 or 2 words changed, or a word dropped.
    let references: Vec<String> = recordings
        .iter()
        .enumerate()
        .map(|(i, audio)| {
            let mut words: Vec<String> = digest_words(audio).split(' ').map(str::to_owned).collect();
            match i % 4 {
                1 => words[3] = "stethoscope".to_owned(),
                2 => {
                    words[0] = "ward".to_owned();
                    words[7] = "round".to_owned();
                }
                3 => {
                    words.remove(5);
                }
                _ => {}
            }
            words.join(" ")
        })
        .collect();
    write_media_parquet(
        &env.path("asr.parquet"),
        &[
            Column::Text("id", (0..6).map(|i| format!("rec-{i}")).collect()),
            Column::Media(
                "audio",
                recordings.iter().map(|audio| (audio.clone(), Some("clip.wav".to_owned()))).collect(),
            ),
            Column::Text("text", references.clone()),
            Column::Text("audio_language", vec!["en".to_owned(); 6]),
            Column::Text("recording_context", vec!["consultation".to_owned(); 6]),
        ],
    );
    let run = digest(
        &env,
        &[
            "--datasets",
            "eka-medical-asr",
            "--dataset-arg",
            "eka-medical-asr.data_files=asr.parquet",
            "--dataset-arg",
            "eka-medical-asr.language=en",
            "--samples-output",
            "s.jsonl",
        ],
    );
    run.assert_code(0);
    let entry = &env.results()["datasets"]["ekacare/eka-medical-asr-evaluation-dataset"];
    assert_eq!(entry["task_type"], "transcription");
    let hypotheses: Vec<String> = recordings.iter().map(|audio| digest_words(audio)).collect();
    let (wer, cer) = error_rates(&references, &hypotheses);
    assert!(wer > 0.05 && cer > 0.05, "the references differ from the digests");
    assert!((score(entry, "wer") - wer).abs() < 1e-12, "{entry}");
    assert!((score(entry, "cer") - cer).abs() < 1e-12, "{entry}");
    // IndicVoices-R reads the same columns.
    let run = digest(
        &env,
        &[
            "--datasets",
            "indicvoices-r",
            "--dataset-arg",
            "indicvoices-r.data_files=asr.parquet",
            "--processors",
            "none",
        ],
    );
    run.assert_code(0);
    let entry = &env.results()["datasets"]["ai4bharat/indicvoices_r"];
    assert!((score(entry, "wer") - wer).abs() < 1e-12, "{entry}");
    let samples = env.samples("s.jsonl");
    assert_eq!(samples[0]["id"], "rec-0");
    assert_eq!(samples[0]["prediction"], hypotheses[0]);
    assert_eq!(samples[0]["expected"], references[0]);
}

#[test]
fn a_dataset_whose_modality_the_model_lacks_is_refused_before_loading() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    write_jsonl(&env.path("asr.jsonl"), &[json!({"audio": "a.wav", "text": "hello"})]);
    let run = env.eval(&["--model", "karma/echo", "--datasets", "asr.jsonl"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("audio input, which model `karma/echo` does not accept (it takes: text)"),
        "{}",
        run.stderr
    );
    assert!(!env.path("results.json").exists());
    let run = env.eval(&[
        "--model",
        "karma/echo",
        "--datasets",
        "vqa-rad",
        "--dataset-arg",
        "vqa-rad.data_files=asr.jsonl",
    ]);
    run.assert_code(2);
    assert!(run.stderr.contains("image input"), "{}", run.stderr);
}

#[test]
fn local_vqa_and_asr_files_are_recognised_by_their_columns() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    let (first, second) = (png(4, 4, 1), png(4, 4, 2));
    env.work.write("media/a.png", &first);
    env.work.write("media/b.png", &second);
    write_jsonl(
        &env.path("media/vqa.jsonl"),
        &[
            json!({"images": ["a.png", "b.png"], "question": "Same?", "answer": digest_words(&first)}),
            json!({"image": "b.png", "question": "Which?", "answer": ["no", digest_words(&second)]}),
        ],
    );
    let audio = wav(50, 440.0);
    env.work.write("media/clip.wav", &audio);
    write_jsonl(&env.path("media/asr.jsonl"), &[json!({"audio": "clip.wav", "text": digest_words(&audio)})]);
    let run = digest(&env, &["--datasets", "media/vqa.jsonl,media/asr.jsonl"]);
    run.assert_code(0);
    let results = env.results();
    let vqa = &results["datasets"]["media/vqa.jsonl"];
    assert_eq!(vqa["task_type"], "vqa");
    assert_eq!(score(vqa, "exact_match"), 1.0, "the first image is the one digested; any reference counts");
    let asr = &results["datasets"]["media/asr.jsonl"];
    assert_eq!(asr["task_type"], "transcription");
    assert_eq!(score(asr, "wer"), 0.0);
    let dry = digest(&env, &["--datasets", "media/vqa.jsonl,media/asr.jsonl", "--dry-run"]);
    dry.assert_code(0);
    let sizes = format!("media:     2 images (png {} B, png {} B) (first item)", first.len(), second.len());
    assert!(dry.stdout.contains(&sizes), "{}", dry.stdout);
    assert!(dry.stdout.contains(&format!("media:     audio (wav {} B)", audio.len())), "{}", dry.stdout);
}

#[test]
fn medxpertqa_mm_questions_carry_all_their_images_and_asr_rows_their_annotations() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    let scans: Vec<Vec<u8>> = vec![png(6, 6, 9), fixture_media("scan.jpg"), png(3, 9, 10)];
    let rows = vec![
        json!({"id": "MM-1", "question": "Which finding?", "options": {"A": "a", "B": "b", "C": "c", "D": "d", "E": "e"},
               "label": "C", "images": [{"bytes": encode(&scans[0]), "path": "MM-1-a.png"}, {"bytes": encode(&scans[1]), "path": "MM-1-b.jpeg"}]}),
        json!({"id": "MM-2", "question": "Which organ?", "options": {"A": "x", "B": "y"}, "label": "A",
               "images": [{"bytes": encode(&scans[2]), "path": null}]}),
    ];
    write_jsonl(&env.path("mm.jsonl"), &rows);
    let audio = wav(40, 200.0);
    write_jsonl(
        &env.path("noise.jsonl"),
        &[
            json!({"audio": {"bytes": encode(&audio), "path": "a.wav"}, "text": "two tablets daily", "audio_language": "en",
                 "recording_context": "clinic", "medical_entities": [["tablets", "drug", [[4, 11]]]], "noise_type": "babble",
                 "initial_prompt": "Tablets, capsules."}),
        ],
    );
    let run = env.eval(&[
        "--model",
        "karma/describe-input",
        "--datasets",
        "medxpertqa-mm,denoising-impact",
        "--dataset-arg",
        "medxpertqa-mm.data_files=mm.jsonl",
        "--dataset-arg",
        "denoising-impact.data_files=noise.jsonl",
        "--samples-output",
        "s.jsonl",
    ]);
    run.assert_code(0);
    let samples = env.samples("s.jsonl");
    let seen: Vec<Value> = samples
        .iter()
        .map(|sample| serde_json::from_str(sample["raw_output"].as_str().unwrap()).unwrap())
        .collect();
    let hashes = |seen: &Value| -> Vec<String> {
        seen["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|image| image["sha256"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(hashes(&seen[0]), [sha256_hex(&scans[0]), sha256_hex(&scans[1])]);
    assert_eq!(seen[0]["images"][1]["format"], "jpeg");
    assert_eq!(hashes(&seen[1]), [sha256_hex(&scans[2])]);
    assert_eq!(seen[2]["audio"]["sha256"], sha256_hex(&audio));
    assert_eq!(seen[2]["audio"]["format"], "wav");
    let results = env.results();
    assert_eq!(results["datasets"]["ChuGyouk/MedXpertQA"]["task_type"], "mcqa");
    // The recording's annotations, its initial prompt and the dataset's language reach the
    // model in other_args.
    assert_eq!(
        seen[2]["other_args"],
        json!({"language": "en", "recording_context": "clinic", "entities": [["tablets", "drug", [[4, 11]]]],
               "noise_type": "babble", "initial_prompt": "Tablets, capsules."})
    );
}
