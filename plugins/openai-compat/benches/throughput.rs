//! Request throughput of the plugin through its Model API (no host), against loopback servers
//! running in a child process (so `getrusage` counts only the client):
//!
//! 1. **latency**: every request answered after 50 ms; 2,000 items at `max_concurrency` 64 in
//!    batches of 256. The ideal is 64 / 50 ms = 1,280 requests/s (target: at least 85%), and
//!    the client's CPU time per request is reported.
//! 2. **rate limit**: a token bucket admitting 200 requests/s (bursts of 20), answering 429
//!    with `retry-after-ms` beyond it, admitted requests after 50 ms; 2,000 items at
//!    `max_concurrency` 64. Every item must succeed; sustained throughput as a share of 200/s
//!    (target: at least 80%).
//!
//! `cargo bench -p karma-plugin-openai-compat --bench throughput`. Figures are printed, never
//! asserted.

#[path = "../../../tests/e2e/fake_api.rs"]
mod fake_api;

use std::{
    io::{BufRead, BufReader, Read, Write},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use abi_stable::std_types::{ROption, RSlice, RStr};
use fake_api::{FakeApi, Reply};
use karma_plugin_api::{
    abi::BatchItem,
    sdk::{Item, Model, ModelContext},
};
use karma_plugin_openai_compat::{catalog, config::Config, ApiModel};
use serde_json::{json, Value};

const ITEMS: usize = 2000;
const BATCH: usize = 256;
const LATENCY: Duration = Duration::from_millis(50);
const RATE: f64 = 200.0;
const BURST: f64 = 20.0;
const SERVE: &str = "KARMA_OPENAI_COMPAT_BENCH_SERVE";

fn main() {
    if let Ok(mode) = std::env::var(SERVE) {
        serve(&mode);
        return;
    }
    let (mut child, base_url) = spawn_server("latency");
    let (wall, cpu, failed) = drive(&base_url, 64);
    let stats = stop_server(&mut child);
    let rate = ITEMS as f64 / wall;
    println!("latency server (50 ms), max_concurrency 64, {ITEMS} items in batches of {BATCH}:");
    println!(
        "  {wall:.2} s, {rate:.0} requests/s = {:.1}% of the ideal 1280/s; {failed} failed",
        rate / 1280.0 * 100.0
    );
    println!(
        "  client CPU {:.1} µs per request (user+sys {cpu:.3} s); server: {stats}",
        cpu / ITEMS as f64 * 1e6
    );

    let (mut child, base_url) = spawn_server("rate");
    let (wall, cpu, failed) = drive(&base_url, 64);
    let stats = stop_server(&mut child);
    let rate = ITEMS as f64 / wall;
    println!("rate-limited server ({RATE:.0}/s, bursts of {BURST:.0}, 429 beyond), max_concurrency 64, {ITEMS} items:");
    println!("  {wall:.2} s, {rate:.0} requests/s = {:.1}% of 200/s; {failed} failed", rate / RATE * 100.0);
    println!("  client CPU {:.1} µs per item; server: {stats}", cpu / ITEMS as f64 * 1e6);
}

/// Sends `ITEMS` items in batches; returns wall seconds, client CPU seconds and failed items.
fn drive(base_url: &str, concurrency: u32) -> (f64, f64, usize) {
    let meta = catalog::meta_of("openai-compat/chat");
    let mut merged = meta.loader_kwargs.clone();
    merged.extend([
        ("base_url".to_owned(), json!(base_url)),
        ("model_id".to_owned(), json!("bench")),
        ("api_key_env".to_owned(), json!("")),
        ("max_concurrency".to_owned(), json!(concurrency)),
    ]);
    let config: Config = match serde_json::from_value(Value::Object(merged)) {
        Ok(config) => config,
        Err(error) => panic!("bad bench config: {error}"),
    };
    let context = ModelContext { model_name: meta.name.clone(), meta, model_path: None };
    let mut model = ApiModel::create(config, &context).unwrap_or_else(|error| panic!("{error}"));
    model.load().unwrap_or_else(|error| panic!("{error}"));
    let inputs: Vec<String> =
        (0..ITEMS).map(|index| format!("Question {index}: which option is correct?")).collect();
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let mut failed = 0;
    for chunk in inputs.chunks(BATCH) {
        let raw: Vec<BatchItem<'_>> =
            chunk.iter().enumerate().map(|(index, input)| item(index as u64, input)).collect();
        let items: Vec<Item<'_>> = raw.iter().map(Item::new).collect();
        let prepared = model.preprocess(&items).unwrap_or_else(|error| panic!("{error}"));
        let ran = model.run(prepared).unwrap_or_else(|error| panic!("{error}"));
        let answers = model.postprocess(ran, &items).unwrap_or_else(|error| panic!("{error}"));
        failed += answers.iter().filter(|answer| answer.is_err()).count();
    }
    (started.elapsed().as_secs_f64(), cpu_seconds() - cpu_before, failed)
}

fn item(id: u64, input: &str) -> BatchItem<'_> {
    BatchItem {
        id,
        input: ROption::RSome(RStr::from_str(input)),
        system_prompt: ROption::RNone,
        conversation: RSlice::EMPTY,
        images: RSlice::EMPTY,
        audio: ROption::RNone,
        video: ROption::RNone,
        expected_output: ROption::RNone,
        rubric: RSlice::EMPTY,
        other_args_json: RStr::from_str("{}"),
    }
}

