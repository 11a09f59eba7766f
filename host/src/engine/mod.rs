//! The evaluation loop: for each dataset, rows → items → batches → cache lookup → plugin →
//! pairing by id → extraction → cache commit → samples; then metrics per dataset.
//!
//! Invariants:
//! * outputs are matched to items by id, never by position (a batch mixes cache hits and
//!   misses);
//! * a batch is committed to the cache before the next one starts, so a killed run loses at most
//!   the batch in flight;
//! * failed items (plugin errors, panics, broken output contracts) are recorded, never cached,
//!   never scored; an unparsable answer is a wrong answer, counted as unparsed;
//! * one failing dataset does not stop the others.

mod finish;
pub mod grading;
mod loglikelihood;
mod outcome;
pub mod plan;
mod processing;
mod read;
mod reporter;
mod run_dataset;
mod scoring;
pub mod usage;

use std::sync::atomic::{AtomicBool, Ordering};

pub use outcome::{DatasetOutcome, DatasetStatus, SampleLine, SampleRecord};
pub use plan::{CacheMode, DatasetPlan, DatasetSource, EvalPlan, ProcessorStep, Scoring};
pub use read::{ItemReader, Pending, Read};
pub use reporter::{NoReport, Reporter};

use crate::{
    cache::Cache,
    plugins::{Backend, CallError},
};

/// Set by the Ctrl-C handler; checked between batches.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Why the run could not start at all.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    #[error(transparent)]
    Model(#[from] CallError),
}

/// Runs every dataset of `plan`; `on_dataset_done` is called after each (to write results as
/// they complete) and `on_samples` with each batch's samples. `judge` is the judge model's
/// backend when `plan.judge` names one.
pub fn run(
    plan: &EvalPlan,
    backend: &mut dyn Backend,
    judge: Option<&mut dyn Backend>,
    reporter: &dyn Reporter,
    on_samples: &mut dyn FnMut(&[SampleLine]) -> std::io::Result<()>,
    on_dataset_done: &mut dyn FnMut(&DatasetOutcome),
) -> Result<Vec<DatasetOutcome>, EngineError> {
    let mut cache = match plan.cache {
        CacheMode::Off => None,
        CacheMode::Normal | CacheMode::Refresh => Some(Cache::open(&plan.cache_path)?),
    };
    let mut loaded = false;
    let mut judge = match (plan.judge.as_ref(), judge) {
        (Some(plan), Some(backend)) => Some(grading::Judge { plan, backend, loaded: false }),
        _ => None,
    };
    let mut outcomes = Vec::new();
    for dataset in &plan.datasets {
        let outcome = if interrupted() {
            DatasetOutcome::not_started(dataset, DatasetStatus::Interrupted)
        } else {
            let mut models =
                run_dataset::Models { backend: &mut *backend, loaded: &mut loaded, judge: judge.as_mut() };
            run_dataset::run(plan, dataset, &mut models, cache.as_mut(), reporter, on_samples)
        };
        on_dataset_done(&outcome);
        outcomes.push(outcome);
    }
    if let Some(cache) = cache.as_mut() {
        // Not fatal: what stays pending is merged when the cache is next opened.
        if let Err(error) = cache.merge_pending() {
            tracing::warn!("{error}; the outputs are kept and merged when the cache is next opened");
        }
    }
    Ok(outcomes)
}
