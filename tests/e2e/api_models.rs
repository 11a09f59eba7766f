//! The openai-compat plugin through the real `karma-host` binary against [`FakeApi`]: both
//! protocols answering an MCQ dataset, the concurrency bound, back-off on 429, failed calls
//! kept out of the cache and re-asked, a refused key or an exhausted quota stopping the
//! dataset, the key never written anywhere, images as data URLs, and configuration refused
//! before any request.

use std::{
    collections::{HashMap, HashSet},
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use serde_json::{json, Value};

use crate::{
    datagen::{self, Question},
    eval_env::EvalEnv,
    fake_api::{FakeApi, Reply, Request},
    harness::{api_plugin, karma_command, Run},
    media_gen::png,
};

/// The variable the tests keep the key in (a custom `api_key_env`).
const KEY_VAR: &str = "KARMA_E2E_API_KEY";
const KEY: &str = "sk-e2e-7Qm2vX9pL4tR8wZ1kJ6d";
const MEDQA: &str = "openlifescienceai/medqa";

/// `karma-host eval` in `env`, with the key set and loopback kept away from any proxy.
fn eval(env: &EvalEnv, args: &[&str], extra_env: &[(&str, &str)]) -> Run {
    let args = env.args(args);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let hf_home = env.path("hf");
    let mut vars = vec![
        ("HF_HOME", hf_home.to_str().unwrap()),
        ("NO_PROXY", "127.0.0.1,localhost"),
        ("no_proxy", "127.0.0.1,localhost"),
        (KEY_VAR, KEY),
    ];
    vars.extend_from_slice(extra_env);
    karma_command(&refs, &vars, Some(env.work.path()))
}

/// `--model-args` for a generic model on `api`, plus `extra`.
fn model_args(api: &FakeApi, extra: Value) -> String {
    let mut args = json!({"base_url": api.base_url(), "model_id": "m", "api_key_env": KEY_VAR});
    if let (Some(args), Value::Object(extra)) = (args.as_object_mut(), extra) {
        args.extend(extra);
    }
    args.to_string()
}

/// `count` MCQ questions written as medqa rows to `q.jsonl`.
fn write_mcq(env: &EvalEnv, count: usize, seed: u64) -> Vec<Question> {
    let questions = datagen::questions(count, seed);
    datagen::write_jsonl(&env.path("q.jsonl"), &datagen::openlifescience_rows(&questions, false));
    questions
}

const MCQ_ARGS: [&str; 4] = ["--datasets", "medqa", "--dataset-arg", "medqa.data_files=q.jsonl"];

/// The question a request asks.
fn asked<'a>(questions: &'a [Question], request: &Request) -> Option<&'a Question> {
    let text = request.prompt_text();
    questions.iter().find(|question| text.contains(&question.question))
}

/// A script answering each question correctly in the OpenAI shape (400 for an unknown one).
fn oracle(questions: Vec<Question>) -> impl Fn(&Request) -> Reply + Send + Sync + 'static {
    move |request| match asked(&questions, request) {
        Some(question) => Reply::openai(&format!("Final Answer: ({})", question.answer)),
        None => Reply::error(400, "unknown question"),
    }
}

fn medqa(env: &EvalEnv) -> Value {
    env.results()["datasets"][MEDQA].clone()
}

/// Requests per question text.
fn requests_per_question(api: &FakeApi, questions: &[Question]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for request in api.requests() {
        let question = asked(questions, &request).map(|question| question.id.clone()).unwrap_or_default();
        *counts.entry(question).or_default() += 1;
    }
    counts
}

