//! Measures what the plugin boundary costs, against baselines taken in the same run:
//!
//! 1. one batch of 64 text items through `karma/echo`'s real vtable (FFI, SDK glue, pairing by
//!    id) against the same model called directly in-process through the SDK's `Model` trait;
//! 2. the same batch through a worker process (`--isolation worker`: encode, two pipe hops,
//!    decode, and the worker's own vtable call) against the in-process backend, and a batch
//!    carrying one 16 MiB image both ways;
//! 3. `karma-host list models` wall time and peak RSS with the workspace's plugins, against
//!    spawning `/bin/true`.
//!
//! Run with `cargo bench -p karma-host --bench plugin_overhead`. It builds the release binary and
//! plugins first. Figures are printed, never asserted: machines here are shared and noisy.

mod common;

use std::{
    hint::black_box,
    path::Path,
    time::{Duration, Instant},
};

use common::{release_dir, spawn_measured};

use karma_host::{
    datasets::item::MediaBlob,
    datasets::item::OwnedItem,
    plugins::{
        open_backend, scan, with_batch_view, Backend, Isolation, ModelInstance, PluginDir, WORKER_BINARY,
    },
};
use karma_plugin_api::sdk::{Item, Model, ModelContext};
use karma_plugin_baseline::{Baseline, Echo, NoConfig};

const BATCH: usize = 64;

