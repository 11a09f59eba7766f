//! The plugin's model: items in, chat-templated prompts through the network, answers out.

use karma_plugin_api::{
    abi::ContinuationScore,
    sdk::{prelude::*, ContinuationRequest, ScoredContinuations},
};

use crate::{
    chat::{self, Message},
    config::LlmConfig,
    generate::{self, Generated},
    loader::{self, LoadOptions, LoadedModel},
    score::{self, ContinuationLogprob, ScoreRequest},
    source,
};

/// Token ids of a request's context and of each continuation, checked so that a bad request
/// fails alone. As lm-eval-harness does, context and continuation are tokenized together and
/// the continuation is what follows the context's own tokens, so a tokenizer that marks word
/// starts (SentencePiece's `▁`) sees `" A"` where it really occurs.
fn continuation_tokens(
    tokenizer: &crate::tokenizer::TextTokenizer,
    request: &ContinuationRequest<'_>,
    limit: usize,
) -> Result<(Vec<u32>, Vec<Vec<u32>>), String> {
    let context = tokenizer.encode(request.context, true)?;
    if context.is_empty() {
        return Err("the context is empty".to_owned());
    }
    let mut continuations = Vec::with_capacity(request.continuations.len());
    for (index, text) in request.continuations.iter().enumerate() {
        let whole = tokenizer.encode(&format!("{}{text}", request.context), true)?;
        let tail = if whole.starts_with(&context) {
            whole[context.len()..].to_vec()
        } else {
            // The boundary merged into one token: score the continuation on its own.
            tokenizer.encode(text, false)?
        };
        if tail.is_empty() {
            return Err(format!("continuation {index} ({text:?}) has no tokens"));
        }
        if context.len() + tail.len() > limit {
            return Err(format!(
                "{} tokens exceed the model's {limit} positions",
                context.len() + tail.len()
            ));
        }
        continuations.push(tail);
    }
    Ok((context, continuations))
}

/// A candle-backed causal LM.
pub struct CandleLlm {
    config: LlmConfig,
    /// Local path or hub id of the checkpoint.
    location: String,
    name: String,
    loaded: Option<Loaded>,
}

struct Loaded {
    model: LoadedModel,
    pool: rayon::ThreadPool,
}

/// A prompt ready for the network, or why the item cannot run.
pub type Prompt = Result<Vec<u32>, PluginError>;

fn invalid(message: impl Into<String>) -> PluginError {
    PluginError::new(ErrorCode::INVALID_INPUT, without_backtrace(message.into()))
}

fn internal(message: impl Into<String>) -> PluginError {
    PluginError::new(ErrorCode::INTERNAL, without_backtrace(message.into()))
}

/// candle appends a backtrace to its errors when `RUST_BACKTRACE` is set; users need the
/// message, which always comes first.
fn without_backtrace(mut message: String) -> String {
    if let Some(cut) = message.find("\n   0: ") {
        message.truncate(cut);
    }
    message
}

impl CandleLlm {
    fn loaded(&mut self) -> Result<&mut Loaded, PluginError> {
        self.loaded.as_mut().ok_or_else(|| PluginError::new(ErrorCode::NOT_LOADED, "the model is not loaded"))
    }

    /// The chat messages of an item: its system prompt, its conversation, then its input.
    fn messages(item: &Item<'_>) -> Vec<Message> {
        let mut messages = Vec::new();
        if let Some(system) = item.system_prompt() {
            messages.push(Message { role: "system".into(), content: system.into() });
        }
        for turn in item.conversation() {
            messages.push(Message { role: turn.role.as_str().into(), content: turn.content.as_str().into() });
        }
        if let Some(input) = item.input() {
            messages.push(Message { role: "user".into(), content: input.into() });
        }
        messages
    }

    /// Tokens of the prompt for `item`.
    fn prompt(&self, loaded: &Loaded, item: &Item<'_>) -> Prompt {
        let messages = Self::messages(item);
        if messages.is_empty() {
            return Err(invalid(format!("item {} has no input, system prompt or conversation", item.id())));
        }
        let model = &loaded.model;
        let tokens = match (&model.chat_template, self.config.use_chat_template) {
            (Some(template), true) => {
                let text = template.render(&messages, self.config.enable_thinking).map_err(invalid)?;
                model.tokenizer.encode(&text, false)
            }
            _ => {
                let text: Vec<&str> = messages.iter().map(|message| message.content.as_str()).collect();
                model.tokenizer.encode(&text.join("\n\n"), true)
            }
        }
        .map_err(invalid)?;
        if tokens.is_empty() {
            return Err(invalid(format!("item {}: the prompt has no tokens", item.id())));
        }
        let limit = model.network.max_positions();
        if tokens.len() >= limit {
            return Err(invalid(format!(
                "item {}: the prompt has {} tokens but the model has {limit} positions",
                item.id(),
                tokens.len()
            )));
        }
        Ok(tokens)
    }
}

impl Model for CandleLlm {
    type Config = LlmConfig;
    type Prepared = Vec<Prompt>;
    type Raw = Vec<Result<(usize, Generated), PluginError>>;

    fn create(config: LlmConfig, context: &ModelContext) -> Result<Self, PluginError> {
        config.validate().map_err(invalid)?;
        let location = context.model_path.clone().or_else(|| config.repo.clone()).ok_or_else(|| {
            invalid(format!(
                "`{}` needs a checkpoint: pass --model-path (a local directory, a .gguf file or a hub id such as Qwen/Qwen3-0.6B)",
                context.model_name
            ))
        })?;
        Ok(CandleLlm { config, location, name: context.model_name.clone(), loaded: None })
    }

