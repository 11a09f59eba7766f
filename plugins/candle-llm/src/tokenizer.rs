//! Tokenizers: `tokenizer.json`, or the vocabulary embedded in a GGUF file when no
//! `tokenizer.json` ships beside it: byte-level BPE (`tokenizer.ggml.model == "gpt2"`: Qwen,
//! SmolLM, Llama 3) or SentencePiece BPE (`"llama"`: Llama 2, Mistral, Gemma).

use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::{
    decoders::{
        byte_fallback::ByteFallback, byte_level::ByteLevel as ByteLevelDecoder, fuse::Fuse,
        sequence::Sequence as DecoderSequence, strip::Strip,
    },
    models::bpe::BPE,
    normalizers::{Prepend, Replace, Sequence as NormalizerSequence},
    pre_tokenizers::{
        byte_level::ByteLevel,
        sequence::Sequence,
        split::{Split, SplitPattern},
    },
    processors::template::TemplateProcessing,
    AddedToken, DecoderWrapper, NormalizerWrapper, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer,
};

/// The splitting regexes of the byte-level BPE pre-tokenizers llama.cpp names in
/// `tokenizer.ggml.pre` (as the models' own tokenizer.json files have them).
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The pre-tokenizer of a GGUF byte-level BPE vocabulary.
fn pre_tokenizer(pre: Option<&str>) -> Result<PreTokenizerWrapper, String> {
    let split_then_bytes = |pattern: &str| -> Result<PreTokenizerWrapper, String> {
        let split =
            Split::new(SplitPattern::Regex(pattern.to_owned()), SplitDelimiterBehavior::Isolated, false)
                .map_err(|error| error.to_string())?;
        Ok(Sequence::new(vec![split.into(), ByteLevel::new(false, true, false).into()]).into())
    };
    match pre {
        // GPT-2's own regex, inside the byte-level step.
        None | Some("default" | "gpt2" | "gpt-2" | "smollm" | "starcoder") => Ok(ByteLevel::new(false, true, true).into()),
        Some("qwen2") => split_then_bytes(QWEN2_SPLIT),
        Some("llama-bpe" | "llama3") => split_then_bytes(LLAMA3_SPLIT),
        Some(other) => Err(format!(
            "the GGUF tokenizer's pre-tokenizer `{other}` is not rebuilt from GGUF metadata: put the model's tokenizer.json beside the .gguf file"
        )),
    }
}

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

/// A byte-level BPE vocabulary with its merges and the pre-tokenizer `tokenizer.ggml.pre` names.
fn byte_level_bpe(content: &Content, tokens: &[String]) -> Result<Tokenizer, String> {
    let merges: Vec<(String, String)> = strings(content, "tokenizer.ggml.merges")?
        .into_iter()
        .map(|merge| {
            merge
                .split_once(' ')
                .map(|(left, right)| (left.to_owned(), right.to_owned()))
                .ok_or_else(|| format!("malformed merge `{merge}` in tokenizer.ggml.merges"))
        })
        .collect::<Result<_, _>>()?;
    let vocab: ahash::AHashMap<String, u32> =
        tokens.iter().enumerate().map(|(id, token)| (token.clone(), id as u32)).collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|error| format!("cannot build the GGUF tokenizer: {error}"))?;
    let mut tokenizer = Tokenizer::new(bpe);
    let pre = content.metadata.get("tokenizer.ggml.pre").and_then(|value| value.to_string().ok());
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer(pre.map(String::as_str))?));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    Ok(tokenizer)
}

/// SentencePiece's word-boundary mark, which stands for a space.
const SPACE_MARK: &str = "\u{2581}";

