//! Encoded recordings to the 16 kHz mono samples Whisper hears: symphonia decodes the container
//! and codec (WAV, FLAC, MP3, Ogg Vorbis, MP4/M4A AAC), channels are averaged, and rubato
//! resamples with a band-limited sinc filter (a naive linear interpolation would alias).

use rubato::{Resampler, SincFixedIn, SincInterpolationParameters, SincInterpolationType, WindowFunction};
use symphonia::core::{
    audio::SampleBuffer,
    codecs::{DecoderOptions, CODEC_TYPE_NULL},
    errors::Error as SymphoniaError,
    formats::FormatOptions,
    io::MediaSourceStream,
    meta::MetadataOptions,
    probe::Hint,
};

use crate::mel::SAMPLE_RATE;

/// Decoded mono audio at its own rate.
#[derive(Clone, Debug)]
pub struct Decoded {
    pub samples: Vec<f32>,
    pub sample_rate: u32,
}

/// Decodes `bytes`; `format` (`wav`, `mp3`, ...) is only a hint, the content decides.
pub fn decode(bytes: &[u8], format: &str) -> Result<Decoded, String> {
    if bytes.is_empty() {
        return Err("the recording is empty".to_owned());
    }
    let source = MediaSourceStream::new(Box::new(std::io::Cursor::new(bytes.to_vec())), Default::default());
    let mut hint = Hint::new();
    let extension = format.trim().trim_start_matches('.').to_ascii_lowercase();
    if !extension.is_empty() {
        hint.with_extension(&extension);
    }
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            source,
            &FormatOptions { enable_gapless: true, ..Default::default() },
            &MetadataOptions::default(),
        )
        .map_err(|error| format!("not a recognised audio file ({error})"))?;
    let mut reader = probed.format;
    let track = reader
        .tracks()
        .iter()
        .find(|track| track.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| "the file has no audio track".to_owned())?;
    let track_id = track.id;
    let mut sample_rate = track.codec_params.sample_rate.unwrap_or(0);
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|error| format!("unsupported audio codec ({error})"))?;
    let mut samples = Vec::new();
    let mut buffer: Option<SampleBuffer<f32>> = None;
    let mut decode_errors = 0usize;
    loop {
        let packet = match reader.next_packet() {
            Ok(packet) => packet,
            Err(SymphoniaError::IoError(error)) if error.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymphoniaError::ResetRequired) => break,
            Err(error) => return Err(format!("cannot read the audio stream ({error})")),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(decoded) => decoded,
            // A corrupt packet is skipped, as players do; a file of nothing but is an error below.
            Err(SymphoniaError::DecodeError(_)) => {
                decode_errors += 1;
                continue;
            }
            Err(error) => return Err(format!("cannot decode the audio ({error})")),
        };
        let spec = *decoded.spec();
        sample_rate = spec.rate;
        let channels = spec.channels.count().max(1);
        let needed = decoded.capacity() as u64;
        let target = match &mut buffer {
            Some(existing) if existing.capacity() as u64 >= needed * channels as u64 => existing,
            slot => slot.insert(SampleBuffer::new(needed, spec)),
        };
        target.copy_interleaved_ref(decoded);
        samples.extend(
            target.samples().chunks(channels).map(|frame| frame.iter().sum::<f32>() / channels as f32),
        );
    }
    if samples.is_empty() {
        return Err(if decode_errors > 0 {
            format!("none of the {decode_errors} audio packets could be decoded")
        } else {
            "the recording holds no samples".to_owned()
        });
    }
    if sample_rate == 0 {
        return Err("the recording does not state its sample rate".to_owned());
    }
    Ok(Decoded { samples, sample_rate })
}

/// Resamples mono `samples` from `from` Hz to 16 kHz; the output has the duration of the input.
pub fn resample_to_16k(samples: &[f32], from: u32) -> Result<Vec<f32>, String> {
    let to = SAMPLE_RATE as u32;
    if from == to || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    let ratio = f64::from(to) / f64::from(from);
    let parameters = SincInterpolationParameters {
        sinc_len: 128,
        f_cutoff: 0.95,
        oversampling_factor: 128,
        interpolation: SincInterpolationType::Linear,
        window: WindowFunction::BlackmanHarris2,
    };
    let chunk = 4096;
    let mut resampler = SincFixedIn::<f32>::new(ratio, 1.0, parameters, chunk, 1)
        .map_err(|error| format!("cannot resample from {from} Hz: {error}"))?;
    let expected = (samples.len() as f64 * ratio).round() as usize;
    let delay = resampler.output_delay();
    let mut output = Vec::with_capacity(expected + delay + chunk);
    let fail = |error: rubato::ResampleError| format!("resampling from {from} Hz failed: {error}");
    let mut position = 0;
    while position + resampler.input_frames_next() <= samples.len() {
        let take = resampler.input_frames_next();
        let out = resampler.process(&[&samples[position..position + take]], None).map_err(fail)?;
        output.extend_from_slice(&out[0]);
        position += take;
    }
    if position < samples.len() {
        let out = resampler.process_partial(Some(&[&samples[position..]]), None).map_err(fail)?;
        output.extend_from_slice(&out[0]);
    }
    // Flush the filter's delay line until the whole input has come out.
    while output.len() < expected + delay {
        let out = resampler.process_partial::<&[f32]>(None, None).map_err(fail)?;
        if out[0].is_empty() {
            break;
        }
        output.extend_from_slice(&out[0]);
    }
    let end = (delay + expected).min(output.len());
    Ok(output.get(delay..end).map(<[f32]>::to_vec).unwrap_or_default())
}

/// Decodes and resamples: what the model hears, and the recording's length in seconds.
pub fn load_16k_mono(bytes: &[u8], format: &str) -> Result<(Vec<f32>, f64), String> {
    let decoded = decode(bytes, format)?;
    let seconds = decoded.samples.len() as f64 / f64::from(decoded.sample_rate);
    let samples = resample_to_16k(&decoded.samples, decoded.sample_rate)?;
    Ok((samples, seconds))
}
