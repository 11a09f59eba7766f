//! Real encoded media for the media tests: PNG and WAV written here byte by byte (a stored-deflate
//! PNG, a 16-bit PCM WAV), JPEG and FLAC from `tests/fixtures/media`, and parquet files whose
//! media columns are Hugging Face `Image`/`Audio` structs `{bytes, path}`.

use std::{path::Path, sync::Arc};

use parquet::{
    basic::{ConvertedType, Repetition, Type as PhysicalType},
    column::writer::ColumnWriter,
    data_type::ByteArray,
    file::{properties::WriterProperties, writer::SerializedFileWriter},
    schema::types::Type,
};
use sha2::{Digest, Sha256};

use crate::harness::workspace_root;

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// What `karma/describe-input` with `report=digest` answers for these bytes.
pub fn digest_words(data: &[u8]) -> String {
    let hex = sha256_hex(data);
    (0..8).map(|word| &hex[word * 8..word * 8 + 8]).collect::<Vec<_>>().join(" ")
}

pub fn fixture_media(name: &str) -> Vec<u8> {
    std::fs::read(workspace_root().join("tests/fixtures/media").join(name)).unwrap()
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for byte in bytes {
        a = (a + u32::from(*byte)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut checked = kind.to_vec();
    checked.extend_from_slice(data);
    out.extend_from_slice(&checked);
    out.extend_from_slice(&crc32(&checked).to_be_bytes());
}

/// A `width` x `height` RGB PNG whose pixels depend on `seed` (so every image differs).
pub fn png(width: u32, height: u32, seed: u8) -> Vec<u8> {
    let mut raw = Vec::new();
    for y in 0..height {
        raw.push(0); // filter: none
        for x in 0..width {
            raw.extend_from_slice(&[(x as u8).wrapping_mul(9) ^ seed, (y as u8).wrapping_mul(13), seed]);
        }
    }
    // zlib with stored (uncompressed) deflate blocks.
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (index, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(index + 1 == blocks.len()));
        let len = block.len() as u16;
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    zlib.extend_from_slice(&adler32(&raw).to_be_bytes());
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    png_chunk(&mut out, b"IHDR", &header);
    png_chunk(&mut out, b"IDAT", &zlib);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// `millis` of a sine at `hertz`, 16 kHz 16-bit mono PCM WAV.
pub fn wav(millis: u32, hertz: f64) -> Vec<u8> {
    let rate = 16_000u32;
    let samples: Vec<i16> = (0..rate * millis / 1000)
        .map(|n| ((n as f64 / f64::from(rate) * hertz * std::f64::consts::TAU).sin() * 8000.0) as i16)
        .collect();
    let data_len = (samples.len() * 2) as u32;
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for sample in samples {
        out.extend_from_slice(&sample.to_le_bytes());
    }
    out
}

/// A parquet column of generated rows.
pub enum Column {
    Text(&'static str, Vec<String>),
    /// A Hugging Face `Image`/`Audio` struct: `{bytes: binary, path: string}`, both optional
    /// (a `None` path is null).
    Media(&'static str, Vec<(Vec<u8>, Option<String>)>),
}

fn leaf(name: &str, repetition: Repetition, utf8: bool) -> Arc<Type> {
    let mut builder =
        Type::primitive_type_builder(name, PhysicalType::BYTE_ARRAY).with_repetition(repetition);
    if utf8 {
        builder = builder.with_converted_type(ConvertedType::UTF8);
    }
    Arc::new(builder.build().unwrap())
}

/// Writes `columns` as one row group, with the media structs as the hub's parquet files have them.
pub fn write_media_parquet(path: &Path, columns: &[Column]) {
    let fields = columns
        .iter()
        .map(|column| match column {
            Column::Text(name, _) => leaf(name, Repetition::REQUIRED, true),
            Column::Media(name, _) => Arc::new(
                Type::group_type_builder(name)
                    .with_repetition(Repetition::OPTIONAL)
                    .with_fields(vec![
                        leaf("bytes", Repetition::OPTIONAL, false),
                        leaf("path", Repetition::OPTIONAL, true),
                    ])
                    .build()
                    .unwrap(),
            ),
        })
        .collect();
    let schema = Type::group_type_builder("schema").with_fields(fields).build().unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer =
        SerializedFileWriter::new(file, Arc::new(schema), Arc::new(WriterProperties::builder().build()))
            .unwrap();
    let mut row_group = writer.next_row_group().unwrap();
    // Leaves in schema order: a media column is two (bytes, then path).
    let mut leaves: Vec<(Vec<ByteArray>, Option<Vec<i16>>)> = Vec::new();
    for column in columns {
        match column {
            Column::Text(_, values) => {
                leaves.push((values.iter().map(|value| ByteArray::from(value.as_str())).collect(), None))
            }
            Column::Media(_, values) => {
                leaves.push((
                    values.iter().map(|(bytes, _)| ByteArray::from(bytes.clone())).collect(),
                    Some(vec![2; values.len()]),
                ));
                let present: Vec<ByteArray> =
                    values.iter().filter_map(|(_, path)| path.as_deref().map(ByteArray::from)).collect();
                let levels = values.iter().map(|(_, path)| if path.is_some() { 2 } else { 1 }).collect();
                leaves.push((present, Some(levels)));
            }
        }
    }
    let mut leaves = leaves.into_iter();
    while let Some(mut column) = row_group.next_column().unwrap() {
        let (values, levels) = leaves.next().unwrap();
        match column.untyped() {
            ColumnWriter::ByteArrayColumnWriter(writer) => {
                writer.write_batch(&values, levels.as_deref(), None).unwrap();
            }
            _ => panic!("only byte-array columns are written"),
        }
        column.close().unwrap();
    }
    row_group.close().unwrap();
    writer.close().unwrap();
}
