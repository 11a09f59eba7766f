//! Parquet rows as [`RowValue`]s. Binary columns (an image or a recording, alone or inside a
//! Hugging Face `Image`/`Audio` struct `{bytes, path}`) stay bytes: the parquet reader's JSON
//! form would turn every one into base64 text, to be decoded again when the item is built.

use std::borrow::Cow;

use parquet::record::{Field, Row};

use super::row::RowValue;

/// The row, with its columns in file order.
pub fn row_value(row: &Row) -> RowValue<'static> {
    RowValue::Object(
        row.get_column_iter().map(|(name, field)| (Cow::Owned(name.clone()), field_value(field))).collect(),
    )
}

fn field_value(field: &Field) -> RowValue<'static> {
    match field {
        Field::Bytes(bytes) => RowValue::Bytes(bytes.data().to_vec()),
        Field::Str(text) => RowValue::Text(Cow::Owned(text.clone())),
        Field::Group(row) => row_value(row),
        Field::ListInternal(list) => RowValue::List(list.elements().iter().map(field_value).collect()),
        // Numbers, dates, decimals and maps: as the parquet reader writes them in JSON.
        other => RowValue::from_json(other.to_json_value()),
    }
}
