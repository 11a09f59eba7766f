//! Task families beyond multiple choice, end to end: local open-QA and translation files, `--task`,
//! `--metrics`, and `karma-host score` on predictions someone already has. Expected scores are
//! computed here, independently of karma-host's metric code.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::{
    eval_env::EvalEnv,
    harness::{baseline_plugin, fixture, karma_command},
};

/// KARMA's token rule, written again: `\n` and `.` removed, lowercased, runs of word characters
/// (letters, digits, `_` and combining marks, so Devanagari words stay whole).
fn tokens(text: &str) -> Vec<String> {
    let cleaned: String = text.replace(['\n', '.'], "").to_lowercase();
    let mut tokens = Vec::new();
    let mut current = String::new();
    for character in cleaned.chars() {
        let word =
            character.is_alphanumeric() || character == '_' || ('\u{0900}'..='\u{097F}').contains(&character);
        if word {
            current.push(character);
        } else if !current.is_empty() {
            tokens.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

pub fn token_f1(prediction: &str, reference: &str) -> f64 {
    let (predicted, expected) = (tokens(prediction), tokens(reference));
    let mut counts: HashMap<&String, usize> = HashMap::new();
    for token in &expected {
        *counts.entry(token).or_default() += 1;
    }
    let mut common = 0;
    for token in &predicted {
        if let Some(count) = counts.get_mut(token).filter(|count| **count > 0) {
            *count -= 1;
            common += 1;
        }
    }
    if common == 0 {
        return 0.0;
    }
    let (precision, recall) = (common as f64 / predicted.len() as f64, common as f64 / expected.len() as f64);
    2.0 * precision * recall / (precision + recall)
}

/// ROUGE-1 F of one pair, unstemmed: stemming changes nothing on [`PAIRS`], whose shared words
/// are spelt the same on both sides.
fn rouge1(prediction: &str, reference: &str) -> f64 {
    let ascii = |text: &str| -> Vec<String> {
        text.to_lowercase()
            .split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
            .filter(|token| !token.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let (predicted, expected) = (ascii(prediction), ascii(reference));
    let mut counts: HashMap<&String, usize> = HashMap::new();
    for token in &expected {
        *counts.entry(token).or_default() += 1;
    }
    let overlap = predicted
        .iter()
        .filter(|token| counts.get_mut(token).filter(|count| **count > 0).map(|count| *count -= 1).is_some())
        .count() as f64;
    let (precision, recall) =
        (overlap / predicted.len().max(1) as f64, overlap / expected.len().max(1) as f64);
    if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    }
}

pub fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let values: Vec<f64> = values.collect();
    values.iter().sum::<f64>() / values.len() as f64
}

pub fn assert_close(actual: &Value, expected: f64, what: &str) {
    let actual = actual.as_f64().unwrap_or_else(|| panic!("{what}: not a number: {actual}"));
    assert!((actual - expected).abs() < 1e-9, "{what}: {actual} != {expected}");
}

/// Questions and answers whose echo (the question itself) matches some answers exactly, some in
/// part, some not at all.
const PAIRS: [(&str, &str); 6] = [
    ("Insulin", "insulin"),
    ("the pancreas secretes insulin", "The pancreas."),
    ("What does ECG stand for?", "electrocardiogram"),
    ("रोगी को बुखार है", "रोगी को तेज़ बुखार है"),
    ("beta blockers lower heart rate", "beta blockers"),
    ("Aspirin", "ASPIRIN"),
];

#[test]
fn local_open_qa_files_are_scored_with_text_metrics() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    let rows: Vec<String> = PAIRS
        .iter()
        .enumerate()
        .map(|(index, (question, answer))| {
            json!({"id": format!("o{index}"), "question": question, "answer": answer}).to_string()
        })
        .collect();
    std::fs::write(env.path("qa.jsonl"), rows.join("\n") + "\n").unwrap();
    // The same rows as CSV, `answer` as a cell.
    let mut csv = String::from("id,question,answer\n");
    for (index, (question, answer)) in PAIRS.iter().enumerate() {
        csv.push_str(&format!("o{index},\"{question}\",\"{answer}\"\n"));
    }
    std::fs::write(env.path("qa.csv"), csv).unwrap();
    // The echo model answers with its input: the question alone.
    let run = env.eval(&[
        "--model",
        "karma/echo",
        "--datasets",
        "qa.jsonl,qa.csv",
        "--dataset-arg",
        "qa.jsonl.confinement_instructions=<QUESTION>",
        "--dataset-arg",
        "qa.csv.confinement_instructions=<QUESTION>",
        "--samples-output",
        "s.jsonl",
    ]);
    run.assert_code(0);
    let results = env.results();
    let exact = PAIRS.iter().filter(|(q, a)| q.to_lowercase() == a.to_lowercase()).count() as f64 / 6.0;
    let f1 = mean(PAIRS.iter().map(|(q, a)| token_f1(q, a)));
    for name in ["qa.jsonl", "qa.csv"] {
        let entry = &results["datasets"][name];
        assert_eq!(entry["task_type"], "open_ended_qa", "{name}");
        assert_close(&entry["metrics"]["exact_match"]["score"], exact, "exact_match");
        assert_close(&entry["metrics"]["tokenised_f1"]["score"], f1, "tokenised_f1");
        assert!(entry["metrics"]["bleu"]["score"].is_number(), "{entry}");
        assert_eq!(entry["metrics"]["exact_match"]["num_samples"], 6);
        // KARMA's rouge crashes on its own result keys; here `rouge` is four entries.
        assert_close(
            &entry["metrics"]["rouge1"]["score"],
            mean(PAIRS.iter().map(|(q, a)| rouge1(q, a))),
            "rouge1",
        );
        for variant in ["rouge1", "rouge2", "rougeL", "rougeLsum"] {
            let result = &entry["metrics"][variant];
            for key in ["score", "stderr", "ci_low", "ci_high"] {
                assert!(result[key].is_number(), "{variant}.{key}: {entry}");
            }
            assert_eq!(result["num_samples"], 6);
        }
    }
    // A `group` column gives each metric a breakdown, in results and in the table.
    let grouped: Vec<String> = PAIRS
        .iter()
        .enumerate()
        .map(|(index, (question, answer))| {
            json!({"question": question, "answer": answer, "group": if index < 2 { "first" } else { "rest" }})
                .to_string()
        })
        .collect();
    std::fs::write(env.path("grouped.jsonl"), grouped.join("\n") + "\n").unwrap();
    let run = env.eval(&[
        "--model",
        "karma/echo",
        "--datasets",
        "grouped.jsonl",
        "--dataset-arg",
        "grouped.jsonl.confinement_instructions=<QUESTION>",
        "--output",
        "grouped.json",
    ]);
    run.assert_code(0);
    let grouped: Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("grouped.json")).unwrap()).unwrap();
    let breakdown = &grouped["datasets"]["grouped.jsonl"]["metrics"]["tokenised_f1"]["breakdown"];
    assert_close(&breakdown["first"]["score"], mean(PAIRS[..2].iter().map(|(q, a)| token_f1(q, a))), "first");
    assert_close(&breakdown["rest"]["score"], mean(PAIRS[2..].iter().map(|(q, a)| token_f1(q, a))), "rest");
    assert_eq!(breakdown["rest"]["num_samples"], 4);
    assert!(run.stdout.lines().any(|line| line.trim_start().starts_with("first")), "{}", run.stdout);

    let samples = env.samples("s.jsonl");
    assert_eq!(samples[0]["correct"], Value::Null, "free text has no correctness of its own");
    assert_eq!(samples[0]["prediction"], "Insulin");
    assert_eq!(samples[0]["expected"], "insulin");

    // The default prompt asks the question.
    let dry = env.eval(&["--model", "karma/echo", "--datasets", "qa.jsonl", "--dry-run"]);
    dry.assert_code(0);
    assert!(dry.stdout.contains("dataset:   qa.jsonl (open_ended_qa)"), "{}", dry.stdout);
    assert!(dry.stdout.contains("Question: Insulin"), "{}", dry.stdout);
}

