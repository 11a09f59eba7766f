//! The persistent per-item cache: model outputs and extractions in one SQLite file.
//!
//! Durability: WAL mode with `synchronous=NORMAL`. A committed batch survives the process being
//! killed (SIGKILL, crash); on power loss the last transactions committed before the WAL was
//! checkpointed or synced may be lost, never corrupted. A busy timeout lets two evaluations share
//! one file. Each batch is one transaction, committed before the next batch starts.
//!
//! Only successful outputs are stored; failures are never cached as answers. Extractions are
//! keyed by extractor id and version, so a changed rule re-scores without re-running the model.

mod error;
mod key;

use std::{
    path::{Path, PathBuf},
    rc::Rc,
    time::Duration,
};

use rusqlite::{params_from_iter, types::Value, Connection, OptionalExtension, TransactionBehavior};

pub use error::{CacheError, CacheProblem};
pub use key::{item_key, CacheKey, KeyContext, KeyHasher, KeyMap};

/// A cached model output.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedOutput {
    pub raw_output: String,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub latency_us: u64,
    /// The plugin's per-item details (a JSON object), if it gave any.
    pub details: Option<String>,
}

/// A cached extraction.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedExtraction {
    pub prediction: Option<String>,
}

/// One output to store.
pub struct NewOutput<'a> {
    pub key: CacheKey,
    pub model: &'a str,
    pub output: CachedOutput,
}

/// Summary for `karma-host cache info`.
#[derive(Debug, Clone)]
pub struct CacheStats {
    pub outputs: u64,
    pub extractions: u64,
    pub models: Vec<(String, u64)>,
    pub bytes: u64,
}

const SCHEMA_VERSION: &str = "4";

/// How long to wait for another process holding the file: 60 s, or
/// `KARMA_CACHE_BUSY_TIMEOUT_SECS`.
fn busy_timeout() -> Duration {
    let seconds = std::env::var(crate::env_vars::KARMA_CACHE_BUSY_TIMEOUT_SECS)
        .ok()
        .and_then(|value| value.trim().parse::<u64>().ok())
        .unwrap_or(60)
        // SQLite takes milliseconds as an int: a day is plenty.
        .min(86_400);
    Duration::from_secs(seconds)
}

/// Connection settings and tables. The extraction made when an output is stored lives in the
/// output's row (one page written per item instead of two); extractions made later, under
/// another rule version, go to `extractions` (clustered on the key: WITHOUT ROWID, one B-tree
/// instead of table plus index). Keys are random hashes, so the page cache is sized for the
/// working set and the WAL is checkpointed less often.
///
/// New outputs are first appended to `pending_outputs`, in commit order: a batch's commit then
/// writes one or two pages instead of one per item (random keys land on random pages, and at
/// batch size 8 the WAL writes were most of a cold-cache run). [`Cache::merge_pending`] moves
/// them into `outputs` in key order, many per transaction, when a run ends and whenever a cache
/// is opened, so outputs a killed run committed are found by the next one.
const SCHEMA: &str = "PRAGMA journal_mode = WAL;
     PRAGMA synchronous = NORMAL;
     PRAGMA cache_size = -65536;
     PRAGMA wal_autocheckpoint = 10000;
     CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS extractions (
         output_key BLOB NOT NULL,
         extractor TEXT NOT NULL,
         version INTEGER NOT NULL,
         prediction TEXT,
         PRIMARY KEY (output_key, extractor, version)
     ) WITHOUT ROWID;";

/// The output tables (see [`SCHEMA`]). `outputs` is a rowid table whose rowid is the key's
/// first 8 bytes: integer seeks, with no key comparisons inside the B-tree, made warm-cache
/// lookups the cheaper half of a run. The full key is kept and checked, so two keys sharing
/// 8 bytes (any such pair among a million outputs: about 3 in 10^8) cost a miss, never a
/// wrong answer.
fn output_tables() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS outputs (id INTEGER PRIMARY KEY, {OUTPUT_ROW});
         CREATE TABLE IF NOT EXISTS pending_outputs (seq INTEGER PRIMARY KEY, id INTEGER NOT NULL, {OUTPUT_ROW});"
    )
}

