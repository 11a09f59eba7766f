//! What a careless or unlucky user can do to an evaluation: outputs aimed at inputs, signals,
//! full disks, bad rows, locked caches, odd arguments. Nothing already computed is lost, and
//! every failure names what and where.

use std::{os::unix::process::CommandExt, path::Path};

use serde_json::{json, Value};

use crate::{
    datagen::{self, Question},
    eval_env::{signal_after_commits, EvalEnv},
    harness::{baseline_plugin, fixture, karma_process, Run},
};

/// Ad-hoc local MCQ rows (`question`, `options`, `answer`, `id`).
fn local_rows(questions: &[Question]) -> Vec<Value> {
    questions
        .iter()
        .map(|q| {
            let options: serde_json::Map<String, Value> =
                q.options.iter().map(|(letter, text)| (letter.clone(), text.clone().into())).collect();
            json!({"id": q.id, "question": q.question, "options": options, "answer": q.answer})
        })
        .collect()
}

fn jsonl(rows: &[Value]) -> String {
    rows.iter().map(|row| format!("{row}\n")).collect()
}

/// A local dataset of `count` questions at `name`; returns its bytes.
fn write_dataset(env: &EvalEnv, name: &str, count: usize) -> Vec<u8> {
    let text = jsonl(&local_rows(&datagen::questions(count, 5)));
    std::fs::write(env.path(name), &text).unwrap();
    text.into_bytes()
}

fn first_option(env: &EvalEnv, extra: &[&str]) -> Run {
    let mut args = vec!["--model", "karma/first-option"];
    args.extend_from_slice(extra);
    env.eval(&args)
}

/// `karma-host eval` in the work dir with `args` only (no preset cache path).
fn eval_with_cache(env: &EvalEnv, cache: &str, extra: &[&str]) -> Run {
    let plugins = env.plugins.display().to_string();
    let mut args = vec!["--plugins-dir", plugins.as_str(), "eval", "--no-progress", "--cache-path", cache];
    args.extend_from_slice(&["--model", "karma/first-option"]);
    args.extend_from_slice(extra);
    crate::harness::karma_command(&args, &[], Some(env.work.path()))
}

fn assert_stderr(run: &Run, needle: &str) {
    assert!(run.stderr.contains(needle), "stderr lacks {needle:?}:\n{}", run.stderr);
}

#[test]
fn an_output_that_is_an_input_is_refused_before_anything_runs() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    let original = write_dataset(&env, "victim.jsonl", 4);
    std::os::unix::fs::symlink(env.path("victim.jsonl"), env.path("alias.jsonl")).unwrap();
    std::fs::create_dir(env.path("data")).unwrap();
    write_dataset(&env, "data/part.jsonl", 3);
    let plugin = env.plugins.join("libkarma_plugin_baseline.so");
    let plugin = plugin.to_str().unwrap();
    let cases: [(&[&str], &str); 8] = [
        (
            &["--datasets", "victim.jsonl", "--output", "victim.jsonl"],
            "--output `victim.jsonl` is dataset file",
        ),
        (&["--datasets", "victim.jsonl", "--output", "./alias.jsonl"], "is dataset file"),
        (
            &["--datasets", "victim.jsonl", "--samples-output", "victim.jsonl"],
            "--samples-output `victim.jsonl`",
        ),
        (
            &["--datasets", "victim.jsonl", "--output", "x.json", "--samples-output", "./x.json"],
            "the --samples-output file",
        ),
        (&["--datasets", "data", "--output", "data/results.json"], "inside dataset directory"),
        (&["--datasets", "data", "--output", "data/new/results.json"], "inside dataset directory"),
        (&["--datasets", "victim.jsonl", "--output", "cache.sqlite"], "is the cache"),
        (&["--datasets", "victim.jsonl", "--output", plugin], "is the plugin"),
    ];
    // The cache must exist for its identity to be compared as an existing file.
    first_option(&env, &["--datasets", "victim.jsonl", "--output", "first.json"]).assert_code(0);
    for (args, message) in cases {
        let run = first_option(&env, args);
        run.assert_code(2);
        assert_stderr(&run, message);
        assert_stderr(&run, "writing it would destroy data");
    }
    assert_eq!(std::fs::read(env.path("victim.jsonl")).unwrap(), original, "the dataset is untouched");
    assert!(!env.path("data/results.json").exists() && !env.path("data/new").exists());
    assert!(std::fs::metadata(env.plugins.join("libkarma_plugin_baseline.so")).unwrap().len() > 10_000);
}

