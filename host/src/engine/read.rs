//! The reading side of a dataset: rows to items, answer keys and cache keys, a window at a
//! time, on a thread of its own. A row that cannot become an item is a bad row: recorded, and
//! reading goes on (unless `--strict`).

use std::{collections::HashSet, hash::BuildHasherDefault, path::PathBuf};

use super::{
    outcome::{BadRowError, BadRowRecord, BAD_ROWS_LISTED},
    DatasetPlan, Scoring,
};
use crate::{
    cache::{item_key, CacheKey, CachedExtraction, CachedOutput, KeyContext, KeyHasher, KeyMap},
    datasets::{
        row::RowValue,
        source::{RowReader, SourceError},
        task::{BuildContext, BuildState, TaskFamily, TaskItem},
    },
};

/// An item and what scoring needs of the row it was built from.
pub type Pending = TaskItem;

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
pub struct IdCounts {
    pub duplicates: u64,
    pub duplicate_examples: Vec<String>,
    /// Rows whose `id` was null, an object or a list (identified by row number instead).
    pub from_row_number: u64,
}

/// Ids tracked for repeats (8 bytes each, 128 MiB at the cap); later rows are not checked.
const IDS_TRACKED: usize = 16 << 20;

/// Repeated ids, found without a hash set on the reading path: each id's 64-bit hash is
/// appended to a list (a hash-set insert per row, a cache miss each, was a tenth of a cache-off
/// run's reading), the list is sorted once at the end, and only when it holds repeats are the
/// rows read again for the ids to show. (Two ids sharing a hash among a billion rows: about 3%;
/// it would only miscount a warning.)
#[derive(Default)]
struct IdTracker {
    hashes: Vec<u64>,
    from_row_number: u64,
    /// Set only on the second reading, which collects example ids.
    examples: Option<RepeatExamples>,
}

type IdHash = BuildHasherDefault<KeyHasher>;

/// The repeated hashes, those met so far on the second reading, and the ids shown for them.
#[derive(Default)]
struct RepeatExamples {
    repeated: HashSet<u64, IdHash>,
    met: HashSet<u64, IdHash>,
    ids: Vec<String>,
}

impl IdTracker {
    fn note(&mut self, row: &RowValue<'_>, id: &str) {
        match row.get("id") {
            // Rows without an id are numbered by position, which cannot repeat.
            None => return,
            Some(RowValue::Null | RowValue::Object(_) | RowValue::List(_)) => {
                self.from_row_number += 1;
                return;
            }
            Some(_) => {}
        }
        // FNV-1a: ids are short, and SipHash cost a few percent of reading.
        let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        match &mut self.examples {
            None if self.hashes.len() < IDS_TRACKED => self.hashes.push(hash),
            None => {}
            Some(seen) => {
                let repeat = seen.repeated.contains(&hash) && !seen.met.insert(hash);
                if repeat && seen.ids.len() < BAD_ROWS_LISTED {
                    seen.ids.push(id.to_owned());
                }
            }
        }
    }

    /// The number of rows whose id an earlier row had, and those repeated hashes.
    fn repeats(&mut self) -> (u64, HashSet<u64, IdHash>) {
        self.hashes.sort_unstable();
        let mut repeated = HashSet::default();
        let mut count = 0;
        for pair in self.hashes.windows(2) {
            if pair[0] == pair[1] {
                count += 1;
                repeated.insert(pair[0]);
            }
        }
        (count, repeated)
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
        let mut items = ItemReader::new(self.dataset, self.scoring, files.clone(), self.limit, self.strict);
        loop {
            let window = self.next_window(&mut items);
            let entries = |window: &Window| window.pending.len() + window.bad_rows.len();
            // A row may give several items (AMQA's variants), so a full window can run over.
            let last = !matches!(&window, Ok(window) if entries(window) >= self.window_size);
            let empty = matches!(&window, Ok(window) if entries(window) == 0);
            if empty || windows.send(window).is_err() || last {
                break;
            }
        }
        let (duplicates, repeated) = items.ids.repeats();
        let mut counts = IdCounts {
            duplicates,
            duplicate_examples: Vec::new(),
            from_row_number: items.ids.from_row_number,
        };
        if duplicates > 0 {
            counts.duplicate_examples = self.repeated_ids(files, repeated, items.taken);
        }
        counts
    }

