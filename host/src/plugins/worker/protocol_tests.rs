//! The wire form: every message round-trips, and broken frames are errors.

use super::*;
use crate::datasets::item::{ConversationTurn, Criterion};
use crate::plugins::{
    with_batch_view,
    worker::{
        batch_frame::{shared_len, with_generate_view},
        shared_media::{MediaMap, MediaRegion},
    },
};

fn roundtrip_request(request: Request) {
    let frame = request.encode();
    assert_eq!(u64::from_le_bytes(frame[..8].try_into().unwrap()) as usize, frame.len() - 8);
    assert_eq!(Request::decode(&frame[8..]).unwrap(), request);
}

#[test]
fn every_request_survives_the_wire() {
    roundtrip_request(Request::Create {
        plugin: "/p/libx.so".into(),
        model: "m/x".into(),
        config_json: "{\"a\":1}".into(),
    });
    roundtrip_request(Request::Load);
    roundtrip_request(Request::ScoresContinuations);
    let item = OwnedItem {
        id: 9,
        input: Some("question ü".into()),
        system_prompt: None,
        conversation: vec![ConversationTurn { role: "user".into(), content: "hi".into() }],
        images: vec![MediaBlob { data: vec![1, 2, 3], format: "png".into() }],
        audio: Some(Box::new(MediaBlob { data: vec![0; 100], format: "wav".into() })),
        video: None,
        expected_output: Some("B".into()),
        rubric: vec![Criterion { criterion: "c".into(), points: -1.5, tags: vec!["axis:x".into()] }],
        other_args: "{\"k\":2}".into(),
    };
    roundtrip_request(Request::Score { requests: vec![(4, "ctx".into(), vec![" A".into(), " B".into()])] });
    for show_expected_output in [true, false] {
        let items = [item.clone(), OwnedItem::default(), item.clone()];
        let items: Vec<&OwnedItem> = items.iter().collect();
        let frame = generate_frame(&items, show_expected_output, None, Vec::new());
        assert_eq!(u64::from_le_bytes(frame[..8].try_into().unwrap()) as usize, frame.len() - 8);
        // The worker's views of the frame are the views the host builds in process.
        let in_process = with_batch_view(&items, show_expected_output, |batch| format!("{batch:?}"));
        let in_worker = with_generate_view(&frame[8..], &[], |batch| format!("{batch:?}")).unwrap();
        assert_eq!(in_worker, in_process);
    }
}

#[test]
fn a_large_image_is_viewed_in_place_byte_identical() {
    let data: Vec<u8> = (0..16u32 << 20).map(|index| (index % 251) as u8).collect();
    let item = OwnedItem {
        id: 1,
        images: vec![MediaBlob { data: data.clone(), format: "png".into() }],
        ..OwnedItem::default()
    };
    let frame = generate_frame(&[&item], false, None, Vec::new());
    let body = &frame[8..];
    with_generate_view(body, &[], |batch| {
        let image = batch[0].images[0].data.as_slice();
        assert!(image == data.as_slice());
        // Borrowed from the received frame, not copied out of it.
        assert!(body.as_ptr_range().contains(&image.as_ptr()));
    })
    .unwrap();
}

#[test]
fn corrupt_generate_frames_are_errors() {
    let item = OwnedItem {
        id: 2,
        input: Some("q".into()),
        rubric: vec![Criterion { criterion: "c".into(), points: 1.0, tags: vec!["t".into()] }],
        ..OwnedItem::default()
    };
    let frame = generate_frame(&[&item], true, None, Vec::new());
    for cut in 0..frame.len() - 8 {
        assert!(with_generate_view(&frame[8..8 + cut], &[], |_| ()).is_err(), "cut at {cut}");
    }
    let mut trailing = frame[8..].to_vec();
    trailing.push(0);
    assert!(with_generate_view(&trailing, &[], |_| ()).unwrap_err().contains("follow the end"));
    assert!(with_generate_view(&Request::Load.encode()[8..], &[], |_| ()).is_err());
}

