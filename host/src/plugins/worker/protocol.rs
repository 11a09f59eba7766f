//! The messages between the host and a worker process, and their wire form.
//!
//! A frame is a little-endian `u64` length and that many bytes: a tag byte, then the fields in
//! order. Integers are little-endian, strings and byte blobs a `u64` length and their bytes,
//! options a presence byte. Hand-written rather than serde: a batch of 64 short items is a few
//! kilobytes and must cross in microseconds, and both ends are this binary, so there is no
//! version to negotiate.

use std::io::{Read, Write};

use super::shared_media::{MediaRegion, SHARED_FROM};
use crate::{
    datasets::item::{MediaBlob, OwnedItem},
    plugins::{Completion, ContinuationScores, ItemFailure},
};

/// The largest frame either side accepts (a batch of media can be large; this bounds what a
/// corrupted length can make the reader allocate).
pub const MAX_FRAME: u64 = 16 << 30;

/// What the host asks, but a batch to generate for: that is [`generate_frame`] on the host's
/// side and [`super::batch_frame::with_generate_view`] on the worker's.
#[derive(Debug, PartialEq)]
pub enum Request {
    /// Load `plugin`, find `model`, and create an instance from `config_json`.
    Create {
        plugin: String,
        model: String,
        config_json: String,
    },
    Load,
    /// Whether the instance offers log-likelihood scoring.
    ScoresContinuations,
    Score {
        requests: Vec<(u64, String, Vec<String>)>,
    },
}

/// What the worker answers.
#[derive(Debug, PartialEq)]
pub enum Reply {
    Done,
    Flag(bool),
    /// The call failed in an orderly way (a plugin error, a broken output contract): the
    /// message as the host would have written it in process.
    Failed(String),
    Generated(Vec<Result<Completion, ItemFailure>>),
    Scored(Vec<Result<ContinuationScores, ItemFailure>>),
}

#[derive(Default)]
pub struct Encoder(Vec<u8>);

/// How a media slot is sent: absent, inline in the frame, or in the shared region.
pub(super) const MEDIA_NONE: u8 = 0;
pub(super) const MEDIA_INLINE: u8 = 1;
pub(super) const MEDIA_SHARED: u8 = 2;

impl Encoder {
    fn new(tag: u8) -> Self {
        Self::reusing(Vec::with_capacity(4096), tag)
    }
    /// An encoder writing into `buffer` (emptied first): the host keeps one across batches.
    fn reusing(mut buffer: Vec<u8>, tag: u8) -> Self {
        buffer.clear();
        buffer.extend_from_slice(&[0; 8]);
        buffer.push(tag);
        Encoder(buffer)
    }
    fn u8(&mut self, value: u8) {
        self.0.push(value);
    }
    fn u64(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }
    fn f64(&mut self, value: f64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }
    fn bytes(&mut self, value: &[u8]) {
        self.u64(value.len() as u64);
        self.0.extend_from_slice(value);
    }
    fn str(&mut self, value: &str) {
        self.bytes(value.as_bytes());
    }
    fn opt_str(&mut self, value: Option<&str>) {
        self.u8(u8::from(value.is_some()));
        if let Some(value) = value {
            self.str(value);
        }
    }
    fn opt_u64(&mut self, value: Option<u64>) {
        self.u8(u8::from(value.is_some()));
        if let Some(value) = value {
            self.u64(value);
        }
    }
    /// A media slot; a large blob goes into `region` when there is one and it takes the bytes
    /// (a failed write, such as no memory for the memfd, falls back to the frame).
    fn media(&mut self, value: Option<&MediaBlob>, region: &mut Option<&mut MediaRegion>) {
        let Some(blob) = value else { return self.u8(MEDIA_NONE) };
        let shared = region
            .as_mut()
            .filter(|_| blob.data.len() >= SHARED_FROM)
            .and_then(|region| region.place(&blob.data).ok());
        match shared {
            Some(offset) => {
                self.u8(MEDIA_SHARED);
                self.u64(offset);
                self.u64(blob.data.len() as u64);
            }
            None => {
                self.u8(MEDIA_INLINE);
                self.bytes(&blob.data);
            }
        }
        self.str(&blob.format);
    }
    fn failure(&mut self, failure: &ItemFailure) {
        self.str(&failure.code);
        self.str(&failure.message);
    }
    /// The frame, its length filled in.
    fn finish(mut self) -> Vec<u8> {
        let length = self.0.len() as u64 - 8;
        self.0[..8].copy_from_slice(&length.to_le_bytes());
        self.0
    }
}

