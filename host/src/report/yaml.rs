//! A YAML rendering of the results document (`--save-format yaml`). JSON values map onto a
//! small YAML subset: block mappings and sequences, with strings quoted as JSON strings (valid
//! YAML double-quoted scalars), so no value can be misread.

use serde_json::Value;

/// `value` as a YAML document.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, 0);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::String(text) => Value::String(text.clone()).to_string(),
        Value::Array(items) if items.is_empty() => "[]".to_owned(),
        Value::Object(map) if map.is_empty() => "{}".to_owned(),
        _ => String::new(),
    }
}

fn is_block(value: &Value) -> bool {
    matches!(value, Value::Array(items) if !items.is_empty())
        || matches!(value, Value::Object(map) if !map.is_empty())
}

fn write_value(out: &mut String, value: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                let key = Value::String(key.clone()).to_string();
                if is_block(child) {
                    out.push_str(&format!("{pad}{key}:\n"));
                    write_value(out, child, indent + 2);
                } else {
                    out.push_str(&format!("{pad}{key}: {}\n", scalar(child)));
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for child in items {
                if is_block(child) {
                    out.push_str(&format!("{pad}-\n"));
                    write_value(out, child, indent + 2);
                } else {
                    out.push_str(&format!("{pad}- {}\n", scalar(child)));
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nested_documents_render_as_block_yaml() {
        let value = json!({"manifest": {"seed": 0, "status": "completed", "files": ["a: b.jsonl"], "empty": []},
                           "datasets": {"medqa": {"metrics": {"exact_match": {"score": 0.5, "ci_low": null}}}}});
        assert_eq!(
            to_yaml(&value),
            "\"manifest\":\n  \"seed\": 0\n  \"status\": \"completed\"\n  \"files\":\n    - \"a: b.jsonl\"\n  \"empty\": []\n\
             \"datasets\":\n  \"medqa\":\n    \"metrics\":\n      \"exact_match\":\n        \"score\": 0.5\n        \"ci_low\": null\n"
        );
    }
}
