//! The plugin's model: recordings in, transcripts out. Per-item problems (no audio, an
//! undecodable file, a language the checkpoint cannot speak) fail only that item.

use karma_plugin_api::sdk::prelude::*;

use crate::{
    audio,
    config::{self, Task, WhisperConfig},
    languages,
    mel::MelSpectrogram,
    network::Whisper,
    source::{self, Format},
    tokens::Vocabulary,
    transcribe::{self, Clip, Settings, Start, Transcript},
    weights,
};

/// A Whisper checkpoint on candle.
pub struct CandleWhisper {
    config: WhisperConfig,
    location: String,
    name: String,
    loaded: Option<Loaded>,
}

struct Loaded {
    network: Whisper,
    vocabulary: Vocabulary,
    mel: MelSpectrogram,
    suppress: Vec<u32>,
    pool: rayon::ThreadPool,
}

/// An item ready to transcribe, with its recording's length.
pub struct Prepared {
    clip: Clip,
    seconds: f64,
}

fn invalid(message: impl Into<String>) -> PluginError {
    PluginError::new(ErrorCode::INVALID_INPUT, without_backtrace(message.into()))
}

fn internal(message: impl Into<String>) -> PluginError {
    PluginError::new(ErrorCode::INTERNAL, without_backtrace(message.into()))
}

/// candle appends a backtrace when `RUST_BACKTRACE` is set; users need the message.
fn without_backtrace(mut message: String) -> String {
    if let Some(cut) = message.find("\n   0: ") {
        message.truncate(cut);
    }
    message
}

impl CandleWhisper {
    /// The language asked for: the config's, else the item's `other_args.language`; `None`
    /// (or `auto`) asks for detection.
    fn language_of(&self, item: &Item<'_>) -> Result<Option<String>, PluginError> {
        if let Some(language) = &self.config.language {
            return Ok((!config::is_auto(language)).then(|| language.clone()));
        }
        Ok(match item.other_args()?.get("language") {
            Some(serde_json::Value::String(text)) if !text.trim().is_empty() && !config::is_auto(text) => {
                Some(text.clone())
            }
            _ => None,
        })
    }

    fn start(&self, loaded: &Loaded, item: &Item<'_>) -> Result<Start, PluginError> {
        let specials = &loaded.vocabulary.specials;
        let asked = self.language_of(item)?;
        let code = match &asked {
            Some(asked) => Some(languages::whisper_code(asked).ok_or_else(|| {
                invalid(format!("item {}: language `{asked}` is not one Whisper knows", item.id()))
            })?),
            None => None,
        };
        if specials.languages.is_empty() {
            if let (Some(code), Some(asked)) = (code, &asked) {
                if code != "en" {
                    return Err(invalid(format!(
                        "item {}: `{}` is an English-only checkpoint and cannot transcribe language `{asked}`; use a multilingual Whisper",
                        item.id(),
                        self.name
                    )));
                }
            }
            return Ok(Start::EnglishOnly);
        }
        let language = match code {
            Some(code) => Some(specials.languages.get(code).copied().ok_or_else(|| {
                invalid(format!("item {}: this checkpoint's vocabulary has no <|{code}|> token", item.id()))
            })?),
            None => None,
        };
        let task = match self.config.task().map_err(invalid)? {
            Task::Transcribe => specials.transcribe,
            Task::Translate => {
                specials.translate.ok_or_else(|| invalid("this checkpoint has no <|translate|> token"))?
            }
        };
        Ok(Start::Multilingual { language, task })
    }

    /// The initial prompt's tokens: the config's, else the item's `other_args.initial_prompt`.
    fn prompt(&self, loaded: &Loaded, item: &Item<'_>) -> Result<Vec<u32>, PluginError> {
        let other = item.other_args()?;
        let text = match (&self.config.initial_prompt, other.get("initial_prompt")) {
            (Some(text), _) => text.clone(),
            (None, Some(serde_json::Value::String(text))) => text.clone(),
            (None, Some(other)) => {
                return Err(invalid(format!(
                    "item {}: other_args.initial_prompt must be a string, not {other}",
                    item.id()
                )))
            }
            (None, None) => return Ok(Vec::new()),
        };
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        if loaded.vocabulary.specials.startofprev.is_none() {
            return Err(invalid(format!(
                "item {}: this checkpoint's vocabulary has no <|startofprev|> token, so it cannot take an initial prompt",
                item.id()
            )));
        }
        loaded
            .vocabulary
            .encode_prompt(&text)
            .map_err(|problem| invalid(format!("item {}: {problem}", item.id())))
    }

    fn prepare(&self, loaded: &Loaded, item: &Item<'_>) -> Result<Prepared, PluginError> {
        let media = item.audio().ok_or_else(|| invalid(format!("item {} has no audio", item.id())))?;
        let format = media.format.as_str();
        let (samples, seconds) = audio::load_16k_mono(media.data.as_slice(), format).map_err(|problem| {
            let hint = if format.is_empty() { String::new() } else { format!(" ({format})") };
            invalid(format!("item {}: cannot decode its audio{hint}: {problem}", item.id()))
        })?;
        let start = self.start(loaded, item)?;
        let prompt = self.prompt(loaded, item)?;
        Ok(Prepared { clip: Clip { samples, start, prompt }, seconds })
    }
}

impl Model for CandleWhisper {
    type Config = WhisperConfig;
    type Prepared = Vec<Result<Prepared, PluginError>>;
    type Raw = Vec<Result<(Transcript, f64), PluginError>>;