/// Large media go through the region (the frame stays small), small ones stay inline, and the
/// worker's mapping of the region gives the same views the host builds in process.
#[test]
fn large_media_cross_in_shared_memory_and_small_ones_inline() {
    let large: Vec<u8> = (0..16u32 << 20).map(|index| (index % 253) as u8).collect();
    let item = OwnedItem {
        id: 3,
        input: Some("Describe both.".into()),
        images: vec![
            MediaBlob { data: large.clone(), format: "png".into() },
            MediaBlob { data: vec![7; 100], format: "jpeg".into() },
        ],
        audio: Some(Box::new(MediaBlob { data: large[..1 << 20].to_vec(), format: "wav".into() })),
        ..OwnedItem::default()
    };
    let mut region = MediaRegion::create().unwrap();
    // A second batch reuses the region from its start and the buffer it is given.
    let stale = generate_frame(&[&item, &item], false, Some(&mut region), Vec::new());
    let frame = generate_frame(&[&item], false, Some(&mut region), stale);
    assert!(frame.len() < 4096, "the frame carries {} bytes", frame.len());
    let body = &frame[8..];
    let used = shared_len(body).unwrap();
    assert_eq!(used, (17 << 20) as u64);
    let mapped = MediaMap::map(region.raw_fd(), used).unwrap();
    let in_worker = with_generate_view(body, mapped.bytes(), |batch| {
        let image = batch[0].images[0].data.as_slice();
        assert!(image == large.as_slice());
        assert!(mapped.bytes().as_ptr_range().contains(&image.as_ptr()));
        assert!(body.as_ptr_range().contains(&batch[0].images[1].data.as_slice().as_ptr()));
        format!("{batch:?}")
    })
    .unwrap();
    assert_eq!(in_worker, with_batch_view(&[&item], false, |batch| format!("{batch:?}")));
    // A range outside what the worker mapped is a named error, not a read past the mapping.
    let short = MediaMap::map(region.raw_fd(), 1 << 20).unwrap();
    let error = with_generate_view(body, short.bytes(), |_| ()).unwrap_err();
    assert!(error.contains("outside the 1048576-byte region"), "{error}");
    // A region shorter than the request names is refused before mapping (the first batch made
    // it twice `used` long).
    let error = MediaMap::map(region.raw_fd(), 2 * used + 1).err().unwrap();
    assert!(error.contains(&format!("holds {} bytes", 2 * used)), "{error}");
}

#[test]
fn every_reply_survives_the_wire() {
    let failure = ItemFailure { code: "panicked".into(), message: "boom".into() };
    for reply in [
        Reply::Done,
        Reply::Flag(true),
        Reply::Failed("model `m` failed".into()),
        Reply::Generated(vec![
            Ok(Completion {
                text: "A".into(),
                prompt_tokens: Some(3),
                completion_tokens: None,
                latency_us: 7,
                details: Some(r#"{"finish_reason":"length"}"#.into()),
            }),
            Ok(Completion {
                text: "B".into(),
                prompt_tokens: None,
                completion_tokens: Some(1),
                latency_us: 0,
                details: None,
            }),
            Err(failure.clone()),
        ]),
        Reply::Scored(vec![
            Ok(ContinuationScores { logprobs: vec![-0.5, -2.0], context_tokens: 11 }),
            Err(failure),
        ]),
    ] {
        let frame = reply.encode();
        assert_eq!(Reply::decode(&frame[8..]).unwrap(), reply);
    }
}

#[test]
fn corrupt_frames_are_errors_not_panics_or_huge_allocations() {
    let frame = Reply::Generated(vec![Err(ItemFailure { code: "c".into(), message: "m".into() })]).encode();
    for cut in 0..frame.len() - 8 {
        assert!(Reply::decode(&frame[8..8 + cut]).is_err(), "cut at {cut}");
    }
    let mut huge = vec![GENERATED];
    huge.extend_from_slice(&u64::MAX.to_le_bytes());
    assert!(Reply::decode(&huge).unwrap_err().contains("runs past"));
    let mut trailing = frame[8..].to_vec();
    trailing.push(0);
    assert!(Reply::decode(&trailing).unwrap_err().contains("follow the end"));
}

#[test]
fn the_workers_generated_frame_decodes_as_the_same_completions_with_their_details() {
    use abi_stable::std_types::{ROption, RResult, RString};
    use karma_plugin_api::abi::{ErrorCode, ItemOutput, PluginError};

    let outputs = [
        ItemOutput {
            id: 4,
            result: RResult::ROk(RString::from("B")),
            prompt_tokens: ROption::RSome(9),
            completion_tokens: ROption::RNone,
            latency_us: 12,
        },
        ItemOutput {
            id: 5,
            result: RResult::RErr(PluginError::new(ErrorCode::UNAVAILABLE, "gave up")),
            prompt_tokens: ROption::RNone,
            completion_tokens: ROption::RNone,
            latency_us: 12,
        },
    ];
    let details = std::collections::HashMap::from([(4, r#"{"finish_reason":"stop"}"#.to_owned())]);
    let frame = generated_frame(&outputs, &details);
    let expected = Reply::Generated(vec![
        Ok(Completion {
            text: "B".into(),
            prompt_tokens: Some(9),
            completion_tokens: None,
            latency_us: 12,
            details: Some(r#"{"finish_reason":"stop"}"#.into()),
        }),
        Err(ItemFailure { code: "unavailable".into(), message: "gave up".into() }),
    ]);
    assert_eq!(Reply::decode(&frame[8..]).unwrap(), expected);
}
