//! Writing data to stdout: aligned tables, CSV, JSON.

use std::io::{self, Write};

/// Writes `rows` under `headers` as left-aligned columns separated by two spaces.
pub fn table(out: &mut impl Write, headers: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|header| header.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let last = cells.len().saturating_sub(1);
        cells
            .iter()
            .enumerate()
            .map(|(index, cell)| {
                if index == last {
                    (*cell).to_owned()
                } else {
                    format!("{cell:<width$}", width = widths[index])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    writeln!(out, "{}", line(headers.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// Writes RFC 4180 CSV.
pub fn csv(out: &mut impl Write, headers: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let record = |cells: Vec<&str>| -> String {
        cells
            .iter()
            .map(|cell| {
                if cell.contains([',', '"', '\n', '\r']) {
                    format!("\"{}\"", cell.replace('"', "\"\""))
                } else {
                    (*cell).to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    write!(out, "{}\r\n", record(headers.to_vec()))?;
    for row in rows {
        write!(out, "{}\r\n", record(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// Writes pretty JSON and a newline.
pub fn json(out: &mut impl Write, value: &serde_json::Value) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_when_needed() {
        let mut out = Vec::new();
        csv(
            &mut out,
            &["a", "b"],
            &[vec!["x,y".into(), "say \"hi\"".into()], vec!["plain".into(), String::new()]],
        )
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "a,b\r\n\"x,y\",\"say \"\"hi\"\"\"\r\nplain,\r\n");
    }

    #[test]
    fn table_aligns_columns() {
        let mut out = Vec::new();
        table(&mut out, &["NAME", "TYPE"], &[vec!["karma/echo".into(), "text".into()]]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "NAME        TYPE\nkarma/echo  text\n");
    }
}
