//! Row sources: local files (`.jsonl`, `.json`, `.csv`, `.parquet`, or a directory of them) read
//! as a stream of JSON rows, with errors that name the file and the row.

use std::{
    borrow::Cow,
    fs::File,
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
};

use parquet::file::reader::{FileReader, SerializedFileReader};
use sha2::{Digest, Sha256};

use super::row::RowValue;

/// A problem reading a dataset source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("dataset file `{}` does not exist", path.display())]
    Missing { path: PathBuf },
    #[error("cannot read `{}`: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("`{}` has no supported data files (.jsonl, .json, .csv, .parquet)", path.display())]
    NoFiles { path: PathBuf },
    #[error("`{}` has an unsupported extension (use .jsonl, .json, .csv or .parquet)", path.display())]
    Unsupported { path: PathBuf },
    /// One row is bad; the rows after it can still be read.
    #[error("`{}` row {row}: {message}", path.display())]
    Row { path: PathBuf, row: u64, message: String },
    /// The file cannot be read (on) at all.
    #[error("`{}`: {message}", path.display())]
    Unreadable { path: PathBuf, message: String },
}

impl SourceError {
    /// A row read fine whose `problem` field makes it unusable.
    pub fn bad_field(row: &SourceRow<'_>, problem: &super::record::RowError) -> Self {
        SourceError::Row {
            path: row.path.to_owned(),
            row: row.row,
            message: format!("field `{}`: {}", problem.field, problem.problem),
        }
    }

    /// Whether only one row is lost: reading goes on with the next one.
    pub fn is_bad_row(&self) -> bool {
        matches!(self, SourceError::Row { .. })
    }
}

/// A row and where it came from. Its text may borrow from the reader's buffer, so it lives
/// until the next row is read.
#[derive(Debug)]
pub struct SourceRow<'a> {
    pub path: &'a Path,
    /// 1-based row (line) number within its file.
    pub row: u64,
    pub value: RowValue<'a>,
}

const EXTENSIONS: [&str; 4] = ["jsonl", "json", "csv", "parquet"];

fn supported(path: &Path) -> bool {
    path.extension()
        .and_then(|extension| extension.to_str())
        .is_some_and(|extension| EXTENSIONS.contains(&extension))
}

/// The data files behind `path`: the file itself, or a directory's supported files sorted by
/// name (recursively).
pub fn data_files(path: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let metadata = std::fs::metadata(path).map_err(|_| SourceError::Missing { path: path.to_owned() })?;
    if metadata.is_file() {
        return if supported(path) {
            Ok(vec![path.to_owned()])
        } else {
            Err(SourceError::Unsupported { path: path.to_owned() })
        };
    }
    let mut files = Vec::new();
    let mut pending = vec![path.to_owned()];
    while let Some(directory) = pending.pop() {
        let entries = std::fs::read_dir(&directory)
            .map_err(|source| SourceError::Io { path: directory.clone(), source })?;
        for entry in entries {
            let entry = entry.map_err(|source| SourceError::Io { path: directory.clone(), source })?;
            let entry_path = entry.path();
            if entry_path.is_dir() {
                pending.push(entry_path);
            } else if supported(&entry_path) {
                files.push(entry_path);
            }
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(SourceError::NoFiles { path: path.to_owned() });
    }
    Ok(files)
}

/// sha256 over the files' bytes in order: the revision of a local dataset.
pub fn content_hash(files: &[PathBuf]) -> Result<String, SourceError> {
    content_hash_unless(files, &|| false).map(|hash| hash.unwrap_or_default())
}

/// [`content_hash`], given up (`None`) as soon as `stop` says so: an interrupted run does not
/// wait for a full read of a large dataset.
pub fn content_hash_unless(
    files: &[PathBuf],
    stop: &dyn Fn() -> bool,
) -> Result<Option<String>, SourceError> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    for path in files {
        let mut file = File::open(path).map_err(|source| SourceError::Io { path: path.clone(), source })?;
        loop {
            if stop() {
                return Ok(None);
            }
            let read =
                file.read(&mut buffer).map_err(|source| SourceError::Io { path: path.clone(), source })?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
        }
    }
    Ok(Some(format!("{:x}", hasher.finalize())))
}

