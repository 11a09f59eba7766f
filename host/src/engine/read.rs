//! The reading side of a dataset: rows to items, answer keys and cache keys, a window at a
//! time, on a thread of its own. A row that cannot become an item is a bad row: recorded, and
//! reading goes on (unless `--strict`).

use std::{
    collections::HashSet,
    hash::{BuildHasherDefault, Hasher},
    path::PathBuf,
};

use super::{
    outcome::{BadRowError, BadRowRecord, BAD_ROWS_LISTED},
    DatasetPlan, Scoring,
};
use crate::{
    cache::{item_key, CacheKey, CachedExtraction, CachedOutput, KeyContext, KeyHasher, KeyMap},
    datasets::{
        item::OwnedItem,
        row::RowValue,
        source::{RowReader, SourceError},
        task::{BuildContext, BuildState, ScoringKey},
    },
};

/// An item and what scoring needs of the row it was built from.
pub(super) struct Pending {
    pub key: ScoringKey,
    pub item: OwnedItem,
}

/// Rows are read and looked up in the cache a window at a time (one query for many keys);
/// misses go to the plugin in batches of `batch_size`, each committed before the next.
pub(super) const LOOKUP_WINDOW: usize = 512;

/// Windows the reading thread may prepare ahead of the evaluation.
pub(super) const WINDOWS_AHEAD: usize = 2;

/// A window of items with their cache keys, as the reading thread hands it over, and the
/// cached outputs the lookup thread found for it.
pub(super) struct Window {
    pub pending: Vec<Pending>,
    pub keys: Vec<CacheKey>,
    pub hits: CacheHits,
    /// Bad rows, each with the index in `pending` of the item that follows it (row order).
    pub bad_rows: Vec<(usize, BadRowRecord)>,
}

pub(super) type CacheHits = KeyMap<(CachedOutput, Option<CachedExtraction>)>;

/// The reading side of a dataset: rows to records, items and cache keys. It runs on its own
/// thread, a window or two ahead of the lookups, the plugin and the commits.
pub(super) struct WindowReader<'a> {
    pub dataset: &'a DatasetPlan,
    pub scoring: Scoring,
    /// Set when there is a cache: this thread hashes the keys (the lookup thread's SQLite
    /// seeks are the heavier half). Without a cache hashing every prompt would be wasted work.
    pub key_context: Option<KeyContext>,
    pub shows_expected: bool,
    pub limit: u64,
    pub window_size: usize,
    /// `--strict`: the first bad row fails the dataset.
    pub strict: bool,
}

/// What the reader noticed about the rows' ids.
#[derive(Default)]
pub(super) struct IdCounts {
    /// 64-bit hashes of the ids seen (two ids sharing one among a billion rows: about 3%; it
    /// would only miscount a warning).
    seen: HashSet<u64, BuildHasherDefault<KeyHasher>>,
    pub duplicates: u64,
    pub duplicate_examples: Vec<String>,
    /// Rows whose `id` was null, an object or a list (identified by row number instead).
    pub from_row_number: u64,
}

/// Ids tracked for repeats (8 bytes each, about 130 MiB at the cap); later rows are not checked.
const IDS_TRACKED: usize = 16 << 20;

impl IdCounts {
    fn note(&mut self, row: &RowValue<'_>, id: &str) {
        match row.get("id") {
            // Rows without an id are numbered by position, which cannot repeat.
            None => return,
            Some(RowValue::Null | RowValue::Object(_) | RowValue::List(_)) => {
                self.from_row_number += 1;
                return;
            }
            Some(_) if self.seen.len() >= IDS_TRACKED => return,
            Some(_) => {}
        }
        let mut hasher = std::hash::DefaultHasher::new();
        hasher.write(id.as_bytes());
        if !self.seen.insert(hasher.finish()) {
            self.duplicates += 1;
            if self.duplicate_examples.len() < BAD_ROWS_LISTED {
                self.duplicate_examples.push(id.to_owned());
            }
        }
    }
}

impl WindowReader<'_> {
    /// Sends windows until the rows (or `limit`) run out, a file cannot be read (its error is
    /// sent), or the evaluation stops listening. Returns what it noticed about ids.
    pub fn read(
        &self,
        files: Vec<PathBuf>,
        windows: std::sync::mpsc::SyncSender<Result<Window, String>>,
    ) -> IdCounts {
        let mut rows = RowReader::new(files);
        let mut state = BuildState::default();
        let mut ids = IdCounts::default();
        let mut next_index = 0u64;
        loop {
            let window = self.next_window(&mut rows, &mut state, &mut ids, &mut next_index);
            let entries = |window: &Window| window.pending.len() + window.bad_rows.len();
            let last = !matches!(&window, Ok(window) if entries(window) == self.window_size);
            let empty = matches!(&window, Ok(window) if entries(window) == 0);
            if empty || windows.send(window).is_err() || last {
                return ids;
            }
        }
    }

    fn next_window(
        &self,
        rows: &mut RowReader,
        state: &mut BuildState,
        ids: &mut IdCounts,
        next_index: &mut u64,
    ) -> Result<Window, String> {
        let family = self.dataset.definition.family;
        let context = BuildContext {
            template_override: self.dataset.template_override(),
            scoring: self.scoring,
            args: &self.dataset.args,
        };
        let mut pending = Vec::with_capacity(self.window_size);
        let mut bad_rows = Vec::new();
        while pending.len() + bad_rows.len() < self.window_size && *next_index < self.limit {
            let Some(row) = rows.next_row() else { break };
            // A bad row counts toward --max-samples like any other.
            let index = *next_index;
            *next_index += 1;
            let row = match row {
                Ok(row) => row,
                Err(error) if error.is_bad_row() && !self.strict => {
                    bad_rows.push((pending.len(), self.bad_row(&error)));
                    continue;
                }
                Err(error) => return Err(error.to_string()),
            };
            let built = match family.build(&row.value, index, &context, state) {
                Ok(built) => built,
                Err(problem) => {
                    let error = SourceError::bad_field(&row, &problem);
                    if self.strict {
                        return Err(error.to_string());
                    }
                    let mut bad = self.bad_row(&error);
                    bad.id = row_id(&row.value);
                    bad_rows.push((pending.len(), bad));
                    continue;
                }
            };
            ids.note(&row.value, &built.key.source_id);
            pending.push(Pending { key: built.key, item: built.item });
        }
        let mut window = Window { pending, keys: Vec::new(), hits: CacheHits::default(), bad_rows };
        window.keys = match &self.key_context {
            Some(context) => window.keys_under(context, self.shows_expected),
            None => vec![CacheKey([0; 32]); window.pending.len()],
        };
        Ok(window)
    }

    fn bad_row(&self, error: &SourceError) -> BadRowRecord {
        let (file, row, message) = match error {
            SourceError::Row { path, row, message } => (path.display().to_string(), *row, message.clone()),
            other => (String::new(), 0, other.to_string()),
        };
        BadRowRecord {
            dataset: self.dataset.name.clone(),
            row,
            file,
            id: None,
            error: BadRowError { code: "bad_row", message },
        }
    }
}

/// A row's own `id`, when it is text or a number.
fn row_id(row: &RowValue<'_>) -> Option<String> {
    match row.get("id")? {
        RowValue::Text(text) => Some(text.to_string()),
        RowValue::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

impl Window {
    fn keys_under(&self, context: &KeyContext, shows_expected: bool) -> Vec<CacheKey> {
        self.pending.iter().map(|pending| item_key(context, &pending.item, shows_expected)).collect()
    }
}