/// User plus system CPU time of this process.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// This executable again, as a server in `mode`; returns it and its base URL.
fn spawn_server(mode: &str) -> (Child, String) {
    let executable = std::env::current_exe().unwrap_or_else(|error| panic!("{error}"));
    let mut child = Command::new(executable)
        .env(SERVE, mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start the server: {error}"));
    let mut line = String::new();
    if let Some(stdout) = child.stdout.as_mut() {
        let _ = BufReader::new(stdout).read_line(&mut line);
    }
    (child, line.trim().to_owned())
}

/// Closes the server's stdin and returns the counts it prints.
fn stop_server(child: &mut Child) -> String {
    drop(child.stdin.take());
    let mut stats = String::new();
    if let Some(stdout) = child.stdout.as_mut() {
        let _ = stdout.read_to_string(&mut stats);
    }
    let _ = child.wait();
    stats.trim().to_owned()
}

/// The child: serves until stdin closes, then prints its counts.
fn serve(mode: &str) {
    let throttled = Arc::new(AtomicUsize::new(0));
    let api = if mode == "rate" {
        let bucket = Mutex::new((BURST, Instant::now()));
        let counter = Arc::clone(&throttled);
        FakeApi::start_with(
            move |_| {
                let mut state = bucket.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let now = Instant::now();
                state.0 = (state.0 + (now - state.1).as_secs_f64() * RATE).min(BURST);
                state.1 = now;
                if state.0 >= 1.0 {
                    state.0 -= 1.0;
                    Reply::openai("Final Answer: (A)").after(LATENCY)
                } else {
                    counter.fetch_add(1, Ordering::Relaxed);
                    let wait_ms = ((1.0 - state.0) / RATE * 1000.0).ceil();
                    Reply::error(429, "rate limit reached")
                        .with_header("retry-after-ms", &format!("{wait_ms}"))
                }
            },
            false,
        )
    } else {
        FakeApi::start_with(|_| Reply::openai("Final Answer: (A)").after(LATENCY), false)
    };
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "{}", api.base_url());
    let _ = stdout.flush();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    let _ = writeln!(
        stdout,
        "{} requests, {} answered 429, at most {} in flight, {} connections",
        api.request_count(),
        throttled.load(Ordering::Relaxed),
        api.max_in_flight(),
        api.connections()
    );
}
