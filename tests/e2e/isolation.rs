use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::harness::{fixture, karma_command, Workdir};

const MODEL: &str = "fixture/crash-on-item";

/// Twelve MCQ rows; rows 3 and 8 (or the rows in `poison`) carry the word that kills the model.
/// The model always answers A, and even rows' answer is A.
fn dataset(work: &Workdir, poison: &[usize]) -> PathBuf {
    let rows: Vec<String> = (0..12)
        .map(|index| {
            let marker = if poison.contains(&index) { " POISON" } else { "" };
            json!({
                "id": format!("q{index}"),
                "question": format!("Which option is number {index}{marker}?"),
                "options": ["alpha", "beta", "gamma", "delta"],
                "answer": if index % 2 == 0 { "A" } else { "B" },
            })
            .to_string()
        })
        .collect();
    work.write("items.jsonl", rows.join("\n") + "\n")
}

struct Eval {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    results: Value,
    samples: Vec<Value>,
}

fn eval(work: &Workdir, plugins: &Path, extra: &[&str], env: &[(&str, &str)]) -> Eval {
    let data = work.path().join("items.jsonl");
    let results = work.path().join("results.json");
    let samples = work.path().join("samples.jsonl");
    let mut args = vec![
        "--plugins-dir",
        plugins.to_str().unwrap(),
        "eval",
        "--model",
        MODEL,
        "--datasets",
        data.to_str().unwrap(),
        "--batch-size",
        "4",
        "--no-progress",
        "--output",
        results.to_str().unwrap(),
        "--samples-output",
        samples.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let cache = work.path().join("cache.db");
    let mut env = env.to_vec();
    let cache = cache.to_str().unwrap().to_owned();
    env.push(("KARMA_CACHE_PATH", &cache));
    let run = karma_command(&args, &env, None);
    let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
    Eval {
        code: run.code,
        stdout: run.stdout,
        stderr: run.stderr.clone(),
        results: serde_json::from_str(&read(&results)).unwrap_or(Value::Null),
        samples: read(&samples).lines().map(|line| serde_json::from_str(line).unwrap()).collect(),
    }
}

/// The dataset's entry in results.json.
fn dataset_results(results: &Value) -> &Value {
    let datasets = results["datasets"].as_object().expect("datasets");
    datasets.values().next().expect("one dataset")
}

/// Checks that exactly `poison` failed with `code`, the others were scored, and accuracy is
/// that of the others (computed here from the rows: even rows are right).
fn assert_quarantined(run: &Eval, poison: &[usize], code: &str, cause: &str) {
    assert_eq!(run.code, Some(1), "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let dataset = dataset_results(&run.results);
    assert_eq!(dataset["status"], "completed_with_failures", "{dataset}");
    assert_eq!(dataset["num_failed"], poison.len(), "{dataset}");
    let scored: Vec<usize> = (0..12).filter(|index| !poison.contains(index)).collect();
    let right = scored.iter().filter(|index| *index % 2 == 0).count();
    let accuracy = dataset["metrics"]["accuracy"]["score"].as_f64().expect("accuracy");
    assert!((accuracy - right as f64 / scored.len() as f64).abs() < 1e-12, "{dataset}");
    assert_eq!(dataset["metrics"]["accuracy"]["num_samples"], scored.len(), "{dataset}");
    assert_eq!(run.samples.len(), 12);
    for sample in &run.samples {
        let index: usize = sample["id"].as_str().unwrap()[1..].parse().unwrap();
        if poison.contains(&index) {
            let error = sample["error"].as_str().expect("poison items carry an error");
            assert!(error.contains("poison item, quarantined") && error.contains(cause), "{error}");
            assert!(error.ends_with(&format!("({code})")), "{error}");
            assert!(sample["raw_output"].is_null());
        } else {
            assert!(sample["error"].is_null(), "{sample}");
            assert_eq!(sample["raw_output"], "Final Answer: (A)", "plugin stdout stays out of replies");
        }
    }
}

#[test]
fn a_segfaulting_item_is_quarantined_and_the_cache_keeps_every_other_row() {
    let work = Workdir::new();
    let plugins = work.plugins_dir("plugins", &[fixture("crash-on-item")]);
    dataset(&work, &[3, 8]);
    let args = ["--isolation", "worker", "--model-args", r#"{"mode":"segfault"}"#];
    let first = eval(&work, &plugins, &args, &[]);
    assert_quarantined(&first, &[3, 8], "worker_crashed", "killed by signal 11 (SIGSEGV)");
    assert_eq!(first.results["manifest"]["isolation"]["mode"], "worker");
    // The plugin's own stdout went to stderr, not into the results or replies.
    assert!(first.stderr.contains("crash-on-item: a batch of"), "{}", first.stderr);
    assert!(!first.stdout.contains("crash-on-item:"), "{}", first.stdout);
    // Every committed row is in the cache: a second run hits all ten and retries the two.
    let second = eval(&work, &plugins, &args, &[]);
    assert_quarantined(&second, &[3, 8], "worker_crashed", "SIGSEGV");
    assert_eq!(dataset_results(&second.results)["cache_hits"], 10);

    // The control: in process, the same item kills karma-host itself.
    let in_process = eval(&work, &plugins, &["--model-args", r#"{"mode":"segfault"}"#, "--no-cache"], &[]);
    assert_eq!(in_process.code, None, "killed by a signal: {}", in_process.stderr);
    // The next run of the model says what happened, once, and what to do about it.
    let next = eval(&work, &plugins, &args, &[]);
    assert_quarantined(&next, &[3, 8], "worker_crashed", "SIGSEGV");
    assert!(
        next.stderr.contains("the last in-process run of model `fixture/crash-on-item`")
            && next.stderr.contains(
                "was killed by signal 11 (SIGSEGV), most likely from plugin code; `--isolation worker`"
            ),
        "{}",
        next.stderr
    );
    let after = eval(&work, &plugins, &args, &[]);
    assert!(!after.stderr.contains("the last in-process run"), "{}", after.stderr);
}

#[test]
fn aborts_exits_hangs_and_runaway_allocation_are_each_quarantined() {
    for (mode, code, cause, extra, env) in [
        ("abort", "worker_crashed", "killed by signal 6 (SIGABRT)", None, None),
        ("exit", "worker_exited", "exited with status 0", None, None),
        ("hang", "worker_timeout", "ran past the 1 s batch timeout", Some("1"), None),
        // Under the worker's address-space limit the allocator fails and Rust aborts.
        ("oom", "worker_crashed", "killed by signal", None, Some(("KARMA_WORKER_MEMORY_LIMIT_MIB", "2048"))),
    ] {
        let work = Workdir::new();
        let plugins = work.plugins_dir("plugins", &[fixture("crash-on-item")]);
        dataset(&work, &[5]);
        let model_args = format!(r#"{{"mode":"{mode}"}}"#);
        let mut args = vec!["--isolation", "worker", "--no-cache", "--model-args", &model_args];
        if let Some(timeout) = extra {
            args.extend(["--batch-timeout", timeout]);
        }
        let env: Vec<(&str, &str)> = env.into_iter().collect();
        let started = std::time::Instant::now();
        let run = eval(&work, &plugins, &args, &env);
        assert_quarantined(&run, &[5], code, cause);
        if mode == "hang" {
            // A batch of 4, its half, the item alone and once more: four timeouts.
            let elapsed = started.elapsed().as_secs_f64();
            assert!((3.5..30.0).contains(&elapsed), "{mode}: {elapsed} s");
        }
    }
}

#[test]
fn workers_that_die_at_load_are_one_clear_failure_after_three_tries() {
    let work = Workdir::new();
    let plugins = work.plugins_dir("plugins", &[fixture("crash-on-item")]);
    dataset(&work, &[]);
    let run = eval(
        &work,
        &plugins,
        &["--isolation", "worker", "--no-cache", "--model-args", r#"{"load_mode":"abort"}"#],
        &[],
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let error = dataset_results(&run.results)["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("3 workers in a row died while starting or loading the model; the last was killed by signal 6 (SIGABRT)"),
        "{error}"
    );
    assert_eq!(run.stderr.matches("attempt ").count(), 3, "{}", run.stderr);
}

#[test]
fn the_configuration_file_sets_isolation_per_plugin_and_the_flag_wins() {
    let work = Workdir::new();
    let plugins = work.plugins_dir("plugins", &[fixture("crash-on-item")]);
    dataset(&work, &[2]);
    let config = work.write(
        "config.toml",
        "batch_timeout_secs = 30\n[plugins.\"libfixture_crash_on_item.so\"]\nisolation = \"worker\"\n",
    );
    let config = config.to_str().unwrap();
    let args = ["--no-cache", "--model-args", r#"{"mode":"abort"}"#];
    let run_with = |extra: &[&str], env: &[(&str, &str)]| {
        let all: Vec<&str> = args.iter().chain(extra).copied().collect();
        eval(&work, &plugins, &all, env)
    };
    let configured = run_with(&[], &[("KARMA_CONFIG", config)]);
    assert_eq!(configured.code, Some(1), "{}", configured.stderr);
    let written = &configured.results;
    assert_eq!(written["manifest"]["isolation"], json!({"mode": "worker", "batch_timeout_secs": 30}));
    assert_eq!(dataset_results(written)["num_failed"], 1);

    let overridden = run_with(&["--isolation", "in-process"], &[("KARMA_CONFIG", config)]);
    assert_eq!(overridden.code, None, "in process, the abort kills karma-host: {}", overridden.stderr);

    let broken = work.write("broken.toml", "isolation = \"sandbox\"\n");
    let refused = run_with(&[], &[("KARMA_CONFIG", broken.to_str().unwrap())]);
    assert_eq!(refused.code, Some(2));
    assert!(refused.stderr.contains("broken.toml` is not valid"), "{}", refused.stderr);
    let missing = run_with(&[], &[("KARMA_CONFIG", "/nonexistent/karma.toml")]);
    assert_eq!(missing.code, Some(2));
    assert!(
        missing.stderr.contains("cannot read the karma-host configuration `/nonexistent/karma.toml`"),
        "{}",
        missing.stderr
    );
}

/// A terminal's Ctrl-C reaches the whole process group: the worker must ignore it and finish
/// the batch in flight, which karma-host commits before it stops.
#[test]
fn ctrl_c_to_the_process_group_is_karma_hosts_to_handle_not_the_workers() {
    use crate::{
        datagen,
        eval_env::{signal_after_commits_in, EvalEnv, Target},
    };
    let env = EvalEnv::new(&[fixture("slow-echo")]);
    datagen::write_jsonl(
        &env.path("q.jsonl"),
        &datagen::openlifescience_rows(&datagen::questions(40, 21), false),
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
        "--isolation",
        "worker",
    ]);
    let status = signal_after_commits_in(&env, &args, 4, libc::SIGINT, Target::Group);
    assert_eq!(status.code(), Some(130));
    // (A worker killed by the Ctrl-C would have been replaced and its batch retried: the
    // results alone would not tell.)
    let log = std::fs::read_to_string(env.path("stderr.log")).unwrap();
    assert!(!log.contains("the worker was killed by signal"), "{log}");
    let results = env.results();
    assert_eq!(results["manifest"]["status"], "interrupted");
    let entry = &results["datasets"]["openlifescienceai/medqa"];
    assert_eq!(entry["num_failed"], 0, "{entry}");
    let evaluated = entry["num_items"].as_i64().unwrap();
    assert!((4..40).contains(&evaluated), "{entry}");
    assert_eq!(env.cached_outputs(), evaluated, "every evaluated item was committed");
}

#[test]
fn run_in_a_worker_fails_only_the_item_that_crashes_it() {
    let work = Workdir::new();
    let plugins = work.plugins_dir("plugins", &[fixture("crash-on-item")]);
    let inputs = ["first question", "a POISON question", "third question"];
    let mut args = vec![
        "--plugins-dir",
        plugins.to_str().unwrap(),
        "run",
        "--model",
        MODEL,
        "--model-args",
        r#"{"mode":"segfault"}"#,
        "--isolation",
        "worker",
    ];
    for input in &inputs {
        args.extend(["--input", input]);
    }
    let run = crate::harness::karma(&args, &[]);
    run.assert_code(1);
    let lines = run.json_lines();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert_eq!((lines[0]["id"].as_u64(), lines[0]["output"].as_str()), (Some(0), Some("Final Answer: (A)")));
    assert_eq!(lines[1]["id"], 1);
    let message = lines[1]["error"]["message"].as_str().unwrap();
    assert!(message.contains("poison item, quarantined") && message.contains("SIGSEGV"), "{message}");
    assert_eq!(lines[2]["output"], "Final Answer: (A)");
}
