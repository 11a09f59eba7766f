//! Measures what the plugin boundary costs, against baselines taken in the same run:
//!
//! 1. one batch of 64 text items through `karma/echo`'s real vtable (FFI, SDK glue, pairing by
//!    id) against the same model called directly in-process through the SDK's `Model` trait;
//! 2. `karma-host list models` wall time and peak RSS with the workspace's plugins, against
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
    datasets::item::OwnedItem,
    plugins::{scan, with_batch_view, ModelInstance, PluginDir},
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
    list_models_against_true(&release);
}
