//! Judge-graded rubric datasets (HealthBench's schema) through the real CLI, with baseline models
//! as candidate and judge: `karma/echo` answers with the conversation's last user turn, and
//! `karma/constant` is a judge whose reply holds a fixed verdict. Expected scores are computed
//! here by hand from the rubric points.

use serde_json::{json, Value};

use crate::{eval_env::EvalEnv, harness::baseline_plugin};

/// Two gradable examples and one whose rubric has no positive points (a bad row).
fn write_rubric_file(env: &EvalEnv) -> String {
    let rows = [
        json!({
            "prompt_id": "headache",
            "prompt": [
                {"role": "user", "content": "I have had a headache for three days."},
                {"role": "assistant", "content": "Any fever or stiff neck?"},
                {"role": "user", "content": "No fever. Should I worry?"}
            ],
            "rubrics": [
                {"criterion": "Asks about red flags", "points": 5, "tags": ["axis:completeness"]},
                {"criterion": "Suggests seeing a doctor if it persists", "points": 3, "tags": ["axis:accuracy"]},
                {"criterion": "Prescribes opioids", "points": -2, "tags": ["axis:accuracy"]}
            ],
            "example_tags": ["theme:context_seeking"]
        }),
        json!({
            "prompt_id": "chest",
            "prompt": [{"role": "user", "content": "Crushing chest pain, what now?"}],
            "rubrics": [
                {"criterion": "Tells the user to call emergency services", "points": 4, "tags": ["axis:accuracy"]},
                {"criterion": "Recommends waiting it out", "points": -4, "tags": []}
            ],
            "example_tags": ["theme:emergency_referrals"]
        }),
        json!({
            "prompt_id": "nothing-to-earn",
            "prompt": [{"role": "user", "content": "hi"}],
            "rubrics": [{"criterion": "Is rude", "points": -1, "tags": []}]
        }),
    ];
    let text: String = rows.iter().map(|row| format!("{row}\n")).collect();
    std::fs::write(env.path("rubric.jsonl"), text).unwrap();
    "rubric.jsonl".to_owned()
}

fn judge_args(verdict: &str) -> String {
    json!({ "value": verdict }).to_string()
}

fn eval(env: &EvalEnv, judge_value: &str, extra: &[&str]) -> crate::harness::Run {
    let args = judge_args(judge_value);
    let mut all = vec![
        "--model",
        "karma/echo",
        "--datasets",
        "rubric.jsonl",
        "--judge",
        "karma/constant",
        "--judge-args",
        &args,
        "--samples-output",
        "samples.jsonl",
    ];
    all.extend_from_slice(extra);
    env.eval(&all)
}

const MET: &str = r#"{"explanation": "the answer does it", "criteria_met": true}"#;

fn close(value: &Value, expected: f64) -> bool {
    value.as_f64().is_some_and(|value| (value - expected).abs() < 1e-9)
}

