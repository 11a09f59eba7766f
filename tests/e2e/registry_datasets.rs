//! Registered datasets of each family on generated rows in their hub schemas (JSONL and
//! parquet), through `karma-host eval` with the baseline plugins. Expected scores are counted
//! here from the generated rows.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::{
    datagen::{medmcqa_rows, questions, write_flat_parquet, write_jsonl, write_medmcqa_parquet},
    eval_env::EvalEnv,
    harness::{baseline_plugin, karma_command},
    tasks::{assert_close, mean, token_f1},
};

const COUNTRIES: [&str; 3] = ["NG", "GH", "KE"];

/// AfriMed-QA v2 rows as the hub has them: one table, `question_type`/`split`/`tier` saying
/// which set a row is in, options as JSON text keyed `option1`.., flags as 1.0/0.0.
fn afrimedqa_rows() -> Vec<Value> {
    (0..40)
        .map(|index| {
            let kind = match index % 8 {
                0..=4 => "mcq",
                5 | 6 => "Consumer Queries",
                _ => "saq",
            };
            let answer = index % 3 + 1;
            json!({
                "sample_id": format!("afri-{index}"),
                "question_type": kind,
                "split": if index % 10 == 9 { "train" } else { "test" },
                "tier": if index % 11 == 10 { "crowdsourced" } else { "expert" },
                "question": format!("Question {index} about malaria in the rainy season?"),
                "question_clean": if index % 4 == 0 { String::new() } else { format!("Clean question {index} about malaria?") },
                "prompt": format!("A patient from region {index} presents with fever."),
                "answer_options": json!({
                    "option1": format!("first {index}"),
                    "option2": if index % 5 == 0 { "n/a".to_owned() } else { format!("second {index}") },
                    "option3": format!("third {index}"),
                    "option4": format!("fourth {index}"),
                    "option5": "n/a",
                })
                .to_string(),
                "correct_answer": if answer == 2 && index % 5 == 0 { "option1".to_owned() } else { format!("option{answer}") },
                "specialty": if index % 2 == 0 { "Infectious disease" } else { "Paediatrics" },
                "country": COUNTRIES[index % 3],
                "mentions_gender": if index % 3 == 1 { 1.0 } else { 0.0 },
                "mentions_age": if index % 4 == 1 { 1.0 } else { 0.0 },
            })
        })
        .collect()
}

fn is_expert_test_mcq(row: &Value) -> bool {
    row["question_type"] == "mcq" && row["split"] == "test" && row["tier"] == "expert"
}

/// The share of `rows` whose answer is the first option (what `karma/first-option` picks).
fn first_option_accuracy<'a>(rows: impl Iterator<Item = &'a Value>) -> (f64, usize) {
    let rows: Vec<&Value> = rows.collect();
    let right = rows.iter().filter(|row| row["correct_answer"] == "option1").count();
    (right as f64 / rows.len() as f64, rows.len())
}