pub struct Decoder<'a> {
    data: &'a [u8],
}

pub(super) type Decoded<T> = Result<T, String>;

impl<'a> Decoder<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        Decoder { data }
    }
    fn take(&mut self, count: usize) -> Decoded<&'a [u8]> {
        if self.data.len() < count {
            return Err(format!("a message ended {} bytes early", count - self.data.len()));
        }
        let (taken, rest) = self.data.split_at(count);
        self.data = rest;
        Ok(taken)
    }
    pub(super) fn u8(&mut self) -> Decoded<u8> {
        Ok(self.take(1)?[0])
    }
    pub(super) fn flag(&mut self) -> Decoded<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!("a presence byte was {other}")),
        }
    }
    fn eight(&mut self) -> Decoded<[u8; 8]> {
        let Some((bytes, rest)) = self.data.split_first_chunk::<8>() else {
            return Err(format!("a message ended {} bytes early", 8 - self.data.len()));
        };
        self.data = rest;
        Ok(*bytes)
    }
    pub(super) fn u64(&mut self) -> Decoded<u64> {
        Ok(u64::from_le_bytes(self.eight()?))
    }
    pub(super) fn f64(&mut self) -> Decoded<f64> {
        Ok(f64::from_le_bytes(self.eight()?))
    }
    fn len(&mut self) -> Decoded<usize> {
        let length = self.u64()?;
        usize::try_from(length)
            .ok()
            .filter(|length| *length <= self.data.len())
            .ok_or_else(|| format!("a length of {length} runs past the message's end"))
    }
    /// A byte blob borrowed from the frame.
    pub(super) fn bytes(&mut self) -> Decoded<&'a [u8]> {
        let length = self.len()?;
        self.take(length)
    }
    /// A string borrowed from the frame.
    pub(super) fn str(&mut self) -> Decoded<&'a str> {
        std::str::from_utf8(self.bytes()?).map_err(|error| format!("a string is not UTF-8: {error}"))
    }
    pub(super) fn opt_str(&mut self) -> Decoded<Option<&'a str>> {
        if self.flag()? {
            self.str().map(Some)
        } else {
            Ok(None)
        }
    }
    fn string(&mut self) -> Decoded<String> {
        self.str().map(str::to_owned)
    }
    fn opt_string(&mut self) -> Decoded<Option<String>> {
        Ok(self.opt_str()?.map(str::to_owned))
    }
    fn opt_u64(&mut self) -> Decoded<Option<u64>> {
        if self.flag()? {
            self.u64().map(Some)
        } else {
            Ok(None)
        }
    }
    /// A count of elements, each at least `min_size` bytes (so a corrupt count cannot make
    /// the reader reserve more than the message could hold).
    pub(super) fn count(&mut self, min_size: usize) -> Decoded<usize> {
        let count = self.u64()?;
        usize::try_from(count)
            .ok()
            .filter(|count| count.saturating_mul(min_size) <= self.data.len())
            .ok_or_else(|| format!("a count of {count} runs past the message's end"))
    }
    fn failure(&mut self) -> Decoded<ItemFailure> {
        Ok(ItemFailure { code: self.string()?, message: self.string()? })
    }
    pub(super) fn end(&self) -> Decoded<()> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(format!("{} bytes follow the end of a message", self.data.len()))
        }
    }
}

fn encode_item(
    encoder: &mut Encoder,
    item: &OwnedItem,
    show_expected_output: bool,
    region: &mut Option<&mut MediaRegion>,
) {
    encoder.u64(item.id);
    encoder.opt_str(item.input.as_deref());
    encoder.opt_str(item.system_prompt.as_deref());
    encoder.u64(item.conversation.len() as u64);
    for turn in &item.conversation {
        encoder.str(&turn.role);
        encoder.str(&turn.content);
    }
    encoder.u64(item.images.len() as u64);
    for image in &item.images {
        encoder.media(Some(image), region);
    }
    encoder.media(item.audio.as_deref(), region);
    encoder.media(item.video.as_deref(), region);
    // Withheld here, as the in-process view withholds it: the worker never holds it.
    encoder.opt_str(item.expected_output.as_deref().filter(|_| show_expected_output));
    encoder.u64(item.rubric.len() as u64);
    for criterion in &item.rubric {
        encoder.str(&criterion.criterion);
        encoder.f64(criterion.points);
        encoder.u64(criterion.tags.len() as u64);
        for tag in &criterion.tags {
            encoder.str(tag);
        }
    }
    encoder.str(&item.other_args);
}

