//! The model configuration: loader kwargs from the catalog, overridden by `--model-config` and
//! `--model-args`.

use candle_core::DType;
use serde::Deserialize;

/// Every key a user can set. Unknown keys are rejected by the SDK before anything loads.
#[derive(Clone, Debug, Deserialize)]
pub struct WhisperConfig {
    /// Hub id or local directory of the checkpoint (`--model-path` overrides it).
    #[serde(default)]
    pub repo: Option<String>,
    #[serde(default = "default_revision")]
    pub revision: String,
    /// Spoken language for every item; `None` reads each item's `other_args.language`, else
    /// detects it (multilingual checkpoints; English-only ones speak English). `auto` detects it
    /// for every item, whatever the items say.
    #[serde(default)]
    pub language: Option<String>,
    /// Text that every recording's first window continues from (OpenAI's `initial_prompt`:
    /// spellings, names, a style); `None` reads each item's `other_args.initial_prompt`.
    #[serde(default)]
    pub initial_prompt: Option<String>,
    /// Prompt each 30 s window with the text decoded before it (OpenAI's default).
    #[serde(default = "default_true")]
    pub condition_on_previous_text: bool,
    /// `transcribe` or `translate` (to English).
    #[serde(default = "default_task")]
    pub task: String,
    /// Re-decode failing windows at higher temperatures, as OpenAI's reference does.
    #[serde(default = "default_true")]
    pub temperature_fallback: bool,
    /// Tokens per 30 s window (OpenAI's `sample_len`, half the decoder's 448 positions).
    #[serde(default = "default_max_new_tokens")]
    pub max_new_tokens: usize,
    /// Compute threads; all cores when unset.
    #[serde(default)]
    pub threads: Option<usize>,
    /// `f32` (default; fastest on CPU), `f16` or `bf16`.
    #[serde(default = "default_dtype")]
    pub dtype: String,
    /// `cpu`, `cuda`, `cuda:N` or `metal` (GPU devices need a build with that candle feature).
    #[serde(default = "default_device")]
    pub device: String,
    /// Seed of the sampling at fallback temperatures.
    #[serde(default)]
    pub seed: u64,
    /// Use only the local HF cache (also `HF_HUB_OFFLINE=1`).
    #[serde(default)]
    pub offline: bool,
}

fn default_revision() -> String {
    "main".to_owned()
}
fn default_task() -> String {
    "transcribe".to_owned()
}
fn default_true() -> bool {
    true
}
fn default_max_new_tokens() -> usize {
    224
}
fn default_dtype() -> String {
    "f32".to_owned()
}
fn default_device() -> String {
    "cpu".to_owned()
}

/// Whether `language` asks for detection.
pub fn is_auto(language: &str) -> bool {
    language.trim().eq_ignore_ascii_case("auto")
}

/// The task token to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    Transcribe,
    Translate,
}

impl WhisperConfig {
    /// Checks what serde's types do not.
    pub fn validate(&self) -> Result<(), String> {
        self.dtype()?;
        let device_ok = matches!(self.device.as_str(), "cpu" | "cuda" | "metal")
            || self.device.strip_prefix("cuda:").is_some_and(|index| index.parse::<usize>().is_ok());
        if !device_ok {
            return Err(format!("device `{}` is not one of cpu, cuda, cuda:N, metal", self.device));
        }
        self.task()?;
        if self.max_new_tokens == 0 {
            return Err("max_new_tokens must be at least 1".to_owned());
        }
        if self.threads == Some(0) {
            return Err("threads must be at least 1".to_owned());
        }
        if let Some(language) = self.language.as_ref().filter(|language| !is_auto(language)) {
            crate::languages::whisper_code(language)
                .ok_or_else(|| format!("language `{language}` is not one Whisper knows"))?;
        }
        Ok(())
    }

    pub fn task(&self) -> Result<Task, String> {
        match self.task.as_str() {
            "transcribe" => Ok(Task::Transcribe),
            "translate" => Ok(Task::Translate),
            other => Err(format!("task `{other}` is not `transcribe` or `translate`")),
        }
    }

    pub fn dtype(&self) -> Result<DType, String> {
        match self.dtype.as_str() {
            "f32" | "float32" => Ok(DType::F32),
            "f16" | "float16" => Ok(DType::F16),
            "bf16" | "bfloat16" => Ok(DType::BF16),
            other => Err(format!("dtype `{other}` is not supported (f32, f16, bf16)")),
        }
    }

    pub fn device(&self) -> Result<candle_core::Device, String> {
        let device = match self.device.as_str() {
            "cpu" => return Ok(candle_core::Device::Cpu),
            "cuda" => candle_core::Device::new_cuda(0),
            "metal" => candle_core::Device::new_metal(0),
            other => match other.strip_prefix("cuda:").and_then(|index| index.parse().ok()) {
                Some(index) => candle_core::Device::new_cuda(index),
                None => return Err(format!("device `{other}` is not one of cpu, cuda, cuda:N, metal")),
            },
        };
        device.map_err(|error| {
            format!("cannot open device `{}`: {error} (GPU devices need the plugin built with `--features cuda` or `metal`)", self.device)
        })
    }
}
