//! The metric stage on 100k free-text pairs: bleu, chrf, rouge (its four variants together),
//! wer, cer and tokenised_f1, each timed computing its score alone and with its 95% interval,
//! against the Python references (sacrebleu, rouge_score, jiwer, KARMA's F1 formula) timed on
//! the same pairs in the same run by `bench/metrics_reference.py`, when those packages are
//! installed (`pip install sacrebleu rouge-score jiwer nltk`). Target: at least 20x faster.
//!
//! Run with `cargo bench -p karma-host --bench metric_stage` (`KARMA_BENCH_PAIRS` changes the
//! count; `KARMA_BENCH_METRICS=bleu,wer` times only those, without the Python references, for
//! profiling).

use std::{io::Write, path::Path, process::Command, time::Instant};

use karma_host::metrics::{self, Sample};

/// The allocator `karma-host` itself runs on, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Clinical-sounding words; sentences are drawn from them with a fixed generator.
const WORDS: &[&str] = &[
    "patient",
    "presents",
    "with",
    "fever",
    "and",
    "cough",
    "for",
    "three",
    "days",
    "the",
    "blood",
    "pressure",
    "is",
    "elevated",
    "heart",
    "rate",
    "normal",
    "prescribed",
    "tablets",
    "twice",
    "daily",
    "after",
    "meals",
    "history",
    "of",
    "diabetes",
    "hypertension",
    "no",
    "known",
    "allergies",
    "chest",
    "pain",
    "radiating",
    "to",
    "left",
    "arm",
    "shortness",
    "breath",
    "on",
    "exertion",
    "wound",
    "kept",
    "clean",
    "dry",
    "review",
    "in",
    "two",
    "weeks",
    "medications",
    "were",
    "adjusted",
    "symptoms",
    "improved",
    "gradually",
    "insulin",
    "dose",
    "increased",
    "monitor",
    "glucose",
    "levels",
    "closely",
];

/// A small linear congruential generator: the same pairs on every machine.
struct Pseudo(u64);

impl Pseudo {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) % bound as u64) as usize
    }
}

/// References of 8-30 words; predictions copy them with a fifth of the words replaced and some
/// dropped, as a model's paraphrase would.
fn pairs(count: usize) -> Vec<(String, String)> {
    let mut random = Pseudo(42);
    (0..count)
        .map(|_| {
            let length = 8 + random.next(23);
            let reference: Vec<&str> = (0..length).map(|_| WORDS[random.next(WORDS.len())]).collect();
            let mut prediction: Vec<&str> = Vec::with_capacity(length);
            for word in &reference {
                match random.next(10) {
                    0 => {}
                    1 | 2 => prediction.push(WORDS[random.next(WORDS.len())]),
                    _ => prediction.push(word),
                }
            }
            (prediction.join(" ") + ".", reference.join(" ") + ".")
        })
        .collect()
}

/// Seconds for the score alone and for the score with its interval.
fn time_metric(name: &str, pairs: &[(String, String)]) -> (f64, f64) {
    let metric = metrics::find(name).expect("registered metric");
    let empty = serde_json::Value::Null;
    let samples: Vec<Sample<'_>> = pairs
        .iter()
        .map(|(prediction, reference)| Sample::single(Some(prediction), reference, &empty))
        .collect();
    let started = Instant::now();
    // As the engine's accumulator keeps them: each sample's statistics appended to one flat
    // vector, viewed in strides of one sample.
    let (mut stats, mut stride) = (Vec::new(), 1);
    for sample in &samples {
        let sample_stats = metric.sample_stats(sample);
        stride = sample_stats.len().max(1);
        stats.extend(sample_stats);
    }
    let views: Vec<&[f64]> = stats.chunks(stride).collect();
    let score = metric.aggregate(&views);
    let alone = started.elapsed();
    std::hint::black_box(score);
    let interval_started = Instant::now();
    std::hint::black_box(metrics::score_stats(metric, &views, 0));
    (alone.as_secs_f64(), (alone + interval_started.elapsed()).as_secs_f64())
}

fn python_baseline(path: &Path) -> Option<serde_json::Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/metrics_reference.py");
    let output = Command::new("python3").arg(script).arg(path).output().ok()?;
    if !output.status.success() {
        eprintln!(
            "Python references unavailable ({}); pip install sacrebleu rouge-score jiwer nltk",
            String::from_utf8_lossy(&output.stderr).lines().last().unwrap_or("no output")
        );
        return None;
    }
    serde_json::from_slice::<serde_json::Value>(&output.stdout)
        .ok()
        .map(|document| document["seconds"].clone())
}

fn main() {
    let count: usize =
        std::env::var("KARMA_BENCH_PAIRS").ok().and_then(|value| value.parse().ok()).unwrap_or(100_000);
    let pairs = pairs(count);
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&directory).expect("create target/bench");
    let path = directory.join("metric-pairs.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("create pairs file"));
    for (prediction, reference) in &pairs {
        writeln!(file, "{}", serde_json::json!({"prediction": prediction, "reference": reference}))
            .expect("write");
    }
    file.flush().expect("flush");
    drop(file);

    let groups: [(&str, &[&str]); 6] = [
        ("bleu", &["bleu"]),
        ("chrf", &["chrf"]),
        ("rouge", &["rouge1", "rouge2", "rougeL", "rougeLsum"]),
        ("wer", &["wer"]),
        ("cer", &["cer"]),
        ("tokenised_f1", &["tokenised_f1"]),
    ];
    let only = std::env::var("KARMA_BENCH_METRICS").ok();
    let chosen = |group: &str| only.as_deref().is_none_or(|only| only.split(',').any(|name| name == group));
    let ours: Vec<(&str, f64, f64)> = groups
        .iter()
        .filter(|(group, _)| chosen(group))
        .map(|(group, names)| {
            let (alone, with_interval) = names
                .iter()
                .map(|name| time_metric(name, &pairs))
                .fold((0.0, 0.0), |(a, b), (c, d)| (a + c, b + d));
            (*group, alone, with_interval)
        })
        .collect();
    let python = if only.is_none() { python_baseline(&path) } else { None };
    println!("metric stage, {count} pairs ({})", path.display());
    println!(
        "{:<14} {:>12} {:>16} {:>12} {:>10}",
        "METRIC", "OURS (s)", "WITH 95% CI (s)", "PYTHON (s)", "RATIO"
    );
    for (group, alone, with_interval) in ours {
        let reference = python.as_ref().and_then(|seconds| seconds[group].as_f64());
        println!(
            "{group:<14} {alone:>12.3} {with_interval:>16.3} {:>12} {:>10}",
            reference.map(|seconds| format!("{seconds:.3}")).unwrap_or_else(|| "-".into()),
            reference.map(|seconds| format!("{:.1}x", seconds / alone)).unwrap_or_else(|| "-".into()),
        );
    }
}