    /// The ids of the first repeats (in row order) among the first `rows` rows, read again.
    fn repeated_ids(&self, files: Vec<PathBuf>, repeated: HashSet<u64, IdHash>, rows: u64) -> Vec<String> {
        let mut items = ItemReader::new(self.dataset, self.scoring, files, rows, self.strict);
        items.ids.examples = Some(RepeatExamples { repeated, ..RepeatExamples::default() });
        let mut scratch = Vec::with_capacity(1);
        let full = |items: &ItemReader<'_>| {
            items.ids.examples.as_ref().is_some_and(|seen| seen.ids.len() >= BAD_ROWS_LISTED)
        };
        while !full(&items) && matches!(items.next(&mut scratch), Ok(Some(_))) {
            scratch.clear();
        }
        items.ids.examples.map(|seen| seen.ids).unwrap_or_default()
    }

    fn next_window(&self, items: &mut ItemReader<'_>) -> Result<Window, String> {
        let mut pending = Vec::with_capacity(self.window_size);
        let mut bad_rows = Vec::new();
        while pending.len() + bad_rows.len() < self.window_size {
            match items.next(&mut pending).map_err(|error| error.to_string())? {
                None => break,
                Some(Read::Item) => {}
                Some(Read::BadRow { error, id }) => {
                    let mut bad = bad_row_record(&self.dataset.name, &error);
                    bad.id = id;
                    bad_rows.push((pending.len(), bad));
                }
            }
        }
        let mut window = Window { pending, keys: Vec::new(), hits: CacheHits::default(), bad_rows };
        window.keys = match &self.key_context {
            Some(context) => window.keys_under(context, self.shows_expected),
            None => vec![CacheKey([0; 32]); window.pending.len()],
        };
        Ok(window)
    }
}

/// What reading a row gave.
pub enum Read {
    /// An item, pushed onto the caller's list (built in place: an item is a few hundred bytes,
    /// and this runs for every row).
    Item,
    /// A row that could not become an item (recorded as a failure; reading goes on).
    BadRow { error: SourceError, id: Option<String> },
}

/// Rows to items, as the run and `--dry-run` both read them: rows the dataset's filters leave
/// out are skipped (they do not count toward `--max-samples`), bad rows are reported (and do
/// count), and under `--strict` the first bad row stops reading.
pub struct ItemReader<'a> {
    rows: RowReader,
    family: &'static dyn TaskFamily,
    context: BuildContext<'a>,
    state: BuildState,
    /// Rows read so far, left-out ones included: the next row's 0-based position, which is its
    /// item id (unique, and stable when filters change nothing before it).
    position: u64,
    /// Items and bad rows handed out, against `limit`.
    taken: u64,
    limit: u64,
    strict: bool,
    ids: IdTracker,
    /// Whether the family reads media (whose relative paths start at the row's file).
    reads_media: bool,
}

impl<'a> ItemReader<'a> {
    pub fn new(
        dataset: &'a DatasetPlan,
        scoring: Scoring,
        files: Vec<PathBuf>,
        limit: u64,
        strict: bool,
    ) -> Self {
        ItemReader {
            rows: RowReader::new(files),
            family: dataset.definition.family,
            context: BuildContext {
                template_override: dataset.template_override(),
                scoring,
                args: &dataset.args,
            },
            state: BuildState::default(),
            position: 0,
            taken: 0,
            limit,
            strict,
            ids: IdTracker::default(),
            reads_media: dataset.definition.family.modalities() != [karma_plugin_api::abi::Modality::Text],
        }
    }

    /// The next item (pushed onto `items`) or bad row; `Ok(None)` when the rows or the limit
    /// run out; an error when reading cannot go on (an unreadable file, or a bad row under
    /// `--strict`).
    pub fn next(&mut self, items: &mut Vec<Pending>) -> Result<Option<Read>, SourceError> {
        while self.taken < self.limit {
            let Some(row) = self.rows.next_row() else { return Ok(None) };
            let index = self.position;
            self.position += 1;
            let row = match row {
                Ok(row) => row,
                Err(error) if error.is_bad_row() && !self.strict => {
                    self.taken += 1;
                    return Ok(Some(Read::BadRow { error, id: None }));
                }
                Err(error) => return Err(error),
            };
            if !self.family.admits(&row.value, &self.context) {
                continue;
            }
            self.taken += 1;
            if self.reads_media {
                let folder = row.path.parent().unwrap_or(std::path::Path::new(""));
                if self.state.media_root.0 != folder {
                    self.state.media_root.0 = folder.to_owned();
                }
            }
            let first = items.len();
            return match self.family.build_into(&row.value, index, &self.context, &mut self.state, items) {
                Ok(()) => {
                    if let Some(built) = items.get(first) {
                        self.ids.note(&row.value, &built.key.source_id);
                    }
                    Ok(Some(Read::Item))
                }
                Err(problem) if !self.strict => Ok(Some(Read::BadRow {
                    error: SourceError::bad_field(&row, &problem),
                    id: row_id(&row.value),
                })),
                Err(problem) => Err(SourceError::bad_field(&row, &problem)),
            };
        }
        Ok(None)
    }
}

fn bad_row_record(dataset: &str, error: &SourceError) -> BadRowRecord {
    let (file, row, message) = match error {
        SourceError::Row { path, row, message } => (path.display().to_string(), *row, message.clone()),
        other => (String::new(), 0, other.to_string()),
    };
    BadRowRecord {
        dataset: dataset.to_owned(),
        row,
        file,
        id: None,
        error: BadRowError { code: "bad_row", message },
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