#[test]
fn an_unwritable_output_is_found_before_the_model_loads() {
    let env = EvalEnv::new(&[fixture("slow-echo")]);
    write_dataset(&env, "q.jsonl", 4);
    std::fs::create_dir(env.path("outdir")).unwrap();
    std::fs::write(env.path("plain-file"), "x").unwrap();
    for (output, message) in
        [("outdir", "it is a directory"), ("plain-file/results.json", "cannot create its folder")]
    {
        // The first call builds the binary: not part of what is timed.
        crate::harness::host_binary();
        let started = std::time::Instant::now();
        let run = env.eval(&[
            "--model",
            "fixture/slow-echo",
            "--model-args",
            r#"{"delay_ms": 20000}"#,
            "--datasets",
            "q.jsonl",
            "--no-cache",
            "--output",
            output,
        ]);
        run.assert_code(2);
        assert_stderr(&run, &format!("--output `{output}` cannot be written: {message}"));
        assert!(started.elapsed().as_secs() < 15, "refused before the model ran (it sleeps 20 s per batch)");
    }
}

/// Starts karma-host with a file size limit (as a full disk would stop it) and SIGXFSZ ignored,
/// so writes past the limit fail with EFBIG instead of killing the process.
fn eval_with_file_size_limit(env: &EvalEnv, extra: &[&str], limit: u64) -> Run {
    let args = env.args(extra);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let tmp = env.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut command = karma_process(&refs, &[("TMPDIR", tmp.to_str().unwrap())], Some(env.work.path()));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let rlimit = libc::rlimit { rlim_cur: limit, rlim_max: limit };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &rlimit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let output = command.output().unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn leftover_temporary_files(directory: &Path) -> Vec<String> {
    std::fs::read_dir(directory)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp") || name.starts_with(".karma-write-check"))
        .collect()
}

#[test]
fn a_full_disk_never_leaves_half_a_samples_line_or_a_temporary_file() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    // Samples are written a window (512 items) at a time: half the full file's size falls in
    // the second window.
    write_dataset(&env, "q.jsonl", 1500);
    let args = [
        "--model",
        "karma/first-option",
        "--datasets",
        "q.jsonl",
        "--no-cache",
        "--samples-output",
        "s.jsonl",
    ];
    env.eval(&args).assert_code(0);
    let full_size = std::fs::metadata(env.path("s.jsonl")).unwrap().len();
    let run = eval_with_file_size_limit(&env, &args, full_size / 2);
    run.assert_code(1);
    assert_stderr(&run, "cannot write samples to `s.jsonl`");
    let samples = std::fs::read_to_string(env.path("s.jsonl")).unwrap();
    assert!(samples.ends_with('\n'), "only whole lines");
    assert_eq!(samples.lines().count(), 512, "the first window's lines are kept");
    for line in samples.lines() {
        serde_json::from_str::<Value>(line).unwrap();
    }
    // The scores did not depend on the samples file.
    let entry = &env.results()["datasets"]["q.jsonl"];
    assert_eq!(entry["metrics"]["exact_match"]["num_samples"], 1500, "{entry}");

    // Now the results file itself cannot be written: no temporary file is left, and the
    // results are printed instead (the fallback file in $TMPDIR hits the same limit).
    let run = eval_with_file_size_limit(
        &env,
        &["--model", "karma/first-option", "--datasets", "q.jsonl", "--no-cache", "--output", "big.json"],
        600,
    );
    run.assert_code(1);
    assert_stderr(&run, "cannot write results to `big.json`");
    assert_stderr(&run, "the results are kept on stdout");
    let printed: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(printed["datasets"]["q.jsonl"]["metrics"]["exact_match"]["num_samples"], 1500);
    assert_eq!(leftover_temporary_files(env.work.path()), Vec::<String>::new());
    assert_eq!(leftover_temporary_files(&env.path("tmp")), Vec::<String>::new());
    assert!(!env.path("big.json").exists());
}

