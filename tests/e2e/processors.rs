//! Text processors between extraction and the metrics, through `eval` and `score`: the
//! registry's defaults, `--processors`, `--processor-args`, KARMA's inverted flags fixed, and the
//! dataset's language reaching the processor.

use serde_json::{json, Value};

use crate::{
    datagen::write_jsonl,
    eval_env::EvalEnv,
    harness::{baseline_plugin, karma_command},
    media_gen::{digest_words, wav, write_media_parquet, Column},
    tasks::assert_close,
};

/// jiwer's corpus WER, computed here.
fn wer(pairs: &[(String, String)]) -> f64 {
    let mut edits = 0;
    let mut words = 0;
    for (reference, hypothesis) in pairs {
        let (r, h): (Vec<&str>, Vec<&str>) =
            (reference.split_whitespace().collect(), hypothesis.split_whitespace().collect());
        let mut previous: Vec<usize> = (0..=h.len()).collect();
        for (i, word) in r.iter().enumerate() {
            let mut current = vec![i + 1];
            for (j, other) in h.iter().enumerate() {
                current.push(
                    (previous[j] + usize::from(word != other)).min(previous[j + 1] + 1).min(current[j] + 1),
                );
            }
            previous = current;
        }
        edits += previous[h.len()];
        words += r.len();
    }
    edits as f64 / words as f64
}

#[test]
fn vistaar_normalises_transcripts_with_its_general_text_processor() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    let recordings: Vec<Vec<u8>> = (0..4).map(|i| wav(60 + 10 * i, 250.0 + 30.0 * f64::from(i))).collect();
    // References as a person writes them: capitals and punctuation around the spoken words.
    let references: Vec<String> = recordings
        .iter()
        .map(|audio| {
            let words: Vec<String> = digest_words(audio).split(' ').map(str::to_uppercase).collect();
            format!("{}, {}! {}.", words[..3].join(" "), words[3..6].join(" "), words[6..].join(" "))
        })
        .collect();
    write_media_parquet(
        &env.path("vistaar.parquet"),
        &[
            Column::Media("audio", recordings.iter().map(|audio| (audio.clone(), None)).collect()),
            Column::Text("text", references.clone()),
        ],
    );
    let args = |extra: &[&'static str]| {
        let mut args = vec![
            "--model",
            "karma/describe-input",
            "--model-args",
            r#"{"report": "digest"}"#,
            "--datasets",
            "vistaar",
            "--dataset-arg",
            "vistaar.data_files=vistaar.parquet",
        ];
        args.extend_from_slice(extra);
        args
    };
    env.eval(&args(&[])).assert_code(0);
    let entry = &env.results()["datasets"]["ekacare/vistaar_small_asr_eval"];
    assert_eq!(
        entry["processors"],
        json!([{"name": "general_text_processor", "args": {}, "language": "hi"}])
    );
    assert_close(
        &entry["metrics"]["wer"]["score"],
        0.0,
        "lowercased, punctuation removed: every word matches",
    );

    // Without processors the same outputs (from the cache) are scored as written.
    env.eval(&args(&["--processors", "none"])).assert_code(0);
    let entry = &env.results()["datasets"]["ekacare/vistaar_small_asr_eval"];
    assert_eq!(entry["cache_hits"], 4, "processors do not change what the model is asked");
    let raw: Vec<(String, String)> =
        references.iter().cloned().zip(recordings.iter().map(|audio| digest_words(audio))).collect();
    assert_close(&entry["metrics"]["wer"]["score"], wer(&raw), "unprocessed");

    // KARMA's `use_punc=false` removes punctuation; here it keeps it (lowercasing still applies).
    env.eval(&args(&["--processor-args", "vistaar.general_text_processor:use_punc=false"])).assert_code(0);
    let entry = &env.results()["datasets"]["ekacare/vistaar_small_asr_eval"];
    let kept: Vec<(String, String)> = raw.iter().map(|(r, h)| (r.to_lowercase(), h.clone())).collect();
    assert_close(&entry["metrics"]["wer"]["score"], wer(&kept), "punctuation kept");
    assert_eq!(entry["processors"][0]["args"], json!({"use_punc": "false"}));

    // An argument nothing applies, and a bad value, are usage errors.
    let run = env.eval(&args(&["--processor-args", "vistaar.multilingual_text_processor:language=hi"]));
    run.assert_code(2);
    assert!(run.stderr.contains("which no dataset applies"), "{}", run.stderr);
    let run = env.eval(&args(&["--processor-args", "general_text_processor:use_punc=maybe"]));
    run.assert_code(2);
    assert!(run.stderr.contains("use_punc"), "{}", run.stderr);
}

