//! The languages Whisper was trained on (OpenAI's `tokenizer.py` `LANGUAGES`, plus its
//! aliases), and how KARMA's ways of naming one (`hi`, `hindi`, `en-IN`, `hin`, `eng-Latn`)
//! become Whisper's `<|xx|>` token.

/// Whisper's language codes and English names.
const LANGUAGES: &[(&str, &str)] = &[
    ("en", "english"),
    ("zh", "chinese"),
    ("de", "german"),
    ("es", "spanish"),
    ("ru", "russian"),
    ("ko", "korean"),
    ("fr", "french"),
    ("ja", "japanese"),
    ("pt", "portuguese"),
    ("tr", "turkish"),
    ("pl", "polish"),
    ("ca", "catalan"),
    ("nl", "dutch"),
    ("ar", "arabic"),
    ("sv", "swedish"),
    ("it", "italian"),
    ("id", "indonesian"),
    ("hi", "hindi"),
    ("fi", "finnish"),
    ("vi", "vietnamese"),
    ("he", "hebrew"),
    ("uk", "ukrainian"),
    ("el", "greek"),
    ("ms", "malay"),
    ("cs", "czech"),
    ("ro", "romanian"),
    ("da", "danish"),
    ("hu", "hungarian"),
    ("ta", "tamil"),
    ("no", "norwegian"),
    ("th", "thai"),
    ("ur", "urdu"),
    ("hr", "croatian"),
    ("bg", "bulgarian"),
    ("lt", "lithuanian"),
    ("la", "latin"),
    ("mi", "maori"),
    ("ml", "malayalam"),
    ("cy", "welsh"),
    ("sk", "slovak"),
    ("te", "telugu"),
    ("fa", "persian"),
    ("lv", "latvian"),
    ("bn", "bengali"),
    ("sr", "serbian"),
    ("az", "azerbaijani"),
    ("sl", "slovenian"),
    ("kn", "kannada"),
    ("et", "estonian"),
    ("mk", "macedonian"),
    ("br", "breton"),
    ("eu", "basque"),
    ("is", "icelandic"),
    ("hy", "armenian"),
    ("ne", "nepali"),
    ("mn", "mongolian"),
    ("bs", "bosnian"),
    ("kk", "kazakh"),
    ("sq", "albanian"),
    ("sw", "swahili"),
    ("gl", "galician"),
    ("mr", "marathi"),
    ("pa", "punjabi"),
    ("si", "sinhala"),
    ("km", "khmer"),
    ("sn", "shona"),
    ("yo", "yoruba"),
    ("so", "somali"),
    ("af", "afrikaans"),
    ("oc", "occitan"),
    ("ka", "georgian"),
    ("be", "belarusian"),
    ("tg", "tajik"),
    ("sd", "sindhi"),
    ("gu", "gujarati"),
    ("am", "amharic"),
    ("yi", "yiddish"),
    ("lo", "lao"),
    ("uz", "uzbek"),
    ("fo", "faroese"),
    ("ht", "haitian creole"),
    ("ps", "pashto"),
    ("tk", "turkmen"),
    ("nn", "nynorsk"),
    ("mt", "maltese"),
    ("sa", "sanskrit"),
    ("lb", "luxembourgish"),
    ("my", "myanmar"),
    ("bo", "tibetan"),
    ("tl", "tagalog"),
    ("mg", "malagasy"),
    ("as", "assamese"),
    ("tt", "tatar"),
    ("haw", "hawaiian"),
    ("ln", "lingala"),
    ("ha", "hausa"),
    ("ba", "bashkir"),
    ("jw", "javanese"),
    ("su", "sundanese"),
    ("yue", "cantonese"),
];

/// Other names OpenAI accepts, and ISO 639-3 codes datasets use (the Indian languages first).
const ALIASES: &[(&str, &str)] = &[
    ("burmese", "my"),
    ("valencian", "ca"),
    ("flemish", "nl"),
    ("haitian", "ht"),
    ("letzeburgesch", "lb"),
    ("pushto", "ps"),
    ("panjabi", "pa"),
    ("moldavian", "ro"),
    ("moldovan", "ro"),
    ("sinhalese", "si"),
    ("castilian", "es"),
    ("mandarin", "zh"),
    ("farsi", "fa"),
    ("bangla", "bn"),
    ("filipino", "tl"),
    ("eng", "en"),
    ("hin", "hi"),
    ("ben", "bn"),
    ("tam", "ta"),
    ("tel", "te"),
    ("mar", "mr"),
    ("guj", "gu"),
    ("kan", "kn"),
    ("mal", "ml"),
    ("pan", "pa"),
    ("urd", "ur"),
    ("asm", "as"),
    ("nep", "ne"),
    ("san", "sa"),
    ("snd", "sd"),
    ("zho", "zh"),
    ("cmn", "zh"),
    ("deu", "de"),
    ("fra", "fr"),
    ("spa", "es"),
    ("jv", "jw"),
    ("jav", "jw"),
];

/// Whisper's code for `name` (a code, a name, or a tagged code such as `en-IN` / `hin_Deva`),
/// or `None` when Whisper has no such language.
pub fn whisper_code(name: &str) -> Option<&'static str> {
    let lowered = name.trim().to_ascii_lowercase();
    let base = lowered.split(['-', '_']).next().unwrap_or("");
    for candidate in [lowered.as_str(), base] {
        if let Some((code, _)) =
            LANGUAGES.iter().find(|(code, english)| *code == candidate || *english == candidate)
        {
            return Some(code);
        }
        if let Some((_, code)) = ALIASES.iter().find(|(alias, _)| *alias == candidate) {
            return LANGUAGES.iter().find(|(known, _)| known == code).map(|(known, _)| *known);
        }
    }
    None
}

/// Every language code, for `<|xx|>` lookups.
pub fn codes() -> impl Iterator<Item = &'static str> {
    LANGUAGES.iter().map(|(code, _)| *code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn karma_spellings_map_to_whisper_codes() {
        for (given, expected) in [
            ("hi", "hi"),
            ("hindi", "hi"),
            ("Hindi", "hi"),
            ("en-IN", "en"),
            ("english", "en"),
            ("hin", "hi"),
            ("eng-Latn", "en"),
            ("hin_Deva", "hi"),
            ("ta", "ta"),
            ("Marathi", "mr"),
            ("yue", "yue"),
            ("mandarin", "zh"),
        ] {
            assert_eq!(whisper_code(given), Some(expected), "{given}");
        }
        assert_eq!(whisper_code("klingon"), None);
        assert_eq!(whisper_code(""), None);
        assert_eq!(codes().count(), 100);
    }
}