#[test]
fn results_that_cannot_be_written_at_the_end_are_kept_in_tmpdir() {
    let env = EvalEnv::new(&[fixture("slow-echo")]);
    write_dataset(&env, "q.jsonl", 40);
    std::fs::create_dir(env.path("out")).unwrap();
    let tmp = env.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let args = env.args(&[
        "--model",
        "fixture/slow-echo",
        "--model-args",
        r#"{"delay_ms": 150}"#,
        "--datasets",
        "q.jsonl",
        "--batch-size",
        "2",
        "--output",
        "out/results.json",
    ]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = karma_process(&refs, &[("TMPDIR", tmp.to_str().unwrap())], Some(env.work.path()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The output folder disappears mid-run and a plain file takes its place.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while (!env.path("cache.sqlite").exists() || env.cached_outputs() < 2)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::fs::remove_dir_all(env.path("out")).unwrap();
    std::fs::write(env.path("out"), "not a folder").unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot write results to `out/results.json`"), "{stderr}");
    let kept: Vec<_> = std::fs::read_dir(&tmp).unwrap().map(|entry| entry.unwrap().path()).collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let name = kept[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("karma-results-") && name.ends_with(".json"), "{name}");
    assert!(stderr.contains(&format!("the results are kept in `{}`", kept[0].display())), "{stderr}");
    let results: Value = serde_json::from_slice(&std::fs::read(&kept[0]).unwrap()).unwrap();
    assert_eq!(results["datasets"]["q.jsonl"]["metrics"]["exact_match"]["num_samples"], 40);
}

#[test]
fn sigterm_and_sighup_write_partial_results_like_ctrl_c() {
    for (signal, code) in [(libc::SIGTERM, 143), (libc::SIGHUP, 129)] {
        let env = EvalEnv::new(&[fixture("slow-echo")]);
        write_dataset(&env, "q.jsonl", 40);
        let args = env.args(&["--model", "fixture/slow-echo", "--datasets", "q.jsonl", "--batch-size", "2"]);
        let status = signal_after_commits(&env, &args, 4, signal);
        assert_eq!(status.code(), Some(code), "signal {signal}");
        let results = env.results();
        assert_eq!(results["manifest"]["status"], "interrupted");
        let entry = &results["datasets"]["q.jsonl"];
        assert_eq!(entry["status"], "interrupted");
        let evaluated = entry["num_items"].as_i64().unwrap();
        assert!((4..40).contains(&evaluated), "{entry}");
        assert_eq!(env.cached_outputs(), evaluated, "the batch in flight was committed");
    }
}

#[test]
fn a_bad_row_is_a_recorded_failure_and_the_other_rows_are_scored() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    let questions = datagen::questions(10, 9);
    let mut rows: Vec<String> = local_rows(&questions).iter().map(Value::to_string).collect();
    rows[5] = "{\"id\": \"q9-5\", \"question\": \"broken".to_owned();
    rows[7] = json!({"id": "no-options", "question": "Q?", "answer": "A"}).to_string();
    std::fs::write(env.path("q.jsonl"), rows.join("\n") + "\n").unwrap();
    let scored: Vec<&Question> =
        questions.iter().enumerate().filter(|(index, _)| ![5, 7].contains(index)).map(|(_, q)| q).collect();
    let expected = scored.iter().filter(|q| q.answer == "A").count() as f64 / 8.0;

    let run = first_option(&env, &["--datasets", "q.jsonl", "--samples-output", "s.jsonl"]);
    run.assert_code(1);
    let results = env.results();
    assert_eq!(results["manifest"]["status"], "completed_with_failures");
    let entry = &results["datasets"]["q.jsonl"];
    assert_eq!(entry["status"], "completed_with_failures");
    assert_eq!(entry["num_failed"], 2);
    assert_eq!(entry["num_bad_rows"], 2);
    assert_eq!(entry["metrics"]["exact_match"]["num_samples"], 8);
    assert!((entry["metrics"]["exact_match"]["score"].as_f64().unwrap() - expected).abs() < 1e-12);
    assert_eq!(entry["bad_rows"][0]["row"], 6);
    assert_eq!(entry["bad_rows"][1]["row"], 8);
    let samples = env.samples("s.jsonl");
    assert_eq!(samples.len(), 10, "one line per row, in row order");
    assert_eq!(samples[5]["row"], 6);
    assert_eq!(samples[5]["id"], Value::Null);
    assert_eq!(samples[5]["error"]["code"], "bad_row");
    assert!(samples[5]["error"]["message"].as_str().unwrap().contains("invalid JSON"));
    assert_eq!(samples[7]["id"], "no-options");
    assert!(samples[7]["error"]["message"].as_str().unwrap().contains("field `options`"), "{}", samples[7]);
    assert_eq!(samples[6]["id"], questions[6].id);

    // The dry run reads as the run does: it counts the bad rows and says which comes first.
    let dry = first_option(&env, &["--datasets", "q.jsonl", "--dry-run"]);
    dry.assert_code(1);
    assert!(dry.stdout.contains("samples:   8"), "{}", dry.stdout);
    assert!(
        dry.stdout.contains("bad rows:  2 (recorded as failures; first: `q.jsonl` row 6: invalid JSON"),
        "{}",
        dry.stdout
    );

    // A bad row counts toward --max-samples.
    first_option(&env, &["--datasets", "q.jsonl", "--max-samples", "6"]).assert_code(1);
    let entry = &env.results()["datasets"]["q.jsonl"];
    assert_eq!(entry["num_items"], 6);
    assert_eq!(entry["metrics"]["exact_match"]["num_samples"], 5);

    // --strict stops at the first one.
    let run = first_option(&env, &["--datasets", "q.jsonl", "--strict"]);
    run.assert_code(2);
    let entry = &env.results()["datasets"]["q.jsonl"];
    assert_eq!(entry["status"], "failed");
    assert!(entry["error"].as_str().unwrap().contains("q.jsonl` row 6: invalid JSON"), "{entry}");
    assert_eq!(env.results()["manifest"]["status"], "failed");
}

#[test]
fn json_array_and_parquet_errors_name_the_broken_row_counted_from_one() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    let rows = local_rows(&datagen::questions(2, 4));
    std::fs::write(env.path("a.json"), format!("[{}, {{\"id\": \"q4-1\", \"quest", rows[0])).unwrap();
    // A broken element ends the array: how many rows follow is unknown, so the file is unreadable.
    let run = first_option(&env, &["--datasets", "a.json"]);
    run.assert_code(2);
    let error = env.results()["datasets"]["a.json"]["error"].as_str().unwrap().to_owned();
    assert!(error.contains("a.json`: row 2: invalid JSON"), "{error}");

    // A file whose every row is bad is of another shape: failed, not a few bad rows.
    std::fs::write(
        env.path("wrong.jsonl"),
        "{\"question\": \"Q\", \"options\": [\"a\"], \"answer\": \"Z\"}\n".repeat(3),
    )
    .unwrap();
    let run = first_option(&env, &["--datasets", "wrong.jsonl"]);
    run.assert_code(2);
    let error = env.results()["datasets"]["wrong.jsonl"]["error"].as_str().unwrap().to_owned();
    assert!(error.starts_with("every row is bad (3); first: `wrong.jsonl` row 1: field `answer`"), "{error}");

    std::fs::write(env.path("b.parquet"), b"PAR1 this is not parquet PAR1").unwrap();
    // Refused at planning: reading its first row (to tell its task) fails.
    let run = first_option(&env, &["--datasets", "b.parquet"]);
    run.assert_code(2);
    assert!(run.stderr.contains("b.parquet`: not a readable parquet file"), "{}", run.stderr);
    assert!(!run.stderr.contains("row 0"), "{}", run.stderr);
}

#[test]
fn an_empty_dataset_is_refused_at_planning() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    std::fs::write(env.path("blank.jsonl"), "\n  \n\t\n").unwrap();
    std::fs::write(env.path("empty.csv"), "question,options,answer\n").unwrap();
    for name in ["blank.jsonl", "empty.csv"] {
        let run = first_option(&env, &["--datasets", name]);
        run.assert_code(2);
        assert_stderr(&run, &format!("dataset `{name}`: `{name}` has no rows"));
    }
    assert!(!env.path("results.json").exists());
}