#[test]
fn afrimedqa_mcqs_are_filtered_and_broken_down_by_country_and_mentions() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    let rows = afrimedqa_rows();
    write_jsonl(&env.path("afri.jsonl"), &rows);
    let columns = [
        "sample_id",
        "question_type",
        "split",
        "tier",
        "question",
        "question_clean",
        "prompt",
        "answer_options",
        "correct_answer",
        "specialty",
        "country",
        "mentions_gender",
        "mentions_age",
    ];
    write_flat_parquet(&env.path("afri.parquet"), &rows, &columns, &["mentions_gender", "mentions_age"]);
    let selected: Vec<&Value> = rows.iter().filter(|row| is_expert_test_mcq(row)).collect();
    for file in ["afri.jsonl", "afri.parquet"] {
        let run = env.eval(&[
            "--model",
            "karma/first-option",
            "--datasets",
            "afrimedqa-mcq",
            "--dataset-arg",
            &format!("afrimedqa-mcq.data_files={file}"),
            "--samples-output",
            "s.jsonl",
        ]);
        run.assert_code(0);
        let entry = &env.results()["datasets"]["intronhealth/afrimedqa_v2/mcq"];
        let metrics = &entry["metrics"];
        let (overall, count) = first_option_accuracy(selected.iter().copied());
        assert_eq!(metrics["exact_match"]["num_samples"], count, "{file}");
        assert_close(&metrics["exact_match"]["score"], overall, "exact_match");
        assert_close(&metrics["geographic_accuracy"]["score"], overall, "geographic overall");
        let mut by_country = BTreeMap::new();
        for country in COUNTRIES {
            let (accuracy, count) =
                first_option_accuracy(selected.iter().copied().filter(|row| row["country"] == country));
            let group = &metrics["geographic_accuracy"]["breakdown"][format!("country={country}")];
            assert_close(&group["score"], accuracy, country);
            assert_eq!(group["num_samples"], count, "{country}");
            by_country.insert(country, accuracy);
        }
        let spread = by_country.values().copied().fold(f64::MIN, f64::max)
            - by_country.values().copied().fold(f64::MAX, f64::min);
        assert_close(&metrics["geographic_accuracy"]["disparity"]["country"], spread, "disparity");
        let (with_gender, _) =
            first_option_accuracy(selected.iter().copied().filter(|row| row["mentions_gender"] == 1.0));
        let demographic = &metrics["demographic_accuracy"]["breakdown"];
        assert_close(&demographic["mentions_gender=with_gender"]["score"], with_gender, "with gender");
        let (without_age, n) =
            first_option_accuracy(selected.iter().copied().filter(|row| row["mentions_age"] == 0.0));
        assert_eq!(demographic["mentions_age=without_age"]["num_samples"], n);
        assert_close(&demographic["mentions_age=without_age"]["score"], without_age, "without age");
        // exact_match's own breakdown is by specialty (the rows' group).
        assert!(metrics["exact_match"]["breakdown"]["Paediatrics"]["score"].is_number(), "{entry}");
        // Options skip `n/a` and the letter follows: option3 of a row with option2 = n/a is B.
        let samples = env.samples("s.jsonl");
        let by_id: BTreeMap<&str, &Value> =
            samples.iter().map(|sample| (sample["id"].as_str().unwrap(), sample)).collect();
        assert_eq!(by_id["afri-20"]["expected"], "B", "option3 after an n/a option2");
        assert_eq!(by_id["afri-1"]["expected"], "B");
    }

    // `--max-samples` counts the selected questions; `specialty` and `internal_split` select.
    let run = env.eval(&[
        "--model",
        "karma/first-option",
        "--datasets",
        "afrimedqa-mcq",
        "--dataset-args",
        "afrimedqa-mcq:data_files=afri.jsonl,specialty=Paediatrics,internal_split=test",
        "--max-samples",
        "4",
        "--samples-output",
        "s.jsonl",
    ]);
    run.assert_code(0);
    let expected: Vec<&str> = selected
        .iter()
        .filter(|row| row["specialty"] == "Paediatrics")
        .take(4)
        .map(|row| row["sample_id"].as_str().unwrap())
        .collect();
    let ids: Vec<String> =
        env.samples("s.jsonl").iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, expected);

    // stratified_accuracy takes the fields to stratify by.
    let run = env.eval(&[
        "--model",
        "karma/first-option",
        "--datasets",
        "afrimedqa-mcq",
        "--dataset-arg",
        "afrimedqa-mcq.data_files=afri.jsonl",
        "--metrics",
        "stratified_accuracy",
        "--metric-args",
        "stratified_accuracy:stratify_by=specialty+country",
    ]);
    run.assert_code(0);
    let breakdown = &env.results()["datasets"]["intronhealth/afrimedqa_v2/mcq"]["metrics"]
        ["stratified_accuracy"]["breakdown"];
    let keys: Vec<&String> = breakdown.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["country=GH", "country=KE", "country=NG", "specialty=Infectious disease", "specialty=Paediatrics"]
    );
    assert!(run.stdout.contains("disparity by specialty"), "{}", run.stdout);
}

#[test]
fn afrimedqa_consumer_queries_are_open_questions() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    let rows = afrimedqa_rows();
    write_jsonl(&env.path("afri.jsonl"), &rows);
    let run = env.eval(&[
        "--model",
        "karma/echo",
        "--datasets",
        "afrimedqa-consumer",
        "--dataset-arg",
        "afrimedqa-consumer.data_files=afri.jsonl",
        "--dataset-arg",
        "afrimedqa-consumer.confinement_instructions=Scenario: <CONTEXT> Asked: <QUESTION>",
    ]);
    run.assert_code(0);
    let consumer: Vec<&Value> = rows
        .iter()
        .filter(|row| row["question_type"] == "Consumer Queries" && row["split"] == "test")
        .collect();
    let entry = &env.results()["datasets"]["intronhealth/afrimedqa_v2"];
    assert_eq!(entry["task_type"], "open_ended_qa");
    // The reference is the (cleaned) question; the echo answers with the whole prompt.
    let f1 = mean(consumer.iter().map(|row| {
        let question = match row["question_clean"].as_str().unwrap() {
            "" => row["question"].as_str().unwrap(),
            clean => clean,
        };
        let prompt = format!("Scenario: {} Asked: {question}", row["prompt"].as_str().unwrap());
        token_f1(&prompt, question)
    }));
    assert_eq!(entry["metrics"]["tokenised_f1"]["num_samples"], consumer.len());
    assert_close(&entry["metrics"]["tokenised_f1"]["score"], f1, "tokenised_f1");
    assert!(entry["metrics"]["rougeL"]["score"].is_number(), "{entry}");

    // The group covers both sets.
    let dry = env.eval(&[
        "--model",
        "karma/echo",
        "--datasets",
        "afrimedqa",
        "--dataset-arg",
        "afrimedqa-mcq.data_files=afri.jsonl",
        "--dataset-arg",
        "afrimedqa-consumer.data_files=afri.jsonl",
        "--dry-run",
    ]);
    dry.assert_code(0);
    let selected = rows.iter().filter(|row| is_expert_test_mcq(row)).count();
    assert!(dry.stdout.contains(&format!("samples:   {selected}\n")), "{}", dry.stdout);
    assert!(dry.stdout.contains(&format!("samples:   {}\n", consumer.len())), "{}", dry.stdout);
    assert!(dry.stdout.contains("Reply with the letter of the answer only (A, B or C)"), "{}", dry.stdout);
}