#[test]
fn both_protocols_answer_an_mcq_dataset() {
    type Answer = fn(&str) -> Reply;
    for (model, answer, path) in [
        ("openai-compat/chat", Reply::openai as Answer, "/v1/chat/completions"),
        ("anthropic/messages", Reply::anthropic as Answer, "/v1/messages"),
    ] {
        let env = EvalEnv::new(&[api_plugin()]);
        let questions = write_mcq(&env, 12, 31);
        let key = questions.clone();
        let api = FakeApi::start(move |request| match asked(&key, request) {
            Some(question) => answer(&format!("Final Answer: ({})", question.answer)),
            None => Reply::error(400, "unknown question"),
        });
        let args = model_args(&api, json!({}));
        let mut command = vec!["--model", model, "--model-args", &args, "--samples-output", "s.jsonl"];
        command.extend(MCQ_ARGS);
        eval(&env, &command, &[]).assert_code(0);
        let entry = medqa(&env);
        assert_eq!(entry["status"], "completed", "{model}: {entry}");
        let metric = &entry["metrics"]["exact_match"];
        assert_eq!(
            (metric["score"].as_f64(), metric["num_failed"].as_u64()),
            (Some(1.0), Some(0)),
            "{model}: {metric}"
        );
        let requests = api.requests();
        assert_eq!(requests.len(), 12, "{model}");
        for request in &requests {
            assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", path), "{model}");
            assert_eq!(request.body["model"], "m");
            assert_eq!(request.body["max_tokens"], 1024, "{model}: {}", request.body);
            assert_eq!(request.body["temperature"], 0.0, "{model}");
            if model.starts_with("anthropic") {
                assert_eq!(request.header("x-api-key"), Some(KEY));
                assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
                assert_eq!(request.header("authorization"), None);
            } else {
                assert_eq!(request.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
            }
        }
        let samples = env.samples("s.jsonl");
        assert_eq!(samples.len(), 12);
        assert_eq!(
            (samples[0]["input_tokens"].as_u64(), samples[0]["output_tokens"].as_u64()),
            (Some(12), Some(5))
        );
    }
}

#[test]
fn requests_in_flight_reach_max_concurrency_and_never_exceed_it() {
    let env = EvalEnv::new(&[api_plugin()]);
    let questions = write_mcq(&env, 40, 32);
    let answer = oracle(questions);
    let api = FakeApi::start(move |request| answer(request).after(Duration::from_millis(100)));
    let args = model_args(&api, json!({"max_concurrency": 5}));
    let mut command = vec!["--model", "openai-compat/chat", "--model-args", &args, "--batch-size", "40"];
    command.extend(MCQ_ARGS);
    eval(&env, &command, &[]).assert_code(0);
    assert_eq!(medqa(&env)["metrics"]["exact_match"]["score"], 1.0);
    assert_eq!(api.request_count(), 40);
    assert_eq!(api.max_in_flight(), 5, "the limit is reached and respected");
    assert!(api.connections() <= 5, "connections are kept alive: {}", api.connections());
}

#[test]
fn rate_limited_requests_back_off_as_told_and_every_item_succeeds() {
    let env = EvalEnv::new(&[api_plugin()]);
    let questions = write_mcq(&env, 16, 33);
    let throttled: HashSet<String> =
        questions.iter().step_by(3).map(|question| question.id.clone()).collect();
    let seen = Mutex::new(HashSet::new());
    let (key, limited) = (questions.clone(), throttled.clone());
    let api = FakeApi::start(move |request| {
        let question = asked(&key, request).expect("a known question");
        let first = seen.lock().unwrap().insert(question.id.clone());
        if first && limited.contains(&question.id) {
            Reply::error(429, "Rate limit reached for requests").with_header("retry-after", "1")
        } else {
            Reply::openai(&format!("Final Answer: ({})", question.answer))
        }
    });
    let args = model_args(&api, json!({"max_concurrency": 4}));
    let mut command = vec!["--model", "openai-compat/chat", "--model-args", &args, "--batch-size", "16"];
    command.extend(MCQ_ARGS);
    eval(&env, &command, &[]).assert_code(0);
    let entry = medqa(&env);
    assert_eq!(entry["status"], "completed", "{entry}");
    assert_eq!(entry["metrics"]["exact_match"]["num_failed"], 0);
    assert_eq!(entry["metrics"]["exact_match"]["score"], 1.0);
    // Each throttled question was asked exactly twice, the others once.
    assert_eq!(api.request_count(), 16 + throttled.len());
    let counts = requests_per_question(&api, &questions);
    for question in &questions {
        let expected = if throttled.contains(&question.id) { 2 } else { 1 };
        assert_eq!(counts[&question.id], expected, "{}", question.id);
    }
    // ... and not before the second Retry-After asked for.
    let requests = api.requests();
    for id in &throttled {
        let times: Vec<_> = requests
            .iter()
            .filter(|request| asked(&questions, request).is_some_and(|question| &question.id == id))
            .map(|request| request.at)
            .collect();
        assert!(
            times[1] - times[0] >= Duration::from_millis(990),
            "{id}: retried after {:?}",
            times[1] - times[0]
        );
    }
}

#[test]
fn calls_that_keep_failing_are_failed_items_not_cached_and_only_they_are_asked_again() {
    let env = EvalEnv::new(&[api_plugin()]);
    let questions = write_mcq(&env, 10, 34);
    let failing: HashSet<String> = [1, 4, 7].iter().map(|index| questions[*index].id.clone()).collect();
    let fixed = Arc::new(AtomicBool::new(false));
    let (key, broken, repaired) = (questions.clone(), failing.clone(), Arc::clone(&fixed));
    let api = FakeApi::start(move |request| {
        let question = asked(&key, request).expect("a known question");
        if broken.contains(&question.id) && !repaired.load(Ordering::SeqCst) {
            Reply::error(503, "upstream overloaded").with_header("retry-after", "0")
        } else {
            Reply::openai(&format!("Final Answer: ({})", question.answer))
        }
    });
    let args = model_args(&api, json!({"retries": 2}));
    let mut command =
        vec!["--model", "openai-compat/chat", "--model-args", &args, "--samples-output", "s.jsonl"];
    command.extend(MCQ_ARGS);
    eval(&env, &command, &[]).assert_code(1);
    let entry = medqa(&env);
    assert_eq!(entry["status"], "completed_with_failures", "{entry}");
    assert_eq!(entry["num_failed"], 3);
    let metric = &entry["metrics"]["exact_match"];
    assert_eq!(
        (metric["num_samples"].as_u64(), metric["num_failed"].as_u64()),
        (Some(7), Some(3)),
        "{metric}"
    );
    assert_eq!(metric["score"], 1.0, "failures are not scored");
    assert_eq!(env.cached_outputs(), 7, "failures are not cached");
    for sample in env.samples("s.jsonl") {
        let failed = failing.contains(sample["id"].as_str().unwrap());
        let error = &sample["error"];
        assert_eq!(!error.is_null(), failed, "{sample}");
        if failed {
            let message = error.as_str().unwrap();
            assert!(
                message.contains("gave up after 2 attempts") && message.contains("HTTP 503"),
                "{message}"
            );
            assert!(sample["raw_output"].is_null(), "a failed call is never text: {sample}");
        }
    }
    assert_eq!(api.request_count(), 7 + 3 * 2);

    fixed.store(true, Ordering::SeqCst);
    let before = api.request_count();
    eval(&env, &command, &[]).assert_code(0);
    let entry = medqa(&env);
    assert_eq!((entry["num_failed"].as_u64(), entry["cache_hits"].as_u64()), (Some(0), Some(7)), "{entry}");
    assert_eq!(entry["metrics"]["exact_match"]["score"], 1.0);
    let asked_again: HashSet<String> = api.requests()[before..]
        .iter()
        .filter_map(|request| asked(&questions, request).map(|question| question.id.clone()))
        .collect();
    assert_eq!(api.request_count() - before, 3);
    assert_eq!(asked_again, failing, "exactly the failed items are asked again");
}

#[test]
fn a_refused_key_stops_the_dataset_with_one_clear_error() {
    let env = EvalEnv::new(&[api_plugin()]);
    write_mcq(&env, 40, 35);
    let api = FakeApi::start(|_| Reply::error(401, "Incorrect API key provided"));
    let args = model_args(&api, json!({"max_concurrency": 4}));
    let mut command = vec!["--model", "openai-compat/chat", "--model-args", &args, "--batch-size", "8"];
    command.extend(MCQ_ARGS);
    let run = eval(&env, &command, &[]);
    assert_ne!(run.code, Some(0), "{}", run.stderr);
    for part in ["HTTP 401", "openai-compat/chat", KEY_VAR, "Incorrect API key provided"] {
        assert!(run.stderr.contains(part), "`{part}` missing from:\n{}", run.stderr);
    }
    assert_eq!(run.stderr.matches("HTTP 401").count(), 1, "one error, once:\n{}", run.stderr);
    assert!(api.request_count() <= 4, "{} requests after the key was refused", api.request_count());
    let entry = medqa(&env);
    assert_eq!(entry["status"], "failed", "{entry}");
    assert!(entry["error"].as_str().is_some_and(|error| error.contains("HTTP 401")), "{entry}");
    assert_eq!(env.cached_outputs(), 0);
}

#[test]
fn an_exhausted_quota_stops_the_dataset_with_one_clear_error() {
    let env = EvalEnv::new(&[api_plugin()]);
    write_mcq(&env, 40, 38);
    let api = FakeApi::start(|_| {
        Reply::status(
            429,
            json!({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota",
                             "code": "insufficient_quota"}}),
        )
    });
    let args = model_args(&api, json!({"max_concurrency": 4}));
    let mut command = vec!["--model", "openai-compat/chat", "--model-args", &args, "--batch-size", "8"];
    command.extend(MCQ_ARGS);
    let run = eval(&env, &command, &[]);
    assert_ne!(run.code, Some(0), "{}", run.stderr);
    for part in ["quota is exhausted", "openai-compat/chat", "You exceeded your current quota"] {
        assert!(run.stderr.contains(part), "`{part}` missing from:\n{}", run.stderr);
    }
    assert_eq!(run.stderr.matches("quota is exhausted").count(), 1, "one error, once:\n{}", run.stderr);
    assert!(api.request_count() <= 4, "{} requests: an exhausted quota is not retried", api.request_count());
    let entry = medqa(&env);
    assert_eq!(entry["status"], "failed", "{entry}");
    assert_eq!(env.cached_outputs(), 0);
}