/// Whether a JSON-lines line holds nothing: only JSON's whitespace (spaces, tabs, CR, LF; also
/// form feeds). Such lines are skipped, and not counted.
fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// How many rows `files` hold (at most `limit`), when that is cheap to know: a JSON-lines
/// file's non-blank lines (one fast pass over its bytes, stopping at `limit`), a parquet file's
/// row count (its footer). `None` when a file is CSV (quoted newlines make lines a poor count)
/// or a JSON array, or unreadable (the evaluation reports that). Progress bars use it for their
/// ETA.
pub fn count_rows(files: &[PathBuf], limit: Option<u64>) -> Option<u64> {
    let limit = limit.unwrap_or(u64::MAX);
    let mut total = 0u64;
    for path in files {
        total = total.saturating_add(count_file_rows(path, limit - total)?);
        if total >= limit {
            return Some(limit);
        }
    }
    Some(total)
}

/// The rows of one file, or `limit` if it has at least that many.
fn count_file_rows(path: &Path, limit: u64) -> Option<u64> {
    let extension = path.extension().and_then(|extension| extension.to_str())?;
    if extension == "parquet" {
        let reader = SerializedFileReader::new(File::open(path).ok()?).ok()?;
        return u64::try_from(reader.metadata().file_metadata().num_rows()).ok();
    }
    if extension != "jsonl" && extension != "json" {
        return None;
    }
    let mut file = BufReader::new(File::open(path).ok()?);
    skip_byte_order_mark(&mut file).ok()?;
    let mut buffer = vec![0u8; 1 << 20];
    // A line may span reads: whether its part so far holds text.
    let (mut rows, mut line_has_text, mut first_byte) = (0u64, false, None);
    while rows < limit {
        let read = file.read(&mut buffer).ok()?;
        if read == 0 {
            break;
        }
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', &buffer[..read]).chain([read]) {
            let line = &buffer[start..end];
            line_has_text |= !is_blank(line);
            first_byte = first_byte.or_else(|| line.iter().copied().find(|byte| !byte.is_ascii_whitespace()));
            if end < read {
                rows += u64::from(line_has_text);
                line_has_text = false;
            }
            start = end + 1;
        }
    }
    // A `.json` file holding one array is not read line by line.
    let array = extension == "json" && first_byte == Some(b'[');
    (!array).then_some(rows.saturating_add(u64::from(line_has_text)).min(limit))
}

/// Reads the rows of `files` in order, one at a time: a row borrows the reader's line buffer
/// (no copy of its text) until the next row is read.
pub struct RowReader {
    files: std::vec::IntoIter<PathBuf>,
    current: Option<FileRows>,
}

impl RowReader {
    pub fn new(files: Vec<PathBuf>) -> Self {
        RowReader { files: files.into_iter(), current: None }
    }

    /// The next row, an error, or `None` at the end of the last file. After a bad row
    /// ([`SourceError::is_bad_row`]) the next call reads on in the same file; after any other
    /// error it goes on with the next file.
    pub fn next_row(&mut self) -> Option<Result<SourceRow<'_>, SourceError>> {
        loop {
            let file = match &mut self.current {
                Some(file) => file,
                None => match FileRows::open(self.files.next()?) {
                    Ok(file) => self.current.insert(file),
                    Err(error) => return Some(Err(error)),
                },
            };
            match file.advance() {
                Ok(true) => break,
                Ok(false) => self.current = None,
                Err(error) => {
                    if !error.is_bad_row() {
                        self.current = None;
                    }
                    return Some(Err(error));
                }
            }
        }
        self.current.as_mut().map(FileRows::take)
    }
}

/// The rows of one file.
struct FileRows {
    path: PathBuf,
    kind: FileKind,
}

