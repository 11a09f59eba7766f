//! The candle-llm plugin's model code on tiny random-weight checkpoints of every supported
//! architecture, generated here: loading (safetensors, GGUF, HF cache), logits against
//! candle-transformers' reference implementations, batching, sampling, stopping, scoring and
//! the errors for broken files.

#[path = "support/tiny_models.rs"]
mod tiny_models;

use std::path::Path;

use candle_core::{quantized::GgmlDType, DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{llama, qwen2, qwen3};
use karma_plugin_candle_llm::{
    arch::decoder::{left_pad, Decoder, KvCache, Step},
    generate::{self, Network, SamplingSettings},
    loader::{self, LoadOptions, LoadedModel},
    score, source,
};
use tiny_models::Arch;

fn load(location: &Path, dequantize: Option<bool>) -> Result<LoadedModel, String> {
    let files = source::resolve(location.to_str().unwrap(), None, "main", true)?;
    loader::load(
        &files,
        &LoadOptions {
            dtype: DType::F32,
            device: &Device::Cpu,
            dequantize,
            dequantize_below_parameters: loader::DEQUANTIZE_BELOW_PARAMETERS,
        },
    )
}

fn decoder(model: &LoadedModel) -> &Decoder {
    match &model.network {
        Network::Batched(decoder) => decoder,
        Network::Single { .. } => panic!("expected the batched decoder"),
    }
}

fn encode(model: &LoadedModel, text: &str) -> Vec<u32> {
    model.tokenizer.encode(text, false).unwrap()
}

/// Last-position logits of each prompt run as one left-padded batch.
fn batch_logits(decoder: &Decoder, prompts: &[Vec<u32>]) -> Vec<Vec<f32>> {
    let (padded, padding) = left_pad(prompts, 0);
    let hidden =
        decoder.forward(&Step { tokens: &padded, padding: &padding }, &mut KvCache::default()).unwrap();
    decoder.last_logits(&hidden).unwrap().to_vec2().unwrap()
}

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn reference_logits(dir: &Path, arch: Arch, tokens: &[u32]) -> Vec<f32> {
    let device = Device::Cpu;
    let vb =
        unsafe { VarBuilder::from_mmaped_safetensors(&[dir.join("model.safetensors")], DType::F32, &device) }
            .unwrap();
    let config = tiny_models::config_json(arch);
    let input = Tensor::new(tokens, &device).unwrap().unsqueeze(0).unwrap();
    let logits = match arch {
        Arch::Llama => {
            let parsed: llama::LlamaConfig = serde_json::from_value(config).unwrap();
            let parsed = parsed.into_config(false);
            let model = llama::Llama::load(vb, &parsed).unwrap();
            let mut cache = llama::Cache::new(true, DType::F32, &parsed, &device).unwrap();
            model.forward(&input, 0, &mut cache).unwrap()
        }
        Arch::Qwen2 => {
            let parsed: qwen2::Config = serde_json::from_value(config).unwrap();
            qwen2::ModelForCausalLM::new(&parsed, vb).unwrap().forward(&input, 0).unwrap()
        }
        Arch::Qwen3 => {
            let parsed: qwen3::Config = serde_json::from_value(config).unwrap();
            qwen3::ModelForCausalLM::new(&parsed, vb).unwrap().forward(&input, 0).unwrap()
        }
        _ => unreachable!(),
    };
    logits.flatten_all().unwrap().to_vec1().unwrap()
}

const PROMPTS: [&str; 3] =
    ["the", "an apple in the garden", "<|im_start|>user\nWhich answer: A, B, C or D?<|im_end|>\n"];

#[test]
fn batched_decoder_matches_candle_reference_models() {
    for arch in Arch::BATCHED {
        let dir = tempfile::tempdir().unwrap();
        tiny_models::write_checkpoint(dir.path(), arch);
        let model = load(dir.path(), None).unwrap();
        for prompt in PROMPTS {
            let tokens = encode(&model, prompt);
            let ours = batch_logits(decoder(&model), std::slice::from_ref(&tokens)).remove(0);
            let reference = reference_logits(dir.path(), arch, &tokens);
            let difference = max_difference(&ours, &reference);
            assert!(difference < 1e-4, "{arch:?} `{prompt}`: logits differ by {difference}");
        }
    }
}

#[test]
fn batched_logits_equal_unbatched_logits_through_prefill_and_decode() {
    for arch in Arch::BATCHED {
        let dir = tempfile::tempdir().unwrap();
        tiny_models::write_checkpoint(dir.path(), arch);
        let model = load(dir.path(), None).unwrap();
        let decoder = decoder(&model);
        let prompts: Vec<Vec<u32>> = PROMPTS.iter().map(|p| encode(&model, p)).collect();
        let batched = batch_logits(decoder, &prompts);
        for (prompt, row) in prompts.iter().zip(&batched) {
            let alone = batch_logits(decoder, std::slice::from_ref(prompt)).remove(0);
            assert!(max_difference(row, &alone) < 1e-4, "{arch:?}: prefill logits differ");
        }
        // Three decode steps through the KV cache, batched and alone.
        let next = [[5u32, 9, 17], [40, 2, 77], [100, 101, 102]];
        let (padded, padding) = left_pad(&prompts, 0);
        let mut cache = KvCache::default();
        decoder.forward(&Step { tokens: &padded, padding: &padding }, &mut cache).unwrap();
        let mut alone_caches: Vec<KvCache> = prompts
            .iter()
            .map(|p| {
                let mut cache = KvCache::default();
                decoder
                    .forward(&Step { tokens: std::slice::from_ref(p), padding: &[0] }, &mut cache)
                    .unwrap();
                cache
            })
            .collect();
        for step in 0..3 {
            let column: Vec<Vec<u32>> = next.iter().map(|tokens| vec![tokens[step]]).collect();
            let hidden = decoder.forward(&Step { tokens: &column, padding: &padding }, &mut cache).unwrap();
            let rows: Vec<Vec<f32>> = decoder.last_logits(&hidden).unwrap().to_vec2().unwrap();
            for (index, alone_cache) in alone_caches.iter_mut().enumerate() {
                let hidden = decoder
                    .forward(&Step { tokens: &[column[index].clone()], padding: &[0] }, alone_cache)
                    .unwrap();
                let alone: Vec<f32> = decoder.last_logits(&hidden).unwrap().i(0).unwrap().to_vec1().unwrap();
                let difference = max_difference(&rows[index], &alone);
                assert!(difference < 1e-4, "{arch:?} step {step} row {index}: logits differ by {difference}");
            }
        }
    }
}

#[test]
fn gguf_from_the_same_weights_gives_the_same_logits_and_tokenizer() {
    for arch in Arch::BATCHED {
        let dir = tempfile::tempdir().unwrap();
        let tensors = tiny_models::write_checkpoint(dir.path(), arch);
        let gguf_dir = dir.path().join("gguf");
        let gguf = gguf_dir.join("tiny-f32.gguf");
        tiny_models::write_gguf(&gguf, arch, &tensors, GgmlDType::F32);
        let from_safetensors = load(dir.path(), None).unwrap();
        let from_gguf = load(&gguf, None).unwrap();
        assert!(from_gguf.chat_template.is_some(), "the GGUF-embedded chat template is used");
        for prompt in PROMPTS {
            let tokens = encode(&from_safetensors, prompt);
            assert_eq!(encode(&from_gguf, prompt), tokens, "GGUF tokenizer ids for `{prompt}`");
            let a = batch_logits(decoder(&from_safetensors), std::slice::from_ref(&tokens)).remove(0);
            let b = batch_logits(decoder(&from_gguf), std::slice::from_ref(&tokens)).remove(0);
            let difference = max_difference(&a, &b);
            assert!(difference < 1e-4, "{arch:?} `{prompt}`: GGUF logits differ by {difference}");
        }
        // Quantized: close to f32, whether dequantized at load or run quantized.
        let q8 = gguf_dir.join("tiny-q8_0.gguf");
        tiny_models::write_gguf(&q8, arch, &tensors, GgmlDType::Q8_0);
        let tokens = encode(&from_safetensors, PROMPTS[1]);
        let exact = batch_logits(decoder(&from_safetensors), std::slice::from_ref(&tokens)).remove(0);
        for dequantize in [true, false] {
            let model = load(&q8, Some(dequantize)).unwrap();
            let logits = batch_logits(decoder(&model), std::slice::from_ref(&tokens)).remove(0);
            let difference = max_difference(&exact, &logits);
            assert!(
                difference < 0.3,
                "{arch:?} Q8_0 (dequantize {dequantize}) logits differ by {difference}"
            );
        }
    }
}

#[test]
fn q4_1_and_q5_gguf_run_quantized_from_the_size_threshold_and_close_to_dequantized() {
    for (arch, dtype) in Arch::BATCHED
        .into_iter()
        .flat_map(|arch| [GgmlDType::Q4_1, GgmlDType::Q5_0, GgmlDType::Q5_1].map(|dtype| (arch, dtype)))
    {
        let dir = tempfile::tempdir().unwrap();
        let tensors = tiny_models::write_checkpoint(dir.path(), arch);
        let file = dir.path().join("gguf").join(format!("tiny-{dtype:?}.gguf"));
        tiny_models::write_gguf(&file, arch, &tensors, dtype);
        // A tiny file is far below the default threshold; a threshold of 0 makes it "large".
        let dense = load(&file, None).unwrap();
        let files = source::resolve(file.to_str().unwrap(), None, "main", true).unwrap();
        let options = LoadOptions {
            dtype: DType::F32,
            device: &Device::Cpu,
            dequantize: None,
            dequantize_below_parameters: 0,
        };
        let quantized = loader::load(&files, &options).unwrap();
        assert!(!dense.quantized && quantized.quantized, "{arch:?} {dtype:?}");
        // The same weights; only the 8-bit rounding of the activations differs. On these
        // random weights that moves Q4_1 logits of magnitude ~4 by up to ~0.1, exactly as much
        // as through candle's own Q4_1 matmul (measured: the two agree to 1e-6).
        for prompt in PROMPTS {
            let tokens = encode(&dense, prompt);
            let a = batch_logits(decoder(&dense), std::slice::from_ref(&tokens)).remove(0);
            let b = batch_logits(decoder(&quantized), std::slice::from_ref(&tokens)).remove(0);
            let difference = max_difference(&a, &b);
            assert!(
                difference < 0.15,
                "{arch:?} `{prompt}`: {dtype:?} quantized logits differ by {difference}"
            );
        }
    }
}

#[test]
fn greedy_is_deterministic_sampling_is_seeded_and_stop_strings_cut() {
    let dir = tempfile::tempdir().unwrap();
    tiny_models::write_checkpoint(dir.path(), Arch::Qwen2);
    let mut model = load(dir.path(), None).unwrap();
    let prompts: Vec<Vec<u32>> = PROMPTS.iter().map(|p| encode(&model, p)).collect();
    let LoadedModel { network, tokenizer, .. } = &mut model;
    let greedy = generate::generate(network, tokenizer, &prompts, &SamplingSettings::greedy(24)).unwrap();
    assert_eq!(
        generate::generate(network, tokenizer, &prompts, &SamplingSettings::greedy(24)).unwrap(),
        greedy
    );
    assert!(greedy.iter().all(|g| !g.tokens.is_empty() && g.tokens.len() <= 24));

    let sampled = SamplingSettings {
        temperature: 1.0,
        top_k: Some(50),
        top_p: Some(0.95),
        seed: 7,
        ..SamplingSettings::greedy(16)
    };
    let first = generate::generate(network, tokenizer, &prompts, &sampled).unwrap();
    assert_eq!(
        generate::generate(network, tokenizer, &prompts, &sampled).unwrap(),
        first,
        "same seed, same samples"
    );
    // An item samples the same text whatever batch it is in.
    let alone = generate::generate(network, tokenizer, &prompts[1..2], &sampled).unwrap();
    assert_eq!(alone[0].tokens, first[1].tokens);
    let reseeded: Vec<_> = (8..12)
        .map(|seed| {
            generate::generate(network, tokenizer, &prompts, &SamplingSettings { seed, ..sampled.clone() })
                .unwrap()
        })
        .collect();
    assert!(reseeded.iter().any(|other| *other != first), "other seeds sample other texts");

    // A stop string taken from the greedy answer cuts it there.
    let text = &greedy[1].text;
    let chars: Vec<char> = text.chars().collect();
    assert!(chars.len() >= 6, "the greedy answer is long enough to cut: {text:?}");
    let stop: String = chars[3..5].iter().collect();
    let cut = text.find(&stop).unwrap();
    let stopped = generate::generate(
        network,
        tokenizer,
        &prompts[1..2],
        &SamplingSettings { stop: vec![stop.clone()], ..SamplingSettings::greedy(24) },
    )
    .unwrap();
    assert_eq!(stopped[0].text, text[..cut], "stop {stop:?} in {text:?}");
}

#[test]
fn one_sequence_families_load_and_generate_through_the_shared_loop() {
    for arch in [Arch::Gemma3, Arch::Phi3] {
        let dir = tempfile::tempdir().unwrap();
        tiny_models::write_checkpoint(dir.path(), arch);
        let mut model = load(dir.path(), None).unwrap();
        assert!(matches!(model.network, Network::Single { .. }));
        let prompts: Vec<Vec<u32>> = PROMPTS.iter().map(|p| encode(&model, p)).collect();
        let LoadedModel { network, tokenizer, .. } = &mut model;
        let together =
            generate::generate(network, tokenizer, &prompts, &SamplingSettings::greedy(8)).unwrap();
        for (prompt, expected) in prompts.iter().zip(&together) {
            let alone = generate::generate(
                network,
                tokenizer,
                std::slice::from_ref(prompt),
                &SamplingSettings::greedy(8),
            )
            .unwrap();
            assert_eq!(&alone[0], expected, "{arch:?}: the KV cache is reset between sequences");
        }
        let pairs = vec![(prompts[1].clone(), vec![7, 8]), (prompts[2].clone(), vec![9])];
        let scores = score::score_separately(network, &pairs, 0).unwrap();
        assert!(scores.iter().all(|s| s.logprob < 0.0 && s.logprob.is_finite()), "{arch:?}: {scores:?}");
    }
}

#[test]
fn continuation_scores_are_summed_log_probabilities() {
    let dir = tempfile::tempdir().unwrap();
    tiny_models::write_checkpoint(dir.path(), Arch::Llama);
    let mut model = load(dir.path(), None).unwrap();
    let context = encode(&model, PROMPTS[2]);
    let continuations = [encode(&model, " A"), encode(&model, " B"), encode(&model, " the garden")];
    // By hand: log-softmax of the full sequence's logits at the positions before each token.
    let expected: Vec<f64> = continuations
        .iter()
        .map(|continuation| {
            let decoder = decoder(&model);
            let tokens: Vec<u32> = context.iter().chain(continuation).copied().collect();
            let hidden = decoder
                .forward(
                    &Step { tokens: std::slice::from_ref(&tokens), padding: &[0] },
                    &mut KvCache::default(),
                )
                .unwrap();
            let logits = decoder.all_logits(&hidden).unwrap().i(0).unwrap();
            let logprobs: Vec<Vec<f32>> = generate_log_softmax(&logits);
            continuation
                .iter()
                .enumerate()
                .map(|(offset, &token)| f64::from(logprobs[context.len() + offset - 1][token as usize]))
                .sum()
        })
        .collect();
    let pairs: Vec<(Vec<u32>, Vec<u32>)> =
        continuations.iter().map(|c| (context.clone(), c.clone())).collect();
    let pad = model.tokenizer.pad_id();
    let scores = score::score_separately(&mut model.network, &pairs, pad).unwrap();
    for (scored, expected) in scores.iter().zip(&expected) {
        assert!((scored.logprob - expected).abs() < 1e-3, "{} vs {expected}", scored.logprob);
    }
    // Scored alone, the same numbers.
    for (pair, scored) in pairs.iter().zip(&scores) {
        let alone = score::score_separately(&mut model.network, std::slice::from_ref(pair), pad).unwrap();
        assert!((alone[0].logprob - scored.logprob).abs() < 1e-3);
    }
    // One request with the context once: the same sums.
    let request = score::ScoreRequest { context: context.clone(), continuations: continuations.to_vec() };
    let once = score::score(&mut model.network, std::slice::from_ref(&request), pad).unwrap();
    for (scored, expected) in once[0].iter().zip(&expected) {
        assert!((scored.logprob - expected).abs() < 1e-3, "{} vs {expected}", scored.logprob);
    }
    let error =
        score::score_separately(&mut model.network, &[(context.clone(), Vec::new())], pad).unwrap_err();
    assert!(error.contains("continuation 0"), "{error}");
}

fn generate_log_softmax(logits: &Tensor) -> Vec<Vec<f32>> {
    candle_nn::ops::log_softmax(logits, candle_core::D::Minus1).unwrap().to_vec2().unwrap()
}

#[test]
fn hand_built_hf_cache_is_found_offline_by_hub_id() {
    let cache = tempfile::tempdir().unwrap();
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let repo = cache.path().join("models--tiny-org--tiny-qwen3");
    let snapshot = repo.join("snapshots").join(commit);
    let blobs = repo.join("blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    let staging = tempfile::tempdir().unwrap();
    tiny_models::write_checkpoint(staging.path(), Arch::Qwen3);
    std::fs::create_dir_all(&snapshot).unwrap();
    // Real HF layout: snapshot entries are symlinks into blobs/.
    for entry in std::fs::read_dir(staging.path()).unwrap() {
        let entry = entry.unwrap();
        let blob = blobs.join(entry.file_name());
        std::fs::copy(entry.path(), &blob).unwrap();
        std::os::unix::fs::symlink(
            Path::new("../../blobs").join(entry.file_name()),
            snapshot.join(entry.file_name()),
        )
        .unwrap();
    }
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    // SAFETY: no other test in this binary reads the HF variables.
    unsafe { std::env::set_var("HF_HUB_CACHE", cache.path()) };
    let files = source::resolve("tiny-org/tiny-qwen3", None, "main", true).unwrap();
    assert!(files.origin.ends_with(commit), "{}", files.origin);
    let model = loader::load(
        &files,
        &LoadOptions {
            dtype: DType::F32,
            device: &Device::Cpu,
            dequantize: None,
            dequantize_below_parameters: loader::DEQUANTIZE_BELOW_PARAMETERS,
        },
    )
    .unwrap();
    assert_eq!(model.family.as_str(), "qwen3");
    let pinned = source::resolve("tiny-org/tiny-qwen3", None, &commit[..10], true).unwrap();
    assert_eq!(pinned.dir, files.dir);
    let missing = source::resolve("tiny-org/absent", None, "main", true).unwrap_err();
    assert!(
        missing.contains("not in the local Hugging Face cache") && missing.contains("tiny-org/absent"),
        "{missing}"
    );
}

#[test]
fn broken_checkpoints_are_named_in_clear_errors() {
    let root = tempfile::tempdir().unwrap();
    let good = root.path().join("good");
    tiny_models::write_checkpoint(&good, Arch::Llama);
    let copy = |name: &str| {
        let dir = root.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&good).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
        dir
    };
    let truncated = copy("truncated");
    let weights = truncated.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let error = load(&truncated, None).err().unwrap();
    assert!(error.contains("model.safetensors") && error.contains("not a valid safetensors"), "{error}");

    let no_tokenizer = copy("no-tokenizer");
    std::fs::remove_file(no_tokenizer.join("tokenizer.json")).unwrap();
    let error = load(&no_tokenizer, None).err().unwrap();
    assert!(error.contains("no tokenizer.json"), "{error}");

    let mamba = copy("mamba");
    let mut config = tiny_models::config_json(Arch::Llama);
    config["model_type"] = "mamba".into();
    std::fs::write(mamba.join("config.json"), config.to_string()).unwrap();
    let error = load(&mamba, None).err().unwrap();
    assert!(error.contains("`mamba` is not supported") && error.contains("config.json"), "{error}");

    let wrong_shape = copy("wrong-shape");
    let mut config = tiny_models::config_json(Arch::Llama);
    config["hidden_size"] = 96.into();
    std::fs::write(wrong_shape.join("config.json"), config.to_string()).unwrap();
    let error = load(&wrong_shape, None).err().unwrap();
    assert!(error.contains("shape"), "{error}");

    let garbage = root.path().join("garbage.gguf");
    std::fs::write(&garbage, b"GGUF but not really").unwrap();
    let error = load(&garbage, None).err().unwrap();
    assert!(error.contains("garbage.gguf") && error.contains("not a valid GGUF"), "{error}");

    let empty = root.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let error = load(&empty, None).err().unwrap();
    assert!(error.contains("no model.safetensors"), "{error}");

    let error = load(&root.path().join("absent"), None).err().unwrap();
    assert!(error.contains("does not exist"), "{error}");
}

#[test]
fn gemma3_and_phi3_gguf_match_their_safetensors_through_the_one_sequence_loop() {
    for arch in [Arch::Gemma3, Arch::Phi3] {
        let dir = tempfile::tempdir().unwrap();
        let tensors = tiny_models::write_checkpoint(dir.path(), arch);
        let gguf = dir.path().join("gguf/tiny-f32.gguf");
        tiny_models::write_gguf(&gguf, arch, &tensors, GgmlDType::F32);
        let mut from_safetensors = load(dir.path(), None).unwrap();
        let mut from_gguf = load(&gguf, None).unwrap();
        assert!(matches!(from_gguf.network, Network::Single { .. }), "{arch:?}");
        let tokens = encode(&from_safetensors, PROMPTS[1]);
        assert_eq!(encode(&from_gguf, PROMPTS[1]), tokens);
        let pairs = vec![(tokens.clone(), vec![7, 8, 9])];
        let a = score::score_separately(&mut from_safetensors.network, &pairs, 0).unwrap();
        let b = score::score_separately(&mut from_gguf.network, &pairs, 0).unwrap();
        assert!((a[0].logprob - b[0].logprob).abs() < 1e-3, "{arch:?}: safetensors {a:?} vs GGUF {b:?}");
        let LoadedModel { network, tokenizer, .. } = &mut from_gguf;
        let once = generate::generate(
            network,
            tokenizer,
            std::slice::from_ref(&tokens),
            &SamplingSettings::greedy(6),
        )
        .unwrap();
        assert_eq!(
            generate::generate(
                network,
                tokenizer,
                std::slice::from_ref(&tokens),
                &SamplingSettings::greedy(6)
            )
            .unwrap(),
            once
        );
    }
}

#[test]
fn half_precision_safetensors_run_close_to_f32() {
    let dir = tempfile::tempdir().unwrap();
    tiny_models::write_checkpoint(dir.path(), Arch::Qwen3);
    let files = source::resolve(dir.path().to_str().unwrap(), None, "main", true).unwrap();
    let exact = load(dir.path(), None).unwrap();
    let tokens = encode(&exact, PROMPTS[2]);
    let reference = batch_logits(decoder(&exact), std::slice::from_ref(&tokens)).remove(0);
    for dtype in [DType::BF16, DType::F16] {
        let mut model = loader::load(
            &files,
            &LoadOptions {
                dtype,
                device: &Device::Cpu,
                dequantize: None,
                dequantize_below_parameters: loader::DEQUANTIZE_BELOW_PARAMETERS,
            },
        )
        .unwrap();
        let logits = batch_logits(decoder(&model), std::slice::from_ref(&tokens)).remove(0);
        let difference = max_difference(&reference, &logits);
        assert!(difference < 0.25, "{dtype:?}: logits differ by {difference}");
        let LoadedModel { network, tokenizer, .. } = &mut model;
        let generated = generate::generate(
            network,
            tokenizer,
            std::slice::from_ref(&tokens),
            &SamplingSettings::greedy(4),
        )
        .unwrap();
        assert!(!generated[0].tokens.is_empty());
    }
}
