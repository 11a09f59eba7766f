//! `karma/describe-input`: answers with what it received, so a dataset's plumbing can be
//! checked (do the images arrive, whole, in the format the dataset says?) without a model that
//! understands them.

use karma_plugin_api::{abi::Media, sdk::prelude::*};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::Rule;

/// What the answer holds.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Report {
    /// One line of JSON: text sizes, conversation turns, rubric size, `other_args`, and per
    /// image, audio and video its format, byte count and SHA-256.
    Json,
    /// The SHA-256 of the first medium (image, else audio, else video, else the input text) as
    /// eight space-separated words of eight hex digits: a transcript or short answer that is
    /// right only when the bytes arrived intact.
    Digest,
}

/// Configuration of [`DescribeInput`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DescribeConfig {
    pub report: Report,
}

/// `karma/describe-input`.
pub struct DescribeInput {
    report: Report,
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|byte| format!("{byte:02x}")).collect()
}

fn medium(media: &Media<'_>) -> serde_json::Value {
    json!({
        "format": media.format.as_str(),
        "bytes": media.data.len(),
        "sha256": sha256_hex(media.data.as_slice()),
    })
}

impl Rule for DescribeInput {
    type Config = DescribeConfig;

    fn new(config: DescribeConfig) -> Result<Self, PluginError> {
        Ok(DescribeInput { report: config.report })
    }

    fn answer(&self, item: &Item<'_>) -> Result<String, PluginError> {
        match self.report {
            Report::Json => Ok(json!({
                "input_chars": item.input().map(|text| text.chars().count()),
                "system_prompt": item.system_prompt().is_some(),
                "turns": item.conversation().len(),
                "images": item.images().iter().map(medium).collect::<Vec<_>>(),
                "audio": item.audio().as_ref().map(medium),
                "video": item.video().as_ref().map(medium),
                "rubric": item.rubric().len(),
                "other_args": serde_json::from_str::<serde_json::Value>(item.other_args_json()).unwrap_or_default(),
            })
            .to_string()),
            Report::Digest => {
                let first = item.images().first().copied().or(item.audio()).or(item.video());
                let bytes = match &first {
                    Some(media) => media.data.as_slice(),
                    None => item.input().unwrap_or_default().as_bytes(),
                };
                let hex = sha256_hex(bytes);
                let words: Vec<&str> = (0..8).map(|word| &hex[word * 8..word * 8 + 8]).collect();
                Ok(words.join(" "))
            }
        }
    }
}
