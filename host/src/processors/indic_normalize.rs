//! A port of indic-nlp-library 0.92's `IndicNormalizerFactory().get_normalizer(lang)` with its
//! default options (`remove_nuktas=False`, `nasals_mode='do_nothing'`,
//! `do_normalize_chandras=False`, `do_normalize_vowel_ending=False`, and the script-specific
//! `do_canonicalize_addak/tippi`, `do_replace_vowel_bases`, `do_remap_wa`,
//! `do_remap_assamese_chars`, `do_canonicalize_chillus`, `do_correct_geminated_T` all `False`).
//! With those defaults indicnlp only runs plain string replacements, ported here in the same order.
//!
//! The common part (`BaseNormalizer.normalize`) removes BOMs, word joiner, soft hyphen, ZWNJ and
//! ZWJ, turns zero-width and no-break spaces into spaces, and maps typographic punctuation to ASCII
//! („“” → `"`, – → `-`, — → ` - `, ´‘‚’ → `'`, `''` → `"`, … → `...`). Each script normaliser then
//! decomposes nukta letters, replaces its script's reserved danda code points with U+0964/U+0965
//! (and `|` with `।` for Devanagari, Gurmukhi and Bengali), canonicalises two-part vowel signs, and
//! turns `:` after a letter of the script into its visarga.

/// Which of indicnlp's normalisers applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalizer {
    /// `BaseNormalizer`: the script-independent part only.
    Generic,
    Devanagari,
    Gurmukhi,
    Gujarati,
    Bengali,
    Oriya,
    Tamil,
    Telugu,
    Kannada,
    Malayalam,
}

/// Sequential `str.replace` calls, as indicnlp writes them.
fn replace_all(mut text: String, pairs: &[(&str, &str)]) -> String {
    for (from, to) in pairs {
        if text.contains(from) {
            text = text.replace(from, to);
        }
    }
    text
}

/// `re.sub(r'([<lo>-<hi>]):', r'\1<visarga>', text)`.
fn correct_visarga(text: &str, lo: char, hi: char, visarga: char) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if (lo..=hi).contains(&c) && chars.peek() == Some(&':') {
            chars.next();
            out.push(visarga);
        }
    }
    out
}

/// `BaseNormalizer.normalize` with default options, including `_normalize_punctuations`.
fn base(text: &str) -> String {
    replace_all(
        text.to_string(),
        &[
            ("\u{FEFF}", ""),
            ("\u{FFFE}", ""),
            ("\u{2060}", ""),
            ("\u{00AD}", ""),
            ("\u{200B}", " "),
            ("\u{00A0}", " "),
            ("\u{200C}", ""),
            ("\u{200D}", ""),
            // _normalize_punctuations
            ("\u{FEFF}", ""),
            ("„", "\""),
            ("“", "\""),
            ("”", "\""),
            ("–", "-"),
            ("—", " - "),
            ("´", "'"),
            ("‘", "'"),
            ("‚", "'"),
            ("’", "'"),
            ("''", "\""),
            ("´´", "\""),
            ("…", "..."),
        ],
    )
}

impl Normalizer {
    /// indicnlp's factory choice for an indicnlp language code; other codes get [`Normalizer::Generic`].
    pub fn for_indicnlp_code(code: &str) -> Normalizer {
        match code {
            "hi" | "mr" | "sa" | "kK" | "ne" | "sd" => Normalizer::Devanagari,
            "pa" => Normalizer::Gurmukhi,
            "gu" => Normalizer::Gujarati,
            "bn" | "as" => Normalizer::Bengali,
            "or" => Normalizer::Oriya,
            "ml" => Normalizer::Malayalam,
            "kn" => Normalizer::Kannada,
            "ta" => Normalizer::Tamil,
            "te" => Normalizer::Telugu,
            _ => Normalizer::Generic,
        }
    }