#[test]
fn repeated_datasets_and_ids_are_reported() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    let mut rows = local_rows(&datagen::questions(6, 3));
    rows[3]["id"] = rows[1]["id"].clone();
    rows[4]["id"] = rows[1]["id"].clone();
    rows[5]["id"] = json!({"nested": 1});
    std::fs::write(env.path("q.jsonl"), jsonl(&rows)).unwrap();
    let run = first_option(&env, &["--datasets", "q.jsonl,./q.jsonl"]);
    run.assert_code(0);
    assert_stderr(&run, "dataset `./q.jsonl` is listed more than once");
    assert_stderr(&run, "2 row(s) repeat an id of an earlier row (first: `q3-1`");
    assert_stderr(&run, "1 row(s) have a null, object or list `id`");
    let results = env.results();
    let datasets = results["datasets"].as_object().unwrap();
    assert_eq!(datasets.len(), 1);
    assert_eq!(datasets["q.jsonl"]["duplicate_ids"], json!({"count": 2, "first": ["q3-1", "q3-1"]}));
    assert_eq!(datasets["q.jsonl"]["ids_from_row_number"], 1);
    assert_eq!(datasets["q.jsonl"]["metrics"]["exact_match"]["num_samples"], 6, "all rows are evaluated");
}

#[test]
fn a_dataset_path_with_a_comma_is_one_dataset() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    write_dataset(&env, "with,comma.jsonl", 3);
    write_dataset(&env, "plain.jsonl", 2);
    first_option(&env, &["--datasets", "with,comma.jsonl,plain.jsonl"]).assert_code(0);
    let results = env.results();
    assert_eq!(results["datasets"]["with,comma.jsonl"]["num_items"], 3);
    assert_eq!(results["datasets"]["plain.jsonl"]["num_items"], 2);
}

