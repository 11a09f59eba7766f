//! `karma-host eval` as a process: real plugins, generated datasets in the hub schemas (JSONL
//! and parquet), scores checked against values computed here, cache behaviour, resume after
//! SIGKILL, and the errors for bad input.

use serde_json::Value;

use crate::{
    datagen::{self, Question},
    eval_env::{signal_after_commits, EvalEnv},
    harness::{baseline_plugin, fixture, karma_command, karma_process, Run},
};

fn first_option_accuracy(questions: &[Question]) -> f64 {
    questions.iter().filter(|q| q.answer == q.options[0].0).count() as f64 / questions.len() as f64
}

fn assert_close(actual: &Value, expected: f64, what: &str) {
    let actual = actual.as_f64().unwrap_or_else(|| panic!("{what} is not a number: {actual}"));
    assert!((actual - expected).abs() < 1e-9, "{what}: {actual} != {expected}");
}

#[test]
fn scores_match_independent_computation_on_jsonl_and_parquet() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    let pubmed = datagen::questions(40, 1);
    let medqa = datagen::questions(60, 2);
    let medmcqa = datagen::questions(90, 3);
    datagen::write_jsonl(&env.path("pubmedqa.jsonl"), &datagen::openlifescience_rows(&pubmed, true));
    datagen::write_openlifescience_parquet(&env.path("medqa.parquet"), &medqa);
    std::fs::create_dir(env.path("medmcqa")).unwrap();
    datagen::write_medmcqa_parquet(&env.path("medmcqa/validation-00000.parquet"), &medmcqa[..50]);
    datagen::write_jsonl(&env.path("medmcqa/validation-00001.jsonl"), &datagen::medmcqa_rows(&medmcqa[50..]));

    let run = env.eval(&[
        "--model",
        "karma/first-option",
        "--datasets",
        "pubmedqa,medqa,medmcqa",
        "--dataset-args",
        "pubmedqa:data_files=pubmedqa.jsonl;medqa:data_files=medqa.parquet;medmcqa:data_files=medmcqa",
        "--samples-output",
        "samples.jsonl",
        "--format",
        "json",
    ]);
    run.assert_code(0);
    let results = env.results();
    assert_eq!(run.json(), results, "stdout --format json is the results document");
    for (name, questions) in [
        ("openlifescienceai/pubmedqa", &pubmed),
        ("openlifescienceai/medqa", &medqa),
        ("openlifescienceai/medmcqa", &medmcqa),
    ] {
        let entry = &results["datasets"][name];
        assert_eq!(entry["status"], "completed", "{name}: {entry}");
        let expected = first_option_accuracy(questions);
        let n = questions.len() as f64;
        let metric = &entry["metrics"]["exact_match"];
        assert_close(&metric["score"], expected, name);
        assert_eq!(metric["num_samples"], questions.len());
        assert_eq!((metric["num_failed"].as_u64(), metric["num_unparsed"].as_u64()), (Some(0), Some(0)));
        assert_close(&metric["stderr"], (expected * (1.0 - expected) / n).sqrt(), name);
        let (low, high) = datagen::wilson(expected * n, n);
        assert_close(&metric["ci_low"], low, name);
        assert_close(&metric["ci_high"], high, name);
        assert_close(&entry["metrics"]["accuracy"]["score"], expected, name);
        assert!(entry["revision"].as_str().unwrap().starts_with("local:"), "{name}");
        assert_eq!(entry["task_type"], "mcqa");
        assert_eq!(entry["cache_misses"], questions.len());
        for key in ["dataset_args", "timings", "cache_hits"] {
            assert!(entry.get(key).is_some(), "{name} lacks {key}");
        }
    }
    // medmcqa breaks down by subject.
    let subgroups = &results["datasets"]["openlifescienceai/medmcqa"]["subgroups"];
    for subject in ["Anatomy", "Physiology", "Pharmacology"] {
        let subset: Vec<Question> = medmcqa.iter().filter(|q| q.subject == subject).cloned().collect();
        assert_close(&subgroups[subject]["exact_match"]["score"], first_option_accuracy(&subset), subject);
    }
    let manifest = &results["manifest"];
    assert_eq!(manifest["model"]["name"], "karma/first-option");
    assert_eq!(manifest["status"], "completed");
    assert_eq!(manifest["plugin"]["sha256"].as_str().unwrap().len(), 64);
    for key in ["host_version", "seed", "started_at", "finished_at", "dataset_sources"] {
        assert!(!manifest[key].is_null(), "manifest lacks {key}");
    }

    let samples = env.samples("samples.jsonl");
    assert_eq!(samples.len(), 190);
    let first = &samples[0];
    for key in [
        "dataset",
        "id",
        "prompt",
        "raw_output",
        "prediction",
        "expected",
        "correct",
        "from_cache",
        "error",
        "input_tokens",
        "output_tokens",
        "latency_ms",
    ] {
        assert!(first.get(key).is_some(), "sample lacks {key}: {first}");
    }
    assert_eq!(first["id"], pubmed[0].id);
    assert!(
        first["prompt"].as_str().unwrap().contains(&pubmed[0].question),
        "the question is in the prompt verbatim"
    );
    assert_eq!(first["prompt"].as_str().unwrap().matches("Background for").count(), 1, "context shown once");
}

