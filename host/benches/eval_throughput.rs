//! Whole-process `karma-host eval` throughput (startup and file parsing included) for
//! `karma/constant` on 100k items: cache off, cold cache, warm cache, best and median of
//! `KARMA_BENCH_ROUNDS` (default 3) interleaved rounds. Then peak RSS while
//! streaming a generated 1 GiB JSONL (set KARMA_BENCH_JSONL_MIB to change the size), against a
//! 1/10th-size file in the same run, to show memory does not grow with the file.
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
    spawn_measured(&release.join("karma-host"), &args)
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
    let (mut uncached, mut cold, mut warm) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let cache = work.path().join(format!("cache-{round}.sqlite"));
        uncached.push(eval(&release, &dataset, None, work.path()).0);
        cold.push(eval(&release, &dataset, Some(&cache), work.path()).0);
        warm.push(eval(&release, &dataset, Some(&cache), work.path()).0);
    }
    println!("karma-host eval, karma/constant, {items} items, batch size 8 (whole process, {rounds} rounds)");
    for (label, times, target) in [
        ("cache off", &mut uncached, "target > 200k/s; KARMA ~14k/s"),
        ("cold cache", &mut cold, "target > 50k/s; KARMA ~390/s"),
        ("warm cache", &mut warm, "target > 300k/s; KARMA ~2.2k/s"),
    ] {
        times.sort();
        let rate = |elapsed: &Duration| items as f64 / elapsed.as_secs_f64();
        println!(
            "  {:<11} best {:>7.0} items/s, median {:>7.0} items/s  ({target})",
            format!("{label}:"),
            rate(&times[0]),
            rate(&times[times.len() / 2]),
        );
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
