//! Progress bars on stderr (items, items/s, cache hits); silent when not a terminal or with
//! `--no-progress`.

use std::cell::Cell;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::engine::Reporter;

pub(super) struct Progress {
    bar: Option<ProgressBar>,
    hits: Cell<u64>,
}

impl Progress {
    pub(super) fn new(enabled: bool) -> Self {
        let bar = enabled.then(|| ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()));
        Progress { bar, hits: Cell::new(0) }
    }

    /// A bar with an ETA when the total is known, else a counter.
    fn set_total(&self, total: Option<u64>) {
        let Some(bar) = &self.bar else { return };
        match total {
            Some(total) => {
                bar.set_length(total);
                bar.set_style(
                    ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} ({rate}, eta {eta}) {msg}")
                        .map(with_rate)
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
            }
            None => {
                // `reset` keeps the previous dataset's length: drop it.
                bar.unset_length();
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {prefix} {pos} items ({rate}, {elapsed}) {msg}")
                        .map(with_rate)
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
            }
        }
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `{rate}`: whole items per second (indicatif's `{per_sec}` prints four decimals).
fn with_rate(style: ProgressStyle) -> ProgressStyle {
    style.with_key("rate", |state: &ProgressState, out: &mut dyn std::fmt::Write| {
        let _ = write!(out, "{:.0} items/s", state.per_sec());
    })
}

impl Reporter for Progress {
    fn dataset_started(&self, name: &str, total: Option<u64>) {
        self.hits.set(0);
        if let Some(bar) = &self.bar {
            bar.reset();
            bar.set_prefix(name.to_owned());
        }
        self.set_total(total);
    }

    fn wants_row_counts(&self) -> bool {
        self.bar.is_some()
    }

    fn dataset_rows(&self, rows: u64) {
        self.set_total(Some(rows));
    }

    fn batch_done(&self, items: u64, cache_hits: u64) {
        self.hits.set(self.hits.get() + cache_hits);
        if let Some(bar) = &self.bar {
            bar.inc(items);
            bar.set_message(format!("{} cached", self.hits.get()));
        }
    }

    fn dataset_finished(&self, name: &str) {
        if let Some(bar) = &self.bar {
            bar.println(format!("{name}: {} items, {} cached", bar.position(), self.hits.get()));
        }
    }
}