#[test]
fn identical_translations_score_bleu_one_and_metrics_can_be_chosen() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    let sentences =
        ["रोगी को बुखार है।", "Take two tablets daily with food.", "The wound must be kept clean and dry."];
    let rows: Vec<String> = sentences
        .iter()
        .enumerate()
        .map(|(index, text)| {
            json!({"id": index, "source": text, "target": [text, "another reference"], "target_language": "Hindi"})
                .to_string()
        })
        .collect();
    std::fs::write(env.path("tr.jsonl"), rows.join("\n") + "\n").unwrap();
    let confine = "tr.jsonl.confinement_instructions=<QUESTION>";
    let run = env.eval(&["--model", "karma/echo", "--datasets", "tr.jsonl", "--dataset-arg", confine]);
    run.assert_code(0);
    let entry = &env.results()["datasets"]["tr.jsonl"];
    assert_eq!(entry["task_type"], "translation");
    assert_close(&entry["metrics"]["bleu"]["score"], 1.0, "bleu of identical texts");

    // --metrics replaces the dataset's list.
    let run = env.eval(&[
        "--model",
        "karma/echo",
        "--datasets",
        "tr.jsonl",
        "--dataset-arg",
        confine,
        "--metrics",
        "wer,cer",
    ]);
    run.assert_code(0);
    let metrics = env.results()["datasets"]["tr.jsonl"]["metrics"].clone();
    let names: Vec<&String> = metrics.as_object().unwrap().keys().collect();
    assert_eq!(names, ["cer", "wer"]);
    assert_close(&metrics["wer"]["score"], 0.0, "wer of identical texts");

    let run = env.eval(&["--model", "karma/echo", "--datasets", "tr.jsonl", "--metrics", "bleu,rogue"]);
    run.assert_code(2);
    assert!(run.stderr.contains("unknown metric `rogue` in --metrics"), "{}", run.stderr);

    // The default prompt names the target language.
    let dry = env.eval(&["--model", "karma/echo", "--datasets", "tr.jsonl", "--dry-run"]);
    assert!(dry.stdout.contains("Translate the following text into Hindi."), "{}", dry.stdout);

    // Log-likelihood scoring is for options only.
    let run = env.eval(&["--model", "karma/echo", "--datasets", "tr.jsonl", "--scoring", "loglikelihood"]);
    run.assert_code(2);
    assert!(run.stderr.contains("is translation and cannot be scored by log-likelihood"), "{}", run.stderr);
}