/// The columns both output tables have after their own key columns.
const OUTPUT_ROW: &str =
    "key BLOB NOT NULL, model TEXT NOT NULL, raw_output TEXT NOT NULL, prompt_tokens INTEGER,
     completion_tokens INTEGER, latency_us INTEGER NOT NULL, created_at INTEGER NOT NULL, extractor TEXT,
     extractor_version INTEGER, prediction TEXT, details TEXT";

/// Pending outputs moved per merge transaction: bounds the WAL a merge writes.
const MERGE_CHUNK: i64 = 50_000;

/// The columns `outputs` and `pending_outputs` share.
const OUTPUT_COLUMNS: &str =
    "id, key, model, raw_output, prompt_tokens, completion_tokens, latency_us, created_at,
     extractor, extractor_version, prediction, details";

/// The columns of a version 3 output row (before `details`).
const V3_OUTPUT_COLUMNS: &str =
    "id, key, model, raw_output, prompt_tokens, completion_tokens, latency_us, created_at,
     extractor, extractor_version, prediction";

/// The rowid of `key` in `outputs`.
fn row_id(key: &CacheKey) -> i64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&key.0[..8]);
    i64::from_le_bytes(first)
}

/// Opens a connection with what every use of it needs: the `rarray` table-valued function
/// (a lookup passes its keys as one array parameter, without a statement per key count) and
/// a busy timeout so concurrent evaluations wait for each other.
fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    rusqlite::vtab::array::load_module(&connection)?;
    connection.busy_timeout(busy_timeout())?;
    Ok(connection)
}

/// An open cache file.
pub struct Cache {
    connection: Connection,
    path: PathBuf,
}

