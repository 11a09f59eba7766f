//! Progress bars on stderr (items, items/s, cache hits, and the plugin's own status line, such
//! as an API model's requests in flight and retries); silent when not a terminal or with
//! `--no-progress`.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc, Mutex,
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::{engine::Reporter, plugins::host_api};

pub(super) struct Progress {
    bar: Option<ProgressBar>,
    /// Shared with the status sink, which redraws the message from another thread.
    message: Arc<Message>,
}

/// The bar's message: cache hits and the latest plugin status.
#[derive(Default)]
struct Message {
    hits: AtomicU64,
    status: Mutex<String>,
}

impl Message {
    fn render(&self) -> String {
        let hits = self.hits.load(Ordering::Relaxed);
        let status = self.status.lock().unwrap_or_else(|poison| poison.into_inner());
        if status.is_empty() {
            format!("{hits} cached")
        } else {
            format!("{hits} cached · {status}")
        }
    }
}

impl Progress {
    pub(super) fn new(enabled: bool) -> Self {
        let bar = enabled.then(|| ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()));
        let message = Arc::new(Message::default());
        if let Some(bar) = &bar {
            let (bar, message) = (bar.clone(), Arc::clone(&message));
            host_api::set_status_sink(Some(Arc::new(move |_plugin: &str, status: &str| {
                *message.status.lock().unwrap_or_else(|poison| poison.into_inner()) = status.to_owned();
                bar.set_message(message.render());
            })));
        }
        Progress { bar, message }
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
        host_api::set_status_sink(None);
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
        self.message.hits.store(0, Ordering::Relaxed);
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
        self.message.hits.fetch_add(cache_hits, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(items);
            bar.set_message(self.message.render());
        }
    }

    fn dataset_finished(&self, name: &str) {
        if let Some(bar) = &self.bar {
            let hits = self.message.hits.load(Ordering::Relaxed);
            bar.println(format!("{name}: {} items, {hits} cached", bar.position()));
        }
    }
}
