//! Progress bars on stderr (items, items/s, cache hits); silent when not a terminal or with
//! `--no-progress`.

use std::cell::Cell;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::Reporter;

pub(super) struct Progress {
    bar: Option<ProgressBar>,
    hits: Cell<u64>,
}

impl Progress {
    pub(super) fn new(enabled: bool) -> Self {
        let bar = enabled.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} {pos} items ({per_sec}, {elapsed}) {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar
        });
        Progress { bar, hits: Cell::new(0) }
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Reporter for Progress {
    fn dataset_started(&self, name: &str, total: Option<u64>) {
        self.hits.set(0);
        if let Some(bar) = &self.bar {
            bar.reset();
            bar.set_length(total.unwrap_or(0));
            if total.is_some() {
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta}) {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
            }
            bar.set_prefix(name.to_owned());
        }
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