enum FileKind {
    /// JSON lines: the current line, parsed when it is taken.
    Lines { reader: Box<dyn BufRead>, line: String, row: u64 },
    /// Rows parsed as they are read (CSV, parquet) or whole (a JSON array), owning their text.
    Values {
        rows: Box<dyn Iterator<Item = Result<(u64, RowValue<'static>), SourceError>>>,
        current: (u64, RowValue<'static>),
    },
}

impl FileRows {
    fn open(path: PathBuf) -> Result<FileRows, SourceError> {
        let io = |source| SourceError::Io { path: path.clone(), source };
        let file = File::open(&path).map_err(io)?;
        let values = |rows| Ok(FileKind::Values { rows, current: (0, RowValue::Null) });
        let kind = match path.extension().and_then(|extension| extension.to_str()) {
            Some("jsonl") => {
                let mut reader = BufReader::new(file);
                skip_byte_order_mark(&mut reader).map_err(io)?;
                Ok(lines(reader, 0))
            }
            Some("json") => {
                let mut reader = BufReader::new(file);
                skip_byte_order_mark(&mut reader).map_err(io)?;
                // Leading whitespace is skipped to see whether the file is one array; the lines
                // skipped still count in row numbers.
                let mut skipped_lines = 0u64;
                let starts_with_array = loop {
                    let buffer = reader.fill_buf().map_err(io)?;
                    match buffer.iter().position(|byte| !byte.is_ascii_whitespace()) {
                        Some(index) => break buffer[index] == b'[',
                        None if buffer.is_empty() => break false,
                        None => {
                            let len = buffer.len();
                            skipped_lines += memchr::memchr_iter(b'\n', buffer).count() as u64;
                            reader.consume(len);
                        }
                    }
                };
                if starts_with_array {
                    // A JSON array cannot be streamed row by row with serde_json; prefer .jsonl or
                    // .parquet for large datasets. A broken element ends the file: how many rows
                    // follow it cannot be known, so it is not one bad row but an unreadable file.
                    let (rows, broken) = json_array(reader);
                    let owned = path.clone();
                    let broken = broken.map(move |(row, message)| {
                        Err(SourceError::Unreadable {
                            path: owned,
                            message: format!(
                                "row {row}: invalid JSON: {message}; the rest of the array cannot be read"
                            ),
                        })
                    });
                    values(Box::new(
                        rows.into_iter()
                            .zip(1..)
                            .map(|(value, row)| Ok((row, RowValue::from_json(value))))
                            .chain(broken),
                    ))
                } else {
                    Ok(lines(reader, skipped_lines))
                }
            }
            Some("csv") => {
                let mut reader = csv::Reader::from_reader(file);
                let headers = reader
                    .headers()
                    .map_err(|error| SourceError::Unreadable {
                        path: path.clone(),
                        message: format!("row 1 (the header) cannot be read: {error}"),
                    })?
                    .clone();
                let owned = path.clone();
                values(Box::new(reader.into_records().zip(2..).map(move |(record, row)| {
                    let record = record.map_err(|error| SourceError::Row {
                        path: owned.clone(),
                        row,
                        message: error.to_string(),
                    })?;
                    let entries = headers
                        .iter()
                        .zip(record.iter())
                        .map(|(key, value)| {
                            (Cow::Owned(key.to_owned()), RowValue::Text(Cow::Owned(value.to_owned())))
                        })
                        .collect();
                    Ok((row, RowValue::Object(entries)))
                })))
            }
            Some("parquet") => {
                let reader = SerializedFileReader::new(file).map_err(|error| SourceError::Unreadable {
                    path: path.clone(),
                    message: format!("not a readable parquet file: {error}"),
                })?;
                let owned = path.clone();
                values(Box::new(reader.into_iter().zip(1..).map(move |(row, number)| match row {
                    Ok(row) => Ok((number, super::parquet_row::row_value(&row))),
                    // A column chunk that cannot be decoded ends the file.
                    Err(error) => Err(SourceError::Unreadable {
                        path: owned.clone(),
                        message: format!("row {number} cannot be read (nor the rest of the file): {error}"),
                    }),
                })))
            }
            _ => Err(SourceError::Unsupported { path: path.clone() }),
        }?;
        Ok(FileRows { path, kind })
    }

    /// Moves to the next row; `false` at the end of the file.
    fn advance(&mut self) -> Result<bool, SourceError> {
        match &mut self.kind {
            FileKind::Lines { reader, line, row } => loop {
                line.clear();
                let read = reader.read_line(line).map_err(|source| match source.kind() {
                    // The line's bytes were consumed: reading goes on with the next one.
                    std::io::ErrorKind::InvalidData => {
                        *row += 1;
                        SourceError::Row {
                            path: self.path.clone(),
                            row: *row,
                            message: format!("not UTF-8 text: {source}"),
                        }
                    }
                    _ => SourceError::Io { path: self.path.clone(), source },
                })?;
                if read == 0 {
                    return Ok(false);
                }
                *row += 1;
                if is_blank(line.as_bytes()) {
                    continue;
                }
                return Ok(true);
            },
            FileKind::Values { rows, current } => match rows.next().transpose()? {
                Some(next) => {
                    *current = next;
                    Ok(true)
                }
                None => Ok(false),
            },
        }
    }

    /// The row [`FileRows::advance`] moved to.
    fn take(&mut self) -> Result<SourceRow<'_>, SourceError> {
        let path = &self.path;
        match &mut self.kind {
            FileKind::Lines { line, row, .. } => serde_json::from_str(line.trim_end_matches(['\n', '\r']))
                .map(|value| SourceRow { path, row: *row, value })
                .map_err(|error| SourceError::Row {
                    path: path.clone(),
                    row: *row,
                    message: format!("invalid JSON: {error}"),
                }),
            FileKind::Values { current, .. } => {
                let (row, value) = std::mem::replace(current, (0, RowValue::Null));
                Ok(SourceRow { path, row, value })
            }
        }
    }
}

/// The elements of a JSON array, up to a broken one: then also its 1-based position and the
/// parser's message.
fn json_array(reader: impl Read) -> (Vec<serde_json::Value>, Option<(u64, String)>) {
    use serde::de::{Deserializer as _, SeqAccess, Visitor};

    struct Elements<'a>(&'a mut Vec<serde_json::Value>);
    impl<'de> Visitor<'de> for Elements<'_> {
        type Value = ();
        fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str("an array of row objects")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<(), A::Error> {
            while let Some(value) = sequence.next_element()? {
                self.0.push(value);
            }
            Ok(())
        }
    }
    let mut rows = Vec::new();
    let mut deserializer = serde_json::Deserializer::from_reader(reader);
    let result = deserializer.deserialize_seq(Elements(&mut rows)).and_then(|()| deserializer.end());
    let broken = result.err().map(|error| (rows.len() as u64 + 1, error.to_string()));
    (rows, broken)
}

