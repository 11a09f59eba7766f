//! Metric arguments (`--metric-args 'bleu:max_order=2;exact_match:ignore_case=false'`): each
//! metric declares what it takes, with a type and a default; values are parsed and checked
//! before anything runs, and an unknown or ill-typed argument is an error (KARMA silently
//! ignored every metric argument).

use std::{collections::BTreeMap, fmt};

/// The type of an argument's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    Bool,
    /// A whole number in `low..=high`.
    Whole {
        low: u64,
        high: u64,
    },
    /// A finite number at least 0.
    NonNegative,
    /// Field names joined with `+` (`,` and `;` separate arguments and metrics).
    Fields,
}

/// One argument a metric takes.
#[derive(Clone, Copy, Debug)]
pub struct ArgSpec {
    pub name: &'static str,
    pub kind: ArgKind,
    pub default: &'static str,
    pub description: &'static str,
}

/// A parsed value.
#[derive(Clone, Debug, PartialEq)]
pub enum ArgValue {
    Bool(bool),
    Whole(u64),
    Number(f64),
    Fields(Vec<String>),
}

impl fmt::Display for ArgKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgKind::Bool => formatter.write_str("true or false"),
            ArgKind::Whole { low, high } => write!(formatter, "a whole number from {low} to {high}"),
            ArgKind::NonNegative => formatter.write_str("a number, at least 0"),
            ArgKind::Fields => formatter.write_str("field names (letters, digits, `_`, `.`) joined with `+`"),
        }
    }
}

impl ArgKind {
    pub fn parse(self, text: &str) -> Option<ArgValue> {
        let text = text.trim();
        match self {
            ArgKind::Bool => match text.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Some(ArgValue::Bool(true)),
                "false" | "0" | "no" => Some(ArgValue::Bool(false)),
                _ => None,
            },
            ArgKind::Whole { low, high } => {
                text.parse::<u64>().ok().filter(|value| (low..=high).contains(value)).map(ArgValue::Whole)
            }
            ArgKind::NonNegative => text
                .parse::<f64>()
                .ok()
                .filter(|value| value.is_finite() && *value >= 0.0)
                .map(ArgValue::Number),
            ArgKind::Fields => {
                let fields: Vec<String> = text.split('+').map(|field| field.trim().to_owned()).collect();
                let valid = |field: &String| {
                    !field.is_empty()
                        && field.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '-')
                };
                fields.iter().all(valid).then_some(ArgValue::Fields(fields))
            }
        }
    }
}

/// A metric's arguments after checking: every declared one, given or defaulted.
#[derive(Clone, Debug, Default)]
pub struct MetricArgs(BTreeMap<&'static str, ArgValue>);

impl MetricArgs {
    /// Checks `given` against `specs`: unknown names and bad values are errors naming the metric.
    pub fn check(metric: &str, specs: &[ArgSpec], given: &BTreeMap<String, String>) -> Result<Self, String> {
        if let Some(unknown) = given.keys().find(|key| !specs.iter().any(|spec| spec.name == key.as_str())) {
            return Err(if specs.is_empty() {
                format!("metric `{metric}` takes no arguments (got `{unknown}`)")
            } else {
                let known: Vec<&str> = specs.iter().map(|spec| spec.name).collect();
                format!("unknown argument `{unknown}` for metric `{metric}`; it takes: {}", known.join(", "))
            });
        }
        let mut values = BTreeMap::new();
        for spec in specs {
            let text = given.get(spec.name).map(String::as_str).unwrap_or(spec.default);
            let value = spec.kind.parse(text).ok_or_else(|| {
                format!("metric `{metric}` argument `{}`: `{text}` is not {}", spec.name, spec.kind)
            })?;
            values.insert(spec.name, value);
        }
        Ok(MetricArgs(values))
    }

    pub fn bool(&self, name: &str) -> bool {
        matches!(self.0.get(name), Some(ArgValue::Bool(true)))
    }

    pub fn whole(&self, name: &str) -> u64 {
        match self.0.get(name) {
            Some(ArgValue::Whole(value)) => *value,
            _ => 0,
        }
    }

    pub fn fields(&self, name: &str) -> &[String] {
        match self.0.get(name) {
            Some(ArgValue::Fields(fields)) => fields,
            _ => &[],
        }
    }

    pub fn number(&self, name: &str) -> f64 {
        match self.0.get(name) {
            Some(ArgValue::Number(value)) => *value,
            Some(ArgValue::Whole(value)) => *value as f64,
            _ => 0.0,
        }
    }
}

/// `metric:key=value,key2=value;metric2:key=value` as metric → key → text.
pub fn parse_spec(spec: &str) -> Result<BTreeMap<String, BTreeMap<String, String>>, String> {
    let mut parsed: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for part in spec.split(';').map(str::trim).filter(|part| !part.is_empty()) {
        let (metric, pairs) = part.split_once(':').ok_or_else(|| {
            format!("invalid metric argument `{part}`: expected `metric:key=value[,key2=value2]`")
        })?;
        let entry = parsed.entry(metric.trim().to_owned()).or_default();
        for pair in pairs.split(',').map(str::trim).filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                format!("invalid metric argument `{pair}` for `{}`: expected `key=value`", metric.trim())
            })?;
            entry.insert(key.trim().to_owned(), value.trim().to_owned());
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[ArgSpec] = &[
        ArgSpec {
            name: "max_order",
            kind: ArgKind::Whole { low: 1, high: 9 },
            default: "4",
            description: "",
        },
        ArgSpec { name: "smooth", kind: ArgKind::Bool, default: "true", description: "" },
    ];

    #[test]
    fn arguments_are_typed_defaulted_and_checked() {
        let parsed = parse_spec("bleu:max_order=2 ; exact_match:ignore_case=false").unwrap();
        let args = MetricArgs::check("bleu", SPECS, &parsed["bleu"]).unwrap();
        assert_eq!((args.whole("max_order"), args.bool("smooth")), (2, true));
        let bad = BTreeMap::from([("max_order".to_owned(), "zero".to_owned())]);
        assert_eq!(
            MetricArgs::check("bleu", SPECS, &bad).unwrap_err(),
            "metric `bleu` argument `max_order`: `zero` is not a whole number from 1 to 9"
        );
        let unknown = BTreeMap::from([("order".to_owned(), "2".to_owned())]);
        assert!(MetricArgs::check("bleu", SPECS, &unknown)
            .unwrap_err()
            .contains("it takes: max_order, smooth"));
        assert!(MetricArgs::check("wer", &[], &unknown).unwrap_err().contains("takes no arguments"));
        assert!(parse_spec("bleu").unwrap_err().contains("expected `metric:key=value"));
        assert!(parse_spec("bleu:max_order").unwrap_err().contains("expected `key=value`"));
    }
}
