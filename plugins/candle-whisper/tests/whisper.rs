//! The plugin's parts on real inputs: checkpoints written here in both formats, generated and
//! fixture audio, and the batched decoder against one-at-a-time runs.

mod support;

use candle_core::{DType, Device, Tensor};
use karma_plugin_candle_whisper::{
    audio, convert, ct2::Ct2Model, decode, mel, network::Whisper, tokens::Vocabulary, transcribe, weights,
};
use support::{
    lossy,
    tiny_whisper::{self, Ct2Dtype},
};

fn random_mel(batch: usize, seed: u64) -> Tensor {
    let count = batch * tiny_whisper::MELS * mel::N_FRAMES;
    let mut state = seed | 1;
    let values: Vec<f32> = (0..count)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    Tensor::from_vec(values, (batch, tiny_whisper::MELS, mel::N_FRAMES), &Device::Cpu).unwrap()
}

/// Logits of the 3 prompt tokens plus 2 more steps, for each row of `mel`.
fn logits(network: &Whisper, mel: &Tensor) -> Vec<f32> {
    let batch = mel.dim(0).unwrap();
    let audio = network.encode(mel).unwrap();
    let mut state = network.start(&audio, Vec::new()).unwrap();
    let prompt = Tensor::from_vec([257u32, 258, 261].repeat(batch), (batch, 3), &Device::Cpu).unwrap();
    let mut all = vec![network.step(&prompt, &mut state).unwrap()];
    for token in [40u32, 41] {
        let input = Tensor::from_vec(vec![token; batch], (batch, 1), &Device::Cpu).unwrap();
        all.push(network.step(&input, &mut state).unwrap());
    }
    Tensor::cat(&all, 1).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn ct2_model_bin_and_safetensors_of_the_same_weights_give_the_same_logits() {
    let work = tempfile::tempdir().unwrap();
    let hf = work.path().join("hf");
    tiny_whisper::write_hf(&hf, true, 7);
    let reference = weights::load_safetensors(&hf, DType::F32, &Device::Cpu).unwrap();
    let mel = random_mel(1, 3);
    let expected = logits(&reference.network, &mel);
    for (dtype, name, tolerance) in
        [(Ct2Dtype::F32, "float32", 1e-4), (Ct2Dtype::F16, "float16", 2e-2), (Ct2Dtype::I8, "int8", 0.25)]
    {
        let dir = work.path().join(name);
        tiny_whisper::write_ct2(&dir, true, 7, dtype);
        let parsed = Ct2Model::read(&dir.join("model.bin")).unwrap();
        assert_eq!((parsed.version, parsed.spec.as_str(), parsed.revision), (6, "WhisperSpec", 3));
        assert_eq!(parsed.aliases["decoder/projection/weight"], "decoder/embeddings/weight");
        let loaded = weights::load_ct2(&dir, DType::F32, &Device::Cpu).unwrap();
        assert_eq!(loaded.network.dims, reference.network.dims);
        assert!(loaded.stored_as.ends_with(name), "{}", loaded.stored_as);
        let diff = max_diff(&expected, &logits(&loaded.network, &mel));
        println!("CT2 {name}: max |logit difference| {diff:.2e}");
        assert!(diff < tolerance, "{name}: {diff}");
    }
}

#[test]
fn a_ct2_directory_converted_to_safetensors_loads_with_the_same_logits() {
    let work = tempfile::tempdir().unwrap();
    let ct2 = work.path().join("ct2");
    tiny_whisper::write_ct2(&ct2, false, 11, Ct2Dtype::F32);
    let from_ct2 = weights::load_ct2(&ct2, DType::F32, &Device::Cpu).unwrap();
    let hf = work.path().join("hf");
    let written = convert::ct2_to_safetensors(&ct2, &hf).unwrap();
    assert!(written > 10, "{written} tensors");
    let from_hf = weights::load_safetensors(&hf, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(from_hf.network.dims, from_ct2.network.dims);
    assert_eq!(from_hf.suppress, from_ct2.suppress);
    let mel = random_mel(2, 5);
    let diff = max_diff(&logits(&from_ct2.network, &mel), &logits(&from_hf.network, &mel));
    assert!(diff < 1e-6, "{diff}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(hf.join("generation_config.json")).unwrap()).unwrap();
    let specials = Vocabulary::load(&ct2, from_ct2.network.dims.vocab_size).unwrap().specials;
    assert_eq!(
        (config["decoder_start_token_id"].as_u64(), config["is_multilingual"].as_bool()),
        (Some(u64::from(specials.sot)), Some(false))
    );
    // The output is never written over: a directory with files in it is refused, untouched.
    let error = convert::ct2_to_safetensors(&ct2, &ct2).unwrap_err();
    assert!(error.contains("not empty"), "{error}");
    assert!(ct2.join("model.bin").is_file());
}

#[test]
fn batched_decoding_matches_one_at_a_time_even_after_rows_finish() {
    let work = tempfile::tempdir().unwrap();
    tiny_whisper::write_hf(work.path(), true, 11);
    let network = weights::load_safetensors(work.path(), DType::F32, &Device::Cpu).unwrap().network;
    let mel = random_mel(3, 5);
    let batched = logits(&network, &mel);
    let alone: Vec<f32> = (0..3).flat_map(|row| logits(&network, &mel.narrow(0, row, 1).unwrap())).collect();
    assert!(max_diff(&batched, &alone) < 1e-4, "{}", max_diff(&batched, &alone));

    // Dropping row 1 from the caches leaves rows 0 and 2 exactly where they were.
    let audio = network.encode(&mel).unwrap();
    let mut state = network.start(&audio, Vec::new()).unwrap();
    let prompt = Tensor::from_vec([257u32, 258, 261].repeat(3), (3, 3), &Device::Cpu).unwrap();
    network.step(&prompt, &mut state).unwrap();
    state.retain(&[0, 2]).unwrap();
    let next = Tensor::from_vec(vec![40u32, 40], (2, 1), &Device::Cpu).unwrap();
    let after: Vec<f32> = network.step(&next, &mut state).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let vocab = network.dims.vocab_size;
    let row = |r: usize| &alone[(r * 5 + 3) * vocab..(r * 5 + 4) * vocab];
    assert!(max_diff(&after[..vocab], row(0)) < 1e-4);
    assert!(max_diff(&after[vocab..], row(2)) < 1e-4);
}

#[test]
fn mel_filterbank_is_openais_slaney_filterbank() {
    // Values of OpenAI's mel_filters.npz (as candle's melfilters*.bytes ship them).
    let f80 = mel::mel_filters(80);
    assert_eq!(f80.len(), 80 * 201);
    for (index, expected) in [(1, 0.024862595), (40 * 201 + 43, 0.014735566), (79 * 201 + 192, 0.0031647119)]
    {
        assert!((f80[index] - expected).abs() < 1e-7, "{index}: {}", f80[index]);
    }
    let f128 = mel::mel_filters(128);
    assert!((f128[1] - 0.012373987).abs() < 1e-7);
    assert!((f128[100 * 201 + 102] - 0.009409416).abs() < 1e-7);
    assert!(f80.iter().all(|w| *w >= 0.0));
    // Slaney normalisation: each triangle has unit area in Hz (so higher, wider bands are lower).
    let peak = |row: usize| f80[row * 201..(row + 1) * 201].iter().copied().fold(0.0, f32::max);
    assert!(peak(5) > peak(70));
    // The spectrogram of a 30 s window is 80 x 3000 and normalised into Whisper's range.
    let spectrogram = mel::MelSpectrogram::new(80).window(&tiny_whisper::tone(440.0, 16_000, 2.0));
    assert_eq!(spectrogram.len(), 80 * 3000);
    let max = spectrogram.iter().copied().fold(f32::MIN, f32::max);
    let min = spectrogram.iter().copied().fold(f32::MAX, f32::min);
    assert!(max <= 2.5 && (max - min - 2.0).abs() < 1e-4, "{min}..{max}");
}

/// The frequency of a mono signal from its zero crossings.
fn frequency(samples: &[f32], rate: f64) -> f64 {
    let crossings = samples.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
    crossings as f64 / (samples.len() as f64 / rate)
}

#[test]
fn resampling_to_16k_keeps_a_tones_pitch_and_length() {
    for rate in [8_000u32, 22_050, 44_100, 48_000] {
        let input = tiny_whisper::tone(440.0, rate, 1.0);
        let output = audio::resample_to_16k(&input, rate).unwrap();
        assert!((output.len() as i64 - 16_000).abs() <= 1, "{rate}: {} samples", output.len());
        let hz = frequency(&output[400..15_600], 16_000.0);
        assert!((hz - 440.0).abs() < 3.0, "{rate} Hz input: tone at {hz} Hz");
        let peak = output[400..15_600].iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!((peak - 0.5).abs() < 0.03, "{rate}: amplitude {peak}");
    }
}

#[test]
fn wav_flac_are_decoded_and_garbage_is_refused_by_name() {
    // Stereo 44.1 kHz WAV with the tone in one channel: downmixed, resampled.
    let mono = tiny_whisper::tone(300.0, 44_100, 0.5);
    let stereo: Vec<f32> = mono.iter().flat_map(|s| [*s, 0.0]).collect();
    let (samples, seconds) =
        audio::load_16k_mono(&tiny_whisper::wav_bytes(&stereo, 44_100, 2), "wav").unwrap();
    assert!((seconds - 0.5).abs() < 1e-3);
    assert!((samples.len() as i64 - 8000).abs() <= 1);
    let hz = frequency(&samples[200..7800], 16_000.0);
    assert!((hz - 300.0).abs() < 6.0, "{hz}");
    // A real FLAC file (libsndfile): 0.5 s of 440 Hz at 16 kHz.
    let flac =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/media/tone.flac")).unwrap();
    let (samples, seconds) = audio::load_16k_mono(&flac, "").unwrap();
    assert!((seconds - 0.5).abs() < 1e-3 && samples.len() == 8000);
    assert!((frequency(&samples, 16_000.0) - 440.0).abs() < 6.0);
    for (bytes, hint) in [(&b"definitely not audio"[..], "wav"), (&b""[..], ""), (&flac[..200], "flac")] {
        let error = audio::load_16k_mono(bytes, hint).unwrap_err();
        assert!(!error.is_empty());
        println!("{hint:?}: {error}");
    }
}

#[test]
fn mp3_ogg_vorbis_and_m4a_aac_decode_to_the_tone_they_encode() {
    // One second of 300 Hz in the left channel of 44.1 kHz stereo: each codec must give back
    // the pitch, the length and the level. Gapless decoding trims MP3's encoder delay and
    // padding; Vorbis and AAC keep up to a frame or two of it.
    let mono = tiny_whisper::tone(300.0, 44_100, 1.0);
    let stereo: Vec<f32> = mono.iter().flat_map(|s| [*s, 0.0]).collect();
    let wav = tiny_whisper::wav_bytes(&stereo, 44_100, 2);
    for (extension, _) in lossy::FORMATS {
        let encoded = match lossy::encode(&wav, extension) {
            Ok(bytes) => bytes,
            Err(why) => {
                println!("skipping .{extension}: {why}");
                continue;
            }
        };
        // The content decides, whatever the hint says.
        for hint in [extension, "", "wav"] {
            let (samples, seconds) = audio::load_16k_mono(&encoded, hint)
                .unwrap_or_else(|e| panic!(".{extension} with hint {hint:?}: {e}"));
            assert!((0.999..1.06).contains(&seconds), ".{extension}: {seconds} s");
            let middle = &samples[2000..14_000];
            let hz = frequency(middle, 16_000.0);
            assert!((hz - 300.0).abs() < 6.0, ".{extension}: {hz} Hz");
            // The left channel's 0.5 peak, halved by the downmix.
            let peak = middle.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!((peak - 0.25).abs() < 0.04, ".{extension}: peak {peak}");
            println!(".{extension} (hint {hint:?}): {seconds:.3} s, {hz:.1} Hz, peak {peak:.3}");
        }
        let truncated = &encoded[..encoded.len() / 8];
        match audio::load_16k_mono(truncated, extension) {
            Ok((_, seconds)) => assert!(seconds < 0.5, ".{extension} cut to an eighth: {seconds} s"),
            Err(error) => println!(".{extension} cut to an eighth: {error}"),
        }
    }
}

fn settings(max_new_tokens: usize) -> transcribe::Settings {
    transcribe::Settings {
        max_new_tokens,
        temperature_fallback: true,
        seed: 0,
        condition_on_previous_text: true,
    }
}

#[test]
fn a_long_clip_is_transcribed_in_windows_batched_with_a_short_one() {
    let work = tempfile::tempdir().unwrap();
    tiny_whisper::write_hf(work.path(), true, 13);
    let loaded = weights::load_safetensors(work.path(), DType::F32, &Device::Cpu).unwrap();
    let vocabulary = Vocabulary::load(work.path(), loaded.network.dims.vocab_size).unwrap();
    let specials = &vocabulary.specials;
    let start = transcribe::Start::Multilingual {
        language: Some(specials.languages["en"]),
        task: specials.transcribe,
    };
    let mel = mel::MelSpectrogram::new(80);
    let clips = vec![
        transcribe::Clip { samples: tiny_whisper::tone(220.0, 16_000, 75.0), start, prompt: Vec::new() },
        transcribe::Clip { samples: tiny_whisper::tone(330.0, 16_000, 2.0), start, prompt: Vec::new() },
    ];
    let out =
        transcribe::transcribe(&loaded.network, &vocabulary, &mel, &loaded.suppress, &clips, settings(12))
            .unwrap();
    assert_eq!(out.len(), 2);
    assert!(out[0].windows >= 3, "75 s needs at least 3 windows: {:?}", out[0]);
    assert_eq!(out[1].windows, 1);
    println!("{out:?}");
    assert!(decode::compression_ratio(&out[0].text).is_finite());
}

#[test]
fn prompts_of_different_lengths_decode_together_as_each_alone() {
    let work = tempfile::tempdir().unwrap();
    tiny_whisper::write_hf(work.path(), true, 17);
    // bf16 takes candle's tensor ops and their mask instead of the CPU kernel.
    padded_rows_give_each_rows_logits(work.path(), DType::BF16, 2e-2);
    padded_rows_give_each_rows_logits(work.path(), DType::F32, 1e-4);
    let network = weights::load_safetensors(work.path(), DType::F32, &Device::Cpu).unwrap().network;
    let vocabulary = Vocabulary::load(work.path(), network.dims.vocab_size).unwrap();
    let specials = &vocabulary.specials;
    let audio = network.encode(&random_mel(3, 9)).unwrap();
    let prompts = prompts_of_three_lengths(specials);
    // The same through the sampler: a batch of all three decodes as each request alone.
    let requests: Vec<decode::Request> = prompts
        .iter()
        .map(|prompt| decode::Request {
            prompt: prompt.clone(),
            sot_index: prompt.len() - 3,
            timestamps: false,
        })
        .collect();
    let refs: Vec<&decode::Request> = requests.iter().collect();
    let pass = decode::Pass { temperature: 0.0, max_new_tokens: 20, seed: 0 };
    let together = decode::decode_batch(&network, specials, &[], &audio, &refs, pass).unwrap();
    for (row, request) in requests.iter().enumerate() {
        let alone = decode::decode_batch(
            &network,
            specials,
            &[],
            &audio.narrow(0, row, 1).unwrap(),
            &[request],
            pass,
        )
        .unwrap();
        assert_eq!(together[row].tokens, alone[0].tokens, "row {row}");
        assert!((together[row].sum_logprob - alone[0].sum_logprob).abs() < 1e-3, "row {row}");
        assert!((together[row].no_speech_prob - alone[0].no_speech_prob).abs() < 1e-5, "row {row}");
    }
}

/// No prompt, a short previous text and a long one: 3, 37 and 43 tokens (pads 40, 6 and 0).
fn prompts_of_three_lengths(specials: &karma_plugin_candle_whisper::tokens::Specials) -> Vec<Vec<u32>> {
    let start = [specials.sot, specials.languages["hi"], specials.transcribe];
    [0usize, 34, 40]
        .iter()
        .map(|length| {
            let mut prompt = Vec::new();
            if *length > 0 {
                prompt.push(specials.startofprev.unwrap());
                prompt.extend((0..*length as u32 - 1).map(|i| 40 + i % 50));
            }
            prompt.extend(start);
            prompt
        })
        .collect()
}

/// Logits of every position after the padding, then of two more steps (the second after a row
/// is dropped), against each row fed alone.
fn padded_rows_give_each_rows_logits(dir: &std::path::Path, dtype: DType, tolerance: f32) {
    let network = weights::load_safetensors(dir, dtype, &Device::Cpu).unwrap().network;
    let vocabulary = Vocabulary::load(dir, network.dims.vocab_size).unwrap();
    let specials = &vocabulary.specials;
    let audio = network.encode(&random_mel(3, 9)).unwrap();
    let prompts = prompts_of_three_lengths(specials);
    let longest = prompts.iter().map(Vec::len).max().unwrap();
    let pads: Vec<usize> = prompts.iter().map(|p| longest - p.len()).collect();
    let padded: Vec<u32> = prompts
        .iter()
        .flat_map(|p| std::iter::repeat_n(specials.eot, longest - p.len()).chain(p.clone()))
        .collect();
    let mut state = network.start(&audio, pads.clone()).unwrap();
    let first =
        network.step(&Tensor::from_vec(padded, (3, longest), &Device::Cpu).unwrap(), &mut state).unwrap();
    let next = Tensor::from_vec(vec![45u32; 3], (3, 1), &Device::Cpu).unwrap();
    let second = network.step(&next, &mut state).unwrap();
    state.retain(&[2, 0]).unwrap();
    let third =
        network.step(&Tensor::from_vec(vec![46u32; 2], (2, 1), &Device::Cpu).unwrap(), &mut state).unwrap();
    for (row, prompt) in prompts.iter().enumerate() {
        let mut alone = network.start(&audio.narrow(0, row, 1).unwrap(), Vec::new()).unwrap();
        let tokens = Tensor::from_vec(prompt.clone(), (1, prompt.len()), &Device::Cpu).unwrap();
        let want_first = network.step(&tokens, &mut alone).unwrap();
        let got_first = first.narrow(0, row, 1).unwrap().narrow(1, pads[row], prompt.len()).unwrap();
        let flat =
            |t: &Tensor| t.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(max_diff(&flat(&got_first), &flat(&want_first)) < tolerance, "row {row}, prompt");
        let one = Tensor::from_vec(vec![45u32], (1, 1), &Device::Cpu).unwrap();
        let want_second = network.step(&one, &mut alone).unwrap();
        assert!(
            max_diff(&flat(&second.narrow(0, row, 1).unwrap()), &flat(&want_second)) < tolerance,
            "row {row}"
        );
        if let Some(kept) = [2usize, 0].iter().position(|r| *r == row) {
            let one = Tensor::from_vec(vec![46u32], (1, 1), &Device::Cpu).unwrap();
            let want_third = network.step(&one, &mut alone).unwrap();
            assert!(
                max_diff(&flat(&third.narrow(0, kept, 1).unwrap()), &flat(&want_third)) < tolerance,
                "row {row}"
            );
        }
    }
}

#[test]
fn a_recording_without_a_language_is_decoded_in_the_language_detected() {
    let work = tempfile::tempdir().unwrap();
    // Seed and tones chosen so that the random weights detect each language somewhere.
    tiny_whisper::write_hf(work.path(), true, 7);
    let loaded = weights::load_safetensors(work.path(), DType::F32, &Device::Cpu).unwrap();
    let network = &loaded.network;
    let vocabulary = Vocabulary::load(work.path(), network.dims.vocab_size).unwrap();
    let specials = &vocabulary.specials;
    let mel = mel::MelSpectrogram::new(80);
    let samples: Vec<Vec<f32>> =
        [180.0, 700.0, 1500.0, 3000.0].iter().map(|hz| tiny_whisper::tone(*hz, 16_000, 3.0)).collect();
    // Detection from its definition: the larger of the two language logits after sot.
    let mels: Vec<Vec<f32>> = samples.iter().map(|s| mel.window(s)).collect();
    let audio = decode::encode(network, &mels).unwrap();
    let mut state = network.start(&audio, Vec::new()).unwrap();
    let sot = Tensor::from_vec(vec![specials.sot; 4], (4, 1), &Device::Cpu).unwrap();
    let logits: Vec<Vec<f32>> =
        network.step(&sot, &mut state).unwrap().squeeze(1).unwrap().to_vec2().unwrap();
    let (en, hi) = (specials.languages["en"], specials.languages["hi"]);
    let expected: Vec<u32> =
        logits.iter().map(|row| if row[hi as usize] > row[en as usize] { hi } else { en }).collect();
    assert!(
        expected.contains(&en) && expected.contains(&hi),
        "both languages should be detected: {expected:?}"
    );
    assert_eq!(decode::detect_languages(network, specials, &audio).unwrap(), expected);

    let clip = |samples: &Vec<f32>, language| transcribe::Clip {
        samples: samples.clone(),
        start: transcribe::Start::Multilingual { language, task: specials.transcribe },
        prompt: Vec::new(),
    };
    let detected: Vec<transcribe::Clip> = samples.iter().map(|s| clip(s, None)).collect();
    let given: Vec<transcribe::Clip> =
        samples.iter().zip(&expected).map(|(s, l)| clip(s, Some(*l))).collect();
    let run = |clips: &[transcribe::Clip]| {
        transcribe::transcribe(network, &vocabulary, &mel, &loaded.suppress, clips, settings(10)).unwrap()
    };
    let (detected, given) = (run(&detected), run(&given));
    for (row, (detected, given)) in detected.iter().zip(&given).enumerate() {
        assert_eq!(detected.language, Some(expected[row]), "row {row}");
        assert_eq!(detected, given, "row {row}");
    }
}

#[test]
fn an_initial_prompt_is_what_the_first_window_continues_from() {
    let work = tempfile::tempdir().unwrap();
    tiny_whisper::write_hf(work.path(), true, 23);
    let loaded = weights::load_safetensors(work.path(), DType::F32, &Device::Cpu).unwrap();
    let network = &loaded.network;
    let vocabulary = Vocabulary::load(work.path(), network.dims.vocab_size).unwrap();
    let specials = &vocabulary.specials;
    let prompt = vocabulary.encode_prompt("  Paracetamol 500 mg ").unwrap();
    assert_eq!(vocabulary.decode(&prompt).unwrap(), " Paracetamol 500 mg");
    let mel = mel::MelSpectrogram::new(80);
    let samples = tiny_whisper::tone(300.0, 16_000, 4.0);
    let language = specials.languages["en"];
    let clip = transcribe::Clip {
        samples: samples.clone(),
        start: transcribe::Start::Multilingual { language: Some(language), task: specials.transcribe },
        prompt: prompt.clone(),
    };
    let mut quiet = settings(10);
    quiet.temperature_fallback = false;
    let out = transcribe::transcribe(network, &vocabulary, &mel, &loaded.suppress, &[clip], quiet).unwrap();
    // OpenAI's layout, decoded by hand: <|startofprev|> prompt sot en transcribe notimestamps.
    let mut tokens = vec![specials.startofprev.unwrap()];
    tokens.extend(&prompt);
    let sot_index = tokens.len();
    tokens.extend([specials.sot, language, specials.transcribe, specials.no_timestamps]);
    let request = decode::Request { prompt: tokens, sot_index, timestamps: false };
    let audio = decode::encode(network, &[mel.window(&samples)]).unwrap();
    let pass = decode::Pass { temperature: 0.0, max_new_tokens: 10, seed: 0 };
    let by_hand =
        decode::decode_batch(network, specials, &loaded.suppress, &audio, &[&request], pass).unwrap();
    assert_eq!(out[0].text, vocabulary.decode(&by_hand[0].tokens).unwrap().trim());
    assert_eq!(out[0].tokens, by_hand[0].tokens.len());
    // And the prompt matters: without it the window decodes otherwise.
    let bare = transcribe::Clip { prompt: Vec::new(), ..clip_again(&samples, language, specials.transcribe) };
    let without =
        transcribe::transcribe(network, &vocabulary, &mel, &loaded.suppress, &[bare], quiet).unwrap();
    assert_ne!(without[0].text, out[0].text);
    // Special-token text is refused, as OpenAI's tokenizer refuses it.
    let error = vocabulary.encode_prompt("see <|endoftext|> here").unwrap_err();
    assert!(error.contains("special token"), "{error}");
}

fn clip_again(samples: &[f32], language: u32, task: u32) -> transcribe::Clip {
    transcribe::Clip {
        samples: samples.to_vec(),
        start: transcribe::Start::Multilingual { language: Some(language), task },
        prompt: Vec::new(),
    }
}
