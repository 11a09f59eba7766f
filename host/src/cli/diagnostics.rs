//! Exit statuses and error rendering (`error:` / `caused by:` / `hint:`).

use std::{fmt, process::ExitCode};

use crate::{cache::CacheError, engine::EngineError};

/// How a command ended, mapped to the process exit code in one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: everything requested was done.
    Success,
    /// 1: finished and wrote its output, but some items failed (recorded, not scored).
    Failure,
    /// 2: nothing useful could be done (bad arguments, unknown model, load error).
    Error,
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> ExitCode {
        match status {
            ExitStatus::Success => ExitCode::SUCCESS,
            ExitStatus::Failure => ExitCode::from(1),
            ExitStatus::Error => ExitCode::from(2),
        }
    }
}

/// An error with advice on what to do about it.
#[derive(Debug)]
pub struct Hinted {
    pub message: String,
    pub hint: String,
}

impl fmt::Display for Hinted {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {}

/// Renders an error chain to stderr text. A cause whose text an earlier line already shows
/// (many errors quote their source) is not repeated.
pub fn render(error: &anyhow::Error) -> String {
    let mut text = format!("error: {error}\n");
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(&format!("  caused by: {cause}\n"));
        }
    }
    if let Some(hint) = error.chain().find_map(hint_of) {
        text.push_str(&format!("\nhint: {hint}\n"));
    }
    text
}

/// The advice an error in the chain carries, if any.
fn hint_of(cause: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(hinted) = cause.downcast_ref::<Hinted>() {
        return Some(hinted.hint.clone());
    }
    let cache = cause.downcast_ref::<CacheError>().or(match cause.downcast_ref::<EngineError>() {
        Some(EngineError::Cache(error)) => Some(error),
        _ => None,
    });
    cache.and_then(CacheError::hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_listed_once_and_hints_last() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let quoted = anyhow::Error::new(io).context("cache `c.sqlite`: no such file");
        assert_eq!(render(&quoted), "error: cache `c.sqlite`: no such file\n");
        let hinted =
            anyhow::Error::new(Hinted { message: "unknown model `m`".into(), hint: "list them".into() })
                .context("cannot evaluate");
        assert_eq!(
            render(&hinted),
            "error: cannot evaluate\n  caused by: unknown model `m`\n\nhint: list them\n"
        );
    }
}