impl Cache {
    /// Opens (creating if needed) the cache at `path`.
    pub fn open(path: &Path) -> Result<Cache, CacheError> {
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|error| CacheError {
                path: path.to_owned(),
                problem: CacheProblem::Folder(error),
            })?;
        }
        let wrap = |source| CacheError::sqlite(path, source);
        let connection = connect(path).map_err(wrap)?;
        // Two processes creating the same file at once can find it locked while the other
        // switches it to WAL or creates the tables, in ways SQLite reports as BUSY without
        // waiting on the busy handler: retry within the busy timeout.
        let deadline = std::time::Instant::now() + busy_timeout();
        while let Err(error) = connection.execute_batch(SCHEMA) {
            let busy = matches!(
                error.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            );
            if !busy || std::time::Instant::now() > deadline {
                return Err(wrap(error));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut cache = Cache { connection, path: path.to_owned() };
        cache.upgrade_schema()?;
        cache.merge_pending()?;
        Ok(cache)
    }

    /// A second connection to the same file (for lookups on another thread).
    pub fn reopen(&self) -> Result<Cache, CacheError> {
        let wrap = |source| CacheError::sqlite(&self.path, source);
        let connection = connect(&self.path).map_err(wrap)?;
        // Its own page cache, as large as the writer's: a lookup touches pages all over the file.
        connection.execute_batch("PRAGMA cache_size = -65536;").map_err(wrap)?;
        Ok(Cache { connection, path: self.path.clone() })
    }

    /// Creates the output tables of a new file, or converts a version 2 file (outputs keyed
    /// by the whole key) in one transaction; refuses versions it does not know.
    fn upgrade_schema(&mut self) -> Result<(), CacheError> {
        let path = self.path.clone();
        let wrap = |source| CacheError::sqlite(&path, source);
        let transaction =
            self.connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(wrap)?;
        let version: Option<String> = transaction
            .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |row| row.get(0))
            .optional()
            .map_err(wrap)?;
        match version.as_deref() {
            None => {
                transaction.execute_batch(&output_tables()).map_err(wrap)?;
                transaction
                    .execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?1)", [SCHEMA_VERSION])
                    .map_err(wrap)?;
            }
            Some(SCHEMA_VERSION) => {}
            // Version 4 added the plugin's per-item details; older rows have none.
            Some("3") => {
                transaction
                    .execute_batch(
                        "ALTER TABLE outputs ADD COLUMN details TEXT;
                         ALTER TABLE pending_outputs ADD COLUMN details TEXT;
                         UPDATE meta SET value = '4' WHERE key = 'schema_version';",
                    )
                    .map_err(wrap)?;
            }
            Some("2") => {
                transaction
                    .execute_batch(
                        "ALTER TABLE outputs RENAME TO outputs_v2;
                         DROP TABLE IF EXISTS pending_outputs;",
                    )
                    .map_err(wrap)?;
                transaction.execute_batch(&output_tables()).map_err(wrap)?;
                {
                    let mut old = transaction
                        .prepare(
                            "SELECT key, model, raw_output, prompt_tokens, completion_tokens, latency_us, created_at,
                                    extractor, extractor_version, prediction FROM outputs_v2",
                        )
                        .map_err(wrap)?;
                    let mut insert = transaction
                        .prepare(&format!(
                            "INSERT OR REPLACE INTO outputs ({V3_OUTPUT_COLUMNS})
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                        ))
                        .map_err(wrap)?;
                    let mut rows = old.query([]).map_err(wrap)?;
                    while let Some(row) = rows.next().map_err(wrap)? {
                        let key: Vec<u8> = row.get(0).map_err(wrap)?;
                        let Ok(key) = <[u8; 32]>::try_from(key.as_slice()) else { continue };
                        let mut values: Vec<rusqlite::types::Value> =
                            vec![row_id(&CacheKey(key)).into(), key.to_vec().into()];
                        for column in 1..10 {
                            values.push(row.get(column).map_err(wrap)?);
                        }
                        insert.execute(params_from_iter(values)).map_err(wrap)?;
                    }
                }
                transaction
                    .execute_batch(
                        "DROP TABLE outputs_v2; UPDATE meta SET value = '4' WHERE key = 'schema_version';",
                    )
                    .map_err(wrap)?;
            }
            Some(other) => {
                let ours: u64 = SCHEMA_VERSION.parse().unwrap_or(u64::MAX);
                let newer = other.trim().parse::<u64>().is_ok_and(|version| version > ours);
                let problem = if newer {
                    CacheProblem::NewerSchema(other.to_owned())
                } else {
                    CacheProblem::UnknownSchema(other.to_owned())
                };
                return Err(CacheError { path: path.clone(), problem });
            }
        }
        transaction.commit().map_err(wrap)
    }

    /// Moves committed outputs from `pending_outputs` into `outputs` (a later output for the
    /// same key replaces an earlier one), in transactions of [`MERGE_CHUNK`] rows.
    pub fn merge_pending(&mut self) -> Result<(), CacheError> {
        let path = self.path.clone();
        let wrap = |source| CacheError::sqlite(&path, source);
        loop {
            let transaction =
                self.connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(wrap)?;
            let first: Option<i64> = transaction
                .query_row("SELECT MIN(seq) FROM pending_outputs", [], |row| row.get(0))
                .map_err(wrap)?;
            let Some(first) = first else {
                return transaction.commit().map_err(wrap);
            };
            let last = first + MERGE_CHUNK - 1;
            transaction
                .execute(
                    &format!(
                        "INSERT OR REPLACE INTO outputs ({OUTPUT_COLUMNS})
                         SELECT {OUTPUT_COLUMNS} FROM pending_outputs WHERE seq <= ?1 ORDER BY id, seq"
                    ),
                    [last],
                )
                .map_err(wrap)?;
            transaction.execute("DELETE FROM pending_outputs WHERE seq <= ?1", [last]).map_err(wrap)?;
            transaction.commit().map_err(wrap)?;
        }
    }

    fn wrap(&self, source: rusqlite::Error) -> CacheError {
        CacheError::sqlite(&self.path, source)
    }

    /// Looks up many keys at once, with each output's extraction under `extractor`/`version`
    /// when one was stored (a changed rule version finds none, so the output is re-scored).
    pub fn get_outputs_with_extractions(
        &self,
        keys: &[CacheKey],
        extractor: &str,
        version: u32,
    ) -> Result<KeyMap<(CachedOutput, Option<CachedExtraction>)>, CacheError> {
        let wrap = |error| self.wrap(error);
        let mut found = KeyMap::with_capacity_and_hasher(keys.len(), Default::default());
        // Extractions made at store time sit in the output's row; only outputs stored under
        // another rule need the `extractions` table (a second lookup, usually skipped).
        let mut elsewhere = Vec::new();
        let wanted: KeyMap<()> = keys.iter().map(|key| (*key, ())).collect();
        // One seek per key, in row order: neighbouring seeks share the B-tree's upper pages.
        let mut ids: Vec<i64> = keys.iter().map(row_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let ids: Rc<Vec<Value>> = Rc::new(ids.into_iter().map(Value::Integer).collect());
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT key, raw_output, prompt_tokens, completion_tokens, latency_us,
                        IFNULL(extractor = ?1 AND extractor_version = ?2, 0), prediction, details
                 FROM rarray(?3) AS wanted CROSS JOIN outputs ON outputs.id = wanted.value",
            )
            .map_err(wrap)?;
        let mut rows =
            statement.query(rusqlite::params![extractor, i64::from(version), ids]).map_err(wrap)?;
        while let Some(row) = rows.next().map_err(wrap)? {
            // A row whose key only shares its first 8 bytes with one asked for is another
            // item's: it matches no wanted key.
            let Ok(key) =
                <[u8; 32]>::try_from(row.get_ref(0).and_then(|key| Ok(key.as_blob()?)).map_err(wrap)?)
            else {
                continue;
            };
            let key = CacheKey(key);
            if !wanted.contains_key(&key) {
                continue;
            }
            let read = || -> rusqlite::Result<_> {
                let output = CachedOutput {
                    raw_output: row.get(1)?,
                    prompt_tokens: row.get::<_, Option<i64>>(2)?.map(|value| value as u64),
                    completion_tokens: row.get::<_, Option<i64>>(3)?.map(|value| value as u64),
                    latency_us: row.get::<_, i64>(4)? as u64,
                    details: row.get(7)?,
                };
                let extraction = match row.get::<_, bool>(5)? {
                    true => Some(CachedExtraction { prediction: row.get(6)? }),
                    false => None,
                };
                Ok((output, extraction))
            };
            let (output, extraction) = read().map_err(wrap)?;
            if extraction.is_none() {
                elsewhere.push(Value::Blob(key.0.to_vec()));
            }
            found.insert(key, (output, extraction));
        }
        if elsewhere.is_empty() {
            return Ok(found);
        }
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT output_key, prediction FROM extractions
                 WHERE extractor = ?1 AND version = ?2 AND output_key IN rarray(?3)",
            )
            .map_err(wrap)?;
        let mut rows = statement
            .query(rusqlite::params![extractor, i64::from(version), Rc::new(elsewhere)])
            .map_err(wrap)?;
        while let Some(row) = rows.next().map_err(wrap)? {
            let (key, prediction): (Vec<u8>, Option<String>) =
                (row.get(0).map_err(wrap)?, row.get(1).map_err(wrap)?);
            if let Ok(key) = <[u8; 32]>::try_from(key.as_slice()) {
                if let Some((_, extraction)) = found.get_mut(&CacheKey(key)) {
                    *extraction = Some(CachedExtraction { prediction });
                }
            }
        }
        Ok(found)
    }

    /// Stores a batch's outputs and extractions in one transaction.
    pub fn store_batch(
        &mut self,
        outputs: &[NewOutput<'_>],
        extractions: &[(CacheKey, Option<String>)],
        extractor: &str,
        version: u32,
    ) -> Result<(), CacheError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let path = self.path.clone();
        let wrap = |source| CacheError::sqlite(&path, source);
        // IMMEDIATE: take the write lock up front, so a concurrent writer makes us wait (busy
        // handler) instead of failing on a read-to-write upgrade.
        let transaction =
            self.connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(wrap)?;
        {
            // An extraction of an output stored in the same batch is written into its row.
            let mut inline: KeyMap<&Option<String>> =
                extractions.iter().map(|(key, prediction)| (*key, prediction)).collect();
            let mut insert_output = transaction
                .prepare_cached(
                    "INSERT INTO pending_outputs (id, key, model, raw_output, prompt_tokens, completion_tokens, latency_us,
                                                  created_at, extractor, extractor_version, prediction, details)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )
                .map_err(wrap)?;
            for new in outputs {
                let prediction = inline.remove(&new.key);
                insert_output
                    .execute(rusqlite::params![
                        row_id(&new.key),
                        new.key.0.as_slice(),
                        new.model,
                        new.output.raw_output,
                        new.output.prompt_tokens.map(|value| value as i64),
                        new.output.completion_tokens.map(|value| value as i64),
                        new.output.latency_us as i64,
                        now,
                        prediction.map(|_| extractor),
                        prediction.map(|_| i64::from(version)),
                        prediction.and_then(|prediction| prediction.as_deref()),
                        new.output.details.as_deref(),
                    ])
                    .map_err(wrap)?;
            }
            let mut insert_extraction = transaction
                .prepare_cached(
                    "INSERT OR REPLACE INTO extractions (output_key, extractor, version, prediction) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(wrap)?;
            for (key, prediction) in extractions.iter().filter(|(key, _)| inline.contains_key(key)) {
                insert_extraction
                    .execute(rusqlite::params![key.0.as_slice(), extractor, i64::from(version), prediction])
                    .map_err(wrap)?;
            }
        }
        transaction.commit().map_err(wrap)
    }

    /// Counts for `cache info`.
    pub fn stats(&self) -> Result<CacheStats, CacheError> {
        let count = |sql: &str| -> Result<u64, CacheError> {
            self.connection
                .query_row(sql, [], |row| row.get::<_, i64>(0))
                .map(|value| value as u64)
                .map_err(|error| self.wrap(error))
        };
        let mut statement = self
            .connection
            .prepare(
                "SELECT model, COUNT(*) FROM (SELECT model FROM outputs UNION ALL SELECT model FROM pending_outputs)
                 GROUP BY model ORDER BY model",
            )
            .map_err(|error| self.wrap(error))?;
        let models = statement
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64)))
            .map_err(|error| self.wrap(error))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| self.wrap(error))?;
        let bytes = ["", "-wal", "-shm"]
            .iter()
            .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", self.path.display())).ok())
            .map(|metadata| metadata.len())
            .sum();
        Ok(CacheStats {
            // Pending rows are another live run's, not yet merged.
            outputs: count("SELECT COUNT(*) FROM outputs")? + count("SELECT COUNT(*) FROM pending_outputs")?,
            extractions: count("SELECT COUNT(*) FROM extractions")?
                + count("SELECT COUNT(*) FROM outputs WHERE extractor IS NOT NULL")?,
            models,
            bytes,
        })
    }

    /// Deletes everything (or one model's outputs and their extractions).
    pub fn clear(&mut self, model: Option<&str>) -> Result<u64, CacheError> {
        let path = self.path.clone();
        let wrap = |source| CacheError::sqlite(&path, source);
        // IMMEDIATE: take the write lock up front, so a concurrent writer makes us wait (busy
        // handler) instead of failing on a read-to-write upgrade.
        let transaction =
            self.connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(wrap)?;
        let removed = match model {
            Some(model) => {
                transaction
                    .execute(
                        "DELETE FROM extractions WHERE output_key IN (SELECT key FROM outputs WHERE model = ?1)",
                        [model],
                    )
                    .map_err(wrap)?;
                transaction.execute("DELETE FROM pending_outputs WHERE model = ?1", [model]).map_err(wrap)?
                    + transaction.execute("DELETE FROM outputs WHERE model = ?1", [model]).map_err(wrap)?
            }
            None => {
                transaction.execute("DELETE FROM extractions", []).map_err(wrap)?;
                transaction.execute("DELETE FROM pending_outputs", []).map_err(wrap)?
                    + transaction.execute("DELETE FROM outputs", []).map_err(wrap)?
            }
        };
        transaction.commit().map_err(wrap)?;
        self.connection.execute_batch("VACUUM").map_err(wrap)?;
        Ok(removed as u64)
    }
}

#[cfg(test)]
mod tests;