/// Every file under `directory`, recursively.
fn files_under(directory: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(directory).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn the_api_key_reaches_no_output_file_and_no_log() {
    let env = EvalEnv::new(&[api_plugin()]);
    let questions = write_mcq(&env, 6, 36);
    let (key, echoing) = (questions.clone(), questions[2].question.clone());
    let api = FakeApi::start(move |request| {
        if request.header("authorization") != Some(format!("Bearer {KEY}").as_str()) {
            return Reply::error(401, "no key");
        }
        let question = asked(&key, request).expect("a known question");
        if question.question == echoing {
            // Some APIs quote the key they refuse.
            Reply::error(400, &format!("Incorrect API key provided: {KEY}"))
        } else {
            Reply::openai(&format!("Final Answer: ({})", question.answer))
        }
    });
    let args = model_args(&api, json!({"retries": 3}));
    let mut command = vec![
        "--model",
        "openai-compat/chat",
        "--model-args",
        &args,
        "--samples-output",
        "s.jsonl",
        "--format",
        "json",
    ];
    command.extend(MCQ_ARGS);
    let run = eval(&env, &command, &[("RUST_LOG", "debug")]);
    run.assert_code(1);
    assert_eq!(medqa(&env)["num_failed"], 1);
    let samples = env.samples("s.jsonl");
    let error = samples[2]["error"].as_str().unwrap();
    assert!(error.contains("HTTP 400") && error.contains("<redacted>"), "{error}");
    assert!(
        !run.stdout.contains(KEY) && !run.stderr.contains(KEY),
        "the key is in the output:\n{}",
        run.stderr
    );
    let files = files_under(env.work.path());
    assert!(files.iter().any(|file| file.ends_with("cache.sqlite")), "{files:?}");
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(KEY.len()).any(|window| window == KEY.as_bytes()),
            "the key is in {}",
            file.display()
        );
    }
}

