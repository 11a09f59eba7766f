//! The zero-copy view of a batch of host items that crosses the ABI: built here, at the plugin
//! boundary, and nowhere else.

use std::borrow::Borrow;

use abi_stable::std_types::{ROption, RSlice, RStr};
use karma_plugin_api::abi::{BatchItem, Media, RubricCriterion, Turn};

use crate::datasets::item::{MediaBlob, OwnedItem};

fn media_view(blob: &MediaBlob) -> Media<'_> {
    Media { data: RSlice::from_slice(&blob.data), format: RStr::from_str(&blob.format) }
}

fn text_view(text: &Option<String>) -> ROption<RStr<'_>> {
    text.as_deref().map(RStr::from_str).into()
}

/// Builds the borrowed ABI view of `items` and passes it to `use_batch`.
///
/// Only small pointer arrays are allocated; text and media bytes are borrowed, never copied.
/// `expected_output` is withheld unless `show_expected_output` (the model asked for it).
pub fn with_batch_view<T: Borrow<OwnedItem>, R>(
    items: &[T],
    show_expected_output: bool,
    use_batch: impl FnOnce(&[BatchItem<'_>]) -> R,
) -> R {
    let items: Vec<&OwnedItem> = items.iter().map(Borrow::borrow).collect();
    let tags: Vec<Vec<Vec<RStr<'_>>>> = items
        .iter()
        .map(|item| {
            item.rubric
                .iter()
                .map(|criterion| criterion.tags.iter().map(|tag| RStr::from_str(tag)).collect())
                .collect()
        })
        .collect();
    let turns: Vec<Vec<Turn<'_>>> = items
        .iter()
        .map(|item| {
            item.conversation
                .iter()
                .map(|turn| Turn { role: RStr::from_str(&turn.role), content: RStr::from_str(&turn.content) })
                .collect()
        })
        .collect();
    let images: Vec<Vec<Media<'_>>> =
        items.iter().map(|item| item.images.iter().map(media_view).collect()).collect();
    let rubrics: Vec<Vec<RubricCriterion<'_>>> = items
        .iter()
        .zip(&tags)
        .map(|(item, item_tags)| {
            item.rubric
                .iter()
                .zip(item_tags)
                .map(|(criterion, criterion_tags)| RubricCriterion {
                    criterion: RStr::from_str(&criterion.criterion),
                    points: criterion.points,
                    tags: RSlice::from_slice(criterion_tags),
                })
                .collect()
        })
        .collect();
    let batch: Vec<BatchItem<'_>> = items
        .iter()
        .enumerate()
        .map(|(index, item)| BatchItem {
            id: item.id,
            input: text_view(&item.input),
            system_prompt: text_view(&item.system_prompt),
            conversation: RSlice::from_slice(&turns[index]),
            images: RSlice::from_slice(&images[index]),
            audio: item.audio.as_deref().map(media_view).into(),
            video: item.video.as_deref().map(media_view).into(),
            expected_output: if show_expected_output {
                text_view(&item.expected_output)
            } else {
                ROption::RNone
            },
            rubric: RSlice::from_slice(&rubrics[index]),
            other_args_json: RStr::from_str(if item.other_args.is_empty() { "{}" } else { &item.other_args }),
        })
        .collect();
    use_batch(&batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::item::Criterion;

    #[test]
    fn view_borrows_bytes_without_copying() {
        let item = OwnedItem {
            id: 3,
            images: vec![MediaBlob { data: vec![7; 1 << 20], format: "png".into() }],
            rubric: vec![Criterion { criterion: "c".into(), points: -2.0, tags: vec!["axis:x".into()] }],
            expected_output: Some("B".into()),
            ..OwnedItem::default()
        };
        let original = item.images[0].data.as_ptr();
        with_batch_view(std::slice::from_ref(&item), false, |batch| {
            assert_eq!(batch[0].images[0].data.as_ptr(), original);
            assert_eq!(batch[0].rubric[0].tags[0].as_str(), "axis:x");
            assert!(batch[0].expected_output.is_none());
            assert_eq!(batch[0].other_args_json.as_str(), "{}");
        });
        with_batch_view(std::slice::from_ref(&item), true, |batch| {
            assert_eq!(batch[0].expected_output.map(|text| text.as_str()), ROption::RSome("B"));
        });
    }
}
