//! `--processors` and `--processor-args`: which text processors each dataset applies, with
//! which arguments, checked before anything runs.

use std::collections::BTreeMap;

use anyhow::bail;

use super::diagnostics::Hinted;
use crate::{engine::ProcessorStep, processors};

/// Processor arguments by dataset (`""` for every dataset) and processor.
pub(super) type ProcessorArgs = BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>;

/// Parses `ds.processor:key=value,key2=value;processor:key=value`. The dataset is everything
/// before the last `.` of the part before `:` (names such as `ai4bharat/IN22-Conv` have none).
pub(super) fn parse_args(spec: Option<&str>) -> anyhow::Result<ProcessorArgs> {
    let mut parsed = ProcessorArgs::new();
    for part in spec.unwrap_or_default().split(';').map(str::trim).filter(|part| !part.is_empty()) {
        let Some((target, pairs)) = part.split_once(':') else {
            bail!(Hinted {
                message: format!("--processor-args: `{part}` has no `:`"),
                hint: "write `dataset.processor:key=value` or `processor:key=value`".to_owned(),
            });
        };
        let (dataset, processor) = match target.rsplit_once('.') {
            Some((dataset, processor)) => (dataset.trim(), processor.trim()),
            None => ("", target.trim()),
        };
        let entry = parsed.entry(dataset.to_owned()).or_default().entry(processor.to_owned()).or_default();
        for pair in pairs.split(',').map(str::trim).filter(|pair| !pair.is_empty()) {
            let Some((key, value)) = pair.split_once('=') else {
                bail!(Hinted {
                    message: format!("--processor-args: `{pair}` (for `{target}`) is not key=value"),
                    hint: "write `dataset.processor:key=value,key2=value`".to_owned(),
                });
            };
            entry.insert(key.trim().to_owned(), value.trim().to_owned());
        }
    }
    Ok(parsed)
}

/// The names in `--processors` (`none` for none), each checked.
pub(super) fn parse_list(list: &str) -> anyhow::Result<Vec<&'static str>> {
    let mut names = Vec::new();
    for name in list.split(',').map(str::trim).filter(|name| !name.is_empty()) {
        if name == "none" {
            continue;
        }
        let Some(spec) = processors::PROCESSORS.iter().find(|spec| spec.name == name) else {
            let known: Vec<&str> = processors::PROCESSORS.iter().map(|spec| spec.name).collect();
            bail!(Hinted {
                message: format!("unknown processor `{name}`"),
                hint: format!("processors: {} (or `none`)", known.join(", ")),
            });
        };
        names.push(spec.name);
    }
    Ok(names)
}

/// The configured processors of one dataset: `names` with the arguments given for this dataset
/// (under any of `dataset_names`) or for every dataset; `language` is the dataset's own.
pub(super) fn steps(
    names: &[&'static str],
    dataset_names: &[&str],
    given: &ProcessorArgs,
    language: Option<&str>,
) -> anyhow::Result<Vec<ProcessorStep>> {
    names
        .iter()
        .map(|name| {
            let mut args = given.get("").and_then(|by| by.get(*name)).cloned().unwrap_or_default();
            for dataset in dataset_names {
                if let Some(own) = given.get(*dataset).and_then(|by| by.get(*name)) {
                    args.extend(own.clone());
                }
            }
            let processor = processors::build(name, &args, language).map_err(|problem| Hinted {
                message: format!("processor `{name}`: {problem}"),
                hint: "`karma-host list processors` shows each processor's arguments".to_owned(),
            })?;
            Ok(ProcessorStep {
                name,
                args,
                language: language.map(str::to_owned),
                processor: std::sync::Arc::from(processor),
            })
        })
        .collect()
}

/// Arguments given for a dataset or processor that nothing used.
pub(super) fn check_all_used(
    given: &ProcessorArgs,
    used: &[(Vec<String>, Vec<&'static str>)],
) -> anyhow::Result<()> {
    for (dataset, by_processor) in given {
        for processor in by_processor.keys() {
            let applies = used.iter().any(|(names, processors)| {
                (dataset.is_empty() || names.contains(dataset)) && processors.contains(&processor.as_str())
            });
            if !applies {
                let target =
                    if dataset.is_empty() { processor.clone() } else { format!("{dataset}.{processor}") };
                bail!(Hinted {
                    message: format!("--processor-args given for `{target}`, which no dataset applies"),
                    hint: "add the processor with --processors, or check the dataset and processor names"
                        .to_owned(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_names_may_contain_slashes_and_dots_end_the_dataset() {
        let parsed = parse_args(Some(
            "ai4bharat/IndicVoices.multilingual_text_processor:language=ta; general_text_processor:num2text=true,lowercase=false",
        ))
        .unwrap();
        assert_eq!(parsed["ai4bharat/IndicVoices"]["multilingual_text_processor"]["language"], "ta");
        assert_eq!(parsed[""]["general_text_processor"]["lowercase"], "false");
        assert!(parse_args(Some("x.y")).is_err());
        assert!(parse_args(Some("x.y:novalue")).is_err());
    }
}
