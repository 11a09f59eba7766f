//! The worker-process backend (`--isolation worker`): the plugin runs in a child process of
//! this binary (`karma-host worker`), so a model that segfaults, aborts, exits, runs out of
//! memory or hangs takes down only its worker.
//!
//! A batch whose worker dies or passes the batch timeout is retried in a fresh worker, split
//! in halves until the item that kills it is alone; an item that kills a worker twice on its
//! own is quarantined: it fails with the cause, and every other item is scored.

pub mod batch_frame;
mod process;
pub mod protocol;
pub mod serve;
mod shared_media;

use std::time::Duration;

pub use process::{signal_name, QUIET, WORKER_BINARY, WORKER_VERBOSITY};
use process::{Fault, WorkerProcess};
use protocol::Request;

use super::{Backend, CallError, Completion, ContinuationScores, ItemFailure, RegisteredModel, ScoreRequest};
use crate::datasets::item::OwnedItem;

/// Workers that die while loading, in a row, before the run gives up on the model.
const LOAD_ATTEMPTS: u32 = 3;

/// One call to a worker on some of a batch: its orderly outcome, or how the worker failed.
type WorkerCall<'a, W, R> = dyn FnMut(&mut WorkerProcess, &[W], Duration) -> Result<Result<Vec<Result<R, ItemFailure>>, CallError>, Fault>
    + 'a;

/// A model served by a worker process, restarted as needed.
pub struct WorkerBackend {
    model: String,
    plugin: std::path::PathBuf,
    config_json: String,
    batch_timeout: Duration,
    process: Option<WorkerProcess>,
    /// Whether the engine asked for `load`: a fresh worker then loads before its first batch.
    loaded: bool,
    /// Set when workers kept dying at load: every later call fails the same way at once.
    given_up: Option<String>,
}

impl WorkerBackend {
    /// Starts a worker and creates the instance in it (which validates the configuration).
    pub fn start(
        model: &RegisteredModel,
        config_json: &str,
        batch_timeout: Duration,
    ) -> Result<Self, CallError> {
        let mut backend = WorkerBackend {
            model: model.meta.name.clone(),
            plugin: model.plugin_path.clone(),
            config_json: config_json.to_owned(),
            batch_timeout,
            process: None,
            loaded: false,
            given_up: None,
        };
        backend.revive(LOAD_ATTEMPTS)?;
        Ok(backend)
    }

    fn running(&mut self) -> Result<&mut WorkerProcess, CallError> {
        if self.process.is_none() {
            self.revive(LOAD_ATTEMPTS)?;
        }
        let (model, plugin) = (&self.model, &self.plugin);
        self.process.as_mut().ok_or_else(|| CallError::Unusable {
            model: model.clone(),
            plugin: plugin.clone(),
            problem: "no worker is running".to_owned(),
        })
    }

    /// A fresh worker with the instance created (and loaded, once the engine has loaded):
    /// `attempts` workers dying on the way are one clear failure, not a loop.
    fn revive(&mut self, attempts: u32) -> Result<(), CallError> {
        if let Some(problem) = &self.given_up {
            return Err(CallError::Unusable {
                model: self.model.clone(),
                plugin: self.plugin.clone(),
                problem: problem.clone(),
            });
        }
        self.process = None;
        let mut last = None;
        let first = LOAD_ATTEMPTS - attempts + 1;
        for attempt in first..=LOAD_ATTEMPTS {
            match self.start_one() {
                Ok(Ok(process)) => {
                    self.process = Some(process);
                    return Ok(());
                }
                Ok(Err(error)) => return Err(error),
                Err(fault) => {
                    tracing::warn!(
                        "model `{}`: the worker {fault} while starting (attempt {attempt} of {LOAD_ATTEMPTS})",
                        self.model
                    );
                    last = Some(fault);
                }
            }
        }
        let last = last.map_or_else(String::new, |fault| format!("; the last {fault}"));
        let problem =
            format!("{LOAD_ATTEMPTS} workers in a row died while starting or loading the model{last}");
        self.given_up = Some(problem.clone());
        Err(CallError::Unusable { model: self.model.clone(), plugin: self.plugin.clone(), problem })
    }

