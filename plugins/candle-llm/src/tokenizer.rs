//! Tokenizers: `tokenizer.json`, or the byte-level BPE vocabulary embedded in a GGUF file
//! (`tokenizer.ggml.model == "gpt2"`) when no `tokenizer.json` ships beside it.

use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::{
    decoders::byte_level::ByteLevel as ByteLevelDecoder, models::bpe::BPE,
    pre_tokenizers::byte_level::ByteLevel, AddedToken, Tokenizer,
};

/// A tokenizer plus the special tokens chat templates and stopping need.
pub struct TextTokenizer {
    inner: Tokenizer,
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    /// Token ids that end a generation.
    pub eos_ids: Vec<u32>,
}

impl TextTokenizer {
    pub fn from_file(path: &Path) -> Result<Tokenizer, String> {
        Tokenizer::from_file(path)
            .map_err(|error| format!("`{}` is not a valid tokenizer.json: {error}", path.display()))
    }

    pub fn new(
        inner: Tokenizer,
        bos_token: Option<String>,
        eos_token: Option<String>,
        mut eos_ids: Vec<u32>,
    ) -> Self {
        if let Some(id) = eos_token.as_deref().and_then(|token| inner.token_to_id(token)) {
            eos_ids.push(id);
        }
        eos_ids.sort_unstable();
        eos_ids.dedup();
        TextTokenizer { inner, bos_token, eos_token, eos_ids }
    }

    /// Token ids of `text`; `special` lets the tokenizer add its own BOS/EOS decorations
    /// (wanted for plain prompts, not for chat-template output, which has them already).
    pub fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>, String> {
        self.inner
            .encode(text, special)
            .map(|encoding| encoding.get_ids().to_vec())
            .map_err(|error| format!("cannot tokenize: {error}"))
    }

    /// Text of `ids`, special tokens left out.
    pub fn decode(&self, ids: &[u32]) -> Result<String, String> {
        self.inner.decode(ids, true).map_err(|error| format!("cannot detokenize: {error}"))
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// A token to pad batches with: never attended to, so any id in the vocabulary does.
    pub fn pad_id(&self) -> u32 {
        self.eos_ids.first().copied().unwrap_or(0)
    }
}

fn strings(content: &Content, key: &str) -> Result<Vec<String>, String> {
    let values = content
        .metadata
        .get(key)
        .ok_or_else(|| format!("the GGUF file has no `{key}`"))?
        .to_vec()
        .map_err(|error| format!("`{key}`: {error}"))?;
    values
        .iter()
        .map(|value| value.to_string().cloned().map_err(|error| format!("`{key}`: {error}")))
        .collect()
}

fn token_id(content: &Content, key: &str) -> Option<u32> {
    content.metadata.get(key).and_then(|value| value.to_u32().ok())
}

/// Builds the tokenizer a GGUF file describes, with its BOS/EOS tokens.
pub fn from_gguf(content: &Content) -> Result<TextTokenizer, String> {
    let model = content.metadata.get("tokenizer.ggml.model").and_then(|value| value.to_string().ok()).ok_or(
        "the GGUF file embeds no tokenizer (`tokenizer.ggml.model`): put a tokenizer.json beside it",
    )?;
    if model != "gpt2" {
        return Err(format!(
            "the GGUF file embeds a `{model}` tokenizer; only byte-level BPE (`gpt2`) is rebuilt from GGUF metadata: \
             put the model's tokenizer.json beside the .gguf file"
        ));
    }
    let tokens = strings(content, "tokenizer.ggml.tokens")?;
    let merges: Vec<(String, String)> = strings(content, "tokenizer.ggml.merges")?
        .into_iter()
        .map(|merge| {
            merge
                .split_once(' ')
                .map(|(left, right)| (left.to_owned(), right.to_owned()))
                .ok_or_else(|| format!("malformed merge `{merge}` in tokenizer.ggml.merges"))
        })
        .collect::<Result<_, _>>()?;
    let kinds: Vec<i64> = match content.metadata.get("tokenizer.ggml.token_type") {
        Some(Value::Array(values)) => {
            values.iter().map(|value| value.to_i32().map(i64::from).unwrap_or(1)).collect()
        }
        _ => vec![1; tokens.len()],
    };
    let vocab: ahash::AHashMap<String, u32> =
        tokens.iter().enumerate().map(|(id, token)| (token.clone(), id as u32)).collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|error| format!("cannot build the GGUF tokenizer: {error}"))?;
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    // Token type 3 is "control": chat markers and the like, never split.
    let special: Vec<AddedToken> = tokens
        .iter()
        .zip(&kinds)
        .filter(|(_, kind)| **kind == 3)
        .map(|(token, _)| AddedToken::from(token.clone(), true))
        .collect();
    tokenizer
        .add_special_tokens(special)
        .map_err(|error| format!("cannot register the GGUF tokenizer's control tokens: {error}"))?;
    let name = |key: &str| token_id(content, key).and_then(|id| tokens.get(id as usize).cloned());
    let eos_ids = token_id(content, "tokenizer.ggml.eos_token_id").into_iter().collect();
    Ok(TextTokenizer::new(
        tokenizer,
        name("tokenizer.ggml.bos_token_id"),
        name("tokenizer.ggml.eos_token_id"),
        eos_ids,
    ))
}
