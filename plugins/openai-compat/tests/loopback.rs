//! The plugin's Model API against the scripted loopback API of the end-to-end tests: retries,
//! back-off, the concurrency bound, refused keys, exhausted quotas, unreachable servers and
//! unusable answers, without the host.

#[path = "../../../tests/e2e/fake_api.rs"]
mod fake_api;

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use abi_stable::std_types::{ROption, RSlice, RStr};
use fake_api::{FakeApi, Reply};
use karma_plugin_api::{
    abi::{BatchItem, ErrorCode, PluginError},
    sdk::{Generation, Item, Model, ModelContext},
};
use karma_plugin_openai_compat::{catalog, config::Config, ApiModel};
use serde_json::{json, Value};

fn model(name: &str, api: &FakeApi, config: Value) -> ApiModel {
    model_at(name, &api.base_url(), config)
}

fn model_at(name: &str, base_url: &str, config: Value) -> ApiModel {
    let meta = catalog::meta_of(name);
    let mut merged = meta.loader_kwargs.clone();
    merged.extend([
        ("base_url".to_owned(), json!(base_url)),
        ("model_id".to_owned(), json!("m")),
        ("api_key_env".to_owned(), json!("")),
    ]);
    if let Value::Object(given) = config {
        merged.extend(given);
    }
    let config: Config = serde_json::from_value(Value::Object(merged)).unwrap();
    let context = ModelContext { model_name: name.to_owned(), meta, model_path: None };
    let mut model = ApiModel::create(config, &context).unwrap_or_else(|error| panic!("{error}"));
    model.load().unwrap();
    model
}

type Answers = Result<Vec<Result<Generation, PluginError>>, PluginError>;

fn ask(model: &mut ApiModel, inputs: &[String]) -> Answers {
    let raw: Vec<BatchItem<'_>> = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| BatchItem {
            id: index as u64,
            input: ROption::RSome(RStr::from_str(input)),
            system_prompt: ROption::RNone,
            conversation: RSlice::EMPTY,
            images: RSlice::EMPTY,
            audio: ROption::RNone,
            video: ROption::RNone,
            expected_output: ROption::RNone,
            rubric: RSlice::EMPTY,
            other_args_json: RStr::from_str("{}"),
        })
        .collect();
    let items: Vec<Item<'_>> = raw.iter().map(Item::new).collect();
    let prepared = model.preprocess(&items)?;
    let ran = model.run(prepared)?;
    model.postprocess(ran, &items)
}

fn questions(count: usize) -> Vec<String> {
    (0..count).map(|index| format!("question {index}")).collect()
}

#[test]
fn throttled_requests_back_off_as_told_and_all_succeed() {
    let api = FakeApi::start(|request| {
        if request.index < 3 {
            Reply::error(429, "slow down").with_header("retry-after-ms", "20")
        } else {
            Reply::openai("Final Answer: (A)")
        }
    });
    let mut model = model("openai-compat/chat", &api, json!({"max_concurrency": 1}));
    let answers = ask(&mut model, &questions(2)).unwrap();
    let first = answers[0].as_ref().unwrap();
    assert_eq!(first.text, "Final Answer: (A)");
    assert_eq!(first.details["attempts"], 4, "{:?}", first.details);
    assert_eq!(first.details["finish_reason"], "stop");
    assert_eq!(first.details["truncated"], false);
    assert!(first.details.get("cost_usd").is_none(), "no price configured");
    assert_eq!(answers[1].as_ref().unwrap().details["attempts"], 1);
    assert_eq!(api.request_count(), 5);
    assert_eq!(model.concurrency_limit(), 1);
}

#[test]
fn server_errors_are_retried_until_the_attempts_run_out() {
    let api = FakeApi::start(|_| Reply::error(503, "overloaded").with_header("retry-after", "0"));
    let mut model = model("openai-compat/chat", &api, json!({"retries": 3}));
    let answers = ask(&mut model, &questions(1)).unwrap();
    let error = answers[0].as_ref().unwrap_err();
    assert_eq!(error.code, ErrorCode::UNAVAILABLE);
    assert!(
        error.message.contains("gave up after 3 attempts") && error.message.contains("HTTP 503: overloaded"),
        "{}",
        error.message
    );
    assert_eq!(api.request_count(), 3);
}

#[test]
fn the_retry_budget_bounds_a_call() {
    let api = FakeApi::start(|_| Reply::error(500, "boom").with_header("retry-after", "5"));
    let mut model = model("openai-compat/chat", &api, json!({"retry_max_s": 1}));
    let started = Instant::now();
    let error = ask(&mut model, &questions(1)).unwrap().remove(0).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(error.message.contains("retry_max_s"), "{}", error.message);
    assert_eq!(api.request_count(), 1, "a 5 s hint does not fit a 1 s budget");
}