#[test]
fn the_task_of_a_local_file_comes_from_its_columns_or_from_task() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    let row = json!({"question": "Q?", "options": ["yes", "no"], "answer": "A"});
    std::fs::write(env.path("both.jsonl"), format!("{row}\n")).unwrap();
    env.eval(&["--model", "karma/first-option", "--datasets", "both.jsonl"]).assert_code(0);
    assert_eq!(env.results()["datasets"]["both.jsonl"]["task_type"], "mcqa");
    env.eval(&["--model", "karma/echo", "--datasets", "both.jsonl", "--task", "open_ended_qa"])
        .assert_code(0);
    assert_eq!(env.results()["datasets"]["both.jsonl"]["task_type"], "open_ended_qa");

    let run = env.eval(&["--model", "karma/echo", "--datasets", "both.jsonl", "--task", "summarisation"]);
    run.assert_code(2);
    assert!(run.stderr.contains("--task takes one of: mcqa, open_ended_qa, translation"), "{}", run.stderr);

    std::fs::write(env.path("odd.jsonl"), "{\"prompt\": \"x\", \"completion\": \"y\"}\n").unwrap();
    let run = env.eval(&["--model", "karma/echo", "--datasets", "odd.jsonl"]);
    run.assert_code(2);
    assert!(run
        .stderr
        .contains("cannot tell its task from the columns of `odd.jsonl` row 1 (prompt, completion)"));
    assert!(run.stderr.contains("translation: source, target"), "{}", run.stderr);
}