#[test]
fn in22_conv_translates_between_the_chosen_language_columns() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    let english =
        ["Take the tablet after food.", "Drink water.", "Rest for two days.", "Come back on Monday."];
    let rows: Vec<Value> = english
        .iter()
        .enumerate()
        .map(|(index, text)| {
            // The Hindi column equals the English one on three rows (names, numbers and the
            // like are written the same), so an echo is an exact translation there.
            let hindi = if index == 3 {
                "सोमवार को वापस आइए।".to_owned()
            } else {
                (*text).to_owned()
            };
            json!({"id": index, "eng_Latn": text, "hin_Deva": hindi, "tam_Taml": "தமிழ்"})
        })
        .collect();
    write_jsonl(&env.path("in22.jsonl"), &rows);
    let text_rows: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut row = row.clone();
            row["id"] = row["id"].to_string().into();
            row
        })
        .collect();
    write_flat_parquet(
        &env.path("in22.parquet"),
        &text_rows,
        &["id", "eng_Latn", "hin_Deva", "tam_Taml"],
        &[],
    );
    let data = "in22-conv.data_files=in22.jsonl";
    let eval = |extra: &[&str]| {
        let mut args = vec!["--model", "karma/echo", "--datasets", "in22-conv", "--dataset-arg", data];
        args.extend_from_slice(extra);
        env.eval(&args)
    };
    // A `Translation:` label before the text is not part of the answer.
    for file in ["in22.jsonl", "in22.parquet"] {
        let data = format!("in22-conv.data_files={file}");
        let run = eval(&[
            "--dataset-arg",
            &data,
            "--dataset-arg",
            "in22-conv.target_language=hi",
            "--dataset-arg",
            "in22-conv.confinement_instructions=Translation: <QUESTION>",
            "--metrics",
            "exact_match,bleu,chrf",
        ]);
        run.assert_code(0);
        let metrics = &env.results()["datasets"]["ai4bharat/IN22-Conv"]["metrics"];
        assert_close(&metrics["exact_match"]["score"], 0.75, "three of four rows equal");
        let chrf = metrics["chrf"]["score"].as_f64().unwrap();
        assert!(chrf > 50.0 && chrf < 100.0, "chrF++ is on sacrebleu's 0-100 scale: {metrics}");
    }

    let run = eval(&[]);
    run.assert_code(2);
    assert!(run.stderr.contains("requires the argument `target_language`"), "{}", run.stderr);
    assert!(run.stderr.contains("with one of: en, as, bn, brx,"), "{}", run.stderr);
    let run = eval(&["--dataset-arg", "in22-conv.target_language=xx"]);
    run.assert_code(2);
    assert!(run.stderr.contains("`xx` is not a valid `target_language`"), "{}", run.stderr);
    // The prompt names both languages (KARMA's says "English" whatever the source).
    let dry = eval(&[
        "--dataset-arg",
        "in22-conv.source_language=ta",
        "--dataset-arg",
        "in22-conv.target_language=hi",
        "--dry-run",
    ]);
    dry.assert_code(0);
    assert!(dry.stdout.contains("Translate the following Tamil text into Hindi."), "{}", dry.stdout);
}