    fn create(config: WhisperConfig, context: &ModelContext) -> Result<Self, PluginError> {
        config.validate().map_err(invalid)?;
        let location = context.model_path.clone().or_else(|| config.repo.clone()).ok_or_else(|| {
            invalid(format!(
                "`{}` needs a checkpoint: pass --model-path (a local directory or a hub id such as openai/whisper-tiny)",
                context.model_name
            ))
        })?;
        Ok(CandleWhisper { config, location, name: context.model_name.clone(), loaded: None })
    }

    fn load(&mut self) -> Result<(), PluginError> {
        let offline = self.config.offline || karma_hub::offline_from_env();
        let files = source::resolve(&self.location, &self.config.revision, offline)
            .map_err(|message| PluginError::new(ErrorCode::NOT_FOUND, without_backtrace(message)))?;
        let device = self.config.device().map_err(invalid)?;
        let dtype = self.config.dtype().map_err(invalid)?;
        let mut builder =
            rayon::ThreadPoolBuilder::new().thread_name(|index| format!("candle-whisper-{index}"));
        if let Some(threads) = self.config.threads {
            builder = builder.num_threads(threads);
        }
        let pool =
            builder.build().map_err(|error| internal(format!("cannot start compute threads: {error}")))?;
        let started = std::time::Instant::now();
        // The tokenizer is parsed on a second thread while the weights load.
        let (loaded, tokens) = std::thread::scope(|scope| {
            let tokens = scope.spawn(|| Vocabulary::read_tokens(&files.dir));
            let loaded = pool.install(|| match files.format {
                Format::Safetensors => weights::load_safetensors(&files.dir, dtype, &device),
                Format::Ct2 => weights::load_ct2(&files.dir, dtype, &device),
            });
            (loaded, tokens.join())
        });
        let loaded = loaded.map_err(invalid)?;
        let tokens = tokens.map_err(|_| internal("reading the tokenizer panicked".to_owned()))?;
        let vocabulary = Vocabulary::from_tokens(tokens.map_err(invalid)?, loaded.network.dims.vocab_size)
            .map_err(invalid)?;
        if vocabulary.specials.languages.is_empty() && self.config.task().map_err(invalid)? == Task::Translate
        {
            return Err(invalid(format!(
                "`{}` is English-only: task `translate` needs a multilingual checkpoint",
                self.name
            )));
        }
        tracing::info!(
            model = %self.name,
            source = %files.origin,
            weights = %loaded.stored_as,
            mel_bins = loaded.network.dims.num_mel_bins,
            multilingual = !vocabulary.specials.languages.is_empty(),
            seconds = started.elapsed().as_secs_f64(),
            "loaded"
        );
        let mel = MelSpectrogram::new(loaded.network.dims.num_mel_bins);
        self.loaded =
            Some(Loaded { network: loaded.network, vocabulary, mel, suppress: loaded.suppress, pool });
        Ok(())
    }

    fn preprocess(&mut self, items: &[Item<'_>]) -> Result<Self::Prepared, PluginError> {
        let loaded = self
            .loaded
            .as_ref()
            .ok_or_else(|| PluginError::new(ErrorCode::NOT_LOADED, "the model is not loaded"))?;
        Ok(loaded.pool.install(|| items.iter().map(|item| self.prepare(loaded, item)).collect()))
    }

    fn run(&mut self, prepared: Self::Prepared) -> Result<Self::Raw, PluginError> {
        let settings = Settings {
            max_new_tokens: self.config.max_new_tokens,
            temperature_fallback: self.config.temperature_fallback,
            seed: self.config.seed,
            condition_on_previous_text: self.config.condition_on_previous_text,
        };
        let loaded = self
            .loaded
            .as_ref()
            .ok_or_else(|| PluginError::new(ErrorCode::NOT_LOADED, "the model is not loaded"))?;
        let mut clips = Vec::new();
        let mut shapes = Vec::with_capacity(prepared.len());
        for entry in prepared {
            match entry {
                Ok(Prepared { clip, seconds }) => {
                    clips.push(clip);
                    shapes.push(Ok(seconds));
                }
                Err(error) => shapes.push(Err(error)),
            }
        }
        let transcripts = if clips.is_empty() {
            Vec::new()
        } else {
            loaded
                .pool
                .install(|| {
                    transcribe::transcribe(
                        &loaded.network,
                        &loaded.vocabulary,
                        &loaded.mel,
                        &loaded.suppress,
                        &clips,
                        settings,
                    )
                })
                .map_err(internal)?
        };
        let mut transcripts = transcripts.into_iter();
        Ok(shapes
            .into_iter()
            .map(|shape| {
                let seconds = shape?;
                let transcript =
                    transcripts.next().ok_or_else(|| internal("fewer transcripts than recordings"))?;
                Ok((transcript, seconds))
            })
            .collect())
    }

    fn postprocess(
        &mut self,
        raw: Self::Raw,
        _items: &[Item<'_>],
    ) -> Result<Vec<Result<Generation, PluginError>>, PluginError> {
        let languages = self.loaded.as_ref().map(|loaded| &loaded.vocabulary.specials.languages);
        let code_of = |id: u32| {
            languages.and_then(|languages| {
                languages.iter().find(|(_, token)| **token == id).map(|(code, _)| *code)
            })
        };
        Ok(raw
            .into_iter()
            .map(|result| {
                result.map(|(transcript, seconds)| {
                    // English-only checkpoints speak English; multilingual ones report the
                    // language given or detected.
                    let language = transcript.language.map_or(Some("en"), code_of).unwrap_or("unknown");
                    let mut generation = Generation::text(transcript.text);
                    generation.completion_tokens = Some(transcript.tokens as u64);
                    generation
                        .with_detail("audio_seconds", seconds)
                        .with_detail("finish_reason", if transcript.truncated { "length" } else { "stop" })
                        .with_detail("windows", transcript.windows as u64)
                        .with_detail("language", language)
                })
            })
            .collect())
    }
}
