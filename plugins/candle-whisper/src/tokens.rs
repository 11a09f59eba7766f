//! Whisper's vocabulary: text decoding and the special tokens that steer the decoder.
//!
//! Hugging Face checkpoints (and most CTranslate2 conversions) ship `tokenizer.json`;
//! CTranslate2 directories may instead hold only `vocabulary.txt` (one token a line) or
//! `vocabulary.json` (a list), in GPT-2's byte-level spelling, which is all decoding needs.

use std::{collections::HashMap, path::Path};

use crate::languages;

enum Backend {
    Hf(Box<tokenizers::Tokenizer>),
    List { tokens: Vec<String>, ids: HashMap<String, u32> },
}

/// A checkpoint's token files, read ([`Vocabulary::read_tokens`]) before the special tokens are
/// looked up, so that reading them can overlap with loading the weights.
pub struct TokenFiles(Backend);

/// GPT-2's byte-to-character table, inverted (`Ġ` is a space, ...).
fn byte_decoder() -> HashMap<char, u8> {
    let mut bytes: Vec<u32> =
        (u32::from(b'!')..=u32::from(b'~')).chain(0xa1..=0xac).chain(0xae..=0xff).collect();
    let mut chars = bytes.clone();
    let mut extra = 0;
    for b in 0..256u32 {
        if !bytes.contains(&b) {
            bytes.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    bytes.into_iter().zip(chars).filter_map(|(b, c)| char::from_u32(c).map(|c| (c, b as u8))).collect()
}

/// The special token ids of one checkpoint.
#[derive(Clone, Debug)]
pub struct Specials {
    pub eot: u32,
    pub sot: u32,
    pub transcribe: u32,
    pub translate: Option<u32>,
    pub no_timestamps: u32,
    /// `<|0.00|>`: every id from here on is a timestamp (0.02 s apart).
    pub timestamp_begin: u32,
    pub no_speech: Option<u32>,
    /// `<|startofprev|>`, which opens a prompt of earlier text.
    pub startofprev: Option<u32>,
    /// Tokens never worth emitting as text (sot, task, previous-text and LM markers).
    pub never: Vec<u32>,
    /// The space token, suppressed as a first token (OpenAI's `SuppressBlank`).
    pub blank: Option<u32>,
    /// `<|xx|>` ids by Whisper code; empty for English-only checkpoints.
    pub languages: HashMap<&'static str, u32>,
}

pub struct Vocabulary {
    backend: Backend,
    pub specials: Specials,
}

impl Vocabulary {
    /// Reads `tokenizer.json`, else `vocabulary.json` / `vocabulary.txt`, from `dir`.
    /// `multilingual` comes from the checkpoint's vocabulary size (see [`is_multilingual`]).
    pub fn load(dir: &Path, vocab_size: usize) -> Result<Self, String> {
        Self::from_tokens(Self::read_tokens(dir)?, vocab_size)
    }

    /// The first half of [`Vocabulary::load`]: `tokenizer.json` (about 0.1 s to parse for
    /// Whisper's), else the token list.
    pub fn read_tokens(dir: &Path) -> Result<TokenFiles, String> {
        let hf = dir.join("tokenizer.json");
        let backend = if hf.is_file() {
            let tokenizer = tokenizers::Tokenizer::from_file(&hf)
                .map_err(|error| format!("cannot read `{}`: {error}", hf.display()))?;
            Backend::Hf(Box::new(tokenizer))
        } else {
            let json = dir.join("vocabulary.json");
            let txt = dir.join("vocabulary.txt");
            let tokens: Vec<String> = if json.is_file() {
                let text = std::fs::read_to_string(&json)
                    .map_err(|e| format!("cannot read `{}`: {e}", json.display()))?;
                serde_json::from_str(&text)
                    .map_err(|e| format!("`{}` is not a JSON list of tokens: {e}", json.display()))?
            } else if txt.is_file() {
                let text = std::fs::read_to_string(&txt)
                    .map_err(|e| format!("cannot read `{}`: {e}", txt.display()))?;
                text.lines().map(str::to_owned).collect()
            } else {
                return Err(format!(
                    "`{}` has no tokenizer.json, vocabulary.json or vocabulary.txt",
                    dir.display()
                ));
            };
            let ids = tokens.iter().enumerate().map(|(id, token)| (token.clone(), id as u32)).collect();
            Backend::List { tokens, ids }
        };
        Ok(TokenFiles(backend))
    }

    /// The second half of [`Vocabulary::load`], once the weights give the vocabulary size.
    pub fn from_tokens(TokenFiles(backend): TokenFiles, vocab_size: usize) -> Result<Self, String> {
        let lookup = |token: &str| match &backend {
            Backend::Hf(tokenizer) => tokenizer.token_to_id(token),
            Backend::List { ids, .. } => ids.get(token).copied(),
        };
        let need =
            |token: &str| lookup(token).ok_or_else(|| format!("the vocabulary has no `{token}` token"));
        let no_timestamps = need("<|notimestamps|>")?;
        let multilingual = is_multilingual(vocab_size, lookup("<|en|>").is_some());
        let languages = if multilingual {
            languages::codes()
                .filter_map(|code| lookup(&format!("<|{code}|>")).map(|id| (code, id)))
                .collect()
        } else {
            HashMap::new()
        };
        let sot = need("<|startoftranscript|>")?;
        let transcribe = need("<|transcribe|>")?;
        let translate = lookup("<|translate|>");
        let mut never = vec![sot, transcribe];
        never.extend(translate);
        let startofprev = lookup("<|startofprev|>");
        never.extend(startofprev);
        never.extend(lookup("<|startoflm|>"));
        let specials = Specials {
            eot: need("<|endoftext|>")?,
            sot,
            transcribe,
            translate,
            no_timestamps,
            timestamp_begin: no_timestamps + 1,
            no_speech: lookup("<|nospeech|>").or_else(|| lookup("<|nocaptions|>")),
            startofprev,
            never,
            blank: lookup("Ġ"),
            languages,
        };
        Ok(Vocabulary { backend, specials })
    }

    /// OpenAI's prompt tokens for `text`: those of `" " + text.trim()`, without special tokens.
    /// Needs `tokenizer.json` (a bare token list has no merges to encode with).
    pub fn encode_prompt(&self, text: &str) -> Result<Vec<u32>, String> {
        match &self.backend {
            Backend::Hf(tokenizer) => {
                let encoding = tokenizer
                    .encode(format!(" {}", text.trim()), false)
                    .map_err(|error| format!("cannot tokenize the prompt: {error}"))?;
                // As OpenAI's tokenizer refuses special-token text in a prompt.
                if encoding.get_ids().iter().any(|id| *id >= self.specials.eot) {
                    return Err("the prompt contains a special token such as <|endoftext|>; write it as plain text".to_owned());
                }
                Ok(encoding.get_ids().to_vec())
            }
            Backend::List { .. } => Err(
                "this checkpoint ships only a token list, which cannot encode a prompt; add its tokenizer.json".to_owned(),
            ),
        }
    }

    /// Text of `ids`; special and timestamp tokens (all ids from `<|endoftext|>` on) are dropped.
    pub fn decode(&self, ids: &[u32]) -> Result<String, String> {
        let text: Vec<u32> = ids.iter().copied().filter(|id| *id < self.specials.eot).collect();
        match &self.backend {
            Backend::Hf(tokenizer) => tokenizer.decode(&text, true).map_err(|error| error.to_string()),
            Backend::List { tokens, .. } => {
                let table = byte_decoder();
                let bytes: Vec<u8> = text
                    .iter()
                    .filter_map(|id| tokens.get(*id as usize))
                    .flat_map(|token| token.chars())
                    .filter_map(|c| table.get(&c).copied())
                    .collect();
                Ok(String::from_utf8_lossy(&bytes).into_owned())
            }
        }
    }
}

/// Whether a checkpoint is multilingual. OpenAI decides by vocabulary size: English-only
/// checkpoints have 51864 tokens, multilingual ones 51865 (51866 for large-v3). Vocabularies
/// far smaller than either (test checkpoints) are multilingual when they have language tokens.
pub fn is_multilingual(vocab_size: usize, has_language_tokens: bool) -> bool {
    match vocab_size {
        51864 => false,
        n if n >= 51865 => true,
        _ => has_language_tokens,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_bytes_round_trip() {
        let table = byte_decoder();
        assert_eq!(table.len(), 256);
        assert_eq!(table[&'Ġ'], b' ');
        assert_eq!(table[&'a'], b'a');
        assert_eq!(table[&'Ċ'], b'\n');
    }

    #[test]
    fn english_only_is_told_by_vocabulary_size() {
        assert!(!is_multilingual(51864, true));
        assert!(is_multilingual(51865, false));
        assert!(is_multilingual(51866, true));
        assert!(is_multilingual(300, true));
        assert!(!is_multilingual(300, false));
    }
}