#[test]
fn a_batch_mixing_cache_hits_and_misses_pairs_every_output_with_its_item() {
    // karma/echo answers with its prompt, so a mispaired output is visible as another item's
    // question. The first run caches items 0-2; the second sends 3-7 in a batch with 0-2 hits.
    let env = EvalEnv::new(&[baseline_plugin()]);
    let questions = datagen::questions(8, 4);
    datagen::write_jsonl(&env.path("medqa.jsonl"), &datagen::openlifescience_rows(&questions, false));
    let base = [
        "--model",
        "karma/echo",
        "--datasets",
        "medqa",
        "--dataset-arg",
        "medqa.data_files=medqa.jsonl",
        "--batch-size",
        "8",
    ];
    let mut first = base.to_vec();
    first.extend(["--max-samples", "3"]);
    env.eval(&first).assert_code(0);
    let mut second = base.to_vec();
    second.extend(["--samples-output", "mixed.jsonl"]);
    env.eval(&second).assert_code(0);
    let samples = env.samples("mixed.jsonl");
    assert_eq!(samples.iter().filter(|s| s["from_cache"] == true).count(), 3);
    for (sample, question) in samples.iter().zip(&questions) {
        assert_eq!(sample["id"], question.id);
        assert_eq!(sample["raw_output"], sample["prompt"], "output paired with the wrong item");
        assert!(sample["raw_output"].as_str().unwrap().contains(&question.question));
        // An echo has no `Final Answer:` line: unparsed, counted as wrong.
        assert_eq!(sample["prediction"], Value::Null);
        assert_eq!(sample["correct"], false);
    }
    let metric = &env.results()["datasets"]["openlifescienceai/medqa"]["metrics"]["exact_match"];
    assert_eq!(
        (metric["score"].as_f64(), metric["num_unparsed"].as_u64(), metric["num_samples"].as_u64()),
        (Some(0.0), Some(8), Some(8))
    );
}

