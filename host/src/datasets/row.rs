//! A dataset row as parsed: a JSON-shaped value whose text borrows from the line it was read
//! from wherever the text has no escapes, and whose objects keep their keys in file order.
//!
//! A row is read once and mapped to a record. With serde_json's `Value` every key and string
//! was allocated and every key hashed into an ordered map, which was most of the cost of reading
//! a dataset; here a row of plain text allocates one vector per object.

use std::{borrow::Cow, collections::HashMap, fmt, marker::PhantomData};

use serde::{
    de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor},
    ser::{Serialize, SerializeMap, SerializeSeq, Serializer},
};

/// One JSON value of a row.
#[derive(Clone, Debug, PartialEq)]
pub enum RowValue<'a> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Text(Cow<'a, str>),
    /// Binary data (a parquet BINARY column: an encoded image or recording).
    Bytes(Vec<u8>),
    List(Vec<RowValue<'a>>),
    /// Entries in file order. A repeated key keeps its first position and its last value, as
    /// serde_json's ordered map does.
    Object(Vec<(Cow<'a, str>, RowValue<'a>)>),
}

impl<'a> RowValue<'a> {
    /// The value of `key` when this is an object that has it.
    pub fn get(&self, key: &str) -> Option<&RowValue<'a>> {
        match self {
            RowValue::Object(entries) => entries.iter().find(|(name, _)| name == key).map(|(_, value)| value),
            _ => None,
        }
    }

    pub fn is_object(&self) -> bool {
        matches!(self, RowValue::Object(_))
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            RowValue::Number(number) => number.as_i64(),
            _ => None,
        }
    }

    /// The same value, owning its text (for rows read whole: JSON arrays, CSV and parquet).
    pub fn from_json(value: serde_json::Value) -> RowValue<'static> {
        match value {
            serde_json::Value::Null => RowValue::Null,
            serde_json::Value::Bool(flag) => RowValue::Bool(flag),
            serde_json::Value::Number(number) => RowValue::Number(number),
            serde_json::Value::String(text) => RowValue::Text(Cow::Owned(text)),
            serde_json::Value::Array(items) => {
                RowValue::List(items.into_iter().map(RowValue::from_json).collect())
            }
            serde_json::Value::Object(map) => RowValue::Object(
                map.into_iter().map(|(key, value)| (Cow::Owned(key), RowValue::from_json(value))).collect(),
            ),
        }
    }
}

/// JSON text, as error messages quote values.
impl fmt::Display for RowValue<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        formatter.write_str(&text)
    }
}

impl Serialize for RowValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            RowValue::Null => serializer.serialize_unit(),
            RowValue::Bool(flag) => serializer.serialize_bool(*flag),
            RowValue::Number(number) => number.serialize(serializer),
            RowValue::Text(text) => serializer.serialize_str(text),
            // Messages quote rows: a placeholder, not the bytes.
            RowValue::Bytes(bytes) => serializer.serialize_str(&format!("<{} bytes>", bytes.len())),
            RowValue::List(items) => {
                let mut list = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    list.serialize_element(item)?;
                }
                list.end()
            }
            RowValue::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key.as_ref(), value)?;
                }
                map.end()
            }
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RowValue<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor(PhantomData))
    }
}

