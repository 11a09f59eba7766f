//! One-pass log-likelihood scoring (`score::score`: each context run once per request) against
//! the former path (`score::score_separately`: one sequence per context and continuation), on
//! the tiny random-weight checkpoints of every architecture: mixed single- and multi-token
//! continuations, contexts of different lengths in one left-padded batch, quantized weights,
//! and continuations that end at the model's last position.

#[path = "support/tiny_models.rs"]
mod tiny_models;

use std::path::Path;

use candle_core::{quantized::GgmlDType, DType, Device};
use karma_plugin_candle_llm::{
    generate::{self, Network, SamplingSettings},
    loader::{self, LoadOptions, LoadedModel},
    score::{self, ContinuationLogprob, ScoreRequest},
    source,
};
use tiny_models::Arch;

/// Log-probabilities closer than this count as equal.
const TOLERANCE: f64 = 1e-4;

fn load(location: &Path, dequantize: Option<bool>) -> LoadedModel {
    let files = source::resolve(location.to_str().unwrap(), None, "main", true).unwrap();
    loader::load(
        &files,
        &LoadOptions {
            dtype: DType::F32,
            device: &Device::Cpu,
            dequantize,
            dequantize_below_parameters: loader::DEQUANTIZE_BELOW_PARAMETERS,
        },
    )
    .unwrap()
}

fn encode(model: &LoadedModel, text: &str) -> Vec<u32> {
    model.tokenizer.encode(text, false).unwrap()
}

/// Requests of every shape: letters only (the fast path), letters and phrases mixed, phrases
/// only, a request without continuations, contexts from 1 to ~60 tokens, and a continuation that
/// is the model's own greedy answer (so `is_greedy` is true somewhere).
fn mixed_requests(model: &mut LoadedModel) -> Vec<ScoreRequest> {
    let letters: Vec<Vec<u32>> = [" A", " B", " C", " D"].iter().map(|l| encode(model, l)).collect();
    assert!(letters.iter().all(|letter| letter.len() == 1), "the letters are single tokens: {letters:?}");
    let question = encode(
        model,
        "<|im_start|>user\nWhich organ makes insulin? A. the liver B. the pancreas C. an ear D. the garden<|im_end|>\n<|im_start|>assistant\n",
    );
    let short = encode(model, "the");
    let middle = encode(model, "an apple in the garden");
    let greedy = {
        let LoadedModel { network, tokenizer, .. } = model;
        generate::generate(network, tokenizer, std::slice::from_ref(&middle), &SamplingSettings::greedy(3))
            .unwrap()
            .remove(0)
            .tokens
    };
    assert!(!greedy.is_empty());
    let phrase = |text: &str| encode(model, text);
    vec![
        ScoreRequest { context: question.clone(), continuations: letters.clone() },
        ScoreRequest {
            context: short.clone(),
            continuations: vec![
                letters[0].clone(),
                phrase(" the garden"),
                letters[3].clone(),
                phrase(" an apple in the"),
            ],
        },
        ScoreRequest { context: middle.clone(), continuations: vec![greedy[..1].to_vec(), greedy.clone()] },
        ScoreRequest { context: short, continuations: Vec::new() },
        ScoreRequest { context: middle, continuations: vec![phrase(" in"), vec![7, 8, 9, 10, 11]] },
        ScoreRequest {
            context: question,
            continuations: vec![phrase(" B. the pancreas"), letters[1].clone()],
        },
    ]
}

/// The same requests as separate `(context, continuation)` pairs, in order.
fn as_pairs(requests: &[ScoreRequest]) -> Vec<(Vec<u32>, Vec<u32>)> {
    requests
        .iter()
        .flat_map(|request| {
            request.continuations.iter().map(|continuation| (request.context.clone(), continuation.clone()))
        })
        .collect()
}

fn assert_same(what: &str, new: &[Vec<ContinuationLogprob>], old: &[ContinuationLogprob]) {
    let flat: Vec<&ContinuationLogprob> = new.iter().flatten().collect();
    assert_eq!(flat.len(), old.len(), "{what}: one score per continuation");
    for (index, (new, old)) in flat.iter().zip(old).enumerate() {
        assert!(new.logprob.is_finite() && new.logprob < 0.0, "{what} #{index}: {new:?}");
        assert!(
            (new.logprob - old.logprob).abs() < TOLERANCE,
            "{what} #{index}: one-pass {} vs separate {}",
            new.logprob,
            old.logprob
        );
        assert_eq!(new.is_greedy, old.is_greedy, "{what} #{index}: greedy flags differ");
    }
}