#[test]
fn secrets_in_model_configs_never_reach_results_dry_runs_or_logs() {
    let env = EvalEnv::new(&[fixture("chatty")]);
    write_dataset(&env, "q.jsonl", 2);
    let config = json!({
        "accessToken": "tok-visible-1", "auth": "auth-visible-2", "bearer": "bearer-visible-3",
        "openai_key": "key-visible-4", "nested": {"clientSecret": "secret-visible-5"},
        "headers": {"X-Anything": "Bearer bearer-visible-6"}, "extra": ["sk-visible7abcdefgh"],
        "max_tokens": 7, "author": "Ada", "api_key_env": "MY_KEY_VARIABLE",
    })
    .to_string();
    let secrets = ["visible-1", "visible-2", "visible-3", "visible-4", "visible-5", "visible-6", "visible7"];
    let base = ["--model", "fixture/chatty", "--datasets", "q.jsonl", "--model-args", config.as_str()];
    let run = env.eval(&[&base[..], &["-vvv"]].concat());
    run.assert_code(0);
    let dry = env.eval(&[&base[..], &["--dry-run"]].concat());
    dry.assert_code(0);
    let results = std::fs::read_to_string(env.path("results.json")).unwrap();
    for secret in secrets {
        for (what, text) in [("results", &results), ("stderr", &run.stderr), ("dry run", &dry.stdout)] {
            assert!(!text.contains(secret), "{what} shows {secret}:\n{text}");
        }
    }
    let config = &env.results()["manifest"]["model"]["config"];
    assert_eq!(config["max_tokens"], 7);
    assert_eq!(config["author"], "Ada");
    assert_eq!(config["api_key_env"], "MY_KEY_VARIABLE");
    assert_eq!(config["accessToken"], "***");
    assert!(run.stderr.contains("model configuration:"), "the config is logged at debug level");

    // Error messages too: a TOML parser quotes the broken line.
    std::fs::write(env.path("model.toml"), "api_key = \"toml-visible-8\" broken\n").unwrap();
    let run =
        env.eval(&["--model", "fixture/chatty", "--datasets", "q.jsonl", "--model-config", "model.toml"]);
    run.assert_code(2);
    assert_stderr(&run, "is not valid TOML");
    assert!(!run.stderr.contains("toml-visible-8"), "{}", run.stderr);
}

