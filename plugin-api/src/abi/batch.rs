//! Batch items: KARMA's `DataLoaderIterable`, borrowed from host memory.
//!
//! Every field is a view (`RStr`, `RSlice`) into memory the host owns for the duration of the
//! `run` call, so a 50 MiB image reaches the plugin without a copy.

use abi_stable::{
    std_types::{ROption, RSlice, RStr},
    StableAbi,
};

/// One turn of a conversation.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct Turn<'a> {
    /// `system`, `user` or `assistant`.
    pub role: RStr<'a>,
    /// The turn's text.
    pub content: RStr<'a>,
}

/// An encoded media blob (image, audio, video) in its original container format.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct Media<'a> {
    /// The encoded bytes (PNG, JPEG, WAV, FLAC, MP4, ...), exactly as the dataset stores them.
    pub data: RSlice<'a, u8>,
    /// A format hint such as `png` or `wav`; empty when unknown.
    pub format: RStr<'a>,
}

/// One rubric criterion (HealthBench style).
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct RubricCriterion<'a> {
    /// What a response must (or must not) do.
    pub criterion: RStr<'a>,
    /// Points awarded when met; negative for undesirable behaviour.
    pub points: f64,
    /// Tags such as `axis:accuracy`.
    pub tags: RSlice<'a, RStr<'a>>,
}

/// One item of a batch. Absent text fields are `RNone`, absent lists are empty.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct BatchItem<'a> {
    /// Host-assigned id, unique within the batch; the item's output must echo it.
    pub id: u64,
    /// The primary text input (the rendered prompt).
    pub input: ROption<RStr<'a>>,
    /// System instructions.
    pub system_prompt: ROption<RStr<'a>>,
    /// Multi-turn conversation, oldest first.
    pub conversation: RSlice<'a, Turn<'a>>,
    /// Images, in dataset order.
    pub images: RSlice<'a, Media<'a>>,
    /// Audio clip.
    pub audio: ROption<Media<'a>>,
    /// Video clip.
    pub video: ROption<Media<'a>>,
    /// The ground truth; only present when the model's metadata asks for it.
    pub expected_output: ROption<RStr<'a>>,
    /// Rubric criteria to be graded against.
    pub rubric: RSlice<'a, RubricCriterion<'a>>,
    /// Dataset-specific extras as a JSON object (`{}` when none). MCQ options travel here as
    /// `"options": {"A": "...", "B": "..."}` in display order.
    pub other_args_json: RStr<'a>,
}
