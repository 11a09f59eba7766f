//! Dataset arguments from the command line: `--dataset-args 'ds:k=v,k2=v;ds2:k=v'` and the
//! repeatable `--dataset-arg ds.key=value`, whose value may contain `,` and `;`.

use std::collections::BTreeMap;

/// Arguments per dataset name, as typed.
pub type DatasetArgs = BTreeMap<String, BTreeMap<String, String>>;

/// Parses both forms and merges them (`--dataset-arg` wins on conflicts).
pub fn parse(compact: Option<&str>, single: &[String]) -> Result<DatasetArgs, String> {
    let mut parsed = DatasetArgs::new();
    if let Some(compact) = compact {
        for spec in compact.split(';').map(str::trim).filter(|spec| !spec.is_empty()) {
            // The dataset name ends at the last `:` before the first `=`, so names that contain
            // `:` (e.g. `Showing-KCL/AMQA:race`) can be addressed.
            let first_equals = spec.find('=').ok_or_else(|| {
                format!("invalid dataset argument `{spec}`: expected `dataset:key=value[,key2=value2]`")
            })?;
            let (dataset, pairs) = spec[..first_equals]
                .rfind(':')
                .map(|colon| (&spec[..colon], &spec[colon + 1..]))
                .ok_or_else(|| {
                    format!("invalid dataset argument `{spec}`: expected `dataset:key=value[,key2=value2]`")
                })?;
            let entry = parsed.entry(dataset.trim().to_owned()).or_default();
            for pair in pairs.split(',').map(str::trim).filter(|pair| !pair.is_empty()) {
                let (key, value) = pair.split_once('=').ok_or_else(|| {
                    format!("invalid argument `{pair}` for dataset `{dataset}`: expected `key=value`")
                })?;
                entry.insert(key.trim().to_owned(), value.trim().to_owned());
            }
        }
    }
    for argument in single {
        let (target, value) = argument
            .split_once('=')
            .ok_or_else(|| format!("invalid --dataset-arg `{argument}`: expected `dataset.key=value`"))?;
        let (dataset, key) = target
            .rsplit_once('.')
            .ok_or_else(|| format!("invalid --dataset-arg `{argument}`: expected `dataset.key=value`"))?;
        parsed.entry(dataset.trim().to_owned()).or_default().insert(key.trim().to_owned(), value.to_owned());
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_parse_and_merge() {
        let args = parse(
            Some("medqa:data_files=/d/medqa.jsonl, confinement_instructions=x ; Showing-KCL/AMQA:race:variant=all"),
            &["medqa.confinement_instructions=Answer; be brief, please: <QUESTION>".to_owned()],
        )
        .unwrap();
        assert_eq!(args["medqa"]["data_files"], "/d/medqa.jsonl");
        assert_eq!(args["medqa"]["confinement_instructions"], "Answer; be brief, please: <QUESTION>");
        assert_eq!(args["Showing-KCL/AMQA:race"]["variant"], "all");
    }

    #[test]
    fn malformed_specs_are_explained() {
        assert!(parse(Some("medqa"), &[]).unwrap_err().contains("expected `dataset:key=value"));
        assert!(parse(Some("medqa:a=1,b"), &[])
            .unwrap_err()
            .contains("invalid argument `b` for dataset `medqa`"));
        assert!(parse(None, &["novalue".to_owned()]).unwrap_err().contains("expected `dataset.key=value`"));
    }
}