/// Standard base64, written here so the test does not share the plugin's encoder.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let bytes = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(bytes[0]) << 16) | (u32::from(bytes[1]) << 8) | u32::from(bytes[2]);
        for index in 0..4 {
            out.push(if index <= chunk.len() {
                ALPHABET[(n >> (18 - 6 * index)) as usize & 63] as char
            } else {
                '='
            });
        }
    }
    out
}

#[test]
fn images_travel_as_data_urls_and_base64_blocks() {
    let env = EvalEnv::new(&[api_plugin()]);
    let (first, second) = (png(6, 4, 11), png(5, 5, 12));
    env.work.write("media/a.png", &first);
    env.work.write("media/b.png", &second);
    datagen::write_jsonl(
        &env.path("media/vqa.jsonl"),
        &[
            json!({"images": ["a.png", "b.png"], "question": "Are these the same?", "answer": "no"}),
            json!({"image": "b.png", "question": "Which side is darker?", "answer": "left"}),
        ],
    );
    let answer = |request: &Request| if request.prompt_text().contains("same") { "no" } else { "left" };
    for model in ["openai-compat/chat", "anthropic/messages"] {
        let api = FakeApi::start(move |request| {
            if model.starts_with("anthropic") {
                Reply::anthropic(answer(request))
            } else {
                Reply::openai(answer(request))
            }
        });
        let args = model_args(&api, json!({}));
        eval(&env, &["--model", model, "--model-args", &args, "--datasets", "media/vqa.jsonl"], &[])
            .assert_code(0);
        let entry = &env.results()["datasets"]["media/vqa.jsonl"];
        assert_eq!(entry["task_type"], "vqa");
        assert_eq!(entry["metrics"]["exact_match"]["score"], 1.0, "{model}: {entry}");
        let mut requests = api.requests();
        requests.sort_by_key(|request| !request.prompt_text().contains("same"));
        for (request, images) in requests.iter().zip([vec![&first, &second], vec![&second]]) {
            let parts = request.last_parts();
            let sent: Vec<String> = if model.starts_with("anthropic") {
                let blocks: Vec<&Value> = parts.iter().filter(|part| part["type"] == "image").collect();
                for block in &blocks {
                    assert_eq!(
                        (block["source"]["type"].as_str(), block["source"]["media_type"].as_str()),
                        (Some("base64"), Some("image/png"))
                    );
                }
                blocks.iter().map(|block| block["source"]["data"].as_str().unwrap().to_owned()).collect()
            } else {
                parts
                    .iter()
                    .filter(|part| part["type"] == "image_url")
                    .map(|part| part["image_url"]["url"].as_str().unwrap().to_owned())
                    .collect()
            };
            let expected: Vec<String> = images
                .iter()
                .map(|image| {
                    if model.starts_with("anthropic") {
                        base64(image)
                    } else {
                        format!("data:image/png;base64,{}", base64(image))
                    }
                })
                .collect();
            assert_eq!(sent, expected, "{model}");
            assert!(
                parts.iter().any(|part| part["type"] == "text"),
                "{model}: the question goes with the images"
            );
        }
    }
}

