//! Safe views of the items a model receives.

use crate::abi::{BatchItem, ErrorCode, Media, PluginError, RubricCriterion, Turn};

/// One item of a batch (KARMA's `DataLoaderIterable`), borrowing host memory.
#[derive(Clone, Copy, Debug)]
pub struct Item<'a> {
    raw: &'a BatchItem<'a>,
}

impl<'a> Item<'a> {
    /// Wraps a raw batch item.
    pub fn new(raw: &'a BatchItem<'a>) -> Self {
        Item { raw }
    }

    /// The host-assigned id.
    pub fn id(&self) -> u64 {
        self.raw.id
    }

    /// The primary text input (the rendered prompt), if any.
    pub fn input(&self) -> Option<&'a str> {
        self.raw.input.as_ref().map(|text| text.as_str()).into_option()
    }

    /// System instructions, if any.
    pub fn system_prompt(&self) -> Option<&'a str> {
        self.raw.system_prompt.as_ref().map(|text| text.as_str()).into_option()
    }

    /// Conversation turns, oldest first (empty when the item has none).
    pub fn conversation(&self) -> &'a [Turn<'a>] {
        self.raw.conversation.as_slice()
    }

    /// Encoded images.
    pub fn images(&self) -> &'a [Media<'a>] {
        self.raw.images.as_slice()
    }

    /// Encoded audio, if any.
    pub fn audio(&self) -> Option<Media<'a>> {
        self.raw.audio.into_option()
    }

    /// Encoded video, if any.
    pub fn video(&self) -> Option<Media<'a>> {
        self.raw.video.into_option()
    }

    /// The ground truth, present only for models whose metadata sets `wants_expected_output`.
    pub fn expected_output(&self) -> Option<&'a str> {
        self.raw.expected_output.as_ref().map(|text| text.as_str()).into_option()
    }

    /// Rubric criteria.
    pub fn rubric(&self) -> &'a [RubricCriterion<'a>] {
        self.raw.rubric.as_slice()
    }

    /// The dataset-specific extras as raw JSON text.
    pub fn other_args_json(&self) -> &'a str {
        self.raw.other_args_json.as_str()
    }

    /// The dataset-specific extras, parsed.
    pub fn other_args(&self) -> Result<serde_json::Map<String, serde_json::Value>, PluginError> {
        let text = self.other_args_json();
        if text.trim().is_empty() {
            return Ok(serde_json::Map::new());
        }
        serde_json::from_str(text).map_err(|error| {
            PluginError::new(
                ErrorCode::INVALID_INPUT,
                format!("item {}: other_args is not a JSON object: {error}", self.id()),
            )
        })
    }

    /// MCQ options as `(letter, text)` pairs in display order, from `other_args.options`
    /// (an object `{"A": "..."}`, or a list whose entries are lettered A, B, ...). Empty when the
    /// item has no options.
    pub fn options(&self) -> Result<Vec<(String, String)>, PluginError> {
        let mut other_args = self.other_args()?;
        let invalid = |what: &str| {
            PluginError::new(
                ErrorCode::INVALID_INPUT,
                format!("item {}: other_args.options {what}", self.id()),
            )
        };
        match other_args.remove("options") {
            None | Some(serde_json::Value::Null) => Ok(Vec::new()),
            Some(serde_json::Value::Object(map)) => map
                .into_iter()
                .map(|(letter, text)| match text {
                    serde_json::Value::String(text) => Ok((letter, text)),
                    other => Ok((letter, other.to_string())),
                })
                .collect(),
            Some(serde_json::Value::Array(list)) => {
                if list.len() > 26 {
                    return Err(invalid("has more than 26 entries"));
                }
                Ok(list
                    .into_iter()
                    .zip('A'..='Z')
                    .map(|(text, letter)| {
                        let text = match text {
                            serde_json::Value::String(text) => text,
                            other => other.to_string(),
                        };
                        (letter.to_string(), text)
                    })
                    .collect())
            }
            Some(_) => Err(invalid("must be an object or a list")),
        }
    }
}

#[cfg(test)]
mod tests {
    use abi_stable::std_types::{ROption, RSlice, RStr};

    use super::*;

    fn raw(other_args: &str) -> BatchItem<'_> {
        BatchItem {
            id: 9,
            input: ROption::RSome(RStr::from_str("q")),
            system_prompt: ROption::RNone,
            conversation: RSlice::EMPTY,
            images: RSlice::EMPTY,
            audio: ROption::RNone,
            video: ROption::RNone,
            expected_output: ROption::RNone,
            rubric: RSlice::EMPTY,
            other_args_json: RStr::from_str(other_args),
        }
    }

    #[test]
    fn options_keep_display_order() {
        let item = raw(r#"{"options":{"C":"c","A":"a","B":"b"}}"#);
        let letters: Vec<_> = Item::new(&item).options().unwrap().into_iter().map(|(l, _)| l).collect();
        assert_eq!(letters, ["C", "A", "B"]);
    }

    #[test]
    fn list_options_are_lettered() {
        let item = raw(r#"{"options":["x","y"]}"#);
        assert_eq!(
            Item::new(&item).options().unwrap(),
            vec![("A".to_owned(), "x".to_owned()), ("B".to_owned(), "y".to_owned())]
        );
    }

    #[test]
    fn bad_other_args_is_invalid_input() {
        let item = raw("[1,");
        let error = Item::new(&item).options().unwrap_err();
        assert_eq!(error.code, ErrorCode::INVALID_INPUT);
        assert!(error.message.starts_with("item 9:"), "{}", error.message);
        assert!(Item::new(&raw("")).options().unwrap().is_empty());
    }
}
