//! Cache keys: sha256 over everything that determines a model's output for an item, and
//! nothing else (never batch size, `--max-samples`, output paths or progress flags).

use sha2::{Digest, Sha256};

use crate::datasets::item::OwnedItem;

/// A 32-byte content hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheKey(pub [u8; 32]);

impl std::hash::Hash for CacheKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // The bytes are a cryptographic hash already: 8 of them are as good a hash as all 32.
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(first));
    }
}

/// Hashes a [`CacheKey`] as the 8 bytes it hands over, instead of running SipHash over them
/// (a few percent of a warm-cache run, where every item goes through two maps).
#[derive(Default)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 ^= value;
    }
}

/// A hash map keyed by cache keys.
pub type KeyMap<V> = std::collections::HashMap<CacheKey, V, std::hash::BuildHasherDefault<KeyHasher>>;

/// The model side of the key, shared by every item of a run.
#[derive(Clone)]
pub struct KeyContext {
    digest: Sha256,
}

fn field(hasher: &mut Sha256, tag: &str, bytes: &[u8]) {
    // Length-prefixed, tagged fields: no two different inputs can produce the same byte stream.
    hasher.update(tag.as_bytes());
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

impl KeyContext {
    /// `config` must be the merged model configuration in canonical form (sorted keys).
    pub fn new(model: &str, plugin_id: &str, plugin_version: &str, config: &serde_json::Value) -> Self {
        let mut digest = Sha256::new();
        field(&mut digest, "karma-cache-key/1", b"");
        field(&mut digest, "model", model.as_bytes());
        field(&mut digest, "plugin", plugin_id.as_bytes());
        field(&mut digest, "plugin_version", plugin_version.as_bytes());
        field(&mut digest, "config", canonical_json(config).as_bytes());
        KeyContext { digest }
    }

    /// Marks keys as belonging to a scoring method other than generation.
    pub fn scored_by(mut self, method: &str) -> Self {
        field(&mut self.digest, "scoring", method.as_bytes());
        self
    }
}

/// JSON with object keys sorted at every level.
pub fn canonical_json(value: &serde_json::Value) -> String {
    fn sort(value: &serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<(&String, &serde_json::Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                serde_json::Value::Object(
                    entries.into_iter().map(|(key, value)| (key.clone(), sort(value))).collect(),
                )
            }
            serde_json::Value::Array(items) => serde_json::Value::Array(items.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(value).to_string()
}

/// Whether `text` is exactly what [`canonical_json`] prints for it. Conservative: objects with
/// strictly increasing keys, arrays, `true`/`false`/`null` and strings without escapes or
/// control characters qualify, with no whitespace; anything else (numbers, escapes, spacing)
/// takes the parse-and-print path, which gives the same key for equal content either way.
fn is_canonical(text: &str) -> bool {
    /// The end of the value starting at `at`, if it qualifies.
    fn value(bytes: &[u8], at: usize) -> Option<usize> {
        match bytes.get(at)? {
            b'{' => {
                let mut at = at + 1;
                if bytes.get(at) == Some(&b'}') {
                    return Some(at + 1);
                }
                let mut previous: Option<&[u8]> = None;
                loop {
                    let end = string(bytes, at)?;
                    let key = &bytes[at + 1..end - 1];
                    if previous.is_some_and(|previous| previous >= key) {
                        return None;
                    }
                    previous = Some(key);
                    if bytes.get(end) != Some(&b':') {
                        return None;
                    }
                    at = value(bytes, end + 1)?;
                    match bytes.get(at)? {
                        b',' => at += 1,
                        b'}' => return Some(at + 1),
                        _ => return None,
                    }
                }
            }
            b'[' => {
                let mut at = at + 1;
                if bytes.get(at) == Some(&b']') {
                    return Some(at + 1);
                }
                loop {
                    at = value(bytes, at)?;
                    match bytes.get(at)? {
                        b',' => at += 1,
                        b']' => return Some(at + 1),
                        _ => return None,
                    }
                }
            }
            b'"' => string(bytes, at),
            _ => ["true", "false", "null"]
                .iter()
                .find(|literal| bytes[at..].starts_with(literal.as_bytes()))
                .map(|literal| at + literal.len()),
        }
    }
    /// The end (past the closing quote) of the plain string starting at `at`.
    fn string(bytes: &[u8], at: usize) -> Option<usize> {
        if bytes.get(at) != Some(&b'"') {
            return None;
        }
        let length = bytes[at + 1..].iter().position(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20)?;
        (bytes[at + 1 + length] == b'"').then_some(at + length + 2)
    }
    value(text.as_bytes(), 0) == Some(text.len())
}

/// The key of `item` (whose `input` is the rendered prompt) under `context`.
/// `expected_output` counts only when the model is shown it.
pub fn item_key(context: &KeyContext, item: &OwnedItem, shows_expected_output: bool) -> CacheKey {
    let mut hasher = context.digest.clone();
    // An absent text is tagged `<tag>:none`; the tags are spelt out (no formatting per item).
    let optional = |hasher: &mut Sha256, (tag, none_tag): (&str, &str), text: &Option<String>| match text {
        Some(text) => field(hasher, tag, text.as_bytes()),
        None => field(hasher, none_tag, b""),
    };
    optional(&mut hasher, ("input", "input:none"), &item.input);
    optional(&mut hasher, ("system_prompt", "system_prompt:none"), &item.system_prompt);
    for turn in &item.conversation {
        field(&mut hasher, "turn.role", turn.role.as_bytes());
        field(&mut hasher, "turn.content", turn.content.as_bytes());
    }
    for image in &item.images {
        field(&mut hasher, "image", &image.data);
        field(&mut hasher, "image.format", image.format.as_bytes());
    }
    for (tag, format_tag, media) in
        [("audio", "audio.format", &item.audio), ("video", "video.format", &item.video)]
    {
        if let Some(media) = media {
            field(&mut hasher, tag, &media.data);
            field(&mut hasher, format_tag, media.format.as_bytes());
        }
    }
    for criterion in &item.rubric {
        field(&mut hasher, "rubric", criterion.criterion.as_bytes());
        field(&mut hasher, "rubric.points", &criterion.points.to_le_bytes());
        for tag in &criterion.tags {
            field(&mut hasher, "rubric.tag", tag.as_bytes());
        }
    }
    if is_canonical(&item.other_args) {
        // What the engine writes: hashing the text as it is gives the same key without
        // parsing and re-printing it (a fifth of a warm-cache run's time).
        field(&mut hasher, "other_args", item.other_args.as_bytes());
    } else {
        let other_args: serde_json::Value =
            serde_json::from_str(&item.other_args).unwrap_or(serde_json::Value::Null);
        field(&mut hasher, "other_args", canonical_json(&other_args).as_bytes());
    }
    if shows_expected_output {
        optional(&mut hasher, ("expected_output", "expected_output:none"), &item.expected_output);
    }
    CacheKey(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::datasets::item::MediaBlob;

    #[test]
    fn keys_depend_on_content_not_on_ids_or_key_order() {
        let context = KeyContext::new("m", "p", "1", &json!({"b": 1, "a": 2}));
        let same_context = KeyContext::new("m", "p", "1", &json!({"a": 2, "b": 1}));
        let item = OwnedItem {
            id: 1,
            input: Some("q".into()),
            other_args: r#"{"x":1,"y":2}"#.into(),
            ..OwnedItem::default()
        };
        let moved = OwnedItem { id: 99, other_args: r#"{"y":2,"x":1}"#.into(), ..item.clone() };
        assert_eq!(item_key(&context, &item, false), item_key(&same_context, &moved, false));

        let other_config = KeyContext::new("m", "p", "1", &json!({"a": 3, "b": 1}));
        assert_ne!(item_key(&context, &item, false), item_key(&other_config, &item, false));
        let with_image =
            OwnedItem { images: vec![MediaBlob { data: vec![1, 2], format: "png".into() }], ..item.clone() };
        assert_ne!(item_key(&context, &item, false), item_key(&context, &with_image, false));
        let with_answer = OwnedItem { expected_output: Some("B".into()), ..item.clone() };
        assert_eq!(item_key(&context, &item, false), item_key(&context, &with_answer, false));
        assert_ne!(item_key(&context, &item, true), item_key(&context, &with_answer, true));
    }

    #[test]
    fn canonical_texts_are_recognised_and_everything_else_is_printed_canonically() {
        let canonical = [
            r#"{}"#,
            r#"{"group":"Anatomy","options":{"A":"x","B":"y é / ü"}}"#,
            r#"{"a":[true,false,null,"s",[],{}],"b":{"c":"d"}}"#,
            r#"[]"#,
        ];
        for text in canonical {
            assert!(is_canonical(text), "{text}");
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(canonical_json(&value), text, "a text taken as canonical must print as itself");
        }
        let not_canonical = [
            "",
            r#"{"b":1,"a":2}"#,
            r#"{"options":{"B":"y","A":"x"}}"#,
            r#"{"a":"x","a":"y"}"#,
            r#"{ "a":"x"}"#,
            r#"{"a":1}"#,
            r#"{"a":"say \"hi\""}"#,
            r#"{"a":"\u00e9"}"#,
            r#"{"a":"x"} "#,
            r#"{"a":"x""#,
            r#"{"a":tru}"#,
        ];
        for text in not_canonical {
            assert!(!is_canonical(text), "{text}");
        }
        // Either path gives one key per content.
        let context = KeyContext::new("m", "p", "1", &json!({}));
        let item = |other_args: &str| OwnedItem { other_args: other_args.into(), ..OwnedItem::default() };
        assert_eq!(
            item_key(&context, &item(r#"{"a":"x","b":"y"}"#), false),
            item_key(&context, &item(r#"{ "b" : "y", "a" : "x" }"#), false)
        );
    }

    /// Keys are stored in users' caches: a change to what is hashed, or how, must be deliberate
    /// (a new key version), never a side effect. The expected digests were computed once.
    #[test]
    fn keys_are_stable_across_releases() {
        let context = KeyContext::new("karma/constant", "karma-baseline", "0.1.0", &json!({"seed": 1}));
        let item = OwnedItem {
            id: 3,
            input: Some("Question: 1 + 1?\nA. 2\nB. 3".into()),
            expected_output: Some("A".into()),
            other_args: r#"{"options":{"A":"2","B":"3"}}"#.into(),
            ..OwnedItem::default()
        };
        let with_media = OwnedItem {
            system_prompt: Some("Be brief.".into()),
            audio: Some(Box::new(MediaBlob { data: vec![0, 1, 2], format: "wav".into() })),
            ..item.clone()
        };
        let hex = |key: CacheKey| key.0.iter().map(|byte| format!("{byte:02x}")).collect::<String>();
        assert_eq!(
            hex(item_key(&context, &item, false)),
            "65e01ddd76b45de7c092e73066ff654e3e0ca7b93764b0f44c4f78242ea6dc77"
        );
        assert_eq!(
            hex(item_key(&context, &with_media, true)),
            "5957c9ffca8b603a426a9c5cfa709581bde06a0f1625832711b609cc99a5e6e9"
        );
    }
}
