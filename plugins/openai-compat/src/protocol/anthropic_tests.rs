use serde_json::json;

use super::*;
use crate::{
    prompt::Image,
    protocol::openai::tests::{chat, settings},
};

#[test]
fn system_is_top_level_and_max_tokens_is_always_sent() {
    let mut settings = settings("claude-sonnet-4-5");
    settings.sampling.stop = vec!["END".to_owned()];
    let body = body(&settings, &chat(Vec::new()));
    assert_eq!(
        body,
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "messages": [
                {"role": "user", "content": "hello"},
                {"role": "assistant", "content": "hi"},
                {"role": "user", "content": "which organ?"},
            ],
            "system": "you are a doctor",
            "temperature": 0.0,
            "stop_sequences": ["END"],
        })
    );
    let mut no_system = chat(Vec::new());
    no_system.system.clear();
    assert!(super::body(&settings, &no_system).get("system").is_none());
}

#[test]
fn images_are_base64_blocks_before_the_text() {
    let jpeg = [0xFF, 0xD8, 0xFF];
    let body =
        body(&settings("claude-haiku-4-5"), &chat(vec![Image { media_type: "image/jpeg", data: &jpeg }]));
    assert_eq!(
        body["messages"][2]["content"],
        json!([
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"}},
            {"type": "text", "text": "which organ?"},
        ])
    );
}

#[test]
fn the_key_goes_in_x_api_key_with_the_version() {
    let headers = crate::protocol::headers(&settings("claude-haiku-4-5"));
    assert!(headers.contains(&("x-api-key".to_owned(), "sk-test".to_owned())));
    assert!(headers.contains(&("anthropic-version".to_owned(), "2023-06-01".to_owned())));
    assert!(headers.iter().all(|(name, _)| name != "authorization"));
}

#[test]
fn stop_reasons_map_to_openai_words_and_usage_adds_cache_tokens() {
    for (stop, finish) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
        ("tool_use", "tool_use"),
    ] {
        assert_eq!(finish_reason(stop), finish);
    }
    let response = json!({
        "type": "message",
        "content": [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "Final "}, {"type": "text", "text": "Answer: (C)"}],
        "stop_reason": "max_tokens",
        "usage": {"input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 7},
    });
    assert_eq!(
        parse(&response).unwrap(),
        Answer {
            text: "Final Answer: (C)".to_owned(),
            finish_reason: Some("length".to_owned()),
            prompt_tokens: Some(15),
            completion_tokens: Some(7),
            reasoning_tokens: None,
        }
    );
    assert!(parse(&json!({"type": "message"})).unwrap_err().contains("content"));
}