#[test]
fn score_grades_existing_predictions_with_the_eval_results_schema() {
    let env = EvalEnv::new(&[]);
    let mut lines: Vec<String> = PAIRS
        .iter()
        .enumerate()
        .map(|(index, (prediction, reference))| {
            json!({"id": index, "prediction": prediction, "reference": reference, "group": if index % 2 == 0 { "even" } else { "odd" }})
                .to_string()
        })
        .collect();
    lines.push("{\"id\": 99, \"reference\": \"no prediction column\"}".to_owned());
    std::fs::write(env.path("p.jsonl"), lines.join("\n") + "\n").unwrap();
    let run = karma_command(
        &[
            "score",
            "p.jsonl",
            "--metrics",
            "exact_match,tokenised_f1",
            "--format",
            "json",
            "--output",
            "r.json",
        ],
        &[],
        Some(env.work.path()),
    );
    run.assert_code(1);
    let document = run.json();
    let written: Value = serde_json::from_str(&std::fs::read_to_string(env.path("r.json")).unwrap()).unwrap();
    assert_eq!(document, written);
    assert_eq!(document["manifest"]["status"], "completed_with_failures");
    let entry = &document["datasets"]["p.jsonl"];
    let exact = PAIRS.iter().filter(|(p, r)| p.to_lowercase() == r.to_lowercase()).count() as f64 / 6.0;
    assert_close(&entry["metrics"]["exact_match"]["score"], exact, "exact_match");
    assert_close(
        &entry["metrics"]["tokenised_f1"]["score"],
        mean(PAIRS.iter().map(|(p, r)| token_f1(p, r))),
        "f1",
    );
    for key in ["stderr", "ci_low", "ci_high"] {
        assert!(entry["metrics"]["tokenised_f1"][key].is_number(), "{key}: {entry}");
    }
    assert_eq!(entry["metrics"]["exact_match"]["num_samples"], 6);
    assert_eq!(entry["num_failed"], 1);
    assert_eq!(entry["bad_rows"][0]["row"], 7);
    let even = mean(PAIRS.iter().step_by(2).map(|(p, r)| token_f1(p, r)));
    assert_close(&entry["subgroups"]["even"]["tokenised_f1"]["score"], even, "even group");
    assert_close(&entry["metrics"]["tokenised_f1"]["breakdown"]["even"]["score"], even, "breakdown");

    // A predictions file that is also --output is refused.
    let run = karma_command(
        &["score", "p.jsonl", "--metrics", "bleu", "--output", "p.jsonl"],
        &[],
        Some(env.work.path()),
    );
    run.assert_code(2);
    assert!(run.stderr.contains("writing it would destroy data"), "{}", run.stderr);
}

