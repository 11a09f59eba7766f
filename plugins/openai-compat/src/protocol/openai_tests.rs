use std::time::Duration;

use serde_json::json;

use super::*;
use crate::{
    catalog,
    config::{Sampling, Settings},
    key::ApiKey,
    prompt::Image,
};

pub(crate) fn settings(name: &str) -> Settings {
    let entry = catalog::entry(name).unwrap();
    Settings {
        model: name.to_owned(),
        protocol: entry.protocol,
        reasoning: entry.reasoning,
        base_url: "http://127.0.0.1:1/v1".to_owned(),
        url: "http://127.0.0.1:1/v1/chat/completions".to_owned(),
        model_id: name.to_owned(),
        key: Some(ApiKey::new("sk-test")),
        key_env: Some("TEST_KEY".to_owned()),
        sampling: Sampling {
            temperature: entry.takes_sampling().then_some(0.0),
            top_p: None,
            seed: None,
            max_tokens: entry.max_tokens,
            stop: Vec::new(),
            reasoning_effort: None,
        },
        extra_headers: Vec::new(),
        extra_body: serde_json::Map::new(),
        timeout: Duration::from_secs(5),
        max_concurrency: 4,
        attempts: 3,
        retry_budget: Duration::from_secs(10),
        price: None,
    }
}

pub(crate) fn chat<'a>(images: Vec<Image<'a>>) -> Prompt<'a> {
    Prompt {
        system: vec!["you are a doctor"],
        messages: vec![
            Message { role: Role::User, text: Some("hello"), images: Vec::new() },
            Message { role: Role::Assistant, text: Some("hi"), images: Vec::new() },
            Message { role: Role::User, text: Some("which organ?"), images },
        ],
    }
}

#[test]
fn chat_models_send_max_tokens_and_sampling() {
    let mut settings = settings("gpt-4o");
    settings.sampling.seed = Some(7);
    settings.sampling.stop = vec!["\n\n".to_owned()];
    let body = body(&settings, &chat(Vec::new()));
    assert_eq!(
        body,
        json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "you are a doctor"},
                {"role": "user", "content": "hello"},
                {"role": "assistant", "content": "hi"},
                {"role": "user", "content": "which organ?"},
            ],
            "max_tokens": 1024,
            "temperature": 0.0,
            "seed": 7,
            "stop": ["\n\n"],
        })
    );
}

#[test]
fn reasoning_models_send_max_completion_tokens_and_effort_but_no_sampling() {
    let mut settings = settings("o3");
    settings.sampling.reasoning_effort = Some("high".to_owned());
    // Even if something set them, a reasoning model's body never carries them.
    settings.sampling.temperature = Some(0.5);
    settings.sampling.top_p = Some(0.9);
    settings.sampling.seed = Some(1);
    let body = body(&settings, &chat(Vec::new()));
    assert_eq!(body["max_completion_tokens"], 16384);
    assert_eq!(body["reasoning_effort"], "high");
    for key in ["max_tokens", "temperature", "top_p", "seed"] {
        assert!(body.get(key).is_none(), "{key} in {body}");
    }
}

#[test]
fn images_are_data_urls_on_the_last_user_turn() {
    let png = b"\x89PNG\r\n\x1a\n";
    let body = body(&settings("gpt-4o"), &chat(vec![Image { media_type: "image/png", data: png }]));
    let last = &body["messages"][3];
    assert_eq!(
        last["content"],
        json!([
            {"type": "text", "text": "which organ?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        ])
    );
    assert_eq!(body["messages"][1]["content"], "hello");
}

#[test]
fn extra_body_is_merged_over_the_body_and_headers_carry_the_key() {
    let mut settings = settings("gpt-4o");
    settings.extra_body.insert("max_tokens".to_owned(), json!(5));
    settings.extra_body.insert("logprobs".to_owned(), json!(true));
    settings.extra_headers.push(("OpenAI-Organization".to_owned(), "org-1".to_owned()));
    let body = crate::protocol::body(&settings, &chat(Vec::new()));
    assert_eq!((body["max_tokens"].clone(), body["logprobs"].clone()), (json!(5), json!(true)));
    let headers = crate::protocol::headers(&settings);
    assert!(headers.contains(&("authorization".to_owned(), "Bearer sk-test".to_owned())));
    assert!(headers.contains(&("OpenAI-Organization".to_owned(), "org-1".to_owned())));
    settings.key = None;
    assert!(
        crate::protocol::headers(&settings).iter().all(|(name, _)| name != "authorization"),
        "no key, no header"
    );
}

#[test]
fn answers_carry_text_usage_finish_reason_and_reasoning_tokens() {
    let response = json!({
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Final Answer: (B)"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 52, "completion_tokens": 300, "completion_tokens_details": {"reasoning_tokens": 290}},
    });
    assert_eq!(
        parse(&response).unwrap(),
        Answer {
            text: "Final Answer: (B)".to_owned(),
            finish_reason: Some("stop".to_owned()),
            prompt_tokens: Some(52),
            completion_tokens: Some(300),
            reasoning_tokens: Some(290),
        }
    );
    let cut = json!({"choices": [{"message": {"content": null}, "finish_reason": "length"}]});
    let answer = parse(&cut).unwrap();
    assert_eq!(
        (answer.text.as_str(), answer.finish_reason.as_deref(), answer.prompt_tokens),
        ("", Some("length"), None)
    );
    let parts = json!({"choices": [{"message": {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}}]});
    assert_eq!(parse(&parts).unwrap().text, "ab");
}

#[test]
fn malformed_answers_say_what_is_missing() {
    assert!(parse(&json!({"id": "x"})).unwrap_err().contains("choices"));
    assert!(parse(&json!({"choices": []})).unwrap_err().contains("choices"));
    assert!(parse(&json!({"choices": [{"text": "legacy"}]})).unwrap_err().contains("message"));
    assert!(parse(&json!({"choices": [{"message": {"content": 5}}]})).unwrap_err().contains("content"));
}
