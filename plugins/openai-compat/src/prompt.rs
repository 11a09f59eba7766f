//! An item as a chat: system text, turns, and the images attached to the last user turn, in a
//! form both protocols render from.

use karma_plugin_api::{
    abi::{ErrorCode, PluginError},
    sdk::Item,
};

/// Who speaks a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// An image the APIs take, with its MIME type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Image<'a> {
    pub media_type: &'static str,
    pub data: &'a [u8],
}

/// One turn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    pub role: Role,
    /// `None` for a turn of images only.
    pub text: Option<&'a str>,
    pub images: Vec<Image<'a>>,
}

/// The whole chat of one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt<'a> {
    /// The system prompt and any `system` turns, in order (sent joined, before the turns).
    pub system: Vec<&'a str>,
    pub messages: Vec<Message<'a>>,
}

impl Prompt<'_> {
    /// The system text, joined by blank lines; `None` when there is none.
    pub fn system_text(&self) -> Option<String> {
        (!self.system.is_empty()).then(|| self.system.join("\n\n"))
    }
}

/// The chat for `item`: its system prompt, its conversation, then its input as the final user
/// turn; its images go with the last user turn. Audio and video are `UNSUPPORTED`.
pub fn from_item<'a>(item: &Item<'a>) -> Result<Prompt<'a>, PluginError> {
    let id = item.id();
    for (kind, present) in [("audio", item.audio().is_some()), ("video", item.video().is_some())] {
        if present {
            return Err(PluginError::new(
                ErrorCode::UNSUPPORTED,
                format!("item {id}: this model takes text and images, not {kind}"),
            ));
        }
    }
    let mut system: Vec<&'a str> = item.system_prompt().filter(|text| !text.is_empty()).into_iter().collect();
    let mut messages = Vec::new();
    for turn in item.conversation() {
        let text = turn.content.as_str();
        let role = match turn.role.as_str().trim().to_ascii_lowercase().as_str() {
            "system" | "developer" => {
                system.push(text);
                continue;
            }
            "user" | "human" => Role::User,
            "assistant" | "model" => Role::Assistant,
            other => {
                return Err(PluginError::new(
                    ErrorCode::INVALID_INPUT,
                    format!("item {id}: conversation role `{other}` is not system, user or assistant"),
                ))
            }
        };
        messages.push(Message { role, text: Some(text), images: Vec::new() });
    }
    if let Some(input) = item.input() {
        messages.push(Message { role: Role::User, text: Some(input), images: Vec::new() });
    }
    let images = item
        .images()
        .iter()
        .enumerate()
        .map(|(index, media)| {
            let data = media.data.as_slice();
            let media_type = media_type(media.format.as_str(), data).ok_or_else(|| {
                PluginError::new(
                    ErrorCode::UNSUPPORTED,
                    format!(
                        "item {id}: image {} is `{}`: the API takes png, jpeg, gif or webp",
                        index + 1,
                        if media.format.is_empty() { "of unknown format" } else { media.format.as_str() }
                    ),
                )
            })?;
            Ok(Image { media_type, data })
        })
        .collect::<Result<Vec<_>, PluginError>>()?;
    if !images.is_empty() {
        match messages.iter_mut().rev().find(|message| message.role == Role::User) {
            Some(last_user) => last_user.images = images,
            None => messages.push(Message { role: Role::User, text: None, images }),
        }
    }
    if messages.is_empty() {
        return Err(PluginError::new(
            ErrorCode::INVALID_INPUT,
            format!("item {id} has no input, conversation or image to send"),
        ));
    }
    Ok(Prompt { system, messages })
}

/// The MIME type of an image from its format hint, else from its first bytes; `None` for a
/// format the APIs refuse.
pub fn media_type(format: &str, data: &[u8]) -> Option<&'static str> {
    let hint = format.trim().to_ascii_lowercase();
    let hint = hint.strip_prefix("image/").unwrap_or(&hint);
    match hint {
        "png" => Some("image/png"),
        "jpg" | "jpeg" => Some("image/jpeg"),
        "gif" => Some("image/gif"),
        "webp" => Some("image/webp"),
        "" => sniff(data),
        _ => None,
    }
}

fn sniff(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if data.len() >= 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use abi_stable::std_types::{ROption, RSlice, RStr};
    use karma_plugin_api::abi::{BatchItem, Media, Turn};

    use super::*;

    pub(crate) fn batch_item<'a>(
        input: Option<&'a str>,
        system: Option<&'a str>,
        turns: &'a [Turn<'a>],
        images: &'a [Media<'a>],
    ) -> BatchItem<'a> {
        BatchItem {
            id: 3,
            input: input.map(RStr::from_str).into(),
            system_prompt: system.map(RStr::from_str).into(),
            conversation: RSlice::from_slice(turns),
            images: RSlice::from_slice(images),
            audio: ROption::RNone,
            video: ROption::RNone,
            expected_output: ROption::RNone,
            rubric: RSlice::EMPTY,
            other_args_json: RStr::from_str("{}"),
        }
    }

    fn turn<'a>(role: &'a str, content: &'a str) -> Turn<'a> {
        Turn { role: RStr::from_str(role), content: RStr::from_str(content) }
    }

    #[test]
    fn system_conversation_then_input_with_images_on_the_last_user_turn() {
        let turns = [turn("system", "be brief"), turn("user", "hi"), turn("assistant", "hello")];
        let png = b"\x89PNG\r\n\x1a\nrest".to_vec();
        let images = [Media { data: RSlice::from_slice(&png), format: RStr::from_str("") }];
        let raw = batch_item(Some("what is this?"), Some("you are a doctor"), &turns, &images);
        let prompt = from_item(&Item::new(&raw)).unwrap();
        assert_eq!(prompt.system_text().as_deref(), Some("you are a doctor\n\nbe brief"));
        assert_eq!(prompt.messages.len(), 3);
        assert_eq!(prompt.messages[2].text, Some("what is this?"));
        assert_eq!(prompt.messages[2].images, vec![Image { media_type: "image/png", data: &png }]);
        assert!(prompt.messages[0].images.is_empty());
    }

    #[test]
    fn unknown_roles_empty_items_and_odd_images_are_refused() {
        let turns = [turn("narrator", "x")];
        let raw = batch_item(None, None, &turns, &[]);
        assert_eq!(from_item(&Item::new(&raw)).unwrap_err().code, ErrorCode::INVALID_INPUT);
        let raw = batch_item(None, Some("sys"), &[], &[]);
        assert_eq!(from_item(&Item::new(&raw)).unwrap_err().code, ErrorCode::INVALID_INPUT);
        let bmp = b"BM....".to_vec();
        let images = [Media { data: RSlice::from_slice(&bmp), format: RStr::from_str("bmp") }];
        let raw = batch_item(Some("q"), None, &[], &images);
        let error = from_item(&Item::new(&raw)).unwrap_err();
        assert_eq!(error.code, ErrorCode::UNSUPPORTED);
        assert!(error.message.contains("image 1 is `bmp`"), "{}", error.message);
    }

    #[test]
    fn images_without_a_user_turn_get_one() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0];
        let images = [Media { data: RSlice::from_slice(&jpeg), format: RStr::from_str("JPG") }];
        let raw = batch_item(None, None, &[], &images);
        let prompt = from_item(&Item::new(&raw)).unwrap();
        assert_eq!(prompt.messages.len(), 1);
        assert_eq!((prompt.messages[0].text, prompt.messages[0].images[0].media_type), (None, "image/jpeg"));
    }
}