/// New against old on `requests`, as one batch and request by request.
fn check_model(what: &str, model: &mut LoadedModel, requests: &[ScoreRequest]) {
    let pad = model.tokenizer.pad_id();
    let old = score::score_separately(&mut model.network, &as_pairs(requests), pad).unwrap();
    let new = score::score(&mut model.network, requests, pad).unwrap();
    assert_eq!(new.len(), requests.len());
    for (request, scores) in requests.iter().zip(&new) {
        assert_eq!(scores.len(), request.continuations.len(), "{what}");
    }
    assert_same(what, &new, &old);
    assert!(new.iter().flatten().any(|scored| scored.is_greedy), "{what}: the greedy answer is flagged");
    let mut offset = 0;
    for (index, request) in requests.iter().enumerate() {
        let alone = score::score(&mut model.network, std::slice::from_ref(request), pad).unwrap();
        let count = request.continuations.len();
        assert_same(&format!("{what}, request {index} alone"), &alone, &old[offset..offset + count]);
        offset += count;
    }
}

#[test]
fn one_pass_scores_equal_separate_scores_on_every_architecture() {
    for arch in Arch::ALL {
        let dir = tempfile::tempdir().unwrap();
        tiny_models::write_checkpoint(dir.path(), arch);
        let mut model = load(dir.path(), None);
        assert_eq!(matches!(model.network, Network::Batched(_)), Arch::BATCHED.contains(&arch));
        let requests = mixed_requests(&mut model);
        check_model(&format!("{arch:?}"), &mut model, &requests);
    }
}

#[test]
fn one_pass_scores_equal_separate_scores_on_quantized_weights() {
    let dir = tempfile::tempdir().unwrap();
    let tensors = tiny_models::write_checkpoint(dir.path(), Arch::Llama);
    let gguf = dir.path().join("gguf/tiny-q8_0.gguf");
    tiny_models::write_gguf(&gguf, Arch::Llama, &tensors, GgmlDType::Q8_0);
    let mut model = load(&gguf, Some(false));
    let requests = mixed_requests(&mut model);
    check_model("llama Q8_0", &mut model, &requests);
}

#[test]
fn continuations_ending_at_the_last_position_are_scored_like_the_separate_path() {
    let positions = tiny_models::POSITIONS;
    for arch in [Arch::Qwen2, Arch::Phi3] {
        let dir = tempfile::tempdir().unwrap();
        tiny_models::write_checkpoint(dir.path(), arch);
        let mut model = load(dir.path(), None);
        let long: Vec<u32> = (0..positions - 3).map(|index| (index * 7 % 250 + 3) as u32).collect();
        // The long context's continuation ends at the last position; the short context's
        // 8-token continuation makes the shared continuation step longer than that context has
        // room for, so the long one gets its own step.
        let requests = vec![
            ScoreRequest { context: long.clone(), continuations: vec![vec![40, 41, 42], vec![43]] },
            ScoreRequest { context: vec![5, 6, 7], continuations: vec![(20..28).collect(), vec![9]] },
        ];
        let pad = model.tokenizer.pad_id();
        let old = score::score_separately(&mut model.network, &as_pairs(&requests), pad).unwrap();
        let new = score::score(&mut model.network, &requests, pad).unwrap();
        assert_same(&format!("{arch:?} at the last position"), &new, &old);
        let too_long = ScoreRequest { context: long, continuations: vec![vec![1, 2, 3, 4]] };
        let error = score::score(&mut model.network, &[too_long], pad).unwrap_err();
        assert!(
            error.contains(&format!("{} tokens exceed the model's {positions} positions", positions + 1)),
            "{error}"
        );
    }
}

#[test]
fn unscorable_requests_are_refused_as_before() {
    let dir = tempfile::tempdir().unwrap();
    tiny_models::write_checkpoint(dir.path(), Arch::Llama);
    let mut model = load(dir.path(), None);
    let empty_continuation = ScoreRequest { context: vec![5, 6], continuations: vec![vec![7], Vec::new()] };
    let error = score::score(&mut model.network, &[empty_continuation], 0).unwrap_err();
    assert!(error.contains("the continuation 0 (both need at least one)"), "{error}");
    let empty_context = ScoreRequest { context: Vec::new(), continuations: vec![vec![7]] };
    let error = score::score(&mut model.network, &[empty_context], 0).unwrap_err();
    assert!(error.contains("the context has 0 tokens"), "{error}");
    assert!(score::score(&mut model.network, &[], 0).unwrap().is_empty());
}
