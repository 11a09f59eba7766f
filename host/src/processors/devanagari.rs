//! `devnagari_transliterator`: converts text in another Brahmic script to Devanagari, as KARMA's
//! `DevanagariTransliterator` does with `indic_transliteration` (sanscript), without the library.
//!
//! Steps: NFC (when `normalize`), detect the script, convert, NFC (when `normalize`), strip.
//!
//! * Detection is `indic_transliteration.detect`'s: the script of the first character in
//!   U+0900..U+0D7F (Devanagari, Bengali/Assamese, Gurmukhi, Gujarati, Oriya, Tamil, Telugu, Kannada,
//!   Malayalam). As with sanscript, only characters of the detected script are converted; others
//!   (Latin, digits, punctuation, a second Indic script) pass through.
//! * Conversion relies on Unicode's parallel (ISCII-ordered) Indic blocks: a character at offset `o`
//!   of its block becomes U+0900 + `o`, for the offsets that mean the same thing in both blocks
//!   (signs, vowels, consonants, vowel signs, virama, nukta, avagraha, OM, vocalic vowels, dandas,
//!   digits). Characters without a Devanagari counterpart at the same offset are handled explicitly
//!   (see `special`), and the rest (currency signs, fractions, length marks, …) are kept.
//!
//! Differences from KARMA 0.2.0 (each a KARMA or sanscript defect for WER purposes):
//! * Latin text is passed through unchanged. `detect` never returns `None`: it reports a
//!   romanization (Harvard-Kyoto for plain English), so KARMA "transliterates" English as
//!   Harvard-Kyoto Sanskrit into Devanagari. Romanizations (HK, IAST, ITRANS, …) are out of scope
//!   here, and `fallback_scheme` only accepts Brahmic script names (which cannot change text with no
//!   Brahmic characters) or `none`.
//! * KARMA compares the detected name with `'Devanagari'`, but `detect` returns `'devanagari'`, so
//!   Devanagari text never takes the pass-through path; here it does. Every output is stripped
//!   (Python `str.strip()`), where KARMA strips only on its pass-through and error paths.
//! * sanscript's reverse tables are lossy for some scripts: Tamil க ச ட த ப become घ झ ढ ध भ (the
//!   last Devanagari letter sharing the Tamil letter), Tamil ம் becomes ं, Bengali ব becomes व, and
//!   Bengali ওঁ / Telugu ఓం … become ॐ. Here each letter maps to its own Devanagari counterpart
//!   (क च ट त प, म्, ब, ओँ).
//! * sanscript leaves nuktas after NFC (ড়, ଡ଼, ਖ਼ decompose to letter + nukta) in the source script,
//!   Malayalam chillus and ൗ unconverted; here they become ़, consonant + ्, and ौ.
//! * Gurmukhi ਸ਼ / ਲ਼ (decomposed by NFC) become श / ळ, and the discouraged vowel-bearer sequences
//!   (ੲਿ, ੳੁ, ਅਾ, …) become the independent vowels (इ, उ, आ, …).
//!
//! Kept from sanscript: ੱ (addak) doubles the next consonant (ੱਖ → क्ख), ੰ (tippi) → ं, ੴ → ॐ,
//! ੜ੍ਹ → ढ़, Bengali ৎ → त्, ৰ → र, Telugu/Kannada nakaara pollu → न्, Kannada ೞ → ऴ,
//! ೱ/ೲ → ᳵ/ᳶ, Tamil ஃப/ஃஜ/ஃய → फ़/ज़/य़.

use unicode_normalization::UnicodeNormalization;

use crate::processors::chars;
use crate::processors::Processor;

/// A Brahmic script with a Unicode block parallel to Devanagari's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    Devanagari,
    Bengali,
    Gurmukhi,
    Gujarati,
    Oriya,
    Tamil,
    Telugu,
    Kannada,
    Malayalam,
}

/// The scripts in block order.
const SCRIPTS: [Script; 9] = [
    Script::Devanagari,
    Script::Bengali,
    Script::Gurmukhi,
    Script::Gujarati,
    Script::Oriya,
    Script::Tamil,
    Script::Telugu,
    Script::Kannada,
    Script::Malayalam,
];