#[test]
fn cache_is_reused_refreshed_or_bypassed() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    datagen::write_jsonl(
        &env.path("q.jsonl"),
        &datagen::openlifescience_rows(&datagen::questions(10, 5), false),
    );
    let base =
        ["--model", "karma/constant", "--datasets", "medqa", "--dataset-arg", "medqa.data_files=q.jsonl"];
    let hits = |run: &Run| {
        run.assert_code(0);
        let entry =
            &serde_json::from_str::<Value>(&std::fs::read_to_string(env.path("results.json")).unwrap())
                .unwrap()["datasets"]["openlifescienceai/medqa"];
        (entry["cache_hits"].as_u64().unwrap(), entry["cache_misses"].as_u64().unwrap())
    };
    assert_eq!(hits(&env.eval(&base)), (0, 10));
    assert_eq!(hits(&env.eval(&base)), (10, 0));
    // Batch size and max-samples are not part of the key.
    let mut other_batch = base.to_vec();
    other_batch.extend(["--batch-size", "3", "--max-samples", "4"]);
    assert_eq!(hits(&env.eval(&other_batch)), (4, 0));
    let mut refresh = base.to_vec();
    refresh.push("--refresh-cache");
    assert_eq!(hits(&env.eval(&refresh)), (0, 10));
    let mut off = base.to_vec();
    off.push("--no-cache");
    assert_eq!(hits(&env.eval(&off)), (0, 10));
    // The model configuration is part of the key.
    let mut other_config = base.to_vec();
    other_config.extend(["--model-args", r#"{"value": "C"}"#]);
    assert_eq!(hits(&env.eval(&other_config)), (0, 10));
    assert_eq!(env.cached_outputs(), 20);

    let info = karma_command(
        &["cache", "info", "--cache-path", env.path("cache.sqlite").to_str().unwrap()],
        &[],
        None,
    );
    info.assert_code(0);
    assert!(info.stdout.contains("outputs      20"), "{}", info.stdout);
    let clear = karma_command(
        &["cache", "clear", "--cache-path", env.path("cache.sqlite").to_str().unwrap()],
        &[],
        None,
    );
    clear.assert_code(0);
    assert_eq!(env.cached_outputs(), 0);
}

#[test]
fn failed_items_are_recorded_not_cached_not_scored() {
    // The fixture panics on its first call in each process: the first batch fails.
    let env = EvalEnv::new(&[fixture("panic-run")]);
    datagen::write_jsonl(
        &env.path("q.jsonl"),
        &datagen::openlifescience_rows(&datagen::questions(4, 6), false),
    );
    let run = env.eval(&[
        "--model",
        "fixture/panic-in-run",
        "--datasets",
        "medqa",
        "--dataset-arg",
        "medqa.data_files=q.jsonl",
        "--batch-size",
        "2",
        "--samples-output",
        "s.jsonl",
    ]);
    run.assert_code(1);
    assert!(
        run.stderr.contains("finished with failures: openlifescienceai/medqa (2 items failed)"),
        "{}",
        run.stderr
    );
    let entry = &env.results()["datasets"]["openlifescienceai/medqa"];
    assert_eq!(entry["num_failed"], 2);
    assert_eq!(entry["metrics"]["exact_match"]["num_samples"], 2, "failures are not scored");
    assert_eq!(entry["metrics"]["exact_match"]["num_failed"], 2);
    assert_eq!(env.cached_outputs(), 2, "failures are not cached");
    let samples = env.samples("s.jsonl");
    assert!(samples[0]["error"].as_str().unwrap().contains("panicked in `run`"), "{}", samples[0]);
    assert_eq!(samples[0]["raw_output"], Value::Null);
    assert_eq!(samples[2]["error"], Value::Null);
}

#[test]
fn one_failing_dataset_does_not_lose_the_others() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    datagen::write_jsonl(
        &env.path("good.jsonl"),
        &datagen::openlifescience_rows(&datagen::questions(5, 7), false),
    );
    std::fs::write(env.path("bad.jsonl"), "{\"id\": \"1\", \"question\": \"Q\", \"opa\": \"a\", \"opb\": \"b\", \"opc\": \"c\", \"opd\": \"d\", \"cop\": 1}\n{\"id\": \"2\", \"question\": \"Q\", \"opa\": \"a\", \"opb\": \"b\", \"opc\": \"c\", \"opd\": \"d\", \"cop\": 9}\n").unwrap();
    let run = env.eval(&[
        "--model",
        "karma/constant",
        "--datasets",
        "medmcqa,medqa",
        "--dataset-args",
        "medqa:data_files=good.jsonl;medmcqa:data_files=bad.jsonl",
        "--strict",
    ]);
    run.assert_code(1);
    let results = env.results();
    assert_eq!(results["datasets"]["openlifescienceai/medqa"]["status"], "completed");
    let failed = &results["datasets"]["openlifescienceai/medmcqa"];
    assert_eq!(failed["status"], "failed");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("bad.jsonl` row 2: field `cop`: 9 is not in 0-3"), "{error}");
    assert!(run.stderr.contains("dataset `openlifescienceai/medmcqa` failed"), "{}", run.stderr);
}

