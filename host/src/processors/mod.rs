//! KARMA's text processors, applied to predictions and references before metrics (e.g. WER on ASR
//! transcripts): `general_text_processor`, `devnagari_transliterator` and
//! `multilingual_text_processor`. Each module's docs say how it follows KARMA 0.2.0 and where it
//! deliberately differs.
//!
//! [`build`] makes a processor from its name and its `--processor-args` values; every argument is
//! checked, and an unknown processor, an unknown argument or a bad value is an error.

use std::collections::BTreeMap;

mod chars;
pub mod devanagari;
pub mod general;
pub mod indic_normalize;
pub mod multilingual;
pub mod num2words;

pub use devanagari::DevanagariTransliterator;
pub use general::GeneralTextProcessor;
pub use multilingual::MultilingualTextProcessor;

/// A text processor applied to predictions and references before metrics.
pub trait Processor: Send + Sync + std::fmt::Debug {
    fn name(&self) -> &'static str;
    fn process(&self, text: &str) -> String;
}

/// An argument a processor accepts.
pub struct ProcessorArg {
    pub name: &'static str,
    pub default: Option<&'static str>,
    pub description: &'static str,
}

/// One registered processor.
pub struct ProcessorSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub args: &'static [ProcessorArg],
}

const fn arg(name: &'static str, default: Option<&'static str>, description: &'static str) -> ProcessorArg {
    ProcessorArg { name, default, description }
}

pub const PROCESSORS: &[ProcessorSpec] = &[
    ProcessorSpec {
        name: "general_text_processor",
        description: "Optionally spells integers in English (num2words), removes Unicode punctuation, \
                      lowercases, then collapses runs of whitespace. Defaults give KARMA's default output.",
        args: &[
            arg("lowercase", Some("true"), "Lowercase the text."),
            arg("remove_punctuation", Some("true"), "Remove every character of Unicode category P*."),
            arg("num2text", Some("false"), "Spell standalone integers as English words (21 -> twenty-one)."),
            arg(
                "use_lowercasing",
                None,
                "KARMA name for `lowercase` (true = lowercase; KARMA applied it inverted).",
            ),
            arg(
                "use_punc",
                None,
                "KARMA name for `remove_punctuation` (true = remove; KARMA applied it inverted).",
            ),
            arg("use_num2text", None, "KARMA name for `num2text`."),
        ],
    },
    ProcessorSpec {
        name: "devnagari_transliterator",
        description: "Converts Bengali/Assamese, Gurmukhi, Gujarati, Oriya, Tamil, Telugu, Kannada and \
                      Malayalam text to Devanagari; Devanagari and Latin text pass through (stripped).",
        args: &[
            arg("normalize", Some("true"), "NFC-normalise the input and the output."),
            arg(
                "fallback_scheme",
                None,
                "Script assumed when none is detected: none or a Brahmic script name (romanizations \
                 such as hk/iast/itrans are not supported).",
            ),
        ],
    },
    ProcessorSpec {
        name: "multilingual_text_processor",
        description: "Strips leading Devanagari marks, NFC, indic-nlp normalisation for the language, then \
                      the language's GLM word rules (shipped for en and hi).",
        args: &[arg(
            "language",
            None,
            "Language code or name (hi, hindi, bn, bengali, en, ...); defaults to the dataset's language, \
             else hi.",
        )],
    },
];

/// Parses a boolean argument value: true/false/1/0/yes/no, case-insensitive.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

fn bool_arg(processor: &str, args: &BTreeMap<String, String>, name: &str) -> Result<Option<bool>, String> {
    match args.get(name) {
        None => Ok(None),
        Some(value) => parse_bool(value).map(Some).ok_or_else(|| {
            format!(
                "processor '{processor}': argument '{name}' has value '{value}', which is not a boolean \
                 (accepted: true, false, 1, 0, yes, no)"
            )
        }),
    }
}

/// A flag given under its own name and/or its KARMA alias; both must agree.
fn flag(
    processor: &str,
    args: &BTreeMap<String, String>,
    name: &str,
    alias: &str,
    default: bool,
) -> Result<bool, String> {
    match (bool_arg(processor, args, name)?, bool_arg(processor, args, alias)?) {
        (Some(a), Some(b)) if a != b => Err(format!(
            "processor '{processor}': arguments '{name}' and '{alias}' are the same setting but disagree \
             ({a} vs {b})"
        )),
        (Some(v), _) | (None, Some(v)) => Ok(v),
        (None, None) => Ok(default),
    }
}