struct ValueVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ValueVisitor<'a> {
    type Value = RowValue<'a>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, flag: bool) -> Result<Self::Value, E> {
        Ok(RowValue::Bool(flag))
    }

    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Self::Value, E> {
        Ok(RowValue::Number(number.into()))
    }

    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Self::Value, E> {
        Ok(RowValue::Number(number.into()))
    }

    fn visit_f64<E: de::Error>(self, number: f64) -> Result<Self::Value, E> {
        // Like serde_json's `Value`: a float JSON cannot carry is null.
        Ok(serde_json::Number::from_f64(number).map_or(RowValue::Null, RowValue::Number))
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(RowValue::Text(Cow::Borrowed(text)))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(RowValue::Text(Cow::Owned(text.to_owned())))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
        Ok(RowValue::Text(Cow::Owned(text)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(RowValue::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(RowValue::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        RowValue::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(sequence.size_hint().unwrap_or(0).min(64));
        while let Some(item) = sequence.next_element()? {
            items.push(item);
        }
        Ok(RowValue::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        /// Past this many keys, repeated keys are found through a hash map instead of a scan.
        const SCANNED_KEYS: usize = 32;
        let mut entries: Vec<(Cow<'a, str>, RowValue<'a>)> = Vec::with_capacity(8);
        let mut positions: HashMap<Cow<'a, str>, usize> = HashMap::new();
        while let Some(Key(key)) = map.next_key()? {
            let value = map.next_value()?;
            // Rows have a handful of keys: a linear search beats hashing them.
            let existing = if entries.len() < SCANNED_KEYS {
                entries.iter().position(|(name, _)| *name == key)
            } else {
                if positions.is_empty() {
                    positions
                        .extend(entries.iter().enumerate().map(|(index, (name, _))| (name.clone(), index)));
                }
                positions.get(&key).copied()
            };
            match existing {
                Some(index) => entries[index].1 = value,
                None => {
                    if !positions.is_empty() {
                        positions.insert(key.clone(), entries.len());
                    }
                    entries.push((key, value));
                }
            }
        }
        Ok(RowValue::Object(entries))
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for KeyVisitor<'a> {
            type Value = Key<'a>;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(text)))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(text.to_owned())))
            }
            fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(KeyVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_borrow_plain_text_and_own_escaped_text() {
        let line = r#"{"id": "q1", "question": "caf\u00e9?", "n": -3, "x": 1.5, "ok": true, "none": null, "list": ["a"]}"#;
        let row: RowValue<'_> = serde_json::from_str(line).unwrap();
        assert!(matches!(row.get("id"), Some(RowValue::Text(Cow::Borrowed("q1")))));
        assert!(matches!(row.get("question"), Some(RowValue::Text(Cow::Owned(text))) if text == "café?"));
        assert_eq!(row.get("n").and_then(RowValue::as_i64), Some(-3));
        assert_eq!(row.get("x").map(ToString::to_string).as_deref(), Some("1.5"));
        assert_eq!(row.get("ok"), Some(&RowValue::Bool(true)));
        assert_eq!(row.get("none"), Some(&RowValue::Null));
        assert_eq!(row.get("missing"), None);
        // The same value serde_json reads, converted, and the same JSON text printed.
        let json: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(row.to_string(), json.to_string());
        assert_eq!(RowValue::from_json(json), row);
    }

    #[test]
    fn object_keys_keep_file_order_and_the_last_value_of_a_repeated_key() {
        let row: RowValue<'_> = serde_json::from_str(r#"{"B": 1, "A": 2, "B": 3}"#).unwrap();
        let RowValue::Object(entries) = &row else { panic!("not an object: {row}") };
        let keys: Vec<&str> = entries.iter().map(|(key, _)| key.as_ref()).collect();
        assert_eq!(keys, ["B", "A"]);
        assert_eq!(row.get("B").and_then(RowValue::as_i64), Some(3));
        assert_eq!(row.to_string(), r#"{"B":3,"A":2}"#);

        // Past the scanned keys, a hash map finds repeats: same result.
        let mut text: Vec<String> = (0..100).map(|index| format!("\"k{index}\": {index}")).collect();
        text.push("\"k3\": -1".to_owned());
        text.push("\"k70\": -2".to_owned());
        let line = format!("{{{}}}", text.join(","));
        let large: RowValue<'_> = serde_json::from_str(&line).unwrap();
        let RowValue::Object(entries) = &large else { panic!("not an object") };
        assert_eq!(entries.len(), 100);
        assert_eq!((entries[3].0.as_ref(), entries[70].0.as_ref()), ("k3", "k70"));
        assert_eq!(large.get("k3").and_then(RowValue::as_i64), Some(-1));
        assert_eq!(large.get("k70").and_then(RowValue::as_i64), Some(-2));
        assert_eq!(large.get("k99").and_then(RowValue::as_i64), Some(99));
    }
}
