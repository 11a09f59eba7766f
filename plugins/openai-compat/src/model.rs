//! The SDK's [`Model`] for every registered API model: `preprocess` renders request bodies,
//! `run` sends them through the pool, `postprocess` turns answers into generations.

use karma_plugin_api::sdk::prelude::*;

use crate::{
    aimd::Limiter,
    catalog,
    client::{Call, Client},
    config::{Config, Settings},
    pool::{self, CallResult},
    prompt, protocol,
};

/// A model behind an HTTP API.
pub struct ApiModel {
    settings: Settings,
    /// Shared by all batches of this instance: what one learned of the rate limit, the next
    /// keeps.
    limiter: Limiter,
    client: Option<Client>,
    /// Set once the server refused the key or reported the quota exhausted: neither changes
    /// inside this instance, so later batches fail at once instead of sending more doomed
    /// requests.
    refused: Option<PluginError>,
}

impl ApiModel {
    /// The current concurrency limit (AIMD).
    pub fn concurrency_limit(&self) -> usize {
        self.limiter.limit()
    }

    fn body(&self, item: &Item<'_>) -> Result<Vec<u8>, PluginError> {
        let prompt = prompt::from_item(item)?;
        serde_json::to_vec(&protocol::body(&self.settings, &prompt)).map_err(|error| {
            PluginError::new(
                ErrorCode::INTERNAL,
                format!("item {}: request not serializable: {error}", item.id()),
            )
        })
    }
}

impl Model for ApiModel {
    type Config = Config;
    type Prepared = Vec<Result<Vec<u8>, PluginError>>;
    type Raw = Vec<CallResult>;

    fn create(config: Config, context: &ModelContext) -> Result<Self, PluginError> {
        let entry = catalog::entry(&context.model_name).ok_or_else(|| {
            PluginError::new(
                ErrorCode::NOT_FOUND,
                format!("no API model `{}` in this plugin", context.model_name),
            )
        })?;
        if let Some(path) = &context.model_path {
            return Err(PluginError::new(
                ErrorCode::INVALID_INPUT,
                format!(
                    "`{}` runs behind an API and takes no model_path (`{path}`): set model_id",
                    entry.name
                ),
            ));
        }
        let settings = Settings::resolve(config, entry)?;
        let limiter = Limiter::new(settings.max_concurrency);
        Ok(ApiModel { settings, limiter, client: None, refused: None })
    }

    fn load(&mut self) -> Result<(), PluginError> {
        self.client = Some(Client::new(&self.settings));
        Ok(())
    }

    fn preprocess(&mut self, items: &[Item<'_>]) -> Result<Self::Prepared, PluginError> {
        Ok(items.iter().map(|item| self.body(item)).collect())
    }

    fn run(&mut self, bodies: Self::Prepared) -> Result<Self::Raw, PluginError> {
        if let Some(refused) = &self.refused {
            return Err(refused.clone());
        }
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| PluginError::new(ErrorCode::NOT_LOADED, "the model is not loaded"))?;
        // Not logged: the host reports it, once.
        pool::run(&self.settings, client, &self.limiter, bodies).map_err(|abort| {
            if abort.lasting {
                self.refused = Some(abort.error.clone());
            }
            abort.error
        })
    }

    fn postprocess(
        &mut self,
        raw: Self::Raw,
        _items: &[Item<'_>],
    ) -> Result<Vec<Result<Generation, PluginError>>, PluginError> {
        Ok(raw.into_iter().map(|result| result.map(|call| generation(&self.settings, call))).collect())
    }
}

/// The generation and its details: `finish_reason`, `truncated`, `reasoning_tokens`,
/// `cost_usd` (when priced and counted), `attempts` and `latency_ms` (back-off included).
pub fn generation(settings: &Settings, call: Call) -> Generation {
    let Call { answer, attempts, latency } = call;
    let mut generation = Generation::text(answer.text);
    generation.prompt_tokens = answer.prompt_tokens;
    generation.completion_tokens = answer.completion_tokens;
    if let Some(reason) = answer.finish_reason {
        let truncated = reason == "length";
        generation = generation.with_detail("finish_reason", reason).with_detail("truncated", truncated);
    }
    if let Some(tokens) = answer.reasoning_tokens {
        generation = generation.with_detail("reasoning_tokens", tokens);
    }
    if let (Some(price), Some(prompt), Some(completion)) =
        (settings.price, answer.prompt_tokens, answer.completion_tokens)
    {
        generation = generation.with_detail("cost_usd", price.cost(prompt, completion));
    }
    generation
        .with_detail("attempts", attempts)
        .with_detail("latency_ms", u64::try_from(latency.as_millis()).unwrap_or(u64::MAX))
}