/// Builds processor `name` with `args` (`--processor-args ds.name:k=v` values); `language` is the dataset's language when it has one.
/// Unknown processor or unknown arg or a bad value (e.g. `use_punc=maybe`) → Err with a clear message naming the processor, the arg and the accepted values.
pub fn build(
    name: &str,
    args: &BTreeMap<String, String>,
    language: Option<&str>,
) -> Result<Box<dyn Processor>, String> {
    let Some(spec) = PROCESSORS.iter().find(|p| p.name == name) else {
        let known: Vec<&str> = PROCESSORS.iter().map(|p| p.name).collect();
        return Err(format!("unknown processor '{name}' (available: {})", known.join(", ")));
    };
    if let Some(unknown) = args.keys().find(|k| !spec.args.iter().any(|a| a.name == k.as_str())) {
        let accepted: Vec<&str> = spec.args.iter().map(|a| a.name).collect();
        return Err(format!(
            "processor '{name}': unknown argument '{unknown}' (accepted: {})",
            accepted.join(", ")
        ));
    }
    match spec.name {
        "general_text_processor" => Ok(Box::new(GeneralTextProcessor {
            lowercase: flag(name, args, "lowercase", "use_lowercasing", true)?,
            remove_punctuation: flag(name, args, "remove_punctuation", "use_punc", true)?,
            num2text: flag(name, args, "num2text", "use_num2text", false)?,
        })),
        "devnagari_transliterator" => {
            let normalize = bool_arg(name, args, "normalize")?.unwrap_or(true);
            let fallback_scheme = match args.get("fallback_scheme").map(|s| s.trim()) {
                None => None,
                Some(s) if s.is_empty() || s.eq_ignore_ascii_case("none") => None,
                Some(s) => Some(devanagari::Script::from_name(s).ok_or_else(|| {
                    let names: Vec<&str> = devanagari::SCHEME_NAMES.iter().map(|(n, _)| *n).collect();
                    format!(
                        "processor '{name}': argument 'fallback_scheme' has value '{s}', which is not \
                         supported (accepted: none, {}; romanization schemes such as hk, iast, itrans \
                         are not supported offline)",
                        names.join(", ")
                    )
                })?),
            };
            Ok(Box::new(DevanagariTransliterator { normalize, fallback_scheme }))
        }
        _ => {
            let (chosen, source) = match (args.get("language"), language) {
                (Some(l), _) => (l.as_str(), "argument 'language'"),
                (None, Some(l)) => (l, "the dataset's language"),
                (None, None) => ("hi", "the default language"),
            };
            let processor = MultilingualTextProcessor::new(chosen)
                .map_err(|e| format!("processor '{name}': {source}: {e}"))?;
            Ok(Box::new(processor))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn built(name: &str, pairs: &[(&str, &str)], language: Option<&str>) -> Box<dyn Processor> {
        match build(name, &args(pairs), language) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    fn error(name: &str, pairs: &[(&str, &str)], language: Option<&str>) -> String {
        match build(name, &args(pairs), language) {
            Ok(p) => panic!("expected an error, built {p:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn registry_lists_every_processor_and_builds_defaults() {
        for spec in PROCESSORS {
            let p = built(spec.name, &[], None);
            assert_eq!(p.name(), spec.name);
            assert_eq!(p.process(""), "");
        }
    }

    #[test]
    fn general_flags_and_aliases() {
        let p = built("general_text_processor", &[], None);
        assert_eq!(p.process("Hello,  World!"), "hello world");
        let p = built("general_text_processor", &[("use_punc", "false"), ("use_lowercasing", "NO")], None);
        assert_eq!(p.process("Hello,  World!"), "Hello, World!");
        let p = built("general_text_processor", &[("remove_punctuation", "0"), ("num2text", "Yes")], None);
        assert_eq!(p.process("Take 21."), "take twenty-one.");
        let p = built("general_text_processor", &[("use_num2text", "1"), ("num2text", "true")], None);
        assert_eq!(p.process("21"), "twentyone");
    }

    #[test]
    fn bad_arguments_are_clear_errors() {
        let e = error("general_text_processor", &[("use_punc", "maybe")], None);
        assert!(e.contains("general_text_processor") && e.contains("use_punc") && e.contains("maybe"), "{e}");
        assert!(e.contains("true, false, 1, 0, yes, no"), "{e}");
        let e = error("general_text_processor", &[("punc", "true")], None);
        assert!(e.contains("unknown argument 'punc'") && e.contains("remove_punctuation"), "{e}");
        let e = error("general_text_processor", &[("lowercase", "true"), ("use_lowercasing", "false")], None);
        assert!(e.contains("disagree"), "{e}");
        let e = error("no_such_processor", &[], None);
        assert!(e.contains("no_such_processor") && e.contains("devnagari_transliterator"), "{e}");
        let e = error("devnagari_transliterator", &[("fallback_scheme", "itrans")], None);
        assert!(e.contains("fallback_scheme") && e.contains("itrans") && e.contains("bengali"), "{e}");
        let e = error("devnagari_transliterator", &[("normalize", "")], None);
        assert!(e.contains("normalize"), "{e}");
        let e = error("multilingual_text_processor", &[("language", "klingon")], None);
        assert!(e.contains("language") && e.contains("klingon") && e.contains("hindi"), "{e}");
        let e = error("multilingual_text_processor", &[], Some("klingon"));
        assert!(e.contains("dataset's language"), "{e}");
    }

    #[test]
    fn devanagari_args() {
        let p =
            built("devnagari_transliterator", &[("normalize", "false"), ("fallback_scheme", "Tamil")], None);
        assert_eq!(p.process(" hello "), "hello");
        let p = built("devnagari_transliterator", &[("fallback_scheme", "none")], None);
        assert_eq!(p.process("বাংলা"), "बांला");
    }

    #[test]
    fn multilingual_language_resolution() {
        // The argument wins over the dataset's language; the dataset's language over "hi".
        let p = built("multilingual_text_processor", &[("language", "en")], Some("hindi"));
        assert_eq!(p.process("two tablets"), "2 tablets");
        let p = built("multilingual_text_processor", &[], Some("English"));
        assert_eq!(p.process("two tablets"), "2 tablets");
        let p = built("multilingual_text_processor", &[], Some("hindi"));
        assert_eq!(p.process("ऐप डाउनलोड करें"), "ऐप download करें");
        let p = built("multilingual_text_processor", &[], None);
        assert_eq!(p.process("ऐप डाउनलोड करें"), "ऐप download करें");
        let p = built("multilingual_text_processor", &[], Some("ta"));
        assert_eq!(p.process("two"), "two");
    }
}