const CREATE: u8 = 1;
const LOAD: u8 = 2;
const SCORES_CONTINUATIONS: u8 = 3;
pub(super) const GENERATE: u8 = 4;
const SCORE: u8 = 5;

/// Where a generate frame's body keeps the length of the shared region its media use (after
/// the tag and the expected-output flag), filled in once every item is encoded.
const SHARED_LEN_AT: usize = 2;

/// The frame of a generate request, encoded from borrowed items into `buffer` (the host's side).
/// With a `region`, large media are placed there (cleared first) instead of in the frame.
pub fn generate_frame(
    items: &[&OwnedItem],
    show_expected_output: bool,
    mut region: Option<&mut MediaRegion>,
    buffer: Vec<u8>,
) -> Vec<u8> {
    let mut encoder = Encoder::reusing(buffer, GENERATE);
    encoder.u8(u8::from(show_expected_output));
    encoder.u64(0);
    encoder.u64(items.len() as u64);
    if let Some(region) = region.as_mut() {
        region.clear();
    }
    for item in items {
        encode_item(&mut encoder, item, show_expected_output, &mut region);
    }
    let shared_len = region.map_or(0, |region| region.used());
    let at = 8 + SHARED_LEN_AT;
    encoder.0[at..at + 8].copy_from_slice(&shared_len.to_le_bytes());
    encoder.finish()
}

/// Borrowed scoring requests over decoded ones.
pub fn score_requests(requests: &[(u64, String, Vec<String>)]) -> Vec<crate::plugins::ScoreRequest<'_>> {
    requests
        .iter()
        .map(|(id, context, continuations)| crate::plugins::ScoreRequest { id: *id, context, continuations })
        .collect()
}

/// The frame of a scoring request, encoded into `buffer` (the host's side).
pub fn score_frame(requests: &[crate::plugins::ScoreRequest<'_>], buffer: Vec<u8>) -> Vec<u8> {
    let mut encoder = Encoder::reusing(buffer, SCORE);
    encoder.u64(requests.len() as u64);
    for request in requests {
        encoder.u64(request.id);
        encoder.str(request.context);
        encoder.u64(request.continuations.len() as u64);
        for continuation in request.continuations {
            encoder.str(continuation);
        }
    }
    encoder.finish()
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Request::Create { plugin, model, config_json } => {
                let mut encoder = Encoder::new(CREATE);
                encoder.str(plugin);
                encoder.str(model);
                encoder.str(config_json);
                encoder.finish()
            }
            Request::Load => Encoder::new(LOAD).finish(),
            Request::ScoresContinuations => Encoder::new(SCORES_CONTINUATIONS).finish(),
            Request::Score { requests } => score_frame(&score_requests(requests), Vec::new()),
        }
    }

    pub fn decode(frame: &[u8]) -> Decoded<Request> {
        let mut decoder = Decoder { data: frame };
        let request = match decoder.u8()? {
            CREATE => Request::Create {
                plugin: decoder.string()?,
                model: decoder.string()?,
                config_json: decoder.string()?,
            },
            LOAD => Request::Load,
            SCORES_CONTINUATIONS => Request::ScoresContinuations,
            SCORE => {
                let count = decoder.count(24)?;
                let requests = (0..count)
                    .map(|_| {
                        let id = decoder.u64()?;
                        let context = decoder.string()?;
                        let continuations = decoder.count(8)?;
                        let continuations =
                            (0..continuations).map(|_| decoder.string()).collect::<Decoded<_>>()?;
                        Ok((id, context, continuations))
                    })
                    .collect::<Decoded<_>>()?;
                Request::Score { requests }
            }
            other => return Err(format!("unknown request tag {other}")),
        };
        decoder.end()?;
        Ok(request)
    }
}

const DONE: u8 = 1;
const FLAG: u8 = 2;
const FAILED: u8 = 3;
const GENERATED: u8 = 4;
const SCORED: u8 = 5;

