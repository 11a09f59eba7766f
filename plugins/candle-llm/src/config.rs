//! The model configuration: loader kwargs from the catalog, overridden by `--model-config` and
//! `--model-args`.

use candle_core::DType;
use serde::Deserialize;

use crate::generate::SamplingSettings;

/// Every key a user can set. Unknown keys are rejected by the SDK before anything loads.
#[derive(Clone, Debug, Deserialize)]
pub struct LlmConfig {
    /// Hub id or local path of the checkpoint (`--model-path` overrides it).
    #[serde(default)]
    pub repo: Option<String>,
    /// Hub revision (branch, tag or commit).
    #[serde(default = "default_revision")]
    pub revision: String,
    /// A GGUF file inside the repository or directory.
    #[serde(default)]
    pub gguf_file: Option<String>,
    /// `f32` (default; fastest on CPU), `bf16` or `f16` for safetensors weights.
    #[serde(default = "default_dtype")]
    pub dtype: String,
    /// `cpu`, `cuda`, `cuda:N` or `metal` (the last two need a build with that candle feature).
    #[serde(default = "default_device")]
    pub device: String,
    /// Compute threads; all cores when unset.
    #[serde(default)]
    pub threads: Option<usize>,
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    /// 0 is greedy decoding.
    #[serde(default)]
    pub temperature: f64,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub top_k: Option<usize>,
    #[serde(default = "default_penalty")]
    pub repetition_penalty: f32,
    #[serde(default = "default_repeat_last_n")]
    pub repeat_last_n: usize,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Generation stops before the first of these strings.
    #[serde(default)]
    pub stop: Vec<String>,
    /// Qwen3's reasoning mode, passed to the chat template.
    #[serde(default)]
    pub enable_thinking: bool,
    /// Remove `<think>...</think>` from answers.
    #[serde(default = "default_true")]
    pub strip_thinking: bool,
    /// Render prompts with the model's chat template when it has one.
    #[serde(default = "default_true")]
    pub use_chat_template: bool,
    /// Dequantize GGUF weights to f32 at load; unset (null) means "below
    /// `dequantize_below_parameters`".
    #[serde(default)]
    pub dequantize: Option<bool>,
    /// GGUF files with fewer parameters than this run dequantized to f32 unless `dequantize` says
    /// otherwise. A config key, so that the rule deciding the effective dtype is shown by `info
    /// model` and hashed into the host's cache keys with the file it applies to.
    #[serde(default = "default_dequantize_below_parameters")]
    pub dequantize_below_parameters: u64,
    /// Use only the local HF cache (also `HF_HUB_OFFLINE=1`).
    #[serde(default)]
    pub offline: bool,
}

fn default_revision() -> String {
    "main".to_owned()
}
fn default_dtype() -> String {
    "f32".to_owned()
}
fn default_device() -> String {
    "cpu".to_owned()
}
fn default_max_tokens() -> usize {
    256
}
fn default_penalty() -> f32 {
    1.0
}
fn default_repeat_last_n() -> usize {
    64
}
fn default_seed() -> u64 {
    42
}
fn default_true() -> bool {
    true
}
fn default_dequantize_below_parameters() -> u64 {
    crate::loader::DEQUANTIZE_BELOW_PARAMETERS
}

impl LlmConfig {
    /// Checks values that serde's types do not.
    pub fn validate(&self) -> Result<(), String> {
        self.dtype()?;
        self.device()?;
        if self.temperature < 0.0 || !self.temperature.is_finite() {
            return Err(format!("temperature must be >= 0, got {}", self.temperature));
        }
        if let Some(p) = self.top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
            return Err(format!("top_p must be in (0, 1], got {p}"));
        }
        if self.top_k == Some(0) {
            return Err("top_k must be at least 1 (leave it unset for no limit)".to_owned());
        }
        if self.repetition_penalty <= 0.0 {
            return Err(format!("repetition_penalty must be > 0, got {}", self.repetition_penalty));
        }
        if self.threads == Some(0) {
            return Err("threads must be at least 1".to_owned());
        }
        if self.stop.iter().any(String::is_empty) {
            return Err("stop strings must not be empty".to_owned());
        }
        Ok(())
    }

    pub fn dtype(&self) -> Result<DType, String> {
        match self.dtype.as_str() {
            "f32" | "float32" => Ok(DType::F32),
            "bf16" | "bfloat16" => Ok(DType::BF16),
            "f16" | "float16" => Ok(DType::F16),
            other => Err(format!("dtype `{other}` is not supported (f32, bf16, f16)")),
        }
    }

    /// The device name, parsed (creating the device happens at load).
    pub fn device(&self) -> Result<DeviceChoice, String> {
        match self.device.as_str() {
            "cpu" => Ok(DeviceChoice::Cpu),
            "metal" => Ok(DeviceChoice::Metal),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|index| index.parse().ok())
                .map(DeviceChoice::Cuda)
                .ok_or_else(|| format!("device `{other}` is not one of cpu, cuda, cuda:N, metal")),
        }
    }

    pub fn sampling(&self) -> SamplingSettings {
        SamplingSettings {
            max_tokens: self.max_tokens,
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            repetition_penalty: self.repetition_penalty,
            repeat_last_n: self.repeat_last_n,
            seed: self.seed,
            stop: self.stop.clone(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    Cpu,
    Cuda(usize),
    Metal,
}

impl DeviceChoice {
    pub fn open(self) -> Result<candle_core::Device, String> {
        let opened = match self {
            DeviceChoice::Cpu => return Ok(candle_core::Device::Cpu),
            DeviceChoice::Cuda(index) => candle_core::Device::new_cuda(index),
            DeviceChoice::Metal => candle_core::Device::new_metal(0),
        };
        opened.map_err(|error| {
            format!("cannot open device {self:?}: {error} (GPU devices need the plugin built with `--features cuda` or `metal`)")
        })
    }
}