/// A SentencePiece BPE vocabulary rebuilt the way Hugging Face converts one to tokenizer.json:
/// spaces become `▁` (with one prepended unless `tokenizer.ggml.add_space_prefix` is false, as
/// for Gemma), pieces merge in the order of the merged piece's score, and characters outside
/// the vocabulary fall back to `<0xNN>` byte tokens.
fn sentencepiece_bpe(content: &Content, tokens: &[String]) -> Result<Tokenizer, String> {
    let scores: Vec<f32> = match content.metadata.get("tokenizer.ggml.scores") {
        Some(Value::Array(values)) => values.iter().map(|value| value.to_f32().unwrap_or(0.0)).collect(),
        _ => return Err("the GGUF SentencePiece tokenizer has no `tokenizer.ggml.scores`".to_owned()),
    };
    if scores.len() != tokens.len() {
        return Err(format!(
            "the GGUF SentencePiece tokenizer has {} scores for {} tokens",
            scores.len(),
            tokens.len()
        ));
    }
    let vocab: ahash::AHashMap<String, u32> =
        tokens.iter().enumerate().map(|(id, token)| (token.clone(), id as u32)).collect();
    // Every split of a piece into two pieces is a merge ranked by the whole piece's score
    // (ties: vocabulary order, then the halves' ids), as transformers' SentencePieceExtractor.
    let mut merges: Vec<(f32, u32, u32)> = Vec::new();
    for (piece, score) in tokens.iter().zip(&scores) {
        let mut halves: Vec<(u32, u32)> = piece
            .char_indices()
            .skip(1)
            .filter_map(|(split, _)| {
                let (left, right) = piece.split_at(split);
                Some((*vocab.get(left)?, *vocab.get(right)?))
            })
            .collect();
        halves.sort_unstable();
        merges.extend(halves.into_iter().map(|(left, right)| (*score, left, right)));
    }
    merges.sort_by(|a, b| b.0.total_cmp(&a.0));
    let merges = merges
        .into_iter()
        .map(|(_, left, right)| (tokens[left as usize].clone(), tokens[right as usize].clone()))
        .collect();
    let unknown = token_id(content, "tokenizer.ggml.unknown_token_id").unwrap_or(0);
    let mut builder = BPE::builder().vocab_and_merges(vocab, merges).byte_fallback(true).fuse_unk(true);
    if let Some(unknown) = tokens.get(unknown as usize) {
        builder = builder.unk_token(unknown.clone());
    }
    let bpe = builder.build().map_err(|error| format!("cannot build the GGUF tokenizer: {error}"))?;
    let mut tokenizer = Tokenizer::new(bpe);
    let space_prefix = content
        .metadata
        .get("tokenizer.ggml.add_space_prefix")
        .and_then(|v| v.to_bool().ok())
        .unwrap_or(true);
    let spaces = Replace::new(" ", SPACE_MARK).map_err(|error| error.to_string())?;
    let spaces_back = Replace::new(SPACE_MARK, " ").map_err(|error| error.to_string())?;
    let mut normalizers: Vec<NormalizerWrapper> = vec![spaces.into()];
    let mut decoders: Vec<DecoderWrapper> =
        vec![spaces_back.into(), ByteFallback::new().into(), Fuse::new().into()];
    if space_prefix {
        normalizers.insert(0, Prepend::new(SPACE_MARK.to_owned()).into());
        decoders.push(Strip::new(' ', 1, 0).into());
    }
    tokenizer
        .with_normalizer(Some(NormalizerSequence::new(normalizers)))
        .map_err(|error| format!("cannot build the GGUF tokenizer: {error}"))?;
    tokenizer.with_decoder(Some(DecoderSequence::new(decoders)));
    Ok(tokenizer)
}