#[test]
fn bad_input_is_refused_before_anything_loads() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    datagen::write_jsonl(
        &env.path("q.jsonl"),
        &datagen::openlifescience_rows(&datagen::questions(3, 8), false),
    );
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--model", "karma/constant", "--datasets", "medqq"], "error: unknown dataset `medqq`"),
        (vec!["--model", "karma/constant", "--datasets", "medqq"], "hint: did you mean: medqa"),
        (vec!["--model", "karma/konstant", "--datasets", "medqa"], "error: unknown model `karma/konstant`"),
        (
            vec!["--model", "karma/constant", "--datasets", "medqa", "--model-args", "{oops"],
            "error: --model-args is not valid JSON",
        ),
        (
            vec!["--model", "karma/constant", "--datasets", "medqa", "--model-args", r#"{"vlaue": "B"}"#],
            "unknown configuration key `vlaue` for `karma/constant`",
        ),
        (
            vec!["--model", "karma/constant", "--datasets", "medqa", "--max-samples", "-1"],
            "invalid value '-1' for '--max-samples <N>': `-1` is not a whole number from 1 to 18446744073709551615",
        ),
        (
            vec!["--model", "karma/constant", "--datasets", "medqa", "--max-samples", "0"],
            "invalid value '0' for '--max-samples <N>': must be at least 1",
        ),
        (
            vec!["--model", "karma/constant", "--datasets", "medqa", "--batch-size", "0"],
            "invalid value '0' for '--batch-size",
        ),
        (
            vec!["--model", "karma/constant", "--datasets", "medqa", "--dataset-args", "medqa:colour=red"],
            "error: unknown argument `colour` for dataset `openlifescienceai/medqa`",
        ),
        (
            vec![
                "--model",
                "karma/constant",
                "--datasets",
                "medqa",
                "--dataset-args",
                "pubmedqa:data_files=q.jsonl",
            ],
            "dataset arguments given for `pubmedqa`, which is not in --datasets",
        ),
        (
            vec!["--model", "karma/constant", "--datasets", "medqa", "--dataset-args", "medqa"],
            "invalid dataset argument `medqa`",
        ),
        (
            vec![
                "--model",
                "karma/constant",
                "--datasets",
                "medqa",
                "--dataset-arg",
                "medqa.data_files=missing.jsonl",
            ],
            "dataset file `missing.jsonl` does not exist",
        ),
        (
            vec!["--model", "karma/constant", "--datasets", "medqa", "--metric-args", "rogue:x=1"],
            "--metric-args: unknown metric `rogue`",
        ),
        (
            vec!["--model", "karma/constant", "--datasets", "medqa", "--model-config", "nope.toml"],
            "cannot read --model-config `nope.toml`",
        ),
    ];
    for (args, expected) in cases {
        let run = env.eval(&args);
        assert_eq!(run.code, Some(2), "{args:?}\n{}", run.stderr);
        assert!(run.stderr.contains(expected), "{args:?}: expected {expected:?} in\n{}", run.stderr);
        assert!(!env.path("results.json").exists(), "{args:?} wrote results");
    }
}