    /// `normalizer.normalize(text)`.
    pub fn normalize(self, text: &str) -> String {
        match self {
            Normalizer::Generic => base(text),
            Normalizer::Devanagari => devanagari(text),
            Normalizer::Gurmukhi => gurmukhi(text),
            Normalizer::Gujarati => {
                let t = replace_all(base(text), &[("\u{0AE4}", "\u{0964}"), ("\u{0AE5}", "\u{0965}")]);
                correct_visarga(&t, '\u{0A80}', '\u{0AFF}', '\u{0A83}')
            }
            Normalizer::Bengali => bengali(text),
            Normalizer::Oriya => oriya(text),
            Normalizer::Tamil => {
                let t = replace_all(
                    base(text),
                    &[
                        ("\u{0BE4}", "\u{0964}"),
                        ("\u{0BE5}", "\u{0965}"),
                        ("\u{0B92}\u{0BD7}", "\u{0B94}"),
                        ("\u{0BC6}\u{0BBE}", "\u{0BCA}"),
                        ("\u{0BC7}\u{0BBE}", "\u{0BCB}"),
                        ("\u{0BC6}\u{0BD7}", "\u{0BCC}"),
                    ],
                );
                correct_visarga(&t, '\u{0B80}', '\u{0BFF}', '\u{0B83}')
            }
            Normalizer::Telugu => {
                let t = replace_all(
                    base(text),
                    &[("\u{0C64}", "\u{0964}"), ("\u{0C65}", "\u{0965}"), ("\u{0C46}\u{0C56}", "\u{0C48}")],
                );
                correct_visarga(&t, '\u{0C00}', '\u{0C7F}', '\u{0C03}')
            }
            Normalizer::Kannada => {
                let t = replace_all(
                    base(text),
                    &[
                        ("\u{0CE4}", "\u{0964}"),
                        ("\u{0CE5}", "\u{0965}"),
                        ("\u{0CBF}\u{0CD5}", "\u{0CC0}"),
                        ("\u{0CC6}\u{0CD5}", "\u{0CC7}"),
                        ("\u{0CC6}\u{0CD6}", "\u{0CC8}"),
                        ("\u{0CC6}\u{0CC2}", "\u{0CCA}"),
                        ("\u{0CCA}\u{0CD5}", "\u{0CCB}"),
                    ],
                );
                correct_visarga(&t, '\u{0C80}', '\u{0CFF}', '\u{0C83}')
            }
            Normalizer::Malayalam => malayalam(text),
        }
    }
}

fn devanagari(text: &str) -> String {
    let t = replace_all(
        base(text),
        &[
            // chandra a (Marathi)
            ("\u{0972}", "\u{090F}"),
            // nukta letters decomposed
            ("\u{0929}", "\u{0928}\u{093C}"),
            ("\u{0931}", "\u{0930}\u{093C}"),
            ("\u{0934}", "\u{0933}\u{093C}"),
            ("\u{0958}", "\u{0915}\u{093C}"),
            ("\u{0959}", "\u{0916}\u{093C}"),
            ("\u{095A}", "\u{0917}\u{093C}"),
            ("\u{095B}", "\u{091C}\u{093C}"),
            ("\u{095C}", "\u{0921}\u{093C}"),
            ("\u{095D}", "\u{0922}\u{093C}"),
            ("\u{095E}", "\u{092B}\u{093C}"),
            ("\u{095F}", "\u{092F}\u{093C}"),
            ("|", "\u{0964}"),
        ],
    );
    correct_visarga(&t, '\u{0900}', '\u{097F}', '\u{0903}')
}

fn gurmukhi(text: &str) -> String {
    // VOWEL_NORM_MAPS (Unicode 12.1 table 12-16) come before the common part.
    let t = replace_all(
        text.to_string(),
        &[
            ("\u{0A05}\u{0A3E}", "\u{0A06}"),
            ("\u{0A72}\u{0A3F}", "\u{0A07}"),
            ("\u{0A72}\u{0A40}", "\u{0A08}"),
            ("\u{0A73}\u{0A41}", "\u{0A09}"),
            ("\u{0A73}\u{0A42}", "\u{0A0A}"),
            ("\u{0A72}\u{0A47}", "\u{0A0F}"),
            ("\u{0A05}\u{0A48}", "\u{0A10}"),
            ("\u{0A73}\u{0A4B}", "\u{0A13}"),
            ("\u{0A05}\u{0A4C}", "\u{0A14}"),
        ],
    );
    let t = replace_all(
        base(&t),
        &[
            ("\u{0A33}", "\u{0A32}\u{0A3C}"),
            ("\u{0A36}", "\u{0A38}\u{0A3C}"),
            ("\u{0A59}", "\u{0A16}\u{0A3C}"),
            ("\u{0A5A}", "\u{0A17}\u{0A3C}"),
            ("\u{0A5B}", "\u{0A1C}\u{0A3C}"),
            ("\u{0A5E}", "\u{0A2B}\u{0A3C}"),
            ("\u{0A64}", "\u{0964}"),
            ("\u{0A65}", "\u{0965}"),
            ("|", "\u{0964}"),
        ],
    );
    correct_visarga(&t, '\u{0A00}', '\u{0A7F}', '\u{0A03}')
}

