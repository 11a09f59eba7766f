//! The host's owned form of an item (KARMA's `DataLoaderIterable`). Its borrowed ABI view is
//! built at the plugin boundary (`plugins/batch_view.rs`).

/// One conversation turn.
#[derive(Clone, Debug, PartialEq)]
pub struct ConversationTurn {
    pub role: String,
    pub content: String,
}

/// An encoded media blob and its format hint (`png`, `wav`, ...).
#[derive(Clone, Debug, PartialEq)]
pub struct MediaBlob {
    pub data: Vec<u8>,
    pub format: String,
}

/// One rubric criterion.
#[derive(Clone, Debug, PartialEq)]
pub struct Criterion {
    pub criterion: String,
    pub points: f64,
    pub tags: Vec<String>,
}

/// An item as the host holds it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OwnedItem {
    pub id: u64,
    pub input: Option<String>,
    pub system_prompt: Option<String>,
    pub conversation: Vec<ConversationTurn>,
    pub images: Vec<MediaBlob>,
    /// Boxed: most items have neither, and every item is moved a few times on the reading path
    /// (two inline blobs were 96 of its 272 bytes).
    pub audio: Option<Box<MediaBlob>>,
    pub video: Option<Box<MediaBlob>>,
    pub expected_output: Option<String>,
    pub rubric: Vec<Criterion>,
    /// A JSON object, as text.
    pub other_args: String,
}

impl OwnedItem {
    /// A rough measure of how much the model reads: characters of text plus bytes of media.
    /// The engine batches items of similar size together, so that little of a batch is padding;
    /// only the order matters, not the unit.
    pub fn size_hint(&self) -> usize {
        let text = [&self.input, &self.system_prompt].into_iter().flatten().map(String::len).sum::<usize>()
            + self.conversation.iter().map(|turn| turn.content.len()).sum::<usize>();
        let media = self.images.iter().chain(self.audio.as_deref()).chain(self.video.as_deref());
        text + media.map(|blob| blob.data.len()).sum::<usize>()
    }
}
