//! Writes a CTranslate2 (faster-whisper) Whisper directory as a Hugging Face checkpoint
//! (see `karma_plugin_candle_whisper::convert`).
//!
//!     cargo run --release -p karma-plugin-candle-whisper --example ct2_to_safetensors -- CT2_DIR OUT_DIR

use std::path::PathBuf;

use karma_plugin_candle_whisper::convert::ct2_to_safetensors;

fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [source, out] = args.as_slice() else {
        eprintln!("usage: ct2_to_safetensors CT2_DIR OUT_DIR (OUT_DIR must not exist or be empty)");
        std::process::exit(2);
    };
    match ct2_to_safetensors(source, out) {
        Ok(count) => println!("wrote {count} tensors to {}", out.display()),
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(1);
        }
    }
}