/// Builds the tokenizer a GGUF file describes, with its BOS/EOS tokens.
pub fn from_gguf(content: &Content) -> Result<TextTokenizer, String> {
    let model = content.metadata.get("tokenizer.ggml.model").and_then(|value| value.to_string().ok()).ok_or(
        "the GGUF file embeds no tokenizer (`tokenizer.ggml.model`): put a tokenizer.json beside it",
    )?;
    let tokens = strings(content, "tokenizer.ggml.tokens")?;
    let kinds: Vec<i64> = match content.metadata.get("tokenizer.ggml.token_type") {
        Some(Value::Array(values)) => {
            values.iter().map(|value| value.to_i32().map(i64::from).unwrap_or(1)).collect()
        }
        _ => vec![1; tokens.len()],
    };
    let mut tokenizer = match model.as_str() {
        "gpt2" => byte_level_bpe(content, &tokens)?,
        "llama" => sentencepiece_bpe(content, &tokens)?,
        other => {
            return Err(format!(
                "the GGUF file embeds a `{other}` tokenizer; byte-level BPE (`gpt2`) and SentencePiece BPE (`llama`) \
                 are rebuilt from GGUF metadata, not this one: put the model's tokenizer.json beside the .gguf file"
            ))
        }
    };
    // Token type 3 is "control" (chat markers, never split, dropped when decoding); 4 is
    // "user defined" (e.g. `<think>`: never split, but kept in the text).
    let special: Vec<AddedToken> = tokens
        .iter()
        .zip(&kinds)
        .filter(|(_, kind)| **kind == 3)
        .map(|(token, _)| AddedToken::from(token.clone(), true))
        .collect();
    tokenizer
        .add_special_tokens(special)
        .map_err(|error| format!("cannot register the GGUF tokenizer's control tokens: {error}"))?;
    let user_defined: Vec<AddedToken> = tokens
        .iter()
        .zip(&kinds)
        .filter(|(_, kind)| **kind == 4)
        .map(|(token, _)| AddedToken::from(token.clone(), false))
        .collect();
    tokenizer
        .add_tokens(user_defined)
        .map_err(|error| format!("cannot register the GGUF tokenizer's user-defined tokens: {error}"))?;
    let name = |key: &str| token_id(content, key).and_then(|id| tokens.get(id as usize).cloned());
    // llama.cpp's defaults when the file does not say: SentencePiece vocabularies start with BOS.
    let adds_bos = content
        .metadata
        .get("tokenizer.ggml.add_bos_token")
        .and_then(|v| v.to_bool().ok())
        .unwrap_or(model == "llama");
    if let (true, Some(bos), Some(bos_id)) =
        (adds_bos, name("tokenizer.ggml.bos_token_id"), token_id(content, "tokenizer.ggml.bos_token_id"))
    {
        // Plain prompts and log-likelihood contexts start with BOS, as llama.cpp encodes them.
        let processor = TemplateProcessing::builder()
            .try_single(format!("{bos} $A"))
            .map_err(|error| format!("cannot add the GGUF tokenizer's BOS: {error}"))?
            .special_tokens(vec![(bos.clone(), bos_id)])
            .build()
            .map_err(|error| format!("cannot add the GGUF tokenizer's BOS: {error}"))?;
        tokenizer.with_post_processor(Some(processor));
    }
    let eos_ids = token_id(content, "tokenizer.ggml.eos_token_id").into_iter().collect();
    Ok(TextTokenizer::new(
        tokenizer,
        name("tokenizer.ggml.bos_token_id"),
        name("tokenizer.ggml.eos_token_id"),
        eos_ids,
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use candle_core::quantized::gguf_file::VersionedMagic;

    use super::*;

    fn content(pre: Option<&str>, add_bos: bool) -> Content {
        let mut tokens: Vec<String> = ByteLevel::alphabet().into_iter().map(|c| c.to_string()).collect();
        tokens.sort();
        tokens.extend(["<s>".to_owned(), "<think>".to_owned()]);
        let mut kinds = vec![Value::I32(1); tokens.len()];
        kinds[tokens.len() - 2] = Value::I32(3);
        kinds[tokens.len() - 1] = Value::I32(4);
        let mut metadata = HashMap::from([
            ("tokenizer.ggml.model".to_owned(), Value::String("gpt2".into())),
            (
                "tokenizer.ggml.tokens".to_owned(),
                Value::Array(tokens.iter().cloned().map(Value::String).collect()),
            ),
            ("tokenizer.ggml.merges".to_owned(), Value::Array(Vec::new())),
            ("tokenizer.ggml.token_type".to_owned(), Value::Array(kinds)),
            ("tokenizer.ggml.bos_token_id".to_owned(), Value::U32(tokens.len() as u32 - 2)),
            ("tokenizer.ggml.add_bos_token".to_owned(), Value::Bool(add_bos)),
        ]);
        if let Some(pre) = pre {
            metadata.insert("tokenizer.ggml.pre".to_owned(), Value::String(pre.into()));
        }
        metadata_only(metadata)
    }

    /// A GGUF file's content with `metadata` and no tensors.
    fn metadata_only(metadata: HashMap<String, Value>) -> Content {
        Content {
            magic: VersionedMagic::GgufV3,
            metadata,
            tensor_infos: HashMap::new(),
            tensor_data_offset: 0,
        }
    }

    #[test]
    fn gguf_pre_tokenizers_bos_and_user_defined_tokens() {
        let plain = from_gguf(&content(None, false)).unwrap();
        let qwen2 = from_gguf(&content(Some("qwen2"), false)).unwrap();
        let text = "x<think>y 12";
        assert_eq!(plain.decode(&plain.encode(text, false).unwrap()).unwrap(), text);
        // `<think>` is one token, kept when decoding.
        let ids = qwen2.encode(text, false).unwrap();
        assert!(ids.contains(&(qwen2.vocab_size() as u32 - 1)), "{ids:?}");
        assert_eq!(qwen2.decode(&ids).unwrap(), text);
        let with_bos = from_gguf(&content(Some("llama-bpe"), true)).unwrap();
        let ids = with_bos.encode("hi", true).unwrap();
        assert_eq!(ids[0], with_bos.vocab_size() as u32 - 2, "BOS first: {ids:?}");
        assert_eq!(with_bos.encode("hi", false).unwrap().len(), ids.len() - 1);
        let error = from_gguf(&content(Some("deepseek-coder"), false)).err().unwrap();
        assert!(error.contains("`deepseek-coder`") && error.contains("tokenizer.json"), "{error}");
    }

    /// A SentencePiece vocabulary: `<unk>`, `<s>`, `</s>`, 256 byte tokens, then pieces with
    /// scores chosen so that "▁hello" is reached through ll, llo, he, hello and ▁hello.
    fn sentencepiece(space_prefix: Option<bool>) -> Content {
        let mut tokens: Vec<(String, f32, i32)> =
            vec![("<unk>".into(), 0.0, 2), ("<s>".into(), 0.0, 3), ("</s>".into(), 0.0, 3)];
        tokens.extend((0..=255u8).map(|byte| (format!("<0x{byte:02X}>"), 0.0, 6)));
        for (piece, score) in [
            ("\u{2581}", -1.0),
            ("h", -2.0),
            ("e", -3.0),
            ("l", -4.0),
            ("o", -5.0),
            ("ll", -7.0),
            ("llo", -8.0),
            ("he", -9.0),
            ("\u{2581}h", -10.0),
            ("hello", -11.0),
            ("\u{2581}hello", -12.0),
        ] {
            tokens.push((piece.into(), score, 1));
        }
        let mut metadata = HashMap::from([
            ("tokenizer.ggml.model".to_owned(), Value::String("llama".into())),
            (
                "tokenizer.ggml.tokens".to_owned(),
                Value::Array(tokens.iter().map(|(piece, _, _)| Value::String(piece.clone())).collect()),
            ),
            (
                "tokenizer.ggml.scores".to_owned(),
                Value::Array(tokens.iter().map(|t| Value::F32(t.1)).collect()),
            ),
            (
                "tokenizer.ggml.token_type".to_owned(),
                Value::Array(tokens.iter().map(|t| Value::I32(t.2)).collect()),
            ),
            ("tokenizer.ggml.bos_token_id".to_owned(), Value::U32(1)),
            ("tokenizer.ggml.eos_token_id".to_owned(), Value::U32(2)),
            ("tokenizer.ggml.unknown_token_id".to_owned(), Value::U32(0)),
        ]);
        if let Some(prefix) = space_prefix {
            metadata.insert("tokenizer.ggml.add_space_prefix".to_owned(), Value::Bool(prefix));
        }
        metadata_only(metadata)
    }

    #[test]
    fn gguf_sentencepiece_vocabularies_merge_by_score_and_fall_back_to_bytes() {
        let llama = from_gguf(&sentencepiece(None)).unwrap();
        let id = |piece: &str| llama.token_to_id(piece).unwrap();
        // Llama style: a space is prepended, merges follow the scores, `w` is not in the
        // vocabulary and falls back to its byte, and BOS comes first by default.
        let ids = llama.encode("hello w", true).unwrap();
        assert_eq!(ids, vec![1, id("\u{2581}hello"), id("\u{2581}"), id("<0x77>")]);
        assert_eq!(llama.decode(&ids).unwrap(), "hello w");
        // Merges go by score: `he` (-9) beats `▁h` (-10), so "hel" is ▁ he l, not ▁h e l.
        assert_eq!(llama.encode("hel", false).unwrap(), vec![id("\u{2581}"), id("he"), id("l")]);
        assert_eq!(llama.eos_ids, vec![2]);
        // Gemma style: no space prefix.
        let gemma = from_gguf(&sentencepiece(Some(false))).unwrap();
        assert_eq!(gemma.encode("hello", false).unwrap(), vec![id("hello")]);
        assert_eq!(gemma.encode("hello hello", false).unwrap(), vec![id("hello"), id("\u{2581}hello")]);
        assert_eq!(gemma.decode(&gemma.encode("hello hello", false).unwrap()).unwrap(), "hello hello");
        // Non-ASCII text survives through byte fallback.
        assert_eq!(gemma.decode(&gemma.encode("hé", false).unwrap()).unwrap(), "hé");

        let mut without_scores = sentencepiece(None);
        without_scores.metadata.remove("tokenizer.ggml.scores");
        assert!(from_gguf(&without_scores).err().unwrap().contains("tokenizer.ggml.scores"));
    }
}
