//! `silence_accuracy`: for recordings with no speech, the share of transcripts that are empty
//! once bracketed annotations (`[noise]`, `<unk>`, `(inaudible)`), punctuation and filler words
//! are removed. KARMA's formula.

use std::sync::Arc;

use super::{Metric, MetricArgs, Sample};

/// Sounds and words a recogniser writes for silence or noise.
const FILLERS: &[&str] = &[
    "hmm", "hm", "mm", "mmm", "umm", "um", "uh", "uhh", "uhm", "ah", "ahh", "oh", "eh", "er", "erm", "huh",
    "ok", "okay", "yes", "no", "yeah", "yep", "nope",
];

/// Whether `transcript` says nothing.
pub fn is_silent(transcript: &str) -> bool {
    let mut kept = String::with_capacity(transcript.len());
    let mut closing: Vec<char> = Vec::new();
    for character in transcript.chars() {
        match character {
            '[' => closing.push(']'),
            '<' => closing.push('>'),
            '(' => closing.push(')'),
            c if closing.last() == Some(&c) => {
                closing.pop();
            }
            c if closing.is_empty() => kept.push(c),
            _ => {}
        }
    }
    kept.split(|c: char| c.is_whitespace() || (!c.is_alphanumeric() && c != '\''))
        .map(|word| word.trim_matches('\'').to_lowercase())
        .filter(|word| !word.is_empty())
        .all(|word| FILLERS.contains(&word.as_str()))
}

/// `silence_accuracy`.
pub struct SilenceAccuracy;

impl Metric for SilenceAccuracy {
    fn name(&self) -> &'static str {
        "silence_accuracy"
    }
    fn description(&self) -> &'static str {
        "share of transcripts that are empty after removing [..], <..>, (..), punctuation and filler words \
         (for recordings without speech)"
    }
    fn is_proportion(&self) -> bool {
        true
    }
    fn sample_stats(&self, sample: &Sample<'_>) -> Vec<f64> {
        vec![f64::from(u8::from(is_silent(sample.prediction_text())))]
    }
    fn aggregate(&self, stats: &[&[f64]]) -> Option<f64> {
        super::mean_of_first(stats)
    }
    fn configure(&self, _args: &MetricArgs) -> Arc<dyn Metric> {
        Arc::new(SilenceAccuracy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_punctuation_and_fillers_are_silence() {
        assert!(is_silent(""));
        assert!(is_silent("[noise] <unk> (inaudible)"));
        assert!(is_silent("Hmm... okay."));
        assert!(is_silent("[music [loud]] uh"));
        assert!(!is_silent("hello"));
        assert!(!is_silent("[noise] take two tablets"));
    }
}
