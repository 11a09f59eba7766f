//! `rubric_evaluation`: HealthBench's score, from a judge's verdict on each rubric criterion
//! (`grading/`). Per answer: the points of the criteria met (met negative criteria subtract)
//! over the total positive points. Overall: the mean clipped to [0, 1], with a bootstrap
//! standard error, as simple-evals reports HealthBench; the breakdown is per tag (the example's
//! themes get the answer's score, each rubric tag the score over the criteria that carry it).

use std::sync::Arc;

use super::{Metric, MetricArgs, Sample};
use crate::grading::rubric::{clipped_mean, example_scores};

#[derive(Clone, Copy, Debug)]
pub struct RubricEvaluation;

impl RubricEvaluation {
    fn scores(sample: &Sample<'_>) -> Option<crate::grading::rubric::ExampleScores> {
        let graded = sample.graded?;
        example_scores(graded.criteria, graded.met, graded.example_tags)
    }
}

impl Metric for RubricEvaluation {
    fn name(&self) -> &'static str {
        "rubric_evaluation"
    }

    fn description(&self) -> &'static str {
        "rubric points a judge found met over the positive points (negative criteria subtract); mean clipped to [0, 1], per tag"
    }

    fn is_proportion(&self) -> bool {
        false
    }

    fn needs_grades(&self) -> bool {
        true
    }

    fn sample_stats(&self, sample: &Sample<'_>) -> Vec<f64> {
        // An answer the engine scores was graded and has positive points (rows without are
        // bad rows), so a missing score cannot happen; NaN keeps it visible if it does.
        vec![Self::scores(sample).map_or(f64::NAN, |scores| scores.overall)]
    }

    fn aggregate(&self, stats: &[&[f64]]) -> Option<f64> {
        let values: Vec<f64> = stats.iter().map(|stat| stat[0]).filter(|value| value.is_finite()).collect();
        clipped_mean(&values)
    }

    fn keyed_stats(&self, sample: &Sample<'_>) -> Vec<(String, Vec<f64>)> {
        Self::scores(sample)
            .map(|scores| scores.by_tag.into_iter().map(|(tag, score)| (tag, vec![score])).collect())
            .unwrap_or_default()
    }

    fn configure(&self, _args: &MetricArgs) -> Arc<dyn Metric> {
        Arc::new(*self)
    }
}