#[test]
fn a_missing_key_or_a_key_in_the_configuration_is_refused_before_any_request() {
    let env = EvalEnv::new(&[api_plugin()]);
    write_mcq(&env, 3, 37);
    let api = FakeApi::start(|_| Reply::openai("Final Answer: (A)"));
    let unset = model_args(&api, json!({"api_key_env": "KARMA_E2E_SURELY_UNSET_KEY"}));
    let given = model_args(&api, json!({"api_key": KEY}));
    let generic = json!({"model_id": "m"}).to_string();
    let in_url =
        model_args(&api, json!({"base_url": api.base_url().replace("http://", &format!("http://u:{KEY}@"))}));
    let cases = [
        ("openai-compat/chat", unset.as_str(), "environment variable KARMA_E2E_SURELY_UNSET_KEY is not set: export it, or set api_key_env to the variable that holds the key"),
        ("openai-compat/chat", given.as_str(), "the key is read only from the environment variable named by api_key_env"),
        ("openai-compat/chat", generic.as_str(), "`openai-compat/chat` needs `base_url`"),
        ("openai-compat/chat", in_url.as_str(), "`base_url` must not carry credentials"),
    ];
    for (model, args, expected) in cases {
        let mut command = vec!["--model", model, "--model-args", args];
        command.extend(MCQ_ARGS);
        let run = eval(&env, &command, &[]);
        assert_eq!(run.code, Some(2), "{args}\n{}", run.stderr);
        assert!(run.stderr.contains(expected), "expected {expected:?} in\n{}", run.stderr);
        assert!(!run.stderr.contains(KEY), "the refused key is echoed:\n{}", run.stderr);
    }
    // A named model with its default variable unset, under --dry-run too.
    let run = eval(
        &env,
        &[
            "--model",
            "gpt-4o-mini",
            "--dry-run",
            "--datasets",
            "medqa",
            "--dataset-arg",
            "medqa.data_files=q.jsonl",
        ],
        &[("OPENAI_API_KEY", "")],
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("environment variable OPENAI_API_KEY is not set"), "{}", run.stderr);
    assert_eq!(api.request_count(), 0, "nothing was sent");
}

