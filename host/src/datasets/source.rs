//! Row sources: local files (`.jsonl`, `.json`, `.csv`, `.parquet`, or a directory of them) read
//! as a stream of JSON rows, with errors that name the file and the row.

use std::{
    fs::File,
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
};

use parquet::file::reader::SerializedFileReader;
use serde_json::Value;
use sha2::{Digest, Sha256};

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
    #[error("`{}` row {row}: {message}", path.display())]
    Row { path: PathBuf, row: u64, message: String },
}

/// A row and where it came from.
#[derive(Debug)]
pub struct SourceRow {
    pub path: PathBuf,
    /// 1-based row (line) number within its file.
    pub row: u64,
    pub value: Value,
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
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    for path in files {
        let mut file = File::open(path).map_err(|source| SourceError::Io { path: path.clone(), source })?;
        loop {
            let read =
                file.read(&mut buffer).map_err(|source| SourceError::Io { path: path.clone(), source })?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
        }
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// Streams the rows of `files` in order.
pub fn rows(files: Vec<PathBuf>) -> impl Iterator<Item = Result<SourceRow, SourceError>> {
    files.into_iter().flat_map(|path| -> Box<dyn Iterator<Item = Result<SourceRow, SourceError>>> {
        match file_rows(&path) {
            Ok(rows) => rows,
            Err(error) => Box::new(std::iter::once(Err(error))),
        }
    })
}

fn file_rows(path: &Path) -> Result<Box<dyn Iterator<Item = Result<SourceRow, SourceError>>>, SourceError> {
    let io = |source| SourceError::Io { path: path.to_owned(), source };
    let file = File::open(path).map_err(io)?;
    let owned = path.to_owned();
    match path.extension().and_then(|extension| extension.to_str()) {
        Some("jsonl") => Ok(Box::new(json_lines(owned, BufReader::new(file)))),
        Some("json") => {
            let mut reader = BufReader::new(file);
            let starts_with_array = loop {
                let buffer = reader.fill_buf().map_err(io)?;
                match buffer.iter().position(|byte| !byte.is_ascii_whitespace()) {
                    Some(index) => break buffer[index] == b'[',
                    None if buffer.is_empty() => break false,
                    None => {
                        let len = buffer.len();
                        reader.consume(len);
                    }
                }
            };
            if starts_with_array {
                // A JSON array cannot be streamed row by row with serde_json; prefer .jsonl or
                // .parquet for large datasets.
                let values: Vec<Value> =
                    serde_json::from_reader(reader).map_err(|error| SourceError::Row {
                        path: owned.clone(),
                        row: error.line() as u64,
                        message: error.to_string(),
                    })?;
                Ok(Box::new(
                    values
                        .into_iter()
                        .zip(1..)
                        .map(move |(value, row)| Ok(SourceRow { path: owned.clone(), row, value })),
                ))
            } else {
                Ok(Box::new(json_lines(owned, reader)))
            }
        }
        Some("csv") => {
            let mut reader = csv::Reader::from_reader(file);
            let headers = reader
                .headers()
                .map_err(|error| SourceError::Row {
                    path: owned.clone(),
                    row: 1,
                    message: error.to_string(),
                })?
                .clone();
            Ok(Box::new(reader.into_records().zip(2..).map(move |(record, row)| {
                let record = record.map_err(|error| SourceError::Row {
                    path: owned.clone(),
                    row,
                    message: error.to_string(),
                })?;
                let object = headers
                    .iter()
                    .zip(record.iter())
                    .map(|(key, value)| (key.to_owned(), Value::String(value.to_owned())))
                    .collect();
                Ok(SourceRow { path: owned.clone(), row, value: Value::Object(object) })
            })))
        }
        Some("parquet") => {
            let reader = SerializedFileReader::new(file).map_err(|error| SourceError::Row {
                path: owned.clone(),
                row: 0,
                message: format!("not a readable parquet file: {error}"),
            })?;
            let rows = reader.into_iter().zip(1..).map(move |(row, number)| match row {
                Ok(row) => Ok(SourceRow { path: owned.clone(), row: number, value: row.to_json_value() }),
                Err(error) => {
                    Err(SourceError::Row { path: owned.clone(), row: number, message: error.to_string() })
                }
            });
            Ok(Box::new(rows))
        }
        _ => Err(SourceError::Unsupported { path: path.to_owned() }),
    }
}

fn json_lines(
    path: PathBuf,
    reader: impl BufRead + 'static,
) -> impl Iterator<Item = Result<SourceRow, SourceError>> {
    reader.lines().zip(1..).filter_map(move |(line, row)| match line {
        Err(source) => Some(Err(SourceError::Io { path: path.clone(), source })),
        Ok(text) if text.trim().is_empty() => None,
        Ok(text) => Some(
            serde_json::from_str(&text).map(|value| SourceRow { path: path.clone(), row, value }).map_err(
                |error| SourceError::Row {
                    path: path.clone(),
                    row,
                    message: format!("invalid JSON: {error}"),
                },
            ),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_csv_and_json_arrays_stream_rows_with_numbers() {
        let directory = tempfile::tempdir().unwrap();
        let jsonl = directory.path().join("a.jsonl");
        std::fs::write(&jsonl, "{\"q\": 1}\n\n{\"q\": 2}\n{broken\n").unwrap();
        let rows: Vec<_> = rows(vec![jsonl.clone()]).collect();
        assert_eq!(rows[0].as_ref().unwrap().value["q"], 1);
        assert_eq!(rows[1].as_ref().unwrap().row, 3);
        let error = rows[2].as_ref().unwrap_err().to_string();
        assert!(error.starts_with(&format!("`{}` row 4: invalid JSON", jsonl.display())), "{error}");

        let csv_path = directory.path().join("b.csv");
        std::fs::write(&csv_path, "question,answer\n\"Q, with comma\",B\n").unwrap();
        let row = rows_of(&csv_path).remove(0);
        assert_eq!((row.row, row.value["question"].as_str()), (2, Some("Q, with comma")));

        let json = directory.path().join("c.json");
        std::fs::write(&json, " [ {\"q\": 1}, {\"q\": 2} ]").unwrap();
        assert_eq!(rows_of(&json).len(), 2);
        assert_eq!(data_files(directory.path()).unwrap(), vec![jsonl, csv_path, json]);
    }

    fn rows_of(path: &Path) -> Vec<SourceRow> {
        rows(vec![path.to_owned()]).map(Result::unwrap).collect()
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
