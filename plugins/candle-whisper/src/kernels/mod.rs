//! CPU kernels for what candle's general ops do slowly on Whisper's shapes: attention over
//! 1500 audio frames and the exact GELU.

pub mod attention;
pub mod gelu;
pub mod vector_math;