/// A CONNECT proxy on loopback that tunnels every connection to `backend`, whatever host the
/// client asked for, and records the CONNECT targets.
fn connect_proxy(backend: std::net::SocketAddr) -> (String, Arc<Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let targets: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&targets);
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                seen.lock().unwrap().push(line.trim_end().to_owned());
                // The rest of the CONNECT request's head.
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap() == 0 || header == "\r\n" {
                        break;
                    }
                }
                let mut client = client;
                client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").unwrap();
                let upstream = std::net::TcpStream::connect(backend).unwrap();
                let (mut up_read, mut up_write) = (upstream.try_clone().unwrap(), upstream);
                let mut client_write = client.try_clone().unwrap();
                std::thread::spawn(move || std::io::copy(&mut up_read, &mut client_write));
                let _ = std::io::copy(&mut reader, &mut up_write);
            });
        }
    });
    (format!("http://{address}"), targets)
}

#[test]
fn an_http_proxy_named_in_the_environment_carries_the_requests() {
    let env = EvalEnv::new(&[api_plugin()]);
    let questions = write_mcq(&env, 3, 8);
    let api = FakeApi::start(oracle(questions));
    let backend: std::net::SocketAddr =
        api.base_url().trim_start_matches("http://").trim_end_matches("/v1").parse().unwrap();
    let (proxy_url, targets) = connect_proxy(backend);
    // The API's host does not resolve: only the proxy can reach it.
    let args = json!({
        "base_url": "http://api.example.invalid:8080/v1", "model_id": "m", "api_key_env": KEY_VAR
    })
    .to_string();
    let mut command =
        vec!["--model", "openai-compat/chat", "--model-args", &args, "--samples-output", "s.jsonl"];
    command.extend(MCQ_ARGS);
    let proxies = [("HTTP_PROXY", proxy_url.as_str()), ("HTTPS_PROXY", proxy_url.as_str())];
    let run = eval(&env, &command, &proxies);
    assert_eq!(
        run.code,
        Some(0),
        "{:?}",
        env.samples("s.jsonl").first().map(|sample| sample["error"].clone())
    );
    assert_eq!(medqa(&env)["metrics"]["exact_match"]["score"], 1.0);
    assert_eq!(api.request_count(), 3);
    let targets = targets.lock().unwrap().clone();
    assert!(!targets.is_empty());
    assert!(
        targets.iter().all(|target| target.starts_with("CONNECT api.example.invalid:8080 ")),
        "{targets:?}"
    );
}
