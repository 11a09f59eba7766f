//! Media in rows: images and recordings as the hub and local files carry them, turned into
//! [`MediaBlob`]s for the item.
//!
//! A value may be
//! * binary (a parquet BINARY column),
//! * a Hugging Face `Image`/`Audio` struct `{bytes, path}` (bytes win; a path alone is read),
//! * text: a `data:` URL, a path (relative to the data file's folder) ending in a media
//!   extension, or base64,
//! * a list of those (several images).
//!
//! The format is read from the bytes' signature, which the plugin can trust more than a file
//! name; the extension is the fallback.

use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::{item::MediaBlob, record::RowError, row::RowValue};

/// The extensions a text value must end in to be read as a path (anything else is base64).
const MEDIA_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "webp", "bmp", "tif", "tiff", "dcm", "wav", "flac", "mp3", "ogg", "oga",
    "opus", "m4a", "mp4", "webm", "mkv", "aac",
];

/// Where a row's relative media paths are resolved: the folder of the file it was read from.
#[derive(Clone, Debug, Default)]
pub struct MediaRoot(pub PathBuf);

/// The media of `field`, in order: none when the field is absent or null.
pub fn media_list(row: &RowValue<'_>, field: &str, root: &MediaRoot) -> Result<Vec<MediaBlob>, RowError> {
    match row.get(field) {
        None | Some(RowValue::Null) => Ok(Vec::new()),
        Some(RowValue::List(values)) => values
            .iter()
            .enumerate()
            .filter(|(_, value)| !matches!(value, RowValue::Null))
            .map(|(index, value)| blob(value, &format!("{field}[{index}]"), root))
            .collect(),
        Some(value) => blob(value, field, root).map(|media| vec![media]),
    }
}

/// The one medium of `field` (an item's audio), required.
pub fn required_media(row: &RowValue<'_>, field: &str, root: &MediaRoot) -> Result<MediaBlob, RowError> {
    let mut media = media_list(row, field, root)?;
    match media.len() {
        0 => Err(problem(field, "missing")),
        1 => Ok(media.remove(0)),
        count => Err(problem(field, format!("expected one recording, found a list of {count}"))),
    }
}

fn problem(field: &str, text: impl Into<String>) -> RowError {
    RowError { field: field.to_owned(), problem: text.into() }
}

fn blob(value: &RowValue<'_>, field: &str, root: &MediaRoot) -> Result<MediaBlob, RowError> {
    match value {
        RowValue::Bytes(bytes) if bytes.is_empty() => Err(problem(field, "empty")),
        RowValue::Bytes(bytes) => Ok(MediaBlob { format: sniff(bytes, None), data: bytes.clone() }),
        RowValue::Object(_) => {
            let path = value.get("path").and_then(|path| match path {
                RowValue::Text(text) if !text.is_empty() => Some(text.as_ref()),
                _ => None,
            });
            match value.get("bytes") {
                Some(RowValue::Bytes(bytes)) if !bytes.is_empty() => {
                    Ok(MediaBlob { format: sniff(bytes, path), data: bytes.clone() })
                }
                Some(RowValue::Text(encoded)) if !encoded.is_empty() => {
                    let data = decode_base64(encoded).map_err(|error| {
                        problem(&format!("{field}.bytes"), format!("not base64: {error}"))
                    })?;
                    Ok(MediaBlob { format: sniff(&data, path), data })
                }
                _ => match path {
                    Some(path) => read_file(path, field, root),
                    None => Err(problem(
                        field,
                        "has neither `bytes` nor `path` (decoded audio arrays are not read: keep the encoded file)",
                    )),
                },
            }
        }
        RowValue::Text(text) => {
            let text = text.trim();
            if let Some(data_url) = text.strip_prefix("data:") {
                let (_, encoded) = data_url
                    .split_once(";base64,")
                    .ok_or_else(|| problem(field, "a data URL without `;base64,`"))?;
                let data = decode_base64(encoded)
                    .map_err(|error| problem(field, format!("data URL is not base64: {error}")))?;
                return Ok(MediaBlob { format: sniff(&data, None), data });
            }
            if has_media_extension(text) {
                return read_file(text, field, root);
            }
            let data = decode_base64(text).map_err(|_| {
                problem(
                    field,
                    format!(
                        "expected a path ending in a media extension ({}) or base64 data, found `{}`",
                        MEDIA_EXTENSIONS.join(", "),
                        text.chars().take(60).collect::<String>()
                    ),
                )
            })?;
            if data.is_empty() {
                return Err(problem(field, "empty"));
            }
            Ok(MediaBlob { format: sniff(&data, None), data })
        }
        other => Err(problem(
            field,
            format!("expected bytes, a {{bytes, path}} struct, a path or base64, found {other}"),
        )),
    }
}

fn has_media_extension(text: &str) -> bool {
    text.len() < 4096
        && Path::new(text).extension().and_then(|extension| extension.to_str()).is_some_and(|extension| {
            MEDIA_EXTENSIONS.iter().any(|known| extension.eq_ignore_ascii_case(known))
        })
}

fn decode_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    // Line breaks are common in base64 written by other tools.
    if text.contains(['\n', '\r']) {
        let joined: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        base64::engine::general_purpose::STANDARD.decode(joined)
    } else {
        base64::engine::general_purpose::STANDARD.decode(text)
    }
}

