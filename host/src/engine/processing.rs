//! Text processors between extraction and the metrics: the prediction and every reference go
//! through the dataset's processors in order (KARMA's `postprocess`), so a metric compares
//! normalised texts. The cache and the samples file keep the prediction as extracted.

use super::plan::ProcessorStep;
use crate::{datasets::task::Reference, metrics::Sample};

/// A prediction and its references after the processors.
pub(super) struct Processed {
    prediction: Option<String>,
    reference: String,
    references: Vec<String>,
}

impl Processed {
    /// `None` when there are no processors (the texts are scored as they are).
    pub(super) fn apply(
        steps: &[ProcessorStep],
        prediction: Option<&str>,
        reference: &Reference,
    ) -> Option<Self> {
        if steps.is_empty() {
            return None;
        }
        let run = |text: &str| steps.iter().fold(text.to_owned(), |text, step| step.processor.process(&text));
        Some(Processed {
            prediction: prediction.map(run),
            reference: run(reference.primary()),
            references: reference.texts().iter().map(|text| run(text)).collect(),
        })
    }

    pub(super) fn sample<'a>(&'a self, other_args: &'a serde_json::Value) -> Sample<'a> {
        Sample {
            prediction: self.prediction.as_deref(),
            reference: &self.reference,
            references: &self.references,
            other_args,
            graded: None,
        }
    }
}