#[test]
fn dry_run_prints_the_plan_without_loading_the_model() {
    let env = EvalEnv::new(&[fixture("chatty"), baseline_plugin()]);
    let questions = datagen::questions(6, 9);
    datagen::write_jsonl(&env.path("q.jsonl"), &datagen::openlifescience_rows(&questions, false));
    let base = [
        "--model",
        "fixture/chatty",
        "--datasets",
        "medqa",
        "--dataset-arg",
        "medqa.data_files=q.jsonl",
        "-v",
    ];
    let mut first = base.to_vec();
    first.extend(["--max-samples", "2"]);
    env.eval(&first).assert_code(0);
    std::fs::remove_file(env.path("results.json")).unwrap();
    let mut dry = base.to_vec();
    dry.push("--dry-run");
    let run = env.eval(&dry);
    run.assert_code(0);
    assert!(!run.stderr.contains("loading chatty"), "the model was loaded:\n{}", run.stderr);
    assert!(run.stdout.contains("samples:   6"), "{}", run.stdout);
    assert!(run.stdout.contains("cached:    2 of 6"), "{}", run.stdout);
    assert!(run.stdout.contains(&questions[0].question), "{}", run.stdout);
    assert!(!env.path("results.json").exists());
}

#[test]
fn local_mcq_files_are_evaluated_ad_hoc_in_csv_too() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    std::fs::write(
        env.path("mine.csv"),
        "id,question,options,answer\nx1,Pick B,\"{\"\"A\"\": \"\"no\"\", \"\"B\"\": \"\"yes\"\"}\",B\nx2,Pick A,\"[\"\"yes\"\", \"\"no\"\"]\",A\n",
    )
    .unwrap();
    let run = env.eval(&[
        "--model",
        "karma/first-option",
        "--datasets",
        "mine.csv",
        "--save-format",
        "csv",
        "--output",
        "results.csv",
    ]);
    run.assert_code(0);
    let csv = std::fs::read_to_string(env.path("results.csv")).unwrap();
    assert!(csv.starts_with("dataset,task_type,metric,score,"), "{csv}");
    assert!(csv.contains("mine.csv,mcqa,exact_match,0.5,"), "{csv}");

    let yaml_run = env.eval(&[
        "--model",
        "karma/first-option",
        "--datasets",
        "mine.csv",
        "--save-format",
        "yaml",
        "--output",
        "results.yaml",
    ]);
    yaml_run.assert_code(0);
    let yaml = std::fs::read_to_string(env.path("results.yaml")).unwrap();
    assert!(yaml.contains("\"datasets\":\n  \"mine.csv\":\n    \"metrics\":\n"), "{yaml}");
    assert!(yaml.contains("\"score\": 0.5\n"), "{yaml}");
}

#[test]
fn sigkill_mid_run_loses_at_most_the_batch_in_flight_and_the_rerun_resumes() {
    let env = EvalEnv::new(&[fixture("slow-echo")]);
    let questions = datagen::questions(40, 10);
    datagen::write_jsonl(&env.path("q.jsonl"), &datagen::openlifescience_rows(&questions, false));
    let args = env.args(&[
        "--model",
        "fixture/slow-echo",
        "--model-args",
        r#"{"delay_ms": 150}"#,
        "--datasets",
        "medqa",
        "--dataset-arg",
        "medqa.data_files=q.jsonl",
        "--batch-size",
        "2",
    ]);
    // Kill without warning once a few batches are committed.
    signal_after_commits(&env, &args, 6, libc::SIGKILL);
    let committed = env.cached_outputs();
    assert!((6..40).contains(&committed), "committed {committed}");
    assert_eq!(committed % 2, 0, "whole batches are committed");

    // Same configuration (part of the cache key), another batch size (not part of it).
    let resumed = env.eval(&[
        "--model",
        "fixture/slow-echo",
        "--model-args",
        r#"{"delay_ms": 150}"#,
        "--datasets",
        "medqa",
        "--dataset-arg",
        "medqa.data_files=q.jsonl",
        "--batch-size",
        "8",
    ]);
    resumed.assert_code(0);
    let entry = &env.results()["datasets"]["openlifescienceai/medqa"];
    assert_eq!(entry["cache_hits"].as_i64().unwrap(), committed, "committed items are not redone");
    assert_eq!(entry["cache_misses"].as_i64().unwrap(), 40 - committed);
    assert_eq!(entry["metrics"]["exact_match"]["num_samples"], 40);
}