fn read_file(path: &str, field: &str, root: &MediaRoot) -> Result<MediaBlob, RowError> {
    let resolved = root.0.join(path);
    let data = std::fs::read(&resolved).map_err(|error| {
        let reason = match error.kind() {
            std::io::ErrorKind::NotFound => "not found".to_owned(),
            _ => error.to_string(),
        };
        problem(field, format!("media file `{}` {reason}", resolved.display()))
    })?;
    if data.is_empty() {
        return Err(problem(field, format!("media file `{}` is empty", resolved.display())));
    }
    Ok(MediaBlob { format: sniff(&data, Some(path)), data })
}

/// The format of encoded media from its signature, else from `path`'s extension, else `bin`.
pub fn sniff(data: &[u8], path: Option<&str>) -> String {
    let starts = |signature: &[u8]| data.starts_with(signature);
    let riff = |kind: &[u8]| starts(b"RIFF") && data.get(8..12) == Some(kind);
    let format = if starts(b"\x89PNG\r\n\x1a\n") {
        "png"
    } else if starts(&[0xff, 0xd8, 0xff]) {
        "jpeg"
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        "gif"
    } else if riff(b"WEBP") {
        "webp"
    } else if riff(b"WAVE") {
        "wav"
    } else if starts(b"BM") && data.len() > 14 {
        "bmp"
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        "tiff"
    } else if data.get(128..132) == Some(b"DICM") {
        "dicom"
    } else if starts(b"fLaC") {
        "flac"
    } else if starts(b"OggS") {
        "ogg"
    } else if starts(b"ID3") || (data.len() > 1 && data[0] == 0xff && data[1] & 0xe0 == 0xe0) {
        "mp3"
    } else if data.get(4..8) == Some(b"ftyp") {
        "mp4"
    } else if starts(&[0x1a, 0x45, 0xdf, 0xa3]) {
        "webm"
    } else {
        return path
            .and_then(|path| Path::new(path).extension())
            .and_then(|extension| extension.to_str())
            .map(|extension| extension.to_ascii_lowercase())
            .unwrap_or_else(|| "bin".to_owned());
    };
    format.to_owned()
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    fn object(entries: Vec<(&'static str, RowValue<'static>)>) -> RowValue<'static> {
        RowValue::Object(entries.into_iter().map(|(key, value)| (Cow::Borrowed(key), value)).collect())
    }

    #[test]
    fn bytes_structs_base64_data_urls_and_paths_become_blobs() {
        let folder = tempfile::tempdir().unwrap();
        std::fs::create_dir(folder.path().join("img")).unwrap();
        std::fs::write(folder.path().join("img/a.png"), PNG).unwrap();
        let root = MediaRoot(folder.path().to_owned());
        let encoded = base64::engine::general_purpose::STANDARD.encode(PNG);
        let row = object(vec![
            ("raw", RowValue::Bytes(PNG.to_vec())),
            (
                "hf",
                object(vec![
                    ("bytes", RowValue::Bytes(b"fLaC....".to_vec())),
                    ("path", RowValue::Text("x.flac".into())),
                ]),
            ),
            (
                "hf_path",
                object(vec![("bytes", RowValue::Null), ("path", RowValue::Text("img/a.png".into()))]),
            ),
            ("b64", RowValue::Text(Cow::Owned(encoded.clone()))),
            ("url", RowValue::Text(Cow::Owned(format!("data:image/png;base64,{encoded}")))),
            (
                "list",
                RowValue::List(vec![
                    RowValue::Text("img/a.png".into()),
                    RowValue::Bytes(vec![0xff, 0xd8, 0xff, 0]),
                ]),
            ),
        ]);
        for field in ["raw", "hf_path", "b64", "url"] {
            let media = media_list(&row, field, &root).unwrap();
            assert_eq!(media, vec![MediaBlob { data: PNG.to_vec(), format: "png".into() }], "{field}");
        }
        assert_eq!(required_media(&row, "hf", &root).unwrap().format, "flac");
        let list = media_list(&row, "list", &root).unwrap();
        assert_eq!(list.iter().map(|m| m.format.as_str()).collect::<Vec<_>>(), ["png", "jpeg"]);
        assert!(media_list(&row, "absent", &root).unwrap().is_empty());
    }

    #[test]
    fn missing_files_and_bad_text_name_the_field_and_path() {
        let root = MediaRoot(PathBuf::from("/nonexistent-karma"));
        let row = object(vec![
            ("image", RowValue::Text("scans/missing.png".into())),
            ("audio", RowValue::Text("not base64 at all!".into())),
            ("empty", object(vec![("bytes", RowValue::Null), ("path", RowValue::Null)])),
        ]);
        let error = media_list(&row, "image", &root).unwrap_err();
        assert_eq!(error.field, "image");
        assert!(
            error.problem.contains("/nonexistent-karma/scans/missing.png")
                && error.problem.contains("not found")
        );
        let error = required_media(&row, "audio", &root).unwrap_err();
        assert!(error.problem.contains("media extension"), "{}", error.problem);
        assert!(required_media(&row, "empty", &root).unwrap_err().problem.contains("neither"));
        assert_eq!(required_media(&row, "absent", &root).unwrap_err().problem, "missing");
    }

    #[test]
    fn formats_come_from_signatures() {
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVEfmt ", None), "wav");
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 ", None), "webp");
        assert_eq!(sniff(b"OggS\0", None), "ogg");
        assert_eq!(sniff(b"ID3\x04", None), "mp3");
        assert_eq!(sniff(b"\0\0\0\x20ftypM4A ", None), "mp4");
        assert_eq!(sniff(b"????", Some("a/b.DCM")), "dcm");
        assert_eq!(sniff(b"????", None), "bin");
    }
}
