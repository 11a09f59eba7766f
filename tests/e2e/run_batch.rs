use std::path::PathBuf;

use crate::harness::{baseline_plugin, karma_in, Run, Workdir};

const ITEMS: &str = concat!(
    r#"{"id": 7, "input": "Which organ makes insulin?", "options": {"C": "liver", "A": "pancreas", "B": "kidney"}}"#,
    "\n",
    r#"{"id": 30, "input": "Pick one", "options": ["yes", "no", "maybe"]}"#,
    "\n",
    "\n",
    r#"{"input": "Largest bone?", "options": {"A": "femur", "B": "tibia"}, "expected_output": "A"}"#,
    "\n",
);

fn setup(items: &str) -> (Workdir, PathBuf, PathBuf) {
    let work = Workdir::new();
    let plugins = work.plugins_dir("plugins", &[baseline_plugin()]);
    let items = work.write("items.jsonl", items);
    (work, plugins, items)
}

fn run_model(plugins: &std::path::Path, items: &std::path::Path, model: &str, extra: &[&str]) -> Run {
    let mut args = vec!["run", "--model", model, "--items", items.to_str().unwrap()];
    args.extend_from_slice(extra);
    karma_in(plugins, &args)
}

fn outputs(run: &Run) -> Vec<(u64, String)> {
    run.json_lines()
        .iter()
        .map(|line| (line["id"].as_u64().unwrap(), line["output"].as_str().unwrap_or("<error>").to_owned()))
        .collect()
}

fn answers(pairs: &[(u64, &str)]) -> Vec<(u64, String)> {
    pairs.iter().map(|(id, text)| (*id, (*text).to_owned())).collect()
}

#[test]
fn first_option_follows_display_order_and_ids_are_echoed() {
    let (_work, plugins, items) = setup(ITEMS);
    let run = run_model(&plugins, &items, "karma/first-option", &[]);
    run.assert_code(0);
    // A line without an id gets its line index (3: the 4th line, blank lines count).
    assert_eq!(
        outputs(&run),
        answers(&[(7, "Final Answer: (C)"), (30, "Final Answer: (A)"), (3, "Final Answer: (A)")])
    );
}

#[test]
fn constant_uses_its_default_and_model_args() {
    let (_work, plugins, items) = setup(ITEMS);
    let default = run_model(&plugins, &items, "karma/constant", &[]);
    default.assert_code(0);
    assert!(outputs(&default).iter().all(|(_, text)| text == "Final Answer: (A)"));
    let overridden = run_model(&plugins, &items, "karma/constant", &["--model-args", r#"{"value": "D"}"#]);
    overridden.assert_code(0);
    assert!(outputs(&overridden).iter().all(|(_, text)| text == "Final Answer: (D)"));
}

#[test]
fn echo_returns_input_or_last_user_turn() {
    let (_work, plugins, items) = setup(concat!(
        r#"{"id": 1, "input": "hello"}"#,
        "\n",
        r#"{"id": 2, "conversation": [{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "second"}]}"#,
        "\n",
    ));
    let run = run_model(&plugins, &items, "karma/echo", &[]);
    run.assert_code(0);
    assert_eq!(outputs(&run), answers(&[(1, "hello"), (2, "second")]));
}

#[test]
fn random_option_is_seeded_and_independent_of_batch_order() {
    let lines: Vec<String> = (0..40)
        .map(|index| {
            format!(r#"{{"id": {index}, "input": "question {index}", "options": ["a", "b", "c", "d"]}}"#)
        })
        .collect();
    let (work, plugins, items) = setup(&(lines.join("\n") + "\n"));
    let reversed: Vec<String> = lines.iter().rev().cloned().collect();
    let reversed_items = work.write("reversed.jsonl", reversed.join("\n") + "\n");

    let first = run_model(&plugins, &items, "karma/random-option", &[]);
    first.assert_code(0);
    let mut picks = outputs(&first);
    let again = outputs(&run_model(&plugins, &items, "karma/random-option", &[]));
    assert_eq!(picks, again, "same seed, same answers");

    let mut reversed_picks = outputs(&run_model(&plugins, &reversed_items, "karma/random-option", &[]));
    reversed_picks.sort();
    picks.sort();
    assert_eq!(picks, reversed_picks, "answers depend on the item, not its position");

    let letters: std::collections::HashSet<String> = picks.iter().map(|(_, text)| text.clone()).collect();
    assert_eq!(letters.len(), 4, "40 items over 4 options use every option: {letters:?}");

    let other_seed =
        outputs(&run_model(&plugins, &items, "karma/random-option", &["--model-args", r#"{"seed": 1}"#]));
    let mut other_seed_sorted = other_seed.clone();
    other_seed_sorted.sort();
    assert_ne!(picks, other_seed_sorted, "another seed gives other answers");
}

#[test]
fn items_without_options_fail_individually_with_exit_1() {
    let (_work, plugins, items) = setup(concat!(
        r#"{"id": 1, "input": "no options here"}"#,
        "\n",
        r#"{"id": 2, "input": "q", "options": {"B": "x"}}"#,
        "\n",
    ));
    let run = run_model(&plugins, &items, "karma/first-option", &[]);
    run.assert_code(1);
    let lines = run.json_lines();
    assert_eq!(lines[0]["error"]["code"], "invalid_input");
    assert_eq!(
        lines[0]["error"]["message"],
        "item 1 has no options (other_args.options is missing or empty)"
    );
    assert_eq!(lines[1]["output"], "Final Answer: (B)");
}

#[test]
fn unknown_config_key_is_rejected_with_known_keys() {
    let (_work, plugins, items) = setup(ITEMS);
    let run = run_model(&plugins, &items, "karma/constant", &["--model-args", r#"{"valeu": "B"}"#]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("failed in `create`: unknown configuration key `valeu` for `karma/constant` (known keys: value, model_path) (invalid_input)"),
        "{}",
        run.stderr
    );
}

#[test]
fn bad_model_args_and_bad_items_are_clear_errors() {
    let (work, plugins, items) = setup(ITEMS);
    let run = run_model(&plugins, &items, "karma/constant", &["--model-args", "{not json"]);
    run.assert_code(2);
    assert!(run.stderr.contains("error: --model-args is not valid JSON"), "{}", run.stderr);

    let broken = work.write("broken.jsonl", "{\"input\": \"ok\"}\n{\"input\": 5}\n");
    let run = run_model(&plugins, &broken, "karma/echo", &[]);
    run.assert_code(2);
    assert!(run.stderr.contains("line 2 is not a valid item"), "{}", run.stderr);
    assert!(run.stderr.contains("caused by: invalid type: integer `5`, expected a string"), "{}", run.stderr);

    let duplicate = work.write("dup.jsonl", "{\"id\": 1, \"input\": \"a\"}\n{\"id\": 1, \"input\": \"b\"}\n");
    let run = run_model(&plugins, &duplicate, "karma/echo", &[]);
    run.assert_code(2);
    assert!(run.stderr.contains("line 2: duplicate item id 1"), "{}", run.stderr);
}