#[test]
fn client_errors_fail_their_item_at_once_and_others_go_on() {
    let api = FakeApi::start(|request| {
        if request.prompt_text().contains("question 1") {
            Reply::error(400, "this model does not support that")
        } else {
            Reply::openai("fine")
        }
    });
    let mut model = model("openai-compat/chat", &api, json!({}));
    let answers = ask(&mut model, &questions(3)).unwrap();
    let error = answers[1].as_ref().unwrap_err();
    assert_eq!(error.code, ErrorCode::INVALID_INPUT);
    assert!(error.message.contains("HTTP 400: this model does not support that"), "{}", error.message);
    assert!(answers[0].is_ok() && answers[2].is_ok());
    assert_eq!(api.request_count(), 3);
}

#[test]
fn a_refused_key_stops_the_batch_and_every_later_one() {
    let api = FakeApi::start(|request| {
        if request.index == 0 {
            Reply::error(401, "invalid key")
        } else {
            // The others are slow: the batch must not wait for them to be retried.
            Reply::error(429, "busy").with_header("retry-after", "30")
        }
    });
    let mut model = model("openai-compat/chat", &api, json!({"max_concurrency": 4}));
    let started = Instant::now();
    let error = ask(&mut model, &questions(20)).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(error.code, ErrorCode::UNAUTHENTICATED);
    assert!(
        error.message.contains("HTTP 401") && error.message.contains("openai-compat/chat"),
        "{}",
        error.message
    );
    assert!(error.message.contains("api_key_env"), "{}", error.message);
    let seen = api.request_count();
    assert_eq!(ask(&mut model, &questions(2)).unwrap_err(), error);
    assert_eq!(api.request_count(), seen, "no request after the key was refused");
}

#[test]
fn malformed_answers_are_not_retried_but_dropped_connections_and_timeouts_are() {
    let calls = AtomicUsize::new(0);
    let api = FakeApi::start(move |request| {
        let text = request.prompt_text();
        if text.contains("question 0") {
            Reply::malformed()
        } else if text.contains("question 1") && calls.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::Drop
        } else if text.contains("question 2") && request.index < 4 {
            Reply::openai("late").after(Duration::from_millis(1500))
        } else {
            Reply::openai("ok")
        }
    });
    let mut model = model("openai-compat/chat", &api, json!({"max_concurrency": 1, "timeout_s": 0.5}));
    let answers = ask(&mut model, &questions(3)).unwrap();
    let error = answers[0].as_ref().unwrap_err();
    assert_eq!(error.code, ErrorCode::UNAVAILABLE);
    assert!(error.message.contains("not JSON"), "{}", error.message);
    assert_eq!(answers[1].as_ref().unwrap().details["attempts"], 2);
    let late = answers[2].as_ref().unwrap();
    assert_eq!(late.text, "ok");
    assert!(late.details["attempts"].as_u64().unwrap() >= 2, "{:?}", late.details);
}

#[test]
fn concurrency_reaches_but_never_exceeds_the_limit_over_kept_alive_connections() {
    let api = FakeApi::start(|_| Reply::openai("ok").after(Duration::from_millis(50)));
    let mut model = model("openai-compat/chat", &api, json!({"max_concurrency": 6}));
    for _ in 0..2 {
        let answers = ask(&mut model, &questions(30)).unwrap();
        assert!(answers.iter().all(Result::is_ok));
    }
    assert_eq!(api.max_in_flight(), 6);
    assert_eq!(api.request_count(), 60);
    assert!(api.connections() <= 6, "{} connections for 60 requests", api.connections());
}

#[test]
fn anthropic_answers_map_stop_reasons_and_carry_the_version_header() {
    let api = FakeApi::start(|_| Reply::anthropic_with("Final Answer: (D)", "max_tokens", 30, 1024));
    let mut model =
        model("anthropic/messages", &api, json!({"price_per_mtok": {"input": 1.0, "output": 5.0}}));
    let answer = ask(&mut model, &questions(1)).unwrap().remove(0).unwrap();
    assert_eq!((answer.prompt_tokens, answer.completion_tokens), (Some(30), Some(1024)));
    assert_eq!(answer.details["finish_reason"], "length");
    assert_eq!(answer.details["truncated"], true);
    let cost = answer.details["cost_usd"].as_f64().unwrap();
    assert!((cost - (30.0 + 5.0 * 1024.0) / 1e6).abs() < 1e-12, "{cost}");
    let request = &api.requests()[0];
    assert_eq!(request.path, "/v1/messages");
    assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(request.header("x-api-key"), None, "api_key_env \"\" sends no key");
    assert_eq!(request.body["max_tokens"], 1024);
}