/// Names accepted for `fallback_scheme`, with the script they denote.
pub const SCHEME_NAMES: &[(&str, Script)] = &[
    ("devanagari", Script::Devanagari),
    ("bengali", Script::Bengali),
    ("assamese", Script::Bengali),
    ("gurmukhi", Script::Gurmukhi),
    ("punjabi", Script::Gurmukhi),
    ("gujarati", Script::Gujarati),
    ("oriya", Script::Oriya),
    ("odia", Script::Oriya),
    ("tamil", Script::Tamil),
    ("telugu", Script::Telugu),
    ("kannada", Script::Kannada),
    ("malayalam", Script::Malayalam),
];

impl Script {
    /// First code point of the script's 128-character block.
    pub fn block_start(self) -> u32 {
        match self {
            Script::Devanagari => 0x0900,
            Script::Bengali => 0x0980,
            Script::Gurmukhi => 0x0A00,
            Script::Gujarati => 0x0A80,
            Script::Oriya => 0x0B00,
            Script::Tamil => 0x0B80,
            Script::Telugu => 0x0C00,
            Script::Kannada => 0x0C80,
            Script::Malayalam => 0x0D00,
        }
    }

    /// The script whose block holds `c`.
    pub fn of(c: char) -> Option<Script> {
        let code = u32::from(c);
        if !(0x0900..=0x0D7F).contains(&code) {
            return None;
        }
        let index = usize::try_from((code - 0x0900) / 0x80).ok()?;
        SCRIPTS.get(index).copied()
    }

    /// A script by scheme name (case-insensitive), e.g. `bengali`, `odia`.
    pub fn from_name(name: &str) -> Option<Script> {
        let name = name.trim().to_ascii_lowercase();
        SCHEME_NAMES.iter().find(|(n, _)| *n == name).map(|&(_, s)| s)
    }
}

/// `indic_transliteration.detect` restricted to scripts: the script of the first character in
/// U+0900..U+0D7F, or `None` when there is none (where `detect` would guess a romanization).
pub fn detect(text: &str) -> Option<Script> {
    text.chars().find_map(Script::of)
}

