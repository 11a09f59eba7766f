//! Scoring state: what the engine keeps per metric while a dataset runs.

use crate::metrics::{self, Sample, Score};

/// What scoring keeps per metric. Proportions keep counts (per subgroup too), so their memory
/// does not grow with the dataset; other metrics keep flat per-sample statistics for the
/// bootstrap, a few bytes per sample.
pub(super) enum Accumulator {
    Proportion {
        name: &'static str,
        successes: f64,
        count: usize,
        /// `(successes, count)` per subgroup index.
        groups: Vec<(f64, usize)>,
    },
    Samples {
        name: &'static str,
        metric: metrics::MetricHandle,
        stride: usize,
        stats: Vec<f64>,
        /// Subgroup index of each sample.
        groups: Vec<Option<u32>>,
    },
}

impl Accumulator {
    pub(super) fn new(metric: metrics::MetricHandle) -> Self {
        let name = metric.name();
        if metric.is_proportion() {
            Accumulator::Proportion { name, successes: 0.0, count: 0, groups: Vec::new() }
        } else {
            Accumulator::Samples { name, metric, stride: 0, stats: Vec::new(), groups: Vec::new() }
        }
    }

    pub(super) fn add(&mut self, metric: &dyn metrics::Metric, sample: &Sample<'_>, group: Option<u32>) {
        let stats = metric.sample_stats(sample);
        match self {
            Accumulator::Proportion { successes, count, groups, .. } => {
                *successes += stats[0];
                *count += 1;
                if let Some(group) = group {
                    let group = group as usize;
                    if groups.len() <= group {
                        groups.resize(group + 1, (0.0, 0));
                    }
                    groups[group].0 += stats[0];
                    groups[group].1 += 1;
                }
            }
            Accumulator::Samples { stride, stats: all, groups, .. } => {
                *stride = stats.len();
                all.extend(stats);
                groups.push(group);
            }
        }
    }

    /// The overall score and the score of each subgroup index.
    pub(super) fn scores(&self, group_count: usize, seed: u64) -> (&'static str, Score, Vec<Score>) {
        match self {
            Accumulator::Proportion { name, successes, count, groups } => {
                let per_group = (0..group_count)
                    .map(|index| {
                        let (successes, count) = groups.get(index).copied().unwrap_or((0.0, 0));
                        metrics::score_proportion(successes, count)
                    })
                    .collect();
                (name, metrics::score_proportion(*successes, *count), per_group)
            }
            Accumulator::Samples { name, metric, stride, stats, groups } => {
                let views: Vec<&[f64]> =
                    if *stride == 0 { Vec::new() } else { stats.chunks(*stride).collect() };
                let per_group = (0..group_count)
                    .map(|index| {
                        let members: Vec<&[f64]> = views
                            .iter()
                            .zip(groups)
                            .filter(|(_, group)| **group == Some(index as u32))
                            .map(|(view, _)| *view)
                            .collect();
                        metrics::score_stats(metric.as_ref(), &members, seed)
                    })
                    .collect();
                (name, metrics::score_stats(metric.as_ref(), &views, seed), per_group)
            }
        }
    }
}