#[test]
fn score_applies_processors_and_numbers_become_words() {
    let env = EvalEnv::new(&[]);
    let rows = vec![
        json!({"prediction": "take two tablets twenty one days", "reference": "Take 2 tablets, 21 days."}),
        json!({"prediction": "BP one hundred and ten", "reference": "BP 110"}),
    ];
    write_jsonl(&env.path("p.jsonl"), &rows);
    let run = karma_command(
        &[
            "score",
            "p.jsonl",
            "--metrics",
            "wer",
            "--processors",
            "general_text_processor",
            "--processor-args",
            "general_text_processor:num2text=true",
            "--format",
            "json",
        ],
        &[],
        Some(env.work.path()),
    );
    run.assert_code(0);
    let document: Value = run.json();
    let entry = &document["datasets"]["p.jsonl"];
    // num2words writes 21 as "twenty-one" (one word) and 110 as "one hundred and ten".
    let pairs = vec![
        ("take two tablets twenty-one days".to_owned(), "take two tablets twenty one days".to_owned()),
        ("bp one hundred and ten".to_owned(), "bp one hundred and ten".to_owned()),
    ];
    assert_close(&entry["metrics"]["wer"]["score"], wer(&pairs), "wer after num2text");
    assert_eq!(entry["processors"][0]["name"], "general_text_processor");

    // Silent recordings: a transcript of annotations and fillers says nothing.
    let silent = vec![
        json!({"prediction": "[noise] <unk>", "reference": "(silence)"}),
        json!({"prediction": "Hmm... okay.", "reference": "(silence)"}),
        json!({"prediction": "take two tablets", "reference": "(silence)"}),
    ];
    write_jsonl(&env.path("silence.jsonl"), &silent);
    let run = karma_command(
        &["score", "silence.jsonl", "--metrics", "silence_accuracy", "--format", "json"],
        &[],
        Some(env.work.path()),
    );
    run.assert_code(0);
    let metric = &run.json()["datasets"]["silence.jsonl"]["metrics"]["silence_accuracy"];
    assert_close(&metric["score"], 2.0 / 3.0, "silence_accuracy");
    assert_eq!(metric["interval"], "wilson");

    let list = karma_command(&["list", "processors", "--format", "json"], &[], None);
    list.assert_code(0);
    let listed = list.json();
    let names: Vec<&str> =
        listed["processors"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["general_text_processor", "devnagari_transliterator", "multilingual_text_processor"]);
}

#[test]
fn the_dataset_language_reaches_the_multilingual_processor() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    let audio = wav(30, 500.0);
    let digest = digest_words(&audio);
    write_jsonl(
        &env.path("iv.jsonl"),
        &[json!({"audio_filepath": {"bytes": null, "path": "clip.wav"}, "text": format!("{digest} two")})],
    );
    env.work.write("clip.wav", &audio);
    let run = env.eval(&[
        "--model",
        "karma/describe-input",
        "--model-args",
        r#"{"report": "digest"}"#,
        "--datasets",
        "indicvoices",
        "--dataset-arg",
        "indicvoices.data_files=iv.jsonl",
        "--dataset-arg",
        "indicvoices.language=english",
    ]);
    run.assert_code(0);
    let entry = &env.results()["datasets"]["ai4bharat/IndicVoices"];
    assert_eq!(
        entry["processors"],
        json!([{"name": "multilingual_text_processor", "args": {}, "language": "english"}])
    );
    assert_close(&entry["metrics"]["wer"]["score"], 1.0 / 9.0, "the ninth reference word is missing");
    // An explicit argument wins over the dataset's language.
    env.eval(&[
        "--model",
        "karma/describe-input",
        "--model-args",
        r#"{"report": "digest"}"#,
        "--datasets",
        "indicvoices",
        "--dataset-arg",
        "indicvoices.data_files=iv.jsonl",
        "--dataset-arg",
        "indicvoices.language=english",
        "--processor-args",
        "indicvoices.multilingual_text_processor:language=hi",
    ])
    .assert_code(0);
    let entry = &env.results()["datasets"]["ai4bharat/IndicVoices"];
    assert_eq!(entry["processors"][0]["args"], json!({"language": "hi"}));
    let run = env.eval(&[
        "--model",
        "karma/describe-input",
        "--datasets",
        "indicvoices",
        "--dataset-arg",
        "indicvoices.data_files=iv.jsonl",
    ]);
    run.assert_code(2);
    assert!(run.stderr.contains("requires the argument `language`"), "{}", run.stderr);
}