fn bengali(text: &str) -> String {
    let t = replace_all(
        base(text),
        &[
            ("\u{09DC}", "\u{09A1}\u{09BC}"),
            ("\u{09DD}", "\u{09A2}\u{09BC}"),
            ("\u{09DF}", "\u{09AF}\u{09BC}"),
            ("\u{09E4}", "\u{0964}"),
            ("\u{09E5}", "\u{0965}"),
            ("|", "\u{0964}"),
            // currency numerator four, used for the danda
            ("\u{09F7}", "\u{0964}"),
            ("\u{09C7}\u{09BE}", "\u{09CB}"),
            ("\u{09C7}\u{09D7}", "\u{09CC}"),
        ],
    );
    correct_visarga(&t, '\u{0980}', '\u{09FF}', '\u{0983}')
}

fn oriya(text: &str) -> String {
    let t = replace_all(
        base(text),
        &[
            // VOWEL_NORM_MAPS (Unicode 12.1 table 12-22)
            ("\u{0B05}\u{0B3E}", "\u{0B06}"),
            ("\u{0B0F}\u{0B57}", "\u{0B10}"),
            ("\u{0B13}\u{0B57}", "\u{0B14}"),
            ("\u{0B5C}", "\u{0B21}\u{0B3C}"),
            ("\u{0B5D}", "\u{0B22}\u{0B3C}"),
            ("\u{0B64}", "\u{0964}"),
            ("\u{0B65}", "\u{0965}"),
            // indicnlp's "pipe" for Oriya is U+0B7C (unassigned), kept as it does.
            ("\u{0B7C}", "\u{0964}"),
            // va → ba, unconditionally
            ("\u{0B35}", "\u{0B2C}"),
            // indicnlp maps e + ai length mark to U+0B58; after NFC the pair is already U+0B48.
            ("\u{0B47}\u{0B56}", "\u{0B58}"),
            ("\u{0B47}\u{0B3E}", "\u{0B4B}"),
            ("\u{0B47}\u{0B57}", "\u{0B4C}"),
        ],
    );
    correct_visarga(&t, '\u{0B00}', '\u{0B7F}', '\u{0B03}')
}

fn malayalam(text: &str) -> String {
    // Chillus in the pre-Unicode-5.1 encoding (consonant + virama + ZWJ), before ZWJ is removed.
    let t = replace_all(
        text.to_string(),
        &[
            ("\u{0D23}\u{0D4D}\u{200D}", "\u{0D7A}"),
            ("\u{0D28}\u{0D4D}\u{200D}", "\u{0D7B}"),
            ("\u{0D30}\u{0D4D}\u{200D}", "\u{0D7C}"),
            ("\u{0D32}\u{0D4D}\u{200D}", "\u{0D7D}"),
            ("\u{0D33}\u{0D4D}\u{200D}", "\u{0D7E}"),
            ("\u{0D15}\u{0D4D}\u{200D}", "\u{0D7F}"),
        ],
    );
    let t = replace_all(
        base(&t),
        &[
            ("\u{0D64}", "\u{0964}"),
            ("\u{0D65}", "\u{0965}"),
            ("\u{0D46}\u{0D3E}", "\u{0D4A}"),
            ("\u{0D47}\u{0D3E}", "\u{0D4B}"),
            ("\u{0D46}\u{0D57}", "\u{0D4C}"),
            ("\u{0D57}", "\u{0D4C}"),
        ],
    );
    correct_visarga(&t, '\u{0D00}', '\u{0D7F}', '\u{0D03}')
}