/// UTF-8's byte order mark, which editors on Windows put at the start of text files.
const BYTE_ORDER_MARK: &[u8] = b"\xef\xbb\xbf";

/// Skips a byte order mark at the start of `reader` (JSON has none; the CSV reader skips its own).
fn skip_byte_order_mark(reader: &mut impl BufRead) -> std::io::Result<()> {
    if reader.fill_buf()?.starts_with(BYTE_ORDER_MARK) {
        reader.consume(BYTE_ORDER_MARK.len());
    }
    Ok(())
}

/// JSON lines from `reader`, after `lines_before` lines already read.
fn lines(reader: impl BufRead + 'static, lines_before: u64) -> FileKind {
    FileKind::Lines { reader: Box::new(reader), line: String::new(), row: lines_before }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_csv_and_json_arrays_stream_rows_with_numbers() {
        let directory = tempfile::tempdir().unwrap();
        let jsonl = directory.path().join("a.jsonl");
        std::fs::write(&jsonl, "{\"q\": 1}\n\n{\"q\": 2}\r\n{broken\n{\"q\": 4}").unwrap();
        let rows = rows_of(&jsonl);
        assert_eq!(rows[0], Ok((1, r#"{"q":1}"#.to_owned())));
        assert_eq!(rows[1], Ok((3, r#"{"q":2}"#.to_owned())));
        let error = rows[2].as_ref().unwrap_err();
        assert!(error.starts_with(&format!("`{}` row 4: invalid JSON", jsonl.display())), "{error}");
        assert_eq!(rows[3], Ok((5, r#"{"q":4}"#.to_owned())), "a line without a newline at the end");

        let csv_path = directory.path().join("b.csv");
        std::fs::write(&csv_path, "question,answer\n\"Q, with comma\",B\n").unwrap();
        assert_eq!(rows_of(&csv_path), [Ok((2, r#"{"question":"Q, with comma","answer":"B"}"#.to_owned()))]);

        let json = directory.path().join("c.json");
        std::fs::write(&json, " [ {\"q\": 1}, {\"q\": 2} ]").unwrap();
        assert_eq!(rows_of(&json).len(), 2);
        assert_eq!(data_files(directory.path()).unwrap(), vec![jsonl, csv_path, json]);
    }

    #[test]
    fn row_counts_skip_blank_lines_and_are_unknown_for_arrays_and_csv() {
        let directory = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = directory.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let lines = write("a.jsonl", "{}\n\n  \n{}\r\n{}");
        let object_lines = write("b.json", "\n {}\n{}\n");
        assert_eq!(count_rows(std::slice::from_ref(&lines), None), Some(3), "the last line has no newline");
        assert_eq!(count_rows(&[lines.clone(), object_lines.clone()], None), Some(5));
        assert_eq!(count_rows(&[lines.clone(), object_lines.clone()], Some(4)), Some(4), "capped");
        assert_eq!(count_rows(&[object_lines.clone(), write("c.json", " [{}, {}]")], None), None);
        assert_eq!(count_rows(&[object_lines, write("d.csv", "q\nx\n")], None), None);
        // Only a `.json` file can be one array; a JSON-lines file starting with `[` is lines.
        assert_eq!(count_rows(&[write("e.jsonl", "[1]\n[2]\n")], None), Some(2));
        // The rows read are the rows counted.
        assert_eq!(rows_of(&lines).len(), 3);
        // A byte order mark is not text.
        assert_eq!(count_rows(&[write("f.json", "\u{feff}[{}]")], None), None);
        assert_eq!(count_rows(&[write("g.jsonl", "\u{feff}\n{}\n")], None), Some(1));
    }

    #[test]
    fn row_numbers_count_skipped_leading_lines_byte_order_marks_are_skipped_and_invalid_utf8_is_named() {
        let directory = tempfile::tempdir().unwrap();
        let json = directory.path().join("a.json");
        let mut text = "\n".repeat(10_000);
        text.push_str("{\"q\": 1}\n");
        std::fs::write(&json, text).unwrap();
        assert_eq!(rows_of(&json), [Ok((10_001, r#"{"q":1}"#.to_owned()))]);
        for name in ["bom.jsonl", "bom.json"] {
            let path = directory.path().join(name);
            std::fs::write(&path, "\u{feff}{\"q\": 1}\n").unwrap();
            assert_eq!(rows_of(&path), [Ok((1, r#"{"q":1}"#.to_owned()))], "{name}");
        }
        let array = directory.path().join("array.json");
        std::fs::write(&array, "\u{feff}[{\"q\": 1}]").unwrap();
        assert_eq!(rows_of(&array), [Ok((1, r#"{"q":1}"#.to_owned()))]);
        let jsonl = directory.path().join("b.jsonl");
        std::fs::write(&jsonl, b"{}\n{\"q\": \"\xff\"}\n").unwrap();
        let rows = rows_of(&jsonl);
        let error = rows[1].as_ref().unwrap_err();
        assert!(error.starts_with(&format!("`{}` row 2: not UTF-8 text", jsonl.display())), "{error}");
    }

    /// Every row of `path` as its line number and JSON text, or its error.
    fn rows_of(path: &Path) -> Vec<Result<(u64, String), String>> {
        let mut reader = RowReader::new(vec![path.to_owned()]);
        let mut rows = Vec::new();
        while let Some(row) = reader.next_row() {
            rows.push(row.map(|row| (row.row, row.value.to_string())).map_err(|error| error.to_string()));
        }
        rows
    }

    #[test]
    fn missing_and_unsupported_paths_are_named() {
        let error = data_files(Path::new("/nonexistent/x.jsonl")).unwrap_err();
        assert_eq!(error.to_string(), "dataset file `/nonexistent/x.jsonl` does not exist");
        let directory = tempfile::tempdir().unwrap();
        let text = directory.path().join("notes.txt");
        std::fs::write(&text, "x").unwrap();
        assert!(data_files(&text).unwrap_err().to_string().contains("unsupported extension"));
        assert!(data_files(directory.path()).unwrap_err().to_string().contains("no supported data files"));
    }
}
