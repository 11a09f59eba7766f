//! `karma-host cache info|clear`.

use std::io::Write;

use super::{args::CacheCommand, eval::cache_path, ExitStatus};
use crate::cache::Cache;

pub(super) fn cache(command: &CacheCommand) -> anyhow::Result<ExitStatus> {
    let mut stdout = std::io::stdout().lock();
    match command {
        CacheCommand::Info { cache_path: flag } => {
            let path = cache_path(flag.as_deref());
            if !path.exists() {
                writeln!(stdout, "no cache at `{}` yet", path.display())?;
                return Ok(ExitStatus::Success);
            }
            let stats = Cache::open(&path)?.stats()?;
            writeln!(stdout, "path         {}", path.display())?;
            writeln!(stdout, "size         {:.1} MiB", stats.bytes as f64 / (1024.0 * 1024.0))?;
            writeln!(stdout, "outputs      {}", stats.outputs)?;
            writeln!(stdout, "extractions  {}", stats.extractions)?;
            for (model, count) in stats.models {
                writeln!(stdout, "  {model}: {count} outputs")?;
            }
        }
        CacheCommand::Clear { cache_path: flag, model } => {
            let path = cache_path(flag.as_deref());
            if !path.exists() {
                writeln!(stdout, "no cache at `{}`", path.display())?;
                return Ok(ExitStatus::Success);
            }
            let removed = Cache::open(&path)?.clear(model.as_deref())?;
            writeln!(stdout, "removed {removed} cached outputs from `{}`", path.display())?;
        }
    }
    Ok(ExitStatus::Success)
}
