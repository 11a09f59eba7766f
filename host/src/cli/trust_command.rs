//! `karma-host plugins trust PATH...` and `karma-host plugins verify`.

use std::io::Write;

use super::{args::PluginsCommand, ExitStatus};
use crate::plugins::trust::{sha256_of, TrustFile};

pub(super) fn plugins(command: &PluginsCommand) -> anyhow::Result<ExitStatus> {
    let mut stdout = std::io::stdout().lock();
    let mut trust = TrustFile::open()?;
    match command {
        PluginsCommand::Trust { paths } => {
            let pinned: Vec<_> = paths.iter().map(|path| trust.pin(path)).collect::<anyhow::Result<_>>()?;
            trust.save()?;
            for (path, hash) in pinned {
                writeln!(stdout, "pinned  {}  sha256 {hash}", path.display())?;
            }
            writeln!(stdout, "in `{}`", trust.path.display())?;
            Ok(ExitStatus::Success)
        }
        PluginsCommand::Verify => {
            if trust.pins().is_empty() {
                writeln!(stdout, "no plugins are pinned in `{}`", trust.path.display())?;
                return Ok(ExitStatus::Success);
            }
            let mut problems = 0;
            for (path, expected) in trust.pins() {
                let actual = std::fs::File::open(path).and_then(|mut file| sha256_of(&mut file));
                match actual {
                    Ok(actual) if &actual == expected => writeln!(stdout, "ok       {}", path.display())?,
                    Ok(actual) => {
                        problems += 1;
                        writeln!(
                            stdout,
                            "changed  {}: expected sha256 {expected}, found {actual}",
                            path.display()
                        )?;
                    }
                    Err(error) => {
                        problems += 1;
                        writeln!(stdout, "missing  {}: {error}", path.display())?;
                    }
                }
            }
            Ok(if problems == 0 { ExitStatus::Success } else { ExitStatus::Failure })
        }
    }
}
