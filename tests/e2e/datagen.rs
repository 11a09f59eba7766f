//! Generated datasets in the hub schemas, as JSONL and parquet, with known answers so scores
//! can be computed independently of karma-host.

use std::{path::Path, sync::Arc};

use parquet::{
    basic::{ConvertedType, Repetition, Type as PhysicalType},
    column::writer::ColumnWriter,
    data_type::ByteArray,
    file::{properties::WriterProperties, writer::SerializedFileWriter},
    schema::types::Type,
};
use serde_json::{json, Value};

/// One generated MCQ: its options (display order) and the correct letter.
#[derive(Clone, Debug)]
pub struct Question {
    pub id: String,
    pub question: String,
    pub options: Vec<(String, String)>,
    pub answer: String,
    pub subject: String,
}

/// `count` questions with 4 options; answers cycle through a deterministic but uneven pattern.
pub fn questions(count: usize, seed: u64) -> Vec<Question> {
    let letters = ["A", "B", "C", "D"];
    let subjects = ["Anatomy", "Physiology", "Pharmacology"];
    (0..count)
        .map(|index| {
            let mixed = (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(seed).rotate_left(17);
            Question {
                id: format!("q{seed}-{index}"),
                question: format!("Generated question {index} (seed {seed}): which option is correct?"),
                options: letters
                    .iter()
                    .map(|letter| ((*letter).to_owned(), format!("option {letter} of {index}")))
                    .collect(),
                answer: letters[(mixed % 4) as usize].to_owned(),
                subject: subjects[index % 3].to_owned(),
            }
        })
        .collect()
}

/// openlifescienceai (pubmedqa / medqa / mmlu) rows.
pub fn openlifescience_rows(questions: &[Question], with_context: bool) -> Vec<Value> {
    questions
        .iter()
        .map(|q| {
            let options: serde_json::Map<String, Value> = q.options.iter().map(|(l, t)| (l.clone(), t.clone().into())).collect();
            let answer_text = q.options.iter().find(|(l, _)| *l == q.answer).map(|(_, t)| t.clone()).unwrap_or_default();
            let mut data = json!({"Question": q.question, "Options": options, "Correct Option": q.answer, "Correct Answer": answer_text});
            if with_context {
                data["Context"] = json!([format!("Background for {}.", q.id), "Second sentence."]);
            }
            json!({"id": q.id, "data": data})
        })
        .collect()
}

/// medmcqa rows.
pub fn medmcqa_rows(questions: &[Question]) -> Vec<Value> {
    questions
        .iter()
        .map(|q| {
            let cop = ["A", "B", "C", "D"].iter().position(|l| *l == q.answer).unwrap();
            json!({"id": q.id, "question": q.question, "opa": q.options[0].1, "opb": q.options[1].1, "opc": q.options[2].1,
                   "opd": q.options[3].1, "cop": cop, "subject_name": q.subject, "topic_name": null, "exp": "", "choice_type": "single"})
        })
        .collect()
}

pub fn write_jsonl(path: &Path, rows: &[Value]) {
    let text: String = rows.iter().map(|row| format!("{row}\n")).collect();
    std::fs::write(path, text).unwrap();
}

fn utf8(name: &str) -> Arc<Type> {
    Arc::new(
        Type::primitive_type_builder(name, PhysicalType::BYTE_ARRAY)
            .with_repetition(Repetition::REQUIRED)
            .with_converted_type(ConvertedType::UTF8)
            .build()
            .unwrap(),
    )
}

fn int64(name: &str) -> Arc<Type> {
    Arc::new(
        Type::primitive_type_builder(name, PhysicalType::INT64)
            .with_repetition(Repetition::REQUIRED)
            .build()
            .unwrap(),
    )
}

fn group(name: &str, fields: Vec<Arc<Type>>) -> Arc<Type> {
    Arc::new(
        Type::group_type_builder(name)
            .with_repetition(Repetition::REQUIRED)
            .with_fields(fields)
            .build()
            .unwrap(),
    )
}

fn double(name: &str) -> Arc<Type> {
    Arc::new(
        Type::primitive_type_builder(name, PhysicalType::DOUBLE)
            .with_repetition(Repetition::REQUIRED)
            .build()
            .unwrap(),
    )
}

/// A column of values, in schema leaf order.
enum Column {
    Text(Vec<String>),
    Int(Vec<i64>),
    Float(Vec<f64>),
}

/// Flat JSON rows as parquet: each named column is text, or a double where `doubles` names it
/// (AfriMed-QA keeps its `mentions_*` flags as 1.0/0.0).
pub fn write_flat_parquet(path: &Path, rows: &[Value], columns: &[&str], doubles: &[&str]) {
    let fields =
        columns.iter().map(|name| if doubles.contains(name) { double(name) } else { utf8(name) }).collect();
    let schema = Type::group_type_builder("schema").with_fields(fields).build().unwrap();
    let values = columns
        .iter()
        .map(|name| {
            if doubles.contains(name) {
                Column::Float(rows.iter().map(|row| row[*name].as_f64().unwrap()).collect())
            } else {
                Column::Text(rows.iter().map(|row| row[*name].as_str().unwrap().to_owned()).collect())
            }
        })
        .collect();
    write_parquet(path, schema, values);
}

fn write_parquet(path: &Path, schema: Type, columns: Vec<Column>) {
    let file = std::fs::File::create(path).unwrap();
    let mut writer =
        SerializedFileWriter::new(file, Arc::new(schema), Arc::new(WriterProperties::builder().build()))
            .unwrap();
    let mut row_group = writer.next_row_group().unwrap();
    let mut columns = columns.into_iter();
    while let Some(mut column) = row_group.next_column().unwrap() {
        match (column.untyped(), columns.next().unwrap()) {
            (ColumnWriter::ByteArrayColumnWriter(writer), Column::Text(values)) => {
                let values: Vec<ByteArray> =
                    values.into_iter().map(|value| ByteArray::from(value.as_str())).collect();
                writer.write_batch(&values, None, None).unwrap();
            }
            (ColumnWriter::Int64ColumnWriter(writer), Column::Int(values)) => {
                writer.write_batch(&values, None, None).unwrap();
            }
            (ColumnWriter::DoubleColumnWriter(writer), Column::Float(values)) => {
                writer.write_batch(&values, None, None).unwrap();
            }
            _ => panic!("column type mismatch"),
        }
        column.close().unwrap();
    }
    row_group.close().unwrap();
    writer.close().unwrap();
}

/// The openlifescience schema as parquet (nested `data` group, required fields).
pub fn write_openlifescience_parquet(path: &Path, questions: &[Question]) {
    let options = group("Options", ["A", "B", "C", "D"].iter().map(|letter| utf8(letter)).collect());
    let data = group("data", vec![utf8("Question"), options, utf8("Correct Option"), utf8("Correct Answer")]);
    let schema = Type::group_type_builder("schema").with_fields(vec![utf8("id"), data]).build().unwrap();
    let text = |f: &dyn Fn(&Question) -> String| Column::Text(questions.iter().map(f).collect());
    let columns = vec![
        text(&|q| q.id.clone()),
        text(&|q| q.question.clone()),
        text(&|q| q.options[0].1.clone()),
        text(&|q| q.options[1].1.clone()),
        text(&|q| q.options[2].1.clone()),
        text(&|q| q.options[3].1.clone()),
        text(&|q| q.answer.clone()),
        text(&|q| q.options.iter().find(|(l, _)| *l == q.answer).unwrap().1.clone()),
    ];
    write_parquet(path, schema, columns);
}

/// The medmcqa schema as parquet.
pub fn write_medmcqa_parquet(path: &Path, questions: &[Question]) {
    let fields = vec![
        utf8("id"),
        utf8("question"),
        utf8("opa"),
        utf8("opb"),
        utf8("opc"),
        utf8("opd"),
        int64("cop"),
        utf8("subject_name"),
    ];
    let schema = Type::group_type_builder("schema").with_fields(fields).build().unwrap();
    let text = |f: &dyn Fn(&Question) -> String| Column::Text(questions.iter().map(f).collect());
    let columns = vec![
        text(&|q| q.id.clone()),
        text(&|q| q.question.clone()),
        text(&|q| q.options[0].1.clone()),
        text(&|q| q.options[1].1.clone()),
        text(&|q| q.options[2].1.clone()),
        text(&|q| q.options[3].1.clone()),
        Column::Int(
            questions
                .iter()
                .map(|q| ["A", "B", "C", "D"].iter().position(|l| *l == q.answer).unwrap() as i64)
                .collect(),
        ),
        text(&|q| q.subject.clone()),
    ];
    write_parquet(path, schema, columns);
}

/// The 95% Wilson interval, computed here independently of karma-host.
pub fn wilson(successes: f64, n: f64) -> (f64, f64) {
    let z = 1.959_963_984_540_054f64;
    let p = successes / n;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    (centre - half, centre + half)
}
