//! Whole-process `karma-host eval` throughput (startup and file parsing included) for
//! `karma/constant` on 100k items: cache off, cold cache, warm cache, best and median of
//! `KARMA_BENCH_ROUNDS` (default 3) interleaved rounds. Then peak RSS while
//! streaming a generated 1 GiB JSONL (set KARMA_BENCH_JSONL_MIB to change the size), against a
//! 1/10th-size file in the same run, to show memory does not grow with the file.
//!
//! With `KARMA_BENCH_BASELINE_BIN=/path/to/an/older/karma-host`, each round also runs that
//! binary (same plugins, same files, interleaved) and the figures end with this build's median
//! throughput as a ratio of the baseline's: `bench/eval_throughput_ab.sh REF` builds REF and
//! does this.
//!
//! Run with `cargo bench -p karma-host --bench eval_throughput`.

mod common;

use std::{io::Write, path::Path, time::Duration};

use common::{release_dir, spawn_measured};

fn write_dataset(path: &Path, rows: usize) -> u64 {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("create dataset"));
    for index in 0..rows {
        writeln!(
            file,
            r#"{{"id":"q{index}","question":"Question {index}: which structure is described by this fairly long clinical vignette about a patient presenting with symptoms?","options":{{"A":"first option {index}","B":"second option","C":"third option","D":"fourth option"}},"answer":"{}"}}"#,
            ["A", "B", "C", "D"][index % 4]
        )
        .expect("write row");
    }
    file.flush().expect("flush");
    std::fs::metadata(path).map(|metadata| metadata.len()).unwrap_or(0)
}

fn eval(release: &Path, dataset: &Path, cache: Option<&Path>, work: &Path) -> (Duration, i64) {
    eval_with(&release.join("karma-host"), release, dataset, cache, work)
}

fn eval_with(
    binary: &Path,
    release: &Path,
    dataset: &Path,
    cache: Option<&Path>,
    work: &Path,
) -> (Duration, i64) {
    let plugins = release.to_str().expect("utf-8 path");
    let output = work.join("results.json");
    let mut args = vec![
        "--plugins-dir",
        plugins,
        "eval",
        "--model",
        "karma/constant",
        "--datasets",
        dataset.to_str().expect("utf-8"),
        "--no-progress",
        "--output",
        output.to_str().expect("utf-8"),
    ];
    match cache {
        Some(path) => args.extend(["--cache-path", path.to_str().expect("utf-8")]),
        None => args.push("--no-cache"),
    }
    spawn_measured(binary, &args)
}

fn main() {
    if !common::benchmarking() {
        return;
    }
    let release = release_dir();
    let work = tempfile::tempdir().expect("temporary directory");
    let items = 100_000;
    let dataset = work.path().join("items.jsonl");
    write_dataset(&dataset, items);
    // Interleaved rounds (the machines here are shared and noisy): best and median of each.
    let rounds: usize =
        std::env::var("KARMA_BENCH_ROUNDS").ok().and_then(|text| text.parse().ok()).unwrap_or(3).max(1);
    let baseline = std::env::var_os("KARMA_BENCH_BASELINE_BIN").map(std::path::PathBuf::from);
    let current = release.join("karma-host");
    let binaries: Vec<&Path> = std::iter::once(current.as_path()).chain(baseline.as_deref()).collect();
    // [binary][mode] -> times; modes: cache off, cold cache, warm cache.
    let mut times = vec![[Vec::new(), Vec::new(), Vec::new()]; binaries.len()];
    for round in 0..rounds {
        for (which, binary) in binaries.iter().enumerate() {
            let cache = work.path().join(format!("cache-{which}-{round}.sqlite"));
            times[which][0].push(eval_with(binary, &release, &dataset, None, work.path()).0);
            times[which][1].push(eval_with(binary, &release, &dataset, Some(&cache), work.path()).0);
            times[which][2].push(eval_with(binary, &release, &dataset, Some(&cache), work.path()).0);
        }
    }
    let rate = |elapsed: &Duration| items as f64 / elapsed.as_secs_f64();
    let labels = [
        ("cache off", "target > 200k/s; KARMA ~14k/s"),
        ("cold cache", "target > 50k/s; KARMA ~390/s"),
        ("warm cache", "target > 300k/s; KARMA ~2.2k/s"),
    ];
    for (which, binary) in binaries.iter().enumerate() {
        let name =
            if which == 0 { "this build".to_owned() } else { format!("baseline {}", binary.display()) };
        println!("karma-host eval ({name}), karma/constant, {items} items, batch size 8 (whole process, {rounds} rounds)");
        for (mode, (label, target)) in labels.iter().enumerate() {
            let sorted = &mut times[which][mode];
            sorted.sort();
            println!(
                "  {:<11} best {:>7.0} items/s, median {:>7.0} items/s  ({target})",
                format!("{label}:"),
                rate(&sorted[0]),
                rate(&sorted[sorted.len() / 2]),
            );
        }
    }
    if binaries.len() == 2 {
        println!("this build against the baseline, median throughput (1.00 = the same; target >= 0.90)");
        for (mode, (label, _)) in labels.iter().enumerate() {
            let median = |which: usize| rate(&times[which][mode][times[which][mode].len() / 2]);
            println!("  {:<11} {:.2}x", format!("{label}:"), median(0) / median(1));
        }
    }

    let mebibytes: u64 =
        std::env::var("KARMA_BENCH_JSONL_MIB").ok().and_then(|text| text.parse().ok()).unwrap_or(1024);
    let row_bytes = 300u64;
    let large_rows = (mebibytes * 1024 * 1024 / row_bytes) as usize;
    let small = work.path().join("small.jsonl");
    let large = work.path().join("large.jsonl");
    let small_size = write_dataset(&small, large_rows / 10);
    let large_size = write_dataset(&large, large_rows);
    let (small_time, small_rss) = eval(&release, &small, None, work.path());
    let (large_time, large_rss) = eval(&release, &large, None, work.path());
    println!("streaming a large JSONL (cache off)");
    println!(
        "  {:>6.0} MiB file: peak RSS {:>7.1} MiB, {:.1} s",
        small_size as f64 / 1048576.0,
        small_rss as f64 / 1024.0,
        small_time.as_secs_f64()
    );
    println!(
        "  {:>6.0} MiB file: peak RSS {:>7.1} MiB, {:.1} s",
        large_size as f64 / 1048576.0,
        large_rss as f64 / 1024.0,
        large_time.as_secs_f64()
    );
    println!("  RSS ratio large/small: {:.2} for a 10x larger file", large_rss as f64 / small_rss as f64);
}
