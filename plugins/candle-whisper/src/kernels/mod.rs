//! CPU kernels for what candle's general ops do slowly on Whisper's shapes: attention over
//! 1500 audio frames (and cross-attention straight from the encoder output), the exact GELU,
//! and linear layers with their bias and residual.

pub mod affine;
pub mod attention;
pub mod cross_attention;
pub mod gelu;