/// Median time per call of `body` over `rounds` rounds of `calls` calls.
fn time_per_call(rounds: usize, calls: usize, mut body: impl FnMut()) -> Duration {
    let mut samples: Vec<Duration> = (0..rounds)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..calls {
                body();
            }
            started.elapsed() / calls as u32
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

fn items() -> Vec<OwnedItem> {
    (0..BATCH as u64)
        .map(|id| OwnedItem {
            id,
            input: Some(format!("Question {id}: which organ secretes insulin? Answer with a letter.")),
            other_args: r#"{"options":{"A":"liver","B":"pancreas","C":"spleen","D":"kidney"}}"#.to_owned(),
            ..OwnedItem::default()
        })
        .collect()
}

fn ffi_against_direct(release: &Path) {
    let registry = scan(&[PluginDir { path: release.to_owned(), explicit: true }]);
    let echo = registry.model("karma/echo").expect("karma/echo is registered");
    let mut instance = ModelInstance::create(echo, "{}").expect("create");
    instance.load().expect("load");
    let items = items();

    let through_ffi = time_per_call(15, 2000, || {
        let outputs = with_batch_view(&items, false, |batch| instance.run(batch)).expect("run");
        black_box(outputs);
    });

    let context = ModelContext { model_name: "karma/echo".into(), meta: echo.meta.clone(), model_path: None };
    let mut direct = Baseline::<Echo>::create(NoConfig {}, &context).expect("create");
    let direct_call = time_per_call(15, 2000, || {
        let results = with_batch_view(&items, false, |batch| {
            let views: Vec<Item<'_>> = batch.iter().map(Item::new).collect();
            let prepared = direct.preprocess(&views).expect("preprocess");
            let raw = direct.run(prepared).expect("run");
            direct.postprocess(raw, &views).expect("postprocess")
        });
        black_box(results);
    });

    let overhead_per_item = through_ffi.saturating_sub(direct_call).as_nanos() as f64 / BATCH as f64;
    println!("batch of {BATCH} text items, karma/echo");
    println!("  direct in-process (SDK Model trait): {:>9.2} µs/batch", direct_call.as_nanos() as f64 / 1e3);
    println!("  through the plugin vtable (FFI):     {:>9.2} µs/batch", through_ffi.as_nanos() as f64 / 1e3);
    println!(
        "  ratio FFI / direct:                  {:>9.3}",
        through_ffi.as_secs_f64() / direct_call.as_secs_f64()
    );
    println!("  FFI overhead per item:               {overhead_per_item:>9.1} ns (target < 100 ns)");
}

fn worker_against_in_process(release: &Path) {
    WORKER_BINARY.set(release.join("karma-host")).expect("set once");
    let registry = scan(&[PluginDir { path: release.to_owned(), explicit: true }]);
    let echo = registry.model("karma/echo").expect("karma/echo is registered");
    let timeout = Duration::from_secs(60);
    let mut backends: Vec<(&str, Box<dyn Backend>)> = [Isolation::InProcess, Isolation::Worker]
        .into_iter()
        .map(|isolation| {
            let mut backend = open_backend(echo, "{}", isolation, timeout).expect("open");
            backend.load().expect("load");
            (isolation.as_str(), backend)
        })
        .collect();
    let texts = items();
    let texts: Vec<&OwnedItem> = texts.iter().collect();
    let image = OwnedItem {
        id: 1,
        input: Some("Describe the image.".to_owned()),
        images: vec![MediaBlob { data: vec![0x5a; 16 << 20], format: "png".to_owned() }],
        ..OwnedItem::default()
    };
    let mut text_times = Vec::new();
    let mut image_times = Vec::new();
    let mut empty_times = Vec::new();
    for (_, backend) in &mut backends {
        empty_times.push(time_per_call(15, 400, || {
            black_box(backend.scores_continuations().expect("ask"));
        }));
        text_times.push(time_per_call(15, 400, || {
            black_box(backend.generate(&texts, false).expect("generate"));
        }));
        image_times.push(time_per_call(9, 5, || {
            black_box(backend.generate(&[&image], false).expect("generate"));
        }));
    }
    let micros = |time: Duration| time.as_nanos() as f64 / 1e3;
    println!("batch of {BATCH} text items, karma/echo, through the Backend seam");
    println!("  in process:      {:>9.2} µs/batch", micros(text_times[0]));
    println!("  worker process:  {:>9.2} µs/batch", micros(text_times[1]));
    println!(
        "  (of which a round trip with no payload: {:.2} µs, against {:.2} µs in process)",
        micros(empty_times[1]),
        micros(empty_times[0])
    );
    println!(
        "  worker overhead: {:>9.2} µs/batch (target < 20 µs), ratio {:.2}",
        micros(text_times[1].saturating_sub(text_times[0])),
        text_times[1].as_secs_f64() / text_times[0].as_secs_f64()
    );
    let extra = image_times[1].saturating_sub(image_times[0]);
    println!("one item carrying a 16 MiB image");
    println!(
        "  in process:      {:>9.2} ms/batch (the view borrows the bytes: no copy)",
        micros(image_times[0]) / 1e3
    );
    println!("  worker process:  {:>9.2} ms/batch", micros(image_times[1]) / 1e3);
    println!(
        "  worker overhead: {:>9.2} ms ({:.2} GiB/s: written once into shared memory, mapped by the worker)",
        micros(extra) / 1e3,
        16.0 / 1024.0 / extra.as_secs_f64().max(1e-9)
    );
}

fn list_models_against_true(release: &Path) {
    let host = release.join("karma-host");
    let runs = 40;
    let mut host_times = Vec::new();
    let mut host_rss = 0;
    let mut true_times = Vec::new();
    for _ in 0..runs {
        let (elapsed, rss) = spawn_measured(&host, &["list", "models"]);
        host_times.push(elapsed);
        host_rss = host_rss.max(rss);
        true_times.push(spawn_measured(Path::new("/bin/true"), &[]).0);
    }
    host_times.sort();
    true_times.sort();
    let (host_median, true_median) = (host_times[runs / 2], true_times[runs / 2]);
    let plugins = std::fs::read_dir(release)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.path().extension().is_some_and(|e| e == "so"))
                .count()
        })
        .unwrap_or(0);
    println!("karma-host list models ({plugins} plugin file(s) beside the binary), {runs} runs");
    println!("  /bin/true spawn (baseline):  {:>8.2} ms median", true_median.as_secs_f64() * 1e3);
    println!(
        "  karma-host list models:      {:>8.2} ms median (target < 30 ms)",
        host_median.as_secs_f64() * 1e3
    );
    println!("  ratio to /bin/true:          {:>8.1}", host_median.as_secs_f64() / true_median.as_secs_f64());
    println!("  peak RSS:                    {:>8.1} MiB (target < 30 MiB)", host_rss as f64 / 1024.0);
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run quickly then.
    if !common::benchmarking() {
        return;
    }
    let release = release_dir();
    ffi_against_direct(&release);
    // Before the worker part: a spawned child's peak RSS counts this process's pages until
    // `exec`, and the worker part leaves 16 MiB images behind.
    list_models_against_true(&release);
    worker_against_in_process(&release);
}