#[test]
fn batches_larger_than_the_model_allows_are_split() {
    let env = EvalEnv::new(&[fixture("slow-echo")]);
    let rows: Vec<String> = (0..10)
        .map(|index| json!({"id": index, "question": "Q?", "options": ["a", "b"], "answer": "A"}).to_string())
        .collect();
    std::fs::write(env.path("q.jsonl"), rows.join("\n") + "\n").unwrap();
    let run = env.eval(&[
        "--model",
        "fixture/slow-echo",
        "--model-args",
        r#"{"delay_ms": 0}"#,
        "--datasets",
        "q.jsonl",
        "--batch-size",
        "16",
        "--samples-output",
        "s.jsonl",
    ]);
    run.assert_code(0);
    let sizes: Vec<String> = env
        .samples("s.jsonl")
        .iter()
        .map(|sample| sample["raw_output"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> =
        [4, 4, 4, 4, 4, 4, 4, 4, 2, 2].iter().map(|n| format!("Final Answer: (A) [batch of {n}]")).collect();
    assert_eq!(sizes, expected, "the model declares max_batch_size 4");
    assert_eq!(env.results()["datasets"]["q.jsonl"]["metrics"]["exact_match"]["score"], 1.0);
}

#[test]
fn a_batch_holds_items_of_similar_length_and_samples_stay_in_row_order() {
    let env = EvalEnv::new(&[fixture("slow-echo")]);
    // Short and long questions alternate, so batches of consecutive rows would each mix one of
    // each; batched by size, every batch of two is all short or all long.
    let long = "Which of these is correct? ".repeat(20);
    let rows: Vec<String> = (0..12)
        .map(|index| {
            let question = if index % 2 == 0 { format!("Q{index}?") } else { format!("Q{index}: {long}") };
            json!({"id": index, "question": question, "options": ["a", "b"], "answer": "A"}).to_string()
        })
        .collect();
    std::fs::write(env.path("q.jsonl"), rows.join("\n") + "\n").unwrap();
    let run = env.eval(&[
        "--model",
        "fixture/slow-echo",
        "--model-args",
        r#"{"delay_ms": 0, "report_lengths": true}"#,
        "--datasets",
        "q.jsonl",
        "--batch-size",
        "2",
        "--samples-output",
        "s.jsonl",
    ]);
    run.assert_code(0);
    let samples = env.samples("s.jsonl");
    let ids: Vec<String> =
        samples.iter().map(|sample| sample["id"].to_string().trim_matches('"').to_owned()).collect();
    let in_order: Vec<String> = (0..12).map(|index| index.to_string()).collect();
    assert_eq!(ids, in_order, "samples come in row order");
    let batches: Vec<Vec<usize>> = samples
        .iter()
        .map(|sample| {
            let output = sample["raw_output"].as_str().unwrap();
            output
                .split("[input chars ")
                .nth(1)
                .and_then(|rest| rest.strip_suffix(']'))
                .unwrap_or_else(|| panic!("no lengths in {output:?}"))
                .split(' ')
                .map(|length| length.parse().unwrap())
                .collect()
        })
        .collect();
    // The prompts wrap each question in the same template: short and long prompts lie either
    // side of the midpoint between the shortest and the longest.
    let all = batches.iter().flatten();
    let middle = (all.clone().min().unwrap() + all.max().unwrap()) / 2;
    for lengths in &batches {
        assert_eq!(lengths.len(), 2, "{lengths:?}");
        let long_items = lengths.iter().filter(|&&length| length > middle).count();
        assert!(long_items == 0 || long_items == 2, "a batch mixes short and long items: {lengths:?}");
    }
}

#[test]
fn metric_arguments_are_typed_checked_and_used() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    let rows: Vec<String> = PAIRS
        .iter()
        .map(|(question, answer)| json!({"question": question, "answer": answer}).to_string())
        .collect();
    std::fs::write(env.path("qa.jsonl"), rows.join("\n") + "\n").unwrap();
    let confine = "qa.jsonl.confinement_instructions=<QUESTION>";
    let eval = |extra: &[&str]| {
        let mut args = vec!["--model", "karma/echo", "--datasets", "qa.jsonl", "--dataset-arg", confine];
        args.extend_from_slice(extra);
        env.eval(&args)
    };
    // KARMA ignored every metric argument; here ignore_case=false compares as written.
    eval(&["--metric-args", "exact_match:ignore_case=false"]).assert_code(0);
    let as_written = PAIRS.iter().filter(|(q, a)| q == a).count() as f64 / 6.0;
    let folded = PAIRS.iter().filter(|(q, a)| q.to_lowercase() == a.to_lowercase()).count() as f64 / 6.0;
    assert_ne!(as_written, folded, "the data tells the two rules apart");
    assert_close(
        &env.results()["datasets"]["qa.jsonl"]["metrics"]["exact_match"]["score"],
        as_written,
        "case kept",
    );
    eval(&[]).assert_code(0);
    let default = env.results()["datasets"]["qa.jsonl"]["metrics"].clone();
    assert_close(&default["exact_match"]["score"], folded, "default folds case");
    eval(&["--metric-args", "bleu:max_order=1"]).assert_code(0);
    let unigram = env.results()["datasets"]["qa.jsonl"]["metrics"]["bleu"]["score"].as_f64().unwrap();
    assert!(unigram > default["bleu"]["score"].as_f64().unwrap(), "unigram BLEU is above 4-gram BLEU here");

    for (spec, message) in [
        ("bleu:max_order=0", "metric `bleu` argument `max_order`: `0` is not a whole number from 1 to 9"),
        ("bleu:order=2", "unknown argument `order` for metric `bleu`; it takes: max_order, smooth"),
        ("wer:x=1", "metric `wer` takes no arguments"),
        ("rogue:x=1", "unknown metric `rogue`"),
        ("chrf:", "--metric-args given for `chrf`, which no dataset reports"),
    ] {
        let run = eval(&["--metric-args", spec]);
        run.assert_code(2);
        assert!(run.stderr.contains(message), "{spec}: {}", run.stderr);
    }
    let info = karma_command(&["info", "metric", "bleu"], &[], None);
    assert!(info.stdout.contains("max_order    a whole number from 1 to 9 (default 4)"), "{}", info.stdout);
}

#[test]
fn registry_datasets_with_arguments_and_groups() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    // ekacare/mmlu-medical-mcqs-evaluation-dataset's schema: `centerpiece`, `options` (a list),
    // `correct_options` (the first one counts: a letter, an index or the option's text).
    let rows = [
        json!({"centerpiece": "Which bone is in the thigh?", "options": ["Femur", "Ulna", "Radius", "Tibia"], "correct_options": ["A"]}),
        json!({"centerpiece": "Which organ makes bile?", "options": ["Spleen", "Liver", "Kidney", "Lung"], "correct_options": [1]}),
        json!({"centerpiece": "Largest artery?", "options": ["Vena cava", "Carotid", "Aorta", "Femoral"], "correct_options": ["Aorta"]}),
        json!({"centerpiece": "Which is a vitamin?", "options": ["C", "Salt", "Iron", "Zinc"], "correct_options": ["A"]}),
    ];
    std::fs::write(env.path("eka.jsonl"), rows.iter().map(|row| format!("{row}\n")).collect::<String>())
        .unwrap();
    let data = "eka-mmlu.data_files=eka.jsonl";
    let run = env.eval(&[
        "--model",
        "karma/first-option",
        "--datasets",
        "eka-mmlu",
        "--dataset-arg",
        data,
        "--dataset-arg",
        "eka-mmlu.subset=anatomy",
        "--samples-output",
        "s.jsonl",
    ]);
    run.assert_code(0);
    let answers: Vec<String> =
        env.samples("s.jsonl").iter().map(|s| s["expected"].as_str().unwrap().to_owned()).collect();
    assert_eq!(answers, ["A", "B", "C", "A"]);
    assert_close(
        &env.results()["datasets"]["ekacare/mmlu-medical-mcqs-evaluation-dataset"]["metrics"]["exact_match"]
            ["score"],
        0.5,
        "first option",
    );

    let run = env.eval(&["--model", "karma/first-option", "--datasets", "eka-mmlu", "--dataset-arg", data]);
    run.assert_code(2);
    assert!(run.stderr.contains("requires the argument `subset`"), "{}", run.stderr);
    assert!(run.stderr.contains("with one of: anatomy, clinical-knowledge,"), "{}", run.stderr);
    let run = env.eval(&[
        "--model",
        "karma/first-option",
        "--datasets",
        "eka-mmlu",
        "--dataset-arg",
        data,
        "--dataset-arg",
        "eka-mmlu.subset=surgery",
    ]);
    run.assert_code(2);
    assert!(run.stderr.contains("`surgery` is not a valid `subset`"), "{}", run.stderr);

    // A group stands for its members.
    let dry = env.eval(&["--model", "karma/first-option", "--datasets", "mmlu", "--dry-run", "--offline"]);
    dry.assert_code(0);
    assert_eq!(dry.stdout.matches("dataset:   openlifescienceai/mmlu_").count(), 5, "{}", dry.stdout);

    let list = karma_command(&["list", "datasets", "--format", "json", "--task", "mcqa"], &[], None);
    let listed = list.json();
    assert!(listed["datasets"].as_array().unwrap().iter().all(|d| d["task_type"] == "mcqa"));
    assert_eq!(listed["groups"][0]["name"], "mmlu");
    let csv = karma_command(&["list", "datasets", "--format", "csv", "--metric", "exact_match"], &[], None);
    assert_eq!(
        csv.stdout.lines().next(),
        Some("dataset,aliases,task,metrics,split,revision"),
        "{}",
        csv.stdout
    );
    assert!(csv.stdout.contains("ekacare/mmlu-medical-mcqs-evaluation-dataset,eka-mmlu,mcqa"));
}
