//! Progress callbacks; the CLI implements them with progress bars.

/// Receives progress events. Implementations must be cheap: they are called per batch.
pub trait Reporter {
    /// A dataset starts; `total` items when known (`--max-samples`).
    fn dataset_started(&self, name: &str, total: Option<u64>);
    /// Whether [`Reporter::dataset_rows`] is wanted: counting rows can cost a pass over the
    /// files, worth it only for a display.
    fn wants_row_counts(&self) -> bool {
        false
    }
    /// The started dataset has `rows` rows to evaluate (capped by `--max-samples`).
    fn dataset_rows(&self, _rows: u64) {}
    /// A batch finished: items done, of which served from the cache.
    fn batch_done(&self, items: u64, cache_hits: u64);
    /// The dataset finished.
    fn dataset_finished(&self, name: &str);
}

/// Reports nothing.
pub struct NoReport;

impl Reporter for NoReport {
    fn dataset_started(&self, _name: &str, _total: Option<u64>) {}
    fn batch_done(&self, _items: u64, _cache_hits: u64) {}
    fn dataset_finished(&self, _name: &str) {}
}