#[test]
fn ctrl_c_commits_the_batch_in_flight_and_writes_partial_results() {
    let env = EvalEnv::new(&[fixture("slow-echo")]);
    datagen::write_jsonl(
        &env.path("q.jsonl"),
        &datagen::openlifescience_rows(&datagen::questions(40, 11), false),
    );
    let args = env.args(&[
        "--model",
        "fixture/slow-echo",
        "--datasets",
        "medqa",
        "--dataset-arg",
        "medqa.data_files=q.jsonl",
        "--batch-size",
        "2",
    ]);
    let status = signal_after_commits(&env, &args, 4, libc::SIGINT);
    assert_eq!(status.code(), Some(130));
    let results = env.results();
    assert_eq!(results["manifest"]["status"], "interrupted");
    let entry = &results["datasets"]["openlifescienceai/medqa"];
    assert_eq!(entry["status"], "interrupted");
    let evaluated = entry["num_items"].as_i64().unwrap();
    assert!((4..40).contains(&evaluated), "{entry}");
    assert_eq!(env.cached_outputs(), evaluated, "every evaluated item was committed");
    assert_eq!(entry["metrics"]["exact_match"]["num_samples"].as_i64().unwrap(), evaluated);
}

#[test]
fn two_concurrent_evaluations_share_one_cache() {
    let env = EvalEnv::new(&[fixture("slow-echo")]);
    datagen::write_jsonl(
        &env.path("a.jsonl"),
        &datagen::openlifescience_rows(&datagen::questions(12, 12), false),
    );
    datagen::write_jsonl(
        &env.path("b.jsonl"),
        &datagen::openlifescience_rows(&datagen::questions(12, 13), false),
    );
    let spawn = |file: &str, output: &str| {
        let data = format!("medqa.data_files={file}");
        let args = env.args(&[
            "--model",
            "fixture/slow-echo",
            "--model-args",
            r#"{"delay_ms": 20}"#,
            "--datasets",
            "medqa",
            "--dataset-arg",
            &data,
            "--batch-size",
            "1",
            "--output",
            output,
        ]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        karma_process(&refs, &[], Some(env.work.path()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = spawn("a.jsonl", "a.json");
    let second = spawn("b.jsonl", "b.json");
    for child in [first, second] {
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    }
    assert_eq!(env.cached_outputs(), 24);
}

#[test]
fn secrets_in_the_model_configuration_never_reach_output_files() {
    let env = EvalEnv::new(&[fixture("chatty")]);
    datagen::write_jsonl(
        &env.path("q.jsonl"),
        &datagen::openlifescience_rows(&datagen::questions(2, 14), false),
    );
    let base = [
        "--model",
        "fixture/chatty",
        "--datasets",
        "medqa",
        "--dataset-arg",
        "medqa.data_files=q.jsonl",
        "--model-args",
        r#"{"api_key": "sk-live-123", "hf_token": "hf_secret", "max_tokens": 5}"#,
    ];
    let mut args = base.to_vec();
    args.extend(["--samples-output", "s.jsonl", "--format", "json"]);
    let run = env.eval(&args);
    run.assert_code(0);
    let mut dry = base.to_vec();
    dry.push("--dry-run");
    let dry_run = env.eval(&dry);
    dry_run.assert_code(0);
    let files = [
        std::fs::read_to_string(env.path("results.json")).unwrap(),
        std::fs::read_to_string(env.path("s.jsonl")).unwrap(),
    ];
    for text in files.iter().chain([&run.stdout, &run.stderr, &dry_run.stdout, &dry_run.stderr]) {
        assert!(!text.contains("sk-live-123") && !text.contains("hf_secret"), "a secret leaked:\n{text}");
    }
    assert_eq!(
        env.results()["manifest"]["model"]["config"],
        serde_json::json!({"api_key": "***", "hf_token": "***", "max_tokens": 5})
    );
}

/// Runs `karma-host` in `env`'s directory with stderr on a pseudo-terminal (120 columns) and
/// returns what it wrote there.
fn stderr_on_a_terminal(env: &EvalEnv, args: &[&str]) -> String {
    use std::{
        io::Read,
        os::fd::{FromRawFd, OwnedFd},
    };

    // Both ends close on exec: children other tests spawn meanwhile must not hold the terminal
    // (reading ends only when every holder has exited). The child gets it as its stderr.
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: plain libc calls on a descriptor this function owns; `name` is NUL-terminated
    // by ptsname_r.
    let (controller, terminal) = unsafe {
        let controller = libc::posix_openpt(flags);
        assert!(controller >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        let controller = std::fs::File::from_raw_fd(controller);
        let raw = std::os::fd::AsRawFd::as_raw_fd(&controller);
        assert_eq!(libc::grantpt(raw) | libc::unlockpt(raw), 0, "{}", std::io::Error::last_os_error());
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(raw, name.as_mut_ptr(), name.len()), 0);
        let terminal = libc::open(name.as_ptr(), flags);
        assert!(terminal >= 0, "open terminal: {}", std::io::Error::last_os_error());
        let size = libc::winsize { ws_row: 40, ws_col: 120, ws_xpixel: 0, ws_ypixel: 0 };
        assert_eq!(libc::ioctl(terminal, libc::TIOCSWINSZ, &size), 0);
        (controller, OwnedFd::from_raw_fd(terminal))
    };
    let mut child = karma_process(args, &[], Some(env.work.path()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(terminal))
        .spawn()
        .expect("run karma-host");
    // The child holds the terminal's only descriptor: reading ends (EIO) when it exits.
    let reader = std::thread::spawn(move || {
        let mut written = Vec::new();
        let _ = (&controller).read_to_end(&mut written);
        written
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("karma-host did not finish within 120 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let written = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    assert_eq!(status.code(), Some(0), "{written}");
    written
}

#[test]
fn progress_bars_show_counts_eta_and_cache_hits_on_a_terminal_only() {
    let env = EvalEnv::new(&[fixture("slow-echo")]);
    datagen::write_jsonl(
        &env.path("q.jsonl"),
        &datagen::openlifescience_rows(&datagen::questions(12, 5), false),
    );
    datagen::write_medmcqa_parquet(&env.path("m.parquet"), &datagen::questions(7, 6));
    let mut owned = env.args(&[
        "--model",
        "fixture/slow-echo",
        "--model-args",
        r#"{"delay_ms": 60}"#,
        "--batch-size",
        "2",
        "--datasets",
        "medqa,medmcqa",
        "--dataset-args",
        "medqa:data_files=q.jsonl;medmcqa:data_files=m.parquet",
    ]);
    owned.retain(|arg| arg != "--no-progress");
    let mut args: Vec<&str> = owned.iter().map(String::as_str).collect();
    // Row counts come from the files (no --max-samples): JSONL lines, the parquet footer. So
    // the bars have a length and an ETA.
    let first = stderr_on_a_terminal(&env, &args);
    assert!(first.contains("/12 (") && first.contains("/7 ("), "{first}");
    assert!(first.contains("items/s, eta "), "{first}");
    assert!(first.contains("openlifescienceai/medqa: 12 items, 0 cached"), "{first}");
    assert!(first.contains("openlifescienceai/medmcqa: 7 items, 0 cached"), "{first}");
    let second = stderr_on_a_terminal(&env, &args);
    assert!(second.contains("openlifescienceai/medqa: 12 items, 12 cached"), "{second}");

    // No bar when asked not to, or when stderr is not a terminal.
    args.push("--no-progress");
    let quiet = stderr_on_a_terminal(&env, &args);
    assert!(!quiet.contains("eta") && !quiet.contains("cached"), "{quiet}");
    args.pop();
    let piped = karma_command(&args, &[], Some(env.work.path()));
    piped.assert_code(0);
    assert!(!piped.stderr.contains("eta") && !piped.stderr.contains("cached"), "{}", piped.stderr);
}