    /// One worker through create (and load): a fault, or the plugin's orderly answer.
    fn start_one(&self) -> Result<Result<WorkerProcess, CallError>, Fault> {
        let mut process = WorkerProcess::spawn().map_err(Fault::Spawn)?;
        let create = Request::Create {
            plugin: self.plugin.display().to_string(),
            model: self.model.clone(),
            config_json: self.config_json.clone(),
        };
        if let Err(error) = process.done(&create, self.batch_timeout)? {
            return Ok(Err(error));
        }
        if self.loaded {
            if let Err(error) = process.done(&Request::Load, self.batch_timeout)? {
                return Ok(Err(error));
            }
        }
        Ok(Ok(process))
    }

    fn fault_error(&self, doing: &str, fault: &Fault) -> CallError {
        CallError::Unusable {
            model: self.model.clone(),
            plugin: self.plugin.clone(),
            problem: format!("the worker {fault} while {doing}"),
        }
    }

    /// Runs `work` through `call`, isolating the items that kill workers (see the module docs).
    fn isolated<W, R>(
        &mut self,
        work: &[W],
        call: &mut WorkerCall<'_, W, R>,
    ) -> Result<Vec<Result<R, ItemFailure>>, CallError> {
        let timeout = self.batch_timeout;
        let fault = match call(self.running()?, work, timeout) {
            Ok(outcome) => return outcome,
            Err(fault) => fault,
        };
        self.process = None;
        tracing::warn!(
            "model `{}`: the worker {fault} on a batch of {}; retrying in a fresh worker{}",
            self.model,
            work.len(),
            if work.len() > 1 { ", in halves" } else { "" }
        );
        if work.len() > 1 {
            let (first, second) = work.split_at(work.len() / 2);
            let mut outcomes = self.isolated(first, call)?;
            outcomes.extend(self.isolated(second, call)?);
            return Ok(outcomes);
        }
        match call(self.running()?, work, timeout) {
            Ok(outcome) => outcome,
            Err(again) => {
                self.process = None;
                tracing::warn!(
                    "model `{}`: an item killed the worker twice ({again}); quarantined",
                    self.model
                );
                Ok(vec![Err(ItemFailure {
                    code: again.code().to_owned(),
                    message: format!(
                        "poison item, quarantined: the worker {again} on this item alone, twice"
                    ),
                })])
            }
        }
    }
}

impl Backend for WorkerBackend {
    /// Asked of the worker: plugin code runs there.
    fn scores_continuations(&mut self) -> Result<bool, CallError> {
        let timeout = self.batch_timeout;
        match self.running()?.flag(&Request::ScoresContinuations, timeout) {
            Ok(flag) => flag,
            Err(fault) => {
                self.process = None;
                Err(self.fault_error("answering which extensions it offers", &fault))
            }
        }
    }

    fn load(&mut self) -> Result<(), CallError> {
        let timeout = self.batch_timeout;
        let outcome = self.running()?.done(&Request::Load, timeout);
        self.loaded = true;
        match outcome {
            Ok(answer) => answer,
            // That was the first of the attempts; `revive` makes the others.
            Err(fault) => {
                tracing::warn!(
                    "model `{}`: the worker {fault} while loading (attempt 1 of {LOAD_ATTEMPTS})",
                    self.model
                );
                self.revive(LOAD_ATTEMPTS - 1)
            }
        }
    }

    fn generate(
        &mut self,
        items: &[&OwnedItem],
        show_expected_output: bool,
    ) -> Result<Vec<Result<Completion, ItemFailure>>, CallError> {
        self.isolated(items, &mut |process, items, timeout| {
            process.generate(items, show_expected_output, timeout)
        })
    }

    fn score_continuations(
        &mut self,
        requests: &[ScoreRequest<'_>],
    ) -> Result<Vec<Result<ContinuationScores, ItemFailure>>, CallError> {
        self.isolated(requests, &mut |process, requests, timeout| process.score(requests, timeout))
    }
}