#[test]
fn indian_pharmacology_and_indic_mcq_datasets() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    // indian_drug_mcqa: option_a..option_e, absent ones null; the letter keeps its column.
    let drug: Vec<Value> = (0..6)
        .map(|index| {
            let answer = ["A", "E", "A", "C", "B", "A"][index];
            json!({"question": format!("What is the generic name of brand {index}?"),
                "option_a": format!("generic a{index}"), "option_b": format!("generic b{index}"),
                "option_c": format!("generic c{index}"), "option_d": if index % 2 == 0 { Value::Null } else { json!("generic d") },
                "option_e": format!("generic e{index}"), "correct_answer": answer})
        })
        .collect();
    write_jsonl(&env.path("drug.jsonl"), &drug);
    // Eka_NFI_MCQA: options as JSON text, or empty for a true/false statement.
    let nfi = [
        json!({"question": "Paracetamol is an NSAID.", "options": "", "answer": "false"}),
        json!({"question": "Metformin is a biguanide.", "options": "", "answer": "true"}),
        json!({"question": "Which is an antiplatelet?", "options": r#"{"A": "Aspirin", "B": "Insulin", "C": "Atenolol"}"#, "answer": "A"}),
        json!({"question": "Which is a statin?", "options": r#"{"A": "Amlodipine", "B": "Atorvastatin"}"#, "answer": "B"}),
    ];
    write_jsonl(&env.path("nfi.jsonl"), &nfi);
    // The same rows as parquet (an absent option as an empty text).
    let drug_text: Vec<Value> = drug
        .iter()
        .map(|row| {
            let mut row = row.clone();
            if row["option_d"].is_null() {
                row["option_d"] = "".into();
            }
            row
        })
        .collect();
    let drug_columns =
        ["question", "option_a", "option_b", "option_c", "option_d", "option_e", "correct_answer"];
    write_flat_parquet(&env.path("drug.parquet"), &drug_text, &drug_columns, &[]);
    write_flat_parquet(&env.path("nfi.parquet"), &nfi, &["question", "options", "answer"], &[]);
    for extension in ["jsonl", "parquet"] {
        let run = env.eval(&[
            "--model",
            "karma/first-option",
            "--datasets",
            "indian-pharmacology",
            "--dataset-arg",
            &format!("indian_drug_mcqa.data_files=drug.{extension}"),
            "--dataset-arg",
            &format!("eka-nfi.data_files=nfi.{extension}"),
        ]);
        run.assert_code(0);
        let results = env.results();
        let score = |name: &str| results["datasets"][name]["metrics"]["exact_match"]["score"].clone();
        assert_close(&score("ekacare/indian_drug_mcqa"), 0.5, extension);
        assert_close(&score("ekacare/Eka_NFI_MCQA"), 0.5, extension);
    }
    let dry = env.eval(&[
        "--model",
        "karma/first-option",
        "--datasets",
        "indian_drug_mcqa,eka-nfi",
        "--dataset-arg",
        "indian_drug_mcqa.data_files=drug.jsonl",
        "--dataset-arg",
        "eka-nfi.data_files=nfi.jsonl",
        "--dry-run",
    ]);
    assert!(dry.stdout.contains("C. generic c0\n    E. generic e0"), "{}", dry.stdout);
    assert!(dry.stdout.contains("Paracetamol is an NSAID.\n    A. True\n    B. False"), "{}", dry.stdout);

    // MedMCQA-Indic: medmcqa's schema, one config per language (`subset`, required).
    let indic_questions = questions(12, 5);
    let indic = medmcqa_rows(&indic_questions);
    write_jsonl(&env.path("indic.jsonl"), &indic);
    write_medmcqa_parquet(&env.path("indic.parquet"), &indic_questions);
    let data = "medmcqa-indic.data_files=indic.jsonl";
    let run =
        env.eval(&["--model", "karma/first-option", "--datasets", "medmcqa-indic", "--dataset-arg", data]);
    run.assert_code(2);
    assert!(run.stderr.contains("requires the argument `subset` (the language config"), "{}", run.stderr);
    let right = indic.iter().filter(|row| row["cop"] == 0).count() as f64 / 12.0;
    for file in ["indic.jsonl", "indic.parquet"] {
        let run = env.eval(&[
            "--model",
            "karma/first-option",
            "--datasets",
            "medmcqa-indic",
            "--dataset-arg",
            &format!("medmcqa-indic.data_files={file}"),
            "--dataset-arg",
            "medmcqa-indic.subset=hi",
        ]);
        run.assert_code(0);
        let metrics = &env.results()["datasets"]["ekacare/MedMCQA-Indic"]["metrics"];
        assert_close(&metrics["exact_match"]["score"], right, file);
        let subjects = metrics["exact_match"]["breakdown"].as_object().map(|groups| groups.len());
        assert_eq!(subjects, Some(3), "a breakdown by subject: {metrics}");
    }

    let listed = karma_command(&["list", "datasets", "--format", "json"], &[], None).json();
    let names: Vec<&str> =
        listed["datasets"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
    for name in [
        "ekacare/MedMCQA-Indic",
        "ekacare/indian_drug_mcqa",
        "ekacare/Eka_NFI_MCQA",
        "intronhealth/afrimedqa_v2/mcq",
        "intronhealth/afrimedqa_v2",
        "ai4bharat/IN22-Conv",
    ] {
        assert!(names.contains(&name), "{name} not listed: {names:?}");
    }
}
