//! Whisper speech recognition on candle, as a karma-host plugin.
//!
//! The data path: [`source`] finds the checkpoint (local directory, HF cache or hub download),
//! [`weights`] builds the [`network`] from Hugging Face safetensors or a CTranslate2
//! `model.bin` ([`ct2`]) with its [`tokens`] vocabulary; per item, [`audio`] decodes and
//! resamples the recording and [`mel`] turns it into log-mel windows; [`transcribe`] walks the
//! windows of the whole batch, each round decoded together by [`decode`]. On the CPU the
//! network's attention, GELU and linear layers (bias and residual inside the GEMM) run on the
//! plugin's own kernels (`kernels`).

pub mod audio;
mod catalog;
pub mod config;
pub mod convert;
pub mod ct2;
pub mod decode;
mod kernels;
pub mod languages;
pub mod mel;
mod model;
pub mod network;
pub mod source;
pub mod tokens;
pub mod transcribe;
pub mod weights;

pub use model::CandleWhisper;

karma_plugin_api::export_plugin! {
    CandleWhisper => catalog::whisper_tiny,
    CandleWhisper => catalog::whisper_tiny_en,
    CandleWhisper => catalog::whisper_base,
    CandleWhisper => catalog::whisper_small,
    CandleWhisper => catalog::whisper_large_v3,
    CandleWhisper => catalog::whisper_large_v3_turbo,
    CandleWhisper => catalog::local_whisper,
}