impl Reply {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Reply::Done => Encoder::new(DONE).finish(),
            Reply::Flag(value) => {
                let mut encoder = Encoder::new(FLAG);
                encoder.u8(u8::from(*value));
                encoder.finish()
            }
            Reply::Failed(message) => {
                let mut encoder = Encoder::new(FAILED);
                encoder.str(message);
                encoder.finish()
            }
            Reply::Generated(outputs) => {
                let mut encoder = Encoder::new(GENERATED);
                encoder.u64(outputs.len() as u64);
                for output in outputs {
                    match output {
                        Ok(completion) => {
                            encoder.u8(1);
                            encoder.str(&completion.text);
                            encoder.opt_u64(completion.prompt_tokens);
                            encoder.opt_u64(completion.completion_tokens);
                            encoder.u64(completion.latency_us);
                            encoder.opt_str(completion.details.as_deref());
                        }
                        Err(failure) => {
                            encoder.u8(0);
                            encoder.failure(failure);
                        }
                    }
                }
                encoder.finish()
            }
            Reply::Scored(outputs) => {
                let mut encoder = Encoder::new(SCORED);
                encoder.u64(outputs.len() as u64);
                for output in outputs {
                    match output {
                        Ok(scores) => {
                            encoder.u8(1);
                            encoder.u64(scores.logprobs.len() as u64);
                            for logprob in &scores.logprobs {
                                encoder.f64(*logprob);
                            }
                            encoder.u64(scores.context_tokens);
                        }
                        Err(failure) => {
                            encoder.u8(0);
                            encoder.failure(failure);
                        }
                    }
                }
                encoder.finish()
            }
        }
    }

    pub fn decode(frame: &[u8]) -> Decoded<Reply> {
        let mut decoder = Decoder { data: frame };
        let reply = match decoder.u8()? {
            DONE => Reply::Done,
            FLAG => Reply::Flag(decoder.flag()?),
            FAILED => Reply::Failed(decoder.string()?),
            GENERATED => {
                let count = decoder.count(9)?;
                let outputs = (0..count)
                    .map(|_| {
                        if decoder.flag()? {
                            Ok(Ok(Completion {
                                text: decoder.string()?,
                                prompt_tokens: decoder.opt_u64()?,
                                completion_tokens: decoder.opt_u64()?,
                                latency_us: decoder.u64()?,
                                details: decoder.opt_string()?,
                            }))
                        } else {
                            Ok(Err(decoder.failure()?))
                        }
                    })
                    .collect::<Decoded<_>>()?;
                Reply::Generated(outputs)
            }
            SCORED => {
                let count = decoder.count(9)?;
                let outputs = (0..count)
                    .map(|_| {
                        if decoder.flag()? {
                            let logprobs = decoder.count(8)?;
                            let logprobs = (0..logprobs).map(|_| decoder.f64()).collect::<Decoded<_>>()?;
                            Ok(Ok(ContinuationScores { logprobs, context_tokens: decoder.u64()? }))
                        } else {
                            Ok(Err(decoder.failure()?))
                        }
                    })
                    .collect::<Decoded<_>>()?;
                Reply::Scored(outputs)
            }
            other => return Err(format!("unknown reply tag {other}")),
        };
        decoder.end()?;
        Ok(reply)
    }
}

/// The reply to a generate request, encoded straight from the plugin's outputs (the worker's
/// side: no intermediate host strings).
pub fn generated_frame(
    outputs: &[karma_plugin_api::abi::ItemOutput],
    details: &std::collections::HashMap<u64, String>,
) -> Vec<u8> {
    use abi_stable::std_types::RResult;
    let mut encoder = Encoder::new(GENERATED);
    encoder.u64(outputs.len() as u64);
    for output in outputs {
        match &output.result {
            RResult::ROk(text) => {
                encoder.u8(1);
                encoder.str(text);
                encoder.opt_u64(output.prompt_tokens.into_option());
                encoder.opt_u64(output.completion_tokens.into_option());
                encoder.u64(output.latency_us);
                encoder.opt_str(details.get(&output.id).map(String::as_str));
            }
            RResult::RErr(error) => {
                encoder.u8(0);
                encoder.str(error.code.name());
                encoder.str(&error.message);
            }
        }
    }
    encoder.finish()
}

/// Writes one encoded frame.
pub fn write_frame(writer: &mut impl Write, frame: &[u8]) -> std::io::Result<()> {
    writer.write_all(frame)?;
    writer.flush()
}

/// Reads one frame's body; `Ok(None)` at a clean end of stream (no byte of a new frame).
pub fn read_frame(reader: &mut impl Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut length = [0u8; 8];
    let mut filled = 0;
    while filled < 8 {
        match reader.read(&mut length[filled..])? {
            0 if filled == 0 => return Ok(None),
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            read => filled += read,
        }
    }
    let length = u64::from_le_bytes(length);
    if length > MAX_FRAME {
        let message = format!("a frame of {length} bytes is over the {MAX_FRAME}-byte limit");
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, message));
    }
    let mut body = vec![0; length as usize];
    reader.read_exact(&mut body)?;
    Ok(Some(body))
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