/// Converts the characters of `script` in `text` to Devanagari; everything else is kept.
pub fn to_devanagari(text: &str, script: Script) -> String {
    if script == Script::Devanagari {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let mut i = 0;
    while i < chars.len() {
        let used = sequence(script, &chars[i..], &mut out);
        if used > 0 {
            i += used;
            continue;
        }
        map_char(script, chars[i], &mut out);
        i += 1;
    }
    out
}

fn offset_in(script: Script, c: char) -> Option<u32> {
    u32::from(c).checked_sub(script.block_start()).filter(|&o| o < 0x80)
}

/// Multi-character rules; pushes their output and returns how many characters they used (0: none).
fn sequence(script: Script, rest: &[char], out: &mut String) -> usize {
    let (first, second) = match rest {
        [a, b, ..] => (*a, *b),
        _ => return 0,
    };
    match script {
        Script::Gurmukhi => gurmukhi_sequence(first, second, rest, out),
        Script::Tamil if first == 'ஃ' => {
            // Aytham before ப ஜ ய writes the foreign sounds f, z, ẏ (sanscript's ஃப ஃஜ ஃய).
            let s = match second {
                'ப' => "फ़",
                'ஜ' => "ज़",
                'ய' => "य़",
                _ => return 0,
            };
            out.push_str(s);
            2
        }
        _ => 0,
    }
}

fn gurmukhi_sequence(first: char, second: char, rest: &[char], out: &mut String) -> usize {
    // Vowel-bearer sequences Unicode recommends against, for the independent vowels.
    let vowel = match (first, second) {
        ('ਅ', 'ਾ') => Some("आ"),
        ('ੲ', 'ਿ') => Some("इ"),
        ('ੲ', 'ੀ') => Some("ई"),
        ('ੳ', 'ੁ') => Some("उ"),
        ('ੳ', 'ੂ') => Some("ऊ"),
        ('ੲ', 'ੇ') => Some("ए"),
        ('ਅ', 'ੈ') => Some("ऐ"),
        ('ੳ', 'ੋ') => Some("ओ"),
        ('ਅ', 'ੌ') => Some("औ"),
        ('ਸ', '਼') => Some("श"),
        ('ਲ', '਼') => Some("ळ"),
        _ => None,
    };
    if let Some(v) = vowel {
        out.push_str(v);
        return 2;
    }
    if first == 'ੜ' && second == '੍' && rest.get(2) == Some(&'ਹ') {
        out.push_str("ढ़");
        return 3;
    }
    if first == 'ੱ' {
        // Addak doubles the next consonant; an aspirate is doubled by its unaspirated partner.
        let nukta = rest.get(2) == Some(&'਼');
        let doubled = match second {
            'ਸ' if nukta => Some('श'),
            'ਲ' if nukta => Some('ळ'),
            'ਖ' | 'ਘ' | 'ਛ' | 'ਝ' | 'ਠ' | 'ਢ' | 'ਥ' | 'ਧ' | 'ਫ' | 'ਭ' => {
                char::from_u32(u32::from(second) - 0x0A00 + 0x0900 - 1)
            }
            'ਕ' | 'ਗ' | 'ਚ' | 'ਜ' | 'ਟ' | 'ਡ' | 'ਤ' | 'ਦ' | 'ਪ' | 'ਬ' | 'ਯ' | 'ਰ' | 'ਲ' | 'ਵ' | 'ਸ' | 'ਹ'
            | 'ਙ' | 'ਞ' | 'ਣ' | 'ਨ' | 'ਮ' | 'ੜ' => {
                char::from_u32(u32::from(second) - 0x0A00 + 0x0900)
            }
            _ => None,
        };
        if let Some(d) = doubled {
            out.push(d);
            out.push('्');
            return 1;
        }
    }
    0
}

/// Characters without a same-offset Devanagari counterpart that still have a Devanagari rendering.
fn special(script: Script, offset: u32) -> Option<&'static str> {
    let s = match (script, offset) {
        (Script::Bengali, 0x4E) => "त्",                  // ৎ khanda ta
        (Script::Bengali, 0x70) => "र",                  // ৰ Assamese ra
        (Script::Bengali, 0x71) => "व",                  // ৱ Assamese wa
        (Script::Gurmukhi, 0x70) => "ं",                  // ੰ tippi
        (Script::Gurmukhi, 0x74) => "ॐ",                 // ੴ ek onkar
        (Script::Gujarati, 0x79) => "ॹ",                 // ૹ zha
        (Script::Oriya, 0x71) => "व",                    // ୱ wa
        (Script::Telugu | Script::Kannada, 0x5D) => "न्", // ౝ ೝ nakaara pollu
        (Script::Kannada, 0x5E) => "ऴ",                  // ೞ (named FA, the archaic LLLA)
        (Script::Kannada, 0x71) => "\u{1CF5}",           // ೱ jihvamuliya
        (Script::Kannada, 0x72) => "\u{1CF6}",           // ೲ upadhmaniya
        (Script::Malayalam, 0x3B | 0x3C) => "्",          // vertical bar / circular virama
        (Script::Malayalam, 0x4E) => "र्",                // ൎ dot reph
        (Script::Malayalam, 0x54) => "म्",                // chillu m
        (Script::Malayalam, 0x55) => "य्",                // chillu y
        (Script::Malayalam, 0x56) => "ऴ्",                // chillu lll
        (Script::Malayalam, 0x57) => "ौ",                // ൗ au sign (modern spelling)
        (Script::Malayalam, 0x7A) => "ण्",                // chillu nn
        (Script::Malayalam, 0x7B) => "न्",                // chillu n
        (Script::Malayalam, 0x7C) => "र्",                // chillu rr (of ra)
        (Script::Malayalam, 0x7D) => "ल्",                // chillu l
        (Script::Malayalam, 0x7E) => "ळ्",                // chillu ll
        (Script::Malayalam, 0x7F) => "क्",                // chillu k
        _ => return None,
    };
    Some(s)
}

