//! The worker's side of a generate request: the batch decoded as borrowed ABI views straight
//! from the received frame. Text and media stay where the pipe put them; a batch costs a few
//! flat arrays of views, not an owned item per input (that was most of the worker's overhead
//! on a batch of short texts). Large media are viewed in the shared region instead
//! ([`super::shared_media`]), which the caller maps for the length [`shared_len`] reads.

use std::ops::Range;

use abi_stable::std_types::{ROption, RSlice, RStr};
use karma_plugin_api::abi::{BatchItem, Media, RubricCriterion, Turn};

use super::protocol::{Decoded, Decoder, GENERATE, MEDIA_INLINE, MEDIA_NONE, MEDIA_SHARED};

/// One item's own fields; what it has several of lives in the batch's flat arrays.
struct Parts<'a> {
    id: u64,
    input: ROption<RStr<'a>>,
    system_prompt: ROption<RStr<'a>>,
    turns: Range<usize>,
    images: Range<usize>,
    audio: ROption<Media<'a>>,
    video: ROption<Media<'a>>,
    expected_output: ROption<RStr<'a>>,
    rubric: Range<usize>,
    other_args: RStr<'a>,
}

/// A criterion before the batch's tags are all decoded (its slice of them is a range until then).
struct CriterionParts<'a> {
    criterion: RStr<'a>,
    points: f64,
    tags: Range<usize>,
}

#[derive(Default)]
struct Flat<'a> {
    turns: Vec<Turn<'a>>,
    media: Vec<Media<'a>>,
    tags: Vec<RStr<'a>>,
    criteria: Vec<CriterionParts<'a>>,
}

fn text(text: Option<&str>) -> ROption<RStr<'_>> {
    text.map(RStr::from_str).into()
}

/// A media slot: absent, inline in the frame, or a range of the shared region.
fn media<'a>(decoder: &mut Decoder<'a>, shared: &'a [u8]) -> Decoded<ROption<Media<'a>>> {
    let data = match decoder.u8()? {
        MEDIA_NONE => return Ok(ROption::RNone),
        MEDIA_INLINE => decoder.bytes()?,
        MEDIA_SHARED => {
            let (offset, length) = (decoder.u64()?, decoder.u64()?);
            usize::try_from(offset)
                .ok()
                .zip(usize::try_from(length).ok())
                .and_then(|(offset, length)| shared.get(offset..offset.checked_add(length)?))
                .ok_or_else(|| {
                    format!("shared media at {offset}+{length} lie outside the {}-byte region", shared.len())
                })?
        }
        other => return Err(format!("a media slot was tagged {other}")),
    };
    Ok(ROption::RSome(Media { data: RSlice::from_slice(data), format: RStr::from_str(decoder.str()?) }))
}

/// Appends what `decoder` yields `count` times to `into`, and returns where it went.
fn extend<T>(into: &mut Vec<T>, count: usize, mut next: impl FnMut() -> Decoded<T>) -> Decoded<Range<usize>> {
    let start = into.len();
    into.reserve(count);
    for _ in 0..count {
        into.push(next()?);
    }
    Ok(start..into.len())
}

fn item<'a>(
    decoder: &mut Decoder<'a>,
    shared: &'a [u8],
    flat: &mut Flat<'a>,
    show_expected_output: bool,
) -> Decoded<Parts<'a>> {
    let id = decoder.u64()?;
    let input = text(decoder.opt_str()?);
    let system_prompt = text(decoder.opt_str()?);
    let count = decoder.count(16)?;
    let turns = extend(&mut flat.turns, count, || {
        Ok(Turn { role: RStr::from_str(decoder.str()?), content: RStr::from_str(decoder.str()?) })
    })?;
    let count = decoder.count(1)?;
    let images = extend(&mut flat.media, count, || {
        media(decoder, shared)?.into_option().ok_or_else(|| "an image slot was empty".to_owned())
    })?;
    let audio = media(decoder, shared)?;
    let video = media(decoder, shared)?;
    // The host withholds it already; checked again so a view never shows what it must not.
    let expected_output = text(decoder.opt_str()?.filter(|_| show_expected_output));
    let count = decoder.count(24)?;
    let start = flat.criteria.len();
    for _ in 0..count {
        let criterion = RStr::from_str(decoder.str()?);
        let points = decoder.f64()?;
        let tags = decoder.count(8)?;
        let tags = extend(&mut flat.tags, tags, || decoder.str().map(RStr::from_str))?;
        flat.criteria.push(CriterionParts { criterion, points, tags });
    }
    let rubric = start..flat.criteria.len();
    let other_args = decoder.str()?;
    let other_args = RStr::from_str(if other_args.is_empty() { "{}" } else { other_args });
    Ok(Parts { id, input, system_prompt, turns, images, audio, video, expected_output, rubric, other_args })
}

/// A generate request's header: whether the expected output is shown, and how many bytes of
/// the shared region its media use (0: none).
fn header(decoder: &mut Decoder<'_>) -> Decoded<(bool, u64)> {
    if decoder.u8()? != GENERATE {
        return Err("not a generate request".to_owned());
    }
    Ok((decoder.flag()?, decoder.u64()?))
}

/// How many bytes of the shared region the generate request in `frame` uses (0: none).
pub fn shared_len(frame: &[u8]) -> Decoded<u64> {
    Ok(header(&mut Decoder::new(frame))?.1)
}

/// Decodes the generate request in `frame` (its tag first) as views borrowed from it and from
/// `shared` (the mapped region, at least [`shared_len`] bytes), and passes them to `use_batch`:
/// the same views the host builds in process.
pub fn with_generate_view<'a, R>(
    frame: &'a [u8],
    shared: &'a [u8],
    use_batch: impl FnOnce(&[BatchItem<'_>]) -> R,
) -> Decoded<R> {
    let mut decoder = Decoder::new(frame);
    // The shared length was read by the caller, through `shared_len`, to map `shared`.
    let (show_expected_output, _) = header(&mut decoder)?;
    let count = decoder.count(8)?;
    let mut flat = Flat::default();
    let mut parts = Vec::with_capacity(count);
    for _ in 0..count {
        parts.push(item(&mut decoder, shared, &mut flat, show_expected_output)?);
    }
    decoder.end()?;
    let Flat { turns, media, tags, criteria } = flat;
    let rubric: Vec<RubricCriterion<'_>> = criteria
        .iter()
        .map(|criterion| RubricCriterion {
            criterion: criterion.criterion,
            points: criterion.points,
            tags: RSlice::from_slice(&tags[criterion.tags.clone()]),
        })
        .collect();
    let batch: Vec<BatchItem<'_>> = parts
        .into_iter()
        .map(|item| BatchItem {
            id: item.id,
            input: item.input,
            system_prompt: item.system_prompt,
            conversation: RSlice::from_slice(&turns[item.turns]),
            images: RSlice::from_slice(&media[item.images]),
            audio: item.audio,
            video: item.video,
            expected_output: item.expected_output,
            rubric: RSlice::from_slice(&rubric[item.rubric]),
            other_args_json: item.other_args,
        })
        .collect();
    Ok(use_batch(&batch))
}