#[test]
fn after_a_refused_key_no_call_waiting_for_a_slot_sends_a_request() {
    let api = FakeApi::start(|request| match request.index {
        // The first batch's one item: three 429s halve the limit 8 -> 4 -> 2 -> 1, one success
        // brings it to 2.
        0..=2 => Reply::error(429, "slow down").with_header("retry-after-ms", "1"),
        3 => Reply::openai("ok"),
        // The second batch: 2 requests in flight, 6 workers waiting for a slot.
        _ => Reply::error(401, "invalid key").after(Duration::from_millis(300)),
    });
    let mut model = model("openai-compat/chat", &api, json!({"max_concurrency": 8}));
    assert!(ask(&mut model, &questions(1)).unwrap()[0].is_ok());
    assert_eq!((api.request_count(), model.concurrency_limit()), (4, 2));
    let error = ask(&mut model, &questions(20)).unwrap_err();
    assert_eq!(error.code, ErrorCode::UNAUTHENTICATED, "{}", error.message);
    assert_eq!(api.request_count() - 4, 2, "only the requests already in flight when the key was refused");
}

#[test]
fn an_exhausted_quota_stops_the_batch_at_once_and_every_later_one() {
    let api = FakeApi::start(|_| {
        Reply::status(
            429,
            json!({"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
                             "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}),
        )
        .with_header("retry-after", "20")
    });
    let mut model = model("openai-compat/chat", &api, json!({"max_concurrency": 4}));
    let started = Instant::now();
    let error = ask(&mut model, &questions(20)).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}: not retried", started.elapsed());
    assert_eq!(error.code, ErrorCode::UNAUTHENTICATED);
    for part in ["quota is exhausted", "`openai-compat/chat`", "You exceeded your current quota"] {
        assert!(error.message.contains(part), "`{part}` missing from: {}", error.message);
    }
    assert!(!error.message.contains("api_key_env"), "the key is not the problem: {}", error.message);
    assert!(api.request_count() <= 4, "{} requests", api.request_count());
    let seen = api.request_count();
    assert_eq!(ask(&mut model, &questions(2)).unwrap_err(), error);
    assert_eq!(api.request_count(), seen, "no request after the quota ran out");
}

#[test]
fn a_plain_429_with_another_error_type_is_still_retried() {
    let api = FakeApi::start(|request| {
        if request.index == 0 {
            Reply::status(429, json!({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}))
                .with_header("retry-after-ms", "5")
        } else {
            Reply::openai("ok")
        }
    });
    let mut model = model("openai-compat/chat", &api, json!({"max_concurrency": 1}));
    let answer = ask(&mut model, &questions(1)).unwrap().remove(0).unwrap();
    assert_eq!(answer.details["attempts"], 2);
}

#[test]
fn an_unresolvable_host_stops_the_call_at_once() {
    // `.invalid` never resolves (RFC 6761).
    let mut model = model_at(
        "openai-compat/chat",
        "http://no-such-host.invalid/v1/",
        json!({"max_concurrency": 4, "retry_max_s": 60}),
    );
    let started = Instant::now();
    let error = ask(&mut model, &questions(10)).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}: not retried per item", started.elapsed());
    assert_eq!(error.code, ErrorCode::UNAUTHENTICATED);
    assert!(
        error.message.starts_with(
            "cannot resolve host no-such-host.invalid of base_url http://no-such-host.invalid/v1 for `openai-compat/chat`: "
        ) && error.message.ends_with("; check the base_url"),
        "{}",
        error.message
    );
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn a_server_that_is_not_running_stops_the_call_after_a_few_failed_connections() {
    let base_url = format!("http://127.0.0.1:{}/v1", closed_port());
    let mut model =
        model_at("openai-compat/chat", &base_url, json!({"max_concurrency": 4, "retry_max_s": 600}));
    let started = Instant::now();
    let error = ask(&mut model, &questions(50)).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert_eq!(error.code, ErrorCode::UNAUTHENTICATED);
    assert!(
        error
            .message
            .starts_with(&format!("cannot connect to {base_url} for `openai-compat/chat`: connection"))
            && error.message.contains("is the server running?"),
        "{}",
        error.message
    );
}

#[test]
fn connections_dropped_before_any_answer_stop_the_call_but_after_one_they_are_retried_per_item() {
    let api = FakeApi::start(|_| Reply::Drop);
    let mut never = model("openai-compat/chat", &api, json!({"max_concurrency": 4}));
    let error = ask(&mut never, &questions(50)).unwrap_err();
    assert!(error.message.contains("is the server running?"), "{}", error.message);
    assert!((8..=8 + 3).contains(&api.request_count()), "{} requests", api.request_count());

    let api = FakeApi::start(|request| if request.index == 0 { Reply::openai("ok") } else { Reply::Drop });
    let mut model = model("openai-compat/chat", &api, json!({"max_concurrency": 4, "retries": 2}));
    assert!(ask(&mut model, &questions(1)).unwrap()[0].is_ok());
    let answers = ask(&mut model, &questions(10)).expect("the server has answered: per-item failures");
    for answer in answers {
        let error = answer.unwrap_err();
        assert_eq!(error.code, ErrorCode::UNAVAILABLE);
        assert!(error.message.contains("gave up after 2 attempts"), "{}", error.message);
    }
    assert_eq!(api.request_count(), 1 + 10 * 2);
}