#[test]
fn cache_problems_name_the_file_and_say_what_to_do() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    write_dataset(&env, "q.jsonl", 2);
    std::fs::create_dir(env.path("a-folder")).unwrap();
    std::fs::write(env.path("a-file"), "x").unwrap();
    let cases = [
        ("a-folder", "cache `a-folder` is a directory, not a cache file", "DIR/cache.sqlite"),
        (
            "a-file/cache.sqlite",
            "cache `a-file/cache.sqlite`: cannot create its folder `a-file`",
            "--no-cache",
        ),
    ];
    for (path, message, hint) in cases {
        let run = eval_with_cache(&env, path, &["--datasets", "q.jsonl"]);
        run.assert_code(2);
        assert_stderr(&run, message);
        assert_stderr(&run, hint);
        assert!(!run.stderr.contains("Error code"), "{}", run.stderr);
    }

    for (version, message) in [
        ("abc", "has schema version `abc`, which no karma-host writes"),
        ("9", "has schema version 9, newer than this karma-host knows (4)"),
    ] {
        let path = env.path(&format!("v{version}.sqlite"));
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute_batch(&format!(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 INSERT INTO meta VALUES ('schema_version', '{version}');"
            ))
            .unwrap();
        drop(connection);
        let run = eval_with_cache(&env, path.to_str().unwrap(), &["--datasets", "q.jsonl"]);
        run.assert_code(2);
        assert_stderr(&run, message);
        assert!(!run.stderr.contains("Invalid parameter name"), "{}", run.stderr);
    }
}

#[test]
fn a_cache_locked_by_another_process_says_so() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    write_dataset(&env, "q.jsonl", 2);
    first_option(&env, &["--datasets", "q.jsonl"]).assert_code(0);
    // A stopped process in the middle of a write transaction holds the lock like this.
    let holder = rusqlite::Connection::open(env.path("cache.sqlite")).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE; INSERT INTO meta VALUES ('held', 'yes');").unwrap();
    let args = env.args(&["--model", "karma/first-option", "--datasets", "q.jsonl"]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = karma_process(&refs, &[("KARMA_CACHE_BUSY_TIMEOUT_SECS", "1")], Some(env.work.path()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let cache = env.path("cache.sqlite");
    assert!(
        stderr.contains(&format!("cache `{}` is locked by another process", cache.display())),
        "{stderr}"
    );
    assert!(stderr.contains("hint: wait for the other process"), "{stderr}");
    assert!(!stderr.contains("database is locked"), "{stderr}");
    holder.execute_batch("ROLLBACK").unwrap();
}

#[test]
fn numbers_out_of_range_say_the_allowed_range() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    write_dataset(&env, "q.jsonl", 2);
    for (flag, value, message) in [
        ("--batch-size", "-1", "`-1` is not a whole number from 1 to 4096"),
        ("--batch-size", "0", "0 is out of range: expected a whole number from 1 to 4096"),
        ("--seed", "-1", "`-1` is not a whole number from 0 to 18446744073709551615"),
        ("--max-samples", "99999999999999999999", "out of range: expected a whole number from 1 to"),
    ] {
        let run = first_option(&env, &["--datasets", "q.jsonl", flag, value]);
        run.assert_code(2);
        assert_stderr(&run, message);
        assert!(!run.stderr.contains("unexpected argument"), "{}", run.stderr);
    }
}

#[test]
fn a_missing_plugin_folder_is_reported_once() {
    let env = EvalEnv::new(&[]);
    let missing = env.path("no-such-plugins");
    let run = crate::harness::karma(&["--plugins-dir", missing.to_str().unwrap(), "list", "models"], &[]);
    run.assert_code(2);
    assert_eq!(run.stderr.matches("cannot read plugin directory").count(), 1, "{}", run.stderr);
}