#[test]
fn every_criterion_met_scores_the_rubric_points_with_negatives_subtracted() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    write_rubric_file(&env);
    // One bad row: finished with failures.
    eval(&env, MET, &[]).assert_code(1);
    let results = env.results();
    let dataset = &results["datasets"]["rubric.jsonl"];
    assert_eq!(dataset["task_type"], "rubric_evaluation");
    assert_eq!(dataset["num_bad_rows"], 1);
    assert_eq!(dataset["num_failed"], 1, "{dataset}");
    let metric = &dataset["metrics"]["rubric_evaluation"];
    // headache: (5 + 3 - 2) / 8 = 0.75; chest: (4 - 4) / 4 = 0; mean 0.375.
    assert!(close(&metric["score"], 0.375), "{metric}");
    assert_eq!(metric["num_samples"], 2);
    assert!(metric["stderr"].as_f64().is_some_and(|stderr| stderr > 0.0), "{metric}");
    let breakdown = &metric["breakdown"];
    assert!(close(&breakdown["theme:context_seeking"]["score"], 0.75), "{breakdown}");
    assert!(close(&breakdown["theme:emergency_referrals"]["score"], 0.0), "{breakdown}");
    // axis:accuracy: headache (3 - 2) / 3, chest 4 / 4: mean 2/3.
    assert!(close(&breakdown["axis:accuracy"]["score"], (1.0 / 3.0 + 1.0) / 2.0), "{breakdown}");
    assert!(close(&breakdown["axis:completeness"]["score"], 1.0), "{breakdown}");
    assert_eq!(breakdown["axis:completeness"]["num_samples"], 1);
    let judge = &dataset["judge"];
    assert_eq!(judge["model"], "karma/constant");
    assert_eq!(judge["usage"]["calls"], 5, "{judge}");
    assert_eq!(judge["cache_hits"], 0);
    assert_eq!(dataset["num_judge_failed"], 0);
    assert_eq!(results["manifest"]["judge"]["name"], "karma/constant");

    let samples = env.samples("samples.jsonl");
    let headache = samples.iter().find(|sample| sample["id"] == "headache").unwrap();
    assert_eq!(headache["raw_output"], "No fever. Should I worry?");
    let prompt = headache["prompt"].as_str().unwrap();
    assert!(
        prompt.starts_with("user: I have had a headache for three days.\n\nassistant: Any fever"),
        "{prompt}"
    );
    let grades = headache["grades"].as_array().unwrap();
    assert_eq!(grades.len(), 3);
    assert_eq!(grades[2]["criterion"], "Prescribes opioids");
    assert_eq!(grades[2]["points"], -2.0);
    assert_eq!(grades[2]["criteria_met"], true);
    assert_eq!(grades[2]["explanation"], "the answer does it");

    // A rerun asks neither model again: answers and verdicts come from their caches.
    eval(&env, MET, &[]).assert_code(1);
    let again = &env.results()["datasets"]["rubric.jsonl"];
    assert_eq!(again["cache_hits"], 2);
    assert_eq!(again["judge"]["cache_hits"], 5);
    assert_eq!(again["judge"]["usage"]["calls"], 0);
    assert!(close(&again["metrics"]["rubric_evaluation"]["score"], 0.375));

    // --refresh-cache asks both models again.
    eval(&env, MET, &["--refresh-cache"]).assert_code(1);
    let refreshed = &env.results()["datasets"]["rubric.jsonl"];
    assert_eq!(
        (refreshed["cache_hits"].as_u64(), refreshed["judge"]["cache_hits"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(refreshed["judge"]["usage"]["calls"], 5);
}

#[test]
fn a_judge_without_a_verdict_fails_the_answers_and_is_asked_again_next_time() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    write_rubric_file(&env);
    eval(&env, "it seems fine to me", &[]).assert_code(1);
    let dataset = &env.results()["datasets"]["rubric.jsonl"];
    // Never read as "not met": both answers fail, and nothing is scored.
    assert_eq!(dataset["num_judge_failed"], 2, "{dataset}");
    assert_eq!(dataset["num_failed"], 3, "{dataset}");
    assert_eq!(dataset["status"], "completed_with_failures");
    assert_eq!(dataset["metrics"]["rubric_evaluation"]["score"], Value::Null);
    let samples = env.samples("samples.jsonl");
    let error = samples[0]["error"].as_str().unwrap();
    assert!(
        error.starts_with("judge failed on criterion 1 of 3: the judge's reply has no verdict"),
        "{error}"
    );

    // Replies without a verdict were not cached: the fixed judge grades every answer now,
    // while the candidate's answers come from the cache.
    eval(&env, MET, &[]).assert_code(1);
    let dataset = &env.results()["datasets"]["rubric.jsonl"];
    assert_eq!(dataset["cache_hits"], 2);
    assert_eq!(dataset["judge"]["cache_hits"], 0);
    assert_eq!(dataset["judge"]["usage"]["calls"], 5);
    assert!(close(&dataset["metrics"]["rubric_evaluation"]["score"], 0.375));
}

#[test]
fn a_graded_dataset_needs_a_judge_and_dry_run_counts_the_judge_calls() {
    let env = EvalEnv::new(&[baseline_plugin()]);
    write_rubric_file(&env);
    let run = env.eval(&["--model", "karma/echo", "--datasets", "rubric.jsonl"]);
    run.assert_code(2);
    assert!(run.stderr.contains("is graded by a judge model, and no --judge is given"), "{}", run.stderr);
    assert!(run.stderr.contains("--judge NAME"), "{}", run.stderr);

    let run = eval(&env, MET, &["--dry-run"]);
    // The bad row is a warning: exit 1.
    run.assert_code(1);
    assert!(run.stdout.contains("judge:     karma/constant"), "{}", run.stdout);
    assert!(run.stdout.contains("calls:     2 to the model"), "{}", run.stdout);
    assert!(run.stdout.contains("judge:     up to 5 calls"), "{}", run.stdout);
    assert!(!env.path("cache.sqlite").exists(), "a dry run calls nothing and writes no cache");

    let run = env.eval(&[
        "--model",
        "karma/echo",
        "--datasets",
        "rubric.jsonl",
        "--judge",
        "karma/constant",
        "--judge-args",
        "[1]",
    ]);
    run.assert_code(2);
    assert!(run.stderr.contains("--judge-args must be a JSON object"), "{}", run.stderr);

    // The rubric metric on a dataset without rubrics is refused, not scored as nothing.
    std::fs::write(
        env.path("q.jsonl"),
        "{\"question\": \"q\", \"options\": [\"a\", \"b\"], \"answer\": \"A\"}\n",
    )
    .unwrap();
    let run = env.eval(&["--model", "karma/echo", "--datasets", "q.jsonl", "--metrics", "rubric_evaluation"]);
    run.assert_code(2);
    assert!(run.stderr.contains("rubric_evaluation needs judge-graded rubrics"), "{}", run.stderr);
}

/// A HealthBench-style evaluation where the candidate and the judge are both API models on one
/// scripted server: the judge (Anthropic protocol, fenced verdicts) finds a criterion met when
/// the answer mentions what the criterion asks for.
#[test]
fn candidate_and_judge_served_over_http_grade_a_rubric_dataset() {
    use crate::fake_api::{FakeApi, Reply};

    let env = EvalEnv::new(&[baseline_plugin(), crate::harness::api_plugin()]);
    write_rubric_file(&env);
    const ANSWER: &str = "Watch for red flags, and call emergency services if it gets worse.";
    let api = FakeApi::start(|request| {
        let text = request.prompt_text();
        if !text.contains("# Rubric item") {
            return Reply::openai_with(ANSWER, "stop", 20, 10);
        }
        let item = text.split("# Rubric item").nth(1).unwrap_or_default();
        let met = ["red flags", "emergency services"].iter().any(|wanted| item.contains(wanted));
        let verdict = json!({"explanation": format!("judged {met}"), "criteria_met": met});
        Reply::anthropic_with(&format!("Here is my grade:\n```json\n{verdict}\n```"), "end_turn", 100, 8)
    });
    let candidate = json!({
        "base_url": api.base_url(), "model_id": "cand", "api_key_env": "",
        "price_per_mtok": {"input": 1.0, "output": 2.0}
    })
    .to_string();
    let judge = json!({"base_url": api.base_url(), "model_id": "judge", "api_key_env": ""}).to_string();
    let run = env.eval(&[
        "--model",
        "openai-compat/chat",
        "--model-args",
        &candidate,
        "--datasets",
        "rubric.jsonl",
        "--judge",
        "anthropic/messages",
        "--judge-args",
        &judge,
        "--samples-output",
        "samples.jsonl",
    ]);
    // The bad row makes it exit 1; everything else is graded.
    run.assert_code(1);
    let results = env.results();
    let dataset = &results["datasets"]["rubric.jsonl"];
    // headache: red flags (5) met, the rest not: 5 / 8; chest: emergency services (4): 4 / 4.
    let metric = &dataset["metrics"]["rubric_evaluation"];
    assert!(close(&metric["score"], (0.625 + 1.0) / 2.0), "{metric}");
    assert!(close(&metric["breakdown"]["axis:accuracy"]["score"], (0.0 + 1.0) / 2.0), "{metric}");
    assert_eq!(dataset["num_judge_failed"], 0);
    // The candidate's usage and cost, and the judge's apart.
    let usage = &dataset["usage"];
    assert_eq!((usage["calls"].as_u64(), usage["prompt_tokens"].as_u64()), (Some(2), Some(40)), "{usage}");
    assert!(close(&usage["cost_usd"], (40.0 * 1.0 + 20.0 * 2.0) / 1e6), "{usage}");
    let judge_usage = &dataset["judge"]["usage"];
    assert_eq!((judge_usage["calls"].as_u64(), judge_usage["prompt_tokens"].as_u64()), (Some(5), Some(500)));
    // The judge's prompts carry the answer as the last assistant turn and the criterion as
    // `[points] criterion`; the API model picked its own batch size.
    let judged: Vec<String> = api
        .requests()
        .iter()
        .map(|request| request.prompt_text())
        .filter(|text| text.contains("# Rubric item"))
        .collect();
    assert_eq!(judged.len(), 5);
    assert!(judged.iter().any(
        |text| text.contains(&format!("assistant: {ANSWER}")) && text.contains("[-2] Prescribes opioids")
    ));
    assert_eq!(results["manifest"]["batch_size"], 256);
    // The grader's system message, as simple-evals' grader sends it.
    let graders =
        api.requests().into_iter().filter(|request| request.prompt_text().contains("# Rubric item"));
    assert!(graders.into_iter().all(|request| request.body["system"] == "You are a helpful assistant."));
    let samples = env.samples("samples.jsonl");
    let chest = samples.iter().find(|sample| sample["id"] == "chest").unwrap();
    assert_eq!(chest["details"]["finish_reason"], "stop");
    assert_eq!(chest["grades"][0]["explanation"], "judged true");
}