/// Whether offset `offset` means the same in `script`'s block as in Devanagari's.
fn same_offset(script: Script, offset: u32) -> bool {
    match offset {
        0x01..=0x03 | 0x05..=0x39 | 0x3D..=0x4D | 0x50 | 0x51 | 0x60..=0x6F => true,
        0x3C => script != Script::Malayalam,
        // Nukta letters: only these scripts have them here (Telugu's TSA/DZA/RRRA do not match).
        0x58..=0x5F => matches!(script, Script::Bengali | Script::Gurmukhi | Script::Oriya),
        _ => false,
    }
}

fn map_char(script: Script, c: char, out: &mut String) {
    let Some(offset) = offset_in(script, c) else {
        out.push(c);
        return;
    };
    if let Some(s) = special(script, offset) {
        out.push_str(s);
    } else if same_offset(script, offset) {
        out.push(char::from_u32(0x0900 + offset).unwrap_or(c));
    } else {
        out.push(c);
    }
}

/// KARMA's `DevanagariTransliterator`, offline (see the module docs for the differences).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevanagariTransliterator {
    /// NFC-normalise the input and the output (KARMA default `True`).
    pub normalize: bool,
    /// Script assumed when none is detected. Text with no Brahmic character has nothing to convert,
    /// so this never changes the output; it is accepted for KARMA compatibility.
    pub fallback_scheme: Option<Script>,
}

impl Default for DevanagariTransliterator {
    fn default() -> Self {
        DevanagariTransliterator { normalize: true, fallback_scheme: None }
    }
}

impl Processor for DevanagariTransliterator {
    fn name(&self) -> &'static str {
        "devnagari_transliterator"
    }

    fn process(&self, text: &str) -> String {
        let text: String = if self.normalize { text.nfc().collect() } else { text.to_string() };
        match detect(&text).or(self.fallback_scheme) {
            None | Some(Script::Devanagari) => chars::py_strip(&text).to_string(),
            Some(script) => {
                let converted = to_devanagari(&text, script);
                let converted: String = if self.normalize { converted.nfc().collect() } else { converted };
                chars::py_strip(&converted).to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brahmic_scripts_become_devanagari() {
        let processor = DevanagariTransliterator::default();
        // Same output as indic_transliteration 2.3 (detect + sanscript.transliterate, NFC), which
        // KARMA calls.
        for (text, expected) in [
            ("বাংলা ভাষা", "बांला भाषा"),
            ("ਪੰਜਾਬੀ", "पंजाबी"),
            ("ગુજરાતી", "गुजराती"),
            ("తెలుగు", "तॆलुगु"),
            ("ಕನ್ನಡ", "कन्नड"),
            ("മലയാളം", "मलयाळं"),
            ("हिन्दी", "हिन्दी"),
        ] {
            assert_eq!(processor.process(text), expected, "{text}");
        }
    }

    #[test]
    fn where_indic_transliteration_is_wrong_the_letters_correspond() {
        let processor = DevanagariTransliterator::default();
        // Python gives "धमिऴ् मॊऴि" (த read as dha), keeps the Oriya and Bengali nukta
        // unconverted ("ओड଼िआ", "असमीय়ा"), and reads English as SLP1 ("हेल्लो टोर्ल्द्").
        assert_eq!(processor.process("தமிழ் மொழி"), "तमिऴ् मॊऴि");
        assert_eq!(processor.process("ଓଡ଼ିଆ"), "ओड़िआ");
        assert_eq!(processor.process("অসমীয়া"), "असमीय़ा");
        assert_eq!(processor.process("hello world"), "hello world");
        // Letters without a counterpart at the same offset.
        assert_eq!(processor.process("ৰঙা"), "रङा");
        assert_eq!(processor.process("ഞാൻ"), "ञान्");
        assert_eq!(processor.process(""), "");
    }
}
