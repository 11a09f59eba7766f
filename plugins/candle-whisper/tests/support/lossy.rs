//! MP3, Ogg Vorbis and M4A (AAC) test clips, encoded from WAV bytes by an ffmpeg binary: the
//! static one `.ci/run` unpacks from the `imageio-ffmpeg` wheel into target/tools/ffmpeg, or
//! `KARMA_FFMPEG`, or `ffmpeg` on PATH. No pure-Rust encoder exists for these codecs, and
//! symphonia only decodes. Shared with the e2e tests (`tests/e2e/whisper.rs`).

use std::path::{Path, PathBuf};

/// The lossy formats Whisper datasets ship, as (file extension, ffmpeg codec arguments).
pub const FORMATS: [(&str, &[&str]); 3] = [
    ("mp3", &["-c:a", "libmp3lame", "-b:a", "64k"]),
    ("ogg", &["-c:a", "libvorbis", "-q:a", "3"]),
    ("m4a", &["-c:a", "aac", "-b:a", "64k"]),
];

/// The ffmpeg to encode with, or why there is none.
pub fn ffmpeg() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("KARMA_FFMPEG") {
        return Ok(PathBuf::from(path));
    }
    let unpacked = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("target/tools/ffmpeg"))
        .find(|path| path.is_file());
    if let Some(path) = unpacked {
        return Ok(path);
    }
    match std::process::Command::new("ffmpeg").arg("-version").output() {
        Ok(output) if output.status.success() => Ok(PathBuf::from("ffmpeg")),
        _ => Err("no ffmpeg: not in target/tools/ (.ci/run unpacks it from the imageio-ffmpeg wheel), \
                  not in KARMA_FFMPEG, not on PATH"
            .to_owned()),
    }
}

/// `wav` re-encoded as `extension` (one of [`FORMATS`]), or why it could not be.
pub fn encode(wav: &[u8], extension: &str) -> Result<Vec<u8>, String> {
    let ffmpeg = ffmpeg()?;
    let (_, codec) = FORMATS
        .iter()
        .find(|(ext, _)| *ext == extension)
        .ok_or_else(|| format!("no encoder set up for .{extension}"))?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (input, output) = (dir.path().join("in.wav"), dir.path().join(format!("out.{extension}")));
    std::fs::write(&input, wav).map_err(|e| e.to_string())?;
    let run = std::process::Command::new(&ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i"])
        .arg(&input)
        .args(*codec)
        .arg(&output)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", ffmpeg.display()))?;
    if !run.status.success() {
        return Err(format!("{} failed: {}", ffmpeg.display(), String::from_utf8_lossy(&run.stderr)));
    }
    std::fs::read(&output).map_err(|e| e.to_string())
}
