//! Scoring state: what the engine keeps per metric while a dataset runs.

use std::collections::BTreeMap;

use crate::metrics::{self, stratified, Sample, Score};

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
        /// The metric's own strata (`other_args` fields), replacing the dataset's groups.
        strata: Vec<String>,
        /// `(successes, count)` per stratum key (`country=NG`).
        by_stratum: BTreeMap<String, (f64, usize)>,
    },
    Samples {
        name: &'static str,
        metric: metrics::MetricHandle,
        stride: usize,
        stats: Vec<f64>,
        /// Subgroup index of each sample.
        groups: Vec<Option<u32>>,
        /// The metric's named sub-scores (`Metric::keyed_stats`): their samples' statistics.
        keyed: BTreeMap<String, Vec<f64>>,
    },
}

impl Accumulator {
    pub(super) fn new(metric: metrics::MetricHandle) -> Self {
        let name = metric.name();
        if metric.is_proportion() {
            Accumulator::Proportion {
                name,
                successes: 0.0,
                count: 0,
                groups: Vec::new(),
                strata: metric.strata(),
                by_stratum: BTreeMap::new(),
            }
        } else {
            Accumulator::Samples {
                name,
                metric,
                stride: 0,
                stats: Vec::new(),
                groups: Vec::new(),
                keyed: BTreeMap::new(),
            }
        }
    }

    pub(super) fn add(&mut self, metric: &dyn metrics::Metric, sample: &Sample<'_>, group: Option<u32>) {
        let stats = metric.sample_stats(sample);
        match self {
            Accumulator::Proportion { successes, count, groups, strata, by_stratum, .. } => {
                *successes += stats[0];
                *count += 1;
                if !strata.is_empty() {
                    for key in stratified::strata_keys(strata, sample.other_args) {
                        let entry = by_stratum.entry(key).or_default();
                        entry.0 += stats[0];
                        entry.1 += 1;
                    }
                } else if let Some(group) = group {
                    let group = group as usize;
                    if groups.len() <= group {
                        groups.resize(group + 1, (0.0, 0));
                    }
                    groups[group].0 += stats[0];
                    groups[group].1 += 1;
                }
            }
            Accumulator::Samples { stride, stats: all, groups, keyed, .. } => {
                *stride = stats.len();
                all.extend(stats);
                groups.push(group);
                for (part, stats) in metric.keyed_stats(sample) {
                    keyed.entry(part).or_default().extend(stats);
                }
            }
        }
    }

    /// The scores, overall and broken down (by the metric's strata, or by `group_names`, which
    /// the subgroup indices refer to).
    pub(super) fn scores(&self, group_names: &[String], seed: u64) -> Scores {
        match self {
            Accumulator::Proportion { name, successes, count, strata, by_stratum, .. }
                if !strata.is_empty() =>
            {
                let breakdown: BTreeMap<String, Score> = by_stratum
                    .iter()
                    .map(|(key, (successes, count))| {
                        (key.clone(), metrics::score_proportion(*successes, *count))
                    })
                    .collect();
                Scores {
                    name,
                    overall: metrics::score_proportion(*successes, *count),
                    disparity: stratified::disparity(strata, &breakdown),
                    breakdown,
                    by_groups: false,
                }
            }
            Accumulator::Proportion { name, successes, count, groups, .. } => {
                let breakdown = group_names
                    .iter()
                    .enumerate()
                    .map(|(index, group)| {
                        let (successes, count) = groups.get(index).copied().unwrap_or((0.0, 0));
                        (group.clone(), metrics::score_proportion(successes, count))
                    })
                    .collect();
                Scores {
                    name,
                    overall: metrics::score_proportion(*successes, *count),
                    breakdown,
                    disparity: BTreeMap::new(),
                    by_groups: true,
                }
            }
            Accumulator::Samples { name, metric, stride, stats, groups, keyed } => {
                let views: Vec<&[f64]> =
                    if *stride == 0 { Vec::new() } else { stats.chunks(*stride).collect() };
                if !keyed.is_empty() {
                    // Named sub-scores (rubric tags) are the breakdown, each over its own samples.
                    let breakdown = keyed
                        .iter()
                        .map(|(part, stats)| {
                            let views: Vec<&[f64]> = stats.chunks(*stride).collect();
                            (part.clone(), metrics::score_stats(metric.as_ref(), &views, seed))
                        })
                        .collect();
                    return Scores {
                        name,
                        overall: metrics::score_stats(metric.as_ref(), &views, seed),
                        breakdown,
                        disparity: BTreeMap::new(),
                        by_groups: false,
                    };
                }
                if !metric.parts().is_empty() {
                    // The metric's own parts (pair consistencies, confusion rates) are its breakdown.
                    let (overall, breakdown) = metrics::score_with_parts(metric.as_ref(), &views, seed);
                    return Scores { name, overall, breakdown, disparity: BTreeMap::new(), by_groups: false };
                }
                let breakdown = group_names
                    .iter()
                    .enumerate()
                    .map(|(index, group)| {
                        let members: Vec<&[f64]> = views
                            .iter()
                            .zip(groups)
                            .filter(|(_, group)| **group == Some(index as u32))
                            .map(|(view, _)| *view)
                            .collect();
                        (group.clone(), metrics::score_stats(metric.as_ref(), &members, seed))
                    })
                    .collect();
                Scores {
                    name,
                    overall: metrics::score_stats(metric.as_ref(), &views, seed),
                    breakdown,
                    disparity: BTreeMap::new(),
                    by_groups: true,
                }
            }
        }
    }
}

/// A metric's scores at the end of a dataset.
pub(super) struct Scores {
    pub name: &'static str,
    pub overall: Score,
    pub breakdown: BTreeMap<String, Score>,
    /// Per stratum field, the best group's score minus the worst's.
    pub disparity: BTreeMap<String, f64>,
    /// Whether the breakdown is by the dataset's groups (and so belongs in `subgroups`).
    pub by_groups: bool,
}