    fn load(&mut self) -> Result<(), PluginError> {
        let offline = self.config.offline || karma_hub::offline_from_env();
        let files =
            source::resolve(&self.location, self.config.gguf_file.as_deref(), &self.config.revision, offline)
                .map_err(|message| PluginError::new(ErrorCode::NOT_FOUND, without_backtrace(message)))?;
        let device = self.config.device().and_then(|choice| choice.open()).map_err(invalid)?;
        let mut builder = rayon::ThreadPoolBuilder::new().thread_name(|index| format!("candle-llm-{index}"));
        if let Some(threads) = self.config.threads {
            builder = builder.num_threads(threads);
        }
        let pool =
            builder.build().map_err(|error| internal(format!("cannot start compute threads: {error}")))?;
        let options = LoadOptions {
            dtype: self.config.dtype().map_err(invalid)?,
            device: &device,
            dequantize: self.config.dequantize,
            dequantize_below_parameters: self.config.dequantize_below_parameters,
        };
        let started = std::time::Instant::now();
        let model = pool.install(|| loader::load(&files, &options)).map_err(invalid)?;
        tracing::info!(
            model = %self.name,
            source = %files.origin,
            family = model.family.as_str(),
            chat_template = model.chat_template.is_some(),
            weights = if model.quantized { "quantized" } else { "dense" },
            seconds = started.elapsed().as_secs_f64(),
            "loaded"
        );
        self.loaded = Some(Loaded { model, pool });
        Ok(())
    }

    fn preprocess(&mut self, items: &[Item<'_>]) -> Result<Vec<Prompt>, PluginError> {
        let loaded = self
            .loaded
            .as_ref()
            .ok_or_else(|| PluginError::new(ErrorCode::NOT_LOADED, "the model is not loaded"))?;
        Ok(items.iter().map(|item| self.prompt(loaded, item)).collect())
    }

    fn run(&mut self, prompts: Vec<Prompt>) -> Result<Self::Raw, PluginError> {
        let settings = self.config.sampling();
        let loaded = self.loaded()?;
        let ready: Vec<Vec<u32>> =
            prompts.iter().filter_map(|prompt| prompt.as_ref().ok().cloned()).collect();
        let LoadedModel { network, tokenizer, .. } = &mut loaded.model;
        let mut generated = loaded
            .pool
            .install(|| generate::generate(network, tokenizer, &ready, &settings))
            .map_err(internal)?
            .into_iter();
        Ok(prompts
            .into_iter()
            .map(|prompt| {
                let prompt = prompt?;
                let output = generated.next().ok_or_else(|| internal("fewer generations than prompts"))?;
                Ok((prompt.len(), output))
            })
            .collect())
    }

    fn postprocess(
        &mut self,
        raw: Self::Raw,
        _items: &[Item<'_>],
    ) -> Result<Vec<Result<Generation, PluginError>>, PluginError> {
        Ok(raw
            .into_iter()
            .map(|result| {
                result.map(|(prompt_tokens, generated)| {
                    // EOS is never among the tokens, so a full budget means the model was cut off.
                    let truncated = generated.tokens.len() >= self.config.max_tokens;
                    Generation {
                        text: if self.config.strip_thinking {
                            chat::strip_thinking(&generated.text)
                        } else {
                            generated.text
                        },
                        prompt_tokens: Some(prompt_tokens as u64),
                        completion_tokens: Some(generated.tokens.len() as u64),
                        details: serde_json::Map::new(),
                    }
                    .with_detail("finish_reason", if truncated { "length" } else { "stop" })
                    .with_detail("truncated", truncated)
                })
            })
            .collect())
    }

    fn scores_continuations(&self) -> bool {
        true
    }

    fn score_continuations(
        &mut self,
        requests: &[ContinuationRequest<'_>],
    ) -> Result<Vec<Result<ScoredContinuations, PluginError>>, PluginError> {
        let loaded = self.loaded()?;
        let tokenizer = &loaded.model.tokenizer;
        let limit = loaded.model.network.max_positions();
        let mut ready = Vec::new();
        let mut shapes = Vec::with_capacity(requests.len());
        for request in requests {
            match continuation_tokens(tokenizer, request, limit) {
                Ok((context, continuations)) => {
                    shapes.push(Ok((context.len(), continuations.iter().map(Vec::len).collect::<Vec<_>>())));
                    ready.push(ScoreRequest { context, continuations });
                }
                Err(message) => shapes.push(Err(invalid(format!("request {}: {message}", request.id)))),
            }
        }
        let pad = tokenizer.pad_id();
        let LoadedModel { network, .. } = &mut loaded.model;
        let scores: Vec<ContinuationLogprob> = if ready.is_empty() {
            Vec::new()
        } else {
            loaded
                .pool
                .install(|| score::score(network, &ready, pad))
                .map_err(internal)?
                .into_iter()
                .flatten()
                .collect()
        };
        let mut scores = scores.into_iter();
        Ok(shapes
            .into_iter()
            .map(|shape| {
                let (context_tokens, lengths) = shape?;
                let scores = lengths
                    .into_iter()
                    .map(|tokens| {
                        let scored =
                            scores.next().ok_or_else(|| internal("fewer scores than continuations"))?;
                        Ok(ContinuationScore {
                            logprob: scored.logprob,
                            is_greedy: scored.is_greedy,
                            tokens: tokens as u32,
                        })
                    })
                    .collect::<Result<Vec<_>, PluginError>>()?;
                Ok(ScoredContinuations { scores, context_tokens: context_tokens as u64 })
            })
            .collect())
    }
}
